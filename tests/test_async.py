"""AsyncManagementClient: ManagementClient's calls as coroutines, driven by
libcurl's socket interface on the running event loop, against real servers
on loopback."""
import asyncio
import gc
import json
import logging
import os
import random
import selectors
import subprocess
import sys
import threading
import time
import warnings

import pytest

from conftest import AK, SK
from rawserver import Response, announce_and_hold
from loops import LOOPS, loop_with, new_event_loop_of, running_kind
from serve import spawn

import genauth_c
from genauth_c import AsyncManagementClient, _aio
from genauth_c.emulator import Emulator, WebhookReceiver


def fds():
    return len(os.listdir("/proc/self/fd"))


def client_socket_fds(port):
    """This process's fds of TCP sockets connected to `port` (the client's
    side of its connections to a server on loopback)."""
    inodes = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes[link[8:-1]] = int(fd)
    found = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if int(cols[2].rsplit(":", 1)[1], 16) == port and \
                        cols[9] in inodes:
                    found.add(inodes[cols[9]])
    return found


def client_sockets(port):
    return len(client_socket_fds(port))


def thread_ids():
    return set(os.listdir("/proc/self/task"))


@pytest.fixture
def emu():
    """The emulator with webhook 'wh' delivering to a receiver that echoes
    the event name."""
    with Emulator(AK, SK) as e, WebhookReceiver() as rx:
        e.add_webhook("wh", rx.url)
        yield e


@pytest.fixture(scope="module")
def mixed():
    """serve.py's mixed server in a process of its own: its threads are not
    ours. Success echoes requestBody; some webhook ids are faults."""
    port, stop = spawn("mixed")
    yield f"http://127.0.0.1:{port}"
    stop()


def run(coro):
    return asyncio.run(coro)


# Every test runs on each kind of loop in LOOPS (loops.py), through
# asyncio.run(), asyncio.Runner and asyncio.new_event_loop(), in this
# process and in its threads, and in the scripts it runs in a process of
# their own (USE_THE_TESTS_LOOP). A test marked asyncio_loop_only makes a
# SelectorEventLoop subclass of its own (that counts, interrupts, ...),
# reads asyncio's internals, or uses no loop: it runs once, on asyncio's.


def pytest_generate_tests(metafunc):
    if "loop_kind" in metafunc.fixturenames and \
            not metafunc.definition.get_closest_marker("asyncio_loop_only"):
        metafunc.parametrize("loop_kind", LOOPS, indirect=True)


@pytest.fixture(autouse=True)
def loop_kind(request, monkeypatch):
    """The kind of event loop (LOOPS) this test runs on."""
    kind = getattr(request, "param", "asyncio")
    monkeypatch.setenv("GENAUTH_TEST_LOOP", kind)  # for USE_THE_TESTS_LOOP
    if kind == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed "
                            "(make test-deps installs it)")
    new_loop = new_event_loop_of(kind)
    monkeypatch.setattr(asyncio, "new_event_loop", new_loop)
    monkeypatch.setattr(asyncio.events, "new_event_loop", new_loop)
    return kind


# The same, first thing in a script run in a process of its own.
USE_THE_TESTS_LOOP = f"""
import asyncio, os, sys
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
from loops import new_event_loop_of
asyncio.new_event_loop = asyncio.events.new_event_loop = new_event_loop_of(
    os.environ.get("GENAUTH_TEST_LOOP", "asyncio"))
"""


def test_exported():
    assert "AsyncManagementClient" in genauth_c.__all__
    assert genauth_c.AsyncManagementClient is AsyncManagementClient


def test_hundreds_of_tasks_every_result_right_connections_bounded(emu):
    emu.delay = 0.05
    peak = [0]

    async def sample(client, stop):
        # The sockets the client has the loop watch (this process's fd
        # count includes the emulator's own).
        while not stop.is_set():
            if client._engine is not None:
                peak[0] = max(peak[0], len(client._engine.watched))
            await asyncio.sleep(0.005)

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample(client, stop))
            results = await asyncio.gather(*(
                client.trigger_webhook("wh", request_body={"eventName": f"e{i}"})
                for i in range(300)))
            stop.set()
            await sampler
            return results, client.token_fetches

    results, fetches = run(main())
    assert [r["data"]["response"]["eventName"] for r in results] == \
        [f"e{i}" for i in range(300)]
    assert all(r["statusCode"] == 200 for r in results)
    assert fetches == 1
    # At most GENAUTH_EV_MAX_CONNECTIONS (64) connections, however many
    # tasks wait; none left open once the client is closed.
    assert emu.connection_count <= 64
    assert 0 < peak[0] <= 64
    assert client_sockets(emu.port) == 0


def test_same_results_and_exceptions_as_the_sync_client(mixed):
    cases = [("echo", {"x": [1, 2.5, "é"]}), ("business", None),
             ("html", None), ("utf8", None), ("array", None)]
    for raise_for_status in (False, True):
        sync = genauth_c.ManagementClient(AK, SK, host=mixed,
                                          raise_for_status=raise_for_status)

        def outcome(fn):
            try:
                return ("ok", fn())
            except genauth_c.GenAuthError as e:
                return (type(e), str(e))

        want = [outcome(lambda: sync.trigger_webhook(i, None, b))
                for i, b in cases]
        sync.close()

        async def main():
            got = []
            async with AsyncManagementClient(
                    AK, SK, host=mixed,
                    raise_for_status=raise_for_status) as client:
                for i, b in cases:
                    try:
                        got.append(("ok", await client.trigger_webhook(
                            i, request_body=b)))
                    except genauth_c.GenAuthError as e:
                        got.append((type(e), str(e)))
            return got

        got = run(main())
        assert got == want
        assert got[0][0] == "ok" and got[2][0] is genauth_c.DecodeError
        assert (got[1][0] is genauth_c.APIError) == raise_for_status


def test_trigger_webhooks_contract(mixed):
    calls = [{"webhook_id": "echo", "request_body": {"i": i}} for i in range(40)]
    calls[7] = {"webhook_id": "html"}
    calls[9] = {"webhook_id": "business"}

    async def main():
        async with AsyncManagementClient(AK, SK, host=mixed) as client:
            got = await client.trigger_webhooks(calls, concurrency=5)
            empty = await client.trigger_webhooks([])
            return got, empty

    got, empty = run(main())
    with genauth_c.ManagementClient(AK, SK, host=mixed) as sync:
        want = sync.trigger_webhooks(calls, concurrency=5)
    assert empty == []
    assert len(got) == 40
    for g, w in zip(got, want):
        if isinstance(w, Exception):
            assert type(g) is type(w) and str(g) == str(w)
        else:
            assert g == w
    assert got[3]["data"]["response"] == {"i": 3}
    assert isinstance(got[7], genauth_c.DecodeError)
    assert got[9]["statusCode"] == 404


def test_trigger_webhooks_respects_concurrency(emu):
    emu.delay = 0.05

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            return await client.trigger_webhooks(
                [{"webhook_id": "wh"}] * 30, concurrency=3)

    got = run(main())
    assert all(r["statusCode"] == 200 for r in got)
    # The token's connection is reused by the calls.
    assert emu.connection_count <= 3


def test_bad_input_raises_before_anything_is_sent(emu):
    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            with pytest.raises(ValueError, match="webhook_id"):
                await client.trigger_webhook("")
            with pytest.raises(TypeError, match="request_body"):
                await client.trigger_webhook("wh", request_body=[1])
            with pytest.raises(TypeError, match=r"calls\[1\]\['request_headers'\]"):
                await client.trigger_webhooks(
                    [{"webhook_id": "wh"}, {"webhook_id": "wh",
                                            "request_headers": 3}])
            with pytest.raises(ValueError, match="concurrency"):
                await client.trigger_webhooks([{"webhook_id": "wh"}],
                                              concurrency=0)
            with pytest.raises(TypeError):
                await client.trigger_webhook()
            assert client.token_fetches == 0

    run(main())
    assert emu.requests == [] and emu.connection_count == 0


def test_constructor_options_checked_as_the_sync_client():
    with pytest.raises(ValueError, match="brand"):
        AsyncManagementClient(AK, SK, brand="x")
    with pytest.raises(ValueError, match="timeout"):
        AsyncManagementClient(AK, SK, timeout=-1)
    with pytest.raises(TypeError):
        AsyncManagementClient(AK)


def test_cancellation_storm_leaks_nothing_and_the_client_goes_on(emu):
    emu.delay = 0.1
    rng = random.Random(20240610)
    base_threads = thread_ids()

    async def main():
        loop = asyncio.get_running_loop()
        client = AsyncManagementClient(AK, SK, host=emu.url)
        await client.trigger_webhook("wh")  # the token, before the storm
        tasks = [asyncio.create_task(client.trigger_webhook(
            "wh", request_body={"eventName": f"e{i}"})) for i in range(200)]
        victims = set(rng.sample(range(200), 100))
        for i in victims:
            loop.call_later(rng.uniform(0, 0.2), tasks[i].cancel)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        engine = client._engine
        assert engine.calls == 0
        assert client._engine is engine
        watched = engine.watched
        open_sockets = client_socket_fds(emu.port)
        after = await client.trigger_webhook("wh", request_body={"eventName": "after"})
        # Connections left open: at most the bound, for the next calls.
        assert client_sockets(emu.port) <= 64
        await client.aclose()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return tasks, victims, outcomes, watched, open_sockets, after, others

    tasks, victims, outcomes, watched, open_sockets, after, others = run(main())
    for i, (task, outcome) in enumerate(zip(tasks, outcomes)):
        if task.cancelled():
            assert i in victims
            assert type(outcome) is asyncio.CancelledError
        else:
            assert outcome["data"]["response"]["eventName"] == f"e{i}"
    assert sum(t.cancelled() for t in tasks) > 0
    # Once every call ended, only kept connections are watched, for reading
    # (a closed one never is: its fd may be reused).
    assert set(watched.values()) <= {1}
    assert set(watched) <= open_sockets
    assert after["statusCode"] == 200
    assert others == []
    assert client_sockets(emu.port) == 0
    # The emulator's own threads, one per connection, end once the client
    # has closed them: waited for, 5 s at most.
    for _ in range(100):
        if not thread_ids() - base_threads:
            break
        time.sleep(0.05)
    assert thread_ids() - base_threads == set()


def test_cancelled_request_closes_its_connection(emu):
    emu.delay = 1.0

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            await client.trigger_webhook("nope")  # token + one connection
            before = emu.connection_count
            task = asyncio.create_task(client.trigger_webhook("wh"))
            await asyncio.sleep(0.3)  # the request is at the server
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client._engine.calls == 0
            emu.delay = 0
            # The next call cannot reuse the cancelled call's connection.
            await client.trigger_webhook("wh")
            return before, emu.connection_count

    before, after = run(main())
    assert after == before + 1


