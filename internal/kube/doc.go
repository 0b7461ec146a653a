// Package kube reads Services and EndpointSlices, and the kubernetes.io/tls
// Secrets that the Services name for HTTPS: once from the API server
// (List, and ListWithRetry while it is not reachable yet) or from a file
// saved with `kubectl get svc,endpointslices,secrets -A -o yaml`
// (LoadFile), or continuously with a Watcher, whose informers keep a
// stripped-down copy of them in memory (of a Secret, its tls.crt and
// tls.key, and only while a Service names it: secrets.go) and call back
// on every change. With an IngressClass in the Selection, they read that
// class's Ingresses too (ingress.go).
//
// The Watcher's health tracker (cacheHealth, health.go) knows which
// informers' caches may be stale: from a failed list or watch, or a watch
// ended by 410 Gone, until the relist or the resumed watch is in the cache.
// Watcher.BrokenSince reports it, so that the controller never writes a
// config that mixes fresh and stale caches.
//
// The package only fetches; which Services are routed, and how, is package
// model's job.
package kube
