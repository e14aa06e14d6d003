"""What goes on the wire, byte for byte, and what comes back."""
import json

import pytest

from conftest import AK, SK
from rawserver import USERPOOL_ID, Response

import genauth_c


def api_requests(fake):
    return [r for r in fake.server.requests if "trigger-webhook" in r.path]


def test_token_request_on_the_wire(fake, client_for):
    client = client_for(fake.server.url, lang="zh-CN", tenant_id="TENANT1")
    client.trigger_webhook("wh1")
    tok = fake.server.requests[0]
    assert tok.method == "POST"
    assert tok.path == "/api/v3/get-management-token"
    assert tok.body == json.dumps({"accessKeyId": AK, "accessKeySecret": SK},
                                  separators=(",", ":")).encode()
    names = [k.lower() for k, _ in tok.headers]
    assert "authorization" not in names
    assert tok.header("content-type") == "application/json"
    assert tok.header("x-genauth-sdk-version") == f"genauth-c:{genauth_c.__version__}"


def test_trigger_webhook_request_exact(fake, client_for):
    client = client_for(fake.server.url, lang="zh-CN", tenant_id="TENANT1")
    client.trigger_webhook(
        "6229ffaxxxxxxxxcade3e3d9",
        request_headers={"eventName": "test", "data": {"description": "A test from authing"}},
        request_body={"eventName": "test", "data": {"description": "中文/\"q\""}},
    )
    (req,) = api_requests(fake)
    assert req.method == "POST"
    assert req.path == "/api/v3/trigger-webhook"
    assert req.body == (
        b'{"webhookId":"6229ffaxxxxxxxxcade3e3d9",'
        b'"requestHeaders":{"eventName":"test","data":{"description":"A test from authing"}},'
        b'"requestBody":{"eventName":"test","data":{"description":"' +
        "中文/\\\"q\\\"".encode() + b'"}}}')
    headers = [(k.lower(), v) for k, v in req.headers]
    auth = dict(headers)["authorization"]
    assert auth.startswith("Bearer ") and auth[7:] in fake.valid_tokens
    assert headers == [
        ("host", f"127.0.0.1:{fake.server.port}"),
        ("accept", "*/*"),
        ("content-type", "application/json"),
        ("authorization", auth),
        ("x-genauth-userpool-id", USERPOOL_ID),
        ("x-genauth-sdk-version", f"genauth-c:{genauth_c.__version__}"),
        ("x-genauth-lang", "zh-CN"),
        ("x-genauth-app-id", "TENANT1"),
        ("content-length", str(len(req.body))),
    ]


def test_optional_headers_left_out_and_none_members_dropped(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1", None, None)
    (req,) = api_requests(fake)
    assert req.body == b'{"webhookId":"wh1"}'
    names = [k.lower() for k, _ in req.headers]
    assert "x-genauth-lang" not in names and "x-genauth-app-id" not in names
    assert "expect" not in names and "user-agent" not in names


def test_none_inside_a_payload_is_sent_as_null(fake, client_for):
    """Only the arguments that are None are left out (the official SDK drops
    the top-level None keys only); a None inside a payload is JSON's null,
    as json.dumps writes it: a subscriber may tell a null from a key that
    is absent."""
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1", {"X": None}, {"a": None, "b": [None]})
    (req,) = api_requests(fake)
    assert req.body == (b'{"webhookId":"wh1","requestHeaders":{"X":null},'
                        b'"requestBody":{"a":null,"b":[null]}}')


def test_authing_brand_header_names(fake, client_for):
    client = client_for(fake.server.url, brand="authing")
    client.trigger_webhook("wh1")
    (req,) = api_requests(fake)
    assert req.header("x-authing-userpool-id") == USERPOOL_ID
    assert req.header("x-authing-sdk-version").startswith("genauth-c:")
    assert req.header("x-genauth-userpool-id") is None


def test_host_path_prefix_and_trailing_slash(fake, client_for):
    client = client_for(fake.server.url + "/genauth/")
    assert client.host == fake.server.url + "/genauth"
    client.trigger_webhook("wh1")
    assert [r.path for r in fake.server.requests] == [
        "/genauth/api/v3/get-management-token", "/genauth/api/v3/trigger-webhook"]


def test_large_body_sent_without_expect_continue(fake, client_for):
    client = client_for(fake.server.url)
    big = {"blob": "x" * 200_000}
    client.trigger_webhook("wh1", request_body=big)
    (req,) = api_requests(fake)
    assert req.header("expect") is None
    assert json.loads(req.body)["requestBody"] == big


def test_envelope_passthrough_every_field(fake, client_for):
    fake.envelope = {"statusCode": 200, "message": "ok", "requestId": "r1",
                     "data": {"response": {"a": [1, 2.5, None, True]}},
                     "extraField": {"kept": "yes"}, "apiCode": None}
    client = client_for(fake.server.url)
    assert client.trigger_webhook("wh1") == fake.envelope
    assert list(client.trigger_webhook("wh1")) == list(fake.envelope)


def test_business_error_returned_not_raised(fake, client_for):
    fake.envelope = {"statusCode": 404, "message": "webhook not found",
                     "apiCode": 2404, "requestId": "r-404"}
    client = client_for(fake.server.url)
    assert client.trigger_webhook("nope") == fake.envelope


def test_http_error_with_json_envelope_is_returned(fake, client_for):
    env = {"statusCode": 500, "message": "boom", "requestId": "r-500"}
    fake.response = Response.json(env, status=500)
    client = client_for(fake.server.url)
    assert client.trigger_webhook("wh1") == env


def test_raise_for_status(fake, client_for):
    fake.envelope = {"statusCode": 403, "message": "forbidden", "apiCode": 1403,
                     "requestId": "r-403"}
    client = client_for(fake.server.url, raise_for_status=True)
    with pytest.raises(genauth_c.APIError) as info:
        client.trigger_webhook("wh1")
    e = info.value
    assert (e.status_code, e.api_code, e.message, e.request_id) == (
        403, 1403, "forbidden", "r-403")
    assert e.response == fake.envelope and e.http_status == 200
    assert isinstance(e, genauth_c.GenAuthError)
    fake.envelope = {"statusCode": 200, "message": "ok", "data": {"response": 1}}
    assert client.trigger_webhook("wh1")["data"] == {"response": 1}


def test_non_json_body_raises_decode_error(fake, client_for):
    fake.response = Response(status=502, body=b"<html>bad gateway</html>",
                             headers=[("Content-Type", "text/html")])
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.DecodeError) as info:
        client.trigger_webhook("wh1")
    assert info.value.http_status == 502
    assert info.value.excerpt == b"<html>bad gateway</html>"
    assert isinstance(info.value, ValueError)
    fake.response = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.mark.parametrize("body", [b"[1,2]", b'"text"', b"{\"a\":", b"\xff\xfe{}",
                                  b'{"a":"\xff"}', b""])
def test_bodies_that_are_not_json_objects(fake, client_for, body):
    fake.response = Response(body=body)
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.DecodeError):
        client.trigger_webhook("wh1")
