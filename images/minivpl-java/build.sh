#!/bin/bash
# images/minivpl-java/build.sh - builds "minivpl-java" (minivpl + a Java 17 JDK) FROM the minivpl
# image, with no container engine, and prints the path of its OCI image-layout tarball as the last
# line of stdout (progress goes to stderr).
#
# THIS IS THE MODEL FOR A TEACHER'S OWN IMAGE. To make one:
#   1. copy this directory: cp -r images/minivpl-java images/mycourse
#   2. change the lines marked "CHANGE" below: NAME (cache file prefix), IMAGE_NAME, PACKAGES,
#      and if needed EXTRA_ENV and customize()
#   3. build it: images/mycourse/build.sh   (as root; prints the tarball path)
#      push it:  scripts/push-image.sh "$(images/mycourse/build.sh)" 127.0.0.1:5000/mycourse:latest \
#                    --creds-file /etc/vplcell/registry.creds --plain-http
# Everything below the "no change needed" line is generic.
#
# Route: the minivpl OCI tarball (images/minivpl/build.sh, cached) -> `umoci unpack` into a runtime
# bundle -> apt-get install --no-install-recommends $PACKAGES in a chroot of the bundle's rootfs (with
# /proc and a minimal /dev mounted) -> the same pruning as minivpl (apt lists/caches, logs, /dev,
# no setuid/setgid bits) -> `umoci repack`: ONE NEW LAYER on top of minivpl's untouched layer, so a
# registry and containerd store minivpl's layer once for every image built like this ->
# `umoci config` adds EXTRA_ENV (the user, workdir, PATH and command stay minivpl's) -> the OCI
# layout, with the name annotations `ctr images import` reads, tarred.
# Cache: $CACHE/$NAME-<16 hex of sha256 over this script + the minivpl tarball's file name (which
# is minivpl's own cache key) + the package list>.tar; an existing tarball is reused. Concurrent
# runs serialise on a flock; mounts and temp files are removed on every exit path.
#
# Environment: VPLCELL_IMAGE_CACHE (default /var/cache/vplcell/images), TMPDIR (work dir, default
# /var/tmp; needs about 1.5 GB while building). Needs root (chroot, mount) and the Debian mirror.
set -euo pipefail

# stdout is reserved for the final path: everything else (ours and the tools') goes to stderr.
exec 3>&1 1>&2

# ------------------------------------------------------------------------------------------------
# CHANGE: the cache file prefix and the image's name (the name `ctr images import` gives it; a push
# names it again, e.g. 127.0.0.1:5000/minivpl-java:latest).
NAME=minivpl-java
IMAGE_NAME=vplcell.local/minivpl-java:latest
# CHANGE: the Debian packages to add, installed with --no-install-recommends. The -headless JDK has
# javac and java without the X11/sound libraries of openjdk-17-jdk; Swing/AWT programs in a VNC run
# need the full openjdk-17-jdk instead (it adds the AWT libraries, about 10 MB more).
PACKAGES="openjdk-17-jdk-headless"
# CHANGE: environment variables to add to the image's config (KEY=VALUE, space-separated). PATH
# stays minivpl's: Debian puts java and javac in /usr/bin through update-alternatives.
darch=$(dpkg --print-architecture)
EXTRA_ENV="JAVA_HOME=/usr/lib/jvm/java-17-openjdk-$darch"
# CHANGE (optional): commands run as root inside the image after the install, e.g. to download
# nothing (the jail has no network) but to write a config file or compile a library. `inchroot CMD`
# runs CMD in the image. Keep it empty if you only add packages.
customize() {
	# javac and java must work: a failed JDK install is caught here, not in a student's task.
	inchroot sh -c 'cd /tmp && printf "class T { public static void main(String[] a) { System.out.println(\"ok\"); } }\n" >T.java &&
		javac T.java && java -cp . T && rm -f T.java T.class'
}
# The base image: minivpl's build script (cached), whose last stdout line is its tarball.
BASE_BUILD=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../minivpl/build.sh
# ---------------------------------------------------------------------- no change needed below ---

