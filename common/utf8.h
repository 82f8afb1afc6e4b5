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

#endif
