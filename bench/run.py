"""The genauth-c benchmark: genauth_c against a plain C libcurl+cJSON loop
(the limit, sequential and with 4 and 16 in flight), the transport floor
(libcurl alone), pycurl, requests.Session, aiohttp and the official Python
SDK, all calling trigger-webhook on a local nginx, over HTTP and HTTPS.

    bench/.venv/bin/python bench/run.py [--rounds 5] [--seconds 0.7]

(`make bench` installs everything and runs this.) Writes
bench/results/results.md and bench/results/chart.png and prints the table.

How it measures, and why:
- nginx (Debian's) serves fixed answers from one worker with keep-alive, so the
  server is identical for every client and far faster than any of them (wrk
  checks that once).
- Each measurement is a fresh process (workers.py, or the C loop), so no
  client inherits another's heap, threads or connections.
- nginx runs on one CPU and every client on the other(s) (cpu_placement):
  left to the kernel, whether a client shared nginx's CPU decided its figure
  more than the client did. BENCH_NO_PIN=1 leaves placement to the kernel.
- The measurements run interleaved, A B C ... A B C, for several rounds; every
  figure is a median over rounds and is also given as a ratio to the C loop
  of the same round, which cancels most of a shared, noisy machine's drift.
- Instructions per call come from callgrind as (I(N2) - I(N1)) / (N2 - N1):
  start-up cancels, and instruction counts barely move with machine noise.
- The machine's load is recorded before and after (load average, CPU steal,
  CPU time spent by processes other than the benchmark's): a run on a busy
  machine is flagged in results.md, and its ratios are not the figures.
"""
import argparse
import base64
import datetime
import glob
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")
BUILD = os.path.join(HERE, "build")
C_LOOP_SRC = os.path.join(HERE, "c_loop.c")
C_LOOP = os.path.join(BUILD, "c_loop")
CORE_LOOP = os.path.join(BUILD, "core_loop")
WORKERS = os.path.join(HERE, "workers.py")

AK = "bench-access-key-id"
USERPOOL_ID = "62e221f85f5ac5cc47037a39"
CALLGRIND_N = (2000, 4000)
RSS_CALLS = 100_000


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the server

