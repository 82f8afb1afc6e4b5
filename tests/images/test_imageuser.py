#!/usr/bin/env python3
"""USER= of vplbdx.cfg looked up in an image's /etc/passwd through containerd's content store
(jail/images/imageuser.c), driven through build/tests/images_imageuser:

  - pure passwd_lookup cases (`images_imageuser --passwd FILE USER`): strict parsing, root refused;
  - a private containerd with the busybox test image and variants of it built by oci_variants.py
    (a top layer with its own etc/passwd, a lower one, a whiteout, opaque dirs, a symlink and a
    hard link named etc/passwd, /etc as a symlink, malformed and root entries, plain/zstd layers,
    an image index), each imported with `ctr images import`;
  - minivpl (images/minivpl/build.sh): prisoner is uid 10001; the lookup time is printed.

    VPL_BUILD=build python3 tests/images/test_imageuser.py

No timing assertions (the suite also runs against the ASan build).
"""
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, HERE)
from harness import Suite, containerd_start, containerd_stop  # noqa: E402
import oci_variants  # noqa: E402
from oci_variants import Variants  # noqa: E402

S = Suite("imageuser")
BUILD = os.environ.get("VPL_BUILD", "build")
TOOL = os.path.join(ROOT, BUILD, "tests", "images_imageuser")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-iu-")
TMP = tempfile.mkdtemp(prefix="vplcell-iu-")
ENV = {}
BASE = "vplcell.local/test/busybox:latest"
STUDENT = b"student:x:2000:2000::/home/student:/bin/sh\n"
ROOTLINE = b"root:x:0:0:root:/root:/bin/sh\n"


def tool(*args, timeout=900):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    p = subprocess.run([TOOL] + list(args), capture_output=True, text=True, timeout=timeout,
                       env=env)
    out = p.stdout.strip()
    if p.returncode not in (0, 1) or "ERROR: AddressSanitizer" in p.stderr or \
            "runtime error" in p.stderr or "LeakSanitizer" in p.stderr:
        raise AssertionError("tool %s: rc %d, stderr %s" % (args, p.returncode, p.stderr[-3000:]))
    return out


def lookup(image, user):
    return tool(ENV["CTR_SOCKET"], ENV["CTR_NAMESPACE"], image, user)


def expect(label, got, want_prefix, contains=None):
    ok = got.startswith(want_prefix) and (contains is None or contains in got)
    S.check(ok, "%s -> %s" % (label, got[:160]))


# ---- pure cases ----

def pure(content, user):
    path = os.path.join(TMP, "passwd")
    with open(path, "wb") as f:
        f.write(content)
    return tool("--passwd", path, user)


def test_pure():
    good = (b"# comment\n\n" + ROOTLINE + STUDENT +
            b"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin")  # no final newline
    expect("found", pure(good, "student"), "2000 2000 /home/student")
    expect("last line without newline", pure(good, "nobody"), "65534 65534 /nonexistent")
    expect("missing user", pure(good, "ghost"), "ERR ENOENT", "ghost")
    expect("root refused", pure(good, "root"), "ERR EPERM", "root")
    expect("gid 0 refused", pure(b"op:x:1000:0::/home/op:/bin/sh\n", "op"), "ERR EPERM")
    expect("uid 0 under another name refused", pure(b"toor:x:0:5::/:/bin/sh\n", "toor"),
           "ERR EPERM")
    expect("first entry wins", pure(STUDENT + b"student:x:3000:3000::/x:/bin/sh\n", "student"),
           "2000 2000 /home/student")
    expect("6 fields", pure(b"student:x:2000:2000::/home/student\n", "student"), "ERR EBADMSG",
           "line 1")
    expect("8 fields", pure(b"student:x:2000:2000::/home/student:/bin/sh:x\n", "student"),
           "ERR EBADMSG")
    expect("malformed line after the match", pure(STUDENT + b"bad:x:1:2\n", "student"),
           "ERR EBADMSG", "line 2")
    expect("CRLF", pure(STUDENT.replace(b"\n", b"\r\n"), "student"), "ERR EBADMSG")
    expect("NUL byte", pure(STUDENT + b"x\0:x:1:1::/:/bin/sh\n", "student"), "ERR EBADMSG")
    expect("negative uid", pure(b"student:x:-1:2000::/home/student:/bin/sh\n", "student"),
           "ERR EBADMSG")
    expect("uid with a space", pure(b"student:x: 2000:2000::/home/student:/bin/sh\n", "student"),
           "ERR EBADMSG")
    expect("uid 4294967295", pure(b"student:x:4294967295:1::/h:/bin/sh\n", "student"),
           "ERR EBADMSG")
    expect("uid 4294967294", pure(b"student:x:4294967294:1::/h:/bin/sh\n", "student"),
           "4294967294 1 /h")
    expect("empty name", pure(b":x:1:1::/:/bin/sh\n" + STUDENT, "student"), "ERR EBADMSG")
    expect("relative home", pure(b"student:x:2000:2000::home:/bin/sh\n", "student"),
           "ERR EBADMSG", "home")
    expect("empty home", pure(b"student:x:2000:2000:::/bin/sh\n", "student"), "ERR EBADMSG")
    expect("invalid user name asked", pure(good, "Stu:dent"), "ERR EINVAL")
    expect("user name too long", pure(good, "a" * 33), "ERR EINVAL")
    expect("prefix of a name is not the name", pure(STUDENT, "stud"), "ERR ENOENT")
    big = STUDENT + b"#" + b"x" * (1024 * 1024) + b"\n"
    expect("passwd over 1 MiB", pure(big, "student"), "ERR EBADMSG", "1048576")


