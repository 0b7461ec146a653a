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
// The table is written as an index and its parts (Files), so that an
// endpoint change costs nginx's workers the parse of one small part. The
// grammar is held by three pieces of code: Encode writes it, DecodeIndex
// and DecodePart are a Go port of the Lua reader (so the grammar is fuzzed
// in Go), and kns.lua's parse_index and parse_part read it in nginx
// (TestLuaReader runs them against each other). Hosts, paths, keys and
// addresses are validated on the way in (with the model's own parsers):
// nothing else can be written.
package luaplane

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/atomicfile"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// Module is the Lua module's source, which the config loads.
//
//go:embed kns.lua
var Module string

// FileName is the table file's name (its index) in the config folder:
// hidden, so that nginx's include and the reloader's fingerprint ignore it,
// as they do its parts (PartPath).
const FileName = confdir.HiddenPrefix + "kube-nginx-sync-table"

// header starts the table file (the index); the version follows it.
const header = "kube-nginx-sync table 2 "

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
	// "/"); or, for an exact route, its one path.
	Path string
	// Key names the route's Service port (see Key).
	Key string
	// Strip replaces Path by "/" before the request reaches the backend.
	Strip bool
	// Exact matches the one path Path (model.Location.Exact); it never
	// strips.
	Exact bool
	// Bare routes Path without its final "/" like Path, instead of
	// redirecting it (model.BareRoute).
	Bare bool
}

// flags writes a route's flags field: "-", or the letters of its flags,
// "s" (strip), "b" (bare path routed), "e" (exact).
func (r Route) flags() string {
	switch {
	case r.Exact:
		return "e"
	case r.Strip && r.Bare:
		return "sb"
	case r.Strip:
		return "s"
	case r.Bare:
		return "b"
	}
	return "-"
}

// routeFlags are the flags fields that a route line may have: an exact
// route neither strips nor has a bare path.
var routeFlags = map[string]Route{
	"-":  {},
	"s":  {Strip: true},
	"b":  {Bare: true},
	"sb": {Strip: true, Bare: true},
	"e":  {Exact: true},
}

// id names a route by what must be distinct in a table: its server, and
// its path and whether it is exact.
func (r Route) id() string {
	if r.Exact {
		return r.Server + " =" + r.Path
	}
	return r.Server + " " + r.Path
}

// Endpoints are one Service port's ready endpoints.
type Endpoints struct {
	Key   string
	Addrs []netip.AddrPort
}

// Key is the table's name of a Service port, which the config's dedicated
// locations name in $kns_route: "namespace/name:port".
func Key(p model.ServicePort) string { return p.String() }

// maxKey bounds a key's length, as kns.lua's parse does.
const maxKey = 200

// ValidKey reports whether key may be written: kns.lua's grammar of a key,
// [a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*:[a-z0-9][a-z0-9-]*, at most maxKey
// bytes. (By hand: the table's writer checks every key of every change.)
func ValidKey(key string) bool {
	if len(key) > maxKey {
		return false
	}
	// part is the field being read (0: namespace, 1: name, 2: port); n
	// its length so far.
	part, n := 0, 0
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9':
			n++
		case c == '-' && n > 0:
			n++
		case c == '/' && part == 0 && n > 0, c == ':' && part == 1 && n > 0:
			part, n = part+1, 0
		default:
			return false
		}
	}
	return part == 2 && n > 0
}

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

// validExactPath: a path the model accepts as an exact path: canonical but
// for its final "/", which it may lack.
func validExactPath(p string) bool {
	c, err := model.ParsePath(p)
	return err == nil && (c == p || c == p+"/")
}

// validRoutePath: the path of route r.
func validRoutePath(r Route) bool {
	if r.Exact {
		return validExactPath(r.Path)
	}
	return validPath(r.Path)
}

// Dedicated says which of a server's locations nginx matches in a
// location of its own (true) rather than the Lua router: a route with
// proxy settings of its own (nginx applies them per location), and every
// route under the path of such a prefix route, so that nginx's
// longest-prefix match among its locations picks the same route as the
// router would. When the root route "/" is dedicated, all are. (An exact
// route with settings has nothing under it.)
func Dedicated(s model.Server) []bool {
	out := make([]bool, len(s.Locations))
	var prefixes []string
	for _, l := range s.Locations {
		if !l.Proxy.IsZero() && !l.Exact {
			prefixes = append(prefixes, l.Path)
		}
	}
	for i, l := range s.Locations {
		out[i] = (l.Exact && !l.Proxy.IsZero()) || slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(l.Path, p) })
	}
	return out
}

