#!/usr/bin/env python3
"""Worker memory with many tasks in flight (containers and shims excluded).

Starts N tasks whose program sleeps, waits until all of them run, and reads
the worker's own VmRSS from /proc. Baseline in the same run: the idle
worker's VmRSS before the first task. Target: <= 40 MB at N = 100."""
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
from harness import Jail, http  # noqa

N = int(os.environ.get("BENCH_TASKS", "100"))


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ctd = tempfile.mkdtemp(prefix="vplbench-ctd-")
    sh = lambda c: subprocess.run(c, shell=True, check=True, capture_output=True, text=True)
    sh(f"{ROOT}/scripts/containerd-test.sh start {ctd}")
    env = dict(p.split("=", 1) for p in shlex.split(
        sh(f"{ROOT}/scripts/containerd-test.sh env {ctd}").stdout.replace("export ", "")))
    try:
        tar = sh(f"{ROOT}/images/minivpl/build.sh").stdout.strip().splitlines()[-1]
        sh(f"ctr -a {env['CTR_SOCKET']} -n {env['CTR_NAMESPACE']} images import {tar}")
        j = Jail(CONTAINERD_SOCKET=env["CTR_SOCKET"], CONTAINERD_NAMESPACE=env["CTR_NAMESPACE"],
                 DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                 HELPER_PATH=os.path.join(ROOT, "build", "vplhelper"),
                 STATE_DIR=tempfile.mkdtemp(prefix="vplbench-state-"), LOGLEVEL=4,
                 MAX_TASKS=N + 10, MAXTIME=600)
        try:
            time.sleep(0.5)
            base = rss_kb(j.proc.pid)
            script = ("#!/bin/bash\nprintf '#!/bin/bash\\nsleep 300\\n' > vpl_execution\n"
                      "chmod +x vpl_execution\n")
            tickets = []
            t0 = time.time()
            for _ in range(N):
                body = json.dumps({"method": "request", "params": {
                    "files": {"vpl_evaluate.sh": script}, "execute": "vpl_evaluate.sh",
                    "interactive": 0, "maxtime": 600}, "id": "r"}).encode()
                r = http(j.port, "POST", j.urlpath, body)
                tickets.append(json.loads(r.body)["result"]["adminticket"])
            # All running: each has its program started (the run phase).
            out = ""
            while time.time() - t0 < 300:
                out = subprocess.run(["ps", "-eo", "args"], capture_output=True,
                                     text=True).stdout
                if out.count("sleep 300") >= N:
                    break
                time.sleep(0.5)
            peak = rss_kb(j.proc.pid)
            print(f"{N} tasks in flight ({out.count('sleep 300')} programs running after "
                  f"{time.time() - t0:.1f} s): worker VmRSS {peak / 1024:.1f} MiB, idle "
                  f"baseline {base / 1024:.1f} MiB, {(peak - base) / N:.0f} KiB per task "
                  f"(target <= 40 MB total)")
            for t in tickets:
                http(j.port, "POST", j.urlpath, json.dumps(
                    {"method": "stop", "params": {"adminticket": t}, "id": "s"}).encode())
        finally:
            j.stop()
    finally:
        subprocess.run([f"{ROOT}/scripts/containerd-test.sh", "stop", ctd])


if __name__ == "__main__":
    main()
