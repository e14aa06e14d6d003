/* Unit tests for AK/SK signing (sign.c) and the JavaScript printer it relies
 * on (jsform.c). The expected values come from the API reference's test
 * vectors and from Node's own JSON.stringify / String(v). */
#define _POSIX_C_SOURCE 200809L /* strdup */

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "genauth.h"
#include "json.h"
#include "jsform.h"
#include "sign.h"
#include "internal.h"

#define DATE "Thu, 26 Nov 2026 20:24:02 GMT"

/* ---- helpers ------------------------------------------------------------ */

static cJSON *
str(const char *s)
{
    return genauth_json_string_new(s, strlen(s));
}

static cJSON *
num(const char *lit)
{
    return genauth_json_number_new(lit, strlen(lit));
}

static void
add(cJSON *obj, const char *key, cJSON *item)
{
    if (genauth_json_object_add(obj, key, strlen(key), item) < 0) {
        fprintf(stderr, "out of memory building a test tree\n");
        exit(2);
    }
}

/* JSON.stringify(node), or "<status: message>" when refused. The caller
 * frees the result. */
static char *
js(const cJSON *node)
{
    genauth_buf b;
    genauth_error err;
    char *res;

    genauth_buf_init(&b);
    genauth_error_init(&err);
    if (genauth_json_write_form(node, GENAUTH_JSON_JS, &b, &err)
        != GENAUTH_OK) {
        genauth_buf_reset(&b);
        genauth_buf_printf(&b, "<%s: %s>", genauth_status_name(err.status),
                           err.message);
    }
    res = strdup(b.data ? b.data : "");
    genauth_buf_clear(&b);
    genauth_error_clear(&err);
    return res;
}

#define CHECK_JS(node, want)                                                 \
    do {                                                                     \
        cJSON *js_node_ = (node);                                            \
        char *js_text_ = js(js_node_);                                       \
        CHECK_STR(js_text_, want);                                           \
        free(js_text_);                                                      \
        cJSON_Delete(js_node_);                                              \
    } while (0)

static genauth_sign_input
vector_input(const char *method, const char *path, const cJSON *params,
             const char *nonce)
{
    genauth_sign_input in;

    memset(&in, 0, sizeof in);
    in.method = method;
    in.path = path;
    in.params = params;
    in.header_prefix = "x-authing-";
    in.scheme = "authing";
    in.access_key_id = "AKID";
    in.access_key_secret = "SECRET";
    in.sdk_version = "authing-node-sdk:4.0.1";
    in.lang = "zh-CN";
    in.tenant_id = "TENANT1";
    in.fixed_nonce = nonce;
    in.fixed_date = DATE;
    return in;
}

/* The value of header `name` in the signature, or NULL. */
static const char *
header(const genauth_signature *s, const char *name)
{
    size_t n = strlen(name);

    for (const char *h = genauth_signature_header(s, NULL); h;
         h = genauth_signature_header(s, h)) {
        if (strncmp(h, name, n) == 0 && h[n] == ':' && h[n + 1] == ' ')
            return h + n + 2;
    }
    return NULL;
}

/* ---- the reference's four vectors --------------------------------------- */

static cJSON *
trigger_body(void)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *hdrs = cJSON_CreateObject();
    cJSON *rb = cJSON_CreateObject();
    cJSON *data = cJSON_CreateObject();

    add(body, "webhookId", str("wh1"));
    add(hdrs, "X-A", str("b"));
    add(body, "requestHeaders", hdrs);
    add(rb, "eventName", str("test"));
    add(data, "z", num("1"));
    add(data, "a", str("\xe4\xb8\xad\xe6\x96\x87/\"q\""));
    add(rb, "data", data);
    add(body, "requestBody", rb);
    return body;
}

static void
test_vector_post(void)
{
    static const char want_sts[] =
        "POST\n"
        "date:Thu, 26 Nov 2026 20:24:02 GMT\n"
        "x-authing-app-id:TENANT1\n"
        "x-authing-lang:zh-CN\n"
        "x-authing-sdk-version:authing-node-sdk:4.0.1\n"
        "x-authing-signature-method:HMAC-SHA1\n"
        "x-authing-signature-nonce:1fbbe9588899f1b4129021db8d142666\n"
        "x-authing-signature-version:1.0\n"
        "/api/v3/trigger-webhook?requestBody={\"eventName\":\"test\",\"data\":"
        "{\"z\":1,\"a\":\"\xe4\xb8\xad\xe6\x96\x87/\\\"q\\\"\"}}"
        "&requestHeaders={\"X-A\":\"b\"}&webhookId=wh1";
    static const char *want_headers[] = {
        "date: Thu, 26 Nov 2026 20:24:02 GMT",
        "x-authing-app-id: TENANT1",
        "x-authing-lang: zh-CN",
        "x-authing-sdk-version: authing-node-sdk:4.0.1",
        "x-authing-signature-method: HMAC-SHA1",
        "x-authing-signature-nonce: 1fbbe9588899f1b4129021db8d142666",
        "x-authing-signature-version: 1.0",
        "authorization: authing AKID:ME47QqDTGaldhVphTLY0rDvd9HE=",
    };
    cJSON *body = trigger_body();
    genauth_sign_input in = vector_input("POST", "/api/v3/trigger-webhook",
                                         body,
                                         "1fbbe9588899f1b4129021db8d142666");
    genauth_signature sig;
    genauth_error err;
    genauth_buf sent;
    const char *h;
    size_t i = 0;

    genauth_signature_init(&sig);
    genauth_error_init(&err);
    genauth_buf_init(&sent);

    /* The body the client sends is the reference's, byte for byte. */
    CHECK(genauth_json_write(body, &sent) == 0);
    CHECK_STR(sent.data,
              "{\"webhookId\":\"wh1\",\"requestHeaders\":{\"X-A\":\"b\"},"
              "\"requestBody\":{\"eventName\":\"test\",\"data\":{\"z\":1,"
              "\"a\":\"\xe4\xb8\xad\xe6\x96\x87/\\\"q\\\"\"}}}");

    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
    CHECK_MEM(sig.string_to_sign.data, sig.string_to_sign.len, want_sts,
              sizeof want_sts - 1);
    CHECK(sig.header_count == 8);
    for (h = genauth_signature_header(&sig, NULL); h && i < 8;
         h = genauth_signature_header(&sig, h))
        CHECK_STR(h, want_headers[i++]);
    CHECK(i == 8 && h == NULL);

    /* Signing again into the same struct replaces, not appends. */
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
    CHECK(sig.header_count == 8);
    CHECK_MEM(sig.string_to_sign.data, sig.string_to_sign.len, want_sts,
              sizeof want_sts - 1);

    /* Spaces and tabs around a value are what the server strips. */
    in.lang = " \tzh-CN\t ";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
    CHECK_STR(header(&sig, "authorization"),
              "authing AKID:ME47QqDTGaldhVphTLY0rDvd9HE=");
    CHECK_STR(header(&sig, "x-authing-lang"), "zh-CN");

    /* The signature is a credential until its nonce is used: signing
     * again, even refused, leaves none of the last one in the storage. */
    size_t signed_len = sig.headers.len; /* what of it was ever written */
    in.lang = "zh-CN\r\nx-evil: 1";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    CHECK(sig.headers.data &&
          !memmem(sig.headers.data, signed_len, "ME47QqDT", 8));

    genauth_buf_clear(&sent);
    genauth_signature_clear(&sig);
    genauth_error_clear(&err);
    cJSON_Delete(body);
}