def b64url(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_token():
    """A JWT-shaped token whose payload carries scoped_userpool_id. The payload
    is chosen so its base64url form has no '-' or '_': the official SDK decodes
    it with plain base64 (its bug 4) and must still get the right id."""
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    for pad in range(64):
        claims = {"scoped_userpool_id": USERPOOL_ID, "sub": AK, "exp": 4102444800,
                  "pad": "x" * pad}
        payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
        if "-" not in payload and "_" not in payload:
            return "%s.%s.%s" % (header, payload, b64url(b"bench-signature"))
    raise RuntimeError("no token payload free of '-' and '_'")


WEBHOOK_JSON = ('{"statusCode":200,"message":"Operation successful",'
                '"requestId":"934108e5-9fbf-4d24-8da1-c330328abd6c",'
                '"data":{"response":{"ok":true}}}')


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stats():
    """(pid, fields) of every process, fields being /proc/PID/stat after
    "pid (comm)": state is [0], session id [3], utime [11], stime [12]."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                yield int(pid), f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue


def cpu_placement():
    """(server CPUs, client CPUs): nginx on the last CPU this process may
    use, every client on the others; (None, None) with fewer than two, or
    with BENCH_NO_PIN set (then the kernel places every process).

    Left to the kernel, a client and nginx sometimes share a CPU and
    sometimes not, and on a virtual machine that decides the figure more
    than the client does: here a sequential call took about 35 µs with both
    on one CPU and about 90 µs with each on its own (every answer then wakes
    the other, idle, virtual CPU), whatever the client. Which of the two a
    measurement got changed from process to process, so two runners of one
    round were not measured alike. Pinned, every measurement is taken the
    same way, the way a client and a remote server run: each on its own
    CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or os.environ.get("BENCH_NO_PIN"):
        return None, None
    return {cpus[-1]}, set(cpus[:-1])


# Decided once, before Nginx.start moves this process to the clients' CPUs.
SERVER_CPUS, CLIENT_CPUS = cpu_placement()


def placement_text():
    server, client = SERVER_CPUS, CLIENT_CPUS
    if server is None:
        return "not pinned: the kernel placed every process"
    return "nginx pinned to CPU %s, every client to CPU %s" % (
        ",".join(map(str, sorted(server))), ",".join(map(str, sorted(client))))


class Nginx:
    """Debian's nginx in the foreground (daemon off) in its own process group,
    from a config generated into a temporary directory. Started, it runs on
    the server's CPU, and the process that started it moves to the clients'
    (cpu_placement), so that every runner it starts after runs there."""

    def __init__(self, token):
        self.tmp = tempfile.mkdtemp(prefix="genauth-bench-")
        self.port = free_port()
        self.tls_port = free_port()
        # A test certificate for 127.0.0.1; clients verify with it as their CA.
        self.ca = os.path.join(self.tmp, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", os.path.join(self.tmp, "key.pem"), "-out", self.ca,
                        "-days", "2", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        token_json = json.dumps({"statusCode": 200, "message": "Operation successful",
                                 "data": {"access_token": token, "expires_in": 7200}},
                                separators=(",", ":"))
        with open(os.path.join(HERE, "nginx.conf.in")) as f:
            conf = f.read()
        for name, value in (("TMPDIR", self.tmp), ("PORT", str(self.port)),
                            ("TLS_PORT", str(self.tls_port)),
                            ("TOKEN_JSON", token_json), ("WEBHOOK_JSON", WEBHOOK_JSON)):
            conf = conf.replace("@%s@" % name, value)
        self.conf = os.path.join(self.tmp, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = None

    @property
    def host(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def tls_host(self):
        return "https://127.0.0.1:%d" % self.tls_port

    def start(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        # -e: the error log before the config is read; Debian's default path
        # may not be writable, and this run should leave nothing outside tmp.
        server, client = SERVER_CPUS, CLIENT_CPUS
        self.proc = subprocess.Popen(
            [nginx, "-p", self.tmp, "-e", os.path.join(self.tmp, "error.log"),
             "-c", self.conf], start_new_session=True,
            # In the child before exec: its worker, forked later, inherits it.
            preexec_fn=(lambda: os.sched_setaffinity(0, server)) if server else None)
        if client:
            os.sched_setaffinity(0, client)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited: %s" % self.error_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not listen: %s" % self.error_log())

    def cpu_seconds(self):
        """User + system CPU of nginx's processes so far (its session's), so
        the server's cost per call can be stated, not guessed."""
        ticks = sum(int(f[11]) + int(f[12]) for _, f in proc_stats()
                    if int(f[3]) == self.proc.pid)
        return ticks / os.sysconf("SC_CLK_TCK")

    def error_log(self):
        try:
            with open(os.path.join(self.tmp, "error.log")) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:  # the whole group: master and worker
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_keepalive(port, body):
    """Three POSTs with bodies on one raw connection: each must be answered
    and the connection must stay open, or every client would pay a connect."""
    req = ("POST /api/v3/trigger-webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
           % (len(body), body)).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for _ in range(3):
            s.sendall(req)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    raise RuntimeError("nginx closed a kept-alive connection")
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if not head.startswith(b"HTTP/1.1 200") or not m:
                raise RuntimeError("unexpected answer: %r" % head)
            while len(rest) < int(m.group(1)):
                rest += s.recv(65536)
            if b"connection: close" in head.lower():
                raise RuntimeError("nginx asked to close the connection")


def wrk_capacity(nginx, token):
    """What nginx serves with wrk pushing (2 threads, 32 connections)."""
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_USERPOOL_ID=USERPOOL_ID)
    out = subprocess.run(
        ["wrk", "-t2", "-c32", "-d3s", "-s", os.path.join(HERE, "wrk_post.lua"),
         nginx.host + "/api/v3/trigger-webhook"],
        env=env, capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError("wrk saw errors:\n" + out)
    return float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))


# ---------------------------------------------------------------- the runners

class Runner:
    """One thing to measure: `argv(n)` is the command for n calls. `ref` is
    the C reference it is held against: the sequential C loop for sequential
    rows, the C multi loop with as many in flight for concurrent ones, the C
    loop over TLS for TLS rows."""

    def __init__(self, key, label, argv, pilot, group, calls_per_unit=1, ref="c_seq"):
        self.key, self.label, self._argv = key, label, argv
        self.pilot = pilot  # calls for the sizing run
        self.group = group  # "seq", "concurrent" or "tls", for the chart
        self.unit = calls_per_unit  # n is rounded to a multiple of this
        self.ref = ref
        self.n = None

    def argv(self, n):
        return self._argv(n)


def run_json(argv, env, timeout=600):
    # When the process was started (CLOCK_MONOTONIC, as time.monotonic()):
    # how long after it a first call starts is measured from this.
    env = dict(env, BENCH_SPAWNED_AT="%.9f" % time.monotonic())
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                       cwd=HERE)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(argv[:4]), p.returncode,
                                                    p.stderr[-3000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def shuffled_rounds(argvs, rounds, env):
    """(key, JSON output) of each of argvs' programs run once a round, in
    an order shuffled each round: a machine's drift slows them alike."""
    for _ in range(rounds):
        order = list(argvs)
        random.shuffle(order)
        for k in order:
            yield k, run_json(argvs[k], env)


def build_c_loop():
    os.makedirs(BUILD, exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl", "libcjson"],
                           capture_output=True, text=True, check=True).stdout.split()
    # -g only for callgrind's function names; -O2 as a C user would build it.
    subprocess.run(["gcc", "-O2", "-g", "-Wall", "-Wextra", "-o", C_LOOP, C_LOOP_SRC]
                   + flags + ["-lpthread"], check=True)
    # genauth_c's core without Python, built as setup.py builds it.
    core = os.path.join(os.path.dirname(HERE), "src", "core")
    crypto = subprocess.run(["pkg-config", "--cflags", "--libs", "libcrypto"],
                            capture_output=True, text=True, check=True).stdout.split()
    subprocess.run(["gcc", "-std=c11", "-D_GNU_SOURCE", "-O2", "-g", "-Wall", "-Wextra",
                    "-I" + core, "-o", CORE_LOOP, os.path.join(HERE, "core_loop.c")]
                   + sorted(glob.glob(os.path.join(core, "*.c"))) + flags + crypto
                   + ["-lpthread", "-lm"], check=True)


def has(py, code):
    return subprocess.run([py, "-c", code], cwd=HERE, capture_output=True).returncode == 0


def make_runners(py, host, tls_host, token, features):
    url, tls_url = host + "/api/v3/trigger-webhook", tls_host + "/api/v3/trigger-webhook"

    def c(mode, k=16, u=url):
        return lambda n: [C_LOOP, mode, str(n), u, token, USERPOOL_ID, str(k)]

    def w(client, mode, k=1, h=host):
        return lambda n: [py, WORKERS, client, mode, str(n), h, str(k)]

    rs = [
        Runner("c_seq", "C loop (libcurl + cJSON)", c("seq"), 500, "seq"),
        Runner("c_floor", "C transport floor (libcurl, prebuilt body, answer unparsed)",
               c("floor"), 500, "seq"),
        Runner("gc_seq", "genauth_c", w("genauth_c", "seq"), 500, "seq"),
        Runner("core_seq", "genauth_c's C core from a C program (no Python)",
               lambda n: [CORE_LOOP, str(n), host], 500, "seq"),
        Runner("pc_seq", "pycurl", w("pycurl", "seq"), 500, "seq"),
        Runner("rq_seq", "requests.Session", w("requests", "seq"), 200, "seq"),
        Runner("sdk_seq", "official SDK (genauth 5.1.0)", w("genauth", "seq"), 100, "seq"),
        Runner("c_multi4", "C loop, 4 in flight (curl multi)", c("multi", 4), 1000,
               "concurrent", 4, "c_multi4"),
        Runner("c_multi16", "C loop, 16 in flight (curl multi)", c("multi", 16), 2000,
               "concurrent", 16, "c_multi16"),
        Runner("c_multi16_keep", "C loop, 16 in flight, every answer kept to the end",
               c("multi_keep", 16), 2000, "concurrent", 16, "c_multi16"),
        Runner("c_t4", "C, 4 threads (a handle each, curl_easy_perform)", c("threads", 4),
               1000, "concurrent", 4, "c_multi4"),
        Runner("core_t4", "genauth_c's C core, 4 C threads (no Python)",
               lambda n: [CORE_LOOP, str(n), host, "4"], 1000, "concurrent", 4, "c_multi4"),
        Runner("gc_t4", "genauth_c, 4 threads", w("genauth_c", "threads", 4), 1000,
               "concurrent", 4, "c_multi4"),
        Runner("gc_t16", "genauth_c, 16 threads", w("genauth_c", "threads", 16), 1000,
               "concurrent", 16, "c_multi16"),
        Runner("gc_b16", "genauth_c, batch 16 in flight", w("genauth_c", "batch", 16),
               2000, "concurrent", 16, "c_multi16"),
        Runner("pc_t4", "pycurl, 4 threads (a handle each)", w("pycurl", "threads", 4),
               1000, "concurrent", 4, "c_multi4"),
        Runner("rq_t4", "requests.Session, 4 threads", w("requests", "threads", 4), 400,
               "concurrent", 4, "c_multi4"),
    ]
    if features["async"]:
        rs.append(Runner("gc_a16", "genauth_c asyncio, 16 tasks",
                         w("genauth_c_async", "tasks", 16), 2000, "concurrent", 16,
                         "c_multi16"))
    if features["aiohttp"]:
        rs.append(Runner("aio16", "aiohttp, 16 tasks", w("aiohttp", "tasks", 16), 1000,
                         "concurrent", 16, "c_multi16"))
    rs += [
        Runner("c_seq_tls", "C loop over TLS (kept alive)", c("seq", u=tls_url), 500,
               "tls", ref="c_seq_tls"),
        Runner("gc_seq_tls", "genauth_c over TLS (kept alive, verified)",
               w("genauth_c", "seq", h=tls_host), 500, "tls", ref="c_seq_tls"),
        Runner("pc_seq_tls", "pycurl over TLS (kept alive, verified)",
               w("pycurl", "seq", h=tls_host), 500, "tls", ref="c_seq_tls"),
        Runner("sdk_seq_tls", "official SDK over TLS (a new connection per call)",
               w("genauth", "seq", h=tls_host), 50, "tls", ref="c_seq_tls"),
    ]
    return rs


# ---------------------------------------------------------------- the machine

def cpu_ticks():
    """(busy, steal, total) jiffies of all CPUs from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal, sum(v[:8])


def own_cpu_seconds(nginx):
    """CPU used by this benchmark so far: this process, its finished children
    (workers, the C loop, valgrind) and nginx."""
    import resource

    s = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime + (
        nginx.cpu_seconds() if nginx and nginx.proc else 0)


def running_others(ours=()):
    """Processes in state R that are not this benchmark's (its session, and
    the sessions in `ours`: nginx runs in one of its own), nor the kernel's
    own threads (children of kthreadd, pid 2), which run for a moment now and
    then on any machine."""
    mine = {os.getsid(0), *ours}
    return sum(1 for pid, f in proc_stats()
               if f[0] == "R" and int(f[3]) not in mine and pid != os.getpid()
               and pid != 2 and int(f[1]) != 2)


class LoadProbe:
    """What else the machine did while the benchmark ran. A benchmark is only
    worth publishing from a quiet machine: other work on the same cores
    changes the ratios (and did, in an earlier run)."""

    def __init__(self):
        self.hz = os.sysconf("SC_CLK_TCK")

    def snapshot(self, nginx):
        busy, steal, total = cpu_ticks()
        return {"t": time.monotonic(), "busy": busy / self.hz, "steal": steal / self.hz,
                "total": total / self.hz, "own": own_cpu_seconds(nginx),
                "loadavg": open("/proc/loadavg").read().split()[:3],
                "running_others": max(running_others(
                    [nginx.proc.pid] if nginx and nginx.proc else [])
                    for _ in range(3))}

    @staticmethod
    def verdict(a, b):
        wall = b["t"] - a["t"]
        cores = os.cpu_count() or 1
        other = max(0.0, (b["busy"] - a["busy"]) - (b["own"] - a["own"]))
        steal = b["steal"] - a["steal"]
        total = max(b["total"] - a["total"], 1e-9)
        out = {"wall_s": wall, "other_cpu_s": other,
               "other_cpu_share": other / (wall * cores),
               "steal_share": steal / total,
               "loadavg_before": a["loadavg"], "loadavg_after": b["loadavg"],
               "running_others_before": a["running_others"],
               "running_others_after": b["running_others"]}
        why = []
        if out["other_cpu_share"] > 0.05:
            why.append("other processes used %.0f%% of the CPU during the run"
                       % (100 * out["other_cpu_share"]))
        if out["steal_share"] > 0.02:
            why.append("the hypervisor stole %.0f%% of the CPU" % (100 * out["steal_share"]))
        if float(a["loadavg"][0]) > 0.5 * cores:
            why.append("the 1-minute load average was %s before the run" % a["loadavg"][0])
        if a["running_others"] or b["running_others"]:
            why.append("other processes were running before or after the run (%d, %d)"
                       % (a["running_others"], b["running_others"]))
        out["busy"] = bool(why)
        out["why"] = why
        return out


def size_runners(runners, env, seconds):
    """One pilot run each sizes n so a measurement takes about `seconds`; the
    pilots also warm the page cache and nginx before round 1."""
    for r in runners:
        out = run_json(r.argv(r.pilot), env)
        rate = out["calls"] / out["elapsed"]
        n = int(rate * seconds) // r.unit * r.unit
        r.n = max(n, r.unit * 4, 50)
        log("  %-40s %8.0f calls/s in the pilot -> %d calls" % (r.label, rate, r.n))


# ---------------------------------------------------------------- import time

def import_us(py, module):
    """Cumulative import time of `module` as `python -X importtime` reports it
    in a fresh process: the import alone, not interpreter start-up."""
    p = subprocess.run([py, "-X", "importtime", "-c", "import " + module],
                       capture_output=True, text=True, check=True, cwd=HERE)
    for line in p.stderr.splitlines():
        parts = [x.strip() for x in line.split(":", 1)[-1].split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError("no importtime line for %s" % module)



# ---------------------------------------------------------------- callgrind

# What measure_ir runs: (key, argv(n, url, host, token, py)).
IR_RUNS = (
    ("C loop", lambda n, u, h, t, py: [C_LOOP, "seq", str(n), u, t, USERPOOL_ID]),
    ("C floor", lambda n, u, h, t, py: [C_LOOP, "floor", str(n), u, t, USERPOOL_ID]),
    ("genauth_c", lambda n, u, h, t, py: [py, WORKERS, "genauth_c", "loop", str(n), h]),
    ("genauth_c's C core", lambda n, u, h, t, py: [CORE_LOOP, str(n), h]),
    ("C multi 16", lambda n, u, h, t, py: [C_LOOP, "multi", str(n), u, t, USERPOOL_ID,
                                           "16"]),
    ("genauth_c batch 16", lambda n, u, h, t, py: [py, WORKERS, "genauth_c", "batch_loop",
                                                   str(n), h, "16"]),
)


# First-level cache misses, from callgrind's cache simulation (its caches
# are the host's, as valgrind detects them): instruction fetches, data reads,
# data writes.
MISS_EVENTS = ("I1mr", "D1mr", "D1mw")


def measure_ir(py, nginx, token, env, only=None, keep=None):
    """Instructions per call, (I(N2) - I(N1)) / (N2 - N1), the per-call
    profile of each run in IR_RUNS (those named in `only`, when given), and
    its first-level cache misses per call, {event: misses} (MISS_EVENTS). The
    callgrind files are kept in the directory `keep` when given."""
    n1, n2 = CALLGRIND_N
    ipc, prof, misses = {}, {}, {}
    if keep:
        os.makedirs(keep, exist_ok=True)
    cg_dir = keep or tempfile.mkdtemp(prefix="genauth-callgrind-")
    # Fixed string hashes: dict layouts, and so instruction counts, repeat.
    env = dict(env, PYTHONHASHSEED="0")
    url = nginx.host + "/api/v3/trigger-webhook"
    try:
        for key, argv in IR_RUNS:
            if only and key not in only:
                continue
            log("callgrind: %s, %d and %d calls" % (key, n1, n2))
            f1, f2 = (os.path.join(cg_dir, "%s.%d" % (key.replace(" ", "_"), n))
                      for n in (n1, n2))
            e1 = callgrind(argv(n1, url, nginx.host, token, py), f1, env)
            e2 = callgrind(argv(n2, url, nginx.host, token, py), f2, env)
            ipc[key] = (e2["Ir"] - e1["Ir"]) / (n2 - n1)
            misses[key] = {e: (e2[e] - e1[e]) / (n2 - n1) for e in MISS_EVENTS}
            prof[key] = profile_per_call(f1, f2, n1, n2)
    finally:
        if not keep:
            shutil.rmtree(cg_dir, ignore_errors=True)
    return ipc, prof, misses


def callgrind_only(args):
    """`--callgrind-only`: nginx, the callgrind runs, and their tables on
    stdout (instructions per call, per layer, per function); nothing is
    written under bench/results/."""
    py = args.python
    build_c_loop()
    token = make_token()
    nginx = Nginx(token)
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_USERPOOL_ID=USERPOOL_ID,
               BENCH_CA=nginx.ca)
    only = set(args.ir_runs.split(",")) if args.ir_runs else None
    try:
        nginx.start()
        ipc, prof, misses = measure_ir(py, nginx, token, env, only, args.keep)
    finally:
        nginx.stop()
    print("\n".join(ir_tables(ipc, prof, args.top, misses)))


def ir_tables(ipc, prof, top=25, misses=None):
    """The instruction figures as markdown lines: Ir per call (against the C
    loop and the floor where measured) with the first-level cache misses, the
    per-layer tables, and the top functions of the genauth_c runs with their
    excess over the C loop's."""
    misses = misses or {}
    L = []
    L.append("| runner | Ir/call | × C loop | over the floor | %s |" % miss_header())
    L.append("|---|---:|---:|---:|---:|---:|")
    for k, v in ipc.items():
        L.append("| %s | %.0f | %s | %s | %s |" % (
            k, v, "%.3f×" % (v / ipc["C loop"]) if "C loop" in ipc else "",
            "%+.0f" % (v - ipc["C floor"]) if "C floor" in ipc else "",
            miss_cells(misses.get(k))))
    if "genauth_c batch 16" in ipc and "C multi 16" in ipc:
        L.append("\nbatch 16 against the C multi loop with 16: %.3f×"
                 % (ipc["genauth_c batch 16"] / ipc["C multi 16"]))
    L.append("")
    keys = [k for k in ("genauth_c", "C loop", "C floor", "genauth_c batch 16",
                        "C multi 16") if k in prof]
    if keys:
        lay = {k: layers(prof[k][0]) for k in keys}
        L.append("Self Ir per call by layer:\n")
        L.append("| layer | " + " | ".join(keys) + " |")
        L.append("|---|" + "---:|" * len(keys))
        for name in lay[keys[0]]:
            vals = [lay[k][name] for k in keys]
            if max(abs(v) for v in vals) >= 50:
                L.append("| %s | " % name + " | ".join("%.0f" % v for v in vals) + " |")
        L.append("")
    L += miss_layer_table(prof)
    labels = anonymous_labels(prof)
    for key, ref in (("genauth_c", "C loop"), ("genauth_c batch 16", "C multi 16")):
        if key not in prof:
            continue
        fns = prof[key][0]
        other = prof[ref][0] if ref in prof else {}
        L.append("Top functions of %s, self Ir per call (against %s):\n" % (key, ref))
        L.append("| function | object | Ir/call | %s | diff |" % ref)
        L.append("|---|---|---:|---:|---:|")
        for k, v in sorted(fns.items(), key=lambda kv: -kv[1])[:top]:
            L.append("| %s | %s | %.0f | %.0f | %+.0f |" % (
                fn_md(k, labels), object_of(k), v, other.get(k, 0), v - other.get(k, 0)))
        L.append("")
        if other:
            diff = sorted(((fns.get(k, 0) - other.get(k, 0), k)
                           for k in set(fns) | set(other)), reverse=True)
            L.append("Most above %s: %s\n" % (ref, ", ".join(
                "%s %+.0f" % (fn_md(k, labels), v) for v, k in diff[:15])))
            L.append("Most below %s: %s\n" % (ref, ", ".join(
                "%s %+.0f" % (fn_md(k, labels), v) for v, k in diff[::-1][:10])))
    return L


def miss_header():
    return "L1i misses/call | L1d misses/call (read, write)"


def miss_cells(m):
    """The first-level cache misses per call of one run, as two cells."""
    if not m:
        return " | "
    return "%.0f | %.0f (%.0f, %.0f)" % (m["I1mr"], m["D1mr"] + m["D1mw"],
                                         m["D1mr"], m["D1mw"])


def miss_layer_table(prof):
    """First-level cache misses (instruction and data) per call by layer, for
    genauth_c, its C core driven from C, and the C loop: markdown lines, none
    for runs recorded without the cache simulation."""
    keys = [k for k in ("genauth_c", "genauth_c's C core", "C loop")
            if k in prof and len(prof[k]) > 3]
    if len(keys) < 2:
        return []
    lay = {k: layers(prof[k][3]) for k in keys}
    L = ["First-level cache misses per call by layer (callgrind's cache simulation, "
         "instruction fetches and data reads and writes together, self per "
         "function):\n",
         "| layer | " + " | ".join(keys) + " |",
         "|---|" + "---:|" * len(keys)]
    for name in lay[keys[0]]:
        vals = [lay[k][name] for k in keys]
        if max(abs(v) for v in vals) >= 10:
            L.append("| %s | " % name + " | ".join("%.0f" % v for v in vals) + " |")
    L.append("| total | " + " | ".join("%.0f" % sum(lay[k].values()) for k in keys) + " |")
    L.append("")
    return L


def callgrind(argv, out_file, env):
    """Runs argv under callgrind with its cache simulation: the program's
    totals, {event: count} (Ir and MISS_EVENTS among them)."""
    subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=yes",
                    "--cache-sim=yes", "--callgrind-out-file=" + out_file] + argv,
                   env=env, check=True, capture_output=True, timeout=900, cwd=HERE)
    events = None
    with open(out_file) as f:
        for line in f:
            if line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith(("totals:", "summary:")) and events:
                return dict(zip(events, (int(x) for x in line.split()[1:])))
    raise RuntimeError("no totals in " + out_file)


