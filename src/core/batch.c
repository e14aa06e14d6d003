/* Batches: many calls (to any endpoints) in flight at once on one multi
 * handle, with the same steps as a single call (request.c) and the client's
 * token. The multi handle is the client's, kept between batches, so a batch
 * reuses the connections the previous one opened. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

/* Connection handles between calls: a call that ends hands its handle to
 * the next one to start, rather than to the client's pool, where another
 * thread could take it and leave the batch to make one (curl_easy_init and
 * every setopt), and which would cost the pool's lock both ways. Kept
 * spares count as in use (genauth_client_acquire), so the pool's limit on
 * idle handles stays beyond them. */
typedef struct {
    genauth_conn **conns;
    size_t n, cap;
    genauth_kept *kept; /* the connections of the batch's multi handle */
} spares;

/* Keeps `conn` for the next call, or gives it back to the pool. */
static void
put_spare(genauth_client *c, spares *sp, genauth_conn *conn)
{
    if (sp->n < sp->cap)
        sp->conns[sp->n++] = conn;
    else
        genauth_client_release(c, conn);
}

/* A kept handle, or one from the pool (NULL with err set). */
static genauth_conn *
take_spare(genauth_client *c, spares *sp, genauth_error *err)
{
    if (sp->n > 0 && !genauth_client_is_closed(c))
        return sp->conns[--sp->n];
    return genauth_client_acquire(c, err);
}

/* What an item's err points to when even its error could not be kept. */
static genauth_error kept_nomem = {
    .status = GENAUTH_E_NOMEM,
    .message = "out of memory (this call's error could not be kept)",
};

/* Finishes `it` as failed with a copy of *e, made now: a call that
 * succeeds never pays for an error struct. With `take`, the copy takes e's
 * auth_envelope and *e is left empty for the next call; otherwise the copy
 * has none (e keeps it). */
static void
fail_item(genauth_batch_item *it, genauth_error *e, int take)
{
    genauth_error *kept = malloc(sizeof(*kept));
    it->status = e->status;
    if (kept) {
        *kept = *e;
        if (!take)
            kept->auth_envelope = NULL;
    } else {
        kept = &kept_nomem;
        it->status = GENAUTH_E_NOMEM;
        if (take)
            genauth_json_doc_free(e->auth_envelope);
    }
    if (take)
        genauth_error_init(e);
    if (it->err)
        genauth_batch_item_clear_error(it);
    it->err = kept;
}

void
genauth_batch_item_clear_error(genauth_batch_item *it)
{
    if (it->err && it->err != &kept_nomem) {
        genauth_error_clear(it->err);
        free(it->err);
    }
    it->err = NULL;
}

void
genauth_batch_item_clear(genauth_batch_item *it)
{
    genauth_envelope_clear(&it->resp);
    genauth_batch_item_clear_error(it);
}

typedef struct {
    genauth_batch_item *item;
    genauth_conn *conn; /* while in flight */
    double started;
    double deadline;
    unsigned long generation;
    int attempt;
    int retries;       /* retry.c's */
    double not_before; /* a retry waits until then */
    /* .completed: the fetches ended as the batch began. A token fetch
     * that ended since then and failed for good is the call's failure too
     * (token.c), so a batch asks a failing token endpoint once, not once
     * per call: also when the call waits for its retry meanwhile, as in
     * asyncio's batches (evloop.c), where a retry keeps its mark.
     * .generation: the token's as the pass that (re)started it began. */
    genauth_token_mark token_queued;
} slot;

/* `s` is to start again at `until` (retry.c), among the waiting calls, its
 * handle given back meanwhile. Returns -1, as its callers do for it. */
static int
rest_slot(genauth_client *c, spares *sp, slot *s, double until)
{
    s->retries++;
    s->not_before = until;
    put_spare(c, sp, s->conn);
    s->conn = NULL;
    return -1;
}

/* Starts (or restarts, for a retry) `s`'s call on `multi`: 1 when it is in
 * flight; -1 when its token fetch sent nothing or was throttled and it is to
 * start again at s->not_before (retry.c); 0 when it failed: the item is
 * finished with the error. Its connection is released unless in flight.
 * `e`: the batch's scratch error, empty between calls. */
