"""Tests of genauth-c's GenAuth V3 emulator on its own (no C client involved).

Run from the repository root: ``python -m pytest tests/test_emulator.py -q``.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import http.client
import importlib.util
import json
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
EMULATOR_PY = ROOT / "genauth_c" / "emulator.py"

try:
    from genauth_c import emulator as E
except ImportError:
    # The package's __init__ imports the C extension; the emulator itself is
    # pure Python, so these tests load it by path when the extension is absent.
    _spec = importlib.util.spec_from_file_location("genauth_c_emulator_standalone", EMULATOR_PY)
    E = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = E  # dataclasses look their module up here
    _spec.loader.exec_module(E)

AK, SK = "AKID", "SECRET"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


# ---------------------------------------------------------------- helpers

@pytest.fixture
def emu():
    with E.Emulator(AK, SK) as server:
        yield server


@pytest.fixture
def receiver():
    with E.WebhookReceiver() as rx:
        yield rx


def call(emu, method, path, body=None, headers=None, conn=None, raw=None):
    """One request; returns (http_status, response headers, body bytes)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"content-type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        if own:
            conn.close()


def call_json(emu, method, path, body=None, headers=None, **kw):
    status, _, data = call(emu, method, path, body, headers, **kw)
    return status, json.loads(data)


def get_token(emu):
    status, env = call_json(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK})
    assert status == 200 and env["statusCode"] == 200, env
    return env["data"]["access_token"]


def bearer(emu, token=None, brand="genauth"):
    return {"authorization": f"Bearer {token or get_token(emu)}", f"x-{brand}-userpool-id": emu.userpool_id}


def assert_error(env, status_code, api_code):
    assert env["statusCode"] == status_code, env
    assert env["apiCode"] == api_code, env
    assert UUID_RE.match(env["requestId"]), env
    assert isinstance(env["message"], str) and env["message"]
    assert "data" not in env


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ------------------------------------------------------------ token endpoint

def test_token_issuance_and_jwt_shape(emu):
    status, env = call_json(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK})
    assert status == 200
    assert env["statusCode"] == 200 and env["message"] == ""
    assert env["data"]["expires_in"] == 7200
    token = env["data"]["access_token"]
    header_b64, payload_b64, sig_b64 = token.split(".")
    assert "=" not in token
    assert json.loads(E.b64url_decode(header_b64)) == {"alg": "HS256", "typ": "JWT"}
    # The payload's base64url form needs '-' or '_' so a client that decodes it
    # as standard base64 fails here as it would on real tokens.
    assert "-" in payload_b64 or "_" in payload_b64
    with pytest.raises(binascii.Error):
        base64.b64decode(payload_b64 + "=" * (-len(payload_b64) % 4), validate=True)
    payload = json.loads(E.b64url_decode(payload_b64))
    assert payload["scoped_userpool_id"] == E.DEFAULT_USERPOOL_ID == emu.userpool_id
    assert payload["exp"] - payload["iat"] in (7200, 7201)
    assert payload["jti"]
    assert len(E.b64url_decode(sig_b64)) == 32  # HMAC-SHA256
    assert emu.token_fetches == 1


def test_token_wrong_keys(emu):
    status, env = call_json(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": "nope"})
    assert status == 200
    assert_error(env, 401, E.APICODE_BAD_ACCESS_KEY)


@pytest.mark.parametrize("raw", [b"{not json", b'{"accessKeyId": "AKID"}', b"[1,2]", b'{"accessKeyId":1,"accessKeySecret":"x"}'])
def test_token_malformed_body(emu, raw):
    status, _, data = call(emu, "POST", E.TOKEN_PATH, raw=raw, headers={"content-type": "application/json"})
    assert status == 200
    assert_error(json.loads(data), 400, E.APICODE_INVALID_ARGUMENT)


def test_fractional_token_lifetime():
    with E.Emulator(AK, SK, token_lifetime=0.5) as emu:
        _, env = call_json(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK})
        assert env["data"]["expires_in"] == 0.5


# ------------------------------------------------------------ trigger-webhook

