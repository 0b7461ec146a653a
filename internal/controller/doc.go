// Package controller is kube-nginx-sync's one loop: cluster state → model →
// rendered config → atomic write. Pipeline is one pass of it (used by
// `render`); Controller repeats it for `watch`, level-triggered: any change
// schedules one full rebuild, bursts are coalesced, nothing is written
// before the caches have synced or while a watch is broken, and unchanged
// output is never rewritten.
package controller
