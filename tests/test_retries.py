"""Retries that never deliver twice (max_retries): what never reached the
server and throttling answers are sent again; what may have reached it is
not. Deliveries are counted at the receiver."""
import asyncio
import email.utils
import json
import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import AK, SK, free_port
from rawserver import FakeGenAuth, Held, RawServer, Response
from test_batch import debug_lines

import genauth_c


def counting(fake, answers, path="trigger-webhook"):
    """A handler answering the requests to `path` (trigger-webhook) with
    `answers` in turn (then the fake's own answer); returns (handler, the
    requests to `path`)."""
    deliveries = []
    lock = threading.Lock()
    queue = list(answers)

    def handler(req):
        if path in req.path:
            with lock:
                deliveries.append(req)
                nxt = queue.pop(0) if queue else None
            if nxt is not None:
                return nxt
        return fake(req)

    return handler, deliveries


THROTTLED = Response.json({"statusCode": 429, "message": "slow down"},
                          status=429)
THROTTLED_AFTER = Response.json({"statusCode": 429, "message": "slow down"},
                                status=429, headers=[("Retry-After", "0")])
THROTTLED_ENVELOPE = Response.json({"statusCode": 429, "message": "slow"})


@pytest.mark.parametrize("answer", [THROTTLED, THROTTLED_AFTER,
                                    THROTTLED_ENVELOPE])
def test_throttled_then_answered(fake, client_for, answer):
    fake.server.handler, deliveries = counting(fake, [answer, answer])
    client = client_for(fake.server.url, timeout=10)
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert len(deliveries) == 3


def test_throttled_past_max_retries_returns_the_429(fake, client_for):
    fake.server.handler, deliveries = counting(fake, [THROTTLED_ENVELOPE] * 5)
    client = client_for(fake.server.url, timeout=10, max_retries=1)
    assert client.trigger_webhook("wh1")["statusCode"] == 429
    assert len(deliveries) == 2


def test_max_retries_0_sends_once(fake, client_for):
    fake.server.handler, deliveries = counting(fake, [THROTTLED_ENVELOPE])
    client = client_for(fake.server.url, max_retries=0)
    assert client.trigger_webhook("wh1")["statusCode"] == 429
    assert len(deliveries) == 1


def test_refused_connection_then_the_server_appears(client_for):
    """The first connection is refused (nothing listens yet); the server
    comes up during the backoff: the call succeeds, delivered once."""
    port = free_port()
    fake = FakeGenAuth()
    handler, deliveries = counting(fake, [])
    client = client_for(f"http://127.0.0.1:{port}", timeout=10,
                        max_retries=100)
    servers = []
    started = threading.Event()

    def later():
        started.wait(5)
        servers.append(RawServer(handler, port=port).__enter__())

    t = threading.Thread(target=later)
    t.start()
    started.set()
    try:
        assert client.trigger_webhook("wh1")["statusCode"] == 200
    finally:
        t.join(timeout=10)
        for s in servers:
            s.stop()
    assert len(deliveries) == 1


def test_refused_with_max_retries_0_fails(client_for):
    client = client_for(f"http://127.0.0.1:{free_port()}", max_retries=0)
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert info.value.curl_code == 7


def test_reset_after_the_request_was_read_is_not_retried(fake, client_for):
    fake.server.handler, deliveries = counting(
        fake, [Response(raw=b"", reset=True)])
    client = client_for(fake.server.url, timeout=10)
    with pytest.raises(genauth_c.TransportError):
        client.trigger_webhook("wh1")
    assert len(deliveries) == 1


def test_timeout_is_not_retried(fake, client_for):
    fake.server.handler, deliveries = counting(
        fake, [Response.json({"statusCode": 200}, delay=2)])
    client = client_for(fake.server.url, timeout=0.5)
    with pytest.raises(genauth_c.TimeoutError):
        client.trigger_webhook("wh1")
    assert len(deliveries) == 1


def throttled_until(seconds_from_now):
    """A 429 whose Retry-After is an HTTP-date (RFC 9110 allows it beside
    delay-seconds), `seconds_from_now` from now."""
    return Response.json(
        {"statusCode": 429, "message": "slow down"}, status=429,
        headers=[("Retry-After", email.utils.formatdate(
            time.time() + seconds_from_now, usegmt=True))])


