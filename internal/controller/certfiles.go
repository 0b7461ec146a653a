package controller

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/atomicfile"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// CertificateGrace is how long a certificate file stays after the config
// written stops naming it: a reload of the config before, begun just
// before the write, may still be reading it (nginx reads certificates when
// it loads a config, and keeps them in memory).
const CertificateGrace = 15 * time.Second

// certificateDir is the folder of the certificate files: Output's.
func (p *Pipeline) certificateDir() string { return filepath.Dir(p.Output) }

// writeCertificates writes the file of each certificate that cfg serves,
// unless it is there: a new certificate is a new file (named by its hash),
// written before the config that names it. Keys are in them: 0600.
func (p *Pipeline) writeCertificates(cfg model.Config) error {
	for _, s := range cfg.Servers {
		if s.TLS == nil {
			continue
		}
		path := filepath.Join(p.certificateDir(), confdir.CertificateFile(s.TLS.Hash))
		if _, err := atomicfile.Write(path, s.TLS.PEM.Bytes(), atomicfile.Options{Mode: 0o600}); err != nil {
			return fmt.Errorf("write the certificate of host %s: %w", s.Host, err)
		}
	}
	return nil
}

// removeCertificates removes the certificate files that neither cfg (the
// config just written) nor the last good config names, once they have not
// been named for CertificateGrace, and returns when the next one may go
// (zero when none waits). A file it cannot remove is harmless (nginx loads
// only the files a config names) and is tried again by the next call.
func (p *Pipeline) removeCertificates(cfg model.Config, now time.Time) time.Time {
	entries, err := os.ReadDir(p.certificateDir())
	if err != nil {
		return time.Time{}
	}
	named := make(map[string]bool)
	for _, s := range cfg.Servers {
		if s.TLS != nil {
			named[confdir.CertificateFile(s.TLS.Hash)] = true
		}
	}
	var unnamed []string
	for _, e := range entries {
		if confdir.IsCertificateFile(e.Name()) && !named[e.Name()] {
			unnamed = append(unnamed, e.Name())
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(unnamed) == 0 {
		p.unnamedSince = nil
		return time.Time{}
	}
	if lastGood, err := os.ReadFile(confdir.LastGood(p.Output)); err == nil {
		for _, n := range confdir.CertificateFilesNamed(lastGood) {
			named[n] = true
		}
	}
	since := make(map[string]time.Time, len(unnamed))
	var next time.Time
	for _, name := range unnamed {
		if named[name] {
			continue
		}
		t, ok := p.unnamedSince[name]
		if !ok {
			t = now
		}
		if due := t.Add(CertificateGrace); now.Before(due) {
			since[name] = t
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		if err := os.Remove(filepath.Join(p.certificateDir(), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			since[name] = t // tried again next time
		}
	}
	p.unnamedSince = since
	return next
}

// removeCertificateTemporaries removes what writes of certificate files
// killed mid-write left (see RemoveTemporary).
func (p *Pipeline) removeCertificateTemporaries() ([]string, error) {
	pattern := confdir.TempPattern(confdir.CertificateFile(strings.Repeat("?", 64)))
	return atomicfile.RemoveGlob(filepath.Join(p.certificateDir(), pattern))
}
