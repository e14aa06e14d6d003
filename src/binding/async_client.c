/* The C half of AsyncManagementClient (genauth_c/_aio.py holds the rest):
 * _AsyncEngine runs calls on the core's event-driven engine (evloop.c) for
 * one ManagementClient's core client, on one asyncio event loop: its hooks
 * register sockets with loop.add_reader/add_writer and keep a call_soon
 * and a call_later handle for its two timers, through the loop's methods
 * bound once, and the loop calls the engine back. _AsyncCall is one call's
 * request, converted to C before anything is sent, and the future its
 * outcome goes to. The arguments are parsed and the envelopes turned into
 * results by the same table and functions as ManagementClient's
 * (methods.c). Everything here runs on the event loop's thread with the
 * GIL held: no call blocks. */
#include "binding.h"

typedef struct {
    PyObject_HEAD
    PyObject *client;      /* the ManagementClient whose core client runs */
    genauth_client *core;  /* borrowed from `client` */
    genauth_module_state *st; /* the module's, which our type keeps alive */
    int raise_for_status;
    genauth_evloop *ev;
    PyObject *loop;        /* the event loop the engine belongs to */
    /* The loop's methods, bound once, and asyncio.get_running_loop. */
    PyObject *add_reader, *remove_reader, *add_writer, *remove_writer;
    PyObject *call_soon, *call_later, *call_soon_threadsafe, *create_future;
    PyObject *get_running_loop;
    /* This engine's socket_action, timer_fired and settle, bound once: what
     * the loop calls back (a cycle through the engine, which the GC sees). */
    PyObject *on_socket, *on_timer, *on_settle;
    /* The loop's handles for on_timer(GENAUTH_EV_SOON / _LATER), or NULL. */
    PyObject *timers[2];
    /* Bit 1 << which: the loop's method failed to make that timer's handle
     * (Ctrl-C landed in it, say), which the core counts as armed: the
     * timer is run as the outermost entry returns (engine_leave). */
    int timers_lost;
    /* A loop's add_reader or add_writer failed (Ctrl-C landed in it): the
     * core counts that socket as watched and never asks again, so the
     * watches are made again as the outermost entry returns. */
    int watches_lost;
    PyObject *ev_read, *ev_write; /* GENAUTH_EV_READ, _WRITE as ints */
    PyObject *ev_timer[2];        /* GENAUTH_EV_SOON, _LATER as ints */
    PyObject *str_cancel, *str_done, *str_set_result, *str_set_exception;
    /* Set when the loop is gone (the client is being collected, or its loop
     * closed): the hooks and the callbacks touch nothing of the loop. */
    int detached;
    /* Held by every entry into the core engine (engine_enter): `depth`
     * entries by thread `owner`, made in fork generation `generation`. */
    struct {
        PyThread_type_lock lock;
        unsigned long owner;
        int depth;
        unsigned long generation;
    } entry;
    /* close() was asked for from inside the engine: done as the outermost
     * entry returns (engine_leave). */
    int close_pending;
    /* close() runs in a thread where the engine's loop is not running (it
     * is stopped, or runs in its own thread, or has just started there
     * again): the calls' futures are settled by the loop, through
     * call_soon_threadsafe (settle_future). */
    int settle_on_loop;
} EngineObject;

typedef struct {
    PyObject_HEAD
    EngineObject *engine;  /* strong */
    genauth_request req;   /* req.params owned (genauth_params_free) */
    genauth_evcall *evcall; /* while in flight: the engine holds a reference */
    PyObject *future;      /* from start on */
    int outcome;           /* a batch's call: failures become results */
    int started;
    /* A batch's: genauth_evloop_batch_mark() as the batch was made. */
    unsigned long token_queued;
} CallObject;

/* ---- the engine's hooks: calls into the event loop ---------------------- */

/* The exception set by Python code the engine ran where none can come out:
 * an interrupt (KeyboardInterrupt: Ctrl-C landed there; SystemExit) is
 * held, and raised by the entry point that ran the engine as it returns
 * (engine_leave); any other is reported as unraisable. */
static void
report_unraisable(EngineObject *self)
{
    if (!genauth_hold_interrupt())
        PyErr_WriteUnraisable((PyObject *)self);
}

/* self->loop.is_closed(): 1 or 0, or -1 with an exception set. */
static int
loop_is_closed(EngineObject *self)
{
    PyObject *closed = PyObject_CallMethod(self->loop, "is_closed", NULL);
    int is_closed = closed ? PyObject_IsTrue(closed) : -1;
    Py_XDECREF(closed);
    return is_closed;
}

/* The hooks run inside libcurl; a loop method that fails cannot stop it, so
 * the error is reported, not raised (an interrupt is held). A loop closed
 * meanwhile (a task's coroutine finalized after its loop closed cancels its
 * call) is no error: the engine leaves it alone from then on. */
static void
report(PyObject *r, EngineObject *self)
{
    PyObject *type, *value, *tb;
    if (r) {
        Py_DECREF(r);
        return;
    }
    PyErr_Fetch(&type, &value, &tb);
    int is_closed = loop_is_closed(self);
    if (is_closed < 0 && !genauth_hold_interrupt())
        PyErr_Clear(); /* the first error is the one to tell */
    PyErr_Restore(type, value, tb);
    if (is_closed > 0) {
        self->detached = 1;
        if (PyErr_ExceptionMatches(PyExc_Exception)) {
            PyErr_Clear();
            return;
        }
    }
    report_unraisable(self);
}

