package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

func TestStripForRoutingKeepsWhatRoutingNeeds(t *testing.T) {
	t.Parallel()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "web", UID: "u1", ResourceVersion: "7",
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
			Labels:            map[string]string{"kube-nginx-sync.io/expose": "true"},
			Annotations: map[string]string{
				model.AnnotationHost: "a.example.com",
				"kubectl.kubernetes.io/last-applied-configuration": "{... a big blob ...}",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", ClusterIPs: []string{"10.96.0.1"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80}},
			Selector: map[string]string{"app": "web"},
		},
		Status: corev1.ServiceStatus{Conditions: []metav1.Condition{{Type: "x"}}},
	}
	got, err := stripForRouting(svc.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	want := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "web", UID: "u1", ResourceVersion: "7",
			CreationTimestamp: svc.CreationTimestamp,
			Labels:            svc.Labels,
			Annotations:       map[string]string{model.AnnotationHost: "a.example.com"},
		},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.1", Ports: svc.Spec.Ports},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stripped Service (-want +got):\n%s", diff)
	}

	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web-1", Labels: map[string]string{discoveryv1.LabelServiceName: "web"},
			Annotations: map[string]string{"endpoints.kubernetes.io/last-change-trigger-time": "x"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{"10.0.0.1", "10.0.0.2"},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
			Hostname:   ptr.To("pod-1"), NodeName: ptr.To("node-1"), Zone: ptr.To("z"),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "pod-1"},
		}},
	}
	gotSlice, err := stripForRouting(slice.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	wantSlice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "web-1", Labels: slice.Labels},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       slice.Ports,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses: []string{"10.0.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
	}
	if diff := cmp.Diff(wantSlice, gotSlice); diff != "" {
		t.Errorf("stripped EndpointSlice (-want +got):\n%s", diff)
	}
}

func TestIsTransient(t *testing.T) {
	t.Parallel()
	gr := schema.GroupResource{Resource: "services"}
	tests := []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("get: %w", syscall.ECONNRESET), true},
		{apierrors.NewServiceUnavailable("starting"), true},
		{apierrors.NewInternalError(errors.New("etcd")), true},
		{apierrors.NewTimeoutError("slow", 1), true},
		{apierrors.NewTooManyRequests("slow down", 1), false},
		{apierrors.NewForbidden(gr, "", errors.New("rbac")), false},
		{apierrors.NewResourceExpired("too old"), false},
		{context.Canceled, false},
	}
	for _, tt := range tests {
		if got := isTransient(tt.err); got != tt.want {
			t.Errorf("isTransient(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestWatcherHealth(t *testing.T) {
	t.Parallel()
	changes := 0
	w := &Watcher{broken: map[string]time.Time{}, opts: WatcherOptions{OnChange: func() { changes++ }}}
	if !w.BrokenSince().IsZero() {
		t.Fatal("broken at start")
	}
	w.recordAttempt("services", "services", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})
	first := w.BrokenSince()
	if first.IsZero() {
		t.Fatal("a refused list did not mark the watch broken")
	}
	w.recordAttempt("endpointslices", "endpointslices", errors.New("boom"))
	if got := w.BrokenSince(); !got.Equal(first) {
		t.Errorf("BrokenSince = %v, want the oldest failure %v", got, first)
	}
	w.recordAttempt("services", "services", nil)
	w.recordAttempt("endpointslices", "endpointslices", nil)
	if !w.BrokenSince().IsZero() {
		t.Error("still broken after both succeeded")
	}
	if changes != 2 {
		t.Errorf("%d change notifications on recovery, want 2", changes)
	}
}

// trackFixture is a Watcher whose informer "services" is broken, and a
// fake watch of it passing through track.
type trackFixture struct {
	w       *Watcher
	fake    *watch.FakeWatcher
	tracked watch.Interface
	store   cache.Store
	errs    chan error
}

func newTrackFixture(t *testing.T, listsFirst bool) *trackFixture {
	t.Helper()
	f := &trackFixture{fake: watch.NewFake(), store: cache.NewStore(cache.MetaNamespaceKeyFunc), errs: make(chan error, 10)}
	f.w = &Watcher{broken: map[string]time.Time{}, opts: WatcherOptions{
		OnWatchError: func(_ string, err error) { f.errs <- err },
	}}
	f.w.markBroken("services")
	ctx, cancel := context.WithCancel(context.Background())
	f.tracked = f.w.track(ctx, "services", "services", f.store, f.fake, listsFirst)
	t.Cleanup(func() { f.tracked.Stop(); cancel() })
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
	case <-time.After(5 * time.Second):
		t.Fatal("the event was not passed on")
	}
}

func (f *trackFixture) healthyWithin(d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if f.w.BrokenSince().IsZero() {
			return true
		}
	}
	return false
}

func svcAt(name, rv string) *corev1.Service {
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv}}
}

// A watch that ends with 410 Gone leaves the cache stale until the
// reflector lists again: the informer is broken meanwhile.
func TestTrackedWatchExpiredIsBroken(t *testing.T) {
	t.Parallel()
	f := newTrackFixture(t, false)
	f.w.markHealthy("services")
	f.send(t, watch.Event{Type: watch.Error, Object: &apierrors.NewResourceExpired("The resourceVersion for the provided watch is too old.").ErrStatus})
	if f.w.BrokenSince().IsZero() {
		t.Error("not broken after a 410 on the watch")
	}
	if err := <-f.errs; !apierrors.IsResourceExpired(err) {
		t.Errorf("OnWatchError got %v, want the 410", err)
	}
	if f.healthyWithin(2 * watchSettle) {
		t.Error("healthy again without a new list")
	}
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
	if f.healthyWithin(50 * time.Millisecond) {
		t.Fatal("healthy before the list reached the cache")
	}
	if err := f.store.Replace([]any{svcAt("a", "7")}, "9"); err != nil {
		t.Fatal(err)
	}
	if !f.healthyWithin(5 * time.Second) {
		t.Error("not healthy once the list is in the cache")
	}
}

// A resumed watch with nothing to say is healthy after watchSettle.
func TestTrackedWatchSettles(t *testing.T) {
	t.Parallel()
	f := newTrackFixture(t, false)
	if f.healthyWithin(watchSettle / 2) {
		t.Fatal("healthy before watchSettle")
	}
	if !f.healthyWithin(5 * time.Second) {
		t.Error("not healthy after watchSettle")
	}
}

// A recovery that reaches the cache after a newer failure does not clear
// that failure.
func TestTrackedWatchRecoveryDoesNotHideANewerFailure(t *testing.T) {
	t.Parallel()
	f := newTrackFixture(t, false)
	f.send(t, watch.Event{Type: watch.Added, Object: svcAt("a", "12")})
	f.w.markBroken("services") // the connection broke meanwhile
	if err := f.store.Add(svcAt("a", "12")); err != nil {
		t.Fatal(err)
	}
	if f.healthyWithin(100 * time.Millisecond) {
		t.Error("a stale recovery cleared a newer failure")
	}
}
