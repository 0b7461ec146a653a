//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestWatchScale10000 measures the generator with its informers holding
// 10,000 Services and their EndpointSlices (3 endpoints each): the
// process's resident memory against a generator over an empty namespace,
// started in the same run, and the time to render. It reports the figures;
// memory targets belong to the benchmarks, so it only checks the result is
// complete.
func TestWatchScale10000(t *testing.T) {
	t.Parallel()
	const n = 10000
	ns := newNamespace(t)
	empty := startGenerator(t, newNamespace(t))

	start := time.Now()
	createMany(t, ns, n, 3, 16)
	if t.Failed() {
		return
	}
	created := time.Since(start)

	startedAt := time.Now()
	// Listing 20,000 objects is the API server's work, on a machine that
	// the other tests share: the time is reported, and bounded generously.
	g := startGeneratorWith(t, ns, generatorOptions{readyWithin: 2 * time.Minute})
	readyAfter := time.Since(startedAt)
	if routes := g.metric(t, "routes"); routes != n {
		t.Fatalf("%v routes, want %d", routes, n)
	}
	config := g.file(t)
	if got := strings.Count(config, "\n    location /"+ns+"/svc-"); got != n {
		t.Errorf("%d routes in the file, want %d", got, n)
	}
	rss, emptyRSS := residentMiB(t, g.cmd.Process.Pid), residentMiB(t, empty.cmd.Process.Pid)
	t.Logf("%d Services + %d EndpointSlices (3 endpoints each): created in %s; a new generator was ready (caches synced, %d-byte file written) in %s; "+
		"RSS %.1f MiB (a generator over an empty namespace: %.1f MiB); Go heap in use %.1f MiB; rebuild+render took %.0f ms on average",
		n, n, created.Round(time.Second), len(config), readyAfter.Round(time.Millisecond), rss, emptyRSS,
		metric(t, g.listen, "go_memstats_heap_inuse_bytes")/(1<<20),
		1000*g.metric(t, "rebuild_duration_seconds_sum")/g.metric(t, "rebuild_duration_seconds_count"))
}

// residentMiB reads a process's resident set size.
func residentMiB(t *testing.T, pid int) float64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
