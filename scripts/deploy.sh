#!/bin/bash
# scripts/deploy.sh - brings the whole execution service up on THIS host, as root:
#
#     scripts/deploy.sh
#
# and ends with one line
#
#     Execution server URL: https://HOST:PORT/URLPATH
#
# (the URL to give Moodle), followed, when the certificate is the self-signed one made here, by
# what Moodle and its users need for it.
#
#     scripts/deploy.sh --swarm          # the same service as a Docker Swarm stack on this host
#     scripts/deploy.sh HOST...          # ... on a swarm of this host (manager) and HOSTs (workers)
#
# deploys conf/stack.yml instead of steps 9-10 below (scripts/deploy-swarm.sh: swarm init, the
# HOSTs joined over VPLCELL_REMOTE, images through the registry, docker secrets; docs/deploying.md).
# Steps (one progress line each, "deploy: ..."):
#
#   1. installs missing Debian packages (scripts/install-deps.sh; quiet when nothing is missing)
#   2. reads the settings (below; a bad value stops here, before anything changes) and keeps its
#      state in PREFIX
#   3. builds (make -j$(nproc) all; log in PREFIX/log/build.log) and copies vpl-jail, vpl-proxy
#      and vplhelper into PREFIX/bin/<hash of the three>/, so a later `make` never changes the
#      binaries under running daemons
#   4. secrets (created once, mode 0600): the URL path, the workers' own path, the proxy<->worker
#      secret, the route secret, the registry password
#   5. the certificate: SSL_CERT_FILE/SSL_KEY_FILE, or a self-signed one made once in PREFIX/tls
#      (CN = PUBLIC_HOST, SAN = that name, the host name and the host's addresses; made again only
#      when missing, when it expires within 30 days, or when PUBLIC_HOST is not in it)
#   6. a private containerd (own socket, root, state and namespace under PREFIX/containerd; the
#      system's containerd, if any, is not touched; see docs/deploy.md for why)
#   7. the local image registry on loopback (scripts/registry.sh, storage in PREFIX/registry)
#   8. the minivpl image: images/minivpl/build.sh (cached in VPLCELL_IMAGE_CACHE, default
#      /var/cache/vplcell/images: a few minutes the first time on a machine, instant after), pushed
#      to the registry when the registry does not hold that build, and pulled into containerd
#   9. NB_REPLICAS workers: PREFIX/bin/<v>/vpl-jail -f PREFIX/jailN.conf, plain HTTP on loopback
#      ports, behind the proxy only (PROXY_SECRET_FILE, TRUSTED_PROXIES=127.0.0.1/32)
#  10. the proxy: PREFIX/bin/<v>/vpl-proxy -f PREFIX/proxy.conf, HTTPS on PROXY_PORT, every address
#  11. waits (at most 180 s) until `available` through the proxy answers `ready`, runs one test
#      task through the proxy (a shell script in the sandbox), prints the URL.
#
# Daemons run in the background in their own session (setsid), stdin /dev/null, stdout+stderr
# appended to PREFIX/log/<name>.log, pid in PREFIX/run/<name>.pid; PID 1 need not be systemd.
#
# Running it again is safe. Each daemon is left alone when it runs (its pid file names a live
# process whose command line is ours), answers (containerd: `ctr version`; registry: GET /v2/;
# worker and proxy: GET /OK) and was started with the configuration file as it is now. A dead one
# is started; one that does not answer within a few seconds, or whose configuration changed (a
# changed .env, new binaries after `git pull`, a new minivpl build, changed worker ports), is
# restarted. A changed certificate alone is reloaded with SIGHUP (no restart). Ports and secrets
# are chosen once and kept, so a second run gives the same URL.
#
# Environment (for operators and tests):
#   VPLCELL_PREFIX       state directory (default /var/lib/vplcell); everything this script
#                        writes goes under it, except the image cache and the build tree
#   VPLCELL_ENV_FILE     the settings file (default .env at the top of the repository)
#   VPLCELL_IMAGE_CACHE  cache of image tarballs (default /var/cache/vplcell/images); pruned at
#                        each run (scripts/prune-image-cache.sh: VPLCELL_IMAGE_CACHE_KEEP,
#                        VPLCELL_IMAGE_CACHE_DAYS)
#   VPLCELL_BUILD_DIR    build tree of the binaries (default build/, made with `make BUILD=...`)
#   VPLCELL_NO_BUILD=1   use the binaries already in VPLCELL_BUILD_DIR, do not run make (tests)
# Swarm mode only (scripts/deploy-swarm.sh): DOCKER_HOST (the manager's dockerd, default the
# system's), VPLCELL_REMOTE (how a HOST runs a command line: `$VPLCELL_REMOTE HOST 'LINE'`,
# default `ssh -o BatchMode=yes`), VPLCELL_STACK (stack name, default vplcell),
# VPLCELL_STACK_FILES (override files added to conf/stack.yml with -c, space-separated).
#
# Settings: KEY=VALUE lines in the .env file (`#` comments, optional quotes, optional `export`);
# only the file is read, never the environment, so two runs with the same file give the same
# service. Every key is optional. Sizes take bytes or a unit K, M, G (powers of 1024).
#   NB_REPLICAS     number of workers (1..64; default 2)
#   PROXY_PORT      the public HTTPS port of the proxy (default 443)
#   PUBLIC_HOST     host name (or address) Moodle and browsers use to reach this host: the URL's
#                   HOST and the certificate's name (default: `hostname -f`)
#   URLPATH         the secret path of the URL (default: 40 random hex digits, made once, kept
#                   in PREFIX/secrets/urlpath)
#   MAXTIME         longest run of a program in seconds (worker default 1200)
#   MAXFILESIZE     largest file a program may write, size (default 64M)
#   MAXMEMORY       most memory a task may use, size (default 2000M; below 32M is refused)
#   MAXPROCESSES    most processes of a task (default 500)
#   MAXBODYSIZE     largest request (a submission's files) in bytes: REQUEST_MAX_SIZE of the
#                   proxy and the workers (default 128M). vplbdx's `1024**2*5` form is accepted.
#   SSL_CERT_FILE   certificate chain (PEM) of PUBLIC_HOST; with SSL_KEY_FILE, instead of the
#   SSL_KEY_FILE    self-signed one. After renewing them, run deploy.sh again (SIGHUP, no restart).
#   CERTBOT_WEBROOT_PATH  the proxy serves /.well-known/acme-challenge/ from this directory
#   HTTP_PORT       a plain-HTTP port of the proxy as well (default 0 = none), for certbot's
#                   HTTP-01 challenge (port 80). The protocol answers there too, in clear: keep
#                   Moodle's URL https.
#   TASK_ONLY_FROM  Moodle servers' addresses allowed to call the RPC methods (proxy; CIDR or
#                   prefixes, see docs/configuration.md; default any)
#   FAIL2BAN        the proxy's FAIL2BAN (default 0 = off)
#   PUBLIC_SECURE_PORT  behind a reverse proxy (conf/nginx-moodle.conf on the Moodle host): its
#                   public HTTPS port, which the proxy writes into its answers (`secureport`) and
#                   browsers open their WebSockets to (default PROXY_PORT). Moodle is then given
#                   the reverse proxy's URL (its name, this port, the same URLPATH), not the one
#                   printed here.
#   TRUSTED_PROXIES that reverse proxy's address(es) (CIDR blocks or prefixes, as TASK_ONLY_FROM):
#                   from them the proxy believes X-Forwarded-For (its last entry is the client for
#                   TASK_ONLY_FROM, FAIL2BAN, logs and the workers); default none
#   MAX_TASKS       tasks one worker holds at once (worker default 100)
#   POOL_SIZE       warm containers per worker (worker default 2)
#   SHUTDOWN_GRACE  seconds running tasks may finish when a worker is stopped (default 60)
#   LOGLEVEL        3 errors .. 6 information (default) .. 7 debug, proxy and workers
#   METRICS_PORT    Prometheus metrics on loopback: the proxy on this port, worker N on
#                   METRICS_PORT+N (default off)
#   REGISTRY_PORT   loopback port of the local registry (default 5000 if free, else any free
#                   port; kept)
#   WORKER_BASE_PORT  loopback port of worker 1, then +1 each (default 8081; a busy port is
#                   replaced by any free one; kept)
#   SWARM_ADDR      swarm mode: this host's address the other nodes reach (swarm advertise address,
#                   and the registry's address in image names); default 127.0.0.1 with --swarm,
#                   with HOSTs the source address of the route to the first HOST
#   SWARM_SUBNET    swarm mode: the stack's private overlay subnet (default 10.213.0.0/24)
# vplbdx's TMPER_PORT, PROXY_MOODLE_PORT, PROXY_MOODLE_PATH and SLPROXY_PORT are accepted and
# ignored with a note. Any other key is ignored with a warning.
#
# scripts/stopservices.sh stops everything; see docs/deploy.md.
set -euo pipefail
umask 077

