#!/bin/bash
# test_image_build.sh - the task images through the local registry into containerd, for real.
#
# Builds (or reuses, from /var/cache/vplcell/images) minivpl and minivpl-java; starts a private
# registry (scripts/registry.sh, temp dir, free loopback ports, a user + random password, plus the
# anonymous read-only instance); checks that unauthenticated pushes are refused and authenticated
# pushes work (scripts/push-image.sh), that minivpl-java's first layer IS minivpl's layer (shared),
# that the read-only instance serves pulls anonymously and refuses pushes; starts a private
# containerd (scripts/containerd-test.sh), pulls both with `ctr images pull --plain-http --user`,
# imports the minivpl-java tarball with `ctr images import`, and runs containers (as the image's
# user 10001:10001): Xvnc serves RFB on a display, openbox runs on it, xterm/vncpasswd/xauth/xmodmap
# exist; javac compiles and java runs a class; gcc, g++, python3 are still there.
#
# Usage: tests/images/test_image_build.sh   (needs root; cold image builds take a few minutes,
# a warm cache makes the whole test take about half a minute). Prints one final line
# "N passed, N failed", exits non-zero on failure. The registry and containerd are stopped and the
# temp dir removed by a trap on every exit path. KEEP_TEST_DIR=1 keeps the test dir (logs).
# shellcheck disable=SC2016 # the single-quoted scripts run in the container's bash
set -euo pipefail
cd "$(dirname "$0")/../.."
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
	result fail "running as root (image builds, registry, containerd)"
	finish
fi

