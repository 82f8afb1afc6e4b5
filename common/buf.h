/*
 * buf.h - growable byte buffers with a hard cap (h2o's buffers, simplified).
 *
 * Contract: a buf owns `data`; buf_free() releases it. Every append checks
 * the cap given at init, so input read from the network can never grow past
 * what the caller allowed: an append that would exceed it fails with
 * code E2BIG and leaves the buffer unchanged. `data` is always NUL-terminated
 * (not counted in len) so it can be handed to string APIs, but the contents
 * may hold NUL bytes: use len.
 */
#ifndef VC_BUF_H
#define VC_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "err.h"

struct buf {
	char *data;
	size_t len;
	size_t cap; /* allocated, excluding the trailing NUL */
	size_t max; /* hard cap on len */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b); /* len = 0, keeps memory */

int buf_reserve(struct buf *b, size_t extra, struct err *err);
int buf_append(struct buf *b, const void *p, size_t n, struct err *err);
int buf_puts(struct buf *b, const char *s, struct err *err);
int buf_printf(struct buf *b, struct err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Hands the data over to the caller (who frees it) and resets b. */
char *buf_steal(struct buf *b, size_t *len);

#endif
