"""Promises the README makes that no other test checks: the exception
hierarchy, redirects that carry an envelope, a server that refuses every
token, the idle-connection rule, the timeout across the 401 retry, MAX_DEPTH
exactly, the DecodeError of an over-long integer, and curl codes 52 and 56."""
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import SLACK
from rawserver import FakeGenAuth, Held, RawServer, Response

import genauth_c
from genauth_c import ManagementClient


def trigger_paths(fake):
    return [r.path for r in fake.server.requests if "trigger-webhook" in r.path]


# ---- the exception hierarchy -------------------------------------------------

def test_client_closed_error_is_a_runtime_error(fake):
    assert issubclass(genauth_c.ClientClosedError, RuntimeError)
    assert issubclass(genauth_c.ClientClosedError, genauth_c.GenAuthError)
    client = ManagementClient("AK", "SK", host=fake.server.url)
    client.close()
    with pytest.raises(RuntimeError) as info:
        client.trigger_webhook("wh1")
    assert type(info.value) is genauth_c.ClientClosedError
    assert fake.server.requests == []


def test_close_returns_while_another_threads_call_goes_on_to_its_end(fake):
    """close() does not wait for the calls in progress (its docstring said
    they "finish first"): it returns while another thread's call waits for
    its answer, and that call still ends with it."""
    held = Held(fake)
    fake.server.handler = held
    client = ManagementClient("AK", "SK", host=fake.server.url)
    with ThreadPoolExecutor(1) as pool:
        call = pool.submit(client.trigger_webhook, "wh1")
        try:
            assert held.wait_arrival()
            client.close()  # with the answer held: returns only if it does not wait
            assert client.closed and not call.done()
        finally:
            held.release()
        assert call.result(timeout=60)["statusCode"] == 200
    with pytest.raises(genauth_c.ClientClosedError):
        client.trigger_webhook("wh1")


# ---- redirects -----------------------------------------------------------------

@pytest.mark.parametrize("status", [301, 302, 307])
def test_a_redirect_carrying_a_json_object_returns_the_envelope(
        fake, client_for, status):
    with RawServer(FakeGenAuth()) as elsewhere:
        env = {"statusCode": 200, "message": "moved but answered",
               "requestId": "r-3xx", "data": {"response": {"a": 1}}}
        fake.response = Response.json(env, status=status, headers=[
            ("Location", elsewhere.url + "/api/v3/trigger-webhook")])
        client = client_for(fake.server.url)
        assert client.trigger_webhook("wh1") == env
        assert elsewhere.connections == 0


# ---- a server that refuses every token ---------------------------------------

def test_always_401_with_raise_for_status_gives_api_error(fake, client_for):
    fake.reject_tokens = True
    client = client_for(fake.server.url, raise_for_status=True)
    with pytest.raises(genauth_c.APIError) as info:
        client.trigger_webhook("wh1")
    e = info.value
    assert (e.status_code, e.api_code, e.request_id, e.http_status) == (
        401, 2020, "r-401", 401)
    # Exactly one retry, with a new token.
    assert trigger_paths(fake) == ["/api/v3/trigger-webhook"] * 2
    assert fake.token_fetches == 2


# ---- connections idle too long are not reused ---------------------------------

def test_a_connection_idle_over_the_limit_is_not_reused(fake, monkeypatch):
    """The limit is 50 s (checked in tests/c/test_core.c); here the test
    environment shortens it to 1 s, and the client is idle for 3 s. (libcurl
    counts whole seconds of idleness and reuses at exactly the limit.)"""
    monkeypatch.setenv("GENAUTH_TEST_MAX_IDLE_SECONDS", "1")
    with ManagementClient("AK", "SK", host=fake.server.url) as client:
        client.trigger_webhook("wh1")
        client.trigger_webhook("wh1")
        assert fake.server.connections == 1
        time.sleep(3)  # at least this long: it never returns early
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        assert fake.server.connections == 2


# ---- the timeout covers the retry after a 401 -------------------------------

