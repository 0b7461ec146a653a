package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controller"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// DefaultOutput is where the seed's design puts the generated config: the
// emptyDir that nginx's conf.d is.
const DefaultOutput = "/etc/nginx/conf.d/default.conf"

func runRender(ctx context.Context, e env, args []string) error {
	fs := newFlagSet("render", e)
	var (
		gf       generatorFlags
		fromFile string
		timeout  time.Duration
	)
	gf.register(fs)
	fs.DurationVar(&timeout, "timeout", time.Minute, "how long to keep retrying while the API server cannot be reached")
	fs.StringVar(&fromFile, "from-file", "", "render from a file saved with 'kubectl get svc,endpointslices -A -o yaml' instead of a cluster")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, cfg, err := gf.resolve(e)
	if err != nil {
		return err
	}
	if err := positive("timeout", timeout); err != nil {
		return err
	}
	out := cfg.out
	if out.output == "-" && out.validate {
		return usageError("--validate needs a file --output, not stdout")
	}

	var objs kube.Objects
	if fromFile != "" {
		objs, err = kube.LoadFile(fromFile)
	} else {
		objs, err = listFromCluster(ctx, cfg.client.options(), cfg.sel, timeout, log)
	}
	if err != nil {
		return err
	}

	pipeline := &controller.Pipeline{Model: cfg.modelOpts, Renderer: cfg.renderer, Output: out.output, Validate: out.validator()}
	if out.output == "-" {
		res, data, err := pipeline.Generate(objs)
		logRejections(log, res.Rejected)
		if err != nil {
			return err
		}
		_, err = e.stdout.Write(data)
		return err
	}
	outcome, err := pipeline.Apply(ctx, objs)
	res, data, changed := outcome.Result, outcome.Data, outcome.Changed
	logRejections(log, res.Rejected)
	if err != nil {
		return err
	}
	header, _ := nginxconf.Verify(data)
	log.Info("rendered nginx config", "file", out.output, "changed", changed,
		"services", res.Services, "routes", res.Config.Routes(), "upstreams", len(res.Config.Upstreams),
		"rejected", len(res.Rejected), "validated", out.validate, "version", header.Version)
	return nil
}

func listFromCluster(ctx context.Context, opts kube.ClientOptions, sel kube.Selection, timeout time.Duration, log *slog.Logger) (kube.Objects, error) {
	client, err := kube.NewClient(opts)
	if err != nil {
		return kube.Objects{}, err
	}
	return kube.ListWithRetry(ctx, client, sel, timeout, log)
}

// logRejections logs each Service, or Service port, that is not routed.
func logRejections(log *slog.Logger, rejected []model.Rejection) {
	for _, r := range rejected {
		log.Warn("service not routed", "service", r.Service.String(), "port", r.Port, "reason", string(r.Reason), "detail", r.Message)
	}
}
