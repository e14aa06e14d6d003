"""Long runs: a leak loop mixing successes and every kind of failure, 16
threads on one client across token expiries, and fork().

GENAUTH_TEST_SCALE=small (set by `make sanitize`) scales the loops down and
skips the memory-growth bounds, which mean nothing under ASan."""
import asyncio
import gc
import os
import resource
import ssl
import threading
import tracemalloc

import pytest

from conftest import AK, SK, refusing_port, wait_child
from rawserver import FakeGenAuth, RawServer
from serve import spawn

import genauth_c
from genauth_c import ManagementClient

SMALL = os.environ.get("GENAUTH_TEST_SCALE") == "small"
# `make sanitize` preloads AddressSanitizer's runtime, whose allocator takes
# locks of its own that a fork from a process with busy threads can leave
# held in the child (google/sanitizers#774): fork-under-load tests are for
# the plain build.
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


# ---- the leak loop --------------------------------------------------------

# One cycle of 100 calls: mostly successes (with values that take every
# conversion path), and each failure kind once. (webhook id, request body,
# the exception expected or None; a str is the statusCode returned.)
BODY = {"n": [0, -1, 2**70, 1.5, -0.0, 1e300], "s": "中文\x00𝄞",
        "k\x00": None, "t": True, "nested": {"a": [{"b": []}]}}
FAILURES = [
    ("drop", None, genauth_c.TransportError),
    ("reset", None, genauth_c.TransportError),
    ("html", None, genauth_c.DecodeError),
    ("trunc", None, genauth_c.DecodeError),
    ("array", None, genauth_c.DecodeError),
    ("utf8", None, genauth_c.DecodeError),
    ("deep", None, genauth_c.DecodeError),
    ("huge", None, genauth_c.TransportError),
    ("e401", None, 401),  # retried once, then the envelope
    ("business", None, 404),
    ("tokfail", None, genauth_c.AuthError),  # refused, then refetch fails
    ("ok", {"x": float("nan")}, ValueError),  # refused before sending
    ("ok", {"x": object()}, TypeError),
    ("ok", {"deep": [[[[[[]]]]]] * 1}, 200),
]
CYCLE = [("ok", BODY, 200)] * (100 - len(FAILURES)) + FAILURES


def one_call(client, wid, body, expected):
    try:
        env = client.trigger_webhook(wid, request_body=body)
    except (genauth_c.GenAuthError, ValueError, TypeError) as e:
        assert isinstance(expected, type) and isinstance(e, expected), (
            wid, repr(e))
        return
    assert env["statusCode"] == expected, (wid, env)
    if expected == 200 and wid == "ok":
        assert env["data"]["response"] == body


def test_leak_loop():
    total = 3_000 if SMALL else 100_000
    port, stop = spawn("mixed")
    try:
        url = f"http://127.0.0.1:{port}"
        # A timeout long enough for any call on a loaded machine, and a
        # second client whose timeout the slow answer (0.5 s) always
        # outlasts: one timeout per 5,000 calls, 0.25 s each.
        client = ManagementClient(AK, SK, host=url, timeout=10,
                                  max_response_bytes=256 * 1024)
        hasty = ManagementClient(AK, SK, host=url, timeout=0.25)
        slow = ("slow", None, genauth_c.TimeoutError)

        def run(start, stop_at):
            for i in range(start, stop_at):
                if i % 5000 == 4999:
                    one_call(hasty, *slow)
                else:
                    one_call(client, *CYCLE[i % len(CYCLE)])

        warm = total // 10
        run(0, warm)  # pools, caches, free lists settle
        gc.collect()
        tracemalloc.start()
        traced0 = tracemalloc.get_traced_memory()[0]
        rss0 = rss_bytes()
        run(warm, total)
        gc.collect()
        traced = tracemalloc.get_traced_memory()[0] - traced0
        tracemalloc.stop()
        rss = rss_bytes() - rss0
        assert client.trigger_webhook("ok")["statusCode"] == 200
        client.close()
        hasty.close()
    finally:
        stop()
    print(f"\nleak loop: {total} calls, traced +{traced} B, "
          f"RSS +{rss // 1024} KiB")
    if not SMALL:
        # 90,000 calls: 64 KiB of Python objects is under a byte per call;
        # 8 MiB of RSS is under 100 bytes per call.
        assert traced < 64 * 1024
        assert rss < 8 * 1024 * 1024


