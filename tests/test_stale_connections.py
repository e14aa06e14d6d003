"""A kept connection that the server spoke on while it was idle: each call
still gets its own answer (never a late one meant for nobody), a defined
exception at worst, and a connection the server keeps clean is reused,
whatever the protocol: HTTP/1.1 in clear or TLS, through a proxy, and
HTTP/2, where frames on an idle connection are normal."""
import asyncio
import json
import socket
import signal
import ssl
import struct
import threading
import time

import pytest

from rawserver import RawServer, Response, make_jwt

from conftest import server_tls

import genauth_c
from genauth_c import ManagementClient

AK, SK = "AKIDexample1234", "S"
TIMEOUT = 5.0


MODES = ["sync", "batch", "asyncio"]


def _asked(got):
    return [(g["statusCode"], g["requestId"]) for g in got]


def run_calls(mode, url, between, **opts):
    """One call, then between(), then three more, in `mode`; the four
    outcomes (an exception is returned, not raised)."""
    opts.setdefault("timeout", TIMEOUT)
    if mode == "asyncio":
        async def calls():
            async with genauth_c.AsyncManagementClient(
                    AK, SK, host=url, **opts) as client:
                async def call():
                    try:
                        return await client.trigger_webhook("w")
                    except genauth_c.GenAuthError as exc:
                        return exc
                got = [await call()]
                await asyncio.get_running_loop().run_in_executor(
                    None, between)
                for _ in range(3):
                    got.append(await call())
                return got

        return asyncio.run(calls())
    with ManagementClient(AK, SK, host=url, **opts) as client:
        def call():
            try:
                if mode == "batch":
                    [out] = client.trigger_webhooks([{"webhook_id": "w"}],
                                                    concurrency=1)
                    return out
                return client.trigger_webhook("w")
            except genauth_c.GenAuthError as exc:
                return exc
        got = [call()]
        between()
        return got + [call() for _ in range(3)]


def _pushed(server, settle=0.2):
    """between() for run_calls: the server does what it was told to the
    idle connection (`push`), and that has reached the client."""
    def between():
        server.push.set()
        assert server.pushed.wait(10)
        threading.Event().wait(settle)  # what it sent has come
    return between


# ---- a small HTTP/2 server (TLS, ALPN h2) ----------------------------------

def frame(kind, flags, stream, payload=b""):
    return (struct.pack(">I", len(payload))[1:] + bytes([kind, flags])
            + struct.pack(">I", stream) + payload)


DATA, HEADERS, RST, SETTINGS, PING, GOAWAY, WINDOW = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def literal(name, value):
    """An HPACK header field, literal without indexing, new name, no
    Huffman coding (lengths below 127)."""
    return bytes([0, len(name)]) + name + bytes([len(value)]) + value


def answer(stream, body):
    block = (b"\x88"  # :status 200, static table entry 8
             + literal(b"content-type", b"application/json")
             + literal(b"content-length", str(len(body)).encode()))
    return (frame(HEADERS, END_HEADERS, stream, block)
            + frame(DATA, END_STREAM, stream, body))


def envelope(n):
    return json.dumps({"statusCode": 200, "message": "asked",
                       "requestId": f"r-{n}", "data": {}}).encode()


class Listener:
    """A loopback server: each connection is served on a thread of its own
    (serve(raw, number), numbers counting from 1), `connections` counts
    them, close() ends them. `push` and `pushed`: the test's go for what
    the server does to an idle connection, and the server's word that it
    did it. A subclass sets its own fields before calling this."""

    def __init__(self, scheme, host="127.0.0.1"):
        self.sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        name = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{name}:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.lock = threading.Lock()
        self.push, self.pushed = threading.Event(), threading.Event()
        self.stop = threading.Event()
        self.clients = []
        threading.Thread(target=self.accept, daemon=True).start()

    def close(self):
        self.stop.set()
        self.push.set()
        for s in [self.sock] + self.clients:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def accept(self):
        while not self.stop.is_set():
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
                number = self.connections
            self.clients.append(raw)
            threading.Thread(target=self.serve, args=(raw, number),
                             daemon=True).start()


