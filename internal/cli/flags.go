package cli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/kube"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// DefaultSelector selects the Services that kube-nginx-sync routes when no
// --selector is given.
const DefaultSelector = "kube-nginx-sync.io/expose=true"

// This file holds the flag groups: each group is defined once and
// registered on every command that takes it. A group's register adds its
// flags (and their shell completions) to a command; its check or resolve
// turns the parsed values into options, with errors that name the flag and
// say what a valid value looks like.

// completeWords completes a flag with a fixed list of values.
func completeWords(words ...string) cobra.CompletionFunc {
	return cobra.FixedCompletions(words, cobra.ShellCompDirectiveNoFileComp)
}

// mustComplete registers a completion of flag name on cmd. It fails only
// for a flag that is not defined or is already registered: a bug here.
func mustComplete(cmd *cobra.Command, name string, f cobra.CompletionFunc) {
	if err := cmd.RegisterFlagCompletionFunc(name, f); err != nil {
		panic(err)
	}
}

var redirectKlog sync.Once

// logFlags configure the process's logger.
type logFlags struct {
	level  string
	format string
}

func (f *logFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "log format: text or json")
	mustComplete(cmd, "log-level", completeWords("debug", "info", "warn", "error"))
	mustComplete(cmd, "log-format", completeWords("text", "json"))
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
	namespaces      []string
	defaultUpstream string
}

func (f *selectionFlags) register(cmd *cobra.Command, client *clientFlags) {
	fs := cmd.Flags()
	fs.StringVarP(&f.selector, "selector", "l", DefaultSelector, "label selector of the Services to route (Kubernetes syntax, e.g. app=web,tier!=db)")
	fs.StringArrayVarP(&f.namespaces, "namespace", "n", nil, "namespace to watch; repeat for several (default: all namespaces)")
	fs.StringVar(&f.defaultUpstream, "default-upstream", string(model.UpstreamEndpoints),
		"upstream mode of Services without the "+model.AnnotationUpstream+" annotation: endpoints or service")
	mustComplete(cmd, "selector", cobra.NoFileCompletions)
	mustComplete(cmd, "namespace", client.completeNamespaces)
	mustComplete(cmd, "default-upstream", completeWords(string(model.UpstreamEndpoints), string(model.UpstreamService)))
}

// options validates the flags into the selection and the model options.
func (f *selectionFlags) options() (kube.Selection, model.Options, error) {
	sel, err := labels.Parse(f.selector)
	if err != nil {
		return kube.Selection{}, model.Options{}, usageError("--selector %q: %v; want a label selector such as app=web,tier!=db", f.selector, err)
	}
	for _, ns := range f.namespaces {
		if err := model.CheckNamespace(ns); err != nil {
			return kube.Selection{}, model.Options{}, usageError("--namespace %q: %v; want a namespace name such as shop (lowercase letters, digits and -)", ns, err)
		}
	}
	mode, err := model.ParseUpstreamMode(f.defaultUpstream)
	if err != nil {
		return kube.Selection{}, model.Options{}, usageError("--default-upstream %q: %v", f.defaultUpstream, err)
	}
	return kube.Selection{Selector: sel, Namespaces: f.namespaces},
		model.Options{Selector: sel, Namespaces: f.namespaces, DefaultMode: mode}, nil
}

// rendererFlags shape the rendered config.
type rendererFlags struct {
	template      string
	httpPort      int
	httpAddresses []string
	statusPort    int
	shape         string
	httpsPort     int
}

