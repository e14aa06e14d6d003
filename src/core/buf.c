/* genauth_buf (buf.h). */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
genauth_buf_init(genauth_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void
genauth_buf_clear(genauth_buf *b)
{
    free(b->data);
    genauth_buf_init(b);
}

int
genauth_buf_reserve(genauth_buf *b, size_t extra)
{
    /* +1 keeps room for the terminating NUL. */
    if (extra > (size_t)-1 - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int
genauth_buf_append(genauth_buf *b, const void *p, size_t n)
{
    if (genauth_buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
genauth_buf_append_str(genauth_buf *b, const char *s)
{
    return genauth_buf_append(b, s, strlen(s));
}

int
genauth_buf_append_char(genauth_buf *b, char c)
{
    if (b->len + 1 >= b->cap && genauth_buf_reserve(b, 1) < 0)
        return -1;
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
}

int
genauth_buf_printf(genauth_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || genauth_buf_reserve(b, (size_t)n) < 0)
        return -1;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}
