package model

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

var exposed = map[string]string{"expose": "yes"}

type svcOpt func(*corev1.Service)

func svc(ns, name string, opts ...svcOpt) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: exposed,
			CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))},
		Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.10", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

func ann(kv ...string) svcOpt {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for i := 0; i < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func ports(p ...corev1.ServicePort) svcOpt {
	return func(s *corev1.Service) { s.Spec.Ports = p }
}

func created(d time.Duration) svcOpt {
	return func(s *corev1.Service) { s.CreationTimestamp = metav1.NewTime(s.CreationTimestamp.Add(d)) }
}

func withLabels(l map[string]string) svcOpt {
	return func(s *corev1.Service) { s.Labels = l }
}

type ep struct {
	addr        string
	ready       *bool
	terminating bool
}

func slice(ns, svcName string, family discoveryv1.AddressType, portName string, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: svcName + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port)}},
	}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{e.addr},
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Terminating: ptr.To(e.terminating)},
		})
	}
	return s
}

func aps(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

var equateAddrPorts = cmpopts.EquateComparable(netip.AddrPort{})

func defaultServer(locs ...Location) Server { return Server{Host: "", Locations: locs} }

func loc(path, ns, name, port, upstream string) Location {
	return Location{Path: path, StripPrefix: true, Service: ServicePort{ns, name, port}, Mode: UpstreamEndpoints, Upstream: upstream}
}

func TestBuild(t *testing.T) {
	t.Parallel()
	selector := labels.SelectorFromSet(exposed)
	tests := []struct {
		name     string
		services []*corev1.Service
		slices   []*discoveryv1.EndpointSlice
		opts     Options
		want     Config
		rejected []string // Rejection.String() of each
	}{
		{
			name: "nothing selected still has the default server",
			want: Config{Servers: []Server{defaultServer()}},
		},
		{
			name:     "one port, ready endpoints from two slices, sorted and distinct",
			services: []*corev1.Service{svc("ns", "web")},
			slices: []*discoveryv1.EndpointSlice{
				slice("ns", "web", discoveryv1.AddressTypeIPv4, "http", 8080, ep{addr: "10.0.0.2"}, ep{addr: "10.0.0.1", ready: ptr.To(true)}),
				slice("ns", "web", discoveryv1.AddressTypeIPv4, "http", 8080, ep{addr: "10.0.0.1"}),
			},
			want: Config{
				Servers:   []Server{defaultServer(loc("/ns/web/", "ns", "web", "http", "ns_web_http"))},
				Upstreams: []Upstream{{Name: "ns_web_http", Backends: aps("10.0.0.1:8080", "10.0.0.2:8080")}},
			},
		},
		{
			name:     "not ready, terminating and unusable endpoints are left out",
			services: []*corev1.Service{svc("ns", "web")},
			slices: []*discoveryv1.EndpointSlice{
				slice("ns", "web", discoveryv1.AddressTypeIPv4, "http", 8080,
					ep{addr: "10.0.0.1", ready: ptr.To(false)},
					ep{addr: "10.0.0.2", terminating: true},
					ep{addr: "10.0.0.3"},
					ep{addr: "not-an-ip"},
					ep{addr: "0.0.0.0"},
					ep{addr: "fd00::1"}, // wrong family for the slice
					ep{addr: "::ffff:10.0.0.4"},
				),
				slice("ns", "web", discoveryv1.AddressTypeIPv6, "http", 8080,
					ep{addr: "fe80::1%eth0"}, ep{addr: "fd00::2"}, ep{addr: "10.0.0.5"}),
				slice("ns", "web", discoveryv1.AddressTypeFQDN, "http", 8080, ep{addr: "evil.example.com"}),
				slice("ns", "web", discoveryv1.AddressTypeIPv4, "other-port", 9999, ep{addr: "10.0.0.6"}),
				slice("other", "web", discoveryv1.AddressTypeIPv4, "http", 8080, ep{addr: "10.0.0.7"}),
			},
			want: Config{
				Servers:   []Server{defaultServer(loc("/ns/web/", "ns", "web", "http", "ns_web_http"))},
				Upstreams: []Upstream{{Name: "ns_web_http", Backends: aps("10.0.0.3:8080", "[fd00::2]:8080")}},
			},
		},
		{
			name:     "no ready endpoint: a location without upstream",
			services: []*corev1.Service{svc("ns", "web")},
			want:     Config{Servers: []Server{defaultServer(loc("/ns/web/", "ns", "web", "http", ""))}},
		},
		{
			name: "several ports: one route per TCP port, named target ports resolved per slice",
			services: []*corev1.Service{svc("ns", "multi", ports(
				corev1.ServicePort{Name: "http", Port: 80},
				corev1.ServicePort{Name: "admin", Port: 81, Protocol: corev1.ProtocolTCP},
				corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
			))},
			slices: []*discoveryv1.EndpointSlice{
				{
					ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "a", Labels: map[string]string{discoveryv1.LabelServiceName: "multi"}},
					AddressType: discoveryv1.AddressTypeIPv4,
					Ports: []discoveryv1.EndpointPort{
						{Name: ptr.To("http"), Port: ptr.To[int32](8001)},
						{Name: ptr.To("admin"), Port: ptr.To[int32](9001)},
					},
					Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}}},
				},
				{
					ObjectMeta:  metav1.ObjectMeta{Namespace: "ns", Name: "b", Labels: map[string]string{discoveryv1.LabelServiceName: "multi"}},
					AddressType: discoveryv1.AddressTypeIPv4,
					Ports: []discoveryv1.EndpointPort{
						{Name: ptr.To("http"), Port: ptr.To[int32](8002)},
						{Name: ptr.To("admin"), Port: ptr.To[int32](9002), Protocol: ptr.To(corev1.ProtocolUDP)},
					},
					Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.2"}}},
				},
			},
			want: Config{
				Servers: []Server{defaultServer(
					loc("/ns/multi/admin/", "ns", "multi", "admin", "ns_multi_admin"),
					loc("/ns/multi/http/", "ns", "multi", "http", "ns_multi_http"),
				)},
				Upstreams: []Upstream{
					{Name: "ns_multi_admin", Backends: aps("10.0.0.1:9001")},
					{Name: "ns_multi_http", Backends: aps("10.0.0.1:8001", "10.0.0.2:8002")},
				},
			},
		},
		{
			name: "the port annotation picks one port, by name or number, routed at the path",
			services: []*corev1.Service{
				svc("ns", "byname", ann(AnnotationPort, "admin"), ports(corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "admin", Port: 81})),
				svc("ns", "bynumber", ann(AnnotationPort, "80"), ports(corev1.ServicePort{Name: "http", Port: 80}, corev1.ServicePort{Name: "admin", Port: 81})),
			},
			want: Config{Servers: []Server{defaultServer(
				loc("/ns/byname/", "ns", "byname", "admin", ""),
				loc("/ns/bynumber/", "ns", "bynumber", "http", ""),
			)}},
		},
		{
			name: "host, path and strip-prefix annotations; hosts sorted after the default server",
			services: []*corev1.Service{
				svc("ns", "b", ann(AnnotationHost, "B.Example.com", AnnotationPath, "/api")),
				svc("ns", "a", ann(AnnotationHost, "*.a.example.com", AnnotationPath, "/", AnnotationStripPrefix, "false")),
				svc("ns", "c"),
			},
			want: Config{Servers: []Server{
				defaultServer(loc("/ns/c/", "ns", "c", "http", "")),
				{Host: "*.a.example.com", Locations: []Location{{Path: "/", Service: ServicePort{"ns", "a", "http"}, Mode: UpstreamEndpoints}}},
				{Host: "b.example.com", Locations: []Location{loc("/api/", "ns", "b", "http", "")}},
			}},
		},
		{
			name: "upstream service: the ClusterIP; headless and ExternalName refused",
			services: []*corev1.Service{
				svc("ns", "cip", ann(AnnotationUpstream, "service"), ports(corev1.ServicePort{Port: 8080})),
				svc("ns", "headless", ann(AnnotationUpstream, "service"), func(s *corev1.Service) { s.Spec.ClusterIP = "None" }),
				svc("ns", "ext", func(s *corev1.Service) {
					s.Spec.Type = corev1.ServiceTypeExternalName
					s.Spec.ExternalName = "example.com"
				}),
			},
			want: Config{
				Servers:   []Server{defaultServer(Location{Path: "/ns/cip/", StripPrefix: true, Service: ServicePort{"ns", "cip", "8080"}, Mode: UpstreamService, Upstream: "ns_cip_8080"})},
				Upstreams: []Upstream{{Name: "ns_cip_8080", Backends: aps("10.96.0.10:8080")}},
			},
			rejected: []string{
				`ns/ext: Unsupported: ExternalName Services are not routed`,
				`ns/headless: Unsupported: upstream "service" needs a ClusterIP, and this Service is headless`,
			},
		},
		{
			name:     "default mode service from the options",
			services: []*corev1.Service{svc("ns", "web")},
			opts:     Options{DefaultMode: UpstreamService},
			want: Config{
				Servers:   []Server{defaultServer(Location{Path: "/ns/web/", StripPrefix: true, Service: ServicePort{"ns", "web", "http"}, Mode: UpstreamService, Upstream: "ns_web_http"})},
				Upstreams: []Upstream{{Name: "ns_web_http", Backends: aps("10.96.0.10:80")}},
			},
		},
		{
			name:     "proxy settings from annotations",
			services: []*corev1.Service{svc("ns", "ws", ann(AnnotationReadTimeout, "1h", AnnotationSendTimeout, "90s", AnnotationMaxBodySize, "0")), svc("ns", "up", ann(AnnotationMaxBodySize, "10m"))},
			want: Config{Servers: []Server{defaultServer(
				Location{Path: "/ns/up/", StripPrefix: true, Service: ServicePort{"ns", "up", "http"}, Mode: UpstreamEndpoints,
					Proxy: ProxySettings{MaxBodySize: 10 << 20}},
				Location{Path: "/ns/ws/", StripPrefix: true, Service: ServicePort{"ns", "ws", "http"}, Mode: UpstreamEndpoints,
					Proxy: ProxySettings{ReadTimeout: time.Hour, SendTimeout: 90 * time.Second, MaxBodySize: NoBodyLimit}},
			)}},
		},
		{
			name: "selector and namespaces filter",
			services: []*corev1.Service{
				svc("ns", "in"),
				svc("ns", "unlabelled", withLabels(nil)),
				svc("elsewhere", "out"),
			},
			opts: Options{Namespaces: []string{"ns"}},
			want: Config{Servers: []Server{defaultServer(loc("/ns/in/", "ns", "in", "http", ""))}},
		},
		{
			name: "conflicts: the oldest Service wins, then the smallest name",
			services: []*corev1.Service{
				svc("ns", "young", ann(AnnotationPath, "/shared"), created(time.Hour)),
				svc("ns", "old", ann(AnnotationPath, "/shared")),
				svc("ns", "twin-b", ann(AnnotationHost, "t.example.com")),
				svc("ns", "twin-a", ann(AnnotationHost, "t.example.com", AnnotationPath, "/ns/twin-b/")),
			},
			want: Config{Servers: []Server{
				defaultServer(loc("/shared/", "ns", "old", "http", "")),
				{Host: "t.example.com", Locations: []Location{loc("/ns/twin-b/", "ns", "twin-a", "http", "")}},
			}},
			rejected: []string{
				`ns/twin-b port http: RouteConflict: path /ns/twin-b/ on t.example.com is already routed to ns/twin-a:http, which is older or sorts first`,
				`ns/young port http: RouteConflict: path /shared/ on the default server is already routed to ns/old:http, which is older or sorts first`,
			},
		},
		{
			name: "invalid annotations and ports leave only that Service out",
			services: []*corev1.Service{
				svc("ns", "good"),
				svc("ns", "inject", ann(AnnotationPath, "/a;\n}\nserver {")),
				svc("ns", "typo", ann(AnnotationPrefix+"hots", "x.example.com")),
				svc("ns", "badhost", ann(AnnotationHost, "a..b")),
				svc("ns", "badmode", ann(AnnotationUpstream, "pods")),
				svc("ns", "badstrip", ann(AnnotationStripPrefix, "yes")),
				svc("ns", "noport", ann(AnnotationPort, "grpc")),
				svc("ns", "udp", ports(corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})),
				svc("ns", "udppick", ann(AnnotationPort, "dns"), ports(corev1.ServicePort{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP})),
				svc("ns", "Bad_Name"),
				svc("ns", "badtimeout", ann(AnnotationReadTimeout, "60")),
				svc("ns", "badbody", ann(AnnotationMaxBodySize, "10MB")),
			},
			want: Config{Servers: []Server{defaultServer(loc("/ns/good/", "ns", "good", "http", ""))}},
			rejected: []string{
				`ns/Bad_Name: InvalidService: name "Bad_Name" is not a DNS-1035 label`,
				`ns/badbody: InvalidAnnotation: annotation kube-nginx-sync.io/max-body-size="10MB": character 'M' at 2 is not a digit (a number of bytes, optionally followed by k, m or g; 0 for no limit)`,
				`ns/badhost: InvalidAnnotation: annotation kube-nginx-sync.io/host="a..b": not a valid host name: empty label`,
				`ns/badmode: InvalidAnnotation: annotation kube-nginx-sync.io/upstream="pods": must be "endpoints" or "service"`,
				`ns/badstrip: InvalidAnnotation: annotation kube-nginx-sync.io/strip-prefix="yes": must be "true" or "false"`,
				`ns/badtimeout: InvalidAnnotation: annotation kube-nginx-sync.io/read-timeout="60": must be a whole number of s, m or h, such as "90s", "5m" or "1h"`,
				`ns/inject: InvalidAnnotation: annotation kube-nginx-sync.io/path="/a;\n}\nserver {": character ';' at 2 is not allowed (letters, digits and -._~/ are)`,
				`ns/noport: InvalidAnnotation: annotation kube-nginx-sync.io/port="grpc": the Service has no such port`,
				`ns/typo: InvalidAnnotation: annotation kube-nginx-sync.io/hots="x.example.com": unknown annotation (known: kube-nginx-sync.io/host, kube-nginx-sync.io/hsts, kube-nginx-sync.io/https-redirect, kube-nginx-sync.io/max-body-size, kube-nginx-sync.io/path, kube-nginx-sync.io/port, kube-nginx-sync.io/read-timeout, kube-nginx-sync.io/send-timeout, kube-nginx-sync.io/strip-prefix, kube-nginx-sync.io/tls-secret, kube-nginx-sync.io/upstream)`,
				`ns/udp: Unsupported: the Service has no TCP port`,
				`ns/udppick: Unsupported: port dns is UDP; only TCP ports are routed`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			if opts.Selector == nil {
				opts.Selector = selector
			}
			res := Build(tt.services, tt.slices, opts)
			if diff := cmp.Diff(tt.want, res.Config, equateAddrPorts); diff != "" {
				t.Errorf("Config (-want +got):\n%s", diff)
			}
			var rejected []string
			for _, r := range res.Rejected {
				rejected = append(rejected, r.String())
			}
			if diff := cmp.Diff(tt.rejected, rejected); diff != "" {
				t.Errorf("Rejected (-want +got):\n%s", diff)
			}
		})
	}
}

