#!/usr/bin/env bash
# A private containerd with its CRI plugin, for tests that need real
# Kubernetes-style pods without a kubelet or a registry.
#
# Usage: test/cri/containerd.sh start|stop|sock|image <workdir> [<cni-conf-dir>]
#   start  write <workdir>/config.toml (CNI confs from <cni-conf-dir>, plugins
#          from $CRI_CNI_BIN_DIR), start containerd (in $CRI_NETNS if set)
#          on sockets under <workdir>, wait until its CRI plugin is up, and
#          import the sandbox image (busybox, built here as an OCI layout: no
#          registry, no Docker).
#          A no-op when this workdir's containerd already runs.
#   stop   stop this workdir's containerd: kill the tasks and shims it
#          started, then unmount everything under <workdir>. Pods still
#          there get no CNI DEL: remove them over CRI first (Runtime.Stop
#          in cri.go does). A no-op when nothing runs.
#   sock   print the CRI (containerd gRPC) socket path.
#   image  print the sandbox image name (also the image for containers).
#
# Everything lives under <workdir>: root, state, sockets, runc state, netns
# mounts, log. It never touches dockerd's containerd, /run/containerd's
# default socket, or /var/run/netns. No image is ever pulled: the sandbox
# image is named localhost/..., so a missing image would at worst be
# looked for on loopback.
#
# Environment (start):
#   CRI_NETNS        a netns path (a bind mount or /proc/PID/ns/net): run
#                    containerd in it (nsenter --net), so that its CNI plugins
#                    make the pods' host-side links, bridge and rules there, as
#                    on another node. Pod netns are new namespaces either way,
#                    mounted under <workdir>. Empty: the caller's netns.
#   CRI_CNI_BIN_DIR  the CNI plugin dir (default /usr/lib/cni).
#   CRI_CONTAINERD, CRI_CTR, CRI_RUNC
#                    the binaries (default Debian's: /usr/bin/containerd,
#                    /usr/bin/ctr, /usr/sbin/runc). containerd 1.x gets a
#                    version 2 config, 2.x a version 3 one (the CRI plugin's
#                    sections moved); the shim is looked up beside
#                    CRI_CONTAINERD first, then in PATH.
set -euo pipefail

IMAGE=localhost/docker-cni-test/cri-busybox:latest
CONTAINERD=${CRI_CONTAINERD:-/usr/bin/containerd}
CTR=${CRI_CTR:-/usr/bin/ctr}
RUNC=${CRI_RUNC:-/usr/sbin/runc}
BUSYBOX=${CRI_BUSYBOX:-/bin/busybox}
CNI_BIN_DIR=${CRI_CNI_BIN_DIR:-/usr/lib/cni}
NETNS=${CRI_NETNS:-}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

