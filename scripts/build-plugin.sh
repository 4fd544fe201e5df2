#!/usr/bin/env bash
# Build docker-cni as a Docker managed plugin bundle: DIR/config.json and
# DIR/rootfs, ready for `docker plugin create NAME DIR`.
#
# Usage: scripts/build-plugin.sh BIN DIR
#   BIN  a static docker-cni (CGO_ENABLED=0; `make plugin` builds one)
#   DIR  the bundle dir, replaced
#
# rootfs holds docker-cni, the reference CNI plugins of this host
# (CNI_PLUGINS_DIR, default /usr/lib/cni; dhcp left out: docker-cni refuses
# it) and this host's iptables (its nft or legacy backend, as
# update-alternatives chose), with the shared libraries they load. The
# plugin's iptables must use the backend the host's dockerd uses: build on a
# host like the ones it runs on. The mounts, capabilities and settings are
# explained in docs/install.md (Docker managed plugin).
set -euo pipefail

bin=${1:?usage: $0 BIN DIR}
dir=${2:?usage: $0 BIN DIR}
plugins=${CNI_PLUGINS_DIR:-/usr/lib/cni}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

die() { echo "build-plugin: $*" >&2; exit 1; }
[ -x "$bin" ] || die "$bin: no such binary"
if ldd "$bin" >/dev/null 2>&1; then die "$bin is dynamically linked: build it with CGO_ENABLED=0 (make plugin does)"; fi
[ -d "$plugins" ] || die "no CNI plugins in $plugins (apt-get install containernetworking-plugins)"
iptables=$(readlink -f "$(command -v iptables || true)")
[ -x "$iptables" ] || die "iptables not found (apt-get install iptables)"

rm -rf "$dir"
rootfs=$dir/rootfs
mkdir -p "$rootfs"/{usr/lib/cni,usr/sbin,etc/cni/net.d,opt/cni/bin,var/lib/cni,var/lib/docker-cni,run,tmp,proc,sys,dev}
ln -s ../run "$rootfs/var/run"
# The host's /usr merge, so every path ldd and iptables name holds there.
for d in bin sbin lib lib64; do
	if [ -L "/$d" ]; then mkdir -p "$rootfs/$(readlink "/$d")" && ln -s "$(readlink "/$d")" "$rootfs/$d"; fi
done
chmod 1777 "$rootfs/tmp"
: >"$rootfs/etc/hosts"
: >"$rootfs/etc/resolv.conf"
cp /etc/protocols "$rootfs/etc/" 2>/dev/null || true
install -m 0755 "$bin" "$rootfs/docker-cni"

# copy_elf FILE: FILE at the same path in rootfs, with the libraries and the
# loader it needs.
copy_elf() {
	local f=$1 lib
	install -D -m 0755 "$f" "$rootfs$f"
	while read -r lib; do
		[ -e "$rootfs$lib" ] && continue
		install -D -m 0755 "$(readlink -f "$lib")" "$rootfs$lib"
	done < <(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true)
}

for p in "$plugins"/*; do
	[ "$(basename "$p")" = dhcp ] && continue
	copy_elf "$p"
done

# iptables: one multi-call binary under every name the plugins and
# docker-cni run, and its extensions.
copy_elf "$iptables"
for name in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
	ln -sf "$(basename "$iptables")" "$rootfs/usr/sbin/$name"
done
[ "$(dirname "$iptables")" = /usr/sbin ] || die "iptables at $iptables: expected under /usr/sbin"
# Where libxtables looks for them (XTABLES_LIBDIR, built in).
xtlib=$(ldd "$iptables" | awk '/libxtables/ {print $3}')
extensions=$(grep -a -o '/[a-z0-9_/.-]*/xtables' "$xtlib" | head -n1 || true)
[ -d "$extensions" ] || die "iptables extensions not found (libxtables $xtlib names '$extensions')"
for e in "$extensions"/*.so; do copy_elf "$e"; done

# What the rootfs carries runs there (chroot: as root only).
if [ "$(id -u)" = 0 ]; then
	chroot "$rootfs" /usr/sbin/iptables -m comment -h >/dev/null || die "iptables or its extensions do not run in the rootfs"
	# Captured first: grep -q would stop reading at the first line, and the
	# plugin's SIGPIPE fails the pipeline under pipefail.
	bridge_out=$(chroot "$rootfs" /usr/lib/cni/bridge </dev/null 2>&1 || true)
	grep -q 'CNI bridge plugin' <<<"$bridge_out" || die "the bridge plugin does not run in the rootfs: $bridge_out"
	chroot "$rootfs" /docker-cni version >/dev/null || die "docker-cni does not run in the rootfs"
fi

cp "$repo/dist/plugin-config.json" "$dir/config.json"
echo "$dir"
