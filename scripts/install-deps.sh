#!/bin/sh
# Installs every build and test dependency from Debian's packages.
# Idempotent, and quiet when everything is already present.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev clang-format
libwebsockets-dev libjansson-dev libxml2-dev libssl-dev libcmocka-dev
openssl curl python3 iproute2 procps
protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev libgrpc-dev
containerd runc busybox-static
libcurl4-openssl-dev libarchive-dev docker-registry apache2-utils skopeo umoci
chromium"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
# Node and npm for the WebSocket client tests (`ws` from the npm registry) and
# the browser test (puppeteer-core driving the chromium above, xterm.js, noVNC):
# any node >= 18 will do, Debian's or another repository's.
command -v node >/dev/null && command -v npm >/dev/null || missing="$missing nodejs npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "install-deps: missing packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "install-deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
