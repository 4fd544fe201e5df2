#!/usr/bin/env bash
# Builds a real kube-apiserver, kubelet and kubectl (KUBE_VERSION, v1.37.2)
# from the k8s.io/kubernetes Go module, through the Go module proxy, into
# /var/cache/docker-cni/kubernetes/<version>/ (OUT), once: a cached binary is
# reused. The kubernetes repository is too large to fetch; the module builds
# from a scratch module that requires k8s.io/kubernetes and replaces every
# staging module (k8s.io/api, ...) its go.mod points at ./staging with that
# module's v0.<minor>.<patch> release. About 3.5 minutes for kube-apiserver
# and one more each for kubelet and kubectl on 2 cores the first time.
set -euo pipefail
version=${KUBE_VERSION:-v1.37.2}
out=${1:-/var/cache/docker-cni/kubernetes/$version}
export PATH=$PATH:/usr/local/go/bin
cmds=()
for cmd in kube-apiserver kubelet kubectl; do
	[ -x "$out/$cmd" ] || cmds+=("$cmd")
done
if [ ${#cmds[@]} -eq 0 ]; then
	echo "$out"
	exit 0
fi
staging=v0.${version#v1.}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
[ -f "$gomod" ] || { echo "kube.sh: no go.mod for k8s.io/kubernetes@$version" >&2; exit 1; }
{
	echo "module dockercni.local/kube"
	echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
	echo "require k8s.io/kubernetes $version"
	sed -n 's|^[[:space:]]*\(k8s.io/[^[:space:]]*\) => ./staging/.*|replace \1 => \1 '"$staging"'|p' "$gomod"
} >go.mod
printf 'package kube\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n\t_ "k8s.io/kubernetes/cmd/kubelet/app"\n\t_ "k8s.io/kubectl/pkg/cmd"\n)\n' >tools.go
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
mkdir -p "$out"
ldflags="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/client-go/pkg/version.gitVersion=$version"
for cmd in "${cmds[@]}"; do
	echo "kube.sh: building $cmd $version" >&2
	GOFLAGS=-mod=mod CGO_ENABLED=0 go build -ldflags "$ldflags" -o "$out/$cmd.new" "k8s.io/kubernetes/cmd/$cmd"
	mv -f "$out/$cmd.new" "$out/$cmd"
done
echo "$out"