def per_function(out_file, event="Ir"):
    """Self cost per function ("file:function [object]") from
    callgrind_annotate: of `event`, or the sum of several (comma-separated)."""
    n_events = len(event.split(","))
    p = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no",
                        "--auto=no", "--show=" + event, "--sort=" + event.split(",")[0],
                        out_file], capture_output=True, text=True, check=True)
    # Each event's count, with its share in parentheses when not 0, then the name.
    line_re = re.compile(r"^\s*((?:[\d,]+(?:\s+\([^)]*\))?\s+){%d})(\S.*?)\s*$"
                         % n_events)
    fns, started = {}, False
    for line in p.stdout.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started or line.startswith("-"):
            continue
        if not line.strip():
            if fns:
                break  # the end of the function table
            continue
        m = line_re.match(line)
        if m:
            counts = re.findall(r"([\d,]+)(?:\s+\([^)]*\))?", m.group(1))
            name = m.group(2)
            fns[name] = fns.get(name, 0) + sum(int(x.replace(",", "")) for x in counts)
    return fns


def object_of(name):
    m = re.search(r"\[(.*?)\]\s*$", name)
    if m:
        return os.path.basename(m.group(1))
    # callgrind_annotate names no object for code inlined from headers.
    if re.search(r"Python-\d|/Include/", name):
        return "libpython (inlined)"
    if name.startswith("./"):
        return "libc (inlined)"
    return "?"


def function_of(name):
    name = re.sub(r"\s*\[.*?\]\s*$", "", name)
    return name.split(":", 1)[-1]


def anonymous_labels(prof):
    """anonymous_callers of every run in prof, merged (one library, one
    address: the same function). Empty for runs recorded before them."""
    labels = {}
    for entry in prof.values():
        if len(entry) > 2:
            labels.update(entry[2])
    return labels


def fn_md(name, labels):
    """A function as a markdown cell: `name`, and for an anonymous one what
    it is reached from."""
    if name in labels:
        return "`%s` (near %s)" % (function_of(name), labels[name])
    return "`%s`" % function_of(name)


TREE_LINE = re.compile(r"^\s*([\d,]+)\s+\([^)]*\)\s+([<*>])\s+(\S.*?)\s*$")


def anonymous_callers(out_file):
    """What each function callgrind names only by its address (an internal
    function of a stripped library, such as Debian's libcurl) is part of:
    {name: "curl_mvaprintf"}: up the chain of its costliest callers, the
    first named function that calls into that chain."""
    p = subprocess.run(["callgrind_annotate", "--tree=caller", "--threshold=100",
                        "--inclusive=no", "--auto=no", "--show=Ir", out_file],
                       capture_output=True, text=True, check=True)
    callers, pending = {}, []
    for line in p.stdout.splitlines():
        m = TREE_LINE.match(line)
        if not m:
            pending = []
            continue
        ir, kind = int(m.group(1).replace(",", "")), m.group(2)
        name = re.sub(r"\s+\([\d,]+x\)", "", m.group(3))
        if kind == "<":
            pending.append((ir, name))
        elif kind == "*":
            callers[name], pending = pending, []

    def anonymous(name):
        return re.match(r"\?\?\?:0x", name) is not None

    labels = {}
    for name in callers:
        if not anonymous(name):
            continue
        # Up the costliest callers until one is called by named functions:
        # the costliest of those says what the chain is part of.
        at, seen = name, {name}
        while True:
            named = [(ir, c) for ir, c in callers.get(at, ()) if not anonymous(c)]
            if named:
                labels[name] = function_of(max(named)[1])
                break
            up = [(ir, c) for ir, c in callers.get(at, ()) if c not in seen]
            if not up:
                break  # the chain ends, or turns back on itself
            at = max(up)[1]
            seen.add(at)
    return labels


