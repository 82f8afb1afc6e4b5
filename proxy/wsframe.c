#include "wsframe.h"

#include <errno.h>
#include <string.h>

#define OP_CONT	 0x0
#define OP_TEXT	 0x1
#define OP_BIN	 0x2
#define OP_CLOSE 0x8
#define OP_PONG	 0xA

void wsframe_rw_init(struct wsframe_rw *rw, wsframe_rewrite_fn fn, void *ctx)
{
	memset(rw, 0, sizeof *rw);
	rw->fn = fn;
	rw->ctx = ctx;
	buf_init(&rw->held, WSFRAME_REWRITE_MAX);
}

void wsframe_rw_free(struct wsframe_rw *rw)
{
	buf_free(&rw->held);
	rw->hdr_len = 0;
	rw->in_payload = rw->holding = false;
}

size_t wsframe_rw_pending(const struct wsframe_rw *rw)
{
	return rw->hdr_len + (rw->holding ? rw->held.len : 0);
}

static int fail(struct wsframe_rw *rw, struct err *err, const char *what)
{
	rw->failed = true;
	return err_set(err, EPROTO, "websocket from worker: %s", what);
}

static int emit(struct wsframe_rw *rw, struct buf *out, const void *p, size_t n, struct err *err)
{
	if (buf_append(out, p, n, err) < 0) {
		rw->failed = true;
		return err_wrap(err, "relaying websocket to browser");
	}
	return 0;
}

/* Bytes of header implied by its first two bytes. */
static size_t header_size(const unsigned char *h)
{
	size_t len7 = h[1] & 0x7F;
	return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((h[1] & 0x80) ? 4 : 0);
}

/* What the first two bytes alone make invalid, or NULL. */
static const char *check_start(const unsigned char *h)
{
	unsigned op = h[0] & 0x0F;
	if (h[0] & 0x70)
		return "RSV bits set";
	if ((op > OP_BIN && op < OP_CLOSE) || op > OP_PONG)
		return "reserved opcode";
	if (h[1] & 0x80)
		return "masked frame";
	if (op >= OP_CLOSE && (!(h[0] & 0x80) || (h[1] & 0x7F) > 125))
		return "fragmented or oversized control frame";
	return NULL;
}

/* Header complete: decide between holding the frame for fn and streaming it. */
static int start_frame(struct wsframe_rw *rw, struct buf *out, struct err *err)
{
	const unsigned char *h = rw->hdr;
	bool fin = h[0] & 0x80;
	unsigned op = h[0] & 0x0F;
	uint64_t len = h[1] & 0x7F;
	if (len == 126) {
		len = (uint64_t)h[2] << 8 | h[3];
	} else if (len == 127) {
		len = 0;
		for (int i = 2; i < 10; i++)
			len = len << 8 | h[i];
		if (len >> 63)
			return fail(rw, err, "64-bit length with the top bit set");
	}
	if (op == OP_CONT) {
		if (!rw->fragmented)
			return fail(rw, err, "continuation frame without a message");
		rw->fragmented = !fin;
	} else if (op < OP_CLOSE) {
		if (rw->fragmented)
			return fail(rw, err, "new message inside a fragmented one");
		rw->fragmented = !fin;
	}
	rw->remaining = len;
	rw->in_payload = true;
	rw->holding = op == OP_TEXT && fin && len <= WSFRAME_REWRITE_MAX;
	if (rw->holding) {
		buf_reset(&rw->held);
		return 0;
	}
	size_t n = rw->hdr_len;
	rw->hdr_len = 0;
	return emit(rw, out, rw->hdr, n, err);
}

static void put_header(unsigned char *h, size_t *n, size_t len)
{
	h[0] = 0x80 | OP_TEXT;
	if (len <= 125) {
		h[1] = (unsigned char)len;
		*n = 2;
	} else if (len <= 0xFFFF) {
		h[1] = 126;
		h[2] = (unsigned char)(len >> 8);
		h[3] = (unsigned char)len;
		*n = 4;
	} else {
		h[1] = 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
		*n = 10;
	}
}

/* The held frame is complete: offer it to fn, send it or its replacement. */
static int finish_held(struct wsframe_rw *rw, struct buf *out, struct err *err)
{
	struct buf repl;
	buf_init(&repl, WSFRAME_REPLACEMENT_MAX);
	const char *payload = rw->held.data ? rw->held.data : "";
	int rc = rw->fn ? rw->fn(rw->ctx, payload, rw->held.len, &repl) : 0;
	if (rc < 0) {
		buf_free(&repl);
		return fail(rw, err, "rewriting a text message failed");
	}
	if (rc > 0) {
		unsigned char h[WSFRAME_HEADER_MAX];
		size_t hn;
		put_header(h, &hn, repl.len);
		rc = emit(rw, out, h, hn, err) < 0 || emit(rw, out, repl.data, repl.len, err) < 0
			 ? -1
			 : 0;
	} else {
		rc = emit(rw, out, rw->hdr, rw->hdr_len, err) < 0 ||
			     emit(rw, out, rw->held.data, rw->held.len, err) < 0
			 ? -1
			 : 0;
	}
	buf_free(&repl);
	rw->hdr_len = 0;
	rw->holding = false;
	buf_reset(&rw->held);
	return rc;
}

int wsframe_rw_feed(struct wsframe_rw *rw, const void *in, size_t n, struct buf *out,
		    struct err *err)
{
	const unsigned char *p = in;
	size_t i = 0;
	if (rw->failed)
		return err_set(err, EPROTO, "websocket from worker: stream already failed");
	while (i < n) {
		if (!rw->in_payload) {
			size_t need = rw->hdr_len < 2 ? 2 : header_size(rw->hdr);
			size_t take = need - rw->hdr_len;
			if (take > n - i)
				take = n - i;
			memcpy(rw->hdr + rw->hdr_len, p + i, take);
			rw->hdr_len += take;
			i += take;
			if (rw->hdr_len == 2) {
				const char *bad = check_start(rw->hdr);
				if (bad)
					return fail(rw, err, bad);
			}
			if (rw->hdr_len < 2 || rw->hdr_len < header_size(rw->hdr))
				continue;
			if (start_frame(rw, out, err) < 0)
				return -1;
		} else {
			size_t take = n - i;
			if (take > rw->remaining)
				take = (size_t)rw->remaining;
			if (take) {
				int rc = rw->holding ? buf_append(&rw->held, p + i, take, err)
						     : emit(rw, out, p + i, take, err);
				if (rc < 0) {
					rw->failed = true;
					return -1;
				}
			}
			rw->remaining -= take;
			i += take;
		}
		if (rw->in_payload && rw->remaining == 0) {
			rw->in_payload = false;
			if (rw->holding && finish_held(rw, out, err) < 0)
				return -1;
		}
	}
	return 0;
}
