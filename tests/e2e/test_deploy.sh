#!/bin/bash
# tests/e2e/test_deploy.sh - the single-host deployment end to end, as root:
#
#  1. scripts/deploy.sh in a temporary prefix (VPLCELL_PREFIX) with a temporary settings file
#     (VPLCELL_ENV_FILE: NB_REPLICAS=2, free ports): exit 0, quiet output, exactly one line
#     "Execution server URL: https://HOST:PORT/URLPATH" and the self-signed certificate notes;
#  2. through that URL only, verifying the certificate and host name (tests/e2e/e2e_client.py):
#     GET /OK, `available` ready, an evaluation (C hello world, getresult), an interactive terminal
#     run (monitor + execute over wss) and a VNC run (RFB handshake, VNC auth with the execution
#     ticket's first 8 characters, a framebuffer update with the program's colour);
#  3. deploy.sh again: same URL, same pids of every daemon, same listening ports, nothing
#     restarted (if the build changed between the two runs, as when someone edits the sources
#     meanwhile, the workers and proxy are restarted with the new binaries, and that is checked);
#  4. a worker killed: deploy.sh restarts only it;
#  5. drain: worker 1's DRAIN_FILE -> the proxy sees one ready worker, `available` still ready and
#     an evaluation still runs; both drained -> `offline`; undrained -> ready;
#  6. scripts/stopservices.sh: afterwards no process of ours (workers, proxy, registry,
#     containerd, shims), no mount under the prefix, no container/task/active snapshot in our
#     namespace (checked by starting the prefix's containerd again), no cgroup of our workers, no
#     runc state, no FIFO, no worker state directory; the prefix's secrets kept; run again: still
#     fine; --purge removes the prefix.
# Ends with "N passed, N failed"; exit status 1 on any failure.
# shellcheck disable=SC2317 # functions called through check/wait_for
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
T0=$(date +%s)
pass=0
fail=0
ok() {
	pass=$((pass + 1))
	echo "ok   e2e: $*"
}
bad() {
	fail=$((fail + 1))
	echo "FAIL e2e: $*"
}
check() { # LABEL CMD...
	local label=$1
	shift
	if "$@"; then ok "$label"; else bad "$label"; fi
}
dump_logs() {
	[ -n "${PREFIX:-}" ] || return 0
	for f in "$PREFIX"/log/*.log; do
		[ -e "$f" ] || continue
		case "$f" in */build.log | */image-*.log) continue ;; esac
		echo "---- $f (tail)"
		tail -n 25 "$f"
	done
}

finish() {
	[ "$fail" = 0 ] || dump_logs
	echo "e2e: $(($(date +%s) - T0)) s"
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit $?
}

if [ "$(id -u)" != 0 ]; then
	bad "must run as root"
	finish
fi

