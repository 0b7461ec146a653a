package nginxconf

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"text/template"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/confdir"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

//go:embed default.conf.tmpl
var defaultTemplate string

//go:embed flat.conf.tmpl
var flatTemplate string

//go:embed lua.conf.tmpl
var luaTemplate string

// Shape is the form of the built-in config. docs/data-plane.md compares
// them.
type Shape string

const (
	// ShapeUpstream gives each Service port with ready endpoints an
	// upstream block, with keep-alive connections, retries on another
	// endpoint and passive health checks. The default.
	ShapeUpstream Shape = "upstream"
	// ShapeFlat has no upstream block and no proxy_pass per route, so that
	// nginx parses it in about linear time, at the cost of keep-alive and
	// retries.
	ShapeFlat Shape = "flat"
	// ShapeLua holds servers only: a Lua router in each, and one upstream
	// with a Lua balancer, read routes and endpoints from the table file
	// (internal/luaplane), so that neither a new route nor an endpoint
	// change needs a reload. It needs nginx's Lua module.
	ShapeLua Shape = "lua"
)

// ParseShape validates a shape's name.
func ParseShape(s string) (Shape, error) {
	switch sh := Shape(s); sh {
	case ShapeUpstream, ShapeFlat, ShapeLua:
		return sh, nil
	}
	return "", fmt.Errorf("want %s", strings.Join(Shapes(), " or "))
}

// Shapes lists the shapes' names, the default first.
func Shapes() []string { return []string{string(ShapeUpstream), string(ShapeFlat), string(ShapeLua)} }

// DefaultTemplate returns the text of the embedded template of the default
// shape, as a starting point for a user's own.
func DefaultTemplate() string { return defaultTemplate }

// ShapeTemplate returns the text of the embedded template of a shape (the
// default shape's for an unknown one).
func ShapeTemplate(s Shape) string {
	switch s {
	case ShapeFlat:
		return flatTemplate
	case ShapeLua:
		return luaTemplate
	}
	return defaultTemplate
}

// View is what a template is executed with. Its fields are documented in the
// README for template authors.
type View struct {
	// Config is the routing model.
	Config model.Config
	// Servers are Config.Servers with what a server block needs besides.
	Servers []ServerView
	// Services counts the Services that matched the selection.
	Services int
	// Routes counts the locations of all servers.
	Routes int
	// StatusListen is the address of the local status server
	// ("127.0.0.1:8099"), or "" when there is none.
	StatusListen string
	// Version identifies this config: the status server's
	// VersionPath answers it, so a reloader can tell when nginx serves
	// this config. It is the hash that the file's header names.
	Version string
	// Shape is the shape that the options asked for; a user's template may
	// follow it or not.
	Shape Shape
	// Upstreams are the upstream blocks of the upstream shape, one per
	// entry of Config.Upstreams, in its order.
	Upstreams []UpstreamView
	// Proxies is true when some route has endpoints; Strips when one of
	// those strips its path. (Flat shape.)
	Proxies, Strips bool
	// Picks are the random draws that routes with several endpoints use,
	// one per number of endpoints, by N. (Flat shape.)
	Picks []Pick
	// PickIndexes counts from 0 to the largest Pick's N - 1. (Flat shape.)
	PickIndexes []int
	// TableFile is the path of the table file, as nginx sees it;
	// LuaModule is the Lua module's source; ReportPath is where the status
	// server answers the module's report. (Lua shape.)
	TableFile, LuaModule, ReportPath string
	// Redirects are the plain HTTP servers of the hosts whose HTTP
	// redirects to HTTPS (model.Server.RedirectHTTPS).
	Redirects []RedirectView
	// HTTPSDefault holds the listen parameters of the default HTTPS
	// server, which refuses the handshake for a name that no server has
	// ("443 ssl http2 default_server"); empty when no host asks for HTTPS.
	HTTPSDefault []string
}

