package kube

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
)

// watchSettle is how long a watch that was resumed after a failure must
// run without an error, when no event comes sooner, before its informer
// counts as healthy again. A server that cannot resume it from its
// resource version says so at once, with an error event.
const watchSettle = 250 * time.Millisecond

// storePoll is how often a recovery looks at the cache for the resource
// version it waits for, and storeWait how long at most.
const (
	storePoll = 5 * time.Millisecond
	storeWait = time.Minute
)

// cacheHealth knows, for each informer, whether its cache may be stale, so
// that no config is written from a mix of fresh and stale caches: while any
// informer is broken, Watcher.BrokenSince is not zero and the controller
// keeps the last file.
//
// An informer is broken from the first failure of its list or watch calls,
// or the first ERROR event on its watch, until its cache is known to have
// caught up. After an ERROR event (410 Gone, "too old resource version",
// when etcd's history was compacted past the watch's resource version) the
// reflector keeps the cache as it was and lists again only after its
// backoff (about a second): the informer stays broken until that list is
// in the cache. It recovers:
//
//   - after a list, once the cache holds the list: the reflector hands a
//     list over and the informer stores it a moment later, and a rebuild in
//     between would render a stale cache beside fresh ones;
//   - after a watch that streams a complete list first (sendInitialEvents,
//     the reflector's way to list), once the cache holds the bookmark that
//     ends the list;
//   - after a watch resumed from where the cache is, once the cache holds
//     its first event, or after watchSettle without an event or an error.
//
// "Holds" means the cache's resource version has reached the one of the
// list or event. Without one to wait for, or when the cache does not record
// it (client-go's AtomicFIFO feature off), the informer recovers as soon as
// the reflector has the list or event. A cache that does not reach it
// within storeWait leaves the informer broken until a later list.
//
// A recovery counts only if the informer has not failed again since it
// began: a list or event that reaches the cache after a newer failure does
// not clear that failure. Each return to health calls onRecover, so that a
// rebuild held back meanwhile runs then.
type cacheHealth struct {
	clock clock.Clock
	// onRecover is called, without the lock held, each time an informer is
	// healthy again.
	onRecover func()
	// background counts the goroutines that follow watches and wait for
	// caches; they end with the context of their list or watch call. Once
	// wait has begun (those contexts have ended), no more start: a list
	// the reflector left running can still return.
	background sync.WaitGroup
	bgMu       sync.Mutex
	bgClosed   bool

	mu sync.Mutex
	// brokenSince maps each broken informer's name to the time of its
	// first failure since its cache was last known current. Healthy
	// informers are absent.
	brokenSince map[string]time.Time
	// failures counts each informer's failures, never reset: a recovery
	// compares it with the count when it began.
	failures map[string]uint64
}

func newCacheHealth(clk clock.Clock, onRecover func()) *cacheHealth {
	return &cacheHealth{
		clock:       clk,
		onRecover:   onRecover,
		brokenSince: make(map[string]time.Time),
		failures:    make(map[string]uint64),
	}
}

// recordFailure marks an informer broken, from now unless it already was.
func (h *cacheHealth) recordFailure(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failures[name]++
	if _, broken := h.brokenSince[name]; !broken {
		h.brokenSince[name] = h.clock.Now()
	}
}

// oldestFailure returns when the informer broken longest failed, or the
// zero time when every informer is healthy.
func (h *cacheHealth) oldestFailure() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var oldest time.Time
	for _, t := range h.brokenSince {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
}

// wait blocks until the goroutines that follow watches and wait for caches
// have ended. Call it once their contexts have ended.
func (h *cacheHealth) wait() {
	h.bgMu.Lock()
	h.bgClosed = true
	h.bgMu.Unlock()
	h.background.Wait()
}

// goBackground runs f in a goroutine that wait joins, and reports whether
// it did (not once wait has begun).
func (h *cacheHealth) goBackground(f func()) bool {
	h.bgMu.Lock()
	defer h.bgMu.Unlock()
	if h.bgClosed {
		return false
	}
	h.background.Go(f)
	return true
}

// recovery is an informer's way back to health, begun when a list or watch
// event shows that its cache is catching up.
type recovery struct {
	health *cacheHealth
	name   string
	// needed says that the informer was broken when the recovery began;
	// otherwise there is nothing to recover from (a later failure needs a
	// later recovery).
	needed bool
	// failuresAtStart is the informer's count of failures when the
	// recovery began.
	failuresAtStart uint64
}

