"""The genauth-c benchmark (issue 4): genauth_c against a plain C
libcurl+cJSON loop (the limit), pycurl, requests.Session and the official
Python SDK, all calling trigger-webhook on a local nginx.

    bench/.venv/bin/python bench/run.py [--rounds 5] [--seconds 0.7]

(`make bench` installs everything and runs this.) Writes
bench/results/results.md and bench/results/chart.png and prints the table.

How it measures, and why:
- nginx (Debian's) serves fixed answers from one worker with keep-alive, so the
  server is identical for every client and far faster than any of them (wrk
  checks that once).
- Each measurement is a fresh process (workers.py, or the C loop), so no
  client inherits another's heap, threads or connections.
- The measurements run interleaved, A B C ... A B C, for several rounds; every
  figure is a median over rounds and is also given as a ratio to the C loop
  of the same round, which cancels most of a shared, noisy machine's drift.
- Instructions per call come from callgrind as (I(N2) - I(N1)) / (N2 - N1):
  start-up cancels, and instruction counts barely move with machine noise.
"""
import argparse
import base64
import datetime
import json
import os
import platform
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


class Nginx:
    """Debian's nginx in the foreground (daemon off) in its own process group,
    from a config generated into a temporary directory."""

    def __init__(self, token):
        self.tmp = tempfile.mkdtemp(prefix="genauth-bench-")
        self.port = free_port()
        token_json = json.dumps({"statusCode": 200, "message": "Operation successful",
                                 "data": {"access_token": token, "expires_in": 7200}},
                                separators=(",", ":"))
        with open(os.path.join(HERE, "nginx.conf.in")) as f:
            conf = f.read()
        for name, value in (("TMPDIR", self.tmp), ("PORT", str(self.port)),
                            ("TOKEN_JSON", token_json), ("WEBHOOK_JSON", WEBHOOK_JSON)):
            conf = conf.replace("@%s@" % name, value)
        self.conf = os.path.join(self.tmp, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.proc = None

    @property
    def host(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self):
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        # -e: the error log before the config is read; Debian's default path
        # may not be writable, and this run should leave nothing outside tmp.
        self.proc = subprocess.Popen(
            [nginx, "-p", self.tmp, "-e", os.path.join(self.tmp, "error.log"),
             "-c", self.conf], start_new_session=True)
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
        total, tick = 0, os.sysconf("SC_CLK_TCK")
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # After "pid (comm)": state is [0], session id [3], utime [11], stime [12].
            if int(fields[3]) == self.proc.pid:
                total += int(fields[11]) + int(fields[12])
        return total / tick

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
    """One thing to measure: `argv(n)` is the command for n calls."""

    def __init__(self, key, label, argv, pilot, group, calls_per_unit=1):
        self.key, self.label, self._argv = key, label, argv
        self.pilot = pilot  # calls for the sizing run
        self.group = group  # "seq" or "concurrent", for the chart
        self.unit = calls_per_unit  # n is rounded to a multiple of this
        self.n = None

    def argv(self, n):
        return self._argv(n)


def run_json(argv, env, timeout=600):
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                       cwd=HERE)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(argv[:4]), p.returncode,
                                                    p.stderr[-3000:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def build_c_loop():
    os.makedirs(BUILD, exist_ok=True)
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libcurl", "libcjson"],
                           capture_output=True, text=True, check=True).stdout.split()
    # -g only for callgrind's function names; -O2 as a C user would build it.
    subprocess.run(["gcc", "-O2", "-g", "-Wall", "-Wextra", "-o", C_LOOP, C_LOOP_SRC]
                   + flags, check=True)