class H2Server(Listener):
    """Answers every request (the client signs its calls: no token
    endpoint) with requestId r-N, N counting requests. `hold`: a request
    number whose answer waits until `release` is set, `flood` bytes of its
    body sent meanwhile; `arrived` is set once it has come. `after_first`:
    a frame sent on the first connection once `push` is set, after the
    first answer (the connection idle)."""

    def __init__(self, certificate):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*certificate)
        self.ctx.set_alpn_protocols(["h2"])
        self.requests = 0
        self.protocols = []
        self.after_first = None
        self.hold = None
        self.flood = 0
        self.arrived, self.release = threading.Event(), threading.Event()
        super().__init__("https")

    def close(self):
        self.release.set()
        super().close()

    @staticmethod
    def read(conn, n):
        buf = b""
        while len(buf) < n:
            got = conn.recv(n - len(buf))
            if not got:
                raise OSError("closed")
            buf += got
        return buf

    def serve(self, raw, number):
        wlock = threading.Lock()

        def send(data):
            with wlock:
                conn.sendall(data)

        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
            self.clients.append(conn)  # for close(): raw is detached now
            self.protocols.append(conn.selected_alpn_protocol())
            self.read(conn, 24)  # the client's preface
            send(frame(SETTINGS, 0, 0))
            while not self.stop.is_set():
                head = self.read(conn, 9)
                length = struct.unpack(">I", b"\0" + head[:3])[0]
                kind, flags = head[3], head[4]
                stream = struct.unpack(">I", head[5:])[0] & 0x7FFFFFFF
                payload = self.read(conn, length)
                if kind == SETTINGS and not flags & ACK:
                    send(frame(SETTINGS, ACK, 0))
                elif kind == PING and not flags & ACK:
                    send(frame(PING, ACK, 0, payload))
                elif kind in (HEADERS, DATA) and flags & END_STREAM:
                    with self.lock:
                        self.requests += 1
                        n = self.requests
                    if n == self.hold:
                        threading.Thread(
                            target=self.answer_held,
                            args=(send, stream, n), daemon=True).start()
                        continue
                    send(answer(stream, envelope(n)))
                    if (number == 1 and n == 1
                            and self.after_first is not None):
                        threading.Thread(target=self.push_late,
                                         args=(send,), daemon=True).start()
        except (OSError, ssl.SSLError):
            pass

    def push_late(self, send):
        if self.push.wait(30) and not self.stop.is_set():
            send(self.after_first)
            self.pushed.set()

    def answer_held(self, send, stream, n):
        self.arrived.set()
        if self.flood:
            body = envelope(n)
            pad = b" " * self.flood
            block = (b"\x88" + literal(b"content-type", b"application/json")
                     + literal(b"content-length",
                               str(len(body) + len(pad)).encode()))
            send(frame(HEADERS, END_HEADERS, stream, block))
            for i in range(0, len(pad), 1000):
                send(frame(DATA, 0, stream, pad[i:i + 1000]))
            if self.release.wait(30) and not self.stop.is_set():
                send(frame(DATA, END_STREAM, stream, body))
            return
        if self.release.wait(30) and not self.stop.is_set():
            send(answer(stream, envelope(n)))


@pytest.fixture
def h2(certificate):
    server = H2Server(certificate)
    yield server
    server.close()


@pytest.mark.parametrize("mode", MODES)
def test_http2_ping_on_an_idle_connection_keeps_it(h2, certificate, mode):
    """An HTTP/2 server may send frames on an idle connection (a PING to
    see it is alive): that is no stray answer, and the connection stays in
    use rather than being shut and replaced at the next call."""
    h2.after_first = frame(PING, 0, 0, b"12345678")
    got = run_calls(mode, h2.url, _pushed(h2), auth="signature",
                    ca_bundle=str(certificate[0]))
    assert h2.protocols[0] == "h2"
    assert _asked(got) == [(200, f"r-{n}") for n in range(1, 5)]
    assert h2.connections == 1


