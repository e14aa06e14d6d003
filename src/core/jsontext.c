/* JSON string text: the UTF-8 walker, escapes, and the one escaper. See
 * jsontext.h. */
#include "jsontext.h"

#include <string.h>

/* The control characters' column of both tables below. */
#define GENAUTH_JSON_CONTROLS                                                \
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',                                  \
    'b', 't', 'n', 'u', 'f', 'r', 'u', 'u',                                  \
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',                                  \
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u'
#define GENAUTH_JSON_8 1, 1, 1, 1, 1, 1, 1, 1
#define GENAUTH_JSON_64                                                      \
    GENAUTH_JSON_8, GENAUTH_JSON_8, GENAUTH_JSON_8, GENAUTH_JSON_8,          \
    GENAUTH_JSON_8, GENAUTH_JSON_8, GENAUTH_JSON_8, GENAUTH_JSON_8

/* For each byte: 0 when a JSON string may hold it as is; otherwise the
 * character that follows the backslash when writing it ('u' meaning
 * \u00xx). Without a UTF-8 check (the exact form) this is also where a run
 * of plain bytes stops. */
static const unsigned char genauth_json_escape[256] = {
    GENAUTH_JSON_CONTROLS,
    ['"'] = '"',
    ['\\'] = '\\',
};

const unsigned char genauth_json_stop_utf8[256] = {
    GENAUTH_JSON_CONTROLS,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80] = GENAUTH_JSON_64, GENAUTH_JSON_64,
};

static const char genauth_json_hex[] = "0123456789abcdef";

int
genauth_json_hex4(const unsigned char *p, uint32_t *v)
{
    uint32_t acc = 0;

    for (int i = 0; i < 4; i++) {
        unsigned c = p[i];
        acc <<= 4;
        if (c >= '0' && c <= '9')
            acc |= c - '0';
        else if (c >= 'a' && c <= 'f')
            acc |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            acc |= c - 'A' + 10;
        else
            return -1;
    }
    *v = acc;
    return 0;
}

size_t
genauth_utf8_decode(const unsigned char *p, const unsigned char *end,
                    uint32_t *cp)
{
    size_t avail = (size_t)(end - p);
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xBF; /* the second byte's range */
    size_t n, i;
    uint32_t v;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
        if (c == 0xE0)
            lo = 0xA0; /* overlong */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
        if (c == 0xF0)
            lo = 0x90; /* overlong */
        else if (c == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    v = (v << 6) | (p[1] & 0x3F);
    for (i = 2; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (p[i] & 0x3F);
    }
    *cp = v;
    return n;
}

size_t
genauth_utf8_encode(uint32_t cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | (cp >> 6));
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | (cp >> 12));
        buf[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | (cp >> 18));
    buf[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

genauth_status
genauth_json_text_literal(genauth_json_text *t, const char *lit,
                          genauth_error *err)
{
    size_t len = strlen(lit);
    genauth_status st = GENAUTH_OK;

    if (len < 2 || lit[len - 1] != '"')
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "a raw string literal is not valid JSON");
    else
        genauth_json_text_init(t, lit + 1, len - 2, 1);
    return st;
}

size_t
genauth_json_unescape(const unsigned char *p, size_t avail, uint32_t *cp)
{
    uint32_t lo;

    if (avail < 2)
        return 0;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
        *cp = p[1];
        return 2;
    case 'b':
        *cp = '\b';
        return 2;
    case 'f':
        *cp = '\f';
        return 2;
    case 'n':
        *cp = '\n';
        return 2;
    case 'r':
        *cp = '\r';
        return 2;
    case 't':
        *cp = '\t';
        return 2;
    case 'u':
        if (avail < 6 || genauth_json_hex4(p + 2, cp) < 0)
            return 0;
        if (*cp >= 0xD800 && *cp <= 0xDBFF && avail >= 12 && p[6] == '\\'
            && p[7] == 'u' && genauth_json_hex4(p + 8, &lo) == 0
            && lo >= 0xDC00 && lo <= 0xDFFF) {
            *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
            return 12;
        }
        return 6;
    default:
        return 0;
    }
}

