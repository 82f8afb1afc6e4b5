#!/usr/bin/env python3
"""The client side of tests/e2e/test_deploy.sh: speaks to a deployed service only through the
execution server URL deploy.sh printed, as Moodle and a browser would, verifying the
certificate (the self-signed one, given as the trust anchor) and the host name.

    e2e_client.py URL CAFILE CHECK

Environment (optional):
    E2E_SECUREPORT  the port the server's answers must name as `secureport` (the port browsers
                    open their WebSockets to: PUBLIC_SECURE_PORT behind nginx); default the
                    URL's port
    E2E_SOURCE      the local address to connect from (127.0.0.2: a client nginx must name in
                    X-Forwarded-For)
    E2E_XFF         an X-Forwarded-For header the client sends (a forged one, to be ignored)

CHECK is one of:
    ok          GET /OK answers 200
    available   `available` answers ready (prints the result)
    status      prints the status `available` answers (ready, offline, busy)
    evaluate    a C hello world compiled and run, its result through getresult
    terminal    an interactive run: monitor + execute WebSockets (wss), a C program that reads
                a name from the terminal
    vnc         a graphical run: the RFB handshake through the execute socket, VNC auth with the
                first 8 characters of the execution ticket, a framebuffer update showing the
                colour the program painted
The WebSockets go, as a browser's do, to the URL's host and the `secureport` of the `request`
answer (checked to be E2E_SECUREPORT).
Exit status 0 when the check passes; the reason on stdout otherwise."""
import http.client
import json
import os
import ssl
import struct
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "interactive"))
from wsclient import WsClient  # noqa: E402
from rfb import Rfb, vnc_response  # noqa: E402

PV = 2026012812
HELLO_C = '#include <stdio.h>\nint main(void){ printf("Hello world\\n"); return 0; }\n'
READER_C = r'''#include <stdio.h>
int main(void) {
    char name[100];
    printf("What is your name? ");
    fflush(stdout);
    if (scanf("%99s", name) != 1) return 1;
    printf("Hello, %s!\n", name);
    return 0;
}
'''


