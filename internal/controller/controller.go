package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/client-go/tools/record"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/coalesce"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
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
}

// Controller keeps the config file in step with the Source.
type Controller struct {
	opts    Options
	events  *eventReporter
	trigger chan struct{}

	// firstChange is when the oldest change not yet rendered was seen.
	mu          sync.Mutex
	firstChange time.Time

	// Owned by the loop.
	last model.Config

	synced    atomic.Bool
	written   atomic.Bool
	heartbeat atomic.Int64 // Unix nanoseconds of the loop's last turn
}

const (
	// heartbeatEvery is how often the idle loop turns, for /healthz.
	heartbeatEvery = time.Second
	// stuckAfter is how long without a turn makes the loop unhealthy: far
	// more than the slowest rebuild (nginx -t at 10,000 routes takes a few
	// seconds).
	stuckAfter = 2 * time.Minute
	// brokenRecheck is how often a rebuild held back by a broken watch is
	// looked at again (the watcher also notifies when it recovers).
	brokenRecheck = time.Second
	minRetry      = time.Second
	maxRetry      = 30 * time.Second
)

// New creates a Controller.
func New(opts Options) *Controller {
	c := &Controller{opts: opts, events: newEventReporter(opts.Recorder, opts.Log), trigger: make(chan struct{}, 1)}
	c.heartbeat.Store(time.Now().UnixNano())
	return c
}

// Notify tells the controller that the cluster state changed. It never
// blocks; the Source's event handlers call it.
func (c *Controller) Notify() {
	c.mu.Lock()
	if c.firstChange.IsZero() {
		c.firstChange = time.Now()
	}
	c.mu.Unlock()
	select {
	case c.trigger <- struct{}{}:
	default:
	}
}

// takeFirstChange returns and clears the time of the oldest pending change.
func (c *Controller) takeFirstChange() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.firstChange
	c.firstChange = time.Time{}
	return t
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

	var (
		pending = coalesce.Window{Quiet: c.opts.Debounce, MaxDelay: c.opts.MaxDelay, MaxDelayLimit: c.opts.MaxDelayLimit}
		retry   = minRetry
		// retryAt is when a failed or held-back rebuild is tried again.
		retryAt time.Time
		// heldBack says that retryAt waits for a broken watch, which
		// notifies when it recovers: then the rebuild is due at once.
		heldBack bool
	)
	// The first rebuild is due at once: the caches hold a complete list.
	pending.NotifyNow(time.Now())

	ticker := time.NewTicker(heartbeatEvery)
	defer ticker.Stop()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		c.heartbeat.Store(now.UnixNano())
		if pending.Due(now) && !now.Before(retryAt) {
			switch {
			case !c.opts.Source.BrokenSince().IsZero():
				// The cache may be stale or half-updated: keep the
				// last good file until the watches recover.
				retryAt, heldBack = now.Add(brokenRecheck), true
			default:
				pending.Reset(now)
				heldBack = false
				if err := c.sync(ctx); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					log.Error("config not updated; the previous file stays", "err", err, "retry_in", retry)
					pending.Notify(now)
					retryAt = now.Add(retry)
					retry = min(2*retry, maxRetry)
				} else {
					retry, retryAt = minRetry, time.Time{}
				}
			}
		}
		if at, ok := pending.DueAt(); ok {
			if at.Before(retryAt) {
				at = retryAt
			}
			resetTimer(timer, time.Until(at))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.trigger:
			pending.Notify(time.Now())
			if heldBack { // perhaps the watches' recovery: look again after the debounce
				retryAt, heldBack = time.Time{}, false
			}
		case <-timer.C:
		case <-ticker.C:
		}
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	t.Stop()
	t.Reset(max(d, 0))
}

// sync is one rebuild: build, render, write if changed, report.
func (c *Controller) sync(ctx context.Context) error {
	m, log := c.opts.Metrics, c.opts.Log
	changedAt := c.takeFirstChange()
	start := time.Now()
	objs := c.opts.Source.Objects()
	out, err := c.opts.Pipeline.Apply(ctx, objs)
	res, data, changed := out.Result, out.Data, out.Changed
	m.Rebuilds.Inc()
	m.RebuildSeconds.Observe(time.Since(start).Seconds())
	m.observeResult(res)
	c.events.report(res.Rejected, objs.Services)
	if err != nil {
		m.WriteErrors.Inc()
		return err
	}
	now := time.Now()
	m.LastWrite.Set(float64(now.UnixNano()) / 1e9)
	if !changed {
		m.WritesUnchanged.Inc()
		log.Debug("config unchanged", "routes", res.Config.Routes())
	} else {
		m.Writes.Inc()
		header, _ := nginxconf.Verify(data)
		if !changedAt.IsZero() {
			m.EventToWrite.Observe(now.Sub(changedAt).Seconds())
		}
		diff := model.DiffRoutes(c.last, res.Config)
		log.Info("wrote config", "file", c.opts.Pipeline.Output, "routes", res.Config.Routes(),
			"added", len(diff.Added), "removed", len(diff.Removed), "updated", len(diff.Updated),
			"changes", summarize(diff), "rejected", len(res.Rejected), "version", header.Version,
			"took", now.Sub(start).Round(time.Microsecond))
		if c.opts.OnWrite != nil {
			c.opts.OnWrite()
		}
	}
	c.last = res.Config
	c.written.Store(true)
	return nil
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
	last := time.Unix(0, c.heartbeat.Load())
	if since := time.Since(last); since > stuckAfter {
		return fmt.Errorf("the controller loop has not turned for %s", since.Round(time.Second))
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
	if since := c.opts.Source.BrokenSince(); !since.IsZero() && time.Since(since) > c.opts.StaleAfter {
		return fmt.Errorf("%w: watching the API server has failed for %s; the config may be stale",
			ErrNotReady, time.Since(since).Round(time.Second))
	}
	return nil
}
