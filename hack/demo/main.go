// Command demo shows kube-nginx-sync at work on this machine: it starts a
// real kube-apiserver and etcd, creates sample Services with real backends
// (one served over HTTPS with a certificate of the demo's own CA, from a
// Secret), runs `kube-nginx-sync run` (the generator and nginx), shows the
// config and what each route answers, then changes the cluster live. With -shape lua,
// nginx loads its Lua module, and the demo also replaces an endpoint and
// shows nginx serving it without a reload. Run it through `make demo`
// (ARGS='-shape lua' for the lua shape), which builds what it needs and runs
// it inside a private network namespace.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controlplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	cpBin := flag.String("controlplane", "", "folder with the etcd and kube-apiserver binaries (hack/control-plane.sh prints it)")
	binary := flag.String("binary", "bin/kube-nginx-sync", "the kube-nginx-sync binary")
	port := flag.Int("port", 8080, "port nginx listens on, on 127.0.0.1")
	statusPort := flag.Int("status-port", 8099, "port of nginx's status server, on 127.0.0.1")
	httpsPort := flag.Int("https-port", 8443, "port nginx serves HTTPS on, on 127.0.0.1")
	listenPort := flag.Int("listen-port", 9090, "port of kube-nginx-sync's /metrics, /healthz and /readyz, on 127.0.0.1")
	once := flag.Bool("once", false, "stop after showing the routes instead of waiting for Ctrl-C")
	shape := flag.String("shape", "upstream", "shape of the config, passed to run --shape: upstream, flat or lua (nginx's Lua module: endpoint changes without a reload)")
	flag.Parse()
	if _, err := exec.LookPath("nginx"); err != nil {
		return fmt.Errorf("nginx is not installed: %w", err)
	}
	if _, err := nginxconf.ParseShape(*shape); err != nil {
		return fmt.Errorf("-shape %q: %w", *shape, err)
	}
	lua := *shape == string(nginxconf.ShapeLua)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	work, err := os.MkdirTemp("", "kube-nginx-sync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	if lua {
		// nginx's workers (user nobody) read the table file
		// themselves: they must be able to reach it.
		if err := os.Chmod(work, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"controlplane", "conf.d", "nginx"} {
		if err := os.Mkdir(filepath.Join(work, d), 0o755); err != nil {
			return err
		}
	}

	step("Starting a local control plane (etcd + kube-apiserver)")
	cp, err := controlplane.Start(ctx, controlplane.Options{BinDir: *cpBin, WorkDir: filepath.Join(work, "controlplane")})
	if err != nil {
		return err
	}
	defer cp.Stop()
	client, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return err
	}
	fmt.Printf("   API server %s, kubeconfig %s\n", cp.Config.Host, cp.Kubeconfig)

	step("Creating sample Services in namespace \"demo\", with real backends behind them")
	ca, err := testbed.NewCA("kube-nginx-sync demo CA")
	if err != nil {
		return err
	}
	caFile := filepath.Join(work, "demo-ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o644); err != nil {
		return err
	}
	backends, err := createSamples(ctx, client, ca)
	defer func() {
		for _, b := range backends {
			b.Close()
		}
	}()
	if err != nil {
		return err
	}

	confDir := filepath.Join(work, "conf.d")
	output := filepath.Join(confDir, "default.conf")
	// With the lua shape, nginx's main config loads the Lua module.
	var modules []string
	if lua {
		if modules = nginx.LuaModules(); modules == nil {
			return fmt.Errorf("-shape lua: nginx's Lua module is not installed (apt-get install libnginx-mod-http-lua)")
		}
	}
	mainConf, err := testbed.MainConfig{Prefix: filepath.Join(work, "nginx"), ConfDir: confDir, Modules: modules}.Write()
	if err != nil {
		return err
	}
	step("Starting kube-nginx-sync run: the generator and nginx, hot-reloaded, in one process")
	listen := "127.0.0.1:" + strconv.Itoa(*listenPort)
	run := exec.Command(*binary, "run", "--kubeconfig", cp.Kubeconfig, "--output", output, "--validate", "--shape", *shape,
		"--http-address", "127.0.0.1", "--http-port", strconv.Itoa(*port), "--https-port", strconv.Itoa(*httpsPort), "--status-port", strconv.Itoa(*statusPort),
		"--listen", listen, "--", "-p", filepath.Join(work, "nginx")+"/", "-c", mainConf)
	fmt.Printf("   $ %s\n", strings.Join(run.Args, " "))
	stopRun, err := startLogged(run, filepath.Join(work, "kube-nginx-sync.log"))
	if err != nil {
		return err
	}
	defer stopRun()
	if err := waitReady(ctx, "http://"+listen+"/readyz"); err != nil {
		return err
	}
	fmt.Printf("   ready: /readyz answers 200 on %s (also /metrics, /healthz)\n", listen)

	config, err := os.ReadFile(output)
	if err != nil {
		return err
	}
	step("The config it wrote: " + output)
	if lua {
		// The Lua module is embedded in the config whole: too long to show.
		config = bytes.Replace(config, []byte(luaplane.Module), []byte(fmt.Sprintf(
			"    -- (kube-nginx-sync's Lua module, %d lines, left out here: internal/luaplane/kns.lua)\n",
			strings.Count(luaplane.Module, "\n"))), 1)
	}
	os.Stdout.Write(config)
	tableFile := filepath.Join(confDir, luaplane.FileName)
	if lua {
		index, err := os.ReadFile(tableFile)
		if err != nil {
			return err
		}
		hashes, _, err := luaplane.DecodeIndex(index)
		if err != nil {
			return err
		}
		step("The routes and endpoints, in files of their own that nginx's workers read: " + tableFile + " and its parts")
		os.Stdout.Write(index)
		for _, h := range hashes {
			part, err := os.ReadFile(luaplane.PartPath(tableFile, h))
			if err != nil {
				return err
			}
			fmt.Printf("\n%s:\n", luaplane.PartPath(tableFile, h))
			os.Stdout.Write(part)
		}
	}

	step("What each route answers")
	base := "http://127.0.0.1:" + strconv.Itoa(*port)
	for _, r := range []struct{ host, path, note string }{
		{"", "/demo/hello/", "2 endpoints, balanced"},
		{"", "/demo/hello/", ""},
		{"shop.demo.test", "/cart", "own host, path /, HTTPS: plain HTTP redirects"},
		{"", "/demo/api/items", "upstream: service (the ClusterIP)"},
		{"", "/demo/sleepy/", "no ready endpoint"},
		{"", "/demo/internal/", "not labelled for kube-nginx-sync"},
		{"", "/demo/broken/", "invalid annotation: left out, the rest works"},
	} {
		status, body := get(base, r.host, r.path)
		host := ""
		if r.host != "" {
			host = " (Host: " + r.host + ")"
		}
		fmt.Printf("   GET %s%s\n      -> %d %q   %s\n", r.path, host, status, body, r.note)
	}
	if err := showHTTPS(*httpsPort, ca); err != nil {
		return err
	}

	if lua {
		step("Replacing an endpoint live: kube-nginx-sync rewrites the table file, nginx's workers read it, no reload")
		ips := testbed.IPs{Base: 80}
		b, err := testbed.StartBackend("hello-pod-3", netip.AddrPortFrom(ips.NextIPv4(), 8080))
		if err != nil {
			return err
		}
		backends = append(backends, b) // it serves hello until the demo ends
		if err := swapEndpoint(ctx, client, base, listen, b); err != nil {
			return err
		}
	}

	if lua {
		step("Creating a Service live: kube-nginx-sync rewrites the table file, the route answers, no reload")
	} else {
		step("Creating a Service live: kube-nginx-sync writes the config, nginx reloads, the route answers")
	}
	reloads, err := metric(listen, reloadsOK)
	if err != nil {
		return err
	}
	if err := liveChange(ctx, client, base); err != nil {
		return err
	}
	if lua {
		if err := showReloads(listen, reloads, "a new Service and its removal"); err != nil {
			return err
		}
	}

	if *once {
		return nil
	}
	step("Running until Ctrl-C. From another shell, in the demo's network namespace:")
	fmt.Printf("   nsenter --net=/proc/%d/ns/net curl -s %s/demo/hello/\n", os.Getpid(), base)
	fmt.Printf("   nsenter --net=/proc/%d/ns/net curl -s --cacert %s --resolve shop.demo.test:%d:127.0.0.1 https://shop.demo.test:%d/\n",
		os.Getpid(), caFile, *httpsPort, *httpsPort)
	fmt.Printf("   nsenter --net=/proc/%d/ns/net curl -s http://%s/metrics | grep ^kube_nginx_sync\n", os.Getpid(), listen)
	if lua {
		fmt.Printf("   cat %s\n", tableFile)
	}
	fmt.Printf("   nsenter --net=/proc/%d/ns/net %s --kubeconfig %s -n demo get svc,endpointslices\n",
		os.Getpid(), filepath.Join(*cpBin, "kubectl"), cp.Kubeconfig)
	fmt.Printf("   (label a Service kube-nginx-sync.io/expose=true to route it; the log: %s)\n", filepath.Join(work, "kube-nginx-sync.log"))
	<-ctx.Done()
	fmt.Println("\nStopping everything the demo started.")
	return nil
}

