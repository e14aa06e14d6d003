/* Retries that never deliver twice: the policy (which outcomes are sent
 * again, how long to wait), apart from the loops that apply it
 * (request.c for single calls, batch.c, evloop.c).
 *
 * Sent again: a request that never left (connection refused, DNS failure,
 * TLS handshake failure, a connection lost before libcurl began to send:
 * its prereq callback never ran) unless trying again cannot help (a
 * certificate not trusted, CAs that cannot be loaded), and a throttled one
 * (HTTP 429, or an envelope with statusCode 429: the server did not act on
 * it). The same for the token request: a call whose fetch sent nothing or
 * was throttled fetches again (it is the call's retry). Never sent again:
 * anything that may have reached the server (a timeout, a connection lost
 * after sending): trigger-webhook has no idempotency key.
 * Waits: about 0.1 s doubling per retry, with jitter (a random point in
 * the upper half), or what the server's Retry-After asks (seconds, or an
 * HTTP-date); no retry whose wait would end past the call's deadline. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "random.h"

#define FIRST_DELAY 0.1

double
genauth_retry_after(genauth_conn *conn)
{
    struct curl_header *h = NULL;
    if (conn->shares_fetch)
        return conn->shared_retry_after;
    if (curl_easy_header(conn->easy, "Retry-After", 0, CURLH_HEADER, -1,
                         &h) != CURLHE_OK || !h->value)
        return -1;
    char *end = NULL;
    long v = strtol(h->value, &end, 10);
    if (end != h->value && *end == '\0')
        return v < 0 ? -1 : (double)v;
    /* Or the HTTP-date to wait until (RFC 9110, 10.2.3), on the wall
     * clock: one gone by asks for no wait. */
    time_t at = curl_getdate(h->value, NULL);
    if (at == -1)
        return -1;
    time_t now = time(NULL);
    return at > now ? difftime(at, now) : 0.0;
}

static double
jitter(void)
{
    unsigned int r = 0;
    if (genauth_random_bytes(&r, sizeof(r)) < 0)
        return 1.0; /* no jitter then: still a valid wait */
    return 0.5 + 0.5 * ((double)r / 4294967295.0);
}

/* A TLS peer the client's CAs do not vouch for (not trusted, expired, for
 * another host name: 60), or CAs OpenSSL cannot load (77): the same
 * handshake fails again however often it is tried, so trying costs the
 * backoff and a connection each time. */
static int
fails_again(CURLcode rc)
{
    return rc == CURLE_PEER_FAILED_VERIFICATION ||
           rc == CURLE_SSL_CACERT_BADFILE;
}

genauth_retry_kind
genauth_retry_classify(genauth_conn *conn, genauth_status st,
                       const genauth_error *err, long http_status,
                       const genauth_envelope *env)
{
    if (st == GENAUTH_E_TRANSPORT && err->curl_code != 0 &&
        !fails_again((CURLcode)err->curl_code) &&
        genauth_conn_nothing_sent(conn, (CURLcode)err->curl_code))
        return GENAUTH_RETRY_NOT_SENT;
    if ((st == GENAUTH_OK || st == GENAUTH_E_DECODE) && http_status == 429)
        return GENAUTH_RETRY_THROTTLED;
    if (st == GENAUTH_OK && env && env->has_status_code &&
        env->status_code == 429)
        return GENAUTH_RETRY_THROTTLED;
    /* The token fetch's answer, whose HTTP status is the error's. */
    if ((st == GENAUTH_E_DECODE || st == GENAUTH_E_AUTH) &&
        err->http_status == 429)
        return GENAUTH_RETRY_THROTTLED;
    /* Or its refusal said so in its envelope. */
    long refusal = 0;
    if (st == GENAUTH_E_AUTH && err->auth_envelope &&
        genauth_envelope_doc_status(err->auth_envelope, &refusal) &&
        refusal == 429)
        return GENAUTH_RETRY_THROTTLED;
    return GENAUTH_RETRY_NO;
}

int
genauth_retry_plan(genauth_client *c, genauth_conn *conn,
                   genauth_retry_kind kind, int retries_done,
                   double deadline, double *until)
{
    double asked = kind == GENAUTH_RETRY_THROTTLED ? genauth_retry_after(conn)
                                                   : -1;
    return genauth_retry_plan_asked(c, kind, retries_done, deadline, asked,
                                    until);
}

int
genauth_retry_plan_asked(genauth_client *c, genauth_retry_kind kind,
                         int retries_done, double deadline, double asked,
                         double *until)
{
    if (kind == GENAUTH_RETRY_NO || retries_done >= c->max_retries)
        return 0;
    double delay = FIRST_DELAY * ldexp(1.0, retries_done) * jitter();
    if (kind == GENAUTH_RETRY_THROTTLED && asked >= 0)
        delay = asked;
    double now = genauth_now();
    /* The retry needs time of its own after the wait. */
    if (now + delay >= deadline)
        return 0;
    *until = now + delay;
    return 1;
}

genauth_status
genauth_send_closed(genauth_client *c, genauth_error *err)
{
    if (!genauth_client_is_closed(c))
        return GENAUTH_OK;
    return genauth_error_set(err, GENAUTH_E_CLOSED,
                             GENAUTH_MSG_CLOSED_NOT_SENT);
}

genauth_status
genauth_retry_sleep(genauth_client *c, unsigned long since, double until,
                    genauth_error *err)
{
    double next_check = 0;
    for (;;) {
        if (genauth_client_check_interrupt(c, since, &next_check, err) !=
                GENAUTH_OK ||
            genauth_send_closed(c, err) != GENAUTH_OK)
            return err->status;
        double left = until - genauth_now();
        if (left <= 0)
            return GENAUTH_OK;
        double slice = fmin(left, GENAUTH_INTERRUPT_POLL_MS / 1000.0);
        struct timespec ts = {(time_t)slice,
                              (long)((slice - floor(slice)) * 1e9)};
        nanosleep(&ts, NULL);
    }
}
