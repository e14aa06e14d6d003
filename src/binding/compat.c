/* compat.h's helpers: what the limited API spells differently. */
#include <stdio.h>

#include "binding.h"

#ifdef Py_LIMITED_API
/* tp_name rebuilt: a static type's is "module.name" ("name" for
 * builtins), the parts type.__module__ and type.__name__ split it into, and
 * so is the one of a type this module made from its spec; a class
 * statement's is its __name__. Runs no caller code: these are the type's
 * own attributes. NULL with the exception raised on failure. */
static PyObject *
type_name_text(PyTypeObject *type)
{
    PyObject *name = NULL, *module = NULL, *text = NULL;

    name = PyType_GetName(type);
    if (!name)
        goto done;
    if (PyType_GetFlags(type) & Py_TPFLAGS_HEAPTYPE) {
        PyObject *owner = PyType_GetModule(type); /* borrowed */
        if (!owner)
            PyErr_Clear(); /* not made from a spec with a module */
        if (!owner || PyModule_GetDef(owner) != &genauth_module_def) {
            text = Py_NewRef(name);
            goto done;
        }
    }
    module = PyObject_GetAttrString((PyObject *)type, "__module__");
    if (!module)
        goto done;
    if (PyUnicode_Check(module) &&
        PyUnicode_CompareWithASCIIString(module, "builtins") != 0)
        text = PyUnicode_FromFormat("%U.%U", module, name);
    else
        text = Py_NewRef(name);
done:
    Py_XDECREF(module);
    Py_XDECREF(name);
    return text;
}
#endif

const char *
genauth_type_name_of(PyObject *obj, genauth_type_name_buf *buf)
{
#ifdef Py_LIMITED_API
    PyObject *type, *value, *traceback, *text;
    const char *utf8;

    PyErr_Fetch(&type, &value, &traceback); /* kept for the caller */
    text = type_name_text(Py_TYPE(obj));
    utf8 = text ? PyUnicode_AsUTF8AndSize(text, NULL) : NULL;
    snprintf(buf->s, sizeof buf->s, "%s", utf8 ? utf8 : "object");
    Py_XDECREF(text);
    PyErr_Clear(); /* a name that cannot be made is not the error */
    PyErr_Restore(type, value, traceback);
#else
    snprintf(buf->s, sizeof buf->s, "%s", Py_TYPE(obj)->tp_name);
#endif
    return buf->s;
}
