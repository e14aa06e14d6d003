/* JavaScript's JSON.stringify and String(v) over json.h's exact cJSON trees,
 * so that the signed resource string is the one the server rebuilds. */
#define _POSIX_C_SOURCE 200809L

#include "jsform.h"

#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

/* Integer-like keys sorted on the stack up to this many; more are rare
 * (an object used as a sparse array) and get a heap array. */
#define JSFORM_STACK_INDEXES 16

/* ---- text: UTF-8, or JSON string content with escapes ------------------ */

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    int escaped; /* JSON string content: decode backslash escapes */
} jsform_text;

static void
text_init(jsform_text *t, const char *s, size_t len, int escaped)
{
    t->p = (const unsigned char *)s;
    t->end = t->p + len;
    t->escaped = escaped;
}

/* The byte length of the well-formed UTF-8 sequence at p (RFC 3629: no
 * overlongs, no surrogates, nothing above U+10FFFF), its code point in *cp;
 * 0 when malformed. */
static size_t
utf8_next(const unsigned char *p, const unsigned char *end, uint32_t *cp)
{
    size_t avail = (size_t)(end - p);
    unsigned c = p[0];
    unsigned lo = 0x80, hi = 0xBF;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        if (avail < 2 || (p[1] & 0xC0) != 0x80)
            return 0;
        *cp = ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
        if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return 0;
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(p[1] & 0x3F) << 6)
              | (p[2] & 0x3F);
        return 3;
    }
    if (c < 0xF5) {
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
        if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80
            || (p[3] & 0xC0) != 0x80)
            return 0;
        *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12)
              | ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
        return 4;
    }
    return 0;
}

static int
hex4(const unsigned char *p, uint32_t *v)
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

/* The next code point. Returns 1 with *cp (a lone surrogate is possible only
 * from a \u escape, as JavaScript strings allow) and *esc nonzero when it
 * came from an escape sequence; 0 at the end; -1 when malformed. */
static int
text_next(jsform_text *t, uint32_t *cp, int *esc)
{
    const unsigned char *p = t->p;
    size_t avail = (size_t)(t->end - p);
    size_t n;

    if (!avail)
        return 0;
    *esc = 0;
    if (t->escaped) {
        if (*p == '\\') {
            if (avail < 2)
                return -1;
            *esc = 1;
            switch (p[1]) {
            case '"': *cp = '"'; break;
            case '\\': *cp = '\\'; break;
            case '/': *cp = '/'; break;
            case 'b': *cp = '\b'; break;
            case 'f': *cp = '\f'; break;
            case 'n': *cp = '\n'; break;
            case 'r': *cp = '\r'; break;
            case 't': *cp = '\t'; break;
            case 'u': {
                uint32_t lo;
                if (avail < 6 || hex4(p + 2, cp) < 0)
                    return -1;
                /* A high surrogate escape followed by a low one is one
                 * character; either alone stays a lone surrogate. */
                if (*cp >= 0xD800 && *cp <= 0xDBFF && avail >= 12
                    && p[6] == '\\' && p[7] == 'u' && hex4(p + 8, &lo) == 0
                    && lo >= 0xDC00 && lo <= 0xDFFF) {
                    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (lo - 0xDC00);
                    t->p = p + 12;
                    return 1;
                }
                t->p = p + 6;
                return 1;
            }
            default:
                return -1;
            }
            t->p = p + 2;
            return 1;
        }
        /* JSON.parse refuses raw control characters and a bare quote would
         * end the literal early. */
        if (*p < 0x20 || *p == '"')
            return -1;
    }
    n = utf8_next(p, t->end, cp);
    if (!n)
        return -1;
    t->p = p + n;
    return 1;
}

/* UTF-8 for cp into buf (4 bytes). A lone surrogate becomes U+FFFD, as
 * Node's UTF-8 encoder makes it. Returns the length. */
static size_t
utf8_put(uint32_t cp, char *buf)
{
    if (cp >= 0xD800 && cp <= 0xDFFF)
        cp = 0xFFFD;
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

static genauth_status
text_malformed(const jsform_text *t, genauth_error *err)
{
    if (t->escaped)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "a raw string literal or escaped key is not "
                                 "valid JSON string content");
    return genauth_error_set(err, GENAUTH_E_INVALID,
                             "a string is not valid UTF-8 and cannot be signed");
}

