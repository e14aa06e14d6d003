"""Two builds of genauth_c against each other, and the C loop, on one nginx:
sequential calls, in alternation (a shuffled order each round, a fresh process
each), so that a slower machine slows all three alike. For telling whether a
change made calls slower when `make bench`'s ratios move between runs.

    bench/compare_builds.py OLD_PYTHON NEW_PYTHON [ROUNDS] [CALLS]

Each PYTHON is an interpreter whose environment has the build to measure
installed (a venv). Prints the median µs per call (wall and CPU) of each, and
the median over rounds of NEW's time over OLD's. Writes nothing."""
import os
import statistics
import sys

import run


def main(argv):
    if len(argv) < 3:
        raise SystemExit(__doc__)
    old, new = argv[1], argv[2]
    rounds = int(argv[3]) if len(argv) > 3 else 11
    calls = argv[4] if len(argv) > 4 else "8000"
    token = run.make_token()
    ng = run.Nginx(token)
    ng.start()
    url = ng.host + "/api/v3/trigger-webhook"
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_USERPOOL_ID=run.USERPOOL_ID)
    workers = os.path.join(run.HERE, "workers.py")
    argvs = {"old": [old, workers, "genauth_c", "seq", calls, ng.host],
             "new": [new, workers, "genauth_c", "seq", calls, ng.host],
             "C loop": [os.path.join(run.HERE, "build", "c_loop"), "seq", calls,
                        url, token, run.USERPOOL_ID]}
    wall = {k: [] for k in argvs}
    cpu = {k: [] for k in argvs}
    try:
        for k, out in run.shuffled_rounds(argvs, rounds, env):
            wall[k].append(out["elapsed"] / out["calls"] * 1e6)
            cpu[k].append(out.get("cpu_s", 0) / out["calls"] * 1e6)
    finally:
        ng.stop()
    for k in argvs:
        print("%-6s %.1f µs per call (%.1f–%.1f), CPU %.1f µs" % (
            k, statistics.median(wall[k]), min(wall[k]), max(wall[k]),
            statistics.median(cpu[k])))
    print("new/old, median over rounds: %.3f" % statistics.median(
        [n / o for n, o in zip(wall["new"], wall["old"])]))


if __name__ == "__main__":
    main(sys.argv)
