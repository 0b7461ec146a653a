package controller

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/coalesce"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// fakeSource is a Source whose state the test sets.
type fakeSource struct {
	synced chan struct{}
	mu     sync.Mutex
	objs   kube.Objects
	broken time.Time
}

func newFakeSource() *fakeSource { return &fakeSource{synced: make(chan struct{})} }

func (f *fakeSource) WaitForSync(ctx context.Context) error {
	select {
	case <-f.synced:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeSource) Objects() kube.Objects {
	f.mu.Lock()
	defer f.mu.Unlock()
	return kube.Objects{Services: append([]*corev1.Service(nil), f.objs.Services...), Secrets: append([]*corev1.Secret(nil), f.objs.Secrets...)}
}

func (f *fakeSource) setSecrets(secrets ...*corev1.Secret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs.Secrets = secrets
}

func (f *fakeSource) BrokenSince() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.broken
}

func (f *fakeSource) setServices(svcs ...*corev1.Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.objs.Services = svcs
}

func (f *fakeSource) setBroken(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.broken = t
}

func service(name string, annotations map[string]string) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Annotations: annotations},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
}

// harness runs a Controller, or, when Run is not started, lets the test do
// its loop's work by hand.
type harness struct {
	src      *fakeSource
	ctrl     *Controller
	metrics  *Metrics
	recorder *record.FakeRecorder
	output   string
	cancel   context.CancelFunc
	done     chan error
}