static genauth_status
nomem(genauth_error *err)
{
    return genauth_error_set(err, GENAUTH_E_NOMEM,
                             "out of memory while signing the request");
}

/* Appends the text as a JSON.stringify string literal. Runs that need no
 * change are copied in one go: the common string is all run. */
static genauth_status
write_text_quoted(jsform_text *t, genauth_buf *out, genauth_error *err)
{
    static const char hexdig[] = "0123456789abcdef";
    const unsigned char *run = t->p;
    const unsigned char *at;
    uint32_t cp;
    int esc, r;
    char tmp[6];
    size_t tlen;
    int special;
    genauth_status st = GENAUTH_OK;

    if (genauth_buf_append_char(out, '"') < 0)
        goto oom;
    for (;;) {
        at = t->p;
        r = text_next(t, &cp, &esc);
        if (r == 0)
            break;
        if (r < 0) {
            st = text_malformed(t, err);
            goto done;
        }
        special = cp < 0x20 || cp == '"' || cp == '\\'
                      || (cp >= 0xD800 && cp <= 0xDFFF);
        if (!special && !esc)
            continue;
        if (genauth_buf_append(out, run, (size_t)(at - run)) < 0)
            goto oom;
        run = t->p;
        tlen = 2;
        tmp[0] = '\\';
        switch (cp) {
        case '"': tmp[1] = '"'; break;
        case '\\': tmp[1] = '\\'; break;
        case '\b': tmp[1] = 'b'; break;
        case '\f': tmp[1] = 'f'; break;
        case '\n': tmp[1] = 'n'; break;
        case '\r': tmp[1] = 'r'; break;
        case '\t': tmp[1] = 't'; break;
        default:
            if (special) {
                /* Other controls and (ES2019) lone surrogates. */
                tmp[1] = 'u';
                tmp[2] = hexdig[(cp >> 12) & 0xF];
                tmp[3] = hexdig[(cp >> 8) & 0xF];
                tmp[4] = hexdig[(cp >> 4) & 0xF];
                tmp[5] = hexdig[cp & 0xF];
                tlen = 6;
            } else {
                /* An escape JavaScript would not write: the character. */
                tlen = utf8_put(cp, tmp);
            }
        }
        if (genauth_buf_append(out, tmp, tlen) < 0)
            goto oom;
    }
    if (genauth_buf_append(out, run, (size_t)(t->p - run)) < 0
        || genauth_buf_append_char(out, '"') < 0)
        goto oom;
    goto done;
oom:
    st = nomem(err);
done:
    return st;
}

/* Appends the text's characters as UTF-8 (String(v)). */
static genauth_status
write_text_plain(jsform_text *t, genauth_buf *out, genauth_error *err)
{
    const unsigned char *run = t->p;
    const unsigned char *at;
    uint32_t cp;
    int esc, r;
    char tmp[4];
    genauth_status st = GENAUTH_OK;

    for (;;) {
        at = t->p;
        r = text_next(t, &cp, &esc);
        if (r == 0)
            break;
        if (r < 0) {
            st = text_malformed(t, err);
            goto done;
        }
        if (!esc)
            continue;
        if (genauth_buf_append(out, run, (size_t)(at - run)) < 0
            || genauth_buf_append(out, tmp, utf8_put(cp, tmp)) < 0)
            goto oom;
        run = t->p;
    }
    if (genauth_buf_append(out, run, (size_t)(t->p - run)) < 0)
        goto oom;
    goto done;
oom:
    st = nomem(err);
done:
    return st;
}

/* The content of a raw string literal (between its quotes). */
static genauth_status
raw_string_text(const char *lit, jsform_text *t, genauth_error *err)
{
    size_t len = strlen(lit);
    genauth_status st = GENAUTH_OK;

    if (len < 2 || lit[len - 1] != '"')
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "a raw string literal is not valid JSON");
    else
        text_init(t, lit + 1, len - 2, 1);
    return st;
}

static genauth_status
key_text(const cJSON *member, jsform_text *t, genauth_error *err)
{
    genauth_status st = GENAUTH_OK;

    if (!member->string)
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "an object member has no key");
    else
        text_init(t, member->string, strlen(member->string),
                  (member->type & GENAUTH_JSON_KEY_ESCAPED) != 0);
    return st;
}

