/* HTTP over libcurl: pooled easy handles, driven through the client's
 * shared multi handle (genauth_calls) so that a call waiting on the network
 * can be interrupted (Ctrl-C) without giving up libcurl's timeouts, and
 * idle connections cost one fd each. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include "internal.h"

#if LIBCURL_VERSION_NUM < 0x075000
#error "genauth-c needs libcurl 7.80.0 or newer (CURLOPT_PREREQFUNCTION)"
#endif

/* libcurl sends a request again, on a new connection, when a reused one
 * dies before the answer: a POST that the server had already read would be
 * delivered twice (trigger-webhook has no idempotency key). libcurl calls
 * this before each send: the second one is refused, so the call fails
 * (TransportError) and only the retry rule of retry.c ever sends again. */
static int
before_send(void *userdata, char *conn_primary_ip, char *conn_local_ip,
            int conn_primary_port, int conn_local_port)
{
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    genauth_conn *conn = userdata;
    return ++conn->sends > 1 ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}


/* libcurl's own socket() failure leaves no errno to read: this one keeps
 * it, so that a call out of file descriptors is told from a refused one. */
static curl_socket_t
open_socket(void *userdata, curlsocktype purpose,
            struct curl_sockaddr *address)
{
    (void)purpose;
    genauth_conn *conn = userdata;
    curl_socket_t fd = socket(address->family,
                              address->socktype | SOCK_CLOEXEC,
                              address->protocol);
    if (fd == CURL_SOCKET_BAD)
        conn->socket_errno = errno;
    return fd;
}

static size_t
collect_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    genauth_conn *conn = userdata;
    size_t n = size * nmemb;
    /* Enforced while the body arrives: libcurl's own MAXFILESIZE does not
     * stop a body sent without a length before 8.4. */
    if (n > conn->max_response_bytes - conn->response.len) {
        conn->over_cap = 1;
        return 0;
    }
    if (genauth_buf_append(&conn->response, ptr, n) < 0)
        return 0;
    return n;
}

genauth_conn *
genauth_conn_new(genauth_client *client, genauth_error *err)
{
    genauth_conn *conn = calloc(1, sizeof(*conn));
    if (!conn) {
        genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
        return NULL;
    }
    genauth_signature_init(&conn->signature);
    conn->easy = curl_easy_init();
    if (!conn->easy)
        goto nomem;
    conn->max_response_bytes = client->max_response_bytes;
    conn->no_ca_store = client->no_ca_store;

    CURL *e = conn->easy;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    if (rc == CURLE_OK) \
    rc = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_ERRORBUFFER, conn->errbuf);
    SET(CURLOPT_WRITEFUNCTION, collect_body);
    SET(CURLOPT_WRITEDATA, conn);
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PREREQFUNCTION, before_send);
    SET(CURLOPT_PREREQDATA, conn);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
    SET(CURLOPT_OPENSOCKETDATA, conn);
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)client->max_response_bytes);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    /* A connection idle for longer than common server keep-alive timeouts
     * (nginx 75 s, cloud load balancers 60 s) may be closed by the server
     * just as a request goes out: such a call would fail (before_send), so
     * these are not reused but closed. */
    SET(CURLOPT_MAXAGE_CONN, client->max_idle_seconds);
    SET(CURLOPT_SHARE, client->share);
    /* Both set (proxy.c): libcurl then reads no environment per transfer. */
    SET(CURLOPT_PROXY, client->proxy);
    SET(CURLOPT_NOPROXY, client->no_proxy);
    SET(CURLOPT_POST, 1L);
    if (client->use_unverified_ssl) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
    }
    /* A store found on this machine replaces libcurl's built-in paths
     * entirely: those may not exist here, and a missing one fails every
     * TLS handshake. */
    if (client->ca_bundle) {
        SET(CURLOPT_CAINFO, client->ca_bundle);
    } else if (client->ca_store_file) {
        SET(CURLOPT_CAINFO, client->ca_store_file);
        SET(CURLOPT_CAPATH, (char *)NULL);
    } else if (client->ca_store_dir) {
        SET(CURLOPT_CAINFO, (char *)NULL);
        SET(CURLOPT_CAPATH, client->ca_store_dir);
    }