def profile_per_call(f1, f2, n1, n2):
    """Per-call Ir by function and by shared object: I(N2) - I(N1) per call,
    so start-up and import drop out of the profile too; and what the
    anonymous functions among them are reached from (anonymous_callers)."""
    a, b = per_function(f1), per_function(f2)
    fn = {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}
    objs = {}
    for k, v in fn.items():
        objs[object_of(k)] = objs.get(object_of(k), 0) + v
    show = ",".join(MISS_EVENTS)
    ma, mb = per_function(f1, show), per_function(f2, show)
    miss = {k: (mb.get(k, 0) - ma.get(k, 0)) / (n2 - n1) for k in set(ma) | set(mb)}
    return fn, objs, anonymous_callers(f2), miss


# ---------------------------------------------------------------- reporting

def machine_info(py):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    curl = subprocess.run([py, "-c", "import genauth_c; print(genauth_c.curl_version)"],
                          capture_output=True, text=True, cwd=HERE).stdout.strip()
    pycurl = subprocess.run([py, "-c", "import pycurl; print(pycurl.version.split()[1])"],
                            capture_output=True, text=True, cwd=HERE).stdout.strip()
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    debian = open("/etc/debian_version").read().strip() if os.path.exists(
        "/etc/debian_version") else "?"
    pyver = subprocess.run([py, "-c", "import sys; print(sys.version.split()[0])"],
                           capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "libcurl": curl, "pycurl": pycurl,
            "nginx": nginx.replace("nginx version: ", ""), "debian": debian,
            "python": pyver, "kernel": platform.release(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def write_chart(runners, stats, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order = [r for g in ("seq", "concurrent", "tls") for r in runners if r.group == g]
    order = [r for r in order if r.key in stats]
    # TLS rows are held against the C loop over TLS: plain HTTP is another task.
    labels = [r.label + (" (× C loop over TLS)" if r.group == "tls" else "")
              for r in order][::-1]
    vals = [stats[r.key]["vs_ref" if r.group == "tls" else "ratio"]
            for r in order][::-1]
    colors = []
    for r in order[::-1]:
        if r.key.startswith("c_"):
            colors.append("#7f7f7f")
        elif r.key.startswith("core_"):
            colors.append("#aec7e8")
        elif r.key.startswith("gc_"):
            colors.append({"seq": "#1f77b4", "concurrent": "#2ca02c",
                           "tls": "#9467bd"}[r.group])
        else:
            colors.append("#ff7f0e")
    fig, ax = plt.subplots(figsize=(13, 0.48 * len(order) + 2.6), dpi=110)
    bars = ax.barh(labels, vals, color=colors)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    for b, v in zip(bars, vals):
        ax.text(b.get_width() + 0.05, b.get_y() + b.get_height() / 2, "%.2f×" % v,
                va="center", fontsize=9)
    n_seq = sum(1 for r in order if r.group == "seq")
    n_tls = sum(1 for r in order if r.group == "tls")
    ax.axhline(len(order) - n_seq - 0.5, color="#cccccc", linewidth=0.8)
    ax.axhline(n_tls - 0.5, color="#cccccc", linewidth=0.8)
    ax.set_xlim(0, max(vals) * 1.15)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color="#7f7f7f", label="C libcurl+cJSON loop (the limit)"),
                       Patch(color="#1f77b4", label="genauth_c, sequential"),
                       Patch(color="#aec7e8", label="genauth_c's C core, no Python"),
                       Patch(color="#2ca02c", label="genauth_c, concurrent"),
                       Patch(color="#9467bd", label="genauth_c over TLS"),
                       Patch(color="#ff7f0e", label="other Python clients"),
                       Line2D([], [], color="black", linestyle="--",
                              label="sequential C loop = 1.0")],
              loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3, fontsize=9,
              frameon=False)
    ax.set_xlabel("throughput relative to the sequential C libcurl+cJSON loop\n"
                  "(higher is better; median of rounds)")
    ax.set_title("trigger_webhook on loopback nginx:\nsequential (top), concurrent, "
                 "and over TLS (bottom)")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--seconds", type=float, default=0.7,
                    help="target duration of one measurement")
    ap.add_argument("--python", default=sys.executable,
                    help="the benchmark venv's python (workers run under it)")
    ap.add_argument("--skip-callgrind", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--callgrind-only", action="store_true",
                    help="only the instruction counts: print their tables, write "
                         "nothing under bench/results/ (make bench-ir)")
    ap.add_argument("--ir-runs", default="",
                    help="with --callgrind-only: the runs to measure, comma-separated "
                         "(%s; default all)" % ", ".join(k for k, _ in IR_RUNS))
    ap.add_argument("--keep", metavar="DIR",
                    help="with --callgrind-only: keep the callgrind files in DIR")
    ap.add_argument("--top", type=int, default=25,
                    help="with --callgrind-only: functions listed per run")
    ap.add_argument("--only", default="",
                    help="comma-separated runner keys (e.g. gc_t4,c_multi4): run only "
                         "those (with c_seq and their C references), print their medians "
                         "and write nothing under bench/results/")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite results.md and chart.png from the last run's raw data")
    args = ap.parse_args()
    py = args.python
    if args.callgrind_only:
        callgrind_only(args)
        return
    os.makedirs(RESULTS, exist_ok=True)
    raw = os.path.join(BUILD, "last-run.json")  # git-ignored: build/
    if args.render_only:
        with open(raw) as f:
            publish(json.load(f))
        return

    info = machine_info(py)
    log("machine: %(nproc)s cores, %(cpu)s, libcurl %(libcurl)s" % info)
    build_c_loop()
    features = {"async": has(py, "from genauth_c import AsyncManagementClient"),
                "aiohttp": has(py, "import aiohttp")}
    for name, there in features.items():
        if not there:
            log("no %s in the benchmark venv: its rows are skipped" % name)

    token = make_token()
    probe = LoadProbe()
    nginx = Nginx(token)
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_USERPOOL_ID=USERPOOL_ID,
               BENCH_CA=nginx.ca)
    try:
        nginx.start()
        load_before = probe.snapshot(nginx)
        log("nginx on %s and %s; load average %s" % (
            nginx.host, nginx.tls_host, " ".join(load_before["loadavg"])))
        with open(os.path.join(HERE, "wrk_post.lua")) as f:
            body = "".join(re.findall(r"'([^']*)'", f.read().split("wrk.body", 1)[1]))
        check_keepalive(nginx.port, body)
        wrk_rps = wrk_capacity(nginx, token)
        log("nginx under wrk: %.0f req/s" % wrk_rps)

        runners = make_runners(py, nginx.host, nginx.tls_host, token, features)
        if args.only:
            want = set(args.only.split(",")) | {"c_seq", "gc_seq"}
            want |= {r.ref for r in runners if r.key in want}
            runners = [r for r in runners if r.key in want]
            args.skip_rss = args.skip_callgrind = True
        log("sizing (%.1f s per measurement):" % args.seconds)
        size_runners(runners, env, args.seconds)

        # Interleaved rounds: every runner once per round, in an order shuffled
        # afresh each round (seeded: runs repeat). In a fixed order each
        # runner always ran in the state the same predecessor left nginx and
        # the CPUs in (the C loop always after the official SDK over TLS), a
        # bias no number of rounds removes; shuffled, it spreads over all.
        per_round = {r.key: [] for r in runners}
        first_call = {r.key: [] for r in runners}
        fresh_client = {}  # a fresh client's first call after the timed calls
        first_call_at = []  # seconds from genauth_c's process start to its first call
        cpu = {r.key: [] for r in runners}
        imports = {m: [] for m in ("genauth_c", "pycurl", "requests", "genauth")}
        connects, server_cpu, failures = [], [], []
        # The first call of a C program that fetches its token as genauth_c
        # does: the same work as genauth_c's first call. The same after
        # evicting the caches, as a Python process's start-up and imports do
        # before its first call; and the same started as long after its
        # process's start as genauth_c's is (from a first genauth_c process
        # here, then from the rounds'). Shuffled in with the runners, as a
        # first call depends most on what ran just before it, and three times
        # a round with as many genauth_c processes run for their first call
        # alone: one first call varies by a third from one process to the next.
        first_modes = ("first_token", "first_token_evicted", "first_token_late",
                       "genauth_c")
        gc_seq = next(r for r in runners if r.key == "gc_seq")
        first_call_at.append(run_json(gc_seq.argv(gc_seq.n), env)["first_call_at_s"])
        for rnd in range(args.rounds):
            t0 = time.monotonic()
            order = list(runners) + 3 * list(first_modes)
            random.Random(rnd).shuffle(order)
            for r in order:
                if r == "genauth_c":
                    out = run_json(gc_seq.argv(2), env)
                    first_call["gc_seq"].append(out["first_call_s"] * 1e6)
                    first_call_at.append(out["first_call_at_s"])
                    continue
                if r in first_modes:
                    late_env = dict(env, BENCH_FIRST_CALL_AT="%.6f"
                                    % statistics.median(first_call_at))
                    out = run_json([C_LOOP, r, "2", nginx.host + "/api/v3/trigger-webhook",
                                    token, USERPOOL_ID], late_env)
                    first_call.setdefault("c_" + r, []).append(out["first_call_s"] * 1e6)
                    continue
                s0 = nginx.cpu_seconds()
                try:
                    out = run_json(r.argv(r.n), env)
                except RuntimeError as e:
                    # A failed call is a finding, not noise: it is reported in
                    # results.md; the measurement is retried once.
                    last = str(e).strip().splitlines()[-1]
                    why = [x.split("[info]")[-1].strip() for x in nginx.error_log().splitlines()
                           if "client sent" in x or "invalid" in x]
                    failures.append("round %d, %s: %s%s" % (
                        rnd + 1, r.label, last, "; nginx: " + why[-1] if why else ""))
                    log("FAILED: %s; retrying once" % failures[-1])
                    s0 = nginx.cpu_seconds()
                    out = run_json(r.argv(r.n), env)
                if r.key == "c_seq":  # warm-up calls included: a slight overestimate
                    server_cpu.append((nginx.cpu_seconds() - s0) * 1e6 / out["calls"])
                per_round[r.key].append(out["calls"] / out["elapsed"])
                if "first_call_s" in out:
                    first_call[r.key].append(out["first_call_s"] * 1e6)
                if r.key == "gc_seq":
                    first_call_at.append(out["first_call_at_s"])
                if out.get("fresh_client_s"):
                    fresh_client.setdefault(r.key, []).append(out["fresh_client_s"] * 1e6)
                if "cpu_s" in out:
                    cpu[r.key].append(out["cpu_s"] * 1e6 / out["calls"])
                if r.key == "c_seq":
                    connects.append(out["connects"])
            for _ in range(0 if args.only else 3):
                for m in imports:
                    imports[m].append(import_us(py, m))
            log("round %d/%d: %.1f s; C loop %.0f calls/s, genauth_c %.2f× of it" % (
                rnd + 1, args.rounds, time.monotonic() - t0, per_round["c_seq"][-1],
                per_round["gc_seq"][-1] / per_round["c_seq"][-1]))
        if any(connects):
            raise RuntimeError("the C loop reconnected during timed calls: keep-alive broken")

        stats = {}
        for r in runners:
            rates = per_round[r.key]
            ratios = [x / c for x, c in zip(rates, per_round["c_seq"])]
            vs_ref = [x / c for x, c in zip(rates, per_round[r.ref])]
            # Medians of rounds.
            stats[r.key] = {"rate": statistics.median(rates),
                            "ratio": statistics.median(ratios),
                            "lo": min(ratios), "hi": max(ratios),
                            "ref": r.ref, "vs_ref": statistics.median(vs_ref),
                            "vs_ref_lo": min(vs_ref), "vs_ref_hi": max(vs_ref),
                            "cpu_us": statistics.median(cpu[r.key]) if cpu[r.key] else None}

        # Memory: one fresh process per client, 100,000 calls.
        mem = {}
        if not args.skip_rss:
            for key, argv in (("genauth_c", [py, WORKERS, "genauth_c", "rss"]),
                              ("pycurl", [py, WORKERS, "pycurl", "rss"])):
                log("memory: %s, %d calls" % (key, RSS_CALLS))
                mem[key] = run_json(argv + [str(RSS_CALLS), nginx.host], env)
            log("memory: C loop, %d calls" % RSS_CALLS)
            mem["C loop"] = run_json([C_LOOP, "rss", str(RSS_CALLS),
                                      nginx.host + "/api/v3/trigger-webhook", token,
                                      USERPOOL_ID], env)

        # Instructions per call under callgrind.
        ipc, prof, misses = ({}, {}, {}) if args.skip_callgrind else measure_ir(
            py, nginx, token, env)
        idle = None
        if features["async"] and not args.only:
            idle = run_json([py, WORKERS, "genauth_c_async", "idle", "1", nginx.host],
                            env)
        load = probe.verdict(load_before, probe.snapshot(nginx))
    finally:
        nginx.stop()

    if args.only:
        print("| runner | calls/s | × C loop | × its C limit (range) | CPU µs/call |")
        for r in runners:
            s = stats[r.key]
            print("| %s | %.0f | %.2f× | %.2f× of %s (%.2f–%.2f) | %s |" % (
                r.label, s["rate"], s["ratio"], s["vs_ref"], s["ref"], s["vs_ref_lo"],
                s["vs_ref_hi"], "%.1f" % s["cpu_us"] if s["cpu_us"] else "-"))
        if first_call.get("c_first_token"):
            print("first call µs: C loop %.0f, C loop fetching its token %.0f (%.0f after "
                  "evicting the caches, %.0f started %.1f ms after its process), "
                  "genauth_c %.0f" % (
                      statistics.median(first_call["c_seq"]),
                      statistics.median(first_call["c_first_token"]),
                      statistics.median(first_call["c_first_token_evicted"]),
                      statistics.median(first_call["c_first_token_late"]),
                      1e3 * statistics.median(first_call_at),
                      statistics.median(first_call["gc_seq"])))
        if fresh_client.get("c_seq") and fresh_client.get("gc_seq"):
            print("fresh client in a running process µs: C loop fetching its token %.0f, "
                  "genauth_c %.0f" % (statistics.median(fresh_client["c_seq"]),
                                      statistics.median(fresh_client["gc_seq"])))
        print("other processes' CPU share during the run: %.0f%%%s" % (
            100 * load["other_cpu_share"], " (busy: ratios only)" if load["busy"] else ""))
        return
    imp = {m: statistics.median(v) for m, v in imports.items()}
    fc = {k: statistics.median(v) for k, v in first_call.items() if v}
    fresh = {k: statistics.median(v) for k, v in fresh_client.items() if v}
    stats["c_seq"]["server_cpu_us"] = statistics.median(server_cpu)
    data = {
        "info": info, "rounds": args.rounds, "seconds": args.seconds, "wrk_rps": wrk_rps,
        "placement": placement_text(),
        "runners": [{"key": r.key, "label": r.label, "group": r.group, "ref": r.ref}
                    for r in runners],
        "stats": stats, "first_call": fc, "fresh_client": fresh,
        "first_call_at_ms": 1e3 * statistics.median(first_call_at), "imports": imp, "mem": mem, "ipc": ipc, "misses": misses,
        "prof": prof, "features": features, "load": load, "idle": idle,
        "trees": {m: import_tree(py, m) for m in ("genauth_c", "pycurl")},
        "per_round": per_round, "failures": failures,
    }
    with open(raw, "w") as f:
        json.dump(data, f)
    publish(data)


