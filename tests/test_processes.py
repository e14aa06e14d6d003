"""A client pickles by its configuration and comes back as a new client with
its own connections and token: copy.copy, copy.deepcopy, and process pools
with the spawn and forkserver start methods."""
import asyncio
import copy
import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest

from genauth_c import APIError, AsyncManagementClient, ManagementClient
from genauth_c.emulator import Emulator, WebhookReceiver

AK, SK = "AKID-processes-1234", "SECRET-processes"


@pytest.fixture
def receiver():
    with WebhookReceiver() as rx:
        yield rx


@pytest.fixture
def emulator(receiver):
    with Emulator(AK, SK) as emu:
        for i in range(8):
            emu.add_webhook(f"wh{i}", receiver.url + f"/hook{i}")
        yield emu


def every_option(url):
    return dict(access_key_id=AK, access_key_secret=SK, host=url, timeout=7.5, max_retries=0,
                lang="zh-CN", use_unverified_ssl=False, tenant_id="TENANT1",
                brand="authing", ca_bundle=None, raise_for_status=True,
                max_response_bytes=4096, auth="signature")


def test_pickle_keeps_every_option(emulator):
    with ManagementClient(**every_option(emulator.url)) as client:
        made, (cls, options) = client.__reduce__()
        assert cls is ManagementClient
        assert options == {**every_option(emulator.url), "websocket_host": None,
                           "websocket_endpoint": None}
        twin = pickle.loads(pickle.dumps(client))
    # A new, open client: the original is closed, the twin is not.
    assert not twin.closed and twin is not client
    assert (twin.host, twin.timeout) == (client.host, 7.5)
    assert repr(twin) == repr(client).replace(" closed", "")
    # The options act: raise_for_status, signature auth, the authing brand.
    with pytest.raises(APIError):
        twin.trigger_webhook("unknown")
    assert twin.trigger_webhook("wh1")["statusCode"] == 200
    rec = emulator.requests[-1]
    assert (rec.auth, rec.brand) == ("signature", "authing")
    assert rec.header("x-authing-app-id") == "TENANT1"
    assert rec.header("x-authing-lang") == "zh-CN"
    assert emulator.token_fetches == 0
    twin.close()


def test_a_path_like_ca_bundle_pickles_as_its_path(emulator, certificate):
    # The client keeps the path its os.PathLike named when it was made: the
    # object itself may not pickle (this one holds a lock), and could name
    # another file by the time the copy is made.
    class CaFile:
        def __init__(self):
            self.lock = threading.Lock()
            self.calls = 0

        def __fspath__(self):
            self.calls += 1
            return str(certificate[0]) if self.calls == 1 else "/nonexistent"

    with ManagementClient(AK, SK, host=emulator.url, ca_bundle=CaFile()) as client:
        assert client.__reduce__()[1][1]["ca_bundle"] == str(certificate[0])
        twin = pickle.loads(pickle.dumps(client))
    assert not twin.closed
    twin.close()


def test_options_from_the_environment_travel(emulator, monkeypatch):
    monkeypatch.setenv("GENAUTH_ACCESS_KEY_ID", AK)
    monkeypatch.setenv("GENAUTH_ACCESS_KEY_SECRET", SK)
    monkeypatch.setenv("GENAUTH_HOST", emulator.url)
    data = pickle.dumps(ManagementClient())
    monkeypatch.delenv("GENAUTH_ACCESS_KEY_ID")
    monkeypatch.delenv("GENAUTH_ACCESS_KEY_SECRET")
    monkeypatch.delenv("GENAUTH_HOST")
    with pickle.loads(data) as client:
        assert client.host == emulator.url
        assert client.trigger_webhook("wh1")["statusCode"] == 200


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy])
def test_copies_are_new_clients_with_their_own_token(emulator, how):
    with ManagementClient(AK, SK, host=emulator.url) as client:
        assert client.trigger_webhook("wh1")["statusCode"] == 200
        twin = how(client)
        assert twin is not client and twin.token_fetches == 0
        assert twin.trigger_webhook("wh2")["statusCode"] == 200
        assert (client.token_fetches, twin.token_fetches) == (1, 1)
    # Closing one leaves the other working.
    assert client.closed and not twin.closed
    assert twin.trigger_webhook("wh3")["statusCode"] == 200
    twin.close()


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy,
                                 lambda c: pickle.loads(pickle.dumps(c))])
def test_async_clients_copy_and_pickle_as_new_clients(emulator, how):
    """An AsyncManagementClient used on a loop copies and pickles as the
    sync client does: a new client (its own engine, token, connections and
    loop), not one sharing the original's engine."""
    client = AsyncManagementClient(AK, SK, host=emulator.url, timeout=7.5,
                                   raise_for_status=True)

    async def use(c):
        return (await c.trigger_webhook("wh1"))["statusCode"], c.token_fetches

    async def use_then_close(c):
        try:
            return await use(c)
        finally:
            await c.aclose()

    assert asyncio.run(use(client)) == (200, 1)  # bound to that loop now
    twin = how(client)
    assert twin is not client and type(twin) is AsyncManagementClient
    assert (twin.host, twin.timeout) == (client.host, 7.5)
    assert asyncio.run(use_then_close(twin)) == (200, 1)  # its own loop
    assert twin.closed and not client.closed

    async def refused(c):  # raise_for_status came along
        async with c:
            with pytest.raises(APIError):
                await c.trigger_webhook("unknown")
    asyncio.run(refused(how(client)))
    with pytest.raises(RuntimeError, match="event loop"):
        asyncio.run(use(client))  # the original still belongs to its loop
    asyncio.run(client.aclose())


def test_an_uninitialised_client_does_not_pickle():
    client = ManagementClient.__new__(ManagementClient)
    with pytest.raises(TypeError, match="uninitialised"):
        pickle.dumps(client)


def trigger_in_worker(client, webhook_id):
    """Runs in a worker process: the client arrived by pickle."""
    import os
    with client:
        result = client.trigger_webhook(webhook_id, request_body={"pid": os.getpid()})
        return result["statusCode"], client.token_fetches, os.getpid()


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_process_pool_takes_a_client(emulator, receiver, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    ctx = multiprocessing.get_context(method)
    ids = [f"wh{i}" for i in range(6)]
    with ManagementClient(AK, SK, host=emulator.url) as client:
        with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
            outcomes = list(pool.map(trigger_in_worker, [client] * len(ids), ids,
                                     timeout=120))
    assert [status for status, _, _ in outcomes] == [200] * len(ids)
    # Each worker's client is new: it fetched its own token.
    assert all(fetches == 1 for _, fetches, _ in outcomes)
    assert receiver.wait_for(len(ids), timeout=10)
    paths = sorted(got.path for got in receiver.received)
    assert paths == sorted(f"/hook{i}" for i in range(6))
    import os
    assert os.getpid() not in {pid for _, _, pid in outcomes}
