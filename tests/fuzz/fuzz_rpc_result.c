/*
 * fuzz_rpc_result.c - libFuzzer target: rpc_parse_result on arbitrary bytes;
 * whatever parses is encoded again (rpc_encode), parsed again and encoded
 * a third time, then rewritten the way the proxy does.
 *
 * Invariants (abort() on violation):
 *  - a failure sets a message and leaves the result empty;
 *  - a success has at most RPC_RESULT_MAX_MEMBERS members, no id in XML;
 *  - the re-encoded body parses, in the same format, to the same members
 *    (ints beyond int32 in XML as the double the encoder writes) and id;
 *  - encoding that again gives the same bytes;
 *  - rpc_result_set_str/set_int replace in place and the result still
 *    encodes and parses.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc.h"
#include "rpc_result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

static void encode(const struct rpc_result *res, struct buf *out)
{
	struct err e = {0};

	buf_init(out, 64u << 20);
	check(rpc_encode(out, res->format, res->id, res->members, res->n, &e) == 0, "encode");
}

static void same_members(const struct rpc_result *a, const struct rpc_result *b)
{
	check(a->format == b->format, "same format");
	check(a->n == b->n, "same member count");
	if (a->format == RPC_FORMAT_JSON)
		check(!strcmp(a->id ? a->id : "", b->id ? b->id : ""), "same id");
	else
		check(!b->id, "no id in XML");
	for (size_t k = 0; k < a->n; k++) {
		const struct rpc_member *x = &a->members[k], *y = &b->members[k];
		check(!strcmp(x->name, y->name), "same name");
		check(x->type == y->type, "same type");
		if (x->type == RPC_T_STR) {
			check(x->slen == y->slen && !memcmp(x->s, y->s, x->slen), "same string");
			check(x->s[x->slen] == '\0' && y->s[y->slen] == '\0', "NUL-terminated");
		} else if (a->format == RPC_FORMAT_JSON ||
			   (x->i >= INT32_MIN && x->i <= INT32_MAX)) {
			check(x->i == y->i, "same int");
		} else {
			check((double)x->i == (double)y->i, "same int as a double");
		}
	}
}

/* Parses body, which must parse, into *res. */
static void reparse(const struct buf *body, struct rpc_result *res)
{
	struct err e = {0};

	check(rpc_parse_result(body->data, body->len, res, &e) == 0, "re-encoded body parses");
}

/* The proxy's rewrite: a suffix on the first string, a port on the first int. */
static void rewrite(struct rpc_result *res)
{
	struct err e = {0};

	for (size_t k = 0; k < res->n; k++) {
		const struct rpc_member *m = &res->members[k];
		char *name = strdup(m->name);
		check(name != NULL, "strdup");
		if (m->type == RPC_T_STR) {
			size_t n = m->slen;
			char *s = malloc(n + 2);
			check(s != NULL, "malloc");
			memcpy(s, m->s, n);
			memcpy(s + n, "07", 2);
			check(rpc_result_set_str(res, name, s, n + 2, &e) == 1, "set_str");
			free(s);
		} else {
			check(rpc_result_set_int(res, name, 8090, &e) == 1, "set_int");
		}
		check(rpc_result_get(res, name) == &res->members[k], "set keeps the place");
		free(name);
	}
	check(rpc_result_set_int(res, "\x01no such member", 1, &e) == 0, "set on absent");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rpc_result res, back, again;
	struct err e = {0};
	struct buf b1, b2;

	if (rpc_parse_result((const char *)data, size, &res, &e) != 0) {
		check(e.msg[0] && !res.members && !res.n && !res.id, "failure leaves it empty");
		return 0;
	}
	check(res.n <= RPC_RESULT_MAX_MEMBERS, "member bound");
	check(res.format == RPC_FORMAT_JSON || !res.id, "no id in XML");
	encode(&res, &b1);
	reparse(&b1, &back);
	same_members(&res, &back);
	encode(&back, &b2);
	check(b1.len == b2.len && !memcmp(b1.data, b2.data, b1.len), "byte-identical re-encoding");
	rewrite(&back);
	buf_free(&b2);
	encode(&back, &b2);
	reparse(&b2, &again);
	same_members(&back, &again);
	rpc_result_free(&again);
	rpc_result_free(&back);
	rpc_result_free(&res);
	buf_free(&b1);
	buf_free(&b2);
	return 0;
}
