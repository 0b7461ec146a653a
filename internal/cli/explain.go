package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controller"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// explainOptions are explain's flags.
type explainOptions struct {
	gf  generatorFlags
	src sourceFlags
}

func explainCommand(e env) *cobra.Command {
	var o explainOptions
	cmd := &cobra.Command{
		Use:   "explain NAMESPACE/SERVICE | ingress/NAMESPACE/NAME",
		Short: "Say whether and how a Service or an Ingress is routed, and if not, why",
		Long: "explain says whether a Service is routed with the given flags (to which hosts, paths and\n" +
			"backends) and, if not, why. The Service need not match the selector. With ingress/NAMESPACE/NAME\n" +
			"it says the same of an Ingress (with --ingress-class), and lists its annotations that are ignored.",
		Example: `  kube-nginx-sync explain shop/web
  kube-nginx-sync explain shop/web --context staging -l app=web
  kube-nginx-sync explain shop/web --from-file objects.yaml
  kube-nginx-sync explain ingress/shop/front --ingress-class kube-nginx-sync`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageError("name one Service as NAMESPACE/SERVICE, or one Ingress as ingress/NAMESPACE/NAME")
			}
			return nil
		},
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return completeServices(cmd, args, toComplete, o.gf.client, &o.src)
		},
		RunE: running(func(ctx context.Context, args []string) error { return o.run(ctx, e, args[0]) }),
	}
	o.gf.register(cmd)
	o.src.register(cmd, 30*time.Second)
	return cmd
}

