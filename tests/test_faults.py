"""What a network and a hostile server can do to a call, for trigger_webhook
and for the token request: each fault gives one defined exception (or an
envelope), never a crash, never a hang past the timeout (plus conftest.SLACK),
and the same client works normally on the next call.

The faults come from tests/rawserver.py (raw sockets: a server that resets,
trickles, lies about lengths or streams hundreds of megabytes)."""
import asyncio
import gzip
import itertools
import json
import socket
import threading
import time

import pytest

from rawserver import FakeGenAuth, RawServer, Response

from conftest import AK, SK, SLACK, free_port

import genauth_c
from genauth_c import ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver

TIMEOUT = 2.0  # ample for a call that should succeed, on a loaded machine
HUGE = 300 * 1024 * 1024  # what the hostile server offers: 300 MiB


def huge_stream(total=HUGE, prefix=b'{"statusCode":200,"data":"'):
    """`total` bytes in 64 KiB pieces, made as they are sent."""
    piece = b"x" * 65536
    yield prefix
    yield from itertools.repeat(piece, (total - len(prefix)) // len(piece))


def head(status=200, length=None, extra=b""):
    line = b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n" % status
    if length is not None:
        line += b"Content-Length: %d\r\n" % length
    return line + extra + b"\r\n"


def forever(piece, first=b"HTTP/1.1 200 OK\r\n"):
    """A head that never ends: `first`, then `piece` over and over."""
    yield first
    yield from itertools.repeat(piece)


CHUNKED_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n")
GZIPPED = gzip.compress(b'{"statusCode":200,"data":{"response":{}}}')
HTML = b"<html><head><title>Bad Gateway</title></head><body>nginx</body></html>"
DEEP = b'{"statusCode":200,"data":' + b"[" * 100_000 + b"]" * 100_000 + b"}"

# name -> (a fresh Response, the exception, what its message or attributes
# must show). Each applies both to the trigger-webhook answer and to the
# token endpoint's.
FAULTS = {
    "reset_before_status_line": (
        lambda: Response(raw=b"", reset=True), genauth_c.TransportError, None),
    "reset_mid_body": (
        lambda: Response(raw=head(length=200) + b'{"statusCode":200,"da',
                         reset=True),
        genauth_c.TransportError, None),
    "close_mid_body": (
        lambda: Response(raw=head(length=200) + b'{"statusCode":200,"da',
                         close_after=True),
        genauth_c.TransportError, {"curl_code": 18}),
    "headers_never_come": (
        lambda: Response(delay=60), genauth_c.TimeoutError, {"curl_code": 28}),
    "body_trickles_past_timeout": (
        lambda: Response(body=b'{"statusCode":200,"data":"' + b"x" * 200
                         + b'"}', trickle=0.05),
        genauth_c.TimeoutError, {"curl_code": 28}),
    "html_502": (
        lambda: Response(status=502, body=HTML,
                         headers=[("Content-Type", "text/html")]),
        genauth_c.DecodeError, {"http_status": 502}),
    "html_503": (
        lambda: Response(status=503, body=HTML,
                         headers=[("Content-Type", "text/html")]),
        genauth_c.DecodeError, {"http_status": 503}),
    "truncated_json": (
        lambda: Response(body=b'{"statusCode":200,"data":{"response":{"a":'),
        genauth_c.DecodeError, {"http_status": 200}),
    "json_array": (
        lambda: Response(body=b'[{"statusCode":200}]'),
        genauth_c.DecodeError, {"http_status": 200}),
    "json_string": (
        lambda: Response(body=b'"statusCode"'),
        genauth_c.DecodeError, {"http_status": 200}),
    "nesting_100000_deep": (
        lambda: Response(body=DEEP), genauth_c.DecodeError,
        {"message": "nested deeper"}),
    "huge_with_content_length": (
        lambda: Response(stream=huge_stream(),
                         headers=[("Content-Length", str(HUGE))]),
        genauth_c.TransportError, {"message": "max_response_bytes"}),
    "huge_chunked": (
        lambda: Response(stream=huge_stream(),
                         headers=[("Transfer-Encoding", "chunked")]),
        genauth_c.TransportError, {"message": "max_response_bytes"}),
    # libcurl caps a head (300 KiB) and a header line (100 KiB); a client
    # without those caps would read until its memory or its timeout ran out.
    "endless_header_lines": (
        lambda: Response(raw=forever(b"X-Flood: " + b"a" * 1000 + b"\r\n")),
        genauth_c.TransportError, None),
    # libcurl 7 calls this running out of memory, 8 a field grown too large:
    # either way, the message names the header line.
    "header_line_never_ends": (
        lambda: Response(raw=forever(b"a" * 65536, b"HTTP/1.1 200 OK\r\nX: ")),
        genauth_c.TransportError, {"message": "a header line longer than libcurl reads"}),
    "informational_answers_forever": (
        lambda: Response(raw=forever(b"HTTP/1.1 100 Continue\r\n\r\n",
                                     b"")),
        genauth_c.TransportError, None),
    # libcurl keeps every trailer line (for curl_easy_header) and caps
    # none: memory grew by the server's bandwidth until the timeout.
    "trailers_without_end": (
        lambda: Response(raw=forever(b"X-Trailer: " + b"t" * 1000 + b"\r\n",
                                     CHUNKED_HEAD + b"2\r\n{}\r\n0\r\n")),
        genauth_c.TransportError, {"message": "header lines"}),
    "chunk_size_absurd": (
        lambda: Response(raw=head(extra=b"Transfer-Encoding: chunked\r\n")
                         + b"F" * 40 + b"\r\n{}", close_after=True),
        genauth_c.TransportError, None),
    # No Accept-Encoding was sent, so nothing is decoded: the bytes are not
    # JSON (a compressed bomb stays its compressed size).
    "gzip_body_not_asked_for": (
        lambda: Response(raw=head(length=len(GZIPPED),
                                  extra=b"Content-Encoding: gzip\r\n")
                         + GZIPPED),
        genauth_c.DecodeError, {"http_status": 200}),
    "huge_close_delimited": (
        lambda: Response(stream=huge_stream(),
                         headers=[("Connection", "close")]),
        genauth_c.TransportError, {"message": "max_response_bytes"}),
}


def check(exc, expected_type, attrs):
    assert type(exc) is expected_type, repr(exc)
    for name, want in (attrs or {}).items():
        got = str(exc) if name == "message" else getattr(exc, name)
        if name == "message":
            assert want in got, got
        else:
            assert got == want, (name, got)


def timed_call(client, *args, **kw):
    start = time.monotonic()
    try:
        return client.trigger_webhook(*args, **kw), None, time.monotonic() - start
    except genauth_c.GenAuthError as e:
        return None, e, time.monotonic() - start


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_trigger_webhook_fault(fake, client_for, name):
    make, expected, attrs = FAULTS[name]
    client = client_for(fake.server.url, timeout=TIMEOUT)
    assert client.trigger_webhook("wh1")["statusCode"] == 200  # pooled conn
    fake.response = make()
    _, exc, elapsed = timed_call(client, "wh1")
    check(exc, expected, attrs)
    assert elapsed < TIMEOUT + SLACK
    if expected is genauth_c.DecodeError:
        assert exc.excerpt  # the caller sees what came
    fake.response = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert client.token_fetches == 1  # a fault is not taken for a bad token


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_token_request_fault(fake, client_for, name):
    make, expected, attrs = FAULTS[name]
    client = client_for(fake.server.url, timeout=TIMEOUT)
    fake.token_answer = make()
    _, exc, elapsed = timed_call(client, "wh1")
    check(exc, expected, attrs)
    assert elapsed < TIMEOUT + SLACK
    # An excerpt of the token endpoint's body could hold a token: none.
    assert getattr(exc, "excerpt", None) in (None, b"")
    assert [r.path for r in fake.server.requests
            if "trigger-webhook" in r.path] == []
    fake.token_answer = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_huge_body_capped_early_without_content_length(fake, client_for):
    """The cap stops a length-less body while it arrives: little more than
    max_response_bytes is read, and a smaller cap is honoured."""
    sent = []

    def counting(total):
        for piece in huge_stream(total):
            sent.append(len(piece))
            yield piece

    client = client_for(fake.server.url, timeout=5, max_response_bytes=100_000)
    client.trigger_webhook("wh1")
    fake.response = Response(stream=counting(HUGE),
                             headers=[("Transfer-Encoding", "chunked")])
    with pytest.raises(genauth_c.TransportError,
                       match=r"max_response_bytes \(100000 bytes\)"):
        client.trigger_webhook("wh1")
    # The server could push what the socket buffers hold, no more.
    assert sum(sent) < 100_000 + 16 * 1024 * 1024
    # A body at the cap exactly is fine.
    body = json.dumps({"statusCode": 200, "data": "y" * 1000}).encode()
    fake.response = Response(body=body + b" " * (100_000 - len(body)))
    assert client.trigger_webhook("wh1")["data"] == "y" * 1000
    fake.response = Response(body=body + b" " * (100_001 - len(body)))
    with pytest.raises(genauth_c.TransportError, match="max_response_bytes"):
        client.trigger_webhook("wh1")
    fake.response = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_an_answer_over_the_cap_names_the_url_it_came_from(fake):
    """A max_response_bytes that fits the API's answers but not the token
    endpoint's (a JWT of some hundred bytes): the error said only "the
    response is larger than max_response_bytes (200 bytes)" in every call
    path, as if the small answer asked for had been too large. It names the
    URL asked (the token endpoint's), as a DecodeError does."""
    kw = dict(host=fake.server.url, timeout=5, max_retries=0,
              max_response_bytes=200)
    assert len(json.dumps(fake.envelope)) < 200

    def check_named(exc, path):
        assert type(exc) is genauth_c.TransportError, repr(exc)
        assert str(exc).startswith(f"{fake.server.url}{path}: "), str(exc)
        assert "larger than max_response_bytes (200 bytes)" in str(exc)

    token = "/api/v3/get-management-token"
    with ManagementClient(AK, SK, **kw) as client:
        with pytest.raises(genauth_c.TransportError) as info:
            client.trigger_webhook("wh1")
        check_named(info.value, token)
        check_named(client.trigger_webhooks([{"webhook_id": "wh1"}])[0], token)

    async def main():
        async with genauth_c.AsyncManagementClient(AK, SK, **kw) as client:
            with pytest.raises(genauth_c.TransportError) as info:
                await client.trigger_webhook("wh1")
            check_named(info.value, token)
    asyncio.run(main())

    # The API's own answer over the cap names the API's URL.
    kw["max_response_bytes"] = 4096
    with ManagementClient(AK, SK, **kw) as client:
        client.trigger_webhook("wh1")
        fake.response = Response(body=b'{"data":"' + b"x" * 5000 + b'"}')
        with pytest.raises(genauth_c.TransportError) as info:
            client.trigger_webhook("wh1")
        assert str(info.value).startswith(
            f"{fake.server.url}/api/v3/trigger-webhook: "), str(info.value)


@pytest.mark.parametrize("target", ["api", "token"])
def test_invalid_utf8(fake, client_for, target):
    client = client_for(fake.server.url, timeout=TIMEOUT)
    bad = Response(body=b'{"statusCode":200,"message":"\xff\xfe\xc0\xaf",'
                        b'"data":{"response":"\xed\xa0\x80"}}')
    if target == "api":
        client.trigger_webhook("wh1")
        fake.response = bad
        with pytest.raises(genauth_c.DecodeError, match="UTF-8") as info:
            client.trigger_webhook("wh1")
        assert info.value.http_status == 200
        fake.response = None
    else:
        # Bytes that are not UTF-8 make the token endpoint's answer no JSON
        # (json.loads refuses it too), whether it grants or refuses; nothing
        # of that body is shown.
        for body in (b'{"statusCode":200,"data":{"access_token":"ey\xff.\xfe.x",'
                     b'"expires_in":7200}}',
                     b'{"statusCode":401,"message":"bad \xff key","apiCode":1}'):
            fake.token_answer = Response(body=body)
            with pytest.raises(genauth_c.DecodeError, match="UTF-8") as info:
                client.trigger_webhook("wh1")
            assert info.value.http_status == 200
            assert info.value.excerpt == b""
        fake.token_answer = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_connection_refused_then_server_back(client_for):
    """Token request refused (fresh client), then the API call refused
    (token cached, pooled connection dead): TransportError, curl_code 7."""
    port = free_port()
    handler = FakeGenAuth()
    client = client_for(f"http://127.0.0.1:{port}", timeout=TIMEOUT)
    _, exc, elapsed = timed_call(client, "wh1")
    check(exc, genauth_c.TransportError, {"curl_code": 7})
    assert elapsed < TIMEOUT + SLACK
    with RawServer(handler, port=port):
        assert client.trigger_webhook("wh1")["statusCode"] == 200
    _, exc, elapsed = timed_call(client, "wh1")  # the server is gone again
    check(exc, genauth_c.TransportError, {"curl_code": 7})
    assert elapsed < TIMEOUT + SLACK
    with RawServer(handler, port=port) as again:
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        assert again.requests[0].path == "/api/v3/trigger-webhook"
    assert client.token_fetches == 1  # the refused attempt brought no token


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("target", ["api", "token"])
def test_redirect_to_another_host_not_followed(fake, client_for, status,
                                               target):
    with RawServer(FakeGenAuth()) as elsewhere:
        redirect = Response(status=status, headers=[
            ("Location", elsewhere.url + "/api/v3/get-management-token")])
        client = client_for(fake.server.url, timeout=TIMEOUT)
        if target == "api":
            client.trigger_webhook("wh1")
            fake.response = redirect
        else:
            fake.token_answer = redirect
        with pytest.raises(genauth_c.DecodeError) as info:
            client.trigger_webhook("wh1")
        assert info.value.http_status == status
        assert elsewhere.requests == [] and elsewhere.connections == 0
        fake.response = fake.token_answer = None
        assert client.trigger_webhook("wh1")["statusCode"] == 200


# ---- the token endpoint's own refusals ----------------------------------

@pytest.mark.parametrize("answer,http_status,status_code", [
    (Response.json({"statusCode": 401, "message": "bad key", "apiCode": 1310,
                    "requestId": "r1"}), 200, 401),
    (Response.json({"statusCode": 401, "message": "bad key"}, status=401),
     401, 401),
    (Response.json({"statusCode": 500, "message": "down", "requestId": "r2"},
                   status=500), 500, 500),
    (Response.json({"statusCode": 500, "message": "down"}), 200, 500),
])
def test_token_endpoint_refuses(fake, client_for, answer, http_status,
                                status_code):
    client = client_for(fake.server.url, timeout=TIMEOUT)
    fake.token_answer = answer
    with pytest.raises(genauth_c.AuthError) as info:
        client.trigger_webhook("wh1")
    e = info.value
    assert (e.http_status, e.status_code) == (http_status, status_code)
    assert e.response["statusCode"] == status_code
    fake.token_answer = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_token_endpoint_down_for_a_cached_token_refresh(fake, client_for):
    """The token expires while the token endpoint is down: the call fails
    with the endpoint's error; when it is back, calls work again."""
    client = client_for(fake.server.url, timeout=TIMEOUT)
    client.trigger_webhook("wh1")
    fake.expire_tokens()
    fake.token_answer = Response(status=503, body=HTML)
    with pytest.raises(genauth_c.DecodeError) as info:
        client.trigger_webhook("wh1")
    assert info.value.http_status == 503 and info.value.excerpt == b""
    fake.token_answer = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


# ---- expiry and refusal against the emulator ----------------------------

@pytest.fixture
def emu_rx():
    with Emulator("AKID", "SECRET") as emu, WebhookReceiver() as rx:
        emu.add_webhook("wh1", rx.url + "/hook")
        yield emu, rx


def test_token_expiring_mid_run(emu_rx, token_clock):
    """The client's token clock crosses the refresh point three times: each
    time exactly one new token, fetched before the old one could be
    refused; then a server-side expiry the client could not foresee costs
    exactly one refused call and one fetch. Every call is answered."""
    emu, _ = emu_rx
    lifetime = emu.token_lifetime  # the emulator's expires_in: 7200 s
    with ManagementClient("AKID", "SECRET", host=emu.url, timeout=5) as client:
        for step in range(4):
            if step:  # past the current token's refresh point (60 s early)
                token_clock.advance(lifetime - 60 + 1)
            for n in range(5):
                env = client.trigger_webhook(
                    "wh1", request_body={"eventName": f"e{step}.{n}"})
                assert env["statusCode"] == 200, env
                assert env["data"]["response"]["eventName"] == f"e{step}.{n}"
            assert client.token_fetches == step + 1
        assert not any(r.auth_error for r in emu.requests)
        emu.expire_tokens()
        assert client.trigger_webhook("wh1")["statusCode"] == 200
    refused = [r for r in emu.requests if r.auth_error]
    assert len(refused) == 1
    assert client.token_fetches == 5
    assert emu.token_fetches == client.token_fetches


def test_server_answering_401_always(emu_rx):
    emu, _ = emu_rx
    with ManagementClient("AKID", "SECRET", host=emu.url, timeout=2) as client:
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        emu.reset_records()
        emu.fail_next_calls_with_401 = True
        start = time.monotonic()
        env = client.trigger_webhook("wh1")
        assert time.monotonic() - start < 2 + SLACK
        assert env["statusCode"] == 401 and env["apiCode"] == 1022
        paths = [r.path for r in emu.requests]
        assert paths == ["/api/v3/trigger-webhook",
                         "/api/v3/get-management-token",
                         "/api/v3/trigger-webhook"]
        emu.fail_next_calls_with_401 = 0
        assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_integer_past_python_digit_limit_is_a_decode_error(fake, client_for):
    """Past sys.get_int_max_str_digits() Python cannot make the int: that
    is a DecodeError (a GenAuthError), not a bare ValueError."""
    client = client_for(fake.server.url, timeout=TIMEOUT)
    client.trigger_webhook("wh1")
    fake.response = Response(body=b'{"statusCode":200,"data":'
                                  + b"7" * 5000 + b"}")
    with pytest.raises(genauth_c.DecodeError):
        client.trigger_webhook("wh1")


def test_batch_with_every_fault_kind_in_it():
    """trigger_webhooks: each call gets its own outcome (the exception
    object in its place), the batch ends within the timeout plus half a
    second, and the successes around the faults are intact."""
    from serve import spawn

    port, stop = spawn("mixed")
    try:
        client = ManagementClient("AKIDexample1234", "S",
                                  host=f"http://127.0.0.1:{port}",
                                  timeout=TIMEOUT,
                                  max_response_bytes=256 * 1024)
        kinds = {"drop": genauth_c.TransportError,
                 "reset": genauth_c.TransportError,
                 "html": genauth_c.DecodeError, "trunc": genauth_c.DecodeError,
                 "array": genauth_c.DecodeError, "utf8": genauth_c.DecodeError,
                 "deep": genauth_c.DecodeError,
                 "huge": genauth_c.TransportError,
                 "slow": None, "e401": 401, "business": 404}
        calls = []
        for i, kind in enumerate(kinds):
            calls.append({"webhook_id": kind})
            calls.append({"webhook_id": f"ok{i}", "request_body": {"i": i}})
        start = time.monotonic()
        results = client.trigger_webhooks(calls, concurrency=8)
        assert time.monotonic() - start < TIMEOUT + SLACK
        for call, got in zip(calls, results):
            wid = call["webhook_id"]
            want = kinds.get(wid, 200)
            if wid == "slow":  # 0.5 s of delay within the timeout
                assert isinstance(got, (dict, genauth_c.TimeoutError)), got
            elif isinstance(want, int):
                assert isinstance(got, dict) and got["statusCode"] == want, (
                    wid, got)
                if want == 200:
                    assert got["data"]["response"] == call["request_body"]
            else:
                assert type(got) is want, (wid, got)
        assert client.trigger_webhook("ok")["statusCode"] == 200
        client.close()
    finally:
        stop()


@pytest.mark.parametrize("fault", ["headers_never_come",
                                   "body_trickles_past_timeout"])
def test_batch_on_a_hanging_token_endpoint_ends_by_one_timeout(
        fake, client_for, fault):
    """The calls a batch has in flight wait on one token fetch together, as
    threads would: a token endpoint that hangs costs the batch one timeout,
    not one per call, and the calls whose time ran out with that fetch ask
    for no token of their own."""
    fake.token_answer = FAULTS[fault][0]()
    client = client_for(fake.server.url, timeout=1.0)
    start = time.monotonic()
    results = client.trigger_webhooks([{"webhook_id": "wh1"}] * 12,
                                      concurrency=16)
    assert time.monotonic() - start < 1.0 + SLACK
    assert [type(r) for r in results] == [genauth_c.TimeoutError] * 12
    assert fake.token_fetches == 1
    fake.token_answer = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


class UnaskedAfterFirstAnswer:
    """FakeGenAuth whose trigger-webhook answers carry their request's
    number (requestId r-N). After the first, the server later sends on the
    same kept-alive connection an answer nobody asked for (a 408, as a
    server timing out an idle connection does), once the test sets `push`;
    `pushed` is set once those bytes have left."""

    def __init__(self):
        self.fake = FakeGenAuth()
        self.push, self.pushed = threading.Event(), threading.Event()
        self.n = 0

    def __call__(self, req):
        resp = self.fake(req)
        if "trigger-webhook" not in req.path:
            return resp
        self.n += 1
        body = json.dumps({"statusCode": 200, "message": "asked",
                           "requestId": f"r-{self.n}", "data": {}}).encode()
        answer = head(length=len(body)) + body
        if self.n > 1:
            return Response(raw=answer)
        late = json.dumps({"statusCode": 408, "message": "unasked",
                           "requestId": "late", "data": None}).encode()

        def pieces():
            yield answer
            if self.push.wait(30):
                yield head(408, len(late)) + late
                self.pushed.set()

        return Response(raw=pieces())


def _await_push(handler):
    handler.push.set()
    assert handler.pushed.wait(30)


@pytest.mark.parametrize("mode", ["sync", "tls", "batch", "asyncio"])
def test_unasked_answer_on_an_idle_connection_is_never_a_calls_answer(
        certificate, mode):
    """Bytes a server sends on an idle kept-alive connection are no answer
    to the next call: that call goes out on a new connection and gets its
    own answer, and so do the calls after it. (libcurl 7.88 alone would
    read the late 408 as the next answer, and every later answer on that
    connection one call late.)"""
    from conftest import server_tls

    handler = UnaskedAfterFirstAnswer()
    tls = server_tls(certificate) if mode == "tls" else None
    with RawServer(handler, tls=tls) as server:
        opts = {"ca_bundle": str(certificate[0])} if tls else {}
        opened = []  # connections once the first call is over
        if mode == "asyncio":
            import asyncio

            async def calls():
                async with genauth_c.AsyncManagementClient(
                        "AKIDexample1234", "S", host=server.url,
                        timeout=TIMEOUT) as client:
                    got = [await client.trigger_webhook("w")]
                    opened.append(server.connections)
                    await asyncio.get_running_loop().run_in_executor(
                        None, _await_push, handler)
                    for _ in range(3):
                        got.append(await client.trigger_webhook("w"))
                    return got

            got = asyncio.run(calls())
        else:
            client = ManagementClient("AKIDexample1234", "S", host=server.url,
                                      timeout=TIMEOUT, **opts)
            if mode == "batch":
                def call():
                    [out] = client.trigger_webhooks([{"webhook_id": "w"}],
                                                    concurrency=1)
                    return out
            else:
                def call():
                    return client.trigger_webhook("w")
            got = [call()]
            opened.append(server.connections)
            _await_push(handler)
            got += [call() for _ in range(3)]
            client.close()
        assert [(g["statusCode"], g["requestId"]) for g in got] == [
            (200, "r-1"), (200, "r-2"), (200, "r-3"), (200, "r-4")]
        # One new connection for the three calls, kept: a connection with
        # nothing waiting (TLS included) is reused as before.
        assert server.connections == opened[0] + 1


# ---- a host that is not the API: the answer names the URL asked -----------

def failure_in_each_path(host, method, error, **options):
    """The `error` a call of `method` (webhook wh1) ends with on `host`,
    made each way: a call, a batch's call (trigger_webhooks, returned in
    its place) and an AsyncManagementClient's."""
    with ManagementClient("AK", "SK", host=host, **options) as client:
        with pytest.raises(error) as info:
            getattr(client, method)("wh1")
        [in_batch] = client.trigger_webhooks([{"webhook_id": "wh1"}])

    async def main():
        async with genauth_c.AsyncManagementClient(
                "AK", "SK", host=host, **options) as client:
            return await getattr(client, method)("wh1")

    with pytest.raises(error) as in_async:
        asyncio.run(main())
    return info.value, in_batch, in_async.value


@pytest.mark.parametrize("body", [b"", b"<html>Not Found</html>"])
@pytest.mark.parametrize("auth", ["token", "signature"])
def test_a_host_that_is_not_the_api_is_named_in_the_decode_error(auth, body):
    """A wrong host or path prefix (a web site, the console, a stray
    '/api/v3') answers every path 404. The message said only 'the server
    answered HTTP 404 with an empty body': not which URL, nor that the token
    fetch was the request that failed."""
    with RawServer(lambda req: Response(status=404, body=body)) as server:
        host = server.url + "/console"
        path = ("/api/v3/get-management-token" if auth == "token"
                else "/api/v3/get-webhook")
        error, in_batch, in_async = failure_in_each_path(
            host, "get_webhook", genauth_c.DecodeError, auth=auth)
    assert str(error).startswith(
        f"{host}{path}: the server answered HTTP 404 with ")
    assert error.http_status == 404
    assert "?" not in str(error)  # the query string is left out
    assert isinstance(in_batch, genauth_c.DecodeError)
    batch_path = ("/api/v3/get-management-token" if auth == "token"
                  else "/api/v3/trigger-webhook")
    assert str(in_batch).startswith(f"{host}{batch_path}: the server answered")
    assert str(in_async) == str(error)


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_a_host_that_never_answers_is_named_in_the_timeout(auth):
    """A host that takes the connection and never answers (a firewall, a
    wrong port of a busy machine): the message was libcurl's alone
    ('Operation timed out after 501 milliseconds with 0 bytes received'),
    naming neither the host nor that the token fetch was the request that
    hung."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        # Never accepted: the kernel completes the handshakes and holds the
        # requests unread, so nothing ever answers.
        host = "http://127.0.0.1:%d" % silent.getsockname()[1]
        path = ("/api/v3/get-management-token" if auth == "token"
                else "/api/v3/get-webhook")
        error, in_batch, in_async = failure_in_each_path(
            host, "get_webhook", genauth_c.TimeoutError, auth=auth,
            timeout=0.5, max_retries=0)
    assert str(error).startswith(f"{host}{path}: the call timed out: ")
    assert error.curl_code == 28
    assert "?" not in str(error)  # the query string is left out
    batch_path = ("/api/v3/get-management-token" if auth == "token"
                  else "/api/v3/trigger-webhook")
    assert isinstance(in_batch, genauth_c.TimeoutError), in_batch
    assert str(in_batch).startswith(f"{host}{batch_path}: the call timed out")
    assert str(in_async).startswith(f"{host}{path}: the call timed out: ")


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_an_https_host_that_speaks_plain_http_is_named_with_a_hint(auth):
    """https:// given for a plain-HTTP server (the emulator, a local
    service): the message was OpenSSL's alone ('...:wrong version number
    (SSL connect error)'), naming neither the URL nor the likely slip. (The
    emulator answers the TLS hello with an HTTP 400, as HTTP servers do.)"""
    with Emulator("AK", "SK") as emulator:
        host = emulator.url.replace("http://", "https://")
        error, in_batch, in_async = failure_in_each_path(
            host, "trigger_webhook", genauth_c.TransportError, auth=auth,
            max_retries=0)
    # The same words from a batch and from asyncio.
    assert str(in_batch) == str(error) == str(in_async)
    path = ("/api/v3/get-management-token" if auth == "token"
            else "/api/v3/trigger-webhook")
    assert error.curl_code == 35
    message = str(error)
    assert message.startswith(f"{host}{path}: the TLS handshake failed: "), message
    assert message.endswith(
        " (SSL connect error); a server that speaks plain HTTP fails it so: "
        "if one serves that address, host begins with http://"), message


def test_a_tls_alert_is_not_blamed_on_plain_http():
    """A server that answers the ClientHello with a TLS alert (a protocol
    version, a cipher or a client certificate it wants) speaks TLS: the
    message still told the reader that a plain-HTTP server fails so and to
    write host with http://, which would send the secret in the clear to a
    TLS port. The alert is named as the server's refusal."""
    alert = bytes([0x15, 3, 3, 0, 2, 2, 40])  # fatal handshake_failure

    def refuse(listener):
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)  # the ClientHello
                conn.sendall(alert)
                conn.recv(65536)  # until the client closes

    with socket.create_server(("127.0.0.1", 0)) as listener:
        threading.Thread(target=refuse, args=(listener,), daemon=True).start()
        host = "https://127.0.0.1:%d" % listener.getsockname()[1]
        error, in_batch, in_async = failure_in_each_path(
            host, "trigger_webhook", genauth_c.TransportError, max_retries=0)
        assert str(in_batch) == str(error) == str(in_async)
        assert error.curl_code == 35
        message = str(error)
        assert message.startswith(
            f"{host}/api/v3/get-management-token: the TLS handshake failed: "
        ), message
        assert "alert handshake failure" in message
        assert "plain HTTP" not in message and "http://" not in message
        assert message.endswith(
            " (SSL connect error); the server refused the handshake with a "
            "TLS alert: it speaks TLS, and does not take what this client "
            "offered (a protocol version, a cipher) or wants what it did "
            "not send (a client certificate)"), message