func step(s string) { fmt.Printf("\n== %s\n", s) }

// createSamples creates the demo's Services and EndpointSlices, and starts
// their backends; shop is served over HTTPS too, with a certificate that ca
// issues, in a Secret.
func createSamples(ctx context.Context, client kubernetes.Interface, ca *testbed.CA) ([]*testbed.Backend, error) {
	var backends []*testbed.Backend
	// Backends on 198.18.64.x, apart from the end-to-end tests' (which
	// run this demo in their network namespace too).
	ips := testbed.IPs{Base: 64}
	start := func(name string, addr netip.AddrPort) (*testbed.Backend, error) {
		b, err := testbed.StartBackend(name, addr)
		if err == nil {
			backends = append(backends, b)
		}
		return b, err
	}
	if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo"}}, metav1.CreateOptions{}); err != nil {
		return backends, err
	}
	type sample struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		pods        []string // backend names; one endpoint each
		notReady    bool
	}
	samples := []sample{
		{name: "hello", labels: testbed.ExposedLabels, pods: []string{"hello-pod-1", "hello-pod-2"}},
		{name: "shop", labels: testbed.ExposedLabels, annotations: map[string]string{"kube-nginx-sync.io/host": "shop.demo.test", "kube-nginx-sync.io/path": "/",
			"kube-nginx-sync.io/tls-secret": "shop-tls"}, pods: []string{"shop-pod-1"}},
		{name: "api", labels: testbed.ExposedLabels, annotations: map[string]string{"kube-nginx-sync.io/upstream": "service"}},
		{name: "sleepy", labels: testbed.ExposedLabels, pods: []string{"sleepy-pod-1"}, notReady: true},
		{name: "internal", pods: []string{"internal-pod-1"}},
		{name: "broken", labels: testbed.ExposedLabels, annotations: map[string]string{"kube-nginx-sync.io/path": "/oops; return 200 pwned"}, pods: []string{"broken-pod-1"}},
	}
	cert, err := ca.Issue([]string{"shop.demo.test"}, testbed.IssueOptions{})
	if err != nil {
		return backends, err
	}
	if _, err := client.CoreV1().Secrets("demo").Create(ctx, testbed.TLSSecret("shop-tls", cert), metav1.CreateOptions{}); err != nil {
		return backends, err
	}
	fmt.Printf("   secret/shop-tls type=kubernetes.io/tls: a certificate for shop.demo.test from the demo's CA (serial %s)\n", cert.Serial.Text(16))
	for _, s := range samples {
		svc, err := client.CoreV1().Services("demo").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: s.name, Labels: s.labels, Annotations: s.annotations},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{testbed.TCPPort("http", 80)}},
		}, metav1.CreateOptions{})
		if err != nil {
			return backends, err
		}
		fmt.Printf("   service/%-8s labels=%v annotations=%v\n", s.name, s.labels, s.annotations)
		if s.name == "api" {
			// Traffic goes to the ClusterIP, which is local in the
			// demo's network namespace: serve it there.
			if _, err := start("api-via-clusterip", netip.AddrPortFrom(netip.MustParseAddr(svc.Spec.ClusterIP), 80)); err != nil {
				return backends, err
			}
			continue
		}
		var eps []testbed.Endpoint
		for _, pod := range s.pods {
			b, err := start(pod, netip.AddrPortFrom(ips.NextIPv4(), 8080))
			if err != nil {
				return backends, err
			}
			eps = append(eps, testbed.Endpoint{Addr: b.Addr.Addr(), NotReady: s.notReady})
		}
		slice := testbed.EndpointSlice(s.name, []testbed.SlicePort{{Name: "http", Port: 8080}}, eps...)
		if _, err := client.DiscoveryV1().EndpointSlices("demo").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return backends, err
		}
	}
	return backends, nil
}

