#!/usr/bin/env python3
"""vpl-proxy end to end: three real workers (vpl-jail on a private containerd with the
minivpl image) behind real proxies on loopback, with TLS and real WebSocket clients.
RPC spread, ticket routing for every method, both sockets and web apps, port rewriting,
forged and foreign routes, a worker killed mid-run, a worker added by DNS, two proxies,
TLS versions and garbage, SIGHUP certificate reload with a live connection, oversized
bodies, direct access to a worker refused, metrics of proxy and workers."""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interactive"))
sys.path.insert(0, HERE)
from harness import Jail, Suite, containerd_start, containerd_stop, connect, http, make_cert  # noqa
from harness import free_port, recv_all, Response  # noqa: E402
from wsclient import WsClient  # noqa: E402
from proxyharness import (Proxy, Secrets, worker_conf, scrape, metric, xml_call,  # noqa: E402
                          xml_members, WORKER_URLPATH)

S = Suite("proxy")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
ENV = {}
WORKERS = []
P = None
SEC = None
MARK = "vplcell-proxy-web-3c1d"
PV = 2026012812

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


def start_worker(tag, **conf):
    state = tempfile.mkdtemp(prefix="vplcell-state-")
    c = worker_conf(SEC, CONTAINERD_SOCKET=ENV["CTR_SOCKET"],
                    CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                    HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                    DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                    WORKER_ID="%s%d" % (tag, os.getpid() % 100000), MAXTIME=60, POOL_SIZE=1,
                    METRICS_PORT=free_port())
    c.update(conf)
    w = Jail(**c)
    w.metrics_port = c["METRICS_PORT"]
    return w


def addr(w, host="127.0.0.1"):
    return f"{host}:{w.port}"


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


def hello_request(proxy=None, fmt="json"):
    proxy = proxy or P
    p = task_params(files_for({"hello.c": HELLO_C}, "./hello; echo 'Grade :=>>10'",
                              "gcc -O2 -o hello hello.c"))
    r = proxy.rpc_raw("request", p, fmt=fmt)
    assert r.status == 200, (r.status, r.text()[:300])
    return json.loads(r.body)["result"] if fmt == "json" else xml_members(r.body)


def getresult(admin, proxy=None, timeout=120, fmt="json"):
    proxy = proxy or P
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = proxy.rpc_raw("getresult", {"adminticket": admin, "pluginversion": PV}, fmt=fmt)
        if r.status == 200:
            return json.loads(r.body)["result"] if fmt == "json" else xml_members(r.body)
        assert "Task still running" in r.text(), (r.status, r.text()[:300])
        time.sleep(0.2)
    raise AssertionError("the task did not finish")


def owner(ticket):
    """The worker that holds a routed admin ticket of a running or interactive task, asked
    directly (with the secret): the others answer "Ticket not found"."""
    plain = ticket[:39]
    found = []
    for w in WORKERS:
        if w.proc.poll() is not None:
            continue
        body = json.dumps({"method": "getresult", "params": {"adminticket": plain,
                                                              "pluginversion": PV},
                           "id": "1"}).encode()
        r = http(w.port, "POST", WORKER_URLPATH, body,
                 headers={"X-Vplcell-Auth": SEC.worker})
        if "Ticket not found" not in r.text():
            found.append(w)
    assert len(found) <= 1, "two workers claim one ticket"
    return found[0] if found else None


def wss(proxy, ticket, what):
    return f"wss://127.0.0.1:{proxy.sport}/{ticket}/{what}"


def is_msg(prefix):
    return lambda e: e["ev"] == "message" and e.get("text", "").startswith(prefix)


def is_ev(name):
    return lambda e: e["ev"] == name


def worker_tasks(w):
    """Tasks a worker has started, from its log."""
    return w.read_log().count("rpc request ")


# ---- tests ----

