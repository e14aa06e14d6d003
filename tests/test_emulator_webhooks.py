"""The emulator's eight webhook endpoints and its deliveries, over raw
http.client (no C client): what each endpoint answers, what a subscriber
receives, and what the delivery logs say."""
from __future__ import annotations

import http.client
import json

import pytest

from conftest import free_port
from emulator_http import ISO_RE, AK, SK, E, api, assert_error, bearer, call, call_json, emu, receiver  # noqa: F401

CREATE = {"contentType": "application/json", "events": ["test", "user:created"], "url": "http://127.0.0.1:1/h", "name": "n"}


def create(emu, headers, **fields):
    env = api(emu, "POST", "/api/v3/create-webhook", dict(CREATE, **fields), headers)
    assert env["statusCode"] == 200, env
    return env["data"]


# ------------------------------------------------------------ create / get

def test_create_returns_a_webhook_dto(emu):
    headers = bearer(emu)
    hook = create(emu, headers, secret="s", enabled=False, retryConfig={"enabled": True, "count": 3, "delay": 1, "delayUnit": "Second"})
    assert list(hook) == ["webhookId", "createdAt", "updatedAt", "name", "url", "contentType", "enabled", "events", "secret", "retryConfig"]
    assert len(hook["webhookId"]) == 24 and ISO_RE.match(hook["createdAt"]) and hook["updatedAt"] == hook["createdAt"]
    assert (hook["name"], hook["url"], hook["enabled"], hook["events"], hook["secret"]) == ("n", CREATE["url"], False, ["test", "user:created"], "s")
    other = create(emu, headers)
    assert other["webhookId"] != hook["webhookId"]
    assert other["enabled"] is True and "retryConfig" not in other
    assert api(emu, "GET", f"/api/v3/get-webhook?webhookId={hook['webhookId']}", headers=headers)["data"] == hook


@pytest.mark.parametrize("change", [
    {"contentType": "text/plain"}, {"events": "test"}, {"events": ["no-such-event"]}, {"url": "ftp://x/"},
    {"url": 5}, {"name": None}, {"enabled": "yes"}, {"retryConfig": {"delayUnit": "Week"}}, {"retryConfig": []},
    {"retryConfig": {"enabled": True, "count": -1}},
    # The reference's retryConfig is {enabled, count?, delay?, delayUnit?}.
    {"retryConfig": {"count": 3}}, {"retryConfig": {}}, {"retryConfig": {"enabled": None}},
])
def test_create_refuses_bad_fields(emu, change):
    body = {k: v for k, v in dict(CREATE, **change).items() if v is not None}
    assert_error(api(emu, "POST", "/api/v3/create-webhook", body), 400, E.APICODE_INVALID_ARGUMENT)
    assert api(emu, "GET", "/api/v3/list-webhooks")["data"]["totalCount"] == 0


def test_get_unknown_or_missing_id(emu):
    headers = bearer(emu)
    status, env = call_json(emu, "GET", "/api/v3/get-webhook?webhookId=nope", headers=headers)
    assert status == 200
    assert_error(env, 404, E.APICODE_WEBHOOK_NOT_FOUND)
    assert_error(api(emu, "GET", "/api/v3/get-webhook", headers=headers), 400, E.APICODE_INVALID_ARGUMENT)
    assert_error(api(emu, "GET", "/api/v3/get-webhook?webhookId=", headers=headers), 400, E.APICODE_INVALID_ARGUMENT)


def test_get_percent_encoded_id(emu):
    emu.add_webhook("a/b c&d", "http://127.0.0.1:1/")
    env = api(emu, "GET", "/api/v3/get-webhook?webhookId=a%2Fb+c%26d")
    assert env["data"]["webhookId"] == "a/b c&d"


# ------------------------------------------------------------ list

def test_list_paginates(emu):
    headers = bearer(emu)
    ids = [create(emu, headers, name=f"n{i}")["webhookId"] for i in range(12)]
    env = api(emu, "GET", "/api/v3/list-webhooks", headers=headers)  # defaults: page 1, limit 10
    assert env["data"]["totalCount"] == 12
    assert [h["webhookId"] for h in env["data"]["list"]] == ids[:10]
    env = api(emu, "GET", "/api/v3/list-webhooks?page=2&limit=10", headers=headers)
    assert [h["webhookId"] for h in env["data"]["list"]] == ids[10:]
    env = api(emu, "GET", "/api/v3/list-webhooks?limit=5&page=3", headers=headers)
    assert [h["webhookId"] for h in env["data"]["list"]] == ids[10:]
    env = api(emu, "GET", "/api/v3/list-webhooks?page=9&limit=50", headers=headers)
    assert env["data"] == {"totalCount": 12, "list": []}


