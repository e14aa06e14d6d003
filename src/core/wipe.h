/* Wiping secrets (the access key secret, tokens, signatures) before their
 * memory is freed or reused. Every secret buffer in the core goes through
 * these, so there is one place to get right: OPENSSL_cleanse, which the
 * compiler cannot optimise away as it may a memset before free(). */
#ifndef GENAUTH_WIPE_H
#define GENAUTH_WIPE_H

#include <stddef.h>
#include <curl/curl.h>

#include "buf.h"

/* Overwrites n bytes at p (p may be NULL when n is 0). */
void genauth_wipe(void *p, size_t n);
/* Wipes a NUL-terminated string and frees it. NULL: no-op. */
void genauth_wipe_free(char *s);
/* Wipes the whole storage of b (not just its length) and frees it. */
void genauth_buf_wipe_clear(genauth_buf *b);
/* Wipes what b holds and empties it, keeping its storage for reuse. */
void genauth_buf_wipe_reset(genauth_buf *b);
/* Wipes every line of a header list (one may hold a token) and frees it. */
void genauth_headers_wipe_free(struct curl_slist *list);

#endif
