/* Management-token authentication: one token per client, fetched lazily,
 * refreshed ahead of expiry, with at most one fetch in flight however many
 * threads need it, and forgotten when the server refuses it.
 *
 * While the cached token is valid, calls use it without waiting: the one
 * call that finds the refresh point passed fetches (single flight) and the
 * others go on. A failed early refresh is tried again no sooner than
 * GENAUTH_TOKEN_RETRY_INTERVAL later (or the wait a throttled answer
 * named), and its failure reaches no caller while the token serves.
 * Only once the token has expired (or was refused) do calls wait for the
 * one fetch, each within its own deadline and interruptibly, and share its
 * failure. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"
#include "json.h"

/* A waiting thread wakes this often to honour its own deadline and the
 * interrupt check while another thread fetches. */
#define WAIT_SLICE 0.1

void
genauth_token_cache_init(genauth_token_cache *t)
{
    memset(t, 0, sizeof(*t));
    atomic_init(&t->fetches, 0);
    atomic_init(&t->failures, 0);
    pthread_mutex_init(&t->mu, NULL);
    genauth_cond_init_monotonic(&t->changed);
}

void
genauth_token_cache_after_fork(genauth_token_cache *t)
{
    /* Not only the lock: glibc's condition variable counts its waiters,
     * and one of the parent's, absent here, would have this process's
     * pthread_cond_destroy (and a broadcast past newer waiters) wait for
     * it for ever. */
    pthread_mutex_init(&t->mu, NULL);
    genauth_cond_init_monotonic(&t->changed);
    t->refreshing = 0;
    t->fetcher_set = 0;
}

void
genauth_token_cache_clear(genauth_token_cache *t)
{
    free(t->last_refusal);
    genauth_wipe_free(t->token);
    free(t->userpool_id);
    t->token = NULL;
    t->userpool_id = NULL;
    pthread_cond_destroy(&t->changed);
    pthread_mutex_destroy(&t->mu);
}

/* Builds conn's authenticated header list from the cached token. Called with
 * the cache locked, so the strings cannot change underneath. */
static genauth_status
build_api_headers(genauth_client *c, genauth_conn *conn, genauth_error *err)
{
    genauth_buf line;
    struct curl_slist *list = NULL, *grown;
    genauth_buf_init(&line);

    /* First, so that a GET (no body) is sent the rest of the list:
     * request.c. */
    grown = curl_slist_append(NULL, "Content-Type: application/json");
    if (!grown)
        goto nomem;
    list = grown;
    /* Appended, not printed: vsnprintf measuring a token of hundreds of
     * bytes costs thousands of instructions on a client's first call. */
    genauth_buf_reset(&line);
    if (genauth_buf_append_str(&line, "Authorization: Bearer ") < 0 ||
        genauth_buf_append_str(&line, c->tokens.token) < 0 ||
        !(grown = curl_slist_append(list, line.data)))
        goto nomem;
    genauth_buf_reset(&line);
    if (genauth_buf_append_str(&line, c->header_prefix) < 0 ||
        genauth_buf_append_str(&line, "userpool-id: ") < 0 ||
        genauth_buf_append_str(&line, c->tokens.userpool_id) < 0 ||
        !(grown = curl_slist_append(list, line.data)))
        goto nomem;
    for (const struct curl_slist *h = c->base_headers; h; h = h->next) {
        if (!(grown = curl_slist_append(list, h->data)))
            goto nomem;
    }
    genauth_buf_wipe_clear(&line); /* it held the token */
    genauth_headers_wipe_free(conn->api_headers);
    conn->api_headers = list;
    conn->cur_headers = NULL; /* the old list is gone: set the new one */
    conn->api_headers_gen = c->tokens.generation;
    return GENAUTH_OK;
nomem:
    genauth_buf_wipe_clear(&line);
    genauth_headers_wipe_free(list);
    return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
}

/* Reads the token endpoint's answer. On success *token and *userpool_id are
 * new strings the caller frees, *lifetime is expires_in. */
