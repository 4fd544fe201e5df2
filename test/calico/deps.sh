#!/usr/bin/env bash
# The Debian packages the Calico end-to-end tests need beyond the suite's:
# etcd (Calico's etcd datastore, and the Kubernetes API server's store),
# ipset (felix's iptables dataplane runs `ipset restore`), and what felix's
# cgo build needs (libelf-dev, zlib1g-dev for libbpf; libpcap-dev).
set -euo pipefail
missing=()
for p in etcd-server etcd-client ipset libelf-dev zlib1g-dev libpcap-dev; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
