"""Checked by mypy in tests/test_async_typing.py: how a user writes asyncio
code against genauth_c's stubs."""
import asyncio
from typing import Any

import genauth_c
from genauth_c import AsyncManagementClient


async def main() -> None:
    async with AsyncManagementClient("AK", "SK", "http://127.0.0.1:1", 5.0,
                                     brand="authing") as client:
        env: dict[str, Any] = await client.trigger_webhook(
            "wh1", request_headers={"a": 1}, request_body=None)
        results = await client.trigger_webhooks([{"webhook_id": "a"}],
                                                 concurrency=4)
        for r in results:
            if isinstance(r, genauth_c.GenAuthError):
                print(r)
            else:
                print(r["statusCode"], env["statusCode"])
        fetches: int = client.token_fetches
        print(fetches)
    await client.aclose()


asyncio.run(main())
