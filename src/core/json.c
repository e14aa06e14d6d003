/* Exact JSON with cJSON trees: nodes for the writer that keep raw number
 * literals and escaped keys, and a strict one-pass parser that builds the
 * tree in an arena and keeps what a cJSON node drops (number literals,
 * strings holding U+0000 or lone surrogates). See json.h. */
#include "json.h"
#include "jsform.h"
#include "jsontext.h"
#include "stack.h"
#include "wipe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
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

/* Spans and arena held in the doc itself: an ordinary answer (a dozen
 * nodes, a couple of numbers) needs no other allocation, and the doc stays
 * under 1 KiB, which malloc serves from its per-thread cache. */
#define GENAUTH_JSON_INLINE_SPANS 4
#define GENAUTH_JSON_INLINE_ARENA 640

struct genauth_json_block;

struct genauth_json_doc {
    cJSON *root; /* in the arena: never given to cJSON_Delete */
    genauth_json_span *spans; /* one growable table: numbers and strings */
    size_t nspans;
    size_t spans_cap;
    size_t nspecial; /* how many spans are strings (the rest: numbers) */
    genauth_buf pool;
    struct genauth_json_block *blocks; /* the arena beyond arena0 */
    size_t arena0_used;
    /* Not zeroed when the doc is made: written before read. */
    genauth_json_span inline_spans[GENAUTH_JSON_INLINE_SPANS];
    max_align_t arena0[GENAUTH_JSON_INLINE_ARENA / sizeof(max_align_t)];
};

static void genauth_json_arena_free(genauth_json_doc *doc, int wipe);

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
    genauth_json_arena_free(doc, 0);
    free(doc);
}

void
genauth_json_doc_wipe_free(genauth_json_doc *doc)
{
    if (doc == NULL)
        return;
    genauth_json_arena_free(doc, 1); /* every node, key and string */
    genauth_buf_wipe_clear(&doc->pool);
    /* Spans moved to the heap leave their first copies inline. */
    genauth_wipe(doc->inline_spans, sizeof(doc->inline_spans));
    genauth_wipe(doc->spans, doc->nspans * sizeof(*doc->spans));
    genauth_json_doc_free(doc);
}

const cJSON *
genauth_json_doc_root(const genauth_json_doc *doc)
{
    return doc ? doc->root : NULL;
}

