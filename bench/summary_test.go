package main

import (
	"bytes"
	"image/png"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSummaryLine(t *testing.T) {
	t.Parallel()
	v := func(x float64) *float64 { return &x }
	for _, tc := range []struct {
		name         string
		higherBetter bool
		scores       []score
		want         string
	}{
		{"lower is better", false, []score{{name: "a", value: v(300)}, {name: "b", value: v(100)}, {name: "c", value: v(1500)}},
			"- f: b 100 ms, ahead of a 300 ms (3.0×), c 1500 ms (15.0×)"},
		{"higher is better", true, []score{{name: "a", value: v(9000)}, {name: "b", value: v(10000)}},
			"- f: b 10000 ms, ahead of a 9000 ms (1.11×)"},
		{"a tie with the leader", false, []score{{name: "a", value: v(0)}, {name: "b", value: v(0)}, {name: "c", value: v(12)}},
			"- f: a and b 0 ms, ahead of c 12 ms"},
		{"all alike", false, []score{{name: "a", value: v(0)}, {name: "b", value: v(0)}}, "- f: a and b 0 ms, all alike"},
		{"a system without the figure, with a note", false, []score{{name: "a", value: v(5)}, {name: "b", note: "not converged"}},
			"- f: a 5 ms, ahead of b not converged"},
		{"one system only", false, []score{{name: "a", value: v(5)}, {name: "b"}}, ""},
		{"notes only", false, []score{{name: "a", note: "x"}, {name: "b", note: "y"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := summaryLine("f", "ms", tc.higherBetter, tc.scores); got != tc.want {
				t.Errorf("summaryLine() = %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestReport draws the charts of a small result and prints its summary.
func TestReport(t *testing.T) {
	t.Parallel()
	lat := func(p50 float64) *Latency { return &Latency{P50: p50, P95: p50, Max: p50, Trials: 3} }
	conv := 900.0
	res := &Results{
		Shape: "upstream", Shapes: map[string]string{ours: "upstream"}, Versions: map[string]string{traefikName: "v3.6.12"},
		Results: map[string]*SystemResults{
			ours: {SingleChangeMS: map[string]*Latency{"10": lat(140), "1000": lat(210)}, NginxFloorMS: map[string]*Latency{"10": lat(110), "1000": lat(150)},
				Burst1000: &BurstResult{ConvergeMS: &conv}},
			traefikName: {SingleChangeMS: map[string]*Latency{"10": lat(80), "1000": lat(800)}, NginxFloorMS: map[string]*Latency{},
				Burst1000: &BurstResult{TimedOut: true, Answering: 10}},
		},
		DataPlane: map[string]*DataPlaneResult{
			dpUpstream:  {RequestsPerSecond: 20000, P99MS: 6},
			traefikName: {RequestsPerSecond: 15000, P99MS: 9},
		},
	}
	sum := summary(res, []int{10, 1000})
	for _, want := range []string{
		"- single change at 10 routes, p50: traefik 80 ms, ahead of kube-nginx-sync 140 ms (1.75×)",
		"- single change at 1000 routes, p50: kube-nginx-sync 210 ms, ahead of traefik 800 ms (3.8×)",
		"- burst of 1,000: last create → all answering: kube-nginx-sync 900 ms, ahead of traefik not converged (10 of 1000)",
		"- data plane: requests/s: kube-nginx-sync (upstream) 20000/s, ahead of Traefik 15000/s (1.33×)",
	} {
		if !strings.Contains(sum, want+"\n") {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	dir := t.TempDir()
	paths, err := drawCharts(res, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 2 {
		t.Fatalf("drawCharts wrote %v, want 2 charts", paths)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := png.Decode(bytes.NewReader(data)); err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
}

func TestTraefikDataPlaneConfig(t *testing.T) {
	t.Parallel()
	eps := []netip.AddrPort{netip.MustParseAddrPort("198.18.240.1:9090"), netip.MustParseAddrPort("198.18.240.2:9090")}
	want := "http:\n  routers:\n    dp:\n      rule: PathPrefix(`/dp/web/`)\n      entryPoints: [web]\n      service: dp\n" +
		"  services:\n    dp:\n      loadBalancer:\n        servers:\n" +
		"          - url: http://198.18.240.1:9090\n          - url: http://198.18.240.2:9090\n"
	if got := string(traefikDataPlaneConfig(eps)); got != want {
		t.Errorf("traefikDataPlaneConfig() =\n%s\nwant\n%s", got, want)
	}
}
