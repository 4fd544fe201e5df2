#!/usr/bin/env bash
# Build the docker-cni Debian package from a tree `make install` staged.
#
# Usage: scripts/build-deb.sh ROOT OUTDIR
#   ROOT    what `make install DESTDIR=ROOT PREFIX=/usr UNITDIR=/lib/systemd/system`
#           put there: usr/bin/docker-cni, lib/systemd/system/docker-cni.{service,socket},
#           etc/default/docker-cni, usr/share/man/man1/docker-cni*.1 and the bash,
#           zsh and fish completions. Man pages are compressed and docs, control
#           files and maintainer scripts added here. ROOT is modified.
#   OUTDIR  where docker-cni_<version>_<arch>.deb is written; the path is printed.
#
# The build is reproducible: owners root:root, fixed modes, every mtime and the
# ar/tar timestamps set to SOURCE_DATE_EPOCH (default: the commit time), the
# version from the commit (0.0~git<date>.<hash>, +dirty with changes not
# committed; or DEB_VERSION).
#
# Environment: DEB_VERSION, DEB_ARCH (dpkg --print-architecture),
#   DEB_MAINTAINER, SOURCE_DATE_EPOCH.
set -euo pipefail

root=${1:?usage: $0 ROOT OUTDIR}
out=${2:?usage: $0 ROOT OUTDIR}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

[ -x "$root/usr/bin/docker-cni" ] || { echo "build-deb: $root/usr/bin/docker-cni missing: stage with make install first" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "build-deb: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }

export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}
if [ -z "${DEB_VERSION:-}" ]; then
	hash=$(git -C "$repo" rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
	DEB_VERSION=0.0~git$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y%m%d).$hash
	# Changes not committed: a later version than the commit's own package.
	git -C "$repo" diff --quiet HEAD 2>/dev/null || DEB_VERSION=$DEB_VERSION+dirty
fi
arch=${DEB_ARCH:-$(dpkg --print-architecture)}
maintainer=${DEB_MAINTAINER:-docker-cni developers <docker-cni@localhost>}

# Docs: the README, the docs/ pages it links and the examples, as Debian
# ships them (gzip -n: no name or time in the header); man pages compressed.
doc=$root/usr/share/doc/docker-cni
install -d "$doc/docs"
gzip -9n <"$repo/README.md" >"$doc/README.md.gz"
for page in "$repo"/docs/*.md; do
	gzip -9n <"$page" >"$doc/docs/$(basename "$page").gz"
done
cp -r "$repo/examples" "$doc/examples"
ls "$root"/usr/share/man/man1/docker-cni.1 >/dev/null || { echo "build-deb: no man pages in $root: stage with make install first" >&2; exit 1; }
gzip -9n "$root"/usr/share/man/man1/*.1

# Control files.
install -d "$root/DEBIAN"
installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<EOF
Package: docker-cni
Version: $DEB_VERSION
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Depends: containernetworking-plugins, iptables
Suggests: docker.io
Section: net
Priority: optional
Homepage: https://github.com/docker-cni/docker-cni
Description: Docker network and IPAM driver over the node's CNI plugins
 docker-cni serves Docker's remote network driver and IPAM driver protocols
 (driver "cni", socket /run/docker/plugins/cni.sock) and maps Docker's calls
 onto CNI ADD and DEL, running the node's CNI plugins: containers join the
 networks, bridges and IPAM stores that kubelet, containerd and CRI-O use.
 .
 The service is socket-activated (docker-cni.socket), so dockerd finds the
 driver at boot even before the daemon runs. Extra flags go in
 /etc/default/docker-cni.
EOF
echo /etc/default/docker-cni >"$root/DEBIAN/conffiles"

# Maintainer scripts: what dh_installsystemd generates, written out.
# deb-systemd-helper manages the enablement symlinks without a running
# systemd; systemctl and deb-systemd-invoke run only when systemd is PID 1.
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = configure ] || [ "$1" = abort-upgrade ] || [ "$1" = abort-deconfigure ] || [ "$1" = abort-remove ]; then
	if command -v deb-systemd-helper >/dev/null; then
		for unit in docker-cni.socket docker-cni.service; do
			deb-systemd-helper unmask "$unit" >/dev/null || true
			# was-enabled is true on a first installation.
			if deb-systemd-helper --quiet was-enabled "$unit"; then
				deb-systemd-helper enable "$unit" >/dev/null || true
			else
				deb-systemd-helper update-state "$unit" >/dev/null || true
			fi
		done
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "$2" ]; then action=restart; else action=start; fi
		deb-systemd-invoke "$action" docker-cni.socket docker-cni.service >/dev/null || true
	fi
fi
exit 0
EOF
cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
# SIGTERM leaves containers' networking as it is.
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	deb-systemd-invoke stop docker-cni.service docker-cni.socket >/dev/null || true
fi
exit 0
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if command -v deb-systemd-helper >/dev/null; then
	for unit in docker-cni.socket docker-cni.service; do
		case "$1" in
		remove) deb-systemd-helper mask "$unit" >/dev/null || true ;;
		purge)
			deb-systemd-helper purge "$unit" >/dev/null || true
			deb-systemd-helper unmask "$unit" >/dev/null || true
			;;
		esac
	done
fi
if [ "$1" = purge ] && [ -d /var/lib/docker-cni ]; then
	# The state records the addresses docker-cni holds in CNI stores that
	# pods share: deleting it would leak them.
	echo "docker-cni: kept /var/lib/docker-cni (its state); remove it once no docker-cni network is left" >&2
fi
exit 0
EOF

# Owners, modes and times fixed, whatever the umask and checkout left.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
chmod 0755 "$root/usr/bin/docker-cni" "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
find "$root" -depth -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

mkdir -p "$out"
deb=$out/docker-cni_${DEB_VERSION}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
