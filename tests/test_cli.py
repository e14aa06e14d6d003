"""The command line (genauth-c / python -m genauth_c), run as a user runs it:
in a subprocess, against the emulator."""
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys

import pytest

from genauth_c import ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver
from rawserver import FakeGenAuth, Held, RawServer, Response

AK, SK = "AKID-cli-123456", "SECRET-cli-never-on-argv"
HAS_WEBHOOK_METHODS = hasattr(ManagementClient, "list_webhooks")


@pytest.fixture
def receiver():
    with WebhookReceiver(answer_body=lambda got: got.body) as rx:
        yield rx


@pytest.fixture
def emulator(receiver):
    with Emulator(AK, SK) as emu:
        emu.add_webhook("wh1", receiver.url + "/hook")
        yield emu


def environment(emulator=None, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GENAUTH_", "AUTHING_"))}
    if emulator is not None:
        env.update(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK,
                   GENAUTH_HOST=emulator.url)
    env.update(extra)
    return env


def cli(*args, env, stdin="", **kw):
    return subprocess.run([sys.executable, "-m", "genauth_c", *args], env=env,
                          input=stdin, capture_output=True, text=True,
                          timeout=60, **kw)


def one_line(text):
    assert text.endswith("\n") and text.count("\n") == 1, text
    return text


def test_trigger_prints_the_envelope_compact_when_piped(emulator, receiver):
    out = cli("trigger", "wh1", "--body", '{"eventName": "test", "data": {"名": 1}}',
              "--headers", '{"X-A": "b"}', env=environment(emulator))
    assert (out.returncode, out.stderr) == (0, "")
    envelope = json.loads(out.stdout)
    assert envelope["statusCode"] == 200
    assert envelope["data"]["response"] == {"eventName": "test", "data": {"名": 1}}
    # Compact, and not ASCII-escaped.
    assert out.stdout == json.dumps(envelope, ensure_ascii=False, separators=(",", ":")) + "\n"
    assert json.loads(receiver.received[-1].body) == {"eventName": "test", "data": {"名": 1}}


def test_body_from_a_file_and_from_stdin(emulator, receiver, tmp_path):
    path = tmp_path / "body.json"
    path.write_text('{"from": "file"}', encoding="utf-8")
    out = cli("trigger", "wh1", "--body", f"@{path}", env=environment(emulator))
    assert out.returncode == 0, out.stderr
    assert json.loads(receiver.received[-1].body) == {"from": "file"}
    out = cli("trigger", "wh1", "--body", "-", stdin='{"from": "stdin"}',
              env=environment(emulator))
    assert out.returncode == 0, out.stderr
    assert json.loads(receiver.received[-1].body) == {"from": "stdin"}


def test_indented_on_a_terminal(emulator):
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "genauth_c", "trigger", "wh1"],
                            env=environment(emulator), stdout=follower,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 30)
        assert ready, "no output within 30 s"
        try:
            data = os.read(leader, 65536)
        except OSError:  # the follower side closed
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    assert proc.wait(timeout=30) == 0, proc.stderr.read()
    proc.stderr.close()
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    assert text.startswith('{\n  "statusCode": 200,'), text
    assert json.loads(text)["statusCode"] == 200


def test_business_error_exit_1_envelope_printed(emulator):
    out = cli("trigger", "no-such-webhook", env=environment(emulator))
    assert out.returncode == 1
    assert out.stderr == ""
    assert json.loads(out.stdout)["statusCode"] == 404


@pytest.mark.parametrize("args, message", [
    (["trigger", "wh1", "--body", "{not json"], "--body: not valid JSON"),
    (["trigger", "wh1", "--body", "[1, 2]"], "--body: expected a JSON object, got list"),
    (["trigger", "wh1", "--headers", "@/nonexistent/h.json"], "--headers: cannot read"),
    (["trigger", "wh1", "--timeout", "-1"], "--timeout"),
    (["trigger"], "WEBHOOK_ID"),
    (["nonsense"], "invalid choice"),
    (["trigger", "wh1", "--access-key-secret", SK], "--access-key-secret: secrets are not taken"),
    (["trigger", "wh1", "--bogus", SK], "unrecognized arguments: --bogus"),
])
def test_bad_usage_exit_2(emulator, args, message):
    out = cli(*args, env=environment(emulator))
    assert out.returncode == 2
    assert out.stdout == ""
    assert message in out.stderr
    assert out.stderr.splitlines()[-1].startswith("genauth-c: error:")
    assert SK not in out.stderr


def test_missing_credentials_are_named(emulator):
    out = cli("trigger", "wh1", "--host", emulator.url, env=environment())
    assert out.returncode == 2
    assert "GENAUTH_ACCESS_KEY_ID and GENAUTH_ACCESS_KEY_SECRET are not set" in one_line(out.stderr)
    # The command line's own way is named too: the message named only the
    # variables (and the Python class), not --access-key-id.
    assert out.stderr.endswith(
        " in the environment; or pass --access-key-id ID, its secret from "
        "--access-key-secret-file PATH or a prompt\n"), out.stderr
    out = cli("--brand", "authing", "trigger", "wh1", env=environment())
    assert "AUTHING_ACCESS_KEY_ID and AUTHING_ACCESS_KEY_SECRET" in out.stderr


