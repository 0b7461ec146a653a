#!/bin/sh
# The seed article's config generator, done literally: on every Service or
# EndpointSlice event it reads the whole list from the API server again and
# writes a fresh default.conf over the old one (with a shell redirection, as
# a hand-written prototype would). It is the baseline of `make bench`, not
# part of kube-nginx-sync.
#
# Usage: generator.sh KUBECONFIG NAMESPACE SELECTOR LISTEN OUTPUT [once]
# With "once" it writes the file and exits: the seed's init container.
# Needs kubectl and jq on PATH.
set -eu
kubeconfig=$1 namespace=$2 selector=$3 listen=$4 output=$5 once=${6:-}
here=$(dirname "$0")

render() {
	{
		kubectl --kubeconfig "$kubeconfig" -n "$namespace" get services -l "$selector" -o json
		kubectl --kubeconfig "$kubeconfig" -n "$namespace" get endpointslices -o json
	} | jq -r -s --arg listen "$listen" -f "$here/default.conf.jq" >"$output"
}

render
if [ "$once" = once ]; then
	exit 0
fi
# kubectl watches one resource type at a time: one watch per type, both
# feeding the loop; every line is an event.
{
	kubectl --kubeconfig "$kubeconfig" -n "$namespace" get services -l "$selector" --watch-only -o name &
	kubectl --kubeconfig "$kubeconfig" -n "$namespace" get endpointslices --watch-only -o name &
	wait
} | while read -r _event; do
	render
done
