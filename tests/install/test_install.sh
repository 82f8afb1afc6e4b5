#!/bin/bash
# test_install.sh - `make install` / `make uninstall` (mk/install.mk) and the systemd units
# (conf/systemd/), on a DESTDIR: never on this host's own /usr or /etc.
#
#  1. make install DESTDIR=T/dest: exactly the expected files, with their modes; the helper is
#     static; the sample vpl-jail.conf points HELPER_PATH at the installed helper.
#  2. the units: `systemd-analyze verify` (PID 1 is not systemd on the CI machines: verify loads
#     unit files by itself, it needs no running systemd). It checks that ExecStart= and
#     ExecReload= binaries exist, so it runs on copies of the installed units whose binary
#     paths are moved into DESTDIR; any message it prints fails the test (it exits 0 on
#     unknown or misspelt settings). Then `systemd-analyze security --offline=yes` exposure
#     scores as a floor under the hardening, key settings, and the sysusers.d file through
#     `systemd-sysusers --root`. systemd-analyze comes from the systemd package, installed if
#     missing; if it cannot run, the test FAILS (it never skips).
#  3. the installed binaries: --version, -t on the installed sample configs (certificate and
#     secrets given through VPL_JAIL_* / VPL_PROXY_* overrides), --check finds the installed
#     helper static.
#  4. installing again changes nothing; an edited config is kept (the new one goes to
#     *.conf.sample); uninstall keeps an edited config and removes everything else.
#  5. PREFIX=/usr: units in /usr/lib/systemd/system, binaries in /usr/sbin, HELPER_PATH left
#     at the built-in default.
#  6. make uninstall DESTDIR=T/dest leaves nothing.
#
# Usage: tests/install/test_install.sh        (uses build/, or $VPL_BUILD; builds what is missing)
# Prints one final line "N passed, N failed"; exits non-zero on failure.
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${VPL_BUILD:-build}
pass=0
fail=0
result() { # result ok|fail "text"
	if [ "$1" = ok ]; then
		pass=$((pass + 1))
		echo "ok - $2"
	else
		fail=$((fail + 1))
		echo "FAIL - $2"
	fi
}
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ]
	exit $?
}
# assert "text" command...: one result from a command's exit status
assert() {
	local what=$1
	shift
	if "$@"; then result ok "$what"; else result fail "$what"; fi
}

T=$(mktemp -d /tmp/vplcell-install-test.XXXXXX)
trap '[ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
D=$T/dest
t0=$(date +%s%N)

# ---- 0. systemd-analyze
if ! command -v systemd-analyze >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends systemd >"$T/apt.log" 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends systemd >>"$T/apt.log" 2>&1
	}
fi
if command -v systemd-analyze >/dev/null && systemd-analyze --version >/dev/null 2>&1; then
	result ok "systemd-analyze available ($(systemd-analyze --version | head -n 1))"
else
	tail -n 20 "$T/apt.log" 2>/dev/null >&2
	result fail "systemd-analyze available (apt-get install systemd)"
fi

# ---- 1. install
if make -s BUILD="$BUILD" install DESTDIR="$D" >"$T/install.log" 2>&1; then
	result ok "make install DESTDIR=$D"
else
	cat "$T/install.log" >&2
	result fail "make install DESTDIR=$D"
	finish
fi
expected="600 etc/vplcell/vpl-jail.conf
640 etc/vplcell/vpl-proxy.conf
644 usr/local/lib/systemd/system/vpl-jail.service
644 usr/local/lib/systemd/system/vpl-proxy.service
644 usr/local/lib/sysusers.d/vplcell.conf
755 usr/local/libexec/vplcell/vplhelper
755 usr/local/sbin/vpl-jail
755 usr/local/sbin/vpl-proxy"
got=$(cd "$D" && find . -type f -printf '%m %P\n' | sort)
if [ "$got" = "$expected" ]; then result ok "installed files and modes"; else
	diff <(echo "$expected") <(echo "$got") >&2
	result fail "installed files and modes"
