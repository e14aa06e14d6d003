/* Credentials from the environment: a client made without keys reads them
 * from os.environ (not getenv: a program that sets os.environ[...] is seen,
 * as Python users expect). Shared by every client type. */
#include <stdio.h>
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

/* The variables of a brand, in the order of genauth_credential_params.
 * Spelled out, not formatted: every client is made through here. */
static const char *const genauth_variables[][3] = {
    {"GENAUTH_ACCESS_KEY_ID", "GENAUTH_ACCESS_KEY_SECRET", "GENAUTH_HOST"},
    {"AUTHING_ACCESS_KEY_ID", "AUTHING_ACCESS_KEY_SECRET", "AUTHING_HOST"},
};
static const char *const genauth_credential_params[3] = {
    "access_key_id", "access_key_secret", "host"};

static const char *const *
variables_of(const char *brand)
{
    return genauth_variables[strcmp(brand, "authing") == 0];
}

int
genauth_credentials_from_env(const char *who, const char *brand,
                             PyObject **access_key_id,
                             PyObject **access_key_secret, PyObject **host,
                             unsigned *from_env)
{
    const char *const *names = variables_of(brand);
    const char *ak_name = names[0], *sk_name = names[1], *host_name = names[2];
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
    *from_env = (absent(*access_key_id) ? 1u : 0u) |
                (absent(*access_key_secret) ? 2u : 0u) |
                (absent(*host) && h ? 4u : 0u);
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

void
genauth_credentials_name_variable(const char *brand, unsigned from_env,
                                  genauth_error *err)
{
    const char *const *names = variables_of(brand);
    for (int i = 0; i < 3; i++) {
        const char *param = genauth_credential_params[i];
        size_t n = strlen(param);
        if (!(from_env & (1u << i)) || strncmp(err->message, param, n) != 0 ||
            err->message[n] != ':')
            continue;
        /* The name grows into "param (VARIABLE, set in the environment)";
         * the message's rest moves right, cut if it no longer fits. */
        char name[96];
        int len = snprintf(name, sizeof(name), "%s (%s, set in the environment)",
                           param, names[i]);
        size_t grown = len > 0 && (size_t)len < sizeof(name) ? (size_t)len : 0;
        size_t rest = strlen(err->message + n);
        if (!grown)
            return;
        if (grown + rest > sizeof(err->message) - 1)
            rest = sizeof(err->message) - 1 - grown;
        memmove(err->message + grown, err->message + n, rest);
        memcpy(err->message, name, grown);
        err->message[grown + rest] = '\0';
        return;
    }
}
