"""The interpreter's end, with the product in use: each script runs in a
Python of its own (sys.executable) against a server in this process, and
must end as a script that never imported genauth_c would: its own exit
status, no crash, no hang, nothing on stderr it did not write itself.

The servers hold answers (the script is told on its standard input once a
request arrived), so a call is in flight at the interpreter's end however
slow the machine."""
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import types

import pytest

from conftest import AK, SK, server_tls
from rawserver import FakeGenAuth, RawServer

# A script gets this long to end; it takes well under a second unless it
# hangs, which is what the bound catches.
HANG = 60


def run_script(code, *args, when=None, then=None, env=None):
    """Runs `code` with args in sys.argv[1:]; when `when` (an Event) is
    given, writes a line to the script's standard input once it is set, or
    calls then(proc). Returns the CompletedProcess; fails on a hang or a
    crash."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=env)
    try:
        if when is not None:
            if not when.wait(HANG):
                proc.kill()
                pytest.fail("the script's request never arrived: "
                            + proc.communicate()[1])
            if then is not None:
                then(proc)
            else:
                proc.stdin.write("go\n")
                proc.stdin.flush()
        out, err = proc.communicate(timeout=HANG)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"hung at exit; stdout {out!r}, stderr {err!r}")
    assert proc.returncode >= 0, f"killed by signal {-proc.returncode}: {err}"
    assert "Fatal Python error" not in err, err
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def server():
    handler = FakeGenAuth()
    with RawServer(handler) as srv:
        yield srv


def test_a_call_in_a_finalizer_at_exit_writes_nothing_of_logging(server):
    # A script that imported logging (and never configured it), whose first
    # call is made by a finalizer as the interpreter ends: by then
    # sys.modules holds None for logging, as it does for a module an
    # application blocks. That was taken for the logging module, and every
    # such call wrote "AttributeError: 'NoneType' object has no attribute
    # 'getLogger'" twice (the token fetch's line and the call's) to stderr.
    out = run_script("""
        import os, sys, types
        import genauth_c
        import logging  # after genauth_c, which then binds its logger later

        class Finalizer:
            def __del__(self, genauth_c=genauth_c, url=sys.argv[1],
                        write=os.write):
                with genauth_c.ManagementClient(%r, %r, host=url) as c:
                    envelope = c.trigger_webhook("wh1")
                    batch = c.trigger_webhooks([{"webhook_id": "wh1"}])
                write(1, b"%%d %%d" %% (envelope["statusCode"],
                                        batch[0]["statusCode"]))

        # Freed as the interpreter clears sys.modules, after logging's entry.
        sys.modules["finalized_at_exit"] = types.ModuleType("holder")
        sys.modules["finalized_at_exit"].f = Finalizer()
    """ % (AK, SK), server.url)
    assert (out.returncode, out.stdout, out.stderr) == (0, "200 200", "")


def test_logging_blocked_in_sys_modules_is_logging_not_imported(server):
    # sys.modules["logging"] = None is how an application makes `import
    # logging` fail: the calls go on, silent, as before logging is imported.
    out = run_script("""
        import sys
        sys.modules["logging"] = None
        import genauth_c
        with genauth_c.ManagementClient(%r, %r, host=sys.argv[1]) as c:
            print(c.trigger_webhook("wh1")["statusCode"])
    """ % (AK, SK), server.url)
    assert (out.returncode, out.stdout, out.stderr) == (0, "200\n", "")


@pytest.mark.parametrize("line", ["token fetch", "POST"])
@pytest.mark.parametrize("batch", [False, True], ids=["call", "batch"])
def test_sys_exit_in_a_log_handler_during_a_call_exits(server, line, batch):
    # sys.exit() in a handler of the genauth_c logger ends the script with
    # its status, as from a line any Python code logs. On the token
    # fetch's line, which the core writes in the middle of the call (it
    # cannot end the call there), the SystemExit was reported as the
    # handler's failure ("Exception ignored in: <Logger genauth_c>") and
    # dropped: the script went on, and exited 0.
    out = run_script("""
        import logging, sys
        import genauth_c

        class Exits(logging.Handler):
            def emit(self, record):
                if record.getMessage().startswith(sys.argv[2]):
                    sys.exit(3)

        logger = logging.getLogger("genauth_c")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(Exits())
        c = genauth_c.ManagementClient(%r, %r, host=sys.argv[1])
        if sys.argv[3] == "batch":
            c.trigger_webhooks([{"webhook_id": "wh1"}] * 3)
        else:
            c.trigger_webhook("wh1")
        for _ in range(2):  # the loop's back edge: Python's next check
            pass
        print("went on")
    """ % (AK, SK), server.url, line, "batch" if batch else "call")
    assert (out.returncode, out.stdout, out.stderr) == (3, "", "")


class Holding:
    """FakeGenAuth's answers, those to the requests `holds` picks held until
    `release` is set (or the server stops); `arrived` is set by the first."""

    def __init__(self, holds):
        self.fake = FakeGenAuth()
        self.holds = holds
        self.arrived = threading.Event()
        self.release = threading.Event()

    def __call__(self, req):
        resp = self.fake(req)
        if self.holds(req) and not self.release.is_set():
            self.arrived.set()
            self.release.wait(HANG)
        return resp


HELD = {
    "call": lambda req: "trigger-webhook" in req.path,
    "batch": lambda req: "trigger-webhook" in req.path,
    "token": lambda req: "get-management-token" in req.path,
}

# A daemon thread is in a call (or a batch, or the call's token fetch) on a
# client in a module global when the main thread returns; the server holds
# the answer, then gives it as the interpreter ends (Python 3.11 ends a
# daemon thread when it next takes the GIL). Meanwhile finalizers use that
# client, close it and make a client of their own.
IN_FLIGHT_AT_EXIT = """
    import os, socket, sys, threading, types
    import genauth_c
    url, kind, release_port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    tls = {"ca_bundle": sys.argv[4]} if len(sys.argv) > 4 else {}
    client = genauth_c.ManagementClient(%r, %r, host=url, timeout=%d, **tls)

    def work():
        if kind == "batch":
            client.trigger_webhooks([{"webhook_id": "wh1"}] * 3)
        else:
            client.trigger_webhook("wh1")

    for _ in range(2):
        threading.Thread(target=work, daemon=True).start()
    sys.stdin.readline()  # a request is held

    class AtTheEnd:
        # Runs as the interpreter clears sys.modules: the daemon threads
        # end when they next take the GIL.
        release = socket.create_connection(("127.0.0.1", release_port))

        def __del__(self, client=client, genauth_c=genauth_c, write=os.write):
            self.release.sendall(b"answer now")
            self.release.recv(1)  # the server answers
            self.release.close()
            results = [repr(client), client.closed]
            client.close()
            with genauth_c.ManagementClient(%r, %r, host=url,
                                            **tls) as another:
                results.append(
                    another.trigger_webhooks([{"webhook_id": "wh1"}])[0]
                    ["statusCode"])
            write(1, repr(results[1:]).encode())

    sys.modules["at_the_end"] = types.ModuleType("at_the_end")
    sys.modules["at_the_end"].hook = AtTheEnd()