static genauth_status
read_token_answer(genauth_client *c, genauth_conn *conn, long http_status,
                  char **token,
                  char **userpool_id, double *lifetime, genauth_error *err)
{
    genauth_envelope env;
    genauth_envelope_init(&env);
    *token = NULL;
    *userpool_id = NULL;

    /* quiet: an excerpt of this body could hold a token. */
    if (genauth_envelope_parse(&conn->response, http_status, 1, &env, err)) {
        if (err->status == GENAUTH_E_DECODE)
            genauth_conn_name_url(conn, err);
        goto fail;
    }
    if (!env.has_status_code || env.status_code != 200) {
        err->http_status = http_status;
        size_t sk_len = strlen(c->access_key_secret);
        int quoted = memmem(conn->response.data, conn->response.len,
                            c->access_key_secret, sk_len)
                         ? 1
                         : genauth_json_doc_contains(env.doc,
                                                     c->access_key_secret,
                                                     sk_len);
        if (quoted < 0) {
            /* Not searched, so not shown. */
            genauth_error_set(err, GENAUTH_E_DECODE,
                              "the token endpoint answered HTTP %ld with "
                              "JSON nested deeper than this thread's stack "
                              "allows",
                              http_status);
            goto fail;
        }
        /* A refusal that carries a token all the same (its statusCode the
         * string "200", say, which is no 200) must not hand it out either:
         * the token would serve whoever reads the exception. */
        int carries_token =
            genauth_json_member(env.data, "access_token") ||
            genauth_json_member(genauth_json_doc_root(env.doc),
                                "access_token");
        if (quoted || carries_token) {
            /* An endpoint that echoes the request (validation errors often
             * do) would put the secret into the exception: show nothing of
             * that answer. */
            genauth_error_set(err, GENAUTH_E_AUTH,
                              "the token endpoint refused (HTTP %ld; its "
                              "answer %s, so it is not shown)",
                              http_status,
                              quoted ? "quoted the secret"
                                     : "carried an access_token");
            goto fail;
        }
        genauth_error_set(
            err, GENAUTH_E_AUTH, "the token endpoint refused: %s (HTTP %ld)",
            env.message ? env.message : "no message", http_status);
        err->auth_envelope = env.doc; /* a refusal carries no token */
        env.doc = NULL;
        goto fail;
    }
    const cJSON *tok = genauth_json_member(env.data, "access_token");
    const cJSON *exp = genauth_json_member(env.data, "expires_in");
    if (!cJSON_IsString(tok) || !tok->valuestring[0]) {
        genauth_error_set(err, GENAUTH_E_AUTH,
                          "the token endpoint answered without an "
                          "access_token");
        err->http_status = http_status;
        goto fail;
    }
    if (strlen(tok->valuestring) > GENAUTH_MAX_TOKEN_BYTES) {
        genauth_error_set(err, GENAUTH_E_AUTH,
                          "the token endpoint answered a token longer than "
                          "%d bytes",
                          GENAUTH_MAX_TOKEN_BYTES);
        err->http_status = http_status;
        goto fail;
    }
    if (genauth_jwt_has_control(tok)) {
        genauth_error_set(err, GENAUTH_E_AUTH,
                          "the token endpoint answered with a token "
                          "holding control characters");
        err->http_status = http_status;
        goto fail;
    }
    if (!cJSON_IsNumber(exp) || !(exp->valuedouble > 0) ||
        !isfinite(exp->valuedouble)) {
        genauth_error_set(err, GENAUTH_E_AUTH,
                          "the token endpoint answered without a positive "
                          "expires_in");
        err->http_status = http_status;
        goto fail;
    }
    if (genauth_jwt_userpool_id(tok->valuestring, userpool_id, err)) {
        err->http_status = http_status;
        goto fail;
    }
    *token = strdup(tok->valuestring);
    if (!*token) {
        genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
        goto fail;
    }
    *lifetime = exp->valuedouble;
    genauth_envelope_wipe_clear(&env);
    return GENAUTH_OK;
fail:
    free(*userpool_id);
    *userpool_id = NULL;
    genauth_envelope_wipe_clear(&env);
    return err->status;
}

