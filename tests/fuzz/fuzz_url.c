/* libFuzzer target: the host option and the proxy from the environment,
 * as a client reads them once when it is made. The input's first byte
 * picks the brand; the rest, up to a NUL, is the host given (and, apart,
 * a proxy URL).
 *  - genauth_url_normalize either refuses with GENAUTH_E_INVALID and a
 *    message naming the host option ("host: ..."), or gives a base URL:
 *    a lower-case scheme, no control character, space, query, fragment or
 *    trailing '/', which normalises to itself again, and which libcurl
 *    (given the URL of a call, as every call gives it) parses with a host
 *    name: a host accepted here must not fail only once a call is made.
 *  - genauth_proxy_userinfo's span (hidden in errors) lies inside the
 *    proxy, runs from after the scheme up to the last '@', and is there
 *    whenever an '@' follows the scheme.
 *
 * Build and run: make fuzz-short, or make fuzz (FUZZ_SECONDS=600). */
#include <stdint.h>

#include "internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The base URL `url` as a call uses it: parsed by libcurl with the flags
 * an easy handle's transfer parses CURLOPT_URL with. */
static void
check_libcurl_reads(const char *url)
{
    static const char call_path[] = "/api/v3/list-webhooks?page=1";
    char *full = malloc(strlen(url) + sizeof(call_path));
    char *host = NULL;
    CURLU *u = curl_url();

    FUZZ_CHECK(full != NULL && u != NULL);
    strcpy(full, url);
    strcat(full, call_path);
    CURLUcode rc = curl_url_set(u, CURLUPART_URL, full,
                                CURLU_NON_SUPPORT_SCHEME);
    if (rc != CURLUE_OK)
        fprintf(stderr, "libcurl refuses %s: %s\n", full,
                curl_url_strerror(rc));
    FUZZ_CHECK(rc == CURLUE_OK);
    FUZZ_CHECK(curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK);
    FUZZ_CHECK(host != NULL && host[0] != '\0');
    curl_free(host);
    curl_url_cleanup(u);
    free(full);
}

static void
check_proxy_userinfo(const char *proxy)
{
    size_t len = 7;
    const char *info = genauth_proxy_userinfo(proxy, &len);
    const char *at = strrchr(proxy, '@');
    const char *scheme = strstr(proxy, "://");
    const char *start = scheme && (!at || scheme < at) ? scheme + 3 : proxy;

    FUZZ_CHECK((info == NULL) == (len == 0));
    if (!info) {
        FUZZ_CHECK(!at || at <= start);
        return;
    }
    FUZZ_CHECK(info == start && info + len == at);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    genauth_error err;
    char *host, *out = NULL, *again = NULL;

    if (size < 1)
        return 0;
    genauth_brand brand = (data[0] & 1) ? GENAUTH_BRAND_AUTHING
                                        : GENAUTH_BRAND_GENAUTH;
    size_t n = strnlen((const char *)data + 1, size - 1);
    host = malloc(n + 1);
    FUZZ_CHECK(host != NULL);
    memcpy(host, data + 1, n);
    host[n] = '\0';

    genauth_error_init(&err);
    genauth_status st = genauth_url_normalize(host, brand, &out, &err);
    if (st != GENAUTH_OK) {
        FUZZ_CHECK(st == GENAUTH_E_INVALID && err.status == st);
        FUZZ_CHECK(out == NULL);
        FUZZ_CHECK(strncmp(err.message, "host: ", 6) == 0);
    } else {
        size_t len = strlen(out);
        FUZZ_CHECK(strncmp(out, "http://", 7) == 0 ||
                   strncmp(out, "https://", 8) == 0);
        FUZZ_CHECK(out[len - 1] != '/');
        FUZZ_CHECK(!strpbrk(out, "?#"));
        for (const char *p = out; *p; p++)
            FUZZ_CHECK((unsigned char)*p > 0x20 && *p != 0x7f);
        genauth_error_clear(&err);
        FUZZ_CHECK(genauth_url_normalize(out, brand, &again, &err) ==
                   GENAUTH_OK);
        FUZZ_CHECK(strcmp(again, out) == 0);
        check_libcurl_reads(out);
    }
    check_proxy_userinfo(host);
    free(again);
    free(out);
    free(host);
    genauth_error_clear(&err);
    return 0;
}
