/* ManagementClient's methods: one table row per API method (its endpoint and
 * its parameters), one function that runs any of them (convert the
 * arguments, release the GIL, genauth_client_call, the envelope back as a
 * dict), batches, and close / the context manager. Besides its row in
 * API_METHODS, each API method has its parameter list and its docstring;
 * the row makes its entry in api_methods, its entry point and its line in
 * genauth_client_methods. */
#include <string.h>

#include "args.h"
#include "convert.h"

/* ---- the table ------------------------------------------------------------ */

typedef struct {
    genauth_op op;
    const char *name;
    genauth_signature_spec sig;
    /* The same with AsyncManagementClient's qualname, for its TypeErrors. */
    genauth_signature_spec async_sig;
} api_method;

#define ID(py, js) {py, js, GENAUTH_ARG_STR, 1}
#define OPT(py, js, kind) {py, js, kind, 0}
#define REQ(py, js, kind) {py, js, kind, 1}
/* The most parameters a method has. */
#define MAX_PARAMS 8
#define COUNT(a) ((Py_ssize_t)(sizeof(a) / sizeof((a)[0])))

/* Names, order and defaults as the official Python SDK 5.1.0 has them;
 * retry_config (keyword-only) as the Node SDK has it. */
static const genauth_param create_params[] = {
    REQ("content_type", "contentType", GENAUTH_ARG_CONTENT_TYPE),
    REQ("events", "events", GENAUTH_ARG_STR_LIST),
    REQ("url", "url", GENAUTH_ARG_STR),
    REQ("name", "name", GENAUTH_ARG_STR),
    OPT("enabled", "enabled", GENAUTH_ARG_BOOL),
    OPT("secret", "secret", GENAUTH_ARG_SECRET),
    OPT("retry_config", "retryConfig", GENAUTH_ARG_MAPPING),
};
static const genauth_param list_params[] = {
    OPT("page", "page", GENAUTH_ARG_POS_INT),
    OPT("limit", "limit", GENAUTH_ARG_POS_INT),
};
static const genauth_param get_params[] = {
    ID("webhook_id", "webhookId"),
};
static const genauth_param update_params[] = {
    ID("webhook_id", "webhookId"),
    OPT("name", "name", GENAUTH_ARG_STR),
    OPT("url", "url", GENAUTH_ARG_STR),
    OPT("events", "events", GENAUTH_ARG_STR_LIST),
    OPT("content_type", "contentType", GENAUTH_ARG_CONTENT_TYPE),
    OPT("enabled", "enabled", GENAUTH_ARG_BOOL),
    OPT("secret", "secret", GENAUTH_ARG_SECRET),
    OPT("retry_config", "retryConfig", GENAUTH_ARG_MAPPING),
};
static const genauth_param delete_params[] = {
    REQ("webhook_ids", "webhookIds", GENAUTH_ARG_STR_LIST),
};
static const genauth_param logs_params[] = {
    ID("webhook_id", "webhookId"),
    OPT("page", "page", GENAUTH_ARG_POS_INT),
    OPT("limit", "limit", GENAUTH_ARG_POS_INT),
};
static const genauth_param trigger_params[] = {
    ID("webhook_id", "webhookId"),
    OPT("request_headers", "requestHeaders", GENAUTH_ARG_MAPPING),
    OPT("request_body", "requestBody", GENAUTH_ARG_MAPPING),
};
static const genauth_param batch_params[] = {
    REQ("calls", NULL, GENAUTH_ARG_OTHER),
    OPT("concurrency", NULL, GENAUTH_ARG_OTHER),
};

/* Every API method, once: X(name, op, params, npos), where params is
 * PARAMS(its list) or NO_PARAMS and npos how many may be given by
 * position. */
#define API_METHODS(X)                                                      \
    X(create_webhook, GENAUTH_OP_CREATE_WEBHOOK, PARAMS(create_params), 6)  \
    X(list_webhooks, GENAUTH_OP_LIST_WEBHOOKS, PARAMS(list_params), 2)      \
    X(get_webhook, GENAUTH_OP_GET_WEBHOOK, PARAMS(get_params), 1)           \
    X(update_webhook, GENAUTH_OP_UPDATE_WEBHOOK, PARAMS(update_params), 7)  \
    X(delete_webhook, GENAUTH_OP_DELETE_WEBHOOK, PARAMS(delete_params), 1)  \
    X(get_webhook_logs, GENAUTH_OP_GET_WEBHOOK_LOGS, PARAMS(logs_params),   \
      3)                                                                    \
    X(get_webhook_event_list, GENAUTH_OP_GET_WEBHOOK_EVENT_LIST, NO_PARAMS, \
      0)                                                                    \
    X(trigger_webhook, GENAUTH_OP_TRIGGER_WEBHOOK, PARAMS(trigger_params), 3)
