#!/usr/bin/env python3
"""Exam-scale load (issue 9): N simulated students through vpl-proxy (TLS, as Moodle and the
browsers reach it) over three worker hosts, each a real vpl-jail on real containerd + runc.

The hosts are network namespaces built by tests/proxy/test_multihost.py (imported: its Net,
NsJail, Proxy set-up; our namespaces are named vplex<pid>-*, not vplmh*, so a multihost
suite running at the same time never mistakes them for its own leftovers):

    h1 h2 h3   one vpl-jail each (plain HTTP on <net>.1x:8080, proxy secret, pool, MAX_TASKS)
    px         vpl-proxy, TLS on <net>.20:8443, TASK_ONLY_FROM = the client
    (cl        unused here)
    this process: every student (<net>.1, one address for all, like a school's NAT)

All workers share one private containerd (scripts/containerd-test.sh) and the minivpl image.

Students (the same behaviour, seeded per student index, at every N):
  - evaluators (1 - EXAM_TERM_SHARE of them): think, then submit an evaluation as the plugin
    does: `request` (interactive 0, the plugin's parameter set, vpl_evaluate.sh compiles the
    student's C file with gcc and writes a vpl_execution that runs it on vpl_evaluate.cases
    and prints the summary and the grade; lighter than the plugin's default evaluation, which
    also compiles its 47 KB vpl_evaluate.cpp with g++ every time: see bench/c_eval.py), open the monitor WebSocket (wss) as the browser
    does, wait for `retrieve:`, call `getresult` (what Moodle's retrieve does), check the
    grade against what this submission deserves (80 % correct -> 10, 10 % wrong output -> 3,
    10 % compile error -> compilation output, no grade), wait briefly for `close:` and call
    `stop` (the browser's cancel). Think time: uniform in [0.5, 1.5] x EXAM_THINK seconds
    counted from the result, the first submission uniform in [0, EXAM_THINK].
    Latency = request sent -> getresult answered. A `request` answered 503 (no worker
    ready / all busy) is a *busy* answer, not an error: the student retries 5-15 s later.
  - terminal holders (EXAM_TERM_SHARE): start an interactive run within the first
    EXAM_RAMP seconds (request interactive 1 + vpl_run.sh compiling a C program that reads
    lines and answers "got <line>"), monitor + execute WebSockets, then every
    [0.5, 1.5] x EXAM_TERM_THINK seconds type a word of 5 letters, one keystroke at a time
    (~0.15 s apart; each one timed until its echo comes back from the tty), then Enter, and
    wait for the program's answer. At the end of the window they stop typing; their
    terminals stay open until the evaluations in flight are done and are then closed (all at
    once: a burst of container kills kept out of the measurement; EXAM_CLOSE_AT_END=1 closes
    them at the end of the window, inside it).
  - MAX_TASKS (EXAM_MAX_TASKS) is the admission: a worker holding that many tasks answers
    busy; the terminals hold their task the whole time.
Each run: fresh workers and proxy; a window of EXAM_WINDOW seconds (EXAM_BASE_WINDOW for the
baseline, the smallest N: the same behaviour observed longer, for more samples) in which
students act, then up to EXAM_DRAIN seconds for evaluations in flight. A `request` that was accepted but
whose `getresult` never answered with a result by then is a *lost* result.

Printed per run: requests (RPCs and evaluations), busy answers, errors (with the first
examples), lost results, p50/p99 of evaluation latency, keystroke echo, line round trip and
terminal start, memory (VmRSS and PSS of each worker and of the proxy, containerd, the
containerd shims of this containerd, the tasks' memory cgroups) idle and at the end of the
window (and peaks), CPU seconds of each component, the machine's load; then the ratios
N_big/N_small of the p50 and p99. Reports only: asserts no timing. Exits non-zero when the
setup breaks, when a run gets zero results, or when a worker or the proxy dies.

Environment: VPL_BUILD (build), EXAM_STUDENTS ("50,500"), EXAM_WINDOW (90 s),
EXAM_BASE_WINDOW (180 s), EXAM_THINK (300 s, see THINK below), EXAM_TERM_SHARE (0.1),
EXAM_TERM_THINK (10 s), EXAM_RAMP (60 s), EXAM_DRAIN (60 s), EXAM_POOL (POOL_SIZE, 2),
EXAM_MAX_TASKS (MAX_TASKS, 24), EXAM_LOGLEVEL (6), EXAM_CLOSE_AT_END, EXAM_KEEP=1 keeps the
logs. One run of the default takes 6-7 minutes. Needs root, iproute2 netns/veth/bridge,
containerd + runc (scripts/containerd-test.sh), node + ws (tests/interactive/wsclient.py).
"""
import json
import os
import queue
import random
import re
import resource
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interactive"))
sys.path.insert(0, os.path.join(ROOT, "tests", "proxy"))
import test_multihost as mh  # noqa: E402  (the namespaces, NsJail, the proxy)
from harness import Response, containerd_start, containerd_stop, recv_all  # noqa: E402
from proxyharness import Proxy, Secrets, metric, worker_conf  # noqa: E402
from wsclient import WsClient  # noqa: E402
sys.path.insert(0, HERE)
from interactive import worker_pids  # noqa: E402  (the keeper and its privsep parser)

BUILD = os.environ.get("VPL_BUILD", "build")
PID = os.getpid()
mh.TAG = f"vplex{PID}"       # our namespaces: vplex<pid>-h1 ... (see the docstring)
EX_RE = re.compile(r"^vplex(\d+)")
PV = 2026012812

