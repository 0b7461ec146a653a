package kube

import (
	"context"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"
)

// poll calls condition at once, then again after each delay, until it
// reports done or fails, or ctx ends; it returns condition's error, or
// ctx.Err() when ctx ended first.
//
// It is wait.ExponentialBackoffWithContext (or, with a constant delay,
// wait.PollUntilContextCancel) with the clock injected: wait's own loops
// wait on the real clock. As in client-go's reflector, the delays come from
// a wait.Backoff and the waiting from clk, so that tests step a fake clock.
func poll(ctx context.Context, clk clock.Clock, delay wait.DelayFunc, condition wait.ConditionWithContextFunc) error {
	for {
		if done, err := condition(ctx); err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-clk.After(delay()):
		}
	}
}
