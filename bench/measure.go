package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// Latency is a distribution of durations in milliseconds.
type Latency struct {
	P50    float64 `json:"p50"`
	P95    float64 `json:"p95"`
	Max    float64 `json:"max"`
	Trials int     `json:"trials"`
}

func summarize(d []time.Duration) *Latency {
	if len(d) == 0 {
		return nil
	}
	ms := make([]float64, len(d))
	for i, x := range d {
		ms[i] = float64(x.Microseconds()) / 1000
	}
	slices.Sort(ms)
	q := func(p float64) float64 { return round(ms[min(len(ms)-1, int(p*float64(len(ms))))]) }
	return &Latency{P50: q(0.5), P95: q(0.95), Max: round(ms[len(ms)-1]), Trials: len(ms)}
}

// Latency99 is a distribution of many durations in milliseconds.
type Latency99 struct {
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99_9"`
	Max   float64 `json:"max"`
	Count int     `json:"count"`
}

// summarize99 sorts d and summarizes it.
func summarize99(d []time.Duration) *Latency99 {
	if len(d) == 0 {
		return nil
	}
	slices.Sort(d)
	q := func(p float64) float64 { return ms(d[min(len(d)-1, int(p*float64(len(d))))]) }
	return &Latency99{P50: q(0.5), P99: q(0.99), P999: q(0.999), Max: ms(d[len(d)-1]), Count: len(d)}
}

func round(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// bench holds what every measurement needs.
type bench struct {
	client kubernetes.Interface
	// next is the index of the next fresh Service.
	next atomic.Int64
	// pollEvery is how often a route is tried while waiting for it.
	pollEvery time.Duration
	// ingresses: every Service gets an Ingress too, for the ingress
	// controllers measured (Traefik).
	ingresses bool
}

func (b *bench) fresh() int { return int(b.next.Add(1) - 1) }

// singleChange creates one Service and its EndpointSlice, trials times,
// and measures from the return of the second create call to the first
// correct answer through the system's nginx.
func (b *bench) singleChange(ctx context.Context, s *system, trials int, timeout time.Duration) ([]time.Duration, error) {
	client := newPollClient()
	var out []time.Duration
	for range trials {
		i := b.fresh()
		if err := b.create(ctx, i, "trial"); err != nil {
			return out, err
		}
		created := time.Now()
		for !routed(client, s.port, i) {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if time.Since(created) > timeout {
				return out, fmt.Errorf("%s: %s not routed after %s", s.name, serviceName(i), timeout)
			}
			time.Sleep(b.pollEvery)
		}
		out = append(out, time.Since(created))
		// Let the system finish (a later write, a reload) before the
		// next trial, so that trials do not overlap.
		if err := s.waitQuiet(ctx, s.settleTime()); err != nil {
			return out, err
		}
	}
	return out, nil
}

// configMaker renders the files a system writes for nginx for these
// objects, as the system itself would: each file's content by its path.
type configMaker func(ctx context.Context, svcs *corev1.ServiceList, eps *discoveryv1.EndpointSliceList) (map[string][]byte, error)

// nginxFloor measures nginx alone on a system's config shape: an nginx of
// the bench's own runs the files that maker renders; each trial adds a
// route, replaces the files that changed and waits for the route's first
// correct answer. When the config changed (the reload-based shapes), the
// bench signals the master directly (SIGHUP) and times from the signal;
// when only the lua shape's table file changed, nginx's workers read it
// themselves, and the time runs from the rename of the new file. The
// system must be stopped (its ports are reused).
func (b *bench) nginxFloor(ctx context.Context, s *system, maker configMaker, trials int) ([]time.Duration, error) {
	// The cluster does not change meanwhile: list it once, and add each
	// trial's Service to the lists.
	svcs, eps, err := b.list(ctx)
	if err != nil {
		return nil, err
	}
	written := map[string][]byte{}
	// write replaces each file whose content changed (a temporary file,
	// then a rename) and says which, and when the last rename began.
	write := func() (map[string]bool, time.Time, error) {
		files, err := maker(ctx, svcs, eps)
		if err != nil {
			return nil, time.Time{}, err
		}
		changed := map[string]bool{}
		var renamed time.Time
		for _, path := range writeOrder(files) {
			if old, ok := written[path]; ok && bytes.Equal(old, files[path]) {
				continue
			}
			tmp := filepath.Join(filepath.Dir(path), ".floor-"+filepath.Base(path))
			if err := os.WriteFile(tmp, files[path], 0o644); err != nil {
				return nil, time.Time{}, err
			}
			renamed = time.Now()
			if err := os.Rename(tmp, path); err != nil {
				return nil, time.Time{}, err
			}
			written[path], changed[path] = files[path], true
		}
		return changed, renamed, nil
	}
	if _, _, err := write(); err != nil {
		return nil, err
	}
	cmd, log, stop, err := startNginx(append(s.nginxArgs(), "-g", "daemon off;")...)
	if err != nil {
		return nil, err
	}
	defer stop()
	client := newPollClient()
	// nginx must be up before the first trial: a SIGHUP that comes before
	// the master handles signals ends it (at 10,000 routes of the
	// upstream shape, it parses for about a second), and in the lua
	// shape the first table must be in use.
	if err := waitRouted(ctx, client, s.port, 0, 2*time.Minute, b.pollEvery); err != nil {
		return nil, fmt.Errorf("nginx floor: %w: %s", err, log.tail())
	}
	var out []time.Duration
	for range trials {
		i := b.fresh()
		svc, slice := objects(i, "floor")
		svcs.Items, eps.Items = append(svcs.Items, *svc), append(eps.Items, *slice)
		if s.lua() {
			// Pacing: a trial starts at a random point of the workers'
			// 50 ms check of the table file (100 ms: two of them), as a change from the
			// cluster does; right after the last answer it would start
			// at the same point each time.
			time.Sleep(rand.N(100 * time.Millisecond))
		}
		changed, renamed, err := write()
		if err != nil {
			return out, err
		}
		var start time.Time
		switch {
		case changed[s.configPath()]:
			// Wait until the previous reload is over: the master merges
			// signals that arrive during a reload.
			time.Sleep(300 * time.Millisecond)
			start = time.Now()
			if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
				return out, err
			}
		case len(changed) > 0:
			// The lua shape's table file alone: no signal.
			start = renamed
		default:
			return out, fmt.Errorf("nginx floor: a new route changed none of %s's files", s.name)
		}
		if err := waitRouted(ctx, client, s.port, i, time.Minute, b.pollEvery); err != nil {
			return out, fmt.Errorf("nginx floor: %w: %s", err, log.tail())
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// writeOrder orders the paths of files as a system writes them: the lua
// shape's table parts before the table file that names them (a part's
// path is the table file's, and more), then by path.
func writeOrder(files map[string][]byte) []string {
	var parts, rest []string
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if _, ok := files[path[:max(strings.LastIndexByte(path, '.'), 0)]]; ok {
			parts = append(parts, path)
		} else {
			rest = append(rest, path)
		}
	}
	return append(parts, rest...)
}

// waitRouted polls until nginx on port routes Service i, for at most
// limit.
func waitRouted(ctx context.Context, c *http.Client, port, i int, limit, every time.Duration) error {
	start := time.Now()
	for !routed(c, port, i) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) > limit {
			return fmt.Errorf("%s not routed after %s", serviceName(i), limit)
		}
		time.Sleep(every)
	}
	return nil
}

