//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// TestRenderServesEveryRoute creates Services of every kind in the real API
// server, runs `kube-nginx-sync render --validate`, starts nginx on the
// output, and checks what every route answers.
func TestRenderServesEveryRoute(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)

	// web: one port, two ready endpoints, prefix stripped.
	createService(t, ns, service{name: "web", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	web1 := startBackend(t, "web-1", netip.AddrPortFrom(nextIP(), 8080))
	web2 := startBackend(t, "web-2", netip.AddrPortFrom(nextIP(), 8080))
	createSlice(t, ns, "web", []slicePort{sp("http", 8080)}, endpoint{Addr: web1.Addr()}, endpoint{Addr: web2.Addr()})

	// multi: two ports; the named target port resolves to a different
	// number in each of its two slices.
	createService(t, ns, service{name: "multi", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80), httpPort("admin", 81)}})
	multiA, multiB := nextIP(), nextIP()
	startBackend(t, "multi-a-http", netip.AddrPortFrom(multiA, 8001))
	startBackend(t, "multi-a-admin", netip.AddrPortFrom(multiA, 9001))
	startBackend(t, "multi-b-http", netip.AddrPortFrom(multiB, 8002))
	startBackend(t, "multi-b-admin", netip.AddrPortFrom(multiB, 9002))
	createSlice(t, ns, "multi", []slicePort{sp("http", 8001), sp("admin", 9001)}, endpoint{Addr: multiA})
	createSlice(t, ns, "multi", []slicePort{sp("http", 8002), sp("admin", 9002)}, endpoint{Addr: multiB})

	// v6: an IPv6 endpoint, unnamed port.
	createService(t, ns, service{name: "v6", labels: exposed, ports: []corev1.ServicePort{httpPort("", 80)}})
	v6 := startBackend(t, "v6", netip.AddrPortFrom(nextIPv6(), 8080))
	createSlice(t, ns, "v6", []slicePort{sp("", 8080)}, endpoint{Addr: v6.Addr()})

	// api: its own host at "/", with one ready, one not-ready and one
	// terminating endpoint; only the ready one may answer.
	createService(t, ns, service{name: "api", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
		annotations: map[string]string{"kube-nginx-sync.io/host": "api.example.test", "kube-nginx-sync.io/path": "/"}})
	apiReady := startBackend(t, "api-ready", netip.AddrPortFrom(nextIP(), 8080))
	apiNotReady := startBackend(t, "api-not-ready", netip.AddrPortFrom(nextIP(), 8080))
	apiTerminating := startBackend(t, "api-terminating", netip.AddrPortFrom(nextIP(), 8080))
	createSlice(t, ns, "api", []slicePort{sp("http", 8080)},
		endpoint{Addr: apiReady.Addr()}, endpoint{Addr: apiNotReady.Addr(), NotReady: true},
		endpoint{Addr: apiTerminating.Addr(), Terminating: true})

	// keep: the prefix is passed on unchanged.
	createService(t, ns, service{name: "keep", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
		annotations: map[string]string{"kube-nginx-sync.io/path": "/keep", "kube-nginx-sync.io/strip-prefix": "false"}})
	keep := startBackend(t, "keep", netip.AddrPortFrom(nextIP(), 8080))
	createSlice(t, ns, "keep", []slicePort{sp("http", 8080)}, endpoint{Addr: keep.Addr()})

	// cip: upstream "service": traffic goes to the ClusterIP, which is a
	// local address in the test's network namespace.
	cip := createService(t, ns, service{name: "cip", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 8090)},
		annotations: map[string]string{"kube-nginx-sync.io/upstream": "service"}})
	startBackend(t, "cip", netip.AddrPortFrom(netip.MustParseAddr(cip.Spec.ClusterIP), 8090))

	// empty: endpoints exist but none is ready: 503 with a clear body.
	createService(t, ns, service{name: "empty", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	createSlice(t, ns, "empty", []slicePort{sp("http", 8080)}, endpoint{Addr: nextIP(), NotReady: true})

	// hidden: outside the selector.
	createService(t, ns, service{name: "hidden", ports: []corev1.ServicePort{httpPort("http", 80)}})
	hidden := startBackend(t, "hidden", netip.AddrPortFrom(nextIP(), 8080))
	createSlice(t, ns, "hidden", []slicePort{sp("http", 8080)}, endpoint{Addr: hidden.Addr()})

	// bad: an annotation that tries to inject a directive. It is left out;
	// everything else still renders.
	createService(t, ns, service{name: "bad", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
		annotations: map[string]string{"kube-nginx-sync.io/path": "/x { return 200 \"pwned\"; }\nlocation /y"}})
	bad := startBackend(t, "bad", netip.AddrPortFrom(nextIP(), 8080))
	createSlice(t, ns, "bad", []slicePort{sp("http", 8080)}, endpoint{Addr: bad.Addr()})

	// conflict-a and conflict-b claim the same host and path; created in
	// the same second, the name decides: conflict-a wins.
	for _, name := range []string{"conflict-a", "conflict-b"} {
		createService(t, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
			annotations: map[string]string{"kube-nginx-sync.io/host": "shared.example.test", "kube-nginx-sync.io/path": "/"}})
		b := startBackend(t, name, netip.AddrPortFrom(nextIP(), 8080))
		createSlice(t, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: b.Addr()})
	}

	confDir := t.TempDir()
	output := filepath.Join(confDir, "default.conf")
	port, statusPort := freePort(t), strconv.Itoa(freePort(t))
	res := runBinary(t, "render", "--kubeconfig", cluster.Kubeconfig, "--namespace", ns,
		"--output", output, "--validate", "--http-address", "127.0.0.1", "--http-port", strconv.Itoa(port), "--status-port", statusPort)
	if res.code != 0 {
		t.Fatalf("render exited %d:\n%s", res.code, res.stderr)
	}
	for _, want := range []string{
		"service=" + ns + "/bad", "reason=InvalidAnnotation",
		"service=" + ns + "/conflict-b", "reason=RouteConflict",
		"services=10", "routes=9", "rejected=2",
	} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("render's log lacks %q:\n%s", want, res.stderr)
		}
	}
	config, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	header, err := nginxconf.Verify(config)
	if err != nil {
		t.Errorf("written config: %v", err)
	}

	startNginx(t, confDir, port)
	// The status server, on loopback only, answers the config's version.
	sp, _ := strconv.Atoi(statusPort)
	if status, body := get(t, sp, "", nginxconf.VersionPath); status != 200 || body != header.Version+"\n" {
		t.Errorf("status server answers %d %q, want the version %s", status, body, header.Version)
	}

	type check struct {
		host, path string
		status     int
		bodies     []string // the answers allowed; each must be seen
	}
	prefix := "/" + ns + "/"
	checks := []check{
		{"", prefix + "web/hello", 200, []string{"web-1 /hello", "web-2 /hello"}},
		{"", prefix + "multi/http/x", 200, []string{"multi-a-http /x", "multi-b-http /x"}},
		{"", prefix + "multi/admin/y", 200, []string{"multi-a-admin /y", "multi-b-admin /y"}},
		{"", prefix + "v6/z", 200, []string{"v6 /z"}},
		{"api.example.test", "/v1/items", 200, []string{"api-ready /v1/items"}},
		{"", "/keep/a/b", 200, []string{"keep /keep/a/b"}},
		{"", prefix + "cip/c", 200, []string{"cip /c"}},
		{"", prefix + "empty/", 503, []string{fmt.Sprintf("kube-nginx-sync: no ready endpoints for %s/empty:http\n", ns)}},
		{"", prefix + "hidden/", 404, []string{"kube-nginx-sync: no route for this host and path\n"}},
		{"", prefix + "bad/", 404, []string{"kube-nginx-sync: no route for this host and path\n"}},
		{"", "/x", 404, []string{"kube-nginx-sync: no route for this host and path\n"}},
		{"shared.example.test", "/s", 200, []string{"conflict-a /s"}},
		{"unknown.example.test", prefix + "web/w", 200, []string{"web-1 /w", "web-2 /w"}},
	}
	for _, c := range checks {
		seen := map[string]bool{}
		// nginx draws one of n backends at random for each request:
		// 30n requests miss one with a chance below 1e-8.
		for range 30 * len(c.bodies) {
			status, body := get(t, port, c.host, c.path)
			if status != c.status {
				t.Errorf("GET %s%s: status %d (%q), want %d", c.host, c.path, status, body, c.status)
			}
			seen[body] = true
		}
		for _, want := range c.bodies {
			if !seen[want] {
				t.Errorf("GET %s%s: never answered %q; got %v", c.host, c.path, want, seen)
			}
			delete(seen, want)
		}
		if len(seen) > 0 {
			t.Errorf("GET %s%s: unexpected answers %v", c.host, c.path, seen)
		}
	}
	// nginx redirects the path without its trailing slash to the route.
	if status, _ := get(t, port, "", prefix+"web"); status != 301 {
		t.Errorf("GET %sweb: status %d, want 301", prefix, status)
	}

	t.Run("from-file renders the same bytes", func(t *testing.T) {
		saved := filepath.Join(t.TempDir(), "objects.yaml")
		saveObjects(t, ns, saved)
		again := filepath.Join(t.TempDir(), "default.conf")
		res := runBinary(t, "render", "--from-file", saved, "--namespace", ns,
			"--output", again, "--http-address", "127.0.0.1", "--http-port", strconv.Itoa(port), "--status-port", statusPort)
		if res.code != 0 {
			t.Fatalf("render --from-file exited %d:\n%s", res.code, res.stderr)
		}
		fromFile, err := os.ReadFile(again)
		if err != nil {
			t.Fatal(err)
		}
		if string(fromFile) != string(config) {
			t.Errorf("render --from-file differs from the cluster's render:\n%s\n---\n%s", fromFile, config)
		}
	})

	t.Run("unchanged output is not rewritten", func(t *testing.T) {
		before, err := os.Stat(output)
		if err != nil {
			t.Fatal(err)
		}
		res := runBinary(t, "render", "--kubeconfig", cluster.Kubeconfig, "--namespace", ns,
			"--output", output, "--http-address", "127.0.0.1", "--http-port", strconv.Itoa(port), "--status-port", statusPort)
		if res.code != 0 || !strings.Contains(res.stderr, "changed=false") {
			t.Fatalf("second render exited %d, want changed=false:\n%s", res.code, res.stderr)
		}
		after, err := os.Stat(output)
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(before, after) {
			t.Errorf("the file was replaced although its content did not change")
		}
	})
}

