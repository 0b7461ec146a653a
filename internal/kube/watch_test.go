package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	testclock "k8s.io/utils/clock/testing"
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

// A refused call is retried after 100 ms, doubling to 2 s, until it
// succeeds; each failure marks the informer broken, and the success is
// left to the caller.
func TestRetryTransientBacksOff(t *testing.T) {
	t.Parallel()
	clk := testclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var reported atomic.Int32
	w := &Watcher{clock: clk, health: newCacheHealth(clk, nil), opts: WatcherOptions{
		OnWatchError: func(string, error) { reported.Add(1) },
	}}
	delays := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond,
		800 * time.Millisecond, 1600 * time.Millisecond, 2 * time.Second, 2 * time.Second}
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- w.retryTransient(context.Background(), "services", "services", func() error {
			if int(calls.Add(1)) <= len(delays) {
				return &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
			}
			return nil
		})
	}()
	for i, d := range delays {
		waitForWaiters(t, clk, 1)
		clk.Step(d - time.Millisecond)
		if got := calls.Load(); got != int32(i+1) {
			t.Fatalf("retry %d: %d calls %s after the last failure, want %d", i+1, got, d-time.Millisecond, i+1)
		}
		clk.Step(time.Millisecond)
	}
	if err := <-done; err != nil {
		t.Fatalf("retryTransient = %v, want success", err)
	}
	if calls.Load() != int32(len(delays)+1) || reported.Load() != int32(len(delays)) {
		t.Errorf("%d calls, %d failures reported; want %d, %d", calls.Load(), reported.Load(), len(delays)+1, len(delays))
	}
	if w.BrokenSince().IsZero() {
		t.Error("healthy after the call succeeded: the cache is not current yet")
	}
}

// Other failures go to the reflector at once; so does the last failure
// when ctx ends during the backoff.
func TestRetryTransientGivesUp(t *testing.T) {
	t.Parallel()
	clk := testclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	w := &Watcher{clock: clk, health: newCacheHealth(clk, nil)}

	gone := apierrors.NewResourceExpired("too old")
	calls := 0
	err := w.retryTransient(context.Background(), "services", "services", func() error { calls++; return gone })
	if err != gone || calls != 1 {
		t.Errorf("a 410: %v after %d calls, want it after 1", err, calls)
	}

	refused := &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- w.retryTransient(ctx, "endpointslices", "endpointslices", func() error { return refused })
	}()
	waitForWaiters(t, clk, 1)
	cancel()
	if err := <-done; err != refused {
		t.Errorf("cancelled during the backoff: %v, want the last failure", err)
	}
}

// A cancelled call is the end of the watch, not a failure.
func TestRecordFailureIgnoresCancel(t *testing.T) {
	t.Parallel()
	clk := testclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var reported []string
	w := &Watcher{clock: clk, health: newCacheHealth(clk, nil), opts: WatcherOptions{
		OnWatchError: func(resource string, _ error) { reported = append(reported, resource) },
	}}
	w.recordFailure("services in a", "services", fmt.Errorf("list: %w", context.Canceled))
	if !w.BrokenSince().IsZero() || len(reported) != 0 {
		t.Fatalf("a cancelled call counted as a failure (reported %v)", reported)
	}
	w.recordFailure("services in a", "services", errors.New("boom"))
	if !w.BrokenSince().Equal(clk.Now()) || !slices.Equal(reported, []string{"services"}) {
		t.Errorf("BrokenSince %v, reported %v; want %v, [services]", w.BrokenSince(), reported, clk.Now())
	}
}