int
genauth_json_text_next(genauth_json_text *t, uint32_t *cp, int *esc)
{
    const unsigned char *p = t->p;
    size_t n;

    if (p == t->end)
        return 0;
    *esc = 0;
    if (t->escaped) {
        if (*p == '\\') {
            n = genauth_json_unescape(p, (size_t)(t->end - p), cp);
            if (!n)
                return -1;
            *esc = 1;
            t->p = p + n;
            return 1;
        }
        /* JSON.parse refuses raw control characters and a bare quote would
         * end the literal early. */
        if (*p < 0x20 || *p == '"')
            return -1;
    }
    n = genauth_utf8_decode(p, t->end, cp);
    if (!n || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return -1;
    t->p = p + n;
    return 1;
}

genauth_status
genauth_json_text_malformed(const genauth_json_text *t, genauth_error *err)
{
    if (t->escaped)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "a raw string literal or escaped key is not "
                                 "valid JSON string content");
    return genauth_error_set(
        err, GENAUTH_E_INVALID,
        "a string is not valid UTF-8 and cannot be signed");
}

/* Writes the escaped form of cp at w, which has room for 6 bytes: the
 * table's short escape or \u00xx below 0x80, \uxxxx for a lone surrogate,
 * else the character itself (an escape JavaScript would not write). Returns
 * the length. */
static size_t
genauth_json_put_escaped(uint32_t cp, char *w)
{
    unsigned char esc = cp < 0x80 ? genauth_json_escape[cp] : 0;

    if (esc == 0 && !(cp >= 0xD800 && cp <= 0xDFFF))
        return genauth_utf8_encode(cp, w);
    w[0] = '\\';
    if (esc != 0 && esc != 'u') {
        w[1] = (char)esc;
        return 2;
    }
    w[1] = 'u';
    w[2] = genauth_json_hex[(cp >> 12) & 0xF];
    w[3] = genauth_json_hex[(cp >> 8) & 0xF];
    w[4] = genauth_json_hex[(cp >> 4) & 0xF];
    w[5] = genauth_json_hex[cp & 0xF];
    return 6;
}

genauth_status
genauth_json_text_quote(genauth_json_text *t, int check_utf8,
                        genauth_buf *out, genauth_error *err)
{
    const unsigned char *p = t->p;
    const unsigned char *end = t->end;
    const unsigned char *run = p;
    const unsigned char *stop =
        check_utf8 ? genauth_json_stop_utf8 : genauth_json_escape;
    size_t len = (size_t)(end - p);
    uint32_t cp;
    int esc;

    /* Room for the whole text and its quotes: the common string needs no
     * further growth. Each escape below keeps room for the rest, as no
     * character takes more than 6 bytes written and an escaped text never
     * grows when re-escaped. */
    if (len > (size_t)-1 - 8 || genauth_buf_ensure(out, len + 2) < 0)
        goto oom;
    out->data[out->len++] = '"';
    for (;;) {
        /* Four bytes a step while none stops the run: most strings. */
        while (end - p >= 4
               && (stop[p[0]] | stop[p[1]] | stop[p[2]] | stop[p[3]]) == 0)
            p += 4;
        while (p < end && stop[*p] == 0)
            p++;
        if (p == end)
            break;
        if (*p >= 0x80) {
            /* Only with check_utf8: well-formed UTF-8 stays in the run. */
            t->p = p;
            if (genauth_json_text_next(t, &cp, &esc) < 0)
                goto malformed;
            p = t->p;
            continue;
        }
        memcpy(out->data + out->len, run, (size_t)(p - run));
        out->len += (size_t)(p - run);
        t->p = p;
        if (t->escaped) {
            if (genauth_json_text_next(t, &cp, &esc) < 0)
                goto malformed;
        } else {
            cp = *p;
            t->p = p + 1;
        }
        p = run = t->p;
        if (genauth_buf_ensure(out, 6 + (size_t)(end - p) + 1) < 0)
            goto oom;
        out->len += genauth_json_put_escaped(cp, out->data + out->len);
    }
    memcpy(out->data + out->len, run, (size_t)(p - run));
    out->len += (size_t)(p - run);
    out->data[out->len++] = '"';
    out->data[out->len] = '\0';
    t->p = p;
    return GENAUTH_OK;

malformed:
    out->data[out->len] = '\0';
    return genauth_json_text_malformed(t, err);
oom:
    return genauth_error_set(err, GENAUTH_E_NOMEM,
                             "out of memory while writing JSON");
}
