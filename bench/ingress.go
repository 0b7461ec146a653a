package main

import (
	"context"
	"fmt"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// ingressClass is the IngressClass of the Ingress single change; every
// system of kube-nginx-sync runs with --ingress-class of it. (Every
// Service of the bench's namespace matches the selector, so reading them
// all, as --ingress-class does, changes nothing for the other figures.)
const ingressClass = "bench"

// setupIngress creates the IngressClasses: kube-nginx-sync's and
// Traefik's.
func setupIngress(ctx context.Context, c kubernetes.Interface) error {
	for name, controller := range map[string]string{ingressClass: model.ControllerName, traefikClass: traefikController} {
		_, err := c.NetworkingV1().IngressClasses().Create(ctx, &networkingv1.IngressClass{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create IngressClass %s: %w", name, err)
		}
	}
	return nil
}

// ingressRunArgs are the arguments of kube-nginx-sync's systems that route
// the Ingresses of the class.
func ingressRunArgs() []string { return []string{"--ingress-class", ingressClass} }

// ingressSingleChange is singleChange for an Ingress: Service i, which the
// selector leaves out, and its EndpointSlice are created first (nothing
// routes them); then an Ingress that routes the Service at routePath(i),
// Prefix; timed from the return of the Ingress's create call to the first
// correct answer there, on a new connection. Each trial's objects are
// deleted after it, so that the other figures are not measured with more
// routes, and the next trial waits until nginx no longer routes them.
func (b *bench) ingressSingleChange(ctx context.Context, s *system, trials int, timeout time.Duration) ([]time.Duration, error) {
	client := newPollClient()
	var out []time.Duration
	for range trials {
		i := b.fresh()
		svc, slice := objects(i, "ingress")
		for k := range testbed.ExposedLabels {
			delete(svc.Labels, k)
		}
		if _, err := b.client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return out, fmt.Errorf("create Service %s: %w", svc.Name, err)
		}
		if _, err := b.client.DiscoveryV1().EndpointSlices(namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return out, fmt.Errorf("create EndpointSlice %s: %w", slice.Name, err)
		}
		if err := s.waitQuiet(ctx, 500*time.Millisecond); err != nil {
			return out, err
		}
		ing := &networkingv1.Ingress{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: serviceName(i)},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(ingressClass), Rules: []networkingv1.IngressRule{{
				IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
					Path: routePath(i), PathType: ptr.To(networkingv1.PathTypePrefix),
					Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: serviceName(i),
						Port: networkingv1.ServiceBackendPort{Name: "http"}}},
				}}}},
			}}},
		}
		if _, err := b.client.NetworkingV1().Ingresses(namespace).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			return out, fmt.Errorf("create Ingress %s: %w", ing.Name, err)
		}
		created := time.Now()
		for !routed(client, s.port, i) {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if time.Since(created) > timeout {
				return out, fmt.Errorf("%s: the Ingress of %s not routed after %s", s.name, serviceName(i), timeout)
			}
			time.Sleep(b.pollEvery)
		}
		out = append(out, time.Since(created))
		for _, step := range []func() error{
			func() error { return s.waitQuiet(ctx, 500*time.Millisecond) },
			func() error {
				err := b.client.NetworkingV1().Ingresses(namespace).Delete(ctx, ing.Name, metav1.DeleteOptions{})
				if apierrors.IsNotFound(err) {
					return nil
				}
				return err
			},
			func() error { return b.remove(ctx, i) },
			// The deletion's reload must be over, as the Service trials'
			// last reload is: one still running at the next trial's
			// change would delay it (about 1 s at 10,000 routes).
			func() error {
				for deleted := time.Now(); routed(client, s.port, i); time.Sleep(b.pollEvery) {
					if ctx.Err() != nil || time.Since(deleted) > timeout {
						return fmt.Errorf("%s: the Ingress of %s still routed after its deletion", s.name, serviceName(i))
					}
				}
				return nil
			},
			func() error { return s.waitQuiet(ctx, 500*time.Millisecond) },
		} {
			if err := step(); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}
