/*
 * rpc_call.h - request bodies: the reverse of rpc_parse(), for a proxy that
 * forwards a parsed request after changing a param, in the format the
 * client used.
 *
 * Contract: for every request R that rpc_parse() accepts,
 * rpc_parse(rpc_encode_call(R.format, R.method, R.id, R.params)) gives the
 * same method, the same id (JSON; XML-RPC has none) and json_equal params.
 * Across formats the conversions of rpc.h apply (JSON true/false come back
 * from XML-RPC as 0/1), and some requests cannot cross at all (see below).
 *
 * JSON: {"method":"M","params":{...},"id":"ID"}, compact, the id member left
 *   out when id is NULL and always written as a string. Strings may hold NUL
 *   bytes (\u0000) but must be valid UTF-8: JSON has no way to carry other
 *   bytes, so a string that is not (only possible in params read from an
 *   XML-RPC <base64>) fails the call with EINVAL.
 * XML: <?xml version="1.0" encoding="UTF-8"?> and a methodCall in
 *   xmlrpc-epi's newline-per-element layout. A string for which
 *   rpc_xml_text_ok() holds goes as <string> (& < > escaped, CR as &#13; so
 *   that no XML reader normalizes it); any other string as <base64>, which
 *   rpc_parse_xml() decodes back to the same bytes. Integers: <int> within
 *   int32, else <i8>; reals: <double> in the shortest form that reads back
 *   as the same double; true/false: <boolean>; null: <nil/>; arrays:
 *   <array><data>; objects: <struct>, member order kept. Member names and
 *   the method cannot be base64: there U+FFFE and U+FFFF go as byte
 *   references (&#239;&#191;&#190;, read back as bytes by rpc.h's &#NNN;
 *   rule), and a name or method that is not valid UTF-8 or holds a control
 *   byte other than \t \n \r, or a method that is empty or starts or ends
 *   with whitespace (the parser trims it), fails the call with EINVAL.
 *
 * params: an object (NULL means an empty one), borrowed, not modified;
 * nested at most RPC_MAX_DEPTH levels counting the request's root (as the
 * parsers count), deeper fails with EINVAL. method: NUL-terminated, not
 * NULL. id: NUL-terminated or NULL, ignored by XML-RPC.
 *
 * The body is appended to out. On failure (EINVAL as above, E2BIG from the
 * buffer's cap, ENOMEM) *err is set and the buffer is left as it was.
 */
#ifndef VC_RPC_CALL_H
#define VC_RPC_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "err.h"
#include "rpc.h"

int rpc_encode_call(struct buf *out, enum rpc_format fmt, const char *method, const char *id,
		    const json_t *params, struct err *err);

/* Whether XML-RPC character data carries s[0..n) unchanged: valid UTF-8 and
 * only characters XML 1.0 allows (no bytes < 0x20 but \t \n \r, no U+FFFE or
 * U+FFFF). s may be NULL when n is 0. */
bool rpc_xml_text_ok(const char *s, size_t n);

#endif
