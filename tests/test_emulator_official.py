"""The official `genauth` 5.1.0 Python SDK, with its defaults, against the
emulator: every webhook method, and what it put on the wire.

Needs `genauth==5.1.0` and `websockets` (which it imports without declaring);
`make test` installs both."""
from __future__ import annotations

import pytest

try:
    import genauth  # noqa: F401
    from genauth import ManagementClient as OfficialClient
except ImportError as exc:  # pragma: no cover - depends on the test tools installed
    pytest.skip(f"the official SDK is not importable ({exc}); pip install genauth==5.1.0 websockets",
                allow_module_level=True)

from emulator_http import AK, SK, E

URL_EVENTS = ["test", "user:created"]


@pytest.fixture
def setup():
    with E.WebhookReceiver() as rx, E.Emulator(AK, SK) as emu:
        yield emu, rx, OfficialClient(AK, SK, host=emu.url)


def last(emu, path):
    return [r for r in emu.requests if r.path == path][-1]


def test_every_webhook_method(setup):
    emu, rx, client = setup
    created = client.create_webhook("application/json", URL_EVENTS, rx.url + "/hook", "official", enabled=True, secret="s1")
    assert created["statusCode"] == 200, created
    hook = created["data"]
    wid = hook["webhookId"]
    assert (hook["name"], hook["events"], hook["secret"], hook["enabled"]) == ("official", URL_EVENTS, "s1", True)
    rec = last(emu, "/api/v3/create-webhook")
    assert (rec.auth, rec.brand) == ("token", "genauth")
    assert rec.json == {"contentType": "application/json", "events": URL_EVENTS, "url": rx.url + "/hook",
                        "name": "official", "enabled": True, "secret": "s1"}

    listed = client.list_webhooks(page=1, limit=10)
    assert listed["data"]["totalCount"] == 1 and listed["data"]["list"][0] == hook
    assert last(emu, "/api/v3/list-webhooks").query == {"page": "1", "limit": "10"}
    assert client.list_webhooks()["data"]["totalCount"] == 1
    assert last(emu, "/api/v3/list-webhooks").target == "/api/v3/list-webhooks"  # None params left out
    assert client.list_webhooks(limit=51)["statusCode"] == 400

    assert client.get_webhook(wid)["data"] == hook
    assert last(emu, "/api/v3/get-webhook").query == {"webhookId": wid}
    missing = client.get_webhook("a/b")
    assert missing["statusCode"] == 404
    assert last(emu, "/api/v3/get-webhook").target == "/api/v3/get-webhook?webhookId=a%2Fb"

    updated = client.update_webhook(wid, name="renamed")
    assert updated["data"]["name"] == "renamed" and updated["data"]["secret"] == "s1"
    assert last(emu, "/api/v3/update-webhook").json == {"webhookId": wid, "name": "renamed"}

    triggered = client.trigger_webhook(wid, request_headers={"X-A": "b"}, request_body={"eventName": "test", "data": {"n": 1}})
    assert triggered["statusCode"] == 200
    assert triggered["data"]["response"] == {"received": True, "eventName": "test"}
    got = rx.received[-1]
    assert got.json == {"eventName": "test", "data": {"n": 1}} and got.header("X-A") == "b"
    assert got.header("x-authing-webhook-secret") == "s1"

    logs = client.get_webhook_logs(wid, page=1, limit=5)
    assert logs["data"]["totalCount"] == 1 and logs["data"]["list"][0]["success"] is True
    assert last(emu, "/api/v3/get-webhook-logs").json == {"webhookId": wid, "page": 1, "limit": 5}

    events = client.get_webhook_event_list()
    assert "test" in {e["value"] for e in events["data"]["events"]}

    deleted = client.delete_webhook([wid, "unknown"])
    assert deleted["data"] == {"success": True}
    assert client.get_webhook(wid)["statusCode"] == 404
    # One token for the whole session: its payload decoded fine.
    assert emu.token_fetches == 1


def test_official_sdk_needs_plain_base64_payloads():
    # Why the default user pool id matters: with a payload only base64url
    # decodes, the official SDK cannot even start.
    with E.Emulator(AK, SK, userpool_id=E.URLSAFE_USERPOOL_ID) as emu:
        client = OfficialClient(AK, SK, host=emu.url)
        # binascii.Error ("Incorrect padding") or a decode error: ValueErrors.
        with pytest.raises(ValueError):
            client.get_webhook_event_list()
    assert emu.token_fetches == 1 and [r.path for r in emu.requests] == [E.TOKEN_PATH]
