// Package testbed holds the real parts that the end-to-end tests, the demo
// and the benchmarks put around kube-nginx-sync: backend HTTP servers, an
// nginx instance of their own, and builders for the Services and
// EndpointSlices that stand in for a kubelet and a controller manager.
package testbed