def test_transport_failure_exit_3():
    with Emulator(AK, SK) as emu:
        url = emu.url  # nothing listens there once it stopped
    out = cli("trigger", "wh1", "--host", url,
              env=environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK))
    assert out.returncode == 3
    assert out.stdout == ""
    assert one_line(out.stderr).startswith("genauth-c: TransportError: ")


def test_timeout_is_a_transport_failure(emulator):
    emulator.delay = 3
    out = cli("trigger", "wh1", "--timeout", "0.5", env=environment(emulator))
    assert out.returncode == 3
    assert one_line(out.stderr).startswith("genauth-c: TimeoutError: ")


def test_decode_failure_exit_3(emulator):
    emulator.raw_body = b"<html>oops</html>"
    out = cli("trigger", "wh1", env=environment(emulator))
    assert out.returncode == 3
    assert one_line(out.stderr).startswith("genauth-c: DecodeError: ")


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_authentication_failure_exit_4(emulator, auth):
    env = environment(emulator, GENAUTH_ACCESS_KEY_SECRET="wrong-secret")
    out = cli("trigger", "wh1", "--auth", auth, env=env)
    assert out.returncode == 4
    if auth == "token":  # the token endpoint refused: nothing to print
        assert out.stdout == ""
        assert one_line(out.stderr).startswith("genauth-c: authentication failed: ")
    else:  # the API refused the signature: its envelope is printed
        assert json.loads(out.stdout)["statusCode"] == 401
    assert "wrong-secret" not in out.stdout + out.stderr


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_throttled_or_failing_token_endpoint_is_not_an_authentication_failure(status):
    """Exit status 4 says the keys were refused: a script stops retrying and
    looks at its credentials. A token endpoint that was throttled or failed
    refused nothing: its envelope is printed and the status is that of the
    API's own answer with that statusCode (1), with a line on stderr saying
    whose answer it is."""
    fake = FakeGenAuth()
    fake.token_answer = Response.json({"statusCode": status, "apiCode": 1500,
                                       "message": "busy", "requestId": "r1"},
                                      status=status)
    with RawServer(fake) as server:
        env = environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK,
                          GENAUTH_HOST=server.url)
        out = cli("trigger", "wh1", env=env)
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout)["statusCode"] == status
    assert "token endpoint" in one_line(out.stderr)
    assert "authentication failed" not in out.stderr


def test_a_failing_token_endpoint_that_quotes_the_secret_is_not_an_authentication_failure():
    """A failing token endpoint whose answer echoes the request (the secret
    in it) is withheld whole by the client: its AuthError has no envelope,
    so no statusCode, only the HTTP status. That answer was taken for a
    refusal of the keys (exit 4, "authentication failed"); HTTP 503 says it
    refused nothing: exit 1, as for its envelope when it can be shown, with
    what can be printed of it (nothing is known of its statusCode)."""
    fake = FakeGenAuth()
    fake.token_answer = Response.json({"statusCode": 503, "apiCode": 1500, "requestId": "r1",
                                       "message": f"busy: {{'accessKeySecret': '{SK}'}}"},
                                      status=503)
    with RawServer(fake) as server:
        env = environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK,
                          GENAUTH_HOST=server.url)
        out = cli("trigger", "wh1", env=env)
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout) == {"statusCode": None}
    assert "token endpoint" in one_line(out.stderr) and "not shown" in out.stderr
    assert "authentication failed" not in out.stderr
    assert SK not in out.stdout + out.stderr


def test_a_server_cannot_write_terminal_controls_to_stderr():
    """A message the server chose (a token refusal's) went to stderr with
    its control characters as sent: ESC sequences, which a terminal runs
    (a title set, the screen cleared; stdout's JSON escapes them). They are
    written as '?', as in the DEBUG lines."""
    fake = FakeGenAuth()
    fake.token_answer = Response.json(
        {"statusCode": 401, "apiCode": 1, "message": "bad\x1b]0;title\x07 key\x9b2J\x00"})
    with RawServer(fake) as server:
        env = environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK,
                          GENAUTH_HOST=server.url)
        out = cli("trigger", "wh1", env=env)
    assert out.returncode == 4, out.stderr
    assert one_line(out.stderr) == ("genauth-c: authentication failed: the token endpoint "
                                    "refused: bad?]0;title? key?2J (HTTP 200)\n")


@pytest.mark.parametrize("status_code, http_status, expected", [
    ("503", 200, 4), ([503], 200, 4), ("busy", 503, 1)])
