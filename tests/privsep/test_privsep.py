#!/usr/bin/env python3
"""Privilege separation of the worker (issue 9, docs/security.md): the process that parses the
network runs unprivileged, chrooted, in its own network namespace, under seccomp, without the
containerd socket; the keeper owns containerd. Checked against a real containerd + runc:

- from outside: the two processes, the parser's uid, namespace, root, seccomp, capabilities;
- from inside: build/tests/vpl-jail-probe runs code in the parser right after the drop (an
  attacker who took the parser over) and reports what it reaches: host files, containerd,
  loopback services, abstract sockets, other tasks' processes, the keeper, new namespaces,
  mounts, fork. Every attempt must fail;
- a parser that sends the keeper garbage is killed, the keeper removes its containers and
  exits non-zero; the rest of the host is untouched;
- the keeper does what the parser cannot: SIGHUP's certificate reload (read by the keeper,
  installed in the parser from memory), DRAIN_FILE, SIGTERM.
"""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
import harness  # noqa
from harness import Jail, Suite, containerd_start, containerd_stop, http, make_cert  # noqa

S = Suite("privsep")
BUILD = os.environ.get("VPL_BUILD", "build")
PROBE = os.path.join(ROOT, BUILD, "tests", "vpl-jail-probe")
CTD_DIR = tempfile.mkdtemp(prefix="vplcell-ctd-")
ENV = {}
_P = os.getpid() % 100000
PARSER_UID = 99999
UID_BASE = 70000 + (_P % 19) * 1000


def sh(cmd):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True)


def sandbox_conf(worker, uid_base):
    return {"CONTAINERD_SOCKET": ENV["CTR_SOCKET"], "CONTAINERD_NAMESPACE": ENV["CTR_NAMESPACE"],
            "HELPER_PATH": os.path.join(ROOT, BUILD, "vplhelper"), "WORKER_ID": worker,
            "STATE_DIR": tempfile.mkdtemp(prefix="vplcell-state-"), "POOL_SIZE": 1,
            "PRISONER_UID": uid_base, "PRISONER_UIDS": 100, "DEFAULT_IMAGE": "vplcell.local/minivpl:latest",
            "MAX_TASKS": 8}


def rpc(jail, method, params):
    body = json.dumps({"method": method, "params": params, "id": "1"}).encode()
    return http(jail.port, "POST", jail.urlpath, body)


def request(jail, files, execute="vpl_run.sh", interactive=0):
    p = {"files": files, "fileencoding": {k: 0 for k in files}, "filestodelete": {},
         "execute": execute, "interactive": interactive, "lang": "en_US.UTF-8", "maxtime": 30,
         "maxmemory": 256 << 20, "maxfilesize": 64 << 20, "maxprocesses": 64,
         "pluginversion": 2026012812}
    r = rpc(jail, "request", p)
    assert r.status == 200, (r.status, r.text())
    return json.loads(r.body)["result"]["adminticket"]


