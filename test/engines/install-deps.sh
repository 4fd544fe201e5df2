#!/usr/bin/env bash
# Install the Debian packages the end-to-end engines need. Fast no-op when
# everything is present; runs `apt-get update` only when something is missing.
#
# Usage: test/engines/install-deps.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

PACKAGES=(
	docker.io containerd runc containernetworking-plugins iptables
	busybox-static libseccomp-dev iproute2 git make gcc pkg-config docker-compose
	systemd etcd-server etcd-client bash-completion
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
# Keep the packages' maintainer scripts from starting services (docker.io
# ships a sysvinit script): the engines are started by debian.sh/current.sh.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$POLICY"
	chmod 755 "$POLICY"
	trap 'rm -f "$POLICY"' EXIT
fi
{
	echo "=== $(date -Is) apt-get update"
	apt-get update
	echo "=== $(date -Is) apt-get install ${missing[*]}"
	apt-get install -y --no-install-recommends "${missing[@]}"
} >>"$LOGF" 2>&1 || {
	tail_log "$LOGF"
	die "apt-get failed installing: ${missing[*]}; see $LOGF"
}
log "installed: ${missing[*]}"
