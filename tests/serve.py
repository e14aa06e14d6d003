"""Test servers in a process of their own, so that long runs measure the
client alone (memory, CPU) and the server does not share its GIL.

    python3 tests/serve.py mixed [--lifetime SECONDS]
    python3 tests/serve.py receiver
    python3 tests/serve.py emulator AK SK WEBHOOK_URL [--lifetime SECONDS]

prints "PORT <n>" once listening and serves until its standard input closes.
`spawn(...)` does this from a test and returns a Served: (port, stop) when
unpacked, and .command(line) for the commands below.

mixed: the two GenAuth endpoints, where trigger-webhook's webhookId picks
what happens (see MIXED): a success that echoes requestBody, or one fault.
--lifetime is the expires_in answered; tokens expire on the server only when
the test says so: the line "expire" on standard input refuses every token
issued so far and answers "EXPIRED <token fetches so far>".
receiver, emulator: genauth_c.emulator's, the emulator with webhook "wh1"
delivering to WEBHOOK_URL."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rawserver import RawServer, Response, token_response  # noqa: E402

HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"


def _chunks(total, piece=b"z" * 65536):
    yield b'{"statusCode":200,"data":"'
    for _ in range(total // len(piece)):
        yield piece


# webhookId -> the answer.
MIXED = {
    "drop": lambda b: Response(close=True),
    "reset": lambda b: Response(raw=b"HTTP/1.1 200 OK\r\nContent-Length: 90"
                                    b"\r\n\r\n{\"statusCode\":2", reset=True),
    "html": lambda b: Response(status=502, body=HTML,
                               headers=[("Content-Type", "text/html")]),
    "trunc": lambda b: Response(body=b'{"statusCode":200,"data":{"x":[1,'),
    "array": lambda b: Response(body=b'[{"statusCode":200}]'),
    "utf8": lambda b: Response(body=b'{"statusCode":200,"data":"\xff\xfe"}'),
    "deep": lambda b: Response(body=b'{"a":' + b"[" * 3000 + b"]" * 3000
                               + b"}"),
    "huge": lambda b: Response(stream=_chunks(1 << 20),
                               headers=[("Transfer-Encoding", "chunked")]),
    "slow": lambda b: Response(body=b"{}", delay=0.5),
    # Answered, then the connection ends: a FIN, a Connection: close, an RST.
    "closed": lambda b: Response.json({"statusCode": 200}, close_after=True),
    "connclose": lambda b: Response.json({"statusCode": 200},
                                         headers=[("Connection", "close")],
                                         close_after=True),
    "rst": lambda b: Response.json({"statusCode": 200}, reset=True),
    "e401": lambda b: Response.json({"statusCode": 401, "apiCode": 2020,
                                     "message": "expired"}, status=401),
    "business": lambda b: Response.json({"statusCode": 404, "apiCode": 2404,
                                         "message": "no such webhook",
                                         "requestId": "r"}),
}


class Mixed:
    def __init__(self, lifetime):
        self.lifetime = lifetime
        self.lock = threading.Lock()
        self.tokens = set()  # the tokens not expired
        self.fail_next_token = False
        self.fetches = 0

    def __call__(self, req):
        if req.path.endswith("/get-management-token"):
            with self.lock:
                self.fetches += 1
                if self.fail_next_token:
                    self.fail_next_token = False
                    return Response.json({"statusCode": 500,
                                          "message": "token service down"},
                                         status=500)
            resp = token_response(self.lifetime, token_tag=str(self.fetches))
            token = json.loads(resp.body)["data"]["access_token"]
            with self.lock:
                self.tokens.add(token)
            return resp
        # The client writes {"webhookId":"..","requestBody":..} compactly:
        # slicing it (no parsing) keeps the server fast enough for 16
        # threads of clients.
        wid, _, rest = req.body[len(b'{"webhookId":"'):].partition(b'"')
        wid = wid.decode()
        if wid == "tokfail":  # refuse the token, then fail the next fetch
            with self.lock:
                self.fail_next_token = True
            return MIXED["e401"](None)
        if wid in MIXED:
            return MIXED[wid](None)
        token = (req.header("authorization") or "")[len("Bearer "):]
        with self.lock:
            valid = token in self.tokens
        if not valid:
            return MIXED["e401"](None)
        echo = rest[len(b',"requestBody":'):-1] if rest.startswith(
            b',"requestBody":') else b"null"
        return Response(body=b'{"statusCode":200,"message":"ok","requestId":"'
                        + wid.encode() + b'","data":{"response":' + echo
                        + b"}}")


def emulator_module():
    # By path: importing genauth_c would load the C extension, which a
    # pure-Python server does not need. The emulator is a package: load its
    # __init__ with its folder as the search path, so relative imports work.
    import importlib.util
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "genauth_c", "emulator")
    spec = importlib.util.spec_from_file_location(
        "emulator_standalone", os.path.join(path, "__init__.py"),
        submodule_search_locations=[path])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def main():
    mode = sys.argv[1]
    if os.environ.get("SERVE_SWI"):
        sys.setswitchinterval(float(os.environ["SERVE_SWI"]))
    lifetime = 7200.0
    if "--lifetime" in sys.argv:
        lifetime = float(sys.argv[sys.argv.index("--lifetime") + 1])
    if mode == "mixed":
        server = RawServer(Mixed(lifetime), record=False)
        server.__enter__()
        port = server.port
    elif mode == "receiver":
        server = emulator_module().WebhookReceiver()
        server.start()
        port = server.port
    elif mode == "emulator":  # emulator AK SK WEBHOOK_URL [--lifetime S]
        ak, sk, url = sys.argv[2:5]
        server = emulator_module().Emulator(ak, sk, token_lifetime=lifetime)
        server.add_webhook("wh1", url)
        server.start()
        port = server.port
    else:
        sys.exit(f"unknown mode {mode}")
    print(f"PORT {port}", flush=True)
    for line in sys.stdin:  # until the test closes our stdin (or dies)
        if line.strip() == "expire" and mode == "mixed":
            handler = server.handler
            with handler.lock:
                handler.tokens.clear()
                fetches = handler.fetches
            print(f"EXPIRED {fetches}", flush=True)
        else:
            print(f"UNKNOWN {line.strip()}", flush=True)
    server.stop()


class Served:
    """A serve.py process: unpacks as (port, stop)."""

    def __init__(self, proc, port):
        self.proc = proc
        self.port = port

    def __iter__(self):
        return iter((self.port, self.stop))

    def command(self, line):
        """Sends one command line; returns the answer line."""
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def stop(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def spawn(*args):
    """Starts `serve.py *args`; returns a Served once it listens."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"serve.py {args}: {line!r}")
    return Served(proc, int(line.split()[1]))


if __name__ == "__main__":
    main()