#define PARAMS(list) list, COUNT(list)
#define NO_PARAMS NULL, 0

#define API_METHOD_ROW(name, op, params, npos)                              \
    [op] = {op, #name, {"ManagementClient." #name, params, npos},           \
            {"AsyncManagementClient." #name, params, npos}},

static const api_method api_methods[GENAUTH_OP_COUNT] = {
    API_METHODS(API_METHOD_ROW)
};

/* What the compiler can check of the rows: one per op (two rows of one op
 * are -Woverride-init's), no more parameters than call_api has slots for,
 * no more positional ones than parameters. The rest is
 * tests/test_method_table.py's. */
#define ONE_ROW(name, op, params, npos) +1
_Static_assert(0 API_METHODS(ONE_ROW) == GENAUTH_OP_COUNT,
               "API_METHODS: one row per GENAUTH_OP_* value");
/* `params` comes expanded: PARAMS(list)'s two values. */
#define NPARAMS(list, n) n
#define ROW_FITS(name, op, params, npos)                                    \
    _Static_assert(NPARAMS(params) <= MAX_PARAMS,                           \
                   #name ": more parameters than MAX_PARAMS");              \
    _Static_assert((npos) <= NPARAMS(params),                               \
                   #name ": more positional parameters than parameters");
API_METHODS(ROW_FITS)

static const genauth_signature_spec batch_sig = {
    "ManagementClient.trigger_webhooks", batch_params, COUNT(batch_params), 1};
static const genauth_signature_spec async_batch_sig = {
    "AsyncManagementClient.trigger_webhooks", batch_params,
    COUNT(batch_params), 1};

/* A row's parameters as ((name, required, keyword_only), ...). New
 * reference, or NULL with an exception. */
static PyObject *
method_params(const genauth_signature_spec *sig)
{
    PyObject *params = PyTuple_New(sig->nparams);
    if (params)
        PyObject_GC_UnTrack(params); /* as genauth_api_method_ops' */
    for (Py_ssize_t i = 0; params && i < sig->nparams; i++) {
        PyObject *p = Py_BuildValue("(sOO)", sig->params[i].name,
                                    sig->params[i].required ? Py_True
                                                            : Py_False,
                                    i >= sig->npositional ? Py_True
                                                          : Py_False);
        if (!p || PyTuple_SetItem(params, i, p) < 0) /* steals p */
            Py_CLEAR(params);
    }
    if (params)
        PyObject_GC_Track(params);
    return params;
}

PyObject *
genauth_api_method_ops(void)
{
    PyObject *ops = PyTuple_New(GENAUTH_OP_COUNT);
    /* Kept from the collector while slots are NULL (convert.c's
     * genauth_doc_node_to_py says why). */
    if (ops)
        PyObject_GC_UnTrack(ops);
    for (Py_ssize_t i = 0; ops && i < GENAUTH_OP_COUNT; i++) {
        const api_method *m = &api_methods[i];
        /* The endpoint's method and path are the core's row (None where
         * endpoints.c has none). */
        PyObject *params = method_params(&m->sig);
        PyObject *row = params ? Py_BuildValue(
                                     "(sizzN)", m->name, (int)m->op,
                                     genauth_op_method((genauth_op)i),
                                     genauth_op_path((genauth_op)i), params)
                               : NULL;
        if (!row || PyTuple_SetItem(ops, i, row) < 0) /* steals row */
            Py_CLEAR(ops);
    }
    if (ops)
        PyObject_GC_Track(ops);
    return ops;
}

/* ---- shared pieces ------------------------------------------------------- */

/* The core client behind `self`, or NULL with RuntimeError (never
 * initialised) or ClientClosedError set. Borrowed. */
static genauth_client *
live_client(PyObject *self, genauth_module_state *st, int *raise_for_status)
{
    genauth_client *c = genauth_client_of(self, raise_for_status);
    if (!c) {
        PyErr_SetString(PyExc_RuntimeError,
                        "ManagementClient.__init__ was not called");
        return NULL;
    }
    if (genauth_client_is_closed(c)) {
        PyErr_SetString(st->ClientClosedError,
                        "the client is closed; make a new ManagementClient");
        return NULL;
    }
    return c;
}

/* The one place an envelope becomes a result (binding.h). DecodeError for
 * what Python cannot take: invalid UTF-8, an integer longer than
 * sys.get_int_max_str_digits(), nesting deeper than the stack of the
 * thread converting allows. */
PyObject *
genauth_envelope_result(genauth_module_state *st, const genauth_envelope *env,
                        int raise_for_status)
{
    PyObject *dict = genauth_json_doc_to_py(genauth_envelope_doc(env),
                                            &st->result_keys);
    if (!dict) {
        const char *what;
        if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
            what = "holding invalid UTF-8";
        else if (PyErr_ExceptionMatches(PyExc_ValueError))
            what = "holding a number Python cannot convert";
        else if (PyErr_ExceptionMatches(PyExc_RecursionError))
            what = "nested deeper than this thread's stack allows";
        else
            return NULL;
        PyErr_Clear();
        genauth_error err;
        genauth_error_init(&err);
        genauth_error_set(&err, GENAUTH_E_DECODE,
                          "the server answered HTTP %ld with JSON %s",
                          env->http_status, what);
        err.http_status = env->http_status;
        genauth_raise(st, &err);
        return genauth_take_exception();
    }
    if (raise_for_status &&
        !(env->has_status_code && env->status_code == 200)) {
        if (env->quotes_credential) {
            Py_DECREF(dict);
            return genauth_api_error_hidden(st, env);
        }
        return genauth_api_error_new(st, dict, env->http_status);
    }
    return dict;
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
    /* Called only for kinds that run no caller code, so the exception is
     * ours; the prefix check is a second guard. */
    if (prefix && PyUnicode_Tailmatch(text, prefix, 0, skip, -1) == 1)
        rest = PyUnicode_Substring(text, skip, PyUnicode_GetLength(text));
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

/* `params` (a call's parameter object, freed here) as a written body
 * (genauth_request): the raw node and its text in one block of Python's
 * allocator, `text` the scratch buffer to write it in. A batch holds every
 * call's request from before its first call is sent, and this is about half
 * the tree's memory in one allocation instead of six; from Python's
 * allocator, whose pools the results are made in, the blocks that calls
 * free as they end are reused for the results. NULL with an exception.
 * Never inlined: its error struct (about 0.7 KB) would otherwise sit in
 * build_params' frame, under the walk of the caller's payloads, whose
 * depth is bounded by the stack left to it (stack.c). */
__attribute__((noinline)) static cJSON *
written_body(genauth_op op, cJSON *params, Py_ssize_t index,
             genauth_buf *text)
{
    genauth_request req = {op, params};
    genauth_error err;
    cJSON *node = NULL;

    genauth_error_init(&err);
    genauth_buf_reset(text);
    if (genauth_request_check(&req, &err) != GENAUTH_OK ||
        genauth_json_write_form(params, GENAUTH_JSON_EXACT, text, &err) !=
            GENAUTH_OK) {
        if (err.status == GENAUTH_E_NOMEM)
            PyErr_NoMemory();
        else
            PyErr_Format(PyExc_ValueError, "calls[%zd]: %s", index,
                         err.message);
        goto done;
    }
    node = PyMem_Malloc(sizeof(*node) + text->len + 1);
    if (!node) {
        PyErr_NoMemory();
        goto done;
    }
    memset(node, 0, sizeof(*node));
    /* cJSON_IsReference: the text is not cJSON's to free (nor is the node:
     * genauth_params_free). */
    node->type = cJSON_Raw | cJSON_IsReference;
    node->valuestring = (char *)(node + 1);
    memcpy(node->valuestring, text->data, text->len);
    node->valuestring[text->len] = '\0';
done:
    genauth_error_clear(&err);
    cJSON_Delete(params);
    return node;
}

void
genauth_params_free(cJSON *params)
{
    if (params && cJSON_IsRaw(params) && (params->type & cJSON_IsReference))
        PyMem_Free(params); /* written_body's */
    else
        cJSON_Delete(params);
}

/* The parameter object of a call: each given, non-None argument under its
 * JSON name. `index` is the call's place in a batch (errors then name
 * calls[index]), or -1. `sign`: the client signs its requests (Mappings
 * may then hold only JavaScript-safe integers). With `written`, an unsigned
 * POST's comes as its written body (written_body). New object
 * (genauth_params_free), or NULL with an exception set. */
static cJSON *
build_params(genauth_op op, const genauth_signature_spec *sig,
             PyObject *const *values, Py_ssize_t index, int sign,
             int written)
{
    /* A POST body that is not signed is sent exactly as written: its
     * mappings go straight to JSON text, without a tree to build, walk and
     * free. Signing needs the tree (JSON.stringify's form). */
    const char *method = genauth_op_method(op);
    int as_text = !sign && method && strcmp(method, "POST") == 0;
    genauth_buf scratch; /* the text of each mapping in turn */
    cJSON *params = cJSON_CreateObject();
    uintptr_t stack_floor = genauth_stack_floor(); /* one for the call */

    genauth_buf_init(&scratch);
    if (!params) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < sig->nparams; i++) {
        const genauth_param *p = &sig->params[i];
        if (!values[i] || values[i] == Py_None) {
            if (!p->required)
                continue;
            /* The official SDK sends None on; the server refuses it. We
             * refuse it before sending. */
        }
        genauth_conv_options opts = {p->name, index, sign, as_text, &scratch,
                                     stack_floor};
        cJSON *node = genauth_arg_to_json(values[i], p->kind, &opts);
        if (!node) {
            /* A Mapping's errors name calls[index] already, and may be the
             * caller's own exception, which must come out unchanged; the
             * other kinds run no caller code: their errors are ours. */
            if (index >= 0 && p->kind != GENAUTH_ARG_MAPPING &&
                (PyErr_ExceptionMatches(PyExc_TypeError) ||
                 PyErr_ExceptionMatches(PyExc_ValueError)))
                name_batch_error(index, p->name);
            goto fail;
        }
        if (genauth_json_object_add_static(params, p->json_name, node) < 0) {
            cJSON_Delete(node);
            PyErr_NoMemory();
            goto fail;
        }
    }
    if (written && as_text)
        params = written_body(op, params, index, &scratch);
    genauth_buf_clear(&scratch);
    return params;

fail:
    genauth_buf_clear(&scratch);
    cJSON_Delete(params);
    return NULL;
}

/* ---- one call ---------------------------------------------------------- */

static PyObject *
call_api(PyObject *self, genauth_op op, PyObject *const *args,
         Py_ssize_t nargs, PyObject *kwnames)
{
    const api_method *m = &api_methods[op];
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    PyObject *values[MAX_PARAMS];
    genauth_envelope env;
    genauth_error err;
    genauth_status status;
    PyObject *result = NULL;
    int raise_for_status = 0;

    if (!st || genauth_parse_args(&m->sig, args, nargs, kwnames, values) < 0)
        return NULL;
    genauth_client *client = live_client(self, st, &raise_for_status);
    if (!client)
        return NULL;
    cJSON *params =
        build_params(op, &m->sig, values, -1,
                     genauth_client_signs_payloads(self), 0);
    if (!params)
        return NULL;
    genauth_request req = {op, params};

    genauth_envelope_init(&env);
    genauth_error_init(&err);
    /* params is a C copy of the arguments: nothing below touches a Python
     * object until the GIL is back. */
    GENAUTH_BEGIN_WAIT(st)
    status = genauth_client_call(client, &req, &env, &err);
    cJSON_Delete(params);
    GENAUTH_END_WAIT
    if (genauth_log_request(st, genauth_op_method(op), genauth_op_path(op),
                            status, &env, &err) < 0)
        goto done; /* Ctrl-C while a log handler ran: raised instead */

    if (status != GENAUTH_OK) {
        genauth_raise(st, &err);
        goto done;
    }
    result = genauth_envelope_result(st, &env, raise_for_status);
    if (result && !PyDict_Check(result)) {
        PyErr_SetObject((PyObject *)Py_TYPE(result), result);
        Py_CLEAR(result);
    }
done:
    genauth_envelope_clear(&env);
    genauth_error_clear(&err);
    return result;
}

cJSON *
genauth_method_params(genauth_op op, int async_client, int sign,
                      PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    const api_method *m = &api_methods[op];
    PyObject *values[MAX_PARAMS];

    if (genauth_parse_args(async_client ? &m->async_sig : &m->sig, args,
                           nargs, kwnames, values) < 0)
        return NULL;
    return build_params(op, &m->sig, values, -1, sign, 0);
}

/* ---- batches -------------------------------------------------------------- */

/* One call of a batch: its dict's values in trigger_webhook's parameter
 * order, held (new references in held[0..n)), or -1 with TypeError. */
static int
batch_call_values(PyObject *call, Py_ssize_t index,
                  const genauth_signature_spec *sig, PyObject **held)
{
    PyObject *key, *value;
    Py_ssize_t pos = 0;

    if (!PyDict_Check(call)) {
        PyErr_Format(PyExc_TypeError,
                     "calls[%zd]: expected a dict with the keys of "
                     "trigger_webhook, got %.100s",
                     index, GENAUTH_TYPE_NAME(call));
        return -1;
    }
    for (Py_ssize_t j = 0; j < sig->nparams; j++)
        held[j] = NULL;
    while (PyDict_Next(call, &pos, &key, &value)) {
        Py_ssize_t slot = genauth_param_slot(sig, key);
        if (slot < 0) {
            /* The key's plain repr: its own __repr__ could raise instead. */
            PyObject *r = genauth_plain_repr(key);
            if (r) {
                PyErr_Format(PyExc_TypeError,
                             "calls[%zd]: unexpected key %U", index, r);
                Py_DECREF(r);
            }
            for (Py_ssize_t k = 0; k < sig->nparams; k++)
                held[k] = NULL; /* borrowed so far: nothing to release */
            return -1;
        }
        held[slot] = value;
    }
    for (Py_ssize_t j = 0; j < sig->nparams; j++) {
        if (!held[j] && sig->params[j].required) {
            PyErr_Format(PyExc_TypeError, "calls[%zd]: missing key '%s'",
                         index, sig->params[j].name);
            for (Py_ssize_t k = 0; k < sig->nparams; k++)
                held[k] = NULL;
            return -1;
        }
    }
    /* Held: converting one value may run the caller's code, which could
     * empty the dict. */
    for (Py_ssize_t j = 0; j < sig->nparams; j++)
        held[j] = Py_NewRef(held[j] ? held[j] : Py_None);
    return 0;
}

int
genauth_batch_params(int async_client, int sign, PyObject *const *args,
                     Py_ssize_t nargs, PyObject *kwnames, cJSON ***params_out,
                     Py_ssize_t *count, long long *concurrency)
{
    const genauth_signature_spec *sig =
        &api_methods[GENAUTH_OP_TRIGGER_WEBHOOK].sig;
    const Py_ssize_t width = sig->nparams;
    PyObject *values[2], *seq = NULL, **held = NULL;
    cJSON **params = NULL;
    Py_ssize_t n = 0, converted = 0;
    int rc = -1;

    *params_out = NULL;
    *count = 0;
    *concurrency = 16;
    if (genauth_parse_args(async_client ? &async_batch_sig : &batch_sig, args,
                           nargs, kwnames, values) < 0)
        return -1;
    PyObject *calls = values[0];
    if (values[1] &&
        genauth_int_arg(values[1], "concurrency", 1, 1024, concurrency) < 0)
        return -1;
    /* Iterable or not is judged from the type's slots, which runs no
     * caller code: a TypeError raised while iterating is then the caller's
     * own (a generator's), and comes out unchanged. */
    if (PyUnicode_Check(calls) || PyBytes_Check(calls) ||
        PyDict_Check(calls) ||
        (!PyType_GetSlot(Py_TYPE(calls), Py_tp_iter) &&
         !PySequence_Check(calls))) {
        PyErr_Format(PyExc_TypeError,
                     "calls: expected an iterable of dicts, got %.100s",
                     GENAUTH_TYPE_NAME(calls));
        return -1;
    }
    /* A tuple of our own: converting a payload may run the caller's code,
     * which could otherwise change the list under us. */
    seq = PySequence_Tuple(calls);
    if (!seq)
        return -1;
    n = PyTuple_Size(seq);
    params = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*params));
    held = PyMem_Calloc((size_t)width, sizeof(*held));
    if (!params || !held) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (batch_call_values(PyTuple_GetItem(seq, i), i, sig, held) < 0)
            goto done;
        params[i] = build_params(GENAUTH_OP_TRIGGER_WEBHOOK, sig, held, i,
                                 sign, 1);
        for (Py_ssize_t j = 0; j < width; j++)
            Py_CLEAR(held[j]);
        if (!params[i])
            goto done;
        converted = i + 1;
    }
    rc = 0;
    *params_out = params;
    *count = n;
    params = NULL;
done:
    for (Py_ssize_t i = 0; params && i < converted; i++)
        genauth_params_free(params[i]);
    PyMem_Free(params);
    PyMem_Free(held);
    Py_DECREF(seq);
    return rc;
}

PyDoc_STRVAR(trigger_webhooks_doc,
"trigger_webhooks($self, calls, *, concurrency=16)\n"
"--\n\n"
"Trigger many webhooks concurrently.\n\n"
"calls: an iterable of dicts with the keys of trigger_webhook\n"
"('webhook_id', and optionally 'request_headers', 'request_body').\n"
"At most `concurrency` (1 to 1024) calls are in flight at once, sharing\n"
"the client's token and connections; each is bounded by the client's\n"
"timeout.\n\n"
"Returns a list in input order: each call's envelope dict, or, for a call\n"
"that failed, its exception object (not raised), so one failure loses\n"
"none of the other results. Every call is validated before anything is\n"
"sent: bad input raises TypeError/ValueError naming calls[i].");

/* A batch's outcomes, made as its calls end (batch_call_done) so that each
 * envelope and request is freed then rather than held to the batch's end;
 * in a thread that does not run signal handlers, once the batch returns. */
typedef struct {
    genauth_module_state *st;
    genauth_batch_item *items;
    cJSON **params;
    /* Each call's outcome once made, else NULL. A C array, not yet the
     * list: the collector never sees it half made (gc.get_objects() in a
     * log handler would). */
    PyObject **outcomes;
    int raise_for_status;
} batch_results;

/* Logs items[i]'s call, makes its outcome and frees what it held. With the
 * GIL, no exception set. -1 with an exception: no memory for the outcome,
 * or Ctrl-C while a log handler ran (genauth_log_request). */
static int
batch_outcome(batch_results *br, size_t i)
{
    genauth_batch_item *it = &br->items[i];
    int rc = genauth_log_request(br->st, genauth_op_method(it->req.op),
                                 genauth_op_path(it->req.op), it->status,
                                 &it->resp, it->err);
    if (rc == 0) {
        /* The results make no cycles and every one of them is kept: the
         * collections their allocations would trigger meanwhile (each a
         * pass over the results made so far) would free nothing. */
        int gc_was_enabled = PyGC_Disable();
        br->outcomes[i] =
            it->status == GENAUTH_OK
                ? genauth_envelope_result(br->st, &it->resp,
                                          br->raise_for_status)
                : genauth_exception_new(br->st, it->err);
        if (gc_was_enabled)
            PyGC_Enable();
        rc = br->outcomes[i] ? 0 : -1;
    }
    genauth_batch_item_clear(it);
    genauth_params_free(br->params[i]);
    br->params[i] = NULL;
    it->req.params = NULL;
    return rc;
}

/* genauth_batch_done_fn: on the batch's thread, the GIL released. Stops
 * the batch with the exception set (genauth_raise hands it over as the
 * interrupted batch's) when the outcome cannot be made, or a signal
 * handler raised. */
static int
batch_call_done(void *userdata, size_t index)
{
    batch_results *br = userdata;
    /* Only in the thread that takes the GIL back every 0.1 s anyway, to
     * run signal handlers. In any other, a batch waits as a call does,
     * never taking the GIL: there each call's end would wait for it, and
     * a thread holding it long (a C extension's computation) would hold
     * up every call in flight until their answers, come meanwhile, time
     * out. Their outcomes are made once the batch returns. */
    if (!genauth_wait_runs_signal_handlers())
        return 0;
    int entered = genauth_wait_enter_python();
    if (!entered)
        return 0; /* made once the batch returns */
    /* A signal that came while the batch waited on the network runs its
     * handler now, as the batch's own look for signals would: left
     * pending, its KeyboardInterrupt would land in the logging's Python
     * code below, as a log handler's failure. */
    int stop = PyErr_Occurred() != NULL || PyErr_CheckSignals() < 0 ||
               batch_outcome(br, index) < 0;
    genauth_wait_leave_python(entered);
    return stop;
}

static PyObject *
Client_trigger_webhooks(PyObject *self, PyObject *const *args,
                        Py_ssize_t nargs, PyObject *kwnames)
{
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    PyObject *result = NULL;
    batch_results br = {.st = st};
    Py_ssize_t n = 0;
    long long concurrency;
    genauth_error err;
    genauth_status status;

    genauth_error_init(&err);
    /* Before the calls are read, as a single call's arguments are: their
     * payloads are converted for this client (signing or not), which the
     * caller's code they run (a generator) could otherwise initialise
     * meanwhile. Closed meanwhile, the core refuses the batch. */
    genauth_client *client =
        st ? live_client(self, st, &br.raise_for_status) : NULL;
    if (!client ||
        genauth_batch_params(0, genauth_client_signs_payloads(self), args,
                             nargs, kwnames, &br.params, &n,
                             &concurrency) < 0)
        return NULL;
    br.items = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*br.items));
    br.outcomes = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*br.outcomes));
    if (!br.items || !br.outcomes) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        br.items[i].req.op = GENAUTH_OP_TRIGGER_WEBHOOK;
        br.items[i].req.params = br.params[i];
    }

    GENAUTH_BEGIN_WAIT(st)
    status = genauth_client_batch(client, br.items, (size_t)n,
                                  (size_t)concurrency, batch_call_done, &br,
                                  &err);
    GENAUTH_END_WAIT

    if (status == GENAUTH_E_INTERRUPTED || status == GENAUTH_E_CLOSED ||
        status == GENAUTH_E_NOMEM) {
        genauth_raise(st, &err);
        goto done;
    }
    /* batch_call_done stopped the batch with an exception set (a log
     * handler's Ctrl-C), and the batch then ended for another reason: a
     * child forked by that handler. Raised, as it would have been; no
     * outcome is made with it set. */
    if (PyErr_Occurred())
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* Calls that the batch's own error ended, and any whose outcome
         * could not be made on the batch's thread. */
        if (!br.outcomes[i] && batch_outcome(&br, (size_t)i) < 0)
            goto done;
    }
    result = PyList_New(n);
    if (!result)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* Steals the outcome; cannot fail on a new list's own index. */
        PyList_SetItem(result, i, br.outcomes[i]);
        br.outcomes[i] = NULL;
    }
