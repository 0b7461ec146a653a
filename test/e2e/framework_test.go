//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controlplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// newNamespace creates a namespace for one test and deletes it afterwards.
func newNamespace(t *testing.T) string {
	t.Helper()
	return newNamespaceIn(t, client)
}

// newNamespaceIn is newNamespace on the API server of c.
func newNamespaceIn(t *testing.T, c kubernetes.Interface) string {
	t.Helper()
	ns, err := c.CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	t.Cleanup(func() {
		_ = c.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{})
	})
	return ns.Name
}

// ips hands out the backends' addresses.
var ips testbed.IPs

func nextIP() netip.Addr   { return ips.NextIPv4() }
func nextIPv6() netip.Addr { return ips.NextIPv6() }

// startBackend runs a testbed.Backend on addr until the test ends.
func startBackend(t *testing.T, name string, addr netip.AddrPort) netip.AddrPort {
	t.Helper()
	b, err := testbed.StartBackend(name, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Addr
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
var exposed = testbed.ExposedLabels

func httpPort(name string, port int32) corev1.ServicePort { return testbed.TCPPort(name, port) }

func createService(t *testing.T, ns string, s service) *corev1.Service {
	t.Helper()
	return createServiceIn(t, client, ns, s)
}

// createServiceIn is createService on the API server of c.
func createServiceIn(t *testing.T, c kubernetes.Interface, ns string, s service) *corev1.Service {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: s.name, Labels: s.labels, Annotations: s.annotations},
		Spec:       corev1.ServiceSpec{Ports: s.ports},
	}
	if s.headless {
		svc.Spec.ClusterIP = corev1.ClusterIPNone
	}
	created, err := c.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create service %s: %v", s.name, err)
	}
	return created
}

type (
	endpoint  = testbed.Endpoint
	slicePort = testbed.SlicePort
)

func createSlice(t *testing.T, ns, svcName string, ports []slicePort, eps ...endpoint) {
	t.Helper()
	createSliceIn(t, client, ns, svcName, ports, eps...)
}

// createSliceIn is createSlice on the API server of c.
func createSliceIn(t *testing.T, c kubernetes.Interface, ns, svcName string, ports []slicePort, eps ...endpoint) *discoveryv1.EndpointSlice {
	t.Helper()
	s := testbed.EndpointSlice(svcName, ports, eps...)
	created, err := c.DiscoveryV1().EndpointSlices(ns).Create(context.Background(), s, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create endpointslice for %s: %v", svcName, err)
	}
	return created
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

// startNginx starts a testbed.Nginx that includes confDir/*.conf and
// answers on 127.0.0.1:port, and stops it, by its PID, when the test ends.
func startNginx(t *testing.T, confDir string, port int) *testbed.Nginx {
	t.Helper()
	n, err := testbed.StartNginx(nginxBin, t.TempDir(), confDir, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			t.Logf("nginx log:\n%s", n.Log())
		}
	})
	return n
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
	status, body, err := tryGet(port, host, path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", host, path, err)
	}
	return status, body
}

// tryGet is get that returns its error.
func tryGet(port int, host, path string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:"+strconv.Itoa(port)+path, nil)
	if err != nil {
		return 0, "", err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func freePort(t *testing.T) int {
	t.Helper()
	port, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// sp is a slice port.
func sp(name string, port int32) slicePort { return slicePort{Name: name, Port: port} }

// daemon is a long-running kube-nginx-sync process started by a test.
type daemon struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
	// killed is set by kill: the process is expected to be gone.
	killed bool
}

// startDaemon starts kube-nginx-sync with args in the background. At the
// end of the test it is stopped with SIGTERM, by its PID, and must exit 0.
func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{logPath: filepath.Join(t.TempDir(), "kube-nginx-sync.log"), done: make(chan struct{})}
	logFile, err := os.Create(d.logPath)
	if err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(binary, args...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); logFile.Close(); close(d.done) }()
	t.Cleanup(func() {
		if d.killed {
			if t.Failed() {
				t.Logf("kube-nginx-sync %s (killed by the test) log:\n%s", args[0], d.log())
			}
			return
		}
		// reload and run stop nginx gracefully: up to --shutdown-timeout
		// (25 s), then SIGTERM, then SIGKILL 5 s later.
		const limit = 40 * time.Second
		stopping := time.Now()
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.done:
			if d.err != nil {
				t.Errorf("kube-nginx-sync %s exited after SIGTERM: %v", args[0], d.err)
			}
			if took := time.Since(stopping); took > 5*time.Second {
				t.Logf("kube-nginx-sync %s took %s to stop after SIGTERM", args[0], took.Round(time.Millisecond))
			}
		case <-time.After(limit):
			ps, _ := exec.Command("ps", "-eo", "pid,ppid,stat,wchan:20,etime,cmd").CombinedOutput()
			t.Logf("processes when %s did not stop:\n%s", args[0], ps)
			_ = d.cmd.Process.Kill()
			<-d.done
			t.Errorf("kube-nginx-sync %s did not stop within %s of SIGTERM", args[0], limit)
		}
		if t.Failed() {
			t.Logf("kube-nginx-sync %s log:\n%s", args[0], d.log())
		}
	})
	return d
}

