"""Ctrl-C reaches a call waiting on the main thread; calls waiting in other
threads never take the GIL; the module works in subinterpreters, also with
a GIL of their own, and an extension that does not load says why."""
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from conftest import AK, SK
from rawserver import RawServer, Response

import genauth_c
from genauth_c import ManagementClient

ENVELOPE = {"statusCode": 200, "message": "ok", "data": {"response": {}}}


# The call ends with KeyboardInterrupt set; the logging after it must not run
# Python code with that exception pending (it did: an unraisable SystemError).
@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_raise_signal_from_another_thread_interrupts_the_main_thread(
        client_for):
    with RawServer(lambda req: Response.json(ENVELOPE, delay=30)) as server:
        client = client_for(server.url, auth="signature", timeout=60)
        timer = threading.Timer(0.3, signal.raise_signal, (signal.SIGINT,))
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                client.trigger_webhook("wh1")
            timer.cancel()
            with pytest.raises(KeyboardInterrupt):
                timer = threading.Timer(0.3, os.kill,
                                        (os.getpid(), signal.SIGINT))
                timer.start()
                client.trigger_webhooks([{"webhook_id": "a"},
                                         {"webhook_id": "b"}])
        finally:
            timer.cancel()
            timer.join(timeout=5)


def test_a_signal_handler_runs_during_the_call_and_may_let_it_continue(
        client_for):
    # A handler that does not raise: the call goes on and succeeds.
    seen = []
    previous = signal.signal(signal.SIGUSR1, lambda *a: seen.append(a[0]))
    try:
        with RawServer(lambda req: Response.json(ENVELOPE, delay=1.0)) as server:
            client = client_for(server.url, auth="signature", timeout=30)
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGUSR1))
            timer.start()
            assert client.trigger_webhook("wh1")["statusCode"] == 200
            timer.join(timeout=5)
        assert seen == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)


@pytest.mark.parametrize("batch", [False, True], ids=["call", "batch"])
def test_a_signal_handler_may_call_the_client_whose_token_fetch_it_interrupted(
        fake, client_for, batch):
    """A signal handler runs while the call it interrupted waits for the
    token endpoint, on that call's thread: a call of its own on the same
    client waited for that fetch, which cannot go on until the handler
    returns, so both calls ended with TimeoutError. It fetches a token of
    its own instead."""
    arrived, handled = threading.Event(), threading.Event()

    def handler(req):
        if "get-management-token" in req.path and not arrived.is_set():
            arrived.set()
            handled.wait(30)  # the interrupted fetch: answered afterwards
        return fake(req)

    fake.server.handler = handler
    client = client_for(fake.server.url, timeout=10)
    nested = []

    def on_usr1(*args):
        try:
            nested.append(client.get_webhook("wh2")["statusCode"])
        except Exception as exc:  # noqa: BLE001 - compared below
            nested.append(exc)
        finally:
            handled.set()

    def fire():
        if arrived.wait(30):
            os.kill(os.getpid(), signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, on_usr1)
    sender = threading.Thread(target=fire, daemon=True)
    try:
        sender.start()
        if batch:
            outcome = client.trigger_webhooks([{"webhook_id": "wh1"}])[0]
        else:
            outcome = client.trigger_webhook("wh1")
        sender.join(timeout=30)
    finally:
        signal.signal(signal.SIGUSR1, previous)
        handled.set()
    assert nested == [200]
    assert outcome["statusCode"] == 200


# In a process of its own: the hang this guards against would hold pytest.
ASYNC_CALL_IN_A_SIGNAL_HANDLER = textwrap.dedent("""
    import asyncio, os, signal, sys, threading
    import genauth_c
    url, ak, sk = sys.argv[1:4]
    seen = []

    def on_usr1(*args):
        async def call():
            async with genauth_c.AsyncManagementClient(ak, sk,
                                                       host=url) as aclient:
                return await aclient.trigger_webhook("wh1")
        seen.append(asyncio.run(call())["statusCode"])

    signal.signal(signal.SIGUSR1, on_usr1)
    with genauth_c.ManagementClient(ak, sk, host=url, timeout=30) as client:
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        print(client.trigger_webhook("slow")["statusCode"], seen, flush=True)
""")