#undef SET
    if (rc != CURLE_OK) {
        genauth_error_set(err, GENAUTH_E_TRANSPORT,
                          "libcurl refused an option: %s",
                          curl_easy_strerror(rc));
        err->curl_code = rc;
        genauth_conn_free(conn);
        return NULL;
    }
    return conn;
nomem:
    genauth_conn_free(conn);
    genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    return NULL;
}

void
genauth_conn_free(genauth_conn *conn)
{
    if (!conn)
        return;
    if (conn->easy)
        curl_easy_cleanup(conn->easy);
    genauth_headers_wipe_free(conn->api_headers);
    curl_slist_free_all(conn->signed_headers);
    genauth_signature_clear(&conn->signature);
    genauth_buf_clear(&conn->request);
    genauth_buf_clear(&conn->url);
    genauth_buf_clear(&conn->response);
    free(conn);
}

void
genauth_conn_abandon(genauth_conn *conn)
{
    /* Deliberately leaks the libcurl handles: cleaning them up would close
     * (and, for TLS, shut down) a socket the parent process still uses. */
    (void)conn;
}

static genauth_status
transport_error(genauth_conn *conn, CURLcode rc, genauth_error *err)
{
    genauth_status st;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        st = genauth_error_set(err, GENAUTH_E_TIMEOUT,
                               "the call timed out: %s",
                               conn->errbuf[0] ? conn->errbuf
                                               : curl_easy_strerror(rc));
    } else if (rc == CURLE_ABORTED_BY_CALLBACK && conn->sends > 1) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "the connection was lost after the request "
                               "was sent; it was not sent again, as the "
                               "server may have received it");
    } else if (conn->over_cap || rc == CURLE_FILESIZE_EXCEEDED) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "the response is larger than "
                               "max_response_bytes (%zu bytes)",
                               conn->max_response_bytes);
    } else if (conn->no_ca_store && (rc == CURLE_PEER_FAILED_VERIFICATION ||
                                     rc == CURLE_SSL_CACERT_BADFILE)) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "%s (%s); no CA store was found on this "
                               "machine: pass ca_bundle=, a PEM file of the "
                               "CAs to trust (or install certifi, or set "
                               "SSL_CERT_FILE)",
                               conn->errbuf[0] ? conn->errbuf
                                               : curl_easy_strerror(rc),
                               curl_easy_strerror(rc));
    } else {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT, "%s (%s)",
                               conn->errbuf[0] ? conn->errbuf
                                               : curl_easy_strerror(rc),
                               curl_easy_strerror(rc));
    }
    err->curl_code = rc;
    return st;
}

genauth_status
genauth_conn_setup(genauth_conn *conn, const genauth_call_plan *plan,
                   double deadline, genauth_error *err)
{
    CURL *e = conn->easy;
    CURLcode rc = CURLE_OK;

    double left = deadline - genauth_now();
    if (left <= 0)
        return genauth_error_set(err, GENAUTH_E_TIMEOUT,
                                 "the call timed out before the request "
                                 "was sent");
    /* Converted only when in range (a timeout is at most
     * GENAUTH_MAX_TIMEOUT, but a long may have 32 bits). */
    double ms = left * 1000.0;
    long left_ms = ms >= (double)LONG_MAX ? LONG_MAX
                   : ms < 1.0             ? 1
                                          : (long)ms;

    if (plan->url_changes || conn->cur_url != plan->url) {
        rc = curl_easy_setopt(e, CURLOPT_URL, plan->url);
        conn->cur_url = rc == CURLE_OK && !plan->url_changes ? plan->url
                                                             : NULL;
    }
    if (rc == CURLE_OK && conn->cur_headers != plan->headers) {
        rc = curl_easy_setopt(e, CURLOPT_HTTPHEADER, plan->headers);
        conn->cur_headers = rc == CURLE_OK ? plan->headers : NULL;
    }
    if (plan->is_get) {
        if (rc == CURLE_OK && !conn->cur_get) {
            rc = curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
            conn->cur_get = rc == CURLE_OK;
        }
    } else {
        if (rc == CURLE_OK && conn->cur_get) {
            rc = curl_easy_setopt(e, CURLOPT_POST, 1L);
            conn->cur_get = rc != CURLE_OK;
        }
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDS, conn->request.data);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                  (curl_off_t)conn->request.len);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left_ms);
    if (rc != CURLE_OK)
        return transport_error(conn, rc, err);

    genauth_buf_reset(&conn->response);
    conn->over_cap = 0;
    conn->sends = 0;
    conn->socket_errno = 0;
    conn->errbuf[0] = '\0';
    return GENAUTH_OK;
}

