/* The user pool id travels inside the management token: a JWT whose payload
 * is base64url (RFC 7515), not base64, so '-' and '_' must decode. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "json.h"

static int
b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-' || c == '+') /* '+' and '/' tolerated from lax issuers */
        return 62;
    if (c == '_' || c == '/')
        return 63;
    return -1;
}

/* Decodes `len` base64url characters (padding optional) into a new
 * NUL-terminated buffer the caller frees. NULL when malformed or no memory. */
static char *
b64url_decode(const char *s, size_t len, size_t *out_len)
{
    while (len && s[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return NULL;
    char *out = malloc(len / 4 * 3 + 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    *out_len = o;
    return out;
}

int
genauth_jwt_has_control(const cJSON *str)
{
    int control = (str->type & GENAUTH_JSON_STRING_HAS_NUL) != 0;

    for (const char *p = str->valuestring; *p && !control; p++)
        control = (unsigned char)*p < 0x20 || *p == 0x7f;
    return control;
}

genauth_status
genauth_jwt_userpool_id(const char *token, char **out, genauth_error *err)
{
    char *payload = NULL;
    genauth_json_doc *claims = NULL;
    genauth_error parse_err;
    size_t payload_len = 0;

    *out = NULL;
    genauth_error_init(&parse_err);
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    if (!dot2) {
        genauth_error_set(err, GENAUTH_E_AUTH,
                          "the management token is not a JWT");
        goto fail;
    }
    payload = b64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), &payload_len);
    if (!payload) {
        genauth_error_set(err, GENAUTH_E_AUTH,
                          "the management token's payload is not base64url");
        goto fail;
    }
    /* The one parser: it loops rather than recursing (a payload nested 1000
     * deep parses on any thread's stack) and flags a claim holding U+0000,
     * which cJSON's would cut there. */
    if (genauth_json_doc_parse(payload, payload_len, &claims, &parse_err)
        != GENAUTH_OK) {
        if (parse_err.status == GENAUTH_E_NOMEM)
            genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
        else
            genauth_error_set(err, GENAUTH_E_AUTH,
                              "the management token's payload is not JSON");
        goto fail;
    }
    const cJSON *id = genauth_json_member(genauth_json_doc_root(claims),
                                          "scoped_userpool_id");
    if (!cJSON_IsString(id) || !id->valuestring[0]) {
        genauth_error_set(err, GENAUTH_E_AUTH,
                          "the management token has no scoped_userpool_id "
                          "claim");
        goto fail;
    }
    if (genauth_jwt_has_control(id)) {
        /* It becomes a header value. */
        genauth_error_set(err, GENAUTH_E_AUTH,
                          "the management token's scoped_userpool_id "
                          "holds control characters");
        goto fail;
    }
    *out = strdup(id->valuestring);
    if (!*out) {
        genauth_error_set(err, GENAUTH_E_NOMEM, "out of memory");
        goto fail;
    }
    genauth_json_doc_free(claims);
    genauth_error_clear(&parse_err);
    free(payload);
    return GENAUTH_OK;
fail:
    genauth_json_doc_free(claims);
    genauth_error_clear(&parse_err);
    free(payload);
    return err->status;
}