def call_in(mode, options):
    """One trigger_webhook('wh1') as a call, a batch of one or a coroutine:
    its envelope."""
    if mode == "async":
        async def run():
            async with genauth_c.AsyncManagementClient(AK, SK, **options) as c:
                return await c.trigger_webhook("wh1")
        return asyncio.run(run())
    with genauth_c.ManagementClient(AK, SK, **options) as client:
        if mode == "batch":
            (result,) = client.trigger_webhooks([{"webhook_id": "wh1"}])
            return result
        return client.trigger_webhook("wh1")


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_a_retry_after_date_past_the_deadline_is_not_waited_for(fake, mode):
    """An hour away, past the call's timeout: no retry, the 429 at once,
    rather than the usual backoff and a second request."""
    fake.server.handler, deliveries = counting(fake, [throttled_until(3600)])
    result = call_in(mode, dict(host=fake.server.url, timeout=30))
    assert result["statusCode"] == 429
    assert len(deliveries) == 1


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_a_retry_after_date_gone_by_is_sent_again_at_once(fake, mode):
    fake.server.handler, deliveries = counting(fake, [throttled_until(-60)])
    result = call_in(mode, dict(host=fake.server.url, timeout=30))
    assert result["statusCode"] == 200
    assert len(deliveries) == 2


def logged_retries(mode, options):
    """call_in's outcome (an error as it is, not raised) and the retries= of
    the call's log line."""
    lines = []
    with debug_lines(lines.append):
        try:
            result = call_in(mode, options)
        except genauth_c.GenAuthError as e:
            result = e
    [line] = [line for line in lines if "/trigger-webhook " in line]
    return result, int(line.split(" retries=")[1].split(":")[0])


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_max_retries_is_what_arrives_again_and_what_is_logged(fake, mode,
                                                             max_retries):
    """Throttled every time: however the call is made, the server receives
    it max_retries + 1 times, and the call's log line counts the others."""
    fake.server.handler, deliveries = counting(fake, [THROTTLED_AFTER] * 10)
    result, retries = logged_retries(mode, dict(
        host=fake.server.url, timeout=30, max_retries=max_retries))
    assert result["statusCode"] == 429
    assert len(deliveries) == max_retries + 1
    assert retries == max_retries


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
@pytest.mark.parametrize("retry_after, arrivals", [
    ("0", 2), ("-1", 2), ("soon", 2), ("1.5", 2), ("3600", 1),
    ("99999999999999999999", 1), (["3600", "0"], 1), (["0", "3600"], 2)])
def test_retry_after_values(fake, mode, retry_after, arrivals):
    """A Retry-After that is not a count of seconds nor an HTTP-date (a
    negative number, a fraction, a word) is as none: the usual backoff.
    One past the call's timeout (an hour, more than a long holds) is not
    waited for: the 429 at once. Of two, the first counts."""
    values = retry_after if isinstance(retry_after, list) else [retry_after]
    throttled = Response.json(
        {"statusCode": 429, "message": "slow down"}, status=429,
        headers=[("Retry-After", value) for value in values])
    fake.server.handler, deliveries = counting(fake, [throttled])
    result, retries = logged_retries(mode, dict(host=fake.server.url,
                                                timeout=30))
    assert result["statusCode"] == (200 if arrivals == 2 else 429)
    assert len(deliveries) == arrivals
    assert retries == arrivals - 1


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
@pytest.mark.parametrize("answer, timeout", [
    (Response(raw=b"", reset=True), 10), (Response(close=True), 10),
    (Response.json({"statusCode": 200}, delay=2), 0.5)],
    ids=["reset", "closed", "timeout"])
def test_what_may_have_arrived_is_never_sent_again(fake, mode, answer,
                                                   timeout):
    """Read by the server, then the connection reset or closed without an
    answer, or no answer in time: one arrival and no retry logged, in each
    of the three paths, whatever max_retries allows."""
    fake.server.handler, deliveries = counting(fake, [answer])
    result, retries = logged_retries(mode, dict(
        host=fake.server.url, timeout=timeout, max_retries=5))
    assert isinstance(result, genauth_c.TransportError), result
    assert len(deliveries) == 1
    assert retries == 0


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
@pytest.mark.parametrize("trust", ["untrusted", "unusable-ca-file"])
def test_a_tls_trust_failure_is_not_retried(tls_fake, tmp_path, monkeypatch, mode, trust):
    """The failure table: a certificate the client's CAs do not vouch for
    (60) fails the same way however often it is tried, as does a CA file
    OpenSSL cannot load (77): one handshake, not max_retries + 1, and no
    backoff waited for."""
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    options = dict(host=tls_fake.server.url, timeout=10, max_retries=2)
    if trust == "unusable-ca-file":
        empty = tmp_path / "empty.pem"
        empty.write_text("")
        options["ca_bundle"] = str(empty)
    try:
        error = call_in(mode, options)
    except genauth_c.TransportError as e:
        error = e
    assert isinstance(error, genauth_c.TransportError), error
    assert error.curl_code == (60 if trust == "untrusted" else 77), error
    # Untrusted: the server took the connection to present its certificate.
    # An unusable CA file ends the call before the ClientHello, maybe before
    # the server's accept() has counted the connection.
    if trust == "untrusted":
        assert tls_fake.server.connections == 1
    else:
        assert tls_fake.server.connections <= 1
    assert tls_fake.server.requests == []


