"""Each line is a mistake the stubs must catch (mypy must report errors)."""
from genauth_c import ManagementClient

client = ManagementClient("AK", "SK")
client.trigger_webhook(123)
client.trigger_webhook("wh", request_body="not a mapping")
ManagementClient("AK", "SK", brand="other")
client.trigger_webhooks([{"webhook": "x"}])
client.create_webhook("application/json", "user:created", "http://x", "n")
client.list_webhooks(page="1")
client.update_webhook("wh", enabled="yes")
client.delete_webhook("wh")
client.get_webhook_logs("wh", retry_config={})
client.create_webhook("text/plain", ["user:created"], "http://x", "n")
