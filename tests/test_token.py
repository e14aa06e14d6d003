"""Management-token authentication: cache, refresh, retry, races."""
import asyncio
import base64
import re
import threading

import pytest

from conftest import AK, SK
from test_batch import debug_lines
from test_retries import calls_after, status_codes
from rawserver import Response, make_jwt

import genauth_c
from genauth_c import AsyncManagementClient


def test_one_token_for_many_calls(fake, client_for):
    client = client_for(fake.server.url)
    for _ in range(100):
        assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert fake.token_fetches == 1
    assert client.token_fetches == 1


# (expires_in, the margin the README promises: min(60 s, expires_in / 10))
MARGINS = [(7200, 60), (1200, 60), (600, 60), (300, 30), (100, 10), (10, 1)]


@pytest.mark.parametrize("lifetime,margin", MARGINS)
def test_refresh_margin_is_a_tenth_capped_at_60_s(fake, client_for,
                                                  token_clock, lifetime,
                                                  margin):
    """The token clock stands still between calls: each call sees exactly
    the time the test set. Half a second before the refresh point the cached
    token is used; half a second after it, a new one is fetched first."""
    fake.lifetime = lifetime
    client = client_for(fake.server.url)
    start = token_clock.now
    client.trigger_webhook("wh1")
    assert fake.token_fetches == 1
    token_clock.set(start + lifetime - margin - 0.5)
    client.trigger_webhook("wh1")
    assert fake.token_fetches == 1
    token_clock.set(start + lifetime - margin + 0.5)
    client.trigger_webhook("wh1")
    assert fake.token_fetches == 2
    assert [r.path.rsplit("/", 1)[1] for r in fake.server.requests] == [
        "get-management-token", "trigger-webhook", "trigger-webhook",
        "get-management-token", "trigger-webhook"]
    # The new token's refresh point counts from when it was fetched.
    refetched = token_clock.now
    token_clock.set(refetched + lifetime - margin - 0.5)
    client.trigger_webhook("wh1")
    assert fake.token_fetches == 2
    assert client.token_fetches == 2
    assert fake.expiries == 0  # no call was ever refused


def test_one_retry_after_401_with_a_fresh_token(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")
    fake.expire_tokens()  # the server forgets the token: it "expired"
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert fake.token_fetches == 2
    calls = [r.path for r in fake.server.requests]
    assert calls.count("/api/v3/trigger-webhook") == 3


def test_envelope_401_in_http_200_also_retries(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")
    answers = iter([Response.json({"statusCode": 401, "message": "expired",
                                   "apiCode": 2020, "requestId": "x"})])
    original = fake.__class__.__call__

    def handler(req):
        if "trigger-webhook" in req.path:
            nxt = next(answers, None)
            if nxt:
                return nxt
        return original(fake, req)

    fake.server.handler = handler
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert fake.token_fetches == 2


def test_always_401_retries_exactly_once_then_returns_envelope(fake, client_for):
    fake.reject_tokens = True
    client = client_for(fake.server.url)
    env = client.trigger_webhook("wh1")
    assert env["statusCode"] == 401 and env["apiCode"] == 2020
    paths = [r.path for r in fake.server.requests]
    assert paths.count("/api/v3/trigger-webhook") == 2
    assert fake.token_fetches == 2


def test_threads_racing_at_expiry_fetch_once(fake, client_for):
    fake.lifetime = 3600
    fake.server.handler = slow_token_handler(fake, 0.3)
    client = client_for(fake.server.url)
    barrier = threading.Barrier(8, timeout=30)
    results, errors = [], []

    def work():
        try:
            barrier.wait()
            results.append(client.trigger_webhook("wh1")["statusCode"])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert errors == [] and results == [200] * 8
    assert fake.token_fetches == 1


def slow_token_handler(fake, delay):
    def handler(req):
        resp = fake(req)
        if "get-management-token" in req.path:
            resp.delay = delay
        return resp
    return handler


def test_wrong_keys_raise_auth_error(fake, client_for):
    fake.token_answer = Response.json({"statusCode": 401, "message": "bad key",
                                       "apiCode": 1401, "requestId": "rq"})
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.AuthError) as info:
        client.trigger_webhook("wh1")
    e = info.value
    assert (e.status_code, e.api_code, e.message, e.request_id) == (
        401, 1401, "bad key", "rq")
    assert e.response["statusCode"] == 401


@pytest.mark.parametrize("answer", [
    Response.json({"statusCode": 200, "data": {}}),
    Response.json({"statusCode": 200, "data": {"access_token": "not-a-jwt",
                                               "expires_in": 7200}}),
    Response.json({"statusCode": 500, "message": "down"}, status=500),
    Response(body=b"<html>token service down</html>", status=503),
    # A JWT too long for libcurl to send in a header (it says "out of
    # memory"): refused, not cached to fail every call until it expires.
    Response.json({"statusCode": 200, "data": {
        "access_token": make_jwt({"scoped_userpool_id": "p",
                                  "pad": "x" * 2_000_000}),
        "expires_in": 7200}}),
])
def test_unusable_token_answers(fake, client_for, answer):
    fake.token_answer = answer
    client = client_for(fake.server.url)
    with pytest.raises((genauth_c.AuthError, genauth_c.DecodeError)) as info:
        client.trigger_webhook("wh1")
    # Nothing of the token endpoint's body is echoed back as an excerpt.
    assert getattr(info.value, "excerpt", None) in (None, b"")
    fake.token_answer = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.mark.parametrize("token", [
    "not-a-jwt", "a.!!!.c", make_jwt({"sub": "no pool id"}),
    make_jwt({"scoped_userpool_id": "line\nend"}),
    make_jwt({"scoped_userpool_id": "p"}) + "\r\nX-Injected: 1"],
    ids=["not-a-jwt", "not-base64url", "no-pool-id", "pool-id-line-end",
         "token-line-end"])
@pytest.mark.parametrize("status", [200, 201])
def test_an_unusable_token_is_told_with_its_http_status(fake, client_for,
                                                        token, status):
    """However the granted token is unusable, the AuthError carries the
    HTTP status of the answer that granted it, as for a grant without a
    token (0 is for no answer at all)."""
    fake.token_answer = Response.json(
        {"statusCode": 200, "data": {"access_token": token,
                                     "expires_in": 7200}}, status=status)
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.AuthError) as info:
        client.trigger_webhook("wh1")
    assert info.value.http_status == status, info.value


