"""The binding owns what it uses while the caller's code runs, and never runs
Python code with an exception set: containers changed by the caller's hooks
in the middle of a conversion, exceptions raised by those hooks, and
__init__ re-entered from its own argument conversion."""
import asyncio
import collections.abc
import enum
import gc
import json
import os
import pickle
import subprocess
import sys

import pytest

from conftest import AK, SK

import genauth_c
from genauth_c import ManagementClient


# ---- payloads whose hooks change the container being converted ------------

class Hook(collections.abc.Mapping):
    """A nested Mapping: converting it calls items(), which runs `action`
    (then collects garbage, so anything it freed is really gone)."""

    def __init__(self, action):
        self.action = action

    def items(self):
        self.action()
        gc.collect()
        return []

    def __getitem__(self, key):
        raise KeyError(key)

    def __iter__(self):
        return iter(())

    def __len__(self):
        return 0


class OwnList(collections.abc.Mapping):
    """A Mapping whose items() hands out its own list, as a cache might."""

    def __init__(self, pairs):
        self.pairs = pairs

    def items(self):
        return self.pairs

    def __getitem__(self, key):
        return dict(self.pairs)[key]

    def __iter__(self):
        return iter(dict(self.pairs))

    def __len__(self):
        return len(self.pairs)


def fresh(text):
    """A str object of its own (not interned, not shared): freeing the
    container that holds it frees its memory."""
    return "".join(list(text))


def mapping_emptied_by_a_value():
    # The key and value live only in the Mapping's own list, which the first
    # value's hook empties: the key must not be read from freed memory.
    m = OwnList([])
    m.pairs += [(fresh("k" * 40), Hook(m.pairs.clear)), (fresh("b" * 30), fresh("x" * 50))]
    return m, {"k" * 40: {}, "b" * 30: "x" * 50}


def dict_rebuilt_by_a_value():
    d = {}

    def rebuild():
        d.clear()
        d["b"] = "new"
        d["a"] = "again"
        d["c"] = 3

    d["a"] = Hook(rebuild)
    d["b"] = 1
    # As the dict was when conversion reached it; no key twice.
    return d, {"a": {}, "b": 1}


def list_emptied_by_an_item():
    items = []
    items += [Hook(items.clear), fresh("y" * 40), [fresh("z" * 40)]]
    return {"items": items}, {"items": [{}, "y" * 40, ["z" * 40]]}


def value_replaced_after_conversion_started():
    inner = [fresh("p" * 40), fresh("q" * 40)]
    outer = {}

    def replace():
        inner[:] = [0, 0, 0]
        outer["l"] = None

    outer["h"] = Hook(replace)
    outer["l"] = inner
    # The dict's values as they were when conversion reached it; the list's
    # items as they were when conversion reached the list.
    return {"o": outer}, {"o": {"h": {}, "l": [0, 0, 0]}}


MUTATING = [mapping_emptied_by_a_value, dict_rebuilt_by_a_value,
            list_emptied_by_an_item, value_replaced_after_conversion_started]


def no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate key sent: {keys}"
    return dict(pairs)


@pytest.mark.parametrize("case", MUTATING, ids=lambda f: f.__name__)
def test_payload_changed_by_its_own_hooks_is_sent_as_snapshotted(
        fake, client_for, case):
    client = client_for(fake.server.url)
    payload, expected = case()
    client.trigger_webhook("wh1", request_body=payload)
    body = fake.server.requests[-1].body
    sent = json.loads(body, object_pairs_hook=no_duplicate_keys)
    assert sent["requestBody"] == expected
    assert body == json.dumps({"webhookId": "wh1", "requestBody": expected},
                              separators=(",", ":")).encode()


def test_payload_changed_by_its_own_hooks_in_a_batch(fake, client_for):
    client = client_for(fake.server.url)
    cases = [case() for case in MUTATING]
    out = client.trigger_webhooks(
        [{"webhook_id": f"wh{i}", "request_body": p}
         for i, (p, _) in enumerate(cases)], concurrency=1)
    assert [r["statusCode"] for r in out] == [200] * len(cases)
    bodies = {}
    for req in fake.server.requests:
        if "trigger-webhook" in req.path:
            doc = json.loads(req.body, object_pairs_hook=no_duplicate_keys)
            bodies[doc["webhookId"]] = doc["requestBody"]
    assert bodies == {f"wh{i}": e for i, (_, e) in enumerate(cases)}


