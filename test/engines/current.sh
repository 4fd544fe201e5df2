#!/usr/bin/env bash
# Build and run a current Docker engine (moby v2, built from the Go module
# proxy) next to Debian's docker.io 20.10, on its own socket, data root and
# exec root.
#
# Usage: test/engines/current.sh build|bin|start|stop|status|host
#   bin     build if needed, then print the dir holding dockerd,
#           docker-proxy and runc (for a second engine of a test's own).
#   build   build dockerd + docker-proxy (github.com/moby/moby/v2) and runc
#           (github.com/opencontainers/runc, -tags seccomp) into
#           /var/cache/docker-cni/engines/<moby-version>/; no-op when cached.
#   start   build if needed, then start dockerd unless already running.
#           dockerd manages its own containerd (Debian's /usr/bin/containerd,
#           socket <exec-root>/containerd/containerd.sock); the built runc is
#           the default runtime ("e2e-runc"). Firewall untouched
#           (--iptables=false --ip6tables=false) and its default bridge is
#           its own interface e2ecur0 (10.239.254.1/24), not docker0; see the
#           comments at the dockerd flags for why.
#   stop    stop the dockerd this script started (pidfile); its containerd
#           exits with it. Removes e2ecur0 when nothing is attached.
#   status  exit 0 when the engine answers, 1 otherwise.
#   host    print the DOCKER_HOST value.
#
# Environment overrides:
#   MOBY_VERSION (v2.0.0-beta.24), RUNC_VERSION (v1.5.2),
#   E2E_CACHE_ROOT (/var/cache/docker-cni/engines),
#   E2E_DOCKERD_EXTRA_ARGS (extra dockerd flags, word-split),
#   E2E_CURRENT_BRIDGE (e2ecur0), E2E_CURRENT_BRIDGE_CIDR (10.239.254.1/24),
#   E2E_LOG_DIR (/var/log/docker-cni-e2e).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$HERE/lib.sh"

MOBY_VERSION=${MOBY_VERSION:-v2.0.0-beta.24}
RUNC_VERSION=${RUNC_VERSION:-v1.5.2}
E2E_CACHE_ROOT=${E2E_CACHE_ROOT:-/var/cache/docker-cni/engines}
BIN_DIR=$E2E_CACHE_ROOT/$MOBY_VERSION
STAMP="moby=$MOBY_VERSION runc=$RUNC_VERSION"

RUN_DIR=/run/docker-cni-e2e/current
SOCK=$RUN_DIR/docker.sock
DOCKER_HOST_URL=unix://$SOCK
EXEC_ROOT=$RUN_DIR/exec
DATA_ROOT=/var/lib/docker-cni-e2e/current
# Written by dockerd itself (--pidfile).
PIDFILE=$RUN_DIR/docker.pid
CONFIG_FILE=$RUN_DIR/daemon.json
CGROUP_PARENT=/docker-cni-e2e-current
# Own default bridge (see do_start for why not --bridge=none).
CUR_BRIDGE=${E2E_CURRENT_BRIDGE:-e2ecur0}
CUR_BRIDGE_CIDR=${E2E_CURRENT_BRIDGE_CIDR:-10.239.254.1/24}
RUNTIME_NAME=e2e-runc

BUILD_LOG=$E2E_LOG_DIR/current-build.log
DAEMON_LOG=$E2E_LOG_DIR/current-dockerd.log

cached() {
	[ -x "$BIN_DIR/dockerd" ] && [ -x "$BIN_DIR/docker-proxy" ] && [ -x "$BIN_DIR/runc" ] &&
		[ "$(cat "$BIN_DIR/STAMP" 2>/dev/null)" = "$STAMP" ]
}

