/*
 * wsframe.h - rewriting small text messages in a server->browser WebSocket byte stream.
 *
 * After the upgrade the proxy relays a WebSocket's bytes without terminating it. On the
 * monitor socket the worker's `run:browser:<ticket>` message must reach the browser with a
 * routed ticket (route.h), so that stream goes through a wsframe_rw: an incremental parser of
 * RFC 6455 server frames that hands each small complete text message to a callback and
 * passes every other byte through unchanged.
 *
 * What is offered to the callback: a text frame (opcode 1) with FIN=1 that does not continue
 * a fragmented message, of at most WSFRAME_REWRITE_MAX payload bytes. It is held until
 * complete. If the callback keeps it (0) the original bytes go out unchanged; if it rewrites
 * it (1) a new header is written (FIN=1, text, no mask, minimal length encoding) followed by
 * the replacement payload (at most WSFRAME_REPLACEMENT_MAX bytes). The callback sees the
 * payload as bytes; it is not checked for UTF-8 (the browser does that).
 *
 * Everything else - larger text frames, fragments, binary, control frames - streams through:
 * each header is held only until it is complete (<= 14 bytes), payload bytes are copied to
 * `out` as they arrive. So memory held is bounded by one header plus WSFRAME_REWRITE_MAX
 * (plus the callback's replacement while it runs) whatever the input.
 *
 * Refused (feed returns -1; the caller closes both sides): a masked frame (servers never
 * mask), RSV bits set (no extension is negotiated), a reserved opcode (3-7, 11-15), a 64-bit
 * length with the top bit set, a control frame with FIN=0 or more than 125 payload bytes,
 * a continuation frame outside a fragmented message or a new data frame inside one, a
 * callback error, or an append to `out` failing (its cap). Non-minimal length encodings are
 * accepted and kept as they are.
 *
 * Ownership and threads: a wsframe_rw belongs to one connection direction; it is not
 * thread-safe. wsframe_rw_free releases what it holds; `out` remains the caller's.
 */
#ifndef VC_WSFRAME_H
#define VC_WSFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"

#define WSFRAME_REWRITE_MAX	4096 /* payload bytes of a message offered to the callback */
#define WSFRAME_REPLACEMENT_MAX 8192 /* cap on the callback's replacement payload */
#define WSFRAME_HEADER_MAX	14   /* 2 + 8-byte length + 4-byte mask */

/*
 * Called with a complete small text message. Returns 1 to send `replacement` (empty, capped
 * at WSFRAME_REPLACEMENT_MAX, owned by the caller) as the new payload, 0 to keep the message,
 * -1 to fail the stream.
 */
typedef int (*wsframe_rewrite_fn)(void *ctx, const char *payload, size_t len,
				  struct buf *replacement);

struct wsframe_rw {
	wsframe_rewrite_fn fn;
	void *ctx;
	unsigned char hdr[WSFRAME_HEADER_MAX];
	size_t hdr_len;	    /* header bytes collected so far */
	uint64_t remaining; /* payload bytes still to come of the current frame */
	bool in_payload;    /* past the header of the current frame */
	bool holding;	    /* the current frame is being held for fn (payload in `held`) */
	bool fragmented;    /* inside a fragmented data message (a FIN=0 data frame was seen) */
	bool failed;	    /* a feed returned -1: every later feed does too */
	struct buf held;    /* payload of the held frame, capped at WSFRAME_REWRITE_MAX */
};

void wsframe_rw_init(struct wsframe_rw *rw, wsframe_rewrite_fn fn, void *ctx);
void wsframe_rw_free(struct wsframe_rw *rw);

/*
 * Parses n more bytes of the server's stream and appends to `out` everything that may go to
 * the browser now. Returns 0, or -1 with *err set (see "Refused" above); after -1 `out` may
 * hold bytes appended before the error, and the stream is dead.
 */
int wsframe_rw_feed(struct wsframe_rw *rw, const void *in, size_t n, struct buf *out,
		    struct err *err);

/* Bytes fed but not yet written to `out` (a partial header, a held frame). With a callback
 * that keeps everything, out bytes + pending == bytes fed. */
size_t wsframe_rw_pending(const struct wsframe_rw *rw);

#endif
