"""A kept connection that the server spoke on while it was idle: each call
still gets its own answer (never a late one meant for nobody), a defined
exception at worst, and a connection the server keeps clean is reused,
whatever the protocol: HTTP/1.1 in clear or TLS, through a proxy, and
HTTP/2, where frames on an idle connection are normal."""
import asyncio
import json
import socket
import ssl
import struct
import threading

import pytest

from rawserver import FakeGenAuth, RawServer, Response

from conftest import server_tls

import genauth_c
from genauth_c import ManagementClient

AK, SK = "AKIDexample1234", "S"
TIMEOUT = 5.0


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


class H2Server:
    """Answers every request (the client signs its calls: no token
    endpoint) with requestId r-N, N counting requests. `hold`: a request
    number whose answer waits until `release` is set; once that request
    has come, `idle_frame` (if any) is sent on its connection and
    `arrived` is set. `after_first`: a frame sent on the first connection
    once `push` is set, after the first answer (the connection idle)."""

    def __init__(self, certificate):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(*certificate)
        self.ctx.set_alpn_protocols(["h2"])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"https://127.0.0.1:{self.sock.getsockname()[1]}"
        self.connections = 0
        self.requests = 0
        self.protocols = []
        self.lock = threading.Lock()
        self.push, self.pushed = threading.Event(), threading.Event()
        self.after_first = None
        self.hold = None
        self.idle_frame = None
        self.flood = 0
        self.arrived, self.release = threading.Event(), threading.Event()
        self.stop = threading.Event()
        self.clients = []
        threading.Thread(target=self.accept, daemon=True).start()

    def close(self):
        self.stop.set()
        self.release.set()
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
                first = self.connections == 1
            self.clients.append(raw)
            threading.Thread(target=self.serve, args=(raw, first),
                             daemon=True).start()

    @staticmethod
    def read(conn, n):
        buf = b""
        while len(buf) < n:
            got = conn.recv(n - len(buf))
            if not got:
                raise OSError("closed")
            buf += got
        return buf

    def serve(self, raw, first):
        wlock = threading.Lock()

        def send(data):
            with wlock:
                conn.sendall(data)

        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
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
                    if first and n == 1 and self.after_first is not None:
                        threading.Thread(target=self.push_late,
                                         args=(send,), daemon=True).start()
        except (OSError, ssl.SSLError):
            pass

    def push_late(self, send):
        if self.push.wait(30) and not self.stop.is_set():
            send(self.after_first)
            self.pushed.set()

    def answer_held(self, send, stream, n):
        if self.idle_frame is not None:
            send(self.idle_frame)
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


def _asked(got):
    return [(g["statusCode"], g["requestId"]) for g in got]


@pytest.mark.parametrize("mode", ["sync", "batch", "asyncio"])
def test_http2_ping_on_an_idle_connection_keeps_it(h2, certificate, mode):
    """An HTTP/2 server may send frames on an idle connection (a PING to
    see it is alive): that is no stray answer, and the connection stays in
    use rather than being shut and replaced at the next call."""
    h2.after_first = frame(PING, 0, 0, b"12345678")
    opts = dict(host=h2.url, auth="signature", timeout=TIMEOUT,
                ca_bundle=str(certificate[0]))
    if mode == "asyncio":
        async def calls():
            async with genauth_c.AsyncManagementClient(AK, SK,
                                                       **opts) as client:
                got = [await client.trigger_webhook("w")]
                h2.push.set()
                await asyncio.get_running_loop().run_in_executor(
                    None, h2.pushed.wait, 30)
                await asyncio.sleep(0.2)  # the PING is there
                for _ in range(3):
                    got.append(await client.trigger_webhook("w"))
                return got

        got = asyncio.run(calls())
    else:
        with ManagementClient(AK, SK, **opts) as client:
            if mode == "batch":
                def call():
                    [out] = client.trigger_webhooks([{"webhook_id": "w"}],
                                                    concurrency=1)
                    return out
            else:
                def call():
                    return client.trigger_webhook("w")
            got = [call()]
            h2.push.set()
            assert h2.pushed.wait(30)
            threading.Event().wait(0.2)  # the PING is there
            got += [call() for _ in range(3)]
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
