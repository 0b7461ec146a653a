package model

import (
	"strings"
	"testing"
	"time"
)

func TestParsePath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "/", want: "/"},
		{in: "/api", want: "/api/"},
		{in: "/api/", want: "/api/"},
		{in: "/a-b_c.d~e/F9/", want: "/a-b_c.d~e/F9/"},
		{in: "/.well-known/acme", want: "/.well-known/acme/"},
		{in: "", err: "empty path"},
		{in: "api", err: "must start with /"},
		{in: "//", err: "empty path segment"},
		{in: "/a//b", err: "empty path segment"},
		{in: "/a/../b", err: `dot segment ".."`},
		{in: "/./", err: `dot segment "."`},
		{in: "/..", err: `dot segment ".."`},
		{in: "/.kube-nginx-sync/version", err: "reserved"},
		{in: "/a;b", err: "character ';'"},
		{in: "/a b", err: "character ' '"},
		{in: "/a{", err: "character '{'"},
		{in: "/a}", err: "character '}'"},
		{in: `/a"`, err: `character '"'`},
		{in: "/a'", err: `character '\''`},
		{in: "/$host", err: "character '$'"},
		{in: "/a#b", err: "character '#'"},
		{in: `/a\b`, err: `character '\\'`},
		{in: "/a\nb", err: `character '\n'`},
		{in: "/a\x00b", err: `character '\x00'`},
		{in: "/a%2e%2e/", err: "character '%'"},
		{in: "/ａpi", err: "byte 0xef at 1"}, // full-width look-alike
		{in: "/(a|b)*", err: "character '('"},
		{in: "/" + strings.Repeat("a", 1024), err: "longer than 1024"},
	}
	for _, tt := range tests {
		got, err := ParsePath(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParsePath(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "example.com", want: "example.com"},
		{in: "Example.COM", want: "example.com"},
		{in: "*.example.com", want: "*.example.com"},
		{in: "a-b.c1", want: "a-b.c1"},
		{in: "localhost", want: "localhost"},
		{in: "", err: "empty host"},
		{in: "*", err: "not a valid host name"},
		{in: "a.*.com", err: "not a valid host name"},
		{in: "**.example.com", err: "not a valid host name"},
		{in: "example.com.", err: "empty label"},
		{in: "-a.com", err: "not a valid host name"},
		{in: "a-.com", err: "not a valid host name"},
		{in: "a_b.com", err: "not a valid host name"},
		{in: "a.com;", err: "not a valid host name"},
		{in: "a.com b.com", err: "not a valid host name"},
		{in: "~^(.*)$", err: "not a valid host name"},
		{in: "exаmple.com", err: "not a valid host name"}, // Cyrillic а
		{in: strings.Repeat("a", 64) + ".com", err: "longer than 63"},
		{in: strings.Repeat("a.", 127) + "ab", err: "longer than 253"},
	}
	for _, tt := range tests {
		got, err := ParseHost(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseHost(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParsePortSelector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		name   string
		number int32
		ok     bool
	}{
		{"http", "http", 0, true},
		{"grpc-web", "grpc-web", 0, true},
		{"80", "", 80, true},
		{"65535", "", 65535, true},
		{"0", "", 0, false},
		{"65536", "", 0, false},
		{"-1", "", 0, false},
		{"8o", "", 0, false},
		{"", "", 0, false},
		{"a--b", "", 0, false},
		{"HTTP", "", 0, false},
		{"averyveryverylongname", "", 0, false},
		{"1234", "", 1234, true},
	}
	for _, tt := range tests {
		name, number, err := ParsePortSelector(tt.in)
		if (err == nil) != tt.ok || name != tt.name || number != tt.number {
			t.Errorf("ParsePortSelector(%q) = %q, %d, %v; want %q, %d, ok=%v", tt.in, name, number, err, tt.name, tt.number, tt.ok)
		}
	}
}

// safeForNginx reports whether s has only characters that cannot end,
// open or extend an nginx token or block.
func safeForNginx(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~/*", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/", "/api", "/a/../b", "/a;b", "/a\nb", "//", "/.kube-nginx-sync/x", "/a{b}", "/$x", "/\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParsePath(in)
		if err != nil {
			return
		}
		if !strings.HasPrefix(got, "/") || !strings.HasSuffix(got, "/") || strings.Contains(got, "//") && got != "/" {
			t.Fatalf("ParsePath(%q) = %q: not a canonical prefix", in, got)
		}
		if !safeForNginx(got) || strings.Contains(got, "/../") || strings.Contains(got, "/./") {
			t.Fatalf("ParsePath(%q) = %q: unsafe", in, got)
		}
		if again, err := ParsePath(got); err != nil || again != got {
			t.Fatalf("ParsePath is not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{"example.com", "*.a.b", "A.B", "a..b", "a.com;", "a b", "\x00", "*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := ParseHost(in)
		if err != nil {
			return
		}
		if !safeForNginx(got) || strings.ContainsAny(got, "/_~") || strings.Contains(got[1:], "*") {
			t.Fatalf("ParseHost(%q) = %q: unsafe", in, got)
		}
		if again, err := ParseHost(got); err != nil || again != got {
			t.Fatalf("ParseHost is not idempotent: %q -> %q -> %q, %v", in, got, again, err)
		}
	})
}

func FuzzParsePortSelector(f *testing.F) {
	for _, s := range []string{"http", "80", "0", "65536", "a--b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		name, number, err := ParsePortSelector(in)
		if err != nil {
			return
		}
		if (name == "") == (number == 0) || number < 0 || !safeForNginx(name) {
			t.Fatalf("ParsePortSelector(%q) = %q, %d", in, name, number)
		}
	})
}

func TestParseTimeout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "1s", want: time.Second},
		{in: "90s", want: 90 * time.Second},
		{in: "5m", want: 5 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "24h", want: 24 * time.Hour},
		{in: "86400s", want: 24 * time.Hour},
		{in: "1440m", want: 24 * time.Hour},
		{in: "25h", err: "longer than 24h0m0s"},
		{in: "86401s", err: "longer than"},
		{in: "999999h", err: "longer than"},
		{in: "1000000s", err: "1 to 6 digits"},
		{in: "0s", err: "at least 1s"},
		{in: "00s", err: "leading zero"},
		{in: "01m", err: "leading zero"},
		{in: "60", err: "whole number of s, m or h"},
		{in: "", err: "whole number of s, m or h"},
		{in: "s", err: "1 to 6 digits"},
		{in: "500ms", err: "whole number"},
		{in: "1h30m", err: "not a digit"},
		{in: "1.5h", err: "not a digit"},
		{in: "-1s", err: "not a digit"},
		{in: "+1s", err: "not a digit"},
		{in: " 1s", err: "not a digit"},
		{in: "1S", err: "whole number"},
		{in: "1d", err: "whole number"},
		{in: "1s;", err: "whole number"},
		{in: "1s\n", err: "whole number"},
		{in: "$t", err: "whole number"},
		{in: "１s", err: "byte 0xef"}, // full-width digit
	}
	for _, tt := range tests {
		got, err := ParseTimeout(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseTimeout(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseTimeout(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseBodySize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
		err  string
	}{
		{in: "0", want: NoBodyLimit},
		{in: "1", want: 1},
		{in: "1000", want: 1000},
		{in: "8k", want: 8 << 10},
		{in: "10m", want: 10 << 20},
		{in: "2g", want: 2 << 30},
		{in: "1024g", want: 1 << 40},
		{in: "1099511627776", want: 1 << 40},
		{in: "1025g", err: "larger than 1024g"},
		{in: "1048577m", err: "larger than 1024g"},
		{in: "1099511627777", err: "larger than 1024g"},
		{in: "99999999999999", err: "1 to 13 digits"},
		{in: "0k", err: "0 takes no unit"},
		{in: "00", err: "leading zero"},
		{in: "010m", err: "leading zero"},
		{in: "", err: "1 to 13 digits"},
		{in: "m", err: "1 to 13 digits"},
		{in: "10M", err: "character 'M'"},
		{in: "10Mi", err: "character 'M'"},
		{in: "10mb", err: "character 'm'"},
		{in: "1.5m", err: "character '.'"},
		{in: "-1", err: "character '-'"},
		{in: "10m;", err: "character 'm'"},
		{in: "$x", err: "character '$'"},
	}
	for _, tt := range tests {
		got, err := ParseBodySize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseBodySize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseBodySize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseTimeout(f *testing.F) {
	for _, s := range []string{"1s", "90s", "5m", "24h", "25h", "0s", "01s", "1h30m", "500ms", "1s;", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ParseTimeout(in)
		if err != nil {
			return
		}
		if d < time.Second || d > 24*time.Hour || d%time.Second != 0 || !safeForNginx(in) {
			t.Fatalf("ParseTimeout(%q) = %v", in, d)
		}
	})
}

func FuzzParseBodySize(f *testing.F) {
	for _, s := range []string{"0", "1", "8k", "10m", "1024g", "1025g", "0k", "10M", "-1", "1m;", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := ParseBodySize(in)
		if err != nil {
			return
		}
		if (n != NoBodyLimit && (n < 1 || n > 1<<40)) || (n == NoBodyLimit) != (in == "0") || !safeForNginx(in) {
			t.Fatalf("ParseBodySize(%q) = %d", in, n)
		}
	})
}

func TestParseSecretName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "web-tls", want: "web-tls"},
		{in: "a.b-c.d9", want: "a.b-c.d9"},
		{in: "", err: "empty Secret name"},
		{in: "other/web-tls", err: `names a Secret of namespace "other" ("web-tls"): only Secrets of its own namespace`},
		{in: "/web-tls", err: "namespace"},
		{in: "Web-TLS", err: "character 'W'"},
		{in: "web_tls", err: "character '_'"},
		{in: "a..b", err: "empty label"},
		{in: "-a", err: "character '-'"},
		{in: "a;\nssl_certificate x", err: "character ';'"},
		{in: "a;\nssl_certificate /etc/passwd", err: "only Secrets of its own namespace"},
		{in: "a b", err: "character ' '"},
		{in: "$x", err: "character '$'"},
		{in: "..", err: "empty label"},
		{in: strings.Repeat("a", 254), err: "longer than 253"},
	}
	for _, tt := range tests {
		got, err := ParseSecretName(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSecretName(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSecretName(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseHSTS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want, err string
	}{
		{in: "max-age=31536000", want: "max-age=31536000"},
		{in: "max-age=0", want: "max-age=0"},
		{in: "MAX-AGE=60;includesubdomains", want: "max-age=60; includeSubDomains"},
		{in: " max-age=63072000 ; includeSubDomains ; Preload ", want: "max-age=63072000; includeSubDomains; preload"},
		{in: "max-age=60; preload", want: "max-age=60; preload"},
		{in: "", err: "must start with max-age"},
		{in: "includeSubDomains; max-age=60", err: "must start with max-age"},
		{in: "max-age=", err: "must start with 1 to 8 digits"},
		{in: "max-age=060", err: "leading zero"},
		{in: "max-age=63072001", err: "longer than two years"},
		{in: "max-age=1e9", err: "not a digit"},
		{in: "max-age=60; includeSubDomains; includeSubDomains", err: "includeSubDomains twice"},
		{in: `max-age=60"; add_header X 1`, err: "not a digit"},
		{in: "max-age=60; x\n", err: `"x" is not includeSubDomains or preload`},
		{in: "max-age=60;", err: `"" is not`},
	}
	for _, tt := range tests {
		got, err := ParseHSTS(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseHSTS(%q) = %q, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseHSTS(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
