"""trigger_webhooks: many calls in flight, results in input order."""
import asyncio
import collections.abc
import contextlib
import gc
import logging
import signal
import threading
import time

import pytest

from conftest import AK, SK, SLACK, sigint_when
from rawserver import AllInFlight, Response, announce_and_hold

import genauth_c


def calls(n, **extra):
    return [{"webhook_id": f"wh{i}", "request_body": {"i": i}, **extra}
            for i in range(n)]


def echo_handler(fake):
    def handler(req):
        if "trigger-webhook" in req.path:
            body = req.json()
            auth = req.header("authorization") or ""
            if auth[7:] not in fake.valid_tokens:
                return Response.json({"statusCode": 401, "message": "expired"},
                                     status=401)
            if body["webhookId"] == "boom":
                return Response(status=502, body=b"<html>bad gateway</html>")
            if body["webhookId"] == "hang":
                return Response(delay=60)
            return Response.json({"statusCode": 200, "message": "ok",
                                  "data": {"response": body}},
                                 delay=0.05 if body["webhookId"] == "slow" else 0)
        return fake(req)
    return handler


def test_results_in_input_order(fake, client_for):
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url)
    results = client.trigger_webhooks(calls(100), concurrency=16)
    assert [r["data"]["response"]["requestBody"]["i"] for r in results] == list(range(100))
    assert fake.token_fetches == 1
    # 16 for the batch, and the one the token was fetched on.
    assert fake.server.connections <= 17
    client.trigger_webhooks(calls(32), concurrency=16)
    # The next batch reuses the 8 connections an idle client keeps.
    assert fake.server.connections <= 17 + 16 - 8


def test_a_failure_keeps_the_others(fake, client_for):
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url)
    batch = calls(5)
    batch[2] = {"webhook_id": "boom"}
    results = client.trigger_webhooks(iter(batch))
    assert isinstance(results[2], genauth_c.DecodeError)
    assert results[2].http_status == 502
    assert [r["statusCode"] for i, r in enumerate(results) if i != 2] == [200] * 4


@pytest.mark.parametrize("count,concurrency", [(16, 16), (20, 4)])
def test_batch_runs_concurrently_up_to_its_limit(fake, client_for, count,
                                                 concurrency):
    """The server answers only once `concurrency` requests are open at once
    (proof they were in flight together), and never sees more."""
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url)
    client.trigger_webhook("warm")
    gate = AllInFlight(fake.server.handler, concurrency,
                       matches=lambda req: "trigger-webhook" in req.path)
    lock = threading.Lock()
    open_now, most = [0], [0]

    def counting(req):
        with lock:
            open_now[0] += 1
            most[0] = max(most[0], open_now[0])
        try:
            return gate(req)
        finally:
            with lock:
                open_now[0] -= 1

    fake.server.handler = counting
    results = client.trigger_webhooks(calls(count), concurrency=concurrency)
    assert not gate.broken
    assert [r["statusCode"] for r in results] == [200] * count
    assert most[0] == concurrency


def test_batch_retries_a_refused_token(fake, client_for):
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url)
    client.trigger_webhook("warm")
    fake.expire_tokens()
    results = client.trigger_webhooks(calls(8), concurrency=4)
    assert all(r["statusCode"] == 200 for r in results)


def test_batch_input_validated_before_sending(fake, client_for):
    client = client_for(fake.server.url)
    for bad, exc, text in [
        ([{"webhook_id": "a"}, {"request_body": {}}], TypeError, "calls[1]: missing key 'webhook_id'"),
        ([{"webhook_id": "a", "extra": 1}], TypeError, "calls[0]: unexpected key 'extra'"),
        ([{"webhook_id": "a", 1: 2}], TypeError, "calls[0]: unexpected key 1"),
        ([{"webhook_id": "a", b"webhook_id": 2}], TypeError,
         "calls[0]: unexpected key b'webhook_id'"),
        ([{"webhook_id": "a", "webhook_\u00efd": 2}], TypeError,
         "calls[0]: unexpected key 'webhook_\u00efd'"),
        ([{"webhook_id": "a", "webhook_i\x00": 2}], TypeError,
         "calls[0]: unexpected key 'webhook_i\\x00'"),
        ([{type("Key", (str,), {})("webhook_id"): 5}], TypeError,
         "calls[0]['webhook_id']: expected a non-empty str"),
        ([{"webhook_id": "a", "request_body": {"x": float("nan")}}], ValueError,
         "calls[0]['request_body']['x']"),
        ([["not", "a", "dict"]], TypeError, "calls[0]"),
        ("string", TypeError, "calls"),
        (5, TypeError, "calls"),
    ]:
        with pytest.raises(exc) as info:
            client.trigger_webhooks(bad)
        assert text in str(info.value)
    with pytest.raises(ValueError, match="concurrency"):
        client.trigger_webhooks([], concurrency=0)
    for big in (10**30, -10**30):  # beyond a C long long: named all the same
        with pytest.raises(ValueError, match="concurrency: must be from 1 to 1024"):
            client.trigger_webhooks([], concurrency=big)
    assert fake.server.requests == []
    assert client.trigger_webhooks([]) == []


