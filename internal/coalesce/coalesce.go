// Package coalesce decides when a burst of changes has settled, so that a
// burst causes one piece of work instead of one per change.
package coalesce

import "time"

// Window decides when a burst of changes has settled: the work is due once
// no change came for Quiet, or once the first change of the burst is
// MaxDelay old, whichever is first. Time is passed in, so tests need no
// clock. The zero value with Quiet and MaxDelay set is ready to use.
type Window struct {
	Quiet, MaxDelay time.Duration
	pending         bool
	first, last     time.Time
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
	quietEnd, maxEnd := c.last.Add(c.Quiet), c.first.Add(c.MaxDelay)
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

// Reset forgets the pending changes (the work has taken them all in).
func (c *Window) Reset() { c.pending = false }

// Pending reports whether changes wait for the work.
func (c *Window) Pending() bool { return c.pending }

// NotifyNow records a change whose work is due at once.
func (c *Window) NotifyNow(now time.Time) {
	c.Notify(now)
	c.last = now.Add(-c.Quiet)
	c.first = now.Add(-c.MaxDelay)
}
