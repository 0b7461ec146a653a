//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestDemo runs the program behind `make demo` (the README's first command)
// once in each of its modes (the default shape, and -shape lua), so that
// it keeps working.
func TestDemo(t *testing.T) {
	t.Parallel()
	demo := filepath.Join(t.TempDir(), "demo")
	if out, err := exec.Command("go", "build", "-o", demo, "../../hack/demo").CombinedOutput(); err != nil {
		t.Fatalf("build demo: %v\n%s", err, out)
	}
	common := []string{
		`-> 200 "hello-pod-1 /"`,
		`-> 200 "hello-pod-2 /"`,
		`GET /cart (Host: shop.demo.test)` + "\n" + `      -> 308 "Location: https://shop.demo.test:`,
		`-> 200 "shop-pod-1 /cart"   over HTTP/2.0, TLS 1.3, certificate serial`,
		"TLS to other.demo.test (no certificate for it)\n      -> remote error: tls: unrecognized name",
		`-> 200 "api-via-clusterip /items"`,
		`-> 503 "kube-nginx-sync: no ready endpoints for demo/sleepy:http\n"`,
		"service=demo/broken",
		`GET /demo/live/ -> 200 "live-pod-1 /"`,
		"GET /demo/live/ -> 404",
	}
	// One after the other: both use the same backend addresses.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{nil, []string{`msg="nginx reloaded"`}},
		{[]string{"-shape", "lua"}, []string{
			"endpoints demo/hello:http 198.18.64.1:8080 198.18.64.2:8080\n",
			`msg="wrote table"`,
			`GET /demo/hello/ -> 200 "hello-pod-3 /"`,
			"no reload for an endpoint change",
			"no reload for a new Service and its removal",
		}},
	} {
		args := append([]string{"-once", "-controlplane", os.Getenv("KNS_CONTROLPLANE_BIN"),
			"-binary", binary, "-port", strconv.Itoa(freePort(t)), "-status-port", strconv.Itoa(freePort(t)),
			"-listen-port", strconv.Itoa(freePort(t)), "-https-port", strconv.Itoa(freePort(t))}, c.args...)
		out, err := exec.Command(demo, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("demo %s: %v\n%s", strings.Join(c.args, " "), err, out)
		}
		for _, want := range append(common, c.want...) {
			if !strings.Contains(string(out), want) {
				t.Errorf("demo %s: output lacks %q:\n%s", strings.Join(c.args, " "), want, out)
			}
		}
		// After the swap, the replaced endpoint answers no more.
		if m := regexp.MustCompile(`the next 4 GETs answered from: (.*)`).FindSubmatch(out); m != nil && strings.Contains(string(m[1]), "hello-pod-2") {
			t.Errorf("demo %s: the replaced endpoint still answers: %s", strings.Join(c.args, " "), m[0])
		}
	}
}
