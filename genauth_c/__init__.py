"""genauth_c: a client for GenAuth's V3 management API with a C engine.

    from genauth_c import ManagementClient
    with ManagementClient("ACCESS_KEY_ID", "ACCESS_KEY_SECRET") as client:
        envelope = client.trigger_webhook("6229ffaxxxxxxxxcade3e3d9")
"""
try:
    from genauth_c import _core  # noqa: F401  (the C engine)
except ImportError as e:  # pragma: no cover - depends on how it was installed
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
]


def __getattr__(name):
    # AsyncManagementClient imports asyncio (about 20 ms): only when asked.
    if name == "AsyncManagementClient":
        from genauth_c._aio import AsyncManagementClient

        globals()[name] = AsyncManagementClient
        return AsyncManagementClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
