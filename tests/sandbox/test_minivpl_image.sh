#!/bin/bash
# test_minivpl_image.sh - builds (or reuses) the default task image minivpl (images/minivpl/build.sh)
# and verifies it for real in a private containerd (scripts/containerd-test.sh).
#
# Checks, one container each: the image's own config (user 10001:10001, workdir /home/prisoner,
# PATH), bash, gcc compiles and runs a C hello world, g++ a C++ one, python3 runs, the tools of the
# plugin's common_script.sh exist, `id -u prisoner` = 10001 and the home/.vplcell mount points,
# en_US.UTF-8 and C.UTF-8 locales, docs/apt lists pruned; and, as root (ctr 1.6 has no --user:
# an OCI spec from `ctr oci spec` whose root is a read-only `ctr images mount` of the image),
# `find / -xdev -perm /6000` prints nothing.
#
# Usage: tests/sandbox/test_minivpl_image.sh   (needs root; the first build takes a few minutes)
# Prints exactly one final line "N passed, N failed" and exits non-zero on failure. containerd is
# stopped by a trap on every exit path; `containerd-test.sh stop` removes containers, snapshots,
# leases, images, mounts and state. KEEP_TEST_DIR=1 keeps the test dir (logs).

# The single-quoted scripts below are expanded by bash inside the container, not here.
# shellcheck disable=SC2016
set -euo pipefail
cd "$(dirname "$0")/../.."
IMAGE=vplcell.local/minivpl:latest
pass=0
fail=0
result() { # result ok|fail "text" [detail file]
	if [ "$1" = ok ]; then
		pass=$((pass + 1))
		echo "ok - $2"
	else
		fail=$((fail + 1))
		echo "FAIL - $2"
		if [ -n "${3:-}" ] && [ -s "$3" ]; then sed 's/^/#   /' "$3" | tail -n 20; fi
	fi
}
finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" = 0 ] && exit 0
	exit 1
}

if [ "$(id -u)" != 0 ]; then
	echo "test_minivpl_image: needs root (debootstrap, containerd)" >&2
	result fail "running as root"
	finish
fi