@pytest.mark.skipif(os.environ.get("GENAUTH_TEST_MALLOC_DEBUG") == "1",
                    reason="already the malloc_debug run")
def test_payload_hooks_under_malloc_debug():
    # Freed memory is overwritten (0xDD) and checked by the debug allocator:
    # a use after free shows in the wire bytes, or crashes the process.
    env = dict(os.environ, PYTHONMALLOC="malloc_debug",
               GENAUTH_TEST_MALLOC_DEBUG="1")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         os.path.abspath(__file__), "-k", "snapshotted or in_a_batch or caller"],
        cwd=os.path.dirname(os.path.abspath(__file__)), env=env,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout


# ---- lists the binding fills are never seen half made ----------------------

# Run in a process of its own: a list seen half made (a NULL slot) crashes
# it. The garbage collector's callbacks, as the finalizers it runs, are the
# caller's code, run by any allocation: gc.get_objects() there hands them
# every tracked list, and copying one reads each slot.
HALF_MADE_LISTS = r"""
import asyncio, gc, sys, threading
from rawserver import FakeGenAuth, RawServer
import genauth_c

N = 7  # the length of the lists looked at: those the binding makes

def look(phase, info):
    # Only in collections on the main thread: the fake server's own
    # threads are not under test.
    if threading.current_thread() is threading.main_thread():
        for obj in gc.get_objects(0):
            if type(obj) is list and len(obj) == N:
                list(obj)

async def batch(url):
    async with genauth_c.AsyncManagementClient(
            "AKIDexample1234", "s", host=url) as client:
        await client.trigger_webhook("wh1")  # bound, token fetched
        gc.callbacks.append(look)
        # Two connections at a time: the selector's epoll.poll() then never
        # has N sockets ready at once, and the list of N events CPython
        # fills while it collects (one Python's own, not under test, which
        # list() crashes on) is not made.
        out = await client.trigger_webhooks([{"webhook_id": "wh1"}] * N,
                                            concurrency=2)
        gc.callbacks.remove(look)
        return out

handler = FakeGenAuth()
# A result holding a list of N objects: each one made is an allocation.
handler.envelope = {"statusCode": 200, "message": "ok",
                    "data": {"list": [{"a": 1}] * N}}
with RawServer(handler) as server:
    handler.server = server
    gc.set_threshold(1)  # a collection at (nearly) every allocation
    if sys.argv[1] == "result":
        with genauth_c.ManagementClient("AKIDexample1234", "s",
                                        host=server.url) as client:
            client.trigger_webhook("wh1")
            gc.callbacks.append(look)
            for _ in range(30):
                assert len(client.trigger_webhook("wh1")["data"]["list"]) == N
            gc.callbacks.remove(look)
    else:
        out = asyncio.run(batch(server.url))
        assert [r["statusCode"] for r in out] == [200] * N
print("done")
"""


@pytest.mark.parametrize("case", ["result", "async batch"])
def test_lists_are_never_seen_half_made_by_the_collector(case):
    proc = subprocess.run(
        [sys.executable, "-c", HALF_MADE_LISTS, case],
        cwd=os.path.dirname(os.path.abspath(__file__)),
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout == "done\n", (
        proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])


# ---- the caller's exceptions come out unchanged ----------------------------

class Color(enum.IntEnum):
    RED = 1


class LoudStr(str):
    def __repr__(self):
        return "<a LoudStr>"


class Boom(ValueError):
    """A caller's error whose text looks like one of ours."""


def raising_items():
    class Raising(Hook):
        def items(self):
            try:
                raise KeyError("the real cause")
            except KeyError as cause:
                raise Boom("request_body: the caller's own words") from cause

    return Raising(lambda: None)


@pytest.mark.parametrize("key", [LoudStr("k"), Color.RED, "k", 7],
                         ids=["str subclass", "IntEnum", "str", "int"])
