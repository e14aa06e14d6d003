"""Retries that never deliver twice (max_retries): what never reached the
server and throttling answers are sent again; what may have reached it is
not. Deliveries are counted at the receiver."""
import asyncio
import logging
import threading

import pytest

from conftest import AK, SK, free_port
from rawserver import FakeGenAuth, RawServer, Response

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


def test_batch_retries_throttled_calls(fake, client_for):
    fake.server.handler, deliveries = counting(fake, [THROTTLED] * 4)
    client = client_for(fake.server.url, timeout=10)
    results = client.trigger_webhooks([{"webhook_id": "wh1"}] * 4,
                                      concurrency=4)
    assert [r["statusCode"] for r in results] == [200] * 4
    assert len(deliveries) == 8


@pytest.mark.parametrize("bad", [-1, 101, True, "2"])
def test_max_retries_checked(bad):
    with pytest.raises((ValueError, TypeError), match="max_retries"):
        genauth_c.ManagementClient("AK", "SK", max_retries=bad)


# ---- the token request: the same rules --------------------------------------

def calls_in(mode, url, n=3, **options):
    """n calls made as `mode` says; their results (envelope or exception)."""
    options.setdefault("timeout", 10)
    if mode == "async":
        async def run():
            async with genauth_c.AsyncManagementClient(
                    AK, SK, host=url, **options) as client:
                return await asyncio.gather(
                    *(client.trigger_webhook("wh1") for _ in range(n)),
                    return_exceptions=True)
        return asyncio.run(run())
    with genauth_c.ManagementClient(AK, SK, host=url, **options) as client:
        if mode == "batch":
            return client.trigger_webhooks([{"webhook_id": "wh1"}] * n,
                                           concurrency=n)
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
