"""A local GenAuth V3 management API emulator for genauth-c's tests and demo.

The emulator is a real HTTP/1.1 server (keep-alive, Content-Length on every
answer) bound to 127.0.0.1. It speaks the parts of the V3 API that genauth-c
uses, with both authentication schemes and both brands:

* ``POST /api/v3/get-management-token`` issues HS256 JWTs whose payload holds
  ``scoped_userpool_id``. The default user pool id is chosen so that the
  payload's base64url form contains ``-`` / ``_``: a client that decodes it as
  plain base64 fails against the emulator, as it would against real tokens.
* Every other ``/api/v3/*`` endpoint accepts either ``authorization: Bearer
  <token>`` plus ``x-genauth-userpool-id`` / ``x-authing-userpool-id``, or an
  AK/SK HMAC-SHA1 request signature (scheme word ``authing`` with
  ``x-authing-*`` headers, or ``GenAuth`` with ``x-genauth-*`` headers).
* ``POST /api/v3/trigger-webhook`` really POSTs to the registered webhook URL
  and returns the subscriber's answer in ``data.response``. The webhook CRUD
  endpoints (create/update/delete/get/list, logs, event list) are emulated too.

Knobs (plain attributes, settable at any time) inject latency, forced status
codes, non-JSON bodies, dropped connections and token expiry; every request is
recorded with its headers in wire order and the authentication scheme used.

Choices the reference leaves UNKNOWN, made here and kept stable for tests:

============================  ============  =======  =============================
situation                     HTTP status   status   apiCode
============================  ============  =======  =============================
invalid argument / bad JSON   200 (knob)    400      1000
wrong AK/SK at token endpoint 200           401      1310
no/unknown Bearer token       401 (knob)    401      1020 missing, 1021 invalid
expired token                 401 (knob)    401      1022
user pool header bad/missing  401 (knob)    401      1023
signature: bad signature      401 (knob)    401      1300
signature: malformed headers  401 (knob)    401      1301 (no nonce, bad header)
signature: unknown AK         401 (knob)    401      1302
signature: method/version     401 (knob)    401      1303
signature: missing date       401 (knob)    401      1304
signature: clock skew         401 (knob)    401      1305
signature: nonce reused       401 (knob)    401      1306
unknown webhook id            200           404      2404
subscriber unreachable        200           602      6020
unknown endpoint              404           404      1404
============================  ============  =======  =============================

``602`` ("response from a third-party endpoint failed") is used for an
unreachable or timed-out subscriber: from the caller's point of view it is the
subscriber's answer that never came. A subscriber that answers with an HTTP
error status still yields ``statusCode 200``: the webhook was triggered, and
what the subscriber said is in ``data.response``.

Run standalone::

    python -m genauth_c.emulator --port 8080 --webhook ID=http://127.0.0.1:9000/hook
"""

from __future__ import annotations

import argparse
import base64
import datetime as _dt
import email.utils
import hashlib
import hmac
import http.client
import http.server
import json
import math
import os
import re
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

__all__ = [
    "Emulator",
    "WebhookReceiver",
    "RequestRecord",
    "ReceivedRequest",
    "js_number",
    "js_stringify",
    "js_string",
    "canonical_headers",
    "canonical_resource",
    "string_to_sign",
    "sign",
    "signed_headers",
    "b64url_encode",
    "b64url_decode",
    "DEFAULT_USERPOOL_ID",
    "DEFAULT_WEBHOOK_SECRET",
    "DEFAULT_EVENT",
    "TOKEN_PATH",
    "TRIGGER_PATH",
    "main",
]

TOKEN_PATH = "/api/v3/get-management-token"
TRIGGER_PATH = "/api/v3/trigger-webhook"

# '~' and '?' make the JWT payload's base64url form contain '-' and '_' (the
# id sits first in the payload, so the alignment is fixed): a client that
# decodes the payload as standard base64 breaks against this default.
DEFAULT_USERPOOL_ID = "6229ffa0c0de~emulator~pool"
DEFAULT_WEBHOOK_SECRET = "genauth-c-webhook-secret"
# What trigger-webhook delivers when the caller gives no requestBody.
DEFAULT_EVENT = {"eventName": "test", "data": {"description": "A test from authing"}}
WEBHOOK_USER_AGENT = "authing-webhook@2.0"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
JSON_CONTENT_TYPE = "application/json"

APICODE_INVALID_ARGUMENT = 1000
APICODE_BAD_ACCESS_KEY = 1310
APICODE_TOKEN_MISSING = 1020
APICODE_TOKEN_INVALID = 1021
APICODE_TOKEN_EXPIRED = 1022
APICODE_USERPOOL_MISMATCH = 1023
APICODE_SIGNATURE_INVALID = 1300
APICODE_SIGNATURE_MALFORMED = 1301
APICODE_SIGNATURE_UNKNOWN_KEY = 1302
APICODE_SIGNATURE_UNSUPPORTED = 1303
APICODE_SIGNATURE_NO_DATE = 1304
APICODE_SIGNATURE_SKEW = 1305
APICODE_SIGNATURE_NONCE_REUSED = 1306
APICODE_WEBHOOK_NOT_FOUND = 2404
APICODE_SUBSCRIBER_FAILED = 6020
APICODE_NOT_FOUND = 1404
APICODE_PAYLOAD_TOO_LARGE = 1413
APICODE_FORCED = 1999

# Signature scheme word in `authorization` -> (brand name, signed header prefix).
SIGNATURE_SCHEMES = {"authing": ("authing", "x-authing-"), "GenAuth": ("genauth", "x-genauth-")}
BRAND_SCHEME = {"authing": "authing", "genauth": "GenAuth"}
USERPOOL_HEADERS = (("genauth", "x-genauth-userpool-id"), ("authing", "x-authing-userpool-id"))

MAX_BODY_BYTES = 64 * 1024 * 1024


