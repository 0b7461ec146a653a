//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// newCA makes a test CA.
func newCA(t *testing.T, name string) *testbed.CA {
	t.Helper()
	ca, err := testbed.NewCA(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// issue issues a certificate for hosts.
func issue(t *testing.T, ca *testbed.CA, opts testbed.IssueOptions, hosts ...string) testbed.Issued {
	t.Helper()
	c, err := ca.Issue(hosts, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createSecret creates a Secret in ns.
func createSecret(t *testing.T, ns string, s *corev1.Secret) {
	t.Helper()
	if _, err := client.CoreV1().Secrets(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create secret %s: %v", s.Name, err)
	}
}

// tlsService creates an exposed Service routed at / on host that names a
// TLS Secret, with one backend named after it; more are more annotations.
func tlsService(t *testing.T, ns, name, host, secret string, more ...string) {
	t.Helper()
	ann := map[string]string{"kube-nginx-sync.io/host": host, "kube-nginx-sync.io/path": "/", "kube-nginx-sync.io/tls-secret": secret}
	for i := 0; i+1 < len(more); i += 2 {
		ann[more[i]] = more[i+1]
	}
	createService(t, ns, service{name: name, labels: exposed, annotations: ann, ports: []corev1.ServicePort{httpPort("http", 80)}})
	b := startBackend(t, name, netip.AddrPortFrom(nextIP(), 8080))
	createSlice(t, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: b.Addr()})
}

// handshake makes a TLS connection to 127.0.0.1:port naming sni (no SNI
// when empty), trusting only ca, and returns the server's certificate.
func handshake(port int, sni string, ca *testbed.CA) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conf := &tls.Config{ServerName: sni, RootCAs: ca.Pool()}
	if sni == "" {
		// Go sends no SNI for an IP address; the certificate then cannot
		// be verified by name.
		conf = &tls.Config{ServerName: "127.0.0.1", InsecureSkipVerify: true}
	}
	c, err := tls.DialWithDialer(d, "tcp", "127.0.0.1:"+strconv.Itoa(port), conf)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// httpsClient is an HTTP client to 127.0.0.1:port that sends SNI and Host
// from the URL's host, trusting only ca; with keepAlive it keeps its
// connections, and it speaks HTTP/2 when the server offers it.
func httpsClient(port int, ca *testbed.CA, keepAlive bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: ca.Pool()},
			DisableKeepAlives: !keepAlive,
			ForceAttemptHTTP2: true,
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// httpsGet is GET https://host:port<path> through c.
func httpsGet(c *http.Client, port int, host, path string) (*http.Response, string, error) {
	resp, err := c.Get("https://" + host + ":" + strconv.Itoa(port) + path)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, string(body), err
}

// refusedAtHandshake checks that nginx refuses a TLS handshake naming sni.
func refusedAtHandshake(port int, sni string, ca *testbed.CA) error {
	cert, err := handshake(port, sni, ca)
	switch {
	case err == nil:
		return fmt.Errorf("SNI %q: handshake done, with the certificate of %v", sni, cert.DNSNames)
	case !strings.Contains(err.Error(), "remote error: tls: "):
		return fmt.Errorf("SNI %q: %v, want the handshake refused by nginx", sni, err)
	}
	return nil
}

// TestHTTPSFromSecret: a Service names a Secret that a test CA's
// certificate is in; curl with that CA and SNI gets the Service's backend
// over HTTPS (HTTP/2), the chain verified; plain HTTP answers 308 to
// HTTPS; HSTS is sent; an unknown name is refused at the handshake; the
// expiry is a metric; explain says it all.
func TestHTTPSFromSecret(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ca := newCA(t, "e2e CA")
	const host = "shop.example.test"
	cert := issue(t, ca, testbed.IssueOptions{}, host)
	tlsService(t, ns, "web", host, "web-tls", "kube-nginx-sync.io/hsts", "max-age=600")
	createSecret(t, ns, testbed.TLSSecret("web-tls", cert))
	httpsPort := freePort(t)
	a := startRun(t, ns, "--https-port", strconv.Itoa(httpsPort))

	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("https://%s:%d/hello", host, httpsPort)
	eventually(t, 15*time.Second, func() error {
		out, err := exec.Command("curl", "-sS", "--cacert", caFile, "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", host, httpsPort),
			"-w", " %{http_code} %{http_version}", url).CombinedOutput()
		if err != nil || string(out) != "web /hello 200 2" {
			return fmt.Errorf("curl %s: %v: %s", url, err, out)
		}
		return nil
	})

	c := httpsClient(httpsPort, ca, false)
	resp, body, err := httpsGet(c, httpsPort, host, "/hello")
	if err != nil || resp.StatusCode != 200 || body != "web /hello" {
		t.Fatalf("GET over HTTPS: %v %v %q", err, resp, body)
	}
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(cert.Serial) != 0 {
		t.Errorf("served serial %v, want %v", got, cert.Serial)
	}
	if hsts := resp.Header.Get("Strict-Transport-Security"); hsts != "max-age=600" || resp.Proto != "HTTP/2.0" {
		t.Errorf("HSTS %q over %s, want max-age=600 over HTTP/2.0", hsts, resp.Proto)
	}
	if resp.TLS.Version != tls.VersionTLS13 {
		t.Errorf("%s, want TLS 1.3", tls.VersionName(resp.TLS.Version))
	}
	// TLS 1.2 with a cipher of the list; a weak one is refused.
	if conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort), &tls.Config{ServerName: host, RootCAs: ca.Pool(),
		MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}); err != nil {
		t.Errorf("TLS 1.2 with ECDHE-ECDSA-AES128-GCM-SHA256: %v", err)
	} else {
		conn.Close()
	}
	if conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort), &tls.Config{ServerName: host, RootCAs: ca.Pool(),
		MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}); err == nil {
		conn.Close()
		t.Error("TLS 1.2 with ECDHE-ECDSA-AES128-SHA (CBC) succeeded")
	}

	// Plain HTTP: a 308 to the same URL over HTTPS, without HSTS.
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/hello?x=1", a.port), nil)
	req.Host = host
	hresp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hresp.Body.Close()
	if want := fmt.Sprintf("https://%s:%d/hello?x=1", host, httpsPort); hresp.StatusCode != 308 || hresp.Header.Get("Location") != want {
		t.Errorf("plain HTTP: %d to %q, want 308 to %q", hresp.StatusCode, hresp.Header.Get("Location"), want)
	}

	// No certificate for a name it was not issued for, nor without SNI.
	for _, sni := range []string{"other.example.test", "example.test", ""} {
		if err := refusedAtHandshake(httpsPort, sni, ca); err != nil {
			t.Error(err)
		}
	}
	// TLS 1.1 is refused.
	if conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", httpsPort), &tls.Config{ServerName: host, RootCAs: ca.Pool(),
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		conn.Close()
		t.Error("a TLS 1.1 handshake succeeded")
	}

	if got, want := metric(t, a.listen, `kube_nginx_sync_certificate_expiry_timestamp_seconds{host="`+host+`"}`), float64(cert.Cert.NotAfter.Unix()); got != want {
		t.Errorf("certificate_expiry_timestamp_seconds = %v, want %v", got, want)
	}
	if got := metric(t, a.listen, `kube_nginx_sync_https_hosts{state="served"}`); got != 1 {
		t.Errorf("https_hosts{state=served} = %v", got)
	}
	res := runBinary(t, "explain", "--kubeconfig", cluster.Kubeconfig, "-n", ns, "--https-port", strconv.Itoa(httpsPort), ns+"/web")
	if want := fmt.Sprintf("  https: host %s, with the certificate of Secret %s/web-tls (serial %s, valid until %s); plain HTTP redirects to HTTPS (308); HSTS max-age=600",
		host, ns, cert.Serial.Text(16), cert.Cert.NotAfter.UTC().Format(time.RFC3339)); res.code != 0 || !strings.Contains(res.stdout, want) {
		t.Errorf("explain: exit %d, lacks %q:\n%s%s", res.code, want, res.stdout, res.stderr)
	}

	// The certificate file is hidden, 0600, and nothing of the key is in
	// the config, the logs or the metrics.
	files := testbed.CertificateFiles(t, a.confDir)
	if len(files) != 1 {
		t.Fatalf("certificate files %q", files)
	}
	if info, err := os.Stat(filepath.Join(a.confDir, files[0])); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("certificate file: %v, %v", err, info.Mode())
	}
	config, _ := os.ReadFile(filepath.Join(a.confDir, "default.conf"))
	metrics, _ := httpClient.Get("http://" + a.listen + "/metrics")
	metricsText, _ := io.ReadAll(metrics.Body)
	metrics.Body.Close()
	keyLine := strings.Split(string(cert.KeyPEM), "\n")[1]
	for what, text := range map[string]string{"config": string(config), "log": a.log(), "metrics": string(metricsText)} {
		if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, keyLine[:24]) {
			t.Errorf("the key is in the %s", what)
		}
	}
}

