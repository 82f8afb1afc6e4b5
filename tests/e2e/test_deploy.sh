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
#  2b. nginx in front (conf/nginx-moodle.conf, as on the Moodle host): .env gets
#     PUBLIC_SECURE_PORT=<nginx's port> and TRUSTED_PROXIES=127.0.0.1/32, deploy.sh applies them;
#     Debian's nginx runs in a directory of its own with a wrapper http{} that includes a copy of
#     the conf changed only where it says ADAPT (port, name, a certificate the test makes,
#     upstream, body size). Through https://127.0.0.1:<nginx port>/URLPATH: `available` naming
#     nginx's port, an evaluation, a terminal run and a VNC run (their WebSockets to the port the
#     answers name: nginx's), an evaluation from 127.0.0.2 with a forged X-Forwarded-For, which
#     the proxy's and the worker's logs show as from 127.0.0.2. The conf's proxy_read_timeout is
#     >= 3600 s (an idle terminal or VNC socket outlives nginx's default 60 s; parsed, not waited
#     for). nginx stopped, none of its processes left. The deploy keeps these settings;
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
NGX=""
NGX_PID=""
cleanup() {
	if [ -n "$NGX_PID" ] && kill -0 "$NGX_PID" 2>/dev/null; then
		kill -TERM "$NGX_PID" 2>/dev/null
		wait "$NGX_PID" 2>/dev/null
	fi
	[ -z "$NGX" ] || rm -rf "$NGX"
	if [ -d "$PREFIX" ]; then
		"$ROOT/scripts/stopservices.sh" --now --purge >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

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

# ---- 2b. the same through nginx in front of the proxy (conf/nginx-moodle.conf) -----------------
t=$(date +%s)
NGX_PORT=$(free_ports 1)
cat >>"$VPLCELL_ENV_FILE" <<EOF
# step 2b: behind nginx, which listens on $NGX_PORT
PUBLIC_SECURE_PORT=$NGX_PORT
TRUSTED_PROXIES=127.0.0.1/32
EOF
"$ROOT/scripts/deploy.sh" >"$tmp/out-ngx" 2>&1
rc=$?
check "deploy.sh with PUBLIC_SECURE_PORT and TRUSTED_PROXIES in .env exits 0" [ "$rc" = 0 ]
[ "$rc" = 0 ] || sed 's/^/  | /' "$tmp/out-ngx"
check "... they reach proxy.conf" bash -c "grep -qx 'PUBLIC_SECURE_PORT=$NGX_PORT' '$PREFIX/proxy.conf' &&
	grep -qx 'TRUSTED_PROXIES=127.0.0.1/32' '$PREFIX/proxy.conf'"
check "... and the proxy was restarted for them" \
	grep -q '^deploy: proxy: restarted (configuration changed)' "$tmp/out-ngx"
# from now on the proxy's answers send browsers to nginx's port
export E2E_SECUREPORT=$NGX_PORT

NGX=$(mktemp -d /tmp/vplcell-e2e-nginx.XXXXXX)
chmod 0755 "$NGX" # nginx's workers (www-data) make their temporary files in it
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	-keyout "$NGX/key.pem" -out "$NGX/cert.pem" >/dev/null 2>&1
# what an operator changes (the lines marked ADAPT), nothing else
sed -e "s/^\([[:space:]]*listen\) 443 ssl;/\1 $NGX_PORT ssl;/" \
	-e "s/^\([[:space:]]*listen\) \[::\]:443 ssl;/\1 [::]:$NGX_PORT ssl;/" \
	-e "s/^\([[:space:]]*server_name\) vpl\.example\.org;/\1 localhost;/" \
	-e "s#^\([[:space:]]*ssl_certificate\)[[:space:]][[:space:]]*/.*;#\1 $NGX/cert.pem;#" \
	-e "s#^\([[:space:]]*ssl_certificate_key\)[[:space:]][[:space:]]*/.*;#\1 $NGX/key.pem;#" \
	-e "s/^\([[:space:]]*server\) 127\.0\.0\.1:8443;/\1 127.0.0.1:$PROXY_PORT;/" \
	-e "s/^\([[:space:]]*client_max_body_size\) 128m;/\1 16m;/" \
	"$ROOT/conf/nginx-moodle.conf" >"$NGX/nginx-moodle.conf"
check "conf/nginx-moodle.conf adapted by substitution: 7 lines changed" \
	[ "$(diff "$ROOT/conf/nginx-moodle.conf" "$NGX/nginx-moodle.conf" | grep -c '^>')" = 7 ]
mkdir -p "$NGX/tmp"
cat >"$NGX/nginx.conf" <<EOF
# tests/e2e/test_deploy.sh: Debian's nginx with conf/nginx-moodle.conf, as in /etc/nginx/conf.d/
user www-data;
worker_processes 1;
events {
	worker_connections 256;
}
http {
	client_body_temp_path $NGX/tmp/body;
	proxy_temp_path $NGX/tmp/proxy;
	fastcgi_temp_path $NGX/tmp/fastcgi;
	uwsgi_temp_path $NGX/tmp/uwsgi;
	scgi_temp_path $NGX/tmp/scgi;
	include $NGX/nginx-moodle.conf;
}
EOF
NGX_ARGS=(-c "$NGX/nginx.conf" -p "$NGX/" -e "$NGX/error.log")
check "nginx -t accepts it" nginx "${NGX_ARGS[@]}" -t -q -g "pid $NGX/nginx.pid;"
# in the foreground of its own (daemon off): $! is nginx's master itself
nginx "${NGX_ARGS[@]}" -g "daemon off; pid $NGX/nginx.pid;" </dev/null >>"$NGX/error.log" 2>&1 &
NGX_PID=$!
ngx_up() {
	[ "$(curl -s -o /dev/null -w '%{http_code}' -m 2 --cacert "$NGX/cert.pem" \
		"https://127.0.0.1:$NGX_PORT/OK")" = 200 ]
}
check "nginx runs and answers GET /OK (the proxy's page, certificate verified)" wait_for 10 ngx_up
NGX_URL=https://127.0.0.1:$NGX_PORT/${URL##*/}
nflow() { # CHECK LABEL [VAR=VALUE...]
	local out c=$1 l=$2
	shift 2
	if out=$(env "$@" python3 "$ROOT/tests/e2e/e2e_client.py" "$NGX_URL" "$NGX/cert.pem" "$c" 2>&1); then
		ok "nginx: $l"
	else
		bad "nginx: $l"
		printf '%s\n' "$out" | tail -n 30 | sed 's/^/  | /'
	fi
}
nflow available "available: ready, secureport = nginx's port"
nflow evaluate "evaluation: C hello world, getresult"
nflow terminal "interactive terminal run, wss through nginx (monitor + execute)"
nflow vnc "VNC run through nginx: RFB handshake, VNC auth, framebuffer"
nflow evaluate "evaluation from 127.0.0.2 with a forged X-Forwarded-For" \
	E2E_SOURCE=127.0.0.2 E2E_XFF=203.0.113.9
check "the proxy's log: the request from 127.0.0.2 (nginx's X-Forwarded-For believed)" \
	grep -q 'rpc request from=127\.0\.0\.2 ' "$PREFIX/log/proxy.log"
check "a worker's log: the request from 127.0.0.2 (the proxy's X-Forwarded-For)" \
	grep -q 'rpc request json task=[0-9]* from=127\.0\.0\.2 ' "$PREFIX"/log/jail*.log
check "... and no log took the forged 203.0.113.9 for the client" \
	bash -c "! grep -q '203\.0\.113\.9' '$PREFIX'/log/*.log"
# An idle terminal or VNC socket must outlive nginx's default proxy_read_timeout (60 s): a task
# may run MAXTIME (up to 1200 s) without a byte. Parsed from the conf rather than waited for.
read_timeout() { # the smallest proxy_read_timeout of the adapted conf in seconds (60: none)
	python3 -c '
import re, sys
units = {"ms": 0.001, "": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800,
         "M": 2592000, "y": 31536000}
vals = []
for line in open(sys.argv[1]):
    m = re.match(r"\s*proxy_read_timeout\s+([^;#]+);", line.split("#", 1)[0])
    if m:
        v = re.sub(r"\s", "", m.group(1))
        parts = re.findall(r"(\d+)(ms|[smhdwMy]?)", v)
        if "".join(n + u for n, u in parts) != v:
            sys.exit("cannot read " + line.strip())
        vals.append(sum(int(n) * units[u] for n, u in parts))
print(int(min(vals)) if vals else 60)' "$NGX/nginx-moodle.conf"
}
RT=$(read_timeout)
check "nginx's proxy_read_timeout is ${RT:-?} s >= 3600 (an idle terminal/VNC socket survives)" \
	[ "${RT:-0}" -ge 3600 ]
check "nginx's pid file names the master we started" \
	bash -c "[ \"\$(cat '$NGX/nginx.pid' 2>/dev/null)\" = $NGX_PID ]"
ngx_workers=$(pgrep -P "$NGX_PID" | tr '\n' ' ')
kill -TERM "$NGX_PID" 2>/dev/null
wait "$NGX_PID" 2>/dev/null
ngx_gone() {
	local p
	! kill -0 "$NGX_PID" 2>/dev/null || return 1
	for p in $ngx_workers; do ! kill -0 "$p" 2>/dev/null || return 1; done
	[ -z "$(ss -Hltn "sport = :$NGX_PORT")" ]
}
check "nginx stopped: master and worker(s) ${ngx_workers% } gone, port $NGX_PORT closed" \
	wait_for 5 ngx_gone
NGX_PID=""
check "nginx logged no error (upstream resets, refused upgrades, timeouts)" \
	bash -c "! grep -qE '\[(error|crit|alert|emerg)\]' '$NGX/error.log'"
if [ "$fail" != 0 ] && [ -s "$NGX/error.log" ]; then
	echo "---- nginx error.log (tail)"
	tail -n 20 "$NGX/error.log"
fi
rm -rf "$NGX"
NGX=""
echo "e2e: nginx step (with its deploy.sh): $(($(date +%s) - t)) s"

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