def test_a_token_refusal_whose_status_code_is_no_number(status_code, http_status, expected):
    """A token endpoint's statusCode is the server's to choose: one that is
    no number ("503") was compared with 500 and ended the command in a
    TypeError traceback. The HTTP status decides then, as when there is
    none."""
    fake = FakeGenAuth()
    fake.token_answer = Response.json({"statusCode": status_code, "message": "no",
                                       "requestId": "r1"}, status=http_status)
    with RawServer(fake) as server:
        env = environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK,
                          GENAUTH_HOST=server.url)
        out = cli("trigger", "wh1", env=env)
    assert out.returncode == expected, out.stderr
    assert "token endpoint" in one_line(out.stderr)
    if expected == 1:
        assert json.loads(out.stdout)["statusCode"] == status_code
    else:
        assert out.stdout == "" and out.stderr.startswith("genauth-c: authentication failed: ")


@pytest.mark.parametrize("http_status, answer", [
    (503, {"statusCode": "503", "message": "busy"}),  # a str: no number
    (502, {"message": "bad gateway"}),                 # a gateway's, no statusCode
])
def test_a_failing_token_endpoint_whose_statusCode_is_no_int(http_status, answer):
    """The token endpoint's statusCode is whatever its JSON holds: a str
    compared with 500 raised TypeError out of the AuthError handler, a
    traceback and exit 1; none at all read as refused keys (4), where the
    HTTP status says the endpoint failed."""
    fake = FakeGenAuth()
    fake.token_answer = Response.json(answer, status=http_status)
    with RawServer(fake) as server:
        env = environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK,
                          GENAUTH_HOST=server.url)
        out = cli("trigger", "wh1", env=env)
    assert out.returncode == 1, out.stderr
    assert json.loads(out.stdout) == answer
    assert "token endpoint" in one_line(out.stderr)
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("status", [403, 401])
def test_an_answer_quoting_the_credential_is_not_printed(auth, status):
    """An error envelope that echoes the request's Authorization header
    would print the token (which the user never sees otherwise) or the
    signature into a terminal or a CI log: only its statusCode and apiCode
    are printed, the exit status as for any such answer."""
    def handler(req):
        if "trigger-webhook" not in req.path:
            return fake(req)
        return Response.json({"statusCode": status, "apiCode": 1403,
                              "message": f"refused: {req.header('authorization')}",
                              "requestId": "r1"})

    fake = FakeGenAuth()
    with RawServer(handler) as server:
        fake.server = server
        env = environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK,
                          GENAUTH_HOST=server.url)
        out = cli("trigger", "wh1", "--auth", auth, env=env)
    sent = [r.header("authorization") for r in server.requests
            if "trigger-webhook" in r.path]
    assert sent
    assert out.returncode == (4 if status == 401 else 1)
    assert json.loads(out.stdout) == {"statusCode": status, "apiCode": 1403}
    assert "not shown" in one_line(out.stderr)
    for header in sent:
        credential = header.rsplit(":", 1)[1] if auth == "signature" else header[7:]
        assert credential[:12] not in out.stdout + out.stderr


