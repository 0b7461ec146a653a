// Package publish writes the address at which nginx serves into the
// status.loadBalancer of the routed Ingresses, as Ingress controllers do
// (kubectl get ingress shows it; external-dns and cert-manager read it).
// One replica writes, elected with a Lease (client-go's leaderelection);
// the others wait, and one of them takes over when the leader stops or
// loses the Lease.
//
// The addresses are fixed (--publish-address) or those of a Service that
// fronts nginx (--publish-service): its load balancer's, else its external
// IPs, else its ClusterIP. The leader compares each Ingress's status in the
// watcher's cache with them and updates only those that differ, so a
// replica that takes over writes nothing when the status is already right.
//
// An Ingress that stops being routed after the leader's first pass (its
// class taken off so that it names none, its IngressClass deleted) has its
// status cleared, if it still holds exactly the addresses published. Not
// when it names another class, whose controller writes its own (perhaps
// the same addresses), nor when another controller has written others
// meanwhile (the update is conditional on the resource version, so a write
// that races with it wins).
package publish

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/client-go/util/retry"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// FieldManager is the field manager of the status updates.
const FieldManager = "kube-nginx-sync"

// Options configure a Publisher.
type Options struct {
	Client kubernetes.Interface
	// Ingresses returns the Ingresses to publish to, as the watcher's
	// cache holds them (with their status); they are only read.
	Ingresses func() []*networkingv1.Ingress
	// Class is the IngressClass routed: the status of an Ingress that is
	// no longer routed is cleared unless it names another class.
	Class string
	// Addresses are published as they are: IP addresses, or host names.
	Addresses []string
	// Service, when set (and Addresses not), is the Service whose
	// addresses are published.
	Service model.ServiceRef
	// LeaseNamespace and LeaseName name the election's Lease; Identity
	// names this replica in it.
	LeaseNamespace, LeaseName, Identity string
	// LeaseDuration is how long a leader that stopped renewing holds the
	// Lease; the renew deadline is two thirds of it.
	LeaseDuration time.Duration
	Registerer    prometheus.Registerer
	Log           *slog.Logger
}

// Publisher keeps the Ingresses' status current while its replica leads.
type Publisher struct {
	opts Options
	// service is the informer of the published Service, or nil.
	service cache.SharedIndexInformer
	// kick asks the leader for a sync; leading hands the leader's context
	// from the elector's callback to the goroutine that syncs.
	kick    chan struct{}
	leading chan context.Context
	leader  atomic.Bool
	// missing is the last problem logged about the addresses.
	missing string
	// routed holds the Ingresses ("namespace/name") routed at the last
	// pass of the leader, so that the next pass clears the status of those
	// that left; only the leading goroutine uses it.
	routed map[string]bool

	leaderGauge prometheus.Gauge
	updates     prometheus.Counter
	errors      prometheus.Counter
}

// New checks the options and creates a Publisher; Run starts it.
func New(opts Options) (*Publisher, error) {
	switch {
	case opts.Client == nil || opts.Ingresses == nil || opts.Log == nil:
		return nil, errors.New("publish: Client, Ingresses and Log are required")
	case len(opts.Addresses) == 0 && opts.Service == (model.ServiceRef{}):
		return nil, errors.New("publish: no addresses and no Service to publish")
	case opts.LeaseNamespace == "" || opts.LeaseName == "" || opts.Identity == "":
		return nil, errors.New("publish: the Lease needs a namespace, a name and an identity")
	case opts.LeaseDuration < time.Second:
		return nil, fmt.Errorf("publish: lease duration %s is shorter than 1s", opts.LeaseDuration)
	}
	for _, a := range opts.Addresses {
		if err := CheckAddress(a); err != nil {
			return nil, err
		}
	}
	const ns = "kube_nginx_sync"
	p := &Publisher{
		opts:    opts,
		kick:    make(chan struct{}, 1),
		leading: make(chan context.Context, 1),
		leaderGauge: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "ingress_status_leader",
			Help: "1 while this replica holds the Lease and writes the Ingresses' status.loadBalancer, else 0."}),
		updates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "ingress_status_updates_total",
			Help: "Updates of an Ingress's status.loadBalancer by this replica."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "ingress_status_update_errors_total",
			Help: "Failed updates of an Ingress's status.loadBalancer by this replica (retried)."}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(p.leaderGauge, p.updates, p.errors)
	}
	if len(opts.Addresses) == 0 {
		p.service = newServiceInformer(opts.Client, opts.Service)
		if _, err := p.service.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { p.Notify() },
			UpdateFunc: func(any, any) { p.Notify() },
			DeleteFunc: func(any) { p.Notify() },
		}); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// CheckAddress checks an address to publish: an IP address, or a host