def test_batch_retries_throttled_calls(fake, client_for):
    fake.server.handler, deliveries = counting(fake, [THROTTLED] * 4)
    client = client_for(fake.server.url, timeout=10)
    results = client.trigger_webhooks([{"webhook_id": "wh1"}] * 4,
                                      concurrency=4)
    assert [r["statusCode"] for r in results] == [200] * 4
    assert len(deliveries) == 8


THROTTLED_FOR_LONG = Response.json({"statusCode": 429, "message": "slow down"},
                                   status=429, headers=[("Retry-After", "30")])


def wait_for_deliveries(deliveries, n, timeout=30.0):
    end = time.monotonic() + timeout
    while len(deliveries) < n:
        assert time.monotonic() < end, "the server never got %d requests" % n
        time.sleep(0.01)


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_close_ends_the_calls_waiting_to_be_sent_again(fake, mode):
    """close() while calls wait out a throttled answer's Retry-After (30 s,
    within their timeout): they end with ClientClosedError then, instead of
    sending their requests again when the wait is over."""
    n = 1 if mode == "call" else 3
    fake.server.handler, deliveries = counting(fake, [THROTTLED_FOR_LONG] * n)
    options = dict(host=fake.server.url, timeout=60, max_retries=2)
    if mode == "async":
        async def run():
            client = genauth_c.AsyncManagementClient(AK, SK, **options)
            calls = [asyncio.ensure_future(client.trigger_webhook("wh1"))
                     for _ in range(n)]
            while len(deliveries) < n:
                await asyncio.sleep(0.01)
            await client.aclose()
            done = await asyncio.wait_for(
                asyncio.gather(*calls, return_exceptions=True), 20)
            return list(done)
        results = asyncio.run(run())
    else:
        client = genauth_c.ManagementClient(AK, SK, **options)
        results = []

        def caller():
            if mode == "batch":
                results.extend(client.trigger_webhooks(
                    [{"webhook_id": "wh1"}] * n, concurrency=n))
                return
            try:
                results.append(client.trigger_webhook("wh1"))
            except genauth_c.GenAuthError as e:
                results.append(e)

        t = threading.Thread(target=caller)
        t.start()
        wait_for_deliveries(deliveries, n)
        client.close()
        t.join(20)  # the wait left: 30 s
        assert not t.is_alive(), "the call went on waiting after close()"
    assert len(results) == n
    for r in results:
        assert isinstance(r, genauth_c.ClientClosedError), r
    assert len(deliveries) == n


def test_close_ends_a_batchs_waiting_retry_while_its_slots_are_taken(fake):
    """A batch's call waiting out a Retry-After (30 s) ends with
    ClientClosedError once the client is closed, also while every slot is
    taken by calls in flight: here those are held at the server until the
    waiting call's end is logged, so it must end before any slot frees.
    Those in flight finish as usual, and nothing is sent again."""
    release, ended = threading.Event(), threading.Event()
    throttled, held, ended_first = [], [], []

    def handler(req):
        if "trigger-webhook" in req.path:
            if req.json()["webhookId"] == "throttled":
                throttled.append(req)
                return THROTTLED_FOR_LONG
            if req.json()["webhookId"].startswith("held"):
                held.append(req)
                release.wait(30)
        return fake(req)

    fake.server.handler = handler
    client = genauth_c.ManagementClient(AK, SK, host=fake.server.url,
                                        timeout=60, max_retries=2)
    client.trigger_webhook("warm")  # the token, fetched before the batch

    def on_line(line):
        if "failed=" in line and "trigger-webhook" in line:
            ended.set()

    def close_when_all_are_in():
        # The two held calls are in flight, both slots taken, once the
        # server has them (and the throttled one was answered first).
        while not (throttled and len(held) == 2):
            time.sleep(0.01)
        client.close()
        ended_first.append(ended.wait(20))
        release.set()

    closer = threading.Thread(target=close_when_all_are_in)
    try:
        closer.start()
        # On the main thread: each outcome is made, and logged, as its call
        # ends.
        with debug_lines(on_line):
            results = client.trigger_webhooks(
                [{"webhook_id": "throttled"}, {"webhook_id": "held-1"},
                 {"webhook_id": "held-2"}], concurrency=2)
    finally:
        release.set()
        closer.join(30)
    assert ended_first == [True], "the waiting call ended only once a slot freed"
    assert isinstance(results[0], genauth_c.ClientClosedError), results[0]
    assert [r["statusCode"] for r in results[1:]] == [200, 200]
    assert len(throttled) == 1


