#include "privsep.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void pmsg_put_u8(struct buf *b, uint8_t v)
{
	buf_append(b, &v, 1, NULL);
}

void pmsg_put_u32(struct buf *b, uint32_t v)
{
	unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
			      (unsigned char)(v >> 8), (unsigned char)v};
	buf_append(b, x, 4, NULL);
}

void pmsg_put_u64(struct buf *b, uint64_t v)
{
	pmsg_put_u32(b, (uint32_t)(v >> 32));
	pmsg_put_u32(b, (uint32_t)v);
}

void pmsg_put_bytes(struct buf *b, const void *p, size_t n)
{
	pmsg_put_u32(b, (uint32_t)n);
	if (n)
		buf_append(b, p, n, NULL);
}

void pmsg_put_str(struct buf *b, const char *s)
{
	pmsg_put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

static const unsigned char *take(struct pmsg_rd *r, size_t n)
{
	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	const unsigned char *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

uint8_t pmsg_get_u8(struct pmsg_rd *r)
{
	const unsigned char *p = take(r, 1);
	return p ? p[0] : 0;
}

uint32_t pmsg_get_u32(struct pmsg_rd *r)
{
	const unsigned char *p = take(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

uint64_t pmsg_get_u64(struct pmsg_rd *r)
{
	uint64_t hi = pmsg_get_u32(r);
	return hi << 32 | pmsg_get_u32(r);
}

const void *pmsg_get_bytes(struct pmsg_rd *r, size_t *n)
{
	size_t len = pmsg_get_u32(r);
	const unsigned char *p = take(r, len);
	*n = p ? len : 0;
	return p ? p : (const void *)"";
}

void pmsg_get_str(struct pmsg_rd *r, char *out, size_t n)
{
	size_t len;
	const char *p = pmsg_get_bytes(r, &len);
	out[0] = '\0';
	if (r->bad)
		return;
	if (len >= n || memchr(p, '\0', len)) {
		r->bad = true;
		return;
	}
	memcpy(out, p, len);
	out[len] = '\0';
}

bool pmsg_done(const struct pmsg_rd *r)
{
	return !r->bad && r->left == 0;
}

/* ---- channel ---- */

struct pchan {
	struct evloop *ev;
	int fd;
	struct ev_watch *w;
	struct buf in;
	struct buf out;
	size_t out_off; /* written part of out */
	size_t max_frame;
	pchan_msg_fn on_msg;
	pchan_err_fn on_error;
	void *arg;
	int dispatching; /* frames being handed out: a close waits until they are */
	bool closed;
	bool failed; /* on_error to call once the dispatch ends */
	char why[128];
};

static void fail(struct pchan *ch, const char *why)
{
	if (ch->closed)
		return;
	ch->closed = true;
	snprintf(ch->why, sizeof ch->why, "%s", why);
	if (ch->w) {
		ev_unwatch(ch->w);
		ch->w = NULL;
	}
	ch->failed = true;
	if (!ch->dispatching) {
		ch->failed = false;
		ch->on_error(ch->arg, ch->why);
	}
}

static int write_some(struct pchan *ch)
{
	while (ch->out_off < ch->out.len) {
		ssize_t n = write(ch->fd, ch->out.data + ch->out_off, ch->out.len - ch->out_off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			fail(ch, "the other process is gone (write)");
			return -1;
		}
		ch->out_off += (size_t)n;
	}
	if (ch->out_off == ch->out.len) {
		buf_reset(&ch->out);
		ch->out_off = 0;
	} else if (ch->out_off > (1u << 20) && ch->out_off > ch->out.len / 2) {
		memmove(ch->out.data, ch->out.data + ch->out_off, ch->out.len - ch->out_off);
		ch->out.len -= ch->out_off;
		ch->out_off = 0;
	}
	if (ch->w)
		ev_watch_set(ch->w, EV_READ | (ch->out.len ? EV_WRITE : 0));
	return 0;
}

static void dispatch_frames(struct pchan *ch)
{
	size_t off = 0;
	ch->dispatching++;
	while (!ch->closed && ch->in.len - off >= 4) {
		const unsigned char *p = (const unsigned char *)ch->in.data + off;
		size_t len = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
		if (len < 1 || len > ch->max_frame + 1) {
			fail(ch, "bad frame length from the other process");
			break;
		}
		if (ch->in.len - off - 4 < len)
			break;
		struct pmsg_rd rd = {p + 5, len - 1, false};
		off += 4 + len;
		ch->on_msg(ch->arg, (enum pmsg_type)p[4], &rd);
	}
	ch->dispatching--;
	if (!ch->closed && off) {
		memmove(ch->in.data, ch->in.data + off, ch->in.len - off);
		ch->in.len -= off;
	}
	if (ch->failed && !ch->dispatching) {
		ch->failed = false;
		ch->on_error(ch->arg, ch->why);
	}
}

static void on_fd(void *arg, int fd, unsigned events)
{
	struct pchan *ch = arg;
	if (events & EV_WRITE && write_some(ch) < 0)
		return;
	if (!(events & (EV_READ | EV_HUP)))
		return;
	/* A bounded number of reads per round: the loop has other work. */
	for (int i = 0; i < 16 && !ch->closed; i++) {
		if (buf_reserve(&ch->in, 65536, NULL) < 0) {
			/* only a frame over max_frame can fill the buffer this far */
			fail(ch, "frame too large from the other process");
			return;
		}
		ssize_t n = read(fd, ch->in.data + ch->in.len, ch->in.cap - ch->in.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0) {
			fail(ch, n == 0 ? "the other process closed the channel"
					: "the other process is gone (read)");
			return;
		}
		ch->in.len += (size_t)n;
		ch->in.data[ch->in.len] = '\0';
		dispatch_frames(ch);
	}
}

struct pchan *pchan_new(struct evloop *ev, int fd, size_t max_frame, size_t max_queued,
			pchan_msg_fn on_msg, pchan_err_fn on_error, void *arg, struct err *err)
{
	struct pchan *ch = calloc(1, sizeof *ch);
	if (!ch) {
		err_sys(err, ENOMEM, "allocating the privsep channel");
		return NULL;
	}
	ch->ev = ev;
	ch->fd = fd;
	ch->max_frame = max_frame;
	ch->on_msg = on_msg;
	ch->on_error = on_error;
	ch->arg = arg;
	buf_init(&ch->in, max_frame + 65536 + 8);
	buf_init(&ch->out, max_queued);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		err_sys(err, errno, "privsep channel: fcntl");
		free(ch);
		return NULL;
	}
	if (!(ch->w = ev_watch_fd(ev, fd, EV_READ, on_fd, ch, err))) {
		free(ch);
		return NULL;
	}
	return ch;
}

int pchan_send_raw(struct pchan *ch, enum pmsg_type type, const void *p, size_t n, struct err *err)
{
	if (ch->closed)
		return err_set(err, EPIPE, "the privsep channel is closed");
	if (n + 1 > UINT32_MAX)
		return err_set(err, E2BIG, "privsep message too large");
	unsigned char hdr[5] = {(unsigned char)((n + 1) >> 24), (unsigned char)((n + 1) >> 16),
				(unsigned char)((n + 1) >> 8), (unsigned char)(n + 1),
				(unsigned char)type};
	if (buf_reserve(&ch->out, sizeof hdr + n, err) < 0)
		return err_wrap(err, "privsep channel: %zu bytes queued",
				ch->out.len - ch->out_off);
	buf_append(&ch->out, hdr, sizeof hdr, NULL);
	if (n)
		buf_append(&ch->out, p, n, NULL);
	return write_some(ch) < 0 ? err_set(err, EPIPE, "the privsep channel is closed") : 0;
}

int pchan_send(struct pchan *ch, enum pmsg_type type, const struct buf *payload, struct err *err)
{
	return pchan_send_raw(ch, type, payload->data, payload->len, err);
}

size_t pchan_queued(const struct pchan *ch)
{
	return ch->out.len - ch->out_off;
}

bool pchan_open(const struct pchan *ch)
{
	return !ch->closed;
}

void pchan_flush(struct pchan *ch, int ms)
{
	while (!ch->closed && pchan_queued(ch)) {
		struct pollfd pfd = {ch->fd, POLLOUT, 0};
		if (poll(&pfd, 1, ms) <= 0)
			return;
		if (write_some(ch) < 0)
			return;
	}
}

void pchan_free(struct pchan *ch)
{
	if (!ch)
		return;
	if (ch->w)
		ev_unwatch(ch->w);
	close(ch->fd);
	buf_free(&ch->in);
	buf_free(&ch->out);
	free(ch);
}
