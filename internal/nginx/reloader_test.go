package nginx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/coalesce"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// fakeNginx is an nginx whose answers the test sets. Each reload replaces
// the worker generation with the next PIDs.
type fakeNginx struct {
	clock *clocktesting.FakeClock
	done  chan struct{}

	mu sync.Mutex
	// validateErr is Validate's answer; validateTakes is how far it moves
	// the fake clock.
	validateErr   error
	validateTakes time.Duration
	validations   int
	// reloadErr is Reload's answer; served, when set, is the version the
	// new workers serve instead of the expected one.
	reloadErr error
	served    string
	reloads   []Expect
	workers   []int
	nextPID   int
	// draining are the PIDs Resident reports alive besides the workers.
	draining []int
}

func newFakeNginx(c *clocktesting.FakeClock) *fakeNginx {
	return &fakeNginx{clock: c, done: make(chan struct{}), workers: []int{100, 101}, nextPID: 102}
}

func (f *fakeNginx) Validate(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.validations++
	if f.clock != nil {
		f.clock.Step(f.validateTakes)
	}
	return f.validateErr
}

func (f *fakeNginx) Reload(_ context.Context, want Expect) (Reloaded, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reloads = append(f.reloads, want)
	if f.reloadErr != nil {
		return Reloaded{}, f.reloadErr
	}
	old := f.workers
	f.workers = []int{f.nextPID, f.nextPID + 1}
	f.nextPID += 2
	served := want.Version
	if f.served != "" {
		served = f.served
	}
	return Reloaded{Replaced: old, Workers: slices.Clone(f.workers), Served: served}, nil
}

func (f *fakeNginx) Workers() ([]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.workers), nil
}

func (f *fakeNginx) Resident(pids []int) ([]int, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var live []int
	for _, p := range pids {
		if slices.Contains(f.workers, p) || slices.Contains(f.draining, p) {
			live = append(live, p)
		}
	}
	return live, int64(len(live)) << 20
}

func (f *fakeNginx) PID() int              { return 99 }
func (f *fakeNginx) Done() <-chan struct{} { return f.done }
func (f *fakeNginx) ExitError() error      { return errors.New("exit status 1") }

func (f *fakeNginx) reloadCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reloads)
}

// reloaderBed is a Reloader over a temporary folder, a fake nginx and a
// fake clock; the test calls its work by hand unless it starts Run.
type reloaderBed struct {
	t       *testing.T
	dir     string
	clock   *clocktesting.FakeClock
	nginx   *fakeNginx
	metrics *Metrics
	r       *Reloader
}

func newReloaderBed(t *testing.T, opts ReloaderOptions) *reloaderBed {
	t.Helper()
	b := &reloaderBed{t: t, dir: t.TempDir(), clock: clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	b.nginx = newFakeNginx(b.clock)
	b.metrics = NewMetrics(prometheus.NewRegistry())
	b.writeConfig("a")
	fp, err := Fingerprint(b.dir)
	if err != nil {
		t.Fatal(err)
	}
	opts.Nginx, opts.ConfigDir, opts.StartedWith = b.nginx, b.dir, fp
	opts.Metrics, opts.Log, opts.Clock = b.metrics, slog.New(slog.NewTextHandler(io.Discard, nil)), b.clock
	if opts.Validate == "" {
		opts.Validate = ValidateNever
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	b.r = NewReloader(opts)
	b.r.confirmStart()
	return b
}

// writeConfig writes a rendered config with one route named name, and
// returns its version.
func (b *reloaderBed) writeConfig(name string) string {
	b.t.Helper()
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 8080, StatusPort: 18081})
	if err != nil {
		b.t.Fatal(err)
	}
	port := model.ServicePort{Namespace: "ns", Name: name, Port: "http"}
	cfg := model.Config{
		Servers: []model.Server{{Locations: []model.Location{{
			Path: "/ns/" + name + "/", Service: port, Mode: model.UpstreamEndpoints, Upstream: port.UpstreamName(),
		}}}},
		Upstreams: []model.Upstream{{Name: port.UpstreamName(), Backends: []netip.AddrPort{netip.MustParseAddrPort("198.18.0.1:8080")}}},
	}
	data, err := r.Render(cfg, 1)
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "default.conf"), data, 0o644); err != nil {
		b.t.Fatal(err)
	}
	h, err := nginxconf.Verify(data)
	if err != nil {
		b.t.Fatal(err)
	}
	return h.Version
}

