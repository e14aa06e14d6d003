"""Responses decode as json.loads decodes them, and what cannot be decoded
raises DecodeError with the HTTP status and the start of the body."""
import json

import pytest

import genauth_c
from rawserver import Response

ENVELOPE = b'{"statusCode":200,"message":"ok","data":{"response":%s}}'


def answer_with(fake, body: bytes, status: int = 200):
    def handler(req):
        if "trigger-webhook" in req.path:
            return Response(status=status, body=body,
                            headers=[("Content-Type", "application/json")])
        return fake(req)
    fake.server.handler = handler


@pytest.mark.parametrize("literal", [
    b'"\\ud83d"',                 # a cut emoji, as JavaScript emits it
    b'"\\udc00"',                 # a lone low surrogate
    b'"a\\ud800x"',
    b'"\\ud83d\\ud83d\\ude00"',   # a lone high before a pair
    b'"\\ud83d\\u0000"',          # a lone surrogate beside U+0000
    b'{"\\udfff":["\\ud800",1]}',  # in keys too
    b'"\xed\xa0\xbd"',            # encoded, not escaped: json.loads takes it
])
def test_lone_surrogates_decode_as_json_loads(fake, client_for, literal):
    body = ENVELOPE % literal
    answer_with(fake, body)
    result = client_for(fake.server.url).trigger_webhook("wh1")
    assert result == json.loads(body)
    assert result["data"]["response"] == json.loads(literal)


@pytest.mark.parametrize("body,why", [
    (ENVELOPE % b'"\xff"', "not UTF-8"),
    (ENVELOPE % (b"1" * 4301), "more than 4300 digits"),
])
def test_undecodable_bodies_carry_status_and_excerpt(fake, client_for, body,
                                                     why):
    # json.loads refuses each of these too.
    with pytest.raises(ValueError):
        json.loads(body)
    answer_with(fake, body, status=201)
    with pytest.raises(genauth_c.DecodeError, match=why) as info:
        client_for(fake.server.url).trigger_webhook("wh1")
    assert info.value.http_status == 201
    assert info.value.excerpt == body[:200]


def test_an_integer_of_4300_digits_is_an_int(fake, client_for):
    body = ENVELOPE % (b"9" * 4300)
    answer_with(fake, body)
    result = client_for(fake.server.url).trigger_webhook("wh1")
    assert result["data"]["response"] == int("9" * 4300)


def test_excerpt_of_an_undecodable_body_masks_the_token(fake, client_for):
    def handler(req):
        if "trigger-webhook" in req.path:
            echo = json.dumps(req.raw.decode("latin-1")).encode()
            return Response(body=b'{"echo":' + echo + b',"x":"\xff"}')
        return fake(req)
    fake.server.handler = handler
    with pytest.raises(genauth_c.DecodeError, match="not UTF-8") as info:
        client_for(fake.server.url).trigger_webhook("wh1")
    token = next(iter(fake.valid_tokens))
    assert b"Bearer ***" in info.value.excerpt
    assert token[:8].encode() not in info.value.excerpt


# Keys of answers' dicts are kept between calls (a small fixed cache of short
# ASCII keys): keys that look alike to it (same length, same first, middle
# and last byte), escaped forms, U+0000, non-ASCII, keys at and past its
# length limit and more distinct keys than it holds still decode exactly,
# call after call.
LOOKALIKE_KEYS = [
    "aXbYc", "aZbWc", "aXbYc", "a\u0000b\u0000c", "a\u0001b\u0001c",
    "st\\u0061tusCode", "statusCode", "", "\u00e9t\u00e9", "\U0001F600",
    "k" * 24, "k" * 25, "k" * 23 + "j", "data", "DATA",
] + ["key%d" % i for i in range(200)]


def test_result_keys_decode_exactly_call_after_call(fake, client_for):
    client = client_for(fake.server.url)
    for rnd in range(2):
        for start in range(0, len(LOOKALIKE_KEYS), 20):
            keys = LOOKALIKE_KEYS[start:start + 20]
            obj = "{%s}" % ",".join(
                '"%s":%d' % (k.replace("\u0000", "\\u0000")
                             .replace("\u0001", "\\u0001"), i)
                for i, k in enumerate(keys))
            body = ENVELOPE % obj.encode()
            answer_with(fake, body)
            result = client.trigger_webhook("wh1")
            expected = json.loads(body)
            assert result == expected, (rnd, start)
            assert list(result["data"]["response"]) == \
                list(expected["data"]["response"])


