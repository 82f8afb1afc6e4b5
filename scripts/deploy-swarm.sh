# shellcheck shell=bash
# shellcheck disable=SC2154 # PREFIX, tmp, here, REG... are deploy.sh's: this file is sourced by it
# scripts/deploy-swarm.sh - the Docker Swarm part of scripts/deploy.sh, sourced by it (not a
# command of its own):
#
#     scripts/deploy.sh --swarm        # a one-node swarm on this host
#     scripts/deploy.sh HOST...        # this host the manager, every HOST a worker node
#
# deploy.sh does its steps 1-8 as for one host (settings from .env, build, secrets files,
# certificate, this host's private containerd, the registry, minivpl pushed to it), except that
# the registry listens on SWARM_ADDR when other hosts must reach it. Then, instead of starting
# workers and a proxy itself:
#
#   swarm_prepare (before the build)  the Docker engine answers (DOCKER_HOST is honoured); this
#       host is a swarm manager: `docker swarm init --advertise-addr A --listen-addr A:2377
#       --data-path-addr A` when it is in no swarm (A = SWARM_ADDR, 127.0.0.1 with --swarm alone,
#       with HOSTs the source address of the route to the first one); refuses a worker, a swarm
#       advertised on loopback when HOSTs are given, and the single-host service of the prefix
#       running (same port, same containerd namespace)
#   swarm_deploy (after the registry holds minivpl)
#     - images/vplcell/build.sh (the jail, proxy and registry services' image), imported into the
#       manager's dockerd and pushed to the registry as REGISTRY/vplcell:<hash> unless the
#       registry holds it; `docker login` to the registry in PREFIX/docker (DOCKER_CONFIG, not
#       root's ~/.docker), and `docker stack deploy --with-registry-auth`: every node pulls the
#       image from the registry. A registry off loopback must be an insecure registry of every
#       node's dockerd (checked; docs/deploying.md)
#     - docker secrets vplcell_worker_secret, vplcell_route_secret (from PREFIX/secrets, created
#       once and kept), vplcell_tls_key_<hash> and config vplcell_tls_cert_<hash> (a new
#       certificate gets new names and the proxies roll onto it); old TLS ones are removed once
#       no service uses them
#     - the label vplcell.registry=true on this node: the stack's registry service runs here and
#       serves PREFIX/registry/data read-only to the workers (task images: minivpl)
#     - each HOST, through `$VPLCELL_REMOTE HOST 'COMMAND LINE'` (default `ssh -o BatchMode=yes`):
#       docker answers there; `docker swarm join` with the worker token unless it is in this swarm
#       already (a node of another swarm is refused); the insecure-registry check; then a shell
#       script on its stdin makes VPLCELL_DIR and starts a private containerd at the same socket
#       path as here (PREFIX/containerd, apt-get install containerd runc if missing) unless one
#       answers there
#     - `docker stack deploy -c conf/stack.yml [-c VPLCELL_STACK_FILES...] VPLCELL_STACK` with the
#       stack's variables from .env, in a clean environment; waits (at most 300 s) until every
#       service is N/N (it stops early, with the tasks' errors and the services' last log lines,
#       once 8 tasks failed or were rejected), then for `available` = ready through this host's
#       proxy and one test task, and prints the URL
# It records the stack in PREFIX/run/swarm.{stack,docker-host,nodes,remote} for
# scripts/stopservices.sh (`docker stack rm`; --leave-swarm also leaves the swarm).

STACK=${VPLCELL_STACK:-vplcell}
REMOTE=${VPLCELL_REMOTE:-ssh -o BatchMode=yes}
export DOCKER_CONFIG=$PREFIX/docker
[[ $STACK =~ ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$ ]] || die "VPLCELL_STACK=$STACK: not a stack name"

# remote HOST LINE: LINE run by a shell on HOST (stdin passed on; never our lock)
remote() {
	# shellcheck disable=SC2086 # REMOTE is a command and its arguments
	$REMOTE "$1" "$2" 8>&-
}
is_loopback() { [[ $1 == 127.* ]]; }

