/* The C half of AsyncManagementClient (genauth_c/_aio.py holds the asyncio
 * half): _AsyncEngine runs calls on the core's event-driven engine
 * (evloop.c) for one ManagementClient's core client, and tells a driver
 * (the Python object that talks to the event loop) which sockets to watch
 * and when to wake it; _AsyncCall is one call's request, converted to C
 * before anything is sent, and the future its outcome goes to. The
 * arguments are parsed and the envelopes turned into results by the same
 * table and functions as ManagementClient's (methods.c). Everything here
 * runs on the event loop's thread with the GIL held: no call blocks. */
#include "binding.h"

typedef struct {
    PyObject_HEAD
    PyObject *client;      /* the ManagementClient whose core client runs */
    genauth_client *core;  /* borrowed from `client` */
    int raise_for_status;
    genauth_evloop *ev;
    PyObject *driver;      /* driver.watch(engine, fd, events), .timer(...) */
    PyObject *str_watch, *str_timer;
    /* Set when the loop is gone (the client is being collected, or its loop
     * closed): the hooks and the callbacks touch nothing of the loop. */
    int detached;
} EngineObject;

typedef struct {
    PyObject_HEAD
    EngineObject *engine;  /* strong */
    genauth_request req;   /* req.params owned (cJSON_Delete) */
    genauth_evcall *evcall; /* while in flight: the engine holds a reference */
    PyObject *future;      /* while in flight */
    int outcome;           /* a batch's call: failures become results */
    int started;
} CallObject;

/* ---- the engine's hooks: calls into the driver -------------------------- */

/* The hooks run inside libcurl; a driver that fails cannot stop it, so the
 * error is reported, not raised. */
static void
hook_watch(void *userdata, int fd, int events)
{
    EngineObject *self = userdata;
    if (self->detached)
        return;
    PyObject *py_fd = PyLong_FromLong(fd);
    PyObject *py_events = py_fd ? PyLong_FromLong(events) : NULL;
    /* PyObject_VectorcallMethod is limited API only from 3.12; this takes
     * the same path (no bound method made). */
    PyObject *r = py_events ? PyObject_CallMethodObjArgs(
                                  self->driver, self->str_watch,
                                  (PyObject *)self, py_fd, py_events, NULL)
                            : NULL;
    if (!r)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(r);
    Py_XDECREF(py_fd);
    Py_XDECREF(py_events);
}

static void
hook_timer(void *userdata, long ms)
{
    EngineObject *self = userdata;
    if (self->detached)
        return;
    PyObject *py_ms = PyLong_FromLong(ms);
    PyObject *r = py_ms ? PyObject_CallMethodObjArgs(self->driver,
                                                     self->str_timer,
                                                     (PyObject *)self, py_ms,
                                                     NULL)
                        : NULL;
    if (!r)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(r);
    Py_XDECREF(py_ms);
}

/* ---- a call's end: its outcome to the future ----------------------------- */

/* future.set_result(value) / set_exception(value), unless the future is
 * already done (its task was cancelled meanwhile). */
static void
settle_future(PyObject *future, PyObject *value, int is_exception)
{
    PyObject *done = PyObject_CallMethod(future, "done", NULL);
    int already = done ? PyObject_IsTrue(done) : -1;
    Py_XDECREF(done);
    if (already == 0) {
        PyObject *r = PyObject_CallMethod(
            future, is_exception ? "set_exception" : "set_result", "O", value);
        if (!r)
            already = -1;
        Py_XDECREF(r);
    }
    if (already < 0)
        PyErr_WriteUnraisable(future);
}