// beginRecovery notes an informer's state now, for a recovery that
// completes later.
func (h *cacheHealth) beginRecovery(name string) recovery {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, broken := h.brokenSince[name]
	return recovery{health: h, name: name, needed: broken, failuresAtStart: h.failures[name]}
}

// complete marks the informer healthy, unless it failed again since the
// recovery began.
func (r recovery) complete() {
	if !r.needed {
		return
	}
	h := r.health
	h.mu.Lock()
	_, wasBroken := h.brokenSince[r.name]
	recovered := wasBroken && h.failures[r.name] == r.failuresAtStart
	if recovered {
		delete(h.brokenSince, r.name)
	}
	h.mu.Unlock()
	if recovered && h.onRecover != nil {
		h.onRecover()
	}
}

// completeWhenStored completes the recovery once store holds resource
// version rv or a newer one; it does not block. Without rv, or when the
// store does not record resource versions, it completes at once.
func (r recovery) completeWhenStored(ctx context.Context, store cache.Store, rv string) {
	switch {
	case !r.needed:
		return
	case rv == "" || !clientfeatures.FeatureGates().Enabled(clientfeatures.AtomicFIFO):
		r.complete()
		return
	}
	h := r.health
	h.goBackground(func() {
		start := h.clock.Now()
		err := poll(ctx, h.clock, wait.Backoff{Duration: storePoll}.DelayFunc(), func(context.Context) (bool, error) {
			switch {
			case reached(store.LastStoreSyncResourceVersion(), rv):
				return true, nil
			case h.clock.Since(start) >= storeWait:
				return false, errNeverStored
			}
			return false, nil
		})
		if err == nil {
			r.complete()
		}
		// Otherwise ctx ended, or the list never reached the cache: a
		// later list will bring the informer back.
	})
}

var errNeverStored = errors.New("the cache did not reach the resource version")

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

// trackWatch passes the events of an informer's watch on to the reflector
// and keeps the informer's health from them:
//
//   - an ERROR event marks the informer broken, and goes to onError;
//   - a watch that streams a complete list first (listsFirst) begins a
//     recovery with the bookmark that ends the list, which completes once
//     the bookmark is in the cache;
//   - another watch, resumed from where the cache is, begins one with its
//     first event, which completes once the event is in the cache, or
//     completes the recovery begun with the watch after watchSettle without
//     an event.
//
// After the first of these, the watch's later events do not change the
// informer's health, except for an ERROR event.
func (h *cacheHealth) trackWatch(ctx context.Context, name string, store cache.Store, inner watch.Interface,
	listsFirst bool, onError func(error)) watch.Interface {
	t := &trackedWatch{inner: inner, out: make(chan watch.Event), stop: make(chan struct{})}
	// quiet is the recovery that a resumed watch completes when it has
	// run for watchSettle without an event.
	quiet := h.beginRecovery(name)
	var settle clock.Timer
	if !listsFirst {
		settle = h.clock.NewTimer(watchSettle)
	}
	started := h.goBackground(func() {
		defer close(t.out)
		var settled <-chan time.Time
		if settle != nil {
			defer settle.Stop()
			settled = settle.C()
		}
		// resolved says that this watch began a recovery or failed: its
		// later events, but for an ERROR, do not change the health.
		resolved := false
		resolve := func() {
			resolved, settled = true, nil
			if settle != nil {
				settle.Stop()
			}
		}
		for {
			select {
			case <-t.stop:
				return
			case <-ctx.Done():
				return
			case <-settled:
				resolve()
				quiet.complete()
			case ev, ok := <-inner.ResultChan():
				if !ok {
					return
				}
				// caughtUp, when set, waits for the event to reach the
				// cache once the reflector has it.
				var caughtUp func()
				switch {
				case ev.Type == watch.Error:
					resolve()
					h.recordFailure(name)
					onError(apierrors.FromObject(ev.Object))
				case !resolved && (!listsFirst || endsInitialEvents(ev)):
					resolve()
					r := h.beginRecovery(name)
					rv := resourceVersion(ev.Object)
					caughtUp = func() { r.completeWhenStored(ctx, store, rv) }
				}
				select {
				case t.out <- ev:
				case <-t.stop:
					return
				}
				if caughtUp != nil {
					caughtUp()
				}
			}
		}
	})
	if !started { // shutting down: the watch ends at once
		close(t.out)
		if settle != nil {
			settle.Stop()
		}
	}
	return t
}

// resourceVersion returns an object's resource version, or "".
func resourceVersion(obj any) string {
	m, err := meta.Accessor(obj)
	if err != nil {
		return ""
	}
	return m.GetResourceVersion()
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

// trackedWatch is a watch whose events pass through trackWatch.
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
