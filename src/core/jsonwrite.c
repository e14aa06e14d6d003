/* The one JSON writer, in two forms: the exact form genauth-c sends, and
 * JavaScript's JSON.stringify form of what the server parses from it (for
 * AK/SK signing). The forms share the walk, the separators, the depth limits
 * (the fixed one and the stack's, stack.h) and the string escaper
 * (jsontext.h); JavaScript's member order and number formatting come from
 * jsform.h. See json.h. */
#include "json.h"
#include "jsform.h"
#include "jsontext.h"
#include "stack.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static genauth_status
genauth_json_nomem(genauth_error *err)
{
    return genauth_error_set(err, GENAUTH_E_NOMEM,
                             "out of memory while writing JSON");
}

static genauth_status
genauth_json_append(genauth_buf *out, const char *s, size_t n,
                    genauth_error *err)
{
    return genauth_buf_append(out, s, n) < 0 ? genauth_json_nomem(err)
                                             : GENAUTH_OK;
}

int
genauth_json_write_string(const char *s, size_t len, genauth_buf *out)
{
    genauth_json_text t;

    genauth_json_text_init(&t, s, len, 0);
    return genauth_json_text_quote(&t, 0, out, NULL) == GENAUTH_OK ? 0 : -1;
}

/* A cJSON_Number in the exact form: integers exactly, other values in the
 * fewest of 15/16/17 significant digits that read back as the same double. */
static int
genauth_json_exact_double(double d, genauth_buf *out)
{
    char tmp[40];
    int n = 0;
    int prec;
    int i;

    if (d == floor(d) && fabs(d) < 9007199254740992.0) {
        n = snprintf(tmp, sizeof(tmp), "%.0f", d);
    }
    else {
        for (prec = 15; prec <= 17; prec++) {
            n = snprintf(tmp, sizeof(tmp), "%.*g", prec, d);
            if (n > 0 && (size_t)n < sizeof(tmp) && strtod(tmp, NULL) == d)
                break;
        }
    }
    if (n <= 0 || (size_t)n >= sizeof(tmp))
        return -1;
    /* A locale may print a decimal comma; JSON wants a point. */
    for (i = 0; i < n; i++) {
        char c = tmp[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e'
              || c == 'E'))
            tmp[i] = '.';
    }
    return genauth_buf_append(out, tmp, (size_t)n);
}

/* A cJSON_Number, or a raw node holding a number literal. The exact form
 * sends a literal as written; the JavaScript form prints the value the
 * server parses from it (and refuses what it cannot reproduce). Both send a
 * non-finite double as null, as JSON.stringify does. */
static genauth_status
genauth_json_write_number(const cJSON *node, genauth_json_form form,
                          genauth_buf *out, genauth_error *err)
{
    double d = node->valuedouble;
    int rc;
    genauth_status st = GENAUTH_OK;

    if ((node->type & 0xFF) == cJSON_Raw && form == GENAUTH_JSON_JS)
        st = genauth_jsform_number_literal(node->valuestring, out, err);
    else {
        if ((node->type & 0xFF) == cJSON_Raw)
            rc = genauth_buf_append_str(out, node->valuestring);
        else if (!isfinite(d))
            rc = genauth_buf_append(out, "null", 4);
        else if (form == GENAUTH_JSON_JS)
            rc = genauth_jsform_double(d, out);
        else
            rc = genauth_json_exact_double(d, out);
        if (rc < 0)
            st = genauth_json_nomem(err);
    }
    return st;
}

/* A string: `s` is a cJSON_String's value (UTF-8) or, with `literal`, a raw
 * node's whole escaped literal. The exact form sends a literal as built;
 * the JavaScript form prints the string the server parses from it, escaped
 * its way. */
