package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// The HTTPS single change: a new Service on a host of its own under
// httpsDomain, which names the Secret httpsSecret: a wildcard certificate
// for every such host, from a CA of the bench's own.
const (
	httpsDomain = "bench.test"
	httpsSecret = "bench-tls"
)

// httpsBench is what the HTTPS single change needs.
type httpsBench struct {
	ca *testbed.CA
	// ports are the HTTPS ports of kube-nginx-sync's systems, by name.
	ports map[string]int
}

// setupHTTPS makes the CA and the Secret, in the bench's namespace.
func setupHTTPS(ctx context.Context, c kubernetes.Interface) (*httpsBench, error) {
	ca, err := testbed.NewCA("bench CA")
	if err != nil {
		return nil, err
	}
	cert, err := ca.Issue([]string{"*." + httpsDomain}, testbed.IssueOptions{})
	if err != nil {
		return nil, err
	}
	secret := testbed.TLSSecret(httpsSecret, cert)
	if _, err := c.CoreV1().Secrets(namespace).Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("create Secret %s: %w", httpsSecret, err)
	}
	return &httpsBench{ca: ca, ports: map[string]int{}}, nil
}

// runArgs are the arguments of the system named name that serve HTTPS on
// port.
func (h *httpsBench) runArgs(name string, port int) []string {
	h.ports[name] = port
	return []string{"--https-port", strconv.Itoa(port)}
}

// httpsHost is the host of Service i in the HTTPS single change.
func httpsHost(i int) string { return serviceName(i) + "." + httpsDomain }

// httpsSingleChange is singleChange for an HTTPS route: Service i, on a
// host of its own at "/", names the Secret; timed from the return of its
// EndpointSlice's create call to the first correct answer over HTTPS
// (SNI, the chain verified) on a new connection. Each trial's Service is
// deleted after it, so that the other figures are not measured with more
// hosts than routes. One more host is served over HTTPS all along, as in
// a cluster that serves HTTPS already: without it each trial's reload
// would open the HTTPS listener anew, which only the new workers hold, and
// the old workers' last 100 ms would not show.
func (b *bench) httpsSingleChange(ctx context.Context, s *system, h *httpsBench, trials int, timeout time.Duration) ([]time.Duration, error) {
	port := h.ports[s.name]
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true, DisableCompression: true, TLSClientConfig: &tls.Config{RootCAs: h.ca.Pool()},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, "127.0.0.1:"+strconv.Itoa(port))
		},
	}}
	routedHTTPS := func(i int) bool {
		resp, err := client.Get(fmt.Sprintf("https://%s:%d/", httpsHost(i), port))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return err == nil && resp.StatusCode == 200 && answersFor(i, string(body))
	}
	create := func(i int) error {
		svc, slice := objects(i, "https")
		svc.Annotations = map[string]string{"kube-nginx-sync.io/host": httpsHost(i), "kube-nginx-sync.io/path": "/",
			"kube-nginx-sync.io/tls-secret": httpsSecret}
		if _, err := b.client.CoreV1().Services(namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Service %s: %w", svc.Name, err)
		}
		if _, err := b.client.DiscoveryV1().EndpointSlices(namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create EndpointSlice %s: %w", slice.Name, err)
		}
		return nil
	}
	anchor := b.fresh()
	if err := create(anchor); err != nil {
		return nil, err
	}
	defer b.remove(context.WithoutCancel(ctx), anchor)
	for start := time.Now(); !routedHTTPS(anchor); time.Sleep(b.pollEvery) {
		if ctx.Err() != nil || time.Since(start) > timeout {
			return nil, fmt.Errorf("%s: %s not served over HTTPS after %s", s.name, httpsHost(anchor), timeout)
		}
	}
	if err := s.waitQuiet(ctx, 500*time.Millisecond); err != nil {
		return nil, err
	}
	var out []time.Duration
	for range trials {
		i := b.fresh()
		if err := create(i); err != nil {
			return out, err
		}
		created := time.Now()
		for !routedHTTPS(i) {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			if time.Since(created) > timeout {
				return out, fmt.Errorf("%s: %s not served over HTTPS after %s", s.name, httpsHost(i), timeout)
			}
			time.Sleep(b.pollEvery)
		}
		out = append(out, time.Since(created))
		for _, step := range []func() error{
			func() error { return s.waitQuiet(ctx, 500*time.Millisecond) },
			func() error { return b.remove(ctx, i) },
			func() error { return s.waitQuiet(ctx, 500*time.Millisecond) },
		} {
			if err := step(); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}
