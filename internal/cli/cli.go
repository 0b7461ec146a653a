package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
)

// Version is set at link time (-ldflags "-X ...cli.Version=v1.2.3"); when
// empty, the module version from the build info is used.
var Version string

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// exitCodeError makes Run exit with a given code, such as nginx's own
// status when nginx exited.
type exitCodeError struct {
	code int
	err  error
}

func (e exitCodeError) Error() string { return e.err.Error() }

// errUsage marks errors in the command line; Run prints the usage and
// exits with ExitUsage.
var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// env is what a subcommand gets from the process.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"render", "list the Services once, write the nginx config, and exit (the init container)", runRender},
		{"watch", "watch Services and EndpointSlices, keep the nginx config current (the generator sidecar)", runWatch},
		{"reload", "run nginx and hot-reload it, confirmed, when its config folder changes (the nginx container)", runReload},
		{"run", "watch and reload in one process: generate the config and serve it with nginx", runRun},
		{"explain", "say whether and how a Service is routed, and if not, why", runExplain},
		{"diff", "show what a render now would change in the live config file", runDiff},
		{"version", "print the version", runVersion},
	}
}

// Run runs the program with args (without the program name) and returns the
// process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	e := env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(stderr)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	i := slices.IndexFunc(commands(), func(c command) bool { return c.name == args[0] })
	if i < 0 {
		fmt.Fprintf(stderr, "kube-nginx-sync: unknown command %q\n\n", args[0])
		printUsage(stderr)
		return ExitUsage
	}
	err := commands()[i].run(ctx, e, args[1:])
	var code exitCodeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &code):
		fmt.Fprintf(stderr, "kube-nginx-sync %s: %v\n", args[0], code.err)
		return code.code
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "kube-nginx-sync %s: %s\nRun 'kube-nginx-sync %s -h' for the flags.\n",
			args[0], strings.TrimPrefix(err.Error(), errUsage.Error()+": "), args[0])
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "kube-nginx-sync %s: %v\n", args[0], err)
		return ExitError
	}
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "kube-nginx-sync keeps nginx's routing in step with a Kubernetes cluster.")
	fmt.Fprintln(w, "\nUsage: kube-nginx-sync COMMAND [FLAGS]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'kube-nginx-sync COMMAND -h' for a command's flags.")
}

func runVersion(_ context.Context, e env, args []string) error {
	fs := newFlagSet("version", e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "kube-nginx-sync", version())
	return nil
}

func version() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