def test_error_leak_loop_in_batches_and_asyncio():
    """The leak loop's failing calls (FAILURES), thousands of times, in
    trigger_webhooks and in AsyncManagementClient (its batches and single
    calls), a batch refused for bad input included: no Python objects,
    file descriptors or threads stay behind, and traced memory stays flat.
    The loop above runs single calls only."""
    rounds = 4 if SMALL else 80
    failing = [(wid, body) for wid, body, expected in FAILURES
               if isinstance(expected, type) and wid != "ok"]
    calls = [{"webhook_id": wid, "request_body": body}
             for wid, body in failing] * 5
    bad = calls[:10] + [{"webhook_id": "ok", "request_body": {"x": object()}}]
    port, stop = spawn("mixed")
    fds_before_client = len(os.listdir("/proc/self/fd"))

    def tasks():
        return len(os.listdir("/proc/self/task"))

    def failed(result):
        # "tokfail" among calls in flight together: the refetch that fails
        # may be another call's, and this one then gets its 401 envelope.
        return not isinstance(result, dict) or result["statusCode"] == 401

    try:
        url = f"http://127.0.0.1:{port}"
        kw = dict(timeout=10, max_response_bytes=256 * 1024, max_retries=0)
        client = ManagementClient(AK, SK, host=url, **kw)

        async def on_loop(n):
            async with genauth_c.AsyncManagementClient(AK, SK, host=url,
                                                       **kw) as aclient:
                for _ in range(n):
                    results = await aclient.trigger_webhooks(calls)
                    assert all(failed(r) for r in results)
                    results = await asyncio.gather(
                        *(aclient.trigger_webhook(**c) for c in calls),
                        return_exceptions=True)
                    assert all(failed(r) for r in results)
                    with pytest.raises(TypeError):
                        await aclient.trigger_webhooks(bad)

        def run(n):
            for _ in range(n):
                results = client.trigger_webhooks(calls, concurrency=8)
                assert all(failed(r) for r in results)
                with pytest.raises(TypeError):
                    client.trigger_webhooks(bad)
            asyncio.run(on_loop(n))

        run(2)  # pools, caches, free lists settle
        gc.collect()
        tracemalloc.start()
        before = (len(gc.get_objects()), len(os.listdir("/proc/self/fd")),
                  tasks(), tracemalloc.get_traced_memory()[0])
        run(rounds)
        gc.collect()
        after = (len(gc.get_objects()), len(os.listdir("/proc/self/fd")),
                 tasks(), tracemalloc.get_traced_memory()[0])
        tracemalloc.stop()
        client.close()
    finally:
        stop()
    print(f"\nerror leak loop: {rounds * len(calls) * 3} failed calls, "
          f"objects {after[0] - before[0]:+d}, traced "
          f"{after[3] - before[3]:+d} B")
    # What an idle client may keep (tests/test_resources.py): 8 handles
    # for single calls, 3 descriptors each, and the batches' multi handle,
    # 2, with its 8 connections.
    assert after[1] - fds_before_client <= 3 * 8 + 2 + 8, (before, after)
    # No thread more: one fewer is an earlier test's daemon thread ending
    # meanwhile (as one did in a full run), which is none of the client's.
    assert after[2] <= before[2], (before, after)
    if not SMALL:
        # 10,800 failed calls: no object kept per call (a leak would keep
        # thousands; a fresh-clone CI run saw 2 more once, an interpreter
        # cache's), under 10 bytes a call traced.
        assert after[0] - before[0] <= 32, (before, after)
        assert after[3] - before[3] < 96 * 1024, (before, after)


