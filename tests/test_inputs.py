"""Bad input fails before anything is sent; good input survives the round
trip exactly; secrets never show."""
import asyncio
import collections
import decimal
import enum
import json
import math
import traceback

import pytest

from conftest import AK, SK
from rawserver import Response

import genauth_c
from genauth_c import ManagementClient


@pytest.fixture
def echo(fake):
    """trigger-webhook answers data.response = the requestBody it parsed."""
    def handler(req):
        if "trigger-webhook" in req.path:
            got = json.loads(req.body)
            return Response(body=json.dumps(
                {"statusCode": 200, "message": "ok",
                 "data": {"response": got.get("requestBody")}},
                ensure_ascii=False).encode())
        return fake(req)

    fake.server.handler = handler
    return fake


class Color(enum.IntEnum):
    RED = 1


class FloatSub(float):
    pass


class MyMapping(collections.abc.Mapping):
    def __init__(self, d):
        self._d = d

    def __getitem__(self, k):
        return self._d[k]

    def __iter__(self):
        return iter(self._d)

    def __len__(self):
        return len(self._d)


ROUND_TRIPS = [
    {"big": 2**64 + 1, "neg": -(10**40), "zero": 0, "i53": 2**53 + 1},
    {"huge": 10**100 + 7, "neg_huge": -(7**300), "list": [10**70, -(10**64)]},
    {"floats": [0.1, 1.0, -0.0, 1e-7, 1e16, 1.7976931348623157e308, 5e-324, 123.456]},
    {"nul": "a\x00b", "key\x00nul": 1, "\x00": "\x00"},
    {"astral": "𝄞😀", "cjk": "中文", "escapes": "\"\\/\b\f\n\r\t\x01\x1f\x7f"},
    {"nested": {"a": [[], {}, [{"b": [None, True, False]}]]}},
    {"order": {"z": 1, "a": 2, "10": 3, "2": 4}},
    {"u2028": "\u2028\u2029", "bom": "\ufeff"},
]


@pytest.mark.parametrize("body", ROUND_TRIPS)
def test_json_round_trip_is_exact(echo, client_for, body):
    client = client_for(echo.server.url)
    got = client.trigger_webhook("wh1", request_body=body)["data"]["response"]
    assert got == body
    assert json.dumps(got) == json.dumps(body)  # same key order, same floats
    for k in body:
        if isinstance(body[k], float):
            assert math.copysign(1, got[k]) == math.copysign(1, body[k])


def test_python_types_follow_json_dumps(echo, client_for):
    client = client_for(echo.server.url)
    body = {"tuple": (1, 2), "enum": Color.RED, "fsub": FloatSub(1.5),
            1: "int key", 2.5: "float key", False: "bool key", None: "none key",
            "mapping": MyMapping({"x": 1}), "od": collections.OrderedDict(b=1, a=2)}
    got = client.trigger_webhook("wh1", request_body=body)["data"]["response"]
    assert got == json.loads(json.dumps(body, default=dict))
    assert client.trigger_webhook("wh1", request_body=MyMapping({"m": 1}))[
        "data"]["response"] == {"m": 1}


def test_response_numbers_exact(fake, client_for):
    fake.response = Response(body=b'{"statusCode":200,"data":{"response":'
                             b'{"big":123456789012345678901234567890,"f":1.0,'
                             b'"e":1E+2,"neg":-0,"inf":1e400,"s":"\\u0000x"}}}')
    client = client_for(fake.server.url)
    got = client.trigger_webhook("wh1")["data"]["response"]
    want = json.loads(fake.response.body)["data"]["response"]
    assert got == want
    assert type(got["f"]) is float and type(got["big"]) is int
    assert got["s"] == "\x00x" and got["inf"] == math.inf


circular = {"a": 1}
circular["self"] = circular
deep = {}
node = deep
for _ in range(genauth_c.MAX_DEPTH + 5):
    node["n"] = {}
    node = node["n"]

