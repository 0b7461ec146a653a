package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// OnChange is called, from informer goroutines, after any change to a
	// watched object, and when the watches are healthy again after a
	// failure. It must not block: schedule work, do not do it.
	OnChange func()
	// OnWatchError is called with each failure to list or watch (other
	// than the normal end of a watch), for metrics and logs.
	OnWatchError func(resource string, err error)
}

// Watcher keeps an in-memory copy of the Services of a Selection and of
// the EndpointSlices of their namespaces, with client-go informers.
//
// Services are filtered by the selector on the server. EndpointSlices are
// filtered by namespace and by carrying a kubernetes.io/service-name label:
// the Service's labels cannot select them reliably (only the EndpointSlice
// controller copies them; hand-made slices of selector-less Services do
// not), so slices of unselected Services are dropped in memory by the
// model. Both are stripped of what routing does not need (managed fields,
// other annotations, status, topology) to keep memory small.
type Watcher struct {
	services []cache.SharedIndexInformer
	slices   []cache.SharedIndexInformer
	opts     WatcherOptions

	mu sync.Mutex
	// broken maps an informer's name to the time its list or watch first
	// failed since it last succeeded.
	broken map[string]time.Time
}

// NewWatcher creates the informers; Run starts them.
func NewWatcher(client kubernetes.Interface, sel Selection, opts WatcherOptions) (*Watcher, error) {
	w := &Watcher{opts: opts, broken: make(map[string]time.Time)}
	selector := labels.Everything()
	if sel.Selector != nil {
		selector = sel.Selector
	}
	hasService, err := labels.NewRequirement(discoveryv1.LabelServiceName, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	sliceSelector := labels.NewSelector().Add(*hasService)
	for _, ns := range sel.namespaces() {
		svcInformer, err := w.newInformer("services", ns, &corev1.Service{}, selector,
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return client.CoreV1().Services(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return client.CoreV1().Services(ns).Watch(ctx, o)
			})
		if err != nil {
			return nil, err
		}
		sliceInformer, err := w.newInformer("endpointslices", ns, &discoveryv1.EndpointSlice{}, sliceSelector,
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return client.DiscoveryV1().EndpointSlices(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return client.DiscoveryV1().EndpointSlices(ns).Watch(ctx, o)
			})
		if err != nil {
			return nil, err
		}
		w.services = append(w.services, svcInformer)
		w.slices = append(w.slices, sliceInformer)
	}
	return w, nil
}

func (w *Watcher) newInformer(resource, ns string, example runtime.Object, selector labels.Selector,
	list cache.ListWithContextFunc, watchFunc cache.WatchFuncWithContext) (cache.SharedIndexInformer, error) {
	name := resource
	if ns != "" {
		name += " in " + ns
	}
	selectorString := selector.String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selectorString
			var obj runtime.Object
			err := w.retryTransient(ctx, name, resource, func() (err error) {
				obj, err = list(ctx, o)
				return err
			})
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selectorString
			var wi watch.Interface
			err := w.retryTransient(ctx, name, resource, func() (err error) {
				wi, err = watchFunc(ctx, o)
				return err
			})
			return wi, err
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(lw, example, cache.SharedIndexInformerOptions{ObjectDescription: name})
	if err := inf.SetTransform(stripForRouting); err != nil {
		return nil, err
	}
	if err := inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		// Errors of the list and watch calls themselves are recorded by
		// recordAttempt (the reflector retries a refused connection
		// without calling this handler); this one sees the errors of a
		// running watch, such as an expired resource version.
		if !errors.Is(err, io.EOF) { // io.EOF: the server ended the watch normally
			w.markBroken(name)
			w.watchError(resource, err)
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	}); err != nil {
		return nil, err
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(any) { w.changed() },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(metav1.Object)
			n, ok2 := newObj.(metav1.Object)
			if ok1 && ok2 && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a resync, not a change
			}
			w.changed()
		},
		DeleteFunc: func(any) { w.changed() },
	})
	return inf, err
}

// Retries of transient failures inside one list or watch call.
const (
	firstRetry = 100 * time.Millisecond
	maxRetry   = 2 * time.Second
)

// retryTransient runs a list or watch call, and while it fails because the
// API server cannot be reached or is briefly unavailable, runs it again
// after a short backoff (100 ms doubling to 2 s). The reflector's own
// backoff grows to 30 s during an outage, which would leave the config
// stale for that long after the API server is back. Other errors (such as
// 410 Gone, 429 or 403) go to the reflector, which handles and backs off.
func (w *Watcher) retryTransient(ctx context.Context, name, resource string, call func() error) error {
	delay := firstRetry
	for {
		err := call()
		w.recordAttempt(name, resource, err)
		if err == nil || !isTransient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		delay = min(2*delay, maxRetry)
	}
}

