#!/bin/bash
# push-image.sh TARBALL REF [--creds-file F] [--plain-http]
# Pushes an OCI image-layout tarball (images/*/build.sh) to a registry with
#     skopeo copy oci-archive:TARBALL docker://REF
# and prints the pushed manifest digest (sha256:...) as the last line of stdout.
#
#   REF            e.g. 127.0.0.1:5000/minivpl:latest
#   --creds-file   a file whose first line is USER:PASSWORD (/etc/vplcell/registry.creds). It is
#                  handed to skopeo in a temporary auth file (mode 0600), never on a command line.
#   --plain-http   the registry speaks plain HTTP (the loopback or private-network registry of
#                  scripts/registry.sh): --dest-tls-verify=false.
# Idempotent: blobs the registry already has are not sent again, and pushing the same tarball
# twice gives the same digest. Installs skopeo with apt-get if missing (as root).
set -euo pipefail

usage() {
	echo "usage: $0 TARBALL REF [--creds-file F] [--plain-http]" >&2
	exit 2
}
tarball=${1:-}
ref=${2:-}
if [ -z "$tarball" ] || [ -z "$ref" ]; then usage; fi
shift 2
creds='' tls=()
while [ $# -gt 0 ]; do
	case "$1" in
	--creds-file) creds=${2:?}; shift 2 ;;
	--plain-http) tls=(--dest-tls-verify=false); shift ;;
	*) usage ;;
	esac
done
die() {
	echo "push-image: error: $*" >&2
	exit 1
}
[ -s "$tarball" ] || die "no such tarball: $tarball"
case "$ref" in */*) ;; *) die "REF must be HOST[:PORT]/NAME[:TAG], got $ref" ;; esac

if ! command -v skopeo >/dev/null; then
	[ "$(id -u)" = 0 ] || die "skopeo missing (run as root to install it)"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends skopeo >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends skopeo >/dev/null
	}
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vplcell-push.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
auth=()
if [ -n "$creds" ]; then
	[ -r "$creds" ] || die "cannot read $creds"
	line=$(head -n 1 "$creds")
	case "$line" in *:*) ;; *) die "$creds: the first line must be USER:PASSWORD" ;; esac
	host=${ref%%/*}
	(umask 077 && printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$host" \
		"$(printf '%s' "$line" | base64 -w0)" >"$tmp/auth.json")
	unset line
	auth=(--dest-authfile "$tmp/auth.json")
else
	# no credentials: do not let skopeo pick up someone's ~/.docker/config.json or auth.json
	printf '{"auths":{}}\n' >"$tmp/auth.json"
	auth=(--dest-authfile "$tmp/auth.json")
fi

# skopeo unpacks the oci-archive under TMPDIR: keep that in our temp dir (removed on exit)
TMPDIR=$tmp skopeo copy --quiet --retry-times 2 "${auth[@]}" "${tls[@]}" \
	--digestfile "$tmp/digest" "oci-archive:$tarball" "docker://$ref" >&2 ||
	die "skopeo copy to $ref failed"
digest=$(cat "$tmp/digest")
echo "push-image: $ref -> $digest" >&2
echo "$digest"
