/* The `genauth_c` logger: one DEBUG line per request and per token fetch, a
 * WARNING for a client that does not verify TLS. Nothing secret is ever
 * formatted: no key secret, token, signature or body reaches this file.
 *
 * The per-request check must be cheap, since it runs on every call whether
 * or not anyone listens: it is the logger's own isEnabledFor(DEBUG), bound
 * once (the logger caches its answer until its level changes).
 *
 * `import genauth_c` does not import logging (with what it imports, about a
 * third of the package's import time): the logger is taken the first time
 * it could matter with logging already imported by the application. Before
 * that nobody can have configured a handler for it, so there is nothing to
 * send anywhere, and a call costs one look into sys.modules. */
#include <signal.h>
#include <string.h>

#include "binding.h"

/* 1 once the logger is bound, 0 while the application has not imported
 * logging, -1 with an exception set. getLogger, the handler and the
 * logger's attributes are the application's code, which may make a call of
 * its own and so bind the logger first: what this call made is then
 * dropped, not leaked, and never replaces what the state holds. */
static int
attach(genauth_module_state *st)
{
    PyObject *logging, *logger = NULL, *handler = NULL, *r = NULL;
    PyObject *enabled_for = NULL;
    int rc = -1;

    if (st->log_enabled_for)
        return 1;
    if (!(logging = PyImport_GetModule(st->str_logging)))
        return PyErr_Occurred() ? -1 : 0;
    /* None: not importable, as `import logging` would say. An application
     * blocks it so, and so does the interpreter's end (a finalizer's call)
     * for every module it takes out of sys.modules. */
    if (logging == Py_None) {
        Py_DECREF(logging);
        return 0;
    }
    logger = PyObject_CallMethod(logging, "getLogger", "s", "genauth_c");
    if (!logger)
        goto done;
    if (st->log_enabled_for) {
        rc = 1;
        goto done;
    }
    /* Silent unless the application configures logging
     * (logging.basicConfig(level=logging.DEBUG) shows every request). */
    if (!(handler = PyObject_CallMethod(logging, "NullHandler", NULL)) ||
        !(r = PyObject_CallMethod(logger, "addHandler", "O", handler)) ||
        !(enabled_for = PyObject_GetAttrString(logger, "isEnabledFor")))
        goto done;
    rc = 1;
    if (!st->log_enabled_for) {
        st->logger = logger;
        st->log_enabled_for = enabled_for;
        logger = enabled_for = NULL;
    }
done:
    Py_XDECREF(enabled_for);
    Py_XDECREF(r);
    Py_XDECREF(handler);
    Py_XDECREF(logger);
    Py_DECREF(logging);
    return rc;
}

int
genauth_log_init(genauth_module_state *st)
{
    st->log_debug_level = PyLong_FromLong(10); /* logging.DEBUG */
    st->str_logging = PyUnicode_InternFromString("logging");
    if (!st->log_debug_level || !st->str_logging)
        return -1;
    return attach(st) < 0 ? -1 : 0;
}

int
genauth_log_traverse(genauth_module_state *st, visitproc visit, void *arg)
{
    Py_VISIT(st->logger);
    Py_VISIT(st->log_enabled_for);
    Py_VISIT(st->log_debug_level);
    Py_VISIT(st->str_logging);
    return 0;
}

void
genauth_log_clear(genauth_module_state *st)
{
    Py_CLEAR(st->logger);
    Py_CLEAR(st->log_enabled_for);
    Py_CLEAR(st->log_debug_level);
    Py_CLEAR(st->str_logging);
}

/* A logging call must not turn into the caller's exception: a handler that
 * fails is reported the way the logging module reports its own failures. */
static void
report_failure(genauth_module_state *st)
{
    if (PyErr_Occurred())
        PyErr_WriteUnraisable(st->logger ? st->logger : Py_None);
}

/* report_failure, except for what is no handler's failure: an exception
 * that is not an Exception (KeyboardInterrupt: Ctrl-C landed while Python
 * code of the logging ran; SystemExit), which comes out of a logging call
 * in Python too. Then -1 with it set. */
static int
report_failure_but_interrupts(genauth_module_state *st)
{
    if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    report_failure(st);
    return 0;
}

