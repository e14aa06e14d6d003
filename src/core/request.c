/* One request path for every endpoint: check the parameters against the
 * endpoint table, encode them (a JSON body for POST, a query string for
 * GET), authenticate with a token or a signature, send, read the envelope,
 * retry once when a token is refused, and send again what retry.c's policy
 * allows. The steps are shared with batches (batch.c) and the event-driven
 * engine (evloop.c); see internal.h. */
#include <string.h>

#include "internal.h"
#include "json.h"
#include "jsform.h"

static genauth_status
nomem(genauth_error *err)
{
    return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
}

/* `params` without its null members (which the official SDKs leave out),
 * as `params` itself when it has none, else as a new object of references
 * in *owned (the caller frees it with cJSON_Delete; the members stay the
 * caller's). NULL params: an empty object in *owned. */
static const cJSON *
without_nulls(const cJSON *params, cJSON **owned, genauth_error *err)
{
    const cJSON *m;

    *owned = NULL;
    for (m = params ? params->child : NULL; m && !cJSON_IsNull(m); m = m->next)
        ;
    if (params && !m)
        return params;
    if (!(*owned = cJSON_CreateObject()))
        goto oom;
    for (m = params ? params->child : NULL; m; m = m->next) {
        if (cJSON_IsNull(m))
            continue;
        /* Top-level keys are the endpoint's names: plain ASCII. */
        if (!cJSON_AddItemReferenceToObject(*owned, m->string, (cJSON *)m))
            goto oom;
    }
    return *owned;
oom:
    cJSON_Delete(*owned);
    *owned = NULL;
    nomem(err);
    return NULL;
}

/* ---- GET: the query string ------------------------------------------------ */

/* Appends `len` bytes percent-encoded as Python's urllib.parse.quote_plus
 * (what urlencode and requests use): letters, digits and "_.-~" as they are,
 * space as '+', every other byte as %XX. */
static int
append_query_escaped(genauth_buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    if (genauth_buf_reserve(out, 3 * len + 1) < 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
            (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-' ||
            ch == '~') {
            out->data[out->len++] = (char)ch;
        } else if (ch == ' ') {
            out->data[out->len++] = '+';
        } else {
            out->data[out->len++] = '%';
            out->data[out->len++] = hex[ch >> 4];
            out->data[out->len++] = hex[ch & 0xF];
        }
    }
    out->data[out->len] = '\0';
    return 0;
}

/* A parameter's value as query text: a string's characters, an integer's
 * digits, true/false, an object or array as compact JSON. */
static genauth_status
query_text(const cJSON *v, genauth_buf *out, genauth_error *err)
{
    switch (v->type & 0xFF) {
    case cJSON_String:
        return genauth_buf_append_str(out, v->valuestring) < 0 ? nomem(err)
                                                                : GENAUTH_OK;
    case cJSON_Raw:
        if (v->valuestring[0] != '"') /* a number literal, as written */
            return genauth_buf_append_str(out, v->valuestring) < 0
                       ? nomem(err)
                       : GENAUTH_OK;
        return genauth_jsform_string(v, out, err); /* decoded, NUL kept */
    case cJSON_Number:
    case cJSON_True:
    case cJSON_False:
        return genauth_jsform_string(v, out, err);
    default:
        return genauth_json_write(v, out) < 0
                   ? genauth_error_set(err, GENAUTH_E_INVALID,
                                       "%s: cannot be encoded", v->string)
                   : GENAUTH_OK;
    }
}

/* conn->url = the endpoint's URL and `?k=v&...`; in *signed_params (when
 * not NULL) the parameters as the server parses them back from the URL:
 * every value a string. */
static genauth_status
encode_query(const char *base, const cJSON *params, genauth_buf *url,
             cJSON **signed_params, genauth_error *err)
{
    genauth_buf text;
    genauth_status st = GENAUTH_OK;
    char sep = '?';

    genauth_buf_init(&text);
    genauth_buf_reset(url);
    if (genauth_buf_append_str(url, base) < 0)
        goto oom;
    if (signed_params && !(*signed_params = cJSON_CreateObject()))
        goto oom;
    for (const cJSON *m = params ? params->child : NULL; m; m = m->next) {
        genauth_buf_reset(&text);
        st = query_text(m, &text, err);
        if (st != GENAUTH_OK)
            goto done;
        if (genauth_buf_append_char(url, sep) < 0 ||
            append_query_escaped(url, m->string, strlen(m->string)) < 0 ||
            genauth_buf_append_char(url, '=') < 0 ||
            append_query_escaped(url, text.data ? text.data : "", text.len) <
                0)
            goto oom;
        sep = '&';
        if (signed_params) {
            cJSON *s = genauth_json_string_new(text.data ? text.data : "",
                                               text.len);
            if (!s || genauth_json_object_add(*signed_params, m->string,
                                              strlen(m->string), s) < 0) {
                cJSON_Delete(s);
                goto oom;
            }
        }
    }
    goto done;
oom:
    st = nomem(err);
done:
    genauth_buf_clear(&text);
    return st;
}

