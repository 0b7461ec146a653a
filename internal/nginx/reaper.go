package nginx

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// tracked holds the PIDs of the children that an exec.Cmd waits for; the
// reaper leaves them alone.
var tracked sync.Map

func track(pid int)   { tracked.Store(pid, true) }
func untrack(pid int) { tracked.Delete(pid) }

// ReapZombies collects the exit status of orphaned processes that the
// kernel hands to this process, as the init process (PID 1) of a
// container must, or they stay zombies. It runs until ctx ends; call it
// only as PID 1.
//
// Children started with exec.Cmd are reaped by their own Wait: the reaper
// only takes a zombie that it saw twice, 500 ms apart, and that is not
// tracked.
func ReapZombies(ctx context.Context) {
	sigchld := make(chan os.Signal, 1)
	signal.Notify(sigchld, syscall.SIGCHLD)
	defer signal.Stop(sigchld)
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	seen := make(map[int]bool)
	for {
		select {
		case <-ctx.Done():
			return
		case <-sigchld:
		case <-ticker.C:
		}
		kids, err := children(os.Getpid())
		if err != nil {
			continue
		}
		next := make(map[int]bool)
		for _, k := range kids {
			if k.state != 'Z' {
				continue
			}
			if _, ok := tracked.Load(k.pid); ok {
				continue
			}
			if !seen[k.pid] {
				next[k.pid] = true
				continue
			}
			var ws syscall.WaitStatus
			_, _ = syscall.Wait4(k.pid, &ws, syscall.WNOHANG, nil)
		}
		seen = next
	}
}
