package coalesce

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// Outcome is what a piece of work asks of the Loop.
type Outcome struct {
	// RetryAfter, when positive, says that the work is not done: the
	// changes stay pending, and the work runs again no sooner than
	// RetryAfter from now (a rate cap, a backoff after a failure, a wait
	// for something else to finish).
	RetryAfter time.Duration
	// RetryOnChange lets a new change end the RetryAfter wait: the work
	// is then due as for any change. It suits a wait for something that
	// announces itself with a change (a watch that recovers), not a rate
	// cap.
	RetryOnChange bool
	// Light says that the work took in every pending change at little
	// cost downstream (nothing written, or only what needs no reload):
	// it does not count against the cooldown, which bounds how often
	// costly work is done. Changes after it are due as if it had not
	// run.
	Light bool
}

// Done is the Outcome of work that took in every pending change.
var Done = Outcome{}

// Retry is the Outcome of work to be tried again after d.
func Retry(d time.Duration) Outcome { return Outcome{RetryAfter: max(d, time.Nanosecond)} }

// LoopOptions configure a Loop.
type LoopOptions struct {
	// Quiet, MaxDelay and MaxDelayLimit shape the coalescing (see Window).
	Quiet, MaxDelay, MaxDelayLimit time.Duration
	// Work does the pending work. It runs on the loop's goroutine, one
	// call at a time; changes notified meanwhile are due after it.
	Work func(ctx context.Context) Outcome
	// Tick, when set, runs on the loop's goroutine at every heartbeat;
	// pending says whether changes wait for work. It may call Notify or
	// NotifyNow.
	Tick func(pending bool)
	// Heartbeat is how often an idle loop turns, to show that it is alive
	// and to call Tick; 0 means a second.
	Heartbeat time.Duration
	// Clock is the loop's time; nil means the real clock.
	Clock clock.WithTicker
}

// Loop runs a piece of work once per settled burst of changes: the one
// loop of the controller (rebuild the config) and of the reloader (reload
// nginx). Changes come from any goroutine through Notify; Run owns the
// coalescing Window and calls Work when it is due, and again after the
// wait the work asks for while it is not done.
type Loop struct {
	opts    LoopOptions
	clock   clock.WithTicker
	changed chan struct{}
	urgent  chan struct{}
	// lastTurn is when the loop last turned, in Unix nanoseconds of the
	// loop's clock.
	lastTurn atomic.Int64
	// turned, set by tests only, is called before each wait for an event,
	// once the loop has acted on everything it had seen, with the time its
	// timer is set for (zero when it is not set).
	turned func(ctx context.Context, timerAt time.Time)
}

// NewLoop creates a Loop.
func NewLoop(opts LoopOptions) *Loop {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = time.Second
	}
	l := &Loop{opts: opts, clock: opts.Clock, changed: make(chan struct{}, 1), urgent: make(chan struct{}, 1)}
	l.lastTurn.Store(l.clock.Now().UnixNano())
	return l
}

// Notify records a change. It never blocks; changes notified before the
// loop takes them in are one change.
func (l *Loop) Notify() { poke(l.changed) }

// NotifyNow records a change whose work is due at once.
func (l *Loop) NotifyNow() { poke(l.urgent) }

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run does the first work at once, then works on changes as they settle,
// until ctx ends. It returns nil then.
func (l *Loop) Run(ctx context.Context) error {
	window := Window{Quiet: l.opts.Quiet, MaxDelay: l.opts.MaxDelay, MaxDelayLimit: l.opts.MaxDelayLimit}
	window.NotifyNow(l.clock.Now())
	var (
		// retryAt is when work that was not done may run again;
		// retryOnChange says a change ends that wait.
		retryAt       time.Time
		retryOnChange bool
	)
	heartbeat := l.clock.NewTicker(l.opts.Heartbeat)
	defer heartbeat.Stop()
	timer := l.clock.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := l.clock.Now()
		l.lastTurn.Store(now.UnixNano())
		if window.Due(now) && !now.Before(retryAt) {
			out := l.opts.Work(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if out.RetryAfter > 0 {
				retryAt, retryOnChange = l.clock.Now().Add(out.RetryAfter), out.RetryOnChange
			} else if out.Light {
				window.ResetLight()
			} else {
				window.Reset(now)
				retryAt, retryOnChange = time.Time{}, false
			}
		}
		stopTimer(timer)
		at, pending := window.DueAt()
		if pending {
			if at.Before(retryAt) {
				at = retryAt
			}
			timer.Reset(max(at.Sub(l.clock.Now()), 0))
		}
		if l.turned != nil {
			if !pending {
				at = time.Time{}
			}
			l.turned(ctx, at)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-l.changed:
			window.Notify(l.clock.Now())
			if retryOnChange {
				retryAt, retryOnChange = time.Time{}, false
			}
		case <-l.urgent:
			window.NotifyNow(l.clock.Now())
			if retryOnChange {
				retryAt, retryOnChange = time.Time{}, false
			}
		case <-timer.C():
		case <-heartbeat.C():
			if l.opts.Tick != nil {
				l.opts.Tick(window.Pending())
			}
		}
	}
}

// stopTimer stops t and drains a fire that was not received, so that a
// Reset starts clean.
func stopTimer(t clock.Timer) {
	if !t.Stop() {
		select {
		case <-t.C():
		default:
		}
	}
}

// Healthy reports an error when the loop has not turned for longer than
// stuckAfter: its work hangs. An idle loop turns every Heartbeat.
func (l *Loop) Healthy(stuckAfter time.Duration) error {
	if since := l.clock.Since(time.Unix(0, l.lastTurn.Load())); since > stuckAfter {
		return fmt.Errorf("the loop has not turned for %s", since.Round(time.Second))
	}
	return nil
}
