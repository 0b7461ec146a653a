#!/usr/bin/env bash
# Runs every test: formatting and vet, the unit tests with the race detector,
# bounded fuzzing of the parsers of untrusted input, and the end-to-end tests
# against a real kube-apiserver + etcd and a real nginx, inside a private
# network namespace. Needs root (for the namespace); installs what is missing.
#
# FUZZTIME (a duration) fuzzes each target for that long instead of its
# fixed number of executions.
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

# Bounded by a number of executions, not by time: a time budget races Go's
# fuzz coordinator at its deadline and fails with a bare "context deadline
# exceeded" on a loaded machine (go.dev/issue/75804, fixed in Go 1.27).
# Each count is about 10 s of fuzzing here; FUZZTIME=30s (say) fuzzes by
# time instead, for a longer local search.
echo "== fuzzing the parsers of untrusted input"
for target in model:FuzzParsePath:100000 model:FuzzParseHost:70000 model:FuzzParsePortSelector:50000 \
	nginxconf:FuzzServiceToConfig:2500 nginxsyntax:FuzzParse:500000 kube:FuzzDecodeObjects:3000; do
	IFS=: read -r pkg name count <<<"$target"
	go test -run='^$' -fuzz="^${name}\$" -fuzztime="${FUZZTIME:-${count}x}" "./internal/${pkg}/"
done

echo "== end-to-end tests (real kube-apiserver, etcd and nginx)"
controlplane_bin=$(hack/control-plane.sh)
# The namespace has no network: everything the tests compile must be here.
go mod download
hack/in-netns.sh env GOPROXY=off GOFLAGS=-mod=readonly KNS_CONTROLPLANE_BIN="$controlplane_bin" \
	go test -tags e2e -count=1 -race -timeout 30m ./test/e2e/...
