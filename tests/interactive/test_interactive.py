#!/usr/bin/env python3
"""Interactive runs through the real worker, a private containerd and the
minivpl image, driven by a real WebSocket client (Node's `ws`): the monitor
socket's messages, a terminal program that reads input, wrong and reused
tickets, the browser leaving, stop and time limits."""
import json
import os
import random
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

S = Suite("interactive")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
ENV = {}
J = None
ONLY = sys.argv[1:]  # optional: names (or parts of names) of the tests to run

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


def is_ev(name):
    return lambda e: e["ev"] == name


def ended(e):
    """The socket is over: closed, or failed (ws reports an error, then close)."""
    return e["ev"] in ("close", "unexpected")


def running(admin):
    return rpc("running", {"adminticket": admin, "pluginversion": 2026012812})["running"]


def stop(admin):
    """Best effort, for a test's clean-up: stop always answers stop=1."""
    try:
        rpc("stop", {"adminticket": admin, "pluginversion": 2026012812})
    except Exception:
        pass


def poll(fn, timeout=60, step=0.2):
    """fn() until it is truthy; returns its last value."""
    deadline = time.time() + timeout
    v = fn()
    while not v and time.time() < deadline:
        time.sleep(step)
        v = fn()
    return v


def getresult(admin, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        body = json.dumps({"method": "getresult", "params": {
            "adminticket": admin, "pluginversion": 2026012812}, "id": "1"}).encode()
        r = http(J.port, "POST", J.urlpath, body)
        if r.status == 200:
            return json.loads(r.body)["result"]
        assert "Task still running" in r.text(), (r.status, r.text())
        time.sleep(0.2)
    raise AssertionError("the task did not finish")


def refused(c, sid, u, protocols=None):
    """Opens u and returns the HTTP status of the refused upgrade."""
    c.open(sid, u, protocols)
    e = c.wait(sid, lambda e: e["ev"] in ("unexpected", "open"))
    assert e["ev"] == "unexpected", (u.rsplit("/", 1)[-1], e)
    return e["status"]


def start_terminal(c, r, prompt="READY", mon="m", ex="x", **kw):
    """Monitor, then run:terminal, then the execute socket, until the program's prompt."""
    c.open(mon, url(r["monitorticket"], "monitor"))
    c.wait(mon, is_ev("open"))
    c.wait(mon, is_msg("run:terminal"), timeout=120)
    c.open(ex, url(r["executionticket"], "execute"), **kw)
    c.wait(ex, is_ev("open"))
    if prompt:
        c.wait(ex, lambda e: e["ev"] == "message" and prompt in "".join(c.texts(ex)),
               timeout=60)


def containers():
    out = subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"],
                          "containers", "ls", "-q"], capture_output=True, text=True).stdout
    return out.split()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


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


HELLO_C = '#include <stdio.h>\nint main(void){ printf("Hello world\\n"); return 0; }\n'
WAITER = {"run": "echo READY; read x; echo never $x"}


