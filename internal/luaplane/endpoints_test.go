package luaplane

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustAddr(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestEncodeDecode(t *testing.T) {
	t.Parallel()
	routes := []Route{
		{Key: "shop/web:http", Endpoints: []netip.AddrPort{mustAddr("198.18.0.2:8080"), mustAddr("[2001:db8::1]:8080"), mustAddr("198.18.0.2:8080")}},
		{Key: "demo/sleepy:80"},
		{Key: "a/b:c", Endpoints: []netip.AddrPort{mustAddr("10.0.0.1:1")}},
	}
	data, version, err := Encode(routes)
	if err != nil {
		t.Fatal(err)
	}
	want := "kube-nginx-sync endpoints 1 " + version + "\n" +
		"a/b:c 10.0.0.1:1\n" +
		"demo/sleepy:80\n" +
		"shop/web:http 198.18.0.2:8080 [2001:db8::1]:8080\n" +
		"end 3\n"
	if string(data) != want {
		t.Fatalf("Encode =\n%s\nwant\n%s", data, want)
	}
	got, gotVersion, err := Decode(data)
	if err != nil || gotVersion != version {
		t.Fatalf("Decode = %v, version %q; want %q", err, gotVersion, version)
	}
	wantRoutes := []Route{
		{Key: "a/b:c", Endpoints: []netip.AddrPort{mustAddr("10.0.0.1:1")}},
		{Key: "demo/sleepy:80"},
		{Key: "shop/web:http", Endpoints: []netip.AddrPort{mustAddr("198.18.0.2:8080"), mustAddr("[2001:db8::1]:8080")}},
	}
	if diff := cmp.Diff(wantRoutes, got, cmp.Comparer(func(a, b netip.AddrPort) bool { return a == b })); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	// Input order does not matter.
	again, _, _ := Encode([]Route{routes[2], routes[0], routes[1]})
	if !bytes.Equal(again, data) {
		t.Error("Encode depends on the order of its input")
	}
}

func TestEncodeRefuses(t *testing.T) {
	t.Parallel()
	for _, r := range []Route{
		{Key: "a/b:c\nevil/x:y 1.2.3.4:5"},
		{Key: "a/b"},
		{Key: "A/b:c"},
		{Key: "a/b:c " + "1.2.3.4:5"},
		{Key: strings.Repeat("a", 200) + "/b:c"},
		{Key: "a/b:c", Endpoints: []netip.AddrPort{{}}},
		{Key: "a/b:c", Endpoints: []netip.AddrPort{mustAddr("1.2.3.4:0")}},
		{Key: "a/b:c", Endpoints: []netip.AddrPort{mustAddr("[fe80::1%eth0]:80")}},
		{Key: "a/b:c", Endpoints: []netip.AddrPort{mustAddr("[::ffff:1.2.3.4]:80")}},
		{Key: "a/b:c", Endpoints: []netip.AddrPort{mustAddr("0.0.0.0:80")}},
	} {
		if data, _, err := Encode([]Route{r}); err == nil {
			t.Errorf("Encode(%+v) = %q, want an error", r, data)
		}
	}
	if _, _, err := Encode([]Route{{Key: "a/b:c"}, {Key: "a/b:c"}}); err == nil {
		t.Error("Encode took one key twice")
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	good, _, _ := Encode([]Route{{Key: "a/b:c", Endpoints: []netip.AddrPort{mustAddr("10.0.0.1:80")}}})
	for name, text := range map[string]string{
		"empty":           "",
		"truncated":       string(good[:len(good)-3]),
		"no end":          strings.Replace(string(good), "end 1\n", "", 1),
		"wrong count":     strings.Replace(string(good), "end 1", "end 2", 1),
		"zero count":      strings.Replace(string(good), "end 1", "end 01", 1),
		"after end":       string(good) + "x/y:z\n",
		"double space":    strings.Replace(string(good), "c 10", "c  10", 1),
		"trailing space":  strings.Replace(string(good), ":80\n", ":80 \n", 1),
		"leading zero ip": strings.Replace(string(good), "10.0.0.1", "10.0.0.01", 1),
		"octet":           strings.Replace(string(good), "10.0.0.1", "10.0.0.256", 1),
		"port 0":          strings.Replace(string(good), ":80\n", ":0\n", 1),
		"port 65536":      strings.Replace(string(good), ":80\n", ":65536\n", 1),
		"leading zero p":  strings.Replace(string(good), ":80\n", ":080\n", 1),
		"host name":       strings.Replace(string(good), "10.0.0.1", "evil.example", 1),
		"no brackets v6":  strings.Replace(string(good), "10.0.0.1", "2001:db8::1", 1),
		"bad key":         strings.Replace(string(good), "a/b:c", "a/b;c", 1),
		"bad header":      strings.Replace(string(good), "endpoints 1 ", "endpoints 2 ", 1),
		"crlf":            strings.ReplaceAll(string(good), "\n", "\r\n"),
	} {
		if _, _, err := Decode([]byte(text)); err == nil {
			t.Errorf("%s: Decode(%q) accepted it", name, text)
		}
	}
}

// FuzzDecode: whatever Decode accepts, Encode writes back the same routes;
// and what Encode writes, Decode reads back unchanged.
func FuzzDecode(f *testing.F) {
	good, _, _ := Encode([]Route{
		{Key: "a/b:c", Endpoints: []netip.AddrPort{mustAddr("10.0.0.1:80"), mustAddr("[2001:db8::1]:8080")}},
		{Key: "x/y:1"},
	})
	f.Add(good)
	f.Add([]byte("kube-nginx-sync endpoints 1 ab\nend 0\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		routes, _, err := Decode(data)
		if err != nil {
			return
		}
		enc, version, err := Encode(routes)
		if err != nil {
			t.Fatalf("Decode accepted %q, whose routes Encode refuses: %v", data, err)
		}
		back, v2, err := Decode(enc)
		if err != nil || v2 != version {
			t.Fatalf("Decode(Encode(...)) = %v, %q; want version %q", err, v2, version)
		}
		if len(back) != len(routes) {
			t.Fatalf("%d routes back, want %d", len(back), len(routes))
		}
		for _, r := range back {
			if strings.ContainsAny(r.Key, " \n\r\t;{}\"'$\\") {
				t.Fatalf("a key with a special character went through: %q", r.Key)
			}
		}
	})
}
