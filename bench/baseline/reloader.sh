#!/bin/sh
# The seed article's nginx container, done literally: nginx runs, and a
# script watches the config folder with inotify and runs `nginx -s reload`
# whenever default.conf's checksum changed (the approach of the Kubernetes
# https-nginx example that the article uses). The baseline of `make bench`.
#
# Usage: reloader.sh CONFDIR NGINX_ARGS...   (e.g. -p PREFIX/ -c MAIN.conf)
# Needs nginx and inotifywait (inotify-tools) on PATH.
set -eu
confdir=$1
shift
nginx "$@" -g "daemon off;" &
sum=$(cksum "$confdir/default.conf")
inotifywait -m -q -e modify,move,create,delete --format '%e %f' "$confdir" | while read -r _event; do
	new=$(cksum "$confdir/default.conf" 2>/dev/null || true)
	if [ "$new" != "$sum" ]; then
		sum=$new
		echo "reloader: default.conf changed, nginx -s reload" >&2
		nginx "$@" -s reload || true
	fi
done
