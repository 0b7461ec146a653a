package coalesce

import (
	"testing"
	"time"
)

func TestCoalescer(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	c := Window{Quiet: 100 * time.Millisecond, MaxDelay: time.Second}

	if _, ok := c.DueAt(); ok || c.Due(ms(5000)) {
		t.Fatal("due with nothing pending")
	}

	// A single change is due after the quiet period.
	c.Notify(ms(0))
	if c.Due(ms(99)) || !c.Due(ms(100)) {
		t.Errorf("single change: due(99)=%v due(100)=%v", c.Due(ms(99)), c.Due(ms(100)))
	}
	c.Reset()

	// A steady stream of changes every 50 ms never goes quiet: the maximum
	// delay bounds it.
	for i := 0; i <= 2000; i += 50 {
		c.Notify(ms(1000 + i))
		if at, _ := c.DueAt(); at.After(ms(2000)) {
			t.Fatalf("after a change at %d ms, due at %v: later than first + maxDelay", 1000+i, at.Sub(t0))
		}
		if c.Due(ms(1000 + i)) {
			if 1000+i < 2000 {
				t.Fatalf("due at %d ms, before the maximum delay", 1000+i)
			}
			break
		}
	}
	if !c.Due(ms(2000)) {
		t.Error("a stream of changes was not due at first + maxDelay")
	}
	c.Reset()

	// Changes that settle: due quiet after the last one.
	c.Notify(ms(5000))
	c.Notify(ms(5030))
	c.Notify(ms(5060))
	if at, _ := c.DueAt(); !at.Equal(ms(5160)) {
		t.Errorf("settled burst due at %v, want 5160 ms", at.Sub(t0))
	}
	c.Reset()

	// NotifyNow: due at once.
	c.NotifyNow(ms(9000))
	if !c.Pending() || !c.Due(ms(9000)) {
		t.Error("NotifyNow is not due at once")
	}
}
