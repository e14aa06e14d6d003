"""A client pickles by its configuration and comes back as a new client with
its own connections and token: copy.copy, copy.deepcopy, and process pools
with the spawn and forkserver start methods. A process forked by caller code
that runs while a call waits (a log or signal handler) leaves the call to
the parent."""
import asyncio
import copy
import gc
import json
import logging
import multiprocessing
import os
import pickle
import select
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from conftest import wait_child
from rawserver import FakeGenAuth, RawServer, Response

from genauth_c import APIError, AsyncManagementClient, ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver

AK, SK = "AKID-processes-1234", "SECRET-processes"


@pytest.fixture
def receiver():
    with WebhookReceiver() as rx:
        yield rx


@pytest.fixture
def emulator(receiver):
    with Emulator(AK, SK) as emu:
        for i in range(8):
            emu.add_webhook(f"wh{i}", receiver.url + f"/hook{i}")
        yield emu


def every_option(url):
    return dict(access_key_id=AK, access_key_secret=SK, host=url, timeout=7.5, max_retries=0,
                lang="zh-CN", use_unverified_ssl=False, tenant_id="TENANT1",
                brand="authing", ca_bundle=None, raise_for_status=True,
                max_response_bytes=4096, auth="signature")


def test_pickle_keeps_every_option(emulator):
    with ManagementClient(**every_option(emulator.url)) as client:
        made, (cls, options) = client.__reduce__()
        assert cls is ManagementClient
        assert options == {**every_option(emulator.url), "websocket_host": None,
                           "websocket_endpoint": None}
        twin = pickle.loads(pickle.dumps(client))
    # A new, open client: the original is closed, the twin is not.
    assert not twin.closed and twin is not client
    assert (twin.host, twin.timeout) == (client.host, 7.5)
    assert repr(twin) == repr(client).replace(" closed", "")
    # The options act: raise_for_status, signature auth, the authing brand.
    with pytest.raises(APIError):
        twin.trigger_webhook("unknown")
    assert twin.trigger_webhook("wh1")["statusCode"] == 200
    rec = emulator.requests[-1]
    assert (rec.auth, rec.brand) == ("signature", "authing")
    assert rec.header("x-authing-app-id") == "TENANT1"
    assert rec.header("x-authing-lang") == "zh-CN"
    assert emulator.token_fetches == 0
    twin.close()


def test_a_path_like_ca_bundle_pickles_as_its_path(emulator, certificate):
    # The client keeps the path its os.PathLike named when it was made: the
    # object itself may not pickle (this one holds a lock), and could name
    # another file by the time the copy is made.
    class CaFile:
        def __init__(self):
            self.lock = threading.Lock()
            self.calls = 0

        def __fspath__(self):
            self.calls += 1
            return str(certificate[0]) if self.calls == 1 else "/nonexistent"

    with ManagementClient(AK, SK, host=emulator.url, ca_bundle=CaFile()) as client:
        assert client.__reduce__()[1][1]["ca_bundle"] == str(certificate[0])
        twin = pickle.loads(pickle.dumps(client))
    assert not twin.closed
    twin.close()


def test_options_from_the_environment_travel(emulator, monkeypatch):
    monkeypatch.setenv("GENAUTH_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("GENAUTH_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("GENAUTH_HOST", emulator.url)
    data = pickle.dumps(ManagementClient())
    monkeypatch.delenv("GENAUTH_ACCESS_KEY_ID")
    monkeypatch.delenv("GENAUTH_ACCESS_KEY_SECRET")
    monkeypatch.delenv("GENAUTH_HOST")
    with pickle.loads(data) as client:
        assert client.host == emulator.url
        assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy])
def test_copies_are_new_clients_with_their_own_token(emulator, how):
    with ManagementClient(AK, SK, host=emulator.url) as client:
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        twin = how(client)
        assert twin is not client and twin.token_fetches == 0
        assert twin.trigger_webhook("wh2")["statusCode"] == 200
        assert (client.token_fetches, twin.token_fetches) == (1, 1)
    # Closing one leaves the other working.
    assert client.closed and not twin.closed
    assert twin.trigger_webhook("wh3")["statusCode"] == 200
    twin.close()


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy,
                                 lambda c: pickle.loads(pickle.dumps(c))])
