#!/bin/bash
# Runs every test suite and prints one closing line "N passed, N failed".
#
#   tests/run-all.sh              normal build, then unit + protocol suites
#                                 again against the ASan+UBSan build
#   tests/run-all.sh --asan-only  only the sanitizer pass
#
# Each suite prints its own "N passed, N failed" (cmocka's summary lines are
# read too); a suite that dies without one counts as one failure.
set -u
cd "$(dirname "$0")/.."
mode=${1:-all}
total_pass=0
total_fail=0
logdir=$(mktemp -d /tmp/vplcell-tests.XXXXXX)

count() { # name, logfile, exit status
	local name=$1 log=$2 rc=$3 p f line
	line=$(grep -E '^([A-Za-z-]+: )?[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		p=$(sed -E 's/.*\b([0-9]+) passed.*/\1/' <<<"$line")
		f=$(sed -E 's/.*passed, ([0-9]+) failed.*/\1/' <<<"$line")
	elif grep -q '\[==========\]' "$log"; then
		p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
		f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | awk '{s+=$4} END {print s+0}')
	else
		p=0 f=1
	fi
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$f" -ne 0 ]; then
		echo "== $name: $p passed, $f failed (log follows)"
		tail -n 60 "$log"
	else
		echo "== $name: $p passed"
	fi
}

run() { # name, command...
	local name=$1 log
	shift
	log="$logdir/$(echo "$name" | tr ' /' '__').log"
	"$@" >"$log" 2>&1
	count "$name" "$log" $?
}

suites() { # build dir
	local b=$1
	for t in "$b"/tests/test_*; do
		[ -x "$t" ] && run "$b unit $(basename "$t")" "$t"
	done
	[ -x tests/fuzz/regress.sh ] && run "$b fuzz regressions" tests/fuzz/regress.sh "$b"
	for t in tests/protocol/test_*.py; do
		run "$b protocol $(basename "$t")" env VPL_BUILD="$b" python3 "$t"
	done
	for t in tests/sandbox/test_*.sh tests/sandbox/test_*.py; do
		[ -x "$t" ] && run "$b sandbox $(basename "$t")" env VPL_BUILD="$b" "$t"
	done
	for t in tests/interactive/test_*.py; do
		[ -x "$t" ] && run "$b interactive $(basename "$t")" env VPL_BUILD="$b" "$t"
	done
	for t in tests/proxy/test_*.py tests/proxy/test_*.sh; do
		# The namespaces test runs once, under the sanitizers (the normal pass also
		# deploys and installs): it checks routing across hosts, not the build.
		case "$t" in *multihost*) [ "$b" = build-asan ] || continue ;; esac
		[ -x "$t" ] && run "$b proxy $(basename "$t")" env VPL_BUILD="$b" "$t"
	done
	# Privilege separation: the parser's drop, probed from inside (both passes: ~1 minute).
	for t in tests/privsep/test_*.py; do
		[ -x "$t" ] && run "$b privsep $(basename "$t")" env VPL_BUILD="$b" "$t"
	done
	# Faults under load (containerd, registry, a worker killed, a full disk, slow clients):
	# once, under the sanitizers, like the namespaces test (~3 minutes).
	for t in tests/faults/test_*.py; do
		[ "$b" = build-asan ] || continue
		[ -x "$t" ] && run "$b faults $(basename "$t")" env VPL_BUILD="$b" "$t"
	done
	# Docker Swarm and the Kubernetes manifests run the normal binaries (in an image):
	# once, in the sanitizer pass, which otherwise ends first.
	for t in tests/swarm/test_*.sh tests/k8s/test_*.sh; do
		[ "$b" = build-asan ] && [ "$mode" != --asan-only ] || continue
		[ -x "$t" ] && run "$b $(basename "$(dirname "$t")") $(basename "$t")" "$t"
	done
	# Installing and deploying use the normal build: one pass.
	for t in tests/install/test_*.sh tests/e2e/test_*.sh; do
		[ "$b" = "$first" ] || continue
		[ -x "$t" ] && run "$b $(basename "$(dirname "$t")") $(basename "$t")" env VPL_BUILD="$b" "$t"
	done
	# The browser drives the page, not new worker code: one pass.
	for t in tests/browser/test_*.py; do
		[ "$b" = "$first" ] || continue
		[ -x "$t" ] && run "$b browser $(basename "$t")" env VPL_BUILD="$b" "$t"
	done
	for t in tests/images/test_*.sh tests/images/test_*.py; do
		# Image builds do not involve our binaries: one pass is enough.
		case "$t" in *_build.sh) [ "$b" = "$first" ] || continue ;; esac
		[ -x "$t" ] && run "$b images $(basename "$t")" env VPL_BUILD="$b" "$t"
	done
	echo "$total_pass $total_fail" >"$logdir/$b.totals"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

first=build
[ "$mode" = "--asan-only" ] && first=build-asan
# The two passes run side by side (2 cores; most suites wait on containers,
# registries and sockets): every suite uses its own containerd, namespace,
# ports and worker ids, so they do not meet. VPL_SERIAL=1 runs them in turn.
# The images both passes need are built first, once.
for img in images/minivpl/build.sh images/minivpl-java/build.sh scripts/build-test-image.sh; do
	"$img" >/dev/null 2>&1 || echo "== $img failed (the suites that need it will say more)"
done
if [ "$mode" = "--asan-only" ]; then
	suites build-asan
elif [ "${VPL_SERIAL:-0}" = 1 ]; then
	suites build
	suites build-asan
else
	suites build &
	p1=$!
	suites build-asan &
	p2=$!
	wait $p1
	wait $p2
fi
total_pass=0
total_fail=0
for b in build build-asan; do
	if [ -f "$logdir/$b.totals" ]; then
		read -r p f <"$logdir/$b.totals"
		total_pass=$((total_pass + p))
		total_fail=$((total_fail + f))
	elif [ "$mode" != "--asan-only" ] || [ "$b" = build-asan ]; then
		echo "== $b: the pass did not finish"
		total_fail=$((total_fail + 1))
	fi
done

echo "logs: $logdir"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
