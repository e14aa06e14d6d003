"""Data nested too deep for the stack of the thread a call runs on: a thread
started after threading.stack_size(32768 or 65536) holds far fewer levels
than the documented limits (genauth_c.MAX_DEPTH for payloads, 1000 for
answers). Such a payload is refused with the ValueError the depth limit
gives, naming its path, before anything is sent; such an answer is a
DecodeError; neither crashes the process. Each case runs in a child
process, so that a crash fails the test instead of killing pytest."""
import json
import os
import subprocess
import sys

import pytest

import genauth_c

TESTS = os.path.dirname(os.path.abspath(__file__))
# `make sanitize` preloads AddressSanitizer, whose frames are several times
# larger: a signed payload (converted within a share of the stack) then has
# no room for even a small body on a 32 KiB thread.
UNDER_ASAN = "asan" in os.environ.get("LD_PRELOAD", "")

# The child: a server on its own threads, then one scenario on a thread with
# the stack size asked (0: the default), and what came of it as JSON.
CHILD = r"""
import asyncio, base64, json, sys, threading
sys.path.insert(0, sys.argv[1])
from rawserver import FakeGenAuth, RawServer, Response, make_jwt
import genauth_c
from conftest import AK, SK

scenario, kib = sys.argv[2], int(sys.argv[3])
PAYLOAD_DEPTH = genauth_c.MAX_DEPTH
ANSWER_DEPTH = 1000  # the parser's limit: the data's levels and the envelope


def nested(n):
    top = node = {}
    for _ in range(n - 1):
        node["a"] = {}
        node = node["a"]
    return top


def deep_answer(status=200):
    return (b'{"statusCode":%d,"message":"m","data":' % status
            + b"[" * (ANSWER_DEPTH - 1) + b"]" * (ANSWER_DEPTH - 1) + b"}")


def outcome(call):
    try:
        value = call()
    except Exception as e:
        return {"type": type(e).__name__, "message": str(e)}
    if isinstance(value, list):  # a batch: its one item
        value = value[0]
        if isinstance(value, Exception):
            return {"type": type(value).__name__, "message": str(value)}
    return {"type": "ok", "statusCode": value["statusCode"]}


# Built here, on the main thread, which keeps it to the end: CPython frees
# nested containers recursively (3.13 defers the rest to later only near its
# own recursion limit, thousands of levels down, where 3.11 and 3.12 did
# every 50), so on 3.13 CPython itself overflows a 32 KiB thread when the
# last reference to a payload this deep goes there. The small thread only
# hands it to genauth_c, whose conversion is what the scenarios test.
BODY = nested(PAYLOAD_DEPTH)


def scenario_call(fake, server):
    # The call to make: (method name, args, kwargs, client options).
    body = BODY
    if scenario == "payload":
        return "trigger_webhook", ("wh",), {"request_body": body}, {}
    if scenario == "payload_signed":
        return ("trigger_webhook", ("wh",), {"request_body": body},
                {"auth": "signature"})
    if scenario == "payload_batch":
        return ("trigger_webhooks",
                ([{"webhook_id": "wh", "request_body": body}],), {}, {})
    if scenario == "payload_async":
        return "trigger_webhook", ("wh",), {"request_body": body}, {}
    if scenario in ("answer", "answer_async"):
        fake.response = Response(body=deep_answer())
        return "trigger_webhook", ("wh",), {}, {}
    if scenario == "answer_batch":
        fake.response = Response(body=deep_answer())
        return "trigger_webhooks", ([{"webhook_id": "wh"}],), {}, {}
    if scenario == "token_refused":
        fake.token_answer = Response(status=400, body=deep_answer(400))
        return "trigger_webhook", ("wh",), {}, {}
    if scenario == "token_claims":
        claims = (b'{"scoped_userpool_id":"pool-1","x":'
                  + b"[" * (ANSWER_DEPTH - 1) + b"]" * (ANSWER_DEPTH - 1)
                  + b"}")
        token = ("eyJhbGciOiJIUzI1NiJ9."
                 + base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
                 + ".c2ln")
        fake.token_answer = Response.json({"statusCode": 200, "data": {
            "access_token": token, "expires_in": 7200}})
        fake.valid_tokens.add(token)
        return "trigger_webhook", ("wh",), {}, {}
    raise SystemExit("no scenario " + scenario)


def shallow():
    # What the next call on the same client and thread meets: the fake's
    # ordinary answers.
    fake.response = None
    if scenario != "token_claims":
        fake.token_answer = None
    return "trigger_webhook", ("wh",), {"request_body": {"a": [1]}}


def run(server):
    name, args, kwargs, options = scenario_call(fake, server)
    if scenario.endswith("_async"):
        async def main():
            async with genauth_c.AsyncManagementClient(
                    AK, SK, host=server.url, timeout=10, **options) as c:
                first = await async_outcome(getattr(c, name)(*args, **kwargs))
                n, a, k = shallow()
                return first, await async_outcome(getattr(c, n)(*a, **k))

        async def async_outcome(coro):
            try:
                value = await coro
            except Exception as e:
                return {"type": type(e).__name__, "message": str(e)}
            return {"type": "ok", "statusCode": value["statusCode"]}

        return asyncio.run(main())
    with genauth_c.ManagementClient(AK, SK, host=server.url, timeout=10,
                                    **options) as c:
        first = outcome(lambda: getattr(c, name)(*args, **kwargs))
        n, a, k = shallow()
        return first, outcome(lambda: getattr(c, n)(*a, **k))


fake = FakeGenAuth()
with RawServer(fake) as server:
    fake.server = server
    done = {}

    def target():
        done["first"], done["again"] = run(server)

    if kib:
        threading.stack_size(kib * 1024)
    thread = threading.Thread(target=target)
    thread.start()
    threading.stack_size(0)  # the server's threads: the default
    thread.join(60)
    done["paths"] = [r.path for r in server.requests]
    done["pools"] = [v for r in server.requests for k, v in r.headers
                     if k.lower().endswith("userpool-id")]
    print(json.dumps(done))
"""


