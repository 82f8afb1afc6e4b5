/*
 * httphead.h - strict, bounded HTTP/1.x head parser and rewriter for vpl-proxy.
 *
 * The proxy reads raw bytes (libwebsockets in raw mode), so it parses each request head from
 * a client and each response head from a worker itself, then writes a rewritten copy to the
 * other side. Everything after the head (a Content-Length body, a WebSocket, a web-app
 * connection) is the caller's business; this module only says where the head ends.
 *
 * Feeding (re-scan free, linear): zero the struct (httphead_init) and call httphead_parse
 * with the whole accumulated prefix of the stream each time more bytes arrive (e.g. the
 * caller's struct buf, which may move in memory between calls: only offsets are kept).
 * The bytes already passed must not change. The work is linear in the head's size however
 * it is split (no re-scan from the start), and complete lines are checked as they arrive,
 * so bad input is refused as soon as its line ends. Returns:
 *    1  the head is complete: h is filled, h->head_len bytes (through the final CRLFCRLF)
 *       were the head and data[h->head_len .. len) is the start of the body / tunnel
 *       (for a 1xx response, of the next head: parse it into a fresh struct); later
 *       calls return 1 again without looking at data;
 *    0  more bytes are needed (h's members mean nothing yet: read them only after 1);
 *   -1  refused; err->code is the HTTP status the proxy answers to its client (below);
 *       later calls return -1 again with the same code.
 *
 * Strict grammar (RFC 9112, minus everything old or ambiguous):
 *   - Lines end in CRLF; a bare LF or a CR anywhere else is refused (400).
 *   - Request line: METHOD SP target SP "HTTP/1." ("0" | "1"): the method is a token; the
 *     target is origin form (starts with '/', visible ASCII 0x21-0x7E only), so absolute
 *     form, authority form (CONNECT) and "*" are refused (400). "HTTP/d.d" other than 1.0 and
 *     1.1 (HTTP/2.0, HTTP/1.2, ...) is 505; any other version text is 400. No empty line may
 *     precede the request line.
 *   - Status line: "HTTP/1.0" | "HTTP/1.1", SP, three digits 100-599, then SP and a reason
 *     phrase (HT, SP, VCHAR, obs-text) or nothing ("HTTP/1.1 200" is accepted).
 *   - Field line: token ':' OWS value OWS. Whitespace before ':' (400), an empty name (400),
 *     a line starting with SP or HT (obs-fold, 400), a value byte that is a CTL other than
 *     HT (NUL, CR, DEL, ...: 400) are refused. Values keep obs-text (0x80-0xFF).
 *   - Limits: the head including its final CRLFCRLF is at most HTTPHEAD_MAX_BYTES (more: 413,
 *     as the reference jail answers "Http headers too large"); at most HTTPHEAD_MAX_FIELDS
 *     field lines (more: 431). The 413 comes as soon as HTTPHEAD_MAX_BYTES bytes are there
 *     without the head's end, so the caller never needs to hold more than that.
 *   - Content-Length: 1 to 18 digits only (no sign, no list, no inner space; longer: 400),
 *     every copy equal (else 400). Transfer-Encoding together with Content-Length: 400.
 *   - Transfer-Encoding is a comma list of bare tokens (a parameter, "chunked;x=1": 400).
 *   - Transfer-Encoding in a request: HTTP/1.0 400; a list whose last coding is not "chunked"
 *     or with "chunked" twice: 400; other codings before "chunked" (gzip, chunked): 501;
 *     exactly "chunked": accepted with h->chunked set. THE CALLER decides then: an RPC or any
 *     request whose body the proxy reads must be answered 501 (the worker, like the reference,
 *     has no chunked bodies); a tunnelled request (web-app pass-through) may go through as
 *     is, since everything after the head goes to the same worker and never to another.
 *   - Host: more than one 400; none in an HTTP/1.1 request 400 (RFC 9112 3.2).
 *   In a response head every refusal has code 502 (the proxy answers its client 502 Bad
 *   Gateway); a response may be chunked (h->chunked when its last coding is "chunked") but
 *   never carry both Transfer-Encoding and Content-Length. An allocation failure is 500.
 *   Misuse (parsing into a struct with a different `response`, a shorter prefix than before)
 *   is 500.
 *
 * Meaning extracted on completion (everything else is left to httphead_get):
 *   content_length     the Content-Length value, -1 when absent;
 *   chunked            see above;
 *   expect_continue    an Expect field equal to "100-continue" (case-insensitive);
 *   upgrade_websocket  an Upgrade field lists the token "websocket" (case-insensitive),
 *                      whatever Connection says: the worker dispatches on Upgrade alone, so
 *                      the proxy must too (the method still has to be checked: GET);
 *   connection_close   a Connection field lists "close".
 *
 * Ownership: h owns one allocation, a copy of the head made on completion; every pointer in
 * h (method, target, fields) points into it, NUL-terminated as a whole but not per field:
 * use the lengths. The copy lives until httphead_free, so a struct httphead may be moved
 * once complete, and `data` may be freed as soon as httphead_parse returns. Not thread-safe;
 * no global state.
 */
