package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// The data-plane section: how fast nginx proxies with each built-in shape,
// next to what an nginx expert writes by hand and to Traefik, on one route
// of 3 endpoints under keep-alive clients (wrk).

const (
	dpClients   = 64
	dpDuration  = 10 * time.Second
	dpEndpoints = 3
	// dpBackendPort is the port of the data plane's backend, which listens
	// on every address (the cluster's backend has 8080).
	dpBackendPort = 9090
	dpPrefix      = "/dp/web/"
	dpPath        = dpPrefix + "x"
)

// The configs the data plane is measured with.
const (
	dpUpstream  = "upstream"
	dpFlat      = "flat"
	dpLua       = "lua"
	dpReference = "reference"
)

// dpConfigs are the configs in the order measured; traefikName, Traefik
// (when the bench has its binary), comes last.
var dpConfigs = []string{dpUpstream, dpFlat, dpLua, dpReference, traefikName}

// DataPlaneResult is one config's figures: over several rounds, the
// median of each figure, and the sum of the failures.
type DataPlaneResult struct {
	RequestsPerSecond float64 `json:"requests_per_s"`
	P50MS             float64 `json:"p50_ms"`
	P99MS             float64 `json:"p99_ms"`
	Requests          int64   `json:"requests"`
	// FailedRequests are wrk's non-2xx answers and socket errors.
	FailedRequests int64 `json:"failed_requests"`
	// BackendConnections counts the connections the backends accepted
	// during the round.
	BackendConnections int64 `json:"backend_connections"`
	// RoundsRequestsPerSecond and RoundsP99MS are every round's
	// figures, in order.
	RoundsRequestsPerSecond []float64 `json:"rounds_requests_per_s"`
	RoundsP99MS             []float64 `json:"rounds_p99_ms"`
}

// dataPlane measures every config for rounds rounds, the configs in turn
// within each round, so that the machine's noise touches each alike;
// Traefik only when traefik, its binary, is set.
func dataPlane(ctx context.Context, work string, rounds int, traefik string) (map[string]*DataPlaneResult, error) {
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, fmt.Errorf("the data-plane section needs wrk: %w", err)
	}
	backend, accepted, err := startDataPlaneBackend()
	if err != nil {
		return nil, err
	}
	defer backend.Close()
	port, err := freeTCPPort()
	if err != nil {
		return nil, err
	}
	all := map[string][]*DataPlaneResult{}
	for round := range rounds {
		for k, name := range dpConfigs {
			if name == traefikName && traefik == "" {
				continue
			}
			// Fresh endpoint addresses for every run: the TIME_WAIT
			// sockets that the flat shape leaves toward its endpoints
			// (60 s) must not reach the next run's.
			var eps []netip.AddrPort
			for j := range dpEndpoints {
				eps = append(eps, netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(240 + round), byte(10*k + j + 1)}), dpBackendPort))
			}
			res, err := dataPlaneRun(ctx, filepath.Join(work, "dataplane", fmt.Sprintf("%s-%d", name, round)), name, port, eps, accepted, traefik)
			if err != nil {
				return nil, err
			}
			slog.Info("data plane", "config", name, "round", round+1, "requests_per_s", res.RequestsPerSecond,
				"p50_ms", res.P50MS, "p99_ms", res.P99MS, "failed", res.FailedRequests, "backend_connections", res.BackendConnections)
			all[name] = append(all[name], res)
		}
	}
	out := map[string]*DataPlaneResult{}
	for name, runs := range all {
		out[name] = summarizeRounds(runs)
	}
	return out, nil
}

