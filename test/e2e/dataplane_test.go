//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// The data plane (issue 13): each test runs `kube-nginx-sync run` with its
// default shape against the shared control plane, and real backends in the
// test's network namespace, and loads nginx with keep-alive clients.

// dpBackend starts a testbed.Backend named name on a fresh address, port
// 8080, closed at the end of the test.
func dpBackend(t *testing.T, name string, opts testbed.BackendOptions) *testbed.Backend {
	t.Helper()
	b, err := testbed.StartBackendWith(name, netip.AddrPortFrom(nextIP(), 8080), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// dpService creates an exposed Service with one port, "http", and an
// EndpointSlice with the backends as ready endpoints.
func dpService(t *testing.T, ns, name string, annotations map[string]string, backends ...*testbed.Backend) {
	t.Helper()
	createService(t, ns, service{name: name, labels: exposed, annotations: annotations, ports: []corev1.ServicePort{httpPort("http", 80)}})
	var eps []endpoint
	for _, b := range backends {
		eps = append(eps, endpoint{Addr: b.Addr.Addr()})
	}
	createSlice(t, ns, name, []slicePort{sp("http", 8080)}, eps...)
}

// waitServedBy waits until every backend has answered a request through
// nginx at url, and nginx has settled.
func waitServedBy(t *testing.T, a *allInOne, url string, backends ...*testbed.Backend) {
	t.Helper()
	defer a.waitSettled(t)
	eventually(t, 30*time.Second, func() error {
		for _, b := range backends {
			if b.Requests() == 0 {
				if code := httpStatus(url); code != 200 {
					return fmt.Errorf("GET %s answers %d", url, code)
				}
				return fmt.Errorf("backend %s has not answered yet", b.Addr)
			}
		}
		return nil
	})
}

// loadSpec describes a load of keep-alive clients: each has an
// http.Transport of its own (Go's defaults: keep-alive, and one retry of an
// idempotent request whose reused connection the server closed), so each
// holds one connection to nginx.
type loadSpec struct {
	clients int
	method  string // GET or POST (which Go never sends twice)
	url     string
	// want is the body that every answer must have, with status 200.
	want string
	// The load ends after duration or maxRequests requests, whichever
	// comes first, or when halted.
	duration    time.Duration
	maxRequests int64
	// burst, when above 0, makes each client send burst requests back to
	// back, then pause for pause().
	burst int
	pause func() time.Duration
}

// loadRun is a running load and its figures.
type loadRun struct {
	spec     loadSpec
	requests atomic.Int64
	// failed counts every failed request; transport counts those that
	// ended in an error on the client's side (no answer, a broken
	// connection), the others had a wrong status or body.
	failed, transport atomic.Int64
	statuses          sync.Map // status code -> *atomic.Int64, of failed requests
	started           time.Time
	took              time.Duration
	stopCh            chan struct{}
	wg                sync.WaitGroup
	stopOnce          sync.Once

	mu    sync.Mutex
	first []string // the first failures
}

// startLoadSpec starts a load; it stops at the end of the test if it is
// still running.
func startLoadSpec(t *testing.T, spec loadSpec) *loadRun {
	t.Helper()
	l := &loadRun{spec: spec, started: time.Now(), stopCh: make(chan struct{})}
	deadline := l.started.Add(spec.duration)
	for range spec.clients {
		tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		l.wg.Go(func() {
			defer tr.CloseIdleConnections()
			for n := 0; ; n++ {
				select {
				case <-l.stopCh:
					return
				default:
				}
				if time.Now().After(deadline) || l.requests.Load() >= spec.maxRequests {
					return
				}
				if spec.burst > 0 && n > 0 && n%spec.burst == 0 {
					// Pacing the load generator: the pause between
					// bursts is what the test is about.
					time.Sleep(spec.pause())
				}
				l.once(c)
			}
		})
	}
	t.Cleanup(l.halt)
	return l
}

func (l *loadRun) once(c *http.Client) {
	var body io.Reader
	if l.spec.method == http.MethodPost {
		body = strings.NewReader("a request body that nginx must send to the backend")
	}
	req, err := http.NewRequest(l.spec.method, l.spec.url, body)
	if err != nil {
		l.fail(0, err)
		return
	}
	l.requests.Add(1)
	resp, err := c.Do(req)
	if err != nil {
		l.fail(0, err)
		return
	}
	got, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case err != nil:
		l.fail(0, fmt.Errorf("reading the body: %w", err))
	case resp.StatusCode != 200 || string(got) != l.spec.want:
		l.fail(resp.StatusCode, fmt.Errorf("%d %q", resp.StatusCode, bytes.TrimSpace(got)))
	}
}

func (l *loadRun) fail(status int, err error) {
	l.failed.Add(1)
	if status == 0 {
		l.transport.Add(1)
	} else {
		n, _ := l.statuses.LoadOrStore(status, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.first) < 10 {
		l.first = append(l.first, fmt.Sprintf("%+.3fs %s %v", time.Since(l.started).Seconds(), l.spec.method, err))
	}
}

// wait waits until the load ends by itself.
func (l *loadRun) wait() {
	l.wg.Wait()
	l.stopOnce.Do(func() { l.took = time.Since(l.started) })
}

// halt ends the load now and waits for its clients.
func (l *loadRun) halt() {
	select {
	case <-l.stopCh:
	default:
		close(l.stopCh)
	}
	l.wait()
}

// String sums the load up (after it ended).
func (l *loadRun) String() string {
	s := fmt.Sprintf("%d %s requests by %d keep-alive clients in %s (%.0f/s), %d failed",
		l.requests.Load(), l.spec.method, l.spec.clients, l.took.Round(time.Millisecond),
		float64(l.requests.Load())/l.took.Seconds(), l.failed.Load())
	if l.failed.Load() > 0 {
		var parts []string
		if n := l.transport.Load(); n > 0 {
			parts = append(parts, fmt.Sprintf("%d without an answer", n))
		}
		l.statuses.Range(func(k, v any) bool {
			parts = append(parts, fmt.Sprintf("%d with status %d", v.(*atomic.Int64).Load(), k.(int)))
			return true
		})
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// failures lists the first failures.
func (l *loadRun) failures() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "\n  " + strings.Join(l.first, "\n  ")
}

func accepted(backends ...*testbed.Backend) string {
	var parts []string
	for _, b := range backends {
		parts = append(parts, fmt.Sprintf("%s: %d connections, %d requests", b.Addr, b.Accepted(), b.Requests()))
	}
	return strings.Join(parts, "; ")
}

// TestDataPlaneSustainedLoad: 20 keep-alive clients load a route of one
// endpoint for 60 s. With a new connection to the backend for each
// request, the ~28,000 local ports toward one address run out after
// ~28,000 requests (each leaves a socket in TIME_WAIT for 60 s), and nginx
// answers 502. With keep-alive, no request fails and the backend accepts
// a few connections.
func TestDataPlaneSustainedLoad(t *testing.T) {
	t.Parallel()
	const (
		clients     = 20
		duration    = 60 * time.Second
		minRequests = 40000
		maxAccepted = 300
	)
	ns := newNamespace(t)
	a := startRun(t, ns)
	b := dpBackend(t, "one", testbed.BackendOptions{})
	dpService(t, ns, "one", nil, b)
	url := fmt.Sprintf("http://127.0.0.1:%d/%s/one/x", a.port, ns)
	waitServedBy(t, a, url, b)

	before := b.Accepted()
	ld := startLoadSpec(t, loadSpec{clients: clients, method: http.MethodGet, url: url, want: "one /x",
		duration: duration, maxRequests: 5_000_000})
	ld.wait()
	conns := b.Accepted() - before
	t.Logf("%s; the backend accepted %d connections during the load (%s)", ld, conns, accepted(b))
	if n := ld.failed.Load(); n > 0 {
		t.Errorf("%d of %d requests failed:%s", n, ld.requests.Load(), ld.failures())
	}
	if n := ld.requests.Load(); n < minRequests {
		t.Errorf("%d requests in %s, want at least %d", n, duration, minRequests)
	}
	if conns > maxAccepted {
		t.Errorf("the backend accepted %d connections for %d requests, want at most %d: connections are not kept alive",
			conns, ld.requests.Load(), maxAccepted)
	}
}

// TestDataPlaneRollingUpdate: a route of 3 endpoints under 50 keep-alive
// GET clients and 5 POST clients; each endpoint is replaced in turn as a
// Deployment's rollout does it without a preStop delay: the new backend
// starts and its endpoint is added, ready; then the old endpoint is marked
// terminating (not ready), and at that same instant its backend closes its
// listener and its idle connections. No GET may fail; POST failures (nginx
// does not send a POST again once sent) are reported.
func TestDataPlaneRollingUpdate(t *testing.T) {
	t.Parallel()
	forShapes(t, func(t *testing.T, shape []string) {
		ns := newNamespace(t)
		a := startRun(t, ns, shape...)
		var current []*testbed.Backend
		for range 3 {
			current = append(current, dpBackend(t, "web", testbed.BackendOptions{}))
		}
		dpService(t, ns, "web", nil, current...)
		url := fmt.Sprintf("http://127.0.0.1:%d/%s/web/x", a.port, ns)
		waitServedBy(t, a, url, current...)

		gets := startLoadSpec(t, loadSpec{clients: 50, method: http.MethodGet, url: url, want: "web /x", duration: 3 * time.Minute, maxRequests: 10_000_000})
		posts := startLoadSpec(t, loadSpec{clients: 5, method: http.MethodPost, url: url, want: "web /x", duration: 3 * time.Minute, maxRequests: 10_000_000})
		ctx := context.Background()
		var terminating []endpoint
		var replaced []*testbed.Backend
		var steps []string
		for i := range 3 {
			old := current[0]
			fresh := dpBackend(t, "web", testbed.BackendOptions{})
			current = append(current[1:], fresh)
			ready := func() []endpoint {
				var eps []endpoint
				for _, b := range current {
					eps = append(eps, endpoint{Addr: b.Addr.Addr()})
				}
				return append(eps, terminating...)
			}
			stepStart := time.Now()
			// The new endpoint, ready, beside the old one.
			if err := updateSlices(ctx, ns, "web", append(ready(), endpoint{Addr: old.Addr.Addr()})...); err != nil {
				t.Fatal(err)
			}
			// Then the old one terminating, and its backend gone.
			terminating = append(terminating, endpoint{Addr: old.Addr.Addr(), Terminating: true})
			if err := updateSlices(ctx, ns, "web", ready()...); err != nil {
				t.Fatal(err)
			}
			old.Shutdown()
			replaced = append(replaced, old)
			// The next step once the new backend has carried a share of
			// the load (a real rollout waits for the next Pod to start).
			eventually(t, 30*time.Second, func() error {
				if n := fresh.Requests(); n < 2000 {
					return fmt.Errorf("the new backend %s answered %d requests", fresh.Addr, n)
				}
				return nil
			})
			steps = append(steps, fmt.Sprintf("step %d: new backend serving %s after the update", i+1, time.Since(stepStart).Round(time.Millisecond)))
		}
		// A while on the new backends alone.
		mark := gets.requests.Load()
		eventually(t, 30*time.Second, func() error {
			if n := gets.requests.Load() - mark; n < 10000 {
				return fmt.Errorf("%d GETs since the last step", n)
			}
			return nil
		})
		gets.halt()
		posts.halt()
		t.Logf("rolling update of 3 endpoints (%s): GETs: %s; POSTs: %s; old backends: %s; new backends: %s",
			strings.Join(steps, ", "), gets, posts, accepted(replaced...), accepted(current...))
		if n := gets.failed.Load(); n > 0 {
			t.Errorf("%d of %d GETs failed:%s", n, gets.requests.Load(), gets.failures())
		}
		if n := posts.failed.Load(); n > 0 {
			t.Logf("%d of %d POSTs failed (nginx does not send a POST again once sent; a client without retries sees these):%s",
				n, posts.requests.Load(), posts.failures())
		}
	})
}

// TestDataPlaneBackendCrash: one of 3 backends dies (its listener and
// connections close at once) and its EndpointSlice is not updated, as when
// a process crashes faster than its readiness probe fails. nginx tries the
// request again on another endpoint and leaves the dead one out for a
// while: no GET fails.
func TestDataPlaneBackendCrash(t *testing.T) {
	t.Parallel()
	forShapes(t, func(t *testing.T, shape []string) {
		ns := newNamespace(t)
		a := startRun(t, ns, shape...)
		var backends []*testbed.Backend
		for range 3 {
			backends = append(backends, dpBackend(t, "api", testbed.BackendOptions{}))
		}
		dpService(t, ns, "api", nil, backends...)
		url := fmt.Sprintf("http://127.0.0.1:%d/%s/api/x", a.port, ns)
		waitServedBy(t, a, url, backends...)

		ld := startLoadSpec(t, loadSpec{clients: 20, method: http.MethodGet, url: url, want: "api /x", duration: 20 * time.Second, maxRequests: 5_000_000})
		eventually(t, 15*time.Second, func() error {
			if n := ld.requests.Load(); n < 2000 {
				return fmt.Errorf("%d requests so far", n)
			}
			return nil
		})
		dead := backends[0]
		if err := dead.Close(); err != nil {
			t.Fatal(err)
		}
		atCrash := ld.requests.Load()
		servedBefore := dead.Requests()
		ld.wait()
		t.Logf("%s; %d requests after the crash; backends: %s", ld, ld.requests.Load()-atCrash, accepted(backends...))
		if n := ld.failed.Load(); n > 0 {
			t.Errorf("%d of %d GETs failed:%s", n, ld.requests.Load(), ld.failures())
		}
		if n := dead.Requests() - servedBefore; n > 0 {
			t.Errorf("the dead backend answered %d requests", n)
		}
		if n := ld.requests.Load() - atCrash; n < 2000 {
			t.Errorf("only %d requests after the crash", n)
		}
	})
}

// TestDataPlaneBackendIdleTimeout: backends close keep-alive connections
// idle for 1 s (Node.js does after 5 s), and clients send bursts with
// pauses around 1 s, so that a burst often begins when the backends close
// the connections the last one left. A request that nginx sends on a
// connection that the backend is closing fails: nginx must close idle
// connections first, or send the request again. No GET may fail. (With
// nginx's default upstream keepalive_timeout of 60 s and without
// proxy_next_upstream, 11 of 23,010 GETs failed here.)
func TestDataPlaneBackendIdleTimeout(t *testing.T) {
	t.Parallel()
	forShapes(t, func(t *testing.T, shape []string) {
		ns := newNamespace(t)
		a := startRun(t, ns, shape...)
		var backends []*testbed.Backend
		for range 3 {
			backends = append(backends, dpBackend(t, "idle", testbed.BackendOptions{IdleTimeout: time.Second}))
		}
		one := dpBackend(t, "idle-one", testbed.BackendOptions{IdleTimeout: time.Second})
		dpService(t, ns, "idle", nil, backends...)
		dpService(t, ns, "idle-one", nil, one)
		url := fmt.Sprintf("http://127.0.0.1:%d/%s/idle/x", a.port, ns)
		urlOne := fmt.Sprintf("http://127.0.0.1:%d/%s/idle-one/x", a.port, ns)
		waitServedBy(t, a, url, backends...)
		waitServedBy(t, a, urlOne, one)

		// Pauses from 0.9 s to 1.2 s: across the backends' idle timeout.
		pause := func() time.Duration { return 900*time.Millisecond + rand.N(300*time.Millisecond) }
		spec := loadSpec{clients: 20, method: http.MethodGet, want: "idle /x", duration: 40 * time.Second, maxRequests: 2_000_000,
			burst: 20, pause: pause}
		spec.url = url
		three := startLoadSpec(t, spec)
		spec.url, spec.want, spec.clients = urlOne, "idle-one /x", 10
		single := startLoadSpec(t, spec)
		three.wait()
		single.wait()
		t.Logf("3 endpoints: %s; backends: %s", three, accepted(backends...))
		t.Logf("1 endpoint: %s; backend: %s", single, accepted(one))
		for _, l := range []*loadRun{three, single} {
			if n := l.failed.Load(); n > 0 {
				t.Errorf("%s: %d of %d GETs failed:%s", l.spec.url, n, l.requests.Load(), l.failures())
			}
			if n := l.requests.Load(); n < 5000 {
				t.Errorf("%s: only %d requests", l.spec.url, n)
			}
		}
	})
}

// TestDataPlaneWebSocket: a WebSocket through nginx upgrades and echoes
// 1,000 messages each way; a WebSocket idle for longer than nginx's default
// read timeout (60 s) is closed on a route without the read-timeout
// annotation and survives on a route whose annotation allows it.
func TestDataPlaneWebSocket(t *testing.T) {
	t.Parallel()
	const defaultReadTimeout = 60 * time.Second
	ns := newNamespace(t)
	a := startRun(t, ns)
	b := dpBackend(t, "ws", testbed.BackendOptions{})
	dpService(t, ns, "ws-default", nil, b)
	dpService(t, ns, "ws-long", map[string]string{model.AnnotationReadTimeout: "3m"}, b)
	addr := "127.0.0.1:" + strconv.Itoa(a.port)
	for _, name := range []string{"ws-default", "ws-long"} {
		eventually(t, 30*time.Second, func() error {
			if code := httpStatus("http://" + addr + "/" + ns + "/" + name + "/x"); code != 200 {
				return fmt.Errorf("%s answers %d", name, code)
			}
			return nil
		})
	}
	a.waitSettled(t)

	dial := func(name string) *testbed.WebSocket {
		ws, err := testbed.DialWebSocket(addr, "", "/"+ns+"/"+name+"/echo", 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}
	echo := func(ws *testbed.WebSocket, msg string) error {
		_ = ws.SetDeadline(time.Now().Add(5 * time.Second))
		if err := ws.WriteMessage(testbed.OpText, []byte(msg)); err != nil {
			return fmt.Errorf("send: %w", err)
		}
		op, got, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("receive: %w", err)
		}
		if op != testbed.OpText || string(got) != msg {
			return fmt.Errorf("echo of %q is %d %q", msg, op, got)
		}
		return nil
	}

	plain, long := dial("ws-default"), dial("ws-long")
	start := time.Now()
	for i := range 1000 {
		for _, ws := range []*testbed.WebSocket{plain, long} {
			if err := echo(ws, fmt.Sprintf("message %d %s", i, strings.Repeat("x", i))); err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
		}
	}
	t.Logf("2 WebSockets through nginx: 1,000 messages echoed each way on each in %s", time.Since(start).Round(time.Millisecond))

	// Both idle now. nginx closes the one without the annotation after its
	// default read timeout: wait for that, then a little longer.
	idle := time.Now()
	_ = plain.SetDeadline(idle.Add(defaultReadTimeout + 30*time.Second))
	_, _, err := plain.ReadMessage()
	closedAfter := time.Since(idle)
	var netErr interface{ Timeout() bool }
	if err == nil || (errors.As(err, &netErr) && netErr.Timeout()) {
		t.Fatalf("the WebSocket without the annotation was not closed after %s idle: %v", closedAfter.Round(time.Millisecond), err)
	}
	if closedAfter < defaultReadTimeout-5*time.Second {
		t.Errorf("the WebSocket without the annotation was closed after %s idle, before the default read timeout", closedAfter)
	}
	if err := echo(long, "still there"); err != nil {
		t.Errorf("the WebSocket with read-timeout 3m, idle for %s: %v", time.Since(idle).Round(time.Millisecond), err)
	}
	t.Logf("idle WebSockets: without the annotation closed by nginx after %s (%v); with read-timeout 3m still echoing after %s",
		closedAfter.Round(time.Millisecond), err, time.Since(idle).Round(time.Millisecond))
}

// waitSettled waits until nginx serves the file that a's generator wrote
// last and has no other worker than the one of that config: until then, a
// new connection may still reach a worker of an older config.
func (a *allInOne) waitSettled(t *testing.T) {
	t.Helper()
	waitSettled(t, a.daemon, a.listen, filepath.Join(a.confDir, "default.conf"), a.statusPort)
}

// forShapes runs test for the default shape and for the lua shape, one
// after the other (each is a load test: running them side by side would
// halve what each measures), with the run flags of each.
func forShapes(t *testing.T, test func(t *testing.T, shape []string)) {
	for _, shape := range [][]string{nil, {"--shape", "lua"}} {
		name := "upstream"
		if shape != nil {
			name = shape[1]
		}
		t.Run(name, func(t *testing.T) { test(t, shape) })
	}
}
