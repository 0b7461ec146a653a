package cli

import (
	"strings"
	"testing"
)

const ingressesFile = "testdata/ingresses.yaml"

func TestRenderIngressesFromFile(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := run("render", "--from-file", ingressesFile, "--output", "-", "--ingress-class", "kns")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"server_name shop.example.com;", "location = /login {", "location = /api {", "location /api/ {",
		"client_max_body_size 8m;", `return 503 "kube-nginx-sync: no ready endpoints for shop/gone:80\n";`, "# shop/web:http (endpoints), Ingress shop/front"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the config lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{`path="shop.example.com\"/bad;\" (Prefix)"`, "reason=BackendNotFound", "configuration-snippet (snippets are never applied)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the log lacks %q:\n%s", want, stderr)
		}
	}
	// Without --ingress-class, no Ingress.
	code, stdout, _ = run("render", "--from-file", ingressesFile, "--output", "-")
	if code != ExitOK || strings.Contains(stdout, "shop.example.com") {
		t.Errorf("exit %d, and an Ingress routed without --ingress-class:\n%s", code, stdout)
	}
}

func TestExplainIngress(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := run("explain", "ingress/shop/front", "--from-file", ingressesFile, "--ingress-class", "kns")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	want := `Ingress shop/front
  class: kns (spec.ingressClassName)
  routed: host (default server) path / (prefix) -> shop/web:http (endpoints): 10.0.0.1:8080
    proxy: read timeout 60s (default), send timeout 60s (default), max body size 8m
  routed: host shop.example.com path / (prefix) -> shop/web:http (endpoints): 10.0.0.1:8080
    proxy: read timeout 60s (default), send timeout 60s (default), max body size 8m
  routed: host shop.example.com path /api/ (prefix, and /api) -> shop/web:http (endpoints): 10.0.0.1:8080
    proxy: read timeout 60s (default), send timeout 60s (default), max body size 8m
  routed: host shop.example.com path /gone/ (prefix, and /gone) -> shop/gone:80 (endpoints): no ready endpoints: answers 503
    proxy: read timeout 60s (default), send timeout 60s (default), max body size 8m
  routed: host shop.example.com path /login (exact) -> shop/web:http (endpoints): 10.0.0.1:8080
    proxy: read timeout 60s (default), send timeout 60s (default), max body size 8m
  not routed: shop.example.com"/bad;" (Prefix): InvalidIngress: path "/bad;": character ';' at 4 is not allowed (letters, digits and -._~/ are)
  warning: BackendNotFound: Service shop/gone not found: shop.example.com/gone (Prefix) answers 503
  ignored annotations:
    nginx.ingress.kubernetes.io/configuration-snippet (snippets are never applied)
`
	if stdout != want {
		t.Errorf("explain =\n%s\nwant\n%s", stdout, want)
	}
	code, stdout, stderr = run("explain", "ingress/shop/secure", "--from-file", ingressesFile, "--ingress-class", "kns")
	want = `Ingress shop/secure
  class: kns (spec.ingressClassName)
  routed: host secure.example.com path / (prefix) -> shop/web:http (endpoints): 10.0.0.1:8080
  https: host secure.example.com is not served over HTTPS, and plain HTTP redirects to it (see below)
  warning: TLSSecretNotFound: HTTPS of host secure.example.com left out: Secret shop/missing-tls: not found (or not of type kubernetes.io/tls) (plain HTTP still redirects to HTTPS)
`
	if code != ExitOK || stdout != want {
		t.Errorf("explain = exit %d\n%s%s\nwant\n%s", code, stdout, stderr, want)
	}
	for _, tt := range []struct{ args, want string }{
		{"ingress/shop/theirs --ingress-class kns", "not routed: its IngressClass is nginx (spec.ingressClassName), not kns"},
		{"ingress/shop/front", "not routed: no Ingress is read (--ingress-class is not set)"},
		{"ingress/shop/front --ingress-class other", "not routed: its IngressClass is kns (spec.ingressClassName), not other"},
		{"ingress/shop/front --ingress-class kns -n blog", "not routed: namespace shop is not watched (--namespace blog)"},
	} {
		_, stdout, stderr := run(append([]string{"explain", "--from-file", ingressesFile}, strings.Fields(tt.args)...)...)
		if !strings.Contains(stdout, tt.want) {
			t.Errorf("explain %s = %s%s, want %q", tt.args, stdout, stderr, tt.want)
		}
	}
	if code, _, stderr := run("explain", "ingress/shop", "--from-file", ingressesFile); code != ExitUsage {
		t.Errorf("explain ingress/shop: exit %d, %s", code, stderr)
	}
	if code, _, stderr := run("render", "--from-file", ingressesFile, "--output", "-", "--ingress-class", "Bad_Class"); code != ExitUsage ||
		!strings.Contains(stderr, "--ingress-class") {
		t.Errorf("a bad class: exit %d, %s", code, stderr)
	}
}

func TestPublishFlagsAreChecked(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ args, want string }{
		{"--publish-address 198.18.0.1", "need --ingress-class"},
		{"--ingress-class kns --publish-address 198.18.0.1 --publish-service a/b", "one or the other"},
		{"--ingress-class kns --publish-address 198.18.0.1:80", "--publish-address"},
		{"--ingress-class kns --publish-service nginx", "--publish-service"},
		{"--ingress-class kns --publish-service a/b --election-lease-duration 10ms", "--election-lease-duration"},
	} {
		code, _, stderr := run(append([]string{"watch", "--output", t.TempDir() + "/default.conf", "--kubeconfig", "/nonexistent"}, strings.Fields(tt.args)...)...)
		if code != ExitUsage || !strings.Contains(stderr, tt.want) {
			t.Errorf("watch %s: exit %d, %s; want a usage error naming %q", tt.args, code, stderr, tt.want)
		}
	}
}
