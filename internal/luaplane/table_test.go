package luaplane

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
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

// writeRead writes t's files into a new folder and reads them back.
func writeRead(t *testing.T, files Files) (Table, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), FileName)
	if _, err := Write(path, files); err != nil {
		t.Fatal(err)
	}
	got, version, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	return got, version
}

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	table := Table{
		Routes: []Route{
			{Server: "shop.example.com", Path: "/", Key: "shop/web:http"},
			{Server: DefaultServer, Path: "/ns/web/", Key: "ns/web:http", Strip: true},
			{Server: "*.apps.example.com", Path: "/v1/", Key: "apps/v1:8080"},
			{Server: "shop.example.com", Path: "/login", Key: "shop/web:http", Exact: true},
			{Server: "shop.example.com", Path: "/api/", Key: "shop/web:http", Bare: true},
			{Server: "shop.example.com", Path: "/api/", Key: "shop/web:http", Exact: true},
		},
		Endpoints: []Endpoints{
			{Key: "shop/web:http", Addrs: addrs("198.18.0.2:8080", "[2001:db8::1]:8080", "198.18.0.2:8080")},
			{Key: "ns/web:http"},
			{Key: "apps/v1:8080", Addrs: addrs("10.0.0.1:1")},
		},
	}
	files, err := Encode(table)
	if err != nil {
		t.Fatal(err)
	}
	if len(files.Parts) != 1 {
		t.Fatalf("%d parts for 3 keys, want 1", len(files.Parts))
	}
	part := files.Parts[0]
	wantPart := "kube-nginx-sync part 2\n" +
		"route *.apps.example.com /v1/ apps/v1:8080 -\n" +
		"route _ /ns/web/ ns/web:http s\n" +
		"route shop.example.com / shop/web:http -\n" +
		"route shop.example.com /api/ shop/web:http b\n" +
		"route shop.example.com /api/ shop/web:http e\n" +
		"route shop.example.com /login shop/web:http e\n" +
		"endpoints apps/v1:8080 10.0.0.1:1\n" +
		"endpoints ns/web:http\n" +
		"endpoints shop/web:http 198.18.0.2:8080 [2001:db8::1]:8080\n" +
		"end 9\n"
	if string(part.Data) != wantPart {
		t.Fatalf("part =\n%s\nwant\n%s", part.Data, wantPart)
	}
	if sum := sha256.Sum256(part.Data); part.Hash != hex.EncodeToString(sum[:16]) {
		t.Errorf("part named %s, not by its content's hash", part.Hash)
	}
	wantIndex := "kube-nginx-sync table 2 " + files.Version + "\npart " + part.Hash + "\nend 1\n"
	if string(files.Index) != wantIndex {
		t.Fatalf("index =\n%s\nwant\n%s", files.Index, wantIndex)
	}
	got, version := writeRead(t, files)
	if version != files.Version {
		t.Fatalf("Read version %q, want %q", version, files.Version)
	}
	again, err := Encode(got)
	if err != nil || !bytes.Equal(again.Index, files.Index) || !bytes.Equal(again.Parts[0].Data, part.Data) {
		t.Errorf("Encode(Read(...)) = %v:\n%s", err, again.Index)
	}
	// Input order does not matter.
	shuffled := Table{Routes: []Route{table.Routes[5], table.Routes[2], table.Routes[4], table.Routes[0], table.Routes[3], table.Routes[1]}, Endpoints: []Endpoints{table.Endpoints[1], table.Endpoints[2], table.Endpoints[0]}}
	if f, _ := Encode(shuffled); !bytes.Equal(f.Index, files.Index) {
		t.Error("Encode depends on the order of its input")
	}
}

// bigTable is a table of n Service ports, a route and an endpoint each.
func bigTable(n int) Table {
	var t Table
	for i := range n {
		key := fmt.Sprintf("ns/svc-%d:http", i)
		t.Routes = append(t.Routes, Route{Server: DefaultServer, Path: fmt.Sprintf("/svc-%d/", i), Key: key})
		t.Endpoints = append(t.Endpoints, Endpoints{Key: key, Addrs: addrs(fmt.Sprintf("10.0.%d.%d:80", i/250, i%250+1))})
	}
	return t
}

