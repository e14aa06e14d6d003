/* ManagementClient: a heap type over one genauth_client. Arguments are
 * checked and copied into C with the GIL held; the call itself runs with the
 * GIL released; the result becomes Python objects with the GIL held again. */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "binding.h"
#include "convert.h"

/* PyMemberDef's types: in Python.h itself only from 3.12 (Py_T_PYSSIZET). */
#include <structmember.h>

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
    int sign_payloads; /* auth='signature': payloads are checked for it */
    /* The keyword arguments that make this client (pickle.c): the given
     * ones' values, in client_params' order, and which those are. */
    PyObject *options; /* tuple */
    unsigned long options_given;
    /* weakref.ref, weakref.finalize and WeakValueDictionary caches of
     * clients work, as they do on the SDK's Python class. */
    PyObject *weakrefs;
} ClientObject;

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
                     name, GENAUTH_TYPE_NAME(obj));
        return -1;
    }
    /* A lone surrogate or a NUL: refused as a method's arguments are. */
    *out = genauth_str_arg_utf8(obj, name, -1, 0, &len);
    return *out ? 0 : -1;
}

static int
required_str(PyObject *obj, const char *name, const char **out)
{
    if (obj == Py_None || !PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected str, got %.100s", name,
                     GENAUTH_TYPE_NAME(obj));
        return -1;
    }
    return optional_str(obj, name, out);
}

/* use_unverified_ssl, raise_for_status: True or False (None, the default:
 * False). Not any object by its truth: a setting read from a file or the
 * environment as the string "false" is true, and would turn TLS
 * verification off without a word. */
static int
flag_arg(PyObject *obj, const char *name, int *out)
{
    if (obj != Py_None && !PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: expected True or False, got %.100s",
                     name, GENAUTH_TYPE_NAME(obj));
        return -1;
    }
    *out = obj == Py_True;
    return 0;
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

/* timeout in seconds, from an int or a float by its value (a subclass's
 * __float__ is not consulted: no caller code runs). None keeps *out. The
 * core refuses what is not finite, > 0 and at most GENAUTH_MAX_TIMEOUT. */
static int
timeout_arg(PyObject *obj, double *out)
{
    if (obj == Py_None)
        return 0;
    if (PyFloat_Check(obj)) {
        *out = PyFloat_AsDouble(obj);
        return 0;
    }
    if (PyBool_Check(obj) || !PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError,
                     "timeout: expected a number of seconds, got %.100s",
                     GENAUTH_TYPE_NAME(obj));
        return -1;
    }
    *out = PyLong_AsDouble(obj);
    if (*out == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError))
            return -1;
        /* Beyond a double: certainly beyond the limit; say which. */
        PyErr_Clear();
        *out = HUGE_VAL;
    }
    return 0;
}

/* A str, bytes or os.PathLike argument as the file system takes it
 * (os.fsencode(os.fspath(obj))): bytes in *out (new reference). -1 with
 * TypeError or ValueError naming `name`, or with the exception of the
 * caller's __fspath__ unchanged. Done here rather than by
 * PyUnicode_FSConverter alone, whose errors name no argument. */
static int
path_arg(PyObject *obj, const char *name, PyObject **out)
{
    PyObject *fspath = NULL, *path = NULL;
    int rc = -1;

    *out = NULL;
    if (PyUnicode_Check(obj) || PyBytes_Check(obj)) {
        path = Py_NewRef(obj);
    } else {
        /* The bound method (a plain function, classmethod or
         * staticmethod alike); os.fspath would not look in the instance's
         * own __dict__, which is only more lenient. */
        fspath = PyObject_GetAttrString(obj, "__fspath__");
        if (!fspath) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError,
                             "%s: expected str, bytes or os.PathLike, got "
                             "%.100s",
                             name, GENAUTH_TYPE_NAME(obj));
            }
            goto done;
        }
        if (!(path = PyObject_CallNoArgs(fspath)))
            goto done;
        if (!PyUnicode_Check(path) && !PyBytes_Check(path)) {
            PyErr_Format(PyExc_TypeError,
                         "%s: __fspath__() returned %.100s, expected str "
                         "or bytes",
                         name, GENAUTH_TYPE_NAME(path));
            goto done;
        }
    }
    /* A str or bytes now: what fails here is the path itself. */
    if (!PyUnicode_FSConverter(path, out)) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "%s: not a path the file system can take (a NUL, "
                         "or a character its encoding cannot carry)",
                         name);
        }
        goto done;
    }
    rc = 0;
