/* AK/SK request signing: canonical headers and resource, HMAC-SHA1. */
#define _POSIX_C_SOURCE 200809L

#include "sign.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jsform.h"
#include "json.h"
#include "random.h"
#include "wipe.h"

/* The signed headers: date and six prefixed ones at most. */
#define SIGN_MAX_HEADERS 7
/* Parameters sorted on the stack up to this many; a request with more gets
 * a heap array. */
#define SIGN_STACK_PARAMS 32

typedef struct {
    const char *prefix; /* "" for date */
    const char *suffix;
    const char *value;  /* trimmed, not NUL-terminated */
    size_t value_len;
} sign_header;

void
genauth_signature_init(genauth_signature *s)
{
    genauth_buf_init(&s->headers);
    s->header_count = 0;
    genauth_buf_init(&s->string_to_sign);
}

void
genauth_signature_clear(genauth_signature *s)
{
    genauth_buf_wipe_clear(&s->headers); /* the authorization header */
    genauth_buf_clear(&s->string_to_sign);
    s->header_count = 0;
}

const char *
genauth_signature_header(const genauth_signature *s, const char *prev)
{
    const char *next = NULL;

    if (!s->header_count || !s->headers.data)
        next = NULL;
    else if (!prev)
        next = s->headers.data;
    else if (prev + strlen(prev) + 1 < s->headers.data + s->headers.len)
        next = prev + strlen(prev) + 1;
    return next;
}

void
genauth_sign_format_date(time_t t, char out[GENAUTH_SIGN_DATE_SIZE])
{
    /* Built by hand: strftime's %a and %b follow LC_TIME. */
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    /* The calendar by arithmetic, not gmtime_r: glibc's takes a lock of
     * its own, and a process forked while another of its threads held it
     * would hang in the child at its first signed call. Days since
     * 1970-01-01 to a civil date: H. Hinnant's days_from_civil, inverted
     * (eras of 400 years from 0000-03-01). */
    long long secs = (long long)t;
    long long day = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        day--;
    }
    long long z = day + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;                     /* [0, 146096] */
    long long yoe =
        (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
    long long mp = (5 * doy + 2) / 153;                   /* [0, 11], Mar.. */
    long long mday = doy - (153 * mp + 2) / 5 + 1;
    long long mon = mp < 10 ? mp + 2 : mp - 10;           /* [0, 11], Jan.. */
    long long year = yoe + era * 400 + (mon < 2);
    long long wday = (day % 7 + 11) % 7;                  /* 1970-01-01: Thu */

    snprintf(out, GENAUTH_SIGN_DATE_SIZE, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             days[wday], (int)mday, months[mon], (int)(year % 10000),
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60));
}

genauth_status
genauth_sign_nonce(char out[GENAUTH_SIGN_NONCE_SIZE], genauth_error *err)
{
    static const char hexdig[] = "0123456789abcdef";
    unsigned char raw[16];
    genauth_status st = GENAUTH_OK;

    if (genauth_random_bytes(raw, sizeof raw) < 0) {
        out[0] = '\0';
        st = genauth_error_set(err, GENAUTH_E_CRYPTO,
                               "the system random generator failed; cannot "
                               "make a signature nonce");
        goto done;
    }
    for (size_t i = 0; i < sizeof raw; i++) {
        out[2 * i] = hexdig[raw[i] >> 4];
        out[2 * i + 1] = hexdig[raw[i] & 0xF];
    }
    out[2 * sizeof raw] = '\0';
done:
    return st;
}

/* Checks a header value and trims the spaces and tabs around it, as the
 * server's HTTP parser and its canonicalisation both do. Only printable
 * ASCII and tabs: a CR or LF would split the header, and the server reads
 * header bytes as Latin-1, so non-ASCII could not be signed faithfully. */