#ifndef VC_HTTPHEAD_H
#define VC_HTTPHEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define HTTPHEAD_MAX_BYTES  (16 * 1024)
#define HTTPHEAD_MAX_FIELDS 64

struct httphead_field {
	const char *name; /* as received (case kept), name_len bytes */
	size_t name_len;
	const char *value; /* without the leading and trailing OWS */
	size_t value_len;
};

/* Parser progress; private to httphead.c. Offsets fit 16 bits: a head is <= 16 KiB. */
struct httphead_state {
	char *copy;    /* owned: head_len + 1 bytes once complete, else NULL */
	size_t scan;   /* stream bytes examined so far: the LF search resumes here */
	size_t line;   /* offset of the line being read */
	int phase;     /* where the parser is (enum in httphead.c); 0 = fresh */
	int fail_code; /* the status of the refusal, once refused */
	bool response; /* what the first call asked for */
	uint16_t method_len, target_off, start_end;
	uint16_t name_off[HTTPHEAD_MAX_FIELDS]; /* where field line i starts */
	uint16_t value_off[HTTPHEAD_MAX_FIELDS];
};

struct httphead {
	bool is_response;
	/* request */
	const char *method;
	size_t method_len;
	const char *target;
	size_t target_len;
	/* response */
	int status;
	int minor_version; /* HTTP/1.x */
	struct httphead_field fields[HTTPHEAD_MAX_FIELDS];
	size_t nfields;
	size_t head_len;	  /* bytes consumed, including the final CRLFCRLF */
	long long content_length; /* -1 when absent */
	bool chunked, expect_continue, upgrade_websocket, connection_close;
	struct httphead_state priv;
};

/* Readies h for a new head (same as zeroing it). */
void httphead_init(struct httphead *h);
/* Releases the copy and readies h for a new head; safe on any initialised h, twice too. */
void httphead_free(struct httphead *h);

/* See the top of this file: 1 complete, 0 more bytes needed, -1 refused (err->code = status).
 * `data` is the whole stream prefix received so far, len bytes, not NUL-terminated. */
int httphead_parse(struct httphead *h, bool response, const char *data, size_t len,
		   struct err *err);

/* The first field named `name` (case-insensitive), or NULL. h must be complete. */
const struct httphead_field *httphead_get(const struct httphead *h, const char *name);

/*
 * The value of cookie `name` (case-sensitive, as RFC 6265 cookie names are), or NULL.
 * Request: searched among the pairs of every Cookie field, split at ';' with the OWS around
 * names and values ignored; the first match wins (the write edit below rewrites every
 * match, so the worker never sees a value the proxy did not route on). Response: the first
 * Set-Cookie field whose cookie-pair (before the first ';') has that name. The value is
 * returned as sent (quotes kept), not NUL-terminated: *len bytes.
 */
const char *httphead_cookie(const struct httphead *h, const char *name, size_t *len);

/* What httphead_write changes; a NULL member (or a NULL edit) changes nothing. */
struct httphead_edit {
	/* Replaces the request target; same rule as parsed targets (origin form, 0x21-0x7E). */
	const char *target;
	size_t target_len;
	/* Replaces the value of cookie `cookie_name` (a token) in every pair of every Cookie
	 * field of a request, or in every Set-Cookie field of a response whose cookie-pair has
	 * that name (attributes kept). The value must be cookie-octets (RFC 6265: no CTL, SP,
	 * '"', ',', ';', '\\'); it may be empty. */
	const char *cookie_name;
	const char *cookie_value;
	size_t cookie_value_len;
	/* Field names to drop (case-insensitive), NULL-terminated list. */
	const char *const *drop;
	/* Field lines "Name: value\r\n"... added before the final CRLF, built by the caller;
	 * still checked line by line against the field-line grammar above. */
	const char *add;
};

/*
 * Appends the head of h, edited by e, to `out`: the start line, then every field line not
 * dropped in the order received, then `add`, then CRLF. What is not edited is copied byte
 * for byte (names' case, OWS, duplicates), so with no edit the output equals the head bytes
 * that were parsed. The output parses again with the same meaning (it may exceed
 * HTTPHEAD_MAX_BYTES or _FIELDS by what `add` adds). Returns 0, or -1 with err->code EINVAL
 * (h not complete, a target edit on a response, an edit value that fails its rule above)
 * or E2BIG (out's cap); on failure out is left as it was.
 */
int httphead_write(const struct httphead *h, const struct httphead_edit *e, struct buf *out,
		   struct err *err);

#endif