func (f *rendererFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.template, "template", "", "Go text/template file to render instead of the built-in one")
	fs.IntVar(&f.httpPort, "http-port", 80, "port that nginx's servers listen on")
	fs.StringArrayVar(&f.httpAddresses, "http-address", nil, "address that nginx's servers listen on (an IP address, or * for all IPv4); repeat for several (default *)")
	fs.IntVar(&f.statusPort, "status-port", 8099, "port of the status server on 127.0.0.1 that answers the config's version, so reloads can be confirmed; 0 for none")
	fs.IntVar(&f.httpsPort, "https-port", 443, "port that nginx serves HTTPS on, on the --http-address addresses, for the hosts whose Services name a TLS Secret ("+model.AnnotationTLSSecret+"); 0 for no HTTPS, and then no Secret is read")
	fs.StringVar(&f.shape, "shape", string(nginxconf.ShapeUpstream), "shape of the built-in config: upstream (keep-alive, retries), lua (routes and endpoints in a table file beside the config that nginx's Lua module reads: no reload for them) or flat (no upstream blocks: parses faster at many thousands of routes); a --template sees it as .Shape")
	mustComplete(cmd, "http-port", cobra.NoFileCompletions)
	mustComplete(cmd, "http-address", cobra.NoFileCompletions)
	mustComplete(cmd, "status-port", cobra.NoFileCompletions)
	mustComplete(cmd, "https-port", cobra.NoFileCompletions)
	mustComplete(cmd, "shape", cobra.FixedCompletions(nginxconf.Shapes(), cobra.ShellCompDirectiveNoFileComp))
}

// renderer returns the renderer the flags ask for; dir is the config's
// folder as nginx sees it, where the lua shape's table file and the
// certificate files are.
func (f *rendererFlags) renderer(dir string) (*nginxconf.Renderer, error) {
	shape, err := nginxconf.ParseShape(f.shape)
	if err != nil {
		return nil, usageError("--shape %q: %v", f.shape, err)
	}
	// nginxconf owns the rules for valid listen options; adding the
	// options one flag at a time tells which flag broke them.
	opts := nginxconf.Options{HTTPPort: f.httpPort, Shape: shape}
	if shape == nginxconf.ShapeLua {
		opts.TableFile = filepath.Join(dir, luaplane.FileName)
	}
	steps := []struct {
		flag string
		add  func()
	}{
		{"--http-port", func() {}},
		{"--http-address", func() { opts.HTTPAddresses = f.httpAddresses }},
		{"--status-port", func() { opts.StatusPort = f.statusPort }},
		{"--https-port", func() { opts.HTTPSPort, opts.CertificateDir = f.httpsPort, dir }},
	}
	for _, s := range steps {
		s.add()
		if _, err := nginxconf.NewRenderer(opts); err != nil {
			return nil, usageError("%s: %v", s.flag, err)
		}
	}
	if f.template != "" {
		text, err := os.ReadFile(f.template)
		if err != nil {
			return nil, usageError("--template: %v", err)
		}
		opts.Template, opts.TemplateName = string(text), f.template
	}
	r, err := nginxconf.NewRenderer(opts)
	if err != nil {
		return nil, usageError("--template %s: %v", f.template, err)
	}
	return r, nil
}

// clientFlags locate the API server, the way kubectl's flags of the same
// names do.
type clientFlags struct {
	kubeconfig string
	context    string
}

func (f *clientFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster)")
	fs.StringVar(&f.context, "context", "", "kubeconfig context to use (default: the kubeconfig's current context)")
	mustComplete(cmd, "context", f.completeContexts)
}

func (f *clientFlags) options() kube.ClientOptions {
	return kube.ClientOptions{
		Kubeconfig: f.kubeconfig,
		Context:    f.context,
		UserAgent:  fmt.Sprintf("kube-nginx-sync/%s", version()),
	}
}

// outputFlags say where the rendered config goes.
type outputFlags struct {
	output   string
	validate bool
	nginx    string
}

func (f *outputFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringVar(&f.output, "output", DefaultOutput, "file to write the nginx config to (atomically), or - for stdout")
	fs.BoolVar(&f.validate, "validate", false, "check the new config with nginx -t before it replaces the old one")
	fs.StringVar(&f.nginx, "nginx", "nginx", "nginx binary used by --validate")
}

// dir is the config's folder, where the lua shape's table file and the
// certificate files go, beside the config (nginx reads them at the same
// path: both containers mount the folder at the same place), or the
// default config's when the config goes to stdout.
func (f *outputFlags) dir() (string, error) {
	out := f.output
	if out == "-" {
		out = DefaultOutput
	}
	abs, err := filepath.Abs(out)
	if err != nil {
		return "", fmt.Errorf("--output %q: %w", f.output, err)
	}
	return filepath.Dir(abs), nil
}

