/* Unit tests of the exact-JSON layer (json.c) and the error struct
 * (error.c). Run under valgrind or ASan: several checks are about memory. */
#include "json.h"
#include "stack.h"

#include "check.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

/* Writes `node` and compares with `want`; frees nothing. */
static void
expect_written(const cJSON *node, const char *want, int line)
{
    genauth_buf b;

    genauth_buf_init(&b);
    if (genauth_json_write(node, &b) != 0) {
        check_failed++;
        fprintf(stderr, "line %d: genauth_json_write failed\n", line);
    }
    else if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0) {
        check_failed++;
        fprintf(stderr, "line %d: wrote %s\n%*swant  %s\n", line, b.data, 8,
                "", want);
    }
    else {
        check_passed++;
    }
    genauth_buf_clear(&b);
}
#define EXPECT_WRITTEN(node, want) expect_written((node), (want), __LINE__)

/* Re-prints a parsed doc through the cursor, numbers as their literals and
 * strings as their exact bytes: what the binding does, in C. */
static int
rewrite_node(const cJSON *node, genauth_json_cursor *c, genauth_buf *out)
{
    const cJSON *child;
    const char *s;
    size_t len;

    switch (node->type & 0xFF) {
    case cJSON_NULL:
        return genauth_buf_append_str(out, "null");
    case cJSON_True:
        return genauth_buf_append_str(out, "true");
    case cJSON_False:
        return genauth_buf_append_str(out, "false");
    case cJSON_Number:
        genauth_json_cursor_number(c, &s, &len);
        if (s == NULL)
            return -1;
        return genauth_buf_append(out, s, len);
    case cJSON_String:
        genauth_json_cursor_string(c, node->valuestring, &s, &len);
        return genauth_json_write_string(s, len, out);
    case cJSON_Array:
        if (genauth_buf_append_char(out, '[') < 0)
            return -1;
        for (child = node->child; child; child = child->next) {
            if (child != node->child && genauth_buf_append_char(out, ',') < 0)
                return -1;
            if (rewrite_node(child, c, out) < 0)
                return -1;
        }
        return genauth_buf_append_char(out, ']');
    case cJSON_Object:
        if (genauth_buf_append_char(out, '{') < 0)
            return -1;
        for (child = node->child; child; child = child->next) {
            if (child != node->child && genauth_buf_append_char(out, ',') < 0)
                return -1;
            genauth_json_cursor_string(c, child->string, &s, &len);
            if (genauth_json_write_string(s, len, out) < 0
                || genauth_buf_append_char(out, ':') < 0
                || rewrite_node(child, c, out) < 0)
                return -1;
        }
        return genauth_buf_append_char(out, '}');
    default:
        return -1;
    }
}

/* Parses `len` bytes from an exactly-sized heap copy (so ASan and valgrind
 * see any read past the end) and returns the status. */
static genauth_status
parse_exact(const char *text, size_t len, genauth_json_doc **doc,
            genauth_error *err)
{
    char *copy = malloc(len ? len : 1);
    genauth_status st;

    if (copy == NULL)
        return GENAUTH_E_NOMEM;
    memcpy(copy, text, len);
    st = genauth_json_doc_parse(copy, len, doc, err);
    /* The doc must not point into the text it was given. */
    memset(copy, 'X', len);
    free(copy);
    return st;
}

/* Parses `text` (len bytes) and checks the cursor re-print equals `want`. */
static void
expect_roundtrip(const char *text, size_t len, const char *want,
                 size_t want_len, int line)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;
    genauth_json_cursor c;
    genauth_buf b;

    genauth_error_init(&err);
    genauth_buf_init(&b);
    if (parse_exact(text, len, &doc, &err) != GENAUTH_OK) {
        check_failed++;
        fprintf(stderr, "line %d: parse failed: %s\n", line, err.message);
        goto done;
    }
    genauth_json_cursor_init(&c, doc);
    if (rewrite_node(genauth_json_doc_root(doc), &c, &b) < 0) {
        check_failed++;
        fprintf(stderr, "line %d: rewrite failed\n", line);
        goto done;
    }
    if (b.len == want_len && memcmp(b.data, want, want_len) == 0) {
        check_passed++;
    }
    else {
        check_failed++;
        fprintf(stderr, "line %d: got  %s\n%*swant %s\n", line, b.data, 8,
                "", want);
    }
done:
    genauth_buf_clear(&b);
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
}
#define EXPECT_ROUNDTRIP(text, want)                                         \
    expect_roundtrip((text), sizeof(text) - 1, (want), sizeof(want) - 1,     \
                     __LINE__)
/* Text that comes back byte for byte. */
#define EXPECT_SAME(text) EXPECT_ROUNDTRIP(text, text)

