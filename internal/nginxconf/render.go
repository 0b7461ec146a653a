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

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

//go:embed default.conf.tmpl
var defaultTemplate string

// DefaultTemplate returns the text of the embedded template, as a starting
// point for a user's own.
func DefaultTemplate() string { return defaultTemplate }

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
}

// Renderer renders Configs with one parsed template.
type Renderer struct {
	tmpl   *template.Template
	listen []string
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
	for _, a := range addrs {
		if a == "*" {
			listen = append(listen, strconv.Itoa(opts.HTTPPort))
			continue
		}
		ip, err := netip.ParseAddr(a)
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("http address %q is neither an IP address nor *", a)
		}
		listen = append(listen, netip.AddrPortFrom(ip, uint16(opts.HTTPPort)).String())
	}
	text, name := opts.Template, opts.TemplateName
	if text == "" {
		text, name = defaultTemplate, "default.conf.tmpl"
	}
	tmpl, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"quote": Quote,
	}).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	return &Renderer{tmpl: tmpl, listen: listen}, nil
}

// Render executes the template for cfg and returns the file's bytes: the
// header line with the body's hash, then the body.
func (r *Renderer) Render(cfg model.Config, services int) ([]byte, error) {
	view := View{Config: cfg, Services: services, Routes: cfg.Routes()}
	for _, s := range cfg.Servers {
		sv := ServerView{Server: s}
		for _, l := range r.listen {
			if s.Host == "" {
				l += " default_server"
			}
			sv.Listen = append(sv.Listen, l)
		}
		for _, loc := range s.Locations {
			if loc.Path == "/" {
				sv.HasRootLocation = true
			}
		}
		view.Servers = append(view.Servers, sv)
	}
	var body bytes.Buffer
	if err := r.tmpl.Execute(&body, view); err != nil {
		return nil, fmt.Errorf("execute template: %w", err)
	}
	if body.Len() > 0 && body.Bytes()[body.Len()-1] != '\n' {
		body.WriteByte('\n')
	}
	sum := sha256.Sum256(body.Bytes())
	out := make([]byte, 0, len(headerPrefix)+hex.EncodedLen(len(sum))+1+body.Len())
	out = append(out, headerPrefix...)
	out = hex.AppendEncode(out, sum[:])
	out = append(out, '\n')
	return append(out, body.Bytes()...), nil
}

const headerPrefix = "# kube-nginx-sync sha256="

// ErrNoHeader is returned by Verify for a file that kube-nginx-sync did not
// render.
var ErrNoHeader = errors.New("no kube-nginx-sync header")

// Verify checks that data is a complete rendered file: its header names the
// hash of its body. It returns that hash.
func Verify(data []byte) (string, error) {
	line, body, ok := bytes.Cut(data, []byte("\n"))
	if !ok || !bytes.HasPrefix(line, []byte(headerPrefix)) {
		return "", ErrNoHeader
	}
	want := string(line[len(headerPrefix):])
	sum := sha256.Sum256(body)
	if got := hex.EncodeToString(sum[:]); got != want {
		return "", fmt.Errorf("header names sha256 %.12s but the body has %.12s: the file is incomplete or was edited", want, got)
	}
	return want, nil
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