// list lists the benchmark's Services and EndpointSlices.
func (b *bench) list(ctx context.Context) (*corev1.ServiceList, *discoveryv1.EndpointSliceList, error) {
	svcs, err := b.client.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	eps, err := b.client.DiscoveryV1().EndpointSlices(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	return svcs, eps, nil
}

// oursConfig renders as kube-nginx-sync run does with the flags newOurs
// gives it: the config, and in the lua shape the table file too.
func (b *bench) oursConfig(s *system) (configMaker, *oursRenderer, error) {
	r, err := newOursRenderer(s)
	if err != nil {
		return nil, nil, err
	}
	return func(_ context.Context, svcs *corev1.ServiceList, eps *discoveryv1.EndpointSliceList) (map[string][]byte, error) {
		return r.render(ptrs(svcs.Items), ptrs(eps.Items))
	}, r, nil
}

// oursRenderer renders a kube-nginx-sync system's files from objects.
type oursRenderer struct {
	r                 *nginxconf.Renderer
	config, tableFile string
}

func newOursRenderer(s *system) (*oursRenderer, error) {
	opts := nginxconf.Options{HTTPPort: s.port, HTTPAddresses: []string{"127.0.0.1"}, StatusPort: s.statusPort, Shape: nginxconf.Shape(s.shape)}
	out := &oursRenderer{config: s.configPath()}
	if s.lua() {
		opts.TableFile, out.tableFile = s.tablePath(), s.tablePath()
	}
	r, err := nginxconf.NewRenderer(opts)
	if err != nil {
		return nil, err
	}
	out.r = r
	return out, nil
}

// render builds the model and renders it, as the generator does.
func (o *oursRenderer) render(svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) (map[string][]byte, error) {
	res := model.Build(svcs, eps, model.Options{Selector: exposedSelector()})
	config, err := o.r.Render(res.Config, res.Services)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{o.config: config}
	if o.tableFile != "" {
		table, err := luaplane.Encode(luaplane.Build(res.Config))
		if err != nil {
			return nil, err
		}
		files[o.tableFile] = table.Index
		for _, p := range table.Parts {
			files[luaplane.PartPath(o.tableFile, p.Hash)] = p.Data
		}
	}
	return files, nil
}

// baselineConfig renders with the baseline's jq template.
func (b *bench) baselineConfig(s *system, scripts string) configMaker {
	return func(ctx context.Context, svcs *corev1.ServiceList, eps *discoveryv1.EndpointSliceList) (map[string][]byte, error) {
		selected := &corev1.ServiceList{}
		for _, svc := range svcs.Items {
			if exposedSelector().Matches(labels.Set(svc.Labels)) {
				selected.Items = append(selected.Items, svc)
			}
		}
		a, _ := json.Marshal(selected)
		c, _ := json.Marshal(eps)
		cmd := exec.CommandContext(ctx, "jq", "-r", "-s", "--arg", "listen", fmt.Sprintf("127.0.0.1:%d", s.port),
			"-f", filepath.Join(scripts, "default.conf.jq"))
		cmd.Stdin = strings.NewReader(string(a) + "\n" + string(c))
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("jq: %w", err)
		}
		return map[string][]byte{s.configPath(): out}, nil
	}
}

