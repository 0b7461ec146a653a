package nginxconf

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
)

// view is what the template is executed with for cfg.
func (r *Renderer) view(cfg model.Config, services int) View {
	view := View{Config: cfg, Services: services, Routes: cfg.Routes(), StatusListen: r.statusListen, Version: versionPlaceholder}
	endpoints := make(map[string]string, len(cfg.Upstreams))
	picks := map[int]bool{}
	for _, u := range cfg.Upstreams {
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
		for _, loc := range s.Locations {
			rv := RouteView{Location: loc, Prefix: strings.TrimSuffix(loc.Path, "/")}
			if loc.Upstream != "" {
				rv.Endpoints = endpoints[loc.Upstream]
			}
			if loc.Path == "/" {
				sv.HasRootLocation = true
			}
			if rv.Endpoints != "" {
				sv.Proxies = true
				sv.Strips = sv.Strips || loc.StripPrefix
			}
			sv.Routes = append(sv.Routes, rv)
		}
		slices.SortFunc(sv.Routes, func(a, b RouteView) int { return comparePaths(a.Path, b.Path) })
		view.Proxies = view.Proxies || sv.Proxies
		view.Strips = view.Strips || sv.Strips
		view.Servers = append(view.Servers, sv)
	}
	return view
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
