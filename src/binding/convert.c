/* Python objects <-> the core's exact JSON. With convert.h, the only part of
 * the JSON layer that includes Python.h.
 *
 * Out, the error path costs nothing on success: a failing value records what
 * is wrong in the converter, and each level it unwinds through adds its own
 * "[key]" or "[index]" segment; the exception is raised once, at the top. */
#include "convert.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- Python -> cJSON ---------------------------------------------------- */

/* Members held by the converter's reference stack without a heap
 * allocation: enough for ordinary payloads. */
#define GENAUTH_CONV_INLINE_REFS 64

typedef struct {
    const genauth_conv_options *opts;
    /* The containers being converted, outermost first. Borrowed: each is
     * kept alive by the snapshot of its parent (the top one by the
     * caller). */
    PyObject *path[GENAUTH_MAX_DEPTH];
    int depth;
    /* Strong references to the members of every container on the path, as
     * they were when conversion reached it (a stack: each level pushes its
     * snapshot and pops it when done). Converting a member may run the
     * caller's code (a Mapping's items(), a finalizer run by the garbage
     * collector), which may change or empty the container: what is
     * converted is then still the snapshot, never freed memory. `refs` is
     * `inline_refs` or a PyMem block; it may move when it grows, so levels
     * keep indexes into it, not pointers. */
    PyObject **refs;
    Py_ssize_t nrefs, cap;
    PyObject *inline_refs[GENAUTH_CONV_INLINE_REFS];
    /* A conversion error of ours (err_type non-NULL) and no Python exception
     * set, or err_type NULL and maybe a Python exception set. */
    PyObject *err_type; /* borrowed: PyExc_TypeError or PyExc_ValueError */
    PyObject *err_msg;  /* owned str: what is wrong, without the path */
    PyObject *err_segments; /* owned list of str, innermost first, or NULL */
} genauth_conv;

static void
genauth_conv_clear(genauth_conv *cv)
{
    cv->err_type = NULL;
    Py_CLEAR(cv->err_msg);
    Py_CLEAR(cv->err_segments);
}

/* Records a conversion error (the path comes while unwinding). Returns -1.
 * If even the message cannot be made, that MemoryError is what is raised. */
static int
genauth_conv_fail(genauth_conv *cv, PyObject *type, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cv->err_msg = PyUnicode_FromFormatV(fmt, ap);
    va_end(ap);
    if (cv->err_msg != NULL)
        cv->err_type = type;
    return -1;
}

/* Whether a conversion error of ours is pending (and no Python exception):
 * only then is a path segment worth building. Building it calls into
 * Python, which must not happen while an exception is set; and the
 * caller's own exception needs no path: it comes out unchanged. */
static int
genauth_conv_wants_path(const genauth_conv *cv)
{
    return cv->err_type != NULL;
}

/* On unwinding through a container: prepends `segment` (stolen; NULL means
 * its creation failed, with MemoryError set) to the path of the pending
 * conversion error. */
static void
genauth_conv_add_segment(genauth_conv *cv, PyObject *segment)
{
    if (segment == NULL)
        goto fail;
    if (cv->err_segments == NULL) {
        cv->err_segments = PyList_New(0);
        if (cv->err_segments == NULL)
            goto fail;
    }
    if (PyList_Append(cv->err_segments, segment) < 0)
        goto fail;
    Py_DECREF(segment);
    return;

fail:
    /* Out of memory while describing the error: raise that instead. */
    Py_XDECREF(segment);
    genauth_conv_clear(cv);
}

/* repr() of a key as the base type prints it, never the caller's
 * __repr__ (a str subclass, an IntEnum): building an error message runs no
 * caller code. Keys reaching here are str, int, float, bool or None. New
 * reference, or NULL with an exception set. */
static PyObject *
genauth_key_repr(PyObject *key)
{
    if (PyUnicode_Check(key))
        return genauth_base_repr(&PyUnicode_Type, key);
    if (key == Py_True || key == Py_False || key == Py_None)
        return PyObject_Repr(key); /* the singletons' own C repr */
    if (PyFloat_Check(key))
        return genauth_base_repr(&PyFloat_Type, key);
    if (PyLong_Check(key))
        return genauth_base_repr(&PyLong_Type, key);
    return PyUnicode_FromString("?");
}

