/*
 * utf8.h - UTF-8 well-formedness, shared by the JSON and XML codecs.
 *
 * utf8_seq_len() returns the length (1..4) of the well-formed UTF-8
 * sequence starting at s[0] (n >= 1 bytes available), or 0 when s[0] does
 * not start one. Well-formed as in RFC 3629: no overlong forms, no
 * surrogates (U+D800..U+DFFF), nothing above U+10FFFF. Pure, no allocation.
 */
#ifndef VC_UTF8_H
#define VC_UTF8_H

#include <stddef.h>

size_t utf8_seq_len(const unsigned char *s, size_t n);

/*
 * utf8_sanitize() copies in[0..n) to out as well-formed UTF-8, for text
 * frames cut out of a byte stream: each byte that cannot start or continue a
 * well-formed sequence becomes U+FFFD; a well-formed but incomplete sequence
 * at the very end is not copied, and its length (1..3) goes to *tail so the
 * caller can prepend those bytes to the next chunk (0 when none). out must
 * hold 3 * n bytes. Returns the bytes written.
 */
size_t utf8_sanitize(const unsigned char *in, size_t n, unsigned char *out, size_t *tail);

#endif