def test_a_repeated_key_in_the_grant_counts_as_its_last_value(fake, client_for):
    """The token answer and the JWT's claims are read as json.loads (the
    official Python SDK) and JSON.parse read them, and as the envelope's
    own members are: a key given twice holds its last value."""
    pool_claims = base64.urlsafe_b64encode(
        b'{"scoped_userpool_id":"stale-pool","scoped_userpool_id":"pool-2"}')
    token = make_jwt({}).split(".")[0] + "." + \
        pool_claims.rstrip(b"=").decode() + ".c2lnbmF0dXJl"
    fake.valid_tokens.add(token)
    fake.token_answer = Response(body=(
        '{"statusCode":200,"data":{"access_token":"stale","expires_in":"x",'
        f'"access_token":"{token}","expires_in":7200}}}}').encode())
    client = client_for(fake.server.url)
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    sent = fake.server.requests[-1]
    assert sent.header("authorization") == f"Bearer {token}"
    assert sent.header("x-genauth-userpool-id") == "pool-2"


@pytest.mark.parametrize("lifetime", [1e-6, 1e-300])
def test_token_expiring_as_it_comes_is_sent_once(fake, client_for, lifetime):
    """A token endpoint answering an expires_in too short to outlive its
    own answer: every call, single, batched or on an event loop, sends the
    token it got rather than waiting on a fetch of its own (on an event loop
    that wait would block the loop, and this server's threads with it)."""
    fake.lifetime = lifetime
    client = client_for(fake.server.url, timeout=5)
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    results = client.trigger_webhooks([{"webhook_id": "wh1"}] * 4,
                                      concurrency=16)
    assert [r["statusCode"] for r in results] == [200] * 4

    async def calls():
        async with AsyncManagementClient(AK, SK, host=fake.server.url,
                                         timeout=5) as aclient:
            return await asyncio.gather(
                *(aclient.trigger_webhook("wh1") for _ in range(4)))

    results = asyncio.run(calls())
    assert [r["statusCode"] for r in results] == [200] * 4


def assert_timed_out_as_a_fetch_does(result):
    """The TimeoutError a call gets when its time runs out in a token fetch
    of its own (libcurl's): curl_code 28, "the call timed out: ..." (after
    the token endpoint's URL, for the call that made the fetch)."""
    assert isinstance(result, genauth_c.TimeoutError), result
    assert isinstance(result, TimeoutError)
    assert result.curl_code == 28, result
    assert re.match(r"(http://\S+/api/v3/get-management-token: )?"
                    r"the call timed out: ", str(result)), result


