"""Bounded resources: the file descriptors an idle client keeps, a batch
larger than the process may open, and a request libcurl must not send
twice on its own."""
import asyncio
import ctypes
import gc
import os
import subprocess
import sys
import textwrap
import threading

import pytest

from conftest import AK, SK
from rawserver import Response
from serve import spawn

import genauth_c
from genauth_c import ManagementClient

# `make sanitize` preloads AddressSanitizer's runtime, whose shadow memory
# an address-space limit cannot be set around.
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")

# What an idle client may keep (src/core/internal.h): single calls keep up
# to 8 idle connection handles, each with its connection and libcurl's
# wakeup (3 fds with a socket pair, Debian 12's libcurl 7.88; 2 where it
# is an eventfd, Debian 13's 8.14: the bounds below are the first's);
# batches have one multi handle (2 fds, or 1) keeping 8 connections (1 fd
# each).
IDLE_CONNECTIONS = 8
FDS_PER_HANDLE = 3


def open_fds():
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def mixed_server():
    """The GenAuth endpoints in another process, so that its sockets are not
    counted here."""
    port, stop = spawn("mixed")
    yield f"http://127.0.0.1:{port}"
    stop()


def burst(client, threads):
    barrier = threading.Barrier(threads)
    results = []

    def work():
        barrier.wait(timeout=30)
        results.append(client.trigger_webhook("wh1")["statusCode"])

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in pool)
    assert results == [200] * threads


def test_idle_client_fds_after_bursts_and_a_batch(mixed_server):
    before = open_fds()
    client = ManagementClient(AK, SK, host=mixed_server, timeout=10)
    for _ in range(3):
        burst(client, 50)
        # The handles given back beyond the 8 kept are freed, their
        # connections closed: bursts do not pile up.
        assert open_fds() - before <= FDS_PER_HANDLE * IDLE_CONNECTIONS
    for _ in range(50):
        client.trigger_webhook("wh1")
    after_calls = open_fds() - before
    assert after_calls <= FDS_PER_HANDLE * IDLE_CONNECTIONS, after_calls
    results = client.trigger_webhooks(
        [{"webhook_id": "wh1"}] * 100, concurrency=100)
    assert [r["statusCode"] for r in results] == [200] * 100
    after_batch = open_fds() - before - after_calls
    assert after_batch <= 2 + IDLE_CONNECTIONS, after_batch
    client.close()
    assert open_fds() - before == 0


CHILD = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    from genauth_c import ManagementClient
    with ManagementClient("AK", "SK", host=sys.argv[1], timeout=30) as c:
        results = c.trigger_webhooks([{"webhook_id": "wh1"}] * 400,
                                     concurrency=400)
    bad = [r for r in results if not isinstance(r, dict)
           or r["statusCode"] != 200]
    print(len(results), len(bad), repr(bad[:3]))
    with open("/dev/null") as f:  # the process can still open files
        pass
""")


def test_batch_larger_than_the_fd_limit_completes(mixed_server):
    """400 in flight asked for under a limit of 256 open files: fewer run
    at once, every call completes."""
    out = subprocess.run([sys.executable, "-c", CHILD, mixed_server],
                         capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(None, 2)[:2] == ["400", "0"], out.stdout


# Child code's helper: takes every file descriptor the process may still
# open, and returns them (to close).
TAKE_ALL_FDS = textwrap.dedent("""
    def take_all_fds():
        import os
        taken = []
        try:
            while True:
                taken.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            pass
        return taken
