/* ManagementClient: a heap type over one genauth_client. Arguments are
 * checked and copied into C with the GIL held; the call itself runs with the
 * GIL released; the result becomes Python objects with the GIL held again. */
#include <float.h>
#include <math.h>

#include "binding.h"
#include "convert.h"

typedef struct {
    PyObject_HEAD
    genauth_client *client;
    PyObject *host;       /* str: the base URL */
    PyObject *masked_key; /* str: the key id with all but its end hidden */
    double timeout;
    int raise_for_status;
} ClientObject;

/* ---- Ctrl-C ------------------------------------------------------------- */

/* Called by the core about every 100 ms while a call waits on the network,
 * without the GIL. Takes the GIL just long enough to run pending signal
 * handlers: KeyboardInterrupt then stays set for the binding to raise. */
static int
check_signals(void *userdata)
{
    (void)userdata;
    PyGILState_STATE g = PyGILState_Ensure();
    int stop = PyErr_CheckSignals() < 0;
    PyGILState_Release(g);
    return stop;
}

/* ---- construction ----------------------------------------------------- */

/* A C string for an optional str argument: NULL for None. Borrowed from
 * `obj` (its UTF-8 cache). Returns -1 with TypeError/ValueError set. */
static int
optional_str(PyObject *obj, const char *name, const char **out)
{
    Py_ssize_t len;
    *out = NULL;
    if (obj == Py_None)
        return 0;
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected str or None, got %.100s",
                     name, Py_TYPE(obj)->tp_name);
        return -1;
    }
    const char *s = PyUnicode_AsUTF8AndSize(obj, &len);
    if (!s) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "%s: holds a lone surrogate, which cannot be sent",
                         name);
        }
        return -1;
    }
    if ((size_t)len != strlen(s)) {
        PyErr_Format(PyExc_ValueError, "%s: must not contain NUL", name);
        return -1;
    }
    *out = s;
    return 0;
}