def test_timeout_bounds_the_401_retry(fake, client_for):
    """The first try takes 7 of the 10 s and is refused; the retry hangs.
    Bounded by the call's one timeout, the call ends at 10 s; a retry with a
    timeout of its own would end at 17 s."""
    timeout, first = 10.0, 7.0
    tries = []

    def handler(req):
        if "trigger-webhook" in req.path:
            tries.append(req)
            if len(tries) == 1:
                return Response.json({"statusCode": 401, "message": "expired"},
                                     status=401, delay=first)
            return Response(delay=120)
        return fake(req)

    fake.server.handler = handler
    client = client_for(fake.server.url, timeout=timeout)
    start = time.monotonic()
    with pytest.raises(genauth_c.TimeoutError):
        client.trigger_webhook("wh1")
    elapsed = time.monotonic() - start
    assert len(tries) == 2  # the retry was sent
    assert fake.token_fetches == 2
    assert elapsed < first + timeout - 2, elapsed
    assert elapsed < timeout + SLACK


# ---- MAX_DEPTH -----------------------------------------------------------------

def nested(levels, kind):
    """`levels` containers, each inside the one before."""
    node = {} if kind == "dict" else []
    for _ in range(levels - 1):
        node = {"n": node} if kind == "dict" else [node]
    return node


@pytest.mark.parametrize("kind", ["dict", "list"])
@pytest.mark.parametrize("argument", ["request_body", "request_headers"])
def test_max_depth_exactly(fake, client_for, kind, argument):
    """request_body itself is the first level: MAX_DEPTH levels are sent,
    one more is refused before anything is sent."""
    assert genauth_c.MAX_DEPTH == 500
    client = client_for(fake.server.url)

    def payload(levels):
        if kind == "dict":
            return nested(levels, "dict")
        return {"l": nested(levels - 1, "list")}

    with pytest.raises(ValueError, match="nested deeper than 500 levels"):
        client.trigger_webhook("wh1", **{argument: payload(501)})
    assert fake.server.requests == []
    env = client.trigger_webhook("wh1", **{argument: payload(500)})
    assert env["statusCode"] == 200
    (req,) = [r for r in fake.server.requests if "trigger" in r.path]
    sent = req.json()["requestBody" if argument == "request_body"
                      else "requestHeaders"]
    assert sent == payload(500)


# ---- an integer Python will not make ------------------------------------------

def test_integer_over_4300_digits_decode_error_has_status_and_excerpt(
        fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")
    body = b'{"statusCode":200,"data":' + b"7" * 5000 + b"}"
    fake.response = Response(body=body, status=200)
    with pytest.raises(genauth_c.DecodeError) as info:
        client.trigger_webhook("wh1")
    assert info.value.http_status == 200
    assert info.value.excerpt == body[:200]


# ---- closed or reset before the status line: curl codes 52 and 56 -----------

CUT = {"closed": (lambda: Response(close=True), 52),
       "reset": (lambda: Response(raw=b"", reset=True), 56)}


@pytest.mark.parametrize("how", sorted(CUT))
def test_cut_before_the_status_line_token_request(fake, client_for, how):
    make, code = CUT[how]
    fake.token_answer = make()
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert info.value.curl_code == code
    assert not isinstance(info.value, genauth_c.TimeoutError)
    fake.token_answer = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.mark.parametrize("how", sorted(CUT))
def test_cut_before_the_status_line_api_call(fake, client_for, how):
    """On a fresh connection (the token's answer closes its own), so that
    nothing but the cut decides the outcome."""
    make, code = CUT[how]

    def handler(req):
        resp = fake(req)
        if "get-management-token" in req.path:
            resp.headers.append(("Connection", "close"))
            resp.close_after = True
        return resp

    fake.server.handler = handler
    fake.response = make()
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert info.value.curl_code == code
    assert fake.server.connections == 2
    assert len(trigger_paths(fake)) == 1  # sent once, not again
    fake.response = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200
