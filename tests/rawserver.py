"""A small HTTP/1.1 server on raw sockets, for tests that need to see the exact
bytes a client sends or to misbehave in ways HTTP libraries refuse to.

Each request is parsed just enough (request line, headers, Content-Length
body) and handed to `handler(request) -> Response`. Connections are kept
alive; `connections` counts accepted sockets.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable


@dataclass
class Request:
    method: str
    path: str
    headers: list[tuple[str, str]]  # wire order, original case
    body: bytes
    raw: bytes  # the request exactly as received

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # before anything is sent
    close: bool = False  # close the connection without answering
    trickle: float = 0.0  # send the body a byte at a time, this far apart
    # Send exactly these bytes instead; an iterable of bytes is sent piece
    # by piece as it yields them (a head that never ends, say).
    raw: "bytes | Iterable[bytes] | None" = None
    # Sent after the head instead of `body`, chunk by chunk as the iterable
    # yields them (a huge body never sits in memory). No Content-Length is
    # added: give one in `headers`, or Transfer-Encoding: chunked (the chunks
    # are then framed here), or none (the connection closes after the body).
    stream: "Iterable[bytes] | None" = None
    close_after: bool = False  # FIN once the answer (raw or not) is sent
    reset: bool = False  # RST (SO_LINGER 0) instead, once the answer is sent

    @classmethod
    def json(cls, obj, status: int = 200, **kw) -> "Response":
        return cls(status=status, body=json.dumps(obj).encode(), **kw)


def make_jwt(claims: dict) -> str:
    def b64(obj) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims)}.c2lnbmF0dXJl"


REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 302: "Found",
           500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable"}


class RawServer:
    def __init__(self, handler: Callable[[Request], Response],
                 tls: "ssl.SSLContext | None" = None, port: int = 0,
                 record: bool = True):
        self.handler = handler
        self.tls = tls
        self.record = record  # False: keep no requests (long runs)
        self.requests: list[Request] = []
        self.connections = 0
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._clients: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def __enter__(self) -> "RawServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        try:
            # shutdown() wakes the thread blocked in accept(); close() alone
            # does not on Linux.
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self._sock.close()
        except OSError:
            pass
        with self._lock:
            for c in self._clients:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                except OSError:
                    pass
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
                # Answers go out at once, not held for a delayed ACK.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._clients = [c for c in self._clients if c.fileno() != -1]
                self._clients.append(conn)
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _read_request(self, conn: socket.socket, buf: bytearray):
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            buf += chunk
        head, _, rest = bytes(buf).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        # Each pair made whole, never grown from a generator (tuple(...)):
        # a thread walking gc.get_objects() meanwhile (test_batch's log
        # handler) can hold a tuple being grown, which CPython then refuses
        # to resize (SystemError: bad argument to internal function).
        headers = []
        for ln in lines[1:]:
            name, _, value = ln.partition(":")
            headers.append((name.strip(), value.strip()))
        length = 0
        for k, v in headers:
            if k.lower() == "content-length":
                length = int(v)
        body = bytearray(rest)
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            body += chunk
        del buf[:]
        buf += body[length:]
        raw = head + b"\r\n\r\n" + bytes(body[:length])
        return Request(method, path, headers, bytes(body[:length]), raw)

    def _send_stream(self, conn, resp: Response, names: set) -> bool:
        """Sends resp.stream; False when the connection must end after it."""
        chunked = any(k.lower() == "transfer-encoding" and "chunked" in v.lower()
                      for k, v in resp.headers)
        for piece in resp.stream:
            if self._stop.is_set():
                return False
            if chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece)
            conn.sendall(piece)
        if chunked:
            conn.sendall(b"0\r\n\r\n")
        # Without a length or chunking, the close marks the body's end.
        return chunked or "content-length" in names

    @staticmethod
    def _end(conn, resp: Response) -> bool:
        """Ends the connection as resp asks; True when it did."""
        if resp.reset:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
            conn.close()
            return True
        return resp.close_after

    def _serve(self, conn: socket.socket) -> None:
        buf = bytearray()
        try:
            if self.tls:
                conn.settimeout(5)
                conn = self.tls.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            while not self._stop.is_set():
                req = self._read_request(conn, buf)
                if req is None:
                    return
                if self.record:
                    with self._lock:
                        self.requests.append(req)
                resp = self.handler(req)
                if resp.delay:
                    if self._stop.wait(resp.delay):
                        return
                if resp.close:
                    return
                if resp.raw is not None:
                    pieces = ([resp.raw] if isinstance(resp.raw, bytes)
                              else resp.raw)
                    for piece in pieces:
                        if self._stop.is_set():
                            return
                        conn.sendall(piece)
                    if self._end(conn, resp):
                        return
                    continue
                head = [f"HTTP/1.1 {resp.status} "
                        f"{REASONS.get(resp.status, 'Status')}"]
                names = {k.lower() for k, _ in resp.headers}
                if "content-type" not in names:
                    head.append("Content-Type: application/json")
                if "content-length" not in names and resp.stream is None:
                    head.append(f"Content-Length: {len(resp.body)}")
                head += [f"{k}: {v}" for k, v in resp.headers]
                data = ("\r\n".join(head) + "\r\n\r\n").encode()
                if resp.stream is not None:
                    conn.sendall(data)
                    if not self._send_stream(conn, resp, names):
                        return
                elif resp.trickle:
                    conn.sendall(data)
                    for i in range(len(resp.body)):
                        if self._stop.wait(resp.trickle):
                            return
                        conn.sendall(resp.body[i:i + 1])
                else:
                    conn.sendall(data + resp.body)
                if self._end(conn, resp):
                    return
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


USERPOOL_ID = "pool-id_with-url?safe>chars"


def token_response(lifetime: float = 7200, userpool_id: str = USERPOOL_ID,
                   token_tag: str = "1") -> Response:
    token = make_jwt({"scoped_userpool_id": userpool_id, "tag": token_tag,
                      "exp": int(time.time() + lifetime)})
    return Response.json({"statusCode": 200, "message": "",
                          "data": {"access_token": token,
                                   "expires_in": lifetime}})


class FakeGenAuth:
    """A RawServer handler for the two endpoints, with simple knobs. The
    token endpoint answers a fresh JWT each time; trigger-webhook answers
    `envelope` (or `response` when set). Tokens are valid until the test
    calls expire_tokens(): expiry is the test's decision, not the clock's."""

    def __init__(self, lifetime: float = 7200):
        self.lifetime = lifetime  # the expires_in answered
        self._lock = threading.Lock()
        self.token_fetches = 0
        self.expiries = 0  # expire_tokens() calls
        self.envelope = {"statusCode": 200, "message": "Operation successful",
                         "requestId": "934108e5-9fbf-4d24-8da1-c330328abd6c",
                         "data": {"response": {}}}
        self.response: Response | None = None
        self.token_answer: Response | None = None
        self.valid_tokens: set[str] = set()
        self.reject_tokens = False

    def expire_tokens(self) -> None:
        """Every token issued so far is refused from now on."""
        with self._lock:
            self.valid_tokens.clear()
            self.expiries += 1

    def __call__(self, req: Request) -> Response:
        if req.path.endswith("/api/v3/get-management-token"):
            with self._lock:
                self.token_fetches += 1
                tag = str(self.token_fetches)
            if self.token_answer is not None:
                return self.token_answer
            resp = token_response(self.lifetime, token_tag=tag)
            with self._lock:
                self.valid_tokens.add(
                    json.loads(resp.body)["data"]["access_token"])
            return resp
        auth = req.header("authorization") or ""
        with self._lock:
            valid = auth[len("Bearer "):] in self.valid_tokens
        if self.reject_tokens or not valid:
            return Response.json({"statusCode": 401, "message": "token expired",
                                  "apiCode": 2020, "requestId": "r-401"},
                                 status=401)
        if self.response is not None:
            return self.response
        return Response.json(self.envelope)


def announce_and_hold(handler: Callable[[Request], Response],
                      arrived: threading.Event,
                      delay: float = 60.0) -> Callable[[Request], Response]:
    """Wraps a handler: a trigger-webhook request sets `arrived` and its
    answer is held `delay` seconds (a call in flight, for as long as a test
    needs one)."""
    def held(req: Request) -> Response:
        resp = handler(req)
        if "trigger-webhook" in req.path:
            arrived.set()
            resp = dataclasses.replace(resp, delay=delay)
        return resp
    return held


class Held:
    """Wraps a handler: each request whose path contains `path` is announced
    to the test (wait_arrival()) and then held until the test calls
    release(), only then answered by `handler`: a request in flight for as
    long as the test needs one, ended by the test rather than by a clock
    (`limit` seconds at most, so that a failed test cannot hold a server
    thread for ever)."""

    def __init__(self, handler: Callable[[Request], Response],
                 path: str = "trigger-webhook", limit: float = 60):
        self.handler = handler
        self.path = path
        self.limit = limit
        self._arrivals = threading.Semaphore(0)
        self._released = threading.Event()

    def __call__(self, req: Request) -> Response:
        if self.path in req.path:
            self._arrivals.release()
            self._released.wait(self.limit)
        return self.handler(req)

    def wait_arrival(self, timeout: float = 60) -> bool:
        """True once one more held request has arrived (each arrival counts
        once), False if none does within `timeout` seconds."""
        return self._arrivals.acquire(timeout=timeout)

    def release(self) -> None:
        """Answers every held request, and those to come at once."""
        self._released.set()


class AllInFlight:
    """Wraps a handler so that the requests `matches` picks are answered only
    once `n` of them are open at the same time: proof from the server's side
    that a client had n requests in flight at once, whatever the machine's
    speed. If they never are, `timeout` seconds on, each waiting request is
    answered 503 and `broken` is set. Later requests pass straight through."""

    def __init__(self, handler: Callable[[Request], Response], n: int,
                 matches: Callable[[Request], bool] = lambda req: True,
                 timeout: float = 30):
        self.handler = handler
        self.matches = matches
        self.broken = False
        self._barrier = threading.Barrier(n, timeout=timeout)
        self._passed = threading.Event()

    def __call__(self, req: Request) -> Response:
        if self.matches(req) and not self._passed.is_set():
            try:
                self._barrier.wait()
                self._passed.set()
            except threading.BrokenBarrierError:
                self.broken = True
                return Response(status=503, body=b"not all in flight")
        return self.handler(req)
