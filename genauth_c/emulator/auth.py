"""Authentication: management tokens and AK/SK request signatures.

Two schemes, both brands (genauth-v3.md section 3):

* ``authorization: Bearer <jwt>`` plus ``x-genauth-userpool-id`` or
  ``x-authing-userpool-id``; tokens come from :class:`TokenBook`.
* ``authorization: authing AK:SIG`` with ``x-authing-*`` headers, or
  ``GenAuth AK:SIG`` with ``x-genauth-*`` headers, where SIG is
  base64(HMAC-SHA1(SK, stringToSign)).

Failures raise :class:`AuthFailure` carrying the envelope's apiCode (1020-1023
for tokens, 1300-1306 for signatures).
"""

from __future__ import annotations

import base64
import datetime
import email.utils
import hashlib
import hmac
import math
import os
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from .constants import (
    APICODE_SIGNATURE_INVALID,
    APICODE_SIGNATURE_MALFORMED,
    APICODE_SIGNATURE_NO_DATE,
    APICODE_SIGNATURE_NONCE_REUSED,
    APICODE_SIGNATURE_SKEW,
    APICODE_SIGNATURE_UNKNOWN_KEY,
    APICODE_SIGNATURE_UNSUPPORTED,
    APICODE_TOKEN_EXPIRED,
    APICODE_TOKEN_INVALID,
    APICODE_TOKEN_MISSING,
    APICODE_USERPOOL_MISMATCH,
)
from .jsform import dumps, js_string, js_stringify, to_wire_utf8, utf16_key
from .records import RequestRecord

__all__ = [
    "AuthFailure",
    "Authenticator",
    "TokenBook",
    "b64url_encode",
    "b64url_decode",
    "canonical_headers",
    "canonical_resource",
    "string_to_sign",
    "sign",
    "signed_headers",
    "SIGNATURE_SCHEMES",
    "BRAND_SCHEME",
]

# Signature scheme word in `authorization` -> (brand name, signed header prefix).
SIGNATURE_SCHEMES = {"authing": ("authing", "x-authing-"), "GenAuth": ("genauth", "x-genauth-")}
BRAND_SCHEME = {"authing": "authing", "genauth": "GenAuth"}
USERPOOL_HEADERS = (("genauth", "x-genauth-userpool-id"), ("authing", "x-authing-userpool-id"))

Headers = Mapping[str, str] | Iterable[tuple[str, str]]


class AuthFailure(Exception):
    """A refused credential: ``api_code`` and ``message`` go into the envelope."""

    def __init__(self, api_code: int, message: str) -> None:
        super().__init__(message)
        self.api_code = api_code
        self.message = message


# ---------------------------------------------------------------------------
# AK/SK request signing (genauth-v3.md section 3b)
# ---------------------------------------------------------------------------


def _header_pairs(headers: Headers) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


def canonical_headers(headers: Headers, prefix: str = "x-authing-") -> str:
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
    return "".join(f"{n}:{','.join(chosen[n])}\n" for n in sorted(chosen, key=utf16_key))


def canonical_resource(path: str, params: Mapping[str, Any] | None) -> str:
    """Build the canonicalResource: ``path`` or ``path?k1=v1&k2=v2`` (keys sorted).

    ``params`` is the JSON body (POST) or the decoded query parameters (GET).
    Object and array values are their compact ``JSON.stringify`` form, scalars
    their JavaScript ``String()``. No URL-encoding.
    """
    if not params:
        return path
    parts = []
    for key in sorted(params, key=utf16_key):
        value = params[key]
        text = js_stringify(value) if isinstance(value, (Mapping, list, tuple)) else js_string(value)
        parts.append(f"{key}={text}")
    return path + "?" + "&".join(parts)


def string_to_sign(
    method: str, headers: Headers, path: str, params: Mapping[str, Any] | None, prefix: str = "x-authing-"
) -> str:
    """Return ``METHOD\\n + canonicalHeaders + canonicalResource``."""
    return method.upper() + "\n" + canonical_headers(headers, prefix) + canonical_resource(path, params)


