/*
 * rpc.h - the VPL jail RPC codecs: JSON-RPC and XML-RPC in, the reference
 * server's exact response layouts out (shared/docs/vpl-jail-protocol.md
 * §1.3-1.4, §2).
 *
 * Both parsers produce one representation, a jansson tree, so the method
 * handlers never care which wire format arrived:
 *   XML <struct> -> JSON object, <array> -> array, <int>/<i4>/<i8> -> integer,
 *   <double> -> real, <boolean> -> integer 0/1, <string>/untyped -> string,
 *   <base64> -> string of the decoded bytes, <nil/> -> null.
 * Strings may hold arbitrary bytes (including NUL); use json_string_length().
 *
 * Ownership: rpc_parse*() fill a caller-provided struct rpc_request whose
 * members it owns; rpc_request_free() releases them (safe on a zeroed or
 * already-freed request). Encoders append to a caller-owned struct buf.
 * (Clarification: rpc_parse*() overwrite *req without reading it, so it
 * need not be initialized; on failure it is left zeroed, with nothing to
 * free, and format set.)
 *
 * Hostile input: bodies come from the network. The parsers are bounded
 * (nesting depth RPC_MAX_DEPTH, no DTDs, no external or internal entity
 * expansion, no network access) and fail with a message suitable for the
 * 400 response detail ("JSON parse error: ...", "XML-RPC parse error: ...").
 */
#ifndef VC_RPC_H
#define VC_RPC_H

#include <jansson.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"

#define RPC_MAX_DEPTH 64

enum rpc_format { RPC_FORMAT_JSON, RPC_FORMAT_XML };

struct rpc_request {
	enum rpc_format format;
	char *method;	/* NUL-terminated, never NULL after a successful parse */
	char *id;	/* JSON: the id as text (string ids verbatim, numbers in
			   decimal); NULL for XML-RPC or when absent */
	json_t *params; /* always a JSON object after a successful parse (the
			   JSON "params" object, or the XML-RPC single struct
			   param; an empty object when there are none) */
};

/* Picks the codec like the reference (first byte '<' means XML-RPC), except
 * that leading ASCII whitespace is skipped first. (Clarification: "ASCII
 * whitespace" here is space, tab, CR and LF, the whitespace of both XML and
 * JSON; the XML parser gets the body from the '<' on, the JSON parser all of
 * it.) */
int rpc_parse(const char *body, size_t len, struct rpc_request *req, struct err *err);

/* JSON: root must be an object with "method" (string) and "params" (object,
 * or an empty array meaning an empty object); "id" (string or number) and
 * "jsonrpc" are optional; other root members are an error (the reference is
 * stricter: it wants exactly method/params/id [+jsonrpc]).
 * (Clarification, as implemented: duplicate keys anywhere are an error; a
 * null id counts as absent; "jsonrpc" must be a string, any value; a method
 * or string id containing NUL is an error.) */
int rpc_parse_json(const char *body, size_t len, struct rpc_request *req, struct err *err);

/* XML-RPC: a methodCall with methodName and params; the <?xml?> declaration
 * is optional. Zero params gives an empty object; the first param must be a
 * struct. Decimal character references in 128..255 inside a string are first
 * taken as single bytes (xmlrpc-epi escapes UTF-8 byte by byte); if the
 * string is then not valid UTF-8 they are taken as code points instead.
 * (Clarification, as implemented: "a string" is each string value, member
 * name and the methodName; CRs inside elements are kept, not normalized to
 * LF as XML 1.0 would; the body is always read as UTF-8; an empty array as
 * the first param counts as an empty struct; later params are ignored.) */
int rpc_parse_xml(const char *body, size_t len, struct rpc_request *req, struct err *err);

void rpc_request_free(struct rpc_request *req);

/*
 * Typed parameter access. Each returns 1 when found with a usable type, 0
 * when absent (or JSON null), -1 with *err set when present with a type
 * that cannot be used.
 *  - ints: integers; reals (truncated); booleans (0/1); strings holding an
 *    optional sign and decimal digits (Moodle sends DB values as strings).
 *  - strings: strings only. *len gets the byte length; the pointer stays
 *    valid while req lives.
 *  - maps: objects; an empty array counts as an empty object (PHP encodes an
 *    empty map as []). *obj is a borrowed reference.
 *    (Clarification: for [] rpc_get_map replaces the member of req->params
 *    by a new empty object and returns that, so it lives as long as req.)
 * (Clarification: *out, *s, *len and *obj are only written when 1 is
 * returned.)
 */
int rpc_get_int(const struct rpc_request *req, const char *name, long long *out, struct err *err);
int rpc_get_str(const struct rpc_request *req, const char *name, const char **s, size_t *len,
		struct err *err);
int rpc_get_map(const struct rpc_request *req, const char *name, json_t **obj, struct err *err);

/* Converts a JSON value the way rpc_get_int does (for map values).
 * (Clarification: returns 1 with *out set, 0 for NULL or JSON null, -1 for
 * an unusable value; no error message.) */
int rpc_json_to_int(const json_t *v, long long *out);

/* One member of a result struct, in emission order. */
enum rpc_type { RPC_T_STR, RPC_T_INT };
struct rpc_member {
	const char *name;
	enum rpc_type type;
	const char *s; /* RPC_T_STR: bytes, may be invalid UTF-8 (program output) */
	size_t slen;
	long long i; /* RPC_T_INT */
};

/*
 * Appends a complete response body.
 * JSON: {"jsonrpc":"2.0","result":{...},"id":"<id>"} with no whitespace, id
 *   always a string ("" when NULL). Strings escaped as the reference: " \ /
 *   \b \f \n \r \t, other bytes < 0x20 and 0x7f as \u00XX, bytes >= 0x80 raw
 *   if they form valid UTF-8, each invalid byte replaced by U+FFFD.
 * XML: the reference layout (struct directly inside param), one member per
 *   "<member><name>N</name>\n<value><T>V</T></value>\n</member>\n". Ints
 *   within int32 as <int>; larger as <double> printed exactly ("%.0f" of the
 *   value, not the reference's lossy %lg). Strings: & < > ' " escaped as
 *   &amp; &lt; &gt; &apos; &quot;, invalid UTF-8 dropped (as the reference),
 *   and control bytes that XML 1.0 cannot carry (all < 0x20 except \t \n \r)
 *   dropped too, since PHP's decoder would reject the whole response.
 *   (Clarification: U+FFFE and U+FFFF are dropped for the same reason; \u00XX
 *   escapes use lowercase hex, like PHP. On failure, E2BIG from the buffer
 *   cap or EINVAL for a bad member/format, the buffer is left as it was.)
 */
int rpc_encode(struct buf *out, enum rpc_format fmt, const char *id, const struct rpc_member *m,
	       size_t n, struct err *err);

#endif
