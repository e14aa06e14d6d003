/* Batches: many calls (to any endpoints) in flight at once on one multi
 * handle, with the same steps as a single call (request.c) and the client's
 * token. The multi handle is the client's, kept between batches, so a batch
 * reuses the connections the previous one opened. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct {
    genauth_batch_item *item;
    genauth_conn *conn; /* while in flight */
    double deadline;
    unsigned long generation;
    int attempt;
} slot;

/* Starts (or restarts, for a retry) `s`'s call on `multi`. On failure the
 * item is finished with the error and its connection released. */
static int
start_call(genauth_client *c, CURLM *multi, slot *s)
{
    genauth_batch_item *it = s->item;
    genauth_call_plan plan;
    genauth_status st;

    if (!s->conn && !(s->conn = genauth_client_acquire(c, &it->err)))
        goto failed;
    st = genauth_call_prepare(c, s->conn, &it->req, s->deadline, &plan,
                              &it->err);
    s->generation = plan.generation;
    if (st == GENAUTH_OK)
        st = genauth_conn_setup(s->conn, &plan, s->deadline, &it->err);
    if (st != GENAUTH_OK)
        goto failed;
    curl_easy_setopt(s->conn->easy, CURLOPT_PRIVATE, s);
    if (curl_multi_add_handle(multi, s->conn->easy) != CURLM_OK) {
        genauth_error_set(&it->err, GENAUTH_E_NOMEM,
                          "could not start the transfer");
        goto failed;
    }
    return 1;
failed:
    it->status = it->err.status;
    if (s->conn) {
        genauth_client_release(c, s->conn);
        s->conn = NULL;
    }
    return 0;
}

/* A transfer ended: parse, maybe retry; returns 1 while it is in flight
 * again, 0 once the item is finished. */
static int
finish_call(genauth_client *c, CURLM *multi, slot *s, CURLcode result)
{
    genauth_batch_item *it = s->item;
    long http_status = 0;
    genauth_status st;

    curl_multi_remove_handle(multi, s->conn->easy);
    st = genauth_conn_finish(s->conn, result, &http_status, &it->err);
    if (st == GENAUTH_OK)
        st = genauth_call_read(c, s->conn, http_status, &it->resp, &it->err);
    if ((st == GENAUTH_OK || st == GENAUTH_E_DECODE) &&
        genauth_call_should_retry(c, s->attempt, http_status,
                                  st == GENAUTH_OK ? &it->resp : NULL)) {
        genauth_envelope_clear(&it->resp);
        genauth_error_clear(&it->err);
        genauth_token_invalidate(c, s->generation);
        s->attempt++;
        /* The token fetch this may cause holds up the batch briefly: the
         * other calls need the new token as well. */
        if (start_call(c, multi, s))
            return 1;
        return 0;
    }
    it->status = st;
    genauth_client_release(c, s->conn);
    s->conn = NULL;
    return 0;
}

genauth_status
genauth_client_batch(genauth_client *c, genauth_batch_item *items,
                     size_t count, size_t concurrency, genauth_error *err)
{
    CURLM *multi = NULL;
    slot *slots = NULL;
    genauth_status st = GENAUTH_OK;
    size_t next = 0, active = 0;
    int running = 0, holds_client_multi = 0;

    for (size_t i = 0; i < count; i++) {
        items[i].status = GENAUTH_OK;
        genauth_envelope_init(&items[i].resp);
        genauth_error_init(&items[i].err);
    }
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
    if (pthread_mutex_trylock(&c->batch_mu) == 0) {
        holds_client_multi = 1;
        if (!c->batch_multi)
            c->batch_multi = curl_multi_init();
        multi = c->batch_multi;
    } else {
        multi = curl_multi_init();
    }
    slots = calloc(count, sizeof(*slots));
    if (!multi || !slots) {
        st = genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
        goto done;
    }
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)concurrency);
    /* libcurl trims a multi handle's idle connections to 4 x the transfers
     * it holds, which falls to 4 as the batch drains: keep them all for the
     * next batch. */
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS,
                      (long)GENAUTH_MAX_CONNECTIONS);

    double next_check = genauth_now() + GENAUTH_INTERRUPT_POLL_MS / 1000.0;
    for (;;) {
        while (active < concurrency && next < count) {
            slot *s = &slots[next];
            s->item = &items[next++];
            s->deadline = genauth_now() + c->timeout;
            if (start_call(c, multi, s))
                active++;
            else if (s->item->status == GENAUTH_E_INTERRUPTED)
                goto interrupted; /* Ctrl-C while it waited for a token */
        }
        if (active == 0 && next == count)
            break;
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
            if (!finish_call(c, multi, s, result)) {
                active--;
                finished = 1;
                if (s->item->status == GENAUTH_E_INTERRUPTED)
                    goto interrupted;
            }
        }
        if (finished)
            continue; /* start the next calls before waiting */
        mc = curl_multi_poll(multi, NULL, 0, GENAUTH_INTERRUPT_POLL_MS, NULL);
        if (mc != CURLM_OK) {
            st = genauth_error_set(err, GENAUTH_E_TRANSPORT, "libcurl: %s",
                                   curl_multi_strerror(mc));
            goto done;
        }
        if (genauth_client_should_stop(c, &next_check))
            goto interrupted;
    }
    goto done;
interrupted:
    st = genauth_error_set(err, GENAUTH_E_INTERRUPTED,
                           "the batch was interrupted");
done:
    /* Calls still in flight, or never started, take the batch's error. */
    for (size_t i = 0; slots && i < count; i++) {
        slot *s = &slots[i];
        if (s->conn) {
            curl_multi_remove_handle(multi, s->conn->easy);
            genauth_client_release(c, s->conn);
            s->conn = NULL;
        } else if (s->item || st == GENAUTH_OK) {
            continue; /* finished with its own outcome */
        }
        genauth_envelope_clear(&items[i].resp);
        items[i].status = st;
        items[i].err = *err;
        items[i].err.auth_envelope = NULL; /* owned by err */
    }
    for (size_t i = 0; !slots && st != GENAUTH_OK && i < count; i++) {
        items[i].status = st; /* stopped before any call started */
        items[i].err = *err;
        items[i].err.auth_envelope = NULL;
    }
    free(slots);
    if (holds_client_multi)
        pthread_mutex_unlock(&c->batch_mu);
    else if (multi)
        curl_multi_cleanup(multi);
    return st;
}