usage() {
	echo "usage: $0 start|stop|sock|image <workdir> [<cni-conf-dir>]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
CMD=$1
if [ "$CMD" = image ]; then
	echo "$IMAGE"
	exit 0
fi
if [ $# -lt 2 ] || [ -z "$2" ]; then
	usage
fi
WORK=$(realpath -m "$2")
CONF_DIR=${3:-}

CONFIG=$WORK/config.toml
SOCK=$WORK/containerd.sock
PIDFILE=$WORK/containerd.pid
LOGFILE=$WORK/containerd.log

# ctr against this instance only, never the default socket.
ctr_() { timeout 60 "$CTR" --address "$SOCK" "$@"; }

# tail_log: the end of this instance's log, on stderr.
tail_log() {
	{
		echo "----- last 40 lines of $LOGFILE -----"
		tail -n 40 "$LOGFILE" 2>/dev/null || echo "(no log)"
		echo "----- end of $LOGFILE -----"
	} >&2
}

# our_pid: print the pid of this workdir's containerd if it runs. The
# command line must name our config, so a reused pid is never taken.
our_pid() {
	local pid cmdline
	[ -s "$PIDFILE" ] || return 1
	pid=$(cat "$PIDFILE")
	[ -n "$pid" ] || return 1
	cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
	[[ $cmdline == *"--config $CONFIG "* ]] || return 1
	echo "$pid"
}

# cri_status: the status column of the CRI plugin ("ok", "error", "skip").
cri_status() {
	ctr_ plugins ls 2>/dev/null | awk '$1 == "io.containerd.grpc.v1" && $2 == "cri" { print $NF }'
}

# containerd_major: the major version of $CONTAINERD ("1", "2"), from
# `containerd --version` ("containerd <module> <version> <revision>").
containerd_major() {
	local v
	v=$("$CONTAINERD" --version 2>/dev/null | awk '{ print $3 }')
	v=${v#v}
	[ -n "$v" ] || die "$CONTAINERD --version printed no version"
	echo "${v%%.*}"
}

# render_config: print the config.toml for this workdir and conf dir, in the
# format of $CONTAINERD's major version.
render_config() {
	if [ "$(containerd_major)" -ge 2 ]; then
		render_config_v3
	else
		render_config_v2
	fi
}

# render_config_v3: containerd 2.x. The CRI plugin is split in three
# (images, runtime, the gRPC server); NRI, on by default in 2.x, would take
# the node-wide /var/run/nri socket and is left out.
render_config_v3() {
	cat <<EOF
# Written by test/cri/containerd.sh: a private containerd 2.x for CRI tests.
# netns: ${NETNS:-none (the netns of whoever starts it)}
version = 3
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.erofs",
  "io.containerd.internal.v1.opt",
  "io.containerd.nri.v1.nri",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = "$WORK/debug.sock"
  level = "info"

[plugins]
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "$IMAGE"
  [plugins."io.containerd.cri.v1.runtime"]
    netns_mounts_under_state_dir = true
    restrict_oom_score_adj = true
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
          BinaryName = "$RUNC"
          Root = "$WORK/runc"
          SystemdCgroup = false
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["$CNI_BIN_DIR"]
      conf_dir = "$CONF_DIR"
      max_conf_num = 1
      conf_template = ""
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
EOF
}

# render_config_v2: containerd 1.x (Debian's 1.6).
render_config_v2() {
	cat <<EOF
# Written by test/cri/containerd.sh: a private containerd for CRI tests.
# netns: ${NETNS:-none (the netns of whoever starts it)}
version = 2
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = [
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.internal.v1.opt",
]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[debug]
  address = "$WORK/debug.sock"
  level = "info"

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "$IMAGE"
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    # Netns mounts under our state dir, not /var/run/netns.
    netns_mounts_under_state_dir = true
    # Never ask for an oom_score_adj below containerd's own: without
    # CAP_SYS_RESOURCE (as on this kind of machine) runc cannot lower it and
    # fails the sandbox's -998 with "can't get final child's PID from pipe".
    restrict_oom_score_adj = true
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          BinaryName = "$RUNC"
          Root = "$WORK/runc"
          SystemdCgroup = false
    # containerd 1.6 takes a single bin_dir (a string; bin_dirs came later).
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$CNI_BIN_DIR"
      conf_dir = "$CONF_DIR"
      max_conf_num = 1
      conf_template = ""
EOF
}

# build_image: an OCI image layout tar at $WORK/image.tar holding one
# uncompressed layer (busybox and its applet links) and the entrypoint
# ["/bin/busybox","sleep","2147483647"]. Byte-for-byte reproducible.
build_image() {
	local dir=$WORK/image rootfs layout arch a
	rootfs=$dir/rootfs
	layout=$dir/layout
	case $(uname -m) in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	armv7l | armv6l) arch=arm ;;
	*) arch=$(uname -m) ;;
	esac
	[ -x "$BUSYBOX" ] || die "$BUSYBOX not found (apt-get install busybox-static)"
	if ldd_out=$(LC_ALL=C ldd "$BUSYBOX" 2>&1) && ! grep -q 'statically linked' <<<"$ldd_out"; then
		die "$BUSYBOX is dynamically linked; install busybox-static"
	fi

	rm -rf "$dir"
	mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,tmp,root,run,var/www} "$layout/blobs/sha256"
	chmod 1777 "$rootfs/tmp"
	cp "$BUSYBOX" "$rootfs/bin/busybox"
	chmod 755 "$rootfs/bin/busybox"
	for a in $("$BUSYBOX" --list); do
		[ -e "$rootfs/bin/$a" ] || ln -s busybox "$rootfs/bin/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	echo 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"

	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$dir/layer.tar" .
	local layer_digest layer_size
	layer_digest=$(sha256sum "$dir/layer.tar" | cut -d' ' -f1)
	layer_size=$(stat -c %s "$dir/layer.tar")
	mv "$dir/layer.tar" "$layout/blobs/sha256/$layer_digest"

	blob() { # blob FILE: move FILE into the layout; print "digest size"
		local d s
		d=$(sha256sum "$1" | cut -d' ' -f1)
		s=$(stat -c %s "$1")
		mv "$1" "$layout/blobs/sha256/$d"
		echo "$d $s"
	}
	printf '{"architecture":"%s","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":["/bin/busybox","sleep","2147483647"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"test/cri/containerd.sh from %s"}]}' \
		"$arch" "$layer_digest" "$BUSYBOX" >"$dir/config.json"
	local cfg cfg_digest cfg_size
	cfg=$(blob "$dir/config.json")
	cfg_digest=${cfg% *} cfg_size=${cfg#* }
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
		"$cfg_digest" "$cfg_size" "$layer_digest" "$layer_size" >"$dir/manifest.json"
	local man man_digest man_size
	man=$(blob "$dir/manifest.json")
	man_digest=${man% *} man_size=${man#* }
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
		"$man_digest" "$man_size" "$arch" "$IMAGE" "${IMAGE##*:}" >"$layout/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$WORK/image.tar" oci-layout index.json blobs
	rm -rf "$dir"
}

# have_image: true when the k8s.io namespace has $IMAGE. (No pipe into
# grep -q: with pipefail, an early grep exit fails the pipeline.)
have_image() {
	local refs
	refs=$(ctr_ -n k8s.io images ls -q 2>/dev/null) || return 1
	grep -qxF "$IMAGE" <<<"$refs"
}

ensure_image() {
	have_image && return 0
	build_image
	ctr_ -n k8s.io images import "$WORK/image.tar" >/dev/null ||
		die "ctr images import $WORK/image.tar into $SOCK failed"
	have_image || die "$IMAGE not listed by $SOCK after import"
}

do_start() {
	[ "$(id -u)" = 0 ] || die "must run as root (uid 0), not uid $(id -u)"
	[ -n "$CONF_DIR" ] || usage
	[ -d "$CONF_DIR" ] || die "CNI conf dir $CONF_DIR does not exist"
	CONF_DIR=$(realpath "$CONF_DIR")
	if [ -n "$NETNS" ]; then
		[[ $NETNS == /* ]] || die "netns $NETNS (CRI_NETNS) is not an absolute path"
		[ -e "$NETNS" ] || die "netns $NETNS (CRI_NETNS) does not exist"
	fi
	local f
	for f in "$CONTAINERD" "$CTR" "$RUNC" "$CNI_BIN_DIR/bridge" "$CNI_BIN_DIR/loopback" "$BUSYBOX"; do
		[ -x "$f" ] || die "$f not found (apt-get install containerd runc containernetworking-plugins busybox-static)"
	done
	PATH="$(dirname "$CONTAINERD"):$PATH" command -v containerd-shim-runc-v2 >/dev/null ||
		die "containerd-shim-runc-v2 neither beside $CONTAINERD nor in PATH ($PATH)"
	mkdir -p "$WORK"

	# Keep every socket path inside the 108-byte sun_path limit.
	[ ${#SOCK} -le 100 ] || die "workdir $WORK is too long for unix sockets (${#SOCK} > 100 bytes for $SOCK)"
	local pid
	if pid=$(our_pid); then
		[ "$(render_config)" = "$(cat "$CONFIG")" ] ||
			die "containerd (pid $pid) already runs on $WORK with another config; run '$0 stop $WORK' first"
		[ "$(cri_status)" = ok ] || { tail_log; die "containerd (pid $pid) runs but its CRI plugin is not ok"; }
		ensure_image
		log "already running (pid $pid) on $SOCK"
		return 0
	fi
	rm -f "$PIDFILE" "$SOCK" "$SOCK.ttrpc" "$WORK/debug.sock"
	render_config >"$CONFIG.tmp"
	mv "$CONFIG.tmp" "$CONFIG"

	# nsenter enters the netns and execs containerd: same pid, same cmdline.
	local run=("$CONTAINERD" --config "$CONFIG")
	[ -z "$NETNS" ] || run=(nsenter "--net=$NETNS" "${run[@]}")
	echo "=== $(date -Is) starting: ${run[*]}" >>"$LOGFILE"
	# Its own shim first (containerd finds containerd-shim-runc-v2 in PATH).
	PATH="$(dirname "$CONTAINERD"):$PATH" setsid "${run[@]}" </dev/null >>"$LOGFILE" 2>&1 &
	pid=$!
	echo "$pid" >"$PIDFILE"
	# A start that fails leaves nothing running (die exits through here).
	trap 'log "start failed: stopping what it started"; do_stop' EXIT

	local i status=""
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || { tail_log; die "containerd (pid $pid) exited before $SOCK answered; see $LOGFILE"; }
		if [ -S "$SOCK" ]; then
			status=$(cri_status || true)
			case $status in
			ok) break ;;
			error | skip) tail_log; die "containerd (pid $pid): CRI plugin status $status; see $LOGFILE" ;;
			esac
		fi
		sleep 0.1
	done
	[ "$status" = ok ] || { tail_log; die "containerd (pid $pid) not ready on $SOCK within 30s (CRI plugin status ${status:-unknown}); see $LOGFILE"; }
	if ! (ensure_image); then
		tail_log
		die "sandbox image $IMAGE could not be imported into $SOCK"
	fi
	trap - EXIT
	log "running (pid $pid) on $SOCK; log: $LOGFILE"
}

# shim_pids: containerd-shim processes serving our socket.
shim_pids() {
	local p cmdline
	for p in /proc/[0-9]*; do
		[ "$(cat "$p/comm" 2>/dev/null)" = containerd-shim ] || continue
		cmdline=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
		[[ $cmdline == *"-address $SOCK "* ]] && echo "${p#/proc/}"
	done
	return 0
}

# kill_tree PID: SIGKILL PID's children, then PID.
kill_tree() {
	local c
	# /proc/PID/task/TID/children: space-separated pids.
	# shellcheck disable=SC2013
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		kill -KILL "$c" 2>/dev/null || true
	done
	kill -KILL "$1" 2>/dev/null || true
}

unmount_under() {
	local m i mounts
	# Deepest first; retry lazily when busy.
	for ((i = 0; i < 3; i++)); do
		mapfile -t mounts < <(awk -v w="$WORK/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
		[ ${#mounts[@]} -gt 0 ] || return 0
		for m in "${mounts[@]}"; do
			m=$(printf '%b' "$m") # mountinfo escapes spaces as \040
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done
	done
	awk -v w="$WORK/" 'index($5, w) == 1 { print "  still mounted: " $5 }' /proc/self/mountinfo >&2
}

do_stop() {
	[ "$(id -u)" = 0 ] || die "must run as root (uid 0), not uid $(id -u)"
	local pid i t
	if pid=$(our_pid); then
		# Tasks first: their shims exit once their last task is deleted.
		for t in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do
			ctr_ -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true
		done
		for t in $(ctr_ -n k8s.io tasks ls -q 2>/dev/null); do
			ctr_ -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true
		done
		log "stopping containerd pid $pid"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 100; i++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$pid" 2>/dev/null; then
			log "containerd pid $pid still alive after 10s, sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null || true
		fi
	fi
	for pid in $(shim_pids); do
		log "killing leftover shim pid $pid and its children"
		kill_tree "$pid"
	done
	unmount_under
	rm -f "$PIDFILE" "$SOCK" "$SOCK.ttrpc" "$WORK/debug.sock"
}

case $CMD in
start) do_start ;;
stop) do_stop ;;
sock) echo "$SOCK" ;;
*) usage ;;
esac
