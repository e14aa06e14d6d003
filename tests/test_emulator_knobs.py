"""The emulator's fault knobs and records (raw http.client, no C client)."""
from __future__ import annotations

import http.client
import json
import socket
import time

import pytest

from emulator_http import AK, SK, E, UUID_RE, api, assert_error, bearer, call, call_json, emu, get_token, receiver  # noqa: F401

TRIGGER = {"webhookId": "x"}


def test_delay_knob_holds_the_answer(emu):
    headers = bearer(emu)
    emu.delay = 5
    with pytest.raises(TimeoutError):
        call(emu, "POST", E.TRIGGER_PATH, TRIGGER, headers, timeout=0.3)
    emu.delay, emu.delay_token = 0, 5
    assert call_json(emu, "POST", E.TRIGGER_PATH, TRIGGER, headers)[1]["statusCode"] == 404
    with pytest.raises(TimeoutError):
        call(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK}, timeout=0.3)


def test_force_status_and_raw_body(emu):
    headers = bearer(emu)
    emu.force_status = 503
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, TRIGGER, headers)
    assert status == 503 and env["statusCode"] == 503 and UUID_RE.match(env["requestId"])
    status, env = call_json(emu, "GET", "/api/v3/list-webhooks", headers=headers)  # every API path
    assert status == 503
    emu.force_status = 502
    emu.raw_body = b"<html>bad gateway</html>"
    status, resp_headers, data = call(emu, "POST", E.TRIGGER_PATH, TRIGGER, headers)
    assert (status, data) == (502, b"<html>bad gateway</html>")
    assert resp_headers["content-type"].startswith("text/html")
    emu.force_status = None
    status, _, data = call(emu, "POST", E.TRIGGER_PATH, TRIGGER, headers)
    assert (status, data) == (200, b"<html>bad gateway</html>")
    # The token endpoint is not behind the gateway knobs.
    assert get_token(emu)


def test_drop_connection(emu):
    headers = bearer(emu)
    emu.drop_connection = 1  # only the next API request
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        call(emu, "POST", E.TRIGGER_PATH, TRIGGER, headers)
    assert call_json(emu, "POST", E.TRIGGER_PATH, TRIGGER, headers)[1]["statusCode"] == 404
    assert [r.status for r in emu.requests if r.path == E.TRIGGER_PATH] == [None, 200]


def test_fail_next_calls_with_401(emu):
    headers = bearer(emu)
    emu.fail_next_calls_with_401 = 2
    for path in (E.TRIGGER_PATH, "/api/v3/get-webhook-logs"):
        status, env = call_json(emu, "POST", path, TRIGGER, headers)
        assert status == 401
        assert_error(env, 401, E.APICODE_TOKEN_EXPIRED)
    assert call_json(emu, "POST", E.TRIGGER_PATH, TRIGGER, headers)[1]["statusCode"] == 404
    assert emu.fail_next_calls_with_401 == 0


@pytest.mark.parametrize("http_status,retry_after", [(429, None), (429, 2), (200, "Wed, 21 Oct 2026 07:28:00 GMT")])
def test_throttle_next_calls(emu, http_status, retry_after):
    headers = bearer(emu)
    emu.throttle_next_calls = 2
    emu.throttle_http_status = http_status
    emu.throttle_retry_after = retry_after
    for _ in range(2):
        status, resp_headers, data = call(emu, "GET", "/api/v3/get-webhook-event-list", headers=headers)
        assert status == http_status
        assert resp_headers.get("Retry-After") == (None if retry_after is None else str(retry_after))
        assert_error(json.loads(data), 429, E.APICODE_THROTTLED)
    assert call_json(emu, "GET", "/api/v3/get-webhook-event-list", headers=headers)[1]["statusCode"] == 200
    assert emu.throttle_next_calls == 0


def _raw_request(emu, method, path, body=b"", headers=()):
    """Send one request on a plain socket; returns what came back, or the error."""
    s = socket.create_connection(("127.0.0.1", emu.port), timeout=5)
    try:
        head = f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{n}: {v}\r\n" for n, v in headers) + "\r\n"
        s.sendall(head.encode() + body)
        chunks = []
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError as exc:
                return exc
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                return b"".join(chunks)
    finally:
        s.close()