// isTransient reports failures that a retry in a moment may cure.
func isTransient(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	case utilnet.IsConnectionRefused(err), utilnet.IsConnectionReset(err), utilnet.IsProbableEOF(err),
		errors.As(err, &netErr):
		return true
	case apierrors.IsServiceUnavailable(err), apierrors.IsInternalError(err),
		apierrors.IsServerTimeout(err), apierrors.IsTimeout(err):
		return true
	}
	return false
}

// recordAttempt notes the outcome of a list or watch call.
func (w *Watcher) recordAttempt(name, resource string, err error) {
	if err == nil {
		w.markHealthy(name)
		return
	}
	if errors.Is(err, context.Canceled) {
		return // shutting down
	}
	w.markBroken(name)
	w.watchError(resource, err)
}

func (w *Watcher) watchError(resource string, err error) {
	if w.opts.OnWatchError != nil {
		w.opts.OnWatchError(resource, err)
	}
}

func (w *Watcher) changed() {
	if w.opts.OnChange != nil {
		w.opts.OnChange()
	}
}

func (w *Watcher) markBroken(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.broken[name]; !ok {
		w.broken[name] = time.Now()
	}
}

func (w *Watcher) markHealthy(name string) {
	w.mu.Lock()
	_, was := w.broken[name]
	delete(w.broken, name)
	w.mu.Unlock()
	if was {
		w.changed()
	}
}

// BrokenSince returns when the oldest current list or watch failure began,
// or the zero time when every watch is healthy.
func (w *Watcher) BrokenSince() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	var oldest time.Time
	for _, t := range w.broken {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
}

// Run runs the informers until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, inf := range w.informers() {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	wg.Wait()
}

func (w *Watcher) informers() []cache.SharedIndexInformer {
	return append(append([]cache.SharedIndexInformer(nil), w.services...), w.slices...)
}

// WaitForSync blocks until every informer has listed once, or ctx ends.
func (w *Watcher) WaitForSync(ctx context.Context) error {
	var synced []cache.InformerSynced
	for _, inf := range w.informers() {
		synced = append(synced, inf.HasSynced)
	}
	if !cache.WaitForCacheSync(ctx.Done(), synced...) {
		return fmt.Errorf("caches not synced: %w", ctx.Err())
	}
	return nil
}

// Objects returns the cached objects. They are shared with the cache:
// callers must not modify them.
func (w *Watcher) Objects() Objects {
	var objs Objects
	for _, inf := range w.services {
		for _, o := range inf.GetStore().List() {
			if s, ok := o.(*corev1.Service); ok {
				objs.Services = append(objs.Services, s)
			}
		}
	}
	for _, inf := range w.slices {
		for _, o := range inf.GetStore().List() {
			if s, ok := o.(*discoveryv1.EndpointSlice); ok {
				objs.EndpointSlices = append(objs.EndpointSlices, s)
			}
		}
	}
	return objs
}

// stripForRouting is the informers' transform: it keeps only what routing,
// events and change detection need.
func stripForRouting(obj any) (any, error) {
	switch o := obj.(type) {
	case *corev1.Service:
		stripMeta(&o.ObjectMeta)
		o.Spec = corev1.ServiceSpec{
			Type:      o.Spec.Type,
			ClusterIP: o.Spec.ClusterIP,
			Ports:     o.Spec.Ports,
		}
		o.Status = corev1.ServiceStatus{}
	case *discoveryv1.EndpointSlice:
		stripMeta(&o.ObjectMeta)
		o.Annotations = nil
		for i := range o.Endpoints {
			e := &o.Endpoints[i]
			// Only the first address is used; a copy frees the rest.
			var first []string
			if len(e.Addresses) > 0 {
				first = []string{e.Addresses[0]}
			}
			*e = discoveryv1.Endpoint{Addresses: first, Conditions: e.Conditions}
		}
	}
	return obj, nil
}

// stripMeta drops managed fields, owner references and every annotation
// that is not kube-nginx-sync's (kubectl's last-applied-configuration is
// often the largest part of an object).
func stripMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	m.OwnerReferences = nil
	m.Finalizers = nil
	for k := range m.Annotations {
		if !strings.HasPrefix(k, model.AnnotationPrefix) {
			delete(m.Annotations, k)
		}
	}
}