BAD_CALLS = [
    # (args, kwargs, exception, text the message must name)
    ((), {}, TypeError, "webhook_id"),
    ((None,), {}, TypeError, "webhook_id"),
    ((123,), {}, TypeError, "webhook_id"),
    (("",), {}, ValueError, "webhook_id"),
    (("\ud800",), {}, ValueError, "webhook_id"),
    (("wh", [1]), {}, TypeError, "request_headers"),
    (("wh", None, "body"), {}, TypeError, "request_body"),
    (("wh",), {"request_body": {"x": float("nan")}}, ValueError, "request_body['x']"),
    (("wh",), {"request_body": {"x": [1, float("inf")]}}, ValueError, "request_body['x'][1]"),
    (("wh",), {"request_body": {"x": {1, 2}}}, TypeError, "request_body['x']"),
    (("wh",), {"request_body": {"x": b"bytes"}}, TypeError, "request_body['x']"),
    (("wh",), {"request_body": {(1, 2): 1}}, TypeError, "request_body"),
    (("wh",), {"request_body": {"s": "\udc00"}}, ValueError, "request_body['s']"),
    (("wh",), {"request_body": circular}, ValueError, "circular"),
    (("wh",), {"request_body": deep}, ValueError, "request_body"),
    (("wh",), {"bogus": 1}, TypeError, "bogus"),
    # Names as long as a parameter's, unlike it in one character (non-ASCII,
    # NUL); a str subclass naming a parameter is that parameter.
    (("wh",), {"request_bod\u00ff": 1}, TypeError,
     "unexpected keyword argument 'request_bod\u00ff'"),
    (("wh",), {"request_bod\x00": 1}, TypeError,
     "unexpected keyword argument 'request_bod\x00'"),
    (("wh",), {type("Name", (str,), {})("request_body"): {"x": float("nan")}},
     ValueError, "request_body['x']"),
    (("wh", None, None, None), {}, TypeError, "takes from 2 to 4 positional arguments but 5 were given"),
    (("wh\x00x",), {}, ValueError, "webhook_id: must not contain NUL"),
]


@pytest.mark.parametrize("args,kwargs,exc,text", BAD_CALLS)
def test_bad_call_input_fails_before_sending(fake, client_for, args, kwargs, exc, text):
    client = client_for(fake.server.url)
    with pytest.raises(exc) as info:
        client.trigger_webhook(*args, **kwargs)
    assert text in str(info.value)
    assert fake.server.requests == []
    assert fake.server.connections == 0


# ---- lone surrogates: UTF-8 cannot carry them, so nothing holding one is sent

LONE = "\ud800"
SENT_OPTIONS = ["access_key_id", "access_key_secret", "host", "lang", "tenant_id",
                "brand", "auth", "websocket_host", "websocket_endpoint"]


@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("option", SENT_OPTIONS)
def test_a_lone_surrogate_in_an_option_is_named(fake, option, auth):
    kw = {"access_key_id": AK, "access_key_secret": SK, "host": fake.server.url, "auth": auth}
    kw[option] = kw.get(option, "x") + LONE
    for cls in (ManagementClient, genauth_c.AsyncManagementClient):
        with pytest.raises(ValueError) as info:
            cls(**kw)
        assert str(info.value) == f"{option}: holds a lone surrogate, which cannot be encoded as UTF-8"
    assert fake.server.connections == 0


HOOK = {"content_type": "application/json", "events": ["test"], "url": "http://h.example/x", "name": "n"}

SURROGATE_CALLS = [
    # (method, args, kwargs, what the message names)
    ("trigger_webhook", (LONE,), {}, "webhook_id"),
    ("trigger_webhook", ("w",), {"request_headers": {"X-" + LONE: "v"}}, "request_headers"),
    ("trigger_webhook", ("w",), {"request_headers": {"X-A": LONE}}, "request_headers['X-A']"),
    ("trigger_webhook", ("w",), {"request_body": {"d": ["a", "b" + LONE]}}, "request_body['d'][1]"),
    ("get_webhook", (LONE,), {}, "webhook_id"),
    ("get_webhook_logs", (LONE,), {}, "webhook_id"),
    ("delete_webhook", (["a", LONE],), {}, "webhook_ids[1]"),
    ("create_webhook", (), dict(HOOK, events=["test", LONE]), "events[1]"),
    ("create_webhook", (), dict(HOOK, url=HOOK["url"] + LONE), "url"),
    ("create_webhook", (), dict(HOOK, name=LONE), "name"),
    ("create_webhook", (), dict(HOOK, content_type=LONE), "content_type"),
    ("create_webhook", (), dict(HOOK, secret=LONE), "secret"),
    ("create_webhook", (), dict(HOOK, retry_config={"delayUnit": LONE}), "retry_config['delayUnit']"),
    ("update_webhook", ("w",), {"name": LONE}, "name"),
]