// TestBuildIsOrderIndependent: replicas that list the same objects in any
// order render the same config.
func TestBuildIsOrderIndependent(t *testing.T) {
	t.Parallel()
	services := []*corev1.Service{
		svc("b", "x"), svc("a", "y", ann(AnnotationPath, "/p")), svc("a", "z", ann(AnnotationPath, "/p")),
		svc("a", "w", ann(AnnotationHost, "h.example.com")),
	}
	slices := []*discoveryv1.EndpointSlice{
		slice("b", "x", discoveryv1.AddressTypeIPv4, "http", 1, ep{addr: "10.0.0.2"}),
		slice("b", "x", discoveryv1.AddressTypeIPv4, "http", 1, ep{addr: "10.0.0.1"}),
		slice("a", "w", discoveryv1.AddressTypeIPv6, "http", 1, ep{addr: "fd00::1"}),
	}
	opts := Options{Selector: labels.SelectorFromSet(exposed)}
	want := Build(services, slices, opts)
	for i := range 10 {
		s := append([]*corev1.Service(nil), services...)
		e := append([]*discoveryv1.EndpointSlice(nil), slices...)
		rotate(s, i)
		rotate(e, i)
		if diff := cmp.Diff(want, Build(s, e, opts), equateAddrPorts); diff != "" {
			t.Fatalf("order %d changes the result:\n%s", i, diff)
		}
	}
}

