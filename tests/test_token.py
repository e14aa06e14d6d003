"""Management-token authentication: cache, refresh, retry, races."""
import threading
import time

import pytest

from rawserver import Response

import genauth_c


def test_one_token_for_many_calls(fake, client_for):
    client = client_for(fake.server.url)
    for _ in range(100):
        assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert fake.token_fetches == 1
    assert client.token_fetches == 1


def test_refresh_ahead_of_expiry(fake, client_for):
    # Lifetime 2 s: the margin is min(60, 2/10) = 0.2 s, so a call 1.85 s in
    # must fetch a new token although the old one has 0.15 s left.
    fake.lifetime = 2
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")
    time.sleep(1.0)
    client.trigger_webhook("wh1")
    assert fake.token_fetches == 1
    time.sleep(0.85)
    client.trigger_webhook("wh1")
    assert fake.token_fetches == 2


def test_one_retry_after_401_with_a_fresh_token(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")
    fake.valid_tokens.clear()  # the server forgets the token: it "expired"
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
    barrier = threading.Barrier(8)
    results, errors = [], []

    def work():
        barrier.wait()
        try:
            results.append(client.trigger_webhook("wh1")["statusCode"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
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
