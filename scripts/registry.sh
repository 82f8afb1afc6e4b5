#!/bin/bash
# registry.sh start|stop|status|env DIR [--addr HOST:PORT] [--user U --password-file F]
#                                      [--readonly-addr HOST:PORT]
# The local image registry: Debian's docker-registry (2.8) with a configuration generated from
# conf/registry.yml into DIR.
#
#   start   writes DIR/registry.yml (storage DIR/data, listen --addr, default 127.0.0.1:5000, or the
#           address of the previous start), DIR/htpasswd (bcrypt, `htpasswd -bB`, from --user and
#           the first line of --password-file; needed the first time, kept afterwards), starts
#           `docker-registry serve` in the background (pid DIR/registry.pid, log DIR/registry.log)
#           and waits until GET /v2/ answers (401 with auth). With --readonly-addr it also starts a
#           second instance over the same storage, read-only and WITHOUT auth (anonymous pulls;
#           DIR/registry-ro.yml, DIR/registry-ro.pid, DIR/registry-ro.log).
#           Idempotent: an instance already running with the same configuration is left alone; one
#           whose configuration or password changed is restarted.
#   stop    stops both instances (SIGTERM, then SIGKILL after 5 s) and waits for them. DIR/data
#           stays. Safe when nothing runs.
#   status  prints what runs; exit status 0 if the main instance runs, 3 if not.
#   env     prints `export REGISTRY_ADDR=... REGISTRY_DIR=...` (and REGISTRY_RO_ADDR).
# Installs docker-registry, apache2-utils (htpasswd) and curl with apt-get if missing (as root).
set -euo pipefail

usage() {
	echo "usage: $0 start|stop|status|env DIR [--addr HOST:PORT] [--user U --password-file F]" \
		"[--readonly-addr HOST:PORT]" >&2
	exit 2
}
cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then usage; fi
shift 2
addr='' user='' pwfile='' roaddr=''
while [ $# -gt 0 ]; do
	case "$1" in
	--addr) addr=${2:?}; shift 2 ;;
	--user) user=${2:?}; shift 2 ;;
	--password-file) pwfile=${2:?}; shift 2 ;;
	--readonly-addr) roaddr=${2:?}; shift 2 ;;
	*) usage ;;
	esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
template=$here/conf/registry.yml

log() { echo "registry: $*" >&2; }
die() {
	echo "registry: error: $*" >&2
	exit 1
}

# pid of instance $1 (main|ro) if it runs and is a docker-registry, else nothing
running_pid() {
	local f=$dir/registry.pid p
	[ "$1" = ro ] && f=$dir/registry-ro.pid
	[ -s "$f" ] || return 1
	p=$(cat "$f")
	kill -0 "$p" 2>/dev/null || return 1
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'docker-registry serve' || return 1
	echo "$p"
}

# HTTP status of GET http://$1/v2/ ("000" when nothing answers)
probe() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$1/v2/" 2>/dev/null || true; }

stop_one() { # main|ro
	local p f=$dir/registry.pid
	[ "$1" = ro ] && f=$dir/registry-ro.pid
	if p=$(running_pid "$1"); then
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$p" 2>/dev/null || true
		for _ in $(seq 1 40); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.05
		done
	fi
	rm -f "$f"
}

start_one() { # main|ro config addr log
	local kind=$1 conf=$2 a=$3 logf=$4 pidf=$dir/registry.pid code
	[ "$kind" = ro ] && pidf=$dir/registry-ro.pid
	code=$(probe "$a")
	[ "$code" = 000 ] || die "something already answers on $a (HTTP $code) that is not this registry"
	# setsid: the registry does not get the caller's terminal signals
	setsid docker-registry serve "$conf" </dev/null >>"$logf" 2>&1 &
	echo $! >"$pidf"
	for _ in $(seq 1 200); do
		code=$(probe "$a")
		[ "$code" != 000 ] && return 0
		kill -0 "$(cat "$pidf")" 2>/dev/null || break
		sleep 0.05
	done
	log "docker-registry ($kind) did not answer on $a; log tail:"
	tail -n 20 "$logf" >&2
	stop_one "$kind"
	return 1
}

install_if_missing() {
	command -v docker-registry >/dev/null && command -v htpasswd >/dev/null &&
		command -v curl >/dev/null && return 0
	[ "$(id -u)" = 0 ] || die "docker-registry/htpasswd/curl missing (run as root to install them)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends docker-registry apache2-utils curl >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends docker-registry apache2-utils curl >/dev/null
	}
}

# Debian's package also ships a systemd unit on /etc/docker/registry/config.yml (:5000, all
# interfaces); this script never uses it. An operator who uses this script should disable it:
#     systemctl disable --now docker-registry