def test_a_signal_handler_may_run_an_async_call_while_a_call_waits(fake):
    """A signal handler run while a call waits (its interrupt check) may run
    the event-loop engine, the GIL held: the engine's token fetch wrote its
    log event after taking the GIL from the waiting call's saved state, which
    this thread already held, and the process hung for good."""
    def handler(req):
        resp = fake(req)
        if b'"slow"' in req.body:
            resp.delay = 1.5
        return resp

    fake.server.handler = handler
    proc = subprocess.run(
        [sys.executable, "-c", ASYNC_CALL_IN_A_SIGNAL_HANDLER,
         fake.server.url, AK, SK],
        capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, "200 [200]"), \
        proc.stderr


# A server in a process of its own (it must answer while this process's
# GIL is held by a spinning thread): it waits for `n` requests, prints
# "ready", answers them all `delay` seconds later (the first one `early`
# seconds later, when given), and exits.
SERVER = textwrap.dedent("""
    import socket, sys, time, json
    n, delay = int(sys.argv[1]), float(sys.argv[2])
    early = float(sys.argv[3]) if len(sys.argv) > 3 else delay
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    print(s.getsockname()[1], flush=True)
    conns = []
    while len(conns) < n:
        c, _ = s.accept()
        buf = b""
        while b"\\r\\n\\r\\n" not in buf:
            buf += c.recv(65536)
        head, _, body = buf.partition(b"\\r\\n\\r\\n")
        length = [int(l.split(b":")[1]) for l in head.split(b"\\r\\n")
                  if l.lower().startswith(b"content-length:")][0]
        while len(body) < length:
            body += c.recv(65536)
        conns.append(c)
    print("ready", flush=True)
    answer = json.dumps(%r).encode()
    for i, c in enumerate(conns):
        if i < 2:
            time.sleep(early if i == 0 else delay - early)
        c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\n"
                  b"Content-Length: %%d\\r\\n\\r\\n%%s" %% (len(answer), answer))
    time.sleep(5)
""" % (ENVELOPE,))


