#!/usr/bin/env bash
# Install what the docker-cni daemon needs at run time on Debian: the CNI
# reference plugins (/usr/lib/cni) and iptables. A no-op when present.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "docker-cni: run as root (it manages network namespaces)" >&2; exit 1; }
missing=()
for p in containernetworking-plugins iptables; do
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "docker-cni: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}"