case "$cmd" in
start)
	install_if_missing
	[ -r "$template" ] || die "missing $template"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	chmod 0700 "$dir"
	mkdir -p "$dir/data"
	[ -n "$addr" ] || addr=$(cat "$dir/addr" 2>/dev/null || echo 127.0.0.1:5000)
	[ -n "$roaddr" ] || roaddr=$(cat "$dir/ro-addr" 2>/dev/null || true)
	[ "$addr" != "$roaddr" ] || die "--readonly-addr must differ from --addr"
	# credentials: the first line of the password file, bcrypt-hashed into DIR/htpasswd
	if [ -n "$user" ] || [ -n "$pwfile" ]; then
		if [ -z "$user" ] || [ -z "$pwfile" ]; then die "--user and --password-file go together"; fi
		[ -r "$pwfile" ] || die "cannot read $pwfile"
		pw=$(head -n 1 "$pwfile")
		[ -n "$pw" ] || die "empty password in $pwfile"
		# keep the file (and its hash) when the password did not change: no needless restart
		if ! { [ -s "$dir/htpasswd" ] && grep -q "^$user:" "$dir/htpasswd" &&
			[ "$(wc -l <"$dir/htpasswd")" = 1 ] &&
			htpasswd -vb "$dir/htpasswd" "$user" "$pw" >/dev/null 2>&1; }; then
			(umask 077 && htpasswd -cbB "$dir/htpasswd.new" "$user" "$pw" 2>/dev/null)
			mv "$dir/htpasswd.new" "$dir/htpasswd"
		fi
		unset pw
	fi
	[ -s "$dir/htpasswd" ] || die "no credentials yet: give --user U --password-file F"
	[ -s "$dir/http-secret" ] || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' \
		>"$dir/http-secret")
	gen() { # readonly? -> config on stdout
		sed -e "s|@ROOTDIR@|$dir/data|g" -e "s|@ADDR@|$2|g" -e "s|@HTPASSWD@|$dir/htpasswd|g" \
			-e "s|@SECRET@|$(cat "$dir/http-secret")|g" "$template" |
			if [ "$1" = ro ]; then
				sed -e '/# @AUTH-BEGIN@/,/# @AUTH-END@/d' \
					-e 's|enabled: false # @READONLY@|enabled: true|' \
					-e 's|enabled: true # @PURGE@.*|enabled: false|'
			else
				cat
			fi
	}
	(umask 077 && gen main "$addr" >"$dir/registry.yml.new")
	echo "$addr" >"$dir/addr"
	# restart when the configuration or the password changed while it runs
	if running_pid main >/dev/null; then
		if cmp -s "$dir/registry.yml.new" "$dir/registry.yml" &&
			[ ! "$dir/htpasswd" -nt "$dir/registry.pid" ]; then
			log "already running (pid $(cat "$dir/registry.pid")) on $addr"
		else
			log "configuration changed: restarting"
			stop_one main
		fi
	fi
	mv "$dir/registry.yml.new" "$dir/registry.yml"
	if ! running_pid main >/dev/null; then
		start_one main "$dir/registry.yml" "$addr" "$dir/registry.log" ||
			die "docker-registry did not start"
		log "started (pid $(cat "$dir/registry.pid")) on $addr, storage $dir/data"
	fi
	if [ -n "$roaddr" ]; then
		(umask 077 && gen ro "$roaddr" >"$dir/registry-ro.yml.new")
		echo "$roaddr" >"$dir/ro-addr"
		if running_pid ro >/dev/null && ! cmp -s "$dir/registry-ro.yml.new" "$dir/registry-ro.yml"; then
			stop_one ro
		fi
		mv "$dir/registry-ro.yml.new" "$dir/registry-ro.yml"
		if ! running_pid ro >/dev/null; then
			start_one ro "$dir/registry-ro.yml" "$roaddr" "$dir/registry-ro.log" ||
				die "read-only docker-registry did not start"
			log "read-only instance started (pid $(cat "$dir/registry-ro.pid")) on $roaddr"
		fi
	fi
	;;
stop)
	[ -d "$dir" ] || exit 0
	dir=$(cd "$dir" && pwd)
	stop_one ro
	stop_one main
	;;
status)
	rc=3
	if p=$(running_pid main); then
		echo "running: pid $p on $(cat "$dir/addr") (GET /v2/ -> $(probe "$(cat "$dir/addr")"))"
		rc=0
	else
		echo "stopped"
	fi
	if p=$(running_pid ro); then
		echo "read-only instance: pid $p on $(cat "$dir/ro-addr") (GET /v2/ -> $(probe "$(cat "$dir/ro-addr")"))"
	fi
	exit $rc
	;;
env)
	[ -s "$dir/addr" ] || die "not started in $dir"
	dir=$(cd "$dir" && pwd)
	ro=
	[ -s "$dir/ro-addr" ] && ro=" REGISTRY_RO_ADDR=$(cat "$dir/ro-addr")"
	echo "export REGISTRY_ADDR=$(cat "$dir/addr") REGISTRY_DIR=$dir$ro"
	;;
*) usage ;;
esac
