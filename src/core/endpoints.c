/* The endpoints: one row per API method (HTTP method, path, and the fields
 * of its request DTO), the checks every request's parameters pass before
 * anything is sent, and the conversion of a DTO struct into the generic
 * parameter object. A new endpoint is, in the core, a row here and its
 * GENAUTH_OP_* value and DTO in genauth.h (README.md, "How the code is laid
 * out", lists what the binding adds). */
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "json.h"

#define REQ GENAUTH_FIELD_REQUIRED
#define NONEMPTY (GENAUTH_FIELD_REQUIRED | GENAUTH_FIELD_NONEMPTY)
#define F(dto, member) offsetof(dto, member)

/* A string field whose length is the DTO member after it. */
#define STR_LEN(name, dto, member, len_member, flags)                      \
    { name, GENAUTH_FIELD_STRING, F(dto, member), F(dto, len_member),      \
      (flags) | GENAUTH_FIELD_HAS_LEN }
#define STR(name, dto, member, flags)                                      \
    { name, GENAUTH_FIELD_STRING, F(dto, member), 0, flags }
#define LIST(name, dto, member, count_member, flags)                       \
    { name, GENAUTH_FIELD_STRING_LIST, F(dto, member), F(dto, count_member), \
      flags }
#define FIELD(name, type, dto, member, flags)                              \
    { name, type, F(dto, member), 0, flags }

/* A row: the HTTP method, the path and the fields, whose count and is_get
 * follow from them. */
#define ENDPOINT(method, is_get, path, ...)                                 \
    { method, path, is_get,                                                 \
      sizeof((const genauth_field[]){__VA_ARGS__}) / sizeof(genauth_field), \
      {__VA_ARGS__} }
#define GET(path, ...) ENDPOINT("GET", 1, path, __VA_ARGS__)
#define POST(path, ...) ENDPOINT("POST", 0, path, __VA_ARGS__)
#define GET_NO_FIELDS(path) { "GET", path, 1, 0, {{0}} }

/* Body and query order is the official SDKs' (the order of these rows). */
static const genauth_endpoint endpoints[GENAUTH_OP_COUNT] = {
    [GENAUTH_OP_TRIGGER_WEBHOOK] = POST(
        "/api/v3/trigger-webhook",
        STR_LEN("webhookId", genauth_trigger_webhook_req, webhook_id,
                webhook_id_len, NONEMPTY),
        FIELD("requestHeaders", GENAUTH_FIELD_OBJECT,
              genauth_trigger_webhook_req, request_headers, 0),
        FIELD("requestBody", GENAUTH_FIELD_OBJECT,
              genauth_trigger_webhook_req, request_body, 0)),
    [GENAUTH_OP_CREATE_WEBHOOK] = POST(
        "/api/v3/create-webhook",
        STR("contentType", genauth_webhook_req, content_type, REQ),
        LIST("events", genauth_webhook_req, events, events_count, REQ),
        STR("url", genauth_webhook_req, url, REQ),
        STR("name", genauth_webhook_req, name, REQ),
        FIELD("enabled", GENAUTH_FIELD_BOOL, genauth_webhook_req,
              enabled, 0),
        STR("secret", genauth_webhook_req, secret, 0),
        FIELD("retryConfig", GENAUTH_FIELD_OBJECT, genauth_webhook_req,
              retry_config, 0)),
    [GENAUTH_OP_LIST_WEBHOOKS] = GET(
        "/api/v3/list-webhooks",
        FIELD("page", GENAUTH_FIELD_INT, genauth_webhook_page_req, page,
              0),
        FIELD("limit", GENAUTH_FIELD_INT, genauth_webhook_page_req,
              limit, 0)),
    [GENAUTH_OP_GET_WEBHOOK] = GET(
        "/api/v3/get-webhook",
        STR("webhookId", genauth_webhook_page_req, webhook_id,
            NONEMPTY)),
    [GENAUTH_OP_UPDATE_WEBHOOK] = POST(
        "/api/v3/update-webhook",
        STR("webhookId", genauth_webhook_req, webhook_id, NONEMPTY),
        STR("name", genauth_webhook_req, name, 0),
        STR("url", genauth_webhook_req, url, 0),
        LIST("events", genauth_webhook_req, events, events_count, 0),
        STR("contentType", genauth_webhook_req, content_type, 0),
        FIELD("enabled", GENAUTH_FIELD_BOOL, genauth_webhook_req,
              enabled, 0),
        STR("secret", genauth_webhook_req, secret, 0),
        FIELD("retryConfig", GENAUTH_FIELD_OBJECT, genauth_webhook_req,
              retry_config, 0)),
    [GENAUTH_OP_DELETE_WEBHOOK] = POST(
        "/api/v3/delete-webhook",
        LIST("webhookIds", genauth_delete_webhooks_req, webhook_ids,
             webhook_ids_count, REQ)),
    [GENAUTH_OP_GET_WEBHOOK_LOGS] = POST(
        "/api/v3/get-webhook-logs",
        STR("webhookId", genauth_webhook_page_req, webhook_id, NONEMPTY),
        FIELD("page", GENAUTH_FIELD_INT, genauth_webhook_page_req, page,
              0),
        FIELD("limit", GENAUTH_FIELD_INT, genauth_webhook_page_req,
              limit, 0)),
    [GENAUTH_OP_GET_WEBHOOK_EVENT_LIST] =
        GET_NO_FIELDS("/api/v3/get-webhook-event-list"),
};

