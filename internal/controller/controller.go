package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/coalesce"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// Source is the cached cluster state the controller renders.
type Source interface {
	// WaitForSync blocks until the cache holds a complete first list.
	WaitForSync(ctx context.Context) error
	// Objects returns the cached objects, which must not be modified.
	Objects() kube.Objects
	// BrokenSince is when the oldest current list or watch failure
	// began, or zero when all are healthy.
	BrokenSince() time.Time
}

// Options configure a Controller.
type Options struct {
	Source   Source
	Pipeline *Pipeline
	// Debounce is the quiet period after a change before a rebuild.
	Debounce time.Duration
	// MaxDelay bounds how long a burst can defer a rebuild after a quiet
	// time, and is the first cooldown between rebuilds while changes keep
	// coming, which doubles up to MaxDelayLimit (see coalesce.Window).
	MaxDelay, MaxDelayLimit time.Duration
	// StaleAfter is how long a broken watch is tolerated before the
	// controller reports not ready.
	StaleAfter time.Duration
	// Recorder receives Events about Services left out; nil sends none.
	Recorder record.EventRecorder
	Metrics  *Metrics
	Log      *slog.Logger
	// OnWrite, when set, is called after each write of a changed file
	// (the all-in-one mode hands the change to the reloader at once).
	OnWrite func()
	// Clock is the controller's time; nil means the real clock.
	Clock clock.WithTicker
}

// Controller keeps the config file in step with the Source.
type Controller struct {
	opts   Options
	clock  clock.WithTicker
	events *eventReporter
	loop   *coalesce.Loop

	// ingressEvents reports on the Ingresses as events does on the Services.
	ingressEvents *ingressEventReporter

	// firstChange is when the oldest change not yet rendered was seen;
	// endpointsOnly the Services whose EndpointSlices changed since the
	// last rebuild, when nothing else did (full is false).
	mu            sync.Mutex
	firstChange   time.Time
	full          bool
	endpointsOnly map[model.ServiceRef]bool

	// Owned by the loop.
	last    model.Config
	backoff wait.Backoff
	// recheckAt, when not zero, is when the same cluster state builds
	// another config (a certificate's validity changes) or an old
	// certificate file may go: a rebuild is due then.
	recheckAt time.Time

	synced  atomic.Bool
	written atomic.Bool
}

const (
	// stuckAfter is how long without a turn makes the loop unhealthy: far
	// more than the slowest rebuild (nginx -t at 10,000 routes takes a few
	// seconds).
	stuckAfter = 2 * time.Minute
	// brokenRecheck is how often a rebuild held back by a broken watch is
	// looked at again (the watcher also notifies when it recovers).
	brokenRecheck = time.Second
)

// retryBackoff is the wait after a failed rebuild: 1 s, doubling to 30 s.
var retryBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Steps: math.MaxInt32, Cap: 30 * time.Second}

// New creates a Controller.
func New(opts Options) *Controller {
	c := &Controller{opts: opts, clock: opts.Clock, events: newEventReporter(opts.Recorder, opts.Log), backoff: retryBackoff}
	c.ingressEvents = newIngressEventReporter(opts.Recorder, opts.Log)
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	c.loop = coalesce.NewLoop(coalesce.LoopOptions{
		Quiet: opts.Debounce, MaxDelay: opts.MaxDelay, MaxDelayLimit: opts.MaxDelayLimit,
		Work: c.work, Tick: c.tick, Clock: c.clock,
	})
	return c
}

// Notify tells the controller that the cluster state changed. It never
// blocks; the Source's event handlers call it.
func (c *Controller) Notify() {
	c.mu.Lock()
	if c.firstChange.IsZero() {
		c.firstChange = c.clock.Now()
	}
	c.full = true
	c.mu.Unlock()
	c.loop.Notify()
}

// NotifyEndpoints tells the controller that the EndpointSlices of the
// Service ref changed. It never blocks. While nothing else changes, the
// rebuild takes in those Services alone when the pipeline can
// (Pipeline.ApplyEndpoints, with a LookupSource).
func (c *Controller) NotifyEndpoints(ref model.ServiceRef) {
	c.mu.Lock()
	if c.firstChange.IsZero() {
		c.firstChange = c.clock.Now()
	}
	if !c.full {
		if c.endpointsOnly == nil {
			c.endpointsOnly = make(map[model.ServiceRef]bool)
		}
		c.endpointsOnly[ref] = true
	}
	c.mu.Unlock()
	c.loop.Notify()
}

