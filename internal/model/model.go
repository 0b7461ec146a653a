package model

import (
	"fmt"
	"net/netip"
	"time"
)

// UpstreamMode says where a route sends its traffic.
type UpstreamMode string

const (
	// UpstreamEndpoints sends traffic to the ready endpoints listed in the
	// Service's EndpointSlices: nginx balances over the Pods itself.
	UpstreamEndpoints UpstreamMode = "endpoints"
	// UpstreamService sends traffic to the Service's ClusterIP, so Pod churn
	// needs no nginx reload; kube-proxy balances.
	UpstreamService UpstreamMode = "service"
)

// Config is the whole routing state that nginx serves.
type Config struct {
	// Servers holds one entry per virtual host; the default server (Host
	// "") is always present and first, the others follow sorted by Host.
	Servers []Server
	// Upstreams holds the backend groups that locations refer to, sorted
	// by Name. A location with no ready backend has no upstream.
	Upstreams []Upstream
}

// Routes counts the locations of all servers.
func (c Config) Routes() int {
	n := 0
	for _, s := range c.Servers {
		n += len(s.Locations)
	}
	return n
}

// Server is one virtual host.
type Server struct {
	// Host is the server_name: a validated lower-case host name, possibly
	// starting with "*.", or "" for the default server.
	Host string
	// Locations are sorted by Path.
	Locations []Location
	// TLS, when set, serves the host on the HTTPS port too (by SNI), with
	// this certificate. A host that asked for HTTPS and whose certificate
	// cannot be used has none: its HTTPS is left out.
	TLS *TLS
	// RedirectHTTPS answers the host's plain HTTP requests with a 308 to
	// HTTPS instead of routing them. It stays set when TLS is nil because
	// the certificate cannot be used, so that a host that asked for HTTPS
	// is never served over plain HTTP by accident.
	RedirectHTTPS bool
}

// Location routes one URL path prefix of a server, or one exact path, to
// one Service port.
type Location struct {
	// Path is a validated prefix that starts and ends with "/"; or, when
	// Exact, a validated path that starts with "/" and may end without
	// one.
	Path string
	// Exact makes the location match the one request path Path and
	// nothing under it (an Ingress's Exact path).
	Exact bool
	// Bare says what a prefix location (other than "/") does with a
	// request for Path without its final "/".
	Bare BarePath
	// Ingress is the Ingress this route comes from, or zero for a route of
	// a Service.
	Ingress IngressRef
	// StripPrefix replaces Path by "/" before the request reaches the
	// backend.
	StripPrefix bool
	// Service is the Service port this location belongs to.
	Service ServicePort
	// Mode is where the traffic goes.
	Mode UpstreamMode
	// Upstream names the entry of Config.Upstreams that serves this
	// location, or is "" when the Service port has no ready backend: the
	// location then answers 503.
	Upstream string
	// Proxy holds the route's own proxy settings, from its Service's
	// annotations.
	Proxy ProxySettings
}

// BarePath says what a prefix location does with a request for its path
// without the final "/" (/api for /api/).
type BarePath uint8

const (
	// BareRedirect answers 301 to the path with its "/", as nginx does for
	// proxy_pass: the routes of Services.
	BareRedirect BarePath = iota
	// BareRoute routes it like the location's other paths: an Ingress's
	// Prefix path /api matches /api as well as /api/ and what is under it.
	BareRoute
	// BareExact leaves it to the server's exact location of that path,
	// which takes precedence (the Ingress API prefers Exact).
	BareExact
)

// ProxySettings are a route's settings for proxying its requests. A zero
// field leaves nginx's default (or what nginx's http block sets) in place.
type ProxySettings struct {
	// ReadTimeout and SendTimeout are whole seconds, from 1s to 24h.
	ReadTimeout, SendTimeout time.Duration
	// MaxBodySize is the largest request body in bytes, or NoBodyLimit.
	MaxBodySize int64
}

// IsZero reports whether the settings are all defaults.
func (p ProxySettings) IsZero() bool { return p == ProxySettings{} }

// ServicePort names one port of one Service. All fields are validated
// Kubernetes names (or a port number), so they contain only [a-z0-9-].
type ServicePort struct {
	Namespace string
	Name      string
	// Port is the port's name, or its number when the port has no name.
	Port string
}

func (p ServicePort) String() string {
	return p.Namespace + "/" + p.Name + ":" + p.Port
}

// UpstreamName is the name of the upstream that serves this Service port:
// the three parts joined by "_", which none of them may contain, so two
// Service ports never share a name.
func (p ServicePort) UpstreamName() string {
	return p.Namespace + "_" + p.Name + "_" + p.Port
}

