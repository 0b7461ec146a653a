# The seed's template: one upstream block per Service with ready endpoints,
# and a location /NAMESPACE/NAME/ that proxies to it with the prefix
# stripped. Input: the Service list, then the EndpointSlice list (jq -s).
# $listen: the address:port nginx listens on.
(.[0].items) as $services
| (reduce .[1].items[] as $s ({}; .[$s.metadata.labels["kubernetes.io/service-name"] // ""] += [$s])) as $slices
| [ $services[]
    | (.metadata.namespace + "_" + .metadata.name) as $name
    | ([ ($slices[.metadata.name] // [])[]
         | (.ports[0].port | tostring) as $port
         | (.endpoints // [])[]
         | select(.conditions.ready != false)
         | .addresses[0] + ":" + $port ] | unique) as $endpoints
    | select($endpoints | length > 0)
    | {name: $name, path: ("/" + .metadata.namespace + "/" + .metadata.name + "/"), endpoints: $endpoints} ] as $routes
| ($routes[] | "upstream \(.name) {\n" + ([.endpoints[] | "    server \(.);\n"] | add) + "}\n"),
  "server {\n    listen \($listen) default_server;\n",
  ($routes[] | "    location \(.path) {\n        proxy_pass http://\(.name)/;\n    }\n"),
  "    location / {\n        return 404;\n    }\n}"
