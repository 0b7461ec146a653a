package kube

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// tlsSecretSelector selects, on the server, the only Secrets that HTTPS
// uses: the API server sends no other Secret.
const tlsSecretSelector = "type=" + string(corev1.SecretTypeTLS)

// namedSecrets returns the Secrets that a Service or an Ingress names for
// HTTPS, and the key that tlsSecrets knows it by; ok is false for another
// object.
func namedSecrets(obj any) (key string, refs []model.SecretRef, ok bool) {
	switch o := obj.(type) {
	case *corev1.Service:
		if name, ok := model.TLSSecretName(o.Annotations); ok {
			refs = []model.SecretRef{{Namespace: o.Namespace, Name: name}}
		}
		return "Service " + o.Namespace + "/" + o.Name, refs, true
	case *networkingv1.Ingress:
		return "Ingress " + o.Namespace + "/" + o.Name, model.IngressTLSSecrets(o), true
	}
	return "", nil, false
}

// keepTLSData strips a Secret to what HTTPS needs: its name, type and
// resource version, and, when keep, tls.crt and tls.key. Without keep its
// data is dropped (Data nil).
func keepTLSData(s *corev1.Secret, keep bool) {
	stripMeta(&s.ObjectMeta)
	s.Annotations, s.Labels = nil, nil
	s.StringData = nil
	if !keep {
		s.Data = nil
		return
	}
	data := make(map[string][]byte, 2)
	for _, k := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if v, ok := s.Data[k]; ok {
			data[k] = v
		}
	}
	s.Data = data
}

