package nginxconf_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxsyntax"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// serviceInput is everything of one Service and its EndpointSlice that the
// fuzzer controls.
type serviceInput struct {
	namespace, name                    string
	host, path, port, upstream, strip  string // annotations; "" leaves one out
	portName, endpoint, clusterIP      string
	extraKey, extraValue               string // any other annotation
	readTimeout, sendTimeout, bodySize string // annotations; "" leaves one out
	tlsSecret, redirect, hsts          string // annotations; "" leaves one out
	// secretType, cert and key make the Secret "web-tls" of the Service's
	// namespace.
	secretType string
	cert, key  []byte
}

func (in serviceInput) objects() ([]*corev1.Service, []*discoveryv1.EndpointSlice, []*corev1.Secret) {
	ann := map[string]string{}
	for k, v := range map[string]string{
		model.AnnotationHost: in.host, model.AnnotationPath: in.path, model.AnnotationPort: in.port,
		model.AnnotationUpstream: in.upstream, model.AnnotationStripPrefix: in.strip, in.extraKey: in.extraValue,
		model.AnnotationReadTimeout: in.readTimeout, model.AnnotationSendTimeout: in.sendTimeout, model.AnnotationMaxBodySize: in.bodySize,
		model.AnnotationTLSSecret: in.tlsSecret, model.AnnotationHTTPSRedirect: in.redirect, model.AnnotationHSTS: in.hsts,
	} {
		if k != "" && v != "" {
			ann[k] = v
		}
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.namespace, Name: in.name, Annotations: ann},
		Spec:       corev1.ServiceSpec{ClusterIP: in.clusterIP, Ports: []corev1.ServicePort{{Name: in.portName, Port: 80}}},
	}
	family := discoveryv1.AddressTypeIPv4
	if strings.Contains(in.endpoint, ":") {
		family = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: in.namespace, Name: "s", Labels: map[string]string{discoveryv1.LabelServiceName: in.name}},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(in.portName), Port: ptr.To[int32](8080)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{in.endpoint}}},
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.namespace, Name: "web-tls"},
		Type:       corev1.SecretType(in.secretType),
		Data:       map[string][]byte{corev1.TLSCertKey: in.cert, corev1.TLSPrivateKeyKey: in.key},
	}
	return []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slice}, []*corev1.Secret{secret}
}

// fuzzCertificate is a certificate for valid.host and another host, from
// a CA of the fuzz test's own.
var fuzzCertificate = sync.OnceValues(func() (testbed.Issued, error) {
	ca, err := testbed.NewCA("fuzz CA")
	if err != nil {
		return testbed.Issued{}, err
	}
	return ca.Issue([]string{valid.host, "other.example.com"}, testbed.IssueOptions{})
})

// valid is a Service that is routed; each seed changes one field of it.
var valid = serviceInput{
	namespace: "shop", name: "web", host: "shop.example.com", path: "/api", port: "http", upstream: "endpoints",
	strip: "true", portName: "http", endpoint: "10.0.0.1", clusterIP: "10.96.0.10",
}

// injections are the known shapes of values that try to escape their
// place in an nginx config.
var injections = []string{
	"\n", "a\nreturn 200 x;", ";", "a;b", "{", "}", "a { return 200; }", `"`, `a"b`, "'", "$host", "${host}",
	"#", "a#b", `\`, `a\"b`, "\x00", "a\x00b", "\r\n", "\t", " ", "a b",
	"ｅxample.com", "exаmple.com", "/ａpi", // full-width and Cyrillic look-alikes
	strings.Repeat("a", 100000), strings.Repeat("a.", 200) + "com",
	"/../etc/passwd", "/a/../b", "/./", "//", "/a//b", "/%2e%2e/", "/.kube-nginx-sync/version",
	"~", "~*", "^~ /", "= /", "/(.*)$", "/[a-z]+", "/a|b", "/a?b", "*", "*.", "**.a", "_", "@",
	"10.0.0.1:80", "10.0.0.1; include /etc/passwd", "::ffff:10.0.0.1", "fe80::1%eth0", "0.0.0.0", "224.0.0.1",
	"2001:db8::1", "None", "", "-1", "0", "65536", "http;", "true;", "service\n",
}

