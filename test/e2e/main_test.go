//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controlplane"
)

var (
	// cluster is the control plane shared by every test of this binary;
	// each test works in a namespace of its own.
	cluster *controlplane.ControlPlane
	client  kubernetes.Interface
	// binary is the kube-nginx-sync binary built from this tree.
	binary string
	// nginxBin is the nginx binary the tests run.
	nginxBin string
)

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	fail := func(format string, args ...any) int {
		fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
		return 1
	}
	binDir := os.Getenv("KNS_CONTROLPLANE_BIN")
	if binDir == "" {
		return fail("KNS_CONTROLPLANE_BIN is not set: run the e2e tests with `make e2e` or `make test`, which build the control plane and set it")
	}
	if l, err := net.Listen("tcp", "198.18.0.1:0"); err != nil {
		return fail("198.18.0.1 is not a local address (%v): run the e2e tests inside hack/in-netns.sh, as `make e2e` does", err)
	} else {
		l.Close()
	}
	var err error
	if nginxBin, err = exec.LookPath("nginx"); err != nil {
		return fail("nginx not found (%v): install Debian's nginx package", err)
	}

	work, err := os.MkdirTemp("", "kns-e2e-")
	if err != nil {
		return fail("%v", err)
	}
	defer os.RemoveAll(work)

	binary = filepath.Join(work, "kube-nginx-sync")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/kube-nginx-sync")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fail("build kube-nginx-sync: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cpDir := filepath.Join(work, "controlplane")
	if err := os.Mkdir(cpDir, 0o755); err != nil {
		return fail("%v", err)
	}
	start := time.Now()
	cluster, err = controlplane.Start(ctx, controlplane.Options{BinDir: binDir, WorkDir: cpDir})
	if err != nil {
		return fail("start control plane: %v", err)
	}
	defer cluster.Stop()
	fmt.Fprintf(os.Stderr, "e2e: control plane ready in %s\n", time.Since(start).Round(time.Millisecond))
	if client, err = kubernetes.NewForConfig(cluster.Config); err != nil {
		return fail("%v", err)
	}
	return m.Run()
}
