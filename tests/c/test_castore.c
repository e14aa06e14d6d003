/* The CA store search (castore.c): OpenSSL's variables first, then the
 * first readable file of the list. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "check.h"
#include "internal.h"

static void
test_files_in_order(const char *present)
{
    const char *const files[] = {"/nonexistent/genauth-ca-1.pem", present,
                                 "/nonexistent/genauth-ca-2.pem", NULL};
    genauth_ca_store store;
    CHECK(genauth_ca_store_find_in(files, &store) == 1);
    CHECK_STR(store.file, present);
    CHECK(store.dir == NULL);
}

static void
test_none_found(void)
{
    const char *const files[] = {"/nonexistent/genauth-ca-1.pem", NULL};
    genauth_ca_store store;
    CHECK(genauth_ca_store_find_in(files, &store) == 0);
    CHECK(store.file == NULL && store.dir == NULL);
}

static void
test_environment_first(const char *present, const char *dir)
{
    const char *const files[] = {present, NULL};
    genauth_ca_store store;

    /* Set but unreadable: ignored, the list is searched. */
    setenv("SSL_CERT_FILE", "/nonexistent/genauth-env.pem", 1);
    CHECK(genauth_ca_store_find_in(files, &store) == 1);
    CHECK_STR(store.file, present);

    /* A list of directories, as OpenSSL reads it: taken whole when one of
     * them can be searched (OpenSSL splits it), passed over when none can,
     * or when its entries are files. */
    char listed[256];
    snprintf(listed, sizeof(listed), "/nonexistent/genauth-certs::%s", dir);
    setenv("SSL_CERT_DIR", listed, 1);
    CHECK(genauth_ca_store_find_in(files, &store) == 1);
    CHECK(store.file == NULL);
    CHECK_STR(store.dir, listed);
    snprintf(listed, sizeof(listed), "/nonexistent/genauth-certs:%s", present);
    setenv("SSL_CERT_DIR", listed, 1);
    CHECK(genauth_ca_store_find_in(files, &store) == 1);
    CHECK_STR(store.file, present);
    CHECK(store.dir == NULL);

    setenv("SSL_CERT_DIR", dir, 1);
    CHECK(genauth_ca_store_find_in(files, &store) == 1);
    CHECK(store.file == NULL);
    CHECK_STR(store.dir, dir);

    setenv("SSL_CERT_FILE", present, 1);
    CHECK(genauth_ca_store_find_in(files, &store) == 1);
    CHECK_STR(store.file, present);
    CHECK(store.dir == NULL);
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
}

/* Only a client that may make a TLS connection, verified with the
 * system's CAs, looks for them. */
static void
test_wanted(void)
{
    genauth_client_options o;
    genauth_client_options_init(&o);
    CHECK(genauth_ca_store_wanted(&o)); /* the default host: https */
    o.host = "HTTPS://a.example";
    CHECK(genauth_ca_store_wanted(&o));
    o.host = "http://a.example";
    CHECK(!genauth_ca_store_wanted(&o));
    o.host = "HTTP://a.example";
    CHECK(!genauth_ca_store_wanted(&o));
    o.host = "https://a.example";
    o.use_unverified_ssl = 1;
    CHECK(!genauth_ca_store_wanted(&o));
    o.use_unverified_ssl = 0;
    o.ca_bundle = "/etc/hosts";
    CHECK(!genauth_ca_store_wanted(&o));
}

/* An https:// proxy the environment names for the host, by libcurl's rule
 * (proxy.c), is a TLS peer verified whatever use_unverified_ssl says. */
static void
test_wanted_behind_a_proxy(void)
{
    genauth_client_options o;
    genauth_client_options_init(&o);
    o.host = "http://a.example";
    setenv("http_proxy", "https://p.example:3128", 1);
    CHECK(genauth_ca_store_wanted(&o));
    o.ca_bundle = "/etc/hosts"; /* the only trust then */
    CHECK(!genauth_ca_store_wanted(&o));
    o.ca_bundle = NULL;
    setenv("http_proxy", "http://p.example:3128", 1);
    setenv("ALL_PROXY", "HTTPS://q.example", 1); /* not reached */
    CHECK(!genauth_ca_store_wanted(&o));
    unsetenv("http_proxy");
    CHECK(genauth_ca_store_wanted(&o));
    /* Not a proxy of http:// hosts: https_proxy, HTTPS_PROXY. */
    unsetenv("ALL_PROXY");
    setenv("https_proxy", "https://p.example", 1);
    setenv("HTTPS_PROXY", "https://p.example", 1);
    CHECK(!genauth_ca_store_wanted(&o));
    o.host = "https://a.example";
    o.use_unverified_ssl = 1;
    CHECK(genauth_ca_store_wanted(&o));
    setenv("https_proxy", "http://p.example", 1); /* wins over HTTPS_PROXY */
    CHECK(!genauth_ca_store_wanted(&o));
    unsetenv("https_proxy");
    unsetenv("HTTPS_PROXY");
    CHECK(!genauth_ca_store_wanted(&o));
}

/* Relative CA paths made absolute against the current directory (libcurl
 * opens them at each handshake, maybe after a chdir()); absolute ones, and
 * the empty entries of a list, as they are. */
static void
test_path_absolute(const char *dir)
{
    char here[4096], want[8192];
    int nomem = 0;
    char *got;

    CHECK(getcwd(here, sizeof(here)) != NULL);
    CHECK(chdir(dir) == 0);
    CHECK(genauth_ca_path_absolute(NULL, 0, &nomem) == NULL && !nomem);
    got = genauth_ca_path_absolute("/etc/ssl/cert.pem", 0, &nomem);
    CHECK_STR(got, "/etc/ssl/cert.pem");
    free(got);
    got = genauth_ca_path_absolute("ca.pem", 0, &nomem);
    snprintf(want, sizeof(want), "%s/ca.pem", dir);
    CHECK_STR(got, want);
    free(got);
    got = genauth_ca_path_absolute("a:b", 0, &nomem); /* a file: one name */
    snprintf(want, sizeof(want), "%s/a:b", dir);
    CHECK_STR(got, want);
    free(got);
    got = genauth_ca_path_absolute("certs::/etc/ssl/certs:x/y", 1, &nomem);
    snprintf(want, sizeof(want), "%s/certs::/etc/ssl/certs:%s/x/y", dir, dir);
    CHECK_STR(got, want);
    free(got);
    CHECK(chdir("/") == 0);
    got = genauth_ca_path_absolute("ca.pem", 0, &nomem);
    CHECK_STR(got, "/ca.pem");
    free(got);
    CHECK(!nomem);
    CHECK(chdir(here) == 0);
}

int
main(void)
{
    char path[] = "/tmp/genauth-castore-XXXXXX";
    char dir[] = "/tmp/genauth-castore-dir-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(mkdtemp(dir) != NULL);
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    {
        static const char *const proxies[] = {
            "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
            "all_proxy",  "ALL_PROXY",  NULL};
        for (const char *const *name = proxies; *name; name++)
            unsetenv(*name);
    }
    test_files_in_order(path);
    test_none_found();
    test_environment_first(path, dir);
    test_wanted();
    test_wanted_behind_a_proxy();
    test_path_absolute(dir);
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    rmdir(dir);
    return check_summary("test_castore");
}