/* ---- signature mode -------------------------------------------------------- */

/* Signs the request and builds conn->signed_headers: the signed headers,
 * content-type for a body, and no Expect. */
static genauth_status
sign_request(genauth_client *c, genauth_conn *conn,
             const genauth_endpoint *ep, const cJSON *signed_params,
             const genauth_sign_fixture *fixture, genauth_error *err)
{
    struct curl_slist *list = NULL, *grown;
    genauth_status st;

    genauth_sign_input in = {
        .method = ep->method,
        .path = ep->path,
        .params = signed_params,
        .header_prefix = c->header_prefix,
        .scheme = c->brand == GENAUTH_BRAND_AUTHING ? "authing" : "GenAuth",
        .access_key_id = c->access_key_id,
        .access_key_secret = c->access_key_secret,
        .sdk_version = fixture && fixture->sdk_version
                           ? fixture->sdk_version
                           : GENAUTH_SDK_NAME ":" GENAUTH_VERSION,
        .lang = c->lang,
        .tenant_id = c->tenant_id,
        .fixed_nonce = fixture ? fixture->nonce : NULL,
        .fixed_date = fixture ? fixture->date : NULL,
    };
    st = genauth_sign(&in, &conn->signature, err);
    if (st != GENAUTH_OK)
        return st;
    if (!ep->is_get &&
        !(list = curl_slist_append(NULL, "Content-Type: application/json")))
        goto oom;
    for (const char *h = genauth_signature_header(&conn->signature, NULL); h;
         h = genauth_signature_header(&conn->signature, h)) {
        if (!(grown = curl_slist_append(list, h)))
            goto oom;
        list = grown;
    }
    if (!(grown = curl_slist_append(list, "Expect:")))
        goto oom;
    genauth_headers_wipe_free(conn->signed_headers);
    conn->signed_headers = grown;
    conn->cur_headers = NULL; /* a new list every request */
    return GENAUTH_OK;
oom:
    genauth_headers_wipe_free(list);
    return nomem(err);
}

/* ---- the steps --------------------------------------------------------------- */

/* The webhook secret `req` sends (create and update, whose bodies are
 * trees: only trigger-webhook's are ever written text), or NULL. */
static const char *
sent_webhook_secret(const genauth_request *req)
{
    const cJSON *secret;
    if (req->op != GENAUTH_OP_CREATE_WEBHOOK &&
        req->op != GENAUTH_OP_UPDATE_WEBHOOK)
        return NULL;
    secret = cJSON_GetObjectItemCaseSensitive(req->params, "secret");
    return cJSON_IsString(secret) ? secret->valuestring : NULL;
}

