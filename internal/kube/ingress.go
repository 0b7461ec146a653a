package kube

import (
	"context"
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// With Selection.IngressClass, the Ingresses of the selected namespaces are
// read too, and the one IngressClass of that name (by a field selector on
// its name, so that a Role may grant it by resourceNames). An Ingress may
// send to any Service of its namespace: the Services are then read without
// the label selector, which model.Build still applies to the Services'
// own routes.

// serviceSelector is the label selector of the Services to read.
func (s Selection) serviceSelector() labels.Selector {
	switch {
	case s.IngressClass != "":
		return labels.Everything()
	case s.Selector != nil:
		return s.Selector
	}
	return labels.Everything()
}

// ingressClassField selects the one IngressClass of sel.
func (s Selection) ingressClassField() string {
	return fields.OneTermEqualSelector(metav1.ObjectNameField, s.IngressClass).String()
}

// listIngresses adds the Ingresses and the IngressClass of sel to objs.
func listIngresses(ctx context.Context, client kubernetes.Interface, sel Selection, objs *Objects) error {
	for _, ns := range sel.namespaces() {
		err := listPages(ctx, func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			return client.NetworkingV1().Ingresses(ns).List(ctx, o)
		}, metav1.ListOptions{}, func(obj runtime.Object) error {
			ing, ok := obj.(*networkingv1.Ingress)
			if !ok {
				return fmt.Errorf("list ingresses: got %T", obj)
			}
			objs.Ingresses = append(objs.Ingresses, ing)
			return nil
		})
		if err != nil {
			return fmt.Errorf("list ingresses: %w", err)
		}
	}
	classes, err := client.NetworkingV1().IngressClasses().List(ctx, metav1.ListOptions{FieldSelector: sel.ingressClassField()})
	if err != nil {
		return fmt.Errorf("list ingressclasses: %w", err)
	}
	for i := range classes.Items {
		if classes.Items[i].Name == sel.IngressClass { // a server that ignores field selectors
			objs.IngressClasses = append(objs.IngressClasses, &classes.Items[i])
		}
	}
	return nil
}

// ingressInformers are a Watcher's informers of Ingresses (one per
// namespace) and of the IngressClass.
type ingressInformers struct {
	ingresses []cache.SharedIndexInformer
	class     cache.SharedIndexInformer
	className string
}

// newIngressInformers creates the informers of sel's Ingresses and
// IngressClass, whose health the Watcher keeps as for the others.
func (w *Watcher) newIngressInformers(client kubernetes.Interface, sel Selection) (*ingressInformers, error) {
	in := &ingressInformers{className: sel.IngressClass}
	for _, ns := range sel.namespaces() {
		inf, err := w.newInformer(client, "ingresses", ns, &networkingv1.Ingress{}, labels.Everything(),
			func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
				return client.NetworkingV1().Ingresses(ns).List(ctx, o)
			},
			func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
				return client.NetworkingV1().Ingresses(ns).Watch(ctx, o)
			})
		if err != nil {
			return nil, err
		}
		if err := w.setIngressTransform(inf, sel.IngressClass); err != nil {
			return nil, err
		}
		in.ingresses = append(in.ingresses, inf)
	}
	field := sel.ingressClassField()
	inf, err := w.newInformer(client, "ingressclasses", "", &networkingv1.IngressClass{}, labels.Everything(),
		func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = field
			return client.NetworkingV1().IngressClasses().List(ctx, o)
		},
		func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = field
			return client.NetworkingV1().IngressClasses().Watch(ctx, o)
		})
	if err != nil {
		return nil, err
	}
	if err := inf.SetTransform(stripIngress); err != nil {
		return nil, err
	}
	in.class = inf
	return in, nil
}

// setIngressTransform sets the transform of an Ingresses' informer: it
// strips each Ingress (stripIngress), and an Ingress that cannot be of
// class to a stub (otherClassStub); when the Watcher keeps TLS Secrets, it
// tells w.tls what each Ingress names for HTTPS.
func (w *Watcher) setIngressTransform(inf cache.SharedIndexInformer, class string) error {
	if err := inf.SetTransform(func(obj any) (any, error) {
		obj, err := stripIngress(obj)
		ing, ok := obj.(*networkingv1.Ingress)
		if !ok {
			return obj, err
		}
		ours := mayBeOfClass(ing, class)
		if !ours {
			otherClassStub(ing)
		}
		if w.tls != nil {
			if ours {
				w.tls.seen(ing)
			} else {
				w.tls.forget(ing)
			}
		}
		return obj, err
	}); err != nil {
		return err
	}
	if w.tls == nil {
		return nil
	}
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: w.tls.deleted})
	return err
}