@pytest.mark.parametrize("closes_at", ["refusal", "new-token-fetch"])
@pytest.mark.parametrize("mode", ["call", "batch"])
def test_close_ends_a_call_before_its_retry_with_a_new_token(fake, mode,
                                                              closes_at):
    """A call whose token was refused (401) fetches a new one and is sent
    again: not when the client was closed meanwhile, while the call waited
    for that refusal or for the new token's fetch. It ends with
    ClientClosedError, and the request is not sent after."""
    client = genauth_c.ManagementClient(AK, SK, host=fake.server.url,
                                        timeout=10)
    refused = Response.json({"statusCode": 401, "message": "token expired"},
                            status=401)
    deliveries, fetches = [], []

    def handler(req):
        if "trigger-webhook" in req.path:
            deliveries.append(req)
            if len(deliveries) > 1:
                return fake(req)
            if closes_at == "refusal":
                client.close()  # the call waits for this answer meanwhile
            return refused
        if "get-management-token" in req.path:
            fetches.append(req)
            if closes_at == "new-token-fetch" and len(fetches) == 2:
                client.close()  # the retry's fetch is under way
        return fake(req)

    fake.server.handler = handler
    if mode == "batch":
        [result] = client.trigger_webhooks([{"webhook_id": "wh1"}])
        assert isinstance(result, genauth_c.ClientClosedError), result
    else:
        with pytest.raises(genauth_c.ClientClosedError):
            client.trigger_webhook("wh1")
    assert len(fetches) == (1 if closes_at == "refusal" else 2)
    assert len(deliveries) == 1


def call_or_error(client, mode):
    """trigger_webhook('wh1') as a call or a batch of one: its envelope, or
    the exception it raised or returned. A batch started once the client is
    closed raises it (the whole batch cannot start); one closed while it
    runs returns it in its call's place: which one depends on when the
    thread runs, so both are the outcome."""
    try:
        if mode == "batch":
            [result] = client.trigger_webhooks([{"webhook_id": "wh1"}])
            return result
        return client.trigger_webhook("wh1")
    except genauth_c.GenAuthError as e:
        return e


@pytest.mark.parametrize("waiter", [False, True])
@pytest.mark.parametrize("mode", ["call", "batch"])
def test_close_during_the_first_token_fetch_sends_nothing(fake, mode, waiter):
    """close() while a call's token is being fetched (by the call itself,
    or by another thread's call it waits for): the call ends with
    ClientClosedError once the token comes, and its request is never sent,
    rather than going out after close() returned."""
    client = genauth_c.ManagementClient(AK, SK, host=fake.server.url,
                                        timeout=10)
    deliveries = []
    fetching, fetched = threading.Event(), threading.Event()

    def handler(req):
        if "trigger-webhook" in req.path:
            deliveries.append(req)
        elif "get-management-token" in req.path:
            fetching.set()
            fetched.wait(10)  # the waiting call is waiting meanwhile
            client.close()
        return fake(req)

    fake.server.handler = handler

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(call_or_error, client, mode)
        fetching.wait(10)
        # A call that waits for the fetch the first one started (or, if
        # close() came first, finds the client closed).
        second = (pool.submit(call_or_error, client, mode) if waiter
                  else None)
        fetched.set()
        results = [f.result(timeout=20) for f in (first, second) if f]
    assert all(isinstance(r, genauth_c.ClientClosedError) for r in results), \
        results
    assert deliveries == []


