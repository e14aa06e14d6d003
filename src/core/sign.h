/* AK/SK request signing (HMAC-SHA1), as the server verifies it.
 *
 * stringToSign = METHOD "\n" canonicalHeaders canonicalResource, where
 *  - canonicalHeaders is every signed header (date and <prefix>*) as
 *    "name:value\n", names lower-case and sorted by UTF-16 code unit;
 *  - canonicalResource is the path, or "path?k1=v1&k2=v2" over the params'
 *    keys sorted by UTF-16 code unit, each value printed as JavaScript does
 *    (objects and arrays as JSON.stringify, scalars as String(v); see
 *    jsform.h), without URL encoding.
 * The signature is base64(HMAC-SHA1(key = secret, msg = stringToSign)).
 *
 * The secret is used only as the HMAC key: it is never copied, stored in the
 * output or put in an error message. */
#ifndef GENAUTH_SIGN_H
#define GENAUTH_SIGN_H

#include <stddef.h>
#include <time.h>

#include "genauth.h"
#include "buf.h"

/* Room for "Thu, 26 Nov 2026 20:24:02 GMT" and its NUL. */
#define GENAUTH_SIGN_DATE_SIZE 32
/* Room for 32 lowercase hex digits and a NUL. */
#define GENAUTH_SIGN_NONCE_SIZE 33

/* Borrowed strings, all NUL-terminated. Header values (sdk_version, lang,
 * tenant_id, nonce, date, access_key_id) must be printable ASCII; tabs and
 * surrounding spaces are normalised as the server does. */
typedef struct {
    const char *method;        /* "POST" or "GET": upper-case letters */
    const char *path;          /* "/api/v3/trigger-webhook": no host, query
                                * or base-URL path prefix */
    /* POST: the JSON body object. GET: the query parameters as the server
     * will parse them from the URL, i.e. string values as they appear there.
     * NULL: none. In json.h's exact form. */
    const cJSON *params;
    const char *header_prefix; /* "x-authing-" or "x-genauth-": [a-z0-9-] */
    const char *scheme;        /* "authing" or "GenAuth" */
    const char *access_key_id;
    const char *access_key_secret;
    const char *sdk_version;   /* e.g. "genauth-c:0.1.0" */
    const char *lang;          /* NULL or blank: no lang header */
    const char *tenant_id;     /* NULL or blank: no app-id header */
    const char *fixed_nonce;   /* tests only; NULL: 128 random bits in hex */
    const char *fixed_date;    /* tests only; NULL: now, RFC 1123 GMT */
} genauth_sign_input;

/* Keep one across calls: genauth_sign reuses the buffers, so signing does
 * not allocate once they have grown. */
typedef struct {
    /* header_count headers, each "name: value" and NUL-terminated, back to
     * back: the signed headers in canonical order, then authorization. Walk
     * them with genauth_signature_header and hand each to
     * curl_slist_append. */
    genauth_buf headers;
    size_t header_count;
    /* What was signed, for tests and diagnostics. It holds no secret (the
     * nonce, date, ids and request parameters), but it does hold the
     * request's data: do not log it by default. May hold NUL bytes (keys or
     * strings with U+0000); use .len. */
    genauth_buf string_to_sign;
} genauth_signature;

void genauth_signature_init(genauth_signature *s);
/* Frees the buffers. */
void genauth_signature_clear(genauth_signature *s);

/* The header after `prev` (NULL: the first), or NULL after the last.
 * Points into s->headers. */
const char *genauth_signature_header(const genauth_signature *s,
                                     const char *prev);

/* Signs the request into *out (its previous content is replaced). On
 * failure *out holds nothing usable. GENAUTH_E_INVALID for a bad input or a
 * parameter JavaScript cannot reproduce (see jsform.h), or when the system's
 * random generator fails; GENAUTH_E_NOMEM. Thread-safe. */
genauth_status genauth_sign(const genauth_sign_input *in,
                            genauth_signature *out, genauth_error *err);

/* Writes 32 lowercase hex digits of fresh randomness and a NUL. */
genauth_status genauth_sign_nonce(char out[GENAUTH_SIGN_NONCE_SIZE],
                                  genauth_error *err);

/* Writes `t` as an RFC 1123 date ("Thu, 26 Nov 2026 20:24:02 GMT"),
 * independent of the C locale. */
void genauth_sign_format_date(time_t t, char out[GENAUTH_SIGN_DATE_SIZE]);

#endif
