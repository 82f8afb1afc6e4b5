#!/usr/bin/env python3
"""The worker against a real browser: headless Chromium (Debian's `chromium`, driven by
puppeteer-core through tests/browser/drive.js) loads tests/browser/page.html, a stand-in for
the plugin's run page built from the plugin's own client libraries (xterm.js, noVNC), against
a worker with a private containerd and the minivpl image:

  * a terminal run: the prompt appears in xterm.js, "Ada" + Enter is typed into xterm's
    textarea, and "Hello, Ada!" comes back into the terminal's buffer;
  * a graphical run: noVNC connects through the execute socket with the password of the
    monitor's run:vnc: message, and the centre of its canvas turns the red the program painted.

Screenshots go to ${VPL_ARTEFACTS:-/tmp/vplcell-artefacts}/browser/ (a failed screenshot never
fails the test). npm packages (puppeteer-core, @xterm/xterm, @novnc/novnc) are installed once
into /var/cache/vplcell/npm/browser-<hash of the package list>."""
import fcntl
import hashlib
from http import server as httpserver
import json
import os
import posixpath
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
from harness import Jail, Suite, containerd_start, containerd_stop, http  # noqa: E402

S = Suite("browser")
BUILD = os.environ.get("VPL_BUILD", "build")
CHROMIUM = os.environ.get("VPLCELL_CHROMIUM", "/usr/bin/chromium")
NPM_PACKAGES = ["puppeteer-core@24", "@xterm/xterm@6", "@novnc/novnc@1"]
NPM_DIR = os.environ.get("VPLCELL_BROWSER_NPM") or os.path.join(
    "/var/cache/vplcell/npm",
    "browser-" + hashlib.sha256(" ".join(NPM_PACKAGES).encode()).hexdigest()[:12])
ARTEFACTS = os.path.join(os.environ.get("VPL_ARTEFACTS") or "/tmp/vplcell-artefacts", "browser")
ENV = {}
J = None
WEB = None  # (server, port)

NAME_C = r'''#include <stdio.h>
int main(void) {
    char name[100];
    printf("What is your name? ");
    fflush(stdout);
    if (scanf("%99s", name) != 1) return 1;
    printf("Hello, %s!\n", name);
    return 0;
}
'''


