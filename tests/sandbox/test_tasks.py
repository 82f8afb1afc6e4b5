#!/usr/bin/env python3
"""End-to-end tasks through the real worker, a private real containerd + runc
and the minivpl image: evaluations that compile and run, and hostile student
programs, each contained while the worker keeps serving everyone else. After
the suite: nothing of ours is left (containers, snapshots, FIFOs, mounts,
cgroups, shims)."""
import glob
import re
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
from harness import Jail, Suite, containerd_start, http  # noqa

S = Suite("tasks")
BUILD = os.environ.get("VPL_BUILD", "build")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
J = None
ENV = {}
# Worker ids unique to this run: container ids and cgroups (/vplcell/vplcell-<id>-N) are
# not namespaced, and the suite may run beside itself (build and build-asan passes).
_P = os.getpid() % 100000
W1, W2, W3, W9 = "a%d" % _P, "b%d" % _P, "c%d" % _P, "d%d" % _P
# Task uids (PRISONER_UID, PRISONER_UIDS): one per container, from a range of this run's own (two
# runs of the suite side by side have separate STATE_DIRs, so nothing else keeps them apart).
UID_BASE, UID_COUNT = 70000 + (_P % 19) * 1000, 1000


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw)


def start_containerd():
    ENV.update(containerd_start(CTD_DIR))
    tar = sh(f"{ROOT}/images/minivpl/build.sh").stdout.strip().splitlines()[-1]
    sh(f"ctr -a {ENV['CTR_SOCKET']} -n {ENV['CTR_NAMESPACE']} images import {tar}")


def rpc(method, params, jail=None):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    jail = jail or J
    return http(jail.port, "POST", jail.urlpath, body)


def request(files, execute="vpl_evaluate.sh", interactive=0, todelete=None, jail=None, **limits):
    p = {"files": files, "fileencoding": {k: 0 for k in files},
         "filestodelete": todelete or {}, "execute": execute, "interactive": interactive,
         "lang": "en_US.UTF-8", "maxtime": 20, "maxmemory": 256 << 20,
         "maxfilesize": 64 << 20, "maxprocesses": 64, "pluginversion": 2026012812}
    p.update(limits)
    r = rpc("request", p, jail)
    assert r.status == 200, (r.status, r.text())
    return json.loads(r.body)["result"]["adminticket"]


