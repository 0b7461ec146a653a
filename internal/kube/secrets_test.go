package kube

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	testclock "k8s.io/utils/clock/testing"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

func tlsSecret(ns, name string, typ corev1.SecretType) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1",
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...}"},
			Labels:      map[string]string{"controller.cert-manager.io/fao": "true"}},
		Type: typ,
		Data: map[string][]byte{corev1.TLSCertKey: []byte("crt of " + name), corev1.TLSPrivateKeyKey: []byte("key of " + name), "ca.crt": []byte("ca")},
	}
}

func namingService(ns, name, secret string) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if secret != "" {
		s.Annotations = map[string]string{model.AnnotationHost: name + ".example.com", model.AnnotationTLSSecret: secret}
	}
	return s
}

// TestListTLSSecrets: only the Secrets that the Services name, of their
// namespace, with only tls.crt and tls.key; none asked for when none is
// named.
func TestListTLSSecrets(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(tlsSecret("a", "web-tls", corev1.SecretTypeTLS), tlsSecret("a", "other", corev1.SecretTypeTLS),
		tlsSecret("b", "web-tls", corev1.SecretTypeTLS))
	var lists atomic.Int32
	var selectors []string
	client.PrependReactor("list", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
		lists.Add(1)
		selectors = append(selectors, a.(k8stesting.ListAction).GetListRestrictions().Fields.String())
		return false, nil, nil
	})
	got, err := ListTLSSecrets(context.Background(), client, Selection{}, Objects{Services: []*corev1.Service{namingService("a", "web", "web-tls"), namingService("a", "plain", "")}})
	if err != nil {
		t.Fatal(err)
	}
	if names(got) != "a/web-tls" {
		t.Fatalf("secrets %q, want a/web-tls", names(got))
	}
	if s := got[0]; len(s.Data) != 2 || s.Annotations != nil || s.Labels != nil {
		t.Errorf("kept more than tls.crt and tls.key: %+v", s)
	}
	if len(selectors) != 1 || selectors[0] != "type=kubernetes.io/tls" {
		t.Errorf("field selectors %q, want type=kubernetes.io/tls", selectors)
	}
	if _, err := ListTLSSecrets(context.Background(), client, Selection{}, Objects{Services: []*corev1.Service{namingService("a", "plain", "")}}); err != nil || lists.Load() != 1 {
		t.Errorf("no Secret named: %d lists, %v; want none", lists.Load(), err)
	}
	// The Ingresses that may be of the class name Secrets too.
	ingresses := []*networkingv1.Ingress{namingIngress("a", "i", "kns", "other"), namingIngress("a", "j", "another", "web-tls")}
	got, err = ListTLSSecrets(context.Background(), client, Selection{IngressClass: "kns"}, Objects{Ingresses: ingresses})
	if err != nil || names(got) != "a/other" {
		t.Errorf("secrets of Ingresses %q (%v), want a/other", names(got), err)
	}
}

// namingIngress is an Ingress of class (none: "") whose tls section names
// secrets.
func namingIngress(ns, name, class string, secrets ...string) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if class != "" {
		ing.Spec.IngressClassName = &class
	}
	for _, s := range secrets {
		ing.Spec.TLS = append(ing.Spec.TLS, networkingv1.IngressTLS{Hosts: []string{s + ".example.com"}, SecretName: s})
	}
	return ing
}