// A Watcher whose first list is refused retries it on its clock, and is
// healthy once the list is in the cache; Run returns with every goroutine
// it started.
func TestWatcherRecoversFromARefusedList(t *testing.T) {
	t.Parallel()
	clk := testclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	client := k8sfake.NewClientset(objects()...)
	var lists atomic.Int32
	client.PrependReactor("list", "services", func(k8stesting.Action) (bool, runtime.Object, error) {
		if lists.Add(1) == 1 {
			return true, nil, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}
		}
		return false, nil, nil
	})
	var changes atomic.Int32
	w, err := NewWatcher(client, Selection{Namespaces: []string{"a"}}, WatcherOptions{
		Clock:    clk,
		OnChange: func() { changes.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { w.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()

	waitFor(t, "the refused list", func() bool { return !w.BrokenSince().IsZero() })
	waitFor(t, "the retry, and its list in the cache", func() bool {
		clk.Step(transientBackoff.Duration)
		return w.BrokenSince().IsZero()
	})
	if err := w.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := names(w.Objects().Services); got != "a/hidden a/web" && got != "a/web a/hidden" {
		t.Errorf("services %q", got)
	}
	if lists.Load() != 2 || changes.Load() == 0 {
		t.Errorf("%d lists, %d change notifications; want 2, some", lists.Load(), changes.Load())
	}
}

// TestWatcherEndpointsChangesAndLookup: with OnEndpointsChange, a change of
// EndpointSlices is reported by Service (both, for a slice moved to
// another), not to OnChange; Lookup finds a Service and its slices.
func TestWatcherEndpointsChangesAndLookup(t *testing.T) {
	t.Parallel()
	client := k8sfake.NewClientset(objects()...)
	var mu sync.Mutex
	var refs []model.ServiceRef
	var changes atomic.Int32
	w, ctx := runWatcher(t, client, Selection{Namespaces: []string{"a", "b"}}, WatcherOptions{
		OnChange: func() { changes.Add(1) },
		OnEndpointsChange: func(ref model.ServiceRef) {
			mu.Lock()
			refs = append(refs, ref)
			mu.Unlock()
		},
	})
	svc, eps, found := w.Lookup(model.ServiceRef{Namespace: "a", Name: "web"})
	if !found || svc.Name != "web" || names(eps) != "a/web-1" {
		t.Fatalf("Lookup(a/web) = %v, %v, %v", svc, eps, found)
	}
	if _, _, found := w.Lookup(model.ServiceRef{Namespace: "a", Name: "nope"}); found {
		t.Error("Lookup found a Service that does not exist")
	}
	waitFor(t, "the first list's events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(refs) >= 3
	})
	mu.Lock()
	refs = nil
	mu.Unlock()
	before := changes.Load()
	// A slice moves from a/web to a/hidden: both are reported.
	s, err := client.DiscoveryV1().EndpointSlices("a").Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Labels[discoveryv1.LabelServiceName] = "hidden"
	s.ResourceVersion = "2"
	if _, err := client.DiscoveryV1().EndpointSlices("a").Update(ctx, s, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := []model.ServiceRef{{Namespace: "a", Name: "web"}, {Namespace: "a", Name: "hidden"}}
	waitFor(t, "the update's Services", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(refs, want)
	})
	if changes.Load() != before {
		t.Error("a change of EndpointSlices went to OnChange too")
	}
	if _, eps, _ := w.Lookup(model.ServiceRef{Namespace: "a", Name: "hidden"}); names(eps) != "a/hidden-1 a/web-1" && names(eps) != "a/web-1 a/hidden-1" {
		t.Errorf("after the move, a/hidden's slices are %q", names(eps))
	}
}

// runWatcher creates a Watcher of client, runs it until the test ends, and
// waits for its caches' first list; ctx ends with the test.
func runWatcher(t *testing.T, client kubernetes.Interface, sel Selection, opts WatcherOptions) (*Watcher, context.Context) {
	t.Helper()
	w, err := NewWatcher(client, sel, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { w.Run(ctx); close(ran) }()
	t.Cleanup(func() { cancel(); <-ran })
	if err := w.WaitForSync(ctx); err != nil {
		t.Fatal(err)
	}
	return w, ctx
}
