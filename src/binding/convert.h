/* Conversions between Python objects and the core's exact JSON, with the
 * rules of json.dumps / json.loads (compact, ensure_ascii=False on the wire,
 * allow_nan=False). */
#ifndef GENAUTH_CONVERT_H
#define GENAUTH_CONVERT_H

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include "compat.h"

#include "json.h"
#include "stack.h"

/* Documented nesting limit for request payloads: at most this many nested
 * containers, the top mapping included. */
#define GENAUTH_MAX_DEPTH 500

/* The largest integer JavaScript's numbers hold exactly, 2**53-1. */
#define GENAUTH_JS_MAX_SAFE_INTEGER 9007199254740991LL

typedef struct {
    const char *argname;    /* e.g. "request_body" */
    Py_ssize_t batch_index; /* >= 0: errors name calls[batch_index]['argname'] */
    /* Signature mode: refuse integers beyond +/-(2**53-1), which the signed
     * form (JSON.stringify's) cannot carry exactly, naming their path:
     * "request_body['items'][1]: integers beyond ...(2**53-1) cannot be
     * signed". */
    int js_safe_integers;
    /* Text mode: the result is one cJSON_Raw node holding the mapping's
     * JSON, written as the exact writer would write its tree (json.h), with
     * no tree built: for a payload that is only sent as it is. */
    int as_text;
    /* Text mode: a buffer to write in (reset first, left allocated for the
     * next conversion), or NULL for one of the conversion's own. */
    genauth_buf *scratch;
    /* genauth_stack_floor(), taken once for all the conversions of a call
     * (0: the fixed depth limit alone): no level of the conversion goes
     * below it (text mode) or below its part of the stack left (tree mode,
     * which leaves the rest to the writer). A container nested deeper than
     * that allows is refused as one nested deeper than GENAUTH_MAX_DEPTH
     * is, naming its path: "...: nested deeper than the 212 levels this
     * thread's stack allows". */
    uintptr_t stack_floor;
} genauth_conv_options;

/* A new cJSON object tree for `obj`, which must be a Mapping (dict fast path;
 * other collections.abc.Mapping via PyMapping_Items), converted with the
 * options above (in text mode, one cJSON_Raw node); the caller frees it
 * with cJSON_Delete. Numbers become raw literals and strings holding U+0000
 * stay exact (see json.h), so genauth_json_write prints what json.dumps
 * would. On failure returns NULL with TypeError or ValueError set whose
 * message names `argname` and the path to the bad value, e.g.
 * "request_body['data']['items'][3]: float('nan') is not allowed in JSON",
 * "request_headers: expected a mapping or None, got list" (the caller deals
 * with None itself). The conversion owns every object it uses once the
 * caller's code may have run (each container is converted from a snapshot
 * of strong references, taken when conversion reaches it), and never runs
 * Python code while an exception is set: an exception raised by the
 * caller's objects (a Mapping whose items() raises, MemoryError) comes out
 * unchanged. */
cJSON *genauth_py_to_json_object_ex(PyObject *obj,
                                    const genauth_conv_options *opts);

/* repr() of `obj` as its base type prints it, for error messages: never the
 * caller's __repr__ (a str subclass, an IntEnum), so building a message
 * runs no caller code and cannot fail with the caller's exception. str,
 * bytes, int, float, bool and None as repr() gives them (an int past
 * sys.get_int_max_str_digits() as a placeholder); anything else as
 * "<TypeName object>". New reference, or NULL with an exception set. */
PyObject *genauth_plain_repr(PyObject *obj);

/* How errors name an argument: "name", or "calls[index]['name']" when
 * index >= 0 (a call of a batch). New reference, or NULL with an exception
 * set. */
PyObject *genauth_argname(Py_ssize_t index, const char *name);

/* Short ASCII object keys seen in answers, kept as str objects: the same
 * few keys (statusCode, message, requestId, data, ...) come in every answer,
 * and a cached str is neither decoded again nor hashed again (a str caches
 * its hash) when the result dict takes it. Direct-mapped, so an answer with
 * many distinct keys only replaces entries: its size stays fixed. Lives in
 * the module state (one per interpreter); used with the GIL held. */
#define GENAUTH_KEY_CACHE_SLOTS 64   /* a power of two */
#define GENAUTH_KEY_CACHE_MAX_LEN 24 /* longer keys are not cached */
typedef struct {
    PyObject *str; /* owned, or NULL */
    size_t len;
    char bytes[GENAUTH_KEY_CACHE_MAX_LEN];
} genauth_key_cache_slot;
typedef struct {
    genauth_key_cache_slot slot[GENAUTH_KEY_CACHE_SLOTS];
} genauth_key_cache;

/* Drops every cached str (module clear). */
void genauth_key_cache_clear(genauth_key_cache *kc);

/* The Python value for a whole parsed doc (dict/list/str/int/float/bool/
 * None), as json.loads gives it: numbers and strings exact through the
 * cursor, duplicate keys last-wins. Object keys come from `keys` when it
 * holds them (NULL: no cache). A new reference, or NULL with an exception
 * set (the caller maps them: UnicodeDecodeError for invalid UTF-8,
 * RecursionError for containers nested deeper than the stack of the thread
 * converting allows, stack.h). */
PyObject *genauth_json_doc_to_py(const genauth_json_doc *doc,
                                 genauth_key_cache *keys);

#endif
