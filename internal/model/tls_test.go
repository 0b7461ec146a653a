package model

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// testCA is one CA for the tests of this package: making keys is slow.
var testCA = sync.OnceValue(func() *testbed.CA {
	ca, err := testbed.NewCA("model test CA")
	if err != nil {
		panic(err)
	}
	return ca
})

func issue(t *testing.T, hosts []string, opts testbed.IssueOptions) testbed.Issued {
	t.Helper()
	c, err := testCA().Issue(hosts, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func secret(ns, name string, c testbed.Issued) *corev1.Secret {
	s := testbed.TLSSecret(name, c)
	s.Namespace = ns
	return s
}

// withData is a kubernetes.io/tls Secret with the given tls.crt and
// tls.key.
func withData(cert, key []byte) *corev1.Secret {
	return &corev1.Secret{Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: cert, corev1.TLSPrivateKeyKey: key}}
}

// reencode turns a PKCS #8 key into the PEM type given (PKCS #1 for RSA,
// SEC 1 for EC).
func reencode(t *testing.T, keyPEM []byte, typ string) []byte {
	t.Helper()
	b, _ := pem.Decode(keyPEM)
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	var der []byte
	switch typ {
	case "RSA PRIVATE KEY":
		der = x509.MarshalPKCS1PrivateKey(k.(*rsa.PrivateKey))
	case "EC PRIVATE KEY":
		der, err = x509.MarshalECPrivateKey(k.(*ecdsa.PrivateKey))
	}
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// selfIssued is a certificate for host made with a template of the test's
// own, self-signed by its own key when parent is nil.
func selfIssued(t *testing.T, host string, edit func(*x509.Certificate)) testbed.Issued {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Skipf("cannot make this certificate: %v", err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	return testbed.Issued{CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})}
}

func TestCheckCertificate(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := issue(t, []string{"shop.example.com", "*.apps.example.com"}, testbed.IssueOptions{})
	other := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{})
	rsaCert := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{RSABits: 2048})
	weak := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{RSABits: 1024})
	chained := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{WithCA: true})
	expired := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-time.Hour)})
	future := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{NotBefore: now.Add(time.Hour)})
	soon := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{NotAfter: now.Add(3 * 24 * time.Hour)})
	ecParams := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7}}),
		reencode(t, good.KeyPEM, "EC PRIVATE KEY")...)
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte("x")})
	clientOnly := selfIssued(t, "shop.example.com", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} })
	cnOnly := selfIssued(t, "shop.example.com", func(c *x509.Certificate) { c.DNSNames = nil })

	tests := []struct {
		name    string
		secret  *corev1.Secret
		host    string
		reason  Reason // of the error, or of the warning with served
		served  bool
		message string
	}{
		{name: "good", secret: withData(good.CertPEM, good.KeyPEM), host: "shop.example.com", served: true},
		{name: "wildcard name covers a host under it", secret: withData(good.CertPEM, good.KeyPEM), host: "a.apps.example.com", served: true},
		{name: "wildcard host with that wildcard name", secret: withData(good.CertPEM, good.KeyPEM), host: "*.apps.example.com", served: true},
		{name: "RSA key, PKCS #1", secret: withData(rsaCert.CertPEM, reencode(t, rsaCert.KeyPEM, "RSA PRIVATE KEY")), host: "shop.example.com", served: true},
		{name: "EC key, SEC 1 after EC PARAMETERS", secret: withData(good.CertPEM, ecParams), host: "shop.example.com", served: true},
		{name: "with its chain", secret: withData(chained.CertPEM, chained.KeyPEM), host: "shop.example.com", served: true},
		{name: "text around the blocks", secret: withData(append(append([]byte("subject=CN = shop\n"), good.CertPEM...), "trailer\n"...), good.KeyPEM),
			host: "shop.example.com", served: true},
		{name: "not yet valid: served, with a warning", secret: withData(future.CertPEM, future.KeyPEM), host: "shop.example.com", served: true,
			reason: ReasonCertificateNotYetValid, message: "is valid from"},
		{name: "expires soon: served, with a warning", secret: withData(soon.CertPEM, soon.KeyPEM), host: "shop.example.com", served: true,
			reason: ReasonCertificateExpiresSoon, message: "is its renewal stuck?"},

		{name: "another type", secret: &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: withData(good.CertPEM, good.KeyPEM).Data},
			host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: `type "Opaque", not kubernetes.io/tls`},
		{name: "no certificate", secret: withData(nil, good.KeyPEM), host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: "no tls.crt"},
		{name: "no key", secret: withData(good.CertPEM, nil), host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: "no tls.key"},
		{name: "garbage certificate", secret: withData([]byte("garbage"), good.KeyPEM), host: "shop.example.com",
			reason: ReasonInvalidTLSSecret, message: "tls.crt holds no PEM CERTIFICATE block"},
		{name: "a key in the certificate", secret: withData(slices.Concat(good.CertPEM, good.KeyPEM), good.KeyPEM), host: "shop.example.com",
			reason: ReasonInvalidTLSSecret, message: `tls.crt holds a "PRIVATE KEY" block (block 2)`},
		{name: "a block that does not parse", secret: withData(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("junk")}), good.KeyPEM),
			host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: "certificate 1 does not parse"},
		{name: "huge", secret: withData(make([]byte, 300<<10), good.KeyPEM), host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: "larger than 256 KiB"},
		{name: "garbage key", secret: withData(good.CertPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")),
			host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: "tls.key: the private key does not parse"},
		{name: "no key block", secret: withData(good.CertPEM, []byte("not a key")), host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: "no PEM private key"},
		{name: "two keys", secret: withData(good.CertPEM, append(good.KeyPEM, other.KeyPEM...)), host: "shop.example.com",
			reason: ReasonInvalidTLSSecret, message: "more than one PEM block"},
		{name: "encrypted key", secret: withData(good.CertPEM, encrypted), host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: "encrypted"},
		{name: "a certificate as the key", secret: withData(good.CertPEM, good.CertPEM), host: "shop.example.com",
			reason: ReasonInvalidTLSSecret, message: `tls.key holds a "CERTIFICATE" block, not a private key`},
		{name: "the key of another certificate", secret: withData(good.CertPEM, other.KeyPEM), host: "shop.example.com",
			reason: ReasonInvalidTLSSecret, message: "tls.key is not the key of the certificate in tls.crt"},
		{name: "another host", secret: withData(good.CertPEM, good.KeyPEM), host: "evil.example.com",
			reason: ReasonInvalidTLSSecret, message: `does not cover host evil.example.com: its names are "shop.example.com", "*.apps.example.com"`},
		{name: "two labels under a wildcard name", secret: withData(good.CertPEM, good.KeyPEM), host: "a.b.apps.example.com",
			reason: ReasonInvalidTLSSecret, message: "does not cover host"},
		{name: "a wildcard host needs the wildcard name", secret: withData(other.CertPEM, other.KeyPEM), host: "*.example.com",
			reason: ReasonInvalidTLSSecret, message: "does not cover host *.example.com"},
		{name: "the common name is not enough", secret: withData(cnOnly.CertPEM, cnOnly.KeyPEM), host: "shop.example.com",
			reason: ReasonInvalidTLSSecret, message: "it has no DNS names"},
		{name: "expired", secret: withData(expired.CertPEM, expired.KeyPEM), host: "shop.example.com",
			reason: ReasonCertificateExpired, message: "the certificate expired on"},
		{name: "weak RSA key", secret: withData(weak.CertPEM, weak.KeyPEM), host: "shop.example.com",
			reason: ReasonInvalidTLSSecret, message: "its RSA key has 1024 bits; at least 2048 are needed"},
		{name: "chain in the wrong order", secret: withData(append(append([]byte(nil), testCA().PEM...), good.CertPEM...), good.KeyPEM),
			host: "shop.example.com", reason: ReasonInvalidTLSSecret, message: "certificate 1 is not signed by certificate 2"},
		{name: "for clients only", secret: withData(clientOnly.CertPEM, clientOnly.KeyPEM), host: "shop.example.com",
			reason: ReasonInvalidTLSSecret, message: "not for server authentication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, warning, err := checkCertificate(tt.secret, tt.host, now)
			problem := err
			if tt.served {
				if err != nil {
					t.Fatalf("refused: %s: %s", err.reason, err.message)
				}
				if got == nil || len(got.Hash) != 64 || !strings.Contains(string(got.PEM.Bytes()), "-----BEGIN PRIVATE KEY-----") {
					t.Fatalf("got %+v", got)
				}
				problem = warning
			} else if got != nil {
				t.Fatalf("accepted, want %s", tt.reason)
			}
			switch {
			case tt.reason == "" && problem != nil:
				t.Errorf("%s: %s", problem.reason, problem.message)
			case tt.reason != "" && (problem == nil || problem.reason != tt.reason || !strings.Contains(problem.message, tt.message)):
				t.Errorf("got %+v, want %s containing %q", problem, tt.reason, tt.message)
			}
			if problem != nil {
				for _, key := range [][]byte{good.KeyPEM, other.KeyPEM} {
					body := strings.Split(string(key), "\n")[1]
					if strings.Contains(problem.message, body[:20]) {
						t.Errorf("the message shows a key: %s", problem.message)
					}
				}
			}
		})
	}
}

