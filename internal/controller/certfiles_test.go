package controller

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// httpsRenderer renders with HTTPS, certificate files in dir.
func httpsRenderer(t *testing.T, dir string) *nginxconf.Renderer {
	t.Helper()
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, HTTPSPort: 443, CertificateDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func issued(t *testing.T, ca *testbed.CA, opts testbed.IssueOptions, hosts ...string) testbed.Issued {
	t.Helper()
	c, err := ca.Issue(hosts, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func secretOf(name string, c testbed.Issued) *corev1.Secret {
	s := testbed.TLSSecret(name, c)
	s.Namespace = "ns"
	return s
}

// TestApplyWritesCertificates: a certificate's file is written, 0600,
// before the config that names it, which nginx accepts; a renewal is a new
// file and a config change; the old file stays for CertificateGrace after
// the config stopped naming it, then goes.
func TestApplyWritesCertificates(t *testing.T) {
	t.Parallel()
	nginxBin := testbed.NginxBinary(t)
	ca, err := testbed.NewCA("controller test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := time.Now()
	var namedWhenValidated []string
	p := &Pipeline{Renderer: httpsRenderer(t, dir), Output: filepath.Join(dir, "default.conf"), Now: func() time.Time { return now },
		Validate: func(ctx context.Context, path string) error {
			// The files the staged config names are there.
			data, _ := os.ReadFile(path)
			namedWhenValidated = confdir.CertificateFilesNamed(data)
			for _, n := range namedWhenValidated {
				if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
					t.Errorf("validating a config that names %s, which is not written: %v", n, err)
				}
			}
			return nginx.ValidateSnippet(ctx, nginxBin, path)
		}}
	svc := service("web", map[string]string{model.AnnotationHost: "shop.example.com", model.AnnotationTLSSecret: "web-tls"})
	first := issued(t, ca, testbed.IssueOptions{}, "shop.example.com")
	out, err := p.Apply(context.Background(), kube.Objects{Services: []*corev1.Service{svc}, Secrets: []*corev1.Secret{secretOf("web-tls", first)}})
	if err != nil {
		t.Fatal(err)
	}
	files := testbed.CertificateFiles(t, dir)
	if len(files) != 1 || len(namedWhenValidated) != 2 || namedWhenValidated[0] != files[0] {
		t.Fatalf("certificate files %q, the config names %q", files, namedWhenValidated)
	}
	info, err := os.Stat(filepath.Join(dir, files[0]))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("certificate file: %v, mode %v; want 0600", err, info.Mode().Perm())
	}
	data, _ := os.ReadFile(filepath.Join(dir, files[0]))
	if tls := out.Result.Config.Servers[1].TLS; string(data) != string(tls.PEM.Bytes()) {
		t.Error("the file does not hold the certificate and key")
	}
	if strings.Contains(string(out.Data), "PRIVATE KEY") || !out.CertificatesRemovableAt.IsZero() {
		t.Errorf("config with the key, or a file to remove (%v)", out.CertificatesRemovableAt)
	}

	// The renewal: a new file, a new config; the old file stays a while.
	renewed := issued(t, ca, testbed.IssueOptions{}, "shop.example.com")
	objs := kube.Objects{Services: []*corev1.Service{svc}, Secrets: []*corev1.Secret{secretOf("web-tls", renewed)}}
	if out, err = p.Apply(context.Background(), objs); err != nil || !out.Changed {
		t.Fatalf("renewal: changed %v, %v", out.Changed, err)
	}
	if files := testbed.CertificateFiles(t, dir); len(files) != 2 || !out.CertificatesRemovableAt.Equal(now.Add(CertificateGrace)) {
		t.Fatalf("after the renewal: files %q, removable at %v; want 2 files, the old one removable at %v", files, out.CertificatesRemovableAt, now.Add(CertificateGrace))
	}
	now = now.Add(CertificateGrace - time.Second)
	if out, _ = p.Apply(context.Background(), objs); out.Changed || len(testbed.CertificateFiles(t, dir)) != 2 {
		t.Errorf("before the grace ends: changed %v, files %q", out.Changed, testbed.CertificateFiles(t, dir))
	}
	now = now.Add(time.Second)
	if out, _ = p.Apply(context.Background(), objs); out.Changed || !out.CertificatesRemovableAt.IsZero() {
		t.Errorf("after the grace: changed %v, removable at %v", out.Changed, out.CertificatesRemovableAt)
	}
	if files := testbed.CertificateFiles(t, dir); len(files) != 1 || files[0] != confdir.CertificateFilesNamed(out.Data)[0] {
		t.Errorf("after the grace: files %q, want only the one the config names", files)
	}

	// A temporary file of a killed write goes at the start.
	tmp := filepath.Join(dir, confdir.TempPattern(files[0])[:len(confdir.TempPattern(files[0]))-1]+"123")
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if removed, err := p.RemoveTemporary(); err != nil || len(removed) != 1 {
		t.Errorf("RemoveTemporary = %q, %v", removed, err)
	}
}

// TestControllerHTTPSEventsAndMetrics: a host's HTTPS left out is a
// Warning Event on its Service (once), resolved with a Normal one; the
// expiry of each host's certificate is a metric; a rebuild is due when a
// certificate's state changes.
func TestControllerHTTPSEventsAndMetrics(t *testing.T) {
	t.Parallel()
	ca, err := testbed.NewCA("controller test CA")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := newFakeSource()
	recorder := record.NewFakeRecorder(100)
	registry := prometheus.NewRegistry()
	metrics := NewMetrics(registry)
	ctrl := New(Options{Source: src, Pipeline: &Pipeline{Renderer: httpsRenderer(t, dir), Output: filepath.Join(dir, "default.conf")},
		Debounce: time.Millisecond, MaxDelay: time.Millisecond, StaleAfter: time.Hour, Recorder: recorder, Metrics: metrics,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	event := func() string {
		select {
		case e := <-recorder.Events:
			return e
		default:
			return "no event"
		}
	}
	ctx := context.Background()
	src.setServices(service("web", map[string]string{model.AnnotationHost: "shop.example.com", model.AnnotationTLSSecret: "web-tls"}))
	ctrl.work(ctx)
	if e := event(); !strings.HasPrefix(e, "Warning TLSSecretNotFound HTTPS of host shop.example.com left out: Secret ns/web-tls: not found") {
		t.Errorf("event = %q", e)
	}
	ctrl.work(ctx)
	if e := event(); e != "no event" {
		t.Errorf("repeated: %q", e)
	}
	if n := testutil.ToFloat64(metrics.HTTPSHosts.WithLabelValues("left_out")); n != 1 {
		t.Errorf("https_hosts{state=left_out} = %v", n)
	}

	c := issued(t, ca, testbed.IssueOptions{NotAfter: time.Now().Add(30 * 24 * time.Hour)}, "shop.example.com")
	src.setSecrets(secretOf("web-tls", c))
	ctrl.work(ctx)
	if e := event(); e != "Normal HTTPSResolved https: the problem reported before is resolved" {
		t.Errorf("event = %q", e)
	}
	if got := testutil.ToFloat64(metrics.CertificateExpiry.WithLabelValues("shop.example.com")); got != float64(c.Cert.NotAfter.Unix()) {
		t.Errorf("certificate_expiry_timestamp_seconds = %v, want %v", got, c.Cert.NotAfter.Unix())
	}
	if want := c.Cert.NotAfter.Add(-model.CertificateExpiryWarning); !ctrl.recheckAt.Equal(want) {
		t.Errorf("recheck at %v, want %v (the certificate then expires soon)", ctrl.recheckAt, want)
	}
	// Nothing of the Secret's data is in a metric.
	mfs, err := registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	keyBody := strings.Split(string(c.KeyPEM), "\n")[1][:20]
	for _, mf := range mfs {
		if s := mf.String(); strings.Contains(s, "PRIVATE") || strings.Contains(s, keyBody) {
			t.Errorf("metric %s shows the key", mf.GetName())
		}
	}
}
