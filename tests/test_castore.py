"""TLS without ca_bundle on a machine whose CA store is not where Debian
keeps it: the client finds the system store itself (castore.c), falls back to
certifi, and otherwise says how to name one.

The other distributions' layouts are made real in a mount namespace: an empty
tmpfs over /etc/ssl hides Debian's store (and libcurl's built-in path to it)
from a child process, which then holds only the files a test puts there."""
import asyncio
import json
import os
import random
import shutil
import ssl
import subprocess
import sys
import textwrap

import pytest

import genauth_c

from conftest import AK, SK
from test_retries import call_in

CALL = textwrap.dedent("""
    import json, sys
    import genauth_c
    options = json.loads(sys.argv[2])
    try:
        with genauth_c.ManagementClient({ak!r}, {sk!r}, host=sys.argv[1], **options) as c:
            print(json.dumps({{"statusCode": c.trigger_webhook("wh1")["statusCode"]}}))
    except genauth_c.TransportError as e:
        print(json.dumps({{"error": str(e), "curl_code": e.curl_code}}))
""").format(ak=AK, sk=SK)


def unshare_refusal():
    """Why a child of this process cannot have /etc/ssl of its own in a
    mount namespace, or None when it can."""
    if not shutil.which("unshare"):
        return "needs unshare (util-linux)"
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        "mount -t tmpfs none /etc/ssl"],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return None
    said = (r.stderr.strip().splitlines()
            or [f"exit status {r.returncode}"])[-1]
    reason = "needs unshare -m and mount (root): " + said
    if "propagation" in said:
        # unshare -m first makes every mount from / on private, and / must
        # be a mount point for that: in a chroot it usually is not.
        reason += (" (/ is not a mount point, as in a chroot: mount "
                   "--rbind DIR DIR on the chroot's directory makes it one)")
    return reason


UNSHARE_REFUSAL = unshare_refusal()
needs_namespace = pytest.mark.skipif(UNSHARE_REFUSAL is not None,
                                     reason=UNSHARE_REFUSAL or "")


def call_elsewhere(tmp_path, url, etc_ssl=None, certifi=None,
                   python=sys.executable, script_text=CALL, proxy=None,
                   options=None, ssl_cert_dir=None):
    """Runs `script_text` (CALL) with `python` in a child that sees /etc/ssl holding only
    `etc_ssl` ({name: source file}; a name may hold a folder, certs/x.0) and a certifi
    module whose where() is `certifi` (None: certifi cannot be imported), with no proxy in
    its environment but `proxy` ({variable: URL}), and SSL_CERT_DIR only when
    `ssl_cert_dir` is given. CALL makes its client with `options` too. Returns its JSON
    line."""
    fake = tmp_path / "fake-certifi"
    fake.mkdir(exist_ok=True)
    (fake / "certifi.py").write_text(
        f"def where():\n    return {str(certifi)!r}\n" if certifi else
        "raise ImportError('certifi hidden by the test')\n")
    script = tmp_path / "call.py"
    script.write_text(script_text)
    copies = "".join(
        f" && mkdir -p {os.path.dirname(f'/etc/ssl/{name}')}"
        f" && cp {src} /etc/ssl/{name}" for name, src in (etc_ssl or {}).items())
    # The fake certifi first; the rest of PYTHONPATH kept (make sanitize
    # points it at the ASan build).
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(fake), os.environ.get("PYTHONPATH")) if p))
    for name in list(env):
        if name.lower() in ("ssl_cert_file", "ssl_cert_dir", "http_proxy",
                            "https_proxy", "all_proxy", "no_proxy"):
            del env[name]
    env.update(proxy or {})
    if ssl_cert_dir:
        env["SSL_CERT_DIR"] = ssl_cert_dir
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f"mount -t tmpfs none /etc/ssl{copies} && "
         f'exec "$0" "$1" "$2" "$3"', python, str(script), url,
         json.dumps(options or {})],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@needs_namespace
def test_no_store_anywhere_says_how_to_name_one(tls_fake, tmp_path):
    out = call_elsewhere(tmp_path, tls_fake.server.url)
    assert out.get("curl_code") in (60, 77), out
    assert "ca_bundle" in out["error"] and "certifi" in out["error"], out
    assert tls_fake.server.requests == []  # the secret never went out


@needs_namespace
def test_store_found_at_the_opensuse_place(tls_fake, certificate, tmp_path):
    # /etc/ssl/ca-bundle.pem (openSUSE, SLES): libcurl would not look there.
    out = call_elsewhere(tmp_path, tls_fake.server.url,
                         etc_ssl={"ca-bundle.pem": certificate[0]})
    assert out == {"statusCode": 200}


@needs_namespace
def test_store_found_at_the_alpine_place(tls_fake, certificate, tmp_path):
    out = call_elsewhere(tmp_path, tls_fake.server.url,
                         etc_ssl={"cert.pem": certificate[0]})
    assert out == {"statusCode": 200}


@needs_namespace
def test_a_store_installed_later_is_found_by_the_next_client(
        tls_fake, certificate, tmp_path):
    # A store found is remembered for the process; one not found is looked
    # for again by each new client.
    script = textwrap.dedent("""
        import json, shutil, sys
        import genauth_c
        out = []
        for attempt in range(2):
            try:
                with genauth_c.ManagementClient({ak!r}, {sk!r},
                                                host=sys.argv[1]) as c:
                    out.append(c.trigger_webhook("wh1")["statusCode"])
            except genauth_c.TransportError as e:
                out.append(e.curl_code)
            shutil.copy({cert!r}, "/etc/ssl/cert.pem")
        print(json.dumps(out))
    """).format(ak=AK, sk=SK, cert=str(certificate[0]))
    out = call_elsewhere(tmp_path, tls_fake.server.url, script_text=script)
    assert out[0] in (60, 77) and out[1] == 200, out


@needs_namespace
def test_a_client_of_an_http_host_asks_certifi_nothing(fake, tmp_path):
    # It makes no TLS connection, so it needs no store: on a machine with
    # none, a certifi that cannot answer stands in no client's way.
    script = textwrap.dedent("""
        import json, sys, types
        certifi = types.ModuleType("certifi")
        def where():
            raise RuntimeError("certifi cannot answer")
        certifi.where = where
        sys.modules["certifi"] = certifi
        import genauth_c
        with genauth_c.ManagementClient({ak!r}, {sk!r},
                                        host=sys.argv[1]) as c:
            print(json.dumps(c.trigger_webhook("wh1")))
    """).format(ak=AK, sk=SK)
    out = call_elsewhere(tmp_path, fake.server.url, script_text=script)
    assert out["statusCode"] == 200, out


@needs_namespace
def test_certifi_when_no_system_store(tls_fake, certificate, tmp_path):
    out = call_elsewhere(tmp_path, tls_fake.server.url,
                         certifi=certificate[0])
    assert out == {"statusCode": 200}


@needs_namespace
def test_system_store_wins_over_certifi(tls_fake, certificate, tmp_path):
    # certifi's bundle would not trust the test server: the system's does.
    out = call_elsewhere(tmp_path, tls_fake.server.url,
                         etc_ssl={"cert.pem": certificate[0]},
                         certifi="/nonexistent/certifi.pem")
    assert out == {"statusCode": 200}


# An https:// proxy is verified against the client's CAs (transport.c): on a
# machine without a store, certifi's bundle is offered for it as for an
# https:// host, so the error's advice to install certifi holds there too.

@needs_namespace
@pytest.mark.parametrize("variable", ["http_proxy", "all_proxy", "ALL_PROXY"])
def test_certifi_trusts_an_https_proxy_of_an_http_host(fake, tls_proxy, certificate, tmp_path,
                                                       variable):
    out = call_elsewhere(tmp_path, fake.server.url, certifi=certificate[0],
                         proxy={variable: tls_proxy.url})
    assert out == {"statusCode": 200}
    assert [r.path for r in tls_proxy.requests] == [
        fake.server.url + "/api/v3/get-management-token",
        fake.server.url + "/api/v3/trigger-webhook"]
    assert fake.server.requests == []  # everything went through the proxy


@needs_namespace
def test_certifi_trusts_an_https_proxy_of_an_unverified_https_host(tls_fake, tls_proxy,
                                                                   certificate, tmp_path):
    # use_unverified_ssl is about the API server: the proxy is verified,
    # with certifi's bundle here. The CONNECT reaching it shows its TLS held.
    out = call_elsewhere(tmp_path, tls_fake.server.url, certifi=certificate[0],
                         proxy={"https_proxy": tls_proxy.url},
                         options={"use_unverified_ssl": True})
    assert out.get("curl_code") == 56, out  # the proxy refuses the tunnel
    assert tls_proxy.requests and {r.method for r in tls_proxy.requests} == {"CONNECT"}
    assert tls_fake.server.requests == []


@needs_namespace
def test_no_store_for_an_https_proxy_says_how_to_name_one(fake, tls_proxy, tmp_path):
    out = call_elsewhere(tmp_path, fake.server.url, proxy={"http_proxy": tls_proxy.url})
    assert out.get("curl_code") in (60, 77), out
    assert "ca_bundle" in out["error"] and "certifi" in out["error"], out
    assert tls_proxy.requests == [] and fake.server.requests == []


@needs_namespace
def test_certifi_does_not_trust_an_https_proxy_of_an_http_host_when_given_ca_bundle(
        fake, tls_proxy, certificate, tmp_path):
    # ca_bundle is the only trust then, as for an https:// host.
    out = call_elsewhere(tmp_path, fake.server.url, certifi=certificate[0],
                         proxy={"http_proxy": tls_proxy.url},
                         options={"ca_bundle": "/etc/hostname"})
    assert out.get("curl_code") in (60, 77), out
    assert tls_proxy.requests == []


def other_ca(tmp_path):
    """A self-signed CA (its PEM file's path) that vouches for no test
    server."""
    other = tmp_path / "other.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
         "1", "-subj", "/CN=other", "-keyout", str(tmp_path / "k.pem"),
         "-out", str(other)], check=True, capture_output=True)
    return other


# Debian's libcurl trusts its built-in CA directory, /etc/ssl/certs, beside
# a CAINFO file: a ca_bundle must be the only trust, or a server whose
# certificate a public CA signed passes a client pinned to a private one.
# Here /etc/ssl/certs trusts the test server (its certificate under its
# subject hash, as certificate_dir holds it) and ca_bundle does not.

def certs_folder(certificate_dir):
    return {f"certs/{f.name}": f for f in certificate_dir.iterdir()}


@needs_namespace
def test_the_ca_directory_of_these_tests_trusts_the_server(tls_fake, certificate_dir,
                                                           tmp_path):
    # The layout the next two tests make does trust the server, through
    # the directory alone.
    out = call_elsewhere(tmp_path, tls_fake.server.url,
                         etc_ssl=certs_folder(certificate_dir),
                         ssl_cert_dir="/etc/ssl/certs")
    assert out == {"statusCode": 200}


@needs_namespace
def test_a_ca_bundle_is_the_only_trust_of_the_api_server(tls_fake, certificate_dir,
                                                         tmp_path):
    out = call_elsewhere(tmp_path, tls_fake.server.url,
                         etc_ssl=certs_folder(certificate_dir),
                         options={"ca_bundle": str(other_ca(tmp_path))})
    assert out.get("curl_code") == 60, out
    assert tls_fake.server.requests == []


@needs_namespace
def test_a_ca_bundle_is_the_only_trust_of_an_https_proxy(fake, tls_proxy, certificate_dir,
                                                         tmp_path):
    out = call_elsewhere(tmp_path, fake.server.url,
                         etc_ssl=certs_folder(certificate_dir),
                         proxy={"http_proxy": tls_proxy.url},
                         options={"ca_bundle": str(other_ca(tmp_path))})
    assert out.get("curl_code") == 60, out
    assert tls_proxy.requests == [] and fake.server.requests == []


def test_ssl_cert_file(tls_fake, certificate, client_for, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    client = client_for(tls_fake.server.url)
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_ssl_cert_dir(tls_fake, certificate_dir, client_for, monkeypatch):
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(certificate_dir))
    client = client_for(tls_fake.server.url)
    assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.mark.parametrize("listed", ["/nonexistent/genauth-certs:{}", "{}:/nonexistent"])
def test_ssl_cert_dir_naming_several_directories(tls_fake, certificate_dir, client_for,
                                                 monkeypatch, listed):
    # OpenSSL reads SSL_CERT_DIR as a list of directories, split at ':'
    # (Python's ssl module trusts this server so too).
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", listed.format(certificate_dir))
    client = client_for(tls_fake.server.url)
    assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.mark.parametrize("named_by", ["ca_bundle", "SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_a_relative_ca_path_still_names_its_file_after_chdir(
        tls_fake, certificate, certificate_dir, client_for, monkeypatch, named_by):
    """The client checks its CA path when it is made; libcurl opens it at
    each handshake, relative to the directory current then."""
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    path = certificate_dir if named_by == "SSL_CERT_DIR" else certificate[0]
    monkeypatch.chdir(path.parent)
    options = {}
    if named_by == "ca_bundle":
        options["ca_bundle"] = path.name
    else:
        monkeypatch.setenv(named_by, path.name)
    client = client_for(tls_fake.server.url, **options)
    monkeypatch.chdir("/")
    assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.mark.parametrize("given_as", ["str", "bytes", "pathlike"])
def test_a_copy_made_after_chdir_trusts_the_file_a_relative_ca_bundle_named(
        tls_fake, certificate, client_for, monkeypatch, given_as):
    """A copy, or a pickle, is made anew from the options: with the path as
    the client took it, absolute, not as a name to look for in whatever
    directory is current then."""
    import copy
    import pathlib
    import pickle
    monkeypatch.chdir(certificate[0].parent)
    name = certificate[0].name
    ca = {"str": name, "bytes": os.fsencode(name), "pathlike": pathlib.Path(name)}[given_as]
    client = client_for(tls_fake.server.url, ca_bundle=ca)
    monkeypatch.chdir("/")
    for again in (copy.copy(client), pickle.loads(pickle.dumps(client))):
        with again:
            assert again.trigger_webhook("wh1")["statusCode"] == 200


def test_an_explicit_ca_bundle_wins(tls_fake, certificate, client_for,
                                    monkeypatch, tmp_path):
    # SSL_CERT_FILE would trust the server; the ca_bundle given does not.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    client = client_for(tls_fake.server.url, ca_bundle=str(other_ca(tmp_path)))
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert info.value.curl_code == 60
    assert tls_fake.server.requests == []


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_a_ca_bundle_that_is_not_a_file_is_refused_when_the_client_is_made(
        tls_fake, tmp_path, kind):
    """A pipe would block the TLS handshake for ever in open(), out of reach
    of the call's timeout and of Ctrl-C; a directory or a device fails
    there too. Refused by name, before anything is sent."""
    path = {"fifo": tmp_path / "ca.pem", "directory": tmp_path,
            "device": "/dev/zero"}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(ValueError, match=r"^ca_bundle: .*not a regular file"):
        genauth_c.ManagementClient(AK, SK, host=tls_fake.server.url,
                                   ca_bundle=path)
    assert tls_fake.server.requests == []


def test_a_ca_bundle_that_cannot_be_used_is_named_with_the_reason(
        tls_fake, tmp_path):
    """The message named neither the file nor what was wrong with it
    ('cannot read the file, or it is not a regular file'): a typo in the
    path and a directory read the same."""
    missing = tmp_path / "no-such-ca.pem"
    with pytest.raises(ValueError) as info:
        genauth_c.ManagementClient(AK, SK, host=tls_fake.server.url,
                                   ca_bundle=missing)
    assert str(info.value) == (
        f"ca_bundle: cannot use '{missing}': No such file or directory")
    with pytest.raises(ValueError) as info:
        genauth_c.ManagementClient(AK, SK, host=tls_fake.server.url,
                                   ca_bundle=tmp_path)
    assert str(info.value) == (
        f"ca_bundle: cannot use '{tmp_path}': not a regular file "
        "(a directory, a pipe, a device)")
    assert tls_fake.server.requests == []


def test_an_ssl_cert_file_that_is_a_pipe_is_passed_over(
        tls_fake, certificate_dir, tmp_path):
    """As one that cannot be read: SSL_CERT_DIR, next in line, is used."""
    fifo = tmp_path / "pipe.pem"
    os.mkfifo(fifo)
    env = dict(os.environ, SSL_CERT_FILE=str(fifo),
               SSL_CERT_DIR=str(certificate_dir))
    out = subprocess.run([sys.executable, "-c", CALL, tls_fake.server.url,
                          json.dumps({"timeout": 5})],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"statusCode": 200}


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
@pytest.mark.parametrize("content", ["empty", "text", "der", "junk", "key"])
def test_a_ca_bundle_holding_no_certificate_says_so(
        tls_fake, certificate, tmp_path, monkeypatch, mode, content):
    """libcurl's words for a CA file OpenSSL reads no certificate from were
    "Problem with the SSL CA cert (path? access rights?)", about a file
    whose path and access the client had checked: the reader went after
    the wrong thing. The message says what the file lacks; nothing sent."""
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    pem = certificate[0].read_text()
    body = {"empty": b"", "text": b"not a certificate\n",
            "der": ssl.PEM_cert_to_DER_cert(pem),
            "junk": random.Random(7).randbytes(1 << 20),
            "key": certificate[1].read_bytes()}[content]
    ca = tmp_path / "ca.pem"
    ca.write_bytes(body)
    try:
        error = call_in(mode, dict(host=tls_fake.server.url, timeout=10,
                                   ca_bundle=str(ca)))
    except genauth_c.TransportError as e:
        error = e
    assert isinstance(error, genauth_c.TransportError), error
    assert error.curl_code == 77, error
    assert str(ca) in str(error)
    assert str(error).endswith(
        "; no certificate could be read from it: a CA file holds "
        "certificates in PEM form (-----BEGIN CERTIFICATE-----)"), error
    assert tls_fake.server.requests == []


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_a_ca_bundle_removed_after_the_client_was_made_says_so(
        tls_fake, certificate, tmp_path, monkeypatch, mode):
    """The file is read when a connection is made (README), not when the
    client is: one removed in between fails the call with why (it read
    "path? access rights?", as for a file never there), nothing sent."""
    monkeypatch.delenv("https_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    ca = tmp_path / "ca.pem"
    shutil.copy(certificate[0], ca)
    options = dict(host=tls_fake.server.url, timeout=10, ca_bundle=str(ca))
    if mode == "async":
        async def run():
            async with genauth_c.AsyncManagementClient(AK, SK,
                                                       **options) as c:
                ca.unlink()
                return await c.trigger_webhook("wh1")
        with pytest.raises(genauth_c.TransportError) as info:
            asyncio.run(run())
        error = info.value
    else:
        with genauth_c.ManagementClient(AK, SK, **options) as client:
            ca.unlink()
            if mode == "batch":
                (error,) = client.trigger_webhooks([{"webhook_id": "wh1"}])
            else:
                with pytest.raises(genauth_c.TransportError) as info:
                    client.trigger_webhook("wh1")
                error = info.value
    assert isinstance(error, genauth_c.TransportError), error
    assert error.curl_code == 77, error
    assert str(ca) in str(error)
    assert ("; the file was usable when the client was made, and is not "
            "now: No such file or directory") in str(error), error
    assert tls_fake.server.requests == []


SWAPPED_FOR_A_PIPE = textwrap.dedent("""
    import asyncio, json, os, sys
    import genauth_c
    url, ca, mode = sys.argv[1:]
    options = dict(host=url, timeout=5, ca_bundle=ca)

    def swap():
        os.unlink(ca)
        os.mkfifo(ca)

    try:
        if mode == "async":
            async def run():
                async with genauth_c.AsyncManagementClient({ak!r}, {sk!r},
                                                           **options) as c:
                    swap()
                    return await c.trigger_webhook("wh1")
            result = asyncio.run(run())
        else:
            with genauth_c.ManagementClient({ak!r}, {sk!r}, **options) as c:
                swap()
                if mode == "batch":
                    (result,) = c.trigger_webhooks([{{"webhook_id": "wh1"}}])
                else:
                    result = c.trigger_webhook("wh1")
        if isinstance(result, Exception):
            raise result
        print(json.dumps({{"statusCode": result["statusCode"]}}))
    except genauth_c.TransportError as e:
        print(json.dumps({{"error": str(e), "curl_code": e.curl_code}}))
""").format(ak=AK, sk=SK)


@pytest.mark.parametrize("mode", ["call", "batch", "async"])
def test_a_ca_bundle_swapped_for_a_pipe_after_the_client_was_made(
        tls_fake, certificate, tmp_path, mode):
    """Refused when the client is made, a pipe put in the file's place
    afterwards held OpenSSL's open() of it for ever when a connection was
    made: the call outlived its timeout, Ctrl-C did not end it. The file is
    checked again before a connection that reads it. In a child process,
    which a hang would not take the tests with."""
    ca = tmp_path / "ca.pem"
    shutil.copy(certificate[0], ca)
    env = {name: value for name, value in os.environ.items()
           if name.lower() not in ("https_proxy", "all_proxy")}
    try:
        out = subprocess.run(
            [sys.executable, "-c", SWAPPED_FOR_A_PIPE, tls_fake.server.url,
             str(ca), mode],
            env=env, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the call did not end")
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["curl_code"] == 77, got
    assert got["error"] == (
        f"cannot use the CA file '{ca}'; the file was usable when the client "
        "was made, and is not now: not a regular file (a directory, a pipe, "
        "a device); nothing was sent"), got
    assert tls_fake.server.requests == []
