package controller

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// Metrics are the generator's Prometheus metrics.
type Metrics struct {
	Rebuilds        prometheus.Counter
	RebuildSeconds  prometheus.Histogram
	Writes          prometheus.Counter
	WritesUnchanged prometheus.Counter
	WriteErrors     prometheus.Counter
	EndpointWrites  prometheus.Counter
	LastWrite       prometheus.Gauge
	EventToWrite    prometheus.Histogram
	WatchErrors     *prometheus.CounterVec
	Services        prometheus.Gauge
	Routes          prometheus.Gauge
	Upstreams       prometheus.Gauge
	Endpoints       prometheus.Gauge
	Rejected        *prometheus.GaugeVec
	// CertificateExpiry is the expiry of each host's certificate, by
	// host; HTTPSHosts counts the hosts that asked for HTTPS, by state.
	CertificateExpiry *prometheus.GaugeVec
	HTTPSHosts        *prometheus.GaugeVec
	// ingress describes the Ingresses (ingress_events.go).
	ingress *ingressMetrics
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "kube_nginx_sync"
	m := &Metrics{
		Rebuilds: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "rebuilds_total",
			Help: "Rebuilds of the routing model from the cached cluster state."}),
		RebuildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "rebuild_duration_seconds",
			Help:    "Time of a rebuild: build the model, render, and write (with validation, if on).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
		Writes: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "config_writes_total",
			Help: "Writes of a changed config file."}),
		WritesUnchanged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "config_writes_skipped_unchanged_total",
			Help: "Rebuilds whose config was byte for byte the one on disk, so nothing was written."}),
		EndpointWrites: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "table_file_writes_total",
			Help: "Writes of a changed table file (the Lua data plane): route and endpoint changes that nginx takes without a reload."}),
		WriteErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "config_write_errors_total",
			Help: "Failed writes (or validations) of the config file; the old file stays."}),
		LastWrite: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "config_last_write_timestamp_seconds",
			Help: "When the config file was last confirmed current (written, or found unchanged), in Unix seconds."}),
		EventToWrite: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "event_to_write_seconds",
			Help:    "Time from the first change of a batch, as the informers saw it, to the changed file on disk.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		WatchErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "watch_errors_total",
			Help: "Failed lists or watches of the API server, by resource."}, []string{"resource"}),
		Services: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "services",
			Help: "Services that match the selection."}),
		Routes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "routes",
			Help: "Routes (locations) in the config."}),
		Upstreams: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "upstreams",
			Help: "Upstreams (routes with at least one ready backend) in the config."}),
		Endpoints: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "endpoints",
			Help: "Backends in all upstreams."}),
		Rejected: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "rejected_routes",
			Help: "Services, or Service ports, left out of the config, by reason."}, []string{"reason"}),
		CertificateExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "certificate_expiry_timestamp_seconds",
			Help: "When the certificate of each host that asked for HTTPS expires (its Secret's, also when it is not served), in Unix seconds, by host."},
			[]string{"host"}),
		HTTPSHosts: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "https_hosts",
			Help: "Hosts that asked for HTTPS, by state: served, or left_out (their Secret is missing or cannot be used)."}, []string{"state"}),
	}
	reg.MustRegister(m.Rebuilds, m.RebuildSeconds, m.Writes, m.WritesUnchanged, m.WriteErrors, m.EndpointWrites, m.LastWrite,
		m.EventToWrite, m.WatchErrors, m.Services, m.Routes, m.Upstreams, m.Endpoints, m.Rejected, m.CertificateExpiry, m.HTTPSHosts)
	for _, r := range []string{"services", "endpointslices", "secrets"} {
		m.WatchErrors.WithLabelValues(r)
	}
	m.ingress = newIngressMetrics(reg)
	return m
}

// observeResult sets the gauges that describe a built model.
func (m *Metrics) observeResult(res model.Result) {
	m.Services.Set(float64(res.Services))
	m.Routes.Set(float64(res.Config.Routes()))
	m.Upstreams.Set(float64(len(res.Config.Upstreams)))
	endpoints := 0
	for _, u := range res.Config.Upstreams {
		endpoints += len(u.Backends)
	}
	m.Endpoints.Set(float64(endpoints))
	counts := map[model.Reason]int{
		model.ReasonInvalidAnnotation: 0, model.ReasonInvalidService: 0,
		model.ReasonUnsupported: 0, model.ReasonRouteConflict: 0, model.ReasonRefusedByNginx: 0, model.ReasonTLSConflict: 0,
	}
	for _, r := range res.Rejected {
		counts[r.Reason]++
	}
	for reason, n := range counts {
		m.Rejected.WithLabelValues(string(reason)).Set(float64(n))
	}
	m.ingress.observe(res.Ingress)
	m.CertificateExpiry.Reset()
	served, leftOut := 0, 0
	for _, c := range res.Certificates {
		if c.Served {
			served++
		} else {
			leftOut++
		}
		if c.Leaf != nil {
			m.CertificateExpiry.WithLabelValues(c.Host).Set(float64(c.Leaf.NotAfter.Unix()))
		}
	}
	m.HTTPSHosts.WithLabelValues("served").Set(float64(served))
	m.HTTPSHosts.WithLabelValues("left_out").Set(float64(leftOut))
}
