package luaplane

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const sampleReport = "dur\tns/a:http\t0.005\t5\n" +
	"dur\tns/a:http\t0.05\t1\n" +
	"dur\tns/a:http\t+Inf\t1\n" +
	"endpoint_file_errors\t2\n" +
	"req\tns/a:http\t2xx\t6\n" +
	"req\tns/a:http\t5xx\t1\n" +
	"sum\tns/a:http\t12.25\n" +
	"worker\t18187\tbb\n" +
	"worker\t18188\t\n"

func TestParseReport(t *testing.T) {
	t.Parallel()
	rep, err := ParseReport(strings.NewReader(sampleReport))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Workers[18187] != "bb" || rep.Workers[18188] != "" || len(rep.Workers) != 2 {
		t.Errorf("workers = %v", rep.Workers)
	}
	a := rep.Routes["ns/a:http"]
	if rep.FileErrors != 2 || a == nil || a.Requests["2xx"] != 6 || a.Requests["5xx"] != 1 || a.Seconds != 12.25 || a.count() != 7 {
		t.Fatalf("report = %+v, route %+v", rep, a)
	}
	if c := a.cumulative(); c[0.005] != 5 || c[0.01] != 5 || c[0.05] != 6 || c[10] != 6 {
		t.Errorf("cumulative = %v", c)
	}
	for _, bad := range []string{"worker\tx\tv\n", "req\tevil key\t2xx\t1\n", "dur\tns/a:http\tx\t1\n", "what\n"} {
		if _, err := ParseReport(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseReport(%q) accepted it", bad)
		}
	}
}

// TestBucketsMatchTheModule: the Go side knows the Lua module's buckets.
func TestBucketsMatchTheModule(t *testing.T) {
	t.Parallel()
	m := regexp.MustCompile(`local BUCKETS = \{ ([^}]*) \}`).FindStringSubmatch(Module)
	if m == nil {
		t.Fatal("no BUCKETS in kns.lua")
	}
	var want []string
	for _, b := range Buckets {
		want = append(want, strconv.FormatFloat(b, 'f', -1, 64))
	}
	if got := strings.Join(want, ", "); got != m[1] {
		t.Errorf("Go buckets %s, kns.lua's %s", got, m[1])
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestCollector(t *testing.T) {
	t.Parallel()
	c := NewCollector(func() string { return "127.0.0.1:18081" })
	c.Client = &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if r.URL.String() != "http://127.0.0.1:18081"+ReportPath {
			t.Errorf("asked %s", r.URL)
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(sampleReport))}, nil
	})}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP kube_nginx_sync_route_requests_total Requests nginx answered, by route (namespace/service:port) and status class, since nginx started (Lua data plane).
# TYPE kube_nginx_sync_route_requests_total counter
kube_nginx_sync_route_requests_total{class="2xx",route="ns/a:http"} 6
kube_nginx_sync_route_requests_total{class="5xx",route="ns/a:http"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "kube_nginx_sync_route_requests_total"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, "kube_nginx_sync_route_request_duration_seconds"); err != nil || n != 1 {
		t.Errorf("%d duration series, %v", n, err)
	}
	// No status server: no metrics, no error.
	none := NewCollector(func() string { return "" })
	if n := testutil.CollectAndCount(none); n != 0 {
		t.Errorf("%d metrics without a status server", n)
	}
}
