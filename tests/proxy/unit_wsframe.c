#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wsframe.h"

/* A test stream under construction. */
struct stream {
	unsigned char *p;
	size_t len, cap;
};

static void put(struct stream *s, const void *p, size_t n)
{
	if (s->len + n > s->cap) {
		s->cap = (s->len + n) * 2 + 64;
		s->p = realloc(s->p, s->cap);
		assert_non_null(s->p);
	}
	if (n)
		memcpy(s->p + s->len, p, n);
	s->len += n;
}

enum { LEN_MIN, LEN_16, LEN_64 };

/* A server frame: FIN flag, opcode, payload, length encoding (LEN_MIN = minimal). */
static void frame(struct stream *s, int fin, int op, const void *payload, size_t n, int enc)
{
	unsigned char h[10];
	size_t hn;
	h[0] = (unsigned char)((fin ? 0x80 : 0) | op);
	if (enc == LEN_MIN && n <= 125) {
		h[1] = (unsigned char)n;
		hn = 2;
	} else if (enc != LEN_64 && n <= 0xFFFF) {
		h[1] = 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hn = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
		hn = 10;
	}
	put(s, h, hn);
	put(s, payload, n);
}

static void text(struct stream *s, const char *str)
{
	frame(s, 1, 1, str, strlen(str), LEN_MIN);
}

/* Test callback: counts offers; replaces a payload starting with "R:" by "R:" + `grow`
 * copies of 'x' + the rest; fails on "FAIL"; keeps everything else. */
struct calls {
	int offered;
	size_t grow;
	size_t last_len;
};

static int rewrite(void *ctx, const char *payload, size_t len, struct buf *repl)
{
	struct calls *c = ctx;
	c->offered++;
	c->last_len = len;
	if (len == 4 && !memcmp(payload, "FAIL", 4))
		return -1;
	if (len < 2 || memcmp(payload, "R:", 2))
		return 0;
	if (buf_append(repl, "R:", 2, NULL) < 0)
		return -1;
	for (size_t i = 0; i < c->grow; i++)
		if (buf_append(repl, "x", 1, NULL) < 0)
			return -1;
	return buf_append(repl, payload + 2, len - 2, NULL) < 0 ? -1 : 1;
}

/* Feeds `in` cut at the given points (sorted, may repeat), returns the output. */
static void feed_cuts(const struct stream *in, const size_t *cuts, size_t ncuts, struct calls *c,
		      struct buf *out)
{
	struct wsframe_rw rw;
	struct err e;
	wsframe_rw_init(&rw, rewrite, c);
	size_t at = 0;
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : in->len;
		assert_int_equal(wsframe_rw_feed(&rw, in->p + at, end - at, out, &e), 0);
		assert_true(wsframe_rw_pending(&rw) <= WSFRAME_HEADER_MAX + WSFRAME_REWRITE_MAX);
		at = end;
	}
	assert_int_equal(wsframe_rw_pending(&rw), 0);
	wsframe_rw_free(&rw);
}

/* Checks the output for one feed, every single split point, two split points, and byte by
 * byte. */
static void check_all_splits(const struct stream *in, const void *expect, size_t expect_len,
			     size_t grow, int expect_offers)
{
	struct buf out;
	buf_init(&out, 1 << 24);
	struct calls c = {.grow = grow};
	feed_cuts(in, NULL, 0, &c, &out);
	assert_int_equal(out.len, expect_len);
	assert_memory_equal(out.data, expect, expect_len);
	assert_int_equal(c.offered, expect_offers);
	for (size_t s = 0; s <= in->len; s++) {
		buf_reset(&out);
		c = (struct calls){.grow = grow};
		feed_cuts(in, &s, 1, &c, &out);
		assert_int_equal(out.len, expect_len);
		assert_memory_equal(out.data, expect, expect_len);
		assert_int_equal(c.offered, expect_offers);
	}
	if (in->len <= 400) {
		for (size_t a = 0; a <= in->len; a++)
			for (size_t b = a; b <= in->len; b += 3) {
				size_t cuts[2] = {a, b};
				buf_reset(&out);
				c = (struct calls){.grow = grow};
				feed_cuts(in, cuts, 2, &c, &out);
				assert_int_equal(out.len, expect_len);
				assert_memory_equal(out.data, expect, expect_len);
			}
	}
	size_t *cuts = malloc((in->len + 1) * sizeof *cuts);
	for (size_t i = 0; i < in->len; i++)
		cuts[i] = i;
	buf_reset(&out);
	c = (struct calls){.grow = grow};
	feed_cuts(in, cuts, in->len, &c, &out);
	assert_int_equal(out.len, expect_len);
	assert_memory_equal(out.data, expect, expect_len);
	assert_int_equal(c.offered, expect_offers);
	free(cuts);
	buf_free(&out);
}

