package testbed

import (
	"fmt"
	"net/netip"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// ExposedLabels are the labels that kube-nginx-sync's default selector
// wants.
var ExposedLabels = map[string]string{"kube-nginx-sync.io/expose": "true"}

// TCPPort is a Service port.
func TCPPort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
}

// Endpoint is one endpoint of an EndpointSlice.
type Endpoint struct {
	Addr        netip.Addr
	NotReady    bool
	Terminating bool
}

// SlicePort maps a Service port name to the port the slice's endpoints
// listen on.
type SlicePort struct {
	Name string
	Port int32
}

// EndpointSlice builds a slice for the Service svcName, of the address
// family of its endpoints (IPv4 when it has none).
func EndpointSlice(svcName string, ports []SlicePort, eps ...Endpoint) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: svcName + "-",
			Labels:       map[string]string{discoveryv1.LabelServiceName: svcName},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{
			Name: ptr.To(p.Name), Port: ptr.To(p.Port), Protocol: ptr.To(corev1.ProtocolTCP),
		})
	}
	for _, ep := range eps {
		if ep.Addr.Is6() {
			s.AddressType = discoveryv1.AddressTypeIPv6
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{ep.Addr.String()},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(!ep.NotReady && !ep.Terminating),
				Serving:     ptr.To(!ep.NotReady),
				Terminating: ptr.To(ep.Terminating),
			},
		})
	}
	return s
}

// IPs hands out distinct addresses that are local inside the network
// namespace of hack/in-netns.sh and that the API server accepts in
// EndpointSlices.
type IPs struct {
	// Base is the third byte of the first IPv4 address, 198.18.Base.1;
	// zero means 1. Users that share a network namespace take ranges
	// apart.
	Base   byte
	v4, v6 atomic.Uint32
}

// NextIPv4 returns the next address of 198.18.0.0/16, from 198.18.Base.1.
func (a *IPs) NextIPv4() netip.Addr {
	n := a.v4.Add(1) - 1
	return netip.AddrFrom4([4]byte{198, 18, max(a.Base, 1) + byte(n/250), byte(1 + n%250)})
}

// NextIPv6 returns the next address of 2001:db8::/64, from 2001:db8::1.
func (a *IPs) NextIPv6() netip.Addr {
	n := a.v6.Add(1)
	b := netip.MustParseAddr("2001:db8::").As16()
	b[14], b[15] = byte(n>>8), byte(n)
	return netip.AddrFrom16(b)
}

// Cluster returns n Services, spread over 10 namespaces, each with one
// port "http" and one EndpointSlice of endpointsEach ready endpoints on
// 8080: the synthetic cluster of the benchmarks. Endpoint j of Service i
// is 10.j.(i>>8).(i&255).
func Cluster(n, endpointsEach int) ([]*corev1.Service, []*discoveryv1.EndpointSlice) {
	services := make([]*corev1.Service, 0, n)
	slices := make([]*discoveryv1.EndpointSlice, 0, n)
	for i := range n {
		ns, name := fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("svc-%05d", i)
		services = append(services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{TCPPort("http", 80)}},
		})
		var eps []Endpoint
		for j := range endpointsEach {
			eps = append(eps, Endpoint{Addr: netip.AddrFrom4([4]byte{10, byte(j), byte(i >> 8), byte(i)})})
		}
		slice := EndpointSlice(name, []SlicePort{{Name: "http", Port: 8080}}, eps...)
		slice.Namespace, slice.Name = ns, name+"-abcde"
		slices = append(slices, slice)
	}
	return services, slices
}
