/*
 * fuzz_wsframe.c - libFuzzer property target: the server->browser frame rewriter
 * (proxy/wsframe.c).
 *
 * Input: a first byte choosing chunk sizes (as fuzz_utf8), then the server's byte stream.
 * Properties (abort() on violation):
 *  - with a callback that keeps every payload: as long as no feed failed, what came out is a
 *    prefix of what went in and out + pending == fed (nothing lost, added or reordered);
 *    when the input ends on a frame boundary (pending 0) out == input;
 *  - pending never exceeds one header plus WSFRAME_REWRITE_MAX;
 *  - every payload offered is of a text frame and at most WSFRAME_REWRITE_MAX bytes;
 *  - chunking does not matter: the chunked feeds fail iff one whole feed fails, and with a
 *    callback that rewrites (reversing the payload and appending a length-dependent tail,
 *    which crosses the 125 and 65535 boundaries), the outputs are equal too;
 *  - a rewritten output parses again without error.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wsframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

static int keep(void *ctx, const char *payload, size_t len, struct buf *repl)
{
	(void)payload;
	(void)repl;
	check(len <= WSFRAME_REWRITE_MAX, "offered payload within the limit");
	++*(int *)ctx;
	return 0;
}

/* Rewrites payloads whose first byte is odd; fails on a first byte of 0xFF. */
static int scramble(void *ctx, const char *payload, size_t len, struct buf *repl)
{
	(void)ctx;
	check(len <= WSFRAME_REWRITE_MAX, "offered payload within the limit");
	if (len == 0 || !(payload[0] & 1))
		return 0;
	if ((unsigned char)payload[0] == 0xFF)
		return -1;
	for (size_t i = len; i-- > 0;)
		if (buf_append(repl, payload + i, 1, NULL) < 0)
			return -1;
	size_t extra = ((unsigned char)payload[0] * 37u + len) % 200;
	for (size_t i = 0; i < extra; i++)
		if (buf_append(repl, "+", 1, NULL) < 0)
			return -1;
	return 1;
}

/* Feeds in chunks chosen by seed; returns 0 or -1 (first failure), output in out. */
static int run(const uint8_t *in, size_t n, unsigned seed, wsframe_rewrite_fn fn, void *ctx,
	       struct buf *out, int check_keep)
{
	struct wsframe_rw rw;
	struct err err;
	wsframe_rw_init(&rw, fn, ctx);
	size_t pos = 0, step = 0;
	int rc = 0;
	while (pos < n) {
		size_t c;
		if (seed == 0)
			c = n;
		else if (seed & 0x80)
			c = (seed & 0x7F) + 1;
		else
			c = 1 + (step++ * (seed | 1) + seed) % ((seed & 7) * 3 + 2 + (seed >> 3));
		if (c > n - pos)
			c = n - pos;
		rc = wsframe_rw_feed(&rw, in + pos, c, out, &err);
		pos += c;
		if (rc < 0)
			break;
		size_t pend = wsframe_rw_pending(&rw);
		check(pend <= WSFRAME_HEADER_MAX + WSFRAME_REWRITE_MAX, "pending bounded");
		if (check_keep) {
			check(out->len + pend == pos, "out + pending == fed");
			check(!memcmp(out->data ? out->data : "", in, out->len), "out is a prefix");
		}
	}
	if (rc == 0 && check_keep && wsframe_rw_pending(&rw) == 0)
		check(out->len == n, "whole frames come out whole");
	wsframe_rw_free(&rw);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	unsigned seed = data[0];
	const uint8_t *in = data + 1;
	size_t n = size - 1;
	/* Large enough for any output: a frame of >= 3 bytes grows by < 200 + 8 header bytes. */
	size_t cap = 110 * n + 65536;

	struct buf a, b;
	buf_init(&a, cap);
	buf_init(&b, cap);
	int offers = 0, offers_whole = 0;
	int ra = run(in, n, seed, keep, &offers, &a, 1);
	int rb = run(in, n, 0, keep, &offers_whole, &b, 1);
	check(ra == rb, "keep: chunking does not change failure");
	if (ra == 0)
		check(a.len == b.len && !memcmp(a.data, b.data, a.len) && offers == offers_whole,
		      "keep: chunking does not change the output");

	buf_reset(&a);
	buf_reset(&b);
	ra = run(in, n, seed, scramble, NULL, &a, 0);
	rb = run(in, n, 0, scramble, NULL, &b, 0);
	check(ra == rb, "scramble: chunking does not change failure");
	if (ra == 0) {
		check(a.len == b.len && (a.len == 0 || !memcmp(a.data, b.data, a.len)),
		      "scramble: chunking does not change the output");
		struct buf c;
		buf_init(&c, 2 * a.len + 4096);
		int count = 0;
		check(run((const uint8_t *)a.data, a.len, 0, keep, &count, &c, 1) == 0,
		      "rewritten output parses");
		buf_free(&c);
	}
	buf_free(&a);
	buf_free(&b);
	return 0;
}
