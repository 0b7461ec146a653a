package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
	"k8s.io/client-go/kubernetes"
)

// system is one way of keeping nginx in step with the cluster: the thing
// being measured.
type system struct {
	name string
	// shape is kube-nginx-sync's --shape; "" for the others.
	shape string
	// traefik: the system is Traefik, one process that watches the API
	// server and proxies; there is no nginx, no config file and no
	// reload.
	traefik bool
	// dir holds the system's config folder, nginx prefix and logs.
	dir string
	// port is where its nginx listens, on 127.0.0.1.
	port int
	// statusPort is kube-nginx-sync's status server port (0 for the
	// baseline).
	statusPort int
	// metricsPort is where kube-nginx-sync or Traefik serves /metrics (0
	// for the baseline).
	metricsPort int
	// startLimit bounds the wait for the first routes at start (2
	// minutes when 0).
	startLimit time.Duration
	// settle is how long the system's data plane must be quiet after a
	// single change before the next (500 ms when 0): longer than any
	// pause that the system imposes between two changes, so that a trial
	// measures a change on its own.
	settle time.Duration
	// initCommand, when set, runs to its end before the others start:
	// the seed's init container.
	initCommand func(s *system) *exec.Cmd
	// command returns the processes to start; each runs in a process
	// group of its own, which stop ends.
	command func(s *system) []*exec.Cmd
	// later, when set, returns processes to start once nginx routes the
	// ready Services.
	later func(s *system) []*exec.Cmd

	procs []*exec.Cmd
	log   *syncBuffer
	// logDir, when set, receives each run's log at stop.
	logDir string
	runs   int
}

func (s *system) confDir() string    { return filepath.Join(s.dir, "conf.d") }
func (s *system) configPath() string { return filepath.Join(s.confDir(), "default.conf") }
func (s *system) tablePath() string  { return filepath.Join(s.confDir(), luaplane.FileName) }
func (s *system) prefix() string     { return filepath.Join(s.dir, "nginx") }
func (s *system) mainConfig() string { return filepath.Join(s.prefix(), "nginx.conf") }

// ours says whether the system is kube-nginx-sync (of some shape).
func (s *system) ours() bool { return s.shape != "" }

// lua says whether the system runs the Lua data plane: routes and
// endpoints in the table file, which nginx's workers read themselves.
func (s *system) lua() bool { return s.shape == string(nginxconf.ShapeLua) }

// outputs are the files the system writes for nginx: the config, and in
// the lua shape the table file, where a new route or endpoint goes; none
// for Traefik.
func (s *system) outputs() []string {
	if s.traefik {
		return nil
	}
	if s.lua() {
		return []string{s.configPath(), s.tablePath()}
	}
	return []string{s.configPath()}
}

// nginxArgs are the arguments that make nginx use the system's prefix and
// main config.
func (s *system) nginxArgs() []string { return []string{"-p", s.prefix() + "/", "-c", s.mainConfig()} }

// prepare creates the folders and nginx's main config: two workers (the
// machine's cores), its error log on stderr at notice level, so that every
// reload shows as a "reconfiguring" line in the system's log; the Lua
// module for the lua shape.
func (s *system) prepare() error {
	if s.traefik {
		return os.MkdirAll(s.dir, 0o755)
	}
	for _, d := range []string{s.confDir(), s.prefix()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	main := testbed.MainConfig{Prefix: s.prefix(), ConfDir: s.confDir(), Workers: 2, WorkerConnections: 4096}
	if s.lua() {
		if main.Modules = nginx.LuaModules(); main.Modules == nil {
			return fmt.Errorf("%s: the lua shape needs nginx's Lua module (libnginx-mod-http-lua)", s.name)
		}
		// nginx's workers (user nobody) read the table file themselves.
		for d := s.confDir(); d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				return err
			}
		}
	}
	_, err := main.Write()
	return err
}

// start starts the system and waits until nginx answers the routes of
// the Services in ready and the system watches the API server.
func (s *system) start(ctx context.Context, c kubernetes.Interface, ready []int) error {
	// The watches of the system that ran before must be gone, so that
	// the count below is this system's.
	if err := waitWatches(ctx, c, 0, true); err != nil {
		return err
	}
	s.log = &syncBuffer{}
	for _, f := range s.outputs() {
		_ = os.Remove(f)
	}
	if s.initCommand != nil {
		cmd := s.initCommand(s)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s: init: %v: %s", s.name, err, out)
		}
	}
	if err := s.startProcs(s.command(s)); err != nil {
		return err
	}
	if err := s.waitRouted(ctx, ready); err != nil {
		return err
	}
	if s.later != nil {
		if err := s.startProcs(s.later(s)); err != nil {
			return err
		}
	}
	if err := waitWatches(ctx, c, 1, false); err != nil {
		return fmt.Errorf("%s: %w", s.name, err)
	}
	if err := s.waitQuiet(ctx, s.settleTime()); err != nil {
		return err
	}
	return s.waitRouted(ctx, ready)
}

