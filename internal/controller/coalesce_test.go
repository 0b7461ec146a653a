package controller

import (
	"testing"
	"time"
)

func TestCoalescer(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	c := coalescer{quiet: 100 * time.Millisecond, maxDelay: time.Second}

	if _, ok := c.dueAt(); ok || c.due(ms(5000)) {
		t.Fatal("due with nothing pending")
	}

	// A single change is due after the quiet period.
	c.notify(ms(0))
	if c.due(ms(99)) || !c.due(ms(100)) {
		t.Errorf("single change: due(99)=%v due(100)=%v", c.due(ms(99)), c.due(ms(100)))
	}
	c.reset()

	// A steady stream of changes every 50 ms never goes quiet: the maximum
	// delay bounds it.
	for i := 0; i <= 2000; i += 50 {
		c.notify(ms(1000 + i))
		if at, _ := c.dueAt(); at.After(ms(2000)) {
			t.Fatalf("after a change at %d ms, due at %v: later than first + maxDelay", 1000+i, at.Sub(t0))
		}
		if c.due(ms(1000 + i)) {
			if 1000+i < 2000 {
				t.Fatalf("due at %d ms, before the maximum delay", 1000+i)
			}
			break
		}
	}
	if !c.due(ms(2000)) {
		t.Error("a stream of changes was not due at first + maxDelay")
	}
	c.reset()

	// Changes that settle: due quiet after the last one.
	c.notify(ms(5000))
	c.notify(ms(5030))
	c.notify(ms(5060))
	if at, _ := c.dueAt(); !at.Equal(ms(5160)) {
		t.Errorf("settled burst due at %v, want 5160 ms", at.Sub(t0))
	}
}
