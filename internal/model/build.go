package model

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Options selects the Services that Build routes and sets defaults.
type Options struct {
	// Selector picks Services by label; nil selects every Service.
	Selector labels.Selector
	// Namespaces restricts the Services to these namespaces; empty means
	// all namespaces.
	Namespaces []string
	// DefaultMode is the upstream mode of Services without the upstream
	// annotation; empty means UpstreamEndpoints.
	DefaultMode UpstreamMode
	// Ingress selects the Ingresses routed besides the Services; with no
	// Class, none.
	Ingress IngressOptions
	// Secrets are the Secrets that Services may name for HTTPS
	// (AnnotationTLSSecret); only read.
	Secrets []*corev1.Secret
	// Now is the time that certificates are checked against; zero checks
	// none against the time (for tests).
	Now time.Time
	// DisableHTTPS serves no host over HTTPS: a host that asks for it is
	// served over plain HTTP only, with a Warning (ReasonHTTPSDisabled).
	DisableHTTPS bool
}

// Build computes the routing Config for the Services that opts selects, with
// their backends taken from the EndpointSlices labelled with
// discoveryv1.LabelServiceName. The inputs are only read.
//
// Semantics, which docs/annotations.md documents for users:
//   - A Service port becomes a route (a Location). A Service with one TCP
//     port is routed at its path; with several, each TCP port is routed at
//     <path><port name>/, unless AnnotationPort picks one port, which is then
//     routed at <path>.
//   - Default path /<namespace>/<name>/; no host means the default server.
//   - Two routes with the same host and path: the one of the older Service
//     wins (then the smaller namespace/name:port); the loser is rejected
//     with ReasonRouteConflict, naming the winner.
//   - ExternalName Services are not routed (nginx would resolve a name that
//     any Service author chooses); a headless Service is routed to its
//     endpoints only; UDP and SCTP ports are not routed.
//   - With Options.Ingress, the Ingresses of its class are routed too
//     (ingressRoutes), to any Service of their namespace, selected or not.
//     Their routes and the Services' share one conflict rule: same host,
//     path and match (prefix or exact), the oldest object wins, then the
//     smaller namespace/name; a route of an Ingress's defaultBackend
//     yields to any other route of "/" on its host.
//   - HTTPS is a host's: the Services on a host that name a TLS Secret
//     must agree on it, on the redirect and on HSTS; the oldest one's
//     settings win (then the smaller namespace/name), and a Service that
//     asks for others is rejected with ReasonTLSConflict. Every route of
//     the host is then served over HTTPS too. A Secret that is missing or
//     cannot be used (checkCertificate) leaves the host's HTTPS out, with
//     a Warning for each Service that names it; the host's plain HTTP
//     still redirects to HTTPS, unless the redirect is off.
func Build(services []*corev1.Service, endpointSlices []*discoveryv1.EndpointSlice, opts Options) Result {
	selector := opts.Selector
	if selector == nil {
		selector = labels.Everything()
	}
	defaultMode := opts.DefaultMode
	if defaultMode == "" {
		defaultMode = UpstreamEndpoints
	}
	var namespaces map[string]bool
	if len(opts.Namespaces) > 0 {
		namespaces = make(map[string]bool, len(opts.Namespaces))
		for _, ns := range opts.Namespaces {
			namespaces[ns] = true
		}
	}

	slicesByService := make(map[ServiceRef][]*discoveryv1.EndpointSlice)
	for _, s := range endpointSlices {
		name := s.Labels[discoveryv1.LabelServiceName]
		if name == "" {
			continue
		}
		ref := ServiceRef{Namespace: s.Namespace, Name: name}
		slicesByService[ref] = append(slicesByService[ref], s)
	}

	selected := make([]*corev1.Service, 0, len(services))
	for _, svc := range services {
		if namespaces != nil && !namespaces[svc.Namespace] {
			continue
		}
		if !selector.Matches(labels.Set(svc.Labels)) {
			continue
		}
		selected = append(selected, svc)
	}
	slices.SortFunc(selected, func(a, b *corev1.Service) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})

	var res Result
	res.Services = len(selected)
	candidates := make([]candidate, 0, len(selected))
	for _, svc := range selected {
		ref := ServiceRef{Namespace: svc.Namespace, Name: svc.Name}
		routes, rejections := serviceRoutes(svc, slicesByService[ref], defaultMode)
		candidates = append(candidates, routes...)
		res.Rejected = append(res.Rejected, rejections...)
	}

	if opts.Ingress.Class != "" {
		routes, ingresses := ingressCandidates(services, slicesByService, opts, defaultMode)
		candidates = append(candidates, routes...)
		res.Ingress = ingresses
	}

	candidates, claims, tlsConflicts := resolveTLS(candidates)
	res.Rejected = append(res.Rejected, tlsConflicts.services...)
	res.Ingress.Rejected = append(res.Ingress.Rejected, tlsConflicts.ingresses...)
	winners, conflicts, ingressConflicts := resolveConflicts(candidates)
	res.Rejected = append(res.Rejected, conflicts...)
	res.Ingress.Rejected = append(res.Ingress.Rejected, ingressConflicts...)
	slices.SortFunc(res.Rejected, func(a, b Rejection) int {
		return cmp.Or(
			cmp.Compare(a.Service.Namespace, b.Service.Namespace),
			cmp.Compare(a.Service.Name, b.Service.Name),
			cmp.Compare(a.Port, b.Port))
	})
	res.Config = assemble(winners)
	applyTLS(&res, claims, opts)
	sortIngressResult(&res.Ingress)
	return res
}

