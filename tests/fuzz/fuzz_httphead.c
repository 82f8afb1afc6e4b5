/*
 * Fuzz target for proxy/httphead: the input is parsed as a request head and as a response
 * head, in one go and in two parts (split where the first byte says), which must agree.
 * When a head is complete, writing it with no edit must reproduce its bytes exactly and
 * parse again to the same fields; writing it with every kind of edit must still parse (when
 * within the limits) with the same framing, and the edited cookie must read back.
 * Any disagreement aborts.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httphead.h"

static void check(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_httphead: %s\n", what);
		abort();
	}
}

static bool span_eq(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

/* Same framing and flags: what an edit must not change. */
static void same_framing(const struct httphead *a, const struct httphead *b)
{
	check(a->is_response == b->is_response && a->status == b->status &&
		  a->minor_version == b->minor_version && a->content_length == b->content_length &&
		  a->chunked == b->chunked && a->expect_continue == b->expect_continue &&
		  a->upgrade_websocket == b->upgrade_websocket &&
		  a->connection_close == b->connection_close,
	      "framing differs");
	if (!a->is_response)
		check(span_eq(a->method, a->method_len, b->method, b->method_len),
		      "method differs");
}

static void same_head(const struct httphead *a, const struct httphead *b)
{
	same_framing(a, b);
	check(a->head_len == b->head_len && a->nfields == b->nfields, "size differs");
	if (!a->is_response)
		check(span_eq(a->target, a->target_len, b->target, b->target_len),
		      "target differs");
	for (size_t i = 0; i < a->nfields; i++) {
		const struct httphead_field *x = &a->fields[i], *y = &b->fields[i];
		check(span_eq(x->name, x->name_len, y->name, y->name_len) &&
			  span_eq(x->value, x->value_len, y->value, y->value_len),
		      "field differs");
	}
}

/* The edited output parses unless an addition pushed it past a limit. */
static void check_edited(const struct httphead *h, const struct buf *out, bool target_edited)
{
	struct httphead again;
	struct err err;
	httphead_init(&again);
	int r = httphead_parse(&again, h->is_response, out->data, out->len, &err);
	if (r != 1) {
		check(r == -1 && (err.code == 413 || err.code == 431 || err.code == 502) &&
			  (out->len > HTTPHEAD_MAX_BYTES || h->nfields + 2 > HTTPHEAD_MAX_FIELDS),
		      "edited head refused");
		httphead_free(&again);
		return;
	}
	check(again.head_len == out->len, "edited head length");
	same_framing(h, &again);
	if (target_edited)
		check(span_eq(again.target, again.target_len, "/edited", 7), "target edit lost");
	size_t n0 = 0, n1 = 0;
	const char *v0 = httphead_cookie(h, "VPL_web", &n0);
	const char *v1 = httphead_cookie(&again, "VPL_web", &n1);
	check(!v0 == !v1, "cookie appeared or vanished");
	if (v1)
		check(span_eq(v1, n1, "123450042", 9), "cookie edit lost");
	check(httphead_get(&again, "x-forwarded-for") &&
		  span_eq(httphead_get(&again, "x-forwarded-for")->value,
			  httphead_get(&again, "x-forwarded-for")->value_len, "192.0.2.1", 9),
	      "added field lost or a dropped one kept");
	httphead_free(&again);
}

static void one_kind(const uint8_t *data, size_t size, bool response)
{
	const char *p = (const char *)data;
	struct httphead h, whole;
	struct err err, err_whole;
	httphead_init(&h);
	httphead_init(&whole);
	size_t cut = size ? (size_t)data[0] * size / 256 : 0;
	int r = httphead_parse(&h, response, p, cut, &err);
	if (r == 0)
		r = httphead_parse(&h, response, p, size, &err);
	int rw = httphead_parse(&whole, response, p, size, &err_whole);
	check(r == rw, "split and whole parses disagree");
	if (r == -1)
		check(err.code == err_whole.code, "split and whole refusals disagree");
	if (r != 1)
		goto out;
	same_head(&h, &whole);
	check(h.head_len <= size && h.head_len <= HTTPHEAD_MAX_BYTES, "head_len out of range");

	struct buf out;
	buf_init(&out, 1 << 20);
	check(httphead_write(&h, NULL, &out, &err) == 0, "plain write failed");
	check(span_eq(out.data, out.len, p, h.head_len), "plain write changed bytes");
	struct httphead again;
	httphead_init(&again);
	check(httphead_parse(&again, response, out.data, out.len, &err) == 1, "re-parse failed");
	same_head(&h, &again);
	httphead_free(&again);

	const char *const drop[] = {"X-Forwarded-For", "forwarded", NULL};
	struct httphead_edit ed = {
	    .cookie_name = "VPL_web",
	    .cookie_value = "123450042",
	    .cookie_value_len = 9,
	    .drop = drop,
	    .add = "X-Forwarded-For: 192.0.2.1\r\nX-Forwarded-Proto: https\r\n"};
	if (!response) {
		ed.target = "/edited";
		ed.target_len = 7;
	}
	buf_reset(&out);
	check(httphead_write(&h, &ed, &out, &err) == 0, "edited write failed");
	check_edited(&h, &out, !response);
	buf_free(&out);
out:
	httphead_free(&h);
	httphead_free(&whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	one_kind(data, size, false);
	one_kind(data, size, true);
	return 0;
}