def test_a_call_out_of_time_waiting_for_a_token_times_out_as_a_fetch_does(
        fake, client_for, token_clock):
    """A call whose time runs out while it waits for a token fetch that
    another call makes gets the TimeoutError that call gets: on an event
    loop, in a batch, and in a thread waiting on another's fetch."""
    arrived = threading.Event()  # the fetch that never ends was sent
    b_sent = threading.Event()
    hold_next_call = []
    fetches = []

    def handler(req):
        if "get-management-token" in req.path:
            fetches.append(req)
            if len(fetches) > 1:
                arrived.set()
                return Response(status=503, delay=60)  # past every timeout
        elif hold_next_call and not b_sent.is_set():
            # The waiter's call went out with the first token; it is
            # refused once another thread fetches the next one.
            b_sent.set()
            arrived.wait(30)
            return Response.json({"statusCode": 401, "message": "expired"},
                                 status=401)
        return fake(req)

    fake.server.handler = handler
    client = client_for(fake.server.url, timeout=2)
    start = token_clock.now
    assert client.trigger_webhook("wh1")["statusCode"] == 200  # token 1
    outcomes = {}

    def call(name):
        try:
            outcomes[name] = client.trigger_webhook("wh1")
        except genauth_c.GenAuthError as e:
            outcomes[name] = e

    # Thread "waiter" sends its call with token 1; once it is on its way,
    # token 1 expires and thread "fetcher" fetches token 2, which never
    # comes; then the waiter's call is refused, and it waits for that
    # fetch, which outlives the waiter's deadline (it started earlier).
    hold_next_call.append(True)
    waiter = threading.Thread(target=call, args=("waiter",))
    waiter.start()
    assert b_sent.wait(30)
    token_clock.set(start + fake.lifetime + 1)
    fetcher = threading.Thread(target=call, args=("fetcher",))
    fetcher.start()
    for t in (waiter, fetcher):
        t.join(timeout=30)
        assert not t.is_alive()
    assert_timed_out_as_a_fetch_does(outcomes["fetcher"])
    assert_timed_out_as_a_fetch_does(outcomes["waiter"])

    # A batch: its first call fetches, the others wait for that fetch.
    with genauth_c.ManagementClient(AK, SK, host=fake.server.url,
                                    timeout=0.5) as batch_client:
        results = batch_client.trigger_webhooks([{"webhook_id": "wh1"}] * 3,
                                                concurrency=3)
    for r in results:
        assert_timed_out_as_a_fetch_does(r)

    # An event loop: every call waits for the one fetch.
    async def calls():
        async with AsyncManagementClient(AK, SK, host=fake.server.url,
                                         timeout=0.5) as aclient:
            return await asyncio.gather(
                *(aclient.trigger_webhook("wh1") for _ in range(3)),
                return_exceptions=True)

    for r in asyncio.run(calls()):
        assert_timed_out_as_a_fetch_does(r)


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_a_valid_token_serves_to_its_last_moment_after_a_failed_refresh(
        fake, token_clock, mode):
    """A 100 s token is due for refresh at 90 s. The early refresh at 95 s
    fails: nobody hears of it, and the next try waits 5 s. Until the token
    has really expired, every call goes out with it without asking the
    endpoint again, in its last moments too (0.1 s before it expires); once
    it has expired, a call fetches and fails with the endpoint's refusal.
    On an event loop a call in the token's last 0.25 s asked the failing
    endpoint again and raised its AuthError, where the sync client used
    the valid token."""
    fake.lifetime = 100
    refused = Response.json({"statusCode": 500, "message": "down"},
                            status=500)

    def handler(req):
        if "get-management-token" in req.path and fake.token_fetches >= 1:
            fake.token_fetches += 1
            return refused
        return fake(req)

    fake.server.handler = handler
    start = token_clock.now
    ended = []  # the token fetches the client has seen end

    async def settle():
        # From 95 s on: until the early refresh has ended.
        want = 2 if token_clock.now >= start + 95 else 1
        for _ in range(3000):
            if len(ended) >= want:
                return
            await asyncio.sleep(0.01)
        pytest.fail(f"the refresh never ended: {ended}")

    with debug_lines(lambda line: line.startswith("token fetch") and
                     ended.append(line)):
        results = calls_after(mode, fake.server.url, [
            lambda: None,                            # the token
            lambda: token_clock.set(start + 95),     # refresh: refused
            lambda: token_clock.set(start + 99.9),   # its last moments
            lambda: token_clock.set(start + 100.5),  # expired
        ], settle=settle)
    assert status_codes(results[:3]) == [200] * 3, results
    assert isinstance(results[3], genauth_c.AuthError), results
    assert results[3].status_code == 500
    assert fake.token_fetches == 3
    assert fake.expiries == 0


def test_calls_waiting_for_one_fetch_share_a_token_expiring_as_it_comes(
        fake, token_clock):
    """With no valid token, the calls that wait for the one fetch share its
    outcome, also a token whose expires_in is too short to outlive its own
    answer (1e-300 s, on a token clock that stands still): a batch's calls
    started together, as calls gathered on an event loop, send the token
    that one fetch got. A sync batch fetched one token per call."""
    fake.lifetime = 1e-300
    with genauth_c.ManagementClient(AK, SK, host=fake.server.url,
                                    timeout=5) as client:
        results = client.trigger_webhooks([{"webhook_id": "wh1"}] * 4,
                                          concurrency=4)
    assert status_codes(results) == [200] * 4, results
    assert fake.token_fetches == 1

    async def calls():
        async with AsyncManagementClient(AK, SK, host=fake.server.url,
                                         timeout=5) as aclient:
            return await asyncio.gather(
                *(aclient.trigger_webhook("wh1") for _ in range(4)))

    assert status_codes(asyncio.run(calls())) == [200] * 4
    assert fake.token_fetches == 2