static genauth_status
genauth_json_write_text(const char *s, int literal, genauth_json_form form,
                        genauth_buf *out, genauth_error *err)
{
    genauth_json_text t;
    genauth_status st = GENAUTH_OK;

    if (literal && form == GENAUTH_JSON_EXACT)
        st = genauth_json_append(out, s, strlen(s), err);
    else {
        if (literal)
            st = genauth_json_text_literal(&t, s, err);
        else
            genauth_json_text_init(&t, s, strlen(s), 0);
        if (st == GENAUTH_OK)
            st = genauth_json_text_quote(&t, form == GENAUTH_JSON_JS, out,
                                         err);
    }
    return st;
}

/* An object member's key, quoted. A key flagged GENAUTH_JSON_KEY_ESCAPED
 * is held escaped, without its quotes: the exact form copies it, the
 * JavaScript form re-escapes the key it decodes to. */
static genauth_status
genauth_json_write_key(const cJSON *member, genauth_json_form form,
                       genauth_buf *out, genauth_error *err)
{
    const char *key = member->string ? member->string : "";
    int escaped = (member->type & GENAUTH_JSON_KEY_ESCAPED) != 0;
    genauth_json_text t;
    size_t len = strlen(key);
    genauth_status st = GENAUTH_OK;

    if (member->string == NULL && form == GENAUTH_JSON_JS)
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "an object member has no key");
    else if (escaped && form == GENAUTH_JSON_EXACT) {
        if (genauth_buf_ensure(out, len + 2) < 0)
            st = genauth_json_nomem(err);
        else {
            out->data[out->len++] = '"';
            memcpy(out->data + out->len, key, len);
            out->len += len;
            out->data[out->len++] = '"';
            out->data[out->len] = '\0';
        }
    }
    else {
        genauth_json_text_init(&t, key, len, escaped);
        st = genauth_json_text_quote(&t, form == GENAUTH_JSON_JS, out, err);
    }
    return st;
}

static genauth_status genauth_json_write_node(const cJSON *node,
                                              genauth_json_form form,
                                              genauth_buf *out, int depth,
                                              uintptr_t stack_floor,
                                              genauth_error *err);

/* Members in insertion order, or in JavaScript's order (integer-like keys
 * first, ascending, a repeated key once) for the JavaScript form. */
static genauth_status
genauth_json_write_object(const cJSON *obj, genauth_json_form form,
                          genauth_buf *out, int depth, uintptr_t stack_floor,
                          genauth_error *err)
{
    genauth_jsform_order order;
    cJSON *distinct = NULL;
    const cJSON *m;
    int js = form == GENAUTH_JSON_JS;
    int first = 1, ordered = 0;
    genauth_status st = GENAUTH_OK;

    if (js) {
        st = genauth_jsform_distinct(obj, &distinct, err);
        if (distinct)
            obj = distinct;
        if (st == GENAUTH_OK) {
            st = genauth_jsform_order_init(&order, obj, err);
            ordered = 1; /* cleared below, after a failed init too */
        }
    }
    if (st == GENAUTH_OK && genauth_buf_put_char(out, '{') < 0)
        st = genauth_json_nomem(err);
    for (m = st != GENAUTH_OK ? NULL
             : js                ? genauth_jsform_order_next(&order)
                                 : obj->child;
         m != NULL && st == GENAUTH_OK;
         m = js ? genauth_jsform_order_next(&order) : m->next) {
        if (!first && genauth_buf_put_char(out, ',') < 0)
            st = genauth_json_nomem(err);
        first = 0;
        if (st == GENAUTH_OK)
            st = genauth_json_write_key(m, form, out, err);
        if (st == GENAUTH_OK && genauth_buf_put_char(out, ':') < 0)
            st = genauth_json_nomem(err);
        if (st == GENAUTH_OK)
            st = genauth_json_write_node(m, form, out, depth + 1,
                                         stack_floor, err);
    }
    if (st == GENAUTH_OK && genauth_buf_put_char(out, '}') < 0)
        st = genauth_json_nomem(err);
    if (ordered)
        genauth_jsform_order_clear(&order);
    cJSON_Delete(distinct); /* references: obj's members stay */
    return st;
}