@pytest.mark.parametrize("mode", ["call", "batch"])
def test_close_ends_a_call_waiting_for_another_threads_token_fetch(fake, mode):
    """close() while a call waits for the token fetch another thread's call
    started: it ends with ClientClosedError then, while that fetch is still
    unanswered, rather than waiting for its answer (up to its timeout)."""
    client = genauth_c.ManagementClient(AK, SK, host=fake.server.url,
                                        timeout=60)
    held = Held(fake, path="get-management-token")
    fake.server.handler = held

    with ThreadPoolExecutor(2) as pool:
        fetcher = pool.submit(call_or_error, client, mode)
        held.wait_arrival(10)
        waiter = pool.submit(call_or_error, client, mode)
        # Most often the waiter is waiting by now; if not, it finds the
        # client closed as it begins: either way it ends before the answer.
        time.sleep(0.2)
        client.close()
        try:
            result = waiter.result(timeout=20)
        finally:
            held.release()
        fetcher.result(timeout=20)
    assert isinstance(result, genauth_c.ClientClosedError), result


@pytest.mark.parametrize("bad", [-1, 101, True, "2"])
def test_max_retries_checked(bad):
    with pytest.raises((ValueError, TypeError), match="max_retries"):
        genauth_c.ManagementClient("AK", "SK", max_retries=bad)


# ---- the token request: the same rules --------------------------------------

def calls_in(mode, url, n=3, one_at_a_time=False, **options):
    """n calls made as `mode` says, at once or `one_at_a_time` (each after
    the one before has ended: a batch's with concurrency=1); their results
    (envelope or exception)."""
    options.setdefault("timeout", 10)
    if mode == "async":
        async def one(client):
            try:
                return await client.trigger_webhook("wh1")
            except genauth_c.GenAuthError as e:
                return e

        async def run():
            async with genauth_c.AsyncManagementClient(
                    AK, SK, host=url, **options) as client:
                if one_at_a_time:
                    return [await one(client) for _ in range(n)]
                return await asyncio.gather(*(one(client) for _ in range(n)))
        return asyncio.run(run())
    with genauth_c.ManagementClient(AK, SK, host=url, **options) as client:
        if mode == "batch":
            return client.trigger_webhooks([{"webhook_id": "wh1"}] * n,
                                           concurrency=1 if one_at_a_time else n)
        results = []
        for _ in range(n):
            try:
                results.append(client.trigger_webhook("wh1"))
            except genauth_c.GenAuthError as e:
                results.append(e)
        return results


def status_codes(results):
    return [r["statusCode"] if isinstance(r, dict) else r for r in results]


@pytest.mark.parametrize("answer", [THROTTLED_AFTER, THROTTLED_ENVELOPE],
                         ids=["http-429", "envelope-429"])
@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_a_throttled_token_request_is_sent_again(fake, answer, mode):
    """The token endpoint said to slow down: the fetch is sent again after
    the wait, as an API request would be, and every call is answered; the
    throttled answer is not an AuthError."""
    fake.server.handler, fetches = counting(fake, [answer],
                                            "get-management-token")
    assert status_codes(calls_in(mode, fake.server.url)) == [200] * 3
    assert len(fetches) == 2


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_a_token_request_throttled_past_max_retries_is_an_auth_error(
        fake, mode):
    fake.server.handler, fetches = counting(
        fake, [THROTTLED_AFTER] * 99, "get-management-token")
    results = calls_in(mode, fake.server.url, n=1, max_retries=1)
    assert [type(r) for r in results] == [genauth_c.AuthError], results
    assert results[0].status_code == 429
    assert len(fetches) == 2


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_calls_after_a_throttled_token_fetch_ask_no_sooner_than_it_said(
        fake, mode):
    """The token endpoint throttled a fetch and said in Retry-After when to
    ask again: a call that needs a token before then shares that refusal,
    as one that waited for the fetch does, rather than asking again at
    once. Its retry would wait past its timeout, so each call ends with the
    429 AuthError, and the endpoint was asked once."""
    fake.server.handler, fetches = counting(
        fake, [THROTTLED_PAST_TIMEOUT] * 99, "get-management-token")
    results = calls_in(mode, fake.server.url, one_at_a_time=True,
                       max_retries=1)
    assert [type(r) for r in results] == [genauth_c.AuthError] * 3, results
    for e in results:
        assert (e.status_code, e.http_status) == (429, 429), e
        assert e.response == json.loads(THROTTLED_PAST_TIMEOUT.body), e
    assert len(fetches) == 1


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_calls_made_while_a_throttled_token_fetch_waits_go_out_after_it(
        fake, mode):
    """Calls that share the throttled fetch's refusal retry after the wait
    it asked for, as the fetching call does: every call is answered, with
    one fetch refused and one answered."""
    once = Response.json({"statusCode": 429, "message": "slow down"},
                         status=429, headers=[("Retry-After", "1")])
    fake.server.handler, fetches = counting(fake, [once],
                                            "get-management-token")
    results = calls_in(mode, fake.server.url, max_retries=1)
    assert status_codes(results) == [200] * 3
    assert len(fetches) == 2


