package controlplane

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// DefaultServiceCIDR is the ClusterIP range. Inside the test network
// namespace the whole of 198.18.0.0/15 is local, so ClusterIPs from this
// range are addresses a test backend can listen on.
const DefaultServiceCIDR = "198.19.0.0/16"

// Options configure Start.
type Options struct {
	// BinDir holds the etcd and kube-apiserver binaries.
	BinDir string
	// WorkDir receives etcd's data, certificates, the kubeconfig and the
	// processes' logs; it must exist.
	WorkDir string
	// ServiceCIDR is the ClusterIP range; empty means DefaultServiceCIDR.
	ServiceCIDR string
	// APIServerArgs are added to kube-apiserver's arguments (a later flag
	// overrides an earlier one), such as --watch-cache=false.
	APIServerArgs []string
}

// ControlPlane is a running etcd and kube-apiserver.
type ControlPlane struct {
	// Kubeconfig is the path of a kubeconfig with cluster-admin rights.
	Kubeconfig string
	// Config is the same as a rest.Config.
	Config *rest.Config

	opts      Options
	etcd      *process
	apiserver *process
	etcdURL   string
	port      int
}

// Start starts etcd, then kube-apiserver, and waits until the API server is
// ready. On error, whatever it started is stopped.
func Start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	if opts.ServiceCIDR == "" {
		opts.ServiceCIDR = DefaultServiceCIDR
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(opts.BinDir, name)); err != nil {
			return nil, fmt.Errorf("control plane binary missing (build it with hack/control-plane.sh): %w", err)
		}
	}
	cp = &ControlPlane{opts: opts}
	defer func() {
		if err != nil {
			cp.Stop()
		}
	}()
	if err := cp.startEtcd(ctx); err != nil {
		return nil, err
	}
	if err := cp.writeCredentials(); err != nil {
		return nil, err
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	return cp, nil
}

func (cp *ControlPlane) path(name string) string { return filepath.Join(cp.opts.WorkDir, name) }

func (cp *ControlPlane) startEtcd(ctx context.Context) error {
	clientPort, err := FreePort()
	if err != nil {
		return err
	}
	peerPort, err := FreePort()
	if err != nil {
		return err
	}
	cp.etcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	cp.etcd, err = startProcess(filepath.Join(cp.opts.BinDir, "etcd"), cp.path("etcd.log"),
		"--name=default",
		"--data-dir="+cp.path("etcd-data"),
		"--listen-client-urls="+cp.etcdURL,
		"--advertise-client-urls="+cp.etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// Tests throw the data away; fsync would only slow them.
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	return waitFor(ctx, 30*time.Second, cp.etcd, func() error {
		resp, err := http.Get(cp.etcdURL + "/health")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("etcd health: %s", resp.Status)
		}
		return nil
	})
}

// token is the admin's bearer token; the API server only listens on
// loopback inside the test's own network namespace.
const adminToken = "kube-nginx-sync-test-admin"

