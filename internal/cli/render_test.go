package cli

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

const objectsFile = "../kube/testdata/objects.yaml"

func run(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRenderFromFileToStdout(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := run("render", "--from-file", objectsFile, "--output", "-")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	golden := filepath.Join("testdata", "render-from-file.conf")
	if *update {
		if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != string(want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, stdout)
	}
	if nginxBin, err := exec.LookPath("nginx"); err == nil {
		if err := nginx.ValidateSnippet(context.Background(), nginxBin, golden); err != nil {
			t.Error(err)
		}
	} else if os.Getenv("CI") != "" {
		t.Fatalf("nginx is required in CI: %v", err)
	}
}

func TestRenderValidateKeepsOldConfig(t *testing.T) {
	t.Parallel()
	nginxBin, err := exec.LookPath("nginx")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("nginx is required in CI: %v", err)
		}
		t.Skip("nginx not installed")
	}
	dir := t.TempDir()
	output := filepath.Join(dir, "default.conf")
	if err := os.WriteFile(output, []byte("# the last good config\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl := filepath.Join(dir, "broken.tmpl")
	if err := os.WriteFile(tmpl, []byte("server { no_such_directive on; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run("render", "--from-file", objectsFile, "--template", tmpl,
		"--output", output, "--validate", "--nginx", nginxBin)
	if code != ExitError {
		t.Errorf("exit %d, want %d", code, ExitError)
	}
	if !strings.Contains(stderr, `unknown directive "no_such_directive"`) {
		t.Errorf("stderr lacks nginx's message:\n%s", stderr)
	}
	got, _ := os.ReadFile(output)
	if string(got) != "# the last good config\n" {
		t.Errorf("the old config was replaced by %q", got)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left behind: %v", entries)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"render", "--selector", "a in (b"}, "--selector"},
		{[]string{"render", "--default-upstream", "pods"}, "--default-upstream"},
		{[]string{"render", "--namespace", "Bad_NS"}, "--namespace"},
		{[]string{"render", "--http-port", "0"}, "out of range"},
		{[]string{"render", "--http-address", "localhost"}, "neither an IP address"},
		{[]string{"render", "--template", "/no/such/file"}, "--template"},
		{[]string{"render", "--log-level", "loud"}, "--log-level"},
		{[]string{"render", "--timeout", "0s"}, "--timeout"},
		{[]string{"render", "--output", "-", "--validate"}, "--validate"},
		{[]string{"render", "--no-such-flag"}, "no-such-flag"},
		{[]string{"render", "extra"}, "unexpected argument"},
		{[]string{"frobnicate"}, "unknown command"},
		{nil, "Usage:"},
	}
	for _, tt := range tests {
		code, _, stderr := run(tt.args...)
		if code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, stderr, ExitUsage, tt.want)
		}
	}
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	if code, stdout, _ := run("version"); code != ExitOK || !strings.HasPrefix(stdout, "kube-nginx-sync ") {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
	if code, _, stderr := run("render", "-h"); code != ExitOK || !strings.Contains(stderr, "-selector") {
		t.Errorf("render -h: exit %d, %q", code, stderr)
	}
	if code, _, stderr := run("help"); code != ExitOK || !strings.Contains(stderr, "render") {
		t.Errorf("help: exit %d, %q", code, stderr)
	}
}