class Row:
    def __init__(self, key, label, group, ref="c_seq"):
        self.key, self.label, self.group, self.ref = key, label, group, ref


def publish(d):
    runners = [Row(**r) for r in d["runners"]]
    report = render(d, runners)
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write(report)
    write_chart(runners, d["stats"], os.path.join(RESULTS, "chart.png"))
    print(report)


LAYERS = (
    # (layer, test on "file:function [object]"), first match wins.
    ("JSON out: Python objects to the request body",
     lambda k: "src/binding/convert.c" in k and "to_py" not in k
     or "genauth_json_write" in k or "genauth_json_string_new" in k
     or "genauth_json_number_new" in k or "genauth_json_object_add" in k
     or "jsform" in k or "cJSON_Create" in k or "cJSON_Add" in k),
    ("JSON in: parsing the answer", lambda k: "src/core/json.c" in k or "cJSON_Parse" in k
     or re.search(r"\bparse_(value|object|array|string|number)\b", k) is not None
     or "src/core/envelope.c" in k),
    ("Python objects: the result dict", lambda k: "to_py" in k),
    ("headers", lambda k: "curl_slist" in k or "header" in k.lower() and "libcurl" not in k),
    ("token", lambda k: "src/core/token.c" in k or "jwt" in k),
    ("the call's own code (core, binding)", lambda k: "src/core/" in k or "src/binding/" in k),
    ("the interpreter (argument passing, refcounts, GC)", lambda k: "libpython" in object_of(k)
     or "python3" in object_of(k)),
    ("libcurl", lambda k: "libcurl" in object_of(k)),
    ("cJSON (its tree and parser)", lambda k: "libcjson" in object_of(k)),
    ("libc (malloc, memcpy, syscalls' user side)", lambda k: "libc" in object_of(k)),
)


def layers(fns):
    out = {name: 0.0 for name, _ in LAYERS}
    out["other"] = 0.0
    for k, v in fns.items():
        for name, test in LAYERS:
            if test(k):
                out[name] += v
                break
        else:
            out["other"] += v
    return out


def python_layer_misses(ipc, misses, prof):
    """What the Python layer costs per call beyond genauth_c's C core driven
    from C, in instructions and in first-level cache misses (and the layers
    that miss most beyond it): a sentence, empty without those runs."""
    g, c = "genauth_c", "genauth_c's C core"
    if g not in misses or c not in misses or g not in ipc or c not in ipc:
        return ""
    gm, cm = (sum(misses[k].values()) for k in (g, c))
    text = (" Under callgrind, the Python layer adds %+.0f instructions per call to "
            "the core's %.0f (%+.1f%%) but %+.0f first-level cache misses to its %.0f "
            "(%+.0f%%: instruction fetches %.0f against %.0f, data %.0f against %.0f): "
            "each call runs the interpreter's and the binding's code once, after "
            "libcurl and the kernel have evicted it, so its cost in time is the misses "
            "more than the instructions, and it grows when the machine's caches are "
            "slower or shared." % (
                ipc[g] - ipc[c], ipc[c], 100 * (ipc[g] / ipc[c] - 1), gm - cm, cm,
                100 * (gm / cm - 1), misses[g]["I1mr"], misses[c]["I1mr"],
                misses[g]["D1mr"] + misses[g]["D1mw"], misses[c]["D1mr"] + misses[c]["D1mw"]))
    if len(prof.get(g, ())) > 3 and len(prof.get(c, ())) > 3:
        lg, lc = layers(prof[g][3]), layers(prof[c][3])
        diff = sorted(((lg[k] - lc.get(k, 0), k) for k in lg), reverse=True)
        text += " Misses beyond the core by layer: %s." % ", ".join(
            "%s %+.0f" % (k, v) for v, k in diff[:5] if v > 0)
    return text