func rotate[T any](s []T, n int) {
	if len(s) == 0 {
		return
	}
	n %= len(s)
	tmp := append(append([]T(nil), s[n:]...), s[:n]...)
	copy(s, tmp)
}

// TestBuildDoesNotMutate: informer caches hand out shared objects.
func TestBuildDoesNotMutate(t *testing.T) {
	t.Parallel()
	s := svc("ns", "web", ann(AnnotationHost, "UPPER.example.com"))
	e := slice("ns", "web", discoveryv1.AddressTypeIPv4, "http", 1, ep{addr: "10.0.0.2"}, ep{addr: "10.0.0.1"})
	sCopy, eCopy := s.DeepCopy(), e.DeepCopy()
	Build([]*corev1.Service{s}, []*discoveryv1.EndpointSlice{e}, Options{})
	if diff := cmp.Diff(sCopy, s); diff != "" {
		t.Errorf("Service changed:\n%s", diff)
	}
	if diff := cmp.Diff(eCopy, e); diff != "" {
		t.Errorf("EndpointSlice changed:\n%s", diff)
	}
}

func TestRejectionMessagesShortenHugeValues(t *testing.T) {
	t.Parallel()
	huge := "/" + strings.Repeat("a", 100000) + ";"
	res := Build([]*corev1.Service{svc("ns", "huge", ann(AnnotationPath, huge))}, nil, Options{})
	if len(res.Rejected) != 1 {
		t.Fatalf("rejected %v, want 1", res.Rejected)
	}
	if n := len(res.Rejected[0].Message); n > 300 {
		t.Errorf("message is %d bytes long, want it shortened", n)
	}
}