// TestCheckCertificateRefusesSHA1: a certificate signed with SHA-1, which
// OpenSSL (and so nginx) refuses to load.
func TestCheckCertificateRefusesSHA1(t *testing.T) {
	t.Parallel()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sha1 CA"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), DNSNames: []string{"a.example.com"}, SignatureAlgorithm: x509.ECDSAWithSHA1,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Skipf("Go does not make SHA-1 certificates: %v", err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	s := withData(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	if _, _, err := checkCertificate(s, "a.example.com", time.Now()); err == nil || !strings.Contains(err.message, "ECDSA-SHA1, which is too weak") {
		t.Errorf("got %v, want refused as too weak", err)
	}
}

func TestBuildTLS(t *testing.T) {
	t.Parallel()
	now := time.Now()
	good := issue(t, []string{"shop.example.com", "blog.example.com"}, testbed.IssueOptions{})
	renewed := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{})
	soon := issue(t, []string{"soon.example.com"}, testbed.IssueOptions{NotAfter: now.Add(24 * time.Hour)})
	tlsAnn := func(host, name string, kv ...string) svcOpt {
		return ann(append([]string{AnnotationHost, host, AnnotationTLSSecret, name}, kv...)...)
	}
	type hostState struct {
		tls      bool
		redirect bool
		hsts     string
	}
	tests := []struct {
		name     string
		services []*corev1.Service
		secrets  []*corev1.Secret
		opts     Options
		hosts    map[string]hostState
		rejected []string
		warnings []string
		certs    []string // host: served or reason
	}{
		{
			name:     "served, redirect by default, HSTS when asked",
			services: []*corev1.Service{svc("shop", "web", tlsAnn("shop.example.com", "web-tls", AnnotationHSTS, "max-age=60")), svc("shop", "plain")},
			secrets:  []*corev1.Secret{secret("shop", "web-tls", good)},
			hosts:    map[string]hostState{"": {}, "shop.example.com": {tls: true, redirect: true, hsts: "max-age=60"}},
			certs:    []string{"shop.example.com: served"},
		},
		{
			name:     "redirect off",
			services: []*corev1.Service{svc("shop", "web", tlsAnn("shop.example.com", "web-tls", AnnotationHTTPSRedirect, "false"))},
			secrets:  []*corev1.Secret{secret("shop", "web-tls", good)},
			hosts:    map[string]hostState{"": {}, "shop.example.com": {tls: true}},
			certs:    []string{"shop.example.com: served"},
		},
		{
			name: "another Service on the host without the annotation shares its HTTPS",
			services: []*corev1.Service{svc("shop", "web", tlsAnn("shop.example.com", "web-tls")),
				svc("other", "api", ann(AnnotationHost, "shop.example.com", AnnotationPath, "/api"))},
			secrets: []*corev1.Secret{secret("shop", "web-tls", good)},
			hosts:   map[string]hostState{"": {}, "shop.example.com": {tls: true, redirect: true}},
			certs:   []string{"shop.example.com: served"},
		},
		{
			name: "a Secret of the same name in another namespace is not the Service's",
			services: []*corev1.Service{svc("shop", "web", tlsAnn("shop.example.com", "web-tls")),
				svc("blog", "web", tlsAnn("blog.example.com", "missing"))},
			secrets: []*corev1.Secret{secret("blog", "web-tls", good), secret("shop", "missing", good)},
			hosts:   map[string]hostState{"": {}, "shop.example.com": {redirect: true}, "blog.example.com": {redirect: true}},
			warnings: []string{
				"blog/web: TLSSecretNotFound: HTTPS of host blog.example.com left out: Secret blog/missing: not found (or not of type kubernetes.io/tls) (plain HTTP still redirects to HTTPS)",
				"shop/web: TLSSecretNotFound: HTTPS of host shop.example.com left out: Secret shop/web-tls: not found (or not of type kubernetes.io/tls) (plain HTTP still redirects to HTTPS)",
			},
			certs: []string{"blog.example.com: TLSSecretNotFound", "shop.example.com: TLSSecretNotFound"},
		},
		{
			name: "conflicting settings on one host: the oldest Service's win; both asking the same get the warning",
			services: []*corev1.Service{
				svc("shop", "a", tlsAnn("shop.example.com", "web-tls", AnnotationPath, "/a")),
				svc("shop", "b", tlsAnn("shop.example.com", "web-tls", AnnotationPath, "/b")),
				svc("shop", "c", tlsAnn("shop.example.com", "renewed", AnnotationPath, "/c"), created(time.Hour)),
				svc("shop", "d", tlsAnn("shop.example.com", "web-tls", AnnotationPath, "/d", AnnotationHTTPSRedirect, "false"), created(-time.Hour)),
				svc("evil", "e", tlsAnn("shop.example.com", "web-tls", AnnotationPath, "/e"), created(-2*time.Hour)),
			},
			secrets: []*corev1.Secret{secret("shop", "web-tls", soon), secret("shop", "renewed", renewed)},
			hosts:   map[string]hostState{"": {}, "shop.example.com": {redirect: true}},
			rejected: []string{
				"shop/a: TLSConflict: host shop.example.com's HTTPS is set by Service evil/e (Secret evil/web-tls), which is older or sorts first; this Service asks for Secret shop/web-tls",
				"shop/b: TLSConflict: host shop.example.com's HTTPS is set by Service evil/e (Secret evil/web-tls), which is older or sorts first; this Service asks for Secret shop/web-tls",
				"shop/c: TLSConflict: host shop.example.com's HTTPS is set by Service evil/e (Secret evil/web-tls), which is older or sorts first; this Service asks for Secret shop/renewed",
				"shop/d: TLSConflict: host shop.example.com's HTTPS is set by Service evil/e (Secret evil/web-tls), which is older or sorts first; this Service asks for Secret shop/web-tls, no redirect",
			},
			warnings: []string{"evil/e: TLSSecretNotFound: HTTPS of host shop.example.com left out: Secret evil/web-tls: not found (or not of type kubernetes.io/tls) (plain HTTP still redirects to HTTPS)"},
			certs:    []string{"shop.example.com: TLSSecretNotFound"},
		},
		{
			name: "same settings from two Services: one HTTPS, a warning to each",
			services: []*corev1.Service{
				svc("soon", "a", tlsAnn("soon.example.com", "tls", AnnotationPath, "/a")),
				svc("soon", "b", tlsAnn("soon.example.com", "tls", AnnotationPath, "/b")),
			},
			secrets: []*corev1.Secret{secret("soon", "tls", soon)},
			hosts:   map[string]hostState{"": {}, "soon.example.com": {tls: true, redirect: true}},
			warnings: []string{
				"soon/a: CertificateExpiresSoon: host soon.example.com, Secret soon/tls: the certificate expires on ",
				"soon/b: CertificateExpiresSoon: host soon.example.com, Secret soon/tls: the certificate expires on ",
			},
			certs: []string{"soon.example.com: served, CertificateExpiresSoon"},
		},
		{
			name: "HTTPS annotations need a host, and the redirect and HSTS need a Secret",
			services: []*corev1.Service{
				svc("shop", "nohost", ann(AnnotationTLSSecret, "web-tls")),
				svc("shop", "redirect", ann(AnnotationHTTPSRedirect, "false")),
				svc("shop", "hsts", ann(AnnotationHost, "a.example.com", AnnotationHSTS, "max-age=1")),
				svc("shop", "borrow", tlsAnn("b.example.com", "kube-system/tls")),
				svc("shop", "inject", tlsAnn("c.example.com", "x;\n ssl_certificate_key /etc/shadow")),
			},
			secrets: []*corev1.Secret{secret("shop", "web-tls", good)},
			hosts:   map[string]hostState{"": {}},
			rejected: []string{
				`shop/borrow: InvalidAnnotation: annotation kube-nginx-sync.io/tls-secret="kube-system/tls": names a Secret of namespace "kube-system" ("tls"): only Secrets of its own namespace can be used`,
				`shop/hsts: InvalidAnnotation: annotation kube-nginx-sync.io/hsts="max-age=1": needs kube-nginx-sync.io/tls-secret`,
				`shop/inject: InvalidAnnotation: annotation kube-nginx-sync.io/tls-secret="x;\n ssl_certificate_key /etc/shadow": names a Secret of namespace "x;\n ssl_certificate_key " ("etc/shadow"): only Secrets of its own namespace can be used`,
				`shop/nohost: InvalidAnnotation: annotation kube-nginx-sync.io/tls-secret="web-tls": needs kube-nginx-sync.io/host: HTTPS is served by host name (SNI), and the default server has none`,
				`shop/redirect: InvalidAnnotation: annotation kube-nginx-sync.io/https-redirect="false": needs kube-nginx-sync.io/tls-secret`,
			},
		},
		{
			name:     "HTTPS disabled",
			services: []*corev1.Service{svc("shop", "web", tlsAnn("shop.example.com", "web-tls"))},
			secrets:  []*corev1.Secret{secret("shop", "web-tls", good)},
			opts:     Options{DisableHTTPS: true},
			hosts:    map[string]hostState{"": {}, "shop.example.com": {}},
			warnings: []string{"shop/web: HTTPSDisabled: HTTPS of host shop.example.com left out: Secret shop/web-tls: this kube-nginx-sync serves no HTTPS, so the host is served over plain HTTP only"},
			certs:    []string{"shop.example.com: HTTPSDisabled"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			opts.Secrets, opts.Now = tt.secrets, now
			res := Build(tt.services, nil, opts)
			hosts := map[string]hostState{}
			for _, s := range res.Config.Servers {
				st := hostState{tls: s.TLS != nil, redirect: s.RedirectHTTPS}
				if s.TLS != nil {
					st.hsts = s.TLS.HSTS
				}
				hosts[s.Host] = st
			}
			if diff := cmp.Diff(tt.hosts, hosts, cmp.AllowUnexported(hostState{})); diff != "" {
				t.Errorf("hosts (-want +got):\n%s", diff)
			}
			var rejected, warnings, certs []string
			for _, r := range res.Rejected {
				rejected = append(rejected, r.String())
			}
			for i, w := range res.Warnings {
				warnings = append(warnings, w.String())
				if i < len(tt.warnings) && strings.HasSuffix(tt.warnings[i], " ") && strings.HasPrefix(w.String(), tt.warnings[i]) {
					warnings[i] = tt.warnings[i] // the rest names a time
				}
			}
			for _, c := range res.Certificates {
				state := string(c.Reason)
				if c.Served {
					state = strings.TrimSuffix("served, "+state, ", ")
				}
				certs = append(certs, c.Host+": "+state)
			}
			if diff := cmp.Diff(tt.rejected, rejected); diff != "" {
				t.Errorf("Rejected (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.warnings, warnings); diff != "" {
				t.Errorf("Warnings (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.certs, certs); diff != "" {
				t.Errorf("Certificates (-want +got):\n%s", diff)
			}
			leaves := slices.ContainsFunc(res.Certificates, func(c HostCertificate) bool { return c.Leaf != nil })
			if leaves && !res.Recheck.After(now) {
				t.Errorf("Recheck %v, want a time after now", res.Recheck)
			}
		})
	}
}

// TestBuildTLSRecheck: the result says when the same input builds another
// Config, and at that time it does.
func TestBuildTLSRecheck(t *testing.T) {
	t.Parallel()
	now := time.Now().Truncate(time.Second)
	c := issue(t, []string{"a.example.com"}, testbed.IssueOptions{NotBefore: now.Add(-time.Hour), NotAfter: now.Add(20 * 24 * time.Hour)})
	services := []*corev1.Service{svc("ns", "web", ann(AnnotationHost, "a.example.com", AnnotationTLSSecret, "tls"))}
	opts := Options{Secrets: []*corev1.Secret{secret("ns", "tls", c)}}
	var states []string
	for at := now; !at.IsZero(); {
		opts.Now = at
		res := Build(services, nil, opts)
		hc := res.Certificates[0]
		states = append(states, fmt.Sprintf("%v %s", hc.Served, hc.Reason))
		at = res.Recheck
	}
	want := []string{"true ", "true CertificateExpiresSoon", "false CertificateExpired"}
	if diff := cmp.Diff(want, states); diff != "" {
		t.Errorf("states at each recheck (-want +got):\n%s", diff)
	}
}

// TestSecretsNeverPrint: a Config, a Result and a TLS print and marshal
// without the key, whatever the format.
func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	c := issue(t, []string{"a.example.com"}, testbed.IssueOptions{})
	res := Build([]*corev1.Service{svc("ns", "web", ann(AnnotationHost, "a.example.com", AnnotationTLSSecret, "tls"))}, nil,
		Options{Secrets: []*corev1.Secret{secret("ns", "tls", c)}, Now: time.Now()})
	tls := res.Config.Servers[1].TLS
	if tls == nil {
		t.Fatal("not served")
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		out = append(out, fmt.Sprintf(verb, res), fmt.Sprintf(verb, tls), fmt.Sprintf(verb, *tls), fmt.Sprintf(verb, tls.PEM))
	}
	j, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	for _, h := range []slog.Handler{slog.NewTextHandler(&logged, nil), slog.NewJSONHandler(&logged, nil)} {
		slog.New(h).Info("x", "tls", tls, "pem", tls.PEM, "res", res)
	}
	out = append(out, string(j), logged.String())
	keyBody := strings.Split(string(c.KeyPEM), "\n")[1][:24]
	for _, o := range out {
		if strings.Contains(o, "PRIVATE KEY") || strings.Contains(o, keyBody) || strings.Contains(o, fmt.Sprintf("%x", tls.PEM.Bytes()[:16])) {
			t.Fatalf("the key is printed: %.300s", o)
		}
	}
	if !strings.Contains(string(j), `"[redacted]"`) {
		t.Errorf("JSON: %s", j)
	}
}