static void passthrough_split_everywhere(void **state)
{
	(void)state;
	struct stream in = {0};
	unsigned char bin[300];
	for (size_t i = 0; i < sizeof bin; i++)
		bin[i] = (unsigned char)(i * 7);
	text(&in, "message:starting");
	frame(&in, 1, 2, bin, sizeof bin, LEN_MIN);
	frame(&in, 1, 9, "ping", 4, LEN_MIN);
	text(&in, "");
	frame(&in, 1, 10, "", 0, LEN_MIN);
	text(&in, "compilation:ok");
	frame(&in, 1, 8, "\x03\xe8", 2, LEN_MIN);
	check_all_splits(&in, in.p, in.len, 0, 3);
	free(in.p);
}

static void rewrite_split_everywhere(void **state)
{
	(void)state;
	struct stream in = {0}, want = {0};
	text(&in, "message:running");
	text(&want, "message:running");
	text(&in, "R:123");
	text(&want, "R:xxxx123");
	frame(&in, 1, 9, "", 0, LEN_MIN);
	frame(&want, 1, 9, "", 0, LEN_MIN);
	text(&in, "R:");
	text(&want, "R:xxxx");
	check_all_splits(&in, want.p, want.len, 4, 3);
	free(in.p);
	free(want.p);
}

static void boundary_lengths(void **state)
{
	(void)state;
	const size_t lens[] = {0, 1, 125, 126, 127, 4095, 4096, 4097, 65535, 65536, 70000};
	for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
		size_t n = lens[i];
		char *p = malloc(n + 1);
		memset(p, 'a', n);
		if (n >= 2)
			memcpy(p, "R:", 2); /* would be rewritten if offered */
		for (int op = 1; op <= 2; op++) {
			struct stream in = {0};
			frame(&in, 1, op, p, n, LEN_MIN);
			struct calls c = {.grow = 0};
			struct buf out;
			buf_init(&out, 1 << 20);
			feed_cuts(&in, NULL, 0, &c, &out);
			/* grow 0 rewrites to the same bytes: output identical either way. */
			assert_int_equal(out.len, in.len);
			assert_memory_equal(out.data, in.p, in.len);
			int offered = op == 1 && n <= WSFRAME_REWRITE_MAX;
			assert_int_equal(c.offered, offered);
			if (offered)
				assert_int_equal(c.last_len, n);
			/* The header has the expected size: 2, 4 or 10 bytes. */
			size_t hn = n <= 125 ? 2 : n <= 65535 ? 4 : 10;
			assert_int_equal(in.len, hn + n);
			buf_free(&out);
			free(in.p);
		}
		free(p);
	}
}

static void rewrite_changes_length_encoding(void **state)
{
	(void)state;
	struct {
		size_t in_len, grow;
	} cases[] = {
	    {120, 10},	  /* 120 -> 130: 7-bit to 16-bit across 125 */
	    {123, 2},	  /* 123 -> 125: stays 7-bit */
	    {123, 3},	  /* 123 -> 126: first 16-bit length */
	    {4096, 4000}, /* the largest offered message grows to 8096 */
	    {2, 0},	  /* "R:" -> "R:" */
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		size_t n = cases[i].in_len, g = cases[i].grow;
		char *p = malloc(n);
		memset(p, 'b', n);
		memcpy(p, "R:", 2);
		char *q = malloc(n + g);
		memcpy(q, "R:", 2);
		memset(q + 2, 'x', g);
		memset(q + 2 + g, 'b', n - 2);
		struct stream in = {0}, want = {0};
		frame(&in, 1, 1, p, n, LEN_MIN);
		frame(&want, 1, 1, q, n + g, LEN_MIN);
		text(&in, "tail");
		text(&want, "tail");
		check_all_splits(&in, want.p, want.len, g, 2);
		free(in.p);
		free(want.p);
		free(p);
		free(q);
	}
	/* A non-minimal header is kept as is when the message is kept, made minimal when it is
	 * rewritten. */
	struct stream in = {0}, want = {0};
	frame(&in, 1, 1, "keep", 4, LEN_16);
	frame(&want, 1, 1, "keep", 4, LEN_16);
	frame(&in, 1, 1, "R:a", 3, LEN_64);
	frame(&want, 1, 1, "R:xa", 4, LEN_MIN);
	check_all_splits(&in, want.p, want.len, 1, 2);
	free(in.p);
	free(want.p);
}

static void replacement_is_capped(void **state)
{
	(void)state;
	struct stream in = {0};
	text(&in, "R:");
	struct calls c = {.grow = WSFRAME_REPLACEMENT_MAX}; /* 2 + max: over the cap */
	struct wsframe_rw rw;
	struct buf out;
	struct err e;
	buf_init(&out, 1 << 20);
	wsframe_rw_init(&rw, rewrite, &c);
	assert_int_equal(wsframe_rw_feed(&rw, in.p, in.len, &out, &e), -1);
	assert_int_equal(out.len, 0);
	wsframe_rw_free(&rw);
	buf_free(&out);
	free(in.p);
}