def test_fixed_pages_and_available():
    for tls in (True, False):
        r = http(P.sport if tls else P.port, "GET", "/OK", tls=tls)
        assert r.status == 200 and b"OK" in r.body, r.raw[:200]
    assert http(P.sport, "GET", "/robots.txt", tls=True).status == 200
    assert http(P.sport, "GET", "/nothing", tls=True).status == 404
    a = P.rpc("available", {"maxmemory": 10240})
    assert a["status"] == "ready", a
    ok = http(P.sport, "GET", "/OK", tls=True)
    assert ok.header("strict-transport-security") == "max-age=86400", ok.headers
    assert http(P.port, "GET", "/OK").header("strict-transport-security") is None
    assert a["secureport"] == P.sport, (a, P.sport)
    assert a["maxtime"] == 60 and a["maxmemory"] > 0, a
    # XML-RPC gets XML back, in the reference layout
    r = P.rpc_raw("available", {"maxmemory": 10240}, fmt="xml")
    assert r.status == 200 and r.body.startswith(b"<?xml"), r.raw[:300]
    m = xml_members(r.body)
    assert m["status"] == "ready" and m["secureport"] == P.sport, m


def test_evaluations_spread_and_route():
    before = [worker_tasks(w) for w in WORKERS]
    tickets = [hello_request() for _ in range(6)]
    for r in tickets:
        for k in ("adminticket", "monitorticket", "executionticket"):
            assert len(r[k]) == 63 and r[k].isdigit(), r
        assert r["secureport"] == P.sport and r["port"] == P.port, r
    # answers the workers wrote (plain HTTP to the proxy) reach TLS clients with HSTS
    raw = P.rpc_raw("stop", {"adminticket": "1" * 63, "pluginversion": PV})
    assert raw.status == 200 and raw.header("strict-transport-security") == "max-age=86400", \
        raw.headers
    results = [getresult(r["adminticket"]) for r in tickets]
    for g in results:
        assert g["executed"] == 1 and "Hello world" in g["execution"], g
    used = [worker_tasks(w) - b for w, b in zip(WORKERS, before)]
    assert sum(used) == 6, used
    assert sum(1 for u in used if u) >= 2, f"all tasks on one worker: {used}"


def test_xmlrpc_routes_too():
    r = hello_request(fmt="xml")
    assert len(r["adminticket"]) == 63, r
    g = getresult(r["adminticket"], fmt="xml")
    assert "Hello world" in g["execution"], g


def test_running_and_stop_are_routed():
    p = task_params(files_for({}, "sleep 30", execute="vpl_run.sh"), execute="vpl_run.sh")
    r = P.rpc("request", p)
    admin = r["adminticket"]
    w = owner(admin)
    assert w is not None, "no worker holds the task"
    deadline = time.time() + 60
    while P.rpc("running", {"adminticket": admin, "pluginversion": PV})["running"] != 1:
        assert time.time() < deadline, "never running"
        time.sleep(0.2)
    assert P.rpc("stop", {"adminticket": admin, "pluginversion": PV})["stop"] == 1
    deadline = time.time() + 30
    while P.rpc("running", {"adminticket": admin, "pluginversion": PV})["running"] != 0:
        assert time.time() < deadline, "stop did not stop"
        time.sleep(0.2)


def test_terminal_through_proxy_tls():
    p = task_params(files_for({"r.c": READER_C}, "./r", "gcc -o r r.c", "vpl_run.sh"),
                    "vpl_run.sh", interactive=1)
    r = P.rpc("request", p)
    with WsClient() as c:
        c.open("m", wss(P, r["monitorticket"], "monitor"), insecure=True)
        c.wait("m", is_ev("open"))
        c.wait("m", is_msg("run:terminal"), timeout=120)
        c.open("x", wss(P, r["executionticket"], "execute"), insecure=True)
        c.wait("x", is_ev("open"))
        c.wait("x", lambda e: "READY?" in "".join(c.texts("x")), timeout=60)
        c.send("x", "proxy\r")
        c.wait("x", lambda e: "Hello, proxy!" in "".join(c.texts("x")), timeout=30)
        c.wait("m", is_msg("close:"), timeout=30)
    # the execution ticket was single use, at the worker: the proxy keeps no state
    with WsClient() as c:
        c.open("x2", wss(P, r["executionticket"], "execute"), insecure=True)
        e = c.wait("x2", lambda e: e["ev"] in ("unexpected", "open"))
        assert e["ev"] == "unexpected" and e["status"] == 500, e