def result(ticket, timeout=90, jail=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = rpc("getresult", {"adminticket": ticket, "pluginversion": 2026012812}, jail)
        if r.status == 200:
            return json.loads(r.body)["result"]
        assert "Task still running" in r.text(), (r.status, r.text())
        time.sleep(0.1)
    raise AssertionError("task did not finish")


def eval_request(program_files, run_cmd, **limits):
    """The shape of the plugin's default evaluation: a script that compiles
    and leaves vpl_execution behind. Returns the admin ticket."""
    files = dict(program_files)
    files["vpl_evaluate.sh"] = ("#!/bin/bash\n" + run_cmd.get("compile", "") + "\n"
                                "cat > vpl_execution <<'EOF'\n#!/bin/bash\n" +
                                run_cmd["run"] + "\nEOF\nchmod +x vpl_execution\n")
    return request(files, todelete={"vpl_evaluate.sh": 1}, **limits)


def evaluate(program_files, run_cmd, **limits):
    return result(eval_request(program_files, run_cmd, **limits))


HELLO_C = '#include <stdio.h>\nint main(void){ printf("Hello world\\n"); return 0; }\n'


def test_c_evaluation():
    g = evaluate({"hello.c": HELLO_C}, {"compile": "gcc -O2 -o hello hello.c",
                                          "run": "./hello; echo 'Grade :=>>10'"})
    assert g["executed"] == 1 and "Hello world" in g["execution"], g
    assert "Grade :=>>10" in g["execution"]


def test_cpp_and_python():
    g = evaluate({"a.cpp": '#include <iostream>\nint main(){std::cout<<"cpp ok"<<std::endl;}\n',
                  "p.py": "print('py', 6*7)\n"},
                 {"compile": "g++ -o a a.cpp", "run": "./a; python3 p.py"})
    assert "cpp ok" in g["execution"] and "py 42" in g["execution"], g


def test_compile_error_reported():
    g = evaluate({"bad.c": "int main( { return 0 }\n"},
                 {"compile": "gcc -o bad bad.c || rm -f vpl_execution_never", "run": "./bad"})
    assert "error" in g["compilation"], g
    assert "vpl-jail" not in g["compilation"], g


def test_no_executable():
    g = result(request({"vpl_run.sh": "#!/bin/bash\necho compiling only\n"},
                       execute="vpl_run.sh"))
    assert g["executed"] == 0 and "compiling only" in g["compilation"], g


def test_filestodelete_and_identity():
    g = evaluate({"secret.txt": "teacher data\n", "keep.txt": "x"},
                 {"run": "ls; id -u; echo HOME=$HOME; pwd; cat /proc/self/status | "
                         "grep -E 'CapEff|NoNewPrivs|Seccomp:'"},
                 )
    # vpl_evaluate.sh is listed in filestodelete: gone before the run
    assert "vpl_evaluate.sh" not in g["execution"] and "keep.txt" in g["execution"], g
    uid = int(re.search(r"^(\d+)$", g["execution"], re.M).group(1))
    assert UID_BASE <= uid < UID_BASE + UID_COUNT, g  # its own uid from PRISONER_UID(S)
    assert "CapEff:\t0000000000000000" in g["execution"], g
    assert "NoNewPrivs:\t1" in g["execution"] and "Seccomp:\t2" in g["execution"], g


SLEEPER = ("#!/bin/bash\ncat > vpl_execution <<'EOF'\n#!/bin/bash\n"
           "id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status; "
           "echo out=$(stat -L -c %u:%g /proc/self/fd/1) home=$(stat -c %u:%g .); sleep {t}\n"
           "EOF\nchmod +x vpl_execution\n")


def container_uids(worker):
    """uid -> the containers (of worker) whose processes run as it, from the host's /proc."""
    seen = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/status") as f:
                st = f.read()
            with open(f"/proc/{pid}/cgroup") as f:
                cg = f.read()
        except OSError:
            continue
        m = re.search(r"vplcell-%s-\d+" % worker, cg)
        if not m:
            continue
        ids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", st, re.M).groups()
        for u in set(ids) - {"0"}:  # runc's own init is root until it execs the helper
            seen.setdefault(int(u), set()).add(m.group(0))
    return seen


def task_ids(g):
    """(uid, gid, status Uid/Gid, FIFO owner, work dir owner) as the task's program saw them."""
    ex = g["execution"]
    lines = ex.splitlines()
    uid, gid = int(lines[0]), int(lines[1])
    st = re.findall(r"^(?:Uid|Gid):\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", ex, re.M)
    out = re.search(r"out=(\d+):(\d+) home=(\d+):(\d+)", ex).groups()
    return uid, gid, st, tuple(map(int, out))


def test_uid_per_task():
    """Two tasks at the same time run as two uids of PRISONER_UID..+PRISONER_UIDS-1, gid = uid,
    real = effective = saved = fs; the FIFO the worker made for the program's output and the
    work dir are owned by that uid; on the host, every process of a container runs as its
    container's uid and no uid serves two containers (the pool's included)."""
    ts = [request({"vpl_evaluate.sh": SLEEPER.format(t=3)}) for _ in range(2)]
    deadline = time.time() + 15
    seen = {}
    while time.time() < deadline:
        seen = container_uids(W1)
        # both tasks' programs started: two sleeps, in two containers
        if sum(1 for c in seen.values() if c) >= 2 and len(task_sleepers(W1)) >= 2:
            break
        time.sleep(0.2)
    assert len(task_sleepers(W1)) >= 2, seen
    for uid, cids in seen.items():
        assert UID_BASE <= uid < UID_BASE + UID_COUNT, (uid, cids)
        assert len(cids) == 1, ("one uid, two containers", uid, cids)
    gs = [result(t) for t in ts]
    ids = [task_ids(g) for g in gs]
    for (uid, gid, st, out), g in zip(ids, gs):
        assert uid == gid and UID_BASE <= uid < UID_BASE + UID_COUNT, g
        assert st == [(str(uid),) * 4, (str(uid),) * 4], g
        assert out == (uid, uid, uid, uid), g  # run.out FIFO, work dir
        assert re.search(r"^Groups:\s*$", g["execution"], re.M), g  # no shared group either
    assert ids[0][0] != ids[1][0], ids
    assert ids[0][0] in seen and ids[1][0] in seen, (ids, seen)


def task_sleepers(worker):
    """pids of `sleep` processes in worker's containers."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() != "sleep":
                    continue
            with open(f"/proc/{pid}/cgroup") as f:
                if "vplcell-%s-" % worker in f.read():
                    out.append(pid)
        except OSError:
            continue
    return out


def test_uids_exhausted_then_free_again():
    """A worker with 2 task uids: 3 tasks at once -> one is refused as busy (never a shared
    uid); once the containers are gone the uids serve again, sequentially and at once; its
    uid claims in STATE_DIR/uids are gone at the end."""
    wid = "u%d" % _P
    state = tempfile.mkdtemp(prefix="vplcell-state-uid-")
    base = UID_BASE + UID_COUNT  # next to the main worker's range: no claims are shared
    j2 = Jail(CONTAINERD_SOCKET=ENV["CTR_SOCKET"], CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
              HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
              DEFAULT_IMAGE="vplcell.local/minivpl:latest", WORKER_ID=wid, LOGLEVEL=7,
              POOL_SIZE=0, MAX_TASKS=5, PRISONER_UID=base, PRISONER_UIDS=2)
    try:
        assert "PRISONER_UIDS=2 is below MAX_TASKS + POOL_SIZE" in j2.read_log()
        # The third is refused: at once with 503 once the worker knows its uids are all in
        # use (`available` says busy then), or, in the second before, as a task that ends
        # with the reason. Never a shared uid.
        gs, refused = [], []
        for _ in range(3):
            p = {"files": {"vpl_evaluate.sh": SLEEPER.format(t=2)},
                 "fileencoding": {"vpl_evaluate.sh": 0}, "filestodelete": {},
                 "execute": "vpl_evaluate.sh", "interactive": 0, "lang": "en_US.UTF-8",
                 "maxtime": 20, "maxmemory": 256 << 20, "maxfilesize": 64 << 20,
                 "maxprocesses": 64, "pluginversion": 2026012812}
            r = rpc("request", p, j2)
            if r.status == 503:
                refused.append(r.text())
            else:
                assert r.status == 200, (r.status, r.text())
                gs.append(json.loads(r.body)["result"]["adminticket"])
        gs = [result(t, jail=j2) for t in gs]
        busy = [g["compilation"] for g in gs if "the server is busy" in g["compilation"]]
        ran = [g for g in gs if g["executed"] == 1]
        assert len(busy) + len(refused) == 1 and len(ran) == 2, (gs, refused)
        assert "task uids" in (busy + refused)[0], (busy, refused)
        assert sorted(task_ids(g)[0] for g in ran) == [base, base + 1], ran

        def idle():
            deadline = time.time() + 20
            while time.time() < deadline and [c for c in containers() if f"-{wid}-" in c]:
                time.sleep(0.1)
        idle()
        for _ in range(3):  # sequential: at most one container is still being removed
            g = result(request({"vpl_evaluate.sh": SLEEPER.format(t=0)}, jail=j2), jail=j2)
            assert g["executed"] == 1, g
        idle()
        ts = [request({"vpl_evaluate.sh": SLEEPER.format(t=1)}, jail=j2) for _ in range(2)]
        gs = [result(t, jail=j2) for t in ts]
        assert all(g["executed"] == 1 for g in gs), gs
        assert task_ids(gs[0])[0] != task_ids(gs[1])[0], gs
        idle()
        claims = os.path.join(state, "uids")
        deadline = time.time() + 5
        while time.time() < deadline and os.listdir(claims):
            time.sleep(0.1)
        assert os.listdir(claims) == [], os.listdir(claims)
        log = j2.read_log()
        assert re.search(r"task \d+: container \S+ uid %d" % base, log), log[-3000:]
    finally:
        rc = j2.stop()
    assert rc == 0, rc
    assert not os.path.exists(os.path.join(state, wid)) or not os.listdir(
        os.path.join(state, wid))


def test_uid_claims_outlive_a_crash():
    """A worker killed with its pool running: its uid claims (STATE_DIR/uids) stay while its
    containers may still run, so the worker started after it (another WORKER_ID, as the
    default <hostname>-<pid> gives, same STATE_DIR) refuses a task rather than reuse them; once
    its sweep has removed the dead worker's containers, the next sweep frees the claims and
    tasks run again."""
    wid = "k%d" % _P
    state = tempfile.mkdtemp(prefix="vplcell-state-uid-")
    claims = os.path.join(state, "uids")
    conf = dict(CONTAINERD_SOCKET=ENV["CTR_SOCKET"], CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                DEFAULT_IMAGE="vplcell.local/minivpl:latest", LOGLEVEL=7,
                MAX_TASKS=2, PRISONER_UID=UID_BASE + UID_COUNT + 10, PRISONER_UIDS=2)
    j3 = Jail(POOL_SIZE=2, WORKER_ID=wid, **conf)
    mine = lambda: [c for c in containers() if f"-{wid}-" in c]  # noqa: E731
    deadline = time.time() + 20
    while time.time() < deadline and (len(mine()) < 2 or len(os.listdir(claims)) < 2):
        time.sleep(0.1)
    j3.proc.kill()  # the parser follows (its channel to the keeper closes)
    j3.proc.wait()
    j3.log.close()
    old = mine()
    assert len(old) == 2 and sorted(os.listdir(claims)) == [
        str(UID_BASE + UID_COUNT + 10), str(UID_BASE + UID_COUNT + 11)], (old, claims)
    j4 = Jail(POOL_SIZE=0, WORKER_ID="m%d" % _P, **conf)
    try:
        g = result(request({"vpl_evaluate.sh": SLEEPER.format(t=0)}, jail=j4), jail=j4)
        assert "the server is busy" in g["compilation"] and g["executed"] == 0, g
        deadline = time.time() + 25
        while time.time() < deadline:
            g = result(request({"vpl_evaluate.sh": SLEEPER.format(t=0)}, jail=j4), jail=j4)
            if g["executed"] == 1:
                break
            time.sleep(0.5)
        assert g["executed"] == 1, g
        assert "task uid claims freed" in j4.read_log()
        assert not set(old) & set(containers()), (old, containers())  # the sweep removed them
    finally:
        rc = j4.stop()
    assert rc == 0, rc
    assert os.listdir(claims) == [], os.listdir(claims)


def test_infinite_loop_killed_at_maxtime():
    g = evaluate({"loop.c": "int main(){for(;;);}\n"},
                 {"compile": "gcc -o loop loop.c", "run": "./loop"}, maxtime=3)
    assert "Jail: execution time limit reached." in g["execution"], g


def test_memory_hog_is_out_of_memory():
    g = evaluate({"hog.py": "a=[]\nwhile True: a.append(bytearray(8<<20))\n"},
                 {"run": "python3 hog.py"}, maxmemory=64 << 20)
    assert "out of memory" in g["execution"].lower() or "MemoryError" in g["execution"], g


HOG_C = ("#include <stdlib.h>\n#include <string.h>\n"
         "int main(void){ for(;;){ char *p = malloc(8 << 20); if (p) memset(p, 1, 8 << 20); } }\n")


def test_memory_hog_always_reported():
    """Several hogs at once (a loaded machine): each is told "out of memory", never a bare
    kill signal, even when containerd's OOM event trails the exit or is dropped."""
    tickets = [eval_request({"hog.c": HOG_C}, {"compile": "gcc -o hog hog.c", "run": "./hog"},
                            maxmemory=64 << 20) for _ in range(4)]
    for t in tickets:
        g = result(t)
        assert "Jail: out of memory." in g["execution"], g
        assert "killed by signal" not in g["execution"].lower(), g


def test_fork_bomb_contained():
    g = evaluate({"bomb.sh": "#!/bin/bash\nf(){ f | f & }; f\n"},
                 {"run": "timeout 4 bash bomb.sh; echo survived"}, maxprocesses=32, maxtime=8)
    assert r_available() == "ready"
    assert g["executed"] == 1


def test_file_size_limit():
    g = evaluate({}, {"run": "head -c 1073741824 /dev/zero > big; ls -l big; echo rc=$?"},
                 maxfilesize=1 << 20)
    assert "1048576" in g["execution"] or "File size limit" in g["execution"], g
    assert "1073741824" not in g["execution"].replace("head -c 1073741824", ""), g


def test_output_flood_truncated():
    g = evaluate({}, {"run": "yes flood"}, maxtime=3)
    assert len(g["execution"]) <= (1 << 20) + 200, len(g["execution"])
    assert "Jail: output truncated" in g["execution"], g["execution"][-300:]


def test_detached_child_does_not_hold_result():
    g = evaluate({}, {"run": "(sleep 1000 &) ; echo parent done"}, maxtime=30)
    assert "parent done" in g["execution"], g
    # Had the child held the output open, the task would have ended only at
    # its time limit, with that note.
    assert "time limit" not in g["execution"], g


def host_ip():
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return out[0] if out else None


def test_no_network_to_host():
    ip = host_ip()
    srv = socket.socket()
    srv.bind(("0.0.0.0", 0))
    srv.listen(5)
    port = srv.getsockname()[1]
    srv.settimeout(0.2)
    got = []

    def accept():
        end = time.time() + 15
        while time.time() < end:
            try:
                c, _ = srv.accept()
                got.append(1)
                c.close()
            except socket.timeout:
                pass
    th = threading.Thread(target=accept)
    th.start()
    code = (f"import socket\ntry:\n socket.create_connection(('{ip or '10.0.0.1'}',{port}),"
            f"timeout=3); print('CONNECTED')\nexcept Exception as e: print('blocked', e)\n"
            "try:\n s=socket.socket(socket.AF_UNIX); s.connect('/run/containerd/containerd.sock');"
            " print('CTRD')\nexcept Exception as e: print('no ctrd', e)\n")
    g = evaluate({"n.py": code}, {"run": "python3 n.py; cat /proc/net/dev | tail -n +3 | "
                                         "cut -d: -f1"})
    th.join()
    srv.close()
    assert "CONNECTED" not in g["execution"] and "CTRD" not in g["execution"], g
    assert not got, "the host listener got a connection"
    ifaces = [x.strip() for x in g["execution"].splitlines() if x.strip() in ("lo", "eth0")]
    assert ifaces == ["lo"], g["execution"]


def test_host_canary_and_other_task_invisible():
    canary = tempfile.NamedTemporaryFile(prefix="vplcell-canary-", delete=False)
    canary.write(b"HOSTSECRET")
    canary.close()
    # A second live task plants its own canary.
    other = request({"vpl_evaluate.sh": "#!/bin/bash\necho OTHERSECRET > mine.txt\n"
                     "cat > vpl_execution <<'EOF'\n#!/bin/bash\nsleep 6\nEOF\n"
                     "chmod +x vpl_execution\n"})
    time.sleep(1.5)
    g = evaluate({}, {"run": f"cat {canary.name}; cat /proc/1/environ | tr '\\0' ' '; "
                             "grep -rs OTHER[S]ECRET /home /tmp /run /var /dev/shm 2>/dev/null | head -3; echo scanned"})
    os.unlink(canary.name)
    result(other)
    assert "HOSTSECRET" not in g["execution"], g
    assert "OTHERSECRET" not in g["execution"] and "scanned" in g["execution"], g


def test_symlink_to_host_path():
    g = evaluate({}, {"run": "ln -s /etc/shadow s; cat s; ln -sf / root; ls root/ | head -3;"
                             " echo x > /etc/passwd; echo done"})
    assert "root:" not in g["execution"] or "Permission denied" in g["execution"], g
    assert "Read-only file system" in g["execution"] or "Permission denied" in g["execution"], g


def test_helper_channels_unreachable():
    """The program cannot speak for the helper nor write into its own
    result behind the evaluator's back: the FIFOs have no names any more,
    and PID 1 is not dumpable."""
    g = evaluate({}, {"run": "ls -a /.vplcell/io; "
                             "echo 'X run 99 99 99 1' > /.vplcell/io/ctl; "
                             "printf 'Grade :=>>%d\\n' 99 > /.vplcell/io/run.out; "
                             "printf 'Grade :=>>%d\\n' 98 > /proc/1/fd/1; echo done"})
    assert "done" in g["execution"], g
    assert "Grade :=>>99" not in g["execution"] and "Grade :=>>98" not in g["execution"], g
    listing = g["execution"].split("done")[0]
    assert "ctl" not in listing.split() and "run.out" not in listing.split(), g


def test_kill_all_and_privileges():
    g = evaluate({"p.py": "import os\ntry:\n os.setuid(0); print('ROOT')\nexcept Exception as e:"
                          " print('setuid refused', e)\n"},
                 {"run": "python3 p.py; mount -t tmpfs x /tmp 2>&1 | head -1; "
                         "unshare -r true 2>&1 | head -1; kill -9 -1; echo after"},
                 )
    assert "ROOT" not in g["execution"] and "setuid refused" in g["execution"], g
    assert r_available() == "ready"


def test_parallel_cpu_spinners_held_to_quota():
    code = ("import time,os\nt=time.time()\nwhile time.time()-t<3: pass\n"
            "c=os.times(); print('RATIO %.2f' % ((c.user+c.system)/(time.time()-t)))\n")
    ts = [request({"s.py": code, "vpl_evaluate.sh":
                   "#!/bin/bash\ncat > vpl_execution <<'EOF'\n#!/bin/bash\npython3 s.py\nEOF\n"
                   "chmod +x vpl_execution\n"}) for _ in range(2)]
    ratios = []
    for t in ts:
        g = result(t)
        line = [x for x in g["execution"].splitlines() if x.startswith("RATIO")]
        assert line, g
        ratios.append(float(line[0].split()[1]))
    # TASK_CPU_PERCENT=50 in this suite: each task gets half a core.
    assert all(r < 0.75 for r in ratios), ratios


def test_stop_kills_at_once():
    t = request({"vpl_evaluate.sh": "#!/bin/bash\ncat > vpl_execution <<'EOF'\n#!/bin/bash\n"
                 "sleep 1000\nEOF\nchmod +x vpl_execution\n"}, maxtime=600)
    time.sleep(2)
    mine = task_container(t)
    assert mine in containers(), (mine, containers())
    r = rpc("stop", {"adminticket": t, "pluginversion": 1})
    assert json.loads(r.body)["result"]["stop"] == 1
    deadline = time.time() + 20
    while time.time() < deadline and mine in containers():
        time.sleep(0.2)
    assert mine not in containers(), containers()


def task_container(ticket):
    """The container of the newest task, from the worker's log."""
    for line in reversed(J.read_log().splitlines()):
        m = re.search(r"task \d+: container (\S+) .*image ", line)
        if m:
            return m.group(1)
    raise AssertionError("no container in the log")


def cgroup_memory_limit(cid):
    for path in (f"/sys/fs/cgroup/memory/vplcell/{cid}/memory.limit_in_bytes",
                 f"/sys/fs/cgroup/vplcell/{cid}/memory.max"):
        if os.path.exists(path):
            with open(path) as f:
                return f.read().strip()
    return None


def test_pool_serves_tasks():
    """With POOL_SIZE=2 a task takes a started container, gets its own
    limits by an update (read from the host's cgroup), its VPL_LANG, and
    the pool is refilled."""
    time.sleep(3)
    t = request({"vpl_evaluate.sh": "#!/bin/bash\ncat > vpl_execution <<'EOF'\n#!/bin/bash\n"
                 "echo lang=$VPL_LANG; sleep 3\nEOF\nchmod +x vpl_execution\n"},
                maxmemory=96 << 20, maxtime=30)
    time.sleep(1.5)
    log = J.read_log()
    assert "from the pool" in log, "no task was served from the pool"
    cid = task_container(t)
    limit = cgroup_memory_limit(cid)
    g = result(t)
    assert limit == str(96 << 20), (cid, limit)
    assert "lang=en_US.UTF-8" in g["execution"], g
    # Refilled: two containers again, not counting the task's own (which
    # may still be being removed). One snapshot of the list per check.
    deadline = time.time() + 20
    pool = []
    while time.time() < deadline:
        pool = [c for c in containers() if c != cid]
        if len(pool) >= 2:
            break
        time.sleep(0.2)
    assert len(pool) >= 2, pool


def test_containerd_frozen_does_not_block_others():
    with open(os.path.join(CTD_DIR, "containerd.pid")) as f:
        pid = int(f.read().strip())
    time.sleep(3)  # the pool is full again
    os.kill(pid, 19)  # SIGSTOP: containerd stops answering, sockets stay open
    try:
        # The pool (2) serves two tasks without containerd at all; the third
        # needs a new container, so its calls hang until their deadline.
        ts = [request({"vpl_evaluate.sh": "#!/bin/bash\necho compiled\n"}) for _ in range(3)]
        # Ordering, not timing: each answer came while a task's containerd
        # call was still hanging (that task still running).
        for _ in range(5):
            assert http(J.port, "GET", "/OK").status == 200
            assert r_available() in ("ready", "busy")
            running = [t for t in ts if "Task still running" in rpc(
                "getresult", {"adminticket": t, "pluginversion": 1}).text()]
            assert running, "no task was waiting on containerd"
            ts_left = running
            time.sleep(0.2)
        g = result(ts_left[0], timeout=40)  # the call deadline ends it, clearly
        assert "vpl-jail:" in g["compilation"] and g["executed"] == 0, g
    finally:
        os.kill(pid, 18)  # SIGCONT
    # containerd back: work goes on.
    g = evaluate({"hello.c": HELLO_C}, {"compile": "gcc -o hello hello.c", "run": "./hello"})
    assert "Hello world" in g["execution"], g


def test_orphans_removed_only_when_their_worker_is_gone():
    """The sweeper removes a container with this worker's label that no task
    owns (what a call lost in a containerd stall leaves behind), and one of a
    worker that is gone (its lock file in STATE_DIR not held); it leaves a
    live sibling's (lock held) and a worker's it cannot judge (no lock)."""
    import fcntl
    base = ["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"], "containers", "create"]
    img = "vplcell.local/minivpl:latest"
    state = os.path.dirname(J.state_worker_dirs())
    open(os.path.join(state, W9 + ".lock"), "w").close()  # a worker that crashed
    live = open(os.path.join(state, W3 + ".lock"), "w")
    fcntl.flock(live, fcntl.LOCK_EX)  # a live sibling
    try:
        for owner, cid in ((W1, f"vplcell-{W1}-orphan"), (W9, f"vplcell-{W9}-left"),
                           (W3, f"vplcell-{W3}-alive"), (W2, f"vplcell-{W2}-unknown")):
            subprocess.run(base + ["--label", f"vplcell.worker={owner}", img, cid], check=True)
        # an orphan whose task still runs: killed, waited for, its task deleted before the
        # container (else a stopped task and its shim stay where no sweep can see them)
        subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"], "run", "-d",
                        "--label", f"vplcell.worker={W1}", img, f"vplcell-{W1}-running",
                        "sleep", "600"], check=True, capture_output=True)
        gone = {f"vplcell-{W1}-orphan", f"vplcell-{W9}-left", f"vplcell-{W1}-running"}
        deadline = time.time() + 30
        while time.time() < deadline and gone & set(containers()):
            time.sleep(0.2)
        left = containers()
        tasks_left = subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"],
                                     "tasks", "ls", "-q"], capture_output=True, text=True).stdout
    finally:
        for cid in (f"vplcell-{W3}-alive", f"vplcell-{W2}-unknown", f"vplcell-{W1}-orphan",
                    f"vplcell-{W9}-left", f"vplcell-{W1}-running"):
            for what in (["tasks", "kill", "-s", "SIGKILL", cid], ["tasks", "rm", "-f", cid],
                         ["containers", "rm", cid]):
                subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"]] +
                               what, capture_output=True)
        live.close()
    assert f"vplcell-{W1}-orphan" not in left and f"vplcell-{W9}-left" not in left, left
    assert f"vplcell-{W1}-running" not in left, left
    assert f"vplcell-{W1}-running" not in tasks_left.split(), tasks_left
    assert f"vplcell-{W3}-alive" in left and f"vplcell-{W2}-unknown" in left, left
    log = J.read_log()
    assert f"removed orphan container vplcell-{W1}-orphan" in log
    assert f"belongs to worker {W9}, which is gone" in log


