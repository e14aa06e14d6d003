"""The webhook store: webhooks (WebhookDto), delivery logs (WebhookLogDto),
delivery counts, pagination, and the event list.

Everything here is plain data guarded by one lock; nothing does I/O. The
dicts handed out are copies, in the key order of the reference's DTOs.
"""

from __future__ import annotations

import datetime as _dt
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from .constants import DEFAULT_PAGE_LIMIT, FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, MAX_PAGE_LIMIT

__all__ = ["WebhookStore", "EVENT_LIST", "EVENT_NAMES", "check_webhook_fields", "parse_paging", "now_iso"]

# (name, nameEn, value) of each category, then (name, nameEn, value) of each
# event; an event's category is the part of its value before ':' ("user" for
# login/register).
_CATEGORIES = [
    ("用户", "User", "user"),
    ("角色", "Role", "role"),
    ("分组", "Group", "group"),
    ("组织机构", "Organization", "organization"),
    ("测试", "Test", "test"),
]
_EVENTS = [
    ("测试", "Test", "test", "test"),
    ("用户登录", "User login", "login", "user"),
    ("用户注册", "User registration", "register", "user"),
    ("创建用户", "User created", "user:created", "user"),
    ("修改用户", "User updated", "user:updated", "user"),
    ("删除用户", "User deleted", "user:deleted", "user"),
    ("修改密码", "Password changed", "user:password-changed", "user"),
    ("创建角色", "Role created", "role:created", "role"),
    ("删除角色", "Role deleted", "role:deleted", "role"),
    ("创建分组", "Group created", "group:created", "group"),
    ("删除分组", "Group deleted", "group:deleted", "group"),
    ("创建组织机构", "Organization created", "organization:created", "organization"),
    ("删除组织机构", "Organization deleted", "organization:deleted", "organization"),
]
EVENT_LIST: dict[str, list[dict[str, str]]] = {
    "categories": [{"name": n, "nameEn": en, "value": v} for n, en, v in _CATEGORIES],
    "events": [{"name": n, "nameEn": en, "value": v, "category": c} for n, en, v, c in _EVENTS],
}
EVENT_NAMES = frozenset(v for _, _, v, _ in _EVENTS)
_DELAY_UNITS = ("Second", "Minute", "Hour", "Day")
_DIGITS_RE = re.compile(r"[0-9]{1,18}")
# The fields of a WebhookDto a caller may set, in the DTO's key order.
_SETTABLE = ("name", "url", "contentType", "enabled", "events", "secret", "retryConfig")


def now_iso() -> str:
    """The current UTC time as ``2026-11-26T20:24:02.123Z``."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _is_int(value: object) -> TypeGuard[int | float]:
    """An integer to the API, a JavaScript server: its JSON.parse reads 3.0
    and 1e1 as the numbers 3 and 10, which are integers."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _stored_retry_config(value: Mapping[str, Any]) -> dict[str, Any]:
    """retryConfig as the API keeps it: a count or delay given as 3.0 or 1e1
    is the number 3 or 10, which JSON.stringify answers as 3 and 10."""
    return {k: int(v) if k in ("count", "delay") and isinstance(v, float) and _is_int(v) else v
            for k, v in value.items()}


def _check_retry_config(value: object) -> str | None:
    if not isinstance(value, dict):
        return "retryConfig must be an object"
    # {enabled, count?, delay?, delayUnit?}: only enabled is required.
    if not isinstance(value.get("enabled"), bool):
        return "retryConfig.enabled is required and must be a boolean"
    for key in ("count", "delay"):
        if key in value and value[key] is not None and not (_is_int(value[key]) and value[key] >= 0):
            return f"retryConfig.{key} must be a non-negative integer"
    if value.get("delayUnit") is not None and value["delayUnit"] not in _DELAY_UNITS:
        return "retryConfig.delayUnit must be one of " + ", ".join(_DELAY_UNITS)
    return None


def check_webhook_fields(body: Mapping[str, Any], creating: bool) -> str | None:
    """What is wrong with a create/update body, or None. null counts as absent."""
    given = {k: v for k, v in body.items() if v is not None}
    for key in ("contentType", "events", "url", "name") if creating else ():
        if key not in given:
            return f"{key} is required"
    if "contentType" in given and given["contentType"] not in (JSON_CONTENT_TYPE, FORM_CONTENT_TYPE):
        return f"contentType must be {JSON_CONTENT_TYPE} or {FORM_CONTENT_TYPE}"
    if "events" in given:
        events = given["events"]
        if not (isinstance(events, list) and all(isinstance(e, str) for e in events)):
            return "events must be an array of strings"
        unknown = [e for e in events if e not in EVENT_NAMES]
        if unknown:
            return f"unknown event {unknown[0]!r} (see get-webhook-event-list)"
    for key in ("url", "name", "secret"):
        if key in given and not isinstance(given[key], str):
            return f"{key} must be a string"
    if "url" in given and not re.match(r"https?://[^/?#\s]+", given["url"]):
        return "url must be an http:// or https:// URL"
    if "enabled" in given and not isinstance(given["enabled"], bool):
        return "enabled must be a boolean"
    if "retryConfig" in given:
        return _check_retry_config(given["retryConfig"])
    return None


