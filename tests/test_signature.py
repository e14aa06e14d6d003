"""Signature mode end to end against an oracle of our own: the scheme as the
reference describes it (canonical headers, the resource in JavaScript's
JSON.stringify form, HMAC-SHA1 in base64), written here from that text and
nothing else: not the client's code, not the emulator's. A raw server
captures each signed request; the test rebuilds the signature from the
headers on the wire and the body as a JavaScript server parses it, as the
real server does, and compares."""
import base64
import hashlib
import hmac
import json
import os
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rawserver import RawServer, Response

import genauth_c
from genauth_c import ManagementClient

SMALL = os.environ.get("GENAUTH_TEST_SCALE") == "small"
AK, SK = "AKID", "SECRET"
SAFE = 2**53 - 1

# ---- the oracle: JavaScript's forms ------------------------------------------


def js_number(x) -> str:
    """Number.prototype.toString for a double (ECMAScript Number::toString):
    the shortest digits that round-trip (Python's repr finds the same), laid
    out by the decimal exponent."""
    x = float(x)
    if x == 0:
        return "0"  # -0 too
    if x < 0:
        return "-" + js_number(-x)
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:e([+-]\d+))?", repr(x))
    whole, frac, exp = m.group(1), m.group(2) or "", int(m.group(3) or 0)
    digits = (whole + frac).lstrip("0")
    zeros = len(digits) - len(digits.rstrip("0"))
    s = digits.rstrip("0")
    k = len(s)
    n = k + zeros + exp - len(frac)  # value = s x 10^(n-k)
    if k <= n <= 21:
        return s + "0" * (n - k)
    if 0 < n <= 21:
        return s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + s
    e = n - 1
    mantissa = s if k == 1 else s[0] + "." + s[1:]
    return f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def is_array_index(key: str) -> bool:
    """An ordinary object lists these keys first, in ascending order."""
    return re.fullmatch(r"0|[1-9][0-9]*", key) is not None and \
        int(key) < 2**32 - 1


def js_stringify(v) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return js_number(v)
    if isinstance(v, str):
        # JSON.stringify escapes what json.dumps does without ensure_ascii:
        # '"', '\\', \b \f \n \r \t and the other controls as \u00xx.
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ",".join(js_stringify(x) for x in v) + "]"
    keys = sorted((k for k in v if is_array_index(k)), key=int) + \
        [k for k in v if not is_array_index(k)]
    return "{" + ",".join(js_stringify(k) + ":" + js_stringify(v[k])
                          for k in keys) + "}"


def js_parse(body: bytes):
    """JSON.parse: every number a double; a repeated key keeps its first
    place and its last value (as a dict does)."""
    return json.loads(body, parse_int=float, parse_float=float)


def canonical_resource(path: str, params: dict) -> str:
    if not params:
        return path
    parts = []
    for k in sorted(params):
        v = params[k]
        if isinstance(v, (dict, list)):
            parts.append(f"{k}={js_stringify(v)}")
        elif isinstance(v, str):
            parts.append(f"{k}={v}")
        else:
            parts.append(f"{k}={js_stringify(v)}")
    return path + "?" + "&".join(parts)


def canonical_headers(headers, prefix: str) -> str:
    picked = []
    for name, value in headers:
        name = name.lower()
        if name == "date" or name.startswith(prefix):
            value = re.sub(r"[\t\n\r\f]", " ", value).strip()
            picked.append((name, value))
    return "".join(f"{n}:{v}\n" for n, v in sorted(picked))


def expected_authorization(method, headers, resource, brand,
                           ak=AK, sk=SK) -> str:
    prefix = "x-authing-" if brand == "authing" else "x-genauth-"
    scheme = "authing" if brand == "authing" else "GenAuth"
    to_sign = method + "\n" + canonical_headers(headers, prefix) + resource
    mac = hmac.new(sk.encode(), to_sign.encode("utf-8"), hashlib.sha1)
    return f"{scheme} {ak}:{base64.b64encode(mac.digest()).decode()}"


