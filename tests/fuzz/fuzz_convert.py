"""atheris target: bytes a server answers -> the real client -> Python objects
(genauth_json_doc_to_py in src/binding/convert.c), checked against
json.loads on the same bytes.

Each input is served by a tiny in-process server as the body of a
trigger-webhook answer, and the public ManagementClient fetches it. The
client must give what json.loads gives (equal, same types, -0.0 kept), or
DecodeError where json.loads fails or gives no object. Allowed differences,
documented: an unpaired UTF-16 surrogate escape (json.loads makes a lone
surrogate str; the client refuses) and nesting past 1000 levels. An integer
over Python's int_max_str_digits is a ValueError from json.loads and a
DecodeError (a ValueError) from the client.

    python3 tests/fuzz/fuzz_convert.py -max_total_time=20 CORPUS_DIR...
"""
import json
import math
import os
import sys

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/, for rawserver

with atheris.instrument_imports():
    from rawserver import RawServer, Response, token_response

import genauth_c  # noqa: E402  (C: not instrumented)

CURRENT = [b"{}"]


def handler(req):
    if req.path.endswith("/get-management-token"):
        return token_response()
    return Response(body=CURRENT[0])


class Skip(Exception):
    pass


def reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def expected(data):
    """What json.loads makes of the body: a dict, or DecodeError."""
    text = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    try:
        # Encoded surrogates (ED A0..BF xx) decode as json.loads(bytes)
        # decodes them, and as the client documents it reads them.
        value = json.loads(text.decode("utf-8", "surrogatepass"),
                           parse_constant=reject_constant)
    except RecursionError:
        raise Skip
    except ValueError as e:  # UnicodeDecodeError and JSONDecodeError too
        if "integer string conversion" in str(e):
            return ValueError
        return genauth_c.DecodeError
    return value if isinstance(value, dict) else genauth_c.DecodeError


# The client's documented limit for an answer's nesting: deeper is a
# DecodeError, whatever json.loads makes of it (3.11 raises RecursionError
# far sooner, 3.13 parses thousands of levels).
ANSWER_DEPTH = 1000


def nesting_depth(data):
    """How deep the JSON text's arrays and objects nest (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for c in data:
        if in_string:
            if escaped:
                escaped = False
            elif c == 0x5C:  # backslash
                escaped = True
            elif c == 0x22:
                in_string = False
        elif c == 0x22:
            in_string = True
        elif c in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in b"]}":
            depth -= 1
    return deepest


# Both walks loop over a list of pairs rather than recursing: an answer may
# nest 1000 levels, past Python's recursion limit for a recursive walk.
def has_lone_surrogate(v):
    todo = [v]
    while todo:
        v = todo.pop()
        if isinstance(v, str):
            if any(0xD800 <= ord(c) <= 0xDFFF for c in v):
                return True
        elif isinstance(v, list):
            todo.extend(v)
        elif isinstance(v, dict):
            todo.extend(v)
            todo.extend(v.values())
    return False


def same(a, b):
    todo = [(a, b)]
    while todo:
        a, b = todo.pop()
        if type(a) is not type(b):
            return False
        if isinstance(a, float):
            if math.isnan(a) != math.isnan(b):
                return False
            if not math.isnan(a) and (a != b or math.copysign(1, a)
                                      != math.copysign(1, b)):
                return False
        elif isinstance(a, list):
            if len(a) != len(b):
                return False
            todo.extend(zip(a, b))
        elif isinstance(a, dict):
            if list(a) != list(b):
                return False
            todo.extend((a[k], b[k]) for k in a)
        elif a != b:
            return False
    return True


def check(client, data):
    try:
        want = expected(data)
    except Skip:
        want = None
    CURRENT[0] = data
    try:
        got = client.trigger_webhook("wh1")
    except genauth_c.DecodeError as e:
        if want is None or want in (genauth_c.DecodeError, ValueError):
            return
        if isinstance(want, dict) and (has_lone_surrogate(want)
                                       or nesting_depth(data) > ANSWER_DEPTH):
            return
        raise AssertionError(f"DecodeError ({e}) where json.loads gave "
                             f"{want!r:.200}")
    except ValueError:
        if want is ValueError:
            return
        raise
    if want is None:
        return
    if not isinstance(want, dict) or not same(got, want):
        raise AssertionError(f"client gave {got!r:.200}, json.loads "
                             f"{want!r:.200}")


def main():
    # The C code is not instrumented; the Python around it (json's decoder,
    # the oracle's walk over the result) gives the fuzzer its feedback.
    atheris.instrument_all()
    server = RawServer(handler, record=False)
    server.__enter__()
    client = genauth_c.ManagementClient("AKIDexample1234", "SECRET",
                                        host=server.url, timeout=5)

    def one_input(data):
        check(client, data)

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
