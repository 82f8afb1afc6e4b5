#!/bin/bash
# shellcheck disable=SC2317 # the check functions are called through check()
# tests/swarm/test_swarm.sh - scripts/deploy.sh's Docker Swarm mode on REAL dockerds (issue 8).
#
# Starts a private dockerd (own data root, exec root, socket, pid file; no bridge, no iptables, no
# ip_forward: swarm-feasibility.md) and, unless VSW_NODES=1 or `ip netns` is unusable, a SECOND
# private dockerd inside a network namespace (veth pair to this namespace, own data/exec root and
# socket): a second swarm node on the same machine. Then, as an operator would:
#
#   scripts/deploy.sh NS        (two nodes: this host the manager, the netns' dockerd joined as a
#                                worker through VPLCELL_REMOTE=<a script running the command line
#                                in the netns against its dockerd>)
#   scripts/deploy.sh --swarm   (one node)
#
# with a .env of its own (a private PREFIX, ports, SWARM_ADDR, the stack's subnet) and
# conf/stack.ci.yml as override (VPLCELL_STACK_FILES). deploy.sh inits the swarm, starts the
# registry and the tasks' containerd, builds the vplcell image and pushes it and minivpl to the
# registry, creates the docker secrets, deploys conf/stack.yml, waits, runs a task. Checks, through
# the proxy's host-mode port: the services run the image from the registry (and node 2 pulled
# it), the workers pulled minivpl from the stack's registry service into containerd, an
# evaluation, an interactive terminal (wss), with two nodes a replica on node 2 taking work
# across the VXLAN overlay, scale 2->3 with the new replica taking work, a replica killed while
# it runs a task and replaced, then `scripts/stopservices.sh --leave-swarm` removing the stack and
# leaving nothing: no container, service, network, containerd task or daemon of the deploy.
# Then it stops the dockerds and removes everything it made.
#
# Environment: BUILD (the build tree, default build/: only read, deploy.sh runs with
# VPLCELL_NO_BUILD=1), VSW_NODES=1 (one node, `deploy.sh --swarm`), VSW_STACK_FILES (more stack
# override files, for diagnosis).
# Needs root, build/ (make all; BUILD=dir for another tree), the Debian mirror on first run
# (docker.io, images). Serialised with flock on /run/vplcell-swarm-test.lock (dockerd/swarm use
# host-global names: docker_gwbridge, ports 2377/7946, /run/docker). Ends with "N passed, N
# failed"; exit status 1 on any failure.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
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
	[ -x "$BUILD/$f" ] || {
		bad "$BUILD/$f missing: make all first"
		finish
	}
done

# ---- state of the run ---------------------------------------------------------------------------
W=$(mktemp -d /tmp/vsw-$$.XXXX) # short: exec roots and the containerd socket are unix sockets (108 bytes)
STACK=vsw$$
PREFIX=$W/p
D1=unix://$W/d.sock
D2=unix://$W/d2.sock
export DOCKER_HOST=$D1
NETNS=vsw$$
VA=vswa$$ # veth, this side (names <= 15 characters)
NET=10.214.$(($$ % 200 + 20))
SUB=10.213.$(($$ % 200 + 20)).0/24
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
RPORT=$(free_port)
NODES=${VSW_NODES:-2}
had_key=0
[ -e /etc/docker/key.json ] && had_key=1
had_run_docker=0
[ -e /run/docker ] && had_run_docker=1
had_gwbridge=0
ip link show docker_gwbridge >/dev/null 2>&1 && had_gwbridge=1
STOPPED=0

