#!/usr/bin/env python3
"""Policy tests that need their own vpl-jail instance: TASK_ONLY_FROM, the
MAX_TASKS cap, configuration errors at start-up, both ports off."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import Jail, Suite, http, BINARY  # noqa

S = Suite("policy")


def rpc(j, method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    return http(j.port, "POST", j.urlpath, body)


def test_task_only_from_refuses():
    j = Jail(TASK_ONLY_FROM="10.9. 192.168.0.0/16 fd00::/8")
    try:
        r = rpc(j, "available", {"maxmemory": 1})
        assert r.status == 400 and "Client not allowed" in r.text(), (r.status, r.text())
        # GET is not subject to TASK_ONLY_FROM.
        assert http(j.port, "GET", "/OK").status == 200
    finally:
        assert j.stop() == 0


def test_task_only_from_allows_loopback_cidr():
    j = Jail(TASK_ONLY_FROM="10.9. 127.0.0.0/8")
    try:
        r = rpc(j, "available", {"maxmemory": 1})
        assert r.status == 200, r.text()
    finally:
        assert j.stop() == 0


def test_max_tasks_busy():
    j = Jail(MAX_TASKS=2, MAXTIME=60)
    try:
        p = {"files": {"a.sh": "x"}, "execute": "a.sh", "interactive": 1, "lang": "C"}
        tickets = []
        for _ in range(2):
            r = rpc(j, "request", p)
            assert r.status == 200, r.text()
            tickets.append(json.loads(r.body)["result"]["adminticket"])
        av = json.loads(rpc(j, "available", {"maxmemory": 1}).body)["result"]
        assert av["status"] == "busy" and av["load"] == 2, av
        r = rpc(j, "request", p)
        assert r.status == 503 and "task limit" in r.text(), (r.status, r.text())
        rpc(j, "stop", {"adminticket": tickets[0], "pluginversion": 1})
        av = json.loads(rpc(j, "available", {"maxmemory": 1}).body)["result"]
        assert av["status"] == "ready" and av["load"] == 1, av
    finally:
        assert j.stop() == 0


def test_fail2ban_refuses_abuser():
    j = Jail(FAIL2BAN=1)
    try:
        for _ in range(21):
            assert http(j.port, "POST", "/wrong", b"{}").status == 404
        # 21 errors > 20 x FAIL2BAN and > half the requests: refused at accept.
        refused = http(j.port, "GET", "/OK")
        assert refused.status == 0 and refused.raw == b"", refused.raw[:100]
        assert "FAIL2BAN: refusing connection from 127.0.0.1" in j.read_log()
        # Another address (IPv6 loopback) is a different client.
        import socket
        r = http(j.port, "GET", "/OK", host="::1", family=socket.AF_INET6)
        assert r.status == 200, r.status
    finally:
        assert j.stop() == 0


def start_with(conf_text):
    d = tempfile.mkdtemp(prefix="vplcell-conf-")
    path = os.path.join(d, "bad.conf")
    with open(path, "w") as f:
        f.write(conf_text)
    return subprocess.run([BINARY, "-f", path], capture_output=True, text=True, timeout=10), path


def test_config_errors_stop_startup():
    r, path = start_with("PORT=0\nSECURE_PORT=0\n")
    assert r.returncode != 0, r
    r, path = start_with("PORT=8080\nSECURE_PORT=0\nNOSUCHKEY=1\n")
    assert r.returncode != 0 and f"{path}:3" in r.stderr and "NOSUCHKEY" in r.stderr, r.stderr
    r, path = start_with("PORT=8080\nSECURE_PORT=0\nMAXMEMORY=lots\n")
    assert r.returncode != 0 and f"{path}:3" in r.stderr and "MAXMEMORY" in r.stderr, r.stderr
    r, path = start_with("PORT=0\nSECURE_PORT=8443\nSSL_CERT_FILE=/nonexistent.pem\n"
                         "SSL_KEY_FILE=/nonexistent.key\n")
    assert r.returncode != 0 and "certificate" in r.stderr, r.stderr


def test_reference_keys_warned():
    d = tempfile.mkdtemp(prefix="vplcell-conf-")
    path = os.path.join(d, "ref.conf")
    with open(path, "w") as f:
        f.write("PORT=8080\nSECURE_PORT=0\nJAILPATH=/jail\nFIREWALL=2\nURLPATH=/hidden\n")
    p = subprocess.run([BINARY, "-t", "-f", path], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    assert "JAILPATH" in p.stderr and "FIREWALL" in p.stderr, p.stderr
    assert "URLPATH" in p.stdout and "hidden" not in p.stdout + p.stderr, p.stdout


def main():
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            S.run(fn)
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
