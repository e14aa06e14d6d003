/* JavaScript's view of a request body, for AK/SK signing.
 *
 * The server rebuilds the signed resource string from the body it parsed,
 * with JavaScript's JSON.stringify and String(v). These functions print a
 * cJSON tree (in json.h's exact form: numbers as cJSON_Raw literals, strings
 * holding U+0000 as cJSON_Raw escaped literals, keys holding U+0000 escaped
 * and flagged GENAUTH_JSON_KEY_ESCAPED) exactly as JavaScript would print the
 * value it parses from our serialisation of that tree:
 *  - compact; an object's integer-like keys ("0", or decimal without a
 *    leading zero up to 4294967294) first in ascending numeric order, then
 *    the other keys in insertion order;
 *  - strings escaped as JSON.stringify does (\" \\ \b \f \n \r \t, other
 *    controls and lone surrogates as lowercase \uxxxx, nothing else);
 *  - numbers in Number::toString form ("1.0" -> "1", 1e21 -> "1e+21"); a
 *    non-finite cJSON_Number as null, as json.c sends it.
 *
 * What JavaScript cannot reproduce is refused with GENAUTH_E_INVALID rather
 * than signed wrongly: an integer literal beyond 2**53-1, a number beyond
 * double range, a string that is not valid UTF-8, a raw literal that is not
 * valid JSON, nesting deeper than GENAUTH_JSFORM_MAX_DEPTH.
 *
 * Object keys are taken to be unique (the binding builds objects from
 * dicts); with duplicates JavaScript would keep only the last value.
 *
 * Output is appended to a caller-owned buffer; nothing else is allocated
 * except a sort array for objects with more integer-like keys than fit on
 * the stack. All functions are thread-safe. */
#ifndef GENAUTH_JSFORM_H
#define GENAUTH_JSFORM_H

#include <stddef.h>

#include "genauth.h"
#include "buf.h"

/* The C stack bounds recursion; json.c's printer and cJSON's parser stop
 * at the same depth (containers nested this deep are refused). */
#define GENAUTH_JSFORM_MAX_DEPTH CJSON_NESTING_LIMIT

/* Appends JSON.stringify(value) for `node`. On failure `out` may hold a
 * partial print: the caller resets it. */
genauth_status genauth_jsform_write(const cJSON *node, genauth_buf *out,
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

#endif
