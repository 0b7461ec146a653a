//go:build e2e

package e2e

// The fault-injection suite, nginx's side (see faults_test.go): a worker
// killed under load, and a long churn of the cluster under load. A killed
// master is TestReloadExitsWhenNginxDies (run_test.go).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// TestFaultsNginxWorkerKilled kills nginx's worker with SIGKILL three times
// while 50 keep-alive clients load a route with GET, and 10 more with POST:
// nginx's master starts a new worker each time and the traffic goes on.
// The failed requests (at most those in flight on the killed worker) are
// counted: Go's Transport sends a GET again on a new connection when its
// connection breaks, not a POST, so the POST clients see what a client
// without retries would. The reloader stays healthy and still reloads a
// changed config afterwards.
func TestFaultsNginxWorkerKilled(t *testing.T) {
	t.Parallel()
	const (
		clients     = 50
		postClients = 10
		kills       = 3
	)
	bed := newLoadBed(t)
	port, statusPort, file, render := bed.port, bed.statusPort, bed.file, bed.render
	rl := startReloader(t, bed.confDir)
	stable := target{port: port, path: "/stable/x", body: "stable /x"}
	waitAnswers(t, stable)
	master := nginxMaster(t, rl.cmd.Process.Pid)
	ld := startLoad(t, clients, stable)
	posts := startLoad(t, postClients, target{port: port, path: "/stable/x", body: "stable /x", post: true})
	// Every client has a keep-alive connection to the worker.
	eventually(t, 20*time.Second, func() error {
		if err := ld.eachFinishedSince(nil, 1); err != nil {
			return fmt.Errorf("GET: %w", err)
		}
		if err := posts.eachFinishedSince(nil, 1); err != nil {
			return fmt.Errorf("POST: %w", err)
		}
		return nil
	})

	var lines []string
	var totalFailed int64
	for i := range kills {
		old := nginxWorkers(t, master)
		if len(old) == 0 {
			t.Fatalf("kill %d: nginx has no worker", i+1)
		}
		failedBefore, requestsBefore, postsFailedBefore := ld.failures.Load(), ld.requests.Load(), posts.failures.Load()
		getsAtKill, postsAtKill := ld.progress(), posts.progress()
		killed := time.Now()
		for _, pid := range old {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}
		var fresh []int
		eventually(t, 10*time.Second, func() error {
			fresh = nginxWorkers(t, master)
			for _, pid := range fresh {
				for _, o := range old {
					if pid == o {
						return fmt.Errorf("the killed worker %d is still listed", pid)
					}
				}
			}
			if len(fresh) == 0 {
				return fmt.Errorf("no new worker yet")
			}
			return nil
		})
		replaced := time.Since(killed)
		// The traffic goes on: 100 GETs answered since the kill, and every
		// client done with the request it had in flight then (so that the
		// kill's failures are all counted) and with one it began after.
		var failed, served int64
		eventually(t, 20*time.Second, func() error {
			failed, served = ld.failures.Load()-failedBefore, ld.requests.Load()-requestsBefore
			if served-failed < 100 {
				return fmt.Errorf("kill %d: only %d requests succeeded since: the traffic did not go on", i+1, served-failed)
			}
			if err := ld.eachFinishedSince(getsAtKill, 2); err != nil {
				return fmt.Errorf("kill %d: GET %w", i+1, err)
			}
			if err := posts.eachFinishedSince(postsAtKill, 2); err != nil {
				return fmt.Errorf("kill %d: POST %w", i+1, err)
			}
			return nil
		})
		totalFailed += failed
		lines = append(lines, fmt.Sprintf("kill %d (worker %v): new worker %v after %s; %d GETs in the next %s, %d failed; %d POSTs failed",
			i+1, old, fresh, replaced.Round(time.Millisecond), served, time.Since(killed).Round(time.Millisecond), failed,
			posts.failures.Load()-postsFailedBefore))
	}

	// The reloader still reloads, and confirms by the version served.
	postsFailedBeforeReload := posts.failures.Load()
	if _, err := writeAtomically(file, render(1)); err != nil {
		t.Fatal(err)
	}
	next, _ := nginxconf.Verify(render(1))
	eventually(t, 15*time.Second, func() error {
		if status, body := get(t, statusPort, "", nginxconf.VersionPath); status != 200 || body != next.Version+"\n" {
			return fmt.Errorf("status server answers %d %q, want %s", status, body, next.Version)
		}
		return nil
	})
	ld.stop()
	posts.stop()
	postsFailedInReload := posts.failures.Load() - postsFailedBeforeReload
	for _, path := range []string{"/healthz", "/readyz"} {
		if code := httpStatus("http://" + rl.listen + path); code != 200 {
			t.Errorf("the reloader's %s answers %d after its nginx lost workers", path, code)
		}
	}
	if n := rl.reloads(t, nginx.ResultFailed) + rl.reloads(t, nginx.ResultInvalid); n != 0 {
		t.Errorf("%v reloads failed", n)
	}
	t.Logf("nginx's worker killed %d times: GET %s; POST %s; %s; afterwards a changed config was reloaded and confirmed (%d POSTs failed during that reload)\n  %s",
		kills, ld, posts, nginxFigures(t, rl.listen), postsFailedInReload, strings.Join(lines, "\n  "))
	if totalFailed+posts.failures.Load() > 0 {
		t.Logf("failed requests (in flight on a killed worker):%s%s", ld.failuresSince(ld.started), posts.failuresSince(ld.started))
	}
	// At most the request in flight on each client's connection fails.
	if totalFailed > clients*kills {
		t.Errorf("%d GETs failed, more than one per client and kill", totalFailed)
	}
	if n := posts.failures.Load(); n > postClients*kills {
		t.Errorf("%d POSTs failed, more than one per client and kill", n)
	}
}

