#!/usr/bin/env python3
"""The `update` RPC (vpl-jail-protocol.md §2.7) through the real worker, a private containerd
and the minivpl image: edited files pushed into a running task (web-app mode: the page the
program serves changes live; a terminal program waiting for input reads the new file), and
what must not happen: an update of a finished or unknown task, bad names, a symlink the program
planted followed out of the work dir, the update's FIFO left behind, a client that leaves
before the answer."""
import json
import os
import socket
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

S = Suite("update")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
ENV = {}
J = None
STATE = None
MARK = "vplcell-update-first-51c2"
MARK2 = "vplcell-update-second-9e0d"
TICKETS = []
PV = 2026012812


def post(body, ctype="application/json;charset=UTF-8"):
    return http(J.port, "POST", J.urlpath, body, headers={"Content-type": ctype})


def rpc_raw(method, params):
    return post(json.dumps({"method": method, "params": params, "id": "1"}).encode())


def rpc(method, params):
    r = rpc_raw(method, params)
    assert r.status == 200, (r.status, r.text())
    return json.loads(r.body)["result"]


def update(admin, files, enc=None):
    return rpc_raw("update", {"adminticket": admin, "files": files,
                              "fileencoding": enc or {k: 0 for k in files},
                              "filestodelete": {"old.php": 1}, "pluginversion": PV})


def request(files, script, interactive=1, maxtime=40):
    files = dict(files)
    files["vpl_run.sh"] = script
    p = {"files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
         "execute": "vpl_run.sh", "interactive": interactive, "lang": "en_US.UTF-8",
         "maxtime": maxtime, "maxmemory": 256 << 20, "maxfilesize": 64 << 20,
         "maxprocesses": 64, "pluginversion": PV}
    return rpc("request", p)


def terminal_request(files, run, interactive=1):
    return request(files, "#!/bin/bash\ncat > vpl_execution <<'EOF'\n#!/bin/bash\n" + run +
                   "\nEOF\nchmod +x vpl_execution\n", interactive)


def url(ticket, what):
    return f"ws://127.0.0.1:{J.port}/{ticket}/{what}"


def is_msg(prefix):
    return lambda e: e["ev"] == "message" and e.get("text", "").startswith(prefix)


def out_has(c, sid, text):
    return lambda e: text in "".join(c.texts(sid)) + e.get("text", "")


def stop(admin):
    try:
        rpc("stop", {"adminticket": admin, "pluginversion": PV})
    except Exception:
        pass


def leftover_fifos():
    """Update FIFO names still in the worker's state dir (they must go at once)."""
    found = []
    for d, _, names in os.walk(STATE):
        found += [os.path.join(d, n) for n in names if n.startswith("upd")]
    return found


def get_with_cookie(ticket, path="/"):
    deadline = time.time() + 15
    while True:  # the server inside may take a moment to listen
        r = http(J.port, "GET", path, headers={"Cookie": f"VPL_web={ticket}"})
        if r.status != 502 or time.time() > deadline:
            return r
        time.sleep(0.3)


def start_web(c):
    script = ("#!/bin/bash\nmkdir -p site\n"
              f"printf '<html><body>{MARK}</body></html>' > site/index.html\n"
              "printf '127.0.0.1:8000\\n' > .vpl_localserveraddress\n"
              "cat > vpl_webexecution <<'EOF'\n#!/bin/bash\necho SERVING\n"
              "cd site && exec python3 -m http.server --bind 127.0.0.1 8000\nEOF\n"
              "chmod +x vpl_webexecution\n")
    r = request({}, script)
    c.open("m", url(r["monitorticket"], "monitor"))
    c.wait("m", is_msg("run:webterminal"), 60)
    c.open("x", url(r["executionticket"], "execute"))
    c.wait("x", lambda e: e["ev"] == "open")
    e = c.wait("m", is_msg("run:browser:"), 30)
    ticket = e["text"][len("run:browser:"):]
    TICKETS.append(ticket)
    c.wait("x", out_has(c, "x", "SERVING"), 30)
    return r, ticket


XML_UPDATE = """<?xml version="1.0" encoding="UTF-8"?>
<methodCall>
<methodName>update</methodName>
<params><param><value><struct>
<member><name>filestodelete</name><value><struct>
  <member><name>old.php</name><value><int>1</int></value></member>
</struct></value></member>
<member><name>files</name><value><struct>
  <member><name>site/index.html</name><value><string>&lt;p&gt;{mark}&lt;/p&gt;</string></value></member>
</struct></value></member>
<member><name>fileencoding</name><value><struct>
  <member><name>site/index.html</name><value><int>0</int></value></member>
</struct></value></member>
<member><name>adminticket</name><value><string>{admin}</string></value></member>
<member><name>pluginversion</name><value><int>2026012812</int></value></member>
</struct></value></param></params>
</methodCall>
"""