fi
others=$(cd "$D" && find . ! -type f ! -type d | head -n 3)
assert "nothing but files and directories installed" test -z "$others"
assert "the installed helper is the built one" cmp -s "$BUILD/vplhelper" \
	"$D/usr/local/libexec/vplcell/vplhelper"
if readelf -lW "$D/usr/local/libexec/vplcell/vplhelper" | grep -q 'INTERP'; then
	result fail "the installed helper is statically linked"
else
	result ok "the installed helper is statically linked"
fi
assert "vpl-jail.conf: HELPER_PATH=/usr/local/libexec/vplcell/vplhelper" \
	grep -qx 'HELPER_PATH=/usr/local/libexec/vplcell/vplhelper' "$D/etc/vplcell/vpl-jail.conf"
assert "vpl-proxy.conf is the sample" cmp -s conf/vpl-proxy.conf "$D/etc/vplcell/vpl-proxy.conf"

# ---- 2. units
U=$D/usr/local/lib/systemd/system
assert "vpl-jail.service: ExecStart" grep -qx \
	'ExecStart=/usr/local/sbin/vpl-jail -f /etc/vplcell/vpl-jail.conf' "$U/vpl-jail.service"
assert "vpl-proxy.service: ExecStart" grep -qx \
	'ExecStart=/usr/local/sbin/vpl-proxy -f /etc/vplcell/vpl-proxy.conf' "$U/vpl-proxy.service"
mkdir -p "$T/verify"
for u in vpl-jail.service vpl-proxy.service; do
	sed "s|/usr/local/sbin/|$D/usr/local/sbin/|g" "$U/$u" >"$T/verify/$u"
