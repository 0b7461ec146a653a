package nginx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/atomicfile"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/coalesce"
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
// the last reload attempt, for the generator side and for people. Its
// name starts with "." so that neither nginx's *.conf globs nor the
// folder's fingerprint see it.
const StatusFile = ".kube-nginx-sync-reload-status.json"

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

// ReloaderOptions configure a Reloader.
type ReloaderOptions struct {
	Nginx     *Supervisor
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
}

// Reloader reloads nginx when its config folder changes.
type Reloader struct {
	opts    ReloaderOptions
	trigger chan struct{}

	// Owned by the loop.
	loaded     string // fingerprint of the config nginx serves
	failed     string // fingerprint of the last config nginx refused
	lastReload time.Time
	gens       generations
	validate   ValidateMode // the effective mode, after auto's decision

	confirmed atomic.Bool
	heartbeat atomic.Int64
	mu        sync.Mutex
	lastErr   string
}

// NewReloader creates a Reloader for a running nginx that was started with
// the folder's current content.
func NewReloader(opts ReloaderOptions) *Reloader {
	r := &Reloader{opts: opts, trigger: make(chan struct{}, 1), validate: opts.Validate}
	r.heartbeat.Store(time.Now().UnixNano())
	return r
}

// Notify asks for a reload check at once (the generator calls it after it
// wrote a new config, in the all-in-one mode).
func (r *Reloader) Notify() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run confirms the config nginx started with, then reloads nginx on every
// settled change of the folder until ctx ends or nginx exits.
func (r *Reloader) Run(ctx context.Context) error {
	log := r.opts.Log
	watcher, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch config folder: %w", err)
	}
	defer watcher.Close()
	if err := watcher.Add(r.opts.ConfigDir); err != nil {
		return fmt.Errorf("watch config folder %s: %w", r.opts.ConfigDir, err)
	}

	r.confirmStart()
	pending := coalesce.Window{Quiet: r.opts.Debounce, MaxDelay: r.opts.MaxDelay, MaxDelayLimit: r.opts.MaxDelayLimit}
	// The folder may have changed while nginx started.
	pending.NotifyNow(time.Now())
	check := time.NewTicker(r.opts.CheckInterval)
	defer check.Stop()
	beat := time.NewTicker(time.Second)
	defer beat.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var waitUntil time.Time // for the rate cap and for draining workers
	for {
		now := time.Now()
		r.heartbeat.Store(now.UnixNano())
		if pending.Due(now) && !now.Before(waitUntil) {
			wait := r.attempt(ctx)
			if wait > 0 {
				waitUntil = time.Now().Add(wait)
			} else {
				pending.Reset(now)
				waitUntil = time.Time{}
			}
		}
		if at, ok := pending.DueAt(); ok {
			resetTimer(timer, time.Until(laterOf(at, waitUntil)))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.opts.Nginx.Done():
			return fmt.Errorf("nginx exited: %w", exitErr(r.opts.Nginx))
		case ev, ok := <-watcher.Events:
			if !ok {
				return errors.New("config folder watch closed")
			}
			if !strings.HasPrefix(filepath.Base(ev.Name), ".kube-nginx-sync-reload-status") {
				pending.Notify(time.Now())
			}
		case err, ok := <-watcher.Errors:
			if ok {
				log.Warn("watching the config folder", "err", err)
			}
		case <-r.trigger:
			pending.NotifyNow(time.Now())
		case <-check.C:
			if fp, err := Fingerprint(r.opts.ConfigDir); err == nil && fp != r.loaded && fp != r.failed && !pending.Pending() {
				log.Warn("the config folder changed without a file event; reloading")
				r.opts.Metrics.MissedEvents.Inc()
				pending.NotifyNow(time.Now())
			}
		case <-timer.C:
		case <-beat.C:
			r.observeWorkers()
		}
	}
}

func exitErr(s *Supervisor) error {
	if err := s.ExitError(); err != nil {
		return err
	}
	return errors.New("exit status 0")
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(max(d, 0))
}

