"""HTTP plumbing shared by the emulator and the webhook receiver.

A threading HTTP/1.1 server on a background thread that tracks its
connections (so ``stop()`` never hangs on an idle keep-alive connection),
reads request bodies (Content-Length or chunked), and can drop or reset a
connection on purpose. A client that goes away mid-answer (broken pipe,
connection reset) is normal for a test server and is never printed as a
traceback.
"""

from __future__ import annotations

import http.client
import http.server
import re
import socket
import socketserver
import struct
import sys
import threading
from typing import Any, TypeVar

from .constants import MAX_BODY_BYTES
from .jsform import dumps

__all__ = ["BackgroundServer", "BaseHandler", "TrackingServer"]

# A client that hangs up is not the server's error.
_DISCONNECTS = (ConnectionError, TimeoutError)
_Self = TypeVar("_Self", bound="BackgroundServer")
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class TrackingServer(http.server.ThreadingHTTPServer):
    """ThreadingHTTPServer that counts and tracks its connections."""

    daemon_threads = True
    block_on_close = False  # stop() must not wait for a slow handler
    allow_reuse_address = True
    # socketserver's default backlog of 5 resets connections when many
    # clients (or many webhook deliveries) connect at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHandler], owner: BackgroundServer) -> None:
        self.owner = owner
        self._conn_lock = threading.Lock()
        self._open_conns: set[socket.socket] = set()
        self._to_reset: set[socket.socket] = set()
        self.accepted = 0
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a DNS lookup that can
        # stall; the name is not needed.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conn_lock:
            self.accepted += 1
            self._open_conns.add(request)
        self.owner._on_connection()
        super().process_request(request, client_address)

    def reset_on_close(self, conn: socket.socket) -> None:
        """Close ``conn`` with a TCP reset (RST) instead of an orderly FIN."""
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self._conn_lock:
            self._to_reset.add(conn)

    def shutdown_request(self, request: Any) -> None:
        with self._conn_lock:
            self._open_conns.discard(request)
            reset = request in self._to_reset
            self._to_reset.discard(request)
        if reset:
            self.close_request(request)  # no shutdown(SHUT_WR): that would send a FIN first
        else:
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], _DISCONNECTS):
            return
        super().handle_error(request, client_address)

    def close_all_connections(self) -> None:
        with self._conn_lock:
            conns = list(self._open_conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class BackgroundServer:
    """start/stop/url/context-manager plumbing shared by the two servers."""

    _handler_class: type[BaseHandler]
    _thread_name = "genauth-c-server"
    verbose = False
    # Seconds a connection may send nothing before it is closed. Without it
    # a client that connects and goes silent (or sends half a request) held
    # its thread for ever. 60 s, as servers commonly close idle connections:
    # the client reuses none idle over 50 s.
    idle_timeout: float | None = 60.0

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self._requested_port = port
        self._server: TrackingServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    def _on_connection(self) -> None:
        pass

    def start(self: _Self) -> _Self:
        """Bind and serve on a background thread. Returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = TrackingServer((self.host, self._requested_port), self._handler_class, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name=self._thread_name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection. Idempotent; does not hang."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a delay knob
        server.shutdown()
        server.close_all_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:PORT`` (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def _repr_fields(self) -> str:
        return ""

    def __repr__(self) -> str:
        where = f"url={self.url!r}" if self._server is not None else "not started"
        extra = self._repr_fields()
        return f"<{type(self).__name__} {where}{' ' + extra if extra else ''}>"

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class BaseHandler(http.server.BaseHTTPRequestHandler):
    """Request reading, answer writing, and deliberate connection faults."""

    server: TrackingServer
    raw_requestline: bytes
    protocol_version = "HTTP/1.1"
    # Without TCP_NODELAY, Nagle's algorithm and the client's delayed ACK
    # add ~40 ms to every keep-alive answer.
    disable_nagle_algorithm = True
    server_version = "genauth-c-emulator/0.2"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.owner.idle_timeout)

    def handle(self) -> None:
        try:
            super().handle()
        except _DISCONNECTS:
            self.close_connection = True

    def finish(self) -> None:
        try:
            super().finish()
        except _DISCONNECTS:
            pass

    def parse_request(self) -> bool:
        # The request line is read; its headers and body are not yet.
        if self.reset_before_reading(self.raw_requestline):
            self.reset()
            return False
        return super().parse_request()

    def reset_before_reading(self, request_line: bytes) -> bool:
        """True: reset the connection now, before the headers are read."""
        return False

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.owner.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))

    def read_body(self) -> bytes | None:
        """Read the request body (Content-Length or chunked). None: already answered."""
        te = (self.headers.get("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            return self._read_chunked()
        lengths = self.headers.get_all("Content-Length") or []
        if not lengths:
            return b""
        try:
            # Two lengths that differ (RFC 9112 6.3): which one frames the
            # body is a guess, and the first was taken, the rest of the
            # body read as the next request.
            if len(set(lengths)) > 1:
                raise ValueError
            n = int(lengths[0])
            if n < 0:
                raise ValueError
        except ValueError:
            self.plain_error(400)
            return None
        if n > MAX_BODY_BYTES:
            self.plain_error(413)
            return None
        return self.rfile.read(n)

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                self.close_connection = True
                return None
            digits = line.split(b";")[0].strip() or b"0"
            # Hex digits only: int() also takes '-1' (then read(-1) reads to
            # EOF, past MAX_BODY_BYTES), '+1', '0x1' and '1_0'.
            if not _CHUNK_SIZE_RE.fullmatch(digits):
                self.plain_error(400)
                return None
            size = int(digits, 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self.plain_error(413)
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(16)

    def plain_error(self, status: int) -> None:
        self.close_connection = True
        self.write(status, dumps({"statusCode": status, "message": http.client.responses.get(status, "error")}))

    def write(
        self,
        status: int,
        data: bytes,
        content_type: str = "application/json; charset=utf-8",
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        if not self.answering(status):
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers or ():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.wfile.flush()

    def answering(self, status: int) -> bool:
        """Called before an answer is written; False: do not write it."""
        return True

    def drop(self) -> None:
        """Close the connection without a single byte of answer (a FIN)."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def reset(self) -> None:
        """Abort the connection with a TCP reset, nothing answered."""
        self.close_connection = True
        self.server.reset_on_close(self.connection)

    def do_GET(self) -> None:
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def dispatch(self) -> None:
        raise NotImplementedError
