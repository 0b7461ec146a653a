// Package confdir owns the naming rule of the config folder that the
// generator and nginx share (the seed's emptyDir at /etc/nginx/conf.d).
//
// A file whose name starts with "." is not nginx config: nginx's
// `include conf.d/*.conf` does not load it, and the reloader's fingerprint
// of the folder does not see it, so writing it never reloads nginx. Names
// that start with ".." are the kubelet's (a ConfigMap volume's ..data
// link and its timestamped folders); names that start with a single "."
// are kube-nginx-sync's own: the temporary files of atomic writes, the
// last good config, the reloader's status.
package confdir

import (
	"path/filepath"
	"strings"
)

// HiddenPrefix starts the name of every file outside nginx's config.
const HiddenPrefix = "."

// StatusFile is the name of the reloader's report in the folder.
const StatusFile = HiddenPrefix + "kube-nginx-sync-reload-status.json"

// IsHidden reports whether a file named name is outside nginx's config.
func IsHidden(name string) bool { return strings.HasPrefix(name, HiddenPrefix) }

// IsOurs reports whether a file named name is one of kube-nginx-sync's own
// hidden files, which never change what nginx loads.
func IsOurs(name string) bool { return IsHidden(name) && !strings.HasPrefix(name, "..") }

// Hide returns the name of a file of ours named after name: name itself
// when it is hidden already.
func Hide(name string) string {
	if IsHidden(name) {
		return name
	}
	return HiddenPrefix + name
}

// LastGood is where the last config that passed validation is kept,
// beside the live one at path.
func LastGood(path string) string {
	dir, base := filepath.Split(path)
	return filepath.Join(dir, Hide(base)+".last-good")
}

// TempPattern is the os.CreateTemp pattern of the temporary files of an
// atomic write of a file named base.
func TempPattern(base string) string { return Hide(base) + ".tmp-*" }
