#!/usr/bin/env bash
# Build the CNI reference plugins of a given release from the Go module proxy
# into a cache dir that later runs on the same machine reuse, and print it.
# Debian's plugins (1.1.1) speak CNI up to 1.0.0; tests of CNI 1.1 features
# (GC, STATUS) need a newer release.
#
# Usage: test/engines/plugins.sh [version]    (default v1.9.1)
set -euo pipefail
VERSION=${1:-${CNI_PLUGINS_VERSION:-v1.9.1}}
ROOT=${E2E_CACHE_ROOT_PLUGINS:-/var/cache/docker-cni/plugins}
DIR=$ROOT/$VERSION
if [ -x "$DIR/host-local" ] && [ -x "$DIR/bridge" ] && [ -x "$DIR/static" ] && [ -x "$DIR/portmap" ] && [ -x "$DIR/firewall" ]; then
	echo "$DIR"
	exit 0
fi
mkdir -p "$ROOT"
stage=$(mktemp -d "$ROOT/.build-$VERSION.XXXXXX")
trap 'rm -rf "$stage"' EXIT
for p in main/bridge ipam/host-local ipam/static meta/portmap meta/firewall main/loopback; do
	GOWORK=off GO111MODULE=on CGO_ENABLED=0 GOBIN="$stage" \
		go install -trimpath "github.com/containernetworking/plugins/plugins/$p@$VERSION" >&2
done
rm -rf "$DIR"
mv "$stage" "$DIR"
trap - EXIT
echo "$DIR"
