//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// tool is a client binary that hack/control-plane.sh built beside the
// control plane (kubectl, helm).
func tool(t *testing.T, name string) string {
	t.Helper()
	path := filepath.Join(os.Getenv("KNS_CONTROLPLANE_BIN"), name)
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is not built (hack/control-plane.sh builds it): %v", name, err)
	}
	return path
}

// runTool runs a command with stdin and returns its output, failing the
// test on a non-zero exit unless allowFail.
func runTool(t *testing.T, stdin []byte, allowFail bool, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil && !allowFail {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(bin), strings.Join(args, " "), err, errOut.String(), out.String())
	}
	if err != nil {
		return out.String() + errOut.String(), err
	}
	return out.String(), nil
}

const deployNamespace = "kube-nginx-sync"

// TestDeployManifests: every manifest (the kustomize base and overlays,
// the Helm chart with several value sets) passes a server-side dry run on
// the real API server; the ServiceAccount and RBAC are applied for real;
// the binary, with that ServiceAccount's token, does its whole job; and it
// may do nothing beyond what it needs.
func TestDeployManifests(t *testing.T) {
	t.Parallel()
	kubectl, helm := tool(t, "kubectl"), tool(t, "helm")
	// The admin's kubeconfig, with kube-nginx-sync's namespace as the
	// default for objects that name none (helm template leaves them so).
	adminConfig := filepath.Join(t.TempDir(), "kubeconfig")
	data, err := os.ReadFile(cluster.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(adminConfig, data, 0o600); err != nil {
		t.Fatal(err)
	}
	admin := []string{"--kubeconfig", adminConfig}
	runTool(t, nil, false, kubectl, append(admin, "config", "set-context", "--current", "--namespace="+deployNamespace)...)
	ctx := context.Background()
	for _, ns := range []string{deployNamespace, "apps"} {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	manifests := map[string]string{}
	for _, dir := range []string{"base", "overlays/run", "overlays/plain-sidecar", "overlays/namespaced", "overlays/lua"} {
		out, _ := runTool(t, nil, false, kubectl, "kustomize", filepath.Join("../../deploy", dir))
		manifests["kustomize "+dir] = out
	}
	template := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(template, []byte("template: |\n  # a user's template\n  server { listen 8080; }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, values := range map[string][]string{
		"defaults":        nil,
		"run":             {"--set", "mode=run"},
		"plain sidecar":   {"--set", "nativeSidecar=false"},
		"namespaced":      {"--set", "namespaces={apps}", "--set", "validate=true", "-f", template},
		"service mode":    {"--set", "defaultUpstream=service", "--set", "debounce=50ms", "--set", "replicas=3"},
		"custom selector": {"--set", "selector=team in (a\\,b)"},
		"lua":             {"--set", "shape=lua"},
		"lua run":         {"--set", "shape=lua", "--set", "mode=run"},
		"flat":            {"--set", "shape=flat"},
		"no https":        {"--set", "httpsPort=0"},
	} {
		args := append([]string{"template", "kns", "../../deploy/helm/kube-nginx-sync", "--namespace", deployNamespace}, values...)
		out, _ := runTool(t, nil, false, helm, args...)
		manifests["helm "+name] = out
	}
	if out, err := runTool(t, nil, true, helm, "template", "kns", "../../deploy/helm/kube-nginx-sync", "--set", "shape=round"); err == nil ||
		!strings.Contains(out, `shape "round": want upstream, flat or lua`) {
		t.Errorf("helm template --set shape=round: %v, want refused:\n%s", err, out)
	}
	for name, m := range manifests {
		checkContainerArgs(t, name, m)
		checkShapeImage(t, name, m)
		checkSecretRights(t, name, m)
		out, err := runTool(t, []byte(m), true, kubectl, append(admin, "apply",
			"--server-side", "--dry-run=server", "--field-manager=e2e", "-f", "-")...)
		if err != nil {
			t.Errorf("%s: server-side dry run refused it: %v\n%s", name, err, out)
		}
	}

	// The identity and its rights, for real.
	for _, f := range []string{"serviceaccount.yaml", "clusterrole.yaml", "clusterrolebinding.yaml"} {
		runTool(t, nil, false, kubectl, append(admin, "apply", "-n", deployNamespace, "-f", filepath.Join("../../deploy/base", f))...)
	}
	as := "--as=system:serviceaccount:" + deployNamespace + ":kube-nginx-sync"
	ns := newNamespace(t)
	for _, c := range []struct {
		verb, resource string
		allowed        bool
	}{
		{"list", "services", true},
		{"watch", "services", true},
		{"get", "endpointslices.discovery.k8s.io", true},
		{"watch", "endpointslices.discovery.k8s.io", true},
		{"create", "events", true},
		{"patch", "events", true},
		// HTTPS: read Secrets (RBAC cannot narrow it to TLS ones), never
		// change them.
		{"get", "secrets", true},
		{"list", "secrets", true},
		{"watch", "secrets", true},
		{"create", "secrets", false},
		{"update", "secrets", false},
		{"patch", "secrets", false},
		{"delete", "secrets", false},
		{"list", "configmaps", false},
		{"update", "services", false},
		{"delete", "services", false},
		{"create", "endpointslices.discovery.k8s.io", false},
		{"delete", "pods", false},
		{"list", "pods", false},
		{"create", "serviceaccounts/token", false},
	} {
		out, err := runTool(t, nil, true, kubectl, append(admin, "auth", "can-i", c.verb, c.resource, "-n", ns, as)...)
		if got := err == nil; got != c.allowed {
			t.Errorf("can-i %s %s: %s, want allowed=%v", c.verb, c.resource, strings.TrimSpace(out), c.allowed)
		}
	}

	// The binary, as that ServiceAccount, does its whole job: list, watch,
	// write the config, and tell a Service's owner why it is not routed.
	kubeconfig := serviceAccountKubeconfig(t, deployNamespace)
	createService(t, ns, service{name: "web", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)}})
	createService(t, ns, service{name: "bad", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
		annotations: map[string]string{"kube-nginx-sync.io/path": "/a;b"}})
	// HTTPS, with a Secret the ServiceAccount reads.
	ca := newCA(t, "deploy test CA")
	createService(t, ns, service{name: "shop", labels: exposed, ports: []corev1.ServicePort{httpPort("http", 80)},
		annotations: map[string]string{"kube-nginx-sync.io/host": "shop.example.test", "kube-nginx-sync.io/tls-secret": "shop-tls"}})
	createSecret(t, ns, testbed.TLSSecret("shop-tls", issue(t, ca, testbed.IssueOptions{}, "shop.example.test")))
	output := filepath.Join(t.TempDir(), "default.conf")
	res := runBinary(t, "render", "--kubeconfig", kubeconfig, "--namespace", ns, "--output", output)
	if res.code != 0 {
		t.Fatalf("render as the ServiceAccount: %s", res.stderr)
	}
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startDaemon(t, "watch", "--kubeconfig", kubeconfig, "--namespace", ns, "--output", output, "--listen", listen)
	eventually(t, 20*time.Second, func() error {
		if code := httpStatus("http://" + listen + "/readyz"); code != 200 {
			return fmt.Errorf("watch as the ServiceAccount: /readyz %d", code)
		}
		if len(warningEvents(t, ns, "bad", "InvalidAnnotation")) == 0 {
			return fmt.Errorf("no Warning Event from the ServiceAccount")
		}
		return nil
	})
	config, _ := os.ReadFile(output)
	mustContain(t, string(config), "location /"+ns+"/web/ {", "listen 443 ssl http2;", "ssl_certificate ")
}

// checkSecretRights: every role of the manifests may only read Secrets
// (get, list, watch); the namespaced ones have no ClusterRole, so Secrets
// are read in the watched namespaces only; without HTTPS, none is read.
func checkSecretRights(t *testing.T, name, manifests string) {
	t.Helper()
	namespaced := strings.Contains(name, "namespaced")
	secretRules := 0
	for _, doc := range strings.Split(manifests, "\n---") {
		var role rbacv1.ClusterRole // a Role has the same fields
		if err := yaml.Unmarshal([]byte(doc), &role); err != nil || (role.Kind != "ClusterRole" && role.Kind != "Role") {
			continue
		}
		if namespaced && role.Kind == "ClusterRole" {
			t.Errorf("%s: a ClusterRole %s, in the namespaced setup", name, role.Name)
		}
		for _, r := range role.Rules {
			if !slices.Contains(r.Resources, "secrets") {
				continue
			}
			secretRules++
			if !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) || len(r.Resources) != 1 {
				t.Errorf("%s: %s %s may %v %v", name, role.Kind, role.Name, r.Verbs, r.Resources)
			}
		}
	}
	if want := !strings.Contains(name, "no https"); (secretRules > 0) != want {
		t.Errorf("%s: %d rules on Secrets; want some: %v", name, secretRules, want)
	}
}