// validator returns the check for staged configs that --validate asks for,
// or nil.
func (f *outputFlags) validator() func(context.Context, string) error {
	if !f.validate {
		return nil
	}
	return func(ctx context.Context, path string) error { return nginx.ValidateSnippet(ctx, f.nginx, path) }
}

// generatorFlags are the flags that render, watch, run, explain and diff
// share: logging, which Services, how to render, where the API server is,
// where the config goes.
type generatorFlags struct {
	logs   logFlags
	sel    selectionFlags
	rend   rendererFlags
	client clientFlags
	out    outputFlags

	// ingress chooses the Ingresses routed besides (ingress.go).
	ingress ingressFlags
}

func (f *generatorFlags) register(cmd *cobra.Command) {
	f.logs.register(cmd)
	f.sel.register(cmd, &f.client)
	f.rend.register(cmd)
	f.client.register(cmd)
	f.out.register(cmd)
	f.ingress.register(cmd)
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
	if err := f.ingress.apply(&sel, &modelOpts); err != nil {
		return nil, generatorConfig{}, err
	}
	dir, err := f.out.dir()
	if err != nil {
		return nil, generatorConfig{}, err
	}
	renderer, err := f.rend.renderer(dir)
	if err != nil {
		return nil, generatorConfig{}, err
	}
	// With no HTTPS port, no Secret is read, and a host that asks for
	// HTTPS gets a Warning.
	sel.TLSSecrets, modelOpts.DisableHTTPS = f.rend.httpsPort != 0, f.rend.httpsPort == 0
	cfg := generatorConfig{client: f.client, sel: sel, modelOpts: modelOpts, renderer: renderer, out: f.out}
	if f.rend.shape == string(nginxconf.ShapeLua) {
		cfg.tableFile = filepath.Join(dir, luaplane.FileName)
	}
	return log, cfg, nil
}

// sourceFlags say where the Services come from: the API server (retried
// for up to timeout) or a saved file.
type sourceFlags struct {
	fromFile string
	timeout  time.Duration
}

func (f *sourceFlags) register(cmd *cobra.Command, defaultTimeout time.Duration) {
	fs := cmd.Flags()
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout, "how long to keep retrying while the API server cannot be reached")
	fs.StringVar(&f.fromFile, "from-file", "", "read the Services from a file saved with 'kubectl get svc,endpointslices -A -o yaml' instead of a cluster")
	mustComplete(cmd, "timeout", cobra.NoFileCompletions)
}

func (f *sourceFlags) check() error { return positive("timeout", f.timeout) }

// coalesceFlags time the work that a burst of changes causes: the
// generator's rebuilds of the config (flags without a prefix) or the
// reloads of nginx (prefix "reload-"). run takes both.
type coalesceFlags struct {
	prefix   string
	debounce time.Duration
	maxDelay time.Duration
	maxLimit time.Duration
}

// register adds --PREFIXdebounce, --PREFIXmax-delay and
// --PREFIXmax-delay-limit; work names one piece of work ("rebuild"), and
// adding "s" makes its plural.
func (f *coalesceFlags) register(cmd *cobra.Command, prefix, work string, debounce time.Duration) {
	f.prefix = prefix
	fs := cmd.Flags()
	fs.DurationVar(&f.debounce, prefix+"debounce", debounce, "quiet period after a change before a "+work)
	fs.DurationVar(&f.maxDelay, prefix+"max-delay", time.Second,
		"longest a burst of changes may defer a "+work+" after a quiet time; also the first cooldown between "+work+"s while changes keep coming")
	fs.DurationVar(&f.maxLimit, prefix+"max-delay-limit", 4*time.Second, "the cooldown between "+work+"s doubles up to this while changes keep coming")
	for _, name := range []string{"debounce", "max-delay", "max-delay-limit"} {
		mustComplete(cmd, prefix+name, cobra.NoFileCompletions)
	}
}

