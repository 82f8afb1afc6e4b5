#!/usr/bin/env python3
"""Interactive sessions: keystroke echo latency and the memory of idle sessions.

1. Keystroke echo. One interactive task whose vpl_execution is a tiny C program (compiled by
   gcc in the task's compile script) that prints READY and then blocks reading stdin with the
   tty in its default cooked mode, so the pty's line discipline echoes every typed character
   at once (that echo is what a student sees). One character at a time is sent on the execute
   socket (through tests/interactive/wsclient.js, Node's `ws`) and timed with perf_counter
   until its echo frame is back in Python. Baselines in the same run, interleaved in blocks:
     - pty: the same program compiled on the host under pty.fork; a character is written to
       the master and timed until it is read back (no WebSocket, no Node);
     - ws echo: bench/ws_echo_server.js (same `ws` package) echoing each frame, driven through
       the same wsclient.js process, so Python -> Node -> WebSocket -> Node -> Python is in
       both and the ratio isolates the worker + container path.
   Prints p50/p99 of each and the ratios.

2. Idle sessions. A worker with MAX_TASKS=260 per configuration (POOL_SIZE, SHIM_GROUP_SIZE);
   N interactive sessions (request + monitor socket + execute socket, program = the same C
   program blocked on stdin), started at most CONC at a time; once all are attached and idle:
     - worker: VmRSS (and PSS) of the worker, minus the same before the first request;
     - shims: RSS and PSS of every containerd-shim of this containerd (matched on its
       `-address <socket>` argument, as scripts/containerd-test.sh does), minus before;
     - containers: the tasks' memory cgroups (cgroupsPath /vplcell/vplcell-<worker>-<seq>;
       cgroup v1 memory.usage_in_bytes on this hybrid host, memory.current on v2) and the
       PSS of their processes (/proc/<pid>/smaps_rollup);
     - containerd's own RSS growth, for information (not part of the per-session sum).
   Per session: (worker delta + shim delta + container total) / N. Then every session is
   closed, the worker stopped (rc 0 expected) and no container or shim may be left.

Needs root, containerd + runc (scripts/containerd-test.sh installs them), the minivpl image
(images/minivpl/build.sh), node + npm (`ws` is installed once, see tests/interactive/wsclient.py).
Environment: VPL_BUILD (build dir, default build), BENCH_KEYS (500), BENCH_SESSIONS (200),
BENCH_CONC (16), BENCH_CONFIGS ("0:16,0:1,2:16" = POOL_SIZE:SHIM_GROUP_SIZE list),
BENCH_ONLY (echo | idle), BENCH_MAXPROC (maxprocesses of each request, 2000: see MAXPROC),
BENCH_LOGLEVEL (worker LOGLEVEL, 4). Prints; asserts no timing.
"""
import glob
import json
import os
import pty
import queue
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interactive"))
from harness import Jail, containerd_start, containerd_stop, http  # noqa: E402
import wsclient  # noqa: E402
from wsclient import WsClient  # noqa: E402

BUILD = os.environ.get("VPL_BUILD", "build")
NKEYS = int(os.environ.get("BENCH_KEYS", "500"))
NSESS = int(os.environ.get("BENCH_SESSIONS", "200"))
CONC = int(os.environ.get("BENCH_CONC", "16"))
CONFIGS = [tuple(int(x) for x in c.split(":")) for c in
           os.environ.get("BENCH_CONFIGS", "0:16,0:1,2:16").split(",") if c]
ONLY = os.environ.get("BENCH_ONLY", "")
PV = 2026012812
# RLIMIT_NPROC (= maxprocesses) counts every process of the prisoner uid on the host, and all
# tasks share that uid (oci_spec.h): with 64, concurrent compiles fail with "vfork: Resource
# temporarily unavailable" once ~15 sessions exist. The pids cgroup still bounds each task.
MAXPROC = int(os.environ.get("BENCH_MAXPROC", "2000"))  # and the worker's MAXPROCESSES

# READY, then block reading stdin (cooked mode: the tty echoes, read() returns per line).
PROG_C = r'''#include <stdio.h>
#include <unistd.h>
int main(void) {
    char b[4096];
    printf("READY\n");
    fflush(stdout);
    while (read(0, b, sizeof b) > 0)
        ;
    return 0;
}
'''
COMPILE = ("#!/bin/bash\ngcc -O2 -o idle idle.c\n"
           "printf '#!/bin/bash\\nexec ./idle\\n' > vpl_execution\nchmod +x vpl_execution\n")