def test_caller_exception_under_any_key_comes_out_unchanged(
        fake, client_for, key):
    client = client_for(fake.server.url)
    with pytest.raises(Boom) as info:
        client.trigger_webhook("wh1", request_body={"outer": {key: raising_items()}})
    assert type(info.value) is Boom
    assert str(info.value) == "request_body: the caller's own words"
    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.__cause__.args == ("the real cause",)
    with pytest.raises(Boom) as info:
        client.trigger_webhooks([{"webhook_id": "a"},
                                 {"webhook_id": "b",
                                  "request_body": {key: [raising_items()]}}])
    assert type(info.value) is Boom  # not rewritten as calls[1]...
    assert str(info.value) == "request_body: the caller's own words"
    assert isinstance(info.value.__cause__, KeyError)
    assert not any("trigger-webhook" in r.path for r in fake.server.requests)


@pytest.mark.parametrize("key, shown", [(LoudStr("k"), "['k']"),
                                        (Color.RED, "[1]")],
                         ids=["str subclass", "IntEnum"])
def test_error_paths_show_keys_without_running_their_repr(
        fake, client_for, key, shown):
    client = client_for(fake.server.url)
    with pytest.raises(ValueError) as info:
        client.trigger_webhook("wh1", request_body={key: [0, float("nan")]})
    assert str(info.value) == (f"request_body{shown}[1]: float('nan') is not "
                               "allowed in JSON")
    with pytest.raises(ValueError) as info:
        client.trigger_webhook("wh1", request_body={key: {"\ud800": 1}})
    assert str(info.value).startswith(f"request_body{shown}: key '\\ud800'")


class RaisingText(str):
    """A name or choice whose str() and repr() are the caller's code, and
    fail."""

    def __str__(self):
        raise Boom("__str__ was called")

    def __repr__(self):
        raise Boom("__repr__ was called")


class RaisingInt(int):
    def __repr__(self):
        raise Boom("__repr__ was called")


class Opaque:
    def __repr__(self):
        raise Boom("__repr__ was called")


def test_argument_errors_show_values_without_running_their_hooks(fake, client_for):
    # The argument is named and the value shown as its base type prints it
    # (or by its type): the caller's __str__/__repr__ never replaces the
    # error with its own.
    client = client_for(fake.server.url)
    cases = [
        (lambda: client.get_webhook(**{RaisingText("bogus"): "x"}), TypeError,
         "ManagementClient.get_webhook() got an unexpected keyword argument 'bogus'"),
        (lambda: client.list_webhooks(page=RaisingInt(-1)), ValueError,
         "page: must be a positive int, got -1"),
        (lambda: client.trigger_webhooks([{RaisingText("bogus"): "x"}]),
         TypeError, "calls[0]: unexpected key 'bogus'"),
        (lambda: client.trigger_webhooks([{"webhook_id": "a", Opaque(): 1}]),
         TypeError, "calls[0]: unexpected key <test_ownership.Opaque object>"),
        (lambda: ManagementClient(AK, SK, brand=RaisingText("other")),
         ValueError, "brand: expected 'genauth' or 'authing', got 'other'"),
        (lambda: ManagementClient(AK, SK, auth=RaisingText("other")),
         ValueError, "auth: expected 'token' or 'signature', got 'other'"),
    ]
    for call, exc, text in cases:
        with pytest.raises(exc) as info:
            call()
        assert type(info.value) is exc and str(info.value) == text
    assert fake.server.requests == []


def test_a_batch_iterator_s_own_type_error_comes_out_unchanged(fake, client_for):
    # Only what is not iterable at all is worded as ours; an iterator that
    # fails midway raises its own error, whatever its type.
    def rows():
        yield {"webhook_id": "a"}
        raise TypeError("row 2 of my data is broken")

    class Rows:
        def __iter__(self):
            raise TypeError("my __iter__ is broken")

    client = client_for(fake.server.url)
    for calls, text in [(rows(), "row 2 of my data is broken"),
                        (Rows(), "my __iter__ is broken")]:
        with pytest.raises(TypeError) as info:
            client.trigger_webhooks(calls)
        assert str(info.value) == text
    for calls in (5, None, object()):
        with pytest.raises(TypeError, match="calls: expected an iterable of dicts"):
            client.trigger_webhooks(calls)
    assert fake.server.requests == []


