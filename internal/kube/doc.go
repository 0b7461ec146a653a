// Package kube reads Services and EndpointSlices: from the API server (with
// retries while it is not reachable yet) or from a file saved with
// `kubectl get svc,endpointslices -A -o yaml`. It only fetches; which
// Services are routed, and how, is package model's job.
package kube