def test_asyncio_timeout_and_wait_for(emu):
    emu.delay = 2.0

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            t0 = time.monotonic()
            with pytest.raises(TimeoutError) as info:
                async with asyncio.timeout(0.3):
                    await client.trigger_webhook("wh")
            assert not isinstance(info.value, genauth_c.GenAuthError)
            with pytest.raises(TimeoutError) as info:
                await asyncio.wait_for(client.trigger_webhook("wh"), 0.3)
            assert not isinstance(info.value, genauth_c.GenAuthError)
            assert time.monotonic() - t0 < 0.6 + 1.5
            assert client._engine.calls == 0

    run(main())


def test_the_calls_own_timeout_raises_genauth_timeout(emu):
    emu.delay = 3.0

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url,
                                         timeout=0.4) as client:
            t0 = time.monotonic()
            with pytest.raises(genauth_c.TimeoutError):
                await client.trigger_webhook("wh")
            assert time.monotonic() - t0 < 0.4 + 1.5

    run(main())


def test_token_single_flight_across_100_tasks(emu):
    emu.delay_token = 0.2

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            got = await asyncio.gather(*(client.trigger_webhook("wh")
                                         for _ in range(100)))
            return got, client.token_fetches

    got, fetches = run(main())
    assert all(r["statusCode"] == 200 for r in got)
    assert fetches == 1
    assert emu.token_fetches == 1


def test_one_retry_after_a_refused_token(emu):
    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            await client.trigger_webhook("wh")
            emu.fail_next_calls_with_401 = 1
            got = await client.trigger_webhook("wh")
            return got, client.token_fetches

    got, fetches = run(main())
    assert got["statusCode"] == 200
    assert fetches == 2


def test_token_refusal_reaches_every_waiting_task(emu):
    async def main():
        async with AsyncManagementClient(AK, "wrong", host=emu.url) as client:
            got = await asyncio.gather(*(client.trigger_webhook("wh")
                                         for _ in range(10)),
                                       return_exceptions=True)
            return got, client.token_fetches

    got, fetches = run(main())
    assert all(isinstance(e, genauth_c.AuthError) for e in got)
    assert fetches == 0  # tokens fetched
    assert emu.token_fetches == 1  # one refused request for all ten


def test_a_token_fetch_that_timed_out_for_one_task_is_not_anothers_timeout(
        fake):
    """The token fetch runs within the time of the task that started it. A
    task that began waiting for it later, and still has time when that
    fetch times out, fetches a token of its own, as a thread does: it does
    not end with the first task's TimeoutError."""
    arrived = threading.Event()

    def first_fetch_hangs(req):
        if req.path.endswith("/get-management-token") and not arrived.is_set():
            arrived.set()
            return Response(delay=60)
        return fake(req)

    fake.server.handler = first_fetch_hangs
    timeout = 6.0  # the second task has 3 s for its own fetch and call

    async def main():
        async with AsyncManagementClient(AK, SK, host=fake.server.url,
                                         timeout=timeout) as client:
            first = asyncio.ensure_future(client.trigger_webhook("wh1"))
            loop = asyncio.get_running_loop()
            assert await loop.run_in_executor(None, arrived.wait, 30)
            # The second task has half its time left when the first's ends.
            await asyncio.sleep(timeout / 2)
            second = await client.trigger_webhook("wh1")
            return await asyncio.gather(first, return_exceptions=True), second

    (first,), second = run(main())
    assert type(first) is genauth_c.TimeoutError, first
    assert second["statusCode"] == 200
    assert fake.token_fetches == 1  # the second; the hung one never reached it


def test_close(emu):
    emu.delay = 1.0

    async def main():
        client = AsyncManagementClient(AK, SK, host=emu.url)
        async with client:
            await client.trigger_webhook("nope")
            pending = asyncio.create_task(client.trigger_webhook("wh"))
            await asyncio.sleep(0.1)
            await client.aclose()
            with pytest.raises(genauth_c.ClientClosedError):
                await pending
        await client.aclose()  # idempotent
        assert client.closed
        with pytest.raises(genauth_c.ClientClosedError):
            await client.trigger_webhook("wh")
        with pytest.raises(genauth_c.ClientClosedError):
            await client.trigger_webhooks([{"webhook_id": "wh"}])
        with pytest.raises(genauth_c.ClientClosedError):
            async with client:
                pass

    run(main())


CLOSE_FROM_ANOTHER_THREAD = USE_THE_TESTS_LOOP + """
import asyncio, sys, threading, time
import genauth_c
from genauth_c.emulator import Emulator

with Emulator("AK", "SK") as emu:
    emu.add_webhook("wh", "http://127.0.0.1:9/")  # answered at once: 602
    for round_ in range(int(sys.argv[1])):
        client = genauth_c.AsyncManagementClient("AK", "SK", host=emu.url,
                                                 timeout=5)
        busy, ended = threading.Event(), []

        def loop_thread():
            async def main():
                async def calls():
                    while True:  # the engine always has calls in flight
                        await asyncio.gather(*(client.trigger_webhook("wh")
                                               for _ in range(20)))
                        busy.set()
                try:
                    await calls()
                except genauth_c.ClientClosedError:
                    ended.append("closed")
            asyncio.run(main())

        thread = threading.Thread(target=loop_thread)
        thread.start()
        assert busy.wait(10)
        time.sleep(0.01 * (round_ % 7))
        asyncio.run(client.aclose())  # on this thread's own loop
        assert client.closed
        thread.join(10)
        assert not thread.is_alive() and ended == ["closed"], ended
print("ok")
"""