tmp=$(mktemp -d /tmp/vplcell-e2e.XXXXXX)
PREFIX=$tmp/prefix
export VPLCELL_PREFIX=$PREFIX VPLCELL_ENV_FILE=$tmp/env
cleanup() {
	if [ -d "$PREFIX" ]; then
		"$ROOT/scripts/stopservices.sh" --now --purge >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# free ports: one for the proxy and the registry; runs of COUNT consecutive ones for the workers
# and the metrics (the proxy's, then worker 1's and 2's)
free_ports() { # COUNT -> the first of COUNT free consecutive ports
	python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randint(20000, 32000)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            s.bind(("0.0.0.0", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    break
EOF
}
PROXY_PORT=$(free_ports 1)
REGISTRY_PORT=$(free_ports 1)
WORKER_BASE=$(free_ports 2)
METRICS=$(free_ports 3)
cat >"$VPLCELL_ENV_FILE" <<EOF
# tests/e2e/test_deploy.sh
NB_REPLICAS=2
PROXY_PORT=$PROXY_PORT
REGISTRY_PORT=$REGISTRY_PORT
WORKER_BASE_PORT=$WORKER_BASE
METRICS_PORT=$METRICS
POOL_SIZE=1
MAXTIME=120
MAXBODYSIZE=1024**2*16
# interactive tasks stay in a worker's table until their TTL, and a worker's SIGTERM waits for
# them up to SHUTDOWN_GRACE: keep the stop short
SHUTDOWN_GRACE=5
EOF

# ---- 1. deploy ----------------------------------------------------------------------------------
t=$(date +%s)
"$ROOT/scripts/deploy.sh" >"$tmp/out1" 2>&1
rc=$?
echo "e2e: first deploy.sh: $(($(date +%s) - t)) s"
sed 's/^/  | /' "$tmp/out1"
check "deploy.sh exits 0" [ "$rc" = 0 ]
if [ "$rc" != 0 ]; then finish; fi
check "one 'Execution server URL' line" [ "$(grep -c '^Execution server URL: ' "$tmp/out1")" = 1 ]
URL=$(sed -n 's/^Execution server URL: //p' "$tmp/out1")
check "the URL is https://HOST:$PROXY_PORT/<secret path>" \
	grep -Eq "^https://[A-Za-z0-9.-]+:$PROXY_PORT/[0-9a-f]{40}\$" <<<"$URL"
check "the self-signed certificate notes: accept certificates, visit /OK" \
	grep -q "acceptcertificates" "$tmp/out1"
check "... and the /OK address" grep -qF "${URL%/*}/OK" "$tmp/out1"
quiet() { ! grep -Ev '^(deploy: |Execution server URL: |The certificate is self-signed|  )' "$tmp/out1"; }
check "only progress lines and the URL" quiet
check "MAXBODYSIZE 1024**2*16 -> REQUEST_MAX_SIZE=16777216" \
	grep -qx 'REQUEST_MAX_SIZE=16777216' "$PREFIX/proxy.conf"
check "secrets and configuration files are 0600" \
	bash -c "[ -z \"\$(find '$PREFIX/secrets' '$PREFIX'/jail*.conf '$PREFIX/proxy.conf' '$PREFIX/tls/key.pem' -type f ! -perm 0600)\" ]"

# ---- 2. the flows through the URL ---------------------------------------------------------------
CA=$PREFIX/tls/cert.pem
client() { python3 "$ROOT/tests/e2e/e2e_client.py" "$URL" "$CA" "$@"; }
flow() { # CHECK LABEL
	local out
	if out=$(client "$1" 2>&1); then
		ok "$2"
	else
		bad "$2"
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/  | /'
	fi
}
flow ok "GET /OK through the URL (certificate and host name verified)"
flow available "available: ready"
flow evaluate "evaluation: C hello world, getresult"
flow terminal "interactive terminal run over wss (monitor + execute)"
flow vnc "VNC run: RFB handshake, VNC auth with the ticket, framebuffer"

# ---- 3. deploy again: idempotent ----------------------------------------------------------------
snapshot() { # pids and listening ports of every daemon
	local f p
	for f in "$PREFIX"/run/*.pid "$PREFIX/registry/registry.pid"; do
		[ -s "$f" ] || continue
		p=$(cat "$f")
		echo "$(basename "$f") $p $(ss -Hltnp 2>/dev/null | grep "pid=$p," | awk '{print $4}' | sort | tr '\n' ' ')"
	done
}
ver() { sed -n 's/^# binaries \([0-9a-f]*\).*/\1/p' "$PREFIX/jail1.conf"; }
before=$(snapshot)
v1=$(ver)
t=$(date +%s)
"$ROOT/scripts/deploy.sh" >"$tmp/out2" 2>&1
rc=$?
echo "e2e: second deploy.sh: $(($(date +%s) - t)) s"
sed 's/^/  | /' "$tmp/out2"
after=$(snapshot)
v2=$(ver)
check "deploy.sh again exits 0" [ "$rc" = 0 ]
check "same URL" [ "$(sed -n 's/^Execution server URL: //p' "$tmp/out2")" = "$URL" ]
check "five daemons with their ports" [ "$(wc -l <<<"$before")" = 5 ]
if [ "$v1" = "$v2" ]; then
	check "same daemons (pids) and ports" [ "$before" = "$after" ]
	if [ "$before" != "$after" ]; then
		echo "  before: $before"
		echo "  after:  $after"
	fi
	check "nothing started or restarted" bash -c "! grep -E ': (started|restarted)' '$tmp/out2'"
else
	echo "e2e: note: the build changed between the two runs ($v1 -> $v2): workers and proxy restart"
	check "same containerd and registry (pids, ports)" bash -c \
		"[ '$(grep -E '^(containerd|registry)' <<<"$before")' = '$(grep -E '^(containerd|registry)' <<<"$after")' ]"
	check "workers and proxy restarted on the new binaries" \
		grep -q "proxy: restarted (configuration changed)" "$tmp/out2"
	check "same ports" [ "$(awk '{print $1, $3}' <<<"$before")" = "$(awk '{print $1, $3}' <<<"$after")" ]
fi
flow available "available: ready after the second deploy"

# ---- 4. a dead worker is restarted, nothing else -----------------------------------------------
before=$(snapshot)
kill -KILL "$(cat "$PREFIX/run/jail2.pid")" 2>/dev/null
sleep 0.5
"$ROOT/scripts/deploy.sh" >"$tmp/out3" 2>&1
rc=$?
after=$(snapshot)
check "deploy.sh after a worker died exits 0" [ "$rc" = 0 ]
check "it started jail2 only" bash -c "[ \"\$(grep -E ': (started|restarted)' '$tmp/out3' | cut -d: -f2)\" = ' jail2' ]"
check "the other daemons kept their pids" \
	[ "$(grep -v '^jail2' <<<"$before")" = "$(grep -v '^jail2' <<<"$after")" ]
check "jail2 is back on its port" \
	[ "$(grep '^jail2' <<<"$before" | awk '{print $3}')" = "$(grep '^jail2' <<<"$after" | awk '{print $3}')" ]
grep -E ': (started|restarted)' "$tmp/out3" | sed 's/^/  | /'

# ---- 5. drain -----------------------------------------------------------------------------------
ready_workers() {
	curl -s -m 5 "http://127.0.0.1:$METRICS/metrics" |
		awk '$1 == "vplcell_proxy_workers{state=\"ready\"}" { print $2 + 0 }'
}
wait_for() { # SECONDS CMD...: until CMD succeeds
	local n=$(($1 * 5))
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.2
		n=$((n - 1))
	done
	return 1
}
ready_is() { [ "$(ready_workers)" = "$1" ]; }
status_is() { [ "$(client status 2>/dev/null)" = "$1" ]; }
check "the proxy sees 2 ready workers" wait_for 20 ready_is 2
touch "$PREFIX/drain/jail1"
check "worker 1 drained: the proxy sees 1 ready worker" wait_for 15 ready_is 1
check "... and available still answers ready" status_is ready
flow evaluate "... and an evaluation still runs (on worker 2)"
touch "$PREFIX/drain/jail2"
check "both drained: available answers offline" wait_for 15 status_is offline
rm -f "$PREFIX/drain/jail1" "$PREFIX/drain/jail2"
check "undrained: available answers ready again" wait_for 15 status_is ready

# ---- 6. stop: nothing of ours left --------------------------------------------------------------
NS=$(cat "$PREFIX/containerd/namespace")
SOCK=$PREFIX/containerd/containerd.sock
IDS=$(sed -n 's/^WORKER_ID=//p' "$PREFIX"/jail*.conf | tr '\n' ' ')
t=$(date +%s)
"$ROOT/scripts/stopservices.sh" >"$tmp/out4" 2>&1
rc=$?
echo "e2e: stopservices.sh: $(($(date +%s) - t)) s"
sed 's/^/  | /' "$tmp/out4"
check "stopservices.sh exits 0" [ "$rc" = 0 ]
ours() {
	local re
	re=$(printf '%s' "$PREFIX" | sed 's/[][\.*^$+?(){}|]/\\&/g')
	pgrep -af -- "(vpl-jail -f|vpl-proxy -f|containerd --config|docker-registry serve|-address) $re/" || true
}
no_ours() { [ -z "$(ours)" ]; }
check "no process of ours (workers, proxy, containerd, registry, shims)" no_ours
ours
check "no mount under the prefix" bash -c "! grep -qF ' $PREFIX/' /proc/self/mountinfo"
check "no FIFO under the prefix" bash -c "[ -z \"\$(find '$PREFIX' -type p 2>/dev/null)\" ]"
check "the workers' state directories are gone" bash -c "! ls -d '$PREFIX'/run/jail[0-9]* 2>/dev/null | grep -v '\\.pid\$'"
cgroups_left() {
	local id
	for id in $IDS; do ls -d /sys/fs/cgroup/*/vplcell/vplcell-"$id"-* /sys/fs/cgroup/vplcell/vplcell-"$id"-* 2>/dev/null; done
}
no_cgroups() { [ -z "$(cgroups_left)" ]; }
check "no cgroup of our workers' containers" no_cgroups
check "no runc state or FIFO directory of our namespace in /run/containerd" \
	bash -c "! ls -d /run/containerd/runc/$NS /run/containerd/fifo/$NS 2>/dev/null"
# containers, tasks and active snapshots: ask the prefix's containerd itself, started again
containerd --config "$PREFIX/containerd/containerd.toml" >"$tmp/ctd-check.log" 2>&1 &
cpid=$!
wait_for 10 bash -c "ctr -a '$SOCK' version >/dev/null 2>&1"
ctrq() { timeout 30 ctr -a "$SOCK" -n "$NS" "$@" 2>&1; }
left_containers=$(ctrq containers ls -q)
left_tasks=$(ctrq tasks ls -q)
left_snaps=$(ctrq snapshots ls | awk 'NR > 1 && $3 == "Active"')
image_kept=$(ctrq images ls -q)
kill -TERM "$cpid"
wait "$cpid" 2>/dev/null
rm -f "$SOCK" "$SOCK.ttrpc"
check "no container left in namespace $NS" [ -z "$left_containers" ]
check "no task left" [ -z "$left_tasks" ]
check "no active snapshot left" [ -z "$left_snaps" ]
check "the image stays in containerd's store (fast next deploy)" grep -q minivpl <<<"$image_kept"
check "kept: secrets, URL path, certificate" \
	bash -c "[ -s '$PREFIX/secrets/urlpath' ] && [ -s '$PREFIX/tls/cert.pem' ]"
"$ROOT/scripts/stopservices.sh" >"$tmp/out5" 2>&1
check "stopservices.sh again (nothing running) exits 0" [ $? = 0 ]
check "... and leaves no process either" no_ours
[ "$fail" = 0 ] || dump_logs # before --purge takes them
"$ROOT/scripts/stopservices.sh" --purge >"$tmp/out6" 2>&1
rc=$?
check "stopservices.sh --purge exits 0 and removes the prefix" bash -c "[ $rc = 0 ] && [ ! -e '$PREFIX' ]"
[ "$fail" = 0 ] || { cat "$tmp/out5" "$tmp/out6"; }
finish
