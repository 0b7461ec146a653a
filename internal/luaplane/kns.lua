-- kube-nginx-sync's Lua data plane, run by nginx's lua-nginx-module.
--
-- The generator writes nginx's config (its servers, and a location for each
-- route with proxy settings of its own) and, beside it, the table: every
-- route, which this module matches for the requests of a server's router
-- location, and the ready endpoints of every routed Service port. Every
-- worker checks the table file's first line every CHECK_EVERY seconds and
-- loads the table when it changed: neither an endpoint change nor a new
-- route needs a reload. A table that does not parse is refused whole,
-- logged and counted; the worker keeps its last good table.
--
-- The table file is an index of parts, each in a file of its own named by
-- its content's hash (the table file's path, ".", the hash). A Service
-- port's lines are all in one part, so an endpoint change brings one new
-- part: a worker parses only the parts it does not hold yet. In lines
-- ending with "\n", fields separated by one space, the table file:
--   kube-nginx-sync table 2 <version>
--   part <hash>                          (32 hex digits, one or more lines)
--   end <number of part lines>
-- and a part:
--   kube-nginx-sync part 2
--   route <server> <path> <key> <flags>  (flags: -, s, b, sb or e)
--   endpoints <key> <address> ...        (zero or more addresses)
--   end <number of route and endpoints lines>
-- Flags: s, the path is stripped; b, the path without its final "/" is
-- routed like the path (an Ingress's Prefix path) instead of redirected;
-- e, the route is exact: it matches the one path, which need not end with
-- "/". A server is a host name ([a-z0-9*.-]) or "_"; a path starts with
-- "/", ends with "/" unless the route is exact, and holds
-- [A-Za-z0-9._~/-]; a key names a Service port, "namespace/name:port",
-- each part [a-z0-9][a-z0-9-]*; an address is IPv4 "a.b.c.d:port" or IPv6
-- "[addr]:port", port 1..65535. A route (server, path, and exact or not)
-- and a key are in one part only. The Go writer and its Go reader
-- (internal/luaplane) hold the same grammar, stricter.
--
-- Requests: access() routes a request of a server's router location (which
-- sets $kns_route to "") by the exact route of its URI, else by the longest
-- route path that prefixes its URI, as nginx matches locations; it answers
-- 301 for a route's path without its final "/" (unless the route has flag
-- b), 404 for no route, and 503 for a route with no ready endpoint; the
-- one upstream's balancer_by_lua calls balance(); log() counts the
-- request.

local balancer = require "ngx.balancer"

local _M = {}

local CHECK_EVERY = 0.05    -- seconds between checks of the table file's first line
local MAX_TRIES = 3         -- endpoints tried for one request, at most
local FAIL_TIMEOUT = 10     -- seconds an endpoint that failed is avoided
local WORKER_TTL = 5        -- seconds a worker's report outlives its last check
local HEADER = "kube-nginx-sync table 2 "
local PART_HEADER = "kube-nginx-sync part 2"
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 }

local path            -- the table file
local loaded_header   -- the first line of the table in use
local servers = {}    -- server -> path ("=" .. path when exact) -> { key = key, strip = bool, bare = bool }
local routes = {}     -- key -> { peers = { {host, port, addr}, ... }, next = index }
local parts = {}      -- hash -> a part of the table in use: { routes = {...}, eps = {...} }
local missing         -- the table file's first line when one of its parts was missing
local failed = {}     -- address -> ngx.now() of its last failure
local shared          -- ngx.shared dict: worker reports and counters

local find, sub, match, gmatch, byte = string.find, string.sub, string.match, string.gmatch, string.byte
local tonumber, floor = tonumber, math.floor