// start starts a Controller's Run.
func start(t *testing.T, output string) *harness {
	t.Helper()
	h := newHarness(t, output)
	var ctx context.Context
	ctx, h.cancel = context.WithCancel(context.Background())
	go func() { h.done <- h.ctrl.Run(ctx) }()
	t.Cleanup(func() {
		h.cancel()
		if err := <-h.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

// newHarness creates a Controller whose loop does not run: the test calls
// its work.
func newHarness(t *testing.T, output string) *harness {
	t.Helper()
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{
		src:      newFakeSource(),
		metrics:  NewMetrics(prometheus.NewRegistry()),
		recorder: record.NewFakeRecorder(100),
		output:   output,
		done:     make(chan error, 1),
	}
	h.ctrl = New(Options{
		Source:     h.src,
		Pipeline:   &Pipeline{Renderer: r, Output: output},
		Debounce:   20 * time.Millisecond,
		MaxDelay:   200 * time.Millisecond,
		StaleAfter: time.Hour,
		Recorder:   h.recorder,
		Metrics:    h.metrics,
		Log:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return h
}

// waitFor polls cond until it holds; a minute without means the controller
// hangs, not that the machine is slow.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 5*time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func (h *harness) file(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(h.output)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func (h *harness) routes(t *testing.T) int {
	t.Helper()
	return strings.Count(h.file(t), "\n    location /ns/")
}

func TestControllerWritesOnlyAfterSync(t *testing.T) {
	t.Parallel()
	h := start(t, filepath.Join(t.TempDir(), "default.conf"))
	h.src.setServices(service("a", nil))
	h.ctrl.Notify()
	// Run waits for the sync before its loop starts: nothing can be
	// written, however long the debounce is past.
	if _, err := os.Stat(h.output); !os.IsNotExist(err) {
		t.Fatalf("a config was written before the caches synced (%v)", err)
	}
	if err := h.ctrl.Ready(); err == nil || !strings.Contains(err.Error(), "not synced") {
		t.Errorf("Ready before sync = %v", err)
	}
	close(h.src.synced)
	waitFor(t, "the first write", func() bool { _, err := os.Stat(h.output); return err == nil })
	if n := h.routes(t); n != 1 {
		t.Errorf("%d routes in the first config, want 1", n)
	}
	waitFor(t, "ready", func() bool { return h.ctrl.Ready() == nil })
	if err := h.ctrl.Healthy(); err != nil {
		t.Errorf("Healthy = %v", err)
	}
}

func TestControllerCoalescesBursts(t *testing.T) {
	t.Parallel()
	h := start(t, filepath.Join(t.TempDir(), "default.conf"))
	close(h.src.synced)
	waitFor(t, "the first write", func() bool { return testutil.ToFloat64(h.metrics.Writes) == 1 })

	var svcs []*corev1.Service
	for i := range 200 {
		svcs = append(svcs, service(fmt.Sprintf("s%03d", i), nil))
		h.src.setServices(svcs...)
		h.ctrl.Notify()
	}
	latencies := func() uint64 {
		var m dto.Metric
		if err := h.metrics.EventToWrite.Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetHistogram().GetSampleCount()
	}
	// The latency is observed after the write is counted, and the file is
	// renamed into place before both.
	waitFor(t, "all 200 routes written", func() bool { return h.routes(t) == 200 && latencies() > 0 })
	if n := testutil.ToFloat64(h.metrics.Writes); n > 4 {
		t.Errorf("%v writes for one burst of 200 changes", n)
	}

	// Nothing changed: a notification rebuilds and writes nothing.
	writes, unchanged := testutil.ToFloat64(h.metrics.Writes), testutil.ToFloat64(h.metrics.WritesUnchanged)
	h.ctrl.Notify()
	waitFor(t, "an unchanged rebuild", func() bool { return testutil.ToFloat64(h.metrics.WritesUnchanged) > unchanged })
	if n := testutil.ToFloat64(h.metrics.Writes); n != writes {
		t.Errorf("an unchanged rebuild wrote the file")
	}
}

func TestControllerHoldsWhileWatchIsBroken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, filepath.Join(t.TempDir(), "default.conf"))
	ctx := context.Background()
	h.src.setServices(service("a", nil), service("b", nil))
	if out := h.ctrl.work(ctx); out != coalesce.Done {
		t.Fatalf("first rebuild = %+v", out)
	}

	// A broken watch may leave a half-updated cache: nothing is written,
	// and the change waits for the watch's recovery, which notifies (the
	// loop then works on it as on any change: TestLoopRetryOnChange), or
	// for the recheck.
	h.src.setBroken(time.Now())
	h.src.setServices(service("a", nil))
	want := coalesce.Outcome{RetryAfter: brokenRecheck, RetryOnChange: true}
	for range 2 {
		if out := h.ctrl.work(ctx); out != want {
			t.Fatalf("rebuild with a broken watch = %+v, want %+v", out, want)
		}
		if n := h.routes(t); n != 2 {
			t.Fatalf("%d routes written while the watch was broken, want the last good 2", n)
		}
	}
	h.src.setBroken(time.Time{})
	if out := h.ctrl.work(ctx); out != coalesce.Done {
		t.Fatalf("rebuild after the recovery = %+v", out)
	}
	if n := h.routes(t); n != 1 {
		t.Errorf("%d routes after the recovery, want 1", n)
	}
}

func TestControllerRemovesTemporaryFilesOfAKilledWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	left := filepath.Join(dir, ".default.conf.tmp-12345")
	if err := os.WriteFile(left, []byte("half a config"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, filepath.Join(dir, "default.conf"))
	close(h.src.synced)
	waitFor(t, "the first write", func() bool { return testutil.ToFloat64(h.metrics.Writes) == 1 })
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the temporary file of a killed writer is still there (%v)", err)
	}
}

func TestControllerStaleReadiness(t *testing.T) {
	t.Parallel()
	h := start(t, filepath.Join(t.TempDir(), "default.conf"))
	close(h.src.synced)
	waitFor(t, "ready", func() bool { return h.ctrl.Ready() == nil })
	h.src.setBroken(time.Now().Add(-2 * time.Hour))
	if err := h.ctrl.Ready(); err == nil || !strings.Contains(err.Error(), "may be stale") {
		t.Errorf("Ready with a watch broken for 2 h = %v", err)
	}
}

func TestControllerRetriesFailedWrites(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "conf.d") // missing at first
	h := newHarness(t, filepath.Join(dir, "default.conf"))
	ctx := context.Background()
	for _, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second} {
		if out := h.ctrl.work(ctx); out != coalesce.Retry(want) {
			t.Fatalf("failed rebuild = %+v, want a retry after %s", out, want)
		}
	}
	if n := testutil.ToFloat64(h.metrics.WriteErrors); n != 3 {
		t.Errorf("%v write errors counted, want 3", n)
	}
	if err := h.ctrl.Ready(); err == nil {
		t.Error("ready without a config on disk")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out := h.ctrl.work(ctx); out != coalesce.Done {
		t.Fatalf("retried rebuild = %+v", out)
	}
	if n := testutil.ToFloat64(h.metrics.Writes); n != 1 {
		t.Errorf("%v writes, want 1", n)
	}
	// The backoff starts again after a success.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	h.src.setServices(service("a", nil))
	if out := h.ctrl.work(ctx); out != coalesce.Retry(time.Second) {
		t.Errorf("failed rebuild after a success = %+v, want a retry after 1s", out)
	}
}