SIZES = [int(x) for x in os.environ.get("EXAM_STUDENTS", "50,500").split(",") if x]
WINDOW = float(os.environ.get("EXAM_WINDOW", "90"))
# The baseline (the smallest N) is observed longer: same behaviour, more samples (at 50
# students and one submission per 5 minutes, 90 s hold only ~10 evaluations).
BASE_WINDOW = float(os.environ.get("EXAM_BASE_WINDOW", "180"))
# Mean seconds between a student's result and their next submission. A real exam: one every
# 1-3 minutes. On 2 shared cores 500 students at that rate offer 2.8-8.3 evaluations/s, more
# than the machine starts and compiles (docs/performance.md: at 180 s the 500-student run
# saturates it); the default, one every 5 minutes, is the same at every N.
THINK = float(os.environ.get("EXAM_THINK", "300"))
TERM_SHARE = float(os.environ.get("EXAM_TERM_SHARE", "0.1"))
TERM_THINK = float(os.environ.get("EXAM_TERM_THINK", "10"))
RAMP = float(os.environ.get("EXAM_RAMP", "60"))
DRAIN = float(os.environ.get("EXAM_DRAIN", "60"))
POOL = int(os.environ.get("EXAM_POOL", "2"))
MAX_TASKS = int(os.environ.get("EXAM_MAX_TASKS", "24"))
LOGLEVEL = int(os.environ.get("EXAM_LOGLEVEL", "6"))
CLOSE_AT_END = os.environ.get("EXAM_CLOSE_AT_END", "") == "1"
KEY_GAP = 0.15      # seconds between two keystrokes of a word
EVAL_MAXTIME = 240  # the plugin's sample values (wire samples: maxtime 240, 128 MiB, 200)

STUDENT_OK = ('#include <stdio.h>\nint main(void) {\n    int a, b;\n'
              '    if (scanf("%d %d", &a, &b) != 2) return 1;\n    printf("%d\\n", a + b);\n'
              '    return 0;\n}\n')
STUDENT_WRONG = STUDENT_OK.replace("a + b", "a - b")
STUDENT_BAD = STUDENT_OK.replace("return 0;", "return 0")
CASES = ("case = small\ninput = 1 2\noutput = 3\n\ncase = larger\ninput = 10 20\noutput = 30\n\n"
         "case = zero\ninput = 0 0\noutput = 0\n")
# vpl_evaluate.sh: compile, then write vpl_execution (run after filestodelete are gone, so
# it reads its own copy of the cases), as the plugin's default C evaluation does.
EVALUATE = r'''#!/bin/bash
# plugin-like evaluation: compile the student's C file, run it on vpl_evaluate.cases
. vpl_environment.sh
gcc -std=gnu11 -O0 -Wall -o student "$VPL_SUBFILE0" -lm
[ -x student ] || exit 0
cp vpl_evaluate.cases .vpl_cases
cat > vpl_execution <<'EOF'
#!/bin/bash
n=0; ok=0; report=""
while IFS= read -r line; do
    case "$line" in
    "case = "*) name=${line#case = } ;;
    "input = "*) input=${line#input = } ;;
    "output = "*)
        want=${line#output = }; n=$((n + 1))
        got=$(printf '%s\n' "$input" | timeout 5 ./student 2>&1)
        if [ "$(echo $got)" = "$(echo $want)" ]; then ok=$((ok + 1))
        else report="$report
Test $n ($name): got '$got', expected '$want'"; fi ;;
    esac
done < .vpl_cases
echo "<|--"
echo "-Summary of tests"
echo ">$ok of $n tests passed$report"
echo "--|>"
echo "Grade :=>>$((10 * ok / n))"
EOF
chmod +x vpl_execution
'''
RUN_SH = ('#!/bin/bash\n# VPL run script (default for C)\n. vpl_environment.sh\n'
          'gcc -std=gnu11 -O0 -o prog "$VPL_SUBFILE0" -lm\n'
          "printf '#!/bin/bash\\nexec ./prog\\n' > vpl_execution\nchmod +x vpl_execution\n")
READER_C = r'''#include <stdio.h>
#include <string.h>
int main(void) {
    char b[256];
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("READY\n> ");
    while (fgets(b, sizeof b, stdin)) {
        b[strcspn(b, "\r\n")] = 0;
        printf("got %s\n> ", b);
    }
    return 0;
}
'''


def environment_sh(name):
    return (f"#!/bin/bash\nexport VPL_SUBFILE0='{name}'\nexport VPL_SUBFILES='{name}'\n"
            "export VPL_LANG=en_US.UTF-8\nexport VPL_MAXTIME=240\n")


def eval_params(student, source, k):
    files = {"vpl_run.sh": RUN_SH, "vpl_debug.sh": "", "vpl_evaluate.sh": EVALUATE,
             "vpl_evaluate.cases": CASES, "sum.c": source,
             "vpl_environment.sh": environment_sh("sum.c")}
    return plugin_params(files, "vpl_evaluate.sh", 0, 2, student, k,
                         ["vpl_run.sh", "vpl_debug.sh", "vpl_evaluate.sh",
                          "vpl_evaluate.cases"])


def run_params(student, k):
    files = {"vpl_run.sh": RUN_SH, "ask.c": READER_C,
             "vpl_environment.sh": environment_sh("ask.c")}
    return plugin_params(files, "vpl_run.sh", 1, 0, student, k, ["vpl_run.sh"])


def plugin_params(files, execute, interactive, typ, student, k, delete):
    """The parameter set of the plugin's request (wire samples, mod_vpl 4.x/5.x)."""
    return {"files": files, "filestodelete": {f: 1 for f in delete},
            "maxtime": EVAL_MAXTIME, "maxfilesize": 64 << 20, "maxmemory": 128 << 20,
            "maxprocesses": 200, "runscript": "", "debugscript": "", "evaluator": "",
            "run_mode": 0, "evaluation_mode": 0, "execute": execute, "activityid": "100",
            "type": typ, "pln": "c", "userid": str(1000 + student), "groupid": "0",
            "save_count": str(k + 1), "run_count": "0", "debug_count": "0",
            "evaluation_count": str(k), "submittedlist": [n for n in files if n.endswith(".c")],
            "interactive": interactive, "lang": "en_US.UTF-8",
            "fileencoding": {f: 0 for f in files}, "pluginversion": PV}


T_START = time.time()
LABELS = (("eval", "evaluation request->result"),
          ("eval_user", "evaluation incl. busy retries"), ("echo", "keystroke echo"),
          ("line", "line -> program answer"), ("term_start", "terminal start"))


def log(*a):
    print(*a, flush=True)


def tlog(msg):
    log(f"[{time.time() - T_START:5.0f}s] {msg}")


