#!/usr/bin/env bash
# Builds the Calico binaries the Calico end-to-end tests run, from a
# projectcalico/calico source tree (CALICO_SRC, the first argument), into
# /var/cache/docker-cni/calico/bin (OUT): calico (the CNI plugin; calico-ipam
# is the same binary under that name, a symlink), calicoctl and calico-felix.
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
mkdir -p "$out"
export PATH=$PATH:/usr/local/go/bin
cd "$src"
for t in cni-plugin/cmd/calico:calico calicoctl/calicoctl:calicoctl felix/cmd/calico-felix:calico-felix; do
	pkg=${t%%:*} bin=${t##*:}
	echo "build.sh: $bin from $src/$pkg"
	CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -o "$out/$bin.new" "./$pkg"
	mv -f "$out/$bin.new" "$out/$bin"
done
ln -sfn calico "$out/calico-ipam"
echo "$out"