/* genauth_call_encode for a request already checked against `ep`. */
static genauth_status
encode_checked(genauth_client *c, genauth_conn *conn,
               const genauth_endpoint *ep, const genauth_request *req,
               const genauth_sign_fixture *fixture, genauth_call_plan *plan,
               genauth_error *err)
{
    cJSON *owned = NULL, *signed_params = NULL;
    const cJSON *params;
    int sign = c->auth == GENAUTH_AUTH_SIGNATURE;
    genauth_status st = GENAUTH_OK;

    /* Signing reads the members, which a written body has as text only. */
    if (sign && req->params && cJSON_IsRaw(req->params))
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "params: a written body cannot be signed "
                                 "(signature mode signs its members)");
    if (!(params = without_nulls(req->params, &owned, err)))
        return err->status;
    conn->sent_webhook_secret = sent_webhook_secret(req);
    plan->is_get = ep->is_get;
    if (ep->is_get) {
        genauth_buf_reset(&conn->request);
        if (!params->child) {
            plan->url = c->op_urls[req->op];
            plan->url_changes = 0;
            /* With no parameters the resource is the bare path. */
        } else {
            st = encode_query(c->op_urls[req->op], params, &conn->url,
                              sign ? &signed_params : NULL, err);
            plan->url = conn->url.data;
            plan->url_changes = 1;
        }
    } else {
        plan->url = c->op_urls[req->op];
        plan->url_changes = 0;
        genauth_buf_reset(&conn->request);
        /* Signature mode sends the body in JavaScript's form, so that what
         * the server parses and the string it rebuilds to check the
         * signature are exactly what was signed. */
        if (sign)
            st = genauth_json_write_form(params, GENAUTH_JSON_JS,
                                         &conn->request, err);
        else if (genauth_json_write(params, &conn->request) < 0)
            st = genauth_error_set(err, GENAUTH_E_INVALID,
                                   "the parameters cannot be encoded as "
                                   "JSON (nested too deep?)");
    }
    if (st == GENAUTH_OK && sign) {
        st = sign_request(c, conn, ep,
                          ep->is_get ? signed_params : params, fixture, err);
        plan->headers = conn->signed_headers;
        plan->generation = 0;
    }
    cJSON_Delete(signed_params);
    cJSON_Delete(owned);
    return st;
}

genauth_status
genauth_request_check(const genauth_request *req, genauth_error *err)
{
    const genauth_endpoint *ep = genauth_endpoint_of(req->op);

    if (!ep)
        return genauth_error_set(err, GENAUTH_E_INVALID, "op: unknown");
    return genauth_endpoint_check(ep, req->params, err);
}

genauth_status
genauth_call_encode(genauth_client *c, genauth_conn *conn,
                    const genauth_request *req,
                    const genauth_sign_fixture *fixture,
                    genauth_call_plan *plan, genauth_error *err)
{
    const genauth_endpoint *ep = genauth_endpoint_of(req->op);
    genauth_status st;

    if (!ep)
        return genauth_error_set(err, GENAUTH_E_INVALID, "op: unknown");
    st = genauth_endpoint_check(ep, req->params, err);
    if (st == GENAUTH_OK)
        st = encode_checked(c, conn, ep, req, fixture, plan, err);
    return st;
}

genauth_status
genauth_call_prepare(genauth_client *c, genauth_conn *conn,
                     const genauth_request *req, double deadline,
                     int may_fetch, const genauth_token_mark *queued,
                     genauth_call_plan *plan, genauth_error *err)
{
    const genauth_endpoint *ep = genauth_endpoint_of(req->op);
    genauth_status st;

    memset(plan, 0, sizeof(*plan));
    if (!ep)
        return genauth_error_set(err, GENAUTH_E_INVALID, "op: unknown");
    /* Bad input fails before a token is fetched for it. */
    st = genauth_endpoint_check(ep, req->params, err);
    if (st == GENAUTH_OK && c->auth == GENAUTH_AUTH_TOKEN) {
        /* Before encoding: a token fetch uses conn->request too. */
        st = genauth_token_prepare(c, conn, deadline, may_fetch, queued,
                                   &plan->generation, err);
        plan->headers = conn->api_headers;
        /* A GET has no body to describe: its headers are the same list
         * after the Content-Type line token.c puts first. */
        if (ep->is_get && plan->headers &&
            strncmp(plan->headers->data, "Content-Type:", 13) == 0)
            plan->headers = plan->headers->next;
    }
    if (st == GENAUTH_OK)
        st = encode_checked(c, conn, ep, req, NULL, plan, err);
    /* Checked once more just before the request goes: its token's fetch
     * (a round trip, maybe another thread's, waited for) or a retry's wait
     * may have let close() in since the call began. */
    if (st == GENAUTH_OK)
        st = genauth_send_closed(c, err);
    return st;
}

/* Text this long is taken for a quote of a credential; shorter, it is as
 * likely found in ordinary text by chance. */
#define QUOTE_MIN_BYTES 8

/* The credential conn's request carried: its token (token mode), or its
 * signature, the HMAC after the last ':' of its authorization header
 * (signature mode), which is as good as the secret until its nonce is
 * used; NULL when there is none. Borrowed from conn. */
