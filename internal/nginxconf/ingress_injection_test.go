package nginxconf_test

import (
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// ingressInput is everything of one Ingress, and of the Service and
// EndpointSlice it sends to, that the fuzzer controls.
type ingressInput struct {
	namespace, name, host, path, pathType string
	backend, port, defaultBackend         string // backend Service names and port ("" leaves the default backend out)
	portName, endpoint, clusterIP, mode   string // the Service's port name, endpoint, ClusterIP and upstream annotation
	extraKey, extraValue                  string // any annotation of the Ingress
	bodySize, readTimeout                 string // ingress-nginx's annotations; "" leaves one out
	// tlsHost and tlsSecret make the one entry of the tls section ("" for
	// both leaves it out); sslRedirect and hsts are its annotations. The
	// Secret "web-tls" of the namespace holds fuzzCertificate.
	tlsHost, tlsSecret, sslRedirect, hsts string
}

func (in ingressInput) fields() []string {
	return []string{in.namespace, in.name, in.host, in.path, in.pathType, in.backend, in.port, in.defaultBackend,
		in.portName, in.endpoint, in.clusterIP, in.mode, in.extraKey, in.extraValue, in.bodySize, in.readTimeout,
		in.tlsHost, in.tlsSecret, in.sslRedirect, in.hsts}
}

func ingressInputOf(f []string) ingressInput {
	return ingressInput{f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[12], f[13], f[14], f[15],
		f[16], f[17], f[18], f[19]}
}

func (in ingressInput) objects(cert testbed.Issued) ([]*corev1.Service, []*discoveryv1.EndpointSlice, []*corev1.Secret, model.IngressOptions) {
	svcAnn := map[string]string{}
	if in.mode != "" {
		svcAnn[model.AnnotationUpstream] = in.mode
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.namespace, Name: "web", Annotations: svcAnn},
		Spec:       corev1.ServiceSpec{ClusterIP: in.clusterIP, Ports: []corev1.ServicePort{{Name: in.portName, Port: 80}}},
	}
	family := discoveryv1.AddressTypeIPv4
	if strings.Contains(in.endpoint, ":") {
		family = discoveryv1.AddressTypeIPv6
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Namespace: in.namespace, Name: "s", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(in.portName), Port: ptr.To[int32](8080)}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{in.endpoint}}},
	}
	port := networkingv1.ServiceBackendPort{Name: in.port}
	if n, err := strconv.ParseInt(in.port, 10, 32); err == nil {
		port = networkingv1.ServiceBackendPort{Number: int32(n)}
	}
	ann := map[string]string{}
	for k, v := range map[string]string{in.extraKey: in.extraValue, model.IngressNginxProxyBodySize: in.bodySize,
		model.IngressNginxProxyReadTimeout: in.readTimeout, model.IngressNginxSSLRedirect: in.sslRedirect, model.AnnotationHSTS: in.hsts} {
		if k != "" && v != "" {
			ann[k] = v
		}
	}
	b := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: in.backend, Port: port}}
	ing := &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Namespace: in.namespace, Name: in.name, Annotations: ann},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("kns"), Rules: []networkingv1.IngressRule{{
			Host: in.host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{
				{Path: in.path, PathType: ptr.To(networkingv1.PathType(in.pathType)), Backend: b},
				{Path: "/exact", PathType: ptr.To(networkingv1.PathTypeExact), Backend: b},
			}}},
		}}},
	}
	if in.tlsHost != "" || in.tlsSecret != "" {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{in.tlsHost}, SecretName: in.tlsSecret}}
	}
	if in.defaultBackend != "" {
		ing.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: in.defaultBackend, Port: port}}
	}
	class := &networkingv1.IngressClass{ObjectMeta: metav1.ObjectMeta{Name: "kns"}, Spec: networkingv1.IngressClassSpec{Controller: model.ControllerName}}
	secret := testbed.TLSSecret("web-tls", cert)
	secret.Namespace = in.namespace
	return []*corev1.Service{svc}, []*discoveryv1.EndpointSlice{slice}, []*corev1.Secret{secret},
		model.IngressOptions{Class: "kns", Ingresses: []*networkingv1.Ingress{ing}, Classes: []*networkingv1.IngressClass{class}}
}