// BurstResult is the burst_1000 figure.
type BurstResult struct {
	ConvergeMS *float64 `json:"converge_ms"`
	// Reloads are nginx's (Traefik never reloads: 0).
	Reloads int `json:"reloads"`
	// ConfigUpdates are the configurations Traefik applied in place
	// (its traefik_config_reloads_total); null for the others.
	ConfigUpdates *int    `json:"config_updates,omitempty"`
	CreateMS      float64 `json:"create_ms"`
	// TimedOut: not every route answered within the limit; Answering
	// says how many did.
	TimedOut  bool `json:"timed_out"`
	Answering int  `json:"answering"`
}

// burst creates n Services (with slices) as fast as the API server takes
// them and measures from the return of the last create call until all of
// them answer through nginx.
func (b *bench) burst(ctx context.Context, s *system, n int, timeout time.Duration) (*BurstResult, []int, error) {
	first := int(b.next.Add(int64(n))) - n
	ids := make([]int, n)
	for k := range ids {
		ids[k] = first + k
	}
	before := s.reloads()
	updates := s.countUpdates(ctx)
	start := time.Now()
	last, err := parallel(ctx, first, first+n, 16, func(ctx context.Context, i int) error { return b.create(ctx, i, "burst") })
	if err != nil {
		return nil, ids, err
	}
	res := &BurstResult{CreateMS: ms(last.Sub(start))}
	pending := slices.Clone(ids)
	client := newPollClient()
	for len(pending) > 0 && !res.TimedOut {
		pending = slices.DeleteFunc(pending, func(i int) bool {
			if time.Since(last) > timeout || ctx.Err() != nil {
				res.TimedOut = true
				return false
			}
			return routed(client, s.port, i)
		})
		if len(pending) > 0 {
			time.Sleep(b.pollEvery)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, ids, err
	}
	if !res.TimedOut {
		v := ms(time.Since(last))
		res.ConvergeMS = &v
		if err := s.waitQuiet(ctx, time.Second); err != nil {
			return nil, ids, err
		}
	}
	res.Answering = n - len(pending)
	res.Reloads = s.reloads() - before
	if res.ConfigUpdates, err = updates(); err != nil {
		return nil, ids, err
	}
	return res, ids, nil
}

// ChurnResult is the churn figure.
type ChurnResult struct {
	Seconds        float64 `json:"seconds"`
	Changes        int     `json:"changes"`
	Requests       int64   `json:"requests"`
	FailedRequests int64   `json:"failed_requests"`
	// Reloads are nginx's (Traefik never reloads: 0); ConfigUpdates the
	// configurations Traefik applied in place (null for the others).
	Reloads           int     `json:"reloads"`
	ConfigUpdates     *int    `json:"config_updates,omitempty"`
	NginxProcsBefore  int     `json:"nginx_processes_before"`
	NginxProcsDuring  int     `json:"nginx_processes_during_max"`
	NginxProcsAfter   int     `json:"nginx_processes_after"`
	NginxRSSMiBBefore float64 `json:"nginx_rss_mib_before"`
	NginxRSSMiBDuring float64 `json:"nginx_rss_mib_during_max"`
	NginxRSSMiBAfter  float64 `json:"nginx_rss_mib_after"`
	// PSS splits the pages that nginx's processes share (the config
	// that workers inherit from the master), so it is what they use.
	NginxPSSMiBBefore float64 `json:"nginx_pss_mib_before"`
	NginxPSSMiBDuring float64 `json:"nginx_pss_mib_during_max"`
	NginxPSSMiBAfter  float64 `json:"nginx_pss_mib_after"`
	// RequestMS is the clients' request times (a request of a Go client
	// that retried on a new connection counts once, retry included).
	RequestMS    *Latency99 `json:"request_ms"`
	FirstFailure string     `json:"first_failure,omitempty"`
	// Settled: the config (and table file) stopped changing within 30 s
	// of the churn's end (the baseline works off its backlog of events
	// for longer).
	Settled bool `json:"settled"`
	// EndpointUpdates are the lua shape's table files in use during the
	// churn, as kube-nginx-sync's metrics count them, and ChangesInUse
	// each flip in use, as the bench sees it (null for the other
	// systems).
	EndpointUpdates *EndpointUpdates `json:"endpoint_updates,omitempty"`
	ChangesInUse    *ChangesInUse    `json:"changes_in_use,omitempty"`
}

// EndpointUpdates are what kube-nginx-sync's metrics say of the table
// files written during the churn: the difference of
// kube_nginx_sync_endpoint_updates_total and of the histogram
// kube_nginx_sync_endpoint_update_seconds (from a file's write until
// every nginx worker uses it) between before and after.
type EndpointUpdates struct {
	// OK: files confirmed in use by every worker; a file that a newer
	// one replaced before it was confirmed is not counted.
	OK int `json:"ok"`
	// Failed: files not in use by every worker within 10 s.
	Failed int `json:"failed"`
	// P50MS and P99MS are estimated from the histogram's buckets the way
	// Prometheus' histogram_quantile does: linear within a bucket.
	P50MS *float64 `json:"p50_ms"`
	P99MS *float64 `json:"p99_ms"`
	// Buckets are the histogram's cumulative counts by upper bound in
	// seconds ("+Inf" last), as differences between after and before.
	Buckets []Bucket `json:"buckets"`
}

// churn flips an endpoint of the churning Services every interval for d
// while clients keep loading the stable Services, whose routes never
// change.
func (b *bench) churn(ctx context.Context, s *system, stable, churning []int, d, interval time.Duration, clients int) (*ChurnResult, error) {
	master, err := s.nginxMaster()
	if err != nil {
		return nil, err
	}
	res := &ChurnResult{Seconds: d.Seconds()}
	res.NginxProcsBefore, res.NginxRSSMiBBefore, res.NginxPSSMiBBefore = nginxUsage(master)
	before := s.reloads()
	updates := s.countUpdates(ctx)
	var metricsBefore map[string]float64
	if s.lua() {
		if metricsBefore, err = scrape(ctx, s.metricsPort); err != nil {
			return nil, err
		}
	}

	loadCtx, stopLoad := context.WithCancel(ctx)
	var requests, failed atomic.Int64
	var firstFailure atomic.Value
	var wg sync.WaitGroup
	transport := newClient().Transport
	took := make([][]time.Duration, clients)
	for k := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient()
			c.Transport = transport
			for loadCtx.Err() == nil {
				i := stable[rand.IntN(len(stable))]
				start := time.Now()
				body, code, err := get(c, s.port, routePath(i))
				took[k] = append(took[k], time.Since(start))
				requests.Add(1)
				if err != nil || code != 200 || !answersFor(i, body) {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%s: %d %q %v", serviceName(i), code, body, err))
				}
			}
		}()
	}
	// Sample nginx while the churn runs.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for loadCtx.Err() == nil {
			n, rss, pss := nginxUsage(master)
			res.NginxProcsDuring = max(res.NginxProcsDuring, n)
			res.NginxRSSMiBDuring = max(res.NginxRSSMiBDuring, rss)
			res.NginxPSSMiBDuring = max(res.NginxPSSMiBDuring, pss)
			time.Sleep(250 * time.Millisecond)
		}
	}()

	// In the lua shape, the bench follows each change until every
	// worker uses it.
	var tracker *inUseTracker
	trackCtx, stopTracking := context.WithCancel(ctx)
	trackerDone := make(chan struct{})
	defer func() { stopTracking(); <-trackerDone }()
	if s.lua() {
		tracker = newInUseTracker(s, master)
		go func() { defer close(trackerDone); tracker.run(trackCtx) }()
	} else {
		close(trackerDone)
	}

	deadline := time.Now().Add(d)
	tick := time.NewTicker(interval)
	var churnErr error
	for k := 0; time.Now().Before(deadline); k++ {
		<-tick.C
		i := churning[k%len(churning)]
		ready, err := b.flip(ctx, i)
		if err != nil {
			churnErr = err
			break
		}
		if tracker != nil {
			tracker.flipped(i, ready, time.Now())
		}
		res.Changes++
	}
	tick.Stop()
	stopLoad()
	wg.Wait()
	// The clients leave: their idle connections would keep old workers.
	transport.(*http.Transport).CloseIdleConnections()
	res.Requests, res.FailedRequests = requests.Load(), failed.Load()
	res.RequestMS = summarize99(slices.Concat(took...))
	if f, ok := firstFailure.Load().(string); ok {
		res.FirstFailure = f
	}
	if churnErr != nil {
		return res, churnErr
	}
	// After: once the last change is served and old workers are gone. A
	// generator with a backlog of events may rewrite the file for many
	// minutes: give it 30 s.
	if res.Settled, err = s.waitQuietAtMost(ctx, 2*time.Second, 30*time.Second); err != nil {
		return res, err
	}
	if tracker != nil {
		// The last file is written; the workers check every 50 ms, but
		// may take a while to load a large table.
		for start := time.Now(); tracker.pendingCount() > 0 && time.Since(start) < 30*time.Second; {
			if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
				return res, err
			}
		}
		stopTracking()
		<-trackerDone
		res.ChangesInUse = tracker.result()
	}

	for range 100 {
		if n, _, _ := nginxUsage(master); n <= res.NginxProcsBefore {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// nginx's master frees the memory of replaced configs on a 30 s
	// timer (ngx_clean_old_cycles).
	time.Sleep(35 * time.Second)
	res.NginxProcsAfter, res.NginxRSSMiBAfter, res.NginxPSSMiBAfter = nginxUsage(master)
	res.Reloads = s.reloads() - before
	if res.ConfigUpdates, err = updates(); err != nil {
		return res, err
	}
	if s.lua() {
		// 35 s after the last write, the reloader has confirmed each
		// file, or given up on it (after 10 s).
		after, err := scrape(ctx, s.metricsPort)
		if err != nil {
			return res, err
		}
		res.EndpointUpdates = endpointUpdates(metricsBefore, after)
	}
	return res, nil
}

// flip toggles the readiness of the last endpoint of Service i and
// returns how many of its endpoints are ready after.
func (b *bench) flip(ctx context.Context, i int) (int, error) {
	slices := b.client.DiscoveryV1().EndpointSlices(namespace)
	slice, err := slices.Get(ctx, serviceName(i)+"-0", metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	last := &slice.Endpoints[len(slice.Endpoints)-1].Conditions
	ready := last.Ready == nil || *last.Ready
	last.Ready, last.Serving = ptr.To(!ready), ptr.To(!ready)
	if _, err = slices.Update(ctx, slice, metav1.UpdateOptions{}); err != nil {
		return 0, err
	}
	n := 0
	for _, ep := range slice.Endpoints {
		if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
			n++
		}
	}
	return n, nil
}

// ScaleResult is the scale_10000 figure. For Traefik, which has no
// config file, no nginx and no process apart that makes its configuration,
// render_ms, config_bytes, nginx_t_ms and generator_rss_mib are null and
// the nginx_ figures are its one process's.
type ScaleResult struct {
	Services    int      `json:"services"`
	RenderMS    *float64 `json:"render_ms"`
	ConfigBytes *int     `json:"config_bytes"`
	// TableBytes is the lua shape's table, its index and parts (0 for the
	// others).
	TableBytes      int      `json:"table_bytes"`
	NginxTMS        *float64 `json:"nginx_t_ms"`
	GeneratorRSSMiB *float64 `json:"generator_rss_mib"`
	NginxRSSMiB     float64  `json:"nginx_rss_mib"`
	NginxPSSMiB     float64  `json:"nginx_pss_mib"`
	NginxProcesses  int      `json:"nginx_processes"`
	// TotalPSSMiB is the PSS of all the system's processes: the
	// generator's and nginx's (Traefik's one).
	TotalPSSMiB float64 `json:"total_pss_mib"`
}

// scale measures a running system at the cluster's current size. render
// times one rebuild and render of the system's generator.
func (b *bench) scale(ctx context.Context, s *system, services int, render func() (time.Duration, error)) (*ScaleResult, error) {
	res := &ScaleResult{Services: services}
	if render != nil {
		var ds []time.Duration
		for range 5 {
			d, err := render()
			if err != nil {
				return nil, err
			}
			ds = append(ds, d)
		}
		v := summarize(ds).P50
		res.RenderMS = &v
	}
	if fi, err := os.Stat(s.configPath()); err == nil && !s.traefik {
		res.ConfigBytes = ptr.To(int(fi.Size()))
	}
	if s.lua() {
		res.TableBytes = tableBytes(s.tablePath())
	}
	if !s.traefik {
		var ts []time.Duration
		for range 3 {
			start := time.Now()
			if out, err := exec.CommandContext(ctx, "nginx", append(s.nginxArgs(), "-t", "-q")...).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("nginx -t: %v: %s", err, out)
			}
			ts = append(ts, time.Since(start))
		}
		res.NginxTMS = ptr.To(summarize(ts).P50)
	}
	var genRSS, genPSS float64
	for _, pid := range s.generatorPIDs() {
		genRSS += rssMiB(pid)
		genPSS += pssMiB(pid)
	}
	if !s.traefik {
		res.GeneratorRSSMiB = ptr.To(round(genRSS))
	}
	master, err := s.nginxMaster()
	if err != nil {
		return nil, err
	}
	res.NginxProcesses, res.NginxRSSMiB, res.NginxPSSMiB = nginxUsage(master)
	res.TotalPSSMiB = round(genPSS + res.NginxPSSMiB)
	return res, nil
}

