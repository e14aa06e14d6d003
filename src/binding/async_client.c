/* The C half of AsyncManagementClient (genauth_c/_aio.py holds the asyncio
 * half): _AsyncEngine runs calls on the core's event-driven engine
 * (evloop.c) for one ManagementClient's core client, and tells a driver
 * (the Python object that talks to the event loop) which sockets to watch
 * and when to wake it; _AsyncCall is one call's request, converted to C
 * before anything is sent, and the future its outcome goes to. Everything
 * here runs on the event loop's thread with the GIL held: no call blocks. */
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
    PyObject *webhook_id;  /* str: req.webhook_id's bytes are its UTF-8 */
    genauth_trigger_webhook_req req; /* trees owned */
    genauth_evcall *evcall; /* while in flight */
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
    PyObject *args[] = {self->driver, (PyObject *)self, NULL, NULL};
    args[2] = PyLong_FromLong(fd);
    args[3] = args[2] ? PyLong_FromLong(events) : NULL;
    PyObject *r = args[3] ? PyObject_VectorcallMethod(
                                self->str_watch, args,
                                4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
                          : NULL;
    if (!r)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(r);
    Py_XDECREF(args[2]);
    Py_XDECREF(args[3]);
}

static void
hook_timer(void *userdata, long ms)
{
    EngineObject *self = userdata;
    if (self->detached)
        return;
    PyObject *args[] = {self->driver, (PyObject *)self, NULL};
    args[2] = PyLong_FromLong(ms);
    PyObject *r = args[2] ? PyObject_VectorcallMethod(
                                self->str_timer, args,
                                3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)
                          : NULL;
    if (!r)
        PyErr_WriteUnraisable((PyObject *)self);
    Py_XDECREF(r);
    Py_XDECREF(args[2]);
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
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(engine));
    if (!st) {
        PyErr_WriteUnraisable((PyObject *)engine);
        goto done;
    }
    if (status == GENAUTH_OK) {
        value = genauth_envelope_outcome(st, engine->raise_for_status, resp);
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
    if (!st || (kwargs && PyDict_GET_SIZE(kwargs)) ||
        !PyArg_UnpackTuple(args, "_AsyncEngine", 2, 2, &client, &driver))
        return NULL;
    self = (EngineObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->core = genauth_client_from_object(st, client,
                                            &self->raise_for_status);
    if (!self->core)
        goto fail;
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

static int
Engine_traverse(EngineObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->client);
    Py_VISIT(self->driver);
    return 0;
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
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Engine_clear(self);
    Py_CLEAR(self->str_watch);
    Py_CLEAR(self->str_timer);
    tp->tp_free((PyObject *)self);
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

/* A call object for `values` (webhook_id, request_headers, request_body),
 * converted; `index` as for genauth_trigger_webhook_args. */
static CallObject *
call_new(EngineObject *self, genauth_module_state *st,
         PyObject *const values[3], Py_ssize_t index)
{
    CallObject *call = PyObject_GC_New(CallObject, st->async_call_type);
    if (!call)
        return NULL;
    call->engine = (EngineObject *)Py_NewRef(self);
    call->webhook_id = NULL;
    memset(&call->req, 0, sizeof(call->req));
    call->evcall = NULL;
    call->future = NULL;
    call->outcome = 0;
    call->started = 0;
    PyObject_GC_Track(call);
    if (genauth_trigger_webhook_args(values, index, &call->req) < 0) {
        Py_DECREF(call);
        return NULL;
    }
    /* req.webhook_id points into this str's UTF-8. */
    call->webhook_id = Py_NewRef(values[0]);
    return call;
}

/* prepare(webhook_id, request_headers, request_body) -> call */
static PyObject *
Engine_prepare(EngineObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    if (!st)
        return NULL;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "prepare() takes 3 arguments");
        return NULL;
    }
    if (!engine_live(self, st))
        return NULL;
    return (PyObject *)call_new(self, st, args, -1);
}

/* prepare_batch(calls, concurrency) -> list of calls: trigger_webhooks'
 * arguments, every call checked and converted before any is sent. */
static PyObject *
Engine_prepare_batch(EngineObject *self, PyObject *const *args,
                     Py_ssize_t nargs)
{
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    PyObject *seq = NULL, *list = NULL;
    long long concurrency;

    if (!st)
        return NULL;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "prepare_batch() takes 2 arguments");
        return NULL;
    }
    if (genauth_concurrency_arg(args[1], &concurrency) < 0 ||
        !engine_live(self, st) || !(seq = genauth_batch_calls(args[0])))
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(seq);
    list = PyList_New(n);
    for (Py_ssize_t i = 0; list && i < n; i++) {
        PyObject *values[3];
        if (genauth_batch_call_values(PyTuple_GET_ITEM(seq, i), i, values) <
            0) {
            Py_CLEAR(list);
            break;
        }
        /* Held while converting: it may run the caller's code, which could
         * empty the dict. */
        for (int j = 0; j < 3; j++)
            Py_INCREF(values[j]);
        CallObject *call = call_new(self, st, values, i);
        for (int j = 0; j < 3; j++)
            Py_DECREF(values[j]);
        if (!call) {
            Py_CLEAR(list);
            break;
        }
        call->outcome = 1;
        PyList_SET_ITEM(list, i, (PyObject *)call);
    }
    Py_DECREF(seq);
    return list;
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
    {"prepare", (PyCFunction)(void (*)(void))Engine_prepare, METH_FASTCALL,
     NULL},
    {"prepare_batch", (PyCFunction)(void (*)(void))Engine_prepare_batch,
     METH_FASTCALL, NULL},
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
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(engine));
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
    Py_INCREF(self);
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
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->engine);
    Py_VISIT(self->future);
    return 0;
}

static int
Call_clear(CallObject *self)
{
    /* Never in flight here: the engine holds a call while it is. */
    Py_CLEAR(self->future);
    Py_CLEAR(self->engine);
    return 0;
}

static void
Call_dealloc(CallObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    Call_clear(self);
    cJSON_Delete((cJSON *)self->req.request_headers);
    cJSON_Delete((cJSON *)self->req.request_body);
    Py_CLEAR(self->webhook_id);
    tp->tp_free((PyObject *)self);
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
    return 0;
}
