"""The genauth_c logger: a DEBUG line per request and per token fetch, a
WARNING for unverified TLS, nothing secret, silent by default."""
import asyncio
import logging
import re
import signal
import subprocess
import sys

import pytest

import genauth_c
from genauth_c import AsyncManagementClient, ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver

AK, SK = "AKID-logging-1234", "SECRET-logging-never-shown"
BODY_MARK = "body-marker-never-logged"
REQUEST_LINE = re.compile(
    r"^POST /api/v3/trigger-webhook http=(\d+) statusCode=(\S+) apiCode=(\S+) "
    r"requestId=(\S+) duration_ms=(\d+\.\d) retries=(\d+)$")


@pytest.fixture
def emulator():
    with WebhookReceiver() as rx, Emulator(AK, SK) as emu:
        emu.add_webhook("wh1", rx.url + "/hook")
        yield emu


@pytest.fixture
def debug_log(caplog):
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    return caplog


def lines(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "genauth_c"]


def test_one_debug_line_per_request_and_per_token_fetch(emulator, debug_log):
    with ManagementClient(AK, SK, host=emulator.url) as client:
        client.trigger_webhook("wh1", request_body={"x": BODY_MARK})
        client.trigger_webhook("missing")
    got = lines(debug_log)
    assert len(got) == 3, got
    assert re.match(r"^token fetch http=200 duration_ms=\d+\.\d$", got[0]), got
    ok, missing = REQUEST_LINE.match(got[1]), REQUEST_LINE.match(got[2])
    assert ok and missing, got
    assert ok.groups()[:3] == ("200", "200", "-")
    http, status_code, api_code, request_id = missing.groups()[:4]
    assert (http, status_code) == ("200", "404")
    assert api_code != "-" and request_id != "-"
    assert all(r.levelno == logging.DEBUG for r in debug_log.records)


def test_a_retry_after_a_refused_token_is_counted(emulator, debug_log):
    with ManagementClient(AK, SK, host=emulator.url) as client:
        client.trigger_webhook("wh1")
        emulator.fail_next_calls_with_401 = 1
        assert client.trigger_webhook("wh1")["statusCode"] == 200
    got = lines(debug_log)
    assert REQUEST_LINE.match(got[-1]).group(6) == "1", got
    assert sum(line.startswith("token fetch") for line in got) == 2


def test_transport_retries_are_counted(emulator, debug_log):
    with ManagementClient(AK, SK, host=emulator.url) as client:
        client.trigger_webhook("wh1")
        emulator.throttle_next_calls = 1  # a 429: sent again (max_retries=2)
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        emulator.throttle_next_calls = 1
        assert client.trigger_webhooks([{"webhook_id": "wh1"}])[0]["statusCode"] == 200
    got = [REQUEST_LINE.match(line) for line in lines(debug_log) if line.startswith("POST")]
    assert [m.group(6) for m in got] == ["0", "1", "1"], lines(debug_log)


def test_batches_log_every_call(emulator, debug_log):
    with ManagementClient(AK, SK, host=emulator.url) as client:
        client.trigger_webhooks([{"webhook_id": "wh1"}] * 3 + [{"webhook_id": "no"}])
    requests = [line for line in lines(debug_log) if line.startswith("POST")]
    assert len(requests) == 4
    assert sorted(REQUEST_LINE.match(line).group(2) for line in requests) == [
        "200", "200", "200", "404"]


def test_failures_are_logged(debug_log):
    with Emulator(AK, SK) as emu:
        url = emu.url
    # Nothing listens on the port any more.
    with ManagementClient(AK, SK, host=url, timeout=5, max_retries=0) as client:
        with pytest.raises(Exception):
            client.trigger_webhook("wh1")
    got = lines(debug_log)
    assert got[0].startswith("token fetch failed=TRANSPORT http=0 duration_ms=")
    assert got[1].startswith(
        "POST /api/v3/trigger-webhook failed=TRANSPORT http=0 duration_ms=")