def calls_after(mode, url, steps, settle=None, **options):
    """One call after each of `steps` (run first: say, to move the token
    clock), all on one client made as `mode` says; their results. On an
    event loop `settle`, when given, is awaited after each call: an early
    refresh runs beside the call that started it, where a sync call makes
    it first."""
    options.setdefault("timeout", 10)

    def one_step_sync(client):
        if mode == "batch":
            return client.trigger_webhooks([{"webhook_id": "wh1"}])[0]
        try:
            return client.trigger_webhook("wh1")
        except genauth_c.GenAuthError as e:
            return e

    if mode == "async":
        async def run():
            async with genauth_c.AsyncManagementClient(
                    AK, SK, host=url, **options) as client:
                results = []
                for step in steps:
                    step()
                    try:
                        results.append(await client.trigger_webhook("wh1"))
                    except genauth_c.GenAuthError as e:
                        results.append(e)
                    if settle:
                        await settle()
                return results
        return asyncio.run(run())
    with genauth_c.ManagementClient(AK, SK, host=url, **options) as client:
        results = []
        for step in steps:
            step()
            results.append(one_step_sync(client))
        return results


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_an_early_refresh_throttled_asks_no_sooner_than_it_said(
        fake, token_clock, mode):
    """A refresh ahead of expiry is throttled, with a Retry-After: the
    cached token serves meanwhile (no call sees the refusal), and no call
    asks again before the time the answer named: not the next early
    refresh (due 5 s later), nor a call once the token has expired, which
    shares that refusal as any call made in the wait does."""
    fake.server.handler, fetches = counting(
        fake, [None] + [THROTTLED_PAST_TIMEOUT] * 9, "get-management-token")
    start = token_clock.now
    expires = start + fake.lifetime
    steps = [
        lambda: None,                          # fetches the token
        lambda: token_clock.set(expires - 30),  # refreshes: throttled
        lambda: token_clock.set(expires - 20),  # a refresh would be due
        lambda: token_clock.set(expires + 1),   # the token has expired
    ]
    results = calls_after(mode, fake.server.url, steps, max_retries=1)
    assert status_codes(results[:3]) == [200] * 3, results
    e = results[3]
    assert isinstance(e, genauth_c.AuthError), results
    assert (e.status_code, e.http_status, e.response) == (
        429, 429, json.loads(THROTTLED_PAST_TIMEOUT.body))
    assert len(fetches) == 2


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_in_a_throttled_wait_a_token_about_to_expire_still_serves(
        fake, token_clock, mode):
    """After a throttled early refresh the cached token serves until the
    time the answer named, to its last moments (0.1 s before it expires):
    a call goes out with it, asking nothing. asyncio once took a token in
    its last 0.25 s for none and shared the 429 instead."""
    fake.server.handler, fetches = counting(
        fake, [None] + [THROTTLED_PAST_TIMEOUT] * 9, "get-management-token")
    expires = token_clock.now + fake.lifetime
    steps = [
        lambda: None,                           # fetches the token
        lambda: token_clock.set(expires - 30),   # refreshes: throttled
        lambda: token_clock.set(expires - 0.1),  # about to expire
    ]
    results = calls_after(mode, fake.server.url, steps, max_retries=1)
    assert status_codes(results) == [200] * 3, results
    assert len(fetches) == 2


@pytest.mark.parametrize("client_class", ["ManagementClient",
                                          "AsyncManagementClient"])
