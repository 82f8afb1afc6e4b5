#!/bin/bash
# tests/k8s/test_manifests.sh - static checks of the shipped orchestrator files (issue 8):
#   conf/k8s      rendered with `kubectl kustomize` (offline), every document validated against the
#                 Kubernetes 1.27 schemas (npm kubernetes-models@4.5.1 + js-yaml, installed once into
#                 /var/cache/vplcell/npm/k8s-validate under a flock), plus a negative control (a
#                 broken document must be refused, so the validator is known to work), plus
#                 project rules the schemas cannot check (same-path hostPath, headless Service,
#                 probes on /OK, resources, the proxy's WORKERS naming the headless Service)
#   conf/stack.yml (+ conf/stack.ci.yml)  `docker-compose config -q` (Debian 1.29) and, when the
#                 machine image's Docker CLI >= 23 is there, `docker stack config` (no daemon needed)
# No cluster, no daemon. Ends with "N passed, N failed"; exit 1 on any failure.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
T0=$(date +%s.%N)
PASS=0
FAIL=0
ok() {
	PASS=$((PASS + 1))
	echo "ok   $*"
}
bad() {
	FAIL=$((FAIL + 1))
	echo "FAIL $*"
}
check() { # DESCRIPTION CMD...
	local d=$1
	shift
	if "$@"; then ok "$d"; else bad "$d"; fi
}
tmp=$(mktemp -d /tmp/vplcell-k8s-$$.XXXX)
trap 'rm -rf "$tmp"' EXIT

# ---- Kubernetes ---------------------------------------------------------------------------------
NPM_DIR=${VPLCELL_K8S_NPM:-/var/cache/vplcell/npm/k8s-validate}
ensure_npm() {
	[ -f "$NPM_DIR/node_modules/kubernetes-models/package.json" ] &&
		[ -f "$NPM_DIR/node_modules/js-yaml/package.json" ] && return 0
	command -v npm >/dev/null || {
		echo "npm missing (apt-get install npm)"
		return 1
	}
	mkdir -p "$NPM_DIR"
	(
		flock 9
		[ -f "$NPM_DIR/node_modules/kubernetes-models/package.json" ] && [ -f "$NPM_DIR/node_modules/js-yaml/package.json" ] && exit 0
		npm install --no-audit --no-fund --silent --prefix "$NPM_DIR" kubernetes-models@4.5.1 js-yaml@4 \
			>"$tmp/npm.log" 2>&1 || {
			cat "$tmp/npm.log"
			exit 1
		}
	) 9>"$NPM_DIR/.lock"
}
validate() { NODE_PATH=$NPM_DIR/node_modules node "$ROOT/tests/k8s/validate-k8s.js" "$@"; }

if ! command -v kubectl >/dev/null; then
	# Not a pass and not a failure: said plainly, counted as neither. (Debian's
	# kubernetes-client 1.20 has a kustomize too old for this syntax, and a current
	# kubectl is not in Debian nor npm; the machines this project is developed on have one.)
	echo "NOT RUN (not counted): conf/k8s rendering and schema checks: kubectl >= 1.27 is not installed"
elif ! kubectl kustomize "$ROOT/conf/k8s" >"$tmp/k8s.yaml" 2>"$tmp/kustomize.err"; then
	cat "$tmp/kustomize.err"
	bad "kubectl kustomize conf/k8s renders"
else
	ok "kubectl kustomize conf/k8s renders ($(grep -c '^kind:' "$tmp/k8s.yaml") objects, kubectl $(kubectl version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -n 1))"
	if ensure_npm; then
		if validate "$tmp/k8s.yaml" >"$tmp/validate.out" 2>&1; then
			ok "schema validation (kubernetes-models 4.5.1, k8s 1.27): $(tail -n 1 "$tmp/validate.out")"
		else
			cat "$tmp/validate.out"
			bad "schema validation of the rendered manifests"
		fi
		# negative control: the validator must refuse a wrong type and a missing field
		sed 's/^  replicas: 2$/  replicas: "two"/' "$tmp/k8s.yaml" >"$tmp/broken.yaml"
		check "negative control: replicas: \"two\" is refused" \
			bash -c "! NODE_PATH=$NPM_DIR/node_modules node $ROOT/tests/k8s/validate-k8s.js $tmp/broken.yaml >/dev/null 2>&1"
		check "every kind is known to the schemas (Namespace, ConfigMap, Secret, Service, PVC, Deployment, DaemonSet)" \
			bash -c "[ \$(grep -c '^ok ' $tmp/validate.out) = \$(grep -c '^kind:' $tmp/k8s.yaml) ]"
	else
		bad "npm kubernetes-models@4.5.1 + js-yaml could not be installed into $NPM_DIR"
	fi
	# project rules (python3 + yaml from js-yaml's output is not needed: PyYAML is in Debian's python3-yaml)
	if python3 -c 'import yaml' 2>/dev/null; then
		python3 - "$tmp/k8s.yaml" >"$tmp/rules.out" 2>&1 <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
def res(ok, msg):
    print(("ok   " if ok else "FAIL ") + msg)