def test_key_id_option_with_the_secret_from_a_file(emulator, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(SK + "\n", encoding="utf-8")
    out = cli("trigger", "wh1", "--access-key-id", AK, "--access-key-secret-file", str(secret),
              "--host", emulator.url, env=environment())
    assert out.returncode == 0, out.stderr
    out = cli("trigger", "wh1", "--access-key-secret-file", str(secret),
              "--host", emulator.url, env=environment())
    assert out.returncode == 2
    assert "--access-key-secret-file needs --access-key-id" in out.stderr


def test_key_id_option_with_the_secret_at_a_prompt(emulator):
    # No terminal here (a new session has none): getpass reads stdin.
    out = cli("trigger", "wh1", "--access-key-id", AK, "--host", emulator.url,
              env=environment(), stdin=SK + "\n", start_new_session=True)
    assert out.returncode == 0, out.stderr
    assert SK not in out.stderr + out.stdout
    out = cli("trigger", "wh1", "--access-key-id", AK, "--host", emulator.url,
              env=environment(), stdin="", start_new_session=True)
    assert out.returncode == 2
    assert "no access key secret given" in out.stderr


@pytest.mark.parametrize("option", ["--body", "--headers"])
def test_a_payload_from_stdin_and_the_secret_at_a_prompt_without_a_terminal(emulator, option):
    """Without a terminal the prompt reads stdin, which '-' has already
    read for the payload: refused, naming both and the other ways to give
    the secret. It was 'no access key secret given', which named neither."""
    out = cli("trigger", "wh1", option, "-", "--access-key-id", AK, "--host", emulator.url,
              env=environment(), stdin='{"a": 1}', start_new_session=True)
    assert out.returncode == 2
    assert out.stdout == ""
    message = one_line(out.stderr)
    assert f"{option} -" in message and "--access-key-secret-file" in message, message
    assert "GENAUTH_ACCESS_KEY_SECRET" in message, message
    assert not emulator.requests


def test_the_secret_from_stdin_without_a_terminal_prints_no_warnings(emulator):
    # Without a terminal, getpass warned (GetPassWarning with a line of its
    # source, "Password input may be echoed") and left its prompt without a
    # line end, so the error shared a line with it.
    out = cli("trigger", "wh1", "--access-key-id", AK, "--host", emulator.url,
              env=environment(), stdin=SK + "\r\n", start_new_session=True)
    assert (out.returncode, out.stderr) == (0, "")
    out = cli("trigger", "wh1", "--access-key-id", AK, "--host", emulator.url,
              env=environment(), stdin="", start_new_session=True)
    assert out.returncode == 2
    assert out.stderr == "genauth-c: error: no access key secret given\n"


def test_the_secret_from_stdin_is_read_as_a_secret_file_is(emulator, tmp_path):
    """Without a terminal, the prompt's line of stdin had no limit: stdin
    with no line end (< /dev/zero, a wrong file) was read until memory ran
    out, ending in a MemoryError traceback. It is read as a secret file is:
    refused past 64 KiB, naming stdin; a byte order mark dropped, bytes
    that are not UTF-8 named by their offset, never quoted."""
    def prompt(stdin):
        return subprocess.run(
            [sys.executable, "-m", "genauth_c", "trigger", "wh1", "--access-key-id", AK,
             "--host", emulator.url], env=environment(), stdin=stdin, capture_output=True,
            timeout=60, start_new_session=True)

    # A file, not /dev/zero itself: unfixed, that would fill the memory.
    for content, message in [(b"x" * (1 << 20), "stdin is larger than 65536 bytes"),
                             (b"SEC\xffRET\n", "stdin is not UTF-8 text (byte 3)"),
                             (b"\xef\xbb\xbf" + SK.encode() + b"\r\n", None)]:
        path = tmp_path / "stdin"
        path.write_bytes(content)
        with open(path, "rb") as stdin:
            out = prompt(stdin)
        if message is None:
            assert (out.returncode, out.stderr) == (0, b""), out.stderr
        else:
            assert out.returncode == 2
            assert one_line(out.stderr.decode()) == f"genauth-c: error: access key secret: {message}\n"
    assert emulator.token_fetches == 1


def test_a_secret_typed_at_the_prompt_with_a_space_at_an_end_is_refused(emulator):
    """At a terminal, a secret typed or pasted with a space at either end
    was sent as is and refused as a wrong key (exit 4), where a secret file
    or stdin holding it is refused before anything is sent: so is the
    prompt's answer, naming it."""
    env = environment(GENAUTH_HOST=emulator.url)
    pid, fd = pty.fork()  # the child's controlling terminal: getpass asks there
    if pid == 0:
        os.execve(sys.executable, [sys.executable, "-m", "genauth_c", "trigger", "wh1",
                                   "--access-key-id", AK], env)
    out = b""
    try:
        while b"access key secret for" not in out:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, out
            out += os.read(fd, 4096)
        os.write(fd, SK.encode() + b" \n")
        while True:
            ready, _, _ = select.select([fd], [], [], 30)
            assert ready, out
            try:
                data = os.read(fd, 4096)
            except OSError:  # the child has ended: its side closed
                break
            if not data:
                break
            out += data
    finally:
        os.close(fd)
        _, status = os.waitpid(pid, 0)
    text = out.decode().replace("\r\n", "\n")
    assert os.waitstatus_to_exitcode(status) == 2, text
    assert "genauth-c: error: access key secret: the prompt's answer begins or ends with a space\n" in text
    assert SK not in text and not emulator.requests


def test_options_reach_the_client(emulator):
    out = cli("trigger", "wh1", "--auth", "signature", "--brand", "authing",
              env=environment(emulator, AUTHING_ACCESS_KEY_ID=AK,
                              AUTHING_ACCESS_KEY_SECRET=SK,
                              AUTHING_HOST=emulator.url))
    assert out.returncode == 0, out.stderr
    rec = emulator.requests[-1]
    assert (rec.auth, rec.brand) == ("signature", "authing")


def test_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "genauth-c")
    out = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "trigger" in out.stdout and "Exit status" in out.stdout
    # --help names every variable the command reads, the secret's too:
    # without it, a user reading --help alone cannot find where it goes.
    text = " ".join(out.stdout.split())
    for name in ("GENAUTH_ACCESS_KEY_ID", "GENAUTH_ACCESS_KEY_SECRET", "GENAUTH_HOST"):
        assert "$" + name in text, name


def test_the_help_names_every_webhooks_action():
    # `genauth-c --help` said "list, read, create, change, delete webhooks":
    # nothing there led to the logs and events actions.
    from genauth_c.cli import build_parser
    text = build_parser().format_help()
    entry = text[text.index("    webhooks "):text.index("    emulator ")]
    assert "logs" in entry and "event" in entry, entry