/* 1 when DEBUG lines are wanted, 0 when not, -1 with an exception set. */
static int
debug_enabled(genauth_module_state *st)
{
    int attached = attach(st);
    if (attached <= 0)
        return attached;
    PyObject *r = genauth_call_one(st->log_enabled_for,
                                      st->log_debug_level);
    if (!r)
        return -1;
    int enabled = PyObject_IsTrue(r);
    Py_DECREF(r);
    return enabled;
}

/* "TRANSPORT" for GENAUTH_E_TRANSPORT: short enough to grep for. */
static const char *
status_word(genauth_status status)
{
    const char *name = genauth_status_name(status);
    return strncmp(name, "GENAUTH_E_", 10) == 0 ? name + 10 : name;
}

static void
emit(genauth_module_state *st, const char *level, PyObject *line)
{
    if (!line)
        return;
    if (attach(st) <= 0) {
        Py_DECREF(line);
        return;
    }
    PyObject *r = PyObject_CallMethod(st->logger, level, "O", line);
    Py_DECREF(line);
    Py_XDECREF(r);
}

/* The length of the control character that begins UTF-8 text `s` (a
 * NUL-terminated string), 0 when it begins with none: ASCII's, the C1
 * controls U+0080-U+009F (NEL among them), and U+2028 and U+2029, which
 * Unicode and str.splitlines() take for line ends too. */
static size_t
control_length(const unsigned char *s)
{
    if (s[0] < 0x20 || s[0] == 0x7f)
        return 1;
    if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
        return 2;
    if (s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9))
        return 3;
    return 0;
}

/* A value the server chose (a requestId, an error message quoting the
 * server's), copied with control characters replaced, a '?' a byte, so
 * that it cannot break a log line in two. */
static void
printable(const char *in, char *out, size_t size)
{
    size_t n = 0;
    while (in && in[n] && n + 1 < size) {
        size_t control = control_length((const unsigned char *)in + n);
        if (!control) {
            out[n] = in[n];
            n++;
        }
        for (; control && n + 1 < size; control--)
            out[n++] = '?';
    }
    out[n] = '\0';
}

static int log_request(genauth_module_state *st, const char *method,
                       const char *path, genauth_status status,
                       const genauth_envelope *env, const genauth_error *err);

int
genauth_log_request(genauth_module_state *st, const char *method,
                    const char *path, genauth_status status,
                    const genauth_envelope *env, const genauth_error *err)
{
    /* An interrupted call arrives with the signal handler's exception set
     * (KeyboardInterrupt): logging runs Python code, so it is set aside
     * meanwhile and handed back unchanged, in place of any the logging
     * let through. */
    PyObject *pending_type, *pending_value, *pending_tb;
    PyErr_Fetch(&pending_type, &pending_value, &pending_tb);
    int rc = log_request(st, method, path, status, env, err);
    if (pending_type) {
        PyErr_Restore(pending_type, pending_value, pending_tb);
        rc = 0;
    }
    return rc;
}

static int
log_request(genauth_module_state *st, const char *method, const char *path,
            genauth_status status, const genauth_envelope *env,
            const genauth_error *err)
{
    int enabled = debug_enabled(st);
    if (enabled <= 0)
        return report_failure_but_interrupts(st);
    const genauth_call_stats *stats =
        status == GENAUTH_OK ? &env->stats : &err->stats;
    char ms[32];
    /* PyUnicode_FromFormat has no %f. */
    PyOS_snprintf(ms, sizeof(ms), "%.1f", stats->duration * 1000.0);
    PyObject *line;
    if (status == GENAUTH_OK) {
        char status_code[24] = "-", api_code[24] = "-", request_id[72] = "-";
        if (env->has_status_code)
            PyOS_snprintf(status_code, sizeof(status_code), "%ld",
                          env->status_code);
        if (env->has_api_code)
            PyOS_snprintf(api_code, sizeof(api_code), "%ld", env->api_code);
        if (env->request_id && !env->quotes_credential)
            printable(env->request_id, request_id, sizeof(request_id));
        line = PyUnicode_FromFormat(
            "%s %s http=%ld statusCode=%s apiCode=%s requestId=%s "
            "duration_ms=%s retries=%u",
            method, path, env->http_status, status_code, api_code,
            request_id, ms, stats->retries);
    } else {
        char message[GENAUTH_ERRMSG_SIZE];
        printable(err->message, message, sizeof(message));
        line = PyUnicode_FromFormat(
            "%s %s failed=%s http=%ld duration_ms=%s retries=%u: %s", method,
            path, status_word(status), err->http_status, ms,
            stats->retries, message);
    }
    emit(st, "debug", line);
    return report_failure_but_interrupts(st);
}