static int
required_str(PyObject *obj, const char *name, const char **out)
{
    if (obj == Py_None || !PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected str, got %.100s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    return optional_str(obj, name, out);
}

static PyObject *
mask_key(const char *key)
{
    size_t n = strlen(key);
    /* Enough of the end to tell keys apart, never most of a short one. */
    size_t shown = n >= 12 ? 4 : 0;
    char buf[16];
    snprintf(buf, sizeof(buf), "****%s", key + n - shown);
    return PyUnicode_FromString(buf);
}

static int
Client_init(ClientObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"access_key_id", "access_key_secret", "host",
                             "timeout", "lang", "use_unverified_ssl",
                             "tenant_id", "brand", "ca_bundle",
                             "raise_for_status", "max_response_bytes", "auth",
                             NULL};
    PyObject *ak_obj, *sk_obj, *host_obj = Py_None, *timeout_obj = NULL;
    PyObject *lang_obj = Py_None, *tenant_obj = Py_None;
    PyObject *brand_obj = NULL, *ca_obj = Py_None, *max_obj = NULL;
    PyObject *auth_obj = NULL;
    PyObject *ca_bytes = NULL;
    int unverified = 0, raise_for_status = 0;
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    genauth_client_options opts;
    genauth_client *client = NULL;
    genauth_error err;
    const char *brand = "genauth";

    genauth_error_init(&err);
    genauth_client_options_init(&opts);
    if (!st)
        return -1;
    if (self->client) {
        /* Another thread may be inside a call on the current client. */
        PyErr_SetString(PyExc_RuntimeError,
                        "ManagementClient is already initialised; make a "
                        "new one");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "OO|OOOp$OOOpOO:ManagementClient", kwlist, &ak_obj,
            &sk_obj, &host_obj, &timeout_obj, &lang_obj, &unverified,
            &tenant_obj, &brand_obj, &ca_obj, &raise_for_status, &max_obj,
            &auth_obj))
        return -1;
    if (required_str(ak_obj, "access_key_id", &opts.access_key_id) < 0 ||
        required_str(sk_obj, "access_key_secret", &opts.access_key_secret) <
            0 ||
        optional_str(host_obj, "host", &opts.host) < 0 ||
        optional_str(lang_obj, "lang", &opts.lang) < 0 ||
        optional_str(tenant_obj, "tenant_id", &opts.tenant_id) < 0)
        return -1;
    if (timeout_obj && timeout_obj != Py_None) {
        if (PyBool_Check(timeout_obj) ||
            !(PyFloat_Check(timeout_obj) || PyLong_Check(timeout_obj))) {
            PyErr_Format(PyExc_TypeError,
                         "timeout: expected a number of seconds, got %.100s",
                         Py_TYPE(timeout_obj)->tp_name);
            return -1;
        }
        opts.timeout = PyFloat_AsDouble(timeout_obj);
        if (opts.timeout == -1.0 && PyErr_Occurred())
            return -1;
    }
    if (brand_obj && optional_str(brand_obj, "brand", &brand) < 0)
        return -1;
    if (!brand)
        brand = "genauth";
    if (strcmp(brand, "genauth") == 0)
        opts.brand = GENAUTH_BRAND_GENAUTH;
    else if (strcmp(brand, "authing") == 0)
        opts.brand = GENAUTH_BRAND_AUTHING;
    else {
        PyErr_Format(PyExc_ValueError,
                     "brand: expected 'genauth' or 'authing', got %R",
                     brand_obj);
        return -1;
    }
    if (auth_obj && auth_obj != Py_None) {
        const char *auth = NULL;
        if (optional_str(auth_obj, "auth", &auth) < 0)
            return -1;
        if (strcmp(auth, "token") == 0)
            opts.auth = GENAUTH_AUTH_TOKEN;
        else if (strcmp(auth, "signature") == 0)
            opts.auth = GENAUTH_AUTH_SIGNATURE;
        else {
            PyErr_Format(PyExc_ValueError,
                         "auth: expected 'token' or 'signature', got %R",
                         auth_obj);
            return -1;
        }
    }
    if (ca_obj != Py_None) {
        if (!PyUnicode_FSConverter(ca_obj, &ca_bytes))
            return -1;
        opts.ca_bundle = PyBytes_AS_STRING(ca_bytes);
    }
    if (max_obj && max_obj != Py_None) {
        if (PyBool_Check(max_obj) || !PyLong_Check(max_obj)) {
            PyErr_SetString(PyExc_TypeError,
                            "max_response_bytes: expected an int");
            goto fail;
        }
        long long v = PyLong_AsLongLong(max_obj);
        if (v == -1 && PyErr_Occurred())
            goto fail;
        if (v <= 0) {
            PyErr_SetString(PyExc_ValueError,
                            "max_response_bytes: must be greater than 0");
            goto fail;
        }
        opts.max_response_bytes = (size_t)v;
    }
    opts.use_unverified_ssl = unverified;

    if (genauth_client_new(&opts, &client, &err) != GENAUTH_OK) {
        genauth_raise(st, &err);
        genauth_error_clear(&err);
        goto fail;
    }
    genauth_client_set_interrupt(client, check_signals, NULL);

    PyObject *host = PyUnicode_FromString(genauth_client_base_url(client));
    PyObject *masked = host ? mask_key(opts.access_key_id) : NULL;
    if (!masked) {
        Py_XDECREF(host);
        genauth_client_free(client);
        goto fail;
    }
    self->client = client;
    Py_XSETREF(self->host, host);
    Py_XSETREF(self->masked_key, masked);
    self->timeout = opts.timeout;
    self->raise_for_status = raise_for_status;
    Py_XDECREF(ca_bytes);
    return 0;
fail:
    Py_XDECREF(ca_bytes);
    return -1;
}

