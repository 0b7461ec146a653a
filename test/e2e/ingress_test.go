//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// createIngressClass creates an IngressClass of kube-nginx-sync (or of
// controller, when given) and deletes it at the end. IngressClasses are
// cluster-wide: tests name theirs after their namespace.
func createIngressClass(t *testing.T, name, controller string) {
	t.Helper()
	if controller == "" {
		controller = model.ControllerName
	}
	_, err := client.NetworkingV1().IngressClasses().Create(context.Background(), &networkingv1.IngressClass{
		ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: networkingv1.IngressClassSpec{Controller: controller}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create IngressClass %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = client.NetworkingV1().IngressClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func createIngress(t *testing.T, ns string, ing *networkingv1.Ingress) *networkingv1.Ingress {
	t.Helper()
	created, err := client.NetworkingV1().Ingresses(ns).Create(context.Background(), ing, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Ingress %s: %v", ing.Name, err)
	}
	return created
}

// ingressObject is an Ingress of class with rules and, unless
// defaultService is "", a default backend.
func ingressObject(name string, class *string, defaultService string, rules ...networkingv1.IngressRule) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: networkingv1.IngressSpec{IngressClassName: class, Rules: rules}}
	if defaultService != "" {
		ing.Spec.DefaultBackend = serviceBackend(defaultService, 80)
	}
	return ing
}

func serviceBackend(name string, port int32) *networkingv1.IngressBackend {
	return &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: name,
		Port: networkingv1.ServiceBackendPort{Number: port}}}
}

// ingressRule routes host's paths, each "Type:/path=service" (port 80).
func ingressRule(host string, paths ...string) networkingv1.IngressRule {
	r := networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{}}}
	for _, p := range paths {
		kind, rest, _ := strings.Cut(p, ":")
		path, svc, _ := strings.Cut(rest, "=")
		r.HTTP.Paths = append(r.HTTP.Paths, networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(networkingv1.PathType(kind)),
			Backend: *serviceBackend(svc, 80)})
	}
	return r
}

// ingressBackend starts a backend named name and a Service of that name,
// not labelled for the selector (an Ingress may send to any Service), with
// one port "http" (80) whose endpoint is the backend.
func ingressBackend(t *testing.T, ns, name string) *testbed.Backend {
	t.Helper()
	b, err := testbed.StartBackend(name, netip.AddrPortFrom(nextIP(), 8080))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	createService(t, ns, service{name: name, ports: []corev1.ServicePort{httpPort("http", 80)}})
	createSlice(t, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: b.Addr.Addr()})
	return b
}

// request is a GET and what it must answer.
type request struct {
	host, path string
	status     int
	body       string
}

func checkRequests(port int, reqs []request) error {
	for _, r := range reqs {
		status, body, err := tryGet(port, r.host, r.path)
		if err != nil || status != r.status || body != r.body {
			return fmt.Errorf("GET %s%s: %d %q (%v), want %d %q", r.host, r.path, status, body, err, r.status, r.body)
		}
	}
	return nil
}

// served is what backend name answers to path.
func served(host, path, name string) request {
	return request{host: host, path: path, status: 200, body: name + " " + strings.SplitN(path, "?", 2)[0]}
}

