/* Exact JSON on top of cJSON: a compact printer that understands raw number
 * literals and escaped keys, and a parser that keeps what cJSON drops
 * (number literals, strings holding U+0000). See json.h. */
#include "json.h"
#include "jsontext.h"
#include "wipe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

/* ---- building (out) ----------------------------------------------------- */

/* A bare node of `type` whose valuestring is a cJSON-owned copy of `len`
 * bytes. Memory comes from cJSON_malloc so that cJSON_Delete, which the
 * caller uses to free the node, releases it with the matching allocator. */
static cJSON *
genauth_json_node_with_text(int type, const char *s, size_t len)
{
    cJSON *node = NULL;
    char *copy = NULL;

    if (len == (size_t)-1)
        goto fail;
    copy = cJSON_malloc(len + 1);
    if (copy == NULL)
        goto fail;
    if (len)
        memcpy(copy, s, len);
    copy[len] = '\0';
    node = cJSON_CreateNull();
    if (node == NULL)
        goto fail;
    node->type = type;
    node->valuestring = copy;
    return node;

fail:
    cJSON_free(copy);
    return NULL;
}

cJSON *
genauth_json_string_new(const char *s, size_t len)
{
    genauth_buf lit;
    cJSON *node = NULL;

    /* Without NUL, cJSON's own string node holds the text exactly. */
    if (len == 0 || memchr(s, '\0', len) == NULL)
        return genauth_json_node_with_text(cJSON_String, len ? s : "", len);

    /* cJSON strings end at NUL, so keep the escaped literal instead. */
    genauth_buf_init(&lit);
    if (genauth_json_write_string(s, len, &lit) < 0)
        goto done;
    node = genauth_json_node_with_text(cJSON_Raw, lit.data, lit.len);

done:
    genauth_buf_clear(&lit);
    return node;
}

cJSON *
genauth_json_number_new(const char *literal, size_t len)
{
    return genauth_json_node_with_text(cJSON_Raw, literal, len);
}

cJSON *
genauth_json_raw_new(const char *text, size_t len)
{
    return genauth_json_node_with_text(cJSON_Raw, text, len);
}

int
genauth_json_is_object(const cJSON *node)
{
    return cJSON_IsObject(node) ||
           (cJSON_IsRaw(node) && node->valuestring &&
            node->valuestring[0] == '{');
}

int
genauth_json_object_add_static(cJSON *object, const char *key, cJSON *item)
{
    if (object == NULL || item == NULL || object == item)
        return -1;
    if (item->string != NULL && !(item->type & cJSON_StringIsConst))
        cJSON_free(item->string);
    /* cJSON_StringIsConst: cJSON_Delete leaves the key alone. */
    item->string = (char *)key;
    item->type = (item->type & ~GENAUTH_JSON_KEY_ESCAPED) | cJSON_StringIsConst;
    return cJSON_AddItemToArray(object, item) ? 0 : -1;
}

int
genauth_json_object_add(cJSON *object, const char *key, size_t len,
                        cJSON *item)
{
    genauth_buf lit;
    char *copy = NULL;
    int escaped;
    int rc = -1;

    genauth_buf_init(&lit);
    if (object == NULL || item == NULL || object == item
        || len == (size_t)-1)
        goto done;
    escaped = len > 0 && memchr(key, '\0', len) != NULL;
    if (escaped) {
        /* cJSON keys end at NUL: store the escaped body, without quotes,
         * and flag it so the printer copies it verbatim. */
        if (genauth_json_write_string(key, len, &lit) < 0)
            goto done;
        key = lit.data + 1;
        len = lit.len - 2;
    }
    copy = cJSON_malloc(len + 1);
    if (copy == NULL)
        goto done;
    if (len)
        memcpy(copy, key, len);
    copy[len] = '\0';

    if (item->string != NULL && !(item->type & cJSON_StringIsConst))
        cJSON_free(item->string);
    item->string = copy;
    copy = NULL;
    item->type &= ~(cJSON_StringIsConst | GENAUTH_JSON_KEY_ESCAPED);
    if (escaped)
        item->type |= GENAUTH_JSON_KEY_ESCAPED;
    /* cJSON_AddItemToArray appends in O(1) through child->prev and, unlike
     * cJSON_AddItemToObject, does not copy the key a second time. It can
     * only fail on the arguments checked above. */
    if (!cJSON_AddItemToArray(object, item))
        goto done;
    rc = 0;

done:
    cJSON_free(copy);
    genauth_buf_clear(&lit);
    return rc;
}

