// Package server is the HTTP listener of the long-running subcommands:
// /metrics (Prometheus), /healthz (the process's loops are turning) and
// /readyz (it is doing its job with current data).
package server