// kill ends the process with SIGKILL, by its PID, and waits until it is
// gone; the test's end then expects nothing more of it.
func (d *daemon) kill() {
	_ = d.cmd.Process.Kill()
	<-d.done
	d.killed = true
}

func (d *daemon) log() string {
	b, _ := os.ReadFile(d.logPath)
	return string(b)
}

// pollEvery is how often eventually looks.
const pollEvery = 20 * time.Millisecond

// eventually calls check until it returns nil, failing the test with its
// last error after timeout.
func eventually(t *testing.T, timeout time.Duration, check func() error) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), pollEvery, timeout, true, func(context.Context) (bool, error) {
		last = check()
		return last == nil, nil
	})
	if err != nil {
		t.Fatalf("not so after %s: %v", timeout, last)
	}
}

// consistently calls check every 100 ms for d, failing the test at the
// first error. It is for a fault that lasts a given time (an outage), not
// for waiting: a test that waits for something waits for it with
// eventually.
func consistently(t *testing.T, d time.Duration, check func() error) {
	t.Helper()
	var failed error
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, d, true, func(context.Context) (bool, error) {
		failed = check()
		return failed != nil, nil
	})
	if err == nil {
		t.Fatalf("not so all along %s: %v", d, failed)
	}
}

// httpStatus returns the status of GET url, or 0 when it cannot connect.
func httpStatus(url string) int {
	resp, err := httpClient.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// metric reads one series (a name, with its labels if it has any) from a
// /metrics endpoint.
func metric(t *testing.T, listen, name string) float64 {
	t.Helper()
	v, ok := scrape(t, listen)[name]
	if !ok {
		t.Fatalf("metric %s not found", name)
	}
	return v
}

// scrape reads every series of a /metrics endpoint at once, by name with
// its labels as written there.
func scrape(t *testing.T, listen string) map[string]float64 {
	t.Helper()
	resp, err := httpClient.Get("http://" + listen + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	series := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		f, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric %s: %v", line[:i], err)
		}
		series[line[:i]] = f
	}
	return series
}

// createMany creates n exposed Services named svc-00000 and up, each with
// one EndpointSlice of endpointsEach ready endpoints, with workers
// concurrent clients, as fast as the API server takes them.
func createMany(t *testing.T, ns string, n, endpointsEach, workers int) {
	t.Helper()
	var wg sync.WaitGroup
	work := make(chan int)
	for range workers {
		wg.Go(func() {
			ctx := context.Background()
			for i := range work {
				name := fmt.Sprintf("svc-%05d", i)
				svc := &corev1.Service{
					ObjectMeta: metav1.ObjectMeta{Name: name, Labels: exposed},
					Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{httpPort("http", 80)}},
				}
				if _, err := client.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
					t.Errorf("create %s: %v", name, err)
					continue
				}
				var eps []endpoint
				for j := range endpointsEach {
					eps = append(eps, endpoint{Addr: netip.AddrFrom4([4]byte{198, 18, byte(200 + j), byte(1 + i%250)})})
				}
				slice := testbed.EndpointSlice(name, []slicePort{sp("http", 8080)}, eps...)
				if _, err := client.DiscoveryV1().EndpointSlices(ns).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
					t.Errorf("create slice of %s: %v", name, err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// startControlPlane starts a private etcd and kube-apiserver for one test
// (for faults that would disturb the shared one), with extra arguments for
// kube-apiserver, and stops both, by their PIDs, when the test ends.
func startControlPlane(t *testing.T, apiserverArgs ...string) (*controlplane.ControlPlane, kubernetes.Interface) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	dir := t.TempDir()
	cp, err := controlplane.Start(ctx, controlplane.Options{BinDir: os.Getenv("KNS_CONTROLPLANE_BIN"), WorkDir: dir, APIServerArgs: apiserverArgs})
	if err != nil {
		t.Fatalf("start a private control plane: %v", err)
	}
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("stop the private control plane: %v", err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "kube-apiserver.log"))
			if len(b) > 4000 {
				b = b[len(b)-4000:]
			}
			t.Logf("private kube-apiserver's log ends:\n%s", b)
		}
	})
	c, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("private control plane ready in %s", time.Since(start).Round(time.Millisecond))
	return cp, c
}
