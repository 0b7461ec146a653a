package nginx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
)

// Fingerprint hashes what the config folder holds: the name and content of
// every file in it that is not hidden (see confdir), following symlinks,
// so a ConfigMap's ..data swap changes it exactly once.
func Fingerprint(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("read config folder: %w", err)
	}
	h := sha256.New()
	for _, e := range entries { // sorted by name
		name := e.Name()
		if confdir.IsHidden(name) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.EISDIR) {
				continue // removed meanwhile, a folder, or a dangling link
			}
			return "", fmt.Errorf("read %s: %w", name, err)
		}
		h.Write([]byte(name + "\x00" + strconv.Itoa(len(data)) + "\x00"))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// expectedVersion finds the kube-nginx-sync config in dir and returns its
// header, or ok == false for a folder of hand-written configs.
func expectedVersion(dir string) (nginxconf.Header, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nginxconf.Header{}, false
	}
	for _, e := range entries {
		if confdir.IsHidden(e.Name()) || !strings.HasSuffix(e.Name(), ".conf") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if h, err := nginxconf.Verify(data); err == nil {
			return h, true
		}
	}
	return nginxconf.Header{}, false
}

// currentVersion reads only the header lines of the .conf files in dir and
// returns the first kube-nginx-sync version it finds; unlike
// expectedVersion it does not check the bodies, so it is cheap enough to
// poll.
func currentVersion(dir string) (string, bool) {
	h, ok := currentHeader(dir)
	return h.Version, ok
}

// currentHeader is currentVersion's header.
func currentHeader(dir string) (nginxconf.Header, bool) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nginxconf.Header{}, false
	}
	for _, e := range entries {
		if confdir.IsHidden(e.Name()) || !strings.HasSuffix(e.Name(), ".conf") {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		buf := make([]byte, 256)
		n, _ := io.ReadFull(f, buf)
		f.Close()
		line, _, _ := strings.Cut(string(buf[:n]), "\n")
		if h, err := nginxconf.ParseHeader(line); err == nil {
			return h, true
		}
	}
	return nginxconf.Header{}, false
}