// Upstream is a group of backends that nginx balances over.
type Upstream struct {
	Name string
	// Backends are sorted and free of duplicates; never empty.
	Backends []netip.AddrPort
}

// ServiceRef names a Service.
type ServiceRef struct {
	Namespace string
	Name      string
}

func (r ServiceRef) String() string { return r.Namespace + "/" + r.Name }

// Reason classifies why a Service, or one of its routes, was left out.
type Reason string

const (
	// ReasonInvalidAnnotation: an annotation's value does not match its
	// grammar, or the annotation is unknown.
	ReasonInvalidAnnotation Reason = "InvalidAnnotation"
	// ReasonInvalidService: a field of the Service itself cannot be used
	// (only possible for input that did not come through the API server).
	ReasonInvalidService Reason = "InvalidService"
	// ReasonUnsupported: the Service's type or ports cannot be routed.
	ReasonUnsupported Reason = "Unsupported"
	// ReasonRouteConflict: another Service port claimed the same host and
	// path first.
	ReasonRouteConflict Reason = "RouteConflict"
	// ReasonRefusedByNginx: with this Service, the rendered config fails
	// nginx -t (possible with a user's template); without it, it passes.
	ReasonRefusedByNginx Reason = "RefusedByNginx"
	// ReasonTLSConflict: another Service or Ingress on the same host asked
	// first for other HTTPS settings (another Secret, redirect or HSTS).
	ReasonTLSConflict Reason = "TLSConflict"
)

// Reasons of a Warning: the host's HTTPS is left out (the first four), or
// is served with a certificate that needs attention (the last two).
const (
	// ReasonTLSSecretNotFound: the namespace of the Service or Ingress has
	// no kubernetes.io/tls Secret of that name.
	ReasonTLSSecretNotFound Reason = "TLSSecretNotFound"
	// ReasonInvalidTLSSecret: the Secret's certificate or key cannot be
	// used (see checkCertificate).
	ReasonInvalidTLSSecret Reason = "InvalidTLSSecret"
	// ReasonCertificateExpired: the certificate, or one of its chain, has
	// expired.
	ReasonCertificateExpired Reason = "CertificateExpired"
	// ReasonHTTPSDisabled: this kube-nginx-sync serves no HTTPS
	// (Options.DisableHTTPS): the host is served over plain HTTP only.
	ReasonHTTPSDisabled Reason = "HTTPSDisabled"
	// ReasonCertificateExpiresSoon: the certificate expires within
	// CertificateExpiryWarning; it is served.
	ReasonCertificateExpiresSoon Reason = "CertificateExpiresSoon"
	// ReasonCertificateNotYetValid: the certificate's validity has not
	// begun; it is served (a clock skew, or a certificate issued ahead).
	ReasonCertificateNotYetValid Reason = "CertificateNotYetValid"
)

// Rejection says why a Service, or one of its ports, is not routed.
type Rejection struct {
	Service ServiceRef
	// Port is the Service port concerned, or "" when the whole Service is
	// left out.
	Port   string
	Reason Reason
	// Message is a sentence for people; it quotes offending values with
	// strconv.Quote and shortened, so it is safe to log.
	Message string
}

func (r Rejection) String() string {
	if r.Port != "" {
		return fmt.Sprintf("%s port %s: %s: %s", r.Service, r.Port, r.Reason, r.Message)
	}
	return fmt.Sprintf("%s: %s: %s", r.Service, r.Reason, r.Message)
}

// Warning is a problem of a routed Service short of a Rejection: its
// host's HTTPS is left out, or is served with a certificate that needs
// attention.
type Warning struct {
	Service ServiceRef
	Reason  Reason
	// Message is a sentence for people, safe to log (see Rejection).
	Message string
}

func (w Warning) String() string {
	return fmt.Sprintf("%s: %s: %s", w.Service, w.Reason, w.Message)
}

// Result is what Build returns.
type Result struct {
	Config Config
	// Rejected lists what was left out, sorted by Service, then Port.
	Rejected []Rejection
	// Warnings lists the problems of routed Services, sorted by Service,
	// then Reason.
	Warnings []Warning
	// Certificates holds the HTTPS state of every host that asked for it,
	// sorted by host.
	Certificates []HostCertificate
	// Recheck, when not zero, is the first time after Options.Now at which
	// a certificate's state changes (it becomes valid, or nearly expired,
	// or expired): the same input builds another Config then.
	Recheck time.Time
	// Services counts the Services that matched the selection, routed or
	// not.
	Services int
	// Ingress is what became of the Ingresses (ingress.go); zero when
	// Options.Ingress has no Class.
	Ingress IngressResult
}