// Build returns the table for cfg.
func Build(cfg model.Config) Table {
	backends := make(map[string][]netip.AddrPort, len(cfg.Upstreams))
	for _, u := range cfg.Upstreams {
		backends[u.Name] = u.Backends
	}
	t := Table{Routes: make([]Route, 0, cfg.Routes())}
	seen := make(map[model.ServicePort]bool, cfg.Routes())
	for _, s := range cfg.Servers {
		server := cmp.Or(s.Host, DefaultServer)
		for _, l := range s.Locations {
			key := Key(l.Service)
			t.Routes = append(t.Routes, Route{Server: server, Path: l.Path, Key: key, Strip: l.StripPrefix,
				Exact: l.Exact, Bare: !l.Exact && l.Bare == model.BareRoute})
			if !seen[l.Service] {
				seen[l.Service] = true
				t.Endpoints = append(t.Endpoints, Endpoints{Key: key, Addrs: backends[l.Upstream]})
			}
		}
	}
	return t
}

// Files are a table as it is written: the index, at the table file's path,
// and its parts, each in a file of its own beside it (PartPath). Each
// Service port's route and endpoints lines go to the part its key hashes
// to, so an endpoint change rewrites one small part and the index, and
// nginx's workers parse only that part again: at 10,000 routes a whole
// table takes a worker about 0.1 s to parse, a part about 1 ms.
type Files struct {
	// Index is the table file: its header names the table's version,
	// then one line for each part.
	Index []byte
	// Version is the table's version: the SHA-256 of the index's part
	// lines, which name the parts by the SHA-256 of their content.
	Version string
	// Parts are the parts, in the index's order.
	Parts []Part
}

// Part is one part file of a table.
type Part struct {
	// Hash names the part (PartPath): the SHA-256 of Data, in hex.
	Hash string
	Data []byte
}

// partHeader is the first line of every part.
const partHeader = "kube-nginx-sync part 2\n"

const (
	// partKeys is the number of Service ports a part holds, about.
	partKeys = 128
	// maxParts bounds the number of parts: past 32,768 Service ports,
	// parts grow instead.
	maxParts = 256
)

// partCount is the number of parts of a table of n keys: a power of two,
// so that a key's part changes only when the count does.
func partCount(n int) int {
	c := 1
	for c < maxParts && c*partKeys < n {
		c *= 2
	}
	return c
}

// partOf is the part of key among count parts.
func partOf(key string, count int) int {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() & uint32(count-1))
}

// PartPath is the file of the part named hash of the table file at path.
func PartPath(path, hash string) string { return path + "." + hash }

// partName matches the name of a part file, or of one's temporary file.
var partName = regexp.MustCompile(`^` + regexp.QuoteMeta(FileName) + `\.[0-9a-f]{32}(\.tmp-.*)?$`)

// Encode returns the files of t. Routes are written by server and path,
// endpoints by key, sorted and without duplicates, each in its key's part.
func Encode(t Table) (Files, error) {
	var e Encoder
	return e.Encode(t)
}

// Encoder encodes tables, and keeps the last one by part, so that new
// endpoints of one Service port re-encode its part alone (SetEndpoints):
// at 10,000 routes, about 80 lines instead of 20,000. The zero value is
// ready to use; an Encoder is not safe for concurrent use.
type Encoder struct {
	// parts are the last table's parts, nil before a table was encoded
	// and after an error.
	parts []encoderPart
}

// encoderPart is one part of the last table: its lines, sorted, and its
// file (empty for a part without lines, which the index leaves out).
type encoderPart struct {
	routes []Route
	eps    []Endpoints
	file   Part
}

