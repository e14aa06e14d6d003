"""The emulator as a command: --help, the start banner, serving, and quiet
client disconnects (a subprocess emulator, checked on its stderr)."""
from __future__ import annotations

import json
import pathlib
import re
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from emulator_http import AK, SK, E, bearer, call_json, receiver  # noqa: F401

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_module(*args, **kw):
    # The installed package, as a user runs it.
    return subprocess.Popen([sys.executable, "-m", "genauth_c.emulator", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


class Served:
    """A `python -m genauth_c.emulator` process; .port, .banner, .stop() -> (rc, stderr)."""

    def __init__(self, *args):
        self.proc = run_module("--port", "0", *args)
        lines = [self.proc.stdout.readline()]
        while lines[-1] and not lines[-1].startswith("Press Ctrl-C"):
            lines.append(self.proc.stdout.readline())
        self.banner = "".join(lines)
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", lines[0])
        assert found, (self.banner, self.proc.stderr.read() if self.proc.poll() is not None else "")
        self.port = int(found.group(1))
        self.userpool_id = E.DEFAULT_USERPOOL_ID

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            pytest.fail("the emulator did not stop on SIGTERM")
        return rc, self.proc.stderr.read()


def test_help_shows_defaults_and_credentials():
    out = subprocess.run([sys.executable, "-m", "genauth_c.emulator", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # argparse wraps lines
    for expected in ("--access-key-id", "(default: AK)", "(default: SK)", "(default: 127.0.0.1)", "(default: 0)",
                     "(default: 7200", f"(default: {E.DEFAULT_USERPOOL_ID})", "--webhook ID=URL"):
        assert expected in text, expected


def test_bad_usage_exits_2():
    out = subprocess.run([sys.executable, "-m", "genauth_c.emulator", "--webhook", "no-equals"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "ID=URL" in out.stderr


def test_serves_prints_banner_and_delivers(receiver):
    served = Served("--access-key-id", AK, "--access-key-secret", SK, "--webhook", f"wh1={receiver.url}/cli",
                    "--form-webhook", f"wh2={receiver.url}/form", "--token-lifetime", "60")
    try:
        assert f"access key id:     {AK}" in served.banner
        assert f"access key secret: {SK}" in served.banner
        assert f"user pool id:      {E.DEFAULT_USERPOOL_ID}" in served.banner
        assert f"wh1 -> {receiver.url}/cli (application/json)" in served.banner
        assert f"wh2 -> {receiver.url}/form ({E.FORM_CONTENT_TYPE})" in served.banner
        _, env = call_json(served, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": SK})
        assert env["data"]["expires_in"] == 60
        headers = bearer(served, env["data"]["access_token"])
        _, env = call_json(served, "POST", E.TRIGGER_PATH, {"webhookId": "wh1"}, headers)
        assert env["statusCode"] == 200 and receiver.received[0].path == "/cli"
        _, env = call_json(served, "POST", E.TRIGGER_PATH, {"webhookId": "wh2"}, headers)
        assert env["statusCode"] == 200 and receiver.received[1].form["eventName"] == "test"
    finally:
        rc, stderr = served.stop()
    assert rc == 0 and stderr == ""


def test_client_disconnects_are_not_tracebacks():
    served = Served()
    try:
        with E.WebhookReceiver(delay=1.0) as slow:
            token_env = call_json(served, "POST", E.TOKEN_PATH, {"accessKeyId": "AK", "accessKeySecret": "SK"})[1]
            headers = bearer(served, token_env["data"]["access_token"])
            hook = call_json(served, "POST", "/api/v3/create-webhook",
                             {"contentType": "application/json", "events": ["test"], "url": slow.url, "name": "slow"},
                             headers)[1]["data"]
            body = json.dumps({"webhookId": hook["webhookId"]}).encode()
            head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            for linger in (True, False):  # a reset, then an orderly close
                s = socket.create_connection(("127.0.0.1", served.port), timeout=5)
                s.sendall(f"POST {E.TRIGGER_PATH} HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                assert slow.wait_for(1 if linger else 2, timeout=10)  # the emulator waits on the subscriber
                if linger:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            # Both deliveries logged: their answers go to closed sockets now.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                logs = call_json(served, "POST", "/api/v3/get-webhook-logs", {"webhookId": hook["webhookId"]}, headers)[1]
                if logs["data"]["totalCount"] == 2:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("the deliveries were not logged")
            time.sleep(0.5)
        assert call_json(served, "GET", "/api/v3/get-webhook-event-list", headers=headers)[1]["statusCode"] == 200
    finally:
        rc, stderr = served.stop()
    assert rc == 0
    assert "Traceback" not in stderr and "Error" not in stderr, stderr


def _readme_emulator_examples():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "genauth_c.emulator" in b]


@pytest.mark.parametrize("code", _readme_emulator_examples())
def test_readme_examples_print_nothing_on_stderr(code):
    # The errors example times a call out while the emulator still holds its
    # answer: the emulator must not print the client's disconnect.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=pathlib.Path(__file__).parent)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
