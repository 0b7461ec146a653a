// Package nginx runs the nginx binary for kube-nginx-sync: it validates
// configs with `nginx -t`, supervises nginx as a child process in the
// foreground, and reloads it when its config folder changes, confirming
// that each reload took effect.
package nginx
