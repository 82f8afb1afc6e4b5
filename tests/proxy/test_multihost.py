#!/usr/bin/env python3
"""vpl-proxy across hosts, without a container engine for the network: Linux network
namespaces stand for machines on one switch (a bridge in its own namespace, veth cables).

    hub  the switch: bridge br0, one port (p-<host>) per host
    h1, h2, h3  one vpl-jail worker each, on <net>.11-13:8080, plain HTTP, PROXY_SECRET_FILE,
                TRUSTED_PROXIES=<px>/32
    px   vpl-proxy on <net>.20 (8080 plain, 8443 TLS), WORKERS = the three workers,
         TASK_ONLY_FROM=<net>.1/32; its metrics stay on px's loopback (scraped from inside)
    cl   a client host that TASK_ONLY_FROM does not allow (<net>.30)
    this process: the allowed client (<net>.1, a veth in the root namespace)

All tasks run in one private containerd (tests/protocol/harness.py: containerd_start) that the
workers reach through the filesystem. <net> is 10.<random>.<pid-based>.0/24, checked against
the host's routes. Every namespace and link is named after this process's pid and removed at
the end (and leftovers of dead runs at the start).

Tests: evaluations spread over the three hosts; a terminal (monitor + execute over TLS)
across namespaces; TASK_ONLY_FROM and the workers' proxy secret seen from a foreign host
(and X-Forwarded-For not believed from it); terminals left idle 25 s over wss and ws; one
host cut off mid-run (its switch port down, its worker still running): its task's RPCs
answer within CUT_WAIT_S, the client's sockets are watched and what happens is printed
("note" lines: the proxy has no keepalive on tunnels, so it cannot know), the other hosts
keep serving, the proxy's metrics say 2 workers up, and once the link is back the
surviving terminal answers and the host is back in rotation.

Needs root, `ip` (iproute2) with netns, veth and bridge support; fails (never skips) when the
network cannot be built. Arguments select tests by name part; MH_KEEP=1 keeps the logs."""
import ipaddress
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import traceback
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
PROTO = os.path.join(ROOT, "tests", "protocol")
sys.path.insert(0, PROTO)
sys.path.insert(0, os.path.join(ROOT, "tests", "interactive"))
sys.path.insert(0, HERE)
from harness import Jail, Suite, containerd_start, containerd_stop, connect  # noqa: E402
from harness import Response, http, recv_all  # noqa: E402
from wsclient import WsClient  # noqa: E402
from proxyharness import Proxy, Secrets, metric, worker_conf, WORKER_URLPATH  # noqa: E402

S = Suite("multihost")
BUILD = os.environ.get("VPL_BUILD", "build")
JAIL_BIN = os.path.join(ROOT, BUILD, "vpl-jail")
PID = os.getpid()
TAG = f"vplmh{PID}"          # prefix of every namespace and link this run makes
NAME_RE = re.compile(r"^vplmh(\d+)")
HOSTS = ("h1", "h2", "h3", "px", "cl")
WORKER_PORT = 8080
PROXY_PORT, PROXY_SPORT = 8080, 8443
PV = 2026012812
# The hang check of the cut-off test (not a performance figure): the proxy's health polls
# see a cut-off worker down within ~2 s, so an RPC about its task need not wait longer.
CUT_WAIT_S = 10
MONITOR_WAIT_S = 12  # how long the cut-off test watches the monitor socket

HELLO_C = '#include <stdio.h>\nint main(void){ printf("Hello world\\n"); return 0; }\n'
READER_C = r'''#include <stdio.h>
int main(void) {
    char name[100];
    printf("READY? ");
    fflush(stdout);
    if (scanf("%99s", name) != 1) return 1;
    printf("Hello, %s!\n", name);
    return 0;
}
'''

NET = None
ENV = {}
SEC = None
P = None
WORKERS = []   # NsJail, index i on host h{i+1}
CTD_DIR = None
DIRS = []      # temporary directories this run made


