#!/usr/bin/env bash
# Build flanneld (github.com/flannel-io/flannel) from the Go module proxy
# into a cache dir that later runs on the same machine reuse, and print
# that dir (it holds flanneld). The project carries none of flannel's code:
# the module is copied from the Go module cache into a scratch dir, and
# main.go's blank imports of backends are cut down to vxlan and host-gw
# there before the build. The others cannot be built here: tencentvpc's
# SDK is not all served by the proxy, udp needs cgo, and the rest (ipip,
# ipsec, wireguard, alloc, extension) are not used by the suite.
#
# Usage: test/engines/flannel.sh [build]
#
# Environment overrides: FLANNEL_VERSION (v0.28.10),
# E2E_CACHE_ROOT_FLANNEL (/var/cache/docker-cni/flannel),
# E2E_LOG_DIR (/var/log/docker-cni-e2e).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

FLANNEL_VERSION=${FLANNEL_VERSION:-v0.28.10}
ROOT=${E2E_CACHE_ROOT_FLANNEL:-/var/cache/docker-cni/flannel}
DIR=$ROOT/$FLANNEL_VERSION
MODULE=github.com/flannel-io/flannel
KEEP='hostgw|vxlan'
STAMP="flannel=$FLANNEL_VERSION backends=$KEEP"
BUILD_LOG=$E2E_LOG_DIR/flannel-build.log

cached() {
	[ -x "$DIR/flanneld" ] && [ "$(cat "$DIR/STAMP" 2>/dev/null)" = "$STAMP" ]
}

# trim_backends MAIN_GO: drop every blank import of a flannel backend but
# those in KEEP, and check that exactly those are left.
trim_backends() {
	local main=$1 pkg=$MODULE/pkg/backend
	sed -i -E "\\#^[[:space:]]*_ \"$pkg/[a-z0-9]+\"#{\\#_ \"$pkg/($KEEP)\"#!d}" "$main"
	local left
	left=$(grep -oE "_ \"$pkg/[a-z0-9]+\"" "$main" | sed -E "s#.*/##; s#\"##" | sort | paste -sd'|')
	[ "$left" = "$KEEP" ] || die "$main: backends left after trimming: '$left', want '$KEEP' (did flannel's main.go change?)"
}

do_build() {
	need_root
	ensure_log_dir
	if cached; then
		echo "$DIR"
		return 0
	fi
	command -v go >/dev/null || die "go not found in PATH"
	mkdir -p "$ROOT"
	local stage start
	stage=$(mktemp -d "$ROOT/.build-$FLANNEL_VERSION.XXXXXX")
	# shellcheck disable=SC2064
	trap "chmod -R u+w '$stage' 2>/dev/null; rm -rf '$stage'" EXIT
	start=$(date +%s)
	echo "=== $(date -Is) build $STAMP" >"$BUILD_LOG"
	local -a goenv=(env GOWORK=off GOFLAGS=-mod=mod GO111MODULE=on CGO_ENABLED=0)
	local src
	src=$("${goenv[@]}" go mod download -json "$MODULE@$FLANNEL_VERSION" 2>>"$BUILD_LOG" |
		sed -n -E 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p')
	[ -n "$src" ] && [ -f "$src/main.go" ] || {
		tail_log "$BUILD_LOG"
		die "go mod download $MODULE@$FLANNEL_VERSION gave no module dir; see $BUILD_LOG"
	}
	cp -r "$src" "$stage/src"
	chmod -R u+w "$stage/src"
	trim_backends "$stage/src/main.go"
	log "building flanneld $FLANNEL_VERSION (backends: $KEEP) into $DIR (log: $BUILD_LOG)"
	if ! (cd "$stage/src" && "${goenv[@]}" go build -trimpath \
		-ldflags "-s -w -X $MODULE/pkg/version.Version=$FLANNEL_VERSION" \
		-o "$stage/flanneld" .) >>"$BUILD_LOG" 2>&1; then
		tail_log "$BUILD_LOG"
		die "building flanneld $FLANNEL_VERSION failed; see $BUILD_LOG"
	fi
	rm -rf "$stage/src"
	[ "$("$stage/flanneld" --version 2>&1)" = "$FLANNEL_VERSION" ] || die "built flanneld does not say it is $FLANNEL_VERSION"
	printf '%s\n' "$STAMP" >"$stage/STAMP"
	echo "built: $(date -Is) in $(($(date +%s) - start))s with $(go version)" >"$stage/BUILD_INFO"
	echo "=== build took $(($(date +%s) - start))s" >>"$BUILD_LOG"
	rm -rf "$DIR"
	mv "$stage" "$DIR"
	chmod 755 "$DIR"
	trap - EXIT
	log "built in $(($(date +%s) - start))s: $DIR/flanneld"
	echo "$DIR"
}

case "${1:-build}" in
build) do_build ;;
*)
	echo "usage: $0 [build]" >&2
	exit 2
	;;
esac
