/* The few things the binding needs that the 3.11 limited API (the stable
 * ABI, abi3: setup.py builds with Py_LIMITED_API=0x030B0000 unless
 * GENAUTH_LIMITED_API=0) spells differently. Everything else is written
 * once, with the functions of the limited API, in both builds. Include it
 * after Python.h. */
#ifndef GENAUTH_COMPAT_H
#define GENAUTH_COMPAT_H

#include <stddef.h>

/* Py_SETREF and Py_XSETREF are not in the limited API: the same, with
 * the old value released (by `release`) after the new one is stored. */
#define GENAUTH_SETREF_(dst, src, release)                                   \
    do {                                                                     \
        PyObject **genauth_dst_ = (PyObject **)&(dst);                       \
        PyObject *genauth_old_ = *genauth_dst_;                              \
        *genauth_dst_ = (PyObject *)(src);                                   \
        release(genauth_old_);                                               \
    } while (0)
#ifndef Py_SETREF
#define Py_SETREF(dst, src) GENAUTH_SETREF_(dst, src, Py_DECREF)
#endif
#ifndef Py_XSETREF
#define Py_XSETREF(dst, src) GENAUTH_SETREF_(dst, src, Py_XDECREF)
#endif

/* Calls `callable(arg)`. PyObject_CallOneArg and PyObject_Vectorcall enter
 * the limited API only in 3.12; PyObject_CallFunctionObjArgs takes the
 * same vectorcall path without building a tuple. */
#ifdef Py_LIMITED_API
#define genauth_call_one(callable, arg)                                      \
    PyObject_CallFunctionObjArgs((callable), (arg), NULL)
#else
#define genauth_call_one(callable, arg) PyObject_CallOneArg((callable), (arg))
#endif

/* The module slot that declares a module safe in an interpreter with a GIL
 * of its own (3.12's Py_mod_multiple_interpreters,
 * Py_MOD_PER_INTERPRETER_GIL_SUPPORTED): not in the 3.11 limited API, and
 * refused by 3.11 ("unknown slot ID"), so module.c adds it only when the
 * running Python is 3.12 or later. The numbers are the stable ABI's. */
#ifdef Py_mod_multiple_interpreters
#define GENAUTH_MOD_MULTIPLE_INTERPRETERS Py_mod_multiple_interpreters
#define GENAUTH_MOD_PER_INTERPRETER_GIL Py_MOD_PER_INTERPRETER_GIL_SUPPORTED
#else
#define GENAUTH_MOD_MULTIPLE_INTERPRETERS 3
#define GENAUTH_MOD_PER_INTERPRETER_GIL ((void *)2)
#endif

/* repr() of `obj` as the built-in `type` prints it (never a subclass's
 * __repr__). */
#define genauth_base_repr(type, obj)                                         \
    (((reprfunc)PyType_GetSlot((type), Py_tp_repr))(obj))

/* The name of obj's type as error messages print it, fully qualified as
 * CPython 3.13's %T does ("list", "collections.OrderedDict",
 * "decimal.Decimal", "mymodule.Outer.Inner"), copied into `buf`; returns
 * buf->s. Never raises, and keeps an exception already set. Not tp_name,
 * in either build: the limited API has none, and what it holds depends on
 * how the type was made (a class statement's is the bare name, a spec's
 * the dotted one), which changes between versions (decimal.Decimal became
 * a spec's type in 3.13). */
typedef struct {
    char s[128];
} genauth_type_name_buf;
const char *genauth_type_name_of(PyObject *obj, genauth_type_name_buf *buf);
/* The same with a buffer that lives until the end of the enclosing block:
 * PyErr_Format(..., "got %.100s", GENAUTH_TYPE_NAME(obj)). */
#define GENAUTH_TYPE_NAME(obj)                                               \
    genauth_type_name_of((PyObject *)(obj), &(genauth_type_name_buf){{0}})

#endif
