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

// endpointsTracker follows the Lua data plane's endpoints file: for each
// new version, it waits until every current worker reports it in use, and
// records how long that took from the file's write. nginx is not reloaded:
// its workers read the file themselves.
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
	var confirmed string
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
		addr := StatusAddr(t.dir)
		if addr == "" {
			continue // no status server: nothing to ask
		}
		if err := t.confirm(ctx, addr, version); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, luaplane.ErrNoReport) {
				continue // the config is not of the Lua shape
			}
			t.metrics.EndpointUpdates.WithLabelValues(ResultFailed).Inc()
			t.log.Warn("nginx's workers did not take the new endpoints", "version", version, "err", err)
			continue
		}
		confirmed = version
		took := t.clock.Since(written)
		t.metrics.EndpointUpdates.WithLabelValues(ResultOK).Inc()
		t.metrics.EndpointUpdateSeconds.Observe(took.Seconds())
		t.log.Debug("nginx uses the new endpoints, without a reload", "version", version, "since_written", took.Round(time.Millisecond))
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
	if errors.Is(err, errNewerEndpoints) {
		return nil // the newer one is confirmed next, and counts
	}
	if err != nil && last != "" {
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
