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
        created = await client.create_webhook(
            "application/json", ["user:created"], "https://x/h", "n", True,
            retry_config={"enabled": True, "count": 3})
        hook_id: str = created["data"]["webhookId"]
        await client.update_webhook(hook_id, name="m", events=("login",))
        page: dict[str, Any] = await client.list_webhooks(page=1, limit=10)
        print(page, await client.get_webhook(hook_id))
        await client.get_webhook_logs(hook_id, 1)
        await client.get_webhook_event_list()
        await client.delete_webhook([hook_id])
        fetches: int = client.token_fetches
        lang: str | None = client.lang
        print(fetches, lang, client.access_key_id)
    await client.aclose()


asyncio.run(main())
