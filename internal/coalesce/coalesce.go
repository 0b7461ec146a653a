// Package coalesce decides when a burst of changes has settled, so that a
// burst causes one piece of work instead of one per change.
package coalesce

import "time"

// Window decides when a burst of changes has settled: the work is due once
// no change came for Quiet, or once the first pending change is the
// current maximum delay old, whichever is first.
//
// The maximum delay starts at MaxDelay. When the work had to be done
// because of it (changes never paused for Quiet), the stream of changes
// goes on, and the next maximum delay doubles, up to MaxDelayLimit; work
// done after a quiet pause brings it back to MaxDelay. So a single change
// is done after Quiet, a burst of any length costs about log2(limit /
// MaxDelay) + (length / MaxDelayLimit) + 1 pieces of work, and the end of
// a burst is done Quiet after its last change.
//
// Time is passed in, so tests need no clock. The zero value with Quiet and
// MaxDelay set is ready to use; MaxDelayLimit below MaxDelay means no
// growth.
type Window struct {
	Quiet, MaxDelay, MaxDelayLimit time.Duration

	pending     bool
	first, last time.Time
	// delay is the current maximum delay; 0 means MaxDelay.
	delay time.Duration
}

func (c *Window) maxDelay() time.Duration {
	if c.delay == 0 {
		return c.MaxDelay
	}
	return c.delay
}

// Notify records a change at now.
func (c *Window) Notify(now time.Time) {
	if !c.pending {
		c.pending, c.first = true, now
	}
	c.last = now
}

// DueAt returns when the pending work is due; ok is false when nothing
// is pending.
func (c *Window) DueAt() (at time.Time, ok bool) {
	if !c.pending {
		return time.Time{}, false
	}
	quietEnd, maxEnd := c.last.Add(c.Quiet), c.first.Add(c.maxDelay())
	if maxEnd.Before(quietEnd) {
		return maxEnd, true
	}
	return quietEnd, true
}

// Due reports whether the work is due at now.
func (c *Window) Due(now time.Time) bool {
	at, ok := c.DueAt()
	return ok && !now.Before(at)
}

// Reset forgets the pending changes (the work has taken them all in), and
// sets the next maximum delay: doubled when the work was due because of
// the maximum delay, MaxDelay again when it was due after a quiet pause.
func (c *Window) Reset() {
	if c.pending && c.first.Add(c.maxDelay()).Before(c.last.Add(c.Quiet)) {
		c.delay = min(2*c.maxDelay(), max(c.MaxDelayLimit, c.MaxDelay))
	} else {
		c.delay = 0
	}
	c.pending = false
}

// Pending reports whether changes wait for the work.
func (c *Window) Pending() bool { return c.pending }

// MaxDelayNow is the current maximum delay.
func (c *Window) MaxDelayNow() time.Duration { return c.maxDelay() }

// NotifyNow records a change whose work is due at once. It does not count
// as part of a stream.
func (c *Window) NotifyNow(now time.Time) {
	c.Notify(now)
	c.last = now.Add(-c.Quiet)
	c.first = c.last
}