// TestBuildTLSDoesNotMutate: the Secrets come from the informers' cache.
func TestBuildTLSDoesNotMutate(t *testing.T) {
	t.Parallel()
	c := issue(t, []string{"a.example.com"}, testbed.IssueOptions{})
	s := secret("ns", "tls", c)
	s.ObjectMeta.CreationTimestamp = metav1.Now()
	sCopy := s.DeepCopy()
	Build([]*corev1.Service{svc("ns", "web", ann(AnnotationHost, "a.example.com", AnnotationTLSSecret, "tls"))}, nil,
		Options{Secrets: []*corev1.Secret{s}, Now: time.Now()})
	if diff := cmp.Diff(sCopy, s); diff != "" {
		t.Errorf("Secret changed:\n%s", diff)
	}
}

// FuzzCheckCertificate: whatever a Secret holds, checkCertificate does not
// panic, and what it accepts is a chain and a key that crypto/tls loads,
// for the host, and nothing else.
func FuzzCheckCertificate(f *testing.F) {
	ca, err := testbed.NewCA("fuzz CA")
	if err != nil {
		f.Fatal(err)
	}
	good, err := ca.Issue([]string{"a.example.com", "*.b.example.com"}, testbed.IssueOptions{WithCA: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.CertPEM, good.KeyPEM, "a.example.com")
	f.Add(good.CertPEM, good.KeyPEM, "*.b.example.com")
	f.Add(good.KeyPEM, good.CertPEM, "a.example.com")
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n}; include /etc/passwd;\n-----END CERTIFICATE-----\n"), good.KeyPEM, "a.example.com")
	f.Add(slices.Concat(good.CertPEM, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")), good.KeyPEM, "a.example.com")
	now := time.Now()
	f.Fuzz(func(t *testing.T, cert, key []byte, host string) {
		s := withData(cert, key)
		got, _, err := checkCertificate(s, host, now)
		if (got == nil) == (err == nil) {
			t.Fatalf("got %v and %v", got, err)
		}
		if got == nil {
			return
		}
		data := got.PEM.Bytes()
		pair, kerr := tls.X509KeyPair(data, data)
		if kerr != nil {
			t.Fatalf("accepted, and crypto/tls does not load it: %v", kerr)
		}
		leaf, perr := x509.ParseCertificate(pair.Certificate[0])
		if perr != nil || covers(leaf, host) != nil {
			t.Fatalf("accepted for %q a certificate that does not cover it", host)
		}
		for rest := data; len(rest) > 0; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil || (b.Type != "CERTIFICATE" && b.Type != "PRIVATE KEY") || len(b.Headers) > 0 {
				t.Fatalf("accepted, and nginx would read more than certificates and a key: %q", data)
			}
		}
	})
}

// TestBuildTLSWithIngresses: HTTPS is a host's, so an Ingress's routes on a
// host that a Service serves over HTTPS are served over HTTPS too; and a
// Service that loses its host's HTTPS loses its own routes, not an
// Ingress's routes to it.
func TestBuildTLSWithIngresses(t *testing.T) {
	t.Parallel()
	good := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{})
	services := []*corev1.Service{
		svc("ns", "a", ann(AnnotationHost, "shop.example.com", AnnotationPath, "/a", AnnotationTLSSecret, "web-tls")),
		svc("ns", "b", ann(AnnotationHost, "shop.example.com", AnnotationPath, "/b", AnnotationTLSSecret, "other"), created(time.Hour)),
		unlabelled("web"),
	}
	ings := []*networkingv1.Ingress{ingress("ns", "i",
		rule("shop.example.com", ingPath(prefix, "/ing", backend("web", "http"))),
		rule("plain.example.com", ingPath(prefix, "/b", backend("b", "http"))))}
	res := Build(services, nil, Options{Selector: labels.SelectorFromSet(exposed), Now: time.Now(),
		Secrets: []*corev1.Secret{secret("ns", "web-tls", good)},
		Ingress: IngressOptions{Class: "kns", Ingresses: ings, Classes: []*networkingv1.IngressClass{ourClass}}})
	if len(res.Rejected) != 1 || res.Rejected[0].Service.Name != "b" || res.Rejected[0].Reason != ReasonTLSConflict {
		t.Errorf("rejected %+v, want ns/b for TLSConflict", res.Rejected)
	}
	paths := map[string][]string{}
	for _, s := range res.Config.Servers {
		for _, l := range s.Locations {
			paths[s.Host] = append(paths[s.Host], fmt.Sprintf("%s %s ingress=%v", l.Path, l.Service, !l.Ingress.IsZero()))
		}
		if want := s.Host == "shop.example.com"; (s.TLS != nil) != want || s.RedirectHTTPS != want {
			t.Errorf("server %q: TLS %v, redirect %v; want both %v", s.Host, s.TLS != nil, s.RedirectHTTPS, want)
		}
	}
	want := map[string][]string{
		"shop.example.com":  {"/a/ ns/a:http ingress=false", "/ing/ ns/web:http ingress=true"},
		"plain.example.com": {"/b/ ns/b:http ingress=true"},
	}
	for host, w := range want {
		if got := paths[host]; !slices.Equal(got, w) {
			t.Errorf("server %q routes %q, want %q", host, got, w)
		}
	}
}

