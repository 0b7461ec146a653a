package nginx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sync/errgroup"
	"k8s.io/utils/clock"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/atomicfile"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/coalesce"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// ValidateMode says when the whole config is checked with `nginx -t`
// before a reload.
type ValidateMode string

const (
	// ValidateAlways runs nginx -t before every reload.
	ValidateAlways ValidateMode = "always"
	// ValidateNever relies on nginx itself: a master that cannot load a
	// new config logs [emerg] and keeps the old one, which the reload's
	// confirmation detects.
	ValidateNever ValidateMode = "never"
	// ValidateAuto runs nginx -t while it is cheap: until one takes
	// longer than AutoValidateBudget, then never again. nginx -t is a full
	// parse, as long as the reload's own: for a large config it doubles
	// the time to serve a change, for the same protection.
	ValidateAuto ValidateMode = "auto"
)

// AutoValidateBudget is the longest nginx -t that ValidateAuto keeps
// running before each reload.
const AutoValidateBudget = 250 * time.Millisecond

// ParseValidateMode parses a ValidateMode.
func ParseValidateMode(s string) (ValidateMode, error) {
	switch m := ValidateMode(s); m {
	case ValidateAlways, ValidateNever, ValidateAuto:
		return m, nil
	}
	return "", fmt.Errorf("must be %q, %q or %q", ValidateAuto, ValidateAlways, ValidateNever)
}

// StatusFile is the reloader's report in the config folder: the result of
// the last reload attempt, for the generator side and for people. It is
// hidden (see confdir): neither nginx nor the folder's fingerprint see it.
const StatusFile = confdir.StatusFile

// Status is the content of StatusFile.
type Status struct {
	Time time.Time `json:"time"`
	OK   bool      `json:"ok"`
	// Version is the kube-nginx-sync config version that nginx serves
	// (after a success) or refused (after a failure); empty for
	// hand-written configs.
	Version string `json:"version,omitempty"`
	// Error is nginx's own message when it refused the config.
	Error string `json:"error,omitempty"`
}

// Nginx is the running nginx that a Reloader reloads; *Supervisor is the
// real one.
type Nginx interface {
	// Validate checks the whole config that a reload would load.
	Validate(ctx context.Context) error
	// Reload makes nginx load its config and confirms it.
	Reload(ctx context.Context, want Expect) (Reloaded, error)
	// Workers lists the current generation's workers.
	Workers() ([]int, error)
	// Resident returns which of pids still live, and their memory.
	Resident(pids []int) (live []int, bytes int64)
	// PID is the master's.
	PID() int
	// Done is closed when nginx has exited, with ExitError then set.
	Done() <-chan struct{}
	ExitError() error
}

// ReloaderOptions configure a Reloader.
type ReloaderOptions struct {
	Nginx     Nginx
	ConfigDir string
	// StartedWith is the folder's Fingerprint taken before nginx started.
	StartedWith string
	Validate    ValidateMode
	// Debounce, MaxDelay and MaxDelayLimit coalesce bursts of file events
	// (see coalesce.Window).
	Debounce, MaxDelay, MaxDelayLimit time.Duration
	// MinInterval is the shortest time between two reloads.
	MinInterval time.Duration
	// Timeout bounds the wait for nginx to confirm a reload.
	Timeout time.Duration
	// CheckInterval is how often the folder is fingerprinted in case a
	// file event was missed.
	CheckInterval time.Duration
	// MaxDraining is how many old worker generations may still drain
	// before a reload waits for them (up to DrainWait).
	MaxDraining int
	DrainWait   time.Duration
	Metrics     *Metrics
	Log         *slog.Logger
	// Clock is the reloader's time; nil means the real clock.
	Clock clock.WithTicker
}

