/* Exact JSON on top of cJSON, and the one JSON writer.
 *
 * cJSON keeps numbers only as doubles and cuts strings at U+0000. genauth-c
 * loses nothing either way:
 *  - Out (requests): numbers are cJSON_Raw nodes holding their literal text;
 *    a string holding U+0000 is a cJSON_Raw node holding its whole escaped
 *    literal (quotes included); an object key holding U+0000 is stored
 *    escaped (no quotes) and flagged GENAUTH_JSON_KEY_ESCAPED in item->type.
 *    genauth_json_write_form prints such trees compactly, in the exact
 *    form or in JavaScript's JSON.stringify form (for signing).
 *  - In (responses): genauth_json_doc keeps, beside its cJSON tree, the text
 *    of every number literal and the exact bytes of every string that holds
 *    U+0000 or a lone surrogate, in document order; a genauth_json_cursor walking the tree in
 *    document order (pre-order, each object key before its value) gets them
 *    back. */
#ifndef GENAUTH_JSON_H
#define GENAUTH_JSON_H

#include "genauth.h"
#include "buf.h"

/* On an object member: item->string is escaped JSON (without quotes). */
#define GENAUTH_JSON_KEY_ESCAPED (1 << 12)
/* On a string node of a parsed doc: the string holds U+0000, where its
 * valuestring stops (the cursor gives the whole string). */
#define GENAUTH_JSON_STRING_HAS_NUL (1 << 13)

/* ---- building (out) ---- */

/* A string node for `len` bytes of UTF-8 that may hold NUL. NULL: no memory. */
cJSON *genauth_json_string_new(const char *s, size_t len);
/* A raw number node holding a copy of `literal` (already valid JSON). */
cJSON *genauth_json_number_new(const char *literal, size_t len);
/* genauth_json_object_add for a key without NUL that outlives the object
 * (a string literal): the key is referred to, not copied. */
int genauth_json_object_add_static(cJSON *object, const char *key,
                                   cJSON *item);
/* A raw node holding a copy of `len` bytes of JSON text already in the
 * exact form: a whole object written straight from the caller's values
 * (`{...}`), sent verbatim. Such a node passes the checks for an object
 * parameter (endpoints.c) but has no members to walk: only the exact form
 * writes it, so signed requests are built as trees. */
cJSON *genauth_json_raw_new(const char *text, size_t len);
/* Whether `node` is an object: a cJSON object, or a raw node holding one. */
int genauth_json_is_object(const cJSON *node);
/* Adds `item` to `object` under the key (`len` bytes, may hold NUL); the
 * object takes ownership of item. Returns 0, or -1 on no memory (item is then
 * still the caller's). */
int genauth_json_object_add(cJSON *object, const char *key, size_t len,
                            cJSON *item);

/* ---- writing (jsonwrite.c) ---- */

/* The two forms of the one writer. Both are compact (separators "," and
 * ":"), escape strings as JavaScript's JSON.stringify does (jsontext.h:
 * control characters, '"' and '\\'; non-ASCII and '/' as they are) and send
 * a non-finite cJSON_Number as null. */
typedef enum {
    /* What genauth-c sends: raw nodes (number and string literals) and
     * escaped keys verbatim, members in insertion order, cJSON_Number nodes
     * as exact integers or round-tripping decimals, string bytes as they
     * are (UTF-8 is not checked). */
    GENAUTH_JSON_EXACT,
    /* JSON.stringify of the value the server parses from the exact form,
     * what AK/SK signing must reproduce: integer-like keys first, numbers in
     * JavaScript's form, literals and escaped keys decoded and re-escaped;
     * GENAUTH_E_INVALID for what JavaScript cannot reproduce (see jsform.h). */
    GENAUTH_JSON_JS
} genauth_json_form;

/* Containers nested deeper are refused: cJSON could not read them back,
 * and the writer recurses. */
#define GENAUTH_JSON_MAX_DEPTH CJSON_NESTING_LIMIT

/* Appends `node` in `form`. GENAUTH_E_INVALID for an invalid node, nesting
 * deeper than GENAUTH_JSON_MAX_DEPTH or than the calling thread's stack
 * allows (stack.h), or (JavaScript form) a value JavaScript cannot
 * reproduce; GENAUTH_E_NOMEM. On failure `out` is left as it was. */
genauth_status genauth_json_write_form(const cJSON *node,
                                       genauth_json_form form,
                                       genauth_buf *out, genauth_error *err);