def test_aclose_from_another_thread_while_its_loop_runs_calls():
    """aclose() awaited on another thread's loop (asyncio.run(client.aclose())
    from a worker thread) while the client's own loop, in its thread, has
    calls in flight: the engine is that loop's alone, so it is closed there,
    at the loop's next turn, and those calls end with ClientClosedError.
    Closing it from the other thread meanwhile crashed the process."""
    out = subprocess.run([sys.executable, "-c", CLOSE_FROM_ANOTHER_THREAD, "30"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "ok"


def test_a_batch_stopped_by_aclose_leaves_no_exception_unread(emu):
    """aclose() ends each of a batch's calls in flight with
    ClientClosedError; the batch raises the first, and the others' must not
    be logged as 'Future exception was never retrieved'."""
    emu.delay = 5.0

    async def main():
        loop = asyncio.get_running_loop()
        reported = []
        loop.set_exception_handler(lambda loop, context: reported.append(
            context["message"]))
        client = AsyncManagementClient(AK, SK, host=emu.url)
        batch = asyncio.create_task(client.trigger_webhooks(
            [{"webhook_id": "wh"}] * 8, concurrency=4))
        for _ in range(500):  # until the batch has its calls out; 5 s at most
            if client._engine is not None and client._engine.calls == 4:
                break
            await asyncio.sleep(0.01)
        assert client._engine.calls == 4
        await client.aclose()
        with pytest.raises(genauth_c.ClientClosedError):
            await batch
        del batch
        await asyncio.sleep(0)  # the futures' callbacks run
        gc.collect()  # an unread future complains when it is collected
        return reported

    assert run(main()) == []


def test_a_client_belongs_to_its_first_loop(emu):
    client = AsyncManagementClient(AK, SK, host=emu.url)

    async def use():
        return await client.trigger_webhook("wh")

    assert run(use())["statusCode"] == 200
    with pytest.raises(RuntimeError, match="event loop"):
        run(use())
    with pytest.raises(RuntimeError):
        client.trigger_webhook("wh").send(None)  # no running loop

    async def close():
        await client.aclose()
    run(close())


def test_a_client_used_again_after_its_asyncio_run_says_why(emu):
    """asyncio.run() twice on one client, the usual first script: the
    message said only 'belongs to the event loop it was first used on, not
    to the running one', not that that loop was closed, nor that each
    asyncio.run() makes a new one."""
    client = AsyncManagementClient(AK, SK, host=emu.url)
    assert asyncio.run(client.trigger_webhook("wh"))["statusCode"] == 200
    with pytest.raises(RuntimeError) as info:
        asyncio.run(client.trigger_webhook("wh"))
    assert str(info.value) == (
        "this AsyncManagementClient belongs to the event loop it was first "
        "used on, which is closed (each asyncio.run() makes a new loop): "
        "make the client in the coroutine that asyncio.run() runs, one per "
        "event loop")
    asyncio.run(client.aclose())


def test_with_instead_of_async_with_says_what_to_write(emu):
    """The sync client's habit: Python's own words ('does not support the
    context manager protocol') did not say to write 'async with'."""
    with pytest.raises(TypeError) as info:
        with AsyncManagementClient(AK, SK, host=emu.url):  # type: ignore[attr-defined]
            pass
    assert str(info.value) == (
        "AsyncManagementClient is used with 'async with' (or closed with "
        "'await client.aclose()'); ManagementClient is the one for 'with'")
    assert emu.requests == []


def test_two_threads_loops_using_a_new_client_at_once_one_binds_it(
        emu, loop_kind):
    """Two threads, each running its own loop, make a new client's first
    call at the same moment: one loop binds the client; the other's call
    raises RuntimeError (it did not: each bound an engine of its own, and
    the client held only the last). Binding asks the loop for its methods:
    there each thread waits, up to 2 s, for the other to arrive too."""
    client = AsyncManagementClient(AK, SK, host=emu.url)
    arrived = []
    both_in = threading.Event()

    class MeetingLoop:
        def __getattribute__(self, name):
            if name == "add_reader" and not both_in.is_set():
                arrived.append(name)
                if len(arrived) == 2:
                    both_in.set()
                both_in.wait(2)
            return super().__getattribute__(name)

    outcomes = []

    def in_thread():
        async def call():
            try:
                outcomes.append((await client.trigger_webhook("wh"))[
                    "statusCode"])
            except RuntimeError as e:
                outcomes.append(str(e))
        loop = loop_with(MeetingLoop, loop_kind)
        try:
            loop.run_until_complete(call())
        finally:
            loop.close()

    threads = [threading.Thread(target=in_thread) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    assert sorted(map(str, outcomes)) == [
        "200", "this AsyncManagementClient belongs to the event loop it "
        "was first used on, not to the running one; make one client per "
        "event loop"], outcomes
    asyncio.run(client.aclose())  # its loop is closed: closed without it


def test_loop_closed_with_a_client_open_warns(emu):
    kept = {}

    async def main():
        kept["client"] = AsyncManagementClient(AK, SK, host=emu.url)
        await kept["client"].trigger_webhook("wh")

    run(main())
    with pytest.warns(ResourceWarning, match="unclosed"):
        del kept["client"]
        gc.collect()


@pytest.mark.parametrize("as_errors", [False, True],
                         ids=["warned", "ResourceWarning as error"])
def test_a_client_dropped_open_on_a_running_loop_is_closed_by_it(
        emu, loop_kind, monkeypatch, as_errors):
    """Collected while its loop runs (its kept connection still watched):
    a ResourceWarning, then the loop closes it at its next turn, unwatching
    and closing the connection. Under -W error::ResourceWarning the
    warning, raised in __del__, is reported as unraisable and the client is
    closed all the same (the warning was raised before the close was
    queued, which it skipped: the connection stayed open and watched)."""
    loop = WatchTrackingLoop(loop_kind)
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)

    async def main():
        client = AsyncManagementClient(AK, SK, host=emu.url)
        await client.trigger_webhook("wh")
        engine = client._engine
        kept = set(engine.watched)
        assert kept and kept <= set(loop.watches)  # the kept connection
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("error" if as_errors else "always",
                                  ResourceWarning)
            del client
            gc.collect()
        for _ in range(100):  # a turn or two of the loop; 5 s at most
            if not engine.watched:
                break
            await asyncio.sleep(0.05)
        # Unregistered from the loop too: its fd may be reused.
        return ([w for w in warned], engine.watched,
                kept & set(loop.watches), client_sockets(emu.port))

    try:
        warned, watched, still_registered, sockets = \
            loop.run_until_complete(main())
    finally:
        loop.close()
    raised = [type(u.exc_value) for u in reported]
    categories = [w.category for w in warned]
    assert (raised, categories) == (([ResourceWarning], []) if as_errors else
                                    ([], [ResourceWarning]))
    message = reported[0].exc_value if as_errors else warned[0].message
    assert "unclosed" in str(message)
    assert watched == {}
    assert still_registered == set()
    assert sockets == 0


def test_the_tests_loop(loop_kind):
    """The loop_kind fixture reaches asyncio.run() and asyncio.Runner, in
    this process and in a script that begins with USE_THE_TESTS_LOOP."""
    assert run(running_kind()) == loop_kind
    with asyncio.Runner() as runner:
        assert runner.run(running_kind()) == loop_kind
    out = subprocess.run(
        [sys.executable, "-c", USE_THE_TESTS_LOOP + "from loops import "
         "running_kind\nprint(asyncio.run(running_kind()))"],
        capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == loop_kind, out.stderr[-3000:]


def test_half_of_the_tasks_cancelled_then_a_batch(emu):
    emu.delay = 0.05

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            tasks = [asyncio.create_task(client.trigger_webhook("wh"))
                     for _ in range(50)]
            await asyncio.sleep(0.01)
            for t in tasks[::2]:
                t.cancel()
            got = await asyncio.gather(*tasks, return_exceptions=True)
            batch = await client.trigger_webhooks([{"webhook_id": "wh"}] * 10)
            return got, batch, client._engine.calls

    got, batch, calls = run(main())
    assert all(r["statusCode"] == 200 for r in got[1::2])
    assert all(r["statusCode"] == 200 for r in batch)
    assert calls == 0


def port_of(url):
    return int(url.rsplit(":", 1)[1])


async def statuses(client, kinds):
    """The calls of serve.py's MIXED `kinds` at once: each one's status
    code, or its exception's name."""
    got = await asyncio.gather(*(client.trigger_webhook(k) for k in kinds),
                               return_exceptions=True)
    return [type(r).__name__ if isinstance(r, BaseException)
            else r["statusCode"] for r in got]


# Kept; answered with Connection: close; lost before the answer, or in its
# middle. (Not a close that follows an answer without saying so, a FIN or
# an RST: a call that reuses the connection before that close arrives
# loses its request, TransportError 42, by design; CHURN has them.)
CHURNING = ["echo", "connclose", "drop", "reset"]
CHURNED = [200, 200, "TransportError", "TransportError"]


def test_one_runner_many_runs_a_client_each_or_one_for_all(mixed):
    """asyncio.Runner keeps its event loop from one run() to the next: a
    client made in each run, or one client that serves every run (its
    connections kept, and closed by the server, while the loop is stopped
    between runs) and is closed by the last, as the README says."""
    async def own_client():
        async with AsyncManagementClient(AK, SK, host=mixed) as client:
            return await statuses(client, CHURNING)

    shared = AsyncManagementClient(AK, SK, host=mixed)
    with asyncio.Runner() as runner:
        for _ in range(3):
            assert runner.run(own_client()) == CHURNED
        for _ in range(3):
            assert runner.run(statuses(shared, CHURNING)) == CHURNED
        fetches = shared.token_fetches
        runner.run(shared.aclose())
    assert fetches == 1
    assert client_sockets(port_of(mixed)) == 0


def test_a_loop_in_a_thread_other_than_the_main_one(mixed):
    """asyncio.run() in a worker thread (no signal handling there): calls
    whose connections end every way, a call cancelled in flight, a batch,
    the close."""
    out = []

    def in_thread():
        async def main():
            async with AsyncManagementClient(AK, SK, host=mixed) as client:
                slow = asyncio.ensure_future(client.trigger_webhook("slow"))
                got = await statuses(client, CHURNING)
                slow.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await slow
                batch = await client.trigger_webhooks(
                    [{"webhook_id": k} for k in CHURNING])
                return got, [type(r).__name__ if isinstance(r, Exception)
                             else r["statusCode"] for r in batch]
        out.append(asyncio.run(main()))

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert out == [(CHURNED, CHURNED)]
    assert client_sockets(port_of(mixed)) == 0


def test_no_thread_started(mixed):
    async def main():
        async with AsyncManagementClient(AK, SK, host=mixed) as client:
            await asyncio.gather(*(client.trigger_webhook("echo")
                                   for _ in range(50)))
            await client.trigger_webhooks([{"webhook_id": "echo"}] * 20)
            return thread_ids()

    # Which threads, not how many: a thread left by an earlier test may end
    # meanwhile.
    before = thread_ids()
    during = run(main())
    assert during - before == set()
    assert thread_ids() - before == set()


class CountingLoop(asyncio.SelectorEventLoop):
    """Counts the handles scheduled and the socket events the selector
    returned."""

    def __init__(self):
        super().__init__()
        self.handles = 0
        self.events = 0

    def call_soon(self, *args, **kwargs):
        self.handles += 1
        return super().call_soon(*args, **kwargs)

    def call_at(self, *args, **kwargs):
        self.handles += 1
        return super().call_at(*args, **kwargs)

    def _process_events(self, event_list):
        self.events += len(event_list)
        return super()._process_events(event_list)


@pytest.mark.asyncio_loop_only
def test_idle_client_with_an_open_connection_never_wakes_the_loop(emu):
    loop = CountingLoop()

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            await client.trigger_webhook("wh")  # a kept-alive connection now
            handles, events = loop.handles, loop.events
            # Blocking on purpose: the loop would run nothing else anyway,
            # and this schedules nothing of its own.
            await asyncio.sleep(0)
            start_h, start_e = loop.handles, loop.events
            idle = loop.create_future()
            loop.call_later(2.0, idle.set_result, None)  # 1 handle
            await idle                                   # 1 wake-up of ours
            return (loop.handles - start_h, loop.events - start_e,
                    handles, events, client._engine.watched)

    try:
        idle_handles, idle_events, handles, events, watched = \
            loop.run_until_complete(main())
    finally:
        loop.close()
    assert handles > 0 and events > 0  # the counters do count
    # The kept connection stays watched for reading (the next call on it
    # registers nothing), and is silent.
    assert list(watched.values()) == [1]
    # Over 2 s: our own timer and the task's wake-up, nothing of the client's.
    assert idle_handles == 2
    assert idle_events == 0


def WatchTrackingLoop(kind):
    """A new loop of `kind` that keeps in .watches what it watches, as its
    add_reader, add_writer, remove_reader and remove_writer made it (and
    as engine.watched reads: {fd: 1 read, 2 write, 3 both}): what the
    loop's selector would show, on any kind of loop."""
    return loop_with(_WatchTrackingLoop, kind)


class _WatchTrackingLoop:
    """WatchTrackingLoop's methods, before its event loop class's."""

    def __init__(self):
        super().__init__()
        self.watches = {}

    def _watch(self, fd, events, on):
        events = (self.watches.pop(fd, 0) | events) if on else \
            (self.watches.pop(fd, 0) & ~events)
        if events:
            self.watches[fd] = events

    def add_reader(self, fd, *args):
        super().add_reader(fd, *args)
        self._watch(fd, 1, True)

    def add_writer(self, fd, *args):
        super().add_writer(fd, *args)
        self._watch(fd, 2, True)

    def remove_reader(self, fd):
        removed = super().remove_reader(fd)
        self._watch(fd, 1, False)
        return removed

    def remove_writer(self, fd):
        removed = super().remove_writer(fd)
        self._watch(fd, 2, False)
        return removed


def CallbackCountingLoop(kind):
    """A new loop of `kind` that lists in .ran the name of each callback
    of the engine's it runs (a reader, a writer, a timer): a subclass of
    the loop's class that wraps the callbacks the engine gives it."""
    return loop_with(_CallbackCountingLoop, kind)


class _CallbackCountingLoop:
    """CallbackCountingLoop's methods, before its event loop class's."""

    def __init__(self):
        super().__init__()
        self.ran = []
        self.timers = []  # the engine's call_later handles, and callbacks

    def counted(self, callback):
        if not isinstance(getattr(callback, "__self__", None),
                          _aio._AsyncEngine):
            return callback

        def run_it(*args):
            run_it.ran = True
            self.ran.append(callback.__name__)
            return callback(*args)
        run_it.ran = False
        return run_it

    def add_reader(self, fd, callback, *args):
        return super().add_reader(fd, self.counted(callback), *args)

    def add_writer(self, fd, callback, *args):
        return super().add_writer(fd, self.counted(callback), *args)

    def call_soon(self, callback, *args, **kwargs):
        return super().call_soon(self.counted(callback), *args, **kwargs)

    def call_later(self, delay, callback, *args, **kwargs):
        counted = self.counted(callback)
        handle = super().call_later(delay, counted, *args, **kwargs)
        if counted is not callback:
            self.timers.append((handle, counted))
        return handle


def test_an_idle_client_is_never_called_back_by_its_loop(emu, loop_kind):
    """The README's 'an idle client wakes the loop zero times', on every
    kind of loop (the test above counts every wake-up, on asyncio's): with
    its kept connection watched, nothing the engine gave the loop (a
    reader, a writer, a timer) runs while the client is idle."""
    loop = CallbackCountingLoop(loop_kind)
    ran = loop.ran

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            for _ in range(3):
                await client.trigger_webhook("wh")
            busy = len(ran)
            await asyncio.sleep(1)
            return busy, ran[busy:], client._engine.watched

    try:
        busy, idle, watched = loop.run_until_complete(main())
    finally:
        loop.close()
    assert busy > 0  # the count counts
    assert list(watched.values()) == [1]  # the kept connection
    assert idle == []


def test_a_kept_connection_the_server_closes_is_heard_of_once(
        fake, loop_kind):
    """The server closes a kept-alive connection while the client is idle:
    the loop hears of it (the close), the client stops watching it, the
    loop hears nothing more (a loop that still watched the closed socket
    would call the engine back on every turn), and the next call opens a
    new connection."""
    loop = CallbackCountingLoop(loop_kind)
    # Answered after a wait (so the socket is watched), then closed.
    fake.response = Response.json(fake.envelope, delay=0.05, close_after=True)

    async def main():
        async with AsyncManagementClient(AK, SK, host=fake.server.url) as client:
            await client.trigger_webhook("wh")
            for _ in range(100):  # until the close was heard of, 5 s at most
                if not client._engine.watched:
                    break
                await asyncio.sleep(0.05)
            watched = client._engine.watched
            ran = len(loop.ran)
            await asyncio.sleep(0.3)
            idle_events = loop.ran[ran:]
            fake.response = None
            after = await client.trigger_webhook("wh")
            return watched, idle_events, after

    try:
        watched, idle_events, after = loop.run_until_complete(main())
    finally:
        loop.close()
    assert watched == {}
    assert idle_events == []
    assert after == fake.envelope
    assert fake.server.connections == 2



def InterruptingLoop(method, exc=KeyboardInterrupt, before=False):
    """A loop of the test's kind (loop_kind) one of whose methods, called
    by the engine, raises `exc` once, while `armed`: Ctrl-C landed in the
    method's Python code, as it returned (its work done), or as it began
    (`before`: undone). The methods: add_reader, add_writer, remove_reader,
    remove_writer, call_soon and call_later (for the engine's callbacks),
    cancel (of the engine's timer handles), set_result and set_exception
    (of the futures this loop makes)."""
    return loop_with(_InterruptingLoop, os.environ["GENAUTH_TEST_LOOP"],
                     method, exc, before)


class _InterruptingLoop(_WatchTrackingLoop):
    """InterruptingLoop's methods, before its event loop class's (and a
    WatchTrackingLoop's: what a method interrupted before its work did not
    watch or unwatch is not in .watches)."""

    def __init__(self, method, exc, before):
        super().__init__()
        self.method, self.exc, self.before = method, exc, before
        self.armed = True
        self.raised = False

    def trip(self, method, work, *args):
        if not (self.armed and method == self.method):
            return work(*args)
        self.armed = False
        self.raised = True
        if not self.before:
            work(*args)
        raise self.exc

    def add_reader(self, *args):
        return self.trip("add_reader", super().add_reader, *args)

    def add_writer(self, *args):
        return self.trip("add_writer", super().add_writer, *args)

    def remove_reader(self, fd):
        return self.trip("remove_reader", super().remove_reader, fd)

    def remove_writer(self, fd):
        return self.trip("remove_writer", super().remove_writer, fd)

    def call_soon(self, callback, *args, **kwargs):
        if not isinstance(getattr(callback, "__self__", None),
                          _aio._AsyncEngine):
            return super().call_soon(callback, *args, **kwargs)
        return _InterruptingHandle(self, self.trip(
            "call_soon", super().call_soon, callback, *args))

    def call_later(self, delay, callback, *args, **kwargs):
        if not isinstance(getattr(callback, "__self__", None),
                          _aio._AsyncEngine):
            return super().call_later(delay, callback, *args, **kwargs)
        return _InterruptingHandle(self, self.trip(
            "call_later", super().call_later, delay, callback, *args))

    def create_future(self):
        return _InterruptingFuture(loop=self)


class _InterruptingHandle:
    def __init__(self, loop, handle):
        self.loop, self.handle = loop, handle

    def cancel(self):
        return self.loop.trip("cancel", self.handle.cancel)


class _InterruptingFuture(asyncio.Future):
    def set_result(self, result):
        return self.get_loop().trip("set_result", super().set_result, result)

    def set_exception(self, exception):
        return self.get_loop().trip("set_exception", super().set_exception,
                                    exception)


@pytest.fixture
def unraisable(monkeypatch):
    """What is reported as unraisable meanwhile."""
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    return reported


# The method that raises, then what it raises (KeyboardInterrupt unless
# SystemExit) and when ("before" its work, else after).
@pytest.mark.parametrize("case", [
    "add_writer", "add_reader", "add_reader before", "add_reader SystemExit",
    "remove_writer", "call_soon", "call_soon before", "call_later",
    "call_later before", "cancel", "set_result", "set_result SystemExit"])
def test_ctrl_c_in_a_loop_method_the_engine_calls_leaves_the_loop(
        fake, unraisable, case):
    """Ctrl-C that lands in a loop's (or a future's) method the engine calls
    from inside libcurl cannot stop libcurl there: it is held, and raised
    by the loop's callback (or the call's start) that ran the engine, so
    that it leaves the loop as one raised in any of its callbacks does. It
    was reported as unraisable, and lost: the loop went on. SystemExit
    likewise. The client is not left broken: the next call works (a timer
    whose handle the loop never made runs all the same), the interrupted
    one ends (at the latest with ClientClosedError, when the client
    closes), and the client closes."""
    method, *how = case.split()
    exc = SystemExit if "SystemExit" in how else KeyboardInterrupt
    before = "before" in how
    loop = InterruptingLoop(method, exc, before)
    # Without the interrupt raised, a call whose socket the loop does not
    # watch (before=True) would wait for its answer this long.
    client = AsyncManagementClient(AK, SK, host=fake.server.url, timeout=10)

    async def two_calls():
        # The second starts the first call's timer anew (cancel).
        await client.trigger_webhook("wh1")
        return await client.trigger_webhook("wh1")

    task = loop.create_task(two_calls())
    # And one whose timer the loop never made (call_soon, before=True) would
    # never end: a bound for the test, not a time it asserts.
    guard = loop.call_later(60, loop.stop)
    try:
        with pytest.raises(exc):
            loop.run_until_complete(task)
        guard.cancel()
        assert loop.raised
        assert loop.run_until_complete(
            client.trigger_webhook("wh1")) == fake.envelope
        loop.run_until_complete(client.aclose())
        assert client.closed
        loop.run_until_complete(asyncio.wait([task]))
        outcome = task.exception()
        assert outcome is None or isinstance(
            outcome, (exc, genauth_c.ClientClosedError))
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    assert unraisable == []


def test_ctrl_c_in_a_loop_method_as_the_client_closes(fake, unraisable):
    """The same in aclose(): the engine closes all the same, and the
    interrupt comes out of aclose()."""
    loop = InterruptingLoop("remove_reader")
    loop.armed = False
    client = AsyncManagementClient(AK, SK, host=fake.server.url)
    try:
        # A kept connection, watched for reading.
        loop.run_until_complete(client.trigger_webhook("wh1"))
        loop.armed = True
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(client.aclose())
        assert loop.raised
        assert client.closed
        loop.run_until_complete(client.aclose())
        with pytest.raises(genauth_c.ClientClosedError):
            loop.run_until_complete(client.trigger_webhook("wh1"))
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    assert unraisable == []


def test_ctrl_c_in_a_loop_method_as_a_call_is_cancelled(fake, unraisable):
    """The same as a cancelled call's transfer leaves libcurl: the interrupt
    comes out of the cancellation, and so of the task."""
    arrived = threading.Event()
    fake.server.handler = announce_and_hold(fake, arrived)
    loop = InterruptingLoop("remove_reader")
    loop.armed = False
    client = AsyncManagementClient(AK, SK, host=fake.server.url)
    try:
        task = loop.create_task(client.trigger_webhook("wh1"))
        loop.run_until_complete(
            loop.run_in_executor(None, arrived.wait, 30))
        assert arrived.is_set()
        loop.armed = True
        task.cancel()
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(task)
        assert loop.raised
        fake.server.handler = fake
        assert loop.run_until_complete(
            client.trigger_webhook("wh1")) == fake.envelope
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    assert unraisable == []


def test_ctrl_c_as_the_loop_stops_watching_a_socket_leaves_it_unwatched(
        fake, unraisable):
    """Ctrl-C landing in remove_writer before it did its work (as the sent
    request's socket turns to reading its answer) left the loop watching
    the socket for writing, which the core no longer did, nor would ask
    again: the loop called the engine back on every turn, at 100% CPU for
    as long as the connection was kept. The engine asks once more."""
    loop = InterruptingLoop("remove_writer", before=True)
    client = AsyncManagementClient(AK, SK, host=fake.server.url, timeout=10)
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(client.trigger_webhook("wh1"))
        assert loop.raised
        assert loop.run_until_complete(
            client.trigger_webhook("wh1")) == fake.envelope
        assert loop.watches == client._engine.watched
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    assert unraisable == []


@pytest.mark.parametrize("method", ["set_result", "set_exception"])
def test_ctrl_c_before_a_future_is_settled_still_settles_it(
        fake, unraisable, method):
    """Ctrl-C landing in the future's set_result (or set_exception) before
    it did its work: the interrupt came out of the loop, but the call's
    outcome was never given to its future, so the task awaiting it, run
    again, waited forever. The engine settles it once more."""
    loop = InterruptingLoop(method, before=True)
    if method == "set_exception":
        fake.response = Response(status=503, body=b"down")
    client = AsyncManagementClient(AK, SK, host=fake.server.url, timeout=10)
    task = loop.create_task(client.trigger_webhook("wh1"))
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(task)
        assert loop.raised
        # The task run again, bounded (a loop stopped before the task ends
        # raises RuntimeError). The task itself, not asyncio.wait([task]):
        # after a KeyboardInterrupt, uvloop (0.23) leaves the first run's
        # done callback on it, which stops the loop as the task ends.
        guard = loop.call_later(10, loop.stop)
        try:
            loop.run_until_complete(task)
        except genauth_c.GenAuthError:
            pass
        guard.cancel()
        if method == "set_result":
            assert task.result() == fake.envelope
        else:
            assert isinstance(task.exception(), genauth_c.GenAuthError)
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
    assert unraisable == []


NOTEBOOK_CELL = """
from genauth_c import AsyncManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver
with Emulator("AK", "SK") as emu, WebhookReceiver() as rx:
    emu.add_webhook("wh", rx.url)
    async with AsyncManagementClient("AK", "SK", host=emu.url) as client:
        envelope = await client.trigger_webhook("wh")
        batch = await client.trigger_webhooks([{"webhook_id": "wh"}] * 5)
print(envelope["statusCode"], [r["statusCode"] for r in batch])
"""


@pytest.mark.asyncio_loop_only
def test_notebook_cell_with_top_level_await(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(NOTEBOOK_CELL))
    client = nbclient.NotebookClient(
        nb, timeout=60, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    out = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert out.strip() == "200 [200, 200, 200, 200, 200]"


# ---- every method of ManagementClient, as a coroutine ---------------------

from test_webhook_api import BAD, JSON, WIRE, only_call  # noqa: E402


@pytest.mark.parametrize("name,args,kwargs,method,path,query,body", WIRE)
def test_every_method_sends_what_the_sync_client_sends(
        fake, name, args, kwargs, method, path, query, body):
    async def main():
        async with AsyncManagementClient(AK, SK, host=fake.server.url) as client:
            return await getattr(client, name)(*args, **kwargs)

    assert run(main()) == fake.envelope
    req, got_path, got_query = only_call(fake)
    assert (req.method, got_path, got_query) == (method, path, query)
    assert req.body == (body or b"")
    assert req.header("authorization").startswith("Bearer ")


@pytest.mark.parametrize("name,args,kwargs,exc,text", BAD)
def test_bad_arguments_raise_as_the_sync_client_before_sending(
        fake, name, args, kwargs, exc, text):
    text = text.replace("ManagementClient.", "AsyncManagementClient.")

    async def main():
        async with AsyncManagementClient(AK, SK, host=fake.server.url) as client:
            with pytest.raises(exc) as info:
                await getattr(client, name)(*args, **kwargs)
            return str(info.value)

    assert text in run(main())
    assert fake.server.requests == []
    assert fake.server.connections == 0


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_every_method_against_the_emulator(auth):
    async def main(emu, rx):
        async with AsyncManagementClient(AK, SK, host=emu.url, auth=auth) as client:
            events = await client.get_webhook_event_list()
            assert "user:created" in [e["value"] for e in events["data"]["events"]]
            # Concurrent creations, each its own result.
            created = await asyncio.gather(*(client.create_webhook(
                JSON, ["user:created"], rx.url + f"/h{i}", f"hook{i}", True,
                retry_config={"enabled": True, "count": 2}) for i in range(5)))
            ids = [c["data"]["webhookId"] for c in created]
            assert [c["data"]["name"] for c in created] == [f"hook{i}" for i in range(5)]
            listed = await client.list_webhooks(page=1, limit=50)
            assert listed["data"]["totalCount"] == 5
            got = await asyncio.gather(*(client.get_webhook(i) for i in ids))
            assert [g["data"] for g in got] == [c["data"] for c in created]
            updated = await client.update_webhook(ids[0], name="renamed")
            assert updated["data"]["name"] == "renamed"
            fired = await client.trigger_webhook(ids[0], request_body={"eventName": "test"})
            assert fired["statusCode"] == 200, fired
            logs = await client.get_webhook_logs(ids[0], 1, 10)
            assert logs["data"]["list"][0]["webhookId"] == ids[0]
            deleted = await client.delete_webhook(ids)
            assert deleted["data"] == {"success": True}
            missing = await client.get_webhook(ids[0])
            assert missing["statusCode"] == 404
            assert (await client.list_webhooks(limit=51))["statusCode"] == 400
            return client.token_fetches

    with Emulator(AK, SK) as emu, WebhookReceiver() as rx:
        fetches = run(main(emu, rx))
        if auth == "signature":
            assert fetches == 0
            gets = [r for r in emu.requests if r.method == "GET"]
            assert gets and all(r.auth == "signature" and r.auth_error is None
                                for r in gets)
        else:
            assert fetches == 1


def test_a_get_is_retried_once_after_a_refused_token(emu):
    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url) as client:
            assert (await client.list_webhooks())["statusCode"] == 200
            emu.expire_tokens()
            got = await asyncio.gather(client.get_webhook_event_list(),
                                       client.get_webhook("wh"))
            return got, client.token_fetches

    got, fetches = run(main())
    assert [g["statusCode"] for g in got] == [200, 200]
    assert fetches == 2


def test_raise_for_status_on_every_method(fake):
    fake.envelope = {"statusCode": 403, "message": "no", "apiCode": 1, "data": None}

    async def main():
        async with AsyncManagementClient(AK, SK, host=fake.server.url,
                                         raise_for_status=True) as client:
            for name, args, kwargs, *_ in WIRE:
                with pytest.raises(genauth_c.APIError) as info:
                    await getattr(client, name)(*args, **kwargs)
                assert info.value.status_code == 403

    run(main())


def test_a_batch_refused_for_a_key_keeps_the_callers_objects_intact():
    """A batch refused for an unexpected key after a known one releases
    nothing it did not take (sync and async share the code)."""
    webhook_id = "".join(["refcount-", "probe"])  # not interned
    before = sys.getrefcount(webhook_id)
    calls = [{"webhook_id": webhook_id, "bogus": 1}]
    with genauth_c.ManagementClient(AK, SK, host="http://127.0.0.1:9") as sync:
        for _ in range(50):
            with pytest.raises(TypeError, match=r"calls\[0\]: unexpected key 'bogus'"):
                sync.trigger_webhooks(calls)

    async def main():
        async with AsyncManagementClient(AK, SK, host="http://127.0.0.1:9") as client:
            for _ in range(50):
                with pytest.raises(TypeError, match="unexpected key 'bogus'"):
                    await client.trigger_webhooks(calls)

    run(main())
    del calls
    assert sys.getrefcount(webhook_id) == before


def test_a_client_whose_loop_closed_with_tasks_pending_is_collected(emu):
    """Tasks still awaiting calls when their loop is closed: the client, its
    engine and the calls are garbage, and are collected (with the
    ResourceWarning), not kept forever."""
    import weakref

    emu.delay = 5.0
    loop = asyncio.new_event_loop()
    client = AsyncManagementClient(AK, SK, host=emu.url)

    async def start():
        await client.trigger_webhook("nope")  # the token
        return [asyncio.create_task(client.trigger_webhook("wh"))
                for _ in range(3)]

    tasks = loop.run_until_complete(start())
    loop.run_until_complete(asyncio.sleep(0.2))  # the requests are out
    assert client._engine.calls == 3
    loop.close()
    ref = weakref.ref(client)

    def engines():
        return sum(type(o).__name__ == "_AsyncEngine" for o in gc.get_objects())

    gc.collect()  # engines earlier tests left as garbage are not counted
    before = engines()
    del client, tasks
    collected_with_a_warning(loop, ref)
    assert engines() == before - 1


def collected_with_a_warning(loop, ref):
    """The client `ref` names, its loop closed with calls pending and its
    last reference dropped, is collected with a ResourceWarning."""
    # The pending tasks' own complaint goes to the closed loop's handler.
    loop.set_exception_handler(lambda loop, context: None)
    with pytest.warns(ResourceWarning, match="unclosed") as record:
        gc.collect()
    del record  # the warning holds the client as its source
    gc.collect()
    assert ref() is None


def test_a_batch_whose_loop_closed_with_it_pending_is_finalized_quietly(
        emu, unraisable):
    """A batch still awaiting its calls when its loop is closed: when its
    coroutine is finalized (collected), its calls are cancelled without an
    error: no "Exception ignored ... Event loop is closed", as for a single
    call, and the client is collected."""
    import weakref

    emu.delay = 5.0
    loop = asyncio.new_event_loop()
    client = AsyncManagementClient(AK, SK, host=emu.url)

    async def start():
        await client.trigger_webhook("nope")  # the token
        return asyncio.create_task(
            client.trigger_webhooks([{"webhook_id": "wh"}] * 3))

    task = loop.run_until_complete(start())
    loop.run_until_complete(asyncio.sleep(0.2))  # the requests are out
    assert client._engine.calls == 3
    loop.close()
    ref = weakref.ref(client)
    del client, task
    collected_with_a_warning(loop, ref)
    assert [str(u.exc_value) for u in unraisable] == []


# ---- retries: those of the sync client (tests/test_retries.py) ----------

def trigger_requests(emu):
    return sum(r.path == "/api/v3/trigger-webhook" for r in emu.requests)


def one_call(emu, **options):
    """trigger_webhook('wh') once on a new client: its result or exception."""
    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url, timeout=10,
                                         **options) as client:
            return await client.trigger_webhook("wh")
    return run(main())


@pytest.mark.parametrize("http_status", [429, 200])  # 200: the envelope's 429
def test_throttled_calls_are_sent_again(emu, http_status):
    emu.throttle_next_calls = 2
    emu.throttle_retry_after = 0
    emu.throttle_http_status = http_status
    assert one_call(emu)["statusCode"] == 200
    assert trigger_requests(emu) == 3
    assert emu.delivery_count("wh") == 1


def test_throttled_past_max_retries_returns_the_429(emu):
    emu.throttle_next_calls = 5
    emu.throttle_retry_after = 0
    assert one_call(emu, max_retries=1)["statusCode"] == 429
    assert trigger_requests(emu) == 2
    assert emu.delivery_count("wh") == 0


def test_a_reset_once_the_request_was_written_is_not_sent_again(emu):
    # The server read the request line and reset: from the client's side
    # the request may have reached it (as for the sync client).
    emu.reset_before_request = 2
    with pytest.raises(genauth_c.TransportError):
        one_call(emu)
    assert emu.connections_reset == 1
    assert emu.delivery_count("wh") == 0


def test_a_reset_after_the_request_is_not_sent_again(emu):
    emu.reset_after_request = 1
    with pytest.raises(genauth_c.TransportError):
        one_call(emu)
    assert trigger_requests(emu) == 1
    assert emu.delivery_count("wh") == 1


def test_max_retries_0_sends_once(emu):
    emu.throttle_next_calls = 1
    assert one_call(emu, max_retries=0)["statusCode"] == 429
    assert trigger_requests(emu) == 1


def test_a_refused_connection_fails_after_its_retries(caplog):
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    with Emulator(AK, SK) as e:
        url = e.url
    # Nothing listens on the port any more: every attempt is refused.

    async def main():
        async with AsyncManagementClient(AK, SK, host=url, timeout=10,
                                         auth="signature") as client:
            return await client.trigger_webhook("wh")

    with pytest.raises(genauth_c.TransportError) as info:
        run(main())
    assert info.value.curl_code == 7
    logged = [r.getMessage() for r in caplog.records if r.name == "genauth_c"]
    assert len(logged) == 1 and " retries=2: " in logged[0], logged


def test_a_batch_retries_throttled_calls(emu):
    emu.throttle_next_calls = 4
    emu.throttle_retry_after = 0

    async def main():
        # Any one call may meet every 429 (Retry-After 0 lets its retry
        # overtake the others' first requests): retries enough for that.
        async with AsyncManagementClient(AK, SK, host=emu.url, timeout=10,
                                         max_retries=4) as client:
            return await client.trigger_webhooks([{"webhook_id": "wh"}] * 4,
                                                 concurrency=4)

    assert [r["statusCode"] for r in run(main())] == [200] * 4
    assert trigger_requests(emu) == 8
    assert emu.delivery_count("wh") == 4


def test_a_call_cancelled_while_it_waits_to_retry(emu):
    emu.throttle_next_calls = 1
    emu.throttle_retry_after = 30

    async def main():
        async with AsyncManagementClient(AK, SK, host=emu.url,
                                         timeout=60) as client:
            task = asyncio.ensure_future(client.trigger_webhook("wh"))
            for _ in range(1000):  # until the 429 is answered
                if emu.throttle_next_calls == 0:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # and has come back: the call rests
            assert client._engine.calls == 1
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert client._engine.calls == 0
            return await client.trigger_webhook("wh")

    assert run(main())["statusCode"] == 200


def pending_timers(loop):
    """The engine's timer handles (call_later) on `loop`, a
    CallbackCountingLoop, still due to run: neither cancelled nor run."""
    return [h for h, callback in loop.timers
            if not h.cancelled() and not callback.ran]


def run_counting(loop_kind, coro):
    """run(coro), on a CallbackCountingLoop."""
    loop = CallbackCountingLoop(loop_kind)
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_a_call_cancelled_while_it_waits_to_retry_leaves_no_timer(
        emu, loop_kind):
    """The engine's timer was armed for the resting call's retry time, 30 s
    on, and stayed armed once the call was cancelled: the idle client woke
    the loop then for nothing (the README promises it wakes it zero times),
    and the loop held the engine until then."""
    emu.throttle_next_calls = 1
    emu.throttle_retry_after = 30

    async def main():
        loop = asyncio.get_running_loop()
        async with AsyncManagementClient(AK, SK, host=emu.url,
                                         timeout=10_000) as client:
            task = asyncio.ensure_future(client.trigger_webhook("wh"))
            for _ in range(1000):  # until the call rests, 10 s at most
                # Its timer is the retry's, 30 s on, not libcurl's for the
                # request in flight (the timeout, 10,000 s on): cancelled
                # in flight, the call would leave no timer, fix or not.
                if emu.throttle_next_calls == 0 and any(
                        h.when() < loop.time() + 5000
                        for h in pending_timers(loop)):
                    break
                await asyncio.sleep(0.01)
            resting = len(pending_timers(loop))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return resting, len(pending_timers(loop)), client._engine.calls

    resting, left, calls = run_counting(loop_kind, main())
    assert resting == 1  # the retry's time: the test saw the call rest
    assert calls == 0
    assert left == 0


def test_a_call_cancelled_while_it_rests_leaves_the_timer_to_the_other(
        emu, loop_kind):
    """Two calls rest, the first until Retry-After 300 s, the second until
    100 s: the engine's timer is armed for the second's time. Cancelling the
    second left it there (want_timer only moves it earlier, and nothing was
    left to disarm), so the loop woke then for nothing; it is armed for the
    first's time. Told apart by the retry times alone (the client's timeout,
    10,000 s, is what libcurl's timer waits for while a call is in flight)."""
    async def rest(client, retry_after, below):
        """A call that rests until retry_after s on, and the loop's timer
        handle for it: the first one due before `below` (loop time) and
        more than 50 s on."""
        emu.throttle_next_calls = 1
        emu.throttle_retry_after = retry_after
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(client.trigger_webhook("wh"))
        for _ in range(1000):  # until the call rests, 10 s at most
            due = [h for h in pending_timers(loop)
                   if loop.time() + 50 < h.when() < below]
            if emu.throttle_next_calls == 0 and due:
                return task, due[0]
            await asyncio.sleep(0.01)
        raise AssertionError(f"the call never rested: {pending_timers(loop)}")

    async def main():
        loop = asyncio.get_running_loop()
        async with AsyncManagementClient(AK, SK, host=emu.url,
                                         timeout=10_000) as client:
            first, first_timer = await rest(client, 300, loop.time() + 5000)
            second, second_timer = await rest(client, 100, first_timer.when())
            second.cancel()
            with pytest.raises(asyncio.CancelledError):
                await second
            left = pending_timers(loop)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            return second_timer, left

    second_timer, left = run_counting(loop_kind, main())
    assert len(left) == 1 and left[0] is not second_timer
    assert left[0].when() > second_timer.when()


# ---- the token's early refresh: the sync client's rule (token.c) ---------

def test_past_the_refresh_point_calls_go_on_with_the_valid_token(
        fake, token_clock):
    """A 100 s token is due for refresh 10 s before it expires (the token
    clock, set by the test, stands still between steps). Past that point a
    call goes out with it at once while the one refresh is held at the
    server; the refresh fails and no call hears of it (the next ones still
    use the token, with no new fetch for 5 s); only once the token has
    expired do calls fail."""
    fake.lifetime = 100
    release = threading.Event()
    refused = Response.json({"statusCode": 500, "message": "down"},
                            status=500)

    def handler(req):
        if "get-management-token" in req.path and fake.token_fetches >= 1:
            fake.token_fetches += 1
            release.wait(30)
            return refused
        return fake(req)

    fake.server.handler = handler
    logged = []

    class Lines(logging.Handler):
        def emit(self, record):
            logged.append(record.getMessage())

    async def main():
        start = token_clock.now
        async with AsyncManagementClient(AK, SK, host=fake.server.url,
                                         timeout=10) as client:
            await client.trigger_webhook("wh1")
            token_clock.set(start + 89)  # before the refresh point
            await client.trigger_webhook("wh1")
            assert fake.token_fetches == 1
            token_clock.set(start + 95)  # past it, 5 s before expiry
            got = await asyncio.wait_for(client.trigger_webhook("wh1"), 5)
            assert got["statusCode"] == 200
            # The refresh runs beside that call and may reach the server
            # after it ended: wait for it to be there, held.
            for _ in range(1000):
                if fake.token_fetches == 2:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the refresh never reached the server")
            release.set()
            for _ in range(1000):  # until the client has the failure
                if any(m.startswith("token fetch failed=") for m in logged):
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail(f"the refresh's failure never came: {logged}")
            token_clock.set(start + 99)  # 4 s after the failure
            got = await asyncio.wait_for(client.trigger_webhook("wh1"), 5)
            assert got["statusCode"] == 200
            assert fake.token_fetches == 2  # tried again no sooner than 5 s
            token_clock.set(start + 100.5)  # expired: calls wait, and fail
            with pytest.raises(genauth_c.AuthError):  # the refresh's 500
                await client.trigger_webhook("wh1")
            assert fake.token_fetches == 3
            assert fake.expiries == 0  # the old token was never refused

    logger = logging.getLogger("genauth_c")
    lines, level = Lines(), logger.level
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    try:
        run(main())
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)



# The scripts below run in a process of their own against the mixed server
# (in another process): every descriptor they count is the client's or its
# loops'. A first client, used and closed, leaves whatever is opened once per
# process (libcurl's, OpenSSL's) before the count starts.
CLOSING_SCRIPT = USE_THE_TESTS_LOOP + """
import asyncio, gc, os, sys, threading, warnings
import genauth_c

URL, AK, SK = sys.argv[1:4]

def fds():
    return len(os.listdir("/proc/self/fd"))

def new_client():
    return genauth_c.AsyncManagementClient(AK, SK, host=URL, timeout=5)

async def calls(client, n=4):
    return await asyncio.gather(*(client.trigger_webhook("wh")
                                  for _ in range(n)))

async def warm_up():
    async with new_client() as client:
        await calls(client)

asyncio.run(warm_up())
gc.collect()
before = fds()
"""


def run_closing_script(server, body, *args):
    """CLOSING_SCRIPT then `body`, against `server`; what it printed."""
    out = subprocess.run(
        [sys.executable, "-c", CLOSING_SCRIPT + body, server, AK, SK,
         *map(str, args)],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip()


CLOSE_DROPPED_BY_A_STOPPING_LOOP = """
loop = asyncio.new_event_loop()
client = new_client()
ready, go = threading.Event(), threading.Event()

def stop_now():
    ready.set()
    assert go.wait(10)
    loop.stop()  # the close scheduled meanwhile is left in the queue

def loop_thread():
    asyncio.set_event_loop(loop)
    loop.run_until_complete(calls(client))
    loop.call_soon(stop_now)
    loop.run_forever()
    loop.close()

thread = threading.Thread(target=loop_thread)
thread.start()
assert ready.wait(10)
asyncio.run(client.aclose())
go.set()
thread.join(10)
assert not thread.is_alive()
after_close = fds()
del client
gc.collect()
print(after_close - fds(), after_close - before)
"""


def test_aclose_scheduled_on_a_loop_closed_before_running_it_closes_the_connections(
        mixed):
    """aclose() from another thread while the client's loop is about to stop
    (run_forever + stop + close): the engine's close, scheduled with
    call_soon_threadsafe, was dropped by loop.close(), and the engine's
    connections stayed open until the client was collected. The loop drops
    it unrun: it closes the engine then."""
    out = run_closing_script(mixed, CLOSE_DROPPED_BY_A_STOPPING_LOOP)
    assert out == "0 0", "descriptors left open by aclose() (by collection, " \
        "in all): " + out


CLOSE_AS_THE_LOOP_CLOSES = """
class ClosingLoop(asyncio.SelectorEventLoop):
    # Set: the next call_soon_threadsafe waits for the loop to stop and
    # close first (in the instant after aclose() saw it running).
    closed = None

    def call_soon_threadsafe(self, callback, *args, **kwargs):
        closed, self.closed = self.closed, None
        if closed is not None:
            super().call_soon_threadsafe(self.stop)
            assert closed.wait(10)
        return super().call_soon_threadsafe(callback, *args, **kwargs)

client = new_client()
loop = ClosingLoop()
running, closed = threading.Event(), threading.Event()

def loop_thread():
    loop.run_until_complete(calls(client))
    loop.call_soon(running.set)
    loop.run_forever()
    loop.close()
    closed.set()

thread = threading.Thread(target=loop_thread)
thread.start()
assert running.wait(10)
loop.closed = closed
asyncio.run(client.aclose())
thread.join(10)
assert not thread.is_alive() and closed.is_set() and client.closed
print(fds() - before)
"""


@pytest.mark.asyncio_loop_only
def test_aclose_as_the_loop_closes_from_its_thread_closes_the_engine(mixed):
    """The client's loop, running in its thread, stops and closes in the
    instant between aclose()'s look at it (running: the close is for its
    thread) and call_soon_threadsafe: aclose() raised RuntimeError ('Event
    loop is closed'); it closes the engine itself, the loop being closed."""
    assert run_closing_script(mixed, CLOSE_AS_THE_LOOP_CLOSES) == "0"


ACLOSE_AFTER_ITS_LOOP_CLOSED = """
client = new_client()
loop = asyncio.new_event_loop()
loop.run_until_complete(calls(client))
with_connections = fds()
loop.close()
asyncio.run(client.aclose())
assert client.closed
print(with_connections > before, fds() - before)
"""


def test_aclose_on_this_thread_after_its_loop_closed_closes_the_connections(
        mixed):
    """The loop ran and was closed in this thread; aclose() awaited on a
    new loop closes the engine without the closed loop."""
    assert run_closing_script(mixed, ACLOSE_AFTER_ITS_LOOP_CLOSED) == "True 0"


ACLOSE_FROM_MANY_THREADS = """
client = new_client()
busy, ended = threading.Event(), []

def loop_thread():
    async def main():
        try:
            while True:  # calls in flight until the client closes
                await calls(client, 20)
                busy.set()
        except genauth_c.ClientClosedError:
            ended.append("closed")
    if sys.argv[4] == "running":
        asyncio.run(main())
    else:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(calls(client, 20))
        loop.close()
        busy.set()

thread = threading.Thread(target=loop_thread)
thread.start()
assert busy.wait(10)
start, errors = threading.Barrier(8), []

def close():
    start.wait(10)
    try:
        asyncio.run(client.aclose())
        assert client.closed
    except BaseException as e:
        errors.append(repr(e))

closers = [threading.Thread(target=close) for _ in range(8)]
for t in closers:
    t.start()
for t in closers + [thread]:
    t.join(10)
assert not any(t.is_alive() for t in closers + [thread])
assert errors == [], errors
print(ended, fds() - before)
"""


@pytest.mark.parametrize("its_loop", ["running", "closed"])
def test_aclose_from_many_threads_at_once(mixed, its_loop):
    """Eight threads await aclose() at the same moment, while the client's
    loop runs calls in its thread or after it closed: each returns, the
    calls end with ClientClosedError, and nothing stays open."""
    ended = "['closed']" if its_loop == "running" else "[]"
    assert run_closing_script(mixed, ACLOSE_FROM_MANY_THREADS,
                              its_loop) == f"{ended} 0"


COLLECTED_AFTER_ITS_LOOP_CLOSED = """
client = new_client()
loop = asyncio.new_event_loop()
loop.run_until_complete(calls(client))
if sys.argv[4] == "pending":  # a call still in flight as the loop closes
    async def start():
        task = asyncio.ensure_future(client.trigger_webhook("slow"))
        await asyncio.sleep(0)  # the task's first step starts its call
        return task
    task = loop.run_until_complete(start())
    assert client._engine.calls == 1
loop.close()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    del client
    task = None  # its coroutine holds the client
    gc.collect()
print(sorted({str(w.message).split(" ")[0] for w in caught
              if w.category is ResourceWarning}), fds() - before)
"""


@pytest.mark.parametrize("calls", ["ended", "pending"])
def test_a_client_collected_after_its_loop_closed_closes_everything(
        mixed, calls):
    """Never closed, its loop closed (with its calls ended, or one still in
    flight): collecting the client warns and closes the engine's
    connections, without the closed loop."""
    assert run_closing_script(mixed, COLLECTED_AFTER_ITS_LOOP_CLOSED,
                              calls) == "['unclosed'] 0"


ACLOSE_WHILE_ITS_LOOP_IS_STOPPED = """
loop = asyncio.new_event_loop()
loop_only = fds()
client = new_client()
paused, closed, outcome = threading.Event(), threading.Event(), []

def loop_thread():
    async def start():
        task = asyncio.ensure_future(client.trigger_webhook("slow"))
        await asyncio.sleep(0)  # the task's first step starts its call
        return task
    task = loop.run_until_complete(start())
    paused.set()
    assert closed.wait(10)
    outcome.extend(loop.run_until_complete(
        asyncio.gather(task, return_exceptions=True)))
    loop.close()

thread = threading.Thread(target=loop_thread)
thread.start()
assert paused.wait(10)
with_client = fds()
asyncio.run(client.aclose())  # its loop is stopped: closed here and now
print(with_client > loop_only, fds() - loop_only)
closed.set()
thread.join(10)
assert not thread.is_alive()
print([type(o).__name__ for o in outcome], fds() - before)
"""


def test_aclose_while_its_loop_is_stopped_closes_at_once(mixed):
    """aclose() from another thread while the client's loop is stopped
    between two runs, a call in flight: the engine closes at once (not at
    a next turn that may never come), and the call raises ClientClosedError
    when the loop runs again."""
    out = run_closing_script(mixed, ACLOSE_WHILE_ITS_LOOP_IS_STOPPED)
    assert out.splitlines() == ["True 0", "['ClientClosedError'] 0"]


CHURN = """
import socket

# Every kind of end a connection has (serve.py's MIXED): kept, closed by
# the server after its answer (a FIN, a Connection: close, an RST), dropped
# or reset before the answer, and out of time (slow: 0.5 s, past the
# timeout) in one round in four; and a host whose port refuses every
# connection. Each fd libcurl closes may be the next socket's.
KINDS = ["echo", "closed", "connclose", "rst", "drop", "reset", "echo"]
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
REFUSED = "http://127.0.0.1:%d" % listener.getsockname()[1]
listener.close()

async def main():
    outcomes, peak = {}, 0
    async with genauth_c.AsyncManagementClient(
            AK, SK, host=URL, timeout=0.3, max_retries=0) as client, \\
            genauth_c.AsyncManagementClient(
            AK, SK, host=REFUSED, timeout=0.3, max_retries=0) as refused:
        for round_ in range(40):
            kinds = KINDS + ["slow"] * (round_ % 4 == 0)
            got = await asyncio.gather(
                *(client.trigger_webhook(kinds[i % len(kinds)])
                  for i in range(24)),
                refused.trigger_webhook("echo"), return_exceptions=True)
            for r in got:
                assert isinstance(r, (dict, genauth_c.GenAuthError)), r
                name = "result" if isinstance(r, dict) else type(r).__name__
                outcomes[name] = outcomes.get(name, 0) + 1
            peak = max(peak, fds())
    return outcomes, peak

outcomes, peak = asyncio.run(main())
print(sorted(outcomes), sum(outcomes.values()), peak - before < 80,
      fds() - before)
"""


def test_a_thousand_calls_with_connection_churn_leave_no_fd(mixed):
    """1000 calls whose connections end every way a connection can (the
    server closing it after its answer, a Connection: close, resets before
    and after the answer, timeouts, refused connects): libcurl opens and
    closes a socket for most, and a new socket may take the fd number of
    one just closed, which a loop that still watched the old one (uvloop
    keeps a poll handle per fd) would refuse, abort on or never wake for.
    Each call ends with its result or a defined exception, and every fd
    is closed once the clients are."""
    out = run_closing_script(mixed, CHURN)
    assert out == ("['TimeoutError', 'TransportError', 'result'] 1000 True "
                   "0"), out


def test_a_close_from_inside_the_engine_waits_for_its_callback(emu):
    """engine.close() called back from inside the engine (a log handler of
    a call's end) closes it once that callback has returned: the call whose
    end was being logged keeps its result, the others end with it or with
    ClientClosedError, and nothing stays open or watched."""
    logger = logging.getLogger("genauth_c")
    level = logger.level

    async def main():
        client = AsyncManagementClient(AK, SK, host=emu.url)
        await client.trigger_webhook("wh")  # binds the engine
        engine = client._engine

        class CloseFromInside(logging.Handler):
            def emit(self, record):
                engine.close()

        handler = CloseFromInside()
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        try:
            outcomes = await asyncio.gather(
                *(client.trigger_webhook("wh") for _ in range(8)),
                return_exceptions=True)
        finally:
            logger.removeHandler(handler)
        with pytest.raises(genauth_c.ClientClosedError):
            await client.trigger_webhook("wh")
        return outcomes, engine.calls, engine.watched, \
            client_sockets(emu.port)

    try:
        outcomes, calls, watched, sockets = run(main())
    finally:
        logger.setLevel(level)
    assert any(isinstance(o, dict) for o in outcomes), outcomes
    assert all(isinstance(o, (dict, genauth_c.ClientClosedError))
               for o in outcomes), outcomes
    assert (calls, watched, sockets) == (0, {}, 0)


def hold_webhook_answers(fake):
    """Makes the fake hold each trigger-webhook answer until `release` is
    set; `arrived` is set as each request gets there. Returns (arrived,
    release)."""
    arrived, release = threading.Event(), threading.Event()

    def handler(req):
        resp = fake(req)
        if "trigger-webhook" in req.path:
            arrived.set()
            release.wait(30)
        return resp

    fake.server.handler = handler
    return arrived, release


def test_aclose_as_its_loop_binds_the_client_ends_the_call(fake, monkeypatch):
    """aclose() in one thread while the client's loop, in another, binds it
    (its first call): aclose() looked at the engine (none yet), the loop
    then bound one and sent the call, and the client closed without it:
    the call went on past aclose() to its answer, its connection held by
    an engine nobody closed. aclose() looks and closes under the binding
    lock: the binding waits for it, and finds the client closed."""
    # either: the call reached the server, or the binding waits for aclose()
    either, release = hold_webhook_answers(fake)

    class Binding:
        def __init__(self):
            self.lock = threading.Lock()

        def __enter__(self):
            if not self.lock.acquire(blocking=False):
                either.set()
                self.lock.acquire()

        def __exit__(self, *exc):
            self.lock.release()

    monkeypatch.setattr(_aio, "_binding", Binding())
    closing = threading.Event()

    class Client(AsyncManagementClient):
        pause = None  # the thread whose next look at _engine waits after it

        @property
        def _engine(self):
            engine = self.__dict__.get("_bound")
            if threading.current_thread() is self.pause:
                self.pause = None
                closing.set()
                assert either.wait(10)
            return engine

        @_engine.setter
        def _engine(self, engine):
            self.__dict__["_bound"] = engine

    client = Client(AK, SK, host=fake.server.url, timeout=60)
    loop = asyncio.new_event_loop()
    outcome = []

    def loop_thread():
        async def main():
            for _ in range(1000):  # until aclose() is under way; 10 s at most
                if closing.is_set():
                    break
                await asyncio.sleep(0.01)
            outcome.extend(await asyncio.gather(
                client.trigger_webhook("wh"), return_exceptions=True))
        loop.run_until_complete(main())

    thread = threading.Thread(target=loop_thread)
    thread.start()
    try:
        client.pause = threading.current_thread()
        asyncio.run(client.aclose())
    finally:
        release.set()
        thread.join(10)
    assert not thread.is_alive()
    engine = client._engine
    loop.close()
    assert [type(o) for o in outcome] == [genauth_c.ClientClosedError], \
        outcome
    assert engine is None or (engine.calls, engine.watched) == (0, {})
    assert client_sockets(fake.server.port) == 0


@pytest.mark.asyncio_loop_only
@pytest.mark.parametrize("debug", [False, True])
def test_aclose_from_another_thread_as_its_loop_starts_again_wakes_it(
        fake, debug):
    """aclose() from another thread sees the client's loop stopped, between
    two runs, a call in flight: it closes the engine there and then, which
    settled the call's future from that thread. The loop, started again in
    that instant, waits for an event: the task's wake-up, queued by
    call_soon (which wakes nothing), was never run and the loop hung until
    its next event (here, none for 60 s). In debug mode call_soon refused
    the wake-up outright ("Non-thread-safe operation", reported as
    unraisable) once the future was done, and the loop hung for good. The
    future is settled by the loop (call_soon_threadsafe), which wakes it."""
    arrived, release = hold_webhook_answers(fake)
    client = AsyncManagementClient(AK, SK, host=fake.server.url, timeout=60)
    paused, go = threading.Event(), threading.Event()
    waiting = threading.Event()

    class WaitingSelector(selectors.DefaultSelector):
        def select(self, timeout=None):
            if go.is_set() and (timeout is None or timeout > 1):
                waiting.set()  # the loop waits for an event
            return super().select(timeout)

    class RestartingLoop(asyncio.SelectorEventLoop):
        race = False

        def is_running(self):
            running = super().is_running()
            if self.race:
                # aclose() saw the loop stopped: it starts again in that
                # instant, in its thread, and waits for an event.
                self.race = False
                go.set()
                assert waiting.wait(10)
            return running

    loop = RestartingLoop(WaitingSelector())
    loop.set_debug(debug)
    outcome = []

    def loop_thread():
        async def start():
            task = asyncio.ensure_future(client.trigger_webhook("wh"))
            for _ in range(1000):  # until the server has it; 10 s at most
                if arrived.is_set():
                    break
                await asyncio.sleep(0.01)
            return task
        task = loop.run_until_complete(start())
        paused.set()
        assert go.wait(10)
        outcome.extend(loop.run_until_complete(
            asyncio.gather(task, return_exceptions=True)))

    thread = threading.Thread(target=loop_thread)
    thread.start()
    try:
        assert paused.wait(10)
        loop.race = True
        asyncio.run(client.aclose())
        thread.join(10)
        hung = thread.is_alive()
    finally:
        release.set()
        if thread.is_alive():
            loop.call_soon_threadsafe(lambda: None)
            thread.join(10)
        if thread.is_alive():  # the task's wake-up was lost
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
        loop.close()
    assert not hung, "the loop was never told of the calls' end"
    assert [type(o) for o in outcome] == [genauth_c.ClientClosedError]


def test_the_engine_refuses_keyword_arguments_with_a_type_error(fake):
    # Refused with an exception set, not a NULL return alone (SystemError).
    from genauth_c._core import _AsyncEngine

    client = genauth_c.ManagementClient(AK, SK, host=fake.server.url)
    loop = asyncio.new_event_loop()
    try:
        with pytest.raises(TypeError, match="takes no keyword arguments"):
            _AsyncEngine(client, loop, extra=1)
    finally:
        loop.close()
        client.close()


# ---- a name that resolves slowly --------------------------------------------

# A DNS server on 127.0.0.1:53 of a network namespace of the test's own (so
# no query can leave the machine) that holds every query until it reads a
# line on stdin, then refuses the name (NXDOMAIN). It never answers on its
# own: a client that waits for the answer (the bug) never returns before
# it is told to, however fast or slow the machine, and the resolver gives
# up only past the test's subprocess timeout (resolv.conf below). It runs
# in a process of its own: a client that blocks its loop blocks every
# thread of its process that needs the GIL. It prints "asked NAME" as a
# query comes, and for each line read "released" (it held queries until
# then) or "nothing held".
DNS_HOLDER = r"""
import select, socket, sys
dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.bind(("127.0.0.1", 53))
print("ready", flush=True)
held = []

def answer():
    for q, addr in held:  # NXDOMAIN
        dns.sendto(q[:2] + b"\x81\x83" + q[4:6] + b"\0" * 6 + q[12:], addr)
    held.clear()

while True:
    ready, _, _ = select.select([dns, sys.stdin], [], [])
    if dns in ready:
        q, addr = dns.recvfrom(512)
        name, i = [], 12
        while q[i]:
            name.append(q[i + 1:i + 1 + q[i]].decode())
            i += 1 + q[i]
        held.append((q, addr))
        print("asked", ".".join(name), flush=True)
    elif sys.stdin in ready:
        if not sys.stdin.readline():
            sys.exit(0)
        print("released" if held else "nothing held", flush=True)
        answer()
"""

# What a client in the namespace starts with: the holder, and answer(),
# which tells it to answer and returns what it said then ("released" when
# it was still holding the query).
HOLDER_CLIENT = r"""
import asyncio, json, subprocess, sys, threading
import genauth_c

holder = subprocess.Popen([sys.executable, "-c", sys.argv[1]],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
assert holder.stdout.readline() == "ready\n"
lines = []
got = threading.Condition()

def read():
    for line in holder.stdout:
        with got:
            lines.append(line.strip())
            got.notify_all()

threading.Thread(target=read, daemon=True).start()

def wait_for_line(predicate):
    with got:
        assert got.wait_for(lambda: any(map(predicate, lines)), 30), lines
        line = next(filter(predicate, lines))
        lines.remove(line)
        return line

async def until_asked(name):
    await asyncio.to_thread(wait_for_line, lambda l: l == "asked " + name)

def answer():
    holder.stdin.write("go\n")
    holder.stdin.flush()
    return wait_for_line(lambda l: l in ("released", "nothing held"))
"""

# In the namespace: a call whose name is being resolved is cancelled, and a
# client whose token fetch's name is being resolved is closed; each time the
# holder is told to answer once that returned.
SLOW_NAME_CLIENT = USE_THE_TESTS_LOOP + HOLDER_CLIENT + r"""
async def main():
    out = {}
    async with genauth_c.AsyncManagementClient(
            "AKIDexample1234", "SECRET", host="http://call.held.test:8080",
            auth="signature", timeout=60) as client:
        task = asyncio.create_task(client.trigger_webhook("wh"))
        await until_asked("call.held.test")
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        out["cancel"] = answer()
        # The resolver's socket, which the loop watched, is not left there.
        out["watched"] = client._engine.watched
    client = genauth_c.AsyncManagementClient(
        "AKIDexample1234", "SECRET", host="http://token.held.test:8080",
        timeout=60)
    task = asyncio.create_task(client.trigger_webhook("wh"))
    await until_asked("token.held.test")
    await client.aclose()
    out["aclose"] = answer()
    try:
        await task
    except genauth_c.ClientClosedError:
        pass
    return out

print(json.dumps(asyncio.run(main())))
"""


def network_namespace_refusal():
    """Why a child cannot have a network namespace and /etc/resolv.conf of
    its own, or None when it can."""
    r = subprocess.run(["unshare", "-m", "-n", "sh", "-c",
                        "mount --bind /dev/null /etc/resolv.conf && "
                        "ip link set lo up"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return None
    return "needs unshare -m -n, mount and ip (root): " + (
        r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]


# The same for a call and a batch whose time runs out while the name of
# their host, or of the token endpoint, is being resolved (timeout=1).
SLOW_NAME_SYNC_CLIENT = HOLDER_CLIENT + r"""
out = {}
for auth in ("signature", "token"):
    with genauth_c.ManagementClient(
            "AKIDexample1234", "SECRET", host=f"http://{auth}.held.test:8080",
            auth=auth, timeout=1, max_retries=0) as client:
        try:
            client.trigger_webhook("wh")
        except genauth_c.TimeoutError:
            out["call, " + auth] = answer()
        [result] = client.trigger_webhooks([{"webhook_id": "wh"}])
        assert isinstance(result, genauth_c.TimeoutError), result
        out["batch, " + auth] = answer()
print(json.dumps(out))
"""


def run_beside_a_held_dns_server(tmp_path, client_script):
    """The last line client_script prints, as JSON, run in a network
    namespace of its own whose DNS server (DNS_HOLDER) holds queries."""
    refusal = network_namespace_refusal()
    if refusal:
        pytest.skip(refusal)
    resolv = tmp_path / "resolv.conf"
    # The resolver gives up after 5 x 30 s, past the run's 120 s: a client
    # that waits for it fails by that timeout, never by a race.
    resolv.write_text("nameserver 127.0.0.1\noptions timeout:30 attempts:5\n")
    r = subprocess.run(
        ["unshare", "-m", "-n", "sh", "-c",
         f"mount --bind {resolv} /etc/resolv.conf && ip link set lo up && "
         'exec "$0" -c "$1" "$2"', sys.executable, client_script,
         DNS_HOLDER],
        capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.asyncio_loop_only  # the sync client's
def test_a_call_out_of_time_while_a_name_resolves_never_waits_for_it(
        tmp_path):
    """A call or a batch of the sync client whose timeout came while the
    name was being resolved returned only once the DNS server had answered
    or the resolver gave up (timeout=1): libcurl joined its resolver thread as the transfer
    was removed (CURLOPT_QUICK_EXIT, as below)."""
    assert run_beside_a_held_dns_server(tmp_path, SLOW_NAME_SYNC_CLIENT) == {
        "call, signature": "released", "batch, signature": "released",
        "call, token": "released", "batch, token": "released"}


def test_a_call_cancelled_or_a_client_closed_while_a_name_resolves_never_waits_for_it(
        tmp_path):
    """libcurl (7.87 and later) waits for its resolver thread when a
    transfer whose name is being resolved is removed, unless told
    CURLOPT_QUICK_EXIT: cancelling such a call, or closing the client under
    its token fetch, blocked the event loop, with the GIL held (every
    thread of the process stopped), until the DNS server answered or the
    resolver gave up (here never before the run's timeout)."""
    assert run_beside_a_held_dns_server(tmp_path, SLOW_NAME_CLIENT) == {
        "cancel": "released", "watched": {}, "aclose": "released"}