func (cp *ControlPlane) writeCredentials() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("service account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return fmt.Errorf("service account key: %w", err)
	}
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": []byte(adminToken + ",admin,admin-uid,system:masters\n"),
	}
	for name, data := range files {
		if err := os.WriteFile(cp.path(name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the
// same port and etcd, and waits until it is ready.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	if cp.port == 0 {
		port, err := FreePort()
		if err != nil {
			return err
		}
		cp.port = port
	}
	var err error
	args := []string{
		"--etcd-servers=" + cp.etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(cp.port),
		"--cert-dir=" + cp.path("certs"),
		"--service-cluster-ip-range=" + cp.opts.ServiceCIDR,
		"--endpoint-reconciler-type=none",
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + cp.path("sa.pub"),
		"--service-account-signing-key-file=" + cp.path("sa.key"),
		"--token-auth-file=" + cp.path("tokens.csv"),
		"--authorization-mode=RBAC",
		"--enable-priority-and-fairness=false",
		// Close open watches at shutdown instead of waiting for them, so a
		// test that stops the API server does not wait 15 s.
		"--shutdown-watch-termination-grace-period=1s",
	}
	cp.apiserver, err = startProcess(filepath.Join(cp.opts.BinDir, "kube-apiserver"), cp.path("kube-apiserver.log"),
		append(args, cp.opts.APIServerArgs...)...)
	if err != nil {
		return err
	}
	cp.Config = &rest.Config{
		Host:            "https://127.0.0.1:" + strconv.Itoa(cp.port),
		BearerToken:     adminToken,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             200,
		Burst:           400,
	}
	if err := cp.writeKubeconfig(); err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	return waitFor(ctx, 90*time.Second, cp.apiserver, func() error {
		body, err := client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return fmt.Errorf("readyz: %w: %s", err, body)
		}
		_, err = client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// CompactEtcd compacts etcd's history up to its current revision (what the
// API server does every --etcd-compaction-interval, 5 minutes by default)
// and returns that revision. A watch that resumes from an older resource
// version, and is not served by the API server's watch cache, then ends
// with 410 Gone ("too old resource version").
func (cp *ControlPlane) CompactEtcd(ctx context.Context) (int64, error) {
	// etcd's JSON gateway: int64s are strings, keys base64.
	var status struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := cp.etcdCall(ctx, "/v3/kv/range", `{"key":"AA=="}`, &status); err != nil {
		return 0, err
	}
	rev, err := strconv.ParseInt(status.Header.Revision, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("etcd revision %q: %w", status.Header.Revision, err)
	}
	body := fmt.Sprintf(`{"revision":"%d","physical":true}`, rev)
	if err := cp.etcdCall(ctx, "/v3/kv/compaction", body, nil); err != nil {
		return 0, err
	}
	return rev, nil
}

func (cp *ControlPlane) etcdCall(ctx context.Context, path, body string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cp.etcdURL+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("etcd %s: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %s", path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("etcd %s: %w: %s", path, err, data)
		}
	}
	return nil
}

// StopAPIServer stops kube-apiserver only; etcd keeps its data.
func (cp *ControlPlane) StopAPIServer() error {
	err := cp.apiserver.stop()
	cp.apiserver = nil
	return err
}

func (cp *ControlPlane) writeKubeconfig() error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: cp.Config.Host, InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: adminToken}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin", Namespace: "default"}
	cfg.CurrentContext = "local"
	cp.Kubeconfig = cp.path("kubeconfig")
	return clientcmd.WriteToFile(*cfg, cp.Kubeconfig)
}

// Stop stops the API server and etcd, each by the PID it started.
func (cp *ControlPlane) Stop() error {
	var errs []error
	if cp.apiserver != nil {
		errs = append(errs, cp.apiserver.stop())
		cp.apiserver = nil
	}
	if cp.etcd != nil {
		errs = append(errs, cp.etcd.stop())
		cp.etcd = nil
	}
	return errors.Join(errs...)
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// process is a child process whose output goes to a log file.
type process struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error
}

func startProcess(bin, logPath string, args ...string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// If the test binary dies, the kernel ends its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", filepath.Base(bin), err)
	}
	p := &process{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// stop sends SIGTERM, and SIGKILL if the process has not exited after 15 s.
func (p *process) stop() error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// tail returns the end of the process's log, for error messages.
func (p *process) tail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 3000 {
		b = b[len(b)-3000:]
	}
	return string(bytes.TrimSpace(b))
}

// waitFor polls ready until it succeeds, the process exits, or timeout.
func waitFor(ctx context.Context, timeout time.Duration, p *process, ready func() error) error {
	name := filepath.Base(p.cmd.Path)
	deadline := time.Now().Add(timeout)
	for {
		err := ready()
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v) before it was ready; its log ends:\n%s", name, p.err, p.tail())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %v; its log ends:\n%s", name, timeout, err, p.tail())
		}
	}
}

// RandomSuffix returns n random hex characters, for unique names.
func RandomSuffix(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