// name (model.ParseHost, without a wildcard).
func CheckAddress(a string) error {
	if _, err := netip.ParseAddr(a); err == nil {
		return nil
	}
	h, err := model.ParseHost(a)
	if err != nil || h != a || h[0] == '*' {
		return fmt.Errorf("publish address %q is neither an IP address nor a lower-case host name", a)
	}
	return nil
}

// newServiceInformer watches the one Service ref.
func newServiceInformer(client kubernetes.Interface, ref model.ServiceRef) cache.SharedIndexInformer {
	field := fields.OneTermEqualSelector(metav1.ObjectNameField, ref.Name).String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.FieldSelector = field
			return client.CoreV1().Services(ref.Namespace).List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.FieldSelector = field
			return client.CoreV1().Services(ref.Namespace).Watch(ctx, o)
		},
	}
	return cache.NewSharedIndexInformerWithOptions(lw, &corev1.Service{},
		cache.SharedIndexInformerOptions{ObjectDescription: "published service " + ref.String()})
}

// Notify tells the leader that the Ingresses or the addresses may have
// changed. It never blocks.
func (p *Publisher) Notify() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Leader reports whether this replica leads.
func (p *Publisher) Leader() bool { return p.leader.Load() }

// Run takes part in the election until ctx ends, and while it leads keeps
// the Ingresses' status current. On its end it gives the Lease up, so that
// another replica takes over at once.
func (p *Publisher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	if p.service != nil {
		wg.Go(func() { p.service.RunWithContext(ctx) })
	}
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case lctx := <-p.leading:
				p.lead(lctx)
			}
		}
	})
	log := p.opts.Log.With("lease", p.opts.LeaseNamespace+"/"+p.opts.LeaseName, "identity", p.opts.Identity)
	for ctx.Err() == nil {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: p.opts.LeaseNamespace, Name: p.opts.LeaseName},
				Client:     p.opts.Client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: p.opts.Identity},
			},
			LeaseDuration:   p.opts.LeaseDuration,
			RenewDeadline:   p.opts.LeaseDuration * 2 / 3,
			RetryPeriod:     p.opts.LeaseDuration / 5,
			ReleaseOnCancel: true,
			Name:            "ingress-status",
			Callbacks: leaderelection.LeaderCallbacks{
				// The elector runs this in a goroutine of its own: the
				// work goes to the one above, which Run joins.
				OnStartedLeading: func(lctx context.Context) {
					select {
					case p.leading <- lctx:
					case <-lctx.Done():
					}
				},
				OnStoppedLeading: func() {},
				OnNewLeader: func(identity string) {
					log.Info("ingress status: a new leader", "leader", identity, "this_replica", identity == p.opts.Identity)
				},
			},
		})
		if err != nil {
			return fmt.Errorf("ingress status election: %w", err)
		}
		le.Run(ctx)
	}
	return nil
}

// resync is how often a leader looks at every status without a change;
// errorRetry how soon after a failed update; pace the least time between
// two passes.
const (
	resync     = time.Minute
	errorRetry = 5 * time.Second
	pace       = 100 * time.Millisecond
)

// lead keeps the status current until lctx, the leadership, ends.
func (p *Publisher) lead(lctx context.Context) {
	p.leader.Store(true)
	p.leaderGauge.Set(1)
	defer func() {
		p.leader.Store(false)
		p.leaderGauge.Set(0)
	}()
	p.opts.Log.Info("ingress status: leading; this replica writes the Ingresses' status")
	for {
		wait := resync
		if err := p.sync(lctx); err != nil {
			if lctx.Err() != nil {
				return
			}
			p.opts.Log.Warn("ingress status: an update failed; retrying", "err", err, "retry_in", errorRetry)
			wait = errorRetry
		}
		timer := time.NewTimer(wait)
		select {
		case <-lctx.Done():
			timer.Stop()
			return
		case <-p.kick:
			timer.Stop()
		case <-timer.C:
		}
		// At most one pass per pace, however often the cluster changes.
		select {
		case <-lctx.Done():
			return
		case <-time.After(pace):
		}
	}
}

// addresses returns the addresses to publish, or none and why.
func (p *Publisher) addresses() ([]networkingv1.IngressLoadBalancerIngress, string) {
	var addrs []string
	if len(p.opts.Addresses) > 0 {
		addrs = p.opts.Addresses
	} else {
		var svc *corev1.Service
		for _, o := range p.service.GetStore().List() {
			if s, ok := o.(*corev1.Service); ok && s.Name == p.opts.Service.Name {
				svc = s
			}
		}
		if svc == nil {
			return nil, "the published Service " + p.opts.Service.String() + " is not found"
		}
		addrs = serviceAddresses(svc)
		if len(addrs) == 0 {
			return nil, "the published Service " + p.opts.Service.String() + " has no address yet"
		}
	}
	out := make([]networkingv1.IngressLoadBalancerIngress, 0, len(addrs))
	for _, a := range addrs {
		if CheckAddress(a) != nil {
			continue
		}
		if _, err := netip.ParseAddr(a); err == nil {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: a})
		} else {
			out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		}
	}
	slices.SortFunc(out, func(a, b networkingv1.IngressLoadBalancerIngress) int {
		return cmp.Or(cmp.Compare(a.IP, b.IP), cmp.Compare(a.Hostname, b.Hostname))
	})
	return slices.CompactFunc(out, func(a, b networkingv1.IngressLoadBalancerIngress) bool {
		return a.IP == b.IP && a.Hostname == b.Hostname
	}), ""
}