genauth_status
genauth_token_request_load(genauth_client *c, genauth_conn *conn,
                           genauth_error *err)
{
    genauth_buf_reset(&conn->request);
    if (genauth_buf_append(&conn->request, c->token_request_body,
                           c->token_request_len) < 0)
        return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    return GENAUTH_OK;
}

/* A finished fetch, told to the client's event hook only once the cache
 * holds its outcome and is unlocked: the hook may make calls of its own
 * (a logging handler that uses the client), which then find the new token.
 * Told earlier, while `refreshing` is still set, they would wait for that
 * very fetch until their deadline, and so would the call that fetched.
 * `message` never holds the secret or a token. */
typedef struct {
    int due;
    genauth_status status;
    long http_status;
    double duration;
    char message[GENAUTH_ERRMSG_SIZE];
} fetch_report;

/* Records in *r the fetch that went out at `started`. */
static void
note_fetch(fetch_report *r, genauth_status st, long http_status,
           double started, const genauth_error *err)
{
    r->due = 1;
    r->status = st;
    r->http_status = http_status;
    r->duration = genauth_now() - started;
    if (st == GENAUTH_OK)
        r->message[0] = '\0';
    else
        memcpy(r->message, err->message, sizeof(r->message));
}

/* Tells the event hook of the fetch recorded in *r, if any. Called with no
 * lock held. */
static void
report_fetch(genauth_client *c, const fetch_report *r)
{
    if (r->due && c->event_hook) {
        genauth_event ev = {GENAUTH_EVENT_TOKEN_FETCH, r->status,
                            r->http_status, r->duration, r->message};
        c->event_hook(&ev, c->event_data);
    }
}

/* A fetch that failed with the endpoint's refusal (err has its envelope):
 * *refusal is a copy of its text, *refusal_len bytes, for the calls that
 * share the failure (the caller frees it); else NULL. A refusal holds no
 * token nor the secret: read_token_answer keeps no envelope of an answer
 * that carries the one or quotes the other. Without memory for the copy,
 * the sharers' errors go without it. */
static void
copy_refusal(const genauth_conn *conn, genauth_status st,
             const genauth_error *err, char **refusal, size_t *refusal_len)
{
    *refusal = NULL;
    if (st != GENAUTH_OK && err->auth_envelope &&
        (*refusal = malloc(conn->response.len))) {
        memcpy(*refusal, conn->response.data, conn->response.len);
        *refusal_len = conn->response.len;
    }
}

/* A failed fetch's *refusal: copy_refusal's. */
static genauth_status
fetch_token(genauth_client *c, genauth_conn *conn, double deadline,
            char **token, char **userpool_id, double *lifetime,
            char **refusal, size_t *refusal_len, fetch_report *report,
            genauth_error *err)
{
    long http_status = 0;
    genauth_status st;
    double started = genauth_now();

    *refusal = NULL;
    if (genauth_token_request_load(c, conn, err) != GENAUTH_OK)
        return err->status;
    st = genauth_conn_post(c, conn, c->token_url, c->token_headers, deadline,
                           &http_status, err);
    genauth_buf_wipe_reset(&conn->request); /* it held the secret */
    if (st == GENAUTH_OK) {
        st = read_token_answer(c, conn, http_status, token, userpool_id,
                               lifetime, err);
        copy_refusal(conn, st, err, refusal, refusal_len);
    }
    /* It held the token, or the part of it that arrived before the
     * transfer failed (cut, timed out, over max_response_bytes). */
    genauth_buf_wipe_reset(&conn->response);
    note_fetch(report, st, http_status, started, err);
    return st;
}

static void
wait_until(genauth_token_cache *t, double until)
{
    double secs = floor(until);
    struct timespec ts = {(time_t)secs, (long)((until - secs) * 1e9)};
    pthread_cond_timedwait(&t->changed, &t->mu, &ts);
}

/* Whether a failed fetch is the endpoint's answer (refused, unreachable,
 * garbage), which a thread that waited for that fetch shares, rather than
 * the fetching call's own end (its deadline, an interrupt), after which a
 * waiter fetches itself. */
static int
failure_is_shared(genauth_status st)
{
    return st == GENAUTH_E_AUTH || st == GENAUTH_E_DECODE ||
           st == GENAUTH_E_TRANSPORT;
}

