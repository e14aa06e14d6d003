/* The binding's one argument parser and the type checks of API method
 * arguments: positional and keyword arguments matched to a parameter list
 * with CPython's own TypeError wording, and each value checked and turned
 * into the core's exact JSON with an error naming the argument. */
#ifndef GENAUTH_ARGS_H
#define GENAUTH_ARGS_H

#include "binding.h"
#include "convert.h"
#include "json.h"

typedef enum {
    /* Every str the API takes names something (a webhook, an event, a
     * URL, a secret): none may be empty or only whitespace. */
    GENAUTH_ARG_STR,          /* such a str, without NUL */
    GENAUTH_ARG_STR_LIST,     /* a list or tuple of at least one of them */
    GENAUTH_ARG_CONTENT_TYPE, /* one of the two webhook content types */
    GENAUTH_ARG_SECRET,       /* a STR for a header: no control characters */
    GENAUTH_ARG_BOOL,     /* a bool */
    GENAUTH_ARG_POS_INT,  /* an int >= 1, not a bool */
    GENAUTH_ARG_MAPPING,  /* a Mapping, converted as json.dumps would */
    GENAUTH_ARG_OTHER,    /* not converted here (the method's own) */
} genauth_arg_kind;

/* One parameter of a method: its Python name, the API's JSON name, its
 * kind, and whether it is required (required ones come first). Every
 * optional parameter defaults to None, which leaves it out of the request. */
typedef struct genauth_param {
    const char *name;
    const char *json_name;
    genauth_arg_kind kind;
    int required;
} genauth_param;

/* A method's signature. The first `npositional` parameters may be given by
 * position; the rest are keyword-only. */
typedef struct {
    const char *qualname; /* "ManagementClient.get_webhook" */
    const genauth_param *params;
    Py_ssize_t nparams;
    Py_ssize_t npositional;
} genauth_signature_spec;

/* The index in spec->params of the parameter named `key` (a str, or any
 * object, which matches none), or -1. Sets no exception. */
Py_ssize_t genauth_param_slot(const genauth_signature_spec *spec,
                              PyObject *key);

/* Matches a vectorcall's arguments to `spec`: values[i] is the argument for
 * params[i] (borrowed from args), or NULL when not given. Returns 0, or -1
 * with TypeError worded as CPython words it for a Python method (missing,
 * duplicated, unexpected, too many). values holds spec->nparams slots. */
int genauth_parse_args(const genauth_signature_spec *spec,
                       PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames, PyObject **values);

/* The same for a call that comes as a tuple and a dict (or NULL), as
 * tp_init's: values[i] borrowed from args or kwargs. */
int genauth_parse_tuple_args(const genauth_signature_spec *spec,
                             PyObject *args, PyObject *kwargs,
                             PyObject **values);

/* The UTF-8 of a str argument `value`, borrowed from it (its cache), or
 * NULL with TypeError (not a str) or ValueError (a lone surrogate, which
 * UTF-8 cannot carry; a NUL; empty or only
 * ASCII whitespace when `nonempty`) naming it: `name`, and
 * for a list's item `index` (or -1). The one check of every str argument
 * that is sent, the constructor's included. */
const char *genauth_str_arg_utf8(PyObject *value, const char *name,
                                 Py_ssize_t index, int nonempty,
                                 Py_ssize_t *len);

/* An int argument from `min` to `max` in *out: an int, not a bool, taken
 * by its value (never __index__: no caller code runs). 0, or -1 with
 * TypeError or ValueError naming `name`, an int beyond a C long long
 * included. */
int genauth_int_arg(PyObject *value, const char *name, long long min,
                    long long max, long long *out);

/* The JSON node for `value` (not None) of `kind`, or NULL with TypeError or
 * ValueError naming opts->argname ("events[2]: expected str, got int"). The
 * caller frees it with cJSON_Delete. Only a Mapping runs the caller's code
 * (its items()): it is converted with `opts` (genauth_py_to_json_object_ex),
 * so its errors name calls[opts->batch_index] themselves and the caller's
 * own exceptions come out unchanged; the other kinds name opts->argname
 * alone. */
cJSON *genauth_arg_to_json(PyObject *value, genauth_arg_kind kind,
                           const genauth_conv_options *opts);

#endif
