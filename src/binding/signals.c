/* Ctrl-C during a call that waits on the network with the GIL released.
 *
 * Python runs signal handlers only in the main thread of the main
 * interpreter, so only a call made there ever takes the GIL back while it
 * waits: every 100 ms (the core's interrupt poll), through the thread state
 * it saved when it released the GIL, never through PyGILState (which does
 * not know subinterpreters). Calls in other threads, or in a
 * subinterpreter, wait without touching the GIL at all.
 *
 * The core's interrupt callback is set once per client, but the thread
 * state is per call: the waiting call publishes its genauth_wait in a
 * thread-local variable, which the callback (run by the core on the calling
 * thread) reads. */

#include "binding.h"

/* The wait in progress on this thread when it may run signal handlers,
 * else NULL. A signal handler that makes a call of its own stacks a new
 * wait on top (genauth_wait.outer). */
static _Thread_local genauth_wait *current_wait;
/* This thread's innermost wait, whether or not it runs signal handlers. */
static _Thread_local genauth_wait *thread_wait;

int
genauth_main_thread_init(genauth_module_state *st)
{
    PyObject *threading = NULL, *main_thread = NULL, *ident = NULL;
    unsigned long value;
    int rc = -1;

    threading = PyImport_ImportModule("threading");
    if (!threading)
        goto done;
    main_thread = PyObject_CallMethod(threading, "main_thread", NULL);
    if (!main_thread)
        goto done;
    ident = PyObject_GetAttrString(main_thread, "ident");
    if (!ident)
        goto done;
    value = PyLong_AsUnsignedLong(ident);
    if (value == (unsigned long)-1 && PyErr_Occurred())
        goto done;
    st->main_thread_ident = value;
    st->main_thread_fork = genauth_fork_generation();
    rc = 0;
done:
    Py_XDECREF(ident);
    Py_XDECREF(main_thread);
    Py_XDECREF(threading);
    return rc;
}

/* Whether the calling thread (holding the GIL) is the one Python runs
 * signal handlers in. */
static int
runs_signal_handlers(genauth_module_state *st)
{
    /* The main interpreter's ID is 0 (PyInterpreterState_Main is not in
     * the limited API). */
    if (PyInterpreterState_GetID(PyInterpreterState_Get()) != 0)
        return 0;
    if (st->main_thread_fork != genauth_fork_generation()) {
        /* A forked child: its main thread is the one that forked, which
         * threading knows. Asked once per process. */
        if (genauth_main_thread_init(st) < 0) {
            PyErr_Clear(); /* then no Ctrl-C inside calls, nothing worse */
            st->main_thread_fork = genauth_fork_generation();
            st->main_thread_ident = 0;
        }
    }
    return PyThread_get_thread_ident() == st->main_thread_ident;
}

void
genauth_wait_begin(genauth_module_state *st, genauth_wait *w)
{
    int handlers = st != NULL && runs_signal_handlers(st);

    w->outer = current_wait;
    w->outer_any = thread_wait;
    w->tstate = PyEval_SaveThread();
    current_wait = handlers ? w : NULL;
    thread_wait = w;
}

void
genauth_wait_end(genauth_wait *w)
{
    current_wait = w->outer;
    thread_wait = w->outer_any;
    PyEval_RestoreThread(w->tstate);
}

int
genauth_wait_enter_python(void)
{
    genauth_wait *w = thread_wait;
    if (!w || !w->tstate)
        return 0;
    PyEval_RestoreThread(w->tstate);
    w->tstate = NULL; /* held now: a nested call saves its own */
    return 1;
}

void
genauth_wait_leave_python(int entered)
{
    genauth_wait *w = thread_wait;
    if (entered && w)
        w->tstate = PyEval_SaveThread();
}

int
genauth_wait_runs_signal_handlers(void)
{
    return current_wait != NULL;
}

int
genauth_check_signals(void *userdata)
{
    genauth_wait *w = current_wait;
    int stop;

    (void)userdata;
    if (!w)
        return 0; /* no handler can run on this thread: keep waiting */
    PyEval_RestoreThread(w->tstate);
    /* Held now, as genauth_wait_enter_python marks it: the handlers may run
     * the core with the GIL held (asyncio.run of an async client's call),
     * whose log events must not take it again. */
    w->tstate = NULL;
    /* A handler already raised (the core asked again before stopping):
     * report it, and run no more Python code with it set. */
    stop = PyErr_Occurred() != NULL || PyErr_CheckSignals() < 0;
    w->tstate = PyEval_SaveThread();
    return stop;
}

/* ---- an interrupt held for the way back to Python ------------------------
 * The binding runs Python code where no exception can come out: a log
 * handler on a token fetch's line, the loop's and the futures' methods the
 * event-loop engine calls from inside the core (libcurl cannot be stopped
 * there). An exception that is no failure of that code, one that is not an
 * Exception (KeyboardInterrupt: Ctrl-C landed there; SystemExit), is not
 * reported and lost: it is held, per thread, until the core returns to the
 * binding's entry point that Python called (a callback of the loop's, a
 * call's start or cancel, close), which raises it, as any of them can. */
static _Thread_local PyObject *held_type, *held_value, *held_tb;

int
genauth_hold_interrupt(void)
{
    if (!PyErr_Occurred() || PyErr_ExceptionMatches(PyExc_Exception))
        return 0;
    if (held_type) {
        PyErr_Clear(); /* one is held already: one Ctrl-C is enough */
        return 1;
    }
    PyErr_Fetch(&held_type, &held_value, &held_tb);
    return 1;
}

int
genauth_interrupt_held(void)
{
    return held_type != NULL;
}

int
genauth_raise_held(void)
{
    if (!held_type)
        return 0;
    /* An exception the entry point raises anyway becomes the context of
     * the held one, which goes first. */
    PyObject *pending = genauth_take_exception();
    PyErr_Restore(held_type, held_value, held_tb);
    held_type = held_value = held_tb = NULL;
    if (pending) {
        PyObject *held = genauth_take_exception();
        if (held && held != pending)
            PyException_SetContext(held, pending); /* steals pending */
        else
            Py_DECREF(pending);
        if (held) {
            PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(held)), held,
                          PyException_GetTraceback(held));
        }
    }
    return -1;
}
