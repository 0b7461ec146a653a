package luaplane_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/controlplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginx"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// luaReader is kns.lua's parse_part and parse_index, run by a real nginx:
// POST a text to /part or /index, read "ok <routes> <keys>" (for an index:
// "ok <parts> 0") or "refused <why>".
type luaReader struct {
	t    *testing.T
	base string
}

func startLuaReader(t *testing.T) *luaReader {
	t.Helper()
	bin := testbed.NginxBinary(t)
	modules := nginx.LuaModules()
	if modules == nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the Lua module is required in CI (libnginx-mod-http-lua)")
		}
		t.Skip("the Lua module is not installed")
	}
	port, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	confDir := filepath.Join(prefix, "conf.d")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`init_by_lua_block {
    package.loaded.kube_nginx_sync = (function()
%s
    end)()
}
server {
    listen 127.0.0.1:%d;
    client_body_buffer_size 4m;
    client_max_body_size 4m;
    location = /part {
        content_by_lua_block {
            ngx.req.read_body()
            local routes, eps, why = require("kube_nginx_sync").parse_part(ngx.req.get_body_data() or "")
            if not routes then
                return ngx.say("refused ", why)
            end
            local keys = 0
            for _ in pairs(eps) do keys = keys + 1 end
            ngx.say("ok ", #routes, " ", keys)
        }
    }
    location = /index {
        content_by_lua_block {
            ngx.req.read_body()
            local hashes, why = require("kube_nginx_sync").parse_index(ngx.req.get_body_data() or "")
            if not hashes then
                return ngx.say("refused ", why)
            end
            ngx.say("ok ", #hashes, " 0")
        }
    }
}
`, luaplane.Module, port)
	if err := os.WriteFile(filepath.Join(confDir, "reader.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := testbed.MainConfig{Prefix: prefix, ConfDir: confDir, Modules: modules}.Start(bin, port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return &luaReader{t: t, base: "http://127.0.0.1:" + strconv.Itoa(port)}
}

// read returns kns.lua's verdict on text: whether it accepts it, and the
// numbers of routes (or parts) and keys it read.
func (r *luaReader) read(what, text string) (ok bool, routes, keys int, answer string) {
	r.t.Helper()
	resp, err := http.Post(r.base+"/"+what, "text/plain", strings.NewReader(text))
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		r.t.Fatalf("%s: %d %v %s", what, resp.StatusCode, err, body)
	}
	answer = strings.TrimSpace(string(body))
	if _, err := fmt.Sscanf(answer, "ok %d %d", &routes, &keys); err == nil {
		return true, routes, keys, answer
	}
	return false, 0, 0, answer
}

// TestLuaReader: the Lua reader in nginx and its Go port agree. Every file
// the Go writer writes, the Lua reader reads the same; every broken file
// of the Go tests, it refuses; and of random mutations of good files,
// whatever the Go reader accepts, the Lua reader accepts the same (the Go
// reader is stricter: it checks hosts and paths as the model does).
func TestLuaReader(t *testing.T) {
	t.Parallel()
	r := startLuaReader(t)
	files, err := luaplane.Encode(luaplane.BigTable(1000))
	if err != nil {
		t.Fatal(err)
	}
	if ok, parts, _, answer := r.read("index", string(files.Index)); !ok || parts != len(files.Parts) {
		t.Errorf("the index of 1,000 keys: %s, want %d parts", answer, len(files.Parts))
	}
	for _, p := range files.Parts {
		want, err := luaplane.DecodePart(p.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ok, routes, keys, answer := r.read("part", string(p.Data)); !ok || routes != len(want.Routes) || keys != len(want.Endpoints) {
			t.Errorf("part %s: %s, want %d routes and %d keys", p.Hash, answer, len(want.Routes), len(want.Endpoints))
		}
	}
	good, bad := luaplane.BadParts()
	for name, text := range bad {
		if ok, _, _, answer := r.read("part", text); ok {
			t.Errorf("part %s: the Lua reader accepted %q: %s", name, text, answer)
		}
	}
	goodIndex, badIndexes := luaplane.BadIndexes()
	for name, text := range badIndexes {
		if ok, _, _, answer := r.read("index", text); ok {
			t.Errorf("index %s: the Lua reader accepted %q: %s", name, text, answer)
		}
	}
	// Mutations: a byte replaced, inserted or removed, from a set of
	// characters that the grammar cares about.
	rng := rand.New(rand.NewPCG(1, 2))
	const chars = " \n\r\t./:-_*[]0123456789abcdefsz;{}$\"'\\AZ"
	accepted := 0
	for i := range 600 {
		what, text := "part", good
		if i%3 == 0 {
			what, text = "index", goodIndex
		}
		b := []byte(text)
		for range 1 + rng.IntN(2) {
			at := rng.IntN(len(b))
			c := chars[rng.IntN(len(chars))]
			switch rng.IntN(3) {
			case 0:
				b[at] = c
			case 1:
				b = append(b[:at], append([]byte{c}, b[at:]...)...)
			default:
				b = append(b[:at], b[at+1:]...)
			}
		}
		var goOK bool
		var goRoutes, goKeys int
		if what == "part" {
			tbl, err := luaplane.DecodePart(b)
			goOK, goRoutes, goKeys = err == nil, len(tbl.Routes), len(tbl.Endpoints)
		} else {
			hashes, _, err := luaplane.DecodeIndex(b)
			goOK, goRoutes = err == nil, len(hashes)
		}
		if !goOK {
			continue
		}
		accepted++
		if ok, routes, keys, answer := r.read(what, string(b)); !ok || routes != goRoutes || keys != goKeys {
			t.Errorf("%s %q: the Go reader reads %d, %d; the Lua reader: %s", what, b, goRoutes, goKeys, answer)
		}
	}
	t.Logf("%d of 600 mutations accepted by the Go reader, and read the same by the Lua reader", accepted)
}