// summarizeRounds takes the median of each figure of the rounds, and the
// sum of their failures.
func summarizeRounds(runs []*DataPlaneResult) *DataPlaneResult {
	median := func(f func(*DataPlaneResult) float64) float64 {
		v := make([]float64, len(runs))
		for i, r := range runs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	res := &DataPlaneResult{
		RequestsPerSecond:  median(func(r *DataPlaneResult) float64 { return r.RequestsPerSecond }),
		P50MS:              median(func(r *DataPlaneResult) float64 { return r.P50MS }),
		P99MS:              median(func(r *DataPlaneResult) float64 { return r.P99MS }),
		Requests:           int64(median(func(r *DataPlaneResult) float64 { return float64(r.Requests) })),
		BackendConnections: int64(median(func(r *DataPlaneResult) float64 { return float64(r.BackendConnections) })),
	}
	for _, r := range runs {
		res.FailedRequests += r.FailedRequests
		res.RoundsRequestsPerSecond = append(res.RoundsRequestsPerSecond, r.RequestsPerSecond)
		res.RoundsP99MS = append(res.RoundsP99MS, r.P99MS)
	}
	return res
}

// dataPlaneRun runs nginx with config name (or Traefik, its binary
// traefik) under dir and loads it with wrk.
func dataPlaneRun(ctx context.Context, dir, name string, port int, eps []netip.AddrPort, accepted *atomic.Int64, traefik string) (*DataPlaneResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var (
		log  *syncBuffer
		stop func()
		err  error
		// nginx passes on the path without the route's prefix.
		want = "dp /x"
	)
	if name == traefikName {
		// Traefik's Ingress provider passes it on as it came.
		want = "dp " + dpPath
		log, stop, err = startTraefikDataPlane(traefik, dir, port, eps)
	} else {
		log, stop, err = startNginxDataPlane(dir, name, port, eps)
	}
	if err != nil {
		return nil, err
	}
	defer stop()
	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, dpPath)
	client := newPollClient()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if body, code, err := get(client, port, dpPath); err == nil && code == 200 && body == want {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, fmt.Errorf("data plane %s: it does not answer %s: %s", name, url, log.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := accepted.Load()
	out, err := exec.CommandContext(ctx, "wrk", "-t2", fmt.Sprintf("-c%d", dpClients), fmt.Sprintf("-d%ds", int(dpDuration.Seconds())),
		"--latency", url).CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("wrk: %v: %s", err, out)
	}
	res, err := parseWrk(string(out))
	if err != nil {
		return nil, fmt.Errorf("data plane %s: %w:\n%s", name, err, out)
	}
	res.BackendConnections = accepted.Load() - before
	return res, nil
}

// startNginxDataPlane starts nginx with config name under dir.
func startNginxDataPlane(dir, name string, port int, eps []netip.AddrPort) (log *syncBuffer, stop func(), err error) {
	confDir, prefix := filepath.Join(dir, "conf.d"), filepath.Join(dir, "nginx")
	for _, d := range []string{confDir, prefix} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, nil, err
		}
	}
	data, err := dataPlaneConfig(name, port, eps, confDir)
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(confDir, "default.conf"), data, 0o644); err != nil {
		return nil, nil, err
	}
	// As the systems' nginx: two workers, the machine's cores.
	main := testbed.MainConfig{Prefix: prefix, ConfDir: confDir, Workers: 2, WorkerConnections: 4096}
	if name == dpLua {
		if main.Modules = nginx.LuaModules(); main.Modules == nil {
			return nil, nil, fmt.Errorf("the lua shape needs nginx's Lua module (libnginx-mod-http-lua)")
		}
		// nginx's workers (user nobody) read the table file themselves.
		for d := confDir; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				return nil, nil, err
			}
		}
	}
	mainConf, err := main.Write()
	if err != nil {
		return nil, nil, err
	}
	_, log, stop, err = startNginx("-p", prefix+"/", "-c", mainConf, "-g", "daemon off;")
	return log, stop, err
}

// dataPlaneConfig is the config file of one of dpConfigs, routing /dp/web/
// to the endpoints with the prefix stripped (for the lua shape, with its
// table file in confDir).
func dataPlaneConfig(name string, port int, eps []netip.AddrPort, confDir string) ([]byte, error) {
	if name == dpReference {
		var b strings.Builder
		b.WriteString("# What an nginx expert writes by hand: an upstream block with keep-alive.\nupstream reference {\n")
		for _, ep := range eps {
			fmt.Fprintf(&b, "    server %s;\n", ep)
		}
		fmt.Fprintf(&b, `    keepalive 64;
}

server {
    listen 127.0.0.1:%d default_server;
    server_name _;

    location /dp/web/ {
        proxy_pass http://reference/;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
        proxy_set_header X-Real-IP $remote_addr;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
    }
}
`, port)
		return []byte(b.String()), nil
	}
	var endpoints []testbed.Endpoint
	for _, ep := range eps {
		endpoints = append(endpoints, testbed.Endpoint{Addr: ep.Addr()})
	}
	svc, slice := dpObjects(endpoints)
	res := model.Build(svc, slice, model.Options{})
	tableFile := filepath.Join(confDir, luaplane.FileName)
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: port, HTTPAddresses: []string{"127.0.0.1"}, Shape: nginxconf.Shape(name), TableFile: tableFile})
	if err != nil {
		return nil, err
	}
	if name == dpLua {
		table, err := luaplane.Encode(luaplane.Build(res.Config))
		if err != nil {
			return nil, err
		}
		if _, err := luaplane.Write(tableFile, table); err != nil {
			return nil, err
		}
	}
	return r.Render(res.Config, res.Services)
}

// dpObjects are the data plane's Service, dp/web, and its EndpointSlice.
func dpObjects(eps []testbed.Endpoint) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "dp", Name: "web"},
		Spec:       corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{testbed.TCPPort("http", 80)}},
	}
	slice := testbed.EndpointSlice("web", []testbed.SlicePort{{Name: "http", Port: dpBackendPort}}, eps...)
	slice.Namespace, slice.GenerateName, slice.Name = "dp", "", "web-0"
	return []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slice}
}