# ---------------------------------------------------------------------------
# JavaScript-faithful serialisation (the signature's canonical resource is what
# a JavaScript SDK prints for the body, so the server side must print the same)
# ---------------------------------------------------------------------------

def js_number(x: int | float) -> str:
    """Format a number as JavaScript's ``Number.prototype.toString`` does.

    Integers beyond 2**53 go through a double first, because that is what a
    JavaScript parser would have made of them (1152921504606846976 prints as
    1152921504606847000). NaN and the infinities print as ``NaN`` /
    ``Infinity`` / ``-Infinity`` (JSON.stringify turns them into ``null``).
    """
    if isinstance(x, bool):
        raise TypeError("js_number() takes a number, not a bool")
    if isinstance(x, int):
        if -(2**53) <= x <= 2**53:
            return str(x)
        try:
            x = float(x)
        except OverflowError:
            return "Infinity" if x > 0 else "-Infinity"
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "0"  # JS prints -0 as "0" too
    sign = "-" if x < 0 else ""
    # repr() gives the shortest digit string that round-trips, the same digits
    # ECMAScript's Number::toString picks; only the layout differs.
    mantissa, _, exp = repr(abs(x)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    n = len(int_part) + (int(exp) if exp else 0)  # value = 0.DIGITS * 10**n
    stripped = all_digits.lstrip("0")
    n -= len(all_digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    head = digits[0] + ("." + digits[1:] if k > 1 else "")
    return f"{sign}{head}e{'+' if e >= 0 else '-'}{abs(e)}"


_JS_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Control characters, the two characters with short escapes, and lone
# surrogates (Python's json.loads merges valid pairs into one code point, so any
# surrogate left in a str is lone; well-formed JSON.stringify escapes those).
_JS_QUOTE_RE = re.compile('["\\\\\x00-\x1f\ud800-\udfff]')


def _js_quote(s: str) -> str:
    def repl(m: re.Match[str]) -> str:
        ch = m.group(0)
        return _JS_ESCAPES.get(ch) or "\\u%04x" % ord(ch)

    return '"' + _JS_QUOTE_RE.sub(repl, s) + '"'


_ARRAY_INDEX_RE = re.compile(r"0|[1-9][0-9]*")


def _is_array_index(key: str) -> bool:
    return bool(_ARRAY_INDEX_RE.fullmatch(key)) and int(key) <= 4294967294


def _js_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or key is None:
        return js_string(key)
    if isinstance(key, (int, float)):
        return js_number(key)
    raise TypeError(f"unsupported object key {key!r}")


def js_stringify(value: Any) -> str:
    """Return what JavaScript's ``JSON.stringify(value)`` prints (compact form).

    Objects list their array-index keys ("0".."4294967294") in ascending
    numeric order first, then the other keys in insertion order. Non-ASCII and
    ``/`` are not escaped; numbers use the JavaScript shortest form; NaN and the
    infinities become ``null``.
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _js_quote(value)
    if isinstance(value, (int, float)):
        text = js_number(value)
        return "null" if text in ("NaN", "Infinity", "-Infinity") else text
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(js_stringify(v) for v in value) + "]"
    if isinstance(value, Mapping):
        items = [(_js_key(k), v) for k, v in value.items()]
        index_keys = sorted((kv for kv in items if _is_array_index(kv[0])), key=lambda kv: int(kv[0]))
        other_keys = [kv for kv in items if not _is_array_index(kv[0])]
        return "{" + ",".join(_js_quote(k) + ":" + js_stringify(v) for k, v in index_keys + other_keys) + "}"
    raise TypeError(f"js_stringify() cannot serialise {type(value).__name__}")


def js_string(value: Any) -> str:
    """Return JavaScript's ``String(value)`` for a scalar (``true``, ``null``, ``10``).

    Objects and arrays are given their ``JSON.stringify`` form, which is how
    the signing scheme serialises them (not JavaScript's own ``String()``).
    """
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return js_number(value)
    return js_stringify(value)


def _utf16_key(s: str) -> bytes:
    # JavaScript's default sort compares UTF-16 code units, which orders astral
    # characters differently from Python's code point comparison.
    return s.encode("utf-16-be", "surrogatepass")


def _to_wire_utf8(s: str) -> bytes:
    # Node's Buffer.from(str, 'utf8') turns lone surrogates into U+FFFD.
    return re.sub("[\ud800-\udfff]", "\ufffd", s).encode("utf-8")


# ---------------------------------------------------------------------------
# AK/SK request signing (genauth-v3.md section 3b)
# ---------------------------------------------------------------------------

def _header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def canonical_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]], prefix: str = "x-authing-") -> str:
    """Build the canonicalHeaders block: ``date`` and every ``<prefix>*`` header.

    Names are lower-cased and sorted by UTF-16 code unit; each header becomes
    ``name:value\\n`` with ``\\t\\n\\r\\f`` in the value turned into spaces and
    the value trimmed. A repeated header's values are joined with ``,``.
    """
    chosen: dict[str, list[str]] = {}
    for name, value in _header_pairs(headers):
        lname = name.lower()
        if lname == "date" or lname.startswith(prefix):
            chosen.setdefault(lname, []).append(re.sub(r"[\t\n\r\f]", " ", value).strip())
    return "".join(f"{n}:{','.join(chosen[n])}\n" for n in sorted(chosen, key=_utf16_key))


def canonical_resource(path: str, params: Mapping[str, Any] | None) -> str:
    """Build the canonicalResource: ``path`` or ``path?k1=v1&k2=v2`` (keys sorted).

    Object and array values are their compact ``JSON.stringify`` form, scalars
    their JavaScript ``String()``. No URL-encoding.
    """
    if not params:
        return path
    parts = []
    for key in sorted(params, key=_utf16_key):
        value = params[key]
        text = js_stringify(value) if isinstance(value, (Mapping, list, tuple)) else js_string(value)
        parts.append(f"{key}={text}")
    return path + "?" + "&".join(parts)


def string_to_sign(
    method: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    path: str,
    params: Mapping[str, Any] | None,
    prefix: str = "x-authing-",
) -> str:
    """Return ``METHOD\\n + canonicalHeaders + canonicalResource``."""
    return method.upper() + "\n" + canonical_headers(headers, prefix) + canonical_resource(path, params)


def sign(access_key_secret: str, text: str) -> str:
    """Return base64(HMAC-SHA1(key=secret, msg=utf8(text)))."""
    mac = hmac.new(access_key_secret.encode("utf-8"), _to_wire_utf8(text), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def signed_headers(
    method: str,
    path: str,
    params: Mapping[str, Any] | None,
    access_key_id: str,
    access_key_secret: str,
    *,
    brand: str = "authing",
    nonce: str | None = None,
    date: str | None = None,
    lang: str | None = None,
    tenant_id: str | None = None,
    sdk_version: str | None = None,
) -> dict[str, str]:
    """Build the headers of an AK/SK-signed request, as the Node SDK does.

    ``brand`` is ``"authing"`` (``x-authing-*``, scheme word ``authing``) or
    ``"genauth"`` (``x-genauth-*``, scheme word ``GenAuth``). ``params`` is the
    JSON body for POST or the query parameters for GET. A helper for tests.
    """
    scheme = BRAND_SCHEME[brand]
    prefix = SIGNATURE_SCHEMES[scheme][1]
    headers = {
        prefix + "signature-nonce": nonce or uuid.uuid4().hex,
        prefix + "signature-method": "HMAC-SHA1",
        prefix + "signature-version": "1.0",
        prefix + "sdk-version": sdk_version or ("authing-node-sdk:4.0.1" if brand == "authing" else "gen-auth-node-sdk:4.0.1"),
    }
    if lang is not None:
        headers[prefix + "lang"] = lang
    if tenant_id is not None:
        headers[prefix + "app-id"] = tenant_id
    headers["date"] = date or email.utils.formatdate(usegmt=True)
    sts = string_to_sign(method, headers, path, params, prefix)
    headers["authorization"] = f"{scheme} {access_key_id}:{sign(access_key_secret, sts)}"
    return headers


# ---------------------------------------------------------------------------
# JSON and JWT helpers
# ---------------------------------------------------------------------------

def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        # Would not survive a round trip (JSON has no Infinity).
        raise ValueError(f"number out of range: {text}")
    return value


def loads(data: bytes | str) -> Any:
    """Strict JSON decoding: UTF-8, no NaN/Infinity, big ints kept exact."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data, parse_constant=_reject_constant, parse_float=_parse_float)


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; falls back to \\u escapes when a str holds a lone surrogate."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def _compact(value: Any) -> str:
    return dumps(value).decode("utf-8")


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---------------------------------------------------------------------------
# Shared HTTP server plumbing
# ---------------------------------------------------------------------------

class _TrackingServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer that counts and tracks its connections.

    Tracking lets stop() shut idle keep-alive connections down, so a handler
    thread blocked reading the next request wakes up instead of lingering.
    """

    daemon_threads = True
    block_on_close = False  # stop() must not wait for a slow handler
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when many
    # clients (or many webhook deliveries) connect at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type, owner: Any) -> None:
        self.owner = owner
        self._conn_lock = threading.Lock()
        self._open_conns: set[socket.socket] = set()
        self.accepted = 0
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can
        # stall; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = host
        self.server_port = port

    def process_request(self, request: socket.socket, client_address: Any) -> None:
        with self._conn_lock:
            self.accepted += 1
            self._open_conns.add(request)
        self.owner._on_connection()
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._conn_lock:
            self._open_conns.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._open_conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _BackgroundServer:
    """start/stop/url/context-manager plumbing shared by the two servers."""

    _handler_class: type
    _thread_name = "genauth-c-server"

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self._requested_port = port
        self._server: _TrackingServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def _on_connection(self) -> None:
        pass

    def start(self):
        """Bind and serve on a background thread. Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _TrackingServer((self.host, self._requested_port), self._handler_class, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection. Idempotent; does not hang."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a delay knob
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _BaseHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK
    # add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    server_version = "genauth-c-emulator/0.1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if getattr(self.server.owner, "verbose", False):
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

    def _read_body(self) -> bytes | None:
        """Read the request body (Content-Length or chunked). None: already answered."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            chunks = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    self.close_connection = True
                    return None
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    self._plain_error(413)
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        try:
            n = int(length)
            if n < 0:
                raise ValueError
        except ValueError:
            self._plain_error(400)
            return None
        if n > MAX_BODY_BYTES:
            self._plain_error(413)
            return None
        return self.rfile.read(n)

    def _plain_error(self, status: int) -> None:
        self.close_connection = True
        self._write(status, dumps({"statusCode": status, "message": http.client.responses.get(status, "error")}))

    def _write(self, status: int, data: bytes, content_type: str = "application/json; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection without a single byte of answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _dispatch(self) -> None:
        raise NotImplementedError


# ---------------------------------------------------------------------------
# The emulator
# ---------------------------------------------------------------------------

@dataclass
class RequestRecord:
    """One request as the emulator saw it.

    ``headers`` are (name, value) pairs in wire order with their original case.
    ``auth`` is ``"token"``, ``"signature"`` or None (no credentials, or the
    token endpoint); ``brand`` is ``"genauth"``, ``"authing"`` or
    ``"genauth+authing"`` (both user pool headers sent); ``auth_error`` is the
    apiCode of an authentication failure. ``string_to_sign`` is what the
    emulator rebuilt for a signed request (handy when a signature mismatches).
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


class _AuthFailure(Exception):
    def __init__(self, api_code: int, message: str) -> None:
        super().__init__(message)
        self.api_code = api_code
        self.message = message


class _EmulatorHandler(_BaseHandler):
    server: _TrackingServer

    # -- plumbing ----------------------------------------------------------

    def _envelope(self, status_code: int, message: str, api_code: int | None = None, data: Any = None) -> dict:
        env: dict[str, Any] = {"statusCode": status_code, "message": message}
        if api_code is not None:
            env["apiCode"] = api_code
        env["requestId"] = str(uuid.uuid4())
        if data is not None:
            env["data"] = data
        return env

    def _send_json(self, http_status: int, payload: Any) -> None:
        self._record.status = http_status
        self._write(http_status, dumps(payload))

    def _error(self, http_status: int, status_code: int, message: str, api_code: int) -> None:
        self._send_json(http_status, self._envelope(status_code, message, api_code))

    def _invalid(self, message: str) -> None:
        emu = self.server.owner
        self._error(emu.invalid_argument_http_status, 400, message, APICODE_INVALID_ARGUMENT)

    def _ok(self, data: Any) -> None:
        self._send_json(200, self._envelope(200, "Operation successful", data=data))

    # -- dispatch ----------------------------------------------------------

    def _dispatch(self) -> None:
        emu: Emulator = self.server.owner
        body = self._read_body()
        if body is None:
            return
        path, _, query = self.path.partition("?")
        rec = RequestRecord(
            method=self.command, path=path, target=self.path, headers=list(self.headers.items()), body=body
        )
        self._record = rec
        emu._add_record(rec)
        is_token = path == TOKEN_PATH
        wait = emu.delay_token if is_token else emu.delay
        if wait:
            emu._stopping.wait(wait)
        if not is_token and emu._take_knob("drop_connection"):
            self._drop()
            return
        if is_token:
            with emu._lock:
                emu.token_fetches += 1
        parsed: Any = None
        if body.strip():
            try:
                parsed = loads(body)
            except ValueError as exc:  # includes UnicodeDecodeError
                self._invalid(f"request body is not valid JSON: {exc}")
                return
        if is_token:
            self._token_endpoint(parsed)
            return
        if not path.startswith("/api/v3/"):
            self._error(404, 404, f"Cannot {self.command} {path}", APICODE_NOT_FOUND)
            return
        if path == TRIGGER_PATH and self._trigger_knobs():
            return
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True)) if self.command == "GET" else parsed
        try:
            emu._authenticate(rec, self.command, path, params if isinstance(params, dict) else None)
        except _AuthFailure as failure:
            rec.auth_error = failure.api_code
            self._error(emu.auth_failure_http_status, 401, failure.message, failure.api_code)
            return
        route = _ROUTES.get((self.command, path))
        if route is None:
            self._error(404, 404, f"Cannot {self.command} {path}", APICODE_NOT_FOUND)
            return
        if self.command == "GET":
            args: Any = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        else:
            args = {} if parsed is None else parsed
            if not isinstance(args, dict):
                self._invalid("request body must be a JSON object")
                return
        route(self, emu, args)

    def _trigger_knobs(self) -> bool:
        """Apply the trigger-webhook failure knobs. True: already answered."""
        emu: Emulator = self.server.owner
        if emu._take_knob("fail_next_calls_with_401"):
            self._record.auth_error = APICODE_TOKEN_EXPIRED
            self._error(emu.auth_failure_http_status, 401, "token expired", APICODE_TOKEN_EXPIRED)
            return True
        raw = emu.raw_body
        if raw is not None:
            status = emu.force_status if emu.force_status is not None else 200
            self._record.status = status
            self._write(status, bytes(raw), emu.raw_content_type)
            return True
        forced = emu.force_status
        if forced is not None and forced != 200:
            self._error(forced, forced, f"status {forced} forced by the emulator", APICODE_FORCED)
            return True
        return False

    # -- endpoints ---------------------------------------------------------

    def _token_endpoint(self, body: Any) -> None:
        emu: Emulator = self.server.owner
        if not isinstance(body, dict):
            self._invalid("request body must be a JSON object")
            return
        ak, sk = body.get("accessKeyId"), body.get("accessKeySecret")
        if not isinstance(ak, str) or not isinstance(sk, str):
            self._invalid("accessKeyId and accessKeySecret must be strings")
            return
        # Both comparisons always run: no early exit that times the AK.
        ak_ok = hmac.compare_digest(ak.encode("utf-8", "surrogatepass"), emu.access_key_id.encode("utf-8"))
        sk_ok = hmac.compare_digest(sk.encode("utf-8", "surrogatepass"), emu.access_key_secret.encode("utf-8"))
        if not (ak_ok and sk_ok):
            self._send_json(200, self._envelope(401, "Invalid accessKeyId or accessKeySecret", APICODE_BAD_ACCESS_KEY))
            return
        token, lifetime = emu.issue_token()
        expires_in: int | float = int(lifetime) if float(lifetime).is_integer() else lifetime
        self._send_json(200, {"statusCode": 200, "message": "", "data": {"access_token": token, "expires_in": expires_in}})

    def _trigger_webhook(self, emu: Emulator, body: dict) -> None:
        webhook_id = body.get("webhookId")
        if not isinstance(webhook_id, str):
            self._invalid("webhookId must be a string")
            return
        req_headers, req_body = body.get("requestHeaders"), body.get("requestBody")
        # null is taken as "not given", like an absent key.
        if req_headers is not None and not isinstance(req_headers, dict):
            self._invalid("requestHeaders must be an object")
            return
        if req_body is not None and not isinstance(req_body, dict):
            self._invalid("requestBody must be an object")
            return
        hook = emu.get_webhook(webhook_id)
        if hook is None:
            self._send_json(200, self._envelope(404, f"Webhook {webhook_id} not found", APICODE_WEBHOOK_NOT_FOUND))
            return
        try:
            response = emu._deliver(hook, req_headers, req_body)
        except ValueError as exc:
            self._invalid(str(exc))
            return
        except (OSError, http.client.HTTPException) as exc:
            self._send_json(200, self._envelope(602, f"Request to the webhook URL failed: {exc}", APICODE_SUBSCRIBER_FAILED))
            return
        self._ok({"response": response})

    def _create_webhook(self, emu: Emulator, body: dict) -> None:
        problem = _check_webhook_fields(body, creating=True)
        if problem:
            self._invalid(problem)
            return
        hook = emu.add_webhook(
            uuid.uuid4().hex[:24],
            body["url"],
            content_type=body["contentType"],
            secret=body.get("secret", DEFAULT_WEBHOOK_SECRET),
            name=body["name"],
            events=body["events"],
            enabled=body.get("enabled", True),
            retry_config=body.get("retryConfig"),
        )
        self._ok(hook)

    def _update_webhook(self, emu: Emulator, body: dict) -> None:
        webhook_id = body.get("webhookId")
        if not isinstance(webhook_id, str):
            self._invalid("webhookId must be a string")
            return
        problem = _check_webhook_fields(body, creating=False)
        if problem:
            self._invalid(problem)
            return
        with emu._lock:
            hook = emu._webhooks.get(webhook_id)
            if hook is not None:
                for key in ("contentType", "events", "url", "name", "enabled", "secret", "retryConfig"):
                    if key in body:
                        hook[key] = body[key]
                hook["updatedAt"] = _now_iso()
                hook = dict(hook)
        if hook is None:
            self._send_json(200, self._envelope(404, f"Webhook {webhook_id} not found", APICODE_WEBHOOK_NOT_FOUND))
        else:
            self._ok(hook)

    def _delete_webhook(self, emu: Emulator, body: dict) -> None:
        ids = body.get("webhookIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            self._invalid("webhookIds must be an array of strings")
            return
        with emu._lock:
            for webhook_id in ids:
                emu._webhooks.pop(webhook_id, None)
        self._ok({"success": True})

    def _get_webhook(self, emu: Emulator, args: dict) -> None:
        webhook_id = args.get("webhookId")
        hook = emu.get_webhook(webhook_id) if webhook_id else None
        if not webhook_id:
            self._invalid("webhookId is required")
        elif hook is None:
            self._send_json(200, self._envelope(404, f"Webhook {webhook_id} not found", APICODE_WEBHOOK_NOT_FOUND))
        else:
            self._ok(hook)

    def _page_args(self, args: dict) -> tuple[int, int] | None:
        try:
            page, limit = int(args.get("page", 1)), int(args.get("limit", 10))
        except (TypeError, ValueError):
            page = limit = 0
        if page < 1 or not 1 <= limit <= 50:
            self._invalid("page must be >= 1 and limit between 1 and 50")
            return None
        return page, limit

    def _list_webhooks(self, emu: Emulator, args: dict) -> None:
        paging = self._page_args(args)
        if paging is None:
            return
        page, limit = paging
        with emu._lock:
            hooks = [dict(h) for h in emu._webhooks.values()]
        self._ok({"totalCount": len(hooks), "list": hooks[(page - 1) * limit : page * limit]})

    def _webhook_logs(self, emu: Emulator, body: dict) -> None:
        webhook_id = body.get("webhookId")
        if not isinstance(webhook_id, str):
            self._invalid("webhookId must be a string")
            return
        paging = self._page_args(body)
        if paging is None:
            return
        page, limit = paging
        with emu._lock:
            logs = [dict(entry) for entry in emu.webhook_logs if entry["webhookId"] == webhook_id]
        logs.reverse()  # newest first
        self._ok({"totalCount": len(logs), "list": logs[(page - 1) * limit : page * limit]})

    def _event_list(self, emu: Emulator, args: dict) -> None:
        self._ok(_EVENT_LIST)


def _check_webhook_fields(body: dict, creating: bool) -> str | None:
    required = ("contentType", "events", "url", "name") if creating else ()
    for key in required:
        if key not in body:
            return f"{key} is required"
    if "contentType" in body and body["contentType"] not in (JSON_CONTENT_TYPE, FORM_CONTENT_TYPE):
        return f"contentType must be {JSON_CONTENT_TYPE} or {FORM_CONTENT_TYPE}"
    if "events" in body and not (isinstance(body["events"], list) and all(isinstance(e, str) for e in body["events"])):
        return "events must be an array of strings"
    for key in ("url", "name", "secret"):
        if key in body and not isinstance(body[key], str):
            return f"{key} must be a string"
    if "enabled" in body and not isinstance(body["enabled"], bool):
        return "enabled must be a boolean"
    if "retryConfig" in body and not isinstance(body["retryConfig"], dict):
        return "retryConfig must be an object"
    return None


_ROUTES: dict[tuple[str, str], Callable[..., None]] = {
    ("POST", TRIGGER_PATH): _EmulatorHandler._trigger_webhook,
    ("POST", "/api/v3/create-webhook"): _EmulatorHandler._create_webhook,
    ("POST", "/api/v3/update-webhook"): _EmulatorHandler._update_webhook,
    ("POST", "/api/v3/delete-webhook"): _EmulatorHandler._delete_webhook,
    ("GET", "/api/v3/get-webhook"): _EmulatorHandler._get_webhook,
    ("GET", "/api/v3/list-webhooks"): _EmulatorHandler._list_webhooks,
    ("POST", "/api/v3/get-webhook-logs"): _EmulatorHandler._webhook_logs,
    ("GET", "/api/v3/get-webhook-event-list"): _EmulatorHandler._event_list,
}

_EVENT_CATEGORIES = [("User", "user"), ("Role", "role"), ("Group", "group"), ("Organization", "organization"), ("Test", "test")]
_EVENT_LIST = {
    "categories": [{"name": name, "nameEn": name, "value": value} for name, value in _EVENT_CATEGORIES],
    "events": [
        {"name": value, "nameEn": value, "value": value, "category": value.split(":")[0] if ":" in value else category}
        for value, category in [
            ("test", "test"),
            ("login", "user"),
            ("register", "user"),
            ("user:created", "user"),
            ("user:updated", "user"),
            ("user:deleted", "user"),
            ("user:password-changed", "user"),
            ("role:created", "role"),
            ("group:created", "group"),
            ("organization:created", "organization"),
        ]
    ],
}

_TOKEN_RE = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_SKIPPED_DELIVERY_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class Emulator(_BackgroundServer):
    """An in-process GenAuth V3 management API on 127.0.0.1.

    Example::

        with Emulator("AK", "SK") as emu, WebhookReceiver() as rx:
            emu.add_webhook("wh1", rx.url + "/hook")
            ...  # point a client at emu.url

    Knobs (read on every request, so tests may change them at any time):

    ``delay`` / ``delay_token``
        seconds to wait before answering an API request / the token endpoint.
    ``force_status``
        HTTP status (and envelope ``statusCode``) for trigger-webhook; None or
        200 means normal processing.
    ``raw_body``
        bytes answered to trigger-webhook instead of JSON (HTTP status
        ``force_status`` or 200, content type ``raw_content_type``).
    ``drop_connection``
        True: close every API request's connection without answering; an int
        N: do so for the next N API requests.
    ``fail_next_calls_with_401``
        answer the next N trigger-webhook calls with a token-expired 401,
        whatever token they carry.
    The trigger-webhook knobs (``fail_next_calls_with_401``, ``raw_body``,
    ``force_status``) act before authentication, as a gateway in front of the
    API would, so raw http.client tests need no credentials to use them.

    ``token_lifetime``
        seconds (float) a newly issued token lives; also its ``expires_in``.
    ``auth_failure_http_status``
        HTTP status of authentication failures on API endpoints (default 401;
        the envelope's ``statusCode`` is 401 either way).
    ``invalid_argument_http_status``
        HTTP status of statusCode-400 envelopes (default 200).
    ``signature_max_skew``
        allowed distance in seconds between a signed request's ``date`` and
        the clock (None: unchecked).

    Records: ``connection_count``, ``token_fetches``, ``requests`` (a list of
    :class:`RequestRecord`), ``webhook_logs``; ``reset_records()`` clears them.
    The knobs and records are guarded by a lock where read-modify-write.
    """

    _handler_class = _EmulatorHandler
    _thread_name = "genauth-c-emulator"

    def __init__(
        self,
        access_key_id: str = "AK",
        access_key_secret: str = "SK",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token_lifetime: float = 7200,
        userpool_id: str = DEFAULT_USERPOOL_ID,
        auth_failure_http_status: int = 401,
        invalid_argument_http_status: int = 200,
        signature_max_skew: float | None = 900.0,
        webhook_timeout: float = 5.0,
        verbose: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.userpool_id = userpool_id
        self.token_lifetime = token_lifetime
        self.auth_failure_http_status = auth_failure_http_status
        self.invalid_argument_http_status = invalid_argument_http_status
        self.signature_max_skew = signature_max_skew
        self.webhook_timeout = webhook_timeout
        self.verbose = verbose
        # knobs
        self.delay: float = 0.0
        self.delay_token: float = 0.0
        self.force_status: int | None = None
        self.raw_body: bytes | None = None
        self.raw_content_type = "text/html; charset=utf-8"
        self.drop_connection: bool | int = False
        self.fail_next_calls_with_401: int = 0
        # state
        self._lock = threading.RLock()
        self._jwt_secret = os.urandom(32)
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._nonces: set[str] = set()
        self._webhooks: dict[str, dict] = {}
        # records
        self.connection_count = 0
        self.token_fetches = 0
        self.requests: list[RequestRecord] = []
        self.webhook_logs: list[dict] = []

    # -- records and knobs -------------------------------------------------

    def _on_connection(self) -> None:
        with self._lock:
            self.connection_count += 1

    def _add_record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.requests.append(rec)

    def reset_records(self) -> None:
        """Clear requests, webhook logs and the connection/token counters."""
        with self._lock:
            self.requests = []
            self.webhook_logs = []
            self.connection_count = 0
            self.token_fetches = 0

    def _take_knob(self, name: str) -> bool:
        """Consume one unit of a count knob (True means "always")."""
        with self._lock:
            value = getattr(self, name)
            if value is True:
                return True
            if not value:
                return False
            setattr(self, name, int(value) - 1)
            return True

    # -- tokens ------------------------------------------------------------

    def issue_token(self) -> tuple[str, float]:
        """Issue a management token as the token endpoint does: (jwt, lifetime)."""
        lifetime = float(self.token_lifetime)
        now = time.time()
        header = {"alg": "HS256", "typ": "JWT"}
        # scoped_userpool_id first: its base64url alignment is then fixed.
        payload = {"scoped_userpool_id": self.userpool_id, "iat": int(now), "exp": int(math.ceil(now + lifetime)), "jti": uuid.uuid4().hex}
        signing_input = b64url_encode(dumps(header)) + "." + b64url_encode(dumps(payload))
        sig = hmac.new(self._jwt_secret, signing_input.encode("ascii"), hashlib.sha256).digest()
        token = signing_input + "." + b64url_encode(sig)
        with self._lock:
            self._tokens[token] = time.monotonic() + lifetime
        return token, lifetime

    def expire_tokens(self) -> None:
        """Make every token issued so far expired (as if its lifetime ran out)."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = 0.0

    def _check_token(self, token: str) -> None:
        parts = token.split(".")
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None or len(parts) != 3:
            raise _AuthFailure(APICODE_TOKEN_INVALID, "invalid access token")
        expected = hmac.new(self._jwt_secret, (parts[0] + "." + parts[1]).encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(b64url_encode(expected), parts[2]):
            raise _AuthFailure(APICODE_TOKEN_INVALID, "invalid access token")
        if time.monotonic() >= expiry:
            raise _AuthFailure(APICODE_TOKEN_EXPIRED, "access token expired")

    # -- authentication ----------------------------------------------------

    def _authenticate(self, rec: RequestRecord, method: str, path: str, params: dict | None) -> None:
        """Check the request's credentials; raise _AuthFailure. Fills rec.auth/brand."""
        authorization = rec.header("authorization")
        if not authorization:
            raise _AuthFailure(APICODE_TOKEN_MISSING, "missing authorization header")
        scheme, _, rest = authorization.partition(" ")
        if scheme == "Bearer":
            rec.auth = "token"
            self._check_token(rest.strip())
            brands = []
            for brand, name in USERPOOL_HEADERS:
                value = rec.header(name)
                if value is None:
                    continue
                brands.append(brand)
                if value != self.userpool_id:
                    raise _AuthFailure(APICODE_USERPOOL_MISMATCH, f"{name} does not match the token's user pool")
            if not brands:
                raise _AuthFailure(APICODE_USERPOOL_MISMATCH, "missing x-genauth-userpool-id / x-authing-userpool-id")
            rec.brand = "+".join(brands)
            return
        if scheme in SIGNATURE_SCHEMES:
            rec.auth = "signature"
            rec.brand, prefix = SIGNATURE_SCHEMES[scheme]
            self._check_signature(rec, method, path, params, prefix, rest)
            return
        raise _AuthFailure(APICODE_TOKEN_MISSING, "unsupported authorization scheme")

    def _check_signature(self, rec: RequestRecord, method: str, path: str, params: dict | None, prefix: str, credential: str) -> None:
        ak, sep, signature = credential.strip().partition(":")
        if not sep or not ak or not signature:
            raise _AuthFailure(APICODE_SIGNATURE_MALFORMED, "malformed signature credential")
        if not hmac.compare_digest(ak.encode("utf-8", "surrogateescape"), self.access_key_id.encode("utf-8")):
            raise _AuthFailure(APICODE_SIGNATURE_UNKNOWN_KEY, "unknown access key id")
        date = rec.header("date")
        if not date:
            raise _AuthFailure(APICODE_SIGNATURE_NO_DATE, "missing date header")
        try:
            when = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise _AuthFailure(APICODE_SIGNATURE_NO_DATE, "unparseable date header") from None
        if self.signature_max_skew is not None and abs(time.time() - when) > self.signature_max_skew:
            raise _AuthFailure(APICODE_SIGNATURE_SKEW, "date header too far from the server clock")
        if rec.header(prefix + "signature-method") != "HMAC-SHA1" or rec.header(prefix + "signature-version") != "1.0":
            raise _AuthFailure(APICODE_SIGNATURE_UNSUPPORTED, "unsupported signature method or version")
        nonce = rec.header(prefix + "signature-nonce")
        if not nonce:
            raise _AuthFailure(APICODE_SIGNATURE_MALFORMED, f"missing {prefix}signature-nonce header")
        # http.server decodes header bytes as latin-1; the signer hashed UTF-8.
        wire_headers = [(n, v.encode("latin-1", "replace").decode("utf-8", "replace")) for n, v in rec.headers]
        sts = string_to_sign(method, wire_headers, path, params, prefix)
        rec.string_to_sign = sts
        if not hmac.compare_digest(sign(self.access_key_secret, sts), signature.strip()):
            raise _AuthFailure(APICODE_SIGNATURE_INVALID, "signature does not match")
        with self._lock:
            if nonce in self._nonces:
                raise _AuthFailure(APICODE_SIGNATURE_NONCE_REUSED, "signature nonce already used")
            self._nonces.add(nonce)

    # -- webhooks ----------------------------------------------------------

    def add_webhook(
        self,
        webhook_id: str,
        url: str,
        content_type: str = JSON_CONTENT_TYPE,
        secret: str = DEFAULT_WEBHOOK_SECRET,
        *,
        name: str | None = None,
        events: list[str] | None = None,
        enabled: bool = True,
        retry_config: dict | None = None,
    ) -> dict:
        """Register (or replace) a webhook; returns its WebhookDto."""
        now = _now_iso()
        hook = {
            "webhookId": webhook_id,
            "createdAt": now,
            "updatedAt": now,
            "name": name or webhook_id,
            "url": url,
            "contentType": content_type,
            "enabled": enabled,
            "events": list(events) if events is not None else ["test"],
            "secret": secret,
        }
        if retry_config is not None:
            hook["retryConfig"] = retry_config
        with self._lock:
            self._webhooks[webhook_id] = hook
        return dict(hook)

    def get_webhook(self, webhook_id: str) -> dict | None:
        """A copy of the webhook's WebhookDto, or None."""
        with self._lock:
            hook = self._webhooks.get(webhook_id)
            return dict(hook) if hook is not None else None

    def _deliver(self, hook: dict, req_headers: dict | None, req_body: dict | None) -> Any:
        """POST one delivery to the webhook URL; returns the subscriber's answer.

        Raises ValueError for headers that cannot go on the wire (a 400 for the
        caller) and OSError / HTTPException when the subscriber fails.
        """
        body_obj = req_body if req_body is not None else DEFAULT_EVENT
        content_type = hook["contentType"]
        if content_type == FORM_CONTENT_TYPE:
            form = [(k, v if isinstance(v, str) else (_compact(v) if isinstance(v, (dict, list)) else js_string(v))) for k, v in body_obj.items()]
            data = urllib.parse.urlencode(form).encode("ascii")
        else:
            data = dumps(body_obj)
        fixed = [
            ("user-agent", WEBHOOK_USER_AGENT),
            ("x-authing-webhook-secret", hook["secret"]),
            ("x-authing-userpool-id", self.userpool_id),
            ("content-type", content_type),
        ]
        fixed_names = {name for name, _ in fixed}
        headers: list[tuple[str, str]] = []
        for name, value in (req_headers or {}).items():
            # The protocol headers are not overridable: the secret, the pool id
            # and the content type describe this delivery, not the caller's wish.
            if name.lower() in fixed_names or name.lower() in _SKIPPED_DELIVERY_HEADERS:
                continue
            if not _TOKEN_RE.match(name):
                raise ValueError(f"requestHeaders: invalid header name {name!r}")
            text = value if isinstance(value, str) else _compact(value)
            if any(c in text for c in "\r\n\0"):
                raise ValueError(f"requestHeaders: header {name!r} holds a line break or NUL")
            headers.append((name, text))
        headers.extend(fixed)
        url = urllib.parse.urlsplit(hook["url"])
        conn_class = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        target = (url.path or "/") + ("?" + url.query if url.query else "")
        log = {
            "webhookId": hook["webhookId"],
            "eventName": body_obj.get("eventName", ""),
            "requestBody": body_obj,
            "requestHeaders": dict(headers),
            "timestamp": _now_iso(),
        }
        conn = conn_class(url.hostname or "127.0.0.1", url.port, timeout=self.webhook_timeout)
        try:
            conn.putrequest("POST", target, skip_accept_encoding=True)
            for name, text in headers:
                conn.putheader(name, text.encode("utf-8"))
            conn.putheader("Content-Length", str(len(data)))
            conn.endheaders(data)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            log.update(success=False, errorMessage=str(exc), responseStatusCode=0, responseHeaders={}, responseBody="")
            with self._lock:
                self.webhook_logs.append(log)
            raise
        finally:
            conn.close()
        text = raw.decode("utf-8", "replace")
        try:
            answer: Any = loads(raw)
        except ValueError:
            answer = text
        log.update(
            success=200 <= resp.status < 300,
            responseStatusCode=resp.status,
            responseHeaders=dict(resp.getheaders()),
            responseBody=text,
        )
        with self._lock:
            self.webhook_logs.append(log)
        return answer


# ---------------------------------------------------------------------------
# A webhook subscriber for tests and the demo
# ---------------------------------------------------------------------------

@dataclass
class ReceivedRequest:
    """One request a :class:`WebhookReceiver` got (headers in wire order)."""

    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        """First value of a header, case-insensitively (UTF-8 decoded)."""
        lname = name.lower()
        for n, v in self.headers:
            if n.lower() == lname:
                return v
        return default

    @property
    def json(self) -> Any:
        """The body parsed as JSON, or None."""
        try:
            return loads(self.body)
        except ValueError:
            return None

    @property
    def form(self) -> dict[str, str]:
        """The body parsed as application/x-www-form-urlencoded."""
        return dict(urllib.parse.parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))


class _ReceiverHandler(_BaseHandler):
    server: _TrackingServer

    def _dispatch(self) -> None:
        rx: WebhookReceiver = self.server.owner
        body = self._read_body()
        if body is None:
            return
        # Header bytes come in as latin-1; deliveries send UTF-8.
        headers = [(n, v.encode("latin-1", "replace").decode("utf-8", "replace")) for n, v in self.headers.items()]
        got = ReceivedRequest(self.command, self.path, headers, body)
        with rx._lock:
            rx.received.append(got)
            rx._cond.notify_all()
        if rx.delay:
            rx._stopping.wait(rx.delay)
        answer = rx.answer_body
        if callable(answer):
            answer = answer(got)
        if answer is None:
            payload = got.json if isinstance(got.json, dict) else got.form
            answer = {"received": True, "eventName": payload.get("eventName") if isinstance(payload, dict) else None}
        data = answer if isinstance(answer, bytes) else dumps(answer)
        self._write(rx.answer_status, data, rx.answer_content_type)


class WebhookReceiver(_BackgroundServer):
    """A tiny webhook subscriber on 127.0.0.1 that records what it gets.

    It answers ``{"received": true, "eventName": <from the body>}`` unless
    ``answer_body`` says otherwise: bytes (sent as is), any JSON value, or a
    callable taking the :class:`ReceivedRequest` and returning either.
    ``answer_status`` / ``answer_content_type`` / ``delay`` shape the answer.
    """

    _handler_class = _ReceiverHandler
    _thread_name = "genauth-c-webhook-receiver"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        answer_body: Any = None,
        answer_status: int = 200,
        answer_content_type: str = "application/json; charset=utf-8",
        delay: float = 0.0,
        verbose: bool = False,
    ) -> None:
        super().__init__(host, port)
        self.answer_body = answer_body
        self.answer_status = answer_status
        self.answer_content_type = answer_content_type
        self.delay = delay
        self.verbose = verbose
        self.received: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait until at least ``count`` requests arrived; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self.received) >= count, timeout)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    """``python -m genauth_c.emulator``: serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m genauth_c.emulator", description="Local GenAuth V3 management API emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--access-key-id", default="AK")
    parser.add_argument("--access-key-secret", default="SK")
    parser.add_argument("--token-lifetime", type=float, default=7200)
    parser.add_argument("--userpool-id", default=DEFAULT_USERPOOL_ID)
    parser.add_argument("--webhook", action="append", default=[], metavar="ID=URL", help="register a webhook (repeatable)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args(argv)
    emu = Emulator(
        args.access_key_id,
        args.access_key_secret,
        host=args.host,
        port=args.port,
        token_lifetime=args.token_lifetime,
        userpool_id=args.userpool_id,
        verbose=args.verbose,
    )
    for spec in args.webhook:
        webhook_id, sep, url = spec.partition("=")
        if not sep or not webhook_id or not url:
            parser.error(f"--webhook expects ID=URL, got {spec!r}")
        emu.add_webhook(webhook_id, url)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    emu.start()
    print(f"genauth-c emulator listening on {emu.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        emu.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
