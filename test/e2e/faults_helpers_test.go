//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// This file holds the fault injectors and observers of faults_test.go.

// fileWatch reads a config file over and over while a fault happens, and
// checks every read: the file is there, and it is a complete rendered
// config (its hash header matches its body), and check (if any) passes.
// It records each version it saw, in order.
type fileWatch struct {
	path   string
	check  func([]byte) error
	stopCh chan struct{}
	done   chan struct{}

	mu       sync.Mutex
	reads    int
	problems int
	first    []string // the first problems
	seen     []seenVersion
}

type seenVersion struct {
	version string
	at      time.Time
	data    []byte
}

// watchFile starts a fileWatch; it stops at the end of the test if stop
// was not called before.
func watchFile(t *testing.T, path string, check func([]byte) error) *fileWatch {
	t.Helper()
	w := &fileWatch{path: path, check: check, stopCh: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	t.Cleanup(w.stop)
	return w
}

// readEvery is how often a fileWatch reads its file: far more often than
// the writers write (their debounce is 50 ms or more).
const readEvery = 200 * time.Microsecond

func (w *fileWatch) run() {
	defer close(w.done)
	tick := time.NewTicker(readEvery)
	defer tick.Stop()
	for {
		w.readOnce()
		select {
		case <-w.stopCh:
			return
		case <-tick.C:
		}
	}
}

func (w *fileWatch) readOnce() {
	data, err := os.ReadFile(w.path)
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.reads++
	problem := func(format string, args ...any) {
		w.problems++
		if len(w.first) < 5 {
			w.first = append(w.first, fmt.Sprintf("%s: ", now.Format("15:04:05.000000"))+fmt.Sprintf(format, args...))
		}
	}
	if err != nil {
		problem("read: %v", err)
		return
	}
	h, err := nginxconf.Verify(data)
	if err != nil {
		problem("not a complete rendered config (%v): %d bytes", err, len(data))
		return
	}
	if n := len(w.seen); n == 0 || w.seen[n-1].version != h.Version {
		w.seen = append(w.seen, seenVersion{version: h.Version, at: now, data: data})
		if w.check != nil {
			if err := w.check(data); err != nil {
				problem("version %s: %v", h.Version, err)
			}
		}
	}
}

// stop ends the watch and waits for it.
func (w *fileWatch) stop() {
	select {
	case <-w.stopCh:
	default:
		close(w.stopCh)
	}
	<-w.done
}

// report checks that no read had a problem, and returns the reads and
// the versions seen.
func (w *fileWatch) report(t *testing.T) (reads int, seen []seenVersion) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.problems > 0 {
		t.Errorf("%d of %d reads of %s had a problem; the first:\n%s", w.problems, w.reads, w.path, strings.Join(w.first, "\n"))
	}
	return w.reads, append([]seenVersion(nil), w.seen...)
}

// versionOf is the version in a rendered config's header.
func versionOf(t *testing.T, config string) string {
	t.Helper()
	h, err := nginxconf.Verify([]byte(config))
	if err != nil {
		t.Fatal(err)
	}
	return h.Version
}

// containsAll is a fileWatch check: every string is in the file, none of
// the unwanted ones is.
func containsAll(want []string, unwanted ...string) func([]byte) error {
	return func(data []byte) error {
		for _, w := range want {
			if !bytes.Contains(data, []byte(w)) {
				return fmt.Errorf("lacks %q", w)
			}
		}
		for _, u := range unwanted {
			if bytes.Contains(data, []byte(u)) {
				return fmt.Errorf("has %q", u)
			}
		}
		return nil
	}
}

// partition is a TCP proxy in front of the API server that the test can
// cut (every connection closed, new ones refused) and heal: a network
// partition between one client and the API server, which stays up.
type partition struct {
	addr, target string

	mu    sync.Mutex
	l     net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startPartition(t *testing.T, target string) *partition {
	t.Helper()
	p := &partition{addr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), target: target, conns: make(map[net.Conn]struct{})}
	p.heal(t)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

// heal listens again on the proxy's address.
func (p *partition) heal(t *testing.T) {
	t.Helper()
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("partition: %v", err)
	}
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	p.wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Go(func() { p.serve(c) })
		}
	})
}

