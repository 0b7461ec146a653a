package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// ingressPrefix starts explain's argument for an Ingress.
const ingressPrefix = "ingress/"

// runIngress explains the Ingress ref ("NAMESPACE/NAME"): whether its class
// is routed, each of its routes and what it serves, what of it is left out
// and why, and the annotations that are ignored.
func (o *explainOptions) runIngress(ctx context.Context, e env, ref string) error {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return usageError("%q is not ingress/NAMESPACE/NAME", ingressPrefix+ref)
	}
	_, cfg, err := o.gf.resolve(env{stdout: e.stdout, stderr: io.Discard})
	if err != nil {
		return err
	}
	target := model.IngressRef{Namespace: ns, Name: name}
	w := e.stdout
	var objs kube.Objects
	var ing *networkingv1.Ingress
	// secretsNote says why HTTPS could not be checked, if it could not.
	var secretsNote string
	if o.src.fromFile != "" {
		if objs, err = kube.LoadFile(o.src.fromFile); err != nil {
			return err
		}
	} else {
		client, err := kube.NewClient(cfg.client.options())
		if err != nil {
			return err
		}
		lctx, cancel := context.WithTimeout(ctx, o.src.timeout)
		defer cancel()
		if cfg.sel.IngressClass != "" {
			if objs, secretsNote, err = listForExplain(lctx, client, cfg.sel); err != nil {
				return err
			}
		}
		got, err := client.NetworkingV1().Ingresses(ns).Get(lctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("get ingress %s: %w", target, err)
		default:
			ing = got
		}
	}
	for _, i := range objs.Ingresses {
		if i.Namespace == ns && i.Name == name {
			ing = i
		}
	}
	if ing == nil {
		fmt.Fprintf(w, "Ingress %s: not found\n", target)
		return exitCodeError{code: ExitError, err: fmt.Errorf("ingress %s not found", target)}
	}
	fmt.Fprintf(w, "Ingress %s\n", target)
	opts := cfg.modelOpts
	opts.Ingress.Ingresses, opts.Ingress.Classes = objs.Ingresses, objs.IngressClasses
	class, how := model.IngressClassOf(ing, objs.IngressClasses)
	switch {
	case opts.Ingress.Class == "":
		fmt.Fprintln(w, "  not routed: no Ingress is read (--ingress-class is not set)")
		return nil
	case len(opts.Namespaces) > 0 && !slices.Contains(opts.Namespaces, ns):
		fmt.Fprintf(w, "  not routed: namespace %s is not watched (--namespace %s)\n", ns, strings.Join(opts.Namespaces, ", "))
		return nil
	case class == "":
		fmt.Fprintf(w, "  not routed: it names no IngressClass, and %s is not the default one\n", opts.Ingress.Class)
		return nil
	case class != opts.Ingress.Class:
		fmt.Fprintf(w, "  not routed: its IngressClass is %s (%s), not %s\n", class, how, opts.Ingress.Class)
		return nil
	}
	fmt.Fprintf(w, "  class: %s (%s)\n", class, how)
	opts.Secrets, opts.Now = objs.Secrets, time.Now()
	res := model.Build(objs.Services, objs.EndpointSlices, opts)
	if res.Ingress.ClassProblem != "" {
		fmt.Fprintf(w, "  not routed: %s\n", res.Ingress.ClassProblem)
		return nil
	}
	explainIngressResult(w, res, target)
	if secretsNote != "" && len(ing.Spec.TLS) > 0 {
		fmt.Fprintf(w, "  https: %s\n", secretsNote)
	}
	if ignored := model.IgnoredIngressAnnotations(ing.Annotations); len(ignored) > 0 {
		fmt.Fprintln(w, "  ignored annotations:")
		for _, a := range ignored {
			fmt.Fprintf(w, "    %s\n", a)
		}
	}
	return nil
}

// explainIngressResult prints the target's routes, and what of it is not
// routed or needs attention.
func explainIngressResult(w io.Writer, res model.Result, target model.IngressRef) {
	mine := func(l model.Location) bool { return l.Ingress == target }
	routed := explainRoutes(w, res.Config, mine, func(host string, l model.Location, to string) string {
		match := "prefix"
		switch {
		case l.Exact:
			match = "exact"
		case l.Bare == model.BareRoute:
			match = "prefix, and " + strings.TrimSuffix(l.Path, "/")
		case l.Bare == model.BareExact:
			match = "prefix; " + strings.TrimSuffix(l.Path, "/") + " is an exact path's"
		}
		return fmt.Sprintf("host %s path %s (%s) -> %s (%s): %s", host, l.Path, match, l.Service, l.Mode, to)
	})
	for _, r := range res.Ingress.Rejected {
		if r.Ingress != target {
			continue
		}
		path := ""
		if r.Path != "" {
			path = " " + r.Path + ":"
		}
		fmt.Fprintf(w, "  not routed:%s %s: %s\n", path, r.Reason, r.Message)
	}
	if routed == 0 && !slices.ContainsFunc(res.Ingress.Rejected, func(r model.IngressRejection) bool { return r.Ingress == target }) {
		fmt.Fprintln(w, "  not routed: it has no path and no default backend")
	}
	explainHTTPS(w, res.Config, mine)
	for _, warn := range res.Ingress.Warnings {
		if warn.Ingress == target && warn.Reason != model.ReasonIgnoredAnnotation {
			fmt.Fprintf(w, "  warning: %s: %s\n", warn.Reason, warn.Message)
		}
	}
}
