package coalesce

import (
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func ms(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }

// drive sends a change at each of the times (ms) and does the work as soon
// as it is due, checking every millisecond until end; it returns when the
// work was done.
func drive(c *Window, changes []int, end int) []int {
	var done []int
	next := 0
	for now := 0; now <= end; now++ {
		for next < len(changes) && changes[next] == now {
			c.Notify(ms(now))
			next++
		}
		if c.Due(ms(now)) {
			done = append(done, now)
			c.Reset(ms(now))
		}
	}
	return done
}

func every(from, to, step int) []int {
	var out []int
	for t := from; t <= to; t += step {
		out = append(out, t)
	}
	return out
}

func TestWindow(t *testing.T) {
	t.Parallel()
	window := func() *Window {
		return &Window{Quiet: 20 * time.Millisecond, MaxDelay: time.Second, MaxDelayLimit: 4 * time.Second}
	}
	tests := []struct {
		name    string
		changes []int
		end     int
		want    []int
	}{
		{"nothing", nil, 5000, nil},
		{"a single change is due Quiet after it", []int{100}, 5000, []int{120}},
		{"two changes 10 ms apart are one piece of work", []int{100, 110}, 5000, []int{130}},
		// The second change comes after the work on the first, within
		// the cooldown: it is the end of a burst, due a quarter of the
		// cooldown later.
		{"a change just after work waits cooldown/4", []int{100, 130}, 5000, []int{120, 380}},
		// A change every 10 ms for 12 s: at MaxDelay, then the cooldown
		// doubles (2 s, 4 s, 4 s), and the end is due 500 ms (at most)
		// after the last change.
		{"a steady stream", every(0, 12000, 10), 20000, []int{1000, 3000, 7000, 11000, 12500}},
		// A change every 100 ms never pauses for cooldown/4 once busy.
		{"a stream with pauses", every(0, 12000, 100), 20000, []int{20, 1020, 3020, 7020, 11020, 12500}},
		// The last change (3000) is taken in by the work at 3000. After
		// a quiet time the cooldown is MaxDelay again.
		{"quiet time resets", append(every(0, 3000, 10), 10000, 10005), 20000, []int{1000, 3000, 10025}},
	}
	for _, tt := range tests {
		if got := drive(window(), tt.changes, tt.end); !slices.Equal(got, tt.want) {
			t.Errorf("%s: work at %v ms, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWindowWithoutLimitDoesNotGrow(t *testing.T) {
	t.Parallel()
	c := &Window{Quiet: 20 * time.Millisecond, MaxDelay: time.Second}
	if got, want := drive(c, append(every(0, 5000, 10), 5001), 10000), []int{1000, 2000, 3000, 4000, 5000, 5251}; !slices.Equal(got, want) {
		t.Errorf("work at %v ms, want %v", got, want)
	}
	if c.Cooldown() != time.Second {
		t.Errorf("cooldown %v, want 1s", c.Cooldown())
	}
}

func TestNotifyNow(t *testing.T) {
	t.Parallel()
	c := &Window{Quiet: 100 * time.Millisecond, MaxDelay: time.Second, MaxDelayLimit: 4 * time.Second}
	if _, ok := c.DueAt(); ok || c.Due(ms(5000)) {
		t.Fatal("due with nothing pending")
	}
	c.NotifyNow(ms(9000))
	if !c.Pending() || !c.Due(ms(9000)) {
		t.Error("NotifyNow is not due at once")
	}
	c.Reset(ms(9000))
	c.NotifyNow(ms(9001))
	if !c.Due(ms(9001)) {
		t.Error("NotifyNow right after work is not due at once")
	}
	c.Reset(ms(9001))
	if c.Cooldown() != time.Second {
		t.Errorf("NotifyNow grew the cooldown to %v", c.Cooldown())
	}
}