def run_child(scenario, kib):
    run = subprocess.run([sys.executable, "-c", CHILD, TESTS, scenario,
                          str(kib)], capture_output=True, text=True,
                         timeout=120)
    # A negative return code is the signal that killed the child (SIGSEGV).
    assert run.returncode == 0, (run.returncode, run.stderr[-2000:])
    return json.loads(run.stdout)


STACK_ALLOWS = "levels this thread's stack allows"
PAYLOADS = ["payload", "payload_signed", "payload_batch", "payload_async"]


@pytest.mark.parametrize("kib", [32, 64])
@pytest.mark.parametrize("scenario", PAYLOADS)
def test_payload_too_deep_for_the_stack_is_refused_before_sending(scenario,
                                                                  kib):
    if UNDER_ASAN and scenario == "payload_signed" and kib == 32:
        pytest.skip("AddressSanitizer's frames leave a signed payload no "
                    "room on 32 KiB")
    got = run_child(scenario, kib)
    first = got["first"]
    assert first["type"] == "ValueError", first
    name = ("calls[0]['request_body']" if scenario == "payload_batch"
            else "request_body")
    assert first["message"].startswith(name + "['a']['a']"), first
    assert first["message"].endswith(STACK_ALLOWS), first
    # Nothing of the refused call was sent; the next call goes through (the
    # fake knows no signatures: a signed one is answered 401, returned).
    status = 401 if scenario == "payload_signed" else 200
    assert got["again"] == {"type": "ok", "statusCode": status}
    assert sum("trigger-webhook" in p for p in got["paths"]) == 1


# A token refusal is searched for the secret before it is shown: one that
# cannot be searched is not shown.
ANSWER_ERRORS = {
    "answer": "the server answered HTTP 200",
    "answer_batch": "the server answered HTTP 200",
    "answer_async": "the server answered HTTP 200",
    "token_refused": "the token endpoint answered HTTP 400",
}


@pytest.mark.parametrize("kib", [32, 64])
@pytest.mark.parametrize("scenario", sorted(ANSWER_ERRORS))
def test_answer_too_deep_for_the_stack_is_a_decode_error(scenario, kib):
    got = run_child(scenario, kib)
    assert got["first"] == {
        "type": "DecodeError",
        "message": ANSWER_ERRORS[scenario] + " with JSON nested deeper than "
                   "this thread's stack allows"}
    if UNDER_ASAN and scenario == "answer_async" and kib == 32:
        # AddressSanitizer's frames, under the event loop's on 32 KiB, left
        # Debian 12's Python room for one level of the next call's payload
        # ({'a': [1]}): refused before sending, as a payload too deep is.
        if got["again"]["type"] == "ValueError":
            assert got["again"]["message"].startswith("request_body['a']")
            assert got["again"]["message"].endswith(STACK_ALLOWS)
            return
    assert got["again"] == {"type": "ok", "statusCode": 200}


@pytest.mark.parametrize("kib", [32, 64])
def test_token_claims_nested_to_the_limit_parse_on_a_small_stack(kib):
    # The token's payload goes through the one parser, which loops: its
    # depth costs no stack.
    got = run_child("token_claims", kib)
    assert got["first"] == {"type": "ok", "statusCode": 200}
    assert got["pools"][-1] == "pool-1"


@pytest.mark.parametrize("scenario", ["payload", "payload_signed", "answer"])
def test_a_default_stack_keeps_the_documented_limits(scenario):
    # On a thread with the default stack, a payload of MAX_DEPTH levels and
    # an answer of 1000 are taken, as documented.
    assert genauth_c.MAX_DEPTH == 500
    got = run_child(scenario, 0)
    if scenario == "payload_signed":
        # The fake server knows no signatures: it answers 401, returned.
        assert got["first"] == {"type": "ok", "statusCode": 401}
    else:
        assert got["first"] == {"type": "ok", "statusCode": 200}