class Server:
    def __init__(self, url, ca):
        u = urllib.parse.urlsplit(url)
        assert u.scheme == "https" and u.hostname and u.port, url
        self.host, self.port, self.path = u.hostname, u.port, u.path
        self.ca = ca
        self.ctx = ssl.create_default_context(cafile=ca)  # verifies chain and host name
        self.secureport = int(os.environ.get("E2E_SECUREPORT") or self.port)
        src = os.environ.get("E2E_SOURCE")
        self.source = (src, 0) if src else None
        xff = os.environ.get("E2E_XFF")
        self.extra = {"X-Forwarded-For": xff} if xff else {}

    def conn(self, timeout):
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx,
                                           timeout=timeout, source_address=self.source)

    def get(self, path):
        c = self.conn(30)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body

    def rpc_raw(self, method, params):
        body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
        c = self.conn(60)
        c.request("POST", self.path, body, {"Content-Type": "application/json;charset=UTF-8",
                                            "User-Agent": "VPL ", **self.extra})
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def rpc(self, method, params):
        st, data = self.rpc_raw(method, params)
        assert st == 200, (method, st, data[:300])
        return json.loads(data)["result"]

    def wss(self, answer, ticket, what):
        """A browser's WebSocket URL: the URL's host, the answer's secureport."""
        assert answer["secureport"] == self.secureport, (answer["secureport"], self.secureport)
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"wss://{host}:{answer['secureport']}/{answer[ticket]}/{what}"

    def getresult(self, admin, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, data = self.rpc_raw("getresult", {"adminticket": admin, "pluginversion": PV})
            if st == 200:
                return json.loads(data)["result"]
            assert b"Task still running" in data, (st, data[:300])
            time.sleep(0.2)
        raise AssertionError("the task did not finish")


def task(files, run, compile_cmd="", execute="vpl_evaluate.sh", interactive=0, maxtime=30,
         runner="vpl_execution", maxmemory=256 << 20, maxprocesses=64):
    files = dict(files)
    files[execute] = ("#!/bin/bash\n" + compile_cmd + "\n"
                      f"cat > {runner} <<'EOF'\n#!/bin/bash\n" + run +
                      f"\nEOF\nchmod +x {runner}\n")
    return {"files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
            "execute": execute, "interactive": interactive, "lang": "en_US.UTF-8",
            "maxtime": maxtime, "maxmemory": maxmemory, "maxfilesize": 64 << 20,
            "maxprocesses": maxprocesses, "pluginversion": PV}


def is_msg(prefix):
    return lambda e: e["ev"] == "message" and e.get("text", "").startswith(prefix)


def check_ok(s):
    st, body = s.get("/OK")
    assert st == 200 and b"OK" in body, (st, body[:200])


def check_available(s):
    a = s.rpc("available", {"maxmemory": 1 << 20})
    assert a["status"] == "ready", a
    assert a["secureport"] == s.secureport, a
    print(json.dumps(a))


def check_status(s):
    print(s.rpc("available", {"maxmemory": 1 << 20})["status"])


def check_evaluate(s):
    r = s.rpc("request", task({"hello.c": HELLO_C}, "./hello; echo 'Grade :=>>10'",
                              "gcc -O2 -o hello hello.c"))
    for k in ("adminticket", "monitorticket", "executionticket"):
        assert len(r[k]) == 63 and r[k].isdigit(), r
    g = s.getresult(r["adminticket"])
    assert "Hello world" in g["execution"], g
    assert g["executed"] == 1 and g["interactive"] == 0, g
    assert g["compilation"] == "", g


def check_terminal(s):
    r = s.rpc("request", task({"name.c": READER_C}, "./name", "gcc -o name name.c",
                              execute="vpl_run.sh", interactive=1))
    with WsClient() as c:
        c.open("m", s.wss(r, "monitorticket", "monitor"), ca=s.ca)
        c.wait("m", lambda e: e["ev"] == "open")
        c.wait("m", is_msg("run:terminal"), timeout=120)
        c.open("x", s.wss(r, "executionticket", "execute"), ca=s.ca)
        c.wait("x", lambda e: e["ev"] == "open")
        c.wait("x", lambda e: e["ev"] == "message" and "your name?" in "".join(c.texts("x")))
        c.send("x", text="Ada\r")
        c.wait("x", lambda e: e["ev"] == "message" and "Hello, Ada!" in "".join(c.texts("x")))
        c.wait("m", is_msg("close:"))


def check_vnc(s):
    files = {}
    p = task(files, "xsetroot -solid '#ff0000'; sleep 30", execute="vpl_run.sh", interactive=1,
             maxtime=60, runner="vpl_wexecution", maxmemory=512 << 20, maxprocesses=200)
    r = s.rpc("request", p)
    pw = r["executionticket"][:8]
    with WsClient() as c:
        c.open("m", s.wss(r, "monitorticket", "monitor"), ca=s.ca)
        e = c.wait("m", is_msg("run:vnc:"), timeout=120)
        assert e["text"] == "run:vnc:" + pw, e
        c.open("v", s.wss(r, "executionticket", "execute"), ca=s.ca)
        c.wait("v", lambda e: e["ev"] == "open")
        rfb = Rfb(c, "v")
        ver = rfb.read(12)
        assert ver.startswith(b"RFB 003."), ver
        rfb.write(b"RFB 003.008\n")
        n = rfb.read(1)[0]
        types = rfb.read(n)
        assert 2 in types, types  # VncAuth
        rfb.write(bytes([2]))
        challenge = rfb.read(16)
        rfb.write(vnc_response(pw, challenge))
        assert struct.unpack(">I", rfb.read(4))[0] == 0, "VNC authentication failed"
        rfb.write(bytes([1]))  # ClientInit: shared
        w, h = struct.unpack(">HH", rfb.read(4))
        rfb.read(16)  # server pixel format
        rfb.read(struct.unpack(">I", rfb.read(4))[0])  # desktop name
        assert w > 0 and h > 0
        # 32-bit little-endian RGB888, raw encoding, then whole-screen updates
        rfb.write(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        rfb.write(struct.pack(">BxHi", 2, 1, 0))
        red = False
        for _ in range(40):  # the program may paint after the first update
            rfb.write(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
            assert rfb.read(1)[0] == 0  # FramebufferUpdate
            rfb.read(1)
            pixels = b""
            for _ in range(struct.unpack(">H", rfb.read(2))[0]):
                x, y, rw, rh, enc = struct.unpack(">HHHHi", rfb.read(12))
                assert enc == 0, enc
                pixels += rfb.read(rw * rh * 4)
            if pixels and pixels[2] == 255 and pixels[1] == 0 and pixels[0] == 0:
                red = True
                break
            time.sleep(0.25)
        assert red, "the framebuffer never showed the program's red background"
        c.close("v")
        c.wait("m", is_msg("close:"))


def main():
    if len(sys.argv) != 4:
        print(__doc__)
        return 2
    s = Server(sys.argv[1], sys.argv[2])
    fn = globals().get("check_" + sys.argv[3])
    if not fn:
        print("unknown check " + sys.argv[3])
        return 2
    try:
        fn(s)
    except Exception as e:  # the reason, for the test's log
        import traceback
        traceback.print_exc(file=sys.stdout)
        print(f"{sys.argv[3]}: {type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
