package controller

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/google/go-cmp/cmp"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// clusterOf makes n Services with one EndpointSlice of 3 ready endpoints
// each, spread over 10 namespaces.
func clusterOf(n int) kube.Objects {
	services, slices := testbed.Cluster(n, 3)
	return kube.Objects{Services: services, EndpointSlices: slices}
}

// BenchmarkRebuildRender is one rebuild of the watch loop: model from the
// cached objects, then the rendered bytes.
func BenchmarkRebuildRender(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			objs := clusterOf(n)
			r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
			if err != nil {
				b.Fatal(err)
			}
			p := &Pipeline{Renderer: r}
			var size int
			b.ReportAllocs()
			for b.Loop() {
				res, file, err := p.Generate(objs)
				if err != nil || res.Config.Routes() != n {
					b.Fatalf("routes %d, err %v", res.Config.Routes(), err)
				}
				size = len(file.Data)
			}
			b.ReportMetric(float64(size), "config-bytes")
		})
	}
}

// TestApplyLeavesOutTheServicesNginxRefuses: a user's template that breaks
// on some Services' values (here: it assumes numeric ports) makes nginx -t
// refuse the config; Apply finds exactly those Services by bisection,
// leaves them out and writes the rest.
func TestApplyLeavesOutTheServicesNginxRefuses(t *testing.T) {
	t.Parallel()
	nginxBin := testbed.NginxBinary(t)
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, TemplateName: "numeric-ports.tmpl", Template: `
{{- range .Servers}}
server {
    listen 80;
{{- range .Locations}}
    location {{.Path}} { proxy_pass http://127.0.0.1:{{.Service.Port}}; }
{{- end}}
}
{{- end}}
`})
	if err != nil {
		t.Fatal(err)
	}
	var validations atomic.Int32
	p := &Pipeline{Renderer: r, Output: filepath.Join(t.TempDir(), "default.conf"),
		Validate: func(ctx context.Context, path string) error {
			validations.Add(1)
			return nginx.ValidateSnippet(ctx, nginxBin, path)
		}}
	svc := func(name, port string, rv string) *corev1.Service {
		sp := corev1.ServicePort{Name: port, Port: 8080}
		if port == "" {
			sp.Port = 8081
		}
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: rv},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{sp}}}
	}
	var services []*corev1.Service
	for i := range 16 {
		services = append(services, svc(fmt.Sprintf("ok-%02d", i), "", "1"))
	}
	services = append(services, svc("named-a", "http", "1"), svc("zz-named", "web", "1"))

	out, err := p.Apply(context.Background(), kube.Objects{Services: services})
	if err != nil {
		t.Fatal(err)
	}
	var refused []string
	for _, rej := range out.Result.Rejected {
		if rej.Reason != model.ReasonRefusedByNginx || !strings.Contains(rej.Message, "invalid port") {
			t.Errorf("rejection %v", rej)
		}
		refused = append(refused, rej.Service.Name)
	}
	if strings.Join(refused, " ") != "named-a zz-named" {
		t.Errorf("refused %v, want named-a and zz-named", refused)
	}
	if n := strings.Count(string(out.Data), "location /ns/ok-"); n != 16 || !out.Changed {
		t.Errorf("%d good routes written (changed %v), want all 16", n, out.Changed)
	}
	first := validations.Load()
	t.Logf("18 Services, 2 refused: %d nginx -t runs", first)
	if first > 16 {
		t.Errorf("%d validations to find 2 of 18 Services: not a bisection", first)
	}

	// The next rebuild remembers the culprits: one validation, the write's.
	validations.Store(0)
	if _, err := p.Apply(context.Background(), kube.Objects{Services: services}); err != nil {
		t.Fatal(err)
	}
	if n := validations.Load(); n > 1 {
		t.Errorf("%d validations on an unchanged rebuild", n)
	}

	// Fixed (a new resourceVersion, a numeric port): routed again.
	services[len(services)-1] = svc("zz-named", "", "2")
	out, err = p.Apply(context.Background(), kube.Objects{Services: services})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Result.Rejected) != 1 || !strings.Contains(string(out.Data), "location /ns/zz-named/") {
		t.Errorf("after the fix: rejected %v", out.Result.Rejected)
	}
}