def _lone_surrogate_refused(exc_info, named):
    text = str(exc_info.value)
    assert text.startswith(named + ": ") and "lone surrogate" in text, text


@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("method,args,kwargs,named", SURROGATE_CALLS)
def test_a_lone_surrogate_in_a_call_is_named_and_nothing_sent(fake, client_for, method, args, kwargs,
                                                             named, auth):
    client = client_for(fake.server.url, auth=auth)
    with pytest.raises(ValueError) as info:
        getattr(client, method)(*args, **kwargs)
    _lone_surrogate_refused(info, named)

    async def on_a_loop():
        async with genauth_c.AsyncManagementClient(AK, SK, host=fake.server.url, auth=auth) as aclient:
            with pytest.raises(ValueError) as info:
                await getattr(aclient, method)(*args, **kwargs)
            _lone_surrogate_refused(info, named)
    asyncio.run(on_a_loop())
    if method == "trigger_webhook":
        call = dict(zip(("webhook_id", "request_headers", "request_body"), args), **kwargs)
        with pytest.raises(ValueError) as info:
            client.trigger_webhooks([{"webhook_id": "ok"}, call])
        param = named.split("[")[0]
        _lone_surrogate_refused(info, f"calls[1]['{param}']{named[len(param):]}")
    assert fake.server.requests == []
    assert fake.server.connections == 0


class FsPath:
    def __init__(self, path):
        self.path = path

    def __fspath__(self):
        return self.path