@pytest.mark.parametrize("query", ["page=0", "limit=0", "limit=51", "page=-1", "page=x", "limit=1.5", "page=", "page=%201"])
def test_list_out_of_range_is_a_400_envelope(emu, query):
    status, env = call_json(emu, "GET", f"/api/v3/list-webhooks?{query}", headers=bearer(emu))
    assert status == 200
    assert_error(env, 400, E.APICODE_INVALID_ARGUMENT)


# ------------------------------------------------------------ update / delete

def test_update_changes_only_what_is_given(emu):
    headers = bearer(emu)
    hook = create(emu, headers, secret="s1")
    env = api(emu, "POST", "/api/v3/update-webhook", {"webhookId": hook["webhookId"], "name": "renamed", "url": None}, headers)
    assert env["statusCode"] == 200
    updated = env["data"]
    assert updated["name"] == "renamed"
    assert {k: v for k, v in updated.items() if k not in ("name", "updatedAt")} == {k: v for k, v in hook.items() if k not in ("name", "updatedAt")}
    assert updated["updatedAt"] >= hook["updatedAt"]
    env = api(emu, "POST", "/api/v3/update-webhook", {"webhookId": hook["webhookId"], "enabled": False, "events": ["login"],
                                                    "retryConfig": {"enabled": False}}, headers)
    assert (env["data"]["enabled"], env["data"]["events"], env["data"]["retryConfig"], env["data"]["name"]) == (False, ["login"], {"enabled": False}, "renamed")
    assert list(env["data"])[-1] == "retryConfig"  # DTO key order kept
    assert api(emu, "GET", f"/api/v3/get-webhook?webhookId={hook['webhookId']}", headers=headers)["data"] == env["data"]


def test_update_errors(emu):
    headers = bearer(emu)
    assert_error(api(emu, "POST", "/api/v3/update-webhook", {"webhookId": "nope", "name": "x"}, headers), 404, E.APICODE_WEBHOOK_NOT_FOUND)
    assert_error(api(emu, "POST", "/api/v3/update-webhook", {"name": "x"}, headers), 400, E.APICODE_INVALID_ARGUMENT)
    hook = create(emu, headers)
    assert_error(api(emu, "POST", "/api/v3/update-webhook", {"webhookId": hook["webhookId"], "enabled": 1}, headers), 400, E.APICODE_INVALID_ARGUMENT)
    no_enabled = {"webhookId": hook["webhookId"], "retryConfig": {"count": 3}}
    assert_error(api(emu, "POST", "/api/v3/update-webhook", no_enabled, headers), 400, E.APICODE_INVALID_ARGUMENT)


def test_delete_ignores_unknown_ids(emu):
    headers = bearer(emu)
    a, b = create(emu, headers), create(emu, headers)
    env = api(emu, "POST", "/api/v3/delete-webhook", {"webhookIds": [a["webhookId"], "unknown"]}, headers)
    assert env["statusCode"] == 200 and env["data"] == {"success": True}
    assert [h["webhookId"] for h in api(emu, "GET", "/api/v3/list-webhooks", headers=headers)["data"]["list"]] == [b["webhookId"]]
    assert api(emu, "POST", "/api/v3/delete-webhook", {"webhookIds": []}, headers)["data"] == {"success": True}
    assert_error(api(emu, "POST", "/api/v3/delete-webhook", {"webhookIds": "x"}, headers), 400, E.APICODE_INVALID_ARGUMENT)
    assert_error(api(emu, "POST", "/api/v3/delete-webhook", {}, headers), 400, E.APICODE_INVALID_ARGUMENT)


def test_event_list(emu):
    env = api(emu, "GET", "/api/v3/get-webhook-event-list")
    categories, events = env["data"]["categories"], env["data"]["events"]
    assert all(set(c) == {"name", "nameEn", "value"} for c in categories)
    assert all(set(e) == {"name", "nameEn", "value", "category"} for e in events)
    values = {e["value"] for e in events}
    assert {"test", "login", "register", "user:created", "user:updated", "user:deleted", "user:password-changed",
            "role:created", "group:created", "organization:created"} <= values
    assert {e["category"] for e in events} <= {c["value"] for c in categories}


