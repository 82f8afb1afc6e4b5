#!/bin/bash
# scripts/stopservices.sh [--now] [--purge] [--leave-swarm] - stops what scripts/deploy.sh
# started, as root.
#
# In this order: the swarm stack, when `deploy.sh --swarm` or `deploy.sh HOST...` deployed one
# (PREFIX/run/swarm.stack): `docker stack rm`, then waits (at most 150 s: the workers drain for
# their SHUTDOWN_GRACE) until no service, network or container of the stack is left, on this
# host and on every HOST (through VPLCELL_REMOTE, as deploy.sh); --now sends the jail containers
# on this host a second SIGTERM, which cuts their tasks short. The swarm itself, its nodes and
# the docker secrets stay (the next deploy.sh reuses them); --leave-swarm makes every HOST and
# then this host leave it (`docker swarm leave --force`); --purge also removes the secrets and
# configs deploy.sh created. DOCKER_HOST is the one deploy.sh used unless set. Then: the proxy; the workers (SIGTERM: each lets its running tasks finish, up to its
# SHUTDOWN_GRACE, then removes its containers; --now sends a second SIGTERM at once, which cuts
# them short); then, in containerd, every task, container, lease and active snapshot of our
# namespace (what a killed worker may have left); containerd itself; the shims of our socket that
# outlived it, and the processes left in our containers' cgroups; mounts left under the prefix;
# containerd's state directory (runtime state: bundles, shim log FIFOs); containerd's host-wide
# runc state and FIFO directories of our namespace and its stale shim sockets in
# /run/containerd/s; the cgroups of our workers' containers; the registry; the workers' state
# directories (the tasks' FIFOs) and pid files. Processes are found by their pid files and,
# should a pid file be lost, by their exact command line (our binaries and configuration files
# under the prefix): nothing else on the host is signalled.
#
# Kept, so that the next deploy.sh gives the same URL at once: the prefix's configuration,
# secrets (URLPATH, route and worker secrets, registry password), certificate, logs, registry
# storage, and containerd's image store. --purge removes the whole prefix as well (the next
# deploy.sh then makes a new URL and certificate). The image cache of images/*/build.sh
# (/var/cache/vplcell/images) is shared with `make image` and the tests and is never removed.
#
# Idempotent: with nothing running it only checks and says so.
# Environment: VPLCELL_PREFIX (default /var/lib/vplcell), as for deploy.sh.
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${VPLCELL_PREFIX:-/var/lib/vplcell}
now=0 purge=0 leave=0
for a in "$@"; do
	case "$a" in
	--now) now=1 ;;
	--purge) purge=1 ;;
	--leave-swarm) leave=1 ;;
	*)
		echo "usage: $0 [--now] [--purge] [--leave-swarm]" >&2
		exit 2
		;;
	esac
done