static void
genauth_conv_add_key_segment(genauth_conv *cv, PyObject *key)
{
    PyObject *r;

    if (!genauth_conv_wants_path(cv))
        return;
    r = genauth_key_repr(key);
    genauth_conv_add_segment(cv, r ? PyUnicode_FromFormat("[%U]", r) : NULL);
    Py_XDECREF(r);
}

static void
genauth_conv_add_index_segment(genauth_conv *cv, Py_ssize_t i)
{
    if (!genauth_conv_wants_path(cv))
        return;
    genauth_conv_add_segment(cv, PyUnicode_FromFormat("[%zd]", i));
}

PyObject *
genauth_argname(Py_ssize_t index, const char *name)
{
    if (index >= 0)
        return PyUnicode_FromFormat("calls[%zd]['%s']", index, name);
    return PyUnicode_FromString(name);
}

/* Raises the pending conversion error as "argname[...][...]: message". A
 * path over 200 characters (a deeply nested value) keeps its two ends. */
static void
genauth_conv_raise(genauth_conv *cv)
{
    PyObject *name = NULL;
    PyObject *empty = NULL;
    PyObject *path = NULL;
    PyObject *head = NULL;
    PyObject *tail = NULL;
    PyObject *msg = NULL;
    Py_ssize_t n;

    name = genauth_argname(cv->opts->batch_index, cv->opts->argname);
    if (name == NULL)
        goto done;
    empty = PyUnicode_FromStringAndSize("", 0);
    if (empty == NULL)
        goto done;
    if (cv->err_segments != NULL) {
        if (PyList_Reverse(cv->err_segments) < 0)
            goto done;
        path = PyUnicode_Join(empty, cv->err_segments);
    }
    else {
        path = Py_NewRef(empty);
    }
    if (path == NULL)
        goto done;
    n = PyUnicode_GetLength(path);
    if (n > 200) {
        head = PyUnicode_Substring(path, 0, 100);
        tail = PyUnicode_Substring(path, n - 100, n);
        if (head == NULL || tail == NULL)
            goto done;
        msg = PyUnicode_FromFormat("%U%U...%U: %U", name, head, tail,
                                   cv->err_msg);
    }
    else {
        msg = PyUnicode_FromFormat("%U%U: %U", name, path, cv->err_msg);
    }
    if (msg == NULL)
        goto done;
    PyErr_SetObject(cv->err_type, msg);

done:
    Py_XDECREF(msg);
    Py_XDECREF(tail);
    Py_XDECREF(head);
    Py_XDECREF(path);
    Py_XDECREF(empty);
    Py_XDECREF(name);
    genauth_conv_clear(cv);
}

/* The type's __name__, as json.dumps names it. New reference, or NULL with
 * an exception set. */
static PyObject *
genauth_type_name(PyObject *obj)
{
#if PY_VERSION_HEX >= 0x030B0000
    return PyType_GetName(Py_TYPE(obj));
#else
    const char *name = Py_TYPE(obj)->tp_name;
    const char *dot = strrchr(name, '.');
    return PyUnicode_FromString(dot ? dot + 1 : name);
#endif
}

/* Whether obj is a collections.abc.Mapping: 1, 0, or -1 with an exception.
 * Only reached for types that are none of the common ones, so the import
 * (a sys.modules lookup) is not on the hot path. */
static int
genauth_is_abc_mapping(PyObject *obj)
{
    PyObject *abc = NULL;
    PyObject *mapping = NULL;
    int rc = -1;

    abc = PyImport_ImportModule("collections.abc");
    if (abc == NULL)
        goto done;
    mapping = PyObject_GetAttrString(abc, "Mapping");
    if (mapping == NULL)
        goto done;
    rc = PyObject_IsInstance(obj, mapping);

done:
    Py_XDECREF(mapping);
    Py_XDECREF(abc);
    return rc;
}

/* After PyUnicode_AsUTF8AndSize failed on `s`: turns the UnicodeEncodeError
 * (a lone surrogate, which UTF-8 cannot carry) into a conversion error;
 * anything else propagates. `is_key`: s is a mapping's key. */