const genauth_endpoint *
genauth_endpoint_of(genauth_op op)
{
    if ((unsigned)op >= GENAUTH_OP_COUNT)
        return NULL;
    return &endpoints[op];
}

const char *
genauth_op_path(genauth_op op)
{
    const genauth_endpoint *ep = genauth_endpoint_of(op);
    return ep ? ep->path : NULL;
}

const char *
genauth_op_method(genauth_op op)
{
    const genauth_endpoint *ep = genauth_endpoint_of(op);
    return ep ? ep->method : NULL;
}

/* ---- checks --------------------------------------------------------------- */

/* A string node, or a raw string literal (a string holding U+0000). */
static int
is_string(const cJSON *n)
{
    int t = n->type & 0xFF;
    return t == cJSON_String ||
           (t == cJSON_Raw && n->valuestring && n->valuestring[0] == '"');
}

/* An integer: a number node with an integral value, or a raw number
 * literal without fraction or exponent. */
static int
is_integer(const cJSON *n)
{
    int t = n->type & 0xFF;
    if (t == cJSON_Number)
        return n->valuedouble == (double)(long long)n->valuedouble;
    /* Raw: a number literal, not a string literal or a written object. */
    return t == cJSON_Raw && n->valuestring && n->valuestring[0] != '"' &&
           n->valuestring[0] != '{' && !strpbrk(n->valuestring, ".eE");
}

static const char *
type_text(genauth_field_type type)
{
    switch (type) {
    case GENAUTH_FIELD_STRING:
        return "a string";
    case GENAUTH_FIELD_STRING_LIST:
        return "an array of strings";
    case GENAUTH_FIELD_BOOL:
        return "a boolean";
    case GENAUTH_FIELD_INT:
        return "an integer";
    case GENAUTH_FIELD_OBJECT:
        return "a JSON object";
    }
    return "?";
}

static int
type_ok(const genauth_field *f, const cJSON *n)
{
    switch (f->type) {
    case GENAUTH_FIELD_STRING:
        return is_string(n);
    case GENAUTH_FIELD_STRING_LIST:
        if (!cJSON_IsArray(n))
            return 0;
        for (const cJSON *e = n->child; e; e = e->next) {
            if (!is_string(e))
                return 0;
        }
        return 1;
    case GENAUTH_FIELD_BOOL:
        return cJSON_IsBool(n);
    case GENAUTH_FIELD_INT:
        return is_integer(n);
    case GENAUTH_FIELD_OBJECT:
        return genauth_json_is_object(n);
    }
    return 0;
}

genauth_status
genauth_endpoint_check(const genauth_endpoint *ep, const cJSON *params,
                       genauth_error *err)
{
    unsigned seen = 0;

    if (params && cJSON_IsRaw(params) && genauth_json_is_object(params)) {
        if (ep->is_get)
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "params: a written body is for a POST, "
                                     "and %s %s is a GET",
                                     ep->method, ep->path);
        return GENAUTH_OK;
    }
    if (params && !cJSON_IsObject(params))
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "params: must be a JSON object");
    for (const cJSON *m = params ? params->child : NULL; m; m = m->next) {
        const genauth_field *f = NULL;
        size_t i;
        if (cJSON_IsNull(m))
            continue; /* left out, as the official SDKs do */
        for (i = 0; i < ep->nfields && m->string &&
                    !(m->type & GENAUTH_JSON_KEY_ESCAPED);
             i++) {
            if (strcmp(ep->fields[i].name, m->string) == 0) {
                f = &ep->fields[i];
                break;
            }
        }
        if (!f)
            return genauth_error_set(
                err, GENAUTH_E_INVALID, "%.60s: not a parameter of %s %s",
                m->string && !(m->type & GENAUTH_JSON_KEY_ESCAPED)
                    ? m->string
                    : "(a key)",
                ep->method, ep->path);
        if (seen & (1u << i))
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "%s: given twice", f->name);
        if (!type_ok(f, m))
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "%s: must be %s", f->name,
                                     type_text(f->type));
        if ((f->flags & GENAUTH_FIELD_NONEMPTY) &&
            (m->type & 0xFF) == cJSON_String && !m->valuestring[0])
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "%s: must be a non-empty string",
                                     f->name);
        seen |= 1u << i;
    }
    for (size_t i = 0; i < ep->nfields; i++) {
        if ((ep->fields[i].flags & GENAUTH_FIELD_REQUIRED) &&
            !(seen & (1u << i)))
            return genauth_error_set(err, GENAUTH_E_INVALID,
                                     "%s: is required", ep->fields[i].name);
    }
    return GENAUTH_OK;
}