static void
check_get(const char *path, const cJSON *params, const char *nonce,
          const char *resource, const char *want_auth)
{
    genauth_sign_input in = vector_input("GET", path, params, nonce);
    genauth_signature sig;
    genauth_error err;
    size_t rlen = strlen(resource);

    genauth_signature_init(&sig);
    genauth_error_init(&err);
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
    CHECK(sig.string_to_sign.len > rlen);
    CHECK_STR(sig.string_to_sign.data + sig.string_to_sign.len - rlen,
              resource);
    CHECK(sig.string_to_sign.data[sig.string_to_sign.len - rlen - 1] == '\n');
    CHECK_STR(header(&sig, "authorization"), want_auth);
    genauth_signature_clear(&sig);
    genauth_error_clear(&err);
}

static void
test_vectors_get(void)
{
    cJSON *q = cJSON_CreateObject();
    cJSON *qn = cJSON_CreateObject();
    cJSON *w = cJSON_CreateObject();
    cJSON *empty = cJSON_CreateObject();

    /* Query parameters as the server parses them: strings; numbers print
     * the same. */
    add(q, "page", str("1"));
    add(q, "limit", str("10"));
    add(qn, "page", num("1"));
    add(qn, "limit", num("10"));
    add(w, "webhookId", str("wh1"));

    check_get("/api/v3/list-webhooks", q, "1f52e922fb0386ebeee6c68530f8535a",
              "/api/v3/list-webhooks?limit=10&page=1",
              "authing AKID:0o+VyL2Lez+u1g++5lNTfqQBXoc=");
    check_get("/api/v3/list-webhooks", qn, "1f52e922fb0386ebeee6c68530f8535a",
              "/api/v3/list-webhooks?limit=10&page=1",
              "authing AKID:0o+VyL2Lez+u1g++5lNTfqQBXoc=");
    check_get("/api/v3/get-webhook", w, "a866f4c9f348d95d1841843e029f1580",
              "/api/v3/get-webhook?webhookId=wh1",
              "authing AKID:I3wiTXhrSI70/GDTpEfiWW3MeVA=");
    check_get("/api/v3/get-webhook-event-list", NULL,
              "d2667e5822ab547130d4f2a4197ada1a",
              "/api/v3/get-webhook-event-list",
              "authing AKID:eTHoxsoVivdfjzJDCd2sqxyjy30=");
    /* No keys is the bare path too. */
    check_get("/api/v3/get-webhook-event-list", empty,
              "d2667e5822ab547130d4f2a4197ada1a",
              "/api/v3/get-webhook-event-list",
              "authing AKID:eTHoxsoVivdfjzJDCd2sqxyjy30=");

    cJSON_Delete(q);
    cJSON_Delete(qn);
    cJSON_Delete(w);
    cJSON_Delete(empty);
}

/* ---- brands, headers, nonce, date ---------------------------------------- */

static void
test_genauth_brand(void)
{
    cJSON *w = cJSON_CreateObject();
    genauth_sign_input in = vector_input("GET", "/api/v3/get-webhook", w,
                                         "a866f4c9f348d95d1841843e029f1580");
    genauth_signature sig;
    genauth_error err;
    size_t prefixed = 0;

    add(w, "webhookId", str("wh1"));
    in.header_prefix = "x-genauth-";
    in.scheme = "GenAuth";
    genauth_signature_init(&sig);
    genauth_error_init(&err);
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
    for (const char *h = genauth_signature_header(&sig, NULL); h;
         h = genauth_signature_header(&sig, h)) {
        CHECK(strncmp(h, "x-authing-", 10) != 0);
        if (strncmp(h, "x-genauth-", 10) == 0)
            prefixed++;
    }
    CHECK(prefixed == 6);
    CHECK_STR(header(&sig, "x-genauth-app-id"), "TENANT1");
    CHECK_STR(header(&sig, "x-genauth-signature-method"), "HMAC-SHA1");
    CHECK(strstr(sig.string_to_sign.data, "\nx-genauth-lang:zh-CN\n") != NULL);
    /* HMAC-SHA1 of the same request with x-genauth- names, computed
     * independently. */
    CHECK_STR(header(&sig, "authorization"),
              "GenAuth AKID:Xe5ZfwmRwM/ahG+5cWz5W5ZIsBk=");

    /* A prefix that sorts before "date" moves date to the end. */
    in.header_prefix = "a-";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
    CHECK(strncmp(genauth_signature_header(&sig, NULL), "a-app-id: ", 10)
          == 0);
    CHECK(strstr(sig.string_to_sign.data,
                 "\na-signature-version:1.0\ndate:" DATE "\n/api/")
          != NULL);
    in.header_prefix = "x-genauth-";

    /* No lang, no tenant: those headers are left out, unsigned. */
    in.lang = NULL;
    in.tenant_id = "  ";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
    CHECK(sig.header_count == 6);
    CHECK(header(&sig, "x-genauth-lang") == NULL);
    CHECK(header(&sig, "x-genauth-app-id") == NULL);
    CHECK(strstr(sig.string_to_sign.data, "lang") == NULL);

    genauth_signature_clear(&sig);
    genauth_error_clear(&err);
    cJSON_Delete(w);
}

static int
is_nonce(const char *s)
{
    if (!s || strlen(s) != 32)
        return 0;
    for (; *s; s++) {
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    }
    return 1;
}

static int
is_date(const char *s)
{
    /* "Thu, 26 Nov 2026 20:24:02 GMT" */
    static const char shape[] = "Aaa, 00 Aaa 0000 00:00:00 GMT";

    if (!s || strlen(s) != sizeof shape - 1)
        return 0;
    for (size_t i = 0; shape[i]; i++) {
        char c = s[i];
        if ((shape[i] == '0' && !(c >= '0' && c <= '9'))
            || (shape[i] == 'A' && !(c >= 'A' && c <= 'Z'))
            || (shape[i] == 'a' && !(c >= 'a' && c <= 'z'))
            || (strchr("0Aa", shape[i]) == NULL && c != shape[i]))
            return 0;
    }
    return 1;
}