BAD_OPTIONS = [
    (("", SK), {}, ValueError, "access_key_id"),
    ((AK, ""), {}, ValueError, "access_key_secret"),
    ((None, SK), {}, TypeError, "access_key_id"),
    (("AK\r\nX-Evil: 1", SK), {}, ValueError, "access_key_id"),
    (("AK\x00", SK), {}, ValueError, "access_key_id"),
    ((AK, SK), {"lang": "zh\nCN"}, ValueError, "lang"),
    ((AK, SK), {"tenant_id": "t\r"}, ValueError, "tenant_id"),
    ((AK, SK), {"host": "ftp://example.com"}, ValueError, "host"),
    ((AK, SK), {"host": "example.com"}, ValueError, "host"),
    ((AK, SK), {"host": "https://a.example\r\n/x"}, ValueError, "host"),
    ((AK, SK), {"host": "https://user:pw@a.example"}, ValueError, "host"),
    ((AK, SK), {"host": "https://a.example:99999"}, ValueError, "host"),
    ((AK, SK), {"host": "https://a.example/?q=1"}, ValueError, "host"),
    ((AK, SK), {"host": "https://"}, ValueError, "host"),
    # Longer than DNS allows: refused when made, not when a call is sent.
    ((AK, SK), {"host": "https://" + "a" * 100_000}, ValueError, "host"),
    # Not an IPv6 address, long or short: refused when made too.
    ((AK, SK), {"host": "https://[" + "1" * 100_000 + "]"}, ValueError, "host"),
    ((AK, SK), {"host": "https://[zzz]"}, ValueError, "host"),
    ((AK, SK), {"timeout": 0}, ValueError, "timeout"),
    ((AK, SK), {"timeout": -1}, ValueError, "timeout"),
    ((AK, SK), {"timeout": float("inf")}, ValueError, "timeout"),
    ((AK, SK), {"timeout": float("nan")}, ValueError, "timeout"),
    ((AK, SK), {"timeout": "10"}, TypeError, "timeout"),
    # Once a long of milliseconds overflowed here and became 1 ms.
    ((AK, SK), {"timeout": 9.3e15}, ValueError, "timeout"),
    ((AK, SK), {"timeout": 1e300}, ValueError, "timeout"),
    ((AK, SK), {"timeout": 10**20}, ValueError, "timeout"),
    ((AK, SK), {"timeout": 10**400}, ValueError, "timeout"),  # beyond a float
    ((AK, SK), {"timeout": 1e9 + 1}, ValueError, "timeout"),
    ((AK, SK), {"timeout": float("-inf")}, ValueError, "timeout"),
    ((AK, SK), {"timeout": 0.0}, ValueError, "timeout"),
    ((AK, SK), {"timeout": -0.0}, ValueError, "timeout"),
    # Header values: every signed call would fail on them, so construction
    # refuses them.
    ((AK, SK), {"lang": "zh-CN\u4e2d"}, ValueError, "lang"),
    ((AK, SK), {"lang": "caf\xe9"}, ValueError, "lang"),
    ((AK, SK), {"tenant_id": "t\xe9"}, ValueError, "tenant_id"),
    (("AK\xe9", SK), {"auth": "signature"}, ValueError, "access_key_id"),
    # The scheme's word and the key id are parted by a space in the
    # authorization header: the client was made, and every call failed.
    (("AK ID", SK), {"auth": "signature"}, ValueError,
     "access_key_id: must not contain a space"),
    # Longer than servers take a header line (about 8 KiB): refused when
    # made. Each call failed instead, as a request head "longer than libcurl
    # builds (1 MiB: a GET's parameters)", naming neither the option nor a
    # GET it did not send.
    ((AK, SK), {"lang": "x" * (2 << 20)}, ValueError,
     "lang: longer than 8192 bytes"),
    ((AK, SK), {"tenant_id": "t" * 8193}, ValueError,
     "tenant_id: longer than 8192 bytes"),
    (("A" * 8193, SK), {"auth": "signature"}, ValueError,
     "access_key_id: longer than 8192 bytes"),
    ((AK, SK), {"brand": "other"}, ValueError, "brand"),
    ((AK, SK), {"ca_bundle": "/nonexistent/ca.pem"}, ValueError, "ca_bundle"),
    ((AK, SK), {"max_response_bytes": 0}, ValueError, "max_response_bytes"),
    # Beyond a C long long: still named, not a bare OverflowError.
    ((AK, SK), {"max_response_bytes": 10**30}, ValueError,
     "max_response_bytes: must be from 1 to"),
    ((AK, SK), {"max_response_bytes": -10**30}, ValueError, "max_response_bytes"),
    ((AK, SK), {"max_retries": 10**30}, ValueError, "max_retries: must be from 0 to 100"),
    ((AK, SK), {"max_retries": "2"}, TypeError, "max_retries: expected an int, got str"),
    # ca_bundle: str, bytes or os.PathLike, each failure naming it.
    ((AK, SK), {"ca_bundle": 123}, TypeError,
     "ca_bundle: expected str, bytes or os.PathLike, got int"),
    ((AK, SK), {"ca_bundle": bytearray(b"/etc")}, TypeError, "ca_bundle"),
    ((AK, SK), {"ca_bundle": "/etc/ca\x00.pem"}, ValueError, "ca_bundle"),
    ((AK, SK), {"ca_bundle": b"/etc/ca\x00.pem"}, ValueError, "ca_bundle"),
    ((AK, SK), {"ca_bundle": FsPath(5)}, TypeError,
     "ca_bundle: __fspath__() returned int, expected str or bytes"),
    # The arguments themselves, in CPython's words for a Python __init__:
    # eight may be given by position, the rest by keyword only.
    ((AK, SK, None, 5.0, None, False, None, None, "tenant"), {}, TypeError,
     "ManagementClient.__init__() takes from 1 to 9 positional arguments "
     "but 10 were given"),
    ((AK, SK), {"bogus": 1}, TypeError,
     "ManagementClient.__init__() got an unexpected keyword argument 'bogus'"),
    ((AK, SK), {"access_key_secret": SK}, TypeError,
     "ManagementClient.__init__() got multiple values for argument "
     "'access_key_secret'"),
]


@pytest.mark.parametrize("args,kwargs,exc,text", BAD_OPTIONS)
def test_bad_client_options(args, kwargs, exc, text):
    with pytest.raises(exc) as info:
        ManagementClient(*args, **kwargs)
    assert text in str(info.value)


