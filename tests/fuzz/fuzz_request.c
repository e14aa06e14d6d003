/* libFuzzer target: request encoding. The input is read as a small program
 * that builds a request tree with json.h's builders (strings and keys of
 * arbitrary bytes, NUL and invalid UTF-8 included; raw number literals;
 * cJSON doubles; nesting past the limit), then:
 *  - genauth_json_write either refuses (nesting past CJSON_NESTING_LIMIT,
 *    leaving the buffer as it was) or prints JSON that parses back when
 *    every string is UTF-8 (and is refused by the reader otherwise), and
 *    whose exact tree prints the same bytes again (a fixed point) and is
 *    the same document: the same strings, keys and literals, and every
 *    double the same double;
 *  - the JavaScript form (GENAUTH_JSON_JS, AK/SK signing) and
 *    genauth_jsform_string either refuse with GENAUTH_E_INVALID or print;
 *    the JavaScript form parses;
 *  - both forms escape every string alike (one escaper): where the
 *    JavaScript form prints a string node, the exact form prints the same
 *    bytes.
 *
 * Build and run: make fuzz-short, or make fuzz (FUZZ_SECONDS=600). */
#include <math.h>
#include <stdint.h>

#include "jsform.h"
#include "jsontext.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STACK (CJSON_NESTING_LIMIT + 50)

typedef struct {
    const uint8_t *p, *end;
} reader;

static unsigned
next_byte(reader *r)
{
    return r->p < r->end ? *r->p++ : 0;
}

/* Up to `max` raw bytes. */
static size_t
next_bytes(reader *r, size_t max, const uint8_t **out)
{
    size_t n = next_byte(r) % (max + 1);
    if (n > (size_t)(r->end - r->p))
        n = (size_t)(r->end - r->p);
    *out = r->p;
    r->p += n;
    return n;
}

/* A valid JSON number literal made from the input. */
static size_t
next_literal(reader *r, char *buf, size_t cap)
{
    size_t n = 0;
    unsigned shape = next_byte(r);
    unsigned digits = 1 + next_byte(r) % 70;
    if (shape & 1)
        buf[n++] = '-';
    unsigned first = next_byte(r) % 10;
    buf[n++] = (char)('0' + first);
    for (unsigned i = 1; first != 0 && i < digits && n < cap - 40; i++)
        buf[n++] = (char)('0' + next_byte(r) % 10);
    if (shape & 2) {
        buf[n++] = '.';
        unsigned frac = 1 + next_byte(r) % 20;
        for (unsigned i = 0; i < frac; i++)
            buf[n++] = (char)('0' + next_byte(r) % 10);
    }
    if (shape & 4) {
        buf[n++] = (shape & 8) ? 'E' : 'e';
        if (shape & 16)
            buf[n++] = (shape & 32) ? '+' : '-';
        n += (size_t)snprintf(buf + n, cap - n, "%u", next_byte(r) % 400);
    }
    buf[n] = '\0';
    return n;
}

/* Whether the bytes are UTF-8 as the response parser reads it (encoded
 * surrogates pass, as in json.loads(bytes)). */
static int
is_utf8(const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n;
    uint32_t cp;
    size_t k;

    while (p < end) {
        if ((k = genauth_utf8_decode(p, end, &cp)) == 0)
            return 0;
        p += k;
    }
    return 1;
}

