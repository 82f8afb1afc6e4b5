"""registry_fixture - throwaway docker-registry (distribution 2.8) instances for tests.

    from registry_fixture import Registry
    with Registry() as reg:                              # plain http on 127.0.0.1:<free port>
        reg.host                                         # "127.0.0.1:PORT"
    with Registry(basic={"alice": "secret"}) as reg: ... # htpasswd (bcrypt) basic auth
    with Registry(token={"alice": "secret"}) as reg:     # bearer tokens from token_server.py
        reg.token_server.requests                        # how many tokens were asked for

Each instance has its own storage dir (reg.storage; blobs under
docker/registry/v2/blobs/sha256/xx/<hex>/data) and log file (reg.log_path: app log and the
access log). Loopback only. The registry is always stopped: on exit of the `with`, at interpreter
exit, and on SIGTERM, even when a test fails half-way.
"""
import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import token_server  # noqa: E402

_live = []


def _stop_all(*_):
    for r in list(_live):
        r.stop()


atexit.register(_stop_all)
if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
    signal.signal(signal.SIGTERM, lambda *a: (_stop_all(), sys.exit(143)))


def free_port():
    """An ephemeral loopback port (tiny race between close and the registry's bind)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, basic=None, token=None, binary="docker-registry"):
        self.basic, self.token, self.binary = basic, token, binary
        self.proc = None
        self.token_server = None
        self.dir = tempfile.mkdtemp(prefix="vplcell-registry.")
        self.storage = os.path.join(self.dir, "storage")
        self.log_path = os.path.join(self.dir, "registry.log")
        self.port = None

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def _config(self):
        lines = [
            "version: 0.1",
            "log:",
            "  level: info",
            "  fields: {service: registry}",
            "storage:",
            "  filesystem: {rootdirectory: %s}" % self.storage,
            "  delete: {enabled: true}",
            "http:",
            "  addr: 127.0.0.1:%d" % self.port,
        ]
        if self.basic:
            htp = os.path.join(self.dir, "htpasswd")
            with open(htp, "w") as f:
                for user, pw in self.basic.items():
                    out = subprocess.run(["htpasswd", "-Bbn", user, pw], check=True,
                                         capture_output=True, text=True).stdout
                    f.write(out.strip() + "\n")
            lines += ["auth:", "  htpasswd:", "    realm: vplcell-test",
                      "    path: %s" % htp]
        elif self.token is not None:
            ts = self.token_server
            lines += ["auth:", "  token:",
                      "    realm: %s" % ts.realm,
                      "    service: %s" % ts.service,
                      "    issuer: %s" % ts.issuer,
                      "    rootcertbundle: %s" % ts.cert_path]
        return "\n".join(lines) + "\n"

    def start(self, timeout=20):
        if self.token is not None and not self.token_server:
            self.token_server = token_server.TokenServer(self.token, self.dir)
            self.token_server.start()
        self.port = self.port or free_port()
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(self._config())
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "serve", cfg], stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        _live.append(self)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("docker-registry exited: " + self.log_tail())
            try:
                urllib.request.urlopen("http://%s/v2/" % self.host, timeout=1).close()
                return self
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("docker-registry did not come up: " + self.log_tail())

    def stop(self):
        """Stops the registry (and token server); the storage stays until cleanup()."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self.token_server:
            self.token_server.stop()
            self.token_server = None
        if self in _live:
            _live.remove(self)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=20):
        return "\n".join(self.log_text().splitlines()[-n:])

    def blob_path(self, digest):
        hexd = digest.split(":", 1)[1]
        return os.path.join(self.storage, "docker/registry/v2/blobs/sha256", hexd[:2], hexd,
                            "data")

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc):
        self.cleanup()
        return False


def manifest_json(path):
    with open(path) as f:
        return json.load(f)