// ingressTLS is an Ingress's tls section.
func ingressTLS(entries ...networkingv1.IngressTLS) ingOpt {
	return func(i *networkingv1.Ingress) { i.Spec.TLS = entries }
}

// TestBuildIngressTLS: an Ingress's tls section serves its hosts over
// HTTPS with the TLS work's checks, wildcard entries cover one label, and
// what cannot be served is said, on the Ingress.
func TestBuildIngressTLS(t *testing.T) {
	t.Parallel()
	shop := issue(t, []string{"shop.example.com", "*.apps.example.com"}, testbed.IssueOptions{})
	other := issue(t, []string{"shop.example.com"}, testbed.IssueOptions{})
	secrets := []*corev1.Secret{secret("ns", "shop-tls", shop), secret("ns", "other-tls", other)}
	web := backend("web", "http")
	type server struct {
		host          string
		tls, redirect bool
		hsts, secret  string
		paths         []string
	}
	tests := []struct {
		name      string
		services  []*corev1.Service
		ingresses []*networkingv1.Ingress
		want      []server
		rejected  []string
		warnings  []string
	}{
		{
			name:     "hosts listed and covered by a wildcard are served over HTTPS and redirect; others, and the default server, are not",
			services: []*corev1.Service{unlabelled("web")},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i",
				ingressTLS(networkingv1.IngressTLS{Hosts: []string{"SHOP.example.com", "*.apps.example.com"}, SecretName: "shop-tls"}),
				rule("shop.example.com", ingPath(prefix, "/a", web)),
				rule("x.apps.example.com", ingPath(exact, "/x", web)),
				rule("y.z.apps.example.com", ingPath(prefix, "/", web)),
				rule("plain.example.com", ingPath(prefix, "/p", web)),
				defaultBackend(web))},
			want: []server{
				{host: "", paths: []string{"/"}},
				{host: "plain.example.com", paths: []string{"/", "/p/"}},
				{host: "shop.example.com", tls: true, redirect: true, secret: "ns/shop-tls", paths: []string{"/", "/a/"}},
				{host: "x.apps.example.com", tls: true, redirect: true, secret: "ns/shop-tls", paths: []string{"/", "/x"}},
				{host: "y.z.apps.example.com", paths: []string{"/"}},
			},
		},
		{
			name:     "ssl-redirect false and our HSTS annotation set the host's HTTPS",
			services: []*corev1.Service{unlabelled("web")},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i", ingAnn(IngressNginxSSLRedirect, "false", AnnotationHSTS, "max-age=60"),
				ingressTLS(networkingv1.IngressTLS{Hosts: []string{"shop.example.com"}, SecretName: "shop-tls"}),
				rule("shop.example.com", ingPath(prefix, "/a", web)))},
			want: []server{{host: "", paths: nil},
				{host: "shop.example.com", tls: true, hsts: "max-age=60", secret: "ns/shop-tls", paths: []string{"/a/"}}},
		},
		{
			name:     "entries without a usable Secret leave their hosts' HTTPS out, redirecting; invalid hosts are left out; warnings",
			services: []*corev1.Service{unlabelled("web")},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i",
				ingressTLS(
					networkingv1.IngressTLS{Hosts: []string{"a.example.com"}},
					networkingv1.IngressTLS{SecretName: "shop-tls"},
					networkingv1.IngressTLS{Hosts: []string{"b.example.com"}, SecretName: "../evil"},
					networkingv1.IngressTLS{Hosts: []string{"c.example.com;", "nowhere.example.com", "shop.example.com"}, SecretName: "shop-tls"},
					networkingv1.IngressTLS{Hosts: []string{"shop.example.com", "gone.example.com"}, SecretName: "gone"}),
				rule("a.example.com", ingPath(prefix, "/", web)),
				rule("b.example.com", ingPath(prefix, "/", web)),
				rule("shop.example.com", ingPath(prefix, "/", web)),
				rule("gone.example.com", ingPath(prefix, "/", web)))},
			want: []server{{host: ""},
				{host: "a.example.com", redirect: true, paths: []string{"/"}},
				{host: "b.example.com", redirect: true, paths: []string{"/"}},
				{host: "gone.example.com", redirect: true, paths: []string{"/"}},
				{host: "shop.example.com", tls: true, redirect: true, secret: "ns/shop-tls", paths: []string{"/"}},
			},
			rejected: []string{
				`ingress ns/i tls entry 4: InvalidIngress: host "c.example.com;": not a valid host name: label "com;" has character ';' at 3`,
			},
			warnings: []string{
				`ingress ns/i: TLSNotServed: HTTPS of host a.example.com left out: tls entry 1 names no secretName, and there is no default certificate (plain HTTP still redirects to HTTPS)`,
				`ingress ns/i: TLSNotServed: HTTPS of host b.example.com left out: tls entry 3: secretName "../evil": names a Secret of namespace ".." ("evil"): only Secrets of its own namespace can be used (plain HTTP still redirects to HTTPS)`,
				`ingress ns/i: TLSNotServed: host nowhere.example.com of tls entry 4: no rule of this Ingress has it, so nothing is served over HTTPS for it`,
				`ingress ns/i: TLSNotServed: host shop.example.com of tls entry 5: tls entry 4 lists it first, and its Secret is used`,
				`ingress ns/i: TLSNotServed: tls entry 2 lists no hosts: list the hosts that its Secret is for`,
				`ingress ns/i: TLSSecretNotFound: HTTPS of host gone.example.com left out: Secret ns/gone: not found (or not of type kubernetes.io/tls) (plain HTTP still redirects to HTTPS)`,
			},
		},
		{
			name:     "an Ingress whose route on a host loses to an older one cannot turn the host's HTTPS on",
			services: []*corev1.Service{unlabelled("web"), svc("ns", "s", created(-time.Hour), ann(AnnotationHost, "shop.example.com", AnnotationPath, "/a"))},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i",
				ingressTLS(networkingv1.IngressTLS{Hosts: []string{"shop.example.com"}, SecretName: "gone"}),
				rule("shop.example.com", ingPath(prefix, "/a", web)))},
			want: []server{{host: ""}, {host: "shop.example.com", paths: []string{"/a/"}}},
			rejected: []string{
				`ingress ns/i shop.example.com/a (Prefix): RouteConflict: path /a/ on shop.example.com is already routed to ns/s:http, which is older or sorts first`,
			},
		},
		{
			name:     "at most MaxIngressTLSSecrets distinct Secrets: an entry past them is not served",
			services: []*corev1.Service{unlabelled("web")},
			ingresses: []*networkingv1.Ingress{func() *networkingv1.Ingress {
				var entries []networkingv1.IngressTLS
				for i := range MaxIngressTLSSecrets {
					entries = append(entries, networkingv1.IngressTLS{Hosts: []string{fmt.Sprintf("h%d.example.com", i)}, SecretName: fmt.Sprintf("s%d", i)})
				}
				entries = append(entries, networkingv1.IngressTLS{Hosts: []string{"shop.example.com"}, SecretName: "shop-tls"},
					networkingv1.IngressTLS{Hosts: []string{"again.example.com"}, SecretName: "s0"})
				ing := ingress("ns", "i", ingressTLS(entries...), rule("shop.example.com", ingPath(prefix, "/", web)),
					rule("again.example.com", ingPath(prefix, "/", web)))
				if n := len(IngressTLSSecrets(ing)); n != MaxIngressTLSSecrets {
					t.Errorf("IngressTLSSecrets: %d, want %d", n, MaxIngressTLSSecrets)
				}
				return ing
			}()},
			want: []server{{host: ""},
				{host: "again.example.com", redirect: true, paths: []string{"/"}},
				{host: "shop.example.com", redirect: true, paths: []string{"/"}}},
			warnings: func() []string {
				out := []string{
					`ingress ns/i: TLSNotServed: HTTPS of host shop.example.com left out: tls entry 101: Secret shop-tls is one more than the 100 distinct Secrets that an Ingress may name (plain HTTP still redirects to HTTPS)`,
					`ingress ns/i: TLSSecretNotFound: HTTPS of host again.example.com left out: Secret ns/s0: not found (or not of type kubernetes.io/tls) (plain HTTP still redirects to HTTPS)`,
				}
				var noRule []string
				for i := range MaxIngressTLSSecrets {
					noRule = append(noRule, fmt.Sprintf("ingress ns/i: TLSNotServed: host h%d.example.com of tls entry %d: no rule of this Ingress has it, so nothing is served over HTTPS for it", i, i+1))
				}
				slices.Sort(noRule)
				return slices.Insert(out, 1, noRule...)
			}(),
		},
		{
			name: "an older Service's HTTPS wins the host: the Ingress's routes there are left out, its others stay",
			services: []*corev1.Service{unlabelled("web"),
				svc("ns", "s", created(-time.Hour), ann(AnnotationHost, "shop.example.com", AnnotationPath, "/s", AnnotationTLSSecret, "other-tls"))},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i",
				ingressTLS(networkingv1.IngressTLS{Hosts: []string{"shop.example.com"}, SecretName: "shop-tls"}),
				rule("shop.example.com", ingPath(prefix, "/a", web)),
				rule("plain.example.com", ingPath(prefix, "/a", web)))},
			want: []server{{host: ""},
				{host: "plain.example.com", paths: []string{"/a/"}},
				{host: "shop.example.com", tls: true, redirect: true, secret: "ns/other-tls", paths: []string{"/s/"}}},
			rejected: []string{
				`ingress ns/i tls of host shop.example.com: TLSConflict: host shop.example.com's HTTPS is set by Service ns/s (Secret ns/other-tls), which is older or sorts first; this Ingress asks for Secret ns/shop-tls`,
			},
		},
		{
			name: "an older Ingress's HTTPS wins the host: the Service is left out; one that asks the same shares it",
			services: []*corev1.Service{unlabelled("web"),
				svc("ns", "s", created(time.Hour), ann(AnnotationHost, "shop.example.com", AnnotationPath, "/s", AnnotationTLSSecret, "other-tls")),
				svc("ns", "t", created(time.Hour), ann(AnnotationHost, "shop.example.com", AnnotationPath, "/t", AnnotationTLSSecret, "shop-tls"))},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i",
				ingressTLS(networkingv1.IngressTLS{Hosts: []string{"shop.example.com"}, SecretName: "shop-tls"}),
				rule("shop.example.com", ingPath(prefix, "/a", web)))},
			want: []server{{host: ""},
				{host: "shop.example.com", tls: true, redirect: true, secret: "ns/shop-tls", paths: []string{"/a/", "/t/"}}},
			rejected: []string{
				`ns/s: TLSConflict: host shop.example.com's HTTPS is set by Ingress ns/i (Secret ns/shop-tls), which is older or sorts first; this Service asks for Secret ns/other-tls`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := Build(tt.services, nil, Options{Selector: labels.SelectorFromSet(exposed), Now: time.Now(), Secrets: secrets,
				Ingress: IngressOptions{Class: "kns", Ingresses: tt.ingresses, Classes: []*networkingv1.IngressClass{ourClass}}})
			var got []server
			for _, s := range res.Config.Servers {
				g := server{host: s.Host, tls: s.TLS != nil, redirect: s.RedirectHTTPS}
				if s.TLS != nil {
					g.hsts, g.secret = s.TLS.HSTS, s.TLS.Secret.String()
				}
				for _, l := range s.Locations {
					g.paths = append(g.paths, l.Path)
				}
				got = append(got, g)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(server{})); diff != "" {
				t.Errorf("servers (-want +got):\n%s", diff)
			}
			checkIngressResult(t, res, tt.rejected, tt.warnings)
		})
	}
}

// BenchmarkBuildIngressManyTLSHosts: one Ingress with many rules and as
// many tls hosts (a size anyone who may create an Ingress can reach) builds
// in time linear in its size, not quadratic.
func BenchmarkBuildIngressManyTLSHosts(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			opts := []ingOpt{}
			var hosts []string
			for i := range n {
				host := fmt.Sprintf("h%d.example.com", i)
				hosts = append(hosts, host)
				opts = append(opts, rule(host, ingPath(prefix, "/", backend("web", "http"))))
			}
			opts = append(opts, ingressTLS(networkingv1.IngressTLS{Hosts: hosts, SecretName: "web-tls"}))
			ing := ingress("ns", "many", opts...)
			options := Options{Ingress: IngressOptions{Class: "kns", Ingresses: []*networkingv1.Ingress{ing}, Classes: []*networkingv1.IngressClass{ourClass}}}
			services := []*corev1.Service{unlabelled("web")}
			b.ResetTimer()
			for b.Loop() {
				Build(services, nil, options)
			}
		})
	}
}
