package nginx

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/procfs"
	"k8s.io/apimachinery/pkg/util/wait"
)

// fakeProc writes the /proc files of one process under root.
func fakeProc(t *testing.T, root string, pid int, comm string, state byte, ppid int, start uint64, cmdline string) {
	t.Helper()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Fields 5 to 21 and 23 to 52 of proc_pid_stat(5) are zeros here.
	zeros := func(n int) string { return strings.TrimSpace(strings.Repeat("0 ", n)) }
	stat := fmt.Sprintf("%d (%s) %c %d %s %d %s\n", pid, comm, state, ppid, zeros(17), start, zeros(30))
	files := map[string]string{
		"stat":    stat,
		"cmdline": cmdline,
		"statm":   "2500 300 100 50 0 400 0\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestChildrenFromProc(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	fakeProc(t, root, 100, "nginx", 'S', 1, 500, "nginx: master process /usr/sbin/nginx -g daemon off;\x00\x00\x00")
	fakeProc(t, root, 101, "nginx", 'S', 100, 600, "nginx: worker process\x00\x00\x00\x00")
	fakeProc(t, root, 1020, "nginx", 'R', 100, 700, "nginx: worker process is shutting down\x00\x00")
	fakeProc(t, root, 103, "nginx", 'Z', 100, 601, "")
	fakeProc(t, root, 104, "a) b (c", 'S', 100, 800, "/bin/x\x00--flag\x00with space\x00\x00y\x00")
	fakeProc(t, root, 200, "sh", 'S', 1, 10, "sh\x00")
	if err := os.MkdirAll(filepath.Join(root, "105"), 0o755); err != nil { // gone meanwhile
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "106"), nil, 0o644); err != nil { // not a process
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "sys"), 0o755); err != nil {
		t.Fatal(err)
	}
	fs, err := procfs.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}

	got, err := childrenIn(fs, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []proc{
		{pid: 101, ppid: 100, state: 'S', start: 600, cmdline: "nginx: worker process"},
		{pid: 103, ppid: 100, state: 'Z', start: 601, cmdline: ""},
		{pid: 104, ppid: 100, state: 'S', start: 800, cmdline: "/bin/x --flag with space  y"},
		{pid: 1020, ppid: 100, state: 'R', start: 700, cmdline: "nginx: worker process is shutting down"},
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(proc{})); diff != "" {
		t.Errorf("children of 100 (-want +got):\n%s", diff)
	}

	for pid, want := range map[int]bool{100: true, 101: true, 103: false, 105: false, 999: false} {
		if got := aliveIn(fs, pid); got != want {
			t.Errorf("alive(%d) = %v, want %v", pid, got, want)
		}
	}
	if got, want := residentBytesIn(fs, 101), int64(300*os.Getpagesize()); got != want {
		t.Errorf("resident bytes %d, want %d", got, want)
	}
	if got := residentBytesIn(fs, 999); got != 0 {
		t.Errorf("resident bytes of a missing process %d, want 0", got)
	}
}

// On the real /proc: a child is listed with its command line, alive while
// it runs, a zombie until it is waited for, then gone. Not parallel: no
// other test may reap the zombie meanwhile.
func TestChildrenOfThisProcess(t *testing.T) {
	cmd := exec.Command("cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("no cat to start: %v", err)
	}
	pid := cmd.Process.Pid
	child := func() (proc, bool) {
		t.Helper()
		kids, err := children(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(kids, func(p proc) bool { return p.pid == pid })
		if i < 0 {
			return proc{}, false
		}
		return kids[i], true
	}

	p, ok := child()
	if !ok || p.ppid != os.Getpid() || p.cmdline != "cat" || p.state == 'Z' || p.start == 0 {
		t.Errorf("running child: %+v (listed: %v)", p, ok)
	}
	if !alive(pid) || residentBytes(pid) <= 0 {
		t.Errorf("running child: alive %v, resident bytes %d", alive(pid), residentBytes(pid))
	}

	stdin.Close() // cat exits
	err = wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return !alive(pid), nil })
	if err != nil {
		t.Fatalf("the child did not exit: %v", err)
	}
	if p, ok := child(); !ok || p.state != 'Z' {
		t.Errorf("exited child not yet waited for: %+v (listed: %v), want a zombie", p, ok)
	}

	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if _, ok := child(); ok || alive(pid) {
		t.Error("a child that was waited for is still listed")
	}
}