done:
    /* An interrupted batch's KeyboardInterrupt stays set through this. */
    for (Py_ssize_t i = 0; br.outcomes && i < n; i++)
        Py_XDECREF(br.outcomes[i]);
    for (Py_ssize_t i = 0; br.items && i < n; i++)
        genauth_batch_item_clear(&br.items[i]);
    for (Py_ssize_t i = 0; i < n; i++)
        genauth_params_free(br.params[i]);
    PyMem_Free(br.params);
    PyMem_Free(br.items);
    PyMem_Free(br.outcomes);
    genauth_error_clear(&err);
    return result;
}

/* ---- close and the context manager ---------------------------------------- */

PyDoc_STRVAR(close_doc, "close($self, /)\n--\n\n"
"Release the client's connections. Later calls raise ClientClosedError.\n"
"Idempotent, and returns at once: a call in progress on another thread\n"
"goes on to its end, then closes its connection; one waiting to send its\n"
"request again ends with ClientClosedError, nothing sent.");

static PyObject *
Client_close(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    genauth_client *c = genauth_client_of(self, NULL);
    if (c) {
        Py_BEGIN_ALLOW_THREADS
        genauth_client_close(c);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static PyObject *
Client_enter(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    genauth_module_state *st = genauth_state_from_type(Py_TYPE(self));
    if (!st || !live_client(self, st, NULL))
        return NULL;
    return Py_NewRef(self);
}

static PyObject *
Client_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)args;
    (void)nargs;
    PyObject *r = Client_close(self, NULL);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_FALSE;
}