""" % (AK, SK, HANG, AK, SK)


@pytest.fixture
def release_server():
    """A port that sets .release of the handler assigned to .handler on each
    connection's first bytes, and answers a byte once it is set."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    box = types.SimpleNamespace()
    box.port = listener.getsockname()[1]
    box.handler = None

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                if conn.recv(64):
                    box.handler.release.set()
                    conn.sendall(b"!")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield box
    listener.shutdown(socket.SHUT_RDWR)  # wakes accept(); close() does not
    listener.close()
    thread.join(timeout=10)


@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("kind", sorted(HELD))
def test_daemon_threads_in_calls_at_exit(release_server, certificate, kind,
                                         scheme):
    handler = Holding(HELD[kind])
    release_server.handler = handler
    tls = server_tls(certificate) if scheme == "https" else None
    ca = [certificate[0]] if tls else []
    with RawServer(handler, tls=tls) as srv:
        out = run_script(IN_FLIGHT_AT_EXIT, srv.url, kind, release_server.port,
                         *ca, when=handler.arrived)
    assert (out.returncode, out.stdout, out.stderr) == (0, "[False, 200]", "")


# An AsyncManagementClient with calls in flight (a call and a batch, the
# server holding them) as the script ends: asyncio.run() returns with them
# pending (it cancels them), or the loop is left as it is, unclosed, or runs
# in a daemon thread.
ASYNC_PENDING_AT_EXIT = """
    import asyncio, sys, threading
    import genauth_c
    url, how = sys.argv[1], sys.argv[2]
    ready = threading.Event()

    async def main():
        client = genauth_c.AsyncManagementClient(%r, %r, host=url, timeout=%d)
        tasks = [asyncio.ensure_future(client.trigger_webhook("wh1")),
                 asyncio.ensure_future(client.trigger_webhooks(
                     [{"webhook_id": "wh1"}] * 3))]
        await asyncio.sleep(0)
        ready.set()
        if how != "daemon thread":
            # Told once a request is held; the tasks are still pending.
            await asyncio.get_running_loop().run_in_executor(
                None, sys.stdin.readline)
        return client, tasks

    if how == "asyncio.run":
        kept = asyncio.run(main())
    elif how == "unclosed loop":
        kept = asyncio.new_event_loop().run_until_complete(main())
    else:  # a daemon thread's loop, running
        loop = asyncio.new_event_loop()
        threading.Thread(target=lambda: (loop.run_until_complete(main()),
                                         loop.run_forever()),
                         daemon=True).start()
        ready.wait()
        sys.stdin.readline()
    print("returned")
""" % (AK, SK, HANG)