// Encode returns the files of t, as the function Encode does, and keeps t
// for SetEndpoints.
func (e *Encoder) Encode(t Table) (Files, error) {
	e.parts = nil
	routes := slices.Clone(t.Routes)
	slices.SortFunc(routes, func(a, b Route) int {
		return cmp.Or(strings.Compare(a.Server, b.Server), strings.Compare(a.Path, b.Path), model.CompareBool(a.Exact, b.Exact))
	})
	eps := slices.Clone(t.Endpoints)
	slices.SortFunc(eps, func(a, b Endpoints) int { return strings.Compare(a.Key, b.Key) })
	keys := make(map[string]bool, len(eps))
	for _, r := range routes {
		keys[r.Key] = true
	}
	for _, e := range eps {
		keys[e.Key] = true
	}
	parts := make([]encoderPart, partCount(len(keys)))
	for i, r := range routes {
		switch {
		case !validServer(r.Server):
			return Files{}, fmt.Errorf("table: invalid server %q", r.Server)
		case !validRoutePath(r):
			return Files{}, fmt.Errorf("table: invalid path %q", r.Path)
		case !ValidKey(r.Key):
			return Files{}, fmt.Errorf("table: invalid key %q", r.Key)
		case r.Exact && (r.Strip || r.Bare):
			return Files{}, fmt.Errorf("table: exact route %s%s strips or has a bare path", r.Server, r.Path)
		case i > 0 && routes[i-1].id() == r.id():
			return Files{}, fmt.Errorf("table: route %s twice", r.id())
		}
		p := &parts[partOf(r.Key, len(parts))]
		p.routes = append(p.routes, r)
	}
	for i, ep := range eps {
		if !ValidKey(ep.Key) {
			return Files{}, fmt.Errorf("table: invalid key %q", ep.Key)
		}
		if i > 0 && eps[i-1].Key == ep.Key {
			return Files{}, fmt.Errorf("table: endpoints of %s twice", ep.Key)
		}
		addrs, err := endpointList(ep)
		if err != nil {
			return Files{}, err
		}
		p := &parts[partOf(ep.Key, len(parts))]
		p.eps = append(p.eps, Endpoints{Key: ep.Key, Addrs: addrs})
	}
	for n := range parts {
		parts[n].encode()
	}
	e.parts = parts
	return e.files(), nil
}

// SetEndpoints replaces the endpoints of key in the last table encoded,
// and returns the new files. ok is false, and nothing changes, when that
// table has no endpoints line for key (its Service port is not routed) or
// when there is no last table.
func (e *Encoder) SetEndpoints(key string, addrs []netip.AddrPort) (f Files, ok bool, err error) {
	if e.parts == nil {
		return Files{}, false, nil
	}
	p := &e.parts[partOf(key, len(e.parts))]
	i, found := slices.BinarySearchFunc(p.eps, key, func(ep Endpoints, k string) int { return strings.Compare(ep.Key, k) })
	if !found {
		return Files{}, false, nil
	}
	list, err := endpointList(Endpoints{Key: key, Addrs: addrs})
	if err != nil {
		return Files{}, false, err
	}
	p.eps[i].Addrs = list
	p.encode()
	return e.files(), true, nil
}

// endpointList returns e's addresses sorted and without duplicates, or an
// error for one that may not be written.
func endpointList(e Endpoints) ([]netip.AddrPort, error) {
	addrs := slices.Clone(e.Addrs)
	slices.SortFunc(addrs, func(a, b netip.AddrPort) int { return a.Compare(b) })
	addrs = slices.Compact(addrs)
	for _, a := range addrs {
		if !validEndpoint(a) {
			return nil, fmt.Errorf("table: invalid endpoint %v of %s", a, e.Key)
		}
	}
	return addrs, nil
}

