#!/usr/bin/env python3
"""Peak memory of vpl-jail while it takes a request body at REQUEST_MAX_SIZE.

Starts the real worker, sends one `request` whose single file makes the body
just under the limit (JSON, then XML-RPC with a fresh worker), and reads the
worker's VmHWM (peak RSS) before and after. Prints the peak growth as a ratio
of the body size: the baseline is the body itself, measured in the same run.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "protocol"))
from harness import Jail, http  # noqa

LIMIT = int(os.environ.get("BODY_LIMIT", str(128 << 20)))


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def measure(fmt):
    j = Jail(REQUEST_MAX_SIZE=LIMIT, LOGLEVEL=4)
    try:
        pad = LIMIT - 4096
        if fmt == "json":
            body = json.dumps({"method": "request", "params": {
                "files": {"big.txt": "a" * pad, "vpl_run.sh": "#!/bin/bash\n"},
                "execute": "vpl_run.sh", "interactive": 0, "lang": "C"}, "id": "1"}).encode()
        else:
            body = ('<?xml version="1.0"?><methodCall><methodName>request</methodName>'
                    '<params><param><value><struct><member><name>files</name><value><struct>'
                    '<member><name>big.txt</name><value><string>' + "a" * pad +
                    '</string></value></member></struct></value></member>'
                    '<member><name>execute</name><value><string>big.txt</string></value>'
                    '</member></struct></value></param></params></methodCall>').encode()
        assert len(body) <= LIMIT, len(body)
        base = status_kb(j.proc.pid, "VmHWM")
        t0 = time.time()
        r = http(j.port, "POST", j.urlpath, body,
                 {"Content-type": "text/xml" if fmt == "xml" else "application/json"})
        dt = time.time() - t0
        assert r.status == 200, (r.status, r.text()[:200])
        peak = status_kb(j.proc.pid, "VmHWM")
        rss_after = status_kb(j.proc.pid, "VmRSS")
        growth = (peak - base) * 1024
        print(f"{fmt}: body {len(body) / 2**20:.1f} MiB, baseline VmHWM {base / 1024:.1f} MiB, "
              f"peak growth {growth / 2**20:.1f} MiB = {growth / len(body):.2f} x body, "
              f"RSS after {rss_after / 1024:.1f} MiB, {dt:.2f} s")
    finally:
        j.stop()


if __name__ == "__main__":
    for fmt in ("json", "xml"):
        measure(fmt)