def test_async_clients_copy_and_pickle_as_new_clients(emulator, how):
    """An AsyncManagementClient used on a loop copies and pickles as the
    sync client does: a new client (its own engine, token, connections and
    loop), not one sharing the original's engine."""
    client = AsyncManagementClient(AK, SK, host=emulator.url, timeout=7.5,
                                   raise_for_status=True)

    async def use(c):
        return (await c.trigger_webhook("wh1"))["statusCode"], c.token_fetches

    async def use_then_close(c):
        try:
            return await use(c)
        finally:
            await c.aclose()

    assert asyncio.run(use(client)) == (200, 1)  # bound to that loop now
    twin = how(client)
    assert twin is not client and type(twin) is AsyncManagementClient
    assert (twin.host, twin.timeout) == (client.host, 7.5)
    assert asyncio.run(use_then_close(twin)) == (200, 1)  # its own loop
    assert twin.closed and not client.closed

    async def refused(c):  # raise_for_status came along
        async with c:
            with pytest.raises(APIError):
                await c.trigger_webhook("unknown")
    asyncio.run(refused(how(client)))
    with pytest.raises(RuntimeError, match="event loop"):
        asyncio.run(use(client))  # the original still belongs to its loop
    asyncio.run(client.aclose())


class TaggedClient(AsyncManagementClient):
    """A subclass with state of its own (AsyncManagementClient is a Python
    class, not final)."""

    def __init__(self, tag, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tag = tag


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy,
                                 lambda c: pickle.loads(pickle.dumps(c))])
def test_a_subclass_of_the_async_client_keeps_its_own_attributes(emulator, how):
    """Its attributes come along, as any object's do; the engine, loop and
    connections do not (a new client, bound to no loop yet)."""
    client = TaggedClient({"colour": "blue"}, AK, SK, host=emulator.url)

    async def use(c):
        async with c:
            return (await c.trigger_webhook("wh1"))["statusCode"]

    assert asyncio.run(use(client)) == 200
    twin = how(client)
    assert type(twin) is TaggedClient and twin.tag == {"colour": "blue"}
    assert twin._engine is None and twin._client is not client._client
    assert asyncio.run(use(twin)) == 200


def test_an_uninitialised_client_does_not_pickle():
    client = ManagementClient.__new__(ManagementClient)
    with pytest.raises(TypeError, match="uninitialised"):
        pickle.dumps(client)