static genauth_status
header_value(const char *what, const char *v, int required,
             const char **start, size_t *len, genauth_error *err)
{
    const unsigned char *p = (const unsigned char *)v;
    const unsigned char *b, *e;
    genauth_status st = GENAUTH_OK;

    *start = NULL;
    *len = 0;
    if (!v) {
        if (required)
            st = genauth_error_set(err, GENAUTH_E_INVALID, "%s is missing",
                                   what);
        goto done;
    }
    for (; *p; p++) {
        if ((*p < 0x20 && *p != '\t') || *p >= 0x7F) {
            st = genauth_error_set(err, GENAUTH_E_INVALID,
                                   "%s holds a character other than printable "
                                   "ASCII, which cannot go in a signed header",
                                   what);
            goto done;
        }
    }
    b = (const unsigned char *)v;
    e = p;
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (b == e) {
        if (required)
            st = genauth_error_set(err, GENAUTH_E_INVALID, "%s is empty",
                                   what);
        goto done;
    }
    *start = (const char *)b;
    *len = (size_t)(e - b);
done:
    return st;
}

/* Nonzero when every byte of s (non-empty) is in [lo, hi] or in `extra`. */
static int
all_in(const char *s, unsigned char lo, unsigned char hi, const char *extra)
{
    const unsigned char *p = (const unsigned char *)s;
    int ok = s && *s;

    for (; ok && *p; p++)
        ok = (*p >= lo && *p <= hi) || (extra && strchr(extra, *p));
    return ok;
}

static genauth_status
check_input(const genauth_sign_input *in, genauth_error *err)
{
    genauth_status st = GENAUTH_OK;

    if (!in)
        st = genauth_error_set(err, GENAUTH_E_INVALID, "no signing input");
    else if (!all_in(in->method, 'A', 'Z', NULL))
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "the method must be upper-case letters");
    else if (!in->path || in->path[0] != '/'
             || !all_in(in->path, 0x21, 0x7E, NULL)
             || strpbrk(in->path, "?#"))
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "the path must start with '/' and hold only "
                               "printable ASCII, no query or fragment");
    else if (!all_in(in->header_prefix, 'a', 'z', "0123456789-"))
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "the header prefix must be lower-case letters, "
                               "digits and '-'");
    else if (!all_in(in->scheme, 0x21, 0x7E, NULL))
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "the signature scheme must be printable ASCII "
                               "without spaces");
    else if (!all_in(in->access_key_id, 0x21, 0x7E, NULL))
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "access_key_id must be non-empty printable "
                               "ASCII without spaces");
    else if (!in->access_key_secret || !in->access_key_secret[0])
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "access_key_secret is missing or empty");
    else if (strlen(in->access_key_secret) > INT_MAX)
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "access_key_secret is too long");
    else if (in->params && !cJSON_IsObject(in->params))
        st = genauth_error_set(err, GENAUTH_E_INVALID,
                               "the request parameters must be a JSON object");
    return st;
}

/* The i-th byte of a header's full name, or 0 past its end. */
static unsigned char
name_at(const sign_header *h, size_t plen, size_t i)
{
    if (i < plen)
        return (unsigned char)h->prefix[i];
    return (unsigned char)h->suffix[i - plen];
}

/* Names are ASCII, so byte order is UTF-16 code unit order. */
static int
header_cmp(const sign_header *a, const sign_header *b)
{
    size_t pa = strlen(a->prefix), pb = strlen(b->prefix);
    size_t la = pa + strlen(a->suffix), lb = pb + strlen(b->suffix);
    unsigned char ca = 0, cb = 0;
    size_t i;

    for (i = 0; i < la && i < lb && ca == cb; i++) {
        ca = name_at(a, pa, i);
        cb = name_at(b, pb, i);
    }
    return ca != cb ? (ca > cb) - (ca < cb) : (la > lb) - (la < lb);
}

static int
member_cmp(const void *a, const void *b)
{
    return genauth_jsform_key_cmp(*(const cJSON *const *)a,
                                  *(const cJSON *const *)b);
}

/* Appends "?k1=v1&k2=v2" over the params' keys in UTF-16 order, or nothing
 * for no keys. */
