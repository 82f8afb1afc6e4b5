#!/usr/bin/env python3
"""Image pull time: `vpl-jail image pull` (our libcurl + gRPC pull) against
`ctr images pull` of the same image from the same local registry, in the same
run. Each pull goes into a fresh private containerd (empty content store and
snapshots), alternating the two tools, ROUNDS times. Prints the medians and
their ratio. Target (issue "Images"): ratio <= 1.5."""
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "images"))
from registry_fixture import Registry  # noqa

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
BUILD = os.environ.get("VPL_BUILD", "build")


def sh(c):
    return subprocess.run(c, shell=True, check=True, capture_output=True, text=True)


def one(tool, host):
    ctd = tempfile.mkdtemp(prefix="vplbench-pull-")
    sh(f"{ROOT}/scripts/containerd-test.sh start {ctd}")
    try:
        env = dict(p.split("=", 1) for p in shlex.split(
            sh(f"{ROOT}/scripts/containerd-test.sh env {ctd}").stdout.replace("export ", "")))
        conf = os.path.join(ctd, "pull.conf")
        with open(conf, "w") as f:
            f.write(f"CONTAINERD_SOCKET={env['CTR_SOCKET']}\n"
                    f"CONTAINERD_NAMESPACE={env['CTR_NAMESPACE']}\n"
                    f"LOCAL_REGISTRY={host}\nURLPATH=/bench\n")
        os.chmod(conf, 0o600)
        if tool == "ctr":
            cmd = (f"ctr -a {env['CTR_SOCKET']} -n {env['CTR_NAMESPACE']} images pull "
                   f"--plain-http {host}/minivpl:latest")
        else:
            cmd = f"{ROOT}/{BUILD}/vpl-jail -f {conf} image pull minivpl"
        t0 = time.monotonic()
        sh(cmd)
        return time.monotonic() - t0
    finally:
        sh(f"{ROOT}/scripts/containerd-test.sh stop {ctd}")
        sh(f"rm -rf {ctd}")


def main():
    tar = sh(f"{ROOT}/images/minivpl/build.sh").stdout.strip().splitlines()[-1]
    with Registry() as reg:
        sh(f"skopeo copy -q oci-archive:{tar} docker://{reg.host}/minivpl:latest "
           "--dest-tls-verify=false")
        times = {"ctr": [], "vpl-jail": []}
        for _ in range(ROUNDS):
            for tool in ("ctr", "vpl-jail"):
                times[tool].append(one(tool, reg.host))
    mc, mv = statistics.median(times["ctr"]), statistics.median(times["vpl-jail"])
    size = os.path.getsize(tar) >> 20
    print(f"pull of minivpl ({size} MiB compressed) from a local registry, {ROUNDS} rounds")
    print(f"  ctr images pull : " + " ".join(f"{t:.2f}" for t in times["ctr"]) +
          f"  median {mc:.2f} s")
    print(f"  vpl-jail pull   : " + " ".join(f"{t:.2f}" for t in times["vpl-jail"]) +
          f"  median {mv:.2f} s")
    print(f"  ratio vpl-jail/ctr = {mv / mc:.2f} (target <= 1.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