def test_calls_in_a_throttled_wait_end_as_a_waiting_call_does(
        fake, caplog, client_class):
    """A call made in the wait a throttled token fetch named, which cannot
    retry (the wait ends past its timeout), ends as a call that waited for
    that fetch does, in either client: a batch returns the AuthError among
    its results (it does not stop), and each call logs its line; the token
    fetch is logged once."""
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    fake.server.handler, fetches = counting(
        fake, [THROTTLED_PAST_TIMEOUT] * 9, "get-management-token")

    async def made(result):
        """A call's result in either client (a coroutine's, awaited)."""
        return await result if asyncio.iscoroutine(result) else result

    async def run():
        cls = getattr(genauth_c, client_class)
        client = cls(AK, SK, host=fake.server.url, timeout=10, max_retries=1)
        out = []
        try:
            for batch in (False, True, False):
                try:
                    if batch:
                        out.extend(await made(client.trigger_webhooks(
                            [{"webhook_id": "wh1"}] * 3, concurrency=2)))
                    else:
                        out.append(await made(client.trigger_webhook("wh1")))
                except genauth_c.GenAuthError as e:
                    out.append(e)
        finally:
            await made(client.aclose() if hasattr(client, "aclose")
                       else client.close())
        return out

    results = asyncio.run(run())
    assert [type(r) for r in results] == [genauth_c.AuthError] * 5, results
    for e in results:
        assert (e.status_code, e.http_status, e.response) == (
            429, 429, json.loads(THROTTLED_PAST_TIMEOUT.body)), e
    assert len(fetches) == 1
    logged = [r.getMessage() for r in caplog.records if r.name == "genauth_c"]
    assert len([m for m in logged if m.startswith(
        "POST /api/v3/trigger-webhook failed=AUTH http=429")]) == 5, logged
    assert len([m for m in logged if m.startswith("token fetch")]) == 1, \
        logged


@pytest.mark.parametrize("mode", ["batch", "async"])
def test_a_token_request_refused_before_the_server_is_up_is_sent_again(
        mode):
    """Nothing listens when the first call needs its token; the server comes
    up once that fetch has failed (a log handler sees its line): the fetch
    is sent again and every call is answered, as a single call's is
    (test_refused_connection_then_the_server_appears)."""
    port = free_port()
    fake = FakeGenAuth()
    handler, fetches = counting(fake, [], "get-management-token")
    servers = []

    class StartServer(logging.Handler):
        def emit(self, record):
            if (not servers and record.getMessage().startswith(
                    "token fetch failed=TRANSPORT")):
                servers.append(RawServer(handler, port=port).__enter__())

    logger = logging.getLogger("genauth_c")
    start_server, level = StartServer(), logger.level
    logger.addHandler(start_server)
    logger.setLevel(logging.DEBUG)
    try:
        results = calls_in(mode, f"http://127.0.0.1:{port}", max_retries=100)
    finally:
        logger.removeHandler(start_server)
        logger.setLevel(level)
        for s in servers:
            s.stop()
    assert servers, "no token fetch was refused"
    assert status_codes(results) == [200] * 3
    assert len(fetches) == 1


# ---- calls waiting on another call's token fetch ------------------------------

class MainThreadWaits:
    """Tells another thread (a server's handler holding a token fetch) when
    a call made on the main thread, from the function `func`, waits. A call
    that waits takes the GIL back every 0.1 s to run signal handlers, on the
    main thread only: a SIGUSR1 sent to it is handled inside the call, and
    the handler's frame is then `func`'s, past its first line. One handled
    anywhere else (before the call) is sent again."""

    def __init__(self, func):
        self.code = func.__code__
        self.handled = []  # one per SIGUSR1 handled: inside the call?
        self.cond = threading.Condition()

    def __enter__(self):
        self.previous = signal.signal(signal.SIGUSR1, self._handler)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGUSR1, self.previous)

    def _handler(self, signum, frame):
        inside = (frame is not None and frame.f_code is self.code and
                  frame.f_lineno > self.code.co_firstlineno)
        with self.cond:
            self.handled.append(inside)
            self.cond.notify_all()

    def wait(self, timeout=30.0):
        """True once the call waits; False after `timeout` seconds."""
        end = time.monotonic() + timeout
        while True:
            with self.cond:
                seen = len(self.handled)
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
            with self.cond:
                if not self.cond.wait_for(
                        lambda: len(self.handled) > seen,
                        timeout=max(0.0, end - time.monotonic())):
                    return False
                if self.handled[-1]:
                    return True


THROTTLED_PAST_TIMEOUT = Response.json(
    {"statusCode": 429, "message": "slow down"}, status=429,
    headers=[("Retry-After", "30")])