def test_a_server_cannot_break_a_log_line_in_two(debug_log):
    """What the server chose (a token refusal's message, a requestId) is
    written into a DEBUG line with its control characters replaced: a line
    end in it would start a line of the server's making, say one reporting
    a token fetch that never happened."""
    from rawserver import FakeGenAuth, RawServer, Response

    forged = "\r\nDEBUG:genauth_c:token fetch http=200 duration_ms=1.0\n"
    fake = FakeGenAuth()
    with RawServer(fake) as server:
        fake.token_answer = Response.json(
            {"statusCode": 401, "message": "bad key" + forged, "apiCode": 1})
        with ManagementClient(AK, SK, host=server.url, timeout=5) as client:
            with pytest.raises(genauth_c.AuthError):
                client.trigger_webhook("wh1")
            results = client.trigger_webhooks([{"webhook_id": "wh1"}])
            assert isinstance(results[0], genauth_c.AuthError)
            fake.token_answer = None
            fake.envelope = {"statusCode": 200, "requestId": "r" + forged}
            client.trigger_webhook("wh1")

        async def refused():
            fake.token_answer = Response.json(
                {"statusCode": 401, "message": "bad key" + forged})
            async with AsyncManagementClient(AK, SK, host=server.url,
                                             timeout=5) as aclient:
                with pytest.raises(genauth_c.AuthError):
                    await aclient.trigger_webhook("wh1")

        asyncio.run(refused())
    got = lines(debug_log)
    assert len(got) == 8, got
    for line in got:
        assert not re.search(r"[\x00-\x1f\x7f]", line), line
    assert sum("bad key" in line for line in got) == 6, got
    assert got[5].startswith("POST /api/v3/trigger-webhook http=200 "
                             "statusCode=200 apiCode=- requestId=r??DEBUG"), got


def test_a_server_cannot_break_a_log_line_with_a_unicode_line_end(debug_log):
    """NEL (U+0085, a C1 control), U+2028 and U+2029 end a line too, for
    Unicode and for str.splitlines() (a log reader in Python): only ASCII's
    control characters were replaced, so these came into the line as the
    server sent them."""
    from rawserver import FakeGenAuth, RawServer, Response

    forged = "DEBUG:genauth_c:token fetch http=200 duration_ms=1.0"
    fake = FakeGenAuth()
    with RawServer(fake) as server:
        fake.token_answer = Response.json(
            {"statusCode": 401, "apiCode": 1,
             "message": "bad key\u2028" + forged + "\x85" + forged + "\x9b2J"})
        with ManagementClient(AK, SK, host=server.url, timeout=5) as client:
            with pytest.raises(genauth_c.AuthError):
                client.trigger_webhook("wh1")
            fake.token_answer = None
            fake.envelope = {"statusCode": 200, "requestId": "r\u2029" + forged}
            client.trigger_webhook("wh1")
    got = lines(debug_log)
    assert len(got) == 4, got
    for line in got:
        assert line.splitlines() == [line], line
        assert not re.search("[\x80-\x9f]", line), line
    assert "requestId=r???DEBUG" in got[3], got


def test_a_refused_key_pair_is_logged_without_the_answer(emulator, debug_log):
    with ManagementClient(AK, "wrong-" + SK, host=emulator.url) as client:
        with pytest.raises(Exception):
            client.trigger_webhook("wh1")
    got = lines(debug_log)
    assert got[0].startswith("token fetch failed=AUTH http=")
    assert all(SK not in line for line in got)


@pytest.mark.parametrize("auth", ["token", "signature"])
def test_nothing_secret_is_logged(emulator, debug_log, auth):
    with ManagementClient(AK, SK, host=emulator.url, auth=auth) as client:
        client.trigger_webhook("wh1", request_headers={"h": BODY_MARK},
                               request_body={"x": BODY_MARK})
        client.trigger_webhooks([{"webhook_id": "wh1", "request_body": {"x": BODY_MARK}}])
    calls = [r for r in emulator.requests if r.path == "/api/v3/trigger-webhook"]
    authorization = calls[0].header("authorization")
    credential = authorization.split(" ", 1)[1]  # the token, or AK:signature
    secrets = [SK, credential, credential.split(":")[-1], BODY_MARK]
    text = "\n".join(lines(debug_log))
    assert text.count("POST /api/v3/trigger-webhook") == 2
    for secret in secrets:
        assert secret not in text


def test_unverified_tls_warns_once_per_client(caplog):
    caplog.set_level(logging.WARNING, logger="genauth_c")
    a = ManagementClient(AK, SK, host="https://127.0.0.1:9", use_unverified_ssl=True)
    b = ManagementClient(AK, SK, host="https://127.0.0.1:9")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not verified" in warnings[0].getMessage()
    assert "https://127.0.0.1:9" in warnings[0].getMessage()
    a.close()
    b.close()