// TestHTTPSRenewal: the Secret gets a new certificate (as cert-manager
// renews it) while clients keep connections alive and send requests: the
// new certificate is served within 2 s, after exactly one reload, no
// request fails, and the old certificate's file is gone once no config
// names it (after the grace), with no further reload.
func TestHTTPSRenewal(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	ca := newCA(t, "e2e CA")
	const host = "renew.example.test"
	first := issue(t, ca, testbed.IssueOptions{}, host)
	tlsService(t, ns, "web", host, "web-tls")
	createSecret(t, ns, testbed.TLSSecret("web-tls", first))
	httpsPort := freePort(t)
	a := startRun(t, ns, "--https-port", strconv.Itoa(httpsPort))
	eventually(t, 15*time.Second, func() error {
		cert, err := handshake(httpsPort, host, ca)
		if err != nil || cert.SerialNumber.Cmp(first.Serial) != 0 {
			return fmt.Errorf("handshake: %v", err)
		}
		return nil
	})
	oldFiles := testbed.CertificateFiles(t, a.confDir)
	reloads := func() float64 { return metric(t, a.listen, `kube_nginx_sync_reloads_total{result="ok"}`) }
	if n := reloads(); n != 0 {
		t.Fatalf("%v reloads before the renewal; the first config has the certificate", n)
	}

	// Keep-alive clients, each on its own connections, until the end.
	var requests, failures atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := httpsClient(httpsPort, ca, true)
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, body, err := httpsGet(c, httpsPort, host, "/x")
				requests.Add(1)
				if err != nil || resp.StatusCode != 200 || body != "web /x" {
					failures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%v %v %q", err, resp, body))
				}
				time.Sleep(5 * time.Millisecond) // paces the load generator
			}
		})
	}

	renewed := issue(t, ca, testbed.IssueOptions{}, host)
	secret := testbed.TLSSecret("web-tls", renewed)
	secret.Namespace = ns
	updated := time.Now()
	if _, err := client.CoreV1().Secrets(ns).Update(context.Background(), secret, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		cert, err := handshake(httpsPort, host, ca)
		if err != nil || cert.SerialNumber.Cmp(renewed.Serial) != 0 {
			return fmt.Errorf("handshake: %v, serial %v", err, cert)
		}
		return nil
	})
	took := time.Since(updated)
	t.Logf("the renewed certificate (serial %v) was served %s after the Secret's update", renewed.Serial, took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Errorf("the renewed certificate was served %s after the update, want within 2 s", took.Round(time.Millisecond))
	}

	// The old file goes after the grace; meanwhile the load goes on.
	eventually(t, 30*time.Second, func() error {
		files := testbed.CertificateFiles(t, a.confDir)
		if len(files) != 1 || files[0] == oldFiles[0] {
			return fmt.Errorf("certificate files %q (the first was %q)", files, oldFiles)
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("%d requests over keep-alive connections during the renewal, %d failed", requests.Load(), failures.Load())
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d requests failed; the first: %v", n, requests.Load(), firstFailure.Load())
	}
	if n := reloads(); n != 1 {
		t.Errorf("%v reloads for the renewal and the old file's removal, want 1", n)
	}
}

// TestHTTPSTwoHostsWildcardUnknownName: two hosts with two Secrets on one
// listener each show their own certificate, a wildcard host serves every
// name under it, and an unknown name is refused at the handshake; in the
// upstream shape and in the lua shape (whose router matches by server
// name).
func TestHTTPSTwoHostsWildcardUnknownName(t *testing.T) {
	t.Parallel()
	for _, shape := range []string{"upstream", "lua"} {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			ca := newCA(t, "e2e CA")
			a := issue(t, ca, testbed.IssueOptions{}, "a.example.test")
			w := issue(t, ca, testbed.IssueOptions{}, "*.wild.example.test")
			tlsService(t, ns, "alpha", "a.example.test", "a-tls")
			tlsService(t, ns, "wild", "*.wild.example.test", "wild-tls")
			createSecret(t, ns, testbed.TLSSecret("a-tls", a))
			createSecret(t, ns, testbed.TLSSecret("wild-tls", w))
			httpsPort := freePort(t)
			startRun(t, ns, "--https-port", strconv.Itoa(httpsPort), "--shape", shape)
			c := httpsClient(httpsPort, ca, false)
			for _, tc := range []struct {
				host, backend string
				serial        *big.Int
			}{
				{"a.example.test", "alpha", a.Serial},
				{"x.wild.example.test", "wild", w.Serial},
				{"y.wild.example.test", "wild", w.Serial},
			} {
				eventually(t, 15*time.Second, func() error {
					resp, body, err := httpsGet(c, httpsPort, tc.host, "/p")
					switch {
					case err != nil:
						return err
					case resp.StatusCode != 200 || body != tc.backend+" /p":
						return fmt.Errorf("%s: %d %q", tc.host, resp.StatusCode, body)
					case resp.TLS.PeerCertificates[0].SerialNumber.Cmp(tc.serial) != 0:
						return fmt.Errorf("%s: serial %v, want %v", tc.host, resp.TLS.PeerCertificates[0].SerialNumber, tc.serial)
					}
					return nil
				})
			}
			for _, sni := range []string{"b.example.test", "wild.example.test", "a.b.example.test.evil", ""} {
				if err := refusedAtHandshake(httpsPort, sni, ca); err != nil {
					t.Error(err)
				}
			}
			// A request whose Host is another name than its TLS name's is
			// not served from another host.
			resp, _, err := httpsGet(httpsClient(httpsPort, ca, false), httpsPort, "a.example.test", "/p")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("https://a.example.test:%d/p", httpsPort), nil)
			req.Host = "other.example.test"
			resp, err = httpsClient(httpsPort, ca, false).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMisdirectedRequest {
				t.Errorf("Host other than SNI: %d, want 421", resp.StatusCode)
			}
		})
	}
}

