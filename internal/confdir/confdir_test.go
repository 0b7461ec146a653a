package confdir

import (
	"slices"
	"strings"
	"testing"
)

// hash is a SHA-256 in hex.
const hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		hidden, ours bool
	}{
		{"default.conf", false, false},
		{StatusFile, true, true},
		{"..data", true, false},
		{"..2026_11_30_06_00_00.123", true, false},
		{LastGood("default.conf"), true, true},
		{TempPattern("default.conf"), true, true},
		{TempPattern(StatusFile), true, true},
		{CertificateFile(hash), true, true},
		{TempPattern(CertificateFile(hash)), true, true},
	} {
		if IsHidden(tc.name) != tc.hidden || IsOurs(tc.name) != tc.ours {
			t.Errorf("%q: hidden %v, ours %v; want %v, %v", tc.name, IsHidden(tc.name), IsOurs(tc.name), tc.hidden, tc.ours)
		}
	}
	if got := LastGood("/etc/nginx/conf.d/default.conf"); got != "/etc/nginx/conf.d/.default.conf.last-good" {
		t.Errorf("LastGood = %q", got)
	}
	if got := TempPattern(StatusFile); got != ".kube-nginx-sync-reload-status.json.tmp-*" {
		t.Errorf("TempPattern(StatusFile) = %q", got)
	}
}

func TestCertificateFile(t *testing.T) {
	t.Parallel()
	if got := CertificateFile(hash); got != ".kube-nginx-sync-tls-"+hash+".pem" {
		t.Errorf("CertificateFile = %q", got)
	}
	for name, want := range map[string]bool{
		CertificateFile(hash):                true,
		CertificateFile(hash[:63]):           false,
		CertificateFile(hash + "0"):          false,
		CertificateFile("G" + hash[1:]):      false,
		CertificateFile(hash) + ".tmp-12345": false,
		TempPattern(CertificateFile(hash)):   false,
		"default.conf":                       false,
	} {
		if got := IsCertificateFile(name); got != want {
			t.Errorf("IsCertificateFile(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestCertificateFilesNamed(t *testing.T) {
	t.Parallel()
	other := strings.Repeat("a", 64)
	text := "ssl_certificate /etc/nginx/conf.d/" + CertificateFile(hash) + ";\n" +
		"ssl_certificate_key /etc/nginx/conf.d/" + CertificateFile(hash) + ";\n" +
		"# " + CertificateFile(hash[:10]) + " " + CertificateFile(other)
	got := CertificateFilesNamed([]byte(text))
	want := []string{CertificateFile(hash), CertificateFile(hash), CertificateFile(other)}
	if !slices.Equal(got, want) {
		t.Errorf("CertificateFilesNamed = %q, want %q", got, want)
	}
}
