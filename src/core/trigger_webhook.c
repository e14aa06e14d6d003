/* POST /api/v3/trigger-webhook: the TriggerWebhookDto on the wire, and the
 * call's life: token, send, one retry when the token is refused. */
#include <string.h>

#include "internal.h"
#include "json.h"

/* Writes {"webhookId":..,"requestHeaders":..,"requestBody":..} (absent
 * members left out, as the official SDKs do) into `out`. */
static genauth_status
encode_request(const genauth_trigger_webhook_req *req, genauth_buf *out,
               genauth_error *err)
{
    genauth_buf_reset(out);
    if (genauth_buf_append(out, "{\"webhookId\":", 13) < 0 ||
        genauth_json_write_string(req->webhook_id, req->webhook_id_len,
                                  out) < 0)
        goto nomem;
    if (req->request_headers &&
        (genauth_buf_append(out, ",\"requestHeaders\":", 18) < 0 ||
         genauth_json_write(req->request_headers, out) < 0))
        goto nomem;
    if (req->request_body &&
        (genauth_buf_append(out, ",\"requestBody\":", 15) < 0 ||
         genauth_json_write(req->request_body, out) < 0))
        goto nomem;
    if (genauth_buf_append_char(out, '}') < 0)
        goto nomem;
    return GENAUTH_OK;
nomem:
    return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
}

/* HTTP 401, or an envelope saying 401: the token was refused. */
static int
token_refused(long http_status, const genauth_envelope *env)
{
    return http_status == 401 ||
           (env->has_status_code && env->status_code == 401);
}

genauth_status
genauth_client_trigger_webhook(genauth_client *c,
                               const genauth_trigger_webhook_req *req,
                               genauth_envelope *resp, genauth_error *err)
{
    genauth_conn *conn = NULL;
    genauth_status st;
    double deadline = genauth_now() + c->timeout;

    if (!req->webhook_id || req->webhook_id_len == 0)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "webhook_id: must be a non-empty string");
    conn = genauth_client_acquire(c, err);
    if (!conn)
        return err->status;
    st = encode_request(req, &conn->request, err);
    for (int attempt = 0; st == GENAUTH_OK; attempt++) {
        unsigned long generation = 0;
        long http_status = 0;
        st = genauth_token_prepare(c, conn, deadline, &generation, err);
        if (st != GENAUTH_OK)
            break;
        /* The token fetch reused conn->request: encode again if so. */
        if (conn->request.len == 0)
            st = encode_request(req, &conn->request, err);
        if (st == GENAUTH_OK)
            st = genauth_conn_post(c, conn, c->trigger_webhook_url,
                                   conn->api_headers, deadline, &http_status,
                                   err);
        if (st != GENAUTH_OK)
            break;
        st = genauth_envelope_parse(&conn->response, http_status, 0, resp,
                                    err);
        if (st == GENAUTH_OK && attempt == 0 &&
            token_refused(http_status, resp)) {
            /* The token expired or was revoked: one retry with a new one. */
            genauth_envelope_clear(resp);
            genauth_token_invalidate(c, generation);
            continue;
        }
        if (st != GENAUTH_OK && attempt == 0 && http_status == 401) {
            /* A 401 with a body that is not an envelope: same story. */
            genauth_error_clear(err);
            genauth_token_invalidate(c, generation);
            st = GENAUTH_OK;
            continue;
        }
        break;
    }
    genauth_client_release(c, conn);
    return st;
}