// saveObjects writes the namespace's Services and EndpointSlices as one
// List, the way `kubectl get svc,endpointslices -o yaml` does.
func saveObjects(t *testing.T, ns, path string) {
	t.Helper()
	ctx := context.Background()
	svcs, err := client.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	slices, err := client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	list := metav1.List{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "List"}}
	for i := range svcs.Items {
		s := svcs.Items[i]
		s.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Service"}
		list.Items = append(list.Items, runtime.RawExtension{Object: &s})
	}
	for i := range slices.Items {
		s := slices.Items[i]
		s.TypeMeta = metav1.TypeMeta{APIVersion: discoveryv1.SchemeGroupVersion.String(), Kind: "EndpointSlice"}
		list.Items = append(list.Items, runtime.RawExtension{Object: &s})
	}
	data, err := yaml.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRenderFailsClearlyWithoutAPIServer: an API server that never answers
// makes render give up after --timeout with a clear message and exit 1,
// leaving no file behind.
func TestRenderFailsClearlyWithoutAPIServer(t *testing.T) {
	t.Parallel()
	kubeconfig := deadKubeconfig(t)
	output := filepath.Join(t.TempDir(), "default.conf")
	res := runBinary(t, "render", "--kubeconfig", kubeconfig, "--timeout", "2s", "--output", output)
	if res.code != 1 {
		t.Errorf("exit code %d, want 1", res.code)
	}
	if !strings.Contains(res.stderr, "the API server did not answer within 2s") {
		t.Errorf("stderr lacks the reason:\n%s", res.stderr)
	}
	if _, err := os.Stat(output); !os.IsNotExist(err) {
		t.Errorf("a config was written: %v", err)
	}
}

