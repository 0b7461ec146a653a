//go:build e2e

package e2e

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// generator is a `kube-nginx-sync watch` process of a test, with what it
// needs to compare its file with the cluster.
type generator struct {
	*daemon
	ns         string
	output     string
	listen     string
	kubeconfig string
	// httpPort and statusPort are the rendered config's (0: 18080, and the
	// default status port).
	httpPort, statusPort int
}

// generatorOptions change what startGeneratorWith starts.
type generatorOptions struct {
	// kubeconfig is the API server's; empty means the shared cluster's.
	kubeconfig string
	// output is the file to write; empty means default.conf in a folder
	// of the test's.
	output string
	// httpPort is the port of the rendered servers; 0 means 18080.
	httpPort int
	// statusPort is the rendered status server's port; 0 leaves the
	// default (8099): set it when an nginx loads the config.
	statusPort int
	// extra flags, after the others.
	extra []string
	// readyWithin bounds the wait for /readyz; 0 means 30 s.
	readyWithin time.Duration
}

// startGenerator runs `watch` for namespace ns with a short debounce, and
// waits until it is ready.
func startGenerator(t *testing.T, ns string, extra ...string) *generator {
	t.Helper()
	return startGeneratorWith(t, ns, generatorOptions{extra: extra})
}

// startGeneratorWith is startGenerator with options.
func startGeneratorWith(t *testing.T, ns string, o generatorOptions) *generator {
	t.Helper()
	g := &generator{
		ns:         ns,
		output:     o.output,
		listen:     fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		kubeconfig: o.kubeconfig,
		httpPort:   o.httpPort,
		statusPort: o.statusPort,
	}
	if g.output == "" {
		g.output = filepath.Join(t.TempDir(), "default.conf")
	}
	if g.kubeconfig == "" {
		g.kubeconfig = cluster.Kubeconfig
	}
	args := append([]string{"watch", "--kubeconfig", g.kubeconfig, "--output", g.output,
		"--listen", g.listen, "--debounce", "50ms", "--max-delay", "500ms", "--log-level", "debug"},
		g.selectionFlags()...)
	g.daemon = startDaemon(t, append(args, o.extra...)...)
	g.waitReady(t, cmp.Or(o.readyWithin, 30*time.Second))
	return g
}

// waitReady waits until the generator's /readyz answers 200.
func (g *generator) waitReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, func() error {
		if code := httpStatus("http://" + g.listen + "/readyz"); code != 200 {
			return fmt.Errorf("/readyz answers %d", code)
		}
		return nil
	})
}

func (g *generator) selectionFlags() []string {
	port := g.httpPort
	if port == 0 {
		port = 18080
	}
	flags := []string{"--namespace", g.ns, "--http-address", "127.0.0.1", "--http-port", strconv.Itoa(port)}
	if g.statusPort != 0 {
		flags = append(flags, "--status-port", strconv.Itoa(g.statusPort))
	}
	return flags
}

// file returns the generator's config file, which must always be complete.
func (g *generator) file(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(g.output)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nginxconf.Verify(b); err != nil {
		t.Fatalf("the generator's file is not a complete rendered config: %v", err)
	}
	return string(b)
}

// inSync waits until the generator's file is what `render` makes of the
// cluster now (render is checked against nginx in TestRenderServesEveryRoute).
func (g *generator) inSync(t *testing.T) string {
	t.Helper()
	var got string
	eventually(t, 15*time.Second, func() error {
		res := runBinary(t, append([]string{"render", "--kubeconfig", g.kubeconfig, "--output", "-"}, g.selectionFlags()...)...)
		if res.code != 0 {
			return fmt.Errorf("render exited %d: %s", res.code, res.stderr)
		}
		got = g.file(t)
		if got != res.stdout {
			return fmt.Errorf("the generator's file differs from render's output:\n%s\n--- render:\n%s", got, res.stdout)
		}
		return nil
	})
	return got
}

func (g *generator) metric(t *testing.T, name string) float64 {
	t.Helper()
	return metric(t, g.listen, "kube_nginx_sync_"+name)
}

func mustContain(t *testing.T, config string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(config, w) {
			t.Errorf("config lacks %q:\n%s", w, config)
		}
	}
}

func mustNotContain(t *testing.T, config string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(config, u) {
			t.Errorf("config has %q:\n%s", u, config)
		}
	}
}

func patchService(t *testing.T, ns, name, patch string) {
	t.Helper()
	_, err := client.CoreV1().Services(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatalf("patch service %s: %v", name, err)
	}
}