def trigger_in_worker(client, webhook_id):
    """Runs in a worker process: the client arrived by pickle."""
    import os
    with client:
        result = client.trigger_webhook(webhook_id, request_body={"pid": os.getpid()})
        return result["statusCode"], client.token_fetches, os.getpid()


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_process_pool_takes_a_client(emulator, receiver, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    ctx = multiprocessing.get_context(method)
    ids = [f"wh{i}" for i in range(6)]
    with ManagementClient(AK, SK, host=emulator.url) as client:
        with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            outcomes = list(pool.map(trigger_in_worker, [client] * len(ids), ids,
                                     timeout=120))
    assert [status for status, _, _ in outcomes] == [200] * len(ids)
    # Each worker's client is new: it fetched its own token.
    assert all(fetches == 1 for _, fetches, _ in outcomes)
    assert receiver.wait_for(len(ids), timeout=10)
    paths = sorted(got.path for got in receiver.received)
    assert paths == sorted(f"/hook{i}" for i in range(6))
    assert os.getpid() not in {pid for _, _, pid in outcomes}


# ---- fork() in caller code that runs while a call waits ---------------------
#
# A log handler (the DEBUG line of a token fetch, of each call a batch ends)
# or a signal handler runs while the call waits on the network. If it forks,
# the child comes back into the call: it must give up the parent's
# connections and end the call with TransportError, and the parent's call
# must go on as if nothing happened.

FORK_IDS = [f"wh{i}" for i in range(8)]
FORK_CALLS = [{"webhook_id": i} for i in FORK_IDS]


@pytest.fixture
def echo_server():
    """A RawServer whose trigger-webhook answers name the webhookId they were
    asked for, each `echo_server.delay(webhook_id)` seconds late;
    `echo_server.asked` lists the webhookIds asked for, and
    `echo_server.arrived` is set once one was."""
    fake = FakeGenAuth()

    def handle(req):
        resp = fake(req)
        if "trigger-webhook" in req.path and resp.status == 200:
            webhook_id = req.json()["webhookId"]
            server.asked.append(webhook_id)
            server.arrived.set()
            resp = Response.json({"statusCode": 200, "message": "",
                                  "data": {"response": {"webhookId": webhook_id}}},
                                 delay=server.delay(webhook_id))
        return resp

    with RawServer(handle) as server:
        server.asked = []
        server.arrived = threading.Event()
        server.delay = lambda webhook_id: 0.0
        yield server


class ForkOnce:
    """Forks the first time it is called; `child` is the child's pid, in
    the parent."""

    def __init__(self):
        self.forked = False
        self.child = None

    def __call__(self):
        if not self.forked:
            self.forked = True
            self.child = os.fork() or None


class ForkingLogHandler(logging.Handler):
    """Forks (once) on the first genauth_c line that starts with `prefix`."""

    def __init__(self, prefix):
        super().__init__(logging.DEBUG)
        self.prefix = prefix
        self.fork = ForkOnce()

    def emit(self, record):
        if record.getMessage().startswith(self.prefix):
            self.fork()


def outcome(value):
    """What a call gave, as JSON: each answer's webhookId, each exception's
    type and message, numbers as they are."""
    if isinstance(value, int):
        return value
    if isinstance(value, list):
        return [outcome(v) for v in value]
    if isinstance(value, BaseException):
        return {"raised": type(value).__name__, "message": str(value)}
    return {"webhookId": value["data"]["response"]["webhookId"]}


def run_in_parent_and_child(call, fork):
    """Runs call(), during which `fork` (a ForkOnce) forks. The child sends
    what call() gave it (outcome()) through a pipe and ends; the parent gets
    its own result (or the exception) and the child's outcome."""
    parent = os.getpid()
    r, w = os.pipe()
    try:
        try:
            result = call()
        except BaseException as e:  # in the parent, raised again below
            result = e
        if os.getpid() != parent:
            try:
                os.write(w, json.dumps(outcome(result)).encode())
            finally:
                os._exit(0)
        os.close(w)
        w = -1
        if not fork.child:
            if isinstance(result, BaseException):
                raise result
            pytest.fail("nothing forked during the call")
        ready, _, _ = select.select([r], [], [], 30)
        child = json.loads(os.read(r, 1 << 20) or b"null") if ready else None
        assert wait_child(fork.child, timeout=30) == 0
    finally:
        if os.getpid() == parent:
            os.close(r)
            if w >= 0:
                os.close(w)
    if isinstance(result, BaseException):
        raise result
    return result, child


@pytest.fixture
def genauth_log():
    """The genauth_c logger at DEBUG; add_handler's handlers are removed
    after the test."""
    logger = logging.getLogger("genauth_c")
    level, added = logger.level, []
    logger.setLevel(logging.DEBUG)

    def add_handler(handler):
        logger.addHandler(handler)
        added.append(handler)
        return handler

    yield add_handler
    for handler in added:
        logger.removeHandler(handler)
    logger.setLevel(level)


def forked_error(got):
    return got.get("raised") == "TransportError" and "forked" in got["message"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_log_handler_that_forks_in_a_batch_leaves_the_batch_to_the_parent(
        echo_server, genauth_log):
    # The first call's line comes while the second is in flight (its answer
    # takes 0.3 s) and more are still to start (concurrency 2).
    echo_server.delay = lambda webhook_id: 0.0 if webhook_id == "wh0" else 0.3
    handler = genauth_log(ForkingLogHandler("POST /api/v3/trigger-webhook"))
    with ManagementClient(AK, SK, host=echo_server.url, timeout=10,
                          max_retries=0) as client:
        results, child = run_in_parent_and_child(
            lambda: client.trigger_webhooks(FORK_CALLS, concurrency=2),
            handler.fork)
        # The parent: every answer, each to its own call.
        assert outcome(results) == [{"webhookId": i} for i in FORK_IDS]
        # The child: the call that had ended before the fork keeps its
        # answer; every other one failed at once, sending nothing.
        assert isinstance(child, list) and len(child) == len(FORK_IDS), child
        assert child[0] == {"webhookId": FORK_IDS[0]}, child
        assert all(map(forked_error, child[1:])), child
        # Each call was sent once: by the parent.
        assert sorted(echo_server.asked) == sorted(FORK_IDS)
        # The parent's client goes on working.
        assert outcome(client.trigger_webhooks(FORK_CALLS[:2])) == [
            {"webhookId": i} for i in FORK_IDS[:2]]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_log_handler_that_forks_on_a_token_fetch_leaves_the_call_to_the_parent(
        echo_server, genauth_log):
    handler = genauth_log(ForkingLogHandler("token fetch"))
    with ManagementClient(AK, SK, host=echo_server.url, timeout=10,
                          max_retries=0) as client:
        result, child = run_in_parent_and_child(
            lambda: client.trigger_webhook("wh1"), handler.fork)
        assert outcome(result) == {"webhookId": "wh1"}
        assert child is not None and forked_error(child), child
        assert echo_server.asked == ["wh1"]  # sent by the parent only
        assert outcome(client.trigger_webhook("wh2")) == {"webhookId": "wh2"}
        assert client.token_fetches == 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
@pytest.mark.parametrize("interrupted", [False, True])
@pytest.mark.parametrize("batch", [False, True])
def test_a_signal_handler_that_forks_while_a_call_waits_leaves_it_to_the_parent(
        echo_server, batch, interrupted):
    """`interrupted`: the handler raises KeyboardInterrupt in the child
    (Ctrl-C there): the call raises it there, not the call's fork error
    made with it set."""
    fork = ForkOnce()

    def handler(signum, frame):
        fork()
        if interrupted and fork.child is None:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, handler)
    alarm = None
    try:
        with ManagementClient(AK, SK, host=echo_server.url, timeout=10,
                              max_retries=0) as client:
            client.trigger_webhook("wh0")  # the token: then only the call waits
            echo_server.asked.clear()
            echo_server.arrived.clear()
            echo_server.delay = lambda webhook_id: 1.0
            # Sent once the server holds a request: the handler runs while
            # the call waits for its answer, at the main thread's next poll.
            alarm = threading.Thread(target=lambda: echo_server.arrived.wait(10)
                                     and os.kill(os.getpid(), signal.SIGALRM),
                                     daemon=True)
            alarm.start()
            if batch:
                call = lambda: client.trigger_webhooks(FORK_CALLS[:2])
                expected = [{"webhookId": i} for i in FORK_IDS[:2]]
            else:
                call = lambda: client.trigger_webhook("wh1")
                expected = {"webhookId": "wh1"}
            result, child = run_in_parent_and_child(call, fork)
            assert outcome(result) == expected
            if interrupted:
                assert child == {"raised": "KeyboardInterrupt", "message": ""}
            elif batch:
                assert isinstance(child, list) and all(map(forked_error, child)), child
            else:
                assert child is not None and forked_error(child), child
            assert sorted(echo_server.asked) == sorted(
                FORK_IDS[:2] if batch else ["wh1"])
    finally:
        if alarm is not None:
            alarm.join(timeout=15)
        signal.signal(signal.SIGALRM, previous)


# ---- fork() and AsyncManagementClient -----------------------------------------
#
# A process that forks while an AsyncManagementClient's calls wait on a running
# event loop (a task, a log handler on the genauth_c logger, a signal handler)
# leaves those calls to the parent: in the child they end with TransportError
# once the engine runs again, without reading, writing, closing or
# unregistering the parent's sockets (the child's event loop watches them with
# the parent's epoll set), and the parent's calls go on. The child cannot go on
# with that loop (asyncio does not carry a running loop across fork()); a new
# loop in the child (asyncio.run) gets the client anew, on connections of its
# own.


def in_parent_and_child(main, fork):
    """run_in_parent_and_child for the coroutine function `main`, run by
    asyncio.run: the fork happens while it runs, and the child goes on to
    the end of asyncio.run (the client closed, the loop closed) before it
    reports."""
    return run_in_parent_and_child(lambda: asyncio.run(main()), fork)


async def until(predicate, timeout=10):
    """Waits on the running loop until predicate() holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


def inherited_loop_error(got):
    return got.get("raised") == "RuntimeError" and "fork" in got["message"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_task_that_forks_while_calls_wait_leaves_them_to_the_parent(echo_server):
    echo_server.delay = lambda webhook_id: 0.0 if webhook_id == "wh0" else 1.0
    fork = ForkOnce()
    parent = os.getpid()

    async def main():
        # A timeout longer than the child is given to report: its calls end
        # at its loop's next turn, not by their timeout.
        async with AsyncManagementClient(AK, SK, host=echo_server.url, timeout=60,
                                         max_retries=0) as client:
            await client.trigger_webhook("wh0")  # the token and a kept connection
            echo_server.asked.clear()
            tasks = [asyncio.ensure_future(client.trigger_webhook(i))
                     for i in FORK_IDS[1:4]]
            # Forks once the server holds every request, and libcurl's
            # short timers (a connection's) have run: only answers wait.
            await until(lambda: len(echo_server.asked) == 3)
            await asyncio.sleep(0.3)
            fork()
            if os.getpid() == parent:
                return await asyncio.gather(*tasks, return_exceptions=True)
            # The parent reads its answers meanwhile, then closes its client
            # and its loop: nothing of the parent's wakes this loop again.
            time.sleep(1.5)
            results = await asyncio.gather(*tasks, return_exceptions=True)
            try:
                # asyncio shows a child no running loop: the client cannot
                # go on with this one.
                after = await client.trigger_webhook("wh4")
            except Exception as e:
                after = e
            return results + [after]

    results, child = in_parent_and_child(main, fork)
    # The parent: every answer, each to its own call.
    assert outcome(results) == [{"webhookId": i} for i in FORK_IDS[1:4]]
    # The child: each call ended with TransportError; its next call is
    # refused, naming fork().
    assert isinstance(child, list) and len(child) == 4, child
    assert all(map(forked_error, child[:3])), child
    assert inherited_loop_error(child[3]), child
    # Each call was sent once, by the parent.
    assert sorted(echo_server.asked) == sorted(FORK_IDS[1:4])


# Under AddressSanitizer its forked child hung (still running after 30 s)
# in two of five CI runs taken with the machine loaded, and never in the
# plain layers, as test_stress's fork-while-threads test did: not
# diagnosed (gdb got no stacks from the child). The plain layers run it.
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="its forked child hangs under ASan on a loaded machine (undiagnosed)")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
@pytest.mark.parametrize("batch", [False, True])
def test_a_log_handler_that_forks_under_the_event_loop_leaves_the_calls_to_the_parent(
        echo_server, genauth_log, batch):
    # The first call's line comes while the others are in flight (their
    # answers take 0.3 s); in a batch of concurrency 2, more are to start.
    echo_server.delay = lambda webhook_id: 0.0 if webhook_id == "wh0" else 0.3
    handler = genauth_log(ForkingLogHandler("POST /api/v3/trigger-webhook"))

    async def main():
        async with AsyncManagementClient(AK, SK, host=echo_server.url, timeout=10,
                                         max_retries=0) as client:
            if batch:
                return await client.trigger_webhooks(FORK_CALLS, concurrency=2)
            return await asyncio.gather(
                *(client.trigger_webhook(i) for i in FORK_IDS),
                return_exceptions=True)

    results, child = in_parent_and_child(main, handler.fork)
    assert outcome(results) == [{"webhookId": i} for i in FORK_IDS]
    # The child: the call whose line forked had its answer; every other one
    # ended with TransportError.
    assert isinstance(child, list) and len(child) == len(FORK_IDS), child
    assert child[0] == {"webhookId": FORK_IDS[0]}, child
    assert all(map(forked_error, child[1:])), child
    assert sorted(echo_server.asked) == sorted(FORK_IDS)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_log_handler_that_forks_on_an_async_token_fetch_leaves_the_calls_to_the_parent(
        echo_server, genauth_log):
    handler = genauth_log(ForkingLogHandler("token fetch"))

    async def main():
        async with AsyncManagementClient(AK, SK, host=echo_server.url, timeout=10,
                                         max_retries=0) as client:
            results = await asyncio.gather(client.trigger_webhook("wh1"),
                                           client.trigger_webhook("wh2"),
                                           return_exceptions=True)
            return results + [client.token_fetches]

    results, child = in_parent_and_child(main, handler.fork)
    assert outcome(results[:2]) == [{"webhookId": "wh1"}, {"webhookId": "wh2"}]
    assert results[2] == 1
    assert isinstance(child, list) and all(map(forked_error, child[:2])), child
    assert sorted(echo_server.asked) == ["wh1", "wh2"]  # sent by the parent only


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_signal_handler_that_forks_while_async_calls_wait_leaves_them_to_the_parent(
        echo_server):
    fork = ForkOnce()
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: fork())
    alarm = None

    async def main():
        async with AsyncManagementClient(AK, SK, host=echo_server.url, timeout=10,
                                         max_retries=0) as client:
            await client.trigger_webhook("wh0")  # the token and a kept connection
            echo_server.asked.clear()
            echo_server.arrived.clear()
            echo_server.delay = lambda webhook_id: 1.0
            alarm.start()
            return await asyncio.gather(
                *(client.trigger_webhook(i) for i in FORK_IDS[1:3]),
                return_exceptions=True)

    try:
        # Sent once the server holds a request: the handler runs while the
        # event loop waits for the answers.
        alarm = threading.Thread(target=lambda: echo_server.arrived.wait(10)
                                 and os.kill(os.getpid(), signal.SIGALRM),
                                 daemon=True)
        results, child = in_parent_and_child(main, fork)
        assert outcome(results) == [{"webhookId": i} for i in FORK_IDS[1:3]]
        assert isinstance(child, list) and all(map(forked_error, child)), child
        assert sorted(echo_server.asked) == FORK_IDS[1:3]
    finally:
        if alarm is not None and alarm.ident is not None:
            alarm.join(timeout=15)
        signal.signal(signal.SIGALRM, previous)


def fork_and_report(child_work):
    """Forks; the child runs child_work() and sends its outcome() through a
    pipe, then ends. Returns the child's outcome."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            try:
                got = child_work()
            except BaseException as e:
                got = e
            os.write(w, json.dumps(outcome(got)).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        ready, _, _ = select.select([r], [], [], 30)
        child = json.loads(os.read(r, 1 << 20) or b"null") if ready else None
        assert wait_child(pid, timeout=30) == 0
    finally:
        os.close(r)
    return child


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
@pytest.mark.parametrize("child_loop", ["new", "inherited"])
def test_a_client_used_before_fork_is_the_childs_on_a_new_event_loop_only(
        echo_server, child_loop):
    """A client used on a loop the parent keeps: in the child, a new loop
    (asyncio.run) gets the client anew, on a connection of its own; the
    parent's loop object, inherited, is refused (it shares its epoll set with
    the parent). Either way the child closes the client at the end, and the
    parent's connection, still watched by its loop, goes on serving it."""
    loop = asyncio.new_event_loop()
    client = AsyncManagementClient(AK, SK, host=echo_server.url, timeout=5,
                                   max_retries=0)
    try:
        assert outcome(loop.run_until_complete(client.trigger_webhook("wh0"))) == {
            "webhookId": "wh0"}
        connections = echo_server.connections
        echo_server.asked.clear()

        def in_child():
            try:
                if child_loop == "new":
                    return asyncio.run(client.trigger_webhook("wh1"))
                return loop.run_until_complete(client.trigger_webhook("wh1"))
            finally:
                asyncio.run(client.aclose())

        child = fork_and_report(in_child)
        if child_loop == "new":
            assert child == {"webhookId": "wh1"}, child
            assert echo_server.asked == ["wh1"]
            assert echo_server.connections == connections + 1  # the child's own
        else:
            assert child is not None and inherited_loop_error(child), child
            assert echo_server.asked == []
        # The parent goes on, on its kept connection.
        echo_server.asked.clear()
        assert outcome(loop.run_until_complete(client.trigger_webhook("wh2"))) == {
            "webhookId": "wh2"}
        assert echo_server.asked == ["wh2"]
        assert echo_server.connections == connections + (child_loop == "new")
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_child_forked_while_another_thread_binds_a_client_can_use_it(echo_server):
    """Another thread of the parent is binding the client to its loop at the
    fork (held there by its loop, caller code): that thread does not exist
    in the child, which must still be able to bind the client to a loop of
    its own rather than wait for ever for the thread to finish."""
    client = AsyncManagementClient(AK, SK, host=echo_server.url, timeout=5,
                                   max_retries=0)
    binding, forked = threading.Event(), threading.Event()

    class SlowLoop(asyncio.SelectorEventLoop):
        # The engine reads the loop's methods as it binds to it.
        @property
        def create_future(self):
            binding.set()
            forked.wait(30)
            return super().create_future

    got = []

    def other_thread():
        loop = SlowLoop()
        try:
            got.append(outcome(loop.run_until_complete(client.trigger_webhook("wh0"))))
            loop.run_until_complete(client.aclose())
        finally:
            loop.close()

    thread = threading.Thread(target=other_thread)
    thread.start()
    try:
        assert binding.wait(10)
        child = fork_and_report(lambda: asyncio.run(client.trigger_webhook("wh1")))
    finally:
        forked.set()
        thread.join(timeout=15)
    assert not thread.is_alive()
    assert child == {"webhookId": "wh1"}, child
    assert got == [{"webhookId": "wh0"}]
    assert sorted(echo_server.asked) == ["wh0", "wh1"]


class ForkingLoop(asyncio.SelectorEventLoop):
    """An event loop that forks (`fork`, once armed) as it starts watching a
    socket for writing: caller code that runs inside the engine's call into
    the loop, as a signal handler run by the loop's Python code would."""

    fork = None

    def add_writer(self, fd, callback, *args):
        super().add_writer(fd, callback, *args)
        if self.fork is not None:
            self.fork()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_fork_inside_the_loop_leaves_the_calls_still_to_send_to_the_parent(echo_server):
    """Two calls go out together on two kept connections: the first one's body
    (over 64 KiB, sent after its headers) has its socket watched for writing,
    and the loop forks there, in the middle of libcurl's action. The child
    must stop there and leave the second call to the parent, not send it on
    the parent's connection as well (its webhook would fire twice)."""
    fork = ForkOnce()
    body = {"blob": "x" * (1 << 20)}

    def run():
        loop = ForkingLoop()

        async def main():
            async with AsyncManagementClient(AK, SK, host=echo_server.url, timeout=20,
                                             max_retries=0) as client:
                # The token and two kept connections.
                await asyncio.gather(client.trigger_webhook("wh0"),
                                     client.trigger_webhook("wh1"))
                echo_server.asked.clear()
                loop.fork = fork
                return await asyncio.gather(client.trigger_webhook("wh2", request_body=body),
                                            client.trigger_webhook("wh3"),
                                            return_exceptions=True)
        try:
            return loop.run_until_complete(main())
        finally:
            loop.close()

    results, child = run_in_parent_and_child(run, fork)
    assert outcome(results) == [{"webhookId": "wh2"}, {"webhookId": "wh3"}]
    assert isinstance(child, list) and all(map(forked_error, child)), child
    # Each call was sent once, by the parent.
    assert sorted(echo_server.asked) == ["wh2", "wh3"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
def test_a_descriptor_the_child_reused_is_not_closed_as_the_parents_socket(echo_server):
    """The child closes its copy of each socket of the parent's that the loop
    watches before unwatching it; one whose number the child has since given
    to a file of its own (closed, then opened again: dup2 here) is that
    file, which the child keeps."""
    loop = asyncio.new_event_loop()
    client = AsyncManagementClient(AK, SK, host=echo_server.url, timeout=5,
                                   max_retries=0)
    try:
        loop.run_until_complete(client.trigger_webhook("wh0"))
        watched = sorted(client._engine.watched)  # the kept connection
        assert watched

        def in_child():
            r, w = os.pipe()
            for fd in watched:
                os.dup2(r, fd)
            try:
                called = asyncio.run(client.trigger_webhook("wh1"))
            finally:
                asyncio.run(client.aclose())
            # What each descriptor reads of what went into the pipe.
            os.write(w, b"x" * len(watched))
            return [called] + [len(os.read(fd, 1)) for fd in watched]

        child = fork_and_report(in_child)
        assert child == [{"webhookId": "wh1"}] + [1] * len(watched), child
        assert outcome(loop.run_until_complete(client.trigger_webhook("wh2"))) == {
            "webhookId": "wh2"}
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork + threads
@pytest.mark.filterwarnings("ignore::ResourceWarning")  # the collected client
@pytest.mark.parametrize("let_go", ["aclose", "collect"])
def test_a_child_that_only_closes_a_client_of_another_threads_loop_lets_go_of_its_sockets(
        echo_server, let_go):
    """The client's loop runs in another thread of the parent's at the fork.
    A child that only closes the client, or lets it be collected, gives up
    the parent's sockets there and then, closing its copies, as one that
    uses the client does: the close is not queued on the parent's loop,
    which no thread of the child runs (and whose wakeup socket is the
    parent's). Queued, the copies stayed open for as long as the child
    lived: the parent's connection outlived the parent's own close, and a
    child forking again handed them on."""
    loop = asyncio.new_event_loop()
    # Only the box holds the client: the child can let it be collected.
    box = {"client": AsyncManagementClient(AK, SK, host=echo_server.url, timeout=5,
                                           max_retries=0)}
    started = threading.Event()

    def run_loop():
        loop.run_until_complete(box["client"].trigger_webhook("wh0"))
        loop.call_soon(started.set)
        loop.run_forever()

    thread = threading.Thread(target=run_loop)
    thread.start()
    try:
        assert started.wait(10)
        watched = sorted(box["client"]._engine.watched)  # the kept connection
        assert watched
        parents = {(st.st_dev, st.st_ino) for st in map(os.fstat, watched)}

        def in_child():
            if let_go == "aclose":
                asyncio.run(box["client"].aclose())
            else:
                box.clear()
                gc.collect()
            # The parent's sockets this process still has open.
            still = []
            for fd in map(int, os.listdir("/proc/self/fd")):
                try:
                    st = os.fstat(fd)
                except OSError:
                    continue  # listdir's own descriptor, closed since
                if (st.st_dev, st.st_ino) in parents:
                    still.append(fd)
            return still

        assert fork_and_report(in_child) == []
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=15)
    assert not thread.is_alive()
    # The parent's loop goes on with the client, on its kept connection.
    connections = echo_server.connections
    assert outcome(loop.run_until_complete(box["client"].trigger_webhook("wh1"))) == {
        "webhookId": "wh1"}
    assert echo_server.connections == connections
    loop.run_until_complete(box["client"].aclose())
    loop.close()
