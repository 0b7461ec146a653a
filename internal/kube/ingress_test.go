package kube

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	k8sfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

func ingressObjects() []runtime.Object {
	ing := func(ns, name string) *networkingv1.Ingress {
		return &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("kns")}}
	}
	class := func(name string) *networkingv1.IngressClass {
		return &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: model.ControllerName}}
	}
	return append(objects(), ing("a", "front"), ing("b", "api"), class("kns"), class("other"))
}

func TestStripIngressKeepsWhatRoutingNeeds(t *testing.T) {
	t.Parallel()
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "i", ResourceVersion: "3",
			Annotations: map[string]string{
				model.AnnotationMaxBodySize:                        "1m",
				model.IngressNginxPrefix + "rewrite-target":        "/",
				model.AnnotationLegacyIngressClass:                 "kns",
				"kubectl.kubernetes.io/last-applied-configuration": "{... a big blob ...}",
			},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "a.example.com"}}},
		Status: networkingv1.IngressStatus{LoadBalancer: networkingv1.IngressLoadBalancerStatus{
			Ingress: []networkingv1.IngressLoadBalancerIngress{{IP: "198.18.0.1"}}}},
	}
	got, err := stripIngress(ing.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	want := ing.DeepCopy()
	want.ManagedFields = nil
	delete(want.Annotations, "kubectl.kubernetes.io/last-applied-configuration")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stripped Ingress (-want +got):\n%s", diff)
	}
	class := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "kns",
		Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true", "x": "y"}},
		Spec: networkingv1.IngressClassSpec{Controller: model.ControllerName,
			Parameters: &networkingv1.IngressClassParametersReference{Kind: "X", Name: "y"}}}
	gotClass, _ := stripIngress(class.DeepCopy())
	wantClass := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "kns",
		Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
		Spec: networkingv1.IngressClassSpec{Controller: model.ControllerName}}
	if diff := cmp.Diff(wantClass, gotClass); diff != "" {
		t.Errorf("stripped IngressClass (-want +got):\n%s", diff)
	}
}

// With an IngressClass, List reads the Ingresses and that IngressClass,
// and every Service: an Ingress may send to one the selector leaves out.
func TestListIngresses(t *testing.T) {
	t.Parallel()
	sel := labels.SelectorFromSet(labels.Set{"expose": "true"})
	got, err := List(context.Background(), k8sfake.NewClientset(ingressObjects()...), Selection{Selector: sel, Namespaces: []string{"a"}, IngressClass: "kns"})
	if err != nil {
		t.Fatal(err)
	}
	if s := names(got.Services); s != "a/hidden a/web" {
		t.Errorf("services %q, want every Service of a", s)
	}
	if s := names(got.EndpointSlices); s != "a/hidden-1 a/web-1" {
		t.Errorf("endpoint slices %q", s)
	}
	if s := names(got.Ingresses); s != "a/front" {
		t.Errorf("ingresses %q", s)
	}
	if s := names(got.IngressClasses); s != "/kns" {
		t.Errorf("ingress classes %q, want the one of the selection", s)
	}
	none, err := List(context.Background(), k8sfake.NewClientset(ingressObjects()...), Selection{Selector: sel})
	if err != nil || len(none.Ingresses) != 0 || len(none.IngressClasses) != 0 || names(none.Services) != "a/web b/api" {
		t.Errorf("without an IngressClass: %v, %q, %d ingresses: want the selected Services and no Ingress", err, names(none.Services), len(none.Ingresses))
	}
}

