"""Each line is a mistake the stubs must catch (mypy must report errors)."""
from genauth_c import AsyncManagementClient

client = AsyncManagementClient("AK", "SK")
result: dict[str, object] = client.trigger_webhook("wh")
client.trigger_webhooks([{"webhook": "x"}])
AsyncManagementClient("AK", "SK", auth="other")
listed: dict[str, object] = client.list_webhooks()
client.get_webhook(webhook="x")
client.delete_webhook("one-id")
client.create_webhook("application/json", ["e"], "u")
