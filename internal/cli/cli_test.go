package cli

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/cobra"
)

// subcommands lists every command under the root as its arguments, such
// as ["completion", "bash"], built from the tree so that a new command is
// covered.
func subcommands() [][]string {
	var all [][]string
	var walk func(path []string, cmd *cobra.Command)
	walk = func(path []string, cmd *cobra.Command) {
		for _, c := range cmd.Commands() {
			p := append(slices.Clone(path), c.Name())
			all = append(all, p)
			walk(p, c)
		}
	}
	walk(nil, newRoot(env{stdout: io.Discard, stderr: io.Discard}))
	return all
}

func TestHelpExitsZero(t *testing.T) {
	t.Parallel()
	cmds := subcommands()
	for _, want := range []string{"render", "watch", "reload", "run", "explain", "diff", "version", "completion", "help"} {
		if !slices.ContainsFunc(cmds, func(c []string) bool { return c[0] == want }) {
			t.Errorf("no %s command", want)
		}
	}
	cases := [][]string{{"-h"}, {"--help"}, {"help"}}
	for _, c := range cmds {
		cases = append(cases, append(slices.Clone(c), "-h"), append(slices.Clone(c), "--help"), append([]string{"help"}, c...))
	}
	// Go's flag package took -help too; and -h after the other flags.
	cases = append(cases, []string{"render", "-help"}, []string{"explain", "shop/web", "--output", "-", "-h"})
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := run(args...)
			if code != ExitOK || !strings.Contains(stdout, "Usage:") {
				t.Errorf("exit %d, want %d with the usage on stdout\nstdout: %s\nstderr: %s", code, ExitOK, stdout, stderr)
			}
		})
	}
}

func TestHelpNamesTheFlags(t *testing.T) {
	t.Parallel()
	tests := map[string][]string{
		"render":  {"-l, --selector", "-n, --namespace", "--kubeconfig", "--context", "--from-file", "--fallback-last-good", "--timeout duration"},
		"watch":   {"--debounce", "--max-delay", "--max-delay-limit", "--stale-after", "--listen"},
		"reload":  {"--config-dir", "--reload-debounce", "--reload-max-delay", "--reload-max-delay-limit", "--min-reload-interval", "[-- NGINX-ARGS...]"},
		"run":     {"--debounce", "--reload-debounce", "--max-delay-limit", "--reload-max-delay-limit", "--shutdown-timeout", "--validate"},
		"explain": {"explain NAMESPACE/SERVICE | ingress/NAMESPACE/NAME [flags]", "--from-file"},
	}
	for cmd, flags := range tests {
		t.Run(cmd, func(t *testing.T) {
			t.Parallel()
			_, stdout, _ := run(cmd, "-h")
			for _, f := range flags {
				if !strings.Contains(stdout, f) {
					t.Errorf("%s -h lacks %q:\n%s", cmd, f, stdout)
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := run("version")
	if code != ExitOK || stdout != "kube-nginx-sync "+version()+"\n" || stderr != "" {
		t.Errorf("version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestCompletion(t *testing.T) {
	t.Parallel()
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		t.Run(shell, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := run("completion", shell)
			if code != ExitOK || !strings.Contains(stdout, "kube-nginx-sync") {
				t.Errorf("exit %d, %d bytes of script; stderr %s", code, len(stdout), stderr)
			}
		})
	}
}

// TestCompletionValues: the scripts call the hidden __complete command;
// these are the values it offers.
func TestCompletionValues(t *testing.T) {
	t.Parallel()
	kubeconfig := writeKubeconfig(t)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"render", "--log-level", ""}, []string{"debug", "info", "warn", "error"}},
		{[]string{"run", "--reload-validate", ""}, []string{"auto", "always", "never"}},
		{[]string{"watch", "--default-upstream", ""}, []string{"endpoints", "service"}},
		{[]string{"render", "--kubeconfig", kubeconfig, "--context", ""}, []string{"broken", "home"}},
		{[]string{"explain", "--from-file", objectsFile, "shop/"}, []string{"shop/api", "shop/internal", "shop/web"}},
		{[]string{"explain", "--from-file", objectsFile, "shop/web", ""}, nil},
		{[]string{"completion", ""}, []string{"bash", "fish", "powershell", "zsh"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := run(append([]string{cobra.ShellCompRequestCmd}, tt.args...)...)
			if code != ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var got []string
			for line := range strings.Lines(stdout) {
				line = strings.TrimSpace(line)
				if line != "" && !strings.HasPrefix(line, ":") {
					word, _, _ := strings.Cut(line, "\t")
					got = append(got, word)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("completions (-want +got):\n%s", diff)
			}
		})
	}
}

// writeKubeconfig writes a kubeconfig whose current context "home" is
// fine and whose context "broken" names a cluster with a missing CA file.
func writeKubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const text = `apiVersion: v1
kind: Config
clusters:
- name: home
  cluster: {server: "https://127.0.0.1:6443"}
- name: other
  cluster: {server: "https://127.0.0.1:6443", certificate-authority: /no/such/ca.crt}
users:
- name: me
  user: {token: secret}
contexts:
- name: home
  context: {cluster: home, user: me}
- name: broken
  context: {cluster: other, user: me}
current-context: home
`
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestContextFlag: --context picks the kubeconfig's context through
// clientcmd's overrides; these fail before any connection.
func TestContextFlag(t *testing.T) {
	t.Parallel()
	kubeconfig := writeKubeconfig(t)
	tests := []struct {
		context string
		want    string
	}{
		{"nope", `context "nope" does not exist`},
		{"broken", `unable to read certificate-authority /no/such/ca.crt`},
	}
	for _, tt := range tests {
		t.Run(tt.context, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := run("render", "--kubeconfig", kubeconfig, "--context", tt.context, "--output", "-")
			if code != ExitError || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitError, tt.want)
			}
		})
	}
}

