#!/usr/bin/env python3
"""vpl-proxy's cost: `available` latency, WebSocket relay throughput, memory per connection.

Every figure is a ratio against a baseline measured in the same run (the same client, the
same backend, without the proxy in between), plus the raw numbers.

1. `available` latency. A real vpl-jail worker (CONTAINERD_SOCKET= empty: no sandbox, enough
   for `available`) configured for proxies (PROXY_SECRET_FILE, TRUSTED_PROXIES), and one
   vpl-proxy in front of it. One JSON-RPC `available` per new connection, as the plugin's
   curl does (no keep-alive): connect, TLS handshake when TLS (full, no session resumption),
   the POST, the response read up to its Content-Length; timed with perf_counter. Direct
   calls go to the worker's PORT / SECURE_PORT with its X-Vplcell-Auth secret; proxy calls to
   the proxy's PORT / SECURE_PORT (it answers `available` from its worker table). The four
   kinds are interleaved call by call (order reversed every other round) to cancel drift.
   Prints p50/p99 of each and the ratio of p50s per transport (target <= 1.5).

2. WebSocket relay throughput. bench/proxy_backend.js (Node, the `ws` package) stands for a
   worker: it answers `available` and `request` (39-digit tickets) and accepts WebSockets on
   /<ticket>/execute, sinking or echoing binary messages. The same backend process is behind
   a vpl-proxy and reached directly; the client is one bench/proxy_ws_load.js process
   (Node, `ws`). Paths: direct (ws:// to the backend, the plain ticket), proxy plain (ws://
   to the proxy's PORT, the routed ticket), proxy TLS (wss:// to its SECURE_PORT; the
   proxy talks plain HTTP to workers) and direct TLS (wss:// to the backend's own HTTPS
   port, Node's TLS: the like-for-like baseline of proxy TLS, as a worker's SECURE_PORT is
   without a proxy). Each run opens a new connection, then
     - sink: BENCH_MIB MiB of 64 KiB binary messages one way, timed to the backend's byte
       count ack;
     - echo: BENCH_ECHO_MIB MiB echoed back, at most 1 MiB outstanding, timed to the last
       echoed byte;
   BENCH_REPS rounds, the paths in a rotating order; medians in MiB/s, ratios proxy/direct
   (of the medians, and the median of the ratios within each round, which a drifting load
   disturbs less; target >= 0.8): plain (ws proxy / ws direct), tls/plain (wss proxy / ws
   direct, the client's TLS included) and tls/tls (wss proxy / wss direct). CPU seconds of
   proxy, backend and client over all runs of a path are printed too (on a small machine
   the proxy competes with client and backend for CPUs).
   Informational: p50 round trip of one small text message (the keystroke path).

3. Connections held. A fresh vpl-proxy (MAX_CONNECTIONS_PER_IP=100000) per transport, the
   same backend behind it. BENCH_CONNS `request`s through it give routed tickets; then as
   many WebSockets are opened (wss:// for TLS, ws:// for plain) and held BENCH_HOLD_S
   seconds; then every one sends a text message and waits for its echo. The proxy's VmRSS
   right after the last one opened minus before (after the tickets were fetched), divided by
   the tunnels open at that moment (its vplcell_proxy_tunnels gauge: all of them unless some
   closed meanwhile); backend and client are not counted. Also: open fds of the proxy, its
   CPU time for the opening, and whether every connection was still open and echoed (and,
   for those that closed, how long after opening).

Needs node + npm (`ws` is installed once, see tests/interactive/wsclient.py), openssl, and a
built vpl-proxy and vpl-jail in $VPL_BUILD (default build). No root, no containerd.
Environment: VPL_BUILD, BENCH_CALLS (500 per kind), BENCH_MIB (64), BENCH_ECHO_MIB (32),
BENCH_REPS (16), BENCH_CONNS (2000), BENCH_HOLD_S (25: more than lws's 20 s timeout),
BENCH_ONLY (available | throughput | conns). Prints; asserts no timing.
"""
import json
import os
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from time import perf_counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, os.path.join(ROOT, "tests", "proxy"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interactive"))
from harness import Jail, make_cert  # noqa: E402
from proxyharness import Proxy, Secrets, worker_conf, scrape, metric, WORKER_URLPATH  # noqa
import wsclient  # noqa: E402

NCALLS = int(os.environ.get("BENCH_CALLS", "500"))
# Many short rounds rather than a few long ones: on a shared machine the load drifts, and
# the ratio within a round (all paths back to back, ~3 s) is what survives it.
MIB = int(os.environ.get("BENCH_MIB", "64"))
ECHO_MIB = int(os.environ.get("BENCH_ECHO_MIB", "32"))
REPS = int(os.environ.get("BENCH_REPS", "16"))
NCONNS = int(os.environ.get("BENCH_CONNS", "2000"))
HOLD_S = float(os.environ.get("BENCH_HOLD_S", "25"))
ONLY = os.environ.get("BENCH_ONLY", "")
FRAME = 64 * 1024
WINDOW = 1 << 20
LOGLEVEL = 6  # both programs' default (info)
AVAILABLE = json.dumps({"method": "available", "params": {"maxmemory": 10240},
                        "id": "bench"}).encode()
CLK = os.sysconf("SC_CLK_TCK")


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


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def nfds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def tidy(*things):
    """Removes the temporary directories of stopped Proxy / Jail / Secrets objects."""
    for t in things:
        shutil.rmtree(t.dir, ignore_errors=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------- Node helpers

class Node:
    """A Node script speaking one JSON line per command/answer (or printing {"port":N})."""

    def __init__(self, script, *args):
        wsclient.ensure_ws()
        env = dict(os.environ, NODE_PATH=os.path.join(wsclient.NPM_DIR, "node_modules"))
        self.p = subprocess.Popen(["node", os.path.join(HERE, script), *args], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = self.p.pid

    def line(self):
        s = self.p.stdout.readline()
        if not s:
            raise RuntimeError("node script exited")
        return json.loads(s)

    def call(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        return self.line()

    def stop(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


# ---------------------------------------------------------------- one HTTP call per connection

CTX = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def post_req(path, body, headers=None):
    h = {"Host": "localhost", "User-Agent": "VPL ", "Accept": "*/*",
         "Content-type": "application/json;charset=UTF-8", "Content-Length": str(len(body))}
    h.update(headers or {})
    return (f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) +
            "\r\n").encode("latin-1") + body


def one_call(port, tls, req):
    """(seconds, status, body): new connection, request, response up to Content-Length."""
    t0 = perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        s = CTX.wrap_socket(s, server_hostname="localhost")
    s.sendall(req)
    data = b""
    need = None
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
        if need is None and b"\r\n\r\n" in data:
            head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
            cl = [ln.split(":", 1)[1] for ln in head.split("\r\n")
                  if ln.startswith("content-length:")]
            need = len(head) + 4 + int(cl[0]) if cl else -1
        if need is not None and need >= 0 and len(data) >= need:
            break
    t1 = perf_counter()
    s.close()
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return t1 - t0, status, data.split(b"\r\n\r\n", 1)[-1]


# ---------------------------------------------------------------- 1. available

def bench_available(sec):
    log("== 1. `available` latency: one new connection per call (as curl without keep-alive)")
    w = Jail(**worker_conf(sec, LOGLEVEL=LOGLEVEL, WORKER_ID=f"bench{os.getpid()}"))
    p = Proxy([f"127.0.0.1:{w.port}"], sec, LOGLEVEL=LOGLEVEL, HEALTH_INTERVAL=1000)
    try:
        p.wait_workers(1)
        direct = post_req(w.urlpath, AVAILABLE, {"X-Vplcell-Auth": sec.worker})
        via = post_req(p.urlpath, AVAILABLE)
        kinds = [("plain", "direct", w.port, False, direct),
                 ("plain", "proxy", p.port, False, via),
                 ("tls", "direct", w.sport, True, direct),
                 ("tls", "proxy", p.sport, True, via)]
        for _, _, port, tls, req in kinds:  # correctness and warm-up
            _, st, body = one_call(port, tls, req)
            res = json.loads(body)["result"]
            assert st == 200 and res["status"] == "ready", (st, body[:200])
            for _ in range(30):
                one_call(port, tls, req)
        t = {(k[0], k[1]): [] for k in kinds}
        bad = 0
        for i in range(NCALLS):
            for tr, who, port, tls, req in (kinds if i % 2 == 0 else kinds[::-1]):
                dt, st, _ = one_call(port, tls, req)
                bad += st != 200
                t[(tr, who)].append(dt * 1000)
        log(f"   {NCALLS} calls of each kind, interleaved; non-200 answers: {bad}; worker "
            f"vpl-jail (no sandbox), proxy health poll every 1000 ms")
        for tr in ("plain", "tls"):
            d, x = t[(tr, "direct")], t[(tr, "proxy")]
            log(f"   {tr:5}: direct p50 {pct(d, 50):.3f} ms p99 {pct(d, 99):.3f} ms | "
                f"proxy p50 {pct(x, 50):.3f} ms p99 {pct(x, 99):.3f} ms")
        for tr in ("plain", "tls"):
            d, x = pct(t[(tr, "direct")], 50), pct(t[(tr, "proxy")], 50)
            log(f"available p50 {tr}: direct {d:.3f} ms, proxy {x:.3f} ms, ratio "
                f"{x / d:.2f} (target <= 1.5)")
    finally:
        rc_p, rc_w = p.stop(), w.stop()
        if rc_p or rc_w:
            log(f"   (exit codes: proxy {rc_p}, worker {rc_w}; logs in {p.dir}, {w.dir})")
        else:
            tidy(p, w)


# ---------------------------------------------------------------- 2. throughput

def routed_ticket(proxy):
    """A `request` through the proxy: (routed 63-digit, plain 39-digit) execution ticket."""
    _, st, body = one_call(proxy.port, False, post_req(proxy.urlpath, json.dumps(
        {"method": "request", "params": {"pluginversion": 2026012812}, "id": "b"}).encode()))
    assert st == 200, (st, body[:300])
    t = json.loads(body)["result"]["executionticket"]
    assert len(t) == 63 and t.isdigit(), t
    return t, t[:39]


def bench_throughput(sec, backend, bport, bsport):
    log(f"== 2. WebSocket relay throughput: {MIB} MiB one way (sink) and {ECHO_MIB} MiB echoed, "
        f"{FRAME // 1024} KiB binary messages, {REPS} rounds")
    p = Proxy([f"127.0.0.1:{bport}"], sec, LOGLEVEL=LOGLEVEL, HEALTH_INTERVAL=1000,
              MAX_CONNECTIONS_PER_IP=100000)
    client = Node("proxy_ws_load.js")
    try:
        p.wait_workers(1)
        routed, plain = routed_ticket(p)
        paths = {"direct": f"ws://127.0.0.1:{bport}/{plain}/execute",
                 "proxy plain": f"ws://127.0.0.1:{p.port}/{routed}/execute",
                 "proxy tls": f"wss://127.0.0.1:{p.sport}/{routed}/execute",
                 "direct tls": f"wss://127.0.0.1:{bsport}/{plain}/execute"}
        names = list(paths)
        for n in names:  # warm-up (JIT, TLS, buffers)
            r = client.call(op="stream", url=paths[n], bytes=32 << 20, frame=FRAME,
                            mode="sink", window=WINDOW)
            assert r.get("ok"), (n, r)
        rate = {(n, m): [] for n in names for m in ("sink", "echo")}
        cpu = {n: [0.0, 0.0, 0.0] for n in names}
        fails = {n: 0 for n in names}
        rnd = {(n, m): [0.0] * REPS for n in names for m in ("sink", "echo")}  # by round
        for rep in range(REPS):
            order = names[rep % len(names):] + names[:rep % len(names)]
            for n in order:
                for mode, mib in (("sink", MIB), ("echo", ECHO_MIB)):
                    c0 = (cpu_s(p.proc.pid), cpu_s(backend.pid), cpu_s(client.pid))
                    r = client.call(op="stream", url=paths[n], bytes=mib << 20, frame=FRAME,
                                    mode=mode, window=WINDOW)
                    c1 = (cpu_s(p.proc.pid), cpu_s(backend.pid), cpu_s(client.pid))
                    if not r.get("ok"):
                        log(f"   FAILED run: {mode} {n}: {r}")
                        fails[n] += 1
                        continue
                    rate[(n, mode)].append(mib / (r["ms"] / 1000))
                    rnd[(n, mode)][rep] = rate[(n, mode)][-1]
                    for i in range(3):
                        cpu[n][i] += c1[i] - c0[i]
        for mode in ("sink", "echo"):
            for n in names:
                xs = rate[(n, mode)]
                log(f"   {mode} {n:11}: median {med(xs):7.1f} MiB/s  runs " +
                    " ".join(f"{x:.0f}" for x in xs))
        total_gib = REPS * (MIB + 2 * ECHO_MIB) / 1024
        for n in names:
            pc, bc, cc = cpu[n]
            log(f"   cpu {n:11}: proxy {pc:5.2f} s, backend {bc:5.2f} s, client {cc:5.2f} s "
                f"for {total_gib:.2f} GiB relayed" +
                (f", {fails[n]} runs FAILED" if fails[n] else "") +
                (f" (proxy {pc / total_gib:.2f} s/GiB)" if n.startswith("proxy") else ""))
        for mode in ("sink", "echo"):
            for n, base, tag, what in (
                    ("proxy plain", "direct", "plain", "ws to the proxy vs ws direct"),
                    ("proxy tls", "direct", "tls/plain", "wss to the proxy vs ws direct"),
                    ("proxy tls", "direct tls", "tls/tls", "wss to the proxy vs wss direct")):
                d, x = med(rate[(base, mode)]), med(rate[(n, mode)])
                pairs = [a / b for a, b in zip(rnd[(n, mode)], rnd[(base, mode)])
                         if a and b]
                log(f"ws throughput {mode} {tag}: direct {d:.1f} MiB/s, proxy {x:.1f} "
                    f"MiB/s, ratio {x / d:.2f}, median of per-round ratios {med(pairs):.2f} "
                    f"(target >= 0.8; {what})")
        for n in names:
            us = client.call(op="rtt", url=paths[n], n=300, size=1)["us"]
            log(f"   info: small message echo round trip {n:11}: p50 {pct(us, 50) / 1000:.3f} ms "
                f"p99 {pct(us, 99) / 1000:.3f} ms")
    finally:
        client.call(op="close_all")
        client.stop()
        rc = p.stop()
        if rc:
            log(f"   (proxy exit code {rc}; log in {p.logpath})")
        else:
            tidy(p)


# ---------------------------------------------------------------- 3. connections

def bench_conns(sec, backend, bport, tls):
    tr = "tls" if tls else "plain"
    log(f"== 3. {NCONNS} WebSockets held through one fresh proxy ({'wss' if tls else 'ws'}), "
        f"{HOLD_S:.0f} s")
    p = Proxy([f"127.0.0.1:{bport}"], sec, LOGLEVEL=LOGLEVEL, HEALTH_INTERVAL=1000,
              MAX_CONNECTIONS_PER_IP=100000)
    client = Node("proxy_ws_load.js")
    try:
        p.wait_workers(1)
        t0 = time.time()
        tickets = [routed_ticket(p)[0] for _ in range(NCONNS)]
        tt = time.time() - t0
        time.sleep(1.0)
        pid = p.proc.pid
        r0, f0, b0, c0 = rss_kb(pid), nfds(pid), rss_kb(backend.pid), cpu_s(pid)
        urls = [(f"wss://127.0.0.1:{p.sport}" if tls else f"ws://127.0.0.1:{p.port}") +
                f"/{t}/execute" for t in tickets]
        h = client.call(op="hold", urls=urls, conc=32)
        # The snapshot right after the last one opened, with the count of tunnels then open.
        r1, f1, c1 = rss_kb(pid), nfds(pid), cpu_s(pid)
        gauge = metric(scrape(p.mport), "vplcell_proxy_tunnels", kind="execute")
        b1 = rss_kb(backend.pid)
        time.sleep(HOLD_S)
        pa = client.call(op="ping_all", timeout_ms=30000)
        time.sleep(0.5)
        r2 = rss_kb(pid)
        alive = p.proc.poll() is None
        client.call(op="close_all")
        time.sleep(1.5)
        r3, f3 = rss_kb(pid), nfds(pid)
        log(f"   {NCONNS} `request`s through the proxy in {tt:.1f} s; opened {h['opened']}, "
            f"failed {h['failed']} in {h['ms'] / 1000:.1f} s (32 handshakes at a time), proxy "
            f"CPU {c1 - c0:.2f} s ({(c1 - c0) / max(h['opened'], 1) * 1000:.2f} ms per "
            f"connection)" +
            (f" (errors: {h['errors']})" if h["errors"] else ""))
        log(f"   proxy: RSS {r0 / 1024:.1f} MiB before, {r1 / 1024:.1f} MiB right after the last "
            f"open, {r2 / 1024:.1f} MiB after the echo round, {r3 / 1024:.1f} MiB after closing; "
            f"fds {f0} -> {f1} -> {f3}; tunnels open at the snapshot (gauge) {gauge:.0f}")
        log(f"   backend (not counted): RSS {b0 / 1024:.1f} -> {b1 / 1024:.1f} MiB")
        life = pa["lifetime_s"]
        log(f"   after {HOLD_S:.0f} s more: open {pa['open']}, echoed {pa['echoed']}, closed "
            f"before the echo round {pa['closed_early']}" +
            (f" (lifetime from open: min {life[0]:.2f} s, median {life[1]:.2f} s, max "
             f"{life[2]:.2f} s)" if life else "") +
            f", echo round of all in {pa['ms']} ms; proxy alive: {alive}")
        n = max(gauge, 1)
        log(f"conns {tr}: {h['opened']}/{NCONNS} opened, {pa['echoed']}/{NCONNS} still open and "
            f"echoing after {HOLD_S:.0f} s, proxy RSS per connection {(r1 - r0) / n:.1f} KiB "
            f"(over the {gauge:.0f} open at the snapshot)")
    finally:
        client.stop()
        rc = p.stop()
        if rc:
            log(f"   (proxy exit code {rc}; log in {p.logpath})")
        else:
            tidy(p)


def main():
    nofile = raise_nofile()
    build = os.path.join(ROOT, os.environ.get("VPL_BUILD", "build"))
    log(f"bench/proxy.py commit {commit()} build {build} "
        f"cpus {os.cpu_count()} loadavg {open('/proc/loadavg').read().split()[0]} "
        f"RLIMIT_NOFILE {nofile}")
    if nofile < 2 * NCONNS + 200:
        log(f"   warning: RLIMIT_NOFILE {nofile} is too small for {NCONNS} tunnels (the proxy "
            f"needs two fds per tunnel): expect failed connections in 3.")
    t0 = time.time()
    sec = Secrets()
    if ONLY in ("", "available"):
        bench_available(sec)
    if ONLY in ("", "throughput", "conns"):
        cdir = tempfile.mkdtemp(prefix="vplbench-proxy-backend-")
        cert, key = make_cert(cdir)
        backend = Node("proxy_backend.js", cert, key)
        ports = backend.line()
        bport, bsport = ports["port"], ports["sport"]
        try:
            if ONLY in ("", "throughput"):
                bench_throughput(sec, backend, bport, bsport)
            if ONLY in ("", "conns"):
                bench_conns(sec, backend, bport, tls=True)
                bench_conns(sec, backend, bport, tls=False)
        finally:
            backend.stop()
            shutil.rmtree(cdir, ignore_errors=True)
    tidy(sec)
    log(f"done in {time.time() - t0:.0f} s (loadavg {open('/proc/loadavg').read().split()[0]})")


if __name__ == "__main__":
    main()