def make_runners(py, host, token, have_batch):
    url = host + "/api/v3/trigger-webhook"

    def c(mode, k=16):
        return lambda n: [C_LOOP, mode, str(n), url, token, USERPOOL_ID, str(k)]

    def w(client, mode, k=1):
        return lambda n: [py, WORKERS, client, mode, str(n), host, str(k)]

    rs = [
        Runner("c_seq", "C loop (libcurl + cJSON)", c("seq"), 500, "seq"),
        Runner("c_multi16", "C loop, 16 in flight (curl multi)", c("multi"), 2000,
               "concurrent", 16),
        Runner("gc_seq", "genauth_c", w("genauth_c", "seq"), 500, "seq"),
        Runner("gc_t4", "genauth_c, 4 threads", w("genauth_c", "threads", 4), 1000,
               "concurrent", 4),
        Runner("gc_t16", "genauth_c, 16 threads", w("genauth_c", "threads", 16), 1000,
               "concurrent", 16),
    ]
    if have_batch:
        rs += [
            Runner("gc_b16", "genauth_c, batch 16 in flight",
                   w("genauth_c", "batch", 16), 2000, "concurrent", 16),
            Runner("gc_b64", "genauth_c, batch 64 in flight",
                   w("genauth_c", "batch", 64), 2000, "concurrent", 64),
        ]
    rs += [
        Runner("pc_seq", "pycurl", w("pycurl", "seq"), 500, "seq"),
        Runner("pc_t4", "pycurl, 4 threads (a handle each)", w("pycurl", "threads", 4),
               1000, "concurrent", 4),
        Runner("rq_seq", "requests.Session", w("requests", "seq"), 200, "seq"),
        Runner("rq_t4", "requests.Session, 4 threads", w("requests", "threads", 4), 400,
               "concurrent", 4),
        Runner("sdk_seq", "official SDK (genauth 5.1.0)", w("genauth", "seq"), 100, "seq"),
    ]
    return rs


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

def callgrind(argv, out_file, env):
    subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=yes",
                    "--callgrind-out-file=" + out_file] + argv,
                   env=env, check=True, capture_output=True, timeout=900, cwd=HERE)
    with open(out_file) as f:
        for line in f:
            if line.startswith(("totals:", "summary:")):
                return int(line.split()[1])
    raise RuntimeError("no totals in " + out_file)


FN_LINE = re.compile(r"^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(\S.*?)\s*$")


def per_function(out_file):
    """Self Ir per function ("file:function [object]") from callgrind_annotate."""
    p = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no",
                        "--auto=no", out_file], capture_output=True, text=True, check=True)
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
        m = FN_LINE.match(line)
        if m:
            name = m.group(2)
            fns[name] = fns.get(name, 0) + int(m.group(1).replace(",", ""))
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