def test_float_and_index_hooks_are_not_consulted(fake, client_for):
    # As json.dumps: an int or float subclass is sent by its value.
    class Index(int):
        def __index__(self):
            raise Boom("__index__ was called")

    class Float(float):
        def __float__(self):
            raise Boom("__float__ was called")

    client = client_for(fake.server.url)
    body = {"i": Index(5), "f": Float(2.5), Index(3): Float(-0.0)}
    client.trigger_webhook("wh1", request_body=body)
    assert fake.server.requests[-1].json()["requestBody"] == json.loads(
        json.dumps(body))


def test_mapping_items_must_be_pairs(fake, client_for):
    client = client_for(fake.server.url)
    for items in ([("a", 1), ["b", 2]], [("a", 1, 2)], ["ab"]):
        with pytest.raises(TypeError, match=r"request_body\['x'\]: items\(\) "
                                            r"must give \(key, value\) pairs"):
            client.trigger_webhook("wh1", request_body={"x": OwnList(items)})


# ---- __init__ re-entered while its arguments are converted -----------------

def reentering(hook, reenter, ca_path):
    """(keyword, value) for ManagementClient whose conversion calls
    reenter()."""
    if hook == "ca_bundle":
        class Path:
            def __fspath__(self):
                reenter()
                return ca_path

        return "ca_bundle", Path()
    if hook == "timeout":
        class Seconds(int):
            def __float__(self):
                reenter()
                return 5.0

        return "timeout", Seconds(5)
    raise AssertionError(hook)


# use_unverified_ssl and raise_for_status take a bool only: no hook runs.
@pytest.mark.parametrize("hook", ["ca_bundle", "timeout"])
def test_init_reentered_from_argument_conversion(fake, certificate, hook):
    client = ManagementClient.__new__(ManagementClient)
    ran = []

    def reenter():
        ran.append(hook)
        client.__init__(AK, SK, host=fake.server.url)

    key, value = reentering(hook, reenter, str(certificate[0]))
    outer_host = "http://127.0.0.1:9"
    try:
        client.__init__(AK, SK, host=outer_host, **{key: value})
    except RuntimeError as exc:
        assert ran, "refused without being re-entered"
        assert "already initialised" in str(exc)
        # The client the inner __init__ made is the one in use, and works.
        assert client.host == fake.server.url
        assert client.trigger_webhook("wh1")["statusCode"] == 200
    else:
        # Acceptable only when the argument was read without its hook.
        assert not ran, "the inner __init__'s client was overwritten"
        assert client.host == outer_host
    finally:
        client.close()


def test_a_batch_on_an_uninitialised_client_runs_none_of_its_calls(fake):
    """As a single call: an uninitialised client refuses a batch before its
    calls are read. They were read first, as the client then was (its
    payloads converted for a client that does not sign), and a generator
    that initialised it with auth='signature' meanwhile had the batch send
    its calls to a signing client, each ending with ValueError ('a written
    body cannot be signed')."""
    client = ManagementClient.__new__(ManagementClient)
    ran = []

    def calls():
        ran.append(True)
        client.__init__(AK, SK, host=fake.server.url, auth="signature")
        yield {"webhook_id": "wh1", "request_body": {"n": 1}}

    try:
        with pytest.raises(RuntimeError, match="__init__ was not called"):
            client.trigger_webhooks(calls())
        assert ran == []
        assert fake.server.requests == []
    finally:
        client.close()


def test_init_hook_exceptions_come_out_unchanged(certificate):
    class Path:
        def __fspath__(self):
            try:
                raise OSError("the real cause")
            except OSError as cause:
                raise Boom("ca_bundle: mine") from cause

    class Flag:
        def __bool__(self):
            raise Boom("use_unverified_ssl: mine")

    with pytest.raises(Boom) as info:
        ManagementClient(AK, SK, ca_bundle=Path())
    assert type(info.value) is Boom and str(info.value) == "ca_bundle: mine"
    assert isinstance(info.value.__cause__, OSError)
    # The flags take a bool only: an object's __bool__ is never asked.
    with pytest.raises(TypeError, match="use_unverified_ssl: expected True"):
        ManagementClient(AK, SK, use_unverified_ssl=Flag())
    with pytest.raises(TypeError, match="raise_for_status: expected True"):
        ManagementClient(AK, SK, raise_for_status=Flag())
    # A failed __init__ leaves the object uninitialised, and usable once
    # initialised properly.
    client = ManagementClient.__new__(ManagementClient)
    with pytest.raises(Boom):
        client.__init__(AK, SK, ca_bundle=Path())
    assert client.closed
    client.__init__(AK, SK, ca_bundle=str(certificate[0]))
    assert not client.closed
    client.close()


