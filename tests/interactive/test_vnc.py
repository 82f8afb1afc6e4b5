#!/usr/bin/env python3
"""Graphical runs (vpl_wexecution) through the real worker, a private
containerd and the minivpl image (Xvnc + openbox): a real WebSocket client
(Node's `ws`) speaks RFB through the execute socket, authenticates with the
password the plugin derives, and reads the framebuffer the program painted."""
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, HERE)
from harness import Jail, Suite, containerd_start, containerd_stop, http  # noqa: E402
from wsclient import WsClient  # noqa: E402
from rfb import Rfb, vnc_response  # noqa: E402
import fixture  # noqa: E402

S = Suite("vnc")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
ENV = {}
J = None

def rpc(method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    r = http(J.port, "POST", J.urlpath, body)
    assert r.status == 200, (r.status, r.text())
    return json.loads(r.body)["result"]


def request(files, run_cmd, interactive=1, maxtime=20, execute="vpl_run.sh"):
    files = dict(files)
    files[execute] = ("#!/bin/bash\n" + run_cmd.get("compile", "") + "\n"
                      "cat > vpl_execution <<'EOF'\n#!/bin/bash\n" + run_cmd["run"] +
                      "\nEOF\nchmod +x vpl_execution\n")
    p = {"files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
         "execute": execute, "interactive": interactive, "lang": "en_US.UTF-8",
         "maxtime": maxtime, "maxmemory": 256 << 20, "maxfilesize": 64 << 20,
         "maxprocesses": 64, "pluginversion": 2026012812}
    return rpc("request", p)


def url(ticket, what):
    return f"ws://127.0.0.1:{J.port}/{ticket}/{what}"


def is_msg(prefix):
    return lambda e: e["ev"] == "message" and e.get("text", "").startswith(prefix)


def test_vnc_desktop():
    """vpl_wexecution under Xvnc: the RFB handshake and VNC authentication with
    the password the plugin derives (the execution ticket's first 8
    characters) succeed, and the framebuffer shows the colour the program
    painted."""
    import struct
    prog = "xsetroot -solid '#ff0000'; sleep 30"
    files = {"vpl_run.sh": "#!/bin/bash\ncat > vpl_wexecution <<'EOF'\n#!/bin/bash\n" + prog +
             "\nEOF\nchmod +x vpl_wexecution\n"}
    p = {"files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
         "execute": "vpl_run.sh", "interactive": 1, "lang": "en_US.UTF-8", "maxtime": 60,
         "maxmemory": 512 << 20, "maxfilesize": 64 << 20, "maxprocesses": 200,
         "pluginversion": 2026012812}
    r = rpc("request", p)
    pw = r["executionticket"][:8]
    with WsClient() as c:
        c.open("m", url(r["monitorticket"], "monitor"))
        e = c.wait("m", is_msg("run:vnc:"))
        assert e["text"] == "run:vnc:" + pw, e
        c.open("v", url(r["executionticket"], "execute"))
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
        pf = rfb.read(16)
        name_len = struct.unpack(">I", rfb.read(4))[0]
        rfb.read(name_len)
        assert w > 0 and h > 0
        bpp, depth, big, true_colour = pf[0], pf[1], pf[2], pf[3]
        # ask for 32-bit little-endian RGB888, raw encoding, then the whole screen
        rfb.write(struct.pack(">BxxxBBBBHHHBBBxxx", 0, 32, 24, 0, 1, 255, 255, 255, 16, 8, 0))
        rfb.write(struct.pack(">BxHi", 2, 1, 0))
        red = False
        for _ in range(40):  # the program may paint after the first update
            rfb.write(struct.pack(">BBHHHH", 3, 0, 0, 0, w, h))
            mtype = rfb.read(1)[0]
            assert mtype == 0, mtype
            rfb.read(1)
            nrect = struct.unpack(">H", rfb.read(2))[0]
            pixels = b""
            for _ in range(nrect):
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
    return fixture.run_suite(globals(), S, "v")

if __name__ == "__main__":
    sys.exit(main())
