/* One argument parser for every method, and the checks of each argument
 * kind. See args.h. */
#include <string.h>

#include "args.h"
#include "convert.h"

/* ---- matching arguments to parameters --------------------------------- */

/* "'a'", "'a' and 'b'", "'a', 'b', and 'c'": CPython's list of missing
 * names. New reference, or NULL with an exception set. */
static PyObject *
name_list(const genauth_signature_spec *spec, PyObject **values,
          Py_ssize_t missing)
{
    PyObject *text = PyUnicode_FromString("");
    Py_ssize_t done = 0;
    for (Py_ssize_t i = 0; text && i < spec->nparams; i++) {
        if (!spec->params[i].required || values[i])
            continue;
        const char *sep = done == 0 ? ""
                          : done == missing - 1
                              ? (missing == 2 ? " and " : ", and ")
                              : ", ";
        PyObject *grown = PyUnicode_FromFormat("%U%s'%s'", text, sep,
                                               spec->params[i].name);
        Py_SETREF(text, grown);
        done++;
    }
    return text;
}

Py_ssize_t
genauth_param_slot(const genauth_signature_spec *spec, PyObject *key)
{
    if (!PyUnicode_Check(key))
        return -1;
    /* Names differ in length more often than not: only an equal length is
     * compared character by character. */
    Py_ssize_t len = PyUnicode_GetLength(key);
    for (Py_ssize_t j = 0; j < spec->nparams; j++) {
        const char *name = spec->params[j].name;
        if ((size_t)len == strlen(name) &&
            PyUnicode_CompareWithASCIIString(key, name) == 0)
            return j;
    }
    return -1;
}

/* The start of either parse: every slot empty, and TypeError when more
 * positional arguments came than the signature takes. */
static int
start_parse(const genauth_signature_spec *spec, Py_ssize_t nargs,
            PyObject **values)
{
    Py_ssize_t nrequired = 0;

    for (Py_ssize_t i = 0; i < spec->nparams; i++) {
        values[i] = NULL;
        nrequired += spec->params[i].required != 0;
    }
    if (nargs <= spec->npositional)
        return 0;
    /* Counted with self, as CPython counts a Python method's. */
    if (nrequired == spec->npositional)
        PyErr_Format(PyExc_TypeError,
                     "%s() takes %zd positional argument%s but %zd were given",
                     spec->qualname, spec->npositional + 1,
                     spec->npositional == 0 ? "" : "s", nargs + 1);
    else
        PyErr_Format(PyExc_TypeError,
                     "%s() takes from %zd to %zd positional arguments but "
                     "%zd were given",
                     spec->qualname, nrequired + 1, spec->npositional + 1,
                     nargs + 1);
    return -1;
}

/* The keyword argument `key`=`value` into its slot. Runs no caller code. */
static int
put_keyword(const genauth_signature_spec *spec, PyObject *key,
            PyObject *value, PyObject **values)
{
    Py_ssize_t slot = genauth_param_slot(spec, key);
    if (slot < 0) {
        /* %U: the name's characters, without a str subclass's __str__
         * (which CPython's own message would run). */
        if (PyUnicode_Check(key))
            PyErr_Format(PyExc_TypeError,
                         "%s() got an unexpected keyword argument '%U'",
                         spec->qualname, key);
        else
            PyErr_Format(PyExc_TypeError, "%s() keywords must be strings",
                         spec->qualname);
        return -1;
    }
    if (values[slot]) {
        PyErr_Format(PyExc_TypeError,
                     "%s() got multiple values for argument '%s'",
                     spec->qualname, spec->params[slot].name);
        return -1;
    }
    values[slot] = value;
    return 0;
}

/* The end of either parse: TypeError naming the required parameters that
 * got no argument. */
static int
end_parse(const genauth_signature_spec *spec, PyObject **values)
{
    Py_ssize_t missing = 0;
    for (Py_ssize_t i = 0; i < spec->nparams; i++)
        missing += spec->params[i].required && !values[i];
    if (!missing)
        return 0;
    PyObject *names = name_list(spec, values, missing);
    if (names) {
        PyErr_Format(PyExc_TypeError,
                     "%s() missing %zd required positional argument%s: %U",
                     spec->qualname, missing, missing == 1 ? "" : "s", names);
        Py_DECREF(names);
    }
    return -1;
}

