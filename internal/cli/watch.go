package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controller"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/publish"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/server"
)

// watchFlags are the flags of the long-running generator.
type watchFlags struct {
	coalesce   coalesceFlags
	staleAfter time.Duration
	listen     string

	// publish writes the routed Ingresses' status (ingress.go).
	publish publishFlags
}

func (f *watchFlags) register(cmd *cobra.Command) {
	f.coalesce.register(cmd, "", "rebuild", 20*time.Millisecond)
	cmd.Flags().DurationVar(&f.staleAfter, "stale-after", 30*time.Second, "how long the watch of the API server may fail before /readyz reports not ready")
	mustComplete(cmd, "stale-after", cobra.NoFileCompletions)
	registerListen(cmd, &f.listen)
	f.publish.register(cmd)
}

func (f *watchFlags) check() error {
	if err := f.coalesce.check(); err != nil {
		return err
	}
	return positive("stale-after", f.staleAfter)
}

// watchOptions are watch's flags.
type watchOptions struct {
	gf generatorFlags
	wf watchFlags
}

func watchCommand(e env) *cobra.Command {
	var o watchOptions
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Watch Services and EndpointSlices, keep the nginx config current (the generator sidecar)",
		Example: `  kube-nginx-sync watch --output /etc/nginx/conf.d/default.conf --listen :9090
  kube-nginx-sync watch -n shop -n blog --debounce 50ms --max-delay 500ms`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              running(func(ctx context.Context, _ []string) error { return o.run(ctx, e) }),
	}
	o.gf.register(cmd)
	o.wf.register(cmd)
	return cmd
}

func (o *watchOptions) run(ctx context.Context, e env) error {
	wf := o.wf
	log, cfg, err := o.gf.resolve(e)
	if err != nil {
		return err
	}
	if err := wf.check(); err != nil {
		return err
	}
	if cfg.out.output == "-" {
		return usageError("watch needs a file --output, not stdout")
	}
	cfg.watch = wf

	registry := newRegistry()
	gen, stopEvents, err := newGenerator(ctx, log, registry, cfg)
	if err != nil {
		return err
	}
	defer stopEvents()
	srv, err := server.Listen(server.Options{
		Addr:     wf.listen,
		Gatherer: registry,
		Healthy:  []server.Check{gen.ctrl.Healthy},
		Ready:    []server.Check{gen.ctrl.Ready},
	})
	if err != nil {
		return err
	}
	log.Info("watching", "selector", cfg.sel.Selector.String(), "namespaces", cfg.sel.Namespaces, "output", cfg.out.output,
		"listen", srv.Addr().String(), "debounce", wf.coalesce.debounce, "max_delay", wf.coalesce.maxDelay, "version", version())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { return gen.run(gctx, ctx) })
	err = g.Wait()
	log.Info("stopped")
	return err
}

func newRegistry() *prometheus.Registry {
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return registry
}

// generatorConfig is what the generator half of watch and run needs.
type generatorConfig struct {
	client    clientFlags
	sel       kube.Selection
	modelOpts model.Options
	renderer  *nginxconf.Renderer
	out       outputFlags
	// tableFile is the lua shape's table file; "" for other shapes.
	tableFile string
	watch     watchFlags
	// onWrite is called after each write of a changed config.
	onWrite func()
}

// generator is the informers and the controller loop that keep the config
// file current.
type generator struct {
	watcher *kube.Watcher
	ctrl    *controller.Controller

	// publisher writes the routed Ingresses' status; nil when it is not
	// asked for.
	publisher *publish.Publisher
	log       *slog.Logger
}

// newGenerator builds the generator; the returned function flushes and
// stops its Event recorder.
func newGenerator(ctx context.Context, log *slog.Logger, registry prometheus.Registerer, cfg generatorConfig) (*generator, func(), error) {
	if err := cfg.watch.publish.check(cfg.sel.IngressClass); err != nil {
		return nil, nil, err
	}
	restConfig, err := kube.RESTConfig(cfg.client.options())
	if err != nil {
		return nil, nil, err
	}
	clientset, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("create client: %w", err)
	}
	metrics := controller.NewMetrics(registry)
	recorder, stopEvents := eventRecorder(ctx, clientset)

	g := &generator{log: log}
	g.watcher, err = kube.NewWatcher(clientset, cfg.sel, kube.WatcherOptions{
		OnChange: func() {
			g.ctrl.Notify()
			if g.publisher != nil {
				g.publisher.Notify()
			}
		},
		OnEndpointsChange: func(ref model.ServiceRef) { g.ctrl.NotifyEndpoints(ref) },
		OnWatchError: func(resource string, err error) {
			metrics.WatchErrors.WithLabelValues(resource).Inc()
			log.Warn("watching the API server failed; the config on disk stays until it recovers", "resource", resource, "err", err)
		},
	})
	if err != nil {
		stopEvents()
		return nil, nil, err
	}
	if g.publisher, err = newPublisher(cfg.watch.publish, clientset, cfg.modelOpts.Ingress.Class, selectedIngresses(g.watcher, cfg.modelOpts), registry, log); err != nil {
		stopEvents()
		return nil, nil, err
	}
	g.ctrl = controller.New(controller.Options{
		Source: g.watcher,
		Pipeline: &controller.Pipeline{Model: cfg.modelOpts, Renderer: cfg.renderer, Output: cfg.out.output,
			TableFile: cfg.tableFile, Validate: cfg.out.validator()},
		Debounce:      cfg.watch.coalesce.debounce,
		MaxDelay:      cfg.watch.coalesce.maxDelay,
		MaxDelayLimit: cfg.watch.coalesce.maxLimit,
		StaleAfter:    cfg.watch.staleAfter,
		Recorder:      recorder,
		Metrics:       metrics,
		Log:           log,
		OnWrite:       cfg.onWrite,
	})
	return g, stopEvents, nil
}

// run runs the informers and the loop until ctx ends. A loop that ends
// while parent goes on is an error.
func (g *generator) run(ctx, parent context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { g.watcher.Run(ctx) })
	if g.publisher != nil {
		// The caches must hold the Ingresses before a leader compares
		// their status.
		wg.Go(func() {
			if g.watcher.WaitForSync(ctx) == nil {
				if err := g.publisher.Run(ctx); err != nil {
					g.log.Error("ingress status", "err", err)
				}
			}
		})
	}
	defer wg.Wait()
	defer cancel()
	err := g.ctrl.Run(ctx)
	if err == nil && parent.Err() == nil && ctx.Err() == nil {
		err = fmt.Errorf("controller stopped")
	}
	return err
}

// eventRecorder sends Events about Services through the API server. The
// returned function flushes and stops it.
func eventRecorder(ctx context.Context, client kubernetes.Interface) (record.EventRecorder, func()) {
	broadcaster := record.NewBroadcaster(record.WithContext(ctx))
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	host, _ := os.Hostname()
	recorder := broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kube-nginx-sync", Host: host})
	return recorder, broadcaster.Shutdown
}