-- valid_ipv4 says whether s is a dotted quad without leading zeros.
local function valid_ipv4(s)
    local a, b, c, d = match(s, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
    if not a then
        return false
    end
    for _, o in ipairs({ a, b, c, d }) do
        if #o > 3 or (#o > 1 and sub(o, 1, 1) == "0") or tonumber(o) > 255 then
            return false
        end
    end
    return true
end

-- parse_address turns "a.b.c.d:port" or "[v6]:port" into host, port.
local function parse_address(s)
    local host, port = match(s, "^(%[[%x:%.]+%]):(%d+)$")
    if host then
        if #host > 47 or not find(host, ":", 1, true) then
            return nil
        end
    else
        host, port = match(s, "^([%d%.]+):(%d+)$")
        if not host or not valid_ipv4(host) then
            return nil
        end
    end
    if #port > 5 or (#port > 1 and sub(port, 1, 1) == "0") then
        return nil
    end
    local p = tonumber(port)
    if p < 1 or p > 65535 then
        return nil
    end
    return host, p
end

local KEY = "^[a-z0-9][a-z0-9%-]*/[a-z0-9][a-z0-9%-]*:[a-z0-9][a-z0-9%-]*$"

-- lines calls each(line) for each line of text between its first line,
-- which header must accept, and its end line, which must count them. It
-- returns true, or nil and what is wrong: each returns what is wrong with
-- its line, or nil.
local function lines(text, header, each)
    local count, line_no, ended = 0, 0, false
    for line in gmatch(text, "([^\n]*)\n") do
        line_no = line_no + 1
        if ended then
            return nil, "line " .. line_no .. ": text after the end line"
        end
        if line_no == 1 then
            if not header(line) then
                return nil, "bad header"
            end
        elseif sub(line, 1, 4) == "end " then
            local c = sub(line, 5)
            if not match(c, "^%d+$") or (#c > 1 and sub(c, 1, 1) == "0") or tonumber(c) ~= count then
                return nil, "end line counts " .. c .. " lines, the file has " .. count
            end
            ended = true
        else
            local why = each(line)
            if why then
                return nil, "line " .. line_no .. ": " .. why
            end
            count = count + 1
        end
    end
    if not ended then
        return nil, "no end line: the file is incomplete"
    end
    if sub(text, -1) ~= "\n" then
        return nil, "text after the end line"
    end
    return true
end

-- parse_index reads a table file's text into the list of its parts'
-- hashes, or returns nil and what is wrong.
function _M.parse_index(text)
    local hashes, seen = {}, {}
    local ok, why = lines(text, function(line)
        local v = match(line, "^kube%-nginx%-sync table 2 ([0-9a-f]+)$")
        return v and #v <= 64
    end, function(line)
        local h = match(line, "^part ([0-9a-f]+)$")
        if not h or #h ~= 32 or seen[h] then
            return "bad or repeated part"
        end
        seen[h] = true
        hashes[#hashes + 1] = h
    end)
    if not ok then
        return nil, why
    end
    return hashes
end

-- FLAGS are the flags fields a route line may have.
local FLAGS = { ["-"] = true, s = true, b = true, sb = true, e = true }

-- parse_part reads a part's text into its routes, a list of
-- { server, path, { key = key, strip = bool, bare = bool } } (the path of
-- an exact route starts with "="), and its endpoints, key ->
-- { peers = { {host, port, addr}, ... }, next = 1 }; or returns nil, nil
-- and what is wrong.
function _M.parse_part(text)
    local list, eps, seen = {}, {}, {}
    local ok, why = lines(text, function(line) return line == PART_HEADER end, function(line)
        if sub(line, 1, 6) == "route " then
            local server, p, key, flag = match(line, "^route ([a-z0-9_*][a-z0-9*.%-]*) (/[A-Za-z0-9._~/%-]*) ([^ ]+) ([sbe%-]+)$")
            if not server or not FLAGS[flag] or (flag ~= "e" and sub(p, -1) ~= "/") or #p > 1024 or #server > 253
                or #key > 200 or not match(key, KEY) then
                return "bad route"
            end
            if flag == "e" then
                p = "=" .. p
            end
            local id = server .. " " .. p
            if seen[id] then
                return "repeated route"
            end
            seen[id] = true
            list[#list + 1] = { server, p, { key = key, strip = flag == "s" or flag == "sb", bare = flag == "b" or flag == "sb" } }
        elseif sub(line, 1, 10) == "endpoints " then
            local key, rest = match(line, "^endpoints ([^ ]+)(.*)$")
            if not key or #key > 200 or not match(key, KEY) or eps[key] then
                return "bad or repeated key"
            end
            if rest ~= "" and (sub(rest, 1, 1) ~= " " or sub(rest, -1) == " " or find(rest, "  ", 1, true)) then
                return "bad spacing"
            end
            local peers = {}
            for field in gmatch(rest, "[^ ]+") do
                local host, port = parse_address(field)
                if not host then
                    return "bad address"
                end
                peers[#peers + 1] = { host, port, field }
            end
            eps[key] = { peers = peers, next = 1 }
        else
            return "unknown line"
        end
    end)
    if not ok then
        return nil, nil, why
    end
    return list, eps
end

-- swap puts the parts of a new table, held (hash -> part), in place of
-- those of the table in use, changing the router's servers and the
-- endpoints by key in place: only the parts that come or go are looked at,
-- so that a new table that differs by one part costs about as much as that
-- part, whatever the table's size. Each route and endpoints entry knows its
-- part (.part). It returns nil and what is wrong (a route or a key in two
-- parts) and changes nothing then.
local function swap(held)
    local gone, added = {}, {}
    for h in pairs(parts) do
        if not held[h] then
            gone[h] = true
        end
    end
    for h, p in pairs(held) do
        if not parts[h] then
            added[#added + 1] = p
        end
    end
    -- A route or a key of an added part must not be in a part that stays,
    -- nor in another added part.
    local taken = {}
    for _, p in ipairs(added) do
        for _, r in ipairs(p.routes) do
            local s, id = servers[r[1]], r[1] .. " " .. r[2]
            local cur = s and s[r[2]]
            if (cur and not gone[cur.part]) or taken[id] then
                return nil, "route " .. id .. " in two parts"
            end
            taken[id] = true
        end
        for key in pairs(p.eps) do
            local cur = routes[key]
            if (cur and not gone[cur.part]) or taken[key] then
                return nil, "endpoints of " .. key .. " in two parts"
            end
            taken[key] = true
        end
    end
    for h in pairs(gone) do
        local p = parts[h]
        for _, r in ipairs(p.routes) do
            local s = servers[r[1]]
            if s and s[r[2]] == r[3] then
                s[r[2]] = nil
            end
        end
        for key, e in pairs(p.eps) do
            if routes[key] == e then
                routes[key] = nil
            end
        end
    end
    for _, p in ipairs(added) do
        for _, r in ipairs(p.routes) do
            local s = servers[r[1]]
            if not s then
                s = {}
                servers[r[1]] = s
            end
            s[r[2]] = r[3]
        end
        for key, e in pairs(p.eps) do
            routes[key] = e
        end
    end
    parts = held
    return true
end

-- load loads the table whose file's first line is first and whose text is
-- text: the parts that the table in use does not hold are read and parsed,
-- then swapped in. It returns nil and what is wrong; and, for a missing
-- part, true: the generator removes the parts of a table two versions old,
-- so a newer table file is there (or the generator is writing one).
local function load(first, text)
    local hashes, why = _M.parse_index(text)
    if not hashes then
        return nil, why
    end
    local held = {}
    for _, h in ipairs(hashes) do
        local p = parts[h]
        if not p then
            local f, err = io.open(path .. "." .. h, "r")
            if not f then
                return nil, "part " .. h .. ": " .. err, true
            end
            local data = f:read("*a")
            f:close()
            local r, e, why = _M.parse_part(data or "")
            if not r then
                return nil, "part " .. h .. ": " .. why
            end
            p = { routes = r, eps = e }
            for _, route in ipairs(r) do
                route[3].part = h
            end
            for key, ep in pairs(e) do
                ep.part = h
                -- Keep the route's place in its rotation.
                local old = routes[key]
                if old and #ep.peers > 0 then
                    ep.next = (old.next - 1) % #ep.peers + 1
                end
            end
        end
        held[h] = p
    end
    local ok, why = swap(held)
    if not ok then
        return nil, why
    end
    loaded_header = first
    return true
end

-- check loads the table when the table file's first line changed.
local function check(premature)
    if premature then
        return
    end
    local pid = ngx.worker.pid()
    local f, err = io.open(path, "r")
    if not f then
        if loaded_header ~= nil or not shared:get("missing_logged") then
            ngx.log(ngx.WARN, "kube-nginx-sync: cannot open the table file: ", err)
            shared:set("missing_logged", true)
        end
    else
        local first = f:read("*l")
        local refused = shared:get("refused:" .. pid)
        if first ~= loaded_header and (first or "") ~= refused then
            local rest = f:read("*a")
            f:close()
            local ok, why, transient = load(first, (first or "") .. "\n" .. (rest or ""))
            if ok then
                missing = nil
            elseif transient then
                -- Looked at again at every check, logged once.
                if missing ~= first then
                    ngx.log(ngx.WARN, "kube-nginx-sync: the table is incomplete (", why,
                        "); the last good table stays in use")
                    missing = first
                end
            else
                ngx.log(ngx.ERR, "kube-nginx-sync: refused the table (", why,
                    "); the last good table stays in use")
                shared:incr("endpoint_file_errors", 1, 0)
                shared:set("refused:" .. pid, first or "")
            end
        else
            f:close()
        end
    end
    shared:set("worker:" .. pid, loaded_header and sub(loaded_header, #HEADER + 1) or "", WORKER_TTL)
end

-- init_worker starts the worker's checks of the table file; dict is the
-- shared dict.
function _M.init_worker(file, dict)
    path, shared = file, ngx.shared[dict]
    check(false)
    local ok, err = ngx.timer.every(CHECK_EVERY, check)
    if not ok then
        ngx.log(ngx.ERR, "kube-nginx-sync: cannot start the table check: ", err)
    end
end

-- route finds the route of a request of a router location: the server's
-- exact route of the URI, else the longest route path of the server that
-- prefixes the URI (route paths end in "/", so only the URI's prefixes
-- that end in "/" can match). For a route's path without its final "/",
-- it answers 301, or routes it when the route says so (bare); 404 when no
-- route matches. It strips the route's path when the route says so.
local function route()
    local srv = servers[ngx.var.server_name]
    local uri = ngx.var.uri
    if srv then
        local e = srv["=" .. uri]
        if e then
            return e.key
        end
        local r = byte(uri, -1) ~= 47 and srv[uri .. "/"]
        if r then
            if r.bare then
                if r.strip then
                    ngx.req.set_uri("/")
                end
                return r.key
            end
            local args = ngx.var.args
            return nil, ngx.redirect(uri .. "/" .. (args and ("?" .. args) or ""), 301)
        end
        for i = #uri, 1, -1 do
            if byte(uri, i) == 47 then -- "/"
                local r = srv[sub(uri, 1, i)]
                if r then
                    if r.strip and i > 1 then
                        ngx.req.set_uri(sub(uri, i))
                    end
                    return r.key
                end
            end
        end
    end
    ngx.status = 404
    ngx.header["Content-Type"] = "text/plain"
    ngx.say("kube-nginx-sync: no route for this host and path")
    return nil, ngx.exit(404)
end

-- access routes a request of a router location, and answers 503 for a
-- route that has no ready endpoint.
function _M.access()
    local key = ngx.var.kns_route
    if not key or key == "" then
        key = route()
        if not key then
            return
        end
        ngx.var.kns_route = key
    end
    local r = routes[key]
    if r and #r.peers > 0 then
        return
    end
    ngx.status = 503
    ngx.header["Content-Type"] = "text/plain"
    ngx.say("kube-nginx-sync: no ready endpoints for ", key)
    return ngx.exit(503)
end

-- pick returns the route's next endpoint in its rotation, skipping those
-- that failed within FAIL_TIMEOUT (unless all did) and those in skip.
local function pick(r, skip)
    local peers, n = r.peers, #r.peers
    local now = ngx.now()
    for pass = 1, 2 do
        for _ = 1, n do
            local i = r.next
            r.next = i % n + 1
            local p = peers[i]
            local t = failed[p[3]]
            if not skip[p[3]] and (pass == 2 or not t or now - t > FAIL_TIMEOUT) then
                return p
            end
        end
    end
    return peers[r.next]
end

-- balance chooses the peer of a request, and on a retry another one.
function _M.balance()
    local r = routes[ngx.var.kns_route]
    if not r or #r.peers == 0 then
        return ngx.exit(503)
    end
    local ctx = ngx.ctx
    local tried = ctx.kns_tried
    if not tried then
        tried = {}
        ctx.kns_tried = tried
        local more = math.min(#r.peers, MAX_TRIES) - 1
        if more > 0 then
            balancer.set_more_tries(more)
        end
    else
        local state = balancer.get_last_failure()
        if state == "failed" and ctx.kns_peer then
            failed[ctx.kns_peer] = ngx.now()
        end
    end
    local p = pick(r, tried)
    tried[p[3]] = true
    ctx.kns_peer = p[3]
    local ok, err = balancer.set_current_peer(p[1], p[2])
    if not ok then
        ngx.log(ngx.ERR, "kube-nginx-sync: cannot use endpoint ", p[3], ": ", err)
        return ngx.exit(500)
    end
end

-- log counts the request by route and status class, and its time.
function _M.log()
    local key = ngx.var.kns_route
    if not key or key == "" then
        return
    end
    local class = floor((tonumber(ngx.var.status) or 0) / 100) .. "xx"
    shared:incr("req\t" .. key .. "\t" .. class, 1, 0)
    local t = tonumber(ngx.var.request_time) or 0
    local le = "+Inf"
    for _, b in ipairs(BUCKETS) do
        if t <= b then
            le = b
            break
        end
    end
    shared:incr("dur\t" .. key .. "\t" .. le, 1, 0)
    shared:incr("sum\t" .. key, t, 0)
end

-- report writes, for the status server, the endpoints version each live
-- worker has loaded and the counters, one per line, tab-separated.
function _M.report()
    ngx.header["Content-Type"] = "text/plain"
    local keys = shared:get_keys(0)
    table.sort(keys)
    local out = {}
    for _, k in ipairs(keys) do
        local v = shared:get(k)
        if sub(k, 1, 7) == "worker:" then
            out[#out + 1] = "worker\t" .. sub(k, 8) .. "\t" .. tostring(v)
        elseif not find(k, "refused:", 1, true) and k ~= "missing_logged" then
            out[#out + 1] = k .. "\t" .. tostring(v)
        end
    end
    out[#out + 1] = ""
    ngx.print(table.concat(out, "\n"))
end

return _M