func (f *coalesceFlags) check() error {
	debounce, maxDelay, maxLimit := "--"+f.prefix+"debounce", "--"+f.prefix+"max-delay", "--"+f.prefix+"max-delay-limit"
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{debounce, f.debounce}, {maxDelay, f.maxDelay}} {
		if err := positive(strings.TrimPrefix(d.name, "--"), d.d); err != nil {
			return err
		}
	}
	if f.maxLimit < f.maxDelay {
		return usageError("%s %s: want at least %s (%s)", maxLimit, f.maxLimit, maxDelay, f.maxDelay)
	}
	if f.maxDelay < f.debounce {
		return usageError("%s %s: want at least %s (%s)", maxDelay, f.maxDelay, debounce, f.debounce)
	}
	return nil
}

// registerListen adds --listen, the address of the HTTP listener.
func registerListen(cmd *cobra.Command, listen *string) {
	cmd.Flags().StringVar(listen, "listen", ":9090", "address of the HTTP listener for /metrics, /healthz and /readyz")
	mustComplete(cmd, "listen", cobra.NoFileCompletions)
}

// positive refuses a zero or negative duration flag.
func positive(name string, d time.Duration) error {
	if d <= 0 {
		return usageError("--%s %s: want a positive duration, such as 500ms, 30s or 2m", name, d)
	}
	return nil
}

// flagError turns pflag's parse errors into usage errors that name the flag
// and say what a valid value looks like.
func flagError(_ *cobra.Command, err error) error {
	var invalid *pflag.InvalidValueError
	if errors.As(err, &invalid) {
		f := invalid.GetFlag()
		return usageError("--%s %q: want %s", f.Name, invalid.GetValue(), cmp.Or(valueKind(f.Value.Type()), "a "+f.Value.Type()))
	}
	var missing *pflag.ValueRequiredError
	if errors.As(err, &missing) {
		f := missing.GetFlag()
		if kind := valueKind(f.Value.Type()); kind != "" {
			return usageError("--%s needs a value: want %s", f.Name, kind)
		}
		return usageError("--%s needs a value", f.Name)
	}
	return usageError("%v", err)
}

// valueKind says in words what a pflag value type accepts; "" for any
// string.
func valueKind(typ string) string {
	switch typ {
	case "duration":
		return "a duration such as 500ms, 30s or 2m"
	case "int":
		return "a whole number"
	case "bool":
		return "true or false"
	}
	return ""
}

// normalizeArgs rewrites the single-dash long flags that Go's flag package
// accepted (-selector x, -output=-) to pflag's double dash, and --l (Go's
// flag took any name after one or two dashes) to the shorthand -l, so that
// command lines written for earlier versions keep working. Only names the
// command defines are rewritten, values of flags are skipped, and nothing
// after "--" (nginx's arguments) is touched.
func normalizeArgs(root *cobra.Command, args []string) []string {
	if len(args) == 0 {
		return args
	}
	cmd, _, err := root.Find(args[:1])
	if err != nil || cmd == root {
		return args
	}
	cmd.InitDefaultHelpFlag()
	fs := cmd.Flags()
	out := slices.Clone(args)
	for i := 1; i < len(out); i++ {
		arg := out[i]
		if arg == "--" {
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			continue
		}
		var f *pflag.Flag
		name, _, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch {
		case strings.HasPrefix(arg, "--") && len(name) == 1:
			if f = fs.ShorthandLookup(name); f != nil && fs.Lookup(name) == nil {
				out[i] = arg[1:]
			}
		case strings.HasPrefix(arg, "--"):
			f = fs.Lookup(name)
		case len(name) == 1:
			f = fs.ShorthandLookup(name)
		default:
			// -long-name, or a group of shorthands such as -nshop.
			if f = fs.Lookup(name); f != nil {
				out[i] = "-" + arg
			}
		}
		if f != nil && !hasValue && f.NoOptDefVal == "" {
			i++ // the flag's value, whatever it looks like
		}
	}
	return out
}