def test_silent_unless_configured():
    script = ("from genauth_c import ManagementClient\n"
              "ManagementClient('AKID-x', 'SK-x', host='https://127.0.0.1:9',"
              " use_unverified_ssl=True).close()\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def test_debug_off_logs_nothing(emulator, caplog):
    caplog.set_level(logging.INFO, logger="genauth_c")
    with ManagementClient(AK, SK, host=emulator.url) as client:
        client.trigger_webhook("wh1")
    assert lines(caplog) == []


def test_a_failing_handler_does_not_fail_the_call(emulator, monkeypatch):
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    class Broken(logging.Handler):
        def emit(self, record):
            raise RuntimeError("handler broke")

        def handleError(self, record):
            raise RuntimeError("handler broke")

    logger = logging.getLogger("genauth_c")
    handler = Broken()
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with ManagementClient(AK, SK, host=emulator.url) as client:
            assert client.trigger_webhook("wh1")["statusCode"] == 200
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    # Reported as the logging module reports its own failures, not raised.
    assert [str(u.exc_value) for u in reported] == ["handler broke"] * 2


class CallsOnTokenFetch(logging.Handler):
    """On the token fetch's line, makes a call of its own with `call` once
    (a handler that reports through the client it logs for)."""

    def __init__(self, call):
        super().__init__()
        self.call = call
        self.inner = []

    def emit(self, record):
        if record.getMessage().startswith("token fetch") and not self.inner:
            try:
                self.inner.append(self.call())
            except Exception as e:  # the test looks at it
                self.inner.append(e)


@pytest.mark.parametrize("batch", [False, True])
def test_a_handler_may_call_the_client_on_the_token_fetch_line(emulator, batch):
    # The line comes once the token is in the client's cache: the handler's
    # own call uses it, rather than waiting for the fetch it is told of
    # until both calls time out.
    logger = logging.getLogger("genauth_c")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    client = ManagementClient(AK, SK, host=emulator.url, timeout=3)
    handler = CallsOnTokenFetch(
        lambda: client.trigger_webhook("wh1")["statusCode"])
    logger.addHandler(handler)
    try:
        if batch:
            outer = client.trigger_webhooks([{"webhook_id": "wh1"}])[0]
        else:
            outer = client.trigger_webhook("wh1")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        client.close()
    assert (outer["statusCode"], handler.inner) == (200, [200])


def test_every_method_logs_its_own_method_and_path(emulator, debug_log):
    with ManagementClient(AK, SK, host=emulator.url) as client:
        client.list_webhooks(page=1, limit=10)
        client.get_webhook("wh1")
        client.delete_webhook(["nope"])
    requests = [line.split(" http=")[0] for line in lines(debug_log)
                if not line.startswith("token")]
    assert requests == ["GET /api/v3/list-webhooks", "GET /api/v3/get-webhook",
                        "POST /api/v3/delete-webhook"]


def test_async_calls_log_as_the_sync_client(emulator, debug_log):
    async def main():
        async with AsyncManagementClient(AK, SK, host=emulator.url) as client:
            await client.trigger_webhook("wh1")
            emulator.throttle_next_calls = 1  # a 429: sent again
            emulator.throttle_retry_after = 0
            await client.trigger_webhook("wh1")
            emulator.fail_next_calls_with_401 = 1  # a new token, once
            await client.trigger_webhook("wh1")
            await client.trigger_webhooks([{"webhook_id": "wh1"}] * 2)

    asyncio.run(main())
    got = lines(debug_log)
    fetches = [line for line in got if line.startswith("token fetch")]
    assert len(fetches) == 2, got
    assert all(re.match(r"^token fetch http=200 duration_ms=\d+\.\d$", line)
               for line in fetches), got
    requests = [REQUEST_LINE.match(line) for line in got
                if line.startswith("POST")]
    assert all(requests) and len(requests) == 5, got
    assert [m.group(6) for m in requests] == ["0", "1", "1", "0", "0"], got
    assert all(m.group(1) == "200" for m in requests), got


def test_a_cancelled_async_call_is_logged(debug_log):
    """An async call cancelled once its request was sent (task.cancel(),
    asyncio.wait_for or timeout() running out, a batch that stops) wrote
    no line at all, where a sync call that Ctrl-C stops writes its
    failed=INTERRUPTED line: the request the server got had none. Each
    writes that line now, a batch's calls each their own."""
    import threading

    from rawserver import FakeGenAuth, Held, RawServer

    fake = FakeGenAuth()
    held = Held(fake)
    with RawServer(held) as server:
        async def main():
            async with AsyncManagementClient(AK, SK, host=server.url, timeout=60) as client:
                loop = asyncio.get_running_loop()
                for call, sent in ((client.trigger_webhook("wh1"), 1),
                                   (client.trigger_webhooks([{"webhook_id": "wh1"}] * 2), 2)):
                    task = asyncio.ensure_future(call)
                    for _ in range(sent):  # the server has the request
                        assert await loop.run_in_executor(None, held.wait_arrival)
                    task.cancel()
                    with pytest.raises(asyncio.CancelledError):
                        await task

        try:
            asyncio.run(main())
        finally:
            held.release()
    got = [line for line in lines(debug_log) if not line.startswith("token fetch")]
    assert len(got) == 3, got
    for line in got:
        assert re.match(r"^POST /api/v3/trigger-webhook failed=INTERRUPTED http=0 "
                        r"duration_ms=\d+\.\d retries=0: the call was cancelled$", line), got


def test_async_failures_are_logged(debug_log):
    with Emulator(AK, SK) as emu:
        url = emu.url
    # Nothing listens on the port any more.

    async def main():
        async with AsyncManagementClient(AK, SK, host=url, timeout=5,
                                         max_retries=0) as client:
            with pytest.raises(genauth_c.TransportError):
                await client.trigger_webhook("wh1")

    asyncio.run(main())
    got = lines(debug_log)
    assert got[0].startswith("token fetch failed=TRANSPORT http=0 duration_ms=")
    assert got[1].startswith(
        "POST /api/v3/trigger-webhook failed=TRANSPORT http=0 duration_ms=")
    assert got[1].split(" retries=")[1].startswith("0:"), got


def test_import_does_not_import_logging_and_logging_still_works_after():
    # Importing logging costs about a third of genauth_c's import time; the
    # logger is taken once the application imports logging, even after the
    # client was made.
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import sys
        import genauth_c
        from genauth_c.emulator import Emulator
        assert "logging" not in sys.modules, "import genauth_c imported logging"
        with Emulator("AK", "SK") as emu:
            emu.add_webhook("wh1", "http://127.0.0.1:9/")
            client = genauth_c.ManagementClient("AK", "SK", host=emu.url)
            client.get_webhook("wh1")
            assert "logging" not in sys.modules
            import logging
            logging.basicConfig(level=logging.DEBUG, stream=sys.stdout,
                                format="%(name)s %(levelname)s %(message)s")
            client.get_webhook("wh1")
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "genauth_c DEBUG GET /api/v3/get-webhook http=200" in out.stdout


def test_a_get_logger_that_calls_the_client_binds_the_logger_once():
    # logging.getLogger is the application's to replace; one that makes a
    # call of its own binds the logger from inside the first binding, which
    # then keeps what is bound: one NullHandler, nothing leaked.
    import subprocess
    import textwrap
    code = textwrap.dedent("""
        import genauth_c  # first: the logger is bound at the first call
        import logging
        from genauth_c.emulator import Emulator
        with Emulator("AK", "SK") as emu:
            emu.add_webhook("wh1", "http://127.0.0.1:9/")
            client = genauth_c.ManagementClient("AK", "SK", host=emu.url)
            plain, entered, inside = logging.getLogger, [], []
            def get_logger(name=None):
                if name == "genauth_c" and not entered:
                    entered.append(name)
                    inside.append(client.get_webhook("wh1")["statusCode"])
                return plain(name)
            logging.getLogger = get_logger
            assert client.get_webhook("wh1")["statusCode"] == 200
            logging.getLogger = plain
            assert inside == [200], inside
            handlers = plain("genauth_c").handlers
            assert len(handlers) == 1, handlers
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr


def test_token_fetches_log_from_worker_threads(emulator, debug_log):
    # Each thread's token fetch is logged from inside its core call, with the
    # GIL taken back through that thread's own saved state.
    import threading
    clients = [ManagementClient(AK, SK, host=emulator.url) for _ in range(4)]
    errors = []

    def work(c):
        try:
            assert c.get_webhook("wh1")["statusCode"] == 200
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and not errors
    fetches = [m for m in lines(debug_log) if m.startswith("token fetch http=200")]
    assert len(fetches) == 4
    for c in clients:
        c.close()


class InterruptsOnLine(logging.Handler):
    """SIGINT lands while this handler runs, on a line that starts with
    `prefix`: Python raises KeyboardInterrupt in the handler's code."""

    def __init__(self, prefix):
        super().__init__()
        self.prefix = prefix

    def emit(self, record):
        if record.getMessage().startswith(self.prefix):
            signal.raise_signal(signal.SIGINT)


def interrupting_handler_on(prefix):
    logger = logging.getLogger("genauth_c")
    handler = InterruptsOnLine(prefix)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture
def interrupting_handler():
    yield from interrupting_handler_on("POST")  # a request's line


@pytest.fixture
def interrupting_token_handler():
    yield from interrupting_handler_on("token fetch")


def test_ctrl_c_in_a_handler_comes_out_of_the_call(emulator,
                                                   interrupting_handler):
    """A KeyboardInterrupt is no handler's failure to report (and lose): it
    comes out of the call, as out of any Python code Ctrl-C lands in."""
    with ManagementClient(AK, SK, host=emulator.url) as client:
        with pytest.raises(KeyboardInterrupt):
            client.trigger_webhook("wh1")


def test_ctrl_c_in_a_handler_of_the_token_fetch_is_not_lost(
        emulator, interrupting_token_handler):
    """The token fetch's line is written inside the core's call, which it
    cannot end: Ctrl-C that lands there is delivered again, so it comes out
    of the call or, once the call has returned, of the next line of Python
    (the loop's back edge here), never reported and dropped."""
    with ManagementClient(AK, SK, host=emulator.url) as client:
        with pytest.raises(KeyboardInterrupt):
            client.trigger_webhook("wh1")
            for _ in range(2):
                pass
        # The client is not left in a broken state: the next call works.
        assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.fixture
def interrupting_warning_handler():
    yield from interrupting_handler_on("TLS certificates are not verified")


def test_ctrl_c_in_a_handler_of_the_unverified_tls_warning_comes_out(
        interrupting_warning_handler):
    """As on a request's line: Ctrl-C that lands in a handler of the
    warning a client made with use_unverified_ssl=True writes comes out of
    the constructor, which makes no client. It was reported as the
    handler's failure and dropped, and the client made."""
    with pytest.raises(KeyboardInterrupt):
        ManagementClient(AK, SK, host="https://127.0.0.1:9",
                         use_unverified_ssl=True)
    client = ManagementClient.__new__(ManagementClient)
    with pytest.raises(KeyboardInterrupt):
        client.__init__(AK, SK, host="https://127.0.0.1:9",
                        use_unverified_ssl=True)
    assert client.closed  # not initialised: __init__ may be called again
    client.__init__(AK, SK, host="https://127.0.0.1:9")
    assert not client.closed
    client.close()


def test_ctrl_c_in_a_handler_comes_out_of_an_async_batch(emulator,
                                                          interrupting_handler):
    """The same for an AsyncManagementClient's batch, on a loop that leaves
    SIGINT to Python's default handler: the KeyboardInterrupt ends the batch
    and leaves the loop, as one raised in any of its callbacks does."""
    loop = asyncio.new_event_loop()
    client = AsyncManagementClient(AK, SK, host=emulator.url)

    async def batch():
        return await client.trigger_webhooks([{"webhook_id": "wh1"}] * 3)

    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(batch())
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


def test_ctrl_c_in_a_handler_of_an_async_token_fetch_is_not_lost(
        emulator, interrupting_token_handler):
    """An AsyncManagementClient writes the token fetch's line from inside
    the loop's callback, in the core, which it cannot end either: Ctrl-C
    that lands there is delivered again, and leaves the loop (as one
    landing in any of its callbacks does) instead of being dropped."""
    loop = asyncio.new_event_loop()
    client = AsyncManagementClient(AK, SK, host=emulator.url)

    async def call():
        return await client.trigger_webhook("wh1")

    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(call())
        # The engine is not left in a broken state: the next call works.
        assert loop.run_until_complete(call())["statusCode"] == 200
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()


class RaisesKeyboardInterrupt(logging.Handler):
    """Raises KeyboardInterrupt itself on the token fetch's line."""

    def emit(self, record):
        if record.getMessage().startswith("token fetch"):
            raise KeyboardInterrupt


def test_keyboardinterrupt_on_the_token_fetch_with_sigint_ignored_is_reported(
        emulator, monkeypatch):
    """With SIGINT ignored no Ctrl-C can be delivered again, so a
    KeyboardInterrupt a handler raises on the token fetch's line is
    reported, as a handler's failure is, not dropped without a trace."""
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", reported.append)
    logger = logging.getLogger("genauth_c")
    handler = RaisesKeyboardInterrupt()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    old_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with ManagementClient(AK, SK, host=emulator.url) as client:
            assert client.trigger_webhook("wh1")["statusCode"] == 200
    finally:
        signal.signal(signal.SIGINT, old_sigint)
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert [type(u.exc_value) for u in reported] == [KeyboardInterrupt]