// TestWatcherKeepsSecretsOfIngresses: the Secrets that the Ingresses of
// the class (or of none) name are kept with their data, those of other
// classes' Ingresses not; a Secret that a Service names too stays while
// either does.
func TestWatcherKeepsSecretsOfIngresses(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(namingService("a", "web", "web-tls"),
		namingIngress("a", "i", "kns", "web-tls", "api-tls"), namingIngress("a", "none", "", "none-tls"),
		namingIngress("a", "other", "another", "other-tls"),
		tlsSecret("a", "web-tls", corev1.SecretTypeTLS), tlsSecret("a", "api-tls", corev1.SecretTypeTLS),
		tlsSecret("a", "none-tls", corev1.SecretTypeTLS), tlsSecret("a", "other-tls", corev1.SecretTypeTLS))
	w, ctx := runWatcher(t, client, Selection{Namespaces: []string{"a"}, TLSSecrets: true, IngressClass: "kns"}, WatcherOptions{})
	waitFor(t, "the named Secrets", func() bool { return names(w.Objects().Secrets) == "a/api-tls a/none-tls a/web-tls" })
	if obj, _, _ := w.secrets[0].GetStore().GetByKey("a/other-tls"); obj == nil || obj.(*corev1.Secret).Data != nil {
		t.Errorf("a/other-tls, named by another class's Ingress: %v, want cached without its data", obj)
	}

	// i leaves the class: api-tls goes, web-tls stays for the Service.
	if _, err := client.NetworkingV1().Ingresses("a").Update(ctx, namingIngress("a", "i", "another", "web-tls", "api-tls"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "api-tls dropped", func() bool { return names(w.Objects().Secrets) == "a/none-tls a/web-tls" })
	// The other Ingress joins the class: other-tls is fetched.
	if _, err := client.NetworkingV1().Ingresses("a").Update(ctx, namingIngress("a", "other", "kns", "other-tls"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "other-tls fetched", func() bool {
		return names(w.Objects().Secrets) == "a/none-tls a/other-tls a/web-tls" && w.BrokenSince().IsZero()
	})
	// A deleted Ingress's Secrets go.
	if err := client.NetworkingV1().Ingresses("a").Delete(ctx, "none", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "none-tls dropped", func() bool { return names(w.Objects().Secrets) == "a/other-tls a/web-tls" })
}

func TestLoadFileReadsSecrets(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "objects.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Secret
  metadata: {namespace: a, name: web-tls}
  type: kubernetes.io/tls
  data: {tls.crt: Y3J0, tls.key: a2V5, ca.crt: Y2E=}
- apiVersion: v1
  kind: Secret
  metadata: {namespace: a, name: token}
  type: Opaque
  data: {password: c2VjcmV0}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	objs, err := LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if names(objs.Secrets) != "a/web-tls a/token" {
		t.Fatalf("secrets %q", names(objs.Secrets))
	}
	if d := objs.Secrets[0].Data; string(d[corev1.TLSCertKey]) != "crt" || string(d[corev1.TLSPrivateKeyKey]) != "key" || len(d) != 2 {
		t.Errorf("TLS Secret data %q", d)
	}
	if objs.Secrets[1].Data != nil {
		t.Errorf("the Opaque Secret's data was kept: %q", objs.Secrets[1].Data)
	}
}

// TestWatcherKeepsOnlyNamedSecrets: the cache holds the data of the
// Secrets that a Service names, and of no other; a Secret named later is
// fetched (and the watcher is not current until it is), and one named no
// more loses its data.
func TestWatcherKeepsOnlyNamedSecrets(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(namingService("a", "web", "web-tls"), namingService("a", "api", ""),
		tlsSecret("a", "web-tls", corev1.SecretTypeTLS), tlsSecret("a", "api-tls", corev1.SecretTypeTLS), tlsSecret("b", "web-tls", corev1.SecretTypeTLS))
	var gets atomic.Int32
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		gets.Add(1)
		return false, nil, nil
	})
	w, ctx := runWatcher(t, client, Selection{Namespaces: []string{"a"}, TLSSecrets: true}, WatcherOptions{})
	cachedData := func(name string) map[string][]byte {
		obj, ok, _ := w.secrets[0].GetStore().GetByKey("a/" + name)
		if !ok {
			t.Fatalf("a/%s is not cached", name)
		}
		return obj.(*corev1.Secret).Data
	}
	if got := names(w.Objects().Secrets); got != "a/web-tls" {
		t.Fatalf("secrets %q, want a/web-tls", got)
	}
	if d := cachedData("web-tls"); len(d) != 2 {
		t.Errorf("a/web-tls cached with %d data keys, want tls.crt and tls.key", len(d))
	}
	if d := cachedData("api-tls"); d != nil {
		t.Errorf("a/api-tls, named by no Service, is cached with its data")
	}

	// api names api-tls: fetched, since its cached copy has no data.
	if _, err := client.CoreV1().Services("a").Update(ctx, namingService("a", "api", "api-tls"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "api-tls fetched", func() bool {
		return names(w.Objects().Secrets) == "a/api-tls a/web-tls" && w.BrokenSince().IsZero()
	})
	if gets.Load() != 1 {
		t.Errorf("%d gets, want 1", gets.Load())
	}
	for _, s := range w.Objects().Secrets {
		if string(s.Data[corev1.TLSCertKey]) != "crt of "+s.Name || len(s.Data) != 2 {
			t.Errorf("%s: data %q", s.Name, s.Data)
		}
	}
	// Its next event brings it into the cache with its data.
	updated := tlsSecret("a", "api-tls", corev1.SecretTypeTLS)
	updated.ResourceVersion, updated.Data[corev1.TLSCertKey] = "2", []byte("renewed")
	if _, err := client.CoreV1().Secrets("a").Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the update in the cache", func() bool { return string(cachedData("api-tls")[corev1.TLSCertKey]) == "renewed" })
	if s := w.Objects().Secrets[0]; string(s.Data[corev1.TLSCertKey]) != "renewed" {
		t.Errorf("api-tls: %q, want the cached update", s.Data[corev1.TLSCertKey])
	}

	// web names nothing any more: web-tls loses its data.
	if _, err := client.CoreV1().Services("a").Update(ctx, namingService("a", "web", ""), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "web-tls without its data", func() bool { return cachedData("web-tls") == nil })
	if got := names(w.Objects().Secrets); got != "a/api-tls" {
		t.Errorf("secrets %q, want a/api-tls", got)
	}

	// A deleted Service's Secret loses its data too.
	if err := client.CoreV1().Services("a").Delete(ctx, "api", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "api-tls without its data", func() bool { return cachedData("api-tls") == nil && len(w.Objects().Secrets) == 0 })
}

// TestWatcherWithoutTLSSecretsReadsNone: without Selection.TLSSecrets no
// Secret is listed or watched (no RBAC needed for them).
func TestWatcherWithoutTLSSecretsReadsNone(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(namingService("a", "web", "web-tls"), tlsSecret("a", "web-tls", corev1.SecretTypeTLS))
	var calls atomic.Int32
	client.PrependReactor("*", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		calls.Add(1)
		return false, nil, nil
	})
	client.PrependWatchReactor("secrets", func(k8stesting.Action) (bool, watch.Interface, error) {
		calls.Add(1)
		return false, nil, nil
	})
	w, _ := runWatcher(t, client, Selection{}, WatcherOptions{})
	if len(w.Objects().Secrets) != 0 || calls.Load() != 0 {
		t.Errorf("%d Secrets, %d calls about Secrets; want none", len(w.Objects().Secrets), calls.Load())
	}
}