const cJSON *
genauth_json_member(const cJSON *object, const char *key)
{
    const cJSON *found = NULL;

    if (!cJSON_IsObject(object))
        return NULL;
    /* Every member is looked at: the last of a repeated key is the one. */
    for (const cJSON *m = object->child; m; m = m->next) {
        if (m->string && strcmp(m->string, key) == 0)
            found = m;
    }
    return found;
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

/* Decodes the body of a string literal already checked by
 * genauth_json_scan_string into the pool. Decoding never grows the text, so `e - s` bytes
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
        /* Four bytes a step while none stops the run: most strings. */
        while (end - p >= 4 &&
               (genauth_json_stop_utf8[p[0]] | genauth_json_stop_utf8[p[1]] |
                genauth_json_stop_utf8[p[2]] | genauth_json_stop_utf8[p[3]]) == 0)
            p += 4;
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

/* ---- the parser ---------------------------------------------------------
 *
 * One pass over the text, as strict as json.loads: it checks the grammar,
 * builds the cJSON tree in the doc's arena (one block for an ordinary
 * answer, freed with the doc: no allocation per node or string) and records
 * the number literals and the strings a cJSON node cannot hold exactly. */

/* Arena blocks after the one inside the doc. */
typedef struct genauth_json_block {
    struct genauth_json_block *next;
    size_t cap, used;
    max_align_t data[];
} genauth_json_block;

static void *
genauth_json_arena_alloc(genauth_json_doc *doc, size_t size)
{
    genauth_json_block *b;
    size = (size + 7) & ~(size_t)7;
    if (size <= sizeof(doc->arena0) - doc->arena0_used) {
        void *at = (char *)doc->arena0 + doc->arena0_used;
        doc->arena0_used += size;
        return at;
    }
    b = doc->blocks;
    if (b == NULL || size > b->cap - b->used) {
        size_t cap = b ? b->cap * 2 : 4 * sizeof(doc->arena0);
        if (cap < size)
            cap = size;
        if (cap > ((size_t)-1 - sizeof(*b)) / 2)
            return NULL;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->cap = cap;
        b->used = 0;
        b->next = doc->blocks;
        doc->blocks = b;
    }
    b->used += size;
    return (char *)b->data + b->used - size;
}

static void
genauth_json_arena_free(genauth_json_doc *doc, int wipe)
{
    genauth_json_block *b = doc->blocks, *next;
    if (wipe)
        genauth_wipe(doc->arena0, doc->arena0_used);
    for (; b; b = next) {
        next = b->next;
        if (wipe)
            genauth_wipe(b->data, b->used);
        free(b);
    }
    doc->blocks = NULL;
}

typedef struct {
    genauth_json_doc *doc;
    const unsigned char *text, *p, *end;
    const char *why;  /* ": what is wrong", or "" */
    size_t ordinal;   /* strings so far, keys included, in document order */
    const char *cut;  /* the last string decoded that U+0000 cut, or NULL */
    int too_deep;
    int nomem;
} genauth_json_parser;

static void
genauth_json_skip_space(genauth_json_parser *ps)
{
    const unsigned char *p = ps->p;
    while (p < ps->end && genauth_json_is_space(*p))
        p++;
    ps->p = p;
}

static cJSON *
genauth_json_new_node(genauth_json_parser *ps, int type)
{
    cJSON *node = genauth_json_arena_alloc(ps->doc, sizeof(*node));
    if (node == NULL) {
        ps->nomem = 1;
        return NULL;
    }
    memset(node, 0, sizeof(*node));
    node->type = type;
    return node;
}

/* The string literal at ps->p (its opening quote): checked, recorded when
 * special, and decoded into the arena as cJSON would hold it (U+0000 ends
 * the C string, and the string is then ps->cut; a lone surrogate, which
 * cJSON refuses, reads U+FFFD: the exact text comes from the record). NULL
 * on error. */
static char *
genauth_json_parse_string(genauth_json_parser *ps)
{
    const unsigned char *p = ps->p, *q, *s;
    int special;
    char *out, *w;

    q = genauth_json_scan_string(p, ps->end, &special, &ps->why);
    if (q == NULL)
        return NULL;
    if (special && genauth_json_record_string(ps->doc, p + 1, q,
                                              ps->ordinal) < 0) {
        ps->nomem = 1;
        return NULL;
    }
    ps->ordinal++;
    /* Decoding never makes the text longer. */
    out = w = genauth_json_arena_alloc(ps->doc, (size_t)(q - p));
    if (out == NULL) {
        ps->nomem = 1;
        return NULL;
    }
    for (s = p + 1; s < q;) {
        const unsigned char *bs = memchr(s, '\\', (size_t)(q - s));
        size_t run = (size_t)((bs ? bs : q) - s);
        uint32_t cp;
        memcpy(w, s, run);
        w += run;
        s += run;
        if (s == q)
            break;
        s += genauth_json_unescape(s, (size_t)(q - s), &cp);
        if (cp >= 0xD800 && cp <= 0xDFFF)
            cp = 0xFFFD;
        else if (cp == 0)
            ps->cut = out;
        w += genauth_utf8_encode(cp, w);
    }
    *w = '\0';
    ps->p = q + 1;
    return out;
}

/* The number literal at ps->p: checked, recorded, and its value as cJSON
 * gives it (valueint saturated to int). 0, or -1 on error. */
static int
genauth_json_parse_number(genauth_json_parser *ps, cJSON *node)
{
    const unsigned char *p = ps->p;
    const unsigned char *q = genauth_json_scan_number(p, ps->end);
    genauth_json_span *span;
    double v = 0;
    size_t i, len;
    int plain = 1;

    if (q == NULL)
        return -1;
    len = (size_t)(q - p);
    if (genauth_json_int_too_long(p, q)) {
        ps->why = ": an integer of more than "
                  GENAUTH_JSON_MAX_INT_DIGITS_TEXT " digits";
        return -1;
    }
    if (genauth_json_record_number(ps->doc, p, len) < 0) {
        ps->nomem = 1;
        return -1;
    }
    /* Up to 15 digits an integer is exact as a double: most numbers. */
    for (i = *p == '-'; i < len && plain; i++) {
        plain = len - (*p == '-') <= 15 && genauth_json_is_digit(p[i]);
        v = v * 10 + (p[i] - '0');
    }
    if (!plain) {
        span = &ps->doc->spans[ps->doc->nspans - 1];
        v = genauth_jsform_strtod(genauth_json_span_text(ps->doc, span));
    } else if (*p == '-') {
        v = -v;
    }
    node->valuedouble = v;
    node->valueint = v >= INT_MAX   ? INT_MAX
                     : v <= INT_MIN ? INT_MIN
                                    : (int)v;
    ps->p = q;
    return 0;
}

/* A scalar or an opening bracket at ps->p, as a new node (a container
 * still empty). NULL on error. */
static cJSON *
genauth_json_parse_value(genauth_json_parser *ps)
{
    static const struct {
        const char *word;
        size_t len;
        int type;
    } words[] = {{"true", 4, cJSON_True},
                 {"false", 5, cJSON_False},
                 {"null", 4, cJSON_NULL}};
    const unsigned char *p = ps->p;
    cJSON *node;

    if (p == ps->end)
        return NULL;
    switch (*p) {
    case '{':
    case '[':
        node = genauth_json_new_node(ps, *p == '{' ? cJSON_Object
                                                   : cJSON_Array);
        if (node)
            ps->p = p + 1;
        return node;
    case '"':
        node = genauth_json_new_node(ps, cJSON_String);
        if (node && !(node->valuestring = genauth_json_parse_string(ps)))
            return NULL;
        if (node && node->valuestring == ps->cut)
            node->type |= GENAUTH_JSON_STRING_HAS_NUL;
        return node;
    case 't':
    case 'f':
    case 'n':
        for (size_t i = 0; i < 3; i++) {
            if (*p == words[i].word[0] &&
                (size_t)(ps->end - p) >= words[i].len &&
                memcmp(p, words[i].word, words[i].len) == 0) {
                node = genauth_json_new_node(ps, words[i].type);
                if (node) {
                    node->valueint = words[i].type == cJSON_True;
                    ps->p = p + words[i].len;
                }
                return node;
            }
        }
        return NULL;
    default:
        node = genauth_json_new_node(ps, cJSON_Number);
        if (node && genauth_json_parse_number(ps, node) < 0)
            return NULL;
        return node;
    }
}

/* Appends `child` to `parent` the way cJSON links children: the first
 * child's prev is the last one. */
static void
genauth_json_link(cJSON *parent, cJSON *child)
{
    cJSON *first = parent->child;
    if (first == NULL) {
        parent->child = child;
        child->prev = child;
    } else {
        first->prev->next = child;
        child->prev = first->prev;
        first->prev = child;
    }
}

/* The whole text as a tree; NULL on error (ps->p at the offending byte,
 * ps->too_deep or ps->nomem saying why when that is the reason). Loops
 * with a stack of open containers rather than recursing. */
static cJSON *
genauth_json_parse_text(genauth_json_parser *ps)
{
    cJSON *open[CJSON_NESTING_LIMIT];
    int depth = 0;
    cJSON *root = NULL, *node, *top;
    char *key = NULL;

    genauth_json_skip_space(ps);
    for (;;) {
        /* A value is expected here (after a key's ':', a ',' in an array,
         * an opening '[', or at the top). */
        node = genauth_json_parse_value(ps);
        if (node == NULL)
            return NULL;
        if (depth == 0)
            root = node;
        else
            genauth_json_link(open[depth - 1], node);
        node->string = key;
        key = NULL;
        if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
            /* cJSON's limit, which the writer and cJSON readers share. */
            if (depth == CJSON_NESTING_LIMIT) {
                ps->too_deep = 1;
                return NULL;
            }
            open[depth++] = node;
            genauth_json_skip_space(ps);
            if (ps->p < ps->end &&
                *ps->p == (cJSON_IsObject(node) ? '}' : ']')) {
                ps->p++;
                depth--;
            } else if (cJSON_IsObject(node)) {
                goto member;
            } else {
                continue;
            }
        }
        /* After a value: ',' or the end of its container. */
        for (;;) {
            genauth_json_skip_space(ps);
            if (depth == 0)
                return root;
            top = open[depth - 1];
            if (ps->p == ps->end)
                return NULL;
            if (*ps->p == ',') {
                ps->p++;
                genauth_json_skip_space(ps);
                if (cJSON_IsObject(top))
                    goto member;
                break;
            }
            if (*ps->p != (cJSON_IsObject(top) ? '}' : ']'))
                return NULL;
            ps->p++;
            depth--;
        }
        continue;
    member:
        /* A key, then ':' (spaces skipped before the key already). */
        if (ps->p == ps->end || *ps->p != '"' ||
            (key = genauth_json_parse_string(ps)) == NULL)
            return NULL;
        genauth_json_skip_space(ps);
        if (ps->p == ps->end || *ps->p != ':')
            return NULL;
        ps->p++;
        genauth_json_skip_space(ps);
    }
}