static int
start_call(genauth_client *c, CURLM *multi, spares *sp, slot *s,
           genauth_error *e)
{
    genauth_batch_item *it = s->item;
    genauth_call_plan plan;
    genauth_status st;
    double until = 0;

    if (s->attempt + s->retries > 0 &&
        genauth_send_closed(c, e) != GENAUTH_OK)
        goto failed;
    if (!s->conn && !(s->conn = take_spare(c, sp, e)))
        goto failed;
    st = genauth_call_prepare(c, s->conn, &it->req, s->deadline, 1,
                              &s->token_queued, &plan, e);
    s->generation = plan.generation;
    if (st == GENAUTH_OK)
        st = genauth_conn_setup(s->conn, &plan, s->deadline, e);
    if (st != GENAUTH_OK)
        goto failed;
    curl_easy_setopt(s->conn->easy, CURLOPT_PRIVATE, s);
    s->conn->kept = sp->kept;
    if (curl_multi_add_handle(multi, s->conn->easy) != CURLM_OK) {
        genauth_error_set(e, GENAUTH_E_NOMEM, "could not start the transfer");
        goto failed;
    }
    /* Until finish_call: checked by before_send (transport.c). */
    s->conn->resend_of = s->attempt + s->retries > 0 ? c : NULL;
    return 1;
failed:
    if (s->conn &&
        genauth_retry_plan(c, s->conn,
                           genauth_retry_classify(s->conn, e->status, e, 0,
                                                  NULL),
                           s->retries, s->deadline, &until)) {
        genauth_error_clear(e);
        return rest_slot(c, sp, s, until);
    }
    genauth_call_record(&it->resp, e, s->started,
                        (unsigned)(s->attempt + s->retries));
    fail_item(it, e, 1);
    if (s->conn) {
        put_spare(c, sp, s->conn);
        s->conn = NULL;
    }
    return 0;
}

/* A transfer ended: parse, maybe retry; returns 1 while it is in flight
 * again, 0 once the item is finished, -1 when it could not get a socket
 * (EMFILE) and was sent nothing: it is to start again once another call
 * has freed one (only when `can_wait`: other calls are in flight), or a
 * retry (retry.c) waits for its time. */
static int
finish_call(genauth_client *c, CURLM *multi, spares *sp, slot *s,
            CURLcode result, int can_wait, genauth_error *e)
{
    genauth_batch_item *it = s->item;
    long http_status = 0;
    genauth_status st;

    genauth_conn_note_kept(s->conn);
    curl_multi_remove_handle(multi, s->conn->easy);
    /* Kept for a rerun on a new connection: the same send. */
    if (genauth_conn_rerun_stale(s->conn, result)) {
        if (curl_multi_add_handle(multi, s->conn->easy) == CURLM_OK)
            return 1;
        result = CURLE_OUT_OF_MEMORY;
    }
    s->conn->resend_of = NULL; /* its transfer is over */
    if (can_wait && genauth_conn_out_of_fds(s->conn, result)) {
        s->not_before = 0;
        put_spare(c, sp, s->conn);
        s->conn = NULL;
        return -1;
    }
    st = genauth_conn_finish(s->conn, result, &http_status, e);
    if (st == GENAUTH_OK)
        st = genauth_call_read(c, s->conn, http_status, &it->resp, e);
    /* retry.c: sent nothing, or throttled: back to the waiting calls,
     * to start again (signed anew) once its wait is over. */
    double until = 0;
    genauth_retry_kind kind = genauth_retry_classify(
        s->conn, st, e, http_status, st == GENAUTH_OK ? &it->resp : NULL);
    if (genauth_retry_plan(c, s->conn, kind, s->retries, s->deadline,
                           &until)) {
        genauth_envelope_clear(&it->resp);
        genauth_error_clear(e);
        return rest_slot(c, sp, s, until);
    }
    if ((st == GENAUTH_OK || st == GENAUTH_E_DECODE) &&
        genauth_call_should_retry(c, s->attempt, http_status,
                                  st == GENAUTH_OK ? &it->resp : NULL)) {
        genauth_envelope_clear(&it->resp);
        genauth_error_clear(e);
        genauth_token_invalidate(c, s->generation);
        s->attempt++;
        /* The token fetch this may cause holds up the batch briefly: the
         * other calls need the new token as well. */
        return start_call(c, multi, sp, s, e);
    }
    genauth_call_record(&it->resp, e, s->started,
                        (unsigned)(s->attempt + s->retries));
    if (st == GENAUTH_OK)
        it->status = GENAUTH_OK;
    else
        fail_item(it, e, 1);
    put_spare(c, sp, s->conn);
    s->conn = NULL;
    return 0;
}

