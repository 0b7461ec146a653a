package coalesce

import (
	"slices"
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

// TestWindowGrowsWithAStream: a stream of changes that never pauses is
// worked on at 1, 3 and 7 s (the maximum delay doubles up to the limit,
// 4 s), then every 4 s; its end is done Quiet after the last change, and
// the next change starts from MaxDelay again.
func TestWindowGrowsWithAStream(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	c := Window{Quiet: 20 * time.Millisecond, MaxDelay: time.Second, MaxDelayLimit: 4 * time.Second}
	var done []int
	for i := 0; i <= 12000; i += 10 { // a change every 10 ms for 12 s
		c.Notify(ms(i))
		if c.Due(ms(i)) {
			done = append(done, i)
			c.Reset()
		}
	}
	if want := []int{1000, 3010, 7020, 11030}; !slices.Equal(done, want) {
		t.Errorf("work done at %v ms, want %v", done, want)
	}
	if at, _ := c.DueAt(); !at.Equal(ms(12020)) {
		t.Errorf("the end of the stream is due at %v, want 12020 ms", at.Sub(t0))
	}
	c.Reset()
	if c.MaxDelayNow() != time.Second {
		t.Errorf("after a quiet end the maximum delay is %v, want 1s", c.MaxDelayNow())
	}
	// Without a limit above MaxDelay there is no growth.
	c = Window{Quiet: 20 * time.Millisecond, MaxDelay: time.Second}
	c.Notify(ms(0))
	c.Notify(ms(1000))
	c.Reset()
	if c.MaxDelayNow() != time.Second {
		t.Errorf("no limit: maximum delay %v, want 1s", c.MaxDelayNow())
	}
}
