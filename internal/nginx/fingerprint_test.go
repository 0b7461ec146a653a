package nginx

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustFingerprint(t *testing.T, dir string) string {
	t.Helper()
	fp, err := Fingerprint(dir)
	if err != nil {
		t.Fatal(err)
	}
	return fp
}

func TestFingerprint(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "default.conf"), "server {}\n")
	base := mustFingerprint(t, dir)

	// Hidden files (temporary files, our status file, last-good) and
	// folders do not count.
	write(t, filepath.Join(dir, ".default.conf.tmp-123"), "half")
	write(t, filepath.Join(dir, StatusFile), "{}")
	write(t, filepath.Join(dir, "sub", "x.conf"), "ignored")
	if got := mustFingerprint(t, dir); got != base {
		t.Error("hidden files or folders changed the fingerprint")
	}
	// Content and names do.
	write(t, filepath.Join(dir, "default.conf"), "server { }\n")
	changed := mustFingerprint(t, dir)
	if changed == base {
		t.Error("a content change kept the fingerprint")
	}
	write(t, filepath.Join(dir, "extra.conf"), "")
	if mustFingerprint(t, dir) == changed {
		t.Error("a new file kept the fingerprint")
	}
}

// TestFingerprintConfigMap: the kubelet's layout, read through its
// symlinks; a ..data swap changes the fingerprint once.
func TestFingerprintConfigMap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "..v1", "default.conf"), "v1")
	if err := os.Symlink("..v1", filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/default.conf", filepath.Join(dir, "default.conf")); err != nil {
		t.Fatal(err)
	}
	v1 := mustFingerprint(t, dir)
	write(t, filepath.Join(dir, "..v2", "default.conf"), "v2")
	if mustFingerprint(t, dir) != v1 {
		t.Error("a new hidden version folder changed the fingerprint before the swap")
	}
	if err := os.Symlink("..v2", filepath.Join(dir, "..data_tmp")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	if mustFingerprint(t, dir) == v1 {
		t.Error("the ..data swap kept the fingerprint")
	}
}

func TestVersions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "hand.conf"), "server {}\n")
	if _, ok := expectedVersion(dir); ok {
		t.Error("a hand-written config has a version")
	}
	if _, ok := currentVersion(dir); ok {
		t.Error("a hand-written config has a current version")
	}
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, StatusPort: 8099})
	if err != nil {
		t.Fatal(err)
	}
	data, err := r.Render(model.Config{Servers: []model.Server{{}}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "default.conf"), string(data))
	h, ok := expectedVersion(dir)
	if !ok || h.Status != "127.0.0.1:8099" {
		t.Fatalf("expectedVersion = %+v, %v", h, ok)
	}
	if v, ok := currentVersion(dir); !ok || v != h.Version {
		t.Errorf("currentVersion = %q, %v; want %q", v, ok, h.Version)
	}
	// A torn file has no expected version (its body does not match).
	write(t, filepath.Join(dir, "default.conf"), string(data[:len(data)-20]))
	if _, ok := expectedVersion(dir); ok {
		t.Error("a torn file has an expected version")
	}
}

func TestSetsDaemon(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want bool
	}{
		{nil, false},
		{[]string{"-p", "/x", "-c", "/x/nginx.conf"}, false},
		{[]string{"-g", "daemon off; pid /x.pid;"}, true},
		{[]string{"-g", "pid /x.pid;"}, false},
		{[]string{"-g"}, false},
	}
	for _, tt := range tests {
		if got := setsDaemon(tt.args); got != tt.want {
			t.Errorf("setsDaemon(%q) = %v", tt.args, got)
		}
	}
}

func TestParseValidateMode(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"auto", "always", "never"} {
		if _, err := ParseValidateMode(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if _, err := ParseValidateMode("sometimes"); err == nil {
		t.Error("sometimes accepted")
	}
}
