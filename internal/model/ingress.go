package model

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// ControllerName is the spec.controller of the IngressClass whose Ingresses
// kube-nginx-sync routes (IngressOptions.Class names it).
const ControllerName = "kube-nginx-sync.io/ingress-controller"

// AnnotationLegacyIngressClass names an Ingress's class the way Ingresses
// did before spec.ingressClassName; ingress-nginx still reads it, and so
// does kube-nginx-sync, when spec.ingressClassName is empty.
const AnnotationLegacyIngressClass = "kubernetes.io/ingress.class"

// Reasons that concern Ingresses only.
const (
	// ReasonInvalidIngress: a field of the Ingress (its name, a host, a
	// path, a backend's name or port) does not match its grammar.
	ReasonInvalidIngress Reason = "InvalidIngress"
	// ReasonIgnoredAnnotation (a warning): an ingress-nginx annotation
	// that has no equivalent here is ignored.
	ReasonIgnoredAnnotation Reason = "IgnoredAnnotation"
	// ReasonBackendNotFound (a warning): a backend's Service, or its port,
	// does not exist; the route answers 503 until it does.
	ReasonBackendNotFound Reason = "BackendNotFound"
	// ReasonTLSNotServed (a warning): an entry or a host of the
	// Ingress's tls section is not served (no secretName, no hosts, a
	// host that no rule of the Ingress routes, or one listed twice).
	ReasonTLSNotServed Reason = "TLSNotServed"
)

// IngressOptions say which Ingresses Build routes besides the Services.
type IngressOptions struct {
	// Class is the IngressClass whose Ingresses are routed; "" routes
	// none. The IngressClass must exist with spec.controller
	// ControllerName.
	Class string
	// Ingresses and Classes are the Ingresses and IngressClasses read;
	// only read.
	Ingresses []*networkingv1.Ingress
	Classes   []*networkingv1.IngressClass
}

// IngressRef names an Ingress.
type IngressRef struct {
	Namespace string
	Name      string
}

func (r IngressRef) String() string { return r.Namespace + "/" + r.Name }

// IsZero reports whether r names no Ingress.
func (r IngressRef) IsZero() bool { return r == IngressRef{} }

// IngressResult is what became of the Ingresses of the class.
type IngressResult struct {
	// ClassProblem says why no Ingress is routed although a Class is set
	// (the IngressClass is missing, or another controller's); "" when
	// the class's Ingresses are routed.
	ClassProblem string
	// Selected are the Ingresses of the class in the selected namespaces,
	// routed or not, sorted.
	Selected []IngressRef
	// Rejected lists what was left out, sorted by Ingress, then Path.
	Rejected []IngressRejection
	// Warnings lists what of a routed Ingress is ignored or answers 503,
	// sorted by Ingress, then Reason, then Message.
	Warnings []IngressWarning
}

// IngressRejection says why an Ingress, or one of its paths, is not
// routed.
type IngressRejection struct {
	Ingress IngressRef
	// Path names the route concerned ("shop.example.com/api (Prefix)",
	// "default backend"), or is "" when the whole Ingress is left out.
	Path   string
	Reason Reason
	// Message is a sentence for people, safe to log (see Rejection).
	Message string
}

func (r IngressRejection) String() string {
	if r.Path != "" {
		return fmt.Sprintf("ingress %s %s: %s: %s", r.Ingress, r.Path, r.Reason, r.Message)
	}
	return fmt.Sprintf("ingress %s: %s: %s", r.Ingress, r.Reason, r.Message)
}

// IngressWarning is a problem of a routed Ingress short of a rejection: an
// annotation ignored, a backend that answers 503.
type IngressWarning struct {
	Ingress IngressRef
	Reason  Reason
	// Message is a sentence for people, safe to log (see Rejection).
	Message string
}

func (w IngressWarning) String() string {
	return fmt.Sprintf("ingress %s: %s: %s", w.Ingress, w.Reason, w.Message)
}

// NamedIngressClass returns the IngressClass that ing names, and where:
// its spec.ingressClassName, else its legacy annotation
// (AnnotationLegacyIngressClass); "" when it names none (it is then of the
// default class, if there is one: IngressClassOf).
func NamedIngressClass(ing *networkingv1.Ingress) (class, where string) {
	if c := ing.Spec.IngressClassName; c != nil && *c != "" {
		return *c, "spec.ingressClassName"
	}
	if c := ing.Annotations[AnnotationLegacyIngressClass]; c != "" {
		return c, "annotation " + AnnotationLegacyIngressClass
	}
	return "", ""
}

