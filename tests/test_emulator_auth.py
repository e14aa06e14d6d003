"""The emulator's authentication on its own (raw http.client, no C client):
the token endpoint and its JWTs, Bearer tokens, AK/SK signatures for both
brands, and the JavaScript-form JSON the signatures are computed over."""
from __future__ import annotations

import base64
import binascii
import email.utils
import json
import time
import uuid

import pytest

from emulator_http import AK, SK, E, assert_error, bearer, call, call_json, emu, get_token, receiver  # noqa: F401


# ------------------------------------------------------------ token endpoint

def _payload_b64(token):
    return token.split(".")[1]


def test_token_issuance_and_jwt_shape(emu):
    status, env = call_json(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK})
    assert status == 200
    assert env["statusCode"] == 200 and env["message"] == ""
    assert env["data"]["expires_in"] == 7200
    token = env["data"]["access_token"]
    header_b64, payload_b64, sig_b64 = token.split(".")
    assert "=" not in token
    assert json.loads(E.b64url_decode(header_b64)) == {"alg": "HS256", "typ": "JWT"}
    payload = json.loads(E.b64url_decode(payload_b64))
    assert payload["scoped_userpool_id"] == E.DEFAULT_USERPOOL_ID == emu.userpool_id
    assert payload["exp"] - payload["iat"] in (7200, 7201)
    assert payload["jti"]
    assert len(E.b64url_decode(sig_b64)) == 32  # HMAC-SHA256
    assert emu.token_fetches == 1


def test_default_payload_decodes_as_plain_base64(emu):
    # The official Python SDK decodes the payload with base64.b64decode: every
    # token must be valid base64 as it stands, with no padding needed.
    for _ in range(50):
        payload_b64 = _payload_b64(get_token(emu))
        assert len(payload_b64) % 4 == 0
        assert "-" not in payload_b64 and "_" not in payload_b64
        claims = json.loads(base64.b64decode(payload_b64, validate=True))
        assert claims["scoped_userpool_id"] == E.DEFAULT_USERPOOL_ID


@pytest.mark.parametrize("pool", ["p", "pool-12", "中文 pool", "x" * 101])
def test_payload_needs_no_padding_for_any_pool_id(pool):
    with E.Emulator(AK, SK, userpool_id=pool) as emu:
        payload_b64 = _payload_b64(get_token(emu))
    assert len(payload_b64) % 4 == 0
    assert json.loads(E.b64url_decode(payload_b64))["scoped_userpool_id"] == pool


def test_urlsafe_pool_id_payload_is_base64url_only():
    # For testing clients: this payload has '-' / '_', which plain base64 rejects.
    with E.Emulator(AK, SK, userpool_id=E.URLSAFE_USERPOOL_ID) as emu:
        payload_b64 = _payload_b64(get_token(emu))
    assert "-" in payload_b64 or "_" in payload_b64
    with pytest.raises(binascii.Error):
        base64.b64decode(payload_b64, validate=True)
    assert json.loads(E.b64url_decode(payload_b64))["scoped_userpool_id"] == E.URLSAFE_USERPOOL_ID


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


# ------------------------------------------------------------ token auth

def test_missing_and_bad_token(emu):
    body = {"webhookId": "x"}
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body)
    assert status == 401
    assert_error(env, 401, E.APICODE_TOKEN_MISSING)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, bearer(emu, token="a.b.c"))
    assert status == 401
    assert_error(env, 401, E.APICODE_TOKEN_INVALID)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, bearer(emu, token="a.b.\u00e9"))
    assert_error(env, 401, E.APICODE_TOKEN_INVALID)
    token = get_token(emu)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, {"authorization": f"Bearer {token}"})
    assert_error(env, 401, E.APICODE_USERPOOL_MISMATCH)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, {"authorization": f"Bearer {token}", "x-genauth-userpool-id": "other"})
    assert_error(env, 401, E.APICODE_USERPOOL_MISMATCH)


def test_token_lifetime_runs_out():
    with E.Emulator(AK, SK, token_lifetime=0.05) as emu:
        headers = bearer(emu)
        time.sleep(0.1)  # past the lifetime: expired for certain
        status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
        assert status == 401
        assert_error(env, 401, E.APICODE_TOKEN_EXPIRED)


