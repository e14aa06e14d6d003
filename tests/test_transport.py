"""Connections, time limits, faults, TLS, threads and the client's life."""
import os
import threading
import time

import pytest

from conftest import AK, SK, SLACK, free_port, sigint_when, wait_child
from rawserver import FakeGenAuth, RawServer, Response, announce_and_hold

import genauth_c
from genauth_c import ManagementClient


def test_sequential_calls_reuse_one_connection(fake, client_for):
    client = client_for(fake.server.url)
    for _ in range(50):
        client.trigger_webhook("wh1")
    assert fake.server.connections == 1


def test_threads_share_a_few_connections(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")

    def work():
        for _ in range(25):
            assert client.trigger_webhook("wh1")["statusCode"] == 200

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    # At most one connection per thread, not one per call.
    assert fake.server.connections <= 4
    assert len(fake.server.requests) == 102


def test_handles_given_back_beside_calls_in_flight_are_kept():
    """The pool keeps 8 idle handles beyond those in use: 12 threads that
    call again while 4 other calls are still in flight find their
    connections (with 8 idle at most, 4 would be closed and opened again)."""
    fake = FakeGenAuth()
    all_sixteen = threading.Barrier(16, timeout=30)
    twelve_again = threading.Barrier(12, timeout=30)
    let_go = threading.Event()

    def handler(req):
        if "trigger-webhook" in req.path:
            name = req.json()["webhookId"]
            if name in ("hold", "first"):
                all_sixteen.wait()  # 16 calls in flight at once
            if name == "hold":
                let_go.wait(30)
            elif name == "again":
                twelve_again.wait()  # 12 at once: as many handles needed
        return fake(req)

    failures = []
    movers_back = threading.Barrier(12, timeout=30)

    def call(*names):
        try:
            for i, name in enumerate(names):
                if i:  # every mover's handle back in the pool first
                    movers_back.wait()
                assert client.trigger_webhook(name)["statusCode"] == 200
        except BaseException as e:  # reported below; a thread cannot raise
            failures.append(e)

    with RawServer(handler) as server:
        client = ManagementClient(AK, SK, host=server.url, timeout=30)
        client.trigger_webhook("warm")  # the token, on the first connection
        holders = [threading.Thread(target=call, args=("hold",)) for _ in range(4)]
        movers = [threading.Thread(target=call, args=("first", "again"))
                  for _ in range(12)]
        for t in holders + movers:
            t.start()
        for t in movers:
            t.join(timeout=60)
            assert not t.is_alive()
        let_go.set()
        for t in holders:
            t.join(timeout=60)
            assert not t.is_alive()
        client.close()
        assert not failures, failures
        assert server.connections == 16


def test_gil_released_during_a_slow_call(fake, client_for):
    """The server holds the answer until this thread, running Python while
    the call waits, releases it: had the call kept the GIL, the release
    could not happen and the server would give up waiting."""
    client = client_for(fake.server.url, timeout=30)
    client.trigger_webhook("wh1")
    arrived, release = threading.Event(), threading.Event()
    released = []

    def handler(req):
        if "trigger-webhook" in req.path:
            arrived.set()
            released.append(release.wait(15))
        return fake(req)

    fake.server.handler = handler
    outcome = []
    t = threading.Thread(
        target=lambda: outcome.append(client.trigger_webhook("wh1")))
    t.start()
    assert arrived.wait(15)
    release.set()  # Python code, run while the call is waiting
    t.join(timeout=30)
    assert not t.is_alive()
    assert released == [True]
    assert outcome[0]["statusCode"] == 200


def test_timeout_is_a_total_limit(fake, client_for):
    # A byte every 0.2 s never leaves the connection idle, and the body
    # takes far longer than the timeout and the slack together.
    fake.response = Response.json(fake.envelope, trickle=0.2)
    assert len(fake.response.body) * 0.2 > 0.5 + SLACK * 2
    client = client_for(fake.server.url, timeout=0.5)
    start = time.monotonic()
    with pytest.raises(genauth_c.TimeoutError) as info:
        client.trigger_webhook("wh1")
    assert time.monotonic() - start < 0.5 + SLACK
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, genauth_c.TransportError)
    assert info.value.curl_code == 28


def test_timeout_covers_the_token_fetch(fake, client_for):
    """Each step fits in the timeout, both together do not: one total limit
    times the call out. (A slow machine only makes that surer.)"""
    def handler(req):
        resp = fake(req)
        resp.delay = 0.7
        return resp

    fake.server.handler = handler
    client = client_for(fake.server.url, timeout=1.0)
    start = time.monotonic()
    with pytest.raises(genauth_c.TimeoutError):
        client.trigger_webhook("wh1")
    assert time.monotonic() - start < 1.0 + SLACK
    assert fake.token_fetches == 1