/* `s`'s call has ended (its item holds its outcome): tells the done
 * callback. 0 to go on; 1 to stop the batch as interrupted (Ctrl-C while
 * the call waited for its token, or the callback asked to stop); -1, err
 * set, in a child forked meanwhile by caller code (a log handler, here or
 * in the call's token fetch): the batch ends there at once. */
static int
call_ended(genauth_client *c, unsigned long since, slot *s,
           genauth_batch_item *items, genauth_batch_done_fn done,
           void *userdata, genauth_error *err)
{
    int stop = s->item->status == GENAUTH_E_INTERRUPTED ||
               (done && done(userdata, (size_t)(s->item - items)));
    if (genauth_client_check_fork(c, since, err) != GENAUTH_OK)
        return -1;
    return stop;
}

/* How long the batch may wait before the soonest retry among `waiting` is
 * due (retry.c's wait, not_before), at most `cap` ms: the wait then ends
 * on time rather than up to a whole poll slice late. Calls waiting for a
 * file descriptor (not_before 0) wait for a transfer to end instead. */
static int
ms_until_retry(slot *const *waiting, size_t n_waiting, int cap)
{
    double soonest = 0;
    for (size_t k = 0; k < n_waiting; k++) {
        double at = waiting[k]->not_before;
        if (at > 0 && (soonest == 0 || at < soonest))
            soonest = at;
    }
    if (soonest == 0)
        return cap;
    double ms = ceil((soonest - genauth_now()) * 1000.0);
    return ms <= 0 ? 0 : ms < cap ? (int)ms : cap;
}