func (o *explainOptions) run(ctx context.Context, e env, ref string) error {
	src := &o.src
	if err := src.check(); err != nil {
		return err
	}
	if rest, ok := strings.CutPrefix(ref, ingressPrefix); ok {
		return o.runIngress(ctx, e, rest)
	}
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || ns == "" || name == "" {
		return usageError("%q is not NAMESPACE/SERVICE", ref)
	}
	_, cfg, err := o.gf.resolve(env{stdout: e.stdout, stderr: io.Discard})
	if err != nil {
		return err
	}
	target := model.ServiceRef{Namespace: ns, Name: name}

	// The selected Services (a route conflict involves others) plus the
	// target itself, selected or not.
	var objs kube.Objects
	var svc *corev1.Service
	// secretsNote says why HTTPS could not be checked, if it could not.
	var secretsNote string
	if src.fromFile != "" {
		if objs, err = kube.LoadFile(src.fromFile); err != nil {
			return err
		}
		for _, s := range objs.Services {
			if s.Namespace == ns && s.Name == name {
				svc = s
			}
		}
	} else {
		client, err := kube.NewClient(cfg.client.options())
		if err != nil {
			return err
		}
		lctx, cancel := context.WithTimeout(ctx, src.timeout)
		defer cancel()
		if objs, secretsNote, err = listForExplain(lctx, client, cfg.sel); err != nil {
			return err
		}
		got, err := client.CoreV1().Services(ns).Get(lctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return fmt.Errorf("get service %s: %w", target, err)
		default:
			svc = got
		}
	}
	if svc == nil {
		fmt.Fprintf(e.stdout, "Service %s: not found\n", target)
		return exitCodeError{code: ExitError, err: fmt.Errorf("service %s not found", target)}
	}

	w := e.stdout
	fmt.Fprintf(w, "Service %s\n", target)
	if reason := notSelected(svc, cfg.modelOpts); reason != "" {
		fmt.Fprintf(w, "  not routed: %s\n", reason)
		return nil
	}

	pipeline := &controller.Pipeline{Model: cfg.modelOpts, Renderer: cfg.renderer, Validate: cfg.out.validator()}
	var res model.Result
	if pipeline.Validate != nil {
		dir, err := os.MkdirTemp("", "kube-nginx-sync-explain-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		pipeline.Output = filepath.Join(dir, "default.conf")
		// The certificate files go there too: the config must name them
		// there for nginx -t.
		if pipeline.Renderer, err = o.gf.rend.renderer(dir); err != nil {
			return err
		}
		out, err := pipeline.Apply(ctx, objs)
		if err != nil {
			return err
		}
		res = out.Result
	} else {
		opts := cfg.modelOpts
		opts.Secrets, opts.Now = objs.Secrets, time.Now()
		opts.Ingress.Ingresses, opts.Ingress.Classes = objs.Ingresses, objs.IngressClasses
		res = model.Build(objs.Services, objs.EndpointSlices, opts)
	}
	explainResult(w, res, target)
	if secretsNote != "" && slices.ContainsFunc(res.Certificates, func(c model.HostCertificate) bool {
		return c.Secret.Namespace == target.Namespace
	}) {
		fmt.Fprintf(w, "  https: %s\n", secretsNote)
	}
	return nil
}

// listForExplain reads the objects of sel, and with sel.TLSSecrets the
// Secrets they name; when the user may not list Secrets (whoever runs
// explain may not), the note says so and the hosts' HTTPS shows as left
// out.
func listForExplain(ctx context.Context, client kubernetes.Interface, sel kube.Selection) (kube.Objects, string, error) {
	withSecrets := sel.TLSSecrets
	sel.TLSSecrets = false
	objs, err := kube.List(ctx, client, sel)
	if err != nil {
		return kube.Objects{}, "", fmt.Errorf("read the cluster: %w", err)
	}
	if !withSecrets {
		return objs, "", nil
	}
	objs.Secrets, err = kube.ListTLSSecrets(ctx, client, sel, objs)
	switch {
	case apierrors.IsForbidden(err):
		return objs, "not checked: your kubeconfig's user may not list Secrets, so every host that asks for HTTPS shows as left out below", nil
	case err != nil:
		return kube.Objects{}, "", fmt.Errorf("read the cluster: %w", err)
	}
	return objs, "", nil
}

// notSelected says why the selection leaves svc out, or "".
func notSelected(svc *corev1.Service, opts model.Options) string {
	if len(opts.Namespaces) > 0 && !slices.Contains(opts.Namespaces, svc.Namespace) {
		return fmt.Sprintf("namespace %s is not watched (--namespace %s)", svc.Namespace, strings.Join(opts.Namespaces, ", "))
	}
	if opts.Selector != nil && !opts.Selector.Matches(labels.Set(svc.Labels)) {
		have := "it has no labels"
		if len(svc.Labels) > 0 {
			have = fmt.Sprintf("its labels {%s}", labels.Set(svc.Labels))
		}
		return fmt.Sprintf("%s, which do not match the selector %q", have, opts.Selector.String())
	}
	return ""
}

// explainResult prints the target's routes and the reasons for what of it
// is not routed.
func explainResult(w io.Writer, res model.Result, target model.ServiceRef) {
	mine := func(l model.Location) bool {
		return l.Service.Namespace == target.Namespace && l.Service.Name == target.Name
	}
	routed := explainRoutes(w, res.Config, mine, func(host string, l model.Location, to string) string {
		strip := ""
		if l.StripPrefix {
			strip = ", prefix stripped"
		}
		return fmt.Sprintf("host %s path %s -> port %s (%s%s): %s", host, l.Path, l.Service.Port, l.Mode, strip, to)
	})
	for _, r := range res.Rejected {
		if r.Service != target {
			continue
		}
		port := ""
		if r.Port != "" {
			port = " port " + r.Port + ":"
		}
		fmt.Fprintf(w, "  not routed:%s %s: %s\n", port, r.Reason, r.Message)
	}
	if routed == 0 && !slices.ContainsFunc(res.Rejected, func(r model.Rejection) bool { return r.Service == target }) {
		fmt.Fprintln(w, "  not routed: no route (no TCP port?)")
	}
	explainHTTPS(w, res.Config, mine)
	for _, wa := range res.Warnings {
		if wa.Service == target {
			fmt.Fprintf(w, "  https: %s: %s\n", wa.Reason, wa.Message)
		}
	}
}

// explainRoutes prints each route that mine picks, as describe says with
// where it sends requests (to), and its proxy settings; it returns how
// many it printed.
func explainRoutes(w io.Writer, cfg model.Config, mine func(model.Location) bool, describe func(host string, l model.Location, to string) string) int {
	backends := upstreamBackends(cfg)
	routed := 0
	for _, s := range cfg.Servers {
		host := s.Host
		if host == "" {
			host = "(default server)"
		}
		for _, l := range s.Locations {
			if !mine(l) {
				continue
			}
			routed++
			to := "no ready endpoints: answers 503"
			if l.Upstream != "" {
				to = strings.Join(backends[l.Upstream], ", ")
			}
			fmt.Fprintf(w, "  routed: %s\n", describe(host, l, to))
			explainProxy(w, l.Proxy)
		}
	}
	return routed
}

// explainHTTPS prints the HTTPS of the hosts that a route mine picks is
// on.
func explainHTTPS(w io.Writer, cfg model.Config, mine func(model.Location) bool) {
	for _, s := range cfg.Servers {
		if !slices.ContainsFunc(s.Locations, mine) {
			continue
		}
		switch {
		case s.TLS != nil:
			c := s.TLS.Certificate
			line := fmt.Sprintf("  https: host %s, with the certificate of Secret %s (serial %s, valid until %s)",
				s.Host, s.TLS.Secret, c.Serial, c.NotAfter.Format(time.RFC3339))
			if s.RedirectHTTPS {
				line += "; plain HTTP redirects to HTTPS (308)"
			} else {
				line += "; plain HTTP is routed too"
			}
			if s.TLS.HSTS != "" {
				line += "; HSTS " + s.TLS.HSTS
			}
			fmt.Fprintln(w, line)
		case s.RedirectHTTPS:
			fmt.Fprintf(w, "  https: host %s is not served over HTTPS, and plain HTTP redirects to it (see below)\n", s.Host)
		}
	}
}

// upstreamBackends lists each upstream's backends, by upstream name, as
// explain prints them.
func upstreamBackends(cfg model.Config) map[string][]string {
	backends := make(map[string][]string, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		for _, b := range u.Backends {
			backends[u.Name] = append(backends[u.Name], b.String())
		}
	}
	return backends
}