/* Parsing must fail with DECODE and a message that starts with `prefix`. */
static void
expect_decode_error(const char *text, size_t len, const char *prefix,
                    int line)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;
    genauth_status st;

    genauth_error_init(&err);
    st = parse_exact(text, len, &doc, &err);
    if (st == GENAUTH_E_DECODE && err.status == GENAUTH_E_DECODE
        && doc == NULL && strncmp(err.message, prefix, strlen(prefix)) == 0) {
        check_passed++;
    }
    else {
        check_failed++;
        fprintf(stderr, "line %d: status %s, message \"%s\", want \"%s...\"\n",
                line, genauth_status_name(st), err.message, prefix);
    }
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
}
#define EXPECT_INVALID(text)                                                 \
    expect_decode_error((text), sizeof(text) - 1, "invalid JSON", __LINE__)

/* `n` nested arrays around 0: "[[[0]]]". The caller frees the result. */
static char *
nested(size_t n, size_t *len)
{
    char *s = malloc(2 * n + 2);
    size_t i;

    if (s == NULL)
        return NULL;
    for (i = 0; i < n; i++)
        s[i] = '[';
    s[n] = '0';
    for (i = 0; i < n; i++)
        s[n + 1 + i] = ']';
    s[2 * n + 1] = '\0';
    *len = 2 * n + 1;
    return s;
}

/* ---- printing ----------------------------------------------------------- */

static void
test_write_strings(void)
{
    cJSON *n;
    genauth_buf b;
    const char all_ctl[] = "\x01\x02\x03\x04\x05\x06\x07\x0b\x0e\x0f\x10\x1a"
                           "\x1f";

    n = cJSON_CreateString("say \"hi\" \\ / \b\f\n\r\t end");
    EXPECT_WRITTEN(n, "\"say \\\"hi\\\" \\\\ / \\b\\f\\n\\r\\t end\"");
    cJSON_Delete(n);

    n = cJSON_CreateString(all_ctl);
    EXPECT_WRITTEN(n, "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007"
                      "\\u000b\\u000e\\u000f\\u0010\\u001a\\u001f\"");
    cJSON_Delete(n);

    /* Non-ASCII, DEL and '/' as they are (JSON.stringify does the same). */
    n = cJSON_CreateString("caf\xc3\xa9 \xf0\x9d\x84\x9e \x7f </script>");
    EXPECT_WRITTEN(n, "\"caf\xc3\xa9 \xf0\x9d\x84\x9e \x7f </script>\"");
    cJSON_Delete(n);

    n = cJSON_CreateString("");
    EXPECT_WRITTEN(n, "\"\"");
    cJSON_Delete(n);

    /* genauth_json_write_string with NUL and a long run with escapes late,
     * which forces the buffer to grow mid-string. */
    genauth_buf_init(&b);
    CHECK(genauth_json_write_string("a\0b", 3, &b) == 0);
    CHECK_STR(b.data, "\"a\\u0000b\"");
    genauth_buf_reset(&b);
    {
        char big[1000];
        memset(big, 'x', sizeof(big));
        big[990] = '\n';
        big[999] = '\x01';
        CHECK(genauth_json_write_string(big, sizeof(big), &b) == 0);
        CHECK(b.len == sizeof(big) + 2 + 1 + 5);
        CHECK(memcmp(b.data + 991, "\\n", 2) == 0);
        CHECK(memcmp(b.data + b.len - 7, "\\u0001\"", 7) == 0);
        CHECK(b.data[b.len] == '\0');
    }
    genauth_buf_clear(&b);
}