/* ---- keys --------------------------------------------------------------- */

/* Nonzero when the key is a canonical array index ("0", or digits without a
 * leading zero, at most 2**32-2): JavaScript lists those first. */
static int
key_index(const cJSON *member, uint32_t *index)
{
    jsform_text t;
    uint64_t v = 0;
    size_t n = 0;
    uint32_t cp;
    int esc, r;

    if (!member->string)
        return 0;
    text_init(&t, member->string, strlen(member->string),
              (member->type & GENAUTH_JSON_KEY_ESCAPED) != 0);
    while ((r = text_next(&t, &cp, &esc)) == 1) {
        if (cp < '0' || cp > '9' || (n == 1 && v == 0))
            return 0;
        v = v * 10 + (cp - '0');
        if (v > 4294967294u)
            return 0;
        n++;
    }
    if (r < 0 || n == 0)
        return 0;
    *index = (uint32_t)v;
    return 1;
}

genauth_status
genauth_jsform_key_check(const cJSON *member, genauth_error *err)
{
    jsform_text t;
    uint32_t cp;
    int esc, r;
    genauth_status st = key_text(member, &t, err);

    if (st == GENAUTH_OK) {
        while ((r = text_next(&t, &cp, &esc)) == 1)
            ;
        if (r < 0)
            st = text_malformed(&t, err);
    }
    return st;
}

genauth_status
genauth_jsform_key(const cJSON *member, genauth_buf *out, genauth_error *err)
{
    jsform_text t;
    genauth_status st = key_text(member, &t, err);

    if (st == GENAUTH_OK)
        st = write_text_plain(&t, out, err);
    return st;
}

/* UTF-16 code units of a text, one at a time. */
typedef struct {
    jsform_text t;
    uint32_t pending; /* the low surrogate still to give, or 0 */
} jsform_u16;

static int
u16_next(jsform_u16 *it, uint32_t *unit)
{
    uint32_t cp;
    int esc;

    if (it->pending) {
        *unit = it->pending;
        it->pending = 0;
        return 1;
    }
    /* Keys were checked; a malformed tail just ends the comparison. */
    if (text_next(&it->t, &cp, &esc) != 1)
        return 0;
    if (cp >= 0x10000) {
        cp -= 0x10000;
        *unit = 0xD800 + (cp >> 10);
        it->pending = 0xDC00 + (cp & 0x3FF);
    } else {
        *unit = cp;
    }
    return 1;
}

int
genauth_jsform_key_cmp(const cJSON *a, const cJSON *b)
{
    jsform_u16 ia, ib;
    uint32_t ua, ub;
    int ra, rb;

    /* Byte order equals code unit order for ASCII, the usual key: skip the
     * shared ASCII start cheaply before decoding. */
    const char *sa = a->string ? a->string : "";
    const char *sb = b->string ? b->string : "";
    size_t i = 0;
    if (!((a->type | b->type) & GENAUTH_JSON_KEY_ESCAPED)) {
        while (sa[i] && sa[i] == sb[i] && !(sa[i] & 0x80))
            i++;
        if ((!sa[i] || !(sa[i] & 0x80)) && (!sb[i] || !(sb[i] & 0x80)))
            return (unsigned char)sa[i] - (unsigned char)sb[i];
    }
    text_init(&ia.t, sa + i, strlen(sa + i),
              (a->type & GENAUTH_JSON_KEY_ESCAPED) != 0);
    text_init(&ib.t, sb + i, strlen(sb + i),
              (b->type & GENAUTH_JSON_KEY_ESCAPED) != 0);
    ia.pending = ib.pending = 0;
    for (;;) {
        ra = u16_next(&ia, &ua);
        rb = u16_next(&ib, &ub);
        if (!ra || !rb)
            return ra - rb;
        if (ua != ub)
            return ua < ub ? -1 : 1;
    }
}