// serviceAddresses are the addresses of a Service that fronts nginx: its
// load balancer's, else its external IPs, else its ClusterIP.
func serviceAddresses(svc *corev1.Service) []string {
	var out []string
	for _, lb := range svc.Status.LoadBalancer.Ingress {
		switch {
		case lb.IP != "":
			out = append(out, lb.IP)
		case lb.Hostname != "":
			out = append(out, lb.Hostname)
		}
	}
	if len(out) == 0 {
		out = append(out, svc.Spec.ExternalIPs...)
	}
	if len(out) == 0 && svc.Spec.ClusterIP != "" && svc.Spec.ClusterIP != corev1.ClusterIPNone {
		out = append(out, svc.Spec.ClusterIP)
	}
	return out
}

// equalStatus reports whether an Ingress's status has exactly addrs.
func equalStatus(cur []networkingv1.IngressLoadBalancerIngress, addrs []networkingv1.IngressLoadBalancerIngress) bool {
	return slices.EqualFunc(cur, addrs, func(a, b networkingv1.IngressLoadBalancerIngress) bool {
		return a.IP == b.IP && a.Hostname == b.Hostname && len(a.Ports) == 0 && len(b.Ports) == 0
	})
}

// sync updates every Ingress whose status differs from the addresses.
func (p *Publisher) sync(ctx context.Context) error {
	addrs, why := p.addresses()
	if why != p.missing {
		p.missing = why
		if why != "" {
			p.opts.Log.Warn("ingress status: nothing to publish; the Ingresses' status stays as it is", "detail", why)
		}
	}
	if len(addrs) == 0 {
		return nil
	}
	var errs []error
	routed := make(map[string]bool, len(p.routed))
	for _, ing := range p.opts.Ingresses() {
		routed[ing.Namespace+"/"+ing.Name] = true
		if equalStatus(ing.Status.LoadBalancer.Ingress, addrs) {
			continue
		}
		if err := p.setStatus(ctx, ing.Namespace, ing.Name, addrs, nil, "ingress status: published"); err != nil {
			p.errors.Inc()
			errs = append(errs, fmt.Errorf("ingress %s/%s: %w", ing.Namespace, ing.Name, err))
		}
	}
	for key := range p.routed {
		if routed[key] {
			continue
		}
		ns, name, _ := strings.Cut(key, "/")
		// Cleared only while it holds what was published, and names no
		// other class: that class's controller writes its own (and may
		// publish the same addresses, which must then stay).
		ours := func(cur *networkingv1.Ingress) bool {
			return equalStatus(cur.Status.LoadBalancer.Ingress, addrs) && !namesOtherClass(cur, p.opts.Class)
		}
		if err := p.setStatus(ctx, ns, name, nil, ours, "ingress status: cleared; the Ingress is no longer routed here"); err != nil {
			p.errors.Inc()
			errs = append(errs, fmt.Errorf("ingress %s: %w", key, err))
			routed[key] = true // tried again at the next pass
		}
	}
	p.routed = routed
	return errors.Join(errs...)
}

// namesOtherClass reports whether ing names a class other than class, by
// spec.ingressClassName or the legacy annotation.
func namesOtherClass(ing *networkingv1.Ingress, class string) bool {
	c, _ := model.NamedIngressClass(ing)
	return c != "" && c != class
}

// setStatus sets one Ingress's status.loadBalancer to addrs (nil clears
// it), from the Ingress as the API server has it (the cache's copy is
// stripped), unless it holds them already or, with only, only(the
// Ingress) is false; it logs msg when it writes.
func (p *Publisher) setStatus(ctx context.Context, ns, name string, addrs []networkingv1.IngressLoadBalancerIngress,
	only func(*networkingv1.Ingress) bool, msg string) error {
	ingresses := p.opts.Client.NetworkingV1().Ingresses(ns)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := ingresses.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return nil
		case err != nil:
			return err
		case equalStatus(cur.Status.LoadBalancer.Ingress, addrs):
			return nil
		case only != nil && !only(cur):
			return nil // another controller's
		}
		cur.Status.LoadBalancer.Ingress = addrs
		if _, err := ingresses.UpdateStatus(ctx, cur, metav1.UpdateOptions{FieldManager: FieldManager}); err != nil {
			return err
		}
		p.updates.Inc()
		p.opts.Log.Info(msg, "ingress", ns+"/"+name, "addresses", addrs)
		return nil
	})
}
