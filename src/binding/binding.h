/* What the binding's files share: the module state and the helpers that
 * turn core errors into Python exceptions. The only C in genauth-c, with
 * convert.c, that includes Python.h. */
#ifndef GENAUTH_BINDING_H
#define GENAUTH_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "genauth.h"

typedef struct {
    PyTypeObject *client_type;
    PyObject *GenAuthError;
    PyObject *TransportError;
    PyObject *TimeoutError;
    PyObject *DecodeError;
    PyObject *AuthError;
    PyObject *APIError;
    PyObject *ClientClosedError;
    PyObject *str_statusCode; /* interned keys read from envelopes */
    PyObject *str_apiCode;
    PyObject *str_message;
    PyObject *str_requestId;
} genauth_module_state;

extern PyModuleDef genauth_module_def;

/* The state of the module that defined `type` (borrowed). */
genauth_module_state *genauth_state_from_type(PyTypeObject *type);

/* errors.c */
int genauth_errors_init(PyObject *module, genauth_module_state *st);
int genauth_errors_traverse(genauth_module_state *st, visitproc visit,
                            void *arg);
void genauth_errors_clear(genauth_module_state *st);
/* Raises the exception for a failed core call and returns NULL. */
PyObject *genauth_raise(genauth_module_state *st, const genauth_error *err);
/* The exception object for a failed core call (new reference), or NULL
 * with an exception set. */
PyObject *genauth_exception_new(genauth_module_state *st,
                                const genauth_error *err);
/* An APIError for an envelope whose statusCode is not 200; steals
 * `envelope`. New reference, or NULL with an exception set. */
PyObject *genauth_api_error_new(genauth_module_state *st, PyObject *envelope,
                                long http_status);
/* Raises APIError for an envelope whose statusCode is not 200; steals
 * `envelope`. Returns NULL. */
PyObject *genauth_raise_api_error(genauth_module_state *st,
                                  PyObject *envelope, long http_status);

/* client_type.c */
int genauth_client_type_add(PyObject *module, genauth_module_state *st);
/* The core client of a ManagementClient (borrowed; NULL before __init__),
 * and its raise_for_status option when `raise_for_status` is not NULL. */
genauth_client *genauth_client_of(PyObject *self, int *raise_for_status);

/* methods.c: ManagementClient's methods (the API methods, batches, close
 * and the context manager). */
extern PyMethodDef genauth_client_methods[];

#endif