/* A fetch completed (called locked): the failure of the one before is
 * nobody's any more. */
static void
forget_failure(genauth_token_cache *t)
{
    t->last_failed = 0;
    free(t->last_refusal);
    t->last_refusal = NULL;
    t->throttled_until = 0;
}

/* The fetch failed (called locked, after forget_failure): what the calls
 * that share its failure get (share_failure), when the failure is the
 * endpoint's; and, when the endpoint throttled it and said in Retry-After
 * when to ask again, that time (GENAUTH_MAX_THROTTLE_WAIT at most), before
 * which no call asks. `refusal` (from copy_refusal) is taken. */
static void
remember_failure(genauth_token_cache *t, genauth_conn *conn,
                 genauth_status st, genauth_error *err, char *refusal,
                 size_t refusal_len)
{
    if (!failure_is_shared(st)) {
        free(refusal);
        return;
    }
    t->last_failed = 1;
    t->last_failure = *err;
    t->last_failure.auth_envelope = NULL; /* owned by err */
    t->last_refusal = refusal;
    t->last_refusal_len = refusal_len;
    t->last_sends = conn->sends;
    t->last_retry_after = genauth_retry_after(conn);
    genauth_retry_kind kind = genauth_retry_classify(conn, st, err, 0, NULL);
    t->last_final = kind == GENAUTH_RETRY_NO;
    if (t->last_retry_after > 0 && kind == GENAUTH_RETRY_THROTTLED)
        t->throttled_until =
            genauth_now() +
            fmin(t->last_retry_after, GENAUTH_MAX_THROTTLE_WAIT);
}

/* The fetch this thread waited for failed (called locked): its failure is
 * the waiter's too (*err, with an envelope of its own), and so is its
 * attempt (on conn, for retry.c): the waiting call is retried, or not, by
 * the rules the fetching call's retry follows. */
static void
share_failure(genauth_token_cache *t, genauth_conn *conn, genauth_error *err)
{
    genauth_error ignored;

    *err = t->last_failure;
    genauth_error_init(&ignored);
    /* Text that parsed once parses again, but for memory: the error then
     * goes without its envelope, as when the copy could not be made. */
    if (t->last_refusal &&
        genauth_json_doc_parse(t->last_refusal, t->last_refusal_len,
                               &err->auth_envelope, &ignored) != GENAUTH_OK)
        err->auth_envelope = NULL;
    if (conn) {
        conn->sends = t->last_sends;
        conn->shares_fetch = 1;
        conn->shared_retry_after = t->last_retry_after;
    }
}

/* The last fetch was throttled and the time its answer named has not come
 * (called locked). */
static int
throttled(const genauth_token_cache *t, double now)
{
    return t->last_failed && now < t->throttled_until;
}

/* A fetch ended since `queued` (genauth_token_mark_now's .completed, for
 * a batch's call) and failed for good: retry.c would not send it again,
 * so neither does a call queued behind it (called locked). */
static int
failed_for_good_since(const genauth_token_cache *t, unsigned long queued)
{
    return !t->refreshing && t->last_failed && t->last_final &&
           t->completed != queued;
}

/* What a call that needs a token finds in the cache now (called locked):
 * no valid token, so it WAITs for a fetch (it makes it, or shares one in
 * flight); a valid one to USE; or a valid one to USE while it starts the
 * early refresh, due and neither in flight, put off after a failure
 * (retry_at) nor held by a throttled answer's wait. The one rule of a
 * thread's call (genauth_token_prepare) and an event loop's
 * (genauth_token_check), so that the two cannot disagree on when a token
 * serves. `now`: genauth_now(). */
static genauth_token_need
judge(genauth_client *c, const genauth_token_cache *t, double now)
{
    double token_now = genauth_client_now(c); /* the token clock */
    if (!t->token || token_now >= t->expires_at)
        return GENAUTH_TOKEN_WAIT;
    if (token_now < t->refresh_at || t->refreshing ||
        token_now < t->retry_at || throttled(t, now))
        return GENAUTH_TOKEN_USE;
    return GENAUTH_TOKEN_USE_AND_REFRESH;
}