def test_wrong_reused_and_wrong_kind_tickets():
    bogus = "".join(random.choice("0123456789") for _ in range(39))
    r = request({}, {"run": "echo READY; read x; echo got $x"})
    try:
        with WsClient() as c:
            assert refused(c, "b1", url(bogus, "monitor")) == 500
            assert refused(c, "b2", url(bogus, "execute")) == 500
            # wrong kinds: admin and execute tickets are no monitor tickets, and so on
            assert refused(c, "a1", url(r["adminticket"], "monitor")) == 500
            assert refused(c, "a2", url(r["adminticket"], "execute")) == 500
            assert refused(c, "k1", url(r["executionticket"], "monitor")) == 500
            assert refused(c, "k2", url(r["monitorticket"], "execute")) == 500
            # a valid ticket on another path
            base = f"ws://127.0.0.1:{J.port}/{r['monitorticket']}"
            # (no dot segments: the client itself resolves them)
            for i, tail in enumerate(("/other", "/monitor/x", "/monitorx", "/", "",
                                      "/MONITOR")):
                st = refused(c, f"p{i}", base + tail)
                assert 400 <= st < 600, (tail, st)
            # none of these used the monitor ticket up: it opens once, then never again
            c.open("m", url(r["monitorticket"], "monitor"))
            c.wait("m", is_ev("open"))
            assert refused(c, "m2", url(r["monitorticket"], "monitor")) == 500
            c.wait("m", is_msg("run:terminal"), timeout=120)
            c.open("x", url(r["executionticket"], "execute"))
            c.wait("x", is_ev("open"))
            c.wait("x", lambda e: "READY" in "".join(c.texts("x")))
            # a second terminal on the same ticket while the first is attached
            assert refused(c, "x2", url(r["executionticket"], "execute")) == 500
            c.send("x", text="hi\r")
            e = c.wait("x", is_ev("close"))
            assert e["code"] == 1000, e
            assert "got hi" in "".join(c.texts("x")), c.texts("x")
            c.wait("m", is_msg("close:"))
            c.wait("m", ended)
            # the session is over: its tickets are spent
            assert refused(c, "x3", url(r["executionticket"], "execute")) == 500
            assert refused(c, "m3", url(r["monitorticket"], "monitor")) == 500
            # the worker still serves
            assert http(J.port, "GET", "/OK").status == 200
    finally:
        stop(r["adminticket"])


def test_subprotocols():
    for offer, want in ((["binary", "base64"], "binary"), (["base64"], "base64"), ([], "")):
        r = request({}, {"run": "echo out-$((6*7))"})
        try:
            with WsClient() as c:
                c.open("m", url(r["monitorticket"], "monitor"), offer)
                e = c.wait("m", is_ev("open"))
                assert e["protocol"] == want, (offer, e)
                c.wait("m", is_msg("run:terminal"), timeout=120)
                c.open("x", url(r["executionticket"], "execute"), offer)
                e = c.wait("x", is_ev("open"))
                assert e["protocol"] == want, (offer, e)
                e = c.wait("x", is_ev("close"))
                assert e["code"] == 1000, (offer, e)
                # terminal output is text in every mode (base64 is for VNC's binary data)
                assert "out-42" in "".join(c.texts("x")), (offer, c.texts("x"))
                c.wait("m", is_msg("close:"))
        finally:
            stop(r["adminticket"])


def test_batch_evaluation_with_monitor_attached_early():
    r = request({"hello.c": HELLO_C},
                {"compile": "sleep 1; gcc -o hello hello.c", "run": "sleep 2; ./hello"},
                interactive=0)
    admin = r["adminticket"]
    try:
        with WsClient() as c:
            c.open("m", url(r["monitorticket"], "monitor"))
            c.wait("m", is_ev("open"))
            c.wait("m", is_msg("retrieve:"), timeout=120)
            mon = c.texts("m")
            assert mon[0] in ("message:starting", "message:compilation"), mon
            assert "message:compilation" in mon and "message:running" in mon, mon
            states = [t for t in mon if t in ("message:starting", "message:compilation",
                                              "message:running", "retrieve:")]
            order = ["message:starting", "message:compilation", "message:running", "retrieve:"]
            assert states == sorted(states, key=order.index) and len(set(states)) == len(states), mon
            assert states[-1] == "retrieve:" and mon[-1].startswith(("retrieve:", "message:running")), mon
            # a batch task has no terminal and is not over before Moodle fetched its result
            assert not any(t.startswith(("run:", "close:", "compilation:")) for t in mon), mon
            g = getresult(admin)
            assert g["executed"] == 1 and "Hello world" in g["execution"], g
            assert g["interactive"] == 0, g
            c.wait("m", is_msg("close:"))
            e = c.wait("m", is_ev("close"))
            assert e["code"] == 1000, e
            assert c.texts("m")[-1] == "close:", c.texts("m")
    finally:
        stop(admin)