// TestRenderFallsBackToLastGood: with --fallback-last-good, an API server
// that cannot be reached leads to the last validated config, said loudly.
func TestRenderFallsBackToLastGood(t *testing.T) {
	t.Parallel()
	output := filepath.Join(t.TempDir(), "default.conf")
	status := strconv.Itoa(freePort(t))
	// A validated render keeps its result as the last good config.
	res := runBinary(t, "render", "--from-file", "../../internal/kube/testdata/objects.yaml", "--output", output,
		"--validate", "--status-port", status)
	if res.code != 0 {
		t.Fatalf("render: %s", res.stderr)
	}
	good, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(output); err != nil {
		t.Fatal(err)
	}
	kubeconfig := deadKubeconfig(t)
	res = runBinary(t, "render", "--kubeconfig", kubeconfig, "--timeout", "1s", "--output", output, "--status-port", status)
	if res.code != 1 {
		t.Errorf("without --fallback-last-good: exit %d, want 1", res.code)
	}
	res = runBinary(t, "render", "--kubeconfig", kubeconfig, "--timeout", "1s", "--output", output, "--status-port", status, "--fallback-last-good")
	if res.code != 0 || !strings.Contains(res.stderr, "FALLBACK") || !strings.Contains(res.stderr, "level=ERROR") {
		t.Errorf("with --fallback-last-good: exit %d:\n%s", res.code, res.stderr)
	}
	if got, _ := os.ReadFile(output); string(got) != string(good) {
		t.Errorf("the fallback wrote %q, want the last good config", got)
	}
}