int
genauth_parse_args(const genauth_signature_spec *spec, PyObject *const *args,
                   Py_ssize_t nargs, PyObject *kwnames, PyObject **values)
{
    if (start_parse(spec, nargs, values) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < nargs; i++)
        values[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_Size(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++)
        if (put_keyword(spec, PyTuple_GetItem(kwnames, k), args[nargs + k],
                        values) < 0)
            return -1;
    return end_parse(spec, values);
}

int
genauth_parse_tuple_args(const genauth_signature_spec *spec, PyObject *args,
                         PyObject *kwargs, PyObject **values)
{
    Py_ssize_t nargs = PyTuple_Size(args);
    if (nargs < 0 || start_parse(spec, nargs, values) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < nargs; i++)
        values[i] = PyTuple_GetItem(args, i);
    Py_ssize_t pos = 0;
    PyObject *key, *value;
    /* The dict is the call's own: nothing here runs code that could
     * change it. */
    while (kwargs && PyDict_Next(kwargs, &pos, &key, &value))
        if (put_keyword(spec, key, value, values) < 0)
            return -1;
    return end_parse(spec, values);
}

/* ---- argument kinds ------------------------------------------------------- */

/* "name" or "name[index]": what an error message names. Formatted only on
 * the way to an error, never on the path every call takes. */
static const char *
arg_where(char *buf, size_t size, const char *name, Py_ssize_t index)
{
    if (index < 0)
        return name;
    PyOS_snprintf(buf, size, "%s[%zd]", name, index);
    return buf;
}

static int
is_ascii_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

/* Whether s[0..len) is ASCII whitespace only. */
static int
is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_ascii_space(s[i]))
            return 0;
    return 1;
}

const char *
genauth_str_arg_utf8(PyObject *value, const char *name, Py_ssize_t index,
                     int nonempty, Py_ssize_t *len)
{
    char buf[160];
    if (!PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s: expected %s, got %.100s",
                     arg_where(buf, sizeof(buf), name, index),
                     nonempty ? "a non-empty str" : "str",
                     GENAUTH_TYPE_NAME(value));
        return NULL;
    }
    const char *s = PyUnicode_AsUTF8AndSize(value, len);
    if (!s) {
        if (PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_ValueError,
                         "%s: holds a lone surrogate, which cannot be "
                         "encoded as UTF-8",
                         arg_where(buf, sizeof(buf), name, index));
        }
        return NULL;
    }
    if (nonempty && *len == 0) {
        PyErr_Format(PyExc_ValueError, "%s: expected a non-empty str, got ''",
                     arg_where(buf, sizeof(buf), name, index));
        return NULL;
    }
    /* " " names nothing either ($ID unset in "$ID ", a stray paste): the
     * server would look it up, or store it, as given. Read past the first
     * byte only when that is a space. */
    if (nonempty && is_ascii_space(s[0]) && is_blank(s, (size_t)*len)) {
        PyErr_Format(PyExc_ValueError,
                     "%s: expected a non-empty str, got only whitespace",
                     arg_where(buf, sizeof(buf), name, index));
        return NULL;
    }
    if ((size_t)*len != strlen(s)) {
        PyErr_Format(PyExc_ValueError, "%s: must not contain NUL",
                     arg_where(buf, sizeof(buf), name, index));
        return NULL;
    }
    return s;
}

/* The longest str a method takes, in bytes of UTF-8: far beyond any id,
 * name, URL, event name or secret the API holds, and, percent-encoded at
 * up to 3 bytes a byte into a GET's query (get_webhook's webhook_id), far
 * within the 1 MiB request head libcurl builds: a webhook_id past about
 * a third of that failed only once sent, after a token fetch, as a
 * TransportError naming no argument. */
#define MAX_STR_ARG_BYTES (64 * 1024)

static cJSON *
str_node(PyObject *value, const char *name, Py_ssize_t index, int nonempty)
{
    char buf[160];
    Py_ssize_t len = 0;
    const char *s =
        genauth_str_arg_utf8(value, name, index, nonempty, &len);
    if (!s)
        return NULL;
    if (len > MAX_STR_ARG_BYTES) {
        PyErr_Format(PyExc_ValueError,
                     "%s: must be at most %d bytes of UTF-8, got %zd",
                     arg_where(buf, sizeof(buf), name, index),
                     MAX_STR_ARG_BYTES, len);
        return NULL;
    }
    cJSON *node = genauth_json_string_new(s, (size_t)len);
    if (!node)
        PyErr_NoMemory();
    return node;
}

/* A webhook's contentType: one of the two the API knows (the reference
 * fixes them; genauth_c.ContentType and the command line's --content-type
 * list the same), compared exactly, as the server compares them. Anything
 * else would come back a statusCode 400, after a token fetch and a round
 * trip. */
static cJSON *
content_type_node(PyObject *value, const char *name)
{
    static const char json_type[] = "application/json";
    static const char form_type[] = "application/x-www-form-urlencoded";
    /* Without NUL (refused): the node holds the text as it is. */
    cJSON *node = str_node(value, name, -1, 0);
    if (node && strcmp(node->valuestring, json_type) != 0 &&
        strcmp(node->valuestring, form_type) != 0) {
        cJSON_Delete(node);
        PyErr_Format(PyExc_ValueError, "%s: expected '%s' or '%s'", name,
                     json_type, form_type);
        return NULL;
    }
    return node;
}

/* A webhook's shared secret, which the server sends as a header of each
 * delivery (x-authing-webhook-secret): a control character there would
 * end the header or be cut from it, and no delivery would carry the secret
 * as set. Refused as the constructor refuses one in a header value, by a
 * message that never quotes it. */