// IngressClassOf returns the IngressClass that ing belongs to, and how it
// was found: by its spec.ingressClassName; else by its legacy annotation
// (AnnotationLegacyIngressClass); else it belongs to the class of classes
// marked default, when exactly one is. It returns "" when it belongs to
// none.
func IngressClassOf(ing *networkingv1.Ingress, classes []*networkingv1.IngressClass) (class, how string) {
	if c, how := NamedIngressClass(ing); c != "" {
		return c, how
	}
	var defaults []string
	for _, c := range classes {
		if c.Annotations[networkingv1.AnnotationIsDefaultIngressClass] == "true" {
			defaults = append(defaults, c.Name)
		}
	}
	if len(defaults) == 1 {
		return defaults[0], "the default IngressClass (it names none)"
	}
	return "", ""
}

// ingressClassProblem says why the Ingresses of class cannot be routed, or
// "".
func ingressClassProblem(class string, classes []*networkingv1.IngressClass) string {
	for _, c := range classes {
		if c.Name != class {
			continue
		}
		if c.Spec.Controller != ControllerName {
			return fmt.Sprintf("IngressClass %s belongs to controller %s, not %s", class, showValue(c.Spec.Controller), ControllerName)
		}
		return ""
	}
	return fmt.Sprintf("IngressClass %s not found: create it with spec.controller %s", class, ControllerName)
}

// SelectIngresses returns the Ingresses that Build routes with opts: those
// of opts.Ingress.Class (IngressClassOf) in opts.Namespaces, sorted by
// namespace and name; or none, and why, when the class cannot be routed.
func SelectIngresses(opts Options) ([]*networkingv1.Ingress, string) {
	io := opts.Ingress
	if io.Class == "" {
		return nil, ""
	}
	if problem := ingressClassProblem(io.Class, io.Classes); problem != "" {
		return nil, problem
	}
	var out []*networkingv1.Ingress
	for _, ing := range io.Ingresses {
		if len(opts.Namespaces) > 0 && !slices.Contains(opts.Namespaces, ing.Namespace) {
			continue
		}
		if class, _ := IngressClassOf(ing, io.Classes); class == io.Class {
			out = append(out, ing)
		}
	}
	slices.SortFunc(out, func(a, b *networkingv1.Ingress) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out, ""
}

// ingressCandidates returns the routes of the selected Ingresses, and what
// became of each.
func ingressCandidates(services []*corev1.Service, slicesByService map[ServiceRef][]*discoveryv1.EndpointSlice,
	opts Options, defaultMode UpstreamMode) ([]candidate, IngressResult) {
	var res IngressResult
	selected, problem := SelectIngresses(opts)
	res.ClassProblem = problem
	if len(selected) == 0 {
		return nil, res
	}
	r := &backendResolver{services: make(map[ServiceRef]*corev1.Service, len(services)), slices: slicesByService, defaultMode: defaultMode}
	for _, s := range services {
		r.services[ServiceRef{Namespace: s.Namespace, Name: s.Name}] = s
	}
	var cands []candidate
	for _, ing := range selected {
		res.Selected = append(res.Selected, IngressRef{Namespace: ing.Namespace, Name: ing.Name})
		c, rej, warn := ingressRoutes(ing, r)
		cands = append(cands, c...)
		res.Rejected = append(res.Rejected, rej...)
		res.Warnings = append(res.Warnings, warn...)
	}
	return cands, res
}

// sortIngressResult puts the rejections and warnings in their order.
func sortIngressResult(res *IngressResult) {
	slices.SortFunc(res.Rejected, func(a, b IngressRejection) int {
		return cmp.Or(cmp.Compare(a.Ingress.Namespace, b.Ingress.Namespace), cmp.Compare(a.Ingress.Name, b.Ingress.Name),
			cmp.Compare(a.Path, b.Path), cmp.Compare(a.Message, b.Message))
	})
	slices.SortFunc(res.Warnings, func(a, b IngressWarning) int {
		return cmp.Or(cmp.Compare(a.Ingress.Namespace, b.Ingress.Namespace), cmp.Compare(a.Ingress.Name, b.Ingress.Name),
			cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Message, b.Message))
	})
	res.Warnings = slices.Compact(res.Warnings)
}