func TestControllerEvents(t *testing.T) {
	t.Parallel()
	h := newHarness(t, filepath.Join(t.TempDir(), "default.conf"))
	ctx := context.Background()
	bad := service("bad", map[string]string{model.AnnotationPath: "/a;b"})
	h.src.setServices(service("good", nil), bad)
	event := func() string {
		select {
		case e := <-h.recorder.Events:
			return e
		default: // the recorder is synchronous: an event is there by now
			return "no event"
		}
	}
	h.ctrl.work(ctx)
	if e := event(); !strings.HasPrefix(e, "Warning InvalidAnnotation not routed: annotation kube-nginx-sync.io/path=\"/a;b\"") {
		t.Errorf("event = %q", e)
	}
	// Rebuilds with the same problem do not repeat the event.
	for range 3 {
		h.ctrl.work(ctx)
	}
	if e := event(); e != "no event" {
		t.Errorf("repeated event %q", e)
	}
	fixed := bad.DeepCopy()
	fixed.Annotations[model.AnnotationPath] = "/fixed"
	h.src.setServices(service("good", nil), fixed)
	h.ctrl.work(ctx)
	if e := event(); e != "Normal Routed routed: the problem reported before is resolved" {
		t.Errorf("event = %q", e)
	}
}

func TestControllerRebuildWithoutNewConfigIsLight(t *testing.T) {
	t.Parallel()
	h := newHarness(t, filepath.Join(t.TempDir(), "default.conf"))
	ctx := context.Background()
	h.src.setServices(service("a", nil))
	if out := h.ctrl.work(ctx); out != coalesce.Done {
		t.Fatalf("rebuild that wrote a config = %+v, want Done", out)
	}
	// Nothing changed: no reload follows, so the rebuild must not count
	// against the cooldown of the next one.
	if out := h.ctrl.work(ctx); out != (coalesce.Outcome{Light: true}) {
		t.Fatalf("rebuild that wrote nothing = %+v, want Light", out)
	}
	h.src.setServices(service("a", nil), service("b", nil))
	if out := h.ctrl.work(ctx); out != coalesce.Done {
		t.Fatalf("rebuild that wrote a new config = %+v, want Done", out)
	}
}

// lookupSource is a fakeSource with a Lookup that answers from its own
// objects, which may differ from what Objects returns: so a test tells
// which of the two a rebuild read.
type lookupSource struct {
	*fakeSource
	objects, lookup kube.Objects
}

func (l *lookupSource) Objects() kube.Objects { return l.objects }

func (l *lookupSource) Lookup(ref model.ServiceRef) (*corev1.Service, []*discoveryv1.EndpointSlice, bool) {
	return lookupIn(l.lookup)(ref)
}

// TestControllerEndpointsAloneInTheLuaShape: a change of EndpointSlices
// alone is taken in from Lookup, the table alone written; any other change
// makes the rebuild whole again.
func TestControllerEndpointsAloneInTheLuaShape(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	table := filepath.Join(dir, luaplane.FileName)
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, Shape: nginxconf.ShapeLua, TableFile: table})
	if err != nil {
		t.Fatal(err)
	}
	objs := clusterOf(20)
	src := &lookupSource{fakeSource: newFakeSource(), objects: objs, lookup: objs}
	metrics := NewMetrics(prometheus.NewRegistry())
	ctrl := New(Options{Source: src, Pipeline: &Pipeline{Renderer: r, Output: filepath.Join(dir, "default.conf"), TableFile: table},
		Debounce: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond, StaleAfter: time.Hour, Metrics: metrics,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	if out := ctrl.work(ctx); out != coalesce.Done {
		t.Fatalf("first rebuild = %+v", out)
	}
	// The slices of svc-00004 change, as only Lookup sees them.
	changed := kube.Objects{Services: objs.Services, EndpointSlices: slices.Clone(objs.EndpointSlices)}
	s := changed.EndpointSlices[4].DeepCopy()
	s.Endpoints = s.Endpoints[:1]
	changed.EndpointSlices[4] = s
	src.lookup = changed
	ref := model.ServiceRef{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
	endpointsOf := func() int {
		t.Helper()
		tbl, _, err := luaplane.Read(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range tbl.Endpoints {
			if strings.HasPrefix(e.Key, ref.Namespace+"/"+ref.Name+":") {
				return len(e.Addrs)
			}
		}
		t.Fatalf("no endpoints of %s in the table", ref)
		return 0
	}
	ctrl.NotifyEndpoints(ref)
	if out := ctrl.work(ctx); out != (coalesce.Outcome{Light: true}) {
		t.Fatalf("rebuild of endpoints alone = %+v, want Light", out)
	}
	if n := endpointsOf(); n != 1 {
		t.Fatalf("%s has %d endpoints in the table, want the 1 that Lookup gives", ref, n)
	}
	if n := testutil.ToFloat64(metrics.Writes); n != 1 {
		t.Errorf("%v config writes, want 1 (the first)", n)
	}
	// Another change with it: the rebuild is whole, from Objects (which
	// still has 3 endpoints).
	ctrl.NotifyEndpoints(ref)
	ctrl.Notify()
	ctrl.work(ctx)
	if n := endpointsOf(); n != 3 {
		t.Fatalf("after a whole rebuild, %s has %d endpoints in the table, want the 3 of Objects", ref, n)
	}
}
