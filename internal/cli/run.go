package cli

import (
	"context"
	"errors"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/server"
)

// runOptions are run's flags: the generator's and the nginx side's.
type runOptions struct {
	gf generatorFlags
	wf watchFlags
	rf reloadFlags
}

func runCommand(e env) *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [flags] [-- NGINX-ARGS...]",
		Short: "Watch and reload in one process: generate the config and serve it with nginx",
		Long: "run is watch and reload in one process: nginx starts on the first complete config, and each new\n" +
			"config is reloaded, confirmed. --debounce and --max-delay time the rebuilds of the config,\n" +
			"--reload-debounce and --reload-max-delay the reloads of nginx.",
		Example: `  kube-nginx-sync run --output /etc/nginx/conf.d/default.conf --listen :9090
  kube-nginx-sync run --kubeconfig ~/.kube/config --context kind-dev --output ./conf.d/default.conf -- -p ./nginx/ -c nginx.conf`,
		Args:              onlyNginxArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		// onlyNginxArgs lets through only the arguments after "--".
		RunE: running(func(ctx context.Context, args []string) error { return o.run(ctx, e, args) }),
	}
	o.gf.register(cmd)
	o.wf.register(cmd)
	o.rf.register(cmd, "", "config folder to watch; nginx is reloaded when what it holds changes (default: the folder of --output)")
	cmd.Flags().Lookup("nginx").Usage = "nginx binary to run, and to check the config with for --validate"
	return cmd
}

func (o *runOptions) run(ctx context.Context, e env, nginxArgs []string) error {
	wf, rf := o.wf, o.rf
	log, cfg, err := o.gf.resolve(e)
	if err != nil {
		return err
	}
	if err := wf.check(); err != nil {
		return err
	}
	mode, err := rf.check()
	if err != nil {
		return err
	}
	if cfg.out.output == "-" {
		return usageError("run needs a file --output, not stdout")
	}
	if rf.configDir == "" {
		rf.configDir = filepath.Dir(cfg.out.output)
	}
	cfg.watch = wf

	registry := newRegistry()
	srv, err := server.Listen(server.Options{Addr: wf.listen, Gatherer: registry})
	if err != nil {
		return err
	}
	reaping(ctx)
	// The generator hands each write to the reloader at once; the reloader
	// still watches the folder for changes made by others.
	var reloader atomic.Pointer[nginx.Reloader]
	cfg.onWrite = func() {
		if r := reloader.Load(); r != nil {
			r.Notify()
		}
	}
	gen, stopEvents, err := newGenerator(ctx, log, registry, cfg)
	if err != nil {
		return err
	}
	defer stopEvents()
	log.Info("running", "selector", cfg.sel.Selector.String(), "namespaces", cfg.sel.Namespaces, "output", cfg.out.output,
		"config_dir", rf.configDir, "listen", srv.Addr().String(), "version", version())

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { return gen.run(gctx, ctx) })

	// nginx starts on the generator's first complete config, as it would
	// after the init container.
	if err := waitUntil(gctx, gen.ctrl.Ready); err != nil {
		return stopAll(g, cancel, err)
	}
	side, err := startNginxSide(gctx, e.stderr, log, registry, rf, mode, cfg.out.nginx, nginxArgs)
	if err != nil {
		return stopAll(g, cancel, err)
	}
	reloader.Store(side.reloader)
	srv.SetChecks([]server.Check{gen.ctrl.Healthy, side.reloader.Healthy}, []server.Check{gen.ctrl.Ready, side.reloader.Ready})
	log.Info("nginx started", "pid", side.nginx.PID())
	g.Go(func() error { return side.run(gctx) })
	return side.finish(g.Wait(), log)
}

// waitUntil polls ready until it passes or ctx ends.
func waitUntil(ctx context.Context, ready func() error) error {
	return wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(context.Context) (bool, error) {
		return ready() == nil, nil
	})
}

// stopAll ends the group's goroutines after err stopped the start-up, and
// returns what went wrong first: a part's failure, or err, or nothing when
// the process was asked to stop.
func stopAll(g *errgroup.Group, cancel context.CancelFunc, err error) error {
	cancel()
	if gerr := g.Wait(); gerr != nil && !errors.Is(gerr, context.Canceled) {
		return gerr
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