static void fragments_and_interleaved_control(void **state)
{
	(void)state;
	struct stream in = {0}, want = {0};
	/* A fragmented text message is never offered, even its small final fragment. */
	frame(&in, 0, 1, "R:a", 3, LEN_MIN);
	frame(&in, 1, 9, "p", 1, LEN_MIN);
	frame(&in, 0, 0, "R:b", 3, LEN_MIN);
	frame(&in, 1, 10, "q", 1, LEN_MIN);
	frame(&in, 1, 0, "R:c", 3, LEN_MIN);
	/* A fragmented binary message with a ping inside. */
	frame(&in, 0, 2, "\x00\x01", 2, LEN_MIN);
	frame(&in, 1, 9, "", 0, LEN_MIN);
	frame(&in, 1, 0, "\x02", 1, LEN_MIN);
	put(&want, in.p, in.len);
	/* After the message ends, a whole text frame is offered again. */
	text(&in, "R:d");
	text(&want, "R:xd");
	check_all_splits(&in, want.p, want.len, 1, 1);
	free(in.p);
	free(want.p);
}

static void large_frames_bounded_memory(void **state)
{
	(void)state;
	const size_t big = 16u << 20;
	const size_t chunk = 65536;
	unsigned char *payload = malloc(chunk);
	memset(payload, 'z', chunk);
	for (int op = 1; op <= 2; op++) {
		struct wsframe_rw rw;
		struct calls c = {0};
		struct buf out;
		struct err e;
		buf_init(&out, chunk + 64); /* the caller drains out after each feed */
		wsframe_rw_init(&rw, rewrite, &c);
		struct stream hdr = {0};
		frame(&hdr, 1, op, NULL, 0, LEN_MIN);
		hdr.p[1] = 127;
		unsigned char len64[8];
		for (int i = 0; i < 8; i++)
			len64[i] = (unsigned char)((uint64_t)big >> (56 - 8 * i));
		hdr.len = 2;
		put(&hdr, len64, 8);
		assert_int_equal(wsframe_rw_feed(&rw, hdr.p, hdr.len, &out, &e), 0);
		assert_int_equal(out.len, 10);
		size_t total = out.len;
		for (size_t sent = 0; sent < big; sent += chunk) {
			buf_reset(&out);
			assert_int_equal(wsframe_rw_feed(&rw, payload, chunk, &out, &e), 0);
			assert_int_equal(out.len, chunk);
			assert_int_equal(wsframe_rw_pending(&rw), 0);
			total += out.len;
		}
		assert_int_equal(total, big + 10);
		assert_int_equal(rw.held.cap, 0); /* never allocated */
		assert_int_equal(c.offered, 0);
		wsframe_rw_free(&rw);
		buf_free(&out);
		free(hdr.p);
	}
	free(payload);
}

static void pending_counts_held_bytes(void **state)
{
	(void)state;
	struct wsframe_rw rw;
	struct calls c = {0};
	struct buf out;
	struct err e;
	buf_init(&out, 1 << 16);
	wsframe_rw_init(&rw, rewrite, &c);
	struct stream in = {0};
	text(&in, "hello world");
	frame(&in, 1, 2, "0123456789", 10, LEN_MIN);
	assert_int_equal(wsframe_rw_feed(&rw, in.p, 1, &out, &e), 0);
	assert_int_equal(wsframe_rw_pending(&rw), 1);
	assert_int_equal(wsframe_rw_feed(&rw, in.p + 1, 6, &out, &e), 0);
	assert_int_equal(wsframe_rw_pending(&rw), 7);
	assert_int_equal(out.len, 0);
	assert_int_equal(wsframe_rw_feed(&rw, in.p + 7, 6 + 1, &out, &e), 0);
	assert_int_equal(out.len, 13); /* text frame out, binary header byte pending */
	assert_int_equal(wsframe_rw_pending(&rw), 1);
	assert_int_equal(wsframe_rw_feed(&rw, in.p + 14, 3, &out, &e), 0);
	assert_int_equal(out.len, 17); /* binary streams: its header and 2 payload bytes */
	assert_int_equal(wsframe_rw_pending(&rw), 0);
	assert_int_equal(wsframe_rw_feed(&rw, in.p + 17, in.len - 17, &out, &e), 0);
	assert_int_equal(out.len, in.len);
	assert_memory_equal(out.data, in.p, in.len);
	wsframe_rw_free(&rw);
	buf_free(&out);
	free(in.p);
}

/* Feeds `prefix` (valid) then `bad`, expects -1 with the prefix already in out, and that
 * the stream stays dead. */
