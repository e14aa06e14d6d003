"""What every test file shares: the test credentials (AK, SK), the fixtures
for a raw-socket fake GenAuth (fake, tls_fake: rawserver.py), clients closed
after the test (client_for), the token cache's test clock (token_clock),
TLS certificates and an https:// proxy (certificate, certificate_dir,
tls_proxy), and helpers (sigint_when, wait_child, free_port, refusing_port).
The emulator's own helpers are in emulator_http.py; servers in a process of
their own in serve.py."""
import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from rawserver import FakeGenAuth, RawServer, Response  # noqa: E402

AK = "AKIDexample1234"
SK = "SECRET-do-not-leak-9f8e7d"
# A call never outlives its timeout by more than this. Generous: the bound
# proves the call ends (the servers in these tests hold answers for far
# longer), not how fast a loaded machine gets there.
SLACK = 5.0


def sigint_when(event, wait=10.0):
    """Starts a thread that sends SIGINT to this process once `event` is set
    (say, when the server has the request), so the signal lands while the
    call is in flight however slow the machine. Returns (thread, sent):
    sent holds the monotonic time of the signal, empty if none was sent."""
    sent = []

    def fire():
        if event.wait(wait):
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread, sent


@pytest.fixture
def fake():
    """A raw-socket GenAuth with both endpoints; .server is the RawServer."""
    handler = FakeGenAuth()
    with RawServer(handler) as server:
        handler.server = server
        yield handler


@pytest.fixture
def client_for():
    """client_for(url, **options) -> a ManagementClient closed after the test."""
    from genauth_c import ManagementClient

    made = []

    def make(url, **kw):
        c = ManagementClient(kw.pop("access_key_id", AK),
                             kw.pop("access_key_secret", SK), host=url, **kw)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


class TokenClock:
    """What the client's token cache reads as the time: a number in a file
    (GENAUTH_TEST_CLOCK_FILE, read by clients made after this fixture). It
    stands still until the test sets it, so refresh points are crossed by
    the test's decision, never by the machine's speed."""

    def __init__(self, path, start=1000.0):
        self.path = path
        self.set(start)

    def set(self, seconds: float) -> None:
        tmp = f"{self.path}.tmp"
        with open(tmp, "w") as f:
            f.write(repr(float(seconds)))
        os.replace(tmp, self.path)  # a reader never sees a half-written file
        self.now = float(seconds)

    def advance(self, seconds: float) -> None:
        self.set(self.now + seconds)


@pytest.fixture
def token_clock(tmp_path, monkeypatch):
    clock = TokenClock(str(tmp_path / "clock"))
    monkeypatch.setenv("GENAUTH_TEST_CLOCK_FILE", clock.path)
    return clock


def stacks_of(pid):
    """Every thread's C stack in process `pid`, by gdb where it is
    installed ('' otherwise): what a child that hangs is waiting for."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return ""
    try:
        out = subprocess.run([gdb, "-p", str(pid), "-batch", "-nx",
                              "-ex", "thread apply all bt 40"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout[-30000:]


def wait_child(pid, timeout=60.0):
    """The exit code of child `pid`; kills it and fails after `timeout`,
    with its threads' stacks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    stacks = stacks_of(pid)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"child {pid} still running after {timeout} s\n{stacks}")


def free_port():
    """A loopback port nothing listens on (for refused connections)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@contextlib.contextmanager
def refusing_port():
    """A loopback port that refuses connections for as long as the block
    runs: bound, never listening. free_port's port is free only when it
    is chosen: over thousands of calls, another process's server (a second
    test suite on the host) may be given it and answer, or one of the
    client's own connections may be given it as its local port and connect
    to itself."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]
    finally:
        s.close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
         "2", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out",
         str(cert)], check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="session")
def certificate_dir(certificate, tmp_path_factory):
    """A CA directory in OpenSSL's form (SSL_CERT_DIR, CURLOPT_CAPATH)
    holding only `certificate`, named by its subject hash."""
    d = tmp_path_factory.mktemp("tls-dir")
    digest = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(certificate[0])],
        check=True, capture_output=True, text=True).stdout.strip()
    shutil.copy(certificate[0], d / f"{digest}.0")
    return d


def server_tls(certificate):
    """A server-side TLS context presenting `certificate`."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*certificate)
    return ctx


def proxy_server(tls=None):
    """A forward proxy that answers itself: it sees absolute-form targets
    (http://host/path) and CONNECT lines (which it refuses), and serves
    GenAuth's answers. An https:// proxy with `tls`."""
    handler = FakeGenAuth()

    def proxying(req):
        if req.method == "CONNECT":
            return Response(status=403, body=b"")
        return handler(req)

    return RawServer(proxying, tls=tls)


@pytest.fixture
def tls_proxy(certificate):
    """The proxy behind an https:// URL, presenting the self-signed
    certificate for 127.0.0.1 (which libcurl's built-in CA path does not
    trust)."""
    with proxy_server(server_tls(certificate)) as server:
        yield server


@pytest.fixture
def tls_fake(certificate):
    """FakeGenAuth over HTTPS with the self-signed certificate."""
    handler = FakeGenAuth()
    with RawServer(handler, tls=server_tls(certificate)) as server:
        handler.server = server
        yield handler
