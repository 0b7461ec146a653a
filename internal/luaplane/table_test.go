package luaplane

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

func addrs(s ...string) []netip.AddrPort {
	var out []netip.AddrPort
	for _, a := range s {
		out = append(out, netip.MustParseAddrPort(a))
	}
	return out
}

var addrComparer = cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	table := Table{
		Routes: []Route{
			{Server: "shop.example.com", Path: "/", Key: "shop/web:http"},
			{Server: DefaultServer, Path: "/ns/web/", Key: "ns/web:http", Strip: true},
			{Server: "*.apps.example.com", Path: "/v1/", Key: "apps/v1:8080"},
		},
		Endpoints: []Endpoints{
			{Key: "shop/web:http", Addrs: addrs("198.18.0.2:8080", "[2001:db8::1]:8080", "198.18.0.2:8080")},
			{Key: "ns/web:http"},
			{Key: "apps/v1:8080", Addrs: addrs("10.0.0.1:1")},
		},
	}
	data, version, err := Encode(table)
	if err != nil {
		t.Fatal(err)
	}
	want := "kube-nginx-sync table 1 " + version + "\n" +
		"route *.apps.example.com /v1/ apps/v1:8080 -\n" +
		"route _ /ns/web/ ns/web:http s\n" +
		"route shop.example.com / shop/web:http -\n" +
		"endpoints apps/v1:8080 10.0.0.1:1\n" +
		"endpoints ns/web:http\n" +
		"endpoints shop/web:http 198.18.0.2:8080 [2001:db8::1]:8080\n" +
		"end 6\n"
	if string(data) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", data, want)
	}
	got, gotVersion, err := Decode(data)
	if err != nil || gotVersion != version {
		t.Fatalf("Decode = %v, version %q; want %q", err, gotVersion, version)
	}
	again, _, err := Encode(got)
	if err != nil || !bytes.Equal(again, data) {
		t.Errorf("Encode(Decode(data)) = %v:\n%s", err, again)
	}
	// Input order does not matter.
	shuffled := Table{Routes: []Route{table.Routes[2], table.Routes[0], table.Routes[1]}, Endpoints: []Endpoints{table.Endpoints[1], table.Endpoints[2], table.Endpoints[0]}}
	if b, _, _ := Encode(shuffled); !bytes.Equal(b, data) {
		t.Error("Encode depends on the order of its input")
	}
}