static void
test_nonce_and_date(void)
{
    char a[GENAUTH_SIGN_NONCE_SIZE], b[GENAUTH_SIGN_NONCE_SIZE];
    char d[GENAUTH_SIGN_DATE_SIZE];
    genauth_error err;
    genauth_signature s1, s2;
    genauth_sign_input in = vector_input("GET", "/api/v3/x", NULL, NULL);

    genauth_error_init(&err);
    CHECK(genauth_sign_nonce(a, &err) == GENAUTH_OK);
    CHECK(genauth_sign_nonce(b, &err) == GENAUTH_OK);
    CHECK(is_nonce(a));
    CHECK(is_nonce(b));
    CHECK(strcmp(a, b) != 0);

    genauth_sign_format_date(0, d);
    CHECK_STR(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    genauth_sign_format_date(1795724642, d);
    CHECK_STR(d, DATE);
    genauth_sign_format_date(951782400, d); /* a leap day */
    CHECK_STR(d, "Tue, 29 Feb 2000 00:00:00 GMT");
    /* The calendar by arithmetic agrees with gmtime_r's, before 1970 too,
     * over centuries (2100 is no leap year, 2400 is). */
    for (long long t = -2208988800LL; t < 13569465600LL;
         t += 86400 * 13 + 3607) {
        time_t tt = (time_t)t;
        struct tm tm;
        char want[GENAUTH_SIGN_DATE_SIZE];
        CHECK(gmtime_r(&tt, &tm) != NULL);
        strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        genauth_sign_format_date(tt, d);
        CHECK_STR(d, want);
    }

    /* Unfixed: a fresh nonce per request and the current date. */
    in.fixed_date = NULL;
    genauth_signature_init(&s1);
    genauth_signature_init(&s2);
    CHECK(genauth_sign(&in, &s1, &err) == GENAUTH_OK);
    CHECK(genauth_sign(&in, &s2, &err) == GENAUTH_OK);
    CHECK(is_nonce(header(&s1, "x-authing-signature-nonce")));
    CHECK(is_nonce(header(&s2, "x-authing-signature-nonce")));
    CHECK(header(&s1, "x-authing-signature-nonce")
          && header(&s2, "x-authing-signature-nonce")
          && strcmp(header(&s1, "x-authing-signature-nonce"),
                    header(&s2, "x-authing-signature-nonce")) != 0);
    CHECK(is_date(header(&s1, "date")));
    CHECK(!is_date("Thu, 26 Nov 2026 20:24:02 UTC"));
    genauth_signature_clear(&s1);
    genauth_signature_clear(&s2);
    genauth_error_clear(&err);
}

static void
test_bad_input(void)
{
    genauth_sign_input in = vector_input("POST", "/api/v3/x", NULL,
                                         "1fbbe9588899f1b4129021db8d142666");
    genauth_signature sig;
    genauth_error err;
    cJSON *arr = cJSON_CreateArray();
    cJSON *bad = cJSON_CreateObject();

    genauth_signature_init(&sig);
    genauth_error_init(&err);

    /* A CR/LF would split the header: refused, the secret not named. */
    in.lang = "zh-CN\r\nx-evil: 1";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    CHECK(strstr(err.message, "lang") != NULL);
    CHECK(strstr(err.message, "SECRET") == NULL);
    CHECK(sig.header_count == 0 && sig.string_to_sign.len == 0);
    in.lang = "zh-CN";

    in.tenant_id = "\xe4\xb8\xad";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    in.tenant_id = "TENANT1";

    in.method = "post";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    in.method = "POST";

    in.path = "/api?x=1";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    in.path = "/api/v3/x";

    in.access_key_secret = "";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    in.access_key_secret = "SECRET";

    in.access_key_id = "AK ID";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    in.access_key_id = "AKID";

    in.header_prefix = "X-Authing-";
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    in.header_prefix = "x-authing-";

    in.params = arr;
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    CHECK(genauth_sign(NULL, &sig, &err) == GENAUTH_E_INVALID);

    /* An unsafe integer anywhere in the body stops the signing. */
    add(bad, "n", num("9007199254740993"));
    in.params = bad;
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_E_INVALID);
    CHECK(strstr(err.message, "9007199254740993") != NULL);
    CHECK(sig.header_count == 0 && sig.string_to_sign.len == 0);

    in.params = NULL;
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);

    genauth_signature_clear(&sig);
    genauth_error_clear(&err);
    cJSON_Delete(arr);
    cJSON_Delete(bad);
}

/* ---- the canonical resource --------------------------------------------- */

static void
check_resource(const cJSON *params, const char *want, size_t want_len)
{
    genauth_sign_input in = vector_input("POST", "/p", params,
                                         "1fbbe9588899f1b4129021db8d142666");
    genauth_signature sig;
    genauth_error err;
    size_t len;

    genauth_signature_init(&sig);
    genauth_error_init(&err);
    CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
    /* The resource is what follows the last header line. */
    len = sig.string_to_sign.len;
    CHECK(len >= want_len);
    if (len >= want_len)
        CHECK_MEM(sig.string_to_sign.data + len - want_len, want_len, want,
                  want_len);
    genauth_signature_clear(&sig);
    genauth_error_clear(&err);
}

