package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/server"
)

// DefaultConfigDir is the folder the seed's design shares between the
// containers of an nginx Pod.
const DefaultConfigDir = "/etc/nginx/conf.d"

// reloadFlags are the flags of the nginx side.
type reloadFlags struct {
	configDir       string
	validate        string
	coalesce        coalesceFlags
	minInterval     time.Duration
	timeout         time.Duration
	checkInterval   time.Duration
	maxDraining     int
	drainWait       time.Duration
	shutdownTimeout time.Duration
}

func (f *reloadFlags) register(cmd *cobra.Command, configDirDefault, configDirHelp string) {
	fs := cmd.Flags()
	fs.StringVar(&f.configDir, "config-dir", configDirDefault, configDirHelp)
	fs.StringVar(&f.validate, "reload-validate", string(nginx.ValidateAuto),
		"when to run nginx -t on the whole config before a reload: auto (while it takes under 250ms), always or never")
	f.coalesce.register(cmd, "reload-", "reload", 100*time.Millisecond)
	fs.DurationVar(&f.minInterval, "min-reload-interval", 200*time.Millisecond, "shortest time between two reloads")
	fs.DurationVar(&f.timeout, "reload-timeout", time.Minute, "how long nginx may take to confirm a reload")
	fs.DurationVar(&f.checkInterval, "check-interval", 10*time.Second, "how often the config folder is hashed, in case a file event was missed")
	fs.IntVar(&f.maxDraining, "max-draining-generations", 4, "old worker generations that may still drain (long connections) before a reload waits for them; 0 for no bound")
	fs.DurationVar(&f.drainWait, "drain-wait", time.Minute, "longest a reload waits for draining workers")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 25*time.Second, "on SIGTERM, how long nginx may finish its requests before it is stopped at once")
	if err := cmd.MarkFlagDirname("config-dir"); err != nil {
		panic(err)
	}
	mustComplete(cmd, "reload-validate", completeWords(string(nginx.ValidateAuto), string(nginx.ValidateAlways), string(nginx.ValidateNever)))
	for _, name := range []string{"min-reload-interval", "reload-timeout", "check-interval", "max-draining-generations", "drain-wait", "shutdown-timeout"} {
		mustComplete(cmd, name, cobra.NoFileCompletions)
	}
}

func (f *reloadFlags) check() (nginx.ValidateMode, error) {
	mode, err := nginx.ParseValidateMode(f.validate)
	if err != nil {
		return "", usageError("--reload-validate %q: %v", f.validate, err)
	}
	if err := f.coalesce.check(); err != nil {
		return "", err
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"reload-timeout", f.timeout}, {"check-interval", f.checkInterval}, {"shutdown-timeout", f.shutdownTimeout}} {
		if err := positive(d.name, d.d); err != nil {
			return "", err
		}
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"min-reload-interval", f.minInterval}, {"drain-wait", f.drainWait}} {
		if d.d < 0 {
			return "", usageError("--%s %s: want a duration of 0 or more, such as 0s or 200ms", d.name, d.d)
		}
	}
	if f.maxDraining < 0 {
		return "", usageError("--max-draining-generations %d: want 0 (no bound) or more", f.maxDraining)
	}
	return mode, nil
}

// onlyNginxArgs refuses positional arguments before "--"; those after it go
// to nginx.
func onlyNginxArgs(cmd *cobra.Command, args []string) error {
	before := args
	if dash := cmd.ArgsLenAtDash(); dash >= 0 {
		before = args[:dash]
	}
	if len(before) > 0 {
		return usageError("unexpected argument %q (nginx's own arguments go after --)", before[0])
	}
	return nil
}

// reloadOptions are reload's flags.
type reloadOptions struct {
	logs     logFlags
	rf       reloadFlags
	nginxBin string
	listen   string
}