SWARM=0
HOSTS=()
for a in "$@"; do
	case "$a" in
	--swarm) SWARM=1 ;;
	-h | --help)
		echo "usage: $0 [--swarm] [HOST...]   (see the header of this script, docs/deploy.md, docs/deploying.md)"
		exit 0
		;;
	-*)
		echo "usage: $0 [--swarm] [HOST...]" >&2
		exit 2
		;;
	*)
		SWARM=1
		HOSTS+=("$a")
		;;
	esac
done

here=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${VPLCELL_BUILD_DIR:-$here/build}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$here/$BUILD_DIR ;; esac
PREFIX=${VPLCELL_PREFIX:-/var/lib/vplcell}
ENV_FILE=${VPLCELL_ENV_FILE:-$here/.env}
IMAGE_CACHE=${VPLCELL_IMAGE_CACHE:-/var/cache/vplcell/images}
SAFE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH="$SAFE_PATH:$PATH"

say() { printf 'deploy: %s\n' "$*"; }
warn() { printf 'deploy: warning: %s\n' "$*" >&2; }
die() {
	printf 'deploy: error: %s\n' "$*" >&2
	exit 1
}

[ "$(id -u)" = 0 ] || die "run as root (containerd, the sandbox and the proxy's port need it)"
case "$PREFIX" in /*) ;; *) die "VPLCELL_PREFIX must be an absolute path" ;; esac
PREFIX=$(realpath -m "$PREFIX")
[ "$PREFIX" != / ] || die "VPLCELL_PREFIX cannot be /"

mkdir -p "$PREFIX"
chmod 0700 "$PREFIX"
mkdir -p "$PREFIX/secrets" "$PREFIX/tls" "$PREFIX/log" "$PREFIX/run" "$PREFIX/bin" \
	"$PREFIX/drain" "$PREFIX/containerd" "$PREFIX/registry"
# one deploy/stop at a time on a prefix; fd 8 is closed in every daemon started below
exec 8>"$PREFIX/.lock"
flock -w 600 8 || die "another deploy.sh or stopservices.sh holds $PREFIX/.lock"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vplcell-deploy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# ---- helpers ------------------------------------------------------------------------------------

# run_progress LABEL LOG CMD...: runs CMD with stdout+stderr to LOG, a line every 30 s while it
# runs; returns CMD's status.
run_progress() {
	local label=$1 logf=$2 pid t=0 rc=0
	shift 2
	"$@" </dev/null >"$logf" 2>&1 8>&- &
	pid=$!
	# a background command does not get the terminal's ^C: pass it on
	trap 'kill -TERM "$pid" 2>/dev/null; exit 130' INT TERM HUP
	while kill -0 "$pid" 2>/dev/null; do
		sleep 1
		t=$((t + 1))
		if [ $((t % 30)) = 0 ] && kill -0 "$pid" 2>/dev/null; then say "$label: still running ($t s)"; fi
	done
	wait "$pid" || rc=$?
	trap - INT TERM HUP
	return "$rc"
}

# cmdline of pid $1 with spaces between arguments, plus a trailing space
cmdline_of() { { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null; }

# pid_alive PIDFILE PATTERN: prints the pid when the file names a live process whose command line
# contains PATTERN (so a recycled pid is never taken for ours)
pid_alive() {
	local p
	[ -s "$1" ] || return 1
	p=$(cat "$1")
	[[ $p =~ ^[0-9]+$ ]] || return 1
	kill -0 "$p" 2>/dev/null || return 1
	case "$(cmdline_of "$p")" in *"$2"*) echo "$p" ;; *) return 1 ;; esac
}

# stop_pid PID SECONDS: SIGTERM, up to SECONDS for it to go, then SIGKILL
stop_pid() {
	local p=$1 n=$(($2 * 10))
	kill -TERM "$p" 2>/dev/null || return 0
	while [ "$n" -gt 0 ] && kill -0 "$p" 2>/dev/null; do
		sleep 0.1
		n=$((n - 1))
	done
	if kill -0 "$p" 2>/dev/null; then
		kill -KILL "$p" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
	fi
}

# start_daemon NAME CMD...: in its own session, a clean environment, output to the log, umask
# 022 (this script's 077 would reach containerd's snapshot directories and the workers' task
# directories, which the unprivileged task user must be able to enter)
start_daemon() {
	local name=$1
	shift
	(
		umask 022
		exec setsid env -i PATH="$SAFE_PATH" HOME=/root LANG=C.UTF-8 "$@" \
			</dev/null >>"$PREFIX/log/$name.log" 2>&1 8>&-
	) &
	echo $! >"$PREFIX/run/$name.pid"
}

# pid listening on TCP port $1 (any address), or nothing
port_pid() {
	ss -Hltnp "sport = :$1" 2>/dev/null |
		awk 'match($0, /pid=[0-9]+/) { print substr($0, RSTART + 4, RLENGTH - 4); exit }'
}
port_busy() { [ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]; }
# every pid holding a listening socket on TCP port $1
port_pids() {
	ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u
}
# port_taken PORT PIDFILE PATTERN: something listens on PORT that is not that daemon of ours
# (the socket may be held by the daemon's children instead, e.g. vpl-jail's privsep processes)
port_taken() {
	local own p n
	port_busy "$1" || return 1
	own=$(pid_alive "$2" "$3") || return 0
	for p in $(port_pids "$1"); do
		for n in 1 2 3 4; do
			[ "$p" = "$own" ] && return 1
			p=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $2 }') # the parent
			if [ -z "$p" ] || [ "$p" -le 1 ]; then break; fi
		done
	done
	return 0
}
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# HTTP status of a GET (000 when nothing answers)
http_status() { curl -s -k -o /dev/null -m 3 -w '%{http_code}' "$1" 2>/dev/null || true; }

sum_of() { sha256sum "$@" | sha256sum | cut -c1-16; }

secret_file() { # NAME -> path; 40 hex digits, made once
	local f=$PREFIX/secrets/$1
	[ -s "$f" ] || { openssl rand -hex 20 >"$f.new" && mv "$f.new" "$f"; }
	chmod 0600 "$f"
	echo "$f"
}

is_uint() { [[ $1 =~ ^[0-9]+$ ]] && [ "${#1}" -le 9 ]; }

# ---- 1. dependencies ----------------------------------------------------------------------------
"$here/scripts/install-deps.sh" 8>&- || die "installing the dependencies failed (scripts/install-deps.sh)"
for c in openssl curl ss flock setsid python3 containerd ctr runc docker-registry htpasswd skopeo; do
	command -v "$c" >/dev/null || die "$c is missing after scripts/install-deps.sh"
done
say "dependencies: ok"

# ---- 2. settings ------------------------------------------------------------------------------
declare -A ENV=()
KNOWN="NB_REPLICAS PROXY_PORT PUBLIC_HOST URLPATH MAXTIME MAXFILESIZE MAXMEMORY MAXPROCESSES"
KNOWN="$KNOWN MAXBODYSIZE SSL_CERT_FILE SSL_KEY_FILE CERTBOT_WEBROOT_PATH HTTP_PORT TASK_ONLY_FROM FAIL2BAN"
KNOWN="$KNOWN MAX_TASKS POOL_SIZE SHUTDOWN_GRACE LOGLEVEL METRICS_PORT REGISTRY_PORT WORKER_BASE_PORT"
KNOWN="$KNOWN PUBLIC_SECURE_PORT TRUSTED_PROXIES SWARM_ADDR SWARM_SUBNET"
VPLBDX_ONLY="TMPER_PORT PROXY_MOODLE_PORT PROXY_MOODLE_PATH SLPROXY_PORT"
if [ -f "$ENV_FILE" ]; then
	n=0
	while IFS= read -r line || [ -n "$line" ]; do
		n=$((n + 1))
		line=${line%$'\r'}
		line=${line#"${line%%[![:space:]]*}"}
		if [ -z "$line" ] || [ "${line:0:1}" = "#" ]; then continue; fi
		line=${line#export }
		[[ $line == *=* ]] || die "$ENV_FILE:$n: not KEY=VALUE"
		key=${line%%=*}
		key=${key%"${key##*[![:space:]]}"}
		val=${line#*=}
		val=${val#"${val%%[![:space:]]*}"}
		[[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "$ENV_FILE:$n: bad name '$key'"
		case "$val" in
		\"*)
			val=${val#\"}
			[[ $val == *\"* ]] || die "$ENV_FILE:$n: unterminated quote"
			val=${val%%\"*}
			;;
		\'*)
			val=${val#\'}
			[[ $val == *\'* ]] || die "$ENV_FILE:$n: unterminated quote"
			val=${val%%\'*}
			;;
		*)
			val=${val%%[[:space:]]#*}
			val=${val%"${val##*[![:space:]]}"}
			;;
		esac
		if [[ " $KNOWN " == *" $key "* ]]; then
			ENV[$key]=$val
		elif [[ " $VPLBDX_ONLY " == *" $key "* ]]; then
			say "settings: $key is a vplbdx setting with no meaning here: ignored"
		else
			warn "$ENV_FILE:$n: unknown setting $key ignored (see the header of scripts/deploy.sh)"
		fi
	done <"$ENV_FILE"
	envdesc="from $ENV_FILE"
else
	envdesc="no $ENV_FILE, defaults"
fi
get() { printf '%s' "${ENV[$1]:-}"; }

NB=$(get NB_REPLICAS)
NB=${NB:-2}
if ! { is_uint "$NB" && [ "$NB" -ge 1 ] && [ "$NB" -le 64 ]; }; then die "NB_REPLICAS=$NB: a number 1..64"; fi
PROXY_PORT=$(get PROXY_PORT)
PROXY_PORT=${PROXY_PORT:-443}
if ! { is_uint "$PROXY_PORT" && [ "$PROXY_PORT" -ge 1 ] && [ "$PROXY_PORT" -le 65535 ]; }; then
	die "PROXY_PORT=$PROXY_PORT: a port 1..65535"
fi
for k in MAXTIME MAXPROCESSES FAIL2BAN MAX_TASKS POOL_SIZE SHUTDOWN_GRACE LOGLEVEL METRICS_PORT \
	REGISTRY_PORT WORKER_BASE_PORT; do
	v=$(get $k)
	[ -z "$v" ] || is_uint "$v" || die "$k=$v: a whole number"
done
for k in HTTP_PORT METRICS_PORT REGISTRY_PORT WORKER_BASE_PORT PUBLIC_SECURE_PORT; do
	v=$(get $k)
	[ -z "$v" ] || is_uint "$v" || die "$k=$v: a whole number"
	[ "$k:$v" != HTTP_PORT:0 ] || continue
	[ -z "$v" ] || { [ "$v" -ge 1 ] && [ "$v" -le 65535 ]; } || die "$k=$v: a port 1..65535"
done
HTTP_PORT=$(get HTTP_PORT)
if [ -n "$HTTP_PORT" ] && [ "$HTTP_PORT" = "$PROXY_PORT" ]; then die "HTTP_PORT and PROXY_PORT must differ"; fi
HOST=$(get PUBLIC_HOST)
[ -n "$HOST" ] || HOST=$(hostname -f 2>/dev/null || true)
[ -n "$HOST" ] || HOST=$(hostname)
[[ $HOST =~ ^[A-Za-z0-9.:-]+$ ]] || die "PUBLIC_HOST=$HOST: a host name or an IP address"
URLHOST=$HOST
[[ $HOST != *:* ]] || URLHOST="[$HOST]" # an IPv6 address
# MAXBODYSIZE: bytes, a size with a unit, or vplbdx's arithmetic (1024**2*5)
BODY=$(get MAXBODYSIZE)
BODY=${BODY// /}
if [ -z "$BODY" ]; then
	BODY=128M
elif [[ $BODY =~ ^[0-9]+[KkMmGg]?$ ]]; then
	:
elif [[ $BODY =~ ^[0-9]{1,10}([*+]{1,2}[0-9]{1,10}){1,5}$ ]] && [[ $BODY != *'+*'* ]] && [[ $BODY != *'*+'* ]] &&
	[[ $BODY != *'++'* ]]; then
	BODY=$((BODY))
else
	die "MAXBODYSIZE=$(get MAXBODYSIZE): bytes (5242880), a size (5M) or a product (1024**2*5)"
fi
CERT=$(get SSL_CERT_FILE)
KEY=$(get SSL_KEY_FILE)
if [ -n "$CERT" ] || [ -n "$KEY" ]; then
	if [ -z "$CERT" ] || [ -z "$KEY" ]; then die "SSL_CERT_FILE and SSL_KEY_FILE go together"; fi
	if [ ! -r "$CERT" ] || [ ! -r "$KEY" ]; then die "cannot read $CERT or $KEY"; fi
	case "$CERT$KEY" in /*/*) ;; *) die "SSL_CERT_FILE and SSL_KEY_FILE must be absolute paths" ;; esac
	OWN_CERT=0
