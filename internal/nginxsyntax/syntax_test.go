package nginxsyntax

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	t.Parallel()
	text := `# a comment
upstream u { server 10.0.0.1:80; keepalive 16; }
server {
    listen 80 default_server;   # trailing comment
    server_name a.example.com;
    location /x/ { return 503 "no \"ready\" ; { } # endpoints\n"; }
    location / { return 200 'single'; }
}
`
	ds, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range ds {
		got = append(got, d.String())
	}
	want := []string{
		`upstream u { server 10.0.0.1:80; keepalive 16; }`,
		`server { listen 80 default_server; server_name a.example.com; location /x/ { return 503 "no \"ready\" ; { } # endpoints` + "\n" + `"; } location / { return 200 single; } }`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, text := range []string{
		"server {",
		"}",
		"listen 80",
		`return "unterminated;`,
		"a { b; } }",
		"; a;",
	} {
		if ds, err := Parse(text); err == nil {
			t.Errorf("Parse(%q) = %v, want an error", text, ds)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"a b;", "a { b c; }", `a "b\"c";`, "# x\na;", "a 'b", "}", "a {"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ds, err := Parse(text)
		if err != nil {
			return
		}
		// What parsed, printed and parsed again, is the same tree.
		var b strings.Builder
		for _, d := range ds {
			b.WriteString(d.String())
			b.WriteByte('\n')
		}
		again, err := Parse(b.String())
		if err != nil {
			t.Fatalf("re-parse of %q: %v", b.String(), err)
		}
		var b2 strings.Builder
		for _, d := range again {
			b2.WriteString(d.String())
			b2.WriteByte('\n')
		}
		if b.String() != b2.String() {
			t.Fatalf("round trip differs:\n%s\n%s", b.String(), b2.String())
		}
	})
}
