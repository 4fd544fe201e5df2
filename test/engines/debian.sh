#!/usr/bin/env bash
# Run Debian's docker.io (20.10) engine on the default socket, without
# systemd.
#
# Usage: test/engines/debian.sh start|stop|status|host
#   start   if nothing answers on unix:///var/run/docker.sock, start
#           /usr/sbin/dockerd in the background (it manages its own
#           containerd) and wait up to 60s for `docker info`.
#   stop    stop the dockerd this script started (pidfile); an engine it
#           did not start is left alone.
#   status  exit 0 when the engine answers, 1 otherwise.
#   host    print the DOCKER_HOST value.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

DOCKERD=${DEBIAN_DOCKERD:-/usr/sbin/dockerd}
DOCKER_HOST_URL=unix:///var/run/docker.sock
RUN_DIR=/run/docker-cni-e2e/debian
# Our own pidfile records that *this script* started the engine. dockerd's
# own --pidfile stays the default /var/run/docker.pid.
PIDFILE=$RUN_DIR/dockerd.pid
DAEMON_LOG=$E2E_LOG_DIR/debian-dockerd.log

do_start() {
	need_root
	ensure_log_dir
	command -v docker >/dev/null || die "docker CLI not found"
	if engine_answers "$DOCKER_HOST_URL"; then
		log "an engine already answers on $DOCKER_HOST_URL"
		return 0
	fi
	[ -x "$DOCKERD" ] || die "$DOCKERD not found (apt-get install docker.io, or run test/engines/install-deps.sh)"
	if pid_alive "$PIDFILE"; then
		die "dockerd pid $(cat "$PIDFILE") is alive but $DOCKER_HOST_URL does not answer; run '$0 stop' first (log: $DAEMON_LOG)"
	fi
	if [ -s /var/run/docker.pid ] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
		die "a dockerd not started by this script (pid $(cat /var/run/docker.pid), /var/run/docker.pid) is running but does not answer on $DOCKER_HOST_URL; not touching it"
	fi
	command -v containerd >/dev/null || die "containerd not found in PATH (apt-get install containerd)"
	mkdir -p "$RUN_DIR"

	echo "=== $(date -Is) starting: $DOCKERD -H $DOCKER_HOST_URL" >>"$DAEMON_LOG"
	close_inherited_fds
	nohup setsid "$DOCKERD" -H "$DOCKER_HOST_URL" </dev/null >>"$DAEMON_LOG" 2>&1 &
	local pid=$!
	echo "$pid" >"$PIDFILE"
	wait_engine "$DOCKER_HOST_URL" "$pid" "$DAEMON_LOG" 60
	log "running (pid $pid) on $DOCKER_HOST_URL; log: $DAEMON_LOG"
}

do_stop() {
	need_root
	if [ ! -s "$PIDFILE" ]; then
		if engine_answers "$DOCKER_HOST_URL"; then
			log "the engine on $DOCKER_HOST_URL was not started by this script; leaving it alone"
		else
			log "not running"
		fi
		return 0
	fi
	stop_pid "$PIDFILE" "debian dockerd"
}

case "${1:-}" in
start) do_start ;;
stop) do_stop ;;
status) engine_answers "$DOCKER_HOST_URL" ;;
host) echo "$DOCKER_HOST_URL" ;;
*)
	echo "usage: $0 start|stop|status|host" >&2
	exit 2
	;;
esac
