// Package luaplane is kube-nginx-sync's Lua data plane: the endpoints file
// that the generator writes beside nginx's config, and the Lua module
// (kns.lua, embedded) with which nginx's workers read that file and balance
// requests over the endpoints, so that an endpoint change needs no reload.
//
// The file's grammar is held by three pieces of code: Encode writes it,
// Decode is a Go port of the Lua reader (so the grammar is fuzzed in Go),
// and kns.lua's parse reads it in nginx. Keys and addresses are validated
// on the way in: nothing else can be written.
package luaplane

import (
	"bytes"
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

// FileName is the endpoints file's name in the config folder: hidden, so
// that nginx's include and the reloader's fingerprint ignore it.
const FileName = confdir.HiddenPrefix + "kube-nginx-sync-endpoints"

// header starts the file; the version follows it.
const header = "kube-nginx-sync endpoints 1 "

// Route is one route key with its ready endpoints.
type Route struct {
	// Key names a Service port, "namespace/name:port".
	Key string
	// Endpoints may be empty: the route then answers 503.
	Endpoints []netip.AddrPort
}

// keyPattern is a key's grammar, as kns.lua's parse has it.
var keyPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9-]*$`)

// maxKey bounds a key's length, as kns.lua's parse does.
const maxKey = 200

// ValidKey reports whether key may be written.
func ValidKey(key string) bool { return len(key) <= maxKey && keyPattern.MatchString(key) }

// Encode returns the file for routes, in key order, and its version: the
// SHA-256 of the lines after the header, which the header names. Endpoints
// are written sorted and without duplicates.
func Encode(routes []Route) (data []byte, version string, err error) {
	sorted := slices.Clone(routes)
	slices.SortFunc(sorted, func(a, b Route) int { return strings.Compare(a.Key, b.Key) })
	var body bytes.Buffer
	body.Grow(64 * len(routes))
	for i, r := range sorted {
		if !ValidKey(r.Key) {
			return nil, "", fmt.Errorf("endpoints file: invalid key %q", r.Key)
		}
		if i > 0 && sorted[i-1].Key == r.Key {
			return nil, "", fmt.Errorf("endpoints file: key %q twice", r.Key)
		}
		body.WriteString(r.Key)
		eps := slices.Clone(r.Endpoints)
		slices.SortFunc(eps, func(a, b netip.AddrPort) int { return a.Compare(b) })
		eps = slices.Compact(eps)
		for _, ep := range eps {
			if !validEndpoint(ep) {
				return nil, "", fmt.Errorf("endpoints file: invalid endpoint %v for %s", ep, r.Key)
			}
			body.WriteByte(' ')
			body.WriteString(ep.String())
		}
		body.WriteByte('\n')
	}
	fmt.Fprintf(&body, "end %d\n", len(sorted))
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

// Decode parses the file as kns.lua's parse does, and returns its routes
// (in key order) and version.
func Decode(data []byte) ([]Route, string, error) {
	text := string(data)
	if !strings.HasPrefix(text, header) {
		return nil, "", errors.New("no header")
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, "", errors.New("text after the end line")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	version := strings.TrimPrefix(lines[0], header)
	if version == "" || strings.Trim(version, "0123456789abcdefABCDEF") != "" {
		return nil, "", errors.New("bad header")
	}
	var routes []Route
	ended := false
	for i, line := range lines[1:] {
		n := i + 2
		if ended {
			return nil, "", fmt.Errorf("line %d: text after the end line", n)
		}
		if count, ok := strings.CutPrefix(line, "end "); ok {
			if c, err := strconv.Atoi(count); err != nil || c != len(routes) || strconv.Itoa(c) != count {
				return nil, "", fmt.Errorf("end line counts %s keys, the file has %d", count, len(routes))
			}
			ended = true
			continue
		}
		fields := strings.Split(line, " ")
		key := fields[0]
		if !ValidKey(key) || slices.ContainsFunc(routes, func(r Route) bool { return r.Key == key }) {
			return nil, "", fmt.Errorf("line %d: bad or repeated key", n)
		}
		r := Route{Key: key}
		for _, f := range fields[1:] {
			ep, ok := parseAddress(f)
			if !ok {
				return nil, "", fmt.Errorf("line %d: bad address or spacing", n)
			}
			r.Endpoints = append(r.Endpoints, ep)
		}
		routes = append(routes, r)
	}
	if !ended {
		return nil, "", errors.New("no end line: the file is incomplete")
	}
	return routes, version, nil
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
		if err != nil || !a.Is6() {
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
	return netip.AddrPortFrom(addr, uint16(p)), true
}

// Routes returns the ready endpoints of each Service port that cfg routes,
// in the file's form: a Service port that several locations route (on
// several hosts) is one key; one with no ready endpoint has none.
func Routes(cfg model.Config) []Route {
	backends := make(map[string][]netip.AddrPort, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		backends[u.Name] = u.Backends
	}
	var out []Route
	seen := make(map[model.ServicePort]bool, cfg.Routes())
	for _, s := range cfg.Servers {
		for _, l := range s.Locations {
			if seen[l.Service] {
				continue
			}
			seen[l.Service] = true
			out = append(out, Route{Key: Key(l.Service), Endpoints: backends[l.Upstream]})
		}
	}
	return out
}

// Key is the route key of a Service port, which the config's locations
// name in $kns_route.
func Key(p model.ServicePort) string { return p.String() }
