import builtins
import os
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Literal, NotRequired, TypedDict

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

class TriggerWebhookCall(TypedDict):
    webhook_id: str
    request_headers: NotRequired[Mapping[str, Any] | None]
    request_body: NotRequired[Mapping[str, Any] | None]

class ManagementClient:
    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        host: str | None = None,
        timeout: float = 10.0,
        lang: str | None = None,
        use_unverified_ssl: bool = False,
        *,
        tenant_id: str | None = None,
        brand: Literal["genauth", "authing"] = "genauth",
        ca_bundle: str | os.PathLike[str] | None = None,
        raise_for_status: bool = False,
        max_response_bytes: int = 16777216,
        auth: Literal["token", "signature"] = "token",
    ) -> None: ...
    @property
    def host(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def closed(self) -> bool: ...
    @property
    def token_fetches(self) -> int: ...
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
        access_key_id: str,
        access_key_secret: str,
        host: str | None = None,
        timeout: float = 10.0,
        lang: str | None = None,
        use_unverified_ssl: bool = False,
        *,
        tenant_id: str | None = None,
        brand: Literal["genauth", "authing"] = "genauth",
        ca_bundle: str | os.PathLike[str] | None = None,
        raise_for_status: bool = False,
        max_response_bytes: int = 16777216,
        auth: Literal["token", "signature"] = "token",
    ) -> None: ...
    @property
    def host(self) -> str: ...
    @property
    def timeout(self) -> float: ...
    @property
    def closed(self) -> bool: ...
    @property
    def token_fetches(self) -> int: ...
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
    async def __aenter__(self) -> AsyncManagementClient: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]: ...
