/* What the binding's files share: the module state, and what each file
 * offers the others, under its name (errors.c turns core errors into
 * Python exceptions). Every file of src/binding includes Python.h through
 * it; no other C in genauth-c includes it. */
#ifndef GENAUTH_BINDING_H
#define GENAUTH_BINDING_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "compat.h"
#include "convert.h"

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
    genauth_key_cache result_keys; /* keys of answers' dicts (convert.h) */
    /* The thread Python runs signal handlers in (threading.main_thread()),
     * and the process that was true in (genauth_fork_generation(); refreshed
     * after fork). */
    unsigned long main_thread_ident;
    unsigned long main_thread_fork;
    PyObject *logger;          /* logging.getLogger("genauth_c") */
    PyObject *log_enabled_for; /* its bound isEnabledFor */
    PyObject *log_debug_level; /* logging.DEBUG */
    PyObject *str_logging;     /* "logging", to look for it in sys.modules */
} genauth_module_state;

extern PyModuleDef genauth_module_def;

/* The module that defined `type` (borrowed), or NULL with TypeError. */
PyObject *genauth_module_of(PyTypeObject *type);
/* The state of the module that defined `type` (borrowed). */
genauth_module_state *genauth_state_from_type(PyTypeObject *type);

/* errors.c */
int genauth_errors_init(PyObject *module, genauth_module_state *st);
int genauth_errors_traverse(genauth_module_state *st, visitproc visit,
                            void *arg);
void genauth_errors_clear(genauth_module_state *st);
/* Raises the exception for a failed core call and returns NULL. */
PyObject *genauth_raise(genauth_module_state *st, const genauth_error *err);
/* The current exception as an object, its traceback attached (new
 * reference), cleared; NULL when none is set. */
PyObject *genauth_take_exception(void);
/* The exception object for a failed core call (new reference), or NULL
 * with an exception set. */
PyObject *genauth_exception_new(genauth_module_state *st,
                                const genauth_error *err);
/* An APIError for an envelope whose statusCode is not 200; steals
 * `envelope`. New reference, or NULL with an exception set. */
PyObject *genauth_api_error_new(genauth_module_state *st, PyObject *envelope,
                                long http_status);
/* An APIError for an envelope that quoted a credential
 * (env->quotes_credential): its statusCode and apiCode, nothing else of it.
 * New reference, or NULL with an exception set. */
PyObject *genauth_api_error_hidden(genauth_module_state *st,
                                   const genauth_envelope *env);

/* signals.c: a core call waiting with the GIL released. Use
 * GENAUTH_BEGIN_WAIT(st) ... GENAUTH_END_WAIT instead of
 * Py_BEGIN_ALLOW_THREADS ... Py_END_ALLOW_THREADS around a core call that
 * may wait on the network: Ctrl-C then interrupts it on the main thread,
 * and other threads wait without ever taking the GIL. */
typedef struct genauth_wait {
    PyThreadState *tstate;      /* saved when the GIL was released */
    struct genauth_wait *outer; /* the wait a signal handler's call is in */
    struct genauth_wait *outer_any; /* this thread's enclosing wait, if any */
} genauth_wait;

/* Records the main thread in `st` (at module exec). -1 with an exception. */
int genauth_main_thread_init(genauth_module_state *st);
void genauth_wait_begin(genauth_module_state *st, genauth_wait *w);
void genauth_wait_end(genauth_wait *w);
/* The core's interrupt callback (genauth_client_set_interrupt, userdata
 * unused): runs pending signal handlers when the waiting call may. */
int genauth_check_signals(void *userdata);
/* For a core callback that must run Python code (the token-fetch event):
 * takes the GIL back through the thread state this thread's wait saved, if
 * the thread is inside one (returns 1), or returns 0 when the thread holds
 * the GIL already (the event-loop engine calls back with it held). Pair it
 * with genauth_wait_leave_python. Never PyGILState_Ensure, which is not for
 * subinterpreters. */