static void
test_write_nodes(void)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_CreateArray();
    cJSON *inner = cJSON_CreateObject();
    cJSON *n;

    CHECK(genauth_json_object_add(root, "n", 1,
                                  genauth_json_number_new("12345678901234567890123", 23)) == 0);
    CHECK(genauth_json_object_add(root, "f", 1,
                                  genauth_json_number_new("-1.5e-7xx", 7)) == 0);
    CHECK(genauth_json_object_add(root, "s", 1,
                                  genauth_json_string_new("a\0b", 3)) == 0);
    CHECK(genauth_json_object_add(root, "k\0\"y", 4,
                                  cJSON_CreateTrue()) == 0);
    CHECK(cJSON_AddItemToArray(arr, cJSON_CreateNull()));
    CHECK(cJSON_AddItemToArray(arr, cJSON_CreateFalse()));
    CHECK(cJSON_AddItemToArray(arr, cJSON_CreateArray()));
    CHECK(cJSON_AddItemToArray(arr, cJSON_CreateObject()));
    CHECK(cJSON_AddItemToArray(arr, cJSON_CreateRaw("{\"raw\":[1, 2]}")));
    CHECK(genauth_json_object_add(root, "arr", 3, arr) == 0);
    CHECK(genauth_json_object_add(inner, "", 0,
                                  genauth_json_string_new("", 0)) == 0);
    CHECK(genauth_json_object_add(root, "\xe9\x94\xae", 3, inner) == 0);

    EXPECT_WRITTEN(root, "{\"n\":12345678901234567890123,\"f\":-1.5e-7,"
                         "\"s\":\"a\\u0000b\",\"k\\u0000\\\"y\":true,"
                         "\"arr\":[null,false,[],{},{\"raw\":[1, 2]}],"
                         "\"\xe9\x94\xae\":{\"\":\"\"}}");
    /* The escaped key is flagged; a plain one is not. */
    CHECK((root->child->next->next->next->type & GENAUTH_JSON_KEY_ESCAPED)
          != 0);
    CHECK((root->child->type & GENAUTH_JSON_KEY_ESCAPED) == 0);
    /* A string without NUL is a real cJSON string. */
    CHECK(cJSON_IsString(inner->child));
    CHECK(cJSON_IsRaw(root->child->next->next));
    cJSON_Delete(root);

    n = cJSON_CreateArray();
    EXPECT_WRITTEN(n, "[]");
    cJSON_Delete(n);

    /* Re-adding an item that already has a key replaces the key. */
    root = cJSON_CreateObject();
    n = cJSON_CreateNull();
    CHECK(genauth_json_object_add(root, "x\0", 2, n) == 0);
    cJSON_DetachItemViaPointer(root, n);
    CHECK(genauth_json_object_add(root, "plain", 5, n) == 0);
    CHECK((n->type & GENAUTH_JSON_KEY_ESCAPED) == 0);
    EXPECT_WRITTEN(root, "{\"plain\":null}");
    /* Bad arguments leave the item to the caller. */
    CHECK(genauth_json_object_add(NULL, "a", 1, n) == -1);
    CHECK(genauth_json_object_add(root, "a", 1, NULL) == -1);
    CHECK(genauth_json_object_add(root, "a", 1, root) == -1);
    cJSON_Delete(root);
}

static void
test_write_numbers(void)
{
    static const double cases[] = {
        0.0, -0.0, 1.0, -42.0, 9007199254740991.0, 9007199254740993.0,
        0.1, 1.0 / 3.0, 2.0 / 3.0, 1e300, 1e22, -1.5e-7, 5e-324,
        1.7976931348623157e308, 123456.789,
    };
    size_t i;
    cJSON *n;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        genauth_buf b;

        n = cJSON_CreateNumber(cases[i]);
        genauth_buf_init(&b);
        CHECK(genauth_json_write(n, &b) == 0);
        /* Whatever the digits, they must read back as the same double. */
        CHECK(strtod(b.data, NULL) == cases[i]);
        CHECK(!signbit(strtod(b.data, NULL)) == !signbit(cases[i]));
        genauth_buf_clear(&b);
        cJSON_Delete(n);
    }
    /* The exact text for the ones where printf's output is fixed. */
    n = cJSON_CreateNumber(-0.0);
    EXPECT_WRITTEN(n, "-0");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(0.1);
    EXPECT_WRITTEN(n, "0.1");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(1.0 / 3.0);
    EXPECT_WRITTEN(n, "0.3333333333333333"); /* 16 digits suffice */
    cJSON_Delete(n);
    n = cJSON_CreateNumber(0.1 + 0.2);
    EXPECT_WRITTEN(n, "0.30000000000000004"); /* 17 needed */
    cJSON_Delete(n);
    n = cJSON_CreateNumber(9007199254740991.0);
    EXPECT_WRITTEN(n, "9007199254740991");
    cJSON_Delete(n);
    n = cJSON_CreateNumber((double)NAN);
    EXPECT_WRITTEN(n, "null");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(-(double)INFINITY);
    EXPECT_WRITTEN(n, "null");
    cJSON_Delete(n);
}

static void
test_write_failures(void)
{
    genauth_buf b;
    cJSON *root = cJSON_CreateArray();
    cJSON *cur = root;
    cJSON *bad;
    int i;

    /* 1000 nested arrays print (cJSON reads them back)... */
    for (i = 1; i < CJSON_NESTING_LIMIT; i++) {
        cJSON *next = cJSON_CreateArray();
        cJSON_AddItemToArray(cur, next);
        cur = next;
    }
    genauth_buf_init(&b);
    CHECK(genauth_json_write(root, &b) == 0);
    CHECK(b.len == 2 * CJSON_NESTING_LIMIT);
    /* ...1001 would not read back, so they are refused and the buffer is
     * left as it was. */
    cJSON_AddItemToArray(cur, cJSON_CreateArray());
    genauth_buf_reset(&b);
    CHECK(genauth_buf_append_str(&b, "keep") == 0);
    CHECK(genauth_json_write(root, &b) == -1);
    CHECK(b.len == 4);
    CHECK_STR(b.data, "keep");
    cJSON_Delete(root);

    /* An invalid node. */
    bad = cJSON_CreateNull();
    bad->type = cJSON_Invalid;
    genauth_buf_reset(&b);
    CHECK(genauth_json_write(bad, &b) == -1);
    CHECK(b.len == 0);
    cJSON_Delete(bad);
    CHECK(genauth_json_write(NULL, &b) == -1);
    genauth_buf_clear(&b);
}

