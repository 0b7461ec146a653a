// Package controlplane runs a real, local Kubernetes control plane (etcd and
// kube-apiserver, built by hack/control-plane.sh) for the end-to-end tests,
// the demo and the benchmarks. There is no kubelet and no controller
// manager: tests create Services and the EndpointSlices themselves.
package controlplane