// writeCertificates writes the certificate files of cfg's HTTPS servers
// into dir, as the pipeline does.
func writeCertificates(t *testing.T, cfg model.Config, dir string) {
	t.Helper()
	for _, s := range cfg.Servers {
		if s.TLS == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, confdir.CertificateFile(s.TLS.Hash)), s.TLS.PEM.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// shapeRenderers are a renderer of each shape, with HTTPS, whose
// certificate files are in dir.
func shapeRenderers(f *testing.F, dir string) map[nginxconf.Shape]*nginxconf.Renderer {
	f.Helper()
	renderers := map[nginxconf.Shape]*nginxconf.Renderer{}
	for _, shape := range []nginxconf.Shape{nginxconf.ShapeUpstream, nginxconf.ShapeFlat, nginxconf.ShapeLua} {
		r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, StatusPort: 8099, Shape: shape, TableFile: luaTableFile,
			HTTPSPort: 443, CertificateDir: dir})
		if err != nil {
			f.Fatal(err)
		}
		renderers[shape] = r
	}
	return renderers
}

// checkConfigs renders res in the shape of each renderer and checks that
// the config parses and holds only the directives that the template
// allows for the model, and, when it routes anything and nginx is
// installed (nginxBin), that nginx accepts it (the certificate files are
// in dir). validated, when not nil, holds the config versions that nginx
// accepted already, which are not validated again. in is the fuzzer's
// input, for the messages.
func checkConfigs(t *testing.T, renderers map[nginxconf.Shape]*nginxconf.Renderer, res model.Result, dir, nginxBin string,
	validated *sync.Map, in any) {
	t.Helper()
	for shape, r := range renderers {
		data, err := r.Render(res.Config, res.Services)
		if err != nil {
			t.Fatalf("%s: render: %v", shape, err)
		}
		header, err := nginxconf.Verify(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := nginxsyntax.Parse(string(data))
		if err != nil {
			t.Fatalf("%s: the rendered config does not parse: %v\n%s", shape, err, data)
		}
		want := expectedDirectives(res.Config, header.Version, shape, dir)
		if g, w := lines(got), lines(want); g != w {
			t.Fatalf("%s: directives differ from what the template allows for the model\n got: %s\nwant: %s\ninput: %+q", shape, g, w, in)
		}
		if res.Config.Routes() == 0 || nginxBin == "" {
			continue
		}
		if validated != nil {
			if _, done := validated.Load(header.Version); done {
				continue
			}
		}
		file := filepath.Join(dir, fmt.Sprintf("%s-%s.conf", t.Name()[strings.LastIndexByte(t.Name(), '/')+1:], shape))
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		err = nginx.ValidateSnippet(context.Background(), nginxBin, file)
		os.Remove(file)
		if err != nil {
			t.Fatalf("%s: an accepted input renders a config nginx refuses: %v\ninput: %+q", shape, err, in)
		}
		if validated != nil {
			validated.Store(header.Version, true)
		}
	}
}

func FuzzServiceToConfig(f *testing.F) {
	seed := func(in serviceInput) {
		f.Add(in.namespace, in.name, in.host, in.path, in.port, in.upstream, in.strip, in.portName, in.endpoint, in.clusterIP,
			in.extraKey, in.extraValue, in.readTimeout, in.sendTimeout, in.bodySize, in.tlsSecret, in.redirect, in.hsts,
			in.secretType, in.cert, in.key)
	}
	cert, err := fuzzCertificate()
	if err != nil {
		f.Fatal(err)
	}
	seed(valid)
	// HTTPS: a valid Secret, then each TLS field changed.
	https := valid
	https.tlsSecret, https.hsts, https.secretType, https.cert, https.key = "web-tls", "max-age=60", string(corev1.SecretTypeTLS), cert.CertPEM, cert.KeyPEM
	seed(https)
	for _, change := range []func(*serviceInput){
		func(in *serviceInput) { in.redirect = "false" },
		func(in *serviceInput) { in.host = "other.example.com" },
		func(in *serviceInput) { in.host = "*.example.com" },
		func(in *serviceInput) { in.host = "" },
		func(in *serviceInput) { in.secretType = string(corev1.SecretTypeOpaque) },
		func(in *serviceInput) { in.cert, in.key = in.key, in.cert },
		func(in *serviceInput) { in.cert = append(append([]byte(nil), in.cert...), in.cert...) },
		func(in *serviceInput) {
			in.key = []byte(strings.Replace(string(in.key), "PRIVATE KEY", "EC PRIVATE KEY", 2))
		},
		func(in *serviceInput) { in.cert = nil },
		func(in *serviceInput) { in.tlsSecret = "other-tls" },
		func(in *serviceInput) { in.tlsSecret = "other-ns/web-tls" },
	} {
		in := https
		change(&in)
		seed(in)
	}
	for _, inj := range injections {
		for field := 15; field < 21; field++ {
			in := https
			switch field {
			case 15:
				in.tlsSecret = inj
			case 16:
				in.redirect = inj
			case 17:
				in.hsts = "max-age=60" + inj
			case 18:
				in.secretType = inj
			case 19:
				in.cert = []byte("-----BEGIN CERTIFICATE-----\n" + inj + "\n-----END CERTIFICATE-----\n")
			case 20:
				in.key = append([]byte(inj), in.key...)
			}
			seed(in)
		}
	}
	for _, settings := range [][3]string{{"1h", "90s", "10m"}, {"", "", "0"}, {"24h", "", ""}, {"", "1s", "1024g"}} {
		in := valid
		in.readTimeout, in.sendTimeout, in.bodySize = settings[0], settings[1], settings[2]
		seed(in)
		in.strip = "false"
		seed(in)
	}
	// Each shape alone, inside a value that is valid around it, after a
	// leading "/" (so a path gets past its first check), and after a digit
	// for the settings' annotations (the last three fields).
	for _, inj := range injections {
		for _, v := range []string{inj, "x" + inj + "y", "/x" + inj, "1" + inj} {
			for field := 0; field < 15; field++ {
				if inj != "" && (v[0] == '1') != (field >= 12) {
					continue
				}
				in := []string{valid.namespace, valid.name, valid.host, valid.path, valid.port, valid.upstream, valid.strip,
					valid.portName, valid.endpoint, valid.clusterIP, "example.com/owner", "team-a", "", "", ""}
				in[field] = v
				f.Add(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8], in[9], in[10], in[11], in[12], in[13], in[14],
					"", "", "", "", []byte(nil), []byte(nil))
			}
		}
	}
	nginxBin, _ := exec.LookPath("nginx")
	dir := f.TempDir()
	renderers := shapeRenderers(f, dir)
	f.Fuzz(func(t *testing.T, namespace, name, host, path, port, upstream, strip, portName, endpoint, clusterIP, extraKey, extraValue,
		readTimeout, sendTimeout, bodySize, tlsSecret, redirect, hsts, secretType string, cert, key []byte) {
		in := serviceInput{namespace, name, host, path, port, upstream, strip, portName, endpoint, clusterIP, extraKey, extraValue,
			readTimeout, sendTimeout, bodySize, tlsSecret, redirect, hsts, secretType, cert, key}
		svcs, slices, secrets := in.objects()
		res := model.Build(svcs, slices, model.Options{Secrets: secrets, Now: time.Now()})
		writeCertificates(t, res.Config, dir)
		checkConfigs(t, renderers, res, dir, nginxBin, nil, in)
	})
}