/* ---- parsing ------------------------------------------------------------ */

static void
test_parse_numbers(void)
{
    EXPECT_SAME("12345678901234567890123");
    EXPECT_SAME("-0");
    EXPECT_SAME("1.0");
    EXPECT_SAME("1e400");
    EXPECT_SAME("-1.5E-7");
    EXPECT_SAME("[0,-0,0.0,1.50,100,1E+2,1e-2,-12.5e+10]");
    EXPECT_SAME("{\"statusCode\":200,\"apiCode\":0,\"big\":"
                "123456789012345678901234567890}");
    EXPECT_ROUNDTRIP(" \t\r\n[ 1 , 2.0 ]\n ", "[1,2.0]");

    /* cJSON's double still serves C callers. */
    {
        genauth_json_doc *doc = NULL;
        genauth_error err;

        genauth_error_init(&err);
        CHECK(parse_exact("{\"statusCode\":200}", 18, &doc, &err)
              == GENAUTH_OK);
        CHECK(cJSON_GetObjectItemCaseSensitive(genauth_json_doc_root(doc),
                                               "statusCode")
                  ->valuedouble
              == 200.0);
        genauth_json_doc_free(doc);
    }
}

static void
test_parse_strings(void)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;
    genauth_json_cursor c;
    const cJSON *root, *item;
    const char *s;
    size_t len;
    const char text[] =
        "{\"a\\u0000b\":\"x\\u0000y\\u0000\",\"plain\":\"\\u00e9\\ud834\\udd1e\","
        "\"astral\\u0000\":\"\\ud834\\udd1e\\u0000\\n\\\"\\\\\\/\\t\","
        "\"list\":[\"\\u0000\",\"ok\",\"\\u0000\\u0000\"]}";

    genauth_error_init(&err);
    CHECK(parse_exact(text, sizeof(text) - 1, &doc, &err) == GENAUTH_OK);
    root = genauth_json_doc_root(doc);
    CHECK(root != NULL && cJSON_IsObject(root));
    genauth_json_cursor_init(&c, doc);

    item = root->child;
    genauth_json_cursor_string(&c, item->string, &s, &len);
    CHECK_MEM(s, len, "a\0b", 3);
    genauth_json_cursor_string(&c, item->valuestring, &s, &len);
    CHECK_MEM(s, len, "x\0y\0", 4);

    item = item->next;
    genauth_json_cursor_string(&c, item->string, &s, &len);
    CHECK_MEM(s, len, "plain", 5);
    CHECK(s == item->string); /* not cut: cJSON's own string */
    genauth_json_cursor_string(&c, item->valuestring, &s, &len);
    CHECK_MEM(s, len, "\xc3\xa9\xf0\x9d\x84\x9e", 6);

    item = item->next;
    genauth_json_cursor_string(&c, item->string, &s, &len);
    CHECK_MEM(s, len, "astral\0", 7);
    genauth_json_cursor_string(&c, item->valuestring, &s, &len);
    CHECK_MEM(s, len, "\xf0\x9d\x84\x9e\0\n\"\\/\t", 10);

    item = item->next;
    genauth_json_cursor_string(&c, item->string, &s, &len);
    CHECK_MEM(s, len, "list", 4);
    genauth_json_cursor_string(&c, item->child->valuestring, &s, &len);
    CHECK_MEM(s, len, "\0", 1);
    genauth_json_cursor_string(&c, item->child->next->valuestring, &s, &len);
    CHECK_MEM(s, len, "ok", 2);
    genauth_json_cursor_string(&c, item->child->next->next->valuestring, &s,
                               &len);
    CHECK_MEM(s, len, "\0\0", 2);
    CHECK(s[len] == '\0');

    /* No number in this doc: the cursor says so instead of reading past. */
    genauth_json_cursor_number(&c, &s, &len);
    CHECK(s == NULL && len == 0);
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);

    /* Numbers and U+0000 strings interleaved in one table. */
    EXPECT_ROUNDTRIP("[1,\"\\u0000\",{\"\\u0000k\":2.5,\"n\":[-0,\"a\\u0000\"]},3]",
                     "[1,\"\\u0000\",{\"\\u0000k\":2.5,\"n\":[-0,\"a\\u0000\"]},3]");
    /* Escapes that need not be escaped come back plain. */
    EXPECT_ROUNDTRIP("[\"\\u0041\\/\\u00e9\"]", "[\"A/\xc3\xa9\"]");
    EXPECT_ROUNDTRIP("\xef\xbb\xbf{\"bom\":true}", "{\"bom\":true}");
    /* Duplicate keys stay, in order. */
    EXPECT_SAME("{\"k\":1,\"k\":\"\\u0000\",\"k\":2}");
    EXPECT_SAME("{\"a\":[],\"b\":{},\"c\":[[],[{}]],\"d\":null,\"e\":false}");
}

