//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controlplane"
)

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	ns, err := client.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = client.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

var lastBackendIP atomic.Uint32

// nextIP hands out distinct addresses of 198.18.0.0/16 (local inside the
// test's network namespace), one per backend.
func nextIP() netip.Addr {
	n := lastBackendIP.Add(1)
	return netip.AddrFrom4([4]byte{198, 18, byte(1 + n/250), byte(1 + n%250)})
}

var lastBackendIPv6 atomic.Uint32

// nextIPv6 hands out distinct addresses of 2001:db8::/64.
func nextIPv6() netip.Addr {
	n := lastBackendIPv6.Add(1)
	b := netip.MustParseAddr("2001:db8::").As16()
	b[14], b[15] = byte(n>>8), byte(n)
	return netip.AddrFrom16(b)
}

// startBackend runs an HTTP server on addr that answers every request with
// "<name> <path>", so a test can tell which backend served it and what path
// it saw. It is stopped when the test ends.
func startBackend(t *testing.T, name string, addr netip.AddrPort) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatalf("backend %s: %v", name, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return netip.MustParseAddrPort(l.Addr().String())
}

// service describes a Service to create. Services are selector-less: the
// test creates their EndpointSlices, as there is no controller manager.
type service struct {
	name        string
	labels      map[string]string
	annotations map[string]string
	ports       []corev1.ServicePort
	headless    bool
}

// exposed is the label that the default selector wants.
var exposed = map[string]string{"kube-nginx-sync.io/expose": "true"}

func httpPort(name string, port int32) corev1.ServicePort {
	return corev1.ServicePort{Name: name, Port: port, Protocol: corev1.ProtocolTCP}
}

func createService(t *testing.T, ns string, s service) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Labels: s.labels, Annotations: s.annotations},
		Spec:       corev1.ServiceSpec{Ports: s.ports},
	}
	if s.headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	created, err := client.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", s.name, err)
	}
	return created
}

// endpoint is one endpoint of a slice.
type endpoint struct {
	addr        netip.Addr
	notReady    bool
	terminating bool
}

// slicePort maps a Service port name to the port the slice's endpoints
// listen on.
type slicePort struct {
	name string
	port int32
}

func createSlice(t *testing.T, ns, svcName string, ports []slicePort, eps ...endpoint) {
	t.Helper()
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: svcName + "-",
			Labels:       map[string]string{discoveryv1.LabelServiceName: svcName},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for _, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{
			Name: ptr.To(p.name), Port: ptr.To(p.port), Protocol: ptr.To(corev1.ProtocolTCP),
		})
	}
	for _, ep := range eps {
		if ep.addr.Is6() {
			s.AddressType = discoveryv1.AddressTypeIPv6
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{ep.addr.String()},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(!ep.notReady && !ep.terminating),
				Serving:     ptr.To(!ep.notReady),
				Terminating: ptr.To(ep.terminating),
			},
		})
	}
	if _, err := client.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), s, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create endpointslice for %s: %v", svcName, err)
	}
}

// result is what a run of the kube-nginx-sync binary did.
type result struct {
	code   int
	stdout string
	stderr string
}

// runBinary runs kube-nginx-sync with args and waits for it.
func runBinary(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	default:
		t.Fatalf("run kube-nginx-sync: %v", err)
	}
	return res
}

// nginxInstance is a test's own nginx: own prefix, pid file and port.
type nginxInstance struct {
	prefix string
	cmd    *exec.Cmd
	done   chan struct{}
}

// startNginx starts nginx with a main config that includes confDir/*.conf
// and waits until it answers on 127.0.0.1:port. It is stopped, by its PID,
// when the test ends.
func startNginx(t *testing.T, confDir string, port int) *nginxInstance {
	t.Helper()
	prefix := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log stderr notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    include %[2]s/*.conf;
}
`, prefix, confDir)
	mainConf := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(mainConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(prefix, "nginx.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginxBin, "-p", prefix+"/", "-c", mainConf, "-e", "stderr")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	n := &nginxInstance{prefix: prefix, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logFile.Close(); close(n.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-n.done
		}
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(prefix, "nginx.log"))
			t.Logf("nginx log:\n%s", log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			c.Close()
			return n
		}
		select {
		case <-n.done:
			log, _ := os.ReadFile(filepath.Join(prefix, "nginx.log"))
			t.Fatalf("nginx exited at start:\n%s", log)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not answer on port %d: %v", port, err)
		}
	}
}

var httpClient = &http.Client{
	Timeout: 5 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// get sends GET http://127.0.0.1:port<path> with the given Host header.
func get(t *testing.T, port int, host, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: read body: %v", host, path, err)
	}
	return resp.StatusCode, string(body)
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}
