package kube

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	testclock "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestCacheHealthBrokenSince(t *testing.T) {
	t.Parallel()
	clk := testclock.NewFakeClock(t0)
	recoveries := 0
	h := newCacheHealth(clk, func() { recoveries++ })
	if !h.oldestFailure().IsZero() {
		t.Fatal("broken at start")
	}
	h.recordFailure("services")
	clk.Step(time.Second)
	h.recordFailure("endpointslices")
	h.recordFailure("services")
	if got := h.oldestFailure(); !got.Equal(t0) {
		t.Errorf("oldest failure %v, want the first one, %v", got, t0)
	}
	h.beginRecovery("services").complete()
	if got := h.oldestFailure(); !got.Equal(t0.Add(time.Second)) {
		t.Errorf("oldest failure %v once services recovered, want %v", got, t0.Add(time.Second))
	}
	h.beginRecovery("endpointslices").complete()
	if !h.oldestFailure().IsZero() {
		t.Error("still broken after both recovered")
	}
	h.beginRecovery("services").complete()
	if recoveries != 2 {
		t.Errorf("%d recoveries reported, want 2 (one for each broken informer)", recoveries)
	}
}

// A recovery noticed after a newer failure does not clear that failure.
func TestRecoveryDoesNotClearANewerFailure(t *testing.T) {
	t.Parallel()
	clk := testclock.NewFakeClock(t0)
	recoveries := 0
	h := newCacheHealth(clk, func() { recoveries++ })
	h.recordFailure("services")
	r := h.beginRecovery("services")
	h.recordFailure("services")
	r.complete()
	if h.oldestFailure().IsZero() || recoveries != 0 {
		t.Error("a recovery begun before a failure cleared it")
	}
	h.beginRecovery("services").complete()
	if !h.oldestFailure().IsZero() || recoveries != 1 {
		t.Error("a recovery begun after the failure did not clear it")
	}
}

// trackFixture is a cacheHealth on a fake clock whose informer "services"
// is broken, and a fake watch of it passing through trackWatch.
type trackFixture struct {
	clock     *testclock.FakeClock
	health    *cacheHealth
	fake      *watch.FakeWatcher
	tracked   watch.Interface
	store     cache.Store
	errs      chan error
	recovered chan struct{}
}

func newTrackFixture(t *testing.T, listsFirst bool) *trackFixture {
	t.Helper()
	f := &trackFixture{
		clock: testclock.NewFakeClock(t0), fake: watch.NewFake(), store: cache.NewStore(cache.MetaNamespaceKeyFunc),
		errs: make(chan error, 10), recovered: make(chan struct{}, 10),
	}
	f.health = newCacheHealth(f.clock, func() { f.recovered <- struct{}{} })
	f.health.recordFailure("services")
	ctx, cancel := context.WithCancel(context.Background())
	f.tracked = f.health.trackWatch(ctx, "services", f.store, f.fake, listsFirst, func(err error) { f.errs <- err })
	t.Cleanup(func() {
		f.tracked.Stop()
		cancel()
		f.health.wait()
	})
	return f
}