/* ---- the API methods -------------------------------------------------------- */

#define RETURNS \
"Returns the response envelope as a dict, exactly as the server sent it\n" \
"({'statusCode': 200, 'message': ..., 'data': ...}); a business error\n" \
"(statusCode != 200) is returned too, unless the client was made with\n" \
"raise_for_status=True (then APIError). None arguments are left out.\n" \
"Bad arguments raise TypeError/ValueError naming them before anything is\n" \
"sent; TimeoutError, TransportError, DecodeError, AuthError and\n" \
"ClientClosedError as for every call."

PyDoc_STRVAR(create_webhook_doc,
"create_webhook($self, content_type, events, url, name, enabled=None,\n"
"               secret=None, *, retry_config=None)\n"
"--\n\n"
"Create a webhook (POST /api/v3/create-webhook).\n\n"
"content_type: 'application/json' or 'application/x-www-form-urlencoded'.\n"
"events: a non-empty list or tuple of event names (str), e.g.\n"
"['user:created'].\n"
"url: where deliveries go. name: a label. enabled: bool. secret: sent as\n"
"the x-authing-webhook-secret header of each delivery. retry_config: a\n"
"mapping such as {'enabled': True, 'count': 3}, sent as retryConfig.\n\n"
"data is the new WebhookDto (with its webhookId).\n\n" RETURNS);

