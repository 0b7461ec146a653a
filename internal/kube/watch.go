package kube

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
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
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// WatcherOptions configure a Watcher.
type WatcherOptions struct {
	// OnChange is called, from informer goroutines, after any change to a
	// watched object, and when the watches are healthy again after a
	// failure. It must not block: schedule work, do not do it.
	OnChange func()
	// OnEndpointsChange, when set, is called instead of OnChange for a
	// change of EndpointSlices, with the Service they belong to (twice
	// when an update moves a slice from one Service to another). It must
	// not block either.
	OnEndpointsChange func(service model.ServiceRef)
	// OnWatchError is called with each failure to list or watch (other
	// than the normal end of a watch), for metrics and logs.
	OnWatchError func(resource string, err error)
	// Clock times the retries of failed calls and the health tracking
	// (when a watch has settled, how long to wait for a cache); nil means
	// the real clock.
	Clock clock.Clock
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
//
// With Selection.TLSSecrets it also keeps the kubernetes.io/tls Secrets of
// those namespaces (filtered by type on the server), with the data of only
// those that a Service names (tlsSecrets).
//
// Each informer's health, whether its cache may be stale, is kept by a
// cacheHealth; BrokenSince reports it.
type Watcher struct {
	services []cache.SharedIndexInformer
	slices   []cache.SharedIndexInformer
	// secrets are the Secrets' informers, and tls what they keep; both
	// nil without Selection.TLSSecrets.
	secrets []cache.SharedIndexInformer
	tls     *tlsSecrets
	client  kubernetes.Interface
	opts    WatcherOptions
	// clock times the retries and the health tracking.
	clock  clock.Clock
	health *cacheHealth

	// ingress is nil without Selection.IngressClass.
	ingress *ingressInformers
}

// NewWatcher creates the informers; Run starts them.
func NewWatcher(client kubernetes.Interface, sel Selection, opts WatcherOptions) (*Watcher, error) {
	w := &Watcher{opts: opts, clock: opts.Clock, client: client}
	if w.clock == nil {
		w.clock = clock.RealClock{}
	}
	w.health = newCacheHealth(w.clock, w.changed)
	if sel.TLSSecrets {
		w.tls = newTLSSecrets(w.clock)
	}
	selector := sel.serviceSelector()
	hasService, err := labels.NewRequirement(discoveryv1.LabelServiceName, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	sliceSelector := labels.NewSelector().Add(*hasService)
	for _, ns := range sel.namespaces() {
		svcInformer, err := w.newInformer(client, "services", ns, &corev1.Service{}, selector,
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return client.CoreV1().Services(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return client.CoreV1().Services(ns).Watch(ctx, o)
			})
		if err != nil {
			return nil, err
		}
		sliceInformer, err := w.newInformer(client, "endpointslices", ns, &discoveryv1.EndpointSlice{}, sliceSelector,
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
		if w.tls != nil {
			if err := w.watchTLSSecrets(client, ns, svcInformer, sel.Selector); err != nil {
				return nil, err
			}
		}
	}
	if sel.IngressClass != "" {
		var err error
		if w.ingress, err = w.newIngressInformers(client, sel); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// watchTLSSecrets makes the informer of the TLS Secrets of namespace ns
// (all with ""), and has the Services' informer of ns tell tls what its
// Services that selector selects (nil: all) name. (With an IngressClass
// the informer holds every Service; an unselected one names no Secret.)
func (w *Watcher) watchTLSSecrets(client kubernetes.Interface, ns string, services cache.SharedIndexInformer, selector labels.Selector) error {
	if err := services.SetTransform(func(obj any) (any, error) {
		obj, err := stripForRouting(obj)
		if svc, ok := obj.(*corev1.Service); ok {
			if selector == nil || selector.Matches(labels.Set(svc.Labels)) {
				w.tls.seen(svc)
			} else {
				w.tls.forget(svc)
			}
		}
		return obj, err
	}); err != nil {
		return err
	}
	if _, err := services.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: w.tls.deleted}); err != nil {
		return err
	}
	inf, err := w.newInformer(client, "secrets", ns, &corev1.Secret{}, labels.Everything(),
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = tlsSecretSelector
			return client.CoreV1().Secrets(ns).List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = tlsSecretSelector
			return client.CoreV1().Secrets(ns).Watch(ctx, o)
		})
	if err != nil {
		return err
	}
	if err := inf.SetTransform(w.tls.transform); err != nil {
		return err
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: w.tls.secretDeleted}); err != nil {
		return err
	}
	w.tls.indexers[ns] = inf.GetIndexer()
	w.secrets = append(w.secrets, inf)
	return nil
}

func (w *Watcher) newInformer(client kubernetes.Interface, resource, ns string, example runtime.Object, selector labels.Selector,
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
			w.health.beginRecovery(name).completeWhenStored(ctx, inf.GetStore(), rv)
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
			return w.health.trackWatch(ctx, name, inf.GetStore(), wi, listsFirst, func(err error) {
				w.watchError(resource, err)
			}), nil
		},
	}
	// A client that cannot stream lists (client-go's fake) says so, as with
	// client-go's own informers; the reflector then lists.
	indexers := cache.Indexers{}
	if resource == "endpointslices" {
		indexers[byService] = sliceService
	}
	inf = cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, client), example,
		cache.SharedIndexInformerOptions{ObjectDescription: name, Indexers: indexers})
	if err := inf.SetTransform(stripForRouting); err != nil {
		return nil, err
	}
	// Every failure of the API server is recorded where it shows: the list
	// and watch calls (retryTransient) and the watch streams (trackWatch). What
	// the reflector passes on here is one of those, or its own trouble:
	// only log it.
	if err := inf.SetWatchErrorHandlerWithContext(cache.DefaultWatchErrorHandler); err != nil {
		return nil, err
	}
	changed := func(...any) { w.changed() }
	switch resource {
	case "endpointslices":
		changed = w.slicesChanged
	case "ingresses":
		changed = w.ingressesChanged
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { changed(obj) },
		UpdateFunc: func(oldObj, newObj any) {
			o, ok1 := oldObj.(metav1.Object)
			n, ok2 := newObj.(metav1.Object)
			if ok1 && ok2 && o.GetResourceVersion() == n.GetResourceVersion() {
				return // a resync, not a change
			}
			changed(oldObj, newObj)
		},
		DeleteFunc: func(obj any) { changed(obj) },
	})
	return inf, err
}

