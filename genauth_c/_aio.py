"""AsyncManagementClient: ManagementClient's calls as coroutines, run by the
C engine on the running event loop.

The engine (genauth_c._core._AsyncEngine) drives libcurl's multi interface in
its socket mode on one event loop: it registers libcurl's sockets with
loop.add_reader/add_writer and keeps a call_soon and a call_later handle for
its two timers, and the loop calls it back when a socket is ready or a timer
is due. There is no thread and no polling: an idle client has at most its
kept-alive connections registered for reading, which stay silent until the
server closes one.
"""
import asyncio
import inspect
import os
import threading
import types
import warnings
import weakref

from genauth_c._core import (  # type: ignore[import-not-found]  # C, no stub of its own
    ClientClosedError,
    ManagementClient,
    _API_METHODS,
    _AsyncEngine,
)


_INHERITED_LOOP = (
    "this AsyncManagementClient was used on an event loop of the process "
    "this one was forked from, and asyncio does not carry an event loop "
    "across fork() (its selector shares the parent's epoll set); in the "
    "child, run a new event loop (asyncio.run): the client binds to it")

# The clients bound to a loop, for _after_fork_in_child.
_bound: "weakref.WeakSet[AsyncManagementClient]" = weakref.WeakSet()

# Held while a client binds to a loop: two threads' loops may use a new client
# at once, and one binds it. One for every client, so that a child forked
# while another thread of the parent held it gets a free one
# (_after_fork_in_child): that thread does not exist in the child, and would
# never release it.
_binding = threading.Lock()


def _close_engine(engine, loop, on_its_loop):
    """engine.close(), queued on `loop` when on_its_loop (run by the loop
    at its next turn), else now. A loop that closes before running it (or
    while it is being queued) drops it: it closes the engine then. In a
    process forked since the engine was made, now: its loop is the
    parent's, which no thread of this process may ever run again (and whose
    wakeup socket is the parent's), and check_fork has the engine give up
    the parent's calls and sockets here and then."""
    closer = _Closer(engine)
    if on_its_loop and not engine.check_fork():
        try:
            loop.call_soon_threadsafe(closer)
            return
        except RuntimeError:
            if not loop.is_closed():
                raise
    closer()


class _Closer:
    """engine.close() as a callback of its loop's. If the loop drops it
    unrun (loop.close() clears the callbacks it has not run, or the loop is
    collected), the loop will never run anything of the engine again: it
    closes the engine as it goes (which leaves a closed loop untouched)."""

    __slots__ = ("_engine",)

    def __init__(self, engine):
        self._engine = engine

    def __call__(self):
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.close()

    def __del__(self):
        self()