def test_emulator_command_serves(tmp_path):
    # The secret by the environment, where other users cannot read it.
    proc = subprocess.Popen(
        [sys.executable, "-m", "genauth_c", "emulator", "--port", "0",
         "--access-key-id", AK],
        env=environment(GENAUTH_EMULATOR_ACCESS_KEY_SECRET=SK),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for _ in range(20):  # the emulator prints a few lines at start
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            assert ready, "the emulator printed nothing within 30 s"
            line = proc.stdout.readline()
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
        assert url, "no 'listening on' line"
        out = cli("trigger", "unknown-hook", "--host", url,
                  env=environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK))
        assert out.returncode == 1
        assert json.loads(out.stdout)["statusCode"] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == 0


@pytest.mark.skipif(not HAS_WEBHOOK_METHODS, reason="the webhook methods are not built in")
def test_webhooks_commands_round_trip(emulator, receiver, tmp_path):
    env = environment(emulator)
    secret = tmp_path / "hook-secret"
    secret.write_text("hook-secret-1\n", encoding="utf-8")

    def run(*args, expect=0):
        out = cli("webhooks", *args, env=env)
        assert out.returncode == expect, out.stderr
        return json.loads(out.stdout)

    created = run("create", "--name", "cli hook", "--url", receiver.url + "/cli",
                  "--events", "user:created,user:deleted", "--events", "test",
                  "--disabled", "--secret-file", str(secret))["data"]
    hook_id = created["webhookId"]
    assert created["events"] == ["user:created", "user:deleted", "test"]
    assert created["enabled"] is False and created["contentType"] == "application/json"
    assert emulator.get_webhook(hook_id)["secret"] == "hook-secret-1"
    got = run("get", "--webhook-id", hook_id)["data"]
    assert got["name"] == "cli hook"
    updated = run("update", "--webhook-id", hook_id, "--name", "renamed", "--enabled")["data"]
    assert (updated["name"], updated["enabled"]) == ("renamed", True)
    listed = run("list", "--page", "1", "--limit", "50")["data"]
    assert hook_id in [hook["webhookId"] for hook in listed["list"]]
    assert cli("trigger", hook_id, "--body", '{"n": 1}', env=env).returncode == 0
    logs = run("logs", "--webhook-id", hook_id, "--limit", "5")["data"]
    assert logs["totalCount"] >= 1
    events = run("events")["data"]
    assert any(e["value"] == "user:created" for e in events["events"])
    assert run("delete", "--webhook-ids", hook_id)["data"] == {"success": True}
    assert run("get", "--webhook-id", hook_id, expect=1)["statusCode"] == 404


def test_webhooks_usage_errors(emulator):
    out = cli("webhooks", "create", "--name", "x", env=environment(emulator))
    assert out.returncode == 2
    assert "required" in out.stderr
    out = cli("webhooks", "list", "--page", "0", env=environment(emulator))
    assert out.returncode == 2
    assert "positive integer" in out.stderr


@pytest.mark.skipif(not HAS_WEBHOOK_METHODS, reason="the webhook methods are not built in")
@pytest.mark.parametrize("args, option", [
    (["delete", "--webhook-ids", ""], "--webhook-ids"),
    (["delete", "--webhook-ids", " , "], "--webhook-ids"),
    (["create", "--name", "n", "--url", "http://x", "--events", ","], "--events"),
    (["update", "--webhook-id", "wh1", "--events", ""], "--events"),
])
def test_a_list_option_that_names_nothing_is_refused(emulator, args, option):
    # --webhook-ids "$IDS" with $IDS empty deleted nothing and exited 0, as
    # if it had deleted them; --events "" created a webhook for no event.
    out = cli("webhooks", *args, env=environment(emulator))
    assert (out.returncode, out.stdout) == (2, "")
    assert one_line(out.stderr) == f"genauth-c: error: {option}: names nothing (empty, or only commas)\n"
    assert emulator.requests == []


@pytest.mark.skipif(not HAS_WEBHOOK_METHODS, reason="the webhook methods are not built in")
def test_connection_options_between_webhooks_and_its_action(emulator):
    # "before or after the command": after `webhooks` they were refused as
    # "argument ACTION: invalid choice", naming neither the option nor why.
    env = environment(emulator, GENAUTH_HOST="http://127.0.0.1:9")
    out = cli("webhooks", "--host", emulator.url, "--timeout", "5", "list", env=env)
    assert (out.returncode, out.stderr) == (0, ""), out.stderr
    assert emulator.requests[-1].path == "/api/v3/list-webhooks"


@pytest.mark.skipif(not HAS_WEBHOOK_METHODS, reason="the webhook methods are not built in")
@pytest.mark.parametrize("action", [["create", "--name", "n", "--url", "http://x", "--events", "test"],
                                    ["update", "--webhook-id", "wh1"]])