XML_OK = ('<?xml version="1.0" encoding="UTF-8"?>\n<methodResponse>\n<params>\n<param>\n'
          '<struct>\n<member><name>update</name>\n<value><int>1</int></value>\n</member>\n'
          '</struct>\n</param>\n</params>\n</methodResponse>\n')


def test_web_app_page_edited_live():
    with WsClient() as c:
        r, t = start_web(c)
        g = get_with_cookie(t)
        assert g.status == 200 and MARK.encode() in g.body, g.raw[:300]
        new = f"<html><body>{MARK2}</body></html>"
        u = update(r["adminticket"], {"site/index.html": new})
        assert u.status == 200, (u.status, u.text())
        # the reference encoding, exactly
        assert u.body == b'{"jsonrpc":"2.0","result":{"update":1},"id":"1"}', u.body
        g = get_with_cookie(t)
        assert g.status == 200 and g.body == new.encode(), g.raw[:300]
        # XML-RPC, as the plugin before 4.0 sends it; a base64 file too
        x = post(XML_UPDATE.format(mark="via-xml", admin=r["adminticket"]).encode(),
                 "text/xml")
        assert x.status == 200 and x.body.decode() == XML_OK, x.raw[:400]
        g = get_with_cookie(t)
        assert g.body == b"<p>via-xml</p>", g.raw[:300]
        import base64
        u = update(r["adminticket"], {"site/new/page.html.b64": base64.b64encode(b"B64!").decode()},
                   {"site/new/page.html.b64": 1})
        assert json.loads(u.body)["result"] == {"update": 1}, u.text()
        g = get_with_cookie(t, "/new/page.html")
        assert g.status == 200 and g.body == b"B64!", g.raw[:300]
        assert leftover_fifos() == [], leftover_fifos()
        c.close("x")
        c.wait("m", is_msg("close:"), 30)


def test_terminal_program_reads_updated_file():
    r = terminal_request({"data.txt": "OLD-CONTENT\n"},
                         "echo READY; read x; cat data.txt; cat sub/more.txt")
    with WsClient() as c:
        c.open("m", url(r["monitorticket"], "monitor"))
        c.wait("m", is_msg("run:terminal"), 120)
        # compiled, waiting for the browser's terminal: updates already go in
        u = update(r["adminticket"], {"data.txt": "MID-CONTENT\n"})
        assert json.loads(u.body)["result"] == {"update": 1}, u.text()
        c.open("x", url(r["executionticket"], "execute"))
        c.wait("x", lambda e: e["ev"] == "open")
        c.wait("x", out_has(c, "x", "READY"), 60)
        u = update(r["adminticket"], {"data.txt": "NEW-CONTENT\n", "sub/more.txt": "MORE\n"})
        assert u.status == 200 and json.loads(u.body)["result"] == {"update": 1}, u.text()
        assert leftover_fifos() == [], leftover_fifos()
        c.send("x", text="go\r")
        c.wait("x", lambda e: e["ev"] == "close", 30)
        out = "".join(c.texts("x"))
        assert "NEW-CONTENT" in out and "MORE" in out, out
        assert "OLD-CONTENT" not in out and "MID-CONTENT" not in out, out
        c.wait("m", is_msg("close:"), 30)


def test_finished_and_unknown_tasks():
    # a batch task that is over (its outputs not collected yet): nothing to write into
    r = terminal_request({}, "echo done", interactive=0)
    time.sleep(6)
    u = update(r["adminticket"], {"a.txt": "x"})
    assert u.status == 200 and json.loads(u.body)["result"] == {"update": 0}, u.text()
    res = rpc("getresult", {"adminticket": r["adminticket"], "pluginversion": PV})
    assert "done" in res["execution"], res  # it was known, and finished
    # now unknown (getresult ended it), and a ticket that never existed: 500
    for admin in (r["adminticket"], "12345678901234"):
        u = update(admin, {"a.txt": "x"})
        assert u.status == 500, (u.status, u.text())
    # a task still compiling gets update=0 too (its files are not even staged)
    r = request({}, "#!/bin/bash\nsleep 4\n")
    u = update(r["adminticket"], {"a.txt": "x"})
    assert u.status == 200 and json.loads(u.body)["result"] == {"update": 0}, u.text()
    stop(r["adminticket"])