/* Installs a fetched token (the strings are taken). Called locked. */
static void
install_token(genauth_token_cache *t, char *token, char *userpool_id,
              double lifetime, double fetched_at)
{
    genauth_wipe_free(t->token);
    free(t->userpool_id);
    t->token = token;
    t->userpool_id = userpool_id;
    /* Refresh when less than min(60 s, a tenth of the lifetime) remains, so
     * a token does not expire in flight. */
    double margin = fmin(60.0, lifetime / 10.0);
    t->expires_at = fetched_at + lifetime;
    t->refresh_at = t->expires_at - margin;
    t->retry_at = 0;
    t->generation++;
}

/* This thread fetches a token (t->refreshing was 0; called locked, returns
 * locked), recorded in *report for the caller to tell once unlocked.
 * `early`: the cached token is still valid, so a failure is not this call's
 * failure: the call goes on with the cached token, and the next attempt
 * waits GENAUTH_TOKEN_RETRY_INTERVAL (or the wait a throttled answer
 * named). */
static genauth_status
refresh(genauth_client *c, genauth_conn *conn, double deadline, int early,
        fetch_report *report, genauth_error *err)
{
    genauth_token_cache *t = &c->tokens;
    char *token = NULL, *userpool_id = NULL, *refusal = NULL;
    double lifetime = 0;
    size_t refusal_len = 0;
    double now = genauth_now();
    /* An early refresh leaves this call half its time for its own request
     * should the token endpoint hang. */
    double fetch_deadline = early ? now + (deadline - now) / 2 : deadline;
    /* This thread's own fetch, when this call was made under it (see
     * fetcher): still in flight once this one is done. */
    int outer = t->refreshing;

    t->refreshing = 1;
    t->fetcher = pthread_self();
    t->fetcher_set = 1;
    pthread_mutex_unlock(&t->mu);
    genauth_status st = fetch_token(c, conn, fetch_deadline, &token,
                                    &userpool_id, &lifetime, &refusal,
                                    &refusal_len, report, err);
    double fetched_at = genauth_client_now(c); /* the token clock */
    pthread_mutex_lock(&t->mu);
    t->refreshing = outer;
    t->fetcher_set = outer;
    t->completed++;
    forget_failure(t);
    pthread_cond_broadcast(&t->changed);
    if (st == GENAUTH_OK) {
        install_token(t, token, userpool_id, lifetime, fetched_at);
        atomic_fetch_add(&t->fetches, 1);
        return GENAUTH_OK;
    }
    atomic_fetch_add(&t->failures, 1);
    /* Remembered even while the cached token serves: a throttled answer's
     * wait holds for every call, and a call once the token has expired
     * within it shares this refusal. */
    remember_failure(t, conn, st, err, refusal, refusal_len);
    if (early && t->token && fetched_at < t->expires_at) {
        t->retry_at = fetched_at + GENAUTH_TOKEN_RETRY_INTERVAL;
        genauth_error_clear(err);
        return GENAUTH_OK;
    }
    return st;
}