CACHE=${VPLCELL_IMAGE_CACHE:-/var/cache/vplcell/images}
log() { echo "$NAME: $*"; }
die() {
	echo "$NAME: error: $*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (chroot, mount)"
if ! command -v umoci >/dev/null; then
	log "installing umoci"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends umoci >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends umoci >/dev/null
	}
fi
command -v python3 >/dev/null || die "python3 is needed on the host (it edits index.json)"

# ---- the base image (built or reused) ----
t0=$(date +%s)
base=$("$BASE_BUILD" 3>&- | tail -n 1)
[ -s "$base" ] || die "base image build failed ($BASE_BUILD)"
log "base image: $base"

# ---- cache key and fast path ----
self=$(readlink -f "${BASH_SOURCE[0]}")
key=$( (
	cat "$self"
	echo "base: $(basename "$base")"
	echo "packages: $PACKAGES"
	echo "env: $EXTRA_ENV"
) | sha256sum | cut -c1-16)
out=$CACHE/$NAME-$key.tar
if [ -s "$out" ]; then
	log "cached: $out"
	echo "$out" >&3
	exit 0
fi

# ---- serialise concurrent builds: one builds, the others wait and then reuse its tarball ----
mkdir -p "$CACHE"
exec 9>"$CACHE/.$NAME.lock"
if ! flock -n 9; then
	log "another build holds $CACHE/.$NAME.lock; waiting"
	flock 9
