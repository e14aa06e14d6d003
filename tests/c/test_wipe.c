/* Secrets never left in memory that realloc frees: realloc frees the block
 * it outgrows as it is, unwiped, so a buffer holding a secret must never be
 * grown by it. realloc is watched here (this program's definition comes
 * before libc's, for the core and libcurl alike): every block it is handed
 * is searched for the secret of the moment. Under valgrind, whose allocator
 * takes this realloc's place too, it sees nothing: the plain run checks. */
#include <dlfcn.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sign.h"

/* ThreadSanitizer brings a realloc of its own, which this one would hide. */
#ifndef GENAUTH_TEST_TSAN
static const char *watched;     /* the secret looked for, or NULL */
static int reallocs_of_watched; /* blocks realloc was handed holding it */

void *
realloc(void *p, size_t n)
{
    static void *(*next)(void *, size_t);
    if (!next)
        next = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
    if (watched && p &&
        memmem(p, malloc_usable_size(p), watched, strlen(watched)))
        reallocs_of_watched++;
    return next(p, n);
}

/* A signature authenticates its request until the server has seen its
 * nonce. Its header line is the last one written into the signature's
 * buffer: for every length of the key id (which is in that line, not in
 * what is signed, so the signature is the same), the buffer must have room
 * for the line and its NUL before any of the signature is written. */
static void
test_signature_never_reallocated(void)
{
    static char key_id[1200];
    genauth_sign_input in = {
        .method = "POST",
        .path = "/api/v3/trigger-webhook",
        .header_prefix = "x-genauth-",
        .scheme = "GenAuth",
        .access_key_id = key_id,
        .access_key_secret = "SECRET",
        .sdk_version = "genauth-c:0.1.0",
        .fixed_nonce = "1fbbe9588899f1b4129021db8d142666",
        .fixed_date = "Thu, 26 Nov 2026 20:24:02 GMT",
    };
    genauth_signature sig;
    genauth_error err;
    char signature[64] = "";

    genauth_error_init(&err);
    memset(key_id, 'K', sizeof(key_id) - 1);
    for (size_t len = 1; len < sizeof(key_id); len++) {
        key_id[len] = '\0';
        genauth_signature_init(&sig); /* a fresh buffer: every size is met */
        CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
        if (!signature[0]) {
            const char *h = NULL, *last = NULL;
            while ((h = genauth_signature_header(&sig, h)))
                last = h;
            CHECK(last && strlen(strrchr(last, ':') + 1) < sizeof(signature));
            if (last)
                strcpy(signature, strrchr(last, ':') + 1);
            watched = signature;
            /* Signed again, now watched. */
            genauth_signature_clear(&sig);
            genauth_signature_init(&sig);
            CHECK(genauth_sign(&in, &sig, &err) == GENAUTH_OK);
        }
        genauth_signature_clear(&sig);
        key_id[len] = 'K';
    }
    watched = NULL;
    CHECK(signature[0] != '\0');
    CHECK(reallocs_of_watched == 0);
}
#endif

int
main(void)
{
#ifndef GENAUTH_TEST_TSAN
    test_signature_never_reallocated();
#endif
    return check_summary("test_wipe");
}
