"""The end-to-end setup every interactive suite shares: a private containerd
with the minivpl image imported, one worker, the suite's test_* functions
(those whose names contain an argument of the command line, when given), the
worker stopped (rc 0 checked) and containerd stopped on every path."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "protocol"))
from harness import Jail, containerd_start, containerd_stop  # noqa: E402


def run_suite(g, S, prefix, after_stop=None, **conf):
    """g: the suite module's globals(), holding CTD_DIR, BUILD and ENV; J and
    STATE are set in it. prefix: first letter of this suite's worker id (ids
    carry the pid: suites run side by side). after_stop(J) adds checks once the
    worker is gone. conf overrides the worker's configuration."""
    ctd, env = g["CTD_DIR"], g["ENV"]
    env.update(containerd_start(ctd))
    tar = subprocess.run([f"{ROOT}/images/minivpl/build.sh"], check=True, capture_output=True,
                         text=True).stdout.strip().splitlines()[-1]
    subprocess.run(["ctr", "-a", env["CTR_SOCKET"], "-n", env["CTR_NAMESPACE"], "images",
                    "import", tar], check=True, capture_output=True)
    state = g["STATE"] = tempfile.mkdtemp(prefix="vplcell-state-")
    J = None
    try:
        cfg = dict(CONTAINERD_SOCKET=env["CTR_SOCKET"], CONTAINERD_NAMESPACE=env["CTR_NAMESPACE"],
                   HELPER_PATH=os.path.join(ROOT, g["BUILD"], "vplhelper"), STATE_DIR=state,
                   DEFAULT_IMAGE="vplcell.local/minivpl:latest",
                   WORKER_ID="%s%d" % (prefix, os.getpid() % 100000), MAXTIME=60, LOGLEVEL=7,
                   POOL_SIZE=1)
        cfg.update(conf)
        J = g["J"] = Jail(**cfg)
        print(f"worker log: {J.logpath}", flush=True)
        only = sys.argv[1:]
        for name, fn in list(g.items()):
            if name.startswith("test_") and callable(fn) and (
                    not only or any(o in name for o in only)):
                S.run(fn)
        rc = J.stop()
        S.check(rc == 0, f"worker exits cleanly (rc={rc})")
        if after_stop:
            after_stop(J)
        if S.failed:
            print(J.read_log()[-8000:])
    finally:
        if J and J.proc.poll() is None:
            J.proc.kill()
        containerd_stop(ctd)
    return S.finish()
