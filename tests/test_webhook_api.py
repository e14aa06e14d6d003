"""The eight webhook methods: what each sends on the wire (method, path,
query, exact body), the argument checks made before anything is sent, GET
signatures end to end, and every method against the emulator."""
import asyncio
import json
import urllib.parse

import pytest

from conftest import AK, SK
from rawserver import Response

import genauth_c
from genauth_c import ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver, sign, string_to_sign

JSON = "application/json"


def api_requests(fake):
    return [r for r in fake.server.requests if "get-management-token" not in r.path]


def only_call(fake):
    (req,) = api_requests(fake)
    parts = urllib.parse.urlsplit(req.path)
    return req, parts.path, parts.query


# (method name, args, kwargs, HTTP method, path, query, body bytes or None)
WIRE = [
    ("create_webhook", (JSON, ["user:created", "login"], "http://x/hook", "hook"), {},
     "POST", "/api/v3/create-webhook", "",
     b'{"contentType":"application/json","events":["user:created","login"],'
     b'"url":"http://x/hook","name":"hook"}'),
    ("create_webhook", (JSON, ("test",), "http://x/h", "n", False, "s3"),
     {"retry_config": {"enabled": True, "count": 3, "delayUnit": "Second"}},
     "POST", "/api/v3/create-webhook", "",
     b'{"contentType":"application/json","events":["test"],"url":"http://x/h",'
     b'"name":"n","enabled":false,"secret":"s3",'
     b'"retryConfig":{"enabled":true,"count":3,"delayUnit":"Second"}}'),
    ("list_webhooks", (), {}, "GET", "/api/v3/list-webhooks", "", None),
    ("list_webhooks", (1, 10), {}, "GET", "/api/v3/list-webhooks", "page=1&limit=10", None),
    ("list_webhooks", (), {"limit": 5}, "GET", "/api/v3/list-webhooks", "limit=5", None),
    ("get_webhook", ("wh1",), {}, "GET", "/api/v3/get-webhook", "webhookId=wh1", None),
    ("get_webhook", ("a/b c&d=é",), {}, "GET", "/api/v3/get-webhook",
     urllib.parse.urlencode({"webhookId": "a/b c&d=é"}), None),
    ("update_webhook", ("wh1",), {"enabled": True, "name": "x"}, "POST",
     "/api/v3/update-webhook", "", b'{"webhookId":"wh1","name":"x","enabled":true}'),
    ("update_webhook", ("wh1", "n", "u", ["a"], JSON, False, "s"),
     {"retry_config": {}}, "POST", "/api/v3/update-webhook", "",
     b'{"webhookId":"wh1","name":"n","url":"u","events":["a"],'
     b'"contentType":"application/json","enabled":false,"secret":"s","retryConfig":{}}'),
    ("delete_webhook", (["a", "b"],), {}, "POST", "/api/v3/delete-webhook", "",
     b'{"webhookIds":["a","b"]}'),
    # An empty array still goes out as one where a payload holds it
    # (webhook_ids=() is refused: REFUSED).
    ("trigger_webhook", ("wh1", None, {"ids": []}), {}, "POST", "/api/v3/trigger-webhook", "",
     b'{"webhookId":"wh1","requestBody":{"ids":[]}}'),
    ("get_webhook_logs", ("wh1",), {}, "POST", "/api/v3/get-webhook-logs", "",
     b'{"webhookId":"wh1"}'),
    ("get_webhook_logs", ("wh1", 2, None), {}, "POST", "/api/v3/get-webhook-logs", "",
     b'{"webhookId":"wh1","page":2}'),
    ("get_webhook_event_list", (), {}, "GET", "/api/v3/get-webhook-event-list", "", None),
    ("trigger_webhook", ("wh1", None, {"a": 1}), {}, "POST", "/api/v3/trigger-webhook", "",
     b'{"webhookId":"wh1","requestBody":{"a":1}}'),
]


@pytest.mark.parametrize("name,args,kwargs,method,path,query,body", WIRE)
def test_on_the_wire(fake, client_for, name, args, kwargs, method, path, query, body):
    client = client_for(fake.server.url)
    env = getattr(client, name)(*args, **kwargs)
    assert env == fake.envelope
    req, got_path, got_query = only_call(fake)
    assert (req.method, got_path, got_query) == (method, path, query)
    if body is None:
        assert req.body == b""
        assert req.header("content-length") in (None, "0")
    else:
        assert req.body == body
    assert req.header("authorization").startswith("Bearer ")