func reloadCommand(e env) *cobra.Command {
	var o reloadOptions
	cmd := &cobra.Command{
		Use:   "reload [flags] [-- NGINX-ARGS...]",
		Short: "Run nginx and hot-reload it, confirmed, when its config folder changes (the nginx container)",
		Long: "reload runs nginx in the foreground with NGINX-ARGS and reloads it, confirmed, when what its\n" +
			"config folder holds changes.",
		Example: `  kube-nginx-sync reload --config-dir /etc/nginx/conf.d --listen :9091
  kube-nginx-sync reload --config-dir ./conf.d -- -p ./nginx/ -c nginx.conf`,
		Args:              onlyNginxArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		// onlyNginxArgs lets through only the arguments after "--".
		RunE: running(func(ctx context.Context, args []string) error { return o.run(ctx, e, args) }),
	}
	o.logs.register(cmd)
	o.rf.register(cmd, DefaultConfigDir, "config folder to watch; nginx is reloaded when what it holds changes")
	cmd.Flags().StringVar(&o.nginxBin, "nginx", "nginx", "nginx binary")
	registerListen(cmd, &o.listen)
	return cmd
}

func (o *reloadOptions) run(ctx context.Context, e env, nginxArgs []string) error {
	log, err := o.logs.logger(e)
	if err != nil {
		return err
	}
	mode, err := o.rf.check()
	if err != nil {
		return err
	}
	registry := newRegistry()
	srv, err := server.Listen(server.Options{Addr: o.listen, Gatherer: registry})
	if err != nil {
		return err
	}
	reaping(ctx)
	side, err := startNginxSide(ctx, e.stderr, log, registry, o.rf, mode, o.nginxBin, nginxArgs)
	if err != nil {
		return err
	}
	srv.SetChecks([]server.Check{side.reloader.Healthy}, []server.Check{side.reloader.Ready})
	log.Info("supervising nginx", "pid", side.nginx.PID(), "config_dir", o.rf.configDir, "listen", srv.Addr().String(), "version", version())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return srv.Serve(gctx) })
	g.Go(func() error { return side.run(gctx) })
	return side.finish(g.Wait(), log)
}

// reaping makes this process collect orphaned zombies when it is a
// container's init process.
func reaping(ctx context.Context) {
	if os.Getpid() == 1 {
		go nginx.ReapZombies(ctx)
	}
}

// nginxSide is nginx and its reloader.
type nginxSide struct {
	nginx           *nginx.Supervisor
	reloader        *nginx.Reloader
	shutdownTimeout time.Duration
}

func startNginxSide(ctx context.Context, out io.Writer, log *slog.Logger, registry prometheus.Registerer,
	rf reloadFlags, mode nginx.ValidateMode, nginxBin string, nginxArgs []string) (*nginxSide, error) {
	startedWith, err := nginx.Fingerprint(rf.configDir)
	if err != nil {
		return nil, err
	}
	sup, err := nginx.StartNginx(ctx, nginx.StartOptions{Bin: nginxBin, Args: nginxArgs, Output: out})
	if err != nil {
		return nil, err
	}
	// Per-route traffic, which the Lua data plane counts in nginx.
	registry.MustRegister(luaplane.NewCollector(func() string { return nginx.StatusAddr(rf.configDir) }))
	rel := nginx.NewReloader(nginx.ReloaderOptions{
		Nginx:         sup,
		ConfigDir:     rf.configDir,
		StartedWith:   startedWith,
		Validate:      mode,
		Debounce:      rf.coalesce.debounce,
		MaxDelay:      rf.coalesce.maxDelay,
		MaxDelayLimit: rf.coalesce.maxLimit,
		MinInterval:   rf.minInterval,
		Timeout:       rf.timeout,
		CheckInterval: rf.checkInterval,
		MaxDraining:   rf.maxDraining,
		DrainWait:     rf.drainWait,
		Metrics:       nginx.NewMetrics(registry),
		Log:           log,
	})
	return &nginxSide{nginx: sup, reloader: rel, shutdownTimeout: rf.shutdownTimeout}, nil
}

func (s *nginxSide) run(ctx context.Context) error { return s.reloader.Run(ctx) }

// finish stops nginx gracefully and turns how it ended into the exit: when
// nginx exited on its own, with nginx's status (at least 1), so that the
// container is restarted.
func (s *nginxSide) finish(err error, log *slog.Logger) error {
	select {
	case <-s.nginx.Done():
		code := max(s.nginx.ExitCode(), 1)
		return exitCodeError{code: code, err: fmt.Errorf("nginx exited on its own (%v); exiting with %d so the container restarts", s.nginx.ExitError(), code)}
	default:
	}
	log.Info("stopping nginx gracefully", "timeout", s.shutdownTimeout)
	s.nginx.Stop(s.shutdownTimeout)
	log.Info("nginx stopped", "status", s.nginx.ExitError())
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