def test_headers_that_never_come_time_out(fake, client_for):
    fake.response = Response(delay=60)
    client = client_for(fake.server.url, timeout=2.0)  # ample for the next
    start = time.monotonic()
    with pytest.raises(genauth_c.TimeoutError):
        client.trigger_webhook("wh1")
    assert time.monotonic() - start < 2.0 + SLACK
    fake.response = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_connection_refused(client_for):
    client = client_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert info.value.curl_code == 7
    assert not isinstance(info.value, genauth_c.TimeoutError)


def test_dropped_connection(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")
    fake.response = Response(close=True)
    with pytest.raises(genauth_c.TransportError):
        client.trigger_webhook("wh1")
    fake.response = None
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_redirect_is_not_followed(fake, client_for):
    with RawServer(FakeGenAuth()) as elsewhere:
        fake.response = Response(status=302, body=b"",
                                 headers=[("Location", elsewhere.url + "/api/v3/trigger-webhook")])
        client = client_for(fake.server.url)
        with pytest.raises(genauth_c.DecodeError) as info:
            client.trigger_webhook("wh1")
        assert info.value.http_status == 302
        assert elsewhere.requests == []


def test_close_and_context_manager(fake):
    with ManagementClient(AK, SK, host=fake.server.url) as client:
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        assert not client.closed
    assert client.closed
    with pytest.raises(genauth_c.ClientClosedError, match="closed"):
        client.trigger_webhook("wh1")
    client.close()  # idempotent
    with pytest.raises(genauth_c.ClientClosedError):
        with client:
            pass


def test_ctrl_c_interrupts_a_call_and_the_client_survives(fake, client_for):
    client = client_for(fake.server.url)
    client.trigger_webhook("wh1")
    arrived = threading.Event()
    fake.server.handler = announce_and_hold(fake, arrived)
    thread, sent = sigint_when(arrived)
    with pytest.raises(KeyboardInterrupt):
        client.trigger_webhook("wh1")
    # Within about 0.1 s of the signal, promised; bounded here generously.
    assert sent and time.monotonic() - sent[0] < SLACK
    thread.join(timeout=10)
    assert not thread.is_alive()
    fake.server.handler = fake
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    # The interrupted call's connection was closed, not pooled with its
    # answer still to come: the next call opened a second one.
    assert fake.server.connections == 2


# ---- TLS -----------------------------------------------------------------

def test_tls_self_signed_is_rejected_by_default(tls_fake, client_for):
    client = client_for(tls_fake.server.url)
    with pytest.raises(genauth_c.TransportError) as info:
        client.trigger_webhook("wh1")
    assert info.value.curl_code in (60, 35)  # peer certificate not trusted
    assert tls_fake.token_fetches == 0  # the secret never went out


def test_tls_ca_bundle_trusts_a_private_ca(tls_fake, certificate, client_for):
    client = client_for(tls_fake.server.url, ca_bundle=str(certificate[0]))
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert tls_fake.server.connections == 1


def test_tls_unverified_when_asked(tls_fake, client_for):
    client = client_for(tls_fake.server.url, use_unverified_ssl=True)
    assert client.trigger_webhook("wh1")["statusCode"] == 200


def test_init_twice_is_refused(fake):
    client = ManagementClient(AK, SK, host=fake.server.url)
    with pytest.raises(RuntimeError, match="already"):
        client.__init__(AK, SK, host=fake.server.url)
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    client.close()


def test_close_in_a_forked_child_leaves_the_parents_tls_connection(
        tls_fake, certificate, client_for):
    client = client_for(tls_fake.server.url, ca_bundle=str(certificate[0]))
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    pid = os.fork()
    if pid == 0:  # the child closes without having made a call
        client.close()
        os._exit(0)
    assert wait_child(pid) == 0
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    assert tls_fake.server.connections == 1


@pytest.mark.parametrize("how", ["call", "batch"])
def test_a_forked_child_makes_its_own_tls_connection(
        tls_fake, certificate, client_for, how):
    """A child's call must not write on a TLS connection it inherited (the
    single calls' or the batches'): its records would carry the parent's
    keys and sequence numbers, and the server would drop the connection
    under the parent's next call. The child makes a connection of its own;
    the parent's go on serving."""
    def triggered(webhook_id, batch):
        if batch:
            (result,) = client.trigger_webhooks([{"webhook_id": webhook_id}])
            return result["statusCode"]
        return client.trigger_webhook(webhook_id)["statusCode"]

    client = client_for(tls_fake.server.url, ca_bundle=str(certificate[0]))
    assert triggered("wh1", False) == 200
    assert triggered("wh1", True) == 200
    assert tls_fake.server.connections == 2  # the calls', the batches'
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if triggered("wh2", how == "batch") == 200 else 1)
        except BaseException:
            os._exit(2)
    assert wait_child(pid) == 0
    assert tls_fake.server.connections == 3  # the child's own
    for _ in range(2):
        assert triggered("wh1", False) == 200
        assert triggered("wh1", True) == 200
    assert tls_fake.server.connections == 3  # the parent's, kept
    assert [r.json()["webhookId"] for r in tls_fake.server.requests
            if r.path.endswith("/trigger-webhook")] == (
        ["wh1", "wh1", "wh2"] + ["wh1"] * 4)