def test_get_after_post_on_one_connection(fake, client_for):
    client = client_for(fake.server.url)
    client.get_webhook("a")
    client.trigger_webhook("b")
    client.list_webhooks(page=3)
    client.delete_webhook(["c"])
    got = [(r.method, r.path, r.body) for r in api_requests(fake)]
    assert got == [
        ("GET", "/api/v3/get-webhook?webhookId=a", b""),
        ("POST", "/api/v3/trigger-webhook", b'{"webhookId":"b"}'),
        ("GET", "/api/v3/list-webhooks?page=3", b""),
        ("POST", "/api/v3/delete-webhook", b'{"webhookIds":["c"]}'),
    ]
    assert fake.server.connections == 1


BAD = [
    ("create_webhook", (JSON, "user:created", "u", "n"), {}, TypeError,
     "events: expected a list or tuple of str, got str"),
    ("create_webhook", (JSON, ["a", 1], "u", "n"), {}, TypeError, "events[1]: expected a non-empty str, got int"),
    ("create_webhook", (JSON, ["a"], "u", "n", 1), {}, TypeError, "enabled: expected bool, got int"),
    ("create_webhook", (JSON, ["a"], "u", None), {}, TypeError,
     "name: expected a non-empty str, got NoneType"),
    ("create_webhook", (JSON, ["a"], "u\x00", "n"), {}, ValueError, "url: must not contain NUL"),
    ("create_webhook", (JSON, ["a"], "u", "n"), {"retry_config": [1]}, TypeError, "retry_config"),
    ("create_webhook", (JSON, ["a"], "u"), {}, TypeError,
     "ManagementClient.create_webhook() missing 1 required positional argument: 'name'"),
    ("create_webhook", (JSON, ["a"], "u", "n", True, "s", {}), {}, TypeError,
     "ManagementClient.create_webhook() takes from 5 to 7 positional arguments but 8 were given"),
    ("list_webhooks", (True,), {}, TypeError, "page: expected a positive int, got bool"),
    ("list_webhooks", (0,), {}, ValueError, "page: must be a positive int, got 0"),
    ("list_webhooks", (1, -5), {}, ValueError, "limit: must be a positive int"),
    ("list_webhooks", (1, 1.5), {}, TypeError, "limit: expected a positive int, got float"),
    ("list_webhooks", (), {"pages": 1}, TypeError,
     "ManagementClient.list_webhooks() got an unexpected keyword argument 'pages'"),
    ("get_webhook", (), {}, TypeError,
     "ManagementClient.get_webhook() missing 1 required positional argument: 'webhook_id'"),
    ("get_webhook", ("a",), {"webhook_id": "b"}, TypeError,
     "ManagementClient.get_webhook() got multiple values for argument 'webhook_id'"),
    ("get_webhook", ("",), {}, ValueError, "webhook_id: expected a non-empty str"),
    ("get_webhook", (b"a",), {}, TypeError, "webhook_id: expected a non-empty str, got bytes"),
    ("update_webhook", ("w",), {"events": {"a"}}, TypeError, "events: expected a list or tuple"),
    ("update_webhook", ("w",), {"secret": "\ud800"}, ValueError, "secret: holds a lone surrogate"),
    ("delete_webhook", ("a",), {}, TypeError, "webhook_ids: expected a list or tuple of str, got str"),
    ("delete_webhook", ([None],), {}, TypeError, "webhook_ids[0]: expected a non-empty str, got NoneType"),
    ("get_webhook_logs", ("w", "1"), {}, TypeError, "page: expected a positive int, got str"),
    ("get_webhook_logs", ("w", 2**60), {}, ValueError, "page: must be at most"),
    ("get_webhook_event_list", (1,), {}, TypeError,
     "ManagementClient.get_webhook_event_list() takes 1 positional argument but 2 were given"),
]


@pytest.mark.parametrize("name,args,kwargs,exc,text", BAD)
def test_bad_arguments_fail_before_sending(fake, client_for, name, args, kwargs, exc, text):
    client = client_for(fake.server.url)
    with pytest.raises(exc) as info:
        getattr(client, name)(*args, **kwargs)
    assert text in str(info.value)
    assert fake.server.requests == []
    assert fake.server.connections == 0