static void
call_done(void *userdata, genauth_status status, const genauth_envelope *resp,
          const genauth_error *err)
{
    CallObject *call = userdata; /* the engine's reference, ours now */
    EngineObject *engine = call->engine;
    PyObject *future = call->future;
    PyObject *value = NULL;
    int is_exception = 1;

    call->evcall = NULL;
    call->future = NULL;
    if (engine->detached)
        goto done;
    genauth_module_state *st =
        genauth_state_from_type(Py_TYPE((PyObject *)engine));
    if (!st) {
        PyErr_WriteUnraisable((PyObject *)engine);
        goto done;
    }
    genauth_log_request(st, genauth_op_method(call->req.op),
                        genauth_op_path(call->req.op), status, resp, err);
    if (status == GENAUTH_OK) {
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
        /* The conversion failed (no memory): that is the outcome. */
        PyObject *t, *tb;
        PyErr_Fetch(&t, &value, &tb);
        PyErr_NormalizeException(&t, &value, &tb);
        Py_XDECREF(t);
        Py_XDECREF(tb);
        is_exception = 1;
        if (!value)
            goto done;
    }
    settle_future(future, value, is_exception);
done:
    Py_XDECREF(value);
    Py_XDECREF(future);
    Py_DECREF(call);
}

/* ---- _AsyncEngine ------------------------------------------------------ */

static PyObject *
Engine_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    genauth_module_state *st = genauth_state_from_type(type);
    PyObject *client, *driver;
    EngineObject *self = NULL;
    genauth_error err;

    genauth_error_init(&err);
    if (!st || (kwargs && PyDict_Size(kwargs)) ||
        !PyArg_UnpackTuple(args, "_AsyncEngine", 2, 2, &client, &driver))
        return NULL;
    self = (EngineObject *)((allocfunc)PyType_GetSlot(type, Py_tp_alloc))(
        type, 0);
    if (!self)
        return NULL;
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
    self->driver = Py_NewRef(driver);
    self->str_watch = PyUnicode_InternFromString("watch");
    self->str_timer = PyUnicode_InternFromString("timer");
    if (!self->str_watch || !self->str_timer)
        goto fail;
    genauth_evloop_hooks hooks = {hook_watch, hook_timer, self};
    if (genauth_evloop_new(self->core, &hooks, &self->ev, &err) !=
        GENAUTH_OK) {
        genauth_raise(st, &err);
        goto fail;
    }
    genauth_error_clear(&err);
    return (PyObject *)self;
fail:
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
    Py_VISIT(self->driver);
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
    Py_CLEAR(self->driver);
    return 0;
}

static void
Engine_dealloc(EngineObject *self)
{
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    PyObject_GC_UnTrack(self);
    Engine_clear(self);
    Py_CLEAR(self->str_watch);
    Py_CLEAR(self->str_timer);
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(self);
    Py_DECREF(tp);
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
    if (self->ev)
        genauth_evloop_socket_ready(self->ev, (int)fd, (int)events);
    Py_RETURN_NONE;
}

static PyObject *
Engine_timer_fired(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->ev)
        genauth_evloop_timer_fired(self->ev);
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
        cJSON_Delete(params);
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

/* prepare(op, /, *args, **kwargs) -> call: the arguments of API method
 * `op` (an index of _API_METHODS), parsed and converted by ManagementClient's
 * own parser, before anything is sent. */
static PyObject *
Engine_prepare(EngineObject *self, PyObject *const *args, Py_ssize_t nargs,
               PyObject *kwnames)
{
    genauth_module_state *st =
        genauth_state_from_type(Py_TYPE((PyObject *)self));
    long op;

    if (!st)
        return NULL;
    if (nargs < 1 || !PyLong_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "prepare() takes the method's op first");
        return NULL;
    }
    op = PyLong_AsLong(args[0]);
    if (op < 0 || op >= GENAUTH_OP_COUNT) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "prepare(): unknown op");
        return NULL;
    }
    if (!engine_live(self, st))
        return NULL;
    cJSON *params = genauth_method_params(
        (genauth_op)op, 1, genauth_client_signs_payloads(self->client),
        args + 1, nargs - 1, kwnames);
    if (!params)
        return NULL;
    return (PyObject *)call_new(self, st, (genauth_op)op, params);
}

/* prepare_batch(*args, **kwargs) -> (calls, concurrency): trigger_webhooks'
 * arguments, parsed and converted by ManagementClient's own code, every
 * call checked before any is sent. */
