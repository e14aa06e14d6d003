"""AsyncManagementClient: ManagementClient's calls as coroutines, run by the
C engine on the running event loop.

The engine (genauth_c._core._AsyncEngine) drives libcurl's multi interface in
its socket mode. It says which sockets to watch and when it next needs the
timer; _Driver turns that into loop.add_reader/add_writer/remove_* and one
call_later/call_soon handle, and the loop calls the engine back when a socket
is ready or the timer is due. There is no thread and no polling: an idle
client has nothing registered with the loop.
"""
import asyncio
import inspect
import types
import warnings

from genauth_c._core import (  # type: ignore[import-not-found]  # C, no stub of its own
    ClientClosedError,
    ManagementClient,
    _API_METHODS,
    _AsyncEngine,
)

_READ, _WRITE = 1, 2  # GENAUTH_EV_READ, GENAUTH_EV_WRITE


class _Driver:
    """The engine's hooks on one event loop. Holds no reference to the
    engine: the loop does, through the callbacks registered for it, and only
    while something is registered."""

    __slots__ = ("loop", "fds", "handle")

    def __init__(self, loop):
        self.loop = loop
        self.fds = {}  # fd -> events registered with the loop
        self.handle = None  # the timer

    def watch(self, engine, fd, events):
        loop = self.loop
        if loop.is_closed():
            return
        old = self.fds.get(fd, 0)
        if old & _READ and not events & _READ:
            loop.remove_reader(fd)
        if old & _WRITE and not events & _WRITE:
            loop.remove_writer(fd)
        if events & _READ and not old & _READ:
            loop.add_reader(fd, engine.socket_action, fd, _READ)
        if events & _WRITE and not old & _WRITE:
            loop.add_writer(fd, engine.socket_action, fd, _WRITE)
        if events:
            self.fds[fd] = events
        else:
            self.fds.pop(fd, None)

    def timer(self, engine, ms):
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
        if ms < 0 or self.loop.is_closed():
            return
        if ms == 0:
            self.handle = self.loop.call_soon(engine.timer_fired)
        else:
            self.handle = self.loop.call_later(ms / 1000, engine.timer_fired)


