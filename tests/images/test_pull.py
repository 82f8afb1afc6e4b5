#!/usr/bin/env python3
"""End-to-end image pulls through the real worker: a private containerd, a local registry with
basic auth (REGISTRY_AUTH_FILE) and a plain upstream registry (docker-registry, see
registry_fixture.py), the minivpl / minivpl-java images and busybox variants built by
oci_variants.py. Each request may carry vplbdx.cfg (DOCKER=, FORCEPULL, USER=); the worker takes
it out of the files, pulls what containerd lacks (local registry, else upstream and copies it into
the local one), and ends every failure with a clear `vpl-jail:` line while it keeps serving.

    VPL_BUILD=build-h5 python3 tests/images/test_pull.py

No timing assertions (the suite also runs against the ASan build): only generous deadlines.
"""
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import base64
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, HERE)
from harness import Jail, Suite, containerd_start, http  # noqa: E402
from registry_fixture import Registry  # noqa: E402
from oci_variants import Variants  # noqa: E402

S = Suite("pull")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
USER, PASS = "vpl", "s3cret-pw"
PULL_TIMEOUT = 600  # a task that pulls (ASan build, 120 MB minivpl): generous, never asserted

ENV = {}
J = None    # the main worker
J2 = None   # the small worker (MAX_IMAGE_SIZE=1M, ALLOWED_IMAGES)
L = None    # local registry (basic auth)
U = None    # upstream registry (plain)
V = None    # busybox variants
INFO = {}   # variant name -> info of oci_variants
STATE2 = None
TMP = tempfile.mkdtemp(prefix="vplcell-pulltest-")
# Worker ids unique to this run: container ids and cgroups (/vplcell/vplcell-<id>-N) are not
# namespaced, and other suites (tests/sandbox/test_tasks.py: w1) may run on the same host.
W1 = "pa%d" % (os.getpid() % 100000)
W2 = "pb%d" % (os.getpid() % 100000)


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw)


def ctr(*args):
    return subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"]] + list(args),
                          capture_output=True, text=True).stdout


def start_containerd():
    ENV.update(containerd_start(CTD_DIR))


def push(src, reg, name, creds=None, all_=False):
    """skopeo copy SRC (oci-archive:/oci:) to reg/name."""
    cmd = ["skopeo", "copy", "--quiet", "--retry-times", "2", "--dest-tls-verify=false"]
    if all_:
        cmd.append("--all")
    if creds:
        cmd += ["--dest-creds", creds]
    else:
        cmd += ["--dest-no-creds"]
    cmd += [src, "docker://%s/%s" % (reg.host, name)]
    env = dict(os.environ, TMPDIR=TMP)
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert p.returncode == 0, (cmd, p.stderr[-2000:])


# ---------------------------------------------------------------- registry helpers

ACCESS = re.compile(r'"(GET|HEAD|PUT|POST|PATCH) (\S+) HTTP/1\.\d" (\d+) \S+ "[^"]*" "([^"]*)"')


def access(reg, method=None, path_re=None, status=None, ours=True):
    """Access-log entries of reg [(method, path, status, user agent)] made by the worker's
    registry client (ours) or anyone."""
    out = []
    for m in ACCESS.finditer(reg.log_text()):
        meth, path, st, ua = m.group(1), m.group(2), int(m.group(3)), m.group(4)
        if ours and "vplcell" not in ua:
            continue
        if method and meth != method:
            continue
        if status and st != status:
            continue
        if path_re and not re.search(path_re, path):
            continue
        out.append((meth, path, st, ua))
    return out


def blob_gets(reg, repo, digest):
    return len(access(reg, "GET", r"^/v2/%s/blobs/%s$" % (re.escape(repo), re.escape(digest)), 200))


def manifest_reqs(reg, repo):
    return len(access(reg, None, r"^/v2/%s/manifests/" % re.escape(repo)))