# ---- the same bad input, refused the same way on every path ------------------

# (method, args, kwargs, exception, its whole message, the CLI's arguments
# for the same input or None). None is left out.
REFUSED = [
    ("trigger_webhook", (" ",), {}, ValueError,
     "webhook_id: expected a non-empty str, got only whitespace", ["trigger", " "]),
    ("trigger_webhook", ("\t\r\n",), {}, ValueError,
     "webhook_id: expected a non-empty str, got only whitespace", ["trigger", "\t\r\n"]),
    ("get_webhook", (" ",), {}, ValueError,
     "webhook_id: expected a non-empty str, got only whitespace",
     ["webhooks", "get", "--webhook-id", " "]),
    ("get_webhook_logs", ("  ",), {"page": 1}, ValueError,
     "webhook_id: expected a non-empty str, got only whitespace",
     ["webhooks", "logs", "--webhook-id", "  ", "--page", "1"]),
    ("update_webhook", ("\n",), {"name": "n"}, ValueError,
     "webhook_id: expected a non-empty str, got only whitespace",
     ["webhooks", "update", "--webhook-id", "\n", "--name", "n"]),
    # Lists of names: the command line drops blank names and refuses a list
    # left empty in its own words (test_cli.py).
    ("delete_webhook", ([],), {}, ValueError,
     "webhook_ids: expected at least one str, got an empty list", None),
    ("delete_webhook", (("a", ""),), {}, ValueError,
     "webhook_ids[1]: expected a non-empty str, got ''", None),
    ("delete_webhook", (["a", " "],), {}, ValueError,
     "webhook_ids[1]: expected a non-empty str, got only whitespace", None),
    ("create_webhook", (JSON, (), "http://x/h", "n"), {}, ValueError,
     "events: expected at least one str, got an empty tuple", None),
    ("create_webhook", (JSON, ["test", ""], "http://x/h", "n"), {}, ValueError,
     "events[1]: expected a non-empty str, got ''", None),
    ("update_webhook", ("w",), {"events": []}, ValueError,
     "events: expected at least one str, got an empty list", None),
    # A webhook's url and name: the command line passes '' on as given.
    ("create_webhook", (JSON, ["test"], "", "n"), {}, ValueError,
     "url: expected a non-empty str, got ''",
     ["webhooks", "create", "--events", "test", "--url", "", "--name", "n"]),
    ("create_webhook", (JSON, ["test"], "http://x/h", " "), {}, ValueError,
     "name: expected a non-empty str, got only whitespace",
     ["webhooks", "create", "--events", "test", "--url", "http://x/h", "--name", " "]),
    ("update_webhook", ("w",), {"url": " "}, ValueError,
     "url: expected a non-empty str, got only whitespace",
     ["webhooks", "update", "--webhook-id", "w", "--url", " "]),
    ("update_webhook", ("w",), {"name": ""}, ValueError,
     "name: expected a non-empty str, got ''",
     ["webhooks", "update", "--webhook-id", "w", "--name", ""]),
    # A webhook's shared secret, sent by the server with each delivery: an
    # empty one proves nothing (the command line's --secret-file refuses an
    # empty file in its own words, test_cli.py).
    ("create_webhook", (JSON, ["test"], "http://x/h", "n", True, ""), {}, ValueError,
     "secret: expected a non-empty str, got ''", None),
    ("update_webhook", ("w",), {"secret": "  "}, ValueError,
     "secret: expected a non-empty str, got only whitespace", None),
    # ... and sent as a header of each delivery: the command line's
    # --secret-file refuses a second line in its own words.
    ("create_webhook", (JSON, ["test"], "http://x/h", "n", True, "s3\r\ncret"), {}, ValueError,
     "secret: must not contain CR, LF or other control characters", None),
    ("update_webhook", ("w",), {"secret": "s3\tcret"}, ValueError,
     "secret: must not contain CR, LF or other control characters", None),
    ("update_webhook", ("w",), {"secret": "s3cret\x7f"}, ValueError,
     "secret: must not contain CR, LF or other control characters", None),
    # Longer than any id, name, URL or secret (MAX_STR_ARG_BYTES): get_webhook's
    # percent-encoded into a query that libcurl failed to build, once sent.
    ("get_webhook", ("é" * 32768 + "a",), {}, ValueError,
     "webhook_id: must be at most 65536 bytes of UTF-8, got 65537",
     ["webhooks", "get", "--webhook-id", "é" * 32768 + "a"]),
    ("trigger_webhook", ("a" * 300_000,), {}, ValueError,
     "webhook_id: must be at most 65536 bytes of UTF-8, got 300000", None),
    ("delete_webhook", (["a", "b" * 65537],), {}, ValueError,
     "webhook_ids[1]: must be at most 65536 bytes of UTF-8, got 65537", None),
    ("create_webhook", (JSON, ["test"], "http://x/" + "p" * 65536, "n"), {}, ValueError,
     "url: must be at most 65536 bytes of UTF-8, got 65545", None),
    # The reference's two content types: the command line's --content-type
    # takes no other (argparse's invalid choice, test_cli.py).
    ("create_webhook", ("text/plain", ["test"], "http://x/h", "n"), {}, ValueError,
     "content_type: expected 'application/json' or 'application/x-www-form-urlencoded'", None),
    ("create_webhook", ("", ["test"], "http://x/h", "n"), {}, ValueError,
     "content_type: expected 'application/json' or 'application/x-www-form-urlencoded'", None),
    ("update_webhook", ("w",), {"content_type": "application/json; charset=utf-8"}, ValueError,
     "content_type: expected 'application/json' or 'application/x-www-form-urlencoded'", None),
    ("update_webhook", ("w",), {"content_type": "APPLICATION/JSON"}, ValueError,
     "content_type: expected 'application/json' or 'application/x-www-form-urlencoded'", None),
]


