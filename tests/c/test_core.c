/* Unit tests of the core's client-side pieces that need no network: the host
 * URL, the JWT's user pool claim, option checks and envelopes. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"
#include "json.h"

static void
test_url(void)
{
    struct {
        const char *in;
        const char *want; /* NULL: must fail */
    } cases[] = {
        {NULL, "https://api.genauth.ai"},
        {"https://x.example", "https://x.example"},
        {"HTTPS://x.example/", "https://x.example"},
        {"http://127.0.0.1:8080/genauth//", "http://127.0.0.1:8080/genauth"},
        {"https://[::1]:443/p", "https://[::1]:443/p"},
        {"ftp://x", NULL},
        {"x.example", NULL},
        {"https://", NULL},
        {"https://:80", NULL},
        {"https://x:0", NULL},
        {"https://x:65536", NULL},
        {"https://x:8a", NULL},
        {"https://u:p@x", NULL},
        {"https://x/?q", NULL},
        {"https://x/#f", NULL},
        {"https://x y", NULL},
        {"https://x\r\n", NULL},
        {"https://[::1", NULL},
        {"http://[::ffff:127.0.0.1]:8080", "http://[::ffff:127.0.0.1]:8080"},
        {"http://[fe80::1%25eth0]:8080", "http://[fe80::1%25eth0]:8080"},
        {"http://[fe80::1%eth0]", "http://[fe80::1%eth0]"},
        /* An IPv6 literal is an IPv6 address, as libcurl will parse it once
         * a call is made; anything else fails now. */
        {"https://[]", NULL},
        {"https://[zzz]", NULL},
        {"https://[::1::2]", NULL},
        {"https://[1:2:3:4:5:6:7:8:9]", NULL},
        {"https://[127.0.0.1]", NULL},
        {"https://[fe80::1%]", NULL},
        {"https://[fe80::1%a-zone-longer-than-15]", NULL},
        {"https://[::1]x", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        genauth_error err;
        char *out = NULL;
        genauth_error_init(&err);
        genauth_status st = genauth_url_normalize(
            cases[i].in, GENAUTH_BRAND_GENAUTH, &out, &err);
        if (cases[i].want) {
            CHECK(st == GENAUTH_OK);
            CHECK_STR(out, cases[i].want);
        } else {
            CHECK(st == GENAUTH_E_INVALID);
            CHECK(out == NULL);
            CHECK(strncmp(err.message, "host:", 5) == 0);
        }
        free(out);
    }
    char *out = NULL;
    genauth_error err;
    genauth_error_init(&err);
    CHECK(genauth_url_normalize(NULL, GENAUTH_BRAND_AUTHING, &out, &err) ==
          GENAUTH_OK);
    CHECK_STR(out, "https://api.authing.cn");
    free(out);

    /* Host names up to DNS's 253 characters (254 with a final dot), with
     * a port and a path after them; one more is refused. */
    char url[400];
    for (int final_dot = 0; final_dot <= 1; final_dot++) {
        for (int extra = 0; extra <= 1; extra++) {
            size_t n = 253 + (size_t)final_dot + (size_t)extra;
            memcpy(url, "https://", 8);
            memset(url + 8, 'a', n);
            if (final_dot)
                url[8 + n - 1] = '.';
            strcpy(url + 8 + n, ":8443/p");
            out = NULL;
            genauth_error_init(&err);
            genauth_status st =
                genauth_url_normalize(url, GENAUTH_BRAND_GENAUTH, &out, &err);
            CHECK(st == (extra ? GENAUTH_E_INVALID : GENAUTH_OK));
            if (extra)
                CHECK(strstr(err.message, "longer than 253") != NULL);
            free(out);
        }
    }
    /* Characters, not bytes: libcurl sends a name in its ASCII form,
     * never shorter than its characters (a percent-encoded byte is one, a
     * non-ASCII character at least one of its punycode form). 5 labels of
     * 17 CJK characters: 89 characters, 259 bytes of UTF-8, 119 as
     * xn-- labels. */
    static const char cjk[] = "\xe4\xb8\xad"; /* U+4E2D */
    strcpy(url, "https://");
    for (int label = 0; label < 5; label++) {
        for (int i = 0; i < 17; i++)
            strcat(url, cjk);
        strcat(url, label < 4 ? "." : "/p");
    }
    out = NULL;
    genauth_error_init(&err);
    CHECK(genauth_url_normalize(url, GENAUTH_BRAND_GENAUTH, &out, &err) ==
          GENAUTH_OK);
    free(out);
    /* 100 percent-encoded bytes: 300 characters written, 100 sent. */
    strcpy(url, "https://");
    for (int i = 0; i < 100; i++)
        strcat(url, "%61");
    out = NULL;
    genauth_error_init(&err);
    CHECK(genauth_url_normalize(url, GENAUTH_BRAND_GENAUTH, &out, &err) ==
          GENAUTH_OK);
    free(out);
    /* 254 non-ASCII characters are too many. */
    char long_url[1000] = "https://";
    for (int i = 0; i < 254; i++)
        strcat(long_url, "\xc3\xa9"); /* U+00E9 */
    out = NULL;
    genauth_error_init(&err);
    CHECK(genauth_url_normalize(long_url, GENAUTH_BRAND_GENAUTH, &out,
                                &err) == GENAUTH_E_INVALID);
    CHECK(out == NULL);

    /* An IPv6 literal far longer than any address. */
    url[0] = '\0';
    strcat(url, "https://[");
    memset(url + 9, '1', 300);
    strcpy(url + 309, "]/p");
    out = NULL;
    genauth_error_init(&err);
    CHECK(genauth_url_normalize(url, GENAUTH_BRAND_GENAUTH, &out, &err) ==
          GENAUTH_E_INVALID);
    CHECK(out == NULL);
}