// ListTLSSecrets fetches the kubernetes.io/tls Secrets that the Services
// of sel's selector and the Ingresses of objs name for HTTPS, in the
// namespaces of sel, once; it asks nothing of the API server when none
// names one.
func ListTLSSecrets(ctx context.Context, client kubernetes.Interface, sel Selection, objs Objects) ([]*corev1.Secret, error) {
	wanted := make(map[model.SecretRef]bool)
	want := func(obj any) {
		_, refs, _ := namedSecrets(obj)
		for _, ref := range refs {
			wanted[ref] = true
		}
	}
	for _, svc := range objs.Services {
		// One read for an Ingress (IngressClass) only names no Secret.
		if sel.Selector == nil || sel.Selector.Matches(labels.Set(svc.Labels)) {
			want(svc)
		}
	}
	for _, ing := range objs.Ingresses {
		if mayBeOfClass(ing, sel.IngressClass) {
			want(ing)
		}
	}
	if len(wanted) == 0 {
		return nil, nil
	}
	var out []*corev1.Secret
	for _, ns := range sel.namespaces() {
		err := listPages(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.CoreV1().Secrets(ns).List(ctx, o)
		}, metav1.ListOptions{FieldSelector: tlsSecretSelector}, func(obj runtime.Object) error {
			s, ok := obj.(*corev1.Secret)
			if !ok {
				return fmt.Errorf("got %T", obj)
			}
			if wanted[model.SecretRef{Namespace: s.Namespace, Name: s.Name}] {
				keepTLSData(s, true)
				out = append(out, s)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
	}
	return out, nil
}

// tlsSecrets keeps, for a Watcher, the data of the kubernetes.io/tls
// Secrets that a selected Service or an Ingress names, and only theirs.
//
// The Secrets' informers start once the Services' and Ingresses' handlers
// have seen their first list, so that the transform knows which Secrets
// are named: it keeps tls.crt and tls.key of those, and drops the data of
// the others. A Secret whose copy was stored without its data, and that a
// Service or Ingress then names, is fetched (GET) and kept beside the
// cache until its next event brings it with its data; meanwhile the
// Secrets count as not current (pendingSince). A Secret that nothing names
// any more has its cached copy replaced by one without its data.
type tlsSecrets struct {
	clock clock.Clock
	// wake is poked when a Secret is to be fetched.
	wake chan struct{}

	mu sync.Mutex
	// byOwner holds the Secrets that each Service or Ingress (namedSecrets'
	// key) names, with its UID.
	byOwner map[string]owned
	// refs counts the Services and Ingresses that name each Secret.
	refs map[model.SecretRef]int
	// stripped holds the Secrets whose cached copy may lack its data,
	// until a copy with its data is seen or the Secret is deleted.
	stripped map[model.SecretRef]bool
	// fetched holds the Secrets fetched for a newly named Secret whose
	// cached copy lacks its data.
	fetched map[model.SecretRef]*corev1.Secret
	// pending holds the Secrets to fetch, since when.
	pending map[model.SecretRef]time.Time
	// indexers are the Secret informers' caches, by namespace ("" for
	// all namespaces).
	indexers map[string]cache.Indexer
}

func newTLSSecrets(clk clock.Clock) *tlsSecrets {
	return &tlsSecrets{
		clock:    clk,
		wake:     make(chan struct{}, 1),
		byOwner:  make(map[string]owned),
		refs:     make(map[model.SecretRef]int),
		stripped: make(map[model.SecretRef]bool),
		fetched:  make(map[model.SecretRef]*corev1.Secret),
		pending:  make(map[model.SecretRef]time.Time),
		indexers: make(map[string]cache.Indexer),
	}
}

// indexer returns the cache that holds the Secrets of namespace ns.
// Called with mu held.
func (s *tlsSecrets) indexer(ns string) cache.Indexer {
	if i, ok := s.indexers[ns]; ok {
		return i
	}
	return s.indexers[metav1.NamespaceAll]
}

// cached returns the cached copy of a Secret. Called with mu held.
func (s *tlsSecrets) cached(ref model.SecretRef) (*corev1.Secret, bool) {
	i := s.indexer(ref.Namespace)
	if i == nil {
		return nil, false
	}
	obj, ok, err := i.GetByKey(ref.Namespace + "/" + ref.Name)
	if err != nil || !ok {
		return nil, false
	}
	sec, ok := obj.(*corev1.Secret)
	return sec, ok
}

// transform is the Secret informers' transform (see tlsSecrets).
func (s *tlsSecrets) transform(obj any) (any, error) {
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	ref := model.SecretRef{Namespace: sec.Namespace, Name: sec.Name}
	s.mu.Lock()
	keep := s.refs[ref] > 0
	if !keep {
		s.stripped[ref] = true
	}
	s.mu.Unlock()
	keepTLSData(sec, keep)
	return sec, nil
}

// seen records the Secrets that a Service or an Ingress names. The
// transforms of their informers call it, before the object reaches the
// cache, so that a rebuild that sees the object sees what it names too, or
// waits for its fetch.
func (s *tlsSecrets) seen(obj any) {
	if key, refs, ok := namedSecrets(obj); ok {
		s.named(key, uidOf(obj), refs, false)
	}
}

// forget forgets what a Service or an Ingress named: it names nothing for
// kube-nginx-sync (not selected, or of another class).
func (s *tlsSecrets) forget(obj any) {
	if key, _, ok := namedSecrets(obj); ok {
		s.named(key, uidOf(obj), nil, false)
	}
}

// deleted forgets what a deleted Service or Ingress named, unless another
// object of its name has been seen since (deleted and created again: the
// transform may see the new one before the handler the deletion).
func (s *tlsSecrets) deleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	if key, _, ok := namedSecrets(obj); ok {
		s.named(key, uidOf(obj), nil, true)
	}
}

// uidOf is an object's UID ("" for none).
func uidOf(obj any) types.UID {
	if o, ok := obj.(metav1.Object); ok {
		return o.GetUID()
	}
	return ""
}

// named records the Secrets that the object of key and uid names (none:
// nil). With onlySame, it does so only when the object recorded under key
// has that uid (or none).
func (s *tlsSecrets) named(key string, uid types.UID, refs []model.SecretRef, onlySame bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byOwner[key]
	if onlySame && old.uid != "" && uid != "" && old.uid != uid {
		return
	}
	if old.uid == uid && slices.Equal(old.refs, refs) {
		return
	}
	for _, ref := range refs {
		if s.refs[ref]++; s.refs[ref] == 1 && s.stripped[ref] {
			if c, ok := s.cached(ref); !ok || c.Data == nil {
				s.pending[ref] = s.clock.Now()
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
		}
	}
	for _, ref := range old.refs {
		if s.refs[ref]--; s.refs[ref] == 0 {
			delete(s.refs, ref)
			s.forgetLocked(ref)
			s.dropDataLocked(ref)
		}
	}
	if len(refs) == 0 {
		delete(s.byOwner, key)
		return
	}
	s.byOwner[key] = owned{uid: uid, refs: refs}
}

// owned is what one Service or Ingress names.
type owned struct {
	uid  types.UID
	refs []model.SecretRef
}

// forgetLocked drops what is kept beside the cache for a Secret.
func (s *tlsSecrets) forgetLocked(ref model.SecretRef) {
	delete(s.fetched, ref)
	delete(s.pending, ref)
}

// dropDataLocked replaces the cached copy of a Secret that nothing names
// any more by one without its data. The informer may store a newer copy
// meanwhile, transformed as its refs say when it arrived; stripped stays
// set, so an object that names it again fetches it.
func (s *tlsSecrets) dropDataLocked(ref model.SecretRef) {
	c, ok := s.cached(ref)
	if !ok || c.Data == nil {
		return
	}
	bare := &corev1.Secret{TypeMeta: c.TypeMeta, ObjectMeta: c.ObjectMeta, Type: c.Type}
	s.stripped[ref] = true
	_ = s.indexer(ref.Namespace).Update(bare) // only fails for an object without a key
}

// secretDeleted forgets a deleted Secret.
func (s *tlsSecrets) secretDeleted(obj any) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	sec, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	ref := model.SecretRef{Namespace: sec.Namespace, Name: sec.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.stripped, ref)
	s.forgetLocked(ref)
}

// objects returns the named Secrets, with their data: the cached copy, or
// the fetched one while the cached copy lacks its data. A Secret being
// fetched is left out (pendingSince is not zero meanwhile).
func (s *tlsSecrets) objects() []*corev1.Secret {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*corev1.Secret, 0, len(s.refs))
	for ref := range s.refs {
		c, ok := s.cached(ref)
		switch {
		case !ok:
			if f := s.fetched[ref]; f != nil {
				out = append(out, f) // fetched before the informer had it
			}
		case c.Data != nil:
			out = append(out, c)
			delete(s.stripped, ref)
			s.forgetLocked(ref)
		case s.fetched[ref] != nil:
			out = append(out, s.fetched[ref])
		case s.stripped[ref]:
			// Being fetched.
		default:
			out = append(out, c) // a Secret without data
		}
	}
	slices.SortFunc(out, func(a, b *corev1.Secret) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

// pendingSince returns since when the oldest fetch has waited, or zero.
func (s *tlsSecrets) pendingSince() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldest time.Time
	for _, t := range s.pending {
		if oldest.IsZero() || t.Before(oldest) {
			oldest = t
		}
	}
	return oldest
}

// takePending returns the Secrets waiting to be fetched.
func (s *tlsSecrets) takePending() []model.SecretRef {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]model.SecretRef, 0, len(s.pending))
	for ref := range s.pending {
		out = append(out, ref)
	}
	return out
}

