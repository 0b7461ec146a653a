//go:build e2e

package e2e

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// allInOne is a `kube-nginx-sync run` process of a test.
type allInOne struct {
	*daemon
	ns, confDir, listen string
	port, statusPort    int
}

func startRun(t *testing.T, ns string, extra ...string) *allInOne {
	t.Helper()
	a := &allInOne{ns: ns, confDir: t.TempDir(), listen: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		port: freePort(t), statusPort: freePort(t)}
	prefix := t.TempDir()
	// The lua shape needs nginx's Lua module.
	lua := slices.Contains(extra, "--shape=lua") || slices.Index(extra, "lua") > 0 && extra[slices.Index(extra, "lua")-1] == "--shape"
	main := testbed.MainConfig{Prefix: prefix, ConfDir: a.confDir}
	if lua {
		if main.Modules = nginx.LuaModules(); main.Modules == nil {
			t.Fatal("nginx's Lua module is not installed (apt-get install libnginx-mod-http-lua)")
		}
	}
	mainConf, err := main.Write()
	if err != nil {
		t.Fatal(err)
	}
	if lua {
		// nginx's workers (user nobody) read the endpoints file
		// themselves, as they do in a Pod's emptyDir: the test's
		// folders must let them.
		for dir := a.confDir; dir != filepath.Dir(dir) && dir != os.TempDir(); dir = filepath.Dir(dir) {
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	args := append([]string{"run", "--kubeconfig", cluster.Kubeconfig, "--namespace", ns,
		"--output", filepath.Join(a.confDir, "default.conf"), "--listen", a.listen,
		"--http-address", "127.0.0.1", "--http-port", strconv.Itoa(a.port), "--status-port", strconv.Itoa(a.statusPort),
		"--debounce", "50ms", "--max-delay", "500ms", "--log-level", "debug"}, extra...)
	a.daemon = startDaemon(t, append(args, "--", "-p", prefix+"/", "-c", mainConf)...)
	eventually(t, 30*time.Second, func() error {
		if code := httpStatus("http://" + a.listen + "/readyz"); code != 200 {
			return fmt.Errorf("/readyz answers %d", code)
		}
		return nil
	})
	return a
}

// TestRunRoutesNewService: the all-in-one mode against the real control
// plane routes a Service created while it runs, and confirms each reload by
// the version nginx serves.
func TestRunRoutesNewService(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	a := startRun(t, ns)
	path := "/" + ns + "/fresh/hello"
	if status, _ := get(t, a.port, "", path); status != 404 {
		t.Errorf("before the Service exists: %d, want 404", status)
	}

	created := time.Now()
	createService(t, ns, service{name: "fresh", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	b := startBackend(t, "fresh", netip.AddrPortFrom(nextIP(), 8080))
	createSlice(t, ns, "fresh", []slicePort{sp("http", 8080)}, endpoint{Addr: b.Addr()})
	eventually(t, 15*time.Second, func() error {
		if status, body := get(t, a.port, "", path); status != 200 || body != "fresh /hello" {
			return fmt.Errorf("answers %d %q", status, body)
		}
		return nil
	})
	t.Logf("a new Service answered through nginx %s after its creation", time.Since(created).Round(time.Millisecond))

	// The served version is the file's, and the status file says so.
	data, err := os.ReadFile(filepath.Join(a.confDir, "default.conf"))
	if err != nil {
		t.Fatal(err)
	}
	header, err := nginxconf.Verify(data)
	if err != nil {
		t.Fatal(err)
	}
	if status, body := get(t, a.statusPort, "", nginxconf.VersionPath); status != 200 || body != header.Version+"\n" {
		t.Errorf("status server answers %d %q, want %s", status, body, header.Version)
	}
	eventually(t, 5*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(a.confDir, nginx.StatusFile))
		if err != nil || !strings.Contains(string(b), header.Version) {
			return fmt.Errorf("status file %s (%v) does not name version %s", b, err, header.Version)
		}
		return nil
	})
	if n := metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`); n < 1 {
		t.Errorf("%v confirmed reloads", n)
	}
}

// TestReloadExitsWhenNginxDies: when nginx's master is killed, reload (and
// run) exits at once with a non-zero status (so the container restarts)
// and leaves no nginx process behind: the master's workers are gone too,
// and nothing answers on nginx's port.
func TestReloadExitsWhenNginxDies(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"reload", "run"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			confDir := t.TempDir()
			prefix := t.TempDir()
			mainConf, err := testbed.WriteMainConfig(prefix, confDir, false)
			if err != nil {
				t.Fatal(err)
			}
			listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			args := []string{mode, "--listen", listen}
			switch mode {
			case "reload":
				if err := os.WriteFile(filepath.Join(confDir, "default.conf"), handWritten(port, "up"), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config-dir", confDir)
			case "run":
				args = append(args, "--kubeconfig", cluster.Kubeconfig, "--namespace", newNamespace(t),
					"--output", filepath.Join(confDir, "default.conf"), "--http-address", "127.0.0.1",
					"--http-port", strconv.Itoa(port), "--status-port", strconv.Itoa(freePort(t)))
			}
			cmd := exec.Command(binary, append(args, "--", "-p", prefix+"/", "-c", mainConf)...)
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			t.Cleanup(func() { _ = cmd.Process.Kill() })
			eventually(t, 30*time.Second, func() error {
				if code := httpStatus("http://" + listen + "/readyz"); code != 200 {
					return fmt.Errorf("/readyz answers %d", code)
				}
				return nil
			})
			master := nginxMaster(t, cmd.Process.Pid)
			workers := nginxWorkers(t, master)
			if len(workers) == 0 {
				t.Fatal("nginx has no worker")
			}
			killed := time.Now()
			if err := syscall.Kill(master, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				exit, ok := err.(*exec.ExitError)
				if !ok || exit.ExitCode() == 0 {
					t.Errorf("%s exited with %v, want a non-zero status", mode, err)
				}
				t.Logf("%s exited %s after nginx's master was killed: %v; its last words: %s", mode, time.Since(killed).Round(time.Millisecond), err, lastLine(out.String()))
			case <-time.After(10 * time.Second):
				t.Fatalf("%s still runs 10 s after nginx died:\n%s", mode, out.String())
			}
			eventually(t, 5*time.Second, func() error {
				for _, pid := range workers {
					if !gone(pid) {
						return fmt.Errorf("nginx's worker %d outlived its master: an orphan", pid)
					}
				}
				if status, _, err := tryGet(port, "", "/"); err == nil {
					return fmt.Errorf("something still answers on nginx's port (%d): an orphaned worker", status)
				}
				return nil
			})
			t.Logf("its workers %v were gone %s after the kill", workers, time.Since(killed).Round(time.Millisecond))
		})
	}
}

// TestReloadUnderLoad: 50 keep-alive clients (each with an http.Transport of
// its own, which retries an idempotent request on a connection the server
// closed) load a route that never changes while the config changes every
// 100 ms for 20 s. No request may fail, and the last config must be the one
// served.
func TestReloadUnderLoad(t *testing.T) {
	t.Parallel()
	const (
		clients  = 50
		duration = 20 * time.Second
		every    = 100 * time.Millisecond
	)
	bed := newLoadBed(t)
	port, statusPort, file, render := bed.port, bed.statusPort, bed.file, bed.render
	rl := startReloader(t, bed.confDir, "--min-reload-interval", "500ms")
	waitSettled(t, rl.daemon, rl.listen, file, statusPort)
	before := nginxFigures(t, rl.listen)

	ld := startLoad(t, clients, target{port: port, path: "/stable/x", body: "stable /x"})
	reloadsBefore := rl.reloads(t, nginx.ResultOK)
	gen := 0
	for start := time.Now(); time.Since(start) < duration; time.Sleep(every) { // paces the changes, a load generator; it waits for nothing
		gen++
		if _, err := writeAtomically(file, render(gen)); err != nil {
			t.Fatal(err)
		}
	}
	// The last config must end up served: its version on the status server.
	last, _ := nginxconf.Verify(render(gen))
	eventually(t, 15*time.Second, func() error {
		if status, body := get(t, statusPort, "", nginxconf.VersionPath); status != 200 || body != last.Version+"\n" {
			return fmt.Errorf("status server answers %d %q, want the last version %s", status, body, last.Version)
		}
		return nil
	})
	ld.stop()
	// The last reload is counted, and the old workers are gone.
	waitSettled(t, rl.daemon, rl.listen, file, statusPort)
	reloads := rl.reloads(t, nginx.ResultOK) - reloadsBefore
	after := nginxFigures(t, rl.listen)
	t.Logf("%d config changes in %s (every %s): %v confirmed reloads; %s; "+
		"nginx before: %s; after: %s", gen, duration, every, reloads, ld, before, after)
	if n := ld.failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed:%s", n, ld.requests.Load(), ld.failuresSince(ld.started))
	}
	if maxReloads := float64(duration/(500*time.Millisecond)) + 2; reloads > maxReloads {
		t.Errorf("%v reloads, more than the rate cap allows (%v)", reloads, maxReloads)
	}
}

// nginxFigures describes nginx's processes from the metrics of the reload
// (or run) process that listens on listen.
func nginxFigures(t *testing.T, listen string) string {
	t.Helper()
	m := func(name string) float64 { return metric(t, listen, "kube_nginx_sync_"+name) }
	return fmt.Sprintf("%v workers (%.1f MiB), %v draining generations (%v workers, %.1f MiB)",
		m("nginx_workers"), m("nginx_workers_resident_bytes")/(1<<20), m("nginx_draining_generations"),
		m("nginx_draining_workers"), m("nginx_draining_resident_bytes")/(1<<20))
}

func writeAtomically(path string, data []byte) (bool, error) {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return false, err
	}
	return true, os.Rename(tmp, path)
}

// loadBed is a config folder for tests of nginx under load: its file
// routes /stable/ to a backend of its own, and /churn/ to an address that
// changes with each generation of the file.
type loadBed struct {
	port, statusPort int
	confDir, file    string
	// render renders generation gen; the file holds generation 0.
	render func(gen int) []byte
}

func newLoadBed(t *testing.T) *loadBed {
	t.Helper()
	port, statusPort := freePort(t), freePort(t)
	backend := startBackend(t, "stable", netip.AddrPortFrom(nextIP(), 8080))
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: port, HTTPAddresses: []string{"127.0.0.1"}, StatusPort: statusPort})
	if err != nil {
		t.Fatal(err)
	}
	b := &loadBed{port: port, statusPort: statusPort, confDir: t.TempDir()}
	b.file = filepath.Join(b.confDir, "default.conf")
	b.render = func(gen int) []byte {
		data, err := r.Render(loadConfig(backend, gen), 2)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if err := os.WriteFile(b.file, b.render(0), 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

// loadConfig is the model of a loadBed's generation gen: a stable route to
// backend, and a churning one whose endpoints change.
func loadConfig(backend netip.AddrPort, gen int) model.Config {
	stable := model.ServicePort{Namespace: "load", Name: "stable", Port: "http"}
	churn := model.ServicePort{Namespace: "load", Name: "churn", Port: "http"}
	return model.Config{
		Servers: []model.Server{{Locations: []model.Location{
			{Path: "/churn/", StripPrefix: true, Service: churn, Mode: model.UpstreamEndpoints, Upstream: churn.UpstreamName()},
			{Path: "/stable/", StripPrefix: true, Service: stable, Mode: model.UpstreamEndpoints, Upstream: stable.UpstreamName()},
		}}},
		Upstreams: []model.Upstream{
			{Name: churn.UpstreamName(), Backends: []netip.AddrPort{netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, 250, byte(1 + gen%250)}), 9000)}},
			{Name: stable.UpstreamName(), Backends: []netip.AddrPort{backend}},
		},
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
