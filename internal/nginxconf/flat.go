package nginxconf

import (
	"bytes"
	"strconv"
)

// writeFlat writes what the flat shape's template (flat.conf.tmpl) writes
// for view, byte for byte; see writeDefault.
func writeFlat(b *bytes.Buffer, v View) {
	w := func(parts ...string) {
		for _, p := range parts {
			b.WriteString(p)
		}
	}
	writeHead(b, v)
	w("#\n",
		"# Shape \"flat\": no upstream blocks and no proxy_pass per route, because nginx\n",
		"# parses both in time that grows like the square of their number. A route's\n",
		"# location names its endpoints in $kns_endpoints and hands the request to its\n",
		"# server's @kns_proxy location, which proxies to one of them, drawn at random\n",
		"# (a route with proxy settings of its own proxies from its own location). No\n",
		"# connection to a backend is kept alive, and a failed one is not retried on\n",
		"# another endpoint. The path without its final \"/\" redirects to the route, as\n",
		"# nginx does for proxy_pass; an Ingress's Prefix path routes it too.\n")
	writeConnectionMap(b)
	for _, p := range v.Picks {
		n := strconv.Itoa(p.N)
		w("\n\n# $kns_pick", n, ": a random index in 0..", strconv.Itoa(p.Last), ", drawn per request.\n",
			`split_clients "$request_id" $kns_pick`, n, " {")
		for _, s := range p.Shares {
			w("\n    ", s, ";")
		}
		w("\n}")
	}
	if v.Proxies {
		w("\n\n# $kns_endpoint: the endpoint that $kns_endpoints names, either \"ADDRESS\" or\n",
			"# \"INDEX ADDRESS0 ADDRESS1 ...\".\n",
			"map $kns_endpoints $kns_endpoint {\n",
			`    "~^(?<kns_picked>[^ ]+)$" $kns_picked;`)
		for _, i := range v.PickIndexes {
			n := strconv.Itoa(i)
			w("\n    \"~^", n, " (?:[^ ]+ ){", n, "}(?<kns_picked>[^ ]+)\" $kns_picked;")
		}
		w("\n}")
	}
	if v.Strips {
		w("\n\n# $kns_stripped_uri: $uri without the route's path, for routes that strip it.\n",
			`map "$kns_prefix $uri" $kns_stripped_uri {`, "\n",
			`    "~^([^ ]*) \1(?<kns_rest>/.*)$" $kns_rest;`, "\n",
			"    default $uri;\n",
			"}")
	}
	for _, s := range v.Servers {
		writeServerHead(b, s)
		if s.Proxies {
			w("\n\n    error_page 418 = @kns_proxy;",
				"\n    location @kns_proxy {",
				"\n        proxy_pass http://$kns_endpoint;",
				"\n    }")
		}
		if s.Strips {
			w("\n\n    error_page 419 = @kns_proxy_strip;",
				"\n    location @kns_proxy_strip {",
				"\n        rewrite ^ $kns_stripped_uri break;",
				"\n        proxy_pass http://$kns_endpoint;",
				"\n    }")
		}
		for _, r := range s.Routes {
			svc := writeRouteHead(b, r)
			if r.Endpoints == "" {
				w("\n        default_type text/plain;",
					"\n        return 503 \"kube-nginx-sync: no ready endpoints for ", svc, "\\n\";")
				w("\n    }")
				continue
			}
			w("\n        set $kns_endpoints \"", r.Endpoints, "\";")
			if r.StripPrefix {
				w("\n        set $kns_prefix \"", r.Prefix, "\";")
			}
			switch {
			case r.Settings:
				if r.StripPrefix {
					w("\n        rewrite ^ $kns_stripped_uri break;")
				}
				writeSettings(b, r)
				w("\n        proxy_pass http://$kns_endpoint;")
			case r.StripPrefix:
				w("\n        return 419;")
			default:
				w("\n        return 418;")
			}
			w("\n    }")
		}
		writeNotFound(b, s)
		w("\n}")
	}
	writeHTTPSTail(b, v)
	writeStatusServer(b, v)
}