def test_forged_and_foreign_routes():
    r = hello_request()
    admin = r["adminticket"]
    g = getresult(admin)
    assert "Hello world" in g["execution"]
    m = r["monitorticket"]
    # one digit of the route changed, anywhere: refused without reaching any worker
    for pos in (39, 45, 55, 62):
        bad = m[:pos] + str((int(m[pos]) + 1) % 10) + m[pos + 1:]
        with WsClient() as c:
            c.open("m", wss(P, bad, "monitor"), insecure=True)
            e = c.wait("m", lambda e: e["ev"] in ("unexpected", "open"))
            assert e["ev"] == "unexpected" and e["status"] == 500, (pos, e)
    # a route made by a proxy with another secret is not ours
    other = Secrets(route="a-completely-different-route-secret-xyz")
    q = Proxy([addr(w) for w in WORKERS], other)
    try:
        q.wait_workers(3)
        r2 = q.rpc("request", task_params(files_for({}, "sleep 20", execute="vpl_run.sh"),
                                          "vpl_run.sh", interactive=1))
        with WsClient() as c:
            c.open("m", wss(P, r2["monitorticket"], "monitor"), insecure=True)
            e = c.wait("m", lambda e: e["ev"] in ("unexpected", "open"))
            assert e["ev"] == "unexpected" and e["status"] == 500, e
        # and its admin ticket is unknown here: answered as the reference answers one
        x = P.rpc_raw("getresult", {"adminticket": r2["adminticket"], "pluginversion": PV})
        assert x.status == 500 and "Ticket" in x.text(), x.text()[:200]
        q.rpc("stop", {"adminticket": r2["adminticket"], "pluginversion": PV})
    finally:
        q.stop()
    # the plain worker ticket (no route) is refused too
    with WsClient() as c:
        c.open("m", wss(P, m[:39], "monitor"), insecure=True)
        e = c.wait("m", lambda e: e["ev"] in ("unexpected", "open"))
        assert e["ev"] == "unexpected" and e["status"] == 500, e


def test_web_app_through_proxy():
    script = ("#!/bin/bash\nmkdir -p site\n"
              f"printf '<html><body>{MARK}</body></html>' > site/index.html\n"
              "printf '%s\\n' '127.0.0.1:8000' > .vpl_localserveraddress\n"
              "cat > vpl_webexecution <<'EOF'\n#!/bin/bash\necho SERVING\n"
              "cd site && exec python3 -m http.server --bind 127.0.0.1 8000\nEOF\n"
              "chmod +x vpl_webexecution\n")
    r = P.rpc("request", task_params({"vpl_run.sh": script}, "vpl_run.sh", interactive=1,
                                     maxtime=40))
    with WsClient() as c:
        c.open("m", wss(P, r["monitorticket"], "monitor"), insecure=True)
        c.wait("m", is_msg("run:webterminal"), 60)
        c.open("x", wss(P, r["executionticket"], "execute"), insecure=True)
        c.wait("x", is_ev("open"))
        e = c.wait("m", is_msg("run:browser:"), 30)
        t = e["text"][len("run:browser:"):]
        assert len(t) == 63 and t.isdigit(), e  # the proxy added the route
        c.wait("x", lambda e: "SERVING" in "".join(c.texts("x")), 30)
        p = http(P.sport, "GET", f"/{t}/httpPassthrough", tls=True)
        assert p.status == 302, p.raw[:300]
        assert f"VPL_web={t}; Path=/" in (p.headers.get("set-cookie") or []), p.headers
        deadline = time.time() + 15
        while True:
            g = http(P.sport, "GET", "/", tls=True, headers={"Cookie": f"VPL_web={t}"})
            if g.status != 502 or time.time() > deadline:
                break
            time.sleep(0.3)
        assert g.status == 200 and MARK.encode() in g.body, g.raw[:300]
        # a cookie whose route is forged is not proxied: the worker's own 404 for GET /
        bad = t[:50] + str((int(t[50]) + 3) % 10) + t[51:]
        w = http(P.sport, "GET", "/", tls=True, headers={"Cookie": f"VPL_web={bad}"})
        assert w.status == 404 and MARK.encode() not in w.body, w.raw[:300]
        c.close("x")
        c.wait("m", is_msg("close:"), 30)


