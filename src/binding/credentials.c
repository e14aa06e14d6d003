/* Credentials from the environment: a client made without keys reads them
 * from os.environ (not getenv: a program that sets os.environ[...] is seen,
 * as Python users expect). Shared by every client type. */
#include <string.h>

#include "binding.h"

/* A space or line end at either end of a value read from the environment is
 * a slip (a copied line end, an `export X=" ..."`), never part of a key or a
 * URL: refused, naming the variable, rather than sent. */
static int
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* The value of os.environ[name] when set and non-empty (new reference),
 * NULL otherwise; -1 with an exception set on failure: ValueError naming
 * the variable (never quoting it) when it is not UTF-8 or has a blank at
 * either end. */
static int
environ_get(PyObject *os_environ, const char *name, PyObject **out)
{
    Py_ssize_t len = 0;
    const char *s = NULL;

    *out = NULL;
    PyObject *value = PyMapping_GetItemString(os_environ, name);
    if (!value) {
        if (!PyErr_ExceptionMatches(PyExc_KeyError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    if (!PyUnicode_Check(value)) {
        *out = value; /* a mapping of the caller's: the checks that follow
                         name the parameter */
        return 0;
    }
    if (PyUnicode_GetLength(value) == 0) {
        Py_DECREF(value); /* FOO= is as good as unset */
        return 0;
    }
    /* Bytes that are not UTF-8 come from os.environ as lone surrogates. */
    if (!(s = PyUnicode_AsUTF8AndSize(value, &len))) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "%s: not UTF-8 text (set in the environment)", name);
        }
        Py_DECREF(value);
        return -1;
    }
    if (is_blank(s[0]) || is_blank(s[len - 1])) {
        PyErr_Format(PyExc_ValueError,
                     "%s: begins or ends with a space or line end (set in "
                     "the environment)",
                     name);
        Py_DECREF(value);
        return -1;
    }
    *out = value;
    return 0;
}

static int
absent(PyObject *obj)
{
    return !obj || obj == Py_None;
}

int
genauth_credentials_from_env(const char *who, const char *brand,
                             PyObject **access_key_id,
                             PyObject **access_key_secret, PyObject **host)
{
    /* Spelled out, not formatted: every client is made through here. */
    int authing = strcmp(brand, "authing") == 0;
    const char *ak_name =
        authing ? "AUTHING_ACCESS_KEY_ID" : "GENAUTH_ACCESS_KEY_ID";
    const char *sk_name =
        authing ? "AUTHING_ACCESS_KEY_SECRET" : "GENAUTH_ACCESS_KEY_SECRET";
    const char *host_name = authing ? "AUTHING_HOST" : "GENAUTH_HOST";
    PyObject *os = NULL, *os_environ = NULL;
    PyObject *ak = NULL, *sk = NULL, *h = NULL;

    if (absent(*access_key_id) || absent(*access_key_secret) ||
        absent(*host)) {
        os = PyImport_ImportModule("os");
        os_environ = os ? PyObject_GetAttrString(os, "environ") : NULL;
        if (!os_environ)
            goto fail;
    }
    /* Explicit arguments win; the environment fills in the rest. */
    if (absent(*access_key_id) ? environ_get(os_environ, ak_name, &ak) < 0
                               : !(ak = Py_NewRef(*access_key_id)))
        goto fail;
    if (absent(*access_key_secret) ? environ_get(os_environ, sk_name, &sk) < 0
                                   : !(sk = Py_NewRef(*access_key_secret)))
        goto fail;
    if (absent(*host) ? environ_get(os_environ, host_name, &h) < 0
                      : !(h = Py_NewRef(*host)))
        goto fail;
    if (!ak || !sk) {
        PyErr_Format(PyExc_TypeError,
                     "%s: no %s given, and %s%s%s %s not set in the "
                     "environment",
                     who,
                     !ak && !sk ? "access_key_id and access_key_secret"
                     : !ak      ? "access_key_id"
                                : "access_key_secret",
                     !ak ? ak_name : sk_name, !ak && !sk ? " and " : "",
                     !ak && !sk ? sk_name : "", !ak && !sk ? "are" : "is");
        goto fail;
    }
    *access_key_id = ak;
    *access_key_secret = sk;
    *host = h ? h : Py_NewRef(Py_None);
    Py_XDECREF(os_environ);
    Py_XDECREF(os);
    return 0;
fail:
    Py_XDECREF(ak);
    Py_XDECREF(sk);
    Py_XDECREF(h);
    Py_XDECREF(os_environ);
    Py_XDECREF(os);
    return -1;
}
