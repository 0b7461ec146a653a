// Package nginx runs the nginx binary for kube-nginx-sync: it validates
// configs with `nginx -t`.
package nginx