// ServiceBackends returns what Build gives each routed port of svc (its
// upstream's backends, empty for none) when these are the Service's
// EndpointSlices: for the routes of svc that Build routes, their
// endpoints, computed for this one Service. It returns nil for a Service
// that Build would not route at all (not selected, or refused).
func ServiceBackends(svc *corev1.Service, endpointSlices []*discoveryv1.EndpointSlice, opts Options) map[ServicePort][]netip.AddrPort {
	if len(opts.Namespaces) > 0 && !slices.Contains(opts.Namespaces, svc.Namespace) {
		return nil
	}
	if opts.Selector != nil && !opts.Selector.Matches(labels.Set(svc.Labels)) {
		return nil
	}
	routes, _ := serviceRoutes(svc, endpointSlices, cmp.Or(opts.DefaultMode, UpstreamEndpoints))
	if len(routes) == 0 {
		return nil
	}
	out := make(map[ServicePort][]netip.AddrPort, len(routes))
	for _, r := range routes {
		out[r.location.Service] = r.backends
	}
	return out
}

// candidate is a route before conflicts are resolved.
type candidate struct {
	host     string
	location Location
	backends []netip.AddrPort
	created  time.Time
	// fallback marks the route of an Ingress's defaultBackend, which
	// yields to any other route of its host and path.
	fallback bool
	// item orders the routes of one Ingress, and desc names one in
	// messages (both "" for a Service's routes).
	item, desc string
	// tls is what the Service, or the Ingress's tls section, asks of the
	// host's HTTPS, or nil.
	tls *tlsRequest
}

// owner names what a route comes from, for the conflict rule's order: its
// Ingress, or its Service, and then its place there.
func (c *candidate) owner() (namespace, name, kind, item string) {
	if ing := c.location.Ingress; !ing.IsZero() {
		return ing.Namespace, ing.Name, "Ingress", c.item
	}
	return c.location.Service.Namespace, c.location.Service.Name, "Service", c.location.Service.Port
}

// describe names the route in another route's conflict message.
func (c *candidate) describe() string {
	if ing := c.location.Ingress; !ing.IsZero() {
		return c.location.Service.String() + " by Ingress " + ing.String()
	}
	return c.location.Service.String()
}