// showHTTPS shows what shop.demo.test answers over HTTPS, verified with
// the demo's CA, and that a name without a certificate is refused.
func showHTTPS(port int, ca *testbed.CA) error {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
		},
		ForceAttemptHTTP2: true,
	}}
	url := fmt.Sprintf("https://shop.demo.test:%d/cart", port)
	resp, err := c.Get(url)
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	fmt.Printf("   GET %s\n      -> %d %q   over %s, %s, certificate serial %s verified with the demo's CA\n", url, resp.StatusCode, body,
		resp.Proto, tls.VersionName(resp.TLS.Version), resp.TLS.PeerCertificates[0].SerialNumber.Text(16))
	_, err = tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{ServerName: "other.demo.test", RootCAs: ca.Pool()})
	fmt.Printf("   TLS to other.demo.test (no certificate for it)\n      -> %v\n", err)
	return nil
}

func get(base, host, path string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Host = host
	resp, err := (&http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode/100 == 3 && loc != "" {
		return resp.StatusCode, "Location: " + loc
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		return resp.StatusCode, err.Error()
	}
	return resp.StatusCode, string(body)
}

// startLogged starts cmd with its output in logPath, echoing the lines that
// tell what kube-nginx-sync did (writes, reloads, problems). The returned
// function stops it with SIGTERM, by its PID, and waits.
func startLogged(cmd *exec.Cmd, logPath string) (func(), error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	err = cmd.Start()
	pw.Close()
	if err != nil {
		return nil, err
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			for _, key := range []string{`msg="wrote config"`, `msg="wrote table"`, `msg="nginx reloaded"`, "level=WARN", "level=ERROR", `msg="nginx started"`} {
				if strings.Contains(line, key) {
					fmt.Printf("   [kube-nginx-sync] %s\n", line)
					break
				}
			}
		}
	}()
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		<-copied
		logFile.Close()
	}, nil
}

