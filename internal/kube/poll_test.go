package kube

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	testclock "k8s.io/utils/clock/testing"
)

// waitFor waits, in real time, until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// waitForWaiters waits until n timers wait on clk, so that a Step reaches
// them.
func waitForWaiters(t *testing.T, clk *testclock.FakeClock, n int) {
	t.Helper()
	waitFor(t, "timers on the fake clock", func() bool { return clk.Waiters() == n })
}

// poll waits for the backoff's delays, on the clock it is given, after
// each time the condition is not done.
func TestPoll(t *testing.T) {
	t.Parallel()
	clk := testclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	backoff := wait.Backoff{Duration: 10 * time.Millisecond, Factor: 3, Cap: time.Second, Steps: 10}
	var calls atomic.Int32
	done := make(chan error, 1)
	go func() {
		done <- poll(context.Background(), clk, backoff.DelayFunc(), func(context.Context) (bool, error) {
			return calls.Add(1) == 4, nil
		})
	}()
	for i, d := range []time.Duration{10 * time.Millisecond, 30 * time.Millisecond, 90 * time.Millisecond} {
		waitForWaiters(t, clk, 1)
		clk.Step(d - time.Nanosecond)
		if got := calls.Load(); got != int32(i+1) {
			t.Fatalf("%d calls %s after call %d, want %d", got, d-time.Nanosecond, i+1, i+1)
		}
		clk.Step(time.Nanosecond)
	}
	if err := <-done; err != nil || calls.Load() != 4 {
		t.Fatalf("poll = %v after %d calls, want success after 4", err, calls.Load())
	}

	boom := errors.New("boom")
	err := poll(context.Background(), clk, backoff.DelayFunc(), func(context.Context) (bool, error) { return false, boom })
	if err != boom {
		t.Errorf("poll = %v, want the condition's error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		done <- poll(ctx, clk, backoff.DelayFunc(), func(context.Context) (bool, error) { return false, nil })
	}()
	waitForWaiters(t, clk, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("poll = %v, want context.Canceled", err)
	}
}