/* fd watched (add(fd, on_socket, fd, flag)) or not (remove(fd)) for one
 * direction. `forsaken`: fd is a socket of the parent's that this forked
 * child has closed, so that unwatching it fails (EBADF) without touching
 * the epoll set the child's loop may share with the parent: that failure
 * (asyncio raises it when the fd stays watched the other way) is the
 * expected one. */
static void
watch_one(EngineObject *self, PyObject *py_fd, int on, PyObject *add,
          PyObject *remove, PyObject *flag, int forsaken)
{
    PyObject *r = on ? PyObject_CallFunctionObjArgs(add, py_fd,
                                                    self->on_socket, py_fd,
                                                    flag, NULL)
                     : PyObject_CallFunctionObjArgs(remove, py_fd, NULL);
    /* A remove that Ctrl-C cut short, perhaps before its work, is asked
     * once more (the interrupt held): the core no longer lists the fd, so
     * engine_leave cannot redo it as it redoes a lost add, and the loop
     * would call the engine back on every turn for a socket ready to
     * write, at full CPU for as long as the connection is kept. */
    if (!r && !on && genauth_hold_interrupt())
        r = PyObject_CallFunctionObjArgs(remove, py_fd, NULL);
    if (!r && on)
        self->watches_lost = 1;
    if (!r && forsaken && PyErr_ExceptionMatches(PyExc_OSError))
        PyErr_Clear();
    else
        report(r, self);
}

/* Called only when what fd is watched for changes (evloop.c). */
static void
hook_watch(void *userdata, int fd, int events, int was)
{
    EngineObject *self = userdata;
    int changed = events ^ was;
    if (self->detached)
        return;
    int forsaken = !events && self->ev && genauth_evloop_forked(self->ev);
    PyObject *py_fd = PyLong_FromLong(fd);
    if (!py_fd) {
        report(NULL, self);
        return;
    }
    if (changed & GENAUTH_EV_READ)
        watch_one(self, py_fd, events & GENAUTH_EV_READ, self->add_reader,
                  self->remove_reader, self->ev_read, forsaken);
    if ((changed & GENAUTH_EV_WRITE) && !self->detached)
        watch_one(self, py_fd, events & GENAUTH_EV_WRITE, self->add_writer,
                  self->remove_writer, self->ev_write, forsaken);
    Py_DECREF(py_fd);
}

/* A handle on the loop per timer: call_soon for SOON, call_later for
 * LATER. */
static void
hook_timer(void *userdata, int which, long ms)
{
    EngineObject *self = userdata;
    PyObject *handle = NULL;
    if (self->detached)
        return;
    if (self->timers[which]) {
        report(PyObject_CallMethodObjArgs(self->timers[which],
                                          self->str_cancel, NULL),
               self);
        Py_CLEAR(self->timers[which]);
    }
    if (ms < 0 || self->detached)
        return;
    if (which == GENAUTH_EV_SOON) {
        handle = PyObject_CallFunctionObjArgs(self->call_soon, self->on_timer,
                                              self->ev_timer[which], NULL);
    } else {
        PyObject *delay = PyFloat_FromDouble((double)ms / 1000.0);
        handle = delay ? PyObject_CallFunctionObjArgs(
                             self->call_later, delay, self->on_timer,
                             self->ev_timer[which], NULL)
                       : NULL;
        Py_XDECREF(delay);
    }
    if (handle) {
        self->timers[which] = handle;
    } else {
        self->timers_lost |= 1 << which;
        report(NULL, self);
    }
}

/* ---- a call's end: its outcome to the future ----------------------------- */

/* future.set_result(value) / set_exception(value), unless the future is
 * already done (its task was cancelled meanwhile). On the loop's thread,
 * or while the loop is stopped and stays so. */
static void
settle_future_now(EngineObject *engine, PyObject *future, PyObject *value,
                  int is_exception)
{
    int already;
    /* Once more when Ctrl-C cut the first try short, perhaps before its
     * work (the interrupt held): the call has ended, and nothing else
     * would ever settle the future its task awaits. */
    for (int tries = 0; tries < 2; tries++) {
        PyObject *done = PyObject_CallMethodObjArgs(future, engine->str_done,
                                                    NULL);
        already = done ? PyObject_IsTrue(done) : -1;
        Py_XDECREF(done);
        if (already == 0) {
            PyObject *r = PyObject_CallMethodObjArgs(
                future,
                is_exception ? engine->str_set_exception
                             : engine->str_set_result,
                value, NULL);
            if (!r)
                already = -1;
            Py_XDECREF(r);
        }
        if (already >= 0 || !genauth_hold_interrupt())
            break;
    }
    /* A loop closed meanwhile (by its thread, while another closed the
     * client) refuses the future's callbacks: no error, as in a hook. An
     * interrupt in both tries is held: nothing is left to report. */
    if (already < 0 && PyErr_Occurred())
        report(NULL, engine);
}

/* settle_future_now, or, in a close from a thread where the loop is not
 * running, the same queued on the loop (Engine_settle). A future settled
 * from there queues its task's wake-up with call_soon, which a loop that
 * runs (or starts again) meanwhile in its own thread may never see, and
 * which a loop in debug mode refuses from another thread once the future
 * is done: either way the task would never wake. A closed loop refuses it
 * (report): it will never run the task again. */
static void
settle_future(EngineObject *engine, PyObject *future, PyObject *value,
              int is_exception)
{
    if (!engine->settle_on_loop) {
        settle_future_now(engine, future, value, is_exception);
        return;
    }
    report(PyObject_CallFunctionObjArgs(engine->call_soon_threadsafe,
                                        engine->on_settle, future, value,
                                        is_exception ? Py_True : Py_False,
                                        NULL),
           engine);
}

static void
call_done(void *userdata, genauth_status status, const genauth_envelope *resp,
          const genauth_error *err)
{
    CallObject *call = userdata; /* the engine's reference, ours now */
    EngineObject *engine = call->engine;
    genauth_module_state *st = engine->st;
    PyObject *value = NULL;
    int is_exception = 1;

    call->evcall = NULL;
    if (engine->detached)
        goto done;
    if (genauth_log_request(st, genauth_op_method(call->req.op),
                            genauth_op_path(call->req.op), status, resp,
                            err) < 0) {
        /* Ctrl-C while a log handler ran: the outcome is that exception
         * (below), raised where the call, or its batch, is awaited. */
    } else if (status == GENAUTH_OK) {
        value = genauth_envelope_result(st, resp, engine->raise_for_status);
        /* A single call raises what a batch returns. */
        is_exception = value && !PyDict_Check(value) && !call->outcome;
    } else {
        value = genauth_exception_new(st, err);
        /* A batch stops as a whole only when the client does. */
        is_exception = !call->outcome || status == GENAUTH_E_CLOSED ||
                       status == GENAUTH_E_NOMEM;
    }
    if (!value) {
        /* The conversion failed (no memory), or the logging let Ctrl-C
         * out: that is the outcome. */
        value = genauth_take_exception();
        is_exception = 1;
        if (!value)
            goto done;
    }
    settle_future(engine, call->future, value, is_exception);
done:
    Py_XDECREF(value);
    Py_DECREF(call);
}

/* ---- _AsyncEngine ------------------------------------------------------ */

/* A name, and the engine's slot at `offset` that its object goes to. */
typedef struct {
    const char *name;
    size_t offset;
} named_slot;

/* The loop's methods the engine calls. */
static const named_slot loop_methods[] = {
    {"add_reader", offsetof(EngineObject, add_reader)},
    {"remove_reader", offsetof(EngineObject, remove_reader)},
    {"add_writer", offsetof(EngineObject, add_writer)},
    {"remove_writer", offsetof(EngineObject, remove_writer)},
    {"call_soon", offsetof(EngineObject, call_soon)},
    {"call_later", offsetof(EngineObject, call_later)},
    {"call_soon_threadsafe", offsetof(EngineObject, call_soon_threadsafe)},
    {"create_future", offsetof(EngineObject, create_future)},
};

/* The method names it calls on handles and futures, interned. */
static const named_slot engine_strings[] = {
    {"cancel", offsetof(EngineObject, str_cancel)},
    {"done", offsetof(EngineObject, str_done)},
    {"set_result", offsetof(EngineObject, str_set_result)},
    {"set_exception", offsetof(EngineObject, str_set_exception)},
};

#define SLOT(self, offset) ((PyObject **)((char *)(self) + (offset)))

/* _AsyncEngine(client, loop): the engine for a ManagementClient's core
 * client on `loop` (the running one, which it checks on every call). */