static void
test_resource(void)
{
    static const char nul_want[] = "/p?k\0=a\0b&z=1";
    cJSON *p = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    cJSON *o = cJSON_CreateObject();
    cJSON *u = cJSON_CreateObject();
    cJSON *nul = cJSON_CreateObject();
    cJSON *many = cJSON_CreateObject();
    genauth_buf want;
    char key[8];

    /* Scalars as String(v), objects and arrays as JSON.stringify; a JSON
     * null is a value, not an absence. */
    add(p, "t", cJSON_CreateTrue());
    add(p, "f", cJSON_CreateFalse());
    add(p, "n", cJSON_CreateNull());
    add(p, "s", str("x y/\xc3\xa9\"")); /* no URL encoding, no quotes */
    cJSON_AddItemToArray(arr, num("1.0"));
    cJSON_AddItemToArray(arr, str("a"));
    add(p, "arr", arr);
    add(o, "k", cJSON_CreateNull());
    add(p, "o", o);
    add(p, "num", num("2.50"));
    add(p, "B", str("upper sorts first"));
    check_resource(p,
                   "/p?B=upper sorts first&arr=[1,\"a\"]&f=false&n=null"
                   "&num=2.5&o={\"k\":null}&s=x y/\xc3\xa9\"&t=true",
                   strlen("/p?B=upper sorts first&arr=[1,\"a\"]&f=false"
                          "&n=null&num=2.5&o={\"k\":null}"
                          "&s=x y/\xc3\xa9\"&t=true"));

    /* UTF-16 order: U+1F600 (a surrogate pair, D83D..) sorts before
     * U+FF61, though its UTF-8 bytes (F0..) sort after (EF..). */
    add(u, "\xef\xbd\xa1", num("1"));
    add(u, "\xf0\x9f\x98\x80", num("2"));
    add(u, "\xc3\xa9", num("3"));
    add(u, "a", num("4"));
    check_resource(u,
                   "/p?a=4&\xc3\xa9=3&\xf0\x9f\x98\x80=2&\xef\xbd\xa1=1",
                   strlen("/p?a=4&\xc3\xa9=3&\xf0\x9f\x98\x80=2"
                          "&\xef\xbd\xa1=1"));

    /* A key and a value holding U+0000 are signed as their real bytes. */
    CHECK(genauth_json_object_add(nul, "k\0", 2,
                                  genauth_json_string_new("a\0b", 3)) == 0);
    add(nul, "z", num("1"));
    check_resource(nul, nul_want, sizeof nul_want - 1);

    /* More keys than the stack sort holds. */
    genauth_buf_init(&want);
    genauth_buf_append_str(&want, "/p");
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%02u", (unsigned)(39 - i) % 100u);
        add(many, key, num("1"));
    }
    for (int i = 0; i < 40; i++)
        genauth_buf_printf(&want, "%ck%02d=1", i ? '&' : '?', i);
    check_resource(many, want.data, want.len);

    genauth_buf_clear(&want);
    cJSON_Delete(p);
    cJSON_Delete(u);
    cJSON_Delete(nul);
    cJSON_Delete(many);
}

/* ---- jsform ------------------------------------------------------------- */

static void
test_numbers(void)
{
    static const char *const table[][2] = {
        {"1.0", "1"},
        {"-0", "0"},
        {"-0.0", "0"},
        {"0", "0"},
        {"1e21", "1e+21"},
        {"1e+21", "1e+21"},
        {"1e20", "100000000000000000000"},
        {"1.5e-7", "1.5e-7"},
        {"0.000001", "0.000001"},
        {"1e-7", "1e-7"},
        {"1.2345678901234568e20", "123456789012345680000"},
        {"123456789012345678901.0", "123456789012345680000"},
        {"999999999999999999999.0", "1e+21"},
        {"1152921504606846976.0", "1152921504606847000"},
        {"0.1", "0.1"},
        {"-1.5", "-1.5"},
        {"100", "100"},
        {"-42", "-42"},
        {"9007199254740991", "9007199254740991"},
        {"-9007199254740991", "-9007199254740991"},
        {"1e-400", "0"},
        {"5e-324", "5e-324"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"1.5e300", "1.5e+300"},
        {"123.456", "123.456"},
        {"0.1e1", "1"},
        {"1E2", "100"},
        {"2.5E+3", "2500"},
        {"-1e-7", "-1e-7"},
        {"1.23e-5", "0.0000123"},
        {"0.000001234", "0.000001234"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"4.35", "4.35"},
        /* Powers of two, where the correctly rounded 16 digits do not read
         * back but the other neighbour does (2**-24, 2**-1017, 2**-791). */
        {"5.9604644775390625e-8", "5.960464477539063e-8"},
        {"7.120236347223045e-307", "7.120236347223045e-307"},
        {"7.678447687145631e-239", "7.678447687145631e-239"},
    };
    static const char *const refused[] = {
        "9007199254740992", "-9007199254740992", "9007199254740993",
        "12345678901234567890", "1e400", "-1e400",
        /* not JSON numbers */
        "01", "1.", ".5", "+1", "1e", "0x10", "abc", "1 ", "",
    };
    genauth_buf b;
    genauth_error err;
    cJSON *n;

    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        CHECK_JS(num(table[i][0]), table[i][1]);
        /* String(v) agrees for numbers. */
        n = num(table[i][0]);
        genauth_buf_init(&b);
        genauth_error_init(&err);
        CHECK(genauth_jsform_string(n, &b, &err) == GENAUTH_OK);
        CHECK_STR(b.data, table[i][1]);
        genauth_buf_clear(&b);
        cJSON_Delete(n);
    }
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        n = num(refused[i]);
        genauth_buf_init(&b);
        genauth_error_init(&err);
        CHECK(genauth_json_write_form(n, GENAUTH_JSON_JS, &b, &err)
              == GENAUTH_E_INVALID);
        genauth_buf_clear(&b);
        cJSON_Delete(n);
    }

    n = num("9007199254740993");
    genauth_buf_init(&b);
    genauth_error_init(&err);
    CHECK(genauth_json_write_form(n, GENAUTH_JSON_JS, &b, &err)
          == GENAUTH_E_INVALID);
    CHECK_STR(err.message,
              "integer 9007199254740993 is outside JavaScript's safe range "
              "(\xc2\xb1" "9007199254740991) and cannot be signed faithfully");
    genauth_buf_clear(&b);
    cJSON_Delete(n);

    /* cJSON's own number nodes (doubles). */
    CHECK_JS(cJSON_CreateNumber(0.1 + 0.2), "0.30000000000000004");
    CHECK_JS(cJSON_CreateNumber(1e21), "1e+21");
    CHECK_JS(cJSON_CreateNumber(-0.0), "0");
    CHECK_JS(cJSON_CreateNumber(42), "42");
    CHECK_JS(cJSON_CreateNumber(1152921504606846976.0), "1152921504606847000");
    CHECK_JS(cJSON_CreateNumber(1.5e-7), "1.5e-7");
    /* json.c sends a non-finite double as null. */
    CHECK_JS(cJSON_CreateNumber(NAN), "null");
}

