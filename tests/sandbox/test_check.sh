#!/bin/bash
# test_check.sh - end-to-end test of `vpl-jail --check` (jail/envcheck.c,
# jail/sandbox/envcheck_ctr.c) against a private containerd (scripts/containerd-test.sh), the
# busybox test image (scripts/build-test-image.sh) and a stand-in registry (a few lines of
# Python below that answer /v2/ and serve the test image's manifest as test/busybox:latest).
#
# Cases: everything in place (exit 0, ok for every check); the image only in the registry
# (warn, exit 0); an image nowhere (FAIL); the registry unreachable (FAIL); CONTAINERD_SOCKET
# pointing nowhere, at a stale socket or at a file (FAIL, exit 1); a dynamically linked or
# missing helper, a missing runtime (FAIL); STATE_DIR present (a FIFO is tried, then removed)
# or a file (FAIL); a certificate expiring in 5 days (warn) and a key of another certificate
# (FAIL); a configuration that does not load (FAIL).
#
# Usage: tests/sandbox/test_check.sh            (uses build/, or $VPL_BUILD)
# Prints one final line "N passed, N failed" and exits non-zero on failure. Needs root.
set -u
cd "$(dirname "$0")/../.." || exit 1
ROOT=$(pwd)
BUILD=${VPL_BUILD:-build}
JAIL=$ROOT/$BUILD/vpl-jail
HELPER=$ROOT/$BUILD/vplhelper
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

if [ "$(id -u)" != 0 ]; then
	result fail "running as root (containerd, cgroups)"
	finish
fi
if [ ! -x "$JAIL" ] || [ ! -x "$HELPER" ]; then
	result fail "$JAIL and $HELPER are built"
	finish
fi