/* genauth_json_write_form in the exact form: 0, or -1 on failure. */
int genauth_json_write(const cJSON *node, genauth_buf *out);
/* Appends the exact form's JSON string literal (quotes included) for `len`
 * bytes. Returns 0, or -1 on no memory. */
int genauth_json_write_string(const char *s, size_t len, genauth_buf *out);

/* ---- parsing (in) ---- */

/* Python's default sys.get_int_max_str_digits(): json.loads refuses longer
 * integer literals, so the parser does too (with an excerpt to show). */
#define GENAUTH_JSON_MAX_INT_DIGITS 4300
#define GENAUTH_JSON_MAX_INT_DIGITS_TEXT "4300"

/* Parses exactly `len` bytes (text[len] need not be NUL; the text is not
 * kept) in one strict pass of its own into a cJSON tree (json.c). Invalid
 * JSON is GENAUTH_E_DECODE, "invalid JSON at byte N" at the first offending
 * byte (a string's or number's first byte when it is the string or number
 * that is wrong): what Python's json refuses (unescaped control characters
 * in strings, bad \u escapes, numbers such as 01 or 1., NaN, white space
 * other than the four JSON allows, trailing data), nesting beyond cJSON's
 * limit ("JSON nested deeper than 1000 levels"), strings that are not UTF-8
 * (as json.loads(bytes) judges: encoded surrogates pass) and integers of
 * more than GENAUTH_JSON_MAX_INT_DIGITS digits. Lone surrogate escapes are kept, as
 * json.loads keeps them: their strings decode to UTF-8 with the surrogate
 * encoded as three bytes (what Python's "surrogatepass" reads back). The
 * message never quotes the text.
 * The tree lives in the doc's arena: read it, never cJSON_Delete it or take
 * nodes out of it. Its nodes hold what cJSON_Parse would give (a string
 * with U+0000 cut there, and flagged GENAUTH_JSON_STRING_HAS_NUL; a lone
 * surrogate as U+FFFD; a number as a double); the cursor gives the exact
 * values. It loops rather than recursing: any thread's stack parses any
 * nesting up to the limit.
 * The caller frees *out with genauth_json_doc_free. */
genauth_status genauth_json_doc_parse(const char *text, size_t len,
                                      genauth_json_doc **out,
                                      genauth_error *err);
void genauth_json_doc_free(genauth_json_doc *doc); /* NULL: no-op */
/* genauth_json_doc_free after wiping every string, key and literal of the
 * document (it held a secret). NULL: no-op. */
void genauth_json_doc_wipe_free(genauth_json_doc *doc);
const cJSON *genauth_json_doc_root(const genauth_json_doc *doc);
/* The value `key` holds in `object` (a parsed doc's object): the last of a
 * repeated key, as in what json.loads and JavaScript's JSON.parse make of
 * it. NULL when `object` is not an object or has no such member. */
const cJSON *genauth_json_member(const cJSON *object, const char *key);

/* Cheap to make: one per walk, on the stack. The doc keeps numbers and
 * U+0000-bearing strings in one table; both indexes only move forward. */
typedef struct {
    const genauth_json_doc *doc;
    size_t next_number;  /* table position to look for the next number from */
    size_t next_string;  /* ordinal of the next string (keys included) */
    size_t next_special; /* table position to look for the next string from */
} genauth_json_cursor;

void genauth_json_cursor_init(genauth_json_cursor *c,
                              const genauth_json_doc *doc);
/* Call for each number node in document order: the literal's text,
 * NUL-terminated, borrowed from the doc. *lit is NULL (and *len 0) when the
 * walk has more number nodes than the doc has literals (a caller bug). */
void genauth_json_cursor_number(genauth_json_cursor *c, const char **lit,
                                size_t *len);
/* Call for each string in document order, keys included, passing cJSON's
 * (possibly cut) string: its exact bytes and length. Borrowed from the doc
 * (or `cjson_str` itself when it was not cut); NUL-terminated. */
void genauth_json_cursor_string(genauth_json_cursor *c, const char *cjson_str,
                                const char **s, size_t *len);

/* Whether any string of the document (keys included), decoded, holds the
 * `len` bytes at `needle`, as it is or as JSON text quoted in the string
 * writes it (escaped, up to a few levels deep): 1 or 0 (1 also when memory
 * to decode a string runs out); -1 when the document is nested deeper
 * than the calling thread's stack allows to search (stack.h), which a
 * caller looking for a secret takes as a yes. */
int genauth_json_doc_contains(const genauth_json_doc *doc, const char *needle,
                              size_t len);

#endif