def registry_manifest(reg, repo, tag="latest", creds=True):
    """(status, Docker-Content-Digest) of GET /v2/repo/manifests/tag."""
    req = urllib.request.Request("http://%s/v2/%s/manifests/%s" % (reg.host, repo, tag))
    req.add_header("Accept", ", ".join([
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json"]))
    if creds:
        req.add_header("Authorization", "Basic " +
                       base64.b64encode(("%s:%s" % (USER, PASS)).encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as e:
        return e.code, None


# ---------------------------------------------------------------- requests

def rpc(jail, method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    return http(jail.port, "POST", jail.urlpath, body)


def request(files, jail=None, execute="vpl_run.sh", todelete=None, full=False, **limits):
    jail = jail or J
    p = {"files": files, "fileencoding": {k: 0 for k in files},
         "filestodelete": todelete or {}, "execute": execute, "interactive": 0,
         "lang": "en_US.UTF-8", "maxtime": 30, "maxmemory": 256 << 20,
         "maxfilesize": 64 << 20, "maxprocesses": 64, "pluginversion": 2026012812}
    p.update(limits)
    r = rpc(jail, "request", p)
    assert r.status == 200, (r.status, r.text())
    res = json.loads(r.body)["result"]
    return res if full else res["adminticket"]


def result(ticket, jail=None, timeout=PULL_TIMEOUT):
    jail = jail or J
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = rpc(jail, "getresult", {"adminticket": ticket, "pluginversion": 2026012812})
        if r.status == 200:
            return json.loads(r.body)["result"]
        assert "Task still running" in r.text(), (r.status, r.text())
        time.sleep(0.2)
    raise AssertionError("task did not finish in %d s" % timeout)


def task_files(compile_cmd="", run_cmd=None, vplbdx=None, shell="/bin/bash", files=None):
    """The plugin's shape: vpl_run.sh compiles and leaves vpl_execution. On busybox there is
    no chmod applet: `busybox chmod` works on both images."""
    f = dict(files or {})
    script = "#!%s\n%s\n" % (shell, compile_cmd)
    if run_cmd is not None:
        script += ("cat > vpl_execution <<'EOF'\n#!%s\n%s\nEOF\nbusybox chmod +x vpl_execution "
                   "2>/dev/null || chmod +x vpl_execution\n" % (shell, run_cmd))
    f["vpl_run.sh"] = script
    if vplbdx is not None:
        f["vplbdx.cfg"] = vplbdx
    return f


def run_task(compile_cmd="", run_cmd=None, vplbdx=None, shell="/bin/bash", files=None,
             jail=None, **limits):
    t = request(task_files(compile_cmd, run_cmd, vplbdx, shell, files), jail=jail,
                todelete={"vpl_run.sh": 1}, **limits)
    return result(t, jail=jail)


def bb_task(docker, run_cmd, extra="", jail=None):
    """A task on a busybox-based image (/bin/sh only)."""
    return run_task("echo compiled-on-sh", run_cmd, vplbdx="DOCKER=%s\n%s" % (docker, extra),
                    shell="/bin/sh", jail=jail)


def jail_line(g):
    lines = [ln for ln in g["compilation"].splitlines() if ln.startswith("vpl-jail:")]
    assert lines, ("no vpl-jail: line in compilation", g)
    return lines[0]


def assert_failed(g, *any_of):
    line = jail_line(g)
    assert g["executed"] == 0, g
    low = line.lower()
    assert any(w.lower() in low for w in any_of), ("reason not named", any_of, line)
    print("     " + line, flush=True)
    return line


HELLO_C = '#include <stdio.h>\nint main(void){ printf("Hello world\\n"); return 0; }\n'


def hello_c():
    return run_task("gcc -O2 -o hello hello.c", "./hello; echo 'Grade :=>>10'",
                    files={"hello.c": HELLO_C})


# ---------------------------------------------------------------- tests

def test_default_image_from_local_registry():
    g = hello_c()
    assert g["executed"] == 1 and "Hello world" in g["execution"], g
    assert "Grade :=>>10" in g["execution"], g
    g = run_task("g++ -o a a.cpp", "./a; python3 p.py",
                 files={"a.cpp": '#include <iostream>\nint main(){std::cout<<"cpp ok"<<std::endl;}\n',
                        "p.py": "print('py', 6*7)\n"})
    assert "cpp ok" in g["execution"] and "py 42" in g["execution"], g
    # it came from the local registry, with the credentials of REGISTRY_AUTH_FILE
    assert access(L, "GET", r"^/v2/minivpl/blobs/sha256:", 200), access(L, path_re="minivpl")
    assert ("%s/minivpl:latest" % L.host) in ctr("images", "ls", "-q").split()


def test_java_image():
    """minivpl-java, pulled cold: the monitor socket shows the pull's progress
    while the task waits, then the evaluation runs javac and java."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "interactive"))
    from wsclient import WsClient
    files = task_files("javac Hello.java && echo javac-done",
                       "java -Xmx128m -Xss1m -XX:+UseSerialGC Hello", "DOCKER=minivpl-java\n",
                       "/bin/bash",
                       {"Hello.java": 'public class Hello { public static void main(String[] a) {'
                                      ' System.out.println("Hello from Java " + (6*7)); } }\n'})
    r = request(files, todelete={"vpl_run.sh": 1}, full=True, maxmemory=1 << 30,
                maxprocesses=256, maxtime=120)
    with WsClient() as c:
        c.open("m", "ws://127.0.0.1:%d/%s/monitor" % (J.port, r["monitorticket"]))
        c.wait("m", lambda e: e["ev"] == "message" and e.get("text") == "retrieve:",
               timeout=PULL_TIMEOUT)
        progress = [t for t in c.texts("m") if t.startswith("message:starting:image ")]
        assert progress, c.texts("m")
        assert "minivpl-java" in progress[0], progress
        print("     monitor:", progress[:3], flush=True)
    g = result(r["adminticket"])
    assert "javac-done" in g["compilation"], g
    assert g["executed"] == 1 and "Hello from Java 42" in g["execution"], g


def test_docker_present_locally():
    g = bb_task("test/busybox", "echo run-on-busybox; ls; ls -l /bin/busybox; id -u")
    assert "compiled-on-sh" in g["compilation"], g
    assert g["executed"] == 1 and "run-on-busybox" in g["execution"], g
    assert "/bin/busybox" in g["execution"], g
    # the teacher's execution file is not for the student's eyes
    assert "vplbdx.cfg" not in g["execution"] and "vplbdx" not in g["compilation"], g
    assert ("%s/test/busybox:latest" % L.host) in ctr("images", "ls", "-q").split()


def test_upstream_only_copied_to_local():
    info = INFO["uponly"]["info"]
    assert registry_manifest(L, "up/only")[0] == 404
    g = bb_task("up/only", "cat /uponly.txt")
    assert g["executed"] == 1 and "UPSTREAM-ONLY" in g["execution"], g
    st, dg = registry_manifest(L, "up/only")
    assert st == 200, st
    assert dg == info["manifest"], (dg, info["manifest"])
    # our worker fetched the new blobs from upstream (the busybox layer may already be in
    # containerd's content store from test/busybox), each once
    for d in info["new_layers"] + [info["config"]]:
        assert blob_gets(U, "up/only", d) == 1, (d, access(U, path_re="/v2/up/only/"))
    # and copied the image into the local registry with its own client
    assert access(L, "PUT", r"^/v2/up/only/manifests/latest$", 201), \
        access(L, path_re="/v2/up/only/")
    assert ("%s/up/only:latest" % L.host) in ctr("images", "ls", "-q").split()


def test_forcepull_after_tag_moved():
    g = bb_task("up/moving", "cat /marker.txt 2>/dev/null || echo no-marker")
    assert g["executed"] == 1 and "no-marker" in g["execution"], g
    push(INFO["moving2"]["ref"], U, "up/moving:latest")
    before = manifest_reqs(U, "up/moving")
    g = bb_task("up/moving", "cat /marker.txt", extra="FORCEPULL\n")
    assert g["executed"] == 1 and "MARKER-v2" in g["execution"], g
    after_first = manifest_reqs(U, "up/moving")
    assert after_first > before, (before, after_first)
    for d in INFO["moving2"]["info"]["new_layers"]:
        assert blob_gets(U, "up/moving", d) == 1, (d, access(U, path_re="/v2/up/moving/"))
    # the new version went into the local registry too
    st, dg = registry_manifest(L, "up/moving")
    assert st == 200 and dg == INFO["moving2"]["info"]["manifest"], (st, dg)
    # FORCEPULL_TTL=3600: a second FORCEPULL soon after does not go upstream again
    g = bb_task("up/moving", "cat /marker.txt", extra="FORCEPULL\n")
    assert g["executed"] == 1 and "MARKER-v2" in g["execution"], g
    assert manifest_reqs(U, "up/moving") == after_first, access(U, path_re="/manifests/")


def test_manifest_list_two_platforms():
    g = bb_task("test/multi", "cat /platform.txt")
    assert g["executed"] == 1, g
    assert "PLATFORM-" + V.arch in g["execution"], g
    assert "PLATFORM-" + INFO["other_arch"] not in g["execution"], g
    mine = INFO["multi"]["info"]["per_arch"][V.arch]["new_layers"][0]
    other = INFO["multi"]["info"]["per_arch"][INFO["other_arch"]]["new_layers"][0]
    assert blob_gets(L, "test/multi", mine) == 1 and blob_gets(L, "test/multi", other) == 0


def test_foreign_host_refused():
    """ALLOWED_IMAGES empty: only the local registry's namespace."""
    g = bb_task("registry.example.com/evil/img", "echo must-not-run")
    line = assert_failed(g, "not allowed")
    assert "registry.example.com" in line, line
    assert "must-not-run" not in g["execution"], g


def test_not_found():
    g = bb_task("test/nosuch", "echo must-not-run")
    line = assert_failed(g, "not found", "unknown", "not in the local registry", "no such")
    assert "nosuch" in line, line


def test_bad_vplbdx():
    g = bb_task("test/busybox", "echo must-not-run", extra="COLOR=red\n")
    line = assert_failed(g, "vplbdx.cfg")
    assert "line 2" in line and "COLOR" in line.upper(), line


def test_archive_import_cli():
    """`vpl-jail image import` (air-gapped sites) loads an OCI tarball into
    containerd with no registry; a task then runs on it, and `image list` and
    `image rm` see and remove it."""
    conf = os.path.join(TMP, "cli.conf")
    with open(conf, "w") as f:
        f.write("CONTAINERD_SOCKET=%s\nCONTAINERD_NAMESPACE=%s\nLOCAL_REGISTRY=%s\n"
                "URLPATH=/cli\n" % (ENV["CTR_SOCKET"], ENV["CTR_NAMESPACE"], L.host))
    os.chmod(conf, 0o600)
    jail = os.path.join(ROOT, BUILD, "vpl-jail")
    out = subprocess.run([jail, "-f", conf, "image", "import", INFO["bb_tar"], "site/imported"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out
    assert "imported %s/site/imported:latest sha256:" % L.host in out.stdout, out.stdout
    ls = subprocess.run([jail, "-f", conf, "image", "list"], capture_output=True, text=True)
    assert "%s/site/imported:latest" % L.host in ls.stdout, ls
    g = bb_task("site/imported", "echo imported-image-runs")
    assert g["executed"] == 1 and "imported-image-runs" in g["execution"], g
    bad = subprocess.run([jail, "-f", conf, "image", "import", conf], capture_output=True,
                         text=True)
    assert bad.returncode == 1 and "vpl-jail image import:" in bad.stderr, bad
    rm = subprocess.run([jail, "-f", conf, "image", "rm", "site/imported"], capture_output=True,
                        text=True)
    assert rm.returncode == 0, rm
    ls = subprocess.run([jail, "-f", conf, "image", "list"], capture_output=True, text=True)
    assert "site/imported" not in ls.stdout, ls


def test_user_from_image():
    """USER= names a user of the image (found in the image's /etc/passwd, read through
    containerd's content store): the task runs under its name, but with its container's own
    uid = gid (PRISONER_UID..), never the image's 2000, which two tasks would share."""
    g = bb_task("test/withuser", "id -u; id -g; echo user=$USER", extra="USER=student\n")
    assert g["executed"] == 1 and "user=student" in g["execution"], g
    uid, gid = (int(x) for x in g["execution"].split()[:2])
    assert uid == gid and uid != 2000 and 70000 <= uid < 90000, g


def test_user_refusals():
    g = bb_task("test/withuser", "echo must-not-run", extra="USER=nosuch\n")
    line = assert_failed(g, "does not exist", "not exist", "no user")
    assert "USER=nosuch" in line, line
    g = bb_task("test/withuser", "echo must-not-run", extra="USER=root\n")
    assert_failed(g, "root", "uid 0")
    g = bb_task("test/withuser", "echo must-not-run", extra="USER=daemon\n")
    assert_failed(g, "system users", "below 1000", "gid 0", "uid 1")


def start_small_worker():
    global J2, STATE2
    STATE2 = tempfile.mkdtemp(prefix="vplcell-state2-")
    J2 = Jail(**worker_conf(STATE2, W2, POOL_SIZE=0, MAX_IMAGE_SIZE="1M",
                            ALLOWED_IMAGES="test/*"))


def test_not_allowed_by_pattern():
    g = bb_task("other/busybox", "echo must-not-run", jail=J2)
    line = assert_failed(g, "not allowed")
    assert "other/busybox" in line and "ALLOWED_IMAGES" in line, line
    # an allowed one runs on the same worker
    g = bb_task("test/busybox", "echo allowed-ok", jail=J2)
    assert g["executed"] == 1 and "allowed-ok" in g["execution"], g


def test_too_big():
    g = bb_task("test/big", "echo must-not-run", jail=J2)
    line = assert_failed(g, "limit")
    assert "test/big" in line and "MB" in line, line
    # refused on the manifest's sizes: the big layer was never fetched
    assert blob_gets(L, "test/big", INFO["big"]["info"]["new_layers"][0]) == 0
    # the worker serves on
    g = bb_task("test/busybox", "echo still-serving", jail=J2)
    assert g["executed"] == 1 and "still-serving" in g["execution"], g


def test_corrupt_blob():
    layer = INFO["corrupt"]["info"]["new_layers"][0]
    path = L.blob_path(layer)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(os.urandom(size))
    g = bb_task("test/corrupt", "echo must-not-run")
    line = assert_failed(g, "digest", "corrupt", "mismatch", "checksum")
    assert layer.split(":")[1][:12] in line or "digest" in line.lower(), line
    assert J.proc.poll() is None, "worker died"
    g = hello_c()
    assert g["executed"] == 1 and "Hello world" in g["execution"], g


def test_registry_down():
    L.stop()
    try:
        g = bb_task("test/busybox", "echo cached-ok")
        assert g["executed"] == 1 and "cached-ok" in g["execution"], g
        g = bb_task("test/never", "echo must-not-run")
        assert_failed(g, "unreachable", "connect", "refused", "down", "cannot reach",
                      "not reach", "unavailable")
        line = jail_line(g)
        assert "test/never" in line, line
        assert J.proc.poll() is None, "worker died"
    finally:
        L.start()
    g = bb_task("test/busybox", "echo after-restart")
    assert g["executed"] == 1 and "after-restart" in g["execution"], g


def test_concurrent_cold_image_one_download():
    n = 10
    tickets = [request(task_files("echo c", "cat /cold.txt", "DOCKER=test/cold\n", "/bin/sh"),
                       todelete={"vpl_run.sh": 1}) for _ in range(n)]
    results = [result(t) for t in tickets]
    for g in results:
        assert g["executed"] == 1 and "COLD-IMAGE" in g["execution"], g
    info = INFO["cold"]["info"]
    for d in info["new_layers"] + [info["config"]]:
        assert blob_gets(L, "test/cold", d) == 1, (d, blob_gets(L, "test/cold", d))
    # the busybox layer may already be in containerd's content store
    for d in V.base_layers:
        assert blob_gets(L, "test/cold", d) <= 1, d
    log = J.read_log()
    assert len(re.findall(r"image \S+/test/cold:latest is sha256:", log)) == 1, \
        re.findall(r".*test/cold.*", log)[-20:]


def our_cgroups(worker):
    return [p for p in glob.glob("/sys/fs/cgroup/*/vplcell/*") + glob.glob(
        "/sys/fs/cgroup/vplcell/*") if os.path.isdir(p) and
        os.path.basename(p).startswith("vplcell-%s-" % worker)]


def nothing_left_behind(state_dir, worker):
    """After the worker stopped (copied from test_tasks.test_nothing_left_behind, plus leases
    and content ingests of the pulls)."""
    wdir = os.path.join(state_dir, worker)
    deadline = time.time() + 30
    while time.time() < deadline and (ctr("containers", "ls", "-q").split() or (
            os.path.exists(wdir) and os.listdir(wdir)) or our_cgroups(worker)):
        time.sleep(0.2)
    cs = ctr("containers", "ls", "-q").split()
    log = J.read_log()
    shutdown = log[log.rfind("vpl-jail stopping"):].splitlines()
    assert not cs, (cs, [ln for ln in shutdown if "rpc" not in ln and "http" not in ln])
    snaps = ctr("snapshots", "ls")
    active = [ln for ln in snaps.splitlines()[1:] if "Active" in ln]
    assert not active, snaps
    leases = ctr("leases", "ls")
    assert not leases.splitlines()[1:], leases
    ingests = ctr("content", "active")
    assert not ingests.splitlines()[1:], ingests
    assert not os.path.exists(wdir) or not os.listdir(wdir), os.listdir(wdir)
    with open("/proc/self/mountinfo") as f:
        assert "vplcell-" + ENV["CTR_NAMESPACE"] not in f.read()
    cg = our_cgroups(worker)
    assert not cg, cg


def test_nothing_left_behind():
    nothing_left_behind(STATE1, W1)


# ---------------------------------------------------------------- setup

STATE1 = None


def worker_conf(state, wid, **extra):
    auth = os.path.join(TMP, "registry-auth")
    if not os.path.exists(auth):
        with open(auth, "w") as f:
            f.write("# host user password\n%s %s %s\n" % (L.host, USER, PASS))
        os.chmod(auth, 0o600)
    conf = dict(CONTAINERD_SOCKET=ENV["CTR_SOCKET"], CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                WORKER_ID=wid, DEFAULT_IMAGE="minivpl", LOCAL_REGISTRY=L.host,
                UPSTREAM_REGISTRY=U.host, REGISTRY_PLAIN_HTTP="%s,%s" % (L.host, U.host),
                REGISTRY_AUTH_FILE=auth, FORCEPULL_TTL=3600, MAXTIME=300, LOGLEVEL=7,
                POOL_SIZE=1)
    conf.update(extra)
    return conf


def prepare_images():
    bb = sh(f"{ROOT}/scripts/build-test-image.sh").stdout.strip().splitlines()[-1]
    mini = sh(f"{ROOT}/images/minivpl/build.sh").stdout.strip().splitlines()[-1]
    java = sh(f"{ROOT}/images/minivpl-java/build.sh").stdout.strip().splitlines()[-1]
    INFO["bb_tar"] = bb
    global V
    V = Variants(bb)
    other = "arm64" if V.arch != "arm64" else "amd64"
    INFO["other_arch"] = other
    for name, layers in (
            ("moving2", [{"marker.txt": b"MARKER-v2\n"}]),
            ("uponly", [{"uponly.txt": b"UPSTREAM-ONLY\n"}]),
            ("big", [{"big.bin": os.urandom(3 << 20)}]),
            ("corrupt", [{"corrupt.txt": b"CORRUPT-ME\n" * 1000}]),
            ("never", [{"never.txt": b"NEVER\n"}]),
            ("cold", [{"cold.txt": b"COLD-IMAGE\n"}, {"etc/cold2.txt": b"second layer\n"}]),
            ("withuser", [{"etc/passwd": b"root:x:0:0:root:/root:/bin/sh\n"
                                         b"student:x:2000:2000::/home/student:/bin/sh\n"
                                         b"daemon:x:1:1::/:/bin/false\n"}])):
        ref, info = V.variant(name, *layers)
        INFO[name] = {"ref": ref, "info": info}
    ref, info = V.platform_list("multi", {V.arch: {"platform.txt": b"PLATFORM-%s\n" % V.arch.encode()},
                                          other: {"platform.txt": b"PLATFORM-%s\n" % other.encode()}})
    INFO["multi"] = {"ref": ref, "info": info}
    creds = "%s:%s" % (USER, PASS)
    jobs = [("oci-archive:" + mini, L, "minivpl:latest", creds, False),
            ("oci-archive:" + bb, L, "test/busybox:latest", creds, False),
            ("oci-archive:" + bb, U, "up/moving:latest", None, False),
            (INFO["uponly"]["ref"], U, "up/only:latest", None, False),
            (INFO["multi"]["ref"], L, "test/multi:latest", creds, True)]
    for name in ("big", "corrupt", "never", "cold", "withuser"):
        jobs.append((INFO[name]["ref"], L, "test/%s:latest" % name, creds, False))
    with ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(push, *j) for j in jobs]
        for f in futs:
            f.result()
    # minivpl-java after minivpl: they share the base layer
    if java:
        push("oci-archive:" + java, L, "minivpl-java:latest", creds)
    return java is not None


def main():
    global J, L, U, STATE1
    t0 = time.time()
    try:
        start_containerd()
        L = Registry(basic={USER: PASS}).start()
        U = Registry().start()
        have_java = prepare_images()
        print("images pushed in %.0f s" % (time.time() - t0), flush=True)
        STATE1 = tempfile.mkdtemp(prefix="vplcell-state-")
        J = Jail(**worker_conf(STATE1, W1))
        tests = [test_default_image_from_local_registry, test_docker_present_locally,
                 test_upstream_only_copied_to_local, test_forcepull_after_tag_moved,
                 test_manifest_list_two_platforms, test_foreign_host_refused, test_not_found,
                 test_bad_vplbdx, test_user_from_image, test_user_refusals, test_archive_import_cli]
        for fn in tests:
            S.run(fn)
        try:
            start_small_worker()
            S.run(test_not_allowed_by_pattern)
            S.run(test_too_big)
        finally:
            if J2:
                rc2 = J2.stop()
                S.check(rc2 == 0, f"small worker exits cleanly (rc={rc2})")
        for fn in (test_corrupt_blob, test_registry_down, test_concurrent_cold_image_one_download):
            S.run(fn)
        if have_java:
            S.run(test_java_image)
        else:
            S.check(False, "test_java_image: minivpl-java image not available")
        rc = J.stop()
        S.check(rc == 0, f"worker exits cleanly (rc={rc})")
        S.run(test_nothing_left_behind)
        if S.failed:
            print(J.read_log()[-8000:])
            if J2:
                print("small worker:", J2.read_log()[-3000:])
            for lg in glob.glob(os.path.join(CTD_DIR, "*.log")):
                with open(lg, errors="replace") as f:
                    print("containerd log:", "".join(f.readlines()[-40:]))
    finally:
        for w in (J, J2):
            if w and w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        subprocess.run([f"{ROOT}/scripts/containerd-test.sh", "stop", CTD_DIR])
        for r in (L, U):
            if r:
                r.cleanup()
        if V:
            V.cleanup()
        import shutil
        for d in (TMP, STATE1, STATE2, CTD_DIR):
            if d:
                shutil.rmtree(d, ignore_errors=True)
        print("total %.0f s" % (time.time() - t0), flush=True)
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
