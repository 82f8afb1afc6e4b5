#!/usr/bin/env python3
"""Per-task cost of vpl-jail against running the same evaluation on the host.

The evaluation has the shape of the plugin's default C evaluation: the
script compiles the student's C file with gcc and a C++ test driver with g++
(a stand-in for the plugin's vpl_evaluate.cpp, which we may not ship: it
includes the same heavy standard headers), then runs the driver, which runs
the student's program and prints a grade.

The bench waits for each task's end as the plugin does: a WebSocket on the
task's monitor until "retrieve:", then one getresult (BENCH_WAIT=poll polls
getresult every 5 ms instead, as runs before session 5 did).

Baseline, in the same run: the same script and files in a temp directory on
the host (bash, same gcc/g++ as the image's Debian 12). Prints medians and
ratios: 20 sequential tasks, 8 concurrent clients (throughput), and a
trivial hello-world task (per-task overhead).
Needs root, containerd + runc, and the minivpl image (the test scripts set
them up); run `make bench`.
"""
import concurrent.futures as cf
import json
import os
import queue
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interactive"))
from harness import Jail, http  # noqa
from wsclient import WsClient  # noqa

WAIT = os.environ.get("BENCH_WAIT", "monitor")
WS_POOL = queue.Queue()  # one monitor client per concurrent bench client

STUDENT = ('#include <stdio.h>\nint main(void){ int a,b; if(scanf("%d %d",&a,&b)!=2) return 1;'
           ' printf("%d\\n", a+b); return 0; }\n')
DRIVER = r'''#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>
struct Case { std::string in, out; };
static std::string run(const std::string &in) {
    std::ofstream("in.txt") << in;
    std::system("./student < in.txt > out.txt 2>&1");
    std::ifstream f("out.txt"); std::stringstream s; s << f.rdbuf(); return s.str();
}
int main() {
    std::vector<Case> cases = {{"1 2\n", "3\n"}, {"10 20\n", "30\n"}, {"-1 1\n", "0\n"}};
    std::map<std::string, int> seen; int ok = 0;
    std::regex ws("\\s+");
    for (auto &c : cases) {
        std::string got = std::regex_replace(run(c.in), ws, " ");
        std::string want = std::regex_replace(c.out, ws, " ");
        seen[got]++; if (got == want) ok++;
    }
    std::cout << "<|--\n-Summary of tests\n>" << ok << " tests passed\n--|>\n";
    std::cout << "Grade :=>>" << (10.0 * ok / cases.size()) << std::endl;
}
'''
EVAL = ("#!/bin/bash\ngcc -O0 -o student student.c -lm\ng++ -O0 -o .vpl_tester vpl_tester.cpp\n"
        "printf '#!/bin/bash\\n./.vpl_tester\\n' > vpl_execution\nchmod +x vpl_execution\n")
HELLO_EVAL = ("#!/bin/bash\ngcc -o hello student.c\nprintf '#!/bin/bash\\necho 1 2 | ./hello\\n'"
              " > vpl_execution\nchmod +x vpl_execution\n")


def host_once(script):
    d = tempfile.mkdtemp(prefix="vplbench-host-")
    for name, text in (("student.c", STUDENT), ("vpl_tester.cpp", DRIVER),
                       ("vpl_evaluate.sh", script)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text)
    t0 = time.perf_counter()
    subprocess.run("bash vpl_evaluate.sh && ./vpl_execution", shell=True, cwd=d, check=True,
                   capture_output=True)
    dt = time.perf_counter() - t0
    subprocess.run(["rm", "-rf", d])
    return dt


def jail_once(j, script):
    files = {"student.c": STUDENT, "vpl_tester.cpp": DRIVER, "vpl_evaluate.sh": script}
    body = json.dumps({"method": "request", "params": {
        "files": files, "fileencoding": {k: 0 for k in files},
        "filestodelete": {"vpl_evaluate.sh": 1}, "execute": "vpl_evaluate.sh",
        "interactive": 0, "lang": "en_US.UTF-8", "maxtime": 60, "maxmemory": 512 << 20,
        "maxfilesize": 64 << 20, "maxprocesses": 64}, "id": "b"}).encode()
    ws = WS_POOL.get()  # started before the clock, as a browser's page is
    try:
        t0 = time.perf_counter()
        r = json.loads(http(j.port, "POST", j.urlpath, body).body)["result"]
        if WAIT == "poll":
            g = poll_result(j, r["adminticket"])
        else:
            # The plugin's way: the browser waits on the monitor for "retrieve:", then
            # Moodle calls getresult once. Costs no CPU while the task runs.
            sid = r["monitorticket"]
            ws.open(sid, f"ws://127.0.0.1:{j.port}/{sid}/monitor")
            ws.wait(sid, lambda e: e.get("text") == "retrieve:" or e["ev"] == "close",
                    timeout=120)
            g = getresult(j, r["adminticket"])
            ws.close(sid)
        dt = time.perf_counter() - t0
    finally:
        WS_POOL.put(ws)
    res = json.loads(g.body)["result"]
    if "Grade :=>>" not in res["execution"] and script is EVAL:
        raise RuntimeError("evaluation failed: " + json.dumps(res)[:500])
    return dt


