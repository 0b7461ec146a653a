//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestDemo runs the program behind `make demo` (the README's first command)
// once, so that it keeps working.
func TestDemo(t *testing.T) {
	t.Parallel()
	demo := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", demo, "../../hack/demo").CombinedOutput(); err != nil {
		t.Fatalf("build demo: %v\n%s", err, out)
	}
	cmd := exec.Command(demo, "-once", "-controlplane", os.Getenv("KNS_CONTROLPLANE_BIN"),
		"-binary", binary, "-port", strconv.Itoa(freePort(t)), "-status-port", strconv.Itoa(freePort(t)),
		"-listen-port", strconv.Itoa(freePort(t)))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{
		`-> 200 "hello-pod-1 /"`,
		`-> 200 "hello-pod-2 /"`,
		`-> 200 "shop-pod-1 /cart"`,
		`-> 200 "api-via-clusterip /items"`,
		`-> 503 "kube-nginx-sync: no ready endpoints for demo/sleepy:http\n"`,
		"service=demo/broken",
		`msg="nginx reloaded"`,
		`GET /demo/live/ -> 200 "live-pod-1 /"`,
		"GET /demo/live/ -> 404",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
