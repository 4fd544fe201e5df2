#!/usr/bin/env bash
# Build containerd 2.x (github.com/containerd/containerd/v2, from the Go
# module proxy: containerd, ctr, containerd-shim-runc-v2) into a cache dir
# that later runs on this machine reuse, and print the dir. The
# compatibility matrix runs its CRI pods on it next to Debian's containerd
# 1.6 (test/cri/containerd.sh writes each its own config format).
#
# Usage: test/compat/containerd2.sh [version]     (default v2.4.2)
#   A no-op when <root>/<version>/STAMP names this version.
#
# Environment: E2E_CACHE_ROOT_CONTAINERD (/var/cache/docker-cni/containerd),
#   E2E_LOG_DIR (/var/log/docker-cni-e2e).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../engines/lib.sh
. "$HERE/../engines/lib.sh"

VERSION=${1:-${CONTAINERD2_VERSION:-v2.4.2}}
ROOT=${E2E_CACHE_ROOT_CONTAINERD:-/var/cache/docker-cni/containerd}
DIR=$ROOT/$VERSION
MOD=github.com/containerd/containerd/v2
STAMP="containerd=$VERSION"
LOGF=$E2E_LOG_DIR/compat-containerd2-build.log

if [ "$(cat "$DIR/STAMP" 2>/dev/null)" = "$STAMP" ] &&
	[ -x "$DIR/containerd" ] && [ -x "$DIR/ctr" ] && [ -x "$DIR/containerd-shim-runc-v2" ]; then
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
log "building containerd $VERSION into $DIR (log: $LOGF)"
start=$(date +%s)
echo "=== $(date -Is) build $STAMP" >"$LOGF"
go version >>"$LOGF"
# As containerd's Makefile builds them, without cgo: no btrfs snapshotter
# (it needs btrfs headers; the CRI harness uses overlayfs), and the shim
# without gRPC.
ld="-s -w -X $MOD/version.Version=$VERSION -X $MOD/version.Revision=$VERSION -X $MOD/version.Package=$MOD"
goenv=(env GOWORK=off GOFLAGS=-buildvcs=false GO111MODULE=on CGO_ENABLED=0 GOBIN="$stage")
if ! "${goenv[@]}" go install -trimpath -tags "urfave_cli_no_docs no_btrfs" -ldflags "$ld" \
	"$MOD/cmd/containerd@$VERSION" "$MOD/cmd/ctr@$VERSION" >>"$LOGF" 2>&1; then
	tail_log "$LOGF"
	die "building containerd/ctr $VERSION failed; see $LOGF"
fi
if ! "${goenv[@]}" go install -trimpath -tags "urfave_cli_no_docs no_grpc" -ldflags "$ld" \
	"$MOD/cmd/containerd-shim-runc-v2@$VERSION" >>"$LOGF" 2>&1; then
	tail_log "$LOGF"
	die "building containerd-shim-runc-v2 $VERSION failed; see $LOGF"
fi
"$stage/containerd" --version >>"$LOGF" 2>&1 || die "built containerd does not run; see $LOGF"
end=$(date +%s)
printf '%s\n' "$STAMP" >"$stage/STAMP"
printf 'built: %s\nseconds: %s\n%s\n%s\n' "$(date -Is)" "$((end - start))" "$(go version)" "$("$stage/containerd" --version)" >"$stage/BUILD_INFO"
echo "=== build took $((end - start))s" >>"$LOGF"
chmod 755 "$stage"
rm -rf "$DIR.old"
[ ! -e "$DIR" ] || mv "$DIR" "$DIR.old"
mv "$stage" "$DIR"
rm -rf "$DIR.old"
trap - EXIT
log "built in $((end - start))s: $DIR"
echo "$DIR"