say() { printf 'stopservices: %s\n' "$*"; }
die() {
	printf 'stopservices: error: %s\n' "$*" >&2
	exit 1
}
[ "$(id -u)" = 0 ] || die "run as root"
case "$PREFIX" in /*) ;; *) die "VPLCELL_PREFIX must be an absolute path" ;; esac
PREFIX=$(realpath -m "$PREFIX")
[ "$PREFIX" != / ] || die "VPLCELL_PREFIX cannot be /"
if [ ! -d "$PREFIX" ]; then
	say "nothing to stop: $PREFIX does not exist"
	exit 0
fi
exec 8>>"$PREFIX/.lock"
flock -w 600 8 || die "another deploy.sh or stopservices.sh holds $PREFIX/.lock"

CTD=$PREFIX/containerd
SOCK=$CTD/containerd.sock
NS=$(cat "$CTD/namespace" 2>/dev/null || true)
failed=0

cmdline_of() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null; }

# pids whose command line contains the fixed string PATTERN (exact paths under the prefix); a
# trailing blank in PATTERN also matches the end of the command line
pids_matching() {
	local re
	re=$(printf '%s' "${1% }" | sed 's/[][\.*^$+?(){}|]/\\&/g')
	[ "${1% }" = "$1" ] || re="$re( |\$)"
	pgrep -f -- "$re" 2>/dev/null || true
}

# stop_matching NAME PATTERN SECONDS [second-TERM]: the pid file's process and any other process
# with PATTERN in its command line
stop_matching() {
	local name=$1 pat=$2 secs=$3 twice=${4:-0} pids p n
	pids=$(
		if [ -s "$PREFIX/run/$name.pid" ]; then
			p=$(cat "$PREFIX/run/$name.pid")
			case "$(cmdline_of "$p")" in *"$pat"*) echo "$p" ;; esac
		fi
		pids_matching "$pat"
	)
	pids=$(echo "$pids" | sort -u | tr '\n' ' ')
	if [ -z "${pids// /}" ]; then
		rm -f "$PREFIX/run/$name.pid"
		return 1
	fi
	# shellcheck disable=SC2086
	kill -TERM $pids 2>/dev/null
	if [ "$twice" = 1 ]; then
		sleep 0.2
		# shellcheck disable=SC2086
		kill -TERM $pids 2>/dev/null
	fi
	n=$((secs * 10))
	for p in $pids; do
		while [ "$n" -gt 0 ] && kill -0 "$p" 2>/dev/null; do
			sleep 0.1
			n=$((n - 1))
		done
	done
	for p in $pids; do
		if kill -0 "$p" 2>/dev/null; then
			say "$name: pid $p did not stop in $secs s: SIGKILL"
			kill -KILL "$p" 2>/dev/null
		fi
	done
	for p in $pids; do
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
	done
	rm -f "$PREFIX/run/$name.pid"
	say "$name: stopped (pid ${pids% })"
	return 0
}

# ---- the swarm stack (deploy.sh --swarm / HOST...) -----------------------------------------------
if [ -s "$PREFIX/run/swarm.stack" ] || [ "$leave" = 1 ]; then
	STACK=$(cat "$PREFIX/run/swarm.stack" 2>/dev/null)
	if [ -z "${DOCKER_HOST:-}" ] && [ -s "$PREFIX/run/swarm.docker-host" ]; then
		DOCKER_HOST=$(head -n 1 "$PREFIX/run/swarm.docker-host")
		export DOCKER_HOST
	fi
	export DOCKER_CONFIG=$PREFIX/docker
	REMOTE=${VPLCELL_REMOTE:-$(cat "$PREFIX/run/swarm.remote" 2>/dev/null)}
	REMOTE=${REMOTE:-ssh -o BatchMode=yes}
	nodes=$(cat "$PREFIX/run/swarm.nodes" 2>/dev/null)
	remote() { # HOST LINE
		# shellcheck disable=SC2086 # REMOTE is a command and its arguments
		timeout 60 $REMOTE "$1" "$2" </dev/null 8>&-
	}
	stack_left() { # what of the stack is left, on this host and the nodes: empty when nothing
		docker service ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
		docker network ls -q --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
		docker ps -aq --filter "label=com.docker.stack.namespace=$STACK" 2>/dev/null
		for h in $nodes; do
			remote "$h" "docker ps -aq --filter label=com.docker.stack.namespace=$STACK" 2>/dev/null
		done
	}
	if ! docker version >/dev/null 2>&1; then
		if [ -n "$STACK" ]; then
			say "swarm: no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}: stack '$STACK' not removed"
			failed=1
		else
			say "swarm: no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}: nothing to leave"
		fi
	elif [ -n "$STACK" ]; then
		t0=$(date +%s)
		if [ -n "$(docker stack services -q "$STACK" 2>/dev/null)" ]; then
			jails=$(docker ps -q --filter "label=com.docker.swarm.service.name=${STACK}_jail")
			docker stack rm "$STACK" >/dev/null 2>&1
			if [ "$now" = 1 ] && [ -n "$jails" ]; then
				sleep 0.5
				# shellcheck disable=SC2086
				docker kill -s TERM $jails >/dev/null 2>&1
			fi
		fi
		end=$((t0 + 150))
		while [ -n "$(stack_left)" ] && [ "$(date +%s)" -lt "$end" ]; do sleep 0.5; done
		if [ -n "$(stack_left)" ]; then
			say "swarm: stack $STACK not gone after 150 s (docker stack ps $STACK)"
			failed=1
		else
			say "swarm: stack $STACK removed, no container of it left ($(($(date +%s) - t0)) s)"
			rm -f "$PREFIX/run/swarm.stack"
		fi
	fi
	if [ "$failed" = 0 ] && [ "$purge" = 1 ]; then
		for k in secret config; do
			for n in $(docker "$k" ls -q --filter "label=org.vplcell.prefix=$PREFIX" 2>/dev/null); do
				docker "$k" rm "$n" >/dev/null 2>&1 || failed=1
			done
		done
		say "swarm: removed the secrets and configs of $PREFIX"
	fi
	if [ "$leave" = 1 ] && [ "$failed" = 0 ]; then
		for h in $nodes; do
			if remote "$h" "docker swarm leave --force" >/dev/null 2>&1; then
				say "swarm: node $h left the swarm"
			else
				say "swarm: node $h could not leave the swarm (not in one?)"
			fi
		done
		rm -f "$PREFIX/run/swarm.nodes"
		if docker swarm leave --force >/dev/null 2>&1; then say "swarm: this host left the swarm"; fi
	fi
fi

# ---- proxy and workers --------------------------------------------------------------------------
stop_matching proxy "/vpl-proxy -f $PREFIX/proxy.conf " 15 || true
# the workers' names, from their configuration files and pid files
workers=$(
	for f in "$PREFIX"/jail*.conf "$PREFIX"/run/jail*.pid; do
		[ -e "$f" ] || continue
		n=${f##*/jail}
		n=${n%.conf}
		n=${n%.pid}
		[[ $n =~ ^[0-9]+$ ]] && echo "$n"
	done | sort -un
)
worker_ids=""
for n in $workers; do # all at once: each may wait up to its SHUTDOWN_GRACE
	grace=$(sed -n 's/^SHUTDOWN_GRACE=//p' "$PREFIX/jail$n.conf" 2>/dev/null | tail -n 1)
	stop_matching "jail$n" "/vpl-jail -f $PREFIX/jail$n.conf " $((${grace:-60} + 15)) "$now" &
	id=$(sed -n 's/^WORKER_ID=//p' "$PREFIX/jail$n.conf" 2>/dev/null | tail -n 1)
	[ -n "$id" ] && worker_ids="$worker_ids $id"
