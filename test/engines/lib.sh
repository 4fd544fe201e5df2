# shellcheck shell=bash
# Shared helpers for the test/engines/*.sh scripts. Source it, don't run it.

E2E_LOG_DIR=${E2E_LOG_DIR:-/var/log/docker-cni-e2e}

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

need_root() {
	[ "$(id -u)" = 0 ] || die "must run as root (uid 0), not uid $(id -u)"
}

ensure_log_dir() {
	mkdir -p "$E2E_LOG_DIR" || die "cannot create log dir $E2E_LOG_DIR"
}

# tail_log FILE [N]: print to stderr the last N lines of FILE, starting no
# earlier than the last "=== " marker line (the start of the latest run).
tail_log() {
	local f=$1 n=${2:-40}
	{
		echo "----- last lines (max $n) of $f -----"
		if [ -r "$f" ]; then
			tac "$f" | sed '/^=== /q' | tac | tail -n "$n"
		else
			echo "(no log)"
		fi
		echo "----- end of $f -----"
	} >&2
}

# engine_answers HOST: true when `docker info` succeeds against HOST.
engine_answers() {
	DOCKER_HOST=$1 timeout 10 docker info >/dev/null 2>&1
}

# pid_alive PIDFILE: true when PIDFILE names a running dockerd process (the
# name check guards against a stale pidfile whose pid was reused).
pid_alive() {
	local pf=$1 pid
	[ -s "$pf" ] || return 1
	pid=$(cat "$pf")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ]
}

# wait_engine HOST PID LOGFILE [SECONDS]: wait until the engine at HOST
# answers; fail loudly (log tail) if PID dies or time runs out.
wait_engine() {
	local host=$1 pid=$2 logf=$3 secs=${4:-60} i
	for ((i = 0; i < secs; i++)); do
		if engine_answers "$host"; then
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail_log "$logf"
			die "dockerd (pid $pid) exited before $host answered; see $logf"
		fi
		sleep 1
	done
	tail_log "$logf"
	die "dockerd (pid $pid) did not answer on $host within ${secs}s; see $logf"
}

# stop_pid PIDFILE NAME: SIGTERM the pid in PIDFILE, wait up to 30s, then
# SIGKILL; remove the pidfile. Only ever touches the pid in PIDFILE.
stop_pid() {
	local pf=$1 name=$2 pid i
	if ! pid_alive "$pf"; then
		log "$name: not running (no live pid in $pf)"
		rm -f "$pf"
		return 0
	fi
	pid=$(cat "$pf")
	log "$name: stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 30; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name: pid $pid still alive after 30s, sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		sleep 1
	fi
	rm -f "$pf"
	log "$name: stopped"
}

# close_inherited_fds closes every file descriptor above 2 of this shell,
# so that a daemon started from it does not keep what its caller had open
# (a test runner's lock or pipes) for as long as it runs.
close_inherited_fds() {
	local fd
	for fd in /proc/$$/fd/*; do
		fd=${fd##*/}
		[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
	done
	return 0
}
