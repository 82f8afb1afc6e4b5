#!/usr/bin/env python3
"""What privilege separation costs (issue 9, docs/security.md).

Two workers on one private containerd, in the same run: PRIVSEP=0 (one process, the
baseline) and PRIVSEP=1 (parser + keeper, the default). Measured interleaved, in blocks, so
the machine's noise falls on both alike:

  - `available`: an RPC the parser answers alone (TLS off, plain HTTP on loopback);
  - a batch task: `request` (a shell script that prints a line) -> `getresult` polled every
    20 ms, end to end: the files cross the channel to the keeper, the outputs come back;
  - keystroke echo: one interactive task per worker (bench/interactive.py's C program blocked
    on stdin, the tty echoing), a character sent on the execute socket and timed until its
    echo is back: each keystroke crosses the channel twice under privsep;
  - memory: VmRSS and PSS of each worker's processes, idle, after the runs.

Prints p50/p99 of each and the ratios privsep / one process. Asserts no timing. Needs what
bench/interactive.py needs. Environment: VPL_BUILD (build), BENCH_N (200 RPCs, 40 tasks),
BENCH_KEYS (300).
"""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import interactive as ib  # noqa: E402
from interactive import Client, containerd_start, containerd_stop, http, Jail  # noqa: E402

BUILD = os.environ.get("VPL_BUILD", "build")
N = int(os.environ.get("BENCH_N", "200"))
NKEYS = int(os.environ.get("BENCH_KEYS", "300"))
PV = 2026012812


def rpc(j, method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    r = http(j.port, "POST", j.urlpath, body)
    if r.status != 200:
        raise RuntimeError(f"{method}: {r.status} {r.text()[:300]}")
    return json.loads(r.body)["result"]


def t_available(j):
    t0 = time.perf_counter()
    rpc(j, "available", {"maxmemory": 1 << 20})
    return time.perf_counter() - t0


def t_task(j):
    files = {"vpl_run.sh": "#!/bin/bash\necho hello from the task\n"}
    t0 = time.perf_counter()
    r = rpc(j, "request", {"files": files, "fileencoding": {"vpl_run.sh": 0},
                           "filestodelete": {}, "execute": "vpl_run.sh", "interactive": 0,
                           "lang": "en_US.UTF-8", "maxtime": 30, "maxmemory": 256 << 20,
                           "maxfilesize": 64 << 20, "maxprocesses": 64, "pluginversion": PV})
    while True:
        body = json.dumps({"method": "getresult", "params": {
            "adminticket": r["adminticket"], "pluginversion": PV}, "id": "1"}).encode()
        g = http(j.port, "POST", j.urlpath, body)
        if g.status == 200:
            out = json.loads(g.body)["result"]
            if "hello from the task" not in out["compilation"]:
                raise RuntimeError(f"task: {out}")
            return time.perf_counter() - t0
        time.sleep(0.02)


def terminal(c, j, sid):
    ib.Env.j = j
    r = ib.request(600)
    c.open("m" + sid, ib.url(r["monitorticket"], "monitor"))
    ib.wait_text(c, "m" + sid, "run:terminal")
    c.open(sid, ib.url(r["executionticket"], "execute"))
    ib.wait_text(c, sid, "READY")
    return r


def mem(j):
    ps = ib.worker_pids(j.proc.pid)
    return sum(ib.status_kb(p) for p in ps), sum(ib.pss_kb(p) for p in ps), len(ps)


def q(xs):
    return ib.pct(xs, 50) * 1e3, ib.pct(xs, 99) * 1e3


def main():
    ib.log(f"bench/privsep.py  commit {ib.commit()}  build {BUILD}  "
           f"{time.strftime('%Y-%m-%d %H:%M')}  cpus {os.cpu_count()}  "
           f"load {open('/proc/loadavg').read().split()[:3]}")
    ib.wsclient.ensure_ws()
    ctd = tempfile.mkdtemp(prefix="vplbench-ctd-")
    env = containerd_start(ctd)
    jails = {}
    try:
        tar = subprocess.run([f"{ib.ROOT}/images/minivpl/build.sh"], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(["ctr", "-a", env["CTR_SOCKET"], "-n", env["CTR_NAMESPACE"], "images",
                        "import", tar], check=True, capture_output=True)
        for name, ps, base in (("one", 0, 80000), ("privsep", 1, 81000)):
            jails[name] = Jail(CONTAINERD_SOCKET=env["CTR_SOCKET"],
                               CONTAINERD_NAMESPACE=env["CTR_NAMESPACE"],
                               HELPER_PATH=os.path.join(ib.ROOT, BUILD, "vplhelper"),
                               STATE_DIR=tempfile.mkdtemp(prefix="vplbench-state-"),
                               DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                               WORKER_ID=f"{name[0]}{os.getpid() % 10000}", LOGLEVEL=4,
                               POOL_SIZE=2, PRIVSEP=ps, PRISONER_UID=base, PRISONER_UIDS=500)
        n = {k: len(ib.worker_pids(j.proc.pid)) for k, j in jails.items()}
        if n != {"one": 1, "privsep": 2}:
            raise RuntimeError(f"worker processes: {n}")
        res = {k: {"available": [], "task": [], "echo": []} for k in jails}
        for _ in range(5):  # warm-up: pools filled, paths hot
            for j in jails.values():
                t_available(j), t_task(j)
        for b in range(0, N, 20):
            for k, j in jails.items():
                res[k]["available"] += [t_available(j) for _ in range(20)]
        for b in range(0, N // 5, 4):
            for k, j in jails.items():
                res[k]["task"] += [t_task(j) for _ in range(4)]
        tickets = []
        with Client() as c:
            for k, j in jails.items():
                tickets.append((j, terminal(c, j, k)))
            for i in range(20):
                for k in jails:
                    ib.ws_key(c, k, ib.KEYS[i % 26])
            for b0 in range(0, NKEYS, 50):
                for k in jails:
                    res[k]["echo"] += [ib.ws_key(c, k, ib.KEYS[i % 26])
                                       for i in range(b0, min(b0 + 50, NKEYS))]
            for k in jails:
                c.close(k)
        time.sleep(1)
        m = {k: mem(j) for k, j in jails.items()}
        ib.log("p50 / p99 in ms; ratio = privsep / one process")
        for what, label in (("available", f"`available` RPC (N={len(res['one']['available'])})"),
                            ("task", f"batch task request->result (N={len(res['one']['task'])})"),
                            ("echo", f"keystroke echo (N={len(res['one']['echo'])})")):
            a, p = q(res["one"][what]), q(res["privsep"][what])
            ib.log(f"  {label:44s} one {a[0]:8.2f} / {a[1]:8.2f}   privsep {p[0]:8.2f} / "
                   f"{p[1]:8.2f}   ratio p50 {p[0] / a[0]:5.2f}  p99 {p[1] / a[1]:5.2f}")
        for k in jails:
            ib.log(f"  memory, {k:8s}: {m[k][2]} process(es), VmRSS {m[k][0] / 1024:.1f} MiB, "
                   f"PSS {m[k][1] / 1024:.1f} MiB")
        ib.log(f"  memory ratio privsep / one: RSS {m['privsep'][0] / m['one'][0]:.2f}, "
               f"PSS {m['privsep'][1] / m['one'][1]:.2f}")
    finally:
        for k, j in jails.items():
            ib.log(f"  {k} worker stopped rc={j.stop()}")
        containerd_stop(ctd)


if __name__ == "__main__":
    main()
