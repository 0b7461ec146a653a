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
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestDeployIngress: the ingress overlay and the chart's ingress values
// pass a server-side dry run; their RBAC, applied for real, grants what
// the Ingresses need and nothing more (no Secret, no write to an Ingress
// but its status, the one IngressClass and the one Lease by name); and the
// binary, with those rights only, routes an Ingress, tells its owner, and
// publishes its status. The test works in a namespace of its own in place
// of kube-nginx-sync's (TestDeployManifests uses that one).
func TestDeployIngress(t *testing.T) {
	t.Parallel()
	kubectl, helm := tool(t, "kubectl"), tool(t, "helm")
	admin := []string{"--kubeconfig", cluster.Kubeconfig}
	home := newNamespace(t) // kube-nginx-sync's own namespace, here
	ctx := context.Background()

	manifests := map[string]string{}
	out, _ := runTool(t, nil, false, kubectl, "kustomize", "../../deploy/overlays/ingress")
	manifests["kustomize overlays/ingress"] = strings.ReplaceAll(out, "namespace: "+deployNamespace, "namespace: "+home)
	for name, values := range map[string][]string{
		"ingress":            {"--set", "ingress.className=kns-e2e"},
		"ingress default":    {"--set", "ingress.className=kns-e2e", "--set", "ingress.default=true", "--set", "mode=run"},
		"ingress addresses":  {"--set", "ingress.className=kns-e2e", "--set", "ingress.publishAddresses={192.0.2.1,lb.example.com}"},
		"ingress namespaced": {"--set", "ingress.className=kns-e2e", "--set", "namespaces={" + home + "}", "--set", "ingress.createClass=false"},
		"ingress no status":  {"--set", "ingress.className=kns-e2e", "--set", "ingress.publishService=false"},
	} {
		args := append([]string{"template", "kns", "../../deploy/helm/kube-nginx-sync", "--namespace", home}, values...)
		out, _ := runTool(t, nil, false, helm, args...)
		manifests["helm "+name] = out
	}
	for name, m := range manifests {
		checkContainerArgs(t, name, m)
		// --force-conflicts: TestDeployManifests, in parallel, applies the
		// base's ClusterRoleBinding for real, with kube-nginx-sync's
		// namespace in its subjects where these have this test's (a dry
		// run changes nothing).
		out, err := runTool(t, []byte(m), true, kubectl, append(admin, "apply",
			"--server-side", "--dry-run=server", "--force-conflicts", "--field-manager=e2e", "-f", "-")...)
		if err != nil {
			t.Errorf("%s: server-side dry run refused it: %v\n%s", name, err, out)
		}
	}
	if m := manifests["helm ingress no status"]; strings.Contains(m, "--publish-") || strings.Contains(m, "leases") {
		t.Error("with publishService false and no addresses, the chart still publishes the status")
	}
	if out, _ := runTool(t, nil, false, helm, "template", "kns", "../../deploy/helm/kube-nginx-sync"); strings.Contains(out, "ingress") {
		t.Error("without ingress.className, the chart still has something of Ingresses")
	}

	// The identity and its rights, for real: the base's ClusterRole and the
	// overlay's RBAC, in this test's namespace.
	runTool(t, nil, false, kubectl, append(admin, "apply", "-f", "../../deploy/base/clusterrole.yaml")...)
	rbac, err := os.ReadFile("../../deploy/overlays/ingress/rbac.yaml")
	if err != nil {
		t.Fatal(err)
	}
	runTool(t, []byte(strings.ReplaceAll(string(rbac), "namespace: "+deployNamespace, "namespace: "+home)), false, kubectl,
		append(admin, "apply", "-f", "-")...)
	t.Cleanup(func() {
		_ = client.RbacV1().ClusterRoleBindings().Delete(ctx, "kube-nginx-sync-ingress", metav1.DeleteOptions{})
		_ = client.RbacV1().ClusterRoles().Delete(ctx, "kube-nginx-sync-ingress", metav1.DeleteOptions{})
	})
	if _, err := client.CoreV1().ServiceAccounts(home).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kube-nginx-sync"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	baseBinding := "kube-nginx-sync-" + home
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: baseBinding},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "kube-nginx-sync"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kube-nginx-sync", Namespace: home}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.RbacV1().ClusterRoleBindings().Delete(ctx, baseBinding, metav1.DeleteOptions{}) })

	as := "--as=system:serviceaccount:" + home + ":kube-nginx-sync"
	apps := newNamespace(t)
	for _, c := range []struct {
		args    string
		allowed bool
	}{
		{"list ingresses.networking.k8s.io -n " + apps, true},
		{"watch ingresses.networking.k8s.io -n " + apps, true},
		{"update ingresses.networking.k8s.io --subresource=status -n " + apps, true},
		{"update ingresses.networking.k8s.io -n " + apps, false},
		{"patch ingresses.networking.k8s.io --subresource=status -n " + apps, false},
		{"delete ingresses.networking.k8s.io -n " + apps, false},
		{"create ingresses.networking.k8s.io -n " + apps, false},
		{"get ingressclasses.networking.k8s.io/kube-nginx-sync", true},
		{"list ingressclasses.networking.k8s.io/kube-nginx-sync", true},
		{"watch ingressclasses.networking.k8s.io/kube-nginx-sync", true},
		{"list ingressclasses.networking.k8s.io", false},
		{"get ingressclasses.networking.k8s.io/nginx", false},
		{"update ingressclasses.networking.k8s.io/kube-nginx-sync", false},
		{"create leases.coordination.k8s.io -n " + home, true},
		{"update leases.coordination.k8s.io/kube-nginx-sync-ingress-status -n " + home, true},
		{"update leases.coordination.k8s.io/kube-controller-manager -n " + home, false},
		{"create leases.coordination.k8s.io -n " + apps, false},
		// Secrets: read by the base's ClusterRole for HTTPS (deploy_test.go
		// holds its table); the overlay adds no right on them.
		{"get secrets -n " + apps, true},
		{"update secrets -n " + apps, false},
		{"create secrets -n " + home, false},
		{"update services -n " + apps, false},
	} {
		out, err := runTool(t, nil, true, kubectl, append(append(admin, "auth", "can-i"), append(strings.Fields(c.args), as)...)...)
		if got := err == nil; got != c.allowed {
			t.Errorf("can-i %s: %s, want allowed=%v", c.args, strings.TrimSpace(out), c.allowed)
		}
	}

	// The binary, as that ServiceAccount: it reads the one IngressClass
	// and the Ingresses, routes them, tells an Ingress's owner, and
	// publishes the status from the Lease's holder.
	createIngressClass(t, "kube-nginx-sync", "")
	ingressBackend(t, apps, "web")
	bad := ingressObject("bad", ptr.To("kube-nginx-sync"), "", ingressRule("bad."+apps+".test", "ImplementationSpecific:/a;b=web"))
	createIngress(t, apps, bad)
	createIngress(t, apps, ingressObject("front", ptr.To("kube-nginx-sync"), "", ingressRule("front."+apps+".test", "Prefix:/=web")))
	kubeconfig := serviceAccountKubeconfig(t, home)
	output := filepath.Join(t.TempDir(), "default.conf")
	res := runBinary(t, "render", "--kubeconfig", kubeconfig, "--namespace", apps, "--output", output, "--ingress-class", "kube-nginx-sync")
	if res.code != 0 {
		t.Fatalf("render as the ServiceAccount: %s", res.stderr)
	}
	config, _ := os.ReadFile(output)
	mustContain(t, string(config), "server_name front."+apps+".test;")
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	startDaemon(t, "watch", "--kubeconfig", kubeconfig, "--namespace", apps, "--output", output, "--listen", listen,
		"--ingress-class", "kube-nginx-sync", "--publish-address", "192.0.2.9", "--election-namespace", home)
	eventually(t, 30*time.Second, func() error {
		if code := httpStatus("http://" + listen + "/readyz"); code != 200 {
			return fmt.Errorf("watch as the ServiceAccount: /readyz %d", code)
		}
		if len(warningEvents(t, apps, "bad", "InvalidIngress")) == 0 {
			return fmt.Errorf("no Warning Event on the Ingress from the ServiceAccount")
		}
		ing, err := client.NetworkingV1().Ingresses(apps).Get(ctx, "front", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if lb := ing.Status.LoadBalancer.Ingress; len(lb) != 1 || lb[0].IP != "192.0.2.9" {
			return fmt.Errorf("front's status %+v", lb)
		}
		return nil
	})
}
