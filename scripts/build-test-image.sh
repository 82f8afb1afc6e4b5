#!/bin/bash
# build-test-image.sh - builds the tiny OCI test image without a container engine and prints the
# path of the OCI image-layout tarball.
#
# Content: busybox-static's /bin/busybox plus applet symlinks (sh, echo, cat, sleep, id, ls, ...),
# /etc/passwd and /etc/group with root, prisoner (uid/gid 10001) and nobody, empty /tmp /proc /dev
# /sys mount points. One gzip layer, built reproducibly with tar (sorted, mtime 0, uid 0) and
# described by hand-written OCI JSON (index.json, oci-layout, blobs/sha256/{layer,config,manifest}).
# Image name (annotation io.containerd.image.name, used by `ctr images import`):
#     vplcell.local/test/busybox:latest
# Cache: /var/cache/vplcell/images/<sha256 of this script + busybox-static version + arch>.tar;
# an existing tarball is reused. Installs busybox-static with apt-get if missing.
set -euo pipefail

IMAGE_NAME=vplcell.local/test/busybox:latest
CACHE=${VPLCELL_IMAGE_CACHE:-/var/cache/vplcell/images}

if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends busybox-static >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends busybox-static >/dev/null
	}
fi
bbver=$(dpkg-query -W -f='${Version}' busybox-static)
darch=$(dpkg --print-architecture)
case "$darch" in
amd64 | arm64 | s390x | ppc64el | riscv64) arch=${darch/ppc64el/ppc64le} ;;
armhf) arch=arm ;;
i386) arch=386 ;;
*) arch=$darch ;;
esac

key=$( (
	cat "$0"
	echo "$bbver $arch"
) | sha256sum | cut -c1-16)
out=$CACHE/$key.tar
if [ -s "$out" ]; then
	echo "$out"
	exit 0
fi
mkdir -p "$CACHE"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# ---- rootfs ----
r=$work/rootfs
mkdir -p "$r/bin" "$r/etc" "$r/proc" "$r/dev" "$r/sys" "$r/tmp" "$r/home/prisoner"
chmod 1777 "$r/tmp"
chown 10001:10001 "$r/home/prisoner"
cp /bin/busybox "$r/bin/busybox"
for a in sh ash echo cat sleep id ls true false grep wc dd touch head tail env ps mkdir rm \
	test [ printf yes kill uname hostname cut sed sort tr date stat; do
	ln -s busybox "$r/bin/$a"
done
cat >"$r/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
prisoner:x:10001:10001:prisoner:/home/prisoner:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$r/etc/group" <<'EOF'
root:x:0:
prisoner:x:10001:
nogroup:x:65534:
EOF
# Reproducible layer: fixed order, times and owners (except prisoner's home).
find "$r" -exec touch -h -d @0 {} +
tar --sort=name --mtime=@0 --numeric-owner --format=posix \
	--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
	-C "$r" -cf "$work/layer.tar" .
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
gzip -n -9 "$work/layer.tar"

# ---- OCI layout ----
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

printf '%s' "{\"architecture\":\"$arch\",\"os\":\"linux\",\
\"config\":{\"User\":\"10001:10001\",\"Env\":[\"PATH=/bin\"],\"Cmd\":[\"/bin/sh\"],\"WorkingDir\":\"/\"},\
\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"sha256:$diff_id\"]},\
\"history\":[{\"created_by\":\"scripts/build-test-image.sh (busybox-static $bbver)\"}]}" \
	>"$work/config.json"
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

find "$L" -exec touch -h -d @0 {} +
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$L" -cf "$work/image.tar" .
mv "$work/image.tar" "$out.tmp.$$"
mv "$out.tmp.$$" "$out"
echo "$out"
