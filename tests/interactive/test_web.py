#!/usr/bin/env python3
"""Web-app mode (vpl_webexecution, vpl-jail-protocol.md §6.8) through the real
worker, a private containerd and the minivpl image: the program runs on the
execute socket's terminal, serves on the address the compile script wrote in
.vpl_localserveraddress, the monitor announces run:browser:<ticket>, the
cookie setter answers /<ticket>/httpPassthrough and every request carrying the
VPL_web cookie is relayed to the program's server inside the container."""
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, HERE)
from harness import Jail, Suite, containerd_start, containerd_stop, http  # noqa: E402
from wsclient import WsClient  # noqa: E402
import fixture  # noqa: E402

S = Suite("web")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
ENV = {}
J = None
MARK = "vplcell-web-app-7f3a"


def rpc(method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    r = http(J.port, "POST", J.urlpath, body)
    assert r.status == 200, (r.status, r.text())
    return json.loads(r.body)["result"]


def web_request(addr="127.0.0.1:8000", maxtime=40):
    ip, port = addr.split(":")
    script = ("#!/bin/bash\nmkdir -p site\n"
              f"printf '<html><body>{MARK}</body></html>' > site/index.html\n"
              f"printf '%s\\n' '{addr}' > .vpl_localserveraddress\n"
              "cat > vpl_webexecution <<'EOF'\n#!/bin/bash\necho SERVING\n"
              f"cd site && exec python3 -m http.server --bind {ip} {port}\nEOF\n"
              "chmod +x vpl_webexecution\n")
    files = {"vpl_run.sh": script}
    p = {"files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
         "execute": "vpl_run.sh", "interactive": 1, "lang": "en_US.UTF-8",
         "maxtime": maxtime, "maxmemory": 256 << 20, "maxfilesize": 64 << 20,
         "maxprocesses": 64, "pluginversion": 2026012812}
    return rpc("request", p)


def url(ticket, what):
    return f"ws://127.0.0.1:{J.port}/{ticket}/{what}"


def is_msg(prefix):
    return lambda e: e["ev"] == "message" and e.get("text", "").startswith(prefix)


def start_web(c, addr="127.0.0.1:8000"):
    """Monitor, execute socket; returns (request result, pass-through ticket)."""
    r = web_request(addr)
    c.open("m", url(r["monitorticket"], "monitor"))
    c.wait("m", is_msg("run:webterminal"), 60)
    c.open("x", url(r["executionticket"], "execute"))
    c.wait("x", lambda e: e["ev"] == "open")
    e = c.wait("m", is_msg("run:browser:"), 30)
    ticket = e["text"][len("run:browser:"):]
    TICKETS.append(ticket)
    assert ticket.isdigit() and len(ticket) >= 32, e
    # the program's terminal reaches the execute socket
    c.wait("x", lambda e: "SERVING" in "".join(c.texts("x")) + e.get("text", ""), 30)
    return r, ticket


def get_with_cookie(ticket, path="/", method="GET", body=b"", extra=None):
    h = {"Cookie": f"VPL_web={ticket}"}
    h.update(extra or {})
    if method == "POST":
        h["Content-Type"] = "text/plain"
    deadline = time.time() + 15
    while True:  # the server inside may take a moment to listen
        r = http(J.port, method, path, body, headers=h)
        if r.status != 502 or time.time() > deadline:
            return r
        time.sleep(0.3)


def test_web_app_end_to_end():
    with WsClient() as c:
        r, t = start_web(c)
        mon = c.texts("m")
        assert "run:webterminal" in mon, mon
        # the cookie setter
        p = http(J.port, "GET", f"/{t}/httpPassthrough")
        assert p.status == 302, (p.status, p.raw[:300])
        assert p.header("location") == "/", p.headers
        assert f"VPL_web={t}; Path=/" in (p.headers.get("set-cookie") or []), p.headers
        # the program's site, through the cookie
        g = get_with_cookie(t)
        assert g.status == 200, (g.status, g.raw[:300])
        assert MARK.encode() in g.body, g.raw[:500]
        assert "SimpleHTTP" in (g.header("server") or ""), g.headers  # the program's answer
        # a status the program's server chose arrives as sent (http.server: no POST)
        pr = get_with_cookie(t, "/form?a=1", "POST", b"x=1&y=2")
        assert pr.status == 501, (pr.status, pr.raw[:300])
        # a missing page: the program's 404, not ours
        nf = get_with_cookie(t, "/nothing-here.html")
        assert nf.status == 404 and "SimpleHTTP" in (nf.header("server") or ""), nf.raw[:300]
        # a wrong cookie is not proxied: the worker's own 404 for GET /
        w = http(J.port, "GET", "/", headers={"Cookie": "VPL_web=12345678901234567890"})
        assert w.status == 404 and "SimpleHTTP" not in (w.header("server") or ""), w.raw[:300]
        assert MARK.encode() not in w.body
        # nor an unknown pass-through ticket, nor another task ticket
        assert http(J.port, "GET", "/1234567890/httpPassthrough").status == 404
        assert http(J.port, "GET", f"/{r['adminticket']}/httpPassthrough").status == 404
        # a teacher's browser (VPL_Iwh already there) is asked for a private window
        pv = http(J.port, "GET", f"/{t}/httpPassthrough?private",
                  headers={"Cookie": "VPL_Iwh=y"})
        assert pv.status == 200 and b"private" in pv.body.lower(), (pv.status, pv.raw[:300])
        assert not any("VPL_web" in v for v in pv.headers.get("set-cookie", [])), pv.headers
        # without VPL_Iwh, ?private still sets the cookie
        pv2 = http(J.port, "GET", f"/{t}/httpPassthrough?private")
        assert pv2.status == 302, pv2.raw[:300]
        # the program stops (browser closes the terminal): the cookie no longer proxies
        c.close("x")
        c.wait("m", is_msg("close:"), 30)
    deadline = time.time() + 10
    while True:
        g = http(J.port, "GET", "/", headers={"Cookie": f"VPL_web={t}"})
        if MARK.encode() not in g.body or time.time() > deadline:
            break
        time.sleep(0.3)
    assert g.status == 404 and MARK.encode() not in g.body, g.raw[:300]
    assert http(J.port, "GET", f"/{t}/httpPassthrough").status == 404


def test_other_loopback_address_and_concurrency():
    """127.a.b.c addresses work; several proxied connections at once."""
    import threading
    with WsClient() as c:
        _, t = start_web(c, "127.0.3.7:8080")
        g = get_with_cookie(t)
        assert g.status == 200 and MARK.encode() in g.body, g.raw[:300]
        res = []

        def one():
            res.append(http(J.port, "GET", "/", headers={"Cookie": f"VPL_web={t}"}).status)
        th = [threading.Thread(target=one) for _ in range(6)]
        for x in th:
            x.start()
        for x in th:
            x.join()
        # 3 relays at once: the others may get 503, none hangs or breaks the task
        assert all(s in (200, 503) for s in res) and 200 in res, res
        time.sleep(1)
        g = get_with_cookie(t)
        assert g.status == 200 and MARK.encode() in g.body, g.raw[:300]
        c.close("x")
        c.wait("m", is_msg("close:"), 30)


def main():
    def no_ticket_logged(j):
        log = j.read_log()
        S.check(not any(t in log for t in TICKETS), "no ticket in the log")
    return fixture.run_suite(globals(), S, "w", after_stop=no_ticket_logged)

TICKETS = []


if __name__ == "__main__":
    sys.exit(main())
