"""The official genauth 5.1.0 SDK and genauth_c, called with the same
arguments against one emulator: the same requests on the wire (method, path,
query parameters, parsed JSON body, Content-Type; the official SDK spaces its
JSON, so not byte for byte) and equal envelopes back."""
import json
import urllib.parse

import pytest

from genauth_c import ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver

genauth = pytest.importorskip(
    "genauth", reason="the official SDK (pip install genauth==5.1.0 websockets) is not installed")

AK, SK = "AKID-diff", "SECRET-diff"
# The official SDK decodes the token's payload with plain base64, which
# drops base64url's '-' and '_' and then fails with "Incorrect padding". In
# ASCII text only '>', '?', '~' and DEL can yield them, so a user pool id
# without those decodes either way.
USERPOOL_ID = "6229ffa0c0de0differential0pool"
JSON_TYPE = "application/json"
# Values that differ from call to call (fresh ids, clocks, request ids).
VOLATILE = {"requestId", "webhookId", "createdAt", "updatedAt", "timestamp"}


def stable(value):
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def wire(emu, start):
    """The API requests the emulator saw from emu.requests[start], comparable
    (not reset_records(): that would clear the delivery log too)."""
    out = []
    for rec in emu.requests[start:]:
        if rec.path.endswith("/get-management-token"):
            continue
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(rec.target).query,
                                      keep_blank_values=True)
        body = json.loads(rec.body) if rec.body else None
        # A body's type, and none without a body (a GET).
        out.append((rec.method, rec.path, query, body, rec.header("content-type")))
    return out


@pytest.fixture
def setup():
    with WebhookReceiver() as rx, Emulator(AK, SK, userpool_id=USERPOOL_ID) as emu:
        official = genauth.ManagementClient(AK, SK, host=emu.url)
        with ManagementClient(AK, SK, host=emu.url) as ours:
            yield emu, rx, official, ours


def both(emu, official, ours, method, /, *args, **kwargs):
    """Calls `method` on both clients; asserts the same wire requests and
    equal envelopes; returns (official envelope, ours)."""
    start = len(emu.requests)
    theirs_env = getattr(official, method)(*args, **kwargs)
    theirs_wire = wire(emu, start)
    start = len(emu.requests)
    ours_env = getattr(ours, method)(*args, **kwargs)
    ours_wire = wire(emu, start)
    assert len(ours_wire) == 1, ours_wire
    assert ours_wire == theirs_wire, method
    assert stable(ours_env) == stable(theirs_env), method
    assert list(ours_env) == list(theirs_env), method
    return theirs_env, ours_env


def test_all_eight_methods_agree(setup):
    emu, rx, official, ours = setup
    theirs, _ = both(emu, official, ours, "get_webhook_event_list")
    assert theirs["statusCode"] == 200

    theirs, mine = both(emu, official, ours, "create_webhook", JSON_TYPE,
                        ["user:created", "test"], rx.url + "/hook", "diff", True, "s3cret")
    assert theirs["statusCode"] == 200
    hook_a, hook_b = theirs["data"]["webhookId"], mine["data"]["webhookId"]
    # None arguments are left out by both.
    both(emu, official, ours, "create_webhook", JSON_TYPE, ["login"], rx.url + "/h2", "other",
         None, None)

    theirs, _ = both(emu, official, ours, "list_webhooks", 1, 10)
    assert theirs["data"]["totalCount"] == 4  # two creates by each client
    both(emu, official, ours, "list_webhooks")
    both(emu, official, ours, "list_webhooks", page=2, limit=1)
    theirs, _ = both(emu, official, ours, "list_webhooks", limit=51)
    assert theirs["statusCode"] == 400  # the server's rule, for both

    theirs, _ = both(emu, official, ours, "get_webhook", hook_a)
    assert theirs["data"]["name"] == "diff"
    theirs, _ = both(emu, official, ours, "get_webhook", "no/such id")
    assert theirs["statusCode"] == 404

    theirs, _ = both(emu, official, ours, "update_webhook", hook_a, name="renamed", enabled=False)
    assert theirs["data"]["name"] == "renamed"
    both(emu, official, ours, "update_webhook", hook_a, "n2", rx.url + "/h3", ["test"], JSON_TYPE,
         True, "s4")

    theirs, _ = both(emu, official, ours, "trigger_webhook", hook_a, {"X-A": "b"},
                     {"eventName": "test", "data": {"z": 1, "a": "中文"}})
    assert theirs["statusCode"] == 200

    theirs, _ = both(emu, official, ours, "get_webhook_logs", hook_a, 1, 10)
    assert theirs["data"]["totalCount"] == 2
    both(emu, official, ours, "get_webhook_logs", hook_a)

    theirs, _ = both(emu, official, ours, "delete_webhook", [hook_b, "unknown"])
    assert theirs["data"] == {"success": True}
    theirs, _ = both(emu, official, ours, "list_webhooks")
    assert theirs["data"]["totalCount"] == 3
