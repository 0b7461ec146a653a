package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
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
	// failed since its cache was last known current.
	broken map[string]time.Time
	// failures counts each informer's failures, so that a recovery noticed
	// late does not clear a newer failure.
	failures map[string]uint64
}

// NewWatcher creates the informers; Run starts them.
func NewWatcher(client kubernetes.Interface, sel Selection, opts WatcherOptions) (*Watcher, error) {
	w := &Watcher{opts: opts, broken: make(map[string]time.Time), failures: make(map[string]uint64)}
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
	// The informer's cache, for the list and watch calls to see when a
	// result has reached it (inf is set before the informer runs).
	var inf cache.SharedIndexInformer
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = selectorString
			var obj runtime.Object
			err := w.retryTransient(ctx, name, resource, func() (err error) {
				obj, err = list(ctx, o)
				return err
			})
			if err != nil {
				return nil, err
			}
			// The reflector puts the complete list into the cache.
			rv := ""
			if l, err := meta.ListAccessor(obj); err == nil {
				rv = l.GetResourceVersion()
			}
			w.healthyWhenStored(ctx, name, inf.GetStore(), rv)
			return obj, nil
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = selectorString
			var wi watch.Interface
			err := w.retryTransient(ctx, name, resource, func() (err error) {
				wi, err = watchFunc(ctx, o)
				return err
			})
			if err != nil {
				return nil, err
			}
			// A watch that the server accepted may still end at once with
			// an error (410 Gone): its stream says when the cache is good.
			listsFirst := o.SendInitialEvents != nil && *o.SendInitialEvents
			return w.track(ctx, name, resource, inf.GetStore(), wi, listsFirst), nil
		},
	}
	inf = cache.NewSharedIndexInformerWithOptions(lw, example, cache.SharedIndexInformerOptions{ObjectDescription: name})
	if err := inf.SetTransform(stripForRouting); err != nil {
		return nil, err
	}
	// Every failure of the API server is recorded where it shows: the list
	// and watch calls (retryTransient) and the watch streams (track). What
	// the reflector passes on here is one of those, or its own trouble:
	// only log it.
	if err := inf.SetWatchErrorHandlerWithContext(cache.DefaultWatchErrorHandler); err != nil {
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
//
// Failures are recorded (the watch counts as broken); a success is left to
// the caller, which knows when the cache is current again.
func (w *Watcher) retryTransient(ctx context.Context, name, resource string, call func() error) error {
	delay := firstRetry
	for {
		err := call()
		if err == nil {
			return nil
		}
		w.recordAttempt(name, resource, err)
		if !isTransient(err) {
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

// watchSettle is how long a watch that was resumed after a failure must
// run without an error, when no event comes sooner, before its informer
// counts as healthy again. A server that cannot resume it from its
// resource version says so at once, with an error event.
const watchSettle = 250 * time.Millisecond

// track passes the events of a watch on to the reflector and keeps its
// informer's health:
//
//   - an ERROR event marks the informer broken: after one (410 Gone, "too
//     old resource version", when etcd's history was compacted past the
//     watch's resource version), the reflector keeps the cache as it was
//     and lists again only after its backoff (about a second), so the
//     cache is stale until then;
//   - a watch that streams a complete list first (sendInitialEvents, the
//     reflector's way to list) marks it healthy once the list, which ends
//     with a bookmark, is in the cache;
//   - another watch, resumed from where the cache is, marks it healthy once
//     its first event is in the cache, or after watchSettle without one.
func (w *Watcher) track(ctx context.Context, name, resource string, store cache.Store, inner watch.Interface, listsFirst bool) watch.Interface {
	t := &trackedWatch{inner: inner, out: make(chan watch.Event), stop: make(chan struct{})}
	_, failures := w.state(name)
	go func() {
		defer close(t.out)
		var settle <-chan time.Time
		if !listsFirst {
			timer := time.NewTimer(watchSettle)
			defer timer.Stop()
			settle = timer.C
		}
		decided := false // healthy, or ended by an error
		for {
			select {
			case <-t.stop:
				return
			case <-settle:
				settle = nil
				if !decided {
					decided = true
					w.markHealthyUnlessFailedSince(name, failures)
				}
			case ev, ok := <-inner.ResultChan():
				if !ok {
					return
				}
				var heal func()
				switch {
				case ev.Type == watch.Error:
					decided, settle = true, nil
					w.markBroken(name)
					w.watchError(resource, apierrors.FromObject(ev.Object))
				case !decided && (!listsFirst || endsInitialEvents(ev)):
					decided, settle = true, nil
					rv := ""
					if m, err := meta.Accessor(ev.Object); err == nil {
						rv = m.GetResourceVersion()
					}
					heal = w.healer(ctx, name, store, rv)
				}
				select {
				case t.out <- ev:
				case <-t.stop:
					return
				}
				if heal != nil {
					heal() // once the reflector has the event
				}
			}
		}
	}()
	return t
}

// storePoll is how often healthyWhenStored looks at the cache, and
// storeWait how long at most.
const (
	storePoll = 5 * time.Millisecond
	storeWait = time.Minute
)

// healthyWhenStored marks a broken informer healthy once its cache holds
// the state of resource version rv, or a newer one. The reflector hands a
// list or an event over, and the informer stores it a moment later: a
// rebuild in between would render a stale cache beside fresh ones. Without
// rv, or when the cache does not follow resource versions (client-go's
// AtomicFIFO feature off), it marks it healthy at once.
func (w *Watcher) healthyWhenStored(ctx context.Context, name string, store cache.Store, rv string) {
	w.healer(ctx, name, store, rv)()
}

// healer is healthyWhenStored in two steps: it notes the informer's
// failures now, and the function it returns starts the wait, so that a
// failure in between is not cleared.
func (w *Watcher) healer(ctx context.Context, name string, store cache.Store, rv string) func() {
	broken, seen := w.state(name)
	switch {
	case !broken:
		return func() {}
	case rv == "" || !clientfeatures.FeatureGates().Enabled(clientfeatures.AtomicFIFO):
		return func() { w.markHealthyUnlessFailedSince(name, seen) }
	}
	return func() { go w.waitStored(ctx, name, store, rv, seen) }
}

// waitStored marks the informer healthy once its cache holds rv, unless it
// failed again since seen.
func (w *Watcher) waitStored(ctx context.Context, name string, store cache.Store, rv string, seen uint64) {
	tick := time.NewTicker(storePoll)
	defer tick.Stop()
	deadline := time.After(storeWait)
	for !reached(store.LastStoreSyncResourceVersion(), rv) {
		select {
		case <-ctx.Done():
			return
		case <-deadline: // the list never reached the cache; a later one will
			return
		case <-tick.C:
		}
	}
	w.markHealthyUnlessFailedSince(name, seen)
}

// reached reports whether the cache's resource version is rv or newer.
// Resource versions are opaque, but etcd's are integers, which client-go
// relies on too; other ones must be equal.
func reached(cur, rv string) bool {
	c, err1 := strconv.ParseUint(cur, 10, 64)
	r, err2 := strconv.ParseUint(rv, 10, 64)
	if err1 != nil || err2 != nil {
		return cur == rv
	}
	return c >= r
}

// endsInitialEvents reports the bookmark that ends the list a watch
// streams first.
func endsInitialEvents(ev watch.Event) bool {
	if ev.Type != watch.Bookmark {
		return false
	}
	m, err := meta.Accessor(ev.Object)
	return err == nil && m.GetAnnotations()[metav1.InitialEventsAnnotationKey] == "true"
}

// trackedWatch is a watch whose events pass through track.
type trackedWatch struct {
	inner watch.Interface
	out   chan watch.Event
	stop  chan struct{}
	once  sync.Once
}

func (t *trackedWatch) ResultChan() <-chan watch.Event { return t.out }

func (t *trackedWatch) Stop() {
	t.once.Do(func() { close(t.stop) })
	t.inner.Stop()
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
	if w.failures == nil {
		w.failures = make(map[string]uint64)
	}
	w.failures[name]++
	if _, ok := w.broken[name]; !ok {
		w.broken[name] = time.Now()
	}
}

func (w *Watcher) markHealthy(name string) {
	_, seen := w.state(name)
	w.markHealthyUnlessFailedSince(name, seen)
}

// markHealthyUnlessFailedSince marks an informer healthy unless it failed
// again after its count of failures was seen.
func (w *Watcher) markHealthyUnlessFailedSince(name string, seen uint64) {
	w.mu.Lock()
	_, was := w.broken[name]
	if w.failures[name] == seen {
		delete(w.broken, name)
	} else {
		was = false
	}
	w.mu.Unlock()
	if was {
		w.changed()
	}
}

// state says whether an informer is broken, and counts its failures.
func (w *Watcher) state(name string) (broken bool, failures uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, broken = w.broken[name]
	return broken, w.failures[name]
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
