package main

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
)

func TestHistogramQuantile(t *testing.T) {
	t.Parallel()
	inf := math.Inf(1)
	b := func(le, count float64) Bucket { return Bucket{LE: le, Count: count} }
	for _, tc := range []struct {
		name    string
		q       float64
		buckets []Bucket
		want    float64
		ok      bool
	}{
		{"median, interpolated", 0.5, []Bucket{b(0.005, 0), b(0.01, 0), b(0.02, 2), b(0.04, 6), b(0.08, 10), b(inf, 10)}, 0.035, true},
		{"p99, interpolated", 0.99, []Bucket{b(0.005, 0), b(0.01, 0), b(0.02, 2), b(0.04, 6), b(0.08, 10), b(inf, 10)}, 0.079, true},
		{"in the first bucket, from 0", 0.5, []Bucket{b(0.005, 4), b(inf, 4)}, 0.0025, true},
		{"in the +Inf bucket: the highest bound", 0.9, []Bucket{b(0.1, 5), b(inf, 10)}, 0.1, true},
		{"a bucket that ends exactly at the rank", 0.5, []Bucket{b(0.01, 5), b(0.02, 10), b(inf, 10)}, 0.01, true},
		{"no observation", 0.5, []Bucket{b(0.1, 0), b(inf, 0)}, 0, false},
		{"no +Inf bucket", 0.5, []Bucket{b(0.1, 1), b(0.2, 2)}, 0, false},
		{"nothing", 0.5, nil, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, ok := histogramQuantile(tc.q, tc.buckets)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("histogramQuantile(%g) = %g, %v; want %g, %v", tc.q, got, ok, tc.want, tc.ok)
			}
		})
	}
}

const metricsBefore = `# HELP kube_nginx_sync_endpoint_update_seconds From the write of a new endpoints file until every nginx worker uses it.
# TYPE kube_nginx_sync_endpoint_update_seconds histogram
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.005"} 0
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.01"} 0
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.02"} 1
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.04"} 1
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.08"} 2
kube_nginx_sync_endpoint_update_seconds_bucket{le="+Inf"} 2
kube_nginx_sync_endpoint_update_seconds_sum 0.07
kube_nginx_sync_endpoint_update_seconds_count 2
kube_nginx_sync_endpoint_updates_total{result="failed"} 0
kube_nginx_sync_endpoint_updates_total{result="ok"} 2
go_goroutines 12
`

const metricsAfter = `kube_nginx_sync_endpoint_update_seconds_bucket{le="0.005"} 0
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.01"} 0
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.02"} 3
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.04"} 7
kube_nginx_sync_endpoint_update_seconds_bucket{le="0.08"} 12
kube_nginx_sync_endpoint_update_seconds_bucket{le="+Inf"} 12
kube_nginx_sync_endpoint_updates_total{result="failed"} 1
kube_nginx_sync_endpoint_updates_total{result="ok"} 12
`

// TestEndpointUpdates: the churn's figures are the differences of the
// counters and of the histogram's buckets between two scrapes.
func TestEndpointUpdates(t *testing.T) {
	t.Parallel()
	before, err := parseMetrics(strings.NewReader(metricsBefore))
	if err != nil {
		t.Fatal(err)
	}
	if before["go_goroutines"] != 12 || before[`kube_nginx_sync_endpoint_updates_total{result="ok"}`] != 2 {
		t.Fatalf("parsed %v", before)
	}
	after, err := parseMetrics(strings.NewReader(metricsAfter))
	if err != nil {
		t.Fatal(err)
	}
	u := endpointUpdates(before, after)
	if u.OK != 10 || u.Failed != 1 {
		t.Errorf("ok %d, failed %d; want 10, 1", u.OK, u.Failed)
	}
	// The difference is the first test's histogram: 0, 0, 2, 6, 10, 10.
	var counts []float64
	for _, b := range u.Buckets {
		counts = append(counts, b.Count)
	}
	if want := []float64{0, 0, 2, 6, 10, 10}; !slices.Equal(counts, want) || u.Buckets[5].Bound != "+Inf" {
		t.Errorf("buckets %v, want counts %v, the last +Inf", u.Buckets, want)
	}
	if u.P50MS == nil || *u.P50MS != 35 || u.P99MS == nil || *u.P99MS != 79 {
		t.Errorf("p50 %v, p99 %v; want 35 and 79 ms", u.P50MS, u.P99MS)
	}
	if none := endpointUpdates(after, after); none.P50MS != nil || none.P99MS != nil || none.OK != 0 {
		t.Errorf("no change: %+v", none)
	}
}