def test_second_worker_with_same_id_refused():
    state = os.path.dirname(J.state_worker_dirs())
    try:
        other = Jail(CONTAINERD_SOCKET=ENV["CTR_SOCKET"], CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                     HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                     DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                     WORKER_ID=W1, POOL_SIZE=0)
    except RuntimeError as e:
        assert f"WORKER_ID {W1}" in str(e) and "another worker" in str(e), str(e)
        return
    other.stop()
    raise AssertionError("a second worker with the same WORKER_ID started")


def r_available():
    r = rpc("available", {"maxmemory": 1})
    return json.loads(r.body)["result"]["status"]


def containers():
    out = subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"],
                          "containers", "ls", "-q"], capture_output=True, text=True).stdout
    return out.split()


def test_nothing_left_behind():
    """After the worker stopped: it removed its pool and every task's
    container on the way out."""
    deadline = time.time() + 30
    while time.time() < deadline and (containers() or (os.path.exists(J.state_worker_dirs())
                                                       and os.listdir(J.state_worker_dirs()))):
        time.sleep(0.2)
    assert not containers(), containers()
    snaps = subprocess.run(["ctr", "-a", ENV["CTR_SOCKET"], "-n", ENV["CTR_NAMESPACE"],
                            "snapshots", "ls"], capture_output=True, text=True).stdout
    active = [ln for ln in snaps.splitlines()[1:] if "Active" in ln]
    assert not active, snaps
    wdir = J.state_worker_dirs()
    assert not os.path.exists(wdir) or not os.listdir(wdir), os.listdir(wdir)
    with open("/proc/self/mountinfo") as f:
        mi = f.read()
    assert "vplcell-" + ENV["CTR_NAMESPACE"] not in mi
    cg = [p for p in glob.glob("/sys/fs/cgroup/*/vplcell/*") + glob.glob(
        "/sys/fs/cgroup/vplcell/*") if os.path.isdir(p) and f"vplcell-{W1}-" in p]  # ours only
    assert not cg, cg


