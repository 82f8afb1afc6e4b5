"""oci_variants - variants of the busybox test image (scripts/build-test-image.sh), built
without a container engine, for the pull tests.

    from oci_variants import Variants
    V = Variants(busybox_tarball)               # extracts the OCI layout once (temp dir)
    ref, info = V.variant("v2", {"marker.txt": b"v2\n"})
        ref   "oci:/tmp/.../v2:latest"  (for `skopeo copy REF docker://...`)
        info  {"manifest": digest, "config": digest, "layers": [digest, ...], "new_layers": [...],
               "dir": layout dir}
    ref, info = V.platform_list("multi", {"amd64": {...files...}, "arm64": {...}})
        an OCI image index with one manifest per architecture (push with `skopeo copy --all`)
    V.cleanup()

Each new layer is a gzip tar built deterministically (sorted entries, mtime 0, uid/gid 0, mode
0644 for files / 0755 for directories, gzip mtime 0): the same files give the same digest. The
config gets the layer's diff_id (sha256 of the uncompressed tar) and a history entry; the
manifest and index.json are rewritten. Blobs of the base are hard links (or copies) into each
variant's own layout dir.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile

MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files):
    """files: {path: bytes}; returns (uncompressed tar bytes, gzip bytes)."""
    raw = io.BytesIO()
    dirs = set()
    for p in files:
        parts = p.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name in sorted(dirs | {p.strip("/") for p in files}):
            ti = tarfile.TarInfo(name)
            ti.mtime = 0
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            if name in dirs:
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                tf.addfile(ti)
            else:
                data = files.get(name, files.get("/" + name))
                ti.size = len(data)
                ti.mode = 0o644
                tf.addfile(ti, io.BytesIO(data))
    tar = raw.getvalue()
    gz = io.BytesIO()
    # compresslevel 1: the 3 MB random layer of the size test is not compressible anyway
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0, compresslevel=1) as g:
        g.write(tar)
    return tar, gz.getvalue()


class Variants:
    def __init__(self, busybox_tarball):
        self.tmp = tempfile.mkdtemp(prefix="vplcell-variants-")
        self.base = os.path.join(self.tmp, "base")
        os.makedirs(self.base)
        with tarfile.open(busybox_tarball) as tf:
            tf.extractall(self.base)
        idx = self._json(self.base, "index.json")
        self.base_manifest_digest = idx["manifests"][0]["digest"]
        self.base_manifest = json.loads(self._blob(self.base, self.base_manifest_digest))
        self.base_config = json.loads(self._blob(self.base,
                                                 self.base_manifest["config"]["digest"]))
        self.base_layers = [l["digest"] for l in self.base_manifest["layers"]]
        self.arch = self.base_config["architecture"]

    # ---- layout helpers ----
    @staticmethod
    def _json(d, name):
        with open(os.path.join(d, name)) as f:
            return json.load(f)

    @staticmethod
    def _blob(d, digest):
        with open(os.path.join(d, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
            return f.read()

    @staticmethod
    def _put(d, data):
        dg = sha256(data)
        p = os.path.join(d, "blobs", "sha256", dg.split(":", 1)[1])
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(data)
        return dg, len(data)

    def _new_layout(self, name):
        d = os.path.join(self.tmp, name)
        if os.path.exists(d):
            shutil.rmtree(d)
        os.makedirs(os.path.join(d, "blobs", "sha256"))
        src = os.path.join(self.base, "blobs", "sha256")
        for b in os.listdir(src):
            try:
                os.link(os.path.join(src, b), os.path.join(d, "blobs", "sha256", b))
            except OSError:
                shutil.copy2(os.path.join(src, b), os.path.join(d, "blobs", "sha256", b))
        with open(os.path.join(d, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        return d

    def _image(self, d, layers_files, arch=None):
        """Writes config + manifest for base + one new layer per entry of layers_files;
        returns (manifest digest, size, info)."""
        config = json.loads(json.dumps(self.base_config))
        manifest = json.loads(json.dumps(self.base_manifest))
        new = []
        for files in layers_files:
            tar, gz = layer_tar(files)
            ldg, lsz = self._put(d, gz)
            config["rootfs"]["diff_ids"].append(sha256(tar))
            config.setdefault("history", []).append(
                {"created_by": "tests/images/oci_variants.py: " + ",".join(sorted(files))})
            manifest["layers"].append({"mediaType": MT_LAYER, "digest": ldg, "size": lsz})
            new.append(ldg)
        if arch:
            config["architecture"] = arch
        cdg, csz = self._put(d, json.dumps(config, sort_keys=True).encode())
        manifest["config"] = {"mediaType": MT_CONFIG, "digest": cdg, "size": csz}
        mdg, msz = self._put(d, json.dumps(manifest, sort_keys=True).encode())
        info = {"manifest": mdg, "config": cdg,
                "layers": [l["digest"] for l in manifest["layers"]], "new_layers": new,
                "dir": d, "size": csz + sum(l["size"] for l in manifest["layers"])}
        return mdg, msz, info

    @staticmethod
    def _index(d, entries, tag):
        with open(os.path.join(d, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [
                dict(e, annotations={"org.opencontainers.image.ref.name": tag})
                for e in entries]}, f)

    # ---- public ----
    def variant(self, name, *layers, tag="latest"):
        """Busybox + one new layer per dict of {path: bytes} given."""
        d = self._new_layout(name)
        mdg, msz, info = self._image(d, [dict(l) for l in layers])
        self._index(d, [{"mediaType": MT_MANIFEST, "digest": mdg, "size": msz,
                         "platform": {"architecture": self.arch, "os": "linux"}}], tag)
        return "oci:%s:%s" % (d, tag), info

    def platform_list(self, name, per_arch, tag="latest"):
        """per_arch: {arch: {path: bytes}}; an image index with one manifest per architecture
        (each busybox + its own layer; the config says that architecture)."""
        d = self._new_layout(name)
        entries, infos = [], {}
        for arch, files in per_arch.items():
            mdg, msz, info = self._image(d, [dict(files)], arch=arch)
            infos[arch] = info
            entries.append({"mediaType": MT_MANIFEST, "digest": mdg, "size": msz,
                            "platform": {"architecture": arch, "os": "linux"}})
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": entries}
        idg, isz = self._put(d, json.dumps(index, sort_keys=True).encode())
        self._index(d, [{"mediaType": MT_INDEX, "digest": idg, "size": isz}], tag)
        return "oci:%s:%s" % (d, tag), {"index": idg, "per_arch": infos, "dir": d}

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
