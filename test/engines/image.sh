#!/usr/bin/env bash
# Make sure the test image docker-cni-test/busybox:latest exists in an engine,
# built without any registry pull from Debian's busybox-static.
#
# Usage: test/engines/image.sh <DOCKER_HOST>
#   e.g. test/engines/image.sh "$(test/engines/current.sh host)"
# No-op when the image already exists in that engine.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

IMAGE=${E2E_TEST_IMAGE:-docker-cni-test/busybox:latest}
BUSYBOX=${E2E_BUSYBOX:-/bin/busybox}

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 <DOCKER_HOST>   (e.g. unix:///var/run/docker.sock)" >&2
	exit 2
fi
export DOCKER_HOST=$1

command -v docker >/dev/null || die "docker CLI not found"
engine_answers "$DOCKER_HOST" || die "no engine answers on $DOCKER_HOST (start it first)"

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
	log "$IMAGE already present on $DOCKER_HOST"
	exit 0
fi

[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"
# A dynamically linked busybox would need the host's libc in the rootfs.
# (ldd exits non-zero for a static binary.)
if ldd_out=$(LC_ALL=C ldd "$BUSYBOX" 2>&1) && ! grep -q 'statically linked' <<<"$ldd_out"; then
	die "$BUSYBOX is dynamically linked; install busybox-static"
fi

tmp=$(mktemp -d /tmp/docker-cni-image.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,proc,sys,dev,root,var/www,run}
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
chmod 755 "$root/bin/busybox"
# busybox --install -s writes absolute symlinks (/bin/busybox) under the
# rootfs; run it chrooted so they land in the right place.
if ! chroot "$root" /bin/busybox --install -s >/dev/null 2>&1; then
	# Fallback: explicit applet symlinks.
	for a in $("$BUSYBOX" --list); do
		[ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
	done
fi
for a in sh ping ip ifconfig nc httpd wget sleep cat hostname route nslookup; do
	[ -e "$root/bin/$a" ] || [ -e "$root/sbin/$a" ] || [ -e "$root/usr/bin/$a" ] ||
		[ -e "$root/usr/sbin/$a" ] || die "applet $a missing from the rootfs (busybox lacks it?)"
done
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"

tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tmp/rootfs.tar" .
log "importing $IMAGE into $DOCKER_HOST"
docker import \
	--change 'CMD ["/bin/sh"]' \
	--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
	--message "docker-cni test image from $(LC_ALL=C "$BUSYBOX" 2>&1 | head -n1)" \
	"$tmp/rootfs.tar" "$IMAGE" >/dev/null ||
	die "docker import of $IMAGE into $DOCKER_HOST failed"
docker image inspect "$IMAGE" >/dev/null 2>&1 || die "$IMAGE not found after import on $DOCKER_HOST"
log "$IMAGE imported into $DOCKER_HOST"