def test_weak_references_follow_the_client(fake):
    """weakref.ref, weakref.finalize and WeakValueDictionary caches: a
    finalizer runs when the client goes, after a call, from a cycle too."""
    import weakref

    client = ManagementClient(AK, SK, host=fake.server.url)
    assert client.trigger_webhook("wh1")["statusCode"] == 200
    finalized, called_back = [], []
    weakref.finalize(client, finalized.append, "finalized")
    ref = weakref.ref(client, lambda r: called_back.append(r() is None))
    cache = weakref.WeakValueDictionary(one=client)
    assert ref() is client and cache["one"] is client
    del client
    assert (finalized, called_back, ref(), len(cache)) == (
        ["finalized"], [True], None, 0)

    cycle = [ManagementClient(AK, SK, host=fake.server.url)]
    cycle.append(cycle)
    weakref.finalize(cycle[0], finalized.append, "in a cycle")
    del cycle
    gc.collect()
    assert finalized == ["finalized", "in a cycle"]


# ---- AsyncManagementClient: initialised once, and clear before that ---------

def test_async_client_init_again_is_refused_and_keeps_its_client(fake):
    """As ManagementClient: a second __init__ (or one re-entered from a log
    handler mid-call) would drop the client in use, its connections still
    open and watched by the loop, where aclose() no longer reaches them."""
    async def main():
        client = genauth_c.AsyncManagementClient(AK, SK, host=fake.server.url)
        try:
            assert (await client.trigger_webhook("wh1"))["statusCode"] == 200
            with pytest.raises(RuntimeError, match="already initialised"):
                client.__init__(AK, SK, host="http://127.0.0.1:9")
            assert client.host == fake.server.url
            assert (await client.trigger_webhook("wh1"))["statusCode"] == 200
        finally:
            await client.aclose()
        return client

    client = asyncio.run(main())
    assert client.closed
    assert fake.server.connections == 1  # one connection, reused


def test_async_client_init_reentered_from_argument_conversion(fake, certificate):
    client = genauth_c.AsyncManagementClient.__new__(
        genauth_c.AsyncManagementClient)

    class Path:
        def __fspath__(self):
            client.__init__(AK, SK, host=fake.server.url)
            return str(certificate[0])

    with pytest.raises(RuntimeError, match="already initialised"):
        client.__init__(AK, SK, host="http://127.0.0.1:9", ca_bundle=Path())
    assert client.host == fake.server.url  # the inner one's, kept

    async def main():
        async with client:
            return await client.trigger_webhook("wh1")

    assert asyncio.run(main())["statusCode"] == 200


def test_an_uninitialised_async_client_says_so():
    """Made by __new__ alone (or its __init__ failed): its repr works, and
    everything else says what is wrong, as ManagementClient's does."""
    cls = genauth_c.AsyncManagementClient
    client = cls.__new__(cls)
    assert repr(client) == "<AsyncManagementClient (uninitialised)>"
    assert client.closed and client.host is None
    assert client.token_fetches == 0

    async def main():
        with pytest.raises(RuntimeError, match=r"__init__ was not called"):
            await client.trigger_webhook("wh1")
        with pytest.raises(RuntimeError, match=r"__init__ was not called"):
            await client.trigger_webhooks([{"webhook_id": "wh1"}])
        with pytest.raises(RuntimeError, match=r"__init__ was not called"):
            async with client:
                pass
        await client.aclose()  # nothing to close

    asyncio.run(main())
    with pytest.raises(TypeError, match="cannot pickle an uninitialised"):
        pickle.dumps(client)
    failed = cls.__new__(cls)
    with pytest.raises(TypeError, match="timeout"):
        failed.__init__(AK, SK, timeout="soon")
    assert repr(failed) == "<AsyncManagementClient (uninitialised)>"