def test_http2_call_in_flight_survives_a_call_started_beside_it(
        h2, certificate):
    """Two calls share one HTTP/2 connection. The first's answer is coming
    (the client has not read all of it yet) when the second starts: the
    second must not take the connection for a stale one and shut it, which
    would fail the first after its request was sent."""
    h2.hold = 2
    h2.flood = 1_000_000

    async def calls():
        async with genauth_c.AsyncManagementClient(
                AK, SK, host=h2.url, auth="signature", timeout=TIMEOUT,
                ca_bundle=str(certificate[0])) as client:
            first = await client.trigger_webhook("w")
            held = asyncio.ensure_future(client.trigger_webhook("w"))
            await asyncio.get_running_loop().run_in_executor(
                None, h2.arrived.wait, 30)
            # The loop is held (no await) while the answer comes, then a
            # call starts at once: its coroutine, stepped by hand, runs up
            # to its first wait, which has started the transfer.
            threading.Event().wait(0.2)
            beside = client.trigger_webhook("w")
            step = beside.send(None)
            h2.release.set()
            try:
                held_got = await held
            except genauth_c.GenAuthError as exc:
                held_got = exc
            return first, held_got, await _resume(beside, step)

    first, held_got, beside_got = asyncio.run(calls())
    assert h2.protocols[0] == "h2"
    assert isinstance(held_got, dict), held_got
    assert _asked([first]) == [(200, "r-1")]
    assert held_got["statusCode"] == 200
    assert beside_got["statusCode"] == 200
    assert h2.connections == 1


async def _resume(coro, step):
    """Drives a coroutine that was stepped once by hand (it yielded
    `step`, a future) to its end."""
    while True:
        await asyncio.wait([step])
        try:
            step = coro.send(None)
        except StopIteration as done:
            return done.value


def test_http2_batch_call_in_flight_survives_the_next_call(h2, certificate):
    """In a batch, a call that starts on the HTTP/2 connection while
    another's answer is coming leaves that connection alone."""
    h2.hold = 2
    h2.flood = 1_000_000

    def release():
        if h2.arrived.wait(30):
            threading.Event().wait(0.3)
        h2.release.set()

    with ManagementClient(AK, SK, host=h2.url, auth="signature",
                          timeout=TIMEOUT,
                          ca_bundle=str(certificate[0])) as client:
        [first] = client.trigger_webhooks([{"webhook_id": "w"}])
        assert first["requestId"] == "r-1"
        releaser = threading.Thread(target=release, daemon=True)
        releaser.start()
        got = client.trigger_webhooks([{"webhook_id": "w"}] * 3,
                                      concurrency=2)
        releaser.join(30)
    assert h2.protocols[0] == "h2"
    assert all(isinstance(g, dict) for g in got), got
    assert sorted(g["requestId"] for g in got) == ["r-2", "r-3", "r-4"]
    assert h2.connections == 1


# ---- HTTP/1.1: what a server may do on an idle kept-alive connection -------

def http_answer(body, status=200):
    return (b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (status, len(body)) + body)


LATE = http_answer(json.dumps({"statusCode": 408, "message": "unasked",
                               "requestId": "late", "data": None}).encode(),
                   408)