static void
test_parse_errors(void)
{
    genauth_error err;
    genauth_json_doc *doc = (genauth_json_doc *)(void *)&err; /* reset? */

    genauth_error_init(&err);
    CHECK(genauth_json_doc_parse("", 0, &doc, &err) == GENAUTH_E_DECODE);
    CHECK(doc == NULL);
    CHECK(err.status == GENAUTH_E_DECODE);
    genauth_error_clear(&err);
    CHECK(genauth_json_doc_parse(NULL, 0, &doc, &err) == GENAUTH_E_DECODE);
    CHECK(genauth_json_doc_parse(NULL, 3, &doc, &err) == GENAUTH_E_INVALID);
    genauth_json_doc_free(NULL); /* a no-op */

    EXPECT_INVALID(" ");
    EXPECT_INVALID("{");
    EXPECT_INVALID("[1,]");
    EXPECT_INVALID("{\"a\":1,}");
    EXPECT_INVALID("{'a':1}");
    EXPECT_INVALID("nul");
    EXPECT_INVALID("True");
    EXPECT_INVALID("NaN");
    EXPECT_INVALID("-Infinity");
    EXPECT_INVALID("\"abc");
    EXPECT_INVALID("\"\\x41\"");
    /* Trailing data. */
    EXPECT_INVALID("{}x");
    EXPECT_INVALID("{}{}");
    EXPECT_INVALID("[1] 2");
    EXPECT_INVALID("{} \x0b");
    EXPECT_INVALID("{}\0");
    /* cJSON would accept these; Python's json does not. */
    EXPECT_INVALID("\"tab\there\"");
    EXPECT_INVALID("[\"nl\nhere\"]");
    EXPECT_INVALID("{\"k\x01\":1}");
    EXPECT_INVALID("\"\x1f\"");
    EXPECT_INVALID("\"\\u00zz\"");
    EXPECT_INVALID("\"\\u12\"");
    EXPECT_INVALID("01");
    EXPECT_INVALID("[-01]");
    EXPECT_INVALID("1.");
    EXPECT_INVALID("[1.e5]");
    EXPECT_INVALID("-.5");
    EXPECT_INVALID("[\x0b" "1]");
    EXPECT_INVALID("\x01{}");
    EXPECT_INVALID("[1,\0 2]");
    /* Not UTF-8: json.loads(bytes) refuses these (it decodes with
     * "surrogatepass", so an encoded surrogate is no error). */
    EXPECT_INVALID("\"\xff\"");
    EXPECT_INVALID("\"\xc0\xaf\"");         /* overlong '/' */
    EXPECT_INVALID("\"\xf4\x90\x80\x80\""); /* above U+10FFFF */
    EXPECT_INVALID("\"\xe4\xb8\"");         /* cut short */
    /* Number literals over 63 characters: cJSON 1.7.15 reads them, later
     * releases refuse them and the doc parses a blanked copy; either way the
     * literals stay exact. */
#define LONG_NUMBER "[1234567890123456789012345678901234567890123456789012345" \
                    "678901234567890.5e-3,\"-123456789012345678901234567890" \
                    "12345678901234567890123456789012345\",{\"k\":-1234567" \
                    "8901234567890123456789012345678901234567890123456789012" \
                    "3456789}]"
    EXPECT_SAME(LONG_NUMBER);

    /* The message names the offset, never the body. */
    genauth_error_init(&err);
    CHECK(genauth_json_doc_parse("{\"token\":\"SECRET\"} junk", 23, &doc, &err)
          == GENAUTH_E_DECODE);
    CHECK_STR(err.message, "invalid JSON at byte 19");
    CHECK(strstr(err.message, "SECRET") == NULL);
    genauth_error_clear(&err);
}

/* The root string of `text` as the cursor gives it back. */
static void
check_root_string(const char *text, const char *want, size_t want_len)
{
    genauth_json_doc *doc = NULL;
    genauth_json_cursor cur;
    genauth_error err;
    const char *s = NULL;
    size_t len = 0;

    genauth_error_init(&err);
    CHECK(genauth_json_doc_parse(text, strlen(text), &doc, &err) == GENAUTH_OK);
    if (doc) {
        genauth_json_cursor_init(&cur, doc);
        genauth_json_cursor_string(&cur, genauth_json_doc_root(doc)->valuestring,
                                   &s, &len);
        CHECK(len == want_len && memcmp(s, want, len) == 0);
    }
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
}

/* Lone surrogate escapes: json.loads keeps them (JavaScript emits them for a
 * cut emoji); the doc keeps them as three bytes each ("surrogatepass"). */
