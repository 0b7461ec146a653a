package nginxconf_test

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func aps(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

// typical has one of each kind of route.
var typical = model.Config{
	Servers: []model.Server{
		{Locations: []model.Location{
			{Path: "/ns/big/", Service: model.ServicePort{Namespace: "ns", Name: "big", Port: "http"}, Mode: model.UpstreamEndpoints, Upstream: "ns_big_http",
				Proxy: model.ProxySettings{MaxBodySize: model.NoBodyLimit}},
			{Path: "/ns/empty/", StripPrefix: true, Service: model.ServicePort{Namespace: "ns", Name: "empty", Port: "http"}, Mode: model.UpstreamEndpoints,
				Proxy: model.ProxySettings{ReadTimeout: time.Hour}},
			{Path: "/ns/socket/", StripPrefix: true, Service: model.ServicePort{Namespace: "ns", Name: "socket", Port: "ws"}, Mode: model.UpstreamEndpoints, Upstream: "ns_socket_ws",
				Proxy: model.ProxySettings{ReadTimeout: time.Hour, SendTimeout: 90 * time.Second, MaxBodySize: 10 << 20}},
			{Path: "/ns/v6/", StripPrefix: true, Service: model.ServicePort{Namespace: "ns", Name: "v6", Port: "80"}, Mode: model.UpstreamEndpoints, Upstream: "ns_v6_80"},
			{Path: "/ns/web/", StripPrefix: true, Service: model.ServicePort{Namespace: "ns", Name: "web", Port: "http"}, Mode: model.UpstreamEndpoints, Upstream: "ns_web_http"},
		}},
		{Host: "*.apps.example.com", Locations: []model.Location{
			{Path: "/", Service: model.ServicePort{Namespace: "apps", Name: "wild", Port: "http"}, Mode: model.UpstreamService, Upstream: "apps_wild_http"},
		}},
		{Host: "api.example.com", Locations: []model.Location{
			{Path: "/v1/", Service: model.ServicePort{Namespace: "api", Name: "v1", Port: "grpc-web"}, Mode: model.UpstreamEndpoints, Upstream: "api_v1_grpc-web"},
		}},
	},
	Upstreams: []model.Upstream{
		{Name: "api_v1_grpc-web", Backends: aps("10.0.1.1:9000")},
		{Name: "apps_wild_http", Backends: aps("10.96.0.20:80")},
		{Name: "ns_big_http", Backends: aps("10.0.2.1:8080")},
		{Name: "ns_socket_ws", Backends: aps("10.0.3.1:8080", "10.0.3.2:8080", "10.0.3.3:8080")},
		{Name: "ns_v6_80", Backends: aps("[fd00::1]:8080", "[fd00::2]:8080")},
		{Name: "ns_web_http", Backends: aps("10.0.0.1:8080", "10.0.0.2:8080")},
	},
}

// withHTTPS is typical with hosts served over HTTPS: one with the redirect
// and HSTS, a wildcard one without the redirect, and one whose certificate
// could not be used (its HTTPS left out, its plain HTTP redirected).
var withHTTPS = func() model.Config {
	cfg := typical
	cfg.Servers = append([]model.Server(nil), typical.Servers...)
	cfg.Servers[1].TLS = &model.TLS{Hash: strings.Repeat("1", 64)}
	cfg.Servers[2].TLS = &model.TLS{Hash: strings.Repeat("2", 64), HSTS: "max-age=31536000; includeSubDomains"}
	cfg.Servers[2].RedirectHTTPS = true
	cfg.Servers = append(cfg.Servers, model.Server{Host: "broken.example.com", RedirectHTTPS: true, Locations: []model.Location{
		{Path: "/", Service: model.ServicePort{Namespace: "web", Name: "broken", Port: "http"}, Mode: model.UpstreamEndpoints},
	}})
	return cfg
}()

// goldenCertificateDir is the certificate folder of the golden files.
const goldenCertificateDir = "/etc/nginx/conf.d"

// checkGolden compares a rendered config with testdata/<name>.conf (which
// go test -update rewrites), and checks that nginx accepts that file.
func checkGolden(t *testing.T, nginxBin, name string, got []byte) {
	t.Helper()
	golden := filepath.Join("testdata", name+".conf")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("Render differs from %s (go test -update rewrites it):\n%s", golden, got)
	}
	// Every golden file must be a config that nginx accepts.
	validateGolden(t, nginxBin, golden)
}

