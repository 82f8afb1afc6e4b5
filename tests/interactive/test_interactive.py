#!/usr/bin/env python3
"""Interactive runs through the real worker, a private containerd and the
minivpl image, driven by a real WebSocket client (Node's `ws`): the monitor
socket's messages, a terminal program that reads input, wrong and reused
tickets, the browser leaving, stop and time limits."""
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

S = Suite("interactive")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
ENV = {}
J = None

READER_C = r'''#include <stdio.h>
int main(void) {
    char name[100];
    printf("What is your name? ");
    fflush(stdout);
    if (scanf("%99s", name) != 1) return 1;
    printf("Hello, %s! \xc3\xa9t\xc3\xa9 \xe2\x82\xac\n", name);
    return 0;
}
'''


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


def test_terminal_program_reads_input():
    r = request({"name.c": READER_C}, {"compile": "gcc -o name name.c", "run": "./name"})
    with WsClient() as c:
        c.open("m", url(r["monitorticket"], "monitor"))
        c.wait("m", lambda e: e["ev"] == "open")
        c.wait("m", is_msg("run:terminal"))
        c.open("x", url(r["executionticket"], "execute"))
        up = c.wait("x", lambda e: e["ev"] == "upgrade")
        assert any("VPL_Iwh=y" in s for s in up["setCookie"]), up
        c.wait("x", lambda e: e["ev"] == "open")
        c.wait("x", lambda e: e["ev"] == "message" and "your name?" in e.get("text", ""))
        c.send("x", text="Ada\r")
        got = c.wait("x", lambda e: e["ev"] == "message" and "Hello, Ada!" in
                     "".join(c.texts("x")) + e.get("text", ""))
        c.wait("x", lambda e: e["ev"] == "close")
        out = "".join(c.texts("x"))
        assert "Hello, Ada! \u00e9t\u00e9 \u20ac" in out, out
        c.wait("m", is_msg("close:"))
        c.wait("m", lambda e: e["ev"] == "close")
        mon = c.texts("m")
        # §6.3: compilation output, what runs, the output again, and close: at the end
        i = mon.index("run:terminal")
        assert mon[i - 1].startswith("compilation:") and mon[i + 1].startswith("compilation:"), mon
        assert mon[-1] == "close:", mon


def main():
    global J
    ENV.update(containerd_start(CTD_DIR))
    import subprocess
    tar = subprocess.run([f"{ROOT}/images/minivpl/build.sh"], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"], "images",
                    "import", tar], check=True, capture_output=True)
    state = tempfile.mkdtemp(prefix="vplcell-state-")
    try:
        J = Jail(CONTAINERD_SOCKET=ENV["CTR_SOCKET"], CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                 HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                 DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                 WORKER_ID="i%d" % (os.getpid() % 100000), MAXTIME=60, LOGLEVEL=7, POOL_SIZE=1)
        for name, fn in list(globals().items()):
            if name.startswith("test_") and callable(fn):
                S.run(fn)
        rc = J.stop()
        S.check(rc == 0, f"worker exits cleanly (rc={rc})")
        if S.failed:
            print(J.read_log()[-8000:])
    finally:
        if J and J.proc.poll() is None:
            J.proc.kill()
        containerd_stop(CTD_DIR)
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
