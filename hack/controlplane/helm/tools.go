//go:build tools

// Package tools pins the helm command so `go build` can build it.
package tools

import _ "helm.sh/helm/v3/cmd/helm"