// confirmStart records the config that nginx started with: StartNginx
// returned once nginx had workers, so nginx took it.
func (r *Reloader) confirmStart() {
	r.loaded = r.opts.StartedWith
	r.confirmed.Store(true)
	version := versionOf(r.opts.ConfigDir)
	r.writeStatus(Status{Time: time.Now(), OK: true, Version: version})
	r.observeWorkers()
	r.opts.Log.Info("nginx serves its config", "pid", r.opts.Nginx.PID(), "version", version)
}

func versionOf(dir string) string {
	h, _ := expectedVersion(dir)
	return h.Version
}

// attempt reloads nginx if the folder holds a config it does not serve. It
// returns how long to wait before trying again, or 0 when done.
func (r *Reloader) attempt(ctx context.Context) time.Duration {
	log, m := r.opts.Log, r.opts.Metrics
	fp, err := Fingerprint(r.opts.ConfigDir)
	if err != nil {
		log.Error("cannot read the config folder", "err", err)
		return time.Second
	}
	if fp == r.loaded || fp == r.failed {
		return 0 // settled back to what nginx serves, or already refused
	}
	if wait := time.Until(r.lastReload.Add(r.opts.MinInterval)); wait > 0 {
		return wait
	}
	if gens, procs, _ := r.gens.prune(); gens >= r.opts.MaxDraining && r.opts.MaxDraining > 0 {
		if since := time.Since(r.lastReload); since < r.opts.DrainWait {
			log.Info("waiting for old nginx workers to finish their connections before reloading",
				"draining_generations", gens, "draining_workers", procs)
			return 500 * time.Millisecond
		}
		log.Warn("old nginx workers still drain; reloading anyway", "draining_generations", gens, "waited", r.opts.DrainWait)
	}
	header, hasHeader := expectedVersion(r.opts.ConfigDir)

	if r.shouldValidate() {
		start := time.Now()
		err := r.opts.Nginx.Validate(ctx)
		took := time.Since(start)
		m.ValidateSeconds.Observe(took.Seconds())
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			r.refused(fp, header.Version, ResultInvalid, err.Error())
			return 0
		}
		if r.validate == ValidateAuto && took > AutoValidateBudget {
			log.Info("nginx -t took longer than the auto budget: later reloads rely on nginx's own refusal of a bad config",
				"took", took.Round(time.Millisecond), "budget", AutoValidateBudget)
			r.validate = ValidateNever
		}
	} else {
		m.ValidationSkipped.Inc()
	}

	again := false
	before, err := workers(r.opts.Nginx.PID())
	if err != nil {
		log.Error("cannot list nginx's workers", "err", err)
		return time.Second
	}
	var servedBefore string
	if hasHeader && header.Status != "" {
		servedBefore, _ = servedVersion(newStatusClient(), header)
	}
	start := time.Now()
	if err := r.opts.Nginx.signal(sighup); err != nil {
		log.Error("cannot signal nginx", "err", err)
		return time.Second
	}
	r.lastReload = start
	deadline := start.Add(r.opts.Timeout)
	cur, err := waitForGeneration(ctx, r.opts.Nginx, before, deadline, start)
	if err == nil && hasHeader && header.Status != "" {
		var served string
		served, err = waitForVersion(ctx, header, servedBefore, r.opts.ConfigDir, deadline, r.opts.Nginx, start)
		if err == nil && served != header.Version {
			// The file was replaced again while nginx reloaded, and nginx
			// read a newer one. Unless it is the one there now, which one
			// nginx serves is not known: reload once more (the rate cap
			// still holds) so that nginx ends on the folder's content.
			log.Debug("nginx took a newer config than the one that triggered the reload", "version", served)
			header.Version = served
			if now, ok := currentVersion(r.opts.ConfigDir); ok && now == served {
				fp, _ = Fingerprint(r.opts.ConfigDir)
			} else {
				fp, again = "", true
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0
		}
		r.opts.Nginx.waitQuiet(time.Second, 10*time.Second)
		r.refused(fp, header.Version, ResultFailed, err.Error())
		return 0
	}
	took := time.Since(start)
	r.gens.retire(before)
	r.loaded, r.failed = fp, ""
	m.Reloads.WithLabelValues(ResultOK).Inc()
	m.ReloadSeconds.Observe(took.Seconds())
	m.LastReload.Set(float64(time.Now().UnixNano()) / 1e9)
	r.setLastErr("")
	r.writeStatus(Status{Time: time.Now(), OK: true, Version: header.Version})
	r.observeWorkers()
	log.Info("nginx reloaded", "version", header.Version, "took", took.Round(time.Microsecond),
		"workers", len(cur), "draining_generations", len(r.gens.draining))
	if again {
		return max(r.opts.MinInterval, time.Millisecond)
	}
	return 0
}

