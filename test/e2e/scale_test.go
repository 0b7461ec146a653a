//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
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
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			ctx := context.Background()
			for i := range work {
				name := fmt.Sprintf("svc-%05d", i)
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: exposed},
					Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{httpPort("http", 80)}},
				}
				if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					t.Errorf("create %s: %v", name, err)
					continue
				}
				var eps []endpoint
				for j := range 3 {
					eps = append(eps, endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, byte(100 + j), byte(1 + i%250)})})
				}
				slice := testbed.EndpointSlice(name, []slicePort{sp("http", 8080)}, eps...)
				if _, err := client.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
					t.Errorf("create slice of %s: %v", name, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		return
	}
	created := time.Since(start)

	startedAt := time.Now()
	g := startGenerator(t, ns)
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
