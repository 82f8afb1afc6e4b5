#!/bin/bash
# containerd-test.sh start|stop|restart|env DIR - a private containerd for tests.
#
#   start    installs containerd+runc if missing (apt-get, quiet, idempotent), writes DIR/containerd.toml
#            (root DIR/root, state DIR/state, opt plugin DIR/opt, CRI disabled), starts containerd on
#            DIR/ctd.sock with a namespace unique to this run (DIR/namespace), waits for readiness
#            (up to 10 s). Its pid is in DIR/containerd.pid, its log in DIR/containerd.log.
#   env      prints `export CTR_SOCKET=... CTR_NAMESPACE=... CTR_TEST_DIR=...`
#   restart  stops containerd (SIGTERM; tasks and their shims survive) and starts it again.
#   stop     kills every task of the namespace, removes containers, snapshots, leases, images and the
#            namespace, stops containerd, kills any shim left for this socket, unmounts what is left
#            under DIR, removes the runc state and stale shim sockets containerd 1.6 puts under
#            /run/containerd (hard-coded paths), the cgroup parents of the run, and DIR's data dirs.
#            Idempotent; DIR itself (and the log) stays for the caller to remove.
set -u

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || {
	echo "usage: $0 start|stop|restart|env DIR" >&2
	exit 2
}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
sock=$dir/ctd.sock
pidf=$dir/containerd.pid

ctrc() { ctr -a "$sock" -n "$(cat "$dir/namespace")" "$@"; }

alive() { [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; }

install_if_missing() {
	command -v containerd >/dev/null && command -v runc >/dev/null && command -v ctr >/dev/null &&
		return 0
	[ "$(id -u)" = 0 ] || {
		echo "containerd-test: containerd/runc missing (run as root to install)" >&2
		return 1
	}
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends containerd runc >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends containerd runc >/dev/null
	}
}

write_config() {
	cat >"$dir/containerd.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
}

launch() {
	# setsid: containerd does not get the test's terminal signals; stdin from /dev/null.
	setsid containerd --config "$dir/containerd.toml" </dev/null >>"$dir/containerd.log" 2>&1 &
	echo $! >"$pidf"
	for _ in $(seq 1 200); do
		if [ -S "$sock" ] && ctr -a "$sock" version >/dev/null 2>&1; then
			return 0
		fi
		alive || break
		sleep 0.05
	done
	echo "containerd-test: containerd did not become ready; log tail:" >&2
	tail -n 20 "$dir/containerd.log" >&2
	return 1
}

halt() {
	alive || return 0
	local pid
	pid=$(cat "$pidf")
	kill -CONT "$pid" 2>/dev/null # a test may have stopped it with SIGSTOP
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -KILL "$pid" 2>/dev/null
	# wait for the pid to go away (it is not our child after setsid+&, so poll)
	for _ in $(seq 1 40); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	rm -f "$pidf"
}

# Shims started by this containerd (matched on the exact -address argument), by pid.
our_shims() {
	local p
	for p in $(pgrep -f containerd-shim 2>/dev/null); do
		tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -qF -- "-address $sock " && echo "$p"
	done
}

clean_namespace() {
	local ns t c s l i n
	ns=$(cat "$dir/namespace")
	for t in $(ctrc tasks ls -q 2>/dev/null); do
		ctrc tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1
	done
	for t in $(ctrc tasks ls -q 2>/dev/null); do
		for _ in $(seq 1 50); do
			ctrc tasks rm -f "$t" >/dev/null 2>&1 && break
			sleep 0.1
		done
	done
	for c in $(ctrc containers ls -q 2>/dev/null); do
		ctrc containers rm "$c" >/dev/null 2>&1
	done
	for l in $(ctrc leases ls -q 2>/dev/null); do
		ctrc leases rm "$l" >/dev/null 2>&1
	done
	# snapshots: remove leaves first, repeat until nothing moves
	for _ in 1 2 3 4 5 6 7 8; do
		n=0
		for s in $(ctrc snapshots ls 2>/dev/null | awk 'NR>1 {print $1}'); do
			ctrc snapshots rm "$s" >/dev/null 2>&1 && n=$((n + 1))
		done
		[ "$n" = 0 ] && break
	done
	for i in $(ctrc images ls -q 2>/dev/null); do
		ctrc images rm "$i" >/dev/null 2>&1
	done
	ctr -a "$sock" namespaces rm "$ns" >/dev/null 2>&1
	true
}

case "$cmd" in
start)
	install_if_missing || exit 1
	if alive; then
		echo "containerd-test: already running (pid $(cat "$pidf"))" >&2
		exit 0
	fi
	[ -s "$dir/namespace" ] || echo "vplcell-test-$$-$(date +%s%N | tail -c 7)" >"$dir/namespace"
	mkdir -p "$dir/root" "$dir/state" "$dir/opt"
	write_config
	launch || exit 1
	;;
restart)
	alive || {
		echo "containerd-test: not running" >&2
		exit 1
	}
	halt
	launch || exit 1
	;;
env)
	[ -s "$dir/namespace" ] || {
		echo "containerd-test: not started in $dir" >&2
		exit 1
	}
	echo "export CTR_SOCKET=$sock CTR_NAMESPACE=$(cat "$dir/namespace") CTR_TEST_DIR=$dir"
	;;
stop)
	if [ -s "$dir/namespace" ] && alive; then
		kill -CONT "$(cat "$pidf")" 2>/dev/null
		clean_namespace
	fi
	halt
	# shims whose containerd went away before their tasks were deleted
	for p in $(our_shims); do kill -KILL "$p" 2>/dev/null; done
	for _ in $(seq 1 40); do
		[ -z "$(our_shims)" ] && break
		sleep 0.05
	done
	# mounts left under DIR (rootfs of a task whose shim was killed), deepest first
	grep -F " $dir/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do
		umount -l "$m" 2>/dev/null
	done
	if [ -s "$dir/namespace" ]; then
		ns=$(cat "$dir/namespace")
		rm -rf "/run/containerd/runc/$ns" "/run/containerd/fifo/$ns"
		# cgroup parents of the run's containers (see tests/sandbox/ctr_smoke.c: cgroupsPath
		# /vplcell-test/<ns>-<id>): remove empty leaves of this namespace, then the parent
		# if it is empty
		for cg in /sys/fs/cgroup/*/vplcell-test /sys/fs/cgroup/unified/vplcell-test; do
			[ -d "$cg" ] || continue
			for leaf in "$cg/$ns"-*; do [ -d "$leaf" ] && rmdir "$leaf" 2>/dev/null; done
			rmdir "$cg" 2>/dev/null
		done
		# ctr's default cgroupsPath is /<namespace>/<id>
		for cg in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/unified/"$ns"; do
			[ -d "$cg" ] && rmdir "$cg" 2>/dev/null
		done
	fi
	# stale shim sockets: files in /run/containerd/s that nobody listens on any more
	if [ -d /run/containerd/s ]; then
		for f in /run/containerd/s/*; do
			[ -S "$f" ] || continue
			grep -qF " $f" /proc/net/unix || rm -f "$f"
		done
	fi
	rmdir /run/containerd/s /run/containerd/runc /run/containerd/fifo /run/containerd 2>/dev/null
	rm -rf "$dir/root" "$dir/state" "$dir/opt" "$sock" "$sock.ttrpc"
	true
	;;
*)
	echo "usage: $0 start|stop|restart|env DIR" >&2
	exit 2
	;;
esac
