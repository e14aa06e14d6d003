/* libFuzzer target: a response body, as the server sends it, through what
 * the client does with it: genauth_envelope_parse (genauth_json_doc_parse
 * and the envelope's fields), then a walk of the document with the cursor
 * for its exact numbers and strings, and a write/parse round trip of that
 * exact tree (which must be a fixed point). The JavaScript form of the tree
 * (AK/SK signing) must be valid JSON whenever it can be made.
 *
 * Build and run: make fuzz-short, or make fuzz (FUZZ_SECONDS=600). */
#include <stdint.h>

#include "internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The last member of `object` named `key`, or NULL. */
static const cJSON *
last_member(const cJSON *object, const char *key)
{
    const cJSON *found = NULL;
    for (const cJSON *m = object->child; m; m = m->next)
        if (strcmp(m->string, key) == 0)
            found = m;
    return found;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parser reads exactly `size` bytes: libFuzzer's buffer has no NUL
     * after them, so ASan sees any read past the body. */
    genauth_buf body = {(char *)data, size, size};
    genauth_envelope env;
    genauth_error err;
    genauth_buf text, js;
    int quiet = size > 0 && (data[0] & 1);

    genauth_envelope_init(&env);
    genauth_error_init(&err);
    genauth_buf_init(&text);
    genauth_buf_init(&js);

    genauth_status st = genauth_envelope_parse(&body, 200, quiet, &env, &err);
    if (st != GENAUTH_OK) {
        FUZZ_CHECK(st == GENAUTH_E_DECODE);
        FUZZ_CHECK(err.status == st && env.doc == NULL);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof(err.message)) != NULL);
        FUZZ_CHECK(err.excerpt_len <= sizeof(err.excerpt));
        /* The token endpoint's body is never quoted (it may hold a token). */
        FUZZ_CHECK(!quiet || err.excerpt_len == 0);
        FUZZ_CHECK(quiet || err.excerpt_len == (size < sizeof(err.excerpt)
                                                    ? size
                                                    : sizeof(err.excerpt)));
        goto done;
    }
    const cJSON *root = genauth_json_doc_root(env.doc);
    FUZZ_CHECK(cJSON_IsObject(root));
    FUZZ_CHECK(env.http_status == 200);
    /* A repeated key counts as its last value, as json.loads has it. */
    const cJSON *message = last_member(root, "message");
    FUZZ_CHECK(!env.message || env.message == message->valuestring);
    FUZZ_CHECK(env.data == last_member(root, "data"));
    FUZZ_CHECK(!env.response || cJSON_IsObject(env.data));

    cJSON *tree = fuzz_rebuild_doc(env.doc);
    FUZZ_CHECK(genauth_json_write(tree, &text) == 0);
    fuzz_check_fixed_point(&text);

    st = genauth_json_write_form(tree, GENAUTH_JSON_JS, &js, &err);
    FUZZ_CHECK(st == GENAUTH_OK || st == GENAUTH_E_INVALID);
    if (st == GENAUTH_OK) {
        genauth_json_doc *doc = NULL;
        genauth_error_clear(&err);
        FUZZ_CHECK(genauth_json_doc_parse(js.data, js.len, &doc, &err)
                   == GENAUTH_OK);
        genauth_json_doc_free(doc);
    }
    cJSON_Delete(tree);
done:
    genauth_buf_clear(&text);
    genauth_buf_clear(&js);
    genauth_envelope_clear(&env);
    genauth_error_clear(&err);
    return 0;
}