done
wait
# `vpl-jail image ...` commands of ours still running (a deploy.sh killed while pulling)
for p in $(pids_matching "/vpl-jail -f $PREFIX/"); do kill -KILL "$p" 2>/dev/null; done

# ---- containerd ---------------------------------------------------------------------------------
ctd_pat="containerd --config $CTD/containerd.toml "
ctd_pid() {
	local p
	p=$(cat "$PREFIX/run/containerd.pid" 2>/dev/null)
	if [ -n "$p" ] && [[ "$(cmdline_of "$p")" == *"$ctd_pat"* ]]; then
		echo "$p"
		return 0
	fi
	p=$(pids_matching "$ctd_pat" | head -n 1)
	[ -n "$p" ] && echo "$p"
}
ctd_answers() { [ -S "$SOCK" ] && timeout 5 ctr -a "$SOCK" version >/dev/null 2>&1; }
ctrc() { timeout 60 ctr -a "$SOCK" -n "$NS" "$@"; }
our_shims() {
	local p
	for p in $(pgrep -f containerd-shim 2>/dev/null); do
		case "$(cmdline_of "$p")" in *"-address $SOCK "*) echo "$p" ;; esac
	done
}

temp_ctd=0
pid=$(ctd_pid)
if [ -n "$NS" ] && [ -s "$CTD/containerd.toml" ] && [ -d "$CTD/root" ]; then
	if [ -z "$pid" ] && { [ -n "$(our_shims)" ] ||
		[ -n "$(ls -A "$CTD/state/io.containerd.runtime.v2.task/$NS" 2>/dev/null)" ]; }; then
		# containerd died but its shims (and tasks) may live on: start it for the clean-up
		(
			umask 022
			exec setsid env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
				containerd --config "$CTD/containerd.toml" </dev/null >>"$PREFIX/log/containerd.log" 2>&1 8>&-
		) &
		echo $! >"$PREFIX/run/containerd.pid"
		for _ in $(seq 1 200); do
			ctd_answers && break
			sleep 0.05
		done
		pid=$(ctd_pid)
		temp_ctd=1
	fi
	if [ -n "$pid" ] && ctd_answers; then
		kill -CONT "$pid" 2>/dev/null
		n=0
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
			ctrc containers rm "$c" >/dev/null 2>&1 && n=$((n + 1))
		done
		for l in $(ctrc leases ls -q 2>/dev/null); do
			ctrc leases rm "$l" >/dev/null 2>&1
		done
		# active snapshots (containers' root file systems); committed ones are the images' layers
		for s in $(ctrc snapshots ls 2>/dev/null | awk 'NR > 1 && $3 == "Active" { print $1 }'); do
			ctrc snapshots rm "$s" >/dev/null 2>&1
		done
		[ "$n" = 0 ] || say "containerd: removed $n container(s) left in namespace $NS"
		left=$(ctrc containers ls -q 2>/dev/null | wc -l)
		[ "$left" = 0 ] || {
			say "containerd: $left container(s) could not be removed"
			failed=1
		}
	fi