static int
Client_traverse(ClientObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static void
Client_dealloc(ClientObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->client) {
        genauth_client *c = self->client;
        self->client = NULL;
        /* Closing connections may block briefly (TLS shutdown). */
        Py_BEGIN_ALLOW_THREADS
        genauth_client_free(c);
        Py_END_ALLOW_THREADS
    }
    Py_CLEAR(self->host);
    Py_CLEAR(self->masked_key);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

/* ---- methods ------------------------------------------------------------ */

static genauth_client *
live_client(ClientObject *self, genauth_module_state *st)
{
    if (!self->client) {
        PyErr_SetString(PyExc_RuntimeError,
                        "ManagementClient.__init__ was not called");
        return NULL;
    }
    if (genauth_client_is_closed(self->client)) {
        PyErr_SetString(st->ClientClosedError,
                        "the client is closed; make a new ManagementClient");
        return NULL;
    }
    return self->client;
}

/* webhook_id as UTF-8 bytes borrowed from the str. */
static int
webhook_id_arg(PyObject *obj, const char *name, const char **s,
               Py_ssize_t *len)
{
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: expected a non-empty str, got %.100s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    *s = PyUnicode_AsUTF8AndSize(obj, len);
    if (!*s) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "%s: holds a lone surrogate, which cannot be "
                         "encoded as UTF-8",
                         name);
        }
        return -1;
    }
    if (*len == 0) {
        PyErr_Format(PyExc_ValueError, "%s: expected a non-empty str, got ''",
                     name);
        return -1;
    }
    return 0;
}

/* Turns the envelope into a dict, or raises DecodeError when it holds what
 * Python cannot take: invalid UTF-8, an integer longer than
 * sys.get_int_max_str_digits() (both ValueErrors from the conversion). */
static PyObject *
envelope_to_dict(genauth_module_state *st, const genauth_envelope *env)
{
    PyObject *dict = genauth_json_doc_to_py(genauth_envelope_doc(env));
    if (dict || !PyErr_ExceptionMatches(PyExc_ValueError))
        return dict;
    int utf8 = PyErr_ExceptionMatches(PyExc_UnicodeDecodeError);
    PyErr_Clear();
    genauth_error err;
    genauth_error_init(&err);
    genauth_error_set(&err, GENAUTH_E_DECODE,
                      "the server answered HTTP %ld with JSON %s",
                      env->http_status,
                      utf8 ? "holding invalid UTF-8"
                           : "holding a number Python cannot convert");
    err.http_status = env->http_status;
    return genauth_raise(st, &err);
}

/* The error just raised about argument `name` now names it as
 * calls[index]['name'] instead: batches build that text only on failure, so
 * a call that converts costs nothing for it. */
static void
name_batch_error(Py_ssize_t index, const char *name)
{
    PyObject *type, *value, *tb, *text = NULL, *rest = NULL;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    text = value ? PyObject_Str(value) : NULL;
    Py_ssize_t skip = (Py_ssize_t)strlen(name);
    PyObject *prefix = text ? PyUnicode_FromString(name) : NULL;
    /* Only our own messages start with the argument's name; an error raised
     * by the caller's objects is passed on untouched. */
    if (prefix && PyUnicode_Tailmatch(text, prefix, 0, skip, -1) == 1)
        rest = PyUnicode_Substring(text, skip, PyUnicode_GET_LENGTH(text));
    Py_XDECREF(prefix);
    PyErr_Clear();
    if (rest) {
        PyErr_Format(type, "calls[%zd]['%s']%U", index, name, rest);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    } else {
        PyErr_Restore(type, value, tb);
    }
    Py_XDECREF(text);
    Py_XDECREF(rest);
}

/* Converts one call's arguments (webhook_id, request_headers, request_body)
 * into `req`, whose trees the caller frees with cJSON_Delete. `index` is the
 * call's place in a batch, or -1 for a single call. */
static int
call_args(PyObject *const values[3], Py_ssize_t index,
          genauth_trigger_webhook_req *req)
{
    cJSON *headers = NULL, *body = NULL;
    Py_ssize_t id_len = 0;
    const char *failed = NULL;

    if (webhook_id_arg(values[0], "webhook_id", &req->webhook_id, &id_len) <
        0) {
        failed = "webhook_id";
        goto fail;
    }
    req->webhook_id_len = (size_t)id_len;
    if (values[1] != Py_None &&
        !(headers = genauth_py_to_json_object(values[1], "request_headers"))) {
        failed = "request_headers";
        goto fail;
    }
    if (values[2] != Py_None &&
        !(body = genauth_py_to_json_object(values[2], "request_body"))) {
        failed = "request_body";
        goto fail;
    }
    req->request_headers = headers;
    req->request_body = body;
    return 0;
fail:
    cJSON_Delete(headers);
    if (index >= 0 && (PyErr_ExceptionMatches(PyExc_TypeError) ||
                       PyErr_ExceptionMatches(PyExc_ValueError)))
        name_batch_error(index, failed);
    return -1;
}

