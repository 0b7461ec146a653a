package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// DefaultSelector selects the Services that kube-nginx-sync routes when no
// --selector is given.
const DefaultSelector = "kube-nginx-sync.io/expose=true"

func newFlagSet(name string, e env) *flag.FlagSet {
	fs := flag.NewFlagSet("kube-nginx-sync "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parseFlags parses args and refuses positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError("%v", err)
	}
	if fs.NArg() > 0 {
		return usageError("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

var redirectKlog sync.Once

// logFlags configure the process's logger.
type logFlags struct {
	level  string
	format string
}

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "log format: text or json")
}

func (f *logFlags) logger(e env) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.level)); err != nil {
		return nil, usageError("--log-level %q: want debug, info, warn or error", f.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch f.format {
	case "text":
		h = slog.NewTextHandler(e.stderr, opts)
	case "json":
		h = slog.NewJSONHandler(e.stderr, opts)
	default:
		return nil, usageError("--log-format %q: want text or json", f.format)
	}
	log := slog.New(h)
	// client-go logs through klog, which is global to the process: send it
	// to the first logger made, which in a real process is the only one.
	redirectKlog.Do(func() { klog.SetSlogLogger(log) })
	return log, nil
}

// selectionFlags choose the Services to route.
type selectionFlags struct {
	selector        string
	namespaces      stringList
	defaultUpstream string
}

func (f *selectionFlags) register(fs *flag.FlagSet) {
	const selectorHelp = "label selector of the Services to route (Kubernetes syntax)"
	fs.StringVar(&f.selector, "selector", DefaultSelector, selectorHelp)
	fs.StringVar(&f.selector, "l", DefaultSelector, selectorHelp+" (short for --selector)")
	fs.Var(&f.namespaces, "namespace", "namespace to watch; repeat for several (default: all namespaces)")
	fs.StringVar(&f.defaultUpstream, "default-upstream", string(model.UpstreamEndpoints),
		"upstream mode of Services without the "+model.AnnotationUpstream+" annotation: endpoints or service")
}

// options validates the flags into the selection and the model options.
func (f *selectionFlags) options() (kube.Selection, model.Options, error) {
	sel, err := labels.Parse(f.selector)
	if err != nil {
		return kube.Selection{}, model.Options{}, usageError("--selector %q: %v", f.selector, err)
	}
	for _, ns := range f.namespaces {
		if err := model.CheckNamespace(ns); err != nil {
			return kube.Selection{}, model.Options{}, usageError("--namespace %q: %v", ns, err)
		}
	}
	mode, err := model.ParseUpstreamMode(f.defaultUpstream)
	if err != nil {
		return kube.Selection{}, model.Options{}, usageError("--default-upstream: %v", err)
	}
	return kube.Selection{Selector: sel, Namespaces: f.namespaces},
		model.Options{Selector: sel, Namespaces: f.namespaces, DefaultMode: mode}, nil
}

// rendererFlags shape the rendered config.
type rendererFlags struct {
	template      string
	httpPort      int
	httpAddresses stringList
	statusPort    int
	shape         string
}

func (f *rendererFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.template, "template", "", "Go text/template file to render instead of the built-in one")
	fs.IntVar(&f.httpPort, "http-port", 80, "port that nginx's servers listen on")
	fs.Var(&f.httpAddresses, "http-address", "address that nginx's servers listen on (an IP address, or * for all IPv4); repeat for several (default *)")
	fs.IntVar(&f.statusPort, "status-port", 8099, "port of the status server on 127.0.0.1 that answers the config's version, so reloads can be confirmed; 0 for none")
	fs.StringVar(&f.shape, "shape", string(nginxconf.ShapeUpstream), "shape of the built-in config: upstream (keep-alive, retries) or flat (no upstream blocks: parses faster at many thousands of routes); a --template sees it as .Shape")
}

func (f *rendererFlags) renderer() (*nginxconf.Renderer, error) {
	shape, err := nginxconf.ParseShape(f.shape)
	if err != nil {
		return nil, usageError("--shape: %v", err)
	}
	opts := nginxconf.Options{HTTPPort: f.httpPort, HTTPAddresses: f.httpAddresses, StatusPort: f.statusPort, Shape: shape}
	if f.template != "" {
		text, err := os.ReadFile(f.template)
		if err != nil {
			return nil, usageError("--template: %v", err)
		}
		opts.Template, opts.TemplateName = string(text), f.template
	}
	r, err := nginxconf.NewRenderer(opts)
	if err != nil {
		return nil, usageError("%v", err)
	}
	return r, nil
}

// clientFlags locate the API server.
type clientFlags struct {
	kubeconfig string
	context    string
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)")
	fs.StringVar(&f.context, "context", "", "kubeconfig context (default: the current one)")
}

func (f *clientFlags) options() kube.ClientOptions {
	return kube.ClientOptions{
		Kubeconfig: f.kubeconfig,
		Context:    f.context,
		UserAgent:  fmt.Sprintf("kube-nginx-sync/%s", version()),
	}
}

// positive refuses a zero or negative duration flag.
func positive(name string, d time.Duration) error {
	if d <= 0 {
		return usageError("--%s must be positive", name)
	}
	return nil
}

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

// validator returns the check for staged configs that --validate asks for,
// or nil.
func (f *outputFlags) validator() func(context.Context, string) error {
	if !f.validate {
		return nil
	}
	return func(ctx context.Context, path string) error { return nginx.ValidateSnippet(ctx, f.nginx, path) }
}

// generatorFlags are the flags that render, watch and run share: logging,
// which Services, how to render, where the API server is, where the
// config goes.
type generatorFlags struct {
	logs   logFlags
	sel    selectionFlags
	rend   rendererFlags
	client clientFlags
	out    outputFlags
}

func (f *generatorFlags) register(fs *flag.FlagSet) {
	f.logs.register(fs)
	f.sel.register(fs)
	f.rend.register(fs)
	f.client.register(fs)
	f.out.register(fs)
}

// resolve checks the parsed flags and returns the logger and the
// generator's configuration.
func (f *generatorFlags) resolve(e env) (*slog.Logger, generatorConfig, error) {
	log, err := f.logs.logger(e)
	if err != nil {
		return nil, generatorConfig{}, err
	}
	sel, modelOpts, err := f.sel.options()
	if err != nil {
		return nil, generatorConfig{}, err
	}
	renderer, err := f.rend.renderer()
	if err != nil {
		return nil, generatorConfig{}, err
	}
	return log, generatorConfig{client: f.client, sel: sel, modelOpts: modelOpts, renderer: renderer, out: f.out}, nil
}

// sourceFlags say where the Services come from: the API server (retried
// for up to timeout) or a saved file.
type sourceFlags struct {
	fromFile string
	timeout  time.Duration
}

func (f *sourceFlags) register(fs *flag.FlagSet, defaultTimeout time.Duration) {
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout, "how long to keep retrying while the API server cannot be reached")
	fs.StringVar(&f.fromFile, "from-file", "", "read the Services from a file saved with 'kubectl get svc,endpointslices -A -o yaml' instead of a cluster")
}

func (f *sourceFlags) check() error { return positive("timeout", f.timeout) }
