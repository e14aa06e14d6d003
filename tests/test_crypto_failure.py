"""When libcrypto itself fails (no random bytes, no HMAC), a signed call
raises GenAuthError that blames neither the caller (ValueError) nor the
network (TransportError), and sends nothing."""
import os
import subprocess
import sys
import textwrap

# OpenSSL 3 with only the null provider: no algorithm, no random generator.
NULL_PROVIDER_CONF = """\
openssl_conf = openssl_init
[openssl_init]
providers = providers
[providers]
null = null_provider
[null_provider]
activate = 1
"""

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import genauth_c
    from rawserver import RawServer, Response

    with RawServer(lambda req: Response.json({{"statusCode": 200}})) as srv:
        client = genauth_c.ManagementClient("AK", "SK", host=srv.url,
                                            auth="signature")
        try:
            client.trigger_webhook("wh1")
        except (ValueError, genauth_c.TransportError) as e:
            sys.exit("blamed the caller or the network: %r" % e)
        except genauth_c.GenAuthError as e:
            print("GenAuthError:", e)
        else:
            sys.exit("no error without libcrypto")
        assert srv.requests == [], "something was sent"
""")


def test_crypto_failure_is_its_own_error(tmp_path):
    conf = tmp_path / "openssl.cnf"
    conf.write_text(NULL_PROVIDER_CONF)
    env = dict(os.environ, OPENSSL_CONF=str(conf))
    tests = os.path.dirname(os.path.abspath(__file__))
    run = subprocess.run([sys.executable, "-c", SCRIPT.format(tests=tests)],
                         env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "GenAuthError:" in run.stdout
    assert "random" in run.stdout or "HMAC" in run.stdout