def test_monitor_counters():
    r = request({}, {"compile": "sleep 3", "run": "echo ok"}, interactive=0)
    admin = r["adminticket"]
    try:
        with WsClient() as c:
            c.open("m", url(r["monitorticket"], "monitor"))
            c.wait("m", is_ev("open"))
            c.wait("m", is_msg("retrieve:"), timeout=120)
            mon = c.texts("m")
            import re
            n = [int(m.group(1)) for m in (re.match(r"^message:compilation: (\d+) sec$", t)
                                           for t in mon) if m]
            # the compile script sleeps 3 s: at least "1 sec" and "2 sec" while it runs
            assert 2 in n and n == sorted(set(n)), mon
            i = mon.index("message:compilation")
            first = mon.index("message:compilation: %d sec" % n[0])
            assert i < first, mon
            # the label stays until the next state's message, which restarts the count
            j = mon.index("message:running") if "message:running" in mon else mon.index("retrieve:")
            assert all(t.startswith("message:compilation: ") for t in mon[i + 1:j]), mon
            assert all(re.match(r"^(message:(running|compilation): \d+ sec|retrieve:|"
                                r"message:running)$", t) for t in mon[j:]), mon
            g = getresult(admin)
            assert "ok" in g["execution"], g
            c.wait("m", is_msg("close:"))
    finally:
        stop(admin)


def newest_task():
    """The id of the newest task, from the worker's log (the tests make one request at a
    time, so it is the one just made)."""
    import re
    for line in reversed(J.read_log().splitlines()):
        m = re.search(r"task (\d+): (request|directrun) ", line)
        if m:
            return int(m.group(1))
    raise AssertionError("no task in the log")


def container_removed(tid, timeout=60):
    """The task's container is gone (its program with it), says the worker's log."""
    import re
    pat = re.compile(r"task %d: container \S+ removed" % tid)
    return poll(lambda: pat.search(J.read_log()), timeout)


def test_browser_closes_terminal_while_program_reads():
    r = request({}, WAITER, maxtime=60)
    admin = r["adminticket"]
    tid = newest_task()
    try:
        with WsClient() as c:
            start_terminal(c, r)
            assert running(admin) == 1
            c.close("x")
            c.wait("x", is_ev("close"))
            c.wait("m", is_msg("close:"))
            e = c.wait("m", is_ev("close"))
            assert e["code"] == 1000, e
            assert poll(lambda: running(admin) == 0, 60), "still running"
            assert "never" not in "".join(c.texts("x"))
            assert container_removed(tid), "the task's container is still there"
    finally:
        stop(admin)


def test_browser_closes_monitor_during_run():
    r = request({}, WAITER, maxtime=60)
    admin = r["adminticket"]
    tid = newest_task()
    try:
        with WsClient() as c:
            start_terminal(c, r)
            assert running(admin) == 1
            c.close("m")
            c.wait("m", is_ev("close"))
            c.wait("x", is_ev("close"), timeout=60)
            assert poll(lambda: running(admin) == 0, 60), "still running"
            assert "never" not in "".join(c.texts("x"))
            assert container_removed(tid), "the task's container is still there"
    finally:
        stop(admin)


def test_rpc_stop_during_run():
    r = request({}, WAITER, maxtime=60)
    admin = r["adminticket"]
    tid = newest_task()
    try:
        with WsClient() as c:
            start_terminal(c, r)
            res = rpc("stop", {"adminticket": admin, "pluginversion": 2026012812})
            assert res["stop"] == 1, res
            c.wait("x", is_ev("close"), timeout=60)
            c.wait("m", is_msg("close:"), timeout=60)
            e = c.wait("m", is_ev("close"))
            assert e["code"] == 1000, e
            assert c.texts("m")[-1] == "close:", c.texts("m")
            assert running(admin) == 0
            assert container_removed(tid), "the task's container is still there"
    finally:
        stop(admin)