KEYS = "abcdefghijklmnopqrstuvwxyz"


def log(*a):
    print(*a, flush=True)


def commit():
    """The checked-out commit, read from .git (no git command)."""
    try:
        g = os.path.join(ROOT, ".git")
        head = open(os.path.join(g, "HEAD")).read().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head[5:]
        p = os.path.join(g, ref)
        if os.path.exists(p):
            return open(p).read().strip()[:7]
        for line in open(os.path.join(g, "packed-refs")):
            if line.strip().endswith(" " + ref):
                return line.split()[0][:7]
    except OSError:
        pass
    return "unknown"


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


# ---------------------------------------------------------------- /proc helpers

def status_kb(pid, key="VmRSS:"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def shims(sock):
    """Pids of the containerd shims of the containerd at sock."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "containerd-shim" in cmd.split(" ")[0] and f"-address {sock} " in cmd:
            out.append(int(p))
    return out


def shim_arg(pid, name):
    try:
        a = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        return a[a.index(name.encode()) + 1].decode()
    except (OSError, ValueError, IndexError):
        return ""


def cgroup_dirs(worker):
    """The memory cgroups of this worker's containers: v1 memory hierarchy, or v2."""
    pats = [f"/sys/fs/cgroup/memory/vplcell/vplcell-{worker}-*",
            f"/sys/fs/cgroup/vplcell/vplcell-{worker}-*",
            f"/sys/fs/cgroup/unified/vplcell/vplcell-{worker}-*"]
    for pat in pats:
        d = [x for x in glob.glob(pat) if os.path.isdir(x)]
        if d and (os.path.exists(os.path.join(d[0], "memory.usage_in_bytes")) or
                  os.path.exists(os.path.join(d[0], "memory.current"))):
            return d
    return []


def cgroup_mem(d):
    """(usage bytes, memory.stat dict, pids) of one cgroup."""
    for name in ("memory.usage_in_bytes", "memory.current"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            usage = int(open(p).read())
            break
    else:
        usage = 0
    st = {}
    try:
        for line in open(os.path.join(d, "memory.stat")):
            k, v = line.split()
            st[k] = int(v)
    except OSError:
        pass
    pids = [int(x) for x in open(os.path.join(d, "cgroup.procs")).read().split()]
    return usage, st, pids


def worker_pids(pid):
    """The worker's processes: the keeper and, under privsep, its parser (docs/security.md)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [pid] + [int(x) for x in f.read().split()]
    except OSError:
        return [pid]


def snapshot(j, sock, worker, ctd_pid):
    """Everything measured at one moment (kB)."""
    sp = shims(sock)
    wp = worker_pids(j.proc.pid)
    s = {"worker_rss": sum(status_kb(p) for p in wp), "worker_pss": sum(pss_kb(p) for p in wp),
         "shims": len(sp), "shim_rss": sum(status_kb(p) for p in sp),
         "shim_pss": sum(pss_kb(p) for p in sp),
         "ctd_rss": status_kb(ctd_pid) if ctd_pid else 0,
         "shim_ids": len(set(shim_arg(p, "-id") for p in sp))}
    cg = cgroup_dirs(worker)
    s["cgroups"] = len(cg)
    s["one"] = ""
    if cg:  # what one container holds: its processes and their PSS
        _, _, pids = cgroup_mem(sorted(cg)[-1])
        s["one"] = ", ".join(
            f"{open(f'/proc/{p}/comm').read().strip()} {pss_kb(p)} kB" for p in pids
            if os.path.exists(f"/proc/{p}/comm"))
    usage = procs = cpss = crss = 0
    stat = {}
    for d in cg:
        u, st, pids = cgroup_mem(d)
        usage += u
        for k, v in st.items():
            stat[k] = stat.get(k, 0) + v
        procs += len(pids)
        cpss += sum(pss_kb(p) for p in pids)
        crss += sum(status_kb(p) for p in pids)
    s.update(cg_usage=usage // 1024, cg_stat={k: v // 1024 for k, v in stat.items()
                                              if k in ("rss", "cache", "shmem", "mapped_file",
                                                       "kernel_stack", "anon", "file", "kernel",
                                                       "sock", "slab")},
             cg_procs=procs, cg_pss=cpss, cg_rss=crss)
    return s


# ---------------------------------------------------------------- worker helpers

class Env:
    j = None


def rpc(method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    r = http(Env.j.port, "POST", Env.j.urlpath, body)
    if r.status != 200:
        raise RuntimeError(f"{method}: {r.status} {r.text()[:300]}")
    return json.loads(r.body)["result"]


def request(maxtime):
    files = {"idle.c": PROG_C, "vpl_run.sh": COMPILE}
    return rpc("request", {
        "files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
        "execute": "vpl_run.sh", "interactive": 1, "lang": "en_US.UTF-8",
        "maxtime": maxtime, "maxmemory": 256 << 20, "maxfilesize": 64 << 20,
        "maxprocesses": MAXPROC, "pluginversion": PV})


def url(ticket, what):
    return f"ws://127.0.0.1:{Env.j.port}/{ticket}/{what}"


class Client(WsClient):
    """WsClient with a lock on its command pipe (two threads send commands)."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()

    def cmd(self, **c):
        with self.lock:
            super().cmd(**c)


def next_event(c, sid, timeout):
    """The next event of sid from the queue (others are kept in c.events)."""
    deadline = time.perf_counter() + timeout
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise RuntimeError(f"{sid}: no event in {timeout} s")
        e = c.q.get(timeout=left)
        if e is None:
            raise RuntimeError("wsclient ended")
        if e.get("id") == sid:
            return e
        c.events.append(e)


def wait_text(c, sid, needle, timeout=120):
    got = ""
    while needle not in got:
        e = next_event(c, sid, timeout)
        if e["ev"] in ("close", "unexpected", "error"):
            raise RuntimeError(f"{sid}: {e} before {needle!r}; got {got!r}")
        got += e.get("text", "")
    return got


# ---------------------------------------------------------------- 1. keystroke echo

class PtyEcho:
    def __init__(self, binary):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execv(binary, [binary])
        self.read_until(b"READY")

    def read_until(self, needle, timeout=10):
        got = b""
        while needle not in got:
            r, _, _ = select.select([self.fd], [], [], timeout)
            if not r:
                raise RuntimeError(f"pty: no {needle!r}, got {got!r}")
            got += os.read(self.fd, 4096)
        return got

    def key(self, ch):
        b = ch.encode()
        t0 = time.perf_counter()
        os.write(self.fd, b)
        self.read_until(b)
        return time.perf_counter() - t0

    def close(self):
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


def ws_key(c, sid, ch):
    t0 = time.perf_counter()
    c.send(sid, text=ch)
    got = ""
    while ch not in got:
        e = next_event(c, sid, 10)
        if e["ev"] != "message":
            raise RuntimeError(f"{sid}: {e}")
        got += e.get("text", "")
    return time.perf_counter() - t0


def bench_echo():
    tmp = tempfile.mkdtemp(prefix="vplbench-echo-")
    with open(os.path.join(tmp, "idle.c"), "w") as f:
        f.write(PROG_C)
    subprocess.run(["gcc", "-O2", "-o", os.path.join(tmp, "idle"), os.path.join(tmp, "idle.c")],
                   check=True)
    p = PtyEcho(os.path.join(tmp, "idle"))
    env = dict(os.environ, NODE_PATH=os.path.join(wsclient.NPM_DIR, "node_modules"))
    srv = subprocess.Popen(["node", os.path.join(HERE, "ws_echo_server.js")], env=env,
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    port = json.loads(srv.stdout.readline())["port"]
    r = request(600)
    res = {"pty": [], "ws": [], "jail": []}
    try:
        with Client() as c:
            c.open("e", f"ws://127.0.0.1:{port}/")
            e = next_event(c, "e", 10)
            while e["ev"] == "upgrade":
                e = next_event(c, "e", 10)
            if e["ev"] != "open":
                raise RuntimeError(f"echo server: {e}")
            c.open("m", url(r["monitorticket"], "monitor"))
            t0 = time.time()
            wait_text(c, "m", "run:terminal")
            c.open("x", url(r["executionticket"], "execute"))
            wait_text(c, "x", "READY")
            log(f"echo: terminal ready {time.time() - t0:.1f} s after the request returned")
            # warm-up (not counted), then interleaved blocks of 50
            for i in range(20):
                ch = KEYS[i % len(KEYS)]
                p.key(ch), ws_key(c, "e", ch), ws_key(c, "x", ch)
            block = 50
            for b0 in range(0, NKEYS, block):
                for name, fn in (("pty", p.key), ("ws", lambda ch: ws_key(c, "e", ch)),
                                 ("jail", lambda ch: ws_key(c, "x", ch))):
                    for i in range(b0, min(b0 + block, NKEYS)):
                        res[name].append(fn(KEYS[i % len(KEYS)]))
            c.close("x")
            c.close("e")
            time.sleep(0.5)
    finally:
        p.close()
        srv.stdin.close()
        srv.wait(5)
        try:
            rpc("stop", {"adminticket": r["adminticket"], "pluginversion": PV})
        except Exception:
            pass
    q = {k: (pct(v, 50) * 1e6, pct(v, 99) * 1e6) for k, v in res.items()}
    log(f"keystroke echo, N={NKEYS} each, interleaved blocks of 50 (microseconds):")
    for k, label in (("pty", "local pty echo (host, no WebSocket)"),
                     ("ws", "plain ws echo (Node echo server, same client path)"),
                     ("jail", "vpl-jail execute socket -> pty in container")):
        log(f"  {label:52s} p50 {q[k][0]:8.0f}  p99 {q[k][1]:8.0f}  "
            f"mean {statistics.mean(res[k]) * 1e6:8.0f}")
    log(f"  ratio jail/pty:     p50 {q['jail'][0] / q['pty'][0]:6.1f}  "
        f"p99 {q['jail'][1] / q['pty'][1]:6.1f}")
    log(f"  ratio jail/ws echo: p50 {q['jail'][0] / q['ws'][0]:6.2f}  "
        f"p99 {q['jail'][1] / q['ws'][1]:6.2f}")
    log(f"  jail - ws echo (worker + container path): p50 "
        f"{q['jail'][0] - q['ws'][0]:.0f} us, p99 {q['jail'][1] - q['ws'][1]:.0f} us")


# ---------------------------------------------------------------- 2. idle sessions

class Sessions:
    """Drives N sessions on one Client: a thread dispatches events, opens each execute socket
    as soon as its monitor says run:terminal, and marks a session ready on READY."""

    def __init__(self, c):
        self.c = c
        self.state = {}  # i -> "monitor" | "execute" | "ready" | "failed:..." | "closed"
        self.out = {}
        self.tickets = {}
        self.mtext = {}
        self.cv = threading.Condition()
        self.stop = False
        self.th = threading.Thread(target=self.loop, daemon=True)
        self.th.start()

    def set(self, i, s):
        with self.cv:
            self.state[i] = s
            self.cv.notify_all()

    def loop(self):
        while not self.stop:
            try:
                e = self.c.q.get(timeout=0.2)
            except queue.Empty:
                continue
            if e is None:
                return
            sid = e.get("id", "")
            if not sid[1:].isdigit():
                continue
            i = int(sid[1:])
            st = self.state.get(i, "")
            if e["ev"] in ("close", "unexpected", "error"):
                if st == "closed":
                    pass  # the monitor ends after the terminal
                elif st != "closing" and not st.startswith("failed"):
                    self.set(i, f"failed: {sid} {e['ev']} {e.get('code', e.get('status'))} "
                                f"in state {st}; monitor: {self.mtext.get(i, [])[-4:]}")
                elif sid[0] == "x":
                    self.set(i, "closed")
                continue
            t = e.get("text", "")
            if sid[0] == "m" and t:
                self.mtext.setdefault(i, []).append(t)
            if sid[0] == "m" and t.startswith("run:terminal") and st == "monitor":
                self.set(i, "execute")
                self.c.open(f"x{i}", url(self.tickets[i]["executionticket"], "execute"))
            elif sid[0] == "x" and st == "execute":
                self.out[i] = self.out.get(i, "") + t
                if "READY" in self.out[i]:
                    self.set(i, "ready")

    def start(self, i):
        r = request(3000)
        self.tickets[i] = r
        self.set(i, "monitor")
        self.c.open(f"m{i}", url(r["monitorticket"], "monitor"))

    def count(self, pred):
        with self.cv:
            return sum(1 for s in self.state.values() if pred(s))

    def failed(self):
        return [(i, s) for i, s in self.state.items() if s.startswith("failed")]


def ctr_ls(env, what):
    out = subprocess.run(["ctr", "-a", env["CTR_SOCKET"], "-n", env["CTR_NAMESPACE"], what, "ls",
                          "-q"], capture_output=True, text=True).stdout
    return out.split()


def bench_idle(env, ctd_pid, pool, group, state_dir):
    worker = f"b{os.getpid() % 10000}p{pool}g{group}"
    Env.j = j = Jail(CONTAINERD_SOCKET=env["CTR_SOCKET"],
                     CONTAINERD_NAMESPACE=env["CTR_NAMESPACE"],
                     HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state_dir,
                     DEFAULT_IMAGE="vplcell.local/minivpl:latest", WORKER_ID=worker,
                     MAXTIME=3600, LOGLEVEL=int(os.environ.get("BENCH_LOGLEVEL", "4")), MAX_TASKS=NSESS + 60, POOL_SIZE=pool,
                     MAXPROCESSES=MAXPROC,
                     SHIM_GROUP_SIZE=group)
    log(f"\nidle sessions: POOL_SIZE={pool} SHIM_GROUP_SIZE={group}, N={NSESS}, "
        f"{CONC} starting at a time (worker log {j.logpath})")
    sock = env["CTR_SOCKET"]
    # the pool (if any) fills before the baseline
    deadline = time.time() + 60
    while time.time() < deadline and len(cgroup_dirs(worker)) < pool:
        time.sleep(0.5)
    time.sleep(2)
    before = snapshot(j, sock, worker, ctd_pid)
    rc = None
    try:
        with Client() as c:
            s = Sessions(c)
            t0 = time.time()
            for i in range(NSESS):
                while True:
                    busy = s.count(lambda x: x in ("monitor", "execute"))
                    if busy < CONC:
                        break
                    with s.cv:
                        s.cv.wait(0.2)
                s.start(i)
                if i % 50 == 49:
                    log(f"  {i + 1} requested, {s.count(lambda x: x == 'ready')} ready, "
                        f"{time.time() - t0:.0f} s")
                if s.failed():
                    break
            while time.time() - t0 < 900:
                if s.count(lambda x: x == "ready") + len(s.failed()) >= NSESS:
                    break
                time.sleep(0.2)
            ready = s.count(lambda x: x == "ready")
            t_ready = time.time() - t0
            log(f"  {ready}/{NSESS} sessions attached and idle after {t_ready:.1f} s; "
                f"failed: {s.failed()[:3]}")
            time.sleep(10)  # let the starts' transient memory settle
            after = snapshot(j, sock, worker, ctd_pid)
            report(before, after, ready, pool)
            # close everything: the browser closes each terminal
            t1 = time.time()
            for i in list(s.tickets):
                if s.state.get(i) == "ready":
                    s.set(i, "closing")
                    c.close(f"x{i}")
            while time.time() - t1 < 300:
                if s.count(lambda x: x == "closing") == 0:
                    break
                time.sleep(0.2)
            left_cont = []
            while time.time() - t1 < 300:
                left_cont = ctr_ls(env, "containers")
                if len(left_cont) <= pool:
                    break
                time.sleep(0.5)
            log(f"  closed: terminals {s.count(lambda x: x == 'closed')}, failures "
                f"{len(s.failed())}, "
                f"containers left {len(left_cont)} (pool {pool}) after {time.time() - t1:.1f} s")
            s.stop = True
            for i, r in s.tickets.items():
                if s.state.get(i) != "closed":
                    try:
                        rpc("stop", {"adminticket": r["adminticket"], "pluginversion": PV})
                    except Exception:
                        pass
    finally:
        rc = j.stop()
    t2 = time.time()
    while time.time() - t2 < 60 and (ctr_ls(env, "containers") or shims(sock)):
        time.sleep(0.5)
    log(f"  worker stopped rc={rc}; containers left {len(ctr_ls(env, 'containers'))}, "
        f"tasks left {len(ctr_ls(env, 'tasks'))}, shims left {len(shims(sock))}, "
        f"cgroups left {len(cgroup_dirs(worker))}")
    if rc != 0:
        log(j.read_log()[-3000:])


def report(b, a, n, pool):
    mib = lambda kb: kb / 1024.0
    log(f"  before: worker VmRSS {mib(b['worker_rss']):.1f} MiB (PSS {mib(b['worker_pss']):.1f}),"
        f" {b['shims']} shims RSS {mib(b['shim_rss']):.1f} MiB PSS {mib(b['shim_pss']):.1f} MiB, "
        f"{b['cgroups']} container cgroups {mib(b['cg_usage']):.1f} MiB, "
        f"containerd RSS {mib(b['ctd_rss']):.1f} MiB")
    log(f"  after:  worker VmRSS {mib(a['worker_rss']):.1f} MiB (PSS {mib(a['worker_pss']):.1f}),"
        f" {a['shims']} shims RSS {mib(a['shim_rss']):.1f} MiB PSS {mib(a['shim_pss']):.1f} MiB, "
        f"{a['cgroups']} container cgroups {mib(a['cg_usage']):.1f} MiB "
        f"({a['cg_procs']} processes: PSS {mib(a['cg_pss']):.1f} MiB, RSS "
        f"{mib(a['cg_rss']):.1f} MiB), containerd RSS {mib(a['ctd_rss']):.1f} MiB")
    log(f"  one container's processes (PSS): {a['one']}; distinct shim -id values: {a['shim_ids']}")
    log(f"  container cgroups memory.stat (sum, MiB): " +
        ", ".join(f"{k} {mib(v):.1f}" for k, v in sorted(a["cg_stat"].items())))
    if not n:
        return
    w = (a["worker_rss"] - b["worker_rss"]) / n
    sh_pss = (a["shim_pss"] - b["shim_pss"]) / n
    sh_rss = (a["shim_rss"] - b["shim_rss"]) / n
    cg = (a["cg_usage"] - b["cg_usage"]) / n
    cpss = (a["cg_pss"] - b["cg_pss"]) / n
    ctd = (a["ctd_rss"] - b["ctd_rss"]) / n
    log(f"  per idle session (N={n}): worker {w / 1024:.2f} MiB + shim {sh_pss / 1024:.2f} MiB "
        f"(PSS; RSS {sh_rss / 1024:.2f}) + container {cg / 1024:.2f} MiB (cgroup usage; "
        f"process PSS {cpss / 1024:.2f}) = {(w + sh_pss + cg) / 1024:.2f} MiB "
        f"[{(w + sh_pss + cg) * 1024 / 1e6:.2f} MB] (target <= 8 MB)")
    log(f"  with process PSS instead of cgroup usage: {(w + sh_pss + cpss) / 1024:.2f} MiB; "
        f"with shim RSS: {(w + sh_rss + cg) / 1024:.2f} MiB; containerd grew "
        f"{ctd / 1024:.2f} MiB per session (not counted)")
    tot = (a["worker_rss"] - b["worker_rss"]) + (a["shim_pss"] - b["shim_pss"]) + \
        (a["cg_usage"] - b["cg_usage"])
    log(f"  total for {n} idle sessions: {tot / 1024:.0f} MiB (worker {a['worker_rss'] / 1024:.1f}"
        f" MiB in all, {a['shims'] - b['shims']} more shims)")


def main():
    # run in the background, SIGINT is ignored: SIGTERM cleans up as an interrupt would
    signal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    log(f"bench/interactive.py  commit {commit()}  build {BUILD}  "
        f"{time.strftime('%Y-%m-%d %H:%M')}")
    wsclient.ensure_ws()
    ctd = tempfile.mkdtemp(prefix="vplbench-ctd-")
    env = containerd_start(ctd)
    try:
        ctd_pid = int(open(os.path.join(ctd, "containerd.pid")).read())
        tar = subprocess.run([f"{ROOT}/images/minivpl/build.sh"], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(["ctr", "-a", env["CTR_SOCKET"], "-n", env["CTR_NAMESPACE"], "images",
                        "import", tar], check=True, capture_output=True)
        state = tempfile.mkdtemp(prefix="vplbench-state-")
        if ONLY in ("", "echo"):
            Env.j = Jail(CONTAINERD_SOCKET=env["CTR_SOCKET"],
                         CONTAINERD_NAMESPACE=env["CTR_NAMESPACE"],
                         HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                         DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                         WORKER_ID=f"e{os.getpid() % 10000}", MAXTIME=3600, LOGLEVEL=4,
                         POOL_SIZE=1)
            try:
                bench_echo()
            finally:
                rc = Env.j.stop()
                log(f"  echo worker stopped rc={rc}")
        if ONLY in ("", "idle"):
            for pool, group in CONFIGS:
                bench_idle(env, ctd_pid, pool, group, state)
    finally:
        containerd_stop(ctd)
        left = [p for p in shims(env["CTR_SOCKET"])]
        log(f"containerd stopped; shims left {len(left)}")


if __name__ == "__main__":
    main()