@pytest.mark.parametrize("first,later,max_retries,answered", [
    (THROTTLED_AFTER, None, 2, True),
    (THROTTLED_ENVELOPE, None, 2, True),
    # The wait asked for ends past the calls' timeout: not sent again.
    (THROTTLED_PAST_TIMEOUT, None, 2, False),
    # Throttled every time: the retries are spent.
    (THROTTLED_ENVELOPE, THROTTLED_ENVELOPE, 1, False),
], ids=["http-429", "envelope-429", "retry-after-past-timeout",
        "max-retries-spent"])
@pytest.mark.parametrize("mode", ["call", "batch"])
def test_calls_waiting_on_a_throttled_token_fetch_retry_as_it_does(
        fake, client_for, first, later, max_retries, answered, mode):
    """A thread fetches the token and is told to slow down while a call (a
    batch's, in batch mode) waits for that fetch: the waiting call follows
    the fetching one's rule. It is retried, within max_retries and its
    timeout, waiting as the answer asked; so both are answered, or neither,
    each with the same AuthError (the 429 refusal)."""
    arrived = threading.Event()
    fetches, waited = [], []

    def waiter():
        if mode == "batch":
            return client.trigger_webhooks([{"webhook_id": "wh1"}])
        return [client.trigger_webhook("wh1")]

    main_waits = MainThreadWaits(waiter)

    def handler(req):
        if "get-management-token" in req.path:
            fetches.append(req)
            if len(fetches) == 1:
                arrived.set()
                waited.append(main_waits.wait())  # answered only then
                return first
            if later is not None:
                return later
        return fake(req)

    fake.server.handler = handler
    client = client_for(fake.server.url, timeout=10, max_retries=max_retries)
    outcomes = []

    def fetcher():
        try:
            outcomes.append(client.trigger_webhook("wh1"))
        except genauth_c.GenAuthError as e:
            outcomes.append(e)

    with main_waits:
        thread = threading.Thread(target=fetcher)
        thread.start()
        try:
            assert arrived.wait(30)
            try:
                outcomes.extend(waiter())
            except genauth_c.GenAuthError as e:
                outcomes.append(e)
        finally:
            thread.join(timeout=30)
    assert not thread.is_alive()
    assert waited == [True] and len(outcomes) == 2
    if answered:
        assert status_codes(outcomes) == [200] * len(outcomes)
        assert len(fetches) == 2
        return
    refusal = later or first
    for e in outcomes:
        assert isinstance(e, genauth_c.AuthError), outcomes
        assert (e.status_code, e.http_status, e.response) == (
            429, refusal.status, json.loads(refusal.body)), e
    if later is None:
        assert len(fetches) == 1  # nobody asked again before the time asked


@pytest.mark.parametrize("mode", ["call", "batch"])
def test_close_while_a_retry_connects_sends_nothing(certificate, mode):
    """A retry on a new connection (the throttled answer closed the old
    one): close() while that connection is being made (its TLS handshake
    waits for the server, which closes the client first) ends the call
    with ClientClosedError, and the request is not sent on it."""
    from conftest import server_tls
    import socket
    import ssl
    ctx = server_tls(certificate)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    url = "https://127.0.0.1:%d" % listener.getsockname()[1]
    client = genauth_c.ManagementClient(
        AK, SK, host=url, timeout=10, max_retries=2, auth="signature",
        ca_bundle=str(certificate[0]))
    requests = []
    answer = json.dumps({"statusCode": 200, "message": "", "data": {}})

    def read_request(conn):
        conn.settimeout(10)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                got = conn.recv(65536)
                if not got:
                    return False
                buf += got
        except (OSError, ssl.SSLError):
            return False
        requests.append(buf)
        return True

    def serve():
        for n in (1, 2):
            raw, _ = listener.accept()
            if n == 2:
                client.close()  # before the handshake: nothing sent yet
            try:
                conn = ctx.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                continue
            if read_request(conn):
                if n == 1:
                    conn.sendall(b"HTTP/1.1 429 Too Many\r\nRetry-After: 0"
                                 b"\r\nConnection: close\r\n"
                                 b"Content-Length: 0\r\n\r\n")
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                                 b"\r\n%s" % (len(answer), answer.encode()))
            conn.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        if mode == "batch":
            [result] = client.trigger_webhooks([{"webhook_id": "wh1"}])
        else:
            try:
                result = client.trigger_webhook("wh1")
            except genauth_c.GenAuthError as e:
                result = e
        server.join(20)
        assert not server.is_alive()
    finally:
        listener.close()
    assert isinstance(result, genauth_c.ClientClosedError), result
    assert len(requests) == 1
