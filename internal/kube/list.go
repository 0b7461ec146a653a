package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
)

// Selection says which Services to fetch.
type Selection struct {
	// Selector filters Services by label, server side; nil means all.
	Selector labels.Selector
	// Namespaces to read; empty means all namespaces.
	Namespaces []string
}

// namespaces returns the namespaces to list, "" standing for all.
func (s Selection) namespaces() []string {
	if len(s.Namespaces) == 0 {
		return []string{metav1.NamespaceAll}
	}
	return s.Namespaces
}

// Objects are the Services of a Selection and the EndpointSlices that
// belong to them.
type Objects struct {
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
}

// listPageSize bounds each list response, so that 10,000 Services never
// arrive as one huge body.
const listPageSize = 500

// List fetches the Services of sel and their EndpointSlices once.
func List(ctx context.Context, client kubernetes.Interface, sel Selection) (Objects, error) {
	var objs Objects
	selector := labels.Everything()
	if sel.Selector != nil {
		selector = sel.Selector
	}
	wanted := make(map[string]bool) // namespace/name of selected Services
	for _, ns := range sel.namespaces() {
		err := listPages(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Services(ns).List(ctx, o)
		}, metav1.ListOptions{LabelSelector: selector.String()}, func(obj runtime.Object) error {
			svc, ok := obj.(*corev1.Service)
			if !ok {
				return fmt.Errorf("list services: got %T", obj)
			}
			objs.Services = append(objs.Services, svc)
			wanted[svc.Namespace+"/"+svc.Name] = true
			return nil
		})
		if err != nil {
			return Objects{}, fmt.Errorf("list services: %w", err)
		}
	}
	if len(objs.Services) == 0 {
		return objs, nil
	}
	hasService, err := labels.NewRequirement(discoveryv1.LabelServiceName, selection.Exists, nil)
	if err != nil {
		return Objects{}, err
	}
	sliceSelector := labels.NewSelector().Add(*hasService).String()
	for _, ns := range sel.namespaces() {
		err := listPages(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.DiscoveryV1().EndpointSlices(ns).List(ctx, o)
		}, metav1.ListOptions{LabelSelector: sliceSelector}, func(obj runtime.Object) error {
			s, ok := obj.(*discoveryv1.EndpointSlice)
			if !ok {
				return fmt.Errorf("list endpointslices: got %T", obj)
			}
			if wanted[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]] {
				objs.EndpointSlices = append(objs.EndpointSlices, s)
			}
			return nil
		})
		if err != nil {
			return Objects{}, fmt.Errorf("list endpointslices: %w", err)
		}
	}
	return objs, nil
}

func listPages(ctx context.Context, list pager.ListPageFunc, opts metav1.ListOptions, each func(runtime.Object) error) error {
	p := pager.New(list)
	p.PageSize = listPageSize
	return p.EachListItemWithAlloc(ctx, opts, each)
}

// ListWithRetry calls List until it succeeds or timeout passes, backing off
// from 200 ms to 5 s between tries, so that an init container started
// before the API server is reachable waits for it instead of failing.
func ListWithRetry(ctx context.Context, client kubernetes.Interface, sel Selection, timeout time.Duration, log *slog.Logger) (Objects, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		objs, err := List(ctx, client, sel)
		if err == nil {
			return objs, nil
		}
		if ctx.Err() != nil {
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return Objects{}, fmt.Errorf("the API server did not answer within %s (%d attempts): %w", timeout, attempt, err)
			}
			return Objects{}, err
		}
		log.Warn("listing from the API server failed; retrying", "attempt", attempt, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return Objects{}, fmt.Errorf("the API server did not answer within %s (%d attempts): %w", timeout, attempt, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}