else
	CERT=$PREFIX/tls/cert.pem
	KEY=$PREFIX/tls/key.pem
	OWN_CERT=1
fi
# the URL path: .env's, else one made once
URLPATH=$(get URLPATH)
URLPATH=${URLPATH#/}
[ -n "$URLPATH" ] || URLPATH=$(cat "$(secret_file urlpath)")
[[ $URLPATH =~ ^[A-Za-z0-9._~/-]+$ ]] || die "URLPATH may only hold letters, digits and ._~/-"
say "settings: $envdesc; $NB workers; host $HOST, port $PROXY_PORT; state in $PREFIX"
if [ "$SWARM" = 1 ]; then
	# the swarm part: its checks, swarm init (before the long steps), later the stack
	# shellcheck source=scripts/deploy-swarm.sh
	. "$here/scripts/deploy-swarm.sh"
	swarm_prepare
elif [ -s "$PREFIX/run/swarm.stack" ]; then
	die "the swarm stack '$(cat "$PREFIX/run/swarm.stack")' of this prefix is deployed: scripts/stopservices.sh removes it first"
fi
for k in PROXY_PORT HTTP_PORT; do
	v=${!k:-0}
	[ "$v" != 0 ] || continue
	[ "$SWARM" = 0 ] || break # the stack's published port is dockerd's
	if port_taken "$v" "$PREFIX/run/proxy.pid" "/vpl-proxy -f $PREFIX/proxy.conf "; then
		lp=$(port_pid "$v")
		die "port $v ($k) is in use by pid $lp ($(cmdline_of "$lp" | cut -c1-80))"
	fi
done

# ---- 3. build -----------------------------------------------------------------------------------
if [ "${VPLCELL_NO_BUILD:-0}" = 1 ]; then
	say "build: not run (VPLCELL_NO_BUILD=1), binaries from $BUILD_DIR"
elif [ "$BUILD_DIR" = "$here/build" ]; then
	say "build: make -j$(nproc) all (log $PREFIX/log/build.log)"
	run_progress build "$PREFIX/log/build.log" make -C "$here" -j"$(nproc)" all ||
		{
			tail -n 30 "$PREFIX/log/build.log" >&2
			die "the build failed (log $PREFIX/log/build.log)"
		}
else
	say "build: make -j$(nproc) BUILD=$BUILD_DIR all (log $PREFIX/log/build.log)"
	run_progress build "$PREFIX/log/build.log" make -C "$here" -j"$(nproc)" BUILD="$BUILD_DIR" all ||
		{
			tail -n 30 "$PREFIX/log/build.log" >&2
			die "the build failed (log $PREFIX/log/build.log)"
		}
fi
for b in vpl-jail vpl-proxy vplhelper; do
	[ -x "$BUILD_DIR/$b" ] || die "$BUILD_DIR/$b is missing$([ "${VPLCELL_NO_BUILD:-0}" = 1 ] || echo " after make")"
done
VER=$(sum_of "$BUILD_DIR/vpl-jail" "$BUILD_DIR/vpl-proxy" "$BUILD_DIR/vplhelper" | cut -c1-12)
BIN=$PREFIX/bin/$VER
if [ ! -x "$BIN/vplhelper" ]; then
	mkdir -p "$BIN.new"
	cp "$BUILD_DIR/vpl-jail" "$BUILD_DIR/vpl-proxy" "$BUILD_DIR/vplhelper" "$BIN.new/"
	chmod 0755 "$BIN.new" "$BIN.new"/*
	rm -rf "$BIN"
	mv "$BIN.new" "$BIN"
fi

# ---- 4. secrets ---------------------------------------------------------------------------------
WORKER_URLPATH=$(cat "$(secret_file worker-urlpath)")
WORKER_SECRET=$(secret_file worker-secret)
ROUTE_SECRET=$(secret_file route-secret)
REG_PW_FILE=$(secret_file registry.password)
REG_USER=vplcell
# containerd namespace and worker names: unique to this prefix, so two prefixes never meet in
# containerd's host-wide paths (/run/containerd/runc/<namespace>) or in the cgroup tree
TAG=$(printf '%s' "$PREFIX" | sha256sum | cut -c1-8)
NS=vplcell-$TAG
echo "$NS" >"$PREFIX/containerd/namespace"

# ---- 5. certificate -----------------------------------------------------------------------------
if [ "$OWN_CERT" = 1 ]; then
	why=""
	if [ ! -s "$CERT" ] || [ ! -s "$KEY" ]; then
		why="made"
	elif ! openssl x509 -in "$CERT" -noout -checkend $((30 * 86400)) >/dev/null 2>&1; then
		why="renewed (it expires within 30 days)"
	elif [[ $HOST != *:* ]] && ! openssl x509 -in "$CERT" -noout -ext subjectAltName 2>/dev/null |
		grep -Eq "(DNS:|IP Address:)${HOST//./\\.}(,|\$)"; then
		why="made again (PUBLIC_HOST $HOST was not in it)"
	fi
	if [ -n "$why" ]; then
		if [[ $HOST =~ ^[0-9.]+$ ]] || [[ $HOST == *:* ]]; then san="IP:$HOST"; else san="DNS:$HOST"; fi
		short=$(hostname)
		[ "$short" = "$HOST" ] || san="$san,DNS:$short"
		for ip in $(hostname -I 2>/dev/null); do
			case "$ip" in fe80:* | "$HOST") continue ;; esac
			san="$san,IP:$ip"
		done
		openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 825 -subj "/CN=$HOST" \
			-addext "subjectAltName=$san" -keyout "$KEY.new" -out "$CERT.new" >/dev/null 2>&1 ||
			die "openssl could not make a certificate"
		chmod 0600 "$KEY.new"
		chmod 0644 "$CERT.new"
		mv "$KEY.new" "$KEY"
		mv "$CERT.new" "$CERT"
		say "certificate: self-signed for $HOST $why ($CERT)"
	else
		say "certificate: self-signed for $HOST ($CERT)"
	fi
else
	openssl x509 -in "$CERT" -noout -checkend 0 >/dev/null 2>&1 || die "$CERT has expired or is not a PEM certificate"
	openssl x509 -in "$CERT" -noout -checkend $((14 * 86400)) >/dev/null 2>&1 ||
		warn "$CERT expires within 14 days"
	say "certificate: $CERT"
fi

# ---- 6. containerd ------------------------------------------------------------------------------
CTD=$PREFIX/containerd
SOCK=$CTD/containerd.sock
ctrc() { timeout 60 ctr -a "$SOCK" -n "$NS" "$@"; }
cat >"$CTD/containerd.toml.new" <<EOF
# generated by scripts/deploy.sh: vplcell's private containerd
version = 2
root = "$CTD/root"
state = "$CTD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[debug]
  level = "info"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTD/opt"
EOF
mv "$CTD/containerd.toml.new" "$CTD/containerd.toml"
mkdir -p "$CTD/root" "$CTD/state" "$CTD/opt"
ctd_pattern="containerd --config $CTD/containerd.toml "
ctd_answers() { [ -S "$SOCK" ] && timeout 5 ctr -a "$SOCK" version >/dev/null 2>&1; }
ctd_started=0
if pid=$(pid_alive "$PREFIX/run/containerd.pid" "$ctd_pattern"); then
	if ctd_answers || { sleep 3 && ctd_answers; }; then
		say "containerd: running (pid $pid, $SOCK)"
	else
		say "containerd: pid $pid does not answer: restarting"
		stop_pid "$pid" 10
		pid=""
	fi
fi
if [ -z "${pid:-}" ]; then
	rm -f "$SOCK" "$SOCK.ttrpc"
	start_daemon containerd containerd --config "$CTD/containerd.toml"
	for _ in $(seq 1 200); do
		ctd_answers && break
		pid_alive "$PREFIX/run/containerd.pid" "$ctd_pattern" >/dev/null || break
		sleep 0.05
	done
	ctd_answers || {
		tail -n 20 "$PREFIX/log/containerd.log" >&2
		die "containerd did not start (log $PREFIX/log/containerd.log)"
	}
	ctd_started=1
	say "containerd: started (pid $(cat "$PREFIX/run/containerd.pid"), $SOCK)"
fi

# ---- 7. registry --------------------------------------------------------------------------------
REGDIR=$PREFIX/registry
RPORT=$(get REGISTRY_PORT)
if [ -z "$RPORT" ]; then
	if [ -s "$REGDIR/addr" ]; then
		RPORT=$(sed 's/.*://' "$REGDIR/addr")
	elif ! port_busy 5000; then
		RPORT=5000
	else
		RPORT=$(free_port)
	fi
fi
REG=${REG_HOST:-127.0.0.1}:$RPORT # REG_HOST: swarm mode with other nodes (SWARM_ADDR)
# a port taken by something that is not our registry: fail clearly
if port_taken "$RPORT" "$REGDIR/registry.pid" "docker-registry serve $REGDIR/registry.yml"; then
	p=$(port_pid "$RPORT")
	die "port $RPORT (REGISTRY_PORT) is in use by pid $p ($(cmdline_of "$p" | cut -c1-80))"
fi
reg_start() {
	"$here/scripts/registry.sh" start "$REGDIR" --addr "$REG" --user "$REG_USER" \
		--password-file "$REG_PW_FILE" >"$tmp/registry.out" 2>&1 8>&-
}
reg_start || {
	cat "$tmp/registry.out" >&2
	die "the registry did not start (log $REGDIR/registry.log)"
}
code=$(http_status "http://$REG/v2/")
if [ "$code" != 401 ]; then
	say "registry: GET /v2/ answers $code, not 401: restarting it"
	"$here/scripts/registry.sh" stop "$REGDIR" >/dev/null 2>&1 8>&- || true
	reg_start || {
		cat "$tmp/registry.out" >&2
		die "the registry did not start (log $REGDIR/registry.log)"
	}
fi
say "registry: $(grep -o 'already running.*\|started.*\|restarting' "$tmp/registry.out" | tail -n 1)"
printf '%s:%s\n' "$REG_USER" "$(cat "$REG_PW_FILE")" >"$PREFIX/secrets/registry.creds"
printf '%s %s %s\n' "$REG" "$REG_USER" "$(cat "$REG_PW_FILE")" >"$PREFIX/secrets/registry-auth"
chmod 0600 "$PREFIX/secrets/registry.creds" "$PREFIX/secrets/registry-auth"

# ---- 8. the minivpl image -----------------------------------------------------------------------
IMAGE=$REG/minivpl:latest
export VPLCELL_IMAGE_CACHE=$IMAGE_CACHE
t0=$(date +%s)
run_progress "image: images/minivpl/build.sh" "$PREFIX/log/image-build.log" \
	"$here/images/minivpl/build.sh" || {
	tail -n 20 "$PREFIX/log/image-build.log" >&2
	die "building minivpl failed (log $PREFIX/log/image-build.log)"
}
# build.sh prints the tarball as its last stdout line; stdout and stderr share the log here
TARBALL=$(grep -E '^/.*\.tar$' "$PREFIX/log/image-build.log" | tail -n 1 || true)
t=$(($(date +%s) - t0))
[ "$t" -lt 5 ] || say "image: built minivpl in $t s ($TARBALL)"
[ -s "$TARBALL" ] || die "images/minivpl/build.sh gave no tarball (log $PREFIX/log/image-build.log)"
touch "$TARBALL" # last use, for scripts/prune-image-cache.sh
# the registry's digest of REPO:TAG (default minivpl:latest), or nothing
registry_digest() {
	curl -s -I -m 10 -K - "http://$REG/v2/${1:-minivpl}/manifests/${2:-latest}" 2>/dev/null <<EOF |
user = "$REG_USER:$(cat "$REG_PW_FILE")"
header = "Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"
EOF
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }' || true
}
pushed=$(cat "$REGDIR/minivpl.pushed" 2>/dev/null || true)
DIGEST=$(registry_digest minivpl latest)
if [ -n "$DIGEST" ] && [ "$pushed" = "$TARBALL $DIGEST" ]; then
	say "image: $IMAGE in the registry ($DIGEST)"
else
	run_progress "image: pushing" "$PREFIX/log/image-push.log" "$here/scripts/push-image.sh" \
		"$TARBALL" "$IMAGE" --creds-file "$PREFIX/secrets/registry.creds" --plain-http || {
		tail -n 20 "$PREFIX/log/image-push.log" >&2
		die "pushing minivpl to the registry failed (log $PREFIX/log/image-push.log)"
	}
	DIGEST=$(grep -E '^sha256:[0-9a-f]{64}$' "$PREFIX/log/image-push.log" | tail -n 1 || true)
	[[ $DIGEST == sha256:* ]] || die "push-image.sh gave no digest (log $PREFIX/log/image-push.log)"
	echo "$TARBALL $DIGEST" >"$REGDIR/minivpl.pushed"
	say "image: pushed $IMAGE ($DIGEST)"
fi
# older builds in the image cache (every image; the ones in use are kept)
VPLCELL_IMAGE_CACHE=$IMAGE_CACHE "$here/scripts/prune-image-cache.sh" 2>&1 | sed 's/^prune-image-cache: /deploy: image cache: /' || true

# ---- the test task through the proxy, and the URL (both modes) ------------------------------------
available() {
	curl -s -k -m 5 -K - 2>/dev/null <<EOF || true
url = "https://127.0.0.1:$PROXY_PORT/$URLPATH"
header = "Content-Type: application/json;charset=UTF-8"
data = "{\"method\":\"available\",\"params\":{\"maxmemory\":1048576},\"id\":\"1\"}"
EOF
}
available_status() {
	available | python3 -c 'import json,sys
try: print(json.load(sys.stdin)["result"]["status"])
except Exception: print("")' 2>/dev/null || true
}
# one evaluation through the proxy: the sandbox really runs tasks (not only answers `available`)
smoke() {
	URLPATH=$URLPATH python3 - "$PROXY_PORT" <<'EOF'
import json, os, ssl, sys, time, http.client
port, path = int(sys.argv[1]), "/" + os.environ["URLPATH"]
ctx = ssl.create_default_context()
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
def rpc(method, params):
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    c.request("POST", path, json.dumps({"method": method, "params": params, "id": "1"}),
              {"Content-Type": "application/json;charset=UTF-8"})
    r = c.getresponse()
    return r.status, r.read().decode("utf-8", "replace")
script = ("#!/bin/bash\ncat > vpl_execution <<'X'\n#!/bin/bash\necho vplcell-smoke-ok\nX\n"
          "chmod +x vpl_execution\n")
st, body = rpc("request", {"files": {"vpl_evaluate.sh": script},
                           "fileencoding": {"vpl_evaluate.sh": 0}, "filestodelete": {},
                           "execute": "vpl_evaluate.sh", "interactive": 0, "lang": "en_US.UTF-8",
                           "maxtime": 60, "maxmemory": 256 << 20, "maxfilesize": 1 << 20,
                           "maxprocesses": 32, "pluginversion": 2026012812})
if st != 200:
    sys.exit("request: HTTP %d %s" % (st, body[:200]))
admin = json.loads(body)["result"]["adminticket"]
deadline = time.time() + 90
while time.time() < deadline:
    st, body = rpc("getresult", {"adminticket": admin, "pluginversion": 2026012812})
    if st == 200:
        res = json.loads(body)["result"]
        if "vplcell-smoke-ok" in res.get("execution", ""):
            sys.exit(0)
        sys.exit("the task ran but said: %r %r" % (res.get("compilation", "")[:300],
                                                    res.get("execution", "")[:300]))
    time.sleep(0.2)
sys.exit("the task did not finish in 90 s")
EOF
}
print_url() {
	echo "Execution server URL: https://$URLHOST:$PROXY_PORT/$URLPATH"
	if [ "$OWN_CERT" = 1 ]; then
		cat <<EOF
The certificate is self-signed ($CERT). For Moodle:
  - in Site administration > Plugins > Activity modules > Virtual programming lab, tick
    "Accept self-signed certificates" (mod_vpl | acceptcertificates), so that Moodle's own
    requests to the execution server are accepted;
  - each browser that runs the VPL IDE must accept the certificate once: open
    https://$URLHOST:$PROXY_PORT/OK and accept it (the IDE's "accept certificate" dialog opens
    that page too). A certificate from a CA (SSL_CERT_FILE/SSL_KEY_FILE in .env) avoids both.
EOF
	fi
}
if [ "$SWARM" = 1 ]; then
	swarm_deploy # scripts/deploy-swarm.sh: the stack, its readiness, the test task, the URL
	exit 0
fi

# ---- configuration files ------------------------------------------------------------------------
# ports of the workers: kept in PREFIX/ports ("N PORT" lines)
touch "$PREFIX/ports"
declare -A WPORT=()
while read -r a b; do
	[ -n "${a:-}" ] && WPORT[$a]=$b
done <"$PREFIX/ports"
BASE=$(get WORKER_BASE_PORT)
BASE=${BASE:-8081}
jail_pattern() { echo "/vpl-jail -f $PREFIX/jail$1.conf "; }
taken=" $PROXY_PORT $RPORT "
for n in $(seq 1 "$NB"); do
	p=${WPORT[$n]:-}
	if [ -n "$p" ]; then
		# kept, unless something that is not this worker took it
		if port_taken "$p" "$PREFIX/run/jail$n.pid" "$(jail_pattern "$n")"; then
			warn "worker $n: its port $p is taken by pid $(port_pid "$p"): moving it"
			p=""
		fi
	fi
	if [ -z "$p" ]; then
		p=$((BASE + n - 1))
		if [ "$p" -gt 65535 ] || port_busy "$p" || [[ $taken == *" $p "* ]]; then p=$(free_port); fi
	fi
	WPORT[$n]=$p
	taken="$taken$p "
done
: >"$PREFIX/ports.new"
for n in $(seq 1 "$NB"); do echo "$n ${WPORT[$n]}" >>"$PREFIX/ports.new"; done
mv "$PREFIX/ports.new" "$PREFIX/ports"

opt() { # KEY [VALUE]: a line when the setting is given
	local v=${2-$(get "$1")}
	[ -z "$v" ] || printf '%s=%s\n' "$1" "$v"
}
write_jail_conf() { # N
	local n=$1 mp
	mp=$(get METRICS_PORT)
	[ -z "$mp" ] || mp=$((mp + n))
	{
		echo "# generated by scripts/deploy.sh at every run: edit .env, not this file"
		echo "# binaries $VER, image $DIGEST"
		echo "PORT=${WPORT[$n]}"
		echo "SECURE_PORT=0"
		echo "INTERFACE=127.0.0.1"
		echo "URLPATH=/$WORKER_URLPATH"
		echo "PROXY_SECRET_FILE=$WORKER_SECRET"
		echo "TRUSTED_PROXIES=127.0.0.1/32"
		echo "WORKER_ID=$TAG-$n"
		echo "STATE_DIR=$PREFIX/run/jail$n"
		# one STATE_DIR each, so no shared uid claims: disjoint task uid ranges instead
		# (docs/security.md "Task uids"), out of 70000..89999
		echo "PRISONER_UID=$((70000 + (n - 1) * (20000 / NB)))"
		echo "PRISONER_UIDS=$((20000 / NB))"
		echo "DRAIN_FILE=$PREFIX/drain/jail$n"
		echo "CONTAINERD_SOCKET=$SOCK"
		echo "CONTAINERD_NAMESPACE=$NS"
		echo "HELPER_PATH=$BIN/vplhelper"
		echo "LOCAL_REGISTRY=$REG"
		echo "DEFAULT_IMAGE=$IMAGE"
		echo "REGISTRY_AUTH_FILE=$PREFIX/secrets/registry-auth"
		echo "REQUEST_MAX_SIZE=$BODY"
		opt MAXTIME
		opt MAXFILESIZE
		opt MAXMEMORY
		opt MAXPROCESSES
		opt MAX_TASKS
		opt POOL_SIZE
		opt SHUTDOWN_GRACE
		opt LOGLEVEL
		opt METRICS_PORT "$mp"
	} >"$PREFIX/jail$n.conf.new"
	chmod 0600 "$PREFIX/jail$n.conf.new"
	if ! "$BIN/vpl-jail" -t -f "$PREFIX/jail$n.conf.new" >"$tmp/t.out" 2>&1; then
		grep -v '^[A-Z_]*=' "$tmp/t.out" >&2 || true
		die "the workers' configuration is refused (from .env: see the message above)"
	fi
	mv "$PREFIX/jail$n.conf.new" "$PREFIX/jail$n.conf"
}
for n in $(seq 1 "$NB"); do write_jail_conf "$n"; done
mem=$(sed -n 's/^MAXMEMORY=//p' "$tmp/t.out")
if [ -n "$mem" ] && [ "$mem" -lt $((32 << 20)) ]; then
	die "MAXMEMORY=$(get MAXMEMORY) is $((mem >> 10)) KiB: no compiler runs in that (vplbdx only" \
		"reported this value; vplcell enforces it). Give it with a unit, e.g. MAXMEMORY=2000M"
fi

workers=""
for n in $(seq 1 "$NB"); do workers="$workers 127.0.0.1:${WPORT[$n]}"; done
{
	echo "# generated by scripts/deploy.sh at every run: edit .env, not this file"
	echo "# binaries $VER"
	echo "SECURE_PORT=$PROXY_PORT"
	echo "PORT=${HTTP_PORT:-0}"
	echo "INTERFACE="
	echo "SSL_CERT_FILE=$CERT"
	echo "SSL_KEY_FILE=$KEY"
	echo "URLPATH=/$URLPATH"
	echo "WORKER_URLPATH=/$WORKER_URLPATH"
	echo "WORKERS=${workers# }"
	echo "WORKER_SECRET_FILE=$WORKER_SECRET"
	echo "ROUTE_SECRET_FILE=$ROUTE_SECRET"
	echo "REQUEST_MAX_SIZE=$BODY"
	echo "HEALTH_INTERVAL=1000"
	opt PUBLIC_SECURE_PORT
	opt TASK_ONLY_FROM
	opt TRUSTED_PROXIES
	opt FAIL2BAN
	opt CERTBOT_WEBROOT_PATH
	opt METRICS_PORT
	opt LOGLEVEL
} >"$PREFIX/proxy.conf.new"
chmod 0600 "$PREFIX/proxy.conf.new"
if ! "$BIN/vpl-proxy" -t -f "$PREFIX/proxy.conf.new" >"$tmp/t.out" 2>&1; then
	grep -v '^[A-Z_]*=' "$tmp/t.out" >&2 || true
	die "the proxy's configuration is refused (see the message above)"
fi
mv "$PREFIX/proxy.conf.new" "$PREFIX/proxy.conf"

# a logrotate configuration for the operator to install (docs/deploy.md)
cat >"$PREFIX/logrotate.conf" <<EOF
# generated by scripts/deploy.sh; install with: ln -s $PREFIX/logrotate.conf /etc/logrotate.d/vplcell
# The daemons append (O_APPEND) to these files, so copytruncate loses nothing.
$PREFIX/log/*.log $PREFIX/registry/registry.log {
	weekly
	maxsize 100M
	rotate 4
	compress
	delaycompress
	missingok
	notifempty
	copytruncate
}
EOF
chmod 0644 "$PREFIX/logrotate.conf"

# ---- the image in containerd --------------------------------------------------------------------
ctd_digest=$(ctrc images ls 2>/dev/null | awk -v r="$IMAGE" '$1 == r { print $3 }' || true)
if [ "$ctd_digest" = "$DIGEST" ]; then
	say "image: in containerd"
else
	run_progress "image: pulling into containerd" "$PREFIX/log/image-pull.log" \
		"$BIN/vpl-jail" -f "$PREFIX/jail1.conf" image pull "$IMAGE" || {
		tail -n 20 "$PREFIX/log/image-pull.log" >&2
		die "pulling $IMAGE into containerd failed (log $PREFIX/log/image-pull.log)"
	}
	say "image: pulled into containerd"
fi

# ---- 9. workers ---------------------------------------------------------------------------------
conf_sum() { sha256sum "$1" | cut -c1-64; }

# ensure NAME PIDFILE PATTERN CONF HEALTHURL STOPSECS CMD...: leaves a healthy daemon started with
# this configuration alone, (re)starts it otherwise. Prints one progress line.
ensure() {
	local name=$1 pidf=$2 pat=$3 conf=$4 url=$5 secs=$6 pid what code
	shift 6
	what="started"
	STARTED=1
	if pid=$(pid_alive "$pidf" "$pat"); then
		if [ "$(cat "$PREFIX/run/$name.confsum" 2>/dev/null)" != "$(conf_sum "$conf")" ]; then
			what="restarted (configuration changed)"
			stop_pid "$pid" "$secs"
		else
			for _ in $(seq 1 50); do
				code=$(http_status "$url")
				[ "$code" = 200 ] && break
				sleep 0.1
			done
			if [ "$code" = 200 ]; then
				say "$name: running (pid $pid)"
				STARTED=0
				return 0
			fi
			what="restarted (it did not answer)"
			stop_pid "$pid" 5
		fi
	fi
	start_daemon "$name" "$@"
	conf_sum "$conf" >"$PREFIX/run/$name.confsum"
	for _ in $(seq 1 300); do
		code=$(http_status "$url")
		[ "$code" = 200 ] && break
		pid_alive "$pidf" "$pat" >/dev/null || break
		sleep 0.1
	done
	if [ "$code" != 200 ]; then
		tail -n 20 "$PREFIX/log/$name.log" >&2
		die "$name did not start (log $PREFIX/log/$name.log)"
	fi
	say "$name: $what (pid $(cat "$pidf"))"
}

# a worker stopped with SIGTERM may let its tasks finish for SHUTDOWN_GRACE seconds
grace=$(get SHUTDOWN_GRACE)
STOP_SECS=$((${grace:-60} + 15))
any_worker=0
for f in "$PREFIX"/run/jail*.pid; do
	[ -e "$f" ] || continue
	n=${f##*/jail}
	n=${n%.pid}
	pid_alive "$f" "$(jail_pattern "$n")" >/dev/null && any_worker=1
