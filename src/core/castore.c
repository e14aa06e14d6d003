/* Where TLS trust comes from when the caller names no ca_bundle.
 *
 * libcurl looks for CAs where its build was told to: Debian's libcurl at
 * /etc/ssl/certs/ca-certificates.crt. A wheel carries that one libcurl to
 * every distribution, and each keeps its store elsewhere, so the client looks
 * for the store itself, once per client: OpenSSL's own variables first (they
 * also let a user point elsewhere), then each major distribution's file. */
#include <stdlib.h>
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
genauth_ca_store_find_in(const char *const *files, genauth_ca_store *store)
{
    const char *env;

    store->file = NULL;
    store->dir = NULL;
    env = getenv("SSL_CERT_FILE");
    if (env && env[0] && access(env, R_OK) == 0) {
        store->file = env;
        return 1;
    }
    env = getenv("SSL_CERT_DIR");
    if (env && env[0] && access(env, R_OK | X_OK) == 0) {
        store->dir = env;
        return 1;
    }
    for (; *files; files++) {
        if (access(*files, R_OK) == 0) {
            store->file = *files;
            return 1;
        }
    }
    return 0;
}

int
genauth_ca_store_find(genauth_ca_store *store)
{
    return genauth_ca_store_find_in(system_ca_files, store);
}