int
genauth_conn_nothing_sent(genauth_conn *conn, CURLcode result)
{
    /* Once libcurl was about to send, some of the request may have left:
     * only a transfer that never got that far is known not to have. */
    return result != CURLE_OK && conn->sends == 0;
}

int
genauth_conn_out_of_fds(genauth_conn *conn, CURLcode result)
{
    return result == CURLE_COULDNT_CONNECT && conn->sends == 0 &&
           (conn->socket_errno == EMFILE || conn->socket_errno == ENFILE);
}

genauth_status
genauth_conn_finish(genauth_conn *conn, CURLcode result, long *http_status,
                    genauth_error *err)
{
    *http_status = 0;
    if (result != CURLE_OK)
        return transport_error(conn, result, err);
    curl_easy_getinfo(conn->easy, CURLINFO_RESPONSE_CODE, http_status);
    return GENAUTH_OK;
}

/* ---- the shared multi handle ----------------------------------------- */

/* libcurl tells which sockets a transfer waits on, and for what; the
 * transfer's own thread polls them. Called inside libcurl calls, so with
 * the multi's mutex held. */
static int
on_socket(CURL *easy, curl_socket_t fd, int what, void *userdata,
          void *socketp)
{
    (void)userdata;
    (void)socketp;
    genauth_conn *conn = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&conn);
    if (!conn || conn->state != GENAUTH_CONN_RUNNING)
        return 0; /* libcurl closing a pooled connection: nobody waits */
    int i = 0;
    while (i < conn->nsocks && conn->socks[i].fd != fd)
        i++;
    if (what == CURL_POLL_REMOVE) {
        if (i < conn->nsocks)
            conn->socks[i] = conn->socks[--conn->nsocks];
        return 0;
    }
    if (i == conn->nsocks) {
        /* More than libcurl uses for a transfer: this one is not polled,
         * and the interrupt slice bounds how long it can wait. */
        if (i == GENAUTH_CONN_SOCKETS)
            return 0;
        conn->nsocks++;
    }
    conn->socks[i].fd = fd;
    conn->socks[i].events = (short)((what & CURL_POLL_IN ? POLLIN : 0) |
                                    (what & CURL_POLL_OUT ? POLLOUT : 0));
    return 0;
}

void
genauth_calls_init(genauth_calls *m)
{
    memset(m, 0, sizeof(*m));
    /* Held for a few microseconds per libcurl call: a thread that finds it
     * taken spins a little before it sleeps. */
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&m->mu, &attr);
    pthread_mutexattr_destroy(&attr);
}

void
genauth_calls_close(genauth_calls *m)
{
    pthread_mutex_lock(&m->mu);
    if (m->multi && m->transfers == 0) {
        curl_multi_cleanup(m->multi);
        m->multi = NULL;
    }
    pthread_mutex_unlock(&m->mu);
}

void
genauth_calls_clear(genauth_calls *m)
{
    if (m->multi)
        curl_multi_cleanup(m->multi);
    m->multi = NULL;
    pthread_mutex_destroy(&m->mu);
}

