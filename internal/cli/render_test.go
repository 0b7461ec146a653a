package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
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
	if err := nginx.ValidateSnippet(context.Background(), testbed.NginxBinary(t), golden); err != nil {
		t.Error(err)
	}
}

func TestRenderValidateKeepsOldConfig(t *testing.T) {
	t.Parallel()
	nginxBin := testbed.NginxBinary(t)
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

func TestDiff(t *testing.T) {
	t.Parallel()
	output := filepath.Join(t.TempDir(), "default.conf")
	args := []string{"diff", "--from-file", objectsFile, "--output", output}
	if code, stdout, _ := run(args...); code != ExitDiffers || !strings.Contains(stdout, "(missing)") ||
		!strings.Contains(stdout, "+ upstream c64309a1_shop_web_http: server 10.1.0.5:8080 max_fails=2 fail_timeout=10s;") ||
		!strings.Contains(stdout, "+ server shop.example.com location /shop/web/: proxy_pass http://c64309a1_shop_web_http/;") {
		t.Errorf("diff against a missing file: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := run("render", "--from-file", objectsFile, "--output", output); code != ExitOK {
		t.Fatal(stderr)
	}
	if code, stdout, _ := run(args...); code != ExitOK || !strings.Contains(stdout, "is up to date") {
		t.Errorf("diff after render: exit %d\n%s", code, stdout)
	}
	live, _ := os.ReadFile(output)
	if err := os.WriteFile(output, []byte(strings.Replace(string(live), "10.1.0.5:8080", "10.1.0.9:8080", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "~ upstream c64309a1_shop_web_http: server 10.1.0.9:8080 max_fails=2 fail_timeout=10s; keepalive 64; keepalive_requests 10000; keepalive_timeout 750ms;  =>  " +
		"server 10.1.0.5:8080 max_fails=2 fail_timeout=10s; keepalive 64; keepalive_requests 10000; keepalive_timeout 750ms;\n"
	if code, stdout, _ := run(args...); code != ExitDiffers || !strings.HasSuffix(stdout, want) {
		t.Errorf("diff after an edit: exit %d\n%s", code, stdout)
	}
}

// TestDiffLuaShape: with --shape lua, diff compares the table file's routes
// and endpoints too.
func TestDiffLuaShape(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	output := filepath.Join(dir, "default.conf")
	args := []string{"diff", "--from-file", objectsFile, "--output", output, "--shape", "lua"}
	if code, stdout, _ := run(args...); code != ExitDiffers ||
		!strings.Contains(stdout, "--- "+filepath.Join(dir, luaplane.FileName)+" (missing)") ||
		!strings.Contains(stdout, "+ endpoints shop/web:http: 10.1.0.5:8080") ||
		!strings.Contains(stdout, "+ route shop.example.com /shop/web/: shop/web:http (prefix stripped)") {
		t.Errorf("diff against missing files: exit %d\n%s", code, stdout)
	}
	if code, _, stderr := run("render", "--from-file", objectsFile, "--output", output, "--shape", "lua"); code != ExitOK {
		t.Fatal(stderr)
	}
	if code, stdout, _ := run(args...); code != ExitOK || !strings.Contains(stdout, "is up to date") {
		t.Errorf("diff after render: exit %d\n%s", code, stdout)
	}
	// The table alone changes: an endpoint replaced.
	table, _, err := luaplane.Read(filepath.Join(dir, luaplane.FileName))
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range table.Endpoints {
		if e.Key == "shop/web:http" {
			table.Endpoints[i].Addrs = []netip.AddrPort{netip.MustParseAddrPort("10.1.0.9:8080")}
		}
	}
	files, err := luaplane.Encode(table)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := luaplane.Write(filepath.Join(dir, luaplane.FileName), files); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := run(args...)
	if want := "~ endpoints shop/web:http: 10.1.0.9:8080  =>  10.1.0.5:8080\n"; code != ExitDiffers || !strings.HasSuffix(stdout, want) ||
		strings.Contains(stdout, "--- "+output) {
		t.Errorf("diff after an endpoint change: exit %d\n%s\nwant only the table's entry %q", code, stdout, want)
	}
}

func TestExplainFromFile(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"shop/web":      "  routed: host shop.example.com path /shop/web/ -> port http (endpoints, prefix stripped): 10.1.0.5:8080\n",
		"shop/internal": "  not routed: it has no labels, which do not match the selector \"kube-nginx-sync.io/expose=true\"\n",
		"shop/api":      "  routed: host (default server) path /shop/api/ -> port http (service, prefix stripped): 10.96.0.12:8080\n",
	}
	for ref, want := range tests {
		code, stdout, stderr := run("explain", "--from-file", objectsFile, ref)
		if code != ExitOK || stdout != "Service "+ref+"\n"+want {
			t.Errorf("explain %s: exit %d %q %s", ref, code, stdout, stderr)
		}
	}
	if code, _, _ := run("explain", "--from-file", objectsFile, "shop/nope"); code != ExitError {
		t.Errorf("explain of a missing Service: exit %d", code)
	}
	if code, _, _ := run("explain", "--from-file", objectsFile, "no-slash"); code != ExitUsage {
		t.Errorf("explain no-slash: exit %d", code)
	}
}

// TestRenderShapes: --shape picks the built-in template, and refuses what is
// not a shape.
func TestRenderShapes(t *testing.T) {
	t.Parallel()
	for shape, want := range map[string]string{"upstream": "proxy_pass http://c64309a1_shop_web_http/;", "flat": "return 419;"} {
		code, stdout, stderr := run("render", "--from-file", objectsFile, "--output", "-", "--shape", shape)
		if code != ExitOK || !strings.Contains(stdout, want) || !strings.Contains(stdout, `# Shape "`+shape+`"`) {
			t.Errorf("--shape %s: exit %d, %s\n%s", shape, code, stderr, stdout)
		}
	}
	if code, _, stderr := run("render", "--from-file", objectsFile, "--output", "-", "--shape", "round"); code != ExitUsage ||
		!strings.Contains(stderr, `--shape "round": want upstream or flat`) {
		t.Errorf("--shape round: exit %d, %s", code, stderr)
	}
}

// TestExplainShowsProxySettings: explain shows a route's own proxy settings
// next to the defaults of the others.
func TestExplainShowsProxySettings(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := run("explain", "--from-file", filepath.Join("testdata", "proxy-settings.yaml"), "chat/ws")
	want := "Service chat/ws\n" +
		"  routed: host (default server) path /chat/ws/ -> port http (endpoints, prefix stripped): 10.1.0.7:8080\n" +
		"    proxy: read timeout 1h, send timeout 60s (default), max body size no limit\n"
	if code != ExitOK || stdout != want {
		t.Errorf("exit %d, %s\n%q\nwant %q", code, stderr, stdout, want)
	}
}

// TestRenderLuaShape: the lua shape writes the config, which names the
// endpoints file beside it, and that file, which holds the endpoints;
// nginx -t (with the Lua module) accepts the config.
func TestRenderLuaShape(t *testing.T) {
	t.Parallel()
	nginxBin := testbed.NginxBinary(t)
	dir := t.TempDir()
	output := filepath.Join(dir, "default.conf")
	code, _, stderr := run("render", "--from-file", objectsFile, "--output", output, "--shape", "lua", "--validate", "--nginx", nginxBin)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	config, err := os.ReadFile(output)
	if err != nil {
		t.Fatal(err)
	}
	tableFile := filepath.Join(dir, luaplane.FileName)
	if !strings.Contains(string(config), `init_worker("`+tableFile+`"`) || strings.Contains(string(config), "upstream c64309a1") {
		t.Errorf("the config does not read %s, or has endpoints of its own:\n%s", tableFile, config)
	}
	table, _, err := luaplane.Read(tableFile)
	if err != nil || len(table.Routes) == 0 || len(table.Endpoints) < len(table.Routes) {
		t.Fatalf("table file: %v, %d routes", err, len(table.Routes))
	}
	for _, r := range table.Routes {
		if strings.Contains(string(config), "location "+r.Path+" {") && r.Path != "/" {
			t.Errorf("route %s of the table file is in the config too", r.Path)
		}
	}
}

// tlsObjectsFile writes a file of a Service that names a TLS Secret, the
// Secret, and a Service on another host that names a missing one.
func tlsObjectsFile(t *testing.T) string {
	t.Helper()
	ca, err := testbed.NewCA("cli test CA")
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue([]string{"shop.example.com"}, testbed.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	path := filepath.Join(t.TempDir(), "objects.yaml")
	text := `apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata:
    namespace: shop
    name: web
    labels: {kube-nginx-sync.io/expose: "true"}
    annotations: {kube-nginx-sync.io/host: shop.example.com, kube-nginx-sync.io/tls-secret: web-tls, kube-nginx-sync.io/hsts: max-age=60}
  spec: {ports: [{name: http, port: 80}]}
- apiVersion: v1
  kind: Service
  metadata:
    namespace: shop
    name: blog
    labels: {kube-nginx-sync.io/expose: "true"}
    annotations: {kube-nginx-sync.io/host: blog.example.com, kube-nginx-sync.io/tls-secret: missing}
  spec: {ports: [{name: http, port: 80}]}
- apiVersion: v1
  kind: Secret
  metadata: {namespace: shop, name: web-tls}
  type: kubernetes.io/tls
  data: {tls.crt: ` + b64(c.CertPEM) + `, tls.key: ` + b64(c.KeyPEM) + `}
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRenderHTTPS: render writes the certificate file beside the config,
// which nginx accepts; the missing Secret is logged; explain says both;
// with --https-port 0 no host is served over HTTPS.
func TestRenderHTTPS(t *testing.T) {
	t.Parallel()
	nginxBin := testbed.NginxBinary(t)
	objects := tlsObjectsFile(t)
	dir := t.TempDir()
	output := filepath.Join(dir, "default.conf")
	code, _, stderr := run("render", "--from-file", objects, "--output", output, "--https-port", "8443", "--validate", "--nginx", nginxBin)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	config, _ := os.ReadFile(output)
	files := confdir.CertificateFilesNamed(config)
	if len(files) != 2 {
		t.Fatalf("the config names %q, want one file twice:\n%s", files, config)
	}
	if info, err := os.Stat(filepath.Join(dir, files[0])); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("certificate file: %v", err)
	}
	for _, want := range []string{"listen 8443 ssl http2;", "return 308 https://$host:8443$request_uri;", `add_header Strict-Transport-Security "max-age=60" always;`} {
		if !strings.Contains(string(config), want) {
			t.Errorf("config lacks %q", want)
		}
	}
	if !strings.Contains(stderr, `msg="https problem" service=shop/blog reason=TLSSecretNotFound`) || !strings.Contains(stderr, "https_hosts=1") {
		t.Errorf("stderr:\n%s", stderr)
	}

	code, stdout, stderr := run("explain", "--from-file", objects, "shop/web")
	if code != ExitOK || !strings.Contains(stdout, "  https: host shop.example.com, with the certificate of Secret shop/web-tls (serial ") ||
		!strings.Contains(stdout, "; plain HTTP redirects to HTTPS (308); HSTS max-age=60") {
		t.Errorf("explain shop/web: exit %d\n%s%s", code, stdout, stderr)
	}
	// With --validate, explain checks the config with its certificate.
	code, stdout, stderr = run("explain", "--from-file", objects, "--validate", "--nginx", nginxBin, "shop/web")
	if code != ExitOK || !strings.Contains(stdout, "  https: host shop.example.com, with the certificate of Secret shop/web-tls") {
		t.Errorf("explain --validate shop/web: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, _ = run("explain", "--from-file", objects, "shop/blog")
	if code != ExitOK || !strings.Contains(stdout, "  https: TLSSecretNotFound: HTTPS of host blog.example.com left out: Secret shop/missing: not found") {
		t.Errorf("explain shop/blog: exit %d\n%s", code, stdout)
	}

	code, stdout, stderr = run("render", "--from-file", objects, "--output", "-", "--https-port", "0")
	if code != ExitOK || strings.Contains(stdout, "ssl") || !strings.Contains(stderr, "reason=HTTPSDisabled") {
		t.Errorf("--https-port 0: exit %d, stderr:\n%s", code, stderr)
	}
	if code, _, stderr = run("render", "--from-file", objects, "--output", "-", "--https-port", "80"); code != ExitUsage || !strings.Contains(stderr, "--https-port: https port 80 is also the http port") {
		t.Errorf("--https-port 80: exit %d: %s", code, stderr)
	}
}

// TestDiffHTTPS: a host's HTTPS server and its plain HTTP one are
// entries of their own: a renewal changes the HTTPS one only.
func TestDiffHTTPS(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("../nginxconf/testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	before := read("https.conf")
	after := []byte(strings.ReplaceAll(string(before), strings.Repeat("2", 64), strings.Repeat("3", 64)))
	changes, err := diffConfigs(before, after)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 || !strings.HasPrefix(changes[0], "~ server api.example.com (https): listen 443 ssl http2;") || !strings.Contains(changes[0], strings.Repeat("3", 64)) {
		t.Errorf("changes %q, want the HTTPS server of api.example.com changed", changes)
	}
}
