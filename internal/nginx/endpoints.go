package nginx

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/clock"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
)

// endpointsTracker follows the Lua data plane's table file: for each new
// version, it waits until every current worker reports it in use, and
// records how long that took from the file's write. nginx is not reloaded:
// its workers read the file themselves. A version that a newer one
// replaced before every worker used it is in use once the newer one is
// (the newer table holds its changes): it is timed then, so that the
// figure does not leave out the slowest changes of a stream.
type endpointsTracker struct {
	dir     string
	nginx   Nginx
	metrics *Metrics
	log     *slog.Logger
	clock   clock.PassiveClock
	// timeout bounds the wait for the workers to take one version.
	timeout time.Duration
	changed chan struct{}
	client  *http.Client
}

func newEndpointsTracker(opts ReloaderOptions, c clock.PassiveClock) *endpointsTracker {
	return &endpointsTracker{
		dir: opts.ConfigDir, nginx: opts.Nginx, metrics: opts.Metrics, log: opts.Log, clock: c,
		timeout: 10 * time.Second, changed: make(chan struct{}, 1), client: newStatusClient(),
	}
}

// notify says that the endpoints file changed; it never blocks.
func (t *endpointsTracker) notify() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// run confirms each new endpoints file until ctx ends.
func (t *endpointsTracker) run(ctx context.Context) error {
	var confirmed, seen string
	// pending are the write times of the versions seen and not yet in
	// use, oldest first.
	var pending []time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.changed:
		}
		version, written, err := endpointsVersion(filepath.Join(t.dir, luaplane.FileName))
		if err != nil || version == confirmed {
			continue // gone, or a rewrite of the same content
		}
		if version != seen {
			seen, pending = version, append(pending, written)
		}
		addr := StatusAddr(t.dir)
		if addr == "" {
			pending = nil
			continue // no status server: nothing to ask
		}
		err = t.confirm(ctx, addr, version)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, errNewerEndpoints):
			continue // timed with the newer one
		case errors.Is(err, luaplane.ErrNoReport):
			pending = nil
			continue // the config is not of the Lua shape
		case err != nil:
			t.metrics.EndpointUpdates.WithLabelValues(ResultFailed).Add(float64(len(pending)))
			t.log.Warn("nginx's workers did not take the new table", "version", version, "err", err)
			pending = nil
			continue
		}
		confirmed = version
		for _, w := range pending {
			t.metrics.EndpointUpdates.WithLabelValues(ResultOK).Inc()
			t.metrics.EndpointUpdateSeconds.Observe(t.clock.Since(w).Seconds())
		}
		t.log.Debug("nginx uses the new table, without a reload", "version", version,
			"since_written", t.clock.Since(written).Round(time.Millisecond), "versions", len(pending))
		pending = nil
	}
}

// errNewerEndpoints ends a confirmation that a newer file overtook.
var errNewerEndpoints = errors.New("a newer endpoints file came")

// confirm waits until every current worker reports version in use.
func (t *endpointsTracker) confirm(ctx context.Context, addr, version string) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, t.timeout, true, func(ctx context.Context) (bool, error) {
		if len(t.changed) > 0 {
			return false, errNewerEndpoints
		}
		rep, err := luaplane.FetchReport(ctx, t.client, addr)
		if errors.Is(err, luaplane.ErrNoReport) {
			return false, err
		}
		if err != nil {
			last = err.Error()
			return false, nil
		}
		workers, err := t.nginx.Workers()
		if err != nil || len(workers) == 0 {
			return false, nil
		}
		for _, pid := range workers {
			if rep.Workers[pid] != version {
				last = fmt.Sprintf("worker %d has %q", pid, rep.Workers[pid])
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil && last != "" && !errors.Is(err, errNewerEndpoints) {
		err = fmt.Errorf("%w (%s)", err, last)
	}
	return err
}

// endpointsVersion reads the version that the endpoints file's header
// names, and when the file was written.
func endpointsVersion(path string) (version string, written time.Time, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", time.Time{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return "", time.Time{}, err
	}
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return "", time.Time{}, fmt.Errorf("endpoints file header: %w", err)
	}
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return "", time.Time{}, errors.New("endpoints file: empty header")
	}
	return fields[len(fields)-1], info.ModTime(), nil
}

// StatusAddr is the status server of the kube-nginx-sync config in dir, or
// "" when it has none. In the Lua shape, it answers the Lua module's
// report (luaplane.ReportPath).
func StatusAddr(dir string) string {
	h, ok := currentHeader(dir)
	if !ok {
		return ""
	}
	return h.Status
}
