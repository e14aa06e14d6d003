/* Pickling and copying a client: by its configuration. A client holds
 * connections and a token, which belong to one process; what travels is the
 * keyword arguments that make an equal client (the key secret included: a
 * pickle is trusted data), and unpickling makes a new client with its own
 * connections and token. copy.copy and copy.deepcopy go the same way. */
#include "args.h"
#include "binding.h"

PyObject *
genauth_options_pack(PyObject *const *values, Py_ssize_t n,
                     unsigned long *given)
{
    Py_ssize_t count = 0, k = 0;
    PyObject *options;

    *given = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        count += values[i] != NULL;
    if (!(options = PyTuple_New(count)))
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (values[i]) {
            PyTuple_SetItem(options, k++, Py_NewRef(values[i])); /* steals */
            *given |= 1UL << i;
        }
    }
    return options;
}

PyObject *
genauth_reduce(PyObject *self, const genauth_param *params,
               Py_ssize_t nparams, PyObject *options, unsigned long given)
{
    PyObject *module, *fn = NULL, *kwargs = NULL, *r = NULL;
    Py_ssize_t k = 0;

    if (!options) {
        PyErr_Format(PyExc_TypeError, "cannot pickle an uninitialised %s",
                     GENAUTH_TYPE_NAME(self));
        return NULL;
    }
    module = genauth_module_of(Py_TYPE(self));
    fn = module ? PyObject_GetAttrString(module, "_rebuild") : NULL;
    /* A new dict each time: the new client shares nothing with this one. */
    kwargs = fn ? PyDict_New() : NULL;
    for (Py_ssize_t i = 0; kwargs && i < nparams; i++) {
        if (!(given & (1UL << i)))
            continue;
        /* The tuple is this client's, never changed: a borrowed item. */
        PyObject *value = PyTuple_GetItem(options, k++);
        if (!value ||
            PyDict_SetItemString(kwargs, params[i].name, value) < 0)
            Py_CLEAR(kwargs);
    }
    if (kwargs)
        r = Py_BuildValue("O(OO)", fn, (PyObject *)Py_TYPE(self), kwargs);
    Py_XDECREF(kwargs);
    Py_XDECREF(fn);
    return r;
}

PyDoc_STRVAR(rebuild_doc, "_rebuild($module, cls, options, /)\n--\n\n"
"Make cls(**options): how a pickled client comes back.");

static PyObject *
rebuild(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyType_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "_rebuild() takes a type and a dict of options");
        return NULL;
    }
    PyObject *empty = PyTuple_New(0);
    if (!empty)
        return NULL;
    PyObject *client = PyObject_Call(args[0], empty, args[1]);
    Py_DECREF(empty);
    return client;
}

PyMethodDef genauth_pickle_functions[] = {
    {"_rebuild", (PyCFunction)(void (*)(void))rebuild, METH_FASTCALL,
     rebuild_doc},
    {NULL, NULL, 0, NULL},
};
