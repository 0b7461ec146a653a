package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/ptr"
)

// The lua shape's endpoint changes, as kube-nginx-sync's /metrics counts
// them.
const (
	endpointUpdatesMetric = "kube_nginx_sync_endpoint_updates_total"
	endpointSecondsMetric = "kube_nginx_sync_endpoint_update_seconds"
)

// scrape reads the samples of kube-nginx-sync's /metrics on
// 127.0.0.1:port, each by its name and labels as written
// (`name{label="value"}`).
func scrape(ctx context.Context, port int) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/metrics", port), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads Prometheus' text format: comments are skipped, and a
// sample's optional timestamp is ignored. The Go client writes no spaces
// inside a sample's labels.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, rest := line, ""
		if i := strings.LastIndexByte(line, '}'); i >= 0 {
			name, rest = line[:i+1], line[i+1:]
		} else if i := strings.IndexByte(line, ' '); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return nil, fmt.Errorf("metrics: no value in %q", line)
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics: %q: %w", line, err)
		}
		out[name] = v
	}
	return out, sc.Err()
}

// Bucket is one bucket of a histogram: how many observations were at most
// LE (seconds).
type Bucket struct {
	LE    float64 `json:"-"`
	Count float64 `json:"count"`
	// Bound is LE as Prometheus writes it ("0.005", "+Inf"), for JSON,
	// which has no infinity.
	Bound string `json:"le"`
}

// histogram reads the cumulative buckets of the histogram name from
// samples, in order of their bounds.
func histogram(samples map[string]float64, name string) []Bucket {
	prefix := name + `_bucket{le="`
	var out []Bucket
	for k, v := range samples {
		bound, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		bound = strings.TrimSuffix(bound, `"}`)
		le, err := strconv.ParseFloat(bound, 64)
		if err != nil {
			continue
		}
		out = append(out, Bucket{LE: le, Count: v, Bound: bound})
	}
	slices.SortFunc(out, func(a, b Bucket) int { return cmpFloat(a.LE, b.LE) })
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// subtractBuckets is after's counts less before's, bucket by bucket (a
// bucket missing before counts from 0).
func subtractBuckets(after, before []Bucket) []Bucket {
	out := slices.Clone(after)
	for i := range out {
		for _, b := range before {
			if b.Bound == out[i].Bound {
				out[i].Count -= b.Count
			}
		}
	}
	return out
}

// histogramQuantile estimates the q-quantile (0 ≤ q ≤ 1) of cumulative
// buckets sorted by bound, the last +Inf, as Prometheus'
// histogram_quantile does: the bucket that holds the rank q×count, and a
// linear interpolation between its lower and upper bound (the first
// bucket's lower bound is 0); a rank in the +Inf bucket gives the highest
// finite bound. ok is false when there is no observation.
func histogramQuantile(q float64, buckets []Bucket) (v float64, ok bool) {
	n := len(buckets)
	if n < 2 || !math.IsInf(buckets[n-1].LE, 1) || buckets[n-1].Count <= 0 {
		return 0, false
	}
	rank := q * buckets[n-1].Count
	i, _ := slices.BinarySearchFunc(buckets[:n-1], rank, func(b Bucket, r float64) int {
		if b.Count >= r {
			return 1
		}
		return -1
	})
	if i == n-1 {
		return buckets[n-2].LE, true
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = buckets[i-1].LE, buckets[i-1].Count
	}
	upper, count := buckets[i].LE, buckets[i].Count
	if count == below {
		return upper, true
	}
	return lower + (upper-lower)*(rank-below)/(count-below), true
}

// endpointUpdates are the lua shape's endpoint changes between two
// scrapes.
func endpointUpdates(before, after map[string]float64) *EndpointUpdates {
	diff := func(name string) int { return int(after[name] - before[name]) }
	buckets := subtractBuckets(histogram(after, endpointSecondsMetric), histogram(before, endpointSecondsMetric))
	res := &EndpointUpdates{
		OK:      diff(endpointUpdatesMetric + `{result="ok"}`),
		Failed:  diff(endpointUpdatesMetric + `{result="failed"}`),
		Buckets: buckets,
	}
	if v, ok := histogramQuantile(0.5, buckets); ok {
		res.P50MS = ptr.To(round(v * 1000))
	}
	if v, ok := histogramQuantile(0.99, buckets); ok {
		res.P99MS = ptr.To(round(v * 1000))
	}
	return res
}
