/* The host option: validated once per client, so every call can use the
 * URLs built from it without looking at it again. */
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const char *
brand_default_host(genauth_brand brand)
{
    return brand == GENAUTH_BRAND_AUTHING ? "https://api.authing.cn"
                                          : "https://api.genauth.ai";
}

/* Port digits between `p` and `end`: 1..65535. */
static int
valid_port(const char *p, const char *end)
{
    long v = 0;
    if (p == end || end - p > 5)
        return 0;
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return 0;
        v = v * 10 + (*p - '0');
    }
    return v >= 1 && v <= 65535;
}

/* The length of the host name `p` to `end` in characters, a final dot
 * aside: never more than DNS will count once libcurl has made it ASCII. A
 * percent-encoded byte (libcurl decodes it) counts once, and so does a
 * UTF-8 character, whose punycode form (an xn-- label) is at least one
 * character per character. */
static size_t
name_length(const char *p, const char *end)
{
    size_t n = 0;
    unsigned char last = 0;
    while (p < end) {
        unsigned char c = (unsigned char)*p++;
        if (c == '%' && end - p >= 2 && isxdigit((unsigned char)p[0]) &&
            isxdigit((unsigned char)p[1])) {
            char hex[3] = {p[0], p[1], '\0'};
            c = (unsigned char)strtoul(hex, NULL, 16);
            p += 2;
        }
        if ((c & 0xc0) != 0x80) /* not a UTF-8 continuation byte */
            n++;
        last = c;
    }
    return last == '.' ? n - 1 : n;
}

/* What is between the brackets of an IPv6 literal, `p` to `end` (no ']'):
 * an IPv6 address, then maybe a zone ID ("%25" or "%", then 1 to 15
 * characters), as libcurl reads them. Anything else libcurl would refuse
 * only once a call is made. */
static int
valid_ipv6_literal(const char *p, const char *end)
{
    char addr[INET6_ADDRSTRLEN];
    unsigned char bin[16];
    size_t n = strspn(p, "0123456789abcdefABCDEF:.");
    const char *zone = p + n;

    if (n == 0 || n >= sizeof(addr))
        return 0;
    if (zone < end) {
        if (*zone++ != '%')
            return 0;
        if (end - zone > 2 && strncmp(zone, "25", 2) == 0)
            zone += 2; /* "%25", the percent sign encoded */
        if (zone == end || end - zone > 15)
            return 0;
    }
    memcpy(addr, p, n);
    addr[n] = '\0';
    return inet_pton(AF_INET6, addr, bin) == 1;
}

/* Whether `path` (a host's path prefix) holds the segments /api/v3: the
 * API's path copied into host (from a docs page, a curl line), which every
 * call would ask twice (/api/v3/api/v3/...): a 404, or a 401 blaming the
 * keys, from the first call on. */
static int
holds_api_path(const char *path)
{
    for (const char *p = path; (p = strchr(p, '/')) != NULL; p++)
        if (strncasecmp(p, "/api/v3", 7) == 0 && (p[7] == '\0' || p[7] == '/'))
            return 1;
    return 0;
}

/* Whether libcurl parses `url` as every call's URL will be parsed (the
 * flags a transfer parses CURLOPT_URL with): the checks above name what
 * they find, and this one catches the rest, such as a host name holding
 * ',' or '*', which libcurl would refuse only once a call is made, as a
 * transport error naming no option. */
static genauth_status
libcurl_reads(const char *url, genauth_error *err)
{
    CURLU *u = curl_url();
    CURLUcode rc = u ? curl_url_set(u, CURLUPART_URL, url,
                                    CURLU_NON_SUPPORT_SCHEME)
                     : CURLUE_OUT_OF_MEMORY;
    curl_url_cleanup(u);
    if (rc == CURLUE_OK)
        return GENAUTH_OK;
    if (rc == CURLUE_OUT_OF_MEMORY)
        return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    return genauth_error_set(err, GENAUTH_E_INVALID,
                             "host: libcurl refuses this URL (a host name "
                             "holds letters, digits, '-', '_' and '.')");
}

genauth_status
genauth_url_normalize(const char *host, genauth_brand brand, char **out,
                      genauth_error *err)
{
    char *copy = NULL;
    const char *rest;
    size_t scheme_len;

    *out = NULL;
    if (!host)
        host = brand_default_host(brand);
    for (const char *p = host; *p; p++) {
        /* A control character or space would end up in a request line. */
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return genauth_error_set(
                err, GENAUTH_E_INVALID,
                "host: must not contain spaces or control characters");
    }
    if (strncasecmp(host, "https://", 8) == 0)
        scheme_len = 8;
    else if (strncasecmp(host, "http://", 7) == 0)
        scheme_len = 7;
    else
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "host: must be an http:// or https:// URL");
    rest = host + scheme_len;

    /* The authority runs to the first '/'; nothing may follow the path. */
    const char *slash = strchr(rest, '/');
    const char *auth_end = slash ? slash : rest + strlen(rest);
    if (auth_end == rest)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "host: the URL has no host name");
    if (strpbrk(host, "?#"))
        return genauth_error_set(
            err, GENAUTH_E_INVALID,
            "host: must not contain a query or fragment (only scheme, host, "
            "port and path prefix)");
    if (memchr(rest, '@', (size_t)(auth_end - rest)))
        return genauth_error_set(
            err, GENAUTH_E_INVALID,
            "host: must not contain user credentials");
    const char *name_end = auth_end;
    if (*rest == '[') {
        const char *close = memchr(rest, ']', (size_t)(auth_end - rest));
        if (!close || !valid_ipv6_literal(rest + 1, close))
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "host: malformed IPv6 address");
        if (close + 1 < auth_end) {
            if (close[1] != ':' || !valid_port(close + 2, auth_end))
                return genauth_error_set(err, GENAUTH_E_INVALID,
                                         "host: invalid port");
        }
    } else {
        const char *colon = memchr(rest, ':', (size_t)(auth_end - rest));
        if (colon) {
            name_end = colon;
            if (!valid_port(colon + 1, auth_end))
                return genauth_error_set(err, GENAUTH_E_INVALID,
                                         "host: invalid port");
        }
        if (name_end == rest)
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "host: the URL has no host name");
        /* DNS's limit (RFC 1035), a final dot aside: a longer name never
         * resolves, and libcurl would refuse one over 64 KiB only once a
         * call is made, as a transport error. */
        if (name_length(rest, name_end) > 253)
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "host: the host name is longer than "
                                     "253 characters");
    }

    copy = strdup(host);
    if (!copy)
        return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    for (size_t i = 0; i < scheme_len; i++)
        copy[i] = (char)tolower((unsigned char)copy[i]);
    /* "https://x/" and "https://x" mean the same base. */
    size_t len = strlen(copy);
    while (len > scheme_len && copy[len - 1] == '/')
        copy[--len] = '\0';
    if (slash && holds_api_path(copy + (slash - host))) {
        free(copy);
        return genauth_error_set(
            err, GENAUTH_E_INVALID,
            "host: must not hold /api/v3, which every call's path begins "
            "with: give the base URL, such as %s",
            brand_default_host(brand));
    }
    genauth_status st = libcurl_reads(copy, err);
    if (st != GENAUTH_OK) {
        free(copy);
        return st;
    }
    *out = copy;
    return GENAUTH_OK;
}
