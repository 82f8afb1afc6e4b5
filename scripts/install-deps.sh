#!/bin/sh
# Installs every build and test dependency from Debian's packages.
# Idempotent, and quiet when everything is already present.
#
# No service starts while it installs: during its apt-get, a /usr/sbin/policy-rc.d that exits
# 101 ("action forbidden") is in place when there was none (it is removed afterwards; one that
# was already there, as in Docker images, is left as it is). nginx (Debian 12's `nginx`: the
# http, ssl, proxy, map and upstream modules conf/nginx-moodle.conf uses) is here only for
# tests/e2e/test_deploy.sh, which runs its own instance in front of a deploy; when installed
# here, it is neither started nor enabled at boot (it would take port 80), and the packages'
# other daemons (containerd, docker-registry) are not started either: deploy.sh runs its own.
# docker.io and docker-compose are for tests/swarm (its own dockerd, swarm and stack) and the
# stack file's validation; the system Docker daemon is never started by us.
set -eu

PKGS="build-essential pkg-config clang libclang-rt-14-dev clang-format
libwebsockets-dev libjansson-dev libxml2-dev libssl-dev libcmocka-dev
openssl curl python3 iproute2 procps
protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev libgrpc-dev
containerd runc busybox-static
libcurl4-openssl-dev libarchive-dev docker-registry apache2-utils skopeo umoci
chromium nginx docker.io docker-compose"

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
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ] && [ ! -L "$policy" ]; then
	trap 'rm -f "$policy"' EXIT
	trap 'exit 130' INT TERM HUP # so that the EXIT trap runs
	printf '#!/bin/sh\n# scripts/install-deps.sh: no service starts during its apt-get\nexit 101\n' \
		>"$policy"
	chmod 0755 "$policy"
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
for svc in nginx docker; do
	case " $missing " in
	*" $svc "* | *" $svc.io "*)
		# installed now, for the tests only: not at boot either
		if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
			systemctl disable -q "$svc" >/dev/null 2>&1 || true
		fi
		update-rc.d "$svc" disable >/dev/null 2>&1 || true
		;;
	esac
done
