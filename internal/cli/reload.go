package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

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
	debounce        time.Duration
	maxDelay        time.Duration
	maxLimit        time.Duration
	minInterval     time.Duration
	timeout         time.Duration
	checkInterval   time.Duration
	maxDraining     int
	drainWait       time.Duration
	shutdownTimeout time.Duration
}

func (f *reloadFlags) register(fs *flag.FlagSet, configDirDefault string) {
	fs.StringVar(&f.configDir, "config-dir", configDirDefault, "config folder to watch; nginx is reloaded when what it holds changes")
	fs.StringVar(&f.validate, "reload-validate", string(nginx.ValidateAuto),
		"when to run nginx -t on the whole config before a reload: auto (while it takes under 250ms), always or never")
	fs.DurationVar(&f.debounce, "reload-debounce", 100*time.Millisecond, "quiet period after a change of the config folder before nginx is reloaded")
	fs.DurationVar(&f.maxDelay, "reload-max-delay", time.Second, "longest a burst of config changes may defer a reload after a quiet time; also the first cooldown between reloads while changes keep coming")
	fs.DurationVar(&f.maxLimit, "reload-max-delay-limit", 4*time.Second, "the cooldown between reloads doubles up to this while changes keep coming")
	fs.DurationVar(&f.minInterval, "min-reload-interval", 200*time.Millisecond, "shortest time between two reloads")
	fs.DurationVar(&f.timeout, "reload-timeout", time.Minute, "how long nginx may take to confirm a reload")
	fs.DurationVar(&f.checkInterval, "check-interval", 10*time.Second, "how often the config folder is hashed, in case a file event was missed")
	fs.IntVar(&f.maxDraining, "max-draining-generations", 4, "old worker generations that may still drain (long connections) before a reload waits for them; 0 for no bound")
	fs.DurationVar(&f.drainWait, "drain-wait", time.Minute, "longest a reload waits for draining workers")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 25*time.Second, "on SIGTERM, how long nginx may finish its requests before it is stopped at once")
}

func (f *reloadFlags) check() (nginx.ValidateMode, error) {
	mode, err := nginx.ParseValidateMode(f.validate)
	if err != nil {
		return "", usageError("--reload-validate: %v", err)
	}
	for name, d := range map[string]time.Duration{
		"reload-debounce": f.debounce, "reload-max-delay": f.maxDelay, "reload-timeout": f.timeout,
		"check-interval": f.checkInterval, "shutdown-timeout": f.shutdownTimeout,
	} {
		if err := positive(name, d); err != nil {
			return "", err
		}
	}
	if f.maxLimit < f.maxDelay {
		return "", usageError("--reload-max-delay-limit (%s) must not be shorter than --reload-max-delay (%s)", f.maxLimit, f.maxDelay)
	}
	if f.minInterval < 0 || f.drainWait < 0 || f.maxDraining < 0 {
		return "", usageError("--min-reload-interval, --drain-wait and --max-draining-generations must not be negative")
	}
	return mode, nil
}

// splitNginxArgs parses fs from args and returns the arguments after "--",
// which go to nginx. Other positional arguments are refused.
func splitNginxArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var nginxArgs []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, nginxArgs = args[:i], args[i+1:]
	}
	if err := parseFlags(fs, args); err != nil {
		return nil, err
	}
	return nginxArgs, nil
}

func runReload(ctx context.Context, e env, args []string) error {
	fs := newFlagSet("reload", e)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: kube-nginx-sync reload [FLAGS] [-- NGINX-ARGS...]")
		fs.PrintDefaults()
	}
	var (
		logs     logFlags
		rf       reloadFlags
		nginxBin string
		listen   string
	)
	logs.register(fs)
	rf.register(fs, DefaultConfigDir)
	fs.StringVar(&nginxBin, "nginx", "nginx", "nginx binary")
	fs.StringVar(&listen, "listen", ":9090", "address of the HTTP listener for /metrics, /healthz and /readyz")
	nginxArgs, err := splitNginxArgs(fs, args)
	if err != nil {
		return err
	}
	log, err := logs.logger(e)
	if err != nil {
		return err
	}
	mode, err := rf.check()
	if err != nil {
		return err
	}
	registry := newRegistry()
	srv, err := server.Listen(server.Options{Addr: listen, Gatherer: registry})
	if err != nil {
		return err
	}
	reaping(ctx)
	side, err := startNginxSide(ctx, e.stderr, log, registry, rf, mode, nginxBin, nginxArgs)
	if err != nil {
		return err
	}
	srv.SetChecks([]server.Check{side.reloader.Healthy}, []server.Check{side.reloader.Ready})
	log.Info("supervising nginx", "pid", side.nginx.PID(), "config_dir", rf.configDir, "listen", srv.Addr().String(), "version", version())

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
	rel := nginx.NewReloader(nginx.ReloaderOptions{
		Nginx:         sup,
		ConfigDir:     rf.configDir,
		StartedWith:   startedWith,
		Validate:      mode,
		Debounce:      rf.debounce,
		MaxDelay:      rf.maxDelay,
		MaxDelayLimit: rf.maxLimit,
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
