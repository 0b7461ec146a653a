//go:build tools

// Package tools pins the traefik command so `go build` can build it.
package tools

import _ "github.com/traefik/traefik/v3/cmd/traefik"