func TestEncodeRefuses(t *testing.T) {
	t.Parallel()
	ok := Route{Server: DefaultServer, Path: "/a/", Key: "a/b:c"}
	for _, r := range []Route{
		{Server: DefaultServer, Path: "/a/", Key: "a/b:c\nroute _ / evil/x:y -"},
		{Server: DefaultServer, Path: "/a/", Key: "a/b"},
		{Server: DefaultServer, Path: "/a", Key: "a/b:c"},
		{Server: DefaultServer, Path: "/a b/", Key: "a/b:c"},
		{Server: DefaultServer, Path: "/a/../", Key: "a/b:c"},
		{Server: "Evil.example.com", Path: "/", Key: "a/b:c"},
		{Server: "a.example.com b", Path: "/", Key: "a/b:c"},
		{Server: "", Path: "/", Key: "a/b:c"},
	} {
		if data, _, err := Encode(Table{Routes: []Route{r}}); err == nil {
			t.Errorf("Encode(%+v) = %q, want an error", r, data)
		}
	}
	if _, _, err := Encode(Table{Routes: []Route{ok, ok}}); err == nil {
		t.Error("Encode took one route twice")
	}
	for _, e := range []Endpoints{
		{Key: strings.Repeat("a", 200) + "/b:c"},
		{Key: "a/b:c", Addrs: []netip.AddrPort{{}}},
		{Key: "a/b:c", Addrs: addrs("1.2.3.4:0")},
		{Key: "a/b:c", Addrs: addrs("[fe80::1%eth0]:80")},
		{Key: "a/b:c", Addrs: addrs("[::ffff:1.2.3.4]:80")},
		{Key: "a/b:c", Addrs: addrs("0.0.0.0:80")},
	} {
		if data, _, err := Encode(Table{Endpoints: []Endpoints{e}}); err == nil {
			t.Errorf("Encode(%+v) = %q, want an error", e, data)
		}
	}
	if _, _, err := Encode(Table{Endpoints: []Endpoints{{Key: "a/b:c"}, {Key: "a/b:c"}}}); err == nil {
		t.Error("Encode took one key twice")
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	good, _, _ := Encode(Table{
		Routes:    []Route{{Server: DefaultServer, Path: "/a/", Key: "a/b:c"}},
		Endpoints: []Endpoints{{Key: "a/b:c", Addrs: addrs("10.0.0.1:80")}},
	})
	g := string(good)
	for name, text := range map[string]string{
		"empty":           "",
		"truncated":       g[:len(g)-3],
		"no end":          strings.Replace(g, "end 2\n", "", 1),
		"wrong count":     strings.Replace(g, "end 2", "end 3", 1),
		"zero count":      strings.Replace(g, "end 2", "end 02", 1),
		"after end":       g + "endpoints x/y:z\n",
		"double space":    strings.Replace(g, "c 10", "c  10", 1),
		"trailing space":  strings.Replace(g, ":80\n", ":80 \n", 1),
		"leading zero ip": strings.Replace(g, "10.0.0.1", "10.0.0.01", 1),
		"octet":           strings.Replace(g, "10.0.0.1", "10.0.0.256", 1),
		"port 0":          strings.Replace(g, ":80\n", ":0\n", 1),
		"port 65536":      strings.Replace(g, ":80\n", ":65536\n", 1),
		"leading zero p":  strings.Replace(g, ":80\n", ":080\n", 1),
		"host name":       strings.Replace(g, "10.0.0.1", "evil.example", 1),
		"no brackets v6":  strings.Replace(g, "10.0.0.1", "2001:db8::1", 1),
		"bad key":         strings.Replace(g, "endpoints a/b:c", "endpoints a/b;c", 1),
		"bad path":        strings.Replace(g, " /a/ ", " /a;/ ", 1),
		"path no slash":   strings.Replace(g, " /a/ ", " /a ", 1),
		"bad flag":        strings.Replace(g, "a/b:c -", "a/b:c x", 1),
		"bad server":      strings.Replace(g, "route _ ", "route {evil} ", 1),
		"unknown line":    strings.Replace(g, "end 2", "upstream x\nend 3", 1),
		"bad header":      strings.Replace(g, "table 1 ", "table 2 ", 1),
		"crlf":            strings.ReplaceAll(g, "\n", "\r\n"),
	} {
		if _, _, err := Decode([]byte(text)); err == nil {
			t.Errorf("%s: Decode(%q) accepted it", name, text)
		}
	}
}

func TestDedicatedAndBuild(t *testing.T) {
	t.Parallel()
	sp := func(name string) model.ServicePort {
		return model.ServicePort{Namespace: "ns", Name: name, Port: "http"}
	}
	cfg := model.Config{
		Servers: []model.Server{
			{Locations: []model.Location{
				{Path: "/", Service: sp("root"), Upstream: "ns_root_http"},
				{Path: "/a/", Service: sp("a"), Upstream: "ns_a_http", Proxy: model.ProxySettings{ReadTimeout: time.Hour}},
				{Path: "/a/b/", Service: sp("ab"), StripPrefix: true},
				{Path: "/c/", Service: sp("c"), Upstream: "ns_c_http", StripPrefix: true},
			}},
			{Host: "x.example.com", Locations: []model.Location{
				{Path: "/", Service: sp("c"), Upstream: "ns_c_http", Proxy: model.ProxySettings{MaxBodySize: 1 << 20}},
				{Path: "/d/", Service: sp("d")},
			}},
		},
		Upstreams: []model.Upstream{
			{Name: "ns_a_http", Backends: addrs("10.0.0.1:80")},
			{Name: "ns_c_http", Backends: addrs("10.0.0.3:80")},
			{Name: "ns_root_http", Backends: addrs("10.0.0.9:80")},
		},
	}
	if got, want := Dedicated(cfg.Servers[0]), []bool{false, true, true, false}; !cmp.Equal(got, want) {
		t.Errorf("Dedicated = %v, want %v (a route with settings and the one under it)", got, want)
	}
	if got, want := Dedicated(cfg.Servers[1]), []bool{true, true}; !cmp.Equal(got, want) {
		t.Errorf("Dedicated = %v, want %v (a root route with settings: all)", got, want)
	}
	// Every route is in the table, those with a location of their own too.
	want := Table{
		Routes: []Route{
			{Server: DefaultServer, Path: "/", Key: "ns/root:http"},
			{Server: DefaultServer, Path: "/a/", Key: "ns/a:http"},
			{Server: DefaultServer, Path: "/a/b/", Key: "ns/ab:http", Strip: true},
			{Server: DefaultServer, Path: "/c/", Key: "ns/c:http", Strip: true},
			{Server: "x.example.com", Path: "/", Key: "ns/c:http"},
			{Server: "x.example.com", Path: "/d/", Key: "ns/d:http"},
		},
		Endpoints: []Endpoints{
			{Key: "ns/root:http", Addrs: addrs("10.0.0.9:80")},
			{Key: "ns/a:http", Addrs: addrs("10.0.0.1:80")},
			{Key: "ns/ab:http"},
			{Key: "ns/c:http", Addrs: addrs("10.0.0.3:80")},
			{Key: "ns/d:http"},
		},
	}
	if diff := cmp.Diff(want, Build(cfg), addrComparer); diff != "" {
		t.Errorf("Build (-want +got):\n%s", diff)
	}
}

// FuzzDecode: whatever Decode accepts, Encode writes back, and Decode reads
// that back unchanged; nothing with a special character gets through.
func FuzzDecode(f *testing.F) {
	good, _, _ := Encode(Table{
		Routes:    []Route{{Server: DefaultServer, Path: "/a/", Key: "a/b:c", Strip: true}, {Server: "*.x.example", Path: "/", Key: "x/y:1"}},
		Endpoints: []Endpoints{{Key: "a/b:c", Addrs: addrs("10.0.0.1:80", "[2001:db8::1]:8080")}, {Key: "x/y:1"}},
	})
	f.Add(good)
	f.Add([]byte("kube-nginx-sync table 1 ab\nend 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		table, _, err := Decode(data)
		if err != nil {
			return
		}
		enc, version, err := Encode(table)
		if err != nil {
			t.Fatalf("Decode accepted %q, whose table Encode refuses: %v", data, err)
		}
		back, v2, err := Decode(enc)
		if err != nil || v2 != version {
			t.Fatalf("Decode(Encode(...)) = %v, %q; want version %q", err, v2, version)
		}
		if diff := cmp.Diff(table.Routes, back.Routes); len(back.Routes) != len(table.Routes) || len(back.Endpoints) != len(table.Endpoints) {
			t.Fatalf("round trip changed the table: %s", diff)
		}
		for _, r := range back.Routes {
			for _, f := range []string{r.Server, r.Path, r.Key} {
				if strings.ContainsAny(f, " \n\r\t;{}\"'$\\") {
					t.Fatalf("a field with a special character went through: %q", f)
				}
			}
		}
	})
}