// RedirectView is a server that answers plain HTTP with a redirect to
// HTTPS.
type RedirectView struct {
	Host string
	// Listen holds the parameters of its listen directives.
	Listen []string
	// Location is where it redirects, before the request's URI:
	// "https://$host", with the HTTPS port when it is not 443.
	Location string
}

// HTTPSView is what a server served over HTTPS needs besides.
type HTTPSView struct {
	// Certificate is the path, as nginx sees it, of the file that holds
	// the certificate chain and the key (for ssl_certificate and
	// ssl_certificate_key).
	Certificate string
	// HSTS is the Strict-Transport-Security header's value, or "".
	HSTS string
}

// UpstreamView is one upstream block.
type UpstreamView struct {
	// Name is the block's name in nginx: a short hash of the model's name,
	// then the model's name (see upstreamName).
	Name string
	// Backends are the model's, sorted.
	Backends []netip.AddrPort
}

// Pick is a random draw of an index in 0..N-1 ($kns_pick<N>).
type Pick struct {
	N, Last int
	// Shares are split_clients' entries, such as "33.34% 0" and "* 2".
	Shares []string
}

// maxPick is the largest number of endpoints a route balances over:
// split_clients cannot give a share smaller than 0.01%. A route with more
// ready endpoints uses the first maxPick of them (in address order).
const maxPick = 10000

// RouteView is one location with what the default template needs
// besides.
type RouteView struct {
	model.Location
	// Endpoints is the value of $kns_endpoints: the only endpoint's
	// address, or "$kns_pick<N>" followed by the N addresses; "" when the
	// route has no ready endpoint.
	Endpoints string
	// Prefix is Path without its final "/": what a route that strips its
	// path removes from the URI.
	Prefix string
	// Redirect says that the location of Prefix answers 301 to Path, as
	// nginx does for proxy_pass (model.BareRedirect; never for "/" or an
	// exact location).
	Redirect bool
	// Match is the location's arguments: Path for a prefix location,
	// "= Path" for an exact one; but "~ ^Path$" for an exact Path that
	// ends with "/" (other than "/"): nginx redirects the path without its
	// final "/" to a location of a name that ends with "/" and proxies,
	// exact or not, and an exact path matches only itself. (Path holds
	// only [A-Za-z0-9._~/-]: "." is the one character to escape.)
	Match string
	// FromIngress names the Ingress ("namespace/name") that the route
	// comes from, or is "" for a route of a Service. A route of an
	// Ingress's Prefix path (model.BareRoute) is two RouteViews: its
	// prefix location, and an exact location of its Prefix.
	FromIngress string
	// UpstreamName is the name of the upstream block (UpstreamView.Name)
	// that serves the route, or "" when it has no ready endpoint.
	UpstreamName string
	// ReadTimeout, SendTimeout and MaxBodySize are the route's own proxy
	// settings in nginx's syntax ("1h", "90s", "10m", "0"), or "" for
	// nginx's default; Settings is true when one of them is set.
	ReadTimeout, SendTimeout, MaxBodySize string
	Settings                              bool
	// Dedicated is true, in the Lua shape, for a route that nginx matches
	// in a location of its own (luaplane.Dedicated); the Lua router
	// matches the others.
	Dedicated bool
}

// ServerView is one server block.
type ServerView struct {
	model.Server
	// Listen holds the parameters of the server's listen directives, such
	// as "80 default_server" or "127.0.0.1:8080".
	Listen []string
	// HasRootLocation is true when a route claims "/" on this server; the
	// default template adds a 404 location for "/" otherwise.
	HasRootLocation bool
	// Routes are the Locations in nginx's own order of prefix locations
	// (in which "/" sorts first), so that nginx's insertion sort of them
	// takes linear time.
	Routes []RouteView
	// Proxies is true when a route of this server has endpoints; Strips
	// when one of those strips its path.
	Proxies, Strips bool
	// Router is true when the server's "/" is the Lua router's location
	// (Lua shape): unless its root route has a location of its own
	// (RouteView.Dedicated).
	Router bool
	// HTTPS is set on the server block that serves the host over HTTPS
	// (its Listen are the HTTPS port's); a host with a certificate has
	// that block besides its plain HTTP one, unless plain HTTP redirects
	// (then View.Redirects has it).
	HTTPS *HTTPSView
}

