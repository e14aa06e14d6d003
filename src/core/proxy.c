/* The proxy a client uses, read from the environment once per client.
 *
 * libcurl reads the proxy variables itself on every transfer (five getenv
 * calls, each a walk of the whole environment, and a strdup) unless
 * CURLOPT_PROXY and CURLOPT_NOPROXY are set. The client sets both, to what
 * libcurl would have read, with libcurl's rule:
 *
 *   http://  hosts: http_proxy (never HTTP_PROXY: a CGI environment lets a
 *            request's Proxy: header set it), else all_proxy, else ALL_PROXY
 *   https:// hosts: https_proxy, else HTTPS_PROXY, else all_proxy, else
 *            ALL_PROXY
 *   no_proxy, else NO_PROXY: the hosts that bypass the proxy (libcurl
 *            matches it against the host on each transfer, as before)
 *
 * An empty variable counts as unset (curl_getenv's rule). The difference
 * from libcurl reading them itself: a change to the environment after the
 * client was made is not seen. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

/* The first of `names` set to a non-empty value, or NULL. */
static const char *
first_set(const char *const *names)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && v[0])
            return v;
    }
    return NULL;
}

const char *
genauth_proxy_env(int https)
{
    static const char *const http_names[] = {"http_proxy", "all_proxy",
                                             "ALL_PROXY", NULL};
    static const char *const https_names[] = {"https_proxy", "HTTPS_PROXY",
                                              "all_proxy", "ALL_PROXY",
                                              NULL};
    const char *p = first_set(https ? https_names : http_names);
    return p ? p : "";
}

genauth_status
genauth_proxy_from_env(const char *base_url, char **proxy, char **no_proxy,
                       genauth_error *err)
{
    static const char *const no_proxy_names[] = {"no_proxy", "NO_PROXY",
                                                 NULL};
    const char *p = genauth_proxy_env(strncmp(base_url, "https:", 6) == 0);
    const char *np = first_set(no_proxy_names);

    /* "": set, so libcurl looks no further; it means no proxy. */
    *proxy = strdup(p);
    *no_proxy = strdup(np ? np : "");
    if (!*proxy || !*no_proxy) {
        genauth_wipe_free(*proxy); /* it may carry a password */
        free(*no_proxy);
        *proxy = *no_proxy = NULL;
        return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    }
    return GENAUTH_OK;
}

int
genauth_proxy_is_tls(const char *proxy)
{
    /* libcurl reads the scheme without regard to case; a proxy named
     * without one is an http:// proxy. */
    return strncasecmp(proxy, "https://", 8) == 0;
}

const char *
genauth_proxy_userinfo(const char *proxy, size_t *len)
{
    /* Up to the last '@': a password holding an '@' or a '/' that is not
     * percent-encoded is hidden whole, however libcurl splits it. */
    const char *at = strrchr(proxy, '@');
    const char *scheme = strstr(proxy, "://");
    const char *start = scheme && (!at || scheme < at) ? scheme + 3 : proxy;

    *len = at && at > start ? (size_t)(at - start) : 0;
    return *len ? start : NULL;
}
