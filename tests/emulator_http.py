"""Helpers for the emulator's own tests: raw http.client calls, no C client.

The emulator is pure Python; when the C extension is not built, it is
loaded by path (tests/serve.py) so these tests still run.
"""
from __future__ import annotations

import http.client
import json
import re

import pytest

try:
    from genauth_c import emulator as E
except ImportError:
    from serve import emulator_module
    E = emulator_module()

AK, SK = "AKID", "SECRET"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
def emu():
    with E.Emulator(AK, SK) as server:
        yield server


@pytest.fixture
def receiver():
    with E.WebhookReceiver() as rx:
        yield rx


def call(emu, method, path, body=None, headers=None, conn=None, raw=None, timeout=5):
    """One request; returns (http_status, response headers, body bytes)."""
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", emu.port, timeout=timeout)
    try:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        hdrs = {"content-type": "application/json"} if data is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        if own:
            conn.close()


def call_json(emu, method, path, body=None, headers=None, **kw):
    status, _, data = call(emu, method, path, body, headers, **kw)
    return status, json.loads(data)


def get_token(emu):
    status, env = call_json(emu, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK})
    assert status == 200 and env["statusCode"] == 200, env
    return env["data"]["access_token"]


def bearer(emu, token=None, brand="genauth"):
    return {"authorization": f"Bearer {token or get_token(emu)}", f"x-{brand}-userpool-id": emu.userpool_id}


def api(emu, method, path, body=None, headers=None):
    """An authenticated call (a fresh token); returns the envelope."""
    _, env = call_json(emu, method, path, body, headers or bearer(emu))
    return env


def assert_error(env, status_code, api_code):
    assert env["statusCode"] == status_code, env
    assert env["apiCode"] == api_code, env
    assert UUID_RE.match(env["requestId"]), env
    assert isinstance(env["message"], str) and env["message"]
    assert "data" not in env
