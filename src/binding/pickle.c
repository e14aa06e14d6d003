/* Pickling and copying a client: by its configuration. A client holds
 * connections and a token, which belong to one process; what travels is the
 * keyword arguments that make an equal client (the key secret included: a
 * pickle is trusted data), and unpickling makes a new client with its own
 * connections and token. copy.copy and copy.deepcopy go the same way. */
#include "binding.h"

PyObject *
genauth_options_pack(const char *const *names, PyObject *const *values,
                     Py_ssize_t n)
{
    PyObject *options = PyDict_New();
    for (Py_ssize_t i = 0; options && i < n; i++) {
        if (values[i] &&
            PyDict_SetItemString(options, names[i], values[i]) < 0)
            Py_CLEAR(options);
    }
    return options;
}

PyObject *
genauth_reduce(PyObject *self, PyObject *options)
{
    PyObject *module, *fn = NULL, *copy = NULL, *r = NULL;
    if (!options) {
        PyErr_Format(PyExc_TypeError, "cannot pickle an uninitialised %s",
                     GENAUTH_TYPE_NAME(self));
        return NULL;
    }
    module = genauth_module_of(Py_TYPE(self));
    fn = module ? PyObject_GetAttrString(module, "_rebuild") : NULL;
    /* A copy: the new client must not share a dict with this one. */
    copy = fn ? PyDict_Copy(options) : NULL;
    if (copy)
        r = Py_BuildValue("O(OO)", fn, (PyObject *)Py_TYPE(self), copy);
    Py_XDECREF(copy);
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