// TestApplyWritesTheTableFile: with a TableFile, Apply writes the routes
// and the ready endpoints of every routed Service port there, and
// rewrites it only when they change.
func TestApplyWritesTheTableFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	p := &Pipeline{Renderer: r, Output: filepath.Join(dir, "default.conf"), TableFile: filepath.Join(dir, luaplane.FileName)}
	objs := clusterOf(3)
	out, err := p.Apply(context.Background(), objs)
	if err != nil || !out.TableChanged || out.TableVersion == "" {
		t.Fatalf("Apply = %+v, %v", out, err)
	}
	table, version, err := luaplane.Read(p.TableFile)
	if err != nil || version != out.TableVersion {
		t.Fatalf("the table file: %v, version %q; want %q", err, version, out.TableVersion)
	}
	if len(table.Routes) != 3 || len(table.Endpoints) != 3 {
		t.Fatalf("%d routes and %d endpoint lists in the file, want 3 and 3", len(table.Routes), len(table.Endpoints))
	}
	for _, e := range table.Endpoints {
		if len(e.Addrs) != 3 {
			t.Errorf("%s: %d endpoints, want 3", e.Key, len(e.Addrs))
		}
	}
	again, err := p.Apply(context.Background(), objs)
	if err != nil || again.TableChanged || again.TableVersion != out.TableVersion {
		t.Errorf("Apply of the same objects = %+v, %v; want the file unchanged", again, err)
	}
}

// BenchmarkApplyLuaEndpointFlip is the rebuild of the lua shape for one
// endpoint flipped: model, config (unchanged), table (one new part) and
// its write.
func BenchmarkApplyLuaEndpointFlip(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("services-%d", n), func(b *testing.B) {
			objs := clusterOf(n)
			dir := b.TempDir()
			table := filepath.Join(dir, luaplane.FileName)
			r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, Shape: nginxconf.ShapeLua, TableFile: table})
			if err != nil {
				b.Fatal(err)
			}
			p := &Pipeline{Renderer: r, Output: filepath.Join(dir, "default.conf"), TableFile: table}
			ctx := context.Background()
			if _, err := p.Apply(ctx, objs); err != nil {
				b.Fatal(err)
			}
			slice := objs.EndpointSlices[n/2].DeepCopy()
			objs.EndpointSlices[n/2] = slice
			b.ReportAllocs()
			for b.Loop() {
				ready := slice.Endpoints[0].Conditions.Ready
				*ready = !*ready
				out, err := p.Apply(ctx, objs)
				if err != nil || out.Changed || !out.TableChanged {
					b.Fatalf("Apply = %+v, %v; want the table alone changed", out, err)
				}
			}
		})
	}
}

// lookupIn finds a Service and its EndpointSlices in objs.
func lookupIn(objs kube.Objects) ServiceLookup {
	return func(ref model.ServiceRef) (*corev1.Service, []*discoveryv1.EndpointSlice, bool) {
		var eps []*discoveryv1.EndpointSlice
		for _, s := range objs.EndpointSlices {
			if s.Namespace == ref.Namespace && s.Labels[discoveryv1.LabelServiceName] == ref.Name {
				eps = append(eps, s)
			}
		}
		for _, s := range objs.Services {
			if s.Namespace == ref.Namespace && s.Name == ref.Name {
				return s, eps, true
			}
		}
		return nil, nil, false
	}
}