void
genauth_calls_abandon(genauth_calls *m)
{
    /* Leaked on purpose: cleaning it up would close the parent's sockets.
     * No thread of the child is inside it (see adopt_after_fork). */
    genauth_calls_init(m);
}

/* The multi handle, made by the first call. Called locked. */
static CURLM *
calls_multi(genauth_calls *m)
{
    if (m->multi)
        return m->multi;
    CURLM *multi = curl_multi_init();
    CURLMcode mc = multi ? CURLM_OK : CURLM_OUT_OF_MEMORY;
    if (mc == CURLM_OK)
        mc = curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    /* One transfer per connection (no HTTP/2 multiplexing): a socket then
     * belongs to one transfer, which its own thread polls. */
    if (mc == CURLM_OK)
        mc = curl_multi_setopt(multi, CURLMOPT_PIPELINING,
                               (long)CURLPIPE_NOTHING);
    if (mc != CURLM_OK) {
        if (multi)
            curl_multi_cleanup(multi);
        return NULL;
    }
    m->multi = multi;
    return multi;
}

/* A transfer ended: taken off the multi handle, its connection kept (or
 * closed, when it did not finish). Called locked. */
static void
end_transfer(genauth_calls *m, genauth_conn *conn, CURLcode result)
{
    curl_multi_remove_handle(m->multi, conn->easy);
    conn->state = GENAUTH_CONN_DONE;
    conn->result = result;
    conn->nsocks = 0;
    m->transfers--;
}

/* Ends the transfers libcurl finished, whichever thread's they are (a
 * timer run by one thread can end another's transfer: its thread, polling
 * no later than that timer, then finds it done). Called locked. */
