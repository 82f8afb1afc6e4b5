#!/bin/bash
# images/vplcell/build.sh [BUILD_DIR] - builds the "vplcell" service image (vpl-jail, vpl-proxy,
# vplhelper, docker-registry) without a container engine and without the network, and prints the
# path of a rootfs tarball as the last line of stdout (progress goes to stderr).
#
# The image is ONE minimal root filesystem assembled from files already on this host:
#   /usr/local/bin/vpl-jail, vpl-proxy        from BUILD_DIR (default build/)
#   /usr/libexec/vplcell/vplhelper            the static in-container helper (BUILD_DIR/vplhelper)
#   /usr/bin/docker-registry                  Debian's docker-registry (the stack's registry service)
#   /usr/bin/curl                             health checks (GET /OK); its libs are vpl-jail's anyway
#   /bin/busybox + sh, cp, mv, ...            the worker's entry script, `docker exec` debugging
#   every shared library `ldd` lists for these, at the path ldd names (merged /usr layout)
#   /etc: passwd, group, nsswitch.conf, hosts; CA bundle; empty /etc/vplcell/*.conf (all settings
#   come from the environment: VPL_JAIL_<KEY>, VPL_PROXY_<KEY>); a registry configuration
#   /usr/local/bin/vplcell-jail-entry         copies the helper to HELPER_PATH (a same-path bind
#                                             mount shared with the host's containerd), execs vpl-jail
# The tarball is a plain rootfs tar for `docker import` (see tests/swarm/test_swarm.sh for the
# --change lines), packed deterministically (sorted, numeric owners, fixed mtime).
#
# Cache: $VPLCELL_IMAGE_CACHE (default /var/cache/vplcell/images)/vplcell-<16 hex>.tar, keyed by a
# sha256 over this script and every file copied into the image (binaries and libraries). Concurrent
# runs serialise on a flock in the cache dir. A reused entry is touched (its mtime is its last use);
# after a build, older vplcell entries are pruned by scripts/prune-image-cache.sh (the newest
# VPLCELL_IMAGE_CACHE_KEEP=3 kept, none used within the hour removed; VPLCELL_IMAGE_CACHE_DAYS). Needs: ldd, busybox-static (installed with apt-get if
# missing), curl, docker-registry (apt-get if missing), ca-certificates.
set -euo pipefail
exec 3>&1 1>&2

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BUILD=${1:-$root/build}
CACHE=${VPLCELL_IMAGE_CACHE:-/var/cache/vplcell/images}
log() { echo "vplcell-image: $*"; }
die() {
	echo "vplcell-image: error: $*"
	exit 1
}

need_pkg() { # CMD PACKAGE
	command -v "$1" >/dev/null && return 0
	[ "$(id -u)" = 0 ] || die "$1 missing (apt-get install $2 as root)"
	log "installing $2"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends "$2" >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends "$2" >/dev/null
	}
}
need_pkg busybox busybox-static
need_pkg curl curl
need_pkg docker-registry docker-registry
file -L "$(command -v busybox)" | grep -q 'statically linked' || die "busybox is not static (install busybox-static)"

for f in vpl-jail vpl-proxy vplhelper; do
	[ -x "$BUILD/$f" ] || die "$BUILD/$f missing: run make first"
done
# binaries: "source destination"
BINS="$BUILD/vpl-jail /usr/local/bin/vpl-jail
$BUILD/vpl-proxy /usr/local/bin/vpl-proxy
$BUILD/vplhelper /usr/libexec/vplcell/vplhelper
$(command -v docker-registry) /usr/bin/docker-registry
$(command -v curl) /usr/bin/curl
$(command -v busybox) /bin/busybox"
CA=/etc/ssl/certs/ca-certificates.crt
[ -s "$CA" ] || die "$CA missing (apt-get install ca-certificates)"

# the shared libraries, as ldd names them (a dynamic binary only)
LIBS=$(while read -r src _; do
	{ ldd "$src" 2>/dev/null || true; } | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'
done <<<"$BINS" | sort -u)