def test_two_proxies_share_nothing():
    q = Proxy([addr(w) for w in WORKERS], SEC)
    try:
        q.wait_workers(3)
        p = task_params(files_for({"r.c": READER_C}, "./r", "gcc -o r r.c", "vpl_run.sh"),
                        "vpl_run.sh", interactive=1)
        r = P.rpc("request", p)
        with WsClient() as c:  # the browser lands on the other proxy
            c.open("m", wss(q, r["monitorticket"], "monitor"), insecure=True)
            c.wait("m", is_msg("run:terminal"), timeout=120)
            c.open("x", wss(q, r["executionticket"], "execute"), insecure=True)
            c.wait("x", lambda e: "READY?" in "".join(c.texts("x")), timeout=60)
            c.send("x", "two\r")
            c.wait("x", lambda e: "Hello, two!" in "".join(c.texts("x")), timeout=30)
            c.wait("m", is_msg("close:"), timeout=30)
        g = hello_request(proxy=q)
        assert "Hello world" in getresult(g["adminticket"], proxy=P)["execution"]
    finally:
        rc = q.stop()
    S.check(rc == 0, f"second proxy exits cleanly (rc={rc})")


def test_tls_versions_and_garbage():
    for v in (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            ctx.minimum_version = v
            ctx.maximum_version = v
            ctx.set_ciphers("ALL:@SECLEVEL=0")
        except (ValueError, ssl.SSLError):
            continue
        s = socket.create_connection(("127.0.0.1", P.sport), timeout=5)
        try:
            ctx.wrap_socket(s, server_hostname="localhost")
            raise AssertionError(f"{v} accepted")
        except (ssl.SSLError, ConnectionResetError, OSError):
            pass
        finally:
            s.close()
    s = socket.create_connection(("127.0.0.1", P.sport), timeout=5)
    s.sendall(b"\x16\x03\x01\x00\x05garbage-not-a-client-hello" * 10)
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    s = socket.create_connection(("127.0.0.1", P.sport), timeout=5)
    s.sendall(b"GET /OK HTTP/1.1\r\n\r\n")  # plain HTTP on the TLS port
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    assert http(P.sport, "GET", "/OK", tls=True).status == 200


def cert_serial(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5),
                        server_hostname="localhost")
    der = s.getpeercert(binary_form=True)
    s.close()
    return der


def test_sighup_reloads_certificate_with_live_connection():
    q = Proxy([addr(w) for w in WORKERS], SEC)
    try:
        old = cert_serial(q.sport)
        live = connect(q.sport, tls=True)
        live.sendall(b"GET /OK HTTP/1.1\r\nHost: x\r\n")  # head not finished yet
        d = tempfile.mkdtemp(prefix="vplcell-newcert-")
        cert, key = make_cert(d, cn="renewed")
        bad_cert, _ = make_cert(d, cn="other", name="other")
        # a key that does not match first: the current pair stays
        os.replace(bad_cert, q.cert)
        q.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        assert cert_serial(q.sport) == old, "a mismatched pair replaced the certificate"
        os.replace(cert, q.cert)
        os.replace(key, q.key)
        q.proc.send_signal(signal.SIGHUP)
        deadline = time.time() + 10
        while cert_serial(q.sport) == old:
            assert time.time() < deadline, "certificate not reloaded"
            time.sleep(0.2)
        live.sendall(b"\r\n")
        r = Response(recv_all(live))
        live.close()
        assert r.status == 200, r.raw[:200]
        assert "keeping the current certificate" in q.read_log()
    finally:
        q.stop()


