#!/usr/bin/env bash
# What the full compatibility matrix (make compat) needs beyond the e2e
# suite's packages (test/engines/install-deps.sh): Debian's nftables (the
# nft tool dockerd's nftables firewall backend runs), then the caches: the
# newest CNI plugins (plugins.sh) and containerd 2.x (containerd2.sh).
# Fast no-op when everything is there.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../engines/lib.sh
. "$HERE/../engines/lib.sh"

need_root
ensure_log_dir
if [ "$(dpkg-query -W -f='${db:Status-Status}' nftables 2>/dev/null || true)" != installed ]; then
	log "installing nftables (log: $E2E_LOG_DIR/install-deps.log)"
	{
		echo "=== $(date -Is) apt-get install nftables"
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nftables
	} >>"$E2E_LOG_DIR/install-deps.log" 2>&1 || {
		tail_log "$E2E_LOG_DIR/install-deps.log"
		die "apt-get failed installing nftables"
	}
fi
bash "$HERE/plugins.sh" >/dev/null
bash "$HERE/containerd2.sh" >/dev/null