// fetchDone records a fetch's outcome: the Secret, or nil when it is
// gone, is not a TLS Secret, or cannot be read (the model then reports it
// missing).
func (s *tlsSecrets) fetchDone(ref model.SecretRef, sec *corev1.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.pending[ref]; !ok {
		return // no longer named, or deleted, meanwhile
	}
	delete(s.pending, ref)
	if sec != nil && sec.Type == corev1.SecretTypeTLS {
		keepTLSData(sec, true)
		s.fetched[ref] = sec
	}
}

// fetchBackoff spaces the tries of a fetch that failed transiently.
var fetchBackoff = transientBackoff

// runFetches fetches the Secrets that become named while their cached
// copy lacks its data, until ctx ends; onChange follows each fetch.
func (s *tlsSecrets) runFetches(ctx context.Context, client kubernetes.Interface, onError func(error), onChange func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		for _, ref := range s.takePending() {
			var got *corev1.Secret
			err := poll(ctx, s.clock, fetchBackoff.DelayFunc(), func(ctx context.Context) (bool, error) {
				sec, err := client.CoreV1().Secrets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
				switch {
				case err == nil:
					got = sec
					return true, nil
				case apierrors.IsNotFound(err):
					return true, nil
				case isTransient(err):
					onError(err)
					return false, nil
				}
				return false, err
			})
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				onError(fmt.Errorf("get secret %s: %w", ref, err))
			}
			s.fetchDone(ref, got)
			onChange()
		}
	}
}
