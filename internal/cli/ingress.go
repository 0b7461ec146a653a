package cli

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/publish"
)

// ingressFlags choose the IngressClass whose Ingresses are routed besides
// the Services: none by default, so that nothing reads Ingresses (nor
// needs the right to) unless asked.
type ingressFlags struct {
	class string
}

func (f *ingressFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.class, "ingress-class", "",
		"also route the Ingresses of this IngressClass (whose spec.controller is "+model.ControllerName+
			"), and those that name no class when it is the default one; empty: read no Ingress")
	mustComplete(cmd, "ingress-class", cobra.NoFileCompletions)
}

// apply checks the flag and sets it in the selection and the model
// options.
func (f *ingressFlags) apply(sel *kube.Selection, opts *model.Options) error {
	if f.class == "" {
		return nil
	}
	if err := model.CheckObjectName(f.class); err != nil {
		return usageError("--ingress-class %q: %v; want an IngressClass name such as kube-nginx-sync", f.class, err)
	}
	sel.IngressClass, opts.Ingress.Class = f.class, f.class
	return nil
}

// publishFlags say what address to write into the status of the routed
// Ingresses, and how the replica that writes it is elected.
type publishFlags struct {
	service        string
	addresses      []string
	leaseNamespace string
	leaseName      string
	leaseDuration  time.Duration
}

// defaultLeaseNamespace is the namespace of the election's Lease: the
// Pod's own ($POD_NAMESPACE, from the downward API), else "default".
func defaultLeaseNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "default"
}

func (f *publishFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.service, "publish-service", "",
		"NAMESPACE/NAME of the Service in front of nginx, whose address (load balancer, else external IPs, else ClusterIP) goes into the status of the routed Ingresses (needs --ingress-class)")
	fs.StringArrayVar(&f.addresses, "publish-address", nil,
		"IP address or host name to write into the status of the routed Ingresses, instead of --publish-service's; repeat for several")
	fs.StringVar(&f.leaseNamespace, "election-namespace", defaultLeaseNamespace(),
		"namespace of the Lease that elects the one replica that writes the Ingresses' status (default: $POD_NAMESPACE, else default)")
	fs.StringVar(&f.leaseName, "election-id", "kube-nginx-sync-ingress-status", "name of that Lease")
	fs.DurationVar(&f.leaseDuration, "election-lease-duration", 15*time.Second,
		"how long the Lease outlives a leader that stopped renewing it: another replica takes over after at most this")
	for _, name := range []string{"publish-service", "publish-address", "election-id", "election-lease-duration"} {
		mustComplete(cmd, name, cobra.NoFileCompletions)
	}
}

// enabled says whether the status is to be published.
func (f *publishFlags) enabled() bool { return f.service != "" || len(f.addresses) > 0 }

// check validates the flags; class is --ingress-class.
func (f *publishFlags) check(class string) error {
	if !f.enabled() {
		return nil
	}
	switch {
	case class == "":
		return usageError("--publish-service and --publish-address need --ingress-class: without it no Ingress is routed")
	case f.service != "" && len(f.addresses) > 0:
		return usageError("--publish-service and --publish-address: give one or the other")
	}
	if f.service != "" {
		if _, err := f.serviceRef(); err != nil {
			return err
		}
	}
	for _, a := range f.addresses {
		if err := publish.CheckAddress(a); err != nil {
			return usageError("--publish-address %q: want an IP address or a lower-case host name", a)
		}
	}
	if err := model.CheckNamespace(f.leaseNamespace); err != nil {
		return usageError("--election-namespace %q: %v", f.leaseNamespace, err)
	}
	if err := model.CheckObjectName(f.leaseName); err != nil {
		return usageError("--election-id %q: %v; want a Lease name", f.leaseName, err)
	}
	if f.leaseDuration < time.Second {
		return usageError("--election-lease-duration %s: want at least 1s", f.leaseDuration)
	}
	return nil
}

func (f *publishFlags) serviceRef() (model.ServiceRef, error) {
	ns, name, ok := strings.Cut(f.service, "/")
	if !ok || model.CheckNamespace(ns) != nil || model.CheckNamespace(name) != nil {
		return model.ServiceRef{}, usageError("--publish-service %q: want NAMESPACE/NAME of a Service", f.service)
	}
	return model.ServiceRef{Namespace: ns, Name: name}, nil
}

// identity names this replica in the Lease: its host name (the Pod's
// name), and a random suffix, so that two processes on one host differ.
func identity() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return host + "_" + hex.EncodeToString(b)
}

// newPublisher builds the status publisher of a generator that routes the
// Ingresses of class, whose cached Ingresses ingresses returns, or nil when
// no status is to be published.
func newPublisher(f publishFlags, client kubernetes.Interface, class string, ingresses func() []*networkingv1.Ingress,
	reg prometheus.Registerer, log *slog.Logger) (*publish.Publisher, error) {
	if !f.enabled() {
		return nil, nil
	}
	opts := publish.Options{Client: client, Ingresses: ingresses, Class: class, Addresses: f.addresses,
		LeaseNamespace: f.leaseNamespace, LeaseName: f.leaseName, Identity: identity(), LeaseDuration: f.leaseDuration,
		Registerer: reg, Log: log}
	if f.service != "" {
		ref, err := f.serviceRef()
		if err != nil {
			return nil, err
		}
		opts.Service = ref
	}
	p, err := publish.New(opts)
	if err != nil {
		return nil, fmt.Errorf("ingress status: %w", err)
	}
	return p, nil
}

// selectedIngresses returns the function that tells a publisher which
// Ingresses are routed: those of the class in the watcher's cache.
func selectedIngresses(w *kube.Watcher, opts model.Options) func() []*networkingv1.Ingress {
	return func() []*networkingv1.Ingress {
		o := opts
		o.Ingress.Ingresses, o.Ingress.Classes = w.IngressObjects()
		selected, _ := model.SelectIngresses(o)
		return selected
	}
}

// logIngressResult logs why no Ingress is routed, and each Ingress, or
// Ingress path, that is not, and each warning.
func logIngressResult(log *slog.Logger, res model.IngressResult) {
	if res.ClassProblem != "" {
		log.Warn("no Ingress is routed", "detail", res.ClassProblem)
	}
	for _, r := range res.Rejected {
		log.Warn("ingress not routed", "ingress", r.Ingress.String(), "path", r.Path, "reason", string(r.Reason), "detail", r.Message)
	}
	for _, w := range res.Warnings {
		log.Warn("ingress problem", "ingress", w.Ingress.String(), "reason", string(w.Reason), "detail", w.Message)
	}
}
