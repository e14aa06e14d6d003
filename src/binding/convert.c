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
    uintptr_t stack_floor; /* stack.h: no level below it */
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
    /* Text mode: the JSON is appended here in the exact form, no tree. */
    genauth_buf *text;
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

/* (convert.h) */
PyObject *
genauth_plain_repr(PyObject *obj)
{
    if (PyUnicode_Check(obj))
        return genauth_base_repr(&PyUnicode_Type, obj);
    if (obj == Py_True || obj == Py_False || obj == Py_None)
        return PyObject_Repr(obj); /* the singletons' own C repr */
    if (PyFloat_Check(obj))
        return genauth_base_repr(&PyFloat_Type, obj);
    if (PyLong_Check(obj)) {
        PyObject *r = genauth_base_repr(&PyLong_Type, obj);
        /* Past sys.get_int_max_str_digits(), int's repr refuses it: the
         * message says so rather than failing with a ValueError of its
         * own, which names no argument. */
        if (!r && PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            r = PyUnicode_FromString("<int of more digits than "
                                     "sys.get_int_max_str_digits()>");
        }
        return r;
    }
    if (PyBytes_Check(obj))
        return genauth_base_repr(&PyBytes_Type, obj);
    return PyUnicode_FromFormat("<%s object>", GENAUTH_TYPE_NAME(obj));
}