// TestTLSSecretsDeletedAndCreatedAgain: an Ingress deleted and created
// again under its name (kubectl replace --force) keeps its Secret named
// when the deletion's handler runs after the new object's transform.
func TestTLSSecretsDeletedAndCreatedAgain(t *testing.T) {
	t.Parallel()
	s := newTLSSecrets(testclock.NewFakeClock(time.Now()))
	old := namingIngress("a", "i", "kns", "web-tls")
	old.UID = "uid-1"
	renewed := old.DeepCopy()
	renewed.UID = "uid-2"
	ref := model.SecretRef{Namespace: "a", Name: "web-tls"}
	s.seen(old)
	s.seen(renewed)
	s.deleted(cache.DeletedFinalStateUnknown{Key: "a/i", Obj: old})
	if s.refs[ref] != 1 {
		t.Fatalf("after the old one's deletion: %d references to %s, want 1", s.refs[ref], ref)
	}
	s.deleted(renewed)
	if s.refs[ref] != 0 || len(s.byOwner) != 0 {
		t.Errorf("after the new one's deletion: %d references, owners %v; want none", s.refs[ref], s.byOwner)
	}
}

// TestSecretFetchHoldsRebuildsBackBriefly: a Secret being fetched holds
// rebuilds back (BrokenSince) for at most maxSecretFetchWait, however long
// its fetch takes; then it is fetched and kept.
func TestSecretFetchHoldsRebuildsBackBriefly(t *testing.T) {
	t.Parallel()
	client := fake.NewClientset(namingService("a", "api", ""), tlsSecret("a", "api-tls", corev1.SecretTypeTLS))
	release := make(chan struct{})
	client.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		<-release
		return false, nil, nil
	})
	clk := testclock.NewFakeClock(time.Now())
	w, ctx := runWatcher(t, client, Selection{Namespaces: []string{"a"}, TLSSecrets: true}, WatcherOptions{Clock: clk})
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	waitFor(t, "the Secrets' cache", func() bool { return w.secrets[0].HasSynced() })
	if _, err := client.CoreV1().Services("a").Update(ctx, namingService("a", "api", "api-tls"), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fetch pending", func() bool { return !w.BrokenSince().IsZero() })
	clk.Step(maxSecretFetchWait)
	if since := w.BrokenSince(); !since.IsZero() {
		t.Errorf("BrokenSince %v after maxSecretFetchWait, want zero while the fetch goes on", since)
	}
	if got := names(w.Objects().Secrets); got != "" {
		t.Errorf("secrets %q while the fetch goes on, want none", got)
	}
	close(release)
	waitFor(t, "api-tls fetched", func() bool { return names(w.Objects().Secrets) == "a/api-tls" })
}
