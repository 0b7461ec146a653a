package main

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// ChangesInUse is the bench's own figure of the churn in the lua shape:
// for each endpoint flip, from the return of its API call until every
// nginx worker uses a table file that holds it. It includes what the
// endpoint_update_seconds histogram leaves out: the generator's part (the
// informer's event, the coalescing of changes, the rebuild and the write),
// and the changes whose file a newer one replaced before it was in use.
type ChangesInUse struct {
	// InUse: flips that every worker used before the same Service's next
	// flip, timed (restoring ones aside).
	InUse int `json:"in_use"`
	// Superseded: flips that the same Service's next flip undid before
	// every worker used them.
	Superseded int `json:"superseded"`
	// Restoring: flips that undid a superseded one, so brought back what
	// the workers may still have used; in use, but not timed.
	Restoring int `json:"restoring"`
	// Never: flips not in use 30 s after the churn had settled.
	Never int `json:"never"`
	// The distribution of the flips in use, in milliseconds (sampled every
	// 10 ms: each figure is late by up to about that).
	P50MS *float64 `json:"p50_ms"`
	P99MS *float64 `json:"p99_ms"`
	MaxMS *float64 `json:"max_ms"`
}

// inUseTracker follows a lua-shape system during the churn: the table
// files its generator writes, the table version each nginx worker reports
// (the status server's luaplane.ReportPath), and the flips made, and
// decides when each flip is in use by every worker. A flip makes one of
// two states (the last endpoint ready or not), so a flip that undid one
// not yet in use may find its state in use already: it is counted apart.
type inUseTracker struct {
	table, status string
	master        int
	client        *http.Client

	mu sync.Mutex
	// writes are the table files seen, in order; latest maps a version
	// to the last write of it.
	writes []tableWrite
	latest map[string]int
	// pending are the flips not yet in use, in order.
	pending []flipRecord
	took    []time.Duration
	res     ChangesInUse
}

// tableWrite is one table file seen: the number of ready endpoints of
// each Service port.
type tableWrite struct {
	ready map[string]int
}

// flipRecord is one flip: the Service port's key, when its API call
// returned, and the number of ready endpoints it leaves; restoring says
// that it undid a flip not yet in use.
type flipRecord struct {
	key       string
	at        time.Time
	ready     int
	restoring bool
}

func newInUseTracker(s *system, master int) *inUseTracker {
	return &inUseTracker{table: s.tablePath(), status: "127.0.0.1:" + strconv.Itoa(s.statusPort), master: master,
		client: &http.Client{Timeout: 2 * time.Second}, latest: map[string]int{}}
}

// flipped records flip of Service i, which left ready endpoints ready;
// a flip of the same Service still pending was undone.
func (t *inUseTracker) flipped(i, ready int, at time.Time) {
	key := luaplane.Key(model.ServicePort{Namespace: namespace, Name: serviceName(i), Port: "http"})
	t.mu.Lock()
	defer t.mu.Unlock()
	restoring := false
	t.pending = slices.DeleteFunc(t.pending, func(f flipRecord) bool {
		if f.key == key {
			t.res.Superseded++
			restoring = true
			return true
		}
		return false
	})
	t.pending = append(t.pending, flipRecord{key: key, at: at, ready: ready, restoring: restoring})
}

// run samples every 10 ms until ctx ends: the table file when it
// changed, then the workers' versions.
func (t *inUseTracker) run(ctx context.Context) {
	var last os.FileInfo
	var workers []int
	var workersAt time.Time
	for ctx.Err() == nil {
		if fi, err := os.Stat(t.table); err == nil && (last == nil || !fi.ModTime().Equal(last.ModTime()) || fi.Size() != last.Size()) {
			if tbl, version, err := luaplane.Read(t.table); err == nil {
				last = fi
				t.wrote(version, tbl)
			}
		}
		// The lua shape does not reload: the workers change only when
		// one dies. Scanning /proc every 10 ms would cost more than the
		// rest.
		if time.Since(workersAt) > time.Second {
			workers, workersAt = children(t.master), time.Now()
		}
		rep, err := luaplane.FetchReport(ctx, t.client, t.status)
		if err == nil && len(workers) > 0 {
			versions := make([]string, 0, len(workers))
			for _, pid := range workers {
				versions = append(versions, rep.Workers[pid])
			}
			t.sample(versions, time.Now())
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// wrote records a table file seen.
func (t *inUseTracker) wrote(version string, tbl luaplane.Table) {
	w := tableWrite{ready: make(map[string]int, len(tbl.Endpoints))}
	for _, e := range tbl.Endpoints {
		w.ready[e.Key] = len(e.Addrs)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.writes = append(t.writes, w)
	t.latest[version] = len(t.writes) - 1
}

// sample decides which pending flips the workers, which use versions,
// all use at now: a flip is in use by a worker whose table file has the
// Service's ready endpoints as the flip left them.
func (t *inUseTracker) sample(versions []string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pending = slices.DeleteFunc(t.pending, func(f flipRecord) bool {
		for _, v := range versions {
			i, ok := t.latest[v]
			if !ok || t.writes[i].ready[f.key] != f.ready {
				return false
			}
		}
		if f.restoring {
			t.res.Restoring++
		} else {
			t.took = append(t.took, now.Sub(f.at))
		}
		return true
	})
}

// pendingCount is the number of flips not yet in use.
func (t *inUseTracker) pendingCount() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

// result is the figure so far; flips still pending count as never in use.
func (t *inUseTracker) result() *ChangesInUse {
	t.mu.Lock()
	defer t.mu.Unlock()
	res := t.res
	res.InUse, res.Never = len(t.took), len(t.pending)
	if len(t.took) > 0 {
		ms := make([]float64, len(t.took))
		for i, d := range t.took {
			ms[i] = float64(d.Microseconds()) / 1000
		}
		slices.Sort(ms)
		q := func(p float64) *float64 {
			v := round(ms[min(len(ms)-1, int(p*float64(len(ms))))])
			return &v
		}
		res.P50MS, res.P99MS, res.MaxMS = q(0.5), q(0.99), q(1)
	}
	return &res
}
