/*
 * rpc_result.h - response bodies read back into rpc_encode()'s member list,
 * for a proxy that rewrites a worker's response (tickets, ports) and sends
 * it on in the reference layout.
 *
 * Contract: for every member list M that rpc_encode() accepts with at most
 * RPC_RESULT_MAX_MEMBERS members and distinct names (distinct after the XML
 * encoder's drops),
 *   rpc_encode(fmt, id, rpc_parse_result(rpc_encode(fmt, id, M)))
 * is byte-identical to rpc_encode(fmt, id, M): strings come back as the
 * encoder wrote them (with its replacements and drops), ints exactly (XML
 * ints beyond int32 as the <double> the encoder wrote, which encodes again
 * to the same text; 2^63 reads as INT64_MAX).
 *
 * Accepted beyond rpc_encode()'s output ("first non-whitespace byte '<'
 * means XML", as rpc_parse):
 *  JSON: a root object with a "result" object of scalar members and the
 *    optional "jsonrpc" (a string) and "id" (string or number; null counts
 *    as absent). Member values: strings (NUL bytes allowed), integers,
 *    true/false (1/0), reals holding an integral value within int64.
 *  XML: methodResponse/params/param/[value/]struct, the declaration
 *    optional; member values <string>, untyped text, <int>/<i4>/<i8>,
 *    <boolean> (1/0), <double> holding an integral value (rpc_encode writes
 *    ints beyond int32 that way). Strings and names must be text XML-RPC can
 *    carry as is (rpc_xml_text_ok), so that they survive re-encoding.
 * Rejected with -1 and a message ("JSON parse error: ...", "XML-RPC parse
 * error: ..."): faults and JSON-RPC errors, nested structs or arrays,
 * <base64>, <nil/>, null, non-integral or out-of-range doubles, duplicate
 * member names, more than RPC_RESULT_MAX_MEMBERS members, unknown root
 * members, bad nesting, and what the request parsers refuse (DTDs,
 * entities, deep nesting, malformed documents).
 *
 * Ownership: rpc_parse_result() overwrites *res without reading it; on
 * success res owns members[] and every name and string value in it (owned
 * copies, NUL-terminated, strings may hold NUL: use slen) and id; on failure
 * *res is left zeroed with format set. rpc_result_free() releases all of it
 * and is safe on a zeroed or already-freed result. res->members can be
 * passed straight to rpc_encode(out, res->format, res->id, res->members,
 * res->n, err).
 */
#ifndef VC_RPC_RESULT_H
#define VC_RPC_RESULT_H

#include <stddef.h>

#include "err.h"
#include "rpc.h"

#define RPC_RESULT_MAX_MEMBERS 64

struct rpc_result {
	enum rpc_format format;
	char *id;		    /* JSON id as text, NULL for XML or absent */
	struct rpc_member *members; /* owned: names and string values are owned copies */
	size_t n;
};

int rpc_parse_result(const char *body, size_t len, struct rpc_result *res, struct err *err);
void rpc_result_free(struct rpc_result *res);

/* The member called name, or NULL; valid until the result is changed or
 * freed. */
const struct rpc_member *rpc_result_get(const struct rpc_result *res, const char *name);

/* Replace the value of an existing member, keeping its place: the type
 * becomes string (a copy of s[0..len), s may be NULL when len is 0) or int.
 * Return 1 when replaced, 0 when there is no such member (nothing added),
 * -1 with *err set when out of memory (the member is then unchanged). */
int rpc_result_set_str(struct rpc_result *res, const char *name, const char *s, size_t len,
		       struct err *err);
int rpc_result_set_int(struct rpc_result *res, const char *name, long long v, struct err *err);

#endif