class AsyncManagementClient:
    """A client of GenAuth's V3 management API for asyncio: the constructor,
    options, methods, results and exceptions of ManagementClient, with every
    method a coroutine. Calls run concurrently on the running event loop,
    sharing the client's token and connections, without threads.

    A client belongs to the event loop it is first used on. Use it with
    ``async with`` or call ``await client.aclose()``.
    """

    # Until __init__ succeeds (made by __new__ alone, or its __init__
    # failed): no client, and calls say so.
    _client = None
    _engine = None
    _loop = None

    def __init__(self, /, *args, **kwargs):
        # ManagementClient's constructor (signature set below): it checks
        # and holds the options. Once only, as ManagementClient: another
        # would drop the client in use, its connections still watched by the
        # loop, out of aclose()'s reach. Checked again after the options are
        # converted, which runs the caller's code (a __fspath__).
        self._check_uninitialised()
        client = ManagementClient(*args, **kwargs)
        try:
            self._check_uninitialised()
        except RuntimeError:
            client.close()
            raise
        self._hold(client)

    def _check_uninitialised(self):
        if self._client is not None:
            raise RuntimeError(
                "AsyncManagementClient is already initialised; make a new one")

    def _initialised_client(self):
        client = self._client
        if client is None:
            raise RuntimeError("AsyncManagementClient.__init__ was not called")
        return client

    def _hold(self, client):
        self._client = client
        self._engine = None
        self._loop = None

    # ---- the loop ----------------------------------------------------------

    def _bound_engine(self):
        """The engine, bound to the running loop on first use; from then on
        the running loop must be that one (the engine checks). In a process
        forked since, the engine gives up the parent's calls and
        connections, and the client binds anew to a loop of the child's
        own: never to the parent's, whose copy shares its epoll set."""
        engine = self._engine
        if engine is not None and engine.check_fork():
            with _binding:
                if self._engine is engine:
                    self._engine = None  # self._loop: the parent's
            engine = None
        if engine is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                # asyncio hides a running loop from a forked child.
                if self._loop is not None:
                    raise RuntimeError(_INHERITED_LOOP) from None
                raise
            if loop is self._loop:
                raise RuntimeError(_INHERITED_LOOP)
            with _binding:
                engine = self._engine
                if engine is None:
                    if self._initialised_client().closed:
                        raise ClientClosedError(
                            "the client is closed; make a new "
                            "AsyncManagementClient")
                    engine = _AsyncEngine(self._client, loop)
                    self._engine, self._loop = engine, loop
                    _bound.add(self)
                    return engine
        engine.check_loop()
        return engine

    # ---- calls ---------------------------------------------------------------
    # The API methods (create_webhook, ..., trigger_webhook) are made below
    # from ManagementClient's method table, _API_METHODS.

    async def trigger_webhooks(self, /, calls, *, concurrency=16):
        # (The docstring is ManagementClient.trigger_webhooks', set below.)
        engine = self._bound_engine()
        loop = self._loop
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
            if future.cancelled():
                return
            # Read even when the batch has already stopped: a future whose
            # exception nobody read is logged as an error when collected.
            error = future.exception()
            if finished.done():
                return
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
                # Not on a loop closed with the batch pending (its
                # coroutine is being finalized): it refuses the future's
                # callbacks, and nothing will run them or await it.
                if not loop.is_closed():
                    future.cancel()
            in_flight.clear()
        return results

    # ---- life ----------------------------------------------------------------

    async def aclose(self):
        """Close the connections; calls in flight end with ClientClosedError
        and later calls raise it. Idempotent."""
        self._close()

    def _close(self):
        client = self._client
        if client is None:
            return  # uninitialised: nothing to close
        with _binding:
            engine, loop = self._engine, self._loop
            if engine is None:
                # Closed under the lock: a loop binding the client at this
                # moment, in another thread, then finds it closed, rather
                # than binding an engine this close never sees, whose calls
                # would run on past it, holding their connections.
                client.close()
                return
        # Awaited on another thread's loop while this client's runs in
        # its own thread: the loop's methods and the calls' futures are
        # that thread's alone, so the engine closes there, at the loop's
        # next turn (its calls in flight end with ClientClosedError
        # then). Otherwise (on its own loop, or a loop that is stopped
        # or closed) it closes here and now: the engine waits for, or
        # makes wait, any callback of the loop's in another thread, and
        # has a loop not running here settle the calls' futures
        # (call_soon_threadsafe: it may have started again meanwhile).
        here = _runs_here(loop)
        on_its_loop = loop.is_running() and not here
        _close_engine(engine, loop, on_its_loop)
        client.close()

    async def __aenter__(self):
        if self._initialised_client().closed:
            raise ClientClosedError(
                "the client is closed; make a new AsyncManagementClient")
        return self

    async def __aexit__(self, exc_type, exc, tb):
        await self.aclose()
        return False

    # `with` in place of `async with` (the sync client's habit) would fail
    # with Python's own words, "does not support the context manager
    # protocol", which do not say what to write instead. Not in the stub:
    # there a type checker refuses the `with` before it runs.
    def __enter__(self):
        raise TypeError(
            "AsyncManagementClient is used with 'async with' (or closed with "
            "'await client.aclose()'); ManagementClient is the one for 'with'")

    def __exit__(self, exc_type, exc, tb):  # never reached: __enter__ refuses
        return False

    def __del__(self, _warn=warnings.warn, _close_engine=_close_engine):
        client = self._client
        if client is None or client.closed or self._engine is None:
            return
        try:
            _warn(f"unclosed {self!r}: use 'async with' or 'await "
                  "client.aclose()'", ResourceWarning, source=self)
        finally:  # raised under -W error::ResourceWarning, closed all the same
            # The loop holds the engine while it watches its sockets: it
            # closes it at its next turn, from its own thread, unwatching
            # them (this may run in any thread, or inside the loop's code).
            # A closed loop is not touched: the engine closes here.
            loop = self._loop
            _close_engine(self._engine, loop,
                          on_its_loop=not loop.is_closed())

    def __repr__(self):
        if self._client is None:
            return "<AsyncManagementClient (uninitialised)>"
        return "<Async" + repr(self._client)[1:]

    def __reduce__(self):
        # As ManagementClient: by its options, whether or not it was used, a
        # new client with its own connections, token and event loop (not one
        # sharing this one's engine).
        if self._client is None:
            raise TypeError("cannot pickle an uninitialised "
                            "genauth_c.AsyncManagementClient")
        rebuild, args = self._client.__reduce__()
        reduced = _rebuilt, (type(self), rebuild, args)
        # A subclass's own attributes come along, restored as any object's
        # are; what ties this one to its connections and loop does not.
        state = {name: value for name, value in vars(self).items()
                 if name not in _HELD}
        return reduced + (state,) if state else reduced


