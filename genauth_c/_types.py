"""Types that exist for type checkers and for callers who annotate.

Kept out of genauth_c/__init__.py so that `import genauth_c` does not import
`typing` (which costs more than the rest of the import); genauth_c loads this
module the first time one of its names is asked for.
"""
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, Required, TypeAlias, TypedDict

__all__ = ["TriggerWebhookCall", "ContentType", "RetryConfig", "WebhookDto",
           "WebhookLogDto"]


class TriggerWebhookCall(TypedDict):
    """One call of ManagementClient.trigger_webhooks: trigger_webhook's arguments."""

    webhook_id: str
    request_headers: NotRequired[Mapping[str, Any] | None]
    request_body: NotRequired[Mapping[str, Any] | None]


ContentType: TypeAlias = Literal["application/json", "application/x-www-form-urlencoded"]


class RetryConfig(TypedDict, total=False):
    """retryConfig of create_webhook / update_webhook: enabled is required."""

    enabled: Required[bool]
    count: int
    delay: int
    delayUnit: Literal["Second", "Minute", "Hour", "Day"]


class WebhookDto(TypedDict):
    """The ``data`` of create/get/update_webhook and the items of list_webhooks."""

    webhookId: str
    createdAt: str
    updatedAt: str
    name: str
    url: str
    contentType: str
    enabled: bool
    events: NotRequired[list[str]]
    secret: NotRequired[str]
    retryConfig: NotRequired[RetryConfig]


class WebhookLogDto(TypedDict):
    """The items of get_webhook_logs' ``data.list``."""

    webhookId: str
    eventName: str
    requestBody: Any
    requestHeaders: Any
    responseStatusCode: int
    responseHeaders: Any
    responseBody: Any
    timestamp: str
    success: bool
    errorMessage: NotRequired[str]