def test_trigger_webhook_end_to_end(emu, receiver):
    emu.add_webhook("wh1", receiver.url + "/hook", secret="s3cret")
    request_headers = {"X-Trace": "abc", "eventName": "test", "data": {"description": "A test from authing"}, "count": 3}
    request_body = {"eventName": "test", "data": {"description": "A test from authing"}}
    status, env = call_json(
        emu, "POST", E.TRIGGER_PATH,
        {"webhookId": "wh1", "requestHeaders": request_headers, "requestBody": request_body},
        bearer(emu),
    )
    assert status == 200
    assert env["statusCode"] == 200 and env["message"] == "Operation successful"
    assert UUID_RE.match(env["requestId"])
    assert env["data"] == {"response": {"received": True, "eventName": "test"}}

    [got] = receiver.received
    assert (got.method, got.path) == ("POST", "/hook")
    assert got.json == request_body
    assert got.header("X-Trace") == "abc"
    assert got.header("eventName") == "test"
    assert got.header("data") == '{"description":"A test from authing"}'  # compact JSON
    assert got.header("count") == "3"
    assert got.header("user-agent") == "authing-webhook@2.0"
    assert got.header("x-authing-webhook-secret") == "s3cret"
    assert got.header("x-authing-userpool-id") == emu.userpool_id
    assert got.header("content-type") == "application/json"

    trigger = [r for r in emu.requests if r.path == E.TRIGGER_PATH][-1]
    assert (trigger.auth, trigger.brand, trigger.status) == ("token", "genauth", 200)
    assert emu.webhook_logs[-1]["success"] is True


def test_trigger_default_body_and_authing_brand(emu, receiver):
    emu.add_webhook("wh1", receiver.url + "/hook")
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "wh1"}, bearer(emu, brand="authing"))
    assert env["statusCode"] == 200
    assert receiver.received[0].json == {"eventName": "test", "data": {"description": "A test from authing"}}
    assert emu.requests[-1].brand == "authing"


def test_trigger_round_trips_exact_values(emu):
    # The subscriber echoes its body: big ints, U+0000 and astral characters
    # must come back in data.response exactly.
    body = {"eventName": "test", "big": 123456789012345678901234567890, "nul": "a\u0000b", "astral": "😀 中文", "f": [0.1, -2.5e-8]}
    with E.WebhookReceiver(answer_body=lambda got: got.body) as rx:
        emu.add_webhook("echo", rx.url)
        status, _, data = call(emu, "POST", E.TRIGGER_PATH, {"webhookId": "echo", "requestBody": body}, bearer(emu))
    assert b"123456789012345678901234567890" in data
    assert "😀 中文".encode() in data  # UTF-8, not \u escapes
    assert json.loads(data)["data"]["response"] == body


def test_trigger_form_encoded_and_text_answer(emu):
    with E.WebhookReceiver(answer_body=b"plain ok", answer_content_type="text/plain", answer_status=500) as rx:
        emu.add_webhook("form", rx.url + "/f", content_type=E.FORM_CONTENT_TYPE)
        _, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "form", "requestBody": {"eventName": "test", "data": {"k": 1}, "on": True}}, bearer(emu))
        assert env["statusCode"] == 200
        assert env["data"]["response"] == "plain ok"  # not JSON: the text
        got = rx.received[0]
        assert got.header("content-type") == E.FORM_CONTENT_TYPE
        assert got.form == {"eventName": "test", "data": '{"k":1}', "on": "true"}
    assert emu.webhook_logs[-1]["responseStatusCode"] == 500


def test_unknown_webhook_is_a_404_envelope(emu):
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "nope"}, bearer(emu))
    assert status == 200
    assert_error(env, 404, E.APICODE_WEBHOOK_NOT_FOUND)


@pytest.mark.parametrize("body", [{}, {"webhookId": 5}, {"webhookId": "wh1", "requestBody": [1]}, {"webhookId": "wh1", "requestHeaders": "x"}])
def test_trigger_invalid_arguments(emu, receiver, body):
    emu.add_webhook("wh1", receiver.url)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, bearer(emu))
    assert status == 200
    assert_error(env, 400, E.APICODE_INVALID_ARGUMENT)
    assert receiver.received == []


def test_unreachable_subscriber(emu):
    emu.add_webhook("dead", f"http://127.0.0.1:{closed_port()}/hook")
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "dead"}, bearer(emu))
    assert status == 200
    assert_error(env, 602, E.APICODE_SUBSCRIBER_FAILED)


# ------------------------------------------------------------ token auth

def test_missing_and_bad_token(emu):
    body = {"webhookId": "x"}
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body)
    assert status == 401
    assert_error(env, 401, E.APICODE_TOKEN_MISSING)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, bearer(emu, token="a.b.c"))
    assert status == 401
    assert_error(env, 401, E.APICODE_TOKEN_INVALID)
    token = get_token(emu)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, {"authorization": f"Bearer {token}"})
    assert_error(env, 401, E.APICODE_USERPOOL_MISMATCH)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, {"authorization": f"Bearer {token}", "x-genauth-userpool-id": "other"})
    assert_error(env, 401, E.APICODE_USERPOOL_MISMATCH)