/* ---- parsing (in) ------------------------------------------------------- */

/* One entry per number literal and per U+0000-bearing string, in document
 * order; the text lives in the doc's pool, each entry NUL-terminated. */
#define GENAUTH_JSON_SPAN_NUMBER ((size_t)-1)

/* A number literal this short is kept in its span, not in the pool: an
 * ordinary answer (statusCode, apiCode) then needs no pool at all. */
#define GENAUTH_JSON_SPAN_SMALL 24

typedef struct {
    size_t off;     /* into pool, unless the text is in `small` */
    size_t len;
    size_t ordinal; /* the string's ordinal, or GENAUTH_JSON_SPAN_NUMBER */
    int in_small;
    char small[GENAUTH_JSON_SPAN_SMALL];
} genauth_json_span;

/* Spans held in the doc itself: an ordinary answer allocates none. */
#define GENAUTH_JSON_INLINE_SPANS 8

struct genauth_json_doc {
    cJSON *root;
    genauth_json_span *spans; /* one growable table: numbers and strings */
    size_t nspans;
    size_t spans_cap;
    size_t nspecial; /* how many spans are strings (the rest: numbers) */
    genauth_buf pool;
    genauth_json_span inline_spans[GENAUTH_JSON_INLINE_SPANS];
};

static const char *
genauth_json_span_text(const genauth_json_doc *doc, const genauth_json_span *span)
{
    return span->in_small ? span->small : doc->pool.data + span->off;
}

void
genauth_json_doc_free(genauth_json_doc *doc)
{
    if (doc == NULL)
        return;
    genauth_buf_clear(&doc->pool);
    if (doc->spans != doc->inline_spans)
        free(doc->spans);
    cJSON_Delete(doc->root);
    free(doc);
}

static void
genauth_json_wipe_node(cJSON *node)
{
    for (; node; node = node->next) {
        if (node->string)
            genauth_wipe(node->string, strlen(node->string));
        if (node->valuestring)
            genauth_wipe(node->valuestring, strlen(node->valuestring));
        genauth_json_wipe_node(node->child);
    }
}

void
genauth_json_doc_wipe_free(genauth_json_doc *doc)
{
    if (doc == NULL)
        return;
    genauth_json_wipe_node(doc->root);
    genauth_buf_wipe_clear(&doc->pool);
    genauth_wipe(doc->spans, doc->nspans * sizeof(*doc->spans));
    genauth_json_doc_free(doc);
}

const cJSON *
genauth_json_doc_root(const genauth_json_doc *doc)
{
    return doc ? doc->root : NULL;
}

/* Reserves a span and room for `bytes` + 1 bytes of its text (in the span
 * itself when they fit there, else in the pool); returns the span (its off
 * set to the pool's end), or NULL when out of memory. */
static genauth_json_span *
genauth_json_doc_add_span(genauth_json_doc *doc, size_t bytes, size_t ordinal)
{
    genauth_json_span *span;
    int in_small = ordinal == GENAUTH_JSON_SPAN_NUMBER &&
                   bytes < GENAUTH_JSON_SPAN_SMALL;

    if (doc->nspans == doc->spans_cap) {
        size_t cap = doc->spans_cap * 2;
        genauth_json_span *grown;

        if (cap > (size_t)-1 / sizeof(*grown))
            return NULL;
        if (doc->spans == doc->inline_spans) {
            grown = malloc(cap * sizeof(*grown));
            if (grown != NULL)
                memcpy(grown, doc->spans, doc->nspans * sizeof(*grown));
        } else {
            grown = realloc(doc->spans, cap * sizeof(*grown));
        }
        if (grown == NULL)
            return NULL;
        doc->spans = grown;
        doc->spans_cap = cap;
    }
    if (!in_small && genauth_buf_reserve(&doc->pool, bytes + 1) < 0)
        return NULL;
    span = &doc->spans[doc->nspans++];
    span->off = doc->pool.len;
    span->len = 0;
    span->ordinal = ordinal;
    span->in_small = in_small;
    return span;
}