// apiExamples are the examples of the Ingress API's path matching, from
// the table "Examples" of the Kubernetes documentation (Concepts, Ingress,
// "Path types"): each on a host of its own, its paths to backends p1, p2
// and p3 in order, and the requests it lists. "No" sends the request to
// the Ingress's default backend.
var apiExamples = []struct {
	paths    []string // "Type:/path"
	requests []string // "/path=backend"
}{
	{[]string{"Prefix:/"}, []string{"/=p1", "/any/path=p1"}},
	{[]string{"Exact:/foo"}, []string{"/foo=p1"}},
	{[]string{"Exact:/foo"}, []string{"/bar=default"}},
	{[]string{"Exact:/foo"}, []string{"/foo/=default"}},
	{[]string{"Exact:/foo/"}, []string{"/foo=default"}},
	{[]string{"Prefix:/foo"}, []string{"/foo=p1", "/foo/=p1"}},
	{[]string{"Prefix:/foo/"}, []string{"/foo=p1", "/foo/=p1"}},
	{[]string{"Prefix:/aaa/bb"}, []string{"/aaa/bbb=default"}},
	{[]string{"Prefix:/aaa/bbb"}, []string{"/aaa/bbb=p1"}},
	{[]string{"Prefix:/aaa/bbb/"}, []string{"/aaa/bbb=p1"}},
	{[]string{"Prefix:/aaa/bbb"}, []string{"/aaa/bbb/=p1"}},
	{[]string{"Prefix:/aaa/bbb"}, []string{"/aaa/bbb/ccc=p1"}},
	{[]string{"Prefix:/aaa/bbb"}, []string{"/aaa/bbbxyz=default"}},
	{[]string{"Prefix:/", "Prefix:/aaa"}, []string{"/aaa/ccc=p2"}},
	{[]string{"Prefix:/", "Prefix:/aaa", "Prefix:/aaa/bbb"}, []string{"/aaa/bbb=p3"}},
	{[]string{"Prefix:/", "Prefix:/aaa", "Prefix:/aaa/bbb"}, []string{"/ccc=p1"}},
	{[]string{"Prefix:/aaa"}, []string{"/ccc=default"}},
	{[]string{"Prefix:/foo", "Exact:/foo"}, []string{"/foo=p2"}},
}

// TestIngressAPIExamples: an Ingress with many hosts, Prefix and Exact
// paths and a default backend is served, in each shape, and every example
// of the Ingress API's path matching answers as the documentation says;
// a Prefix path's bare path keeps its query; an ImplementationSpecific
// path matches as a Prefix one.
func TestIngressAPIExamples(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIngressClass(t, ns, "")
	for _, name := range []string{"p1", "p2", "p3", "default"} {
		ingressBackend(t, ns, name)
	}
	var rules []networkingv1.IngressRule
	var reqs []request
	for i, ex := range apiExamples {
		host := fmt.Sprintf("r%02d.%s.test", i+1, ns)
		var paths []string
		for j, p := range ex.paths {
			paths = append(paths, p+"=p"+strconv.Itoa(j+1))
		}
		rules = append(rules, ingressRule(host, paths...))
		for _, r := range ex.requests {
			path, backend, _ := strings.Cut(r, "=")
			reqs = append(reqs, served(host, path, backend))
		}
	}
	impl := "impl." + ns + ".test"
	rules = append(rules, ingressRule(impl, "ImplementationSpecific:/docs=p1"))
	reqs = append(reqs, served(impl, "/docs", "p1"), served(impl, "/docs/a", "p1"), served(impl, "/docsx", "default"),
		served("r06."+ns+".test", "/foo?a=b", "p1"),
		// Another host, and none: the default server, where the default
		// backend routes "/".
		served("elsewhere.test", "/x", "default"), served("", "/", "default"))
	createIngress(t, ns, ingressObject("examples", ptr.To(ns), "default", rules...))

	for _, shape := range []string{"upstream", "flat", "lua"} {
		t.Run(shape, func(t *testing.T) {
			t.Parallel()
			a := startRun(t, ns, "--shape", shape, "--ingress-class", ns)
			eventually(t, 30*time.Second, func() error { return checkRequests(a.port, reqs) })
		})
	}
}