genauth_status
genauth_token_prepare(genauth_client *c, genauth_conn *conn, double deadline,
                      int may_fetch, const genauth_token_mark *queued_at,
                      unsigned long *generation, genauth_error *err)
{
    genauth_token_cache *t = &c->tokens;
    genauth_status st = GENAUTH_OK;
    fetch_report report = {0};

    pthread_mutex_lock(&t->mu);
    /* Fetches ended before this call came: a later one it waited for, and
     * for a batch's call one that ended since the batch queued it. */
    unsigned long seen = t->completed;
    unsigned long queued = queued_at ? queued_at->completed : seen;
    /* The token's generation before this call waited for a fetch: a token
     * of a later one came from that fetch. */
    unsigned long fresh_after =
        queued_at ? queued_at->generation : t->generation;
    /* An event loop must not block on a fetch: it judged the token
     * (genauth_token_check) or has just fetched it. A token with an
     * expires_in shorter than the moments since is sent once all the
     * same, as refresh() sends the token it fetched; the next call fetches
     * anew. */
    if (!may_fetch && !t->token) {
        st = genauth_error_set(err, GENAUTH_E_AUTH,
                               "no management token to send: it was "
                               "refused before the call went out");
        goto done;
    }
    while (may_fetch) {
        double now = genauth_now();
        genauth_token_need need = judge(c, t, now);
        int valid = need != GENAUTH_TOKEN_WAIT;
        /* A valid token is used without waiting, whoever refreshes it;
         * so is the token of the fetch this call waited for, however soon
         * it expired (a tiny expires_in): the waiters share that fetch's
         * outcome, as the fetching call sends the token it got (refresh)
         * and an event loop's calls queued behind its fetch do, rather
         * than each fetching one of its own in turn. */
        if (need == GENAUTH_TOKEN_USE ||
            (need == GENAUTH_TOKEN_WAIT && t->token &&
             t->generation != fresh_after))
            break;
        /* A call out of time fetches nothing: no request that cannot be
         * answered, and no fetch failure told or counted for it (a batch's
         * calls that waited behind a fetch that timed out get here). */
        if (now >= deadline) {
            if (valid)
                break; /* its own request times out as it would anyway */
            st = genauth_error_timeout(
                err, t->refreshing ? "waiting for a management token"
                                   : "no time was left to fetch a "
                                     "management token");
            genauth_error_name_url(err, c->token_url);
            goto done;
        }
        /* The endpoint throttled the last fetch and said when to ask
         * again: until then a call shares that refusal, as one that
         * waited for the fetch does, and its retry waits for that time. */
        if (!valid && !t->refreshing && throttled(t, now)) {
            share_failure(t, conn, err);
            conn->shared_retry_after = t->throttled_until - now;
            st = err->status;
            goto done;
        }
        if (!valid && ((!t->refreshing && t->last_failed &&
                        t->completed != seen) ||
                       failed_for_good_since(t, queued))) {
            /* A fetch we waited for failed: its failure is ours too,
             * rather than each waiter asking the failing endpoint again
             * (unless retry.c says to, as for the fetching call), a batch's
             * call as any other. So is one that ended, failed for good,
             * since a batch's call was queued: a batch asks a refusing
             * endpoint once, not once a call. */
            share_failure(t, conn, err);
            st = err->status;
            goto done;
        }
        if (!t->refreshing ||
            (t->fetcher_set && pthread_equal(t->fetcher, pthread_self()))) {
            st = refresh(c, conn, deadline, valid, &report, err);
            if (st != GENAUTH_OK)
                goto done;
            break; /* the new token, or the still valid one */
        }
        /* No valid token and another thread is fetching: wait for it,
         * within our deadline. */
        wait_until(t, fmin(deadline, now + WAIT_SLICE));
        /* Closed meanwhile: the call would send nothing once the token
         * came (genauth_call_prepare), so it ends now rather than when the
         * fetch it waits for does, up to its deadline. */
        if (t->refreshing && genauth_send_closed(c, err) != GENAUTH_OK) {
            st = err->status;
            goto done;
        }
        if (c->interrupt && t->refreshing) {
            double ask_now = 0; /* this loop paces itself (WAIT_SLICE) */
            pthread_mutex_unlock(&t->mu);
            /* A fork in there adopts the client: t->mu is made afresh. */
            st = genauth_client_check_interrupt(c, conn->fork_generation,
                                                &ask_now, err);
            pthread_mutex_lock(&t->mu);
            if (st != GENAUTH_OK)
                goto done;
        }
    }
    if (conn->api_headers_gen != t->generation || !conn->api_headers)
        st = build_api_headers(c, conn, err);
    *generation = t->generation;
done:
    pthread_mutex_unlock(&t->mu);
    if (report.due) {
        report_fetch(c, &report);
        /* The log line's handler may have forked: conn is then the
         * parent's, and the call must not go on with it. */
        if (genauth_client_check_fork(c, conn->fork_generation, err) !=
            GENAUTH_OK)
            st = err->status;
    }
    return st;
}

genauth_token_mark
genauth_token_mark_now(genauth_client *c)
{
    genauth_token_cache *t = &c->tokens;
    pthread_mutex_lock(&t->mu);
    genauth_token_mark mark = {t->completed, t->generation};
    pthread_mutex_unlock(&t->mu);
    return mark;
}

