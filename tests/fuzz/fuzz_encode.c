/* libFuzzer target: a call's parameters, as the caller's code gives them,
 * through what is done before anything is sent (genauth_call_encode on a
 * client of each auth mode): the endpoint table's checks for each of the
 * eight endpoints, the query string of a GET, the body of a POST (exact
 * JSON, or JavaScript's form when signing), and the AK/SK signature over
 * the canonical string (sign.c). The input's first byte picks the endpoint
 * and the mode; with its bit 0x10, a hostile sdk-version header value
 * follows up to a NUL; the rest is the parameters' JSON text, read by the
 * one parser into json.h's exact tree. Checked:
 *  - a refusal is GENAUTH_E_INVALID with a message;
 *  - a POST body parses, holds no null member (the official SDKs leave
 *    them out) and as many members as were not null; the exact form is a
 *    fixed point of write/parse;
 *  - a GET's URL is the endpoint's, then only unreserved bytes, '+' and
 *    well-formed %XX in k=v pairs parted by '&', which decode (as the
 *    server's parse_qsl would) to the non-null members' names and text;
 *  - signed: the signature is HMAC-SHA1 (OpenSSL's, recomputed) over the
 *    string to sign, which begins with the method and holds each header
 *    sent as it was sent, and for a GET each pair as the server reads it
 *    back: what is signed is what is sent; no header line holds a CR or LF.
 *
 * Build and run: make fuzz-short, or make fuzz (FUZZ_SECONDS=600). */
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret"

static genauth_client *clients[2];
static genauth_conn *conns[2];

/* The two encoders, made once: a client opens nothing until a call. */
static void
encoders_new(void)
{
    genauth_client_options o;
    genauth_error err;

    genauth_error_init(&err);
    FUZZ_CHECK(genauth_global_init(&err) == GENAUTH_OK);
    for (int sign = 0; sign < 2; sign++) {
        genauth_client_options_init(&o);
        o.access_key_id = "AKID";
        o.access_key_secret = SECRET;
        o.tenant_id = "TENANT1";
        o.lang = "zh-CN";
        o.host = "http://127.0.0.1:1";
        o.brand = sign ? GENAUTH_BRAND_AUTHING : GENAUTH_BRAND_GENAUTH;
        o.auth = sign ? GENAUTH_AUTH_SIGNATURE : GENAUTH_AUTH_TOKEN;
        FUZZ_CHECK(genauth_client_new(&o, &clients[sign], &err) ==
                   GENAUTH_OK);
        conns[sign] = genauth_conn_new(clients[sign], &err);
        FUZZ_CHECK(conns[sign] != NULL);
    }
    genauth_error_clear(&err);
}

static int
hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1; /* lower-case hex is not what the encoder writes */
}

/* Decodes one query component, [p, end), as unquote_plus does, into out
 * (room for end - p bytes); returns its length. Aborts on a byte the
 * encoder must not leave as it is. */
static size_t
unquote_plus(const char *p, const char *end, char *out)
{
    size_t n = 0;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            FUZZ_CHECK(end - p >= 3);
            int hi = hex_value(p[1]), lo = hex_value(p[2]);
            FUZZ_CHECK(hi >= 0 && lo >= 0);
            out[n++] = (char)(hi << 4 | lo);
            p += 2;
        } else if (c == '+') {
            out[n++] = ' ';
        } else {
            FUZZ_CHECK((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                       (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                       c == '-' || c == '~');
            out[n++] = (char)c;
        }
    }
    return n;
}

/* The text a member's value is sent as in a query (a string's bytes, a
 * literal as written, true/false), or NULL for another type (written as
 * JSON: not compared here). *len set. */
static const char *
member_text(const cJSON *m, size_t *len)
{
    switch (m->type & 0xFF) {
    case cJSON_String:
        *len = strlen(m->valuestring);
        return m->valuestring;
    case cJSON_Raw:
        if (m->valuestring[0] == '"') /* a string holding U+0000 */
            return NULL;
        *len = strlen(m->valuestring);
        return m->valuestring;
    case cJSON_True:
        *len = 4;
        return "true";
    case cJSON_False:
        *len = 5;
        return "false";
    default:
        return NULL;
    }
}

/* The GET URL against the non-null members of `params`; in signature
 * mode, each pair as the server reads it back is in what was signed. */
static void
check_query(const char *url, const char *base, const cJSON *params,
            const genauth_buf *signed_text)
{
    size_t blen = strlen(base);
    FUZZ_CHECK(strncmp(url, base, blen) == 0);
    const char *p = url + blen, *end = p + strlen(p);
    const cJSON *m = params ? params->child : NULL;
    char *key = malloc(end - p + 1), *value = malloc(end - p + 1);
    char *pair = malloc(2 * (end - p) + 2);
    FUZZ_CHECK(key && value && pair);

    for (; m && cJSON_IsNull(m); m = m->next)
        ;
    FUZZ_CHECK(m ? *p == '?' : p == end);
    while (p < end) {
        p++; /* '?' or '&' */
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        FUZZ_CHECK(eq != NULL && m != NULL);
        size_t klen = unquote_plus(p, eq, key);
        size_t vlen = unquote_plus(eq + 1, stop, value);
        FUZZ_CHECK(klen == strlen(m->string) &&
                   memcmp(key, m->string, klen) == 0);
        size_t tlen = 0;
        const char *text = member_text(m, &tlen);
        FUZZ_CHECK(!text || (vlen == tlen && memcmp(value, text, tlen) == 0));
        if (signed_text) {
            memcpy(pair, key, klen);
            pair[klen] = '=';
            memcpy(pair + klen + 1, value, vlen);
            FUZZ_CHECK(memmem(signed_text->data, signed_text->len, pair,
                              klen + 1 + vlen) != NULL);
        }
        p = stop;
        for (m = m->next; m && cJSON_IsNull(m); m = m->next)
            ;
    }
    FUZZ_CHECK(m == NULL);
    free(pair);
    free(value);
    free(key);
}