def test_oracle_reproduces_the_reference_vectors():
    """The oracle is checked against the reference's vectors first."""
    headers = [
        ("date", "Thu, 26 Nov 2026 20:24:02 GMT"),
        ("x-authing-app-id", "TENANT1"), ("x-authing-lang", "zh-CN"),
        ("x-authing-sdk-version", "authing-node-sdk:4.0.1"),
        ("x-authing-signature-method", "HMAC-SHA1"),
        ("x-authing-signature-version", "1.0"),
        ("Content-Type", "application/json"), ("Authorization", "ignored"),
    ]
    body = ('{"webhookId":"wh1","requestHeaders":{"X-A":"b"},"requestBody":'
            '{"eventName":"test","data":{"z":1,"a":"中文/\\"q\\""}}}').encode()
    post = headers + [("x-authing-signature-nonce",
                       "1fbbe9588899f1b4129021db8d142666")]
    resource = canonical_resource("/api/v3/trigger-webhook", js_parse(body))
    assert resource == ('/api/v3/trigger-webhook?requestBody={"eventName":'
                        '"test","data":{"z":1,"a":"中文/\\"q\\""}}&'
                        'requestHeaders={"X-A":"b"}&webhookId=wh1')
    assert expected_authorization("POST", post, resource, "authing",
                                  "AKID", "SECRET") == \
        "authing AKID:ME47QqDTGaldhVphTLY0rDvd9HE="
    for nonce, path, params, want in [
        ("1f52e922fb0386ebeee6c68530f8535a", "/api/v3/list-webhooks",
         {"page": "1", "limit": "10"}, "0o+VyL2Lez+u1g++5lNTfqQBXoc="),
        ("a866f4c9f348d95d1841843e029f1580", "/api/v3/get-webhook",
         {"webhookId": "wh1"}, "I3wiTXhrSI70/GDTpEfiWW3MeVA="),
        ("d2667e5822ab547130d4f2a4197ada1a", "/api/v3/get-webhook-event-list",
         {}, "eTHoxsoVivdfjzJDCd2sqxyjy30="),
    ]:
        got = expected_authorization(
            "GET", headers + [("x-authing-signature-nonce", nonce)],
            canonical_resource(path, params), "authing", "AKID", "SECRET")
        assert got == "authing AKID:" + want


def test_js_number_forms():
    assert [js_number(x) for x in (1.0, 1e21, 1e20, 1e-7, 1e-6, 0.1, -0.0,
                                   123.456, 2**53 - 1, 1.5e300, 5e-324,
                                   1152921504606846976)] == [
        "1", "1e+21", "100000000000000000000", "1e-7", "0.000001", "0.1",
        "0", "123.456", "9007199254740991", "1.5e+300", "5e-324",
        "1152921504606847000"]


# ---- the client against it ----------------------------------------------------

@pytest.fixture(scope="module")
def capture():
    """A server that keeps every request and answers a success."""
    ok = Response.json({"statusCode": 200, "message": "ok", "data": {}})
    with RawServer(lambda req: ok) as server:
        yield server


@pytest.fixture(scope="module")
def clients(capture):
    """clients(**options): one client per set of options, kept for the
    module (a client per example would mostly measure connection setup)."""
    made = {}

    def get(**options):
        key = tuple(sorted(options.items()))
        if key not in made:
            made[key] = ManagementClient(AK, SK, auth="signature",
                                         timeout=10, **options)
        return made[key]

    yield get
    for client in made.values():
        client.close()


text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["", "中文/\"q\"", "\x00\x1f\x7f", "😀𝄞", "\u2028\u2029", "a\tb\r\nc",
     "\\", "</script>"])
# Integer-like keys: JavaScript lists array indices first, ascending.
keys = text | st.sampled_from(
    ["0", "1", "2", "10", "9", "007", "-1", "1.5", "01", "4294967294",
     "4294967295", "99999999999", " 1"])
numbers = st.integers(-SAFE, SAFE) | st.sampled_from(
    [SAFE, -SAFE, 0, 10**15]) | st.floats(
        allow_nan=False, allow_infinity=False) | st.sampled_from(
    [-0.0, 1.0, 1e21, 1e20, 1e-7, 1e-6, 5e-324, 1.7976931348623157e308,
     0.1, 123e-20, 2.0**53, 1e16,
     # Powers of two whose shortest form is not the nearest 16 digits.
     2.0**-24, 2.0**-1017, 2.0**-791, -2.0**-24])
scalars = st.none() | st.booleans() | numbers | text
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20)
bodies = st.none() | st.dictionaries(keys, values, max_size=6)
headers_arg = st.none() | st.dictionaries(keys, text | numbers, max_size=4)
# webhook ids with NUL are refused (an id is also a string argument).
# Not only ASCII whitespace: such an id names nothing, and is refused before
# it is sent (test_webhook_api.py).
webhook_ids = st.text(st.characters(codec="utf-8", exclude_characters="\x00"),
                      min_size=1, max_size=16).filter(
    lambda s: s.strip(" \t\n\v\f\r") != "")