func (r *Reloader) shouldValidate() bool {
	return r.validate == ValidateAlways || r.validate == ValidateAuto
}

// refused records a config that nginx did not take; it keeps serving the
// last one.
func (r *Reloader) refused(fp, version, result, msg string) {
	r.failed = fp
	r.opts.Metrics.Reloads.WithLabelValues(result).Inc()
	r.setLastErr(msg)
	r.writeStatus(Status{Time: time.Now(), OK: false, Version: version, Error: msg})
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
	gens, procs, drss := r.gens.prune()
	// Workers of a replaced generation may not call themselves "shutting
	// down" yet: the master tells them to quit 100 ms after the reload.
	cur, _ := workers(r.opts.Nginx.PID())
	cur = slices.DeleteFunc(cur, r.gens.has)
	var rss int64
	for _, pid := range cur {
		rss += residentBytes(pid)
	}
	m.Workers.Set(float64(len(cur)))
	m.WorkersBytes.Set(float64(rss))
	m.DrainingGens.Set(float64(gens))
	m.DrainingWorkers.Set(float64(procs))
	m.DrainingBytes.Set(float64(drss))
}

// waitForGeneration waits until nginx has started a worker that was not in
// before: the master parsed and took the new config. A master that cannot
// load it logs [emerg] and starts none. It returns the new workers.
func waitForGeneration(ctx context.Context, s *Supervisor, before []int, deadline, since time.Time) ([]int, error) {
	for {
		cur, err := workers(s.PID())
		if err == nil {
			fresh := slices.DeleteFunc(cur, func(p int) bool { return slices.Contains(before, p) })
			if len(fresh) > 0 {
				return fresh, nil
			}
		}
		if err := waitStep(ctx, s, deadline, since); err != nil {
			return nil, err
		}
	}
}

// waitForVersion waits until the status server answers the config's
// version: new workers serve it. It also accepts the version of the file
// now in dir, and any version other than servedBefore (when known): if the
// file was replaced again during the reload, nginx read a newer one. It
// returns the version served.
func waitForVersion(ctx context.Context, h nginxconf.Header, servedBefore, dir string, deadline time.Time, s *Supervisor, since time.Time) (string, error) {
	client := newStatusClient()
	var last string
	for {
		served, err := servedVersion(client, h)
		if err == nil {
			last = served
			if served == h.Version || (servedBefore != "" && served != servedBefore) {
				return served, nil
			}
			if now, ok := currentVersion(dir); ok && served == now {
				return served, nil
			}
		} else {
			last = err.Error()
		}
		if err := waitStep(ctx, s, deadline, since); err != nil {
			return "", fmt.Errorf("%w (the status server answered %q)", err, last)
		}
	}
}

// newStatusClient asks the status server on a new connection each time, so
// that it reaches the new workers as soon as they accept.
func newStatusClient() *http.Client {
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// servedVersion asks the status server which config version nginx serves.
func servedVersion(client *http.Client, h nginxconf.Header) (string, error) {
	resp, err := client.Get("http://" + h.Status + nginxconf.VersionPath)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status server: %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}

// waitStep sleeps a poll interval, and fails when nginx logged a refusal,
// exited, or the deadline passed.
func waitStep(ctx context.Context, s *Supervisor, deadline, since time.Time) error {
	if msg := s.recentProblems(since); msg != "" {
		return errors.New(msg)
	}
	if time.Now().After(deadline) {
		return fmt.Errorf("nginx did not confirm the reload within %s", time.Since(since).Round(time.Millisecond))
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.Done():
		return fmt.Errorf("nginx exited: %v", s.ExitError())
	case <-time.After(5 * time.Millisecond):
		return nil
	}
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
	if since := time.Since(time.Unix(0, r.heartbeat.Load())); since > 2*time.Minute+r.opts.Timeout {
		return fmt.Errorf("the reload loop has not turned for %s", since.Round(time.Second))
	}
	return nil
}