def test_oversized_and_malformed():
    big = b"x" * (2 << 20)  # REQUEST_MAX_SIZE is 1 MiB here
    r = http(P.sport, "POST", P.urlpath, big, tls=True)
    assert r.status == 413, r.raw[:200]
    r = http(P.sport, "POST", P.urlpath, b"{not json", tls=True)
    assert r.status == 400, r.raw[:200]
    r = http(P.sport, "POST", P.urlpath, json.dumps({"method": "nosuch", "params": {},
                                                     "id": "1"}).encode(), tls=True)
    assert r.status >= 400, r.raw[:200]
    r = http(P.sport, "GET", "/OK", tls=True, headers={"X-Long": "y" * 20000})
    assert r.status in (413, 431), r.raw[:200]
    r = http(P.sport, "POST", "/wrong-path", b"{}", tls=True)
    assert r.status == 404, r.raw[:200]
    r = http(P.sport, "POST", P.urlpath, b"{}", tls=True,
             headers={"Transfer-Encoding": "chunked"})
    assert r.status in (400, 501), r.raw[:200]
    # smuggling attempt: two lengths
    s = connect(P.sport, tls=True)
    s.sendall(f"POST {P.urlpath} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
              "Content-Length: 30\r\n\r\n{}".encode())
    assert Response(recv_all(s)).status == 400
    s.close()
    assert P.rpc("available", {"maxmemory": 1})["status"] == "ready"


def test_connections_per_address_capped():
    """MAX_CONNECTIONS_PER_IP: the fourth open connection of one address is closed at once,
    the others still work, and a slot freed is a slot to use."""
    q = Proxy([addr(w) for w in WORKERS], SEC, MAX_CONNECTIONS_PER_IP=3)
    held = []
    try:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", q.port), timeout=5)
            s.sendall(b"GET /OK HTTP/1.1\r\nHost: x\r\n")  # head not finished: held open
            held.append(s)
        time.sleep(0.3)
        extra = socket.create_connection(("127.0.0.1", q.port), timeout=5)
        try:
            extra.sendall(b"GET /OK HTTP/1.1\r\nHost: x\r\n\r\n")
            got = extra.recv(100)
        except OSError:
            got = b""
        extra.close()
        assert got == b"", got
        assert "more than 3 connections from one address" in q.read_log()
        held[0].sendall(b"\r\n")
        assert Response(recv_all(held[0])).status == 200
        held.pop(0).close()
        time.sleep(0.3)
        assert http(q.port, "GET", "/OK").status == 200
    finally:
        for s in held:
            s.close()
        q.stop()


def test_trusted_front_proxy_forwards_client():
    """nginx in front (TRUSTED_PROXIES): its X-Forwarded-For is the client for
    TASK_ONLY_FROM and reaches the worker; from anyone else the header means nothing."""
    q = Proxy([addr(w) for w in WORKERS], SEC, TRUSTED_PROXIES="127.0.0.1/32",
              TASK_ONLY_FROM="10.9.9.9/32")
    r = None
    try:
        q.wait_workers(3)
        body = json.dumps({"method": "stop", "params": {"adminticket": "5" * 63},
                           "id": "1"}).encode()
        ok = http(q.sport, "POST", q.urlpath, body, tls=True,
                  headers={"X-Forwarded-For": "192.0.2.1, 10.9.9.9"})
        assert ok.status == 200, ok.raw[:200]
        bad = http(q.sport, "POST", q.urlpath, body, tls=True,
                   headers={"X-Forwarded-For": "10.9.9.9, 10.1.1.1"})
        assert bad.status == 400 and b"Client not allowed" in bad.body, bad.raw[:200]
        none = http(q.sport, "POST", q.urlpath, body, tls=True)
        assert none.status == 400, none.raw[:200]
        assert any("from=10.9.9.9" in w.read_log() for w in WORKERS)
    finally:
        q.stop()
    # a proxy that does not trust 127.0.0.1 ignores the header
    q = Proxy([addr(w) for w in WORKERS], SEC, TASK_ONLY_FROM="10.9.9.9/32")
    try:
        q.wait_workers(3)
        r = http(q.sport, "POST", q.urlpath, body, tls=True,
                 headers={"X-Forwarded-For": "10.9.9.9"})
        assert r.status == 400, r.raw[:200]
    finally:
        q.stop()