static int
genauth_conv_utf8_error(genauth_conv *cv, PyObject *s, int is_key)
{
    Py_ssize_t i, n;
    Py_UCS4 ch = 0;
    char hex[16];

    if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
        return -1;
    PyErr_Clear();
    n = PyUnicode_GetLength(s);
    for (i = 0; i < n; i++) {
        ch = PyUnicode_ReadChar(s, i);
        if (ch >= 0xD800 && ch <= 0xDFFF)
            break;
    }
    PyOS_snprintf(hex, sizeof(hex), "%04x", (unsigned)ch);
    if (is_key) {
        /* str's own repr: a subclass's __repr__ is the caller's code. */
        PyObject *r = genauth_key_repr(s);
        int rc = -1;

        if (r != NULL) {
            rc = genauth_conv_fail(cv, PyExc_ValueError,
                                   "key %U: lone surrogate '\\u%s' at index "
                                   "%zd cannot be encoded as UTF-8",
                                   r, hex, i);
            Py_DECREF(r);
        }
        return rc;
    }
    return genauth_conv_fail(cv, PyExc_ValueError,
                             "lone surrogate '\\u%s' at index %zd cannot be "
                             "encoded as UTF-8",
                             hex, i);
}

/* Decimal text of v into buf (at least 21 bytes); returns its length. */
static size_t
genauth_lltoa(long long v, char *buf)
{
    char tmp[24];
    size_t n = 0, len = 0;
    /* Work on the magnitude as unsigned so LLONG_MIN does not overflow. */
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v
                                 : (unsigned long long)v;

    do {
        tmp[n++] = (char)('0' + (u % 10));
        u /= 10;
    } while (u);
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    buf[len] = '\0';
    return len;
}

/* int.__repr__, whatever a subclass (IntEnum) says: json.dumps does the
 * same. New reference, or NULL with an exception set. */
static PyObject *
genauth_int_text(PyObject *obj)
{
    return genauth_base_repr(&PyLong_Type, obj);
}

/* float.__repr__ text of a finite double. The caller frees it with
 * PyMem_Free. NULL with an exception set on failure. */
static char *
genauth_float_text(double d)
{
    return PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
}

static const char *
genauth_nonfinite_name(double d)
{
    return isnan(d) ? "nan" : d > 0 ? "inf" : "-inf";
}

static cJSON *genauth_conv_value(genauth_conv *cv, PyObject *obj);

static cJSON *
genauth_conv_int(genauth_conv *cv, PyObject *obj)
{
    PyObject *text = NULL;
    const char *s;
    Py_ssize_t n;
    cJSON *node = NULL;
    char buf[24];
    int overflow = 0;
    long long v;

    v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred())
        goto done;
    if (cv->opts->js_safe_integers &&
        (overflow || v > GENAUTH_JS_MAX_SAFE_INTEGER ||
         v < -GENAUTH_JS_MAX_SAFE_INTEGER)) {
        /* A signed body is sent in JSON.stringify's form, where such an
         * integer is no longer exact: refuse it now, with its path, rather
         * than when the request is sent. */
        genauth_conv_fail(cv, PyExc_ValueError,
                          "integers beyond %s(2**53-1) cannot be signed",
                          "\xc2\xb1");
        goto done;
    }
    if (!overflow) {
        n = (Py_ssize_t)genauth_lltoa(v, buf);
        node = genauth_json_number_new(buf, (size_t)n);
        if (node == NULL)
            PyErr_NoMemory();
        goto done;
    }
    text = genauth_int_text(obj);
    if (text == NULL) {
        /* Over sys.get_int_max_str_digits(): json.dumps fails the same
         * way; keep its message, add the path. */
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            genauth_conv_fail(cv, PyExc_ValueError,
                              "int too large to convert to decimal text "
                              "(over sys.get_int_max_str_digits() digits)");
        }
        goto done;
    }
    s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL)
        goto done;
    node = genauth_json_number_new(s, (size_t)n);
    if (node == NULL)
        PyErr_NoMemory();

done:
    Py_XDECREF(text);
    return node;
}

static cJSON *
genauth_conv_float(genauth_conv *cv, PyObject *obj)
{
    double d = PyFloat_AsDouble(obj);
    char *text = NULL;
    cJSON *node = NULL;

    if (!isfinite(d)) {
        genauth_conv_fail(cv, PyExc_ValueError,
                          "float('%s') is not allowed in JSON",
                          genauth_nonfinite_name(d));
        goto done;
    }
    text = genauth_float_text(d);
    if (text == NULL)
        goto done;
    node = genauth_json_number_new(text, strlen(text));
    if (node == NULL)
        PyErr_NoMemory();

done:
    if (text != NULL)
        PyMem_Free(text);
    return node;
}