static void expect_refused(const void *bad, size_t n, const char *why)
{
	struct stream in = {0};
	text(&in, "ok");
	size_t good = in.len;
	put(&in, bad, n);
	struct wsframe_rw rw;
	struct calls c = {0};
	struct buf out;
	struct err e = {0};
	buf_init(&out, 1 << 16);
	wsframe_rw_init(&rw, rewrite, &c);
	assert_int_equal(wsframe_rw_feed(&rw, in.p, in.len, &out, &e), -1);
	if (why)
		assert_non_null(strstr(e.msg, why));
	assert_true(out.len >= good);
	assert_memory_equal(out.data, in.p, good);
	assert_int_equal(wsframe_rw_feed(&rw, "\x81\x00", 2, &out, &e), -1);
	wsframe_rw_free(&rw);
	buf_free(&out);
	free(in.p);
}

static void malformed_headers_refused(void **state)
{
	(void)state;
	expect_refused("\x81\x82"
		       "abcd"
		       "hi",
		       8, "masked");
	expect_refused("\x82\xfe", 2, "masked");
	expect_refused("\xc1\x00", 2, "RSV");
	expect_refused("\xa1\x00", 2, "RSV");
	expect_refused("\x91\x00", 2, "RSV");
	for (int op = 3; op <= 7; op++) {
		unsigned char h[2] = {(unsigned char)(0x80 | op), 0};
		expect_refused(h, 2, "opcode");
	}
	for (int op = 11; op <= 15; op++) {
		unsigned char h[2] = {(unsigned char)(0x80 | op), 0};
		expect_refused(h, 2, "opcode");
	}
	expect_refused("\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x00", 10, "top bit");
	expect_refused("\x81\x7f\xff\xff\xff\xff\xff\xff\xff\xff", 10, "top bit");
	expect_refused("\x09\x00", 2, "control");	  /* ping with FIN=0 */
	expect_refused("\x89\x7e\x00\x7e", 4, "control"); /* ping of 126 bytes */
	expect_refused("\x88\x7f", 2, "control");
	expect_refused("\x80\x01x", 3, "continuation"); /* nothing to continue */
	expect_refused("\x01\x01x\x81\x01y", 6, "inside");
	expect_refused("\x02\x01x\x82\x01y", 6, "inside");
	expect_refused("\x81\x04"
		       "FAIL",
		       6, "rewriting"); /* callback error */
}

static void refused_split_byte_by_byte(void **state)
{
	(void)state;
	/* The mask bit is seen as soon as the second byte arrives, not after the header. */
	struct wsframe_rw rw;
	struct buf out;
	struct err e;
	buf_init(&out, 1 << 16);
	wsframe_rw_init(&rw, NULL, NULL);
	assert_int_equal(wsframe_rw_feed(&rw, "\x81", 1, &out, &e), 0);
	assert_int_equal(wsframe_rw_feed(&rw, "\xff", 1, &out, &e), -1);
	wsframe_rw_free(&rw);
	/* The top bit of a 64-bit length is seen once the length is complete. */
	wsframe_rw_init(&rw, NULL, NULL);
	const unsigned char h[] = {0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0};
	for (size_t i = 0; i < sizeof h - 1; i++)
		assert_int_equal(wsframe_rw_feed(&rw, h + i, 1, &out, &e), 0);
	assert_int_equal(wsframe_rw_feed(&rw, h + 9, 1, &out, &e), -1);
	assert_int_equal(out.len, 0);
	wsframe_rw_free(&rw);
	buf_free(&out);
}

static void out_cap_is_an_error(void **state)
{
	(void)state;
	struct stream in = {0};
	char p[200];
	memset(p, 'q', sizeof p);
	frame(&in, 1, 2, p, sizeof p, LEN_MIN);
	struct wsframe_rw rw;
	struct buf out;
	struct err e;
	buf_init(&out, 100);
	wsframe_rw_init(&rw, NULL, NULL);
	assert_int_equal(wsframe_rw_feed(&rw, in.p, in.len, &out, &e), -1);
	assert_int_equal(e.code, E2BIG);
	wsframe_rw_free(&rw);
	buf_free(&out);
	free(in.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(passthrough_split_everywhere),
	    cmocka_unit_test(rewrite_split_everywhere),
	    cmocka_unit_test(boundary_lengths),
	    cmocka_unit_test(rewrite_changes_length_encoding),
	    cmocka_unit_test(replacement_is_capped),
	    cmocka_unit_test(fragments_and_interleaved_control),
	    cmocka_unit_test(large_frames_bounded_memory),
	    cmocka_unit_test(pending_counts_held_bytes),
	    cmocka_unit_test(malformed_headers_refused),
	    cmocka_unit_test(refused_split_byte_by_byte),
	    cmocka_unit_test(out_cap_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