// LookupSource is a Source that finds one Service and its EndpointSlices
// in its cache (kube.Watcher): with it, a change of EndpointSlices alone
// is taken in without a whole rebuild.
type LookupSource interface {
	Source
	Lookup(ref model.ServiceRef) (svc *corev1.Service, slices []*discoveryv1.EndpointSlice, found bool)
}

// takePending returns and clears what changed since the last rebuild:
// when the oldest change was seen, and, unless a whole rebuild is due
// (full), the Services whose EndpointSlices alone changed.
func (c *Controller) takePending() (firstChange time.Time, refs []model.ServiceRef, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	firstChange, full = c.firstChange, c.full || len(c.endpointsOnly) == 0
	if !full {
		refs = slices.SortedFunc(maps.Keys(c.endpointsOnly), func(a, b model.ServiceRef) int {
			return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
		})
	}
	c.firstChange, c.full, c.endpointsOnly = time.Time{}, false, nil
	return firstChange, refs, full
}

// needFull makes the next rebuild a whole one (after a failed one, or for
// a recheck of certificates).
func (c *Controller) needFull() {
	c.mu.Lock()
	c.full = true
	c.mu.Unlock()
}

// tick runs at the loop's heartbeat: a rebuild is due at recheckAt.
func (c *Controller) tick(bool) {
	if !c.recheckAt.IsZero() && !c.clock.Now().Before(c.recheckAt) {
		c.recheckAt = time.Time{}
		c.needFull()
		c.loop.Notify()
	}
}

// Run waits for the caches, writes the first complete config, then keeps
// it current until ctx ends. A rebuild in progress when ctx ends finishes
// its write or leaves the old file.
func (c *Controller) Run(ctx context.Context) error {
	log := c.opts.Log
	// This process is the file's only writer: what a killed one left is
	// garbage.
	if removed, err := c.opts.Pipeline.RemoveTemporary(); err != nil {
		log.Warn("cannot remove the temporary files of an interrupted write", "err", err)
	} else if len(removed) > 0 {
		log.Info("removed the temporary files of an interrupted write", "files", removed)
	}
	log.Info("waiting for the caches to sync")
	if err := c.opts.Source.WaitForSync(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	c.synced.Store(true)
	log.Info("caches synced")
	// The loop's first rebuild is due at once: the caches hold a complete
	// list.
	return c.loop.Run(ctx)
}

// work is the loop's piece of work: one rebuild, unless a watch is broken.
func (c *Controller) work(ctx context.Context) coalesce.Outcome {
	if !c.opts.Source.BrokenSince().IsZero() {
		// The cache may be stale or half-updated: keep the last good
		// file until the watches recover, which they notify.
		return coalesce.Outcome{RetryAfter: brokenRecheck, RetryOnChange: true}
	}
	wrote, err := c.sync(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return coalesce.Done
		}
		retry := c.backoff.Step()
		c.opts.Log.Error("config not updated; the previous file stays", "err", err, "retry_in", retry)
		return coalesce.Retry(retry)
	}
	c.backoff = retryBackoff
	// Only a new config costs nginx a reload: a rebuild that wrote none
	// (nothing changed, or only the Lua shape's table, which nginx's
	// workers load themselves) does not count against the cooldown, so
	// that endpoint changes are written as fast as they settle.
	return coalesce.Outcome{Light: !wrote}
}

// sync is one rebuild, of the EndpointSlices that changed alone when it
// can, else whole. It says whether it wrote a new config file.
func (c *Controller) sync(ctx context.Context) (wrote bool, err error) {
	changedAt, refs, full := c.takePending()
	if !full {
		done, err := c.syncEndpoints(refs, changedAt)
		if err != nil {
			c.needFull()
		}
		if done || err != nil {
			return false, err
		}
	}
	wrote, err = c.syncAll(ctx, changedAt)
	if err != nil {
		c.needFull()
	}
	return wrote, err
}

