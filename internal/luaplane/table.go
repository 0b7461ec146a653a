// Package luaplane is kube-nginx-sync's Lua data plane: the table file that
// the generator writes beside nginx's config, and the Lua module (kns.lua,
// embedded) with which nginx's workers read that file, route requests and
// balance them over the endpoints, so that neither an endpoint change nor
// a new route needs a reload.
//
// The table holds each server's routes, which the Lua router matches, and
// the ready endpoints of every routed Service port. nginx's config keeps
// what only nginx can do: its servers (hosts), and a location of its own
// for each route with proxy settings of its own (Dedicated). Those routes
// are in the table too: nginx's own locations take their requests, but
// while nginx reloads to a config where a route gained its own location,
// the old workers still route it by the table.
//
// The file's grammar is held by three pieces of code: Encode writes it,
// Decode is a Go port of the Lua reader (so the grammar is fuzzed in Go),
// and kns.lua's parse reads it in nginx. Hosts, paths, keys and addresses
// are validated on the way in (with the model's own parsers): nothing else
// can be written.
package luaplane

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// Module is the Lua module's source, which the config loads.
//
//go:embed kns.lua
var Module string

// FileName is the table file's name in the config folder: hidden, so that
// nginx's include and the reloader's fingerprint ignore it.
const FileName = confdir.HiddenPrefix + "kube-nginx-sync-table"

// header starts the file; the version follows it.
const header = "kube-nginx-sync table 1 "

// DefaultServer names the default server (nginx's "server_name _").
const DefaultServer = "_"

// Table is what the table file holds.
type Table struct {
	// Routes are every server's routes, by server and path.
	Routes []Route
	// Endpoints hold the ready endpoints of every routed Service port, by
	// key; a key with none answers 503.
	Endpoints []Endpoints
}

// Route is one route, which the Lua router matches.
type Route struct {
	// Server is the server's host (its server_name), or DefaultServer.
	Server string
	// Path is the route's path prefix, as the model has it (ending in
	// "/").
	Path string
	// Key names the route's Service port (see Key).
	Key string
	// Strip replaces Path by "/" before the request reaches the backend.
	Strip bool
}

// Endpoints are one Service port's ready endpoints.
type Endpoints struct {
	Key   string
	Addrs []netip.AddrPort
}

// Key is the table's name of a Service port, which the config's dedicated
// locations name in $kns_route: "namespace/name:port".
func Key(p model.ServicePort) string { return p.String() }