# ---- 16 threads, one client, token expiries -------------------------------

def test_threads_across_token_expiries(token_clock):
    """16 threads on one client through phases of calls; between phases,
    while every thread waits, the test ends the token's life: the server
    refuses it (odd phases) or the client's token clock passes its refresh
    point (even phases). Each ending costs exactly one token fetch, however
    the threads are scheduled, and every call is answered."""
    threads = 16
    phases, calls = (6, 10) if SMALL else (16, 125)
    served = spawn("mixed")
    errors = []
    try:
        client = ManagementClient(AK, SK, host=f"http://127.0.0.1:{served.port}",
                                  timeout=10)
        start = threading.Barrier(threads + 1, timeout=120)
        end = threading.Barrier(threads + 1, timeout=120)

        def work(tid):
            try:
                for phase in range(phases):
                    start.wait()
                    for i in range(calls):
                        body = {"thread": tid, "phase": phase,
                                "pad": "p" * (i % 300)}
                        env = client.trigger_webhook(f"t{tid}",
                                                     request_body=body)
                        if env["statusCode"] != 200 or \
                                env["data"]["response"] != body or \
                                env["requestId"] != f"t{tid}":
                            errors.append(env)
                            break
                    end.wait()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                start.abort()
                end.abort()

        pool = [threading.Thread(target=work, args=(t,))
                for t in range(threads)]
        for t in pool:
            t.start()
        try:
            for phase in range(phases):
                if phase % 2:
                    assert served.command("expire").startswith("EXPIRED")
                elif phase:
                    token_clock.advance(7200 - 60 + 1)
                start.wait()
                end.wait()
        except threading.BrokenBarrierError:
            pass  # a worker failed: its error is asserted below
        for t in pool:
            t.join(timeout=120)
            assert not t.is_alive()
        fetches = client.token_fetches
        client.close()
        server_fetches = int(served.command("expire").split()[1])
    finally:
        served.stop()
    assert errors == []
    # The first token, then one per ending.
    assert fetches == phases
    assert server_fetches == phases


def test_sixteen_threads_keep_their_connections():
    """16 threads on one client: a connection per thread, kept alive, not
    one per call (a connection cache trimmed to 4 once did that)."""
    threads, calls = 16, 50
    with RawServer(FakeGenAuth(), record=False) as server:
        client = ManagementClient(AK, SK, host=server.url, timeout=10)
        client.trigger_webhook("wh1")

        def work():
            for _ in range(calls):
                client.trigger_webhook("wh1")

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(timeout=120)
            assert not t.is_alive()
        client.close()
        # Connections are reused, not one per call (800 here): a call takes
        # the connection handle given back last, with its connection, and
        # the pool keeps 8 idle handles; one given back beyond them is freed,
        # its connection closed. How many of the 16 threads are between
        # calls at once is the scheduler's doing (under ASan a few more
        # connections than threads are closed and made again), so the bound
        # only tells reuse from none.
        assert server.connections <= threads * calls // 4


# ---- fork -------------------------------------------------------------------



@pytest.mark.parametrize("tls", [False, True])
def test_fork_child_uses_the_client_parent_unaffected(certificate, tls):
    """Over TLS a child that closed the parent's connection would send a
    close_notify on it; the server would then drop it and the parent would
    have to reconnect: the connection count shows it."""
    ctx = None
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*certificate)
    fake = FakeGenAuth()
    with RawServer(fake, tls=ctx) as server:
        client = ManagementClient(AK, SK, host=server.url, timeout=5,
                                  ca_bundle=str(certificate[0]))
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        assert server.connections == 1
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            code = 1
            try:
                for _ in range(3):
                    assert client.trigger_webhook("wh1")["statusCode"] == 200
                client.close()  # must not touch the parent's connection
                code = 0
            finally:
                os._exit(code)
        assert wait_child(pid) == 0
        assert server.connections == 2  # the child opened its own
        for _ in range(3):
            assert client.trigger_webhook("wh1")["statusCode"] == 200
        assert server.connections == 2  # the parent's still works
        assert client.token_fetches == 1
        client.close()


