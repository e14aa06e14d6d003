"""The kinds of event loop the asyncio tests run on (test_async.py's
loop_kind fixture), shared with the scripts those tests run in a process of
their own: asyncio's own, uvloop's (libuv's, which handles sockets its own
way: a poll handle per fd) and, on Python 3.12 and later, asyncio's own
with its eager task factory (a call's coroutine runs to its first await
inside create_task())."""
import asyncio

LOOPS = ["asyncio", "uvloop"] + ["eager"] * hasattr(
    asyncio, "eager_task_factory")


def new_event_loop_of(kind, new_event_loop=asyncio.new_event_loop):
    """What makes a new event loop of `kind`, given asyncio's own
    new_event_loop: what asyncio.run(), asyncio.Runner and
    asyncio.new_event_loop() are made to call (by replacing
    asyncio.events.new_event_loop, which they all call, rather than by an
    event loop policy: policies are deprecated from Python 3.14 on)."""
    if kind == "asyncio":
        return new_event_loop
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop

    def new_eager_loop():
        return as_kind(new_event_loop(), kind)
    return new_eager_loop


def loop_with(mixin, kind, *args):
    """A new loop of `kind` whose class is `mixin` before the kind's loop
    class (loop_class_of): mixin(*args) overrides some of its methods."""
    base = loop_class_of(kind)
    cls = _classes.get((mixin, base))
    if cls is None:
        cls = _classes[mixin, base] = type(mixin.__name__.lstrip("_"),
                                           (mixin, base), {})
    return as_kind(cls(*args), kind)


_classes = {}


def as_kind(loop, kind):
    """`loop`, new, of loop_class_of(kind) or a subclass, made `kind`."""
    if kind == "eager":
        loop.set_task_factory(asyncio.eager_task_factory)
    return loop


async def running_kind():
    """The kind of the running event loop."""
    loop = asyncio.get_running_loop()
    if type(loop).__module__.startswith("uvloop"):
        return "uvloop"
    eager = getattr(asyncio, "eager_task_factory", None)
    if eager is not None and loop.get_task_factory() is eager:
        return "eager"
    return "asyncio"


def loop_class_of(kind):
    """The class of a new event loop of `kind` (made with no arguments,
    then as_kind)."""
    if kind == "uvloop":
        import uvloop
        return uvloop.Loop
    return asyncio.SelectorEventLoop