int
genauth_token_failed_since(genauth_client *c, unsigned long queued_at,
                           genauth_error *err)
{
    genauth_token_cache *t = &c->tokens;
    pthread_mutex_lock(&t->mu);
    int shared = failed_for_good_since(t, queued_at) &&
                 judge(c, t, genauth_now()) == GENAUTH_TOKEN_WAIT;
    if (shared)
        share_failure(t, NULL, err);
    pthread_mutex_unlock(&t->mu);
    return shared;
}

void
genauth_token_invalidate(genauth_client *c, unsigned long generation)
{
    genauth_token_cache *t = &c->tokens;
    pthread_mutex_lock(&t->mu);
    if (t->generation == generation && t->token) {
        genauth_wipe_free(t->token);
        t->token = NULL;
        t->refresh_at = 0;
        t->generation++;
    }
    pthread_mutex_unlock(&t->mu);
}

/* ---- a fetch driven from outside (evloop.c) ----------------------------- */

/* genauth_token_prepare's rule (judge). The call goes out moments later
 * with what the cache holds then (without may_fetch, genauth_token_prepare
 * neither fetches nor judges): a token that expires meanwhile is sent, as
 * a thread sends the token it judged valid, and a refusal of it costs the
 * call its one retry with a new token. */
genauth_token_need
genauth_token_check(genauth_client *c)
{
    genauth_token_cache *t = &c->tokens;
    pthread_mutex_lock(&t->mu);
    genauth_token_need need = judge(c, t, genauth_now());
    pthread_mutex_unlock(&t->mu);
    return need;
}

int
genauth_token_throttled(genauth_client *c, double *until, genauth_error *err)
{
    genauth_token_cache *t = &c->tokens;
    pthread_mutex_lock(&t->mu);
    int wait = !t->refreshing && throttled(t, genauth_now());
    if (wait) {
        share_failure(t, NULL, err);
        *until = t->throttled_until;
    }
    pthread_mutex_unlock(&t->mu);
    return wait;
}

void
genauth_token_begin(genauth_client *c)
{
    genauth_token_cache *t = &c->tokens;
    pthread_mutex_lock(&t->mu);
    t->refreshing = 1;
    pthread_mutex_unlock(&t->mu);
}

genauth_status
genauth_token_accept(genauth_client *c, genauth_conn *conn,
                     genauth_status transfer, long http_status,
                     double started, genauth_error *err)
{
    genauth_token_cache *t = &c->tokens;
    char *token = NULL, *userpool_id = NULL;
    double lifetime = 0;
    genauth_status st = transfer;
    fetch_report report = {0};

    char *refusal = NULL;
    size_t refusal_len = 0;

    genauth_buf_wipe_reset(&conn->request); /* it held the secret */
    if (st == GENAUTH_OK) {
        st = read_token_answer(c, conn, http_status, &token, &userpool_id,
                               &lifetime, err);
        copy_refusal(conn, st, err, &refusal, &refusal_len);
    }
    genauth_buf_wipe_reset(&conn->response); /* it held the token */
    if (started > 0)
        note_fetch(&report, st, http_status, started, err);
    double fetched_at = genauth_client_now(c); /* the token clock */
    pthread_mutex_lock(&t->mu);
    t->refreshing = 0;
    t->completed++;
    forget_failure(t); /* a thread that waited fetches itself */
    pthread_cond_broadcast(&t->changed);
    if (st == GENAUTH_OK) {
        install_token(t, token, userpool_id, lifetime, fetched_at);
        atomic_fetch_add(&t->fetches, 1);
    } else {
        atomic_fetch_add(&t->failures, 1);
        /* Remembered as refresh() does. An early refresh failed: the
         * token still serves; the next try waits, as refresh() has it. */
        remember_failure(t, conn, st, err, refusal, refusal_len);
        if (t->token && fetched_at < t->expires_at)
            t->retry_at = fetched_at + GENAUTH_TOKEN_RETRY_INTERVAL;
    }
    pthread_mutex_unlock(&t->mu);
    report_fetch(c, &report);
    return st;
}