fi
if [ -n "$pid" ]; then
	kill -CONT "$pid" 2>/dev/null
	stop_matching containerd "$ctd_pat" 10 >/dev/null || true
	[ "$temp_ctd" = 1 ] || say "containerd: stopped (pid $pid)"
fi
rm -f "$PREFIX/run/containerd.pid"
# our containers' cgroups: cgroupsPath /vplcell/vplcell-<WORKER_ID>-<n>
our_cgroups() {
	local id
	for id in $worker_ids; do
		ls -d /sys/fs/cgroup/*/vplcell/vplcell-"$id"-* /sys/fs/cgroup/vplcell/vplcell-"$id"-* 2>/dev/null
	done
}
# processes still in them (a container whose shim died: its processes outlive it)
procs=$(for cg in $(our_cgroups); do cat "$cg/cgroup.procs" 2>/dev/null; done | sort -u)
if [ -n "$procs" ]; then
	# shellcheck disable=SC2086
	kill -KILL $procs 2>/dev/null
	say "killed $(echo "$procs" | wc -l) process(es) left in our containers' cgroups"
fi
# shims whose containerd went away before their tasks were deleted
shims=$(our_shims)
if [ -n "$shims" ]; then
	# shellcheck disable=SC2086
	kill -KILL $shims 2>/dev/null
	say "containerd: killed shim(s) ${shims//$'\n'/ }"
	for _ in $(seq 1 40); do
		[ -z "$(our_shims)" ] && break
		sleep 0.05
	done
fi
# mounts left under the prefix (a task's root file system whose shim was killed), deepest first
awk -v p="$PREFIX/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
	umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	say "unmounted $m"
done
# containerd's state directory is runtime state (a tmpfs in a system containerd): the bundles of
# tasks whose clean-up did not finish (with their shim's log FIFO) go with it
if [ -z "$(ctd_pid)" ] && [ -z "$(our_shims)" ]; then
	rm -rf --one-file-system "$CTD/state"
fi
if [ -n "$NS" ]; then
	# containerd 1.6 keeps runc's state and the tasks' FIFOs in host-wide paths per namespace
	rm -rf "/run/containerd/runc/$NS" "/run/containerd/fifo/$NS"
	# our containers' cgroups (runc removes them with the container; these are what is left)
	for _ in $(seq 1 50); do
		for cg in $(our_cgroups); do rmdir "$cg" 2>/dev/null; done
		[ -z "$(our_cgroups)" ] && break
		sleep 0.1
	done
	for cg in $(our_cgroups); do
		say "cgroup $cg could not be removed (processes left in it?)"
		failed=1
	done
	# the shared parent, when empty and no other worker on the host could be creating a child
	if ! pgrep -x vpl-jail >/dev/null; then
		for cg in /sys/fs/cgroup/*/vplcell /sys/fs/cgroup/vplcell; do
			[ -d "$cg" ] && rmdir "$cg" 2>/dev/null
		done
	fi
fi
# stale shim sockets: files in /run/containerd/s that nobody listens on any more
if [ -d /run/containerd/s ]; then
	for f in /run/containerd/s/*; do
		[ -S "$f" ] || continue
		grep -qF " $f" /proc/net/unix || rm -f "$f"
	done
fi
# the host-wide directories themselves, when empty and no other containerd could be using them
if ! pgrep -x containerd >/dev/null; then
	rmdir /run/containerd/s /run/containerd/runc /run/containerd/fifo /run/containerd 2>/dev/null
fi
rm -f "$SOCK" "$SOCK.ttrpc"

# ---- registry -----------------------------------------------------------------------------------
if [ -d "$PREFIX/registry" ]; then
	rp=$(cat "$PREFIX/registry/registry.pid" 2>/dev/null)
	if [ -n "$rp" ] && kill -0 "$rp" 2>/dev/null; then
		"$here/scripts/registry.sh" stop "$PREFIX/registry" >/dev/null 2>&1 8>&-
		say "registry: stopped (pid $rp)"
	fi
	for p in $(pids_matching "docker-registry serve $PREFIX/registry/"); do
		kill -TERM "$p" 2>/dev/null
		sleep 1
		kill -KILL "$p" 2>/dev/null
	done
fi

# ---- the workers' state: task directories and their FIFOs ---------------------------------------
for n in $workers; do
	rm -rf "$PREFIX/run/jail$n" "$PREFIX/run/jail$n.confsum"
done
rm -f "$PREFIX/run/proxy.confsum" "$PREFIX/run/proxy.certsum"
# the stack's workers' task directories (same-path VPLCELL_DIR) once the stack is gone
[ -s "$PREFIX/run/swarm.stack" ] || rm -rf "$PREFIX/swarm/run"

# ---- check --------------------------------------------------------------------------------------
left=$(
	pids_matching "/vpl-jail -f $PREFIX/"
	pids_matching "/vpl-proxy -f $PREFIX/"
	pids_matching "$ctd_pat"
	pids_matching "docker-registry serve $PREFIX/"
	our_shims
)
if [ -n "$left" ]; then
	say "still running: ${left//$'\n'/ }"
	failed=1
fi
if grep -qF " $PREFIX/" /proc/self/mountinfo; then
	say "mounts left under $PREFIX"
	failed=1
fi

if [ "$purge" = 1 ]; then
	if [ "$failed" = 0 ]; then
		exec 8>&-
		rm -rf --one-file-system "$PREFIX"
		say "removed $PREFIX"
	else
		say "not removing $PREFIX: something of it is still in use"
	fi
else
	say "kept $PREFIX (certificate, secrets and URL, registry storage, images): the next" \
		"deploy.sh gives the same URL; --purge removes it"
fi
[ "$failed" = 0 ] || die "some of the service could not be cleaned up (see above)"
say "done"