static void
genauth_conv_add_key_segment(genauth_conv *cv, PyObject *key)
{
    PyObject *r;

    if (!genauth_conv_wants_path(cv))
        return;
    r = genauth_plain_repr(key);
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
        PyObject *r = genauth_plain_repr(s);
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
 * same. New reference, or NULL with an exception set; a key or value over
 * sys.get_int_max_str_digits() fails as json.dumps does, with its path. */
static PyObject *
genauth_int_text(genauth_conv *cv, PyObject *obj)
{
    PyObject *text = genauth_base_repr(&PyLong_Type, obj);
    if (text == NULL && PyErr_ExceptionMatches(PyExc_ValueError)) {
        PyErr_Clear();
        genauth_conv_fail(cv, PyExc_ValueError,
                          "int too large to convert to decimal text "
                          "(over sys.get_int_max_str_digits() digits)");
    }
    return text;
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

static int genauth_conv_value(genauth_conv *cv, PyObject *obj,
                              cJSON **node);

/* A value's JSON, where the converter sends its output: appended to
 * cv->text (text mode), or a new node in *node (tree mode). Each returns 0,
 * or -1 with MemoryError set. */
static int
genauth_conv_emit_raw(genauth_conv *cv, const char *lit, size_t len,
                      cJSON **node)
{
    if (cv->text) {
        if (genauth_buf_append(cv->text, lit, len) == 0)
            return 0;
    } else if ((*node = genauth_json_number_new(lit, len)) != NULL) {
        return 0;
    }
    PyErr_NoMemory();
    return -1;
}

static int
genauth_conv_emit_string(genauth_conv *cv, const char *s, size_t len,
                         cJSON **node)
{
    if (cv->text) {
        if (genauth_json_write_string(s, len, cv->text) == 0)
            return 0;
    } else if ((*node = genauth_json_string_new(s, len)) != NULL) {
        return 0;
    }
    PyErr_NoMemory();
    return -1;
}

static int
genauth_conv_int(genauth_conv *cv, PyObject *obj, cJSON **node)
{
    PyObject *text = NULL;
    const char *s;
    Py_ssize_t n;
    char buf[24];
    int overflow = 0, rc = -1;
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
        rc = genauth_conv_emit_raw(cv, buf, (size_t)n, node);
        goto done;
    }
    text = genauth_int_text(cv, obj);
    if (text == NULL)
        goto done;
    s = PyUnicode_AsUTF8AndSize(text, &n);
    if (s == NULL)
        goto done;
    rc = genauth_conv_emit_raw(cv, s, (size_t)n, node);

done:
    Py_XDECREF(text);
    return rc;
}

static int
genauth_conv_float(genauth_conv *cv, PyObject *obj, cJSON **node)
{
    double d = PyFloat_AsDouble(obj);
    char *text = NULL;
    int rc = -1;

    if (!isfinite(d)) {
        genauth_conv_fail(cv, PyExc_ValueError,
                          "float('%s') is not allowed in JSON",
                          genauth_nonfinite_name(d));
        goto done;
    }
    text = genauth_float_text(d);
    if (text == NULL)
        goto done;
    rc = genauth_conv_emit_raw(cv, text, strlen(text), node);

done:
    if (text != NULL)
        PyMem_Free(text);
    return rc;
}

static int
genauth_conv_str(genauth_conv *cv, PyObject *obj, cJSON **node)
{
    const char *s;
    Py_ssize_t n;

    /* UTF-8 cached in the str: no copy here. */
    s = PyUnicode_AsUTF8AndSize(obj, &n);
    if (s == NULL) {
        genauth_conv_utf8_error(cv, obj, 0);
        return -1;
    }
    return genauth_conv_emit_string(cv, s, (size_t)n, node);
}

/* Whether a container may go one level deeper, within the depth limit and
 * the stack of the thread converting; then records it on the path. A cycle
 * is only looked for once a limit is hit, so ordinary payloads pay nothing
 * for it: a cycle reaches any limit, and then the container at hand is
 * already on the path. */
static int
genauth_conv_enter(genauth_conv *cv, PyObject *container)
{
    int i;

    if (cv->depth < GENAUTH_MAX_DEPTH &&
        !genauth_stack_short(cv->stack_floor)) {
        cv->path[cv->depth++] = container;
        return 0;
    }
    for (i = 0; i < cv->depth; i++) {
        if (cv->path[i] == container)
            return genauth_conv_fail(cv, PyExc_ValueError,
                                     "circular reference");
    }
    if (cv->depth < GENAUTH_MAX_DEPTH)
        return genauth_conv_fail(cv, PyExc_ValueError,
                                 "nested deeper than the %d levels this "
                                 "thread's stack allows",
                                 cv->depth);
    return genauth_conv_fail(cv, PyExc_ValueError,
                             "nested deeper than %d levels",
                             GENAUTH_MAX_DEPTH);
}

/* Adds key: value to `out` (tree mode) or to cv->text after a ',' unless
 * `first`, keys converted as json.dumps does. */
static int
genauth_conv_member(genauth_conv *cv, cJSON *out, PyObject *key,
                    PyObject *value, int first)
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
        text = genauth_int_text(cv, key);
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

    if (cv->text &&
        ((!first && genauth_buf_put_char(cv->text, ',') < 0) ||
         genauth_json_write_string(ks, (size_t)klen, cv->text) < 0 ||
         genauth_buf_put_char(cv->text, ':') < 0)) {
        PyErr_NoMemory();
        goto done;
    }
    if (genauth_conv_value(cv, value, &item) < 0) {
        genauth_conv_add_key_segment(cv, key);
        goto done;
    }
    if (!cv->text) {
        if (genauth_json_object_add(out, ks, (size_t)klen, item) < 0) {
            PyErr_NoMemory();
            goto done;
        }
        item = NULL; /* the object owns it now */
    }
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

/* Opens a container: '{' or '[' in text mode, a new object or array in
 * tree mode. 0, or -1 with MemoryError set. */
static int
genauth_conv_open(genauth_conv *cv, int is_mapping, cJSON **out)
{
    if (cv->text) {
        if (genauth_buf_put_char(cv->text, is_mapping ? '{' : '[') == 0)
            return 0;
    } else if ((*out = is_mapping ? cJSON_CreateObject()
                                  : cJSON_CreateArray()) != NULL) {
        return 0;
    }
    PyErr_NoMemory();
    return -1;
}

/* `obj` is a dict or a Mapping, already on the path. */
static int
genauth_conv_mapping(genauth_conv *cv, PyObject *obj, cJSON **node)
{
    Py_ssize_t base = cv->nrefs, i;
    cJSON *out = NULL;

    if (genauth_conv_snapshot_items(cv, obj) < 0 ||
        genauth_conv_open(cv, 1, &out) < 0)
        goto fail;
    /* Indexes, not pointers: converting a value may grow the stack. */
    for (i = base; i < cv->nrefs; i += 2) {
        if (genauth_conv_member(cv, out, cv->refs[i], cv->refs[i + 1],
                                i == base) < 0)
            goto fail;
    }
    if (cv->text && genauth_buf_put_char(cv->text, '}') < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    genauth_conv_pop(cv, base);
    *node = out;
    return 0;

fail:
    cJSON_Delete(out);
    genauth_conv_pop(cv, base);
    return -1;
}

/* `obj` is a list or a tuple, already on the path. */
static int
genauth_conv_sequence(genauth_conv *cv, PyObject *obj, cJSON **node)
{
    Py_ssize_t base = cv->nrefs, i, n;
    cJSON *out = NULL;
    cJSON *child = NULL;
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
    if (genauth_conv_open(cv, 0, &out) < 0)
        goto fail;
    for (i = 0; i < n; i++) {
        if (cv->text && i > 0 && genauth_buf_put_char(cv->text, ',') < 0) {
            PyErr_NoMemory();
            goto fail;
        }
        if (genauth_conv_value(cv, is_list ? cv->refs[base + i]
                                           : PyTuple_GetItem(obj, i),
                               &child) < 0) {
            genauth_conv_add_index_segment(cv, i);
            goto fail;
        }
        if (!cv->text)
            cJSON_AddItemToArray(out, child); /* O(1); cannot fail here */
    }
    if (cv->text && genauth_buf_put_char(cv->text, ']') < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    genauth_conv_pop(cv, base);
    *node = out;
    return 0;

fail:
    cJSON_Delete(out);
    genauth_conv_pop(cv, base);
    return -1;
}

static int
genauth_conv_container(genauth_conv *cv, PyObject *obj, int is_mapping,
                       cJSON **node)
{
    int rc;

    if (genauth_conv_enter(cv, obj) < 0)
        return -1;
    rc = is_mapping ? genauth_conv_mapping(cv, obj, node)
                    : genauth_conv_sequence(cv, obj, node);
    cv->depth--;
    return rc;
}

/* Converts `obj`: appended to cv->text in text mode, else a new node in
 * *node. 0, or -1 with an error (a conversion error of ours or a Python
 * exception). */
static int
genauth_conv_value(genauth_conv *cv, PyObject *obj, cJSON **node)
{
    PyObject *name = NULL;
    int is_mapping;

    /* Most frequent first; bool before int, as bool is an int. */
    if (PyUnicode_Check(obj))
        return genauth_conv_str(cv, obj, node);
    if (obj == Py_None || PyBool_Check(obj)) {
        if (cv->text) {
            const char *lit = obj == Py_None   ? "null"
                              : obj == Py_True ? "true"
                                               : "false";
            return genauth_conv_emit_raw(cv, lit, strlen(lit), node);
        }
        *node = obj == Py_None ? cJSON_CreateNull()
                               : cJSON_CreateBool(obj == Py_True);
        if (*node == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    if (PyLong_Check(obj))
        return genauth_conv_int(cv, obj, node);
    if (PyFloat_Check(obj))
        return genauth_conv_float(cv, obj, node);
    if (PyDict_Check(obj))
        return genauth_conv_container(cv, obj, 1, node);
    if (PyList_Check(obj) || PyTuple_Check(obj))
        return genauth_conv_container(cv, obj, 0, node);

    is_mapping = genauth_is_abc_mapping(obj);
    if (is_mapping < 0)
        return -1;
    if (is_mapping)
        return genauth_conv_container(cv, obj, 1, node);
    name = genauth_type_name(obj);
    if (name != NULL) {
        genauth_conv_fail(cv, PyExc_TypeError,
                          "Object of type %U is not JSON serializable", name);
        Py_DECREF(name);
    }
    return -1;
}

cJSON *
genauth_py_to_json_object_ex(PyObject *obj, const genauth_conv_options *opts)
{
    genauth_conv cv;
    genauth_buf text;
    PyObject *name = NULL;
    PyObject *argname = NULL;
    cJSON *out = NULL;
    int is_mapping;

    /* The path array is filled as the walk goes; nothing else needs it
     * zeroed. */
    genauth_buf_init(&text);
    cv.opts = opts;
    cv.text = !opts->as_text ? NULL : opts->scratch ? opts->scratch : &text;
    if (cv.text)
        genauth_buf_reset(cv.text);
    cv.depth = 0;
    /* A tree is written again by the core's writer, deeper in the call and
     * in frames about three times the conversion's (some 400 bytes a level
     * against 130): its conversion keeps to a quarter of the stack left, so
     * that a payload too deep for this thread is refused here, naming its
     * path, rather than by the writer. */
    cv.stack_floor = cv.text ? opts->stack_floor
                             : genauth_stack_floor_part(opts->stack_floor, 4);
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
    if (genauth_conv_container(&cv, obj, 1, &out) < 0) {
        out = NULL;
        if (cv.err_type != NULL)
            genauth_conv_raise(&cv);
    } else if (cv.text) {
        out = genauth_json_raw_new(cv.text->data, cv.text->len);
        if (out == NULL)
            PyErr_NoMemory();
    }

done:
    genauth_buf_clear(&text);
    genauth_conv_clear(&cv);
    if (cv.refs != cv.inline_refs)
        PyMem_Free(cv.refs);
    Py_XDECREF(argname);
    Py_XDECREF(name);
    return out;
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

void
genauth_key_cache_clear(genauth_key_cache *kc)
{
    size_t i;

    for (i = 0; i < GENAUTH_KEY_CACHE_SLOTS; i++) {
        Py_CLEAR(kc->slot[i].str);
        kc->slot[i].len = 0;
    }
}

/* The str for object key `s` (UTF-8, `len` bytes): from the cache when it
 * is there, else decoded (and cached when short and ASCII, where the bytes
 * are the str's exact text). The slot is chosen from a few bytes and the
 * length, so a hit costs one memcmp; a cached entry is always ASCII, so a
 * match proves `s` is. New reference, or NULL with an exception set. */
static PyObject *
genauth_key_to_py(genauth_key_cache *kc, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    genauth_key_cache_slot *slot;
    PyObject *key;
    uint32_t h;
    size_t i;

    if (kc == NULL || len == 0 || len > GENAUTH_KEY_CACHE_MAX_LEN)
        return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogatepass");
    h = ((u[0] * 31u + u[len / 2]) * 31u + u[len - 1]) * 31u + (uint32_t)len;
    h *= 2654435761u; /* Knuth's multiplicative mix; the top bits index */
    slot = &kc->slot[(h >> 20) & (GENAUTH_KEY_CACHE_SLOTS - 1)];
    if (slot->str != NULL && slot->len == len &&
        memcmp(slot->bytes, s, len) == 0)
        return Py_NewRef(slot->str);
    key = PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogatepass");
    if (key == NULL)
        return NULL;
    for (i = 0; i < len && u[i] < 0x80; i++)
        ;
    if (i == len) {
        PyObject *old = slot->str; /* a str: its release runs no code */
        slot->str = Py_NewRef(key);
        slot->len = len;
        memcpy(slot->bytes, s, len);
        Py_XDECREF(old);
    }
    return key;
}

/* One conversion of a doc: where it is in the doc, and how far down the
 * stack it may go. */
typedef struct {
    genauth_json_cursor cur;
    genauth_key_cache *keys;
    uintptr_t stack_floor; /* stack.h: no level below it */
} genauth_doc_walk;

static PyObject *
genauth_doc_node_to_py(const cJSON *node, genauth_doc_walk *w)
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
        genauth_json_cursor_number(&w->cur, &s, &len);
        return genauth_number_to_py(s, len);
    case cJSON_String:
        genauth_json_cursor_string(&w->cur, node->valuestring, &s, &len);
        return PyUnicode_DecodeUTF8(s, (Py_ssize_t)len, "surrogatepass");
    case cJSON_Array:
        if (genauth_stack_short(w->stack_floor))
            goto too_deep;
        n = 0;
        for (child = node->child; child != NULL; child = child->next)
            n++;
        out = PyList_New(n);
        if (out == NULL)
            goto fail;
        /* Kept from the collector while slots are NULL: making a child may
         * run a collection, whose callbacks and finalizers (the caller's
         * code) would see the list half made in gc.get_objects(). */
        PyObject_GC_UnTrack(out);
        for (i = 0, child = node->child; child != NULL;
             i++, child = child->next) {
            value = genauth_doc_node_to_py(child, w);
            if (value == NULL)
                goto fail; /* the list's unset slots are NULL: safe */
            /* Steals value, also when it fails. */
            if (PyList_SetItem(out, i, value) < 0) {
                value = NULL;
                goto fail;
            }
            value = NULL;
        }
        PyObject_GC_Track(out);
        return out;
    case cJSON_Object:
        if (genauth_stack_short(w->stack_floor))
            goto too_deep;
        out = PyDict_New();
        if (out == NULL)
            goto fail;
        for (child = node->child; child != NULL; child = child->next) {
            genauth_json_cursor_string(&w->cur, child->string, &s, &len);
            key = genauth_key_to_py(w->keys, s, len);
            if (key == NULL)
                goto fail;
            value = genauth_doc_node_to_py(child, w);
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

too_deep:
    PyErr_SetString(PyExc_RecursionError,
                    "JSON nested deeper than this thread's stack allows");
fail:
    Py_XDECREF(value);
    Py_XDECREF(key);
    Py_XDECREF(out);
    return NULL;
}

PyObject *
genauth_json_doc_to_py(const genauth_json_doc *doc, genauth_key_cache *keys)
{
    genauth_doc_walk w;
    const cJSON *root = genauth_json_doc_root(doc);

    if (root == NULL) {
        PyErr_SetString(PyExc_SystemError, "no JSON document");
        return NULL;
    }
    /* The recursion below is bounded by cJSON's nesting limit (1000) and by
     * the stack of the thread converting. */
    genauth_json_cursor_init(&w.cur, doc);
    w.keys = keys;
    w.stack_floor = genauth_stack_floor();
    return genauth_doc_node_to_py(root, &w);
}