T=$(mktemp -d /tmp/vplcell-check-test.XXXXXX)
regpid=
cleanup() {
	[ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null
	scripts/containerd-test.sh stop "$T" >/dev/null 2>&1
	[ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- fixtures
if scripts/containerd-test.sh start "$T" >"$T/start.log" 2>&1; then
	result ok "private containerd started"
else
	cat "$T/start.log" >&2
	result fail "private containerd started"
	finish
fi
eval "$(scripts/containerd-test.sh env "$T")"
img=$(scripts/build-test-image.sh 2>"$T/image.log") &&
	ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" images import "$img" >"$T/import.log" 2>&1
if [ $? = 0 ]; then
	result ok "test image imported as vplcell.local/test/busybox:latest"
else
	cat "$T/image.log" "$T/import.log" >&2
	result fail "test image imported"
	finish
fi

cat >"$T/fakereg.py" <<'EOF'
# A registry as far as `vpl-jail --check` looks: /v2/, and one manifest (test/busybox:latest,
# from the test image's OCI layout). Writes its port to argv[2].
import hashlib, http.server, json, sys, tarfile
tar = tarfile.open(sys.argv[1])
index = json.load(tar.extractfile("./index.json"))
desc = index["manifests"][0]
body = tar.extractfile("./blobs/" + desc["digest"].replace(":", "/")).read()
assert "sha256:" + hashlib.sha256(body).hexdigest() == desc["digest"]
paths = {"/v2/test/busybox/manifests/latest", "/v2/test/busybox/manifests/" + desc["digest"]}

class H(http.server.BaseHTTPRequestHandler):
    def answer(self, send_body):
        if self.path == "/v2/":
            code, data, ctype, extra = 200, b"{}", "application/json", {}
        elif self.path in paths:
            code, data, ctype = 200, body, desc["mediaType"]
            extra = {"Docker-Content-Digest": desc["digest"]}
        else:
            code, ctype, extra = 404, "application/json", {}
            data = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}'
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in extra.items():
            self.send_header(k, v)
        self.end_headers()
        if send_body:
            self.wfile.write(data)
    def do_GET(self):
        self.answer(True)
    def do_HEAD(self):
        self.answer(False)
    def log_message(self, *a):
        pass

srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
import os
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
srv.serve_forever()
EOF
python3 "$T/fakereg.py" "$img" "$T/regport" 2>"$T/fakereg.log" &
regpid=$!
for _ in $(seq 1 100); do
	[ -s "$T/regport" ] && break
	sleep 0.05
done
REG=127.0.0.1:$(cat "$T/regport" 2>/dev/null)
if [ -s "$T/regport" ]; then result ok "stand-in registry on $REG"; else
	cat "$T/fakereg.log" >&2
	result fail "stand-in registry started"
	finish
fi
# a port nothing listens on: bind, note, close
DEAD=127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat >"$T/jail.conf" <<EOF
PORT=8080
SECURE_PORT=0
HELPER_PATH=$HELPER
STATE_DIR=$T/jailstate
CONTAINERD_SOCKET=$CTR_SOCKET
CONTAINERD_NAMESPACE=$CTR_NAMESPACE
DEFAULT_IMAGE=vplcell.local/test/busybox:latest
LOCAL_REGISTRY=$REG
EOF
chmod 600 "$T/jail.conf"

# check NAME EXPECTED_EXIT [VAR=VALUE...] -- runs --check with VPL_JAIL_* overrides; the output
# is in $T/NAME.out
check() {
	local name=$1 want=$2 rc
	shift 2
	env "$@" "$JAIL" -f "$T/jail.conf" --check >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
	if [ "$rc" = "$want" ]; then result ok "$name: exit $rc"; else
		cat "$T/$name.out" "$T/$name.err" >&2
		result fail "$name: exit $rc, expected $want"
	fi
}
# expect NAME LEVEL CHECK [DETAIL-REGEX]: the report of NAME has that line
expect() {
	local name=$1 level=$2 what=$3 re=${4:-}
	local line
	line=$(grep -E "^$level +$what: " "$T/$name.out" | head -n 1)
	if [ -n "$line" ] && { [ -z "$re" ] || grep -qE -- "$re" <<<"$line"; }; then
		result ok "$name: $level $what${re:+ ($re)}"
	else
		sed 's/^/    /' "$T/$name.out" >&2
		result fail "$name: expected '$level $what${re:+ ... $re}'"
	fi
}
t0=$(date +%s%N)

# 1. everything in place
check good 0
for c in configuration runtime cgroups helper 'state dir' containerd registry image; do
	expect good ok "$c"
done
expect good ok containerd "version [0-9]"
expect good ok image "present, unpacked"
expect good ok 'disk \(containerd root\)' "$T/root"
if grep -q '^FAIL' "$T/good.out"; then result fail "good: no FAIL line"; else
	result ok "good: no FAIL line"
fi
tail -n 1 "$T/good.out" | grep -qE '^[0-9]+ ok, [0-9]+ warn, 0 FAIL$' &&
	result ok "good: closing count line" || result fail "good: closing count line"

# 2. the image only in the registry: it will be pulled (warn), not a failure
check pullable 0 VPL_JAIL_DEFAULT_IMAGE=test/busybox:latest
expect pullable warn image "not in containerd yet; the registry has it \(sha256:"

# 3. an image that is nowhere
check noimage 1 VPL_JAIL_DEFAULT_IMAGE=absent:latest
expect noimage ok registry
expect noimage FAIL image "neither in containerd .* nor pullable"

# 4. the registry unreachable
check noregistry 1 VPL_JAIL_LOCAL_REGISTRY="$DEAD" VPL_JAIL_DEFAULT_IMAGE=absent:latest
expect noregistry FAIL registry "unreachable"
expect noregistry FAIL image "registry is unreachable"

# 5. containerd nowhere: FAIL exit, the host checks still ok
check nocontainerd 1 VPL_JAIL_CONTAINERD_SOCKET="$T/nowhere.sock"
expect nocontainerd FAIL containerd "No such file or directory; fix: start containerd"
for c in runtime cgroups helper; do
	expect nocontainerd ok "$c"
done
# a socket nobody listens on (containerd died and left it)
python3 -c "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])" "$T/stale.sock"
check stalesocket 1 VPL_JAIL_CONTAINERD_SOCKET="$T/stale.sock"
expect stalesocket FAIL containerd "UNAVAILABLE: .*Connection refused"
# a path that is not a socket
check notasocket 1 VPL_JAIL_CONTAINERD_SOCKET="$T/jail.conf"
expect notasocket FAIL containerd "not a socket"

# 6. a helper that needs ld.so, a runtime that is not there
check badhelper 1 VPL_JAIL_HELPER_PATH=/bin/true VPL_JAIL_RUNTIME=no-such-runtime
expect badhelper FAIL helper "dynamically linked"
expect badhelper FAIL runtime "not found in PATH"
check nohelper 1 VPL_JAIL_HELPER_PATH="$T/none"
expect nohelper FAIL helper "No such file"

# STATE_DIR present: a FIFO is tried there (and removed); a file instead of a directory: FAIL
mkdir -m 0755 "$T/statedir"
check statedir 0 VPL_JAIL_STATE_DIR="$T/statedir"
expect statedir ok 'state dir' "writable, FIFOs work"
check statefile 1 VPL_JAIL_STATE_DIR="$T/jail.conf"
expect statefile FAIL 'state dir' "not a directory"

# 7. TLS: a certificate valid 5 more days (warn), a key of another certificate (FAIL)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 5 -subj /CN=soon \
	-keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 -subj /CN=other \
	-keyout "$T/key2.pem" -out "$T/cert2.pem" >/dev/null 2>&1
check tlssoon 0 VPL_JAIL_SECURE_PORT=8443 VPL_JAIL_SSL_CERT_FILE="$T/cert.pem" \
	VPL_JAIL_SSL_KEY_FILE="$T/key.pem"
expect tlssoon warn tls "\(soon\): expires on .*, in [45] days"
check tlsmismatch 1 VPL_JAIL_SECURE_PORT=8443 VPL_JAIL_SSL_CERT_FILE="$T/cert.pem" \
	VPL_JAIL_SSL_KEY_FILE="$T/key2.pem"
expect tlsmismatch FAIL tls "does not match"

# 8. a configuration that does not load: one FAIL line, nothing else checked
check badconfig 1 VPL_JAIL_MAXTIME=ten
expect badconfig FAIL configuration "MAXTIME"
[ "$(grep -cE '^(ok|warn|FAIL) ' "$T/badconfig.out")" = 1 ] &&
	result ok "badconfig: nothing checked after the configuration" ||
	result fail "badconfig: nothing checked after the configuration"

# the checks left nothing behind: no FIFO probe, no state dir created
left=$(find "$T/jailstate" "$T/statedir" -mindepth 1 2>/dev/null | head -n 3)
[ -e "$T/jailstate" ] && left="$left $T/jailstate"
if [ -z "$left" ]; then result ok "nothing left in STATE_DIR"; else
	result fail "left in STATE_DIR: $left"
fi
echo "# 15 runs of --check in $((($(date +%s%N) - t0) / 1000000)) ms"
finish