// nginxUsage counts nginx's master and its children and sums their RSS
// and PSS.
func nginxUsage(master int) (procs int, rss, pss float64) {
	pids := append([]int{master}, children(master)...)
	for _, p := range pids {
		rss += rssMiB(p)
		pss += pssMiB(p)
	}
	return len(pids), round(rss), round(pss)
}

// rssMiB is a process's resident set size.
func rssMiB(pid int) float64 { return procKiB(pid, "status", "VmRSS:") / 1024 }

// pssMiB is a process's proportional set size: the pages it shares with
// others split between them.
func pssMiB(pid int) float64 { return procKiB(pid, "smaps_rollup", "Pss:") / 1024 }

// procKiB reads the field (in kB) of /proc/PID/file.
func procKiB(pid int, file, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb
		}
	}
	return 0
}

// children are the PIDs whose parent is pid; processGroup those in the
// process group pgid.
func children(pid int) []int { return scanProc(func(ppid, _ int) bool { return ppid == pid }) }

func processGroup(pgid int) []int { return scanProc(func(_, pg int) bool { return pg == pgid }) }

func scanProc(keep func(ppid, pgid int) bool) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp ...: comm may hold spaces.
		rest := string(data[strings.LastIndexByte(string(data), ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		if keep(ppid, pgrp) {
			out = append(out, pid)
		}
	}
	return out
}

func ms(d time.Duration) float64 { return round(float64(d.Microseconds()) / 1000) }

func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// sleepCtx waits for d, or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// startNginx starts nginx with args in a process group of its own, its
// output in log; stop ends it gracefully (SIGQUIT to the group), and kills
// it after 20 s.
func startNginx(args ...string) (cmd *exec.Cmd, log *syncBuffer, stop func(), err error) {
	cmd = exec.Command("nginx", args...)
	log = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, err
	}
	stop = func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGQUIT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	return cmd, log, stop, nil
}

// tableBytes is the size of the table file at path and of the parts it
// names; 0 when it cannot be read.
func tableBytes(path string) int {
	index, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	hashes, _, err := luaplane.DecodeIndex(index)
	if err != nil {
		return 0
	}
	n := len(index)
	for _, h := range hashes {
		if fi, err := os.Stat(luaplane.PartPath(path, h)); err == nil {
			n += int(fi.Size())
		}
	}
	return n
}
