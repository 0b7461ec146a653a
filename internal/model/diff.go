package model

import (
	"maps"
	"slices"
)

// RouteChanges lists the routes that differ between two Configs, each named
// "<host><path>" (the default server's routes start with "/"), or
// "<host>=<path>" for an exact path.
type RouteChanges struct {
	Added   []string
	Removed []string
	// Updated routes kept their host and path but changed their Service,
	// upstream mode, prefix stripping, proxy settings or backends.
	Updated []string
}

// Empty reports whether nothing changed.
func (c RouteChanges) Empty() bool {
	return len(c.Added) == 0 && len(c.Removed) == 0 && len(c.Updated) == 0
}

// DiffRoutes compares the routes of two Configs.
func DiffRoutes(old, new Config) RouteChanges {
	before, after := routeIndex(old), routeIndex(new)
	var ch RouteChanges
	for _, key := range slices.Sorted(maps.Keys(after)) {
		prev, ok := before[key]
		switch {
		case !ok:
			ch.Added = append(ch.Added, key)
		case !prev.equal(after[key]):
			ch.Updated = append(ch.Updated, key)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(before)) {
		if _, ok := after[key]; !ok {
			ch.Removed = append(ch.Removed, key)
		}
	}
	return ch
}

type routeState struct {
	loc      Location
	upstream *Upstream
}

func (a routeState) equal(b routeState) bool {
	if a.loc != b.loc || (a.upstream == nil) != (b.upstream == nil) {
		return false
	}
	return a.upstream == nil || slices.Equal(a.upstream.Backends, b.upstream.Backends)
}

func routeIndex(c Config) map[string]routeState {
	ups := make(map[string]*Upstream, len(c.Upstreams))
	for i := range c.Upstreams {
		ups[c.Upstreams[i].Name] = &c.Upstreams[i]
	}
	idx := make(map[string]routeState, c.Routes())
	for _, s := range c.Servers {
		for _, l := range s.Locations {
			key := s.Host + l.Path
			if l.Exact {
				key = s.Host + "=" + l.Path
			}
			idx[key] = routeState{loc: l, upstream: ups[l.Upstream]}
		}
	}
	return idx
}
