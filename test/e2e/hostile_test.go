//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// warningEvents lists the Warning Events with reason on a Service.
func warningEvents(t *testing.T, ns, name, reason string) []corev1.Event {
	t.Helper()
	list, err := client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + name + ",reason=" + reason + ",type=Warning"})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func explain(t *testing.T, g *generator, ref string, extra ...string) string {
	t.Helper()
	res := runBinary(t, append(append([]string{"explain", "--kubeconfig", cluster.Kubeconfig}, g.selectionFlags()...), append(extra, ref)...)...)
	if res.code != 0 {
		t.Fatalf("explain %s exited %d: %s", ref, res.code, res.stderr)
	}
	return res.stdout
}

// TestHostileAnnotations: a Service with an injection attempt in each
// annotation is left out with a Warning Event saying why, and a good
// Service created after them is routed; explain gives each reason.
func TestHostileAnnotations(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	g := startGenerator(t, ns)
	attempts := map[string]map[string]string{
		"evil-host":     {"kube-nginx-sync.io/host": "a.example.com;\n} server { listen 80; location / { return 200 pwned; }"},
		"evil-path":     {"kube-nginx-sync.io/path": "/x { return 200 $host; } location /y"},
		"evil-port":     {"kube-nginx-sync.io/port": "http; include /etc/passwd"},
		"evil-upstream": {"kube-nginx-sync.io/upstream": "endpoints\"; proxy_pass http://10.0.0.1"},
		"evil-strip":    {"kube-nginx-sync.io/strip-prefix": "true # }"},
		"evil-unknown":  {"kube-nginx-sync.io/snippet": "return 200 pwned;"},
	}
	for name, ann := range attempts {
		createService(t, ns, service{name: name, labels: exposed, annotations: ann, ports: []corev1.ServicePort{httpPort("http", 80)}})
		createSlice(t, ns, name, []slicePort{sp("http", 8080)}, endpoint{Addr: nextIP()})
	}
	createService(t, ns, service{name: "good", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	config := g.inSync(t)
	mustContain(t, config, "location /"+ns+"/good/ {")
	mustNotContain(t, config, "evil", "pwned", "passwd", "10.0.0.1")

	for name, ann := range attempts {
		eventually(t, 15*time.Second, func() error {
			if len(warningEvents(t, ns, name, "InvalidAnnotation")) == 0 {
				return fmt.Errorf("no InvalidAnnotation Warning Event on %s", name)
			}
			return nil
		})
		out := explain(t, g, ns+"/"+name)
		for key := range ann {
			if !strings.Contains(out, "not routed: InvalidAnnotation: annotation "+key+"=") {
				t.Errorf("explain %s does not name %s:\n%s", name, key, out)
			}
		}
	}
	if out := explain(t, g, ns+"/good"); !strings.Contains(out, "routed: host (default server) path /"+ns+"/good/ -> port http (endpoints, prefix stripped): no ready endpoints") {
		t.Errorf("explain good:\n%s", out)
	}
}

// TestTemplateBreakingOnOneService: a user's template that only works
// for numeric Service ports makes nginx -t refuse the config of a Service
// with a named port; that Service alone is left out (RefusedByNginx, with
// nginx's message, as an Event and in explain) and the others are served.
func TestTemplateBreakingOnOneService(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tmpl := filepath.Join(t.TempDir(), "numeric-ports.tmpl")
	if err := os.WriteFile(tmpl, []byte(`{{- range .Servers}}
server {
    listen 127.0.0.1:18080;
{{- range .Locations}}
    location {{.Path}} { proxy_pass http://127.0.0.1:{{.Service.Port}}; }
{{- end}}
}
{{- end}}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--template", tmpl, "--validate"}
	g := startGenerator(t, ns, flags...)
	for _, name := range []string{"first", "second", "third"} {
		createService(t, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("", 8080)}})
	}
	createService(t, ns, service{name: "named", labels: exposed, ports: []corev1.ServicePort{httpPort("web", 8080)}})
	eventually(t, 20*time.Second, func() error {
		b, err := os.ReadFile(g.output)
		if err != nil {
			return err
		}
		for _, name := range []string{"first", "second", "third"} {
			if !strings.Contains(string(b), "location /"+ns+"/"+name+"/ ") {
				return fmt.Errorf("%s is not routed:\n%s", name, b)
			}
		}
		if strings.Contains(string(b), "/named/") {
			return fmt.Errorf("named is routed:\n%s", b)
		}
		return nil
	})
	eventually(t, 15*time.Second, func() error {
		evs := warningEvents(t, ns, "named", "RefusedByNginx")
		if len(evs) == 0 || !strings.Contains(evs[0].Message, "invalid port") {
			return fmt.Errorf("no RefusedByNginx Warning Event with nginx's message on named: %v", evs)
		}
		return nil
	})
	if out := explain(t, g, ns+"/named", flags...); !strings.Contains(out, "not routed: RefusedByNginx:") || !strings.Contains(out, "invalid port") {
		t.Errorf("explain named:\n%s", out)
	}
	if out := explain(t, g, ns+"/first", flags...); !strings.Contains(out, "routed: host (default server) path /"+ns+"/first/") {
		t.Errorf("explain first:\n%s", out)
	}
}

// TestExplainReasons: explain's other answers: outside the selector, a
// lost conflict, no ready endpoint.
func TestExplainReasons(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	g := &generator{ns: ns}
	createService(t, ns, service{name: "unlabelled", ports: []corev1.ServicePort{httpPort("http", 80)}})
	for _, name := range []string{"claim-a", "claim-b"} {
		createService(t, ns, service{name: name, labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
			annotations: map[string]string{"kube-nginx-sync.io/host": "c.example.test", "kube-nginx-sync.io/path": "/"}})
	}
	cases := map[string]string{
		"unlabelled": "not routed: it has no labels, which do not match the selector \"kube-nginx-sync.io/expose=true\"",
		"claim-b":    "not routed: port http: RouteConflict: path / on c.example.test is already routed to " + ns + "/claim-a:http",
		"claim-a":    "routed: host c.example.test path / -> port http (endpoints, prefix stripped): no ready endpoints: answers 503",
	}
	for name, want := range cases {
		if out := explain(t, g, ns+"/"+name); !strings.Contains(out, want) {
			t.Errorf("explain %s lacks %q:\n%s", name, want, out)
		}
	}
	res := runBinary(t, "explain", "--kubeconfig", cluster.Kubeconfig, ns+"/missing")
	if res.code != 1 || !strings.Contains(res.stdout, "not found") {
		t.Errorf("explain of a missing Service: exit %d, %q", res.code, res.stdout)
	}
}
