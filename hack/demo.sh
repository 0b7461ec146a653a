#!/usr/bin/env bash
# The demo behind `make demo`: builds what it needs (the control plane once
# per machine, kube-nginx-sync, the demo program), then runs the demo inside a
# private network namespace. Needs root; installs nginx when missing.
# Arguments go to the demo program (-once: stop after showing the routes;
# -shape lua: the Lua data plane, endpoint changes without a reload).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

hack/deps.sh
controlplane_bin=$(hack/control-plane.sh demo)
mkdir -p bin .cache
CGO_ENABLED=0 go build -trimpath -o bin/kube-nginx-sync ./cmd/kube-nginx-sync
go build -o .cache/demo ./hack/demo
exec hack/in-netns.sh .cache/demo -controlplane "$controlplane_bin" -binary bin/kube-nginx-sync "$@"
