#!/bin/bash
# test_ctr.sh - end-to-end test of the containerd client (jail/sandbox/ctr_*.c).
#
# Starts a private containerd (scripts/containerd-test.sh), builds and imports the busybox test
# image (scripts/build-test-image.sh), runs $BUILD/tests/ctr_smoke against it, then asserts that
# nothing is left: no containers/tasks/snapshots/leases in the namespace, no shim of this
# instance, no new mount under the test dir, no cgroup of the run, and after stop no containerd
# and no runc state. containerd is stopped by a trap on every exit path.
#
# Usage: tests/sandbox/test_ctr.sh            (uses build/, or $VPL_BUILD)
#        VPL_BUILD=build-asan tests/sandbox/test_ctr.sh
# Prints exactly one final line "N passed, N failed" (one count per assertion group below) and
# exits non-zero on failure. Needs root (containerd, cgroups, mounts).
set -u
cd "$(dirname "$0")/../.." || exit 1
BUILD=${VPL_BUILD:-build}
SMOKE=$BUILD/tests/ctr_smoke
pass=0
fail=0
result() { # result OK|FAIL "text"
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
	echo "test_ctr: needs root (containerd, runc, cgroups)" >&2
	result fail "running as root"
	finish
fi
if [ ! -x "$SMOKE" ]; then
	result fail "$SMOKE is built (make ctr, or make SAN=1 ctr)"
	finish
fi

T=$(mktemp -d /tmp/vplcell-ctr-test.XXXXXX)
stopped=0
cleanup() {
	if [ "$stopped" = 0 ]; then
		scripts/containerd-test.sh stop "$T" >/dev/null 2>&1
	fi
	[ "${KEEP_TEST_DIR:-0}" = 1 ] || rm -rf "$T"
}
[ "${KEEP_TEST_DIR:-0}" = 1 ] && echo "# test dir (kept): $T"
trap cleanup EXIT
trap 'exit 130' INT TERM

mounts_of_T() { grep -cF "$T/" /proc/self/mountinfo; }

# 1. containerd up
if scripts/containerd-test.sh start "$T" >"$T/start.log" 2>&1; then
	result ok "private containerd started"
else
	cat "$T/start.log" >&2
	result fail "private containerd started"
	finish
fi
eval "$(scripts/containerd-test.sh env "$T")"
export CTR_RESTART_CMD="scripts/containerd-test.sh restart $T"
ctrc() { ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" "$@"; }
mounts0=$(mounts_of_T)

# 2. image
img=$(scripts/build-test-image.sh 2>"$T/image.log") &&
	ctrc images import "$img" >"$T/import.log" 2>&1
if [ $? = 0 ]; then
	result ok "test image built and imported ($(basename "$img"))"
else
	cat "$T/image.log" "$T/import.log" >&2
	result fail "test image built and imported"
	finish
fi

# 3. the smoke test through the async client (ASan: leaks are errors)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
"$SMOKE" >"$T/smoke.log" 2>&1
rc=$?
grep -E '^(FAIL|time|#)' "$T/smoke.log"
tail -n 1 "$T/smoke.log"
if [ $rc = 0 ]; then
	result ok "ctr_smoke ($BUILD): $(tail -n 1 "$T/smoke.log")"
else
	grep -vE '^(ok|time|#)' "$T/smoke.log" | head -n 60 >&2
	result fail "ctr_smoke ($BUILD) exit $rc"
fi

# 4-7. nothing left in the namespace
for what in containers tasks leases; do
	n=$(ctrc "$what" ls -q 2>/dev/null | grep -c .)
	if [ "$n" = 0 ]; then result ok "no $what left"; else
		ctrc "$what" ls >&2
		result fail "no $what left ($n)"
	fi
done
# the image's committed layer is the only snapshot allowed
n=$(ctrc snapshots ls 2>/dev/null | awk 'NR>1 && $NF != "Committed"' | grep -c .)
if [ "$n" = 0 ]; then result ok "no active snapshots left"; else
	ctrc snapshots ls >&2
	result fail "no active snapshots left ($n)"
fi

# 8. no shim of this instance (a shim exits shortly after its task is deleted)
shims() {
	for p in $(pgrep -f containerd-shim); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF -- "-address $CTR_SOCKET " &&
			echo "$p"
	done
}
for _ in $(seq 1 40); do
	[ -z "$(shims)" ] && break
	sleep 0.05
done
s=$(shims)
if [ -z "$s" ]; then result ok "no containerd-shim of this instance"; else
	result fail "no containerd-shim of this instance (pids $s)"
fi

# 9. no new mounts under the test dir
m=$(mounts_of_T)
if [ "$m" = "$mounts0" ]; then result ok "no new mounts under $T"; else
	grep -F "$T/" /proc/self/mountinfo >&2
	result fail "no new mounts under $T ($mounts0 -> $m)"
fi

# 10. no cgroup of the run
cg=$(ls -d /sys/fs/cgroup/*/vplcell-test/"$CTR_NAMESPACE"-* /sys/fs/cgroup/vplcell-test/"$CTR_NAMESPACE"-* 2>/dev/null)
if [ -z "$cg" ]; then result ok "no /sys/fs/cgroup/*/vplcell-test/$CTR_NAMESPACE-* left"; else
	echo "$cg" >&2
	result fail "cgroups left"
fi

# 11. stop: containerd gone, its runc state and sockets gone
pid=$(cat "$T/containerd.pid" 2>/dev/null)
scripts/containerd-test.sh stop "$T" >/dev/null 2>&1
stopped=1
left=""
[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && left="$left containerd($pid)"
[ -e "/run/containerd/runc/$CTR_NAMESPACE" ] && left="$left /run/containerd/runc/$CTR_NAMESPACE"
[ -e "$T/runc/$CTR_NAMESPACE" ] && [ -n "$(ls -A "$T/runc/$CTR_NAMESPACE")" ] && left="$left $T/runc/$CTR_NAMESPACE"
[ -e "$CTR_SOCKET" ] && left="$left $CTR_SOCKET"
if [ -z "$left" ]; then result ok "containerd stopped, nothing left"; else
	result fail "containerd stopped, nothing left:$left"
fi

finish
