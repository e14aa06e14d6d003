"""Types that exist for type checkers and for callers who annotate.

Kept out of genauth_c/__init__.py so that `import genauth_c` does not import
`typing` (which costs more than the rest of the import); genauth_c loads this
module the first time one of its names is asked for.
"""
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

__all__ = ["TriggerWebhookCall"]


class TriggerWebhookCall(TypedDict):
    """One call of ManagementClient.trigger_webhooks: trigger_webhook's arguments."""

    webhook_id: str
    request_headers: NotRequired[Mapping[str, Any] | None]
    request_body: NotRequired[Mapping[str, Any] | None]