def test_expire_tokens_now_and_auth_failure_status(emu):
    headers = bearer(emu)
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert env["statusCode"] == 404  # token good; webhook unknown
    emu.expire_tokens()
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert status == 401
    assert_error(env, 401, E.APICODE_TOKEN_EXPIRED)
    emu.auth_failure_http_status = 200
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)
    assert status == 200 and env["statusCode"] == 401
    # A token issued afterwards is not affected.
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, bearer(emu))
    assert env["statusCode"] == 404


def test_expire_tokens_after_calls(emu):
    headers = bearer(emu)
    emu.expire_tokens(after_calls=2)
    codes = [call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "x"}, headers)[1]["statusCode"] for _ in range(4)]
    assert codes == [404, 404, 401, 401]


def test_token_max_uses(emu):
    emu.token_max_uses = 3
    headers = bearer(emu)
    envs = [call_json(emu, "GET", "/api/v3/get-webhook-event-list", headers=headers)[1] for _ in range(4)]
    assert [e["statusCode"] for e in envs] == [200, 200, 200, 401]
    assert envs[-1]["apiCode"] == E.APICODE_TOKEN_EXPIRED
    emu.token_max_uses = None
    headers = bearer(emu)
    for _ in range(5):
        assert call_json(emu, "GET", "/api/v3/get-webhook-event-list", headers=headers)[1]["statusCode"] == 200


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
VECTORS = [
    ("POST", "/api/v3/trigger-webhook", json.loads(VECTOR_BODY), "1fbbe9588899f1b4129021db8d142666", None, "ME47QqDTGaldhVphTLY0rDvd9HE="),
    ("GET", "/api/v3/list-webhooks", {"page": "1", "limit": "10"}, "1f52e922fb0386ebeee6c68530f8535a", "/api/v3/list-webhooks?limit=10&page=1", "0o+VyL2Lez+u1g++5lNTfqQBXoc="),
    ("GET", "/api/v3/get-webhook", {"webhookId": "wh1"}, "a866f4c9f348d95d1841843e029f1580", "/api/v3/get-webhook?webhookId=wh1", "I3wiTXhrSI70/GDTpEfiWW3MeVA="),
    ("GET", "/api/v3/get-webhook-event-list", {}, "d2667e5822ab547130d4f2a4197ada1a", "/api/v3/get-webhook-event-list", "eTHoxsoVivdfjzJDCd2sqxyjy30="),
]


@pytest.mark.parametrize("method,path,params,nonce,resource,expected", VECTORS)
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


@pytest.mark.parametrize("method,path,params,nonce,resource,expected", VECTORS)
def test_signature_vectors_accepted_on_the_wire(method, path, params, nonce, resource, expected):
    # The vectors' own headers, sent as a client would (GET parameters in the
    # query string, in the order the client chose): the emulator rebuilds the
    # same string to sign from what it parsed and accepts the signature.
    with E.Emulator(AK, SK, signature_max_skew=None) as emu:
        emu.add_webhook("wh1", "http://127.0.0.1:1/")
        headers = dict(VECTOR_HEADERS, **{"x-authing-signature-nonce": nonce, "authorization": f"authing {AK}:{expected}"})
        if method == "POST":
            status, _, data = call(emu, "POST", path, raw=VECTOR_BODY.encode(), headers=headers)
        else:
            query = "&".join(f"{k}={v}" for k, v in params.items())
            status, _, data = call(emu, "GET", path + ("?" + query if query else ""), headers=headers)
        rec = emu.requests[-1]
        assert rec.auth_error is None, (rec.string_to_sign, data)
        assert rec.auth == "signature" and rec.brand == "authing"
        env = json.loads(data)
        # The POST vector's webhook URL is unreachable; authentication passed.
        assert env["statusCode"] == (602 if method == "POST" else 200), env


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