def profile_per_call(f1, f2, n1, n2):
    """Per-call Ir by function and by shared object: I(N2) - I(N1) per call,
    so start-up and import drop out of the profile too."""
    a, b = per_function(f1), per_function(f2)
    fn = {k: (b.get(k, 0) - a.get(k, 0)) / (n2 - n1) for k in set(a) | set(b)}
    objs = {}
    for k, v in fn.items():
        objs[object_of(k)] = objs.get(object_of(k), 0) + v
    return fn, objs


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

    order = [r for r in runners if r.group == "seq"] + \
            [r for r in runners if r.group == "concurrent"]
    order = [r for r in order if r.key in stats]
    labels = [r.label for r in order][::-1]
    vals = [stats[r.key]["ratio"] for r in order][::-1]
    colors = []
    for r in order[::-1]:
        if r.key.startswith("c_"):
            colors.append("#7f7f7f")
        elif r.key.startswith("gc_"):
            colors.append("#1f77b4" if r.group == "seq" else "#2ca02c")
        else:
            colors.append("#ff7f0e")
    fig, ax = plt.subplots(figsize=(10, 0.48 * len(order) + 2.2), dpi=110)
    bars = ax.barh(labels, vals, color=colors)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    for b, v in zip(bars, vals):
        ax.text(b.get_width() + 0.05, b.get_y() + b.get_height() / 2, "%.2f×" % v,
                va="center", fontsize=9)
    n_seq = sum(1 for r in order if r.group == "seq")
    ax.axhline(len(order) - n_seq - 0.5, color="#cccccc", linewidth=0.8)
    ax.set_xlim(0, max(vals) * 1.15)
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color="#7f7f7f", label="C libcurl+cJSON loop (the limit)"),
                       Patch(color="#1f77b4", label="genauth_c, sequential"),
                       Patch(color="#2ca02c", label="genauth_c, concurrent"),
                       Patch(color="#ff7f0e", label="other Python clients"),
                       Line2D([], [], color="black", linestyle="--",
                              label="sequential C loop = 1.0")],
              loc="upper center", bbox_to_anchor=(0.5, -0.09), ncol=3, fontsize=9,
              frameon=False)
    ax.set_xlabel("throughput relative to the sequential C libcurl+cJSON loop "
                  "(higher is better; median of rounds)")
    ax.set_title("trigger_webhook on loopback nginx: sequential (top) and concurrent")
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=0.7,
                    help="target duration of one measurement")
    ap.add_argument("--python", default=sys.executable,
                    help="the benchmark venv's python (workers run under it)")
    ap.add_argument("--skip-callgrind", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite results.md and chart.png from the last run's raw data")
    args = ap.parse_args()
    py = args.python
    os.makedirs(RESULTS, exist_ok=True)
    raw = os.path.join(BUILD, "last-run.json")  # git-ignored: build/
    if args.render_only:
        with open(raw) as f:
            publish(json.load(f))
        return

    info = machine_info(py)
    log("machine: %(nproc)s cores, %(cpu)s, libcurl %(libcurl)s" % info)
    build_c_loop()
    have_batch = subprocess.run(
        [py, "-c", "import sys, genauth_c; "
         "sys.exit(0 if hasattr(genauth_c.ManagementClient, 'trigger_webhooks') else 3)"],
        cwd=HERE).returncode == 0
    if not have_batch:
        log("genauth_c has no trigger_webhooks yet: batch figures skipped")

    token = make_token()
    env = dict(os.environ, BENCH_TOKEN=token, BENCH_USERPOOL_ID=USERPOOL_ID)
    nginx = Nginx(token)
    try:
        nginx.start()
        log("nginx on %s" % nginx.host)
        with open(os.path.join(HERE, "wrk_post.lua")) as f:
            body = "".join(re.findall(r"'([^']*)'", f.read().split("wrk.body", 1)[1]))
        check_keepalive(nginx.port, body)
        wrk_rps = wrk_capacity(nginx, token)
        log("nginx under wrk: %.0f req/s" % wrk_rps)

        runners = make_runners(py, nginx.host, token, have_batch)
        log("sizing (%.1f s per measurement):" % args.seconds)
        size_runners(runners, env, args.seconds)

        # Interleaved rounds: every runner once per round, in the same order.
        per_round = {r.key: [] for r in runners}
        first_call = {r.key: [] for r in runners if r.group == "seq"}
        cpu = {r.key: [] for r in runners if r.group == "seq"}
        imports = {m: [] for m in ("genauth_c", "pycurl", "requests", "genauth")}
        connects, server_cpu, failures = [], [], []
        for rnd in range(args.rounds):
            t0 = time.monotonic()
            for r in runners:
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
                    cpu[r.key].append(out["cpu_s"] * 1e6 / out["calls"])
                if r.key == "c_seq":
                    connects.append(out["connects"])
            for _ in range(3):
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
            # Medians of rounds.
            stats[r.key] = {"rate": statistics.median(rates),
                            "ratio": statistics.median(ratios),
                            "lo": min(ratios), "hi": max(ratios),
                            "cpu_us": statistics.median(cpu[r.key]) if r.key in cpu else None}

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
        ipc, prof = {}, {}
        if not args.skip_callgrind:
            n1, n2 = CALLGRIND_N
            cg_dir = tempfile.mkdtemp(prefix="genauth-callgrind-")
            try:
                for key, argv in (
                        ("C loop", lambda n: [C_LOOP, "seq", str(n),
                                              nginx.host + "/api/v3/trigger-webhook",
                                              token, USERPOOL_ID]),
                        ("genauth_c", lambda n: [py, WORKERS, "genauth_c", "loop", str(n),
                                                 nginx.host])):
                    log("callgrind: %s, %d and %d calls" % (key, n1, n2))
                    f1, f2 = (os.path.join(cg_dir, "%s.%d" % (key.replace(" ", "_"), n))
                              for n in (n1, n2))
                    i1, i2 = callgrind(argv(n1), f1, env), callgrind(argv(n2), f2, env)
                    ipc[key] = (i2 - i1) / (n2 - n1)
                    prof[key] = profile_per_call(f1, f2, n1, n2)
            finally:
                shutil.rmtree(cg_dir, ignore_errors=True)
    finally:
        nginx.stop()

    imp = {m: statistics.median(v) for m, v in imports.items()}
    fc = {k: statistics.median(v) for k, v in first_call.items()}
    stats["c_seq"]["server_cpu_us"] = statistics.median(server_cpu)
    data = {
        "info": info, "rounds": args.rounds, "seconds": args.seconds, "wrk_rps": wrk_rps,
        "runners": [{"key": r.key, "label": r.label, "group": r.group} for r in runners],
        "stats": stats, "first_call": fc, "imports": imp, "mem": mem, "ipc": ipc,
        "prof": prof, "have_batch": have_batch,
        "trees": {m: import_tree(py, m) for m in ("genauth_c", "pycurl")},
        "per_round": per_round, "failures": failures,
    }
    with open(raw, "w") as f:
        json.dump(data, f)
    publish(data)


class Row:
    def __init__(self, key, label, group):
        self.key, self.label, self.group = key, label, group


def publish(d):
    runners = [Row(**r) for r in d["runners"]]
    report = render(d, runners)
    with open(os.path.join(RESULTS, "results.md"), "w") as f:
        f.write(report)
    write_chart(runners, d["stats"], os.path.join(RESULTS, "chart.png"))
    print(report)


def render(d, runners):
    info, wrk_rps, st, fc = d["info"], d["wrk_rps"], d["stats"], d["first_call"]
    imp, mem, ipc, prof = d["imports"], d["mem"], d["ipc"], d["prof"]
    have_batch, trees = d["have_batch"], d["trees"]
    L = []
    L.append("# genauth-c benchmark: trigger_webhook on loopback\n")
    L.append("Machine: %(nproc)s cores (%(cpu)s), Debian %(debian)s, kernel %(kernel)s, "
             "Python %(python)s, libcurl %(libcurl)s (pycurl built against %(pycurl)s), "
             "nginx %(nginx)s; %(date)s." % info)
    L.append("")
    L.append("Server: nginx, 1 worker, keep-alive, fixed JSON answers on 127.0.0.1; "
             "under wrk (2 threads, 32 connections) it served **%.0f req/s**, %.1f× the "
             "fastest client figure below, so it is not the bottleneck."
             % (wrk_rps, wrk_rps / max(s["rate"] for s in st.values())))
    L.append("")
    L.append("Method: %d interleaved rounds (every runner once per round, each in a fresh "
             "process, ~%.1f s per measurement); medians over rounds. The ratio is to the "
             "sequential C loop of the same round (median of the per-round ratios; the "
             "range is their min–max). Produced by `make bench` (bench/run.py)."
             % (d["rounds"], d["seconds"]))
    L.append("")
    L.append("## Throughput\n")
    L.append("| runner | calls/s | µs/call | × C loop | range | CPU µs/call |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for r in runners:
        s = st[r.key]
        L.append("| %s | %.0f | %.1f | %.2f× | %.2f–%.2f | %s |" % (
            r.label, s["rate"], 1e6 / s["rate"], s["ratio"], s["lo"], s["hi"],
            "%.1f" % s["cpu_us"] if s["cpu_us"] is not None else ""))
    if not have_batch:
        L.append("| genauth_c, batch 16 / 64 in flight | — | — | — | not measured: "
                 "`trigger_webhooks` not in this build | |")
    L.append("")
    L.append("Concurrent rows: µs/call is wall time divided by calls. CPU µs/call "
             "(sequential rows): the client process's user + system CPU time per call; "
             "the rest of the wall time is nginx and the round trip.\n")
    L.append("## First call of a fresh client\n")
    L.append("Construction + connect + the first call (+ the token fetch for genauth_c "
             "and the official SDK; the others are handed the token), in a process that "
             "has already imported the module. Median of rounds.\n")
    L.append("| client | µs |")
    L.append("|---|---:|")
    for r in runners:
        if r.key in fc:
            L.append("| %s | %.0f |" % (r.label, fc[r.key]))
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
    if ipc:
        n1, n2 = CALLGRIND_N
        L.append("## Instructions per call (callgrind)\n")
        L.append("User-space instructions, (I(%d) − I(%d)) / %d, `--collect-atstart=yes`, "
                 "default allocator.\n" % (n2, n1, n2 - n1))
        L.append("| runner | Ir/call | × C loop |")
        L.append("|---|---:|---:|")
        for k, v in ipc.items():
            L.append("| %s | %.0f | %.2f× |" % (k, v, v / ipc["C loop"]))
        L.append("")

    # Targets.
    T = []

    def target(name, value, ok, figure):
        T.append((name, "MET" if ok else "NOT MET", figure))

    if ipc:
        x = ipc["genauth_c"] / ipc["C loop"]
        target("instructions per call ≤ 1.10× the C loop", x, x <= 1.10, "%.2f×" % x)
    x = st["gc_seq"]["ratio"]
    target("sequential ≥ 0.95× the C loop", x, x >= 0.95, "%.2f×" % x)
    x = st["gc_seq"]["rate"] / st["sdk_seq"]["rate"]
    target("about 6× the official SDK (checked as ≥ 5.5×)", x, x >= 5.5, "%.1f×" % x)
    x = st["gc_t4"]["ratio"]
    target("4 threads ≥ 2.0× the sequential C loop", x, x >= 2.0, "%.2f×" % x)
    if have_batch:
        x = st["gc_b16"]["ratio"]
        target("batch of 16 in flight ≥ 4.0× the sequential C loop", x, x >= 4.0,
               "%.2f×" % x)
    else:
        T.append(("batch of 16 in flight ≥ 4.0× the sequential C loop", "SKIPPED",
                  "no trigger_webhooks in this build"))
    target("import genauth_c ≤ import pycurl", None, imp["genauth_c"] <= imp["pycurl"],
           "%.2f ms vs %.2f ms" % (imp["genauth_c"] / 1000, imp["pycurl"] / 1000))
    if mem:
        a, b = mem["genauth_c"]["maxrss_kib"], mem["pycurl"]["maxrss_kib"]
        target("peak RSS ≤ pycurl's", None, a <= b, "%.1f MiB vs %.1f MiB" % (a / 1024, b / 1024))
        g = mem["genauth_c"]["growth_bytes"]
        target("RSS growth 50k→100k calls < 1 MiB", None, g < 1 << 20, "%.0f KiB" % (g / 1024))
    L.append("## Targets (issue 4)\n")
    L.append("| target | result | figure |")
    L.append("|---|---|---|")
    for name, res, fig in T:
        L.append("| %s | **%s** | %s |" % (name, res, fig))
    L.append("")

    if prof:
        L.append("## Where the instructions go (callgrind, per call)\n")
        L.append("Self Ir per call by shared object, I(%d) − I(%d) per call, so start-up "
                 "is excluded.\n" % (CALLGRIND_N[1], CALLGRIND_N[0]))
        objs = sorted(set(prof.get("genauth_c", ({}, {}))[1]) |
                      set(prof.get("C loop", ({}, {}))[1]),
                      key=lambda o: -prof["genauth_c"][1].get(o, 0))
        L.append("| object | genauth_c Ir/call | C loop Ir/call |")
        L.append("|---|---:|---:|")
        for o in objs:
            a = prof["genauth_c"][1].get(o, 0)
            b = prof["C loop"][1].get(o, 0)
            if abs(a) >= 50 or abs(b) >= 50:
                L.append("| %s | %.0f | %.0f |" % (o, a, b))
        L.append("")
        fns, _ = prof["genauth_c"]
        total = ipc["genauth_c"]
        L.append("Top functions of the genauth_c run, self Ir per call:\n")
        L.append("| function | object | Ir/call | share |")
        L.append("|---|---|---:|---:|")
        for k, v in sorted(fns.items(), key=lambda kv: -kv[1])[:25]:
            L.append("| `%s` | %s | %.0f | %.1f%% |" % (function_of(k), object_of(k), v,
                                                       100 * v / total))
        L.append("")
    if d.get("failures"):
        L.append("## Failed measurements\n")
        L.append("Each was retried once and the retry's figure used; a failure is a "
                 "client error on a server that answers every request the same way:\n")
        L.extend("- %s" % f for f in d["failures"])
        L.append("")
    L.extend(analysis(T, st, wrk_rps, imp, mem, ipc, prof, trees))
    return "\n".join(L) + "\n"


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


def analysis(T, st, wrk_rps, imp, mem, ipc, prof, trees):
    """The write-up for every target not met, from this run's own figures."""
    missed = " ".join(name for name, res, _ in T if res == "NOT MET")
    L = ["## What stands in the way\n"]
    if not missed:
        L.append("Every target checked in this run was met.\n")
        return L
    ncpu = os.cpu_count() or 1
    c, g = st["c_seq"], st["gc_seq"]
    fns = prof["genauth_c"][0] if prof else {}
    gil = sum(v for k, v in fns.items()
              if "libpython" in object_of(k) or "src/binding/" in k)

    if "instructions" in missed:
        diff = {o: prof["genauth_c"][1].get(o, 0) - prof["C loop"][1].get(o, 0)
                for o in set(prof["genauth_c"][1]) | set(prof["C loop"][1])}
        parts = ", ".join("%s %+.0f" % (o, v) for o, v in
                          sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:6])
        L.append("- **Instructions per call**: genauth_c executes %.0f Ir per call more than "
                 "the C loop. Per shared object (genauth_c − C loop, Ir/call): %s."
                 % (ipc["genauth_c"] - ipc["C loop"], parts))
        mine = sorted(((v, k) for k, v in fns.items()
                       if "_core" in object_of(k) or "libpython" in object_of(k)),
                      reverse=True)[:8]
        L.append("  The binding's and the interpreter's hottest functions: " + ", ".join(
            "`%s` %.0f" % (function_of(k), v) for v, k in mine) + ".")
    if "sequential" in missed:
        L.append("- **Sequential wall time**: genauth_c reached %.2f× the C loop. Its CPU per "
                 "call was %.1f µs against the C loop's %.1f µs (%.2f×)%s. Whatever of the gap "
                 "the CPU figure does not explain is time the process was not running: on "
                 "a shared 2-core machine, the scheduler and the other tenants; the "
                 "per-round range of the ratio (%.2f–%.2f) shows how large that noise is."
                 % (g["ratio"], g["cpu_us"], c["cpu_us"], g["cpu_us"] / c["cpu_us"],
                    "; instructions per call %.2f×" % (ipc["genauth_c"] / ipc["C loop"])
                    if ipc else "", g["lo"], g["hi"]))
    if "official SDK" in missed:
        sdk = st["sdk_seq"]
        L.append("- **Against the official SDK**: it costs %.0f µs per call here (a new "
                 "loopback TCP connection and a new requests session per call); loopback "
                 "connects are cheap, so the gap is smaller than over a real network, "
                 "where each of its calls also pays a TCP (and TLS) handshake."
                 % (1e6 / sdk["rate"]))
    if "threads" in missed or "batch" in missed:
        srv = c.get("server_cpu_us") or 0
        per_call = c["cpu_us"] + srv
        ceiling = ncpu * 1e6 / per_call
        L.append("- **Concurrency (4 threads, batches)**: the machine has %d cores, shared "
                 "with nginx. A call costs the C loop %.1f µs of client CPU and nginx %.1f µs "
                 "of server CPU, so no client doing that work can exceed about %.0f calls/s "
                 "here: %.2f× the sequential C loop, whatever its concurrency. The C loop "
                 "itself with 16 transfers in flight reached %.2f×; the targets (2.0× and "
                 "4.0×) assume a machine where the sequential loop waits on latency, not "
                 "one where client and server together already keep both cores busy."
                 % (ncpu, c["cpu_us"], srv, ceiling, ceiling / c["rate"],
                    st["c_multi16"]["ratio"]))
        if fns:
            L.append("  Within genauth_c, %.0f of its %.0f Ir per call (%.0f%%) run in "
                     "libpython and the binding, i.e. with the GIL held; the rest "
                     "(libcurl, libc, the C core) runs with it released, so the GIL bounds "
                     "thread scaling at about %.1f× before the cores do."
                     % (gil, ipc["genauth_c"], 100 * gil / ipc["genauth_c"],
                        ipc["genauth_c"] / gil if gil else float("inf")))
    if "import" in missed:
        top = sorted(trees["genauth_c"], reverse=True)[:5]
        L.append("- **Import time**: genauth_c %.2f ms vs pycurl %.2f ms. The largest "
                 "self times under `import genauth_c`: %s (µs)." % (
                     imp["genauth_c"] / 1000, imp["pycurl"] / 1000,
                     ", ".join("`%s` %d" % (n, s) for s, _, n in top)))
    if "peak RSS" in missed:
        L.append("- **Peak RSS**: genauth_c %.1f MiB vs pycurl %.1f MiB after %d calls."
                 % (mem["genauth_c"]["maxrss_kib"] / 1024, mem["pycurl"]["maxrss_kib"] / 1024,
                    RSS_CALLS))
    if "growth" in missed:
        L.append("- **RSS growth**: %.0f KiB from call %d to call %d: memory kept per call "
                 "(a leak, or a cache without a bound)."
                 % (mem["genauth_c"]["growth_bytes"] / 1024, RSS_CALLS // 2, RSS_CALLS))
    L.append("")
    return L


if __name__ == "__main__":
    main()
