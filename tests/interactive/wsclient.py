"""Drives tests/interactive/wsclient.js (Node + the `ws` package from npm).

    with WsClient() as c:
        c.open("m", "ws://127.0.0.1:PORT/TICKET/monitor")
        ev = c.wait("m", lambda e: e["ev"] == "message" and e["text"].startswith("run:"))

`ws` is installed once into /var/cache/vplcell/npm/ws-8 (the npm registry is
the only network the CI machine has besides Debian's mirror)."""
import json
import os
import queue
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NPM_DIR = os.environ.get("VPLCELL_NPM_CACHE", "/var/cache/vplcell/npm/ws-8")


def ensure_ws():
    mod = os.path.join(NPM_DIR, "node_modules", "ws", "package.json")
    if os.path.exists(mod):
        return
    import fcntl
    os.makedirs(NPM_DIR, exist_ok=True)
    with open(os.path.join(NPM_DIR, ".lock"), "w") as lock:  # suites run side by side
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(mod):
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix",
                            NPM_DIR, "ws@8"], check=True, capture_output=True, timeout=600)


class WsClient:
    def __init__(self):
        ensure_ws()
        env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"))
        self.p = subprocess.Popen(["node", os.path.join(HERE, "wsclient.js")], env=env,
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.events = []  # everything seen, in order
        self.q = queue.Queue()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self):
        for line in self.p.stdout:
            try:
                self.q.put(json.loads(line))
            except ValueError:
                pass
        self.q.put(None)

    def cmd(self, **c):
        self.p.stdin.write(json.dumps(c) + "\n")
        self.p.stdin.flush()

    def open(self, sid, url, protocols=None, **kw):
        self.cmd(op="open", id=sid, url=url, protocols=protocols or [], **kw)

    def send(self, sid, text=None, b64=None):
        if b64 is not None:
            self.cmd(op="send", id=sid, b64=b64)
        else:
            self.cmd(op="send", id=sid, text=text)

    def close(self, sid, code=1000):
        self.cmd(op="close", id=sid, code=code)

    def pause(self, sid):
        """Stops reading sid's TCP socket (a slow consumer); resume() reads again."""
        self.cmd(op="pause", id=sid)

    def resume(self, sid):
        self.cmd(op="resume", id=sid)

    def drain(self, timeout=0.0):
        """Takes in the events that arrived (waiting up to timeout for the first)."""
        try:
            e = self.q.get(timeout=timeout) if timeout else self.q.get_nowait()
            while True:
                if e is None:
                    return
                self.events.append(e)
                e = self.q.get_nowait()
        except queue.Empty:
            pass

    def wait(self, sid, pred, timeout=60):
        """Returns the first event of sid (seen before or arriving) satisfying pred."""
        for e in self.events:
            if e.get("id") == sid and pred(e) and not e.get("_taken"):
                e["_taken"] = True
                return e
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                e = self.q.get(timeout=max(0.05, deadline - time.time()))
            except queue.Empty:
                break
            if e is None:
                break
            self.events.append(e)
            if e.get("id") == sid and pred(e):
                e["_taken"] = True
                return e
        raise AssertionError(f"{sid}: no matching event in {timeout}s; seen: "
                             f"{[x for x in self.events if x.get('id') == sid][-12:]}")

    def texts(self, sid):
        return [e["text"] for e in self.events if e.get("id") == sid and "text" in e]

    def __enter__(self):
        return self

    def __exit__(self, *a):
        try:
            self.cmd(op="quit")
        except (BrokenPipeError, ValueError):
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.p.kill()
