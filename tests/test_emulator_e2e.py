"""End to end against the local GenAuth emulator: both authentication
schemes, both brands, a real webhook receiver."""
import json
import threading

import pytest

from genauth_c import ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver

AK, SK = "AKID-e2e", "SECRET-e2e"
WEBHOOK = "6229ffaxxxxxxxxcade3e3d9"


@pytest.fixture(scope="module")
def receiver():
    with WebhookReceiver(answer_body=lambda got: got.body) as rx:  # echo
        yield rx


@pytest.fixture
def emulator(receiver):
    with Emulator(AK, SK) as emu:
        emu.add_webhook(WEBHOOK, receiver.url + "/hook")
        yield emu


SEED_BODY = {"eventName": "test", "data": {"description": "A test from authing"}}


@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("brand", ["genauth", "authing"])
def test_seed_example_end_to_end(emulator, receiver, auth, brand):
    before = len(receiver.received)
    with ManagementClient(AK, SK, host=emulator.url, auth=auth, brand=brand,
                          lang="zh-CN", tenant_id="TENANT1") as client:
        result = client.trigger_webhook(WEBHOOK, request_headers=SEED_BODY,
                                        request_body=SEED_BODY)
    assert result["statusCode"] == 200, result
    assert result["data"]["response"] == SEED_BODY
    got = receiver.received[before]
    assert json.loads(got.body) == SEED_BODY
    assert got.header("eventName") == "test"
    assert json.loads(got.header("data")) == SEED_BODY["data"]
    rec = [r for r in emulator.requests if r.path == "/api/v3/trigger-webhook"][-1]
    assert rec.auth == auth
    if auth == "signature":
        assert emulator.token_fetches == 0
        prefix = f"x-{brand}-"
        scheme = "GenAuth" if brand == "genauth" else "authing"
        assert rec.header("authorization").startswith(f"{scheme} {AK}:")
        assert rec.header(prefix + "signature-method") == "HMAC-SHA1"
        assert len(rec.header(prefix + "signature-nonce")) == 32
        assert rec.header(prefix + "app-id") == "TENANT1"
        assert rec.header("date").endswith(" GMT")


def test_wrong_secret_signature_gives_1300_envelope(emulator):
    with ManagementClient(AK, "not-the-secret", host=emulator.url,
                          auth="signature") as client:
        env = client.trigger_webhook(WEBHOOK)
    assert env["statusCode"] == 401 and env["apiCode"] == 1300
    assert env["requestId"]
    # A refused signature is not retried: it would be refused again.
    assert len([r for r in emulator.requests if "trigger" in r.path]) == 1


def test_wrong_keys_in_token_mode(emulator):
    import genauth_c
    with ManagementClient(AK, "nope", host=emulator.url) as client:
        with pytest.raises(genauth_c.AuthError) as info:
            client.trigger_webhook(WEBHOOK)
    assert info.value.status_code == 401 and info.value.request_id


def test_unknown_webhook_404_envelope(emulator):
    with ManagementClient(AK, SK, host=emulator.url) as client:
        env = client.trigger_webhook("no-such-webhook")
    assert env["statusCode"] == 404 and env["requestId"]


AWKWARD = [
    {"u": "中文/\"q\"\\\u2028😀", "ctl": "\x00\x01\x1f\x7f"},
    {"b": 1, "10": 2, "2": 3, "a": 4, "01": 5, "-1": 6, "4294967295": 7},
    {"nested": [[1, [2, [3, {"x": None}]]], [], {}], "t": True, "f": False},
    {"floats": [1.0, 0.1, 1e21, 1e-7, -0.0, 123456789.125, 5e-324]},
    {"ints": [0, -1, 2**53 - 1, -(2**53 - 1)]},
    {"\x00key": {"k\x00": "v\x00"}},
]


@pytest.mark.parametrize("brand", ["genauth", "authing"])
@pytest.mark.parametrize("body", AWKWARD)
def test_signed_body_and_signature_agree(emulator, body, brand):
    with ManagementClient(AK, SK, host=emulator.url, auth="signature",
                          brand=brand) as client:
        env = client.trigger_webhook(WEBHOOK, request_headers={"h": body},
                                     request_body=body)
    assert env["statusCode"] == 200, env
    # The server parsed our JavaScript-form body to equal values.
    assert env["data"]["response"] == json.loads(json.dumps(body))


def test_unsafe_integer_refused_in_signature_mode(emulator):
    with ManagementClient(AK, SK, host=emulator.url, auth="signature") as client:
        with pytest.raises(ValueError, match=r"^request_body\['n'\]: integers "
                                             r"beyond"):
            client.trigger_webhook(WEBHOOK, request_body={"n": 2**53 + 1})
    assert [r for r in emulator.requests if "trigger" in r.path] == []


def test_threads_signed_calls_never_reuse_a_nonce(emulator):
    errors = []
    with ManagementClient(AK, SK, host=emulator.url, auth="signature") as client:
        def work():
            for _ in range(200):
                env = client.trigger_webhook(WEBHOOK)
                if env["statusCode"] != 200:
                    errors.append(env)

        threads = [threading.Thread(target=work) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    nonces = [r.header("x-genauth-signature-nonce") for r in emulator.requests
              if "trigger" in r.path]
    assert len(nonces) == 3200 == len(set(nonces))


def test_token_expiry_refreshes_against_the_emulator(emulator):
    # Expired on the server while the client still trusts it: each call after
    # expire_tokens() is refused once, then retried with a new token.
    with ManagementClient(AK, SK, host=emulator.url) as client:
        for _ in range(3):
            assert client.trigger_webhook(WEBHOOK)["statusCode"] == 200
            emulator.expire_tokens()
        assert client.token_fetches == 3
    refused = [r.auth_error for r in emulator.requests if r.auth_error]
    assert refused == [1022, 1022]
    assert emulator.token_fetches == 3


def test_token_valid_for_a_count_of_calls(emulator):
    emulator.token_max_uses = 2
    with ManagementClient(AK, SK, host=emulator.url) as client:
        for _ in range(6):
            assert client.trigger_webhook(WEBHOOK)["statusCode"] == 200
        # Calls 3 and 5 find their token used up: refused once, retried.
        assert client.token_fetches == 3
    assert emulator.delivery_count(WEBHOOK) == 6


def test_userpool_id_decoded_as_base64url():
    # A payload only base64url decodes (not the plain base64 some SDKs use).
    from genauth_c.emulator import URLSAFE_USERPOOL_ID
    with WebhookReceiver() as rx, Emulator(AK, SK, userpool_id=URLSAFE_USERPOOL_ID) as emu:
        emu.add_webhook(WEBHOOK, rx.url)
        with ManagementClient(AK, SK, host=emu.url) as client:
            assert client.trigger_webhook(WEBHOOK)["statusCode"] == 200
        assert emu.requests[-1].header("x-genauth-userpool-id") == URLSAFE_USERPOOL_ID


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_batch_end_to_end(emulator, auth):
    with ManagementClient(AK, SK, host=emulator.url, auth=auth) as client:
        results = client.trigger_webhooks(
            [{"webhook_id": WEBHOOK, "request_body": {"i": i}} for i in range(24)]
            + [{"webhook_id": "missing"}], concurrency=8)
    assert [r["statusCode"] for r in results] == [200] * 24 + [404]
    assert [r["data"]["response"]["i"] for r in results[:24]] == list(range(24))
    signed = [r for r in emulator.requests if r.auth == "signature"]
    assert len(signed) == (25 if auth == "signature" else 0)
