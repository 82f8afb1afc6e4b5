#!/bin/bash
# images/minivpl/build.sh - builds vplcell's default task image "minivpl" without a container engine
# and prints the path of its OCI image-layout tarball as the last line of stdout (progress goes to
# stderr).
#
# Route (measured in docs/runtime-feasibility.md §2, same hand-written OCI packing as
# scripts/build-test-image.sh):
#   debootstrap --variant=minbase bookworm from the host's configured Debian mirror
#   -> apt-get upgrade + install --no-install-recommends $PACKAGES inside a chroot
#   -> prisoner user (uid/gid 10001), /home/prisoner (empty, 0700: a tmpfs at run time),
#      /.vplcell (mount point for the worker's helper and FIFOs)
#   -> prune docs, man pages, translations, apt lists/caches, logs, /dev; strip every setuid/setgid bit
#   -> ONE deterministically packed gzip layer (tar sorted, numeric owners, clamped mtimes, gzip -n) plus
#      hand-written OCI config/manifest/index.json/oci-layout, tarred as an OCI image layout.
# Image name (annotation io.containerd.image.name, used by `ctr images import`):
#     vplcell.local/minivpl:latest   (org.opencontainers.image.ref.name = latest)
# Cache: $CACHE/minivpl-<16 hex of sha256 over this script + the package list + the debootstrap
# version + the architecture>.tar; an existing tarball is reused. Concurrent runs serialise on a flock
# in the cache dir; the chroot, its /proc mount and every temp file are removed on every exit path.
#
# Environment: VPLCELL_IMAGE_CACHE (default /var/cache/vplcell/images), VPLCELL_DEBIAN_MIRROR and
# VPLCELL_DEBIAN_SECURITY (default: read from the host's apt sources), TMPDIR (chroot location).
# Needs root (debootstrap, chroot, mount). Installs debootstrap with apt-get if missing.
set -euo pipefail

# stdout is reserved for the final path: everything else (ours and the tools') goes to stderr.
exec 3>&1 1>&2

IMAGE_NAME=vplcell.local/minivpl:latest
SUITE=bookworm
CACHE=${VPLCELL_IMAGE_CACHE:-/var/cache/vplcell/images}

# ---------------------------------------------------------------------------------------------
# Packages of the image.
# BASE_PACKAGES: what the plugin's default scripts need (vpl-jail-protocol.md §3.2-3.4):
# bash and common_script.sh's tools (coreutils, grep, sed, gawk, findutils, procps, file, less),
# locales for the LC_ALL loop of vpl_environment.sh, and the C/C++/Python toolchains (g++ also
# compiles the default evaluator vpl_evaluate.cpp). debianutils (which), tar, gzip, passwd come
# with the minbase variant.
BASE_PACKAGES="bash coreutils grep sed gawk findutils procps file less ca-certificates locales
gcc g++ make libc6-dev python3"
# GUI_PACKAGES: what VNC runs (vpl_wexecution) need. The plugin's vpl_vnc_launcher.sh
# (vpl-jail-protocol.md §3.4, §6.6) writes the password with `vncpasswd -f` (tigervnc-tools), adds a
# cookie with xauth (a dependency of the server), starts TigerVNC's Xvnc
# (tigervnc-standalone-server), waits for the display with xmodmap and sets it up with xset, xrdb
# and xsetroot (x11-xserver-utils; without xmodmap the launcher sleeps a fixed 5 s instead), starts
# the first of icewm/fluxbox/openbox/metacity, and shows the program's output in an xterm.
# openbox is the lightest of the four on bookworm (measured with --no-install-recommends on top of
# the rest of this list: openbox 125 MB, fluxbox 128 MB, icewm 133 MB, metacity 369 MB; the first
# three all pull libimlib2 and its image codecs). xterm adds 3 MB. Most of the weight is the X
# server's own dependencies: libgl1 -> Mesa's DRI drivers -> libllvm15 (about 160 MB with libz3)
# and perl (46 MB, for TigerVNC's vncserver wrapper); they are kept because dropping files of
# installed packages would break images derived from this one (e.g. one that installs clang).
GUI_PACKAGES="tigervnc-standalone-server tigervnc-tools x11-xserver-utils openbox xterm"
PACKAGES=$(echo "$BASE_PACKAGES $GUI_PACKAGES" | tr -s ' \n' ' ' | sed 's/^ //; s/ $//')
# ---------------------------------------------------------------------------------------------