class Http1Server(Listener):
    """Answers trigger-webhook with requestId r-N (N counting those
    requests) and the token endpoint with a token. After the `after`-th
    webhook answer, once `push` is set, it does `action` to that answer's
    connection (idle then) and sets `pushed`:
    "late" sends an answer nobody asked for ("with_answer": at once, in
    the same write as the answer); "fin" closes; "rst" resets;
    "close_notify" ends TLS (a close_notify alert) and leaves TCP open;
    "flood" sends bytes without end. Through a proxy setting, requests
    come in absolute form, as to a forward proxy that answers itself."""

    def __init__(self, action, tls=None, after=1, host="127.0.0.1"):
        self.action, self.tls, self.after = action, tls, after
        self.webhooks = 0
        self.token_fetches = 0
        self.opened = None  # connections once the `after`-th answer left
        super().__init__("https" if tls else "http", host)

    def serve(self, raw, number):
        buf = bytearray()
        try:
            conn = raw
            if self.tls:
                conn = self.tls.wrap_socket(raw, server_side=True)
                self.clients.append(conn)  # for close(): raw is detached now
            while not self.stop.is_set():
                # RawServer's parser, which uses nothing of its server.
                req = RawServer._read_request(self, conn, buf)
                if req is None:
                    return
                if "get-management-token" in req.path:
                    with self.lock:
                        self.token_fetches += 1
                    token = make_jwt({"scoped_userpool_id": "p",
                                      "exp": int(time.time() + 7200)})
                    conn.sendall(http_answer(json.dumps(
                        {"statusCode": 200, "message": "",
                         "data": {"access_token": token,
                                  "expires_in": 7200}}).encode()))
                    continue
                with self.lock:
                    self.webhooks += 1
                    n = self.webhooks
                stray = LATE if (n == self.after
                                 and self.action == "with_answer") else b""
                conn.sendall(http_answer(envelope(n)) + stray)
                if n == self.after:
                    self.opened = self.connections
                    if not self.push.wait(30) or self.stop.is_set():
                        return
                    if self.act(conn):
                        return
        except (OSError, ssl.SSLError):
            pass
        finally:
            self.pushed.set()

    def act(self, conn):
        """Does the action; True when the connection is done with."""
        if self.action == "with_answer":
            self.pushed.set()
            return False
        if self.action == "late":
            conn.sendall(LATE)
            self.pushed.set()
            return False
        if self.action == "fin":
            conn.close()
        elif self.action == "rst":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            conn.close()
        elif self.action == "close_notify":
            # Sends close_notify, then waits for the client's, which an
            # idle client does not send: TCP stays open (conn kept).
            self.clients.append(conn)
            conn.settimeout(0.5)
            try:
                conn.unwrap()
            except (OSError, ssl.SSLError):
                pass
        elif self.action == "flood":
            self.pushed.set()
            junk = b"x" * 65536
            while not self.stop.is_set():
                conn.sendall(junk)  # ends when the client closes
        return True


def each_gets_its_own(server, mode, url=None, between=None, **opts):
    """run_calls against `server` (closed then): the calls get their own
    answers, r-1 to r-4, and one new connection is opened after the
    first."""
    try:
        got = run_calls(mode, url or server.url, between or _pushed(server),
                        **opts)
        assert _asked(got) == [(200, f"r-{n}") for n in range(1, 5)], got
        assert server.connections == server.opened + 1
    finally:
        server.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tls, action", [
    (tls, action) for tls in (False, True)
    for action in ["late", "with_answer", "fin", "rst", "flood"]
    + ["close_notify"] * tls])
def test_idle_connection_spoken_on_gives_every_call_its_answer(
        certificate, mode, tls, action):
    """Whatever the server does to an idle connection (an answer nobody
    asked for, FIN, RST, TLS close_notify, bytes without end), or an answer
    nobody asked for sent with the last one, each later call gets its own
    answer, on one new connection."""
    server = Http1Server(action, tls=server_tls(certificate) if tls else None)
    opts = {"ca_bundle": str(certificate[0])} if tls else {}
    each_gets_its_own(server, mode, **opts)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_stray_answer_through_a_proxy(monkeypatch, certificate, mode, tls):
    """The connection is the proxy's: what it sends unasked is no answer."""
    server = Http1Server("late", tls=server_tls(certificate) if tls else None)
    monkeypatch.setenv("http_proxy", server.url)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    each_gets_its_own(server, mode, url="http://api.example.invalid",
                      ca_bundle=str(certificate[0]))


@pytest.mark.parametrize("mode", MODES)
def test_stray_answer_over_ipv6(mode):
    each_gets_its_own(Http1Server("late", host="::1"), mode)


@pytest.mark.parametrize("mode", MODES)
def test_stray_answer_before_a_signed_call(mode):
    each_gets_its_own(Http1Server("late"), mode, auth="signature")


@pytest.mark.parametrize("mode", MODES)
def test_stray_answer_before_a_token_fetch(token_clock, mode):
    """The token expires while the connection has a stray answer waiting:
    the token fetch meets it first, and goes out on a new connection."""
    server = Http1Server("late")

    def between():
        _pushed(server)()
        token_clock.advance(7200 + 60)

    each_gets_its_own(server, mode, between=between)
    assert server.token_fetches == 2