func (b *reloaderBed) status() Status {
	b.t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dir, StatusFile))
	if err != nil {
		b.t.Fatal(err)
	}
	var s Status
	if err := json.Unmarshal(data, &s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

func (b *reloaderBed) work() coalesce.Outcome { return b.r.work(context.Background()) }

func (b *reloaderBed) reloads(result string) float64 {
	return testutil.ToFloat64(b.metrics.Reloads.WithLabelValues(result))
}

func TestReloaderReloadsWhatChanged(t *testing.T) {
	t.Parallel()
	b := newReloaderBed(t, ReloaderOptions{})
	if out := b.work(); out != coalesce.Done || b.nginx.reloadCount() != 0 {
		t.Fatalf("work on the config nginx started with = %+v, %d reloads; want Done, none", out, b.nginx.reloadCount())
	}
	b.nginx.draining = []int{100, 101} // the first generation has connections
	version := b.writeConfig("b")
	if out := b.work(); out != coalesce.Done {
		t.Fatalf("work = %+v", out)
	}
	if n := b.nginx.reloadCount(); n != 1 {
		t.Fatalf("%d reloads, want 1", n)
	}
	want := b.nginx.reloads[0]
	if want.Version != version || want.StatusAddr != "127.0.0.1:18081" || want.Latest == nil {
		t.Errorf("reload expected %+v, want version %.12s from 127.0.0.1:18081", want, version)
	}
	if s := b.status(); !s.OK || s.Version != version {
		t.Errorf("status = %+v, want OK with version %.12s", s, version)
	}
	if n := b.reloads(ResultOK); n != 1 {
		t.Errorf("%v reloads counted ok, want 1", n)
	}
	// The old workers drain: one generation, until they exit.
	if n := testutil.ToFloat64(b.metrics.DrainingGens); n != 1 {
		t.Errorf("draining generations = %v, want 1", n)
	}
	b.nginx.draining = nil
	b.r.tick(true)
	if n := testutil.ToFloat64(b.metrics.DrainingGens); n != 0 {
		t.Errorf("draining generations = %v after they exited, want 0", n)
	}
	// Nothing new: no reload.
	if out := b.work(); out != coalesce.Done || b.nginx.reloadCount() != 1 {
		t.Errorf("work with nothing new = %+v, %d reloads", out, b.nginx.reloadCount())
	}
	// Back to the first config: that is a change from what nginx serves.
	b.writeConfig("a")
	b.work()
	if n := b.nginx.reloadCount(); n != 2 {
		t.Errorf("%d reloads after going back to the first config, want 2", n)
	}
}

func TestReloaderRateCap(t *testing.T) {
	t.Parallel()
	b := newReloaderBed(t, ReloaderOptions{MinInterval: 200 * time.Millisecond})
	b.writeConfig("b")
	b.work()
	b.clock.Step(50 * time.Millisecond)
	b.writeConfig("c")
	if out := b.work(); out != coalesce.Retry(150*time.Millisecond) {
		t.Fatalf("work 50 ms after a reload = %+v, want a retry after 150ms", out)
	}
	b.clock.Step(150 * time.Millisecond)
	if out := b.work(); out != coalesce.Done || b.nginx.reloadCount() != 2 {
		t.Errorf("work after the interval = %+v, %d reloads; want Done, 2", out, b.nginx.reloadCount())
	}
}

func TestReloaderRefusedConfigs(t *testing.T) {
	t.Parallel()
	b := newReloaderBed(t, ReloaderOptions{Validate: ValidateAlways})
	b.nginx.validateErr = errors.New("nginx -t: [emerg] unknown directive")
	version := b.writeConfig("b")
	b.work()
	if n := b.nginx.reloadCount(); n != 0 {
		t.Fatalf("an invalid config was reloaded (%d)", n)
	}
	if s := b.status(); s.OK || s.Version != version || s.Error == "" {
		t.Errorf("status = %+v, want not OK with version and nginx's message", s)
	}
	if b.r.LastError() == "" || b.reloads(ResultInvalid) != 1 {
		t.Errorf("LastError %q, %v invalid", b.r.LastError(), b.reloads(ResultInvalid))
	}
	// The same refused config is not validated again.
	b.work()
	if b.nginx.validations != 1 {
		t.Errorf("%d validations of one refused config", b.nginx.validations)
	}
	// nginx itself refuses the next one after nginx -t passed.
	b.nginx.validateErr = nil
	b.nginx.reloadErr = errors.New("[emerg] bind() failed")
	b.writeConfig("c")
	b.work()
	if b.reloads(ResultFailed) != 1 || b.status().OK {
		t.Errorf("%v failed, status %+v", b.reloads(ResultFailed), b.status())
	}
	// nginx could not be signalled at all: tried again.
	b.nginx.reloadErr = ErrNotSignalled
	b.writeConfig("d")
	if out := b.work(); out != coalesce.Retry(time.Second) {
		t.Errorf("work when nginx was not signalled = %+v, want a retry after 1s", out)
	}
	b.nginx.reloadErr = nil
	if out := b.work(); out != coalesce.Done || b.reloads(ResultOK) != 1 || b.r.LastError() != "" {
		t.Errorf("work = %+v, %v ok, last error %q", out, b.reloads(ResultOK), b.r.LastError())
	}
}

func TestReloaderAutoValidation(t *testing.T) {
	t.Parallel()
	b := newReloaderBed(t, ReloaderOptions{Validate: ValidateAuto})
	b.nginx.validateTakes = AutoValidateBudget / 2
	b.writeConfig("b")
	b.work()
	b.nginx.validateTakes = AutoValidateBudget + time.Millisecond
	b.writeConfig("c")
	b.work()
	// Too slow: later reloads rely on nginx's own refusal.
	b.writeConfig("d")
	b.work()
	if b.nginx.validations != 2 || b.nginx.reloadCount() != 3 {
		t.Errorf("%d validations for %d reloads, want 2 for 3", b.nginx.validations, b.nginx.reloadCount())
	}
	if n := testutil.ToFloat64(b.metrics.ValidationSkipped); n != 1 {
		t.Errorf("%v validations skipped, want 1", n)
	}
}

func TestReloaderWaitsForDrainingWorkers(t *testing.T) {
	t.Parallel()
	b := newReloaderBed(t, ReloaderOptions{MaxDraining: 1, DrainWait: 2 * time.Second})
	b.nginx.draining = []int{100, 101} // the first generation keeps connections
	b.writeConfig("b")
	b.work()
	b.writeConfig("c")
	if out := b.work(); out != coalesce.Retry(500*time.Millisecond) {
		t.Fatalf("work with a generation draining = %+v, want a retry after 500ms", out)
	}
	b.clock.Step(2 * time.Second)
	if out := b.work(); out != coalesce.Done || b.nginx.reloadCount() != 2 {
		t.Errorf("work after DrainWait = %+v, %d reloads; want Done, 2", out, b.nginx.reloadCount())
	}
}

func TestReloaderNewerConfigDuringReload(t *testing.T) {
	t.Parallel()
	b := newReloaderBed(t, ReloaderOptions{MinInterval: 200 * time.Millisecond})
	b.writeConfig("b")
	// nginx read a config that is neither the one the reload was for nor
	// the folder's now: which one it serves is not known.
	b.nginx.served = "0123"
	if out := b.work(); out != coalesce.Retry(200*time.Millisecond) {
		t.Fatalf("work = %+v, want a reload again after the rate cap", out)
	}
	b.nginx.served = ""
	b.clock.Step(200 * time.Millisecond)
	if out := b.work(); out != coalesce.Done || b.nginx.reloadCount() != 2 {
		t.Errorf("work = %+v, %d reloads; want Done, 2", out, b.nginx.reloadCount())
	}
	// It read the folder's newest: nothing more to do.
	b.clock.Step(200 * time.Millisecond)
	b.writeConfig("c")
	b.nginx.served = b.writeConfig("d")
	if out := b.work(); out != coalesce.Done {
		t.Errorf("work = %+v, want Done", out)
	}
	if out := b.work(); out != coalesce.Done || b.nginx.reloadCount() != 3 {
		t.Errorf("work = %+v, %d reloads; want Done, 3", out, b.nginx.reloadCount())
	}
}

func TestReloaderFindsMissedChanges(t *testing.T) {
	t.Parallel()
	b := newReloaderBed(t, ReloaderOptions{CheckInterval: 5 * time.Second})
	b.writeConfig("b")
	b.r.tick(false)
	if n := testutil.ToFloat64(b.metrics.MissedEvents); n != 0 {
		t.Fatalf("checked before CheckInterval: %v", n)
	}
	b.clock.Step(5 * time.Second)
	b.r.tick(true) // a change is pending: its event came
	if n := testutil.ToFloat64(b.metrics.MissedEvents); n != 0 {
		t.Fatalf("a pending change counted as missed: %v", n)
	}
	b.r.tick(false)
	if n := testutil.ToFloat64(b.metrics.MissedEvents); n != 1 {
		t.Errorf("%v missed changes found, want 1", n)
	}
	if n := testutil.ToFloat64(b.metrics.Workers); n != 2 {
		t.Errorf("workers = %v, want 2", n)
	}
}

// TestReloaderRun: file events reach the loop, and nginx's exit ends Run.
func TestReloaderRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	n := newFakeNginx(nil)
	fp, err := Fingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	r := NewReloader(ReloaderOptions{
		Nginx: n, ConfigDir: dir, StartedWith: fp, Validate: ValidateNever,
		Debounce: time.Millisecond, MaxDelay: 10 * time.Millisecond, CheckInterval: time.Hour, Timeout: time.Second,
		Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return r.Ready() == nil, nil }); err != nil {
		t.Fatal("not ready")
	}
	if err := os.WriteFile(filepath.Join(dir, "hand-written.conf"), []byte("server {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, time.Minute, true,
		func(context.Context) (bool, error) { return n.reloadCount() == 1, nil }); err != nil {
		t.Fatal("the file's change was not reloaded")
	}
	if v := n.reloads[0].Version; v != "" {
		t.Errorf("a hand-written config expected version %q", v)
	}
	close(n.done)
	if err := <-done; err == nil || err.Error() != "nginx exited: exit status 1" {
		t.Errorf("Run after nginx exited = %v", err)
	}
	if r.Ready() == nil || r.Healthy() == nil {
		t.Error("ready or healthy without nginx")
	}
}
