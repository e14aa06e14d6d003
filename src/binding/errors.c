/* The exception hierarchy, kept in module state, and the mapping from the
 * core's error struct to it. Attributes are plain instance attributes, with
 * class-level defaults of None so a hand-made instance still has them. */
#include <string.h>

#include "binding.h"
#include "convert.h"

static PyObject *
new_exception(PyObject *module, const char *name, const char *doc,
              PyObject *bases, const char *const *attrs)
{
    PyObject *type = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
    if (!type)
        return NULL;
    for (; attrs && *attrs; attrs++) {
        if (PyObject_SetAttrString(type, *attrs, Py_None) < 0)
            goto fail;
    }
    if (PyModule_AddObjectRef(module, strrchr(name, '.') + 1, type) < 0)
        goto fail;
    return type;
fail:
    Py_DECREF(type);
    return NULL;
}

int
genauth_errors_init(PyObject *module, genauth_module_state *st)
{
    static const char *const transport_attrs[] = {"curl_code", NULL};
    static const char *const decode_attrs[] = {"http_status", "excerpt",
                                               NULL};
    static const char *const envelope_attrs[] = {
        "status_code", "api_code", "message", "request_id", "response",
        "http_status", NULL};
    PyObject *bases = NULL;

    st->GenAuthError = new_exception(
        module, "genauth_c.GenAuthError",
        "Base class of every error genauth_c raises.", PyExc_Exception, NULL);
    if (!st->GenAuthError)
        return -1;
    st->TransportError = new_exception(
        module, "genauth_c.TransportError",
        "The request did not complete: connection, DNS, TLS, or a response "
        "over max_response_bytes. .curl_code is libcurl's error code.",
        st->GenAuthError, transport_attrs);
    if (!st->TransportError)
        return -1;
    bases = PyTuple_Pack(2, st->TransportError, PyExc_TimeoutError);
    if (!bases)
        return -1;
    st->TimeoutError = new_exception(
        module, "genauth_c.TimeoutError",
        "The call's total time limit (the client's timeout) ran out.", bases,
        transport_attrs);
    Py_CLEAR(bases);
    if (!st->TimeoutError)
        return -1;
    bases = PyTuple_Pack(2, st->GenAuthError, PyExc_ValueError);
    if (!bases)
        return -1;
    st->DecodeError = new_exception(
        module, "genauth_c.DecodeError",
        "The server's body is not a JSON object. .http_status is the HTTP "
        "status, .excerpt the start of the body (bytes).",
        bases, decode_attrs);
    Py_CLEAR(bases);
    if (!st->DecodeError)
        return -1;
    st->AuthError = new_exception(
        module, "genauth_c.AuthError",
        "The token endpoint gave no usable management token. .status_code, "
        ".api_code, .message, .request_id and .response come from its "
        "envelope when it sent one.",
        st->GenAuthError, envelope_attrs);
    if (!st->AuthError)
        return -1;
    st->APIError = new_exception(
        module, "genauth_c.APIError",
        "Raised with raise_for_status=True when the envelope's statusCode is "
        "not 200. .response is the whole envelope.",
        st->GenAuthError, envelope_attrs);
    if (!st->APIError)
        return -1;
    bases = PyTuple_Pack(2, st->GenAuthError, PyExc_RuntimeError);
    if (!bases)
        return -1;
    st->ClientClosedError = new_exception(
        module, "genauth_c.ClientClosedError",
        "The client was closed; make a new one.", bases, NULL);
    Py_CLEAR(bases);
    if (!st->ClientClosedError)
        return -1;
    return 0;
}

int
genauth_errors_traverse(genauth_module_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->GenAuthError);
    Py_VISIT(st->TransportError);
    Py_VISIT(st->TimeoutError);
    Py_VISIT(st->DecodeError);
    Py_VISIT(st->AuthError);
    Py_VISIT(st->APIError);
    Py_VISIT(st->ClientClosedError);
    return 0;
}

void
genauth_errors_clear(genauth_module_state *st)
{
    Py_CLEAR(st->GenAuthError);
    Py_CLEAR(st->TransportError);
    Py_CLEAR(st->TimeoutError);
    Py_CLEAR(st->DecodeError);
    Py_CLEAR(st->AuthError);
    Py_CLEAR(st->APIError);
    Py_CLEAR(st->ClientClosedError);
}

/* Sets exc.name = value, stealing value. Returns -1 on failure. */
static int
set_attr(PyObject *exc, const char *name, PyObject *value)
{
    if (!value)
        return -1;
    int r = PyObject_SetAttrString(exc, name, value);
    Py_DECREF(value);
    return r;
}

/* Copies the envelope's fields onto an AuthError/APIError instance. */
static int
set_envelope_attrs(genauth_module_state *st, PyObject *exc,
                   PyObject *envelope, long http_status)
{
    static const char *const names[] = {"status_code", "api_code", "message",
                                        "request_id"};
    PyObject *keys[] = {st->str_statusCode, st->str_apiCode, st->str_message,
                        st->str_requestId};
    if (envelope && PyDict_Check(envelope)) {
        for (int i = 0; i < 4; i++) {
            PyObject *v = PyDict_GetItemWithError(envelope, keys[i]);
            if (!v && PyErr_Occurred())
                return -1;
            if (set_attr(exc, names[i], Py_NewRef(v ? v : Py_None)) < 0)
                return -1;
        }
        if (set_attr(exc, "response", Py_NewRef(envelope)) < 0)
            return -1;
    }
    return set_attr(exc, "http_status", PyLong_FromLong(http_status));
}

static PyObject *
make_exception(PyObject *type, const char *message)
{
    PyObject *msg = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message),
                                         "replace");
    if (!msg)
        return NULL;
    PyObject *exc = genauth_call_one(type, msg);
    Py_DECREF(msg);
    return exc;
}