class Scripted:
    """A RawServer handler for trigger-webhook calls signed by the client
    (no token): request N is answered with requestId r-N, at once or, if N
    is in `held`, once the test calls release(N); arrived(N) and
    answered(N) wait for request N and for its answer to have left. After
    the answers to the requests in `late`, once `push` is set, an answer
    nobody asked for follows on their connections (pushed(N) waits for
    it)."""

    def __init__(self, held=(), late=()):
        self.held, self.late = set(held), set(late)
        self.n = 0
        self.lock = threading.Lock()
        self.events = {}
        self.push = threading.Event()

    def _event(self, what, n):
        with self.lock:
            return self.events.setdefault((what, n), threading.Event())

    def arrived(self, n):
        assert self._event("arrived", n).wait(30)

    def answered(self, n):
        assert self._event("answered", n).wait(30)

    def pushed(self, n):
        assert self._event("pushed", n).wait(30)

    def release(self, n):
        self._event("release", n).set()

    def __call__(self, req):
        with self.lock:
            self.n += 1
            n = self.n
        self._event("arrived", n).set()

        def pieces():
            if n in self.held and not self._event("release", n).wait(30):
                return
            yield http_answer(envelope(n))
            self._event("answered", n).set()
            if n in self.late and self.push.wait(30):
                yield LATE
                self._event("pushed", n).set()

        return Response(raw=pieces())


def test_batch_stopped_as_calls_end_leaves_no_connection_unchecked():
    """Two calls of a batch end in the same turn, and the first's log line
    stops the batch (Ctrl-C in a log handler): the second's end is never
    read, but its connection is kept. It must still be checked before its
    next use: what the server then sends on it unasked is no answer."""
    from test_batch import debug_lines

    script = Scripted(held={2, 3}, late={2, 3})
    lines = []

    def on_line(line):
        if "trigger-webhook" not in line:
            return
        lines.append(line)
        if len(lines) == 1:
            # Both other answers come while this line is logged, so that
            # the batch reads both ends in its next turn.
            script.release(2)
            script.release(3)
            script.answered(2)
            script.answered(3)
            time.sleep(0.2)
        elif len(lines) == 2:
            signal.raise_signal(signal.SIGINT)

    with RawServer(script) as server, ManagementClient(
            AK, SK, host=server.url, auth="signature",
            timeout=TIMEOUT) as client:
        with debug_lines(on_line), pytest.raises(KeyboardInterrupt):
            client.trigger_webhooks([{"webhook_id": "w"}] * 3,
                                    concurrency=3)
        script.push.set()
        script.pushed(2)
        script.pushed(3)
        time.sleep(0.2)  # the stray answers have come
        got = client.trigger_webhooks([{"webhook_id": "w"}] * 3,
                                      concurrency=3)
    assert sorted(_asked(got)) == [(200, f"r-{n}") for n in (4, 5, 6)], got


@pytest.mark.parametrize("mode", ["batch", "asyncio"])
def test_connections_reused_together_are_each_checked(mode):
    """Four kept connections are reused in one turn, which polls them all
    at once: the two the server spoke on while idle are left for new ones,
    the other two carry their calls, and each call gets its own answer."""
    # The second four are answered once all have come, so that each has a
    # connection of its own (none is free before).
    second = range(5, 9)
    script = Scripted(held=second, late={2, 4})
    calls = [{"webhook_id": "w"}] * 4

    def between():
        script.push.set()
        script.pushed(2)
        script.pushed(4)
        time.sleep(0.2)  # the stray answers have come
        threading.Thread(target=release_when_all_came, daemon=True).start()

    def release_when_all_came():
        for n in second:
            script.arrived(n)
        for n in second:
            script.release(n)

    async def in_loop(client):
        async def call():
            try:
                return await client.trigger_webhook("w")
            except genauth_c.GenAuthError as exc:
                return exc
        first = await asyncio.gather(*[call() for _ in calls])
        await asyncio.get_running_loop().run_in_executor(None, between)
        return first, await asyncio.gather(*[call() for _ in calls])

    with RawServer(script) as server:
        opts = dict(host=server.url, auth="signature", timeout=TIMEOUT)
        if mode == "asyncio":
            async def run():
                async with genauth_c.AsyncManagementClient(
                        AK, SK, **opts) as client:
                    return await in_loop(client)
            first, got = asyncio.run(run())
        else:
            with ManagementClient(AK, SK, **opts) as client:
                first = client.trigger_webhooks(calls, concurrency=4)
                between()
                got = client.trigger_webhooks(calls, concurrency=4)
        assert server.connections == 6  # four, then two for the stale
    assert sorted(_asked(first)) == [(200, f"r-{n}") for n in range(1, 5)]
    assert sorted(_asked(got)) == [(200, f"r-{n}") for n in second], got