// TestTable: a column for each system, in the order of -shape with the
// baseline last, and a ratio column for each of our shapes; every row has
// as many cells as the header.
func TestTable(t *testing.T) {
	t.Parallel()
	lat := func(p50 float64) *Latency { return &Latency{P50: p50, P95: p50, Max: p50, Trials: 3} }
	p := func(v float64) *float64 { return &v }
	res := &Results{
		Shape:  "upstream,lua",
		Shapes: map[string]string{ours: "upstream", ours + "-lua": "lua"},
		Results: map[string]*SystemResults{
			ours: {SingleChangeMS: map[string]*Latency{"10": lat(150)}, NginxFloorMS: map[string]*Latency{"10": lat(110)},
				Churn: map[string]*ChurnResult{"10": {Seconds: 20, Changes: 200, Reloads: 12, Requests: 1000}}},
			ours + "-lua": {SingleChangeMS: map[string]*Latency{"10": lat(100)}, NginxFloorMS: map[string]*Latency{"10": lat(60)},
				Churn: map[string]*ChurnResult{"10": {Seconds: 20, Changes: 200, Requests: 1000,
					EndpointUpdates: &EndpointUpdates{OK: 190, P50MS: p(70), P99MS: p(150)}}}},
			baseline: {SingleChangeMS: map[string]*Latency{"10": lat(300)}, NginxFloorMS: map[string]*Latency{"10": lat(110)},
				Churn: map[string]*ChurnResult{}},
		},
	}
	lines := strings.Split(strings.TrimSpace(table(res, []int{10})), "\n")
	header := lines[0]
	wantOrder := []string{"kube-nginx-sync (`--shape upstream`)", "kube-nginx-sync-lua (`--shape lua`)", "baseline (seed design)",
		"baseline / kube-nginx-sync |", "baseline / kube-nginx-sync-lua |"}
	at := 0
	for _, w := range wantOrder {
		i := strings.Index(header[at:], w)
		if i < 0 {
			t.Fatalf("header %q: no %q after position %d", header, w, at)
		}
		at += i
	}
	cells := strings.Count(header, "|")
	for _, l := range lines[1:] {
		if strings.Count(l, "|") != cells {
			t.Errorf("row %q has %d cells, the header %d", l, strings.Count(l, "|")-1, cells-1)
		}
	}
	for _, want := range []string{
		"| single change at 10 routes, p50 / p95 / max (trials) | 150 / 150 / 150 ms (3) | 100 / 100 / 100 ms (3) | 300 / 300 / 300 ms (3) | 2.0× | 3.0× |",
		"| churn at 10 routes: reloads / endpoint changes | 12 / 200 | 0 / 200 | — | — | — |",
		"70 ms / 150 ms (190, 0)",
	} {
		if !strings.Contains(strings.Join(lines, "\n"), want) {
			t.Errorf("no %q in\n%s", want, strings.Join(lines, "\n"))
		}
	}
}

// TestInUseTracker: a flip is in use once every worker reports a table
// file that holds it; a flip undone by the Service's next flip before that
// is superseded, and the flip that undid it is not timed.
func TestInUseTracker(t *testing.T) {
	t.Parallel()
	tr := &inUseTracker{latest: map[string]int{}}
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	table := func(ready5, ready6 int) luaplane.Table {
		return luaplane.Table{Endpoints: []luaplane.Endpoints{
			{Key: "bench/svc-00005:http", Addrs: make([]netip.AddrPort, ready5)},
			{Key: "bench/svc-00006:http", Addrs: make([]netip.AddrPort, ready6)}}}
	}
	tr.wrote("a", table(3, 3))
	tr.flipped(5, 2, at(10))
	// The old file has 3 ready: not in use.
	tr.sample([]string{"a", "a"}, at(20))
	tr.wrote("b", table(2, 3))
	// One worker has the new file, the other not yet.
	tr.sample([]string{"b", "a"}, at(50))
	tr.sample([]string{"b", "b"}, at(130))
	// Service 6: flipped to 2 ready, which no file holds yet, then back
	// to 3, which the workers use still.
	tr.flipped(6, 2, at(200))
	tr.flipped(6, 3, at(300))
	tr.sample([]string{"b", "b"}, at(310))
	// Service 6 again, in use 100 ms later.
	tr.flipped(6, 2, at(400))
	tr.wrote("c", table(2, 2))
	tr.sample([]string{"c", "c"}, at(500))
	tr.flipped(5, 3, at(600))
	res := tr.result()
	if res.InUse != 2 || res.Superseded != 1 || res.Restoring != 1 || res.Never != 1 {
		t.Errorf("in use %d, superseded %d, restoring %d, never %d; want 2, 1, 1, 1", res.InUse, res.Superseded, res.Restoring, res.Never)
	}
	if !slices.Equal(tr.took, []time.Duration{120 * time.Millisecond, 100 * time.Millisecond}) {
		t.Errorf("took %v, want [120ms 100ms]", tr.took)
	}
	if res.MaxMS == nil || *res.MaxMS != 120 {
		t.Errorf("max %v, want 120 ms", res.MaxMS)
	}
}
