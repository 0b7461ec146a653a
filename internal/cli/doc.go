// Package cli implements the kube-nginx-sync command line: one file per
// subcommand. Run is the whole program; main only exits with its code, so
// the command line is testable in-process.
package cli