// syncEndpoints takes in new EndpointSlices of the Services refs alone
// (Pipeline.ApplyEndpoints); done is false when it cannot, and nothing was
// done.
func (c *Controller) syncEndpoints(refs []model.ServiceRef, changedAt time.Time) (done bool, err error) {
	src, ok := c.opts.Source.(LookupSource)
	if !ok {
		return false, nil
	}
	m := c.opts.Metrics
	start := c.clock.Now()
	out, ok, err := c.opts.Pipeline.ApplyEndpoints(refs, src.Lookup)
	if !ok {
		return false, nil
	}
	m.Rebuilds.Inc()
	m.RebuildSeconds.Observe(c.clock.Since(start).Seconds())
	if err != nil {
		m.WriteErrors.Inc()
		return true, err
	}
	if out.TableChanged {
		now := c.clock.Now()
		m.LastWrite.Set(float64(now.UnixNano()) / 1e9)
		m.EndpointWrites.Inc()
		if !changedAt.IsZero() {
			m.EventToWrite.Observe(now.Sub(changedAt).Seconds())
		}
		c.opts.Log.Info("wrote table", "file", c.opts.Pipeline.TableFile, "version", out.TableVersion,
			"endpoints_of", len(refs), "took", now.Sub(start).Round(time.Microsecond))
	}
	return true, nil
}

// syncAll is one whole rebuild: build, render, write if changed, report.
func (c *Controller) syncAll(ctx context.Context, changedAt time.Time) (wrote bool, err error) {
	m, log := c.opts.Metrics, c.opts.Log
	start := c.clock.Now()
	objs := c.opts.Source.Objects()
	out, err := c.opts.Pipeline.Apply(ctx, objs)
	res, changed := out.Result, out.Changed
	m.Rebuilds.Inc()
	m.RebuildSeconds.Observe(c.clock.Since(start).Seconds())
	m.observeResult(res)
	c.events.report(res.Rejected, res.Warnings, objs.Services)
	c.ingressEvents.report(res.Ingress, objs.Ingresses)
	if err != nil {
		m.WriteErrors.Inc()
		return false, err
	}
	now := c.clock.Now()
	m.LastWrite.Set(float64(now.UnixNano()) / 1e9)
	if out.TableChanged {
		m.EndpointWrites.Inc()
		if !changed && !changedAt.IsZero() {
			m.EventToWrite.Observe(now.Sub(changedAt).Seconds())
		}
		log.Info("wrote table", "file", c.opts.Pipeline.TableFile, "version", out.TableVersion,
			"took", now.Sub(start).Round(time.Microsecond))
	}
	if !changed {
		m.WritesUnchanged.Inc()
		log.Debug("config unchanged", "routes", res.Config.Routes())
	} else {
		m.Writes.Inc()
		if !changedAt.IsZero() {
			m.EventToWrite.Observe(now.Sub(changedAt).Seconds())
		}
		diff := model.DiffRoutes(c.last, res.Config)
		log.Info("wrote config", "file", c.opts.Pipeline.Output, "routes", res.Config.Routes(),
			"added", len(diff.Added), "removed", len(diff.Removed), "updated", len(diff.Updated),
			"changes", summarize(diff), "rejected", len(res.Rejected), "version", out.Version,
			"took", now.Sub(start).Round(time.Microsecond))
		if c.opts.OnWrite != nil {
			c.opts.OnWrite()
		}
	}
	c.last = res.Config
	c.recheckAt = res.Recheck
	if t := out.CertificatesRemovableAt; !t.IsZero() && (c.recheckAt.IsZero() || t.Before(c.recheckAt)) {
		c.recheckAt = t
	}
	c.written.Store(true)
	return changed, nil
}

// summarize names the first few changed routes for the log.
func summarize(d model.RouteChanges) []string {
	const most = 5
	var out []string
	for _, group := range []struct {
		sign   string
		routes []string
	}{{"+", d.Added}, {"-", d.Removed}, {"~", d.Updated}} {
		for _, r := range group.routes {
			if len(out) == most {
				return append(out, "...")
			}
			out = append(out, group.sign+r)
		}
	}
	return out
}

// Healthy reports whether the loop is turning.
func (c *Controller) Healthy() error {
	if err := c.loop.Healthy(stuckAfter); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	return nil
}

// ErrNotReady is wrapped by Ready's errors.
var ErrNotReady = errors.New("not ready")

// Ready reports whether the caches synced, the first config is on disk, and
// no watch has been broken for longer than StaleAfter.
func (c *Controller) Ready() error {
	switch {
	case !c.synced.Load():
		return fmt.Errorf("%w: caches not synced yet", ErrNotReady)
	case !c.written.Load():
		return fmt.Errorf("%w: first config not written yet", ErrNotReady)
	}
	if since := c.opts.Source.BrokenSince(); !since.IsZero() && c.clock.Since(since) > c.opts.StaleAfter {
		return fmt.Errorf("%w: watching the API server has failed for %s; the config may be stale",
			ErrNotReady, c.clock.Since(since).Round(time.Second))
	}
	return nil
}