int genauth_wait_enter_python(void);
void genauth_wait_leave_python(int entered);
/* Whether this thread's wait runs signal handlers (the main thread's), and
 * so takes the GIL back every GENAUTH_INTERRUPT_POLL_MS anyway: only there
 * does a core callback that takes it mid-wait add no new way for another
 * thread holding the GIL to hold the wait up. */
int genauth_wait_runs_signal_handlers(void);

/* Python code the binding runs where no exception may come out (a log
 * handler on a token fetch's line, a loop's or a future's method the
 * event-loop engine calls from inside the core): with an exception set that
 * is not an Exception (KeyboardInterrupt, SystemExit), holds it for this
 * thread (drops it when one is held already), clears it and returns 1;
 * else returns 0, leaving any exception set (the code's failure, to
 * report). */
int genauth_hold_interrupt(void);
/* Whether this thread holds one. */
int genauth_interrupt_held(void);
/* For every entry point that ran such code (the event-loop engine's:
 * callbacks of the loop, a call's start or cancel, close), as it returns to
 * Python: -1 with the held exception raised (an exception already set
 * becomes its __context__), else 0. So a held interrupt never outlives the
 * entry point that ran the core on its thread. */
int genauth_raise_held(void);

#define GENAUTH_BEGIN_WAIT(st)                                               \
    {                                                                        \
        genauth_wait genauth_wait_;                                          \
        genauth_wait_begin((st), &genauth_wait_);
#define GENAUTH_END_WAIT                                                     \
        genauth_wait_end(&genauth_wait_);                                    \
    }
/* log.c: the genauth_c logger. A failing handler is reported as
 * unraisable, like the logging module's own failures, never raised. */
int genauth_log_init(genauth_module_state *st);
int genauth_log_traverse(genauth_module_state *st, visitproc visit, void *arg);
void genauth_log_clear(genauth_module_state *st);
/* One DEBUG line for a finished request (when DEBUG is enabled; otherwise
 * it costs one isEnabledFor call): method, path, HTTP status, statusCode,
 * apiCode, requestId, duration and retries from `env` (status GENAUTH_OK)
 * or `err`. Call it with the GIL held; an exception already set (an
 * interrupted call's) is kept aside while it runs and left as it was.
 * 0, or -1 when Ctrl-C landed in the logging's Python code (or a handler
 * let another exception out that is not an Exception, such as SystemExit):
 * that exception is set, to be raised instead of the call's outcome, as it
 * comes out of a logging call in Python. */
int genauth_log_request(genauth_module_state *st, const char *method,
                        const char *path, genauth_status status,
                        const genauth_envelope *env,
                        const genauth_error *err);
/* The core's event hook (genauth_client_set_event_hook, userdata: the
 * module state): takes the GIL itself. An interrupt a handler raises on
 * the line is delivered again inside a blocking call, and held
 * (genauth_hold_interrupt) in the event-loop engine's. */
void genauth_log_event(const genauth_event *event, void *userdata);
/* The WARNING for a client made with use_unverified_ssl=True. 0, or -1
 * with the exception set when Ctrl-C landed in the logging's Python code
 * (or a handler let out another that is not an Exception), as for
 * genauth_log_request. */
int genauth_log_unverified(genauth_module_state *st, PyObject *host);

/* credentials.c: fills whichever of *access_key_id, *access_key_secret,
 * *host is NULL or None (borrowed) from os.environ: GENAUTH_ACCESS_KEY_ID,
 * GENAUTH_ACCESS_KEY_SECRET, GENAUTH_HOST (AUTHING_* for brand "authing").
 * On success all three are new references the caller releases (*host may be
 * None); on failure they are untouched and -1 is returned with TypeError
 * (naming the variables, `who` being the class) or another exception. */
int genauth_credentials_from_env(const char *who, const char *brand,
                                 PyObject **access_key_id,
                                 PyObject **access_key_secret,
                                 PyObject **host, unsigned *from_env);