def read_line(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "the server process said nothing"
    return proc.stdout.readline().strip()


def hold_the_gil(seconds):
    """A pure-Python spin that keeps the GIL for `seconds`: the switch
    interval is made longer than the spin."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    finally:
        sys.setswitchinterval(interval)


def test_waiting_worker_threads_never_take_the_gil():
    # Four threads wait on the network while this thread holds the GIL and
    # never gives it up (a pure-Python spin, with a switch interval longer
    # than the spin). A waiting call that took the GIL to look for signals
    # would be stuck behind the spin until after its own timeout; one that
    # does not finishes its transfer meanwhile and returns the envelope.
    workers, timeout = 4, 5.0
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(workers), "0.5"],
                            stdout=subprocess.PIPE, text=True)
    results = [None] * workers
    threads = []
    try:
        port = int(read_line(proc, 30))
        client = ManagementClient(AK, SK, host=f"http://127.0.0.1:{port}",
                                  auth="signature", timeout=timeout)

        def work(i):
            try:
                results[i] = client.trigger_webhook(f"wh{i}")
            except Exception as exc:  # noqa: BLE001 - compared below
                results[i] = exc

        threads = [threading.Thread(target=work, args=(i,))
                   for i in range(workers)]
        for t in threads:
            t.start()
        assert read_line(proc, 30) == "ready"  # every call is waiting
        hold_the_gil(timeout + 1.0)
        for t in threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in threads)
        assert results == [ENVELOPE] * workers
        client.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def test_a_batch_in_a_worker_thread_never_takes_the_gil_as_its_calls_end():
    """As a single call: a batch waiting in a thread that runs no signal
    handlers does not take the GIL when one of its calls ends (to log it
    and make its result). There it would wait for the GIL behind this
    thread's spin while its other calls' answers came, and those calls
    would end with TimeoutError; it makes the results once it returns."""
    calls, timeout = 4, 3.0
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(calls), "0.8",
                             "0.2"], stdout=subprocess.PIPE, text=True)
    results = []
    try:
        port = int(read_line(proc, 30))
        client = ManagementClient(AK, SK, host=f"http://127.0.0.1:{port}",
                                  auth="signature", timeout=timeout)
        worker = threading.Thread(target=lambda: results.append(
            client.trigger_webhooks([{"webhook_id": f"wh{i}"}
                                     for i in range(calls)],
                                    concurrency=calls)))
        worker.start()
        assert read_line(proc, 30) == "ready"  # every call is waiting
        hold_the_gil(timeout + 1.0)
        worker.join(timeout=30)
        assert not worker.is_alive()
        assert results == [[ENVELOPE] * calls]
        client.close()
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()


def subinterpreters():
    for name in ("_interpreters", "_xxsubinterpreters"):
        try:
            return __import__(name)
        except ImportError:
            pass
    return None


@pytest.mark.skipif(subinterpreters() is None,
                    reason="no subinterpreter module in this Python")
def test_works_in_a_subinterpreter(fake, tmp_path):
    # The module's default interpreter: from 3.12 one with a GIL of its own
    # (3.13's "isolated" config), which loads only a module that says it is
    # safe there; two of them run at once, on two threads. 3.11's share the
    # GIL.
    interp = subinterpreters()
    code = textwrap.dedent(f"""
        import json
        import genauth_c
        with genauth_c.ManagementClient({AK!r}, {SK!r}, host={fake.server.url!r},
                                        timeout=10) as client:
            one = client.trigger_webhook("wh1", request_body={{"n": 1}})
            many = client.trigger_webhooks([{{"webhook_id": "a"}}, {{"webhook_id": "b"}}])
        try:
            genauth_c.ManagementClient("AK", "SK", timeout=1e16)
        except ValueError as exc:
            refused = str(exc)
        else:
            refused = None
        with open(OUT, "w") as f:
            json.dump([one, many, refused], f)
    """)
    failures = []

    def run(out):
        iid = interp.create()
        try:
            # 3.13 returns what the code raised; 3.11 and 3.12 raise it.
            failures.append(interp.run_string(iid, f"OUT = {str(out)!r}\n" + code))
        except Exception as e:
            failures.append(e)
        finally:
            interp.destroy(iid)

    outs = [tmp_path / f"out{i}.json" for i in range(2)]
    threads = [threading.Thread(target=run, args=(out,)) for out in outs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert failures == [None, None]
    for out in outs:
        one, many, refused = json.loads(out.read_text())
        assert one["statusCode"] == 200
        assert [r["statusCode"] for r in many] == [200, 200]
        assert refused.startswith("timeout:")
    # And the module still works here after the subinterpreters are gone.
    with ManagementClient(AK, SK, host=fake.server.url) as client:
        assert client.trigger_webhook("wh1")["statusCode"] == 200


IMPORT_FROM = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    try:
        import genauth_c
    except ImportError as e:
        print(e)
    else:
        print("imported", genauth_c.__file__)
""")


@pytest.mark.parametrize("extension", [None, b"", b"\x7fELF not a library"])
def test_an_extension_that_does_not_load_says_why(tmp_path, extension):
    # The package's Python files without their extension: it says to build
    # it. With one that is there but cannot be loaded (or, in an interpreter
    # with a GIL of its own, a module that is refused there): the loader's
    # own reason, not that it is not built.
    package = tmp_path / "genauth_c"
    package.mkdir()
    source = os.path.dirname(genauth_c.__file__)
    for name in os.listdir(source):
        if name.endswith(".py"):
            with open(os.path.join(source, name), "rb") as f:
                (package / name).write_bytes(f.read())
    if extension is not None:
        (package / "_core.abi3.so").write_bytes(extension)
    out = subprocess.run([sys.executable, "-c", IMPORT_FROM, str(tmp_path)],
                         capture_output=True, text=True, timeout=60,
                         cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr
    said = out.stdout.strip()
    if extension is None:
        assert said.startswith("genauth_c's C extension is not built in "
                               + str(package)), said
    else:
        assert "not built" not in said and "_core.abi3.so" in said, said