// TestIngressClasses: Ingresses of another class are ignored; so are those
// that name none, until our class is marked the default; a change of the
// IngressClass reaches the config.
func TestIngressClasses(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIngressClass(t, ns, "")
	other := "other-" + ns
	createIngressClass(t, other, "k8s.io/ingress-nginx")
	ingressBackend(t, ns, "web")
	notFound := func(host string) request {
		return request{host: host, path: "/", status: 404, body: "kube-nginx-sync: no route for this host and path\n"}
	}
	mine, theirs, none := "mine."+ns+".test", "theirs."+ns+".test", "none."+ns+".test"
	createIngress(t, ns, ingressObject("mine", ptr.To(ns), "", ingressRule(mine, "Prefix:/=web")))
	createIngress(t, ns, ingressObject("theirs", ptr.To(other), "", ingressRule(theirs, "Prefix:/=web")))
	created := createIngress(t, ns, ingressObject("none", nil, "", ingressRule(none, "Prefix:/=web")))
	if created.Spec.IngressClassName != nil {
		t.Fatalf("the API server gave the Ingress class %q: another IngressClass is the default", *created.Spec.IngressClassName)
	}
	a := startRun(t, ns, "--ingress-class", ns)
	eventually(t, 20*time.Second, func() error {
		return checkRequests(a.port, []request{served(mine, "/", "web"), notFound(theirs), notFound(none)})
	})

	setDefault := func(on bool) {
		t.Helper()
		patch := `{"metadata":{"annotations":{"ingressclass.kubernetes.io/is-default-class":null}}}`
		if on {
			patch = `{"metadata":{"annotations":{"ingressclass.kubernetes.io/is-default-class":"true"}}}`
		}
		if _, err := client.NetworkingV1().IngressClasses().Patch(context.Background(), ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	setDefault(true)
	t.Cleanup(func() { setDefault(false) })
	eventually(t, 20*time.Second, func() error {
		return checkRequests(a.port, []request{served(mine, "/", "web"), notFound(theirs), served(none, "/x", "web")})
	})
	setDefault(false)
	eventually(t, 20*time.Second, func() error {
		return checkRequests(a.port, []request{served(mine, "/", "web"), notFound(none)})
	})
	res := runBinary(t, "explain", "--kubeconfig", cluster.Kubeconfig, "--namespace", ns, "--ingress-class", ns, "ingress/"+ns+"/theirs")
	if !strings.Contains(res.stdout, "not routed: its IngressClass is "+other+" (spec.ingressClassName), not "+ns) {
		t.Errorf("explain theirs: %s%s", res.stdout, res.stderr)
	}
}

// TestIngressConflictsWithServices: a route of an Ingress and one of a
// Service on the same host and path: the older object's wins, either way,
// and the other is told with a Warning Event; explain says so too.
func TestIngressConflictsWithServices(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIngressClass(t, ns, "")
	host := "shop." + ns + ".test"
	ingressBackend(t, ns, "ing-backend")
	// The Service first: it holds /api.
	ingressBackend(t, ns, "svc-backend")
	patchService(t, ns, "svc-backend", `{"metadata":{"labels":{"kube-nginx-sync.io/expose":"true"},"annotations":{"kube-nginx-sync.io/host":"`+host+`","kube-nginx-sync.io/path":"/api"}}}`)
	// The Ingress first: it holds /web.
	createIngress(t, ns, ingressObject("older", ptr.To(ns), "", ingressRule(host, "Prefix:/web=ing-backend")))
	// Creation timestamps have a resolution of a second.
	waitNextSecond(t, ns)
	createIngress(t, ns, ingressObject("younger", ptr.To(ns), "", ingressRule(host, "Prefix:/api=ing-backend")))
	ingressBackend(t, ns, "late")
	patchService(t, ns, "late", `{"metadata":{"labels":{"kube-nginx-sync.io/expose":"true"},"annotations":{"kube-nginx-sync.io/host":"`+host+`","kube-nginx-sync.io/path":"/web"}}}`)

	a := startRun(t, ns, "--ingress-class", ns)
	eventually(t, 20*time.Second, func() error {
		return checkRequests(a.port, []request{
			{host: host, path: "/api/x", status: 200, body: "svc-backend /x"}, // a Service's route strips its path
			served(host, "/web/x", "ing-backend"),
		})
	})
	eventually(t, 20*time.Second, func() error {
		if len(warningEvents(t, ns, "younger", "RouteConflict")) == 0 {
			return fmt.Errorf("no RouteConflict Warning Event on the Ingress younger")
		}
		if len(warningEvents(t, ns, "late", "RouteConflict")) == 0 {
			return fmt.Errorf("no RouteConflict Warning Event on the Service late")
		}
		return nil
	})
	res := runBinary(t, "explain", "--kubeconfig", cluster.Kubeconfig, "--namespace", ns, "--ingress-class", ns, "ingress/"+ns+"/younger")
	if !strings.Contains(res.stdout, "not routed: "+host+"/api (Prefix): RouteConflict: path /api/ on "+host+" is already routed to "+ns+"/svc-backend:http") {
		t.Errorf("explain younger: %s%s", res.stdout, res.stderr)
	}
	res = runBinary(t, "explain", "--kubeconfig", cluster.Kubeconfig, "--namespace", ns, "--ingress-class", ns, ns+"/late")
	if !strings.Contains(res.stdout, "is already routed to "+ns+"/ing-backend:http by Ingress "+ns+"/older") {
		t.Errorf("explain late: %s%s", res.stdout, res.stderr)
	}
}

// waitNextSecond waits until the API server's clock has passed the second
// in which an object was last created in ns, so that the next object is
// younger: creation timestamps have a resolution of a second.
func waitNextSecond(t *testing.T, ns string) {
	t.Helper()
	marker := func() time.Time {
		cm, err := client.CoreV1().ConfigMaps(ns).Create(context.Background(),
			&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "clock-"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return cm.CreationTimestamp.Time
	}
	first := marker()
	eventually(t, 5*time.Second, func() error {
		if now := marker(); !now.After(first) {
			return fmt.Errorf("the API server's clock is still at %s", now)
		}
		return nil
	})
}

// TestIngressHostileInput: hostile values in every field of an Ingress are
// refused, by the API server or by kube-nginx-sync with a Warning Event,
// and contained: the config holds none of them, and the good routes are
// served. Snippet annotations are never applied.
func TestIngressHostileInput(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIngressClass(t, ns, "")
	ingressBackend(t, ns, "web")
	class := ptr.To(ns)
	good := "good." + ns + ".test"

	// What the API server refuses never reaches kube-nginx-sync (and
	// FuzzIngressToConfig shows what kube-nginx-sync does with it).
	for name, ing := range map[string]*networkingv1.Ingress{
		"host":    ingressObject("evil-host", class, "", ingressRule("a.example.com;\n} server { return 200 pwned; }", "Prefix:/=web")),
		"service": ingressObject("evil-service", class, "", ingressRule(good, "Prefix:/x=web; return 200 pwned")),
		"exact":   ingressObject("evil-exact", class, "", ingressRule(good, "Exact:/x//y=web")),
	} {
		ing.Namespace = ns
		if _, err := client.NetworkingV1().Ingresses(ns).Create(context.Background(), ing, metav1.CreateOptions{}); err == nil {
			t.Errorf("the API server took a hostile %s", name)
		}
	}

	// What it takes, kube-nginx-sync refuses, each with an Event.
	refused := map[string]struct {
		ing    *networkingv1.Ingress
		reason string
	}{
		"evil-path":  {ingressObject("evil-path", class, "", ingressRule(good, "ImplementationSpecific:/x { return 200 pwned; } location /y=web")), "InvalidIngress"},
		"evil-regex": {ingressObject("evil-regex", class, "", ingressRule(good, "ImplementationSpecific:/(pwned|.*)$=web")), "InvalidIngress"},
		"evil-body-size": {func() *networkingv1.Ingress {
			i := ingressObject("evil-body-size", class, "", ingressRule(good, "Prefix:/b=web"))
			i.Annotations = map[string]string{model.IngressNginxProxyBodySize: "1m; return 200 pwned"}
			return i
		}(), "InvalidAnnotation"},
		"evil-own": {func() *networkingv1.Ingress {
			i := ingressObject("evil-own", class, "", ingressRule(good, "Prefix:/c=web"))
			i.Annotations = map[string]string{model.AnnotationPrefix + "snippet": "return 200 pwned;"}
			return i
		}(), "InvalidAnnotation"},
		"missing": {ingressObject("missing", class, "", ingressRule(good, "Prefix:/gone=gone")), "BackendNotFound"},
	}
	for _, r := range refused {
		createIngress(t, ns, r.ing)
	}
	// Snippets and other ingress-nginx annotations: ignored, with a
	// Warning Event; the Ingress is routed.
	snippet := ingressObject("snippet", class, "", ingressRule(good, "Prefix:/=web"))
	snippet.Annotations = map[string]string{
		model.IngressNginxPrefix + "configuration-snippet": "return 200 pwned;",
		model.IngressNginxPrefix + "server-snippet":        "location /pwned { return 200 pwned; }",
		model.IngressNginxPrefix + "auth-url":              "http://pwned.example/",
	}
	createIngress(t, ns, snippet)

	a := startRun(t, ns, "--ingress-class", ns)
	eventually(t, 20*time.Second, func() error {
		return checkRequests(a.port, []request{
			served(good, "/", "web"), served(good, "/b", "web"), served(good, "/x", "web"),
			{host: good, path: "/gone/", status: 503, body: "kube-nginx-sync: no ready endpoints for " + ns + "/gone:80\n"},
		})
	})
	for name, r := range refused {
		eventually(t, 15*time.Second, func() error {
			if len(warningEvents(t, ns, name, r.reason)) == 0 {
				return fmt.Errorf("no %s Warning Event on the Ingress %s", r.reason, name)
			}
			return nil
		})
	}
	eventually(t, 15*time.Second, func() error {
		events := warningEvents(t, ns, "snippet", "IgnoredAnnotation")
		if len(events) == 0 {
			return fmt.Errorf("no IgnoredAnnotation Warning Event on the Ingress snippet")
		}
		for _, key := range []string{"configuration-snippet (snippets are never applied)", "server-snippet (snippets are never applied)", "auth-url"} {
			if !strings.Contains(events[0].Message, key) {
				return fmt.Errorf("the Event does not name %s: %s", key, events[0].Message)
			}
		}
		return nil
	})
	config, err := os.ReadFile(filepath.Join(a.confDir, "default.conf"))
	if err != nil {
		t.Fatal(err)
	}
	mustNotContain(t, string(config), "pwned")
	for _, c := range []request{
		{host: good, path: "/pwned", status: 200, body: "web /pwned"},
		{host: "a.example.com", path: "/", status: 404, body: "kube-nginx-sync: no route for this host and path\n"},
	} {
		if err := checkRequests(a.port, []request{c}); err != nil {
			t.Error(err)
		}
	}
	res := runBinary(t, "explain", "--kubeconfig", cluster.Kubeconfig, "--namespace", ns, "--ingress-class", ns, "ingress/"+ns+"/snippet")
	if !strings.Contains(res.stdout, "ignored annotations:\n    nginx.ingress.kubernetes.io/auth-url (no equivalent in kube-nginx-sync)\n"+
		"    nginx.ingress.kubernetes.io/configuration-snippet (snippets are never applied)\n") {
		t.Errorf("explain snippet: %s%s", res.stdout, res.stderr)
	}
}

// TestIngressStatusLeader: of three generators, the one elected by the
// Lease writes the status of the routed Ingresses, once; when it is
// killed, another takes the Lease over and writes its own. (The test gives
// each replica an address of its own, to see which one writes.) An Ingress
// that is no longer routed has its status cleared by the leader.
func TestIngressStatusLeader(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	createIngressClass(t, ns, "")
	ingressBackend(t, ns, "web")
	createIngress(t, ns, ingressObject("front", ptr.To(ns), "web"))
	var gens []*generator
	for i := range 3 {
		gens = append(gens, startGeneratorWith(t, ns, generatorOptions{extra: []string{"--ingress-class", ns,
			"--publish-address", fmt.Sprintf("192.0.2.%d", i+1), "--election-namespace", ns, "--election-id", "status",
			"--election-lease-duration", "3s"}}))
	}
	// status returns the Ingress's one published address and its
	// resource version.
	status := func(name string) (string, string) {
		ing, err := client.NetworkingV1().Ingresses(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var addrs []string
		for _, lb := range ing.Status.LoadBalancer.Ingress {
			addrs = append(addrs, lb.IP)
		}
		return strings.Join(addrs, ","), ing.ResourceVersion
	}
	holder := func() string {
		l, err := client.CoordinationV1().Leases(ns).Get(context.Background(), "status", metav1.GetOptions{})
		if err != nil {
			return ""
		}
		return ptr.Deref(l.Spec.HolderIdentity, "")
	}
	// leader returns the index of the one generator that says it leads.
	leader := func() (int, error) {
		var leaders []int
		for i, g := range gens {
			if g.killed {
				continue
			}
			if g.metric(t, "ingress_status_leader") == 1 {
				leaders = append(leaders, i)
			}
		}
		if len(leaders) != 1 {
			return -1, fmt.Errorf("leaders %v, want one", leaders)
		}
		return leaders[0], nil
	}
	first := -1
	eventually(t, 30*time.Second, func() error {
		var err error
		if first, err = leader(); err != nil {
			return err
		}
		if addr, _ := status("front"); addr != fmt.Sprintf("192.0.2.%d", first+1) {
			return fmt.Errorf("status %q, leader %d", addr, first)
		}
		return nil
	})
	_, rv := status("front")
	if h := holder(); h == "" {
		t.Error("no holder of the Lease")
	}
	// A second Ingress: published by the leader; the first one's status
	// was written once, by the leader only.
	createIngress(t, ns, ingressObject("second", ptr.To(ns), "web"))
	eventually(t, 15*time.Second, func() error {
		if addr, _ := status("second"); addr != fmt.Sprintf("192.0.2.%d", first+1) {
			return fmt.Errorf("second's status %q", addr)
		}
		return nil
	})
	if _, now := status("front"); now != rv {
		t.Errorf("front changed after its status was published (resource version %s, then %s)", rv, now)
	}
	var updates float64
	for _, g := range gens {
		updates += g.metric(t, "ingress_status_updates_total")
	}
	if updates != 2 {
		t.Errorf("%v status updates by the replicas, want 2 (one per Ingress)", updates)
	}

	// The leader dies: another one takes over within the Lease's
	// duration, and publishes its address.
	before := holder()
	gens[first].kill()
	second := -1
	eventually(t, 30*time.Second, func() error {
		var err error
		if second, err = leader(); err != nil {
			return err
		}
		want := fmt.Sprintf("192.0.2.%d", second+1)
		for _, name := range []string{"front", "second"} {
			if addr, _ := status(name); addr != want {
				return fmt.Errorf("%s's status %q, want %s", name, addr, want)
			}
		}
		if h := holder(); h == before || h == "" {
			return fmt.Errorf("the Lease is still held by %q", h)
		}
		return nil
	})
	if second == first {
		t.Errorf("the killed replica %d still leads", first)
	}
	if leaders := slices.IndexFunc(gens, func(g *generator) bool { return !g.killed && g.metric(t, "ingress_status_leader") == 1 }); leaders != second {
		t.Errorf("leader %d, want %d", leaders, second)
	}

	// second's class is taken off (and ours is not the default): the
	// leader clears its status; front keeps its own.
	patchIngress(t, ns, "second", `{"spec":{"ingressClassName":null}}`)
	want := fmt.Sprintf("192.0.2.%d", second+1)
	eventually(t, 15*time.Second, func() error {
		if addr, _ := status("second"); addr != "" {
			return fmt.Errorf("second's status %q, want it cleared", addr)
		}
		return nil
	})
	if addr, _ := status("front"); addr != want {
		t.Errorf("front's status %q, want %s", addr, want)
	}
}

// patchIngress applies a merge patch to an Ingress.
func patchIngress(t *testing.T, ns, name, patch string) {
	t.Helper()
	if _, err := client.NetworkingV1().Ingresses(ns).Patch(context.Background(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatalf("patch Ingress %s: %v", name, err)
	}
}
