"""JSON as JavaScript prints it, and strict JSON in and out.

A signed request's canonical resource is what a JavaScript SDK prints for
the body (``JSON.stringify``, ``String()``), so the server side must print
exactly the same to check the signature. ``loads`` / ``dumps`` are the
emulator's own strict JSON reader and compact writer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["js_number", "js_string", "js_stringify", "utf16_key", "to_wire_utf8", "loads", "dumps", "compact"]


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
_ARRAY_INDEX_RE = re.compile(r"0|[1-9][0-9]*")


def _js_quote(s: str) -> str:
    def repl(m: re.Match[str]) -> str:
        ch = m.group(0)
        return _JS_ESCAPES.get(ch) or "\\u%04x" % ord(ch)

    return '"' + _JS_QUOTE_RE.sub(repl, s) + '"'


def _is_array_index(key: str) -> bool:
    return bool(_ARRAY_INDEX_RE.fullmatch(key)) and int(key) <= 4294967294


def _js_key(key: object) -> str:
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
    # Loops, not generator expressions: one frame per level of nesting, so
    # MAX_DEPTH levels stay within the recursion limit.
    if isinstance(value, (list, tuple)):
        parts = []
        for v in value:
            parts.append(js_stringify(v))
        return "[" + ",".join(parts) + "]"
    if isinstance(value, Mapping):
        items = [(_js_key(k), v) for k, v in value.items()]
        index_keys = sorted([kv for kv in items if _is_array_index(kv[0])], key=lambda kv: int(kv[0]))
        other_keys = [kv for kv in items if not _is_array_index(kv[0])]
        parts = []
        for k, v in index_keys + other_keys:
            parts.append(_js_quote(k) + ":" + js_stringify(v))
        return "{" + ",".join(parts) + "}"
    raise TypeError(f"js_stringify() cannot serialise {type(value).__name__}")


def js_string(value: Any) -> str:
    """Return JavaScript's ``String(value)`` for a scalar (``true``, ``null``, ``10``).

    Objects and arrays are given their ``JSON.stringify`` form, which is how
    the signing scheme serialises them (not JavaScript's own ``String()``).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return js_number(value)
    return js_stringify(value)  # null, true, false, objects and arrays


def utf16_key(s: str) -> bytes:
    """Sort key comparing UTF-16 code units, as JavaScript's default sort does
    (astral characters sort differently from Python's code point order)."""
    return s.encode("utf-16-be", "surrogatepass")


def to_wire_utf8(s: str) -> bytes:
    """UTF-8 as Node's ``Buffer.from(str, 'utf8')``: lone surrogates become U+FFFD."""
    return re.sub("[\ud800-\udfff]", "\ufffd", s).encode("utf-8")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        # Would not survive a round trip (JSON has no Infinity).
        raise ValueError(f"number out of range: {text}")
    return value


# Arrays and objects nested deeper than this are refused: json.loads raised
# RecursionError past ~1000 levels, and js_stringify (the signature check)
# past ~400, both a traceback and a connection closed with no answer. 501:
# the request's own object, then the client's genauth_c.MAX_DEPTH (500)
# levels of a requestBody or requestHeaders.
MAX_DEPTH = 501


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads(data: bytes | str) -> Any:
    """Strict JSON decoding: UTF-8, no NaN/Infinity, big ints kept exact,
    at most MAX_DEPTH levels of nesting."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    too_deep = f"arrays and objects nested more than {MAX_DEPTH} deep"
    try:
        value = json.loads(data, parse_constant=_reject_constant, parse_float=_parse_float)
    except RecursionError:
        raise ValueError(too_deep) from None
    if _too_deep(value):
        raise ValueError(too_deep)
    return value


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON; falls back to \\u escapes when a str holds a lone surrogate."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def compact(value: Any) -> str:
    """``dumps`` as a str (for header values and form fields)."""
    return dumps(value).decode("utf-8")