static void
test_objects_and_arrays(void)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *big = cJSON_CreateObject();
    cJSON *a = cJSON_CreateArray();
    cJSON *inner = cJSON_CreateArray();
    cJSON *inner2 = cJSON_CreateArray();
    cJSON *deep, *cur;
    genauth_buf want;
    char key[16];

    add(o, "b", num("1"));
    add(o, "10", num("2"));
    add(o, "2", num("3"));
    add(o, "a", num("4"));
    add(o, "01", num("5"));
    add(o, "4294967295", num("7")); /* past the largest array index */
    add(o, "4294967294", num("6"));
    add(o, "-1", num("8"));
    CHECK_JS(o, "{\"2\":3,\"10\":2,\"4294967294\":6,\"b\":1,\"a\":4,\"01\":5,"
                "\"4294967295\":7,\"-1\":8}");

    /* More integer-like keys than the stack sort holds. */
    genauth_buf_init(&want);
    genauth_buf_append_char(&want, '{');
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof key, "%d", (29 - i) * 7);
        add(big, key, num("0"));
        if (i == 10)
            add(big, "x", cJSON_CreateTrue());
    }
    for (int i = 0; i < 30; i++)
        genauth_buf_printf(&want, "%s\"%d\":0", i ? "," : "", i * 7);
    genauth_buf_append_str(&want, ",\"x\":true}");
    CHECK_JS(big, want.data);
    genauth_buf_clear(&want);

    /* A repeated key stands once, where it first stood, with its last
     * value: what JSON.parse makes of the exact form's text. */
    {
        cJSON *rep = cJSON_CreateObject();
        cJSON *many = cJSON_CreateObject();
        add(rep, "b", num("1"));
        add(rep, "1", num("2"));
        add(rep, "c", num("3"));
        add(rep, "b", num("4"));
        add(rep, "1", num("5"));
        add(rep, "b", num("6"));
        CHECK_JS(rep, "{\"1\":5,\"b\":6,\"c\":3}");
        genauth_buf_init(&want);
        genauth_buf_append_str(&want, "{\"7\":true");
        for (int i = 0; i < 40; i++) {
            snprintf(key, sizeof key, "k%d", i);
            add(many, key, num("0"));
            genauth_buf_printf(&want, ",\"k%d\":%d", i, i == 39 ? 1 : 0);
            if (i == 20)
                add(many, "7", cJSON_CreateFalse());
        }
        add(many, "k39", num("1"));
        add(many, "7", cJSON_CreateTrue());
        genauth_buf_append_char(&want, '}');
        CHECK_JS(many, want.data);
        genauth_buf_clear(&want);
    }

    cJSON_AddItemToArray(inner2, cJSON_CreateArray());
    cJSON_AddItemToArray(inner2, cJSON_CreateObject());
    cJSON_AddItemToArray(inner, num("1"));
    cJSON_AddItemToArray(inner, inner2);
    cJSON_AddItemToArray(a, inner);
    cJSON_AddItemToArray(a, str("x"));
    cJSON_AddItemToArray(a, cJSON_CreateNull());
    cJSON_AddItemToArray(a, cJSON_CreateFalse());
    CHECK_JS(a, "[[1,[[],{}]],\"x\",null,false]");

    /* As deep as the JSON printer allows, and one more. */
    deep = cJSON_CreateArray();
    cur = deep;
    for (int i = 1; i < GENAUTH_JSON_MAX_DEPTH; i++) {
        cJSON *next = cJSON_CreateArray();
        cJSON_AddItemToArray(cur, next);
        cur = next;
    }
    {
        char *g = js(deep);
        CHECK(g[0] == '[' && strlen(g) == 2 * GENAUTH_JSON_MAX_DEPTH);
        free(g);
    }
    cJSON_AddItemToArray(cur, cJSON_CreateArray());
    {
        char *g = js(deep);
        CHECK(strncmp(g, "<GENAUTH_E_INVALID", 18) == 0);
        free(g);
    }
    cJSON_Delete(deep);
}

static void
test_strings(void)
{
    genauth_buf b;
    genauth_error err;
    cJSON *n, *o;

    /* JSON.stringify's escapes; DEL, '/', U+2028 and non-ASCII as is. */
    CHECK_JS(str("\"\\\b\f\n\r\t\x01\x1f\x7f/\xc3\xa9\xe2\x80\xa8"),
             "\"\\\"\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\x7f/\xc3\xa9"
             "\xe2\x80\xa8\"");
    CHECK_JS(str("\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80"),
             "\"\xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80\"");
    CHECK_JS(str(""), "\"\"");

    /* Not UTF-8: refused rather than signed as something else. */
    CHECK_JS(str("\xff"), "<GENAUTH_E_INVALID: a string is not valid UTF-8 "
                          "and cannot be signed>");
    CHECK_JS(str("\xc0\xaf"), "<GENAUTH_E_INVALID: a string is not valid "
                              "UTF-8 and cannot be signed>");
    CHECK_JS(str("\xed\xa0\x80"), "<GENAUTH_E_INVALID: a string is not valid "
                                  "UTF-8 and cannot be signed>");

    /* A string holding U+0000, as the binding builds it. */
    n = genauth_json_string_new("a\0b\n", 4);
    CHECK(n && cJSON_IsRaw(n));
    CHECK_JS(n, "\"a\\u0000b\\n\"");
    n = genauth_json_string_new("a\0b\n", 4);
    genauth_buf_init(&b);
    genauth_error_init(&err);
    CHECK(genauth_jsform_string(n, &b, &err) == GENAUTH_OK);
    CHECK_MEM(b.data, b.len, "a\0b\n", 4);
    genauth_buf_clear(&b);
    cJSON_Delete(n);

    /* Raw literals are printed as JavaScript re-prints what it parsed. */
    CHECK_JS(cJSON_CreateRaw("\"\\u00e9\\/\\u001F\\ud83d\\ude00\""),
             "\"\xc3\xa9/\\u001f\xf0\x9f\x98\x80\"");
    CHECK_JS(cJSON_CreateRaw("\"\\ud800x\""), "\"\\ud800x\"");
    n = cJSON_CreateRaw("\"\\ud800x\"");
    genauth_buf_init(&b);
    CHECK(genauth_jsform_string(n, &b, &err) == GENAUTH_OK);
    CHECK_STR(b.data, "\xef\xbf\xbdx"); /* as Node's UTF-8 encoder does */
    genauth_buf_clear(&b);
    cJSON_Delete(n);
    CHECK_JS(cJSON_CreateRaw("\"a\\x\""), "<GENAUTH_E_INVALID: a raw string "
             "literal or escaped key is not valid JSON string content>");
    CHECK_JS(cJSON_CreateRaw("\"a\\\""), "<GENAUTH_E_INVALID: a raw string "
             "literal or escaped key is not valid JSON string content>");
    CHECK_JS(cJSON_CreateRaw("\"a\"b\""), "<GENAUTH_E_INVALID: a raw string "
             "literal or escaped key is not valid JSON string content>");
    CHECK_JS(cJSON_CreateRaw("\""), "<GENAUTH_E_INVALID: a raw string "
             "literal is not valid JSON>");

    /* A key holding U+0000, escaped by json.c and re-escaped here. */
    o = cJSON_CreateObject();
    CHECK(genauth_json_object_add(o, "k\0\"", 3, cJSON_CreateTrue()) == 0);
    add(o, "\xc3\xa9\t", cJSON_CreateNull());
    CHECK_JS(o, "{\"k\\u0000\\\"\":true,\"\xc3\xa9\\t\":null}");

    /* String(v) of the scalars; containers are not scalars. */
    genauth_buf_init(&b);
    n = cJSON_CreateTrue();
    CHECK(genauth_jsform_string(n, &b, &err) == GENAUTH_OK);
    cJSON_Delete(n);
    n = cJSON_CreateNull();
    CHECK(genauth_jsform_string(n, &b, &err) == GENAUTH_OK);
    cJSON_Delete(n);
    n = str("\"q\"\n");
    CHECK(genauth_jsform_string(n, &b, &err) == GENAUTH_OK);
    cJSON_Delete(n);
    CHECK_STR(b.data, "truenull\"q\"\n");
    n = cJSON_CreateArray();
    CHECK(genauth_jsform_string(n, &b, &err) == GENAUTH_E_INVALID);
    cJSON_Delete(n);
    genauth_buf_clear(&b);
    genauth_error_clear(&err);
}

