#!/bin/bash
# tests/swarm/test_swarm.sh - conf/stack.yml on a REAL single-node Docker Swarm (issue 8).
#
# Starts a private dockerd (own data root, exec root, socket, pid file; no bridge, no iptables, no
# ip_forward: docs in ../shared/docs/swarm-feasibility.md), a private containerd for the tasks
# (scripts/containerd-test.sh) with minivpl imported, `docker swarm init` on 127.0.0.1, imports the
# vplcell image (images/vplcell/build.sh), creates the secrets, deploys conf/stack.yml +
# conf/stack.ci.yml, and through the proxy's host-mode port on 127.0.0.1 checks: available,
# an evaluation, an interactive terminal (wss), scale 2->3 with the new replica taking work, a
# replica killed while it runs a task and replaced by Swarm, `docker stack rm` leaving nothing.
# Then it leaves the swarm, stops both daemons and removes everything it made.
#
# Needs root, build/ (make all), the Debian mirror on first run (docker.io, images). Serialised
# with flock on /run/vplcell-swarm-test.lock (dockerd/swarm use host-global names: docker_gwbridge,
# ports 2377/7946, /run/docker). Ends with "N passed, N failed"; exit status 1 on any failure.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
T0=$(date +%s.%N)
PASS=0
FAIL=0
el() { printf '%6.1fs' "$(echo "$(date +%s.%N) - $T0" | bc)"; }
say() { echo "[$(el)] $*"; }
ok() {
	PASS=$((PASS + 1))
	echo "ok   [$(el)] $*"
}
bad() {
	FAIL=$((FAIL + 1))
	echo "FAIL [$(el)] $*"
}
check() { # DESCRIPTION CMD...
	local d=$1
	shift
	if "$@"; then
		ok "$d"
	else
		bad "$d"
		return 1
	fi
}
finish() {
	echo "swarm test: $(el | tr -d ' ') in all"
	echo "$PASS passed, $FAIL failed"
	[ "$FAIL" = 0 ]
	exit $?
}

[ "$(id -u)" = 0 ] || {
	bad "needs root (dockerd, containerd)"
	finish
}

exec 8>/run/vplcell-swarm-test.lock
if ! flock -w 900 8; then
	bad "another swarm test holds /run/vplcell-swarm-test.lock for 15 min"
	finish
fi
say "lock held (/run/vplcell-swarm-test.lock)"

# ---- dependencies -------------------------------------------------------------------------------
if [ ! -x /usr/sbin/dockerd ] || [ ! -x /usr/bin/docker ]; then
	say "installing docker.io (apt)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends docker.io >/dev/null 2>&1
	}
fi
if [ ! -x /usr/sbin/dockerd ]; then
	bad "docker.io could not be installed"
	finish
fi
D=/usr/bin/docker # Debian's CLI (the machine image's /usr/local/bin/docker also works)
for f in vpl-jail vpl-proxy vplhelper; do
	[ -x "$ROOT/$BUILD/$f" ] || {
		bad "$BUILD/$f missing: make all first"
		finish
	}
done

# ---- state of the run ---------------------------------------------------------------------------
W=$(mktemp -d /tmp/vsw-$$.XXXX) # short: dockerd's exec root holds unix sockets (108 bytes)
STACK=vsw$$
export DOCKER_HOST=unix://$W/d.sock
CTD=$W/ctd
HOSTDIR=$W/host # VPLCELL_DIR: bind-mounted at the same path into the workers
mkdir -p "$HOSTDIR" "$W/sec"
had_key=0
[ -e /etc/docker/key.json ] && had_key=1
had_run_docker=0
[ -e /run/docker ] && had_run_docker=1
had_gwbridge=0
ip link show docker_gwbridge >/dev/null 2>&1 && had_gwbridge=1