genauth_status
genauth_client_batch(genauth_client *c, genauth_batch_item *items,
                     size_t count, size_t concurrency,
                     genauth_batch_done_fn done, void *userdata,
                     genauth_error *err)
{
    CURLM *multi = NULL;
    slot *slots = NULL;
    /* Calls that found no free file descriptor, to start again. */
    slot **waiting = NULL;
    size_t n_waiting = 0;
    spares sp = {NULL, 0, 0, NULL};
    genauth_kept own_kept = {.conns = NULL}; /* a multi handle of its own's */
    genauth_error scratch; /* a call's error until it is kept (fail_item) */
    genauth_status st = GENAUTH_OK;
    size_t next = 0, active = 0;
    size_t limit; /* in flight at most: concurrency, less when out of fds */
    int running = 0, holds_client_multi = 0, ended;
    unsigned long since = 0; /* the fork generation it runs in */

    for (size_t i = 0; i < count; i++) {
        items[i].status = GENAUTH_OK;
        genauth_envelope_init(&items[i].resp);
        items[i].err = NULL;
    }
    genauth_error_init(&scratch);
    if (count == 0)
        return GENAUTH_OK;
    if (concurrency == 0)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "concurrency: must be at least 1");
    if (concurrency > count)
        concurrency = count;
    if (genauth_client_is_closed(c)) {
        st = genauth_error_set(err, GENAUTH_E_CLOSED, "the client is closed");
        goto done;
    }
    genauth_client_adopt_if_forked(c);
    since = genauth_fork_generation();
    unsigned long token_queued = genauth_token_mark_now(c).completed;
    if (pthread_mutex_trylock(&c->batch_mu) == 0) {
        holds_client_multi = 1;
        if (!c->batch_multi)
            c->batch_multi = curl_multi_init();
        multi = c->batch_multi;
        sp.kept = &c->batch_kept;
    } else {
        multi = curl_multi_init();
        sp.kept = &own_kept;
    }
    slots = calloc(count, sizeof(*slots));
    waiting = calloc(count, sizeof(*waiting));
    sp.conns = calloc(concurrency, sizeof(*sp.conns));
    sp.cap = concurrency;
    if (!multi || !slots || !waiting || !sp.conns) {
        st = genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
        goto done;
    }
    limit = concurrency;
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)concurrency);
    /* While calls remain to start, a finished call's connection waits for
     * the next one; once the last has started, the cache shrinks to
     * GENAUTH_IDLE_CONNECTIONS as calls end (see internal.h). */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)concurrency);

    double next_check = genauth_now() + GENAUTH_INTERRUPT_POLL_MS / 1000.0;
    for (;;) {
        /* The calls started in one pass start together, as if each had a
         * thread: when one of them blocks on a token fetch, the others'
         * time runs meanwhile, as it would for threads waiting on that
         * fetch. Were each to start once the fetch before it had ended,
         * a token endpoint that hangs would hold the batch for a timeout
         * per call, whatever the concurrency. */
        double now = genauth_now();
        /* And share a token fetched since (that fetch's outcome), as the
         * threads waiting for it would, however soon it expires. */
        unsigned long pass_generation = genauth_token_mark_now(c).generation;
        /* Once the client is closed, a call waiting to be sent again ends
         * now (start_call) rather than when its wait is over, and so does
         * one not started: also while every slot is taken by calls in
         * flight, since start_call sends nothing once closed, and those
         * calls may take up to their timeout to end. */
        int closed = genauth_client_is_closed(c);
        /* Calls that ended (or went to wait for a retry) in this pass as
         * they started: each freed its slot, and the call that takes it
         * starts once it has ended, not together with it. Once as many
         * have started as there were free slots, the next ones make a
         * group of their own, on a clock read anew: otherwise a call
         * started after a token fetch that hung would share that fetch's
         * moment and time out at once, never asking. */
        size_t ended_here = 0;
        for (;;) {
            slot *s = NULL;
            if (active >= limit && !closed)
                break;
            if (ended_here > 0 && active + ended_here >= limit) {
                now = genauth_now();
                pass_generation = genauth_token_mark_now(c).generation;
                ended_here = 0;
            }
            for (size_t k = 0; k < n_waiting; k++) {
                if (waiting[k]->not_before <= now || closed) {
                    s = waiting[k];
                    waiting[k] = waiting[--n_waiting];
                    break;
                }
            }
            if (!s && next < count) {
                s = &slots[next];
                s->item = &items[next++];
                s->token_queued.completed = token_queued;
                /* A call's time starts when it starts (and again after
                 * EMFILE: it sent nothing), in this pass; a retry keeps
                 * its deadline. */
                s->started = now;
                s->deadline = now + c->timeout;
            } else if (!s) {
                break;
            } else if (s->not_before == 0) {
                s->started = now;
                s->deadline = now + c->timeout;
            }
            s->token_queued.generation = pass_generation;
            int started = start_call(c, multi, &sp, s, &scratch);
            if (started > 0) {
                active++;
            } else {
                ended_here++;
                if (started < 0)
                    waiting[n_waiting++] = s; /* a retry, at s->not_before */
                else if ((ended = call_ended(c, since, s, items, done,
                                             userdata, err)) > 0)
                    goto interrupted;
                else if (ended < 0)
                    goto forked;
            }
            if (next == count && n_waiting == 0)
                curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
                                  (long)GENAUTH_IDLE_CONNECTIONS);
        }
        if (active == 0 && next == count && n_waiting == 0)
            break;
        genauth_kept_turn(sp.kept);
        CURLMcode mc = curl_multi_perform(multi, &running);
        if (mc != CURLM_OK) {
            st = genauth_error_set(err, GENAUTH_E_TRANSPORT, "libcurl: %s",
                                   curl_multi_strerror(mc));
            goto done;
        }
        CURLMsg *msg;
        int left = 0;
        int finished = 0;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            slot *s = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            CURLcode result = msg->data.result;
            int again = finish_call(c, multi, &sp, s, result, active > 1,
                                    &scratch);
            if (again == -1) {
                active--;
                waiting[n_waiting++] = s;
                /* Out of file descriptors: fewer in flight, this call
                 * waits for one of them to end; the limit grows back by
                 * one per call that ends well. */
                if (s->not_before == 0)
                    limit = active;
                finished = 1;
            } else if (!again) {
                active--;
                finished = 1;
                if (s->item->status == GENAUTH_OK && limit < concurrency)
                    limit++;
                ended = call_ended(c, since, s, items, done, userdata, err);
                if (ended > 0)
                    goto interrupted;
                if (ended < 0)
                    goto forked;
            }
        }
        if (finished)
            continue; /* start the next calls before waiting */
        mc = curl_multi_poll(multi, NULL, 0,
                             active < limit
                                 ? ms_until_retry(waiting, n_waiting,
                                                  GENAUTH_INTERRUPT_POLL_MS)
                                 : GENAUTH_INTERRUPT_POLL_MS,
                             NULL);
        if (mc != CURLM_OK) {
            st = genauth_error_set(err, GENAUTH_E_TRANSPORT, "libcurl: %s",
                                   curl_multi_strerror(mc));
            goto done;
        }
        st = genauth_client_check_interrupt(c, since, &next_check, err);
        if (st == GENAUTH_E_INTERRUPTED)
            goto interrupted;
        if (st != GENAUTH_OK)
            goto forked;
    }
    goto done;
