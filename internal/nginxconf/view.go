package nginxconf

import (
	"cmp"
	"hash/fnv"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/luaplane"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// view is what the template is executed with for cfg.
func (r *Renderer) view(cfg model.Config, services int) View {
	view := View{Config: cfg, Services: services, Routes: cfg.Routes(), StatusListen: r.statusListen, Version: versionPlaceholder, Shape: r.shape}
	if r.shape == ShapeLua {
		view.TableFile, view.LuaModule, view.ReportPath = r.tableFile, luaplane.Module, luaplane.ReportPath
	}
	// The built-in templates each need half of the view; a user's
	// template gets all of it.
	upstreams, flat := r.tmpl != nil || r.shape == ShapeUpstream, r.tmpl != nil || r.shape == ShapeFlat
	// (The Lua shape needs neither: its endpoints are in the table file.)
	endpoints := make(map[string]string, len(cfg.Upstreams))
	names := make(map[string]string, len(cfg.Upstreams))
	picks := map[int]bool{}
	if upstreams {
		view.Upstreams = make([]UpstreamView, 0, len(cfg.Upstreams))
	}
	for _, u := range cfg.Upstreams {
		if upstreams {
			name := upstreamName(u.Name)
			names[u.Name] = name
			view.Upstreams = append(view.Upstreams, UpstreamView{Name: name, Backends: u.Backends})
		}
		if !flat {
			continue
		}
		endpoints[u.Name] = endpointsValue(u.Backends)
		if n := min(len(u.Backends), maxPick); n > 1 {
			picks[n] = true
		}
	}
	for _, n := range slices.Sorted(maps.Keys(picks)) {
		view.Picks = append(view.Picks, newPick(n))
	}
	if len(view.Picks) > 0 {
		for i := range view.Picks[len(view.Picks)-1].N {
			view.PickIndexes = append(view.PickIndexes, i)
		}
	}
	view.Servers = make([]ServerView, 0, len(cfg.Servers))
	for _, s := range cfg.Servers {
		sv := ServerView{Server: s, Routes: make([]RouteView, 0, len(s.Locations))}
		for _, l := range r.listen {
			if s.Host == "" {
				l += " default_server"
			}
			sv.Listen = append(sv.Listen, l)
		}
		var dedicated []bool
		if r.shape == ShapeLua {
			dedicated = luaplane.Dedicated(s)
			sv.Router = true
			for i, l := range s.Locations {
				if l.Path == "/" && !l.Exact && dedicated[i] {
					sv.Router = false // the root route has a location of its own
				}
			}
		}
		for i, loc := range s.Locations {
			rv := RouteView{Location: loc, Prefix: strings.TrimSuffix(loc.Path, "/"), Match: match(loc.Path, loc.Exact),
				Redirect: !loc.Exact && loc.Path != "/" && loc.Bare == model.BareRedirect}
			if !loc.Ingress.IsZero() {
				rv.FromIngress = loc.Ingress.String()
			}
			if dedicated != nil {
				rv.Dedicated = dedicated[i]
			}
			if loc.Upstream != "" {
				rv.Endpoints = endpoints[loc.Upstream]
				rv.UpstreamName = names[loc.Upstream]
			}
			if !loc.Proxy.IsZero() {
				rv.Settings = true
				rv.ReadTimeout = duration(loc.Proxy.ReadTimeout)
				rv.SendTimeout = duration(loc.Proxy.SendTimeout)
				rv.MaxBodySize = size(loc.Proxy.MaxBodySize)
			}
			if loc.Path == "/" && !loc.Exact {
				sv.HasRootLocation = true
			}
			if loc.Upstream != "" {
				sv.Proxies = true
				sv.Strips = sv.Strips || loc.StripPrefix
			}
			sv.Routes = append(sv.Routes, rv)
			if !loc.Exact && loc.Path != "/" && loc.Bare == model.BareRoute {
				// The path without its final "/" is routed too: by an
				// exact location of its own, with the same settings.
				bare := rv
				bare.Path, bare.Exact, bare.Match = rv.Prefix, true, match(rv.Prefix, true)
				sv.Routes = append(sv.Routes, bare)
			}
		}
		slices.SortFunc(sv.Routes, func(a, b RouteView) int {
			return cmp.Or(comparePaths(a.Path, b.Path), model.CompareBool(a.Exact, b.Exact))
		})
		// (A host whose plain HTTP redirects and whose HTTPS is left
		// out has no server block with its routes: its routes need no
		// map.)
		if !s.RedirectHTTPS || s.TLS != nil {
			view.Proxies = view.Proxies || sv.Proxies
			view.Strips = view.Strips || sv.Strips
		}
		if s.RedirectHTTPS {
			view.Redirects = append(view.Redirects, RedirectView{Host: s.Host, Listen: r.listen, Location: r.redirectTo})
		} else {
			view.Servers = append(view.Servers, sv)
		}
		if s.TLS != nil {
			sv.Listen = r.httpsListen
			sv.HTTPS = &HTTPSView{Certificate: r.CertificateFile(s.TLS), HSTS: s.TLS.HSTS}
			view.Servers = append(view.Servers, sv)
		}
		if s.TLS != nil || s.RedirectHTTPS {
			view.HTTPSDefault = r.httpsDefault()
		}
	}
	return view
}

// httpsDefault is the listen parameters of the default HTTPS server.
func (r *Renderer) httpsDefault() []string {
	out := make([]string, len(r.httpsListen))
	for i, l := range r.httpsListen {
		out[i] = l + " default_server"
	}
	return out
}

// upstreamName is the nginx name of the model's upstream name: eight hex
// digits of its FNV-1a hash, "_", then the name itself, so names stay
// distinct and readable. nginx compares each new upstream name (of an
// upstream block, or of a proxy_pass to a literal name) with every one
// before it; names that differ in their first characters end each of those
// comparisons at once, where a shared "namespace_svc-0000" prefix made
// nginx -t take five times longer at 10,000 routes. The model's name holds
// only [a-z0-9_-], and so does this.
func upstreamName(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	const hexDigits = "0123456789abcdef"
	sum := h.Sum32()
	b := make([]byte, 9, 9+len(name))
	for i := 7; i >= 0; i-- {
		b[i] = hexDigits[sum&0xf]
		sum >>= 4
	}
	b[8] = '_'
	return string(append(b, name...))
}

// duration writes a timeout in nginx's syntax, in its largest whole unit
// (the model's timeouts are whole seconds); "" for zero, the default.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// size writes a body size in nginx's syntax, in its largest whole unit;
// "0" (no limit) for model.NoBodyLimit, "" for zero, the default.
func size(n int64) string {
	switch {
	case n == model.NoBodyLimit:
		return "0"
	case n <= 0:
		return ""
	case n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "g"
	case n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "m"
	case n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

// endpointsValue is $kns_endpoints for a route with these backends. The
// addresses come from netip, so they hold no space, quote or "$".
func endpointsValue(backends []netip.AddrPort) string {
	if len(backends) == 0 {
		return ""
	}
	if len(backends) == 1 {
		return backends[0].String()
	}
	n := min(len(backends), maxPick)
	var b strings.Builder
	b.Grow(10 + n*22)
	b.WriteString("$kns_pick")
	b.WriteString(strconv.Itoa(n))
	for _, a := range backends[:n] {
		b.WriteByte(' ')
		b.WriteString(a.String())
	}
	return b.String()
}

// newPick splits 100% into n shares that differ by at most 0.01%.
func newPick(n int) Pick {
	p := Pick{N: n, Last: n - 1, Shares: make([]string, 0, n)}
	base, extra := 10000/n, 10000%n // in hundredths of a percent
	for i := range n - 1 {
		share := base
		if i < extra {
			share++
		}
		p.Shares = append(p.Shares, strconv.Itoa(share/100)+"."+twoDigits(share%100)+"% "+strconv.Itoa(i))
	}
	p.Shares = append(p.Shares, "* "+strconv.Itoa(n-1))
	return p
}

func twoDigits(n int) string {
	if n < 10 {
		return "0" + strconv.Itoa(n)
	}
	return strconv.Itoa(n)
}

// match is the arguments of the location of a path (RouteView.Match).
func match(path string, exact bool) string {
	switch {
	case !exact:
		return path
	case path != "/" && strings.HasSuffix(path, "/"):
		return "~ ^" + strings.ReplaceAll(path, ".", `\.`) + "$"
	}
	return "= " + path
}

// comparePaths orders location paths as nginx orders prefix locations
// (ngx_filename_cmp): bytewise, except that "/" sorts below every other
// byte, and a path sorts before the longer paths it is a prefix of.
func comparePaths(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		ca, cb := a[i], b[i]
		if ca == cb {
			continue
		}
		if ca == '/' {
			return -1
		}
		if cb == '/' {
			return 1
		}
		return int(ca) - int(cb)
	}
	return len(a) - len(b)
}