// serviceRoutes validates one Service and returns its routes, or the reasons
// it cannot be routed.
func serviceRoutes(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, defaultMode UpstreamMode) ([]candidate, []Rejection) {
	ref := ServiceRef{Namespace: svc.Namespace, Name: svc.Name}
	reject := func(reason Reason, format string, args ...any) ([]candidate, []Rejection) {
		return nil, []Rejection{{Service: ref, Reason: reason, Message: fmt.Sprintf(format, args...)}}
	}
	if err := checkDNSLabel(svc.Namespace); err != nil {
		return reject(ReasonInvalidService, "namespace: %v", err)
	}
	if err := checkDNSLabel(svc.Name); err != nil || svc.Name[0] < 'a' || svc.Name[0] > 'z' {
		return reject(ReasonInvalidService, "name %s is not a DNS-1035 label", showValue(svc.Name))
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return reject(ReasonUnsupported, "ExternalName Services are not routed")
	}

	ann, err := parseAnnotations(svc.Annotations, ref, defaultMode)
	if err != nil {
		return reject(ReasonInvalidAnnotation, "%v", err)
	}

	ports, err := routedPorts(svc, ann)
	if err != nil {
		var ae *AnnotationError
		if errors.As(err, &ae) {
			return reject(ReasonInvalidAnnotation, "%v", err)
		}
		return reject(ReasonUnsupported, "%v", err)
	}

	var clusterIP netip.Addr
	if ann.mode == UpstreamService {
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !usableAddr(ip) {
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				return reject(ReasonUnsupported, "upstream %q needs a ClusterIP, and this Service is headless", UpstreamService)
			}
			return reject(ReasonUnsupported, "upstream %q needs a ClusterIP, and this Service has %s", UpstreamService, showValue(svc.Spec.ClusterIP))
		}
		clusterIP = ip
	}

	routes := make([]candidate, 0, len(ports))
	for _, p := range ports {
		sp := ServicePort{Namespace: svc.Namespace, Name: svc.Name, Port: portKey(p.port)}
		path := ann.path
		if p.suffixed {
			path += sp.Port + "/"
		}
		var backends []netip.AddrPort
		switch ann.mode {
		case UpstreamService:
			backends = []netip.AddrPort{netip.AddrPortFrom(clusterIP, uint16(p.port.Port))}
		default:
			backends = readyBackends(slices, p.port.Name)
		}
		routes = append(routes, candidate{
			host: ann.host,
			location: Location{
				Path:        path,
				StripPrefix: ann.stripPrefix,
				Service:     sp,
				Mode:        ann.mode,
				Proxy:       ann.proxy,
			},
			backends: backends,
			created:  svc.CreationTimestamp.Time,
			tls:      ann.tls,
		})
	}
	return routes, nil
}

// annotations holds a Service's validated annotations with defaults applied.
type annotations struct {
	host        string
	path        string
	portName    string
	portNumber  int32
	mode        UpstreamMode
	stripPrefix bool
	proxy       ProxySettings
	tls         *tlsRequest
}

