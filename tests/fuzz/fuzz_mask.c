/* libFuzzer target: looking for a secret in text about to be shown, as it
 * is or JSON-escaped: genauth_mask over an excerpt (a byte string, which
 * may end inside an escape) and genauth_json_doc_contains over a parsed
 * answer. The input's first byte is the secret's length (1 to 32), the
 * secret follows, then the text; the minimum piece is the first byte's top
 * bits. Memory errors and endless loops are ASan's and libFuzzer's to
 * report; the checks are what a reader of the result would see: masked
 * text holds the secret nowhere, as it is or with one level of escapes
 * decoded; and a document whose string holds the secret so is found to.
 *
 * Build and run: make fuzz-short, or make fuzz (FUZZ_SECONDS=600). */
#include <stdint.h>

#include "internal.h"
#include "json.h"
#include "jsontext.h"
#include "wipe.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* s[0, n) with each valid escape decoded once, into out (n bytes). */
static size_t
decode_once(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char *w = out;
    while (p < end) {
        uint32_t cp;
        size_t used = *p == '\\'
                          ? genauth_json_unescape(p, (size_t)(end - p), &cp)
                          : 0;
        if (used) {
            w += genauth_utf8_encode(cp, w);
            p += used;
        } else {
            *w++ = (char)*p++;
        }
    }
    return (size_t)(w - out);
}

static int
utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        uint32_t cp;
        size_t used = genauth_utf8_decode(p, end, &cp);
        if (!used)
            return 0;
        p += used;
    }
    return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t secret_len = (size_t)(data[0] & 31) + 1;
    size_t min_piece = (size_t)(data[0] >> 5) + 4;
    if (size < 1 + secret_len)
        return 0;
    const char *secret = (const char *)data + 1;
    size_t len = size - 1 - secret_len;
    /* Exactly len bytes: ASan sees any read past them. */
    char *buf = malloc(len ? len : 1), *decoded = malloc(len ? len : 1);
    FUZZ_CHECK(buf && decoded);
    memcpy(buf, data + 1 + secret_len, len);

    genauth_mask(buf, len, secret, secret_len, min_piece);
    /* A secret holding '*' is made of the mask itself; one holding a
     * backslash may be rebuilt by decoding around the stars: only the
     * others are checked. */
    int checked = !memchr(secret, '*', secret_len);
    FUZZ_CHECK(!checked || !memmem(buf, len, secret, secret_len));
    /* One level of escapes decoded: a secret the text wrote escaped. An
     * escape writes whole characters, so a secret that is not UTF-8 (a
     * character's last byte) can be found in the decoded text where
     * nothing wrote it. */
    if (checked && !memchr(secret, '\\', secret_len) &&
        utf8_valid(secret, secret_len)) {
        size_t n = decode_once(buf, len, decoded);
        FUZZ_CHECK(!memmem(decoded, n, secret, secret_len));
    }

    /* The same bytes as an answer's JSON text: searched, never crashing. */
    genauth_json_doc *doc = NULL;
    genauth_error err;
    genauth_error_init(&err);
    if (genauth_json_doc_parse((const char *)data + 1 + secret_len, len, &doc,
                               &err) == GENAUTH_OK) {
        int rc = genauth_json_doc_contains(doc, secret, secret_len);
        FUZZ_CHECK(rc >= -1 && rc <= 1);
        genauth_json_doc_free(doc);
    }
    /* The text as a string of a document (its JSON escapes then decoded
     * once by the parser): a secret that text holds as it is, or with one
     * more level of escapes decoded, is found. */
    char *text = malloc(len + 1);
    FUZZ_CHECK(text != NULL);
    memcpy(text, data + 1 + secret_len, len);
    text[len] = '\0';
    cJSON *array = cJSON_CreateArray(), *str = NULL;
    char *json = NULL;
    if (!memchr(text, '\0', len) && array &&
        (str = cJSON_CreateString(text)) != NULL &&
        cJSON_AddItemToArray(array, str) &&
        (json = cJSON_PrintUnformatted(array)) != NULL &&
        genauth_json_doc_parse(json, strlen(json), &doc, &err) == GENAUTH_OK) {
        size_t n = decode_once(text, len, decoded);
        if (memmem(text, len, secret, secret_len) ||
            memmem(decoded, n, secret, secret_len))
            FUZZ_CHECK(genauth_json_doc_contains(doc, secret, secret_len) != 0);
        genauth_json_doc_free(doc);
    }
    free(json);
    cJSON_Delete(array);
    free(text);
    genauth_error_clear(&err);
    free(decoded);
    free(buf);
    return 0;
}