@pytest.mark.parametrize("brand", ["authing", "genauth"])
def test_signed_get_covers_decoded_query(emu, brand):
    # requests/urllib percent-encode the query; the signature covers the
    # decoded values, keys sorted.
    emu.add_webhook("a/b c", "http://127.0.0.1:1/")
    headers = E.signed_headers("GET", "/api/v3/get-webhook", {"webhookId": "a/b c"}, AK, SK, brand=brand)
    status, env = call_json(emu, "GET", "/api/v3/get-webhook?webhookId=a%2Fb+c", headers=headers)
    assert env["statusCode"] == 200, (env, emu.requests[-1].string_to_sign)
    assert env["data"]["webhookId"] == "a/b c"
    assert emu.requests[-1].string_to_sign.endswith("\n/api/v3/get-webhook?webhookId=a/b c")
    headers = E.signed_headers("GET", "/api/v3/list-webhooks", {"page": "1", "limit": "10"}, AK, SK, brand=brand)
    _, env = call_json(emu, "GET", "/api/v3/list-webhooks?page=1&limit=10", headers=headers)
    assert env["statusCode"] == 200 and env["data"]["totalCount"] == 1
    # Signed without the query: refused.
    headers = E.signed_headers("GET", "/api/v3/list-webhooks", None, AK, SK, brand=brand)
    _, env = call_json(emu, "GET", "/api/v3/list-webhooks?page=1", headers=headers)
    assert_error(env, 401, E.APICODE_SIGNATURE_INVALID)


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

    headers = E.signed_headers("POST", E.TRIGGER_PATH, body, AK, SK)
    headers["x-authing-signature-method"] = "HMAC-SHA256"
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, body, headers)
    assert_error(env, 401, E.APICODE_SIGNATURE_UNSUPPORTED)

    headers = E.signed_headers("POST", E.TRIGGER_PATH, body, AK, SK)
    headers["authorization"] = "authing no-colon"
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, body, headers)
    assert_error(env, 401, E.APICODE_SIGNATURE_MALFORMED)

    # GenAuth scheme word with x-authing-* headers: the brands do not mix.
    headers = E.signed_headers("POST", E.TRIGGER_PATH, body, AK, SK)
    headers["authorization"] = headers["authorization"].replace("authing ", "GenAuth ", 1)
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, body, headers)
    assert env["statusCode"] == 401 and 1300 <= env["apiCode"] <= 1306


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_the_token_endpoint_is_post_only(emu, method):
    # genauth-v3.md: POST /api/v3/get-management-token. A GET carrying the
    # keys as JSON was issued a token.
    status, env = call_json(emu, method, E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK})
    assert status == 404 and env["statusCode"] == 404, env
    assert env["apiCode"] == E.APICODE_NOT_FOUND and "data" not in env
    assert emu.token_fetches == 0


def test_a_non_ascii_signature_is_refused_not_a_crash(emu):
    # http.server hands the handler header bytes as Latin-1 text, and
    # hmac.compare_digest raises TypeError on a str with non-ASCII in it:
    # the handler died and the client got no answer at all.
    body = {"webhookId": "nope"}
    headers = E.signed_headers("POST", E.TRIGGER_PATH, body, AK, SK)
    headers["authorization"] = headers["authorization"][:-1] + "\u00e9"
    _, env = call_json(emu, "POST", E.TRIGGER_PATH, body, headers)
    assert_error(env, 401, E.APICODE_SIGNATURE_INVALID)


@pytest.mark.parametrize("date", ["Thu, 26 Nov 2026 99999999999999999999:24:02 GMT", "Thu, 26 Nov 2026 20:24:02 +99999999999999999999"])
def test_a_date_with_huge_numbers_is_refused_not_a_crash(emu, date):
    # email.utils raises OverflowError, not ValueError, for a field past a C
    # long: the handler died and the client got no answer at all.
    body = {"webhookId": "nope"}
    _, env = _signed_call(emu, "POST", E.TRIGGER_PATH, body, date=date)
    assert_error(env, 401, E.APICODE_SIGNATURE_NO_DATE)


@pytest.fixture
def local_time_zone_utc_plus_8(monkeypatch):
    # A POSIX TZ string: no tz database needed.
    monkeypatch.setenv("TZ", "XST-8")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_date_in_utc_without_a_named_zone_is_utc_whatever_the_hosts_zone(emu, local_time_zone_utc_plus_8):
    # email.utils gives a naive datetime for "-0000" (UTC, RFC 5322) and
    # .timestamp() read it in the host's zone: 8 hours off here, so a
    # current date was refused as clock skew (1305) on a host not in UTC.
    date = email.utils.formatdate(time.time(), usegmt=True).replace("GMT", "-0000")
    _, env = _signed_call(emu, "POST", E.TRIGGER_PATH, {"webhookId": "nope"}, date=date)
    assert env["statusCode"] == 404, env  # authenticated; webhook unknown