def note(msg):
    """A measured fact for the reader of the log (not a test result)."""
    t = time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z"
    print(f"note multihost: [{t}] {msg}", flush=True)


def sh(*cmd, check=True, timeout=30):
    r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({r.returncode}): "
                           f"{(r.stderr or r.stdout).strip()}")
    return r


# ---- the network ----

def pid_is_ours_alive(pid):
    """True when pid is a live run of this suite (its namespaces must not be touched)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"test_multihost" in f.read()
    except OSError:
        return False


def cleanup_leftovers():
    """Namespaces and root links of earlier runs of this suite whose process is gone."""
    r = sh("ip", "netns", "list", check=False)
    for line in r.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = NAME_RE.match(name)
        if m and int(m.group(1)) != PID and not pid_is_ours_alive(int(m.group(1))):
            sh("ip", "netns", "del", name, check=False)
            print(f"# removed leftover namespace {name}", flush=True)
    r = sh("ip", "-o", "link", "show", check=False)
    for line in r.stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        m = NAME_RE.match(name)
        if m and int(m.group(1)) != PID and not pid_is_ours_alive(int(m.group(1))):
            sh("ip", "link", "del", name, check=False)
            print(f"# removed leftover link {name}", flush=True)


def used_networks():
    nets = []
    text = (sh("ip", "-4", "route", "show", "table", "all", check=False).stdout +
            sh("ip", "-4", "-o", "addr", "show", check=False).stdout)
    for tok in re.findall(r"\b\d+\.\d+\.\d+\.\d+(?:/\d+)?\b", text):
        try:
            nets.append(ipaddress.ip_network(tok, strict=False))
        except ValueError:
            pass
    return nets


def pick_subnet():
    used = used_networks()
    rng = random.Random(PID ^ int(time.time() * 1000))
    third = PID % 250 + 1
    for _ in range(200):
        cand = ipaddress.ip_network(f"10.{rng.randint(16, 250)}.{third}.0/24")
        if not any(cand.overlaps(u) for u in used if u.prefixlen > 0):
            return cand
        third = rng.randint(1, 250)
    raise RuntimeError("no free 10.x.y.0/24 next to the host's routes")


class Net:
    """The switch, five hosts and the root namespace's port."""

    def __init__(self):
        self.subnet = pick_subnet()
        base = str(self.subnet.network_address).rsplit(".", 1)[0]
        self.ip = {"h1": f"{base}.11", "h2": f"{base}.12", "h3": f"{base}.13",
                   "px": f"{base}.20", "cl": f"{base}.30", "ok": f"{base}.1"}
        self.ns = {h: f"{TAG}-{h}" for h in HOSTS + ("hub",)}
        self.root_link = f"{TAG}c"
        self.made = []
        try:
            self._build()
        except Exception:
            self.destroy()
            raise

    def _build(self):
        hub = self.ns["hub"]
        for h in ("hub",) + HOSTS:
            sh("ip", "netns", "add", self.ns[h])
            self.made.append(self.ns[h])
            sh("ip", "-n", self.ns[h], "link", "set", "lo", "up")
        sh("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", hub, "link", "set", "br0", "up")
        for h in HOSTS:
            ns = self.ns[h]
            sh("ip", "-n", hub, "link", "add", f"p-{h}", "type", "veth", "peer", "name",
               "eth0", "netns", ns)
            sh("ip", "-n", hub, "link", "set", f"p-{h}", "master", "br0", "up")
            sh("ip", "-n", ns, "addr", "add", f"{self.ip[h]}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "link", "add", self.root_link, "type", "veth", "peer", "name", "p-ok",
           "netns", hub)
        sh("ip", "-n", hub, "link", "set", "p-ok", "master", "br0", "up")
        sh("ip", "addr", "add", f"{self.ip['ok']}/24", "dev", self.root_link)
        sh("ip", "link", "set", self.root_link, "up")
        # every host reaches every other through the switch
        deadline = time.time() + 10
        while True:
            r = ns_python("cl", PING_CODE, [self.ip[h] for h in ("h1", "h2", "h3", "px", "ok")])
            if r.get("ok"):
                break
            if time.time() > deadline:
                raise RuntimeError(f"the namespaces do not reach each other: {r}")
            time.sleep(0.2)

    def cut(self, host, up):
        sh("ip", "-n", self.ns["hub"], "link", "set", f"p-{host}", "up" if up else "down")

    def exec_prefix(self, host):
        return ns_prefix(host)

    def destroy(self):
        sh("ip", "link", "del", self.root_link, check=False)
        for name in reversed(self.made):
            sh("ip", "netns", "del", name, check=False)
        self.made = []


