/*
 * fuzz_utf8.c - libFuzzer property target: utf8_sanitize and utf8_seq_len (common/utf8.c).
 *
 * Input: a first byte choosing chunk sizes (see below), then the bytes to sanitize.
 * Properties (abort() on violation):
 *  - the output is well-formed: utf8_seq_len walks it to its end without a 0;
 *  - it fits the contract's 3 * n bytes; the tail is 0..3 bytes, at most n, and is an
 *    incomplete well-formed prefix (utf8_seq_len says 0 on it alone);
 *  - well-formed input (walked by utf8_seq_len) comes out unchanged with no tail, and the
 *    output sanitizes to itself with no tail (idempotence);
 *  - streaming: cutting the input into chunks at arbitrary points, prepending each call's tail
 *    bytes to the next chunk, gives the same bytes as one call on the whole input, and the
 *    same final tail.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

static int well_formed(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq_len(s + i, n - i);
		if (l == 0 || l > n - i)
			return 0;
		i += l;
	}
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned seed = data[0];
	const unsigned char *in = data + 1;
	size_t n = size - 1;

	unsigned char *whole = malloc(3 * n + 1);
	size_t tail = 99;
	size_t wl = utf8_sanitize(in, n, whole, &tail);
	check(wl <= 3 * n, "output within 3 * n");
	check(tail <= 3 && tail <= n, "tail 0..3");
	check(well_formed(whole, wl), "output well-formed");
	if (tail)
		check(utf8_seq_len(in + n - tail, tail) == 0, "tail is incomplete");
	int wf_in = well_formed(in, n);
	if (wf_in)
		check(tail == 0 && wl == n && !memcmp(whole, in, n), "well-formed input unchanged");
	if (tail == 0 && wl == n && !memcmp(whole, in, n))
		check(wf_in, "unchanged input was well-formed");

	unsigned char *again = malloc(3 * wl + 1);
	size_t t2 = 99;
	size_t al = utf8_sanitize(whole, wl, again, &t2);
	check(t2 == 0 && al == wl && !memcmp(again, whole, wl), "idempotent");
	free(again);

	/* Streaming, chunk sizes from the seed: a fixed size (high bit set) or a varying one. */
	unsigned char *stream = malloc(3 * n + 1);
	unsigned char *chunk = malloc(n + 4);
	size_t sl = 0, carry = 0, pos = 0, step = 0;
	while (pos < n) {
		size_t c;
		if (seed & 0x80)
			c = (seed & 0x7F) % (n + 1) ? (seed & 0x7F) % (n + 1) : n;
		else
			c = 1 + (step++ * (seed | 1) + seed) % ((seed & 3) + 2 + (seed >> 4));
		if (c > n - pos)
			c = n - pos;
		memcpy(chunk + carry, in + pos, c);
		size_t t = 99;
		unsigned char *o = malloc(3 * (carry + c) + 1);
		size_t ol = utf8_sanitize(chunk, carry + c, o, &t);
		check(t <= 3 && t <= carry + c, "chunk tail 0..3");
		memcpy(stream + sl, o, ol);
		sl += ol;
		free(o);
		memmove(chunk, chunk + carry + c - t, t);
		carry = t;
		pos += c;
		check(sl <= 3 * n, "stream within 3 * n");
	}
	check(carry == tail, "streamed tail equals whole tail");
	check(sl == wl && !memcmp(stream, whole, wl), "streamed output equals whole output");
	free(chunk);
	free(stream);
	free(whole);
	return 0;
}