key=$( {
	sha256sum "$0"
	while read -r src dst; do echo "$dst $(sha256sum <"$src")"; done <<<"$BINS"
	for l in $LIBS; do echo "$l $(sha256sum <"$l")"; done
	sha256sum <"$CA"
} | sha256sum | cut -c1-16)
mkdir -p "$CACHE"
out=$CACHE/vplcell-$key.tar
exec 9>"$CACHE/.vplcell-image.lock"
flock 9
if [ -s "$out" ]; then
	touch "$out" # last use, for scripts/prune-image-cache.sh
	log "cached: $out"
	echo "$out" >&3
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vplcell-image.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
R=$tmp/rootfs
mkdir -p "$R"/usr/{bin,sbin,lib,lib64} "$R"/{etc,tmp,run,proc,sys,dev,root,var/lib/registry}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
chmod 1777 "$R/tmp"
chmod 0700 "$R/root"
while read -r src dst; do
	install -D -m 0755 "$src" "$R$dst"
done <<<"$BINS"
for l in $LIBS; do
	mkdir -p "$R$(dirname "$l")"
	cp -L "$l" "$R$l"
done
for a in sh cp mv mkdir rm cat ls ln sleep ps kill id env test grep sed head tail wc dirname \
	basename hostname nslookup wget true false; do
	ln -s busybox "$R/bin/$a"
done
install -D -m 0644 "$CA" "$R$CA"
cat >"$R/etc/passwd" <<'P'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
P
cat >"$R/etc/group" <<'P'
root:x:0:
nogroup:x:65534:
P
echo 'hosts: files dns' >"$R/etc/nsswitch.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$R/etc/hosts"
mkdir -p "$R/etc/vplcell"
for f in vpl-jail.conf vpl-proxy.conf; do
	printf '# empty on purpose: every setting comes from the environment (VPL_JAIL_<KEY> / VPL_PROXY_<KEY>)\n' >"$R/etc/vplcell/$f"
	chmod 0600 "$R/etc/vplcell/$f"
done
mkdir -p "$R/etc/docker/registry"
cat >"$R/etc/docker/registry/config.yml" <<'P'
# the stack's registry service (conf/stack.yml); env REGISTRY_* overrides any key
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: /var/lib/registry
  delete:
    enabled: true
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
P
# the stack's registry service (conf/stack.yml): the site registry's storage (scripts/registry.sh,
# where deploy.sh pushes), bind-mounted read-only, served without auth on the private overlay
sed -e 's/^  delete:$/  maintenance:\n    uploadpurging:\n      enabled: false\n    readonly:\n      enabled: true\n  delete:/' \
	"$R/etc/docker/registry/config.yml" >"$R/etc/docker/registry/readonly.yml"
grep -q '^      enabled: true' "$R/etc/docker/registry/readonly.yml" || die "readonly.yml: sed failed"
cat >"$R/usr/local/bin/vplcell-jail-entry" <<'P'
#!/bin/sh
# Entry of the jail service: containerd (on the host) bind-mounts HELPER_PATH into every task, so the
# helper must exist at that path on the HOST: HELPER_PATH lies in a directory bind-mounted at the
# same path on host and in this container. Copy the image's helper there (atomically: replicas on one
# node share the directory), then become vpl-jail.
set -e
h=${VPL_JAIL_HELPER_PATH:?VPL_JAIL_HELPER_PATH must name a path in a same-path bind mount}
mkdir -p "$(dirname "$h")"
cp /usr/libexec/vplcell/vplhelper "$h.tmp.$$"
chmod 0755 "$h.tmp.$$"
mv -f "$h.tmp.$$" "$h"
exec /usr/local/bin/vpl-jail -f /etc/vplcell/vpl-jail.conf "$@"
P
chmod 0755 "$R/usr/local/bin/vplcell-jail-entry"

tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@0 -C "$R" -cf "$out.tmp" .
mv "$out.tmp" "$out"
log "built $out ($(du -h "$out" | cut -f1), $(wc -w <<<"$LIBS") libraries)"
# older builds of this image (each binary change adds one): under our lock (fd 9)
VPLCELL_IMAGE_CACHE=$CACHE VPLCELL_PRUNE_LOCK_HELD=$CACHE/.vplcell-image.lock \
	"$root/scripts/prune-image-cache.sh" vplcell || true
echo "$out" >&3
