"""What the emulator and the webhook receiver saw: one record per request."""

from __future__ import annotations

import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .jsform import loads

__all__ = ["RequestRecord", "ReceivedRequest"]


class _HeaderLookup:
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of a header, case-insensitively."""
        lname = name.lower()
        for n, v in self.headers:
            if n.lower() == lname:
                return v
        return default

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None."""
        try:
            return loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass
class RequestRecord(_HeaderLookup):
    """One request as the emulator saw it.

    ``headers`` are (name, value) pairs in wire order with their original case.
    ``auth`` is ``"token"``, ``"signature"`` or None (no credentials, or the
    token endpoint); ``brand`` is ``"genauth"``, ``"authing"`` or
    ``"genauth+authing"`` (both user pool headers sent); ``auth_error`` is the
    apiCode of an authentication failure. ``string_to_sign`` is what the
    emulator rebuilt for a signed request (handy when a signature mismatches).
    ``status`` is the HTTP status answered; None when the connection was
    dropped or reset instead.
    """

    method: str
    path: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    auth: str | None = None
    brand: str | None = None
    auth_error: int | None = None
    string_to_sign: str | None = None
    status: int | None = None
    time: float = field(default_factory=time.time)

    @property
    def query(self) -> dict[str, str]:
        """The query string's parameters, percent-decoded (last value wins)."""
        return dict(urllib.parse.parse_qsl(self.target.partition("?")[2], keep_blank_values=True))


@dataclass
class ReceivedRequest(_HeaderLookup):
    """One request a :class:`WebhookReceiver` got (headers in wire order, UTF-8 decoded)."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as application/x-www-form-urlencoded."""
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))