static void
test_parse_lone_surrogates(void)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;

    check_root_string("\"\\ud83d\"", "\xed\xa0\xbd", 3);
    check_root_string("\"\\udc00\"", "\xed\xb0\x80", 3);
    check_root_string("\"a\\ud800x\"", "a\xed\xa0\x80x", 5);
    check_root_string("\"\\ud83d\\ud83d\\ude00\"",
                      "\xed\xa0\xbd\xf0\x9f\x98\x80", 7);
    check_root_string("\"\\ud83d\\u0000\"", "\xed\xa0\xbd\0", 4);
    check_root_string("\"\xed\xa0\xbd\"", "\xed\xa0\xbd", 3); /* raw */
    /* A pair is still one astral character. */
    check_root_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);

    /* In keys and beside other values, in document order. */
    genauth_error_init(&err);
    const char *text = "{\"\\udfff\":[\"\\ud800\",1]}";
    CHECK(genauth_json_doc_parse(text, strlen(text), &doc, &err) ==
          GENAUTH_OK);
    CHECK(doc && genauth_json_doc_contains(doc, "\xed\xbf\xbf", 3));
    CHECK(doc && genauth_json_doc_contains(doc, "\xed\xa0\x80", 3));
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
}

/* A string that quotes JSON text holds a secret as that text wrote it:
 * found in every writer's form, in keys too, a few levels of quoting deep;
 * an escape chain that decodes one step per pass is followed only so far. */
static int
doc_quotes(const char *text, const char *needle)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;
    int found = -2;

    genauth_error_init(&err);
    if (genauth_json_doc_parse(text, strlen(text), &doc, &err) == GENAUTH_OK)
        found = genauth_json_doc_contains(doc, needle, strlen(needle));
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
    return found;
}

static void
test_contains_quoted_json(void)
{
    /* The message quotes the body {"k":"a\"b\\c/d"} as it was written. */
    CHECK(doc_quotes("{\"m\":\"body {\\\"k\\\":\\\"a\\\\\\\"b\\\\\\\\c/d\\\"}\"}",
                     "a\"b\\c/d") == 1);
    /* ensure_ascii (\u00fc) and PHP's \/; in a key. */
    CHECK(doc_quotes("{\"x \\\\u00fc\\\\/y\":1}", "x \xc3\xbc/y") == 1);
    /* Quoted twice. */
    CHECK(doc_quotes("[\"{\\\"r\\\":\\\"{\\\\\\\"k\\\\\\\":\\\\\\\"q\\\\\\\\\\\\\\\"z"
                     "\\\\\\\"}\\\"}\"]",
                     "q\"z") == 1);
    /* A backslash that starts no escape stays; nothing is made up. */
    CHECK(doc_quotes("\"a\\\\qb\"", "a\\qb") == 1);
    CHECK(doc_quotes("\"a\\\\qb\"", "aqb") == 0);
    CHECK(doc_quotes("\"a\\\\\\\"b\"", "a\"c") == 0);
    /* "\u005c" decodes to a backslash: "\u005cu005cu005cu0041" takes a
     * pass per step. Four steps are followed, five not. */
    CHECK(doc_quotes("\"x\\\\u005cu005cu005cu0041\"", "xA") == 1);
    CHECK(doc_quotes("\"x\\\\u005cu005cu005cu005cu0041\"", "xA") == 0);
}

/* json.loads refuses integers of more than 4300 digits (ValueError); the
 * parser says so, where the offending literal starts. */
static void
test_parse_int_digits(void)
{
    char text[GENAUTH_JSON_MAX_INT_DIGITS + 16];
    genauth_json_doc *doc = NULL;
    genauth_error err;
    size_t n = GENAUTH_JSON_MAX_INT_DIGITS;

    text[0] = '[';
    memset(text + 1, '7', n);
    memcpy(text + 1 + n, "]", 2);
    genauth_error_init(&err);
    CHECK(genauth_json_doc_parse(text, n + 2, &doc, &err) == GENAUTH_OK);
    genauth_json_doc_free(doc);
    doc = NULL;
    text[0] = '-'; /* the sign is not a digit */
    text[n + 1] = '\0';
    CHECK(genauth_json_doc_parse(text, n + 1, &doc, &err) == GENAUTH_OK);
    genauth_json_doc_free(doc);
    doc = NULL;
    memset(text + 1, '7', n + 1);
    memcpy(text + 2 + n, "]", 2);
    text[0] = '[';
    CHECK(genauth_json_doc_parse(text, n + 3, &doc, &err) == GENAUTH_E_DECODE);
    CHECK_STR(err.message, "invalid JSON at byte 1: an integer of more than 4300 digits");
    genauth_error_clear(&err);
    /* A float of as many digits is a float. */
    text[2] = '.';
    CHECK(genauth_json_doc_parse(text, n + 3, &doc, &err) == GENAUTH_OK);
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
}

