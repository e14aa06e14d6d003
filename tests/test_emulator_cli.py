"""The emulator as a command: --help, the start banner, serving, and quiet
client disconnects (a subprocess emulator, checked on its stderr)."""
from __future__ import annotations

import json
import os
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
SECRET_VARIABLE = "GENAUTH_EMULATOR_ACCESS_KEY_SECRET"


def run_module(*args, **kw):
    # The installed package, as a user runs it.
    return subprocess.Popen([sys.executable, "-m", "genauth_c.emulator", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


class Served:
    """A `python -m genauth_c.emulator` process; .port, .banner, .stop() -> (rc, stderr)."""

    def __init__(self, *args, secret=None):
        # The secret, if any, by the environment: never on the command line.
        env = {k: v for k, v in os.environ.items() if k != SECRET_VARIABLE}
        if secret is not None:
            env[SECRET_VARIABLE] = secret
        self.proc = run_module("--port", "0", *args, env=env)
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
        with self.proc.stdout, self.proc.stderr:
            return rc, self.proc.stderr.read()


def test_help_shows_defaults_and_credentials():
    out = subprocess.run([sys.executable, "-m", "genauth_c.emulator", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # argparse wraps lines
    for expected in ("--access-key-id", "(default: AK)", "(default: 127.0.0.1)", "(default: 0)",
                     "(default: 7200", f"(default: {E.DEFAULT_USERPOOL_ID})", "--webhook ID=URL",
                     # The secret on argv still works, but says what it exposes.
                     "--access-key-secret SECRET the access key secret it accepts, visible to every "
                     f"user of the machine (ps, /proc/PID/cmdline): prefer the environment variable "
                     f"{SECRET_VARIABLE} (without either: SK)"):
        assert expected in text, expected


def test_bad_usage_exits_2():
    out = subprocess.run([sys.executable, "-m", "genauth_c.emulator", "--webhook", "no-equals"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "ID=URL" in out.stderr


@pytest.mark.parametrize("args, named", [
    (("--port", "99999"), "--port"), (("--port", "-1"), "--port"),
    (("--token-lifetime", "-5"), "--token-lifetime"), (("--token-lifetime", "nan"), "--token-lifetime"),
    (("--token-lifetime", "inf"), "--token-lifetime"), (("--webhook-timeout", "0"), "--webhook-timeout"),
    # A key no client can send (ManagementClient refuses it): an emulator
    # that accepted only it served, and no client could authenticate.
    (("--access-key-id", ""), "--access-key-id"), (("--access-key-id", "AK\n"), "--access-key-id"),
    (("--access-key-secret", ""), "--access-key-secret"), (("--access-key-secret", " SK"), "--access-key-secret"),
])
def test_values_out_of_range_are_usage_errors_not_tracebacks(args, named):
    # --port 99999 was a traceback (OverflowError from bind); a lifetime of
    # -5 or nan served tokens no client could use, silently.
    proc = subprocess.Popen([sys.executable, "-m", "genauth_c", "emulator", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:  # it served: the value was taken
        proc.kill()
        proc.communicate()
        pytest.fail(f"{args} was accepted")
    assert proc.returncode == 2, stderr
    assert "Traceback" not in stderr and f"argument {named}:" in stderr
    assert stderr.startswith("usage: genauth-c emulator ")  # the command the user typed


def test_serves_prints_banner_and_delivers(receiver):
    secret = "emulator-secret-4f2a"
    served = Served("--access-key-id", AK, "--webhook", f"wh1={receiver.url}/cli",
                    "--form-webhook", f"wh2={receiver.url}/form", "--token-lifetime", "60", secret=secret)
    try:
        assert f"access key id:     {AK}" in served.banner
        # From the environment: neither on the command line nor shown.
        assert f"access key secret: set by {SECRET_VARIABLE}, not shown" in served.banner
        assert secret not in served.banner
        with open(f"/proc/{served.proc.pid}/cmdline", "rb") as f:
            assert secret.encode() not in f.read()
        assert f"user pool id:      {E.DEFAULT_USERPOOL_ID}" in served.banner
        assert f"wh1 -> {receiver.url}/cli (application/json)" in served.banner
        assert f"wh2 -> {receiver.url}/form ({E.FORM_CONTENT_TYPE})" in served.banner
        _, env = call_json(served, "POST", E.TOKEN_PATH, {"accessKeyId": AK, "accessKeySecret": secret})
        assert env["data"]["expires_in"] == 60
        headers = bearer(served, env["data"]["access_token"])
        _, env = call_json(served, "POST", E.TRIGGER_PATH, {"webhookId": "wh1"}, headers)
        assert env["statusCode"] == 200 and receiver.received[0].path == "/cli"
        _, env = call_json(served, "POST", E.TRIGGER_PATH, {"webhookId": "wh2"}, headers)
        assert env["statusCode"] == 200 and receiver.received[1].form["eventName"] == "test"
    finally:
        rc, stderr = served.stop()
    assert rc == 0 and stderr == ""


def token_status(served, secret):
    return call_json(served, "POST", E.TOKEN_PATH, {"accessKeyId": "AK", "accessKeySecret": secret})[1]["statusCode"]


@pytest.mark.parametrize("how", ["default", "argv", "argv over the environment", "empty variable"])
def test_a_secret_not_from_the_environment_is_shown(how):
    # The default, and one on the command line (kept for compatibility), are
    # no secret from anyone on this machine: the banner says which it is.
    args = () if how in ("default", "empty variable") else ("--access-key-secret", "ARGV-SK")
    secret = {"default": None, "argv": None, "argv over the environment": "ENV-SK", "empty variable": ""}[how]
    expected = "SK" if how in ("default", "empty variable") else "ARGV-SK"
    served = Served(*args, secret=secret)
    try:
        assert f"access key secret: {expected}\n" in served.banner
        assert token_status(served, expected) == 200
        assert token_status(served, "ENV-SK") == 401
    finally:
        rc, _ = served.stop()
    assert rc == 0


@pytest.mark.parametrize("value, message", [
    ("SK-from-env\n", "begins or ends with a space, or holds a line end or other control character"),
    (" SK-from-env", "begins or ends with a space, or holds a line end or other control character"),
    ("SK-\tfrom-env", "begins or ends with a space, or holds a line end or other control character"),
    ("SK-from-env\udcff", "not UTF-8 text"),
], ids=["lf", "space", "tab", "not-utf8"])
def test_a_secret_variable_no_client_could_send_is_named(value, message):
    env = dict(os.environ)
    env[SECRET_VARIABLE] = value
    if value.endswith("\udcff"):  # as os.environ reads the byte 0xff
        env = {k.encode(): v.encode("utf-8", "surrogateescape") for k, v in env.items()}
    out = subprocess.run([sys.executable, "-m", "genauth_c.emulator", "--port", "0"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1] == (f"python -m genauth_c.emulator: error: {SECRET_VARIABLE}: {message} "
                                           "(set in the environment)")
    assert "SK-from-env" not in out.stderr and out.stdout == ""


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
                s.sendall(f"POST {E.TRIGGER_PATH} HTTP/1.1\r\nHost: x\r\n{head}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
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


def test_a_banner_that_cannot_be_written_is_one_line_not_a_traceback():
    # `genauth-c emulator > /dev/full` ended in an OSError traceback (and the
    # buffered banner failed once more at exit).
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "genauth_c.emulator", "--port", "0"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == "genauth-c emulator: cannot write the banner to stdout: No space left on device\n"


def test_a_port_it_cannot_listen_on_leaves_the_sigterm_handler_as_it_was():
    # main() put its SIGTERM handler in place, then returned 1 when the port
    # was taken without putting the caller's back.
    from genauth_c.emulator.cli import main
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        before = signal.getsignal(signal.SIGTERM)
        assert main(["--port", str(taken.getsockname()[1])]) == 1
        assert signal.getsignal(signal.SIGTERM) is before