// TestApplyEndpointsAsApply: in the lua shape, ApplyEndpoints writes the
// table that Apply would write for the new EndpointSlices, and the config
// stays as it is; in the other shapes it does nothing and says so.
func TestApplyEndpointsAsApply(t *testing.T) {
	t.Parallel()
	newPipeline := func(dir string) *Pipeline {
		table := filepath.Join(dir, luaplane.FileName)
		r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, Shape: nginxconf.ShapeLua, TableFile: table})
		if err != nil {
			t.Fatal(err)
		}
		return &Pipeline{Renderer: r, Output: filepath.Join(dir, "default.conf"), TableFile: table}
	}
	objs := clusterOf(300)
	p := newPipeline(t.TempDir())
	ctx := context.Background()
	if _, ok, _ := p.ApplyEndpoints(nil, lookupIn(objs)); ok {
		t.Error("ApplyEndpoints before any Apply did something")
	}
	first, err := p.Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	config, err := os.ReadFile(p.Output)
	if err != nil {
		t.Fatal(err)
	}
	// Flip endpoints of a few Services: one loses all, one gets a new one,
	// one is not routed (not in the cluster's Services at all).
	var refs []model.ServiceRef
	for _, i := range []int{3, 150, 299} {
		s := objs.EndpointSlices[i].DeepCopy()
		objs.EndpointSlices[i] = s
		refs = append(refs, model.ServiceRef{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]})
		switch i {
		case 3:
			for j := range s.Endpoints {
				s.Endpoints[j].Conditions.Ready = ptr.To(false)
			}
		default:
			s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.200.0.%d", i%250)}})
		}
	}
	refs = append(refs, model.ServiceRef{Namespace: "ns-0", Name: "not-there"})
	out, ok, err := p.ApplyEndpoints(refs, lookupIn(objs))
	if !ok || err != nil || !out.TableChanged || out.TableVersion == first.TableVersion {
		t.Fatalf("ApplyEndpoints = %+v, %v, %v", out, ok, err)
	}
	if again, err := os.ReadFile(p.Output); err != nil || !bytes.Equal(again, config) {
		t.Errorf("ApplyEndpoints changed the config: %v", err)
	}
	whole := newPipeline(t.TempDir())
	want, err := whole.Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if want.TableVersion != out.TableVersion {
		t.Fatalf("ApplyEndpoints wrote table %s, Apply writes %s", out.TableVersion, want.TableVersion)
	}
	got, _, err := luaplane.Read(p.TableFile)
	if err != nil {
		t.Fatal(err)
	}
	wantTable, _, err := luaplane.Read(whole.TableFile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantTable, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("the table (-Apply +ApplyEndpoints):\n%s", diff)
	}
	// Nothing new: nothing written.
	if out, ok, err := p.ApplyEndpoints(refs, lookupIn(objs)); !ok || err != nil || out.TableChanged {
		t.Errorf("ApplyEndpoints of the same slices = %+v, %v, %v", out, ok, err)
	}

	// The upstream shape holds endpoints in its config: Apply must run.
	r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
	if err != nil {
		t.Fatal(err)
	}
	up := &Pipeline{Renderer: r, Output: filepath.Join(t.TempDir(), "default.conf")}
	if _, err := up.Apply(ctx, objs); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := up.ApplyEndpoints(refs, lookupIn(objs)); ok {
		t.Error("ApplyEndpoints did something in the upstream shape")
	}
}

