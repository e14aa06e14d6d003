"""Trigger many webhooks from a Dask cluster.

The calls are cut into batches; each batch is one Dask task, which sends its
calls concurrently with ``trigger_webhooks``. Every worker process makes one
ManagementClient the first time it needs one and reuses it for every later
task: one token and one set of kept-alive connections per worker, not per
task.

    import dask_triggers

    with dask_triggers.connect("tcp://scheduler:8786") as dask_client:  # connect(): a local cluster
        results = dask_triggers.fan_out(dask_client, calls, options={})

``options`` are ManagementClient's keyword arguments. Leave the keys out
({}) and each worker reads GENAUTH_ACCESS_KEY_ID / GENAUTH_ACCESS_KEY_SECRET
(and GENAUTH_HOST) from its own environment, so the secret never travels
with the tasks; keys given here travel inside each task to the workers.

Run it against the local emulator: ``python examples/dask_triggers.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from genauth_c import GenAuthError, ManagementClient

if TYPE_CHECKING:
    from genauth_c import TriggerWebhookCall

# This worker process's clients, keyed by their options. A worker runs tasks
# on several threads; the lock keeps them from making two clients at once.
_clients: dict[tuple[tuple[str, Any], ...], ManagementClient] = {}
_clients_lock = threading.Lock()


def worker_client(options: Mapping[str, Any]) -> ManagementClient:
    """The client of this process for `options`, made on first use."""
    key = tuple(sorted(options.items()))
    with _clients_lock:
        client = _clients.get(key)
        if client is None or client.closed:
            client = _clients[key] = ManagementClient(**options)
        return client


def trigger_batch(options: Mapping[str, Any],
                  calls: Sequence[TriggerWebhookCall]) -> list[dict[str, Any]]:
    """One task: a batch of calls on this worker's client. A failed call
    becomes {"error": "..."} so that one failure loses no other result and
    the results stay plain data for the trip back."""
    results = worker_client(options).trigger_webhooks(calls, concurrency=16)
    return [r if not isinstance(r, GenAuthError) else {"error": f"{type(r).__name__}: {r}"}
            for r in results]


def connect(address: str | None = None, n_workers: int = 2) -> Any:
    """A dask.distributed Client of the cluster whose scheduler is at
    `address` ("tcp://host:8786"), or, with None, of a new local cluster of
    `n_workers` processes (closed with the client). This module is uploaded
    to the workers, which import it by name."""
    from dask.distributed import Client

    if address is None:
        client = Client(n_workers=n_workers, processes=True,  # type: ignore[no-untyped-call]
                        threads_per_worker=2, host="127.0.0.1", dashboard_address=None)
    else:
        client = Client(address)  # type: ignore[no-untyped-call]
    client.upload_file(__file__)
    return client


def fan_out(dask_client: Any, calls: Sequence[TriggerWebhookCall],
            options: Mapping[str, Any], batch_size: int = 50) -> list[dict[str, Any]]:
    """Trigger every call in `calls` once over the cluster behind
    `dask_client`; returns one result per call, in order. A worker that
    dies in the middle of a task has its batch run again on another worker
    by Dask: the calls it had already sent are then delivered twice
    (trigger-webhook has no idempotency key to stop that)."""
    if batch_size < 1:
        raise ValueError(f"batch_size: expected at least 1, got {batch_size}")
    batches = [list(calls[i:i + batch_size]) for i in range(0, len(calls), batch_size)]
    # pure=False: two equal batches are still two deliveries, never merged.
    futures = dask_client.map(trigger_batch, [dict(options)] * len(batches), batches,
                              pure=False)
    return [result for batch in dask_client.gather(futures) for result in batch]


def main() -> int:
    """The example end to end on this machine: the emulator, a webhook
    receiver, a local cluster of 2 worker processes, 200 triggers."""
    from genauth_c.emulator import Emulator, WebhookReceiver

    with WebhookReceiver() as receiver, Emulator("AK", "SK") as emu:
        ids = [f"hook-{i}" for i in range(20)]
        for webhook_id in ids:
            emu.add_webhook(webhook_id, f"{receiver.url}/{webhook_id}")
        calls: list[TriggerWebhookCall] = [
            {"webhook_id": ids[i % len(ids)], "request_body": {"eventName": "test", "n": i}}
            for i in range(200)]
        options = {"access_key_id": "AK", "access_key_secret": "SK", "host": emu.url}
        with connect(n_workers=2) as dask_client:
            results = fan_out(dask_client, calls, options, batch_size=25)
        ok = sum(1 for r in results if r.get("statusCode") == 200)
        print(f"{ok} of {len(calls)} calls answered statusCode 200; "
              f"the receiver got {len(receiver.received)} deliveries; "
              f"{emu.token_fetches} token fetches")
        return 0 if ok == len(calls) else 1


if __name__ == "__main__":
    # Run through the module, not __main__: Dask then sends the workers a
    # reference to dask_triggers.trigger_batch (the module is shipped with
    # upload_file) instead of the function and its globals by value.
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import dask_triggers

    raise SystemExit(dask_triggers.main())
