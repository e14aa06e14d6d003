/* Response envelopes: {statusCode, message, apiCode?, requestId?, data}.
 * The whole body is kept exactly; the fields the client acts on are read
 * once here. */
#include <math.h>
#include <string.h>

#include "internal.h"
#include "json.h"

void
genauth_envelope_init(genauth_envelope *env)
{
    memset(env, 0, sizeof(*env));
}

void
genauth_envelope_clear(genauth_envelope *env)
{
    genauth_json_doc_free(env->doc);
    genauth_envelope_init(env);
}

/* An integral JSON number as a long; 0 when it is not one. */
static int
read_integer(const cJSON *item, long *out)
{
    if (!cJSON_IsNumber(item))
        return 0;
    double v = item->valuedouble;
    if (!isfinite(v) || v != floor(v) || fabs(v) > 1e15)
        return 0;
    *out = (long)v;
    return 1;
}

/* The members the client acts on, by one walk. A key given twice counts as
 * its last value, as in the dict json.loads (and the binding) makes of it. */
typedef struct {
    const cJSON *status, *api, *message, *rid, *data;
} envelope_members;

static void
read_members(const cJSON *root, envelope_members *m)
{
    memset(m, 0, sizeof(*m));
    for (const cJSON *item = root->child; item; item = item->next) {
        const char *k = item->string;
        switch (k[0]) {
        case 's':
            if (strcmp(k, "statusCode") == 0)
                m->status = item;
            break;
        case 'm':
            if (strcmp(k, "message") == 0)
                m->message = item;
            break;
        case 'd':
            if (strcmp(k, "data") == 0)
                m->data = item;
            break;
        case 'r':
            if (strcmp(k, "requestId") == 0)
                m->rid = item;
            break;
        case 'a':
            if (strcmp(k, "apiCode") == 0)
                m->api = item;
            break;
        }
    }
}

int
genauth_envelope_doc_status(const struct genauth_json_doc *doc, long *status_code)
{
    const cJSON *root = genauth_json_doc_root(doc);
    envelope_members m;
    if (!cJSON_IsObject(root))
        return 0;
    read_members(root, &m);
    return read_integer(m.status, status_code);
}

static void
set_excerpt(genauth_error *err, const genauth_buf *body)
{
    size_t n = body->len < sizeof(err->excerpt) ? body->len
                                                : sizeof(err->excerpt);
    if (n)
        memcpy(err->excerpt, body->data, n);
    err->excerpt_len = n;
}

void
genauth_envelope_wipe_clear(genauth_envelope *env)
{
    genauth_json_doc_wipe_free(env->doc);
    genauth_envelope_init(env);
}

genauth_status
genauth_envelope_parse(const genauth_buf *body, long http_status, int quiet,
                       genauth_envelope *env, genauth_error *err)
{
    genauth_json_doc *doc = NULL;
    const cJSON *root;

    env->http_status = http_status;
    if (body->len == 0) {
        genauth_error_set(err, GENAUTH_E_DECODE,
                          "the server answered HTTP %ld with an empty body",
                          http_status);
        goto decode_fail;
    }
    if (genauth_json_doc_parse(body->data, body->len, &doc, err) != GENAUTH_OK) {
        char reason[GENAUTH_ERRMSG_SIZE];
        memcpy(reason, err->message, sizeof(reason));
        genauth_error_set(err, GENAUTH_E_DECODE,
                          "the server answered HTTP %ld with a body that is "
                          "not JSON: %s",
                          http_status, reason);
        goto decode_fail;
    }
    root = genauth_json_doc_root(doc);
    if (!cJSON_IsObject(root)) {
        genauth_error_set(err, GENAUTH_E_DECODE,
                          "the server answered HTTP %ld with JSON that is "
                          "not an object",
                          http_status);
        goto decode_fail;
    }
    env->doc = doc;
    envelope_members m;
    read_members(root, &m);
    env->data = m.data;
    env->has_status_code = read_integer(m.status, &env->status_code);
    env->has_api_code = read_integer(m.api, &env->api_code);
    env->message = cJSON_IsString(m.message) ? m.message->valuestring : NULL;
    env->request_id = cJSON_IsString(m.rid) ? m.rid->valuestring : NULL;
    env->response = genauth_json_member(env->data, "response");
    return GENAUTH_OK;

decode_fail:
    genauth_json_doc_free(doc);
    err->http_status = http_status;
    if (!quiet)
        set_excerpt(err, body);
    return err->status;
}
