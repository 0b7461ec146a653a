package luaplane

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ReportPath is where the status server answers the Lua module's report.
const ReportPath = "/.kube-nginx-sync/endpoints"

// ErrNoReport says that the status server has no report: the config is
// not of the Lua shape.
var ErrNoReport = errors.New("the status server has no endpoints report")

// Report is what the Lua module's report says (kns.lua's report).
type Report struct {
	// Workers maps each live worker's PID to the endpoints version it has
	// loaded ("" before its first good load).
	Workers map[int]string
	// FileErrors counts the endpoints files that workers refused.
	FileErrors float64
	// Routes holds the traffic counters by route key.
	Routes map[string]*RouteTraffic
}

// RouteTraffic is one route's counters since nginx started.
type RouteTraffic struct {
	// Requests counts the requests by status class ("2xx", …).
	Requests map[string]float64
	// Buckets counts the requests by the upper bound of their time, in
	// seconds (math.Inf(1) for the rest); not cumulative.
	Buckets map[float64]uint64
	// Seconds is the sum of their times.
	Seconds float64
}

// Buckets are the upper bounds of the time buckets that kns.lua counts.
var Buckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// count is the number of requests timed.
func (t *RouteTraffic) count() uint64 {
	var n uint64
	for _, c := range t.Buckets {
		n += c
	}
	return n
}

// cumulative returns, for each of Buckets, the requests that took at most
// that long, as Prometheus histograms count them.
func (t *RouteTraffic) cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(Buckets))
	for _, b := range Buckets {
		for le, n := range t.Buckets {
			if le <= b {
				out[b] += n
			}
		}
	}
	return out
}

// maxReport bounds the report read: 10,000 routes with every class and
// bucket are about 3 MB.
const maxReport = 64 << 20

// FetchReport asks the status server at addr for the report.
func FetchReport(ctx context.Context, client *http.Client, addr string) (Report, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+ReportPath, nil)
	if err != nil {
		return Report{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return Report{}, fmt.Errorf("endpoints report: %w", err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return Report{}, ErrNoReport
	default:
		return Report{}, fmt.Errorf("endpoints report: %s", resp.Status)
	}
	return ParseReport(io.LimitReader(resp.Body, maxReport))
}

// ParseReport reads a report: tab-separated lines
// "worker PID VERSION", "endpoint_file_errors N", "req ROUTE CLASS N",
// "dur ROUTE LE N", "sum ROUTE SECONDS".
func ParseReport(r io.Reader) (Report, error) {
	rep := Report{Workers: map[int]string{}, Routes: map[string]*RouteTraffic{}}
	route := func(key string) *RouteTraffic {
		t := rep.Routes[key]
		if t == nil {
			t = &RouteTraffic{Requests: map[string]float64{}, Buckets: map[float64]uint64{}}
			rep.Routes[key] = t
		}
		return t
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		bad := fmt.Errorf("endpoints report: bad line %q", sc.Text())
		switch {
		case len(f) == 3 && f[0] == "worker":
			pid, err := strconv.Atoi(f[1])
			if err != nil {
				return Report{}, bad
			}
			rep.Workers[pid] = f[2]
		case len(f) == 2 && f[0] == "endpoint_file_errors":
			n, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return Report{}, bad
			}
			rep.FileErrors = n
		case len(f) == 4 && f[0] == "req" && ValidKey(f[1]):
			n, err := strconv.ParseFloat(f[3], 64)
			if err != nil {
				return Report{}, bad
			}
			route(f[1]).Requests[f[2]] = n
		case len(f) == 4 && f[0] == "dur" && ValidKey(f[1]):
			le, err := strconv.ParseFloat(f[2], 64)
			n, err2 := strconv.ParseUint(f[3], 10, 64)
			if err != nil || err2 != nil {
				return Report{}, bad
			}
			route(f[1]).Buckets[le] += n
		case len(f) == 3 && f[0] == "sum" && ValidKey(f[1]):
			s, err := strconv.ParseFloat(f[2], 64)
			if err != nil {
				return Report{}, bad
			}
			route(f[1]).Seconds = s
		case len(f) == 1 && f[0] == "":
		default:
			return Report{}, bad
		}
	}
	return rep, sc.Err()
}

// Collector exports the Lua module's counters as Prometheus metrics,
// asking nginx for them at each scrape.
type Collector struct {
	// Addr returns the status server's address, or "" while there is
	// none (the config is not the Lua shape).
	Addr   func() string
	Client *http.Client

	requests, duration, fileErrors *prometheus.Desc
}

// NewCollector creates a Collector for the status server that addr names.
func NewCollector(addr func() string) *Collector {
	const ns = "kube_nginx_sync"
	return &Collector{
		Addr:   addr,
		Client: &http.Client{Timeout: 5 * time.Second},
		requests: prometheus.NewDesc(ns+"_route_requests_total",
			"Requests nginx answered, by route (namespace/service:port) and status class, since nginx started (Lua data plane).",
			[]string{"route", "class"}, nil),
		duration: prometheus.NewDesc(ns+"_route_request_duration_seconds",
			"Time nginx took to answer requests, by route, since nginx started (Lua data plane).",
			[]string{"route"}, nil),
		fileErrors: prometheus.NewDesc(ns+"_endpoint_file_errors_total",
			"Endpoints files that nginx's workers refused (each worker counts); the last good endpoints stay in use.",
			nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.requests
	ch <- c.duration
	ch <- c.fileErrors
}

// Collect implements prometheus.Collector. A status server that does not
// answer gives no metrics (and an invalid metric saying why).
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	addr := c.Addr()
	if addr == "" {
		return
	}
	rep, err := FetchReport(context.Background(), c.Client, addr)
	if errors.Is(err, ErrNoReport) {
		return // not the Lua shape
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.requests, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.fileErrors, prometheus.CounterValue, rep.FileErrors)
	for key, t := range rep.Routes {
		for class, n := range t.Requests {
			ch <- prometheus.MustNewConstMetric(c.requests, prometheus.CounterValue, n, key, class)
		}
		ch <- prometheus.MustNewConstHistogram(c.duration, t.count(), t.Seconds, t.cumulative(), key)
	}
}