PyObject *
genauth_raise(genauth_module_state *st, const genauth_error *err)
{
    /* One raised by the caller's code while the call waited (a signal
     * handler's KeyboardInterrupt, in a child it forked too, where the call
     * then ends as forked) is the one raised: no exception is made with it
     * set. */
    if (PyErr_Occurred())
        return NULL;
    PyObject *exc = genauth_exception_new(st, err);
    if (exc) {
        PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

PyObject *
genauth_take_exception(void)
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

PyObject *
genauth_exception_new(genauth_module_state *st, const genauth_error *err)
{
    PyObject *type, *exc = NULL, *envelope = NULL;

    switch (err->status) {
    case GENAUTH_E_INVALID:
        type = PyExc_ValueError;
        break;
    case GENAUTH_E_NOMEM:
        type = PyExc_MemoryError;
        break;
    case GENAUTH_E_TIMEOUT:
        type = st->TimeoutError;
        break;
    case GENAUTH_E_DECODE:
        type = st->DecodeError;
        break;
    case GENAUTH_E_AUTH:
        type = st->AuthError;
        break;
    case GENAUTH_E_CLOSED:
        type = st->ClientClosedError;
        break;
    case GENAUTH_E_CRYPTO:
        /* libcrypto itself failed: neither the caller's input nor the
         * network, so the base class. */
        type = st->GenAuthError;
        break;
    case GENAUTH_E_INTERRUPTED:
        /* The interrupt check left KeyboardInterrupt (or whatever the signal
         * handler raised) set: hand that exception over. */
        if (PyErr_Occurred())
            return genauth_take_exception();
        type = PyExc_KeyboardInterrupt;
        break;
    default:
        type = st->TransportError;
        break;
    }
    exc = make_exception(type, err->message);
    if (!exc)
        return NULL;
    switch (err->status) {
    case GENAUTH_E_TIMEOUT:
    case GENAUTH_E_TRANSPORT:
        if (set_attr(exc, "curl_code", PyLong_FromLong(err->curl_code)) < 0)
            goto fail;
        break;
    case GENAUTH_E_DECODE:
        if (set_attr(exc, "http_status", PyLong_FromLong(err->http_status)) <
                0 ||
            set_attr(exc, "excerpt",
                     PyBytes_FromStringAndSize(err->excerpt,
                                               (Py_ssize_t)err->excerpt_len)) <
                0)
            goto fail;
        break;
    case GENAUTH_E_AUTH:
        if (err->auth_envelope) {
            envelope = genauth_json_doc_to_py(err->auth_envelope,
                                              &st->result_keys);
            if (!envelope)
                PyErr_Clear(); /* the refusal matters more than its body */
        }
        if (set_envelope_attrs(st, exc, envelope, err->http_status) < 0)
            goto fail;
        break;
    default:
        break;
    }
    Py_XDECREF(envelope);
    return exc;
fail:
    Py_XDECREF(envelope);
    Py_DECREF(exc);
    return NULL;
}

PyObject *
genauth_api_error_hidden(genauth_module_state *st,
                         const genauth_envelope *env)
{
    static const char *const hidden[] = {"message", "request_id", "response"};
    PyObject *exc = NULL, *msg = NULL;
    PyObject *code = env->has_status_code ? PyLong_FromLong(env->status_code)
                                          : Py_NewRef(Py_None);
    if (!code)
        return NULL;
    msg = PyUnicode_FromFormat("statusCode %S: the answer quoted the token "
                               "or the secret the request was sent with, "
                               "so it is not shown",
                               code);
    if (!msg || !(exc = genauth_call_one(st->APIError, msg)))
        goto done;
    if (set_attr(exc, "status_code", Py_NewRef(code)) < 0 ||
        set_attr(exc, "api_code",
                 env->has_api_code ? PyLong_FromLong(env->api_code)
                                   : Py_NewRef(Py_None)) < 0 ||
        set_attr(exc, "http_status", PyLong_FromLong(env->http_status)) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof(hidden) / sizeof(hidden[0]); i++) {
        if (set_attr(exc, hidden[i], Py_NewRef(Py_None)) < 0)
            goto fail;
    }
    goto done;
fail:
    Py_CLEAR(exc);
done:
    Py_XDECREF(msg);
    Py_DECREF(code);
    return exc;
}

PyObject *
genauth_api_error_new(genauth_module_state *st, PyObject *envelope,
                      long http_status)
{
    PyObject *exc = NULL, *msg = NULL, *code = NULL, *text = NULL;

    code = PyDict_GetItemWithError(envelope, st->str_statusCode);
    if (!code && PyErr_Occurred())
        goto done;
    text = PyDict_GetItemWithError(envelope, st->str_message);
    if (!text && PyErr_Occurred())
        goto done;
    msg = PyUnicode_FromFormat("statusCode %R: %S", code ? code : Py_None,
                               text ? text : Py_None);
    /* The server chose them: a list nested about as deep as JSON may be
     * is past what repr() can walk from a caller some frames deep. Still
     * the APIError, whose .response holds them. */
    if (!msg && PyErr_ExceptionMatches(PyExc_RecursionError)) {
        PyErr_Clear();
        msg = PyUnicode_FromString("statusCode or message nested too deep "
                                   "to show; see .response");
    }
    if (!msg)
        goto done;
    exc = genauth_call_one(st->APIError, msg);
    if (!exc)
        goto done;
    if (set_envelope_attrs(st, exc, envelope, http_status) < 0)
        Py_CLEAR(exc);
done:
    Py_XDECREF(msg);
    Py_DECREF(envelope);
    return exc;
}