done:
    Py_XDECREF(path);
    Py_XDECREF(fspath);
    return rc;
}

/* ValueError: `value` (a str) is none of `choices`. Its repr is str's, never
 * a subclass's __repr__ (the caller's code, which could raise instead). */
static void
bad_choice(const char *name, const char *choices, PyObject *value)
{
    PyObject *r = genauth_plain_repr(value);
    if (r) {
        PyErr_Format(PyExc_ValueError, "%s: expected %s, got %U", name,
                     choices, r);
        Py_DECREF(r);
    }
}

/* certifi's CA bundle as a filesystem path in *out (new reference), or
 * *out NULL when certifi is not installed. -1 with an exception set on any
 * other failure. */
static int
certifi_where(PyObject **out)
{
    PyObject *certifi = NULL, *where = NULL;
    int rc = -1;

    *out = NULL;
    certifi = PyImport_ImportModule("certifi");
    if (!certifi) {
        if (!PyErr_ExceptionMatches(PyExc_ImportError))
            goto done;
        PyErr_Clear();
        rc = 0;
        goto done;
    }
    where = PyObject_CallMethod(certifi, "where", NULL);
    if (!where || !PyUnicode_FSConverter(where, out))
        goto done;
    rc = 0;
done:
    Py_XDECREF(where);
    Py_XDECREF(certifi);
    return rc;
}

/* The constructor's parameters: the official SDK's first, in its order
 * (the first eight may be given by position; websocket_host and
 * websocket_endpoint serve its event-subscription API, which this package
 * does not have: accepted so positional calls work, unused), then ours,
 * keyword-only. None is required: a missing key or host is read from the
 * environment. */
#define OPTION(name) {name, NULL, GENAUTH_ARG_OTHER, 0}
static const genauth_param client_params[] = {
    OPTION("access_key_id"),    OPTION("access_key_secret"),
    OPTION("host"),             OPTION("timeout"),
    OPTION("lang"),             OPTION("use_unverified_ssl"),
    OPTION("websocket_host"),   OPTION("websocket_endpoint"),
    OPTION("tenant_id"),        OPTION("brand"),
    OPTION("ca_bundle"),        OPTION("raise_for_status"),
    OPTION("max_response_bytes"), OPTION("auth"),
    OPTION("max_retries"),
};
#undef OPTION
static const genauth_signature_spec client_signature = {
    "ManagementClient.__init__", client_params,
    sizeof(client_params) / sizeof(client_params[0]), 8};

