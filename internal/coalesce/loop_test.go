package coalesce

import (
	"context"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// loopBed runs a Loop on a fake clock in lock step with the test: each
// step call returns once the loop has acted on everything and waits again.
type loopBed struct {
	t     *testing.T
	clock *clocktesting.FakeClock
	loop  *Loop
	turns chan time.Time // when the loop's timer is set for
	// timerAt is when the loop's timer is set for, zero when not.
	timerAt time.Time

	mu sync.Mutex
	// worked holds the fake time of each call of the work, as an offset
	// from the start.
	worked  []time.Duration
	outcome []Outcome // returned by the next calls, then Done
}

func newLoopBed(t *testing.T, opts LoopOptions) *loopBed {
	t.Helper()
	b := &loopBed{t: t, clock: clocktesting.NewFakeClock(t0), turns: make(chan time.Time)}
	opts.Clock = b.clock
	if opts.Heartbeat == 0 {
		opts.Heartbeat = time.Hour // out of the way, unless the test wants it
	}
	opts.Work = b.work
	b.loop = NewLoop(opts)
	b.loop.turned = func(ctx context.Context, timerAt time.Time) {
		select {
		case b.turns <- timerAt:
		case <-ctx.Done():
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.loop.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	b.wait() // the first work, done at once
	return b
}

func (b *loopBed) work(context.Context) Outcome {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.worked = append(b.worked, b.clock.Since(t0))
	if len(b.outcome) == 0 {
		return Done
	}
	out := b.outcome[0]
	b.outcome = b.outcome[1:]
	return out
}

// wait returns once the loop has acted on what it was given and waits.
func (b *loopBed) wait() {
	b.t.Helper()
	select {
	case b.timerAt = <-b.turns:
	case <-time.After(10 * time.Second): // a hung loop, not a slow one
		b.t.Fatal("the loop did not turn")
	}
}

func (b *loopBed) notify() { b.loop.Notify(); b.wait() }

// advance moves the fake clock forward by d, stopping wherever the loop's
// timer fires to let the loop act.
func (b *loopBed) advance(d time.Duration) {
	b.t.Helper()
	end := b.clock.Now().Add(d)
	for !b.timerAt.IsZero() && !b.timerAt.After(end) {
		b.clock.SetTime(b.timerAt)
		b.wait()
	}
	b.clock.SetTime(end)
}

func (b *loopBed) workTimes() []time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]time.Duration(nil), b.worked...)
}

