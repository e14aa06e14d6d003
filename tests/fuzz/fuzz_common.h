/* What the libFuzzer targets share (helpers inline: a target may use
 * some of them only): rebuilding a parsed document as a tree
 * in json.h's exact form (through the cursor), and a round trip check.
 * A failed check aborts, which libFuzzer reports as a crash with its input. */
#ifndef GENAUTH_FUZZ_COMMON_H
#define GENAUTH_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

#define FUZZ_CHECK(cond)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                       \
            abort();                                                        \
        }                                                                   \
    } while (0)

/* Whether decoded string bytes hold a surrogate (encoded as ED A0..BF xx,
 * as the parser keeps a lone surrogate escape). */
static inline int
fuzz_has_surrogate(const char *s, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if ((unsigned char)s[i] == 0xED && (unsigned char)s[i + 1] >= 0xA0)
            return 1;
    return 0;
}

/* A JSON number literal under RFC 8259's grammar, exactly `len` bytes. */
static inline int
fuzz_is_number_literal(const char *s, size_t len)
{
    size_t i = 0;
    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0')
        i++;
    else if (i < len && s[i] >= '1' && s[i] <= '9')
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    else
        return 0;
    if (i < len && s[i] == '.') {
        if (++i == len || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i == len || s[i] < '0' || s[i] > '9')
            return 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    return i == len;
}

/* The exact tree (raw number literals, strings and keys with their NULs)
 * for `node` of a parsed doc, walking in document order as the cursor
 * requires. Checks the cursor's answers against cJSON's view on the way.
 * The caller frees the result with cJSON_Delete. */
static inline cJSON *
fuzz_rebuild(const cJSON *node, genauth_json_cursor *cur)
{
    const char *s = NULL;
    size_t len = 0;
    cJSON *out = NULL;

    switch (node->type & 0xFF) {
    case cJSON_NULL:
        return cJSON_CreateNull();
    case cJSON_True:
        return cJSON_CreateTrue();
    case cJSON_False:
        return cJSON_CreateFalse();
    case cJSON_Number:
        genauth_json_cursor_number(cur, &s, &len);
        FUZZ_CHECK(s != NULL);
        FUZZ_CHECK(strlen(s) == len);
        FUZZ_CHECK(fuzz_is_number_literal(s, len));
        return genauth_json_number_new(s, len);
    case cJSON_String:
        genauth_json_cursor_string(cur, node->valuestring, &s, &len);
        FUZZ_CHECK(s != NULL && s[len] == '\0');
        /* cJSON's string is the exact one cut at its first NUL, unless it
         * holds a lone surrogate (cJSON was given U+FFFD in its place). */
        if (!fuzz_has_surrogate(s, len)) {
            FUZZ_CHECK(strlen(node->valuestring) <= len);
            FUZZ_CHECK(memcmp(node->valuestring, s,
                              strlen(node->valuestring)) == 0);
        }
        return genauth_json_string_new(s, len);
    case cJSON_Array:
        out = cJSON_CreateArray();
        FUZZ_CHECK(out != NULL);
        for (const cJSON *c = node->child; c; c = c->next) {
            cJSON *item = fuzz_rebuild(c, cur);
            FUZZ_CHECK(item != NULL);
            cJSON_AddItemToArray(out, item);
        }
        return out;
    case cJSON_Object:
        out = cJSON_CreateObject();
        FUZZ_CHECK(out != NULL);
        for (const cJSON *c = node->child; c; c = c->next) {
            genauth_json_cursor_string(cur, c->string, &s, &len);
            FUZZ_CHECK(s != NULL && s[len] == '\0');
            FUZZ_CHECK(strlen(c->string) <= len);
            cJSON *item = fuzz_rebuild(c, cur);
            FUZZ_CHECK(item != NULL);
            FUZZ_CHECK(genauth_json_object_add(out, s, len, item) == 0);
        }
        return out;
    default:
        FUZZ_CHECK(!"a parsed doc holds only the six JSON types");
        return NULL;
    }
}

/* The exact tree for a whole doc; checks the walk used every literal. */
static inline cJSON *
fuzz_rebuild_doc(const genauth_json_doc *doc)
{
    genauth_json_cursor cur;
    const char *lit = NULL;
    size_t len = 1;

    genauth_json_cursor_init(&cur, doc);
    cJSON *tree = fuzz_rebuild(genauth_json_doc_root(doc), &cur);
    FUZZ_CHECK(tree != NULL);
    genauth_json_cursor_number(&cur, &lit, &len);
    FUZZ_CHECK(lit == NULL && len == 0); /* as many literals as numbers */
    return tree;
}

/* `text` (genauth_json_write output) parses, and writing what was parsed
 * gives `text` back byte for byte. */
static inline void
fuzz_check_fixed_point(const genauth_buf *text)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;
    genauth_buf again;

    genauth_error_init(&err);
    genauth_buf_init(&again);
    FUZZ_CHECK(genauth_json_doc_parse(text->data, text->len, &doc, &err)
               == GENAUTH_OK);
    cJSON *tree = fuzz_rebuild_doc(doc);
    FUZZ_CHECK(genauth_json_write(tree, &again) == 0);
    FUZZ_CHECK(again.len == text->len);
    FUZZ_CHECK(memcmp(again.data, text->data, text->len) == 0);
    cJSON_Delete(tree);
    genauth_buf_clear(&again);
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
}

#endif
