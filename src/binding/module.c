/* genauth_c._core: multi-phase init, all state in the module (no C
 * globals), so the module can be reloaded and isolated. */
#include <pthread.h>

#include "binding.h"
#include "convert.h"

static int
core_exec(PyObject *module)
{
    genauth_module_state *st = PyModule_GetState(module);
    genauth_error err;

    genauth_error_init(&err);
    if (genauth_global_init(&err) != GENAUTH_OK) {
        PyErr_Format(PyExc_ImportError, "genauth_c: %s", err.message);
        genauth_error_clear(&err);
        return -1;
    }
    st->str_statusCode = PyUnicode_InternFromString("statusCode");
    st->str_apiCode = PyUnicode_InternFromString("apiCode");
    st->str_message = PyUnicode_InternFromString("message");
    st->str_requestId = PyUnicode_InternFromString("requestId");
    if (!st->str_statusCode || !st->str_apiCode || !st->str_message ||
        !st->str_requestId)
        return -1;
    if (genauth_main_thread_init(st) < 0)
        return -1;
    if (genauth_errors_init(module, st) < 0 || genauth_log_init(st) < 0)
        return -1;
    if (genauth_client_type_add(module, st) < 0)
        return -1;
    if (genauth_async_types_add(module, st) < 0)
        return -1;
    if (PyModule_AddStringConstant(module, "__version__", GENAUTH_VERSION) <
            0 ||
        PyModule_AddStringConstant(module, "curl_version",
                                   genauth_curl_version()) < 0 ||
        PyModule_AddIntConstant(module, "MAX_DEPTH", GENAUTH_MAX_DEPTH) < 0 ||
        PyModule_AddIntConstant(module, "DEFAULT_MAX_RESPONSE_BYTES",
                                (long)GENAUTH_DEFAULT_MAX_RESPONSE_BYTES) < 0)
        return -1;
    return 0;
}

static int
core_traverse(PyObject *module, visitproc visit, void *arg)
{
    genauth_module_state *st = PyModule_GetState(module);
    if (!st)
        return 0;
    Py_VISIT(st->client_type);
    Py_VISIT(st->async_engine_type);
    Py_VISIT(st->async_call_type);
    int r = genauth_log_traverse(st, visit, arg);
    if (r)
        return r;
    return genauth_errors_traverse(st, visit, arg);
}

static int
core_clear(PyObject *module)
{
    genauth_module_state *st = PyModule_GetState(module);
    if (!st)
        return 0;
    Py_CLEAR(st->client_type);
    Py_CLEAR(st->async_engine_type);
    Py_CLEAR(st->async_call_type);
    genauth_errors_clear(st);
    genauth_log_clear(st);
    Py_CLEAR(st->str_statusCode);
    Py_CLEAR(st->str_apiCode);
    Py_CLEAR(st->str_message);
    Py_CLEAR(st->str_requestId);
    genauth_key_cache_clear(&st->result_keys);
    return 0;
}

static void
core_free(void *module)
{
    core_clear((PyObject *)module);
}

/* The second entry is filled in at import on 3.12 and later
 * (core_slots_for_runtime). */
static PyModuleDef_Slot core_slots[] = {
    {Py_mod_exec, core_exec},
    {0, NULL},
    {0, NULL},
};

PyDoc_STRVAR(core_doc, "The C engine of genauth_c: GenAuth's V3 management "
                       "API over libcurl.");

PyModuleDef genauth_module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "genauth_c._core",
    .m_doc = core_doc,
    .m_size = sizeof(genauth_module_state),
    .m_methods = genauth_pickle_functions,
    .m_slots = core_slots,
    .m_traverse = core_traverse,
    .m_clear = core_clear,
    .m_free = core_free,
};

genauth_module_state *
genauth_state_from_type(PyTypeObject *type)
{
    PyObject *module = genauth_module_of(type);
    return module ? PyModule_GetState(module) : NULL;
}

/* PyType_GetModuleByDef enters the limited API only in 3.13. The binding's
 * types cannot be subclassed, so the module that made `type` is the one it
 * has. */
PyObject *
genauth_module_of(PyTypeObject *type)
{
    PyObject *module = PyType_GetModule(type); /* borrowed */
    if (module && PyModule_GetDef(module) != &genauth_module_def) {
        PyErr_Format(PyExc_TypeError, "%s is not a genauth_c type",
                     GENAUTH_TYPE_NAME(type));
        module = NULL;
    }
    return module;
}

/* The module keeps all its state in itself and the core is thread-safe, so
 * it is safe in an interpreter with a GIL of its own: 3.12 and later are
 * told so, or refuse to load it there (the default of 3.13's
 * _interpreters.create() and of concurrent.interpreters). Decided once:
 * interpreters with GILs of their own may import it at the same time. */
static pthread_once_t core_slots_once = PTHREAD_ONCE_INIT;

static void
core_slots_for_runtime(void)
{
    if (Py_Version >= 0x030C0000)
        core_slots[1] = (PyModuleDef_Slot){GENAUTH_MOD_MULTIPLE_INTERPRETERS,
                                           GENAUTH_MOD_PER_INTERPRETER_GIL};
}

PyMODINIT_FUNC PyInit__core(void);

PyMODINIT_FUNC
PyInit__core(void)
{
    /* Fails only for a bad once-control; without the slot the module is
     * only refused by interpreters with a GIL of their own. */
    (void)pthread_once(&core_slots_once, core_slots_for_runtime);
    return PyModuleDef_Init(&genauth_module_def);
}
