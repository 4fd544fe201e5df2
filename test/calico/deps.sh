#!/usr/bin/env bash
# The Debian packages the Calico end-to-end tests need beyond the suite's:
# etcd (Calico's etcd datastore, and the Kubernetes API server's store) and
# ipset (felix's iptables dataplane runs `ipset restore`).
set -euo pipefail
missing=()
for p in etcd-server etcd-client ipset; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi
