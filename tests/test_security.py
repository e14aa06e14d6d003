"""Security: TLS verified by default, secrets never shown, nothing injected
into headers, no redirects, credentials only to the configured host or the
proxy the environment names."""
import asyncio
import json
import logging
import os
import pickle
import re
import ssl
import subprocess
import sys
import textwrap
import traceback
import warnings

import pytest

from conftest import AK, SK, free_port, proxy_server, server_tls
from rawserver import FakeGenAuth, RawServer, Response, make_jwt
from test_retries import call_in

import genauth_c
from genauth_c import ManagementClient
from genauth_c.emulator import Emulator

TESTS = os.path.dirname(os.path.abspath(__file__))


# ---- TLS ---------------------------------------------------------------------

def test_tls_verified_by_default_nothing_sent(tls_fake, client_for):
    client = client_for(tls_fake.server.url)  # no ca_bundle, no opt-out
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert info.value.curl_code == 60  # peer certificate not trusted
    assert "proxy" not in str(info.value)  # there is none to blame
    assert tls_fake.server.requests == []  # the secret never went out


def test_tls_hostname_checked_even_with_a_trusted_ca(tls_fake, certificate,
                                                     client_for):
    # The certificate names 127.0.0.1, not localhost.
    client = client_for(f"https://localhost:{tls_fake.server.port}",
                        ca_bundle=str(certificate[0]))
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert info.value.curl_code == 60
    assert tls_fake.server.requests == []


@pytest.fixture(scope="session")
def refused_certificates(tmp_path_factory):
    """{kind: (chain.pem, key.pem)} for a server at 127.0.0.1, each refused
    for one reason by a client trusting "ca.pem" (a CA of its own) beside
    them: expired, not yet valid, for another host, signed by an
    intermediate the server leaves out, or for clients only (its extended
    key usage). EC keys: made in milliseconds."""
    d = tmp_path_factory.mktemp("refused")
    (d / "index.txt").write_text("")
    (d / "serial").write_text("01\n")
    (d / "ca.cnf").write_text(textwrap.dedent("""
        [ca]
        default_ca = d
        [d]
        database = index.txt
        new_certs_dir = .
        serial = serial
        default_md = sha256
        policy = any
        unique_subject = no
        [any]
        commonName = supplied
        [ip]
        subjectAltName = IP:127.0.0.1
        [other_host]
        subjectAltName = DNS:api.example.com
        [client_only]
        subjectAltName = IP:127.0.0.1
        extendedKeyUsage = clientAuth
        [ca_ext]
        basicConstraints = critical,CA:TRUE
        keyUsage = critical,keyCertSign,cRLSign
        """))

    def run(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True,
                       capture_output=True)

    def key_and_request(name, cn):
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-subj", f"/CN={cn}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr")

    def sign(name, issuer, ext, start="-days", end="2"):
        run("ca", "-batch", "-config", "ca.cnf", "-notext", "-cert",
            f"{issuer}.pem", "-keyfile", f"{issuer}.key", "-in",
            f"{name}.csr", "-out", f"{name}.pem", "-extensions", ext,
            *([start, end] if start == "-days" else
              ["-startdate", start, "-enddate", end]))

    run("req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj",
        "/CN=Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-keyout",
        "ca.key", "-out", "ca.pem")
    key_and_request("intermediate", "Test Intermediate")
    sign("intermediate", "ca", "ca_ext")
    made = {}
    for kind, issuer, ext, dates in [
            ("expired", "ca", "ip", ("20200101000000Z", "20200201000000Z")),
            ("not yet valid", "ca", "ip",
             ("20400101000000Z", "20400201000000Z")),
            ("another host", "ca", "other_host", ()),
            ("incomplete chain", "intermediate", "ip", ()),
            ("for clients only", "ca", "client_only", ())]:
        name = kind.replace(" ", "-")
        key_and_request(name, "127.0.0.1")
        sign(name, issuer, ext, *dates)
        made[kind] = (d / f"{name}.pem", d / f"{name}.key")
    return d / "ca.pem", made


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
@pytest.mark.parametrize("kind, problem", [
    ("self-signed", "self-signed certificate"),
    ("expired", "certificate has expired"),
    ("not yet valid", "certificate is not yet valid"),
    # libcurl 8 says "target ipv4 address '127.0.0.1'", 7.88 "target host
    # name '127.0.0.1'".
    ("another host", "no alternative certificate subject name matches "
                     "target "),
    ("incomplete chain", "unable to get local issuer certificate"),
    ("for clients only", "unsuitable certificate purpose")])
def test_a_refused_certificate_is_named_with_its_url(
        certificate, refused_certificates, monkeypatch, mode, kind, problem):
    """The message said what was wrong with the certificate ("SSL
    certificate problem: certificate has expired") but not whose it was:
    a log line of a program with several clients named no host. It begins
    with the URL asked, as a failed handshake's does; nothing is sent."""
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    monkeypatch.delenv("ALL_PROXY", raising=False)
    ca, made = refused_certificates
    options = dict(timeout=10, ca_bundle=str(ca))
    if kind == "self-signed":
        served = certificate
        del options["ca_bundle"]
    else:
        served = made[kind]
    handler = FakeGenAuth()
    with RawServer(handler, tls=server_tls(served)) as server:
        try:
            error = call_in(mode, dict(options, host=server.url))
        except genauth_c.TransportError as e:
            error = e
        assert isinstance(error, genauth_c.TransportError), error
        assert error.curl_code == 60, error
        assert str(error).startswith(
            f"{server.url}/api/v3/get-management-token: "), error
        assert problem in str(error), error
        assert "proxy" not in str(error)
        assert server.requests == []


# ---- secrets never shown ----------------------------------------------------

def exception_text(e):
    """Everything a user (or a logger, or a crash reporter) could see."""
    parts = ["".join(traceback.format_exception(e)), repr(e), str(e),
             repr(e.args), repr(getattr(e, "__notes__", None))]
    parts += [repr(v) for v in vars(e).values()]
    for name in ("curl_code", "http_status", "excerpt", "response", "message",
                 "status_code", "api_code", "request_id"):
        parts.append(repr(getattr(e, name, None)))
    # The strings themselves, unescaped, wherever they sit in attributes.
    stack = list(vars(e).values()) + list(e.args)
    while stack:
        v = stack.pop()
        if isinstance(v, (str, bytes)):
            parts.append(v if isinstance(v, str)
                         else v.decode("utf-8", "replace"))
        elif isinstance(v, dict):
            stack += list(v.keys()) + list(v.values())
        elif isinstance(v, (list, tuple)):
            stack += list(v)
    chained = e.__cause__ or e.__context__
    if chained is not None:
        parts.append(exception_text(chained))
    return "\n".join(parts)


def test_secret_and_token_never_shown(fake, client_for, caplog, capfd):
    """Every way a call can fail, with logging at DEBUG and all warnings
    on: neither the secret nor a token shows anywhere."""
    leaks = []
    token_body = {}

    def echoing(req):
        # Hostile: the token endpoint's error pages quote what it got.
        if "get-management-token" in req.path and fake.token_answer == "echo":
            return Response(status=503, body=b"<html>" + req.body)
        if "get-management-token" in req.path and fake.token_answer == "half":
            return Response(body=req.body[:-3])
        return fake(req)

    fake.server.handler = echoing
    client = client_for(fake.server.url, timeout=2.0, use_unverified_ssl=False)
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        client.trigger_webhook("wh1")
        token = next(iter(fake.valid_tokens))
        token_body["t"] = token
        failures = [
            ("token refused", lambda: setattr(fake, "token_answer",
                                              Response.json({"statusCode": 401,
                                                             "message": "no"}))),
            ("token page echoes the request", lambda: setattr(
                fake, "token_answer", "echo")),
            ("token answer cut", lambda: setattr(fake, "token_answer", "half")),
            ("token endpoint times out", lambda: setattr(
                fake, "token_answer", Response(delay=5))),
            ("api answers garbage", lambda: setattr(
                fake, "response", Response(body=b"<html>"))),
        ]
        for what, arrange in failures:
            fake.valid_tokens.clear()  # every call needs a new token
            fake.token_answer = fake.response = None
            arrange()
            try:
                client.trigger_webhook("wh1")
            except genauth_c.GenAuthError as e:
                text = exception_text(e)
                if SK in text or token in text:
                    leaks.append((what, text))
            else:
                pytest.fail(f"{what}: no exception")
        fake.token_answer = fake.response = None
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        for bad in ({"x": float("nan")}, {"x": object()}, {1j: 1}):
            try:
                client.trigger_webhook("wh1", request_body=bad)
            except (TypeError, ValueError) as e:
                text = exception_text(e)
                if SK in text:
                    leaks.append(("bad input", text))
            else:
                pytest.fail(f"{bad!r} was accepted")
    out, err = capfd.readouterr()
    shown = [repr(client), str(client), out, err, caplog.text]
    shown += [str(w.message) for w in caught]
    for s in shown:
        for t in [SK, *fake.valid_tokens, token]:
            if t in s:
                leaks.append(("shown", s))
    assert leaks == []


def trigger_errors_everywhere(url, client_for, **options):
    """The exceptions of trigger_webhook("wh1") failing once as a single
    call, twice in a batch and once on an event loop, with
    raise_for_status=True."""
    options.update(timeout=5, raise_for_status=True)
    client = client_for(url, **options)
    errors = [pytest.raises(genauth_c.GenAuthError, client.trigger_webhook,
                            "wh1").value]
    errors += client.trigger_webhooks([{"webhook_id": "wh1"}] * 2)

    async def calls():
        async with genauth_c.AsyncManagementClient(AK, SK, host=url,
                                                   **options) as aclient:
            return await asyncio.gather(aclient.trigger_webhook("wh1"),
                                        return_exceptions=True)

    return errors + asyncio.run(calls())


@pytest.mark.parametrize("quoted", ["token", "secret"])
@pytest.mark.parametrize("field", ["message", "requestId", "data"])
def test_api_error_quoting_a_credential_shows_none_of_the_answer(
        fake, client_for, caplog, quoted, field):
    """An error envelope that echoes the request's Authorization header (or
    the secret): the APIError, single, batched or on an event loop, keeps
    its statusCode and apiCode and shows nothing else of it, nor does the
    DEBUG line."""

    def echoing(req):
        if "trigger-webhook" not in req.path:
            return fake(req)
        auth = req.header("authorization") or ""
        text = f"refused: {auth}" if quoted == "token" else f"refused: {SK}"
        envelope = {"statusCode": 403, "apiCode": 1403, "message": "no",
                    "requestId": "r1", "data": {}}
        envelope["data" if field == "data" else field] = (
            {"echo": text} if field == "data" else text)
        return Response.json(envelope)

    fake.server.handler = echoing
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    errors = trigger_errors_everywhere(fake.server.url, client_for)
    tokens = [r.header("authorization")[len("Bearer "):]
              for r in fake.server.requests if "trigger-webhook" in r.path]
    assert len(tokens) == 4
    for e in errors:
        assert type(e) is genauth_c.APIError, e
        assert (e.status_code, e.api_code, e.http_status) == (403, 1403, 200)
        assert (e.message, e.request_id, e.response) == (None, None, None)
        text = exception_text(e) + caplog.text
        for secret in [SK, *tokens]:
            assert secret not in text


@pytest.mark.parametrize("secret", ["e", "S", "no"])
def test_api_error_keeps_its_message_whatever_the_secret(
        fake, client_for, secret):
    """The secret is never sent with an API call: a short one (a test
    key) that an error envelope holds by chance ("e" in "message", "S" in
    "Sorry") leaves the APIError its message and requestId."""

    def refusing(req):
        if "trigger-webhook" not in req.path:
            return fake(req)
        return Response.json({"statusCode": 404, "apiCode": 2404,
                              "message": "Sorry, no webhook",
                              "requestId": "r1"})

    fake.server.handler = refusing
    client = client_for(fake.server.url, access_key_secret=secret,
                        timeout=5, raise_for_status=True)
    with pytest.raises(genauth_c.APIError) as info:
        client.trigger_webhook("wh1")
    assert (info.value.message, info.value.request_id) == (
        "Sorry, no webhook", "r1")


@pytest.mark.parametrize("answer", [
    lambda req: Response(status=400, body=req.body),  # echoes the JSON
    lambda req: Response.json({"statusCode": 400, "message":
                               "invalid body: " + req.body.decode()}),
])
def test_token_refusal_quoting_the_secret_does_not_leak_it(fake, client_for,
                                                           answer):
    """Validation errors often quote the request: the secret must not ride
    along into AuthError's message or .response."""
    def handler(req):
        if "get-management-token" in req.path:
            return answer(req)
        return fake(req)

    fake.server.handler = handler
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.AuthError) as info:
        client.trigger_webhook("wh1")
    assert SK not in exception_text(info.value)


# ---- nothing becomes a header that could end a header -----------------------

BAD_BYTES = ["\r", "\n", "\r\n", "\x00", "a\r\nX-Injected: 1"]


@pytest.mark.parametrize("bad", BAD_BYTES)
@pytest.mark.parametrize("option", ["access_key_id", "lang", "tenant_id",
                                    "host"])
def test_header_bound_options_refuse_crlf_nul(fake, option, bad):
    kw = {"access_key_id": AK, "access_key_secret": SK,
          "host": fake.server.url}
    if option == "host":
        kw["host"] = fake.server.url + bad
    elif option == "access_key_id":
        kw["access_key_id"] = AK + bad
    else:
        kw[option] = "v" + bad
    with pytest.raises(ValueError, match=option):
        ManagementClient(**kw)
    assert fake.server.connections == 0


@pytest.mark.parametrize("bad", ["\x00", "a\x00b"])
def test_secret_with_nul_refused(bad):
    with pytest.raises(ValueError, match="access_key_secret"):
        ManagementClient(AK, bad)


CONTROLLED_SECRETS = [SK + "\n", SK + "\r\n", "s\r\nX-Injected: 1", SK + "\t",
                      "\x1b" + SK, SK[:6] + "\x7f" + SK[6:]]


@pytest.mark.parametrize("secret", CONTROLLED_SECRETS)
@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("cls", [ManagementClient, genauth_c.AsyncManagementClient])
def test_secret_with_control_characters_refused(fake, cls, auth, secret):
    """A secret read from a file with its line end (or holding any control
    character) is refused as the key id is, before anything is sent, rather
    than failing at the server as wrong keys. The message never quotes it."""
    with pytest.raises(ValueError) as info:
        cls(AK, secret, host=fake.server.url, auth=auth)
    assert str(info.value) == ("access_key_secret: must not contain CR, LF or "
                               "other control characters")
    assert SK not in exception_text(info.value)
    assert fake.server.connections == 0


class _Pickled:
    """Pickles as what `reduced` (a client's __reduce__) says: a client
    pickled by a version that took any secret."""

    def __init__(self, reduced):
        self.reduced = reduced

    def __reduce__(self):
        return self.reduced


@pytest.mark.parametrize("cls", [ManagementClient, genauth_c.AsyncManagementClient])
def test_unpickled_secret_with_a_line_end_refused(fake, cls):
    client = cls(AK, SK, host=fake.server.url)
    fn, args = client.__reduce__()
    options = args[-1][1] if cls is not ManagementClient else args[1]
    options["access_key_secret"] = SK + "\n"
    data = pickle.dumps(_Pickled((fn, args)))
    with pytest.raises(ValueError, match="^access_key_secret: must not contain CR, LF") as info:
        pickle.loads(data)
    assert SK not in exception_text(info.value)
    assert fake.server.connections == 0


@pytest.mark.parametrize("token", [
    "eyJ.a\r\nX-Injected: 1.c", "eyJ.a\nX-Injected: 1.c", "eyJ.a\x7f.c",
    # U+0000 (JSON's \u0000), where a C string would cut the token: not
    # sent cut short, refused as the others.
    "eyJ.a\x00b.c", make_jwt({"scoped_userpool_id": "p"}) + "\x00b",
])
def test_token_with_control_characters_refused(fake, client_for, token):
    fake.token_answer = Response.json({"statusCode": 200, "data": {
        "access_token": token, "expires_in": 7200}})
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.AuthError, match="control characters"):
        client.trigger_webhook("wh1")
    assert [r for r in fake.server.requests if "trigger" in r.path] == []


@pytest.mark.parametrize("pool", ["p\r\nX-Injected: 1", "p\nx", "p\x01",
                                  "p\x00x"])
def test_userpool_claim_with_control_characters_refused(fake, client_for,
                                                        pool):
    fake.token_answer = Response.json({"statusCode": 200, "data": {
        "access_token": make_jwt({"scoped_userpool_id": pool}),
        "expires_in": 7200}})
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.AuthError, match="control characters"):
        client.trigger_webhook("wh1")
    assert [r for r in fake.server.requests if "trigger" in r.path] == []


def test_request_headers_values_stay_in_the_json_body(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1", request_headers={"X-A": "b\r\nX-Injected: 1",
                                                   "X-\r\nB": "\x00"})
    (req,) = [r for r in fake.server.requests if "trigger" in r.path]
    assert req.header("X-Injected") is None
    assert req.json()["requestHeaders"] == {"X-A": "b\r\nX-Injected: 1",
                                            "X-\r\nB": "\x00"}


# ---- credentials only to the configured host ---------------------------------

def test_only_the_configured_host_is_contacted(fake, client_for):
    """A redirect of the token request (307 keeps the POST body, and so the
    secret) to another host is not followed."""
    with RawServer(FakeGenAuth()) as elsewhere:
        fake.token_answer = Response(status=307, headers=[
            ("Location", elsewhere.url + "/api/v3/get-management-token")])
        client = client_for(fake.server.url)
        with pytest.raises(genauth_c.DecodeError):
            client.trigger_webhook("wh1")
        assert elsewhere.connections == 0
    for r in fake.server.requests:
        assert r.header("host") == f"127.0.0.1:{fake.server.port}"


# ---- proxies from the environment ---------------------------------------------

PROXY_CHILD = textwrap.dedent("""
    import asyncio, json, sys
    import genauth_c
    out = {}
    options = json.loads(sys.argv[2])
    engine = options.pop("engine", "sync")
    client = getattr(genauth_c, {"sync": "ManagementClient",
                                 "async": "AsyncManagementClient"}[engine])(
        %r, %r, host=sys.argv[1], timeout=3, **options)
    try:
        answer = client.trigger_webhook("wh1")
        if engine == "async":
            answer = asyncio.run(answer)
        out["status"] = answer["statusCode"]
    except genauth_c.GenAuthError as e:
        out["error"] = type(e).__name__
        out["curl_code"] = getattr(e, "curl_code", None)
        out["message"] = str(e)
    print(json.dumps(out))
""") % (AK, SK)


def run_child(host, env_extra, **options):
    """One call to `host` in a child process, by a client made with
    `options` (engine="async": an AsyncManagementClient). Its environment
    names proxies and CA stores (SSL_CERT_FILE, SSL_CERT_DIR) only as
    `env_extra` does."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in ("http_proxy", "https_proxy", "all_proxy",
                                "no_proxy", "ssl_cert_file", "ssl_cert_dir")}
    env.update(env_extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run([sys.executable, "-c", PROXY_CHILD, host,
                           json.dumps(options)], env=env,
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture
def proxy():
    with proxy_server() as server:
        yield server


PROXY_PASSWORD = "pr0xy-Passw0rd-never-shown"


@pytest.mark.parametrize("proxy_url", [
    # libcurl's own messages quote the proxy as given: its scheme refused,
    "ftp://proxyuser:%s@127.0.0.1:9" % PROXY_PASSWORD,
    # its syntax refused (a '/' in the password ends the authority early),
    "http://proxyuser:%s/x@127.0.0.1:9" % PROXY_PASSWORD,
    # or cut at libcurl's 255 bytes inside the user name and password.
    "ftp://" + "u" * 200 + ":%s@127.0.0.1:9" % PROXY_PASSWORD,
], ids=["scheme", "syntax", "cut"])
@pytest.mark.parametrize("engine", ["call", "batch", "async"])
def test_a_proxy_password_from_the_environment_is_never_shown(
        fake, monkeypatch, caplog, proxy_url, engine):
    """A proxy's user name and password (http_proxy=http://user:pw@host)
    are a credential: libcurl quotes the proxy in some of its errors, and
    neither those exceptions nor their DEBUG lines show them."""
    monkeypatch.setenv("http_proxy", proxy_url)
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    client = ManagementClient(AK, SK, host=fake.server.url, timeout=3,
                              max_retries=0)
    with client:
        if engine == "call":
            with pytest.raises(genauth_c.TransportError) as info:
                client.trigger_webhook("wh1")
            error = info.value
        elif engine == "batch":
            [error] = client.trigger_webhooks([{"webhook_id": "wh1"}])
            assert isinstance(error, genauth_c.TransportError)
        else:
            async def call():
                async with genauth_c.AsyncManagementClient(
                        AK, SK, host=fake.server.url, timeout=3,
                        max_retries=0) as aclient:
                    await aclient.trigger_webhook("wh1")
            with pytest.raises(genauth_c.TransportError) as info:
                asyncio.run(call())
            error = info.value
    text = exception_text(error)
    assert "proxy" in str(error).lower(), str(error)  # still says what failed
    for shown in (text, caplog.text):
        assert PROXY_PASSWORD[:6] not in shown
        assert "proxyuser" not in shown and "uuuuuuuu" not in shown
    assert fake.server.requests == []


def test_http_proxy_from_the_environment(fake, proxy):
    got = run_child(fake.server.url, {"http_proxy": proxy.url})
    assert got == {"status": 200}
    assert fake.server.requests == []  # everything went through the proxy
    targets = [r.path for r in proxy.requests]
    assert targets == [fake.server.url + "/api/v3/get-management-token",
                       fake.server.url + "/api/v3/trigger-webhook"]


def test_no_proxy_honoured(fake, proxy):
    got = run_child(fake.server.url, {"http_proxy": proxy.url,
                                      "no_proxy": "127.0.0.1"})
    assert got == {"status": 200}
    assert proxy.requests == []
    assert len(fake.server.requests) == 2


def test_https_proxy_tunnels_and_sees_no_secret(tls_fake, proxy):
    """https goes through the proxy as a CONNECT tunnel: the proxy learns
    the host and port only. (This proxy refuses the tunnel.)"""
    got = run_child(tls_fake.server.url, {"https_proxy": proxy.url})
    assert got["error"] == "TransportError"
    # A refused tunnel sent nothing to the server: tried again (max_retries
    # 2, within the timeout), each time a CONNECT only.
    assert 1 <= len(proxy.requests) <= 3
    for r in proxy.requests:
        assert r.method == "CONNECT"
        assert r.path == f"127.0.0.1:{tls_fake.server.port}"
        assert SK.encode() not in r.raw
    assert tls_fake.server.requests == []


@pytest.mark.parametrize("trust,engine", [
    ("SSL_CERT_FILE", "sync"), ("SSL_CERT_DIR", "sync"), ("ca_bundle", "sync"),
    ("SSL_CERT_FILE", "async")])
def test_https_proxy_for_an_http_host_trusted_like_the_api(
        fake, tls_proxy, certificate, certificate_dir, trust, engine):
    """A client of an http:// host makes one TLS connection: to its
    https:// proxy. That proxy is verified against the CAs the API would
    be: the store the client finds (SSL_CERT_FILE, SSL_CERT_DIR) or
    ca_bundle, not libcurl's built-in path alone. The asyncio client's
    connections are made the same way."""
    env = {"http_proxy": tls_proxy.url}
    options = {"engine": engine}
    if trust == "ca_bundle":
        options["ca_bundle"] = str(certificate[0])
    elif trust == "SSL_CERT_FILE":
        env[trust] = str(certificate[0])
    else:
        env[trust] = str(certificate_dir)
    got = run_child(fake.server.url, env, **options)
    assert got == {"status": 200}
    assert fake.server.requests == []  # everything went through the proxy
    targets = [r.path for r in tls_proxy.requests]
    assert targets == [fake.server.url + "/api/v3/get-management-token",
                       fake.server.url + "/api/v3/trigger-webhook"]


@pytest.mark.parametrize("unverified", [False, True])
def test_https_proxy_for_an_https_host_trusted_like_the_api(
        tls_fake, tls_proxy, certificate, unverified):
    """The tunnel to an https:// host is opened over the proxy's own TLS,
    verified against the store the client finds, with use_unverified_ssl
    too (which is about the API server only): the CONNECT reaches the
    proxy (which refuses it)."""
    got = run_child(tls_fake.server.url,
                    {"https_proxy": tls_proxy.url,
                     "SSL_CERT_FILE": str(certificate[0])},
                    use_unverified_ssl=unverified)
    assert got["error"] == "TransportError"
    assert tls_proxy.requests  # the proxy's TLS was accepted
    for r in tls_proxy.requests:
        assert r.method == "CONNECT"
        assert r.path == f"127.0.0.1:{tls_fake.server.port}"
    assert tls_fake.server.requests == []


@pytest.mark.parametrize("unverified", [False, True])
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_untrusted_https_proxy_gets_nothing(fake, tls_fake, tls_proxy,
                                            scheme, unverified):
    """An https:// proxy whose certificate no CA the client trusts vouches
    for is refused before anything is sent to it, use_unverified_ssl or
    not."""
    server = (fake if scheme == "http" else tls_fake).server
    got = run_child(server.url, {f"{scheme}_proxy": tls_proxy.url},
                    use_unverified_ssl=unverified)
    assert got["error"] == "TransportError", got
    assert got["curl_code"] == 60, got  # the peer's certificate
    # libcurl says "SSL certificate problem: self-signed certificate" for
    # either peer: the message says whose it was (with use_unverified_ssl,
    # the one certificate still checked).
    assert "the https:// proxy's certificate" in got["message"], got
    assert tls_proxy.requests == []
    assert server.requests == []

@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_plain_http_proxy_given_as_https_is_blamed_not_the_host(scheme):
    """https_proxy=https://... for a proxy that speaks plain HTTP fails the
    TLS handshake with the proxy (curl code 35). The message said the API
    server's handshake had failed, named the API's URL, and told to write
    host with http://: the host was never reached and was right."""
    with Emulator("AK", "SK") as plain:  # answers a TLS hello with HTTP 400
        proxy_url = plain.url.replace("http://", "https://")
        host = f"{scheme}://127.0.0.1:{free_port()}"  # never reached
        got = run_child(host, {f"{scheme}_proxy": proxy_url}, max_retries=0)
    assert got["error"] == "TransportError" and got["curl_code"] == 35, got
    message = got["message"]
    assert message.startswith(
        "the TLS handshake with the https:// proxy failed: "), message
    assert message.endswith(
        " (SSL connect error); a proxy that speaks plain HTTP fails it so: if "
        "it is one, its URL (https_proxy, http_proxy, all_proxy) begins with "
        "http://"), message
    assert "host begins with" not in message and host not in message




@pytest.mark.parametrize("secret", ['SECRET-with-"quote"-9f8e', "SECRET-ü-中-9f8e",
                                    "SECRET/with\\backslash-9f8e"])
def test_token_refusal_quoting_an_escaped_secret_does_not_leak_it(
        fake, client_for, secret):
    """The echo is JSON: a secret with characters JSON escapes (or that an
    ensure_ascii server writes as \\uXXXX) is not its raw bytes in the body,
    but is again once parsed."""
    def handler(req):
        if "get-management-token" in req.path:
            got = json.loads(req.body)
            return Response.json({"statusCode": 400,
                                  "message": f"bad body: {got}",
                                  "data": got})  # ensure_ascii, escaped
        return fake(req)

    fake.server.handler = handler
    client = client_for(fake.server.url, access_key_secret=secret)
    with pytest.raises(genauth_c.AuthError) as info:
        client.trigger_webhook("wh1")
    assert secret not in exception_text(info.value)


@pytest.mark.parametrize("secret", ['SECRET-with-"quote"-9f8e',
                                    "SECRET/with\\backslash-9f8e",
                                    "SECRET-\u00fc-\u4e2d-9f8e"])
@pytest.mark.parametrize("echo", ["body text", "ensure_ascii", "twice"])
def test_token_refusal_quoting_the_request_body_does_not_leak_the_secret(
        fake, client_for, caplog, secret, echo):
    """A validation error that quotes the request's body as text holds the
    secret as that JSON wrote it ('"' as \\", non-ASCII as \\u00fc from an
    ensure_ascii writer), not as its raw characters, even once parsed: the
    refusal must not show it in that form either, in the AuthError or the
    DEBUG line."""
    def handler(req):
        if "get-management-token" not in req.path:
            return fake(req)
        text = req.body.decode()
        if echo == "ensure_ascii":
            text = json.dumps(json.loads(text))
        elif echo == "twice":  # quoted JSON inside quoted JSON
            text = json.dumps({"request": text})
        return Response.json({"statusCode": 400, "apiCode": 1400,
                              "message": f"invalid body: {text}"})

    fake.server.handler = handler
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    client = client_for(fake.server.url, access_key_secret=secret)
    with pytest.raises(genauth_c.AuthError) as info:
        client.trigger_webhook("wh1")
    text = exception_text(info.value) + caplog.text
    assert "quoted the secret" in str(info.value)
    forms = {secret, json.dumps(secret)[1:-1],
             json.dumps(secret, ensure_ascii=False)[1:-1]}
    for form in forms:
        for piece in (form[:10], form[-10:]):
            assert piece not in text, (form, text)


@pytest.mark.parametrize("secret", ["hook-secret-\u00fc-0123456789",
                                    "hook-secret/0123456789"])
def test_an_answer_quoting_the_webhook_secret_escaped_shows_none_of_it(
        fake, client_for, secret):
    """An envelope whose message quotes the body as a writer that escapes
    non-ASCII (Python's json.dumps) or '/' (PHP's json_encode) writes it
    holds the webhook secret in that form: hidden as the plain one is."""
    def handler(req):
        if "webhook" not in req.path:
            return fake(req)
        text = json.dumps(json.loads(req.body)).replace("/", "\\/")
        return Response.json({"statusCode": 400, "apiCode": 1400,
                              "message": "bad: " + text})

    fake.server.handler = handler
    client = client_for(fake.server.url, raise_for_status=True)
    with pytest.raises(genauth_c.APIError) as info:
        client.create_webhook("application/json", ["test"], "https://x", "n",
                              secret=secret)
    assert info.value.response is None and info.value.status_code == 400
    assert "0123456789" not in exception_text(info.value)


@pytest.mark.parametrize("answer", [
    {"statusCode": "200", "data": "token"},  # a string: no 200
    {"statusCode": 201, "data": "token"},
    {"statusCode": 400, "message": "try again", "data": "token"},
    {"statusCode": 500, "access_token": "token"},
])
def test_token_refusal_carrying_a_token_does_not_hand_it_out(
        fake, client_for, caplog, answer):
    """An answer that is no success but carries an access_token anyway is a
    refusal: its token, which the server did issue, must not reach the
    AuthError (its .response) nor the DEBUG line."""
    token = make_jwt({"scoped_userpool_id": "pool-1"})
    grant = {"access_token": token, "expires_in": 7200}
    body = {k: (grant if v == "token" else token if k == "access_token" else v)
            for k, v in answer.items()}

    def handler(req):
        if "get-management-token" in req.path:
            return Response.json(body)
        return fake(req)

    fake.server.handler = handler
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.AuthError) as info:
        client.trigger_webhook("wh1")
    assert info.value.response is None
    assert "carried an access_token" in str(info.value)
    text = exception_text(info.value) + caplog.text
    assert token not in text and token.rsplit(".", 1)[1] not in text


def test_decode_error_excerpt_masks_the_token(fake, client_for):
    """An error page that echoes the request headers must not hand the
    Bearer token to whoever logs the exception."""
    def handler(req):
        if "trigger-webhook" in req.path:
            return Response(status=400, body=b"<html>bad request: " +
                            req.raw[:400] + b"</html>",
                            headers=[("Content-Type", "text/html")])
        return fake(req)

    fake.server.handler = handler
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.DecodeError) as info:
        client.trigger_webhook("wh1")
    token = next(iter(fake.valid_tokens))
    excerpt = info.value.excerpt
    assert b"Bearer ***" in excerpt
    assert token.encode() not in excerpt and token[:8].encode() not in excerpt


def escape_every_character(text):
    """`text` as a JSON writer may write it: every character as \\uXXXX."""
    return "".join(f"\\u{ord(c):04x}" for c in text)


def unescaped(text):
    """`text` with the JSON escapes in it decoded, wherever they stand."""
    return re.sub(r'\\(u[0-9a-fA-F]{4}|["\\/])',
                  lambda m: chr(int(m[1][1:], 16)) if m[1][0] == "u" else m[1],
                  text)


@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("quoted", ["credential", "webhook secret"])
@pytest.mark.parametrize("escape", [escape_every_character,
                                    lambda text: text.replace("/", "\\/")])
def test_decode_error_excerpt_masks_an_escaped_credential(
        fake, client_for, auth, quoted, escape):
    """A page that is not JSON but quotes the request as JSON text does
    (PHP's json_encode writes '/' as \\/, an ensure_ascii writer non-ASCII
    as \\uXXXX) holds the token, the signature or the webhook secret
    escaped: the excerpt hides them in that form too, whole or cut short."""
    secret = "hook/s\u00e9cret-0123456789"

    def handler(req):
        if "webhook" not in req.path:
            return fake(req)
        value = req.header("authorization") if quoted == "credential" \
            else req.json()["secret"]
        echo = escape(json.dumps(value, ensure_ascii=False))
        return Response(status=400, body=f"<p>refused: {echo}</p>".encode())

    fake.server.handler = handler
    client = client_for(fake.server.url, auth=auth)
    with pytest.raises(genauth_c.DecodeError) as info:
        client.create_webhook("application/json", ["test"], "https://x", "n",
                              secret=secret)
    sent = fake.server.requests[-1].header("authorization")
    credential = sent.rsplit(":", 1)[1] if auth == "signature" else sent[7:]
    hidden = credential if quoted == "credential" else secret
    excerpt = unescaped(info.value.excerpt.decode())
    assert excerpt.startswith("<p>refused: ")
    for i in range(len(hidden) - 7):
        assert hidden[i:i + 8] not in excerpt, (hidden, excerpt)


@pytest.mark.parametrize("value", ["zh\tCN", "zh\x01", "zh\x7f"])
def test_control_characters_refused_in_header_options(value):
    with pytest.raises(ValueError, match="control"):
        genauth_c.ManagementClient("AK", "SK", lang=value)
    with pytest.raises(ValueError, match="control"):
        genauth_c.ManagementClient("AK", "SK", tenant_id=value)


@pytest.mark.parametrize("echo", ["envelope", "page"])
def test_an_answer_quoting_the_signature_shows_none_of_it(fake, client_for,
                                                           caplog, echo):
    """auth="signature": an error page (or envelope) that echoes the
    request's Authorization header must not hand its HMAC to whoever logs
    the exception or the DEBUG line, as it does not a Bearer token."""
    def handler(req):
        if "trigger-webhook" not in req.path:
            return fake(req)
        auth = req.header("authorization") or ""
        if echo == "page":
            return Response(status=400, body=f"<html>refused: {auth}".encode())
        return Response.json({"statusCode": 403, "apiCode": 1403,
                              "message": f"refused: {auth}",
                              "requestId": f"r {auth}"})

    fake.server.handler = handler
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    errors = trigger_errors_everywhere(fake.server.url, client_for,
                                       auth="signature")
    signatures = [r.header("authorization").rsplit(":", 1)[1]
                  for r in fake.server.requests if "trigger-webhook" in r.path]
    assert len(signatures) == 4
    for e in errors:
        assert isinstance(e, genauth_c.DecodeError if echo == "page"
                          else genauth_c.APIError), e
        text = exception_text(e) + caplog.text
        for signature in signatures:
            assert signature not in text and signature[:8] not in text


HOOK_SECRET = "hook-secret-0123456789"


@pytest.mark.parametrize("auth", ["token", "signature"])
@pytest.mark.parametrize("echo", ["envelope", "page"])
@pytest.mark.parametrize("method,args", [
    ("create_webhook", ("application/json", ["test"], "https://x", "n")),
    ("update_webhook", ("wh1",)),
])
# One the body writes escaped: an echo of the body quotes hook\"secret\\...
@pytest.mark.parametrize("secret", [HOOK_SECRET, 'hook"secret\\0123456789'])
def test_an_answer_quoting_the_webhook_secret_shows_none_of_it(
        fake, client_for, caplog, auth, echo, method, args, secret):
    """A webhook's secret, sent in create_webhook's or update_webhook's
    body, is a credential too: a validation error that echoes the body
    must not put it into the exception or the DEBUG line, as it is or as
    the body's JSON wrote it."""
    def handler(req):
        if "webhook" not in req.path:
            return fake(req)
        if echo == "page":
            return Response(status=400, body=b"<html>bad: " + req.body)
        return Response.json({"statusCode": 400, "apiCode": 1400,
                              "message": "bad: " + req.body.decode(),
                              "requestId": "r " + req.body.decode()})

    fake.server.handler = handler
    options = dict(auth=auth, raise_for_status=True)
    client = client_for(fake.server.url, **options)
    caplog.set_level(logging.DEBUG, logger="genauth_c")
    expected = genauth_c.DecodeError if echo == "page" else genauth_c.APIError
    with pytest.raises(expected) as info:
        getattr(client, method)(*args, secret=secret)

    async def call():
        async with genauth_c.AsyncManagementClient(
                AK, SK, host=fake.server.url, **options) as aclient:
            await getattr(aclient, method)(*args, secret=secret)

    with pytest.raises(expected) as async_info:
        asyncio.run(call())
    written = json.dumps(secret)[1:-1]
    assert written.encode() in fake.server.requests[-1].body
    for error in (info.value, async_info.value):
        text = exception_text(error) + caplog.text
        for piece in (secret[:8], secret[-8:], written[:8], written[-8:]):
            assert piece not in text


