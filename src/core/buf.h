/* A growable byte buffer, reused across calls so the hot path does not
 * allocate once it has warmed up. */
#ifndef GENAUTH_BUF_H
#define GENAUTH_BUF_H

#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated whenever len < cap; owned */
    size_t len;
    size_t cap;
} genauth_buf;

void genauth_buf_init(genauth_buf *b);
void genauth_buf_clear(genauth_buf *b);          /* frees the storage */
static inline void genauth_buf_reset(genauth_buf *b) { b->len = 0; if (b->data) b->data[0] = '\0'; }
/* Each returns 0, or -1 when out of memory (the buffer is left as it was). */
int genauth_buf_reserve(genauth_buf *b, size_t extra);
int genauth_buf_append(genauth_buf *b, const void *p, size_t n);
int genauth_buf_append_str(genauth_buf *b, const char *s);
int genauth_buf_append_char(genauth_buf *b, char c);
int genauth_buf_printf(genauth_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* genauth_buf_reserve and genauth_buf_append_char without a call when the
 * room is already there: for writers that append many small pieces. */
static inline int
genauth_buf_ensure(genauth_buf *b, size_t extra)
{
    return b->cap - b->len > extra ? 0 : genauth_buf_reserve(b, extra);
}

static inline int
genauth_buf_put_char(genauth_buf *b, char c)
{
    if (b->cap - b->len <= 1)
        return genauth_buf_append_char(b, c);
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}

#endif
