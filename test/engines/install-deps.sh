#!/usr/bin/env bash
# Install the Debian packages the end-to-end engines need. Fast no-op when
# everything is present; runs `apt-get update` only when something is missing.
#
# Usage: test/engines/install-deps.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"

PACKAGES=(
	docker.io containerd runc containernetworking-plugins iptables
	busybox-static libseccomp-dev iproute2 git make gcc pkg-config
)

need_root
ensure_log_dir
LOGF=$E2E_LOG_DIR/install-deps.log

missing=()
for p in "${PACKAGES[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
	log "all ${#PACKAGES[@]} packages present"
	exit 0
fi

log "installing: ${missing[*]} (log: $LOGF)"
export DEBIAN_FRONTEND=noninteractive
{
	echo "=== $(date -Is) apt-get update"
	apt-get update
	echo "=== $(date -Is) apt-get install ${missing[*]}"
	apt-get install -y --no-install-recommends "${missing[@]}"
} >>"$LOGF" 2>&1 || {
	tail_log "$LOGF"
	die "apt-get failed installing: ${missing[*]}; see $LOGF"
}
# Debian's docker.io/containerd postinst would start services through
# systemd; there is none here, so nothing is left running by this script.
log "installed: ${missing[*]}"