T=$(mktemp -d /tmp/vplcell-imgtest.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	scripts/containerd-test.sh stop "$T/ctd" >/dev/null 2>&1 || true
	scripts/registry.sh stop "$T/reg" >/dev/null 2>&1 || true
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

# ---- 1. the images ----
build() { # name script -> sets $img
	local t0
	t0=$(date +%s)
	img=
	if img=$("$2" 2>"$T/build-$1.log" | tail -n 1) && [ -s "$img" ] &&
		[[ "$(basename "$img")" =~ ^$1-[0-9a-f]{16}\.tar$ ]]; then
		result ok "$1 built or reused in $(($(date +%s) - t0)) s: $img ($(stat -c %s "$img") bytes)"
	else
		result fail "$1 built ($2)" "$T/build-$1.log"
		finish
	fi
}
build minivpl images/minivpl/build.sh
base_tar=$img
build minivpl-java images/minivpl-java/build.sh
java_tar=$img
test_tar=$(scripts/build-test-image.sh 2>"$T/build-busybox.log" | tail -n 1) || true

# ---- 2. the private registry ----
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P=$(free_port)
PRO=$(free_port)
while [ "$PRO" = "$P" ]; do PRO=$(free_port); done
R=127.0.0.1:$P
RO=127.0.0.1:$PRO
U=vt$$
head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$T/pw"
PW=$(cat "$T/pw")
printf '%s:%s\n' "$U" "$PW" >"$T/creds"
if scripts/registry.sh start "$T/reg" --addr "$R" --user "$U" --password-file "$T/pw" \
	--readonly-addr "$RO" >"$T/reg-start.log" 2>&1; then
	result ok "registry started on $R (read-only instance on $RO)"
else
	result fail "registry started" "$T/reg-start.log"
	finish
fi
code() { curl -s -o /dev/null -m 5 -w '%{http_code}' "$@" || true; }
c1=$(code "http://$R/v2/")
c2=$(code -u "$U:$PW" "http://$R/v2/")
c3=$(code -u "$U:wrong" "http://$R/v2/")
if [ "$c1" = 401 ] && [ "$c2" = 200 ] && [ "$c3" = 401 ]; then
	result ok "GET /v2/: 401 anonymous, 200 with the password, 401 with a wrong one"
else
	result fail "GET /v2/: anonymous $c1, password $c2, wrong password $c3 (want 401 200 401)"
fi
scripts/registry.sh start "$T/reg" --user "$U" --password-file "$T/pw" >"$T/reg-again.log" 2>&1
if grep -q "already running" "$T/reg-again.log" && scripts/registry.sh status "$T/reg" >/dev/null; then
	result ok "registry.sh start again: left running, status 0"
else
	result fail "registry.sh start again: left running, status 0" "$T/reg-again.log"
fi

# ---- 3. pushes ----
if [ -s "$test_tar" ] && ! scripts/push-image.sh "$test_tar" "$R/refused:latest" --plain-http \
	>"$T/push-anon.log" 2>&1 && [ "$(code -u "$U:$PW" "http://$R/v2/refused/tags/list")" = 404 ]; then
	result ok "unauthenticated push refused (nothing stored)"
else
	result fail "unauthenticated push refused" "$T/push-anon.log"
fi
push() { # tar repo -> digest in $dig
	local t0
	t0=$(date +%s%N)
	if dig=$(scripts/push-image.sh "$1" "$R/$2:latest" --creds-file "$T/creds" --plain-http \
		2>"$T/push-$2.log" | tail -n 1) && [[ "$dig" =~ ^sha256:[0-9a-f]{64}$ ]]; then
		result ok "authenticated push of $2: $dig ($((($(date +%s%N) - t0) / 1000000)) ms)"
	else
		result fail "authenticated push of $2" "$T/push-$2.log"
	fi
}
push "$base_tar" minivpl
push "$java_tar" minivpl-java
java_dig=$dig
manifest() { # repo -> manifest JSON on stdout (from the registry, with the password)
	curl -s -m 10 -u "$U:$PW" -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
		"http://$R/v2/$1/manifests/latest"
}
layers() { python3 -c 'import json,sys; print(" ".join(l["digest"] for l in json.load(sys.stdin)["layers"]))'; }
bl=$(manifest minivpl | layers 2>/dev/null || true)
jl=$(manifest minivpl-java | layers 2>/dev/null || true)
read -r -a bla <<<"$bl"
read -r -a jla <<<"$jl"
if [ "${#bla[@]}" = 1 ] && [ "${#jla[@]}" = 2 ] && [ "${jla[0]}" = "${bla[0]}" ]; then
	result ok "minivpl-java = minivpl's layer ${bla[0]:0:19}... (shared) + one layer ${jla[1]:0:19}..."
else
	result fail "minivpl-java's first layer is minivpl's (minivpl: $bl; minivpl-java: $jl)"
fi
# pushing the same tarball again: same digest (idempotent)
dig2=$(scripts/push-image.sh "$java_tar" "$R/minivpl-java:latest" --creds-file "$T/creds" \
	--plain-http 2>"$T/push-again.log" | tail -n 1) || true
if [ "$dig2" = "$java_dig" ]; then
	result ok "second push of minivpl-java: same digest"
else
	result fail "second push of minivpl-java: same digest ($dig2 vs $java_dig)" "$T/push-again.log"
fi
# the read-only instance: anonymous reads, no writes
c4=$(code -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$RO/v2/minivpl-java/manifests/latest")
if [ "$c4" = 200 ] && [ -s "$test_tar" ] && ! scripts/push-image.sh "$test_tar" "$RO/refused:latest" \
	--plain-http >"$T/push-ro.log" 2>&1; then
	result ok "read-only instance: anonymous manifest GET 200, push refused"
else
	result fail "read-only instance: anonymous manifest GET $c4 (want 200), push refused" "$T/push-ro.log"
fi

# ---- 4. containerd: pull both, import the tarball ----
if scripts/containerd-test.sh start "$T/ctd" >"$T/ctd-start.log" 2>&1; then
	result ok "private containerd started"
else
	result fail "private containerd started" "$T/ctd-start.log"
	finish
fi
eval "$(scripts/containerd-test.sh env "$T/ctd")"
ctrc() { ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" "$@"; }
for repo in minivpl minivpl-java; do
	t0=$(date +%s%N)
	if timeout 300 ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" images pull --plain-http --user "$U:$PW" \
		"$R/$repo:latest" >"$T/pull-$repo.log" 2>&1; then
		result ok "ctr images pull $repo ($((($(date +%s%N) - t0) / 1000000)) ms)"
	else
		result fail "ctr images pull $repo" "$T/pull-$repo.log"
		finish
	fi
done
if timeout 120 ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" images pull --plain-http \
	"$RO/minivpl-java:latest" >"$T/pull-ro.log" 2>&1; then
	result ok "anonymous pull from the read-only instance"
else
	result fail "anonymous pull from the read-only instance" "$T/pull-ro.log"
fi
if ctrc images import "$java_tar" >"$T/import.log" 2>&1 &&
	ctrc images ls -q | grep -qxF vplcell.local/minivpl-java:latest; then
	result ok "ctr images import of the minivpl-java tarball names it vplcell.local/minivpl-java:latest"
else
	result fail "ctr images import of the minivpl-java tarball" "$T/import.log"
fi

# ---- 5. containers ----
n=0
run_image() { # image script -> output in $outf
	n=$((n + 1))
	outf=$T/out.$n
	timeout 120 ctr -a "$CTR_SOCKET" -n "$CTR_NAMESPACE" run --rm "$1" "imgtest-$n" \
		bash -c "$2" </dev/null >"$outf" 2>&1
}
# expect KEY VALUE: the line "KEY VALUE" is in $outf
expect() { grep -qxF "$1 $2" "$outf"; }
check_line() { # text key value
	if expect "$2" "$3"; then result ok "$1"; else result fail "$1 (want '$2 $3')" "$outf"; fi
}

# minivpl: the graphical tools, and a real VNC server with the window manager on it
run_image "$R/minivpl:latest" '
export HOME=/home/prisoner
echo "user $(id -u):$(id -g)"
Xvnc -version 2>&1 | grep -q "TigerVNC" && echo "xvnc-version ok"
m=""; for t in Xvnc vncpasswd xauth xmodmap xset xrdb xsetroot openbox xterm mcookie; do
	command -v $t >/dev/null || m="$m $t"; done; echo "tools ${m:-ok}"
printf "secret12\nsecret12\n" | vncpasswd -f >/tmp/pw && [ -s /tmp/pw ] && echo "vncpasswd ok"
Xvnc :7 -localhost -rfbport 5907 -SecurityTypes VncAuth -PasswordFile /tmp/pw -geometry 800x600 \
	>/tmp/xvnc.log 2>&1 &
x=$!
for i in $(seq 1 100); do xmodmap -display :7 >/dev/null 2>&1 && break; sleep 0.1; done
xmodmap -display :7 >/dev/null 2>&1 && echo "display ok"
exec 5<>/dev/tcp/127.0.0.1/5907 && read -r -t 5 banner <&5 && echo "rfb ${banner:0:7}"
exec 5<&-
DISPLAY=:7 openbox >/tmp/ob.log 2>&1 &
o=$!
sleep 1
kill -0 $o 2>/dev/null && echo "openbox running"
kill $o $x 2>/dev/null; wait 2>/dev/null
true'
check_line "minivpl runs as the image user 10001:10001" user 10001:10001
check_line "Xvnc -version is TigerVNC" xvnc-version ok
check_line "Xvnc, vncpasswd, xauth, xmodmap, xset, xrdb, xsetroot, openbox, xterm, mcookie present" tools ok
check_line "vncpasswd -f writes a password file" vncpasswd ok
check_line "Xvnc starts a display (xmodmap answers on :7)" display ok
check_line "Xvnc serves RFB on 127.0.0.1:5907" rfb "RFB 003"
check_line "openbox runs on the Xvnc display" openbox running

# minivpl-java: java, and minivpl's toolchains still there
run_image "$R/minivpl-java:latest" '
cd /home/prisoner
echo "user $(id -u):$(id -g) $PWD"
echo "java_home $JAVA_HOME"
printf "public class Hello {\n  public static void main(String[] a) {\n    System.out.println(\"hello from java \" + Runtime.version().feature());\n  }\n}\n" >Hello.java
javac Hello.java && echo "java-run $(java -cp . Hello)"
printf "#include <stdio.h>\nint main(void) { puts(\"c ok\"); return 0; }\n" >h.c && gcc -o h h.c && echo "gcc $(./h)"
printf "#include <iostream>\nint main() { std::cout << \"cpp ok\" << std::endl; }\n" >h.cpp && g++ -o hpp h.cpp && echo "g++ $(./hpp)"
echo "python3 $(python3 -c "print(6*7)")"
echo "xvnc $(command -v Xvnc)"'
check_line "minivpl-java runs as 10001:10001 in /home/prisoner" user "10001:10001 /home/prisoner"
check_line "minivpl-java sets JAVA_HOME" java_home "/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)"
check_line "javac compiles and java runs Hello (Java 17)" java-run "hello from java 17"
check_line "gcc still compiles and runs C in minivpl-java" gcc "c ok"
check_line "g++ still compiles and runs C++ in minivpl-java" g++ "cpp ok"
check_line "python3 still runs in minivpl-java" python3 42
check_line "minivpl-java keeps Xvnc" xvnc /usr/bin/Xvnc

# ---- 6. stop everything; nothing may be left ----
scripts/containerd-test.sh stop "$T/ctd" >"$T/ctd-stop.log" 2>&1 || true
scripts/registry.sh stop "$T/reg" >"$T/reg-stop.log" 2>&1 || true
left=""
for p in $(pgrep -f 'docker-registry serve|containerd' 2>/dev/null); do
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$T/" && left="$left $p"
done
mnts=$(grep -cF " $T/" /proc/self/mountinfo || true)
if [ -z "$left" ] && [ "$mnts" = 0 ] && ! scripts/registry.sh status "$T/reg" >/dev/null; then
	result ok "registry and containerd stopped: no process, no mount left"
else
	result fail "registry and containerd stopped (processes:${left:- none}, mounts: $mnts)"
fi
finish