// TestApplyEndpointsOfIngressRoutedServices: with Ingresses, an endpoint
// change of a Service that an Ingress routes (one the selector leaves out,
// and one it selects) is left to Apply, which writes it; a change of a
// Service that only its own routes route takes the fast path. Either way
// the table ends as Apply writes it.
func TestApplyEndpointsOfIngressRoutedServices(t *testing.T) {
	t.Parallel()
	selector := labels.SelectorFromSet(testbed.ExposedLabels)
	newPipeline := func(dir string) *Pipeline {
		table := filepath.Join(dir, luaplane.FileName)
		r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80, Shape: nginxconf.ShapeLua, TableFile: table})
		if err != nil {
			t.Fatal(err)
		}
		return &Pipeline{Renderer: r, Output: filepath.Join(dir, "default.conf"), TableFile: table,
			Model: model.Options{Selector: selector, Ingress: model.IngressOptions{Class: "kns"}}}
	}
	objs := clusterOf(20)
	for _, s := range objs.Services[:10] {
		s.Labels = testbed.ExposedLabels
	}
	objs.IngressClasses = []*networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "kns"},
		Spec: networkingv1.IngressClassSpec{Controller: model.ControllerName}}}
	path := func(p, svc string) networkingv1.HTTPIngressPath {
		return networkingv1.HTTPIngressPath{Path: p, PathType: ptr.To(networkingv1.PathTypePrefix),
			Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc,
				Port: networkingv1.ServiceBackendPort{Name: "http"}}}}
	}
	objs.Ingresses = []*networkingv1.Ingress{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns-5", Name: "shop"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("kns"), Rules: []networkingv1.IngressRule{{
			Host: "shop.example.com",
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				// svc-00015 is not selected; svc-00005 is, and routed
				// by its own route too.
				Paths: []networkingv1.HTTPIngressPath{path("/cart/", "svc-00015"), path("/five/", "svc-00005")}}},
		}}},
	}}
	p := newPipeline(t.TempDir())
	ctx := context.Background()
	first, err := p.Apply(ctx, objs)
	if err != nil {
		t.Fatal(err)
	}
	if n := first.Result.Config.Routes(); n != 12 {
		t.Fatalf("%d routes, want 12 (10 Services, 2 Ingress paths)", n)
	}
	// addEndpoint gives Service i one more ready endpoint, in a new copy
	// of its slice (the cache's objects are not changed).
	addEndpoint := func(i int) model.ServiceRef {
		s := objs.EndpointSlices[i].DeepCopy()
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{fmt.Sprintf("10.201.0.%d", i)},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
		objs.EndpointSlices[i] = s
		return model.ServiceRef{Namespace: s.Namespace, Name: s.Labels[discoveryv1.LabelServiceName]}
	}
	// sync is what the controller does: the fast path, else Apply.
	sync := func(refs ...model.ServiceRef) (fast bool) {
		t.Helper()
		_, ok, err := p.ApplyEndpoints(refs, lookupIn(objs))
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			if _, err := p.Apply(ctx, objs); err != nil {
				t.Fatal(err)
			}
		}
		want, err := newPipeline(t.TempDir()).Apply(ctx, objs)
		if err != nil {
			t.Fatal(err)
		}
		got, version, err := luaplane.Read(p.TableFile)
		if err != nil {
			t.Fatal(err)
		}
		if version != want.TableVersion {
			t.Errorf("after the change of %v: table %s, Apply writes %s:\n%+v", refs, version, want.TableVersion, got)
		}
		return ok
	}
	for _, c := range []struct {
		service int
		fast    bool
	}{{15, false}, {5, false}, {3, true}, {16, true}} {
		if fast := sync(addEndpoint(c.service)); fast != c.fast {
			t.Errorf("the change of svc-%05d took the fast path: %v, want %v", c.service, fast, c.fast)
		}
	}
	// A change of several Services, one of them routed by the Ingress.
	if fast := sync(addEndpoint(7), addEndpoint(15)); fast {
		t.Error("a change of an Ingress's Service among others took the fast path")
	}
	got, _, err := luaplane.Read(p.TableFile)
	if err != nil {
		t.Fatal(err)
	}
	want := netip.MustParseAddrPort("10.201.0.15:8080")
	for _, e := range got.Endpoints {
		if e.Key == "ns-5/svc-00015:http" && !slices.Contains(e.Addrs, want) {
			t.Errorf("the table's endpoints of ns-5/svc-00015:http = %v, want %v among them", e.Addrs, want)
		}
	}
}