PyDoc_STRVAR(list_webhooks_doc,
"list_webhooks($self, page=None, limit=None)\n"
"--\n\n"
"List webhooks (GET /api/v3/list-webhooks?page=&limit=).\n\n"
"page: from 1. limit: per page (the server allows up to 50, default 10).\n"
"data is {'totalCount': int, 'list': [WebhookDto, ...]}.\n\n" RETURNS);

PyDoc_STRVAR(get_webhook_doc,
"get_webhook($self, webhook_id)\n"
"--\n\n"
"Read one webhook (GET /api/v3/get-webhook?webhookId=).\n\n"
"data is the WebhookDto; an unknown id is a statusCode 404 envelope.\n\n"
RETURNS);

PyDoc_STRVAR(update_webhook_doc,
"update_webhook($self, webhook_id, name=None, url=None, events=None,\n"
"               content_type=None, enabled=None, secret=None, *,\n"
"               retry_config=None)\n"
"--\n\n"
"Change a webhook (POST /api/v3/update-webhook): only the fields given.\n\n"
"The arguments are those of create_webhook. data is the WebhookDto.\n\n"
RETURNS);

PyDoc_STRVAR(delete_webhook_doc,
"delete_webhook($self, webhook_ids)\n"
"--\n\n"
"Delete webhooks (POST /api/v3/delete-webhook).\n\n"
"webhook_ids: a non-empty list or tuple of ids (str); unknown ids are not\n"
"an error.\n"
"data is {'success': bool}.\n\n" RETURNS);