/* Both forms of `node` print the same bytes (and `want`, unless NULL);
 * frees node. */
static void
check_forms_alike(cJSON *node, const char *want)
{
    genauth_buf exact, jsf;
    genauth_error err;

    genauth_buf_init(&exact);
    genauth_buf_init(&jsf);
    genauth_error_init(&err);
    CHECK(genauth_json_write(node, &exact) == 0);
    CHECK(genauth_json_write_form(node, GENAUTH_JSON_JS, &jsf, &err)
          == GENAUTH_OK);
    CHECK_MEM(jsf.data, jsf.len, exact.data, exact.len);
    if (want)
        CHECK_STR(exact.data, want);
    genauth_buf_clear(&exact);
    genauth_buf_clear(&jsf);
    genauth_error_clear(&err);
    cJSON_Delete(node);
}

/* The exact form (what is sent) and the JavaScript form (what is signed)
 * share one escaper: for every string they print the same bytes, so a
 * string never makes the body and the signature disagree. */
static void
test_forms_escape_alike(void)
{
    static const char *const texts[] = {
        "\xe4\xb8\xad/\xf0\x9f\x98\x80\xe2\x80\xa8\x7f",
        "\"\\\b\f\n\r\t",
        "",
    };
    genauth_buf exact, jsf;
    genauth_error err;
    char one[2] = {0, 0};
    cJSON *n, *o;
    int c;
    size_t i;

    genauth_buf_init(&exact);
    genauth_buf_init(&jsf);
    genauth_error_init(&err);
    for (c = 0; c < 0x100 + (int)(sizeof texts / sizeof *texts); c++) {
        if (c < 0x80) {
            one[0] = (char)c;
            /* U+0000 makes a raw literal node, the others string nodes. */
            n = genauth_json_string_new(one, 1);
        } else if (c < 0x100) {
            continue; /* a lone byte above 0x7F is not UTF-8 */
        } else {
            n = str(texts[c - 0x100]);
        }
        check_forms_alike(n, NULL);
    }
    /* Control characters as JSON.stringify writes them. */
    check_forms_alike(str("\x01\x1f\b"), "\"\\u0001\\u001f\\b\"");

    /* Keys too, an escaped one (holding U+0000) included. */
    o = cJSON_CreateObject();
    CHECK(genauth_json_object_add(o, "k\0\"\n", 4, cJSON_CreateTrue()) == 0);
    add(o, "\xc3\xa9\t/", cJSON_CreateNull());
    check_forms_alike(o, "{\"k\\u0000\\\"\\n\":true,\"\xc3\xa9\\t/\":null}");

    /* The exact form sends bytes as they are; the JavaScript form refuses
     * what is not UTF-8 and leaves the buffer as it was. */
    n = str("a\xff");
    genauth_buf_reset(&exact);
    CHECK(genauth_json_write(n, &exact) == 0);
    CHECK_STR(exact.data, "\"a\xff\"");
    genauth_buf_reset(&jsf);
    CHECK(genauth_buf_append_str(&jsf, "kept") == 0);
    CHECK(genauth_json_write_form(n, GENAUTH_JSON_JS, &jsf, &err)
          == GENAUTH_E_INVALID);
    CHECK_STR(jsf.data, "kept");
    cJSON_Delete(n);
    for (i = 0; i < 2; i++) /* no tree at all */
        CHECK(genauth_json_write_form(NULL, i ? GENAUTH_JSON_JS
                                              : GENAUTH_JSON_EXACT,
                                      &jsf, &err) == GENAUTH_E_INVALID);
    CHECK_STR(jsf.data, "kept");

    genauth_buf_clear(&exact);
    genauth_buf_clear(&jsf);
    genauth_error_clear(&err);
}

/* A host process may switch LC_NUMERIC to a decimal comma (Python's
 * locale.setlocale does): numbers and dates must not change. The comma
 * locale is part of the test setup (`make test-deps` generates de_DE.UTF-8):
 * without it this check fails rather than pass for nothing. */
static void
test_comma_locale(void)
{
    char d[GENAUTH_SIGN_DATE_SIZE];

    if (!setlocale(LC_ALL, "de_DE.UTF-8")) {
        printf("test_sign: no de_DE.UTF-8 locale: run `make test-deps` "
               "(or localedef -i de_DE -f UTF-8 de_DE.UTF-8)\n");
        CHECK(!"the de_DE.UTF-8 locale is installed");
        return;
    }
    /* The locale really has a decimal comma, or this proves nothing. */
    CHECK_STR(localeconv()->decimal_point, ",");
    CHECK_JS(num("1.5"), "1.5");
    CHECK_JS(num("0.1e1"), "1");
    CHECK_JS(num("-2.5e-7"), "-2.5e-7");
    CHECK_JS(cJSON_CreateNumber(0.25), "0.25");
    genauth_sign_format_date(1795724642, d);
    CHECK_STR(d, DATE);
    setlocale(LC_ALL, "C");
}

/* ---- the request path, end to end --------------------------------------- */

/* A client with its own connection for encoding tests; NULL *conn on
 * failure (checked). Free both with free_encoder. */
static genauth_client *
encoder_new(const genauth_client_options *o, genauth_conn **conn)
{
    genauth_client *c = NULL;
    genauth_error err;
    genauth_error_init(&err);
    *conn = NULL;
    CHECK(genauth_client_new(o, &c, &err) == GENAUTH_OK);
    if (c)
        *conn = genauth_conn_new(c, &err);
    CHECK(*conn != NULL);
    genauth_error_clear(&err);
    return c;
}

static void
free_encoder(genauth_client *c, genauth_conn *conn)
{
    genauth_conn_free(conn);
    genauth_client_free(c);
}

/* Encodes `req` on a signature-mode client with the vectors' fixed values
 * and checks the URL, body and authorization header it would send. */
