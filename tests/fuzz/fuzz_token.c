/* libFuzzer target: the management token as the token endpoint hands it
 * out, through genauth_jwt_userpool_id (the base64url payload, its JSON,
 * the scoped_userpool_id claim that becomes a header value). The input's
 * first byte picks the form:
 *  - even: the rest is the payload's JSON text, sent as a well-formed JWT
 *    ("h." base64url(payload) ".s", in one of the alphabets and paddings
 *    the reader takes); the answer must be what the one JSON parser reads
 *    in the payload: its claim when that is a non-empty string without
 *    control characters, a refusal otherwise (never "not base64url");
 *  - odd: the rest, up to a NUL, is the token as it came.
 * Either way an accepted claim is non-empty and holds no control character
 * (it goes in a header line), and a refusal is GENAUTH_E_AUTH with
 * nothing handed out.
 *
 * Build and run: make fuzz-short, or make fuzz (FUZZ_SECONDS=600). */
#include <stdint.h>

#include "internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Base64url of `n` bytes into `out` (room for 4 * (n + 2) / 3 + 3): with
 * '+' and '/' when `std`, padded with '=' when `pad`. */
static size_t
b64_encode(const uint8_t *p, size_t n, int std, int pad, char *out)
{
    const char *abc = std ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                            "0123456789+/"
                          : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                            "0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        out[o++] = abc[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        if (pad)
            out[o++] = '=', out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = abc[v >> 18];
        out[o++] = abc[(v >> 12) & 63];
        out[o++] = abc[(v >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    return o;
}

/* What the reader must make of the payload `p`: 1 and the claim (borrowed
 * from *doc, which the caller frees) when it is to be accepted, else 0. */
static int
expected_claim(const uint8_t *p, size_t n, genauth_json_doc **doc,
               const char **claim)
{
    genauth_error err;
    const cJSON *id;
    int ok = 0;

    *doc = NULL;
    *claim = NULL;
    genauth_error_init(&err);
    if (genauth_json_doc_parse((const char *)p, n, doc, &err) == GENAUTH_OK) {
        id = genauth_json_member(genauth_json_doc_root(*doc),
                                 "scoped_userpool_id");
        ok = cJSON_IsString(id) && id->valuestring[0] &&
             !genauth_jwt_has_control(id);
        if (ok)
            *claim = id->valuestring;
    }
    genauth_error_clear(&err);
    return ok;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    genauth_json_doc *doc = NULL;
    const char *claim = NULL;
    char *token = NULL, *id = NULL;
    genauth_error err;
    int wrapped, want = -1;

    if (size < 1)
        return 0;
    wrapped = !(data[0] & 1);
    data++;
    size--;
    if (wrapped) {
        token = malloc(4 + 4 * (size + 2) / 3 + 3 + 1);
        FUZZ_CHECK(token != NULL);
        memcpy(token, "h.", 2);
        size_t n = 2 + b64_encode(data, size, data[-1] & 2, data[-1] & 4,
                                  token + 2);
        memcpy(token + n, ".s", 3);
        want = expected_claim(data, size, &doc, &claim);
    } else {
        size_t n = strnlen((const char *)data, size);
        token = malloc(n + 1);
        FUZZ_CHECK(token != NULL);
        memcpy(token, data, n);
        token[n] = '\0';
    }

    genauth_error_init(&err);
    genauth_status st = genauth_jwt_userpool_id(token, &id, &err);
    if (st == GENAUTH_OK) {
        FUZZ_CHECK(id != NULL && id[0] != '\0');
        for (const char *p = id; *p; p++)
            FUZZ_CHECK((unsigned char)*p >= 0x20 && *p != 0x7f);
        FUZZ_CHECK(want != 0);
        FUZZ_CHECK(want != 1 || strcmp(id, claim) == 0);
    } else {
        FUZZ_CHECK(st == GENAUTH_E_AUTH && err.status == st);
        FUZZ_CHECK(id == NULL);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        FUZZ_CHECK(want != 1);
        /* A well-formed JWT always gets as far as its JSON. */
        FUZZ_CHECK(!wrapped || !strstr(err.message, "not a JWT"));
        FUZZ_CHECK(!wrapped || !strstr(err.message, "not base64url"));
    }
    free(id);
    genauth_error_clear(&err);
    genauth_json_doc_free(doc);
    free(token);
    return 0;
}