def main():
    global J
    start_containerd()
    state = tempfile.mkdtemp(prefix="vplcell-state-")
    try:
        J = Jail(CONTAINERD_SOCKET=ENV["CTR_SOCKET"], CONTAINERD_NAMESPACE=ENV["CTR_NAMESPACE"],
                 HELPER_PATH=os.path.join(ROOT, BUILD, "vplhelper"), STATE_DIR=state,
                 DEFAULT_IMAGE="vplcell.local/minivpl:latest", WORKER_ID=W1,
                 TASK_CPU_PERCENT=50, MAXTIME=60, LOGLEVEL=7, POOL_SIZE=2,
                 PRISONER_UID=UID_BASE, PRISONER_UIDS=UID_COUNT)
        J.state_worker_dirs = lambda: os.path.join(state, W1)
        for name, fn in list(globals().items()):
            if name.startswith("test_") and callable(fn) and name != "test_nothing_left_behind":
                S.run(fn)
        rc = J.stop()
        S.check(rc == 0, f"worker exits cleanly (rc={rc})")
        S.run(test_nothing_left_behind)
        if S.failed:
            print(J.read_log()[-6000:])
            for lg in glob.glob(os.path.join(CTD_DIR, "*.log")):
                with open(lg, errors="replace") as f:
                    print("containerd log:", "".join(f.readlines()[-40:]))
    finally:
        if J and J.proc.poll() is None:
            J.proc.kill()
        subprocess.run([f"{ROOT}/scripts/containerd-test.sh", "stop", CTD_DIR])
    return S.finish()


if __name__ == "__main__":
    sys.exit(main())