def _runs_here(loop):
    """Whether `loop` is the event loop running in this thread."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _after_fork_in_child():
    """In a child forked while calls waited on a running loop (a task forked,
    or a handler): each engine with calls gives them up at the loop's next
    turn, if the child goes on running it, instead of at its next event,
    which may never come (the parent may read its answers first). And the
    binding lock is made afresh: a thread of the parent may have held it."""
    global _binding
    _binding = threading.Lock()
    for client in list(_bound):
        engine, loop = client._engine, client._loop
        if engine is not None and engine.calls:
            try:
                loop.call_soon(engine.check_fork)
            except RuntimeError:  # closed, or (debug) another thread's
                pass


os.register_at_fork(after_in_child=_after_fork_in_child)


# The attributes _hold sets: never pickled or copied (__reduce__).
_HELD = frozenset({"_client", "_engine", "_loop"})


def _rebuilt(cls, rebuild, args):
    """How a pickled or copied AsyncManagementClient comes back: around the
    ManagementClient rebuild(*args) makes, bound to no loop yet."""
    self = cls.__new__(cls)
    self._hold(rebuild(*args))
    return self


def _async_doc(name):
    return (f"Coroutine: ManagementClient.{name}, awaited.\n\n"
            f"{getattr(ManagementClient, name).__doc__}")


def _api_method(name, op):
    """The coroutine for ManagementClient method `name` (table row `op`):
    the same signature, arguments checked by the same parser in C, and the
    same results and exceptions."""
    sync = getattr(ManagementClient, name)

    async def method(self, /, *args, **kwargs):
        # The engine checks the loop, parses the arguments and sends the
        # call; awaiting the call awaits its future.
        call = (self._engine or self._bound_engine()).start(
            op, *args, **kwargs)
        if call is None:  # the engine was made before this process forked
            call = self._bound_engine().start(op, *args, **kwargs)
        try:
            return await call
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


# What an uninitialised client's properties read, as ManagementClient's
# give them (host None, closed True, ...).
_UNINITIALISED = ManagementClient.__new__(ManagementClient)


def _forwarded_property(name, getset):
    return property(
        lambda self: getattr(
            _UNINITIALISED if self._client is None else self._client, name),
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
for _name, _op, *_rest in _API_METHODS:
    setattr(AsyncManagementClient, _name, _api_method(_name, _op))
AsyncManagementClient.trigger_webhooks.__doc__ = _async_doc("trigger_webhooks")
del _name, _attr, _op, _rest, _options