/* The current exception as an object (new reference), cleared. */
static PyObject *
take_exception(void)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb && v)
        PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
}

/* One call's outcome: the envelope dict, or an exception object (APIError
 * with raise_for_status, DecodeError for undecodable text). New reference,
 * or NULL with an exception set. */
PyObject *
genauth_envelope_outcome(genauth_module_state *st, int raise_for_status,
                         const genauth_envelope *env)
{
    PyObject *result = envelope_to_dict(st, env);
    if (!result)
        return PyErr_ExceptionMatches(st->DecodeError) ? take_exception()
                                                       : NULL;
    if (raise_for_status &&
        !(env->has_status_code && env->status_code == 200))
        return genauth_api_error_new(st, result, env->http_status);
    return result;
}

static PyObject *
envelope_result(ClientObject *self, genauth_module_state *st,
                const genauth_envelope *env)
{
    return genauth_envelope_outcome(st, self->raise_for_status, env);
}

PyDoc_STRVAR(trigger_webhook_doc,
"trigger_webhook($self, webhook_id, request_headers=None, request_body=None)\n"
"--\n\n"
"Trigger a webhook once (POST /api/v3/trigger-webhook).\n\n"
"webhook_id: the webhook's id (non-empty str).\n"
"request_headers, request_body: JSON objects (any Mapping; nested values\n"
"allowed) sent as requestHeaders / requestBody; None leaves them out.\n\n"
"Returns the response envelope as a dict, exactly as the server sent it:\n"
"{'statusCode': 200, 'message': ..., 'requestId': ..., 'data': {'response':\n"
"...}}. A business error (statusCode != 200) is returned too, unless the\n"
"client was made with raise_for_status=True (then APIError).\n\n"
"Raises TypeError/ValueError for bad input (before anything is sent),\n"
"TimeoutError, TransportError, DecodeError, AuthError, ClientClosedError.");

static PyObject *
Client_trigger_webhook(ClientObject *self, PyObject *const *args,
                       Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"webhook_id", "request_headers",
                                        "request_body"};
    PyObject *values[3] = {NULL, Py_None, Py_None};
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    genauth_trigger_webhook_req req = {0};
    genauth_envelope env;
    genauth_error err;
    cJSON *headers = NULL, *body = NULL;
    PyObject *result = NULL;
    genauth_status status;

    if (!st)
        return NULL;
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError,
                     "trigger_webhook() takes at most 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        values[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        int slot = -1;
        for (int j = 0; j < 3; j++) {
            if (PyUnicode_CompareWithASCIIString(key, names[j]) == 0) {
                slot = j;
                break;
            }
        }
        if (slot < 0) {
            PyErr_Format(PyExc_TypeError,
                         "trigger_webhook() got an unexpected keyword "
                         "argument %R",
                         key);
            return NULL;
        }
        if (slot < nargs) {
            PyErr_Format(PyExc_TypeError,
                         "trigger_webhook() got multiple values for "
                         "argument '%s'",
                         names[slot]);
            return NULL;
        }
        values[slot] = args[nargs + k];
    }
    if (!values[0]) {
        PyErr_SetString(PyExc_TypeError,
                        "trigger_webhook() missing required argument "
                        "'webhook_id'");
        return NULL;
    }
    genauth_client *client = live_client(self, st);
    if (!client)
        return NULL;
    if (call_args(values, -1, &req) < 0)
        return NULL;
    headers = (cJSON *)req.request_headers;
    body = (cJSON *)req.request_body;

    genauth_envelope_init(&env);
    genauth_error_init(&err);
    /* webhook_id's bytes belong to values[0], which the caller's frame keeps
     * alive; nothing below touches a Python object until the GIL is back. */
    Py_BEGIN_ALLOW_THREADS
    status = genauth_client_trigger_webhook(client, &req, &env, &err);
    cJSON_Delete(headers);
    cJSON_Delete(body);
    Py_END_ALLOW_THREADS

    if (status != GENAUTH_OK) {
        genauth_raise(st, &err);
        goto done;
    }
    result = envelope_result(self, st, &env);
    if (result && !PyDict_Check(result)) {
        PyErr_SetObject((PyObject *)Py_TYPE(result), result);
        Py_CLEAR(result);
    }
