"""Checked by mypy in tests/test_typing.py: how a user writes code against
genauth_c's stubs."""
from typing import Any

import genauth_c
from genauth_c import ManagementClient

with ManagementClient("AK", "SK", "http://127.0.0.1:1", 5.0, "zh-CN", False,
                      tenant_id="T", brand="authing", auth="signature") as client:
    env: dict[str, Any] = client.trigger_webhook(
        "wh1", request_headers={"a": 1}, request_body=None)
    results = client.trigger_webhooks([{"webhook_id": "a"},
                                       {"webhook_id": "b", "request_body": {"x": 1}}],
                                      concurrency=4)
    for r in results:
        if isinstance(r, genauth_c.GenAuthError):
            print(r)
        else:
            print(r["statusCode"])
    host: str = client.host
    ak: str = client.access_key_id
    lang: str | None = client.lang
    unverified: bool = client.use_unverified_ssl
    created = client.create_webhook("application/json", ["user:created"], "http://x/hook",
                                    "hook", True, "s3cret", retry_config={"enabled": True, "count": 3})
    hook_id: str = created["data"]["webhookId"]
    client.list_webhooks(1, 10)
    client.list_webhooks(limit=5)
    client.get_webhook(hook_id)
    client.update_webhook(hook_id, name="renamed", events=("login",), enabled=False)
    client.delete_webhook([hook_id])
    client.get_webhook_logs(hook_id, page=1, limit=10)
    client.get_webhook_event_list()
ManagementClient("AK", "SK", None, 10.0, None, False, None, None)
try:
    pass
except genauth_c.TimeoutError as e:
    code: int | None = e.curl_code
except genauth_c.APIError as e:
    status: int | None = e.status_code