/* Whether SIGINT runs a Python handler: not under SIG_IGN or SIG_DFL, nor
 * with a handler Python did not install. Called with no exception set; 0
 * when the question fails. */
static int
sigint_has_python_handler(void)
{
    PyObject *signal_module = PyImport_ImportModule("signal");
    PyObject *handler = signal_module
                            ? PyObject_CallMethod(signal_module, "getsignal",
                                                  "i", SIGINT)
                            : NULL;
    int has = handler && PyCallable_Check(handler);
    Py_XDECREF(handler);
    Py_XDECREF(signal_module);
    PyErr_Clear(); /* a failure only means: not known to be handled */
    return has;
}

/* A KeyboardInterrupt (set) raised in the logging's Python code on a line
 * written inside a blocking call's core call, which the line cannot end:
 * Ctrl-C landed there. The interrupt is delivered again, and the call's
 * next interrupt check (or, once the call has returned, the caller's next
 * line of Python) raises it. Only on the thread where signal handlers run,
 * and only when a Python handler would receive it: under SIG_IGN the
 * interrupt would be dropped, so the KeyboardInterrupt (which the handler's
 * own code raised: no signal makes one then) stays set, to be reported. */
static void
interrupt_again(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (genauth_wait_runs_signal_handlers() && sigint_has_python_handler()) {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        PyErr_SetInterrupt();
        return;
    }
    PyErr_Restore(type, value, tb);
}

/* Py_AddPendingCall's function: raises `exc` (taken), an exception
 * instance with its traceback. */
static int
raise_pending(void *exc)
{
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE((PyObject *)exc)), exc,
                  PyException_GetTraceback(exc));
    return -1;
}

/* interrupt_again for another exception that is not an Exception
 * (SystemExit: the handler called sys.exit()), which no signal carries:
 * raised again by a pending call, which Python runs where it runs signal
 * handlers, so it comes out once the call has returned, at the caller's
 * next line of Python. On another thread, or when the call cannot be
 * queued, it stays set, to be reported. */
static void
exit_again(void)
{
    if (!genauth_wait_runs_signal_handlers())
        return;
    PyObject *exc = genauth_take_exception();
    if (exc && Py_AddPendingCall(raise_pending, exc) == 0)
        return;
    if (exc)
        raise_pending(exc);
}

void
genauth_log_event(const genauth_event *event, void *userdata)
{
    genauth_module_state *st = userdata;
    int entered = genauth_wait_enter_python();
    /* A KeyboardInterrupt may be waiting for the binding to raise it. */
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (event->type == GENAUTH_EVENT_TOKEN_FETCH && debug_enabled(st) > 0) {
        char ms[32], message[GENAUTH_ERRMSG_SIZE];
        PyOS_snprintf(ms, sizeof(ms), "%.1f", event->duration * 1000.0);
        printable(event->message, message, sizeof(message));
        emit(st, "debug",
             event->status == GENAUTH_OK
                 ? PyUnicode_FromFormat("token fetch http=%ld duration_ms=%s",
                                        event->http_status, ms)
                 : PyUnicode_FromFormat(
                       "token fetch failed=%s http=%ld duration_ms=%s: %s",
                       status_word(event->status),
                       event->http_status, ms, message));
    }
    if (!type && PyErr_Occurred()) {
        if (!entered) {
            /* An event-loop engine's token fetch: the engine runs the core
             * with the GIL held, from a callback of the loop. Delivered
             * again, Ctrl-C would land in the next Python code the core
             * runs, a loop method the engine calls, which cannot raise it
             * either: it is held until the core returns to that callback,
             * which raises it. */
            genauth_hold_interrupt();
        } else if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
            interrupt_again();
        } else if (!PyErr_ExceptionMatches(PyExc_Exception)) {
            exit_again();
        }
    }
    report_failure(st);
    PyErr_Restore(type, value, tb);
    genauth_wait_leave_python(entered);
}

int
genauth_log_unverified(genauth_module_state *st, PyObject *host)
{
    emit(st, "warning",
         PyUnicode_FromFormat("TLS certificates are not verified for %S "
                              "(use_unverified_ssl=True): anyone on the path "
                              "can read and change the traffic",
                              host));
    return report_failure_but_interrupts(st);
}
