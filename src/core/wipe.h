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
/* genauth_buf_reserve for a buffer that holds a secret: the storage it
 * outgrows is wiped before it is freed, where realloc would free it as it
 * is. */
int genauth_buf_wipe_reserve(genauth_buf *b, size_t extra);
/* Wipes every line of a header list (one may hold a token) and frees it. */
void genauth_headers_wipe_free(struct curl_slist *list);
/* Hides a secret quoted in text about to be shown (an error message, an
 * excerpt of an answer): overwrites with '*' every occurrence in buf[0, len)
 * of the `secret_len` bytes at `secret`, as they are or as JSON text writes
 * them (any of their characters escaped: \/, \", \u00e9), and a piece of
 * them of at least `min_piece` bytes (from their start) that buf's end cuts
 * off. */
void genauth_mask(char *buf, size_t len, const char *secret,
                  size_t secret_len, size_t min_piece);
/* Hides, in JSON text about to be shown (an excerpt of an answer, which
 * buf's end may cut anywhere), the string value of every member named
 * `key` (quoted: "\"secret\""), overwriting its characters with '*'. For a
 * secret the client never had, one the answer itself carries. */
void genauth_mask_member(char *buf, size_t len, const char *key);

#endif