func parseAnnotations(raw map[string]string, ref ServiceRef, defaultMode UpstreamMode) (annotations, error) {
	a := annotations{
		path:        "/" + ref.Namespace + "/" + ref.Name + "/",
		mode:        defaultMode,
		stripPrefix: true,
	}
	// Sorted keys, so that a Service with several bad annotations always
	// reports the same one.
	keys := make([]string, 0, len(raw))
	for k := range raw {
		if strings.HasPrefix(k, AnnotationPrefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var (
		tls      tlsRequest
		redirect string // the redirect annotation's value, if any
	)
	for _, key := range keys {
		value := raw[key]
		var err error
		switch key {
		case AnnotationHost:
			a.host, err = ParseHost(value)
		case AnnotationPath:
			a.path, err = ParsePath(value)
		case AnnotationPort:
			a.portName, a.portNumber, err = ParsePortSelector(value)
		case AnnotationUpstream:
			a.mode, err = ParseUpstreamMode(value)
		case AnnotationStripPrefix:
			a.stripPrefix, err = parseBool(value)
		case AnnotationReadTimeout, AnnotationSendTimeout, AnnotationMaxBodySize:
			err = a.proxy.set(key, value)
		case AnnotationTLSSecret:
			tls.secret, err = ParseSecretName(value)
		case AnnotationHTTPSRedirect:
			_, err = parseBool(value)
			redirect = value
		case AnnotationHSTS:
			tls.hsts, err = ParseHSTS(value)
		default:
			err = fmt.Errorf("unknown annotation (known: %s)", strings.Join(slices.Sorted(maps.Keys(knownAnnotations)), ", "))
		}
		if err != nil {
			return annotations{}, &AnnotationError{Key: key, Value: value, Err: err}
		}
	}
	switch {
	case tls.secret != "":
		if a.host == "" {
			return annotations{}, &AnnotationError{Key: AnnotationTLSSecret, Value: raw[AnnotationTLSSecret],
				Err: fmt.Errorf("needs %s: HTTPS is served by host name (SNI), and the default server has none", AnnotationHost)}
		}
		tls.namespace, tls.redirect = ref.Namespace, redirect != "false"
		a.tls = &tls
	case redirect != "":
		return annotations{}, &AnnotationError{Key: AnnotationHTTPSRedirect, Value: redirect, Err: fmt.Errorf("needs %s", AnnotationTLSSecret)}
	case tls.hsts != "":
		return annotations{}, &AnnotationError{Key: AnnotationHSTS, Value: raw[AnnotationHSTS], Err: fmt.Errorf("needs %s", AnnotationTLSSecret)}
	}
	return a, nil
}

// routedPort is a Service port to route, and whether its route path gets the
// port's name as a suffix.
type routedPort struct {
	port     corev1.ServicePort
	suffixed bool
}

func routedPorts(svc *corev1.Service, ann annotations) ([]routedPort, error) {
	for _, p := range svc.Spec.Ports {
		if p.Port < 1 || p.Port > 65535 {
			return nil, fmt.Errorf("port %d is out of range", p.Port)
		}
		if p.Name != "" {
			if err := checkPortName(p.Name); err != nil {
				return nil, err
			}
		} else if len(svc.Spec.Ports) > 1 {
			return nil, fmt.Errorf("a Service with several ports must name each")
		}
	}
	if ann.portName != "" || ann.portNumber != 0 {
		for _, p := range svc.Spec.Ports {
			if (ann.portName != "" && p.Name == ann.portName) || (ann.portNumber != 0 && p.Port == ann.portNumber) {
				if !isTCP(p.Protocol) {
					return nil, fmt.Errorf("port %s is %s; only TCP ports are routed", portKey(p), p.Protocol)
				}
				return []routedPort{{port: p}}, nil
			}
		}
		value := ann.portName
		if value == "" {
			value = strconv.Itoa(int(ann.portNumber))
		}
		return nil, &AnnotationError{Key: AnnotationPort, Value: value, Err: fmt.Errorf("the Service has no such port")}
	}
	var tcp []routedPort
	for _, p := range svc.Spec.Ports {
		if isTCP(p.Protocol) {
			tcp = append(tcp, routedPort{port: p})
		}
	}
	switch len(tcp) {
	case 0:
		return nil, fmt.Errorf("the Service has no TCP port")
	case 1:
		return tcp, nil
	}
	for i := range tcp {
		tcp[i].suffixed = true
	}
	return tcp, nil
}

func isTCP(p corev1.Protocol) bool { return p == "" || p == corev1.ProtocolTCP }

// portKey names a Service port: its name, or its number when it has none.
func portKey(p corev1.ServicePort) string {
	if p.Name != "" {
		return p.Name
	}
	return strconv.Itoa(int(p.Port))
}

// readyBackends returns the sorted, distinct addresses of the ready,
// non-terminating endpoints in endpointSlices, with the port that each slice gives
// for the Service port named portName. Named target ports may resolve to a
// different number in each slice, so the port is looked up per slice.
// Endpoints with an unusable address are skipped.
func readyBackends(endpointSlices []*discoveryv1.EndpointSlice, portName string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, s := range endpointSlices {
		var want4 bool
		switch s.AddressType {
		case discoveryv1.AddressTypeIPv4:
			want4 = true
		case discoveryv1.AddressTypeIPv6:
		default:
			continue // FQDN slices name hosts that nginx would have to resolve.
		}
		port, ok := slicePort(s, portName)
		if !ok {
			continue
		}
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && !*ep.Conditions.Ready {
				continue
			}
			if ep.Conditions.Terminating != nil && *ep.Conditions.Terminating {
				continue
			}
			if len(ep.Addresses) == 0 {
				continue
			}
			// All addresses of an endpoint are fungible; the first is
			// the one to use.
			addr, err := netip.ParseAddr(ep.Addresses[0])
			if err != nil || !usableAddr(addr) || addr.Is4() != want4 {
				continue
			}
			out = append(out, netip.AddrPortFrom(addr, port))
		}
	}
	slicesSortAddrPorts(out)
	return slices.Compact(out)
}

// slicePort finds the TCP port named portName in an EndpointSlice.
func slicePort(s *discoveryv1.EndpointSlice, portName string) (uint16, bool) {
	for _, p := range s.Ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		if name != portName || p.Port == nil || *p.Port < 1 || *p.Port > 65535 {
			continue
		}
		if p.Protocol != nil && !isTCP(*p.Protocol) {
			continue
		}
		return uint16(*p.Port), true
	}
	return 0, false
}

// usableAddr accepts a unicast address without a zone, in its plain form
// (no IPv4-mapped IPv6), so it renders the same way everywhere.
func usableAddr(a netip.Addr) bool {
	return a.IsValid() && a.Zone() == "" && !a.Is4In6() && !a.IsUnspecified() && !a.IsMulticast()
}

func slicesSortAddrPorts(a []netip.AddrPort) {
	slices.SortFunc(a, func(x, y netip.AddrPort) int { return x.Compare(y) })
}

