#!/usr/bin/env bash
# Runs every test: formatting and vet, the unit tests with the race detector,
# bounded fuzzing of the parsers of untrusted input, and the end-to-end tests
# against a real kube-apiserver + etcd and a real nginx, inside a private
# network namespace. Needs root (for the namespace); installs what is missing.
#
# FUZZTIME (default 10s) bounds each fuzz target.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

hack/deps.sh

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.cache/*'))
if [[ -n $unformatted ]]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go vet -tags e2e ./test/...

echo "== unit tests (race detector)"
go test -race -count=1 ./...

echo "== fuzzing the parsers of untrusted input (${FUZZTIME:-10s} each)"
for target in model:FuzzParsePath model:FuzzParseHost model:FuzzParsePortSelector \
	nginxconf:FuzzServiceToConfig nginxsyntax:FuzzParse kube:FuzzDecodeObjects; do
	go test -run='^$' -fuzz="^${target#*:}\$" -fuzztime="${FUZZTIME:-10s}" "./internal/${target%%:*}/"
done

echo "== end-to-end tests (real kube-apiserver, etcd and nginx)"
controlplane_bin=$(hack/control-plane.sh)
# The namespace has no network: everything the tests compile must be here.
go mod download
hack/in-netns.sh env GOPROXY=off GOFLAGS=-mod=readonly KNS_CONTROLPLANE_BIN="$controlplane_bin" \
	go test -tags e2e -count=1 -race -timeout 30m ./test/e2e/...