// validateGolden checks a golden file with nginx -t; one that names
// certificate files is checked with a real certificate in each.
func validateGolden(t *testing.T, nginxBin, golden string) {
	t.Helper()
	data, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	names := regexp.MustCompile(`\.kube-nginx-sync-tls-[0-9a-f]{64}\.pem`).FindAllString(string(data), -1)
	if len(names) > 0 {
		dir := t.TempDir()
		c := testCertificate(t)
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), slices.Concat(c.CertPEM, c.KeyPEM), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		golden = filepath.Join(dir, "golden.conf")
		if err := os.WriteFile(golden, []byte(strings.ReplaceAll(string(data), goldenCertificateDir+"/", dir+"/")), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := nginx.ValidateSnippet(context.Background(), nginxBin, golden); err != nil {
		t.Error(err)
	}
}

// testCertificate is one certificate for the tests of this package.
var testCertificate = func() func(t *testing.T) testbed.Issued {
	var once sync.Once
	var c testbed.Issued
	var err error
	return func(t *testing.T) testbed.Issued {
		once.Do(func() {
			var ca *testbed.CA
			if ca, err = testbed.NewCA("nginxconf test CA"); err == nil {
				c, err = ca.Issue([]string{"api.example.com", "*.apps.example.com"}, testbed.IssueOptions{})
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}()

func TestRenderGolden(t *testing.T) {
	t.Parallel()
	nginxBin := testbed.NginxBinary(t)
	https := func(o nginxconf.Options) nginxconf.Options {
		o.HTTPSPort, o.CertificateDir = 443, goldenCertificateDir
		return o
	}
	tests := []struct {
		name     string
		opts     nginxconf.Options
		cfg      model.Config
		services int
	}{
		{name: "empty", opts: nginxconf.Options{HTTPPort: 80}, cfg: model.Config{Servers: []model.Server{{}}}},
		{name: "typical", opts: nginxconf.Options{HTTPPort: 80}, cfg: typical, services: 5},
		{name: "flat-empty", opts: nginxconf.Options{HTTPPort: 80, Shape: nginxconf.ShapeFlat}, cfg: model.Config{Servers: []model.Server{{}}}},
		{name: "flat-typical", opts: nginxconf.Options{HTTPPort: 80, Shape: nginxconf.ShapeFlat}, cfg: typical, services: 5},
		{name: "flat-status-server", opts: nginxconf.Options{HTTPPort: 80, StatusPort: 8099, Shape: nginxconf.ShapeFlat}, cfg: typical, services: 5},
		{name: "status-server", opts: nginxconf.Options{HTTPPort: 80, StatusPort: 8099}, cfg: typical, services: 5},
		{name: "lua-empty", opts: nginxconf.Options{HTTPPort: 80, Shape: nginxconf.ShapeLua, TableFile: "/etc/nginx/conf.d/.kube-nginx-sync-table"},
			cfg: model.Config{Servers: []model.Server{{}}}},
		{name: "lua-typical", opts: nginxconf.Options{HTTPPort: 80, StatusPort: 8099, Shape: nginxconf.ShapeLua, TableFile: "/etc/nginx/conf.d/.kube-nginx-sync-table"},
			cfg: typical, services: 5},
		{name: "listen-addresses", opts: nginxconf.Options{HTTPPort: 8080, HTTPAddresses: []string{"127.0.0.1", "::1"}}, cfg: typical, services: 5},
		{name: "https", opts: https(nginxconf.Options{HTTPPort: 80, StatusPort: 8099}), cfg: withHTTPS, services: 6},
		{name: "https-no-host-asks", opts: https(nginxconf.Options{HTTPPort: 80}), cfg: typical, services: 5},
		{name: "https-listen-addresses", opts: nginxconf.Options{HTTPPort: 8080, HTTPAddresses: []string{"127.0.0.1", "::1"},
			HTTPSPort: 8443, CertificateDir: goldenCertificateDir + "/"}, cfg: withHTTPS, services: 6},
		{name: "flat-https", opts: https(nginxconf.Options{HTTPPort: 80, Shape: nginxconf.ShapeFlat}), cfg: withHTTPS, services: 6},
		{name: "lua-https", opts: https(nginxconf.Options{HTTPPort: 80, StatusPort: 8099, Shape: nginxconf.ShapeLua, TableFile: "/etc/nginx/conf.d/.kube-nginx-sync-table"}),
			cfg: withHTTPS, services: 6},
		{name: "custom-template", opts: nginxconf.Options{HTTPPort: 80, TemplateName: "custom.tmpl", Template: `# {{.Routes}} routes
{{- range .Servers}}
server {
    listen {{index .Listen 0}};
    server_name {{if .Host}}{{.Host}}{{else}}_{{end}};
{{- range .Locations}}
    location {{.Path}} { add_header X-Service {{quote .Service.String}}; return 204; }
{{- end}}
}
{{- end}}
`}, cfg: typical, services: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := nginxconf.NewRenderer(tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Render(tt.cfg, tt.services)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := nginxconf.Verify(got); err != nil {
				t.Errorf("Verify: %v", err)
			}
			checkGolden(t, nginxBin, tt.name, got)
		})
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	t.Parallel()
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := r.Render(typical, 5)
	b, _ := r.Render(typical, 5)
	if string(a) != string(b) {
		t.Error("two renders of one Config differ")
	}
}

func TestNewRendererRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts nginxconf.Options
		err  string
	}{
		{"port zero", nginxconf.Options{HTTPPort: 0}, "out of range"},
		{"port too big", nginxconf.Options{HTTPPort: 70000}, "out of range"},
		{"hostname as address", nginxconf.Options{HTTPPort: 80, HTTPAddresses: []string{"localhost"}}, "neither an IP address nor *"},
		{"injection as address", nginxconf.Options{HTTPPort: 80, HTTPAddresses: []string{"1.2.3.4; include /etc/passwd"}}, "neither"},
		{"zone", nginxconf.Options{HTTPPort: 80, HTTPAddresses: []string{"fe80::1%lo"}}, "neither"},
		{"bad template", nginxconf.Options{HTTPPort: 80, Template: "{{.Nope"}, "parse template"},
		{"status port out of range", nginxconf.Options{HTTPPort: 80, StatusPort: 70000}, "status port"},
		{"status port is the http port", nginxconf.Options{HTTPPort: 80, StatusPort: 80}, "also the http port"},
		{"unknown shape", nginxconf.Options{HTTPPort: 80, Shape: "round"}, `shape "round"`},
		{"https port out of range", nginxconf.Options{HTTPPort: 80, HTTPSPort: 70000, CertificateDir: "/c"}, "https port 70000 is out of range"},
		{"https port is the http port", nginxconf.Options{HTTPPort: 80, HTTPSPort: 80, CertificateDir: "/c"}, "also the http port"},
		{"https port is the status port", nginxconf.Options{HTTPPort: 80, StatusPort: 8443, HTTPSPort: 8443, CertificateDir: "/c"}, "also the status port"},
		{"https without a certificate folder", nginxconf.Options{HTTPPort: 80, HTTPSPort: 443}, "certificate folder"},
		{"relative certificate folder", nginxconf.Options{HTTPPort: 80, HTTPSPort: 443, CertificateDir: "conf.d"}, "certificate folder"},
		{"injection in the certificate folder", nginxconf.Options{HTTPPort: 80, HTTPSPort: 443, CertificateDir: "/c; include /etc/passwd"}, "certificate folder"},
	}
	for _, tt := range tests {
		if _, err := nginxconf.NewRenderer(tt.opts); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err = %v, want it to contain %q", tt.name, err, tt.err)
		}
	}
}

func TestRenderTemplateErrors(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"{{.NoSuchField}}",
		`{{quote "$host"}}`,
		"{{quote \"a\\nb\"}}",
	} {
		r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, Template: text})
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if out, err := r.Render(typical, 1); err == nil {
			t.Errorf("template %q rendered %q, want an error", text, out)
		}
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a;b{c}#d", `"a;b{c}#d"`},
		{"ü", `"ü"`},
	}
	for _, tt := range tests {
		if got, err := nginxconf.Quote(tt.in); err != nil || got != tt.want {
			t.Errorf("Quote(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"$x", "a\nb", "a\x00b", "a\rb", "\x7f"} {
		if got, err := nginxconf.Quote(bad); err == nil {
			t.Errorf("Quote(%q) = %q, want an error", bad, got)
		}
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	r, _ := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
	file, _ := r.RenderFile(typical, 5)
	good := file.Data
	if h, err := nginxconf.Verify(good); err != nil || h.Version != file.Version {
		t.Fatalf("Verify(rendered) = %+v, %v; want the version RenderFile returned, %.12s", h, err, file.Version)
	}
	if _, err := nginxconf.Verify(good[:len(good)-10]); err == nil {
		t.Error("Verify accepted a truncated file")
	}
	edited := strings.Replace(string(good), "10.0.0.1", "10.0.0.9", 1)
	if _, err := nginxconf.Verify([]byte(edited)); err == nil {
		t.Error("Verify accepted an edited file")
	}
	if _, err := nginxconf.Verify([]byte("server {}\n")); err != nginxconf.ErrNoHeader {
		t.Errorf("Verify(hand-written) = %v, want nginxconf.ErrNoHeader", err)
	}

	// With a status server the file names its own version in its body.
	r, _ = nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, StatusPort: 8099})
	withStatus, _ := r.Render(typical, 5)
	h, err := nginxconf.Verify(withStatus)
	if err != nil {
		t.Fatalf("Verify(with status) = %v", err)
	}
	if h.Status != "127.0.0.1:8099" || !strings.Contains(string(withStatus), `return 200 "`+h.Version+`\n";`) {
		t.Errorf("header %+v; the status server does not answer the header's version:\n%s", h, withStatus)
	}
	tampered := strings.Replace(string(withStatus), `return 200 "`+h.Version, `return 200 "`+strings.Repeat("0", 64), 1)
	if _, err := nginxconf.Verify([]byte(tampered)); err == nil {
		t.Error("Verify accepted a file whose status server answers another version")
	}
}

// TestDefaultWriterMatchesTemplate: the built-in configs are written by Go
// code for speed; each shape's embedded template is its reference and must
// give the same bytes.
func TestDefaultWriterMatchesTemplate(t *testing.T) {
	t.Parallel()
	configs := map[string]model.Config{"empty": {Servers: []model.Server{{}}}, "typical": typical, "https": withHTTPS}
	for _, n := range []int{1, 2, 3, 7, 300, 10001} {
		configs[fmt.Sprintf("%d-endpoints", n)] = manyEndpoints(n)
	}
	var options []nginxconf.Options
	for _, shape := range []nginxconf.Shape{"", nginxconf.ShapeUpstream, nginxconf.ShapeFlat} {
		options = append(options, nginxconf.Options{HTTPPort: 80, Shape: shape},
			nginxconf.Options{HTTPPort: 8080, StatusPort: 8099, HTTPAddresses: []string{"127.0.0.1", "::1"}, Shape: shape},
			nginxconf.Options{HTTPPort: 80, HTTPSPort: 443, CertificateDir: "/etc/nginx/conf.d", Shape: shape},
			nginxconf.Options{HTTPPort: 8080, StatusPort: 8099, HTTPAddresses: []string{"127.0.0.1", "::1"}, HTTPSPort: 8443, CertificateDir: "/x", Shape: shape})
	}
	for _, opts := range options {
		fast, err := nginxconf.NewRenderer(opts)
		if err != nil {
			t.Fatal(err)
		}
		opts.Template = nginxconf.ShapeTemplate(opts.Shape)
		slow, err := nginxconf.NewRenderer(opts)
		if err != nil {
			t.Fatal(err)
		}
		for name, cfg := range configs {
			if name == "https" && opts.HTTPSPort == 0 {
				continue
			}
			a, err := fast.Render(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			b, err := slow.Render(cfg, 3)
			if err != nil {
				t.Fatal(err)
			}
			if string(a) != string(b) {
				t.Errorf("%s %+v: the default writer and the default template differ:\n--- writer\n%s\n--- template\n%s", name, opts, a, b)
			}
		}
	}
}

// manyEndpoints is a config of two routes, one stripping its path, whose
// Service has n endpoints.
func manyEndpoints(n int) model.Config {
	var backends []netip.AddrPort
	for i := range n {
		backends = append(backends, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 8080))
	}
	svc := model.ServicePort{Namespace: "ns", Name: "many", Port: "http"}
	return model.Config{
		Servers: []model.Server{{Locations: []model.Location{
			{Path: "/ns/many/", StripPrefix: true, Service: svc, Mode: model.UpstreamEndpoints, Upstream: "ns_many_http"},
			{Path: "/ns/many-too/", Service: svc, Mode: model.UpstreamEndpoints, Upstream: "ns_many_http"},
			{Path: "/ns/many-tuned/", StripPrefix: true, Service: svc, Mode: model.UpstreamEndpoints, Upstream: "ns_many_http",
				Proxy: model.ProxySettings{SendTimeout: 2 * time.Minute, MaxBodySize: 1536}},
		}}},
		Upstreams: []model.Upstream{{Name: "ns_many_http", Backends: backends}},
	}
}

// BenchmarkRender renders the model of n Services with each shape's writer
// and, as its baseline, with the same template run by text/template.
func BenchmarkRender(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		services, slices := testbed.Cluster(n, 3)
		res := model.Build(services, slices, model.Options{})
		for _, engine := range []string{"writer", "template", "flat-writer", "flat-template"} {
			b.Run(fmt.Sprintf("services=%d/%s", n, engine), func(b *testing.B) {
				opts := nginxconf.Options{HTTPPort: 80, StatusPort: 8099}
				if strings.HasPrefix(engine, "flat") {
					opts.Shape = nginxconf.ShapeFlat
				}
				if strings.HasSuffix(engine, "template") {
					opts.Template = nginxconf.ShapeTemplate(opts.Shape)
				}
				r, err := nginxconf.NewRenderer(opts)
				if err != nil {
					b.Fatal(err)
				}
				var size int
				b.ReportAllocs()
				for b.Loop() {
					data, err := r.Render(res.Config, res.Services)
					if err != nil {
						b.Fatal(err)
					}
					size = len(data)
				}
				b.ReportMetric(float64(size), "config-bytes")
			})
		}
	}
}

// TestRenderRefusesHTTPSWithoutPort: a renderer without an HTTPS port does
// not render a host that asks for HTTPS as plain HTTP.
func TestRenderRefusesHTTPSWithoutPort(t *testing.T) {
	t.Parallel()
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Render(withHTTPS, 6); err == nil || !strings.Contains(err.Error(), "no HTTPS port") {
		t.Errorf("Render = %v, want refused", err)
	}
}