def test_fork_with_a_fresh_client_in_the_child():
    """A child that inherits a client with no connection yet, and one that
    makes its own client, both work; the parent's pool is untouched."""
    fake = FakeGenAuth()
    with RawServer(fake) as server:
        client = ManagementClient(AK, SK, host=server.url, timeout=5)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                assert client.trigger_webhook("wh1")["statusCode"] == 200
                with ManagementClient(AK, SK, host=server.url) as other:
                    assert other.trigger_webhook("wh1")["statusCode"] == 200
                code = 0
            finally:
                os._exit(code)
        assert wait_child(pid) == 0
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        client.close()


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


def test_a_child_that_forks_again_does_not_hand_on_the_parents_connections():
    """A child that uses the client lets go of the parent's kept connection
    (its socket and its multi handle's wakeup pair), so a grandchild that
    does the same holds no more descriptors than the child: none pile up
    one fork after another. The parent's connection still serves it."""
    fake = FakeGenAuth()
    with RawServer(fake) as server:
        client = ManagementClient(AK, SK, host=server.url, timeout=5)
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child, then the grandchild: each reports its count
            code = 1
            try:
                assert client.trigger_webhook("wh1")["statusCode"] == 200
                os.write(w, b"%d\n" % open_descriptors())
                grandchild = os.fork()
                if grandchild == 0:
                    assert client.trigger_webhook("wh1")["statusCode"] == 200
                    os.write(w, b"%d\n" % open_descriptors())
                else:
                    assert wait_child(grandchild) == 0
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        assert wait_child(pid) == 0
        with os.fdopen(r, "rb") as reports:
            child, grandchild = (int(line) for line in reports.read().split())
        assert grandchild == child
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        assert server.connections == 3  # the parent's, the child's, the grandchild's
        client.close()


@pytest.mark.skipif(UNDER_ASAN, reason="the sanitizer's own locks and fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_fork_while_threads_sign_calls_the_child_is_not_stuck():
    """Children forked while 8 threads make signed calls each make a signed
    call of their own: none waits forever on a lock a thread of the parent
    held at the fork (glibc's gmtime_r and libcrypto's RAND_bytes, which
    signing used, left about one child in 150 stuck). Refused connections:
    the calls are quick, so the threads are mostly signing."""
    with refusing_port() as port:
        fork_while_threads_sign(port)


def fork_while_threads_sign(port):
    client = ManagementClient(AK, SK, host=f"http://127.0.0.1:{port}",
                              timeout=5, max_retries=0, auth="signature")
    stop = threading.Event()

    def sign_calls():
        while not stop.is_set():
            try:
                client.trigger_webhook("wh1")
            except genauth_c.TransportError:
                pass

    threads = [threading.Thread(target=sign_calls) for _ in range(8)]
    for t in threads:
        t.start()
    try:
        for _ in range(100 if SMALL else 500):
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: its exit status, and what it raised
                code = 1
                try:
                    answer = client.trigger_webhook("wh1")
                    os.write(w, f"answered: {answer}".encode()[:4000])
                except genauth_c.TransportError:
                    code = 0
                except BaseException as e:
                    os.write(w, f"{type(e).__name__}: {e}".encode()[:4000])
                finally:
                    os._exit(code)
            os.close(w)
            code = wait_child(pid, timeout=10)
            with os.fdopen(r, "rb") as raised:
                assert code == 0, raised.read().decode(errors="replace")
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    client.close()
