"""One measurement of one Python client, in a fresh process (run.py starts it).

    python workers.py CLIENT MODE N HOST [K]

CLIENT is genauth_c, pycurl, requests or genauth (the official SDK), or one
of the asyncio clients genauth_c_async (AsyncManagementClient) and aiohttp;
HOST is http://127.0.0.1:PORT or https://127.0.0.1:PORT (then BENCH_CA names
the CA file every client verifies with, except the official SDK, which never
verifies). MODE is one of:

    seq      N calls one after another; also times the first call of a fresh
             client (construction, connect, token fetch where the client
             fetches one)
    threads  N calls spread over K threads (shared client where the library
             allows it, see CLIENTS)
    batch    one trigger_webhooks() of N calls with concurrency=K (genauth_c)
    tasks    N calls spread over K asyncio tasks on one client (asyncio clients)
    rss      N calls, then peak RSS and the RSS growth from call N/2 to N
    loop     N calls and nothing else (run under callgrind)

Prints one JSON line. A fresh process per measurement keeps one client's
heap, threads and connections from colouring the next one's figures, and
makes the first-call and memory figures mean what they say. Only the module
of the client measured is imported: the memory figure is that client's.
"""
import os
import sys
import time

AK, SK = "bench-access-key-id", "bench-access-key-secret"
PATH = "/api/v3/trigger-webhook"
WEBHOOK_ID = "6229ffaxxxxxxxxcade3e3d9"
# The example from the API page, as both request headers and request body.
EVENT = {"eventName": "test", "data": {"description": "A test from authing"}}
# Clients with no token logic of their own (pycurl, requests) send the token
# run.py serves, as an application using them would after fetching it once.
TOKEN = os.environ.get("BENCH_TOKEN", "")
USERPOOL_ID = os.environ.get("BENCH_USERPOOL_ID", "")
CA = os.environ.get("BENCH_CA") or None
WARMUP = 20


def tls(host):
    return host.startswith("https://")


class GenauthC:
    """genauth_c: one client is meant to be shared by threads."""

    shared = True
    modules = ("genauth_c",)

    def __init__(self, host):
        # Imported before the clock starts (mode_seq): `import` of a module
        # already loaded is a lookup in C, while `from package import name`
        # runs importlib's _handle_fromlist, Python code that a fresh client
        # timed after thousands of calls finds cold (about 25 µs measured).
        import genauth_c

        self.client = genauth_c.ManagementClient(AK, SK, host=host,
                                                 ca_bundle=CA if tls(host) else None)

    def run(self, n):
        c, r = self.client, None
        for _ in range(n):
            r = c.trigger_webhook(WEBHOOK_ID, EVENT, EVENT)
        return r


class Pycurl:
    """pycurl as a careful user writes it: one kept-alive handle, reused; the
    body from json.dumps, the answer through json.loads. A handle is not for
    two threads at once, so each thread gets its own."""

    shared = False
    modules = ("json", "io", "pycurl")

    def __init__(self, host):
        import json
        from io import BytesIO

        import pycurl

        self.json, self.BytesIO, self.pycurl = json, BytesIO, pycurl
        h = self.handle = pycurl.Curl()
        h.setopt(pycurl.URL, host + PATH)
        h.setopt(pycurl.NOSIGNAL, 1)
        h.setopt(pycurl.TIMEOUT_MS, 10000)
        h.setopt(pycurl.POST, 1)
        if tls(host):
            h.setopt(pycurl.CAINFO, CA)
        h.setopt(pycurl.HTTPHEADER, [
            "Content-Type: application/json",
            "Authorization: Bearer " + TOKEN,
            "x-genauth-userpool-id: " + USERPOOL_ID,
            "Expect:",
        ])

    def run(self, n):
        h, dumps, loads, BytesIO = self.handle, self.json.dumps, self.json.loads, self.BytesIO
        WRITEDATA, POSTFIELDS = self.pycurl.WRITEDATA, self.pycurl.POSTFIELDS
        r = None
        for _ in range(n):
            body = dumps({"webhookId": WEBHOOK_ID, "requestHeaders": EVENT,
                          "requestBody": EVENT}, separators=(",", ":"))
            out = BytesIO()
            h.setopt(POSTFIELDS, body)
            h.setopt(WRITEDATA, out)
            h.perform()
            r = loads(out.getvalue())
        return r