// Options configure a Renderer.
type Options struct {
	// Template is the text of a user's template; empty means the default.
	Template string
	// TemplateName names the template in error messages (its file name).
	TemplateName string
	// HTTPPort is the port every server listens on.
	HTTPPort int
	// HTTPAddresses are the addresses to listen on: IP addresses or "*";
	// empty means "*" (all IPv4 addresses).
	HTTPAddresses []string
	// StatusPort is the port of the status server on 127.0.0.1 that
	// answers the config's version at VersionPath; 0 means none.
	StatusPort int
	// Shape picks the built-in template; empty means ShapeUpstream. A
	// user's template sees it as View.Shape.
	Shape Shape
	// TableFile is the absolute path, as nginx sees it, of the Lua
	// shape's table file (needed by that shape only).
	TableFile string
	// HTTPSPort is the port that servers with a certificate listen on for
	// HTTPS, on the HTTPAddresses; 0 means no HTTPS (a Config with a
	// server that asks for it does not render).
	HTTPSPort int
	// CertificateDir is the absolute path, as nginx sees it, of the folder
	// that holds the certificate files (confdir.CertificateFile); needed
	// with HTTPSPort.
	CertificateDir string
}

// CertificateFile is the path, as nginx sees it, of the file of a
// certificate that the config names.
func (r *Renderer) CertificateFile(t *model.TLS) string {
	return r.certificateDir + "/" + confdir.CertificateFile(t.Hash)
}

// VersionPath is where the status server answers the config's version.
const VersionPath = "/.kube-nginx-sync/version"

// Renderer renders Configs with one parsed template.
type Renderer struct {
	// tmpl is the user's template; nil means the built-in one of shape,
	// which writeDefault writes without text/template's reflection, or
	// builtin executes for a shape without a Go writer.
	tmpl         *template.Template
	builtin      *template.Template
	shape        Shape
	listen       []string
	statusListen string
	tableFile    string
	// httpsListen are the listen parameters of the servers served over
	// HTTPS; nil without an HTTPS port.
	httpsListen []string
	// redirectTo is where plain HTTP redirects, before the URI.
	redirectTo     string
	certificateDir string
}

// EndpointsInConfig reports whether the config holds endpoints: false
// for the built-in lua shape, whose endpoints are all in the table file, so
// that new endpoints change the table alone.
func (r *Renderer) EndpointsInConfig() bool { return r.tmpl != nil || r.shape != ShapeLua }

// validTableFile: an absolute path that can be written in a Lua string
// in nginx's config as it is (and so, as it is, in a directive).
func validTableFile(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > 1024 {
		return false
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("/._-", c)) {
			return false
		}
	}
	return true
}