// settleTime is how long the system's data plane must be quiet before a
// measurement starts: settle, 500 ms when not set.
func (s *system) settleTime() time.Duration {
	if s.settle == 0 {
		return 500 * time.Millisecond
	}
	return s.settle
}

// startProcs starts processes of the system, each in a process group of
// its own.
func (s *system) startProcs(cmds []*exec.Cmd) error {
	for _, cmd := range cmds {
		cmd.Stdout, cmd.Stderr = s.log, s.log
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			s.stop()
			return fmt.Errorf("%s: start %s: %w", s.name, cmd.Path, err)
		}
		s.procs = append(s.procs, cmd)
	}
	return nil
}

// waitRouted waits until nginx routes the Services in ready, for at most
// the start limit; then it stops the system.
func (s *system) waitRouted(ctx context.Context, ready []int) error {
	client := newPollClient()
	limit := s.startLimit
	if limit == 0 {
		limit = 2 * time.Minute
	}
	deadline := time.Now().Add(limit)
	for _, i := range ready {
		for !routed(client, s.port, i) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				body, code, err := get(client, s.port, routePath(i))
				config, _ := os.ReadFile(s.configPath())
				s.stop()
				return fmt.Errorf("%s: nginx does not route %s (it answers %d %q %v; %d bytes of config, from %q): %s",
					s.name, serviceName(i), code, body, err, len(config), string(config[:min(len(config), 300)]), s.log.tail())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// stop ends every process the system started: SIGTERM to each process
// group, SIGKILL after 15 s.
func (s *system) stop() {
	for _, cmd := range s.procs {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	for _, cmd := range s.procs {
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		// Whatever is left of the group (nginx workers of a killed
		// master, a baseline's kubectl) goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if s.logDir != "" && s.procs != nil {
		s.runs++
		_ = os.WriteFile(filepath.Join(s.logDir, fmt.Sprintf("%s-%d.log", s.name, s.runs)), []byte(s.log.String()), 0o644)
	}
	s.procs = nil
}

// reloads counts the reloads nginx logged so far.
func (s *system) reloads() int { return strings.Count(s.log.String(), "reconfiguring") }

// nginxMaster is the PID of the system's nginx master; for Traefik, of
// its one process, which has no children: the figures of nginx's
// processes are Traefik's.
func (s *system) nginxMaster() (int, error) {
	if s.traefik {
		if len(s.procs) == 0 {
			return 0, fmt.Errorf("%s is not running", s.name)
		}
		return s.procs[0].Process.Pid, nil
	}
	data, err := os.ReadFile(filepath.Join(s.prefix(), "nginx.pid"))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(data)))
}

// generatorPIDs are the processes that make the config: kube-nginx-sync's
// one process, or the baseline generator's process group; none for
// Traefik, whose one process is its data plane too.
func (s *system) generatorPIDs() []int {
	if len(s.procs) == 0 || s.traefik {
		return nil
	}
	if s.ours() {
		return []int{s.procs[0].Process.Pid}
	}
	// The baseline's generator starts last.
	return processGroup(s.procs[len(s.procs)-1].Process.Pid)
}

// ours and baseline name the systems: kube-nginx-sync with its default
// shape, and the seed's design.
const (
	ours     = "kube-nginx-sync"
	baseline = "baseline"
)

// oursName names kube-nginx-sync run with a shape: ours for the default
// shape, "kube-nginx-sync-<shape>" for the others.
func oursName(shape string) string {
	if shape == string(nginxconf.ShapeUpstream) {
		return ours
	}
	return ours + "-" + shape
}

// newOurs is kube-nginx-sync run with its default settings, but for
// --shape shape and extra arguments.
func newOurs(shape, dir, binary, kubeconfig string, port, statusPort, metricsPort int, extra []string) *system {
	return &system{name: oursName(shape), shape: shape, dir: dir, port: port, statusPort: statusPort, metricsPort: metricsPort, command: func(s *system) []*exec.Cmd {
		args := []string{"run", "--kubeconfig", kubeconfig, "--namespace", namespace, "--shape", s.shape,
			"--output", s.configPath(), "--listen", fmt.Sprintf("127.0.0.1:%d", s.metricsPort),
			"--http-address", "127.0.0.1", "--http-port", strconv.Itoa(port), "--status-port", strconv.Itoa(statusPort)}
		args = append(append(append(args, extra...), "--"), s.nginxArgs()...)
		return []*exec.Cmd{exec.Command(binary, args...)}
	}}
}

// newBaseline is the seed's design done literally: bench/baseline. Its
// generator starts once nginx answers: started together, as a Pod's
// containers are, nginx may read default.conf while the generator's first
// render rewrites it in place, start with no server, and the reloader,
// whose watch began after that write, never reloads it (the seed design's
// race: it ended two of our first four runs with -shape upstream,lua).
func newBaseline(dir, scripts, kubeconfig string, port int) *system {
	generator := func(s *system, extra ...string) *exec.Cmd {
		return exec.Command(filepath.Join(scripts, "generator.sh"), append([]string{kubeconfig, namespace,
			"kube-nginx-sync.io/expose=true", fmt.Sprintf("127.0.0.1:%d", port), s.configPath()}, extra...)...)
	}
	return &system{name: baseline, dir: dir, port: port,
		initCommand: func(s *system) *exec.Cmd { return generator(s, "once") },
		command: func(s *system) []*exec.Cmd {
			return []*exec.Cmd{exec.Command(filepath.Join(scripts, "reloader.sh"), append([]string{s.confDir()}, s.nginxArgs()...)...)}
		},
		later: func(s *system) []*exec.Cmd { return []*exec.Cmd{generator(s)} }}
}

// routed says whether nginx on port routes Service i to one of its
// endpoints.
func routed(c *http.Client, port, i int) bool {
	body, code, err := get(c, port, routePath(i))
	return err == nil && code == 200 && answersFor(i, body)
}

func get(c *http.Client, port int, path string) (string, int, error) {
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, path))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), resp.StatusCode, err
}