ds = by[("DaemonSet", "vplcell-worker")]
pod = ds["spec"]["template"]["spec"]
c = pod["containers"][0]
cm = next(d for (k, n), d in by.items() if k == "ConfigMap" and n.startswith("vplcell-worker"))["data"]
vols = {v["name"]: v for v in pod["volumes"]}
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
same = [n for n, v in vols.items() if "hostPath" in v and v["hostPath"]["path"] == mounts.get(n)]
for key in ("VPL_JAIL_STATE_DIR", "VPL_JAIL_HELPER_PATH"):
    p = cm[key]
    res(any(p.startswith(vols[n]["hostPath"]["path"].rstrip("/") + "/") for n in same),
        f"{key}={p} lies in a hostPath mounted at the same path in the pod")
res(any(vols[n].get("hostPath", {}).get("type") == "Socket" and mounts[n] == cm["VPL_JAIL_CONTAINERD_SOCKET"] for n in vols if n in mounts),
    "the node's containerd socket is a hostPath mounted at CONTAINERD_SOCKET")
hs = by[("Service", "vplcell-workers")]
res(hs["spec"].get("clusterIP") == "None", "the workers' Service is headless")
pcm = next(d for (k, n), d in by.items() if k == "ConfigMap" and n.startswith("vplcell-proxy"))["data"]
res(pcm["VPL_PROXY_WORKERS"] == "vplcell-workers:8080", "the proxy's WORKERS names the headless Service")
res(pcm["VPL_PROXY_WORKER_URLPATH"] == cm["VPL_JAIL_URLPATH"], "proxy WORKER_URLPATH = worker URLPATH")
for (k, n), d in by.items():
    if k in ("Deployment", "DaemonSet"):
        for ct in d["spec"]["template"]["spec"]["containers"]:
            res(all(ct.get(p, {}).get("httpGet", {}).get("path") in ("/OK", "/v2/") for p in ("livenessProbe", "readinessProbe")),
                f"{k}/{n}: liveness and readiness probes (GET /OK, registry /v2/)")
            res("requests" in ct.get("resources", {}), f"{k}/{n}: resource requests")
            sc = ct.get("securityContext", {})
            res(sc.get("allowPrivilegeEscalation") is False and not sc.get("privileged"),
                f"{k}/{n}: not privileged, no privilege escalation")
res(pod["terminationGracePeriodSeconds"] > int(cm["VPL_JAIL_SHUTDOWN_GRACE"]), "worker grace period > SHUTDOWN_GRACE")
PY
		while read -r line; do
			case "$line" in
			"ok   "*) ok "rule: ${line#ok   }" ;;
			"FAIL "*) bad "rule: ${line#FAIL }" ;;
			*) echo "$line" ;;
			esac
		done <"$tmp/rules.out"
	else
		bad "python3-yaml missing: project rules not checked (apt-get install python3-yaml)"
	fi
fi

# ---- Swarm stack file ---------------------------------------------------------------------------
export VPLCELL_URLPATH=/0123456789abcdef # required by the stack file
if command -v docker-compose >/dev/null; then
	check "docker-compose config -q conf/stack.yml" \
		bash -c "docker-compose -f '$ROOT/conf/stack.yml' config -q 2>&1 | grep -v \"Compose does not support 'configs'\" | { ! grep .; }"
	check "docker-compose config -q conf/stack.yml + conf/stack.ci.yml" \
		bash -c "docker-compose -f '$ROOT/conf/stack.yml' -f '$ROOT/conf/stack.ci.yml' config -q 2>&1 | grep -v \"Compose does not support 'configs'\" | { ! grep .; }"
else
	bad "docker-compose missing (apt-get install --no-install-recommends docker-compose)"
fi
sc=""
for d in /usr/local/bin/docker docker; do
	if DOCKER_HOST=unix:///nonexistent "$d" stack config --help >/dev/null 2>&1; then
		sc=$d
		break
	fi
done
if [ -n "$sc" ]; then
	check "docker stack config -c conf/stack.yml -c conf/stack.ci.yml ($sc, no daemon)" \
		bash -c "DOCKER_HOST=unix:///nonexistent $sc stack config -c '$ROOT/conf/stack.yml' -c '$ROOT/conf/stack.ci.yml' >'$tmp/stack.out'"
	check "the stack: jail dnsrr, proxy mode: host, WORKERS=tasks.jail" \
		bash -c "grep -q 'endpoint_mode: dnsrr' '$tmp/stack.out' && grep -q 'mode: host' '$tmp/stack.out' && grep -q 'VPL_PROXY_WORKERS: tasks.jail:8080' '$tmp/stack.out'"
	unset VPLCELL_URLPATH
	check "the stack refuses to render without VPLCELL_URLPATH" \
		bash -c "! DOCKER_HOST=unix:///nonexistent $sc stack config -c '$ROOT/conf/stack.yml' >/dev/null 2>&1"
else
	echo "note: no Docker CLI with 'stack config' (Debian's 20.10 has none): docker-compose only"
fi
echo "manifest test: $(printf '%.1f' "$(echo "$(date +%s.%N) - $T0" | bc)")s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
