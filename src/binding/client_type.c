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
    PyObject *access_key_id; /* str */
    PyObject *lang;          /* str or None */
    int use_unverified_ssl;
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
    /* The official SDK's parameters first, in its order (websocket_host and
     * websocket_endpoint serve its event-subscription API, which this
     * package does not have: accepted so positional calls work, unused). */
    static char *kwlist[] = {"access_key_id", "access_key_secret", "host",
                             "timeout", "lang", "use_unverified_ssl",
                             "websocket_host", "websocket_endpoint",
                             "tenant_id", "brand", "ca_bundle",
                             "raise_for_status", "max_response_bytes", "auth",
                             NULL};
    PyObject *ak_obj, *sk_obj, *host_obj = Py_None, *timeout_obj = NULL;
    PyObject *lang_obj = Py_None, *tenant_obj = Py_None;
    PyObject *brand_obj = NULL, *ca_obj = Py_None, *max_obj = NULL;
    PyObject *auth_obj = NULL;
    PyObject *ws_host_obj = Py_None, *ws_endpoint_obj = Py_None;
    const char *ws_unused = NULL;
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
            args, kwargs, "OO|OOOpOO$OOOpOO:ManagementClient", kwlist,
            &ak_obj, &sk_obj, &host_obj, &timeout_obj, &lang_obj, &unverified,
            &ws_host_obj, &ws_endpoint_obj, &tenant_obj, &brand_obj, &ca_obj, &raise_for_status, &max_obj,
            &auth_obj))
        return -1;
    if (required_str(ak_obj, "access_key_id", &opts.access_key_id) < 0 ||
        required_str(sk_obj, "access_key_secret", &opts.access_key_secret) <
            0 ||
        optional_str(host_obj, "host", &opts.host) < 0 ||
        optional_str(lang_obj, "lang", &opts.lang) < 0 ||
        optional_str(tenant_obj, "tenant_id", &opts.tenant_id) < 0 ||
        optional_str(ws_host_obj, "websocket_host", &ws_unused) < 0 ||
        optional_str(ws_endpoint_obj, "websocket_endpoint", &ws_unused) < 0)
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
    Py_XSETREF(self->access_key_id, Py_NewRef(ak_obj));
    Py_XSETREF(self->lang, Py_NewRef(lang_obj));
    self->use_unverified_ssl = unverified;
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
    Py_CLEAR(self->access_key_id);
    Py_CLEAR(self->lang);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

genauth_client *
genauth_client_of(PyObject *self, int *raise_for_status)
{
    ClientObject *c = (ClientObject *)self;
    if (raise_for_status)
        *raise_for_status = c->raise_for_status;
    return c->client;
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
Client_get_access_key_id(ClientObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->access_key_id ? self->access_key_id : Py_None);
}

static PyObject *
Client_get_lang(ClientObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->lang ? self->lang : Py_None);
}

static PyObject *
Client_get_use_unverified_ssl(ClientObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->use_unverified_ssl);
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

static PyGetSetDef Client_getset[] = {
    {"host", (getter)Client_get_host, NULL,
     "The base URL calls go to (str).", NULL},
    {"access_key_id", (getter)Client_get_access_key_id, NULL,
     "The access key id (str); the secret is never exposed.", NULL},
    {"lang", (getter)Client_get_lang, NULL,
     "The lang option (str or None).", NULL},
    {"use_unverified_ssl", (getter)Client_get_use_unverified_ssl, NULL,
     "True when TLS certificates are not verified.", NULL},
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
"                 lang=None, use_unverified_ssl=False, websocket_host=None,\n"
"                 websocket_endpoint=None, *, tenant_id=None,\n"
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
"pair (HMAC-SHA1) instead, as the official Node SDK does.\n\n"
"websocket_host and websocket_endpoint are accepted (str or None) so that\n"
"positional calls written for the official SDK work; the event-subscription\n"
"API they serve is not part of this package.");

static PyType_Slot Client_slots[] = {
    {Py_tp_doc, (void *)Client_doc},
    {Py_tp_init, Client_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, Client_dealloc},
    {Py_tp_traverse, Client_traverse},
    {Py_tp_repr, Client_repr},
    {Py_tp_methods, genauth_client_methods},
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
