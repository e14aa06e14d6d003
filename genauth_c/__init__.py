"""genauth_c: a client for GenAuth's V3 management API with a C engine.

    from genauth_c import ManagementClient
    with ManagementClient("ACCESS_KEY_ID", "ACCESS_KEY_SECRET") as client:
        envelope = client.trigger_webhook("6229ffaxxxxxxxxcade3e3d9")
"""
# The library's logger, "genauth_c", stays silent unless the application
# configures logging (logging.basicConfig(level=logging.DEBUG) shows every
# request). The C engine takes it once the application has imported logging,
# so that importing genauth_c does not.
try:
    from genauth_c import _core  # noqa: F401  (the C engine)
except ImportError as e:  # pragma: no cover - depends on how it was installed
    from importlib.util import find_spec
    if find_spec(__name__ + "._core") is not None:
        raise  # built, but it did not load: its own error says why
    raise ImportError(
        "genauth_c's C extension is not built in " + __path__[0] + ": install the "
        "package (pip install .) and import it from outside its source folder, or "
        "build it here with `make install`") from e
from genauth_c._core import (
    APIError,
    AuthError,
    ClientClosedError,
    DecodeError,
    GenAuthError,
    ManagementClient,
    TimeoutError,
    TransportError,
    __version__,
    curl_version,
    MAX_DEPTH,
    DEFAULT_MAX_RESPONSE_BYTES,
)

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

# Names served from other modules on first use (PEP 562), so that importing
# genauth_c stays cheap: genauth_c._types imports typing.
_LAZY = {name: "genauth_c._types" for name in (
    "TriggerWebhookCall", "ContentType", "RetryConfig", "WebhookDto", "WebhookLogDto")}
_LAZY["AsyncManagementClient"] = "genauth_c._aio"  # it imports asyncio


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'genauth_c' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