@pytest.mark.skipif(
    int(genauth_c.curl_version.split(".")[0]) >= 8,
    reason="libcurl 8 gives a waiting transfer a connection as the call "
           "before it ends on it, before anything can be sent there unasked, "
           "and sets aside one with bytes waiting itself: this run again is "
           "libcurl 7's")
def test_call_queued_then_run_again_ends_by_its_timeout():
    """A call that waited in libcurl's queue (every connection busy) is
    given a connection with a stray answer waiting, and goes out again on
    a new one: still within its own timeout, not a whole timeout more
    counted from then."""
    from test_batch import debug_lines

    from conftest import SLACK

    timeout, answer_at = 8.0, 7.0
    busy = 64  # connections at most (GENAUTH_EV_MAX_CONNECTIONS)
    lock = threading.Lock()
    count = [0]
    everyone, done = threading.Event(), threading.Event()
    first_seen = []

    def handler(req):
        with lock:
            count[0] += 1
            n = count[0]
            if n == 1:
                first_seen.append(time.monotonic())
            if n == busy:
                everyone.set()

        def pieces():
            if n == 1 and everyone.wait(30):
                # The one answer, late in the queued call's time; once the
                # client has read it (its line is logged), a stray answer
                # on its connection, which the queued call is given.
                if not done.wait(first_seen[0] + answer_at
                                 - time.monotonic()):
                    yield http_answer(envelope(n))
                    if logged.wait(30):
                        yield LATE
                        late_sent.set()
            done.wait(30)

        return Response(raw=pieces())

    logged, late_sent = threading.Event(), threading.Event()

    def on_line(line):
        # The loop moves on (and gives the connection to the queued call)
        # only once the stray answer has come.
        if "trigger-webhook" in line and not logged.is_set():
            logged.set()
            late_sent.wait(30)

    ended = []

    async def calls(url):
        async with genauth_c.AsyncManagementClient(
                AK, SK, host=url, auth="signature",
                timeout=timeout) as client:
            async def call():
                try:
                    return await client.trigger_webhook("w")
                except genauth_c.GenAuthError as exc:
                    return exc
                finally:
                    ended.append(time.monotonic())
            return await asyncio.gather(*[call() for _ in range(busy + 1)])

    with RawServer(handler) as server, debug_lines(on_line):
        started = time.monotonic()
        try:
            got = asyncio.run(calls(server.url))
        finally:
            done.set()
    assert late_sent.is_set(), "no call was answered"
    assert count[0] == busy + 1  # the queued call, once, on a new one
    assert sum(isinstance(g, dict) for g in got) == 1
    assert max(ended) - started <= timeout + SLACK


def test_a_chunked_answers_last_chunk_read_beside_a_check_keeps_its_connection():
    """Answers whose last chunk ("0\\r\\n\\r\\n", which libcurl reads with
    no callback) comes in a write of its own, to more asyncio calls than
    the loop has connections (64, GENAUTH_EV_MAX_CONNECTIONS): the calls
    queued in libcurl are given connections whose answers just ended, in
    the turn that checked others. Nothing was ever sent unasked, so every
    connection is reused; none is taken for stale and opened anew."""
    body = json.dumps({"statusCode": 200, "requestId": "r"}).encode()

    def pieces():
        yield body
        time.sleep(0.002)  # the last chunk is a write of its own

    def handler(req):
        return Response(stream=pieces(),
                        headers=[("Transfer-Encoding", "chunked")])

    async def calls(url):
        async with genauth_c.AsyncManagementClient(
                AK, SK, host=url, auth="signature", timeout=30) as client:
            for _ in range(5):
                got = await asyncio.gather(
                    *[client.trigger_webhook("w") for _ in range(300)])
                assert all(g["statusCode"] == 200 for g in got)

    with RawServer(handler) as server:
        asyncio.run(calls(server.url))
        assert len(server.requests) == 1500
        assert server.connections <= 64