""")

OUT_OF_FDS_CHILD = TAKE_ALL_FDS + textwrap.dedent("""
    import os, resource, sys, threading
    import genauth_c
    from genauth_c import ManagementClient
    warm = ManagementClient("AK", "SK", host=sys.argv[1], timeout=10)
    assert warm.trigger_webhook("wh1")["statusCode"] == 200
    fresh = ManagementClient("AK", "SK", host=sys.argv[1], timeout=10)
    third = ManagementClient("AK", "SK", host=sys.argv[1], timeout=10)
    # What a new client's first call keeps: its handle's connection and the
    # multi handle's wakeup descriptors (a socket pair: 2, as in Debian 12's
    # libcurl 7.88; an eventfd: 1, as in Debian 13's 8.14).
    probe = ManagementClient("AK", "SK", host=sys.argv[1], timeout=10)
    before = len(os.listdir("/proc/self/fd"))
    assert probe.trigger_webhook("wh1")["statusCode"] == 200
    cost = len(os.listdir("/proc/self/fd")) - before
    print("COST", cost)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))
    def refused(label, client):
        try:
            client.trigger_webhook("wh1")
        except genauth_c.TransportError as e:
            print(label, e)
        else:
            print(label, "returned")
    taken = take_all_fds()
    # Every file descriptor taken: a client with no connection yet.
    refused("FRESH", fresh)
    # Threads on the client with one kept connection: the one that gets it
    # may succeed, the others need a connection of their own.
    outcomes = []
    def work():
        try:
            outcomes.append(str(warm.trigger_webhook("wh1")["statusCode"]))
        except genauth_c.TransportError as e:
            outcomes.append(str(e))
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    print("ALIVE", sum(t.is_alive() for t in threads))
    for o in outcomes:
        print("THREAD", o)
    # One descriptor short of what a new client's first call keeps: it
    # says so; with that one more, its token fetch and call go through: it
    # needs nothing beyond what it keeps afterwards.
    for _ in range(cost - 1):
        os.close(taken.pop())
    refused("ONE SHORT", third)
    os.close(taken.pop())
    print("ENOUGH", third.trigger_webhook("wh1")["statusCode"])
    for fd in taken:
        os.close(fd)
    print("AFTER", fresh.trigger_webhook("wh1")["statusCode"],
          warm.trigger_webhook("wh1")["statusCode"])
""")


def test_a_call_with_no_file_descriptor_free_says_so(mixed_server):
    """With every file descriptor of the process taken, a call that needs a
    connection fails with a TransportError naming the open-file limit (not
    libcurl's "Couldn't connect to server", as if the server had refused),
    no thread hangs; as many free descriptors as a new client's first call
    keeps (its connection and libcurl's wakeup descriptors, 2 or 3 by the
    libcurl version) are enough for its token fetch and call, one fewer is
    the same TransportError, and all calls work again once descriptors are
    free."""
    out = subprocess.run([sys.executable, "-c", OUT_OF_FDS_CHILD,
                          mixed_server],
                         capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    fresh = [line for line in lines if line.startswith("FRESH")]
    assert len(fresh) == 1 and "RLIMIT_NOFILE" in fresh[0], out.stdout
    assert "nothing was sent" in fresh[0]
    assert "ALIVE 0" in lines, out.stdout
    outcomes = [line[len("THREAD "):] for line in lines
                if line.startswith("THREAD")]
    assert len(outcomes) == 8, out.stdout
    for outcome in outcomes:
        assert outcome == "200" or "RLIMIT_NOFILE" in outcome, outcome
    cost = int(next(line for line in lines if line.startswith("COST"))[5:])
    assert cost in (2, 3), out.stdout
    short = [line for line in lines if line.startswith("ONE SHORT")]
    assert len(short) == 1 and "RLIMIT_NOFILE" in short[0], out.stdout
    assert "ENOUGH 200" in lines, out.stdout
    assert "AFTER 200 200" in lines, out.stdout


ASYNC_OUT_OF_FDS_CHILD = TAKE_ALL_FDS + textwrap.dedent("""
    import asyncio, collections, os, resource, sys
    from genauth_c import AsyncManagementClient
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, 1024), hard))

    def outcomes(results):
        return sorted(collections.Counter(
            str(r["statusCode"]) if isinstance(r, dict) else type(r).__name__
            for r in results).items())

    async def main():
        async with AsyncManagementClient("AK", "SK", host=sys.argv[1],
                                         timeout=60, max_retries=0) as client:
            await client.trigger_webhook("wh1")  # the token, one connection
            taken = take_all_fds()
            for _ in range(8):  # room for a few more connections only
                os.close(taken.pop())
            single = await asyncio.gather(
                *[client.trigger_webhook("wh1") for _ in range(100)],
                return_exceptions=True)
            batch = await client.trigger_webhooks(
                [{"webhook_id": "wh1"}] * 100, concurrency=50)
            for fd in taken:
                os.close(fd)
            return outcomes(single), outcomes(batch)

    print(asyncio.run(main()))