static int
Client_init(ClientObject *self, PyObject *args, PyObject *kwargs)
{
    enum { AK, SK, HOST, TIMEOUT, LANG, UNVERIFIED, WS_HOST, WS_ENDPOINT,
           TENANT, BRAND, CA, RAISE, MAX, AUTH, RETRIES,
           NARGS };
    /* Every argument, held from parsing to the end: converting one runs
     * the caller's code (__fspath__), which must not free what
     * the others borrow. */
    PyObject *a[NARGS] = {NULL};
    const char *ws_unused = NULL;
    PyObject *ca_bytes = NULL, *timeout_float = NULL, *options = NULL;
    unsigned long options_given = 0;
    unsigned from_env = 0;
    _Static_assert(NARGS <= 8 * sizeof(unsigned long),
                   "genauth_options_pack marks the given options in a long");
    PyObject *host = NULL, *masked = NULL;
    int unverified = 0, raise_for_status = 0, rc = -1;
    genauth_module_state *st =
        genauth_state_from_type(Py_TYPE((PyObject *)self));
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
    /* Parsing runs no caller code; conversions come next, with every
     * argument held. */
    _Static_assert(NARGS == sizeof(client_params) / sizeof(client_params[0]),
                   "one parameter for each argument");
    if (genauth_parse_tuple_args(&client_signature, args, kwargs, a) < 0)
        return -1;
    for (int i = 0; i < NARGS; i++)
        a[i] = Py_NewRef(a[i] ? a[i] : Py_None);

    /* 1. Every argument into C, with the caller's code (if any) run. The
     * brand first: it names the environment variables a missing key or
     * host is read from. */
    if (optional_str(a[BRAND], "brand", &brand) < 0)
        goto done;
    if (!brand)
        brand = "genauth";
    {
        PyObject *ak = a[AK], *sk = a[SK], *env_host = a[HOST];
        if (genauth_credentials_from_env("ManagementClient", brand, &ak, &sk,
                                         &env_host, &from_env) < 0)
            goto done;
        Py_SETREF(a[AK], ak); /* new references for the borrowed ones */
        Py_SETREF(a[SK], sk);
        Py_SETREF(a[HOST], env_host);
    }
    if (required_str(a[AK], "access_key_id", &opts.access_key_id) < 0 ||
        required_str(a[SK], "access_key_secret", &opts.access_key_secret) <
            0 ||
        optional_str(a[HOST], "host", &opts.host) < 0 ||
        optional_str(a[LANG], "lang", &opts.lang) < 0 ||
        optional_str(a[TENANT], "tenant_id", &opts.tenant_id) < 0 ||
        optional_str(a[WS_HOST], "websocket_host", &ws_unused) < 0 ||
        optional_str(a[WS_ENDPOINT], "websocket_endpoint", &ws_unused) < 0 ||
        timeout_arg(a[TIMEOUT], &opts.timeout) < 0)
        goto done;
    if (strcmp(brand, "genauth") == 0)
        opts.brand = GENAUTH_BRAND_GENAUTH;
    else if (strcmp(brand, "authing") == 0)
        opts.brand = GENAUTH_BRAND_AUTHING;
    else {
        bad_choice("brand", "'genauth' or 'authing'", a[BRAND]);
        goto done;
    }
    if (a[AUTH] != Py_None) {
        const char *auth = NULL;
        if (optional_str(a[AUTH], "auth", &auth) < 0)
            goto done;
        if (strcmp(auth, "token") == 0)
            opts.auth = GENAUTH_AUTH_TOKEN;
        else if (strcmp(auth, "signature") == 0)
            opts.auth = GENAUTH_AUTH_SIGNATURE;
        else {
            bad_choice("auth", "'token' or 'signature'", a[AUTH]);
            goto done;
        }
    }
    if (flag_arg(a[UNVERIFIED], "use_unverified_ssl", &unverified) < 0 ||
        flag_arg(a[RAISE], "raise_for_status", &raise_for_status) < 0)
        goto done;
    opts.use_unverified_ssl = unverified;
    if (a[CA] != Py_None) {
        PyObject *path = NULL;
        char *absolute = NULL;
        int nomem = 0;
        if (path_arg(a[CA], "ca_bundle", &ca_bytes) < 0)
            goto done;
        /* Pickled (and copied) as the file it named, not as the caller's
         * os.PathLike (which may not pickle, or name another file by then),
         * nor as a relative path, which names another file after a
         * chdir(): absolute, as the core keeps it. */
        absolute =
            genauth_ca_path_absolute(PyBytes_AsString(ca_bytes), 0, &nomem);
        if (!absolute) {
            PyErr_NoMemory();
            goto done;
        }
        Py_SETREF(ca_bytes, PyBytes_FromString(absolute));
        free(absolute);
        if (!ca_bytes)
            goto done;
        path = PyBytes_Check(a[CA])
                   ? Py_NewRef(ca_bytes)
                   : PyUnicode_DecodeFSDefaultAndSize(
                         PyBytes_AsString(ca_bytes), PyBytes_Size(ca_bytes));
        if (!path)
            goto done;
        Py_SETREF(a[CA], path);
        opts.ca_bundle = PyBytes_AsString(ca_bytes);
    } else if (genauth_ca_store_wanted(&opts)) {
        /* Only on a machine without a CA store the core would find, for a
         * verified https:// host or an https:// proxy from the environment
         * (one rule for both: the core's). */
        genauth_ca_store store;
        if (!genauth_ca_store_find(&store)) {
            if (certifi_where(&ca_bytes) < 0)
                goto done;
            if (ca_bytes)
                opts.ca_fallback = PyBytes_AsString(ca_bytes);
        }
    }
    if (a[MAX] != Py_None) {
        long long v = 0;
        if (genauth_int_arg(a[MAX], "max_response_bytes", 1, LLONG_MAX, &v) <
            0)
            goto done;
        opts.max_response_bytes = (size_t)v;
    }
    if (a[RETRIES] != Py_None) {
        long long v = 0;
        if (genauth_int_arg(a[RETRIES], "max_retries", 0, 100, &v) < 0)
            goto done;
        opts.max_retries = (int)v;
    }

    /* What pickling and copying make a new client from (pickle.c): every
     * option, the keys read from the environment included. */
    if (!(timeout_float = PyFloat_FromDouble(opts.timeout)))
        goto done;
    Py_SETREF(a[TIMEOUT], timeout_float);
    timeout_float = NULL;
    Py_SETREF(a[UNVERIFIED], Py_NewRef(unverified ? Py_True : Py_False));
    Py_SETREF(a[RAISE], Py_NewRef(raise_for_status ? Py_True : Py_False));
    if (!(options = genauth_options_pack(a, NARGS, &options_given)))
        goto done;

    /* 2. The core client and the Python values describing it. */
    if (genauth_client_new(&opts, &client, &err) != GENAUTH_OK) {
        genauth_credentials_name_variable(brand, from_env, &err);
        genauth_raise(st, &err);
        goto done;
    }
    genauth_client_set_interrupt(client, genauth_check_signals, NULL);
    genauth_client_set_event_hook(client, genauth_log_event, st);
    host = PyUnicode_FromString(genauth_client_base_url(client));
    if (!host || !(masked = mask_key(opts.access_key_id)))
        goto done;
    /* Before the client is the object's: Ctrl-C in a handler of the
     * warning comes out of the constructor, as out of a logging call in
     * Python, and leaves the object uninitialised. */
    if (unverified && genauth_log_unverified(st, host) < 0)
        goto done;

    /* 3. The caller's code above (a log handler's too, or a finalizer run
     * by an allocation) may have re-entered __init__: check again, then
     * assign with nothing that can run Python code in between. */
    if (self->client) {
        PyErr_SetString(PyExc_RuntimeError,
                        "ManagementClient is already initialised; make a "
                        "new one");
        goto done;
    }
    self->client = client;
    client = NULL;
    Py_XSETREF(self->access_key_id, Py_NewRef(a[AK]));
    Py_XSETREF(self->lang, Py_NewRef(a[LANG]));
    self->use_unverified_ssl = unverified;
    self->timeout = opts.timeout;
    self->raise_for_status = raise_for_status;
    self->sign_payloads = opts.auth == GENAUTH_AUTH_SIGNATURE;
    Py_XSETREF(self->host, host);
    Py_XSETREF(self->masked_key, masked);
    Py_XSETREF(self->options, options);
    self->options_given = options_given;
    host = masked = options = NULL;
    rc = 0;

done:
    if (client)
        genauth_client_free(client); /* never used: no call can be inside */
    Py_XDECREF(masked);
    Py_XDECREF(host);
    Py_XDECREF(ca_bytes);
    Py_XDECREF(options);
    for (int i = 0; i < NARGS; i++)
        Py_XDECREF(a[i]);
    genauth_error_clear(&err);
    return rc;
}