// TestFaultsChurnSoak: for a minute, Services and EndpointSlices change
// five times a second (created, deleted, endpoints moved, paths changed)
// under `run` (the generator and nginx in one process), while 50
// keep-alive clients load three routes that never change. No request may
// fail; the reloads stay within the rate cap (--min-reload-interval); and
// once the churn is undone, nginx serves the first config again with as
// many workers as before and about as much memory.
func TestFaultsChurnSoak(t *testing.T) {
	t.Parallel()
	const (
		clients     = 50
		duration    = 60 * time.Second
		every       = 200 * time.Millisecond
		minInterval = 500 * time.Millisecond
	)
	ns := newNamespace(t)
	var targets []target
	for i := range 3 {
		name := fmt.Sprintf("stable-%d", i)
		b := startBackend(t, name, netip.AddrPortFrom(nextIP(), 8080))
		createService(t, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
		createSlice(t, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: b.Addr()})
		targets = append(targets, target{path: "/" + ns + "/" + name + "/x", body: name + " /x"})
	}
	a := startRun(t, ns, "--debounce", "100ms", "--max-delay", "1s", "--min-reload-interval", minInterval.String())
	for i := range targets {
		targets[i].port = a.port
		waitAnswers(t, targets[i])
	}
	file := filepath.Join(a.confDir, "default.conf")
	waitSettled(t, a.daemon, a.listen, file, a.statusPort)
	first, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	m := func(name string) float64 { return metric(t, a.listen, "kube_nginx_sync_"+name) }
	before, workersBefore, rssBefore := nginxFigures(t, a.listen), m("nginx_workers"), m("nginx_workers_resident_bytes")
	heapBefore := metric(t, a.listen, "go_memstats_heap_inuse_bytes")
	reloadsBefore, writesBefore := m(`reloads_total{result="ok"}`), m("config_writes_total")

	ld := startLoad(t, clients, targets...)
	// Reported only: POSTs are not retried by Go's Transport, so they meet
	// the race of HTTP keep-alive, a request sent on a connection that the
	// server (an old worker, after a reload) is closing as idle.
	posts := startLoad(t, 5, target{port: a.port, path: targets[0].path, body: targets[0].body, post: true})
	ch := newChurn(t, ns)
	start := time.Now()
	for time.Since(start) < duration {
		ch.step()
		time.Sleep(every) // paces the churn, a load generator; it waits for nothing
	}
	churned := time.Since(start)
	ch.undo()
	// Back to the first config, and nginx serves it.
	want, _ := nginxconf.Verify(first)
	eventually(t, 30*time.Second, func() error {
		if status, body := get(t, a.statusPort, "", nginxconf.VersionPath); status != 200 || body != want.Version+"\n" {
			return fmt.Errorf("status server answers %d %q, want the first version %.12s", status, body, want.Version)
		}
		return nil
	})
	ld.stop()
	posts.stop()
	reloads, writes := m(`reloads_total{result="ok"}`)-reloadsBefore, m("config_writes_total")-writesBefore
	// Old workers finish their connections, and nginx is as it was. The
	// workers' memory is read from the same sample, taken after the drain.
	var rssAfter float64
	eventually(t, 30*time.Second, func() error {
		s := scrape(t, a.listen)
		if g, w := s["kube_nginx_sync_nginx_draining_generations"], s["kube_nginx_sync_nginx_workers"]; g != 0 || w != workersBefore {
			return fmt.Errorf("%v draining generations, %v workers (%v before)", g, w, workersBefore)
		}
		rssAfter = s["kube_nginx_sync_nginx_workers_resident_bytes"]
		return nil
	})
	after := nginxFigures(t, a.listen)
	bound := float64(churned/minInterval) + 5 // + the undo, and the confirmation of the last
	t.Logf("churn for %s (a change every %s): %s; %v config writes, %v confirmed reloads (bound from --min-reload-interval %s: %v), %v failed; "+
		"GET %s; (reported only) POST %s; nginx before: %s; after: %s; the generator's Go heap %.1f MiB before, %.1f MiB after",
		churned.Round(time.Millisecond), every, ch, writes, reloads, minInterval, bound, m(`reloads_total{result="failed"}`)+m(`reloads_total{result="invalid"}`),
		ld, posts, before, after, heapBefore/(1<<20), metric(t, a.listen, "go_memstats_heap_inuse_bytes")/(1<<20))
	if n := ld.failures.Load(); n > 0 {
		t.Errorf("%d of %d requests to routes that never changed failed:%s", n, ld.requests.Load(), ld.failuresSince(start))
	}
	if reloads > bound {
		t.Errorf("%v reloads in %s, more than the rate cap allows (%v)", reloads, churned, bound)
	}
	if reloads < 10 {
		t.Errorf("only %v reloads: the churn did not reach nginx", reloads)
	}
	if rssAfter > 2*rssBefore+16<<20 {
		t.Errorf("nginx's workers use %.1f MiB after the churn, %.1f MiB before", rssAfter/(1<<20), rssBefore/(1<<20))
	}
}

