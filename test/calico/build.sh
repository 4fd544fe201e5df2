#!/usr/bin/env bash
# Builds the Calico binaries the Calico end-to-end tests run, from a
# projectcalico/calico source tree (CALICO_SRC, the first argument), into
# /var/cache/docker-cni/calico/bin (OUT): calico (the CNI plugin; calico-ipam
# is the same binary under that name, a symlink), calicoctl and calico-felix.
# felix needs libbpf even in its iptables mode (it cleans BPF state up at
# start; a build without cgo panics there): LIBBPF_SRC names a libbpf source
# tree at the version Calico pins (LIBBPF_VERSION in its metadata.mk), built
# here into a static libbpf.a as Calico's own build does (needs gcc,
# libelf-dev, zlib1g-dev; felix also links libpcap: libpcap-dev).
# Nothing of Calico is committed to docker-cni: Calico is not on the Go module
# proxy, so CI cannot build it; `make calico-check CALICO_SRC=...` runs this.
# Go's build cache makes a second run over the same source take seconds (the
# first: about 5 minutes on 2 cores, most of it downloading Calico's modules).
set -euo pipefail
src=${1:?usage: build.sh CALICO_SRC [OUT]}
out=${2:-/var/cache/docker-cni/calico/bin}
src=$(cd "$src" && pwd)
for d in cni-plugin/cmd/calico calicoctl/calicoctl felix/cmd/calico-felix; do
	[ -d "$src/$d" ] || { echo "build.sh: $src/$d not found: CALICO_SRC must be a projectcalico/calico source tree" >&2; exit 1; }
done
want=$(sed -n 's/^LIBBPF_VERSION=//p' "$src/metadata.mk")
libbpf=$src/felix/bpf-gpl/libbpf
if [ ! -f "$libbpf/src/amd64/libbpf.a" ]; then
	[ -n "${LIBBPF_SRC:-}" ] && [ -f "$LIBBPF_SRC/src/libbpf.h" ] || {
		echo "build.sh: felix needs libbpf $want: give LIBBPF_SRC=<a libbpf source tree at $want>" >&2; exit 1; }
	rm -rf "$libbpf"
	cp -a "$LIBBPF_SRC" "$libbpf"
	echo "build.sh: libbpf.a from $LIBBPF_SRC (Calico pins $want)"
	make -s -j"$(nproc)" -C "$libbpf/src" BUILD_STATIC_ONLY=1 OBJDIR=amd64 EXTRA_CFLAGS=-fPIC >/dev/null
fi
mkdir -p "$out"
export PATH=$PATH:/usr/local/go/bin
cd "$src"
for t in cni-plugin/cmd/calico:calico:0 calicoctl/calicoctl:calicoctl:0 felix/cmd/calico-felix:calico-felix:1; do
	IFS=: read -r pkg bin cgo <<<"$t"
	echo "build.sh: $bin from $src/$pkg"
	CGO_ENABLED=$cgo GOFLAGS=-buildvcs=false go build -o "$out/$bin.new" "./$pkg"
	mv -f "$out/$bin.new" "$out/$bin"
done
ln -sfn calico "$out/calico-ipam"
echo "$out"
