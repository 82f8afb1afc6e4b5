/*
 * fuzz_rpc_call.c - libFuzzer target: rpc_parse on arbitrary bytes;
 * whatever parses is encoded again with rpc_encode_call, in its own format
 * and in the other, and parsed back.
 *
 * Invariants (abort() on violation):
 *  - in the request's own format the encoding succeeds and parses back to
 *    the same method, id (JSON) and json_equal params;
 *  - in the other format it fails only for what rpc_call.h says cannot
 *    cross (JSON: a string that is not UTF-8; XML: a method or member name
 *    XML cannot carry), leaving the buffer as it was; when it succeeds the
 *    result parses back to the same method and params, with JSON's
 *    true/false as 1/0.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "rpc_call.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

/* Whether some string value in v is not UTF-8 (JSON cannot carry it). */
static int has_non_utf8(json_t *v)
{
	const char *key;
	json_t *c;
	size_t i;

	if (json_is_string(v)) {
		json_t *copy = json_stringn(json_string_value(v), json_string_length(v));
		json_decref(copy);
		return copy == NULL; /* jansson validates */
	}
	if (json_is_array(v)) {
		json_array_foreach(v, i, c)
		{
			if (has_non_utf8(c))
				return 1;
		}
	}
	if (json_is_object(v)) {
		json_object_foreach(v, key, c)
		{
			if (has_non_utf8(c))
				return 1;
		}
	}
	return 0;
}

/* Names and the method go as XML text (U+FFFE/U+FFFF as byte references);
 * the parsers hand out valid UTF-8 only, so what cannot go is a control
 * byte other than \t \n \r. */
static int name_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

/* Whether some member name in v cannot be XML text. */
static int has_bad_name(json_t *v)
{
	const char *key;
	size_t klen, i;
	json_t *c;

	if (json_is_array(v)) {
		json_array_foreach(v, i, c)
		{
			if (has_bad_name(c))
				return 1;
		}
	}
	if (json_is_object(v)) {
		json_object_keylen_foreach(v, key, klen, c)
		{
			if (!name_ok(key, klen) || has_bad_name(c))
				return 1;
		}
	}
	return 0;
}

static int xml_method_ok(const char *m)
{
	size_t n = strlen(m);
	return n && name_ok(m, n) && !strchr(" \t\r\n", m[0]) && !strchr(" \t\r\n", m[n - 1]);
}

/* v with true/false as 1/0, as XML-RPC brings them back (new reference). */
static json_t *bools_as_ints(json_t *v)
{
	const char *key;
	size_t klen, i;
	json_t *c, *out;

	if (json_is_boolean(v))
		return json_integer(json_is_true(v));
	if (json_is_array(v)) {
		out = json_array();
		json_array_foreach(v, i, c)
		{
			json_array_append_new(out, bools_as_ints(c));
		}
		return out;
	}
	if (json_is_object(v)) {
		out = json_object();
		json_object_keylen_foreach(v, key, klen, c)
		{
			json_object_setn_new_nocheck(out, key, klen, bools_as_ints(c));
		}
		return out;
	}
	return json_incref(v);
}

static void encode_parse(const struct rpc_request *req, enum rpc_format fmt)
{
	struct buf out;
	struct err e = {0};
	struct rpc_request back;

	buf_init(&out, 64u << 20);
	check(buf_puts(&out, "  ", &e) == 0, "buf_puts");
	int rc = rpc_encode_call(&out, fmt, req->method, req->id, req->params, &e);
	if (rc != 0) {
		check(out.len == 2 && e.code == EINVAL && e.msg[0], "failure leaves the buffer");
		check(fmt != req->format, "own format always encodes");
		if (fmt == RPC_FORMAT_JSON)
			check(has_non_utf8(req->params), "JSON fails only for non-UTF-8");
		else
			check(!xml_method_ok(req->method) || has_bad_name(req->params),
			      "XML fails only for a method or name XML cannot carry");
		buf_free(&out);
		return;
	}
	/* the two leading spaces exercise rpc_parse's whitespace skip */
	check(rpc_parse(out.data, out.len, &back, &e) == 0, "encoded call parses");
	check(back.format == fmt, "format");
	check(!strcmp(back.method, req->method), "same method");
	if (fmt == RPC_FORMAT_JSON)
		check(req->id ? back.id && !strcmp(back.id, req->id) : !back.id, "same id");
	else
		check(!back.id, "no id in XML");
	json_t *want =
	    fmt == RPC_FORMAT_XML ? bools_as_ints(req->params) : json_incref(req->params);
	check(json_equal(back.params, want), "same params");
	json_decref(want);
	rpc_request_free(&back);
	buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_request req;
	struct err e = {0};

	if (rpc_parse((const char *)data, size, &req, &e) != 0)
		return 0;
	encode_parse(&req, req.format);
	encode_parse(&req, req.format == RPC_FORMAT_JSON ? RPC_FORMAT_XML : RPC_FORMAT_JSON);
	rpc_request_free(&req);
	return 0;
}