// Reloader reloads nginx when its config folder changes. Each settled
// change goes through four steps: the gate (is there a config nginx does
// not serve, and may nginx be reloaded now), validation (nginx -t, as
// ValidateMode says), the reload (nginx's, confirmed), and the record
// (metrics, the status file, the log).
type Reloader struct {
	opts      ReloaderOptions
	clock     clock.WithTicker
	loop      *coalesce.Loop
	endpoints *endpointsTracker

	// Owned by the loop.
	loaded     string // fingerprint of the config nginx serves
	failed     string // fingerprint of the last config nginx refused
	lastReload time.Time
	lastCheck  time.Time
	gens       generations
	validate   ValidateMode // the effective mode, after auto's decision

	confirmed atomic.Bool
	mu        sync.Mutex
	lastErr   string
}

// NewReloader creates a Reloader for a running nginx that was started with
// the folder's current content.
func NewReloader(opts ReloaderOptions) *Reloader {
	r := &Reloader{opts: opts, clock: opts.Clock, validate: opts.Validate}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	r.loop = coalesce.NewLoop(coalesce.LoopOptions{
		Quiet: opts.Debounce, MaxDelay: opts.MaxDelay, MaxDelayLimit: opts.MaxDelayLimit,
		Work: r.work, Tick: r.tick, Clock: r.clock,
	})
	r.endpoints = newEndpointsTracker(opts, r.clock)
	return r
}

// Notify asks for a reload check at once (the generator calls it after it
// wrote a new config, in the all-in-one mode).
func (r *Reloader) Notify() { r.loop.NotifyNow() }

// Run confirms the config nginx started with, then reloads nginx on every
// settled change of the folder until ctx ends (it returns nil) or nginx
// exits (it returns how).
func (r *Reloader) Run(ctx context.Context) error {
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config folder: %w", err)
	}
	defer watcher.Close()
	if err := watcher.Add(r.opts.ConfigDir); err != nil {
		return fmt.Errorf("watch config folder %s: %w", r.opts.ConfigDir, err)
	}
	r.confirmStart()

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		select {
		case <-ctx.Done():
			return nil
		case <-r.opts.Nginx.Done():
			return fmt.Errorf("nginx exited: %w", exitErr(r.opts.Nginx))
		}
	})
	g.Go(func() error { return r.forwardEvents(ctx, watcher) })
	g.Go(func() error { return r.endpoints.run(ctx) })
	r.endpoints.notify() // the file may be new to nginx's workers
	// The loop's first check is due at once: the folder may have changed
	// while nginx started.
	g.Go(func() error { return r.loop.Run(ctx) })
	return g.Wait()
}

// forwardEvents notifies the loop of the folder's file events.
func (r *Reloader) forwardEvents(ctx context.Context, watcher *fsnotify.Watcher) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-watcher.Events:
			if !ok {
				return errors.New("config folder watch closed")
			}
			// Our own files (this status, temporary files, the Lua data
			// plane's endpoints) never change the config nginx loads; the
			// kubelet's ..data swap does. nginx's workers read a new
			// endpoints file themselves: the tracker confirms it.
			switch name := filepath.Base(ev.Name); {
			case name == luaplane.FileName:
				r.endpoints.notify()
			case !confdir.IsOurs(name):
				r.loop.Notify()
			}
		case err, ok := <-watcher.Errors:
			if ok {
				r.opts.Log.Warn("watching the config folder", "err", err)
			}
		}
	}
}

// tick runs at the loop's heartbeat: it samples the workers, and now and
// then fingerprints the folder in case a file event was missed.
func (r *Reloader) tick(pending bool) {
	r.observeWorkers()
	now := r.clock.Now()
	if pending || now.Sub(r.lastCheck) < r.opts.CheckInterval {
		return
	}
	r.lastCheck = now
	if fp, err := Fingerprint(r.opts.ConfigDir); err == nil && fp != r.loaded && fp != r.failed {
		r.opts.Log.Warn("the config folder changed without a file event; reloading")
		r.opts.Metrics.MissedEvents.Inc()
		r.loop.NotifyNow()
	}
}

func exitErr(n Nginx) error {
	if err := n.ExitError(); err != nil {
		return err
	}
	return errors.New("exit status 0")
}

