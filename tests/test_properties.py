"""Property: any JSON-representable Python value survives request_body ->
the wire -> the emulator (token mode) -> a webhook receiver that answers
with the body it got -> data.response, unchanged: equal, and with the same
types (int stays int, float stays float, -0.0 keeps its sign)."""
import json
import math
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genauth_c import ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver

SMALL = os.environ.get("GENAUTH_TEST_SCALE") == "small"

text = st.text(st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["", "\x00", "a\x00b", "😀𝄞", "\u2028", "\ufeff", '"\\/', "\x7f\x1f"])
ints = st.integers() | st.sampled_from(
    [2**53 + 1, -(2**63), 2**64 + 1, 10**40, -(10**100)])
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(
    [-0.0, 5e-324, 1.7976931348623157e308, 1e16, 0.1, 1e-7])
scalars = st.none() | st.booleans() | ints | floats | text
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(text, inner, max_size=5),
    max_leaves=25)
bodies = st.dictionaries(text, values, max_size=6)


def same(a, b):
    """Equal, of the same types throughout, floats to the sign of zero."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@pytest.fixture(scope="module")
def echo_client():
    """A client against the emulator, whose webhook's receiver answers with
    the JSON it was sent."""
    with Emulator("AKID", "SECRET") as emu, \
            WebhookReceiver(answer_body=lambda got: got.json) as rx:
        emu.add_webhook("wh1", rx.url + "/hook")
        with ManagementClient("AKID", "SECRET", host=emu.url,
                              timeout=10) as client:
            yield client


@settings(max_examples=50 if SMALL else 200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow,
                                 HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_request_body_round_trips_unchanged(echo_client, body):
    env = echo_client.trigger_webhook("wh1", request_body=body)
    assert env["statusCode"] == 200, env
    got = env["data"]["response"]
    assert same(got, body), (got, body)


def test_same_is_strict():
    """The comparison the property relies on can fail."""
    assert not same({"a": 1}, {"a": 1.0})
    assert not same({"a": True}, {"a": 1})
    assert not same({"a": -0.0}, {"a": 0.0})
    assert not same({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert same({"a": [1, {"b": None}]}, {"a": [1, {"b": None}]})


@pytest.fixture(scope="module")
def wire():
    """A raw-socket server recording every request, and a client of it."""
    from conftest import AK, SK, FakeGenAuth
    from rawserver import RawServer

    handler = FakeGenAuth()
    with RawServer(handler) as server:
        handler.server = server
        with ManagementClient(AK, SK, host=server.url, timeout=10) as client:
            yield server, client


@settings(max_examples=50 if SMALL else 200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(headers=bodies, body=bodies)
def test_request_body_bytes_are_json_dumps(wire, headers, body):
    """Token mode writes mappings straight to JSON text (no tree): the bytes
    sent are json.dumps's, compact and not ASCII-escaped."""
    server, client = wire
    del server.requests[:]
    client.trigger_webhook("wh1", request_headers=headers, request_body=body)
    (req,) = [r for r in server.requests if "trigger-webhook" in r.path]
    dumps = lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False,
                                 allow_nan=False)
    assert req.body == ('{"webhookId":"wh1","requestHeaders":%s,"requestBody":%s}'
                        % (dumps(headers), dumps(body))).encode("utf-8",
                                                                "surrogatepass")
