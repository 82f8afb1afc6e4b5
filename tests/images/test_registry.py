#!/usr/bin/env python3
"""Registry client (jail/images/registry.c) against real docker-registry instances.

Drives $VPL_BUILD/tests/images_regtool (VPL_BUILD defaults to build; under build-asan the tool
runs with ASan+UBSan, so any sanitizer report fails the check). Three registries on loopback
(registry_fixture.py): plain, htpasswd basic auth, and bearer tokens (token_server.py). The test
image is scripts/build-test-image.sh's OCI tarball, seeded with skopeo.
Ends with "N passed, N failed".
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from registry_fixture import Registry, free_port  # noqa: E402

BUILD = os.environ.get("VPL_BUILD", "build")
TOOL = os.path.join(ROOT, BUILD, "tests", "images_regtool")
USER, PASS = "alice", "s3cret-Pw"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

passed = failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok   " + name)
    else:
        failed += 1
        print("FAIL " + name + (": " + str(detail) if detail else ""))


class Res:
    def __init__(self, p):
        self.rc, self.out, self.err = p.returncode, p.stdout, p.stderr.decode(errors="replace")
        self.text = self.out.decode(errors="replace")

    def ename(self):
        for line in self.err.splitlines():
            if line.startswith("ERR "):
                return line.split()[1]
        return None

    def __repr__(self):
        return "rc=%d out=%r err=%r" % (self.rc, self.text[:300], self.err[-600:])


def tool(*args, plain=None, creds=(), stdout_file=None):
    cmd = [TOOL]
    if plain:
        cmd += ["-p", plain]
    for c in creds:
        cmd += ["-c", c]
    cmd += list(args)
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    r = Res(p)
    if stdout_file:
        with open(stdout_file, "wb") as f:
            f.write(p.stdout)
    return r


def sanitizer_clean(r):
    return "Sanitizer" not in r.err and "runtime error" not in r.err


def expect_err(name, r, code, *words):
    ok = r.rc == 1 and r.ename() == code and all(w in r.err for w in words)
    check(name, ok and sanitizer_clean(r), r)


def main():
    if not os.access(TOOL, os.X_OK):
        check("tool built (%s)" % TOOL, False)
        return
    tar = subprocess.run([os.path.join(ROOT, "scripts/build-test-image.sh")], check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    work = tempfile.mkdtemp(prefix="vplcell-regtest.")
    try:
        registries(tar, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def registries(tar, work):
    plat = tool("platform").text.strip()
    os_, arch = plat.split("/")[:2]
    other = "arm64" if arch != "arm64" else "amd64"

    with Registry() as P, Registry(basic={USER: PASS}) as B, Registry(token={USER: PASS}) as T:
        plain = ",".join([P.host, B.host, T.host])
        good_b, good_t = "%s=%s:%s" % (B.host, USER, PASS), "%s=%s:%s" % (T.host, USER, PASS)

        def run(*a, **k):
            k.setdefault("plain", plain)
            return tool(*a, **k)

        subprocess.run(["skopeo", "copy", "-q", "oci-archive:" + tar,
                        "docker://%s/test/busybox:latest" % P.host, "--dest-tls-verify=false"],
                       check=True, capture_output=True)
        subprocess.run(["skopeo", "copy", "-q", "oci-archive:" + tar,
                        "docker://%s/test/busybox:latest" % B.host, "--dest-tls-verify=false",
                        "--dest-creds", "%s:%s" % (USER, PASS)], check=True, capture_output=True)
        img = "%s/test/busybox:latest" % P.host

        # --- plain registry: resolve, manifests, blobs ---
        mfile = os.path.join(work, "m.json")
        r = run("-b", mfile, "resolve", img)
        check("resolve by tag", r.rc == 0 and r.text.startswith(OCI_MANIFEST), r)
        mt, digest, length = r.text.split()[:3] if r.rc == 0 else ("", "", "0")
        with open(mfile, "rb") as f:
            mbody = f.read()
        check("manifest body matches its digest",
              "sha256:" + hashlib.sha256(mbody).hexdigest() == digest and len(mbody) == int(length))
        man = json.loads(mbody)
        layer, config = man["layers"][0], man["config"]

        r = run("resolve", "%s/test/busybox@%s" % (P.host, digest))
        check("resolve by digest", r.rc == 0 and r.text.split()[1] == digest, r)
        r = run("resolve", "%s/test/busybox:latest@%s" % (P.host, digest))
        check("resolve by tag@digest", r.rc == 0 and r.text.split()[1] == digest, r)
        r = run("-n", "3", "manifest", img)
        check("raw manifest, 3 times on one client",
              r.rc == 0 and r.text.count(digest) == 3, r)

        out = os.path.join(work, "layer")
        r = run("blob", img, layer["digest"], str(layer["size"]), "0", stdout_file=out)
        with open(out, "rb") as f:
            data = f.read()
        check("blob fetched and verified",
              r.rc == 0 and "sha256:" + hashlib.sha256(data).hexdigest() == layer["digest"]
              and len(data) == layer["size"], r)
        r = run("blob", img, layer["digest"], "-1", "0")
        check("blob of unknown size", r.rc == 0 and len(r.out) == layer["size"], r)
        r = run("blob", img, layer["digest"], str(layer["size"]), str(layer["size"] // 2))
        expect_err("size over max_size -> EFBIG (before fetching)", r, "EFBIG", "limit")
        r = run("blob", img, layer["digest"], "-1", str(layer["size"] // 2))
        expect_err("stream over max_size -> EFBIG", r, "EFBIG", "limit")
        r = run("blob", img, layer["digest"], str(layer["size"] - 1), "0")
        expect_err("blob longer than its descriptor -> EBADMSG", r, "EBADMSG")
        r = run("has-blob", img, layer["digest"])
        check("has-blob yes", r.rc == 0 and r.text.strip() == "1", r)
        r = run("has-blob", img, "sha256:" + "0" * 64)
        check("has-blob no", r.rc == 0 and r.text.strip() == "0", r)

        # --- not found / unreachable ---
        r = run("resolve", "%s/test/busybox:nope" % P.host)
        expect_err("unknown tag -> ENOENT", r, "ENOENT",
                   "image %s/test/busybox:nope not found in registry %s" % (P.host, P.host))
        r = run("resolve", "%s/no/such:latest" % P.host)
        expect_err("unknown repository -> ENOENT", r, "ENOENT", "not found")
        r = run("blob", img, "sha256:" + "1" * 64, "-1", "0")
        expect_err("unknown blob -> ENOENT", r, "ENOENT", "not found")
        down = "127.0.0.1:%d" % free_port()
        r = tool("resolve", down + "/x/y:1", plain=down)
        expect_err("registry down -> EHOSTDOWN", r, "EHOSTDOWN",
                   "registry %s unreachable" % down)

        # --- basic auth ---
        bimg = "%s/test/busybox:latest" % B.host
        r = run("resolve", bimg)
        expect_err("basic: no credentials -> EACCES", r, "EACCES", "no credentials")
        r = run("resolve", bimg, creds=["%s=%s:wrong" % (B.host, USER)])
        expect_err("basic: wrong password -> EACCES", r, "EACCES", B.host)
        check("basic: password not in message", "wrong" not in r.err, r)
        r = run("-n", "2", "resolve", bimg, creds=[good_b])
        check("basic: resolve", r.rc == 0 and r.text.count(digest) == 2, r)
        r = run("blob", bimg, layer["digest"], str(layer["size"]), "0", creds=[good_b])
        check("basic: blob", r.rc == 0 and len(r.out) == layer["size"], r)
        r = run("resolve", bimg, creds=["%s=%s:%s" % (P.host, USER, PASS)])
        expect_err("basic: credentials of another host are not used", r, "EACCES")

        # --- copy to the token registry (push with a pull,push token) ---
        timg = "%s/copy/busybox:v1" % T.host
        r = run("copy", img, timg, creds=[good_t])
        check("token: copy plain -> token registry", r.rc == 0 and digest in r.text, r)
        log = P.log_text()
        fetched = all('"GET /v2/test/busybox/blobs/%s HTTP/1.1" 200' % d in log
                      for d in (layer["digest"], config["digest"]))
        check("source access log shows our blob GETs",
              fetched and "vplcell-registry-client" in log)
        p = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", "--creds",
                            "%s:%s" % (USER, PASS), "docker://" + timg], capture_output=True)
        check("skopeo reads the copied image",
              p.returncode == 0 and "sha256:" + hashlib.sha256(p.stdout).hexdigest() == digest,
              p.stderr[-300:])
        p = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--creds",
                            "%s:%s" % (USER, PASS), "docker://" + timg], capture_output=True)
        check("skopeo inspect of the copy", p.returncode == 0, p.stderr[-300:])

        before = T.token_server.requests
        r = run("-n", "4", "resolve", timg, creds=[good_t])
        check("token: resolve 4 times", r.rc == 0 and r.text.count(digest) == 4, r)
        check("token: one token for 4 resolves (cache)",
              T.token_server.requests - before == 1, T.token_server.requests - before)
        r = run("blob", timg, layer["digest"], str(layer["size"]), "0", creds=[good_t])
        check("token: blob", r.rc == 0 and len(r.out) == layer["size"], r)
        r = run("resolve", timg, creds=["%s=%s:bad" % (T.host, USER)])
        expect_err("token: wrong password -> EACCES", r, "EACCES", "refused")
        r = run("resolve", timg)
        expect_err("token: anonymous -> EACCES", r, "EACCES")
        r = run("copy", img, "%s/copy/other:v1" % T.host)
        expect_err("token: anonymous push -> EACCES", r, "EACCES")

        # --- manifest list: two platforms ---
        multi = "%s/test/multi" % P.host
        r = run("copy", img, multi + ":base")
        check("copy within the plain registry", r.rc == 0, r)
        cfg_file = os.path.join(work, "config.json")
        r = run("blob", img, config["digest"], str(config["size"]), "0", stdout_file=cfg_file)
        cfg = json.load(open(cfg_file))
        cfg["architecture"] = other
        ocfg = os.path.join(work, "config-other.json")
        with open(ocfg, "w") as f:
            json.dump(cfg, f)
        r = run("put-blob", multi + ":x", ocfg)
        check("put-blob (other-arch config)", r.rc == 0 and r.text.startswith("sha256:"), r)
        ocfg_d = r.text.strip()
        oman = dict(man, config=dict(config, digest=ocfg_d, size=os.path.getsize(ocfg)))
        omf = os.path.join(work, "manifest-other.json")
        with open(omf, "w") as f:
            json.dump(oman, f)
        r = run("put-manifest", multi + ":" + other, OCI_MANIFEST, omf)
        check("put-manifest (other arch)", r.rc == 0, r)
        oman_d = r.text.strip()

        def index(entries):
            return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d, "size": s,
                 "platform": {"os": "linux", "architecture": a}} for d, s, a in entries]}

        both = os.path.join(work, "index-both.json")
        with open(both, "w") as f:
            json.dump(index([(oman_d, os.path.getsize(omf), other),
                             (digest, len(mbody), arch)]), f)
        r = run("put-manifest", multi + ":multi", OCI_INDEX, both)
        check("put-manifest (index of two platforms)", r.rc == 0, r)
        r = run("manifest", multi + ":multi")
        check("raw index fetch", r.rc == 0 and r.text.startswith(OCI_INDEX), r)
        r = run("resolve", multi + ":multi")
        check("index: selects the host's platform (%s)" % plat,
              r.rc == 0 and r.text.split()[1] == digest, r)
        r = run("-a", other, "resolve", multi + ":multi")
        check("index: -a %s selects the other" % other,
              r.rc == 0 and r.text.split()[1] == oman_d, r)
        only = os.path.join(work, "index-only.json")
        with open(only, "w") as f:
            json.dump(index([(oman_d, os.path.getsize(omf), other)]), f)
        r = run("put-manifest", multi + ":only-" + other, OCI_INDEX, only)
        check("put-manifest (index of the other platform only)", r.rc == 0, r)
        r = run("resolve", multi + ":only-" + other)
        expect_err("index without our platform -> ENOTSUP", r, "ENOTSUP", plat,
                   "linux/" + other)
        r = run("-a", other, "-v", "v9", "resolve", multi + ":multi")
        expect_err("wanted variant missing -> ENOTSUP", r, "ENOTSUP")

        # --- corruption (last: it spoils the shared layer in P's storage) ---
        path = P.blob_path(layer["digest"])
        with open(path, "r+b") as f:
            f.seek(layer["size"] // 2)
            b = f.read(1)
            f.seek(layer["size"] // 2)
            f.write(bytes([b[0] ^ 0xFF]))
        r = run("blob", img, layer["digest"], str(layer["size"]), "0")
        expect_err("corrupted blob -> EBADMSG", r, "EBADMSG", "corrupt")
        r = run("copy", img, "%s/copy/corrupt:v1" % T.host, creds=[good_t])
        expect_err("copy of a corrupted image fails", r, "EBADMSG")
        r = run("resolve", "%s/copy/corrupt:v1" % T.host, creds=[good_t])
        expect_err("...and leaves no manifest behind", r, "ENOENT")
        mpath = P.blob_path(digest)
        at = mbody.index(layer["digest"].encode()) + len(layer["digest"]) - 1
        with open(mpath, "r+b") as f:  # still valid JSON, so the registry serves it
            f.seek(at)
            f.write(b"0" if mbody[at:at + 1] != b"0" else b"1")
        r = run("resolve", "%s/test/busybox@%s" % (P.host, digest))
        expect_err("corrupted manifest -> EBADMSG", r, "EBADMSG")

        r = run("resolve", "%s/test/busybox:latest" % P.host, creds=[good_t])
        check("sanitizer-clean run", sanitizer_clean(r), r)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)
