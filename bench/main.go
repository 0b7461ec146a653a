// Command bench measures how fast a Service change is served by nginx
// through kube-nginx-sync, and, in the same run and on the same workload,
// by Traefik (the ingress controller users pick instead: its Kubernetes
// Ingress provider, on Ingress objects the bench creates for the same
// routes) and through the seed article's design done literally
// (bench/baseline: a kubectl watch loop that re-renders default.conf with
// jq, and an inotifywait loop that runs nginx -s reload). It runs a real
// control plane, real nginx and real backends, prints a Markdown table and
// a line per figure saying who is ahead, writes bench/results/latest.json
// and draws charts from it next to it.
//
// Run it with `make bench` (or `make bench QUICK=1`), which builds the
// control plane and runs it inside a private network namespace.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controlplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

func main() {
	var o options
	flag.BoolVar(&o.quick, "quick", false, "a run of a few minutes: fewer trials at 10,000 routes, a 20 s churn")
	flag.StringVar(&o.out, "out", "bench/results/latest.json", "where to write the JSON results")
	flag.StringVar(&o.sizes, "sizes", "10,1000,10000", "the numbers of existing routes to measure single changes at")
	flag.StringVar(&o.churnSizes, "churn-sizes", "10,1000,10000", "the churn runs at those of -sizes that this list names too")
	flag.StringVar(&o.logDir, "logs", "", "a folder to keep the log of each system's run in")
	flag.IntVar(&o.dpRounds, "dataplane-rounds", 3, "rounds of the data-plane section (1 with -quick); 0 leaves it out")
	flag.BoolVar(&o.dpOnly, "dataplane-only", false, "measure the data-plane section only (no control plane); mind -out")
	flag.StringVar(&o.shapes, "shape", string(nginxconf.ShapeUpstream)+","+string(nginxconf.ShapeLua),
		"the --shape kube-nginx-sync runs with in the other sections; a comma-separated list (upstream,lua) measures each as a system of its own")
	flag.BoolVar(&o.baseline, "baseline", true, "measure the baseline (the seed's design) too; false bounds a large run")
	flag.BoolVar(&o.traefik, "traefik", true, "measure Traefik too (its binary from $KNS_TRAEFIK_BIN, which make bench builds and sets)")
	flag.StringVar(&o.traefikArgs, "traefik-args", "", "more arguments for Traefik in the cluster sections, separated by spaces (e.g. --api.debug=true); recorded in the JSON")
	flag.StringVar(&o.chartsFrom, "charts-from", "", "measure nothing: read this JSON of an earlier run, draw its charts next to it and print its tables")
	flag.StringVar(&o.runArgs, "run-args", "", "more arguments for kube-nginx-sync run, separated by spaces (e.g. --max-delay=100ms); recorded in the JSON")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if o.chartsFrom != "" {
		if err := redraw(o.chartsFrom); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if o.quick && o.dpRounds > 1 {
		o.dpRounds = 1
	}
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options are the benchmark's flags.
type options struct {
	quick                                                       bool
	out, sizes, churnSizes, logDir, shapes, runArgs, chartsFrom string
	traefikArgs                                                 string
	dpRounds                                                    int
	dpOnly, baseline, traefik                                   bool
}

// parseShapes reads -shape: kube-nginx-sync's shapes, each once.
func parseShapes(list string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(list, ",") {
		shape, err := nginxconf.ParseShape(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("-shape %q: %w", f, err)
		}
		if slices.Contains(out, string(shape)) {
			return nil, fmt.Errorf("-shape: %s twice", shape)
		}
		out = append(out, string(shape))
	}
	return out, nil
}

// parseSizes reads a comma-separated list of numbers of routes.
func parseSizes(flagName, list string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 1 || n > 20000 {
			return nil, fmt.Errorf("bad size %q in %s", f, flagName)
		}
		out = append(out, n)
	}
	return out, nil
}

// Results is the JSON that the benchmark writes.
type Results struct {
	Date     string            `json:"date"`
	Machine  map[string]any    `json:"machine"`
	Versions map[string]string `json:"versions"`
	Quick    bool              `json:"quick"`
	// Shape is the -shape flag: kube-nginx-sync's --shapes in the
	// sections other than the data plane's; Shapes names the system that
	// ran each (kube-nginx-sync for the default shape,
	// kube-nginx-sync-<shape> for the others).
	Shape  string            `json:"shape"`
	Shapes map[string]string `json:"shapes"`
	// RunArgs are the -run-args: more arguments of kube-nginx-sync run;
	// TraefikArgs the -traefik-args, Traefik's.
	RunArgs     string `json:"run_args,omitempty"`
	TraefikArgs string `json:"traefik_args,omitempty"`
	// Results are each system's figures, by its name.
	Results map[string]*SystemResults `json:"results"`
	// DataPlane holds the data-plane section: one entry per shape
	// ("upstream", "flat", "lua") and "reference".
	DataPlane map[string]*DataPlaneResult `json:"data_plane"`
	Notes     []string                    `json:"notes"`
}

// SystemResults are one system's figures; a figure not measured is null.
type SystemResults struct {
	// Each map is by the number of routes.
	SingleChangeMS map[string]*Latency     `json:"single_change_ms"`
	NginxFloorMS   map[string]*Latency     `json:"nginx_floor_ms"`
	Burst1000      *BurstResult            `json:"burst_1000"`
	Churn          map[string]*ChurnResult `json:"churn"`
	Scale10000     *ScaleResult            `json:"scale_10000"`

	// IngressSingleChangeMS is the single change of an Ingress (ingress.go),
	// by the number of routes; kube-nginx-sync only.
	IngressSingleChangeMS map[string]*Latency `json:"ingress_single_change_ms,omitempty"`

	// HTTPSSingleChangeMS is the single change of an HTTPS route (a new
	// host whose Service names a TLS Secret), by the number of routes;
	// kube-nginx-sync only.
	HTTPSSingleChangeMS map[string]*Latency `json:"https_single_change_ms,omitempty"`
}

func run(ctx context.Context, o options) error {
	shapes, err := parseShapes(o.shapes)
	if err != nil {
		return err
	}
	sizes, err := parseSizes("-sizes", o.sizes)
	if err != nil {
		return err
	}
	churnSizes, err := parseSizes("-churn-sizes", o.churnSizes)
	if err != nil {
		return err
	}
	binDir := os.Getenv("KNS_CONTROLPLANE_BIN")
	if binDir == "" && !o.dpOnly {
		return fmt.Errorf("KNS_CONTROLPLANE_BIN is not set: run `make bench`")
	}
	var traefikBin string
	if o.traefik {
		if traefikBin = os.Getenv("KNS_TRAEFIK_BIN"); traefikBin == "" {
			return fmt.Errorf("KNS_TRAEFIK_BIN is not set: run `make bench`, or pass -traefik=false")
		}
	}
	scripts, err := filepath.Abs("bench/baseline")
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "kns-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	// The data plane first, while nothing else runs.
	var dp map[string]*DataPlaneResult
	if o.dpRounds > 0 || o.dpOnly {
		if dp, err = dataPlane(ctx, work, max(o.dpRounds, 1), traefikBin); err != nil {
			return err
		}
	}
	if o.dpOnly {
		v := map[string]string{"go": runtime.Version()}
		addTraefikVersion(v, traefikBin)
		res := &Results{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Versions: v,
			Quick: o.quick, DataPlane: dp, Notes: notes()}
		return writeResults(res, o.out, nil)
	}

	binary := filepath.Join(work, "kube-nginx-sync")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/kube-nginx-sync").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %v: %s", err, out)
	}
	// The baseline runs kubectl from the control plane's folder.
	os.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))

	cpDir := filepath.Join(work, "controlplane")
	if err := os.Mkdir(cpDir, 0o755); err != nil {
		return err
	}
	cp, err := controlplane.Start(ctx, controlplane.Options{BinDir: binDir, WorkDir: cpDir})
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	defer cp.Stop()
	cfg := *cp.Config
	cfg.QPS, cfg.Burst = 2000, 4000
	client, err := kubernetes.NewForConfig(&cfg)
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return err
	}
	backend, err := startBackend()
	if err != nil {
		return err
	}
	defer backend.Close()

	b := &bench{client: client, pollEvery: 5 * time.Millisecond, ingresses: o.traefik}
	b.next.Store(20000) // 0..19999 are the populated Services
	res := &Results{
		Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Versions: versions(ctx, binary, binDir, traefikBin), Quick: o.quick,
		Shape: strings.Join(shapes, ","), Shapes: map[string]string{}, RunArgs: o.runArgs, TraefikArgs: o.traefikArgs, Results: map[string]*SystemResults{}, DataPlane: dp,
	}
	// Each system in turn on the same cluster: kube-nginx-sync in each
	// shape, then Traefik, then the baseline.
	var systems []*system
	makers := map[string]configMaker{}
	renderers := map[string]*oursRenderer{}
	// Four ports for each of ours (nginx, status, metrics, HTTPS), two for
	// Traefik (traffic, metrics), one for the baseline's nginx.
	ports, err := freePorts(4*len(shapes) + 3)
	if err != nil {
		return err
	}
	https, err := setupHTTPS(ctx, client)
	if err != nil {
		return err
	}
	if err := setupIngress(ctx, client); err != nil {
		return err
	}
	for k, shape := range shapes {
		p := ports[4*k:]
		args := append(strings.Fields(o.runArgs), https.runArgs(oursName(shape), p[3])...)
		s := newOurs(shape, filepath.Join(work, "systems", oursName(shape)), binary, cp.Kubeconfig, p[0], p[1], p[2],
			append(args, ingressRunArgs()...))
		systems = append(systems, s)
		res.Shapes[s.name] = shape
		if makers[s.name], renderers[s.name], err = b.oursConfig(s); err != nil {
			return err
		}
	}
	if o.traefik {
		p := ports[4*len(shapes):]
		systems = append(systems, newTraefik(filepath.Join(work, "systems", traefikName), traefikBin, cp.Kubeconfig, p[0], p[1], strings.Fields(o.traefikArgs)))
	}
	if o.baseline {
		s := newBaseline(filepath.Join(work, "systems", baseline), scripts, cp.Kubeconfig, ports[len(ports)-1])
		systems = append(systems, s)
		makers[s.name] = b.baselineConfig(s, scripts)
	}
	for _, s := range systems {
		s.logDir = o.logDir
		if err := s.prepare(); err != nil {
			return err
		}
		defer s.stop()
		res.Results[s.name] = &SystemResults{SingleChangeMS: map[string]*Latency{}, NginxFloorMS: map[string]*Latency{}, Churn: map[string]*ChurnResult{}}
		if s.ours() {
			res.Results[s.name].IngressSingleChangeMS = map[string]*Latency{}
		}
		if s.ours() {
			res.Results[s.name].HTTPSSingleChangeMS = map[string]*Latency{}
		}
	}

	populated := 0
	for _, n := range sizes {
		start := time.Now()
		if _, err := parallel(ctx, populated, n, 16, func(ctx context.Context, i int) error { return b.create(ctx, i, "base") }); err != nil {
			return err
		}
		slog.Info("cluster populated", "services", n, "took", time.Since(start).Round(time.Millisecond))
		populated = n
		ready := []int{0, n - 1}
		for _, s := range systems {
			sr := res.Results[s.name]
			trials := 20
			if n >= 10000 && o.quick {
				trials = 3
				if s.ours() {
					trials = 5
				}
			}
			if err := s.start(ctx, client, ready); err != nil {
				return err
			}
			d, err := b.singleChange(ctx, s, trials, 3*time.Minute)
			if err != nil {
				return err
			}
			sr.SingleChangeMS[fmt.Sprint(n)] = summarize(d)
			slog.Info("single change", "system", s.name, "routes", n, "ms", sr.SingleChangeMS[fmt.Sprint(n)])
			if s.ours() {
				if d, err = b.ingressSingleChange(ctx, s, trials, 3*time.Minute); err != nil {
					return err
				}
				sr.IngressSingleChangeMS[fmt.Sprint(n)] = summarize(d)
				slog.Info("single change, Ingress", "system", s.name, "routes", n, "ms", sr.IngressSingleChangeMS[fmt.Sprint(n)])
			}
			if s.ours() {
				if d, err = b.httpsSingleChange(ctx, s, https, trials, 3*time.Minute); err != nil {
					return err
				}
				sr.HTTPSSingleChangeMS[fmt.Sprint(n)] = summarize(d)
				slog.Info("single change, HTTPS", "system", s.name, "routes", n, "ms", sr.HTTPSSingleChangeMS[fmt.Sprint(n)])
			}

			if n >= 10000 {
				// Traefik's configuration is built inside its process:
				// nothing to time from outside.
				var render func() (time.Duration, error)
				switch {
				case s.ours():
					r := renderers[s.name]
					render = func() (time.Duration, error) { return b.timeOursRender(ctx, r) }
				case !s.traefik:
					render = func() (time.Duration, error) { return timeBaselineRender(ctx, s, scripts, cp.Kubeconfig) }
				}
				if sr.Scale10000, err = b.scale(ctx, s, n, render); err != nil {
					return err
				}
				slog.Info("scale", "system", s.name, "figures", sr.Scale10000)
			}
			s.stop()
			if s.traefik {
				// No nginx under it: no floor.
				continue
			}

			f, err := b.nginxFloor(ctx, s, makers[s.name], trials)
			if err != nil {
				return err
			}
			sr.NginxFloorMS[fmt.Sprint(n)] = summarize(f)
			slog.Info("nginx floor", "system", s.name, "routes", n, "ms", sr.NginxFloorMS[fmt.Sprint(n)])
		}
		if n == 1000 {
			for _, s := range systems {
				sr := res.Results[s.name]
				limit := 5 * time.Minute
				if o.quick {
					limit = time.Minute
				}
				if err := s.start(ctx, client, ready); err != nil {
					return err
				}
				br, ids, err := b.burst(ctx, s, 1000, limit)
				s.stop()
				if err != nil {
					return err
				}
				sr.Burst1000 = br
				slog.Info("burst", "system", s.name, "result", br)
				if _, err := parallel(ctx, 0, len(ids), 16, func(ctx context.Context, k int) error { return b.remove(ctx, ids[k]) }); err != nil {
					return err
				}
			}
		}
		// The churn: half of at most 100 Services loaded, the other half
		// churning.
		if half := min(50, n/2); half > 0 && slices.Contains(churnSizes, n) {
			for _, s := range systems {
				d := time.Minute
				if o.quick {
					d = 20 * time.Second
				}
				if err := s.start(ctx, client, ready); err != nil {
					return err
				}
				cr, err := b.churn(ctx, s, seq(0, half), seq(half, 2*half), d, 100*time.Millisecond, 50)
				s.stop()
				if err != nil {
					return err
				}
				res.Results[s.name].Churn[fmt.Sprint(n)] = cr
				slog.Info("churn", "system", s.name, "routes", n, "result", cr)
			}
		}
	}
	res.Notes = notes()
	return writeResults(res, o.out, sizes)
}