static cJSON *
secret_node(PyObject *value, const char *name)
{
    cJSON *node = str_node(value, name, -1, 1);
    for (const char *p = node ? node->valuestring : ""; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            cJSON_Delete(node);
            PyErr_Format(PyExc_ValueError,
                         "%s: must not contain CR, LF or other control "
                         "characters",
                         name);
            return NULL;
        }
    }
    return node;
}

/* A list of names (GENAUTH_ARG_STR_LIST): each passes GENAUTH_ARG_STR's
 * check, and there is at least one. */
static cJSON *
str_list_node(PyObject *value, const char *name)
{
    if (!PyList_Check(value) && !PyTuple_Check(value)) {
        PyErr_Format(PyExc_TypeError,
                     "%s: expected a list or tuple of str, got %.100s", name,
                     GENAUTH_TYPE_NAME(value));
        return NULL;
    }
    int is_list = PyList_Check(value);
    Py_ssize_t n = is_list ? PyList_Size(value) : PyTuple_Size(value);
    if (n == 0) {
        /* Sent, [] would delete nothing, or subscribe to no event, and
         * succeed as if it had (the command line refuses it too). */
        PyErr_Format(PyExc_ValueError,
                     "%s: expected at least one str, got an empty %.100s",
                     name, GENAUTH_TYPE_NAME(value));
        return NULL;
    }
    cJSON *array = cJSON_CreateArray();
    if (!array)
        return (cJSON *)PyErr_NoMemory();
    /* Items are str (checked before any use), so nothing here runs the
     * caller's code and the list cannot change under the loop. */
    for (Py_ssize_t i = 0; i < n; i++) {
        /* Borrowed, read from the storage as PySequence_Fast_GET_ITEM does
         * (never a subclass's __getitem__). */
        PyObject *s = is_list ? PyList_GetItem(value, i)
                              : PyTuple_GetItem(value, i);
        cJSON *item = str_node(s, name, i, 1);
        if (!item || !cJSON_AddItemToArray(array, item)) {
            if (item) {
                cJSON_Delete(item);
                PyErr_NoMemory();
            }
            cJSON_Delete(array);
            return NULL;
        }
    }
    return array;
}

static cJSON *
pos_int_node(PyObject *value, const char *name)
{
    if (PyBool_Check(value) || !PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s: expected a positive int, got %.100s",
                     name, GENAUTH_TYPE_NAME(value));
        return NULL;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (v == -1 && PyErr_Occurred())
        return NULL;
    if (overflow > 0 || v > 9007199254740991LL) {
        PyErr_Format(PyExc_ValueError,
                     "%s: must be at most 9007199254740991 (2**53 - 1)",
                     name);
        return NULL;
    }
    if (overflow < 0 || v < 1) {
        PyObject *r = genauth_plain_repr(value); /* not an IntEnum's */
        if (r) {
            PyErr_Format(PyExc_ValueError,
                         "%s: must be a positive int, got %U", name, r);
            Py_DECREF(r);
        }
        return NULL;
    }
    char lit[32];
    int n = PyOS_snprintf(lit, sizeof(lit), "%lld", v);
    cJSON *node = genauth_json_number_new(lit, (size_t)n);
    if (!node)
        PyErr_NoMemory();
    return node;
}

int
genauth_int_arg(PyObject *value, const char *name, long long min,
                long long max, long long *out)
{
    int overflow = 0;
    if (PyBool_Check(value) || !PyLong_Check(value)) {
        PyErr_Format(PyExc_TypeError, "%s: expected an int, got %.100s",
                     name, GENAUTH_TYPE_NAME(value));
        return -1;
    }
    *out = PyLong_AsLongLongAndOverflow(value, &overflow);
    if (*out == -1 && PyErr_Occurred())
        return -1;
    if (overflow || *out < min || *out > max) {
        PyErr_Format(PyExc_ValueError, "%s: must be from %lld to %lld", name,
                     min, max);
        return -1;
    }
    return 0;
}

cJSON *
genauth_arg_to_json(PyObject *value, genauth_arg_kind kind,
                    const genauth_conv_options *opts)
{
    const char *name = opts->argname;
    cJSON *node = NULL;
    switch (kind) {
    case GENAUTH_ARG_STR:
        return str_node(value, name, -1, 1);
    case GENAUTH_ARG_STR_LIST:
        return str_list_node(value, name);
    case GENAUTH_ARG_CONTENT_TYPE:
        return content_type_node(value, name);
    case GENAUTH_ARG_SECRET:
        return secret_node(value, name);
    case GENAUTH_ARG_BOOL:
        if (!PyBool_Check(value)) {
            PyErr_Format(PyExc_TypeError, "%s: expected bool, got %.100s",
                         name, GENAUTH_TYPE_NAME(value));
            return NULL;
        }
        node = cJSON_CreateBool(value == Py_True);
        if (!node)
            PyErr_NoMemory();
        return node;
    case GENAUTH_ARG_POS_INT:
        return pos_int_node(value, name);
    case GENAUTH_ARG_MAPPING:
        return genauth_py_to_json_object_ex(value, opts);
    case GENAUTH_ARG_OTHER:
        break;
    }
    PyErr_Format(PyExc_SystemError, "%s: no conversion", name);
    return NULL;
}