T=$(mktemp -d /tmp/vplcell-minivpl-test.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	scripts/containerd-test.sh stop "$T" >/dev/null 2>&1 || true
	if [ "${KEEP_TEST_DIR:-0}" = 1 ]; then
		echo "# test dir (kept): $T"
	else
		rm -rf --one-file-system "$T"
	fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# 1. the image (the build's progress goes to a log; its last stdout line is the tarball)
t0=$(date +%s)
img=
if img=$(images/minivpl/build.sh 2>"$T/build.log" | tail -n 1) && [ -s "$img" ] &&
	[[ "$(basename "$img")" =~ ^minivpl-[0-9a-f]{16}\.tar$ ]]; then
	result ok "image built or reused in $(($(date +%s) - t0)) s: $img ($(stat -c %s "$img") bytes)"
else
	result fail "image built (images/minivpl/build.sh)" "$T/build.log"
	finish
fi

# 2. private containerd + import
if scripts/containerd-test.sh start "$T" >"$T/start.log" 2>&1; then
	result ok "private containerd started"
else
	result fail "private containerd started" "$T/start.log"
	finish
fi
eval "$(scripts/containerd-test.sh env "$T")"
ctrc() { ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" "$@"; }
if ctrc images import "$img" >"$T/import.log" 2>&1 && ctrc images ls -q | grep -qxF "$IMAGE"; then
	result ok "imported as $IMAGE"
else
	result fail "imported as $IMAGE" "$T/import.log"
	finish
fi

n=0
# run_image SCRIPT: runs `bash -c SCRIPT` in a new container with the image's own config (so as the
# prisoner, in /home/prisoner). Output (stdout+stderr) in $T/out.<n>, its path in $outf.
run_image() {
	n=$((n + 1))
	outf=$T/out.$n
	timeout 120 ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" run --rm "$IMAGE" "minivpl-$n" \
		bash -c "$1" </dev/null >"$outf" 2>&1
}
# check "text" EXPECTED SCRIPT: passes when the container exits 0 and its output equals EXPECTED.
check() {
	if run_image "$3" && [ "$(cat "$outf")" = "$2" ]; then
		result ok "$1"
	else
		printf 'expected:\n%s\n' "$2" >>"$outf"
		result fail "$1" "$outf"
	fi
}

# 3. image config honoured: user, workdir, PATH
check "runs as 10001:10001 in /home/prisoner with the image's PATH" \
	"10001:10001 /home/prisoner /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
	'echo "$(id -u):$(id -g) $PWD $PATH"'

# 4. bash
check "bash exists" "GNU bash 5" 'bash --version | sed -n "1s/^\(GNU bash\), version \([0-9]\).*/\1 \2/p"'

# 5. gcc: C hello world compiled and run
check "gcc compiles and runs a C program" "hello from C" '
printf "#include <stdio.h>\nint main(void) { puts(\"hello from C\"); return 0; }\n" >h.c &&
gcc -O2 -Wall -Werror -o h h.c && ./h'

# 6. g++: C++ hello world compiled and run
check "g++ compiles and runs a C++ program" "hello from C++ 17" '
printf "#include <iostream>\nint main() { std::cout << \"hello from C++ \" << __cplusplus / 100 %% 100 << std::endl; }\n" >h.cpp &&
g++ -std=c++17 -O2 -Wall -Werror -o hpp h.cpp && ./hpp'

# 7. python3
check "python3 runs" "hello from python 3" 'python3 -c "import sys; print(\"hello from python\", sys.version_info[0])"'

# 8. what the plugin's default scripts call (common_script.sh, launchers): all on PATH
check "tools of the default scripts present" "all present" '
m=""
for t in bash sh grep egrep sed awk gawk find xargs ps pkill file less make cat cp mv rm mkdir ls \
	chmod stty base64 sort uniq head tail tr cut wc tee date sleep timeout env which tar gzip diff \
	cc c++ gcc g++ python3 locale; do command -v "$t" >/dev/null || m="$m $t"; done
echo "${m:-all present}"'

# 9. the prisoner and the mount points
check "id -u prisoner = 10001; /home/prisoner 700 10001:10001 empty; /.vplcell dir" \
	"10001 10001 /home/prisoner|700 10001:10001 0|directory 755 0:0" \
	'echo "$(id -u prisoner) $(id -g prisoner) $(getent passwd prisoner | cut -d: -f6)|$(stat -c "%a %u:%g" /home/prisoner) $(find /home/prisoner -mindepth 1 | wc -l)|$(stat -c "%F %a %u:%g" /.vplcell)"'

# 10. locales
check "en_US.UTF-8 and C.UTF-8 locales available" "en_US.utf8 C.utf8 UTF-8 UTF-8" '
a=$(locale -a)
e=$(grep -xi "en_US.utf8" <<<"$a"); c=$(grep -xi "C.utf8" <<<"$a")
echo "$e $c $(LC_ALL=en_US.UTF-8 locale charmap 2>&1) $(LC_ALL=C.UTF-8 locale charmap 2>&1)"'

# 11. pruned: no apt lists or caches, no man pages, no docs but copyright files, no translations
check "apt lists/caches, man pages, docs and translations pruned" "0 0 0 0" '
echo "$(find /var/lib/apt/lists /var/cache/apt -type f | wc -l) $(find /usr/share/man -type f 2>/dev/null | wc -l)" \
	"$(find /usr/share/doc -type f ! -name copyright | wc -l) $(find /usr/share/locale -mindepth 1 ! -name locale.alias | wc -l)"'

# 12. no setuid/setgid file, checked as root (the prisoner cannot read every directory).
# ctr 1.6 `run` has no --user: a full spec with root.path = a read-only mount of the image.
setuid_check() {
	mkdir -p "$T/mnt"
	ctrc images mount "$IMAGE" "$T/mnt" >"$T/mount.log" 2>&1 || return 1
	ctrc oci spec >"$T/spec0.json" || return 1
	python3 - "$T/spec0.json" "$T/spec.json" "$T/mnt" <<'PY' || return 1
import json, sys
s = json.load(open(sys.argv[1]))
s["root"] = {"path": sys.argv[3], "readonly": True}
s["process"]["user"] = {"uid": 0, "gid": 0}
s["process"]["cwd"] = "/"
s["process"]["terminal"] = False
s["process"]["env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
s["process"]["args"] = ["/bin/bash", "-c",
    "echo uid=$(id -u); find / -xdev -perm /6000 -print; echo rc=$?"]
json.dump(s, open(sys.argv[2], "w"))
PY
	n=$((n + 1))
	outf=$T/out.$n
	timeout 120 ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" run --rm --config "$T/spec.json" \
		"minivpl-$n" </dev/null >"$outf" 2>&1
}
if setuid_check && [ "$(cat "$outf")" = "$(printf 'uid=0\nrc=0')" ]; then
	result ok "no setuid/setgid files (find / -xdev -perm /6000 as root prints nothing)"
else
	result fail "no setuid/setgid files (find / -xdev -perm /6000 as root prints nothing)" \
		"${outf:-$T/mount.log}"
fi
ctrc images unmount --rm "$T/mnt" >/dev/null 2>&1 || true

finish
