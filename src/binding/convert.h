/* Conversions between Python objects and the core's exact JSON, with the
 * rules of json.dumps / json.loads (compact, ensure_ascii=False on the wire,
 * allow_nan=False). */
#ifndef GENAUTH_CONVERT_H
#define GENAUTH_CONVERT_H

#ifndef PY_SSIZE_T_CLEAN
#define PY_SSIZE_T_CLEAN
#endif
#include <Python.h>

#include "json.h"

/* Documented nesting limit for request payloads: at most this many nested
 * containers, the top mapping included. */
#define GENAUTH_MAX_DEPTH 500

/* A new cJSON object tree for `obj`, which must be a Mapping (dict fast path;
 * other collections.abc.Mapping via PyMapping_Items); the caller frees it
 * with cJSON_Delete. Numbers become raw literals and strings holding U+0000
 * stay exact (see json.h), so genauth_json_write prints what json.dumps
 * would. On failure returns NULL with TypeError or ValueError set whose
 * message names `argname` and the path to the bad value, e.g.
 * "request_body['data']['items'][3]: float('nan') is not allowed in JSON",
 * "request_headers: expected a mapping or None, got list" (the caller deals
 * with None itself). Errors raised by the objects themselves (a Mapping whose
 * items() raises, MemoryError) propagate unchanged. */
cJSON *genauth_py_to_json_object(PyObject *obj, const char *argname);

/* The Python value for a whole parsed doc (dict/list/str/int/float/bool/
 * None), as json.loads gives it: numbers and strings exact through the
 * cursor, duplicate keys last-wins. A new reference, or NULL with an
 * exception set (UnicodeDecodeError for invalid UTF-8; the caller maps it). */
PyObject *genauth_json_doc_to_py(const genauth_json_doc *doc);

#endif