/* A POST body: JSON without null members, one per non-null parameter. */
static void
check_body(const genauth_buf *body, const cJSON *params, int exact)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;
    int want = 0, got = 0;

    genauth_error_init(&err);
    FUZZ_CHECK(genauth_json_doc_parse(body->data, body->len, &doc, &err) ==
               GENAUTH_OK);
    const cJSON *root = genauth_json_doc_root(doc);
    FUZZ_CHECK(cJSON_IsObject(root));
    for (const cJSON *m = root->child; m; m = m->next, got++)
        FUZZ_CHECK(!cJSON_IsNull(m));
    for (const cJSON *m = params ? params->child : NULL; m; m = m->next)
        want += !cJSON_IsNull(m);
    FUZZ_CHECK(got == want);
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
    if (exact)
        fuzz_check_fixed_point(body);
}

/* The headers sent: none holds a line break; the authorization header's
 * signature is HMAC-SHA1 over the string to sign with the secret; every
 * other signed header is in that string as it is sent. */
static void
check_signature(const genauth_conn *conn, const struct curl_slist *headers,
                const char *method)
{
    const genauth_buf *sts = &conn->signature.string_to_sign;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    unsigned char mac64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
    const char *auth = NULL;

    FUZZ_CHECK(sts->len > strlen(method) &&
               memcmp(sts->data, method, strlen(method)) == 0 &&
               sts->data[strlen(method)] == '\n');
    FUZZ_CHECK(HMAC(EVP_sha1(), SECRET, (int)strlen(SECRET),
                    (const unsigned char *)sts->data, sts->len, mac,
                    &mac_len) != NULL);
    EVP_EncodeBlock(mac64, mac, (int)mac_len);
    for (const struct curl_slist *h = headers; h; h = h->next) {
        FUZZ_CHECK(!strpbrk(h->data, "\r\n"));
        if (strncmp(h->data, "authorization: ", 15) == 0) {
            auth = h->data + 15;
            continue;
        }
        const char *colon = strstr(h->data, ": ");
        if (!colon || strncmp(h->data, "x-authing-", 10) != 0)
            continue; /* content-type, Expect: not signed */
        /* "name:value\n" in the canonical headers. */
        char *line = malloc(strlen(h->data) + 2);
        FUZZ_CHECK(line != NULL);
        int n = sprintf(line, "\n%.*s:%s\n", (int)(colon - h->data),
                        h->data, colon + 2);
        FUZZ_CHECK(memmem(sts->data, sts->len, line, (size_t)n) != NULL);
        free(line);
    }
    FUZZ_CHECK(auth != NULL);
    const char *sig = strchr(auth, ':');
    FUZZ_CHECK(sig && strncmp(auth, "authing AKID:", 13) == 0);
    FUZZ_CHECK(strcmp(sig + 1, (const char *)mac64) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;
    genauth_call_plan plan = {0};
    cJSON *params = NULL;
    char *sdk = NULL;

    if (!clients[0])
        encoders_new();
    if (size < 1)
        return 0;
    genauth_op op = (genauth_op)(data[0] % GENAUTH_OP_COUNT);
    int sign = (data[0] >> 3) & 1;
    const uint8_t *p = data + 1, *end = data + size;
    if (data[0] & 0x10) {
        size_t n = strnlen((const char *)p, (size_t)(end - p));
        sdk = malloc(n + 1);
        FUZZ_CHECK(sdk != NULL);
        memcpy(sdk, p, n);
        sdk[n] = '\0';
        p += n < (size_t)(end - p) ? n + 1 : n;
    }
    genauth_error_init(&err);
    if (p < end) {
        if (genauth_json_doc_parse((const char *)p, (size_t)(end - p), &doc,
                                   &err) != GENAUTH_OK)
            goto done;
        params = fuzz_rebuild_doc(doc);
    }

    genauth_client *c = clients[sign];
    genauth_conn *conn = conns[sign];
    const genauth_endpoint *ep = genauth_endpoint_of(op);
    genauth_request req = {op, params};
    genauth_sign_fixture fix = {"1fbbe9588899f1b4129021db8d142666",
                                "Thu, 26 Nov 2026 20:24:02 GMT", sdk};
    genauth_status st = genauth_call_encode(c, conn, &req, &fix, &plan, &err);
    if (st != GENAUTH_OK) {
        FUZZ_CHECK(st == GENAUTH_E_INVALID && err.status == st);
        FUZZ_CHECK(err.message[0] != '\0');
        goto done;
    }
    FUZZ_CHECK(cJSON_IsObject(params) || params == NULL);
    FUZZ_CHECK(plan.is_get == ep->is_get);
    if (ep->is_get)
        check_query(plan.url, c->op_urls[op], params,
                    sign ? &conn->signature.string_to_sign : NULL);
    else
        check_body(&conn->request, params, !sign);
    if (sign)
        check_signature(conn, plan.headers, ep->method);
done:
    cJSON_Delete(params);
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
    free(sdk);
    return 0;
}
