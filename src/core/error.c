/* The caller-owned error struct: one truncating setter, no global state. */
#include "internal.h"
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void
genauth_error_init(genauth_error *err)
{
    if (err == NULL)
        return;
    /* Field by field: the buffers (about 0.7 KB) are read only up to their
     * NUL or excerpt_len, and every call and batch item starts with one. */
    err->status = GENAUTH_OK;
    err->message[0] = '\0';
    err->curl_code = 0;
    err->http_status = 0;
    err->excerpt[0] = '\0';
    err->excerpt_len = 0;
    err->auth_envelope = NULL;
    err->stats.duration = 0;
    err->stats.retries = 0;
}

void
genauth_error_clear(genauth_error *err)
{
    if (err == NULL)
        return;
    genauth_json_doc_free(err->auth_envelope);
    genauth_error_init(err);
}

/* Truncation must not leave half a UTF-8 sequence at the end: the binding
 * decodes the message as UTF-8 and would fail on it. */
static void
genauth_error_trim_utf8(char *msg, size_t len)
{
    size_t start = len;
    size_t need;
    unsigned char lead;

    /* Find the lead byte of the last sequence (at most 3 continuations). */
    while (start > 0 && len - start < 4
           && ((unsigned char)msg[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0) {
        msg[len] = '\0';
        return;
    }
    lead = (unsigned char)msg[start - 1];
    if (lead < 0x80)
        need = 1;
    else if ((lead & 0xE0) == 0xC0)
        need = 2;
    else if ((lead & 0xF0) == 0xE0)
        need = 3;
    else if ((lead & 0xF8) == 0xF0)
        need = 4;
    else
        need = 0; /* not UTF-8 anyway; leave it be */
    if (need > 1 && len - (start - 1) < need)
        msg[start - 1] = '\0';
}

genauth_status
genauth_error_set(genauth_error *err, genauth_status status, const char *fmt,
                  ...)
{
    va_list ap;
    int n;

    if (err == NULL)
        return status;
    err->status = status;
    va_start(ap, fmt);
    n = vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    if (n < 0)
        err->message[0] = '\0';
    else if ((size_t)n >= sizeof(err->message))
        genauth_error_trim_utf8(err->message, sizeof(err->message) - 1);
    return status;
}

const char *
genauth_status_name(genauth_status status)
{
    switch (status) {
    case GENAUTH_OK:
        return "GENAUTH_OK";
    case GENAUTH_E_INVALID:
        return "GENAUTH_E_INVALID";
    case GENAUTH_E_NOMEM:
        return "GENAUTH_E_NOMEM";
    case GENAUTH_E_TRANSPORT:
        return "GENAUTH_E_TRANSPORT";
    case GENAUTH_E_TIMEOUT:
        return "GENAUTH_E_TIMEOUT";
    case GENAUTH_E_DECODE:
        return "GENAUTH_E_DECODE";
    case GENAUTH_E_AUTH:
        return "GENAUTH_E_AUTH";
    case GENAUTH_E_INTERRUPTED:
        return "GENAUTH_E_INTERRUPTED";
    case GENAUTH_E_CLOSED:
        return "GENAUTH_E_CLOSED";
    case GENAUTH_E_CRYPTO:
        return "GENAUTH_E_CRYPTO";
    }
    return "GENAUTH_E_UNKNOWN";
}

/* The query string is left out: it says nothing of where, and a GET's can
 * be long. The message's end is cut if the whole is. */
void
genauth_error_name_url(genauth_error *err, const char *url)
{
    char message[GENAUTH_ERRMSG_SIZE];

    memcpy(message, err->message, sizeof(message));
    genauth_error_set(err, err->status, "%.*s: %s", (int)strcspn(url, "?#"),
                      url, message);
}

genauth_status
genauth_error_timeout(genauth_error *err, const char *what)
{
    genauth_error_set(err, GENAUTH_E_TIMEOUT, "the call timed out: %s", what);
    err->curl_code = CURLE_OPERATION_TIMEDOUT;
    return GENAUTH_E_TIMEOUT;
}