// validIngress is an Ingress that is routed; each seed changes one field
// of it.
var validIngress = ingressInput{
	namespace: "shop", name: "shop.front", host: "shop.example.com", path: "/api", pathType: "Prefix",
	backend: "web", port: "http", defaultBackend: "web", portName: "http", endpoint: "10.0.0.1", clusterIP: "10.96.0.10",
	extraKey: "nginx.ingress.kubernetes.io/rewrite-target", extraValue: "/", bodySize: "8m", readTimeout: "60",
	tlsHost: "shop.example.com", tlsSecret: "web-tls", hsts: "max-age=60",
}

// FuzzIngressToConfig is FuzzServiceToConfig for an Ingress: whatever the
// fuzzer puts in an Ingress's fields (host, path, path type, backend names
// and port, annotations) and in its Service, the config holds only the
// directives that the model allows, every shape parses, nginx accepts it,
// and the Lua shape's table takes its routes.
func FuzzIngressToConfig(f *testing.F) {
	seed := func(in []string) {
		f.Add(in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8], in[9], in[10], in[11], in[12], in[13], in[14], in[15],
			in[16], in[17], in[18], in[19])
	}
	seed(validIngress.fields())
	cert, err := fuzzCertificate()
	if err != nil {
		f.Fatal(err)
	}
	for _, v := range [][2]string{{"pathType", "Exact"}, {"pathType", "ImplementationSpecific"}, {"path", "/"}, {"path", "/a/b/"},
		{"port", "80"}, {"port", "81"}, {"backend", "gone"}, {"mode", "service"}, {"defaultBackend", ""}, {"host", ""}, {"host", "*.example.com"},
		{"tlsHost", "*.example.com"}, {"tlsHost", "other.example.com"}, {"tlsHost", ""}, {"tlsSecret", ""}, {"tlsSecret", "gone-tls"},
		{"sslRedirect", "false"}, {"hsts", ""}} {
		in := validIngress
		switch v[0] {
		case "pathType":
			in.pathType = v[1]
		case "path":
			in.path = v[1]
		case "port":
			in.port = v[1]
		case "backend":
			in.backend = v[1]
		case "mode":
			in.mode = v[1]
		case "defaultBackend":
			in.defaultBackend = v[1]
		case "host":
			in.host = v[1]
		case "tlsHost":
			in.tlsHost = v[1]
		case "tlsSecret":
			in.tlsSecret = v[1]
		case "sslRedirect":
			in.sslRedirect = v[1]
		case "hsts":
			in.hsts = v[1]
		}
		seed(in.fields())
	}
	for _, path := range []string{"/a.b/", "/", "/a/b/c/"} {
		in := validIngress
		in.pathType, in.path = "Exact", path
		seed(in.fields())
	}
	// Each shape alone, inside a value that is valid around it, and after
	// a leading "/" (so a path gets past its first check).
	for _, inj := range injections {
		for _, v := range []string{inj, "x" + inj + "y", "/x" + inj} {
			for field := range len(validIngress.fields()) {
				in := validIngress.fields()
				in[field] = v
				seed(in)
			}
		}
	}
	nginxBin, _ := exec.LookPath("nginx")
	dir := f.TempDir()
	// validated holds the versions of the configs that nginx accepted:
	// most seeds refuse one field and render the same config as others.
	var validated sync.Map
	renderers := shapeRenderers(f, dir)
	f.Fuzz(func(t *testing.T, namespace, name, host, path, pathType, backend, port, defaultBackend, portName, endpoint, clusterIP, mode,
		extraKey, extraValue, bodySize, readTimeout, tlsHost, tlsSecret, sslRedirect, hsts string) {
		in := ingressInputOf([]string{namespace, name, host, path, pathType, backend, port, defaultBackend, portName, endpoint, clusterIP, mode,
			extraKey, extraValue, bodySize, readTimeout, tlsHost, tlsSecret, sslRedirect, hsts})
		svcs, slices, secrets, ingress := in.objects(cert)
		res := model.Build(svcs, slices, model.Options{Ingress: ingress, Secrets: secrets, Now: time.Now()})
		writeCertificates(t, res.Config, dir)
		if _, err := luaplane.Encode(luaplane.Build(res.Config)); err != nil {
			t.Fatalf("the table refuses the model's routes: %v\ninput: %+q", err, in)
		}
		checkConfigs(t, renderers, res, dir, nginxBin, &validated, in)
	})
}