static double
next_double(reader *r)
{
    uint64_t bits = 0;
    for (int i = 0; i < 8; i++)
        bits = bits << 8 | next_byte(r);
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

/* Walks the original tree and the one read back from its text (in the
 * exact form) together: the same document. Strings, keys and literals are
 * the same bytes (both trees were built by json.h's builders, which store
 * each alike); each cJSON double reads back as itself (NaN and infinities
 * were written as null). A writer that changed a value the same way each
 * time would pass the fixed point check: not this one. */
static void
check_same_document(const cJSON *orig, const cJSON *back)
{
    FUZZ_CHECK(orig && back);
    int t = orig->type & 0xFF, u = back->type & 0xFF;
    if (t == cJSON_Number) {
        if (isfinite(orig->valuedouble)) {
            /* The printed digits must round-trip. */
            FUZZ_CHECK(u == cJSON_Raw);
            FUZZ_CHECK(strtod(back->valuestring, NULL) == orig->valuedouble);
        } else {
            FUZZ_CHECK(u == cJSON_NULL);
        }
        return;
    }
    FUZZ_CHECK(t == u);
    if (t == cJSON_String || t == cJSON_Raw)
        FUZZ_CHECK(strcmp(orig->valuestring, back->valuestring) == 0);
    if (t == cJSON_Array || t == cJSON_Object) {
        const cJSON *a = orig->child, *b = back->child;
        for (; a && b; a = a->next, b = b->next) {
            if (t == cJSON_Object) {
                /* A member added without a key (op 7) is written "". */
                FUZZ_CHECK(strcmp(a->string ? a->string : "", b->string) ==
                           0);
                FUZZ_CHECK((a->type & GENAUTH_JSON_KEY_ESCAPED) ==
                           (b->type & GENAUTH_JSON_KEY_ESCAPED));
            }
            check_same_document(a, b);
        }
        FUZZ_CHECK(!a && !b);
    }
}

static void
check_scalars(const cJSON *node)
{
    genauth_buf out, exact;
    genauth_error err;
    for (; node; node = node->next) {
        int t = node->type & 0xFF;
        if (t == cJSON_Array || t == cJSON_Object) {
            check_scalars(node->child);
            continue;
        }
        genauth_buf_init(&out);
        genauth_buf_init(&exact);
        genauth_error_init(&err);
        genauth_status st = genauth_jsform_string(node, &out, &err);
        FUZZ_CHECK(st == GENAUTH_OK || st == GENAUTH_E_INVALID);
        if (t == cJSON_String
            || (t == cJSON_Raw && node->valuestring[0] == '"')) {
            /* One escaper: where the JavaScript form prints the string,
             * the exact form prints the same bytes. */
            genauth_buf_reset(&out);
            st = genauth_json_write_form(node, GENAUTH_JSON_JS, &out, &err);
            FUZZ_CHECK(st == GENAUTH_OK || st == GENAUTH_E_INVALID);
            FUZZ_CHECK(genauth_json_write(node, &exact) == 0);
            if (st == GENAUTH_OK)
                FUZZ_CHECK(out.len == exact.len
                           && memcmp(out.data, exact.data, out.len) == 0);
        }
        genauth_buf_clear(&out);
        genauth_buf_clear(&exact);
        genauth_error_clear(&err);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, data + size};
    cJSON *stack[MAX_STACK];
    size_t depth = 1, max_depth = 1;
    int all_utf8 = 1; /* every string and key built is UTF-8 */
    char lit[256];
    const uint8_t *bytes;
    size_t n;
    genauth_buf out, js;
    genauth_error err;

    stack[0] = cJSON_CreateObject();
    FUZZ_CHECK(stack[0] != NULL);
    while (r.p < r.end) {
        unsigned op = next_byte(&r) % 10;
        cJSON *item = NULL;
        switch (op) {
        case 0:
            n = next_bytes(&r, 40, &bytes);
            all_utf8 &= is_utf8(bytes, n);
            item = genauth_json_string_new((const char *)bytes, n);
            break;
        case 1:
            n = next_literal(&r, lit, sizeof(lit));
            item = genauth_json_number_new(lit, n);
            break;
        case 2:
            item = cJSON_CreateNumber(next_double(&r));
            break;
        case 3:
            item = cJSON_CreateBool(next_byte(&r) & 1);
            break;
        case 4:
            item = cJSON_CreateNull();
            break;
        case 5:
        case 6:
            if (depth < MAX_STACK)
                item = op == 5 ? cJSON_CreateArray() : cJSON_CreateObject();
            break;
        case 7: /* a run of nested arrays, to reach the depth limit */
            for (unsigned k = next_byte(&r) * 4; k && depth < MAX_STACK;
                 k--) {
                cJSON *a = cJSON_CreateArray();
                FUZZ_CHECK(a != NULL);
                cJSON_AddItemToArray(stack[depth - 1], a);
                stack[depth++] = a;
            }
            break;
        default:
            if (depth > 1)
                depth--;
            break;
        }
        if (depth > max_depth)
            max_depth = depth;
        if (!item)
            continue;
        cJSON *parent = stack[depth - 1];
        if (cJSON_IsObject(parent)) {
            n = next_bytes(&r, 16, &bytes);
            all_utf8 &= is_utf8(bytes, n);
            FUZZ_CHECK(genauth_json_object_add(parent, (const char *)bytes,
                                               n, item) == 0);
        } else {
            cJSON_AddItemToArray(parent, item);
        }
        if (cJSON_IsArray(item) || cJSON_IsObject(item))
            stack[depth++] = item;
        if (depth > max_depth)
            max_depth = depth;
    }
    if (depth > max_depth)
        max_depth = depth;

    genauth_buf_init(&out);
    genauth_buf_init(&js);
    genauth_error_init(&err);
    FUZZ_CHECK(genauth_buf_append(&out, "x", 1) == 0); /* a prefix to keep */
    int rc = genauth_json_write(stack[0], &out);
    if (rc != 0) {
        /* Only nesting past the limit is refused; the buffer is as it was. */
        FUZZ_CHECK(max_depth > CJSON_NESTING_LIMIT);
        FUZZ_CHECK(out.len == 1 && out.data[0] == 'x' && out.data[1] == '\0');
    } else if (!all_utf8) {
        /* The exact form sends string bytes as they are (the binding only
         * ever gives it UTF-8); the reader refuses what is not UTF-8, as
         * json.loads does. */
        genauth_json_doc *doc = NULL;
        FUZZ_CHECK(genauth_json_doc_parse(out.data + 1, out.len - 1, &doc,
                                          &err) == GENAUTH_E_DECODE);
        genauth_error_clear(&err);
    } else {
        genauth_buf text = {out.data + 1, out.len - 1, out.cap - 1};
        genauth_json_doc *doc = NULL;
        fuzz_check_fixed_point(&text);
        FUZZ_CHECK(genauth_json_doc_parse(text.data, text.len, &doc, &err) ==
                   GENAUTH_OK);
        cJSON *back = fuzz_rebuild_doc(doc);
        check_same_document(stack[0], back);
        cJSON_Delete(back);
        genauth_json_doc_free(doc);
    }
    genauth_status st =
        genauth_json_write_form(stack[0], GENAUTH_JSON_JS, &js, &err);
    FUZZ_CHECK(st == GENAUTH_OK || st == GENAUTH_E_INVALID);
    if (st == GENAUTH_OK) {
        genauth_json_doc *doc = NULL;
        FUZZ_CHECK(genauth_json_doc_parse(js.data, js.len, &doc, &err)
                   == GENAUTH_OK);
        genauth_json_doc_free(doc);
    }
    check_scalars(stack[0]->child);
    genauth_buf_clear(&out);
    genauth_buf_clear(&js);
    genauth_error_clear(&err);
    cJSON_Delete(stack[0]);
    return 0;
}
