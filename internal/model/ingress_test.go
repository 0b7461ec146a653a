package model

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

// ourClass is the IngressClass of these tests.
var ourClass = &networkingv1.IngressClass{
	ObjectMeta: metav1.ObjectMeta{Name: "kns"},
	Spec:       networkingv1.IngressClassSpec{Controller: ControllerName},
}

type ingOpt func(*networkingv1.Ingress)

func ingress(ns, name string, opts ...ingOpt) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("kns")},
	}
	for _, o := range opts {
		o(ing)
	}
	return ing
}

func backend(svc string, port any) networkingv1.IngressBackend {
	b := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc}}
	switch p := port.(type) {
	case int:
		b.Service.Port.Number = int32(p)
	case string:
		b.Service.Port.Name = p
	}
	return b
}

func ingPath(pathType networkingv1.PathType, path string, b networkingv1.IngressBackend) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(pathType), Backend: b}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) ingOpt {
	return func(ing *networkingv1.Ingress) {
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}})
	}
}

func defaultBackend(b networkingv1.IngressBackend) ingOpt {
	return func(ing *networkingv1.Ingress) { ing.Spec.DefaultBackend = &b }
}

func ingAnn(kv ...string) ingOpt {
	return func(ing *networkingv1.Ingress) {
		if ing.Annotations == nil {
			ing.Annotations = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			ing.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func ingCreated(d time.Duration) ingOpt {
	return func(ing *networkingv1.Ingress) { ing.CreationTimestamp = metav1.NewTime(ing.CreationTimestamp.Add(d)) }
}

func className(c *string) ingOpt {
	return func(ing *networkingv1.Ingress) { ing.Spec.IngressClassName = c }
}

const (
	prefix   = networkingv1.PathTypePrefix
	exact    = networkingv1.PathTypeExact
	implSpec = networkingv1.PathTypeImplementationSpecific
)

// iloc is the location of an Ingress's route to ns/svc:port.
func iloc(path string, exact bool, ing, svc, port, upstream string) Location {
	l := Location{Path: path, Exact: exact, Service: ServicePort{"ns", svc, port}, Mode: UpstreamEndpoints, Upstream: upstream,
		Ingress: IngressRef{"ns", ing}}
	if !exact && path != "/" {
		l.Bare = BareRoute
	}
	return l
}

// unlabelled is a Service that the selector does not pick: an Ingress may
// still send to it.
func unlabelled(name string, opts ...svcOpt) *corev1.Service {
	return svc("ns", name, append([]svcOpt{withLabels(nil)}, opts...)...)
}

func TestBuildIngress(t *testing.T) {
	t.Parallel()
	webSlice := slice("ns", "web", discoveryv1.AddressTypeIPv4, "http", 8080, ep{addr: "10.0.0.1"})
	tests := []struct {
		name      string
		services  []*corev1.Service
		slices    []*discoveryv1.EndpointSlice
		ingresses []*networkingv1.Ingress
		classes   []*networkingv1.IngressClass
		want      Config
		rejected  []string // Rejection.String() and IngressRejection.String() of each
		warnings  []string
		selected  []string
		problem   string
	}{
		{
			name:     "two hosts, Prefix and Exact paths, a default backend; port by number or name",
			services: []*corev1.Service{unlabelled("web"), unlabelled("api", ports(corev1.ServicePort{Port: 8000}))},
			slices:   []*discoveryv1.EndpointSlice{webSlice},
			ingresses: []*networkingv1.Ingress{ingress("ns", "shop",
				rule("a.example.com", ingPath(prefix, "/", backend("web", 80)), ingPath(exact, "/login", backend("api", 8000))),
				rule("b.example.com", ingPath(prefix, "/aaa/bbb/", backend("web", "http")), ingPath(implSpec, "", backend("api", 8000))),
				defaultBackend(backend("web", "http")),
			)},
			want: Config{
				Servers: []Server{
					defaultServer(iloc("/", false, "shop", "web", "http", "ns_web_http")),
					{Host: "a.example.com", Locations: []Location{
						iloc("/", false, "shop", "web", "http", "ns_web_http"),
						iloc("/login", true, "shop", "api", "8000", ""),
					}},
					{Host: "b.example.com", Locations: []Location{
						iloc("/", false, "shop", "api", "8000", ""),
						iloc("/aaa/bbb/", false, "shop", "web", "http", "ns_web_http"),
					}},
				},
				Upstreams: []Upstream{{Name: "ns_web_http", Backends: aps("10.0.0.1:8080")}},
			},
			selected: []string{"ns/shop"},
		},
		{
			name:     "Prefix and Exact of one path: the exact location takes the bare path",
			services: []*corev1.Service{unlabelled("web"), unlabelled("api")},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i",
				rule("", ingPath(prefix, "/foo", backend("web", 80)), ingPath(exact, "/foo", backend("api", 80)), ingPath(exact, "/foo/", backend("api", 80))),
			)},
			want: Config{Servers: []Server{defaultServer(
				iloc("/foo", true, "i", "api", "http", ""),
				func() Location { l := iloc("/foo/", false, "i", "web", "http", ""); l.Bare = BareExact; return l }(),
				iloc("/foo/", true, "i", "api", "http", ""),
			)}},
			selected: []string{"ns/i"},
		},
		{
			name:     "missing Service or port: the route answers 503, with a warning",
			services: []*corev1.Service{unlabelled("web")},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i",
				rule("", ingPath(prefix, "/a", backend("gone", 80)), ingPath(prefix, "/b", backend("web", "admin"))),
			)},
			want: Config{Servers: []Server{defaultServer(
				iloc("/a/", false, "i", "gone", "80", ""),
				iloc("/b/", false, "i", "web", "admin", ""),
			)}},
			warnings: []string{
				"ingress ns/i: BackendNotFound: Service ns/gone not found: (any host)/a (Prefix) answers 503",
				"ingress ns/i: BackendNotFound: Service ns/web has no port admin: (any host)/b (Prefix) answers 503",
			},
			selected: []string{"ns/i"},
		},
		{
			name:     "class: by name, by the legacy annotation, by default; another class and none are ignored",
			services: []*corev1.Service{unlabelled("web")},
			classes: []*networkingv1.IngressClass{ourClass, {
				ObjectMeta: metav1.ObjectMeta{Name: "other", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
				Spec:       networkingv1.IngressClassSpec{Controller: "k8s.io/ingress-nginx"},
			}},
			ingresses: []*networkingv1.Ingress{
				ingress("ns", "named", rule("a.example.com", ingPath(prefix, "/", backend("web", 80)))),
				ingress("ns", "legacy", className(nil), ingAnn(AnnotationLegacyIngressClass, "kns"), rule("b.example.com", ingPath(prefix, "/", backend("web", 80)))),
				ingress("ns", "other", className(ptr.To("other")), rule("c.example.com", ingPath(prefix, "/", backend("web", 80)))),
				ingress("ns", "none", className(nil), rule("d.example.com", ingPath(prefix, "/", backend("web", 80)))),
				ingress("elsewhere", "named", rule("e.example.com", ingPath(prefix, "/", backend("web", 80)))),
			},
			want: Config{Servers: []Server{
				defaultServer(),
				{Host: "a.example.com", Locations: []Location{iloc("/", false, "named", "web", "http", "")}},
				{Host: "b.example.com", Locations: []Location{iloc("/", false, "legacy", "web", "http", "")}},
			}},
			selected: []string{"ns/legacy", "ns/named"},
		},
		{
			name:     "class: ours is the default",
			services: []*corev1.Service{unlabelled("web")},
			classes: []*networkingv1.IngressClass{{
				ObjectMeta: metav1.ObjectMeta{Name: "kns", Annotations: map[string]string{networkingv1.AnnotationIsDefaultIngressClass: "true"}},
				Spec:       networkingv1.IngressClassSpec{Controller: ControllerName},
			}},
			ingresses: []*networkingv1.Ingress{ingress("ns", "none", className(nil), rule("d.example.com", ingPath(prefix, "/", backend("web", 80))))},
			want: Config{Servers: []Server{
				defaultServer(),
				{Host: "d.example.com", Locations: []Location{iloc("/", false, "none", "web", "http", "")}},
			}},
			selected: []string{"ns/none"},
		},
		{
			name:      "class: another controller's IngressClass of our name routes nothing",
			classes:   []*networkingv1.IngressClass{{ObjectMeta: metav1.ObjectMeta{Name: "kns"}, Spec: networkingv1.IngressClassSpec{Controller: "example.com/other"}}},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i", rule("", ingPath(prefix, "/", backend("web", 80))))},
			want:      Config{Servers: []Server{defaultServer()}},
			problem:   `IngressClass kns belongs to controller "example.com/other", not kube-nginx-sync.io/ingress-controller`,
		},
		{
			name:      "class: no IngressClass routes nothing",
			classes:   []*networkingv1.IngressClass{},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i", rule("", ingPath(prefix, "/", backend("web", 80))))},
			want:      Config{Servers: []Server{defaultServer()}},
			problem:   "IngressClass kns not found: create it with spec.controller kube-nginx-sync.io/ingress-controller",
		},
		{
			name: "one conflict rule with Services: the oldest wins, either way; routes of one Service port share its upstream",
			services: []*corev1.Service{
				svc("ns", "web", ann(AnnotationPath, "/shared"), created(time.Hour)),
				svc("ns", "old", ann(AnnotationPath, "/taken")),
			},
			slices: []*discoveryv1.EndpointSlice{webSlice},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i", ingCreated(time.Minute),
				rule("", ingPath(prefix, "/shared", backend("web", 80)), ingPath(prefix, "/taken/", backend("web", 80)), ingPath(prefix, "/x", backend("web", 80))),
			)},
			want: Config{
				Servers: []Server{defaultServer(
					iloc("/shared/", false, "i", "web", "http", "ns_web_http"),
					loc("/taken/", "ns", "old", "http", ""),
					iloc("/x/", false, "i", "web", "http", "ns_web_http"),
				)},
				Upstreams: []Upstream{{Name: "ns_web_http", Backends: aps("10.0.0.1:8080")}},
			},
			rejected: []string{
				`ns/web port http: RouteConflict: path /shared/ on the default server is already routed to ns/web:http by Ingress ns/i, which is older or sorts first`,
				`ingress ns/i (any host)/taken/ (Prefix): RouteConflict: path /taken/ on the default server is already routed to ns/old:http, which is older or sorts first`,
			},
			selected: []string{"ns/i"},
		},
		{
			name:     "a default backend yields to a route of / on its host, and conflicts with another default backend",
			services: []*corev1.Service{unlabelled("web"), unlabelled("api")},
			ingresses: []*networkingv1.Ingress{
				ingress("ns", "a", rule("h.example.com", ingPath(prefix, "/", backend("api", 80))), defaultBackend(backend("web", 80)), ingCreated(time.Hour)),
				ingress("ns", "b", defaultBackend(backend("api", 80))),
			},
			want: Config{Servers: []Server{
				defaultServer(iloc("/", false, "b", "api", "http", "")),
				{Host: "h.example.com", Locations: []Location{iloc("/", false, "a", "api", "http", "")}},
			}},
			rejected: []string{
				`ingress ns/a default backend: RouteConflict: path / on the default server is already routed to ns/api:http by Ingress ns/b, which is older or sorts first`,
			},
			selected: []string{"ns/a", "ns/b"},
		},
		{
			name: "upstream annotation of the backend Service: its ClusterIP; ExternalName and resource backends refused",
			services: []*corev1.Service{
				unlabelled("cip", ann(AnnotationUpstream, "service")),
				unlabelled("bad", ann(AnnotationUpstream, "pods")),
				unlabelled("ext", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeExternalName }),
			},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i", rule("",
				ingPath(prefix, "/cip", backend("cip", 80)),
				ingPath(prefix, "/bad", backend("bad", 80)),
				ingPath(prefix, "/ext", backend("ext", 80)),
				ingPath(prefix, "/res", networkingv1.IngressBackend{Resource: &corev1.TypedLocalObjectReference{Kind: "Bucket", Name: "b"}}),
			))},
			want: Config{
				Servers: []Server{defaultServer(func() Location {
					l := iloc("/cip/", false, "i", "cip", "http", "ns_cip_http")
					l.Mode = UpstreamService
					return l
				}())},
				Upstreams: []Upstream{{Name: "ns_cip_http", Backends: aps("10.96.0.10:80")}},
			},
			rejected: []string{
				`ingress ns/i (any host)/bad (Prefix): InvalidAnnotation: backend Service ns/bad: annotation kube-nginx-sync.io/upstream="pods": must be "endpoints" or "service"`,
				`ingress ns/i (any host)/ext (Prefix): Unsupported: backend Service ns/ext is of type ExternalName, which is not routed`,
				`ingress ns/i (any host)/res (Prefix): Unsupported: a resource backend ("Bucket") is not supported: only Services are`,
			},
			selected: []string{"ns/i"},
		},
		{
			name:     "hostile hosts, paths and backends leave that path out; the others are routed",
			services: []*corev1.Service{unlabelled("web")},
			ingresses: []*networkingv1.Ingress{ingress("ns", "i",
				rule("a.example.com;\n}", ingPath(prefix, "/", backend("web", 80))),
				rule("", ingPath(prefix, "/ok", backend("web", 80)),
					ingPath(prefix, "/a;\nreturn 200", backend("web", 80)),
					ingPath(exact, "/(.*)$", backend("web", 80)),
					ingPath(prefix, "/.kube-nginx-sync/version", backend("web", 80)),
					ingPath(prefix, "/b", backend("web\n", 80)),
					ingPath(prefix, "/c", backend("web", "http;")),
					ingPath(prefix, "/d", backend("web", 70000)),
					ingPath("Regex", "/e", backend("web", 80)),
					networkingv1.HTTPIngressPath{Path: "/f", Backend: backend("web", 80)},
				),
			)},
			want:     Config{Servers: []Server{defaultServer(iloc("/ok/", false, "i", "web", "http", ""))}},
			selected: []string{"ns/i"},
			rejected: []string{
				`ingress ns/i (any host)"/(.*)$" (Exact): InvalidIngress: path "/(.*)$": character '(' at 1 is not allowed (letters, digits and -._~/ are)`,
				`ingress ns/i (any host)"/.kube-nginx-sync/version" (Prefix): InvalidIngress: path "/.kube-nginx-sync/version": /.kube-nginx-sync/ is reserved`,
				`ingress ns/i (any host)"/a;\nreturn 200" (Prefix): InvalidIngress: path "/a;\nreturn 200": character ';' at 2 is not allowed (letters, digits and -._~/ are)`,
				`ingress ns/i (any host)/b (Prefix): InvalidIngress: backend Service name "web\n" is not a DNS-1035 label`,
				`ingress ns/i (any host)/c (Prefix): InvalidIngress: backend port name "http;" has character ';' at 4`,
				`ingress ns/i (any host)/d (Prefix): InvalidIngress: backend port number 70000 is out of range 1-65535`,
				`ingress ns/i (any host)/e ("Regex"): InvalidIngress: pathType "Regex" is not Exact, Prefix or ImplementationSpecific`,
				`ingress ns/i (any host)/f (no pathType): InvalidIngress: no pathType (Exact, Prefix or ImplementationSpecific)`,
				`ingress ns/i rule 1: InvalidIngress: host "a.example.com;\n}": not a valid host name: label "com;\n}" has character ';' at 3`,
			},
		},
		{
			name:     "annotations: ours and ingress-nginx's mapped ones set the proxy settings; others ignored with a warning",
			services: []*corev1.Service{unlabelled("web")},
			ingresses: []*networkingv1.Ingress{
				ingress("ns", "mapped", ingAnn(IngressNginxProxyBodySize, "8M", IngressNginxProxyReadTimeout, "3600", IngressNginxProxySendTimeout, "90s",
					IngressNginxPrefix+"configuration-snippet", "more_set_headers x;", IngressNginxPrefix+"rewrite-target", "/",
					IngressNginxSSLRedirect, "false", "other.example.com/x", "y"),
					rule("m.example.com", ingPath(prefix, "/", backend("web", 80)))),
				ingress("ns", "ours", ingAnn(AnnotationMaxBodySize, "0", IngressNginxProxyBodySize, "1m"),
					rule("o.example.com", ingPath(prefix, "/", backend("web", 80)))),
				ingress("ns", "bad", ingAnn(IngressNginxProxyBodySize, "8m;"), rule("b.example.com", ingPath(prefix, "/", backend("web", 80)))),
				ingress("ns", "badown", ingAnn(AnnotationHost, "x.example.com"), rule("c.example.com", ingPath(prefix, "/", backend("web", 80)))),
			},
			want: Config{Servers: []Server{
				defaultServer(),
				{Host: "m.example.com", Locations: []Location{func() Location {
					l := iloc("/", false, "mapped", "web", "http", "")
					l.Proxy = ProxySettings{MaxBodySize: 8 << 20, ReadTimeout: time.Hour, SendTimeout: 90 * time.Second}
					return l
				}()}},
				{Host: "o.example.com", Locations: []Location{func() Location {
					l := iloc("/", false, "ours", "web", "http", "")
					l.Proxy = ProxySettings{MaxBodySize: NoBodyLimit}
					return l
				}()}},
			}},
			rejected: []string{
				`ingress ns/bad: InvalidAnnotation: annotation nginx.ingress.kubernetes.io/proxy-body-size="8m;": character 'm' at 1 is not a digit (a number of bytes, optionally followed by k, m or g; 0 for no limit)`,
				`ingress ns/badown: InvalidAnnotation: annotation kube-nginx-sync.io/host="x.example.com": not read on an Ingress (on an Ingress: kube-nginx-sync.io/hsts, kube-nginx-sync.io/https-redirect, kube-nginx-sync.io/max-body-size, kube-nginx-sync.io/read-timeout, kube-nginx-sync.io/send-timeout)`,
			},
			warnings: []string{
				`ingress ns/mapped: IgnoredAnnotation: ignored: nginx.ingress.kubernetes.io/configuration-snippet (snippets are never applied)`,
				`ingress ns/mapped: IgnoredAnnotation: ignored: nginx.ingress.kubernetes.io/rewrite-target (no equivalent in kube-nginx-sync)`,
				`ingress ns/ours: IgnoredAnnotation: ignored: nginx.ingress.kubernetes.io/proxy-body-size (kube-nginx-sync.io/max-body-size is set)`,
			},
			selected: []string{"ns/bad", "ns/badown", "ns/mapped", "ns/ours"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			classes := tt.classes
			if classes == nil {
				classes = []*networkingv1.IngressClass{ourClass}
			}
			opts := Options{Selector: labels.SelectorFromSet(exposed), Namespaces: []string{"ns"},
				Ingress: IngressOptions{Class: "kns", Ingresses: tt.ingresses, Classes: classes}}
			res := Build(tt.services, tt.slices, opts)
			if diff := cmp.Diff(tt.want, res.Config, equateAddrPorts); diff != "" {
				t.Errorf("Config (-want +got):\n%s", diff)
			}
			checkIngressResult(t, res, tt.rejected, tt.warnings)
			var selected []string
			for _, s := range res.Ingress.Selected {
				selected = append(selected, s.String())
			}
			if diff := cmp.Diff(tt.selected, selected); diff != "" {
				t.Errorf("selected (-want +got):\n%s", diff)
			}
			if res.Ingress.ClassProblem != tt.problem {
				t.Errorf("class problem %q, want %q", res.Ingress.ClassProblem, tt.problem)
			}
		})
	}
}