// NewRenderer parses the template and checks the listen options.
func NewRenderer(opts Options) (*Renderer, error) {
	if opts.HTTPPort < 1 || opts.HTTPPort > 65535 {
		return nil, fmt.Errorf("http port %d is out of range 1-65535", opts.HTTPPort)
	}
	addrs := opts.HTTPAddresses
	if len(addrs) == 0 {
		addrs = []string{"*"}
	}
	listen := make([]string, 0, len(addrs))
	var httpsListen []string
	for _, a := range addrs {
		if a == "*" {
			listen = append(listen, strconv.Itoa(opts.HTTPPort))
			if opts.HTTPSPort != 0 {
				httpsListen = append(httpsListen, strconv.Itoa(opts.HTTPSPort)+" ssl http2")
			}
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("http address %q is neither an IP address nor *", a)
		}
		listen = append(listen, netip.AddrPortFrom(ip, uint16(opts.HTTPPort)).String())
		if opts.HTTPSPort != 0 {
			httpsListen = append(httpsListen, netip.AddrPortFrom(ip, uint16(opts.HTTPSPort)).String()+" ssl http2")
		}
	}
	var statusListen string
	switch {
	case opts.StatusPort == 0:
	case opts.StatusPort < 0 || opts.StatusPort > 65535:
		return nil, fmt.Errorf("status port %d is out of range 1-65535", opts.StatusPort)
	case opts.StatusPort == opts.HTTPPort:
		return nil, fmt.Errorf("status port %d is also the http port", opts.StatusPort)
	default:
		statusListen = "127.0.0.1:" + strconv.Itoa(opts.StatusPort)
	}
	shape := opts.Shape
	if shape == "" {
		shape = ShapeUpstream
	}
	if _, err := ParseShape(string(shape)); err != nil {
		return nil, fmt.Errorf("shape %q: %w", shape, err)
	}
	switch {
	case opts.HTTPSPort == 0:
	case opts.HTTPSPort < 0 || opts.HTTPSPort > 65535:
		return nil, fmt.Errorf("https port %d is out of range 1-65535", opts.HTTPSPort)
	case opts.HTTPSPort == opts.HTTPPort:
		return nil, fmt.Errorf("https port %d is also the http port", opts.HTTPSPort)
	case opts.HTTPSPort == opts.StatusPort:
		return nil, fmt.Errorf("https port %d is also the status port", opts.HTTPSPort)
	case !validTableFile(opts.CertificateDir):
		return nil, fmt.Errorf("certificate folder %q: HTTPS needs an absolute path of letters, digits, \"/\", \".\", \"_\" and \"-\"", opts.CertificateDir)
	}
	r := &Renderer{shape: shape, listen: listen, statusListen: statusListen, httpsListen: httpsListen,
		certificateDir: strings.TrimSuffix(opts.CertificateDir, "/")}
	if opts.HTTPSPort != 0 {
		r.redirectTo = "https://$host"
		if opts.HTTPSPort != 443 {
			r.redirectTo += ":" + strconv.Itoa(opts.HTTPSPort)
		}
	}
	if shape == ShapeLua {
		if !validTableFile(opts.TableFile) {
			return nil, fmt.Errorf("table file %q: the lua shape needs an absolute path of letters, digits, \"/\", \".\", \"_\" and \"-\"", opts.TableFile)
		}
		r.tableFile = opts.TableFile
		if opts.Template == "" {
			// No Go writer for this shape: its template is executed.
			r.builtin, _ = parseTemplate("lua.conf.tmpl", luaTemplate)
		}
	}
	if opts.Template != "" {
		tmpl, err := parseTemplate(opts.TemplateName, opts.Template)
		if err != nil {
			return nil, err
		}
		r.tmpl = tmpl
	}
	return r, nil
}

func parseTemplate(name, text string) (*template.Template, error) {
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"quote": Quote,
	}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	return tmpl, nil
}

// File is a rendered config file.
type File struct {
	// Data is the file's bytes: the header line, then the body.
	Data []byte
	// Version is the version that the header names.
	Version string
}

// Render executes the template for cfg and returns the file's bytes: the
// header line, then the body. RenderFile also returns its version.
func (r *Renderer) Render(cfg model.Config, services int) ([]byte, error) {
	f, err := r.RenderFile(cfg, services)
	return f.Data, err
}