// freePorts returns n distinct ports that are free on 127.0.0.1, below
// the kernel's range of ephemeral ports: a system binds its ports only
// when it starts, maybe many minutes later, and meanwhile the bench's
// clients open tens of thousands of connections, each from an ephemeral
// port.
func freePorts(n int) ([]int, error) {
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("no %d free ports in %d–%d", n, lowPorts, lowPorts+lowPortsSpan-1)
		}
		p := lowPorts + rand.IntN(lowPortsSpan)
		if slices.Contains(ports, p) {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		ports = append(ports, p)
	}
	return ports, nil
}

// The ports that freePorts picks from: below Linux's default ephemeral
// range (32768–60999).
const (
	lowPorts     = 20000
	lowPortsSpan = 12000
)

// writeResults writes the JSON and reports on it.
func writeResults(res *Results, outPath string, sizes []int) error {
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(outPath, append(data, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nWritten to %s.\n", outPath)
	return report(res, outPath, sizes)
}

// report prints the tables and the summary of res, and draws its charts
// next to its JSON at jsonPath.
func report(res *Results, jsonPath string, sizes []int) error {
	if res.Results != nil {
		fmt.Print(table(res, sizes))
	}
	fmt.Print(dataPlaneTable(res.DataPlane))
	fmt.Print(summary(res, sizes))
	charts, err := drawCharts(res, filepath.Dir(jsonPath))
	if err != nil {
		return err
	}
	for _, c := range charts {
		fmt.Printf("Chart: %s\n", c)
	}
	return nil
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// timeOursRender times one rebuild and render as the generator does it,
// from objects already in memory (as its informers hold them).
// In the lua shape, that includes the table file's.
func (b *bench) timeOursRender(ctx context.Context, r *oursRenderer) (time.Duration, error) {
	svcs, eps, err := b.list(ctx)
	if err != nil {
		return 0, err
	}
	s, e := ptrs(svcs.Items), ptrs(eps.Items)
	start := time.Now()
	if _, err := r.render(s, e); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// timeBaselineRender times the baseline generator's render: both lists
// from the API server, then jq.
func timeBaselineRender(ctx context.Context, s *system, scripts, kubeconfig string) (time.Duration, error) {
	script := fmt.Sprintf(`{ kubectl --kubeconfig %[1]q -n %[2]s get services -l kube-nginx-sync.io/expose=true -o json
kubectl --kubeconfig %[1]q -n %[2]s get endpointslices -o json; } | jq -r -s --arg listen 127.0.0.1:%[3]d -f %[4]q >/dev/null`,
		kubeconfig, namespace, s.port, filepath.Join(scripts, "default.conf.jq"))
	start := time.Now()
	if out, err := exec.CommandContext(ctx, "sh", "-c", script).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("baseline render: %v: %s", err, out)
	}
	return time.Since(start), nil
}

func exposedSelector() labels.Selector { return labels.SelectorFromSet(testbed.ExposedLabels) }

func machine() map[string]any {
	m := map[string]any{"cpus": runtime.NumCPU(), "goarch": runtime.GOARCH}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m["cpu"] = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		fmt.Sscanf(strings.SplitN(string(data), "\n", 2)[0], "MemTotal: %f kB", &kb)
		m["memory_gib"] = round(kb / 1024 / 1024)
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(data))
	}
	return m
}

func versions(ctx context.Context, binary, binDir, traefik string) map[string]string {
	v := map[string]string{"go": runtime.Version()}
	addTraefikVersion(v, traefik)
	try := func(key string, args ...string) {
		out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
		if err == nil {
			v[key] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	try("kube-nginx-sync", binary, "version")
	try("kube-nginx-sync_commit", "git", "rev-parse", "--short", "HEAD")
	try("nginx", "nginx", "-v")
	// Built from pinned modules, the binaries say v0.0.0-master: the
	// folder that hack/control-plane.sh built them in names the versions.
	v["controlplane_build"] = filepath.Base(binDir)
	try("kube-apiserver", filepath.Join(binDir, "kube-apiserver"), "--version")
	try("etcd", filepath.Join(binDir, "etcd"), "--version")
	try("kubectl", filepath.Join(binDir, "kubectl"), "version", "--client")
	try("jq", "jq", "--version")
	try("inotifywait", "sh", "-c", "inotifywait --help 2>&1 | head -1")
	return v
}

// addTraefikVersion records Traefik's version: built from its pinned
// module, the binary says "dev"; the folder that hack/control-plane.sh
// built it in (traefik-<version>-<key>) names the version.
func addTraefikVersion(v map[string]string, binary string) {
	if binary == "" {
		return
	}
	dir := filepath.Base(filepath.Dir(binary))
	v["traefik_build"] = dir
	if f := strings.Split(dir, "-"); len(f) >= 2 && f[0] == "traefik" {
		v["traefik"] = f[1]
	}
}

func notes() []string {
	return []string{
		"systems: kube-nginx-sync with each shape of -shape (kube-nginx-sync for the default shape, upstream; kube-nginx-sync-<shape> for the others; see shapes), then Traefik (traefik), then the baseline, one after the other on the same cluster.",
		"traefik: Traefik (versions.traefik, built from its Go module) with its Kubernetes Ingress provider watching the bench's namespace through the same kubeconfig as kube-nginx-sync, with its defaults otherwise (notably the global providersThrottleDuration of 2 s between two configurations applied); listening on 127.0.0.1 only. Every Service of the run gets an Ingress (Prefix path routePath, any host, the Service's port http), created between the Service and its EndpointSlice. Traefik has no nginx (nginx_floor_ms empty), no config file and never reloads (reloads 0): each change becomes a new configuration built and swapped in inside its one process, counted in config_updates (its traefik_config_reloads_total); its 'nginx' figures (processes, RSS, PSS) are that process's. A single change or burst waits for it to be quiet by that count instead of a file's time.",
		"single_change_ms: from the return of the EndpointSlice create call (the Service was created just before) to the first correct answer through nginx, polled every 5 ms on new connections. In the lua shape, a new route goes to the table file and needs no reload.",
		"ingress_single_change_ms (kube-nginx-sync only; its systems run with --ingress-class bench): as single_change_ms, for an Ingress: a Service that the selector leaves out and its EndpointSlice are created first, then an Ingress (one Prefix path, the Service's usual path, to its port by name); from the return of the Ingress's create call to the first correct answer. Each trial's objects are deleted after it.",
		"https_single_change_ms (kube-nginx-sync only): as single_change_ms, for a Service on a host of its own (svc-N.bench.test, path /) that names a TLS Secret (a wildcard certificate of a CA of the bench's own, created once): to the first correct answer over HTTPS on a new connection (SNI, chain verified). A new host is a new server block, so a reload in every shape. Each trial's Service is deleted after it (and the deletion's reload waited for).",
		"nginx_floor_ms: nginx alone on the same config shape, run by the bench: a route added and the files that changed replaced by the bench. Reload-based shapes: nginx's master signalled directly with SIGHUP, from the signal to the first correct answer. lua: only the table changes (a part and the index), nginx is not signalled (its workers check the index every 50 ms), from the rename of the new index to the first correct answer; each trial starts at a random point of 100 ms.",
		"burst_1000: 1,000 Services and slices created by 16 clients on top of about 1,000; converge_ms from the return of the last create; reloads counted from nginx's 'reconfiguring' log lines.",
		"churn (by number of routes): every 100 ms one of min(50, routes/2) Services gets an endpoint flipped ready/not ready; 50 Go keep-alive clients load as many other Services' routes; a failed request is an error, a non-200 status or a wrong backend; reloads counted from nginx's log. changes_in_use (lua shape only): the bench's own figure: for each flip, from the return of its API call until every nginx worker (the status server's report of each worker's table version, polled every 10 ms; the table file read when it changed) uses a table holding the Service's ready endpoints as the flip left them; superseded: flips that the same Service's next flip undid before that; restoring: the flips that undid them, in use but not timed (a flip has two states, so the workers may still have used theirs); never: not in use 30 s after the files were quiet for 2 s. request_ms: the churn clients' request times. endpoint_updates (lua shape only): the differences of kube-nginx-sync's kube_nginx_sync_endpoint_updates_total and of its histogram kube_nginx_sync_endpoint_update_seconds (from a table file's write to every nginx worker reporting it, or a newer one, in use; buckets from 5 ms, doubling) between the churn's start and 35 s after its end; p50_ms and p99_ms are estimated from those buckets as Prometheus' histogram_quantile does (linear interpolation within a bucket), so they are no finer than the buckets; the time from the API change to the file's write (the generator's part, which the single change includes) is not in it.",
		"data_plane: one route of 3 endpoints (a Go server), nginx with 2 workers (Traefik: its process, on the machine's 2 cores, with the router and load balancer that its Ingress provider makes of an Ingress, given by its file provider), wrk -t2 -c64 for 10 s with keep-alive, the configs in turn in each round; each figure is the median of the rounds (every round's requests/s and p99 are listed), failed_requests the sum of all rounds' non-2xx answers and socket errors; backend_connections were accepted by the backends during a round. upstream, flat and lua are kube-nginx-sync's shapes as it renders them; reference is a hand-written upstream block with keepalive 64.",
		"summary and charts: the bench prints a line per figure saying who is ahead and by how much (the others' value as a multiple of the leader's), and draws single-change.png (the single change's p50 against the number of routes, log-log, with nginx's floor dashed under each nginx-based system) and data-plane.png (requests/s and p99 per config) next to this JSON; go run ./bench -charts-from FILE draws them again from a JSON.",
		"scale_10000: render_ms is rebuild+render (and the table file's encoding in the lua shape) from objects in memory for kube-nginx-sync, and kubectl get (both lists) + jq for the baseline; table_bytes is the lua shape's table file; generator_rss_mib is the run process for kube-nginx-sync (generator and reloader in one) and the generator's process group (shell + 2 kubectl watches) for the baseline; total_pss_mib the PSS of the generator's and nginx's processes together (Traefik: its one process). For Traefik render_ms, config_bytes, nginx_t_ms and generator_rss_mib are null.",
	}
}