# registry_insecure ADDR:PORT JSON: the dockerd whose RegistryConfig is JSON speaks plain HTTP to
# ADDR:PORT (127/8 always; otherwise insecure-registries must name it or a CIDR holding it)
registry_insecure() {
	python3 - "$1" "$2" <<'EOF'
import ipaddress, json, sys
reg, cfg = sys.argv[1], json.loads(sys.argv[2] or "{}")
ip = ipaddress.ip_address(reg.rsplit(":", 1)[0])
if ip.is_loopback:
    sys.exit(0)
idx = (cfg.get("IndexConfigs") or {}).get(reg)
if idx is not None and not idx.get("Secure", True):
    sys.exit(0)
for c in cfg.get("InsecureRegistryCIDRs") or []:
    if ip in ipaddress.ip_network(c, strict=False):
        sys.exit(0)
sys.exit(1)
EOF
}
insecure_hint() { # WHERE
	die "$1: its dockerd would pull $REG over HTTPS; add \"insecure-registries\": [\"$REG\"] to its" \
		"/etc/docker/daemon.json and restart dockerd (or give the registry TLS: docs/deploying.md)"
}

swarm_prepare() {
	local state="" ctl="" naddr="" a h ip
	if ! command -v docker >/dev/null; then die "docker is missing (apt-get install docker.io)"; fi
	docker version >/dev/null 2>&1 ||
		die "no Docker engine answers at ${DOCKER_HOST:-unix:///var/run/docker.sock} (start dockerd, or set DOCKER_HOST)"
	if pid_alive "$PREFIX/run/proxy.pid" "/vpl-proxy -f $PREFIX/proxy.conf " >/dev/null; then
		die "the single-host service of $PREFIX runs (its proxy holds the port): scripts/stopservices.sh first"
	fi
	read -r state ctl naddr < <(docker info --format \
		'{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{.Swarm.NodeAddr}}' 2>/dev/null) || true
	a=$(get SWARM_ADDR)
	if [ -z "$a" ] && [ ${#HOSTS[@]} -gt 0 ] && [ "$state" != active ]; then
		h=${HOSTS[0]##*@}
		ip=$(getent ahostsv4 "$h" | awk 'NR == 1 { print $1 }')
		[ -n "$ip" ] || die "cannot resolve $h: set SWARM_ADDR in .env (this host's address the nodes reach)"
		a=$(ip -4 route get "$ip" 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
		[ -n "$a" ] || die "no route to $h ($ip): set SWARM_ADDR in .env"
	fi
	if [ -n "$a" ] && ! [[ $a =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then die "SWARM_ADDR=$a: an IPv4 address"; fi
	case "$state" in
	inactive)
		a=${a:-127.0.0.1}
		if ! docker swarm init --advertise-addr "$a" --listen-addr "$a:2377" --data-path-addr "$a" \
			>"$tmp/swarm-init.out" 2>&1; then
			cat "$tmp/swarm-init.out" >&2
			die "docker swarm init failed"
		fi
		say "swarm: initialised, this host is the manager ($a)"
		;;
	active)
		[ "$ctl" = true ] || die "this host is a worker of a swarm: run deploy.sh on a manager"
		if [ -n "$a" ] && [ "$a" != "$naddr" ]; then
			die "this host's swarm advertises $naddr, SWARM_ADDR is $a"
		fi
		a=$naddr
		say "swarm: this host is a manager ($a)"
		;;
	*) die "the swarm state of this host is '${state:-unknown}' (docker info): fix it first" ;;
	esac
	if [ ${#HOSTS[@]} -gt 0 ] && is_loopback "$a"; then
		die "the swarm advertises $a, which other hosts cannot reach: set SWARM_ADDR, leave it" \
			"(docker swarm leave --force; it removes the swarm's services) and run again"
	fi
	SWARM_ADDR=$a
	if is_loopback "$a"; then REG_HOST=127.0.0.1; else REG_HOST=$a; fi
	# the proxies publish PROXY_PORT on every node (mode: host): on this one, it must be free
	# unless our stack holds it
	if [ ! -s "$PREFIX/run/swarm.stack" ] && port_busy "$PROXY_PORT"; then
		ip=$(port_pid "$PROXY_PORT")
		die "port $PROXY_PORT (PROXY_PORT) is in use${ip:+ by pid $ip ($(cmdline_of "$ip" | cut -c1-80))}"
	fi
}

# the script a HOST runs (sh -s): the same-path directory and a containerd at our socket path
node_script() {
	cat <<EOF
set -e
mkdir -p '$VPLDIR' '$PREFIX/log' '$PREFIX/run' '$CTD/root' '$CTD/state' '$CTD/opt'
chmod 0700 '$PREFIX'
if ctr -a '$SOCK' version >/dev/null 2>&1; then echo "containerd: running"; exit 0; fi
if ! command -v containerd >/dev/null || ! command -v runc >/dev/null; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq --no-install-recommends containerd runc >/dev/null 2>&1 || {
		apt-get update -qq >/dev/null 2>&1
		apt-get install -y -qq --no-install-recommends containerd runc >/dev/null
	}
fi
cat >'$CTD/containerd.toml' <<'EOT'
$(cat "$CTD/containerd.toml")
EOT
echo '$NS' >'$CTD/namespace'
rm -f '$SOCK' '$SOCK.ttrpc'
(umask 022; exec setsid containerd --config '$CTD/containerd.toml' </dev/null >>'$PREFIX/log/containerd.log' 2>&1) &
echo \$! >'$PREFIX/run/containerd.pid'
i=0
until ctr -a '$SOCK' version >/dev/null 2>&1; do
	i=\$((i + 1))
	[ \$i -lt 100 ] || { echo "containerd did not start ($PREFIX/log/containerd.log)"; exit 1; }
	sleep 0.1
done
echo "containerd: started"
EOF
}

swarm_deploy() {
	local vtar vkey vimage csum self token h line st cl rc out envs files f k v t next crashed t_dep
	VPLDIR=$PREFIX/swarm # VPLCELL_DIR: bind-mounted at the same path into the workers
	mkdir -p "$DOCKER_CONFIG" "$VPLDIR"
	chmod 0700 "$DOCKER_CONFIG"
	if ! is_loopback "$REG_HOST"; then
		registry_insecure "$REG" "$(docker info --format '{{json .RegistryConfig}}')" || insecure_hint "this host"
	fi

	# ---- the services' image, through the registry ----
	run_progress "image: images/vplcell/build.sh" "$PREFIX/log/vplcell-image.log" \
		env VPLCELL_IMAGE_CACHE="$IMAGE_CACHE" "$here/images/vplcell/build.sh" "$BUILD_DIR" || {
		tail -n 20 "$PREFIX/log/vplcell-image.log" >&2
		die "building the vplcell image failed (log $PREFIX/log/vplcell-image.log)"
	}
	vtar=$(grep -E '^/.*\.tar$' "$PREFIX/log/vplcell-image.log" | tail -n 1 || true)
	[ -s "$vtar" ] || die "images/vplcell/build.sh gave no tarball (log $PREFIX/log/vplcell-image.log)"
	vkey=${vtar##*/vplcell-}
	vkey=${vkey%.tar}
	vimage=$REG/vplcell:$vkey
	if ! docker login -u "$REG_USER" --password-stdin "$REG" <"$REG_PW_FILE" >"$tmp/login.out" 2>&1; then
		cat "$tmp/login.out" >&2
		die "docker login $REG failed"
	fi
	if [ -n "$(registry_digest vplcell "$vkey")" ]; then
		say "image: $vimage in the registry"
	else
		if ! docker image inspect "$vimage" >/dev/null 2>&1; then
			docker import --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' --change 'WORKDIR /' \
				--change 'CMD ["/bin/sh"]' "$vtar" "$vimage" >"$tmp/import.out" 2>&1 || {
				cat "$tmp/import.out" >&2
				die "docker import $vtar failed"
			}
		fi
		run_progress "image: pushing $vimage" "$PREFIX/log/vplcell-push.log" docker push "$vimage" || {
			tail -n 20 "$PREFIX/log/vplcell-push.log" >&2
			die "docker push $vimage failed (log $PREFIX/log/vplcell-push.log)"
		}
		say "image: pushed $vimage"
	fi

	# ---- docker secrets: made once, kept ----
	made=""
	swarm_secret() { # secret|config NAME FILE
		docker "$1" inspect "$2" >/dev/null 2>&1 && return 0
		docker "$1" create --label "org.vplcell.prefix=$PREFIX" "$2" "$3" >"$tmp/secret.out" 2>&1 || {
			cat "$tmp/secret.out" >&2
			die "docker $1 create $2 failed"
		}
		made="$made $2"
	}
	csum=$(sum_of "$CERT" "$KEY" | cut -c1-12)
	swarm_secret secret vplcell_worker_secret "$WORKER_SECRET"
	swarm_secret secret vplcell_route_secret "$ROUTE_SECRET"
	swarm_secret secret "vplcell_tls_key_$csum" "$KEY"
	swarm_secret config "vplcell_tls_cert_$csum" "$CERT"
	if [ -n "$made" ]; then say "secrets: created$made"; else say "secrets: in the swarm"; fi

	# ---- this node holds the registry storage ----
	self=$(docker info --format '{{.Swarm.NodeID}}')
	if [ "$(docker node inspect -f '{{index .Spec.Labels "vplcell.registry"}}' "$self" 2>/dev/null)" != true ]; then
		docker node update --label-add vplcell.registry=true "$self" >/dev/null
	fi

	# ---- the other hosts ----
	token=$(docker swarm join-token -q worker)
	touch "$PREFIX/run/swarm.nodes"
	for h in "${HOSTS[@]}"; do
		line=$(remote "$h" "docker info --format '{{.Swarm.LocalNodeState}} {{if .Swarm.NodeID}}{{.Swarm.NodeID}}{{else}}-{{end}} {{json .RegistryConfig}}'" \
			</dev/null 2>"$tmp/remote.err") || {
			cat "$tmp/remote.err" >&2
			die "node $h: docker does not answer through '$REMOTE $h ...' (VPLCELL_REMOTE)"
		}
		read -r st cl rc <<<"$line"
		if ! is_loopback "$REG_HOST"; then registry_insecure "$REG" "$rc" || insecure_hint "node $h"; fi
		case "$st" in
		active)
			# a worker knows no cluster ID: it is ours when this manager knows its node ID
			docker node inspect "$cl" >/dev/null 2>&1 ||
				die "node $h is in another swarm (node $cl unknown here): docker swarm leave there first"
			say "node $h: in the swarm"
			;;
		inactive)
			remote "$h" "a=\$(ip -4 route get $SWARM_ADDR | sed -n 's/.* src \\([0-9.]*\\).*/\\1/p') &&
				docker swarm join --token $token --advertise-addr \$a --data-path-addr \$a $SWARM_ADDR:2377" \
				</dev/null >"$tmp/join.out" 2>&1 || {
				cat "$tmp/join.out" >&2
				die "node $h: docker swarm join failed"
			}
			say "node $h: joined the swarm"
			;;
		*) die "node $h: swarm state '${st:-unknown}'" ;;
		esac
		grep -qxF "$h" "$PREFIX/run/swarm.nodes" || echo "$h" >>"$PREFIX/run/swarm.nodes"
		out=$(node_script | remote "$h" "sh -s" 2>&1) || {
			echo "$out" >&2
			die "node $h: setting up $VPLDIR and containerd ($SOCK) failed"
		}
		say "node $h: ${out##*$'\n'} ($SOCK)"
	done
	echo "$REMOTE" >"$PREFIX/run/swarm.remote"

	# ---- the stack ----
	envs=(PATH="$SAFE_PATH" HOME=/root DOCKER_CONFIG="$DOCKER_CONFIG"
		VPLCELL_IMAGE="$vimage" VPLCELL_URLPATH="/$URLPATH" VPLCELL_WORKER_URLPATH="/$WORKER_URLPATH"
		NB_REPLICAS="$NB" VPLCELL_PROXY_PORT="$PROXY_PORT" VPLCELL_DIR="$VPLDIR"
		VPLCELL_CONTAINERD_SOCKET="$SOCK" VPLCELL_CONTAINERD_NAMESPACE="$NS"
		VPLCELL_REGISTRY_DATA="$REGDIR/data" VPLCELL_DEFAULT_IMAGE=minivpl
		VPLCELL_TLS_KEY_SECRET="vplcell_tls_key_$csum" VPLCELL_TLS_CERT_CONFIG="vplcell_tls_cert_$csum"
		MAXBODYSIZE="$BODY")
	[ -z "${DOCKER_HOST:-}" ] || envs+=(DOCKER_HOST="$DOCKER_HOST")
	v=$(get SWARM_SUBNET)
	[ -z "$v" ] || envs+=(VPLCELL_SUBNET="$v")
	for k in MAXTIME MAXFILESIZE MAXMEMORY MAXPROCESSES MAX_TASKS POOL_SIZE SHUTDOWN_GRACE LOGLEVEL \
		TASK_ONLY_FROM FAIL2BAN; do
		v=$(get $k)
		[ -z "$v" ] || envs+=("$k=$v")
	done
	v=$(get SHUTDOWN_GRACE)
	[ -z "$v" ] || envs+=(VPLCELL_STOP_GRACE="$((v + 15))s")
	for k in HTTP_PORT CERTBOT_WEBROOT_PATH METRICS_PORT WORKER_BASE_PORT PUBLIC_SECURE_PORT TRUSTED_PROXIES; do
		[ -z "$(get $k)" ] || warn "$k has no meaning in swarm mode: ignored"
	done
	files=(-c "$here/conf/stack.yml")
	for f in ${VPLCELL_STACK_FILES:-}; do files+=(-c "$f"); done
	t_dep=$(date +%s)
	if ! env -i "${envs[@]}" docker stack deploy --with-registry-auth "${files[@]}" "$STACK" \
		>"$PREFIX/log/stack-deploy.log" 2>&1; then
		cat "$PREFIX/log/stack-deploy.log" >&2
		die "docker stack deploy failed"
	fi
	echo "$STACK" >"$PREFIX/run/swarm.stack"
	printf '%s\n' "${DOCKER_HOST:-}" >"$PREFIX/run/swarm.docker-host"
	say "stack: $STACK deployed ($NB jail replica(s), image $vimage)"

	# ---- converged, ready, a test task ----
	failed_since() { # EPOCH: tasks of the stack that failed or were rejected since then
		local ids
		ids=$(docker stack ps -q --filter desired-state=shutdown "$STACK" 2>/dev/null | head -n 200)
		[ -n "$ids" ] || {
			echo 0
			return
		}
		# shellcheck disable=SC2086
		docker inspect --format '{{.Status.State}} {{.Status.Timestamp.Unix}}' $ids 2>/dev/null |
			awk -v t="$1" '($1 == "failed" || $1 == "rejected") && $2 >= t { n++ } END { print n + 0 }' ||
			true # a task removed meanwhile: docker inspect fails for it, awk still counts the others
	}
	converged() { # every service of the stack at N/N, N > 0
		docker stack services "$STACK" --format '{{.Replicas}}' 2>/dev/null |
			awk -F'[/ ]' '{ n++; if ($1 != $2 || $2 == 0) bad = 1 } END { exit !(n >= 3 && !bad) }'
	}
	t0=$(date +%s)
	next=15
	until converged; do
		t=$(($(date +%s) - t0))
		# a task that fails again and again (the image cannot be pulled, the worker exits): say so
		# now rather than after 300 s
		crashed=$(failed_since "$t_dep")
		if [ "$crashed" -ge 8 ]; then
			docker stack ps --no-trunc --format '{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}' "$STACK" |
				grep -v ' \(Running\|Ready\|Starting\|Preparing\|Assigned\) ' | head -n 6 >&2 || true
			for k in jail proxy registry; do
				docker service logs --tail 30 --no-trunc "${STACK}_$k" 2>&1 |
					grep -v 'GET /v2/ \|uri=/v2/ ' | tail -n 4 >&2 || true
			done
			die "stack tasks failed $crashed times in $t s (above: their errors and the services' last log lines)"
		fi
		if [ "$t" -ge 300 ]; then
			docker stack ps --no-trunc --format '{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}' "$STACK" >&2 || true
			die "the stack did not converge in $t s (docker stack ps $STACK; docker service logs ${STACK}_jail)"
		fi
		if [ "$t" -ge "$next" ]; then
			say "stack: waiting for the services ($t s: $(docker stack services "$STACK" \
				--format '{{.Name}} {{.Replicas}}' 2>/dev/null | sed "s/^${STACK}_//" | tr '\n' ' '))"
			next=$((next + 15))
		fi
		sleep 0.5
	done
	say "stack: every service running ($(($(date +%s) - t0)) s)"
	t0=$(date +%s)
	next=15
	until [ "$(available_status)" = ready ]; do
		t=$(($(date +%s) - t0))
		[ "$t" -lt 180 ] || die "no ready worker through the proxy after $t s (docker service logs ${STACK}_proxy / ${STACK}_jail)"
		if [ "$t" -ge "$next" ]; then
			say "waiting for a ready worker through the proxy ($t s)"
			next=$((next + 15))
		fi
		sleep 0.5
	done
	if ! smoke >"$tmp/smoke.out" 2>&1; then
		cat "$tmp/smoke.out" >&2
		die "a test task through the proxy failed (see above; docker service logs ${STACK}_jail)"
	fi
	say "ready: a test task ran through the proxy on port $PROXY_PORT ($NB jail replica(s), $((${#HOSTS[@]} + 1)) node(s))"

	# TLS secrets and images of earlier runs that nothing uses any more (in use: refused, kept)
	for k in $(docker secret ls --format '{{.Name}}' | grep '^vplcell_tls_key_' | grep -v "_$csum\$" || true); do
		docker secret rm "$k" >/dev/null 2>&1 || true
	done
	for k in $(docker config ls --format '{{.Name}}' | grep '^vplcell_tls_cert_' | grep -v "_$csum\$" || true); do
		docker config rm "$k" >/dev/null 2>&1 || true
	done
	for k in $(docker images "$REG/vplcell" --format '{{.Repository}}:{{.Tag}}' | grep -vxF "$vimage" || true); do
		docker rmi "$k" >/dev/null 2>&1 || true
	done
	print_url
	echo "(swarm: the same URL answers on every node's name or address, port $PROXY_PORT)"
}