static genauth_status
genauth_json_write_array(const cJSON *arr, genauth_json_form form,
                         genauth_buf *out, int depth, uintptr_t stack_floor,
                         genauth_error *err)
{
    const cJSON *child;
    genauth_status st = GENAUTH_OK;

    if (genauth_buf_put_char(out, '[') < 0)
        st = genauth_json_nomem(err);
    for (child = arr->child; child != NULL && st == GENAUTH_OK;
         child = child->next) {
        if (child != arr->child && genauth_buf_put_char(out, ',') < 0)
            st = genauth_json_nomem(err);
        else
            st = genauth_json_write_node(child, form, out, depth + 1,
                                         stack_floor, err);
    }
    if (st == GENAUTH_OK && genauth_buf_put_char(out, ']') < 0)
        st = genauth_json_nomem(err);
    return st;
}

static genauth_status
genauth_json_write_node(const cJSON *node, genauth_json_form form,
                        genauth_buf *out, int depth, uintptr_t stack_floor,
                        genauth_error *err)
{
    genauth_status st;
    int type = node->type & 0xFF;

    if (type == cJSON_Array || type == cJSON_Object) {
        /* The top container's one frame fits in the stack's reserve: the
         * floor is taken below it, once by each container of the second
         * level (most calls' parameters hold none: their mappings come as
         * text), and handed down. */
        if (depth == 1)
            stack_floor = genauth_stack_floor();
        if (depth >= GENAUTH_JSON_MAX_DEPTH)
            type = -1; /* refused below */
        else if (genauth_stack_short(stack_floor))
            type = -2;
    }
    switch (type) {
    case cJSON_NULL:
        st = genauth_json_append(out, "null", 4, err);
        break;
    case cJSON_False:
        st = genauth_json_append(out, "false", 5, err);
        break;
    case cJSON_True:
        st = genauth_json_append(out, "true", 4, err);
        break;
    case cJSON_Number:
        st = genauth_json_write_number(node, form, out, err);
        break;
    case cJSON_String:
        /* A string node without a value is sent as "". */
        st = genauth_json_write_text(
            node->valuestring ? node->valuestring : "", 0, form, out, err);
        break;
    case cJSON_Raw:
        if (node->valuestring == NULL)
            st = genauth_error_set(err, GENAUTH_E_INVALID,
                                   "a raw node has no value");
        else if (node->valuestring[0] == '"')
            st = genauth_json_write_text(node->valuestring, 1, form, out,
                                         err);
        else
            st = genauth_json_write_number(node, form, out, err);
        break;
    case cJSON_Array:
        st = genauth_json_write_array(node, form, out, depth, stack_floor,
                                      err);
        break;
    case cJSON_Object:
        st = genauth_json_write_object(node, form, out, depth, stack_floor,
                                       err);
        break;
    case -1:
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "JSON nested deeper than %d levels",
                               GENAUTH_JSON_MAX_DEPTH);
        break;
    case -2:
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "JSON nested deeper than the %d levels this "
                               "thread's stack allows",
                               depth);
        break;
    default:
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "a JSON node has an invalid type");
        break;
    }
    return st;
}

genauth_status
genauth_json_write_form(const cJSON *node, genauth_json_form form,
                        genauth_buf *out, genauth_error *err)
{
    size_t start = out->len;
    genauth_status st;

    if (node == NULL)
        st = genauth_error_set(err, GENAUTH_E_INVALID, "no JSON value");
    else if (genauth_buf_reserve(out, 64) < 0)
        st = genauth_json_nomem(err);
    else {
        st = genauth_json_write_node(node, form, out, 0, 0, err);
        if (st != GENAUTH_OK) {
            /* Leave the buffer as the caller gave it. */
            out->len = start;
            out->data[start] = '\0';
        }
    }
    return st;
}

int
genauth_json_write(const cJSON *node, genauth_buf *out)
{
    return genauth_json_write_form(node, GENAUTH_JSON_EXACT, out, NULL)
                   == GENAUTH_OK
               ? 0
               : -1;
}