def parse_paging(page: object, limit: object, *, query: bool) -> tuple[int, int]:
    """(page, limit) from a JSON body's integers, or a query string's digits (``query``).

    Absent (None) means page 1, limit 10. Raises ValueError with the message
    for a 400 envelope: page from 1, limit from 1 to 50.
    """
    values = []
    for name, value, default in (("page", page, 1), ("limit", limit, DEFAULT_PAGE_LIMIT)):
        if value is None:
            values.append(default)
        elif not query and _is_int(value):
            values.append(int(value))
        elif query and isinstance(value, str) and _DIGITS_RE.fullmatch(value):
            values.append(int(value))
        else:
            raise ValueError(f"{name} must be an integer")
    if values[0] < 1:
        raise ValueError("page must be >= 1")
    if not 1 <= values[1] <= MAX_PAGE_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_LIMIT}")
    return values[0], values[1]


def _page(items: list[dict[str, Any]], page: int, limit: int) -> dict[str, Any]:
    return {"totalCount": len(items), "list": items[(page - 1) * limit : page * limit]}


class WebhookStore:
    """Webhooks by id (in creation order), their delivery logs and counts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._webhooks: dict[str, dict[str, Any]] = {}
        self.logs: list[dict[str, Any]] = []  # oldest first
        self._counts: dict[str, int] = {}

    def add(
        self,
        webhook_id: str,
        url: str,
        content_type: str = JSON_CONTENT_TYPE,
        secret: str | None = None,
        *,
        name: str | None = None,
        events: Iterable[str] | None = None,
        enabled: bool = True,
        retry_config: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Register (or replace) a webhook; returns its WebhookDto."""
        now = now_iso()
        hook: dict[str, Any] = {
            "webhookId": webhook_id,
            "createdAt": now,
            "updatedAt": now,
            "name": name or webhook_id,
            "url": url,
            "contentType": content_type,
            "enabled": enabled,
            "events": list(events) if events is not None else ["test"],
        }
        if secret is not None:
            hook["secret"] = secret
        if retry_config is not None:
            hook["retryConfig"] = _stored_retry_config(retry_config)
        with self._lock:
            self._webhooks[webhook_id] = hook
            return dict(hook)

    def create(self, body: Mapping[str, Any], default_secret: str) -> dict[str, Any]:
        """A new webhook from a checked create-webhook body, with a new id."""
        given = {k: v for k, v in body.items() if v is not None}
        return self.add(
            uuid.uuid4().hex[:24],
            given["url"],
            given["contentType"],
            given.get("secret", default_secret),
            name=given["name"],
            events=given["events"],
            enabled=given.get("enabled", True),
            retry_config=given.get("retryConfig"),
        )

    def update(self, webhook_id: str, body: Mapping[str, Any]) -> dict[str, Any] | None:
        """Change only the fields given (not null); None for an unknown id."""
        with self._lock:
            hook = self._webhooks.get(webhook_id)
            if hook is None:
                return None
            for key in _SETTABLE:
                if body.get(key) is not None:
                    hook[key] = _stored_retry_config(body[key]) if key == "retryConfig" else body[key]
            hook["updatedAt"] = now_iso()
            # Keep the DTO's key order when a field was added.
            order = ("webhookId", "createdAt", "updatedAt") + _SETTABLE
            fresh = {k: hook[k] for k in order if k in hook}
            self._webhooks[webhook_id] = fresh
            return dict(fresh)

    def delete(self, webhook_ids: Iterable[str]) -> None:
        """Forget these webhooks; unknown ids are ignored."""
        with self._lock:
            for webhook_id in webhook_ids:
                self._webhooks.pop(webhook_id, None)

    def get(self, webhook_id: str) -> dict[str, Any] | None:
        """A copy of the webhook's WebhookDto, or None."""
        with self._lock:
            hook = self._webhooks.get(webhook_id)
            return dict(hook) if hook is not None else None

    def page(self, page: int, limit: int) -> dict[str, Any]:
        """``{totalCount, list}`` of the webhooks, in creation order."""
        with self._lock:
            hooks = [dict(h) for h in self._webhooks.values()]
        return _page(hooks, page, limit)

    def log_delivery(self, entry: dict[str, Any]) -> None:
        """Record one delivery attempt (a WebhookLogDto), failed ones too."""
        with self._lock:
            self.logs.append(entry)
            webhook_id = entry["webhookId"]
            self._counts[webhook_id] = self._counts.get(webhook_id, 0) + 1

    def logs_page(self, webhook_id: str, page: int, limit: int) -> dict[str, Any]:
        """``{totalCount, list}`` of one webhook's logs, newest first."""
        with self._lock:
            logs = [dict(e) for e in reversed(self.logs) if e["webhookId"] == webhook_id]
        return _page(logs, page, limit)

    def delivery_count(self, webhook_id: str) -> int:
        """How many deliveries (attempts, failed ones too) were made to this webhook."""
        with self._lock:
            return self._counts.get(webhook_id, 0)

    def delivery_counts(self) -> dict[str, int]:
        """webhookId -> deliveries attempted, for every webhook delivered to."""
        with self._lock:
            return dict(self._counts)

    def clear_records(self) -> None:
        """Forget the logs and counts (the webhooks stay)."""
        with self._lock:
            self.logs = []
            self._counts = {}
