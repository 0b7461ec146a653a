package model

import (
	"strings"
	"testing"
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
