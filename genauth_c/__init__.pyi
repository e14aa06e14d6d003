# genauth_c's type stubs: what type checkers and IDEs read for the C module
# and the lazily imported names. `make typecheck` (stubtest) checks them
# against the built module; tests/typing holds what mypy must accept and
# refuse. Every API method has two stubs: ManagementClient's and
# AsyncManagementClient's coroutine.
import builtins
import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, final

from genauth_c._types import ContentType as ContentType
from genauth_c._types import RetryConfig as RetryConfig
from genauth_c._types import TriggerWebhookCall as TriggerWebhookCall
from genauth_c._types import WebhookDto as WebhookDto
from genauth_c._types import WebhookLogDto as WebhookLogDto

__all__ = [
    "APIError",
    "AsyncManagementClient",
    "AuthError",
    "ClientClosedError",
    "DecodeError",
    "GenAuthError",
    "ManagementClient",
    "TimeoutError",
    "TransportError",
    "__version__",
    "curl_version",
    "MAX_DEPTH",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "TriggerWebhookCall",
    "ContentType",
    "RetryConfig",
    "WebhookDto",
    "WebhookLogDto",
]

__version__: str
curl_version: str
MAX_DEPTH: int
DEFAULT_MAX_RESPONSE_BYTES: int

class GenAuthError(Exception): ...

class TransportError(GenAuthError):
    curl_code: int | None

class TimeoutError(TransportError, builtins.TimeoutError): ...

class DecodeError(GenAuthError, ValueError):
    http_status: int | None
    excerpt: bytes | None

class AuthError(GenAuthError):
    status_code: int | None
    api_code: int | None
    message: str | None
    request_id: str | None
    response: dict[str, Any] | None
    http_status: int | None

class APIError(GenAuthError):
    status_code: int | None
    api_code: int | None
    message: str | None
    request_id: str | None
    response: dict[str, Any] | None
    http_status: int | None

class ClientClosedError(GenAuthError, RuntimeError): ...

# A C type without Py_TPFLAGS_BASETYPE: it cannot be subclassed.
@final
class ManagementClient:
    def __init__(
        self,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        host: str | None = None,
        timeout: float | None = 10.0,
        lang: str | None = None,
        use_unverified_ssl: bool = False,
        websocket_host: str | None = None,
        websocket_endpoint: str | None = None,
        *,
        tenant_id: str | None = None,
        brand: Literal["genauth", "authing"] = "genauth",
        ca_bundle: str | os.PathLike[str] | None = None,
        raise_for_status: bool = False,
        max_response_bytes: int = 16777216,
        auth: Literal["token", "signature"] = "token",
        max_retries: int = 2,
    ) -> None: ...
    @property
    def host(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def access_key_id(self) -> str: ...
    @property
    def lang(self) -> str | None: ...
    @property
    def use_unverified_ssl(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def token_fetches(self) -> int: ...
    def create_webhook(
        self,
        content_type: ContentType,
        events: list[str] | tuple[str, ...],
        url: str,
        name: str,
        enabled: bool | None = None,
        secret: str | None = None,
        *,
        retry_config: RetryConfig | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    def list_webhooks(self, page: int | None = None, limit: int | None = None) -> dict[str, Any]: ...
    def get_webhook(self, webhook_id: str) -> dict[str, Any]: ...
    def update_webhook(
        self,
        webhook_id: str,
        name: str | None = None,
        url: str | None = None,
        events: list[str] | tuple[str, ...] | None = None,
        content_type: ContentType | None = None,
        enabled: bool | None = None,
        secret: str | None = None,
        *,
        retry_config: RetryConfig | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    def delete_webhook(self, webhook_ids: list[str] | tuple[str, ...]) -> dict[str, Any]: ...
    def get_webhook_logs(
        self, webhook_id: str, page: int | None = None, limit: int | None = None
    ) -> dict[str, Any]: ...
    def get_webhook_event_list(self) -> dict[str, Any]: ...
    def trigger_webhook(
        self,
        webhook_id: str,
        request_headers: Mapping[str, Any] | None = None,
        request_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    def trigger_webhooks(
        self,
        calls: Iterable[TriggerWebhookCall],
        *,
        concurrency: int = 16,
    ) -> list[dict[str, Any] | GenAuthError]: ...
    def close(self) -> None: ...
    def __reduce__(self) -> tuple[Any, ...]: ...
    def __enter__(self) -> ManagementClient: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...

class AsyncManagementClient:
    def __init__(
        self,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        host: str | None = None,
        timeout: float | None = 10.0,
        lang: str | None = None,
        use_unverified_ssl: bool = False,
        websocket_host: str | None = None,
        websocket_endpoint: str | None = None,
        *,
        tenant_id: str | None = None,
        brand: Literal["genauth", "authing"] = "genauth",
        ca_bundle: str | os.PathLike[str] | None = None,
        raise_for_status: bool = False,
        max_response_bytes: int = 16777216,
        auth: Literal["token", "signature"] = "token",
        max_retries: int = 2,
    ) -> None: ...
    @property
    def host(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def access_key_id(self) -> str: ...
    @property
    def lang(self) -> str | None: ...
    @property
    def use_unverified_ssl(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def token_fetches(self) -> int: ...
    async def create_webhook(
        self,
        content_type: ContentType,
        events: list[str] | tuple[str, ...],
        url: str,
        name: str,
        enabled: bool | None = None,
        secret: str | None = None,
        *,
        retry_config: RetryConfig | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    async def list_webhooks(
        self, page: int | None = None, limit: int | None = None
    ) -> dict[str, Any]: ...
    async def get_webhook(self, webhook_id: str) -> dict[str, Any]: ...
    async def update_webhook(
        self,
        webhook_id: str,
        name: str | None = None,
        url: str | None = None,
        events: list[str] | tuple[str, ...] | None = None,
        content_type: ContentType | None = None,
        enabled: bool | None = None,
        secret: str | None = None,
        *,
        retry_config: RetryConfig | Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    async def delete_webhook(
        self, webhook_ids: list[str] | tuple[str, ...]
    ) -> dict[str, Any]: ...
    async def get_webhook_logs(
        self, webhook_id: str, page: int | None = None, limit: int | None = None
    ) -> dict[str, Any]: ...
    async def get_webhook_event_list(self) -> dict[str, Any]: ...
    async def trigger_webhook(
        self,
        webhook_id: str,
        request_headers: Mapping[str, Any] | None = None,
        request_body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]: ...
    async def trigger_webhooks(
        self,
        calls: Iterable[TriggerWebhookCall],
        *,
        concurrency: int = 16,
    ) -> list[dict[str, Any] | GenAuthError]: ...
    async def aclose(self) -> None: ...
    def __del__(self) -> None: ...
    async def __aenter__(self) -> AsyncManagementClient: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...
