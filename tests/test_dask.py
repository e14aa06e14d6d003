"""examples/dask_triggers.py on a local Dask cluster of 2 worker processes,
against the emulator: every webhook delivered exactly once, results in
order, one client (one token) per worker process. On the same cluster,
ManagementClient and AsyncManagementClient objects given to tasks as
arguments: each task's a new client, unpickled there."""
import asyncio
import collections
import json
import os
import sys

import pytest

distributed = pytest.importorskip("dask.distributed")

from genauth_c import AsyncManagementClient, ManagementClient  # noqa: E402
from genauth_c.emulator import Emulator, WebhookReceiver  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")
sys.path.insert(0, EXAMPLES)
import dask_triggers  # noqa: E402

AK, SK = "AKID-dask-1234", "SECRET-dask"
CALLS = 120


def worker_identity(options):
    """Which process and which client a task ran with."""
    return os.getpid(), id(dask_triggers.worker_client(options))


def trigger_with(client, n):
    """A task given a client itself (pickled to the worker, a new client
    there): webhook hook-0 with {"n": n}, then the client closed."""
    with client:
        return client.trigger_webhook("hook-0", request_body={"n": n})["statusCode"]


async def trigger_with_async(client, n):
    """trigger_with, for an AsyncManagementClient: a coroutine, which the
    worker runs on its own event loop."""
    async with client:
        result = await client.trigger_webhook("hook-0", request_body={"n": n})
        return result["statusCode"]


def test_fan_out_delivers_every_webhook_exactly_once():
    with WebhookReceiver(answer_body=lambda got: got.body) as receiver, \
            Emulator(AK, SK) as emu:
        ids = [f"hook-{i}" for i in range(12)]
        for webhook_id in ids:
            emu.add_webhook(webhook_id, f"{receiver.url}/{webhook_id}")
        calls = [{"webhook_id": ids[i % len(ids)], "request_body": {"n": i}}
                 for i in range(CALLS)]
        options = {"access_key_id": AK, "access_key_secret": SK, "host": emu.url}
        # A LocalCluster of 2 worker processes, the module uploaded to them.
        with dask_triggers.connect(n_workers=2) as client:
            assert isinstance(client.cluster, distributed.LocalCluster)
            results = dask_triggers.fan_out(client, calls, options, batch_size=10)
            # Later tasks find the client their worker made for the first.
            identities = client.gather(client.map(
                worker_identity, [options] * 8, pure=False))
            workers = len(client.scheduler_info()["workers"])
            assert receiver.wait_for(CALLS, timeout=30)
            token_fetches = emu.token_fetches
            # Clients themselves as the tasks' arguments, sync and async:
            # each task's arrives by pickle, a new client with its token.
            sync = ManagementClient(AK, SK, host=emu.url, timeout=10)
            async_ = AsyncManagementClient(AK, SK, host=emu.url, timeout=10)
            statuses = client.gather(
                client.map(trigger_with, [sync] * 4, range(CALLS, CALLS + 4), pure=False)
                + client.map(trigger_with_async, [async_] * 4, range(CALLS + 4, CALLS + 8),
                             pure=False))
            sync.close()
            asyncio.run(async_.aclose())
            assert receiver.wait_for(CALLS + 8, timeout=30)
            pickled_fetches = emu.token_fetches - token_fetches
        delivered = collections.Counter(json.loads(got.body)["n"] for got in receiver.received)
        paths = collections.Counter(got.path for got in receiver.received
                                    if json.loads(got.body)["n"] < CALLS)
    assert workers == 2
    assert [r.get("statusCode") for r in results] == [200] * CALLS, results
    assert [r["data"]["response"]["n"] for r in results] == list(range(CALLS))
    assert delivered == {n: 1 for n in range(CALLS + 8)}
    assert statuses == [200] * 8
    assert pickled_fetches == 8  # the parent's clients were never used
    assert paths == {f"/{webhook_id}": CALLS // len(ids) for webhook_id in ids}
    # One client per worker process, made once: never more tokens than workers.
    assert 1 <= token_fetches <= workers
    clients_per_pid = collections.defaultdict(set)
    for pid, client_id in identities:
        clients_per_pid[pid].add(client_id)
    assert all(len(ids_) == 1 for ids_ in clients_per_pid.values())
    assert os.getpid() not in clients_per_pid


@pytest.mark.parametrize("batch_size", [0, -3])
def test_fan_out_names_a_batch_size_below_one(batch_size):
    """range()'s 'arg 3 must not be zero' named nothing of the example's."""
    with pytest.raises(ValueError, match="^batch_size: expected at least 1"):
        dask_triggers.fan_out(None, [{"webhook_id": "wh1"}], {}, batch_size)