// TestHTTPSHostileSecrets: Secrets that cannot be used (of another type, a
// key that is not the certificate's, garbage, an expired certificate, one
// for another host, one of another namespace), and a Secret name with
// injection characters: each such host's HTTPS is left out, or its Service
// refused, with a Warning Event that says why; the good host and the
// plain routes are served all along.
func TestHTTPSHostileSecrets(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	other := newNamespace(t)
	ca := newCA(t, "e2e CA")
	cert := func(host string, opts testbed.IssueOptions) testbed.Issued { return issue(t, ca, opts, host) }
	good := cert("good.example.test", testbed.IssueOptions{})
	tlsService(t, ns, "good", "good.example.test", "good-tls")
	createSecret(t, ns, testbed.TLSSecret("good-tls", good))
	createService(t, ns, service{name: "plain", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	b := startBackend(t, "plain", netip.AddrPortFrom(nextIP(), 8080))
	createSlice(t, ns, "plain", []slicePort{sp("http", 8080)}, endpoint{Addr: b.Addr()})

	opaque := testbed.TLSSecret("opaque-tls", cert("opaque.example.test", testbed.IssueOptions{}))
	opaque.Type = corev1.SecretTypeOpaque
	mismatch := testbed.TLSSecret("mismatch-tls", cert("mismatch.example.test", testbed.IssueOptions{}))
	mismatch.Data[corev1.TLSPrivateKeyKey] = good.KeyPEM
	garbage := testbed.TLSSecret("garbage-tls", good)
	garbage.Data[corev1.TLSCertKey] = []byte("-----BEGIN CERTIFICATE-----\n}; include /etc/passwd;\n-----END CERTIFICATE-----\n")
	expired := testbed.TLSSecret("expired-tls", cert("expired.example.test",
		testbed.IssueOptions{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)}))
	wrongHost := testbed.TLSSecret("wronghost-tls", cert("elsewhere.example.test", testbed.IssueOptions{}))
	elsewhere := testbed.TLSSecret("stolen-tls", cert("stolen.example.test", testbed.IssueOptions{}))
	for _, s := range []*corev1.Secret{opaque, mismatch, garbage, expired, wrongHost} {
		createSecret(t, ns, s)
	}
	createSecret(t, other, elsewhere)

	cases := []struct {
		name, host, secret string
		// reason is the Warning Event's; annotation says the Service is
		// refused (InvalidAnnotation) instead.
		reason, message string
	}{
		{"opaque", "opaque.example.test", "opaque-tls", "TLSSecretNotFound", "Secret " + ns + "/opaque-tls: not found (or not of type kubernetes.io/tls)"},
		{"mismatch", "mismatch.example.test", "mismatch-tls", "InvalidTLSSecret", "tls.key is not the key of the certificate in tls.crt"},
		{"garbage", "garbage.example.test", "garbage-tls", "InvalidTLSSecret", "tls.crt holds no PEM CERTIFICATE block"},
		{"expired", "expired.example.test", "expired-tls", "CertificateExpired", "the certificate expired on"},
		{"wronghost", "wronghost.example.test", "wronghost-tls", "InvalidTLSSecret", `does not cover host wronghost.example.test: its names are "elsewhere.example.test"`},
		{"stolen", "stolen.example.test", "stolen-tls", "TLSSecretNotFound", "Secret " + ns + "/stolen-tls: not found"},
		{"borrow", "borrow.example.test", other + "/stolen-tls", "InvalidAnnotation", "only Secrets of its own namespace can be used"},
		{"inject", "inject.example.test", "x;\n ssl_certificate_key /etc/shadow; #", "InvalidAnnotation", `annotation kube-nginx-sync.io/tls-secret="x;\n ssl_certificate_key`},
	}
	for _, c := range cases {
		tlsService(t, ns, c.name, c.host, c.secret)
	}
	httpsPort := freePort(t)
	a := startRun(t, ns, "--https-port", strconv.Itoa(httpsPort))

	cl := httpsClient(httpsPort, ca, false)
	servedAll := func() error {
		if resp, body, err := httpsGet(cl, httpsPort, "good.example.test", "/ok"); err != nil || resp.StatusCode != 200 || body != "good /ok" {
			return fmt.Errorf("the good host: %v %v %q", err, resp, body)
		}
		if status, body, err := tryGet(a.port, "", "/"+ns+"/plain/ok"); err != nil || status != 200 || body != "plain /ok" {
			return fmt.Errorf("the plain route: %v %d %q", err, status, body)
		}
		return nil
	}
	eventually(t, 15*time.Second, servedAll)
	for _, c := range cases {
		eventually(t, 15*time.Second, func() error {
			evs := warningEvents(t, ns, c.name, c.reason)
			if len(evs) == 0 || !strings.Contains(evs[0].Message, c.message) {
				return fmt.Errorf("%s: no %s Warning Event with %q: %v", c.name, c.reason, c.message, evs)
			}
			return nil
		})
		if err := refusedAtHandshake(httpsPort, c.host, ca); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if err := servedAll(); err != nil {
		t.Error(err)
	}
	config, _ := os.ReadFile(filepath.Join(a.confDir, "default.conf"))
	mustNotContain(t, string(config), "passwd", "shadow", "/stolen")
	if n := len(testbed.CertificateFiles(t, a.confDir)); n != 1 {
		t.Errorf("%d certificate files, want the good host's only", n)
	}
	if got := metric(t, a.listen, `kube_nginx_sync_https_hosts{state="left_out"}`); got != 6 {
		t.Errorf("https_hosts{state=left_out} = %v, want 6", got)
	}
	// explain gives the reason.
	res := runBinary(t, "explain", "--kubeconfig", cluster.Kubeconfig, "-n", ns, ns+"/mismatch")
	if !strings.Contains(res.stdout, "  https: InvalidTLSSecret: HTTPS of host mismatch.example.test left out: Secret "+ns+"/mismatch-tls: tls.key is not the key") {
		t.Errorf("explain mismatch:\n%s%s", res.stdout, res.stderr)
	}

	// Fixing a Secret serves its host, and says so.
	fixed := testbed.TLSSecret("mismatch-tls", cert("mismatch.example.test", testbed.IssueOptions{}))
	fixed.Namespace = ns
	if _, err := client.CoreV1().Secrets(ns).Update(context.Background(), fixed, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, func() error {
		if _, err := handshake(httpsPort, "mismatch.example.test", ca); err != nil {
			return err
		}
		list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
			FieldSelector: "involvedObject.name=mismatch,reason=HTTPSResolved,type=Normal"})
		if err != nil || len(list.Items) == 0 {
			return errors.New("no HTTPSResolved Event")
		}
		return nil
	})
}
