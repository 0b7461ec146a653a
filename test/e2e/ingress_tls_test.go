//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// TestIngressTLS: an Ingress's tls section serves its hosts over HTTPS
// with the Secret's certificate, curl verifying the chain; a wildcard entry
// covers a host under it; plain HTTP redirects with 308; HSTS comes from
// the annotation; a host the section does not list stays plain; a host
// whose HTTPS an older Service set keeps the Service's, and the Ingress is
// told (TLSConflict), its routes there left out and its other hosts
// served; a missing Secret is a Warning Event and its host still
// redirects; a renewed Secret is served; explain says it. In the upstream
// and the lua shape.
func TestIngressTLS(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIngressClass(t, ns, "")
	ca := newCA(t, "e2e Ingress CA")
	shop, apps, plain := "shop."+ns+".test", "x.apps."+ns+".test", "plain."+ns+".test"
	taken, gone := "taken."+ns+".test", "gone."+ns+".test"
	first := issue(t, ca, testbed.IssueOptions{}, shop, "*.apps."+ns+".test")
	createSecret(t, ns, testbed.TLSSecret("shop-tls", first))
	takenCert := issue(t, ca, testbed.IssueOptions{}, taken)
	createSecret(t, ns, testbed.TLSSecret("taken-tls", takenCert))
	ingressBackend(t, ns, "web")
	// The Service holds taken's HTTPS: it is older than the Ingress.
	tlsService(t, ns, "owner", taken, "taken-tls")
	waitNextSecond(t, ns)
	ing := ingressObject("front", ptr.To(ns), "",
		ingressRule(shop, "Prefix:/=web"), ingressRule(apps, "Prefix:/=web"), ingressRule(plain, "Prefix:/=web"),
		ingressRule(taken, "Prefix:/ing=web"), ingressRule(gone, "Prefix:/=web"))
	ing.Annotations = map[string]string{"kube-nginx-sync.io/hsts": "max-age=60"}
	ing.Spec.TLS = []networkingv1.IngressTLS{
		{Hosts: []string{shop, "*.apps." + ns + ".test", taken}, SecretName: "shop-tls"},
		{Hosts: []string{gone}, SecretName: "gone-tls"},
	}
	createIngress(t, ns, ing)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, shape := range []string{"upstream", "lua"} {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			httpsPort := freePort(t)
			a := startRun(t, ns, "--shape", shape, "--ingress-class", ns, "--https-port", strconv.Itoa(httpsPort))

			url := fmt.Sprintf("https://%s:%d/hello", shop, httpsPort)
			eventually(t, 30*time.Second, func() error {
				out, err := exec.Command("curl", "-sS", "--cacert", caFile, "--resolve", fmt.Sprintf("%s:%d:127.0.0.1", shop, httpsPort),
					"-w", " %{http_code}", url).CombinedOutput()
				if err != nil || string(out) != "web /hello 200" {
					return fmt.Errorf("curl %s: %v: %s", url, err, out)
				}
				return nil
			})
			c := httpsClient(httpsPort, ca, false)
			for _, host := range []string{shop, apps} {
				resp, body, err := httpsGet(c, httpsPort, host, "/a")
				switch {
				case err != nil || resp.StatusCode != 200 || body != "web /a":
					t.Errorf("GET https://%s/a: %v %v %q", host, err, resp, body)
				case resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first.Serial) != 0:
					t.Errorf("%s: served serial %v, want %v", host, resp.TLS.PeerCertificates[0].SerialNumber, first.Serial)
				case resp.Header.Get("Strict-Transport-Security") != "max-age=60":
					t.Errorf("%s: HSTS %q, want max-age=60", host, resp.Header.Get("Strict-Transport-Security"))
				}
			}
			// Plain HTTP: the tls hosts redirect, the others are served.
			for _, host := range []string{shop, apps, gone} {
				if loc, err := redirected(a.port, host, "/a?b=1"); err != nil || loc != fmt.Sprintf("https://%s:%d/a?b=1", host, httpsPort) {
					t.Errorf("plain HTTP to %s: %q, %v; want a 308 to HTTPS", host, loc, err)
				}
			}
			if err := checkRequests(a.port, []request{served(plain, "/a", "web")}); err != nil {
				t.Error(err)
			}
			for _, sni := range []string{plain, gone, "y.z.apps." + ns + ".test"} {
				if err := refusedAtHandshake(httpsPort, sni, ca); err != nil {
					t.Error(err)
				}
			}
			// taken keeps the Service's HTTPS; the Ingress's route there is
			// left out, so the Service's route of "/" answers.
			resp, body, err := httpsGet(c, httpsPort, taken, "/ing/x")
			if err != nil || body != "owner /ing/x" || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(takenCert.Serial) != 0 {
				t.Errorf("GET https://%s/ing/x: %v %v %q; want the Service's backend, with its certificate", taken, err, resp, body)
			}
			eventually(t, 20*time.Second, func() error {
				for _, reason := range []string{"TLSConflict", "TLSSecretNotFound"} {
					if len(warningEvents(t, ns, "front", reason)) == 0 {
						return fmt.Errorf("no %s Warning Event on the Ingress front", reason)
					}
				}
				return nil
			})
		})
	}
	res := runBinary(t, "explain", "--kubeconfig", cluster.Kubeconfig, "--namespace", ns, "--ingress-class", ns, "ingress/"+ns+"/front")
	for _, want := range []string{
		fmt.Sprintf("  https: host %s, with the certificate of Secret %s/shop-tls (serial %s, valid until %s); plain HTTP redirects to HTTPS (308); HSTS max-age=60",
			shop, ns, first.Serial.Text(16), first.Cert.NotAfter.UTC().Format(time.RFC3339)),
		"  not routed: tls of host " + taken + ": TLSConflict: host " + taken + "'s HTTPS is set by Service " + ns + "/owner",
		"  warning: TLSSecretNotFound: HTTPS of host " + gone + " left out: Secret " + ns + "/gone-tls: not found",
	} {
		if res.code != 0 || !strings.Contains(res.stdout, want) {
			t.Errorf("explain: exit %d, lacks %q:\n%s%s", res.code, want, res.stdout, res.stderr)
		}
	}
}