static void
check_encoded(const genauth_request *req, const char *nonce,
              const char *want_url, const char *want_body,
              const char *want_auth)
{
    genauth_client_options o;
    genauth_client *c = NULL;
    genauth_conn *conn = NULL;
    genauth_error err;
    genauth_call_plan plan = {0};

    genauth_error_init(&err);
    genauth_client_options_init(&o);
    o.access_key_id = "AKID";
    o.access_key_secret = "SECRET";
    o.tenant_id = "TENANT1";
    o.lang = "zh-CN";
    o.host = "http://127.0.0.1:1";
    o.brand = GENAUTH_BRAND_AUTHING;
    o.auth = GENAUTH_AUTH_SIGNATURE;
    c = encoder_new(&o, &conn);
    if (!conn) {
        free_encoder(c, conn);
        return;
    }
    genauth_sign_fixture fix = {nonce, DATE, "authing-node-sdk:4.0.1"};
    CHECK(genauth_call_encode(c, conn, req, &fix, &plan, &err) == GENAUTH_OK);
    CHECK_STR(plan.url, want_url);
    CHECK(plan.is_get == (want_body == NULL));
    if (want_body)
        CHECK_STR(conn->request.data, want_body);
    const char *auth = NULL;
    for (const struct curl_slist *h = plan.headers; h; h = h->next) {
        if (strncmp(h->data, "authorization: ", 15) == 0)
            auth = h->data + 15;
        /* A GET carries no content type. */
        CHECK(!(want_body == NULL &&
                strncasecmp(h->data, "content-type", 12) == 0));
    }
    CHECK_STR(auth, want_auth);
    free_encoder(c, conn);
    genauth_error_clear(&err);
}

static void
test_request_vectors(void)
{
    const char *body_text =
        "{\"webhookId\":\"wh1\",\"requestHeaders\":{\"X-A\":\"b\"},"
        "\"requestBody\":{\"eventName\":\"test\",\"data\":{\"z\":1,"
        "\"a\":\"\xe4\xb8\xad\xe6\x96\x87/\\\"q\\\"\"}}}";
    cJSON *params = cJSON_Parse(body_text);
    genauth_request req = {GENAUTH_OP_TRIGGER_WEBHOOK, params};
    check_encoded(&req, "1fbbe9588899f1b4129021db8d142666",
                  "http://127.0.0.1:1/api/v3/trigger-webhook", body_text,
                  "authing AKID:ME47QqDTGaldhVphTLY0rDvd9HE=");
    cJSON_Delete(params);

    /* The same call built from the DTO struct. */
    cJSON *headers = cJSON_Parse("{\"X-A\":\"b\"}");
    cJSON *body = cJSON_Parse("{\"eventName\":\"test\",\"data\":{\"z\":1,"
                              "\"a\":\"\xe4\xb8\xad\xe6\x96\x87/\\\"q\\\"\"}}");
    genauth_trigger_webhook_req dto = {"wh1", 3, headers, body};
    genauth_error err;
    genauth_error_init(&err);
    CHECK(genauth_request_from_dto(GENAUTH_OP_TRIGGER_WEBHOOK, &dto, &req,
                                   &params, &err) == GENAUTH_OK);
    check_encoded(&req, "1fbbe9588899f1b4129021db8d142666",
                  "http://127.0.0.1:1/api/v3/trigger-webhook", body_text,
                  "authing AKID:ME47QqDTGaldhVphTLY0rDvd9HE=");
    cJSON_Delete(params);
    cJSON_Delete(headers);
    cJSON_Delete(body);

    /* GET: the query in parameter order, signed over the sorted keys. */
    genauth_webhook_page_req page = {NULL, 1, 10};
    CHECK(genauth_request_from_dto(GENAUTH_OP_LIST_WEBHOOKS, &page, &req,
                                   &params, &err) == GENAUTH_OK);
    check_encoded(&req, "1f52e922fb0386ebeee6c68530f8535a",
                  "http://127.0.0.1:1/api/v3/list-webhooks?page=1&limit=10",
                  NULL, "authing AKID:0o+VyL2Lez+u1g++5lNTfqQBXoc=");
    cJSON_Delete(params);

    genauth_webhook_page_req get = {"wh1", 0, 0};
    CHECK(genauth_request_from_dto(GENAUTH_OP_GET_WEBHOOK, &get, &req,
                                   &params, &err) == GENAUTH_OK);
    check_encoded(&req, "a866f4c9f348d95d1841843e029f1580",
                  "http://127.0.0.1:1/api/v3/get-webhook?webhookId=wh1",
                  NULL, "authing AKID:I3wiTXhrSI70/GDTpEfiWW3MeVA=");
    cJSON_Delete(params);

    genauth_request events = {GENAUTH_OP_GET_WEBHOOK_EVENT_LIST, NULL};
    check_encoded(&events, "d2667e5822ab547130d4f2a4197ada1a",
                  "http://127.0.0.1:1/api/v3/get-webhook-event-list", NULL,
                  "authing AKID:eTHoxsoVivdfjzJDCd2sqxyjy30=");
    genauth_error_clear(&err);
}