// keyPattern is a key's grammar, as kns.lua's parse has it.
var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9-]*$`)

// maxKey bounds a key's length, as kns.lua's parse does.
const maxKey = 200

// ValidKey reports whether key may be written.
func ValidKey(key string) bool { return len(key) <= maxKey && keyPattern.MatchString(key) }

// validServer: a host the model accepts, in its canonical form, or the
// default server.
func validServer(s string) bool {
	if s == DefaultServer {
		return true
	}
	h, err := model.ParseHost(s)
	return err == nil && h == s
}

// validPath: a path the model accepts, in its canonical form.
func validPath(p string) bool {
	c, err := model.ParsePath(p)
	return err == nil && c == p
}

// Dedicated says which of a server's locations nginx matches in a
// location of its own (true) rather than the Lua router: a route with
// proxy settings of its own (nginx applies them per location), and every
// route under the path of such a route, so that nginx's longest-prefix
// match among its locations picks the same route as the router would.
// When the root route "/" is dedicated, all are.
func Dedicated(s model.Server) []bool {
	out := make([]bool, len(s.Locations))
	var prefixes []string
	for _, l := range s.Locations {
		if !l.Proxy.IsZero() {
			prefixes = append(prefixes, l.Path)
		}
	}
	for i, l := range s.Locations {
		out[i] = slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(l.Path, p) })
	}
	return out
}

// Build returns the table for cfg.
func Build(cfg model.Config) Table {
	backends := make(map[string][]netip.AddrPort, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		backends[u.Name] = u.Backends
	}
	var t Table
	seen := make(map[model.ServicePort]bool, cfg.Routes())
	for _, s := range cfg.Servers {
		server := cmp.Or(s.Host, DefaultServer)
		for _, l := range s.Locations {
			t.Routes = append(t.Routes, Route{Server: server, Path: l.Path, Key: Key(l.Service), Strip: l.StripPrefix})
			if !seen[l.Service] {
				seen[l.Service] = true
				t.Endpoints = append(t.Endpoints, Endpoints{Key: Key(l.Service), Addrs: backends[l.Upstream]})
			}
		}
	}
	return t
}

// Encode returns the file for t, and its version: the SHA-256 of the lines
// after the header, which the header names. Routes are written by server
// and path, endpoints by key, sorted and without duplicates.
func Encode(t Table) (data []byte, version string, err error) {
	routes := slices.Clone(t.Routes)
	slices.SortFunc(routes, func(a, b Route) int {
		return cmp.Or(strings.Compare(a.Server, b.Server), strings.Compare(a.Path, b.Path))
	})
	eps := slices.Clone(t.Endpoints)
	slices.SortFunc(eps, func(a, b Endpoints) int { return strings.Compare(a.Key, b.Key) })
	var body bytes.Buffer
	body.Grow(80*len(routes) + 64*len(eps))
	for i, r := range routes {
		switch {
		case !validServer(r.Server):
			return nil, "", fmt.Errorf("table: invalid server %q", r.Server)
		case !validPath(r.Path):
			return nil, "", fmt.Errorf("table: invalid path %q", r.Path)
		case !ValidKey(r.Key):
			return nil, "", fmt.Errorf("table: invalid key %q", r.Key)
		case i > 0 && routes[i-1].Server == r.Server && routes[i-1].Path == r.Path:
			return nil, "", fmt.Errorf("table: route %s%s twice", r.Server, r.Path)
		}
		flag := "-"
		if r.Strip {
			flag = "s"
		}
		fmt.Fprintf(&body, "route %s %s %s %s\n", r.Server, r.Path, r.Key, flag)
	}
	for i, e := range eps {
		if !ValidKey(e.Key) {
			return nil, "", fmt.Errorf("table: invalid key %q", e.Key)
		}
		if i > 0 && eps[i-1].Key == e.Key {
			return nil, "", fmt.Errorf("table: endpoints of %s twice", e.Key)
		}
		body.WriteString("endpoints ")
		body.WriteString(e.Key)
		addrs := slices.Clone(e.Addrs)
		slices.SortFunc(addrs, func(a, b netip.AddrPort) int { return a.Compare(b) })
		for _, a := range slices.Compact(addrs) {
			if !validEndpoint(a) {
				return nil, "", fmt.Errorf("table: invalid endpoint %v of %s", a, e.Key)
			}
			body.WriteByte(' ')
			body.WriteString(a.String())
		}
		body.WriteByte('\n')
	}
	fmt.Fprintf(&body, "end %d\n", len(routes)+len(eps))
	sum := sha256.Sum256(body.Bytes())
	version = hex.EncodeToString(sum[:16])
	out := make([]byte, 0, len(header)+len(version)+1+body.Len())
	out = append(out, header...)
	out = append(out, version...)
	out = append(out, '\n')
	return append(out, body.Bytes()...), version, nil
}

// validEndpoint: an address nginx can connect to, written in a form the Lua
// reader takes (no zone, no IPv4-mapped IPv6 in dotted form).
func validEndpoint(ep netip.AddrPort) bool {
	a := ep.Addr()
	return ep.IsValid() && ep.Port() != 0 && a.Zone() == "" && !a.IsUnspecified() && !a.Is4In6()
}

// Decode parses the file as kns.lua's parse does (and checks hosts and
// paths as strictly as Encode), and returns the table and its version.
func Decode(data []byte) (Table, string, error) {
	text := string(data)
	if !strings.HasPrefix(text, header) {
		return Table{}, "", errors.New("no header")
	}
	if !strings.HasSuffix(text, "\n") {
		return Table{}, "", errors.New("text after the end line")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	version := strings.TrimPrefix(lines[0], header)
	if version == "" || strings.Trim(version, "0123456789abcdefABCDEF") != "" {
		return Table{}, "", errors.New("bad header")
	}
	var t Table
	routes, keys := map[string]bool{}, map[string]bool{}
	ended := false
	for i, line := range lines[1:] {
		n := i + 2
		if ended {
			return Table{}, "", fmt.Errorf("line %d: text after the end line", n)
		}
		fields := strings.Split(line, " ")
		switch fields[0] {
		case "end":
			count := strings.Join(fields[1:], " ")
			if c, err := strconv.Atoi(count); err != nil || c != len(t.Routes)+len(t.Endpoints) || strconv.Itoa(c) != count {
				return Table{}, "", fmt.Errorf("end line counts %q lines, the file has %d", count, len(t.Routes)+len(t.Endpoints))
			}
			ended = true
		case "route":
			if len(fields) != 5 || !validServer(fields[1]) || !validPath(fields[2]) || !ValidKey(fields[3]) ||
				(fields[4] != "s" && fields[4] != "-") || routes[fields[1]+" "+fields[2]] {
				return Table{}, "", fmt.Errorf("line %d: bad or repeated route", n)
			}
			routes[fields[1]+" "+fields[2]] = true
			t.Routes = append(t.Routes, Route{Server: fields[1], Path: fields[2], Key: fields[3], Strip: fields[4] == "s"})
		case "endpoints":
			if len(fields) < 2 || !ValidKey(fields[1]) || keys[fields[1]] {
				return Table{}, "", fmt.Errorf("line %d: bad or repeated key", n)
			}
			keys[fields[1]] = true
			e := Endpoints{Key: fields[1]}
			for _, f := range fields[2:] {
				a, ok := parseAddress(f)
				if !ok {
					return Table{}, "", fmt.Errorf("line %d: bad address or spacing", n)
				}
				e.Addrs = append(e.Addrs, a)
			}
			t.Endpoints = append(t.Endpoints, e)
		default:
			return Table{}, "", fmt.Errorf("line %d: unknown line", n)
		}
	}
	if !ended {
		return Table{}, "", errors.New("no end line: the file is incomplete")
	}
	return t, version, nil
}

// parseAddress reads an address as kns.lua's parse_address does: IPv4
// without leading zeros, or IPv6 in brackets; a port 1..65535 without
// leading zeros.
func parseAddress(s string) (netip.AddrPort, bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, false
	}
	host, port := s[:i], s[i+1:]
	if port == "" || len(port) > 5 || (len(port) > 1 && port[0] == '0') || strings.Trim(port, "0123456789") != "" {
		return netip.AddrPort{}, false
	}
	p, _ := strconv.Atoi(port)
	if p < 1 || p > 65535 {
		return netip.AddrPort{}, false
	}
	var addr netip.Addr
	if strings.HasPrefix(host, "[") {
		inner, ok := strings.CutSuffix(host[1:], "]")
		if !ok || len(host) > 47 || !strings.Contains(inner, ":") || strings.Trim(inner, "0123456789abcdefABCDEF:.") != "" {
			return netip.AddrPort{}, false
		}
		a, err := netip.ParseAddr(inner)
		if err != nil || !a.Is6() || a.Is4In6() {
			return netip.AddrPort{}, false
		}
		addr = a
	} else {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is4() || strings.Trim(host, "0123456789.") != "" {
			return netip.AddrPort{}, false
		}
		addr = a
	}
	return netip.AddrPortFrom(addr, uint16(p)), validEndpoint(netip.AddrPortFrom(addr, uint16(p)))
}