class Requests:
    """requests.Session: its connection pool is thread-safe, and sharing one
    session is how it is commonly used from threads."""

    shared = True
    modules = ("requests",)

    def __init__(self, host):
        import requests

        self.url = host + PATH
        self.session = requests.Session()
        if tls(host):
            self.session.verify = CA
        self.session.headers.update({
            "Authorization": "Bearer " + TOKEN,
            "x-genauth-userpool-id": USERPOOL_ID,
        })

    def run(self, n):
        post, url, r = self.session.post, self.url, None
        for _ in range(n):
            r = post(url, json={"webhookId": WEBHOOK_ID, "requestHeaders": EVENT,
                                "requestBody": EVENT}, timeout=10).json()
        return r


class OfficialSDK:
    """The official SDK (PyPI genauth 5.1.0): it fetches its token from the
    token endpoint, then uses requests.request(), a new connection per call."""

    shared = True
    modules = ("genauth",)

    def __init__(self, host):
        import genauth  # as GenauthC's

        if tls(host):
            # Its token fetch verifies TLS (its management calls never do):
            # trust the test certificate the way requests users do.
            os.environ["REQUESTS_CA_BUNDLE"] = CA
        self.client = genauth.ManagementClient(AK, SK, host=host)

    def run(self, n):
        c, r = self.client, None
        for _ in range(n):
            r = c.trigger_webhook(WEBHOOK_ID, EVENT, EVENT)
        return r


class AsyncGenauthC:
    """genauth_c's AsyncManagementClient: one client, many tasks, no threads."""

    modules = ("genauth_c",)

    async def open(self, host):
        import genauth_c  # as GenauthC's

        self.client = genauth_c.AsyncManagementClient(
            AK, SK, host=host, ca_bundle=CA if tls(host) else None)

    async def run(self, n):
        c, r = self.client, None
        for _ in range(n):
            r = await c.trigger_webhook(WEBHOOK_ID, EVENT, EVENT)
        return r

    async def close(self):
        await self.client.aclose()


class Aiohttp:
    """aiohttp as its users write it: one ClientSession (its pool keeps the
    connections), json= out and .json() in, the token as a default header."""

    modules = ("aiohttp",)

    async def open(self, host):
        import ssl

        import aiohttp

        self.url = host + PATH
        ctx = ssl.create_default_context(cafile=CA) if tls(host) else None
        self.session = aiohttp.ClientSession(
            headers={"Authorization": "Bearer " + TOKEN,
                     "x-genauth-userpool-id": USERPOOL_ID},
            connector=aiohttp.TCPConnector(limit=0, ssl=ctx if ctx else False))

    async def run(self, n):
        post, url, r = self.session.post, self.url, None
        for _ in range(n):
            async with post(url, json={"webhookId": WEBHOOK_ID, "requestHeaders": EVENT,
                                       "requestBody": EVENT}) as resp:
                r = await resp.json()
        return r

    async def close(self):
        await self.session.close()


CLIENTS = {"genauth_c": GenauthC, "pycurl": Pycurl, "requests": Requests,
           "genauth": OfficialSDK, "genauth_c_async": AsyncGenauthC,
           "aiohttp": Aiohttp}


def check(envelope):
    if not isinstance(envelope, dict) or envelope.get("statusCode") != 200:
        raise SystemExit("unexpected answer: %r" % (envelope,))


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGESIZE")


def mode_seq(cls, host, n, _k):
    for m in cls.modules:  # the first call is timed without the import
        __import__(m)
    # How long after its start (run.py's clock) the process's first call
    # starts: a C reference starts its own that late (c_loop first_token_late).
    first_call_at = time.monotonic() - float(os.environ.get("BENCH_SPAWNED_AT", "nan"))
    t0 = time.perf_counter()
    client = cls(host)
    check(client.run(1))
    first = time.perf_counter() - t0
    client.run(WARMUP)
    c0, t0 = time.process_time(), time.perf_counter()
    check(client.run(n))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    # A fresh client in a process that has made calls: its first call
    # without a process's start before it (its own token and connection).
    # As in the C loop, the timed calls' client is gone before it, and its
    # own teardown comes after the clock stops.
    del client
    t0 = time.perf_counter()
    fresh_client = cls(host)
    check(fresh_client.run(1))
    fresh = time.perf_counter() - t0
    del fresh_client
    # fresh_client_at: when it began, on CLOCK_MONOTONIC (perf_counter's
    # clock here, and the C loop's): first_call_phases.py splits it.
    return {"calls": n, "elapsed": elapsed, "cpu_s": cpu, "first_call_s": first,
            "fresh_client_s": fresh, "fresh_client_at": t0,
            "first_call_at_s": first_call_at}