func TestPartsAndOneChange(t *testing.T) {
	t.Parallel()
	table := bigTable(10000)
	files, err := Encode(table)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(files.Parts); n != 128 {
		t.Errorf("%d parts for 10,000 keys, want 128", n)
	}
	for _, p := range files.Parts {
		if part, err := DecodePart(p.Data); err != nil || len(part.Endpoints) > 2*partKeys {
			t.Errorf("part %s: %v, %d keys", p.Hash, err, len(part.Endpoints))
		}
	}
	// One endpoint changes: one part is new, the others are the same.
	table.Endpoints[4321].Addrs = addrs("10.9.9.9:80")
	changed, err := Encode(table)
	if err != nil {
		t.Fatal(err)
	}
	if changed.Version == files.Version {
		t.Error("the version did not change")
	}
	old := map[string]bool{}
	for _, p := range files.Parts {
		old[p.Hash] = true
	}
	fresh := 0
	for _, p := range changed.Parts {
		if !old[p.Hash] {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d new parts for one endpoint change, want 1", fresh)
	}
	// Written one after the other: the parts of the table before last
	// stay (a worker may be reading them), older ones go.
	path := filepath.Join(t.TempDir(), FileName)
	third := table
	third.Endpoints = slices.Clone(table.Endpoints)
	third.Endpoints[17] = Endpoints{Key: third.Endpoints[17].Key}
	thirdFiles, err := Encode(third)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []Files{files, changed, thirdFiles} {
		if ok, err := Write(path, f); err != nil || !ok {
			t.Fatalf("Write = %v, %v", ok, err)
		}
	}
	if ok, err := Write(path, thirdFiles); err != nil || ok {
		t.Errorf("Write of the same files = %v, %v; want unchanged", ok, err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(entries), 1+128+1; got != want {
		t.Errorf("%d files after three writes, want %d (the index, its parts, and the one part of the table before that it replaced)", got, want)
	}
	got, version, err := Read(path)
	if err != nil || version != thirdFiles.Version || len(got.Endpoints) != 10000 {
		t.Fatalf("Read = %v, %q, %d keys", err, version, len(got.Endpoints))
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
		{Server: DefaultServer, Path: "/a", Key: "a/b:c", Exact: true, Strip: true},
		{Server: DefaultServer, Path: "/a/", Key: "a/b:c", Exact: true, Bare: true},
		{Server: DefaultServer, Path: "/a//", Key: "a/b:c", Exact: true},
		{Server: DefaultServer, Path: "/a", Key: "a/b:c", Bare: true},
	} {
		if f, err := Encode(Table{Routes: []Route{r}}); err == nil {
			t.Errorf("Encode(%+v) = %+v, want an error", r, f)
		}
	}
	if _, err := Encode(Table{Routes: []Route{ok, ok}}); err == nil {
		t.Error("Encode took one route twice")
	}
	okExact := Route{Server: DefaultServer, Path: "/a/", Key: "x/y:z", Exact: true}
	if _, err := Encode(Table{Routes: []Route{ok, okExact}}); err != nil {
		t.Errorf("Encode refused an exact route and a prefix route of one path: %v", err)
	}
	if _, err := Encode(Table{Routes: []Route{okExact, okExact}}); err == nil {
		t.Error("Encode took one exact route twice")
	}
	for _, e := range []Endpoints{
		{Key: strings.Repeat("a", 200) + "/b:c"},
		{Key: "a/b:c", Addrs: []netip.AddrPort{{}}},
		{Key: "a/b:c", Addrs: addrs("1.2.3.4:0")},
		{Key: "a/b:c", Addrs: addrs("[fe80::1%eth0]:80")},
		{Key: "a/b:c", Addrs: addrs("[::ffff:1.2.3.4]:80")},
		{Key: "a/b:c", Addrs: addrs("0.0.0.0:80")},
	} {
		if f, err := Encode(Table{Endpoints: []Endpoints{e}}); err == nil {
			t.Errorf("Encode(%+v) = %+v, want an error", e, f)
		}
	}
	if _, err := Encode(Table{Endpoints: []Endpoints{{Key: "a/b:c"}, {Key: "a/b:c"}}}); err == nil {
		t.Error("Encode took one key twice")
	}
}

// badParts are a good part's text and broken versions of it, by what is
// wrong; kns.lua's parse_part must refuse them too (TestLuaReader).
func badParts() (good string, bad map[string]string) {
	f, _ := Encode(Table{
		Routes: []Route{{Server: DefaultServer, Path: "/a/", Key: "a/b:c"}, {Server: DefaultServer, Path: "/a", Key: "a/b:c", Exact: true},
			{Server: DefaultServer, Path: "/b/", Key: "a/b:c", Bare: true}},
		Endpoints: []Endpoints{{Key: "a/b:c", Addrs: addrs("10.0.0.1:80")}},
	})
	g := string(f.Parts[0].Data)
	return g, map[string]string{
		"empty":           "",
		"truncated":       g[:len(g)-3],
		"no end":          strings.Replace(g, "end 4\n", "", 1),
		"wrong count":     strings.Replace(g, "end 4", "end 3", 1),
		"zero count":      strings.Replace(g, "end 4", "end 04", 1),
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
		"repeated key":    strings.Replace(g, "end 4", "endpoints a/b:c\nend 5", 1),
		"bad path":        strings.Replace(g, " /a/ ", " /a;/ ", 1),
		"path no slash":   strings.Replace(g, " /a/ ", " /a ", 1),
		"bad flag":        strings.Replace(g, "a/b:c -", "a/b:c x", 1),
		"bad server":      strings.Replace(g, "route _ ", "route {evil} ", 1),
		"repeated route":  strings.Replace(g, "end 4", "route _ /a/ x/y:z -\nend 5", 1),
		"repeated exact":  strings.Replace(g, "end 4", "route _ /a x/y:z e\nend 5", 1),
		"exact strips":    strings.Replace(g, "/a a/b:c e", "/a a/b:c se", 1),
		"exact bare":      strings.Replace(g, "/a a/b:c e", "/a a/b:c eb", 1),
		"flag order":      strings.Replace(g, "/b/ a/b:c b", "/b/ a/b:c bs", 1),
		"bare no slash":   strings.Replace(g, "/b/ a/b:c b", "/b a/b:c b", 1),
		"unknown line":    strings.Replace(g, "end 4", "upstream x\nend 5", 1),
		"bad header":      strings.Replace(g, "part 2", "part 1", 1),
		"crlf":            strings.ReplaceAll(g, "\n", "\r\n"),
	}
}

// badIndexes are a good index's text and broken versions of it.
func badIndexes() (good string, bad map[string]string) {
	h := strings.Repeat("ab", 16)
	g := "kube-nginx-sync table 2 0123abcd\npart " + h + "\nend 1\n"
	return g, map[string]string{
		"empty":         "",
		"old format":    strings.Replace(g, "table 2", "table 1", 1),
		"upper version": strings.Replace(g, "0123abcd", "0123ABCD", 1),
		"no version":    strings.Replace(g, " 0123abcd", "", 1),
		"short hash":    strings.Replace(g, h, h[1:], 1),
		"upper hash":    strings.Replace(g, h, strings.ToUpper(h), 1),
		"path in hash":  strings.Replace(g, h, "../../etc/passwd", 1),
		"repeated part": strings.Replace(g, "end 1", "part "+h+"\nend 2", 1),
		"wrong count":   strings.Replace(g, "end 1", "end 2", 1),
		"no end":        strings.Replace(g, "end 1\n", "", 1),
		"after end":     g + "part " + h + "\n",
		"unknown line":  strings.Replace(g, "end 1", "route _ / a/b:c -\nend 2", 1),
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	good, bad := badParts()
	if _, err := DecodePart([]byte(good)); err != nil {
		t.Fatalf("DecodePart(good) = %v", err)
	}
	for name, text := range bad {
		if _, err := DecodePart([]byte(text)); err == nil {
			t.Errorf("%s: DecodePart(%q) accepted it", name, text)
		}
	}
	good, bad = badIndexes()
	if _, _, err := DecodeIndex([]byte(good)); err != nil {
		t.Fatalf("DecodeIndex(good) = %v", err)
	}
	for name, text := range bad {
		if _, _, err := DecodeIndex([]byte(text)); err == nil {
			t.Errorf("%s: DecodeIndex(%q) accepted it", name, text)
		}
	}
}

func TestReadRefusesARouteInTwoParts(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), FileName)
	a, _ := Encode(Table{Routes: []Route{{Server: DefaultServer, Path: "/a/", Key: "a/b:c"}}})
	b, _ := Encode(Table{Routes: []Route{{Server: DefaultServer, Path: "/a/", Key: "x/y:z"}}})
	index := fmt.Sprintf("kube-nginx-sync table 2 ab\npart %s\npart %s\nend 2\n", a.Parts[0].Hash, b.Parts[0].Hash)
	for _, p := range []Part{a.Parts[0], b.Parts[0]} {
		if err := os.WriteFile(PartPath(path, p.Hash), p.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Read(path); err == nil || !strings.Contains(err.Error(), "another part") {
		t.Errorf("Read = %v, want a route in two parts refused", err)
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
			{Host: "y.example.com", Locations: []model.Location{
				{Path: "/e", Exact: true, Service: sp("e"), Proxy: model.ProxySettings{MaxBodySize: 1 << 20}},
				{Path: "/e/", Bare: model.BareExact, Service: sp("e")},
				{Path: "/f/", Bare: model.BareRoute, Service: sp("f"), Proxy: model.ProxySettings{MaxBodySize: 1 << 20}},
				{Path: "/f/g", Exact: true, Service: sp("e")},
				{Path: "/h/", Bare: model.BareRoute, Service: sp("e")},
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
	if got, want := Dedicated(cfg.Servers[2]), []bool{true, false, true, true, false}; !cmp.Equal(got, want) {
		t.Errorf("Dedicated = %v, want %v (an exact route with settings alone; an exact route under a prefix with settings)", got, want)
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
			{Server: "y.example.com", Path: "/e", Key: "ns/e:http", Exact: true},
			{Server: "y.example.com", Path: "/e/", Key: "ns/e:http"},
			{Server: "y.example.com", Path: "/f/", Key: "ns/f:http", Bare: true},
			{Server: "y.example.com", Path: "/f/g", Key: "ns/e:http", Exact: true},
			{Server: "y.example.com", Path: "/h/", Key: "ns/e:http", Bare: true},
		},
		Endpoints: []Endpoints{
			{Key: "ns/root:http", Addrs: addrs("10.0.0.9:80")},
			{Key: "ns/a:http", Addrs: addrs("10.0.0.1:80")},
			{Key: "ns/ab:http"},
			{Key: "ns/c:http", Addrs: addrs("10.0.0.3:80")},
			{Key: "ns/d:http"},
			{Key: "ns/e:http"},
			{Key: "ns/f:http"},
		},
	}
	if diff := cmp.Diff(want, Build(cfg), addrComparer); diff != "" {
		t.Errorf("Build (-want +got):\n%s", diff)
	}
}

// FuzzDecode: whatever DecodePart accepts, Encode writes back, and
// DecodePart reads that back unchanged; nothing with a special character
// gets through. Whatever DecodeIndex accepts names parts by hashes only.
func FuzzDecode(f *testing.F) {
	good, _ := Encode(Table{
		Routes: []Route{{Server: DefaultServer, Path: "/a/", Key: "a/b:c", Strip: true}, {Server: "*.x.example", Path: "/", Key: "x/y:1"},
			{Server: DefaultServer, Path: "/a", Key: "a/b:c", Exact: true}, {Server: DefaultServer, Path: "/b/", Key: "a/b:c", Strip: true, Bare: true}},
		Endpoints: []Endpoints{{Key: "a/b:c", Addrs: addrs("10.0.0.1:80", "[2001:db8::1]:8080")}, {Key: "x/y:1"}},
	})
	f.Add(good.Parts[0].Data)
	f.Add(good.Index)
	f.Add([]byte("kube-nginx-sync part 2\nend 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if hashes, _, err := DecodeIndex(data); err == nil {
			for _, h := range hashes {
				if !isHex(h, 32, 32) {
					t.Fatalf("DecodeIndex accepted a part named %q", h)
				}
			}
		}
		table, err := DecodePart(data)
		if err != nil {
			return
		}
		enc, err := Encode(table)
		if err != nil {
			t.Fatalf("DecodePart accepted %q, whose table Encode refuses: %v", data, err)
		}
		var back Table
		for _, p := range enc.Parts {
			part, err := DecodePart(p.Data)
			if err != nil {
				t.Fatalf("DecodePart(Encode(...)) = %v", err)
			}
			back.Routes = append(back.Routes, part.Routes...)
			back.Endpoints = append(back.Endpoints, part.Endpoints...)
		}
		if len(back.Routes) != len(table.Routes) || len(back.Endpoints) != len(table.Endpoints) {
			t.Fatalf("round trip changed the table: %d/%d routes, %d/%d keys", len(back.Routes), len(table.Routes), len(back.Endpoints), len(table.Endpoints))
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

// FuzzValidKey: the hand-written ValidKey is the grammar of kns.lua's KEY
// pattern.
func FuzzValidKey(f *testing.F) {
	grammar := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9-]*$`)
	for _, k := range []string{"a/b:c", "ns/web-1:http", "a-/b:c", "-a/b:c", "a/b:", "a/b:c:d", "a//b:c", "A/b:c", "a/b:c\n", "a/b/c:d"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		if got, want := ValidKey(key), len(key) <= maxKey && grammar.MatchString(key); got != want {
			t.Fatalf("ValidKey(%q) = %v, want %v", key, got, want)
		}
	})
}

// TestEncoderSetEndpoints: new endpoints of one key give the files that
// encoding the whole changed table gives, with one new part.
func TestEncoderSetEndpoints(t *testing.T) {
	t.Parallel()
	table := bigTable(1000)
	var e Encoder
	if _, ok, err := e.SetEndpoints(table.Endpoints[0].Key, nil); ok || err != nil {
		t.Errorf("SetEndpoints before any Encode = %v, %v; want nothing done", ok, err)
	}
	before, err := e.Encode(table)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		i     int
		addrs []netip.AddrPort
	}{
		{7, addrs("10.9.9.9:80", "10.9.9.8:80", "10.9.9.9:80")},
		{7, nil},
		{999, addrs("[2001:db8::7]:8080")},
	} {
		got, ok, err := e.SetEndpoints(table.Endpoints[tc.i].Key, tc.addrs)
		if !ok || err != nil {
			t.Fatalf("SetEndpoints(%s) = %v, %v", table.Endpoints[tc.i].Key, ok, err)
		}
		table.Endpoints[tc.i].Addrs = tc.addrs
		want, err := Encode(table)
		if err != nil {
			t.Fatal(err)
		}
		if got.Version != want.Version || !bytes.Equal(got.Index, want.Index) || len(got.Parts) != len(want.Parts) {
			t.Fatalf("after SetEndpoints(%s): version %s, want %s", table.Endpoints[tc.i].Key, got.Version, want.Version)
		}
		for i := range got.Parts {
			if got.Parts[i].Hash != want.Parts[i].Hash || !bytes.Equal(got.Parts[i].Data, want.Parts[i].Data) {
				t.Fatalf("part %d differs from a whole encoding", i)
			}
		}
	}
	changed := 0
	after, _, _ := e.SetEndpoints(table.Endpoints[0].Key, table.Endpoints[0].Addrs)
	for i := range after.Parts {
		if after.Parts[i].Hash != before.Parts[i].Hash {
			changed++
		}
	}
	if changed != 2 {
		t.Errorf("%d parts changed by new endpoints of two keys, want 2 (unless they share a part)", changed)
	}
	if _, ok, err := e.SetEndpoints("ns/not-routed:http", addrs("10.0.0.1:80")); ok || err != nil {
		t.Errorf("SetEndpoints of a key not in the table = %v, %v; want nothing done", ok, err)
	}
	if _, _, err := e.SetEndpoints(table.Endpoints[5].Key, addrs("0.0.0.0:80")); err == nil {
		t.Error("SetEndpoints took an address that may not be written")
	}
	if again, _, _ := e.SetEndpoints(table.Endpoints[0].Key, table.Endpoints[0].Addrs); again.Version != after.Version {
		t.Error("a refused SetEndpoints changed the table")
	}
}