def test_workers_refuse_direct_access():
    w = WORKERS[0]
    body = json.dumps({"method": "available", "params": {"maxmemory": 1}, "id": "1"}).encode()
    assert http(w.port, "POST", WORKER_URLPATH, body).status == 403
    assert http(w.port, "POST", WORKER_URLPATH, body,
                headers={"X-Vplcell-Auth": SEC.worker + "x"}).status == 403
    assert http(w.port, "POST", WORKER_URLPATH, body,
                headers={"X-Vplcell-Auth": SEC.worker}).status == 200
    assert http(w.port, "GET", "/OK").status == 200  # health checks need no secret
    with WsClient() as c:
        c.open("m", f"ws://127.0.0.1:{w.port}/{'1' * 39}/monitor")
        e = c.wait("m", lambda e: e["ev"] in ("unexpected", "open"))
        assert e["ev"] == "unexpected", e
    assert "no valid proxy authentication" in w.read_log()
    # the secret never reaches a log
    for x in WORKERS:
        assert SEC.worker not in x.read_log()
    assert SEC.worker not in P.read_log() and SEC.route not in P.read_log()


def test_metrics_counted():
    text = scrape(P.mport)
    assert metric(text, "vplcell_proxy_requests_total", method="request", status="200") >= 6
    assert metric(text, "vplcell_proxy_requests_total", method="available", status="200") >= 1
    assert metric(text, "vplcell_proxy_workers", state="up") == 3, text[-2000:]
    assert metric(text, "vplcell_proxy_relayed_bytes_total", direction="to_client") > 0
    assert metric(text, "vplcell_proxy_request_duration_seconds_count", method="request") >= 6
    # a worker's own metrics, on its loopback port
    wt = scrape(WORKERS[0].metrics_port)
    assert metric(wt, "vplcell_jail_requests_total") > 0, wt[:1000]


def test_worker_added_by_dns():
    """Workers on 127.0.0.5 and 127.0.0.6 behind one name in a hosts file the proxy
    (in its own mount namespace) reads; the second line appears while it runs."""
    d = tempfile.mkdtemp(prefix="vplcell-dns-")
    hosts = os.path.join(d, "hosts")
    port = free_port()
    a = start_worker("e", INTERFACE="127.0.0.5", PORT=port, SECURE_PORT=0)
    b = start_worker("f", INTERFACE="127.0.0.6", PORT=port, SECURE_PORT=0)
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.5 vplworkers\n")
    q = None
    try:
        prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                  f'mount --bind "{hosts}" /etc/hosts && exec "$0" "$@"']
        q = Proxy([f"vplworkers:{port}"], SEC, prefix=prefix, DNS_INTERVAL=500)
        q.wait_workers(1)
        with open(hosts, "r+") as f:  # same inode: the bind mount shows it
            f.seek(0, 2)
            f.write("127.0.0.6 vplworkers\n")
        q.wait_workers(2)
        before = worker_tasks(b)
        for _ in range(4):
            getresult(hello_request(proxy=q)["adminticket"], proxy=q)
        assert worker_tasks(b) > before, "the new worker took no task"
    finally:
        if q:
            q.stop()
        a.stop()
        b.stop()