static void
test_parse_depth(void)
{
    genauth_json_doc *doc = NULL;
    genauth_error err;
    size_t len;
    char *s;

    genauth_error_init(&err);

    s = nested(900, &len);
    CHECK(s != NULL && parse_exact(s, len, &doc, &err) == GENAUTH_OK);
    genauth_json_doc_free(doc);
    doc = NULL;
    free(s);

    s = nested(CJSON_NESTING_LIMIT, &len);
    CHECK(s != NULL && parse_exact(s, len, &doc, &err) == GENAUTH_OK);
    genauth_json_doc_free(doc);
    doc = NULL;
    free(s);

    s = nested(CJSON_NESTING_LIMIT + 1, &len);
    CHECK(s != NULL);
    expect_decode_error(s, len, "JSON nested deeper than 1000 levels",
                        __LINE__);
    free(s);

    /* Deep objects too, with brackets inside strings that must not count. */
    {
        genauth_buf b;
        int i;

        genauth_buf_init(&b);
        for (i = 0; i < CJSON_NESTING_LIMIT + 1; i++)
            CHECK(genauth_buf_append_str(&b, "{\"[[\":") == 0);
        CHECK(genauth_buf_append_str(&b, "1") == 0);
        for (i = 0; i < CJSON_NESTING_LIMIT + 1; i++)
            CHECK(genauth_buf_append_char(&b, '}') == 0);
        expect_decode_error(b.data, b.len,
                            "JSON nested deeper than 1000 levels", __LINE__);
        genauth_buf_clear(&b);
    }

    /* 100,000 levels: fails cleanly (cJSON stops at its limit, the depth
     * check is a loop), no stack overflow. */
    s = nested(100000, &len);
    CHECK(s != NULL);
    expect_decode_error(s, len, "JSON nested deeper than 1000 levels",
                        __LINE__);
    free(s);

    /* A syntax error before the depth is reached is just invalid JSON. */
    {
        char *t = nested(2000, &len);
        t[5] = 'x';
        expect_decode_error(t, len, "invalid JSON at byte 5", __LINE__);
        free(t);
    }
    /* Deep, but unbalanced: invalid rather than too deep. */
    s = nested(CJSON_NESTING_LIMIT, &len);
    s[len - 1] = '}';
    expect_decode_error(s, len, "invalid JSON", __LINE__);
    free(s);
    genauth_error_clear(&err);
}

/* A string U+0000 cuts is flagged, so that a caller can refuse it (a token
 * cut there would be sent cut); keys and whole strings are not. */
static void
test_parse_nul_flag(void)
{
    const char *text = "{\"a\":\"x\\u0000y\",\"k\\u0000\":\"xy\","
                       "\"c\":[\"\\u0000\",\"\\u0041\"]}";
    genauth_json_doc *doc = NULL;
    genauth_error err;
    const cJSON *root, *c;

    genauth_error_init(&err);
    CHECK(parse_exact(text, strlen(text), &doc, &err) == GENAUTH_OK);
    root = genauth_json_doc_root(doc);
    CHECK(root != NULL);
    if (root != NULL) {
        CHECK(root->child->type & GENAUTH_JSON_STRING_HAS_NUL);
        CHECK_STR(root->child->valuestring, "x");
        CHECK(!(root->child->next->type & GENAUTH_JSON_STRING_HAS_NUL));
        c = root->child->next->next->child;
        CHECK(c->type & GENAUTH_JSON_STRING_HAS_NUL);
        CHECK(!(c->next->type & GENAUTH_JSON_STRING_HAS_NUL));
        CHECK(cJSON_IsString(c) && cJSON_IsString(c->next));
    }
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
}

/* ---- a small stack ------------------------------------------------------ */

/* A document nested to the parser's limit, parsed, written back and
 * searched on the thread this runs on. */
typedef struct {
    const char *text;
    size_t len;
    uintptr_t floor;
    genauth_status parsed, written;
    int contains;
    char message[GENAUTH_ERRMSG_SIZE];
} stack_job;

static void *
stack_job_run(void *arg)
{
    stack_job *job = arg;
    genauth_json_doc *doc = NULL;
    genauth_error err;
    genauth_buf out;

    genauth_error_init(&err);
    genauth_buf_init(&out);
    job->floor = genauth_stack_floor();
    job->parsed = genauth_json_doc_parse(job->text, job->len, &doc, &err);
    if (job->parsed == GENAUTH_OK) {
        job->written = genauth_json_write_form(genauth_json_doc_root(doc),
                                               GENAUTH_JSON_EXACT, &out,
                                               &err);
        job->contains = genauth_json_doc_contains(doc, "x", 1);
    }
    memcpy(job->message, err.message, sizeof(job->message));
    genauth_buf_clear(&out);
    genauth_json_doc_free(doc);
    genauth_error_clear(&err);
    return NULL;
}

/* ThreadSanitizer (GENAUTH_TEST_TSAN) gives every thread a stack of its
 * own of about 900 KiB and cannot run one on a 32 KiB stack: the
 * small-stack test is for the other builds (plain, valgrind,
 * AddressSanitizer). */

