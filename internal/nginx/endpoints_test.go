package nginx

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/util/wait"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// TestEndpointsTrackerTimesOvertakenVersions: a table replaced before the
// workers used it is timed when they use the newer one, from its own
// write.
func TestEndpointsTrackerTimesOvertakenVersions(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	inUse := "old"
	polled := make(chan struct{}, 1)
	status := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != luaplane.ReportPath {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		v := inUse
		mu.Unlock()
		fmt.Fprintf(w, "worker\t100\t%s\nworker\t101\t%s\n", v, v)
		select {
		case polled <- struct{}{}:
		default:
		}
	}))
	defer status.Close()
	dir := t.TempDir()
	header := nginxconf.Header{Version: strings.Repeat("c", 64), Status: strings.TrimPrefix(status.URL, "http://")}
	if err := os.WriteFile(filepath.Join(dir, "default.conf"), []byte(header.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if StatusAddr(dir) == "" {
		t.Fatalf("no status server in the config's header %q", header)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := clocktesting.NewFakePassiveClock(t0.Add(3 * time.Second))
	metrics := NewMetrics(prometheus.NewRegistry())
	tr := newEndpointsTracker(ReloaderOptions{ConfigDir: dir, Nginx: newFakeNginx(nil), Metrics: metrics,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- tr.run(ctx) }()
	defer func() { cancel(); <-done }()

	table := filepath.Join(dir, luaplane.FileName)
	write := func(version string, at time.Time) {
		t.Helper()
		if err := os.WriteFile(table, []byte("kube-nginx-sync table 2 "+version+"\nend 0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(table, at, at); err != nil {
			t.Fatal(err)
		}
		tr.notify()
	}
	// A minute without a poll is a hung tracker, not a slow one.
	waitPoll := func() {
		t.Helper()
		select {
		case <-polled:
		case <-time.After(time.Minute):
			t.Fatal("the tracker does not ask the status server")
		}
	}
	write("aaaa", t0)
	waitPoll() // the tracker waits for the workers to take aaaa
	write("bbbb", t0.Add(time.Second))
	waitPoll()
	mu.Lock()
	inUse = "bbbb"
	mu.Unlock()
	err := wait.PollUntilContextTimeout(ctx, 5*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		return testutil.ToFloat64(metrics.EndpointUpdates.WithLabelValues(ResultOK)) >= 2, nil
	})
	if err != nil {
		t.Fatalf("the workers' use of the table was not confirmed: %v", err)
	}
	// Both versions are in use at t0+3s: written 3 s and 2 s before.
	if n := testutil.ToFloat64(metrics.EndpointUpdates.WithLabelValues(ResultOK)); n != 2 {
		t.Errorf("%v updates confirmed, want 2", n)
	}
	m := &dto.Metric{}
	if err := metrics.EndpointUpdateSeconds.Write(m); err != nil {
		t.Fatal(err)
	}
	if h := m.GetHistogram(); h.GetSampleCount() != 2 || h.GetSampleSum() != 5 {
		t.Errorf("histogram: %d samples, sum %v; want 2 and 5 s", h.GetSampleCount(), h.GetSampleSum())
	}
}