func msd(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLoopFirstWorkAtOnceThenAfterQuiet(t *testing.T) {
	b := newLoopBed(t, LoopOptions{Quiet: msd(20), MaxDelay: msd(1000)})
	b.advance(msd(2000)) // past the cooldown: the next change is on its own
	b.notify()           // at 2000
	b.advance(msd(100))
	if got, want := b.workTimes(), []time.Duration{0, msd(2020)}; !equalDurations(got, want) {
		t.Errorf("work at %v, want %v", got, want)
	}
}

func TestLoopBurstIsOneWork(t *testing.T) {
	b := newLoopBed(t, LoopOptions{Quiet: msd(20), MaxDelay: msd(1000)})
	b.advance(msd(2000))
	for range 10 { // a change every 10 ms, for 100 ms
		b.notify()
		b.advance(msd(10))
	}
	b.advance(msd(100))
	// The last change came at 2090: due 20 ms later.
	if got, want := b.workTimes(), []time.Duration{0, msd(2110)}; !equalDurations(got, want) {
		t.Errorf("work at %v, want %v", got, want)
	}
}

func TestLoopNotifyNow(t *testing.T) {
	b := newLoopBed(t, LoopOptions{Quiet: msd(20), MaxDelay: msd(1000)})
	b.advance(msd(5))
	b.loop.NotifyNow()
	b.wait()
	if got, want := b.workTimes(), []time.Duration{0, msd(5)}; !equalDurations(got, want) {
		t.Errorf("work at %v, want %v", got, want)
	}
}

func TestLoopRetryAfter(t *testing.T) {
	b := newLoopBed(t, LoopOptions{Quiet: msd(20), MaxDelay: msd(1000)})
	b.advance(msd(2000))
	b.outcome = []Outcome{Retry(msd(300)), Retry(msd(300))}
	b.notify() // due at 2020, retried at 2320 and 2620
	b.advance(msd(1000))
	if got, want := b.workTimes(), []time.Duration{0, msd(2020), msd(2320), msd(2620)}; !equalDurations(got, want) {
		t.Errorf("work at %v, want %v", got, want)
	}
}

func TestLoopRetryWaitIgnoresChanges(t *testing.T) {
	b := newLoopBed(t, LoopOptions{Quiet: msd(20), MaxDelay: msd(1000)})
	b.advance(msd(2000))
	b.outcome = []Outcome{Retry(msd(300))}
	b.notify() // due at 2020, then waits until 2320
	b.advance(msd(100))
	b.notify() // at 2100: still waits for 2320 (a rate cap)
	b.advance(msd(400))
	if got, want := b.workTimes(), []time.Duration{0, msd(2020), msd(2320)}; !equalDurations(got, want) {
		t.Errorf("work at %v, want %v", got, want)
	}
}

func TestLoopRetryOnChange(t *testing.T) {
	b := newLoopBed(t, LoopOptions{Quiet: msd(20), MaxDelay: msd(1000)})
	b.advance(msd(2000))
	b.outcome = []Outcome{{RetryAfter: time.Second, RetryOnChange: true}}
	b.notify() // due at 2020, held back until 3020 or a change
	b.advance(msd(100))
	b.notify() // at 2100: due 20 ms later, like any change
	b.advance(msd(100))
	if got, want := b.workTimes(), []time.Duration{0, msd(2020), msd(2120)}; !equalDurations(got, want) {
		t.Errorf("work at %v, want %v", got, want)
	}
}

func TestLoopTickAndHealthy(t *testing.T) {
	var mu sync.Mutex
	var ticks []bool
	b := newLoopBed(t, LoopOptions{Quiet: msd(20), MaxDelay: msd(1000), Heartbeat: time.Second,
		Tick: func(pending bool) { mu.Lock(); ticks = append(ticks, pending); mu.Unlock() }})
	if err := b.loop.Healthy(time.Minute); err != nil {
		t.Errorf("Healthy at start = %v", err)
	}
	b.clock.Step(time.Second) // the heartbeat: one turn
	b.wait()
	mu.Lock()
	if len(ticks) != 1 || ticks[0] {
		t.Errorf("ticks = %v, want one with nothing pending", ticks)
	}
	mu.Unlock()
	// The loop is blocked in the test's hook, as a hung work would block
	// it: after stuckAfter of fake time it is unhealthy.
	b.clock.Step(2 * time.Minute)
	if err := b.loop.Healthy(time.Minute); err == nil {
		t.Error("Healthy = nil for a loop that has not turned for 2 minutes")
	}
	b.wait() // the heartbeat's turn
	if err := b.loop.Healthy(time.Minute); err != nil {
		t.Errorf("Healthy after a turn = %v", err)
	}
}

func TestLoopLightWorkNeedsNoCooldown(t *testing.T) {
	b := newLoopBed(t, LoopOptions{Quiet: msd(20), MaxDelay: msd(1000), MaxDelayLimit: msd(4000)})
	b.advance(msd(2000))
	// A stream of changes every 100 ms whose work is light (no reload):
	// each is due Quiet after it, as if the work before had not run.
	b.outcome = []Outcome{{Light: true}, {Light: true}, {Light: true}, {Light: true}, Done}
	for range 4 {
		b.notify()
		b.advance(msd(100))
	}
	// Then a change whose work is costly, and one 100 ms after it: that
	// one is part of a burst again, due at its end (a quarter of the
	// cooldown after it) or at the cooldown's end, whichever is first.
	b.notify() // at 2400, due 2420
	b.advance(msd(100))
	b.notify() // at 2500: busy, due at 2500 + 250
	b.advance(msd(2000))
	want := []time.Duration{0, msd(2020), msd(2120), msd(2220), msd(2320), msd(2420), msd(2750)}
	if got := b.workTimes(); !equalDurations(got, want) {
		t.Errorf("work at %v, want %v", got, want)
	}
}
