// Package e2e holds the end-to-end tests: a real kube-apiserver and etcd
// (internal/controlplane), the real kube-nginx-sync binary, a real nginx and
// real backend HTTP servers, all inside a private network namespace.
//
// They are behind the e2e build tag. Run them with `make test` (everything)
// or `make e2e`, which build the control plane and enter the namespace
// (hack/in-netns.sh) first.
package e2e