// BenchmarkBuild is the model half of a rebuild; BenchmarkRender in
// internal/nginxconf is the other.
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			services, slices := testbed.Cluster(n, 3)
			b.ReportAllocs()
			for b.Loop() {
				if res := Build(services, slices, Options{}); res.Config.Routes() != n {
					b.Fatalf("%d routes", res.Config.Routes())
				}
			}
		})
	}
}

// TestServiceBackendsAsBuild: for every routed port, ServiceBackends gives
// the backends that Build gives its upstream (none for a port without).
func TestServiceBackendsAsBuild(t *testing.T) {
	t.Parallel()
	services, endpointSlices := testbed.Cluster(40, 3)
	for _, s := range services {
		s.Labels = map[string]string{"kube-nginx-sync.io/expose": "true"}
	}
	// Some Services without ready endpoints, one through its ClusterIP,
	// one not selected.
	for _, s := range endpointSlices[:5] {
		for i := range s.Endpoints {
			s.Endpoints[i].Conditions.Ready = ptr.To(false)
		}
	}
	services[6].Annotations = map[string]string{AnnotationUpstream: string(UpstreamService)}
	services[6].Spec.ClusterIP = "10.96.0.6"
	services[7].Labels = nil
	opts := Options{Selector: labels.SelectorFromSet(labels.Set{"kube-nginx-sync.io/expose": "true"})}
	res := Build(services, endpointSlices, opts)
	upstreams := map[string][]netip.AddrPort{}
	for _, u := range res.Config.Upstreams {
		upstreams[u.Name] = u.Backends
	}
	bySvc := map[string][]*discoveryv1.EndpointSlice{}
	for _, s := range endpointSlices {
		bySvc[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]] = append(bySvc[s.Namespace+"/"+s.Labels[discoveryv1.LabelServiceName]], s)
	}
	routed := 0
	for _, svc := range services {
		got := ServiceBackends(svc, bySvc[svc.Namespace+"/"+svc.Name], opts)
		if svc == services[7] {
			if got != nil {
				t.Errorf("%s is not selected, and has backends %v", svc.Name, got)
			}
			continue
		}
		for _, s := range res.Config.Servers {
			for _, l := range s.Locations {
				if l.Service.Namespace != svc.Namespace || l.Service.Name != svc.Name {
					continue
				}
				routed++
				if want := upstreams[l.Upstream]; !slices.Equal(got[l.Service], want) {
					t.Errorf("%s: ServiceBackends %v, Build %v", l.Service, got[l.Service], want)
				}
			}
		}
	}
	if routed < 35 {
		t.Errorf("only %d routes compared", routed)
	}
}