static PyObject *
Engine_prepare_batch(EngineObject *self, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames)
{
    genauth_module_state *st =
        genauth_state_from_type(Py_TYPE((PyObject *)self));
    PyObject *list = NULL, *result = NULL;
    cJSON **params = NULL;
    Py_ssize_t n = 0, i = 0;
    long long concurrency;

    if (!st || !engine_live(self, st) ||
        genauth_batch_params(1, genauth_client_signs_payloads(self->client),
                             args, nargs, kwnames,
                             &params, &n, &concurrency) < 0)
        return NULL;
    list = PyList_New(n);
    for (; list && i < n; i++) {
        CallObject *call = call_new(self, st, GENAUTH_OP_TRIGGER_WEBHOOK,
                                    params[i]);
        if (!call) {
            Py_CLEAR(list);
            i++; /* params[i] is freed */
            break;
        }
        call->outcome = 1;
        if (PyList_SetItem(list, i, (PyObject *)call) < 0) { /* steals */
            Py_CLEAR(list);
            i++; /* params[i] went with the call */
            break;
        }
    }
    for (; i < n; i++)
        cJSON_Delete(params[i]); /* not handed to a call */
    PyMem_Free(params);
    if (list)
        result = Py_BuildValue("(NL)", list, concurrency);
    return result;
}

PyDoc_STRVAR(Engine_close_doc, "close($self, /)\n--\n\n"
"End the calls in flight with ClientClosedError, close the connections and\n"
"the ManagementClient. Idempotent.");

static PyObject *
Engine_close(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->ev) {
        genauth_evloop_close(self->ev);
        genauth_client_close(self->core);
    }
    Py_RETURN_NONE;
}

static PyObject *
Engine_detach(EngineObject *self, PyObject *Py_UNUSED(ignored))
{
    self->detached = 1;
    Py_RETURN_NONE;
}

static PyObject *
Engine_get_calls(EngineObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromSize_t(self->ev ? genauth_evloop_calls(self->ev) : 0);
}

static PyMethodDef Engine_methods[] = {
    {"socket_action", (PyCFunction)(void (*)(void))Engine_socket_action,
     METH_FASTCALL, NULL},
    {"timer_fired", (PyCFunction)Engine_timer_fired, METH_NOARGS, NULL},
    {"prepare", (PyCFunction)(void (*)(void))Engine_prepare,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"prepare_batch", (PyCFunction)(void (*)(void))Engine_prepare_batch,
     METH_FASTCALL | METH_KEYWORDS, NULL},
    {"close", (PyCFunction)Engine_close, METH_NOARGS, Engine_close_doc},
    {"detach", (PyCFunction)Engine_detach, METH_NOARGS,
     "Never touch the event loop again (it is closed or gone)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Engine_getset[] = {
    {"calls", (getter)Engine_get_calls, NULL,
     "Calls started and not yet ended or cancelled (int).", NULL},
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

/* start(future, /): sends the call; its outcome goes to `future`. */
static PyObject *
Call_start(CallObject *self, PyObject *future)
{
    EngineObject *engine = self->engine;
    genauth_module_state *st =
        genauth_state_from_type(Py_TYPE((PyObject *)engine));
    genauth_error err;

    if (!st)
        return NULL;
    if (self->started) {
        PyErr_SetString(PyExc_RuntimeError, "the call was already started");
        return NULL;
    }
    if (!engine_live(engine, st))
        return NULL;
    self->started = 1;
    genauth_error_init(&err);
    /* The engine holds the call (and the call its future) until it ends. */
    self->future = Py_NewRef(future);
    Py_INCREF((PyObject *)self);
    if (genauth_evloop_start(engine->ev, &self->req, call_done, self,
                             &self->evcall, &err) != GENAUTH_OK) {
        Py_CLEAR(self->future);
        Py_DECREF(self);
        genauth_raise(st, &err);
        genauth_error_clear(&err);
        return NULL;
    }
    Py_RETURN_NONE;
}

/* cancel(): the call's transfer leaves libcurl now; nothing when it ended. */
static PyObject *
Call_cancel(CallObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->evcall && self->engine->ev) {
        genauth_evloop_cancel(self->engine->ev, self->evcall);
        self->evcall = NULL;
        Py_CLEAR(self->future);
        Py_DECREF(self); /* the engine's reference */
    }
    Py_RETURN_NONE;
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
    cJSON_Delete((cJSON *)self->req.params);
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
