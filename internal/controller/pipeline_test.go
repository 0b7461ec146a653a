package controller

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// clusterOf makes n Services with one EndpointSlice of 3 ready endpoints
// each, spread over 10 namespaces.
func clusterOf(n int) kube.Objects {
	var objs kube.Objects
	for i := range n {
		ns, name := fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("svc-%05d", i)
		objs.Services = append(objs.Services, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec:       corev1.ServiceSpec{ClusterIP: "10.96.0.1", Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		})
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Namespace: ns, Name: name + "-abcde", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To[int32](8080)}},
		}
		for j := range 3 {
			ip := netip.AddrFrom4([4]byte{10, byte(j), byte(i >> 8), byte(i)})
			slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{ip.String()},
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
		}
		objs.EndpointSlices = append(objs.EndpointSlices, slice)
	}
	return objs
}

// BenchmarkRebuildRender is one rebuild of the watch loop: model from the
// cached objects, then the rendered bytes.
func BenchmarkRebuildRender(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			objs := clusterOf(n)
			r, err := nginxconf.NewRenderer(nginxconf.Options{HTTPPort: 80})
			if err != nil {
				b.Fatal(err)
			}
			p := &Pipeline{Renderer: r}
			var size int
			b.ReportAllocs()
			for b.Loop() {
				res, data, err := p.Generate(objs)
				if err != nil || res.Config.Routes() != n {
					b.Fatalf("routes %d, err %v", res.Config.Routes(), err)
				}
				size = len(data)
			}
			b.ReportMetric(float64(size), "config-bytes")
		})
	}
}