def test_reset_after_request_carries_it_out(emu, receiver):
    emu.add_webhook("wh1", receiver.url)
    token_headers = list(bearer(emu).items())
    body = b'{"webhookId":"wh1"}'
    emu.reset_after_request = 1
    got = _raw_request(emu, "POST", E.TRIGGER_PATH, body, token_headers + [("content-type", "application/json")])
    assert isinstance(got, ConnectionResetError), got  # a reset, not an orderly close
    assert emu.delivery_count("wh1") == 1 and len(receiver.received) == 1  # delivered all the same
    rec = [r for r in emu.requests if r.path == E.TRIGGER_PATH][-1]
    assert rec.status is None and emu.connections_reset == 1
    assert api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "wh1"})["statusCode"] == 200
    assert emu.delivery_count("wh1") == 2


def test_reset_before_request_does_nothing(emu, receiver):
    emu.add_webhook("wh1", receiver.url)
    headers = bearer(emu)
    emu.reset_before_request = 1
    got = _raw_request(emu, "POST", E.TRIGGER_PATH, b'{"webhookId":"wh1"}', list(headers.items()))
    assert isinstance(got, ConnectionResetError), got
    assert emu.delivery_count("wh1") == 0 and receiver.received == []
    assert [r for r in emu.requests if r.path == E.TRIGGER_PATH] == []
    assert emu.connections_reset == 1 and emu.reset_before_request == 0
    assert call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "wh1"}, headers)[1]["statusCode"] == 200


def test_reset_knobs_spare_the_token_endpoint(emu):
    emu.reset_before_request = emu.reset_after_request = True
    assert get_token(emu)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        call(emu, "GET", "/api/v3/get-webhook-event-list")


def test_delivery_counts(emu, receiver):
    emu.add_webhook("a", receiver.url)
    emu.add_webhook("b", receiver.url)
    headers = bearer(emu)
    for wid in ("a", "b", "a", "a"):
        api(emu, "POST", E.TRIGGER_PATH, {"webhookId": wid}, headers)
    assert (emu.delivery_count("a"), emu.delivery_count("b"), emu.delivery_count("c")) == (3, 1, 0)
    assert emu.delivery_counts() == {"a": 3, "b": 1}
    emu.reset_records()
    assert emu.delivery_counts() == {} and emu.webhook_logs == []


def test_keep_alive_connection_count_and_records(emu):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    _, env = call_json(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK}, conn=conn)
    token = env["data"]["access_token"]
    for _ in range(3):
        status, _, _ = call(emu, "POST", E.TRIGGER_PATH, TRIGGER, {"Authorization": f"Bearer {token}", "X-GenAuth-UserPool-Id": emu.userpool_id}, conn=conn)
        assert status == 200
    assert emu.connection_count == 1
    assert emu.token_fetches == 1 and len(emu.requests) == 4
    names = [n for n, _ in emu.requests[-1].headers]
    assert names.index("Authorization") < names.index("X-GenAuth-UserPool-Id")  # wire order, original case
    assert emu.requests[-1].body == b'{"webhookId": "x"}'
    conn.close()
    call(emu, "POST", E.TOKEN_PATH, {})
    assert emu.connection_count == 2
    call(emu, "GET", "/api/v3/get-webhook?webhookId=a%2Fb&x=1")
    assert emu.requests[-1].query == {"webhookId": "a/b", "x": "1"}
    emu.reset_records()
    assert (emu.connection_count, emu.token_fetches, emu.requests) == (0, 0, [])


def test_stop_with_idle_keep_alive_connection_does_not_hang():
    emu = E.Emulator(AK, SK).start()
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    call(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK}, conn=conn)
    emu.delay = 30
    t0 = time.monotonic()
    emu.stop()
    emu.stop()  # idempotent
    assert time.monotonic() - t0 < 5
    conn.close()


@pytest.mark.parametrize("sent", [b"", b"GET /api/v3/list-webhooks HTTP/1.1\r\nHost: x\r\n"])
@pytest.mark.parametrize("server", ["Emulator", "WebhookReceiver"])
def test_a_silent_connection_is_closed(server, sent):
    # A client that connected and sent nothing, or half a request
    # (slowloris), held a thread of the server for ever: no read timed out.
    with getattr(E, server)() as srv:
        srv.idle_timeout = 0.2
        with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as s:
            s.sendall(sent)
            assert s.recv(1024) == b""  # closed by the server, nothing answered


def test_repr_shows_the_url():
    emu = E.Emulator(AK, SK)
    rx = E.WebhookReceiver()
    assert "not started" in repr(emu) and "not started" in repr(rx)
    with emu, rx:
        emu.add_webhook("wh1", rx.url)
        assert repr(emu) == f"<Emulator url='{emu.url}' access_key_id='AKID' webhooks=1>"
        assert repr(rx) == f"<WebhookReceiver url='{rx.url}' received=0>"
        assert emu.running
    assert not emu.running
