# kube-nginx-sync: `make demo` to watch it work, `make test` to run every test.
.PHONY: all build test unit e2e fuzz demo bench controlplane clean

BIN := bin/kube-nginx-sync

all: build

build: ## the binary, static, in bin/
	CGO_ENABLED=0 go build -trimpath -o $(BIN) ./cmd/kube-nginx-sync

test: ## every test: unit (race), fuzz (bounded), end-to-end (needs root)
	hack/test.sh

unit: ## the fast unit tests only
	go test -race ./...

e2e: ## the end-to-end tests only (needs root)
	hack/deps.sh
	hack/in-netns.sh env GOPROXY=off KNS_CONTROLPLANE_BIN=$$(hack/control-plane.sh) \
		go test -tags e2e -count=1 -race -timeout 30m ./test/e2e/...

demo: ## a local control plane, nginx and sample Services (needs root); ARGS=-once to stop after showing, ARGS='-shape lua' for the Lua data plane
	hack/demo.sh $(ARGS)

bench: ## kube-nginx-sync against Traefik and the seed design, side by side, with charts (needs root); QUICK=1 for a short run
	hack/deps.sh
	go mod download
	hack/in-netns.sh env GOPROXY=off KNS_CONTROLPLANE_BIN=$$(hack/control-plane.sh) KNS_TRAEFIK_BIN=$$(hack/control-plane.sh traefik) \
		go run ./bench $(if $(QUICK),-quick) $(BENCH_ARGS)

controlplane: ## build etcd and kube-apiserver into .cache/ (once per machine; make bench builds Traefik there too)
	hack/control-plane.sh

clean:
	rm -rf bin