// TestFlagsAnywhere: as with kubectl, flags may come before or after the
// positional arguments.
func TestFlagsAnywhere(t *testing.T) {
	t.Parallel()
	const want = "Service shop/web\n  routed: host shop.example.com path /shop/web/ -> port http (endpoints, prefix stripped): 10.1.0.5:8080\n"
	for _, args := range [][]string{
		{"explain", "--from-file", objectsFile, "shop/web"},
		{"explain", "shop/web", "--from-file", objectsFile},
		{"explain", "shop/web", "--from-file=" + objectsFile},
		{"explain", "-n", "shop", "shop/web", "-l", DefaultSelector, "--from-file", objectsFile},
		{"explain", "shop/web", "-from-file", objectsFile, "-namespace=shop"},
		{"explain", "--log-level", "debug", "shop/web", "--from-file", objectsFile, "--timeout", "5s"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := run(args...)
			if code != ExitOK || stdout != want {
				t.Errorf("exit %d\nstdout: %q\nstderr: %s", code, stdout, stderr)
			}
		})
	}
}

// TestSingleDashLongFlags: command lines written for Go's flag package
// (-selector x, -output=-, --l x) mean what they meant.
func TestSingleDashLongFlags(t *testing.T) {
	t.Parallel()
	// The selector picks only shop/internal, the Service without labels.
	const selector = "!kube-nginx-sync.io/expose"
	_, want, _ := run("render", "--from-file", objectsFile, "--output", "-", "--selector", selector, "--http-port", "8080")
	_, all, _ := run("render", "--from-file", objectsFile, "--output", "-")
	if !strings.Contains(want, "listen 8080") || want == all {
		t.Fatalf("the reference render is not what this test expects:\n%s", want)
	}
	for _, args := range [][]string{
		{"render", "-from-file", objectsFile, "-output", "-", "-selector", selector, "-http-port", "8080"},
		{"render", "-from-file=" + objectsFile, "-output=-", "-selector=" + selector, "-http-port=8080"},
		{"render", "--from-file", objectsFile, "-output", "-", "--l", selector, "-http-port", "8080", "-validate=false"},
		{"render", "-from-file", objectsFile, "-output", "-", "-l=" + selector, "--http-port=8080", "-log-level", "warn"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := run(args...)
			if code != ExitOK || stdout != want {
				t.Errorf("exit %d, output differs: %s\n%s", code, stderr, stdout)
			}
		})
	}
}