def test_interactive_time_limit():
    r = request({}, {"run": "echo READY; sleep 100"}, maxtime=3)
    admin = r["adminticket"]
    tid = newest_task()
    try:
        with WsClient() as c:
            start_terminal(c, r)
            c.wait("m", is_msg("message:timeout"), timeout=60)
            c.wait("m", is_msg("close:"), timeout=60)
            e = c.wait("m", is_ev("close"))
            assert e["code"] == 1000, e
            mon = c.texts("m")
            assert mon.index("message:timeout") < mon.index("close:") and mon[-1] == "close:", mon
            c.wait("x", is_ev("close"), timeout=60)
            assert poll(lambda: running(admin) == 0, 30)
            assert container_removed(tid), "the task's container is still there"
    finally:
        stop(admin)


UTF8_RUN = r"""printf 'START\n'
printf '\xf0'; sleep 0.2; printf '\x9f'; sleep 0.2; printf '\x98'; sleep 0.2; printf '\x80'
sleep 0.2; printf ' A\xffB \xc3( \xe2\x82'; sleep 0.3; printf '\xac\n'
printf '\xed\xa0\x80|\xc0\xaf|\xf4\x90\x80\x80|\n'
printf 'Z\xe2\x82'"""


def test_terminal_output_is_valid_utf8():
    r = request({}, {"run": UTF8_RUN})
    try:
        with WsClient() as c:
            start_terminal(c, r, prompt="START")
            e = c.wait("x", is_ev("close"), timeout=60)
            errors = [x for x in c.events if x.get("id") == "x" and x["ev"] == "error"]
            # ws fails the connection (1007) on a text frame that is not valid UTF-8
            assert e["code"] == 1000 and not errors, (e, errors)
            out = "".join(c.texts("x"))
            assert "\U0001F600" in out, repr(out)
            assert "A\ufffdB" in out and "\ufffd(" in out and "\u20ac" in out, repr(out)
            # surrogates, overlong forms and code points past U+10FFFF are invalid too
            line = [ln for ln in out.splitlines() if ln.count("|") == 3]
            assert line and "\ufffd" in line[0].split("|")[0], repr(out)
            assert all(p and set(p) == {"\ufffd"} for p in line[0].split("|")[:3]), repr(line)
            # an incomplete character at the very end is replaced, not dropped
            assert out.rstrip("\r\n").endswith("Z\ufffd"), repr(out[-40:])
            c.wait("m", is_msg("close:"))
    finally:
        stop(r["adminticket"])