// RenderFile executes the template for cfg and returns the file.
//
// The header names the config's version, which is also the value the
// status server answers. The version is the SHA-256 of the body as it is
// rendered with a fixed placeholder for the version itself, which is then
// replaced; so the file stays checkable (Verify) although it contains its
// own hash.
func (r *Renderer) RenderFile(cfg model.Config, services int) (File, error) {
	if r.httpsListen == nil {
		for _, s := range cfg.Servers {
			if s.TLS != nil || s.RedirectHTTPS {
				return File{}, fmt.Errorf("host %s asks for HTTPS, and no HTTPS port is set", s.Host)
			}
		}
	}
	view := r.view(cfg, services)
	var body bytes.Buffer
	body.Grow(1024 + 256*view.Routes)
	switch {
	case r.tmpl != nil:
		if err := r.tmpl.Execute(&body, view); err != nil {
			return File{}, fmt.Errorf("execute template: %w", err)
		}
	case r.builtin != nil:
		if err := r.builtin.Execute(&body, view); err != nil {
			return File{}, fmt.Errorf("execute the built-in template: %w", err)
		}
	default:
		writeDefault(&body, view)
	}
	if body.Len() > 0 && body.Bytes()[body.Len()-1] != '\n' {
		body.WriteByte('\n')
	}
	sum := sha256.Sum256(body.Bytes())
	version := hex.EncodeToString(sum[:])
	header := Header{Version: version, Status: r.statusListen}
	out := make([]byte, 0, body.Len()+200)
	out = append(out, header.String()...)
	out = append(out, bytes.ReplaceAll(body.Bytes(), []byte(versionPlaceholder), []byte(version))...)
	return File{Data: out, Version: version}, nil
}

// versionPlaceholder stands for the version while the body is hashed. It
// is as long as a version, so replacing it keeps every offset.
const versionPlaceholder = "kube-nginx-sync-config-version-placeholder-000000000000000000000"

const headerPrefix = "# kube-nginx-sync sha256="

// Header is what the first line of a rendered file says.
type Header struct {
	// Version is the config's version: the hash of its body with the
	// version placeholder in place of the version.
	Version string
	// Status is the address of the status server that answers Version at
	// VersionPath, or "" when the config has none.
	Status string
}

// String is the header line, newline included.
func (h Header) String() string {
	s := headerPrefix + h.Version
	if h.Status != "" {
		s += " status=" + h.Status
	}
	return s + "\n"
}

// ParseHeader parses a header line (without its newline). It does not
// check the body: use Verify for that.
func ParseHeader(line string) (Header, error) {
	rest, found := strings.CutPrefix(line, headerPrefix)
	if !found {
		return Header{}, ErrNoHeader
	}
	fields := strings.Fields(rest)
	if len(fields) == 0 || len(fields[0]) != len(versionPlaceholder) {
		return Header{}, fmt.Errorf("malformed kube-nginx-sync header %q", line)
	}
	h := Header{Version: fields[0]}
	for _, f := range fields[1:] {
		if v, ok := strings.CutPrefix(f, "status="); ok {
			h.Status = v
		}
	}
	return h, nil
}

// ErrNoHeader is returned by Verify for a file that kube-nginx-sync did not
// render.
var ErrNoHeader = errors.New("no kube-nginx-sync header")

// Verify checks that data is a complete rendered file, whose header names
// the version its body hashes to, and returns the header.
func Verify(data []byte) (Header, error) {
	line, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok {
		return Header{}, ErrNoHeader
	}
	h, err := ParseHeader(string(line))
	if err != nil {
		return Header{}, err
	}
	sum := sha256.Sum256(bytes.ReplaceAll(body, []byte(h.Version), []byte(versionPlaceholder)))
	if got := hex.EncodeToString(sum[:]); got != h.Version {
		return Header{}, fmt.Errorf("header names version %.12s but the body hashes to %.12s: the file is incomplete or was edited", h.Version, got)
	}
	return h, nil
}

// Quote returns s as an nginx double-quoted string. It refuses what nginx
// cannot quote safely: "$" (nginx would expand a variable and has no escape
// for it) and control characters.
func Quote(s string) (string, error) {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '$':
			return "", fmt.Errorf("quote %q: nginx cannot quote $", s)
		case r < 0x20 || r == 0x7f:
			return "", fmt.Errorf("quote %q: control character %U", s, r)
		case r == '"' || r == '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String(), nil
}