static cJSON *
genauth_conv_str(genauth_conv *cv, PyObject *obj)
{
    const char *s;
    Py_ssize_t n;
    cJSON *node;

    /* UTF-8 cached in the str: no copy here, one into the node. */
    s = PyUnicode_AsUTF8AndSize(obj, &n);
    if (s == NULL) {
        genauth_conv_utf8_error(cv, obj, 0);
        return NULL;
    }
    node = genauth_json_string_new(s, (size_t)n);
    if (node == NULL)
        PyErr_NoMemory();
    return node;
}

/* Whether a container may go one level deeper; then records it on the
 * path. A cycle is only looked for once the limit is hit, so ordinary
 * payloads pay nothing for it: a cycle reaches any limit, and then the
 * container at hand is already on the path. */
static int
genauth_conv_enter(genauth_conv *cv, PyObject *container)
{
    int i;

    if (cv->depth < GENAUTH_MAX_DEPTH) {
        cv->path[cv->depth++] = container;
        return 0;
    }
    for (i = 0; i < cv->depth; i++) {
        if (cv->path[i] == container)
            return genauth_conv_fail(cv, PyExc_ValueError,
                                     "circular reference");
    }
    return genauth_conv_fail(cv, PyExc_ValueError,
                             "nested deeper than %d levels",
                             GENAUTH_MAX_DEPTH);
}