// encode writes the part's file from its lines.
func (p *encoderPart) encode() {
	lines := len(p.routes) + len(p.eps)
	if lines == 0 {
		p.file = Part{}
		return
	}
	var b bytes.Buffer
	b.Grow(len(partHeader) + 140*lines/2 + 16)
	b.WriteString(partHeader)
	for _, r := range p.routes {
		b.WriteString("route ")
		b.WriteString(r.Server)
		b.WriteByte(' ')
		b.WriteString(r.Path)
		b.WriteByte(' ')
		b.WriteString(r.Key)
		b.WriteByte(' ')
		b.WriteString(r.flags())
		b.WriteByte('\n')
	}
	for _, e := range p.eps {
		b.WriteString("endpoints ")
		b.WriteString(e.Key)
		for _, a := range e.Addrs {
			b.WriteByte(' ')
			b.WriteString(a.String())
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "end %d\n", lines)
	p.file = Part{Hash: sha(b.Bytes()), Data: b.Bytes()}
}

// files returns the files of the parts as they are.
func (e *Encoder) files() Files {
	var f Files
	var index bytes.Buffer
	for _, p := range e.parts {
		if p.file.Hash == "" {
			continue
		}
		f.Parts = append(f.Parts, p.file)
		index.WriteString("part ")
		index.WriteString(p.file.Hash)
		index.WriteByte('\n')
	}
	fmt.Fprintf(&index, "end %d\n", len(f.Parts))
	f.Version = sha(index.Bytes())
	f.Index = append(append(append([]byte(header), f.Version...), '\n'), index.Bytes()...)
	return f
}

// sha is the hex of the first 16 bytes of data's SHA-256.
func sha(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16])
}

