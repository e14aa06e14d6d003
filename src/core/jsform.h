/* JavaScript's view of a request body, for AK/SK signing.
 *
 * The server rebuilds the signed resource string from the body it parsed,
 * with JavaScript's JSON.stringify and String(v). json.h's writer in its
 * GENAUTH_JSON_JS form prints a cJSON tree (in json.h's exact form) as
 * JSON.stringify prints the value JavaScript parses from our serialisation
 * of that tree; what is JavaScript's own lives here and the writer calls it:
 *  - member order: an object's integer-like keys ("0", or decimal without a
 *    leading zero up to 4294967294) first in ascending numeric order, then
 *    the other keys in insertion order;
 *  - numbers in Number::toString form ("1.0" -> "1", 1e21 -> "1e+21");
 *  - String(v) of a scalar, and the keys of the resource's query.
 * Strings are escaped by the writer's one escaper (jsontext.h).
 *
 * What JavaScript cannot reproduce is refused with GENAUTH_E_INVALID rather
 * than signed wrongly: an integer literal beyond 2**53-1, a number beyond
 * double range, a string that is not valid UTF-8, a raw literal that is not
 * valid JSON, nesting deeper than GENAUTH_JSON_MAX_DEPTH.
 *
 * A key an object holds more than once (dict keys 1 and "1" both become
 * "1") stands once, where JSON.parse keeps it: see genauth_jsform_distinct.
 *
 * Output is appended to a caller-owned buffer; nothing else is allocated
 * except sort arrays for large objects and the object of references made
 * for one with a repeated key. All functions are thread-safe. */
#ifndef GENAUTH_JSFORM_H
#define GENAUTH_JSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "genauth.h"
#include "buf.h"

/* Integer-like keys sorted on the stack up to this many; more are rare
 * (an object used as a sparse array) and get a heap array. */
#define GENAUTH_JSFORM_STACK_INDEXES 16

typedef struct {
    uint32_t index;
    const cJSON *member;
} genauth_jsform_indexed;

/* An object's members in JavaScript's order, one at a time. Lives on the
 * stack: genauth_jsform_order_init, genauth_jsform_order_next until NULL,
 * then genauth_jsform_order_clear (also after a failed init). */
typedef struct {
    genauth_jsform_indexed stack[GENAUTH_JSFORM_STACK_INDEXES];
    genauth_jsform_indexed *idx; /* the integer-like keys, sorted */
    size_t n, i;
    const cJSON *next; /* the next member in insertion order */
} genauth_jsform_order;

/* GENAUTH_E_NOMEM when a large sort array cannot be had. */
genauth_status genauth_jsform_order_init(genauth_jsform_order *o,
                                         const cJSON *obj,
                                         genauth_error *err);
const cJSON *genauth_jsform_order_next(genauth_jsform_order *o);
void genauth_jsform_order_clear(genauth_jsform_order *o);

/* The members of an object as JSON.parse keeps them when a key is given
 * more than once: the key once, where it first stood, with the value it was
 * given last. *distinct is NULL when every key is distinct (the object is
 * written as it is); otherwise a new object of references to obj's members
 * (their keys copied), which the caller frees with cJSON_Delete before obj.
 * GENAUTH_E_NOMEM, or GENAUTH_E_INVALID for a key missing or malformed. */
genauth_status genauth_jsform_distinct(const cJSON *obj, cJSON **distinct,
                                       genauth_error *err);

/* Appends String(value) for a scalar: a string's bytes (a raw string literal
 * decoded, U+0000 included; a lone surrogate as U+FFFD, as Node's UTF-8
 * encoder does), a number in JavaScript form, "true", "false", "null".
 * An array or object is GENAUTH_E_INVALID. */
genauth_status genauth_jsform_string(const cJSON *scalar, genauth_buf *out,
                                     genauth_error *err);

/* Appends an object member's key as JavaScript sees it (an escaped key is
 * decoded, U+0000 included). */
genauth_status genauth_jsform_key(const cJSON *member, genauth_buf *out,
                                  genauth_error *err);

/* Orders two object members' keys by UTF-16 code units, as JavaScript's
 * default Array.prototype.sort does (this differs from byte order between
 * characters above U+FFFF and U+E000..U+FFFF). Keys must have passed
 * genauth_jsform_key_check. Returns <0, 0 or >0. */
int genauth_jsform_key_cmp(const cJSON *a, const cJSON *b);

/* GENAUTH_OK when the member's key is well-formed (valid UTF-8, or a valid
 * escaped key), else GENAUTH_E_INVALID. */
genauth_status genauth_jsform_key_check(const cJSON *member,
                                        genauth_error *err);

/* Appends the Number::toString form of a finite double. Returns 0, or -1
 * when out of memory. */
int genauth_jsform_double(double v, genauth_buf *out);

/* Appends the Number::toString form of the value JavaScript parses from a
 * raw node's number literal (safe integers as written, -0 as "0").
 * GENAUTH_E_INVALID when it is not one JSON number, is an integer beyond
 * JavaScript's safe range or is beyond double range. */
genauth_status genauth_jsform_number_literal(const char *lit,
                                             genauth_buf *out,
                                             genauth_error *err);

/* strtod of a NUL-terminated JSON number literal in the "C" locale, whatever
 * LC_NUMERIC the host process set. */
double genauth_jsform_strtod(const char *literal);

#endif