def test_an_empty_secret_file_path_is_refused(emulator, action):
    # --secret-file "$HOOK_SECRET_FILE" with the variable unset was ignored:
    # the webhook was made or changed without the secret, exit 0.
    out = cli("webhooks", *action, "--secret-file", "", env=environment(emulator))
    assert (out.returncode, out.stdout) == (2, "")
    assert one_line(out.stderr).startswith("genauth-c: error: --secret-file: cannot read : ")
    assert emulator.requests == []


def cli_with_fds(*args, env, redirect, stdin=""):
    """The command line with a shell redirection applied first (">&-"
    closes stdout, "<&-" stdin, "2>&-" stderr)."""
    return subprocess.run(["sh", "-c", f'exec "$@" {redirect}', "sh",
                           sys.executable, "-m", "genauth_c", *args],
                          env=env, input=stdin, capture_output=True, text=True, timeout=60)


def strict_json(text):
    """json.loads refusing what is not JSON (Infinity, NaN), as jq does."""
    def refuse(name):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("args", [
    ["--access-key-secret", SK, "trigger", "wh1"],
    ["webhooks", "--access-key-secret", SK, "list"],
    ["trigger", "--access-key-secret", SK, "wh1"],
    ["--access-key-secret=" + SK, "trigger", "wh1"],
    ["trigger", "wh1", "--token", SK],
])
def test_a_secret_on_the_command_line_is_refused_and_never_echoed(emulator, args):
    # Before: the secret, taken for the command's name, was quoted in an
    # "invalid choice" error.
    out = cli(*args, env=environment(emulator))
    assert out.returncode == 2
    assert SK not in out.stdout + out.stderr
    assert "secrets are not taken on the command line" in one_line(out.stderr)
    assert emulator.requests == []


def test_an_invalid_choice_is_not_echoed(emulator):
    out = cli("--brand", SK, "trigger", "wh1", env=environment(emulator))
    assert out.returncode == 2
    assert "invalid choice" in out.stderr and SK not in out.stderr


@pytest.mark.parametrize("raw, expected", [
    # A lone surrogate escaped by the server: escaped again, not a crash.
    (b'{"statusCode":200,"data":"a\\ud800b"}', '{"statusCode":200,"data":"a\\ud800b"}\n'),
    # Beyond a double: decoded as inf, written as a JSON number, not Infinity.
    (b'{"statusCode":200,"data":[1e400,-1e400,"Infinity"]}',
     '{"statusCode":200,"data":[1e999,-1e999,"Infinity"]}\n'),
])
def test_output_is_json_whatever_the_server_sends(emulator, raw, expected):
    emulator.raw_body = raw
    out = cli("trigger", "wh1", env=environment(emulator))
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == expected
    strict_json(out.stdout)


def test_deep_output_is_written(emulator):
    # Within the decoder's 1000 levels, beyond what json.dumps takes by default.
    emulator.raw_body = b'{"statusCode":200,"data":' + b"[" * 990 + b"]" * 990 + b"}"
    out = cli("trigger", "wh1", env=environment(emulator))
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == '{"statusCode":200,"data":' + "[" * 990 + "]" * 990 + "}\n"


