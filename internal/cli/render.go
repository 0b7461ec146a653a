package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/atomicfile"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controller"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// DefaultOutput is where the seed's design puts the generated config: the
// emptyDir that nginx's conf.d is.
const DefaultOutput = "/etc/nginx/conf.d/default.conf"

// renderOptions are render's flags.
type renderOptions struct {
	gf       generatorFlags
	src      sourceFlags
	fallback bool
}

func renderCommand(e env) *cobra.Command {
	var o renderOptions
	cmd := &cobra.Command{
		Use:   "render",
		Short: "List the Services once, write the nginx config, and exit (the init container)",
		Example: `  kube-nginx-sync render --output /etc/nginx/conf.d/default.conf --validate
  kube-nginx-sync render -n shop -l app=web --output -
  kube-nginx-sync render --from-file objects.yaml --output -`,
		Args:              noArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              running(func(ctx context.Context, _ []string) error { return o.run(ctx, e) }),
	}
	o.gf.register(cmd)
	o.src.register(cmd, time.Minute)
	cmd.Flags().BoolVar(&o.fallback, "fallback-last-good", false,
		"when the API server cannot be reached within --timeout, write the last config that passed --validate (kept beside --output) instead of failing")
	return cmd
}

func (o *renderOptions) run(ctx context.Context, e env) error {
	log, cfg, err := o.gf.resolve(e)
	if err != nil {
		return err
	}
	if err := o.src.check(); err != nil {
		return err
	}
	out := cfg.out
	if out.output == "-" && out.validate {
		return usageError("--validate needs a file --output, not stdout")
	}

	objs, err := o.src.read(ctx, cfg, log)
	if err != nil {
		if o.fallback && o.src.fromFile == "" && out.output != "-" {
			return fallBackToLastGood(out.output, cfg.tableFile, err, log)
		}
		return err
	}

	pipeline := &controller.Pipeline{Model: cfg.modelOpts, Renderer: cfg.renderer, Output: out.output, TableFile: cfg.tableFile, Validate: out.validator()}
	if out.output == "-" {
		if cfg.tableFile != "" {
			log.Warn("the lua shape's routes and endpoints are not written when the config goes to stdout; nginx reads them from a file of their own",
				"table_file", cfg.tableFile)
		}
		res, file, err := pipeline.Generate(objs)
		logRejections(log, res)
		logIngressResult(log, res.Ingress)
		if err != nil {
			return err
		}
		for _, srv := range res.Config.Servers {
			if srv.TLS != nil {
				log.Warn("the certificate files are not written when the config goes to stdout; nginx reads them from files of their own",
					"host", srv.Host, "file", cfg.renderer.CertificateFile(srv.TLS))
			}
		}
		_, err = e.stdout.Write(file.Data)
		return err
	}
	outcome, err := pipeline.Apply(ctx, objs)
	res, changed := outcome.Result, outcome.Changed
	logRejections(log, res)
	logIngressResult(log, res.Ingress)
	if err != nil {
		return err
	}
	log.Info("rendered nginx config", "file", out.output, "changed", changed,
		"services", res.Services, "routes", res.Config.Routes(), "upstreams", len(res.Config.Upstreams),
		"https_hosts", httpsServed(res), "rejected", len(res.Rejected), "validated", out.validate, "version", outcome.Version)
	return nil
}

// read reads the Services and EndpointSlices from the file, or else from
// the API server, retrying for up to the timeout.
func (f *sourceFlags) read(ctx context.Context, cfg generatorConfig, log *slog.Logger) (kube.Objects, error) {
	if f.fromFile != "" {
		return kube.LoadFile(f.fromFile)
	}
	client, err := kube.NewClient(cfg.client.options())
	if err != nil {
		return kube.Objects{}, err
	}
	return kube.ListWithRetry(ctx, client, cfg.sel, f.timeout, log)
}

// logRejections logs each Service, or Service port, that is not routed,
// and each HTTPS problem.
func logRejections(log *slog.Logger, res model.Result) {
	for _, r := range res.Rejected {
		log.Warn("service not routed", "service", r.Service.String(), "port", r.Port, "reason", string(r.Reason), "detail", r.Message)
	}
	for _, w := range res.Warnings {
		log.Warn("https problem", "service", w.Service.String(), "reason", string(w.Reason), "detail", w.Message)
	}
}

// httpsServed counts the hosts served over HTTPS.
func httpsServed(res model.Result) int {
	n := 0
	for _, c := range res.Certificates {
		if c.Served {
			n++
		}
	}
	return n
}

// fallBackToLastGood puts the last validated config in place of a fresh
// render that failed with cause, and says so loudly. In the lua shape
// (tableFile set), the routes and endpoints are in the table file, which
// the generator keeps beside the config: without a readable one, the last
// good config would answer 404 to everything, and the fallback fails.
func fallBackToLastGood(output, tableFile string, cause error, log *slog.Logger) error {
	lastGood := confdir.LastGood(output)
	data, err := os.ReadFile(lastGood)
	if err != nil {
		return fmt.Errorf("%w; and no last good config to fall back to: %v", cause, err)
	}
	tableVersion := ""
	if tableFile != "" {
		if _, tableVersion, err = luaplane.Read(tableFile); err != nil {
			return fmt.Errorf("%w; and the table of routes and endpoints that the last good config needs cannot be read: %v", cause, err)
		}
	}
	info, _ := os.Stat(lastGood)
	if _, err := atomicfile.Write(output, data, atomicfile.Options{}); err != nil {
		return fmt.Errorf("%w; and falling back to the last good config failed: %v", cause, err)
	}
	header, _ := nginxconf.Verify(data)
	log.Error("FALLBACK: the API server could not be reached, so this is NOT a fresh render: "+
		"the last config that passed validation was written instead; it may be stale",
		"file", output, "last_good", lastGood, "last_good_written", info.ModTime(), "version", header.Version,
		"table_version", tableVersion, "cause", cause)
	return nil
}