class AsyncManagementClient:
    """A client of GenAuth's V3 management API for asyncio: the constructor,
    options, methods, results and exceptions of ManagementClient, with every
    method a coroutine. Calls run concurrently on the running event loop,
    sharing the client's token and connections, without threads.

    A client belongs to the event loop it is first used on. Use it with
    ``async with`` or call ``await client.aclose()``.
    """

    def __init__(self, /, *args, **kwargs):
        # ManagementClient's constructor (signature set below): it checks
        # and holds the options.
        self._client = ManagementClient(*args, **kwargs)
        self._engine = None
        self._loop = None
        self._driver_for_tests = None

    # ---- the loop ----------------------------------------------------------

    def _engine_for_running_loop(self):
        """The engine, bound to the running loop on first use."""
        loop = asyncio.get_running_loop()
        engine = self._engine
        if engine is None:
            if self._client.closed:
                raise ClientClosedError(
                    "the client is closed; make a new AsyncManagementClient")
            driver = _Driver(loop)
            engine = _AsyncEngine(self._client, driver)
            self._engine, self._loop = engine, loop
            self._driver_for_tests = driver
        elif loop is not self._loop:
            raise RuntimeError(
                "this AsyncManagementClient belongs to the event loop it was "
                "first used on, not to the running one; make one client per "
                "event loop")
        return engine, loop

    # ---- calls ---------------------------------------------------------------
    # The API methods (create_webhook, ..., trigger_webhook) are made below
    # from ManagementClient's method table, _API_METHODS.

    async def trigger_webhooks(self, calls, *, concurrency=16):
        # (The docstring is ManagementClient.trigger_webhooks', set below.)
        engine, loop = self._engine_for_running_loop()
        prepared, concurrency = engine.prepare_batch(
            calls, concurrency=concurrency)
        n = len(prepared)
        results = [None] * n
        if n == 0:
            return results
        finished = loop.create_future()
        in_flight = {}
        state = {"next": 0, "ended": 0}

        def start_next():
            i = state["next"]
            state["next"] = i + 1
            future = loop.create_future()
            prepared[i].start(future)
            in_flight[i] = future
            future.add_done_callback(lambda f: landed(i, f))

        def landed(i, future):
            in_flight.pop(i, None)
            if finished.done() or future.cancelled():
                return
            error = future.exception()
            if error is not None:  # the client was closed: the batch stops
                finished.set_exception(error)
                return
            results[i] = future.result()
            state["ended"] += 1
            if state["ended"] == n:
                finished.set_result(None)
            elif state["next"] < n:
                try:
                    start_next()
                except BaseException as e:
                    finished.set_exception(e)

        try:
            for _ in range(min(concurrency, n)):
                start_next()
            await finished
        finally:
            for i, future in list(in_flight.items()):
                prepared[i].cancel()
                future.cancel()
            in_flight.clear()
        return results

    # ---- life ----------------------------------------------------------------

    async def aclose(self):
        """Close the connections; calls in flight end with ClientClosedError
        and later calls raise it. Idempotent."""
        self._close()

    def _close(self):
        engine = self._engine
        if engine is not None:
            if self._loop.is_closed():
                engine.detach()
            engine.close()
        self._client.close()

    async def __aenter__(self):
        if self._client.closed:
            raise ClientClosedError(
                "the client is closed; make a new AsyncManagementClient")
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await self.aclose()
        return False

    def __del__(self, _warn=warnings.warn):
        client = getattr(self, "_client", None)
        if client is None or client.closed or self._engine is None:
            return
        _warn(f"unclosed {self!r}: use 'async with' or 'await "
              "client.aclose()'", ResourceWarning, source=self)
        # The loop may be closed or gone: close without touching it.
        self._engine.detach()
        self._engine.close()

    def __repr__(self):
        return "<Async" + repr(self._client)[1:]


def _async_doc(name):
    return (f"Coroutine: ManagementClient.{name}, awaited.\n\n"
            f"{getattr(ManagementClient, name).__doc__}")


def _api_method(name, op):
    """The coroutine for ManagementClient method `name` (table row `op`):
    the same signature, arguments checked by the same parser in C, and the
    same results and exceptions."""
    sync = getattr(ManagementClient, name)

    async def method(self, /, *args, **kwargs):
        engine, loop = self._engine_for_running_loop()
        call = engine.prepare(op, *args, **kwargs)
        future = loop.create_future()
        call.start(future)
        try:
            return await future
        except BaseException:
            # Cancelled (or the task was stopped otherwise): the transfer
            # leaves libcurl now. A call that ended has nothing to cancel.
            call.cancel()
            raise

    method.__name__ = name
    method.__qualname__ = f"AsyncManagementClient.{name}"
    method.__module__ = AsyncManagementClient.__module__
    method.__doc__ = _async_doc(name)
    # help() and inspect show the real parameters, read from the C method's
    # text signature.
    method.__signature__ = inspect.signature(sync)
    return method


def _forwarded_property(name, getset):
    return property(lambda self: getattr(self._client, name),
                    doc=getset.__doc__)


# What ManagementClient has, AsyncManagementClient has: the constructor's
# signature, the read-only properties (host, timeout, closed, ...) and, as
# coroutines, the API methods.
_options = inspect.signature(ManagementClient)
AsyncManagementClient.__init__.__signature__ = _options.replace(  # type: ignore[attr-defined]
    parameters=[
    inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY),
    *_options.parameters.values()])
for _name, _attr in vars(ManagementClient).items():
    if isinstance(_attr, types.GetSetDescriptorType):
        setattr(AsyncManagementClient, _name,
                _forwarded_property(_name, _attr))
for _name, _op in _API_METHODS:
    setattr(AsyncManagementClient, _name, _api_method(_name, _op))
AsyncManagementClient.trigger_webhooks.__doc__ = _async_doc("trigger_webhooks")
del _name, _attr, _op, _options