static int
Client_traverse(ClientObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE((PyObject *)self));
    Py_VISIT(self->options);
    return 0;
}

static void
Client_dealloc(ClientObject *self)
{
    PyTypeObject *tp = Py_TYPE((PyObject *)self);
    PyObject_GC_UnTrack(self);
    /* First, with the client whole: a callback (weakref.finalize) is the
     * caller's code and sees the object as it was. */
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
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
    Py_CLEAR(self->options);
    ((freefunc)PyType_GetSlot(tp, Py_tp_free))(self);
    Py_DECREF(tp);
}

int
genauth_client_signs_payloads(PyObject *self)
{
    return ((ClientObject *)self)->sign_payloads;
}

genauth_client *
genauth_client_of(PyObject *self, int *raise_for_status)
{
    ClientObject *c = (ClientObject *)self;
    if (raise_for_status)
        *raise_for_status = c->raise_for_status;
    return c->client;
}

PyObject *
genauth_client_reduce(PyObject *self, PyObject *Py_UNUSED(ignored))
{
    ClientObject *c = (ClientObject *)self;
    return genauth_reduce(self, client_params, client_signature.nparams,
                          c->options, c->options_given);
}

static PyObject *
Client_repr(ClientObject *self)
{
    if (!self->client)
        return PyUnicode_FromFormat("<%s (uninitialised)>",
                                    GENAUTH_TYPE_NAME(self));
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
     "How many management tokens this client has fetched (int); attempts\n"
     "that brought no token are not counted.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyDoc_STRVAR(Client_doc,
"ManagementClient(access_key_id=None, access_key_secret=None, host=None,\n"
"                 timeout=10.0, lang=None, use_unverified_ssl=False,\n"
"                 websocket_host=None, websocket_endpoint=None, *,\n"
"                 tenant_id=None, brand='genauth', ca_bundle=None,\n"
"                 raise_for_status=False, max_response_bytes=16777216,\n"
"                 auth='token', max_retries=2)\n"
"--\n\n"
"A client of GenAuth's V3 management API.\n\n"
"Keys not given are read from the environment: GENAUTH_ACCESS_KEY_ID,\n"
"GENAUTH_ACCESS_KEY_SECRET and, for host, GENAUTH_HOST (AUTHING_* with\n"
"brand='authing'). A client pickles and copies by its options, the key\n"
"secret included.\n\n"
"host: 'https://api.genauth.ai' by default ('https://api.authing.cn' for\n"
"brand='authing'); an http(s) URL with optional port and path prefix.\n"
"timeout: the limit, in seconds, for a whole call (token fetch and retry\n"
"included); greater than 0 and at most 1e9. None is the default, 10 s,\n"
"not 'no limit': every call has one. lang and tenant_id (and the key\n"
"id with auth='signature') are sent as headers: printable ASCII, at most\n"
"8 KiB (8192 bytes). TLS certificates are verified unless\n"
"use_unverified_ssl=True; ca_bundle trusts a private CA. One client may\n"
"be shared by many threads; it keeps its connections alive. Use it as a\n"
"context manager or call close().\n\n"
"auth='token' (default) authenticates with a management token fetched\n"
"with the key pair; auth='signature' signs every request with the key\n"
"pair (HMAC-SHA1) instead, as the official Node SDK does.\n\n"
"websocket_host and websocket_endpoint are accepted (str or None) so that\n"
"positional calls written for the official SDK work; the event-subscription\n"
"API they serve is not part of this package.\n\n"
"max_retries: how many times a call is sent again when it never reached\n"
"the server (refused, DNS, TLS handshake) or was throttled (429), with\n"
"backoff, within timeout; 0 turns retries off. A call that may have\n"
"reached the server is never sent again.");

/* The stable ABI's way to give a heap type weak references. */
static PyMemberDef Client_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ClientObject, weakrefs),
     READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

static PyType_Slot Client_slots[] = {
    {Py_tp_doc, (void *)Client_doc},
    {Py_tp_init, Client_init},
    {Py_tp_new, PyType_GenericNew},
    {Py_tp_dealloc, Client_dealloc},
    {Py_tp_traverse, Client_traverse},
    {Py_tp_repr, Client_repr},
    {Py_tp_methods, genauth_client_methods},
    {Py_tp_getset, Client_getset},
    {Py_tp_members, Client_members},
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