static genauth_status
append_resource_query(const cJSON *params, genauth_buf *out,
                      genauth_error *err)
{
    const cJSON *stack_members[SIGN_STACK_PARAMS];
    const cJSON **members = stack_members;
    const cJSON *m;
    size_t n = 0, i;
    genauth_status st = GENAUTH_OK;

    if (!params)
        goto done;
    for (m = params->child; m; m = m->next) {
        st = genauth_jsform_key_check(m, err);
        if (st != GENAUTH_OK)
            goto done;
        n++;
    }
    if (!n)
        goto done;
    if (n > SIGN_STACK_PARAMS) {
        members = malloc(n * sizeof *members);
        if (!members) {
            st = genauth_error_set(err, GENAUTH_E_NOMEM,
                                   "out of memory while signing the request");
            goto done;
        }
    }
    i = 0;
    for (m = params->child; m; m = m->next)
        members[i++] = m;
    if (n > SIGN_STACK_PARAMS) {
        qsort(members, n, sizeof *members, member_cmp);
    } else {
        for (i = 1; i < n; i++) {
            const cJSON *cur = members[i];
            size_t j = i;
            while (j > 0 && genauth_jsform_key_cmp(members[j - 1], cur) > 0) {
                members[j] = members[j - 1];
                j--;
            }
            members[j] = cur;
        }
    }

    for (i = 0; i < n; i++) {
        m = members[i];
        if (genauth_buf_append_char(out, i ? '&' : '?') < 0) {
            st = genauth_error_set(err, GENAUTH_E_NOMEM,
                                   "out of memory while signing the request");
            goto done;
        }
        st = genauth_jsform_key(m, out, err);
        if (st != GENAUTH_OK)
            goto done;
        if (genauth_buf_append_char(out, '=') < 0) {
            st = genauth_error_set(err, GENAUTH_E_NOMEM,
                                   "out of memory while signing the request");
            goto done;
        }
        /* JavaScript's typeof v === 'object' branch (null prints the same
         * either way). */
        if (cJSON_IsObject(m) || cJSON_IsArray(m))
            st = genauth_json_write_form(m, GENAUTH_JSON_JS, out, err);
        else
            st = genauth_jsform_string(m, out, err);
        if (st != GENAUTH_OK)
            goto done;
    }
done:
    if (members != stack_members)
        free(members);
    return st;
}