def ns_prefix(host):
    return ["ip", "netns", "exec", f"{TAG}-{host}"]


# Tiny programs run inside a namespace: argv[1] is JSON, the last stdout line is JSON.
PING_CODE = r'''
import json, socket, sys
ok = True
bad = []
for ip in json.loads(sys.argv[1]):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((ip, 9))  # discard: refused is fine, it proves the host answers
    except ConnectionRefusedError:
        pass
    except OSError as e:
        ok = False
        bad.append(f"{ip}: {e}")
    finally:
        s.close()
print(json.dumps({"ok": ok, "bad": bad}))
'''

HTTP_CODE = r'''
import json, sys
sys.path.insert(0, %r)
from harness import http
out = []
for r in json.loads(sys.argv[1]):
    try:
        x = http(r["port"], r["method"], r["path"], r.get("body", "").encode(),
                 headers=r.get("headers"), tls=r.get("tls", False), host=r["host"])
        out.append({"status": x.status, "text": x.text()[:1000]})
    except Exception as e:
        out.append({"error": repr(e)})
print(json.dumps(out))
''' % PROTO

SCRAPE_CODE = r'''
import json, sys
sys.path.insert(0, %r)
from proxyharness import scrape
print(json.dumps(scrape(json.loads(sys.argv[1]))))
''' % HERE


def ns_python(host, code, arg, timeout=60):
    r = subprocess.run(ns_prefix(host) + [sys.executable, "-c", code, json.dumps(arg)],
                       capture_output=True, text=True, timeout=timeout)
    lines = r.stdout.strip().splitlines()
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"python in {host} failed ({r.returncode}): {r.stderr[-1500:]}")
    return json.loads(lines[-1])


def ns_http(host, reqs):
    return ns_python(host, HTTP_CODE, reqs)


def proxy_metrics():
    return ns_python("px", SCRAPE_CODE, P.mport)


def wait_up(n, timeout=20):
    deadline = time.time() + timeout
    up = -1
    while time.time() < deadline:
        up = metric(proxy_metrics(), "vplcell_proxy_workers", state="up")
        if up == n:
            return
        time.sleep(0.3)
    raise AssertionError(f"the proxy's metrics say {up} workers up, not {n}")


# ---- processes ----