stop_pidfile() {
	local p
	[ -s "$1" ] || return 0
	p=$(cat "$1")
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 1 150); do
		kill -0 "$p" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$p" 2>/dev/null
}
cleanup() {
	set +e
	trap - EXIT INT TERM
	if [ "$STOPPED" = 0 ] && [ -d "$PREFIX" ]; then
		VPLCELL_PREFIX=$PREFIX VPLCELL_REMOTE=$W/remote.sh "$ROOT/scripts/stopservices.sh" --now \
			--leave-swarm >"$W/stop-cleanup.log" 2>&1
	fi
	for s in "$W/d.sock" "$W/d2.sock"; do
		[ -S "$s" ] && DOCKER_HOST=unix://$s $D swarm leave --force >/dev/null 2>&1
	done
	stop_pidfile "$W/dockerd2.pid"
	stop_pidfile "$W/dockerd.pid"
	ip netns del "$NETNS" 2>/dev/null
	ip link del "$VA" 2>/dev/null
	# what dockerd 20.10 leaves behind (swarm-feasibility.md §2, §7), only if this run made it
	[ "$had_gwbridge" = 1 ] || ip link del docker_gwbridge 2>/dev/null
	[ "$had_key" = 1 ] || rm -f /etc/docker/key.json
	rmdir /etc/docker 2>/dev/null
	if [ "$had_run_docker" = 0 ]; then
		rm -rf /run/docker/plugins 2>/dev/null
		rmdir /run/docker/netns /run/docker 2>/dev/null
	fi
	for c in /sys/fs/cgroup/*/docker; do rmdir "$c" 2>/dev/null; done # only when empty
	grep -o " ${W}[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
	rm -rf "$W"
	say "cleaned up"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

# ---- node 2: a network namespace --------------------------------------------------------------
if [ "$NODES" = 2 ]; then
	if ip netns add "$NETNS" 2>"$W/netns.err" &&
		ip link add "$VA" type veth peer name vswb$$ 2>>"$W/netns.err" &&
		ip link set vswb$$ netns "$NETNS" 2>>"$W/netns.err" &&
		ip addr add "$NET.1/24" dev "$VA" && ip link set "$VA" up &&
		ip netns exec "$NETNS" ip addr add "$NET.2/24" dev vswb$$ &&
		ip netns exec "$NETNS" ip link set vswb$$ up &&
		ip netns exec "$NETNS" ip link set lo up 2>>"$W/netns.err"; then
		say "node 2: network namespace $NETNS, veth $VA $NET.1 <-> $NET.2"
	else
		cat "$W/netns.err"
		say "ip netns unusable here: one node only"
		NODES=1
	fi
fi
# what deploy.sh's VPLCELL_REMOTE runs: `remote.sh HOST 'LINE'` -> LINE in the netns, its dockerd
cat >"$W/remote.sh" <<EOF
#!/bin/sh
[ "\$1" = "$NETNS" ] || { echo "remote.sh: unknown host \$1" >&2; exit 255; }
exec nsenter --net=/run/netns/$NETNS env DOCKER_HOST=$D2 sh -c "\$2"
EOF
chmod 0755 "$W/remote.sh"

# ---- dockerds -----------------------------------------------------------------------------------
if [ "$NODES" = 2 ]; then
	echo "{\"insecure-registries\": [\"$NET.1:$RPORT\"]}" >"$W/daemon.json"
else
	echo '{}' >"$W/daemon.json"
fi
start_dockerd() { # SUFFIX [netns]
	local s=$1
	shift
	# no DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: with it the swarm agent never pulls, and the nodes
	# must pull the image from the registry (it names the registry: no Docker Hub lookup)
	setsid "$@" /usr/sbin/dockerd --config-file "$W/daemon.json" \
		--data-root "$W/data$s" --exec-root "$W/x$s" --pidfile "$W/dockerd$s.pid" -H "unix://$W/d$s.sock" \
		--iptables=false --ip6tables=false --ip-forward=false --bridge=none \
		>"$W/dockerd$s.log" 2>&1 </dev/null &
	for _ in $(seq 1 300); do
		DOCKER_HOST=unix://$W/d$s.sock $D version >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	tail -n 20 "$W/dockerd$s.log"
	return 1
}
if ! start_dockerd ""; then
	bad "private dockerd did not start"
	finish
fi
DPID=$(cat "$W/dockerd.pid")
ok "private dockerd up (pid $DPID, $D1)"
if [ "$NODES" = 2 ]; then
	if start_dockerd 2 nsenter --net=/run/netns/"$NETNS"; then
		ok "second private dockerd up in network namespace $NETNS (pid $(cat "$W/dockerd2.pid"), $D2)"
	else
		bad "second dockerd in the network namespace did not start"
		finish
	fi
fi

# ---- deploy.sh ----------------------------------------------------------------------------------
cat >"$W/env" <<EOF
NB_REPLICAS=2
PROXY_PORT=$PORT
PUBLIC_HOST=localhost
REGISTRY_PORT=$RPORT
SWARM_SUBNET=$SUB
LOGLEVEL=6
EOF
[ "$NODES" = 1 ] || echo "SWARM_ADDR=$NET.1" >>"$W/env"
if [ "$NODES" = 2 ]; then ARGS=("$NETNS"); else ARGS=(--swarm); fi
T_DEP=$(date +%s.%N)
VPLCELL_PREFIX=$PREFIX VPLCELL_ENV_FILE=$W/env VPLCELL_NO_BUILD=1 VPLCELL_BUILD_DIR=$BUILD \
	VPLCELL_STACK=$STACK VPLCELL_STACK_FILES="$ROOT/conf/stack.ci.yml ${VSW_STACK_FILES:-}" VPLCELL_REMOTE=$W/remote.sh \
	"$ROOT/scripts/deploy.sh" "${ARGS[@]}" 2>&1 | while IFS= read -r l; do echo "[$(el)] $l"; done >"$W/deploy.out"
rc=${PIPESTATUS[0]}
sed 's/^/    | /' "$W/deploy.out"
URL=$(sed -n 's/^\[[ 0-9.]*s\] Execution server URL: //p' "$W/deploy.out" | sed 's|https://[^:/]*:|https://localhost:|')
if ! check "scripts/deploy.sh ${ARGS[*]}: exit 0 and the URL ($(printf '%.0f' "$(echo "$(date +%s.%N) - $T_DEP" | bc)") s)" \
	test "$rc:$([ -n "$URL" ] && echo url)" = 0:url; then
	for s in jail proxy registry; do
		echo "---- docker service logs ${STACK}_$s (tail)"
		$D service logs --no-trunc "${STACK}_$s" 2>&1 | grep -v 'GET /v2/ \|uri=/v2/ ' | tail -n 12
	done
	finish
fi
REG_HOST=127.0.0.1
[ "$NODES" = 1 ] || REG_HOST=$NET.1
REG=$REG_HOST:$RPORT

# ---- what deploy.sh made ------------------------------------------------------------------------
svc_image() { $D service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${STACK}_$1" 2>/dev/null; }
from_registry() {
	local s i
	for s in jail proxy registry; do
		i=$(svc_image "$s")
		[[ $i == "$REG/vplcell:"*@sha256:* ]] || {
			echo "${STACK}_$s runs '$i', not $REG/vplcell:<hash>@sha256:..."
			return 1
		}
	done
}
check "the services run the vplcell image by its registry name ($REG/vplcell:<hash>, pinned by digest)" from_registry
NS=$(cat "$PREFIX/containerd/namespace" 2>/dev/null)
CSOCK=$PREFIX/containerd/containerd.sock
ctrc() { ctr -a "$CSOCK" -n "$NS" "$@"; }
task_image() { # the workers pulled minivpl from the stack's registry service, nothing was imported
	ctrc images ls -q | grep -qx 'registry:5000/minivpl:latest' && ! ctrc images ls -q | grep -q 'vplcell.local'
}
check "the workers pulled the task image from the registry service into containerd (registry:5000/minivpl:latest)" task_image
check "the docker secrets and the certificate config exist" \
	bash -c "$D secret ls --format '{{.Name}}' | grep -c '^vplcell_' | grep -qx 3 && $D config ls --format '{{.Name}}' | grep -q '^vplcell_tls_cert_'"

dockers() {
	echo "$D1"
	[ "$NODES" = 1 ] || echo "$D2"
}
jail_ctrs() { # "DOCKER_HOST ID" of every jail container, on every node
	local h
	for h in $(dockers); do
		DOCKER_HOST=$h $D ps -q --filter "label=com.docker.swarm.service.name=${STACK}_jail" | sed "s|^|$h |"
	done
}
reqs() { DOCKER_HOST=$1 $D logs "$2" 2>&1 | grep -c 'rpc request'; }
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
if [ "$NODES" = 2 ]; then
	two_nodes() { [ "$($D node ls --format '{{.Status}} {{.Availability}}' | grep -c '^Ready Active')" = 2 ]; }
	check "two swarm nodes Ready (node 2 joined by deploy.sh through VPLCELL_REMOTE)" two_nodes
	N2=$(DOCKER_HOST=$D2 $D ps -q --filter "label=com.docker.swarm.service.name=${STACK}_jail" | head -n 1)
	check "a jail replica runs on node 2 ($N2)" test -n "$N2"
	check "node 2's dockerd pulled the image from the registry on the manager ($REG)" \
		bash -c "DOCKER_HOST=$D2 $D images --format '{{.Repository}}' | grep -qx '$REG/vplcell'"
fi

URL_PATH=${URL#https://localhost:"$PORT"}
CA=$PREFIX/tls/cert.pem
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
check "available: ready through the proxy (mode: host port $PORT, path ${#URL_PATH} chars)" wait_ready 30 || diag
check "evaluation: C hello world through getresult" client evaluate || diag
check "interactive terminal: monitor + execute over wss" client terminal || diag
added() { [ "$($D service logs "${STACK}_proxy" 2>&1 | grep -c 'added (from tasks.jail)')" -ge "$1" ]; }
check "the proxy found both replicas through tasks.jail (dnsrr)" added 2
if [ "$NODES" = 2 ] && [ -n "$N2" ]; then
	node2_takes_work() { # the proxy on node 1 reaches the replica on node 2 over the overlay (VXLAN)
		for _ in 1 2 3 4 5 6 7 8; do
			[ "$(reqs "$D2" "$N2")" -gt 0 ] && return 0
			sclient evaluate 1 || return 1
		done
		[ "$(reqs "$D2" "$N2")" -gt 0 ]
	}
	check "the replica on node 2 ran evaluations sent by the proxy on node 1 (overlay across the veth)" node2_takes_work || diag
fi

# ---- deploy.sh again: nothing changes -----------------------------------------------------------
jail_version() { # the service's image and its running containers (a changed spec restarts them)
	$D service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${STACK}_jail"
	jail_ctrs | sort
}
V0=$(jail_version)
T_DEP=$(date +%s.%N)
VPLCELL_PREFIX=$PREFIX VPLCELL_ENV_FILE=$W/env VPLCELL_NO_BUILD=1 VPLCELL_BUILD_DIR=$BUILD \
	VPLCELL_STACK=$STACK VPLCELL_STACK_FILES="$ROOT/conf/stack.ci.yml ${VSW_STACK_FILES:-}" VPLCELL_REMOTE=$W/remote.sh \
	"$ROOT/scripts/deploy.sh" "${ARGS[@]}" >"$W/deploy2.out" 2>&1
rc=$?
URL2=$(sed -n 's/^Execution server URL: //p' "$W/deploy2.out" | sed 's|https://[^:/]*:|https://localhost:|')
again() {
	[ "$rc" = 0 ] && [ "$URL2" = "$URL" ] && [ "$(jail_version)" = "$V0" ] &&
		grep -q 'in the registry' "$W/deploy2.out" && grep -q 'secrets: in the swarm' "$W/deploy2.out" && return 0
	sed 's/^/    | /' "$W/deploy2.out"
	echo "jail service before: $V0, after: $(jail_version)"
	return 1
}
T_DEP=$(printf '%.0f' "$(echo "$(date +%s.%N) - $T_DEP" | bc)")
NEWIMG=$(sed -n 's|^deploy: image: pushed \(.*/vplcell:[0-9a-f]*\)$|\1|p' "$W/deploy2.out")
if [ -z "$NEWIMG" ]; then
	check "deploy.sh again: exit 0, the same URL, images and secrets kept, no jail replica restarted ($T_DEP s)" again
