package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
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
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/server"
)

// watchFlags are the flags of the long-running generator.
type watchFlags struct {
	debounce   time.Duration
	maxDelay   time.Duration
	maxLimit   time.Duration
	staleAfter time.Duration
	listen     string
}

func (f *watchFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&f.debounce, "debounce", 20*time.Millisecond, "quiet period after a change before the config is rebuilt")
	fs.DurationVar(&f.maxDelay, "max-delay", time.Second, "longest a burst may defer a rebuild after a quiet time; also the first cooldown between rebuilds while changes keep coming")
	fs.DurationVar(&f.maxLimit, "max-delay-limit", 4*time.Second, "the cooldown between rebuilds doubles up to this while changes keep coming")
	fs.DurationVar(&f.staleAfter, "stale-after", 30*time.Second, "how long the watch of the API server may fail before /readyz reports not ready")
	fs.StringVar(&f.listen, "listen", ":9090", "address of the HTTP listener for /metrics, /healthz and /readyz")
}

func (f *watchFlags) check() error {
	for name, d := range map[string]time.Duration{"debounce": f.debounce, "max-delay": f.maxDelay, "stale-after": f.staleAfter} {
		if err := positive(name, d); err != nil {
			return err
		}
	}
	if f.maxLimit < f.maxDelay {
		return usageError("--max-delay-limit (%s) must not be shorter than --max-delay (%s)", f.maxLimit, f.maxDelay)
	}
	if f.maxDelay < f.debounce {
		return usageError("--max-delay (%s) must not be shorter than --debounce (%s)", f.maxDelay, f.debounce)
	}
	return nil
}

func runWatch(ctx context.Context, e env, args []string) error {
	fs := newFlagSet("watch", e)
	var (
		gf generatorFlags
		wf watchFlags
	)
	gf.register(fs)
	wf.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, cfg, err := gf.resolve(e)
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
		"listen", srv.Addr().String(), "debounce", wf.debounce, "max_delay", wf.maxDelay, "version", version())

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
	watch     watchFlags
	// onWrite is called after each write of a changed config.
	onWrite func()
}

// generator is the informers and the controller loop that keep the config
// file current.
type generator struct {
	watcher *kube.Watcher
	ctrl    *controller.Controller
}

// newGenerator builds the generator; the returned function flushes and
// stops its Event recorder.
func newGenerator(ctx context.Context, log *slog.Logger, registry prometheus.Registerer, cfg generatorConfig) (*generator, func(), error) {
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

	g := &generator{}
	g.watcher, err = kube.NewWatcher(clientset, cfg.sel, kube.WatcherOptions{
		OnChange: func() { g.ctrl.Notify() },
		OnWatchError: func(resource string, err error) {
			metrics.WatchErrors.WithLabelValues(resource).Inc()
			log.Warn("watching the API server failed; the config on disk stays until it recovers", "resource", resource, "err", err)
		},
	})
	if err != nil {
		stopEvents()
		return nil, nil, err
	}
	g.ctrl = controller.New(controller.Options{
		Source:        g.watcher,
		Pipeline:      &controller.Pipeline{Model: cfg.modelOpts, Renderer: cfg.renderer, Output: cfg.out.output, Validate: cfg.out.validator()},
		Debounce:      cfg.watch.debounce,
		MaxDelay:      cfg.watch.maxDelay,
		MaxDelayLimit: cfg.watch.maxLimit,
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
