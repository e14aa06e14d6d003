/* What is JavaScript's own in the signed resource string: key order and
 * comparison, Number::toString, String(v). The JSON.stringify form itself
 * is json.h's writer in GENAUTH_JSON_JS form, which calls these. */
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
#include "jsontext.h"

/* ---- text -------------------------------------------------------------- */

static genauth_status
nomem(genauth_error *err)
{
    return genauth_error_set(err, GENAUTH_E_NOMEM,
                             "out of memory while signing the request");
}

/* UTF-8 for one character of String(v) into buf (4 bytes): a lone
 * surrogate becomes U+FFFD, as Node's UTF-8 encoder makes it. */
static size_t
string_char(uint32_t cp, char *buf)
{
    return genauth_utf8_encode(cp >= 0xD800 && cp <= 0xDFFF ? 0xFFFD : cp,
                               buf);
}

/* Appends the text's characters as UTF-8 (String(v)). */
static genauth_status
write_text_plain(genauth_json_text *t, genauth_buf *out, genauth_error *err)
{
    const unsigned char *run = t->p;
    const unsigned char *at;
    uint32_t cp;
    int esc, r;
    char tmp[4];
    genauth_status st = GENAUTH_OK;

    for (;;) {
        at = t->p;
        r = genauth_json_text_next(t, &cp, &esc);
        if (r == 0)
            break;
        if (r < 0) {
            st = genauth_json_text_malformed(t, err);
            goto done;
        }
        if (!esc)
            continue;
        if (genauth_buf_append(out, run, (size_t)(at - run)) < 0
            || genauth_buf_append(out, tmp, string_char(cp, tmp)) < 0)
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

static genauth_status
key_text(const cJSON *member, genauth_json_text *t, genauth_error *err)
{
    genauth_status st = GENAUTH_OK;

    if (!member->string)
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "an object member has no key");
    else
        genauth_json_text_init(t, member->string, strlen(member->string),
                               (member->type & GENAUTH_JSON_KEY_ESCAPED)
                                   != 0);
    return st;
}

/* ---- keys --------------------------------------------------------------- */

/* Nonzero when the key is a canonical array index ("0", or digits without a
 * leading zero, at most 2**32-2): JavaScript lists those first. */
static int
key_index(const cJSON *member, uint32_t *index)
{
    genauth_json_text t;
    uint64_t v = 0;
    size_t n = 0;
    uint32_t cp;
    int esc, r;

    if (!member->string)
        return 0;
    genauth_json_text_init(&t, member->string, strlen(member->string),
                           (member->type & GENAUTH_JSON_KEY_ESCAPED) != 0);
    while ((r = genauth_json_text_next(&t, &cp, &esc)) == 1) {
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
    genauth_json_text t;
    uint32_t cp;
    int esc, r;
    genauth_status st = key_text(member, &t, err);

    if (st == GENAUTH_OK) {
        while ((r = genauth_json_text_next(&t, &cp, &esc)) == 1)
            ;
        if (r < 0)
            st = genauth_json_text_malformed(&t, err);
    }
    return st;
}

genauth_status
genauth_jsform_key(const cJSON *member, genauth_buf *out, genauth_error *err)
{
    genauth_json_text t;
    genauth_status st = key_text(member, &t, err);

    if (st == GENAUTH_OK)
        st = write_text_plain(&t, out, err);
    return st;
}

/* UTF-16 code units of a text, one at a time. */
typedef struct {
    genauth_json_text t;
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
    if (genauth_json_text_next(&it->t, &cp, &esc) != 1)
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
    genauth_json_text_init(&ia.t, sa + i, strlen(sa + i),
                           (a->type & GENAUTH_JSON_KEY_ESCAPED) != 0);
    genauth_json_text_init(&ib.t, sb + i, strlen(sb + i),
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

double
genauth_jsform_strtod(const char *literal)
{
    locale_t old = enter_c_locale();
    double v = strtod(literal, NULL);
    if (old)
        uselocale(old);
    return v;
}

/* Moves the decimal in `sci` (as "%.*e" writes it: "d.ddde+x" or "de+x",
 * positive, C locale) one unit of its last digit up or down, keeping its
 * number of digits. */
static void
sci_step(char *sci, size_t size, int up)
{
    char digits[24];
    size_t k = 0, i;
    const char *e;

    for (e = sci; *e && *e != 'e'; e++) {
        if (*e >= '0' && *e <= '9' && k < sizeof digits)
            digits[k++] = *e;
    }
    if (k == 0) /* never: "%.*e" writes a digit first */
        return;
    int exp10 = *e == 'e' ? atoi(e + 1) : 0;
    i = k;
    if (up) {
        while (i > 0 && digits[i - 1] == '9')
            digits[--i] = '0';
        if (i == 0) { /* 9.99 up is 1.00 times ten */
            digits[0] = '1';
            exp10++;
        } else {
            digits[i - 1]++;
        }
    } else {
        while (i > 0 && digits[i - 1] == '0')
            digits[--i] = '9';
        if (i > 0)
            digits[i - 1]--;
        if (digits[0] == '0') { /* 1.00 down is 9.99 over ten */
            memmove(digits, digits + 1, k - 1);
            digits[k - 1] = '9';
            exp10--;
        }
    }
    snprintf(sci, size, "%c%s%.*se%+d", digits[0], k > 1 ? "." : "",
             (int)(k - 1), digits + 1, exp10);
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
    /* The fewest significant digits that read back as v and, among those,
     * the closest to v, as Number::toString asks: %.*e rounds correctly, so
     * it is that one when it reads back. At a power of two the doubles
     * below v lie closer than those above, so it can miss while its
     * neighbour on the other side of v reads back (2**-24 is
     * 5.960464477539063e-8: ...062 is nearer but reads back as another
     * double). 17 digits always suffice. */
    for (int p = 1; p <= 17; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, v);
        double back = strtod(sci, NULL);
        if (back == v)
            break;
        sci_step(sci, sizeof sci, back < v);
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

genauth_status
genauth_jsform_number_literal(const char *lit, genauth_buf *out,
                              genauth_error *err)
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

/* ---- member order ----------------------------------------------------- */

static int
indexed_cmp(const void *a, const void *b)
{
    uint32_t x = ((const genauth_jsform_indexed *)a)->index;
    uint32_t y = ((const genauth_jsform_indexed *)b)->index;
    return (x > y) - (x < y);
}

genauth_status
genauth_jsform_order_init(genauth_jsform_order *o, const cJSON *obj,
                          genauth_error *err)
{
    size_t i;
    uint32_t index;
    const cJSON *m;
    genauth_status st = GENAUTH_OK;

    o->idx = o->stack;
    o->n = o->i = 0;
    o->next = obj->child;
    for (m = obj->child; m; m = m->next) {
        if (key_index(m, &index)) {
            if (o->n < GENAUTH_JSFORM_STACK_INDEXES) {
                o->stack[o->n].index = index;
                o->stack[o->n].member = m;
            }
            o->n++;
        }
    }
    if (o->n > GENAUTH_JSFORM_STACK_INDEXES) {
        /* Rare: an object used as a sparse array. */
        o->idx = malloc(o->n * sizeof *o->idx);
        if (!o->idx) {
            o->idx = o->stack;
            o->n = 0;
            o->next = NULL;
            st = nomem(err);
            goto done;
        }
        i = 0;
        for (m = obj->child; m; m = m->next) {
            if (key_index(m, &index)) {
                o->idx[i].index = index;
                o->idx[i].member = m;
                i++;
            }
        }
        qsort(o->idx, o->n, sizeof *o->idx, indexed_cmp);
    } else {
        for (i = 1; i < o->n; i++) {
            genauth_jsform_indexed cur = o->idx[i];
            size_t j = i;
            while (j > 0 && o->idx[j - 1].index > cur.index) {
                o->idx[j] = o->idx[j - 1];
                j--;
            }
            o->idx[j] = cur;
        }
    }
done:
    return st;
}

const cJSON *
genauth_jsform_order_next(genauth_jsform_order *o)
{
    const cJSON *m;
    uint32_t index;

    if (o->i < o->n)
        return o->idx[o->i++].member;
    m = o->next;
    /* The integer-like keys were given first: skip them here. */
    while (m && o->n && key_index(m, &index))
        m = m->next;
    o->next = m ? m->next : NULL;
    return m;
}

void
genauth_jsform_order_clear(genauth_jsform_order *o)
{
    if (o->idx != o->stack)
        free(o->idx);
    o->idx = o->stack;
    o->n = o->i = 0;
}

/* ---- repeated keys ------------------------------------------------------ */

/* Whether two members' keys are the same text once decoded. */
static int
keys_equal(const cJSON *a, const cJSON *b)
{
    if (!((a->type | b->type) & GENAUTH_JSON_KEY_ESCAPED))
        return strcmp(a->string ? a->string : "",
                      b->string ? b->string : "") == 0;
    return genauth_jsform_key_cmp(a, b) == 0;
}

typedef struct {
    const cJSON *member;
    size_t pos; /* in insertion order */
} jsform_entry;

/* By key, then by position: equal keys end up together, first given
 * first. */
static int
entry_cmp(const void *a, const void *b)
{
    const jsform_entry *x = a, *y = b;
    int c = genauth_jsform_key_cmp(x->member, y->member);
    return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

genauth_status
genauth_jsform_distinct(const cJSON *obj, cJSON **distinct,
                        genauth_error *err)
{
    jsform_entry stack[GENAUTH_JSFORM_STACK_INDEXES];
    jsform_entry *e = stack;
    const cJSON **kept = NULL; /* by position: the member whose value stays */
    const cJSON *m, *k;
    size_t n = 0, i, j;
    int repeated = 0;
    genauth_status st = GENAUTH_OK;

    *distinct = NULL;
    for (m = obj->child; m; m = m->next)
        n++;
    /* Keys are compared decoded, which needs them well-formed (the writer
     * would refuse a malformed one anyway). */
    for (m = n > 1 ? obj->child : NULL; m; m = m->next) {
        st = genauth_jsform_key_check(m, err);
        if (st != GENAUTH_OK)
            goto done;
    }
    if (n <= GENAUTH_JSFORM_STACK_INDEXES) {
        /* A small object, the usual one: compared pair by pair. */
        for (m = obj->child; m && !repeated; m = m->next) {
            for (k = m->next; k && !repeated; k = k->next)
                repeated = keys_equal(m, k);
        }
        if (!repeated)
            goto done;
    } else if (!(e = malloc(n * sizeof *e))) {
        e = stack;
        goto oom;
    }
    i = 0;
    for (m = obj->child; m; m = m->next, i++) {
        e[i].member = m;
        e[i].pos = i;
    }
    qsort(e, n, sizeof *e, entry_cmp);
    for (i = 1; i < n && !repeated; i++)
        repeated = keys_equal(e[i - 1].member, e[i].member);
    if (!repeated)
        goto done;
    if (!(kept = calloc(n, sizeof *kept)))
        goto oom;
    for (i = 0; i < n; i = j) {
        for (j = i + 1; j < n && keys_equal(e[i].member, e[j].member); j++)
            ;
        kept[e[i].pos] = e[j - 1].member;
    }
    if (!(*distinct = cJSON_CreateObject()))
        goto oom;
    for (i = 0; i < n; i++) {
        if (!kept[i])
            continue;
        /* The reference keeps the member's flags (an escaped key stays
         * flagged) and a copy of its key. */
        if (!cJSON_AddItemReferenceToObject(*distinct, kept[i]->string,
                                            (cJSON *)kept[i]))
            goto oom;
    }
    goto done;
oom:
    st = nomem(err);
    cJSON_Delete(*distinct);
    *distinct = NULL;
done:
    free(kept);
    if (e != stack)
        free(e);
    return st;
}

/* ---- String(v) ---------------------------------------------------------- */

genauth_status
genauth_jsform_string(const cJSON *scalar, genauth_buf *out,
                      genauth_error *err)
{
    genauth_json_text t;
    genauth_status st;

    switch (scalar ? scalar->type & 0xFF : cJSON_Invalid) {
    case cJSON_String:
        /* Copied as is once known to be UTF-8. */
        genauth_json_text_init(
            &t, scalar->valuestring ? scalar->valuestring : "",
            scalar->valuestring ? strlen(scalar->valuestring) : 0, 0);
        st = write_text_plain(&t, out, err);
        break;
    case cJSON_Raw:
        if (!scalar->valuestring) {
            st = genauth_error_set(err, GENAUTH_E_INVALID,
                                   "a raw node has no value");
        } else if (scalar->valuestring[0] == '"') {
            st = genauth_json_text_literal(&t, scalar->valuestring, err);
            if (st == GENAUTH_OK)
                st = write_text_plain(&t, out, err);
        } else {
            st = genauth_jsform_number_literal(scalar->valuestring, out,
                                               err);
        }
        break;
    case cJSON_Number:
    case cJSON_False:
    case cJSON_True:
    case cJSON_NULL:
        /* String(v) and JSON.stringify agree on these. */
        st = genauth_json_write_form(scalar, GENAUTH_JSON_JS, out, err);
        break;
    default:
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "not a scalar JSON value");
        break;
    }
    return st;
}