func TestWatcherIngresses(t *testing.T) {
	t.Parallel()
	client := k8sfake.NewClientset(ingressObjects()...)
	w, ctx := runWatcher(t, client, Selection{Selector: labels.SelectorFromSet(labels.Set{"expose": "true"}), IngressClass: "kns"}, WatcherOptions{})
	objs := w.Objects()
	sorted := func(s []string) []string { slices.Sort(s); return s }
	var ings []string
	for _, i := range objs.Ingresses {
		ings = append(ings, i.Namespace+"/"+i.Name)
	}
	if got := sorted(ings); !slices.Equal(got, []string{"a/front", "b/api"}) {
		t.Errorf("ingresses %v", got)
	}
	if len(objs.IngressClasses) != 1 || objs.IngressClasses[0].Name != "kns" {
		t.Errorf("ingress classes %v, want kns only", names(objs.IngressClasses))
	}
	if len(objs.Services) != 3 {
		t.Errorf("services %q, want all three", names(objs.Services))
	}
	// A new Ingress reaches the cache.
	if _, err := client.NetworkingV1().Ingresses("b").Create(ctx, &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: "new"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the new Ingress in the cache", func() bool { return len(w.Objects().Ingresses) == 3 })
}

func TestLoadFileIngresses(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "objects.yaml")
	const text = `apiVersion: v1
kind: List
items:
- apiVersion: networking.k8s.io/v1
  kind: Ingress
  metadata: {name: front, namespace: shop}
  spec:
    ingressClassName: kns
    rules:
    - host: shop.example.com
      http:
        paths:
        - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
- apiVersion: networking.k8s.io/v1
  kind: IngressClass
  metadata: {name: kns}
  spec: {controller: kube-nginx-sync.io/ingress-controller}
`
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	objs, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs.Ingresses) != 1 || objs.Ingresses[0].Spec.Rules[0].HTTP.Paths[0].Backend.Service.Name != "web" ||
		len(objs.IngressClasses) != 1 || objs.IngressClasses[0].Spec.Controller != model.ControllerName {
		t.Errorf("LoadFile = %+v", objs)
	}
}

// TestWatcherStubsOtherClasses: the Ingresses of another class are cached
// as stubs (no rules, no annotations but the class), and their changes
// call no OnChange; one that joins the class comes whole, and is a change.
func TestWatcherStubsOtherClasses(t *testing.T) {
	t.Parallel()
	other := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "theirs", ResourceVersion: "1",
		Annotations: map[string]string{model.AnnotationLegacyIngressClass: "nginx", model.IngressNginxPrefix + "rewrite-target": "/"}},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: "theirs.example.com"}}}}
	client := k8sfake.NewClientset(append(ingressObjects(), other)...)
	var changes atomic.Int32
	w, ctx := runWatcher(t, client, Selection{IngressClass: "kns"}, WatcherOptions{OnChange: func() { changes.Add(1) }})
	cached := func() *networkingv1.Ingress {
		for _, i := range w.Objects().Ingresses {
			if i.Name == "theirs" {
				return i
			}
		}
		t.Fatal("theirs is not cached")
		return nil
	}
	if c := cached(); len(c.Spec.Rules) != 0 || len(c.Annotations) != 1 || c.Annotations[model.AnnotationLegacyIngressClass] != "nginx" {
		t.Errorf("another class's Ingress cached as %+v, want a stub", c)
	}

	// Changes of another class's Ingresses are not reported; those that
	// may be ours are (the filter of the informer's handler).
	stub := cached()
	ours := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "x"}}
	before := changes.Load()
	w.ingressesChanged(stub, stub)
	w.ingressesChanged(cache.DeletedFinalStateUnknown{Key: "a/theirs", Obj: stub})
	if n := changes.Load() - before; n != 0 {
		t.Errorf("%d changes reported for another class's Ingress", n)
	}
	w.ingressesChanged(stub, ours)
	w.ingressesChanged(ours)
	if n := changes.Load() - before; n != 2 {
		t.Errorf("%d changes reported for two of an Ingress that may be ours, want 2", n)
	}

	updated := other.DeepCopy()
	updated.Spec.Rules[0].Host = "changed.example.com"
	// theirs joins the class: cached whole, and reported.
	joined := updated.DeepCopy()
	// (The fake client keeps the resource versions it is given; an update
	// that keeps one is taken for a resync.)
	joined.Annotations[model.AnnotationLegacyIngressClass], joined.ResourceVersion = "kns", "2"
	before = changes.Load()
	if _, err := client.NetworkingV1().Ingresses("a").Update(ctx, joined, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "theirs whole in the cache", func() bool { return len(cached().Spec.Rules) == 1 })
	waitFor(t, "the change reported", func() bool { return changes.Load() > before })
}