def test_header_bound_options_up_to_8_kib_are_sent(fake, client_for):
    """The bound on header values is 8 KiB exactly, and only for what goes
    in a header: a token-mode key id (the token request's JSON body) may
    be longer."""
    long_values = {"lang": "l" * 8192, "tenant_id": "t" * 8192}
    client = client_for(fake.server.url, **long_values)
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    sent = fake.server.requests[-1]
    assert sent.header("x-genauth-lang") == long_values["lang"]
    assert sent.header("x-genauth-app-id") == long_values["tenant_id"]
    client = client_for(fake.server.url, access_key_id="A" * 100_000)
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_the_header_options_cap_is_where_a_user_reads_of_them():
    # 8 KiB was refused with ValueError, and neither help() nor the
    # README's option table, which give lang's other limits, said so.
    import pathlib
    assert "8 KiB" in " ".join(ManagementClient.__doc__.split())
    readme = (pathlib.Path(__file__).parent.parent / "README.md").read_text()
    rows = [line for line in readme.splitlines()
            if line.startswith(("| `lang`", "| `tenant_id`", "| `access_key_id`"))]
    assert len(rows) == 3 and all("8 KiB" in row for row in rows), rows


class Plain:
    pass


# Messages name the type fully qualified, as CPython 3.13's %T does
# (PEP 737): __module__ and __qualname__, builtins (and __main__) without a
# module; the same on every version, whether the type is static, from a
# class statement or from another extension's spec (decimal.Decimal is a
# static type up to 3.12, a spec's from 3.13).
@pytest.mark.parametrize("value,name", [
    (Plain(), "test_inputs.Plain"),
    ([1.0], "list"),
    (collections.OrderedDict(), "collections.OrderedDict"),
    (decimal.Decimal(1), "decimal.Decimal"),
])
def test_type_names_in_messages(value, name):
    with pytest.raises(TypeError) as info:
        ManagementClient(AK, SK, timeout=value)
    assert str(info.value) == \
        f"timeout: expected a number of seconds, got {name}"


def test_uninitialised_client_names_its_type():
    client = ManagementClient.__new__(ManagementClient)
    assert repr(client) == "<genauth_c.ManagementClient (uninitialised)>"


def test_largest_timeout_is_accepted_and_bounds_a_call(fake, client_for):
    # The whole timeout path (deadlines, libcurl's milliseconds, token
    # waits) with the largest timeout; `make sanitize` runs this under UBSan.
    client = client_for(fake.server.url, timeout=1e9)
    assert client.timeout == 1e9
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    batch = client.trigger_webhooks([{"webhook_id": "a"}, {"webhook_id": "b"}])
    assert [r["statusCode"] for r in batch] == [200, 200]
    assert client_for(fake.server.url, timeout=10**9).timeout == 1e9


def test_timeout_message_names_the_limit():
    with pytest.raises(ValueError, match=r"^timeout: .*at most 1000000000"):
        ManagementClient(AK, SK, timeout=1e16)


def test_key_id_need_not_be_ascii_with_tokens(fake, client_for):
    # In token mode the key id travels in the token request's JSON body.
    client = client_for(fake.server.url, access_key_id="AK\xe9")
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert fake.server.requests[0].json()["accessKeyId"] == "AK\xe9"


# ---- signature mode: JavaScript-safe integers, checked while converting ----

SIGN_MAX = 2**53 - 1


@pytest.mark.parametrize("kwargs, path", [
    ({"request_body": {"items": [0, SIGN_MAX + 1]}}, "request_body['items'][1]"),
    ({"request_body": {"n": -SIGN_MAX - 1}}, "request_body['n']"),
    ({"request_body": {"a": {"b": [[10**30]]}}}, "request_body['a']['b'][0][0]"),
    ({"request_body": {"e": enum.IntEnum("Big", {"X": 2**60}).X}},
     "request_body['e']"),
    ({"request_headers": {"h": 2**64}}, "request_headers['h']"),
    ({"request_headers": MyMapping({7: -(10**100)})}, "request_headers[7]"),
])
def test_signature_mode_refuses_unsafe_integers_with_their_path(
        fake, client_for, kwargs, path):
    client = client_for(fake.server.url, auth="signature")
    with pytest.raises(ValueError) as info:
        client.trigger_webhook("wh1", **kwargs)
    assert str(info.value) == (f"{path}: integers beyond \u00b1(2**53-1) "
                               "cannot be signed")
    assert fake.server.requests == []