static void
test_small_stack(void)
{
#ifdef GENAUTH_TEST_TSAN
    return;
#endif
    const size_t stack_size = 32 * 1024;
    stack_job job;
    pthread_attr_t attr;
    pthread_t thread;
    void *stack = NULL;
    char *s;

    memset(&job, 0, sizeof(job));
    s = nested(CJSON_NESTING_LIMIT, &job.len);
    CHECK(s != NULL);
    job.text = s;

    /* A normal stack (the main thread's, which with a stack limit of
     * 1 MiB or more is not even measured: floor 0): every walk goes to the
     * limit. */
    stack_job_run(&job);
    CHECK(job.parsed == GENAUTH_OK && job.written == GENAUTH_OK);
    CHECK(job.contains == 0);

    /* 32 KiB, the smallest stack Python gives a thread: the parser loops,
     * so it still reads 1000 levels; the recursive walks stop short of the
     * stack's end, with an error, instead of overflowing it. */
    memset(job.message, 0, sizeof(job.message));
    job.floor = 0;
    CHECK(posix_memalign(&stack, 4096, stack_size) == 0);
    CHECK(pthread_attr_init(&attr) == 0);
    CHECK(pthread_attr_setstack(&attr, stack, stack_size) == 0);
    CHECK(pthread_create(&thread, &attr, stack_job_run, &job) == 0);
    CHECK(pthread_join(thread, NULL) == 0);
    pthread_attr_destroy(&attr);
    CHECK(job.floor == (uintptr_t)stack + GENAUTH_STACK_RESERVE);
    CHECK(job.parsed == GENAUTH_OK);
    CHECK(job.written == GENAUTH_E_INVALID);
    CHECK(strstr(job.message, "levels this thread's stack allows") != NULL);
    CHECK(job.contains == -1); /* not searched: taken as found */

    free(stack);
    free(s);
}

/* ---- errors ------------------------------------------------------------- */

static void
test_errors(void)
{
    genauth_error err;
    genauth_json_doc *doc = NULL;
    char longer[GENAUTH_ERRMSG_SIZE + 10];
    size_t n;

    genauth_error_init(&err);
    CHECK(err.status == GENAUTH_OK && err.message[0] == '\0'
          && err.auth_envelope == NULL);
    CHECK(genauth_error_set(&err, GENAUTH_E_INVALID, "timeout: %d", 5)
          == GENAUTH_E_INVALID);
    CHECK(err.status == GENAUTH_E_INVALID);
    CHECK_STR(err.message, "timeout: 5");
    CHECK(genauth_error_set(NULL, GENAUTH_E_TIMEOUT, "x") == GENAUTH_E_TIMEOUT);

    /* Truncated to fit. */
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    genauth_error_set(&err, GENAUTH_E_TRANSPORT, "%s", longer);
    CHECK(strlen(err.message) == GENAUTH_ERRMSG_SIZE - 1);

    /* Truncation never leaves half a UTF-8 character at the end. */
    memset(longer, 'a', sizeof(longer) - 1);
    memcpy(longer + GENAUTH_ERRMSG_SIZE - 3, "\xf0\x9d\x84\x9e", 4);
    genauth_error_set(&err, GENAUTH_E_TRANSPORT, "%s", longer);
    n = strlen(err.message);
    CHECK(n == GENAUTH_ERRMSG_SIZE - 3);
    memset(longer, 'a', sizeof(longer) - 1);
    memcpy(longer + GENAUTH_ERRMSG_SIZE - 5, "\xf0\x9d\x84\x9e", 4);
    genauth_error_set(&err, GENAUTH_E_TRANSPORT, "%s", longer);
    CHECK(strlen(err.message) == GENAUTH_ERRMSG_SIZE - 1);
    CHECK(memcmp(err.message + GENAUTH_ERRMSG_SIZE - 5, "\xf0\x9d\x84\x9e", 4)
          == 0);

    /* clear frees the attached envelope and resets everything. */
    {
        const char *env = "{\"statusCode\":401,\"message\":\"\\u0000\"}";
        CHECK(genauth_json_doc_parse(env, strlen(env), &doc, &err)
              == GENAUTH_OK);
    }
    err.auth_envelope = doc;
    err.http_status = 401;
    genauth_error_clear(&err);
    CHECK(err.auth_envelope == NULL && err.http_status == 0
          && err.status == GENAUTH_OK && err.message[0] == '\0');
    genauth_error_clear(&err); /* twice is fine */

    CHECK_STR(genauth_status_name(GENAUTH_OK), "GENAUTH_OK");
    CHECK_STR(genauth_status_name(GENAUTH_E_DECODE), "GENAUTH_E_DECODE");
    CHECK_STR(genauth_status_name(GENAUTH_E_CLOSED), "GENAUTH_E_CLOSED");
    CHECK_STR(genauth_status_name((genauth_status)99), "GENAUTH_E_UNKNOWN");
}

int
main(void)
{
    test_write_strings();
    test_write_nodes();
    test_write_numbers();
    test_write_failures();
    test_parse_numbers();
    test_parse_strings();
    test_parse_errors();
    test_parse_depth();
    test_parse_nul_flag();
    test_small_stack();
    test_parse_lone_surrogates();
    test_parse_int_digits();
    test_contains_quoted_json();
    test_errors();
    return check_summary("test_json");
}
