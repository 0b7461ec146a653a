package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/utils/ptr"
)

// Traefik, the peer users pick instead: its Kubernetes Ingress provider on
// the bench's cluster (a system like the others), and its data plane alone
// in the data-plane section (the file provider). Traefik has no config
// file and never reloads: each change of the cluster becomes a new
// configuration that its one process builds and swaps in, in place.

// traefikName names the Traefik system and its data-plane entry.
const traefikName = "traefik"

// traefikConfigUpdates is Traefik's count of configurations applied, in
// place (what it calls reloads: no process restarts).
const traefikConfigUpdates = "traefik_config_reloads_total"

// traefikArgs is Traefik's static configuration, the same in both uses:
// only 127.0.0.1, the bench's ports (port for traffic; internal for its
// /metrics), no call home, and Prometheus metrics without the per-request
// labels (the bench reads only the count of configurations applied, and
// per-router or per-service series would cost every request).
func traefikArgs(port, internal int) []string {
	return []string{
		"--global.checkNewVersion=false",
		"--global.sendAnonymousUsage=false",
		"--log.level=INFO",
		"--log.noColor=true",
		fmt.Sprintf("--entryPoints.web.address=127.0.0.1:%d", port),
		fmt.Sprintf("--entryPoints.traefik.address=127.0.0.1:%d", internal),
		// The bench stops a system and starts the next: no need to wait
		// 10 s for connections to finish.
		"--entryPoints.web.transport.lifeCycle.graceTimeOut=1s",
		"--entryPoints.traefik.transport.lifeCycle.graceTimeOut=1s",
		"--metrics.prometheus=true",
		"--metrics.prometheus.addEntryPointsLabels=false",
		"--metrics.prometheus.addServicesLabels=false",
		"--metrics.prometheus.addRoutersLabels=false",
	}
}

// traefikClass is the IngressClass of the Ingresses made for Traefik,
// and traefikController its spec.controller, which Traefik looks for.
const (
	traefikClass      = "traefik"
	traefikController = "traefik.io/ingress-controller"
)

// newTraefik is Traefik with its Kubernetes Ingress provider watching the
// Ingresses of traefikClass in the bench's namespace, with the same
// kubeconfig (admin) as kube-nginx-sync, and otherwise its defaults: no
// throttle of the provider's events, and the global
// providersThrottleDuration of 2 s between two configurations applied;
// extra are more arguments.
func newTraefik(dir, binary, kubeconfig string, port, metricsPort int, extra []string) *system {
	return &system{name: traefikName, traefik: true, dir: dir, port: port, metricsPort: metricsPort,
		// Traefik builds its first configuration of 10,000 Ingresses
		// for minutes on this machine.
		startLimit: 15 * time.Minute,
		// After a configuration applied, Traefik applies the next one 2 s
		// later at the earliest (providersThrottleDuration): a trial
		// that came sooner would wait for it.
		settle: 2500 * time.Millisecond,
		command: func(s *system) []*exec.Cmd {
			args := append(traefikArgs(port, metricsPort),
				"--providers.kubernetesIngress=true",
				"--providers.kubernetesIngress.namespaces="+namespace,
				"--providers.kubernetesIngress.ingressClass="+traefikClass)
			cmd := exec.Command(binary, append(args, extra...)...)
			// The provider takes a kubeconfig from the environment only.
			cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
			return []*exec.Cmd{cmd}
		}}
}

// configUpdates is Traefik's count of configurations applied so far.
func (s *system) configUpdates(ctx context.Context) (float64, error) {
	m, err := scrape(ctx, s.metricsPort)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", s.name, err)
	}
	n, ok := m[traefikConfigUpdates]
	if !ok {
		return 0, fmt.Errorf("%s: no %s in its metrics", s.name, traefikConfigUpdates)
	}
	return n, nil
}

// traefikDataPlaneConfig is the file provider's dynamic configuration for
// the data-plane section: what the Ingress provider makes of an Ingress
// routing dpPath's prefix to a Service of these endpoints (a router with a
// PathPrefix rule and a load balancer of the endpoints, the path passed on
// as it came).
func traefikDataPlaneConfig(eps []netip.AddrPort) []byte {
	var b strings.Builder
	b.WriteString("http:\n  routers:\n    dp:\n      rule: PathPrefix(`" + dpPrefix + "`)\n      entryPoints: [web]\n      service: dp\n")
	b.WriteString("  services:\n    dp:\n      loadBalancer:\n        servers:\n")
	for _, ep := range eps {
		fmt.Fprintf(&b, "          - url: http://%s\n", ep)
	}
	return []byte(b.String())
}

// startTraefikDataPlane starts Traefik on the data plane's config in dir;
// stop ends it.
func startTraefikDataPlane(binary, dir string, port int, eps []netip.AddrPort) (log *syncBuffer, stop func(), err error) {
	internal, err := freeTCPPort()
	if err != nil {
		return nil, nil, err
	}
	file := filepath.Join(dir, "dynamic.yaml")
	if err := os.WriteFile(file, traefikDataPlaneConfig(eps), 0o644); err != nil {
		return nil, nil, err
	}
	s := &system{name: traefikName, traefik: true, dir: dir, port: port, metricsPort: internal, command: func(*system) []*exec.Cmd {
		return []*exec.Cmd{exec.Command(binary, append(traefikArgs(port, internal), "--providers.file.filename="+file)...)}
	}}
	s.log = &syncBuffer{}
	if err := s.startProcs(s.command(s)); err != nil {
		return nil, nil, err
	}
	return s.log, s.stop, nil
}

// countUpdates starts counting the configurations that Traefik applies;
// the function it returns says how many it applied since (nil for the
// other systems).
func (s *system) countUpdates(ctx context.Context) func() (*int, error) {
	if !s.traefik {
		return func() (*int, error) { return nil, nil }
	}
	before, err := s.configUpdates(ctx)
	return func() (*int, error) {
		if err != nil {
			return nil, err
		}
		after, err := s.configUpdates(ctx)
		if err != nil {
			return nil, err
		}
		return ptr.To(int(after - before)), nil
	}
}