def test_signature_mode_sends_safe_integers_and_big_keys(fake, client_for):
    client = client_for(fake.server.url, auth="signature")
    body = {"max": SIGN_MAX, "min": -SIGN_MAX, "z": 0, 2**64: "a key is text",
            "f": 1e300, "b": True}
    client.trigger_webhook("wh1", request_body=body)
    sent = fake.server.requests[-1].json()["requestBody"]
    assert sent == json.loads(json.dumps(body))


def test_token_mode_sends_any_integer(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1", request_body={"n": [SIGN_MAX + 2, 10**30]})
    assert b'"n":[9007199254740993,1000000000000000000000000000000]' in \
        fake.server.requests[-1].body


def test_signature_mode_batch_sends_nothing_when_one_call_is_unsafe(
        fake, client_for):
    fake.server.handler = lambda req: Response.json(fake.envelope)  # no token
    client = client_for(fake.server.url, auth="signature")
    calls = [{"webhook_id": "a", "request_body": {"n": 1}},
             {"webhook_id": "b", "request_body": {"items": [0, SIGN_MAX + 1]}},
             {"webhook_id": "c"}]
    with pytest.raises(ValueError) as info:
        client.trigger_webhooks(calls)
    assert str(info.value) == ("calls[1]['request_body']['items'][1]: integers "
                               "beyond \u00b1(2**53-1) cannot be signed")
    assert fake.server.requests == []
    assert fake.server.connections == 0
    del calls[1]
    assert [r["statusCode"] for r in client.trigger_webhooks(calls)] == [200, 200]
    assert len(fake.server.requests) == 2


@pytest.mark.parametrize("body, path", [
    ({"n": 10**5000}, "request_body['n']"),
    ({"a": [1, 10**5000]}, "request_body['a'][1]"),
    ({10**5000: "a key"}, "request_body"),  # the mapping holding the key
    ({"a": {10**5000: 1}}, "request_body['a']"),
])
def test_an_int_past_the_digit_limit_fails_with_its_path(
        fake, client_for, body, path):
    """Past sys.get_int_max_str_digits() Python cannot write an int, key or
    value: json.dumps fails, and so does the call, naming where."""
    client = client_for(fake.server.url)
    with pytest.raises(ValueError) as info:
        client.trigger_webhook("wh1", request_body=body)
    assert str(info.value) == (f"{path}: int too large to convert to decimal "
                               "text (over sys.get_int_max_str_digits() "
                               "digits)")
    assert fake.server.requests == []


@pytest.mark.parametrize("method, args, name", [
    ("list_webhooks", (), "page"),
    ("get_webhook_logs", ("wh1",), "limit"),
])
def test_a_page_or_limit_far_below_one_is_named(fake, client_for, method,
                                                 args, name):
    """A negative int past sys.get_int_max_str_digits() is refused naming
    its argument, as any int below 1 is; quoting it raised Python's own
    'Exceeds the limit (4300 digits)' ValueError, naming nothing."""
    client = client_for(fake.server.url)
    with pytest.raises(ValueError) as info:
        getattr(client, method)(*args, **{name: -10**5000})
    assert str(info.value).startswith(f"{name}: must be a positive int, got ")
    assert fake.server.requests == []


def test_a_batch_s_int_key_past_the_digit_limit_is_named(fake, client_for):
    """As above, for the unexpected key of a batch's call."""
    client = client_for(fake.server.url)
    with pytest.raises(TypeError) as info:
        client.trigger_webhooks([{"webhook_id": "wh1", 10**5000: 1}])
    assert str(info.value).startswith("calls[0]: unexpected key ")
    assert fake.server.requests == []


def test_positional_order_matches_the_official_sdk(fake):
    client = ManagementClient(AK, SK, fake.server.url, 5.0, "zh-CN", False)
    client.trigger_webhook("wh1")
    assert client.timeout == 5.0
    assert fake.server.requests[-1].header("x-genauth-lang") == "zh-CN"
    client.close()


def test_a_long_internationalized_host_name_is_accepted():
    # 89 characters (259 bytes of UTF-8, 119 in the ASCII form libcurl
    # sends): within DNS's 253.
    name = ".".join(["\u4e2d" * 17] * 5)
    assert len(name.encode("idna")) <= 253 < len(name.encode())
    client = ManagementClient(AK, SK, host="http://" + name)
    assert client.host == "http://" + name
    client.close()


# Found by tests/fuzz/fuzz_url.c: host names that libcurl refuses were
# taken when the client was made, and every call then failed with a
# TransportError ("URL using bad/illegal format") that named no option.
@pytest.mark.parametrize("host", ["https://api,genauth.ai", "https://a`b.example",
                                  "https://api.genauth.ai\\v3", "https://a*.example",
                                  "http://a;b.example:8080/prefix"])
def test_a_host_name_libcurl_refuses_is_refused_when_made(host):
    with pytest.raises(ValueError) as info:
        ManagementClient(AK, SK, host=host)
    assert str(info.value).startswith("host: ")


@pytest.mark.parametrize("host", [
    "https://api.genauth.ai/api/v3", "https://api.genauth.ai/api/v3/",
    "https://gw.example/genauth/API/V3",
    "https://api.genauth.ai/api/v3/trigger-webhook"])
def test_a_host_holding_the_api_path_is_refused(host):
    """The API's path copied into host (from a docs page, a curl line)
    made every call ask /api/v3/api/v3/...: a server's 404, or a 401 that
    blamed the keys, once a call was made. Refused when the client is made."""
    with pytest.raises(ValueError) as info:
        ManagementClient(AK, SK, host=host)
    assert str(info.value) == (
        "host: must not hold /api/v3, which every call's path begins with: "
        "give the base URL, such as https://api.genauth.ai")


@pytest.mark.parametrize("host", ["https://gw.example/api/v3x",
                                  "https://gw.example/v3/api",
                                  "https://gw.example/genauth"])
def test_a_path_prefix_like_the_api_path_is_taken(host):
    with ManagementClient(AK, SK, host=host) as client:
        assert client.host == host


def test_default_host_per_brand():
    assert ManagementClient(AK, SK).host == "https://api.genauth.ai"
    assert ManagementClient(AK, SK, brand="authing").host == "https://api.authing.cn"


def test_secret_and_token_never_shown(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")
    token = next(iter(fake.valid_tokens))
    shown = [repr(client), str(client)]
    assert "host=" in shown[0] and AK not in shown[0] and AK[-4:] in shown[0]
    fake.token_answer = Response.json({"statusCode": 401, "message": "no"})
    fake.valid_tokens.clear()
    for call in (lambda: client.trigger_webhook("wh1"),
                 lambda: client.trigger_webhook("wh1", request_body={"x": float("nan")})):
        try:
            call()
        except Exception as e:  # noqa: BLE001 - everything shown is checked
            text = "".join(traceback.format_exception(e)) + repr(vars(e))
            assert SK not in text and token not in text
        else:
            pytest.fail("the call did not fail")


# use_unverified_ssl and raise_for_status take True or False (None: the
# default, False). Any other value was read by its truth: a setting read
# from a file or the environment as the string "false" or "0" turned TLS
# verification off, and raise_for_status on, with nothing said.
@pytest.mark.parametrize("option", ["use_unverified_ssl", "raise_for_status"])
@pytest.mark.parametrize("value,name", [
    ("false", "str"), ("0", "str"), ("", "str"), (0, "int"), (1, "int"),
    ([], "list"), (Plain(), "test_inputs.Plain")])
def test_flags_take_a_bool_only(option, value, name):
    with pytest.raises(TypeError) as info:
        ManagementClient(AK, SK, **{option: value})
    assert str(info.value) == f"{option}: expected True or False, got {name}"
    with pytest.raises(TypeError, match=f"^{option}: expected True or False"):
        genauth_c.AsyncManagementClient(AK, SK, **{option: value})


@pytest.mark.parametrize("option", ["use_unverified_ssl", "raise_for_status"])
def test_flags_none_is_the_default(option):
    with ManagementClient(AK, SK, **{option: None}) as client:
        assert client.use_unverified_ssl is False
    with ManagementClient(AK, SK, **{option: True}) as client:
        assert client.use_unverified_ssl is (option == "use_unverified_ssl")


def test_timeout_none_is_the_default_and_says_so():
    """None is not 'no limit' (as in requests and httpx): it is the default,
    10 s, which help() and the README did not say."""
    assert ManagementClient(AK, SK, timeout=None).timeout == 10.0
    doc = ManagementClient.__doc__
    assert "None is the default, 10 s,\nnot 'no limit'" in doc
