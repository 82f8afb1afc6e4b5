"""Shared helpers for the black-box protocol tests: start a real vpl-jail
binary with a generated config and certificate, talk to it over raw sockets
(plain and TLS), and count results. Standard library only."""
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("VPL_BUILD", "build")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.path.join(ROOT, BUILD, "vpl-jail")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def make_cert(directory, cn="localhost", name="cert"):
    cert = os.path.join(directory, name + ".pem")
    key = os.path.join(directory, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.chmod(key, 0o600)
    return cert, key


def containerd_start(directory):
    """Starts a private containerd in DIRECTORY (scripts/containerd-test.sh) and returns its
    environment: CTR_SOCKET, CTR_NAMESPACE, CTR_TEST_DIR. Stop it with containerd_stop."""
    import shlex
    script = os.path.join(ROOT, "scripts", "containerd-test.sh")
    subprocess.run([script, "start", directory], check=True, capture_output=True)
    out = subprocess.run([script, "env", directory], check=True, capture_output=True,
                         text=True).stdout
    return dict(p.split("=", 1) for p in shlex.split(out.replace("export ", "")))


def containerd_stop(directory):
    subprocess.run([os.path.join(ROOT, "scripts", "containerd-test.sh"), "stop", directory])


class Jail:
    """One vpl-jail process with its own config, cert and log file."""

    def __init__(self, **conf):
        self.dir = tempfile.mkdtemp(prefix="vplcell-proto-")
        self.cert, self.key = make_cert(self.dir)
        self.port = free_port()
        self.sport = free_port()
        self.urlpath = conf.pop("URLPATH", "/s3cr3t-path")
        self.drain = os.path.join(self.dir, "drain")
        base = {
            "PORT": self.port, "SECURE_PORT": self.sport, "URLPATH": self.urlpath,
            "SSL_CERT_FILE": self.cert, "SSL_KEY_FILE": self.key,
            "DRAIN_FILE": self.drain, "LOGLEVEL": 7,
            # No sandbox unless a test gives one: the protocol suites need
            # no containerd, and say so in their results.
            "CONTAINERD_SOCKET": "",
            # Suites stop workers at once; the drain on SIGTERM has its own test.
            "SHUTDOWN_GRACE": 0,
        }
        base.update(conf)
        self.port, self.sport = int(base["PORT"]), int(base["SECURE_PORT"])
        self.conf = os.path.join(self.dir, "vpl-jail.conf")
        with open(self.conf, "w") as f:
            for k, v in base.items():
                f.write(f"{k}={v}\n")
        os.chmod(self.conf, 0o600)
        self.logpath = os.path.join(self.dir, "jail.log")
        self.log = open(self.logpath, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen([BINARY, "-f", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("vpl-jail exited: " + self.read_log())
            try:
                socket.create_connection((str(base.get("INTERFACE") or "127.0.0.1"), self.port),
                                         timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("vpl-jail did not start: " + self.read_log())

    def read_log(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """SIGTERM, then check it exited cleanly (ASan reports fail it)."""
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


def connect(port, tls=False, host="127.0.0.1", family=socket.AF_INET, timeout=10):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    if tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s


def recv_all(s):
    chunks = []
    while True:
        try:
            d = s.recv(65536)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            break
        if not d:
            break
        chunks.append(d)
    return b"".join(chunks)


class Response:
    def __init__(self, raw):
        self.raw = raw
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0] if lines else ""
        parts = self.status_line.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self.header_lines = lines[1:]
        self.headers = {}
        for h in lines[1:]:
            k, _, v = h.partition(":")
            self.headers.setdefault(k.strip().lower(), []).append(v.strip())

    def header(self, name):
        v = self.headers.get(name.lower())
        return v[0] if v else None

    def text(self):
        return self.body.decode("utf-8", "replace")


def http(port, method, path, body=b"", headers=None, tls=False, host="127.0.0.1",
         family=socket.AF_INET):
    s = connect(port, tls, host, family)
    hdrs = {"Host": "localhost", "User-Agent": "VPL ", "Accept": "*/*"}
    if method == "POST":
        hdrs["Content-Length"] = str(len(body))
        hdrs["Content-type"] = "application/json;charset=UTF-8"
    hdrs.update(headers or {})
    req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items())
    try:
        s.sendall(req.encode("latin-1") + b"\r\n" + body)
    except OSError:
        pass  # refused or closed early: whatever the server said is below
    r = Response(recv_all(s))
    s.close()
    return r


class Suite:
    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = 0

    def run(self, fn, *args):
        label = fn.__name__
        try:
            fn(*args)
            self.passed += 1
            print(f"ok   {self.name}: {label}", flush=True)
        except Exception:
            self.failed += 1
            print(f"FAIL {self.name}: {label}", flush=True)
            traceback.print_exc(file=sys.stdout)

    def check(self, cond, label):
        """Records one assertion that is not a whole test function."""
        if cond:
            self.passed += 1
            print(f"ok   {self.name}: {label}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL {self.name}: {label}", flush=True)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 else 1
