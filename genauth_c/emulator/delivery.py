"""Delivering a webhook: one real HTTP POST to the subscriber's URL.

The request is what GenAuth sends (genauth-v3.md section 2): the event body
as JSON, or form-encoded when the webhook's ``contentType`` is
``application/x-www-form-urlencoded`` (nested values as compact JSON), with
``user-agent: authing-webhook@2.0``, ``x-authing-webhook-secret`` (the
webhook's secret, when it has one), ``x-authing-userpool-id`` and
``x-authing-token`` (an opaque token, new for each delivery). With
``brand="genauth"`` the names are ``x-genauth-*`` and the user agent
``genauth-webhook@2.0``. The caller's ``requestHeaders`` go first; they cannot
override those protocol headers.

Every attempt yields a WebhookLogDto, failed ones too: ``success`` false and
``errorMessage`` a Node-style code (``ECONNREFUSED``, ``ERRTIMEOUT``, ...).
"""

from __future__ import annotations

import errno
import http.client
import re
import socket
import ssl
import threading
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .constants import DEFAULT_EVENT, FORM_CONTENT_TYPE, MAX_BODY_BYTES
from .jsform import compact, dumps, js_string, loads
from .store import now_iso

__all__ = ["Delivery", "deliver", "error_code"]

_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Framing is the HTTP client's business, not the caller's.
_FRAMING_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


@dataclass
class Delivery:
    """The outcome of one delivery: its log entry, and the subscriber's answer
    (parsed JSON, or text) or the error code when there was none."""

    log: dict[str, Any]
    answer: Any = None
    error: str | None = None
    detail: str = ""


def error_code(exc: BaseException) -> str:
    """A Node-style code for a failed delivery (what errorMessage holds)."""
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "ERRTIMEOUT"
    if isinstance(exc, socket.gaierror):
        return "ENOTFOUND"
    if isinstance(exc, ssl.SSLError):
        return "EPROTO"
    if isinstance(exc, OSError) and exc.errno is not None and exc.errno in errno.errorcode:
        return errno.errorcode[exc.errno]
    if isinstance(exc, ConnectionResetError):  # RemoteDisconnected has no errno
        return "ECONNRESET"
    if isinstance(exc, http.client.HTTPException):
        return "EPROTO"
    return "EIO"


def _encode_body(body: Mapping[str, Any], content_type: str) -> bytes:
    if content_type == FORM_CONTENT_TYPE:
        form = [(k, v if isinstance(v, str) else compact(v) if isinstance(v, (dict, list)) else js_string(v)) for k, v in body.items()]
        return urllib.parse.urlencode(form).encode("ascii")
    return dumps(body)


def _headers(hook: Mapping[str, Any], caller: Mapping[str, Any] | None, userpool_id: str, brand: str) -> list[tuple[str, str]]:
    prefix = "x-genauth-" if brand == "genauth" else "x-authing-"
    fixed = [("user-agent", f"{brand}-webhook@2.0")]
    if hook.get("secret") is not None:
        fixed.append((prefix + "webhook-secret", hook["secret"]))
    fixed += [
        (prefix + "userpool-id", userpool_id),
        (prefix + "token", uuid.uuid4().hex),
        ("content-type", hook["contentType"]),
    ]
    reserved = {name for name, _ in fixed} | {prefix + "webhook-secret"} | _FRAMING_HEADERS
    headers: list[tuple[str, str]] = []
    for name, value in (caller or {}).items():
        if name.lower() in reserved:
            continue
        if not _TOKEN_RE.match(name):
            raise ValueError(f"requestHeaders: invalid header name {name!r}")
        text = value if isinstance(value, str) else compact(value)
        if any(c in text for c in "\r\n\0"):
            raise ValueError(f"requestHeaders: header {name!r} holds a line break or NUL")
        headers.append((name, text))
    return headers + fixed


def _expire(sock: socket.socket, expired: threading.Event) -> None:
    expired.set()
    try:
        sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
    except OSError:
        pass


def _read_answer(resp: http.client.HTTPResponse, expired: threading.Event) -> bytes:
    """The subscriber's whole body, at most MAX_BODY_BYTES of it (more would
    sit in memory and in the log). read(n) does not say that a body was cut
    short, as read() does: the length left says it."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_BODY_BYTES:
        chunk = resp.read(MAX_BODY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    if expired.is_set():
        raise TimeoutError("the subscriber did not finish answering in time")
    if size > MAX_BODY_BYTES:
        raise OSError(errno.EMSGSIZE, f"the subscriber answered more than {MAX_BODY_BYTES} bytes")
    if resp.length:  # bytes of its Content-Length that never came
        raise http.client.IncompleteRead(b"".join(chunks), resp.length)
    return b"".join(chunks)


def deliver(
    hook: Mapping[str, Any],
    request_headers: Mapping[str, Any] | None,
    request_body: Mapping[str, Any] | None,
    *,
    userpool_id: str,
    brand: str = "authing",
    timeout: float = 5.0,
) -> Delivery:
    """POST one event to ``hook["url"]``; never raises for a subscriber's failure.

    Raises ValueError (before anything is sent) for caller headers that
    cannot go on the wire.
    """
    body = request_body if request_body is not None else DEFAULT_EVENT
    headers = _headers(hook, request_headers, userpool_id, brand)
    data = _encode_body(body, hook["contentType"])
    log: dict[str, Any] = {
        "webhookId": hook["webhookId"],
        "eventName": body.get("eventName", ""),
        "requestBody": body,
        "requestHeaders": dict(headers),
        "responseStatusCode": 0,
        "responseHeaders": {},
        "responseBody": "",
        "timestamp": now_iso(),
        "success": False,
    }
    url = urllib.parse.urlsplit(hook["url"])
    conn_class = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    target = (url.path or "/") + ("?" + url.query if url.query else "")
    # `timeout` bounds each socket operation; the timer bounds the whole
    # exchange, which a subscriber answering a byte at a time (or endlessly)
    # would otherwise hold, with the caller's request, for ever.
    expired = threading.Event()
    timer: threading.Timer | None = None
    try:
        conn = conn_class(url.hostname or "127.0.0.1", url.port, timeout=timeout)
        try:
            conn.connect()
            timer = threading.Timer(timeout, _expire, (conn.sock, expired))
            timer.daemon = True
            timer.start()
            conn.putrequest("POST", target, skip_accept_encoding=True)
            for name, text in headers:
                conn.putheader(name, text.encode("utf-8"))
            conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            resp = conn.getresponse()
            raw = _read_answer(resp, expired)
        finally:
            if timer is not None:
                timer.cancel()
            conn.close()
    except (OSError, http.client.HTTPException, ValueError) as exc:  # ValueError: a bad port in the URL
        code = "ERRTIMEOUT" if expired.is_set() else error_code(exc)
        log["errorMessage"] = code
        return Delivery(log, error=code, detail=f"{code}: {exc}")
    text = raw.decode("utf-8", "replace")
    try:
        answer: Any = loads(raw)
    except ValueError:
        answer = text
    log.update(
        responseStatusCode=resp.status,
        responseHeaders=dict(resp.getheaders()),
        responseBody=text,
        success=200 <= resp.status < 300,
    )
    return Delivery(log, answer=answer)