// byService is the EndpointSlices' index by Service: "namespace/name".
const byService = "service"

// sliceService indexes an EndpointSlice by its Service.
func sliceService(obj any) ([]string, error) {
	if ref, ok := sliceRef(obj); ok {
		return []string{ref.Namespace + "/" + ref.Name}, nil
	}
	return nil, nil
}

// slicesChanged reports changed EndpointSlices by their Services to
// OnEndpointsChange, when it is set, else to OnChange.
func (w *Watcher) slicesChanged(objs ...any) {
	if w.opts.OnEndpointsChange == nil {
		w.changed()
		return
	}
	var refs []model.ServiceRef
	for _, obj := range objs {
		ref, ok := sliceRef(obj)
		if !ok {
			w.changed() // not one we know: rebuild it all
			return
		}
		if !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	for _, ref := range refs {
		w.opts.OnEndpointsChange(ref)
	}
}

// sliceRef is the Service of an EndpointSlice (or of a tombstone's); ok is
// false for anything else.
func sliceRef(obj any) (ref model.ServiceRef, ok bool) {
	if d, isTombstone := obj.(cache.DeletedFinalStateUnknown); isTombstone {
		obj = d.Obj
	}
	s, isSlice := obj.(*discoveryv1.EndpointSlice)
	if !isSlice || s.Labels[discoveryv1.LabelServiceName] == "" {
		return model.ServiceRef{}, false
	}
	return model.ServiceRef{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}, true
}

// Lookup returns the cached Service ref and its EndpointSlices; found is
// false when the Service is not in the cache. They are shared with the
// cache: callers must not modify them.
func (w *Watcher) Lookup(ref model.ServiceRef) (svc *corev1.Service, eps []*discoveryv1.EndpointSlice, found bool) {
	key := ref.Namespace + "/" + ref.Name
	for _, inf := range w.services {
		if obj, ok, err := inf.GetStore().GetByKey(key); err == nil && ok {
			svc, found = obj.(*corev1.Service)
			break
		}
	}
	if !found {
		return nil, nil, false
	}
	for _, inf := range w.slices {
		objs, err := inf.GetIndexer().ByIndex(byService, key)
		if err != nil {
			continue
		}
		for _, o := range objs {
			if s, ok := o.(*discoveryv1.EndpointSlice); ok {
				eps = append(eps, s)
			}
		}
	}
	return svc, eps, true
}

// transientBackoff spaces the retries of transient failures inside one
// list or watch call: 100 ms doubling to 2 s.
var transientBackoff = wait.Backoff{
	Duration: 100 * time.Millisecond,
	Factor:   2,
	Cap:      2 * time.Second,
	Steps:    math.MaxInt32, // grow until Cap, then stay there
}

// retryTransient runs a list or watch call, and while it fails because the
// API server cannot be reached or is briefly unavailable, runs it again
// after a short backoff (transientBackoff). The reflector's own backoff
// grows to 30 s during an outage, which would leave the config stale for
// that long after the API server is back. Other errors (such as 410 Gone,
// 429 or 403) go to the reflector, which handles and backs off.
//
// Failures are recorded (the informer counts as broken); a success is left
// to the caller, which knows when the cache is current again.
func (w *Watcher) retryTransient(ctx context.Context, name, resource string, call func() error) error {
	var last error
	err := poll(ctx, w.clock, transientBackoff.DelayFunc(), func(context.Context) (bool, error) {
		if last = call(); last == nil {
			return true, nil
		}
		w.recordFailure(name, resource, last)
		if !isTransient(last) {
			return false, last
		}
		return false, nil
	})
	if err != nil {
		return last // ctx ended or the failure is not transient: the call's error
	}
	return nil
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

// recordFailure notes a failed list or watch call: its informer is broken.
func (w *Watcher) recordFailure(name, resource string, err error) {
	if errors.Is(err, context.Canceled) {
		return // shutting down
	}
	w.health.recordFailure(name)
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

// BrokenSince returns when the oldest current list or watch failure began,
// or the zero time when every watch is healthy. While it is not zero, some
// cache may be stale (see cacheHealth for when an informer is healthy
// again). A Secret being fetched counts as a failure from its request,
// for at most maxSecretFetchWait.
func (w *Watcher) BrokenSince() time.Time {
	since := w.health.oldestFailure()
	if w.tls != nil {
		p := w.tls.pendingSince()
		if !p.IsZero() && w.clock.Since(p) < maxSecretFetchWait && (since.IsZero() || p.Before(since)) {
			since = p
		}
	}
	return since
}

// maxSecretFetchWait bounds how long Secret fetches hold every rebuild
// back (BrokenSince): a newly named Secret is usually fetched within
// milliseconds, but many named at once (a Service or Ingress author may
// name hundreds) queue behind the client's rate limit. Past it, rebuilds go
// on, and the hosts of the Secrets still being fetched have their HTTPS
// left out (TLSSecretNotFound) until each fetch ends and rebuilds again.
const maxSecretFetchWait = 5 * time.Second

// Run runs the informers (the Ingresses' too, with Selection.IngressClass)
// until ctx ends, and returns once they and the health tracking's
// goroutines have ended. The Secrets' informers start once the Services'
// and Ingresses' caches hold their first list, so that the Secrets'
// transform knows which Secrets are named.
func (w *Watcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, inf := range append(append(append([]cache.SharedIndexInformer(nil), w.services...), w.slices...), w.ingress.informers()...) {
		wg.Go(func() { inf.RunWithContext(ctx) })
	}
	if w.tls != nil {
		wg.Go(func() {
			var synced []cache.InformerSynced
			for _, inf := range w.services {
				synced = append(synced, inf.HasSynced)
			}
			if w.ingress != nil {
				for _, inf := range w.ingress.ingresses {
					synced = append(synced, inf.HasSynced)
				}
			}
			if !cache.WaitForCacheSync(ctx.Done(), synced...) {
				return
			}
			for _, inf := range w.secrets {
				wg.Go(func() { inf.RunWithContext(ctx) })
			}
			w.tls.runFetches(ctx, w.client, func(err error) { w.watchError("secrets", err) }, w.changed)
		})
	}
	wg.Wait()
	w.health.wait()
}

func (w *Watcher) informers() []cache.SharedIndexInformer {
	return append(append(append(append([]cache.SharedIndexInformer(nil), w.services...), w.slices...), w.ingress.informers()...), w.secrets...)
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
	w.ingress.addTo(&objs)
	if w.tls != nil {
		objs.Secrets = w.tls.objects()
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