""")


def test_async_calls_beyond_the_fd_limit_complete(mixed_server):
    """100 tasks, and a batch of concurrency 50, on an event loop with
    room for a few connections only, retries off: the calls that find no
    file descriptor free wait for one of the others' connections instead
    of failing (a batch larger than the process can open files for runs
    fewer calls in flight)."""
    out = subprocess.run([sys.executable, "-c", ASYNC_OUT_OF_FDS_CHILD,
                          mixed_server],
                         capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "([('200', 100)], [('200', 100)])", out.stdout


@pytest.mark.parametrize("drop", ["close", "reset"])
def test_post_lost_on_a_reused_connection_is_not_sent_again(fake,
                                                            client_for, drop):
    """The server reads the second trigger request on the kept-alive
    connection, then drops the connection without answering. libcurl would
    send the request again on a new connection (a second delivery); the call
    fails instead, and the webhook was triggered once."""
    deliveries = []
    lock = threading.Lock()

    def handler(req):
        if "trigger-webhook" in req.path:
            with lock:
                deliveries.append(req)
                n = len(deliveries)
            if n == 2:
                return (Response(close=True) if drop == "close"
                        else Response(raw=b"", reset=True))
        return fake(req)

    fake.server.handler = handler
    client = client_for(fake.server.url)
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert "not sent again" in str(info.value)
    assert info.value.curl_code == 42  # as the README's failure table says
    assert len(deliveries) == 2  # the lost one reached the server once
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert len(deliveries) == 3


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
        "fsmblks", "uordblks", "fordblks", "keepcost")]


def malloc_in_use():
    """Bytes malloc has handed out and not taken back (glibc's mallinfo2:
    the arenas' chunks in use and the mmapped ones), unlike RSS, which keeps
    what free() gave back but glibc did not return to the system."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc 2.33 or later (mallinfo2)")
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_idle_client_keeps_no_large_answer(fake, kind):
    """An answer of megabytes (a long list, or a server sending up to
    max_response_bytes) is not kept by the handle it came on once the call
    has returned: four such answers, on four connections at once, leave an
    idle client holding less than one of them. Each handle kept its largest
    answer's buffer (up to twice max_response_bytes) for as long as the
    client lived: an idle asyncio client, up to 64 of them."""
    size = 4 * 1024 * 1024
    big = Response.json({"statusCode": 200, "data": "x" * size})

    def calls(client):
        client.trigger_webhook("wh1")
        return client.trigger_webhooks([{"webhook_id": "wh1"}] * 4,
                                       concurrency=4)

    async def acalls(client):
        await client.trigger_webhook("wh1")
        return await asyncio.gather(
            *(client.trigger_webhook("wh1") for _ in range(4)))

    def run(work):
        if kind == "sync":
            return work(sync_client)
        return loop.run_until_complete(work(async_client))

    sync_client = ManagementClient(AK, SK, host=fake.server.url, timeout=30)
    async_client = genauth_c.AsyncManagementClient(AK, SK,
                                                   host=fake.server.url,
                                                   timeout=30)
    loop = asyncio.new_event_loop()
    try:
        fake.response = None
        assert all(r["statusCode"] == 200
                   for r in run(calls if kind == "sync" else acalls))
        gc.collect()
        before = malloc_in_use()
        fake.response = big
        results = run(calls if kind == "sync" else acalls)
        assert [len(r["data"]) for r in results] == [size] * 4
        del results
        gc.collect()
        retained = malloc_in_use() - before
        assert retained < size, f"{retained / 2**20:.1f} MiB kept"
        fake.response = None
        assert run(calls if kind == "sync" else acalls)[0]["statusCode"] == 200
    finally:
        sync_client.close()
        loop.run_until_complete(async_client.aclose())
        loop.close()


