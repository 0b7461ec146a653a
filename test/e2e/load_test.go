//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// target is a request of a load and the body it must answer.
type target struct {
	port       int
	host, path string
	body       string
	// post sends POST instead of GET: Go's Transport does not send a POST
	// again on another connection when the first one breaks, so its
	// failures are those that a client without retries sees.
	post bool
}

// load keeps clients busy with GET requests until stop: each client has a
// Transport of its own (Go's defaults: keep-alive, and a retry of an
// idempotent request on a reused connection that the server closed), so
// each holds one keep-alive connection to nginx. Client i starts at
// targets[i%len(targets)] and goes round the targets.
type load struct {
	clients  int
	requests atomic.Int64
	failures atomic.Int64
	// finished counts each client's finished requests, answered or failed.
	finished   []atomic.Int64
	stopCh     chan struct{}
	wg         sync.WaitGroup
	transports []*http.Transport
	stopOnce   sync.Once
	started    time.Time
	took       time.Duration

	mu sync.Mutex
	// failed holds the first failures, with when they happened.
	failed []failure
}

type failure struct {
	at  time.Time
	err string
}

const keptFailures = 20

// startLoad starts clients; the load stops at the end of the test if
// stop was not called before.
func startLoad(t *testing.T, clients int, targets ...target) *load {
	t.Helper()
	l := &load{clients: clients, finished: make([]atomic.Int64, clients), stopCh: make(chan struct{}), started: time.Now()}
	for i := range clients {
		tr := &http.Transport{MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Minute}
		l.transports = append(l.transports, tr)
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		l.wg.Go(func() {
			for n := i; ; n++ {
				select {
				case <-l.stopCh:
					return
				default:
				}
				if err := l.once(c, targets[n%len(targets)]); err != nil {
					l.fail(err)
				}
				l.finished[i].Add(1)
			}
		})
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *load) once(c *http.Client, tg target) error {
	method := http.MethodGet
	if tg.post {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, "http://127.0.0.1:"+strconv.Itoa(tg.port)+tg.path, nil)
	if err != nil {
		return err
	}
	req.Host = tg.host
	l.requests.Add(1)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("%s %s%s: reading the body: %w", method, tg.host, tg.path, err)
	}
	if resp.StatusCode != 200 || string(body) != tg.body {
		return fmt.Errorf("%s %s%s: %d %q, want 200 %q", method, tg.host, tg.path, resp.StatusCode, body, tg.body)
	}
	return nil
}

func (l *load) fail(err error) {
	l.failures.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) < keptFailures {
		l.failed = append(l.failed, failure{at: time.Now(), err: err.Error()})
	}
}

// progress returns how many requests each client has finished.
func (l *load) progress() []int64 {
	p := make([]int64, l.clients)
	for i := range l.finished {
		p[i] = l.finished[i].Load()
	}
	return p
}

// eachFinishedSince says which client has not finished n requests since
// progress returned mark (nil: since the start). Once every one has
// finished one, the request each had in flight at mark is over, answered
// or failed; once every one has finished two, each has also finished one
// that it began after mark.
func (l *load) eachFinishedSince(mark []int64, n int64) error {
	for i := range l.finished {
		var since int64
		if mark != nil {
			since = mark[i]
		}
		if done := l.finished[i].Load() - since; done < n {
			return fmt.Errorf("client %d of %d has finished %d requests since, want %d", i, l.clients, done, n)
		}
	}
	return nil
}

// stop ends the load, waits for its clients and closes their connections.
func (l *load) stop() {
	l.stopOnce.Do(func() {
		close(l.stopCh)
		l.wg.Wait()
		l.took = time.Since(l.started)
		for _, tr := range l.transports {
			tr.CloseIdleConnections()
		}
	})
}

// String sums the load up (after stop).
func (l *load) String() string {
	return fmt.Sprintf("%d requests by %d keep-alive clients in %s (%.0f/s), %d failed",
		l.requests.Load(), l.clients, l.took.Round(time.Millisecond), float64(l.requests.Load())/l.took.Seconds(), l.failures.Load())
}

// failures describes the first failures, with their time relative to ref.
func (l *load) failuresSince(ref time.Time) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, f := range l.failed {
		fmt.Fprintf(&b, "\n  %+.3fs: %s", f.at.Sub(ref).Seconds(), f.err)
	}
	return b.String()
}