done
if command -v systemd-analyze >/dev/null; then
	(cd "$T/verify" && systemd-analyze verify --man=no --generators=no vpl-jail.service \
		vpl-proxy.service) >"$T/verify.log" 2>&1
	rc=$?
	if [ $rc = 0 ] && [ ! -s "$T/verify.log" ]; then
		result ok "systemd-analyze verify: both units, no message"
	else
		cat "$T/verify.log" >&2
		result fail "systemd-analyze verify: both units (exit $rc, messages above)"
	fi
	# the check above must be able to fail: a misspelt value is reported
	sed 's/^ProtectSystem=strict/ProtectSystem=strcit/' "$T/verify/vpl-proxy.service" \
		>"$T/vpl-proxy.service"
	mkdir -p "$T/bad" && mv "$T/vpl-proxy.service" "$T/bad/"
	out=$(cd "$T/bad" && systemd-analyze verify --man=no --generators=no vpl-proxy.service 2>&1)
	assert "systemd-analyze verify reports a misspelt value" grep -q "strcit" <<<"$out"
	for u in vpl-proxy:3.0 vpl-jail:6.0; do
		n=${u%%:*} max=${u#*:}
		level=$(cd "$T/verify" && systemd-analyze security --offline=yes --no-pager \
			"$n.service" 2>&1 | sed -nE 's/.*Overall exposure level for [^:]*: ([0-9.]+).*/\1/p')
		if [ -n "$level" ] && awk -v l="$level" -v m="$max" 'BEGIN { exit !(l <= m) }'; then
			result ok "$n.service: exposure $level <= $max (systemd-analyze security)"
		else
			result fail "$n.service: exposure '$level' <= $max (systemd-analyze security)"
		fi
	done
else
	result fail "systemd-analyze verify: not available"
fi
# settings the docs promise
J=$U/vpl-jail.service
P=$U/vpl-proxy.service
for kv in Type=simple Restart=on-failure KillSignal=SIGTERM RuntimeDirectory=vplcell \
	'After=network-online.target containerd.service' LimitNOFILE=65536 \
	'ExecReload=/bin/kill -HUP $MAINPID'; do
	assert "vpl-jail.service: $kv" grep -qxF "$kv" "$J"
done
grace=$(VPL_JAIL_SECURE_PORT=0 VPL_JAIL_PORT=8080 "$D/usr/local/sbin/vpl-jail" -t \
	-f "$D/etc/vplcell/vpl-jail.conf" 2>/dev/null | sed -n 's/^SHUTDOWN_GRACE=//p')
stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s*$/\1/p' "$J")
if [ -n "$grace" ] && [ -n "$stop" ] && [ "$stop" -ge $((grace + 15)) ]; then
	result ok "vpl-jail.service: TimeoutStopSec=${stop}s covers SHUTDOWN_GRACE=$grace + 15 s cleanup"
else
	result fail "vpl-jail.service: TimeoutStopSec '$stop' covers SHUTDOWN_GRACE '$grace' + 15 s"
fi
for kv in Type=simple User=vplcell Group=vplcell AmbientCapabilities=CAP_NET_BIND_SERVICE \
	CapabilityBoundingSet=CAP_NET_BIND_SERVICE NoNewPrivileges=yes ProtectSystem=strict \
	ProtectHome=yes PrivateTmp=yes PrivateDevices=yes MemoryDenyWriteExecute=yes \
	'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' SystemCallFilter=@system-service \
	'ExecReload=/bin/kill -HUP $MAINPID'; do
	assert "vpl-proxy.service: $kv" grep -qxF "$kv" "$P"
done
mkdir -p "$T/sysroot/etc"
if command -v systemd-sysusers >/dev/null &&
	systemd-sysusers --root="$T/sysroot" "$D/usr/local/lib/sysusers.d/vplcell.conf" \
		>"$T/sysusers.log" 2>&1 &&
	grep -q '^vplcell:x:[0-9]*:[0-9]*:.*:/nonexistent:/usr/sbin/nologin$' "$T/sysroot/etc/passwd"; then
	result ok "sysusers.d/vplcell.conf creates the system user vplcell (systemd-sysusers --root)"
else
	cat "$T/sysusers.log" >&2
	result fail "sysusers.d/vplcell.conf creates the system user vplcell"
fi

# ---- 3. the installed binaries
for b in vpl-jail vpl-proxy; do
	if v=$("$D/usr/local/sbin/$b" --version 2>&1) && [ -n "$v" ]; then
		result ok "$b --version: $v"
	else
		result fail "$b --version: $v"
	fi
done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj /CN=localhost \
	-keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1
head -c 32 /dev/urandom | base64 >"$T/worker-secret"
head -c 32 /dev/urandom | base64 >"$T/route-secret"
chmod 600 "$T/worker-secret" "$T/route-secret"
if VPL_JAIL_SSL_CERT_FILE="$T/cert.pem" VPL_JAIL_SSL_KEY_FILE="$T/key.pem" \
	"$D/usr/local/sbin/vpl-jail" -t -f "$D/etc/vplcell/vpl-jail.conf" >"$T/jail-t.out" 2>&1; then
	result ok "vpl-jail -t on the installed sample (certificate by VPL_JAIL_*)"
else
	cat "$T/jail-t.out" >&2
	result fail "vpl-jail -t on the installed sample"
fi
assert "vpl-jail -t: effective HELPER_PATH is the installed helper" \
	grep -qx 'HELPER_PATH=/usr/local/libexec/vplcell/vplhelper' "$T/jail-t.out"
if VPL_PROXY_SSL_CERT_FILE="$T/cert.pem" VPL_PROXY_SSL_KEY_FILE="$T/key.pem" \
	VPL_PROXY_WORKER_SECRET_FILE="$T/worker-secret" VPL_PROXY_ROUTE_SECRET_FILE="$T/route-secret" \
	"$D/usr/local/sbin/vpl-proxy" -t -f "$D/etc/vplcell/vpl-proxy.conf" >"$T/proxy-t.out" 2>&1; then
	result ok "vpl-proxy -t on the installed sample (secrets by VPL_PROXY_*)"
else
	cat "$T/proxy-t.out" >&2
	result fail "vpl-proxy -t on the installed sample"
fi
# --check: the installed helper passes; containerd is absent on purpose (FAIL, exit 1)
VPL_JAIL_SSL_CERT_FILE="$T/cert.pem" VPL_JAIL_SSL_KEY_FILE="$T/key.pem" \
	VPL_JAIL_HELPER_PATH="$D/usr/local/libexec/vplcell/vplhelper" \
	VPL_JAIL_STATE_DIR="$T/state" VPL_JAIL_CONTAINERD_SOCKET="$T/none.sock" \
	VPL_JAIL_LOCAL_REGISTRY=127.0.0.1:1 \
	"$D/usr/local/sbin/vpl-jail" -f "$D/etc/vplcell/vpl-jail.conf" --check >"$T/check.out" 2>&1
rc=$?
assert "vpl-jail --check: exit 1 without containerd" test "$rc" = 1
assert "vpl-jail --check: ok helper (the installed one, static)" \
	grep -q "^ok    helper: $D/usr/local/libexec/vplcell/vplhelper: static ELF" "$T/check.out"
assert "vpl-jail --check: ok tls" grep -q '^ok    tls: ' "$T/check.out"
assert "vpl-jail --check: FAIL containerd" grep -q '^FAIL  containerd: ' "$T/check.out"

# ---- 4. again, and with an edited config
make -s BUILD="$BUILD" install DESTDIR="$D" >"$T/install2.log" 2>&1
got2=$(cd "$D" && find . -type f -printf '%m %P\n' | sort)
assert "a second install changes nothing (no .sample for unchanged configs)" \
	test "$got2" = "$expected"
echo "URLPATH=/edited" >>"$D/etc/vplcell/vpl-jail.conf"
make -s BUILD="$BUILD" install DESTDIR="$D" >"$T/install3.log" 2>&1
assert "an edited vpl-jail.conf is kept" grep -qx 'URLPATH=/edited' "$D/etc/vplcell/vpl-jail.conf"
assert "the new sample goes to vpl-jail.conf.sample (0600)" \
	test "$(stat -c %a "$D/etc/vplcell/vpl-jail.conf.sample" 2>/dev/null)" = 600
make -s BUILD="$BUILD" uninstall DESTDIR="$D" >"$T/uninstall1.log" 2>&1
left=$(cd "$D" && find . -type f -printf '%P\n')
assert "uninstall keeps only the edited config" test "$left" = "etc/vplcell/vpl-jail.conf"
rm -f "$D/etc/vplcell/vpl-jail.conf"

# ---- 5. PREFIX=/usr
D2=$T/dest-usr
if make -s BUILD="$BUILD" install PREFIX=/usr DESTDIR="$D2" >"$T/install-usr.log" 2>&1; then
	result ok "make install PREFIX=/usr"
else
	cat "$T/install-usr.log" >&2
	result fail "make install PREFIX=/usr"
fi
assert "PREFIX=/usr: units in /usr/lib/systemd/system, ExecStart=/usr/sbin/vpl-jail" grep -qx \
	'ExecStart=/usr/sbin/vpl-jail -f /etc/vplcell/vpl-jail.conf' \
	"$D2/usr/lib/systemd/system/vpl-jail.service"
assert "PREFIX=/usr: helper at the built-in HELPER_PATH, sample config unchanged" \
	test -x "$D2/usr/libexec/vplcell/vplhelper" -a \
	"$(cmp -s conf/vpl-jail.conf "$D2/etc/vplcell/vpl-jail.conf" && echo same)" = same
make -s BUILD="$BUILD" uninstall PREFIX=/usr DESTDIR="$D2" >"$T/uninstall-usr.log" 2>&1
assert "PREFIX=/usr: uninstall leaves nothing" test -z "$(find "$D2" -mindepth 1)"

# ---- 6. uninstall
make -s BUILD="$BUILD" uninstall DESTDIR="$D" >"$T/uninstall.log" 2>&1
rc=$?
left=$(find "$D" -mindepth 1 2>/dev/null)
if [ $rc = 0 ] && [ -z "$left" ]; then result ok "make uninstall DESTDIR leaves nothing"; else
	cat "$T/uninstall.log" >&2
	echo "$left" >&2
	result fail "make uninstall DESTDIR leaves nothing (exit $rc)"
fi
assert "the build tree keeps no install leftovers" test ! -e "$BUILD/install-gen"
echo "# $((($(date +%s%N) - t0) / 1000000)) ms"
finish