done
if [ "$ctd_started" = 1 ] && [ "$any_worker" = 0 ]; then
	# containerd was down and no worker runs: remove what a crash or reboot left in our namespace
	for t in $(ctrc tasks ls -q 2>/dev/null); do ctrc tasks kill -a -s SIGKILL "$t" >/dev/null 2>&1 || true; done
	for t in $(ctrc tasks ls -q 2>/dev/null); do ctrc tasks rm -f "$t" >/dev/null 2>&1 || true; done
	for c in $(ctrc containers ls -q 2>/dev/null); do ctrc containers rm "$c" >/dev/null 2>&1 || true; done
fi

for n in $(seq 1 "$NB"); do
	# a worker that is not running: what its predecessor left in its state directory goes (the
	# new one removes the containers labelled with its WORKER_ID)
	if ! pid_alive "$PREFIX/run/jail$n.pid" "$(jail_pattern "$n")" >/dev/null; then
		rm -rf "$PREFIX/run/jail$n"
	fi
	mkdir -p "$PREFIX/run/jail$n"
	ensure "jail$n" "$PREFIX/run/jail$n.pid" "$(jail_pattern "$n")" "$PREFIX/jail$n.conf" \
		"http://127.0.0.1:${WPORT[$n]}/OK" "$STOP_SECS" \
		"$BIN/vpl-jail" -f "$PREFIX/jail$n.conf"