done:
    genauth_envelope_clear(&env);
    genauth_error_clear(&err);
    return result;
}


/* ---- trigger_webhooks' arguments (shared with async_client.c) ---------- */

int
genauth_concurrency_arg(PyObject *value, long long *out)
{
    if (PyBool_Check(value) || !PyLong_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "concurrency: expected an int");
        return -1;
    }
    *out = PyLong_AsLongLong(value);
    if (*out == -1 && PyErr_Occurred())
        return -1;
    if (*out < 1 || *out > 1024) {
        PyErr_SetString(PyExc_ValueError,
                        "concurrency: must be between 1 and 1024");
        return -1;
    }
    return 0;
}

PyObject *
genauth_batch_calls(PyObject *calls)
{
    if (PyUnicode_Check(calls) || PyBytes_Check(calls) ||
        PyDict_Check(calls)) {
        PyErr_Format(PyExc_TypeError,
                     "calls: expected an iterable of dicts, got %.100s",
                     Py_TYPE(calls)->tp_name);
        return NULL;
    }
    /* A tuple of our own: converting a payload may run the caller's code,
     * which could otherwise change the list under us. */
    PyObject *seq = PySequence_Tuple(calls);
    if (!seq && PyErr_ExceptionMatches(PyExc_TypeError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError,
                     "calls: expected an iterable of dicts, got %.100s",
                     Py_TYPE(calls)->tp_name);
    }
    return seq;
}

int
genauth_batch_call_values(PyObject *call, Py_ssize_t i, PyObject *values[3])
{
    static const char *const keys[] = {"webhook_id", "request_headers",
                                       "request_body"};
    values[0] = NULL;
    values[1] = values[2] = Py_None;
    if (!PyDict_Check(call)) {
        PyErr_Format(PyExc_TypeError,
                     "calls[%zd]: expected a dict with the keys of "
                     "trigger_webhook, got %.100s",
                     i, Py_TYPE(call)->tp_name);
        return -1;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(call, &pos, &key, &value)) {
        int slot = -1;
        for (int j = 0; j < 3 && PyUnicode_Check(key); j++) {
            if (PyUnicode_CompareWithASCIIString(key, keys[j]) == 0)
                slot = j;
        }
        if (slot < 0) {
            PyErr_Format(PyExc_TypeError, "calls[%zd]: unexpected key %R", i,
                         key);
            return -1;
        }
        values[slot] = value;
    }
    if (!values[0]) {
        PyErr_Format(PyExc_TypeError, "calls[%zd]: missing key 'webhook_id'",
                     i);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(trigger_webhooks_doc,
"trigger_webhooks($self, calls, *, concurrency=16)\n"
"--\n\n"
"Trigger many webhooks concurrently.\n\n"
"calls: an iterable of dicts with the keys of trigger_webhook\n"
"('webhook_id', and optionally 'request_headers', 'request_body').\n"
"At most `concurrency` calls are in flight at once, sharing the client's\n"
"token and connections; each is bounded by the client's timeout.\n\n"
"Returns a list in input order: each call's envelope dict, or, for a call\n"
"that failed, its exception object (not raised), so one failure loses\n"
"none of the other results. Every call is validated before anything is\n"
"sent: bad input raises TypeError/ValueError naming calls[i].");

static PyObject *
Client_trigger_webhooks(ClientObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    PyObject *calls = nargs > 0 ? args[0] : NULL, *seq = NULL;
    PyObject *result = NULL, **held = NULL;
    genauth_batch_item *items = NULL;
    Py_ssize_t n = 0, converted = 0;
    long long concurrency = 16;
    genauth_error err;
    genauth_status status;

    genauth_error_init(&err);
    if (!st)
        return NULL;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError,
                        "trigger_webhooks() takes 1 positional argument");
        return NULL;
    }
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *key = PyTuple_GET_ITEM(kwnames, k);
        PyObject *value = args[nargs + k];
        if (PyUnicode_CompareWithASCIIString(key, "calls") == 0 && !calls) {
            calls = value;
        } else if (PyUnicode_CompareWithASCIIString(key, "concurrency") ==
                   0) {
            if (genauth_concurrency_arg(value, &concurrency) < 0)
                return NULL;
        } else {
            PyErr_Format(PyExc_TypeError,
                         "trigger_webhooks() got an unexpected keyword "
                         "argument %R",
                         key);
            return NULL;
        }
    }
    if (!calls) {
        PyErr_SetString(PyExc_TypeError,
                        "trigger_webhooks() missing required argument "
                        "'calls'");
        return NULL;
    }
    genauth_client *client = live_client(self, st);
    if (!client)
        return NULL;
    seq = genauth_batch_calls(calls);
    if (!seq)
        return NULL;
    n = PyTuple_GET_SIZE(seq);
    items = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*items));
    /* Each call's three values, held: converting one may run the caller's
     * code, which could empty the dict; and the webhook ids' UTF-8 bytes are
     * used without the GIL. */
    held = PyMem_Calloc(n ? 3 * (size_t)n : 1, sizeof(*held));
    if (!items || !held) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *values[3];
        if (genauth_batch_call_values(PyTuple_GET_ITEM(seq, i), i, values) <
            0)
            goto done;
        for (int j = 0; j < 3; j++)
            held[3 * i + j] = Py_NewRef(values[j]);
        if (call_args(&held[3 * i], i, &items[i].req) < 0)
            goto done;
        converted = i + 1;
    }

    Py_BEGIN_ALLOW_THREADS
    status = genauth_client_trigger_webhooks(client, items, (size_t)n,
                                             (size_t)concurrency, &err);
    Py_END_ALLOW_THREADS

    if (status == GENAUTH_E_INTERRUPTED || status == GENAUTH_E_CLOSED ||
        status == GENAUTH_E_NOMEM) {
        genauth_raise(st, &err);
        goto done;
    }
    result = PyList_New(n);
    if (!result)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *outcome =
            items[i].status == GENAUTH_OK
                ? envelope_result(self, st, &items[i].resp)
                : genauth_exception_new(st, &items[i].err);
        if (!outcome) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, outcome);
    }