func (p *partition) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		c.Close()
		up.Close()
		return
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(up, c) })
	wg.Go(func() { pipe(c, up) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// track records a proxied pair, unless the proxy is cut.
func (p *partition) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l == nil {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// cut closes the listener and every proxied connection: the client's
// connections break and new ones are refused.
func (p *partition) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
		p.l = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// kubeconfigFor writes a kubeconfig for the API server at server (such as
// a partition's address) with a bearer token.
func kubeconfigFor(t *testing.T, server, token string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	err := os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`, server, token)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// apiserverRequests sums the API server's apiserver_request_total for a
// verb (LIST, WATCH) and resource, by its own /metrics.
func apiserverRequests(t *testing.T, c kubernetes.Interface, verb, resource string) float64 {
	t.Helper()
	body, err := c.Discovery().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		t.Fatalf("API server metrics: %v", err)
	}
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "apiserver_request_total{") ||
			!strings.Contains(line, `verb="`+verb+`"`) || !strings.Contains(line, `resource="`+resource+`"`) {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}

// mountTmpfs mounts a tmpfs of size bytes on a new folder of the test, and
// unmounts it at the end. Only in a private mount namespace, such as the
// one hack/in-netns.sh makes: the mount must not reach the host's.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	// hack/in-netns.sh makes the mount namespace and names it.
	if self, err := os.Readlink("/proc/self/ns/mnt"); err != nil || self != os.Getenv("KNS_MOUNT_NS") {
		t.Fatalf("not in the mount namespace of hack/in-netns.sh (this one is %s %v; KNS_MOUNT_NS=%q): run the e2e tests inside it",
			self, err, os.Getenv("KNS_MOUNT_NS"))
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, fmt.Sprintf("size=%d,mode=0755", size)); err != nil {
		t.Fatalf("mount tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// remount makes a mount read-only or read-write again.
func remount(t *testing.T, dir string, readOnly bool) {
	t.Helper()
	flags := uintptr(syscall.MS_REMOUNT | syscall.MS_NOSUID | syscall.MS_NODEV)
	if readOnly {
		flags |= syscall.MS_RDONLY
	}
	if err := syscall.Mount("", dir, "", flags, ""); err != nil {
		t.Fatalf("remount %s (read-only %v): %v", dir, readOnly, err)
	}
}

// fillUp writes a file in dir until the file system is full, and returns
// its path.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("fill %s: %v", dir, err)
			}
			return path
		}
	}
}

// tempFiles lists the atomic writer's temporary files in dir.
func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			names = append(names, e.Name())
		}
	}
	return names
}

// nginxMaster finds the nginx master that parent (a reload or run process)
// started.
func nginxMaster(t *testing.T, parent int) int {
	t.Helper()
	for _, pid := range childPIDs(t, parent) {
		if strings.HasPrefix(cmdline(pid), "nginx: master process") {
			return pid
		}
	}
	t.Fatalf("no nginx master among the children of %d", parent)
	return 0
}

// nginxWorkers lists a master's workers that are not shutting down.
func nginxWorkers(t *testing.T, master int) []int {
	t.Helper()
	var pids []int
	for _, pid := range childPIDs(t, master) {
		if c := cmdline(pid); strings.HasPrefix(c, "nginx: worker process") && !strings.Contains(c, "shutting down") {
			pids = append(pids, pid)
		}
	}
	return pids
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

// gone reports whether a process has exited: it is no more, or it is a
// zombie that its parent has not collected yet.
func gone(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(stat, ')')
	return i > 0 && len(stat) > i+2 && stat[i+2] == 'Z'
}
