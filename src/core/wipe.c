/* The one wipe helper: see wipe.h. */
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "jsontext.h"
#include "wipe.h"

void
genauth_wipe(void *p, size_t n)
{
    if (p && n)
        OPENSSL_cleanse(p, n);
}

void
genauth_wipe_free(char *s)
{
    if (!s)
        return;
    genauth_wipe(s, strlen(s));
    free(s);
}

void
genauth_buf_wipe_clear(genauth_buf *b)
{
    genauth_wipe(b->data, b->cap);
    genauth_buf_clear(b);
}

void
genauth_buf_wipe_reset(genauth_buf *b)
{
    genauth_wipe(b->data, b->len);
    genauth_buf_reset(b);
}

int
genauth_buf_wipe_reserve(genauth_buf *b, size_t extra)
{
    genauth_buf grown;
    if (extra > (size_t)-1 - b->len - 1)
        return -1;
    if (b->len + extra + 1 <= b->cap)
        return 0;
    genauth_buf_init(&grown);
    if (genauth_buf_reserve(&grown, b->len + extra) < 0)
        return -1;
    if (b->len)
        memcpy(grown.data, b->data, b->len);
    grown.len = b->len;
    grown.data[grown.len] = '\0';
    genauth_buf_wipe_clear(b);
    *b = grown;
    return 0;
}

void
genauth_headers_wipe_free(struct curl_slist *list)
{
    for (struct curl_slist *h = list; h; h = h->next)
        genauth_wipe(h->data, strlen(h->data));
    curl_slist_free_all(list);
}

/* The longest JSON escape: a surrogate pair, \uXXXX\uXXXX. */
#define LONGEST_ESCAPE 12

/* Where, from buf[i], a JSON writer's text of the secret ends: each of its
 * characters as it is or escaped (\/ for '/', as PHP writes it; \u00e9
 * for U+00E9, as an ensure_ascii writer does; \" and \\). *matched: how
 * many of the secret's bytes that text writes; an escape that buf's end
 * cuts off counts as written. */
static size_t
escaped_match(const char *buf, size_t len, size_t i, const char *secret,
              size_t secret_len, size_t *matched)
{
    size_t j = i, k = 0;
    while (k < secret_len && j < len) {
        if (buf[j] == '\\') {
            uint32_t cp;
            char utf8[4];
            size_t used = genauth_json_unescape((const unsigned char *)buf + j,
                                                len - j, &cp);
            size_t n = used ? genauth_utf8_encode(cp, utf8) : 0;
            if (used && n <= secret_len - k &&
                memcmp(utf8, secret + k, n) == 0) {
                j += used;
                k += n;
                continue;
            }
            /* Cut off by buf's end: short of its digits, or a pair's
             * first half without its second. */
            if (len - j < LONGEST_ESCAPE &&
                (!used || (cp >= 0xD800 && cp <= 0xDBFF))) {
                j = len;
                break;
            }
        }
        if (buf[j] != secret[k])
            break;
        j++;
        k++;
    }
    *matched = k;
    return j;
}

void
genauth_mask(char *buf, size_t len, const char *secret, size_t secret_len,
             size_t min_piece)
{
    if (!buf || !secret || secret_len == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        size_t n = len - i < secret_len ? len - i : secret_len;
        if ((n == secret_len || n >= min_piece) &&
            memcmp(buf + i, secret, n) == 0)
            memset(buf + i, '*', n);
    }
    /* Then as a JSON writer may have written it: an error page that quotes
     * the request as JSON text. Apart from the pass above, which a secret
     * holding "\\" itself needs (read as an escape, it would not match). */
    for (size_t i = 0; i < len; i++) {
        size_t matched;
        if (buf[i] != '\\' && buf[i] != secret[0])
            continue;
        size_t end = escaped_match(buf, len, i, secret, secret_len, &matched);
        if (matched == secret_len || (end == len && matched >= min_piece)) {
            memset(buf + i, '*', end - i);
            i = end - 1;
        }
    }
}

/* JSON's insignificant whitespace. */
static int
json_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void
genauth_mask_member(char *buf, size_t len, const char *key)
{
    size_t key_len = strlen(key);
    for (size_t i = 0; buf && i + key_len <= len; i++) {
        if (memcmp(buf + i, key, key_len) != 0)
            continue;
        size_t j = i + key_len;
        while (j < len && json_space(buf[j]))
            j++;
        if (j >= len || buf[j] != ':')
            continue;
        for (j++; j < len && json_space(buf[j]); j++)
            ;
        if (j >= len || buf[j] != '"')
            continue;
        /* To its closing quote, or to buf's end that cuts it off. */
        for (j++; j < len && buf[j] != '"'; j++) {
            int escape = buf[j] == '\\';
            buf[j] = '*';
            if (escape && j + 1 < len)
                buf[++j] = '*';
        }
        i = j;
    }
}