def test_batch_each_call_bounded_by_timeout(fake, client_for):
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url, timeout=2.0)
    client.trigger_webhook("warm")
    start = time.monotonic()
    results = client.trigger_webhooks([{"webhook_id": "hang"}, {"webhook_id": "ok"}])
    assert time.monotonic() - start < 2.0 + SLACK
    assert isinstance(results[0], genauth_c.TimeoutError)
    assert results[1]["statusCode"] == 200


def test_raise_for_status_gives_api_error_objects(fake, client_for):
    fake.envelope = {"statusCode": 404, "message": "nope", "requestId": "r"}
    client = client_for(fake.server.url, raise_for_status=True)
    (res,) = client.trigger_webhooks([{"webhook_id": "x"}])
    assert isinstance(res, genauth_c.APIError) and res.status_code == 404


def test_ctrl_c_interrupts_a_batch(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("warm")
    arrived = threading.Event()
    fake.server.handler = announce_and_hold(fake, arrived)
    thread, sent = sigint_when(arrived)
    with pytest.raises(KeyboardInterrupt):
        client.trigger_webhooks(calls(8))
    assert sent and time.monotonic() - sent[0] < SLACK
    thread.join(timeout=10)
    assert not thread.is_alive()
    fake.server.handler = fake
    assert client.trigger_webhook("again")["statusCode"] == 200


def test_a_queued_call_gets_its_full_timeout_from_when_it_starts(
        fake, client_for):
    """concurrency=1: the first call hangs and uses up its whole timeout;
    the second starts only then. Were its time counted from the batch's
    start, it would have none left."""
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url, timeout=2.0)
    client.trigger_webhook("warm")
    results = client.trigger_webhooks(
        [{"webhook_id": "hang"}, {"webhook_id": "queued"}], concurrency=1)
    assert isinstance(results[0], genauth_c.TimeoutError)
    assert results[1]["statusCode"] == 200
    ids = [r.json()["webhookId"] for r in fake.server.requests
           if "trigger-webhook" in r.path]
    assert ids == ["warm", "hang", "queued"]


def test_batch_on_closed_client(fake, client_for):
    client = client_for(fake.server.url)
    client.close()
    with pytest.raises(genauth_c.ClientClosedError):
        client.trigger_webhooks(calls(2))


class Sabotage(collections.abc.Mapping):
    """A payload whose conversion runs code that empties the caller's
    containers: the batch must have taken what it needs beforehand."""

    def __init__(self, victim):
        self.victim = victim

    def __getitem__(self, key):
        return {"k": 1}[key]

    def __iter__(self):
        return iter(["k"])

    def __len__(self):
        return 1

    def items(self):
        self.victim.clear()
        return [("k", 1)]


def test_batch_survives_callers_containers_changing(fake, client_for):
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url)
    batch = []
    batch.extend([{"webhook_id": "a" * 40, "request_body": Sabotage(batch)},
                  {"webhook_id": "b"}])
    results = client.trigger_webhooks(batch)
    assert [r["statusCode"] for r in results] == [200, 200]
    call = {"webhook_id": "c" * 40}
    call["request_body"] = Sabotage(call)
    (res,) = client.trigger_webhooks([call])
    assert res["data"]["response"]["webhookId"] == "c" * 40


