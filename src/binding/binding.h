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
    PyTypeObject *async_engine_type; /* async_client.c */
    PyTypeObject *async_call_type;
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
/* What async_client.c shares with ManagementClient (client_type.c): */
/* The live core client of a ManagementClient `obj` (borrowed: `obj` owns
 * it), and its raise_for_status; NULL with an exception set. */
genauth_client *genauth_client_from_object(genauth_module_state *st,
                                           PyObject *obj,
                                           int *raise_for_status);
/* trigger_webhook's (webhook_id, request_headers, request_body) as `req`,
 * whose trees the caller frees with cJSON_Delete; webhook_id's bytes are
 * borrowed from values[0]. `index`: the call's place in a batch, or -1. */
int genauth_trigger_webhook_args(PyObject *const values[3], Py_ssize_t index,
                                 genauth_trigger_webhook_req *req);
/* One call's outcome: the envelope dict, or an exception object (APIError
 * with raise_for_status, DecodeError). New reference, or NULL with an
 * exception set. */
PyObject *genauth_envelope_outcome(genauth_module_state *st,
                                   int raise_for_status,
                                   const genauth_envelope *env);
/* trigger_webhooks' `concurrency` (an int in 1..1024), its `calls` as a
 * tuple of our own (new reference), and calls[i]'s three values (borrowed
 * from the dict); -1 / NULL with TypeError/ValueError set. */
int genauth_concurrency_arg(PyObject *value, long long *out);
PyObject *genauth_batch_calls(PyObject *calls);
int genauth_batch_call_values(PyObject *call, Py_ssize_t i,
                              PyObject *values[3]);

/* async_client.c */
int genauth_async_types_add(PyObject *module, genauth_module_state *st);

#endif