PyDoc_STRVAR(get_webhook_logs_doc,
"get_webhook_logs($self, webhook_id, page=None, limit=None)\n"
"--\n\n"
"Read a webhook's delivery log (POST /api/v3/get-webhook-logs), newest\n"
"first. data is {'totalCount': int, 'list': [WebhookLogDto, ...]}.\n\n"
RETURNS);

PyDoc_STRVAR(get_webhook_event_list_doc,
"get_webhook_event_list($self)\n"
"--\n\n"
"The event names webhooks can subscribe to (GET\n"
"/api/v3/get-webhook-event-list). data is {'categories': [...],\n"
"'events': [{'name', 'nameEn', 'value', 'category'}, ...]}.\n\n" RETURNS);

PyDoc_STRVAR(trigger_webhook_doc,
"trigger_webhook($self, webhook_id, request_headers=None, request_body=None)\n"
"--\n\n"
"Trigger a webhook once (POST /api/v3/trigger-webhook).\n\n"
"webhook_id: the webhook's id (non-empty str).\n"
"request_headers, request_body: JSON objects (any Mapping; nested values\n"
"allowed) sent as requestHeaders / requestBody.\n"
"data is {'response': what the webhook's URL answered}.\n\n" RETURNS);

/* One thunk per method: CPython gives a method no data of its own. */
#define API_METHOD_THUNK(name, op, params, npos)                            \
    static PyObject *Client_##name(PyObject *self, PyObject *const *args,   \
                                   Py_ssize_t nargs, PyObject *kwnames)     \
    {                                                                       \
        return call_api(self, op, args, nargs, kwnames);                    \
    }
API_METHODS(API_METHOD_THUNK)

#define FASTCALL(name)                                                      \
    {#name, (PyCFunction)(void (*)(void))Client_##name,                     \
     METH_FASTCALL | METH_KEYWORDS, name##_doc}
#define API_METHOD_DEF(name, op, params, npos) FASTCALL(name),

PyMethodDef genauth_client_methods[] = {
    API_METHODS(API_METHOD_DEF)
    FASTCALL(trigger_webhooks),
    {"close", (PyCFunction)Client_close, METH_NOARGS, close_doc},
    {"__enter__", (PyCFunction)Client_enter, METH_NOARGS, NULL},
    {"__reduce__", genauth_client_reduce, METH_NOARGS, NULL},
    {"__exit__", (PyCFunction)(void (*)(void))Client_exit, METH_FASTCALL,
     NULL},
    {NULL, NULL, 0, NULL},
};