func waitReady(ctx context.Context, url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60 s", url)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// liveChange creates a Service with a backend, shows it answering through
// nginx, deletes it, and shows it gone.
func liveChange(ctx context.Context, client kubernetes.Interface, base string) error {
	ips := testbed.IPs{Base: 96}
	b, err := testbed.StartBackend("live-pod-1", netip.AddrPortFrom(ips.NextIPv4(), 8080))
	if err != nil {
		return err
	}
	defer b.Close()
	start := time.Now()
	if _, err := client.CoreV1().Services("demo").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "live", Labels: testbed.ExposedLabels},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{testbed.TCPPort("http", 80)}},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	slice := testbed.EndpointSlice("live", []testbed.SlicePort{{Name: "http", Port: 8080}}, testbed.Endpoint{Addr: b.Addr.Addr()})
	if _, err := client.DiscoveryV1().EndpointSlices("demo").Create(ctx, slice, metav1.CreateOptions{}); err != nil {
		return err
	}
	fmt.Println("   created service/live and its EndpointSlice")
	if err := waitAnswer(ctx, base, "/demo/live/", http.StatusOK); err != nil {
		return err
	}
	status, body := get(base, "", "/demo/live/")
	fmt.Printf("   GET /demo/live/ -> %d %q, %s after the create\n", status, body, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if err := client.CoreV1().Services("demo").Delete(ctx, "live", metav1.DeleteOptions{}); err != nil {
		return err
	}
	fmt.Println("   deleted service/live")
	if err := waitAnswer(ctx, base, "/demo/live/", http.StatusNotFound); err != nil {
		return err
	}
	fmt.Printf("   GET /demo/live/ -> 404, %s after the delete\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// swapEndpoint replaces hello-pod-2 by b, hello-pod-3, in the EndpointSlice
// of Service hello, and shows how long it took for the new endpoint to
// answer through nginx, and that nginx was not reloaded.
func swapEndpoint(ctx context.Context, client kubernetes.Interface, base, listen string, b *testbed.Backend) error {
	reloads, err := metric(listen, reloadsOK)
	if err != nil {
		return err
	}
	updates, err := metric(listen, `kube_nginx_sync_endpoint_updates_total{result="ok"}`)
	if err != nil {
		return err
	}
	list, err := client.DiscoveryV1().EndpointSlices("demo").List(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=hello"})
	if err != nil {
		return err
	}
	if len(list.Items) != 1 {
		return fmt.Errorf("service hello has %d EndpointSlices, want 1", len(list.Items))
	}
	slice := list.Items[0]
	eps := slice.Endpoints
	// createSamples wrote hello-pod-1's endpoint, then hello-pod-2's.
	if len(eps) != 2 || len(eps[1].Addresses) != 1 {
		return fmt.Errorf("service hello's EndpointSlice has %d endpoints, want 2", len(eps))
	}
	old := eps[1].Addresses[0]
	eps[1].Addresses = []string{b.Addr.Addr().String()}
	start := time.Now()
	if _, err := client.DiscoveryV1().EndpointSlices("demo").Update(ctx, &slice, metav1.UpdateOptions{}); err != nil {
		return err
	}
	fmt.Printf("   updated service/hello's EndpointSlice: %s (hello-pod-2) replaced by %s (hello-pod-3)\n", old, b.Addr.Addr())
	if err := waitBody(ctx, base, "/demo/hello/", "hello-pod-3 /"); err != nil {
		return err
	}
	fmt.Printf("   GET /demo/hello/ -> 200 \"hello-pod-3 /\", %s after the update\n", time.Since(start).Round(time.Millisecond))
	var answers []string
	for range 4 {
		_, body := get(base, "", "/demo/hello/")
		answers = append(answers, strings.TrimSuffix(body, " /"))
	}
	fmt.Printf("   the next 4 GETs answered from: %s\n", strings.Join(answers, ", "))
	// Every worker has confirmed the new endpoints once the counter moves.
	if err := waitMetric(ctx, listen, `kube_nginx_sync_endpoint_updates_total{result="ok"}`, updates); err != nil {
		return err
	}
	return showReloads(listen, reloads, "an endpoint change")
}

// reloadsOK is the series of /metrics that counts nginx's confirmed reloads.
const reloadsOK = `kube_nginx_sync_reloads_total{result="ok"}`

// showReloads prints whether nginx was reloaded since /metrics counted
// before reloads, for what changed.
func showReloads(listen string, before float64, what string) error {
	after, err := metric(listen, reloadsOK)
	if err != nil {
		return err
	}
	if after == before {
		fmt.Printf("   nginx reloads: %v before, %v after: no reload for %s\n", before, after, what)
	} else {
		fmt.Printf("   nginx reloads: %v before, %v after: reloaded for %s\n", before, after, what)
	}
	return nil
}

// metric reads one series of kube-nginx-sync's /metrics, by its name with
// its labels as written there.
func metric(listen, series string) (float64, error) {
	resp, err := http.Get("http://" + listen + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("metric %s not found", series)
}

// waitMetric waits until a series of /metrics is above before.
func waitMetric(ctx context.Context, listen, series string, before float64) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, err := metric(listen, series); err == nil && v > before {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not rise above %v within 30 s", series, before)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitBody waits until a GET of path answers 200 with body.
func waitBody(ctx context.Context, base, path, body string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if status, got := get(base, "", path); status == http.StatusOK && got == body {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s did not answer %q within 30 s", path, body)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func waitAnswer(ctx context.Context, base, path string, want int) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if status, _ := get(base, "", path); status == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("GET %s did not answer %d within 30 s", path, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}
