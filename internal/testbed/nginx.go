package testbed

import (
	"cmp"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Nginx is an nginx of its own: own prefix folder, pid file and log, with a
// main config that includes ConfDir/*.conf in its http block.
type Nginx struct {
	Prefix  string
	ConfDir string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// StartNginx starts nginx (master and one worker) in the foreground under
// prefix, and waits until it answers on 127.0.0.1:port, which the included
// config must listen on.
func StartNginx(nginxBin, prefix, confDir string, port int) (*Nginx, error) {
	return MainConfig{Prefix: prefix, ConfDir: confDir}.Start(nginxBin, port)
}

// Start writes the main config (in the foreground whatever c says) and
// starts nginx as StartNginx does.
func (c MainConfig) Start(nginxBin string, port int) (*Nginx, error) {
	c.Foreground = true
	mainConf, err := c.Write()
	if err != nil {
		return nil, err
	}
	n := &Nginx{Prefix: c.Prefix, ConfDir: c.ConfDir, LogPath: filepath.Join(c.Prefix, "nginx.log"), done: make(chan struct{})}
	logFile, err := os.Create(n.LogPath)
	if err != nil {
		return nil, err
	}
	n.cmd = exec.Command(nginxBin, "-p", c.Prefix+"/", "-c", mainConf, "-e", "stderr")
	n.cmd.Stdout, n.cmd.Stderr = logFile, logFile
	// If our process dies, the kernel ends nginx's master too.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := n.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	go func() { _ = n.cmd.Wait(); logFile.Close(); close(n.done) }()

	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return n, nil
		}
		select {
		case <-n.done:
			return nil, fmt.Errorf("nginx exited at start:\n%s", n.Log())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.Stop()
			return nil, fmt.Errorf("nginx does not answer on port %d: %v\n%s", port, err, n.Log())
		}
	}
}

// WriteMainConfig writes prefix/nginx.conf: one worker, everything under
// prefix, logs to stderr, and an http block that includes confDir/*.conf.
// With foreground, it also says "daemon off;" (leave it out when
// kube-nginx-sync reload runs nginx: it adds that itself).
func WriteMainConfig(prefix, confDir string, foreground bool) (string, error) {
	return MainConfig{Prefix: prefix, ConfDir: confDir, Foreground: foreground}.Write()
}

// MainConfig is nginx's main config for tests and benchmarks: everything
// under Prefix, the error log on stderr at notice level (so each reload
// logs "reconfiguring"), and an http block that includes ConfDir/*.conf.
type MainConfig struct {
	Prefix, ConfDir string
	// Foreground adds "daemon off;".
	Foreground bool
	// Workers defaults to 1, WorkerConnections to 1024.
	Workers, WorkerConnections int
	// Modules are dynamic modules to load (nginx.LuaModules for the lua
	// shape).
	Modules []string
}

// Write writes Prefix/nginx.conf and returns its path.
func (c MainConfig) Write() (string, error) {
	daemon := ""
	if c.Foreground {
		daemon = "daemon off;\n"
	}
	for _, m := range c.Modules {
		daemon += "load_module " + m + ";\n"
	}
	conf := fmt.Sprintf(`%[3]smaster_process on;
worker_processes %[4]d;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections %[5]d; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[2]s/*.conf;
}
`, c.Prefix, c.ConfDir, daemon, cmp.Or(c.Workers, 1), cmp.Or(c.WorkerConnections, 1024))
	mainConf := filepath.Join(c.Prefix, "nginx.conf")
	if err := os.WriteFile(mainConf, []byte(conf), 0o644); err != nil {
		return "", err
	}
	return mainConf, nil
}

// PID is the master's process ID.
func (n *Nginx) PID() int { return n.cmd.Process.Pid }

// Log returns what nginx has logged.
func (n *Nginx) Log() string {
	b, _ := os.ReadFile(n.LogPath)
	return string(b)
}

// Stop asks nginx to finish gracefully (SIGQUIT to the master it started),
// and kills it after 10 s.
func (n *Nginx) Stop() {
	_ = n.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		_ = n.cmd.Process.Kill()
		<-n.done
	}
}

// NginxBinary returns the nginx binary for a test, which it skips where
// nginx is not installed, except in CI (CI set), where it fails: there the
// tests that need nginx must run.
func NginxBinary(tb testing.TB) string {
	tb.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") != "" {
			tb.Fatalf("nginx is required in CI: %v", err)
		}
		tb.Skipf("nginx not installed: %v", err)
	}
	return bin
}