def test_output_flood_with_slow_consumer():
    flood = 50_000_000
    r = request({}, {"run": f"echo READY; read go; yes | head -c {flood}; echo; echo END_MARKER"},
                maxtime=170)
    admin = r["adminticket"]
    pid = J.proc.pid
    try:
        with WsClient() as c:
            start_terminal(c, r, prompt=None, summary=True)
            c.wait("x", lambda e: e["ev"] == "message" and "READY" in e["tail"], timeout=60)
            base = rss_kb(pid)
            c.pause("x")
            c.wait("x", is_ev("paused"))
            c.send("x", text="go\r")
            # while nobody reads: the worker serves another task, and its memory stays put
            peak = [base]
            done = []

            def sample():
                while not done:
                    peak[0] = max(peak[0], rss_kb(pid))
                    time.sleep(0.1)
            import threading
            th = threading.Thread(target=sample, daemon=True)
            th.start()
            try:
                t0 = time.time()
                other = request({"hello.c": HELLO_C}, {"compile": "gcc -o hello hello.c",
                                                       "run": "./hello"}, interactive=0)
                with WsClient() as c2:
                    c2.open("m", url(other["monitorticket"], "monitor"))
                    c2.wait("m", is_msg("retrieve:"), timeout=120)
                    g = getresult(other["adminticket"])
                    c2.wait("m", is_msg("close:"))
                assert g["executed"] == 1 and "Hello world" in g["execution"], g
                while time.time() - t0 < 8:  # let the flood push against the stalled socket
                    time.sleep(0.2)
            finally:
                done.append(1)
                th.join()
            assert running(admin) == 1
            c.drain()
            got = [e for e in c.events if e.get("id") == "x" and e["ev"] == "message"]
            before = got[-1]["total"] if got else 0
            assert before < flood, ("the client was not slowed down", before)
            print(f"     flood: worker VmRSS {base} kB, peak {peak[0]} kB while paused; "
                  f"{before} bytes received before resuming", flush=True)
            assert (peak[0] - base) < 64 * 1024, ("worker RSS grew (kB)", base, peak[0])
            c.resume("x")
            e = c.wait("x", lambda e: e["ev"] == "message" and "END_MARKER" in e["tail"],
                       timeout=400)
            assert e["total"] >= flood, e["total"]
            e = c.wait("x", is_ev("close"), timeout=60)
            assert e["code"] == 1000, e
            c.wait("m", is_msg("close:"), timeout=60)
    finally:
        stop(admin)


def test_directrun():
    files = {"name.c": READER_C,
             ".vpl_directrun.sh": "#!/bin/bash\ncat > vpl_execution <<CONTENTS\n#!/bin/bash\n"
                                  "gcc -o name name.c && ./name\nCONTENTS\nchmod +x vpl_execution\n"}
    p = {"files": files, "fileencoding": {k: 0 for k in files},
         "filestodelete": {".vpl_directrun.sh": 1}, "execute": ".vpl_directrun.sh",
         "pluginversion": 2026012812, "interactive": 1, "lang": "en_US.UTF-8",
         "maxtime": 1000000, "maxfilesize": 2000000000, "maxmemory": 2000000000,
         "maxprocesses": 10000}
    r = rpc("directrun", p)
    assert "monitorticket" not in r and r["homepath"].startswith("/"), r
    admin = r["adminticket"]
    try:
        with WsClient() as c:
            # no monitor: the empty ticket of a directrun opens nothing
            assert refused(c, "m", f"ws://127.0.0.1:{J.port}//monitor") >= 400
            c.open("x", url(r["executionticket"], "execute"))
            c.wait("x", is_ev("open"))
            c.wait("x", lambda e: "your name?" in "".join(c.texts("x")), timeout=120)
            c.send("x", text="Grace\r")
            e = c.wait("x", is_ev("close"), timeout=60)
            assert e["code"] == 1000, e
            out = "".join(c.texts("x"))
            assert "Hello, Grace! \u00e9t\u00e9 \u20ac" in out, out
            assert poll(lambda: running(admin) == 0, 30)
            assert refused(c, "x2", url(r["executionticket"], "execute")) == 500
    finally:
        stop(admin)


def test_monitor_sending_data_stops_task():
    r = request({}, WAITER, maxtime=60)
    admin = r["adminticket"]
    tid = newest_task()
    try:
        with WsClient() as c:
            start_terminal(c, r)
            assert running(admin) == 1
            c.send("m", text="bye")
            c.wait("m", is_ev("close"), timeout=60)
            c.wait("x", is_ev("close"), timeout=60)
            assert poll(lambda: running(admin) == 0, 60), "still running"
            assert "never" not in "".join(c.texts("x"))
            assert container_removed(tid), "the task's container is still there"
    finally:
        stop(admin)


def main():
    def nothing_left(j):
        left = poll(lambda: not containers(), 30) or containers()
        S.check(left is True, f"no container left after the worker stopped ({left})")
    return fixture.run_suite(globals(), S, "i", after_stop=nothing_left, MAXTIME=180)

if __name__ == "__main__":
    sys.exit(main())