class Broken(collections.abc.Mapping):
    def __getitem__(self, key):
        raise KeyError(key)

    def __iter__(self):
        return iter([])

    def __len__(self):
        return 0

    def items(self):
        raise ValueError("the caller's own problem")


def test_batch_passes_callers_own_errors_through(fake, client_for):
    client = client_for(fake.server.url)
    with pytest.raises(ValueError, match="^the caller's own problem$"):
        client.trigger_webhooks([{"webhook_id": "a", "request_body": Broken()}])


class OnLine(logging.Handler):
    def __init__(self, on_line):
        super().__init__(logging.DEBUG)
        self.on_line = on_line

    def emit(self, record):
        self.on_line(record.getMessage())


@contextlib.contextmanager
def debug_lines(on_line):
    """Calls on_line(text) for each DEBUG line of the genauth_c logger."""
    logger = logging.getLogger("genauth_c")
    old = logger.level
    handler = OnLine(on_line)
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def test_each_outcome_is_made_as_its_call_ends(fake, client_for):
    """A call's outcome (and its log line) is made when the call ends, not
    when the batch's last call does, so a batch holds no call's answer
    longer than that: here the server answers the second call only once the
    first call's line is logged. Made at the batch's end instead, the second
    call would time out."""
    echo = echo_handler(fake)
    first_logged = threading.Event()

    def handler(req):
        if "trigger-webhook" in req.path and req.json()["webhookId"] == "second":
            first_logged.wait(60)
        return echo(req)

    fake.server.handler = handler
    client = client_for(fake.server.url, timeout=20)
    client.trigger_webhook("warm")
    seen = []

    def on_line(line):
        seen.append(line.split(" http=")[0])
        if line.startswith("POST"):
            first_logged.set()

    with debug_lines(on_line):
        results = client.trigger_webhooks(
            [{"webhook_id": "first"}, {"webhook_id": "second"}], concurrency=2)
    assert [r["statusCode"] for r in results] == [200, 200]
    assert seen == ["POST /api/v3/trigger-webhook"] * 2


def test_a_log_handler_walking_every_object_sees_no_half_made_result(
        fake, client_for):
    """The results list is made once every outcome is: a log handler that
    walks every object the collector knows (as a memory profiler does) while
    the batch runs finds no list with empty slots."""
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url)
    walked = []

    def walk(_line):
        lists = 0
        for obj in gc.get_objects():
            if type(obj) is list:
                lists += 1
                for item in obj:
                    pass
        walked.append(lists)

    with debug_lines(walk):
        results = client.trigger_webhooks(calls(20), concurrency=4)
    assert [r["statusCode"] for r in results] == [200] * 20
    assert len(walked) >= 20


def test_a_log_handler_closing_the_client_mid_batch(fake, client_for):
    """A handler that closes the client as the first call ends: the calls
    not yet started end with ClientClosedError, the ones that ended keep
    their answers, and nothing hangs."""
    fake.server.handler = echo_handler(fake)
    client = client_for(fake.server.url)
    client.trigger_webhook("warm")

    def close_on_first(line):
        if line.startswith("POST"):
            client.close()

    with debug_lines(close_on_first):
        results = client.trigger_webhooks(calls(8), concurrency=1)
    assert results[0]["statusCode"] == 200
    assert all(isinstance(r, genauth_c.ClientClosedError) for r in results[1:])


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_a_batch_sends_each_call_as_a_single_call_sends_it(fake, client_for,
                                                           auth):
    """A batch keeps each unsigned call's body as written text until the
    call is sent (signed calls keep their members, to sign): the bytes on
    the wire are a single call's, byte for byte."""
    echo = echo_handler(fake)
    bodies = []

    def recording(req):
        if "trigger-webhook" in req.path:
            bodies.append(req.body)
        if auth == "signature":
            return Response.json({"statusCode": 200, "message": "ok"})
        return echo(req)

    fake.server.handler = recording
    client = client_for(fake.server.url, auth=auth)
    payloads = [
        {"webhook_id": "w\u4e2d\"\\", "request_body": {"n": [1, 2.5, -0.0, 2**53 - 1],
                                                        "s": "\u00e9\U0001f600\x00"}},
        {"webhook_id": "plain", "request_headers": {"k": None, "t": True},
         "request_body": None},
        {"webhook_id": "x" * 3000, "request_body": {"big": "y" * 5000}},
    ]
    for p in payloads:
        client.trigger_webhook(**p)
    singles, bodies[:] = list(bodies), []
    results = client.trigger_webhooks(payloads, concurrency=1)
    assert [r["statusCode"] for r in results] == [200] * 3
    assert bodies == singles