static void
test_jwt(void)
{
    genauth_error err;
    char *id = NULL;
    /* Payload {"scoped_userpool_id":"p?>~~~"}: its base64url has '-'/'_'. */
    const char *tok = "eyJhbGciOiJIUzI1NiJ9."
                      "eyJzY29wZWRfdXNlcnBvb2xfaWQiOiJwPz5-fn4ifQ.sig";
    genauth_error_init(&err);
    CHECK(genauth_jwt_userpool_id(tok, &id, &err) == GENAUTH_OK);
    CHECK_STR(id, "p?>~~~");
    free(id);
    id = NULL;
    const char *bad[] = {"nodots", "a.!!!.c", "a.e30.c" /* {} */, "a..c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        genauth_error_init(&err);
        CHECK(genauth_jwt_userpool_id(bad[i], &id, &err) == GENAUTH_E_AUTH);
        CHECK(id == NULL);
    }
}

static void
test_client_options(void)
{
    genauth_client_options o;
    genauth_client *c = NULL;
    genauth_error err;

    genauth_client_options_init(&o);
    o.access_key_id = "AK";
    o.access_key_secret = "SK";
    o.host = "http://127.0.0.1:1";
    genauth_error_init(&err);
    CHECK(genauth_client_new(&o, &c, &err) == GENAUTH_OK);
    CHECK_STR(genauth_client_base_url(c), "http://127.0.0.1:1");
    CHECK(!genauth_client_is_closed(c));
    /* The README's rule: connections idle over 50 s are not reused (the
     * tests that watch it happen shorten it through the environment). */
    if (!getenv("GENAUTH_TEST_MAX_IDLE_SECONDS"))
        CHECK(c->max_idle_seconds == 50);
    /* Without GENAUTH_TEST_CLOCK_FILE the token clock is the real one. */
    if (!getenv("GENAUTH_TEST_CLOCK_FILE")) {
        double before = genauth_now(), got = genauth_client_now(c);
        CHECK(got >= before && got <= genauth_now());
    }
    genauth_client_free(c);
    /* With it, the clock reads the file and stands still. */
    char path[] = "/tmp/genauth-clock-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, "1234.5\n", 7) == 7);
    close(fd);
    setenv("GENAUTH_TEST_CLOCK_FILE", path, 1);
    c = NULL;
    CHECK(genauth_client_new(&o, &c, &err) == GENAUTH_OK);
    unsetenv("GENAUTH_TEST_CLOCK_FILE");
    CHECK(genauth_client_now(c) == 1234.5);
    unlink(path);
    CHECK(genauth_client_now(c) >= genauth_now() - 1); /* file gone: real */
    genauth_client_free(c);
    c = NULL;
    CHECK(genauth_client_new(&o, &c, &err) == GENAUTH_OK);
    genauth_client_close(c);
    genauth_client_close(c);
    CHECK(genauth_client_is_closed(c));
    genauth_trigger_webhook_req req = {"wh", 2, NULL, NULL};
    genauth_envelope env;
    genauth_envelope_init(&env);
    CHECK(genauth_client_trigger_webhook(c, &req, &env, &err) ==
          GENAUTH_E_CLOSED);
    genauth_client_free(c);

    struct {
        const char *field;
        genauth_client_options o;
    } bad[] = {
        {"access_key_id", {.access_key_id = "", .access_key_secret = "S",
                           .timeout = 1}},
        {"access_key_secret", {.access_key_id = "A", .access_key_secret = "",
                               .timeout = 1}},
        {"access_key_id", {.access_key_id = "A\r\n", .access_key_secret = "S",
                           .timeout = 1}},
        /* A secret read from a file with its line end, either scheme. */
        {"access_key_secret", {.access_key_id = "A",
                               .access_key_secret = "S\n", .timeout = 1}},
        {"access_key_secret", {.access_key_id = "A",
                               .access_key_secret = "S\x7f", .timeout = 1,
                               .auth = GENAUTH_AUTH_SIGNATURE}},
        {"lang", {.access_key_id = "A", .access_key_secret = "S",
                  .lang = "x\n", .timeout = 1}},
        {"tenant_id", {.access_key_id = "A", .access_key_secret = "S",
                       .tenant_id = "\r", .timeout = 1}},
        {"timeout", {.access_key_id = "A", .access_key_secret = "S",
                     .timeout = 0}},
        {"timeout", {.access_key_id = "A", .access_key_secret = "S",
                     .timeout = 1.0 / 0.0}},
        /* Once overflowed a long of milliseconds into 1 ms. */
        {"timeout", {.access_key_id = "A", .access_key_secret = "S",
                     .timeout = 9.3e15}},
        {"timeout", {.access_key_id = "A", .access_key_secret = "S",
                     .timeout = GENAUTH_MAX_TIMEOUT * 1.000001}},
        {"timeout", {.access_key_id = "A", .access_key_secret = "S",
                     .timeout = 0.0 / 0.0}},
        {"lang", {.access_key_id = "A", .access_key_secret = "S",
                  .lang = "zh-CN\xe4\xb8\xad", .timeout = 1}},
        {"tenant_id", {.access_key_id = "A", .access_key_secret = "S",
                       .tenant_id = "t\xc3\xa9", .timeout = 1}},
        {"access_key_id", {.access_key_id = "A\xc3\xa9",
                           .access_key_secret = "S", .timeout = 1,
                           .auth = GENAUTH_AUTH_SIGNATURE}},
        {"host", {.access_key_id = "A", .access_key_secret = "S",
                  .host = "nope", .timeout = 1}},
        {"ca_bundle", {.access_key_id = "A", .access_key_secret = "S",
                       .ca_bundle = "/nonexistent", .timeout = 1}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        c = NULL;
        genauth_error_init(&err);
        CHECK(genauth_client_new(&bad[i].o, &c, &err) == GENAUTH_E_INVALID);
        CHECK(c == NULL);
        CHECK(strncmp(err.message, bad[i].field, strlen(bad[i].field)) == 0);
        /* The secret is never part of a message. */
        CHECK(strstr(err.message, "S\"") == NULL);
    }
}

static void
test_envelope(void)
{
    genauth_envelope env;
    genauth_error err;
    genauth_buf body;
    const char *text = "{\"statusCode\":404,\"message\":\"nope\",\"apiCode\":2404,"
                       "\"requestId\":\"r1\",\"data\":{\"response\":[1]}}";
    genauth_buf_init(&body);
    genauth_buf_append_str(&body, text);
    genauth_envelope_init(&env);
    genauth_error_init(&err);
    CHECK(genauth_envelope_parse(&body, 200, 0, &env, &err) == GENAUTH_OK);
    CHECK(env.has_status_code && env.status_code == 404);
    CHECK(env.has_api_code && env.api_code == 2404);
    CHECK_STR(env.message, "nope");
    CHECK_STR(env.request_id, "r1");
    CHECK(cJSON_IsArray(env.response));
    genauth_envelope_clear(&env);

    const char *bad[] = {"[1]", "\"s\"", "<html>", "{\"a\":", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        genauth_buf_reset(&body);
        genauth_buf_append_str(&body, bad[i]);
        genauth_error_init(&err);
        CHECK(genauth_envelope_parse(&body, 502, 0, &env, &err) ==
              GENAUTH_E_DECODE);
        CHECK(err.http_status == 502);
        CHECK(err.excerpt_len == strlen(bad[i]));
        genauth_error_init(&err);
        CHECK(genauth_envelope_parse(&body, 502, 1, &env, &err) ==
              GENAUTH_E_DECODE);
        CHECK(err.excerpt_len == 0); /* quiet: the token endpoint */
        CHECK(env.doc == NULL);
    }
    genauth_buf_clear(&body);
}

/* The wipe helpers overwrite what they are given; a token's answer parsed
 * into a document is wiped with it (valgrind checks the frees). */
static void
test_wipe(void)
{
    genauth_buf b;
    genauth_envelope env;
    genauth_error err;
    static const char body[] =
        "{\"statusCode\":200,\"data\":{\"access_token\":\"TOKEN\\u0000x\","
        "\"expires_in\":7200}}";

    genauth_buf_init(&b);
    CHECK(genauth_buf_append_str(&b, "secret") == 0);
    char *data = b.data;
    genauth_buf_wipe_reset(&b);
    CHECK(b.len == 0 && b.data == data && memcmp(data, "\0\0\0\0\0\0", 6) == 0);
    genauth_buf_wipe_clear(&b);
    CHECK(b.data == NULL);

    /* Grown anew, never realloc'd: the secret moves, whole. */
    CHECK(genauth_buf_append_str(&b, "secret") == 0);
    CHECK(genauth_buf_wipe_reserve(&b, 3) == 0 && b.cap == 256);
    CHECK(genauth_buf_wipe_reserve(&b, 10000) == 0);
    CHECK(b.len == 6 && b.cap >= 10007 && strcmp(b.data, "secret") == 0);
    CHECK(genauth_buf_wipe_reserve(&b, (size_t)-1) == -1 && b.len == 6);
    genauth_buf_wipe_clear(&b);

    /* A secret quoted as a JSON writer writes it: '/' as \/, non-ASCII
     * as \u00e9, '"' as \"; whole, or cut off by the text's end, inside an
     * escape too; and a secret that itself holds a backslash, as it is. */
    static const char quoted[] = "/se\xc3\xa9" "cr\"et/";
    char page[] = "a \\/se\\u00e9cr\\\"et/ b \\u002fse\xc3\xa9" "cr\\u0022e";
    genauth_mask(page, strlen(page), quoted, strlen(quoted), 8);
    CHECK_STR(page, "a ***************** b *******************");
    char cut[] = "x \\/se\\u00e9cr\\u00"; /* 7 bytes of it, then part of '"' */
    genauth_mask(cut, strlen(cut), quoted, strlen(quoted), 7);
    CHECK_STR(cut, "x ****************");
    char shy[] = "x \\/se\\u00e9c"; /* 6 bytes of it: under min_piece */
    genauth_mask(shy, strlen(shy), quoted, strlen(quoted), 8);
    CHECK_STR(shy, "x \\/se\\u00e9c");
    char raw[] = "k a\\\\b\\n k";
    genauth_mask(raw, strlen(raw), "a\\\\b\\n", 6, 8);
    CHECK_STR(raw, "k ****** k");
    char other[] = "\\/sx\\u00e9cr";
    genauth_mask(other, strlen(other), "/se\xc3\xa9" "cr", 7, 3);
    CHECK_STR(other, "\\/sx\\u00e9cr");

    /* A member's value is hidden to its closing quote or the text's end;
     * the name elsewhere, and other members, are left. */
    char dto[] = "{\"secret\":\"ab\\\"c\",\"x\":\"secret\",\"secret\" :\n \"de";
    genauth_mask_member(dto, strlen(dto), "\"secret\"");
    CHECK_STR(dto, "{\"secret\":\"*****\",\"x\":\"secret\",\"secret\" :\n \"**");
    genauth_mask_member(NULL, 0, "\"secret\"");

    genauth_wipe(NULL, 0);
    genauth_wipe_free(NULL);
    genauth_wipe_free(strdup("secret"));

    genauth_envelope_init(&env);
    genauth_error_init(&err);
    CHECK(genauth_buf_append(&b, body, sizeof(body) - 1) == 0);
    CHECK(genauth_envelope_parse(&b, 200, 1, &env, &err) == GENAUTH_OK);
    genauth_envelope_wipe_clear(&env);
    CHECK(env.doc == NULL);
    genauth_buf_wipe_clear(&b);
}

/* libcurl's rule for the proxy variables (proxy.c), resolved per client. */
static void
test_proxy_env(void)
{
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY",
                                       "https_proxy", "HTTPS_PROXY",
                                       "all_proxy", "ALL_PROXY", "no_proxy",
                                       "NO_PROXY"};
    static const struct {
        const char *set[4][2]; /* name, value pairs */
        const char *url, *proxy, *no_proxy;
    } cases[] = {
        {{{NULL, NULL}}, "http://h", "", ""},
        {{{"http_proxy", "http://p:1"}}, "http://h", "http://p:1", ""},
        /* HTTP_PROXY is never read: a CGI environment sets it from a
         * request header. */
        {{{"HTTP_PROXY", "http://p:1"}}, "http://h", "", ""},
        {{{"HTTP_PROXY", "http://p:1"}, {"ALL_PROXY", "http://a:2"}},
         "http://h", "http://a:2", ""},
        {{{"http_proxy", "http://p:1"}}, "https://h", "", ""},
        {{{"HTTPS_PROXY", "http://s:3"}}, "https://h", "http://s:3", ""},
        {{{"https_proxy", "http://s:3"}, {"HTTPS_PROXY", "http://S:4"}},
         "https://h", "http://s:3", ""},
        {{{"all_proxy", "socks5://a:5"}, {"ALL_PROXY", "http://A:6"}},
         "https://h", "socks5://a:5", ""},
        /* Empty counts as unset. */
        {{{"https_proxy", ""}, {"all_proxy", "http://a:7"}}, "https://h",
         "http://a:7", ""},
        {{{"NO_PROXY", "example.com"}}, "http://h", "", "example.com"},
        {{{"no_proxy", "*"}, {"NO_PROXY", "x"}}, "http://h", "", "*"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *proxy = NULL, *no_proxy = NULL;
        genauth_error err;
        genauth_error_init(&err);
        for (size_t v = 0; v < sizeof(vars) / sizeof(vars[0]); v++)
            unsetenv(vars[v]);
        for (size_t k = 0; k < 4 && cases[i].set[k][0]; k++)
            setenv(cases[i].set[k][0], cases[i].set[k][1], 1);
        CHECK(genauth_proxy_from_env(cases[i].url, &proxy, &no_proxy,
                                     &err) == GENAUTH_OK);
        CHECK_STR(proxy, cases[i].proxy);
        CHECK_STR(no_proxy, cases[i].no_proxy);
        genauth_wipe_free(proxy);
        free(no_proxy);
    }
    for (size_t v = 0; v < sizeof(vars) / sizeof(vars[0]); v++)
        unsetenv(vars[v]);
}

/* Which proxies are TLS peers (and so verified against the client's CAs):
 * https:// ones, the scheme in any case, as libcurl reads it. */
static void
test_proxy_is_tls(void)
{
    CHECK(genauth_proxy_is_tls("https://p:1"));
    CHECK(genauth_proxy_is_tls("HTTPS://p:1"));
    CHECK(!genauth_proxy_is_tls(""));       /* no proxy */
    CHECK(!genauth_proxy_is_tls("p:1"));    /* no scheme: http:// */
    CHECK(!genauth_proxy_is_tls("http://p:1"));
    CHECK(!genauth_proxy_is_tls("socks5://p:1"));
    CHECK(!genauth_proxy_is_tls("https:/p"));
}

/* The part of a proxy that errors must not show: the user name and
 * password, up to the last '@' (a password may hold an unencoded one), and
 * hidden in a message that quotes them whole or cut at its end. */
static void
test_proxy_userinfo(void)
{
    static const struct {
        const char *proxy, *userinfo;
    } cases[] = {
        {"http://u:pw@p:1", "u:pw"},
        {"u:pw@p:1", "u:pw"},           /* no scheme */
        {"http://u:p@w/x@p:1", "u:p@w/x"},
        {"http://p:1", NULL},
        {"http://@p:1", NULL},          /* empty */
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = 99;
        const char *got = genauth_proxy_userinfo(cases[i].proxy, &len);
        if (!cases[i].userinfo) {
            CHECK(got == NULL && len == 0);
            continue;
        }
        CHECK_MEM(got, len, cases[i].userinfo, strlen(cases[i].userinfo));
    }

    char whole[] = "in 'http://u:pw@p' and 'u:pw@'";
    genauth_mask(whole, strlen(whole), "u:pw", 4, 4);
    CHECK_STR(whole, "in 'http://****@p' and '****@'");
    char cut[] = "in 'http://u:p";
    genauth_mask(cut, strlen(cut), "u:pw", 4, 1);
    CHECK_STR(cut, "in 'http://***");
    char kept[] = "in 'http://u:p";  /* a piece under min_piece stays */
    genauth_mask(kept, strlen(kept), "u:pw", 4, 4);
    CHECK_STR(kept, "in 'http://u:p");
}

/* Every op's row of endpoints.c: a method, the path, is_get agreeing with
 * the method, and nfields naming exactly the fields given. */
static void
test_endpoint_rows(void)
{
    for (int op = 0; op < GENAUTH_OP_COUNT; op++) {
        const genauth_endpoint *ep = genauth_endpoint_of((genauth_op)op);
        CHECK(ep && ep->method && ep->path);
        if (!ep || !ep->method || !ep->path) {
            fprintf(stderr, "op %d: no row in src/core/endpoints.c\n", op);
            continue;
        }
        CHECK(strncmp(ep->path, "/api/v3/", 8) == 0);
        CHECK(ep->is_get == (strcmp(ep->method, "GET") == 0));
        CHECK(ep->is_get || strcmp(ep->method, "POST") == 0);
        CHECK(ep->nfields <= GENAUTH_MAX_FIELDS);
        for (size_t i = 0; i < GENAUTH_MAX_FIELDS; i++)
            CHECK((ep->fields[i].name != NULL) == (i < ep->nfields));
    }
    CHECK(genauth_endpoint_of(GENAUTH_OP_COUNT) == NULL);
}

int
main(void)
{
    genauth_error err;
    genauth_error_init(&err);
    if (genauth_global_init(&err) != GENAUTH_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    test_url();
    test_jwt();
    test_client_options();
    test_envelope();
    test_wipe();
    test_proxy_env();
    test_proxy_is_tls();
    test_proxy_userinfo();
    test_endpoint_rows();
    curl_global_cleanup();
    return check_summary("test_core");
}