// checkContainerArgs: the kube-nginx-sync command line of every container
// of the manifests' Deployments is one the binary accepts (parsing stops at
// the -h added at the end, after every flag is known).
func checkContainerArgs(t *testing.T, name, manifests string) {
	t.Helper()
	found := 0
	for _, doc := range strings.Split(manifests, "\n---") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		spec := d.Spec.Template.Spec
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			found++
			if res := runBinary(t, append(c.Args, "-h")...); res.code != 0 {
				t.Errorf("%s: container %s: kube-nginx-sync %s is refused: %s", name, c.Name, strings.Join(c.Args, " "), lastLine(res.stderr))
			}
		}
	}
	if found == 0 {
		t.Errorf("%s: no Deployment container found", name)
	}
}

// luaImage is the nginx image with nginx's Lua module (Dockerfile.nginx-lua).
const luaImage = "ghcr.io/kube-nginx-sync/nginx-lua:"

// checkShapeImage: in every Deployment of the manifests, the containers
// that render the config all ask for one shape, and nginx runs from the
// Lua image exactly when that shape is lua (the official image has no Lua
// module; the Lua image is only needed for it).
func checkShapeImage(t *testing.T, name, manifests string) {
	t.Helper()
	for _, doc := range strings.Split(manifests, "\n---") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		spec := d.Spec.Template.Spec
		shapes := map[string]bool{}
		var nginxImage string
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			if c.Name == "nginx" {
				nginxImage = c.Image
			}
			if len(c.Args) == 0 || c.Args[0] == "reload" {
				continue // reload renders nothing
			}
			shape := "upstream"
			for _, a := range c.Args {
				if v, ok := strings.CutPrefix(a, "--shape="); ok {
					shape = v
				}
			}
			shapes[shape] = true
		}
		if len(shapes) != 1 {
			t.Errorf("%s: the containers render %d shapes (%v), want one", name, len(shapes), shapes)
		}
		if lua := strings.HasPrefix(nginxImage, luaImage); lua != shapes["lua"] {
			t.Errorf("%s: nginx runs from %s with shapes %v: the lua shape needs the Lua image, and only it does", name, nginxImage, shapes)
		}
	}
}

// serviceAccountKubeconfig writes a kubeconfig that acts as the
// ServiceAccount kube-nginx-sync of namespace ns, with a token of an hour.
func serviceAccountKubeconfig(t *testing.T, ns string) string {
	t.Helper()
	tr, err := client.CoreV1().ServiceAccounts(ns).CreateToken(context.Background(), "kube-nginx-sync",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: sa, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: sa}}]
current-context: c
`, cluster.Config.Host, tr.Status.Token)), 0o600); err != nil {
		t.Fatal(err)
	}
	return kubeconfig
}
