package model

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiffRoutes(t *testing.T) {
	t.Parallel()
	web := loc("/ns/web/", "ns", "web", "http", "ns_web_http")
	api := Location{Path: "/", Service: ServicePort{"ns", "api", "http"}, Mode: UpstreamEndpoints, Upstream: "ns_api_http"}
	old := Config{
		Servers: []Server{
			defaultServer(web, loc("/ns/gone/", "ns", "gone", "http", "")),
			{Host: "api.example.com", Locations: []Location{api}},
		},
		Upstreams: []Upstream{
			{Name: "ns_api_http", Backends: aps("10.0.0.1:80")},
			{Name: "ns_web_http", Backends: aps("10.0.0.2:80")},
		},
	}
	webNoStrip := web
	webNoStrip.StripPrefix = false
	new := Config{
		Servers: []Server{
			defaultServer(webNoStrip, loc("/ns/new/", "ns", "new", "http", "")),
			{Host: "api.example.com", Locations: []Location{api}},
		},
		Upstreams: []Upstream{
			{Name: "ns_api_http", Backends: aps("10.0.0.1:80", "10.0.0.3:80")},
			{Name: "ns_web_http", Backends: aps("10.0.0.2:80")},
		},
	}
	want := RouteChanges{Added: []string{"/ns/new/"}, Removed: []string{"/ns/gone/"}, Updated: []string{"/ns/web/", "api.example.com/"}}
	if diff := cmp.Diff(want, DiffRoutes(old, new)); diff != "" {
		t.Errorf("DiffRoutes (-want +got):\n%s", diff)
	}
	if ch := DiffRoutes(new, new); !ch.Empty() {
		t.Errorf("DiffRoutes(c, c) = %+v, want empty", ch)
	}
}