// pathTypeName names a path type for messages; an absent one is "".
func pathTypeName(t *networkingv1.PathType) string {
	if t == nil {
		return ""
	}
	return string(*t)
}

// ingressRoutes validates one Ingress and returns its routes, what of it is
// left out, and what needs its owner's attention.
//
// Rules, which docs/ingress.md documents for users:
//   - A path routes requests of its rule's host (the default server when
//     it has none) to its backend. Prefix and ImplementationSpecific
//     paths match whole path segments, /api matching /api, /api/ and
//     /api/x; Exact paths match the one path. nginx's longest match
//     decides between paths, an exact location before a prefix one.
//   - The defaultBackend routes "/" on the default server and on each host
//     of the Ingress, unless a path routes "/" there.
//   - An invalid host, path or backend leaves that path out; an invalid
//     annotation, or an invalid name, the whole Ingress.
func ingressRoutes(ing *networkingv1.Ingress, r *backendResolver) ([]candidate, []IngressRejection, []IngressWarning) {
	ref := IngressRef{Namespace: ing.Namespace, Name: ing.Name}
	var (
		cands    []candidate
		rejected []IngressRejection
		warnings []IngressWarning
	)
	reject := func(path string, reason Reason, format string, args ...any) {
		rejected = append(rejected, IngressRejection{Ingress: ref, Path: path, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	warn := func(reason Reason, format string, args ...any) {
		warnings = append(warnings, IngressWarning{Ingress: ref, Reason: reason, Message: fmt.Sprintf(format, args...)})
	}
	if err := checkDNSLabel(ing.Namespace); err != nil {
		reject("", ReasonInvalidIngress, "namespace: %v", err)
		return nil, rejected, nil
	}
	if err := checkSubdomain(ing.Name); err != nil {
		reject("", ReasonInvalidIngress, "name %s is not a DNS subdomain: %v", showValue(ing.Name), err)
		return nil, rejected, nil
	}
	ann, err := parseIngressAnnotations(ing.Annotations)
	if err != nil {
		reject("", ReasonInvalidAnnotation, "%v", err)
		return nil, rejected, nil
	}
	for _, ig := range ann.ignored {
		warn(ReasonIgnoredAnnotation, "ignored: %s", ig)
	}
	tlsHosts := parseIngressTLS(ing, ann, reject, warn)

	// route adds a path's route, or says why it is left out.
	route := func(host, name string, path string, exact, fallback bool, item string, backend networkingv1.IngressBackend) {
		t, reason, err := r.resolve(ing.Namespace, backend)
		if err != nil {
			reject(name, reason, "%v", err)
			return
		}
		if t.missing != "" {
			warn(ReasonBackendNotFound, "%s: %s answers 503", t.missing, name)
		}
		l := Location{Path: path, Exact: exact, Service: t.port, Mode: t.mode, Proxy: ann.proxy, Ingress: ref}
		if !exact && path != "/" {
			l.Bare = BareRoute
		}
		cands = append(cands, candidate{host: host, location: l, backends: t.backends, created: ing.CreationTimestamp.Time,
			fallback: fallback, item: item, desc: name, tls: tlsHosts.request(host)})
	}

	hosts := []string{""} // where the default backend routes "/"
	ruleHosts := make(map[string]bool)
	for i, rule := range ing.Spec.Rules {
		host := ""
		if rule.Host != "" {
			h, err := ParseHost(rule.Host)
			if err != nil {
				reject(fmt.Sprintf("rule %d", i+1), ReasonInvalidIngress, "host %s: %v", showValue(rule.Host), err)
				continue
			}
			host = h
			if !ruleHosts[host] {
				ruleHosts[host] = true
				hosts = append(hosts, host)
			}
		}
		if rule.HTTP == nil {
			continue
		}
		for j, p := range rule.HTTP.Paths {
			name := routeName(host, p.Path, pathTypeName(p.PathType))
			path, exact, err := ingressPath(p.Path, p.PathType)
			if err != nil {
				reject(name, ReasonInvalidIngress, "%v", err)
				continue
			}
			route(host, name, path, exact, false, fmt.Sprintf("%05d/%05d", i, j), p.Backend)
		}
	}
	// The tls hosts that no rule's host is, or (a wildcard) covers.
	if len(tlsHosts.list) > 0 {
		covered := make(map[string]bool, 2*len(ruleHosts))
		for host := range ruleHosts {
			covered[host] = true
			if w, ok := wildcardOf(host); ok {
				covered[w] = true
			}
		}
		for _, h := range tlsHosts.list {
			if !covered[h.host] {
				warn(ReasonTLSNotServed, "host %s of tls entry %d: no rule of this Ingress has it, so nothing is served over HTTPS for it", h.host, h.entry)
			}
		}
	}
	if ing.Spec.DefaultBackend != nil {
		for _, host := range hosts {
			name := "default backend"
			if host != "" {
				name += " on " + host
			}
			route(host, name, "/", false, true, "default/"+host, *ing.Spec.DefaultBackend)
		}
	}
	return cands, rejected, warnings
}

// ingressTLSHost is a host of an Ingress's tls section, and what its
// entry asks of the host's HTTPS.
type ingressTLSHost struct {
	host    string // as ParseHost returns it
	entry   int    // the entry's place in the tls section, from 1
	request *tlsRequest
}

// ingressTLSHosts are the hosts of an Ingress's tls section, in order, and
// by host (a wildcard "*.d" under its "*.d" too). Lookups are by map: an
// Ingress may list many hosts.
type ingressTLSHosts struct {
	list   []*ingressTLSHost
	byHost map[string]*ingressTLSHost
}

// request returns what the tls section asks of host's HTTPS: that of the
// entry that lists host itself, else that of the wildcard that covers it
// (one label: "*.d" covers "x.d", as a certificate's wildcard does); nil
// when none does (the default server's "" among them).
func (hs ingressTLSHosts) request(host string) *tlsRequest {
	if host == "" {
		return nil
	}
	if h := hs.byHost[host]; h != nil {
		return h.request
	}
	if w, ok := wildcardOf(host); ok {
		if h := hs.byHost[w]; h != nil {
			return h.request
		}
	}
	return nil
}

// wildcardOf returns the wildcard host that covers host ("*.d" for "x.d",
// one label, as a certificate's wildcard does); false for a wildcard host
// or one of a single label.
func wildcardOf(host string) (string, bool) {
	first, rest, found := strings.Cut(host, ".")
	if !found || first == "*" {
		return "", false
	}
	return "*." + rest, true
}

// MaxIngressTLSSecrets bounds the distinct Secrets that one Ingress's tls
// section may name: each is watched, and fetched when it becomes named, so
// one Ingress must not make thousands of requests. An entry that names one
// more is not served.
const MaxIngressTLSSecrets = 100

// parseIngressTLS validates an Ingress's tls section and returns its hosts.
// Each valid host of an entry asks for HTTPS with the entry's Secret, the
// redirect (on unless ann turns it off) and HSTS of ann. An entry without
// a usable Secret (none named, as there is no default certificate; an
// invalid name; one past MaxIngressTLSSecrets) still asks for its hosts'
// HTTPS, which is then left out with a warning while their plain HTTP
// redirects: a host whose owner asked for HTTPS is never served over plain
// HTTP by mistake. An invalid host is left out of its entry (reject); an
// entry without hosts is not served (warn); a host that two entries list
// takes the first's request (warn).
func parseIngressTLS(ing *networkingv1.Ingress, ann ingressAnnotations,
	reject func(path string, reason Reason, format string, args ...any), warn func(reason Reason, format string, args ...any)) ingressTLSHosts {
	out := ingressTLSHosts{byHost: make(map[string]*ingressTLSHost)}
	secrets := make(map[string]bool)
	for i, t := range ing.Spec.TLS {
		entry := i + 1
		where := fmt.Sprintf("tls entry %d", entry)
		if len(t.Hosts) == 0 {
			warn(ReasonTLSNotServed, "%s lists no hosts: list the hosts that its Secret is for", where)
			continue
		}
		req := &tlsRequest{namespace: ing.Namespace, redirect: ann.redirect == nil || *ann.redirect, hsts: ann.hsts}
		secret, err := ParseSecretName(t.SecretName)
		switch {
		case t.SecretName == "":
			req.problem = where + " names no secretName, and there is no default certificate"
		case err != nil:
			req.problem = fmt.Sprintf("%s: secretName %s: %v", where, showValue(t.SecretName), err)
		case !secrets[secret] && len(secrets) == MaxIngressTLSSecrets:
			req.problem = fmt.Sprintf("%s: Secret %s is one more than the %d distinct Secrets that an Ingress may name", where, secret, MaxIngressTLSSecrets)
		default:
			secrets[secret] = true
			req.secret = secret
		}
		for _, raw := range t.Hosts {
			host, err := ParseHost(raw)
			if err != nil {
				reject(where, ReasonInvalidIngress, "host %s: %v", showValue(raw), err)
				continue
			}
			if first := out.byHost[host]; first != nil {
				if first.entry != entry {
					warn(ReasonTLSNotServed, "host %s of tls entry %d: tls entry %d lists it first, and its Secret is used", host, entry, first.entry)
				}
				continue
			}
			h := &ingressTLSHost{host: host, entry: entry, request: req}
			out.byHost[host] = h
			out.list = append(out.list, h)
		}
	}
	return out
}

// IngressTLSSecrets returns the Secrets that the tls section of ing names
// and that Build reads: the valid names, each once, in the order of the
// entries, at most MaxIngressTLSSecrets.
func IngressTLSSecrets(ing *networkingv1.Ingress) []SecretRef {
	var out []SecretRef
	seen := make(map[string]bool)
	for _, t := range ing.Spec.TLS {
		name, err := ParseSecretName(t.SecretName)
		if err != nil || seen[name] || len(t.Hosts) == 0 {
			continue
		}
		if len(out) == MaxIngressTLSSecrets {
			break
		}
		seen[name] = true
		out = append(out, SecretRef{Namespace: ing.Namespace, Name: name})
	}
	return out
}

// routeName names an Ingress path for messages: host, path and path type,
// the untrusted parts quoted when they are not plain.
func routeName(host, path, pathType string) string {
	h := host
	if h == "" {
		h = "(any host)"
	}
	if _, err := ParsePath(path); err != nil && path != "" {
		path = showValue(path)
	}
	switch pathType {
	case string(networkingv1.PathTypeExact), string(networkingv1.PathTypePrefix), string(networkingv1.PathTypeImplementationSpecific):
	case "":
		pathType = "no pathType"
	default:
		pathType = showValue(pathType)
	}
	return h + path + " (" + pathType + ")"
}

// ingressPath validates an Ingress path and returns the location's path:
// for Prefix and ImplementationSpecific paths the canonical prefix (ending
// in "/"), for Exact paths the path itself.
func ingressPath(path string, pathType *networkingv1.PathType) (string, bool, error) {
	if pathType == nil {
		return "", false, fmt.Errorf("no pathType (Exact, Prefix or ImplementationSpecific)")
	}
	switch *pathType {
	case networkingv1.PathTypeExact:
		canonical, err := ParsePath(path)
		if err != nil {
			return "", false, fmt.Errorf("path %s: %w", showValue(path), err)
		}
		// ParsePath only adds a final "/": the path is as valid without.
		if path != canonical && path+"/" != canonical {
			return "", false, fmt.Errorf("path %s is not canonical", showValue(path))
		}
		return path, true, nil
	case networkingv1.PathTypePrefix, networkingv1.PathTypeImplementationSpecific:
		if path == "" && *pathType == networkingv1.PathTypeImplementationSpecific {
			path = "/" // the API allows it: every path
		}
		canonical, err := ParsePath(path)
		if err != nil {
			return "", false, fmt.Errorf("path %s: %w", showValue(path), err)
		}
		return canonical, false, nil
	}
	return "", false, fmt.Errorf("pathType %s is not Exact, Prefix or ImplementationSpecific", showValue(string(*pathType)))
}

// checkSubdomain checks a DNS-1123 subdomain, as Kubernetes names most
// objects: at most 253 characters, RFC 1123 labels separated by dots.
func checkSubdomain(s string) error {
	if len(s) > maxHostLength {
		return fmt.Errorf("longer than %d characters", maxHostLength)
	}
	for _, label := range strings.Split(s, ".") {
		if err := checkDNSLabel(label); err != nil {
			return err
		}
	}
	return nil
}

// backendResolver finds the Service port of an Ingress backend and its
// ready endpoints.
type backendResolver struct {
	// services are all Services read, selected or not: an Ingress may
	// name any Service of its namespace.
	services    map[ServiceRef]*corev1.Service
	slices      map[ServiceRef][]*discoveryv1.EndpointSlice
	defaultMode UpstreamMode
}

// target is where a backend sends its requests.
type target struct {
	port     ServicePort
	mode     UpstreamMode
	backends []netip.AddrPort
	// missing names what does not exist, the Service or its port; the
	// route then answers 503 ("" when both exist).
	missing string
}

// resolve validates backend b of an Ingress in namespace ns and finds its
// Service port; an error says why the path cannot be routed, with its
// reason.
func (r *backendResolver) resolve(ns string, b networkingv1.IngressBackend) (target, Reason, error) {
	switch {
	case b.Resource != nil:
		return target{}, ReasonUnsupported, fmt.Errorf("a resource backend (%s) is not supported: only Services are", showValue(b.Resource.Kind))
	case b.Service == nil:
		return target{}, ReasonInvalidIngress, fmt.Errorf("the backend names no Service")
	}
	name := b.Service.Name
	if err := checkDNSLabel(name); err != nil || name[0] < 'a' || name[0] > 'z' {
		return target{}, ReasonInvalidIngress, fmt.Errorf("backend Service name %s is not a DNS-1035 label", showValue(name))
	}
	want := b.Service.Port
	switch {
	case want.Name != "" && want.Number != 0:
		return target{}, ReasonInvalidIngress, fmt.Errorf("backend port names both a name and a number")
	case want.Name != "":
		if err := checkPortName(want.Name); err != nil {
			return target{}, ReasonInvalidIngress, fmt.Errorf("backend %v", err)
		}
	case want.Number < 1 || want.Number > 65535:
		return target{}, ReasonInvalidIngress, fmt.Errorf("backend port number %d is out of range 1-65535", want.Number)
	}
	wanted := want.Name
	if wanted == "" {
		wanted = strconv.Itoa(int(want.Number))
	}
	ref := ServiceRef{Namespace: ns, Name: name}
	t := target{port: ServicePort{Namespace: ns, Name: name, Port: wanted}, mode: r.defaultMode}
	svc := r.services[ref]
	if svc == nil {
		t.missing = "Service " + ref.String() + " not found"
		return t, "", nil
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return target{}, ReasonUnsupported, fmt.Errorf("backend Service %s is of type ExternalName, which is not routed", ref)
	}
	if v, ok := svc.Annotations[AnnotationUpstream]; ok {
		mode, err := ParseUpstreamMode(v)
		if err != nil {
			return target{}, ReasonInvalidAnnotation, fmt.Errorf("backend Service %s: %w", ref, &AnnotationError{Key: AnnotationUpstream, Value: v, Err: err})
		}
		t.mode = mode
	}
	var port *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if (want.Name != "" && p.Name == want.Name) || (want.Number != 0 && p.Port == want.Number) {
			port = &svc.Spec.Ports[i]
			break
		}
	}
	if port == nil {
		t.missing = "Service " + ref.String() + " has no port " + wanted
		return t, "", nil
	}
	switch {
	case port.Port < 1 || port.Port > 65535:
		return target{}, ReasonUnsupported, fmt.Errorf("backend Service %s: port %d is out of range", ref, port.Port)
	case !isTCP(port.Protocol):
		return target{}, ReasonUnsupported, fmt.Errorf("backend Service %s: port %s is %s; only TCP ports are routed", ref, wanted, port.Protocol)
	}
	if port.Name != "" {
		if err := checkPortName(port.Name); err != nil {
			return target{}, ReasonUnsupported, fmt.Errorf("backend Service %s: %w", ref, err)
		}
	}
	t.port.Port = portKey(*port)
	switch t.mode {
	case UpstreamService:
		ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		if err != nil || !usableAddr(ip) {
			return target{}, ReasonUnsupported, fmt.Errorf("backend Service %s: upstream %q needs a ClusterIP, and it has %s", ref, UpstreamService, showValue(svc.Spec.ClusterIP))
		}
		t.backends = []netip.AddrPort{netip.AddrPortFrom(ip, uint16(port.Port))}
	default:
		t.backends = readyBackends(r.slices[ref], port.Name)
	}
	return t, "", nil
}

// CheckObjectName checks the name of a Kubernetes object that is a DNS-1123
// subdomain, such as an IngressClass or a Lease.
func CheckObjectName(s string) error {
	if s == "" {
		return fmt.Errorf("empty name")
	}
	if err := checkSubdomain(s); err != nil {
		return fmt.Errorf("not a DNS subdomain: %w", err)
	}
	return nil
}
