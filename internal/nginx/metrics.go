package nginx

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the reloader's Prometheus metrics.
type Metrics struct {
	Reloads           *prometheus.CounterVec
	ReloadSeconds     prometheus.Histogram
	ValidateSeconds   prometheus.Histogram
	ValidationSkipped prometheus.Counter
	MissedEvents      prometheus.Counter
	LastReload        prometheus.Gauge
	Workers           prometheus.Gauge
	DrainingGens      prometheus.Gauge
	DrainingWorkers   prometheus.Gauge
	DrainingBytes     prometheus.Gauge
	WorkersBytes      prometheus.Gauge
	// EndpointUpdates and EndpointUpdateSeconds follow the Lua data
	// plane's table file.
	EndpointUpdates       *prometheus.CounterVec
	EndpointUpdateSeconds prometheus.Histogram
}

// Reload results, the label of kube_nginx_sync_reloads_total.
const (
	ResultOK      = "ok"      // reloaded, confirmed
	ResultInvalid = "invalid" // refused by nginx -t: not reloaded
	ResultFailed  = "failed"  // signalled, but nginx did not take the config
)

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	const ns = "kube_nginx_sync"
	m := &Metrics{
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reloads_total",
			Help: "nginx reload attempts by result: ok (confirmed), invalid (refused by nginx -t), failed (nginx kept its old config)."},
			[]string{"result"}),
		ReloadSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "reload_duration_seconds",
			Help:    "From the signal to nginx until the new config is confirmed served.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		ValidateSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "validate_duration_seconds",
			Help:    "Time of nginx -t on the whole config before a reload.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		ValidationSkipped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "validations_skipped_total",
			Help: "Reloads done without nginx -t first, because the last one took longer than the auto budget."}),
		MissedEvents: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "config_changes_found_by_check_total",
			Help: "Changes of the config folder found by the periodic check, not by a file event."}),
		LastReload: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "last_reload_success_timestamp_seconds",
			Help: "When nginx last confirmed a new config, in Unix seconds."}),
		Workers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "nginx_workers",
			Help: "nginx worker processes of the current generation."}),
		WorkersBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "nginx_workers_resident_bytes",
			Help: "Resident memory of the current worker generation."}),
		DrainingGens: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "nginx_draining_generations",
			Help: "Worker generations replaced by a reload that still serve open connections."}),
		DrainingWorkers: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "nginx_draining_workers",
			Help: "Old worker processes still serving open connections."}),
		DrainingBytes: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "nginx_draining_resident_bytes",
			Help: "Resident memory of the old worker processes still draining."}),
	}
	m.EndpointUpdates = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "endpoint_updates_total",
		Help: "New table files (Lua data plane) by result: ok (every worker uses it, or a newer one, no reload), failed (not within 10 s)."},
		[]string{"result"})
	m.EndpointUpdateSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "endpoint_update_seconds",
		Help:    "From the write of a new table file until every nginx worker uses it or a newer one (Lua data plane, no reload).",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)})
	reg.MustRegister(m.EndpointUpdates, m.EndpointUpdateSeconds)
	for _, r := range []string{ResultOK, ResultFailed} {
		m.EndpointUpdates.WithLabelValues(r)
	}
	reg.MustRegister(m.Reloads, m.ReloadSeconds, m.ValidateSeconds, m.ValidationSkipped, m.MissedEvents, m.LastReload,
		m.Workers, m.WorkersBytes, m.DrainingGens, m.DrainingWorkers, m.DrainingBytes)
	for _, r := range []string{ResultOK, ResultInvalid, ResultFailed} {
		m.Reloads.WithLabelValues(r)
	}
	return m
}