def result(jail, ticket, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = rpc(jail, "getresult", {"adminticket": ticket, "pluginversion": 2026012812})
        if r.status == 200:
            return json.loads(r.body)["result"]
        assert "Task still running" in r.text(), (r.status, r.text())
        time.sleep(0.1)
    raise AssertionError("task did not finish")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def pids_of_uid_range(lo, hi):
    found = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                uid = int(status(p)["Uid"].split()[0])
            except (OSError, KeyError):
                continue
            if lo <= uid < hi:
                found.append(int(p))
    return found


def wait_for(cond, timeout=30, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    return None


def probe_lines(jail):
    return dict(re.findall(r"^PROBE (\S+) (.*)$", jail.read_log(), re.M))


def server_cert_serial(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            der = t.getpeercert(binary_form=True)
    return sh_input(["openssl", "x509", "-inform", "DER", "-noout", "-serial"], der)


def sh_input(argv, data):
    return subprocess.run(argv, input=data, capture_output=True, check=True).stdout.strip()


def main():
    ENV.update(containerd_start(CTD_DIR))
    tar = sh(f"{ROOT}/images/minivpl/build.sh").stdout.strip().splitlines()[-1]
    sh(f"ctr -a {ENV['CTR_SOCKET']} -n {ENV['CTR_NAMESPACE']} images import {tar}")
    victim = Jail(**sandbox_conf("pv%d" % _P, UID_BASE))
    probe = None
    try:
        # A victim: another worker's task, running as its own uid.
        t = request(victim, {"vpl_run.sh": "#!/bin/bash\ncat > vpl_execution <<'EOF'\n"
                             "#!/bin/bash\nsleep 60\nEOF\nchmod +x vpl_execution\n"},
                     interactive=1)
        task_pids = wait_for(lambda: pids_of_uid_range(UID_BASE, UID_BASE + 100), 30)
        S.check(bool(task_pids), f"a victim task runs as a prisoner uid ({task_pids})")

        # From outside: two processes, the parser dropped.
        kids = children(victim.proc.pid)
        S.check(len(kids) == 1, f"the worker is two processes: keeper {victim.proc.pid}, "
                f"parser {kids}")
        parser = kids[0] if kids else None
        st = status(parser) if parser else {}
        S.check(st.get("Uid", "").split() == [str(PARSER_UID)] * 4,
                f"the parser runs as uid {PARSER_UID} (real, effective, saved, fs): "
                f"{st.get('Uid')}")
        S.check(st.get("CapEff") == "0000000000000000" and st.get("CapPrm") == "0" * 16,
                f"the parser has no capabilities ({st.get('CapEff')})")
        S.check(st.get("NoNewPrivs") == "1" and st.get("Seccomp") == "2",
                "the parser has no_new_privs and a seccomp filter")
        S.check(status(victim.proc.pid)["Uid"].split()[0] == "0", "the keeper stays root")
        if parser:
            S.check(os.readlink(f"/proc/{parser}/ns/net") != os.readlink("/proc/self/ns/net"),
                    "the parser has its own network namespace")
            root = os.readlink(f"/proc/{parser}/root")
            S.check(root.endswith("/parser-root"), f"the parser is chrooted ({root})")
            S.check(os.listdir(f"/proc/{parser}/root") == [], "its root is empty")
            # What it may hold open: its log (stdout/stderr, inherited), /dev/null, lws's
            # /dev/urandom; sockets, pipes, its epoll and timer fds. No other file.
            fds = [os.readlink(f"/proc/{parser}/fd/{x}") for x in os.listdir(f"/proc/{parser}/fd")]
            files = [x for x in fds if x.startswith("/") and x not in
                     (victim.logpath, "/dev/null", "/dev/urandom")]
            S.check(not files, f"the parser holds no host file ({files})")
        # The worker still works through the keeper.
        r = result(victim, request(victim, {"vpl_run.sh": "#!/bin/bash\necho privsep ok\n"}))
        S.check("privsep ok" in r["compilation"], "a task runs through parser and keeper")

        # From inside: the probe.
        tcp = socket.socket()
        tcp.bind(("127.0.0.1", 0))
        tcp.listen()
        abstract = socket.socket(socket.AF_UNIX)
        abs_name = "vplcell-probe-%d" % os.getpid()
        abstract.bind("\0" + abs_name)
        abstract.listen()
        keeper_v, parser_v = victim.proc.pid, parser or 1
        with open(os.path.join(CTD_DIR, "containerd.pid")) as f:
            ctd_pid = int(f.read())
        pids = sorted(set(task_pids or []) | {keeper_v, parser_v, ctd_pid, os.getpid()})
        os.environ.update({"VPLCELL_PROBE_FD": "2", "VPLCELL_PROBE_TCP": str(tcp.getsockname()[1]),
                           "VPLCELL_PROBE_ABSTRACT": abs_name,
                           "VPLCELL_PROBE_PIDS": ",".join(map(str, pids))})
        harness.BINARY = PROBE
        probe = Jail(**sandbox_conf("pp%d" % _P, UID_BASE + 200))
        got = wait_for(lambda: "done" in probe_lines(probe) and probe_lines(probe), 60)
        S.check(bool(got), "the probe ran in the parser")
        got = got or {}
        S.check(got.get("uid") == f"{PARSER_UID} {PARSER_UID}", f"probe: uid {got.get('uid')}")
        S.check(got.get("groups") == "0", f"probe: no supplementary groups ({got.get('groups')})")
        S.check(got.get("caps") == "0 0 0 0", f"probe: no capabilities ({got.get('caps')})")
        for name in ("open_etc_passwd", "open_etc_shadow", "open_proc_self", "open_state_dir",
                     "open_helper"):
            S.check(got.get(name) == "ENOENT", f"probe: {name} fails ({got.get(name)})")
        S.check(got.get("root_entries") == "0", "probe: the root it sees is empty")
        S.check(got.get("mkdir_in_root") in ("EACCES", "EROFS"),
                f"probe: cannot write its root ({got.get('mkdir_in_root')})")
        S.check(got.get("connect_containerd") == "ENOENT",
                f"probe: containerd's socket is out of reach ({got.get('connect_containerd')})")
        S.check(got.get("connect_abstract") == "ECONNREFUSED",
                f"probe: a host abstract socket is out of reach ({got.get('connect_abstract')})")
        S.check(got.get("connect_tcp_loopback") in ("ENETUNREACH", "ECONNREFUSED"),
                f"probe: a host loopback port is out of reach ({got.get('connect_tcp_loopback')})")
        S.check(got.get("pid") == "1", f"probe: a pid namespace of its own ({got.get('pid')})")
        for p in pids:
            for what in ("kill", "ptrace"):
                v = got.get(f"{what}_pid_{p}")
                S.check(v in ("EPERM", "ESRCH"), f"probe: {what} pid {p} denied ({v})")
        S.check(got.get("signalable_others") == "0",
                f"probe: no other process on the host can be signalled "
                f"({got.get('signalable_others')})")
        for name in ("setuid_0", "unshare_user", "unshare_mount", "chroot", "mount_tmpfs"):
            S.check(got.get(name) == "EPERM", f"probe: {name} denied ({got.get(name)})")
        S.check(got.get("fork") == "EAGAIN", f"probe: cannot start a process ({got.get('fork')})")
        # and the probed worker serves as ever
        r = result(probe, request(probe, {"vpl_run.sh": "#!/bin/bash\necho after probe\n"}))
        S.check("after probe" in r["compilation"], "the probed worker still runs tasks")

        # The keeper's jobs: certificate reload, drain file, SIGTERM.
        before = server_cert_serial(probe.sport)
        make_cert(probe.dir)  # new key and certificate at the same paths
        probe.proc.send_signal(signal.SIGHUP)
        after = wait_for(lambda: (lambda s: s if s != before else None)(
            server_cert_serial(probe.sport)), 15)
        S.check(after is not None, f"SIGHUP: the new certificate is served ({before} -> {after})")
        S.check("SIGHUP: certificate reloaded" in probe.read_log(), "SIGHUP logged")
        open(probe.drain, "w").close()
        off = wait_for(lambda: b'"offline"' in rpc(probe, "available",
                                                    {"maxmemory": 1 << 20}).body, 10)
        S.check(bool(off), "DRAIN_FILE seen through the keeper: available says offline")
        os.unlink(probe.drain)

        # A hostile parser: garbage to the keeper. The keeper kills it, cleans up, exits 1.
        os.environ["VPLCELL_PROBE_GARBAGE"] = "1"
        os.environ.pop("VPLCELL_PROBE_PIDS", None)
        hostile = Jail(**sandbox_conf("ph%d" % _P, UID_BASE + 400))
        rc = None
        try:
            rc = hostile.proc.wait(30)
        except subprocess.TimeoutExpired:
            pass
        S.check(rc == 1, f"a parser sending garbage: the keeper stops with status 1 ({rc})")
        S.check("privsep: the parser sent" in hostile.read_log(), "and says why")
        left = sh(f"ctr -a {ENV['CTR_SOCKET']} -n {ENV['CTR_NAMESPACE']} containers ls -q").stdout
        S.check(not any(x.startswith("vplcell-ph%d" % _P) for x in left.split()),
                "and leaves no container behind")
        S.check(victim.proc.poll() is None and
                rpc(victim, "available", {"maxmemory": 1 << 20}).status == 200,
                "the other workers keep serving")
        hostile.stop()
        os.environ.pop("VPLCELL_PROBE_GARBAGE", None)

        # A worker killed and started again (same ports, same STATE_DIR): the tasks it lost
        # are answered as lost, once; unknown tickets stay unknown.
        lost = request(probe, {"vpl_run.sh": "#!/bin/bash\nsleep 60\n"})
        time.sleep(1)
        pp = children(probe.proc.pid)
        probe.proc.kill()
        probe.proc.wait()
        S.check(wait_for(lambda: all(not os.path.exists(f"/proc/{p}") for p in pp), 10),
                "SIGKILL of the keeper: the parser goes too (the channel closed)")
        os.environ.pop("VPLCELL_PROBE_FD", None)
        probe.proc = subprocess.Popen([PROBE, "-f", probe.conf], stdout=probe.log,
                                      stderr=subprocess.STDOUT)
        def answers():
            try:
                return rpc(probe, "available", {"maxmemory": 1 << 20}).status == 200
            except OSError:
                return False
        up = wait_for(answers, 30, 0.2)
        S.check(bool(up), "the worker starts again")
        r = rpc(probe, "getresult", {"adminticket": lost, "pluginversion": 2026012812})
        body = r.body.decode("utf-8", "replace")
        S.check(r.status == 200 and "restarted while this task ran" in body,
                f"a task lost in the restart: getresult says so ({r.status} {body[:160]})")
        r = rpc(probe, "getresult", {"adminticket": lost, "pluginversion": 2026012812})
        S.check(r.status == 500 and "Ticket not found" in r.text(),
                f"said once; then an unknown ticket ({r.status})")
        r = rpc(probe, "getresult", {"adminticket": "1" * 39, "pluginversion": 2026012812})
        S.check(r.status == 500 and "Ticket not found" in r.text(),
                "a ticket this worker never gave stays unknown")
        log = probe.read_log()
        S.check(lost not in log, "the lost ticket is not in the log")

        # SIGTERM goes through the keeper: both processes end, nothing left.
        rpc(victim, "stop", {"adminticket": t, "pluginversion": 2026012812})
        pp = children(probe.proc.pid)
        rc = probe.stop()
        S.check(rc == 0, f"SIGTERM: the worker exits 0 ({rc})")
        S.check(all(not os.path.exists(f"/proc/{p}") for p in pp), "the parser is gone too")
        probe = None
    finally:
        if probe:
            probe.stop()
        victim.stop()
        left = sh(f"ctr -a {ENV['CTR_SOCKET']} -n {ENV['CTR_NAMESPACE']} containers ls -q").stdout
        S.check(not left.strip(), f"no container left ({left.split()})")
        containerd_stop(CTD_DIR)


if __name__ == "__main__":
    S.run(main)
    S.finish()
