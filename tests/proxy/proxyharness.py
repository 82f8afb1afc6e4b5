"""Shared pieces of the proxy suites and benches: the secrets, a real vpl-proxy process with a
generated configuration, workers (real vpl-jail processes) configured to accept only it, and
a Prometheus scrape. Standard library only."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
from harness import Jail, free_port, http, make_cert  # noqa: E402,F401

BUILD = os.environ.get("VPL_BUILD", "build")
PROXY = os.path.join(ROOT, BUILD, "vpl-proxy")
WORKER_SECRET = "worker-secret-for-tests-0123456789"
ROUTE_SECRET = "route-secret-for-tests-abcdefghijklmnop"
WORKER_URLPATH = "/worker-path"


def write_secret(directory, name, value):
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    return path


class Secrets:
    def __init__(self, route=ROUTE_SECRET, worker=WORKER_SECRET):
        self.dir = tempfile.mkdtemp(prefix="vplcell-secrets-")
        self.worker = worker
        self.route = route
        self.worker_file = write_secret(self.dir, "worker", worker)
        self.route_file = write_secret(self.dir, "route", route)


def worker_conf(secrets, trusted="127.0.0.0/8", **conf):
    """Configuration keys for a vpl-jail behind proxies."""
    c = dict(URLPATH=WORKER_URLPATH, PROXY_SECRET_FILE=secrets.worker_file,
             TRUSTED_PROXIES=trusted)
    c.update(conf)
    return c


class Proxy:
    """One vpl-proxy process: TLS on sport, plain HTTP on port, metrics on mport."""

    def __init__(self, workers, secrets, prefix=None, urlpath="/public-path", **conf):
        self.dir = tempfile.mkdtemp(prefix="vplcell-proxy-")
        self.cert, self.key = make_cert(self.dir)
        self.port = conf.pop("PORT", None) or free_port()
        self.sport = conf.pop("SECURE_PORT", None) or free_port()
        self.mport = free_port()
        self.urlpath = urlpath
        base = {
            "PORT": self.port, "SECURE_PORT": self.sport, "SSL_CERT_FILE": self.cert,
            "SSL_KEY_FILE": self.key, "URLPATH": urlpath, "WORKER_URLPATH": WORKER_URLPATH,
            "WORKERS": " ".join(workers), "WORKER_SECRET_FILE": secrets.worker_file,
            "ROUTE_SECRET_FILE": secrets.route_file, "METRICS_PORT": self.mport,
            "HEALTH_INTERVAL": 300, "LOGLEVEL": 7,
        }
        base.update(conf)
        self.conf = os.path.join(self.dir, "vpl-proxy.conf")
        with open(self.conf, "w") as f:
            for k, v in base.items():
                f.write(f"{k}={v}\n")
        os.chmod(self.conf, 0o600)
        self.logpath = os.path.join(self.dir, "proxy.log")
        self.log = open(self.logpath, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        cmd = (prefix or []) + [PROXY, "-f", self.conf]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.host = conf.get("INTERFACE", "127.0.0.1")
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vpl-proxy exited: " + self.read_log())
            try:
                socket.create_connection((self.host, self.sport), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("vpl-proxy did not start: " + self.read_log())

    def read_log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def rpc_raw(self, method, params, tls=True, fmt="json"):
        if fmt == "json":
            body = json.dumps({"method": method, "params": params, "id": "7"}).encode()
        else:
            body = xml_call(method, params)
        r = http(self.sport if tls else self.port, "POST", self.urlpath, body, tls=tls,
                 host=self.host, headers=None if fmt == "json" else
                 {"Content-type": "text/xml;charset=UTF-8"})
        return r

    def rpc(self, method, params, tls=True):
        r = self.rpc_raw(method, params, tls)
        assert r.status == 200, (method, r.status, r.text()[:300])
        return json.loads(r.body)["result"]

    def wait_workers(self, n, timeout=20):
        """Until `available` counts n workers' load... i.e. the metrics say n are up."""
        deadline = time.time() + timeout
        up = -1
        while time.time() < deadline:
            up = metric(scrape(self.mport), "vplcell_proxy_workers", state="up")
            if up == n:
                return
            time.sleep(0.1)
        raise AssertionError(f"{n} workers not up through the proxy (saw {up})")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return -9
        self.log.close()
        return self.proc.returncode


def xml_call(method, params):
    def val(v):
        if isinstance(v, bool) or isinstance(v, int):
            return f"<int>{int(v)}</int>"
        if isinstance(v, dict):
            return "<struct>" + "".join(
                f"<member><name>{k}</name><value>{val(x)}</value></member>"
                for k, x in v.items()) + "</struct>"
        s = str(v).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<string>{s}</string>"
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall>\n<methodName>"
            f"{method}</methodName>\n<params>\n<param>\n<value>{val(params)}</value>\n"
            "</param>\n</params>\n</methodCall>\n").encode()


def xml_members(body):
    """name -> value of a flat XML-RPC response struct (the reference layout)."""
    import xml.etree.ElementTree as ET
    out = {}
    for m in ET.fromstring(body).iter("member"):
        v = m.find("value")[0]
        out[m.find("name").text] = int(v.text) if v.tag in ("int", "i4", "double") else (
            v.text or "")
    return out


def scrape(port, host="127.0.0.1"):
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head[:100]
    return body.decode()


def metric(text, name, **labels):
    """The value of one sample (labels must match exactly the given ones), or 0."""
    total = None
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        key, _, value = line.rpartition(" ")
        if key == name and not labels:
            return float(value)
        if not key.startswith(name + "{"):
            continue
        got = dict(kv.split("=", 1) for kv in key[len(name) + 1:-1].split(",") if kv)
        got = {k: v.strip('"') for k, v in got.items()}
        if all(got.get(k) == str(v) for k, v in labels.items()):
            total = (total or 0) + float(value)
    return total or 0
