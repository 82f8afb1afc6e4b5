#!/bin/sh
# run.sh SECONDS - fuzzes every build-fuzz/fuzz_X for SECONDS each (`make
# fuzz FUZZ_TIME=SECONDS` builds them and calls this).
#
# Each target works on build-fuzz/corpus/X, a scratch corpus seeded from
# tests/fuzz/corpus/X and kept between runs; the repository's corpus only
# grows by explicit choice:
#   build-fuzz/fuzz_X -merge=1 tests/fuzz/corpus/X build-fuzz/corpus/X
# Crash inputs land in build-fuzz/artifacts/X/; keep each one, once fixed,
# in tests/fuzz/regress/X/ so that `make check` replays it forever.
# Prints corpus sizes and the total time; exits non-zero if any target
# crashed (or failed to run).
set -u
secs=${1:?usage: run.sh SECONDS}
cd "$(dirname "$0")/../.." || exit 2

status=0
start=$(date +%s)
found=0
for bin in build-fuzz/fuzz_*; do
	[ -x "$bin" ] || continue
	found=1
	name=${bin#build-fuzz/fuzz_}
	work=build-fuzz/corpus/$name
	arts=build-fuzz/artifacts/$name
	log=build-fuzz/fuzz_$name.log
	mkdir -p "$work" "$arts"
	if [ -d "tests/fuzz/corpus/$name" ]; then
		cp -R "tests/fuzz/corpus/$name/." "$work/"
	fi
	before=$(find "$work" -type f | wc -l)
	t0=$(date +%s)
	"$bin" "$work" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
		-artifact_prefix="$arts/" -print_final_stats=1 >"$log" 2>&1
	rc=$?
	after=$(find "$work" -type f | wc -l)
	bytes=$(du -sb "$work" | cut -f1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	echo "fuzz_$name: $((($(date +%s) - t0)))s, ${runs:-?} runs, corpus $before -> $after files" \
		"($bytes bytes), exit $rc"
	if [ "$rc" -ne 0 ]; then
		status=1
		echo "fuzz_$name FAILED; log $log, inputs in $arts/:"
		grep -E 'ERROR|SUMMARY|invariant|Test unit written' "$log" | head -n 20 | sed 's/^/    /'
	fi
done
if [ "$found" -eq 0 ]; then
	echo "run.sh: no build-fuzz/fuzz_* targets (make fuzz builds them)"
	status=2
fi
echo "total fuzz time: $(($(date +%s) - start))s"
exit "$status"