def test_unknown_endpoint_and_wrong_method(emu):
    headers = bearer(emu)
    status, env = call_json(emu, "GET", "/api/v3/no-such-thing", headers=headers)
    assert status == 404 and env["statusCode"] == 404
    status, env = call_json(emu, "GET", "/api/v3/create-webhook", headers=headers)
    assert status == 404 and env["apiCode"] == E.APICODE_NOT_FOUND
    status, env = call_json(emu, "GET", "/elsewhere")
    assert status == 404


def test_an_unknown_endpoint_is_404_before_authentication(emu):
    """A client whose host carries the API's path ('.../api/v3', a common
    slip) asks /api/v3/api/v3/get-management-token: the emulator answered
    401 'missing authorization header', so the client's AuthError blamed
    the keys. An unknown path is a 404 whoever asks, as in the Express-style
    'Cannot POST ...' it answers (the client's side: test_emulator_e2e)."""
    status, env = call_json(emu, "POST", "/api/v3/api/v3/get-management-token")
    assert status == 404 and env["apiCode"] == E.APICODE_NOT_FOUND
    assert env["message"] == "Cannot POST /api/v3/api/v3/get-management-token"


# ------------------------------------------------------------ trigger and deliveries

def test_trigger_webhook_end_to_end(emu, receiver):
    emu.add_webhook("wh1", receiver.url + "/hook", secret="s3cret")
    request_headers = {"X-Trace": "abc", "eventName": "test", "data": {"description": "A test from authing"}, "count": 3,
                       "x-authing-webhook-secret": "forged", "Content-Type": "text/plain"}
    request_body = {"eventName": "test", "data": {"description": "A test from authing"}}
    status, env = call_json(emu, "POST", E.TRIGGER_PATH,
                            {"webhookId": "wh1", "requestHeaders": request_headers, "requestBody": request_body}, bearer(emu))
    assert status == 200
    assert env["statusCode"] == 200 and env["message"] == "Operation successful"
    assert env["data"] == {"response": {"received": True, "eventName": "test"}}

    [got] = receiver.received
    assert (got.method, got.path) == ("POST", "/hook")
    assert got.json == request_body
    assert got.header("X-Trace") == "abc"
    assert got.header("data") == '{"description":"A test from authing"}'  # compact JSON
    assert got.header("count") == "3"
    assert got.header("user-agent") == "authing-webhook@2.0"
    assert got.header("x-authing-webhook-secret") == "s3cret"  # the caller cannot override it
    assert got.header("x-authing-userpool-id") == emu.userpool_id
    assert len(got.header("x-authing-token")) == 32
    assert got.header("content-type") == "application/json"
    assert [n.lower() for n, _ in got.headers].count("content-type") == 1

    trigger = [r for r in emu.requests if r.path == E.TRIGGER_PATH][-1]
    assert (trigger.auth, trigger.brand, trigger.status) == ("token", "genauth", 200)
    log = emu.webhook_logs[-1]
    assert list(log) == ["webhookId", "eventName", "requestBody", "requestHeaders", "responseStatusCode", "responseHeaders",
                         "responseBody", "timestamp", "success"]
    assert (log["webhookId"], log["eventName"], log["requestBody"], log["responseStatusCode"], log["success"]) == ("wh1", "test", request_body, 200, True)
    assert json.loads(log["responseBody"]) == {"received": True, "eventName": "test"}
    assert ISO_RE.match(log["timestamp"])
    assert emu.delivery_count("wh1") == 1


def test_trigger_default_body_and_genauth_delivery_brand(receiver):
    with E.Emulator(AK, SK, delivery_brand="genauth") as emu:
        emu.add_webhook("wh1", receiver.url + "/hook", secret=None)
        env = api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "wh1"}, bearer(emu, brand="authing"))
    assert env["statusCode"] == 200
    got = receiver.received[0]
    assert got.json == {"eventName": "test", "data": {"description": "A test from authing"}}
    assert got.header("user-agent") == "genauth-webhook@2.0"
    assert got.header("x-genauth-userpool-id") == emu.userpool_id
    assert got.header("x-genauth-webhook-secret") is None and got.header("x-authing-webhook-secret") is None  # no secret set