cleanup() {
	set +e
	trap - EXIT INT TERM
	if [ -S "$W/d.sock" ]; then
		$D stack rm "$STACK" >/dev/null 2>&1
		$D swarm leave --force >/dev/null 2>&1
	fi
	if [ -s "$W/dockerd.pid" ]; then
		local p
		p=$(cat "$W/dockerd.pid")
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 1 150); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
	fi
	"$ROOT/scripts/containerd-test.sh" stop "$CTD" >/dev/null 2>&1
	# what dockerd 20.10 leaves behind (swarm-feasibility.md §2, §7), only if this run made it
	[ "$had_gwbridge" = 1 ] || ip link del docker_gwbridge 2>/dev/null
	[ "$had_key" = 1 ] || rm -f /etc/docker/key.json
	rmdir /etc/docker 2>/dev/null
	if [ "$had_run_docker" = 0 ]; then
		rm -rf /run/docker/plugins 2>/dev/null
		rmdir /run/docker/netns /run/docker 2>/dev/null
	fi
	for c in /sys/fs/cgroup/*/docker; do rmdir "$c" 2>/dev/null; done # only when empty
	grep -o " $W[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$W"
	say "cleaned up"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

# ---- images -------------------------------------------------------------------------------------
VTAR=$("$ROOT/images/vplcell/build.sh" "$ROOT/$BUILD" 2>"$W/vimg.log" | tail -n 1)
[ -s "$VTAR" ] || {
	cat "$W/vimg.log"
	bad "images/vplcell/build.sh made no image"
	finish
}
MTAR=$("$ROOT/images/minivpl/build.sh" 2>"$W/mimg.log" | tail -n 1)
[ -s "$MTAR" ] || {
	tail -n 20 "$W/mimg.log"
	bad "images/minivpl/build.sh made no image"
	finish
}
say "images: $VTAR, $MTAR"

# ---- containerd for the tasks (the "node's containerd") -----------------------------------------
if ! "$ROOT/scripts/containerd-test.sh" start "$CTD" >"$W/ctd-start.log" 2>&1; then
	cat "$W/ctd-start.log"
	bad "private containerd did not start"
	finish
fi
NS=$(cat "$CTD/namespace")
CSOCK=$CTD/ctd.sock
ctrc() { ctr -a "$CSOCK" -n "$NS" "$@"; }
ctrc images import "$MTAR" >"$W/import.log" 2>&1 &
IMPORT_PID=$!

# ---- dockerd + swarm ----------------------------------------------------------------------------
echo '{}' >"$W/daemon.json"
DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid /usr/sbin/dockerd --config-file "$W/daemon.json" \
	--data-root "$W/data" --exec-root "$W/x" --pidfile "$W/dockerd.pid" -H "$DOCKER_HOST" \
	--iptables=false --ip6tables=false --ip-forward=false --bridge=none \
	>"$W/dockerd.log" 2>&1 </dev/null &
for _ in $(seq 1 300); do
	$D version >/dev/null 2>&1 && break
	sleep 0.05
done
if ! $D version >/dev/null 2>&1; then
	tail -n 20 "$W/dockerd.log"
	bad "private dockerd did not start"
	finish
fi
DPID=$(cat "$W/dockerd.pid")
ok "private dockerd up (pid $DPID, $DOCKER_HOST)"
if ! $D swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 \
	--data-path-addr 127.0.0.1 >"$W/swarm.log" 2>&1; then
	cat "$W/swarm.log"
	bad "docker swarm init"
	finish
fi
ok "single-node swarm initialised"

KEY=$(basename "$VTAR" .tar | sed 's/^vplcell-//')
IMAGE=vplcell/vplcell:$KEY
$D import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'WORKDIR /' \
	--change 'CMD ["/bin/sh"]' "$VTAR" "$IMAGE" >/dev/null || {
	bad "docker import of the vplcell image"
	finish
}
ok "vplcell image imported into dockerd ($IMAGE)"

# ---- secrets ------------------------------------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj /CN=localhost \
	-addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$W/sec/key.pem" \
	-out "$W/sec/cert.pem" >/dev/null 2>&1
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/sec/worker"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/sec/route"
$D secret create vplcell_tls_key "$W/sec/key.pem" >/dev/null &&
	$D secret create vplcell_worker_secret "$W/sec/worker" >/dev/null &&
	$D secret create vplcell_route_secret "$W/sec/route" >/dev/null &&
	$D config create vplcell_tls_cert "$W/sec/cert.pem" >/dev/null
check "secrets and the certificate config created" test $? = 0

# ---- deploy -------------------------------------------------------------------------------------
wait "$IMPORT_PID"
check "minivpl imported into the tasks' containerd (namespace $NS)" \
	grep -q 'vplcell.local/minivpl' <(ctrc images ls -q)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URLPATH=/$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
export VPLCELL_IMAGE=$IMAGE VPLCELL_URLPATH=$URLPATH NB_REPLICAS=2 VPLCELL_PROXY_PORT=$PORT \
	VPLCELL_DIR=$HOSTDIR VPLCELL_CONTAINERD_SOCKET=$CSOCK VPLCELL_CONTAINERD_NAMESPACE=$NS \
	VPLCELL_SUBNET=10.213.$(($$ % 200 + 20)).0/24
if ! $D stack deploy --resolve-image never -c "$ROOT/conf/stack.yml" -c "$ROOT/conf/stack.ci.yml" \
	"$STACK" >"$W/deploy.log" 2>&1; then
	cat "$W/deploy.log"
	bad "docker stack deploy"
	finish
fi
replicas() { $D service ls --filter "name=${STACK}_$1" --format '{{.Name}} {{.Replicas}}' |
	awk -v s="${STACK}_$1" '$1 == s { print $2 }'; }
want() { # SERVICE N SECONDS
	local end=$(($(date +%s) + $3))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(replicas "$1")" = "$2/$2" ] && return 0
		sleep 0.2
	done
	$D service ps --no-trunc "${STACK}_$1" | head -n 8
	return 1
}
check "stack deployed: jail 2/2 healthy" want jail 2 90
check "proxy 1/1 healthy" want proxy 1 60
check "registry 1/1 healthy" want registry 1 60

URL=https://localhost:$PORT$URLPATH
CA=$W/sec/cert.pem
client() { python3 "$ROOT/tests/e2e/e2e_client.py" "$URL" "$CA" "$@"; }
sclient() { python3 "$ROOT/tests/swarm/swarm_client.py" "$URL" "$CA" "$@"; }
wait_ready() {
	local end=$(($(date +%s) + $1))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ "$(client status 2>/dev/null)" = ready ] && return 0
		sleep 0.3
	done
	client available
	return 1
}
diag() { # the services' last log lines, once, after the first failed flow check
	[ -z "${DIAG_DONE:-}" ] || return 0
	DIAG_DONE=1
	for s in proxy jail; do
		echo "---- docker service logs ${STACK}_$s (tail)"
		$D service logs --no-trunc "${STACK}_$s" 2>&1 | tail -n 25
	done
}
check "available: ready through the proxy (mode: host port $PORT)" wait_ready 30 || diag
check "evaluation: C hello world through getresult" client evaluate || diag
check "interactive terminal: monitor + execute over wss" client terminal || diag

# per-replica work: "rpc request" lines in each jail container's log
jail_ctrs() { $D ps -q --filter "label=com.docker.swarm.service.name=${STACK}_jail"; }
reqs() { $D logs "$1" 2>&1 | grep -c 'rpc request'; }
added() { [ "$($D service logs "${STACK}_proxy" 2>&1 | grep -c 'added (from tasks.jail)')" -ge "$1" ]; }
check "the proxy found both replicas through tasks.jail (dnsrr)" added 2

# ---- scale 2 -> 3 -------------------------------------------------------------------------------
before=$(jail_ctrs | sort)
$D service scale -d "${STACK}_jail=3" >/dev/null
check "scaled jail 2 -> 3" want jail 3 60
NEW=$(comm -13 <(echo "$before") <(jail_ctrs | sort) | head -n 1)
new_takes_work() {
	[ -n "$NEW" ] || return 1
	for _ in 1 2 3 4 5 6 7 8; do
		sclient evaluate 1 || return 1
		[ "$(reqs "$NEW")" -gt 0 ] && return 0
	done
	return 1
}
check "the new replica ($NEW) takes work (rpc request in its log)" new_takes_work

# ---- a replica killed while it runs a task ------------------------------------------------------
declare -A N0=()
for c in $(jail_ctrs); do N0[$c]=$(reqs "$c"); done
ADMIN=$(sclient long 60)
VICTIM=""
for c in $(jail_ctrs); do
	[ "$(reqs "$c")" -gt "${N0[$c]:-0}" ] && VICTIM=$c
done
running_task() { [ -n "$VICTIM" ] && ctrc tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | grep -q .; }
check "a long task runs on replica $VICTIM" running_task
if [ -n "$VICTIM" ]; then
	VHOST=$($D inspect -f '{{.Config.Hostname}}' "$VICTIM")
	check "the victim has task containers in containerd before the kill" \
		grep -q "vplcell-$VHOST" <(ctrc containers ls -q)
	$D kill "$VICTIM" >/dev/null
	replaced() {
		local end=$(($(date +%s) + 60))
		while [ "$(date +%s)" -lt "$end" ]; do
			if [ "$(replicas jail)" = 3/3 ] && ! jail_ctrs | grep -q "^${VICTIM:0:12}"; then
				return 0
			fi
			sleep 0.3
		done
		return 1
	}
	check "docker kill: Swarm replaced the replica (jail 3/3 again, new container)" replaced
	check "the service keeps serving: available ready" wait_ready 20
	check "the service keeps serving: two evaluations" sclient evaluate 2
	reaped() { # the killed worker's task containers are removed by a sibling (stale lock)
		local end=$(($(date +%s) + 30))
		while [ "$(date +%s)" -lt "$end" ]; do
			ctrc containers ls 2>/dev/null | grep -q "vplcell-$VHOST" || return 0
			sleep 0.5
		done
		ctrc containers ls
		return 1
	}
	check "the killed replica's task containers were reaped by its siblings" reaped
fi

# ---- stack rm -----------------------------------------------------------------------------------
$D service logs -f --no-trunc --timestamps "${STACK}_jail" >"$W/jail-final.log" 2>&1 &
LOGS_PID=$!
sleep 0.3
T_RM=$(date +%s.%N)
$D stack rm "$STACK" >/dev/null 2>&1
nothing_left() {
	local end=$(($(date +%s) + 60))
	while [ "$(date +%s)" -lt "$end" ]; do
		if [ -z "$($D ps -aq)" ] && [ -z "$($D service ls -q)" ] &&
			[ -z "$($D network ls -q --filter "name=${STACK}_")" ]; then
			return 0
		fi
		sleep 0.3
	done
	$D ps -a
	return 1
}
check "docker stack rm: no container, service or stack network left in dockerd" nothing_left
say "stack rm took $(printf '%.1f' "$(echo "$(date +%s.%N) - $T_RM" | bc)") s"
kill "$LOGS_PID" 2>/dev/null
ctd_empty() {
	local end=$(($(date +%s) + 20))
	while [ "$(date +%s)" -lt "$end" ]; do
		[ -z "$(ctrc "$1" ls -q 2>/dev/null)" ] && return 0
		sleep 0.3
	done
	echo "tasks:"; ctrc tasks ls; echo "containers:"; ctrc containers ls
	echo "---- jail logs from stack rm on (tail)"
	grep -v 'rpc available' "$W/jail-final.log" | tail -n 30
	return 1
}
check "no container left in containerd namespace $NS" ctd_empty containers
check "no task left in containerd namespace $NS (a reaped orphan's task: see the report)" ctd_empty tasks
cleanup
left() {
	[ ! -e "$W" ] && ! kill -0 "$DPID" 2>/dev/null &&
		{ [ "$had_gwbridge" = 1 ] || ! ip link show docker_gwbridge >/dev/null 2>&1; }
}
check "teardown: dockerd stopped, docker_gwbridge and $W removed" left
finish
