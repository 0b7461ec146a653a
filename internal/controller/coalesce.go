package controller

import "time"

// coalescer decides when a burst of changes has settled: a rebuild is due
// once no change came for the quiet period, or once the first change of the
// burst is maxDelay old, whichever is first. Time is passed in, so tests
// need no clock.
type coalescer struct {
	quiet, maxDelay time.Duration
	pending         bool
	first, last     time.Time
}

// notify records a change at now.
func (c *coalescer) notify(now time.Time) {
	if !c.pending {
		c.pending, c.first = true, now
	}
	c.last = now
}

// dueAt returns when the pending rebuild is due; ok is false when nothing
// is pending.
func (c *coalescer) dueAt() (at time.Time, ok bool) {
	if !c.pending {
		return time.Time{}, false
	}
	quietEnd, maxEnd := c.last.Add(c.quiet), c.first.Add(c.maxDelay)
	if maxEnd.Before(quietEnd) {
		return maxEnd, true
	}
	return quietEnd, true
}

// due reports whether a rebuild is due at now.
func (c *coalescer) due(now time.Time) bool {
	at, ok := c.dueAt()
	return ok && !now.Before(at)
}

// reset forgets the pending changes (a rebuild has read them all).
func (c *coalescer) reset() { c.pending = false }