def _refused(exc_info, exc, text):
    assert exc_info.type is exc and str(exc_info.value) == text


@pytest.mark.parametrize("name,args,kwargs,exc,text,argv", REFUSED)
def test_bad_input_refused_alike_on_every_path(fake, client_for, monkeypatch, capsys,
                                               name, args, kwargs, exc, text, argv):
    """The sync method, the coroutine, a batch's call and the command line
    refuse the same input with the same words, before anything is sent."""
    with pytest.raises(exc) as info:
        getattr(client_for(fake.server.url), name)(*args, **kwargs)
    _refused(info, exc, text)

    call = dict(zip(("webhook_id", "request_headers", "request_body"), args), **kwargs)
    param = text.split(":")[0].split("[")[0]
    in_a_batch = f"calls[1]['{param}']{text[len(param):]}"

    async def on_a_loop():
        async with genauth_c.AsyncManagementClient(AK, SK, host=fake.server.url) as aclient:
            with pytest.raises(exc) as info:
                await getattr(aclient, name)(*args, **kwargs)
            _refused(info, exc, text)
            if name == "trigger_webhook":
                with pytest.raises(exc) as info:
                    await aclient.trigger_webhooks([{"webhook_id": "ok"}, call])
                _refused(info, exc, in_a_batch)
    asyncio.run(on_a_loop())

    if name == "trigger_webhook":
        with pytest.raises(exc) as info:
            client_for(fake.server.url).trigger_webhooks([{"webhook_id": "ok"}, call])
        _refused(info, exc, in_a_batch)

    if argv is not None:
        _cli_refuses(fake, monkeypatch, capsys, argv, text)

    assert fake.server.requests == []
    assert fake.server.connections == 0


def _cli_refuses(fake, monkeypatch, capsys, argv, text):
    """The command line, in this process, against `fake`: usage error `text`."""
    from genauth_c import cli
    for var in ("ACCESS_KEY_ID", "ACCESS_KEY_SECRET", "HOST"):
        monkeypatch.delenv("AUTHING_" + var, raising=False)
    monkeypatch.setenv("GENAUTH_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("GENAUTH_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("GENAUTH_HOST", fake.server.url)
    capsys.readouterr()
    assert cli.main(argv) == cli.EXIT_USAGE
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"genauth-c: error: {text}\n")


def test_a_secret_file_with_a_control_character_is_refused(fake, monkeypatch, capsys, tmp_path):
    # One line, so --secret-file takes it; the method refuses the tab.
    path = tmp_path / "secret"
    path.write_bytes(b"s3\tcret\n")
    _cli_refuses(fake, monkeypatch, capsys,
                 ["webhooks", "update", "--webhook-id", "w", "--secret-file", str(path)],
                 "secret: must not contain CR, LF or other control characters")
    assert fake.server.requests == []
    assert fake.server.connections == 0


