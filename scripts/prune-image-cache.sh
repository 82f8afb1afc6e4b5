#!/bin/bash
# scripts/prune-image-cache.sh [--dry-run] [--keep K] [--days N] [NAME...] - prunes the image cache
# of images/*/build.sh and scripts/build-test-image.sh ($VPLCELL_IMAGE_CACHE, default
# /var/cache/vplcell/images).
#
# Every build is cached as <NAME>-<16 hex>.tar (or <16 hex>.tar for the test image), the hex being a
# hash of the build's inputs: each change of a binary, a library or a build script adds an entry
# and none ever replaces another. An entry's last use is its mtime: a build script that reuses a
# cached tarball touches it (images/vplcell/build.sh; scripts/deploy.sh for minivpl). Per NAME:
#
#   - the newest K entries are kept (--keep, VPLCELL_IMAGE_CACHE_KEEP, default 3; 0 = no limit);
#   - an entry not used for N days is removed (--days, VPLCELL_IMAGE_CACHE_DAYS, default 30;
#     0 = never by age), except the newest one of its NAME;
#   - an entry used within the last hour is never removed: another build or test on this host may
#     just have been handed its path;
#   - *.tmp files (a build killed while it wrote) older than a day are removed.
#
# NAMEs limit the pruning to those images (e.g. vplcell); none = every image in the cache. An
# image's entries are pruned under its build lock (<CACHE>/.<NAME>.lock, the build scripts' own;
# .vplcell-image.lock for vplcell); an image whose build runs now is skipped. --dry-run only
# prints. Prints one line per removed file; exit status 0 unless the cache cannot be read.
# Called by images/vplcell/build.sh (its own image) and scripts/deploy.sh (every image).
set -uo pipefail

CACHE=${VPLCELL_IMAGE_CACHE:-/var/cache/vplcell/images}
KEEP=${VPLCELL_IMAGE_CACHE_KEEP:-3}
DAYS=${VPLCELL_IMAGE_CACHE_DAYS:-30}
dry=0
names=()
while [ $# -gt 0 ]; do
	case "$1" in
	--dry-run) dry=1 ;;
	--keep)
		KEEP=${2:-}
		shift
		;;
	--days)
		DAYS=${2:-}
		shift
		;;
	-*)
		echo "usage: $0 [--dry-run] [--keep K] [--days N] [NAME...]" >&2
		exit 2
		;;
	*) names+=("$1") ;;
	esac
	shift
done
[[ $KEEP =~ ^[0-9]+$ ]] || {
	echo "prune-image-cache: --keep/VPLCELL_IMAGE_CACHE_KEEP must be a whole number" >&2
	exit 2
}
[[ $DAYS =~ ^[0-9]+$ ]] || {
	echo "prune-image-cache: --days/VPLCELL_IMAGE_CACHE_DAYS must be a whole number" >&2
	exit 2
}
[ -d "$CACHE" ] || exit 0
now=$(date +%s)

rm_entry() { # FILE WHY
	if [ "$dry" = 1 ]; then
		echo "prune-image-cache: would remove $1 ($2)"
	elif rm -f "$1"; then
		echo "prune-image-cache: removed $1 ($2)"
	fi
}

# leftovers of killed builds
while IFS= read -r f; do
	rm_entry "$f" "unfinished, older than a day"
done < <(find "$CACHE" -maxdepth 1 -type f -name '*.tmp*' -mmin +1440 2>/dev/null)

# the cached entries: "NAME MTIME FILE" (NAME is empty for <16 hex>.tar)
entries=$(find "$CACHE" -maxdepth 1 -type f -name '*.tar' -printf '%T@ %f\n' 2>/dev/null |
	while read -r mtime f; do
		n=${f%.tar}
		if [[ $n =~ ^[0-9a-f]{16}$ ]]; then
			name=-
		elif [[ $n =~ ^(.+)-[0-9a-f]{16}$ ]]; then
			name=${BASH_REMATCH[1]}
		else
			continue
		fi
		echo "$name ${mtime%.*} $f"
	done)
[ -n "$entries" ] || exit 0

while read -r name; do
	if [ ${#names[@]} -gt 0 ] && [[ " ${names[*]} " != *" $name "* ]]; then continue; fi
	lock=$CACHE/.$name.lock
	[ "$name" = vplcell ] && lock=$CACHE/.vplcell-image.lock
	[ "$name" = - ] && lock=$CACHE/.test-image.lock
	(
		# the build script holding this lock is the caller (its fd 9): pruning runs under it
		if [ "${VPLCELL_PRUNE_LOCK_HELD:-}" != "$lock" ]; then
			exec 7>>"$lock" || exit 0
			flock -n 7 || {
				echo "prune-image-cache: $name: a build holds $lock, skipped"
				exit 0
			}
		fi
		rank=0
		awk -v n="$name" '$1 == n { print $2, $3 }' <<<"$entries" | sort -rn |
			while read -r mtime file; do
				rank=$((rank + 1))
				age=$((now - mtime))
				[ "$age" -ge 3600 ] || continue
				if [ "$KEEP" -gt 0 ] && [ "$rank" -gt "$KEEP" ]; then
					rm_entry "$CACHE/$file" "beyond the newest $KEEP of ${name/#-/the test image}"
				elif [ "$DAYS" -gt 0 ] && [ "$rank" -gt 1 ] && [ "$age" -gt $((DAYS * 86400)) ]; then
					rm_entry "$CACHE/$file" "not used for $((age / 86400)) days"
				fi
			done
	)
done < <(awk '{ print $1 }' <<<"$entries" | sort -u)
exit 0