@pytest.mark.parametrize("extra", [{"PYTHONIOENCODING": "ascii"},
                                   {"LC_ALL": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0"}])
def test_output_fits_the_encoding_of_stdout(emulator, extra):
    emulator.raw_body = '{"statusCode":200,"data":"é名😀"}'.encode()
    out = subprocess.run([sys.executable, "-m", "genauth_c", "trigger", "wh1"],
                         env=environment(emulator, **extra), capture_output=True, timeout=60)
    assert (out.returncode, out.stderr) == (0, b"")
    assert strict_json(out.stdout.decode("ascii"))["data"] == "é名😀"


def test_stdout_closed(emulator):
    out = cli_with_fds("trigger", "wh1", env=environment(emulator), redirect=">&-")
    assert out.returncode == 5
    assert one_line(out.stderr) == "genauth-c: cannot write the answer: stdout is closed\n"


def test_stdout_that_fails_exits_5(emulator):
    # A write that fails (a full disk: /dev/full) is exit status 5, as a
    # closed stdout is, with the reason on stderr.
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "genauth_c", "trigger", "wh1"],
                             env=environment(emulator), stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    assert out.returncode == 5
    assert one_line(out.stderr) == ("genauth-c: cannot write the answer to stdout: "
                                    "No space left on device\n")


def test_stdout_reader_gone_ends_quietly(emulator):
    # A pipe whose reader has left before the answer is written (| head).
    emulator.raw_body = b'{"statusCode":200,"data":"' + b"x" * 100000 + b'"}'
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        out = subprocess.run([sys.executable, "-m", "genauth_c", "trigger", "wh1"],
                             env=environment(emulator), stdout=write_end,
                             stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert (out.returncode, out.stderr) == (141, "")


def test_ctrl_c_while_the_call_waits_exits_130():
    """Ctrl-C while the call waits for its answer: exit status 130, as a
    shell reports SIGINT, one line on stderr and nothing on stdout."""
    fake = FakeGenAuth()
    held = Held(fake)
    with RawServer(held) as server:
        fake.server = server
        env = environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK,
                          GENAUTH_HOST=server.url)
        proc = subprocess.Popen([sys.executable, "-m", "genauth_c", "trigger", "wh1",
                                 "--timeout", "60"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert held.wait_arrival()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            held.release()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert (proc.returncode, out, err) == (130, "", "genauth-c: interrupted\n")


def test_stderr_closed_keeps_the_exit_status(emulator):
    out = cli_with_fds("trigger", "wh1", "--body", "{x", env=environment(emulator), redirect="2>&-")
    assert out.returncode == 2


def test_stdin_closed(emulator):
    out = cli_with_fds("trigger", "wh1", "--body", "-", env=environment(emulator), redirect="<&-")
    assert out.returncode == 2
    assert one_line(out.stderr) == "genauth-c: error: --body: cannot read stdin: it is closed\n"
    # No terminal (setsid), no stdin: no secret, rather than a traceback.
    out = subprocess.run(["setsid", "sh", "-c", 'exec "$@" <&-', "sh", sys.executable, "-m",
                          "genauth_c", "trigger", "wh1", "--access-key-id", AK, "--host",
                          emulator.url], env=environment(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2
    assert one_line(out.stderr) == "genauth-c: error: no access key secret given\n"


@pytest.mark.parametrize("content", [SK.encode() + b"\r\n", b"\xef\xbb\xbf" + SK.encode() + b"\n"],
                         ids=["crlf", "bom"])
def test_secret_file_line_ends_and_byte_order_mark(emulator, tmp_path, content):
    path = tmp_path / "secret"
    path.write_bytes(content)
    out = cli("trigger", "wh1", "--access-key-id", AK, "--access-key-secret-file", str(path),
              "--host", emulator.url, env=environment())
    assert out.returncode == 0, out.stderr
    assert emulator.token_fetches == 1


@pytest.mark.parametrize("content, message", [
    (b"SEC\xffRET\n", "is not UTF-8 text (byte 3)"),  # the byte itself is not shown
    (SK.encode() + b"\nsecond line\n", "holds more than one line"),
    (b" \n", "is empty"),
    # Sent, it was refused by the server as a wrong key (exit 4), where the
    # same value in GENAUTH_ACCESS_KEY_SECRET is refused before anything is sent.
    (SK.encode() + b" \r\n", "begins or ends with a space"),
    (b" " + SK.encode() + b"\n", "begins or ends with a space"),
])
def test_secret_file_refused(emulator, tmp_path, content, message):
    path = tmp_path / "secret"
    path.write_bytes(content)
    out = cli("trigger", "wh1", "--access-key-id", AK, "--access-key-secret-file", str(path),
              "--host", emulator.url, env=environment())
    assert out.returncode == 2
    assert one_line(out.stderr) == f"genauth-c: error: --access-key-secret-file: {path} {message}\n"
    assert "0xff" not in out.stderr and SK not in out.stderr
    assert emulator.requests == []


@pytest.mark.parametrize("source", ["file", "environment"])
def test_a_secret_with_a_control_character_is_a_usage_error(emulator, tmp_path, source):
    # One line, so the file is read; the tab inside is the client's to refuse.
    secret = SK + "\t"
    if source == "file":
        path = tmp_path / "secret"
        path.write_bytes(secret.encode() + b"\n")
        out = cli("trigger", "wh1", "--access-key-id", AK, "--access-key-secret-file", str(path),
                  "--host", emulator.url, env=environment())
    else:
        out = cli("trigger", "wh1", "--host", emulator.url,
                  env=environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK + "\tx"))
    assert out.returncode == 2
    named = "" if source == "file" else " (GENAUTH_ACCESS_KEY_SECRET, set in the environment)"
    assert one_line(out.stderr) == (f"genauth-c: error: access_key_secret{named}: must not "
                                    "contain CR, LF or other control characters\n")
    assert SK not in out.stderr
    assert emulator.requests == []


@pytest.mark.parametrize("args, named", [
    ([b"wh\xff"], "webhook_id"),
    (["wh1", "--body", b'{"a": "\xff"}'], "request_body['a']"),
    (["wh1", "--access-key-id", b"AK\xff"], "access_key_id"),
], ids=["webhook-id", "body", "key-id"])
def test_arguments_that_are_not_utf8_are_a_usage_error(emulator, args, named):
    # Python reads such bytes on argv as lone surrogates, which are never sent.
    out = cli("trigger", *args, env=environment(emulator))
    assert out.returncode == 2
    assert one_line(out.stderr).startswith(f"genauth-c: error: {named}: ")
    assert "lone surrogate" in out.stderr
    assert emulator.requests == []


def test_secret_file_endless(emulator):
    out = cli("trigger", "wh1", "--access-key-id", AK, "--access-key-secret-file", "/dev/zero",
              "--host", emulator.url, env=environment())
    assert out.returncode == 2
    assert "/dev/zero is larger than 65536 bytes" in one_line(out.stderr)


@pytest.mark.parametrize("content, stdin, message", [
    (b'{"a": "\xff"}', None, "is not UTF-8 text (byte 7)"),
    (b"\xef\xbb\xbf{}", None, None),
    (b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}", None, "nested too deeply"),
    (None, "", "--body: stdin is empty"),
], ids=["not-utf8", "bom", "deep", "empty-stdin"])
def test_body_from_hostile_files(emulator, tmp_path, content, stdin, message):
    spec = "-"
    if content is not None:
        path = tmp_path / "body.json"
        path.write_bytes(content)
        spec = f"@{path}"
    out = cli("trigger", "wh1", "--body", spec, env=environment(emulator), stdin=stdin or "")
    if message is None:
        assert out.returncode == 0, out.stderr
        return
    assert out.returncode == 2
    assert message in one_line(out.stderr)


def _address_space_limit():
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _memory_bound(env):
    """subprocess.run's env and preexec_fn under which a reader without a
    bound, which would take all the machine's memory, fails with MemoryError
    instead, far above what the CLI may hold. AddressSanitizer (`make
    sanitize` preloads it) reserves terabytes for its shadow at start, which
    an address-space limit refuses: there its allocator returns NULL past an
    RSS of as much."""
    if "asan" not in os.environ.get("LD_PRELOAD", ""):
        return {"env": env, "preexec_fn": _address_space_limit}
    asan = env.get("ASAN_OPTIONS", "") + ":soft_rss_limit_mb=2048:allocator_may_return_null=1"
    return {"env": {**env, "ASAN_OPTIONS": asan.lstrip(":")}}


@pytest.mark.parametrize("args", [
    ["trigger", "wh1", "--body", "@/dev/zero"],
    ["trigger", "wh1", "--headers", "-"],
    ["webhooks", "create", "--name", "n", "--url", "http://x", "--events", "e",
     "--retry-config", "@/dev/zero"],
], ids=["body-file", "headers-stdin", "retry-config-file"])
def test_an_endless_json_source_is_refused(emulator, args):
    with open("/dev/zero", "rb") as zero:
        out = subprocess.run([sys.executable, "-m", "genauth_c", *args],
                             stdin=zero, capture_output=True, text=True, timeout=120,
                             **_memory_bound(environment(emulator)))
    assert out.returncode == 2, out.stderr[-500:]
    assert re.search(r"is larger than 16777216 bytes$", one_line(out.stderr)), out.stderr
    assert emulator.requests == []


def test_a_variable_with_a_line_end_is_named(emulator):
    # With --access-key-id too: the secret still comes from the variable, checked.
    for args in (["trigger", "wh1"], ["trigger", "wh1", "--access-key-id", AK]):
        out = cli(*args, env=environment(emulator, GENAUTH_ACCESS_KEY_SECRET=SK + "\n"))
        assert out.returncode == 2
        assert one_line(out.stderr) == ("genauth-c: error: GENAUTH_ACCESS_KEY_SECRET: begins or "
                                        "ends with a space or line end (set in the environment)\n")
    assert emulator.requests == []


@pytest.mark.parametrize("args", [["--timeout", "1", "emulator"],
                                  ["--host", "http://127.0.0.1:9", "emulator", "--port", "0"]])
def test_emulator_after_connection_options_is_a_usage_error(args):
    out = cli(*args, env=environment(GENAUTH_ACCESS_KEY_ID=AK, GENAUTH_ACCESS_KEY_SECRET=SK))
    assert out.returncode == 2
    assert out.stderr.splitlines()[-1] == (
        "genauth-c: error: emulator comes first, followed by its own options: "
        "genauth-c emulator [--port PORT ...]")


def test_version_prints_the_package_and_libcurl():
    """--version was refused ('the following arguments are required:
    COMMAND', exit 2): a bug report could not say which build it came from."""
    import genauth_c
    out = cli("--version", env=environment())
    assert (out.returncode, out.stderr) == (0, "")
    assert out.stdout == (f"genauth-c {genauth_c.__version__} "
                          f"(libcurl {genauth_c.curl_version})\n")


def test_version_that_cannot_be_written_exits_5():
    """--version wrote to stdout as no answer is written: closed (>&-), it
    ended in an AttributeError traceback, failing (/dev/full) in an OSError
    one, both exit 1. As for an answer: exit 5, the reason on one line."""
    out = cli_with_fds("--version", env=environment(), redirect=">&-")
    assert out.returncode == 5
    assert one_line(out.stderr) == "genauth-c: cannot write the answer: stdout is closed\n"
    with open("/dev/full", "w") as full:
        out = subprocess.run([sys.executable, "-m", "genauth_c", "--version"],
                             env=environment(), stdout=full, stderr=subprocess.PIPE,
                             text=True, timeout=60)
    assert out.returncode == 5
    assert one_line(out.stderr) == ("genauth-c: cannot write the answer to stdout: "
                                    "No space left on device\n")
