package nginx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// Expect says how a reload is confirmed. A new generation of workers
// always confirms that the master took a config; a Version confirms that
// the new workers serve the one expected.
type Expect struct {
	// Version is the version of the config that the reload is for; empty
	// for configs without a kube-nginx-sync header or status server.
	Version string
	// StatusAddr is the status server that answers the version served at
	// nginxconf.VersionPath.
	StatusAddr string
	// Latest, when set, returns the version of the config in the folder
	// now: the file may be replaced again while nginx reloads, and nginx
	// then reads the newer one, which also confirms the reload.
	Latest func() (string, bool)
	// Timeout bounds the wait for the confirmation.
	Timeout time.Duration
}

// Reloaded is what a confirmed reload changed.
type Reloaded struct {
	// Replaced are the workers of the generation before the reload: they
	// finish their connections and exit.
	Replaced []int
	// Workers are the new generation's.
	Workers []int
	// Served is the version the new workers serve: Expect.Version or a
	// newer one; empty when no Version was expected.
	Served string
}

// ErrNotSignalled is wrapped by Reload's errors when nginx could not be
// signalled at all: a reload may be tried again.
var ErrNotSignalled = errors.New("nginx was not signalled")

// pollEvery is how often a reload's confirmation is looked for.
const pollEvery = 5 * time.Millisecond

// Reload makes nginx load its config (SIGHUP to the master, which parses
// it once: `nginx -s reload` would parse it twice) and waits until nginx
// confirms it as want says. A refused config leaves nginx serving the old
// one: the error then carries nginx's own [emerg] lines, and Reload
// returns once nginx has stopped logging about it.
func (s *Supervisor) Reload(ctx context.Context, want Expect) (Reloaded, error) {
	before, err := s.Workers()
	if err != nil {
		return Reloaded{}, fmt.Errorf("%w: %w", ErrNotSignalled, err)
	}
	status := newStatusClient()
	var servedBefore string
	if want.Version != "" {
		servedBefore, _ = servedVersion(status, want.StatusAddr)
	}
	start := time.Now()
	if err := s.signal(sighup); err != nil {
		return Reloaded{}, fmt.Errorf("%w: %w", ErrNotSignalled, err)
	}
	out := Reloaded{Replaced: before}
	var answered string // the status server's last answer, for the error
	err = wait.PollUntilContextTimeout(ctx, pollEvery, want.Timeout, true, func(context.Context) (bool, error) {
		if out.Workers == nil {
			out.Workers = s.newWorkers(before)
		}
		if out.Workers != nil && want.Version == "" {
			return true, nil
		}
		if out.Workers != nil {
			served, err := servedVersion(status, want.StatusAddr)
			if err != nil {
				answered = err.Error()
			} else {
				answered = served
				if servesWanted(served, servedBefore, want) {
					out.Served = served
					return true, nil
				}
			}
		}
		if msg := s.recentProblems(start); msg != "" {
			return false, errors.New(msg)
		}
		select {
		case <-s.done:
			return false, fmt.Errorf("nginx exited: %v", s.err)
		default:
			return false, nil
		}
	})
	switch {
	case err == nil:
		return out, nil
	case ctx.Err() != nil:
		return out, ctx.Err()
	case wait.Interrupted(err):
		err = fmt.Errorf("nginx did not confirm the reload within %s", time.Since(start).Round(time.Millisecond))
		if answered != "" {
			err = fmt.Errorf("%w (the status server answered %q)", err, answered)
		}
	}
	// A master that failed to load a config may go on logging for a while
	// (it tries a busy port five times, 500 ms apart): those lines must
	// not be taken for the next reload's.
	s.waitQuiet(time.Second, 10*time.Second)
	return out, err
}

// servesWanted says whether the version served confirms the reload: the
// one expected, the one in the folder now, or any change from what was
// served before (nginx read a file newer than the one expected).
func servesWanted(served, before string, want Expect) bool {
	if served == want.Version || (before != "" && served != before) {
		return true
	}
	if want.Latest != nil {
		if now, ok := want.Latest(); ok && served == now {
			return true
		}
	}
	return false
}

// newWorkers returns the master's workers that are not in before, or nil
// while there are none: a master that took a new config starts new
// workers; one that could not load it logs [emerg] and starts none.
func (s *Supervisor) newWorkers(before []int) []int {
	cur, err := s.Workers()
	if err != nil {
		return nil
	}
	fresh := slices.DeleteFunc(cur, func(p int) bool { return slices.Contains(before, p) })
	if len(fresh) == 0 {
		return nil
	}
	return fresh
}

// Workers returns the PIDs of the master's workers that are not shutting
// down: the current generation, while no reload is in progress.
func (s *Supervisor) Workers() ([]int, error) { return workers(s.PID()) }

// Resident returns which of pids still live, and their resident memory.
func (s *Supervisor) Resident(pids []int) (live []int, bytes int64) {
	for _, pid := range pids {
		if alive(pid) {
			live = append(live, pid)
			bytes += residentBytes(pid)
		}
	}
	return live, bytes
}

// newStatusClient asks the status server on a new connection each time, so
// that it reaches the new workers as soon as they accept.
func newStatusClient() *http.Client {
	return &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
}

// servedVersion asks the status server which config version nginx serves.
func servedVersion(client *http.Client, addr string) (string, error) {
	resp, err := client.Get("http://" + addr + nginxconf.VersionPath)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status server: %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}