/* Decodes the body of a string literal already checked by the scan (and by
 * cJSON) into the pool. Decoding never grows the text, so `e - s` bytes
 * suffice. */
static int
genauth_json_record_string(genauth_json_doc *doc, const unsigned char *s,
                           const unsigned char *e, size_t ordinal)
{
    genauth_json_span *span;
    char *w;
    char *w0;

    span = genauth_json_doc_add_span(doc, (size_t)(e - s), ordinal);
    if (span == NULL)
        return -1;
    w0 = w = doc->pool.data + span->off;
    while (s < e) {
        uint32_t cp;

        if (*s != '\\') {
            *w++ = (char)*s++;
            continue;
        }
        /* The scan checked every escape: this one is valid. */
        s += genauth_json_unescape(s, (size_t)(e - s), &cp);
        w += genauth_utf8_encode(cp, w);
    }
    *w = '\0';
    span->len = (size_t)(w - w0);
    doc->pool.len += span->len + 1;
    doc->nspecial++;
    return 0;
}

static int
genauth_json_record_number(genauth_json_doc *doc, const unsigned char *s,
                           size_t len)
{
    genauth_json_span *span;

    span = genauth_json_doc_add_span(doc, len, GENAUTH_JSON_SPAN_NUMBER);
    if (span == NULL)
        return -1;
    char *w = span->in_small ? span->small : doc->pool.data + span->off;
    memcpy(w, s, len);
    w[len] = '\0';
    span->len = len;
    if (!span->in_small)
        doc->pool.len += len + 1;
    return 0;
}

static int
genauth_json_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* The end of the number literal at p under JSON's grammar, or NULL. cJSON
 * takes any run of [0-9+-.eE] strtod accepts ("01", "1.", "-.5"); Python's
 * json, like the RFC, does not. */
static const unsigned char *
genauth_json_scan_number(const unsigned char *p, const unsigned char *end)
{
    if (p < end && *p == '-')
        p++;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        while (p < end && genauth_json_is_digit(*p))
            p++;
    else
        return NULL;
    if (p < end && *p == '.') {
        p++;
        if (p == end || !genauth_json_is_digit(*p))
            return NULL;
        while (p < end && genauth_json_is_digit(*p))
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !genauth_json_is_digit(*p))
            return NULL;
        while (p < end && genauth_json_is_digit(*p))
            p++;
    }
    if (p < end
        && (genauth_json_is_digit(*p) || *p == '.' || *p == 'e' || *p == 'E'
            || *p == '+' || *p == '-'))
        return NULL;
    return p;
}

/* The end of the string literal whose opening quote is at p (pointing at the
 * closing quote), or NULL when it holds an unescaped control character, a
 * bad escape (cJSON reads "\u00zz" as U+0000) or bytes that are not UTF-8
 * (*why then says which). *special tells whether the string needs its exact
 * decoding kept: an escape decodes to U+0000 (cJSON cuts the string there)
 * or to a lone surrogate (cJSON refuses it; json.loads keeps it). */
static const unsigned char *
genauth_json_scan_string(const unsigned char *p, const unsigned char *end,
                         int *special, const char **why)
{
    uint32_t cp;
    size_t n;

    *special = 0;
    p++;
    for (;;) {
        while (p < end && genauth_json_stop_utf8[*p] == 0)
            p++;
        if (p < end && *p >= 0x80) {
            if ((n = genauth_utf8_decode(p, end, &cp)) == 0) {
                *why = ": a string that is not UTF-8";
                return NULL;
            }
            p += n;
            continue;
        }
        if (p == end || *p < 0x20)
            return NULL;
        if (*p == '"')
            return p;
        /* a backslash */
        if ((n = genauth_json_unescape(p, (size_t)(end - p), &cp)) == 0)
            return NULL;
        p += n;
        if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
            *special = 1; /* U+0000, or a lone surrogate */
    }
}

