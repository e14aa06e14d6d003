"""Retries that never deliver twice (max_retries): what never reached the
server and throttling answers are sent again; what may have reached it is
not. Deliveries are counted at the receiver."""
import threading

import pytest

from conftest import free_port
from rawserver import FakeGenAuth, RawServer, Response

import genauth_c


def counting(fake, answers):
    """A handler answering trigger-webhook with `answers` in turn (then the
    fake's own answer); returns (handler, deliveries)."""
    deliveries = []
    lock = threading.Lock()
    queue = list(answers)

    def handler(req):
        if "trigger-webhook" in req.path:
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
