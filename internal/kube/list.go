package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/pager"
	"k8s.io/utils/clock"
)

// Selection says which Services to fetch.
type Selection struct {
	// Selector filters Services by label, server side; nil means all.
	Selector labels.Selector
	// Namespaces to read; empty means all namespaces.
	Namespaces []string
	// IngressClass also reads the Ingresses and the IngressClass of that
	// name, and then every Service of the namespaces (ingress.go); ""
	// reads none.
	IngressClass string
	// TLSSecrets also reads the kubernetes.io/tls Secrets that the
	// Services name for HTTPS (model.AnnotationTLSSecret).
	TLSSecrets bool
}

// namespaces returns the namespaces to list, "" standing for all.
func (s Selection) namespaces() []string {
	if len(s.Namespaces) == 0 {
		return []string{metav1.NamespaceAll}
	}
	return s.Namespaces
}

// Objects are the Services of a Selection and the EndpointSlices that
// belong to them, with Selection.TLSSecrets the kubernetes.io/tls Secrets
// they name (only tls.crt and tls.key of their data), and with
// Selection.IngressClass its Ingresses and its IngressClass.
type Objects struct {
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	Ingresses      []*networkingv1.Ingress
	IngressClasses []*networkingv1.IngressClass
	Secrets        []*corev1.Secret
}

// listPageSize bounds each list response, so that 10,000 Services never
// arrive as one huge body.
const listPageSize = 500

// List fetches the Services of sel and their EndpointSlices once, with
// sel.IngressClass the Ingresses and the IngressClass, and with
// sel.TLSSecrets the Secrets that the Services and Ingresses name.
func List(ctx context.Context, client kubernetes.Interface, sel Selection) (Objects, error) {
	var objs Objects
	selector := sel.serviceSelector()
	if sel.IngressClass != "" {
		if err := listIngresses(ctx, client, sel, &objs); err != nil {
			return Objects{}, err
		}
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
	if len(objs.Services) > 0 {
		if err := listSlices(ctx, client, sel, wanted, &objs); err != nil {
			return Objects{}, err
		}
	}
	if sel.TLSSecrets {
		var err error
		if objs.Secrets, err = ListTLSSecrets(ctx, client, sel, objs); err != nil {
			return Objects{}, err
		}
	}
	return objs, nil
}

// listSlices adds the EndpointSlices of the wanted Services
// ("namespace/name") to objs.
func listSlices(ctx context.Context, client kubernetes.Interface, sel Selection, wanted map[string]bool, objs *Objects) error {
	hasService, err := labels.NewRequirement(discoveryv1.LabelServiceName, selection.Exists, nil)
	if err != nil {
		return err
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
			return fmt.Errorf("list endpointslices: %w", err)
		}
	}
	return nil
}

func listPages(ctx context.Context, list pager.ListPageFunc, opts metav1.ListOptions, each func(runtime.Object) error) error {
	p := pager.New(list)
	p.PageSize = listPageSize
	return p.EachListItemWithAlloc(ctx, opts, each)
}

// listBackoff spaces the tries of ListWithRetry: 200 ms doubling to 5 s.
var listBackoff = wait.Backoff{
	Duration: 200 * time.Millisecond,
	Factor:   2,
	Cap:      5 * time.Second,
	Steps:    math.MaxInt32, // grow until Cap, then stay there
}

// ListWithRetry calls List until it succeeds or timeout passes, backing off
// from 200 ms to 5 s between tries, so that an init container started
// before the API server is reachable waits for it instead of failing.
func ListWithRetry(ctx context.Context, client kubernetes.Interface, sel Selection, timeout time.Duration, log *slog.Logger) (Objects, error) {
	return listWithRetry(ctx, clock.RealClock{}, client, sel, timeout, log)
}

// errListTimeout ends the tries of listWithRetry.
var errListTimeout = errors.New("list timeout")

func listWithRetry(ctx context.Context, clk clock.WithDelayedExecution, client kubernetes.Interface, sel Selection,
	timeout time.Duration, log *slog.Logger) (Objects, error) {
	// A timeout on clk, which also ends a try in progress.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	timer := clk.AfterFunc(timeout, func() { cancel(errListTimeout) })
	defer timer.Stop()

	var (
		objs     Objects
		err      error // of the last try
		attempts int
	)
	delay := listBackoff.DelayFunc()
	retryIn := func() time.Duration {
		d := delay()
		log.Warn("listing from the API server failed; retrying", "attempt", attempts, "retry_in", d, "err", err)
		return d
	}
	pollErr := poll(ctx, clk, retryIn, func(ctx context.Context) (bool, error) {
		attempts++
		objs, err = List(ctx, client, sel)
		if err != nil && ctx.Err() != nil {
			return false, err // timed out or cancelled during the try
		}
		return err == nil, nil
	})
	switch {
	case pollErr == nil:
		return objs, nil
	case errors.Is(context.Cause(ctx), errListTimeout):
		return Objects{}, fmt.Errorf("the API server did not answer within %s (%d attempts): %w", timeout, attempts, err)
	}
	return Objects{}, err
}