static int
genauth_json_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether the number literal [p, q) is an integer of more digits than
 * Python converts (sys.get_int_max_str_digits(), 4300 by default), which
 * json.loads refuses with a ValueError. */
static int
genauth_json_int_too_long(const unsigned char *p, const unsigned char *q)
{
    size_t digits = (size_t)(q - p) - (*p == '-');
    if (digits <= GENAUTH_JSON_MAX_INT_DIGITS)
        return 0;
    for (; p < q; p++)
        if (*p == '.' || *p == 'e' || *p == 'E')
            return 0;
    return 1;
}

/* The one linear pass over a text cJSON accepted (len: up to where cJSON
 * stopped): refuses what cJSON lets through but JSON (or Python) does not,
 * and records the number literals and the strings cJSON cannot hold exactly.
 * Returns the offset of the first offending byte (*why: ": what is wrong
 * there", or left as it was for plain invalid JSON), len when all is well, or
 * (size_t)-1 when out of memory. */
static size_t
genauth_json_scan(genauth_json_doc *doc, const unsigned char *text,
                  size_t len, const char **why)
{
    const unsigned char *p = text;
    const unsigned char *end = text + len;
    const unsigned char *q;
    size_t ordinal = 0;
    int special;

    if (len >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
        p += 3; /* cJSON skips a UTF-8 BOM, as json.loads(bytes) does */
    while (p < end) {
        switch (*p) {
        case ' ':
        case '\t':
        case '\n':
        case '\r':
        case ',':
        case ':':
        case '[':
        case ']':
        case '{':
        case '}':
            p++;
            break;
        case '"':
            q = genauth_json_scan_string(p, end, &special, why);
            if (q == NULL)
                goto bad;
            if (special
                && genauth_json_record_string(doc, p + 1, q, ordinal) < 0)
                return (size_t)-1;
            ordinal++;
            p = q + 1;
            break;
        case 't':
        case 'n':
            if (end - p < 4)
                goto bad;
            p += 4;
            break;
        case 'f':
            if (end - p < 5)
                goto bad;
            p += 5;
            break;
        default:
            q = genauth_json_scan_number(p, end);
            if (q == NULL)
                goto bad;
            if (genauth_json_int_too_long(p, q)) {
                *why = ": an integer of more than "
                       GENAUTH_JSON_MAX_INT_DIGITS_TEXT " digits";
                goto bad;
            }
            if (genauth_json_record_number(doc, p, (size_t)(q - p)) < 0)
                return (size_t)-1;
            p = q;
            break;
        }
    }
    return len;

bad:
    return (size_t)(p - text);
}

/* After cJSON refused the text: whether it did so at an opening bracket
 * nested deeper than its limit. Brackets inside strings do not count. */
static int
genauth_json_too_deep(const unsigned char *text, size_t len, size_t err_at)
{
    size_t i;
    size_t depth = 0;

    for (i = 0; i < len && i <= err_at; i++) {
        unsigned char c = text[i];

        if (c == '"') {
            for (i++; i < len && text[i] != '"'; i++)
                if (text[i] == '\\')
                    i++;
        }
        else if (c == '[' || c == '{') {
            if (++depth > CJSON_NESTING_LIMIT)
                return i == err_at;
        }
        else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

/* What cJSON refuses although Python's json reads it: number literals
 * longer than 63 characters (cJSON releases after 1.7.15) and lone
 * surrogate escapes ("\ud83d", what JavaScript emits for a cut emoji). A
 * copy of the text with each such literal blanked to "0" and spaces, and
 * each lone surrogate escape turned into "\ufffd", has the same shape at
 * the same offsets; the scan then reads the exact literals and strings from
 * the original text. Returns the copy (the caller frees it), or NULL when
 * there is nothing to change or memory ran out. */
static char *
genauth_json_cjson_copy(const unsigned char *u, size_t len)
{
    char *copy = NULL;
    int in_string = 0;
    uint32_t cp, lo;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = u[i];
        size_t blank_from = 0, blank_to = 0;
        if (in_string) {
            if (ch == '"') {
                in_string = 0;
                continue;
            }
            if (ch != '\\')
                continue;
            if (i + 5 >= len || u[i + 1] != 'u' ||
                genauth_json_hex4(u + i + 2, &cp) < 0) {
                i++;
                continue;
            }
            if (cp >= 0xD800 && cp <= 0xDBFF && i + 11 < len &&
                u[i + 6] == '\\' && u[i + 7] == 'u' &&
                genauth_json_hex4(u + i + 8, &lo) == 0 && lo >= 0xDC00 &&
                lo <= 0xDFFF) {
                i += 11; /* a pair: cJSON reads it */
                continue;
            }
            if (cp < 0xD800 || cp > 0xDFFF) {
                i += 5;
                continue;
            }
            blank_from = i + 2; /* the hex digits of a lone surrogate */
            blank_to = i + 6;
            i += 5;
        } else if (ch == '"') {
            in_string = 1;
            continue;
        } else if (ch == '-' || (ch >= '0' && ch <= '9')) {
            size_t end = i;
            while (end < len && ((u[end] >= '0' && u[end] <= '9') ||
                                 u[end] == '-' || u[end] == '+' ||
                                 u[end] == '.' || u[end] == 'e' ||
                                 u[end] == 'E'))
                end++;
            if (end - i > 63) {
                blank_from = i;
                blank_to = end;
            }
            i = end - 1;
        } else {
            continue;
        }
        if (blank_to == 0)
            continue;
        if (!copy) {
            copy = malloc(len);
            if (!copy)
                return NULL;
            memcpy(copy, u, len);
        }
        if (u[blank_from] == '-' || (u[blank_from] >= '0' && u[blank_from] <= '9')) {
            copy[blank_from] = '0';
            memset(copy + blank_from + 1, ' ', blank_to - blank_from - 1);
        } else {
            memcpy(copy + blank_from, "fffd", 4);
        }
    }
    return copy;
}

genauth_status
genauth_json_doc_parse(const char *text, size_t len, genauth_json_doc **out,
                       genauth_error *err)
{
    genauth_json_doc *doc = NULL;
    const char *parse_end = NULL;
    const unsigned char *u = (const unsigned char *)text;
    size_t stop, at, i;
    genauth_status status;
    const char *why = "";

    *out = NULL;
    if (len == 0) {
        status = genauth_error_set(err, GENAUTH_E_DECODE,
                                   "invalid JSON: empty body");
        goto fail;
    }
    if (text == NULL) {
        status = genauth_error_set(err, GENAUTH_E_INVALID,
                                   "JSON text is NULL");
        goto fail;
    }
    /* The inline spans are written before they are read: only the rest is
     * zeroed. */
    doc = malloc(sizeof(*doc));
    if (doc != NULL)
        memset(doc, 0, offsetof(genauth_json_doc, inline_spans));
    if (doc == NULL)
        goto nomem;
    genauth_buf_init(&doc->pool);
    doc->spans = doc->inline_spans;
    doc->spans_cap = GENAUTH_JSON_INLINE_SPANS;

    /* With an explicit length cJSON reads no further than len, so the text
     * needs no NUL-terminated copy; the trailing bytes are checked below. */
    doc->root = cJSON_ParseWithLengthOpts(text, len, &parse_end, 0);
    if (doc->root == NULL) {
        char *blanked = genauth_json_cjson_copy(u, len);
        if (blanked) {
            doc->root = cJSON_ParseWithLengthOpts(blanked, len, &parse_end, 0);
            parse_end = parse_end ? text + (parse_end - blanked) : NULL;
            free(blanked);
        }
    }
    if (doc->root == NULL) {
        at = parse_end ? (size_t)(parse_end - text) : 0;
        if (genauth_json_too_deep(u, len, at))
            status = genauth_error_set(err, GENAUTH_E_DECODE,
                                       "JSON nested deeper than %d levels",
                                       CJSON_NESTING_LIMIT);
        else
            status = genauth_error_set(err, GENAUTH_E_DECODE,
                                       "invalid JSON at byte %zu", at);
        goto fail;
    }
    stop = (size_t)(parse_end - text);
    at = genauth_json_scan(doc, u, stop, &why);
    if (at == (size_t)-1)
        goto nomem;
    if (at == stop) {
        /* cJSON skips any byte <= ' ' as white space, JSON only four. */
        for (i = stop; i < len && genauth_json_is_space(u[i]); i++)
            ;
        at = i;
    }
    if (at != len) {
        status = genauth_error_set(err, GENAUTH_E_DECODE,
                                   "invalid JSON at byte %zu%s", at, why);
        goto fail;
    }
    *out = doc;
    return GENAUTH_OK;

nomem:
    status = genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
fail:
    genauth_json_doc_free(doc);
    return status;
}

/* ---- the cursor --------------------------------------------------------- */

void
genauth_json_cursor_init(genauth_json_cursor *c, const genauth_json_doc *doc)
{
    c->doc = doc;
    c->next_number = 0;
    c->next_string = 0;
    c->next_special = 0;
}

void
genauth_json_cursor_number(genauth_json_cursor *c, const char **lit,
                           size_t *len)
{
    const genauth_json_doc *doc = c->doc;
    size_t i = c->next_number;

    /* Both indexes only move forward over the one table, so a whole walk
     * costs O(spans). */
    while (i < doc->nspans && doc->spans[i].ordinal != GENAUTH_JSON_SPAN_NUMBER)
        i++;
    if (i == doc->nspans) {
        /* More number nodes than literals: the caller walked another tree. */
        c->next_number = i;
        *lit = NULL;
        *len = 0;
        return;
    }
    *lit = genauth_json_span_text(doc, &doc->spans[i]);
    *len = doc->spans[i].len;
    c->next_number = i + 1;
}

void
genauth_json_cursor_string(genauth_json_cursor *c, const char *cjson_str,
                           const char **s, size_t *len)
{
    const genauth_json_doc *doc = c->doc;
    size_t ordinal = c->next_string++;
    size_t i;

    if (doc->nspecial > 0) {
        i = c->next_special;
        while (i < doc->nspans
               && (doc->spans[i].ordinal == GENAUTH_JSON_SPAN_NUMBER
                   || doc->spans[i].ordinal < ordinal))
            i++;
        c->next_special = i;
        if (i < doc->nspans && doc->spans[i].ordinal == ordinal) {
            *s = genauth_json_span_text(doc, &doc->spans[i]);
            *len = doc->spans[i].len;
            c->next_special = i + 1;
            return;
        }
    }
    if (cjson_str == NULL)
        cjson_str = "";
    *s = cjson_str;
    *len = strlen(cjson_str);
}

/* ---- searching ---------------------------------------------------------- */

static int
genauth_json_node_contains(const cJSON *node, genauth_json_cursor *c,
                           const char *needle, size_t len)
{
    const char *s;
    size_t n;

    for (; node; node = node->next) {
        if (node->string) {
            genauth_json_cursor_string(c, node->string, &s, &n);
            if (memmem(s, n, needle, len))
                return 1;
        }
        if (cJSON_IsString(node)) {
            genauth_json_cursor_string(c, node->valuestring, &s, &n);
            if (memmem(s, n, needle, len))
                return 1;
        } else if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
            if (genauth_json_node_contains(node->child, c, needle, len))
                return 1;
        }
    }
    return 0;
}

int
genauth_json_doc_contains(const genauth_json_doc *doc, const char *needle,
                          size_t len)
{
    genauth_json_cursor c;
    const cJSON *root = genauth_json_doc_root(doc);

    genauth_json_cursor_init(&c, doc);
    if (cJSON_IsString(root)) {
        const char *s;
        size_t n;
        genauth_json_cursor_string(&c, root->valuestring, &s, &n);
        return memmem(s, n, needle, len) != NULL;
    }
    return genauth_json_node_contains(root ? root->child : NULL, &c, needle,
                                      len);
}
