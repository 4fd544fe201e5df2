#!/usr/bin/env bash
# Run the current Docker engine (moby v2, built and cached by
# test/engines/current.sh) with its firewall ON, in a network namespace of
# its own: the compatibility matrix's "current, iptables" and "current,
# nftables" engines. The namespace keeps its rules, its bridges and its
# FORWARD policy away from the host's engines (Debian's 20.10 and the
# suite's current engine, which runs with --iptables=false beside it), so
# each firewall backend can be tried as a user would run it.
#
# Usage: test/compat/engine.sh start|stop|host|netns <backend>
#   backend  iptables or nftables (dockerd --firewall-backend)
#   start    make the netns (loopback up, bridged traffic through the
#            firewall), start dockerd in it (it starts its own containerd
#            there) and wait for it; import the test image. A no-op when it
#            answers already. nftables needs the nft tool (Debian's
#            nftables; test/compat/deps.sh installs it).
#   stop     stop that dockerd, then remove the netns. Its data root stays
#            (/var/lib/docker-cni-compat/<backend>: the test image).
#   host     print its DOCKER_HOST.
#   netns    print the path of its network namespace.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../engines/lib.sh
. "$HERE/../engines/lib.sh"

MOBY_VERSION=${MOBY_VERSION:-v2.0.0-beta.24}
E2E_CACHE_ROOT=${E2E_CACHE_ROOT:-/var/cache/docker-cni/engines}
BIN_DIR=$E2E_CACHE_ROOT/$MOBY_VERSION

[ $# -eq 2 ] || { echo "usage: $0 start|stop|host|netns iptables|nftables" >&2; exit 2; }
CMD=$1 BACKEND=$2
case $BACKEND in iptables | nftables) ;; *) die "backend $BACKEND: want iptables or nftables" ;; esac

RUN_DIR=/run/docker-cni-compat/engine-$BACKEND
NETNS=$RUN_DIR/netns
SOCK=$RUN_DIR/docker.sock
DOCKER_HOST_URL=unix://$SOCK
EXEC_ROOT=$RUN_DIR/exec
DATA_ROOT=/var/lib/docker-cni-compat/$BACKEND
PIDFILE=$RUN_DIR/docker.pid
CONFIG_FILE=$RUN_DIR/daemon.json
DAEMON_LOG=$E2E_LOG_DIR/compat-$BACKEND-dockerd.log

in_ns() { nsenter --net="$NETNS" "$@"; }

netns_mounted() { mountpoint -q "$NETNS" 2>/dev/null; }

make_netns() {
	netns_mounted && return 0
	mkdir -p "$RUN_DIR"
	touch "$NETNS"
	unshare --net="$NETNS" true || die "cannot make netns $NETNS"
	in_ns ip link set lo up
	# As on hosts that run dockerd: bridged traffic passes the firewall
	# (per namespace since Linux 5.3).
	in_ns sh -c 'echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables; echo 1 >/proc/sys/net/bridge/bridge-nf-call-ip6tables' 2>/dev/null || true
}

remove_netns() {
	if netns_mounted; then
		umount "$NETNS" 2>/dev/null || umount -l "$NETNS" 2>/dev/null || true
	fi
	rm -f "$NETNS"
}

do_start() {
	need_root
	ensure_log_dir
	if engine_answers "$DOCKER_HOST_URL"; then
		log "$BACKEND engine already answers on $DOCKER_HOST_URL"
		return 0
	fi
	if pid_alive "$PIDFILE"; then
		die "dockerd pid $(cat "$PIDFILE") is alive but $DOCKER_HOST_URL does not answer; run '$0 stop $BACKEND' first (log: $DAEMON_LOG)"
	fi
	bash "$HERE/../engines/current.sh" build
	if [ "$BACKEND" = nftables ]; then
		command -v nft >/dev/null || die "nft not found: the nftables backend needs it (apt-get install nftables; test/compat/deps.sh)"
	fi
	make_netns
	mkdir -p "$EXEC_ROOT" "$DATA_ROOT"
	rm -f "$PIDFILE" "$SOCK"
	cat >"$CONFIG_FILE" <<EOF
{
  "runtimes": { "e2e-runc": { "path": "$BIN_DIR/runc" } },
  "default-runtime": "e2e-runc"
}
EOF
	local -a args=(
		--config-file "$CONFIG_FILE"
		--host "$DOCKER_HOST_URL"
		--data-root "$DATA_ROOT"
		--exec-root "$EXEC_ROOT"
		--pidfile "$PIDFILE"
		--firewall-backend "$BACKEND"
		# No default bridge: nothing in the matrix uses it, and the namespace
		# has no docker0 of the host's to disturb.
		--bridge none
		--userland-proxy-path "$BIN_DIR/docker-proxy"
		--exec-opt native.cgroupdriver=cgroupfs
		--cgroup-parent "/docker-cni-compat-$BACKEND"
	)
	echo "=== $(date -Is) starting in $NETNS: $BIN_DIR/dockerd ${args[*]}" >>"$DAEMON_LOG"
	close_inherited_fds
	PATH="$BIN_DIR:$PATH" nohup setsid nsenter --net="$NETNS" "$BIN_DIR/dockerd" "${args[@]}" \
		</dev/null >>"$DAEMON_LOG" 2>&1 &
	local pid=$!
	wait_engine "$DOCKER_HOST_URL" "$pid" "$DAEMON_LOG" 60
	if [ "$BACKEND" = iptables ]; then
		# dockerd sets the FORWARD policy to DROP as it makes its default
		# bridge; without one (--bridge none) it leaves it: set it as every
		# host running this engine has it.
		in_ns iptables -w 5 -P FORWARD DROP
	fi
	bash "$HERE/../engines/image.sh" "$DOCKER_HOST_URL"
	log "$BACKEND engine running (pid $pid) in $NETNS on $DOCKER_HOST_URL; log: $DAEMON_LOG"
}

do_stop() {
	need_root
	stop_pid "$PIDFILE" "compat $BACKEND dockerd"
	rm -f "$SOCK"
	remove_netns
	# What dockerd left mounted under its exec root, then the run dir.
	awk -v d="$RUN_DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do umount -l "$m" 2>/dev/null || true; done
	rm -rf "$RUN_DIR"
	rmdir "$(dirname "$RUN_DIR")" 2>/dev/null || true
}

case $CMD in
start) do_start ;;
stop) do_stop ;;
host) echo "$DOCKER_HOST_URL" ;;
netns) echo "$NETNS" ;;
*) die "unknown command $CMD (start|stop|host|netns)" ;;
esac
