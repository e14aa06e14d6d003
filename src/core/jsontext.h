/* JSON string text, read and written one way for the whole core: the UTF-8
 * walker, the \u and backslash escapes, and the one string-literal escaper
 * that both forms of the writer (json.h) and the parser's checks share.
 *
 * Escaping follows JavaScript's JSON.stringify, which the exact form shares:
 * '"' and '\\' and the control characters escaped (\b \f \n \r \t, the other
 * controls and lone surrogates as lowercase \uxxxx), non-ASCII and '/' as
 * they are. */
#ifndef GENAUTH_JSONTEXT_H
#define GENAUTH_JSONTEXT_H

#include <stddef.h>
#include <stdint.h>

#include "genauth.h"
#include "buf.h"

/* Nonzero for the bytes a JSON string cannot hold as they are ('"', '\\'
 * and the control characters) and for every byte above 0x7F (to be walked
 * as UTF-8): where the escaper's and the parser's runs of plain bytes stop
 * when UTF-8 is checked. */
extern const unsigned char genauth_json_stop_utf8[256];

/* The value of four hex digits at p (either case): 0, or -1 when one is not
 * a hex digit. */
int genauth_json_hex4(const unsigned char *p, uint32_t *v);

/* The length of the UTF-8 sequence at p (p < end) with its code point in
 * *cp, or 0 when malformed (overlong, cut short, above U+10FFFF). Encoded
 * surrogates (ED A0..BF xx) pass, as json.loads(bytes) lets them: callers
 * that must refuse them check *cp. */
size_t genauth_utf8_decode(const unsigned char *p, const unsigned char *end,
                           uint32_t *cp);

/* Writes cp as UTF-8 into buf (4 bytes); a surrogate as its three bytes.
 * Returns the length. */
size_t genauth_utf8_encode(uint32_t cp, char *buf);

/* The JSON escape at p (a backslash; avail bytes from p): its length, with
 * its code point in *cp, or 0 when it is not a valid escape. A high
 * surrogate escape followed by a low one is one character (12 bytes);
 * either alone is a lone surrogate. */
size_t genauth_json_unescape(const unsigned char *p, size_t avail,
                             uint32_t *cp);

/* A string's characters, read one code point at a time: UTF-8 bytes, or
 * the content of a JSON string literal (between its quotes) with its
 * escapes. genauth_json_text_init is inline: the writer makes one per
 * string. */
typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    int escaped; /* JSON string content: decode backslash escapes */
} genauth_json_text;

static inline void
genauth_json_text_init(genauth_json_text *t, const char *s, size_t len,
                       int escaped)
{
    t->p = (const unsigned char *)s;
    t->end = t->p + len;
    t->escaped = escaped;
}

/* The text between the quotes of the NUL-terminated string literal `lit`
 * (a cJSON_Raw string node's value); GENAUTH_E_INVALID when it is not
 * quoted. */
genauth_status genauth_json_text_literal(genauth_json_text *t,
                                         const char *lit,
                                         genauth_error *err);

/* The next code point: 1 with *cp, *esc nonzero when it came from an escape
 * (only then can it be a lone surrogate, as JavaScript strings allow); 0 at
 * the end; -1 when malformed: not UTF-8 (encoded surrogates included), or
 * in escaped text a bad escape, a raw control character or a bare quote. */
int genauth_json_text_next(genauth_json_text *t, uint32_t *cp, int *esc);

/* The GENAUTH_E_INVALID error for a text that genauth_json_text_next found
 * malformed. */
genauth_status genauth_json_text_malformed(const genauth_json_text *t,
                                           genauth_error *err);

/* Appends the text as a JSON string literal, quotes included. With
 * `check_utf8` (JavaScript form) a text that is not UTF-8 is
 * GENAUTH_E_INVALID; without it (the exact form, plain text only) bytes
 * above 0x7F are copied as they are. An escaped text is re-escaped: an
 * escape JavaScript would not write ("\/", "\u00e9") becomes the
 * character. The common string, nothing to escape, is copied in one go. On
 * failure `out` may hold part of the literal. */
genauth_status genauth_json_text_quote(genauth_json_text *t, int check_utf8,
                                       genauth_buf *out, genauth_error *err);

#endif