def test_trigger_round_trips_exact_values(emu):
    body = {"eventName": "test", "big": 123456789012345678901234567890, "nul": "a\u0000b", "astral": "😀 中文", "f": [0.1, -2.5e-8]}
    with E.WebhookReceiver(answer_body=lambda got: got.body) as rx:
        emu.add_webhook("echo", rx.url)
        status, _, data = call(emu, "POST", E.TRIGGER_PATH, {"webhookId": "echo", "requestBody": body}, bearer(emu))
    assert b"123456789012345678901234567890" in data
    assert "😀 中文".encode() in data  # UTF-8, not \u escapes
    assert json.loads(data)["data"]["response"] == body


def test_trigger_form_encoded_and_text_answer(emu):
    with E.WebhookReceiver(answer_body=b"plain ok", answer_content_type="text/plain", answer_status=500) as rx:
        emu.add_webhook("form", rx.url + "/f", content_type=E.FORM_CONTENT_TYPE, secret="fs")
        env = api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "form", "requestBody": {"eventName": "test", "data": {"k": 1}, "on": True, "s": "a b&c"}})
        assert env["statusCode"] == 200
        assert env["data"]["response"] == "plain ok"  # not JSON: the text
        got = rx.received[0]
        assert got.header("content-type") == E.FORM_CONTENT_TYPE
        assert got.header("x-authing-webhook-secret") == "fs"
        assert got.form == {"eventName": "test", "data": '{"k":1}', "on": "true", "s": "a b&c"}
    log = emu.webhook_logs[-1]
    assert (log["responseStatusCode"], log["success"], log["responseBody"]) == (500, False, "plain ok")


def test_created_webhook_is_delivered_form_encoded(emu, receiver):
    headers = bearer(emu)
    hook = create(emu, headers, url=receiver.url + "/c", contentType=E.FORM_CONTENT_TYPE, secret="cs")
    env = api(emu, "POST", E.TRIGGER_PATH, {"webhookId": hook["webhookId"], "requestBody": {"eventName": "login", "data": {"u": 1}}}, headers)
    assert env["statusCode"] == 200
    got = receiver.received[0]
    assert got.path == "/c" and got.form == {"eventName": "login", "data": '{"u":1}'}
    assert got.header("x-authing-webhook-secret") == "cs"


def test_unknown_webhook_is_a_404_envelope(emu):
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "nope"}, bearer(emu))
    assert status == 200
    assert_error(env, 404, E.APICODE_WEBHOOK_NOT_FOUND)


def test_disabled_webhook_is_not_delivered(emu, receiver):
    emu.add_webhook("off", receiver.url, enabled=False)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "off"}, bearer(emu))
    assert status == 200
    assert_error(env, 422, E.APICODE_WEBHOOK_DISABLED)
    assert receiver.received == [] and emu.webhook_logs == [] and emu.delivery_count("off") == 0


@pytest.mark.parametrize("body", [{}, {"webhookId": 5}, {"webhookId": ""}, {"webhookId": "wh1", "requestBody": [1]},
                                  {"webhookId": "wh1", "requestHeaders": "x"}, {"webhookId": "wh1", "requestHeaders": {"bad name": "x"}},
                                  {"webhookId": "wh1", "requestHeaders": {"x": "a\r\nb"}}])
def test_trigger_invalid_arguments(emu, receiver, body):
    emu.add_webhook("wh1", receiver.url)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, bearer(emu))
    assert status == 200
    assert_error(env, 400, E.APICODE_INVALID_ARGUMENT)
    assert receiver.received == []


def test_failed_deliveries_are_logged(emu):
    emu.add_webhook("dead", f"http://127.0.0.1:{free_port()}/hook")
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, {"webhookId": "dead"}, bearer(emu))
    assert status == 200
    assert_error(env, 602, E.APICODE_SUBSCRIBER_FAILED)
    assert "ECONNREFUSED" in env["message"]
    log = api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "dead"})["data"]["list"][0]
    assert (log["success"], log["errorMessage"], log["responseStatusCode"]) == (False, "ECONNREFUSED", 0)

    emu.webhook_timeout = 0.2
    with E.WebhookReceiver(delay=5) as slow:
        emu.add_webhook("slow", slow.url)
        env = api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "slow"})
    assert_error(env, 602, E.APICODE_SUBSCRIBER_FAILED)
    log = api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "slow"})["data"]["list"][0]
    assert (log["success"], log["errorMessage"]) == (False, "ERRTIMEOUT")
    assert emu.delivery_counts() == {"dead": 1, "slow": 1}