// churn changes Services and EndpointSlices of a namespace at random: it
// creates Services (with a slice), deletes them, moves their endpoints and
// changes their paths. Its Services are named churn-N.
type churn struct {
	t      *testing.T
	ns     string
	rnd    *rand.Rand
	next   int
	slices map[string]*discoveryv1.EndpointSlice // by Service
	counts map[string]int
}

func newChurn(t *testing.T, ns string) *churn {
	return &churn{t: t, ns: ns, rnd: rand.New(rand.NewPCG(8, 8)), slices: map[string]*discoveryv1.EndpointSlice{}, counts: map[string]int{}}
}

func (c *churn) names() []string {
	var names []string
	for n := range c.slices {
		names = append(names, n)
	}
	return names
}

// step makes one change.
func (c *churn) step() {
	t, ctx := c.t, context.Background()
	names := c.names()
	op := c.rnd.IntN(10)
	switch {
	case len(names) < 3 || op < 3 && len(names) < 20:
		name := fmt.Sprintf("churn-%d", c.next)
		c.next++
		createService(t, c.ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
		c.slices[name] = createSlice2(t, c.ns, name)
		c.counts["created"]++
	case op < 5:
		name := names[c.rnd.IntN(len(names))]
		c.delete(ctx, name)
		c.counts["deleted"]++
	case op < 8:
		name := names[c.rnd.IntN(len(names))]
		s := c.slices[name]
		s.Endpoints = testbed.EndpointSlice(name, nil, endpoint{Addr: c.addr()}, endpoint{Addr: c.addr()}).Endpoints
		updated, err := client.DiscoveryV1().EndpointSlices(c.ns).Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("churn: update slice of %s: %v", name, err)
		}
		c.slices[name] = updated
		c.counts["endpoints moved"]++
	default:
		name := names[c.rnd.IntN(len(names))]
		patch := fmt.Sprintf(`{"metadata":{"annotations":{"kube-nginx-sync.io/path":"/churn/%d"}}}`, c.rnd.IntN(1000))
		if _, err := client.CoreV1().Services(c.ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatalf("churn: patch %s: %v", name, err)
		}
		c.counts["paths changed"]++
	}
}

// addr is an endpoint address of a churned Service (nothing listens).
func (c *churn) addr() netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18, 240, byte(1 + c.rnd.IntN(250))})
}

func (c *churn) delete(ctx context.Context, name string) {
	if err := client.CoreV1().Services(c.ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		c.t.Fatalf("churn: delete %s: %v", name, err)
	}
	if err := client.DiscoveryV1().EndpointSlices(c.ns).Delete(ctx, c.slices[name].Name, metav1.DeleteOptions{}); err != nil {
		c.t.Fatalf("churn: delete the slice of %s: %v", name, err)
	}
	delete(c.slices, name)
}

// undo deletes the churned Services that remain.
func (c *churn) undo() {
	for _, name := range c.names() {
		c.delete(context.Background(), name)
	}
}

func (c *churn) String() string {
	total := 0
	for _, n := range c.counts {
		total += n
	}
	return fmt.Sprintf("%d changes (%d Services created, %d deleted, %d endpoint moves, %d path changes)",
		total, c.counts["created"], c.counts["deleted"], c.counts["endpoints moved"], c.counts["paths changed"])
}

// createSlice2 creates a slice of two endpoints for a churned Service.
func createSlice2(t *testing.T, ns, name string) *discoveryv1.EndpointSlice {
	t.Helper()
	return createSliceIn(t, client, ns, name, []slicePort{sp("http", 8080)},
		endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, 241, 1})}, endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, 241, 2})})
}
