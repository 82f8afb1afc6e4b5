#include "utf8.h"

size_t utf8_seq_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t need;
	unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */

	if (c < 0x80)
		return 1;
	if (c < 0xC2)
		return 0;
	if (c < 0xE0) {
		need = 2;
	} else if (c < 0xF0) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c < 0xF5) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (n < need || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < need; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	return need;
}

/* Whether in[0..n), n below the sequence's length, can still become a
 * well-formed sequence. */
static int utf8_is_prefix(const unsigned char *s, size_t n)
{
	unsigned char full[4] = {0, 0x80, 0x80, 0x80};
	for (size_t k = 0; k < n && k < 4; k++)
		full[k] = s[k];
	/* Complete it with the smallest continuation the lead byte allows. */
	if (n == 1 && s[0] == 0xE0)
		full[1] = 0xA0;
	if (n == 1 && s[0] == 0xF0)
		full[1] = 0x90;
	return utf8_seq_len(full, 4) > n;
}

size_t utf8_sanitize(const unsigned char *in, size_t n, unsigned char *out, size_t *tail)
{
	size_t i = 0, o = 0;
	*tail = 0;
	while (i < n) {
		size_t l = utf8_seq_len(in + i, n - i);
		if (l) {
			for (size_t k = 0; k < l; k++)
				out[o++] = in[i + k];
			i += l;
			continue;
		}
		if (n - i < 4 && utf8_is_prefix(in + i, n - i)) {
			*tail = n - i;
			break;
		}
		out[o++] = 0xEF; /* U+FFFD */
		out[o++] = 0xBF;
		out[o++] = 0xBD;
		i++;
	}
	return o;
}