interrupted:
    st = genauth_error_set(err, GENAUTH_E_INTERRUPTED,
                           "the batch was interrupted");
    goto done;
forked:
    st = err->status; /* genauth_client_check_fork's */
done:
    /* Calls waiting for a file descriptor take the batch's error too. */
    for (size_t k = 0; k < n_waiting; k++) {
        fail_item(waiting[k]->item, err, 0);
    }
    /* Calls still in flight, or never started, take the batch's error. */
    for (size_t i = 0; slots && i < count; i++) {
        slot *s = &slots[i];
        if (s->conn) {
            /* In a child forked meanwhile, the multi handle and its
             * connections are the parent's: left as they are. */
            if (!genauth_forked_since(since)) {
                /* One that ended in the turn the batch stopped in keeps
                 * its connection, to be checked as any other. */
                genauth_conn_note_kept(s->conn);
                curl_multi_remove_handle(multi, s->conn->easy);
            }
            s->conn->resend_of = NULL;
            genauth_client_release(c, s->conn);
            s->conn = NULL;
        } else if (s->item || st == GENAUTH_OK) {
            continue; /* finished with its own outcome */
        }
        genauth_envelope_clear(&items[i].resp);
        fail_item(&items[i], err, 0);
    }
    for (size_t i = 0; !slots && st != GENAUTH_OK && i < count; i++) {
        fail_item(&items[i], err, 0); /* stopped before any call started */
    }
    while (sp.n > 0)
        genauth_client_release(c, sp.conns[--sp.n]);
    free(sp.conns);
    genauth_error_clear(&scratch);
    free(slots);
    free(waiting);
    /* In a child forked meanwhile, neither: batch_mu is made afresh when
     * the child adopts the client, and the multi handle is the parent's. */
    if (!genauth_forked_since(since)) {
        if (holds_client_multi) {
            pthread_mutex_unlock(&c->batch_mu);
            /* close() meanwhile left the multi handle to this batch: its
             * connections close now rather than when the client is freed.
             * Checked once unlocked: a close() whose trylock failed had
             * set closed before. */
            if (genauth_client_is_closed(c))
                genauth_client_drop_batch_multi(c);
        } else if (multi) {
            curl_multi_cleanup(multi);
        }
    }
    genauth_kept_clear(&own_kept);
    return st;
}