static const char *
sent_credential(const genauth_client *c, const genauth_conn *conn)
{
    static const char bearer[] = "Authorization: Bearer ";
    static const char signed_by[] = "authorization: ";
    if (c->auth == GENAUTH_AUTH_SIGNATURE) {
        for (const char *h = genauth_signature_header(&conn->signature, NULL);
             h; h = genauth_signature_header(&conn->signature, h)) {
            if (strncmp(h, signed_by, sizeof(signed_by) - 1) == 0)
                return strrchr(h, ':') + 1;
        }
        return NULL;
    }
    for (const struct curl_slist *h = conn->api_headers; h; h = h->next) {
        if (strncmp(h->data, bearer, sizeof(bearer) - 1) == 0)
            return h->data + sizeof(bearer) - 1;
    }
    return NULL;
}

/* `s` as a JSON string literal writes it, its quotes left out, made in
 * `out` (made whole at once: no copy is left in freed memory); NULL
 * without memory. */
static const char *
json_string_text(const char *s, genauth_buf *out)
{
    size_t len = strlen(s);
    /* At most 6 bytes a byte ("\u001f"), and the two quotes. */
    if (len > ((size_t)-1 - 3) / 6 ||
        genauth_buf_wipe_reserve(out, 6 * len + 2) < 0 ||
        genauth_json_write_string(s, len, out) < 0)
        return NULL;
    out->data[out->len - 1] = '\0'; /* the closing quote */
    return out->data + 1;
}

/* The secrets an answer to conn's request may quote, in out[], *n_out of
 * them: the credential it carried (sent_credential), the webhook secret
 * its body carried, also as the body's JSON text wrote it when that
 * differs (a '"' or '\\' in it escaped: an answer echoing the body quotes
 * that text; made in `written`, which the caller wipes), and the access
 * key secret, which is never sent with an API call, so that an answer
 * holds it only if its server knows it. The last ones only when at least
 * `min_len` bytes long. */
static void
quotable_secrets(const genauth_client *c, const genauth_conn *conn,
                 size_t min_len, genauth_buf *written, const char *out[4],
                 size_t *n_out)
{
    const char *hook = conn->sent_webhook_secret;
    const char *chosen[] = {hook, hook ? json_string_text(hook, written)
                                       : NULL,
                            c->access_key_secret};
    size_t n = 0;
    if ((out[n] = sent_credential(c, conn)))
        n++;
    if (chosen[1] && strcmp(chosen[1], hook) == 0)
        chosen[1] = NULL; /* written as it is */
    for (size_t i = 0; i < sizeof(chosen) / sizeof(chosen[0]); i++) {
        if (chosen[i] && chosen[i][0] && strlen(chosen[i]) >= min_len)
            out[n++] = chosen[i];
    }
    *n_out = n;
}

/* Whether `doc` quotes one of quotable_secrets. One shorter than
 * QUOTE_MIN_BYTES (a test key) is not looked for, as every answer would
 * hold one of a character ("e" in "message") and lose its message. */
static int
quotes_credential(const genauth_client *c, const genauth_conn *conn,
                  const genauth_json_doc *doc)
{
    const char *secrets[4];
    size_t n;
    int quoted = 0;
    genauth_buf written;
    genauth_buf_init(&written);
    quotable_secrets(c, conn, QUOTE_MIN_BYTES, &written, secrets, &n);
    for (size_t i = 0; i < n && !quoted; i++)
        quoted = genauth_json_doc_contains(doc, secrets[i],
                                           strlen(secrets[i]));
    genauth_buf_wipe_clear(&written);
    return quoted;
}