/* *from_env (above) has bit 0, 1, 2 set for the key id, the secret, the host
 * read from the environment. A message of the core's about one of those
 * ("access_key_secret: must not ...") is made to name its variable too:
 * the caller passed no such argument. */
void genauth_credentials_name_variable(const char *brand, unsigned from_env,
                                       genauth_error *err);

/* pickle.c: a client pickles and copies by its options. */
/* A client keeps the values it was made with as they come (a tuple of the
 * values[0..n) that are not NULL, bit i of *given set for each), and makes
 * the dict of keyword arguments only when it is pickled or copied: a
 * client's construction then costs a tuple, not a dict of interned names.
 * New reference, or NULL with an exception set. n is at most the bits of
 * an unsigned long. */
PyObject *genauth_options_pack(PyObject *const *values, Py_ssize_t n,
                               unsigned long *given);
/* __reduce__ for a client made with `options` from genauth_options_pack
 * (NULL: not initialised): (genauth_c._core._rebuild, (type(self),
 * {params[i].name: value for each given i})), params being its
 * constructor's (args.h). */
struct genauth_param;
PyObject *genauth_reduce(PyObject *self, const struct genauth_param *params,
                         Py_ssize_t nparams, PyObject *options,
                         unsigned long given);
/* The module's functions (_rebuild). */
extern PyMethodDef genauth_pickle_functions[];

/* client_type.c */
int genauth_client_type_add(PyObject *module, genauth_module_state *st);
/* The core client of a ManagementClient (borrowed; NULL before __init__),
 * and its raise_for_status option when `raise_for_status` is not NULL. */
genauth_client *genauth_client_of(PyObject *self, int *raise_for_status);
/* Whether the client signs its requests (auth='signature'): its payloads
 * must then hold only JavaScript-safe integers. */
int genauth_client_signs_payloads(PyObject *self);
/* ManagementClient.__reduce__ (pickle.c does the work). */
PyObject *genauth_client_reduce(PyObject *self, PyObject *ignored);

/* methods.c: ManagementClient's methods (the API methods, batches, close
 * and the context manager). */
extern PyMethodDef genauth_client_methods[];
/* methods.c, for AsyncManagementClient (async_client.c): the same table,
 * parser and envelope-to-result conversion as ManagementClient's methods.
 *
 * A call's parameter object for API method `op` from a vectorcall's
 * arguments (qualname prefixed "Async" in TypeErrors when `async_client`;
 * `sign`: genauth_client_signs_payloads of the client). New object
 * (cJSON_Delete), or NULL with an exception set. */
cJSON *genauth_method_params(genauth_op op, int async_client, int sign,
                             PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames);
/* trigger_webhooks' arguments: *concurrency, and in *params (PyMem_Free;
 * genauth_params_free each of the *count) each call's parameter object
 * (for an unsigned POST, its written body), every call checked before any
 * is sent. 0, or -1 with an exception set. */
int genauth_batch_params(int async_client, int sign, PyObject *const *args,
                         Py_ssize_t nargs, PyObject *kwnames,
                         cJSON ***params, Py_ssize_t *count,
                         long long *concurrency);
/* Frees what genauth_batch_params or genauth_method_params made. With the
 * GIL held (a written body is in Python's allocator). */
void genauth_params_free(cJSON *params);
/* The one place an envelope becomes a result: the dict, or an exception
 * object (APIError with raise_for_status and statusCode != 200,
 * DecodeError). New reference, or NULL with an exception set. */
PyObject *genauth_envelope_result(genauth_module_state *st,
                                  const genauth_envelope *env,
                                  int raise_for_status);
/* The API methods as a tuple of (name, op, HTTP method, path, parameters)
 * rows, parameters as ((name, required, keyword_only), ...): _aio.py makes
 * its coroutines from it, tests/test_method_table.py checks every other
 * place a method needs against it. New reference. */
PyObject *genauth_api_method_ops(void);

/* async_client.c */
int genauth_async_types_add(PyObject *module, genauth_module_state *st);

#endif