func TestNormalizeArgs(t *testing.T) {
	t.Parallel()
	root := newRoot(env{stdout: io.Discard, stderr: io.Discard})
	tests := []struct {
		in, want []string
	}{
		{[]string{"render", "-selector", "x"}, []string{"render", "--selector", "x"}},
		{[]string{"render", "-output=-", "-validate"}, []string{"render", "--output=-", "--validate"}},
		{[]string{"render", "-validate", "-output", "-"}, []string{"render", "--validate", "--output", "-"}},
		{[]string{"render", "--l", "x", "-l", "y", "-l=z"}, []string{"render", "-l", "x", "-l", "y", "-l=z"}},
		{[]string{"render", "-nshop", "-n", "-output"}, []string{"render", "-nshop", "-n", "-output"}},
		{[]string{"render", "--template", "-output"}, []string{"render", "--template", "-output"}},
		{[]string{"render", "-template", "-output"}, []string{"render", "--template", "-output"}},
		{[]string{"render", "-help", "-no-such-flag"}, []string{"render", "--help", "-no-such-flag"}},
		{[]string{"explain", "shop/web", "-from-file", "f"}, []string{"explain", "shop/web", "--from-file", "f"}},
		{[]string{"reload", "-config-dir", "d", "--", "-p", "x", "-listen", "y"}, []string{"reload", "--config-dir", "d", "--", "-p", "x", "-listen", "y"}},
		{[]string{"run", "-reload-debounce=1s", "-debounce", "1s"}, []string{"run", "--reload-debounce=1s", "--debounce", "1s"}},
		{[]string{"-selector", "x"}, []string{"-selector", "x"}},
		{[]string{"frobnicate", "-selector"}, []string{"frobnicate", "-selector"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, normalizeArgs(root, tt.in)); diff != "" {
			t.Errorf("normalizeArgs(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

// TestUsageErrors: an error in the command line exits 2 and says which
// flag or argument is wrong and what a valid one looks like.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"render", "--selector", "a in (b"}, `--selector "a in (b": `},
		{[]string{"render", "--default-upstream", "pods"}, `--default-upstream "pods": must be "endpoints" or "service"`},
		{[]string{"render", "--namespace", "Bad_NS"}, `--namespace "Bad_NS": not a namespace name`},
		{[]string{"render", "-n", "Bad_NS"}, `--namespace "Bad_NS": not a namespace name`},
		{[]string{"render", "--http-port", "0"}, "--http-port: http port 0 is out of range 1-65535"},
		{[]string{"render", "--http-port", "x"}, `--http-port "x": want a whole number`},
		{[]string{"render", "--http-address", "localhost"}, `--http-address: http address "localhost" is neither an IP address nor *`},
		{[]string{"render", "--status-port", "80"}, "--status-port: status port 80 is also the http port"},
		{[]string{"render", "--template", "/no/such/file"}, "--template: open /no/such/file"},
		{[]string{"render", "--log-level", "loud"}, `--log-level "loud": want debug, info, warn or error`},
		{[]string{"render", "--log-format", "xml"}, `--log-format "xml": want text or json`},
		{[]string{"render", "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{[]string{"render", "--timeout", "soon"}, `--timeout "soon": want a duration such as 500ms, 30s or 2m`},
		{[]string{"render", "--timeout"}, "--timeout needs a value: want a duration"},
		{[]string{"render", "--validate=maybe"}, `--validate "maybe": want true or false`},
		{[]string{"render", "--output", "-", "--validate"}, "--validate needs a file --output"},
		{[]string{"render", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"render", "-x"}, "unknown shorthand flag: 'x' in -x"},
		{[]string{"render", "--debounce", "1s"}, "unknown flag: --debounce"},
		{[]string{"render", "extra"}, `unexpected argument "extra"`},
		{[]string{"watch", "--max-delay", "10ms"}, "--max-delay 10ms: want at least --debounce (20ms)"},
		{[]string{"watch", "--max-delay-limit", "500ms"}, "--max-delay-limit 500ms: want at least --max-delay (1s)"},
		{[]string{"watch", "--stale-after", "0s"}, "--stale-after 0s: want a positive duration"},
		{[]string{"watch", "--output", "-"}, "watch needs a file --output"},
		{[]string{"reload", "--reload-max-delay", "50ms"}, "--reload-max-delay 50ms: want at least --reload-debounce (100ms)"},
		{[]string{"reload", "--reload-validate", "sometimes"}, `--reload-validate "sometimes": must be "auto", "always" or "never"`},
		{[]string{"reload", "--drain-wait", "-1s"}, "--drain-wait -1s: want a duration of 0 or more"},
		{[]string{"reload", "--max-draining-generations", "-1"}, "--max-draining-generations -1: want 0 (no bound) or more"},
		{[]string{"reload", "nginx-arg"}, `unexpected argument "nginx-arg" (nginx's own arguments go after --)`},
		{[]string{"run", "--reload-debounce", "0s"}, "--reload-debounce 0s: want a positive duration"},
		{[]string{"run", "--debounce", "0s"}, "--debounce 0s: want a positive duration"},
		{[]string{"run", "--output", "-"}, "run needs a file --output"},
		{[]string{"explain"}, "name one Service as NAMESPACE/SERVICE"},
		{[]string{"explain", "a/b", "c/d"}, "name one Service as NAMESPACE/SERVICE"},
		{[]string{"explain", "--from-file", objectsFile, "no-slash"}, `"no-slash" is not NAMESPACE/SERVICE`},
		{[]string{"diff", "--output", "-"}, "diff compares with the file --output names"},
		{[]string{"version", "extra"}, `unexpected argument "extra"`},
		{[]string{"completion"}, "name a shell: bash, zsh, fish or powershell"},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"rendr"}, "Did you mean this?\n\trender"},
		{[]string{"--no-such-flag"}, "unknown flag: --no-such-flag"},
		{nil, "Usage:"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := run(tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) || stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q; want %d and %q", code, stderr, stdout, ExitUsage, tt.want)
			}
		})
	}
}

// TestRunErrors: errors that are not in the command line exit 1.
func TestRunErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"render", "--from-file", "/no/such/file", "--output", "-"}, "kube-nginx-sync render: "},
		{[]string{"explain", "shop/nope", "--from-file", objectsFile}, "kube-nginx-sync explain: service shop/nope not found"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			code, _, stderr := run(tt.args...)
			if code != ExitError || !strings.Contains(stderr, tt.want) || strings.Contains(stderr, "-h' for the flags") {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr, ExitError, tt.want)
			}
		})
	}
}