genauth_status
genauth_json_doc_parse(const char *text, size_t len, genauth_json_doc **out,
                       genauth_error *err)
{
    genauth_json_doc *doc = NULL;
    genauth_json_parser ps;
    genauth_status status;

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
    /* The inline spans and arena are written before they are read: only
     * the rest is zeroed. */
    doc = malloc(sizeof(*doc));
    if (doc == NULL)
        goto nomem;
    memset(doc, 0, offsetof(genauth_json_doc, inline_spans));
    genauth_buf_init(&doc->pool);
    doc->spans = doc->inline_spans;
    doc->spans_cap = GENAUTH_JSON_INLINE_SPANS;

    memset(&ps, 0, sizeof(ps));
    ps.doc = doc;
    ps.text = ps.p = (const unsigned char *)text;
    ps.end = ps.text + len;
    ps.why = "";
    if (len >= 3 && ps.p[0] == 0xEF && ps.p[1] == 0xBB && ps.p[2] == 0xBF)
        ps.p += 3; /* a UTF-8 BOM, which json.loads(bytes) skips too */
    doc->root = genauth_json_parse_text(&ps);
    if (ps.nomem)
        goto nomem;
    if (ps.too_deep) {
        status = genauth_error_set(err, GENAUTH_E_DECODE,
                                   "JSON nested deeper than %d levels",
                                   CJSON_NESTING_LIMIT);
        goto fail;
    }
    if (doc->root == NULL || ps.p != ps.end) {
        status = genauth_error_set(err, GENAUTH_E_DECODE,
                                   "invalid JSON at byte %zu%s",
                                   (size_t)(ps.p - ps.text), ps.why);
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

/* How many times over a string's JSON escapes are decoded in looking for a
 * secret it may quote. */
#define GENAUTH_JSON_QUOTE_DEPTH 4

/* Whether the decoded string s[0, n) holds the needle, as it is or once
 * its JSON escapes are decoded again, and again: a string that quotes JSON
 * text (a refusal whose message echoes the request's body, as validation
 * errors do) holds the needle as that text wrote it: '"' as \", '\' as
 * \\, and, from a writer that escapes them, non-ASCII as \uXXXX or '/' as
 * \/. A backslash that starts no valid escape stays as it is. 1: found, 0: not;
 * without memory to look, 1: a secret is hidden rather than shown
 * unsearched. */
static int
genauth_json_text_contains(const char *s, size_t n, const char *needle,
                           size_t len)
{
    char *copy = NULL;
    size_t size = n;
    int found = memmem(s, n, needle, len) != NULL;

    /* A pass per level of quoting, up to a depth no honest echo reaches:
     * a pass may decode as little as one escape ("\\u005cu005c..." loses
     * one per pass), and a hostile answer must not buy a pass per escape
     * over megabytes of text. */
    for (int pass = 0; !found && pass < GENAUTH_JSON_QUOTE_DEPTH &&
                       memchr(s, '\\', n);
         pass++) {
        char *w;
        const unsigned char *p = (const unsigned char *)s,
                            *end = (const unsigned char *)s + n;
        if (!copy && !(copy = malloc(n + 1)))
            return 1;
        for (w = copy; p < end;) {
            uint32_t cp;
            size_t used = *p == '\\' ? genauth_json_unescape(p, (size_t)(end - p),
                                                             &cp)
                                      : 0;
            if (used) {
                w += genauth_utf8_encode(cp, w);
                p += used;
            } else {
                *w++ = (char)*p++;
            }
        }
        if ((size_t)(w - copy) == n)
            break; /* no escape decoded: nothing new to find */
        n = (size_t)(w - copy);
        s = copy; /* decoded in place from here on: never longer */
        found = memmem(s, n, needle, len) != NULL;
    }
    if (copy) {
        genauth_wipe(copy, size); /* it may hold the needle: a secret */
        free(copy);
    }
    return found;
}

/* 1: found, 0: not, -1: nested deeper than the stack allows to search. */
static int
genauth_json_node_contains(const cJSON *node, genauth_json_cursor *c,
                           const char *needle, size_t len,
                           uintptr_t stack_floor)
{
    const char *s;
    size_t n;
    int rc;

    if (genauth_stack_short(stack_floor))
        return -1;
    for (; node; node = node->next) {
        if (node->string) {
            genauth_json_cursor_string(c, node->string, &s, &n);
            if (genauth_json_text_contains(s, n, needle, len))
                return 1;
        }
        if (cJSON_IsString(node)) {
            genauth_json_cursor_string(c, node->valuestring, &s, &n);
            if (genauth_json_text_contains(s, n, needle, len))
                return 1;
        } else if (cJSON_IsObject(node) || cJSON_IsArray(node)) {
            rc = genauth_json_node_contains(node->child, c, needle, len,
                                            stack_floor);
            if (rc != 0)
                return rc;
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
        return genauth_json_text_contains(s, n, needle, len);
    }
    return genauth_json_node_contains(root ? root->child : NULL, &c, needle,
                                      len, genauth_stack_floor());
}