def test_a_subscriber_that_never_finishes_answering_is_a_timeout(emu):
    # webhook_timeout bounded each read, not the delivery: a subscriber
    # sending its body a byte at a time, for ever, held trigger-webhook (and
    # the emulator's thread) for ever.
    import threading
    from rawserver import RawServer, Response
    gone = threading.Event()

    def trickle():
        while not gone.wait(0.05):
            yield b"x"

    emu.webhook_timeout = 0.5
    try:
        with RawServer(lambda req: Response(headers=[("Content-Length", "1000000")], stream=trickle())) as sub:
            emu.add_webhook("trickle", sub.url)
            env = api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "trickle"})
    finally:
        gone.set()
    assert_error(env, 602, E.APICODE_SUBSCRIBER_FAILED)
    log = api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "trickle"})["data"]["list"][0]
    assert (log["success"], log["errorMessage"]) == (False, "ERRTIMEOUT")


def test_a_subscriber_answer_past_the_body_cap_is_refused(emu, monkeypatch):
    # The subscriber's answer was read whole, however large, into memory and
    # into the delivery log.
    import importlib
    from rawserver import RawServer, Response
    monkeypatch.setattr(importlib.import_module(E.__name__ + ".delivery"), "MAX_BODY_BYTES", 1000, raising=False)
    with RawServer(lambda req: Response(body=b"x" * 1001)) as sub:
        emu.add_webhook("big", sub.url)
        env = api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "big"})
        assert_error(env, 602, E.APICODE_SUBSCRIBER_FAILED)
        log = api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "big"})["data"]["list"][0]
        assert (log["success"], log["errorMessage"]) == (False, "EMSGSIZE")
        sub.handler = lambda req: Response(body=b"x" * 1000)  # up to the cap is an answer
        assert api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "big"})["data"] == {"response": "x" * 1000}


def test_logs_newest_first_and_paginated(emu):
    headers = bearer(emu)
    with E.WebhookReceiver() as rx:
        emu.add_webhook("wh1", rx.url)
        emu.add_webhook("wh2", rx.url)
        for i in range(7):
            api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "wh1", "requestBody": {"eventName": "test", "i": i}}, headers)
        api(emu, "POST", E.TRIGGER_PATH, {"webhookId": "wh2"}, headers)
    env = api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "wh1"}, headers)
    assert env["data"]["totalCount"] == 7
    assert [e["requestBody"]["i"] for e in env["data"]["list"]] == [6, 5, 4, 3, 2, 1, 0]
    env = api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "wh1", "page": 2, "limit": 3}, headers)
    assert [e["requestBody"]["i"] for e in env["data"]["list"]] == [3, 2, 1]
    # JSON.parse reads 2.0 and 3e0 as integers, as the API (a JavaScript server) does.
    env = api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "wh1", "page": 2.0, "limit": 3e0}, headers)
    assert [e["requestBody"]["i"] for e in env["data"]["list"]] == [3, 2, 1]
    env = api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "wh1", "page": None, "limit": None}, headers)
    assert env["data"]["totalCount"] == 7
    assert api(emu, "POST", "/api/v3/get-webhook-logs", {"webhookId": "unknown"}, headers)["data"] == {"totalCount": 0, "list": []}
    for bad in ({"webhookId": "wh1", "limit": 51}, {"webhookId": "wh1", "page": 0}, {"webhookId": "wh1", "page": True}, {"webhookId": "wh1", "page": 1.5},
                {"webhookId": "wh1", "limit": "5"}, {"page": 1}):
        assert_error(api(emu, "POST", "/api/v3/get-webhook-logs", bad, headers), 400, E.APICODE_INVALID_ARGUMENT)


def test_invalid_argument_http_status_knob(emu):
    emu.invalid_argument_http_status = 400
    status, env = call_json(emu, "POST", "/api/v3/create-webhook", {}, bearer(emu))
    assert status == 400 and env["statusCode"] == 400


@pytest.mark.parametrize("length,http_status,api_code", [
    ("abc", 400, E.APICODE_INVALID_ARGUMENT),
    ("0\r\nContent-Length: 2", 400, E.APICODE_INVALID_ARGUMENT),  # two that differ: the first framed it
    (str(E.MAX_BODY_BYTES + 1), 413, E.APICODE_PAYLOAD_TOO_LARGE),
])
def test_an_unreadable_body_is_a_failure_envelope(emu, length, http_status, api_code):
    # Every failure envelope carries its apiCode and requestId (genauth-v3.md
    # section 1); these two had {statusCode, message} alone.
    import socket
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as s:
        s.sendall(f"POST {E.TRIGGER_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {length}\r\n\r\n".encode())
        resp = http.client.HTTPResponse(s)
        resp.begin()
        assert resp.status == http_status
        assert resp.getheader("connection") == "close"
        assert_error(json.loads(resp.read()), http_status, api_code)