def test_expired_token_and_status_knob():
    with E.Emulator(AK, SK, token_lifetime=0.3) as emu:
        headers = bearer(emu)
        status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
        assert env["statusCode"] == 404  # token still good
        time.sleep(0.4)
        status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
        assert status == 401
        assert_error(env, 401, E.APICODE_TOKEN_EXPIRED)
        emu.auth_failure_http_status = 200
        status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
        assert status == 200 and env["statusCode"] == 401


def test_expire_tokens_helper(emu):
    headers = bearer(emu)
    emu.expire_tokens()
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert env["apiCode"] == E.APICODE_TOKEN_EXPIRED


# ------------------------------------------------------------ signatures

VECTOR_HEADERS = {
    "date": "Thu, 26 Nov 2026 20:24:02 GMT",
    "x-authing-app-id": "TENANT1",
    "x-authing-lang": "zh-CN",
    "x-authing-sdk-version": "authing-node-sdk:4.0.1",
    "x-authing-signature-method": "HMAC-SHA1",
    "x-authing-signature-version": "1.0",
}
VECTOR_BODY = '{"webhookId":"wh1","requestHeaders":{"X-A":"b"},"requestBody":{"eventName":"test","data":{"z":1,"a":"中文/\\"q\\""}}}'
VECTOR_STRING_TO_SIGN = (
    "POST\n"
    "date:Thu, 26 Nov 2026 20:24:02 GMT\n"
    "x-authing-app-id:TENANT1\n"
    "x-authing-lang:zh-CN\n"
    "x-authing-sdk-version:authing-node-sdk:4.0.1\n"
    "x-authing-signature-method:HMAC-SHA1\n"
    "x-authing-signature-nonce:1fbbe9588899f1b4129021db8d142666\n"
    "x-authing-signature-version:1.0\n"
    '/api/v3/trigger-webhook?requestBody={"eventName":"test","data":{"z":1,"a":"中文/\\"q\\""}}&requestHeaders={"X-A":"b"}&webhookId=wh1'
)


@pytest.mark.parametrize(
    "method,path,params,nonce,resource,expected",
    [
        ("POST", "/api/v3/trigger-webhook", json.loads(VECTOR_BODY), "1fbbe9588899f1b4129021db8d142666", None, "ME47QqDTGaldhVphTLY0rDvd9HE="),
        ("GET", "/api/v3/list-webhooks", {"page": "1", "limit": "10"}, "1f52e922fb0386ebeee6c68530f8535a", "/api/v3/list-webhooks?limit=10&page=1", "0o+VyL2Lez+u1g++5lNTfqQBXoc="),
        ("GET", "/api/v3/get-webhook", {"webhookId": "wh1"}, "a866f4c9f348d95d1841843e029f1580", "/api/v3/get-webhook?webhookId=wh1", "I3wiTXhrSI70/GDTpEfiWW3MeVA="),
        ("GET", "/api/v3/get-webhook-event-list", {}, "d2667e5822ab547130d4f2a4197ada1a", "/api/v3/get-webhook-event-list", "eTHoxsoVivdfjzJDCd2sqxyjy30="),
    ],
)
def test_signature_vectors(method, path, params, nonce, resource, expected):
    headers = dict(VECTOR_HEADERS, **{"x-authing-signature-nonce": nonce})
    sts = E.string_to_sign(method, headers, path, params)
    if method == "POST":
        assert sts == VECTOR_STRING_TO_SIGN
    else:
        assert sts.rsplit("\n", 1)[1] == resource
    assert E.sign(SK, sts) == expected
    built = E.signed_headers(method, path, params, AK, SK, nonce=nonce, date=VECTOR_HEADERS["date"], lang="zh-CN", tenant_id="TENANT1")
    assert built["authorization"] == f"authing {AK}:{expected}"


@pytest.mark.parametrize(
    "value,expected",
    [
        (1.0, "1"), (1e21, "1e+21"), (1.5e-7, "1.5e-7"), (123456789012345680000.0, "123456789012345680000"),
        (1152921504606846976, "1152921504606847000"), (0.1, "0.1"), (-0.0, "0"), (1e-6, "0.000001"),
        (1e-7, "1e-7"), (5e-324, "5e-324"), (-2.5, "-2.5"), (10, "10"), (float("inf"), "null"),
        (True, "true"), (None, "null"), ("中/\"\\\n\u0001\u2028😀", '"中/\\"\\\\\\n\\u0001\u2028😀"'),
        ({"b": 1, "10": 2, "2": 3, "a": [None, False], "4294967295": 0, "01": 4},
         '{"2":3,"10":2,"b":1,"a":[null,false],"4294967295":0,"01":4}'),
    ],
)
def test_js_stringify(value, expected):
    assert E.js_stringify(value) == expected


