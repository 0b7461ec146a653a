//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// reloader is a `kube-nginx-sync reload` process of a test, with its nginx.
type reloader struct {
	*daemon
	confDir string
	listen  string
	// lastChange is when the test last changed the folder, for pace.
	lastChange time.Time
}

// startReloader runs `reload` over confDir, with nginx under a prefix of its
// own, and waits until it is ready.
func startReloader(t *testing.T, confDir string, extra ...string) *reloader {
	t.Helper()
	prefix := t.TempDir()
	mainConf, err := testbed.WriteMainConfig(prefix, confDir, false)
	if err != nil {
		t.Fatal(err)
	}
	r := &reloader{confDir: confDir, listen: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	args := append([]string{"reload", "--config-dir", confDir, "--listen", r.listen, "--log-level", "debug",
		"--min-reload-interval", "0s", "--check-interval", "1s"}, extra...)
	r.daemon = startDaemon(t, append(args, "--", "-p", prefix+"/", "-c", mainConf)...)
	r.waitReady(t)
	r.lastChange = time.Now()
	return r
}

func (r *reloader) waitReady(t *testing.T) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		if code := httpStatus("http://" + r.listen + "/readyz"); code != 200 {
			return fmt.Errorf("/readyz answers %d", code)
		}
		return nil
	})
}

func (r *reloader) reloads(t *testing.T, result string) float64 {
	t.Helper()
	return metric(t, r.listen, `kube_nginx_sync_reloads_total{result="`+result+`"}`)
}

