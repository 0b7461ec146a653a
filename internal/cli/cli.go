package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
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

// errUsage marks errors in the command line; Run exits with ExitUsage.
var errUsage = errors.New("usage")

func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// runError marks an error that a command's run returned, as opposed to
// one that cobra returned before it: those are all errors in the command
// line.
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// env is what a subcommand gets from the process.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

// Run runs the program with args (without the program name) and returns the
// process exit code: ExitOK, ExitUsage for an error in the command line,
// a command's own code (nginx's status, diff's ExitDiffers), or ExitError.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(env{stdout: stdout, stderr: stderr})
	if len(args) == 0 {
		fmt.Fprint(stderr, root.UsageString())
		return ExitUsage
	}
	root.SetArgs(normalizeArgs(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	if cmd == nil {
		cmd = root
	}
	var code exitCodeError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &code):
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), code.err)
		return code.code
	case errors.Is(err, errUsage) || !errors.As(err, new(runError)):
		msg := strings.TrimSuffix(strings.TrimPrefix(err.Error(), errUsage.Error()+": "), "\n")
		if cmd == root {
			fmt.Fprintf(stderr, "%s: %s\n\n%s", cmd.CommandPath(), msg, root.UsageString())
		} else {
			fmt.Fprintf(stderr, "%s: %s\nRun '%s -h' for the flags.\n", cmd.CommandPath(), msg, cmd.CommandPath())
		}
		return ExitUsage
	default:
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), err)
		return ExitError
	}
}

// newRoot builds the command tree. Each Run builds its own, so that runs
// share no flag values.
func newRoot(e env) *cobra.Command {
	root := &cobra.Command{
		Use:   "kube-nginx-sync",
		Short: "Keep nginx's routing in step with a Kubernetes cluster",
		Long: "kube-nginx-sync keeps nginx's routing in step with a Kubernetes cluster: it routes the Services\n" +
			"that match a label selector, by their annotations, and hot-reloads nginx, confirmed, when they change.",
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetFlagErrorFunc(flagError)
	for _, cmd := range []*cobra.Command{
		renderCommand(e), watchCommand(e), reloadCommand(e), runCommand(e),
		explainCommand(e), diffCommand(e), versionCommand(e),
	} {
		root.AddCommand(cmd)
	}
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	// cobra's completion command shows its help without a shell, or with
	// an unknown one, and exits 0: make both errors in the command line.
	if completion, _, err := root.Find([]string{"completion"}); err == nil && completion != root {
		completion.RunE = func(*cobra.Command, []string) error {
			return usageError("name a shell: bash, zsh, fish or powershell")
		}
	}
	return root
}

// running adapts a command's run to cobra: it gets the command's context
// and the positional arguments, and its errors are marked as its own.
func running(run func(ctx context.Context, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := run(cmd.Context(), args); err != nil {
			return runError{err}
		}
		return nil
	}
}

// noArgs refuses positional arguments.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected argument %q", args[0])
	}
	return nil
}

func versionCommand(e env) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		RunE: running(func(context.Context, []string) error {
			_, err := fmt.Fprintln(e.stdout, "kube-nginx-sync", version())
			return err
		}),
		ValidArgsFunction: cobra.NoFileCompletions,
	}
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
