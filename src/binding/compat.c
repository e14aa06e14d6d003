/* compat.h's helpers: what the limited API spells differently. */
#include <stdio.h>

#include "binding.h"

/* The name of `type` as CPython 3.13's %T and PyType_GetFullyQualifiedName
 * spell it (PEP 737), which the 3.11 limited API lacks: "module.qualname",
 * the module left out when it is "builtins" or "__main__" (or not a str).
 * The same on every version and for every kind of type: a static type, a
 * class statement's, one another extension made from a PyType_Spec (3.13's
 * decimal.Decimal, a static type before). Reads the type's own attributes
 * only. NULL with the exception raised on failure. */
static PyObject *
type_name_text(PyTypeObject *type)
{
    PyObject *qualname = NULL, *module = NULL, *text = NULL;

    qualname = PyType_GetQualName(type);
    if (!qualname)
        goto done;
    module = PyObject_GetAttrString((PyObject *)type, "__module__");
    if (!module)
        PyErr_Clear(); /* no module: the name alone */
    if (module && PyUnicode_Check(module) &&
        PyUnicode_CompareWithASCIIString(module, "builtins") != 0 &&
        PyUnicode_CompareWithASCIIString(module, "__main__") != 0)
        text = PyUnicode_FromFormat("%U.%U", module, qualname);
    else
        text = Py_NewRef(qualname);
done:
    Py_XDECREF(module);
    Py_XDECREF(qualname);
    return text;
}

const char *
genauth_type_name_of(PyObject *obj, genauth_type_name_buf *buf)
{
    PyObject *type, *value, *traceback, *text;
    const char *utf8;

    PyErr_Fetch(&type, &value, &traceback); /* kept for the caller */
    text = type_name_text(Py_TYPE(obj));
    utf8 = text ? PyUnicode_AsUTF8AndSize(text, NULL) : NULL;
    snprintf(buf->s, sizeof buf->s, "%s", utf8 ? utf8 : "object");
    Py_XDECREF(text);
    PyErr_Clear(); /* a name that cannot be made is not the error */
    PyErr_Restore(type, value, traceback);
    return buf->s;
}
