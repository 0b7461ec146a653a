//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// TestReloadReapsZombiesAsPID1: run as a container's init process (PID 1
// of a new PID namespace), reload collects orphans that the kernel hands
// to it, so they do not stay zombies.
func TestReloadReapsZombiesAsPID1(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	confDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(confDir, "default.conf"), handWritten(port, "pid1"), 0o644); err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	mainConf, err := testbed.WriteMainConfig(prefix, confDir, false)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
		binary, "reload", "--config-dir", confDir, "--listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		"--", "-p", prefix+"/", "-c", mainConf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// unshare --kill-child: its end kills reload, PID 1 of the
		// namespace, and with it every process in it.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("reload's output:\n%s", out.String())
		}
	})
	waitServed(t, port, "pid1")
	init := childPIDs(t, cmd.Process.Pid)
	if len(init) != 1 {
		t.Fatalf("unshare has children %v, want the one reload", init)
	}
	reload := init[0]

	// An orphan in reload's PID namespace: the shell exits at once, its
	// sleep is handed to PID 1 (reload) and exits 200 ms later.
	orphan := exec.Command("nsenter", "--target", strconv.Itoa(reload), "--pid", "--mount", "--",
		"sh", "-c", "sleep 0.2 & exit 0")
	if b, err := orphan.CombinedOutput(); err != nil {
		t.Fatalf("nsenter: %v\n%s", err, b)
	}
	eventually(t, 5*time.Second, func() error {
		for _, pid := range childPIDs(t, reload) {
			stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			if strings.Contains(string(stat), "(sleep)") {
				return fmt.Errorf("the orphaned sleep (%d) is still a child of reload: %s", pid, stat)
			}
		}
		return nil
	})
}

// childPIDs lists the processes whose parent is ppid.
func childPIDs(t *testing.T, ppid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(stat, ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(ppid) {
			pids = append(pids, pid)
		}
	}
	return pids
}