log() { echo "minivpl: $*"; }
die() {
	echo "minivpl: error: $*"
	exit 1
}

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mount)"

if ! command -v debootstrap >/dev/null; then
	log "installing debootstrap"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends debootstrap >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
	}
fi
dbsver=$(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null || debootstrap --version)
darch=$(dpkg --print-architecture)
case "$darch" in # Debian arch -> OCI (Go) arch
amd64 | arm64 | s390x | ppc64el | riscv64) arch=${darch/ppc64el/ppc64le} ;;
armhf) arch=arm ;;
i386) arch=386 ;;
*) arch=$darch ;;
esac

# ---- cache key and fast path ----
self=$(readlink -f "${BASH_SOURCE[0]}")
key=$( (
	cat "$self"
	echo "packages: $PACKAGES"
	echo "debootstrap: $dbsver"
	echo "arch: $darch"
) | sha256sum | cut -c1-16)
out=$CACHE/minivpl-$key.tar
if [ -s "$out" ]; then
	log "cached: $out"
	echo "$out" >&3
	exit 0
fi

# ---- mirrors: the host's apt configuration (deb822 .sources first, then one-line .list) ----
# Prints "URI SUITE" for every enabled deb entry.
apt_entries() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			types = ""; uris = ""; suites = ""; enabled = "yes"
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^[ \t]*#/) continue
				k = $i; sub(/:.*/, "", k); v = $i; sub(/^[^:]*:[ \t]*/, "", v)
				k = tolower(k)
				if (k == "types") types = v; else if (k == "uris") uris = v
				else if (k == "suites") suites = v; else if (k == "enabled") enabled = tolower(v)
			}
			if (enabled == "no" || (" " types " ") !~ / deb /) next
			nu = split(uris, U, /[ \t]+/); ns = split(suites, S, /[ \t]+/)
			for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++) if (U[a] != "" && S[b] != "") print U[a], S[b]
		}' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' "$f"
	done
}
entries=$(apt_entries 2>/dev/null || true)
mirror=${VPLCELL_DEBIAN_MIRROR:-$(awk -v s="$SUITE" '$2 == s { print $1; exit }' <<<"$entries")}
mirror=${mirror:-http://deb.debian.org/debian}
security=${VPLCELL_DEBIAN_SECURITY-$(awk -v s="$SUITE-security" '$2 == s { print $1; exit }' <<<"$entries")}

# ---- serialise concurrent builds: one builds, the others wait and then reuse its tarball ----
mkdir -p "$CACHE"
exec 9>"$CACHE/.minivpl.lock"
if ! flock -n 9; then
	log "another build holds $CACHE/.minivpl.lock; waiting"
	flock 9
fi
if [ -s "$out" ]; then
	log "built by a concurrent run: $out"
	echo "$out" >&3
	exit 0
fi

t0=$(date +%s)
work=$(mktemp -d "${TMPDIR:-/var/tmp}/vplcell-minivpl.XXXXXX")
root=$work/rootfs
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

# Run a command in the chroot with a clean environment. 9>&- : nothing started inside may keep
# the build lock.
inchroot() {
	chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes "$@" 9>&-
}

# ---- 1. debootstrap ----
log "debootstrap --variant=minbase $SUITE $mirror (debootstrap $dbsver, $darch)"
debootstrap --variant=minbase --arch="$darch" "$SUITE" "$root" "$mirror" 9>&- >"$work/debootstrap.log" 2>&1 || {
	tail -n 30 "$work/debootstrap.log"
	die "debootstrap failed"
}
log "debootstrap done ($(($(date +%s) - t0)) s)"

# ---- 2. apt inside the chroot ----
{
	echo "deb $mirror $SUITE main"
	echo "deb $mirror $SUITE-updates main"
	[ -z "$security" ] || echo "deb $security $SUITE-security main"
} >"$root/etc/apt/sources.list"
# Files that are never needed in a jail; the exclusion also keeps images derived later lean.
cat >"$root/etc/dpkg/dpkg.cfg.d/vplcell-minimal" <<'EOT'
# vplcell minivpl: no docs, man/info pages or translations in the image (copyright files stay)
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/linda/*
# gcc-12's LTO bytecode dumper (31 MB) is a compiler developer's tool; -flto itself keeps working
path-exclude=/usr/bin/*lto-dump*
EOT
cat >"$root/etc/apt/apt.conf.d/90vplcell" <<'EOT'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOT
# No package may start a daemon in the chroot (it would keep the chroot busy).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 0755 "$root/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# Only en_US.UTF-8 and C.UTF-8 are generated (the first entries of vpl_environment.sh's LC_ALL loop).
printf 'en_US.UTF-8 UTF-8\nC.UTF-8 UTF-8\n' >"$root/etc/locale.gen"

mount -t proc proc "$root/proc"
log "apt-get install: $PACKAGES"
# shellcheck disable=SC2086 # $PACKAGES is a word list on purpose
if ! inchroot sh -c 'apt-get update -q && apt-get -y -q upgrade && apt-get install -y -q "$@"' \
	sh $PACKAGES >"$work/apt.log" 2>&1; then
	tail -n 30 "$work/apt.log"
	die "apt-get in the chroot failed"
fi
inchroot locale-gen >>"$work/apt.log" 2>&1 || {
	tail -n 20 "$work/apt.log"
	die "locale-gen failed"
}
log "packages installed ($(($(date +%s) - t0)) s)"

# mtime of the layer: the newest Date of the archives' InRelease files. Files from packages are
# older and keep their mtime (Python's .pyc files record their .py's mtime: if it changed, every
# import would recompile, and could not cache on a read-only rootfs); files made during this build
# are clamped to it. Same mirror state -> same timestamp, independent of the build time.
epoch=0
for f in "$root"/var/lib/apt/lists/*InRelease; do
	[ -r "$f" ] || continue
	d=$(sed -n 's/^Date: //p' "$f" | head -n 1)
	s=$(date -u -d "$d" +%s 2>/dev/null || echo 0)
	if [ "$s" -gt "$epoch" ]; then epoch=$s; fi
done
[ "$epoch" -gt 0 ] || epoch=1686355200 # no InRelease Date: bookworm's release day, 2023-06-10

# ---- 3. the prisoner and the mount points ----
inchroot groupadd -g 10001 prisoner
inchroot useradd -u 10001 -g 10001 -d /home/prisoner -M -s /bin/bash -c prisoner prisoner
# /home/prisoner is a tmpfs at run time: the directory only has to exist with the right owner/mode.
mkdir -p "$root/home/prisoner"
chown 10001:10001 "$root/home/prisoner"
chmod 0700 "$root/home/prisoner"
# /.vplcell: mount point of the worker's helper and FIFOs.
mkdir -p "$root/.vplcell"
chmod 0755 "$root/.vplcell"
umount "$root/proc"

# ---- 4. prune ----
inchroot apt-get clean
rm -f "$root/usr/sbin/policy-rc.d"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
	"$root"/var/lib/dpkg/*-old "$root"/var/cache/ldconfig/aux-cache "$root"/var/lib/systemd/* \
	"$root"/tmp/* "$root"/var/tmp/* "$root"/root/.cache
find "$root/var/log" -type f -delete
# what debootstrap unpacked before the dpkg excludes existed
find "$root/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/* "$root"/usr/share/linda
# Empty man section dirs: update-alternatives fails when a slave link's directory is missing (e.g.
# openjdk's java.1.gz in a derived image); the pages themselves stay excluded.
mkdir -p "$root"/usr/share/man/man{1,2,3,4,5,6,7,8}
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
# The runtime provides /dev (tmpfs), /etc/hostname, /etc/resolv.conf: keep them out of the layer
# (no device nodes in an image; the jail has no network, so an empty resolv.conf).
find "$root/dev" -mindepth 1 -delete
: >"$root/etc/resolv.conf"
echo vplcell >"$root/etc/hostname"
rm -f "$root/etc/machine-id"
# No setuid/setgid bit anywhere (the jail also sets noNewPrivileges; this is the second wall).
# File capabilities (security.capability xattrs) are dropped too: the layer tar carries no xattrs.
find "$root" -xdev -perm /6000 -exec chmod ug-s {} +
[ -z "$(find "$root" -xdev -perm /6000 -print -quit)" ] || die "setuid/setgid files remain"
chmod 1777 "$root/tmp" "$root/var/tmp"
unpacked_kb=$(du -sk --apparent-size "$root" | cut -f1)
log "rootfs ready: $((unpacked_kb / 1024)) MiB unpacked ($(($(date +%s) - t0)) s)"

# ---- 5. one layer ----
tar --sort=name --numeric-owner --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	--mtime="@$epoch" --clamp-mtime -C "$root" -cf "$work/layer.tar" .
rm -rf --one-file-system "$root"
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n "$work/layer.tar"
log "layer packed ($(($(date +%s) - t0)) s)"

# ---- 6. OCI layout (hand-written JSON, as in scripts/build-test-image.sh) ----
L=$work/layout
mkdir -p "$L/blobs/sha256"
put_blob() { # file -> prints "digest size"
	local d s
	d=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	mv "$1" "$L/blobs/sha256/$d"
	echo "$d $s"
}
read -r layer_d layer_s < <(put_blob "$work/layer.tar.gz")
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

printf '%s' "{\"created\":\"$created\",\"architecture\":\"$arch\",\"os\":\"linux\",\
\"config\":{\"User\":\"10001:10001\",\
\"Env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"],\
\"Cmd\":[\"/bin/bash\"],\"WorkingDir\":\"/home/prisoner\"},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]},\
\"history\":[{\"created\":\"$created\",\"created_by\":\"images/minivpl/build.sh: debootstrap $dbsver \
--variant=minbase $SUITE; apt-get install $PACKAGES\"}]}" >"$work/config.json"
read -r cfg_d cfg_s < <(put_blob "$work/config.json")

printf '%s' "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"sha256:$cfg_d\",\"size\":$cfg_s},\
\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$layer_d\",\"size\":$layer_s}]}" \
	>"$work/manifest.json"
read -r man_d man_s < <(put_blob "$work/manifest.json")

printf '%s' '{"imageLayoutVersion":"1.0.0"}' >"$L/oci-layout"
printf '%s' "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
\"digest\":\"sha256:$man_d\",\"size\":$man_s,\
\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"},\
\"annotations\":{\"io.containerd.image.name\":\"$IMAGE_NAME\",\"org.opencontainers.image.ref.name\":\"latest\"}}]}" \
	>"$L/index.json"

find "$L" -exec touch -h -d "@$epoch" {} +
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner -C "$L" -cf "$out.tmp.$$" .
mv "$out.tmp.$$" "$out" # atomic: readers never see a partial tarball
log "built $out in $(($(date +%s) - t0)) s: layer $layer_s bytes gzip, $((unpacked_kb / 1024)) MiB unpacked"
echo "$out" >&3
