package nginxconf_test

import (
	"testing"
	"time"

	"github.com/kube-nginx-sync/kube-nginx-sync/internal/model"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/nginxconf"
	"github.com/kube-nginx-sync/kube-nginx-sync/internal/testbed"
)

// withIngress has the routes of an Ingress beside a Service's: an exact
// path, Prefix paths (whose path without its final "/" is routed), a
// Prefix path whose bare path an exact one takes, one with proxy settings,
// and a default backend.
var withIngress = func() model.Config {
	shop := model.IngressRef{Namespace: "shop", Name: "shop"}
	web := model.ServicePort{Namespace: "shop", Name: "web", Port: "http"}
	api := model.ServicePort{Namespace: "shop", Name: "api", Port: "8000"}
	return model.Config{
		Servers: []model.Server{
			{Locations: []model.Location{
				{Path: "/", Service: web, Mode: model.UpstreamEndpoints, Upstream: "shop_web_http", Ingress: shop},
				{Path: "/ns/svc/", StripPrefix: true, Service: model.ServicePort{Namespace: "ns", Name: "svc", Port: "http"}, Mode: model.UpstreamEndpoints},
			}},
			{Host: "shop.example.com", Locations: []model.Location{
				{Path: "/", Service: web, Mode: model.UpstreamEndpoints, Upstream: "shop_web_http", Ingress: shop},
				{Path: "/aaa/bbb/", Bare: model.BareRoute, Service: api, Mode: model.UpstreamEndpoints, Ingress: shop,
					Proxy: model.ProxySettings{ReadTimeout: time.Hour}},
				{Path: "/aaa/bbb/ccc", Exact: true, Service: web, Mode: model.UpstreamEndpoints, Upstream: "shop_web_http", Ingress: shop},
				{Path: "/foo", Exact: true, Service: api, Mode: model.UpstreamEndpoints, Ingress: shop},
				{Path: "/foo/", Bare: model.BareExact, Service: web, Mode: model.UpstreamEndpoints, Upstream: "shop_web_http", Ingress: shop},
				{Path: "/foo/", Exact: true, Service: web, Mode: model.UpstreamEndpoints, Upstream: "shop_web_http", Ingress: shop},
				{Path: "/login", Exact: true, Service: web, Mode: model.UpstreamEndpoints, Upstream: "shop_web_http", Ingress: shop,
					Proxy: model.ProxySettings{MaxBodySize: 8 << 20}},
				{Path: "/shop/", Bare: model.BareRoute, Service: web, Mode: model.UpstreamEndpoints, Upstream: "shop_web_http", Ingress: shop},
			}},
		},
		Upstreams: []model.Upstream{{Name: "shop_web_http", Backends: aps("10.0.0.1:8080", "10.0.0.2:8080")}},
	}
}()

// TestRenderIngressGolden: the routes of an Ingress in each shape, each
// golden checked by nginx -t, and each Go writer held to its template.
func TestRenderIngressGolden(t *testing.T) {
	t.Parallel()
	nginxBin := testbed.NginxBinary(t)
	for name, opts := range map[string]nginxconf.Options{
		"ingress":      {HTTPPort: 80, StatusPort: 8099},
		"flat-ingress": {HTTPPort: 80, StatusPort: 8099, Shape: nginxconf.ShapeFlat},
		"lua-ingress":  {HTTPPort: 80, StatusPort: 8099, Shape: nginxconf.ShapeLua, TableFile: luaTableFile},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := nginxconf.NewRenderer(opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Render(withIngress, 2)
			if err != nil {
				t.Fatal(err)
			}
			checkGolden(t, nginxBin, name, got)
			if opts.Shape == nginxconf.ShapeLua {
				return // no Go writer
			}
			opts.Template = nginxconf.ShapeTemplate(opts.Shape)
			slow, err := nginxconf.NewRenderer(opts)
			if err != nil {
				t.Fatal(err)
			}
			if b, err := slow.Render(withIngress, 2); err != nil || string(b) != string(got) {
				t.Errorf("the Go writer and the template differ (%v):\n--- writer\n%s\n--- template\n%s", err, got, b)
			}
		})
	}
}