class NsJail(Jail):
    """A vpl-jail started inside a host namespace (`ip netns exec`); read_log and stop are
    Jail's. Listens on the host's address only, plain HTTP (the proxy's side)."""

    def __init__(self, host, **conf):
        self.dir = tempfile.mkdtemp(prefix=f"vplcell-mh-{host}-")
        DIRS.append(self.dir)
        self.host = host
        self.ip = NET.ip[host]
        self.port = WORKER_PORT
        self.sport = 0
        self.urlpath = WORKER_URLPATH
        base = {"PORT": self.port, "SECURE_PORT": 0, "INTERFACE": self.ip,
                "DRAIN_FILE": os.path.join(self.dir, "drain"), "LOGLEVEL": 7}
        base.update(conf)
        self.conf = os.path.join(self.dir, "vpl-jail.conf")
        with open(self.conf, "w") as f:
            for k, v in base.items():
                f.write(f"{k}={v}\n")
        os.chmod(self.conf, 0o600)
        self.logpath = os.path.join(self.dir, "jail.log")
        self.log = open(self.logpath, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(NET.exec_prefix(host) + [JAIL_BIN, "-f", self.conf],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vpl-jail in {host} exited: " + self.read_log()[-3000:])
            try:  # from the root namespace, through the switch
                socket.create_connection((self.ip, self.port), timeout=0.3).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"vpl-jail in {host} did not start: " + self.read_log()[-3000:])

    def addr(self):
        return f"{self.ip}:{self.port}"


def jail_knows(key):
    """Whether this vpl-jail build has a configuration key (`vpl-jail -t` lists them all)."""
    d = tempfile.mkdtemp(prefix="vplcell-mh-probe-")
    DIRS.append(d)
    conf = os.path.join(d, "probe.conf")
    with open(conf, "w") as f:
        f.write("PORT=8080\nSECURE_PORT=0\n")
    os.chmod(conf, 0o600)
    r = subprocess.run([JAIL_BIN, "-t", "-f", conf], capture_output=True, text=True)
    return any(line.startswith(key + "=") for line in r.stdout.splitlines())


def start_worker(host):
    state = tempfile.mkdtemp(prefix="vplcell-mh-state-")
    DIRS.append(state)
    c = worker_conf(SEC, trusted=f"{NET.ip['px']}/32",
                    CONTAINERD_SOCKET=ENV["CTR_SOCKET"],
                    CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                    HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                    DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                    WORKER_ID=f"mh{host}{PID % 100000}", MAXTIME=60, POOL_SIZE=1)
    if jail_knows("SHUTDOWN_GRACE"):
        # stopped at once at the end, as the other suites do (the drain has its own test)
        c["SHUTDOWN_GRACE"] = 0
    return NsJail(host, **c)


# ---- the protocol, as the allowed client ----

def files_for(program, run, compile_cmd="", execute="vpl_evaluate.sh"):
    files = dict(program)
    files[execute] = ("#!/bin/bash\n" + compile_cmd + "\n"
                      "cat > vpl_execution <<'EOF'\n#!/bin/bash\n" + run +
                      "\nEOF\nchmod +x vpl_execution\n")
    return files


def task_params(files, execute="vpl_evaluate.sh", interactive=0, maxtime=30):
    return {"files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
            "execute": execute, "interactive": interactive, "lang": "en_US.UTF-8",
            "maxtime": maxtime, "maxmemory": 256 << 20, "maxfilesize": 64 << 20,
            "maxprocesses": 64, "pluginversion": PV}


def hello_request():
    p = task_params(files_for({"hello.c": HELLO_C}, "./hello; echo 'Grade :=>>10'",
                              "gcc -O2 -o hello hello.c"))
    return P.rpc("request", p)


def getresult(admin, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = P.rpc_raw("getresult", {"adminticket": admin, "pluginversion": PV})
        if r.status == 200:
            return json.loads(r.body)["result"]
        assert "Task still running" in r.text(), (r.status, r.text()[:300])
        time.sleep(0.2)
    raise AssertionError("the task did not finish")


def timed_rpc(method, params, limit, tls=True):
    """One RPC through the proxy with a socket timeout of `limit` s: (status or None when
    nothing came back in time, text, seconds)."""
    body = json.dumps({"method": method, "params": params, "id": "9"}).encode()
    t0 = time.time()
    try:
        s = connect(P.sport if tls else P.port, tls=tls, host=NET.ip["px"], timeout=limit)
        s.sendall((f"POST {P.urlpath} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
                   "Content-type: application/json\r\n\r\n").encode() + body)
        raw = recv_all(s)
        s.close()
    except (socket.timeout, TimeoutError):
        return None, "timed out", time.time() - t0
    r = Response(raw)
    return r.status, r.text(), time.time() - t0


def owner(ticket):
    """The worker holding a routed admin ticket, asked directly with the secret."""
    plain = ticket[:39]
    found = []
    for w in WORKERS:
        body = json.dumps({"method": "getresult", "params": {"adminticket": plain,
                                                              "pluginversion": PV},
                           "id": "1"}).encode()
        r = http(w.port, "POST", WORKER_URLPATH, body, host=w.ip,
                 headers={"X-Vplcell-Auth": SEC.worker})
        if "Ticket not found" not in r.text():
            found.append(w)
    assert len(found) <= 1, "two workers claim one ticket"
    return found[0] if found else None


def worker_tasks(w):
    return w.read_log().count("rpc request ")


def wss(ticket, what):
    return f"wss://{NET.ip['px']}:{P.sport}/{ticket}/{what}"


def ws(ticket, what):
    return f"ws://{NET.ip['px']}:{P.port}/{ticket}/{what}"


class TWsClient(WsClient):
    """WsClient whose events carry their arrival time ("t"), to measure when a socket
    ended while the test was busy elsewhere."""

    def _reader(self):
        for line in self.p.stdout:
            try:
                e = json.loads(line)
            except ValueError:
                continue
            e["t"] = time.time()
            self.q.put(e)
        self.q.put(None)


def is_msg(prefix):
    return lambda e: e["ev"] == "message" and e.get("text", "").startswith(prefix)


def is_ev(name):
    return lambda e: e["ev"] == name


def is_end(e):
    return e["ev"] in ("close", "error", "unexpected")


# ---- tests ----

def test_evaluations_spread_over_hosts():
    before = [worker_tasks(w) for w in WORKERS]
    tickets = [hello_request() for _ in range(6)]
    for r in tickets:
        assert len(r["adminticket"]) == 63 and r["secureport"] == PROXY_SPORT, r
    for r in tickets:
        g = getresult(r["adminticket"])
        assert g["executed"] == 1 and "Hello world" in g["execution"], g
    used = [worker_tasks(w) - b for w, b in zip(WORKERS, before)]
    assert sum(used) == 6, used
    assert all(u >= 1 for u in used), f"not every host took a task: {used}"
    # each worker believed the proxy's X-Forwarded-For: the client is this process
    for w in WORKERS:
        log = w.read_log()
        assert f"from={NET.ip['ok']} status=200" in log, log[-2000:]
        assert f"rpc request json task=" in log


def test_terminal_across_namespaces():
    p = task_params(files_for({"r.c": READER_C}, "./r", "gcc -o r r.c", "vpl_run.sh"),
                    "vpl_run.sh", interactive=1)
    r = P.rpc("request", p)
    with WsClient() as c:
        c.open("m", wss(r["monitorticket"], "monitor"), insecure=True)
        c.wait("m", is_ev("open"))
        c.wait("m", is_msg("run:terminal"), timeout=120)
        c.open("x", wss(r["executionticket"], "execute"), insecure=True)
        c.wait("x", is_ev("open"))
        c.wait("x", lambda e: "READY?" in "".join(c.texts("x")), timeout=60)
        c.send("x", "namespaces\r")
        c.wait("x", lambda e: "Hello, namespaces!" in "".join(c.texts("x")), timeout=30)
        c.wait("m", is_msg("close:"), timeout=30)


def test_foreign_host_refused_by_proxy():
    req = json.dumps({"method": "request", "params": task_params(
        files_for({"hello.c": HELLO_C}, "./hello", "gcc -o hello hello.c")), "id": "1"})
    avail = json.dumps({"method": "available", "params": {"maxmemory": 1}, "id": "1"})
    px = NET.ip["px"]
    before = sum(worker_tasks(w) for w in WORKERS)
    out = ns_http("cl", [
        {"host": px, "port": PROXY_SPORT, "tls": True, "method": "POST", "path": P.urlpath,
         "body": req},
        {"host": px, "port": PROXY_PORT, "method": "POST", "path": P.urlpath, "body": req},
        {"host": px, "port": PROXY_SPORT, "tls": True, "method": "POST", "path": P.urlpath,
         "body": avail},
        {"host": px, "port": PROXY_SPORT, "tls": True, "method": "GET", "path": "/OK"},
        {"host": px, "port": PROXY_PORT, "method": "GET", "path": "/OK"},
    ])
    for x in out[:3]:
        assert x.get("status") == 400 and "Client not allowed" in x.get("text", ""), out
    for x in out[3:]:
        assert x.get("status") == 200 and "OK" in x.get("text", ""), out
    assert sum(worker_tasks(w) for w in WORKERS) == before, "a refused request reached a worker"
    assert f"from {NET.ip['cl']}: 400 Client not allowed" in P.read_log()
    # and the allowed client, same request, same moment
    assert P.rpc("available", {"maxmemory": 1})["status"] == "ready"


def test_foreign_host_refused_by_workers():
    avail = json.dumps({"method": "available", "params": {"maxmemory": 1}, "id": "1"})
    forged = "203.0.113.77"  # only text in a header: nothing is sent there
    w = WORKERS[1]
    out = ns_http("cl", [
        {"host": w.ip, "port": w.port, "method": "POST", "path": WORKER_URLPATH,
         "body": avail},
        {"host": w.ip, "port": w.port, "method": "POST", "path": WORKER_URLPATH,
         "body": avail, "headers": {"X-Forwarded-For": NET.ip["ok"]}},
        {"host": w.ip, "port": w.port, "method": "POST", "path": WORKER_URLPATH,
         "body": avail, "headers": {"X-Vplcell-Auth": SEC.worker,
                                    "X-Forwarded-For": forged}},
        {"host": w.ip, "port": w.port, "method": "GET", "path": "/OK"},
    ])
    assert out[0].get("status") == 403 and out[1].get("status") == 403, out
    assert out[2].get("status") == 200 and '"status"' in out[2].get("text", ""), out
    assert out[3].get("status") == 200, out
    log = w.read_log()
    cl = NET.ip["cl"]
    assert f"from {cl}: 403, no valid proxy authentication" in log, log[-2000:]
    assert f"rpc available json task=0 from={cl} status=200" in log, log[-2000:]
    assert forged not in log, "X-Forwarded-For believed from a host that is not a proxy"
    assert SEC.worker not in log


def reader_task(maxtime=55):
    p = task_params(files_for({"r.c": READER_C}, "./r", "gcc -o r r.c", "vpl_run.sh"),
                    "vpl_run.sh", interactive=1, maxtime=maxtime)
    return P.rpc("request", p)


def open_terminal(c, sid, r, tls):
    """Monitor sid and execute sid+"x" of task r, until the program asks (READY?)."""
    url = wss if tls else ws
    c.open(sid, url(r["monitorticket"], "monitor"), insecure=True)
    c.wait(sid, is_msg("run:terminal"), timeout=120)
    c.open(sid + "x", url(r["executionticket"], "execute"), insecure=True)
    c.wait(sid + "x", lambda e: "READY?" in "".join(c.texts(sid + "x")), timeout=60)


def answers(c, sid, name, timeout=20):
    """Types name on execute sid+"x"; True when the program greets it."""
    c.send(sid + "x", name + "\r")
    try:
        c.wait(sid + "x", lambda e: f"Hello, {name}!" in "".join(c.texts(sid + "x")),
               timeout=timeout)
        return True
    except AssertionError:
        return False


def ended(c, sid):
    """The first close/error event of sid seen so far, or None."""
    c.drain()
    for e in c.events:
        if e.get("id") == sid and is_end(e):
            return e
    return None


def test_sessions_outlive_20s():
    """A terminal left alone 25 s (a student thinking) still answers: over wss, as browsers
    use it, and over plain ws, side by side. A session's sockets belong to it for its whole
    time limit, whatever the proxy's own timeouts."""
    idle = 25
    rs, rp = reader_task(), reader_task()
    with TWsClient() as c:
        open_terminal(c, "s", rs, tls=True)
        open_terminal(c, "p", rp, tls=False)
        t0 = min(e["t"] for e in c.events if e["ev"] == "open")
        time.sleep(max(0.0, t0 + idle - time.time()))
        for sid, label in (("s", "wss"), ("p", "ws")):
            e = ended(c, sid)
            if e:
                note(f"{label} monitor socket ended {e['t'] - t0:.1f} s after it opened: "
                     f"code {e.get('code')}")
            ok = e is None and answers(c, sid, f"after{idle}s")
            S.check(ok, f"a {label} terminal left idle {idle} s still answers")
        for sid in ("s", "p"):
            if not ended(c, sid):
                c.wait(sid, is_msg("close:"), timeout=30)


def test_host_cut_off_mid_run():
    """The cable of the host that runs an interactive task is pulled at the switch (its
    worker keeps running). The task's sockets use plain ws here: over wss the proxy's 20 s
    limit (test_sessions_outlive_20s) would end them whatever happens to the host."""
    r = reader_task()
    admin = r["adminticket"]
    victim = owner(admin)
    assert victim is not None, "no worker holds the task"
    others = [w for w in WORKERS if w is not victim]
    note(f"the interactive task is on {victim.host} ({victim.ip})")
    with TWsClient() as c:
        open_terminal(c, "m", r, tls=False)
        NET.cut(victim.host, up=False)
        t_cut = time.time()

        # RPCs about its task, at once and side by side (https and http): an error or
        # running=0, not left hanging
        got = {}
        params = {"adminticket": admin, "pluginversion": PV}
        ths = [threading.Thread(target=lambda m=m, tls=tls: got.__setitem__(
            m, timed_rpc(m, params, 45, tls))) for m, tls in (("getresult", True),
                                                               ("running", False))]
        for t in ths:
            t.start()
        for t in ths:
            t.join()
        (st, text, secs), (st2, text2, secs2) = got["getresult"], got["running"]
        note(f"getresult (https) for the cut-off host's task: status {st} after {secs:.1f} s"
             f": {text[-90:]!r}")
        note(f"running (http) for the cut-off host's task: status {st2} after {secs2:.1f} s"
             f": {text2[-90:]!r}")
        S.check(st is not None and st >= 400 and secs < CUT_WAIT_S,
                f"getresult of the cut-off host's task answers an error within {CUT_WAIT_S} s "
                f"(status {st or 'none'}, {secs:.1f} s)")
        S.check(st2 is not None and secs2 < CUT_WAIT_S and
                (st2 >= 400 or (st2 == 200 and '"running":0' in text2)),
                f"running of the cut-off host's task answers an error or 0 within "
                f"{CUT_WAIT_S} s (status {st2 or 'none'}, {secs2:.1f} s)")

        # the client's sockets: the proxy has no way to know (no keepalive on tunnels)
        time.sleep(max(0.0, t_cut + MONITOR_WAIT_S - time.time()))
        e = ended(c, "m")
        note(f"monitor socket {MONITOR_WAIT_S} s after the cut: " +
             (f"ended {e['t'] - t_cut:.1f} s after it, code {e.get('code')}" if e
              else "still open"))
        assert victim.proc.poll() is None, "the cut-off worker died"

        # new work keeps being served, by the two other hosts
        vb = worker_tasks(victim)
        ob = [worker_tasks(w) for w in others]
        t0 = time.time()
        for _ in range(4):
            g = getresult(hello_request()["adminticket"])
            assert "Hello world" in g["execution"], g
        note(f"4 evaluations with one host cut off took {time.time() - t0:.1f} s")
        assert worker_tasks(victim) == vb, "a task reached the cut-off host"
        assert sum(worker_tasks(w) - b for w, b in zip(others, ob)) == 4
        wait_up(2, timeout=10)
        m = proxy_metrics()
        assert metric(m, "vplcell_proxy_workers", state="known") == 3, m[-1500:]
        S.check(True, "with one host cut off, evaluations go to the other two and the "
                "proxy's metrics say 2 workers up")

        # the cable back: the host is polled up again
        NET.cut(victim.host, up=True)
        t_up = time.time()
        wait_up(3, timeout=20)
        note(f"the proxy's metrics say 3 workers up {time.time() - t_up:.1f} s after the "
             "link came back")
        if not ended(c, "m"):
            # TCP kept the connections: the session goes on where it was
            S.check(answers(c, "m", "again"), "the terminal that lived through the cut "
                    "answers once the link is back")
            c.wait("m", is_msg("close:"), timeout=30)
        else:
            P.rpc("stop", params)

    # back in rotation: new tasks reach it again
    deadline = time.time() + 60
    vb = worker_tasks(victim)
    while worker_tasks(victim) == vb:
        assert time.time() < deadline, "the host that came back takes no task"
        batch = [hello_request() for _ in range(3)]
        for b in batch:
            assert "Hello world" in getresult(b["adminticket"])["execution"]


def main():
    global NET, SEC, P, CTD_DIR
    t_start = time.time()
    # a SIGTERM (a CI time limit) still runs the cleanup below
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    try:
        cleanup_leftovers()
        NET = Net()
    except Exception as e:
        S.check(False, f"network namespaces, veth and bridge could not be set up here: {e}")
        return S.finish()
    print(f"# network {NET.subnet}: " + ", ".join(f"{h}={NET.ip[h]}" for h in NET.ip),
          flush=True)
    S.check(True, f"network of 5 namespaces and a bridge built ({NET.subnet})")
    CTD_DIR = tempfile.mkdtemp(prefix="vplcell-mh-ctd-")
    try:
        ENV.update(containerd_start(CTD_DIR))
        tar = subprocess.run([f"{ROOT}/images/minivpl/build.sh"], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"], "images",
                        "import", tar], check=True, capture_output=True)
        SEC = Secrets()
        DIRS.append(SEC.dir)
        for h in ("h1", "h2", "h3"):
            WORKERS.append(start_worker(h))
        P = Proxy([w.addr() for w in WORKERS], SEC, prefix=NET.exec_prefix("px"),
                  INTERFACE=NET.ip["px"], PORT=PROXY_PORT, SECURE_PORT=PROXY_SPORT,
                  TASK_ONLY_FROM=f"{NET.ip['ok']}/32", HEALTH_INTERVAL=500,
                  REQUEST_MAX_SIZE="8M")
        DIRS.append(P.dir)
        print(f"# proxy log: {P.logpath}; worker logs: " +
              " ".join(w.logpath for w in WORKERS), flush=True)
        wait_up(3)
        S.check(True, "three workers in h1-h3 up through the proxy in px")
        only = sys.argv[1:]
        for fn in (test_evaluations_spread_over_hosts, test_terminal_across_namespaces,
                   test_foreign_host_refused_by_proxy, test_foreign_host_refused_by_workers,
                   test_sessions_outlive_20s, test_host_cut_off_mid_run):
            if not only or any(o in fn.__name__ for o in only):
                S.run(fn)
        rc = P.stop()
        S.check(rc == 0, f"proxy exits cleanly (rc={rc})")
        for w in WORKERS:
            rc = w.stop()
            S.check(rc == 0, f"worker in {w.host} exits cleanly (rc={rc})")
        if S.failed:
            print("---- proxy log tail ----\n" + P.read_log()[-5000:])
            for w in WORKERS:
                print(f"---- {w.host} log tail ----\n" + w.read_log()[-2500:])
    except Exception as e:
        S.check(False, f"setup or run aborted: {e!r}"[:300])
        traceback.print_exc(file=sys.stdout)
    finally:
        for w in WORKERS:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        if P and P.proc.poll() is None:
            P.proc.kill()
            P.proc.wait()
        containerd_stop(CTD_DIR)
        NET.destroy()
        left = [n for n in sh("ip", "netns", "list", check=False).stdout.split()
                if n.startswith(TAG + "-")]
        if sh("ip", "link", "show", NET.root_link, check=False).returncode == 0:
            left.append(NET.root_link)
        S.check(not left, f"namespaces and links removed ({left or 'none left'})")
        if os.environ.get("MH_KEEP"):
            print(f"# kept: {' '.join(DIRS)}", flush=True)
        else:
            for d in DIRS + [CTD_DIR]:
                shutil.rmtree(d, ignore_errors=True)
    print(f"# total {time.time() - t_start:.0f} s", flush=True)
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