done
# workers beyond NB_REPLICAS (NB_REPLICAS was lowered): stopped and forgotten
for f in "$PREFIX"/jail*.conf; do
	[ -e "$f" ] || continue
	n=${f##*/jail}
	n=${n%.conf}
	if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -le "$NB" ]; then continue; fi
	if pid=$(pid_alive "$PREFIX/run/jail$n.pid" "$(jail_pattern "$n")"); then
		stop_pid "$pid" "$STOP_SECS"
		say "jail$n: stopped (NB_REPLICAS is $NB)"
	fi
	rm -rf "$f" "$PREFIX/run/jail$n" "$PREFIX/run/jail$n.pid" "$PREFIX/run/jail$n.confsum"
done

# ---- 10. proxy ----------------------------------------------------------------------------------
ensure proxy "$PREFIX/run/proxy.pid" "/vpl-proxy -f $PREFIX/proxy.conf " "$PREFIX/proxy.conf" \
	"https://127.0.0.1:$PROXY_PORT/OK" 15 "$BIN/vpl-proxy" -f "$PREFIX/proxy.conf"
# a new certificate under a proxy that kept running: reload it
certsum=$(sum_of "$CERT" "$KEY")
if [ "$(cat "$PREFIX/run/proxy.certsum" 2>/dev/null)" != "$certsum" ]; then
	if [ "$STARTED" = 0 ]; then
		kill -HUP "$(cat "$PREFIX/run/proxy.pid")"
		say "proxy: certificate reloaded (SIGHUP)"
	fi
	echo "$certsum" >"$PREFIX/run/proxy.certsum"