@pytest.mark.parametrize("how", ["asyncio.run", "unclosed loop",
                                 "daemon thread"])
def test_async_calls_pending_at_exit(how):
    handler = Holding(HELD["call"])
    with RawServer(handler) as srv:
        out = run_script(ASYNC_PENDING_AT_EXIT, srv.url, how,
                         when=handler.arrived)
    assert (out.returncode, out.stdout) == (0, "returned\n")
    # Nothing failed: asyncio's words for the tasks left pending on a loop
    # never closed, and (in development mode) the ResourceWarnings for the
    # loop and the client never closed, are the script's doing.
    assert [line for line in out.stderr.splitlines()
            if "Exception ignored" in line or "Error" in line
            or line.startswith("Traceback")] == []


def test_reload_and_a_second_copy_of_the_extension(server):
    # importlib.reload(genauth_c), and the extension loaded a second time
    # under another name: each copy has its own state (types, exceptions,
    # logger), and clients of both work side by side and at exit, left
    # open in module globals.
    out = run_script("""
        import asyncio, importlib, importlib.util, logging, sys
        import genauth_c
        url = sys.argv[1]
        first = genauth_c.ManagementClient(%r, %r, host=url)
        first.trigger_webhook("wh1")
        again = importlib.reload(genauth_c)
        spec = importlib.util.spec_from_file_location(
            "another_copy._core", genauth_c._core.__file__)
        copy = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(copy)
        assert copy is not genauth_c._core
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout,
                            format="%%(message).4s")
        second = copy.ManagementClient(%r, %r, host=url)
        third = again.ManagementClient(%r, %r, host=url)
        results = [c.trigger_webhook("wh1")["statusCode"]
                   for c in (first, second, third)]
        results += [second.trigger_webhooks([{"webhook_id": "wh1"}] * 2)
                    [1]["statusCode"]]
        try:
            second.get_webhook("")
        except ValueError as e:
            results.append(str(e))
        async def main():
            async with again.AsyncManagementClient(%r, %r, host=url) as c:
                return (await c.trigger_webhook("wh1"))["statusCode"]
        results.append(asyncio.run(main()))
        del copy, spec
        print(results)
    """ % (AK, SK, AK, SK, AK, SK, AK, SK), server.url)
    assert out.returncode == 0 and out.stderr == ""
    # Every call logs once, through whichever copy made its client.
    assert out.stdout.splitlines()[-1] == (
        "[200, 200, 200, 200, \"webhook_id: expected a non-empty str, got ''\", "
        "200]")
    assert out.stdout.count("POST") == 6


@pytest.mark.skipif(not any(
    __import__("importlib").util.find_spec(name)
    for name in ("_interpreters", "_xxsubinterpreters")),
    reason="no subinterpreter module in this Python")