def ensure_npm():
    """Installs NPM_PACKAGES into NPM_DIR once (quietly; concurrent runs wait on a lock)."""
    def present():
        return all(os.path.exists(os.path.join(NPM_DIR, "node_modules", p.rsplit("@", 1)[0],
                                               "package.json")) for p in NPM_PACKAGES)
    if present():
        return
    parent = os.path.dirname(NPM_DIR)
    os.makedirs(parent, exist_ok=True)
    with open(NPM_DIR + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if present():
            return
        tmp = tempfile.mkdtemp(prefix=os.path.basename(NPM_DIR) + ".tmp-", dir=parent)
        try:
            r = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent",
                                "--no-package-lock", "--prefix", tmp] + NPM_PACKAGES,
                               capture_output=True, text=True, timeout=600,
                               env=dict(os.environ, PUPPETEER_SKIP_DOWNLOAD="1"))
            if r.returncode != 0:
                raise RuntimeError("npm install failed: " + (r.stderr or r.stdout)[-2000:])
            shutil.rmtree(NPM_DIR, ignore_errors=True)
            os.rename(tmp, NPM_DIR)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class Handler(httpserver.BaseHTTPRequestHandler):
    """Serves page.html, page.js and the npm packages' files, nothing else."""
    TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs":
             "text/javascript", ".css": "text/css", ".map": "application/json",
             ".json": "application/json", ".wasm": "application/wasm"}

    def do_GET(self):
        path = posixpath.normpath(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
        if path in ("/page.html", "/page.js"):
            f = os.path.join(HERE, path[1:])
        elif path.startswith("/node_modules/"):
            f = os.path.join(NPM_DIR, path[1:])
        else:
            f = None
        if not f or not os.path.isfile(f):
            self.send_error(404)
            return
        with open(f, "rb") as fh:
            body = fh.read()
        self.send_response(200)
        self.send_header("Content-Type", self.TYPES.get(os.path.splitext(f)[1],
                                                        "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def web_start():
    srv = httpserver.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def rpc(method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    r = http(J.port, "POST", J.urlpath, body)
    assert r.status == 200, (r.status, r.text())
    return json.loads(r.body)["result"]


def request(files, execute_name, script, maxtime=30, **extra):
    files = dict(files)
    files["vpl_run.sh"] = ("#!/bin/bash\n" + script.get("compile", "") + "\n"
                           f"cat > {execute_name} <<'EOF'\n#!/bin/bash\n" + script["run"] +
                           f"\nEOF\nchmod +x {execute_name}\n")
    p = {"files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
         "execute": "vpl_run.sh", "interactive": 1, "lang": "en_US.UTF-8",
         "maxtime": maxtime, "maxmemory": 512 << 20, "maxfilesize": 64 << 20,
         "maxprocesses": 200, "pluginversion": 2026012812}
    p.update(extra)
    return rpc("request", p)


def stop(admin):
    try:
        rpc("stop", {"adminticket": admin, "pluginversion": 2026012812})
    except Exception:
        pass


def wait_not_running(admin, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if not rpc("running", {"adminticket": admin, "pluginversion": 2026012812})["running"]:
                return True
        except AssertionError:
            return True  # an unknown ticket: the task is gone
        time.sleep(0.1)
    return False


def page_url(r):
    ws = f"ws://127.0.0.1:{J.port}/"
    return (f"http://127.0.0.1:{WEB[1]}/page.html?" + urllib.parse.urlencode({
        "monitor": ws + r["monitorticket"] + "/monitor",
        "execute": ws + r["executionticket"] + "/execute"}))


def drive(scenario):
    """Runs tests/browser/drive.js on one scenario; returns its JSON result."""
    os.makedirs(ARTEFACTS, exist_ok=True)
    scenario = dict(scenario, chromium=CHROMIUM)
    env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
    # its own process group: if it hangs, it and its Chromium go together
    p = subprocess.Popen(["node", os.path.join(HERE, "drive.js")], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        out, err = p.communicate(json.dumps(scenario), timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if not lines:
        raise AssertionError(f"drive.js rc={p.returncode}: {out[-2000:]} {err[-2000:]}")
    res = json.loads(lines[-1])
    for s in res.get("shots", []):
        print(f"     screenshot: {s}", flush=True)
    if res.get("shotError"):
        print(f"     (no screenshot: {res['shotError']})", flush=True)
    return res


def shot_path(name):
    return os.path.join(ARTEFACTS, f"{name}-{os.path.basename(BUILD.rstrip('/'))}.png")


def test_terminal_in_xterm():
    """A C program in xterm.js: its prompt shows, typed input reaches it, its answer shows."""
    r = request({"name.c": NAME_C}, "vpl_execution",
                {"compile": "gcc -o name name.c", "run": "./name"})
    try:
        res = drive({"mode": "terminal", "url": page_url(r), "prompt": "What is your name?",
                     "input": "Ada", "expect": "Hello, Ada!", "shot": shot_path("terminal")})
        assert res["ok"], res
        assert "run:terminal" in res["monitor"] and res["monitor"][-1] == "close:", res["monitor"]
        text = res["text"]
        assert "What is your name? Ada" in text and "Hello, Ada!" in text, text
    finally:
        stop(r["adminticket"])
        wait_not_running(r["adminticket"])


def test_vnc_in_novnc():
    """A graphical program under Xvnc in noVNC: the connection authenticates with the
    monitor's password (the execution ticket's first 8 characters) and the canvas shows the
    colour the program painted."""
    r = request({}, "vpl_wexecution", {"run": "xsetroot -solid '#ff0000'; sleep 60"},
                maxtime=90)
    try:
        res = drive({"mode": "vnc", "url": page_url(r), "shot": shot_path("vnc")})
        assert res["ok"], res
        assert res["vncPassword"] == r["executionticket"][:8], res
        # X draws its pointer at the centre: most of the box around it must be red
        assert res["red"] >= 0.9, res
        print(f"     canvas {res['canvas']}, centre pixel {res['pixel']}, "
              f"{res['red']:.0%} red around it", flush=True)
    finally:
        stop(r["adminticket"])
        assert wait_not_running(r["adminticket"]), "the graphical task did not stop"


def main():
    global J, WEB
    t0 = time.time()
    ensure_npm()
    ctd_dir = tempfile.mkdtemp(prefix="vplcell-ctd-")
    state = tempfile.mkdtemp(prefix="vplcell-state-")
    try:
        ENV.update(containerd_start(ctd_dir))
        tar = subprocess.run([f"{ROOT}/images/minivpl/build.sh"], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"], "images",
                        "import", tar], check=True, capture_output=True)
        print(f"     (containerd + image import {time.time() - t0:.1f}s)", flush=True)
        WEB = web_start()
        J = Jail(CONTAINERD_SOCKET=ENV["CTR_SOCKET"], CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                 HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                 DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                 WORKER_ID="b%d" % (os.getpid() % 100000), MAXTIME=120, LOGLEVEL=7,
                 POOL_SIZE=1)
        print(f"     (set-up {time.time() - t0:.1f}s)", flush=True)
        for name, fn in list(globals().items()):
            if name.startswith("test_") and callable(fn):
                t1 = time.time()
                S.run(fn)
                print(f"     ({name} {time.time() - t1:.1f}s)", flush=True)
        t1 = time.time()
        rc = J.stop()
        print(f"     (worker stop {time.time() - t1:.1f}s)", flush=True)
        S.check(rc == 0, f"worker exits cleanly (rc={rc})")
        if S.failed:
            print(J.read_log()[-8000:])
    finally:
        if J and J.proc.poll() is None:
            J.proc.kill()
            J.proc.wait()
        if WEB:
            WEB[0].shutdown()
            WEB[0].server_close()
        containerd_stop(ctd_dir)
        for d in (ctd_dir, state, J and J.dir):
            if d:
                shutil.rmtree(d, ignore_errors=True)
    print(f"     (total {time.time() - t0:.1f}s)", flush=True)
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