static void
collect(genauth_calls *m)
{
    CURLMsg *msg;
    int left = 0;
    while ((msg = curl_multi_info_read(m->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        genauth_conn *conn = NULL;
        CURLcode result = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&conn);
        if (conn && conn->state == GENAUTH_CONN_RUNNING)
            end_transfer(m, conn, result);
        else
            curl_multi_remove_handle(m->multi, msg->easy_handle);
    }
}

/* Runs conn's transfer on the shared multi handle; *result is how it
 * ended, *interrupted whether the interrupt check stopped it.
 *
 * No thread drives the others' transfers: each polls the sockets of its
 * own (one connection is one transfer's at a time) and lets libcurl act
 * on them, taking the mutex for every libcurl call, so a thread sleeps
 * only for the network, never for another thread to get round to it.
 * Timers are the one shared thing: whoever finds one due runs it. */
static genauth_status
run_shared(genauth_client *client, genauth_conn *conn, CURLcode *result,
           int *interrupted, genauth_error *err)
{
    genauth_calls *m = &client->calls;
    double next_check = genauth_now() + GENAUTH_INTERRUPT_POLL_MS / 1000.0;
    struct pollfd fds[GENAUTH_CONN_SOCKETS];
    int running = 0;

    *interrupted = 0;
    pthread_mutex_lock(&m->mu);
    if (!calls_multi(m)) {
        pthread_mutex_unlock(&m->mu);
        return genauth_error_set(err, GENAUTH_E_NOMEM,
                                 "could not start the transfer");
    }
    curl_easy_setopt(conn->easy, CURLOPT_PRIVATE, conn);
    conn->state = GENAUTH_CONN_RUNNING;
    conn->nsocks = 0;
    if (curl_multi_add_handle(m->multi, conn->easy) != CURLM_OK) {
        conn->state = GENAUTH_CONN_DONE;
        conn->result = CURLE_OUT_OF_MEMORY;
    } else {
        m->transfers++;
    }
    /* libcurl counts connections in use against this limit too: room for
     * every transfer, and GENAUTH_IDLE_CONNECTIONS idle ones beyond. As a
     * burst ends, each connection given back closes the oldest idle one
     * over the limit. */
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS,
                      (long)(m->transfers + GENAUTH_IDLE_CONNECTIONS));
    while (conn->state == GENAUTH_CONN_RUNNING) {
        long due = -1;
        CURLMcode mc = curl_multi_timeout(m->multi, &due);
        if (mc == CURLM_OK && due == 0) {
            /* The new transfer's start is one of these. */
            mc = curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0,
                                          &running);
            collect(m);
        }
        if (mc != CURLM_OK) {
            if (conn->state == GENAUTH_CONN_RUNNING)
                end_transfer(m, conn, CURLE_OUT_OF_MEMORY);
            break;
        }
        if (due == 0)
            continue;
        nfds_t n = 0;
        for (int i = 0; i < conn->nsocks; i++) {
            fds[n].fd = conn->socks[i].fd;
            fds[n].events = conn->socks[i].events;
            fds[n].revents = 0;
            n++;
        }
        int wait_ms = due < 0 || due > GENAUTH_INTERRUPT_POLL_MS
                          ? GENAUTH_INTERRUPT_POLL_MS
                          : (int)due;
        pthread_mutex_unlock(&m->mu);
        int ready = poll(fds, n, wait_ms);
        int stop = genauth_client_should_stop(client, &next_check);
        pthread_mutex_lock(&m->mu);
        if (conn->state != GENAUTH_CONN_RUNNING)
            break; /* a timer another thread ran ended it */
        if (stop) {
            /* Taking off a transfer that did not finish closes its
             * connection: the handle is safe to pool again. */
            end_transfer(m, conn, CURLE_ABORTED_BY_CALLBACK);
            *interrupted = 1;
            break;
        }
        for (nfds_t i = 0; ready > 0 && i < n; i++) {
            if (!fds[i].revents)
                continue;
            /* Only while it is still this transfer's socket: libcurl may
             * have given it up meanwhile (and the number to another). */
            int mine = 0;
            for (int j = 0; j < conn->nsocks; j++)
                mine |= conn->socks[j].fd == fds[i].fd;
            if (!mine)
                continue;
            int ev = (fds[i].revents & POLLIN ? CURL_CSELECT_IN : 0) |
                     (fds[i].revents & POLLOUT ? CURL_CSELECT_OUT : 0) |
                     (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)
                          ? CURL_CSELECT_ERR
                          : 0);
            mc = curl_multi_socket_action(m->multi, fds[i].fd, ev, &running);
            collect(m);
            if (mc != CURLM_OK && conn->state == GENAUTH_CONN_RUNNING)
                end_transfer(m, conn, CURLE_OUT_OF_MEMORY);
            if (conn->state != GENAUTH_CONN_RUNNING)
                break;
        }
    }
    conn->state = GENAUTH_CONN_IDLE;
    *result = conn->result;
    curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS,
                      (long)(m->transfers + GENAUTH_IDLE_CONNECTIONS));
    if (m->transfers == 0 && atomic_load(&client->closed)) {
        /* close() found transfers in flight; the last one out frees. */
        curl_multi_cleanup(m->multi);
        m->multi = NULL;
    }
    pthread_mutex_unlock(&m->mu);
    return GENAUTH_OK;
}

genauth_status
genauth_conn_post(genauth_client *client, genauth_conn *conn,
                  const char *url, const struct curl_slist *headers,
                  double deadline, long *http_status, genauth_error *err)
{
    genauth_call_plan plan = {.url = url, .headers = headers};
    return genauth_conn_perform(client, conn, &plan, deadline, http_status,
                                err);
}

genauth_status
genauth_conn_perform(genauth_client *client, genauth_conn *conn,
                     const genauth_call_plan *plan, double deadline,
                     long *http_status, genauth_error *err)
{
    genauth_status st;
    CURLcode result = CURLE_OK;
    int interrupted = 0;

    *http_status = 0;
    st = genauth_conn_setup(conn, plan, deadline, err);
    if (st == GENAUTH_OK)
        st = run_shared(client, conn, &result, &interrupted, err);
    if (st != GENAUTH_OK)
        return st;
    if (interrupted)
        return genauth_error_set(err, GENAUTH_E_INTERRUPTED,
                                 "the call was interrupted");
    return genauth_conn_finish(conn, result, http_status, err);
}