func (r *reloader) status(t *testing.T) nginx.Status {
	t.Helper()
	var s nginx.Status
	b, err := os.ReadFile(filepath.Join(r.confDir, nginx.StatusFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// handWritten is a config without kube-nginx-sync's header: reloads are
// confirmed by nginx's new worker generation.
func handWritten(port int, body string) []byte {
	return []byte(fmt.Sprintf("server {\n    listen 127.0.0.1:%d;\n    location / {\n        return 200 %q;\n    }\n}\n", port, body))
}

// waitServed waits until GET / on port answers body.
func waitServed(t *testing.T, port int, body string) {
	t.Helper()
	eventually(t, 15*time.Second, func() error {
		if status, got, err := tryGet(port, "", "/"); err != nil || status != 200 || got != body {
			return fmt.Errorf("answers %d %q (%v), want %q", status, got, err, body)
		}
		return nil
	})
}

// TestReloadFileChangePatterns: each way a config file gets replaced
// causes exactly one confirmed reload.
func TestReloadFileChangePatterns(t *testing.T) {
	t.Parallel()
	port := freePort(t)

	t.Run("plain folder", func(t *testing.T) {
		confDir := t.TempDir()
		file := filepath.Join(confDir, "default.conf")
		if err := os.WriteFile(file, handWritten(port, "v0"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := startReloader(t, confDir)
		waitServed(t, port, "v0")
		patterns := []struct {
			name  string
			apply func(data []byte) error
		}{
			{"in-place write", func(data []byte) error { return os.WriteFile(file, data, 0o644) }},
			{"rename over the file", func(data []byte) error {
				tmp := filepath.Join(confDir, ".default.conf.tmp")
				if err := os.WriteFile(tmp, data, 0o644); err != nil {
					return err
				}
				return os.Rename(tmp, file)
			}},
			{"delete and re-create", func(data []byte) error {
				if err := os.Remove(file); err != nil {
					return err
				}
				return os.WriteFile(file, data, 0o644)
			}},
		}
		for i, p := range patterns {
			r.pace()
			before := r.reloads(t, nginx.ResultOK)
			body := fmt.Sprintf("v%d", i+1)
			if err := p.apply(handWritten(port, body)); err != nil {
				t.Fatal(err)
			}
			waitServed(t, port, body)
			if n := r.caughtUp(t, fmt.Sprintf("plain_%d", i)) - before; n != 1 {
				t.Errorf("%s: %v reloads, want exactly 1", p.name, n)
			}
		}
	})

	t.Run("ConfigMap volume (..data symlink swap)", func(t *testing.T) {
		port := freePort(t)
		confDir := t.TempDir()
		// The kubelet's layout: default.conf -> ..data/default.conf,
		// ..data -> ..<timestamp>, the files in ..<timestamp>/.
		writeVersion := func(name string, data []byte) {
			if err := os.Mkdir(filepath.Join(confDir, name), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(confDir, name, "default.conf"), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		writeVersion("..2026_11_27_v0", handWritten(port, "cm-v0"))
		if err := os.Symlink("..2026_11_27_v0", filepath.Join(confDir, "..data")); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("..data/default.conf", filepath.Join(confDir, "default.conf")); err != nil {
			t.Fatal(err)
		}
		r := startReloader(t, confDir)
		waitServed(t, port, "cm-v0")
		for i := 1; i <= 2; i++ {
			r.pace()
			before := r.reloads(t, nginx.ResultOK)
			name := fmt.Sprintf("..2026_11_27_v%d", i)
			writeVersion(name, handWritten(port, fmt.Sprintf("cm-v%d", i)))
			tmpLink := filepath.Join(confDir, "..data_tmp")
			if err := os.Symlink(name, tmpLink); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmpLink, filepath.Join(confDir, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(confDir, fmt.Sprintf("..2026_11_27_v%d", i-1))); err != nil {
				t.Fatal(err)
			}
			waitServed(t, port, fmt.Sprintf("cm-v%d", i))
			if n := r.caughtUp(t, fmt.Sprintf("swap_%d", i)) - before; n != 1 {
				t.Errorf("swap %d: %v reloads, want exactly 1", i, n)
			}
		}
	})
}

// caughtUp waits until the reloader has dealt with every change of its
// folder made so far, so that a second reload for one change, if any, has
// happened and is counted; it returns the confirmed reloads counted then.
//
// It adds a file that nginx refuses, named by tag, and waits until the
// status file reports nginx's refusal of it: the reloader handles changes
// one after another, and records each reload before it looks at the next
// change. Then it removes the file, which puts the folder back to the
// config that nginx serves: no reload.
func (r *reloader) caughtUp(t *testing.T, tag string) (reloads float64) {
	t.Helper()
	marker := filepath.Join(r.confDir, "caught-up.conf")
	directive := "kns_caught_up_" + tag
	if _, err := writeAtomically(marker, []byte(directive+";\n")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		if s := r.status(t); s.OK || !strings.Contains(s.Error, `"`+directive+`"`) {
			return fmt.Errorf("the status file %+v does not report nginx's refusal of %s yet", s, directive)
		}
		return nil
	})
	reloads = r.reloads(t, nginx.ResultOK)
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	r.lastChange = time.Now()
	return reloads
}

// reloadMaxDelay is reload's default --reload-max-delay. The reloader's
// coalescing (coalesce.Window) works on the end of a burst of changes at
// most 500 ms after its last change, and takes a change that comes less
// than a quarter of reloadMaxDelay after its last work as part of the
// burst, which it waits for longer than the 100 ms debounce.
const reloadMaxDelay = time.Second

// pace lets reloadMaxDelay pass since the test's last change of the
// folder (or the reloader's start), so that the next change comes alone,
// as in a quiet folder, not as the tail of a burst: tests of how one
// change is handled need that. (The reloader's last work, for the test's
// last change, is at most 500 ms after it, and a change more than 250 ms
// after that is one of its own.)
func (r *reloader) pace() {
	time.Sleep(time.Until(r.lastChange.Add(reloadMaxDelay))) // paces the changes; it waits for nothing
}

// waitSettled waits until the reload (or run) process d, with its metrics
// on listen, is done with the rendered config file: the status file
// reports its version served (written once its reload is counted), nginx's
// status server answers that version, and the metrics count the workers
// that nginx has now and no old generation still draining.
func waitSettled(t *testing.T, d *daemon, listen, file string, statusPort int) {
	t.Helper()
	master := nginxMaster(t, d.cmd.Process.Pid)
	eventually(t, 30*time.Second, func() error {
		data, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		h, err := nginxconf.Verify(data)
		if err != nil {
			return err
		}
		var s nginx.Status
		b, err := os.ReadFile(filepath.Join(filepath.Dir(file), nginx.StatusFile))
		if err != nil {
			return err
		}
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if !s.OK || s.Version != h.Version {
			return fmt.Errorf("the status file %+v does not report version %.12s served", s, h.Version)
		}
		if status, body, err := tryGet(statusPort, "", nginxconf.VersionPath); err != nil || status != 200 || body != h.Version+"\n" {
			return fmt.Errorf("the status server answers %d %q (%v), want version %.12s", status, body, err, h.Version)
		}
		m := scrape(t, listen)
		if g, w, now := m["kube_nginx_sync_nginx_draining_generations"], m["kube_nginx_sync_nginx_workers"], len(nginxWorkers(t, master)); g != 0 || w != float64(now) {
			return fmt.Errorf("the metrics count %v workers and %v draining generations; nginx has %d workers", w, g, now)
		}
		return nil
	})
}

// TestReloadRefusesBadConfigs: a config nginx -t refuses, and one that
// passes nginx -t but cannot be loaded (its port is taken), are not
// served; nginx keeps the last good config, and the status file and
// metrics say why. A later good config is reloaded.
func TestReloadRefusesBadConfigs(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	confDir := t.TempDir()
	file := filepath.Join(confDir, "default.conf")
	if err := os.WriteFile(file, handWritten(port, "good"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startReloader(t, confDir, "--reload-validate", "always")
	waitServed(t, port, "good")

	// A syntax error: refused by nginx -t, never signalled.
	if err := os.WriteFile(file, []byte("server { listen 127.0.0.1:"+strconv.Itoa(port)+"; locaton / { return 200 \"bad\"; } }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		if n := r.reloads(t, nginx.ResultInvalid); n != 1 {
			return fmt.Errorf("%v invalid configs counted", n)
		}
		// The refusal is counted a moment before the status file says it.
		if s := r.status(t); s.OK || !strings.Contains(s.Error, `unknown directive "locaton"`) {
			return fmt.Errorf("status file %+v lacks nginx's message", s)
		}
		return nil
	})
	if status, body := get(t, port, "", "/"); status != 200 || body != "good" {
		t.Errorf("after a refused config nginx answers %d %q, want the last good config", status, body)
	}
	if code := httpStatus("http://" + r.listen + "/readyz"); code != 200 {
		t.Errorf("/readyz answers %d: nginx still serves a confirmed config", code)
	}

	// A port that another process holds passes nginx -t; the reload fails
	// in the master (bind), which keeps the old config.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	conflict := fmt.Sprintf("server { listen 127.0.0.1:%d; location / { return 200 \"good\"; } }\nserver { listen %s; location / { return 200 \"x\"; } }\n",
		port, taken.Addr())
	if err := os.WriteFile(file, []byte(conflict), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() error {
		if n := r.reloads(t, nginx.ResultFailed); n != 1 {
			return fmt.Errorf("%v failed reloads counted", n)
		}
		// The failure is counted a moment before the status file says it.
		if s := r.status(t); s.OK || !strings.Contains(s.Error, "Address already in use") {
			return fmt.Errorf("status file %+v lacks the bind error", s)
		}
		return nil
	})
	if status, body := get(t, port, "", "/"); status != 200 || body != "good" {
		t.Errorf("after a failed reload nginx answers %d %q", status, body)
	}

	// Fixed: reloaded, and the error is cleared.
	if err := os.WriteFile(file, handWritten(port, "fixed"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitServed(t, port, "fixed")
	eventually(t, 5*time.Second, func() error {
		if s := r.status(t); !s.OK || s.Error != "" {
			return fmt.Errorf("status file %+v after a good config", s)
		}
		return nil
	})
}
