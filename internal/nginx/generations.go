package nginx

import (
	"slices"
	"strings"
)

// workers returns the PIDs of the master's worker processes that are not
// shutting down (the current generation, while no reload is in progress).
func workers(master int) ([]int, error) {
	kids, err := children(master)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, k := range kids {
		if k.state != 'Z' && strings.Contains(k.cmdline, "worker process") && !strings.Contains(k.cmdline, "shutting down") {
			pids = append(pids, k.pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}

// generations tracks the worker generations that reloads replaced and that
// still drain: nginx keeps an old worker alive while it has connections,
// each with a copy of its old config in memory.
type generations struct {
	draining [][]int
}

// retire records the workers of a generation that a reload replaced.
func (g *generations) retire(pids []int) {
	if len(pids) > 0 {
		g.draining = append(g.draining, pids)
	}
}

// prune forgets the processes that have exited and the generations that
// have none left; it returns how many generations and workers still
// drain, and their resident memory.
func (g *generations) prune(n Nginx) (gens, procs int, rss int64) {
	kept := g.draining[:0]
	for _, gen := range g.draining {
		live, bytes := n.Resident(gen)
		rss += bytes
		if len(live) > 0 {
			kept = append(kept, live)
			procs += len(live)
		}
	}
	g.draining = kept
	return len(kept), procs, rss
}

// has reports whether pid belongs to a draining generation.
func (g *generations) has(pid int) bool {
	for _, gen := range g.draining {
		if slices.Contains(gen, pid) {
			return true
		}
	}
	return false
}
