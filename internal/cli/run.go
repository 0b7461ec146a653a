package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/server"
)

func runRun(ctx context.Context, e env, args []string) error {
	fs := newFlagSet("run", e)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: kube-nginx-sync run [FLAGS] [-- NGINX-ARGS...]")
		fs.PrintDefaults()
	}
	var (
		gf generatorFlags
		wf watchFlags
		rf reloadFlags
	)
	gf.register(fs)
	wf.register(fs)
	rf.register(fs, "")
	nginxArgs, err := splitNginxArgs(fs, args)
	if err != nil {
		return err
	}
	log, cfg, err := gf.resolve(e)
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
	for ready() != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
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
