//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// luaBackend is a backend of a test that the test may stop.
func luaBackend(t *testing.T, name string) *testbed.Backend {
	t.Helper()
	b, err := testbed.StartBackend(name, netip.AddrPortFrom(nextIP(), 8080))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// endpointUpdates is how many new endpoints files nginx's workers have
// confirmed in use.
func endpointUpdates(t *testing.T, a *allInOne) float64 {
	return metric(t, a.listen, `kube_nginx_sync_endpoint_updates_total{result="ok"}`)
}

// waitEndpointUpdate waits until the workers have taken one more endpoints
// file than before.
func waitEndpointUpdate(t *testing.T, a *allInOne, before float64) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		if n := endpointUpdates(t, a); n <= before {
			return fmt.Errorf("%v endpoint updates confirmed, want more than %v", n, before)
		}
		return nil
	})
}

// TestLuaEndpointChangesWithoutReload: with --shape lua, endpoint changes
// (a rolling replacement under keep-alive load, a route losing and
// regaining its endpoints) reach nginx's workers without a reload and
// without a failed request; a new route still reloads nginx.
func TestLuaEndpointChangesWithoutReload(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	a := startRun(t, ns, "--shape", "lua")
	createService(t, ns, service{name: "web", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	b1, b2 := luaBackend(t, "web"), luaBackend(t, "web")
	createSlice(t, ns, "web", []slicePort{sp("http", 8080)}, endpoint{Addr: b1.Addr.Addr()}, endpoint{Addr: b2.Addr.Addr()})
	path := "/" + ns + "/web/x"
	eventually(t, 15*time.Second, func() error {
		if status, body := get(t, a.port, "", path); status != 200 || body != "web /x" {
			return fmt.Errorf("answers %d %q", status, body)
		}
		return nil
	})
	// The endpoints are in the endpoints file, not in the config.
	config, err := os.ReadFile(filepath.Join(a.confDir, "default.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(config), b1.Addr.Addr().String()) {
		t.Fatalf("the lua shape's config names an endpoint:\n%s", config)
	}
	waitEndpointUpdate(t, a, 0)
	reloads := metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`)

	// A rolling replacement of b1 by b3 under load: b3 is added, b1 goes
	// not ready and its backend stops at that instant.
	l := startLoad(t, 20, target{port: a.port, path: path, body: "web /x"})
	ctx := context.Background()
	b3 := luaBackend(t, "web")
	before := endpointUpdates(t, a)
	if err := updateSlices(ctx, ns, "web", endpoint{Addr: b1.Addr.Addr()}, endpoint{Addr: b2.Addr.Addr()}, endpoint{Addr: b3.Addr.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitEndpointUpdate(t, a, before)
	before = endpointUpdates(t, a)
	changed := time.Now()
	if err := updateSlices(ctx, ns, "web", endpoint{Addr: b1.Addr.Addr(), NotReady: true}, endpoint{Addr: b2.Addr.Addr()}, endpoint{Addr: b3.Addr.Addr()}); err != nil {
		t.Fatal(err)
	}
	b1.Close()
	waitEndpointUpdate(t, a, before)
	t.Logf("an endpoint change was in use %s after the update was sent", time.Since(changed).Round(time.Millisecond))
	// Every client finishes two more requests: one begun after the change.
	mark := l.progress()
	eventually(t, 15*time.Second, func() error { return l.eachFinishedSince(mark, 2) })
	l.stop()
	t.Logf("rolling replacement: %s", l)
	if n := l.failures.Load(); n != 0 {
		t.Errorf("%d requests failed during the replacement:%s", n, l.failuresSince(changed))
	}

	// No ready endpoint: 503 with the route's name, at once; and back.
	before = endpointUpdates(t, a)
	if err := updateSlices(ctx, ns, "web"); err != nil {
		t.Fatal(err)
	}
	waitEndpointUpdate(t, a, before)
	if status, body := get(t, a.port, "", path); status != 503 || body != "kube-nginx-sync: no ready endpoints for "+ns+"/web:http\n" {
		t.Errorf("without endpoints: %d %q", status, body)
	}
	before = endpointUpdates(t, a)
	if err := updateSlices(ctx, ns, "web", endpoint{Addr: b2.Addr.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitEndpointUpdate(t, a, before)
	if status, body := get(t, a.port, "", path); status != 200 || body != "web /x" {
		t.Errorf("with its endpoint back: %d %q", status, body)
	}
	if n := metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`); n != reloads {
		t.Errorf("%v reloads for endpoint changes, want none (%v before, %v after)", n-reloads, reloads, n)
	}
	if n := metric(t, a.listen, fmt.Sprintf(`kube_nginx_sync_route_requests_total{class="2xx",route="%s/web:http"}`, ns)); n < float64(l.requests.Load()) {
		t.Errorf("nginx counted %v answered requests of the route, the load sent %d", n, l.requests.Load())
	}
	if n := metric(t, a.listen, `kube_nginx_sync_endpoint_update_seconds_count`); n < 4 {
		t.Errorf("%v endpoint updates timed, want at least 4", n)
	}

	// A new route needs no reload either: the Lua router reads it from the
	// table file.
	createService(t, ns, service{name: "other", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	createSlice(t, ns, "other", []slicePort{sp("http", 8080)}, endpoint{Addr: b2.Addr.Addr()})
	eventually(t, 15*time.Second, func() error {
		if status, body := get(t, a.port, "", "/"+ns+"/other/y"); status != 200 || body != "web /y" {
			return fmt.Errorf("the new route answers %d %q", status, body)
		}
		return nil
	})
	if n := metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`); n != reloads {
		t.Errorf("a new route reloaded nginx (%v reloads, %v before)", n, reloads)
	}
}

// TestLuaRouter: the Lua router matches as nginx matches prefix locations
// (the longest route path; the path without its final "/" redirects; no
// route is a 404), by host, strips a route's path when asked; a route with
// proxy settings of its own gets a location of its own (a config change:
// nginx reloads), and the routes under its path too.
func TestLuaRouter(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	a := startRun(t, ns, "--shape", "lua")
	outer, inner, shop := luaBackend(t, "outer"), luaBackend(t, "inner"), luaBackend(t, "shop")
	for _, s := range []struct {
		name        string
		b           *testbed.Backend
		annotations map[string]string
	}{
		{"outer", outer, map[string]string{"kube-nginx-sync.io/path": "/" + ns + "/api", "kube-nginx-sync.io/strip-prefix": "false"}},
		{"inner", inner, map[string]string{"kube-nginx-sync.io/path": "/" + ns + "/api/v2", "kube-nginx-sync.io/strip-prefix": "true"}},
		{"shop", shop, map[string]string{"kube-nginx-sync.io/host": ns + ".shop.test", "kube-nginx-sync.io/path": "/"}},
	} {
		createService(t, ns, service{name: s.name, labels: exposed, annotations: s.annotations, ports: []corev1.ServicePort{httpPort("http", 80)}})
		createSlice(t, ns, s.name, []slicePort{sp("http", 8080)}, endpoint{Addr: s.b.Addr.Addr()})
	}
	type want struct {
		host, path string
		status     int
		body       string
	}
	check := func(cases []want) error {
		for _, c := range cases {
			status, body, err := tryGet(a.port, c.host, c.path)
			if err != nil || status != c.status || body != c.body {
				return fmt.Errorf("GET %s%s: %d %q (%v), want %d %q", c.host, c.path, status, body, err, c.status, c.body)
			}
		}
		return nil
	}
	routes := []want{
		{"", "/" + ns + "/api/x", 200, "outer /" + ns + "/api/x"},
		{"", "/" + ns + "/api/v2/y?q=1", 200, "inner /y"},
		{"", "/" + ns + "/apiv2/", 404, "kube-nginx-sync: no route for this host and path\n"},
		{ns + ".shop.test", "/cart", 200, "shop /cart"},
		{ns + ".shop.test", "/" + ns + "/api/x", 200, "shop /" + ns + "/api/x"},
	}
	eventually(t, 15*time.Second, func() error { return check(routes) })
	// A route's path without its final "/" redirects, with the query, as
	// nginx's own locations do.
	redirects := func() error {
		for _, p := range []string{"/api", "/api/v2"} {
			if status, loc := redirect(t, a.port, "/"+ns+p+"?a=b"); status != 301 || !strings.HasSuffix(loc, "/"+ns+p+"/?a=b") {
				return fmt.Errorf("GET %s: %d to %q, want 301 to .../%s%s/?a=b", p, status, loc, ns, p)
			}
		}
		return nil
	}
	if err := redirects(); err != nil {
		t.Error(err)
	}
	reloads := metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`)

	// Proxy settings of its own: outer gets a location, and inner too (it
	// is under outer's path); the routing stays the same.
	svc, err := client.CoreV1().Services(ns).Get(context.Background(), "outer", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Annotations["kube-nginx-sync.io/read-timeout"] = "1h"
	if _, err := client.CoreV1().Services(ns).Update(context.Background(), svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		config, err := os.ReadFile(filepath.Join(a.confDir, "default.conf"))
		if err != nil {
			return err
		}
		for _, loc := range []string{"location /" + ns + "/api/ {", "location /" + ns + "/api/v2/ {"} {
			if !strings.Contains(string(config), loc) {
				return fmt.Errorf("no %q in the config", loc)
			}
		}
		if n := metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`); n <= reloads {
			return fmt.Errorf("%v reloads, want more than %v", n, reloads)
		}
		return nil
	})
	if err := check(routes); err != nil {
		t.Error(err)
	}
	if err := redirects(); err != nil {
		t.Error(err)
	}
}

// redirect asks path without following a redirect, and returns the status
// and Location.
func redirect(t *testing.T, port int, path string) (int, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// TestLuaRetriesAndRefusedFiles: a backend that dies without an
// EndpointSlice update costs no failed GET (the balancer tries another
// endpoint), and an endpoints file that does not parse is refused whole:
// the last good endpoints stay in use.
func TestLuaRetriesAndRefusedFiles(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	a := startRun(t, ns, "--shape", "lua")
	createService(t, ns, service{name: "web", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	bs := []*testbed.Backend{luaBackend(t, "web"), luaBackend(t, "web"), luaBackend(t, "web")}
	var eps []endpoint
	for _, b := range bs {
		eps = append(eps, endpoint{Addr: b.Addr.Addr()})
	}
	createSlice(t, ns, "web", []slicePort{sp("http", 8080)}, eps...)
	path := "/" + ns + "/web/"
	eventually(t, 15*time.Second, func() error {
		if status, _ := get(t, a.port, "", path); status != 200 {
			return fmt.Errorf("answers %d", status)
		}
		return nil
	})
	l := startLoad(t, 20, target{port: a.port, path: path, body: "web /"})
	mark := l.progress()
	eventually(t, 15*time.Second, func() error { return l.eachFinishedSince(mark, 1) })
	killed := time.Now()
	bs[0].Close()
	mark = l.progress()
	eventually(t, 15*time.Second, func() error { return l.eachFinishedSince(mark, 50) })
	l.stop()
	t.Logf("one of 3 backends killed, no EndpointSlice update: %s", l)
	if n := l.failures.Load(); n != 0 {
		t.Errorf("%d requests failed:%s", n, l.failuresSince(killed))
	}

	// A broken file, written by hand, is refused; the routes keep working.
	file := filepath.Join(a.confDir, luaplane.FileName)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// A new version whose part's end line miscounts: the part is
	// incomplete.
	hashes, version, err := luaplane.DecodeIndex(good)
	if err != nil {
		t.Fatal(err)
	}
	part, err := os.ReadFile(luaplane.PartPath(file, hashes[0]))
	if err != nil {
		t.Fatal(err)
	}
	const badHash = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(luaplane.PartPath(file, badHash), []byte(strings.Replace(string(part), "end ", "end 9", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(strings.Replace(string(good), version, "0123456789abcdef", 1), hashes[0], badHash, 1)
	if err := os.WriteFile(file+".tmp", []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		if n := metric(t, a.listen, "kube_nginx_sync_endpoint_file_errors_total"); n < 1 {
			return fmt.Errorf("%v refused endpoints files", n)
		}
		return nil
	})
	for range 10 {
		if status, body := get(t, a.port, "", path); status != 200 || body != "web /" {
			t.Fatalf("with a refused endpoints file: %d %q", status, body)
		}
	}
}

// TestWebSocketsThroughEndpointChurn: 50 WebSockets held open while the
// endpoints of other routes and of their own route (whose backend stays
// ready) change every 100 ms. The lua shape takes each change without a
// reload: none may close. The default shape reloads nginx for each settled
// change; its old workers keep serving their WebSockets: the figures are
// reported.
func TestWebSocketsThroughEndpointChurn(t *testing.T) {
	t.Parallel()
	const (
		sockets  = 50
		duration = 60 * time.Second
		every    = 100 * time.Millisecond
	)
	if testing.Short() {
		t.Skip("a minute of churn")
	}
	forShapes(t, func(t *testing.T, shape []string) {
		ns := newNamespace(t)
		a := startRun(t, ns, shape...)
		ws := dpBackend(t, "ws", testbed.BackendOptions{})
		spare := dpBackend(t, "ws", testbed.BackendOptions{})
		other := dpBackend(t, "other", testbed.BackendOptions{})
		dpService(t, ns, "ws", nil, ws)
		dpService(t, ns, "other", nil, other)
		addr := "127.0.0.1:" + strconv.Itoa(a.port)
		waitServedBy(t, a, "http://"+addr+"/"+ns+"/ws/x", ws)
		waitServedBy(t, a, "http://"+addr+"/"+ns+"/other/x", other)

		var conns []*testbed.WebSocket
		for i := range sockets {
			c, err := testbed.DialWebSocket(addr, "", "/"+ns+"/ws/echo", 5*time.Second)
			if err != nil {
				t.Fatalf("WebSocket %d: %v", i, err)
			}
			t.Cleanup(func() { c.Close() })
			conns = append(conns, c)
		}
		echo := func(c *testbed.WebSocket, msg string) error {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if err := c.WriteMessage(testbed.OpText, []byte(msg)); err != nil {
				return err
			}
			_, got, err := c.ReadMessage()
			if err == nil && string(got) != msg {
				err = fmt.Errorf("echo of %q is %q", msg, got)
			}
			return err
		}
		reloadsBefore := metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`)

		// The churn: other's endpoint comes and goes; ws's spare endpoint
		// comes and goes beside the one the sockets use, which stays.
		ctx := context.Background()
		flips := 0
		closed := map[int]error{}
		start := time.Now()
		for time.Since(start) < duration {
			on := flips%2 == 0
			otherEps := []endpoint{{Addr: other.Addr.Addr(), NotReady: on}}
			wsEps := []endpoint{{Addr: ws.Addr.Addr()}, {Addr: spare.Addr.Addr(), NotReady: !on}}
			if err := updateSlices(ctx, ns, "other", otherEps...); err != nil {
				t.Fatal(err)
			}
			if err := updateSlices(ctx, ns, "ws", wsEps...); err != nil {
				t.Fatal(err)
			}
			flips++
			// Each second, every socket still open echoes.
			if flips%10 == 0 {
				for i, c := range conns {
					if closed[i] == nil {
						if err := echo(c, fmt.Sprintf("flip %d", flips)); err != nil {
							closed[i] = err
						}
					}
				}
			}
			time.Sleep(every) // paces the churn, a change generator
		}
		reloads := metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`) - reloadsBefore
		m := scrape(t, a.listen)
		name := "upstream"
		if shape != nil {
			name = shape[1]
		}
		t.Logf("%s shape: %d WebSockets through %d endpoint flips of 2 routes in %s: %d closed; %v reloads; draining generations %v (%v workers, %.0f MiB)",
			name, sockets, flips, time.Since(start).Round(time.Second), len(closed), reloads,
			m["kube_nginx_sync_nginx_draining_generations"], m["kube_nginx_sync_nginx_draining_workers"], m["kube_nginx_sync_nginx_draining_resident_bytes"]/(1<<20))
		if shape != nil { // the lua shape
			if len(closed) > 0 {
				for i, err := range closed {
					t.Errorf("WebSocket %d closed: %v", i, err)
					break
				}
				t.Errorf("%d of %d WebSockets closed", len(closed), sockets)
			}
			if reloads != 0 {
				t.Errorf("%v reloads for endpoint changes", reloads)
			}
		}
	})
}
