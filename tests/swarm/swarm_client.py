#!/usr/bin/env python3
"""Extra client checks for tests/swarm/test_swarm.sh, on top of tests/e2e/e2e_client.py.

    swarm_client.py URL CAFILE long SECONDS   submits a task that sleeps SECONDS, prints its adminticket
    swarm_client.py URL CAFILE evaluate N     N evaluations (C hello world) in a row, all must pass
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import e2e_client as e  # noqa: E402


def main():
    s = e.Server(sys.argv[1], sys.argv[2])
    what, arg = sys.argv[3], int(sys.argv[4])
    if what == "long":
        r = s.rpc("request", e.task({}, f"sleep {arg}; echo done", maxtime=arg + 30))
        print(r["adminticket"])
    elif what == "evaluate":
        for _ in range(arg):
            e.check_evaluate(s)
    else:
        print("unknown check " + what)
        return 2
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as ex:
        print(f"{sys.argv[3]}: {type(ex).__name__}: {ex}")
        sys.exit(1)