func lines(ds []nginxsyntax.Directive) string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return strings.Join(out, "\n")
}

// expectedDirectives is what the built-in template of shape may produce for
// cfg, written independently of the templates' text: the directives, their
// order, and their arguments, which all come from the model.
func expectedDirectives(cfg model.Config, version string, shape nginxconf.Shape, certificateDir string) []nginxsyntax.Directive {
	d := func(name string, args ...string) nginxsyntax.Directive {
		return nginxsyntax.Directive{Name: name, Args: args}
	}
	block := func(name string, args []string, body ...nginxsyntax.Directive) nginxsyntax.Directive {
		return nginxsyntax.Directive{Name: name, Args: args, Block: append([]nginxsyntax.Directive{}, body...)}
	}
	// tlsSettings are every HTTPS server's.
	tlsSettings := []nginxsyntax.Directive{d("ssl_protocols", "TLSv1.2", "TLSv1.3"),
		d("ssl_ciphers", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
		d("ssl_prefer_server_ciphers", "off"), d("ssl_session_cache", "shared:kube_nginx_sync_tls:10m"), d("ssl_session_timeout", "1d"),
		d("ssl_session_tickets", "off")}
	// settings are a route's own proxy settings, in nginx's syntax.
	settings := func(p model.ProxySettings) []nginxsyntax.Directive {
		var out []nginxsyntax.Directive
		if p.ReadTimeout != 0 {
			out = append(out, d("proxy_read_timeout", largestUnit(int64(p.ReadTimeout/time.Second), 60, "s", "m", "h")))
		}
		if p.SendTimeout != 0 {
			out = append(out, d("proxy_send_timeout", largestUnit(int64(p.SendTimeout/time.Second), 60, "s", "m", "h")))
		}
		switch {
		case p.MaxBodySize == model.NoBodyLimit:
			out = append(out, d("client_max_body_size", "0"))
		case p.MaxBodySize != 0:
			out = append(out, d("client_max_body_size", largestUnit(p.MaxBodySize, 1024, "", "k", "m", "g")))
		}
		return out
	}
	out := []nginxsyntax.Directive{block("map", []string{"$http_upgrade", "$kns_connection"}, d("default", "upgrade"), d("", ""))}
	lua := func(name string, code string) nginxsyntax.Directive {
		return nginxsyntax.Directive{Name: name, Block: []nginxsyntax.Directive{}, Lua: code}
	}
	if shape == nginxconf.ShapeLua {
		out = append(out, d("lua_shared_dict", "kube_nginx_sync", "32m"),
			lua("init_by_lua_block", "package.loaded.kube_nginx_sync = (function()\n"+luaplane.Module+"\n    end)()"),
			lua("init_worker_by_lua_block", `require("kube_nginx_sync").init_worker("`+luaTableFile+`", "kube_nginx_sync")`),
			block("upstream", []string{"kube_nginx_sync"}, d("server", "0.0.0.1"), lua("balancer_by_lua_block", `require("kube_nginx_sync").balance()`),
				d("keepalive", "320"), d("keepalive_requests", "10000"), d("keepalive_timeout", "750ms")))
	}
	endpoints := map[string][]string{}
	maxN, proxies, strips := 0, false, false
	for _, u := range cfg.Upstreams {
		var addrs []string
		for _, b := range u.Backends {
			addrs = append(addrs, b.String())
		}
		endpoints[u.Name] = addrs
		maxN = max(maxN, len(addrs))
	}
	if maxN > 1 {
		panic("expectedDirectives describes routes of one endpoint, as the fuzzer makes them")
	}
	for _, s := range cfg.Servers {
		if s.RedirectHTTPS && s.TLS == nil {
			continue // no server block routes it
		}
		for _, l := range s.Locations {
			if l.Upstream != "" {
				proxies = true
				strips = strips || l.StripPrefix
			}
		}
	}
	upstreamNames := map[string]string{}
	switch shape {
	case nginxconf.ShapeLua:
		// Routes only: the endpoints are in the endpoints file.
	case nginxconf.ShapeFlat:
		if proxies {
			out = append(out, block("map", []string{"$kns_endpoints", "$kns_endpoint"}, d("~^(?<kns_picked>[^ ]+)$", "$kns_picked")))
		}
		if strips {
			out = append(out, block("map", []string{"$kns_prefix $uri", "$kns_stripped_uri"},
				d(`~^([^ ]*) \1(?<kns_rest>/.*)$`, "$kns_rest"), d("default", "$uri")))
		}
	default:
		for _, u := range cfg.Upstreams {
			// The name: 8 hex digits, "_", the model's name.
			name := fmt.Sprintf("%08x_%s", fnv32a(u.Name), u.Name)
			upstreamNames[u.Name] = name
			out = append(out, block("upstream", []string{name}, d("server", endpoints[u.Name][0], "max_fails=2", "fail_timeout=10s"),
				d("keepalive", "64"), d("keepalive_requests", "10000"), d("keepalive_timeout", "750ms")))
		}
	}
	type serverBlock struct {
		model.Server
		https bool
	}
	var blocks []serverBlock
	for _, s := range cfg.Servers {
		if !s.RedirectHTTPS {
			blocks = append(blocks, serverBlock{Server: s})
		}
		if s.TLS != nil {
			blocks = append(blocks, serverBlock{Server: s, https: true})
		}
	}
	for _, blk := range blocks {
		s := blk.Server
		name, listen := s.Host, []string{"80"}
		if name == "" {
			name, listen = "_", []string{"80", "default_server"}
		}
		if blk.https {
			listen = []string{"443", "ssl", "http2"}
		}
		body := []nginxsyntax.Directive{d("listen", listen...), d("server_name", name)}
		if blk.https {
			file := certificateDir + "/" + confdir.CertificateFile(s.TLS.Hash)
			body = append(append(body, d("ssl_certificate", file), d("ssl_certificate_key", file)), tlsSettings...)
			if s.TLS.HSTS != "" {
				body = append(body, d("add_header", "Strict-Transport-Security", s.TLS.HSTS, "always"))
			}
		}
		body = append(body,
			d("proxy_http_version", "1.1"), d("proxy_set_header", "Connection", "$kns_connection"), d("proxy_set_header", "Upgrade", "$http_upgrade"),
			d("proxy_set_header", "Host", "$host"),
			d("proxy_set_header", "X-Real-IP", "$remote_addr"), d("proxy_set_header", "X-Forwarded-For", "$proxy_add_x_forwarded_for"),
			d("proxy_set_header", "X-Forwarded-Proto", "$scheme"),
		)
		if shape != nginxconf.ShapeFlat {
			body = append(body, d("proxy_connect_timeout", "5s"), d("proxy_next_upstream", "error", "timeout"),
				d("proxy_next_upstream_tries", "3"), d("proxy_next_upstream_timeout", "10s"))
		}
		if shape == nginxconf.ShapeLua {
			body = append(body, lua("access_by_lua_block", `require("kube_nginx_sync").access()`),
				lua("log_by_lua_block", `require("kube_nginx_sync").log()`))
		}
		var routes []locationGroup
		root, serverProxies, serverStrips := false, false, false
		// matches are the location arguments of a route: its path, exact or
		// not, and, for a prefix path whose bare path an Ingress's Prefix
		// path routes, the exact location of that bare path too.
		// An exact path that ends with "/" is a regular expression, which
		// nginx does not redirect to.
		exactArgs := func(path string) []string {
			if path != "/" && strings.HasSuffix(path, "/") {
				return []string{"~", "^" + strings.ReplaceAll(path, ".", `\.`) + "$"}
			}
			return []string{"=", path}
		}
		matches := func(l model.Location) []locationMatch {
			if l.Exact {
				return []locationMatch{{exactArgs(l.Path), l.Path, true}}
			}
			out := []locationMatch{{[]string{l.Path}, l.Path, false}}
			if l.Path != "/" && l.Bare == model.BareRoute {
				bare := strings.TrimSuffix(l.Path, "/")
				out = append(out, locationMatch{exactArgs(bare), bare, true})
			}
			return out
		}
		// redirect is the 301 location of a prefix path's bare path, if
		// it has one.
		redirect := func(l model.Location) []nginxsyntax.Directive {
			if l.Exact || l.Path == "/" || l.Bare != model.BareRedirect {
				return nil
			}
			return []nginxsyntax.Directive{block("location", []string{"=", strings.TrimSuffix(l.Path, "/")}, d("return", "301", l.Path+"$is_args$args"))}
		}
		if shape == nginxconf.ShapeLua {
			// A route with proxy settings of its own, and every route under
			// the path of such a prefix route, has a location of its own;
			// the Lua router, in location /, matches the others (and all
			// when there are none).
			var own []string
			for _, l := range s.Locations {
				if !l.Proxy.IsZero() && !l.Exact {
					own = append(own, l.Path)
				}
			}
			router := true
			for _, l := range s.Locations {
				if !(l.Exact && !l.Proxy.IsZero()) && !slices.ContainsFunc(own, func(p string) bool { return strings.HasPrefix(l.Path, p) }) {
					continue
				}
				router = router && (l.Path != "/" || l.Exact)
				target := "http://kube_nginx_sync"
				if l.StripPrefix {
					target += "/"
				}
				for _, m := range matches(l) {
					routes = append(routes, locationGroup{m, append(redirect(l), block("location", m.args,
						append(append([]nginxsyntax.Directive{d("set", "$kns_route", l.Service.String())}, settings(l.Proxy)...), d("proxy_pass", target))...))})
				}
			}
			body = append(body, sortLocations(routes)...)
			if router {
				body = append(body, block("location", []string{"/"}, d("set", "$kns_route", ""), d("proxy_pass", "http://kube_nginx_sync")))
			}
			out = append(out, block("server", nil, body...))
			continue
		}
		for _, l := range s.Locations {
			root = root || (l.Path == "/" && !l.Exact)
			var loc func(m []string) nginxsyntax.Directive
			switch {
			case l.Upstream == "":
				loc = func(m []string) nginxsyntax.Directive {
					return block("location", m, d("default_type", "text/plain"),
						d("return", "503", "kube-nginx-sync: no ready endpoints for "+l.Service.String()+"\n"))
				}
			case shape != nginxconf.ShapeFlat:
				target := "http://" + upstreamNames[l.Upstream]
				if l.StripPrefix {
					target += "/"
				}
				loc = func(m []string) nginxsyntax.Directive {
					return block("location", m, append(settings(l.Proxy), d("proxy_pass", target))...)
				}
			default:
				serverProxies = true
				serverStrips = serverStrips || l.StripPrefix
				body := []nginxsyntax.Directive{d("set", "$kns_endpoints", endpoints[l.Upstream][0])}
				if l.StripPrefix {
					body = append(body, d("set", "$kns_prefix", strings.TrimSuffix(l.Path, "/")))
				}
				switch {
				case !l.Proxy.IsZero():
					if l.StripPrefix {
						body = append(body, d("rewrite", "^", "$kns_stripped_uri", "break"))
					}
					body = append(append(body, settings(l.Proxy)...), d("proxy_pass", "http://$kns_endpoint"))
				case l.StripPrefix:
					body = append(body, d("return", "419"))
				default:
					body = append(body, d("return", "418"))
				}
				loc = func(m []string) nginxsyntax.Directive { return block("location", m, body...) }
			}
			for _, m := range matches(l) {
				routes = append(routes, locationGroup{m, append(redirect(l), loc(m.args))})
			}
		}
		if serverProxies {
			body = append(body, d("error_page", "418", "=", "@kns_proxy"),
				block("location", []string{"@kns_proxy"}, d("proxy_pass", "http://$kns_endpoint")))
		}
		if serverStrips {
			body = append(body, d("error_page", "419", "=", "@kns_proxy_strip"),
				block("location", []string{"@kns_proxy_strip"}, d("rewrite", "^", "$kns_stripped_uri", "break"), d("proxy_pass", "http://$kns_endpoint")))
		}
		body = append(body, sortLocations(routes)...)
		if !root {
			body = append(body, block("location", []string{"/"}, d("default_type", "text/plain"),
				d("return", "404", "kube-nginx-sync: no route for this host and path\n")))
		}
		out = append(out, block("server", nil, body...))
	}
	https := false
	for _, s := range cfg.Servers {
		if s.RedirectHTTPS {
			out = append(out, block("server", nil, d("listen", "80"), d("server_name", s.Host), d("return", "308", "https://$host$request_uri")))
		}
		https = https || s.RedirectHTTPS || s.TLS != nil
	}
	if https {
		out = append(out, block("server", nil, append(append([]nginxsyntax.Directive{d("listen", "443", "ssl", "http2", "default_server"), d("server_name", "_"),
			d("ssl_reject_handshake", "on")}, tlsSettings...), d("return", "421"))...))
	}
	status := []nginxsyntax.Directive{d("listen", "127.0.0.1:8099"), d("access_log", "off"),
		block("location", []string{"=", nginxconf.VersionPath}, d("default_type", "text/plain"), d("return", "200", version+"\n"))}
	if shape == nginxconf.ShapeLua {
		status = append(status, block("location", []string{"=", luaplane.ReportPath}, lua("content_by_lua_block", `require("kube_nginx_sync").report()`)))
	}
	out = append(out, block("server", nil, append(status, block("location", []string{"/"}, d("return", "404")))...))
	return out
}

// locationGroup is a location, and the redirect before it if it has one,
// with the location's arguments to sort it by.
type locationGroup struct {
	match      locationMatch
	directives []nginxsyntax.Directive
}

// locationMatch is a location's arguments, and its path.
type locationMatch struct {
	args  []string
	path  string
	exact bool
}

// sortLocations orders location groups as nginx sorts prefix locations,
// "/" below every other character and a path before the paths it
// prefixes, a prefix location before the exact one of its path.
func sortLocations(groups []locationGroup) []nginxsyntax.Directive {
	key := func(g locationGroup) string { return strings.ReplaceAll(g.match.path, "/", "\x00") }
	slices.SortStableFunc(groups, func(a, b locationGroup) int {
		if c := strings.Compare(key(a), key(b)); c != 0 {
			return c
		}
		switch {
		case a.match.exact == b.match.exact:
			return 0
		case a.match.exact:
			return 1 // an exact location after the prefix one of its path
		}
		return -1
	})
	var out []nginxsyntax.Directive
	for _, g := range groups {
		out = append(out, g.directives...)
	}
	return out
}

// luaTableFile is the Lua shape's endpoints file in these tests.
const luaTableFile = "/etc/nginx/conf.d/.kube-nginx-sync-table"

// largestUnit writes n in the largest of the units (each base times the
// one before) that divides it.
func largestUnit(n, base int64, units ...string) string {
	i := 0
	for ; i+1 < len(units) && n%base == 0; i++ {
		n /= base
	}
	return strconv.FormatInt(n, 10) + units[i]
}

// fnv32a is the 32-bit FNV-1a hash, written out here so that the test does
// not share the renderer's code.
func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