do_build() {
	need_root
	ensure_log_dir
	if cached; then
		log "cached: $BIN_DIR ($STAMP)"
		return 0
	fi
	command -v go >/dev/null || die "go not found in PATH (need Go >= the moby module's go directive)"
	command -v gcc >/dev/null || die "gcc not found (runc needs cgo); run test/engines/install-deps.sh"
	pkg-config --exists libseccomp 2>/dev/null || die "libseccomp-dev not found (runc -tags seccomp); run test/engines/install-deps.sh"

	mkdir -p "$E2E_CACHE_ROOT"
	local stage
	stage=$(mktemp -d "$E2E_CACHE_ROOT/.build-$MOBY_VERSION.XXXXXX")
	# shellcheck disable=SC2064
	trap "rm -rf '$stage'" EXIT

	log "building moby $MOBY_VERSION + runc $RUNC_VERSION into $BIN_DIR (log: $BUILD_LOG)"
	local start end
	start=$(date +%s)
	{
		echo "=== $(date -Is) build $STAMP"
		go version
	} >"$BUILD_LOG"

	# Build env: module mode only, from the module proxy; ignore any
	# workspace or GOFLAGS of the caller. `go install pkg@version` honours the
	# module's own go.mod/go.sum (moby v2 has no replace directives).
	local -a goenv=(env GOWORK=off GOFLAGS=-buildvcs=false GO111MODULE=on GOBIN="$stage")
	local v=${MOBY_VERSION#v}
	local ld="-w"
	ld+=" -X github.com/moby/moby/v2/dockerversion.Version=$v"
	ld+=" -X github.com/moby/moby/v2/dockerversion.GitCommit=$MOBY_VERSION"
	ld+=" -X github.com/moby/moby/v2/dockerversion.BuildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
	ld+=" -X github.com/moby/moby/v2/dockerversion.PlatformName=docker-cni-e2e"

	# dockerd + docker-proxy: static, no cgo (as moby's hack/make/binary-*
	# does for docker-proxy; dockerd needs no cgo for the features we use).
	if ! "${goenv[@]}" CGO_ENABLED=0 go install -trimpath \
		-tags "netgo osusergo static_build nri_no_wasm" -ldflags "$ld" \
		"github.com/moby/moby/v2/cmd/dockerd@$MOBY_VERSION" \
		"github.com/moby/moby/v2/cmd/docker-proxy@$MOBY_VERSION" >>"$BUILD_LOG" 2>&1; then
		tail_log "$BUILD_LOG"
		die "building dockerd/docker-proxy $MOBY_VERSION failed; see $BUILD_LOG"
	fi

	# runc: cgo + libseccomp. runc's Makefile default tags also include
	# libpathrs (a Rust library); we use the pure-Go pathrs-lite fallback.
	if ! "${goenv[@]}" CGO_ENABLED=1 go install -trimpath -buildmode=pie \
		-tags "seccomp urfave_cli_no_docs" \
		-ldflags "-X main.gitCommit=$RUNC_VERSION" \
		"github.com/opencontainers/runc@$RUNC_VERSION" >>"$BUILD_LOG" 2>&1; then
		tail_log "$BUILD_LOG"
		die "building runc $RUNC_VERSION failed; see $BUILD_LOG"
	fi

	"$stage/dockerd" --version >>"$BUILD_LOG" 2>&1 || die "built dockerd does not run; see $BUILD_LOG"
	"$stage/runc" --version >>"$BUILD_LOG" 2>&1 || die "built runc does not run; see $BUILD_LOG"
	# runc prints a "libseccomp: X.Y.Z" line only when built with seccomp.
	"$stage/runc" --version | grep -q '^libseccomp:' ||
		die "built runc has no seccomp support (libseccomp not linked?)"

	end=$(date +%s)
	printf '%s\n' "$STAMP" >"$stage/STAMP"
	{
		echo "built: $(date -Is)"
		echo "seconds: $((end - start))"
		go version
		"$stage/dockerd" --version
		"$stage/runc" --version
	} >"$stage/BUILD_INFO"
	echo "=== build took $((end - start))s" >>"$BUILD_LOG"

	rm -rf "$BIN_DIR.old"
	[ -e "$BIN_DIR" ] && mv "$BIN_DIR" "$BIN_DIR.old"
	mv "$stage" "$BIN_DIR"
	chmod 755 "$BIN_DIR"
	rm -rf "$BIN_DIR.old"
	trap - EXIT
	log "built in $((end - start))s: $(cat "$BIN_DIR/STAMP") -> $BIN_DIR"
}

write_config() {
	# Own config file: keeps this engine from reading /etc/docker/daemon.json,
	# which belongs to Debian's engine.
	cat >"$CONFIG_FILE" <<EOF
{
  "runtimes": {
    "$RUNTIME_NAME": { "path": "$BIN_DIR/runc" }
  },
  "default-runtime": "$RUNTIME_NAME"
}
EOF
}

# ensure_bridge: create the current engine's own default bridge interface
# (dockerd -b NAME requires a non-docker0 bridge to exist already).
ensure_bridge() {
	command -v ip >/dev/null || die "ip (iproute2) not found"
	if ! ip link show dev "$CUR_BRIDGE" >/dev/null 2>&1; then
		ip link add name "$CUR_BRIDGE" type bridge || die "cannot create bridge $CUR_BRIDGE"
	fi
	if ! ip -4 -o addr show dev "$CUR_BRIDGE" | grep -qw "inet $CUR_BRIDGE_CIDR"; then
		ip addr add "$CUR_BRIDGE_CIDR" dev "$CUR_BRIDGE" || die "cannot add $CUR_BRIDGE_CIDR to $CUR_BRIDGE"
	fi
	ip link set dev "$CUR_BRIDGE" up || die "cannot bring $CUR_BRIDGE up"
}

do_start() {
	need_root
	ensure_log_dir
	command -v docker >/dev/null || die "docker CLI not found"
	if engine_answers "$DOCKER_HOST_URL"; then
		log "already running on $DOCKER_HOST_URL"
		return 0
	fi
	if pid_alive "$PIDFILE"; then
		die "dockerd pid $(cat "$PIDFILE") is alive but $DOCKER_HOST_URL does not answer; run '$0 stop' first (log: $DAEMON_LOG)"
	fi
	do_build
	command -v containerd >/dev/null || die "containerd not found in PATH (apt-get install containerd)"
	command -v containerd-shim-runc-v2 >/dev/null || die "containerd-shim-runc-v2 not found in PATH (apt-get install containerd)"

	mkdir -p "$RUN_DIR" "$EXEC_ROOT" "$DATA_ROOT"
	rm -f "$PIDFILE" "$SOCK"
	write_config
	ensure_bridge

	# shellcheck disable=SC2206
	local -a extra=(${E2E_DOCKERD_EXTRA_ARGS:-})
	local -a args=(
		--config-file "$CONFIG_FILE"
		--host "$DOCKER_HOST_URL"
		--data-root "$DATA_ROOT"
		--exec-root "$EXEC_ROOT"
		--pidfile "$PIDFILE"
		# NOT --bridge=none: with it, moby deletes the host's "docker0" link at
		# every start (removeDefaultBridgeInterface), i.e. the default bridge
		# of Debian's 20.10 engine. Use a bridge of our own instead.
		--bridge "$CUR_BRIDGE"
		# Both engines flush/delete the shared DOCKER, DOCKER-ISOLATION-STAGE-*
		# chains when they start (and nftables mode "cleans" 20.10's iptables
		# rules), so this engine must not touch the firewall at all.
		--iptables=false
		--ip6tables=false
		--ip-forward=false
		--ip-masq=false
		--userland-proxy-path "$BIN_DIR/docker-proxy"
		--exec-opt native.cgroupdriver=cgroupfs
		--cgroup-parent "$CGROUP_PARENT"
		"${extra[@]}"
	)
	{
		echo "=== $(date -Is) starting: $BIN_DIR/dockerd ${args[*]}"
	} >>"$DAEMON_LOG"
	close_inherited_fds
	# Our bin dir first in PATH, so nothing picks Debian's 20.10 docker-proxy.
	PATH="$BIN_DIR:$PATH" nohup setsid "$BIN_DIR/dockerd" "${args[@]}" \
		</dev/null >>"$DAEMON_LOG" 2>&1 &
	local pid=$!
	wait_engine "$DOCKER_HOST_URL" "$pid" "$DAEMON_LOG" 60
	[ "$(cat "$PIDFILE" 2>/dev/null)" = "$pid" ] || die "dockerd pid $pid answers but $PIDFILE says '$(cat "$PIDFILE" 2>/dev/null)'"
	log "running (pid $pid) on $DOCKER_HOST_URL; log: $DAEMON_LOG"
}

do_stop() {
	need_root
	stop_pid "$PIDFILE" "current dockerd"
	rm -f "$SOCK"
	# Remove our bridge when nothing is attached to it any more.
	if [ -d "/sys/class/net/$CUR_BRIDGE/brif" ] && [ -z "$(ls -A "/sys/class/net/$CUR_BRIDGE/brif")" ]; then
		ip link del dev "$CUR_BRIDGE" 2>/dev/null || true
	fi
}

case "${1:-}" in
build) do_build ;;
bin)
	do_build
	echo "$BIN_DIR"
	;;
start) do_start ;;
stop) do_stop ;;
status) engine_answers "$DOCKER_HOST_URL" ;;
host) echo "$DOCKER_HOST_URL" ;;
*)
	echo "usage: $0 build|bin|start|stop|status|host" >&2
	exit 2
	;;
esac