// TestIngressTLSRenewal: the Secret of an Ingress's tls section gets a new
// certificate: it is served; the Secret named by an Ingress joins later.
func TestIngressTLSRenewal(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIngressClass(t, ns, "")
	ca := newCA(t, "e2e Ingress CA")
	host := "renew." + ns + ".test"
	ingressBackend(t, ns, "web")
	ing := ingressObject("front", ptr.To(ns), "", ingressRule(host, "Prefix:/=web"))
	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{host}, SecretName: "web-tls"}}
	createIngress(t, ns, ing)
	httpsPort := freePort(t)
	a := startRun(t, ns, "--ingress-class", ns, "--https-port", strconv.Itoa(httpsPort))

	// No Secret yet: plain HTTP redirects, and the handshake is refused.
	// Then it is created, then renewed.
	eventually(t, 20*time.Second, func() error {
		_, err := redirected(a.port, host, "/")
		return err
	})
	if err := refusedAtHandshake(httpsPort, host, ca); err != nil {
		t.Error(err)
	}
	for i, cert := range []testbed.Issued{issue(t, ca, testbed.IssueOptions{}, host), issue(t, ca, testbed.IssueOptions{}, host)} {
		secret := testbed.TLSSecret("web-tls", cert)
		var err error
		if i == 0 {
			_, err = client.CoreV1().Secrets(ns).Create(context.Background(), secret, metav1.CreateOptions{})
		} else {
			_, err = client.CoreV1().Secrets(ns).Update(context.Background(), secret, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, 20*time.Second, func() error {
			got, err := handshake(httpsPort, host, ca)
			if err != nil || got.SerialNumber.Cmp(cert.Serial) != 0 {
				return fmt.Errorf("certificate %d: handshake %v", i+1, err)
			}
			return nil
		})
	}
}

// redirected returns the Location of a 308 that plain HTTP to host's path
// answers.
func redirected(port int, host, path string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	if err != nil {
		return "", err
	}
	req.Host = host
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusPermanentRedirect {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return resp.Header.Get("Location"), nil
}
