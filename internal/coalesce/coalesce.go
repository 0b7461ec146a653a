// Package coalesce decides when a burst of changes has settled, so that a
// burst causes one piece of work instead of one per change. Window is the
// decision, with time passed in; Loop runs a piece of work by it, on an
// injected clock, and is the one loop of both the controller and the
// reloader.
package coalesce

import "time"

// Window decides when pending changes are due for work.
//
// After a quiet time (no work for a while), a change is due Quiet after
// the last change, or MaxDelay after the first, whichever is first: a
// single change is worked on almost at once, a burst once it settles.
//
// Once work was done, a cooldown starts, at first MaxDelay long. Changes
// that begin within MaxDelay/4 of the work (the window is busy: the same
// burst or stream goes on) are due when the cooldown since the last work
// is over, or earlier when no change came for a quarter of the cooldown
// (at least Quiet, at most 500 ms): the end of a burst. Each piece
// of work done while busy (or at a stream's MaxDelay) doubles the cooldown
// up to MaxDelayLimit; work after a quiet time sets it back to MaxDelay.
// So a stream of changes of any rhythm, steady or every 100 ms, costs
// about log2(MaxDelayLimit/MaxDelay) + length/MaxDelayLimit + 2 pieces of
// work, and a burst's end is worked on at most 500 ms after its last
// change.
//
// Time is passed in, so tests need no clock. The zero value with Quiet and
// MaxDelay set is ready to use; MaxDelayLimit below MaxDelay means the
// cooldown does not grow.
type Window struct {
	Quiet, MaxDelay, MaxDelayLimit time.Duration

	pending     bool
	first, last time.Time
	// now is set by NotifyNow: the work is due at once.
	now bool
	// lastWork is when Reset was last called; cooldown is the current
	// cooldown, 0 meaning MaxDelay.
	lastWork time.Time
	cooldown time.Duration
}

func (c *Window) cool() time.Duration {
	if c.cooldown == 0 {
		return c.MaxDelay
	}
	return c.cooldown
}

// busy reports whether the pending changes began within a quarter of
// MaxDelay after the last work: part of the same burst or stream. A change
// that comes later is a change of its own, worked on after Quiet, however
// long the cooldown has grown: the cooldown bounds how often a stream is
// worked on, not how soon a change after a pause is.
func (c *Window) busy() bool {
	return !c.lastWork.IsZero() && c.first.Before(c.lastWork.Add(c.MaxDelay/4))
}

// Notify records a change at now.
func (c *Window) Notify(now time.Time) {
	if !c.pending {
		c.pending, c.first = true, now
	}
	c.last = now
}

// NotifyNow records a change whose work is due at once.
func (c *Window) NotifyNow(now time.Time) {
	c.Notify(now)
	c.now = true
}

// DueAt returns when the pending work is due; ok is false when nothing
// is pending.
func (c *Window) DueAt() (at time.Time, ok bool) {
	switch {
	case !c.pending:
		return time.Time{}, false
	case c.now:
		return c.last, true
	case c.busy():
		return earlier(c.last.Add(c.burstEnd()), c.lastWork.Add(c.cool())), true
	default:
		return earlier(c.last.Add(c.Quiet), c.first.Add(c.MaxDelay)), true
	}
}

// burstEnd is how long a busy window waits for the next change before it
// takes a burst as over: a quarter of the cooldown, at most maxBurstEnd,
// at least Quiet. Under load, the API server delivers a burst's events in
// clumps a good 100 ms apart.
func (c *Window) burstEnd() time.Duration {
	return max(c.Quiet, min(c.cool()/4, maxBurstEnd))
}

// maxBurstEnd bounds how late the end of a burst is worked on.
const maxBurstEnd = 500 * time.Millisecond

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Due reports whether the work is due at now.
func (c *Window) Due(now time.Time) bool {
	at, ok := c.DueAt()
	return ok && !now.Before(at)
}

// Reset records that the work, done at now, has taken in every pending
// change, and sets the cooldown that follows.
func (c *Window) Reset(now time.Time) {
	stream := c.pending && !c.now && (c.busy() || !c.first.Add(c.MaxDelay).After(c.last.Add(c.Quiet)))
	if stream {
		c.cooldown = min(2*c.cool(), max(c.MaxDelayLimit, c.MaxDelay))
	} else {
		c.cooldown = 0
	}
	c.pending, c.now, c.lastWork = false, false, now
}

// ResetLight records that light work took in every pending change: work
// that costs so little downstream that it neither starts nor grows the
// cooldown, which stays that of the last work recorded by Reset.
func (c *Window) ResetLight() {
	c.pending, c.now = false, false
}

// Pending reports whether changes wait for the work.
func (c *Window) Pending() bool { return c.pending }

// Cooldown is the current cooldown.
func (c *Window) Cooldown() time.Duration { return c.cool() }