def first_now_others_late(fake, late=3.0):
    """A handler: the call for webhook "first" is answered at once, after
    sending this process's main thread SIGINT when `signal_first` is set;
    every other call `late` seconds later."""
    main = threading.main_thread().ident

    def handler(req, signal_first=False):
        if "trigger-webhook" not in req.path:
            return fake(req)
        ok = {"statusCode": 200, "message": "ok"}
        if req.json()["webhookId"] != "first":
            return Response.json(ok, delay=late)
        if signal_first:
            signal.pthread_kill(main, signal.SIGINT)
        return Response.json(ok)

    return handler


FIRST_AND_LATE = [{"webhook_id": "first"}] + calls(3)


def test_ctrl_c_that_lands_as_a_call_ends_stops_the_batch(fake, client_for):
    """SIGINT lands while the batch waits on the network, and a call's
    answer comes before the batch's next look for signals: the Python code
    that call's end runs (the logger's isEnabledFor, with logging imported
    and genauth_c's DEBUG off) must not be where the KeyboardInterrupt goes.
    It stops the batch; it was reported as the log handler's failure and the
    batch ran on to its end."""
    handler = first_now_others_late(fake)
    fake.server.handler = lambda req: handler(req, signal_first=True)
    client = client_for(fake.server.url, timeout=30)
    with pytest.raises(KeyboardInterrupt):
        client.trigger_webhooks(FIRST_AND_LATE, concurrency=4)
    fake.server.handler = fake
    assert client.trigger_webhook("again")["statusCode"] == 200


def test_ctrl_c_in_a_log_handler_stops_the_batch(fake, client_for):
    """SIGINT lands while a log handler runs on the batch's thread (its
    KeyboardInterrupt comes out of the handler, as Python raises it there):
    the batch stops with it, as when it lands in the batch's wait; it was
    reported as a failing handler's and lost."""
    fake.server.handler = first_now_others_late(fake)
    client = client_for(fake.server.url, timeout=30)
    client.trigger_webhook("warm")

    def on_line(line):
        if "trigger-webhook" in line:
            signal.raise_signal(signal.SIGINT)

    with debug_lines(on_line), pytest.raises(KeyboardInterrupt):
        client.trigger_webhooks(FIRST_AND_LATE, concurrency=4)
    fake.server.handler = fake
    assert client.trigger_webhook("again")["statusCode"] == 200


def batch_of(url, client_for, mode, batch, concurrency=4, **options):
    """client.trigger_webhooks(batch) with a new sync client, or in asyncio
    with a new AsyncManagementClient, made with `options`."""
    if mode == "sync":
        return client_for(url, **options).trigger_webhooks(
            batch, concurrency=concurrency)

    async def main():
        async with genauth_c.AsyncManagementClient(AK, SK, host=url,
                                                   **options) as c:
            return await c.trigger_webhooks(batch, concurrency=concurrency)
    return asyncio.run(main())