def test_bad_names():
    r = terminal_request({}, "echo READY; read x")
    with WsClient() as c:
        c.open("m", url(r["monitorticket"], "monitor"))
        c.wait("m", is_msg("run:terminal"), 120)
        c.open("x", url(r["executionticket"], "execute"))
        c.wait("x", out_has(c, "x", "READY"), 60)
        for bad in ("../x", "a/../../b", "a//b", "x\x01y"):
            u = update(r["adminticket"], {bad: "y"})
            assert u.status == 400, (bad, u.status, u.text())
        # the task is unharmed
        u = update(r["adminticket"], {"fine.txt": "y"})
        assert json.loads(u.body)["result"] == {"update": 1}, u.text()
        c.close("x")
        c.wait("m", is_msg("close:"), 30)


def test_planted_symlink_not_followed():
    run = ("ln -s /etc/passwd x; mkdir -p real; ln -s /tmp d; mkfifo p; echo READY; read v; "
           "echo LINK=$(readlink x); echo PW=$(grep -c PWNED /etc/passwd); ls /tmp; "
           "echo TYPE=$(stat -c %F p); echo END")
    r = terminal_request({}, run)
    with WsClient() as c:
        c.open("m", url(r["monitorticket"], "monitor"))
        c.wait("m", is_msg("run:terminal"), 120)
        c.open("x", url(r["executionticket"], "execute"))
        c.wait("x", out_has(c, "x", "READY"), 60)
        for files in ({"x": "root::0:0:PWNED:/:/bin/sh\n"}, {"d/pwned-file": "PWNED"},
                      {"ok.txt": "fine", "x": "PWNED"}, {"p": "PWNED"}, {"real": "PWNED"}):
            u = update(r["adminticket"], files)
            assert u.status == 200 and json.loads(u.body)["result"] == {"update": 0}, \
                (files, u.text())
        assert leftover_fifos() == [], leftover_fifos()
        # still usable after the refusals
        u = update(r["adminticket"], {"after.txt": "ok"})
        assert json.loads(u.body)["result"] == {"update": 1}, u.text()
        c.send("x", text="go\r")
        c.wait("x", out_has(c, "x", "END"), 30)
        out = "".join(c.texts("x"))
        assert "LINK=/etc/passwd" in out, out  # the link itself was not replaced either
        assert "PW=0" in out, out  # the container's passwd untouched
        assert "pwned-file" not in out, out
        assert "TYPE=fifo" in out, out
        c.wait("m", is_msg("close:"), 30)
    with open("/etc/passwd") as f:
        assert "PWNED" not in f.read()


def test_client_leaves_before_the_answer():
    """The connection is gone when the sandbox answers: nothing is written to it (ASan
    builds catch a use after free), and the worker goes on."""
    r = terminal_request({}, "echo READY; read x")
    with WsClient() as c:
        c.open("m", url(r["monitorticket"], "monitor"))
        c.wait("m", is_msg("run:terminal"), 120)
        c.open("x", url(r["executionticket"], "execute"))
        c.wait("x", out_has(c, "x", "READY"), 60)
        big = "z" * (8 << 20)  # takes the helper a moment
        for i in range(3):
            body = json.dumps({"method": "update", "params": {
                "adminticket": r["adminticket"], "files": {f"big{i}.txt": big},
                "fileencoding": {f"big{i}.txt": 0}, "pluginversion": PV}, "id": "1"}).encode()
            s = socket.create_connection(("127.0.0.1", J.port))
            s.sendall(f"POST {J.urlpath} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
                      "\r\n\r\n".encode() + body)
            s.close()
        time.sleep(2)
        u = update(r["adminticket"], {"after.txt": "ok"})
        assert json.loads(u.body)["result"] == {"update": 1}, u.text()
        c.close("x")
        c.wait("m", is_msg("close:"), 30)
    assert leftover_fifos() == [], leftover_fifos()


def main():
    def no_ticket_logged(j):
        log = j.read_log()
        S.check(not any(t in log for t in TICKETS), "no ticket in the log")
    return fixture.run_suite(globals(), S, "u", after_stop=no_ticket_logged,
                             REQUEST_MAX_SIZE=64 << 20)

if __name__ == "__main__":
    sys.exit(main())