# ---- images ----

def layer_tar_ext(files):
    """oci_variants.layer_tar, plus entries given as ("symlink", target), ("hardlink", target)
    or ("dir",), and names kept as given (no directories added): whiteouts, "./" prefixes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in files:  # in the order given
            v = files[name]
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if isinstance(v, tuple) and v[0] == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif isinstance(v, tuple):
                ti.type = tarfile.SYMTYPE if v[0] == "symlink" else tarfile.LNKTYPE
                ti.linkname = v[1]
                ti.mode = 0o777 if v[0] == "symlink" else 0o644
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(v), 0o644
                tf.addfile(ti, io.BytesIO(v))
    tar = raw.getvalue()
    comp = COMPRESS.get("mode", "gzip")
    if comp == "plain":
        return tar, tar
    if comp == "zstd":
        return tar, subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True,
                                   check=True).stdout
    import gzip
    return tar, gzip.compress(tar, compresslevel=1, mtime=0)


COMPRESS = {}
MEDIA = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
         "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
         "plain": "application/vnd.oci.image.layer.v1.tar"}


def build(V, name, *layers, compress="gzip", index=None):
    """A variant of busybox with the given layers (dicts for layer_tar_ext), imported into
    containerd as vplcell.local/test/iu-NAME:latest; returns that name."""
    saved = (oci_variants.layer_tar, oci_variants.MT_LAYER)
    COMPRESS["mode"] = compress
    oci_variants.layer_tar, oci_variants.MT_LAYER = layer_tar_ext, MEDIA[compress]
    try:
        if index:
            _, info = V.platform_list(name, index)
        else:
            _, info = V.variant(name, *layers)
    finally:
        oci_variants.layer_tar, oci_variants.MT_LAYER = saved
    tarpath = os.path.join(TMP, name + ".tar")
    with tarfile.open(tarpath, "w") as tf:
        tf.add(info["dir"], arcname=".")
    image = "vplcell.local/test/iu-" + name
    ctr("images", "import", "--base-name", image, tarpath)
    os.unlink(tarpath)
    return image + ":latest"


def ctr(*args):
    p = subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"]] + list(args),
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, (args, p.stderr[-2000:])
    return p.stdout


def test_images():
    busybox = subprocess.run([os.path.join(ROOT, "scripts", "build-test-image.sh")],
                             check=True, capture_output=True, text=True).stdout.strip()
    ctr("images", "import", busybox)
    expect("busybox prisoner", lookup(BASE, "prisoner"), "10001 10001 /home/prisoner")
    expect("busybox nobody", lookup(BASE, "nobody"), "65534 65534 /nonexistent")
    expect("busybox root", lookup(BASE, "root"), "ERR EPERM", "root")
    expect("busybox missing user", lookup(BASE, "ghost"), "ERR ENOENT",
           "user ghost does not exist in image " + BASE)
    expect("absent image", lookup("vplcell.local/test/none:latest", "prisoner"), "ERR ENOENT",
           "image vplcell.local/test/none:latest: not in containerd")
    expect("invalid user name", lookup(BASE, "../x"), "ERR EINVAL")

    V = Variants(busybox)
    try:
        top = build(V, "top", {"etc": ("dir",), "etc/passwd": ROOTLINE + STUDENT +
                               b"toor:x:0:0::/:/bin/sh\nwheel:x:3000:0::/:/bin/sh\n"})
        expect("top layer's passwd", lookup(top, "student"), "2000 2000 /home/student")
        expect("top layer's passwd hides the base's", lookup(top, "prisoner"), "ERR ENOENT",
               "user prisoner does not exist in image " + top)
        expect("uid 0 under another name", lookup(top, "toor"), "ERR EPERM")
        expect("gid 0", lookup(top, "wheel"), "ERR EPERM")

        lower = build(V, "lower", {"./etc/passwd": STUDENT}, {"marker.txt": b"m\n"},
                      {"etc/group": b"student:x:2000:\n"})
        expect("passwd in a lower added layer, ./ prefix", lookup(lower, "student"),
               "2000 2000 /home/student")

        wh = build(V, "whiteout", {"etc/.wh.passwd": b""})
        expect("whiteout of etc/passwd", lookup(wh, "prisoner"), "ERR ENOENT",
               "whiteout of /etc/passwd")
        opq = build(V, "opaque", {"etc": ("dir",), "etc/.wh..wh..opq": b"",
                                  "etc/group": b"x:x:1:\n"})
        expect("opaque /etc", lookup(opq, "prisoner"), "ERR ENOENT", "opaque /etc")
        opq2 = build(V, "opaque-own", {"etc/.wh..wh..opq": b"", "etc/passwd": STUDENT})
        expect("opaque /etc with its own passwd", lookup(opq2, "student"),
               "2000 2000 /home/student")
        whetc = build(V, "whiteout-etc", {".wh.etc": b""})
        expect("whiteout of /etc", lookup(whetc, "prisoner"), "ERR ENOENT", "whiteout of /etc")
        etclink = build(V, "etc-symlink", {"etc": ("symlink", "/var/etc")}, {"marker": b"x"})
        expect("/etc as a symlink", lookup(etclink, "prisoner"), "ERR ENOENT", "symlink")
        wh_then = build(V, "whiteout-then-passwd", {"etc/.wh.passwd": b""},
                        {"etc/passwd": STUDENT})
        expect("passwd above a whiteout", lookup(wh_then, "student"), "2000 2000 /home/student")

        sl = build(V, "symlink", {"etc/passwd": ("symlink", "/etc/shadow")})
        expect("etc/passwd a symlink to /etc/shadow", lookup(sl, "prisoner"), "ERR EBADMSG",
               "not a regular file")
        hl = build(V, "hardlink", {"etc/other": STUDENT, "etc/passwd": ("hardlink", "etc/other")})
        expect("etc/passwd a hard link", lookup(hl, "student"), "ERR EBADMSG",
               "not a regular file")
        dotdot = build(V, "dotdot", {"tmp/../etc//passwd": STUDENT})
        expect("name cleaned like containerd (tmp/../etc//passwd)", lookup(dotdot, "student"),
               "2000 2000 /home/student")
        bad = build(V, "malformed", {"etc/passwd": STUDENT + b"broken line\n"})
        expect("malformed line", lookup(bad, "student"), "ERR EBADMSG", "line 2")
        big = build(V, "big", {"etc/passwd": STUDENT + b"#" + b"y" * (1024 * 1024) + b"\n"})
        expect("passwd over 1 MiB", lookup(big, "student"), "ERR EBADMSG", "1048576")

        plain = build(V, "plain", {"etc/passwd": STUDENT}, compress="plain")
        expect("uncompressed layer", lookup(plain, "student"), "2000 2000 /home/student")
        zst = build(V, "zstd", {"etc/passwd": STUDENT}, compress="zstd")
        expect("zstd layer", lookup(zst, "student"), "2000 2000 /home/student")

        arch = V.arch
        other = "arm64" if arch != "arm64" else "amd64"
        idx = build(V, "index", index={other: {"etc/passwd": b"student:x:7:7::/o:/bin/sh\n"},
                                       arch: {"etc/passwd": STUDENT}})
        expect("image index: the host platform's manifest", lookup(idx, "student"),
               "2000 2000 /home/student")
    finally:
        V.cleanup()


def test_minivpl():
    p = subprocess.run([os.path.join(ROOT, "images", "minivpl", "build.sh")],
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0 or not p.stdout.strip():
        S.check(False, "minivpl image built: " + p.stderr[-500:])
        return
    tar = p.stdout.strip().splitlines()[-1]
    ctr("images", "import", tar)
    t0 = time.monotonic()
    got = lookup("vplcell.local/minivpl:latest", "prisoner")
    dt = time.monotonic() - t0
    print("     minivpl: prisoner looked up in %.2f s (%s)" % (dt, BUILD), flush=True)
    expect("minivpl prisoner", got, "10001 10001 /home/prisoner")
    t0 = time.monotonic()
    got = lookup("vplcell.local/minivpl:latest", "nosuchuser")
    dt = time.monotonic() - t0
    print("     minivpl: missing user answered in %.2f s" % dt, flush=True)
    expect("minivpl missing user", got, "ERR ENOENT")

    # minivpl-java: its top layer (the JDK, ~150 MB gzip) has no etc/passwd, so it is read to
    # its end before the base layer answers: the realistic slow case.
    script = os.path.join(ROOT, "images", "minivpl-java", "build.sh")
    if not os.path.exists(script):
        return
    p = subprocess.run([script], capture_output=True, text=True, timeout=3600)
    if p.returncode != 0 or not p.stdout.strip():
        S.check(False, "minivpl-java image built: " + p.stderr[-500:])
        return
    ctr("images", "import", p.stdout.strip().splitlines()[-1])
    t0 = time.monotonic()
    got = lookup("vplcell.local/minivpl-java:latest", "prisoner")
    dt = time.monotonic() - t0
    print("     minivpl-java: prisoner looked up in %.2f s (whole top layer read)" % dt,
          flush=True)
    expect("minivpl-java prisoner (below a layer without passwd)", got,
           "10001 10001 /home/prisoner")


def main():
    try:
        S.run(test_pure)
        ENV.update(containerd_start(CTD_DIR))
        S.run(test_images)
        S.run(test_minivpl)
    finally:
        if ENV:
            containerd_stop(CTD_DIR)
        shutil.rmtree(CTD_DIR, ignore_errors=True)
        shutil.rmtree(TMP, ignore_errors=True)
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
