#!/bin/bash
# tests/swarm/test_image_cache.sh - scripts/prune-image-cache.sh, the pruning of the image cache
# that images/vplcell/build.sh (the swarm services' image) and scripts/deploy.sh run, on a
# temporary cache of fake entries with chosen mtimes (seconds, no root, no engine):
#   - per image the newest K (3) stay; older ones go, except one used within the hour;
#   - an entry not used for N days goes, except the newest of its image;
#   - entries of other names and non-cache files stay; *.tmp older than a day go;
#   - --dry-run removes nothing; a build lock held skips that image; K=0 and N=0 prune nothing.
# Ends with "N passed, N failed"; exit status 1 on any failure.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PASS=0
FAIL=0
check() { # DESCRIPTION CMD...
	local d=$1
	shift
	if "$@"; then
		PASS=$((PASS + 1))
		echo "ok   $d"
	else
		FAIL=$((FAIL + 1))
		echo "FAIL $d"
	fi
}
C=$(mktemp -d /tmp/vplcell-cache-test.XXXXXX)
trap 'rm -rf "$C"' EXIT
export VPLCELL_IMAGE_CACHE=$C
unset VPLCELL_IMAGE_CACHE_KEEP VPLCELL_IMAGE_CACHE_DAYS
PRUNE=$ROOT/scripts/prune-image-cache.sh

mk() { # NAME AGE(touch -d syntax)
	echo x >"$C/$1"
	touch -d "$2" "$C/$1"
}
setup() {
	rm -rf "${C:?}"/* "$C"/.[!.]* 2>/dev/null
	mk vplcell-0000000000000001.tar "5 minutes ago"
	mk vplcell-0000000000000002.tar "10 minutes ago"
	mk vplcell-0000000000000003.tar "20 minutes ago"
	mk vplcell-0000000000000004.tar "30 minutes ago" # 4th newest, used within the hour: kept
	mk vplcell-0000000000000005.tar "2 days ago"     # 5th: removed
	mk vplcell-0000000000000006.tar "9 days ago"     # 6th: removed
	mk minivpl-00000000000000a1.tar "35 days ago"    # newest minivpl: kept however old
	mk minivpl-00000000000000a2.tar "40 days ago"    # not used for 40 days: removed
	mk 00000000000000b1.tar "100 days ago"           # the test image, alone: kept
	mk notours.tar "100 days ago"                    # not a cache entry: kept
	mk vplcell-0000000000000007.tar.tmp.123 "2 days ago" # a killed build's leftover: removed
	mk vplcell-0000000000000008.tar.tmp.456 "1 hour ago" # maybe being written: kept
}
GONE="vplcell-0000000000000005.tar vplcell-0000000000000006.tar minivpl-00000000000000a2.tar vplcell-0000000000000007.tar.tmp.123"
KEPT="vplcell-0000000000000001.tar vplcell-0000000000000002.tar vplcell-0000000000000003.tar vplcell-0000000000000004.tar minivpl-00000000000000a1.tar 00000000000000b1.tar notours.tar vplcell-0000000000000008.tar.tmp.456"
all_there() {
	local f
	for f in $GONE $KEPT; do [ -e "$C/$f" ] || return 1; done
}
as_expected() {
	local f
	for f in $GONE; do [ ! -e "$C/$f" ] || {
		echo "  $f still there"
		return 1
	}; done
	for f in $KEPT; do [ -e "$C/$f" ] || {
		echo "  $f removed"
		return 1
	}; done
}

setup
out=$("$PRUNE" --dry-run 2>&1)
check "--dry-run removes nothing" all_there
check "--dry-run names exactly the 4 entries to go" \
	test "$(grep -c 'would remove' <<<"$out"):$(for f in $GONE; do grep -c "$f" <<<"$out"; done | sort -u)" = 4:1

out=$("$PRUNE" 2>&1)
check "pruned: beyond the newest 3 (not within the hour), unused for 30 days (not the newest), old *.tmp" as_expected
check "one line per removed file" test "$(grep -c '^prune-image-cache: removed ' <<<"$out")" = 4

setup
VPLCELL_IMAGE_CACHE_KEEP=0 VPLCELL_IMAGE_CACHE_DAYS=0 "$PRUNE" >/dev/null 2>&1
check "KEEP=0 DAYS=0: no entry removed (only the old *.tmp)" \
	bash -c "[ ! -e '$C/vplcell-0000000000000007.tar.tmp.123' ] && rm -f '$C'/*.tmp.* && ls '$C' | grep -c . | grep -qx 10"

setup
exec 7>"$C/.minivpl.lock"
flock 7
out=$("$PRUNE" minivpl 2>&1)
exec 7>&-
check "a held build lock: that image is skipped, and NAME limits the pruning to it" \
	bash -c "[ -e '$C/minivpl-00000000000000a2.tar' ] && [ -e '$C/vplcell-0000000000000006.tar' ] && grep -q 'skipped' <<<'$out'"
"$PRUNE" --keep 1 vplcell >/dev/null 2>&1
check "--keep 1 vplcell: vplcell entries older than the hour go, minivpl untouched" \
	bash -c "[ ! -e '$C/vplcell-0000000000000005.tar' ] && [ -e '$C/vplcell-0000000000000004.tar' ] && [ -e '$C/minivpl-00000000000000a2.tar' ]"
check "a bad --keep is refused" bash -c "! '$PRUNE' --keep x >/dev/null 2>&1"

echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