// resolveConflicts keeps one route per host, path and match: the one
// whose Service or Ingress is oldest, then the smallest namespace/name (and
// Service port, or place in the Ingress); a defaultBackend's route comes
// after all others. The others are rejected, but for a defaultBackend's
// route behind another kind: that is how it yields.
func resolveConflicts(cands []candidate) ([]*candidate, []Rejection, []IngressRejection) {
	// Sort pointers: a candidate is large, and this is the hottest sort of
	// a rebuild. The order is total, so no stability is needed.
	order := make([]*candidate, len(cands))
	for i := range cands {
		order[i] = &cands[i]
	}
	slices.SortFunc(order, func(a, b *candidate) int {
		ans, aname, akind, aitem := a.owner()
		bns, bname, bkind, bitem := b.owner()
		return cmp.Or(
			cmp.Compare(a.host, b.host),
			cmp.Compare(a.location.Path, b.location.Path),
			CompareBool(a.location.Exact, b.location.Exact),
			CompareBool(a.fallback, b.fallback),
			a.created.Compare(b.created),
			cmp.Compare(ans, bns),
			cmp.Compare(aname, bname),
			cmp.Compare(akind, bkind),
			cmp.Compare(aitem, bitem))
	})
	winners := make([]*candidate, 0, len(order))
	var rejected []Rejection
	var ingressRejected []IngressRejection
	for _, c := range order {
		if n := len(winners); n > 0 && c.host == winners[n-1].host && c.location.Path == winners[n-1].location.Path &&
			c.location.Exact == winners[n-1].location.Exact {
			w := winners[n-1]
			if c.fallback && !w.fallback {
				continue // a defaultBackend yields to the host's own route of "/"
			}
			host := c.host
			if host == "" {
				host = "the default server"
			}
			path := "path " + c.location.Path
			if c.location.Exact {
				path = "exact path " + c.location.Path
			}
			msg := fmt.Sprintf("%s on %s is already routed to %s, which is older or sorts first", path, host, w.describe())
			if ing := c.location.Ingress; !ing.IsZero() {
				ingressRejected = append(ingressRejected, IngressRejection{Ingress: ing, Path: c.desc, Reason: ReasonRouteConflict, Message: msg})
				continue
			}
			rejected = append(rejected, Rejection{
				Service: ServiceRef{Namespace: c.location.Service.Namespace, Name: c.location.Service.Name},
				Port:    c.location.Service.Port,
				Reason:  ReasonRouteConflict,
				Message: msg,
			})
			continue
		}
		winners = append(winners, c)
	}
	return winners, rejected, ingressRejected
}

// CompareBool orders false before true (for slices.SortFunc and cmp.Or).
func CompareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// assemble groups the winning routes into servers and upstreams. Routes of
// one Service port share its upstream. A prefix location whose path
// without its final "/" is a server's exact location leaves that path to
// it (BareExact).
func assemble(routes []*candidate) Config {
	byHost := map[string][]Location{"": nil}
	ups := make([]Upstream, 0, len(routes))
	seen := make(map[string]bool, len(routes))
	exact := make(map[string]map[string]bool) // host -> exact paths
	for _, r := range routes {
		loc := r.location
		if len(r.backends) > 0 {
			loc.Upstream = loc.Service.UpstreamName()
			if !seen[loc.Upstream] {
				seen[loc.Upstream] = true
				ups = append(ups, Upstream{Name: loc.Upstream, Backends: r.backends})
			}
		}
		if loc.Exact {
			if exact[r.host] == nil {
				exact[r.host] = make(map[string]bool)
			}
			exact[r.host][loc.Path] = true
		}
		byHost[r.host] = append(byHost[r.host], loc)
	}
	if len(ups) == 0 {
		ups = nil // a Config without upstreams has none, not an empty list
	}
	cfg := Config{Upstreams: ups}
	for _, host := range slices.Sorted(maps.Keys(byHost)) {
		locs := byHost[host]
		if paths := exact[host]; paths != nil {
			for i, l := range locs {
				if !l.Exact && l.Path != "/" && paths[strings.TrimSuffix(l.Path, "/")] {
					locs[i].Bare = BareExact
				}
			}
		}
		slices.SortFunc(locs, func(a, b Location) int {
			return cmp.Or(cmp.Compare(a.Path, b.Path), CompareBool(a.Exact, b.Exact))
		})
		cfg.Servers = append(cfg.Servers, Server{Host: host, Locations: locs})
	}
	slices.SortFunc(cfg.Upstreams, func(a, b Upstream) int { return cmp.Compare(a.Name, b.Name) })
	return cfg
}