def test_js_string_scalars():
    assert [E.js_string(v) for v in (True, False, None, 10, 1.0, "x", [1, "a"])] == ["true", "false", "null", "10", "1", "x", '[1,"a"]']


def _signed_call(emu, method, path, body, brand="authing", **kw):
    headers = E.signed_headers(method, path, body if method == "POST" else None, AK, SK, brand=brand, **kw)
    return call_json(emu, method, path, body if method == "POST" else None, headers)


@pytest.mark.parametrize("brand", ["authing", "genauth"])
def test_signed_request_accepted(emu, receiver, brand):
    emu.add_webhook("wh1", receiver.url)
    # Sent with \u escapes and an integer-like key: the emulator signs what it
    # parsed (JSON.stringify order and form), not the bytes on the wire.
    body = {"webhookId": "wh1", "requestBody": {"eventName": "test", "data": {"z": 1, "10": "中文/x", "2": 2.0}}}
    status, env = _signed_call(emu, "POST", E.TRIGGER_PATH, body, brand=brand, lang="zh-CN")
    assert status == 200 and env["statusCode"] == 200, env
    rec = emu.requests[-1]
    assert (rec.auth, rec.brand, rec.auth_error) == ("signature", brand, None)
    assert '"data":{"2":2,"10":"中文/x","z":1}' in rec.string_to_sign


def test_signed_get_accepted(emu):
    emu.add_webhook("wh1", "http://127.0.0.1:1/")
    headers = E.signed_headers("GET", "/api/v3/list-webhooks", {"page": "1", "limit": "10"}, AK, SK)
    status, env = call_json(emu, "GET", "/api/v3/list-webhooks?page=1&limit=10", headers=headers)
    assert env["statusCode"] == 200 and env["data"]["totalCount"] == 1


def test_signature_failures(emu):
    body = {"webhookId": "nope"}
    nonce = uuid.uuid4().hex
    status, env = _signed_call(emu, "POST", E.TRIGGER_PATH, body, nonce=nonce)
    assert env["statusCode"] == 404  # authenticated; webhook unknown
    status, env = _signed_call(emu, "POST", E.TRIGGER_PATH, body, nonce=nonce)
    assert status == 401
    assert_error(env, 401, E.APICODE_SIGNATURE_NONCE_REUSED)

    headers = E.signed_headers("POST", E.TRIGGER_PATH, body, AK, SK)
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "other"}, headers)
    assert_error(env, 401, E.APICODE_SIGNATURE_INVALID)

    headers = E.signed_headers("POST", E.TRIGGER_PATH, body, AK, SK)
    del headers["date"]
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, body, headers)
    assert_error(env, 401, E.APICODE_SIGNATURE_NO_DATE)

    stale = email.utils.formatdate(time.time() - 1000, usegmt=True)
    _, env = _signed_call(emu, "POST", E.TRIGGER_PATH, body, date=stale)
    assert_error(env, 401, E.APICODE_SIGNATURE_SKEW)

    headers = E.signed_headers("POST", E.TRIGGER_PATH, body, "OTHER", SK)
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, body, headers)
    assert_error(env, 401, E.APICODE_SIGNATURE_UNKNOWN_KEY)

    # GenAuth scheme word with x-authing-* headers: the brands do not mix.
    headers = E.signed_headers("POST", E.TRIGGER_PATH, body, AK, SK)
    headers["authorization"] = headers["authorization"].replace("authing ", "GenAuth ", 1)
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, body, headers)
    assert env["statusCode"] == 401 and 1300 <= env["apiCode"] <= 1306


# ------------------------------------------------------------ knobs

def test_delay_knobs(emu):
    headers = bearer(emu)
    emu.delay = 0.3
    t0 = time.monotonic()
    call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert time.monotonic() - t0 >= 0.3
    emu.delay, emu.delay_token = 0, 0.3
    t0 = time.monotonic()
    get_token(emu)
    assert time.monotonic() - t0 >= 0.3


