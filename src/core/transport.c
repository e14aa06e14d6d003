/* HTTP over libcurl: pooled easy handles, each driven through its own multi
 * handle so that a call waiting on the network can be interrupted (Ctrl-C)
 * without giving up libcurl's timeouts. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"


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
    conn->multi = curl_multi_init();
    if (!conn->easy || !conn->multi)
        goto nomem;
    conn->max_response_bytes = client->max_response_bytes;

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
#if LIBCURL_VERSION_NUM >= 0x075500
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)client->max_response_bytes);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    /* libcurl sends a request again when a reused connection turns out to
     * have died before any answer, so a POST could reach the server twice.
     * Not reusing connections idle for longer than common server keep-alive
     * timeouts (nginx 75 s, cloud load balancers 60 s) makes that rare. */
    SET(CURLOPT_MAXAGE_CONN, client->max_idle_seconds);
    SET(CURLOPT_SHARE, client->share);
    SET(CURLOPT_POST, 1L);
    if (client->use_unverified_ssl) {
        SET(CURLOPT_SSL_VERIFYPEER, 0L);
        SET(CURLOPT_SSL_VERIFYHOST, 0L);
    } else {
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
    }
    if (client->ca_bundle)
        SET(CURLOPT_CAINFO, client->ca_bundle);
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
    if (conn->multi)
        curl_multi_cleanup(conn->multi);
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
    } else if (conn->over_cap || rc == CURLE_FILESIZE_EXCEEDED) {
        st = genauth_error_set(err, GENAUTH_E_TRANSPORT,
                               "the response is larger than "
                               "max_response_bytes (%zu bytes)",
                               conn->max_response_bytes);
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
    long left_ms = (long)(left * 1000.0);
    if (left_ms < 1)
        left_ms = 1;

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
    conn->errbuf[0] = '\0';
    return GENAUTH_OK;
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
    CURL *e = conn->easy;
    genauth_status st;
    int running = 0;

    *http_status = 0;
    st = genauth_conn_setup(conn, plan, deadline, err);
    if (st != GENAUTH_OK)
        return st;
    if (curl_multi_add_handle(conn->multi, e) != CURLM_OK)
        return genauth_error_set(err, GENAUTH_E_NOMEM,
                                 "could not start the transfer");
    double next_check = genauth_now() + GENAUTH_INTERRUPT_POLL_MS / 1000.0;
    for (;;) {
        CURLMcode mc = curl_multi_perform(conn->multi, &running);
        if (mc == CURLM_OK && running)
            mc = curl_multi_poll(conn->multi, NULL, 0, GENAUTH_INTERRUPT_POLL_MS,
                                 NULL);
        if (mc != CURLM_OK) {
            st = genauth_error_set(err, GENAUTH_E_TRANSPORT, "libcurl: %s",
                                   curl_multi_strerror(mc));
            break;
        }
        if (!running)
            break;
        if (genauth_client_should_stop(client, &next_check)) {
            st = genauth_error_set(err, GENAUTH_E_INTERRUPTED,
                                   "the call was interrupted");
            break;
        }
    }
    if (st == GENAUTH_OK) {
        int left_msgs = 0;
        CURLMsg *msg;
        CURLcode rc = CURLE_OK;
        while ((msg = curl_multi_info_read(conn->multi, &left_msgs))) {
            if (msg->msg == CURLMSG_DONE && msg->easy_handle == e)
                rc = msg->data.result;
        }
        st = genauth_conn_finish(conn, rc, http_status, err);
    }
    /* Removing a transfer that did not finish closes its connection, so an
     * interrupted handle is safe to pool again. */
    curl_multi_remove_handle(conn->multi, e);
    return st;
}
