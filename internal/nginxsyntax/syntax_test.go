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

func TestParseLuaBlocks(t *testing.T) {
	t.Parallel()
	text := `init_by_lua_block {
    local t = { a = "}", b = '{' } -- a comment with } and an apostrophe's
    --[==[ a long
    comment } ]==]
    local s = [[ { ]] .. "\"}"
}
location / { access_by_lua_block { f() } return 200; }
`
	ds, err := Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Name != "init_by_lua_block" || !strings.HasSuffix(ds[0].Lua, `.. "\"}"`) ||
		len(ds[1].Block) != 2 || ds[1].Block[0].Lua != "f()" || ds[1].Block[1].Name != "return" {
		t.Fatalf("Parse = %#v", ds)
	}
	again, err := Parse(ds[0].String())
	if err != nil || len(again) != 1 || again[0].Lua != ds[0].Lua {
		t.Errorf("re-parse of %q = %#v, %v", ds[0].String(), again, err)
	}
	for _, bad := range []string{"init_by_lua_block { x = '", "init_by_lua_block { --[[ }", "init_by_lua_block { f() "} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted it", bad)
		}
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
	for _, s := range []string{"a b;", "a { b c; }", `a "b\"c";`, "# x\na;", "a 'b", "}", "a {", "x_by_lua_block { a = '}' -- }\n }"} {
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
