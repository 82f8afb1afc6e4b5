#!/usr/bin/env python3
"""End-to-end garbage collection of unused images (jail/images/imagegc.h) through the real
worker: a private containerd, a plain docker-registry (registry_fixture.py) holding busybox
variants (oci_variants.py), and a worker with IMAGE_STORE_MAX just above what the default image,
two operator images and two pulled variants take.

  - pulling a third variant pushes the store over the cap: the least recently used pulled image
    (v1) is removed, the recent ones (v2, v3) stay; DEFAULT_IMAGE and the operator's images
    (pulled with `ctr`, no vplcell labels) stay;
  - an operator image that carries an old vplcell.last-used label is removed by age
    (IMAGE_UNUSED_TTL) at the GC after the next pull; the one without the label and the default
    image, even labelled old, stay.

    VPL_BUILD=build-h10 python3 tests/images/test_image_gc.py

No timing assertions (the suite also runs against the ASan build): only generous deadlines.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, HERE)
from harness import Jail, Suite, containerd_start, containerd_stop  # noqa: E402
from registry_fixture import Registry  # noqa: E402
from oci_variants import Variants  # noqa: E402
import test_pull as tp  # noqa: E402  (request/result helpers, nothing_left_behind)

S = Suite("image-gc")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-gc-")
TMP = tempfile.mkdtemp(prefix="vplcell-gctest-")
WID = "gc%d" % (os.getpid() % 100000)
TIMEOUT = 300  # generous, never asserted
MiB = 1 << 20

ENV = {}
R = None     # the registry
V = None     # busybox variants
J = None     # the worker
STATE = None
BLOBS = {}   # image short name -> {digest: size}


def ctr(*args, check=False):
    p = subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"]] + list(args),
                       capture_output=True, text=True)
    if check:
        assert p.returncode == 0, (args, p.stderr)
    return p.stdout


def full(short):
    return "%s/%s:latest" % (R.host, short)


def images():
    return set(ctr("images", "ls", "-q").split())


def labels(short):
    """Labels of image SHORT as ctr prints them (last column of `ctr images ls`)."""
    for ln in ctr("images", "ls").splitlines()[1:]:
        if ln.split()[0] == full(short):
            return ln.split()[-1]
    return None


def wait_for(cond, what, timeout=TIMEOUT):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.5)
    raise AssertionError("timed out waiting for: " + what)


def blobs_of(info):
    """{digest: size} of a variant: manifest, config, layers, read from its layout dir."""
    out = {}
    d = os.path.join(info["dir"], "blobs", "sha256")
    for dg in [info["manifest"], info["config"]] + info["layers"]:
        out[dg] = os.path.getsize(os.path.join(d, dg.split(":", 1)[1]))
    return out


def store(*shorts):
    """Content-store bytes of these images, each blob once (what the GC counts)."""
    u = {}
    for s in shorts:
        u.update(BLOBS[s])
    return sum(u.values())


def task(docker=None):
    vplbdx = "DOCKER=%s\n" % docker if docker else None
    g = tp.run_task("echo compiled-on-sh", "echo ran-ok", vplbdx=vplbdx, shell="/bin/sh",
                    jail=J)
    assert g["executed"] == 1 and "ran-ok" in g["execution"], g
    return g


# ---------------------------------------------------------------- tests

def test_pulled_images_are_labelled():
    task()  # DEFAULT_IMAGE (test/busybox), pulled by the worker
    for v in ("test/v1", "test/v2"):
        task(v)
    for s in ("test/busybox", "test/v1", "test/v2"):
        lab = labels(s)
        assert lab and "vplcell.last-used=" in lab and "vplcell.pulled=" in lab, (s, lab)
    for s in ("test/op1", "test/op2"):
        lab = labels(s)
        assert lab is not None and "vplcell" not in lab, (s, lab)


def test_over_cap_removes_least_recently_used():
    task("test/v3")  # the store goes over IMAGE_STORE_MAX
    wait_for(lambda: full("test/v1") not in images(), "test/v1 removed over the cap")
    have = images()
    for s in ("test/v2", "test/v3", "test/busybox", "test/op1", "test/op2"):
        assert full(s) in have, (s, sorted(have))
    log = J.read_log()
    line = [ln for ln in log.splitlines() if "image gc: removed" in ln and "test/v1" in ln]
    assert line and "over cap" in line[0] and BLOBS["test/v1"] and \
        tp_manifest("test/v1") in line[0], line
    assert "image gc:" in log and "removed, " in log, log[-3000:]
    # the default image is never a candidate, and a removed image runs again (pulled anew)
    task("test/v1")
    wait_for(lambda: full("test/v1") in images(), "test/v1 back")


def tp_manifest(short):
    return INFO[short]["manifest"]


def test_unused_ttl_removes_labelled_operator_image():
    old = str(int(time.time()) - 30 * 86400)
    ctr("images", "label", full("test/op1"), "vplcell.last-used=" + old, check=True)
    ctr("images", "label", full("test/busybox"), "vplcell.last-used=" + old, check=True)
    task("test/v4")  # a pull: the GC runs after it
    wait_for(lambda: full("test/op1") not in images(), "test/op1 removed by age")
    have = images()
    assert full("test/op2") in have, sorted(have)      # no label: the operator's own
    assert full("test/busybox") in have, sorted(have)  # DEFAULT_IMAGE, even labelled old
    log = J.read_log()
    line = [ln for ln in log.splitlines() if "image gc: removed" in ln and "test/op1" in ln]
    assert line and "unused for 30 days" in line[0], line
    # the default image still serves tasks
    task()


def test_nothing_left_behind():
    rc = J.stop()
    assert rc == 0, ("worker exit", rc, J.read_log()[-3000:])
    tp.nothing_left_behind(STATE, WID)


# ---------------------------------------------------------------- setup

INFO = {}
TP_TMP = tp.TMP  # made by test_pull at import; unused here


def prepare():
    global V
    bb = subprocess.run([os.path.join(ROOT, "scripts", "build-test-image.sh")], check=True,
                        capture_output=True, text=True).stdout.strip().splitlines()[-1]
    V = Variants(bb)
    d = V.base
    base_blobs = {}
    for dg in [V.base_manifest_digest, V.base_manifest["config"]["digest"]] + V.base_layers:
        base_blobs[dg] = os.path.getsize(os.path.join(d, "blobs", "sha256", dg.split(":")[1]))
    BLOBS["test/busybox"] = base_blobs
    INFO["test/busybox"] = {"manifest": V.base_manifest_digest}
    for name, files in (("v1", {"v1.bin": os.urandom(MiB)}), ("v2", {"v2.bin": os.urandom(MiB)}),
                        ("v3", {"v3.bin": os.urandom(MiB)}), ("v4", {"v4.txt": b"V4\n"}),
                        ("op1", {"op1.txt": b"OP1\n"}), ("op2", {"op2.txt": b"OP2\n"})):
        ref, info = V.variant(name, files)
        INFO["test/" + name] = info
        BLOBS["test/" + name] = blobs_of(info)
        tp.push(ref, R, "test/%s:latest" % name)
    tp.push("oci-archive:" + bb, R, "test/busybox:latest")
    # the operator's own images: pulled with ctr, no vplcell labels
    for s in ("test/op1", "test/op2"):
        p = subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"], "images",
                            "pull", "--plain-http", full(s)], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr


def main():
    global R, J, STATE
    t0 = time.time()
    try:
        ENV.update(containerd_start(CTD_DIR))
        tp.ENV.update(ENV)
        tp.TMP = TMP
        R = Registry().start()
        prepare()
        # over the cap only when v3 joins: default + operator images + v1 + v2 + half a layer
        cap = store("test/busybox", "test/op1", "test/op2", "test/v1", "test/v2") + MiB // 2
        assert store("test/busybox", "test/op1", "test/op2", "test/v1", "test/v2",
                     "test/v3") > cap
        assert store("test/busybox", "test/op1", "test/op2", "test/v2", "test/v3",
                     "test/v4") <= cap
        STATE = tempfile.mkdtemp(prefix="vplcell-state-gc-")
        J = Jail(CONTAINERD_SOCKET=ENV["CTR_SOCKET"], CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                 HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=STATE,
                 WORKER_ID=WID, DEFAULT_IMAGE="test/busybox", LOCAL_REGISTRY=R.host,
                 REGISTRY_PLAIN_HTTP=R.host, MAXTIME=300, LOGLEVEL=7, POOL_SIZE=0,
                 IMAGE_STORE_MAX=cap, IMAGE_UNUSED_TTL=86400)
        tp.J = J
        print("images pushed in %.0f s, cap %d bytes" % (time.time() - t0, cap), flush=True)
        for fn in (test_pulled_images_are_labelled, test_over_cap_removes_least_recently_used,
                   test_unused_ttl_removes_labelled_operator_image, test_nothing_left_behind):
            S.run(fn)
        if S.failed and J:
            print(J.read_log()[-8000:])
    except Exception as e:  # setup failed: count it, clean up below
        import traceback
        traceback.print_exc(file=sys.stdout)
        S.check(False, "setup: %s" % e)
    finally:
        if J and J.proc.poll() is None:
            J.proc.kill()
            J.proc.wait()
        containerd_stop(CTD_DIR)
        if R:
            R.cleanup()
        if V:
            V.cleanup()
        for d in (TMP, STATE, CTD_DIR, tp.CTD_DIR, TP_TMP, J.dir if J else None):
            if d:
                shutil.rmtree(d, ignore_errors=True)
        print("total %.0f s" % (time.time() - t0), flush=True)
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
