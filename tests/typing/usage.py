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
try:
    pass
except genauth_c.TimeoutError as e:
    code: int | None = e.curl_code
except genauth_c.APIError as e:
    status: int | None = e.status_code