def test_force_status_and_raw_body(emu):
    headers = bearer(emu)
    emu.force_status = 503
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert status == 503 and env["statusCode"] == 503 and UUID_RE.match(env["requestId"])
    emu.force_status = 502
    emu.raw_body = b"<html>bad gateway</html>"
    status, resp_headers, data = call(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert (status, data) == (502, b"<html>bad gateway</html>")
    assert resp_headers["content-type"].startswith("text/html")
    emu.force_status = None
    status, _, data = call(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert (status, data) == (200, b"<html>bad gateway</html>")


def test_drop_connection(emu):
    headers = bearer(emu)
    emu.drop_connection = 1  # only the next API request
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        call(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert env["statusCode"] == 404


def test_fail_next_calls_with_401(emu):
    headers = bearer(emu)
    emu.fail_next_calls_with_401 = 2
    for _ in range(2):
        status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
        assert status == 401
        assert_error(env, 401, E.APICODE_TOKEN_EXPIRED)
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert env["statusCode"] == 404
    assert emu.fail_next_calls_with_401 == 0


def test_keep_alive_connection_count_and_records(emu):
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    _, env = call_json(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK}, conn=conn)
    token = env["data"]["access_token"]
    for _ in range(3):
        status, _, _ = call(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, {"Authorization": f"Bearer {token}", "X-GenAuth-UserPool-Id": emu.userpool_id}, conn=conn)
        assert status == 200
    assert emu.connection_count == 1
    assert emu.token_fetches == 1 and len(emu.requests) == 4
    names = [n for n, _ in emu.requests[-1].headers]
    assert names.index("Authorization") < names.index("X-GenAuth-UserPool-Id")  # wire order, original case
    assert emu.requests[-1].body == b'{"webhookId": "x"}'
    conn.close()
    call(emu, "POST", E.TOKEN_PATH, {})
    assert emu.connection_count == 2
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
    assert time.monotonic() - t0 < 2
    conn.close()


# ------------------------------------------------------------ other endpoints

def test_webhook_crud_logs_and_events(emu, receiver):
    headers = bearer(emu)
    _, env = call_json(emu, "POST", "/api/v3/create-webhook", {"contentType": "application/json", "events": ["test"], "url": receiver.url, "name": "n"}, headers)
    webhook_id = env["data"]["webhookId"]
    _, env = call_json(emu, "GET", f"/api/v3/get-webhook?webhookId={webhook_id}", headers=headers)
    assert env["data"]["url"] == receiver.url
    _, env = call_json(emu, "POST", "/api/v3/update-webhook", {"webhookId": webhook_id, "name": "renamed"}, headers)
    assert env["data"]["name"] == "renamed"
    call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": webhook_id}, headers)
    _, env = call_json(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": webhook_id}, headers)
    assert env["data"]["totalCount"] == 1 and env["data"]["list"][0]["responseStatusCode"] == 200
    _, env = call_json(emu, "GET", "/api/v3/list-webhooks?page=1&limit=10", headers=headers)
    assert env["data"]["totalCount"] == 1
    _, env = call_json(emu, "GET", "/api/v3/list-webhooks?limit=51", headers=headers)
    assert env["statusCode"] == 400
    _, env = call_json(emu, "POST", "/api/v3/delete-webhook", {"webhookIds": [webhook_id, "unknown"]}, headers)
    assert env["data"] == {"success": True}
    _, env = call_json(emu, "GET", f"/api/v3/get-webhook?webhookId={webhook_id}", headers=headers)
    assert env["statusCode"] == 404
    _, env = call_json(emu, "GET", "/api/v3/get-webhook-event-list", headers=headers)
    assert any(e["value"] == "test" for e in env["data"]["events"])
    status, env = call_json(emu, "GET", "/api/v3/no-such-thing", headers=headers)
    assert status == 404 and env["statusCode"] == 404


def test_command_line(receiver):
    # Run the file directly (not -m) so the package's C extension is not needed.
    proc = subprocess.Popen(
        [sys.executable, str(EMULATOR_PY), "--port", "0", "--access-key-id", AK, "--access-key-secret", SK,
         "--webhook", f"wh1={receiver.url}/cli", "--token-lifetime", "60"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert url, line

        class _Port:
            port = int(url.group(1))
            userpool_id = E.DEFAULT_USERPOOL_ID

        _, env = call_json(_Port, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK})
        assert env["data"]["expires_in"] == 60
        _, env = call_json(_Port, "POST", E.TRIGGER_PATH, {"webhookId": "wh1"}, bearer(_Port, env["data"]["access_token"]))
        assert env["statusCode"] == 200 and receiver.received[0].path == "/cli"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