// startDataPlaneBackend serves the data plane's endpoints: every address,
// port dpBackendPort, answering "dp <path>"; accepted counts the
// connections it accepted.
func startDataPlaneBackend() (*http.Server, *atomic.Int64, error) {
	l, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", dpBackendPort))
	if err != nil {
		return nil, nil, fmt.Errorf("data-plane backend: %w", err)
	}
	accepted := new(atomic.Int64)
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "dp %s", r.URL.Path)
	})}
	go srv.Serve(&countingListener{Listener: l, n: accepted})
	return srv, accepted, nil
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func freeTCPPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// parseWrk reads wrk's report (with --latency).
func parseWrk(out string) (*DataPlaneResult, error) {
	res := &DataPlaneResult{}
	var haveRate, have50, have99 bool
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 2 && f[0] == "Requests/sec:":
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return nil, err
			}
			res.RequestsPerSecond, haveRate = round(v), true
		case len(f) == 2 && (f[0] == "50%" || f[0] == "99%"):
			d, err := parseWrkDuration(f[1])
			if err != nil {
				return nil, err
			}
			if f[0] == "50%" {
				res.P50MS, have50 = d, true
			} else {
				res.P99MS, have99 = d, true
			}
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			n, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return nil, err
			}
			res.Requests = n
		case len(f) == 5 && f[0] == "Non-2xx":
			n, err := strconv.ParseInt(f[4], 10, 64)
			if err != nil {
				return nil, err
			}
			res.FailedRequests += n
		case len(f) > 2 && f[0] == "Socket" && f[1] == "errors:":
			// Socket errors: connect 0, read 0, write 0, timeout 0
			for i := 3; i < len(f); i += 2 {
				n, err := strconv.ParseInt(strings.TrimSuffix(f[i], ","), 10, 64)
				if err != nil {
					return nil, err
				}
				res.FailedRequests += n
			}
		}
	}
	if !haveRate || !have50 || !have99 {
		return nil, fmt.Errorf("no requests/s or latency distribution in wrk's report")
	}
	return res, nil
}

// parseWrkDuration reads "812.00us", "1.23ms" or "1.02s" in milliseconds.
func parseWrkDuration(s string) (float64, error) {
	for _, u := range []struct {
		suffix string
		ms     float64
	}{{"us", 0.001}, {"ms", 1}, {"m", 60000}, {"s", 1000}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("wrk duration %q: %w", s, err)
			}
			return round(f*u.ms*100) / 100, nil
		}
	}
	return 0, fmt.Errorf("wrk duration %q", s)
}

// dataPlaneTable is the data-plane figures as a Markdown table, and the
// ratios of the default shape to the reference.
func dataPlaneTable(dp map[string]*DataPlaneResult) string {
	if len(dp) == 0 {
		return ""
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n| data plane: %d keep-alive clients, %s, one route of %d endpoints (median of rounds) | requests/s (each round) | p50 | p99 (each round) | failed (all rounds) | backend connections |\n|---|---|---|---|---|---|\n",
		dpClients, dpDuration, dpEndpoints)
	for _, name := range dpConfigs {
		r := dp[name]
		if r == nil {
			continue
		}
		var rounds, p99s []string
		for _, v := range r.RoundsRequestsPerSecond {
			rounds = append(rounds, fmt.Sprintf("%.0f", v))
		}
		for _, v := range r.RoundsP99MS {
			p99s = append(p99s, fmt.Sprintf("%g", v))
		}
		label := map[string]string{dpUpstream: "`--shape upstream` (default)", dpFlat: "`--shape flat`", dpLua: "`--shape lua`",
			dpReference: "reference: hand-written upstream, keepalive 64", traefikName: "Traefik: its Ingress provider's router and load balancer (file provider)"}[name]
		fmt.Fprintf(&sb, "| %s | %.0f (%s) | %g ms | %g ms (%s) | %d | %d |\n", label, r.RequestsPerSecond, strings.Join(rounds, ", "),
			r.P50MS, r.P99MS, strings.Join(p99s, ", "), r.FailedRequests, r.BackendConnections)
	}
	if u, ref := dp[dpUpstream], dp[dpReference]; u != nil && ref != nil && ref.RequestsPerSecond > 0 && ref.P99MS > 0 {
		fmt.Fprintf(&sb, "| default / reference (target ≥ 0.9×, p99 ≤ 1.2×, 0 failed) | %.2f× | %.2f× | %.2f× | %d | |\n",
			u.RequestsPerSecond/ref.RequestsPerSecond, u.P50MS/ref.P50MS, u.P99MS/ref.P99MS, u.FailedRequests)
	}
	if l, ref := dp[dpLua], dp[dpReference]; l != nil && ref != nil && ref.RequestsPerSecond > 0 && ref.P99MS > 0 {
		fmt.Fprintf(&sb, "| lua / reference (target ≥ 0.85×, 0 failed) | %.2f× | %.2f× | %.2f× | %d | |\n",
			l.RequestsPerSecond/ref.RequestsPerSecond, l.P50MS/ref.P50MS, l.P99MS/ref.P99MS, l.FailedRequests)
	}
	return sb.String()
}
