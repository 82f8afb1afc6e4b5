#!/bin/sh
# regress.sh BUILD_DIR - replays every file of tests/fuzz/corpus/X/ and
# tests/fuzz/regress/X/ through BUILD_DIR/tests/fuzzdrv_X, for every fuzz
# target tests/fuzz/fuzz_X.c (the drivers come from mk/fuzzregress.mk).
# Ends with one line "N passed, N failed", one count per file, and exits
# non-zero if any file failed (crash, sanitizer report, leak, invariant).
#
# All files of a target go through one process first; only when that fails
# is each file replayed alone, to name the culprits.
set -u
build=${1:?usage: regress.sh BUILD_DIR}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
cd "$(dirname "$0")" || exit 2

pass=0
fail=0
list=$(mktemp "${TMPDIR:-/tmp}/vplcell-regress.XXXXXX") || exit 2
trap 'rm -f "$list"' EXIT

for src in fuzz_*.c; do
	[ -e "$src" ] || continue
	name=${src#fuzz_}
	name=${name%.c}
	drv=$build/tests/fuzzdrv_$name
	find "corpus/$name" "regress/$name" -type f 2>/dev/null | sort >"$list"
	n=$(wc -l <"$list")
	[ "$n" -eq 0 ] && continue
	if [ ! -x "$drv" ]; then
		echo "FAIL $name: driver $drv not built (make unit)"
		fail=$((fail + n))
		continue
	fi
	if tr '\n' '\0' <"$list" | xargs -0 "$drv" >/dev/null 2>&1; then
		pass=$((pass + n))
		continue
	fi
	while IFS= read -r f; do
		if "$drv" "$f" >"$list.out" 2>&1; then
			pass=$((pass + 1))
		else
			fail=$((fail + 1))
			echo "FAIL $name: tests/fuzz/$f"
			tail -n 20 "$list.out" | sed 's/^/    /'
		fi
	done <"$list"
	rm -f "$list.out"
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