def getresult(j, ticket):
    return http(j.port, "POST", j.urlpath, json.dumps(
        {"method": "getresult", "params": {"adminticket": ticket, "pluginversion": 1},
         "id": "g"}).encode())


def poll_result(j, ticket):
    """BENCH_WAIT=poll: getresult every 5 ms until it answers (what earlier runs did; the
    polling itself takes CPU from the compilers when 8 clients do it)."""
    while True:
        g = getresult(j, ticket)
        if g.status == 200:
            return g
        time.sleep(0.005)


def throughput(fn, n_tasks, clients):
    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as ex:
        list(ex.map(lambda _: fn(), range(n_tasks)))
    return n_tasks / (time.perf_counter() - t0)


def main():
    ctd = tempfile.mkdtemp(prefix="vplbench-ctd-")
    sh = lambda c: subprocess.run(c, shell=True, check=True, capture_output=True, text=True)
    sh(f"{ROOT}/scripts/containerd-test.sh start {ctd}")
    env = dict(p.split("=", 1) for p in shlex.split(
        sh(f"{ROOT}/scripts/containerd-test.sh env {ctd}").stdout.replace("export ", "")))
    try:
        tar = sh(f"{ROOT}/images/minivpl/build.sh").stdout.strip().splitlines()[-1]
        sh(f"ctr -a {env['CTR_SOCKET']} -n {env['CTR_NAMESPACE']} images import {tar}")
        state = tempfile.mkdtemp(prefix="vplbench-state-")
        j = Jail(CONTAINERD_SOCKET=env["CTR_SOCKET"], CONTAINERD_NAMESPACE=env["CTR_NAMESPACE"],
                 DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                 HELPER_PATH=os.path.join(ROOT, os.environ.get("VPL_BUILD", "build"),
                                          "vplhelper"),
                 STATE_DIR=state, LOGLEVEL=4, MAX_TASKS=64, TASK_CPU_PERCENT=200,
                 RUNTIME=os.environ.get("RUNTIME", "runc"),
                 SHIM_GROUP_SIZE=os.environ.get("SHIM_GROUP_SIZE", "16"))
        clients = [WsClient() for _ in range(8)]
        for c in clients:
            WS_POOL.put(c)
        try:
            jail_once(j, EVAL)  # warm: image resolution, page cache
            host_once(EVAL)
            n = int(os.environ.get("BENCH_N", "20"))
            if os.environ.get("BENCH_ONLY") == "hello":
                hh = statistics.median([host_once(HELLO_EVAL) for _ in range(n)])
                jh = statistics.median([jail_once(j, HELLO_EVAL) for _ in range(n)])
                print(f"hello world, {n} sequential: host median {hh*1000:.0f} ms, vpl-jail "
                      f"median {jh*1000:.0f} ms, ratio {jh/hh:.2f} (target <= 2.0)")
                return
            if os.environ.get("BENCH_ONLY") == "concurrent":
                ht = throughput(lambda: host_once(EVAL), 16, 8)
                jt = throughput(lambda: jail_once(j, EVAL), 16, 8)
                print(f"C evaluation, 8 concurrent clients: host {ht:.2f} tasks/s, vpl-jail "
                      f"{jt:.2f} tasks/s, ratio {jt/ht:.2f} (target >= 0.8), SHIM_GROUP_SIZE "
                      f"{os.environ.get('SHIM_GROUP_SIZE', '16')}")
                return
            hs = [host_once(EVAL) for _ in range(n)]
            js = [jail_once(j, EVAL) for _ in range(n)]
            hm, jm = statistics.median(hs), statistics.median(js)
            print(f"C evaluation, {n} sequential: host median {hm*1000:.0f} ms, "
                  f"vpl-jail median {jm*1000:.0f} ms, ratio {jm/hm:.2f} (target <= 1.15)")
            ht = throughput(lambda: host_once(EVAL), 16, 8)
            jt = throughput(lambda: jail_once(j, EVAL), 16, 8)
            print(f"C evaluation, 8 concurrent clients: host {ht:.2f} tasks/s, "
                  f"vpl-jail {jt:.2f} tasks/s, ratio {jt/ht:.2f} (target >= 0.8)")
            hh = statistics.median([host_once(HELLO_EVAL) for _ in range(n)])
            jh = statistics.median([jail_once(j, HELLO_EVAL) for _ in range(n)])
            print(f"hello world, {n} sequential: host median {hh*1000:.0f} ms, "
                  f"vpl-jail median {jh*1000:.0f} ms, ratio {jh/hh:.2f} (target <= 2.0), "
                  f"runtime {os.environ.get('RUNTIME', 'runc')}")
        finally:
            for c in clients:
                c.__exit__()
            j.stop()
    finally:
        subprocess.run([f"{ROOT}/scripts/containerd-test.sh", "stop", ctd])


if __name__ == "__main__":
    main()
