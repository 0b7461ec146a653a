package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// namespace holds every Service of the benchmark; every system watches it.
const namespace = "bench"

// endpointsEach is the number of endpoints of every benchmark Service.
const endpointsEach = 3

// backendPort is the port of every endpoint. One server listens on it on
// all addresses; inside the benchmark's network namespace all of
// 198.18.0.0/15 is local, so it answers for every endpoint.
const backendPort = 8080

// serviceName is the name of the benchmark Service with index i.
func serviceName(i int) string { return fmt.Sprintf("svc-%05d", i) }

// routePath is where every system routes Service i.
func routePath(i int) string { return "/" + namespace + "/" + serviceName(i) + "/" }

// endpointAddr is endpoint j of Service i: distinct for every (i, j) with
// i < 43,000, all inside 198.18.0.0/15.
func endpointAddr(i, j int) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 198<<24|18<<16+uint32(256+endpointsEach*i+j))
	return netip.AddrFrom4(b)
}

// startBackend serves every endpoint: it answers with the address the
// request came to, so a response proves which Service nginx routed to.
func startBackend() (*http.Server, error) {
	l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", backendPort))
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
		if a, ok := local.(*net.TCPAddr); ok {
			fmt.Fprint(w, a.IP.String())
		}
	})}
	go srv.Serve(l)
	return srv, nil
}

// answersFor says whether body is what an endpoint of Service i answers.
func answersFor(i int, body string) bool {
	for j := range endpointsEach {
		if body == endpointAddr(i, j).String() {
			return true
		}
	}
	return false
}

// objects are Service i and its EndpointSlice, labelled with set.
func objects(i int, set string) (*corev1.Service, *discoveryv1.EndpointSlice) {
	labels := map[string]string{"bench-set": set}
	for k, v := range testbed.ExposedLabels {
		labels[k] = v
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: serviceName(i), Labels: labels},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{testbed.TCPPort("http", 80)}},
	}
	var eps []testbed.Endpoint
	for j := range endpointsEach {
		eps = append(eps, testbed.Endpoint{Addr: endpointAddr(i, j)})
	}
	slice := testbed.EndpointSlice(serviceName(i), []testbed.SlicePort{{Name: "http", Port: backendPort}}, eps...)
	slice.Namespace, slice.GenerateName, slice.Name = namespace, "", serviceName(i)+"-0"
	slice.Labels["bench-set"] = set
	return svc, slice
}

// ingress is the Ingress that routes Service i at routePath(i), on any
// host, as kube-nginx-sync routes it: what a user of an ingress
// controller writes for the same Service. It is of Traefik's class
// (kube-nginx-sync, whose systems run with --ingress-class bench, keeps it
// as a stub).
func ingress(i int, set string) *networkingv1.Ingress {
	labels := map[string]string{"bench-set": set}
	return &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: serviceName(i), Labels: labels},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To(traefikClass), Rules: []networkingv1.IngressRule{{IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: routePath(i), PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
					Name: serviceName(i), Port: networkingv1.ServiceBackendPort{Name: "http"}}},
			}}},
		}}}},
	}
}

// create creates Service i, its Ingress when the bench measures an
// ingress controller, and then its EndpointSlice: every system's route is
// complete at the return of the last call, from which the single change is
// timed.
func (b *bench) create(ctx context.Context, i int, set string) error {
	svc, slice := objects(i, set)
	if _, err := b.client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create Service %s: %w", svc.Name, err)
	}
	if b.ingresses {
		if _, err := b.client.NetworkingV1().Ingresses(namespace).Create(ctx, ingress(i, set), metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Ingress %s: %w", svc.Name, err)
		}
	}
	if _, err := b.client.DiscoveryV1().EndpointSlices(namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create EndpointSlice %s: %w", slice.Name, err)
	}
	return nil
}

// remove deletes Service i, its Ingress and its EndpointSlice.
func (b *bench) remove(ctx context.Context, i int) error {
	err := b.client.CoreV1().Services(namespace).Delete(ctx, serviceName(i), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Service %s: %w", serviceName(i), err)
	}
	if b.ingresses {
		err = b.client.NetworkingV1().Ingresses(namespace).Delete(ctx, serviceName(i), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete Ingress %s: %w", serviceName(i), err)
		}
	}
	err = b.client.DiscoveryV1().EndpointSlices(namespace).Delete(ctx, serviceName(i)+"-0", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete EndpointSlice %s-0: %w", serviceName(i), err)
	}
	return nil
}

// watches counts the API server's open watches of a resource
// ("services", "endpointslices") in a namespace, from its
// apiserver_longrunning_requests metric; the API server's own watches are
// of the whole cluster.
func watches(ctx context.Context, c kubernetes.Interface, resource string) (int, error) {
	data, err := c.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return 0, fmt.Errorf("API server metrics: %w", err)
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") || !strings.Contains(line, `verb="WATCH"`) ||
			!strings.Contains(line, `resource="`+resource+`"`) || !strings.Contains(line, `scope="namespace"`) {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			n += int(v)
		}
	}
	return n, nil
}

// waitWatches waits until the API server has at least want watches of
// both Services and EndpointSlices open (at most want when atMost): a
// generator that lists, then watches, misses the changes made in between.
func waitWatches(ctx context.Context, c kubernetes.Interface, want int, atMost bool) error {
	deadline := time.Now().Add(time.Minute)
	for {
		ok := true
		for _, r := range []string{"services", "endpointslices"} {
			n, err := watches(ctx, c, r)
			if err != nil {
				return err
			}
			ok = ok && (n >= want && !atMost || n <= want && atMost)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API server's watches did not reach %d in a minute", want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// parallel runs f for every index in [from, to) on workers goroutines and
// returns the first error, and when the last call returned.
func parallel(ctx context.Context, from, to, workers int, f func(context.Context, int) error) (time.Time, error) {
	var (
		mu    sync.Mutex
		first error
		last  time.Time
		wg    sync.WaitGroup
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				err := f(ctx, i)
				mu.Lock()
				if err != nil && first == nil {
					first = err
				}
				last = time.Now()
				mu.Unlock()
			}
		}()
	}
feed:
	for i := from; i < to; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return last, first
}