// checkIngressResult compares the rejections of Services and Ingresses,
// and the Ingresses' warnings, with what the test wants.
func checkIngressResult(t *testing.T, res Result, wantRejected, wantWarnings []string) {
	t.Helper()
	var rejected, warnings []string
	for _, r := range res.Rejected {
		rejected = append(rejected, r.String())
	}
	for _, r := range res.Ingress.Rejected {
		rejected = append(rejected, r.String())
	}
	for _, w := range res.Ingress.Warnings {
		warnings = append(warnings, w.String())
	}
	if diff := cmp.Diff(wantRejected, rejected); diff != "" {
		t.Errorf("rejected (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantWarnings, warnings); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
}

// TestBuildIngressIsOrderIndependentAndPure: Ingresses in any order give
// the same result, and are not changed.
func TestBuildIngressIsOrderIndependentAndPure(t *testing.T) {
	t.Parallel()
	services := []*corev1.Service{unlabelled("web"), svc("ns", "api", ann(AnnotationPath, "/p"))}
	ingresses := []*networkingv1.Ingress{
		ingress("ns", "a", rule("h.example.com", ingPath(prefix, "/", backend("web", 80))), defaultBackend(backend("web", 80))),
		ingress("ns", "b", rule("", ingPath(prefix, "/p", backend("web", 80)), ingPath(exact, "/p", backend("api", 80)))),
		ingress("ns", "c", defaultBackend(backend("api", 80)), ingAnn(IngressNginxPrefix+"x", "y", IngressNginxPrefix+"z", "w")),
	}
	copies := make([]*networkingv1.Ingress, len(ingresses))
	for i, ing := range ingresses {
		copies[i] = ing.DeepCopy()
	}
	opts := func(ings []*networkingv1.Ingress) Options {
		return Options{Selector: labels.SelectorFromSet(exposed),
			Ingress: IngressOptions{Class: "kns", Ingresses: ings, Classes: []*networkingv1.IngressClass{ourClass}}}
	}
	want := Build(services, nil, opts(ingresses))
	for i := range 6 {
		ings := append([]*networkingv1.Ingress(nil), ingresses...)
		rotate(ings, i)
		if i%2 == 1 {
			ings[0], ings[len(ings)-1] = ings[len(ings)-1], ings[0]
		}
		if diff := cmp.Diff(want, Build(services, nil, opts(ings)), equateAddrPorts); diff != "" {
			t.Fatalf("order %d changes the result:\n%s", i, diff)
		}
	}
	if diff := cmp.Diff(copies, ingresses); diff != "" {
		t.Errorf("Ingresses changed:\n%s", diff)
	}
}

func TestIngressMessagesShortenHugeValues(t *testing.T) {
	t.Parallel()
	huge := "/" + strings.Repeat("a", 100000) + ";"
	res := Build([]*corev1.Service{unlabelled("web")}, nil, Options{Ingress: IngressOptions{Class: "kns",
		Classes:   []*networkingv1.IngressClass{ourClass},
		Ingresses: []*networkingv1.Ingress{ingress("ns", "i", rule(huge, ingPath(prefix, huge, backend("web", 80))), ingAnn(IngressNginxPrefix+"x", huge))}}})
	for _, r := range res.Ingress.Rejected {
		if len(r.Path)+len(r.Message) > 400 {
			t.Errorf("rejection is %d bytes long, want it shortened", len(r.Path)+len(r.Message))
		}
	}
	if len(res.Ingress.Rejected) != 1 {
		t.Errorf("rejected %v, want 1 (the rule's host)", res.Ingress.Rejected)
	}
}