def test_the_longest_str_is_sent_percent_encoded(fake, client_for):
    """65536 bytes of UTF-8 (the most a str argument holds) in a GET's query,
    each byte percent-encoded: sent, after the token, in one request."""
    client = client_for(fake.server.url)
    webhook_id = "é" * 32768
    assert client.get_webhook(webhook_id)["statusCode"] == 200
    req, path, query = only_call(fake)
    assert (req.method, path) == ("GET", "/api/v3/get-webhook")
    assert query == "webhookId=" + "%C3%A9" * 32768


def test_constructor_takes_the_official_sdks_positional_parameters(fake):
    with ManagementClient(AK, SK, fake.server.url, 3.0, "zh-CN", False, "wss://events", None) as c:
        assert c.access_key_id == AK
        assert c.lang == "zh-CN"
        assert c.use_unverified_ssl is False
        assert c.timeout == 3.0
        assert SK not in repr(c) and not any(
            getattr(c, a) == SK for a in dir(c) if not a.startswith("_") and not callable(getattr(c, a)))
        c.get_webhook_event_list()
    with pytest.raises(TypeError, match="websocket_host"):
        ManagementClient(AK, SK, websocket_host=1)
    with pytest.raises(AttributeError):
        c.lang = "en"  # type: ignore[misc]


def test_signature_mode_get_is_signed_over_the_query(fake, client_for):
    """The GET vectors' rule, checked on what really went out."""
    client = client_for(fake.server.url, auth="signature", brand="authing",
                        access_key_id="AKID", access_key_secret="SECRET",
                        tenant_id="TENANT1", lang="zh-CN")
    client.list_webhooks(page=1, limit=10)
    client.get_webhook("a b/é")
    client.get_webhook_event_list()
    reqs = api_requests(fake)
    resources = ["/api/v3/list-webhooks?limit=10&page=1",
                 "/api/v3/get-webhook?webhookId=a b/é",
                 "/api/v3/get-webhook-event-list"]
    for req, resource in zip(reqs, resources):
        assert req.method == "GET" and req.body == b""
        assert req.header("content-type") is None
        signed = [(k.lower(), v) for k, v in req.headers
                  if k.lower() == "date" or k.lower().startswith("x-authing-")]
        text = string_to_sign("GET", signed, resource.split("?")[0],
                              dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(req.path).query)))
        assert text.endswith("\n" + resource)
        assert req.header("authorization") == "authing AKID:" + sign("SECRET", text)
    assert len(reqs) == 3


def test_401_is_retried_once_on_a_get(fake, client_for):
    client = client_for(fake.server.url)
    client.list_webhooks()
    fake.valid_tokens.clear()  # the server forgets the token
    env = client.list_webhooks(limit=2)
    assert env == fake.envelope
    assert fake.token_fetches == 2
    assert [r.path for r in api_requests(fake)] == [
        "/api/v3/list-webhooks", "/api/v3/list-webhooks?limit=2", "/api/v3/list-webhooks?limit=2"]


def test_raise_for_status_on_every_method(fake, client_for):
    fake.envelope = {"statusCode": 404, "message": "Webhook x not found", "apiCode": 1801,
                     "requestId": "r1"}
    client = client_for(fake.server.url, raise_for_status=True)
    for call in (lambda: client.get_webhook("x"), lambda: client.delete_webhook(["x"]),
                 lambda: client.get_webhook_event_list()):
        with pytest.raises(genauth_c.APIError) as info:
            call()
        assert info.value.status_code == 404 and info.value.api_code == 1801
        assert info.value.response == fake.envelope


def test_envelope_kept_exactly(fake, client_for):
    fake.response = Response(200, b'{"statusCode":200,"message":"ok","data":{"totalCount":12345678901234567890,'
                                  b'"list":[{"b":1.0,"a":"\\u0000"}]}}',
                             [("Content-Type", "application/json")])
    client = client_for(fake.server.url)
    env = client.list_webhooks()
    assert env["data"]["totalCount"] == 12345678901234567890
    assert env["data"]["list"] == [{"b": 1.0, "a": "\x00"}]
    assert list(env["data"]["list"][0]) == ["b", "a"]