genauth_status
genauth_call_read(genauth_client *c, genauth_conn *conn, long http_status,
                  genauth_envelope *resp, genauth_error *err)
{
    genauth_status st = genauth_envelope_parse(&conn->response, http_status,
                                               0, resp, err);
    /* An error page that echoes the request would show the token or the
     * signature, the webhook secret (or, were it ever sent, the access key
     * secret) in the excerpt, or in an APIError. Success
     * envelopes are not searched (they are never an exception), and nothing
     * is looked up for them: this is every call's path. */
    if (st == GENAUTH_E_DECODE && err->excerpt_len) {
        const char *secrets[4];
        size_t n;
        genauth_buf written;
        genauth_buf_init(&written);
        quotable_secrets(c, conn, 1, &written, secrets, &n);
        for (size_t i = 0; i < n; i++)
            genauth_mask(err->excerpt, err->excerpt_len, secrets[i],
                         strlen(secrets[i]), QUOTE_MIN_BYTES);
        genauth_buf_wipe_clear(&written);
        /* The webhook's secret the answer itself carries: a WebhookDto's
         * own (create, get, list and update return it), and the header a
         * delivery sent it in, which a WebhookLogDto's requestHeaders
         * record (get_webhook_logs), in either brand's name. */
        static const char *const members[] = {
            "\"secret\"", "\"x-authing-webhook-secret\"",
            "\"x-genauth-webhook-secret\""};
        for (size_t i = 0; i < sizeof(members) / sizeof(members[0]); i++)
            genauth_mask_member(err->excerpt, err->excerpt_len, members[i]);
    }
    if (st == GENAUTH_E_DECODE)
        genauth_conn_name_url(conn, err);
    else if (st == GENAUTH_OK) {
        resp->quotes_credential =
            !(resp->has_status_code && resp->status_code == 200) &&
            quotes_credential(c, conn, resp->doc);
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

/* ---- the calls ------------------------------------------------------------- */

void
genauth_call_record(genauth_envelope *resp, genauth_error *err,
                    double started, unsigned retries)
{
    genauth_call_stats stats = {genauth_now() - started, retries};
    if (resp)
        resp->stats = stats;
    err->stats = stats;
}

genauth_status
genauth_client_call(genauth_client *c, const genauth_request *req,
                    genauth_envelope *resp, genauth_error *err)
{
    genauth_conn *conn = NULL;
    genauth_status st = GENAUTH_OK;
    double started = genauth_now();
    double deadline = started + c->timeout;
    int attempt = 0;
    int retries = 0; /* retry.c's, apart from the 401 retry */

    conn = genauth_client_acquire(c, err);
    if (!conn) {
        genauth_call_record(resp, err, started, 0);
        return err->status;
    }
    for (;; attempt++) {
        genauth_call_plan plan;
        long http_status = 0;
        st = genauth_call_prepare(c, conn, req, deadline, 1, NULL, &plan,
                                 err);
        if (st == GENAUTH_OK) {
            conn->resend_of = attempt + retries > 0 ? c : NULL;
            st = genauth_conn_perform(c, conn, &plan, deadline, &http_status,
                                      err);
            conn->resend_of = NULL;
        }
        if (st == GENAUTH_OK)
            st = genauth_call_read(c, conn, http_status, resp, err);
        if ((st == GENAUTH_OK || st == GENAUTH_E_DECODE) &&
            genauth_call_should_retry(c, attempt, http_status,
                                      st == GENAUTH_OK ? resp : NULL)) {
            genauth_envelope_clear(resp);
            genauth_error_clear(err);
            genauth_token_invalidate(c, plan.generation);
            st = genauth_send_closed(c, err);
            if (st != GENAUTH_OK)
                break;
            continue;
        }
        /* retry.c: sent nothing, or throttled. A signed request is signed
         * anew (nonce, date) by genauth_call_prepare. */
        double until = 0;
        genauth_retry_kind kind = genauth_retry_classify(
            conn, st, err, http_status, st == GENAUTH_OK ? resp : NULL);
        if (genauth_retry_plan(c, conn, kind, retries, deadline, &until)) {
            genauth_envelope_clear(resp);
            genauth_error_clear(err);
            retries++;
            attempt--; /* the 401 retry stays available */
            st = genauth_retry_sleep(c, conn->fork_generation, until,
                                     err);
            if (st != GENAUTH_OK)
                break;
            continue;
        }
        break;
    }
    genauth_client_release(c, conn);
    genauth_call_record(resp, err, started, (unsigned)(attempt + retries));
    return st;
}

genauth_status
genauth_client_call_dto(genauth_client *c, genauth_op op, const void *dto,
                        genauth_envelope *resp, genauth_error *err)
{
    genauth_request req;
    cJSON *params = NULL;
    genauth_status st = genauth_request_from_dto(op, dto, &req, &params, err);
    if (st == GENAUTH_OK)
        st = genauth_client_call(c, &req, resp, err);
    cJSON_Delete(params); /* after the call: it refers to the DTO */
    return st;
}

genauth_status
genauth_client_trigger_webhook(genauth_client *c,
                               const genauth_trigger_webhook_req *req,
                               genauth_envelope *resp, genauth_error *err)
{
    return genauth_client_call_dto(c, GENAUTH_OP_TRIGGER_WEBHOOK, req, resp,
                                   err);
}