def test_trailers_without_end_are_not_kept(fake, client_for):
    """A chunked answer followed by trailer lines without end: libcurl keeps
    each (for curl_easy_header), so the call grew this process by the
    server's bandwidth until its timeout (1.7 GB in 10 s on loopback), and
    its handle kept all of it afterwards. The call ends once the lines pass
    a bound, and what stays is under a MiB."""
    def forever():
        yield (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
        while True:
            yield b"X-Trailer: " + b"t" * 1000 + b"\r\n"

    client = client_for(fake.server.url, timeout=5)
    client.trigger_webhook("wh1")
    gc.collect()
    before = malloc_in_use()
    fake.response = Response(raw=forever())
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert type(info.value) is genauth_c.TransportError, info.value
    assert malloc_in_use() - before < 1024 * 1024
    fake.response = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200



# Child code: a body larger than the memory the process may still take
# (RLIMIT_AS, lifted again after each call, so that only the body's growth
# meets it), in each of the three call paths.
OUT_OF_MEMORY_CHILD = textwrap.dedent("""
    import asyncio, contextlib, resource, sys
    import genauth_c
    from genauth_c import AsyncManagementClient, ManagementClient

    HARD = resource.getrlimit(resource.RLIMIT_AS)[1]

    @contextlib.contextmanager
    def little_memory():
        with open("/proc/self/statm") as f:
            size = int(f.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (size + (64 << 20), HARD))
        try:
            yield
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (HARD, HARD))

    def show(path, outcome):
        print(path, type(outcome).__name__,
              getattr(outcome, "curl_code", None), outcome)

    kw = dict(timeout=60, max_retries=0, max_response_bytes=1 << 40)
    with ManagementClient("AK", "SK", host=sys.argv[1], **kw) as c:
        c.trigger_webhook("wh1")  # the token and a connection, first
        with little_memory():
            try:
                c.trigger_webhook("big")
            except genauth_c.GenAuthError as e:
                show("SYNC", e)
        with little_memory():
            show("BATCH", c.trigger_webhooks([{"webhook_id": "big"}])[0])
        print("AFTER", c.trigger_webhook("wh1")["statusCode"])

    async def main():
        async with AsyncManagementClient("AK", "SK", host=sys.argv[1],
                                         **kw) as a:
            await a.trigger_webhook("wh1")
            with little_memory():
                try:
                    await a.trigger_webhook("big")
                except genauth_c.GenAuthError as e:
                    show("ASYNC", e)
            print("AFTER", (await a.trigger_webhook("wh1"))["statusCode"])

    asyncio.run(main())
""")


@pytest.mark.skipif(UNDER_ASAN, reason="RLIMIT_AS under the sanitizer's "
                    "shadow memory")
def test_a_body_memory_cannot_hold_says_so(fake):
    """With max_response_bytes far above the memory the process may take, a
    body that outgrows that memory fails each call path with a
    TransportError saying memory ran out and how much had come, not
    libcurl's "Failure writing output to destination (Failed writing
    received data to disk/application)", which reads as a disk's fault; the
    client works on."""
    def endless():
        yield b'{"statusCode":200,"data":"'
        while True:
            yield b"x" * 65536

    def answer(req):
        if b'"webhookId":"big"' in req.body:
            return Response(stream=endless(),
                            headers=[("Transfer-Encoding", "chunked")])
        return fake(req)

    fake.server.handler = answer
    out = subprocess.run([sys.executable, "-c", OUT_OF_MEMORY_CHILD,
                          fake.server.url],
                         capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    failed = [line for line in lines if not line.startswith("AFTER")]
    assert [line.split(" ", 1)[0] for line in failed] == [
        "SYNC", "BATCH", "ASYNC"], out.stdout
    for line in failed:
        assert line.split(" ", 3)[1:3] == ["TransportError", "23"], line
        assert "/api/v3/trigger-webhook: memory ran out after" in line, (
            line)
        assert "disk" not in line, line
    assert lines.count("AFTER 200") == 2, out.stdout