/* ---- numbers ------------------------------------------------------------ */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
c_locale_init(void)
{
    c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

/* strtod and printf follow LC_NUMERIC, which the host process may have set
 * to a comma locale; switch this thread to "C" for the conversion. Returns
 * the locale to restore, or (locale_t)0 when no "C" locale could be made. */
static locale_t
enter_c_locale(void)
{
    locale_t old = (locale_t)0;

    pthread_once(&c_locale_once, c_locale_init);
    if (c_locale)
        old = uselocale(c_locale);
    return old;
}

int
genauth_jsform_double(double v, genauth_buf *out)
{
    char sci[40];
    char digits[24];
    char res[48];
    size_t k = 0, rl = 0;
    int n, exp10 = 0;
    const char *e;
    locale_t old;
    int rc = -1;

    if (v == 0) { /* -0 too: String(-0) is "0" */
        rc = genauth_buf_append_char(out, '0');
        goto done;
    }
    if (v < 0) {
        res[rl++] = '-';
        v = -v;
    }
    old = enter_c_locale();
    if (!old)
        goto done;
    /* The fewest significant digits that read back as v; %.*e rounds
     * correctly, so among those it is the closest, as Number::toString
     * asks. 17 always suffice. */
    for (int p = 1; p <= 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, v);
        if (strtod(sci, NULL) == v)
            break;
    }
    uselocale(old);
    for (e = sci; *e && *e != 'e'; e++) {
        if (*e >= '0' && *e <= '9')
            digits[k++] = *e;
    }
    if (*e == 'e')
        exp10 = atoi(e + 1);
    while (k > 1 && digits[k - 1] == '0')
        k--;
    n = exp10 + 1; /* v = 0.d1d2..dk x 10^n */

    if ((int)k <= n && n <= 21) {
        memcpy(res + rl, digits, k);
        rl += k;
        for (int i = 0; i < n - (int)k; i++)
            res[rl++] = '0';
    } else if (0 < n && n <= 21) {
        memcpy(res + rl, digits, (size_t)n);
        rl += (size_t)n;
        res[rl++] = '.';
        memcpy(res + rl, digits + n, k - (size_t)n);
        rl += k - (size_t)n;
    } else if (-6 < n && n <= 0) {
        res[rl++] = '0';
        res[rl++] = '.';
        for (int i = 0; i < -n; i++)
            res[rl++] = '0';
        memcpy(res + rl, digits, k);
        rl += k;
    } else {
        res[rl++] = digits[0];
        if (k > 1) {
            res[rl++] = '.';
            memcpy(res + rl, digits + 1, k - 1);
            rl += k - 1;
        }
        rl += (size_t)snprintf(res + rl, sizeof res - rl, "e%c%d",
                               n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    rc = genauth_buf_append(out, res, rl);
done:
    return rc;
}

/* Length of a JSON number literal's integer digits, and whether it has a
 * fraction or exponent; -1 when the literal is not exactly one JSON number. */
static int
number_scan(const char *s, const char **int_digits, size_t *int_len,
            int *is_float)
{
    const char *p = s;

    *is_float = 0;
    if (*p == '-')
        p++;
    *int_digits = p;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return -1;
    *int_len = (size_t)(p - *int_digits);
    if (*p == '.') {
        *is_float = 1;
        p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        *is_float = 1;
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return -1;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p ? -1 : 0;
}

static genauth_status
write_number_literal(const char *lit, genauth_buf *out, genauth_error *err)
{
    static const char max_safe[] = "9007199254740991";
    const char *digits;
    size_t ilen;
    int is_float;
    double v;
    locale_t old;
    genauth_status st = GENAUTH_OK;

    if (number_scan(lit, &digits, &ilen, &is_float) < 0) {
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "raw literal \"%.40s\" is not a JSON number "
                               "or string", lit);
    } else if (!is_float) {
        /* Compared as text: a double cannot tell 2**53+1 from 2**53. */
        if (ilen > sizeof max_safe - 1
            || (ilen == sizeof max_safe - 1
                && memcmp(digits, max_safe, ilen) > 0))
            st = genauth_error_set(
                err, GENAUTH_E_INVALID,
                "integer %.60s%s is outside JavaScript's safe range "
                "(\xc2\xb1%s) and cannot be signed faithfully",
                lit, strlen(lit) > 60 ? "..." : "", max_safe);
        /* Safe integers print as written, but -0 is "0". */
        else if (genauth_buf_append_str(
                     out, ilen == 1 && digits[0] == '0' ? "0" : lit) < 0)
            st = nomem(err);
    } else if (!(old = enter_c_locale())) {
        st = nomem(err);
    } else {
        v = strtod(lit, NULL);
        uselocale(old);
        if (isinf(v))
            st = genauth_error_set(err, GENAUTH_E_INVALID,
                                   "number %.60s%s is beyond the range of a "
                                   "double and cannot be signed faithfully",
                                   lit, strlen(lit) > 60 ? "..." : "");
        else if (genauth_jsform_double(v, out) < 0)
            st = nomem(err);
    }
    return st;
}

static genauth_status
write_number_node(const cJSON *node, genauth_buf *out, genauth_error *err)
{
    int rc;

    /* The body carries a non-finite double as null (json.c, like
     * JSON.stringify), so null is what the server parses and prints. */
    if (!isfinite(node->valuedouble))
        rc = genauth_buf_append(out, "null", 4);
    else
        rc = genauth_jsform_double(node->valuedouble, out);
    return rc < 0 ? nomem(err) : GENAUTH_OK;
}

/* ---- JSON.stringify ----------------------------------------------------- */

typedef struct {
    uint32_t index;
    const cJSON *member;
} jsform_indexed;

static int
indexed_cmp(const void *a, const void *b)
{
    uint32_t x = ((const jsform_indexed *)a)->index;
    uint32_t y = ((const jsform_indexed *)b)->index;
    return (x > y) - (x < y);
}

static genauth_status write_value(const cJSON *node, genauth_buf *out,
                                  int depth, genauth_error *err);

static genauth_status
write_member(const cJSON *member, int *first, genauth_buf *out, int depth,
             genauth_error *err)
{
    jsform_text t;
    genauth_status st;

    if (!*first && genauth_buf_append_char(out, ',') < 0)
        st = nomem(err);
    else
        st = key_text(member, &t, err);
    *first = 0;
    if (st == GENAUTH_OK)
        st = write_text_quoted(&t, out, err);
    if (st == GENAUTH_OK && genauth_buf_append_char(out, ':') < 0)
        st = nomem(err);
    if (st == GENAUTH_OK)
        st = write_value(member, out, depth, err);
    return st;
}

static genauth_status
write_object(const cJSON *obj, genauth_buf *out, int depth,
             genauth_error *err)
{
    jsform_indexed stack_idx[JSFORM_STACK_INDEXES];
    jsform_indexed *idx = stack_idx;
    size_t nidx = 0, i;
    uint32_t index;
    const cJSON *m;
    int first = 1;
    genauth_status st = GENAUTH_OK;

    /* Integer-like keys come first, in ascending order: JavaScript's own
     * property order. */
    for (m = obj->child; m; m = m->next) {
        if (key_index(m, &index)) {
            if (nidx < JSFORM_STACK_INDEXES) {
                stack_idx[nidx].index = index;
                stack_idx[nidx].member = m;
            }
            nidx++;
        }
    }
    if (nidx > JSFORM_STACK_INDEXES) {
        idx = malloc(nidx * sizeof *idx);
        if (!idx) {
            st = nomem(err);
            goto done;
        }
        i = 0;
        for (m = obj->child; m; m = m->next) {
            if (key_index(m, &index)) {
                idx[i].index = index;
                idx[i].member = m;
                i++;
            }
        }
        qsort(idx, nidx, sizeof *idx, indexed_cmp);
    } else {
        for (i = 1; i < nidx; i++) {
            jsform_indexed cur = idx[i];
            size_t j = i;
            while (j > 0 && idx[j - 1].index > cur.index) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = cur;
        }
    }

    if (genauth_buf_append_char(out, '{') < 0) {
        st = nomem(err);
        goto done;
    }
    for (i = 0; i < nidx; i++) {
        st = write_member(idx[i].member, &first, out, depth, err);
        if (st != GENAUTH_OK)
            goto done;
    }
    for (m = obj->child; m; m = m->next) {
        if (nidx && key_index(m, &index))
            continue;
        st = write_member(m, &first, out, depth, err);
        if (st != GENAUTH_OK)
            goto done;
    }
    if (genauth_buf_append_char(out, '}') < 0)
        st = nomem(err);
done:
    if (idx != stack_idx)
        free(idx);
    return st;
}

static genauth_status
write_value(const cJSON *node, genauth_buf *out, int depth,
            genauth_error *err)
{
    jsform_text t;
    genauth_status st;
    const cJSON *c;

    int type = node->type & 0xFF;

    if ((type == cJSON_Array || type == cJSON_Object)
        && depth >= GENAUTH_JSFORM_MAX_DEPTH)
        type = -1; /* refused below */
    switch (type) {
    case cJSON_False:
        st = genauth_buf_append(out, "false", 5) < 0 ? nomem(err) : GENAUTH_OK;
        break;
    case cJSON_True:
        st = genauth_buf_append(out, "true", 4) < 0 ? nomem(err) : GENAUTH_OK;
        break;
    case cJSON_NULL:
        st = genauth_buf_append(out, "null", 4) < 0 ? nomem(err) : GENAUTH_OK;
        break;
    case cJSON_Number:
        st = write_number_node(node, out, err);
        break;
    case cJSON_String:
        /* json.c sends a string node without a value as "". */
        text_init(&t, node->valuestring ? node->valuestring : "",
                  node->valuestring ? strlen(node->valuestring) : 0, 0);
        st = write_text_quoted(&t, out, err);
        break;
    case cJSON_Raw:
        if (!node->valuestring) {
            st = genauth_error_set(err, GENAUTH_E_INVALID,
                                   "a raw node has no value");
        } else if (node->valuestring[0] == '"') {
            /* Re-escaped rather than copied: the server prints the string
             * it parsed, whatever escapes the literal used. */
            st = raw_string_text(node->valuestring, &t, err);
            if (st == GENAUTH_OK)
                st = write_text_quoted(&t, out, err);
        } else {
            st = write_number_literal(node->valuestring, out, err);
        }
        break;
    case cJSON_Array:
        if (genauth_buf_append_char(out, '[') < 0) {
            st = nomem(err);
            break;
        }
        st = GENAUTH_OK;
        for (c = node->child; c && st == GENAUTH_OK; c = c->next) {
            if (c != node->child && genauth_buf_append_char(out, ',') < 0)
                st = nomem(err);
            else
                st = write_value(c, out, depth + 1, err);
        }
        if (st == GENAUTH_OK && genauth_buf_append_char(out, ']') < 0)
            st = nomem(err);
        break;
    case cJSON_Object:
        st = write_object(node, out, depth + 1, err);
        break;
    case -1:
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "JSON nested deeper than %d levels",
                               GENAUTH_JSFORM_MAX_DEPTH);
        break;
    default:
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "a JSON node has an invalid type");
        break;
    }
    return st;
}

