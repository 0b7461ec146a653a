//go:build e2e

package e2e

// The fault-injection suite (issue 8): each test breaks one part of the
// system under real traffic or real writes (the API server, etcd's
// history, the generator, nginx, the config folder) and checks that the
// config nginx serves stays whole and right, and that the system recovers
// by itself. Timings are reported (t.Logf), with generous bounds only.
// Tests that break an API server start a private control plane, so they
// run in parallel with the others.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// TestFaultsAPIServerOutage stops a private API server for 30 s (etcd keeps
// the data) under a generator (`watch`) and a reloader with nginx, the
// seed's sidecars: nginx serves the last config all along (no failed
// request on the routes, which still exist), nothing is written or
// reloaded meanwhile, the generator's /readyz turns not ready after
// --stale-after and ready again after the restart, and a Service created
// right after the restart answers through nginx within seconds.
func TestFaultsAPIServerOutage(t *testing.T) {
	t.Parallel()
	const outage = 30 * time.Second
	cp, c := startControlPlane(t)
	ns := newNamespaceIn(t, c)
	var targets []target
	for i := range 3 {
		name := fmt.Sprintf("web-%d", i)
		b := startBackend(t, name, netip.AddrPortFrom(nextIP(), 8080))
		createServiceIn(t, c, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
		createSliceIn(t, c, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: b.Addr()})
		targets = append(targets, target{path: "/" + ns + "/" + name + "/x", body: name + " /x"})
	}
	confDir := t.TempDir()
	port := freePort(t)
	g := startGeneratorWith(t, ns, generatorOptions{kubeconfig: cp.Kubeconfig, output: filepath.Join(confDir, "default.conf"),
		httpPort: port, statusPort: freePort(t), extra: []string{"--stale-after", "3s"}})
	before := g.inSync(t)
	rl := startReloader(t, confDir)
	for i := range targets {
		targets[i].port = port
		waitAnswers(t, targets[i])
	}
	reloadsBefore := rl.reloads(t, nginx.ResultOK)
	ld := startLoad(t, 4, targets...)

	down := time.Now()
	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopTook := time.Since(down)
	eventually(t, 30*time.Second, func() error {
		if code := httpStatus("http://" + g.listen + "/readyz"); code != 503 {
			return fmt.Errorf("/readyz answers %d while the API server is down", code)
		}
		return nil
	})
	notReadyAfter := time.Since(down)
	// The outage lasts its time; all along, the generator is healthy and
	// leaves the file alone.
	consistently(t, time.Until(down.Add(outage)), func() error {
		if code := httpStatus("http://" + g.listen + "/healthz"); code != 200 {
			return fmt.Errorf("/healthz answers %d while the API server is down; the process itself is fine", code)
		}
		if got := g.file(t); got != before {
			return fmt.Errorf("the file changed while the API server was down:\n%s", got)
		}
		return nil
	})
	reloadsDuring := rl.reloads(t, nginx.ResultOK) - reloadsBefore

	restart := time.Now()
	if err := cp.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	up := time.Now()
	late := startBackend(t, "late", netip.AddrPortFrom(nextIP(), 8080))
	createServiceIn(t, c, ns, service{name: "late", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	createSliceIn(t, c, ns, "late", []slicePort{sp("http", 8080)}, endpoint{Addr: late.Addr()})
	created := time.Now()
	lateTarget := target{port: port, path: "/" + ns + "/late/x", body: "late /x"}
	waitAnswers(t, lateTarget)
	servedAfter := time.Since(created)
	g.waitReady(t, 30*time.Second)
	readyAfter := time.Since(up)
	ld.stop()

	t.Logf("API server down for %s (stopping it took %s, starting it again until ready %s); %s during and after the outage; "+
		"generator /readyz not ready after %s, ready again %s after the API server was; "+
		"a Service created then (in %s) answered through nginx %s after its creation, %s after the API server was ready; "+
		"%v watch errors counted (services), %v (endpointslices), %d log lines of 410 Gone; %v reloads during the outage",
		up.Sub(down).Round(time.Millisecond), stopTook.Round(time.Millisecond), up.Sub(restart).Round(time.Millisecond), ld,
		notReadyAfter.Round(time.Millisecond), readyAfter.Round(time.Millisecond),
		created.Sub(up).Round(time.Millisecond), servedAfter.Round(time.Millisecond), (servedAfter + created.Sub(up)).Round(time.Millisecond),
		g.metric(t, `watch_errors_total{resource="services"}`), g.metric(t, `watch_errors_total{resource="endpointslices"}`),
		strings.Count(g.log(), "too old"), reloadsDuring)
	if n := ld.failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed while the API server was down:%s", n, ld.requests.Load(), ld.failuresSince(down))
	}
	if reloadsDuring > 0 {
		t.Errorf("%v reloads during the outage, for nothing", reloadsDuring)
	}
	// From its creation, not from the restart: how fast the API server
	// took the creates is not ours to bound.
	if servedAfter > 15*time.Second {
		t.Errorf("a Service created after the restart took %s to answer", servedAfter)
	}
}

// waitAnswers waits until nginx answers a target as it should.
func waitAnswers(t *testing.T, tg target) {
	t.Helper()
	eventually(t, 20*time.Second, func() error {
		if status, body, err := tryGet(tg.port, tg.host, tg.path); err != nil || status != 200 || body != tg.body {
			return fmt.Errorf("GET %s answers %d %q (%v), want %q", tg.path, status, body, err, tg.body)
		}
		return nil
	})
}

// TestFaultsWatchExpiredRelists: the generator is cut off from the API
// server (a network partition; the API server runs on) while Services and
// EndpointSlices change, and etcd's history is compacted meanwhile. The
// API server runs without a watch cache, as with etcd directly behind it,
// so the generator's watches, resumed from their old resource versions,
// end with 410 Gone ("too old resource version"): its informers must list
// again, and the file must go from the config before the partition to the
// one after it, with no config in between (an empty one, or one of fresh
// Services with stale endpoints) ever written.
func TestFaultsWatchExpiredRelists(t *testing.T) {
	t.Parallel()
	cp, c := startControlPlane(t, "--watch-cache=false", "--etcd-compaction-interval=0")
	proxy := startPartition(t, strings.TrimPrefix(cp.Config.Host, "https://"))
	kubeconfig := kubeconfigFor(t, "https://"+proxy.addr, cp.Config.BearerToken)
	ns := newNamespaceIn(t, c)
	ctx := context.Background()

	// Stable Services never change; doomed ones are deleted, and new ones
	// created, during the partition.
	var stableLines []string
	for i := range 3 {
		name := fmt.Sprintf("stable-%d", i)
		ip := nextIP()
		createServiceIn(t, c, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
		createSliceIn(t, c, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: ip})
		stableLines = append(stableLines, "location /"+ns+"/"+name+"/ {", "server "+ip.String()+":8080 max_fails")
	}
	for i := range 3 {
		name := fmt.Sprintf("doomed-%d", i)
		createServiceIn(t, c, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
		createSliceIn(t, c, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: nextIP()})
	}
	g := startGeneratorWith(t, ns, generatorOptions{kubeconfig: kubeconfig})
	g.inSync(t)
	// A watch that ends in its first second without an event is not
	// resumed but listed again (client-go's "very short watch"): give
	// each watch an event, a Service and its slice made after the lists.
	createRouted := func(name string) {
		createServiceIn(t, c, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
		ip := nextIP()
		createSliceIn(t, c, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: ip})
		eventually(t, 15*time.Second, func() error {
			if !strings.Contains(g.file(t), "server "+ip.String()+":8080 max_fails") {
				return fmt.Errorf("%s is not routed to its endpoint yet", name)
			}
			return nil
		})
	}
	createRouted("warm")
	before := g.inSync(t)
	// A config of new Services without their endpoints is a partial one.
	fw := watchFile(t, g.output, containsAll(stableLines, "no ready endpoints for "+ns+"/new-"))
	// The informers list (a watch that streams the list first) once each
	// at the start, and once more after each 410.
	lists := func() int { return strings.Count(g.log(), `msg="Caches populated"`) }
	listsBefore := lists()

	proxy.cut()
	cut := time.Now()
	eventually(t, 10*time.Second, func() error {
		if n := g.metric(t, `watch_errors_total{resource="endpointslices"}`); n == 0 {
			return fmt.Errorf("the generator has not noticed the partition")
		}
		return nil
	})
	changes := 0
	for i := range 3 {
		name := fmt.Sprintf("doomed-%d", i)
		if err := c.CoreV1().Services(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := c.DiscoveryV1().EndpointSlices(ns).DeleteCollection(ctx, metav1.DeleteOptions{},
			metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + name}); err != nil {
			t.Fatal(err)
		}
		changes += 2
	}
	for i := range 10 {
		name := fmt.Sprintf("new-%d", i)
		createServiceIn(t, c, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
		slice := createSliceIn(t, c, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: nextIP()})
		changes += 2
		for range 3 { // endpoints come and go
			slice.Endpoints[0].Addresses[0] = nextIP().String()
			var err error
			if slice, err = c.DiscoveryV1().EndpointSlices(ns).Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			changes++
		}
	}
	rev, err := cp.CompactEtcd(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := g.file(t); got != before {
		t.Errorf("the file changed during the partition")
	}

	proxy.heal(t)
	healed := time.Now()
	final := g.inSync(t)
	converged := time.Since(healed)
	// A later change marks the end: a late extra write, if any, comes
	// before it. It is one or two versions (the Service, then its slice).
	createRouted("end")
	marked := g.inSync(t)
	fw.stop()
	reads, seen := fw.report(t)
	mustContain(t, final, "location /"+ns+"/new-9/ {")
	mustNotContain(t, final, "/doomed-")
	endAt := len(seen)
	for i, s := range seen {
		if strings.Contains(string(s.data), "location /"+ns+"/end/ {") {
			endAt = i
			break
		}
	}
	if ends := seen[endAt:]; len(ends) == 0 || len(ends) > 2 || ends[len(ends)-1].version != versionOf(t, marked) {
		t.Errorf("the file went through %d versions after the end mark was made, want 1 or 2, the last the cluster's", len(ends))
	}
	seen = seen[:endAt]

	relists := lists() - listsBefore
	// The generator's own warning (client-go only says it at debug level).
	expired := 0
	for _, line := range strings.Split(g.log(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "too old") {
			expired++
		}
	}
	t.Logf("partition of %s, %d changes, etcd compacted at revision %d; after healing: %d watches ended by 410 Gone (the generator's warnings), %d relists, "+
		"file in sync %s after healing; %d reads of the file, versions seen: %s",
		healed.Sub(cut).Round(time.Millisecond), changes, rev, expired, relists,
		converged.Round(time.Millisecond), reads, describeVersions(seen, cut))
	if relists < 2 {
		t.Errorf("%d relists after the compaction, want one per informer (2)", relists)
	}
	if expired == 0 {
		t.Errorf("the generator did not warn of a watch ended by 410 Gone")
	}
	beforeV, finalV := versionOf(t, before), versionOf(t, final)
	if len(seen) != 2 || seen[0].version != beforeV || seen[1].version != finalV {
		t.Errorf("the file went through %d versions, want 2: the one before the partition (%.12s), then the final one (%.12s)", len(seen), beforeV, finalV)
		for i := 1; i < len(seen)-1; i++ {
			t.Logf("an intermediate version, %s after the cut:\n%s", seen[i].at.Sub(cut).Round(time.Millisecond), seen[i].data)
		}
	}
}

// describeVersions lists versions seen, with when, relative to ref.
func describeVersions(seen []seenVersion, ref time.Time) string {
	var parts []string
	for _, s := range seen {
		parts = append(parts, fmt.Sprintf("%.8s at %+.3fs", s.version, s.at.Sub(ref).Seconds()))
	}
	return fmt.Sprintf("%d [%s]", len(seen), strings.Join(parts, ", "))
}

// TestFaultsGeneratorKilledMidBurst kills the generator with SIGKILL while
// 600 Services are being created: once in the middle of a write (the
// moment its temporary file appears), once at a random time. The file is
// always a complete config, old or new, and a generator restarted over it
// converges to the cluster's content.
func TestFaultsGeneratorKilledMidBurst(t *testing.T) {
	t.Parallel()
	const n = 600
	ns := newNamespace(t)
	dir := t.TempDir()
	output := filepath.Join(dir, "default.conf")
	opts := generatorOptions{output: output}
	g := startGeneratorWith(t, ns, opts)
	fw := watchFile(t, output, nil)

	burstDone := make(chan struct{})
	start := time.Now()
	go func() { defer close(burstDone); createMany(t, ns, n, 1, 8) }()

	// Kill 1: as soon as a write of the burst has begun.
	eventually(t, 20*time.Second, func() error {
		if g.metric(t, "config_writes_total") < 2 {
			return fmt.Errorf("no write of the burst yet")
		}
		return nil
	})
	var killedMidWrite, killedAt time.Duration
	look := time.NewTicker(100 * time.Microsecond)
	giveUp := time.After(10 * time.Second)
watch:
	for {
		if len(tempFiles(t, dir)) > 0 {
			g.kill()
			killedAt = time.Since(start)
			if len(tempFiles(t, dir)) > 0 {
				killedMidWrite = killedAt
			}
			break
		}
		select {
		case <-giveUp:
			break watch
		case <-look.C:
		}
	}
	look.Stop()
	if !g.killed {
		g.kill()
		killedAt = time.Since(start)
	}
	leftAfterKill := tempFiles(t, dir)
	g = startGeneratorWith(t, ns, opts)
	restartedIn := time.Since(start) - killedAt

	// Kill 2: at a random time of the burst: once the restarted generator
	// is at work on it (a rebuild after its first), or after the burst.
	eventually(t, 20*time.Second, func() error {
		select {
		case <-burstDone:
			return nil
		default:
		}
		if g.metric(t, "rebuilds_total") < 2 {
			return fmt.Errorf("the restarted generator has not rebuilt since its first config")
		}
		return nil
	})
	g.kill()
	secondKill := time.Since(start)
	g = startGeneratorWith(t, ns, opts)
	<-burstDone
	created := time.Since(start)
	final := g.inSync(t)
	converged := time.Since(start)
	fw.stop()
	reads, seen := fw.report(t)
	if got := strings.Count(final, "\n    location /"+ns+"/svc-"); got != n {
		t.Errorf("%d routes in the file, want %d", got, n)
	}
	left := tempFiles(t, dir)
	t.Logf("%d Services created in %s; killed at %s (mid-write: %v; temporary files left: %v), restarted and ready in %s; killed again at %s; "+
		"file in sync after %s; %d reads of the file, every one a complete config, %d versions; temporary files in the folder at the end: %v",
		n, created.Round(time.Millisecond), killedAt.Round(time.Millisecond), killedMidWrite != 0, leftAfterKill, restartedIn.Round(time.Millisecond),
		secondKill.Round(time.Millisecond), converged.Round(time.Millisecond), reads, len(seen), left)
	if killedMidWrite == 0 {
		t.Logf("the first kill did not land in the middle of a write")
	}
	if len(left) > 0 {
		t.Errorf("temporary files of killed writers stay in the config folder: %v", left)
	}
}

// TestFaultsConfigFolderFullOrReadOnly: the generator's folder (a 1 MiB
// tmpfs of the test's mount namespace) is filled up, then made read-only,
// while a Service changes. Each time the write fails cleanly (the old file
// stays whole, no temporary file is left), the error is logged and
// counted, and once space is freed or the folder is writable again the
// next retry writes the new config with no other help.
func TestFaultsConfigFolderFullOrReadOnly(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	dir := mountTmpfs(t, 1<<20)
	for i := range 20 {
		name := fmt.Sprintf("web-%d", i)
		createService(t, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
		createSlice(t, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: nextIP()})
	}
	g := startGeneratorWith(t, ns, generatorOptions{output: filepath.Join(dir, "default.conf")})
	g.inSync(t)

	for _, fault := range []struct {
		name   string
		inject func() (repair func())
		errMsg string
	}{
		{"full", func() func() {
			filler := fillUp(t, dir)
			return func() {
				if err := os.Remove(filler); err != nil {
					t.Fatal(err)
				}
			}
		}, "no space left on device"},
		{"read-only", func() func() {
			remount(t, dir, true)
			return func() { remount(t, dir, false) }
		}, "read-only file system"},
	} {
		t.Run(fault.name, func(t *testing.T) {
			before := g.file(t)
			errorsBefore := g.metric(t, "config_write_errors_total")
			repair := fault.inject()
			broken := time.Now()
			svc := "added-" + strings.ReplaceAll(fault.name, "-", "")
			createService(t, ns, service{name: svc, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
			// Let the write fail, and be retried and fail again.
			eventually(t, 15*time.Second, func() error {
				if n := g.metric(t, "config_write_errors_total") - errorsBefore; n < 2 {
					return fmt.Errorf("%v write errors counted", n)
				}
				return nil
			})
			failures := g.metric(t, "config_write_errors_total") - errorsBefore
			if got := g.file(t); got != before {
				t.Errorf("the file changed while it could not be written:\n%s", got)
			}
			if left := tempFiles(t, dir); len(left) > 0 {
				t.Errorf("temporary files left by failed writes: %v", left)
			}
			if !strings.Contains(g.log(), fault.errMsg) {
				t.Errorf("the log does not say %q", fault.errMsg)
			}
			ready := httpStatus("http://" + g.listen + "/readyz")

			repair()
			repaired := time.Now()
			var config string
			eventually(t, 45*time.Second, func() error {
				config = g.file(t)
				if !strings.Contains(config, "location /"+ns+"/"+svc+"/ {") {
					return fmt.Errorf("the new Service is not in the file yet")
				}
				return nil
			})
			writtenAfter := time.Since(repaired)
			g.inSync(t)
			t.Logf("folder %s for %s: %v failed writes (retried with backoff), old file intact, /readyz answered %d meanwhile; "+
				"after the repair, the new config was written %s later with no other help",
				fault.name, repaired.Sub(broken).Round(time.Millisecond), failures, ready, writtenAfter.Round(time.Millisecond))
			if writtenAfter > 35*time.Second { // the longest retry backoff is 30 s
				t.Errorf("the write after the repair took %s", writtenAfter)
			}
		})
	}
}

// TestFaultsReplicasAgree runs five generators (`watch`, one per nginx
// replica) against one API server, each with its own folder, and makes a
// series of changes: after each, all five files must be byte for byte the
// same (and what render makes of the cluster), all within the same bound;
// the spread of their convergence times is reported.
func TestFaultsReplicasAgree(t *testing.T) {
	t.Parallel()
	const replicas = 5
	ns := newNamespace(t)
	var gens []*generator
	for range replicas {
		gens = append(gens, startGenerator(t, ns))
	}
	ctx := context.Background()
	ip1, ip2 := nextIP(), nextIP()
	steps := []struct {
		name   string
		change func() error
	}{
		{"create a Service", func() error {
			createService(t, ns, service{name: "web", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
			return nil
		}},
		{"create its EndpointSlice", func() error {
			createSlice(t, ns, "web", []slicePort{sp("http", 8080)}, endpoint{Addr: ip1})
			return nil
		}},
		{"add an endpoint", func() error { return updateSlices(ctx, ns, "web", endpoint{Addr: ip1}, endpoint{Addr: ip2}) }},
		{"an endpoint not ready", func() error {
			return updateSlices(ctx, ns, "web", endpoint{Addr: ip1}, endpoint{Addr: ip2, NotReady: true})
		}},
		{"change the path", func() error {
			_, err := client.CoreV1().Services(ns).Patch(ctx, "web", "application/merge-patch+json",
				[]byte(`{"metadata":{"annotations":{"kube-nginx-sync.io/path":"/shop"}}}`), metav1.PatchOptions{})
			return err
		}},
		{"a host", func() error {
			createService(t, ns, service{name: "api", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
				annotations: map[string]string{"kube-nginx-sync.io/host": "api.example.com", "kube-nginx-sync.io/path": "/"}})
			return nil
		}},
		{"a conflicting Service", func() error {
			createService(t, ns, service{name: "shop2", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
				annotations: map[string]string{"kube-nginx-sync.io/path": "/shop"}})
			return nil
		}},
		{"an invalid annotation", func() error {
			createService(t, ns, service{name: "bad", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
				annotations: map[string]string{"kube-nginx-sync.io/path": "/x;y"}})
			return nil
		}},
		{"delete the winner of the conflict", func() error {
			return client.CoreV1().Services(ns).Delete(ctx, "web", metav1.DeleteOptions{})
		}},
		{"50 Services at once", func() error { createMany(t, ns, 50, 2, 4); return nil }},
		{"relabel one out of the selector", func() error {
			_, err := client.CoreV1().Services(ns).Patch(ctx, "api", "application/merge-patch+json",
				[]byte(`{"metadata":{"labels":{"kube-nginx-sync.io/expose":"false"}}}`), metav1.PatchOptions{})
			return err
		}},
	}

	watches := make([]*fileWatch, replicas)
	for i, g := range gens {
		watches[i] = watchFile(t, g.output, nil)
	}
	var worstSpread, worst time.Duration
	var lines []string
	for _, step := range steps {
		mark := make([]int, replicas)
		for i, w := range watches {
			w.mu.Lock()
			mark[i] = len(w.seen)
			w.mu.Unlock()
		}
		began := time.Now()
		if err := step.change(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		// Times count from the change's last API call: how long the API
		// server took to take it (50 creates on a busy machine take
		// seconds) is not the replicas' doing.
		changed := time.Now()
		want := gens[0].inSync(t) // render's view of the cluster now
		wantV := versionOf(t, want)
		var took []time.Duration
		eventually(t, 20*time.Second, func() error {
			took = took[:0]
			for i, w := range watches {
				at, ok := w.firstSince(mark[i], wantV)
				if !ok {
					return fmt.Errorf("%s: replica %d does not have version %.12s yet", step.name, i, wantV)
				}
				took = append(took, max(at.Sub(changed), 0)) // 0: the step changed nothing
			}
			return nil
		})
		for i, g := range gens {
			if got := g.file(t); got != want {
				t.Errorf("%s: replica %d's file differs from replica 0's", step.name, i)
			}
		}
		lo, hi := took[0], took[0]
		for _, d := range took {
			lo, hi = min(lo, d), max(hi, d)
		}
		worstSpread, worst = max(worstSpread, hi-lo), max(worst, hi)
		lines = append(lines, fmt.Sprintf("%s (made in %s): %s..%s (spread %s)", step.name, changed.Sub(began).Round(time.Millisecond),
			lo.Round(time.Millisecond), hi.Round(time.Millisecond), (hi-lo).Round(time.Millisecond)))
	}
	for _, w := range watches {
		w.stop()
		w.report(t)
	}
	t.Logf("%d replicas, %d changes: all files byte-identical after each; from the change's last API call to each replica's file (debounce 50ms, max-delay 500ms): worst %s, worst spread %s;\n  %s",
		replicas, len(steps), worst.Round(time.Millisecond), worstSpread.Round(time.Millisecond), strings.Join(lines, "\n  "))
	if worst > 10*time.Second {
		t.Errorf("a replica took %s to converge", worst)
	}
}

// firstSince returns when the watch first saw version among the versions
// seen from index mark on.
func (w *fileWatch) firstSince(mark int, version string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mark > 0 {
		mark-- // the version current when the step began counts, too
	}
	for _, s := range w.seen[mark:] {
		if s.version == version {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// updateSlices replaces the endpoints of a Service's slices (the shared
// cluster's).
func updateSlices(ctx context.Context, ns, svc string, eps ...endpoint) error {
	list, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=" + svc})
	if err != nil {
		return err
	}
	for _, s := range list.Items {
		s.Endpoints = testbed.EndpointSlice(svc, nil, eps...).Endpoints
		if _, err := client.DiscoveryV1().EndpointSlices(ns).Update(ctx, &s, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}