// otherClassStub strips an Ingress of another class to what tells its
// class: a cluster with many Ingresses of other controllers costs little
// memory, and their changes no rebuild (ingressesChanged).
func otherClassStub(ing *networkingv1.Ingress) {
	ing.Spec = networkingv1.IngressSpec{IngressClassName: ing.Spec.IngressClassName}
	ing.Status = networkingv1.IngressStatus{}
	for k := range ing.Annotations {
		if k != model.AnnotationLegacyIngressClass {
			delete(ing.Annotations, k)
		}
	}
	ing.Labels = nil
}

// ingressesChanged reports a change of Ingresses, unless all of them are
// of another class than the Watcher's (before and after the change).
func (w *Watcher) ingressesChanged(objs ...any) {
	for _, obj := range objs {
		if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = tomb.Obj
		}
		if ing, ok := obj.(*networkingv1.Ingress); !ok || mayBeOfClass(ing, w.ingress.className) {
			w.changed()
			return
		}
	}
}

// mayBeOfClass reports whether ing may be of class: it names it, or it
// names none (it is then of the default class, which class may be: the
// model decides with the IngressClass at hand). The Secrets of the others
// are not kept.
func mayBeOfClass(ing *networkingv1.Ingress, class string) bool {
	c, _ := model.NamedIngressClass(ing)
	return c == "" || c == class
}

// informers lists them all; none for a nil receiver.
func (in *ingressInformers) informers() []cache.SharedIndexInformer {
	if in == nil {
		return nil
	}
	return append(append([]cache.SharedIndexInformer(nil), in.ingresses...), in.class)
}

// addTo adds the cached Ingresses and IngressClass to objs.
func (in *ingressInformers) addTo(objs *Objects) {
	if in == nil {
		return
	}
	for _, inf := range in.ingresses {
		for _, o := range inf.GetStore().List() {
			if ing, ok := o.(*networkingv1.Ingress); ok {
				objs.Ingresses = append(objs.Ingresses, ing)
			}
		}
	}
	for _, o := range in.class.GetStore().List() {
		if c, ok := o.(*networkingv1.IngressClass); ok && c.Name == in.className {
			objs.IngressClasses = append(objs.IngressClasses, c)
		}
	}
}

// stripIngress is the transform of the Ingresses' and the IngressClass's
// informers: it keeps what routing, events, status and change detection
// need, and of the annotations only those that model reads: its own,
// ingress-nginx's (to map or to warn about), the legacy class and the
// default-class marker.
func stripIngress(obj any) (any, error) {
	switch o := obj.(type) {
	case *networkingv1.Ingress:
		stripIngressMeta(&o.ObjectMeta)
	case *networkingv1.IngressClass:
		stripIngressMeta(&o.ObjectMeta)
		o.Spec.Parameters = nil
	}
	return obj, nil
}

func stripIngressMeta(m *metav1.ObjectMeta) {
	m.ManagedFields = nil
	m.OwnerReferences = nil
	m.Finalizers = nil
	for k := range m.Annotations {
		switch {
		case strings.HasPrefix(k, model.AnnotationPrefix), strings.HasPrefix(k, model.IngressNginxPrefix),
			k == model.AnnotationLegacyIngressClass, k == networkingv1.AnnotationIsDefaultIngressClass:
		default:
			delete(m.Annotations, k)
		}
	}
}

// IngressObjects returns the cached Ingresses and IngressClass, which must
// not be modified; none without Selection.IngressClass. It reads only
// their caches, so it is cheap enough to call on every change.
func (w *Watcher) IngressObjects() ([]*networkingv1.Ingress, []*networkingv1.IngressClass) {
	var objs Objects
	w.ingress.addTo(&objs)
	return objs.Ingresses, objs.IngressClasses
}