genauth_status
genauth_jsform_write(const cJSON *node, genauth_buf *out, genauth_error *err)
{
    genauth_status st;

    if (!node)
        st = genauth_error_set(err, GENAUTH_E_INVALID, "no JSON value");
    else
        st = write_value(node, out, 0, err);
    return st;
}

/* ---- String(v) ---------------------------------------------------------- */

genauth_status
genauth_jsform_string(const cJSON *scalar, genauth_buf *out,
                      genauth_error *err)
{
    jsform_text t;
    genauth_status st;

    switch (scalar ? scalar->type & 0xFF : cJSON_Invalid) {
    case cJSON_String:
        /* Copied as is once known to be UTF-8. */
        text_init(&t, scalar->valuestring ? scalar->valuestring : "",
                  scalar->valuestring ? strlen(scalar->valuestring) : 0, 0);
        st = write_text_plain(&t, out, err);
        break;
    case cJSON_Raw:
        if (!scalar->valuestring) {
            st = genauth_error_set(err, GENAUTH_E_INVALID,
                                   "a raw node has no value");
        } else if (scalar->valuestring[0] == '"') {
            st = raw_string_text(scalar->valuestring, &t, err);
            if (st == GENAUTH_OK)
                st = write_text_plain(&t, out, err);
        } else {
            st = write_number_literal(scalar->valuestring, out, err);
        }
        break;
    case cJSON_Number:
    case cJSON_False:
    case cJSON_True:
    case cJSON_NULL:
        /* String(v) and JSON.stringify agree on these. */
        st = write_value(scalar, out, 0, err);
        break;
    default:
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "not a scalar JSON value");
        break;
    }
    return st;
}