def cut_answer_error(fake, client_for, path, data, call, **layout):
    """The excerpt and everything shown of the DecodeError that call(client)
    raises when the answer at `path`, an envelope of `data`, is cut short (a
    proxy's truncation)."""
    def handler(req):
        if path not in req.path:
            return fake(req)
        body = json.dumps({"statusCode": 200, "message": "", "data": data},
                          **layout).encode()
        return Response(body=body[:-5])

    fake.server.handler = handler
    client = client_for(fake.server.url)
    with pytest.raises(genauth_c.DecodeError) as info:
        call(client)
    return info.value.excerpt, exception_text(info.value)


@pytest.mark.parametrize("prefix", ["x-authing-", "x-genauth-"])
def test_a_cut_delivery_log_shows_none_of_the_webhook_secret(fake, client_for,
                                                             prefix):
    """A WebhookLogDto's requestHeaders carry the webhook's secret as the
    delivery sent it (x-authing-webhook-secret): a get_webhook_logs answer
    cut short is a DecodeError whose excerpt hides that header's value as
    it hides a WebhookDto's secret."""
    log = {"webhookId": "w", "requestHeaders": {
        prefix + "webhook-secret": "stored-hook-secret-42",
        prefix + "userpool-id": "pool"}, "requestBody": {"eventName": "test"}}
    excerpt, text = cut_answer_error(
        fake, client_for, "get-webhook-logs", {"totalCount": 1, "list": [log]},
        lambda client: client.get_webhook_logs("w"))
    assert b"userpool-id" in excerpt and b"webhook-secret" in excerpt
    for piece in ("stored-h", "secret-42"):
        assert piece not in text


@pytest.mark.parametrize("layout", [{}, {"indent": 1}, {"ensure_ascii": False}])
def test_a_cut_webhook_answer_shows_none_of_its_secret(fake, client_for,
                                                       layout):
    """A WebhookDto carries the webhook's secret: an answer cut short (a
    proxy's truncation) is a DecodeError whose excerpt, shown with the
    exception, keeps the rest of the text but not that secret."""
    stored = 'stored-h\u00f6"k-secret-42'  # escaped in the JSON text
    excerpt, text = cut_answer_error(
        fake, client_for, "get-webhook",
        {"webhookId": "w", "secret": stored, "name": "n"},
        lambda client: client.get_webhook("w"), **layout)
    assert b'"webhookId"' in excerpt and b'"secret"' in excerpt
    for piece in ("stored-h", "k-secret-42"):
        assert piece not in text


# OpenSSL's configuration as a system may set it (openssl.cnf, or
# OPENSSL_CONF): TLS 1.0 and its old ciphers allowed.
OLD_TLS_OPENSSL_CONF = """\
openssl_conf = conf
[conf]
ssl_conf = ssl
[ssl]
system_default = tls
[tls]
MinProtocol = TLSv1
CipherString = DEFAULT@SECLEVEL=0
"""


@pytest.mark.parametrize("through", ["direct", "https proxy"])
def test_tls_older_than_1_2_is_refused_where_openssl_would_allow_it(
        fake, certificate, tmp_path, through):
    """A server, or an https:// proxy, that speaks only TLS 1.0 or 1.1:
    refused, nothing sent. Only OpenSSL's default security level refused
    it, so on a system whose OpenSSL configuration allows the old versions
    the client negotiated TLS 1.0 and sent its key secret over it. The
    client asks for TLS 1.2 at least itself, as urllib3 2 does."""
    tls = server_tls(certificate)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1: as meant
        tls.minimum_version = ssl.TLSVersion.TLSv1
        tls.maximum_version = ssl.TLSVersion.TLSv1_1
    tls.set_ciphers("DEFAULT:@SECLEVEL=0")
    conf = tmp_path / "openssl.cnf"
    conf.write_text(OLD_TLS_OPENSSL_CONF)
    env = {"OPENSSL_CONF": str(conf)}
    with (RawServer(fake, tls=tls) if through == "direct" else proxy_server(tls)) as server:
        host = server.url if through == "direct" else fake.server.url
        if through == "https proxy":
            env["http_proxy"] = server.url
        got = run_child(host, env, ca_bundle=str(certificate[0]), max_retries=0)
        assert (got.get("error"), got.get("curl_code")) == ("TransportError", 35), got
        assert "alert protocol version" in got["message"]
        assert server.requests == [] and fake.server.requests == []