else
	# the binaries changed between the two runs (someone rebuilt build/ meanwhile): then the
	# services must have been rolled onto the new image
	rolled() {
		[ "$rc" = 0 ] && [ "$URL2" = "$URL" ] && [[ "$(svc_image jail)" == "$NEWIMG@sha256:"* ]] &&
			[[ "$(svc_image proxy)" == "$NEWIMG@sha256:"* ]] && [ "$(replicas jail)" = 2/2 ] && return 0
		sed 's/^/    | /' "$W/deploy2.out"
		return 1
	}
	check "deploy.sh again after the build changed meanwhile: exit 0, the same URL, the services rolled onto $NEWIMG ($T_DEP s)" rolled
fi

# ---- scale 2 -> 3 -------------------------------------------------------------------------------
before=$(jail_ctrs | sort)
$D service scale -d "${STACK}_jail=3" >/dev/null
check "scaled jail 2 -> 3" want jail 3 60
NEW=$(comm -13 <(echo "$before") <(jail_ctrs | sort) | head -n 1)
new_takes_work() {
	[ -n "$NEW" ] || return 1
	for _ in 1 2 3 4 5 6 7 8; do
		sclient evaluate 1 || return 1
		[ "$(reqs "${NEW% *}" "${NEW#* }")" -gt 0 ] && return 0
	done
	return 1
}
check "the new replica (${NEW##*/}) takes work (rpc request in its log)" new_takes_work

# ---- a replica killed while it runs a task ------------------------------------------------------
declare -A N0=()
while read -r h c; do N0[$c]=$(reqs "$h" "$c"); done < <(jail_ctrs)
ADMIN=$(sclient long 60)
VICTIM=""
VDH=""
while read -r h c; do
	[ "$(reqs "$h" "$c")" -gt "${N0[$c]:-0}" ] && VICTIM=$c && VDH=$h
done < <(jail_ctrs)
running_task() { [ -n "$VICTIM" ] && ctrc tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | grep -q .; }
check "a long task (${#ADMIN}-character admin ticket) runs on replica $VICTIM" running_task
if [ -n "$VICTIM" ]; then
	VHOST=$(DOCKER_HOST=$VDH $D inspect -f '{{.Config.Hostname}}' "$VICTIM")
	check "the victim has task containers in containerd before the kill" \
		grep -q "vplcell-$VHOST" <(ctrc containers ls -q)
	before=$(jail_ctrs | awk '{ print $2 }' | sort)
	DOCKER_HOST=$VDH $D kill "$VICTIM" >/dev/null
	replaced() { # 3 jail containers again, the victim not among them, one of them new
		local end=$(($(date +%s) + 60)) now
		while [ "$(date +%s)" -lt "$end" ]; do
			now=$(jail_ctrs | awk '{ print $2 }' | sort)
			if [ "$(replicas jail)" = 3/3 ] && [ "$(echo "$now" | grep -c .)" = 3 ] &&
				! grep -q "^${VICTIM:0:12}" <<<"$now" && [ -n "$(comm -13 <(echo "$before") <(echo "$now"))" ]; then
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

# ---- stopservices.sh ----------------------------------------------------------------------------
T_RM=$(date +%s.%N)
VPLCELL_PREFIX=$PREFIX VPLCELL_REMOTE=$W/remote.sh "$ROOT/scripts/stopservices.sh" --leave-swarm \
	>"$W/stop.out" 2>&1
rc=$?
STOPPED=1
sed 's/^/    | /' "$W/stop.out"
check "scripts/stopservices.sh --leave-swarm: exit 0 ($(printf '%.1f' "$(echo "$(date +%s.%N) - $T_RM" | bc)") s)" test "$rc" = 0
nothing_left() {
	local h
	for h in $(dockers); do
		if [ -n "$(DOCKER_HOST=$h $D ps -aq)" ] || [ "$(DOCKER_HOST=$h $D info -f '{{.Swarm.LocalNodeState}}')" != inactive ] ||
			[ -n "$(DOCKER_HOST=$h $D network ls -q --filter "name=${STACK}_")" ]; then
			DOCKER_HOST=$h $D ps -a
			return 1
		fi
	done
}
check "no container or stack network left on any node, every node out of the swarm" nothing_left
deploy_gone() { # containerd and the registry of the prefix stopped, no process of it left
	! pgrep -f "containerd --config $PREFIX/" >/dev/null && ! pgrep -f "docker-registry serve $PREFIX/" >/dev/null &&
		! pgrep -f "containerd-shim.*-address $CSOCK" >/dev/null && [ ! -S "$CSOCK" ] &&
		[ ! -e "$PREFIX/run/swarm.stack" ] && [ -z "$(ls -A "$PREFIX/swarm/run" 2>/dev/null)" ]
}
check "the tasks' containerd and the registry stopped, no shim, no task directory left" deploy_gone
cleanup
left() {
	[ ! -e "$W" ] && ! kill -0 "$DPID" 2>/dev/null && ! ip netns list | grep -q "^$NETNS\b" &&
		{ [ "$had_gwbridge" = 1 ] || ! ip link show docker_gwbridge >/dev/null 2>&1; }
}
check "teardown: dockerds stopped, netns, docker_gwbridge and $W removed" left
finish