// TestRenderFallsBackToLastGoodLua: in the lua shape the fallback needs the
// table of routes and endpoints that the generator keeps beside the
// config; without it, the fallback fails (an init container is retried)
// rather than start an nginx that answers 404 to everything.
func TestRenderFallsBackToLastGoodLua(t *testing.T) {
	t.Parallel()
	output := filepath.Join(t.TempDir(), "default.conf")
	status := strconv.Itoa(freePort(t))
	res := runBinary(t, "render", "--from-file", "../../internal/kube/testdata/objects.yaml", "--output", output,
		"--shape", "lua", "--validate", "--status-port", status)
	if res.code != 0 {
		t.Fatalf("render: %s", res.stderr)
	}
	if err := os.Remove(output); err != nil {
		t.Fatal(err)
	}
	kubeconfig := deadKubeconfig(t)
	args := []string{"render", "--kubeconfig", kubeconfig, "--timeout", "1s", "--output", output, "--status-port", status,
		"--shape", "lua", "--fallback-last-good"}
	res = runBinary(t, args...)
	if res.code != 0 || !strings.Contains(res.stderr, "FALLBACK") || !strings.Contains(res.stderr, "table_version=") {
		t.Errorf("with the table: exit %d:\n%s", res.code, res.stderr)
	}
	if err := os.Remove(filepath.Join(filepath.Dir(output), luaplane.FileName)); err != nil {
		t.Fatal(err)
	}
	res = runBinary(t, args...)
	if res.code != 1 || !strings.Contains(res.stderr, "the table of routes and endpoints that the last good config needs cannot be read") {
		t.Errorf("without the table: exit %d, want 1:\n%s", res.code, res.stderr)
	}
}

// deadKubeconfig is a kubeconfig for an API server that is not there.
func deadKubeconfig(t *testing.T) string {
	t.Helper()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:%d", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, freePort(t))), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}
