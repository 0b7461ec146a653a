package cli

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/atomicfile"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
)

// DefaultOutput is where the seed's design puts the generated config: the
// emptyDir that nginx's conf.d is.
const DefaultOutput = "/etc/nginx/conf.d/default.conf"

// outputFlags say where the rendered config goes.
type outputFlags struct {
	output   string
	validate bool
	nginx    string
}

func (f *outputFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.output, "output", DefaultOutput, "file to write the nginx config to (atomically), or - for stdout")
	fs.BoolVar(&f.validate, "validate", false, "check the new config with nginx -t before it replaces the old one")
	fs.StringVar(&f.nginx, "nginx", "nginx", "nginx binary used by --validate")
}

func runRender(ctx context.Context, e env, args []string) error {
	fs := newFlagSet("render", e)
	var (
		logs     logFlags
		selFlags selectionFlags
		rend     rendererFlags
		client   clientFlags
		out      outputFlags
		fromFile string
	)
	logs.register(fs)
	selFlags.register(fs)
	rend.register(fs)
	client.register(fs)
	out.register(fs)
	fs.StringVar(&fromFile, "from-file", "", "render from a file saved with 'kubectl get svc,endpointslices -A -o yaml' instead of a cluster")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logs.logger(e)
	if err != nil {
		return err
	}
	sel, modelOpts, err := selFlags.options()
	if err != nil {
		return err
	}
	renderer, err := rend.renderer()
	if err != nil {
		return err
	}
	clientOpts, err := client.options()
	if err != nil {
		return err
	}
	if out.output == "-" && out.validate {
		return usageError("--validate needs a file --output, not stdout")
	}

	var objs kube.Objects
	if fromFile != "" {
		objs, err = kube.LoadFile(fromFile)
	} else {
		objs, err = listFromCluster(ctx, clientOpts, sel, client.timeout, log)
	}
	if err != nil {
		return err
	}

	res := model.Build(objs.Services, objs.EndpointSlices, modelOpts)
	logRejections(log, res.Rejected)
	data, err := renderer.Render(res.Config, res.Services)
	if err != nil {
		return err
	}
	if out.output == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	var check func(string) error
	if out.validate {
		check = func(tmp string) error { return nginx.ValidateSnippet(ctx, out.nginx, tmp) }
	}
	changed, err := atomicfile.Write(out.output, data, atomicfile.Options{Check: check})
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	log.Info("rendered nginx config", "file", out.output, "changed", changed,
		"services", res.Services, "routes", res.Config.Routes(), "upstreams", len(res.Config.Upstreams),
		"rejected", len(res.Rejected), "validated", out.validate, "header", firstLine(data))
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

func firstLine(b []byte) string {
	for i, c := range b {
		if c == '\n' {
			return string(b[:i])
		}
	}
	return string(b)
}