def mode_threads(cls, host, n, k):
    import threading

    shared = cls(host) if cls.shared else None
    barrier = threading.Barrier(k + 1)
    per_thread = n // k
    failures = []

    def work():
        try:
            client = shared or cls(host)
            client.run(WARMUP)  # opens this thread's connection before timing
            barrier.wait()
            check(client.run(per_thread))
        except BaseException as e:  # reported below; a thread cannot raise
            failures.append(e)
            barrier.abort()

    threads = [threading.Thread(target=work) for _ in range(k)]
    for t in threads:
        t.start()
    barrier.wait()
    c0, t0 = time.process_time(), time.perf_counter()
    for t in threads:
        t.join()
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if failures:
        raise SystemExit("thread failed: %r" % failures[0])
    return {"calls": per_thread * k, "elapsed": elapsed, "cpu_s": cpu}


def mode_batch(cls, host, n, k):
    client = cls(host)
    tw = client.client.trigger_webhooks
    call = {"webhook_id": WEBHOOK_ID, "request_headers": EVENT, "request_body": EVENT}
    tw([dict(call) for _ in range(2 * k)], concurrency=k)  # opens k connections
    calls = [dict(call) for _ in range(n)]  # built before the clock: input, not work
    c0, t0 = time.process_time(), time.perf_counter()
    results = tw(calls, concurrency=k)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    if len(results) != n:
        raise SystemExit("trigger_webhooks returned %d results for %d calls" % (len(results), n))
    for r in results:
        check(r)
    return {"calls": n, "elapsed": elapsed, "cpu_s": cpu}


def mode_tasks(cls, host, n, k):
    import asyncio

    async def main():
        client = cls()
        await client.open(host)
        try:
            # Opens k connections before the clock, as the other modes do.
            for r in await asyncio.gather(*(client.run(2) for _ in range(k))):
                check(r)
            per_task = n // k
            c0, t0 = time.process_time(), time.perf_counter()
            results = await asyncio.gather(*(client.run(per_task) for _ in range(k)))
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
            for r in results:
                check(r)
            return {"calls": per_task * k, "elapsed": elapsed, "cpu_s": cpu}
        finally:
            await client.close()

    return asyncio.run(main())


def mode_rss(cls, host, n, _k):
    import resource

    client = cls(host)
    client.run(n // 2)
    half = rss_bytes()
    check(client.run(n - n // 2))
    end = rss_bytes()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"calls": n, "maxrss_kib": maxrss, "growth_bytes": end - half}


def mode_loop(cls, host, n, _k):
    client = cls(host)
    check(client.run(n))
    return {"calls": n}


def mode_idle(cls, host, _n, _k):
    """How often an idle client with an open connection wakes the event
    loop: selector returns during 2 s of nothing, less those of 2 s of
    nothing without the client."""
    import asyncio

    async def count_wakeups(seconds):
        sel = asyncio.get_running_loop()._selector
        orig, count = sel.select, [0]

        def select(timeout=None):
            count[0] += 1
            return orig(timeout)

        sel.select = select
        try:
            await asyncio.sleep(seconds)
        finally:
            sel.select = orig
        return count[0]

    async def main():
        baseline = await count_wakeups(2.0)
        client = cls()
        await client.open(host)
        try:
            check(await client.run(1))  # the connection is now open and idle
            with_client = await count_wakeups(2.0)
        finally:
            await client.close()
        return {"calls": 1, "baseline_wakeups": baseline, "wakeups": with_client,
                "wakeups_per_s": max(0, with_client - baseline) / 2.0}

    return asyncio.run(main())


def mode_batch_loop(cls, host, n, k):
    """n calls as one batch and nothing else (run under callgrind)."""
    client = cls(host)
    call = {"webhook_id": WEBHOOK_ID, "request_headers": EVENT, "request_body": EVENT}
    for r in client.client.trigger_webhooks([dict(call) for _ in range(n)],
                                            concurrency=k):
        check(r)
    return {"calls": n}


MODES = {"seq": mode_seq, "threads": mode_threads, "batch": mode_batch,
         "rss": mode_rss, "loop": mode_loop, "tasks": mode_tasks,
         "batch_loop": mode_batch_loop, "idle": mode_idle}


def main(argv):
    client, mode, n, host = argv[1], argv[2], int(argv[3]), argv[4]
    k = int(argv[5]) if len(argv) > 5 else 1
    if not host.startswith(("http://127.0.0.1:", "https://127.0.0.1:")):
        raise SystemExit("the benchmark talks to 127.0.0.1 only, not %r" % host)
    out = MODES[mode](CLIENTS[client], host, n, k)
    import json  # after the measurement: not part of any client's figures

    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv)