def render(d, runners):
    info, wrk_rps, st, fc = d["info"], d["wrk_rps"], d["stats"], d["first_call"]
    fresh = d.get("fresh_client", {})
    imp, mem, ipc, prof = d["imports"], d["mem"], d["ipc"], d["prof"]
    misses = d.get("misses", {})  # absent in runs recorded before it
    trees, load, idle = d["trees"], d["load"], d.get("idle")
    L = []
    L.append("# genauth-c benchmark: trigger_webhook on loopback\n")
    if load["busy"]:
        L.append("> **BUSY MACHINE: these figures are not the published ones.** %s. "
                 "Ratios measured beside other work are not comparable; run `make bench` "
                 "again on an idle machine.\n" % "; ".join(load["why"]).capitalize())
    L.append("Machine: %(nproc)s cores (%(cpu)s), Debian %(debian)s, kernel %(kernel)s, "
             "Python %(python)s, libcurl %(libcurl)s (pycurl built against %(pycurl)s), "
             "nginx %(nginx)s; %(date)s." % info)
    L.append("")
    L.append("Load: 1/5/15-minute load average %s before and %s after; processes of "
             "others running before/after: %d/%d; CPU time used by other processes during "
             "the run: %.1f s (%.1f%% of %d cores over %.0f s); CPU steal %.2f%%. "
             "Verdict: **%s**." % (
                 " ".join(load["loadavg_before"]), " ".join(load["loadavg_after"]),
                 load["running_others_before"], load["running_others_after"],
                 load["other_cpu_s"], 100 * load["other_cpu_share"], info["nproc"],
                 load["wall_s"], 100 * load["steal_share"],
                 "busy: " + "; ".join(load["why"]) if load["busy"] else "idle"))
    L.append("")
    L.append("Server: nginx, 1 worker, keep-alive, fixed JSON answers on 127.0.0.1 (HTTP "
             "and HTTPS with a test certificate); under wrk (2 threads, 32 connections, "
             "HTTP) it served **%.0f req/s**, %.1f× the fastest client figure below."
             % (wrk_rps, wrk_rps / max(s["rate"] for s in st.values())))
    L.append("")
    L.append("Method: %d interleaved rounds (every runner once per round, in a seeded "
             "random order that differs from round to round, each in a fresh "
             "process, ~%.1f s per measurement); every figure is the median over rounds. "
             "\"× C loop\" is the ratio to the sequential C loop of the same round; "
             "\"× its C limit\" the ratio to the C reference doing the same shape of work in "
             "the same round: the C multi loop with as many in flight for concurrent rows, "
             "the C loop over TLS for TLS rows (ranges are min–max over rounds). Placement: "
             "%s (bench/run.py, cpu_placement, says why). Produced "
             "by `make bench` (bench/run.py)." % (d["rounds"], d["seconds"],
                                                  d.get("placement", "not recorded")))
    L.append("")
    titles = {"seq": "Sequential", "concurrent": "Concurrent", "tls": "Over TLS"}
    for group in ("seq", "concurrent", "tls"):
        L.append("## %s\n" % titles[group])
        L.append("| runner | calls/s | µs/call | × C loop | × its C limit | range | "
                 "CPU µs/call |")
        L.append("|---|---:|---:|---:|---:|---:|---:|")
        for r in runners:
            if r.group != group:
                continue
            s = st[r.key]
            L.append("| %s | %.0f | %.1f | %.2f× | %.2f× (%s) | %.2f–%.2f | %s |" % (
                r.label, s["rate"], 1e6 / s["rate"], s["ratio"], s["vs_ref"],
                s["ref"], s["vs_ref_lo"], s["vs_ref_hi"],
                "%.1f" % s["cpu_us"] if s["cpu_us"] is not None else ""))
        L.append("")
    L.append("CPU µs/call: the client process's user + system CPU time during the timed "
             "calls, per call (all its threads); the rest of the wall time is nginx and "
             "the round trip.\n")
    L.append("## First call of a fresh client\n")
    L.append("Construction + connect (+ TLS handshake) + the first call (+ the token fetch "
             "for genauth_c and the official SDK; the others are handed the token), in a "
             "process that has already imported the module. Median of rounds; genauth_c's "
             "is the median of four processes a round (three of them run for their first call "
             "alone: their few other calls are not used), and the C programs' that fetch "
             "their token of three, in an order "
             "shuffled with the runners'.\n")
    L.append("Fresh process: the process's first client, made right after the imports. "
             "In a running process: a second client made after the timed calls, with a "
             "token and a connection of its own (the C loop's fresh handle fetches its own "
             "token there, as genauth_c does, and reads the user pool id from it).\n")
    L.append("| client | fresh process, µs | in a running process, µs |")
    L.append("|---|---:|---:|")

    def fresh_cell(key):
        return "%.0f" % fresh[key] if fresh.get(key) else ""

    for r in runners:
        if fc.get(r.key):
            # The C loop's fresh handle fetches its token: on the row below.
            L.append("| %s | %.0f | %s |" % (r.label, fc[r.key],
                                             "" if r.key == "c_seq" else fresh_cell(r.key)))
        if r.key == "c_seq" and fc.get("c_first_token"):
            L.append("| C loop fetching its own token first (genauth_c's work) | %.0f | %s |"
                     % (fc["c_first_token"], fresh_cell("c_seq")))
        if r.key == "c_seq" and fc.get("c_first_token_evicted"):
            L.append("| the same, after evicting the caches (32 MiB written first) | %.0f | |"
                     % fc["c_first_token_evicted"])
        if r.key == "c_seq" and fc.get("c_first_token_late"):
            L.append("| the same, started %.1f ms after its process as genauth_c's is "
                     "(idle until then) | %.0f | |"
                     % (d["first_call_at_ms"], fc["c_first_token_late"]))
    L.append("")
    L.append("## Import time\n")
    L.append("`python -X importtime -c 'import X'`, cumulative, fresh process each, "
             "median of %d.\n" % (3 * d["rounds"]))
    L.append("| module | ms |")
    L.append("|---|---:|")
    for m, v in imp.items():
        L.append("| %s | %.2f |" % (m, v / 1000))
    L.append("")
    if mem:
        L.append("## Memory, %d calls in a fresh process\n" % RSS_CALLS)
        L.append("Peak RSS is ru_maxrss; growth is /proc/self/statm resident from call "
                 "%d to call %d.\n" % (RSS_CALLS // 2, RSS_CALLS))
        L.append("| client | peak RSS MiB | growth KiB |")
        L.append("|---|---:|---:|")
        for k, v in mem.items():
            L.append("| %s | %.1f | %.0f |" % (k, v["maxrss_kib"] / 1024,
                                               v["growth_bytes"] / 1024))
        L.append("")
    if idle:
        L.append("## An idle asyncio client\n")
        L.append("Event-loop wakeups (selector returns) during 2 s of nothing with an "
                 "AsyncManagementClient holding an open connection: %d, against %d for 2 s "
                 "of nothing without it: **%.1f wakeups per second** caused by the client.\n"
                 % (idle["wakeups"], idle["baseline_wakeups"], idle["wakeups_per_s"]))
    if ipc:
        n1, n2 = CALLGRIND_N
        L.append("## Instructions per call (callgrind)\n")
        L.append("User-space instructions, (I(%d) − I(%d)) / %d, `--collect-atstart=yes`, "
                 "default allocator. The C loop builds its body with "
                 "`cJSON_PrintUnformatted` and parses the answer with cJSON; the floor "
                 "posts one prebuilt body and discards the answer: what libcurl alone "
                 "costs.\n" % (n2, n1, n2 - n1))
        if misses:
            L.append("First-level cache misses per call come from callgrind's cache "
                     "simulation (`--cache-sim=yes`, the host's caches as valgrind detects "
                     "them; the kernel's work between calls, which evicts more, is not "
                     "simulated): a miss costs a read from the second-level cache or "
                     "beyond, so at equal instructions the run with more misses takes "
                     "longer.\n")
        extra = " %s |" % miss_header() if misses else ""
        L.append("| runner | Ir/call | × C loop | over the floor |" + extra)
        L.append("|---|---:|---:|---:|" + ("---:|---:|" if misses else ""))
        for k, v in ipc.items():
            L.append("| %s | %.0f | %.3f× | %+.0f |%s" % (
                k, v, v / ipc["C loop"], v - ipc["C floor"],
                " %s |" % miss_cells(misses.get(k)) if misses else ""))
        L.append("")
    if prof:
        g, fl = layers(prof["genauth_c"][0]), layers(prof["C floor"][0])
        cl = layers(prof["C loop"][0])
        L.append("### What each layer adds per call\n")
        L.append("Self Ir per call grouped by layer (callgrind per function); the floor "
                 "has only libcurl's and libc's share.\n")
        L.append("| layer | genauth_c | C loop | C floor |")
        L.append("|---|---:|---:|---:|")
        for name in list(g):
            if max(abs(g[name]), abs(cl[name]), abs(fl[name])) >= 50:
                L.append("| %s | %.0f | %.0f | %.0f |" % (name, g[name], cl[name], fl[name]))
        L.append("")
        L += miss_layer_table(prof)

    # Targets (issues 10 and 12), each from this run's figures.
    T = []

    def target(name, ok, figure):
        T.append((name, "MET" if ok else "NOT MET", figure))

    if ipc:
        x = ipc["genauth_c"] / ipc["C loop"]
        target("instructions per call ≤ 1.03× the C loop (stretch: < 1.0×)", x <= 1.03,
               "%.3f×%s" % (x, " (stretch met)" if x < 1.0 else ""))
    x = st["gc_seq"]["vs_ref"]
    target("sequential wall time ≥ 0.97× the C loop", x >= 0.97, "%.2f×" % x)
    x = st["gc_b16"]["vs_ref"]
    target("batch of 16 in flight ≥ 0.95× the C multi loop with 16", x >= 0.95, "%.2f×" % x)
    if st["gc_b16"]["cpu_us"] and st["c_multi16"]["cpu_us"]:
        x = st["gc_b16"]["cpu_us"] / st["c_multi16"]["cpu_us"]
        target("batch CPU per call ≤ 1.1× the C multi loop's", x <= 1.1, "%.2f×" % x)
    x = st["gc_t4"]["vs_ref"]
    target("4 threads ≥ 0.85× the C multi loop with 4", x >= 0.85, "%.2f×" % x)
    if fc.get("gc_seq") and fc.get("c_seq"):
        x = fc["gc_seq"] / fc["c_seq"]
        target("first call (token included) ≤ 1.1× the C loop's (handed its token)",
               x <= 1.1, "%.2f×" % x)
    if fc.get("gc_seq") and fc.get("c_first_token"):
        x = fc["gc_seq"] / fc["c_first_token"]
        target("first call ≤ 1.1× the C loop's that fetches its token too", x <= 1.1,
               "%.2f×" % x)
    if fc.get("gc_seq") and fc.get("c_first_token_late"):
        x = fc["gc_seq"] / fc["c_first_token_late"]
        target("first call ≤ 1.1× the same C program's started as late after its "
               "process's start", x <= 1.1, "%.2f×" % x)
    if fresh.get("gc_seq") and fresh.get("c_seq"):
        x = fresh["gc_seq"] / fresh["c_seq"]
        target("a fresh client's first call in a running process ≤ 1.1× the C loop's "
               "fresh handle's (token fetch included)", x <= 1.1, "%.2f×" % x)
    x = st["gc_seq_tls"]["vs_ref"]
    target("over TLS, kept alive: ≥ 0.95× the C loop over TLS", x >= 0.95,
           "%.2f×; %.1f× the official SDK over TLS" % (
               x, st["gc_seq_tls"]["rate"] / st["sdk_seq_tls"]["rate"]))
    if "gc_a16" in st:
        x = st["gc_a16"]["vs_ref"]
        target("asyncio, 16 tasks ≥ 0.75× the C multi loop with 16", x >= 0.75, "%.2f×" % x)
        if "aio16" in st:
            x = st["gc_a16"]["rate"] / st["aio16"]["rate"]
            target("asyncio, 16 tasks ≥ 4× aiohttp with 16 tasks", x >= 4.0, "%.2f×" % x)
        if st["gc_a16"]["cpu_us"] and st["c_multi16"]["cpu_us"]:
            x = st["gc_a16"]["cpu_us"] / st["c_multi16"]["cpu_us"]
            target("asyncio CPU per call ≤ 1.5× the C multi loop's", x <= 1.5, "%.2f×" % x)
    if idle:
        target("an idle asyncio client wakes the loop 0 times per second",
               idle["wakeups_per_s"] == 0, "%.1f/s" % idle["wakeups_per_s"])
    base = BASELINE
    target("import time no worse than before (%.1f ms, within 10%%)" % base["import_ms"],
           imp["genauth_c"] / 1000 <= base["import_ms"] * 1.1,
           "%.2f ms" % (imp["genauth_c"] / 1000))
    if mem:
        a = mem["genauth_c"]["maxrss_kib"] / 1024
        target("peak RSS no worse than before (%.1f MiB, within 10%%)" % base["peak_rss_mib"],
               a <= base["peak_rss_mib"] * 1.1, "%.1f MiB" % a)
        g = mem["genauth_c"]["growth_bytes"]
        target("RSS growth 50k→100k calls < 1 MiB", g < 1 << 20, "%.0f KiB" % (g / 1024))
    L.append("## Targets\n")
    if load["busy"]:
        L.append("(Taken on a busy machine: see the top of this page.)\n")
    L.append("| target | result | figure |")
    L.append("|---|---|---|")
    for name, res, fig in T:
        L.append("| %s | **%s** | %s |" % (name, res, fig))
    L.append("")

    if prof:
        L.append("## Where the instructions go (callgrind, per call)\n")
        L.append("Self Ir per call by shared object, I(%d) − I(%d) per call, so start-up "
                 "is excluded.\n" % (CALLGRIND_N[1], CALLGRIND_N[0]))
        keys = [k for k in ("genauth_c", "C loop", "C floor", "genauth_c batch 16",
                            "C multi 16") if k in prof]
        objs = sorted(set().union(*(prof[k][1] for k in keys)),
                      key=lambda o: -prof["genauth_c"][1].get(o, 0))
        L.append("| object | " + " | ".join("%s Ir/call" % k for k in keys) + " |")
        L.append("|---|" + "---:|" * len(keys))
        for o in objs:
            vals = [prof[k][1].get(o, 0) for k in keys]
            if max(abs(v) for v in vals) >= 50:
                L.append("| %s | " % o + " | ".join("%.0f" % v for v in vals) + " |")
        L.append("")
        labels = anonymous_labels(prof)
        for key in ("genauth_c", "genauth_c batch 16"):
            if key not in prof:
                continue
            fns, total = prof[key][0], ipc[key]
            L.append("Top functions of the %s run, self Ir per call:\n" % key)
            L.append("| function | object | Ir/call | share |")
            L.append("|---|---|---:|---:|")
            for k, v in sorted(fns.items(), key=lambda kv: -kv[1])[:25]:
                L.append("| %s | %s | %.0f | %.1f%% |" % (
                    fn_md(k, labels), object_of(k), v, 100 * v / total))
            L.append("")
        if labels:
            L.append("An address is an internal function of a stripped library; \"near X\" "
                     "names the first named function found calling into the chain of its "
                     "costliest callers (callgrind's caller tree).\n")
        L.extend(libcurl_printf_share(ipc, prof))
    if d.get("failures"):
        L.append("## Failed measurements\n")
        L.append("Each was retried once and the retry's figure used; a failure is a "
                 "client error on a server that answers every request the same way:\n")
        L.extend("- %s" % f for f in d["failures"])
        L.append("")
    L.extend(analysis(T, st, ipc, prof, trees, imp, fc, fresh,
                      d.get("first_call_at_ms", 0), misses))
    return "\n".join(L) + "\n"


def libcurl_printf_share(ipc, prof):
    """How much of a call is libcurl's own printf (its functions and the
    internal ones near them), in genauth_c and the C loop alike: libcurl
    writes each header line of a request with it (Curl_dyn_addf, "%s\\r\\n"),
    a byte at a time through a callback in 7.88."""
    if "genauth_c" not in prof or "C loop" not in prof:
        return []
    labels = anonymous_labels(prof)

    def printf_ir(fns):
        return sum(v for k, v in fns.items() if object_of(k).startswith("libcurl") and
                   "printf" in (labels.get(k) or function_of(k)))

    g, c = printf_ir(prof["genauth_c"][0]), printf_ir(prof["C loop"][0])
    if g < 0.05 * ipc["genauth_c"]:
        return []
    return ["libcurl's printf and the functions near it take %.0f Ir of each genauth_c "
            "call (%.0f%%) and %.0f of each C loop call (%.0f%%): libcurl formats the "
            "request's header lines with it, the token's among them. "
            "Both pay it alike; only a client writing its own requests would not.\n"
            % (g, 100 * g / ipc["genauth_c"], c, 100 * c / ipc["C loop"])]


# The figures of the last published run before this benchmark's rework, for
# the "no regression" targets.
BASELINE = {"import_ms": 11.0, "peak_rss_mib": 17.9}


def import_tree(py, module):
    """(self µs, cumulative µs, name) of each module `import module` loads."""
    p = subprocess.run([py, "-X", "importtime", "-c", "import " + module],
                       capture_output=True, text=True, check=True, cwd=HERE)
    rows = []
    for line in p.stderr.splitlines():
        parts = [x.strip() for x in line.split(":", 1)[-1].split("|")]
        if len(parts) == 3 and parts[0].isdigit():
            rows.append((int(parts[0]), int(parts[1]), parts[2]))
    return rows


def analysis(T, st, ipc, prof, trees, imp, fc, fresh, first_call_at_ms, misses):
    """What stands in the way of each target not met, from this run's own
    profile: the functions where genauth_c spends more than the C loop."""
    missed = [name for name, res, _ in T if res == "NOT MET"]
    L = ["## What stands in the way\n"]
    if not missed:
        L.append("Every target checked in this run was met.\n")
        return L
    L.append("Targets not met: %s.\n" % "; ".join(missed))
    if prof and "genauth_c" in prof:
        g, c, labels = prof["genauth_c"][0], prof["C loop"][0], anonymous_labels(prof)
        diff = sorted(((g.get(k, 0) - c.get(k, 0), k) for k in set(g) | set(c)),
                      reverse=True)
        L.append("- Per call, genauth_c executes %.0f Ir against the C loop's %.0f and the "
                 "floor's %.0f. The functions where it spends most beyond the C loop "
                 "(Ir/call): %s." % (
                     ipc["genauth_c"], ipc["C loop"], ipc["C floor"],
                     ", ".join("%s %+.0f" % (fn_md(k, labels), v) for v, k in diff[:12])))
        if "genauth_c batch 16" in prof:
            b = prof["genauth_c batch 16"][0]
            bd = sorted(((b.get(k, 0) - g.get(k, 0), k) for k in set(b) | set(g)),
                        reverse=True)
            L.append("- A batch call against a single call (Ir/call): %s." % ", ".join(
                "%s %+.0f" % (fn_md(k, labels), v) for v, k in bd[:10]))
    def ratio(a, b):
        return st[a]["rate"] / st[b]["rate"] if a in st and b in st else None

    if any(m.startswith("sequential") for m in missed) and ratio("core_seq", "c_seq"):
        L.append("- Sequential: genauth_c's C core driven by a C program runs at %.2f× the C "
                 "loop and genauth_c at %.2f× its core in this run (CPU per call: %.1f, %.1f "
                 "and %.1f µs for the C loop, the core and genauth_c). Instructions per call "
                 "are below the C loop's (above): what is left is the Python layer around "
                 "each call (the interpreter's call, argument conversion, the result dict, "
                 "releasing and taking back the GIL around the wait) and the spread between "
                 "rounds (the range in the table).%s" % (
                     ratio("core_seq", "c_seq"), ratio("gc_seq", "core_seq"),
                     st["c_seq"]["cpu_us"] or 0, st["core_seq"]["cpu_us"] or 0,
                     st["gc_seq"]["cpu_us"] or 0, python_layer_misses(ipc, misses, prof)))
    if any(m.startswith("sequential") for m in missed):
        L.append("- Where the time goes, measured apart from this run on this machine "
                 "(2026-11-30): with the client and nginx pinned to one and the same CPU, "
                 "so that no answer has to wake the other CPU, a sequential call took "
                 "35.3 µs for genauth_c, 32.9 for its core driven from C, 32.1 for the C "
                 "loop and 30.6 for the floor (medians of 4 runs of 20,000 calls): there "
                 "the Python layer costs 2.4 µs of CPU per call and the core 0.8 more "
                 "than the C loop, though it executes fewer instructions (above). The "
                 "core's share is mostly libcurl's curl_multi_remove_handle walking its "
                 "multi handle's 97-slot connection hash at every transfer's end (718 Ir "
                 "and 44 first-level data-cache misses per call under callgrind's cache "
                 "simulation), where curl_easy_perform's own multi handle, the C loop's, "
                 "has 3 slots; curl_easy_perform would cost a poll() more per call "
                 "instead (it polls before its first transfer step). On separate CPUs, as "
                 "here (Placement, above), the same calls take about 94 µs for genauth_c "
                 "and 85 for the C loop (medians of 7 runs of 8,000): an idle virtual CPU "
                 "of this machine halts at once (haltpoll, guest_halt_poll_ns=0 on the "
                 "kernel's command line), every answer wakes one, and a microsecond of "
                 "the client's CPU per call shows as about three of wall time.")
    if any(m.startswith("batch") for m in missed):
        L.append("- Batch: it is CPU-bound (CPU per call about equals wall time per call "
                 "above), and what it spends beyond the C multi loop is mostly memory, not "
                 "instructions (the batch line above): a batch returns every call's answer, "
                 "so it holds every result until its last call ends, where the C multi "
                 "loop frees each answer once it has read it. Each result is made as its "
                 "call ends, freeing the call's envelope and request then, and each request "
                 "waits as its written body, one block of Python's allocator that the "
                 "results reuse once the call has ended; still, a process's first batch "
                 "touches the results' memory for the first time: 0.24 page faults per call "
                 "against the C multi loop's 0.02 (0.60 when every envelope was held to the "
                 "end; getrusage, 40,000 calls, measured apart from this run), each about "
                 "1.5 µs on this machine. The same C program keeping every parsed answer "
                 "until its last call ends runs at %.2f× the C multi loop in this run, and "
                 "genauth_c's batch at %.2f× that program."
                 % (ratio("c_multi16_keep", "c_multi16") or 0,
                    ratio("gc_b16", "c_multi16_keep") or 0))
    if any(m.startswith("asyncio") for m in missed) and ratio("gc_a16", "aio16"):
        L.append("- asyncio: 16 tasks on one event loop run at %.2f× the C multi loop and "
                 "%.2f× aiohttp in this run (CPU per call %.1f µs against aiohttp's %.1f and "
                 "the C multi loop's %.1f). The loop's own work per call (a future, a "
                 "callback, the selector's wake-up) is Python code the C multi loop does "
                 "not run, and both ratios move with the spread between rounds (the ranges "
                 "in the table)." % (
                     ratio("gc_a16", "c_multi16"), ratio("gc_a16", "aio16"),
                     st["gc_a16"]["cpu_us"] or 0, st["aio16"]["cpu_us"] or 0,
                     st["c_multi16"]["cpu_us"] or 0))
    if any(m.startswith("4 threads") for m in missed) and ratio("c_t4", "c_multi4"):
        L.append("- Threads: each call drives its own transfer on its connection handle's "
                 "multi handle, so threads do not wait for one another. In this run C "
                 "threads with a handle each run at %.2f× the C multi loop with 4, and "
                 "genauth_c's C core with 4 C threads at %.2f× (CPU per call %.1f and %.1f "
                 "µs, genauth_c %.1f): what is left is the Python layer, whose threads take "
                 "turns at the GIL for the arguments and the result of every call, and the "
                 "spread between rounds. With the 4 threads and nginx all on one CPU "
                 "(measured apart from this run, 2 runs of 20,000 calls), genauth_c ran at "
                 "0.84× the C multi loop with 4 and C threads at 0.96×: across two CPUs, "
                 "a thread that finds the GIL taken sleeps and is woken by the one "
                 "releasing it, one more wake-up of the other CPU." % (
                     ratio("c_t4", "c_multi4"), ratio("core_t4", "c_multi4") or 0,
                     st["c_t4"]["cpu_us"] or 0, st.get("core_t4", {}).get("cpu_us") or 0,
                     st["gc_t4"]["cpu_us"] or 0))
    if any("first call" in m for m in missed):
        L.append("- First call of a fresh process: genauth_c takes %.0f µs, and the C program "
                 "that fetches its token takes %.0f when it starts at once; started as long "
                 "after its process's start as genauth_c's first call is (%.1f ms: Python's "
                 "start-up and the imports), idle until then, it takes %.0f (genauth_c "
                 "%.2f× of that). Time alone slows a first call on this machine: measured "
                 "apart from this run (21 processes each), the C program took 392 µs at "
                 "once, 413 after sleeping 1 ms, 449 after 5, 487 after 10, 495 after 20 and "
                 "501 after 50; spinning 20 ms on its CPU instead of sleeping gave 455, and "
                 "writing 32 MiB first gives %.0f in this run. So of the %.0f µs between "
                 "genauth_c's first call and the C program's at once, idling while a "
                 "process starts accounts for %.0f (the other CPU, nginx's worker and the "
                 "kernel's network code go cold on this virtual machine), and %.0f are "
                 "genauth_c's own. A first call also varies by a third from one process to "
                 "the next, so these medians move by some tens of µs from run to run. "
                 "genauth_c's first call executes fewer instructions than the C program's "
                 "(294k against 301k Ir, callgrind with collection toggled around the "
                 "client's making and its first call, three processes each; the C program "
                 "reads the user pool id from the token's JWT payload, as the protocol "
                 "requires: 14k of its 301k) with the same system calls (`strace -f`); "
                 "measured apart from this run (21 processes each, started as late), "
                 "genauth_c's C core called from a C program took 1.06× the C program, and "
                 "genauth_c 1.07× its core."
                 % (fc.get("gc_seq", 0), fc.get("c_first_token", 0),
                    first_call_at_ms, fc.get("c_first_token_late", 0),
                    fc.get("gc_seq", 0) / fc.get("c_first_token_late", 1),
                    fc.get("c_first_token_evicted", 0),
                    fc.get("gc_seq", 0) - fc.get("c_first_token", 0),
                    fc.get("c_first_token_late", 0) - fc.get("c_first_token", 0),
                    fc.get("gc_seq", 0) - fc.get("c_first_token_late", 0)))
        if fresh.get("gc_seq") and fresh.get("c_seq"):
            L.append("  A fresh client in a process that has made calls (its own token "
                     "fetch and connection, the same work; each side's clock stops before "
                     "the client's teardown) takes %.0f µs against the C loop's fresh "
                     "handle's %.0f (%.2f×). It is the first client made after thousands "
                     "of identical calls, whose code they left out of the caches, and it "
                     "is barely more work: callgrind counts 295k Ir for genauth_c's window "
                     "against 285k for the C loop's fresh handle (1.03×; collection toggled "
                     "around each window), 30k of genauth_c's in making the client "
                     "(argument parsing, the proxy variables read from the environment, the "
                     "client's URLs and header lines, and malloc gathering freed chunks "
                     "before the client's first large block). Split at the socket-level "
                     "steps both take (`make bench-phases`: a preloaded library stamping "
                     "socketpair, socket, connect, send and recv; 15 rounds after 8,000 "
                     "calls, measured apart from this run), every step from libcurl's "
                     "multi handle to the answer's last byte takes as long in genauth_c "
                     "as in the C loop, within 1 to 4 µs each (the connection set up 21 "
                     "against 22, the TCP connect 67 against 64, the waits for the token "
                     "and the answer 50 and 51 against 46 and 50), and reading the answer "
                     "into Python objects adds 7; the difference lies before libcurl's "
                     "multi handle is made: 82 µs against 26. Marks in a build of this "
                     "tree, measured apart, place it: about 20 µs of the runner's own "
                     "Python before the constructor is entered and 10 between its return "
                     "and trigger_webhook (a call of a Python function, cold after "
                     "thousands of calls, takes 7 to 13 µs here), 33 in the constructor, "
                     "15 of them in curl_share_init and its options (about 1k "
                     "instructions, which take 0.9 µs called from a C program: memory "
                     "the calls left cold), and 8 in the connection's curl_easy_init and "
                     "options, as in the C loop. Each of the two exchanges waits 17 or "
                     "50 µs for the server on this virtual machine, for either client, as "
                     "nginx's worker wakes on one CPU or the other, so one fresh client's "
                     "time moves by tens of µs from one process to the next. The timed "
                     "window holds no import machinery: a `from genauth_c import "
                     "ManagementClient` inside it ran importlib's Python code, cold, "
                     "for about 25 µs (the runners use `import genauth_c`)."
                     % (fresh["gc_seq"], fresh["c_seq"], fresh["gc_seq"] / fresh["c_seq"]))
    if any("import" in m for m in missed):
        top = sorted(trees["genauth_c"], reverse=True)[:5]
        L.append("- Import: the largest self times under `import genauth_c`: %s (µs)."
                 % ", ".join("`%s` %d" % (n, s) for s, _, n in top))
    L.append("")
    return L


if __name__ == "__main__":
    main()