// TestWatchFollowsChanges: every kind of change to a Service or its
// endpoints reaches the file, which is always complete.
func TestWatchFollowsChanges(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	g := startGenerator(t, ns)
	mustContain(t, g.inSync(t), "from 0 Services")

	createService(t, ns, service{name: "web", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	ip1, ip2 := nextIP(), nextIP()
	createSlice(t, ns, "web", []slicePort{sp("http", 8080)}, endpoint{Addr: ip1})
	mustContain(t, g.inSync(t), "location /"+ns+"/web/ {", "server "+ip1.String()+":8080 max_fails")

	t.Run("annotation", func(t *testing.T) {
		patchService(t, ns, "web", `{"metadata":{"annotations":{"kube-nginx-sync.io/path":"/shop"}}}`)
		config := g.inSync(t)
		mustContain(t, config, "location /shop/ {")
		mustNotContain(t, config, "location /"+ns+"/web/ {")
	})
	t.Run("port", func(t *testing.T) {
		patchService(t, ns, "web", `{"spec":{"ports":[{"name":"web","port":81,"protocol":"TCP"}]}}`)
		config := g.inSync(t)
		// The slice names port "http", the Service now "web": no endpoint.
		mustContain(t, config, `no ready endpoints for `+ns+`/web:web`)
		patchService(t, ns, "web", `{"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP"}]}}`)
		mustContain(t, g.inSync(t), "server "+ip1.String()+":8080 max_fails")
	})
	t.Run("endpoints", func(t *testing.T) {
		slices, err := client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil || len(slices.Items) != 1 {
			t.Fatalf("slices: %v %v", slices, err)
		}
		s := slices.Items[0]
		s.Endpoints = append(s.Endpoints, testbed.EndpointSlice("web", nil, endpoint{Addr: ip2}).Endpoints...)
		if _, err := client.DiscoveryV1().EndpointSlices(ns).Update(context.Background(), &s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		mustContain(t, g.inSync(t), "server "+ip1.String()+":8080 max_fails", "server "+ip2.String()+":8080 max_fails")
	})
	t.Run("relabel out of the selector", func(t *testing.T) {
		patchService(t, ns, "web", `{"metadata":{"labels":{"kube-nginx-sync.io/expose":"false"}}}`)
		mustNotContain(t, g.inSync(t), "location /shop/")
		patchService(t, ns, "web", `{"metadata":{"labels":{"kube-nginx-sync.io/expose":"true"}}}`)
		mustContain(t, g.inSync(t), "location /shop/")
	})
	t.Run("delete", func(t *testing.T) {
		if err := client.CoreV1().Services(ns).Delete(context.Background(), "web", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		mustContain(t, g.inSync(t), "from 0 Services")
	})
	if n := g.metric(t, "config_write_errors_total"); n != 0 {
		t.Errorf("%v write errors", n)
	}
}

// TestWatchWritesOnlyChanges: resyncs and changes that do not alter the
// routing rebuild the model but write nothing.
func TestWatchWritesOnlyChanges(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ip := nextIP()
	createService(t, ns, service{name: "web", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	createSlice(t, ns, "web", []slicePort{sp("http", 8080)}, endpoint{Addr: ip})
	g := startGenerator(t, ns)
	before := g.inSync(t)
	info, err := os.Stat(g.output)
	if err != nil {
		t.Fatal(err)
	}
	writes, rebuilds := g.metric(t, "config_writes_total"), g.metric(t, "rebuilds_total")

	// Changes that do not alter the routing: another annotation, another
	// label, a slice of a Service that is not selected, a Service that is
	// not selected.
	patchService(t, ns, "web", `{"metadata":{"annotations":{"example.com/owner":"team-a"},"labels":{"tier":"front"}}}`)
	createService(t, ns, service{name: "other", ports: []corev1.ServicePort{httpPort("http", 80)}})
	createSlice(t, ns, "other", []slicePort{sp("http", 8080)}, endpoint{Addr: nextIP()})
	eventually(t, 10*time.Second, func() error {
		if n := g.metric(t, "rebuilds_total"); n < rebuilds+1 {
			return fmt.Errorf("%v rebuilds since, want at least 1", n-rebuilds)
		}
		return nil
	})
	if n := g.metric(t, "config_writes_skipped_unchanged_total"); n < 1 {
		t.Errorf("skipped-unchanged counter is %v", n)
	}
	after, err := os.Stat(g.output)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(info, after) || !info.ModTime().Equal(after.ModTime()) {
		t.Error("the config file was replaced")
	}

	// Later changes that do alter the routing, one at a time, mark the
	// end: once one is in the file, its watch (Services, then
	// EndpointSlices; each delivers in order) has delivered every change
	// above. Each is one write; undone, they leave the file as it was
	// before, byte for byte, so the changes above left it alone too.
	ip2 := nextIP()
	for _, m := range []struct {
		name   string
		change func() error
		done   func(config string) bool
	}{
		{"a path", func() error {
			patchService(t, ns, "web", `{"metadata":{"annotations":{"kube-nginx-sync.io/path":"/marker"}}}`)
			return nil
		}, func(c string) bool { return strings.Contains(c, "location /marker/ {") }},
		{"an endpoint", func() error {
			return updateSlices(context.Background(), ns, "web", endpoint{Addr: ip}, endpoint{Addr: ip2})
		}, func(c string) bool { return strings.Contains(c, ip2.String()+":8080") }},
		{"the path undone", func() error {
			patchService(t, ns, "web", `{"metadata":{"annotations":{"kube-nginx-sync.io/path":null}}}`)
			return nil
		}, func(c string) bool { return !strings.Contains(c, "/marker/") }},
		{"the endpoint undone", func() error {
			return updateSlices(context.Background(), ns, "web", endpoint{Addr: ip})
		}, func(c string) bool { return c == before }},
	} {
		if err := m.change(); err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		eventually(t, 15*time.Second, func() error {
			if !m.done(g.file(t)) {
				return fmt.Errorf("%s: not in the file yet", m.name)
			}
			return nil
		})
	}
	// Each write is counted right after it; 4 are the marks'.
	eventually(t, 10*time.Second, func() error {
		if n := g.metric(t, "config_writes_total"); n < writes+4 {
			return fmt.Errorf("%v writes counted since, want the 4 marks'", n-writes)
		}
		return nil
	})
	if n := g.metric(t, "config_writes_total") - writes - 4; n != 0 {
		t.Errorf("%v writes for changes that do not alter the config", n)
	}
}

// TestWatchEventsForInvalidServices: a Service with an invalid annotation
// gets one Warning Event and is left out while the others stay routed;
// once fixed it gets a Normal Event and is routed.
func TestWatchEventsForInvalidServices(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	g := startGenerator(t, ns)
	createService(t, ns, service{name: "good", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	createService(t, ns, service{name: "bad", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
		annotations: map[string]string{"kube-nginx-sync.io/host": "evil.example.com; include /etc/passwd"}})
	config := g.inSync(t)
	mustContain(t, config, "location /"+ns+"/good/ {")
	mustNotContain(t, config, "/bad/", "evil", "passwd")

	events := func(reason string) []corev1.Event {
		list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.name=bad,reason=" + reason})
		if err != nil {
			t.Fatal(err)
		}
		return list.Items
	}
	eventually(t, 15*time.Second, func() error {
		if len(events("InvalidAnnotation")) == 0 {
			return fmt.Errorf("no InvalidAnnotation event on service bad")
		}
		return nil
	})
	ev := events("InvalidAnnotation")[0]
	if ev.Type != corev1.EventTypeWarning || ev.InvolvedObject.Kind != "Service" ||
		!strings.Contains(ev.Message, `kube-nginx-sync.io/host="evil.example.com; include /etc/passwd"`) {
		t.Errorf("event: type %s kind %s message %q", ev.Type, ev.InvolvedObject.Kind, ev.Message)
	}

	// More rebuilds do not repeat the event.
	patchService(t, ns, "good", `{"metadata":{"annotations":{"kube-nginx-sync.io/path":"/good"}}}`)
	g.inSync(t)

	patchService(t, ns, "bad", `{"metadata":{"annotations":{"kube-nginx-sync.io/host":"fixed.example.com"}}}`)
	mustContain(t, g.inSync(t), "server_name fixed.example.com;")
	eventually(t, 15*time.Second, func() error {
		evs := events("Routed")
		if len(evs) == 0 || evs[0].Type != corev1.EventTypeNormal {
			return fmt.Errorf("no Normal Routed event on service bad: %v", evs)
		}
		return nil
	})
	// The generator's Events reach the API server one after another, in
	// order: a repeated warning, from the rebuilds before the fix, would
	// be there before the Routed event.
	if evs := events("InvalidAnnotation"); len(evs) != 1 || evs[0].Count > 1 {
		t.Errorf("the warning was repeated: %d events, count %d", len(evs), evs[0].Count)
	}
}

// TestWatchBurst: 1,000 Services created as fast as the API server takes
// them end in one correct file after few writes.
func TestWatchBurst(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	g := startGenerator(t, ns)
	g.inSync(t)
	writesBefore := g.metric(t, "config_writes_total")

	const n = 1000
	start := time.Now()
	createMany(t, ns, n, 1, 8)
	created := time.Since(start)
	config := g.inSync(t)
	converged := time.Since(start)
	if got := strings.Count(config, "\n    location /"+ns+"/svc-"); got != n {
		t.Errorf("%d routes in the file, want %d", got, n)
	}
	writes := g.metric(t, "config_writes_total") - writesBefore
	t.Logf("burst of %d Services + %d EndpointSlices: created in %s, file in sync after %s, %v writes (debounce 50ms, max-delay 500ms)",
		n, n, created.Round(time.Millisecond), converged.Round(time.Millisecond), writes)
	// Each write needs a quiet debounce period or a full max-delay after the
	// change that opened its batch, so the writes are bounded by time.
	if limit := float64(converged/(50*time.Millisecond)) + 1; writes > limit {
		t.Errorf("%v writes, more than the coalescing bound %v", writes, limit)
	}
}

// TestWatchKeepsFileWhileAPIServerIsDown stops the API server (etcd keeps
// the data): the file stays as it was, /readyz turns not ready once the
// watch has been broken for --stale-after, and after the restart a new
// Service is routed and /readyz is ready again.
//
// Not parallel: the API server is shared, and parallel tests only start
// once the sequential ones are done.
func TestWatchKeepsFileWhileAPIServerIsDown(t *testing.T) {
	ns := newNamespace(t)
	createService(t, ns, service{name: "web", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	createSlice(t, ns, "web", []slicePort{sp("http", 8080)}, endpoint{Addr: nextIP()})
	g := startGenerator(t, ns, "--stale-after", "2s")
	before := g.inSync(t)
	info, err := os.Stat(g.output)
	if err != nil {
		t.Fatal(err)
	}

	down := time.Now()
	if err := cluster.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	stopTook := time.Since(down)
	restarted := false
	t.Cleanup(func() {
		if !restarted { // leave a working API server to the other tests
			if err := cluster.StartAPIServer(context.Background()); err != nil {
				t.Errorf("restart API server: %v", err)
			}
		}
	})
	eventually(t, 30*time.Second, func() error {
		if code := httpStatus("http://" + g.listen + "/readyz"); code != 503 {
			return fmt.Errorf("/readyz answers %d while the API server is down", code)
		}
		return nil
	})
	notReadyAfter := time.Since(down)
	// Stay down while the generator tries twice more to list or watch
	// each resource, and fails; the file must not move meanwhile.
	errs := func() (services, slices float64) {
		return g.metric(t, `watch_errors_total{resource="services"}`), g.metric(t, `watch_errors_total{resource="endpointslices"}`)
	}
	services0, slices0 := errs()
	eventually(t, 30*time.Second, func() error {
		if services, slices := errs(); services < services0+2 || slices < slices0+2 {
			return fmt.Errorf("%v and %v more failures to list or watch Services and EndpointSlices, want 2 each", services-services0, slices-slices0)
		}
		return nil
	})
	if code := httpStatus("http://" + g.listen + "/healthz"); code != 200 {
		t.Errorf("/healthz answers %d while the API server is down; the process itself is fine", code)
	}
	if got := g.file(t); got != before {
		t.Errorf("the file changed while the API server was down:\n%s", got)
	}
	if after, _ := os.Stat(g.output); !os.SameFile(info, after) {
		t.Error("the file was replaced while the API server was down")
	}

	if err := cluster.StartAPIServer(context.Background()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	up := time.Now()
	createService(t, ns, service{name: "late", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	mustContain(t, g.inSync(t), "location /"+ns+"/late/ {", "location /"+ns+"/web/ {")
	routedAfter := time.Since(up)
	eventually(t, 30*time.Second, func() error {
		if code := httpStatus("http://" + g.listen + "/readyz"); code != 200 {
			return fmt.Errorf("/readyz answers %d after the API server is back", code)
		}
		return nil
	})
	t.Logf("API server down for %s (stopping it took %s): /readyz not ready after %s; after the restart a new Service was in the file within %s; %v watch errors counted",
		up.Sub(down).Round(time.Millisecond), stopTook.Round(time.Millisecond), notReadyAfter.Round(time.Millisecond), routedAfter.Round(time.Millisecond),
		metric(t, g.listen, `kube_nginx_sync_watch_errors_total{resource="services"}`))
}