// newClient keeps connections alive, as the load of the churn does.
func newClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
}

// newPollClient opens a new connection for every request: a connection
// kept alive to an old worker would show the old config for as long as
// nginx lets old workers finish (about 100 ms), which is not the time at
// which nginx serves the new one.
func newPollClient() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true, DisableCompression: true}}
}

// waitQuiet waits until the system's data plane has not changed for
// quiet (lastChange), counted from the call at the earliest: a generator
// that coalesces a stream of changes may have paused for longer than
// quiet just before its last write.
func (s *system) waitQuiet(ctx context.Context, quiet time.Duration) error {
	_, err := s.waitQuietAtMost(ctx, quiet, 0)
	return err
}

// waitQuietAtMost is waitQuiet that gives up after limit (0: never) and
// says whether the data plane went quiet.
func (s *system) waitQuietAtMost(ctx context.Context, quiet, limit time.Duration) (bool, error) {
	start := time.Now()
	last := s.lastChange(ctx)
	for {
		if limit > 0 && time.Since(start) > limit {
			return false, nil
		}
		if time.Since(last()) >= quiet && time.Since(start) >= quiet {
			return true, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(quiet / 5):
		}
	}
}

// lastChange returns a function that says when the system last changed
// what its data plane serves, as far as the bench can see it: for the
// nginx systems, the latest modification of their outputs (now when one
// is missing); for Traefik, when the bench last saw its count of applied
// configurations (traefik_config_reloads_total) move, or the first call
// (or now, when its metrics do not answer).
func (s *system) lastChange(ctx context.Context) func() time.Time {
	if s.traefik {
		count, at := -1.0, time.Time{}
		return func() time.Time {
			n, err := s.configUpdates(ctx)
			if err != nil {
				return time.Now()
			}
			if n != count {
				count, at = n, time.Now()
			}
			return at
		}
	}
	return func() time.Time {
		var latest time.Time
		for _, path := range s.outputs() {
			fi, err := os.Stat(path)
			if err != nil {
				return time.Now()
			}
			if fi.ModTime().After(latest) {
				latest = fi.ModTime()
			}
		}
		return latest
	}
}

// syncBuffer is a log that processes write to while the benchmark reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) tail() string {
	s := b.String()
	if len(s) > 3000 {
		s = s[len(s)-3000:]
	}
	return s
}