fi
if [ -s "$out" ]; then
	log "built by a concurrent run: $out"
	echo "$out" >&3
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/var/tmp}/vplcell-$NAME.XXXXXX")
L=$work/layout
root=$work/bundle/rootfs
# Unmount everything under $work (deepest first), then delete it. rm --one-file-system never
# descends into a mount that could not be removed (e.g. a busy /proc), so the host is never touched.
cleanup() {
	local m left
	for _ in 1 2 3; do
		left=0
		while read -r m; do
			left=1
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
		done < <(awk -v w="$work/" 'index($5, w) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
		[ "$left" = 0 ] && break
	done
	rm -rf --one-file-system "$work" 2>/dev/null || log "warning: could not remove $work"
	rm -f "$out.tmp.$$"
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Run a command in the image with a clean environment. 9>&- : nothing started inside may keep the
# build lock.
inchroot() {
	chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes "$@" 9>&-
}

# ---- 1. unpack the base into a bundle (umoci records an mtree of it for the repack) ----
mkdir -p "$L"
tar -xf "$base" -C "$L"
umoci unpack --image "$L:latest" "$work/bundle" >"$work/umoci.log" 2>&1 || {
	tail -n 20 "$work/umoci.log"
	die "umoci unpack failed"
}
log "base unpacked ($(($(date +%s) - t0)) s)"

# ---- 2. apt inside the chroot ----
# The image's /dev is empty (the runtime provides it): apt and maintainer scripts need a few nodes.
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755,size=1m vplcell-dev "$root/dev"
for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
	read -r name major minor <<<"$n"
	mknod -m 0666 "$root/dev/$name" c "$major" "$minor"
done
ln -s /proc/self/fd "$root/dev/fd"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# update-alternatives fails when a slave link's directory is missing: the man pages are excluded
# but their directories must exist (minivpl has them; this covers older bases).
mkdir -p "$root"/usr/share/man/man{1,2,3,4,5,6,7,8}
# No package may start a daemon in the chroot (it would keep the chroot busy).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
log "apt-get install: $PACKAGES"
# minivpl's /etc/dpkg/dpkg.cfg.d/vplcell-minimal keeps docs, man pages and translations out, and
# its /etc/apt/apt.conf.d/90vplcell turns recommends off; --no-install-recommends says it again.
# shellcheck disable=SC2086 # $PACKAGES is a word list on purpose
if ! inchroot sh -c 'apt-get update -q && apt-get install -y -q --no-install-recommends "$@"' \
	sh $PACKAGES >"$work/apt.log" 2>&1; then
	tail -n 30 "$work/apt.log"
	die "apt-get in the chroot failed"
fi
customize >>"$work/apt.log" 2>&1 || {
	tail -n 20 "$work/apt.log"
	die "customize failed"
}
log "packages installed ($(($(date +%s) - t0)) s)"

# ---- 3. prune, as minivpl does ----
inchroot apt-get clean
umount "$root/dev" "$root/proc"
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
	"$root"/var/lib/dpkg/*-old "$root"/var/cache/ldconfig/aux-cache "$root"/var/lib/systemd/* \
	"$root"/tmp/* "$root"/var/tmp/* "$root"/root/.cache "$root"/root/.java
find "$root/var/log" -type f -delete
find "$root/dev" -mindepth 1 -delete
# update-alternatives' links to man pages that the dpkg excludes kept out (dangling)
find "$root/usr/share/man" -mindepth 2 ! -type d -delete
: >"$root/etc/resolv.conf"
# dpkg restores the setuid bits of every package it installs: strip them again.
find "$root" -xdev -perm /6000 -exec chmod ug-s {} +
[ -z "$(find "$root" -xdev -perm /6000 -print -quit)" ] || die "setuid/setgid files remain"
chmod 1777 "$root/tmp" "$root/var/tmp"
unpacked_kb=$(du -sk --apparent-size "$root" | cut -f1)

# ---- 4. one new layer on top of the base's, then the config ----
umoci repack --image "$L:latest" --history.created_by "images/$NAME/build.sh: apt-get install \
--no-install-recommends $PACKAGES" "$work/bundle" >>"$work/umoci.log" 2>&1 || {
	tail -n 20 "$work/umoci.log"
	die "umoci repack failed"
}
rm -rf --one-file-system "$work/bundle"
cfg_args=()
for e in $EXTRA_ENV; do cfg_args+=(--config.env "$e"); done
if [ ${#cfg_args[@]} -gt 0 ]; then
	umoci config --image "$L:latest" --history.created_by "images/$NAME/build.sh: env $EXTRA_ENV" \
		"${cfg_args[@]}" >>"$work/umoci.log" 2>&1 || {
		tail -n 20 "$work/umoci.log"
		die "umoci config failed"
	}
fi
umoci gc --layout "$L" >>"$work/umoci.log" 2>&1
log "layer packed ($(($(date +%s) - t0)) s)"

# ---- 5. index.json: one manifest, named for `ctr images import` (io.containerd.image.name) and
# for skopeo's oci-archive: (org.opencontainers.image.ref.name) ----
python3 - "$L/index.json" "$IMAGE_NAME" <<'PY'
import json, sys
path, name = sys.argv[1], sys.argv[2]
idx = json.load(open(path))
mans = [m for m in idx["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "latest"]
if len(mans) != 1:
    sys.exit("index.json: expected one manifest tagged latest, found %d" % len(mans))
m = mans[0]
m.setdefault("annotations", {})
m["annotations"]["io.containerd.image.name"] = name
m["annotations"]["org.opencontainers.image.ref.name"] = "latest"
idx["manifests"] = [m]
json.dump(idx, open(path, "w"), separators=(",", ":"))
PY

tar --sort=name --owner=0 --group=0 --numeric-owner -C "$L" -cf "$out.tmp.$$" .
mv "$out.tmp.$$" "$out" # atomic: readers never see a partial tarball
layer_s=$(python3 - "$L" <<'PY'
import json, sys
L = sys.argv[1]
d = json.load(open(L + "/index.json"))["manifests"][0]["digest"].split(":")[1]
print(json.load(open(L + "/blobs/sha256/" + d))["layers"][-1]["size"])
PY
)
log "built $out in $(($(date +%s) - t0)) s: new layer $layer_s bytes gzip, $((unpacked_kb / 1024)) MiB unpacked in all"
echo "$out" >&3