def test_subinterpreters_at_their_end_and_at_exit(server):
    # Subinterpreters import genauth_c (or refuse it with ImportError),
    # use it, leave clients open and a logging handler attached, and are
    # destroyed; one is still alive at exit.
    out = run_script("""
        import sys
        try:
            import _interpreters as interpreters
        except ImportError:
            import _xxsubinterpreters as interpreters
        import genauth_c
        code = '''
        try:
            import genauth_c
        except ImportError as e:
            print("refused:", e)
        else:
            import asyncio, logging, sys
            logging.basicConfig(level=logging.DEBUG, stream=sys.stdout,
                                format="log %%(message).4s")
            c = genauth_c.ManagementClient(%r, %r, host=%r)
            one = c.trigger_webhook("wh1")["statusCode"]
            many = c.trigger_webhooks([{"webhook_id": "wh1"}])[0]["statusCode"]
            async def main():
                a = genauth_c.AsyncManagementClient(%r, %r, host=%r)
                return a, (await a.trigger_webhook("wh1"))["statusCode"]
            kept, awaited = asyncio.run(main())  # left open, its loop closed
            print("sub", one, many, awaited)
        '''
        for _ in range(2):
            interp = interpreters.create()
            interpreters.run_string(interp, code)
            interpreters.destroy(interp)
        interpreters.run_string(interpreters.create(), code)
        with genauth_c.ManagementClient(%r, %r, host=%r) as c:
            print("main", c.trigger_webhook("wh1")["statusCode"])
    """ % ((AK, SK, server.url) * 3))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # Each interpreter has its own sys.stdout, flushed as it ends: the one
    # alive at exit may write after the main one (Python 3.13 does).
    assert lines.count("main 200") == 1, lines
    subs = [line for line in lines if line.startswith(("sub ", "refused"))]
    if subs[0].startswith("refused"):
        assert subs == [subs[0]] * 3
    else:
        assert subs == ["sub 200 200 200"] * 3
        assert lines.count("log POST") == 3 * 3
    assert "Exception ignored" not in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("kind", ["call", "batch", "token", "async"])
def test_sys_exit_in_a_signal_handler_during_a_call_exits(kind):
    # A signal handler that calls sys.exit() while a call waits on the
    # network (the server holds the answer, or the token): the script ends
    # with its status, at once.
    handler = Holding(HELD["token" if kind == "token" else "call"])
    with RawServer(handler) as srv:
        out = run_script("""
            import asyncio, signal, sys
            import genauth_c
            signal.signal(signal.SIGUSR1, lambda *args: sys.exit(5))
            url, kind = sys.argv[1], sys.argv[2]
            options = dict(host=url, timeout=%d)
            if kind == "async":
                async def main():
                    async with genauth_c.AsyncManagementClient(
                            %r, %r, **options) as c:
                        await c.trigger_webhooks([{"webhook_id": "wh1"}] * 2)
                asyncio.run(main())
            else:
                c = genauth_c.ManagementClient(%r, %r, **options)
                if kind == "batch":
                    c.trigger_webhooks([{"webhook_id": "wh1"}] * 2)
                else:
                    c.trigger_webhook("wh1")
            print("went on")
        """ % (HANG, AK, SK, AK, SK), srv.url, kind, when=handler.arrived,
            then=lambda proc: proc.send_signal(signal.SIGUSR1))
    assert (out.returncode, out.stdout, out.stderr) == (5, "", "")


def test_atexit_handlers_use_clients_with_a_handler_still_attached(server):
    # atexit handlers call a client made before (left open in a module
    # global), make clients of their own (sync and asyncio), while a
    # handler of the genauth_c logger is still attached; logging's own
    # atexit handler (shutdown) runs after them.
    out = run_script("""
        import asyncio, atexit, logging, sys
        import genauth_c
        url = sys.argv[1]
        logging.basicConfig(level=logging.DEBUG, stream=sys.stdout,
                            format="log %%(message).4s")
        kept = genauth_c.ManagementClient(%r, %r, host=url)
        kept.trigger_webhook("wh1")

        @atexit.register
        def at_exit():
            results = [kept.trigger_webhook("wh1")["statusCode"]]
            with genauth_c.ManagementClient(%r, %r, host=url) as c:
                results.append(
                    c.trigger_webhooks([{"webhook_id": "wh1"}])[0]
                    ["statusCode"])
            async def main():
                async with genauth_c.AsyncManagementClient(
                        %r, %r, host=url) as c:
                    return (await c.trigger_webhook("wh1"))["statusCode"]
            results.append(asyncio.run(main()))
            print(results)
    """ % (AK, SK, AK, SK, AK, SK), server.url)
    assert (out.returncode, out.stderr) == (0, "")
    lines = out.stdout.splitlines()
    assert lines[-1] == "[200, 200, 200]"
    assert lines.count("log POST") == 4
