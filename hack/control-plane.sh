#!/usr/bin/env bash
# Builds the real control plane used by the tests, the demo and the benchmarks:
# etcd and kube-apiserver, from the Go module proxy, at the versions pinned in
# hack/controlplane/*/go.mod; and the clients the deployment tests use:
# kubectl (with its built-in kustomize) and helm. The binaries go to .cache/controlplane/<key>/,
# where <key> changes with the pinned versions, so each machine builds them
# once (the first kube-apiserver build takes about 8 minutes on 2 cores).
# Traefik, the peer the benchmarks measure, is pinned in hack/controlplane/traefik
# and built only for them, into a folder of its own keyed by its pin.
#
# Usage: hack/control-plane.sh [build]   build all four if needed, print the bin folder
#        hack/control-plane.sh demo      only what the demo needs (no helm)
#        hack/control-plane.sh traefik   build Traefik if needed, print its binary's path
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# The control plane's modules only: Traefik's pin must not rebuild them.
cp_modules=(etcd helm kube-apiserver)
key=$(cd hack/controlplane && cat "${cp_modules[@]/%//go.mod}" "${cp_modules[@]/%//go.sum}" | sha256sum | cut -c1-16)
apiserver_version=$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' hack/controlplane/kube-apiserver/go.mod)
etcd_version=$(awk '$1 == "require" && $2 == "go.etcd.io/etcd/server/v3" {print $3}' hack/controlplane/etcd/go.mod)
bin="$root/.cache/controlplane/${apiserver_version}-etcd-${etcd_version}-${key}"

build() { # build NAME MODULE-DIR PACKAGE
	local name=$1 dir=$2 pkg=$3
	if [[ -x "$bin/$name" ]]; then
		return
	fi
	echo "control-plane: building $name from $pkg (once per machine) ..." >&2
	mkdir -p "$bin"
	local start=$SECONDS
	(cd "$dir" && go build -trimpath -o "$bin/$name.partial" "$pkg")
	mv "$bin/$name.partial" "$bin/$name"
	echo "control-plane: built $name in $((SECONDS - start)) s" >&2
}

case "${1:-build}" in
build | demo)
	build etcd hack/controlplane/etcd go.etcd.io/etcd/server/v3
	build kube-apiserver hack/controlplane/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
	# The demo prints a kubectl command line to look at its cluster.
	build kubectl hack/controlplane/kube-apiserver k8s.io/kubernetes/cmd/kubectl
	# Only the deployment tests use helm.
	[[ ${1:-build} == demo ]] || build helm hack/controlplane/helm helm.sh/helm/v3/cmd/helm
	echo "$bin"
	;;
traefik)
	traefik_version=$(awk '$1 == "require" && $2 == "github.com/traefik/traefik/v3" {print $3}' hack/controlplane/traefik/go.mod)
	traefik_key=$(cat hack/controlplane/traefik/go.mod hack/controlplane/traefik/go.sum | sha256sum | cut -c1-16)
	bin="$root/.cache/controlplane/traefik-${traefik_version}-${traefik_key}"
	build traefik hack/controlplane/traefik github.com/traefik/traefik/v3/cmd/traefik
	echo "$bin/traefik"
	;;
*)
	echo "usage: $0 [build|demo|traefik]" >&2
	exit 2
	;;
esac
