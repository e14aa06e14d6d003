"""Where a fresh client's first call spends its time: the C loop's fresh
handle and genauth_c's fresh client, split at the socket-level steps both
take (through libcurl), in a process that has made calls (the `fresh client
in a running process` figure of make bench).

    bench/.venv/bin/python bench/first_call_phases.py [ROUNDS] [CALLS]

Each round runs `c_loop seq CALLS` and `workers.py genauth_c seq CALLS` (in
a shuffled order) on one nginx, under LD_PRELOAD=phases.so, which records
the moment of each close, socketpair, socket, connect, send and recv. The
fresh client's steps are found after the last socketpair (libcurl makes one
for each multi handle: curl_easy_perform's in the C loop, the connection's
own in genauth_c); the first phase starts, and the last ends, where the
runner's own clock says (both print when the fresh client began, on
CLOCK_MONOTONIC, the clock phases.so reads). Prints the median of each phase in µs. Writes nothing;
run it on an idle machine, as make bench."""
import os
import statistics
import subprocess
import sys
import tempfile

import run

PHASES = (
    ("making the client, up to libcurl's multi handle", "start", "socketpair"),
    ("the multi handle made, the connection set up", "socketpair", "socket"),
    ("TCP connect", "socket", "connected"),
    ("the token request written", "connected", "token_sent"),
    ("waiting for the token", "token_sent", "token_read"),
    ("the token read, the call's request built", "token_read", "call_sent"),
    ("waiting for the answer", "call_sent", "answer_read"),
    ("the answer read, the result made", "answer_read", "end"),
)


def marks(path, fresh_at, fresh_s):
    """The moments (seconds) of the fresh client's steps in one events file;
    it began at fresh_at and took fresh_s, by the runner's clock."""
    ev = []
    with open(path) as f:
        for line in f:
            t, kind, fd, result = line.split()
            ev.append((float(t), kind, int(fd), int(result)))
    ev.sort()
    pairs = [i for i, e in enumerate(ev) if e[1] == "socketpair"]
    if not pairs or ev[pairs[-1]][0] < fresh_at:
        raise RuntimeError("%s: no multi handle made for the fresh client" % path)
    new = pairs[-1]
    m = {"start": fresh_at, "socketpair": ev[new][0]}
    sends = recvs = 0
    for t, kind, fd, result in ev[new:]:
        if kind == "socket" and "socket" not in m:
            m["socket"] = t
        elif kind == "connect" and "connected" not in m:
            m["connected"] = t
        elif kind == "send":
            sends += 1
            m.setdefault("token_sent" if sends == 1 else "call_sent", t)
        elif kind == "recv" and result > 0:
            recvs += 1
            m.setdefault("token_read" if recvs == 1 else "answer_read", t)
    m["end"] = fresh_at + fresh_s
    missing = [name for _, a, b in PHASES for name in (a, b) if name not in m]
    if missing:
        raise RuntimeError("%s: no %s" % (path, ", ".join(missing)))
    return m


def main(argv):
    rounds = int(argv[1]) if len(argv) > 1 else 15
    calls = argv[2] if len(argv) > 2 else "8000"
    run.build_c_loop()
    lib = os.path.join(run.BUILD, "phases.so")
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-o", lib,
                    os.path.join(run.HERE, "phases.c"), "-ldl"], check=True)
    token = run.make_token()
    ng = run.Nginx(token)
    ng.start()
    url = ng.host + "/api/v3/trigger-webhook"
    argvs = {"C loop": [run.C_LOOP, "seq", calls, url, token, run.USERPOOL_ID],
             "genauth_c": [sys.executable, run.WORKERS, "genauth_c", "seq", calls,
                           ng.host]}
    spans = {k: {name: [] for name, _, _ in PHASES} for k in argvs}
    total = {k: [] for k in argvs}
    out = tempfile.mktemp(prefix="genauth-phases-")
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_USERPOOL_ID=run.USERPOOL_ID,
               LD_PRELOAD=lib, BENCH_PHASES_OUT=out)
    try:
        for k, o in run.shuffled_rounds(argvs, rounds, env):
            m = marks(out, o["fresh_client_at"], o["fresh_client_s"])
            total[k].append(o["fresh_client_s"] * 1e6)
            for name, a, b in PHASES:
                spans[k][name].append((m[b] - m[a]) * 1e6)
    finally:
        ng.stop()
        if os.path.exists(out):
            os.unlink(out)
    print("| phase (µs, median of %d) | C loop | genauth_c | difference |" % rounds)
    print("|---|---:|---:|---:|")
    for name, _, _ in PHASES:
        c, g = (statistics.median(spans[k][name]) for k in argvs)
        print("| %s | %.1f | %.1f | %+.1f |" % (name, c, g, g - c))
    c, g = (statistics.median(total[k]) for k in argvs)
    print("| the first call, as each runner times it | %.0f | %.0f | %+.0f (%.2f×) |"
          % (c, g, g - c, g / c))


if __name__ == "__main__":
    main(sys.argv)
