# kube-nginx-sync for the `render` init container and the `watch` sidecar:
# the static binary on a minimal, non-root base.
#   docker build -t ghcr.io/kube-nginx-sync/kube-nginx-sync:0.1.0 .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd ./cmd
COPY internal ./internal
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/kube-nginx-sync/kube-nginx-sync/internal/cli.Version=${VERSION}" \
      -o /out/kube-nginx-sync ./cmd/kube-nginx-sync

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/kube-nginx-sync /usr/local/bin/kube-nginx-sync
USER 101:101
ENTRYPOINT ["/usr/local/bin/kube-nginx-sync"]