/* Adds key: value to `out`, keys converted as json.dumps does. */
static int
genauth_conv_member(genauth_conv *cv, cJSON *out, PyObject *key,
                    PyObject *value)
{
    PyObject *text = NULL;
    char *ftext = NULL;
    const char *ks = NULL;
    Py_ssize_t klen = 0;
    cJSON *item = NULL;
    int rc = -1;

    if (PyUnicode_Check(key)) {
        ks = PyUnicode_AsUTF8AndSize(key, &klen);
        if (ks == NULL) {
            genauth_conv_utf8_error(cv, key, 1);
            goto done;
        }
    }
    else if (key == Py_True || key == Py_False || key == Py_None) {
        ks = key == Py_True ? "true" : key == Py_False ? "false" : "null";
        klen = (Py_ssize_t)strlen(ks);
    }
    else if (PyFloat_Check(key)) {
        double d = PyFloat_AsDouble(key);

        if (!isfinite(d)) {
            genauth_conv_fail(cv, PyExc_ValueError,
                              "key float('%s') is not allowed in JSON",
                              genauth_nonfinite_name(d));
            goto done;
        }
        ftext = genauth_float_text(d);
        if (ftext == NULL)
            goto done;
        ks = ftext;
        klen = (Py_ssize_t)strlen(ftext);
    }
    else if (PyLong_Check(key)) {
        text = genauth_int_text(key);
        if (text == NULL)
            goto done;
        ks = PyUnicode_AsUTF8AndSize(text, &klen);
        if (ks == NULL)
            goto done;
    }
    else {
        PyObject *name = genauth_type_name(key);

        if (name != NULL) {
            genauth_conv_fail(cv, PyExc_TypeError,
                              "keys must be str, int, float, bool or None, "
                              "not %U",
                              name);
            Py_DECREF(name);
        }
        goto done;
    }

    item = genauth_conv_value(cv, value);
    if (item == NULL) {
        genauth_conv_add_key_segment(cv, key);
        goto done;
    }
    if (genauth_json_object_add(out, ks, (size_t)klen, item) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    item = NULL; /* the object owns it now */
    rc = 0;

done:
    cJSON_Delete(item);
    if (ftext != NULL)
        PyMem_Free(ftext);
    Py_XDECREF(text);
    return rc;
}

/* Makes room for `more` references on the converter's stack. 0, or -1
 * with MemoryError set. */
static int
genauth_conv_reserve(genauth_conv *cv, Py_ssize_t more)
{
    const Py_ssize_t max = PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(PyObject *);
    PyObject **grown;
    Py_ssize_t cap = cv->cap;

    if (more <= cv->cap - cv->nrefs)
        return 0;
    if (more > max - cv->nrefs) {
        PyErr_NoMemory();
        return -1;
    }
    while (cap < cv->nrefs + more)
        cap = cap <= max / 2 ? cap * 2 : cv->nrefs + more;
    if (cv->refs == cv->inline_refs) {
        grown = PyMem_Malloc((size_t)cap * sizeof(PyObject *));
        if (grown != NULL)
            memcpy(grown, cv->refs, (size_t)cv->nrefs * sizeof(PyObject *));
    }
    else {
        grown = PyMem_Realloc(cv->refs, (size_t)cap * sizeof(PyObject *));
    }
    if (grown == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    cv->refs = grown;
    cv->cap = cap;
    return 0;
}

/* Pushes a strong reference to `obj` (room already reserved). */
static void
genauth_conv_push(genauth_conv *cv, PyObject *obj)
{
    cv->refs[cv->nrefs++] = Py_NewRef(obj);
}

/* Drops the references pushed since `base`, last first. Releasing them may
 * free objects and run the caller's finalizers: only after use. */
static void
genauth_conv_pop(genauth_conv *cv, Py_ssize_t base)
{
    while (cv->nrefs > base) {
        PyObject *obj = cv->refs[--cv->nrefs];
        Py_DECREF(obj);
    }
}

/* Pushes the (key, value) pairs of `obj`, a dict or a Mapping, as they are
 * now. 0, or -1 with an error (a conversion error of ours or a Python
 * exception). */
static int
genauth_conv_snapshot_items(genauth_conv *cv, PyObject *obj)
{
    PyObject *items = NULL;
    PyObject *key, *value;
    Py_ssize_t pos = 0, i, n;
    int rc = -1;

    /* Only an exact dict is walked directly: a subclass (OrderedDict) may
     * order or filter its items differently from the underlying table, as
     * json.dumps honours. PyDict_Next runs no Python code, so the table
     * cannot change while it is copied. */
    if (PyDict_CheckExact(obj)) {
        if (genauth_conv_reserve(cv, 2 * PyDict_Size(obj)) < 0)
            goto done;
        while (PyDict_Next(obj, &pos, &key, &value)) {
            genauth_conv_push(cv, key);
            genauth_conv_push(cv, value);
        }
        rc = 0;
        goto done;
    }
    /* items() runs the caller's code and may hand back the object's own
     * list, which later caller code may empty: its pairs are copied out as
     * strong references before anything else runs. */
    items = PyMapping_Items(obj);
    if (items == NULL)
        goto done;
    n = PyList_Size(items);
    if (genauth_conv_reserve(cv, 2 * n) < 0)
        goto done;
    for (i = 0; i < n; i++) {
        PyObject *pair = PyList_GetItem(items, i);

        if (!PyTuple_Check(pair) || PyTuple_Size(pair) != 2) {
            genauth_conv_fail(cv, PyExc_TypeError,
                              "items() must give (key, value) pairs");
            goto done;
        }
        genauth_conv_push(cv, PyTuple_GetItem(pair, 0));
        genauth_conv_push(cv, PyTuple_GetItem(pair, 1));
    }
    rc = 0;

done:
    Py_XDECREF(items);
    return rc;
}

/* `obj` is a dict or a Mapping, already on the path. */
static cJSON *
genauth_conv_mapping(genauth_conv *cv, PyObject *obj)
{
    Py_ssize_t base = cv->nrefs, i;
    cJSON *out = NULL;

    if (genauth_conv_snapshot_items(cv, obj) < 0)
        goto fail;
    out = cJSON_CreateObject();
    if (out == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    /* Indexes, not pointers: converting a value may grow the stack. */
    for (i = base; i < cv->nrefs; i += 2) {
        if (genauth_conv_member(cv, out, cv->refs[i], cv->refs[i + 1]) < 0)
            goto fail;
    }
    genauth_conv_pop(cv, base);
    return out;

fail:
    cJSON_Delete(out);
    genauth_conv_pop(cv, base);
    return NULL;
}

/* `obj` is a list or a tuple, already on the path. */
static cJSON *
genauth_conv_sequence(genauth_conv *cv, PyObject *obj)
{
    Py_ssize_t base = cv->nrefs, i, n;
    cJSON *out = NULL;
    cJSON *child;
    int is_list = PyList_Check(obj);

    /* A list is copied as it is now (a tuple cannot change, and its parent
     * holds it): converting an item may run code that changes the list. */
    if (is_list) {
        n = PyList_Size(obj);
        if (genauth_conv_reserve(cv, n) < 0)
            goto fail;
        for (i = 0; i < n; i++)
            genauth_conv_push(cv, PyList_GetItem(obj, i));
    }
    else {
        n = PyTuple_Size(obj);
    }
    out = cJSON_CreateArray();
    if (out == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (i = 0; i < n; i++) {
        child = genauth_conv_value(cv, is_list ? cv->refs[base + i]
                                               : PyTuple_GetItem(obj, i));
        if (child == NULL) {
            genauth_conv_add_index_segment(cv, i);
            goto fail;
        }
        cJSON_AddItemToArray(out, child); /* O(1); cannot fail here */
    }
    genauth_conv_pop(cv, base);
    return out;

fail:
    cJSON_Delete(out);
    genauth_conv_pop(cv, base);
    return NULL;
}

static cJSON *
genauth_conv_container(genauth_conv *cv, PyObject *obj, int is_mapping)
{
    cJSON *node;

    if (genauth_conv_enter(cv, obj) < 0)
        return NULL;
    node = is_mapping ? genauth_conv_mapping(cv, obj)
                      : genauth_conv_sequence(cv, obj);
    cv->depth--;
    return node;
}

static cJSON *
genauth_conv_value(genauth_conv *cv, PyObject *obj)
{
    PyObject *name = NULL;
    cJSON *node = NULL;
    int is_mapping;

    /* Most frequent first; bool before int, as bool is an int. */
    if (PyUnicode_Check(obj))
        return genauth_conv_str(cv, obj);
    if (obj == Py_None || PyBool_Check(obj)) {
        node = obj == Py_None ? cJSON_CreateNull()
                              : cJSON_CreateBool(obj == Py_True);
        if (node == NULL)
            PyErr_NoMemory();
        return node;
    }
    if (PyLong_Check(obj))
        return genauth_conv_int(cv, obj);
    if (PyFloat_Check(obj))
        return genauth_conv_float(cv, obj);
    if (PyDict_Check(obj))
        return genauth_conv_container(cv, obj, 1);
    if (PyList_Check(obj) || PyTuple_Check(obj))
        return genauth_conv_container(cv, obj, 0);

    is_mapping = genauth_is_abc_mapping(obj);
    if (is_mapping < 0)
        return NULL;
    if (is_mapping)
        return genauth_conv_container(cv, obj, 1);
    name = genauth_type_name(obj);
    if (name != NULL) {
        genauth_conv_fail(cv, PyExc_TypeError,
                          "Object of type %U is not JSON serializable", name);
        Py_DECREF(name);
    }
    return NULL;
}

cJSON *
genauth_py_to_json_object_ex(PyObject *obj, const genauth_conv_options *opts)
{
    genauth_conv cv;
    PyObject *name = NULL;
    PyObject *argname = NULL;
    cJSON *out = NULL;
    int is_mapping;

    /* The path array is filled as the walk goes; nothing else needs it
     * zeroed. */
    cv.opts = opts;
    cv.depth = 0;
    cv.refs = cv.inline_refs;
    cv.nrefs = 0;
    cv.cap = GENAUTH_CONV_INLINE_REFS;
    cv.err_type = NULL;
    cv.err_msg = NULL;
    cv.err_segments = NULL;

    is_mapping = PyDict_Check(obj) ? 1 : genauth_is_abc_mapping(obj);
    if (is_mapping < 0)
        goto done;
    if (!is_mapping) {
        name = genauth_type_name(obj);
        argname = name ? genauth_argname(opts->batch_index, opts->argname)
                       : NULL;
        if (argname != NULL)
            PyErr_Format(PyExc_TypeError,
                         "%U: expected a mapping or None, got %U", argname,
                         name);
        goto done;
    }
    /* `obj` itself is the caller's argument, which the caller's frame
     * holds for the whole call. */
    out = genauth_conv_container(&cv, obj, 1);
    if (out == NULL && cv.err_type != NULL)
        genauth_conv_raise(&cv);

done:
    genauth_conv_clear(&cv);
    if (cv.refs != cv.inline_refs)
        PyMem_Free(cv.refs);
    Py_XDECREF(argname);
    Py_XDECREF(name);
    return out;
}

cJSON *
genauth_py_to_json_object(PyObject *obj, const char *argname)
{
    genauth_conv_options opts = {argname, -1, 0};

    return genauth_py_to_json_object_ex(obj, &opts);
}

/* ---- doc -> Python ------------------------------------------------------ */

/* int or float for a JSON number literal (NUL-terminated), as json.loads
 * decides: no '.', 'e' or 'E' means int. */
static PyObject *
genauth_number_to_py(const char *lit, size_t len)
{
    const char *p = lit;
    size_t i, digits;
    long long v = 0;
    int neg;
    double d;

    if (lit == NULL) {
        PyErr_SetString(PyExc_SystemError,
                        "JSON document and its tree disagree");
        return NULL;
    }
    for (i = 0; i < len; i++) {
        if (lit[i] == '.' || lit[i] == 'e' || lit[i] == 'E') {
            d = PyOS_string_to_double(lit, NULL, NULL);
            if (d == -1.0 && PyErr_Occurred())
                return NULL;
            return PyFloat_FromDouble(d); /* 1e400 -> inf, as json.loads */
        }
    }
    neg = *p == '-';
    p += neg;
    digits = len - (size_t)neg;
    /* 18 digits always fit in a long long: no overflow check needed. */
    if (digits > 18)
        return PyLong_FromString(lit, NULL, 10);
    for (i = 0; i < digits; i++)
        v = v * 10 + (p[i] - '0');
    return PyLong_FromLongLong(neg ? -v : v);
}

static PyObject *
genauth_doc_node_to_py(const cJSON *node, genauth_json_cursor *cur)
{
    const cJSON *child;
    PyObject *out = NULL;
    PyObject *key = NULL;
    PyObject *value = NULL;
    const char *s;
    size_t len;
    Py_ssize_t n, i;

    switch (node->type & 0xFF) {
    case cJSON_NULL:
        return Py_NewRef(Py_None);
    case cJSON_True:
        return Py_NewRef(Py_True);
    case cJSON_False:
        return Py_NewRef(Py_False);
    case cJSON_Number:
        genauth_json_cursor_number(cur, &s, &len);
        return genauth_number_to_py(s, len);
    case cJSON_String:
        genauth_json_cursor_string(cur, node->valuestring, &s, &len);
        return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogatepass");
    case cJSON_Array:
        n = 0;
        for (child = node->child; child != NULL; child = child->next)
            n++;
        out = PyList_New(n);
        if (out == NULL)
            goto fail;
        for (i = 0, child = node->child; child != NULL;
             i++, child = child->next) {
            value = genauth_doc_node_to_py(child, cur);
            if (value == NULL)
                goto fail; /* the list's unset slots are NULL: safe */
            /* Steals value, also when it fails. */
            if (PyList_SetItem(out, i, value) < 0) {
                value = NULL;
                goto fail;
            }
            value = NULL;
        }
        return out;
    case cJSON_Object:
        out = PyDict_New();
        if (out == NULL)
            goto fail;
        for (child = node->child; child != NULL; child = child->next) {
            genauth_json_cursor_string(cur, child->string, &s, &len);
            key = PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogatepass");
            if (key == NULL)
                goto fail;
            value = genauth_doc_node_to_py(child, cur);
            if (value == NULL)
                goto fail;
            /* In document order: a repeated key keeps its first place and
             * its last value, as json.loads gives. */
            if (PyDict_SetItem(out, key, value) < 0)
                goto fail;
            Py_CLEAR(key);
            Py_CLEAR(value);
        }
        return out;
    default:
        PyErr_SetString(PyExc_SystemError,
                        "unexpected node in a parsed JSON document");
        return NULL;
    }

fail:
    Py_XDECREF(value);
    Py_XDECREF(key);
    Py_XDECREF(out);
    return NULL;
}

PyObject *
genauth_json_doc_to_py(const genauth_json_doc *doc)
{
    genauth_json_cursor cur;
    const cJSON *root = genauth_json_doc_root(doc);

    if (root == NULL) {
        PyErr_SetString(PyExc_SystemError, "no JSON document");
        return NULL;
    }
    /* The recursion below is bounded by cJSON's nesting limit (1000). */
    genauth_json_cursor_init(&cur, doc);
    return genauth_doc_node_to_py(root, &cur);
}
