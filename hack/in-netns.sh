#!/usr/bin/env bash
# Runs a command inside a new, private network namespace (needs root), where
# the end-to-end tests, the demo and the benchmarks run their control plane,
# nginx and backends, and a private mount namespace (mounts made inside, such
# as the small tmpfs of the fault tests, never reach the host). Inside it:
#   - lo is up, and every address of 198.18.0.0/15 (RFC 2544's benchmarking
#     range) is local: backends listen there, since the API server refuses
#     loopback addresses in EndpointSlices; ClusterIPs come from 198.19.0.0/16;
#   - every address of 2001:db8::/64 is local too, for IPv6 endpoints.
# No packet leaves the namespace: it has no other interface.
#
# Usage: hack/in-netns.sh COMMAND [ARG...]
set -euo pipefail

if [[ "${KNS_IN_NETNS:-}" != 1 ]]; then
	if [[ $(id -u) != 0 ]]; then
		echo "in-netns: creating a network namespace needs root (unshare -n); run as root" >&2
		exit 1
	fi
	exec unshare --net --mount --propagation private -- env KNS_IN_NETNS=1 "$0" "$@"
fi

# Tests that mount (a tmpfs) check that they are in this mount namespace.
export KNS_MOUNT_NS=$(readlink /proc/self/ns/mnt)
ip link set lo up
ip addr add 198.18.0.0/15 dev lo
ip -6 route add local 2001:db8::/64 dev lo
sysctl -q -w net.ipv6.ip_nonlocal_bind=1
exec "$@"