/* Query strings are percent-encoded as Python's urlencode does them. */
static void
test_query_encoding(void)
{
    genauth_client_options o;
    genauth_client *c = NULL;
    genauth_conn *conn = NULL;
    genauth_error err;
    genauth_call_plan plan = {0};

    genauth_error_init(&err);
    genauth_client_options_init(&o);
    o.access_key_id = "AK";
    o.access_key_secret = "SK";
    o.host = "http://h";
    c = encoder_new(&o, &conn);
    if (!conn) {
        free_encoder(c, conn);
        return;
    }
    cJSON *p = cJSON_CreateObject();
    add(p, "webhookId", str("a/b c&d=e+\xe4\xb8\xad~_.-"));
    genauth_request req = {GENAUTH_OP_GET_WEBHOOK, p};
    CHECK(genauth_call_encode(c, conn, &req, NULL, &plan, &err) ==
          GENAUTH_OK);
    CHECK_STR(plan.url, "http://h/api/v3/get-webhook?webhookId="
                        "a%2Fb+c%26d%3De%2B%E4%B8%AD~_.-");
    cJSON_Delete(p);

    /* Unknown, mistyped, missing: refused naming the field. */
    struct {
        genauth_op op;
        const char *json;
        const char *field;
    } bad[] = {
        {GENAUTH_OP_GET_WEBHOOK, "{\"webhookID\":\"x\"}", "webhookID"},
        {GENAUTH_OP_GET_WEBHOOK, "{}", "webhookId"},
        {GENAUTH_OP_GET_WEBHOOK, "{\"webhookId\":\"\"}", "webhookId"},
        {GENAUTH_OP_LIST_WEBHOOKS, "{\"page\":1.5}", "page"},
        {GENAUTH_OP_CREATE_WEBHOOK,
         "{\"contentType\":\"a\",\"events\":[1],\"url\":\"u\",\"name\":\"n\"}",
         "events"},
        {GENAUTH_OP_UPDATE_WEBHOOK, "{\"webhookId\":\"w\",\"enabled\":1}",
         "enabled"},
        {GENAUTH_OP_DELETE_WEBHOOK, "{\"webhookIds\":null}", "webhookIds"},
        {GENAUTH_OP_TRIGGER_WEBHOOK,
         "{\"webhookId\":\"w\",\"requestBody\":[]}", "requestBody"},
        /* Given twice: the body and the signed resource would disagree. */
        {GENAUTH_OP_GET_WEBHOOK, "{\"webhookId\":\"a\",\"webhookId\":\"b\"}",
         "webhookId"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cJSON *params = cJSON_Parse(bad[i].json);
        genauth_request r = {bad[i].op, params};
        genauth_error_init(&err);
        CHECK(genauth_call_encode(c, conn, &r, NULL, &plan, &err) ==
              GENAUTH_E_INVALID);
        CHECK(strncmp(err.message, bad[i].field, strlen(bad[i].field)) == 0);
        cJSON_Delete(params);
    }
    /* null members are left out of the body. */
    cJSON *params = cJSON_Parse("{\"webhookId\":\"w\",\"page\":null,"
                                "\"limit\":5}");
    genauth_request logs = {GENAUTH_OP_GET_WEBHOOK_LOGS, params};
    CHECK(genauth_call_encode(c, conn, &logs, NULL, &plan, &err) ==
          GENAUTH_OK);
    CHECK_STR(conn->request.data, "{\"webhookId\":\"w\",\"limit\":5}");
    CHECK(!plan.is_get);
    cJSON_Delete(params);
    free_encoder(c, conn);
    genauth_error_clear(&err);
}

/* A written body (genauth_request) goes out as it is for a POST; a GET
 * and a signing client refuse it, since neither can read its members. */
static void
test_written_body(void)
{
    static const char text[] =
        "{\"webhookId\":\"w\",\"requestBody\":{\"n\":[1,2.50,1e400]}}";
    genauth_client_options o;
    genauth_client *c = NULL;
    genauth_conn *conn = NULL;
    genauth_error err;
    genauth_call_plan plan = {0};
    cJSON *body = cJSON_CreateRaw(text);

    genauth_error_init(&err);
    for (int sign = 0; sign <= 1; sign++) {
        genauth_client_options_init(&o);
        o.access_key_id = "AK";
        o.access_key_secret = "SK";
        o.host = "http://h";
        o.auth = sign ? GENAUTH_AUTH_SIGNATURE : GENAUTH_AUTH_TOKEN;
        c = encoder_new(&o, &conn);
        if (!conn) {
            free_encoder(c, conn);
            break;
        }
        genauth_request req = {GENAUTH_OP_TRIGGER_WEBHOOK, body};
        genauth_error_init(&err);
        if (!sign) {
            CHECK(genauth_call_encode(c, conn, &req, NULL, &plan, &err) ==
                  GENAUTH_OK);
            CHECK_STR(conn->request.data, text); /* byte for byte */
            CHECK(!plan.is_get);
        } else {
            CHECK(genauth_call_encode(c, conn, &req, NULL, &plan, &err) ==
                  GENAUTH_E_INVALID);
            CHECK(strstr(err.message, "cannot be signed") != NULL);
        }
        genauth_error_clear(&err);
        genauth_request get = {GENAUTH_OP_GET_WEBHOOK, body};
        CHECK(genauth_call_encode(c, conn, &get, NULL, &plan, &err) ==
              GENAUTH_E_INVALID);
        CHECK(strstr(err.message, "GET /api/v3/get-webhook") != NULL);
        genauth_error_clear(&err);
        free_encoder(c, conn);
    }
    /* The check a writer runs on the object it writes from. */
    cJSON *tree = cJSON_Parse("{\"requestBody\":{}}");
    genauth_request unwritten = {GENAUTH_OP_TRIGGER_WEBHOOK, tree};
    CHECK(genauth_request_check(&unwritten, &err) == GENAUTH_E_INVALID);
    CHECK(strncmp(err.message, "webhookId", 9) == 0);
    genauth_error_clear(&err);
    cJSON_Delete(tree);
    cJSON_Delete(body);
}

/* ---- the date takes no lock of libc's --------------------------------- */

static void *
first_localtime(void *arg)
{
    time_t t = 0;
    struct tm tm;
    (void)arg;
    localtime_r(&t, &tm);
    return NULL;
}

/* glibc's gmtime_r takes its time-zone lock; a child forked while another
 * thread held it (making a signed call) waited for it for ever. Here a
 * thread holds it: the process's first localtime_r, reading a zone file
 * that is a FIFO, waits inside it for the zone to be written. The date of
 * a signature must come meanwhile (SIGALRM ends the test if it does not).
 * Run first: the zone is read once per process. */
static void
test_date_while_another_thread_holds_libcs_time_zone_lock(void)
{
    char dir[] = "/tmp/genauth-tz-XXXXXX", zone[64], tz[80], d[64];
    pthread_t t;
    int fd = -1;

    CHECK(mkdtemp(dir) != NULL);
    snprintf(zone, sizeof zone, "%s/zone", dir);
    snprintf(tz, sizeof tz, ":%s", zone);
    CHECK(mkfifo(zone, 0600) == 0);
    CHECK(setenv("TZ", tz, 1) == 0);
    CHECK(pthread_create(&t, NULL, first_localtime, NULL) == 0);
    /* A writer's non-blocking open succeeds once the thread has the FIFO
     * open for reading, inside localtime_r; the thread then waits in
     * read(), holding the lock. 10 s at most. */
    for (int i = 0; fd < 0 && i < 1000; i++) {
        fd = open(zone, O_WRONLY | O_NONBLOCK);
        if (fd < 0 && errno == ENXIO)
            nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    CHECK(fd >= 0);
    alarm(10);
    genauth_sign_format_date(1795724642, d);
    alarm(0);
    CHECK_STR(d, DATE);
    if (fd >= 0)
        close(fd); /* an empty zone: the thread's call ends */
    pthread_join(t, NULL);
    unlink(zone);
    rmdir(dir);
    unsetenv("TZ");
}

int
main(void)
{
    test_date_while_another_thread_holds_libcs_time_zone_lock();
    test_vector_post();
    test_vectors_get();
    test_genauth_brand();
    test_nonce_and_date();
    test_bad_input();
    test_resource();
    test_numbers();
    test_objects_and_arrays();
    test_strings();
    test_forms_escape_alike();
    test_comma_locale();
    test_request_vectors();
    test_query_encoding();
    test_written_body();
    return check_summary("test_sign");
}