/* ---- DTO structs ---------------------------------------------------------- */

/* The JSON node for field `f` of `dto`, or NULL with *absent set when the
 * DTO leaves it out. NULL without *absent: out of memory or a bad value
 * (err set). */
static cJSON *
field_node(const genauth_field *f, const char *dto, int *absent,
           genauth_error *err)
{
    const void *at = dto + f->offset;
    cJSON *node = NULL;

    *absent = 0;
    switch (f->type) {
    case GENAUTH_FIELD_STRING: {
        const char *s = *(const char *const *)at;
        if (!s) {
            *absent = 1;
            return NULL;
        }
        size_t len = (f->flags & GENAUTH_FIELD_HAS_LEN)
                         ? *(const size_t *)(dto + f->len_offset)
                         : strlen(s);
        node = genauth_json_string_new(s, len);
        break;
    }
    case GENAUTH_FIELD_STRING_LIST: {
        const char *const *list = *(const char *const *const *)at;
        size_t count = *(const size_t *)(dto + f->len_offset);
        if (!list && count == 0) {
            *absent = 1;
            return NULL;
        }
        node = cJSON_CreateArray();
        for (size_t i = 0; node && i < count; i++) {
            cJSON *e = list[i] ? genauth_json_string_new(list[i],
                                                        strlen(list[i]))
                               : NULL;
            if (!list[i]) {
                cJSON_Delete(node);
                genauth_error_set(err, GENAUTH_E_INVALID,
                                  "%s[%zu]: must be a string", f->name, i);
                return NULL;
            }
            if (!e || !cJSON_AddItemToArray(node, e)) {
                cJSON_Delete(e);
                cJSON_Delete(node);
                node = NULL;
            }
        }
        break;
    }
    case GENAUTH_FIELD_BOOL: {
        int v = *(const int *)at;
        if (v == GENAUTH_UNSET) {
            *absent = 1;
            return NULL;
        }
        node = cJSON_CreateBool(v != 0);
        break;
    }
    case GENAUTH_FIELD_INT: {
        long long v = *(const long long *)at;
        char lit[32];
        if (v == 0) {
            *absent = 1;
            return NULL;
        }
        int n = snprintf(lit, sizeof(lit), "%lld", v);
        node = genauth_json_number_new(lit, (size_t)n);
        break;
    }
    case GENAUTH_FIELD_OBJECT: {
        const cJSON *obj = *(const cJSON *const *)at;
        if (!obj) {
            *absent = 1;
            return NULL;
        }
        if (!cJSON_IsObject(obj)) {
            genauth_error_set(err, GENAUTH_E_INVALID,
                              "%s: must be a JSON object", f->name);
            return NULL;
        }
        /* Refers to the caller's members without copying them. */
        node = cJSON_CreateObjectReference(obj->child);
        break;
    }
    }
    if (!node)
        genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    return node;
}

genauth_status
genauth_request_from_dto(genauth_op op, const void *dto,
                         genauth_request *req, cJSON **params_out,
                         genauth_error *err)
{
    const genauth_endpoint *ep = genauth_endpoint_of(op);
    cJSON *params = NULL;
    genauth_status st = GENAUTH_OK;

    *params_out = NULL;
    if (!ep)
        return genauth_error_set(err, GENAUTH_E_INVALID, "op: unknown");
    if (!dto && ep->nfields)
        return genauth_error_set(err, GENAUTH_E_INVALID,
                                 "the request is NULL");
    if (!(params = cJSON_CreateObject()))
        return genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
    for (size_t i = 0; i < ep->nfields; i++) {
        const genauth_field *f = &ep->fields[i];
        int absent = 0;
        cJSON *node = field_node(f, dto, &absent, err);
        if (absent)
            continue;
        if (!node) {
            st = err->status;
            goto fail;
        }
        if (genauth_json_object_add(params, f->name, strlen(f->name), node) <
            0) {
            cJSON_Delete(node);
            st = genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    st = genauth_endpoint_check(ep, params, err);
    if (st != GENAUTH_OK)
        goto fail;
    req->op = op;
    req->params = params;
    *params_out = params;
    return GENAUTH_OK;
fail:
    cJSON_Delete(params);
    return st;
}