// confirmStart records the config that nginx started with: StartNginx
// returned once nginx had workers, so nginx took it.
func (r *Reloader) confirmStart() {
	r.loaded = r.opts.StartedWith
	r.lastCheck = r.clock.Now()
	r.confirmed.Store(true)
	header, _ := expectedVersion(r.opts.ConfigDir)
	r.writeStatus(Status{Time: r.clock.Now(), OK: true, Version: header.Version})
	r.observeWorkers()
	r.opts.Log.Info("nginx serves its config", "pid", r.opts.Nginx.PID(), "version", header.Version)
}

// work reloads nginx if the folder holds a config it does not serve: gate,
// validate, reload, record.
func (r *Reloader) work(ctx context.Context) coalesce.Outcome {
	fp, err := Fingerprint(r.opts.ConfigDir)
	if err != nil {
		r.opts.Log.Error("cannot read the config folder", "err", err)
		return coalesce.Retry(time.Second)
	}
	if fp == r.loaded || fp == r.failed {
		return coalesce.Done // settled back to what nginx serves, or already refused
	}
	if wait := r.gate(); wait > 0 {
		return coalesce.Retry(wait)
	}
	header, _ := expectedVersion(r.opts.ConfigDir)
	if err := r.check(ctx); err != nil {
		if ctx.Err() == nil {
			r.refused(fp, header.Version, ResultInvalid, err.Error())
		}
		return coalesce.Done
	}
	start := r.clock.Now()
	res, err := r.opts.Nginx.Reload(ctx, r.expect(header))
	switch {
	case ctx.Err() != nil:
		return coalesce.Done
	case errors.Is(err, ErrNotSignalled):
		r.opts.Log.Error("cannot reload nginx", "err", err)
		return coalesce.Retry(time.Second)
	}
	r.lastReload = start
	if err != nil {
		r.refused(fp, header.Version, ResultFailed, err.Error())
		return coalesce.Done
	}
	return r.record(fp, header.Version, res, r.clock.Since(start))
}

// gate returns how long a reload must wait: for the rate cap, or for old
// workers to drain (up to DrainWait); 0 when it may go now.
func (r *Reloader) gate() time.Duration {
	if wait := r.lastReload.Add(r.opts.MinInterval).Sub(r.clock.Now()); wait > 0 {
		return wait
	}
	gens, procs, _ := r.gens.prune(r.opts.Nginx)
	if r.opts.MaxDraining <= 0 || gens < r.opts.MaxDraining {
		return 0
	}
	if since := r.clock.Since(r.lastReload); since < r.opts.DrainWait {
		r.opts.Log.Info("waiting for old nginx workers to finish their connections before reloading",
			"draining_generations", gens, "draining_workers", procs)
		return 500 * time.Millisecond
	}
	r.opts.Log.Warn("old nginx workers still drain; reloading anyway", "draining_generations", gens, "waited", r.opts.DrainWait)
	return 0
}

// check validates the config with nginx -t when the mode says so.
func (r *Reloader) check(ctx context.Context) error {
	if r.validate != ValidateAlways && r.validate != ValidateAuto {
		r.opts.Metrics.ValidationSkipped.Inc()
		return nil
	}
	start := r.clock.Now()
	err := r.opts.Nginx.Validate(ctx)
	took := r.clock.Since(start)
	r.opts.Metrics.ValidateSeconds.Observe(took.Seconds())
	if err == nil && r.validate == ValidateAuto && took > AutoValidateBudget {
		r.opts.Log.Info("nginx -t took longer than the auto budget: later reloads rely on nginx's own refusal of a bad config",
			"took", took.Round(time.Millisecond), "budget", AutoValidateBudget)
		r.validate = ValidateNever
	}
	return err
}

// expect says how the reload of the config with header h is confirmed.
func (r *Reloader) expect(h nginxconf.Header) Expect {
	want := Expect{Timeout: r.opts.Timeout}
	if h.Version != "" && h.Status != "" {
		want.Version, want.StatusAddr = h.Version, h.Status
		want.Latest = func() (string, bool) { return currentVersion(r.opts.ConfigDir) }
	}
	return want
}