def same_json(a, b) -> bool:
    """Equal as JSON values to a JavaScript reader: numbers as doubles (1.0
    is sent as 1, 4.673309087211943e16 as 46733090872119430)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same_json, a, b))
    return type(a) is type(b) and a == b


@settings(max_examples=60 if SMALL else 250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@example(webhook_id="wh/中", request_headers={"X-A": "b", "2": 1.0},
         request_body={"b": 1, "10": [1e21, -0.0, 1e-7], "2": "中/\"q\"",
                       "4294967295": 0.1, "4294967294": None, "007": True,
                       "a": {"1": {}, "0": []}},
         brand="authing", lang="zh-CN", tenant_id="TENANT1",
         prefix="/prefix")
@given(webhook_id=webhook_ids, request_headers=headers_arg,
       request_body=bodies, brand=st.sampled_from(["authing", "genauth"]),
       lang=st.sampled_from([None, "zh-CN", "en-US"]),
       tenant_id=st.sampled_from([None, "TENANT1"]),
       prefix=st.sampled_from(["", "/prefix", "/a/b"]))
def test_signed_request_matches_the_oracle(capture, clients, webhook_id,
                                           request_headers, request_body,
                                           brand, lang, tenant_id, prefix):
    seen = len(capture.requests)
    client = clients(host=capture.url + prefix, brand=brand, lang=lang,
                     tenant_id=tenant_id)
    env = client.trigger_webhook(webhook_id, request_headers, request_body)
    assert env["statusCode"] == 200
    (req,) = capture.requests[seen:]
    assert req.method == "POST"
    # The host's path prefix is in the URL, not in the signed resource.
    assert req.path == prefix + "/api/v3/trigger-webhook"
    params = js_parse(req.body)
    sent = json.loads(req.body)
    want = {"webhookId": webhook_id}
    if request_headers is not None:
        want["requestHeaders"] = request_headers
    if request_body is not None:
        want["requestBody"] = request_body
    assert same_json(sent, json.loads(json.dumps(want))), (sent, want)
    resource = canonical_resource("/api/v3/trigger-webhook", params)
    assert req.header("authorization") == expected_authorization(
        "POST", req.headers, resource, brand)
    pfx = "x-authing-" if brand == "authing" else "x-genauth-"
    assert re.fullmatch(r"[0-9a-f]{32}",
                        req.header(pfx + "signature-nonce") or "")
    assert req.header(pfx + "lang") == lang
    assert req.header(pfx + "app-id") == tenant_id


def test_nonces_differ_between_requests(capture):
    seen = len(capture.requests)
    with ManagementClient(AK, SK, host=capture.url, auth="signature",
                          brand="authing") as client:
        for _ in range(20):
            client.trigger_webhook("wh1", request_body={"a": 1})
    nonces = {r.header("x-authing-signature-nonce")
              for r in capture.requests[seen:]}
    assert len(nonces) == 20


def test_integers_past_2_53_are_refused_not_signed(capture):
    seen = len(capture.requests)
    with ManagementClient(AK, SK, host=capture.url, auth="signature") as client:
        for bad in (SAFE + 1, -SAFE - 1):
            with pytest.raises(ValueError):
                client.trigger_webhook("wh1", request_body={"n": bad})
    assert capture.requests[seen:] == []
    assert genauth_c.ManagementClient  # the module stays importable


@pytest.mark.parametrize("headers,body,server_sees", [
    # Keys that json.dumps turns into the same text: the server's JSON.parse
    # keeps one member, where the first stood, with the last one's value.
    ({1: "a", "1": "b"}, None, {"requestHeaders": {"1": "b"}}),
    (None, {"x": {True: 1, "y": 2, "true": 3}}, {"requestBody": {"x": {"true": 3, "y": 2}}}),
    (None, {"k": [{None: 1, "null": 2, 2: 3, "2": 4, "2.5": 5, 2.5: 6}]},
     {"requestBody": {"k": [{"2": 4, "null": 2, "2.5": 6}]}}),
    # Many members (the sorted path) with one pair that collides.
    (None, {**{f"k{i}": i for i in range(100)}, 7: "x", "7": "y"},
     {"requestBody": {**{f"k{i}": i for i in range(100)}, "7": "y"}}),
])
def test_keys_that_collide_are_sent_as_the_server_parses_them(capture, headers, body, server_sees):
    seen = len(capture.requests)
    with ManagementClient(AK, SK, host=capture.url, auth="signature", brand="authing") as client:
        assert client.trigger_webhook("wh1", headers, body)["statusCode"] == 200
    (req,) = capture.requests[seen:]
    params = js_parse(req.body)
    assert same_json(params, {"webhookId": "wh1", **server_sees})
    # Each key once in what was sent, so the body is exactly what was signed.
    assert req.body.decode() == "{" + ",".join(
        js_stringify(k) + ":" + js_stringify(v) for k, v in params.items()) + "}"
    resource = canonical_resource("/api/v3/trigger-webhook", params)
    assert req.header("authorization") == expected_authorization(
        "POST", req.headers, resource, "authing")