def sign(access_key_secret: str, text: str) -> str:
    """Return base64(HMAC-SHA1(key=secret, msg=utf8(text)))."""
    mac = hmac.new(access_key_secret.encode("utf-8"), to_wire_utf8(text), hashlib.sha1)
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
    default_sdk = "authing-node-sdk:4.0.1" if brand == "authing" else "gen-auth-node-sdk:4.0.1"
    headers = {
        prefix + "signature-nonce": nonce or uuid.uuid4().hex,
        prefix + "signature-method": "HMAC-SHA1",
        prefix + "signature-version": "1.0",
        prefix + "sdk-version": sdk_version or default_sdk,
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
# Management tokens
# ---------------------------------------------------------------------------


def b64url_encode(data: bytes) -> str:
    """base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Decode base64url with or without padding."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _Issued:
    __slots__ = ("expiry", "uses_left")

    def __init__(self, expiry: float, uses_left: int | None) -> None:
        self.expiry = expiry  # time.monotonic() deadline
        self.uses_left = uses_left  # None: unlimited


class TokenBook:
    """Issues HS256 JWTs and knows which are valid.

    A token expires when its lifetime runs out, when :meth:`expire` says so,
    or after the number of API calls it was issued for (``max_uses``): the
    last two make expiry tests deterministic.
    """

    def __init__(self) -> None:
        self._key = os.urandom(32)
        self._lock = threading.Lock()
        self._issued: dict[str, _Issued] = {}

    def issue(self, userpool_id: str, lifetime: float, max_uses: int | None = None) -> str:
        """A new token for ``lifetime`` seconds (and at most ``max_uses`` API calls)."""
        now = time.time()
        header = {"alg": "HS256", "typ": "JWT"}
        claims: dict[str, Any] = {
            # First: its base64 alignment is then fixed (see DEFAULT_USERPOOL_ID).
            "scoped_userpool_id": userpool_id,
            "iat": int(now),
            "exp": int(math.ceil(now + lifetime)),
            "jti": "",
        }
        # A payload whose length is a multiple of 3 encodes without padding,
        # so a client that decodes it as plain base64 needs no padding fix.
        jti_len = 32 + (-(len(dumps(claims)) + 32) % 3)
        claims["jti"] = secrets.token_hex(17)[:jti_len]
        signing_input = b64url_encode(dumps(header)) + "." + b64url_encode(dumps(claims))
        sig = hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()
        token = signing_input + "." + b64url_encode(sig)
        with self._lock:
            self._issued[token] = _Issued(time.monotonic() + lifetime, max_uses)
        return token

    def expire(self, after_calls: int = 0) -> None:
        """Every token issued so far expires now, or after ``after_calls`` more API calls."""
        with self._lock:
            for entry in self._issued.values():
                if after_calls <= 0:
                    entry.expiry = 0.0
                elif entry.uses_left is None or entry.uses_left > after_calls:
                    entry.uses_left = after_calls

    def check(self, token: str) -> None:
        """Accept ``token`` for one API call (counting it), or raise AuthFailure."""
        parts = token.split(".")
        if len(parts) != 3:
            raise AuthFailure(APICODE_TOKEN_INVALID, "invalid access token")
        expected = hmac.new(self._key, (parts[0] + "." + parts[1]).encode("ascii", "replace"), hashlib.sha256).digest()
        with self._lock:
            entry = self._issued.get(token)
            if entry is None or not hmac.compare_digest(b64url_encode(expected).encode(), parts[2].encode("utf-8", "replace")):
                raise AuthFailure(APICODE_TOKEN_INVALID, "invalid access token")
            if time.monotonic() >= entry.expiry or entry.uses_left == 0:
                raise AuthFailure(APICODE_TOKEN_EXPIRED, "access token expired")
            if entry.uses_left is not None:
                entry.uses_left -= 1


# ---------------------------------------------------------------------------
# Checking a request
# ---------------------------------------------------------------------------


class AuthConfig(Protocol):
    """What the authenticator reads from the emulator on every request."""

    access_key_id: str
    access_key_secret: str
    userpool_id: str
    signature_max_skew: float | None


class Authenticator:
    """Checks an API request's credentials against ``config`` and ``tokens``."""

    def __init__(self, config: AuthConfig, tokens: TokenBook) -> None:
        self.config = config
        self.tokens = tokens
        self._nonces: set[str] = set()
        self._lock = threading.Lock()

    def check(self, rec: RequestRecord, params: Mapping[str, Any] | None) -> None:
        """Raise AuthFailure, or return after filling ``rec.auth`` / ``rec.brand``.

        ``params`` is what a signature covers: the JSON body for POST, the
        decoded query parameters for GET.
        """
        authorization = rec.header("authorization")
        if not authorization:
            raise AuthFailure(APICODE_TOKEN_MISSING, "missing authorization header")
        scheme, _, rest = authorization.partition(" ")
        if scheme == "Bearer":
            rec.auth = "token"
            self._check_bearer(rec, rest.strip())
        elif scheme in SIGNATURE_SCHEMES:
            rec.auth = "signature"
            rec.brand, prefix = SIGNATURE_SCHEMES[scheme]
            self._check_signature(rec, params, prefix, rest)
        else:
            raise AuthFailure(APICODE_TOKEN_MISSING, "unsupported authorization scheme")

    def _check_bearer(self, rec: RequestRecord, token: str) -> None:
        self.tokens.check(token)
        brands = []
        for brand, name in USERPOOL_HEADERS:
            value = rec.header(name)
            if value is None:
                continue
            brands.append(brand)
            if value != self.config.userpool_id:
                raise AuthFailure(APICODE_USERPOOL_MISMATCH, f"{name} does not match the token's user pool")
        if not brands:
            raise AuthFailure(APICODE_USERPOOL_MISMATCH, "missing x-genauth-userpool-id / x-authing-userpool-id")
        rec.brand = "+".join(brands)

    def _check_signature(self, rec: RequestRecord, params: Mapping[str, Any] | None, prefix: str, credential: str) -> None:
        cfg = self.config
        ak, sep, signature = credential.strip().partition(":")
        if not sep or not ak or not signature:
            raise AuthFailure(APICODE_SIGNATURE_MALFORMED, "malformed signature credential")
        if not hmac.compare_digest(ak.encode("utf-8", "surrogateescape"), cfg.access_key_id.encode("utf-8")):
            raise AuthFailure(APICODE_SIGNATURE_UNKNOWN_KEY, "unknown access key id")
        date = rec.header("date")
        if not date:
            raise AuthFailure(APICODE_SIGNATURE_NO_DATE, "missing date header")
        try:
            parsed = email.utils.parsedate_to_datetime(date)
            # Naive for "-0000" (UTC, RFC 5322) or no zone: UTC, as on a
            # server that runs in UTC, not the host's zone.
            when = (parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)).timestamp()
        except (TypeError, ValueError, OverflowError):  # Overflow: a field past a C long
            raise AuthFailure(APICODE_SIGNATURE_NO_DATE, "unparseable date header") from None
        if cfg.signature_max_skew is not None and abs(time.time() - when) > cfg.signature_max_skew:
            raise AuthFailure(APICODE_SIGNATURE_SKEW, "date header too far from the server clock")
        if rec.header(prefix + "signature-method") != "HMAC-SHA1" or rec.header(prefix + "signature-version") != "1.0":
            raise AuthFailure(APICODE_SIGNATURE_UNSUPPORTED, "unsupported signature method or version")
        nonce = rec.header(prefix + "signature-nonce")
        if not nonce:
            raise AuthFailure(APICODE_SIGNATURE_MALFORMED, f"missing {prefix}signature-nonce header")
        # http.server decodes header bytes as latin-1; the signer hashed UTF-8.
        wire_headers = [(n, v.encode("latin-1", "replace").decode("utf-8", "replace")) for n, v in rec.headers]
        sts = string_to_sign(rec.method, wire_headers, rec.path, params, prefix)
        rec.string_to_sign = sts
        # Compared as bytes: compare_digest raises on a str with non-ASCII.
        if not hmac.compare_digest(sign(cfg.access_key_secret, sts).encode("ascii"), signature.strip().encode("utf-8", "surrogateescape")):
            raise AuthFailure(APICODE_SIGNATURE_INVALID, "signature does not match")
        with self._lock:
            if nonce in self._nonces:
                raise AuthFailure(APICODE_SIGNATURE_NONCE_REUSED, "signature nonce already used")
            self._nonces.add(nonce)
