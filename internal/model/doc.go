// Package model turns Kubernetes Services, EndpointSlices and TLS Secrets
// into the routing model that nginx serves: servers (one per host, with
// its HTTPS certificate when its Services name a Secret), locations (one
// per routed Service port) and upstreams (the ready backends of each
// location).
//
// Build is pure: it reads only its arguments, never mutates them, and returns
// the same Config for the same input in any order. Everything it reads from a
// Service or an EndpointSlice is untrusted; a value that does not match its
// grammar leaves that Service out with a Rejection that says why, and the
// other Services are built as usual. The values that reach a Config are
// therefore safe to place in an nginx config without further escaping. A
// Secret's certificate and key are untrusted too (tls.go): one that nginx
// could not load leaves that host's HTTPS out, with a Warning, and the
// key only ever travels in a Sensitive, which never prints.
//
// The arrow goes one way: model knows nothing of nginx's syntax or of how the
// Config is rendered (package nginxconf) or written (package atomicfile).
package model