fi

# binaries no running daemon uses any more
for d in "$PREFIX"/bin/*; do
	if [ ! -d "$d" ] || [ "$d" = "$BIN" ]; then continue; fi
	used=0
	for f in "$PREFIX"/run/*.pid; do
		[ -e "$f" ] && pid_alive "$f" "$d/" >/dev/null && used=1
	done
	[ "$used" = 1 ] || rm -rf "$d"
done

# ---- 11. ready through the proxy ----------------------------------------------------------------
t0=$(date +%s)
next=15
status=""
while :; do
	status=$(available_status)
	[ "$status" = ready ] && break
	if [ "$status" = offline ] && [ "$(find "$PREFIX/drain" -type f | wc -l)" -ge "$NB" ]; then
		warn "every worker is drained: available answers offline until you remove $PREFIX/drain/jail*"
		break
	fi
	t=$(($(date +%s) - t0))
	[ "$t" -lt 180 ] || die "no ready worker through the proxy after $t s (available: '${status:-no answer}'; logs in $PREFIX/log)"
	if [ "$t" -ge "$next" ]; then
		say "waiting for a ready worker through the proxy ($t s, available: ${status:-no answer})"
		next=$((next + 15))
	fi
	sleep 0.5
done
if [ "$status" = ready ]; then
	if ! smoke >"$tmp/smoke.out" 2>&1; then
		cat "$tmp/smoke.out" >&2
		die "a test task through the proxy failed (see above; logs $PREFIX/log/jail*.log)"
	fi
	say "ready: a test task ran through the proxy on port $PROXY_PORT ($NB worker(s))"
fi

print_url