// Write writes f as the table file at path: the parts it lacks, then the
// index, each atomically, and removes the parts that neither this index
// nor the one it replaced names (a worker may still be reading those).
// changed says whether the index was written.
func Write(path string, f Files) (changed bool, err error) {
	keep := make(map[string]bool)
	if old, err := os.ReadFile(path); err == nil {
		if hashes, _, err := DecodeIndex(old); err == nil {
			for _, h := range hashes {
				keep[filepath.Base(PartPath(path, h))] = true
			}
		}
	}
	for _, p := range f.Parts {
		keep[filepath.Base(PartPath(path, p.Hash))] = true
		// A part's name is its content's hash: one that exists is
		// complete (written by rename) and the same.
		if _, err := os.Stat(PartPath(path, p.Hash)); err == nil {
			continue
		}
		if _, err := atomicfile.Write(PartPath(path, p.Hash), p.Data, noSync); err != nil {
			return false, fmt.Errorf("table part: %w", err)
		}
	}
	if changed, err = atomicfile.Write(path, f.Index, noSync); err != nil || !changed {
		return changed, err
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		return changed, fmt.Errorf("remove old table parts: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if name := e.Name(); partName.MatchString(name) && !keep[name] {
			if err := os.Remove(filepath.Join(filepath.Dir(path), name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return changed, fmt.Errorf("remove old table parts: %w", err)
	}
	return changed, nil
}

// noSync writes the table's files without fsyncs: the generator writes the
// table at start, nginx's workers refuse an incomplete file (each ends with
// a line that counts its lines), and an endpoint change must not wait for
// the disk.
var noSync = atomicfile.Options{NoSync: true}

// DecodeIndex parses a table file's index as kns.lua's parse_index does,
// and returns its parts' hashes and the table's version.
func DecodeIndex(data []byte) (hashes []string, version string, err error) {
	lines, err := splitLines(data, header)
	if err != nil {
		return nil, "", err
	}
	version = strings.TrimPrefix(lines[0], header)
	if !isHex(version, 1, 64) {
		return nil, "", errors.New("bad header")
	}
	seen := map[string]bool{}
	for i, line := range lines[1 : len(lines)-1] {
		hash, ok := strings.CutPrefix(line, "part ")
		if !ok || !isHex(hash, 32, 32) || seen[hash] {
			return nil, "", fmt.Errorf("line %d: bad or repeated part", i+2)
		}
		seen[hash] = true
		hashes = append(hashes, hash)
	}
	if err := checkEnd(lines, len(hashes)); err != nil {
		return nil, "", err
	}
	return hashes, version, nil
}

// DecodePart parses one part file as kns.lua's parse_part does (and checks
// hosts and paths as strictly as Encode).
func DecodePart(data []byte) (Table, error) {
	lines, err := splitLines(data, partHeader)
	if err != nil {
		return Table{}, err
	}
	if lines[0]+"\n" != partHeader {
		return Table{}, errors.New("bad header")
	}
	var t Table
	routes, keys := map[string]bool{}, map[string]bool{}
	for i, line := range lines[1 : len(lines)-1] {
		n := i + 2
		fields := strings.Split(line, " ")
		switch fields[0] {
		case "route":
			if len(fields) != 5 {
				return Table{}, fmt.Errorf("line %d: bad route", n)
			}
			r, ok := routeFlags[fields[4]]
			r.Server, r.Path, r.Key = fields[1], fields[2], fields[3]
			if !ok || !validServer(r.Server) || !validRoutePath(r) || !ValidKey(r.Key) || routes[r.id()] {
				return Table{}, fmt.Errorf("line %d: bad or repeated route", n)
			}
			routes[r.id()] = true
			t.Routes = append(t.Routes, r)
		case "endpoints":
			if len(fields) < 2 || !ValidKey(fields[1]) || keys[fields[1]] {
				return Table{}, fmt.Errorf("line %d: bad or repeated key", n)
			}
			keys[fields[1]] = true
			e := Endpoints{Key: fields[1]}
			for _, f := range fields[2:] {
				a, ok := parseAddress(f)
				if !ok {
					return Table{}, fmt.Errorf("line %d: bad address or spacing", n)
				}
				e.Addrs = append(e.Addrs, a)
			}
			t.Endpoints = append(t.Endpoints, e)
		default:
			return Table{}, fmt.Errorf("line %d: unknown line", n)
		}
	}
	if err := checkEnd(lines, len(t.Routes)+len(t.Endpoints)); err != nil {
		return Table{}, err
	}
	return t, nil
}

// splitLines splits a file that starts with header and ends with "\n" and
// an end line into its lines.
func splitLines(data []byte, header string) ([]string, error) {
	text := string(data)
	if !strings.HasPrefix(text, header[:len(header)-1]) {
		return nil, errors.New("no header")
	}
	if !strings.HasSuffix(text, "\n") {
		return nil, errors.New("text after the end line")
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-1], "end ") {
		return nil, errors.New("no end line: the file is incomplete")
	}
	return lines, nil
}

// checkEnd checks that the end line, the last of lines, counts n lines.
func checkEnd(lines []string, n int) error {
	count := strings.TrimPrefix(lines[len(lines)-1], "end ")
	if c, err := strconv.Atoi(count); err != nil || c != n || strconv.Itoa(c) != count {
		return fmt.Errorf("end line counts %q lines, the file has %d", count, n)
	}
	return nil
}

// isHex reports whether s is lower-case hex of least to most digits.
func isHex(s string, least, most int) bool {
	return len(s) >= least && len(s) <= most && strings.Trim(s, "0123456789abcdef") == ""
}

// Read reads the table file at path and its parts, as nginx's workers do:
// a part named twice, or a route or key in two parts, is refused.
func Read(path string) (Table, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Table{}, "", err
	}
	hashes, version, err := DecodeIndex(data)
	if err != nil {
		return Table{}, "", fmt.Errorf("table file %s: %w", path, err)
	}
	var t Table
	routes, keys := map[string]bool{}, map[string]bool{}
	for _, h := range hashes {
		data, err := os.ReadFile(PartPath(path, h))
		if err != nil {
			return Table{}, "", fmt.Errorf("table part: %w", err)
		}
		p, err := DecodePart(data)
		if err != nil {
			return Table{}, "", fmt.Errorf("table part %s: %w", PartPath(path, h), err)
		}
		for _, r := range p.Routes {
			if routes[r.id()] {
				return Table{}, "", fmt.Errorf("table part %s: route %s is in another part too", h, r.id())
			}
			routes[r.id()] = true
		}
		for _, e := range p.Endpoints {
			if keys[e.Key] {
				return Table{}, "", fmt.Errorf("table part %s: endpoints of %s are in another part too", h, e.Key)
			}
			keys[e.Key] = true
		}
		t.Routes = append(t.Routes, p.Routes...)
		t.Endpoints = append(t.Endpoints, p.Endpoints...)
	}
	return t, version, nil
}

// validEndpoint: an address nginx can connect to, written in a form the Lua
// reader takes (no zone, no IPv4-mapped IPv6 in dotted form).
func validEndpoint(ep netip.AddrPort) bool {
	a := ep.Addr()
	return ep.IsValid() && ep.Port() != 0 && a.Zone() == "" && !a.IsUnspecified() && !a.Is4In6()
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