# ---- against the emulator ----------------------------------------------------


@pytest.fixture(scope="module")
def receiver():
    with WebhookReceiver() as rx:
        yield rx


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_every_method_against_the_emulator(receiver, auth):
    with Emulator("AKID", "SECRET") as emu, \
            ManagementClient("AKID", "SECRET", host=emu.url, auth=auth) as client:
        events = client.get_webhook_event_list()
        assert events["statusCode"] == 200
        names = [e["value"] for e in events["data"]["events"]]
        assert "user:created" in names

        created = client.create_webhook(JSON, ["user:created", "test"], receiver.url + "/hook",
                                        "first", True, "s3cret",
                                        retry_config={"enabled": True, "count": 2})
        assert created["statusCode"] == 200, created
        hook = created["data"]
        hook_id = hook["webhookId"]
        assert (hook["name"], hook["enabled"], hook["secret"]) == ("first", True, "s3cret")
        assert hook["retryConfig"] == {"enabled": True, "count": 2}
        second = client.create_webhook(JSON, ("login",), receiver.url + "/h2", "second")
        assert second["statusCode"] == 200

        listed = client.list_webhooks(page=1, limit=1)
        assert listed["data"]["totalCount"] == 2
        assert [h["webhookId"] for h in listed["data"]["list"]] == [hook_id]
        assert client.list_webhooks()["data"]["totalCount"] == 2

        got = client.get_webhook(hook_id)
        assert got["data"] == hook
        missing = client.get_webhook("no/such id")
        assert missing["statusCode"] == 404

        updated = client.update_webhook(hook_id, name="renamed", enabled=None)
        assert updated["data"]["name"] == "renamed"
        assert updated["data"]["url"] == hook["url"]  # only what was given changed
        assert updated["data"]["enabled"] is True

        fired = client.trigger_webhook(hook_id, request_body={"eventName": "test", "data": {"n": 1}})
        assert fired["statusCode"] == 200, fired
        logs = client.get_webhook_logs(hook_id, page=1, limit=10)
        assert logs["statusCode"] == 200
        assert logs["data"]["totalCount"] >= 1
        assert logs["data"]["list"][0]["webhookId"] == hook_id

        deleted = client.delete_webhook([hook_id, "unknown-id"])
        assert deleted["data"] == {"success": True}
        assert client.get_webhook(hook_id)["statusCode"] == 404
        assert client.list_webhooks()["data"]["totalCount"] == 1

        bad_limit = client.list_webhooks(limit=51)  # the server's rule
        assert bad_limit["statusCode"] == 400
        if auth == "signature":
            recs = [r for r in emu.requests if r.method == "GET"]
            assert recs and all(r.auth == "signature" and r.auth_error is None for r in recs)


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_every_wire_row_is_answered_by_its_emulator_route(auth):
    """Each row of WIRE, sent to the emulator: authenticated, and answered
    by the handler its route names (an envelope, not the 404 of a path no
    route serves, nor a connection the handler's exception closed). A new
    method's route runs here from its WIRE row alone."""
    with Emulator("AKID", "SECRET") as emu, \
            ManagementClient("AKID", "SECRET", host=emu.url, auth=auth) as client:
        for name, args, kwargs, method, path, _query, _body in WIRE:
            env = getattr(client, name)(*args, **kwargs)
            assert isinstance(env.get("statusCode"), int), (name, env)
            assert not env.get("message", "").startswith("Cannot "), (name, env)
            rec = emu.requests[-1]
            assert (rec.method, rec.path) == (method, path), name
            assert rec.auth == auth and rec.auth_error is None, (name, env)


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_the_emulator_reads_numbers_as_a_javascript_server(auth):
    """Token mode sends 3.0 as written, signature mode in JSON.stringify's
    form (3): the API's JSON.parse reads the integer 3 either way, and so
    must the emulator."""
    with Emulator("AKID", "SECRET") as emu, \
            ManagementClient("AKID", "SECRET", host=emu.url, auth=auth) as client:
        created = client.create_webhook(
            JSON, ["test"], "http://127.0.0.1:1/", "n",
            retry_config={"enabled": True, "count": 3.0, "delay": 1e1})
        assert created["statusCode"] == 200, created
        # And keeps it as the number 3, which JSON.stringify answers as 3.
        hook_id = created["data"]["webhookId"]
        expected = {"enabled": True, "count": 3, "delay": 10}
        for answered in (created, client.get_webhook(hook_id)):
            config = answered["data"]["retryConfig"]
            assert config == expected and all(type(config[k]) is int for k in ("count", "delay"))
        updated = client.update_webhook(hook_id, retry_config={"enabled": True, "count": 2e0})
        assert type(updated["data"]["retryConfig"]["count"]) is int
        refused = client.create_webhook(JSON, ["test"], "http://127.0.0.1:1/", "n",
                                        retry_config={"enabled": True, "count": 2.5})
        assert refused["statusCode"] == 400, refused