// record takes a confirmed reload of the config fp, with version: nginx
// serves it now. It returns Done, or a retry when nginx read a config
// newer than fp that is no longer the folder's.
func (r *Reloader) record(fp, version string, res Reloaded, took time.Duration) coalesce.Outcome {
	again := false
	if res.Served != "" && res.Served != version {
		// The file was replaced again while nginx reloaded, and nginx
		// read a newer one. Unless it is the one there now, which one
		// nginx serves is not known: reload once more (the rate cap still
		// holds) so that nginx ends on the folder's content.
		r.opts.Log.Debug("nginx took a newer config than the one that triggered the reload", "version", res.Served)
		version = res.Served
		if now, ok := currentVersion(r.opts.ConfigDir); ok && now == res.Served {
			fp, _ = Fingerprint(r.opts.ConfigDir)
		} else {
			fp, again = "", true
		}
	}
	m := r.opts.Metrics
	r.gens.retire(res.Replaced)
	r.loaded, r.failed = fp, ""
	m.Reloads.WithLabelValues(ResultOK).Inc()
	m.ReloadSeconds.Observe(took.Seconds())
	m.LastReload.Set(float64(r.clock.Now().UnixNano()) / 1e9)
	r.setLastErr("")
	r.writeStatus(Status{Time: r.clock.Now(), OK: true, Version: version})
	r.observeWorkers()
	r.opts.Log.Info("nginx reloaded", "version", version, "took", took.Round(time.Microsecond),
		"workers", len(res.Workers), "draining_generations", len(r.gens.draining))
	if again {
		return coalesce.Retry(r.opts.MinInterval)
	}
	return coalesce.Done
}

// refused records a config that nginx did not take; it keeps serving the
// last one.
func (r *Reloader) refused(fp, version, result, msg string) {
	r.failed = fp
	r.opts.Metrics.Reloads.WithLabelValues(result).Inc()
	r.setLastErr(msg)
	r.writeStatus(Status{Time: r.clock.Now(), OK: false, Version: version, Error: msg})
	r.opts.Log.Error("nginx did not take the new config; it keeps serving the last good one",
		"result", result, "version", version, "nginx", msg)
}

func (r *Reloader) setLastErr(msg string) {
	r.mu.Lock()
	r.lastErr = msg
	r.mu.Unlock()
}

// LastError is nginx's message for the last refused config, or "" when the
// last attempt succeeded.
func (r *Reloader) LastError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

func (r *Reloader) writeStatus(s Status) {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return
	}
	if _, err := atomicfile.Write(filepath.Join(r.opts.ConfigDir, StatusFile), append(data, '\n'), atomicfile.Options{}); err != nil {
		r.opts.Log.Warn("cannot write the status file", "err", err)
	}
}

func (r *Reloader) observeWorkers() {
	m := r.opts.Metrics
	gens, procs, drss := r.gens.prune(r.opts.Nginx)
	// Workers of a replaced generation may not call themselves "shutting
	// down" yet: the master tells them to quit 100 ms after the reload.
	cur, _ := r.opts.Nginx.Workers()
	cur = slices.DeleteFunc(cur, r.gens.has)
	_, rss := r.opts.Nginx.Resident(cur)
	m.Workers.Set(float64(len(cur)))
	m.WorkersBytes.Set(float64(rss))
	m.DrainingGens.Set(float64(gens))
	m.DrainingWorkers.Set(float64(procs))
	m.DrainingBytes.Set(float64(drss))
}

// Ready reports whether nginx runs with a confirmed config.
func (r *Reloader) Ready() error {
	select {
	case <-r.opts.Nginx.Done():
		return errors.New("nginx is not running")
	default:
	}
	if !r.confirmed.Load() {
		return errors.New("nginx's config is not confirmed yet")
	}
	return nil
}

// Healthy reports whether nginx runs and the reload loop turns.
func (r *Reloader) Healthy() error {
	select {
	case <-r.opts.Nginx.Done():
		return errors.New("nginx is not running")
	default:
	}
	if err := r.loop.Healthy(2*time.Minute + r.opts.Timeout); err != nil {
		return fmt.Errorf("reloader: %w", err)
	}
	return nil
}
