// Package confdir owns the naming rule of the config folder that the
// generator and nginx share (the seed's emptyDir at /etc/nginx/conf.d).
//
// A file whose name starts with "." is not nginx config: nginx's
// `include conf.d/*.conf` does not load it, and the reloader's fingerprint
// of the folder does not see it, so writing it never reloads nginx. Names
// that start with ".." are the kubelet's (a ConfigMap volume's ..data
// link and its timestamped folders); names that start with a single "."
// are kube-nginx-sync's own: the temporary files of atomic writes, the
// last good config, the reloader's status, and the certificate files.
package confdir

import (
	"path/filepath"
	"strings"
)

// certificatePrefix and certificateSuffix frame a certificate file's name.
const (
	certificatePrefix = HiddenPrefix + "kube-nginx-sync-tls-"
	certificateSuffix = ".pem"
)

// CertificateFile is the name of the file that holds a host's certificate
// chain and key, whose SHA-256 is hash (64 hex digits). It is hidden: a
// new certificate is a new file, which nginx loads when the config that
// names it is reloaded, so that a renewal reloads nginx once, for the
// config's change, and never for the file's.
func CertificateFile(hash string) string { return certificatePrefix + hash + certificateSuffix }

// IsCertificateFile reports whether name is a certificate file's
// (CertificateFile), not one of its temporary files.
func IsCertificateFile(name string) bool {
	hash, ok := strings.CutPrefix(name, certificatePrefix)
	if hash, ok = strings.CutSuffix(hash, certificateSuffix); !ok || len(hash) != 64 {
		return false
	}
	return strings.Trim(hash, "0123456789abcdef") == ""
}

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

// CertificateFilesNamed returns the names of the certificate files that a
// config's text names.
func CertificateFilesNamed(text []byte) []string {
	var out []string
	rest := string(text)
	for {
		i := strings.Index(rest, certificatePrefix)
		if i < 0 {
			return out
		}
		rest = rest[i:]
		if n := len(certificatePrefix) + 64 + len(certificateSuffix); len(rest) >= n && IsCertificateFile(rest[:n]) {
			out = append(out, rest[:n])
		}
		rest = rest[len(certificatePrefix):]
	}
}