def test_401_retry_against_the_emulator(receiver):
    with Emulator("AKID", "SECRET") as emu, \
            ManagementClient("AKID", "SECRET", host=emu.url) as client:
        assert client.list_webhooks()["statusCode"] == 200
        emu.expire_tokens()
        assert client.get_webhook_event_list()["statusCode"] == 200
        assert client.token_fetches == 2


def test_none_arguments_are_left_out(fake, client_for):
    client = client_for(fake.server.url)
    client.create_webhook(JSON, ["a"], "u", "n", None, None, retry_config=None)
    client.update_webhook("w", None, None, None, None, None, None)
    client.list_webhooks(None, None)
    client.get_webhook_logs("w", None, None)
    bodies = [(r.path, r.body) for r in api_requests(fake)]
    assert bodies == [
        ("/api/v3/create-webhook", b'{"contentType":"application/json","events":["a"],"url":"u","name":"n"}'),
        ("/api/v3/update-webhook", b'{"webhookId":"w"}'),
        ("/api/v3/list-webhooks", b""),
        ("/api/v3/get-webhook-logs", b'{"webhookId":"w"}'),
    ]
    assert json.loads(bodies[0][1])["events"] == ["a"]


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_content_type_only_with_a_body(fake, client_for, auth):
    """A GET carries no body, so no Content-Type (the official Python SDK
    sends none either); every POST says its body is JSON. One header of each
    name, and no Expect."""
    options = {"auth": "signature", "brand": "genauth"} if auth == "signature" else {}
    client = client_for(fake.server.url, **options)
    if auth == "signature":
        fake.server.handler = lambda req: Response.json(fake.envelope)
    for name, args, kwargs, method, _path, _query, _body in WIRE:
        getattr(client, name)(*args, **kwargs)
    reqs = api_requests(fake)
    assert [r.method for r in reqs] == [row[3] for row in WIRE]
    for req in reqs:
        names = [k.lower() for k, _ in req.headers]
        assert len(names) == len(set(names)), req.headers
        assert "expect" not in names
        if req.method == "GET":
            assert req.header("content-type") is None, req.path
            assert req.header("content-length") is None and req.body == b""
        else:
            assert req.header("content-type") == JSON, req.path
            assert req.header("content-length") == str(len(req.body))


def test_every_method_signed_as_the_server_rebuilds_it(fake, client_for):
    """Each row of WIRE signed, checked against test_signature's oracle: the
    resource from the JSON body as JavaScript parses it (POST) or from the
    query as the server decodes it (GET)."""
    from test_signature import canonical_resource, expected_authorization, js_parse

    fake.server.handler = lambda req: Response.json(fake.envelope)
    client = client_for(fake.server.url, auth="signature", brand="authing",
                        access_key_id="AKID", access_key_secret="SECRET",
                        tenant_id="TENANT1", lang="en-US")
    rows = WIRE + [("get_webhook", ("+%2B é\u2028&=?#",), {}, "GET", "/api/v3/get-webhook",
                    None, None)]
    for name, args, kwargs, *_ in rows:
        getattr(client, name)(*args, **kwargs)
    reqs = api_requests(fake)
    assert len(reqs) == len(rows)
    for req in reqs:
        parts = urllib.parse.urlsplit(req.path)
        if req.method == "GET":
            params = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
        else:
            params = js_parse(req.body)
        resource = canonical_resource(parts.path, params)
        assert req.header("authorization") == expected_authorization(
            req.method, req.headers, resource, "authing", ak="AKID", sk="SECRET"), resource
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(reqs[-1].path).query)) == {
        "webhookId": "+%2B é\u2028&=?#"}
