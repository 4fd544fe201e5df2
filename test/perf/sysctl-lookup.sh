#!/usr/bin/env bash
# What a sysctl path lookup under /proc/sys/net/ipv4/conf/eth0 costs when N
# network namespaces hold an eth0 whose /proc/sys entries are cached (as
# N containers do), against the same read under a name only one namespace
# has. By hand, as root; makes namespaces dcx-<i> and dcx-probe and removes
# them when it ends. No traffic is sent.
# Usage: test/perf/sysctl-lookup.sh [N]   (default 1000)
set -euo pipefail
n=${1:-1000}

cleanup() {
	ip netns list | awk '/^dcx-/{print $1}' | while read -r ns; do ip netns del "$ns"; done
}
trap cleanup EXIT

for i in $(seq 1 "$n"); do
	ip netns add "dcx-$i"
	ip -n "dcx-$i" link add eth0 type veth peer name eth1
	ip netns exec "dcx-$i" cat /proc/sys/net/ipv4/conf/eth0/forwarding /proc/sys/net/ipv6/conf/eth0/accept_dad >/dev/null
done
ip netns add dcx-probe
ip -n dcx-probe link add eth0 type veth peer name dcxprobe0001

# Each open() walks the path again; 2,000 reads per name.
ip netns exec dcx-probe python3 - "$n" <<'PY'
import sys, time
for name in ("eth0", "dcxprobe0001"):
    f = f"/proc/sys/net/ipv4/conf/{name}/forwarding"
    t = time.perf_counter()
    for _ in range(2000):
        with open(f) as fh:
            fh.read()
    print(f"{sys.argv[1]} namespaces with eth0: read of {f}: {(time.perf_counter() - t) / 2000 * 1e6:.1f} us")
PY
