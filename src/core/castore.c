/* Where TLS trust comes from when the caller names no ca_bundle.
 *
 * libcurl looks for CAs where its build was told to: Debian's libcurl at
 * /etc/ssl/certs/ca-certificates.crt. A wheel carries that one libcurl to
 * every distribution, and each keeps its store elsewhere, so the client looks
 * for the store itself: OpenSSL's own variables first (they also let a user
 * point elsewhere), then each major distribution's file.
 *
 * The variables are read for every client, so a change to them takes effect
 * at the next client. The distribution's file, once found, is remembered for
 * the process: looking again costs a system call per place, which in a
 * process whose file-system code has gone cold is a good part of making a
 * client. A store not found is looked for again each time, so one installed
 * later is found. */
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static const char *const system_ca_files[] = {
    "/etc/ssl/certs/ca-certificates.crt", /* Debian, Ubuntu, Arch, Gentoo */
    "/etc/pki/tls/certs/ca-bundle.crt",   /* RHEL, Fedora, CentOS */
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", /* RHEL 7+ */
    "/etc/ssl/ca-bundle.pem",             /* openSUSE, SLES */
    "/etc/ssl/cert.pem",                  /* Alpine, the BSDs */
    NULL,
};

int
genauth_ca_file_problem(const char *path)
{
    struct stat st;
    if (access(path, R_OK) != 0 || stat(path, &st) != 0)
        return errno ? errno : EACCES;
    return S_ISREG(st.st_mode) ? 0 : -1;
}

const char *
genauth_ca_file_problem_text(int problem, char *buf, size_t size)
{
    if (problem < 0)
        return "not a regular file (a directory, a pipe, a device)";
    /* GNU's (_GNU_SOURCE): thread-safe, and returns the text, in `buf` or
     * static. */
    return strerror_r(problem, buf, size);
}

int
genauth_ca_file_usable(const char *path)
{
    return genauth_ca_file_problem(path) == 0;
}

char *
genauth_ca_path_absolute(const char *paths, int list, int *nomem)
{
    char cwd[PATH_MAX];
    size_t cwd_len, relative = 0, n = 0;
    char *out = NULL;
    const char *p;

    if (!paths)
        return NULL;
    /* Without a current directory to name (removed, or deeper than
     * PATH_MAX) the paths stay as given: they were checked against it. */
    if (!getcwd(cwd, sizeof(cwd)))
        cwd[0] = '\0';
    cwd_len = strlen(cwd);
    for (p = paths; cwd_len;) {
        size_t len = list ? strcspn(p, ":") : strlen(p);
        relative += len > 0 && p[0] != '/';
        p += len;
        if (*p != ':')
            break;
        p++;
    }
    out = malloc(strlen(paths) + relative * (cwd_len + 1) + 1);
    if (!out) {
        *nomem = 1;
        return NULL;
    }
    for (p = paths;;) {
        size_t len = list ? strcspn(p, ":") : strlen(p);
        if (cwd_len && len > 0 && p[0] != '/') {
            memcpy(out + n, cwd, cwd_len);
            n += cwd_len;
            if (cwd[cwd_len - 1] != '/') /* "/" itself */
                out[n++] = '/';
        }
        memcpy(out + n, p, len);
        n += len;
        p += len;
        if (*p != ':' || !list)
            break;
        out[n++] = *p++;
    }
    out[n] = '\0';
    return out;
}

/* The first usable one of `files`, or NULL. */
static const char *
first_readable(const char *const *files)
{
    for (; *files; files++)
        if (genauth_ca_file_usable(*files))
            return *files;
    return NULL;
}

/* Whether `dirs`, a list of directories split at ':' as OpenSSL reads
 * $SSL_CERT_DIR (and CURLOPT_CAPATH, which is handed to it whole), names at
 * least one that can be searched. Taken whole, "/a:/b" is no directory, and
 * a user's second directory was passed over for the distribution's file. */
static int
some_dir_usable(const char *dirs)
{
    char dir[PATH_MAX];
    while (*dirs) {
        size_t n = strcspn(dirs, ":");
        struct stat st;
        if (n > 0 && n < sizeof(dir)) {
            memcpy(dir, dirs, n);
            dir[n] = '\0';
            if (access(dir, R_OK | X_OK) == 0 && stat(dir, &st) == 0 &&
                S_ISDIR(st.st_mode))
                return 1;
        }
        dirs += n;
        if (*dirs == ':')
            dirs++;
    }
    return 0;
}

/* $SSL_CERT_FILE or $SSL_CERT_DIR when set to a usable one. */
static int
from_environment(genauth_ca_store *store)
{
    const char *env;

    store->file = NULL;
    store->dir = NULL;
    env = getenv("SSL_CERT_FILE");
    if (env && env[0] && genauth_ca_file_usable(env)) {
        store->file = env;
        return 1;
    }
    env = getenv("SSL_CERT_DIR");
    if (env && env[0] && some_dir_usable(env)) {
        store->dir = env;
        return 1;
    }
    return 0;
}

int
genauth_ca_store_find_in(const char *const *files, genauth_ca_store *store)
{
    if (from_environment(store))
        return 1;
    store->file = first_readable(files);
    return store->file != NULL;
}

/* The scheme as url.c reads it; NULL is the brand's default host, an
 * https:// one. */
static int
host_is_https(const char *host)
{
    return !host || strncasecmp(host, "https://", 8) == 0;
}

int
genauth_ca_store_wanted_behind(const genauth_client_options *opts,
                               int proxy_tls)
{
    /* No redirect is followed, so a client of an http:// host makes a TLS
     * connection only to an https:// proxy. That proxy is verified with
     * the same CAs whatever use_unverified_ssl says (transport.c), and
     * looked for even when no_proxy exempts the host: the cost is a few
     * access calls. */
    return !opts->ca_bundle &&
           (proxy_tls ||
            (!opts->use_unverified_ssl && host_is_https(opts->host)));
}

int
genauth_ca_store_wanted(const genauth_client_options *opts)
{
    /* The proxy the client will read from the environment when it is made
     * (genauth_proxy_from_env), by the same rule. */
    const char *proxy = genauth_proxy_env(host_is_https(opts->host));
    return genauth_ca_store_wanted_behind(opts, genauth_proxy_is_tls(proxy));
}

/* One of system_ca_files (static strings), once found. */
static _Atomic(const char *) system_file_found;

int
genauth_ca_store_find(genauth_ca_store *store)
{
    if (from_environment(store))
        return 1;
    store->file = atomic_load_explicit(&system_file_found, memory_order_relaxed);
    if (!store->file) {
        store->file = first_readable(system_ca_files);
        atomic_store_explicit(&system_file_found, store->file,
                              memory_order_relaxed);
    }
    return store->file != NULL;
}
