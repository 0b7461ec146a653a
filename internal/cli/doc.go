// Package cli implements the kube-nginx-sync command line on cobra and
// pflag, with kubectl's conventions (flags before or after the arguments,
// -n/--namespace, -l/--selector, --kubeconfig, --context, -h, completion):
// one file per subcommand, the shared flag groups in flags.go. Run is the
// whole program; main only exits with its code, so the command line is
// testable in-process.
package cli
