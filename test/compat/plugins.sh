#!/usr/bin/env bash
# Build every Linux plugin of one release of the CNI reference plugins
# (github.com/containernetworking/plugins, from the Go module proxy) into a
# cache dir that later runs on this machine reuse, and print the dir. The
# compatibility matrix (test/compat) points docker-cni's --cni-bin-dir and
# the CRI runtime's bin dir at it; Debian's plugins are /usr/lib/cni.
#
# Usage: test/compat/plugins.sh [version]     (default v1.10.0)
#   A no-op when <root>/<version>/STAMP names this version and this plugin
#   list (a dir test/engines/plugins.sh made with a few plugins is rebuilt).
#
# Environment: E2E_CACHE_ROOT_PLUGINS (/var/cache/docker-cni/plugins),
#   E2E_LOG_DIR (/var/log/docker-cni-e2e).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../engines/lib.sh
. "$HERE/../engines/lib.sh"

VERSION=${1:-${CNI_PLUGINS_VERSION:-v1.10.0}}
ROOT=${E2E_CACHE_ROOT_PLUGINS:-/var/cache/docker-cni/plugins}
DIR=$ROOT/$VERSION
PLUGINS=(
	main/bridge main/dummy main/host-device main/ipvlan main/loopback main/macvlan main/ptp main/tap main/vlan
	ipam/dhcp ipam/host-local ipam/static
	meta/bandwidth meta/firewall meta/portmap meta/sbr meta/tuning meta/vrf
)
STAMP="plugins=$VERSION: ${PLUGINS[*]##*/}"
LOGF=$E2E_LOG_DIR/compat-plugins-build.log

if [ "$(cat "$DIR/STAMP" 2>/dev/null)" = "$STAMP" ]; then
	log "cached: $DIR"
	echo "$DIR"
	exit 0
fi
need_root
ensure_log_dir
command -v go >/dev/null || die "go not found in PATH"
mkdir -p "$ROOT"
stage=$(mktemp -d "$ROOT/.build-$VERSION.XXXXXX")
# shellcheck disable=SC2064
trap "rm -rf '$stage'" EXIT
log "building ${#PLUGINS[@]} CNI plugins $VERSION into $DIR (log: $LOGF)"
start=$(date +%s)
echo "=== $(date -Is) build $STAMP" >"$LOGF"
pkgs=()
for p in "${PLUGINS[@]}"; do
	pkgs+=("github.com/containernetworking/plugins/plugins/$p@$VERSION")
done
# One go install: the module is resolved and compiled once for all of them.
if ! GOWORK=off GOFLAGS=-buildvcs=false GO111MODULE=on CGO_ENABLED=0 GOBIN="$stage" \
	go install -trimpath -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$VERSION" \
	"${pkgs[@]}" >>"$LOGF" 2>&1; then
	tail_log "$LOGF"
	die "building the CNI plugins $VERSION failed; see $LOGF"
fi
for p in "${PLUGINS[@]}"; do
	[ -x "$stage/${p##*/}" ] || die "$stage/${p##*/} was not built"
done
end=$(date +%s)
printf '%s\n' "$STAMP" >"$stage/STAMP"
printf 'built: %s\nseconds: %s\n%s\n' "$(date -Is)" "$((end - start))" "$(go version)" >"$stage/BUILD_INFO"
echo "=== build took $((end - start))s" >>"$LOGF"
chmod 755 "$stage"
rm -rf "$DIR.old"
[ ! -e "$DIR" ] || mv "$DIR" "$DIR.old"
mv "$stage" "$DIR"
rm -rf "$DIR.old"
trap - EXIT
log "built in $((end - start))s: $DIR"
echo "$DIR"
