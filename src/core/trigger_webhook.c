/* POST /api/v3/trigger-webhook: the TriggerWebhookDto on the wire, and the
 * call's life: authenticate, send, one retry when a token is refused. The
 * steps are shared with batches (batch.c). */
#include <string.h>

#include "internal.h"
#include "json.h"
#include "jsform.h"

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

/* Signature mode: the body in JavaScript's form, so that what the server
 * parses and the string it rebuilds to check the signature are exactly what
 * was signed; then the signature headers. */
static genauth_status
prepare_signed(genauth_client *c, genauth_conn *conn,
               const genauth_trigger_webhook_req *req, genauth_error *err)
{
    cJSON *params = cJSON_CreateObject();
    cJSON *id = genauth_json_string_new(req->webhook_id, req->webhook_id_len);
    struct curl_slist *list = NULL, *grown;
    genauth_status st = GENAUTH_OK;

    if (!params || !id) {
        cJSON_Delete(id);
        goto nomem;
    }
    if (!cJSON_AddItemToObject(params, "webhookId", id)) {
        cJSON_Delete(id);
        goto nomem;
    }
    /* References: the caller's trees are not copied (nor freed here). */
    if ((req->request_headers &&
         !cJSON_AddItemReferenceToObject(params, "requestHeaders",
                                         (cJSON *)req->request_headers)) ||
        (req->request_body &&
         !cJSON_AddItemReferenceToObject(params, "requestBody",
                                         (cJSON *)req->request_body)))
        goto nomem;
    genauth_buf_reset(&conn->request);
    st = genauth_jsform_write(params, &conn->request, err);
    if (st != GENAUTH_OK)
        goto done;

    genauth_sign_input in = {
        .method = "POST",
        .path = "/api/v3/trigger-webhook",
        .params = params,
        .header_prefix = c->header_prefix,
        .scheme = c->brand == GENAUTH_BRAND_AUTHING ? "authing" : "GenAuth",
        .access_key_id = c->access_key_id,
        .access_key_secret = c->access_key_secret,
        .sdk_version = GENAUTH_SDK_NAME ":" GENAUTH_VERSION,
        .lang = c->lang,
        .tenant_id = c->tenant_id,
    };
    st = genauth_sign(&in, &conn->signature, err);
    if (st != GENAUTH_OK)
        goto done;
    if (!(list = curl_slist_append(NULL, "Content-Type: application/json")))
        goto nomem;
    for (const char *h = genauth_signature_header(&conn->signature, NULL); h;
         h = genauth_signature_header(&conn->signature, h)) {
        if (!(grown = curl_slist_append(list, h)))
            goto nomem;
    }
    if (!(grown = curl_slist_append(list, "Expect:")))
        goto nomem;
    curl_slist_free_all(conn->signed_headers);
    conn->signed_headers = list;
    conn->cur_headers = NULL; /* a new list every request */
    list = NULL;
    goto done;
nomem:
    st = genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
done:
    curl_slist_free_all(list);
    cJSON_Delete(params);
    return st;
}

genauth_status
genauth_call_prepare(genauth_client *c, genauth_conn *conn,
                     const genauth_trigger_webhook_req *req, double deadline,
                     unsigned long *generation,
                     const struct curl_slist **headers, genauth_error *err)
{
    genauth_status st;

    if (!req->webhook_id || req->webhook_id_len == 0)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "webhook_id: must be a non-empty string");
    if (c->auth == GENAUTH_AUTH_SIGNATURE) {
        *generation = 0;
        st = prepare_signed(c, conn, req, err);
        *headers = conn->signed_headers;
        return st;
    }
    /* Before encoding: a token fetch uses conn->request too. */
    st = genauth_token_prepare(c, conn, deadline, generation, err);
    if (st == GENAUTH_OK)
        st = encode_request(req, &conn->request, err);
    *headers = conn->api_headers;
    return st;
}

/* Overwrites with '*' every occurrence of `secret` in buf, and a piece of it
 * (8 bytes or more) cut off at the end of buf. */
static void
mask(char *buf, size_t len, const char *secret)
{
    size_t slen = strlen(secret);
    if (slen == 0)
        return;
    for (size_t i = 0; i < len; i++) {
        size_t n = len - i < slen ? len - i : slen;
        if ((n == slen || n >= 8) && memcmp(buf + i, secret, n) == 0)
            memset(buf + i, '*', n);
    }
}

genauth_status
genauth_call_read(genauth_client *c, genauth_conn *conn, long http_status,
                  genauth_envelope *resp, genauth_error *err)
{
    genauth_status st = genauth_envelope_parse(&conn->response, http_status,
                                               0, resp, err);
    if (st == GENAUTH_E_DECODE && err->excerpt_len) {
        /* An error page that echoes the request would show the token (or,
         * were it ever sent, the secret) in the excerpt. */
        static const char bearer[] = "Authorization: Bearer ";
        const struct curl_slist *h = conn->api_headers;
        for (; h && c->auth == GENAUTH_AUTH_TOKEN; h = h->next) {
            if (strncmp(h->data, bearer, sizeof(bearer) - 1) == 0)
                mask(err->excerpt, err->excerpt_len,
                     h->data + sizeof(bearer) - 1);
        }
        mask(err->excerpt, err->excerpt_len, c->access_key_secret);
    }
    return st;
}

int
genauth_call_should_retry(genauth_client *c, int attempt, long http_status,
                          const genauth_envelope *env)
{
    /* A refused token (expired, revoked): one retry with a new one. A
     * refused signature would be refused again. */
    if (c->auth != GENAUTH_AUTH_TOKEN || attempt > 0)
        return 0;
    return http_status == 401 ||
           (env && env->has_status_code && env->status_code == 401);
}

void
genauth_call_record(genauth_envelope *resp, genauth_error *err,
                    double started, unsigned retries)
{
    genauth_call_stats stats = {genauth_now() - started, retries};
    resp->stats = stats;
    err->stats = stats;
}

genauth_status
genauth_client_trigger_webhook(genauth_client *c,
                               const genauth_trigger_webhook_req *req,
                               genauth_envelope *resp, genauth_error *err)
{
    genauth_conn *conn = NULL;
    genauth_status st = GENAUTH_OK;
    double started = genauth_now();
    double deadline = started + c->timeout;
    int attempt = 0;

    conn = genauth_client_acquire(c, err);
    if (!conn) {
        genauth_call_record(resp, err, started, 0);
        return err->status;
    }
    for (;; attempt++) {
        unsigned long generation = 0;
        long http_status = 0;
        const struct curl_slist *headers = NULL;
        st = genauth_call_prepare(c, conn, req, deadline, &generation,
                                  &headers, err);
        if (st == GENAUTH_OK)
            st = genauth_conn_post(c, conn, c->trigger_webhook_url, headers,
                                   deadline, &http_status, err);
        if (st == GENAUTH_OK)
            st = genauth_call_read(c, conn, http_status, resp, err);
        if ((st == GENAUTH_OK || st == GENAUTH_E_DECODE) &&
            genauth_call_should_retry(c, attempt, http_status,
                                      st == GENAUTH_OK ? resp : NULL)) {
            genauth_envelope_clear(resp);
            genauth_error_clear(err);
            genauth_token_invalidate(c, generation);
            continue;
        }
        break;
    }
    genauth_client_release(c, conn);
    genauth_call_record(resp, err, started, (unsigned)attempt);
    return st;
}