@pytest.mark.parametrize("size_line", [b"-1", b"-0", b"+5", b"0x5", b"1_0"])
def test_a_chunk_size_that_is_not_hex_digits_is_refused(emu, size_line):
    # int(line, 16) took '-1', and rfile.read(-1) then read until the client
    # hung up, however much it sent past MAX_BODY_BYTES, and answered nothing.
    import socket
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as s:
        s.sendall(f"POST {E.TRIGGER_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  f"Transfer-Encoding: chunked\r\n\r\n".encode() + size_line + b"\r\n{}\r\n")
        s.shutdown(socket.SHUT_WR)
        resp = http.client.HTTPResponse(s)
        resp.begin()
        assert resp.status == 400
        assert_error(json.loads(resp.read()), 400, E.APICODE_INVALID_ARGUMENT)


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_json_as_deep_as_the_client_sends_is_delivered(emu, receiver, auth):
    # The client sends a requestBody nested genauth_c.MAX_DEPTH (500) levels;
    # the signature check's js_stringify failed on it with RecursionError.
    emu.add_webhook("wh1", receiver.url)
    data = []
    for _ in range(498):
        data = [data]
    body = {"webhookId": "wh1", "requestBody": {"eventName": "test", "data": data}}  # 500 levels
    headers = bearer(emu) if auth == "token" else E.signed_headers("POST", E.TRIGGER_PATH, body, AK, SK)
    status, env = call_json(emu, "POST", E.TRIGGER_PATH, body, headers)
    assert (status, env["statusCode"]) == (200, 200), env
    assert receiver.received[0].json["data"] == data


@pytest.mark.parametrize("depth", [502, 5000])
@pytest.mark.parametrize("auth", ["token", "signature"])
def test_json_nested_too_deep_is_an_invalid_argument(emu, receiver, depth, auth):
    # json.loads raised RecursionError past ~1000 levels: a traceback on
    # stderr and the connection closed with no answer.
    emu.add_webhook("wh1", receiver.url)
    depth -= 2  # inside the request's object and requestBody
    nested = "[" * depth + "]" * depth
    raw = ('{"webhookId":"wh1","requestBody":{"eventName":"test","data":%s}}' % nested).encode()
    # Signed over another body: the parse and the check of the signature come first.
    headers = bearer(emu) if auth == "token" else E.signed_headers("POST", E.TRIGGER_PATH, {}, AK, SK)
    status, _, data = call(emu, "POST", E.TRIGGER_PATH, headers=headers, raw=raw)
    assert status == 200
    assert_error(json.loads(data), 400, E.APICODE_INVALID_ARGUMENT)
    assert "nested" in json.loads(data)["message"]
    # The receiver's own parse of a delivery such as this one is no traceback either.
    status, _, data = call(receiver, "POST", "/hook", raw=raw)
    assert status == 200


@pytest.mark.parametrize("content_type,status_code", [
    ("application/json", 200), ("Application/JSON; charset=utf-8", 200),
    ("text/plain", 400), ("application/x-www-form-urlencoded", 400), (None, 400),
])
def test_a_body_counts_only_when_sent_as_json(emu, receiver, content_type, status_code):
    # The API's body parser reads only a body declared application/json; the
    # emulator read any body as JSON, so it passed a client that sent JSON
    # under another type, or none, which the API would refuse.
    emu.add_webhook("wh1", receiver.url)
    headers = bearer(emu)
    data = json.dumps({"webhookId": "wh1"}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=5)
    try:
        conn.putrequest("POST", E.TRIGGER_PATH)
        for name, value in headers.items():
            conn.putheader(name, value)
        if content_type is not None:
            conn.putheader("Content-Type", content_type)
        conn.putheader("Content-Length", str(len(data)))
        conn.endheaders(data)
        env = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert env["statusCode"] == status_code, env
    if status_code == 400:
        assert_error(env, 400, E.APICODE_INVALID_ARGUMENT)
        assert "application/json" in env["message"] and receiver.received == []
