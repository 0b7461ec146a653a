#!/usr/bin/env bash
# Makes sure what the tests, the demo and the benchmarks need is installed:
# Go (from the machine), and from Debian's packages nginx and its Lua
# module (libnginx-mod-http-lua), iproute2 (ip),
# util-linux (unshare), and for the benchmark's baseline (bench/baseline) jq
# and inotify-tools, and for its data-plane section wrk. As root it installs what is missing with apt-get
# (one 'apt-get update' first); otherwise it says what to install.
set -euo pipefail

if ! command -v go >/dev/null; then
	echo "deps: Go is not installed (https://go.dev/doc/install); kube-nginx-sync needs Go 1.26" >&2
	exit 1
fi

missing=()
command -v nginx >/dev/null || missing+=(nginx)
# The lua shape's data plane: nginx's Lua module (with NDK, LuaJIT and
# lua-resty-core) from Debian's packages.
[[ -e /usr/lib/nginx/modules/ngx_http_lua_module.so ]] || missing+=(libnginx-mod-http-lua)
command -v ip >/dev/null || missing+=(iproute2)
command -v unshare >/dev/null || missing+=(util-linux)
command -v jq >/dev/null || missing+=(jq)
command -v inotifywait >/dev/null || missing+=(inotify-tools)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]} == 0)); then
	exit 0
fi

if [[ $(id -u) != 0 ]]; then
	echo "deps: missing Debian packages: ${missing[*]}; install them with: sudo apt-get install ${missing[*]}" >&2
	exit 1
fi

echo "deps: installing ${missing[*]} from Debian's packages ..." >&2
# Keep the package's own nginx service from starting (and taking port 80):
# a policy-rc.d that says no, only for this install, unless one is there.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