genauth_status
genauth_sign(const genauth_sign_input *in, genauth_signature *out,
             genauth_error *err)
{
    sign_header hs[SIGN_MAX_HEADERS];
    size_t nh = 0, i;
    char nonce_buf[GENAUTH_SIGN_NONCE_SIZE];
    char date_buf[GENAUTH_SIGN_DATE_SIZE];
    const char *nonce, *date, *v;
    size_t vlen;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    unsigned char mac64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    genauth_status st;

    genauth_buf_wipe_reset(&out->headers); /* the last signature */
    genauth_buf_reset(&out->string_to_sign);
    out->header_count = 0;

    st = check_input(in, err);
    if (st != GENAUTH_OK)
        goto fail;

    nonce = in->fixed_nonce;
    if (!nonce) {
        st = genauth_sign_nonce(nonce_buf, err);
        if (st != GENAUTH_OK)
            goto fail;
        nonce = nonce_buf;
    }
    date = in->fixed_date;
    if (!date) {
        genauth_sign_format_date(time(NULL), date_buf);
        date = date_buf;
    }

    /* The signed headers, in the sorted order of the suffixes; `date` is
     * placed by the sort below, as a custom prefix may sort either side. */
#define ADD_HEADER(pre, suf, what, val, required)                           \
    do {                                                                    \
        st = header_value((what), (val), (required), &v, &vlen, err);       \
        if (st != GENAUTH_OK)                                               \
            goto fail;                                                      \
        if (v) {                                                            \
            hs[nh].prefix = (pre);                                          \
            hs[nh].suffix = (suf);                                          \
            hs[nh].value = v;                                               \
            hs[nh].value_len = vlen;                                        \
            nh++;                                                           \
        }                                                                   \
    } while (0)
    ADD_HEADER(in->header_prefix, "app-id", "tenant_id", in->tenant_id, 0);
    ADD_HEADER(in->header_prefix, "lang", "lang", in->lang, 0);
    ADD_HEADER(in->header_prefix, "sdk-version", "sdk_version",
               in->sdk_version, 1);
    ADD_HEADER(in->header_prefix, "signature-method", "", "HMAC-SHA1", 1);
    ADD_HEADER(in->header_prefix, "signature-nonce", "the nonce", nonce, 1);
    ADD_HEADER(in->header_prefix, "signature-version", "", "1.0", 1);
    ADD_HEADER("", "date", "the date", date, 1);
#undef ADD_HEADER

    for (i = 1; i < nh; i++) {
        sign_header cur = hs[i];
        size_t j = i;
        while (j > 0 && header_cmp(&hs[j - 1], &cur) > 0) {
            hs[j] = hs[j - 1];
            j--;
        }
        hs[j] = cur;
    }

    if (genauth_buf_append_str(&out->string_to_sign, in->method) < 0
        || genauth_buf_append_char(&out->string_to_sign, '\n') < 0)
        goto nomem;
    for (i = 0; i < nh; i++) {
        size_t start;
        if (genauth_buf_append_str(&out->string_to_sign, hs[i].prefix) < 0
            || genauth_buf_append_str(&out->string_to_sign, hs[i].suffix) < 0
            || genauth_buf_append_char(&out->string_to_sign, ':') < 0)
            goto nomem;
        start = out->string_to_sign.len;
        if (genauth_buf_append(&out->string_to_sign, hs[i].value,
                               hs[i].value_len) < 0
            || genauth_buf_append_char(&out->string_to_sign, '\n') < 0)
            goto nomem;
        /* The server turns tabs into spaces (CR, LF, FF were refused). */
        for (size_t k = start; k < out->string_to_sign.len - 1; k++) {
            if (out->string_to_sign.data[k] == '\t')
                out->string_to_sign.data[k] = ' ';
        }

        /* What is sent is what was signed. */
        if (genauth_buf_append_str(&out->headers, hs[i].prefix) < 0
            || genauth_buf_append_str(&out->headers, hs[i].suffix) < 0
            || genauth_buf_append(&out->headers, ": ", 2) < 0
            || genauth_buf_append(&out->headers,
                                  out->string_to_sign.data + start,
                                  hs[i].value_len) < 0
            || genauth_buf_append_char(&out->headers, '\0') < 0)
            goto nomem;
        out->header_count++;
    }
    if (genauth_buf_append_str(&out->string_to_sign, in->path) < 0)
        goto nomem;
    st = append_resource_query(in->params, &out->string_to_sign, err);
    if (st != GENAUTH_OK)
        goto fail;

    /* The secret goes from the caller's string straight into HMAC as its
     * key: no copy is made here, so there is nothing of it to wipe. */
    if (!HMAC(EVP_sha1(), in->access_key_secret,
              (int)strlen(in->access_key_secret),
              (const unsigned char *)out->string_to_sign.data,
              out->string_to_sign.len, mac, &mac_len)) {
        st = genauth_error_set(err, GENAUTH_E_CRYPTO,
                               "HMAC-SHA1 is not available from libcrypto");
        goto fail;
    }
    EVP_EncodeBlock(mac64, mac, (int)mac_len);
    /* The signature authenticates its request until the server has seen
     * its nonce: as much a credential as the token, wiped as it is. */
    genauth_wipe(mac, sizeof mac);

    /* Room for the whole line and its NUL before any of the signature is
     * in the buffer: grown after, by its NUL, it would be left by realloc
     * in the block it frees (a line ending at 511 bytes, say). */
    if (genauth_buf_reserve(&out->headers,
                            sizeof("authorization:  :") + strlen(in->scheme) +
                                strlen(in->access_key_id) +
                                strlen((char *)mac64)) < 0
        || genauth_buf_printf(&out->headers, "authorization: %s %s:%s",
                              in->scheme, in->access_key_id,
                              (char *)mac64) < 0
        || genauth_buf_append_char(&out->headers, '\0') < 0) {
        genauth_wipe(mac64, sizeof mac64);
        goto nomem;
    }
    genauth_wipe(mac64, sizeof mac64);
    out->header_count++;
    st = GENAUTH_OK;
    goto done;

nomem:
    st = genauth_error_set(err, GENAUTH_E_NOMEM,
                           "out of memory while signing the request");
fail:
    /* Nothing half-signed may reach the wire. */
    genauth_buf_wipe_reset(&out->headers);
    genauth_buf_reset(&out->string_to_sign);
    out->header_count = 0;
done:
    return st;
}