# ---- the parser against json.loads, on texts valid and broken -------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(["\x00", "\ud83d", "😀", "\\", '"']),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12)
_spaces = st.sampled_from(["", " ", "\n", "\t", "\r\n ", "\x0b", "\x0c", "\xa0"])


@st.composite
def _texts(draw):
    """A JSON text as json.dumps writes it (sometimes with spaces, escaped or
    not), then perhaps broken: a byte cut, doubled, replaced or inserted."""
    value = draw(_json_values)
    text = json.dumps(value, ensure_ascii=draw(st.booleans()),
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    raw = text.encode("utf-8", "surrogatepass")
    raw = draw(_spaces).encode() + raw + draw(_spaces).encode()
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(raw)))
        byte = bytes([draw(st.sampled_from(b'{}[]",:\\0123456789.eE+-tfnaul \x00\x1f\xff'))])
        kind = draw(st.sampled_from(["cut", "double", "replace", "insert"]))
        if kind == "cut":
            raw = raw[:at] + raw[at + 1:]
        elif kind == "double":
            raw = raw[:at] + raw[at:at + 1] + raw[at:]
        elif kind == "replace":
            raw = raw[:at] + byte + raw[at + 1:]
        else:
            raw = raw[:at] + byte + raw[at:]
    return raw


def _loads_strictly(raw):
    """json.loads without its NaN/Infinity extension, which JSON has not."""
    def refuse(name):
        raise ValueError(name)
    return json.loads(raw, parse_constant=refuse)


@pytest.fixture(scope="module")
def decoding_server():
    from conftest import FakeGenAuth
    from rawserver import RawServer

    fake = FakeGenAuth()
    with RawServer(fake) as server:
        fake.server = server
        with genauth_c.ManagementClient("AKID", "SECRET", host=server.url,
                                        timeout=10) as client:
            yield fake, client


def _same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=_texts())
def test_answers_decode_as_json_loads_or_not_at_all(decoding_server, raw):
    fake, client = decoding_server
    body = ENVELOPE % raw
    answer_with(fake, body)
    try:
        expected = _loads_strictly(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError among them
        with pytest.raises(genauth_c.DecodeError):
            client.trigger_webhook("wh1")
    else:
        result = client.trigger_webhook("wh1")
        assert _same(result, expected), (raw, result, expected)


def test_a_key_given_twice_counts_as_its_last_value(fake, client_for):
    """json.loads keeps a repeated key's last value; the client acts on the
    same value it returns (here: no 401, so no second token)."""
    answer_with(fake, b'{"statusCode":401,"message":"no","statusCode":200,'
                      b'"message":"ok","data":{"response":1,"response":2}}')
    client = client_for(fake.server.url)
    result = client.trigger_webhook("wh1")
    assert result == {"statusCode": 200, "message": "ok", "data": {"response": 2}}
    assert client.token_fetches == 1


def test_a_business_error_nested_too_deep_to_show_is_still_an_apierror(
        fake, client_for):
    """With raise_for_status, the message of an APIError shows the
    envelope's statusCode and message; a message nested about as deep as
    JSON may be (the server's choice) cannot be shown by repr() from a
    caller some frames deep, and its RecursionError came out of the call,
    and out of a batch, losing its other calls' results."""
    body = (b'{"statusCode":400,"message":' + b"[" * 990 + b"]" * 990 +
            b',"requestId":"r1"}')
    answer_with(fake, body)
    client = client_for(fake.server.url, raise_for_status=True)

    def at_depth(n, call):
        return call() if n == 0 else at_depth(n - 1, call)

    with pytest.raises(genauth_c.APIError) as caught:
        at_depth(100, lambda: client.trigger_webhook("wh1"))
    assert caught.value.status_code == 400
    assert caught.value.request_id == "r1"
    outcomes = at_depth(100, lambda: client.trigger_webhooks(
        [{"webhook_id": "a"}, {"webhook_id": "b"}]))
    assert [type(o) for o in outcomes] == [genauth_c.APIError] * 2
    assert outcomes[0].status_code == 400