done:
    for (Py_ssize_t i = 0; items && i < n; i++) {
        if (i < converted) {
            cJSON_Delete((cJSON *)items[i].req.request_headers);
            cJSON_Delete((cJSON *)items[i].req.request_body);
        }
        genauth_envelope_clear(&items[i].resp);
        genauth_error_clear(&items[i].err);
    }
    for (Py_ssize_t i = 0; held && i < 3 * n; i++)
        Py_XDECREF(held[i]);
    PyMem_Free(items);
    PyMem_Free(held);
    genauth_error_clear(&err);
    Py_XDECREF(seq);
    return result;
}

PyDoc_STRVAR(close_doc, "close($self, /)\n--\n\n"
"Release the client's connections. Later calls raise ClientClosedError.\n"
"Idempotent; calls in progress on other threads finish first.");

static PyObject *
Client_close(ClientObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->client) {
        genauth_client *c = self->client;
        Py_BEGIN_ALLOW_THREADS
        genauth_client_close(c);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *
Client_enter(ClientObject *self, PyObject *Py_UNUSED(ignored))
{
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    if (!st || !live_client(self, st))
        return NULL;
    return Py_NewRef(self);
}

static PyObject *
Client_exit(ClientObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    PyObject *r = Client_close(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

static PyObject *
Client_repr(ClientObject *self)
{
    if (!self->client)
        return PyUnicode_FromFormat("<%s (uninitialised)>",
                                    Py_TYPE(self)->tp_name);
    return PyUnicode_FromFormat(
        "<ManagementClient host=%R access_key_id=%R%s>", self->host,
        self->masked_key,
        genauth_client_is_closed(self->client) ? " closed" : "");
}

static PyObject *
Client_get_host(ClientObject *self, void *closure)
{
    (void)closure;
    return self->host ? Py_NewRef(self->host) : Py_NewRef(Py_None);
}

static PyObject *
Client_get_timeout(ClientObject *self, void *closure)
{
    (void)closure;
    return PyFloat_FromDouble(self->timeout);
}

static PyObject *
Client_get_closed(ClientObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(!self->client ||
                           genauth_client_is_closed(self->client));
}

static PyObject *
Client_get_token_fetches(ClientObject *self, void *closure)
{
    (void)closure;
    return PyLong_FromUnsignedLong(
        self->client ? genauth_client_token_fetches(self->client) : 0);
}

static PyMethodDef Client_methods[] = {
    {"trigger_webhook", (PyCFunction)(void (*)(void))Client_trigger_webhook,
     METH_FASTCALL | METH_KEYWORDS, trigger_webhook_doc},
    {"trigger_webhooks", (PyCFunction)(void (*)(void))Client_trigger_webhooks,
     METH_FASTCALL | METH_KEYWORDS, trigger_webhooks_doc},
    {"close", (PyCFunction)Client_close, METH_NOARGS, close_doc},
    {"__enter__", (PyCFunction)Client_enter, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Client_exit, METH_FASTCALL,
     NULL},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Client_getset[] = {
    {"host", (getter)Client_get_host, NULL,
     "The base URL calls go to (str).", NULL},
    {"timeout", (getter)Client_get_timeout, NULL,
     "The total time limit of one call, in seconds (float).", NULL},
    {"closed", (getter)Client_get_closed, NULL,
     "True once close() was called.", NULL},
    {"token_fetches", (getter)Client_get_token_fetches, NULL,
     "How many management tokens this client has fetched (int).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Client_doc,
"ManagementClient(access_key_id, access_key_secret, host=None, timeout=10.0,\n"
"                 lang=None, use_unverified_ssl=False, *, tenant_id=None,\n"
"                 brand='genauth', ca_bundle=None, raise_for_status=False,\n"
"                 max_response_bytes=16777216, auth='token')\n"
"--\n\n"
"A client of GenAuth's V3 management API.\n\n"
"host: 'https://api.genauth.ai' by default ('https://api.authing.cn' for\n"
"brand='authing'); an http(s) URL with optional port and path prefix.\n"
"timeout: the limit, in seconds, for a whole call (token fetch and retry\n"
"included). TLS certificates are verified unless use_unverified_ssl=True;\n"
"ca_bundle trusts a private CA. One client may be shared by many threads;\n"
"it keeps its connections alive. Use it as a context manager or call\n"
"close().\n\n"
"auth='token' (default) authenticates with a management token fetched\n"
"with the key pair; auth='signature' signs every request with the key\n"
"pair (HMAC-SHA1) instead, as the official Node SDK does.");

static PyType_Slot Client_slots[] = {
    {Py_tp_doc, (void *)Client_doc},
    {Py_tp_init, Client_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, Client_dealloc},
    {Py_tp_traverse, Client_traverse},
    {Py_tp_repr, Client_repr},
    {Py_tp_methods, Client_methods},
    {Py_tp_getset, Client_getset},
    {0, NULL},
};

static PyType_Spec Client_spec = {
    .name = "genauth_c.ManagementClient",
    .basicsize = sizeof(ClientObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
             Py_TPFLAGS_IMMUTABLETYPE,
    .slots = Client_slots,
};

int
genauth_client_type_add(PyObject *module, genauth_module_state *st)
{
    st->client_type = (PyTypeObject *)PyType_FromModuleAndSpec(
        module, &Client_spec, NULL);
    if (!st->client_type)
        return -1;
    return PyModule_AddType(module, st->client_type);
}

/* ---- shared with the asyncio client (async_client.c) ------------------ */

genauth_client *
genauth_client_from_object(genauth_module_state *st, PyObject *obj,
                           int *raise_for_status)
{
    if (!PyObject_TypeCheck(obj, st->client_type)) {
        PyErr_Format(PyExc_TypeError, "expected a ManagementClient, got %.100s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    ClientObject *self = (ClientObject *)obj;
    *raise_for_status = self->raise_for_status;
    return live_client(self, st);
}

int
genauth_trigger_webhook_args(PyObject *const values[3], Py_ssize_t index,
                             genauth_trigger_webhook_req *req)
{
    return call_args(values, index, req);
}