def commit():
    """The checked-out commit, read from .git (no git command)."""
    try:
        g = os.path.join(ROOT, ".git")
        head = open(os.path.join(g, "HEAD")).read().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head[5:]
        p = os.path.join(g, ref)
        if os.path.exists(p):
            return open(p).read().strip()[:7]
        for line in open(os.path.join(g, "packed-refs")):
            if line.strip().endswith(" " + ref):
                return line.split()[0][:7]
    except OSError:
        pass
    return "unknown"


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


# ---------------------------------------------------------------- /proc

def status_kb(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_s(pid):
    """utime + stime of pid, seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def shims(sock):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "containerd-shim" in cmd.split(" ")[0] and f"-address {sock} " in cmd:
            out.append(int(p))
    return out


def cgroup_usage_kb(worker_ids):
    """Sum of the memory usage of the tasks' cgroups of these workers (v1 or v2), and count."""
    total, n = 0, 0
    for root in ("/sys/fs/cgroup/memory/vplcell", "/sys/fs/cgroup/vplcell",
                 "/sys/fs/cgroup/unified/vplcell"):
        try:
            names = os.listdir(root)
        except OSError:
            continue
        for name in names:
            if not any(name.startswith(f"vplcell-{w}-") for w in worker_ids):
                continue
            for f in ("memory.usage_in_bytes", "memory.current"):
                try:
                    total += int(open(os.path.join(root, name, f)).read()) // 1024
                    n += 1
                    break
                except (OSError, ValueError):
                    pass
        if n:
            break
    return total, n


def proc_stat():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return sum(v[:8]), idle, v[7] if len(v) > 7 else 0


def loadavg():
    return open("/proc/loadavg").read().split()[:3]


def mem_available_mib():
    for line in open("/proc/meminfo"):
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


# ---------------------------------------------------------------- clients

TLS = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


class Rpc:
    """JSON-RPC to the proxy over HTTPS, one connection per call as Moodle's curl does."""

    def __init__(self, host, port, path):
        self.host, self.port, self.path = host, port, path

    def call(self, method, params, timeout=60):
        body = json.dumps({"method": method, "params": params,
                           "id": f"{random.randint(1, 10**9)}"}).encode()
        head = (f"POST {self.path} HTTP/1.1\r\nHost: vplcell\r\nUser-Agent: VPL \r\n"
                f"Accept: */*\r\nContent-type: application/json;charset=UTF-8\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        s = socket.create_connection((self.host, self.port), timeout=timeout)
        try:
            s = TLS.wrap_socket(s, server_hostname="vplcell")
            s.sendall(head + body)
            return Response(recv_all(s))
        finally:
            s.close()


class Ws(WsClient):
    """One wsclient.js for every student: each event is stamped on arrival (perf_counter)
    and handed to the queue registered for its socket id."""

    def __init__(self):
        self.routes = {}
        self.rlock = threading.Lock()
        self.wlock = threading.Lock()
        super().__init__()

    def route(self, sid, q):
        with self.rlock:
            self.routes[sid] = q

    def unroute(self, sid):
        with self.rlock:
            self.routes.pop(sid, None)

    def _reader(self):
        for line in self.p.stdout:
            t = time.perf_counter()
            try:
                e = json.loads(line)
            except ValueError:
                continue
            e["t"] = t
            with self.rlock:
                q = self.routes.get(e.get("id"))
            if q is not None:
                q.put(e)
        with self.rlock:
            qs = list(self.routes.values())
        for q in qs:
            q.put({"ev": "client-gone", "id": "", "t": time.perf_counter()})

    def cmd(self, **c):
        with self.wlock:
            super().cmd(**c)


# ---------------------------------------------------------------- one run

class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.c = {}
        self.lat = {"eval": [], "eval_user": [], "echo": [], "line": [], "term_start": []}
        self.errors = []

    def inc(self, k, n=1):
        with self.lock:
            self.c[k] = self.c.get(k, 0) + n

    def add(self, k, v):
        with self.lock:
            self.lat[k].append(v)

    def error(self, kind, msg, t0):
        with self.lock:
            self.c["errors"] = self.c.get("errors", 0) + 1
            self.c["err:" + kind] = self.c.get("err:" + kind, 0) + 1
            if len(self.errors) < 25:
                self.errors.append(f"[t={time.time() - t0:.1f}s] {kind}: {msg}"[:400])

    def get(self, k):
        with self.lock:
            return self.c.get(k, 0)


class Abort(Exception):
    pass


class Run:
    def __init__(self, n, ctx):
        self.n = n
        self.window = BASE_WINDOW if n == min(SIZES) and len(SIZES) > 1 else WINDOW
        self.ctx = ctx
        self.st = Stats()
        self.rpc = ctx.rpc
        self.ws = ctx.ws
        self.t0 = 0.0
        self.stop_at = 0.0
        self.hard_end = 0.0
        self.inflight = 0
        self.term_ready = 0
        self.lock = threading.Lock()

    def now(self):
        return time.time()

    def sleep_until(self, t):
        while True:
            d = t - time.time()
            if d <= 0:
                return
            time.sleep(min(d, 1.0))

    def call(self, method, params, timeout=60):
        """(status, result dict or None, text). Status 0 = no answer (connection error)."""
        self.st.inc("rpc")
        self.st.inc("rpc:" + method)
        try:
            r = self.rpc.call(method, params, timeout)
        except (OSError, ssl.SSLError) as e:
            return 0, None, repr(e)
        res = None
        if r.status == 200:
            try:
                res = json.loads(r.body).get("result")
            except ValueError:
                pass
        return r.status, res, r.text()[:300]

    def request(self, params, kind):
        """request, retried 5-15 s later on a busy answer: (result, perf_counter when the
        accepted one was sent), or (None, 0) when the window is over or on an error."""
        while True:
            t_sent = time.perf_counter()
            st, res, text = self.call("request", params)
            if st == 200 and res and "adminticket" in res:
                return res, t_sent
            if st == 503:
                self.st.inc("busy")
                self.st.inc("busy:" + kind)
                if time.time() > self.stop_at:
                    self.st.inc("gave_up_busy")
                    return None, 0
                time.sleep(random.uniform(5, 15))
                continue
            self.st.error(f"{kind} request", f"status {st}: {text}", self.t0)
            return None, 0

    def wss(self, ticket, what):
        return f"wss://{self.ctx.px}:{self.ctx.sport}/{ticket}/{what}"

    def next_ev(self, q, timeout):
        try:
            return q.get(timeout=max(0.01, timeout))
        except queue.Empty:
            return None

    # ---- evaluators

    def evaluator(self, i):
        rng = random.Random(1000003 * i + 17)
        k = 0
        t = self.t0 + rng.uniform(0, THINK)
        while True:
            self.sleep_until(min(t, self.stop_at))
            if time.time() >= self.stop_at:
                return
            u = rng.random()
            kind = "ok" if u < 0.8 else "wrong" if u < 0.9 else "bad"
            src = {"ok": STUDENT_OK, "wrong": STUDENT_WRONG, "bad": STUDENT_BAD}[kind]
            try:
                self.one_eval(i, k, kind, src)
            except Exception as e:  # a bug of the bench: counted, shown, never hidden
                self.st.error("bench", f"student {i}: {traceback.format_exc()[-300:]}", self.t0)
                del e
            k += 1
            t = time.time() + rng.uniform(0.5, 1.5) * THINK

    def one_eval(self, i, k, kind, src):
        self.st.inc("eval_submitted")
        t_first = time.perf_counter()
        r, t_req = self.request(eval_params(i, src, k), "eval")
        if r is None:
            return
        self.st.inc("eval_accepted")
        with self.lock:
            self.inflight += 1
        sid = f"e{i}_{k}"
        q = queue.Queue()
        self.ws.route(sid, q)
        admin = r["adminticket"]
        got = None
        mon = []
        try:
            self.ws.open(sid, self.wss(r["monitorticket"], "monitor"), insecure=True)
            monitor_ok = False
            end_mon = None
            deadline = self.hard_end
            # the browser: progress until retrieve:, then Moodle's retrieve -> getresult
            while time.time() < deadline:
                e = self.next_ev(q, min(deadline - time.time(), 1.0))
                if e is None:
                    continue
                if e["ev"] == "open":
                    monitor_ok = True
                elif e["ev"] == "message":
                    mon.append(e.get("text", ""))
                    if e.get("text", "").startswith("retrieve:"):
                        break
                    if e.get("text", "").startswith("close:"):
                        end_mon = "close: before retrieve:"
                        break
                elif e["ev"] in ("close", "error", "unexpected", "client-gone"):
                    end_mon = f"monitor {e['ev']} {e.get('code', e.get('status', ''))} " \
                              f"{e.get('msg', e.get('reason', ''))}".strip()
                    break
            if end_mon or not monitor_ok:
                self.st.error("eval monitor", f"{end_mon or 'never opened'}; monitor said "
                              f"{[m for m in mon if not m.startswith('message:')][-3:]}",
                              self.t0)
            # getresult (also after a monitor failure: whatever is there is the result)
            while time.time() < deadline:
                st, res, text = self.call("getresult", {"adminticket": admin,
                                                        "pluginversion": PV})
                if st == 200 and res is not None:
                    got = res
                    break
                if "Task still running" not in text:
                    self.st.error("eval getresult", f"status {st}: {text}", self.t0)
                    break
                time.sleep(0.5 if not end_mon else 2.0)
            if got is None:
                return
            t_res = time.perf_counter()
            self.st.add("eval", t_res - t_req)
            self.st.add("eval_user", t_res - t_first)
            self.st.inc("eval_results")
            ex, comp = got.get("execution", ""), got.get("compilation", "")
            want = {"ok": "Grade :=>>10", "wrong": "Grade :=>>3", "bad": None}[kind]
            if comp.startswith("vpl-jail:") or ex.startswith("vpl-jail:"):
                self.st.error("eval failed in the worker", f"{kind}: compilation "
                              f"{comp[-150:]!r} execution {ex[-150:]!r}", self.t0)
            elif want and want not in ex:
                self.st.error("eval wrong result", f"{kind}: compilation {comp[-150:]!r} "
                              f"execution {ex[-200:]!r}", self.t0)
            elif not want and ("error" not in comp or "Grade :=>>" in ex):
                self.st.error("eval wrong result", f"{kind}: compilation {comp[-150:]!r} "
                              f"execution {ex[-200:]!r}", self.t0)
            # the monitor says close: (the browser then cancels: stop)
            t_end = time.time() + 5
            while end_mon is None and time.time() < t_end:
                e = self.next_ev(q, t_end - time.time())
                if e is None:
                    break
                if e["ev"] == "message" and e.get("text", "").startswith("close:"):
                    break
                if e["ev"] in ("close", "error", "client-gone"):
                    break
            st, _, text = self.call("stop", {"adminticket": admin, "pluginversion": PV})
            if st != 200:
                self.st.inc("stop_not_200")
        finally:
            if got is None:
                self.st.inc("lost_results")
                self.st.error("eval lost", f"ticket {admin[:12]}..: no result by the end of "
                              f"the drain; monitor said {mon[-3:]}", self.t0)
            self.ws.close(sid)
            self.ws.unroute(sid)
            with self.lock:
                self.inflight -= 1

    # ---- terminal holders

    def terminal(self, i):
        rng = random.Random(7000003 * i + 5)
        start = self.t0 + rng.uniform(0, RAMP)
        self.sleep_until(min(start, self.stop_at))
        if time.time() >= self.stop_at:
            return
        m, x = f"t{i}m", f"t{i}x"
        qm, qx = queue.Queue(), queue.Queue()
        self.ws.route(m, qm)
        self.ws.route(x, qx)
        self.st.inc("term_started")
        r, t_req = self.request(run_params(i, 0), "term")
        if r is None:
            self.ws.unroute(m)
            self.ws.unroute(x)
            return
        admin = r["adminticket"]
        ready = False
        try:
            self.ws.open(m, self.wss(r["monitorticket"], "monitor"), insecure=True)
            mon = []
            deadline = time.time() + 120
            while True:
                e = self.next_ev(qm, deadline - time.time())
                if e is None:
                    raise Abort(f"no run:terminal in 120 s; monitor said {mon[-4:]}")
                if e["ev"] == "message":
                    mon.append(e.get("text", ""))
                    if e["text"].startswith("run:terminal"):
                        break
                    if e["text"].startswith("close:"):
                        raise Abort(f"close: before run:terminal; monitor said {mon[-4:]}")
                elif e["ev"] in ("close", "error", "unexpected", "client-gone"):
                    raise Abort(f"monitor {e['ev']} {e.get('code', e.get('status', ''))} "
                                f"{e.get('msg', '')}; said {mon[-4:]}")
            self.ws.open(x, self.wss(r["executionticket"], "execute"), insecure=True)
            out = self.read_until(qx, qm, lambda s: s.endswith("> ") and "READY" in s, 60)
            if out is None:
                raise Abort("no READY prompt on the execute socket in 60 s")
            self.st.add("term_start", time.perf_counter() - t_req)
            self.st.inc("term_ready")
            with self.lock:
                self.term_ready += 1
            ready = True
            letters = "abcdefhijklmnpqsuvwxyz"  # not in "got" nor ">"
            while True:
                t_next = time.time() + rng.uniform(0.5, 1.5) * TERM_THINK
                if t_next >= self.stop_at:
                    self.sleep_until(self.stop_at)
                    # kept open (idle) until the evaluations in flight are done: closing every
                    # terminal at once is a burst of container kills, measured on its own
                    # (EXAM_CLOSE_AT_END=1 closes them at the end of the window instead)
                    while not CLOSE_AT_END and time.time() < self.hard_end:
                        with self.lock:
                            if self.inflight == 0 and self.evals_left() == 0:
                                break
                        time.sleep(0.5)
                    break
                self.sleep_until(t_next)
                word = "".join(rng.choice(letters) for _ in range(5))
                for ch in word:
                    t1 = time.perf_counter()
                    self.ws.send(x, text=ch)
                    self.st.inc("keystrokes")
                    if self.read_until(qx, qm, lambda s, c=ch: c in s, 15) is None:
                        raise Abort(f"keystroke {ch!r}: no echo in 15 s")
                    self.st.add("echo", time.perf_counter() - t1)
                    time.sleep(KEY_GAP)
                t1 = time.perf_counter()
                self.ws.send(x, text="\r")
                if self.read_until(qx, qm, lambda s, w=word: f"got {w}" in s and
                                   s.endswith("> "), 15) is None:
                    raise Abort(f"line {word!r}: no answer in 15 s")
                self.st.add("line", time.perf_counter() - t1)
                self.st.inc("lines")
        except Abort as e:
            self.st.error("terminal", f"student {i}: {e}", self.t0)
        finally:
            if ready:
                with self.lock:
                    self.term_ready -= 1
            # the browser closes the terminal; the monitor then says close: -> cancel (stop)
            self.ws.close(x)
            t_end = time.time() + 10
            while time.time() < t_end:
                e = self.next_ev(qm, t_end - time.time())
                if e is None or e["ev"] in ("close", "error", "client-gone") or (
                        e["ev"] == "message" and e.get("text", "").startswith("close:")):
                    break
            st, _, _ = self.call("stop", {"adminticket": admin, "pluginversion": PV})
            if st != 200:
                self.st.inc("stop_not_200")
            self.ws.close(m)
            self.ws.unroute(m)
            self.ws.unroute(x)

    def read_until(self, qx, qm, pred, timeout):
        """Text of the execute socket from now until pred(text); None on timeout. A socket
        that ends raises Abort."""
        text = ""
        deadline = time.time() + timeout
        while True:
            # the monitor may end the session: look at it without blocking
            try:
                while True:
                    e = qm.get_nowait()
                    if e["ev"] in ("close", "error", "client-gone") or (
                            e["ev"] == "message" and e.get("text", "").startswith("close:")):
                        raise Abort(f"the monitor ended the session: {e.get('text', e['ev'])}")
            except queue.Empty:
                pass
            e = self.next_ev(qx, min(0.5, deadline - time.time()))
            if e is None:
                if time.time() >= deadline:
                    return None
                continue
            if e["ev"] == "message":
                text += e.get("text", "")
                if pred(text):
                    return text
            elif e["ev"] in ("close", "error", "unexpected", "client-gone"):
                raise Abort(f"execute socket {e['ev']} {e.get('code', e.get('status', ''))}")

    def evals_left(self):
        return sum(1 for t in self.eval_threads if t.is_alive())

    # ---- the run

    def go(self):
        n_term = int(round(self.n * TERM_SHARE))
        # exactly n_term terminal holders, spread over the indices (same students at every N)
        roles = ["eval"] * self.n
        step = self.n / n_term if n_term else 0
        for j in range(n_term):
            roles[int(j * step)] = "term"
        self.t0 = time.time()
        self.stop_at = self.t0 + self.window
        self.hard_end = self.stop_at + DRAIN
        threading.stack_size(512 * 1024)
        ths = []
        self.eval_threads = []
        for i, role in enumerate(roles):
            th = threading.Thread(target=self.evaluator if role == "eval" else self.terminal,
                                  args=(i,), daemon=True)
            ths.append(th)
            if role == "eval":
                self.eval_threads.append(th)
        for th in ths:
            th.start()
        return ths, roles.count("term")


class Ctx:
    pass


def snapshot(ctx):
    """Memory (kB) and CPU (s) of every component now."""
    s = {"workers": [], "proxy": {}, "ctd": {}, "shims": {}}
    for w in ctx.workers:
        # the keeper and, under privsep, its parser (docs/security.md): one worker
        ps = worker_pids(w.proc.pid)
        s["workers"].append({"rss": sum(status_kb(p, "VmRSS:") for p in ps),
                             "hwm": sum(status_kb(p, "VmHWM:") for p in ps),
                             "pss": sum(pss_kb(p) for p in ps), "cpu": sum(cpu_s(p) for p in ps)})
    pid = ctx.proxy.proc.pid
    s["proxy"] = {"rss": status_kb(pid, "VmRSS:"), "hwm": status_kb(pid, "VmHWM:"),
                  "pss": pss_kb(pid), "cpu": cpu_s(pid)}
    s["ctd"] = {"rss": status_kb(ctx.ctd_pid, "VmRSS:"), "pss": pss_kb(ctx.ctd_pid),
                "cpu": cpu_s(ctx.ctd_pid)}
    sp = shims(ctx.env["CTR_SOCKET"])
    s["shims"] = {"n": len(sp), "rss": sum(status_kb(p, "VmRSS:") for p in sp),
                  "pss": sum(pss_kb(p) for p in sp), "cpu": sum(cpu_s(p) for p in sp)}
    s["cg"], s["cg_n"] = cgroup_usage_kb(ctx.worker_ids)
    s["fds_proxy"] = len(os.listdir(f"/proc/{pid}/fd")) if os.path.isdir(f"/proc/{pid}/fd") \
        else 0
    s["client_cpu"] = cpu_s(os.getpid()) + cpu_s(ctx.ws.p.pid)
    return s


def mib(kb):
    return kb / 1024.0


def fmt_mem(s, label):
    ws = " ".join(f"{mib(w['rss']):.1f}/{mib(w['pss']):.1f}" for w in s["workers"])
    return (f"  {label}: workers RSS/PSS MiB [{ws}], proxy {mib(s['proxy']['rss']):.1f}/"
            f"{mib(s['proxy']['pss']):.1f} (fds {s['fds_proxy']}), containerd "
            f"{mib(s['ctd']['rss']):.1f}/{mib(s['ctd']['pss']):.1f}, {s['shims']['n']} shims "
            f"{mib(s['shims']['rss']):.1f}/{mib(s['shims']['pss']):.1f}, {s['cg_n']} task "
            f"cgroups {mib(s['cg']):.1f} MiB")


def start_services(ctx, tag):
    sec = ctx.sec
    ctx.workers = []
    ctx.worker_ids = []
    for h in ("h1", "h2", "h3"):
        state = tempfile.mkdtemp(prefix="vplcell-exam-state-")
        mh.DIRS.append(state)
        wid = f"ex{tag}{h}{PID % 100000}"
        ctx.worker_ids.append(wid)
        c = worker_conf(sec, trusted=f"{mh.NET.ip['px']}/32",
                        CONTAINERD_SOCKET=ctx.env["CTR_SOCKET"],
                        CONTAINERD_NAMESPACE=ctx.env["CTR_NAMESPACE"],
                        HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                        DEFAULT_IMAGE="vplcell.local/minivpl:latest", WORKER_ID=wid,
                        MAXTIME=600, POOL_SIZE=POOL, MAX_TASKS=MAX_TASKS,
                        SHUTDOWN_GRACE=0, LOGLEVEL=LOGLEVEL)
        ctx.workers.append(mh.NsJail(h, **c))
    ctx.proxy = Proxy([w.addr() for w in ctx.workers], sec, prefix=mh.ns_prefix("px"),
                      INTERFACE=mh.NET.ip["px"], PORT=8080, SECURE_PORT=8443,
                      TASK_ONLY_FROM=f"{mh.NET.ip['ok']}/32", LOGLEVEL=LOGLEVEL,
                      REQUEST_MAX_SIZE="8M")
    mh.DIRS.append(ctx.proxy.dir)
    mh.P = ctx.proxy
    mh.wait_up(3, timeout=30)
    ctx.px = mh.NET.ip["px"]
    ctx.sport = 8443
    ctx.rpc = Rpc(ctx.px, ctx.sport, ctx.proxy.urlpath)


def log_summary(ctx):
    """The workers' and the proxy's warnings and errors, counted by kind."""
    kinds = {}
    for name, text in [(w.host, w.read_log()) for w in ctx.workers] + \
            [("px", ctx.proxy.read_log())]:
        for line in text.splitlines():
            m = re.search(r"\[(warn|err|error|crit|alert|emerg)\] (.*)", line)
            if not m or "URLPATH is a secret" in line:
                continue
            k = re.sub(r"task \d+", "task N", m.group(2))
            k = re.sub(r"vplcell-[\w.-]+", "<id>", k)[:200]
            kinds.setdefault(k, {})
            kinds[k][name] = kinds[k].get(name, 0) + 1
    if not kinds:
        log("   worker and proxy logs: no warning or error")
        return
    log("   worker and proxy logs, warnings and errors by kind (count per host):")
    for k, v in sorted(kinds.items(), key=lambda kv: -sum(kv[1].values()))[:10]:
        log(f"     {sum(v.values()):4d} {k}  {v}")


def stop_services(ctx):
    rcs = {}
    rcs["proxy"] = ctx.proxy.stop()
    for w in ctx.workers:
        rcs[w.host] = w.stop()
    return rcs


def ctr_ls(env, what):
    out = subprocess.run(["ctr", "-a", env["CTR_SOCKET"], "-n", env["CTR_NAMESPACE"], what, "ls",
                          "-q"], capture_output=True, text=True).stdout
    return out.split()


def one_run(ctx, n):
    tag = f"{n}"
    win = BASE_WINDOW if n == min(SIZES) and len(SIZES) > 1 else WINDOW
    log(f"\n== {n} students: {int(round(n * TERM_SHARE))} holding terminals, "
        f"{n - int(round(n * TERM_SHARE))} evaluating; window {win:.0f} s, drain "
        f"{DRAIN:.0f} s")
    start_services(ctx, tag)
    tlog("workers and proxy up")
    log(f"   worker logs: {' '.join(w.logpath for w in ctx.workers)}; proxy log "
        f"{ctx.proxy.logpath}")
    # the pools fill before the idle figures
    t_fill = time.time() + 30
    while time.time() < t_fill and cgroup_usage_kb(ctx.worker_ids)[1] < 3 * POOL:
        time.sleep(0.5)
    time.sleep(2)
    idle = snapshot(ctx)
    tlog("pools filled; the students start")
    log(fmt_mem(idle, "idle   "))
    run = Run(n, ctx)
    ctx.ws.routes.clear()
    cpu0 = proc_stat()
    la0 = loadavg()
    ths, n_term = run.go()
    peak = {"workers": [0, 0, 0], "proxy": 0, "shims": 0, "cg": 0, "fds": 0}
    at_end = None
    dead = []
    last_print = time.time()
    while any(t.is_alive() for t in ths) and time.time() < run.hard_end + 30:
        time.sleep(2.0)
        s = snapshot(ctx)
        for k, w in enumerate(s["workers"]):
            peak["workers"][k] = max(peak["workers"][k], w["rss"])
        peak["proxy"] = max(peak["proxy"], s["proxy"]["rss"])
        peak["shims"] = max(peak["shims"], s["shims"]["pss"])
        peak["cg"] = max(peak["cg"], s["cg"])
        peak["fds"] = max(peak["fds"], s["fds_proxy"])
        if at_end is None and time.time() >= run.stop_at - 3:
            at_end = s
            cpu_end = proc_stat()
        for w in ctx.workers:
            if w.proc.poll() is not None and w.host not in dead:
                dead.append(w.host)
                log(f"   !! worker {w.host} died rc={w.proc.returncode}")
        if ctx.proxy.proc.poll() is not None and "px" not in dead:
            dead.append("px")
            log(f"   !! proxy died rc={ctx.proxy.proc.returncode}")
        if time.time() - last_print >= 15:
            last_print = time.time()
            st = run.st
            log(f"   t={time.time() - run.t0:5.0f}s evaluations {st.get('eval_submitted')} "
                f"submitted, {st.get('eval_results')} results, {run.inflight} in flight; "
                f"terminals {run.term_ready} ready; busy {st.get('busy')}, errors "
                f"{st.get('errors')}; load {' '.join(loadavg())}")
    alive = sum(1 for t in ths if t.is_alive())
    t_done = time.time() - run.t0
    if at_end is None:
        at_end = snapshot(ctx)
        cpu_end = proc_stat()
    la1 = loadavg()
    tot = cpu_end[0] - cpu0[0]
    busy_pct = 100.0 * (tot - (cpu_end[1] - cpu0[1])) / tot if tot else 0
    steal_pct = 100.0 * (cpu_end[2] - cpu0[2]) / tot if tot else 0
    # metrics of the proxy (answers by method and status)
    try:
        m = mh.proxy_metrics()
        pm = {k: int(metric(m, "vplcell_proxy_requests_total", method=k, status=s))
              for k, s in (("request", 200), ("getresult", 200))}
        pm["request 503"] = int(metric(m, "vplcell_proxy_requests_total", method="request",
                                       status=503))
    except Exception as e:
        pm = {"scrape failed": repr(e)[:100]}
    tlog("students done")
    rcs = stop_services(ctx)
    tlog(f"workers and proxy stopped {rcs}")
    log_summary(ctx)
    t_c = time.time()
    while time.time() - t_c < 20 and (ctr_ls(ctx.env, "containers") or
                                      shims(ctx.env["CTR_SOCKET"])):
        time.sleep(0.5)
    left = (len(ctr_ls(ctx.env, "containers")), len(shims(ctx.env["CTR_SOCKET"])))
    res = report(run, n, n_term, idle, at_end, peak, busy_pct, steal_pct, la0, la1, pm, rcs,
                 left, alive, t_done, dead)
    if any(rc != 0 for rc in rcs.values()) or dead:
        for w in ctx.workers:
            log(f"---- {w.host} log tail ----\n" + w.read_log()[-2500:])
        log("---- proxy log tail ----\n" + ctx.proxy.read_log()[-2500:])
    return res


def report(run, n, n_term, idle, end, peak, busy_pct, steal_pct, la0, la1, pm, rcs, left,
           alive, t_done, dead):
    st = run.st
    L = st.lat
    ms = lambda v: v * 1000.0
    log(f"   window {run.window:.0f} s + drain: last student done {t_done:.0f} s after the start"
        f"{'' if not alive else f', {alive} students still busy (counted lost/errors)'}")
    log(f"   machine: {os.cpu_count()} CPUs, busy {busy_pct:.0f} % during the window (steal "
        f"{steal_pct:.1f} %), load average {' '.join(la0)} before -> {' '.join(la1)} at the end")
    ev_rate = st.get("eval_submitted") / run.window
    log(f"   evaluations: {st.get('eval_submitted')} submitted ({ev_rate:.2f}/s, "
        f"{ev_rate / max(1, n - n_term) * 60:.2f} per student per minute), "
        f"{st.get('eval_accepted')} accepted, {st.get('eval_results')} results, "
        f"busy answers {st.get('busy:eval')} (gave up after the window "
        f"{st.get('gave_up_busy')}), lost results {st.get('lost_results')}")
    log(f"   terminals: {n_term} students, {st.get('term_ready')} ready, busy answers "
        f"{st.get('busy:term')}, keystrokes {st.get('keystrokes')}, echoes {len(L['echo'])}, "
        f"lines answered {st.get('lines')}")
    log(f"   requests (RPCs sent): {st.get('rpc')} (request {st.get('rpc:request')}, getresult "
        f"{st.get('rpc:getresult')}, stop {st.get('rpc:stop')}; stop not 200: "
        f"{st.get('stop_not_200')}); proxy metrics: {pm}")
    kinds = {k[4:]: v for k, v in st.c.items() if k.startswith("err:")}
    log(f"   errors: {st.get('errors')} {kinds if kinds else ''}")
    for e in st.errors[:12]:
        log(f"     {e}")
    q = {}
    for k, label in LABELS:
        xs = L[k]
        q[k] = (ms(pct(xs, 50)), ms(pct(xs, 99)), len(xs))
        log(f"   {label:28s} n={len(xs):5d}  p50 {q[k][0]:9.1f} ms  p99 {q[k][1]:9.1f} ms"
            f"  max {ms(max(xs)) if xs else float('nan'):9.1f} ms")
    log(fmt_mem(end, "window end"))
    pw = " ".join(f"{mib(x):.1f}" for x in peak["workers"])
    log(f"   peaks: workers VmRSS {pw} MiB, "
        f"proxy VmRSS {mib(peak['proxy']):.1f} MiB (fds {peak['fds']}), shims PSS "
        f"{mib(peak['shims']):.1f} MiB, task cgroups {mib(peak['cg']):.1f} MiB")
    cpu = lambda a, b: b - a
    wcpu = " ".join(f"{cpu(x['cpu'], y['cpu']):.1f}" for x, y in zip(idle["workers"],
                                                                      end["workers"]))
    log(f"   CPU seconds during the run: workers {wcpu}, proxy {cpu(idle['proxy']['cpu'], end['proxy']['cpu']):.1f}, containerd "
        f"{cpu(idle['ctd']['cpu'], end['ctd']['cpu']):.1f}, shims alive at the end "
        f"{end['shims']['cpu']:.1f}, client (python + node) "
        f"{cpu(idle['client_cpu'], end['client_cpu']):.1f}")
    log(f"   stopped: {rcs}; containers left {left[0]}, shims left {left[1]}")
    return {"n": n, "q": q, "st": st, "end": end, "idle": idle, "peak": peak, "rcs": rcs,
            "dead": dead, "left": left}


def cleanup_ours():
    """Namespaces and links of earlier runs of this bench whose process is gone."""
    def alive(pid):
        try:
            return b"exam.py" in open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            return False
    for line in mh.sh("ip", "netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = EX_RE.match(name)
        if m and int(m.group(1)) != PID and not alive(int(m.group(1))):
            mh.sh("ip", "netns", "del", name, check=False)
            log(f"# removed leftover namespace {name}")
    for line in mh.sh("ip", "-o", "link", "show", check=False).stdout.splitlines():
        parts = line.split(":")
        if len(parts) < 2:
            continue
        name = parts[1].strip().split("@")[0]
        m = EX_RE.match(name)
        if m and int(m.group(1)) != PID and not alive(int(m.group(1))):
            mh.sh("ip", "link", "del", name, check=False)


def main():
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(143))
    t_start = time.time()
    log(f"bench/exam.py  commit {commit()}  build {BUILD}  "
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * max(SIZES) + 1024
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
    soft2 = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    log(f"machine: {os.cpu_count()} CPUs, MemAvailable {mem_available_mib()} MiB, load average "
        f"{' '.join(loadavg())}; fd limit {soft2} (inherited by the proxy and workers; "
        f"needed ~{need}); proxy MAX_CONNECTIONS_PER_IP default 4096 (all students share one "
        f"address; at most ~{2 * int(max(SIZES) * TERM_SHARE) + max(SIZES)} sockets at once)")
    log(f"students: {SIZES}; think {THINK:.0f} s mean between a result and the next "
        f"submission (uniform x0.5..x1.5), {TERM_SHARE:.0%} hold terminals typing a word every "
        f"{TERM_THINK:.0f} s mean; workers POOL_SIZE={POOL} MAX_TASKS={MAX_TASKS} "
        f"LOGLEVEL={LOGLEVEL}, runc")
    if soft2 < need:
        log(f"FAIL: fd limit {soft2} < {need}")
        return 1
    cleanup_ours()
    ctx = Ctx()
    rc = 0
    results = []
    ctd_dir = tempfile.mkdtemp(prefix="vplcell-exam-ctd-")
    try:
        mh.NET = mh.Net()
    except Exception as e:
        log(f"FAIL: network namespaces could not be built: {e}")
        return 1
    log(f"network {mh.NET.subnet}: proxy {mh.NET.ip['px']}, workers "
        f"{mh.NET.ip['h1']} {mh.NET.ip['h2']} {mh.NET.ip['h3']}, client {mh.NET.ip['ok']}")
    try:
        ctx.env = containerd_start(ctd_dir)
        mh.ENV.update(ctx.env)
        ctx.ctd_pid = int(open(os.path.join(ctd_dir, "containerd.pid")).read())
        tar = subprocess.run([f"{ROOT}/images/minivpl/build.sh"], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run(["ctr", "-a", ctx.env["CTR_SOCKET"], "-n", ctx.env["CTR_NAMESPACE"],
                        "images", "import", tar], check=True, capture_output=True)
        tlog("containerd up, minivpl imported")
        ctx.sec = Secrets()
        mh.SEC = ctx.sec
        mh.DIRS.append(ctx.sec.dir)
        with Ws() as ws:
            ctx.ws = ws
            for n in SIZES:
                r = one_run(ctx, n)
                results.append(r)
                if r["st"].get("eval_results") + r["st"].get("term_ready") == 0:
                    log(f"FAIL: {n} students got zero results")
                    rc = 1
                if r["dead"] or any(v != 0 for v in r["rcs"].values()):
                    log(f"FAIL: a worker or the proxy died or exited uncleanly: {r['rcs']}")
                    rc = 1
        summary(results)
    except Exception as e:
        log(f"FAIL: setup or run aborted: {e!r}"[:500])
        traceback.print_exc(file=sys.stdout)
        rc = 1
    finally:
        for w in getattr(ctx, "workers", []):
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait()
        p = getattr(ctx, "proxy", None)
        if p and p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()
        containerd_stop(ctd_dir)
        mh.NET.destroy()
        if os.environ.get("EXAM_KEEP"):
            log(f"# kept: {' '.join(mh.DIRS)}")
        else:
            for d in mh.DIRS + [ctd_dir]:
                shutil.rmtree(d, ignore_errors=True)
    log(f"# total {time.time() - t_start:.0f} s, rc={rc}")
    return rc


def summary(results):
    if len(results) < 2:
        return
    a, b = results[0], results[-1]
    log(f"\n== {b['n']} vs {a['n']} students (same per-student behaviour)")
    for k, label in LABELS:
        (p50a, p99a, na), (p50b, p99b, nb) = a["q"][k], b["q"][k]
        r50 = p50b / p50a if na and nb and p50a else float("nan")
        r99 = p99b / p99a if na and nb and p99a else float("nan")
        log(f"{label}: p50 {p50a:.1f} -> {p50b:.1f} ms (ratio {r50:.2f}), p99 {p99a:.1f} -> "
            f"{p99b:.1f} ms (ratio {r99:.2f})  [n {na} / {nb}]")
    for r in (a, b):
        st = r["st"]
        log(f"{r['n']} students: requests {st.get('rpc')}, evaluations {st.get('eval_results')}"
            f"/{st.get('eval_accepted')}, busy answers {st.get('busy')}, errors "
            f"{st.get('errors')}, lost results {st.get('lost_results')}")
    for r in (a, b):
        e = r["end"]
        wr = " + ".join(f"{mib(w['rss']):.1f}" for w in e["workers"])
        log(f"{r['n']} students, memory at the end of the window: workers VmRSS {wr} MiB, proxy "
            f"{mib(e['proxy']['rss']):.1f} MiB, containerd {mib(e['ctd']['rss']):.1f} MiB, "
            f"{e['shims']['n']} shims PSS {mib(e['shims']['pss']):.1f} MiB (RSS "
            f"{mib(e['shims']['rss']):.1f}), task cgroups {mib(e['cg']):.1f} MiB")


if __name__ == "__main__":
    sys.exit(main())