static PyObject *
Engine_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    genauth_module_state *st = genauth_state_from_type(type);
    PyObject *client, *loop, *asyncio = NULL;
    EngineObject *self = NULL;
    genauth_error err;

    genauth_error_init(&err);
    if (!st)
        return NULL;
    if (kwargs && PyDict_Size(kwargs)) {
        PyErr_SetString(PyExc_TypeError,
                        "_AsyncEngine() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "_AsyncEngine", 2, 2, &client, &loop))
        return NULL;
    self = (EngineObject *)((allocfunc)PyType_GetSlot(type, Py_tp_alloc))(
        type, 0);
    if (!self)
        return NULL;
    self->st = st;
    if (!PyObject_TypeCheck(client, st->client_type)) {
        PyErr_SetString(PyExc_TypeError,
                        "_AsyncEngine: expected a ManagementClient");
        goto fail;
    }
    self->core = genauth_client_of(client, &self->raise_for_status);
    if (!self->core) {
        PyErr_SetString(PyExc_RuntimeError,
                        "ManagementClient.__init__ was not called");
        goto fail;
    }
    if (genauth_client_is_closed(self->core)) {
        PyErr_SetString(st->ClientClosedError,
                        "the client is closed; make a new "
                        "AsyncManagementClient");
        goto fail;
    }
    self->client = Py_NewRef(client);
    self->loop = Py_NewRef(loop);
    for (size_t i = 0; i < sizeof(loop_methods) / sizeof(*loop_methods);
         i++) {
        PyObject **slot = SLOT(self, loop_methods[i].offset);
        if (!(*slot = PyObject_GetAttrString(loop, loop_methods[i].name)))
            goto fail;
    }
    for (size_t i = 0;
         i < sizeof(engine_strings) / sizeof(*engine_strings); i++) {
        PyObject **slot = SLOT(self, engine_strings[i].offset);
        if (!(*slot = PyUnicode_InternFromString(engine_strings[i].name)))
            goto fail;
    }
    asyncio = PyImport_ImportModule("asyncio");
    if (!asyncio ||
        !(self->get_running_loop =
              PyObject_GetAttrString(asyncio, "get_running_loop")) ||
        !(self->on_socket =
              PyObject_GetAttrString((PyObject *)self, "socket_action")) ||
        !(self->on_timer =
              PyObject_GetAttrString((PyObject *)self, "timer_fired")) ||
        !(self->on_settle =
              PyObject_GetAttrString((PyObject *)self, "settle")) ||
        !(self->ev_read = PyLong_FromLong(GENAUTH_EV_READ)) ||
        !(self->ev_write = PyLong_FromLong(GENAUTH_EV_WRITE)) ||
        !(self->ev_timer[GENAUTH_EV_SOON] = PyLong_FromLong(GENAUTH_EV_SOON)) ||
        !(self->ev_timer[GENAUTH_EV_LATER] =
              PyLong_FromLong(GENAUTH_EV_LATER)))
        goto fail;
    Py_CLEAR(asyncio);
    if (!(self->entry.lock = PyThread_allocate_lock())) {
        PyErr_NoMemory();
        goto fail;
    }
    self->entry.generation = genauth_fork_generation();
    genauth_evloop_hooks hooks = {hook_watch, hook_timer, self};
    if (genauth_evloop_new(self->core, &hooks, &self->ev, &err) !=
        GENAUTH_OK) {
        genauth_raise(st, &err);
        goto fail;
    }
    genauth_error_clear(&err);
    return (PyObject *)self;
fail:
    Py_XDECREF(asyncio);
    genauth_error_clear(&err);
    Py_DECREF(self);
    return NULL;
}

typedef struct {
    visitproc visit;
    void *arg;
} visit_ctx;

static int
visit_call(void *userdata, void *ctx_)
{
    visit_ctx *ctx = ctx_;
    return ctx->visit((PyObject *)userdata, ctx->arg);
}

/* The calls in flight are visited too: the engine holds them (as the
 * userdata of its core calls), and a task awaiting one holds, through its
 * coroutine, the client and so the engine. Without this edge a client
 * whose loop was closed with tasks pending could never be collected. */
static int
Engine_traverse(EngineObject *self, visitproc visit, void *arg)
{
    visit_ctx ctx = {visit, arg};
    Py_VISIT(Py_TYPE((PyObject *)self));
    Py_VISIT(self->client);
    Py_VISIT(self->loop);
    for (size_t i = 0; i < sizeof(loop_methods) / sizeof(*loop_methods); i++)
        Py_VISIT(*SLOT(self, loop_methods[i].offset));
    Py_VISIT(self->on_socket);
    Py_VISIT(self->on_timer);
    Py_VISIT(self->on_settle);
    Py_VISIT(self->timers[0]);
    Py_VISIT(self->timers[1]);
    return self->ev ? genauth_evloop_each(self->ev, visit_call, &ctx) : 0;
}

static int
Engine_clear(EngineObject *self)
{
    if (self->ev) {
        /* Collected: the loop may be closed or gone; calls still in flight
         * are dropped without touching their futures. */
        self->detached = 1;
        genauth_evloop_free(self->ev);
        self->ev = NULL;
    }
    Py_CLEAR(self->client);
    Py_CLEAR(self->loop);
    for (size_t i = 0; i < sizeof(loop_methods) / sizeof(*loop_methods); i++)
        Py_CLEAR(*SLOT(self, loop_methods[i].offset));
    Py_CLEAR(self->on_socket);
    Py_CLEAR(self->on_timer);
    Py_CLEAR(self->on_settle);
    Py_CLEAR(self->timers[0]);
    Py_CLEAR(self->timers[1]);
    return 0;
}

static void
Engine_dealloc(EngineObject *self)
{
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    PyObject_GC_UnTrack(self);
    Engine_clear(self);
    for (size_t i = 0;
         i < sizeof(engine_strings) / sizeof(*engine_strings); i++)
        Py_CLEAR(*SLOT(self, engine_strings[i].offset));
    Py_CLEAR(self->get_running_loop);
    Py_CLEAR(self->ev_read);
    Py_CLEAR(self->ev_write);
    Py_CLEAR(self->ev_timer[0]);
    Py_CLEAR(self->ev_timer[1]);
    /* In a child forked since, it may be held by a thread of the parent's
     * (see engine_enter): left as it is. */
    if (self->entry.lock &&
        self->entry.generation == genauth_fork_generation())
        PyThread_free_lock(self->entry.lock);
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(self);
    Py_DECREF(tp);
}

#define OTHER_LOOP                                                           \
    "this AsyncManagementClient belongs to the event loop it was first "     \
    "used on, not to the running one; make one client per event loop"
#define OTHER_CLOSED_LOOP                                                    \
    "this AsyncManagementClient belongs to the event loop it was first "     \
    "used on, which is closed (each asyncio.run() makes a new loop): make "  \
    "the client in the coroutine that asyncio.run() runs, one per event "    \
    "loop"

/* 0 when the running loop is the engine's; -1 with RuntimeError raised
 * when it is another, or none. */
static int
check_loop(EngineObject *self)
{
    PyObject *running = PyObject_CallNoArgs(self->get_running_loop);
    if (!running)
        return -1;
    int ours = running == self->loop;
    Py_DECREF(running);
    if (!ours) {
        /* Its loop closed: a script's second asyncio.run(), which makes a
         * new loop each time. Said so, with what to do instead. */
        int is_closed = loop_is_closed(self);
        if (is_closed < 0)
            return -1;
        PyErr_SetString(PyExc_RuntimeError,
                        is_closed ? OTHER_CLOSED_LOOP : OTHER_LOOP);
        return -1;
    }
    return 0;
}

static int
engine_live(EngineObject *self, genauth_module_state *st)
{
    if (!self->ev || genauth_client_is_closed(self->core)) {
        PyErr_SetString(st->ClientClosedError,
                        "the client is closed; make a new "
                        "AsyncManagementClient");
        return 0;
    }
    return 1;
}

/* ---- entering the engine ------------------------------------------------
 * The core engine is single-threaded: it is the loop thread's. But a client
 * may be closed from any thread (aclose() awaited on another thread's loop,
 * the client collected there, a close queued on a loop that was closed
 * before running it), and every Python call the engine makes (a hook, a
 * future, a log handler) may hand the GIL to another thread. So each entry
 * into it (the loop's callbacks, a call's start or cancel, close, the
 * getters) holds entry.lock: a close from another thread waits for the
 * callback in progress, and the loop's later callbacks find the engine
 * closed. The entries nest on one thread (the engine's Python calls run
 * caller code, which may enter it again), and a close asked for from
 * inside waits for the outermost entry to return (close_pending): the core
 * engine must never be closed under its own feet. */

/* 0 once this thread holds the engine; -1 with MemoryError raised. Blocks,
 * with the GIL released, while another thread is inside it. */
static int
engine_enter(EngineObject *self)
{
    unsigned long me = PyThread_get_thread_ident();
    unsigned long generation = genauth_fork_generation();

    if (self->entry.generation != generation) {
        /* A child forked since the lock was made: the thread that held it
         * may not exist here. Unless this thread itself was inside the
         * engine when it forked (a hook or a log handler forked), the lock
         * is made anew; the old one is left as it is, as CPython's
         * _PyThread_at_fork_reinit does: it may be in any state, and
         * freeing it is undefined. */
        if (!(self->entry.depth && self->entry.owner == me)) {
            PyThread_type_lock lock = PyThread_allocate_lock();
            if (!lock) {
                PyErr_NoMemory();
                return -1;
            }
            self->entry.lock = lock;
            self->entry.depth = 0;
        }
        self->entry.generation = generation;
    }
    if (self->entry.depth && self->entry.owner == me) {
        self->entry.depth++;
        return 0;
    }
    if (!PyThread_acquire_lock(self->entry.lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(self->entry.lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    self->entry.owner = me;
    self->entry.depth = 1;
    return 0;
}

/* Sets `detached` when the loop is closed (it will never run the engine's
 * handles again, and a closed loop refuses new ones). */
static void
detach_if_loop_closed(EngineObject *self)
{
    if (self->detached)
        return;
    PyObject *closed = PyObject_CallMethod(self->loop, "is_closed", NULL);
    int is_closed = closed ? PyObject_IsTrue(closed) : -1;
    Py_XDECREF(closed);
    if (is_closed < 0)
        report_unraisable(self);
    else if (is_closed)
        self->detached = 1;
}

/* Ends the calls in flight with ClientClosedError, closes the connections
 * (unwatched first, unless the loop is closed) and the core client. Keeps
 * an exception already set. Inside the engine, as its outermost entry. */
static void
engine_close_now(EngineObject *self)
{
    PyObject *type, *value, *tb;
    if (!self->ev)
        return;
    PyErr_Fetch(&type, &value, &tb);
    detach_if_loop_closed(self);
    genauth_evloop_close(self->ev);
    genauth_client_close(self->core);
    PyErr_Restore(type, value, tb);
}

/* The timers whose handles the loop failed to make, run now (early is no
 * harm: the core arms what it still wants anew), once: a loop whose method
 * keeps failing does not hold the entry forever. Keeps an exception
 * already set. Inside the engine, as its outermost entry. */
static void
run_lost_timers(EngineObject *self)
{
    PyObject *type, *value, *tb;
    int lost = self->timers_lost;
    self->timers_lost = 0;
    PyErr_Fetch(&type, &value, &tb);
    for (int which = GENAUTH_EV_SOON; which <= GENAUTH_EV_LATER; which++) {
        if ((lost & (1 << which)) && self->ev && !self->detached)
            genauth_evloop_timer_fired(self->ev, which);
    }
    PyErr_Restore(type, value, tb);
}

static int
rewatch_one(int fd, int events, void *arg)
{
    EngineObject *self = arg;
    if (!self->detached)
        hook_watch(self, fd, events, 0);
    return 0;
}

/* Every socket the core watches, watched again (adding a reader or writer
 * the loop has is no harm: it replaces it), once, as for lost timers.
 * Keeps an exception already set. Inside the engine, as its outermost
 * entry. */
static void
rewatch_lost(EngineObject *self)
{
    PyObject *type, *value, *tb;
    self->watches_lost = 0;
    if (!self->ev || self->detached || genauth_evloop_forked(self->ev))
        return;
    PyErr_Fetch(&type, &value, &tb);
    genauth_evloop_each_watched(self->ev, rewatch_one, self);
    PyErr_Restore(type, value, tb);
}

/* Leaves the engine, on the way back to Python: -1 with the interrupt
 * that Python code the engine ran held meanwhile (report_unraisable, or a
 * log handler's: genauth_hold_interrupt) raised, else 0. Every entry point
 * returns to Python right after, with that exception when -1 (a nested
 * entry returns it to the Python code the engine ran, which lets it out,
 * to be held again): so none is held past the entry point that ran the
 * core. */
static int
engine_leave(EngineObject *self)
{
    if (self->entry.depth == 1 && self->watches_lost)
        rewatch_lost(self);
    if (self->entry.depth == 1 && self->timers_lost)
        run_lost_timers(self);
    /* The close runs caller code too, which may ask for it again. */
    while (self->entry.depth == 1 && self->close_pending) {
        self->close_pending = 0;
        engine_close_now(self);
    }
    if (--self->entry.depth == 0)
        PyThread_release_lock(self->entry.lock);
    return genauth_raise_held();
}

/* In a child forked since the engine was made: the engine gives up the
 * parent's calls and connections (genauth_evloop_close does, there: the
 * calls end with TransportError), touching nothing of a loop that was
 * closed meanwhile, and 1; else 0; -1 with an exception raised. */
static int
engine_forked(EngineObject *self)
{
    if (!self->ev || !genauth_evloop_forked(self->ev))
        return 0;
    if (engine_enter(self) < 0)
        return -1;
    detach_if_loop_closed(self);
    if (self->ev)
        genauth_evloop_close(self->ev);
    return engine_leave(self) < 0 ? -1 : 1;
}

/* socket_action(fd, events): the loop saw fd ready. */
static PyObject *
Engine_socket_action(EngineObject *self, PyObject *const *args,
                     Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError,
                        "socket_action() takes 2 arguments (fd, events)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    long events = fd == -1 && PyErr_Occurred() ? 0 : PyLong_AsLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (engine_enter(self) < 0)
        return NULL;
    if (self->ev)
        genauth_evloop_socket_ready(self->ev, (int)fd, (int)events);
    if (engine_leave(self) < 0)
        return NULL; /* Ctrl-C in a loop method or on a log line */
    Py_RETURN_NONE;
}

/* timer_fired(which): the loop ran timer `which` (GENAUTH_EV_SOON or
 * _LATER). */
static PyObject *
Engine_timer_fired(EngineObject *self, PyObject *arg)
{
    long which = PyLong_AsLong(arg);
    if (which == -1 && PyErr_Occurred())
        return NULL;
    if (which != GENAUTH_EV_SOON && which != GENAUTH_EV_LATER) {
        PyErr_SetString(PyExc_ValueError, "timer_fired(): unknown timer");
        return NULL;
    }
    if (engine_enter(self) < 0)
        return NULL;
    Py_CLEAR(self->timers[which]); /* spent */
    if (self->ev)
        genauth_evloop_timer_fired(self->ev, (int)which);
    if (engine_leave(self) < 0)
        return NULL; /* Ctrl-C in a loop method or on a log line */
    Py_RETURN_NONE;
}

/* A call object of `op` that owns `params` (even on failure: NULL, with
 * an exception set). */
static CallObject *
call_new(EngineObject *self, genauth_module_state *st, genauth_op op,
         cJSON *params)
{
    CallObject *call = PyObject_GC_New(CallObject, st->async_call_type);
    if (!call) {
        genauth_params_free(params);
        return NULL;
    }
    call->engine = (EngineObject *)Py_NewRef((PyObject *)self);
    call->req.op = op;
    call->req.params = params;
    call->evcall = NULL;
    call->future = NULL;
    call->outcome = 0;
    call->started = 0;
    PyObject_GC_Track(call);
    return call;
}

static int call_start(CallObject *self, PyObject *future);

/* start(op, /, *args, **kwargs) -> call: API method `op` (an index of
 * _API_METHODS), on the running loop, which must be the engine's: the
 * arguments parsed and converted by ManagementClient's own parser (bad ones
 * raise before anything is sent), then the call sent; `await call` gives
 * its outcome. None, sending nothing, in a process forked since the engine
 * was made (it gives up the parent's calls then: check_fork). */
static PyObject *
Engine_start(EngineObject *self, PyObject *const *args, Py_ssize_t nargs,
             PyObject *kwnames)
{
    genauth_module_state *st = self->st;
    PyObject *future = NULL;
    CallObject *call = NULL;
    long op;

    if (nargs < 1 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "start() takes the method's op first");
        return NULL;
    }
    op = PyLong_AsLong(args[0]);
    if (op < 0 || op >= GENAUTH_OP_COUNT) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "start(): unknown op");
        return NULL;
    }
    /* Made before this process forked: given up; the client binds anew. */
    int forked = engine_forked(self);
    if (forked < 0)
        return NULL;
    if (forked)
        Py_RETURN_NONE;
    if (check_loop(self) < 0 || !engine_live(self, st))
        return NULL;
    cJSON *params = genauth_method_params(
        (genauth_op)op, 1, genauth_client_signs_payloads(self->client),
        args + 1, nargs - 1, kwnames);
    if (!params || !(call = call_new(self, st, (genauth_op)op, params)))
        return NULL;
    future = PyObject_CallNoArgs(self->create_future);
    if (!future || call_start(call, future) < 0)
        Py_CLEAR(call);
    Py_XDECREF(future);
    return (PyObject *)call;
}

/* prepare_batch(*args, **kwargs) -> (calls, concurrency): trigger_webhooks'
 * arguments, parsed and converted by ManagementClient's own code, every
 * call checked before any is sent. */
static PyObject *
Engine_prepare_batch(EngineObject *self, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    genauth_module_state *st = self->st;
    PyObject *list = NULL, *result = NULL;
    cJSON **params = NULL;
    Py_ssize_t n = 0, i = 0;
    long long concurrency;

    if (!engine_live(self, st) ||
        genauth_batch_params(1, genauth_client_signs_payloads(self->client),
                             args, nargs, kwnames,
                             &params, &n, &concurrency) < 0)
        return NULL;
    unsigned long queued = genauth_evloop_batch_mark(self->ev);
    list = PyList_New(n);
    /* Untracked while it has NULL slots: call_new's allocations may run a
     * collection, and the caller's code with it (convert.c's
     * genauth_doc_node_to_py says why). */
    if (list)
        PyObject_GC_UnTrack(list);
    for (; list && i < n; i++) {
        CallObject *call = call_new(self, st, GENAUTH_OP_TRIGGER_WEBHOOK,
                                    params[i]);
        if (!call) {
            Py_CLEAR(list);
            i++; /* params[i] is freed */
            break;
        }
        call->outcome = 1;
        call->token_queued = queued;
        if (PyList_SetItem(list, i, (PyObject *)call) < 0) { /* steals */
            Py_CLEAR(list);
            i++; /* params[i] went with the call */
            break;
        }
    }
    for (; i < n; i++)
        genauth_params_free(params[i]); /* not handed to a call */
    PyMem_Free(params);
    if (list) {
        PyObject_GC_Track(list);
        result = Py_BuildValue("(NL)", list, concurrency);
    }
    return result;
}

PyDoc_STRVAR(Engine_close_doc, "close($self, /)\n--\n\n"
"End the calls in flight with ClientClosedError, close the connections and\n"
"the ManagementClient. Idempotent. From any thread: it waits for a\n"
"callback of the loop's in progress, and where the loop is not running the\n"
"calls' futures are settled by the loop (call_soon_threadsafe); called back\n"
"from inside the engine, it closes it as that callback returns. A closed\n"
"loop is not touched.");

static PyObject *
Engine_close(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    /* Whether the engine's loop is the one running in this thread. */
    PyObject *running = PyObject_CallNoArgs(self->get_running_loop);
    if (!running) {
        if (!PyErr_ExceptionMatches(PyExc_RuntimeError))
            return NULL;
        PyErr_Clear(); /* none */
    }
    int on_loop = running == self->loop;
    Py_XDECREF(running);
    if (engine_enter(self) < 0)
        return NULL;
    if (self->entry.depth > 1) {
        self->close_pending = 1; /* called back from inside the engine */
    } else {
        self->settle_on_loop = !on_loop;
        engine_close_now(self);
        self->settle_on_loop = 0;
    }
    if (engine_leave(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* settle(future, value, is_exception): what a close from another thread
 * queued on the loop (settle_future). */
static PyObject *
Engine_settle(EngineObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "settle() takes 3 arguments (future, value, "
                        "is_exception)");
        return NULL;
    }
    int is_exception = PyObject_IsTrue(args[2]);
    if (is_exception < 0 || engine_enter(self) < 0)
        return NULL;
    settle_future_now(self, args[0], args[1], is_exception);
    if (engine_leave(self) < 0)
        return NULL; /* Ctrl-C in the future's method */
    Py_RETURN_NONE;
}

static PyObject *
Engine_check_fork(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    int forked = engine_forked(self);
    return forked < 0 ? NULL : PyBool_FromLong(forked);
}

static PyObject *
Engine_check_loop(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (check_loop(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static int
add_watched(int fd, int events, void *dict)
{
    PyObject *key = PyLong_FromLong(fd);
    PyObject *value = key ? PyLong_FromLong(events) : NULL;
    int rc = value ? PyDict_SetItem(dict, key, value) : -1;
    Py_XDECREF(key);
    Py_XDECREF(value);
    return rc;
}

static PyObject *
Engine_get_watched(EngineObject *self, void *closure)
{
    (void)closure;
    PyObject *dict = PyDict_New();
    if (!dict || engine_enter(self) < 0) {
        Py_XDECREF(dict);
        return NULL;
    }
    if (self->ev &&
        genauth_evloop_each_watched(self->ev, add_watched, dict) != 0)
        Py_CLEAR(dict);
    if (engine_leave(self) < 0)
        Py_CLEAR(dict);
    return dict;
}

static PyObject *
Engine_get_calls(EngineObject *self, void *closure)
{
    (void)closure;
    if (engine_enter(self) < 0)
        return NULL;
    size_t calls = self->ev ? genauth_evloop_calls(self->ev) : 0;
    if (engine_leave(self) < 0)
        return NULL;
    return PyLong_FromSize_t(calls);
}

static PyMethodDef Engine_methods[] = {
    {"socket_action", (PyCFunction)(void (*)(void))Engine_socket_action,
     METH_FASTCALL, NULL},
    {"timer_fired", (PyCFunction)Engine_timer_fired, METH_O, NULL},
    {"settle", (PyCFunction)(void (*)(void))Engine_settle, METH_FASTCALL,
     NULL},
    {"start", (PyCFunction)(void (*)(void))Engine_start,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"prepare_batch", (PyCFunction)(void (*)(void))Engine_prepare_batch,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"close", (PyCFunction)Engine_close, METH_NOARGS, Engine_close_doc},
    {"check_loop", (PyCFunction)Engine_check_loop, METH_NOARGS,
     "Raise RuntimeError unless the running loop is the engine's."},
    {"check_fork", (PyCFunction)Engine_check_fork, METH_NOARGS,
     "True in a process forked since the engine was made: it has then "
     "given up the parent's calls (they end with TransportError) and "
     "connections, and serves no more."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"calls", (getter)Engine_get_calls, NULL,
     "Calls started and not yet ended or cancelled (int).", NULL},
    {"watched", (getter)Engine_get_watched, NULL,
     "What the loop watches now: {fd: 1 read, 2 write, 3 both}.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Engine_slots[] = {
    {Py_tp_doc, "The engine under an AsyncManagementClient (internal)."},
    {Py_tp_new, Engine_new},
    {Py_tp_dealloc, Engine_dealloc},
    {Py_tp_traverse, Engine_traverse},
    {Py_tp_clear, Engine_clear},
    {Py_tp_methods, Engine_methods},
    {Py_tp_getset, Engine_getset},
    {0, NULL},
};

static PyType_Spec Engine_spec = {
    .name = "genauth_c._core._AsyncEngine",
    .basicsize = sizeof(EngineObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Engine_slots,
};

/* ---- _AsyncCall ---------------------------------------------------------- */

/* Sends the call; its outcome goes to `future`. 0, or -1 with the
 * exception raised. */
static int
call_start(CallObject *self, PyObject *future)
{
    EngineObject *engine = self->engine;
    genauth_module_state *st = engine->st;
    genauth_error err;

    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "the call was already started");
        return -1;
    }
    if (!engine_live(engine, st) || engine_enter(engine) < 0)
        return -1;
    int rc = 0;
    self->started = 1;
    genauth_error_init(&err);
    self->future = Py_NewRef(future);
    /* The engine holds the call until it ends. */
    Py_INCREF((PyObject *)self);
    if (genauth_evloop_start(engine->ev, &self->req,
                             self->outcome ? &self->token_queued : NULL,
                             call_done, self, &self->evcall,
                             &err) != GENAUTH_OK) {
        if (self->outcome && err.status == GENAUTH_E_TRANSPORT &&
            genauth_evloop_forked(engine->ev)) {
            /* A batch's call yet to start when the process forked: in the
             * child it ends as the batch's calls in flight did, its error
             * its result (call_done takes the engine's reference). */
            call_done(self, err.status, NULL, &err);
        } else {
            Py_DECREF(self);
            rc = -1;
        }
    } else if (genauth_interrupt_held() && self->evcall) {
        /* Ctrl-C landed in a loop method the start called: the start
         * raises it, and nobody awaits the call; its transfer leaves
         * libcurl now. */
        genauth_evloop_cancel(engine->ev, self->evcall);
        self->evcall = NULL;
        Py_DECREF(self); /* the engine's reference */
    }
    if (rc < 0)
        genauth_raise(st, &err);
    if (engine_leave(engine) < 0)
        rc = -1;
    genauth_error_clear(&err);
    return rc;
}

/* start(future, /): sends the call; its outcome goes to `future`. */
static PyObject *
Call_start(CallObject *self, PyObject *future)
{
    if (call_start(self, future) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* cancel(): the call's transfer leaves libcurl now; nothing when it ended.
 * Its DEBUG line, as for a sync call that Ctrl-C stops: its request may
 * have reached the server. */
static PyObject *
Call_cancel(CallObject *self, PyObject *Py_UNUSED(ignored))
{
    EngineObject *engine = self->engine;
    genauth_error err;
    int cancelled = 0;
    if (!self->evcall)
        Py_RETURN_NONE; /* ended, or never started */
    if (engine_enter(engine) < 0)
        return NULL;
    genauth_error_init(&err);
    /* Ended meanwhile, while another thread closed the engine. */
    if (self->evcall && engine->ev) {
        genauth_error_set(&err, GENAUTH_E_INTERRUPTED,
                          "the call was cancelled");
        genauth_evcall_record(self->evcall, &err);
        genauth_evloop_cancel(engine->ev, self->evcall);
        self->evcall = NULL;
        cancelled = 1;
        Py_DECREF(self); /* the engine's reference; the caller holds one */
    }
    if (engine_leave(engine) < 0)
        return NULL;
    /* Outside the engine: a handler may make calls of its own. */
    if (cancelled &&
        genauth_log_request(engine->st, genauth_op_method(self->req.op),
                            genauth_op_path(self->req.op),
                            GENAUTH_E_INTERRUPTED, NULL, &err) < 0)
        return NULL; /* Ctrl-C while a log handler ran */
    Py_RETURN_NONE;
}

/* `await call`: awaits its future. */
static PyObject *
Call_await(CallObject *self)
{
    if (!self->future) {
        PyErr_SetString(PyExc_RuntimeError, "the call was not started");
        return NULL;
    }
    unaryfunc await =
        (unaryfunc)PyType_GetSlot(Py_TYPE(self->future), Py_am_await);
    if (await)
        return await(self->future);
    return PyObject_CallMethod(self->future, "__await__", NULL);
}

static int
Call_traverse(CallObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self));
    Py_VISIT(self->engine);
    Py_VISIT(self->future);
    return 0;
}

static int
Call_clear(CallObject *self)
{
    /* A call in flight keeps what its end needs; the engine's own clear
     * ends it (the engine is in the same garbage). */
    if (self->evcall)
        return 0;
    Py_CLEAR(self->future);
    Py_CLEAR(self->engine);
    return 0;
}

static void
Call_dealloc(CallObject *self)
{
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    PyObject_GC_UnTrack(self);
    Call_clear(self);
    genauth_params_free((cJSON *)self->req.params);
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(self);
    Py_DECREF(tp);
}

static PyMethodDef Call_methods[] = {
    {"start", (PyCFunction)Call_start, METH_O, NULL},
    {"cancel", (PyCFunction)Call_cancel, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Call_slots[] = {
    {Py_tp_doc, "One call of an AsyncManagementClient (internal)."},
    {Py_tp_dealloc, Call_dealloc},
    {Py_tp_traverse, Call_traverse},
    {Py_tp_clear, Call_clear},
    {Py_tp_methods, Call_methods},
    {Py_am_await, Call_await},
    {0, NULL},
};

static PyType_Spec Call_spec = {
    .name = "genauth_c._core._AsyncCall",
    .basicsize = sizeof(CallObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = Call_slots,
};

int
genauth_async_types_add(PyObject *module, genauth_module_state *st)
{
    st->async_engine_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &Engine_spec, NULL);
    if (!st->async_engine_type ||
        PyModule_AddType(module, st->async_engine_type) < 0)
        return -1;
    st->async_call_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &Call_spec, NULL);
    if (!st->async_call_type)
        return -1;
    PyObject *ops = genauth_api_method_ops();
    int rc = ops ? PyModule_AddObjectRef(module, "_API_METHODS", ops) : -1;
    Py_XDECREF(ops);
    return rc;
}