def direct_rpc(w, method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    return http(w.port, "POST", WORKER_URLPATH, body, headers={"X-Vplcell-Auth": SEC.worker})


def test_worker_drains_on_sigterm():
    """SIGTERM with a task alive: available says offline, new tasks get 503, the task
    finishes and its result is collected, then the worker exits by itself (rc 0)."""
    w = start_worker("g", SHUTDOWN_GRACE=60)
    try:
        p = task_params(files_for({}, "sleep 3; echo drained-ok", execute="vpl_run.sh"),
                        "vpl_run.sh")
        r = direct_rpc(w, "request", p)
        assert r.status == 200, r.raw[:300]
        admin = json.loads(r.body)["result"]["adminticket"]
        w.proc.send_signal(signal.SIGTERM)
        deadline = time.time() + 10
        while True:
            a = json.loads(direct_rpc(w, "available", {"maxmemory": 1}).body)["result"]
            if a["status"] == "offline" or time.time() > deadline:
                break
            time.sleep(0.1)
        assert a["status"] == "offline", a
        assert direct_rpc(w, "request", p).status == 503
        assert w.proc.poll() is None, "exited with a task alive"
        deadline = time.time() + 60
        while True:
            g = direct_rpc(w, "getresult", {"adminticket": admin, "pluginversion": PV})
            if g.status == 200 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert g.status == 200 and "drained-ok" in g.text(), g.raw[:300]
        w.proc.wait(15)
        assert w.proc.returncode == 0, w.proc.returncode
        assert "SIGTERM: draining" in w.read_log()
    finally:
        w.stop()


def test_worker_killed_mid_run():
    """Its tasks fail cleanly at once (no hang), the others keep serving."""
    p = task_params(files_for({"r.c": READER_C}, "./r", "gcc -o r r.c", "vpl_run.sh"),
                    "vpl_run.sh", interactive=1)
    r = P.rpc("request", p)
    victim = owner(r["adminticket"])
    assert victim is not None
    with WsClient() as c:
        c.open("m", wss(P, r["monitorticket"], "monitor"), insecure=True)
        c.wait("m", is_msg("run:terminal"), timeout=120)
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait()
        e = c.wait("m", lambda e: e["ev"] in ("close", "unexpected"), timeout=15)
        assert e, "the monitor socket of a dead worker stayed open"
    t0 = time.time()
    x = P.rpc_raw("getresult", {"adminticket": r["adminticket"], "pluginversion": PV})
    assert x.status == 500, x.raw[:200]
    x = P.rpc_raw("running", {"adminticket": r["adminticket"], "pluginversion": PV})
    assert x.status in (200, 500) and (x.status == 500 or b'"running":0' in x.body), x.raw[:200]
    assert time.time() - t0 < 10, "answers about a dead worker's task took too long"
    # new work goes elsewhere at once (a failed connect is retried on another worker)
    for _ in range(3):
        g = getresult(hello_request()["adminticket"])
        assert "Hello world" in g["execution"], g
    P.wait_workers(2)
    WORKERS.remove(victim)


def main():
    global P, SEC
    ENV.update(containerd_start(CTD_DIR))
    try:
        tar = subprocess.run([f"{ROOT}/images/minivpl/build.sh"], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"], "images",
                        "import", tar], check=True, capture_output=True)
        SEC = Secrets()
        for tag in "pqr":
            WORKERS.append(start_worker(tag))
        P = Proxy([addr(w) for w in WORKERS], SEC, REQUEST_MAX_SIZE="1M", HSTS_MAX_AGE=86400)
        print(f"proxy log: {P.logpath}", flush=True)
        P.wait_workers(3)
        only = sys.argv[1:]
        order = [test_fixed_pages_and_available, test_evaluations_spread_and_route,
                 test_xmlrpc_routes_too, test_running_and_stop_are_routed,
                 test_terminal_through_proxy_tls, test_forged_and_foreign_routes,
                 test_web_app_through_proxy, test_two_proxies_share_nothing,
                 test_tls_versions_and_garbage,
                 test_sighup_reloads_certificate_with_live_connection,
                 test_oversized_and_malformed, test_connections_per_address_capped,
                 test_trusted_front_proxy_forwards_client,
                 test_workers_refuse_direct_access,
                 test_metrics_counted, test_worker_added_by_dns, test_worker_drains_on_sigterm,
                 test_worker_killed_mid_run]
        for fn in order:
            if not only or any(o in fn.__name__ for o in only):
                S.run(fn)
        rc = P.stop()
        S.check(rc == 0, f"proxy exits cleanly (rc={rc})")
        for w in WORKERS:
            rc = w.stop()
            S.check(rc == 0, f"worker exits cleanly (rc={rc})")
        if S.failed:
            print(P.read_log()[-6000:])
    finally:
        for w in WORKERS:
            if w.proc.poll() is None:
                w.proc.kill()
        if P and P.proc.poll() is None:
            P.proc.kill()
        containerd_stop(CTD_DIR)
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