@pytest.mark.parametrize("answer,exc,text", [
    (Response.json({"statusCode": 401, "message": "access key refused",
                    "apiCode": 2001}, status=401),
     genauth_c.AuthError, "access key refused"),
    (Response(status=200, body=b"<html>maintenance</html>",
              headers=[("Content-Type", "text/html")]),
     genauth_c.DecodeError, "not JSON"),
], ids=["refused", "not-json"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_batch_asks_a_failing_token_endpoint_once(fake, client_for, mode,
                                                    answer, exc, text):
    """Every call of a batch needs the token. Once its fetch failed for good
    (retry.c would not send it again), the calls queued behind it end with
    that failure, as calls that waited for the fetch do: a wrong key costs
    one refused login, not one a call (it was one a call in a batch, and
    one per `concurrency` calls in asyncio's). The next batch asks again."""
    fake.token_answer = answer
    batch = calls(40)
    results = batch_of(fake.server.url, client_for, mode, batch)
    assert fake.token_fetches == 1
    assert all(isinstance(r, exc) and text in str(r) for r in results)
    fake.token_answer = None
    results = batch_of(fake.server.url, client_for, mode, batch)
    assert fake.token_fetches == 2
    assert [r["statusCode"] for r in results] == [200] * 40


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_resting_batch_call_shares_a_refusal_that_came_while_it_rested(
        fake, client_for, mode):
    """A batch's call waiting for its retry (a 429) is still one of the
    batch's queued calls: a token fetch that another of its calls made
    meanwhile, refused for good, is its failure too, in asyncio as in a
    sync batch. The sync batch took the retry as a new start, so that call
    asked the refusing endpoint again (3 fetches, 2 in asyncio's)."""
    refetched = threading.Event()

    def handler(req):
        if req.path.endswith("/get-management-token"):
            if fake.token_fetches == 0:
                return fake(req)  # the batch's token
            fake.token_fetches += 1
            refetched.set()
            return Response.json({"statusCode": 401, "apiCode": 2001,
                                  "message": "access key disabled"},
                                 status=401)
        if req.json()["webhookId"] == "wh1":
            return Response.json({"statusCode": 401, "message": "revoked"},
                                 status=401)
        # wh0's answer comes once wh1's new token was asked for: it rests
        # for its retry after that fetch was refused.
        if not refetched.wait(30):
            return Response(status=503, body=b"no refetch came")
        return Response.json({"statusCode": 429, "message": "slow down"},
                             status=429, headers=[("Retry-After", "0")])

    fake.server.handler = handler
    results = batch_of(fake.server.url, client_for, mode, calls(2),
                       concurrency=2)
    assert all(isinstance(r, genauth_c.AuthError) and
               "access key disabled" in str(r) for r in results), results
    assert fake.token_fetches == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_call_started_after_a_hung_token_fetch_gets_its_own_time(
        fake, client_for, mode):
    """concurrency=1: the first call's token fetch hangs past its timeout;
    the second starts only once the first has ended, so it has its whole
    timeout from then, and fetches the token itself (which the endpoint now
    answers). The sync batch started it in the same pass as the first, on
    that pass's clock: it timed out at once, never asking, where asyncio's
    batch (and a second call in a loop) succeeded."""
    release = threading.Event()
    token_answer = fake

    def handler(req):
        if (req.path.endswith("/get-management-token") and
                fake.token_fetches == 0):
            fake.token_fetches += 1
            release.wait(60)  # held until the test ends
            return Response(status=503)
        return token_answer(req)

    fake.server.handler = handler
    try:
        results = batch_of(fake.server.url, client_for, mode,
                           calls(2), concurrency=1, timeout=1.0)
    finally:
        release.set()
    assert isinstance(results[0], genauth_c.TimeoutError), results
    assert results[1]["statusCode"] == 200, results
    assert fake.token_fetches == 2


def established_to(port):
    """This process's TCP connections to 127.0.0.1:`port` that are still
    open from its side (/proc/net/tcp: state 01, ESTABLISHED)."""
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for row in rows
               if row[3] == "01" and int(row[2].split(":")[1], 16) == port)


def test_close_during_a_batch_closes_its_connections_as_it_ends(
        fake, client_for):
    """close() from another thread while a batch has calls in flight: the
    calls in flight go on to their end, and then their connections close,
    as a single call's do. The batch's multi handle, which close() leaves
    to the batch in progress, kept them open (and its wakeup pair) until
    the client was garbage-collected."""
    client = client_for(fake.server.url)
    client.trigger_webhook("warm")
    arrived, release = threading.Semaphore(0), threading.Event()

    def handler(req):
        if "trigger-webhook" in req.path and not release.is_set():
            arrived.release()
            release.wait(30)
        return fake(req)

    def closer():
        for _ in range(4):
            arrived.acquire()
        client.close()
        release.set()

    fake.server.handler = handler
    thread = threading.Thread(target=closer)
    thread.start()
    try:
        results = client.trigger_webhooks(calls(8), concurrency=4)
    finally:
        release.set()
        thread.join()
    assert [r["statusCode"] for r in results[:4]] == [200] * 4
    assert all(isinstance(r, genauth_c.ClientClosedError)
               for r in results[4:])
    assert established_to(fake.server.port) == 0
