package controller

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestIngressEvents: one Warning per Ingress and reason, not repeated by
// rebuilds that find the same, a new one when it changes, and a Normal one
// when all are gone.
func TestIngressEvents(t *testing.T) {
	t.Parallel()
	recorder := record.NewFakeRecorder(100)
	r := newIngressEventReporter(recorder, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "i"}}
	ref := model.IngressRef{Namespace: "ns", Name: "i"}
	events := func() []string {
		var out []string
		for {
			select {
			case e := <-recorder.Events:
				out = append(out, e)
			default: // the recorder is synchronous: the events are there by now
				return out
			}
		}
	}
	bad := model.IngressResult{
		Selected: []model.IngressRef{ref},
		Rejected: []model.IngressRejection{{Ingress: ref, Path: "(any host)/a (Prefix)", Reason: model.ReasonInvalidIngress, Message: "bad path"}},
		Warnings: []model.IngressWarning{
			{Ingress: ref, Reason: model.ReasonIgnoredAnnotation, Message: "ignored: nginx.ingress.kubernetes.io/a (no equivalent in kube-nginx-sync)"},
			{Ingress: ref, Reason: model.ReasonIgnoredAnnotation, Message: "ignored: nginx.ingress.kubernetes.io/b-snippet (snippets are never applied)"},
		},
	}
	r.report(bad, []*networkingv1.Ingress{ing})
	want := []string{
		"Warning IgnoredAnnotation ignored: nginx.ingress.kubernetes.io/a (no equivalent in kube-nginx-sync); ignored: nginx.ingress.kubernetes.io/b-snippet (snippets are never applied)",
		"Warning InvalidIngress not routed: (any host)/a (Prefix): bad path",
	}
	if got := events(); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	for range 3 {
		r.report(bad, []*networkingv1.Ingress{ing})
	}
	if got := events(); len(got) != 0 {
		t.Errorf("repeated events %q", got)
	}
	fewer := bad
	fewer.Warnings = nil
	r.report(fewer, []*networkingv1.Ingress{ing})
	if got := events(); len(got) != 0 {
		t.Errorf("events %q when one problem is gone and another stays", got)
	}
	r.report(model.IngressResult{Selected: []model.IngressRef{ref}}, []*networkingv1.Ingress{ing})
	if got, want := events(), []string{"Normal Routed routed: the problems reported before are resolved"}; !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
	// An Ingress that left the class is not told that it is routed.
	r.report(bad, []*networkingv1.Ingress{ing})
	events()
	r.report(model.IngressResult{}, []*networkingv1.Ingress{ing})
	if got := events(); len(got) != 0 {
		t.Errorf("events %q for an Ingress no longer of the class", got)
	}
}

// TestApplyRoutesIngresses: the Ingresses of the objects reach the model,
// also when Apply leaves Services out.
func TestApplyRoutesIngresses(t *testing.T) {
	t.Parallel()
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{Renderer: r, Output: filepath.Join(t.TempDir(), "default.conf"),
		Model: model.Options{Ingress: model.IngressOptions{Class: "kns"}}}
	objs := clusterOf(2)
	objs.IngressClasses = []*networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "kns"},
		Spec: networkingv1.IngressClassSpec{Controller: model.ControllerName}}}
	objs.Ingresses = []*networkingv1.Ingress{{
		ObjectMeta: metav1.ObjectMeta{Namespace: objs.Services[0].Namespace, Name: "front"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("kns"),
			DefaultBackend: &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{
				Name: objs.Services[0].Name, Port: networkingv1.ServiceBackendPort{Number: 80}}}},
	}}
	out, err := p.Apply(context.Background(), objs)
	if err != nil {
		t.Fatal(err)
	}
	if got := out.Result.Config.Routes(); got != 3 || !strings.Contains(string(out.Data), ", Ingress "+objs.Services[0].Namespace+"/front") {
		t.Errorf("%d routes, want the 2 Services' and the Ingress's:\n%s", got, out.Data)
	}
}

// TestIngressMetricsByReason: every reason's series is set on each
// rebuild; one that is gone reads 0, never disappears.
func TestIngressMetricsByReason(t *testing.T) {
	t.Parallel()
	m := newIngressMetrics(prometheus.NewRegistry())
	ing := model.IngressRef{Namespace: "ns", Name: "i"}
	m.observe(model.IngressResult{Selected: []model.IngressRef{ing},
		Warnings: []model.IngressWarning{{Ingress: ing, Reason: model.ReasonCertificateExpired}, {Ingress: ing, Reason: model.ReasonTLSSecretNotFound}}})
	for reason, want := range map[model.Reason]float64{model.ReasonCertificateExpired: 1, model.ReasonTLSSecretNotFound: 1, model.ReasonBackendNotFound: 0} {
		if got := testutil.ToFloat64(m.warnings.WithLabelValues(string(reason))); got != want {
			t.Errorf("warnings{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	m.observe(model.IngressResult{Selected: []model.IngressRef{ing}})
	if n := testutil.CollectAndCount(m.warnings); n != 5 {
		t.Errorf("%d warning series after the problems went, want 5 (the usual four, and the one seen)", n)
	}
	if got := testutil.ToFloat64(m.warnings.WithLabelValues(string(model.ReasonCertificateExpired))); got != 0 {
		t.Errorf("warnings{reason=CertificateExpired} = %v after it went, want 0", got)
	}
}