// send passes an event through the tracked watch, as the reflector reads it.
func (f *trackFixture) send(t *testing.T, ev watch.Event) {
	t.Helper()
	go f.fake.Action(ev.Type, ev.Object)
	select {
	case got := <-f.tracked.ResultChan():
		if got.Type != ev.Type {
			t.Fatalf("passed on a %s event, want %s", got.Type, ev.Type)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the event was not passed on")
	}
}

func (f *trackFixture) broken() bool { return !f.health.oldestFailure().IsZero() }

// expectRecovery waits for the informer's recovery to be reported.
func (f *trackFixture) expectRecovery(t *testing.T) {
	t.Helper()
	select {
	case <-f.recovered:
	case <-time.After(10 * time.Second):
		t.Fatal("no recovery")
	}
	if f.broken() {
		t.Error("broken after its recovery")
	}
}

// expectBroken checks that the informer is broken and no recovery was
// reported.
func (f *trackFixture) expectBroken(t *testing.T, when string) {
	t.Helper()
	select {
	case <-f.recovered:
		t.Errorf("%s: recovered", when)
	default:
	}
	if !f.broken() {
		t.Errorf("%s: healthy", when)
	}
}

func svcAt(name, rv string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
}

// A watch that ends with 410 Gone leaves the cache stale until the
// reflector lists again: the informer is broken meanwhile, whatever comes
// later on that watch.
func TestTrackedWatchExpiredIsBroken(t *testing.T) {
	t.Parallel()
	f := newTrackFixture(t, false)
	f.health.beginRecovery("services").complete()
	<-f.recovered
	f.send(t, watch.Event{Type: watch.Error, Object: &apierrors.NewResourceExpired("The resourceVersion for the provided watch is too old.").ErrStatus})
	if !f.broken() {
		t.Error("not broken after a 410 on the watch")
	}
	if err := <-f.errs; !apierrors.IsResourceExpired(err) {
		t.Errorf("onError got %v, want the 410", err)
	}
	f.clock.Step(2 * watchSettle)
	f.send(t, watch.Event{Type: watch.Added, Object: svcAt("a", "13")})
	if err := f.store.Add(svcAt("a", "13")); err != nil {
		t.Fatal(err)
	}
	if f.clock.HasWaiters() {
		t.Error("the watch waits for the cache after its 410")
	}
	f.expectBroken(t, "after the 410, watchSettle and an event")
}

// A watch that streams a list is healthy once the list is in the cache, not
// when its last event passes.
func TestTrackedWatchListHealthyWhenStored(t *testing.T) {
	t.Parallel()
	f := newTrackFixture(t, true)
	f.send(t, watch.Event{Type: watch.Added, Object: svcAt("a", "7")})
	end := svcAt("", "9")
	end.Annotations = map[string]string{metav1.InitialEventsAnnotationKey: "true"}
	f.send(t, watch.Event{Type: watch.Bookmark, Object: end})
	// The recovery looks at the cache, then again after storePoll.
	waitForWaiters(t, f.clock, 1)
	f.clock.Step(storePoll)
	waitForWaiters(t, f.clock, 1)
	f.expectBroken(t, "before the list reached the cache")
	if err := f.store.Replace([]any{svcAt("a", "7")}, "9"); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(storePoll)
	f.expectRecovery(t)
}

// A resumed watch is healthy once its first event is in the cache.
func TestTrackedWatchHealthyWhenEventStored(t *testing.T) {
	t.Parallel()
	f := newTrackFixture(t, false)
	f.send(t, watch.Event{Type: watch.Added, Object: svcAt("a", "12")})
	waitForWaiters(t, f.clock, 1) // the recovery's, as the event stopped watchSettle's
	f.clock.Step(watchSettle)
	waitForWaiters(t, f.clock, 1)
	f.expectBroken(t, "before the event reached the cache")
	if err := f.store.Add(svcAt("a", "12")); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(storePoll)
	f.expectRecovery(t)
}

// A resumed watch with nothing to say is healthy after watchSettle.
func TestTrackedWatchSettles(t *testing.T) {
	t.Parallel()
	f := newTrackFixture(t, false)
	f.clock.Step(watchSettle - time.Nanosecond)
	f.expectBroken(t, "before watchSettle")
	f.clock.Step(time.Nanosecond)
	f.expectRecovery(t)
}

// A recovery that reaches the cache after a newer failure does not clear
// that failure.
func TestTrackedWatchRecoveryDoesNotHideANewerFailure(t *testing.T) {
	t.Parallel()
	f := newTrackFixture(t, false)
	f.send(t, watch.Event{Type: watch.Added, Object: svcAt("a", "12")})
	waitForWaiters(t, f.clock, 1)
	f.health.recordFailure("services") // the connection broke meanwhile
	if err := f.store.Add(svcAt("a", "12")); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(storePoll)
	// The recovery sees the event in the cache and ends.
	f.tracked.Stop()
	f.health.wait()
	f.expectBroken(t, "once the event before the failure reached the cache")
}

// Once the Watcher has stopped, a watch that a late call opens ends at
// once, and a late list waits for nothing.
func TestCacheHealthAfterWait(t *testing.T) {
	t.Parallel()
	clk := testclock.NewFakeClock(t0)
	h := newCacheHealth(clk, nil)
	h.recordFailure("services")
	h.wait()
	tracked := h.trackWatch(context.Background(), "services", cache.NewStore(cache.MetaNamespaceKeyFunc), watch.NewFake(), false, nil)
	if _, ok := <-tracked.ResultChan(); ok {
		t.Error("a watch after wait passed an event on")
	}
	h.beginRecovery("services").completeWhenStored(context.Background(), cache.NewStore(cache.MetaNamespaceKeyFunc), "5")
	if clk.HasWaiters() {
		t.Error("timers set after wait")
	}
	h.wait()
}
