/*
 * ctr_client.c - see ctr_client.h for the contract.
 *
 * Internals: one grpc channel, one completion queue (next-style) drained by one pthread. Every
 * started grpc batch has a `struct tag` as its completion tag. The cq thread turns completions
 * into queue items (decoded replies, decoded events, status changes), appends them to a mutex-
 * protected FIFO and writes the eventfd. ctr_client_dispatch() pops the FIFO on the owner thread
 * and runs the callbacks. `active_tags` counts outstanding batches so that ctr_client_free() can
 * cancel everything and wait until grpc has given every tag back before it shuts the queue down.
 */
#include "ctr_client.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "github.com/containerd/containerd/api/services/events/v1/events.pb-c.h"
#include "google/protobuf/any.pb-c.h"

#define MAX_MSG_BYTES	(16 * 1024 * 1024)
#define SUB_BACKOFF_MIN 100
#define SUB_BACKOFF_MAX 2000
#define SUB_METHOD	"/containerd.services.events.v1.Events/Subscribe"

enum tag_kind { TAG_UNARY, TAG_SUB_SEND, TAG_SUB_RECV, TAG_SUB_STATUS };

struct tag {
	enum tag_kind kind;
	void *owner; /* struct ctr_op * or struct ctr_sub * */
};

/* Metadata sent with every call: namespace and optional lease. */
struct call_md {
	grpc_metadata md[2];
	size_t n;
};

/* One entry of the done FIFO. */
enum qkind { Q_UNARY, Q_EVENT };
struct qitem {
	struct qitem *next;
	enum qkind kind;
};

struct ctr_op {
	struct qitem q; /* first: (struct ctr_op *)qitem */
	struct tag tag;
	struct ctr_op *prev, *next; /* in-flight list, under mu */
	struct ctr_client *c;
	grpc_call *call;
	struct call_md md;
	grpc_byte_buffer *send_bb, *recv_bb;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	const char *error_string;
	const ProtobufCMessageDescriptor *reply_desc;
	ProtobufCMessage *reply;
	struct ctr_status st;
	ctr_cb cb;
	void *arg;
};

struct evitem {
	struct qitem q; /* first */
	struct ctr_sub *sub;
	enum ctr_event_kind kind;
	Containerd__Services__Events__V1__Envelope *env; /* owned, MESSAGE only */
	ProtobufCMessage *decoded;			 /* owned, may be NULL */
	struct ctr_status st;				 /* LOST only */
};

struct ctr_sub {
	struct ctr_client *c;
	struct ctr_sub *prev, *next; /* client's list, under mu */
	unsigned refs;		     /* user + active call + queued items; under mu */
	bool dead;		     /* unsubscribed (or client closing); under mu */
	ctr_event_cb cb;
	void *arg;
	uint8_t *req; /* packed SubscribeRequest, re-sent on every resubscription */
	size_t req_len;
	/* the current stream; touched by whoever starts it (under mu) and then by the cq thread */
	grpc_call *call;
	int tags_pending;
	struct call_md md;
	struct tag t_send, t_recv, t_status;
	grpc_byte_buffer *send_bb, *recv_bb;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	const char *error_string;
	bool got_msg;
	int64_t started_ms;
	int64_t retry_at_ms; /* 0 = no resubscription scheduled */
	int backoff_ms;
};

struct ctr_client {
	grpc_channel *ch;
	grpc_completion_queue *cq;
	pthread_t thread;
	bool thread_started;
	int efd;
	char *ns;
	char *lease;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool closing;
	int active_tags;	      /* outstanding grpc batches */
	struct ctr_op *inflight;      /* unary calls not yet completed by grpc */
	struct ctr_sub *subs;	      /* live subscriptions */
	struct qitem *qhead, **qtail; /* done FIFO */

	size_t pending; /* owner thread only: started calls whose callback has not run */
};

static const char *const code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *ctr_code_name(int code)
{
	if (code >= 0 && (size_t)code < sizeof code_names / sizeof code_names[0])
		return code_names[code];
	return "UNKNOWN_CODE";
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static gpr_timespec deadline_ms(int timeout_ms)
{
	if (timeout_ms < 0)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

/* ---- small helpers ---- */

static void md_init(struct call_md *m, const char *ns, const char *lease)
{
	m->n = 0;
	memset(m->md, 0, sizeof m->md);
	m->md[m->n].key = grpc_slice_from_static_string("containerd-namespace");
	m->md[m->n].value = grpc_slice_from_copied_string(ns);
	m->n++;
	if (lease && *lease) {
		m->md[m->n].key = grpc_slice_from_static_string("containerd-lease");
		m->md[m->n].value = grpc_slice_from_copied_string(lease);
		m->n++;
	}
}

static void md_free(struct call_md *m)
{
	for (size_t i = 0; i < m->n; i++) {
		grpc_slice_unref(m->md[i].key);
		grpc_slice_unref(m->md[i].value);
	}
	m->n = 0;
}

static grpc_byte_buffer *pack_bb(const ProtobufCMessage *msg, struct err *err)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	grpc_slice s = grpc_slice_malloc(len);
	protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
	grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
	grpc_slice_unref(s);
	if (!bb)
		err_set(err, ENOMEM, "grpc_raw_byte_buffer_create failed");
	return bb;
}

/* Decodes and destroys *bbp. Returns NULL if it cannot be decoded. */
static ProtobufCMessage *unpack_bb(grpc_byte_buffer **bbp, const ProtobufCMessageDescriptor *desc)
{
	grpc_byte_buffer_reader rd;
	ProtobufCMessage *m = NULL;
	if (grpc_byte_buffer_reader_init(&rd, *bbp)) {
		grpc_slice s = grpc_byte_buffer_reader_readall(&rd);
		m = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s),
					      GRPC_SLICE_START_PTR(s));
		grpc_slice_unref(s);
		grpc_byte_buffer_reader_destroy(&rd);
	}
	grpc_byte_buffer_destroy(*bbp);
	*bbp = NULL;
	return m;
}

static void fill_status(struct ctr_status *st, grpc_status_code code, grpc_slice details,
			const char *error_string)
{
	st->code = (int)code;
	size_t n = GRPC_SLICE_LENGTH(details);
	const char *p = (const char *)GRPC_SLICE_START_PTR(details);
	if (n == 0 && error_string && code != GRPC_STATUS_OK) {
		p = error_string;
		n = strlen(p);
	}
	if (n >= sizeof st->details)
		n = sizeof st->details - 1;
	if (n)
		memcpy(st->details, p, n);
	st->details[n] = '\0';
}

static void status_set(struct ctr_status *st, int code, const char *msg)
{
	st->code = code;
	snprintf(st->details, sizeof st->details, "%s", msg);
}

static void wake(struct ctr_client *c)
{
	uint64_t one = 1;
	ssize_t r;
	do
		r = write(c->efd, &one, sizeof one);
	while (r < 0 && errno == EINTR);
	/* EAGAIN means the counter is saturated: the fd is readable anyway. */
}

/* Under mu. */
static void enqueue_locked(struct ctr_client *c, struct qitem *q)
{
	q->next = NULL;
	*c->qtail = q;
	c->qtail = &q->next;
}

static void tag_done_locked(struct ctr_client *c)
{
	c->active_tags--;
	if (c->active_tags == 0)
		pthread_cond_broadcast(&c->cv);
}

/* ---- unary calls ---- */

static void op_free(struct ctr_op *op)
{
	if (op->call)
		grpc_call_unref(op->call);
	md_free(&op->md);
	if (op->send_bb)
		grpc_byte_buffer_destroy(op->send_bb);
	if (op->recv_bb)
		grpc_byte_buffer_destroy(op->recv_bb);
	grpc_metadata_array_destroy(&op->init_md);
	grpc_metadata_array_destroy(&op->trail_md);
	grpc_slice_unref(op->details);
	if (op->error_string)
		gpr_free((void *)op->error_string);
	if (op->reply)
		protobuf_c_message_free_unpacked(op->reply, NULL);
	free(op);
}

static struct ctr_op *op_new(struct ctr_client *c, const char *lease,
			     const ProtobufCMessageDescriptor *reply_desc, struct err *err)
{
	struct ctr_op *op = calloc(1, sizeof *op);
	if (!op) {
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	op->c = c;
	op->q.kind = Q_UNARY;
	op->tag.kind = TAG_UNARY;
	op->tag.owner = op;
	op->reply_desc = reply_desc;
	op->status = GRPC_STATUS_UNKNOWN;
	op->details = grpc_empty_slice();
	grpc_metadata_array_init(&op->init_md);
	grpc_metadata_array_init(&op->trail_md);
	md_init(&op->md, c->ns, lease);
	return op;
}

/* Creates the call on `cq` and starts the 6-op unary batch. */
static int op_start(struct ctr_client *c, struct ctr_op *op, grpc_completion_queue *cq,
		    const char *method, const ProtobufCMessage *req, int timeout_ms,
		    struct err *err)
{
	op->send_bb = pack_bb(req, err);
	if (!op->send_bb)
		return -1;
	grpc_slice m = grpc_slice_from_copied_string(method);
	op->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, m, NULL,
					    deadline_ms(timeout_ms), NULL);
	grpc_slice_unref(m);
	if (!op->call)
		return err_set(err, EIO, "grpc_channel_create_call(%s) failed", method);

	grpc_op ops[6];
	memset(ops, 0, sizeof ops);
	ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
	ops[0].data.send_initial_metadata.count = op->md.n;
	ops[0].data.send_initial_metadata.metadata = op->md.md;
	ops[1].op = GRPC_OP_SEND_MESSAGE;
	ops[1].data.send_message.send_message = op->send_bb;
	ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
	ops[3].data.recv_initial_metadata.recv_initial_metadata = &op->init_md;
	ops[4].op = GRPC_OP_RECV_MESSAGE;
	ops[4].data.recv_message.recv_message = &op->recv_bb;
	ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
	ops[5].data.recv_status_on_client.trailing_metadata = &op->trail_md;
	ops[5].data.recv_status_on_client.status = &op->status;
	ops[5].data.recv_status_on_client.status_details = &op->details;
	ops[5].data.recv_status_on_client.error_string = &op->error_string;
	grpc_call_error ce = grpc_call_start_batch(op->call, ops, 6, &op->tag, NULL);
	if (ce != GRPC_CALL_OK)
		return err_set(err, EIO, "grpc_call_start_batch(%s) failed: %d", method, (int)ce);
	return 0;
}

/* Turns a completed unary batch into st + reply. */
static void op_finish(struct ctr_op *op, bool success)
{
	if (!success && op->status == GRPC_STATUS_OK)
		op->status = GRPC_STATUS_UNKNOWN;
	fill_status(&op->st, op->status, op->details, op->error_string);
	if (op->st.code == CTR_OK) {
		if (!op->recv_bb) {
			status_set(&op->st, CTR_INTERNAL, "reply without message");
		} else {
			op->reply = unpack_bb(&op->recv_bb, op->reply_desc);
			if (!op->reply)
				status_set(&op->st, CTR_INTERNAL, "cannot decode reply");
		}
	}
	grpc_call_unref(op->call);
	op->call = NULL;
}

static void on_unary(struct ctr_client *c, struct ctr_op *op, bool success)
{
	op_finish(op, success);
	pthread_mutex_lock(&c->mu);
	if (op->prev)
		op->prev->next = op->next;
	else
		c->inflight = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
	enqueue_locked(c, &op->q);
	tag_done_locked(c);
	pthread_mutex_unlock(&c->mu);
	wake(c);
}

int ctr_call_lease(struct ctr_client *c, const char *lease, const char *full_method,
		   const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
		   int timeout_ms, ctr_cb cb, void *arg, struct err *err)
{
	if (!c || !full_method || !req || !reply_desc || !cb || timeout_ms == 0)
		return err_set(err, EINVAL, "ctr_call: invalid argument");
	struct ctr_op *op = op_new(c, lease, reply_desc, err);
	if (!op)
		return -1;
	op->cb = cb;
	op->arg = arg;

	pthread_mutex_lock(&c->mu);
	if (c->closing) {
		pthread_mutex_unlock(&c->mu);
		op_free(op);
		return err_set(err, ECANCELED, "ctr_call(%s): client is closing", full_method);
	}
	op->next = c->inflight;
	if (c->inflight)
		c->inflight->prev = op;
	c->inflight = op;
	c->active_tags++;
	/* Started under mu so that ctr_client_free() never sees an op without its call. */
	int r = op_start(c, op, c->cq, full_method, req, timeout_ms, err);
	if (r < 0) {
		if (op->prev)
			op->prev->next = op->next;
		else
			c->inflight = op->next;
		if (op->next)
			op->next->prev = op->prev;
		tag_done_locked(c);
	}
	pthread_mutex_unlock(&c->mu);
	if (r < 0) {
		op_free(op);
		return -1;
	}
	c->pending++;
	return 0;
}

int ctr_call(struct ctr_client *c, const char *full_method, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *reply_desc, int timeout_ms, ctr_cb cb, void *arg,
	     struct err *err)
{
	return ctr_call_lease(c, c ? c->lease : NULL, full_method, req, reply_desc, timeout_ms, cb,
			      arg, err);
}

int ctr_call_sync(struct ctr_client *c, const char *full_method, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *reply_desc, int timeout_ms,
		  struct ctr_status *st, ProtobufCMessage **reply, struct err *err)
{
	return ctr_call_sync_lease(c, c ? c->lease : NULL, full_method, req, reply_desc, timeout_ms,
				   st, reply, err);
}

int ctr_call_sync_lease(struct ctr_client *c, const char *lease, const char *full_method,
			const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
			int timeout_ms, struct ctr_status *st, ProtobufCMessage **reply,
			struct err *err)
{
	if (reply)
		*reply = NULL;
	if (!c || !full_method || !req || !reply_desc || !st || timeout_ms == 0)
		return err_set(err, EINVAL, "ctr_call_sync: invalid argument");
	struct ctr_op *op = op_new(c, lease, reply_desc, err);
	if (!op)
		return -1;
	grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
	if (!cq) {
		op_free(op);
		return err_set(err, ENOMEM, "grpc_completion_queue_create_for_pluck failed");
	}
	int r = op_start(c, op, cq, full_method, req, timeout_ms, err);
	if (r == 0) {
		grpc_event ev = grpc_completion_queue_pluck(
		    cq, &op->tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
		op_finish(op, ev.type == GRPC_OP_COMPLETE && ev.success);
		*st = op->st;
		if (reply) {
			*reply = op->reply;
			op->reply = NULL;
		}
	}
	if (op->call) { /* start failed after the call was created */
		grpc_call_unref(op->call);
		op->call = NULL;
	}
	grpc_completion_queue_shutdown(cq);
	while (
	    grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
	    GRPC_QUEUE_SHUTDOWN)
		;
	grpc_completion_queue_destroy(cq);
	op_free(op);
	return r;
}

void ctr_reply_free(ProtobufCMessage *reply)
{
	if (reply)
		protobuf_c_message_free_unpacked(reply, NULL);
}

/* ---- blocking streams ---- */

struct ctr_stream {
	grpc_call *call;
	grpc_completion_queue *cq;
	struct call_md md;
	char *method;
	grpc_metadata_array init_md, trail_md;
	grpc_status_code status;
	grpc_slice details;
	const char *error_string;
	struct ctr_status st;
	bool got_init_md, send_closed, ended;
	int tag; /* address used as the (only) outstanding batch's tag */
};

int ctr_code_errno(int code)
{
	switch (code) {
	case CTR_OK:
		return 0;
	case CTR_NOT_FOUND:
		return ENOENT;
	case CTR_ALREADY_EXISTS:
		return EEXIST;
	case CTR_DEADLINE_EXCEEDED:
		return ETIMEDOUT;
	case CTR_UNAVAILABLE:
		return EAGAIN;
	case CTR_CANCELLED:
		return ECANCELED;
	case CTR_RESOURCE_EXHAUSTED:
		return ENOSPC;
	case CTR_INVALID_ARGUMENT:
	case CTR_FAILED_PRECONDITION:
		return EINVAL;
	default:
		return EIO;
	}
}

/* Runs one batch and waits for it. Returns whether grpc says it succeeded. */
static bool stream_batch(struct ctr_stream *s, grpc_op *ops, size_t n)
{
	if (grpc_call_start_batch(s->call, ops, n, &s->tag, NULL) != GRPC_CALL_OK)
		return false;
	grpc_event ev =
	    grpc_completion_queue_pluck(s->cq, &s->tag, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* Receives the final status (once) and turns a failure into err. Always returns -1 unless the
 * status is OK, then 0. */
static int stream_end(struct ctr_stream *s, struct err *err)
{
	if (!s->ended) {
		grpc_op ops[2];
		size_t n = 0;
		memset(ops, 0, sizeof ops);
		if (!s->send_closed) {
			ops[n++].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
			s->send_closed = true;
		}
		ops[n].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
		ops[n].data.recv_status_on_client.trailing_metadata = &s->trail_md;
		ops[n].data.recv_status_on_client.status = &s->status;
		ops[n].data.recv_status_on_client.status_details = &s->details;
		ops[n].data.recv_status_on_client.error_string = &s->error_string;
		n++;
		if (!stream_batch(s, ops, n) && s->status == GRPC_STATUS_OK)
			s->status = GRPC_STATUS_UNKNOWN;
		fill_status(&s->st, s->status, s->details, s->error_string);
		s->ended = true;
	}
	if (s->st.code == CTR_OK)
		return 0;
	return err_set(err, ctr_code_errno(s->st.code), "%s: %s: %s", s->method,
		       ctr_code_name(s->st.code), s->st.details);
}

struct ctr_stream *ctr_stream_open(struct ctr_client *c, const char *lease, const char *full_method,
				   int timeout_ms, struct err *err)
{
	if (!c || !full_method || timeout_ms <= 0) {
		err_set(err, EINVAL, "ctr_stream_open: invalid argument");
		return NULL;
	}
	struct ctr_stream *s = calloc(1, sizeof *s);
	if (!s || !(s->method = strdup(full_method))) {
		free(s);
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	s->status = GRPC_STATUS_UNKNOWN;
	s->details = grpc_empty_slice();
	status_set(&s->st, CTR_UNKNOWN, "");
	grpc_metadata_array_init(&s->init_md);
	grpc_metadata_array_init(&s->trail_md);
	md_init(&s->md, c->ns, lease);
	s->cq = grpc_completion_queue_create_for_pluck(NULL);
	if (!s->cq) {
		err_set(err, ENOMEM, "grpc_completion_queue_create_for_pluck failed");
		ctr_stream_close(s);
		return NULL;
	}
	grpc_slice m = grpc_slice_from_copied_string(full_method);
	s->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, s->cq, m, NULL,
					   deadline_ms(timeout_ms), NULL);
	grpc_slice_unref(m);
	if (!s->call) {
		err_set(err, EIO, "grpc_channel_create_call(%s) failed", full_method);
		ctr_stream_close(s);
		return NULL;
	}
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_INITIAL_METADATA;
	op.data.send_initial_metadata.count = s->md.n;
	op.data.send_initial_metadata.metadata = s->md.md;
	if (!stream_batch(s, &op, 1)) {
		stream_end(s, err);
		if (s->st.code == CTR_OK)
			err_set(err, EIO, "%s: cannot start the stream", full_method);
		ctr_stream_close(s);
		return NULL;
	}
	return s;
}

int ctr_stream_send(struct ctr_stream *s, const ProtobufCMessage *msg, struct err *err)
{
	if (s->ended || s->send_closed)
		return err_set(err, EPIPE, "%s: stream already closed", s->method);
	grpc_byte_buffer *bb = pack_bb(msg, err);
	if (!bb)
		return -1;
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_MESSAGE;
	op.data.send_message.send_message = bb;
	bool ok = stream_batch(s, &op, 1);
	grpc_byte_buffer_destroy(bb);
	if (!ok) {
		if (stream_end(s, err) == 0) /* the server ended with OK but took no more */
			return err_set(err, EPIPE, "%s: the server closed the stream", s->method);
		return -1;
	}
	return 0;
}

int ctr_stream_close_send(struct ctr_stream *s, struct err *err)
{
	if (s->send_closed || s->ended)
		return 0;
	grpc_op op;
	memset(&op, 0, sizeof op);
	op.op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
	s->send_closed = true;
	if (!stream_batch(s, &op, 1))
		return stream_end(s, err) == 0 ? 0 : -1;
	return 0;
}

int ctr_stream_recv(struct ctr_stream *s, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **msg, struct err *err)
{
	*msg = NULL;
	if (s->ended)
		return stream_end(s, err) == 0 ? 0 : -1;
	grpc_byte_buffer *bb = NULL;
	grpc_op ops[2];
	size_t n = 0;
	memset(ops, 0, sizeof ops);
	if (!s->got_init_md) {
		ops[n].op = GRPC_OP_RECV_INITIAL_METADATA;
		ops[n].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
		n++;
		s->got_init_md = true;
	}
	ops[n].op = GRPC_OP_RECV_MESSAGE;
	ops[n].data.recv_message.recv_message = &bb;
	n++;
	bool ok = stream_batch(s, ops, n);
	if (!ok || !bb) { /* end of stream (or broken): the status says which */
		if (bb)
			grpc_byte_buffer_destroy(bb);
		return stream_end(s, err) == 0 ? 0 : -1;
	}
	*msg = unpack_bb(&bb, desc);
	if (!*msg)
		return err_set(err, EBADMSG, "%s: cannot decode a message", s->method);
	return 1;
}

const struct ctr_status *ctr_stream_status(const struct ctr_stream *s)
{
	return &s->st;
}

void ctr_stream_close(struct ctr_stream *s)
{
	if (!s)
		return;
	if (s->call) {
		if (!s->ended) {
			grpc_call_cancel(s->call, NULL);
			stream_end(s, NULL);
		}
		grpc_call_unref(s->call);
	}
	if (s->cq) {
		grpc_completion_queue_shutdown(s->cq);
		while (grpc_completion_queue_pluck(s->cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME),
						   NULL)
			   .type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(s->cq);
	}
	md_free(&s->md);
	grpc_metadata_array_destroy(&s->init_md);
	grpc_metadata_array_destroy(&s->trail_md);
	grpc_slice_unref(s->details);
	if (s->error_string)
		gpr_free((void *)s->error_string);
	free(s->method);
	free(s);
}

/* ---- subscriptions ---- */

static const ProtobufCMessageDescriptor *const event_descs[] = {
    &containerd__events__task_create__descriptor,
    &containerd__events__task_start__descriptor,
    &containerd__events__task_delete__descriptor,
    &containerd__events__task_io__descriptor,
    &containerd__events__task_exit__descriptor,
    &containerd__events__task_oom__descriptor,
    &containerd__events__task_exec_added__descriptor,
    &containerd__events__task_exec_started__descriptor,
    &containerd__events__task_paused__descriptor,
    &containerd__events__task_resumed__descriptor,
    &containerd__events__task_checkpointed__descriptor,
};

static ProtobufCMessage *decode_event(const Google__Protobuf__Any *any)
{
	if (!any || !any->type_url)
		return NULL;
	const char *name = strrchr(any->type_url, '/');
	name = name ? name + 1 : any->type_url;
	for (size_t i = 0; i < sizeof event_descs / sizeof event_descs[0]; i++)
		if (strcmp(event_descs[i]->name, name) == 0)
			return protobuf_c_message_unpack(event_descs[i], NULL, any->value.len,
							 any->value.data);
	return NULL;
}

/* Under mu. Frees the sub when the last reference goes. */
static void sub_unref_locked(struct ctr_sub *s)
{
	if (--s->refs > 0)
		return;
	struct ctr_client *c = s->c;
	if (s->prev)
		s->prev->next = s->next;
	else if (c->subs == s)
		c->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s->req);
	free(s);
}

static void evitem_free(struct evitem *e)
{
	if (e->env)
		protobuf_c_message_free_unpacked(&e->env->base, NULL);
	if (e->decoded)
		protobuf_c_message_free_unpacked(e->decoded, NULL);
	free(e);
}

/* Under mu. Queues an item for s (takes a reference on s). */
static void sub_queue_locked(struct ctr_sub *s, struct evitem *e)
{
	e->q.kind = Q_EVENT;
	e->sub = s;
	s->refs++;
	enqueue_locked(s->c, &e->q);
}

/* Under mu: starts a new Subscribe stream (3 batches). */
static int sub_start_locked(struct ctr_sub *s, struct err *err)
{
	struct ctr_client *c = s->c;
	s->status = GRPC_STATUS_UNKNOWN;
	s->details = grpc_empty_slice();
	s->error_string = NULL;
	s->got_msg = false;
	s->started_ms = now_ms();
	s->retry_at_ms = 0;
	grpc_metadata_array_init(&s->init_md);
	grpc_metadata_array_init(&s->trail_md);
	md_init(&s->md, c->ns, NULL);
	grpc_slice body = grpc_slice_from_copied_buffer((const char *)s->req, s->req_len);
	s->send_bb = grpc_raw_byte_buffer_create(&body, 1);
	grpc_slice_unref(body);
	grpc_slice m = grpc_slice_from_static_string(SUB_METHOD);
	s->call = grpc_channel_create_call(c->ch, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq, m, NULL,
					   gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
	grpc_slice_unref(m);

	grpc_op ops[3];
	int started = 0;
	grpc_call_error ce = GRPC_CALL_ERROR;
	if (s->call && s->send_bb) {
		memset(ops, 0, sizeof ops);
		ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
		ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY |
			       GRPC_INITIAL_METADATA_WAIT_FOR_READY_EXPLICITLY_SET;
		ops[0].data.send_initial_metadata.count = s->md.n;
		ops[0].data.send_initial_metadata.metadata = s->md.md;
		ops[1].op = GRPC_OP_SEND_MESSAGE;
		ops[1].data.send_message.send_message = s->send_bb;
		ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
		ce = grpc_call_start_batch(s->call, ops, 3, &s->t_send, NULL);
		if (ce == GRPC_CALL_OK) {
			started++;
			memset(ops, 0, sizeof ops);
			ops[0].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
			ops[0].data.recv_status_on_client.trailing_metadata = &s->trail_md;
			ops[0].data.recv_status_on_client.status = &s->status;
			ops[0].data.recv_status_on_client.status_details = &s->details;
			ops[0].data.recv_status_on_client.error_string = &s->error_string;
			ce = grpc_call_start_batch(s->call, ops, 1, &s->t_status, NULL);
		}
		if (ce == GRPC_CALL_OK) {
			started++;
			memset(ops, 0, sizeof ops);
			ops[0].op = GRPC_OP_RECV_INITIAL_METADATA;
			ops[0].data.recv_initial_metadata.recv_initial_metadata = &s->init_md;
			ops[1].op = GRPC_OP_RECV_MESSAGE;
			ops[1].data.recv_message.recv_message = &s->recv_bb;
			ce = grpc_call_start_batch(s->call, ops, 2, &s->t_recv, NULL);
		}
		if (ce == GRPC_CALL_OK)
			started++;
	}
	s->tags_pending = started;
	c->active_tags += started;
	if (started == 3) {
		s->refs++; /* the stream's reference */
		return 0;
	}
	/* Partial start: cancel; the started batches complete and end the stream normally. */
	if (started > 0) {
		s->refs++;
		grpc_call_cancel(s->call, NULL);
	} else {
		if (s->call)
			grpc_call_unref(s->call);
		s->call = NULL;
		if (s->send_bb)
			grpc_byte_buffer_destroy(s->send_bb);
		s->send_bb = NULL;
		md_free(&s->md);
		grpc_metadata_array_destroy(&s->init_md);
		grpc_metadata_array_destroy(&s->trail_md);
	}
	return err_set(err, EIO, "cannot start Events/Subscribe: grpc_call_error %d", (int)ce);
}

/* Under mu, from the cq thread: the stream's last batch completed. */
static void sub_stream_end_locked(struct ctr_sub *s)
{
	struct ctr_client *c = s->c;
	struct ctr_status st;
	fill_status(&st, s->status, s->details, s->error_string);
	grpc_call_unref(s->call);
	s->call = NULL;
	md_free(&s->md);
	if (s->send_bb)
		grpc_byte_buffer_destroy(s->send_bb);
	s->send_bb = NULL;
	if (s->recv_bb)
		grpc_byte_buffer_destroy(s->recv_bb);
	s->recv_bb = NULL;
	grpc_metadata_array_destroy(&s->init_md);
	grpc_metadata_array_destroy(&s->trail_md);
	grpc_slice_unref(s->details);
	s->details = grpc_empty_slice();
	if (s->error_string)
		gpr_free((void *)s->error_string);
	s->error_string = NULL;

	if (!s->dead && !c->closing) {
		struct evitem *e = calloc(1, sizeof *e);
		if (e) {
			e->kind = CTR_EVENT_LOST;
			e->st = st;
			sub_queue_locked(s, e);
		}
		bool healthy = s->got_msg || now_ms() - s->started_ms > 5000;
		if (healthy || s->backoff_ms == 0)
			s->backoff_ms = SUB_BACKOFF_MIN;
		else if ((s->backoff_ms *= 2) > SUB_BACKOFF_MAX)
			s->backoff_ms = SUB_BACKOFF_MAX;
		s->retry_at_ms = now_ms() + s->backoff_ms;
	}
	sub_unref_locked(s); /* the stream's reference */
}

static void on_sub(struct ctr_client *c, struct tag *t, bool success)
{
	struct ctr_sub *s = t->owner;
	bool queued = false;
	pthread_mutex_lock(&c->mu);
	switch (t->kind) {
	case TAG_SUB_SEND:
		s->tags_pending--;
		if (success && !s->dead && !c->closing) {
			struct evitem *e = calloc(1, sizeof *e);
			if (e) {
				e->kind = CTR_EVENT_SUBSCRIBED;
				sub_queue_locked(s, e);
				queued = true;
			}
		}
		break;
	case TAG_SUB_STATUS:
		s->tags_pending--;
		break;
	case TAG_SUB_RECV:
		if (success && s->recv_bb) {
			s->got_msg = true;
			/* decoding under mu is fine: it is short and nobody waits on it long */
			ProtobufCMessage *m = unpack_bb(
			    &s->recv_bb, &containerd__services__events__v1__envelope__descriptor);
			if (m && !s->dead && !c->closing) {
				struct evitem *e = calloc(1, sizeof *e);
				if (e) {
					e->kind = CTR_EVENT_MESSAGE;
					e->env = (Containerd__Services__Events__V1__Envelope *)m;
					e->decoded = decode_event(e->env->event);
					sub_queue_locked(s, e);
					queued = true;
					m = NULL;
				}
			}
			if (m)
				protobuf_c_message_free_unpacked(m, NULL);
			if (s->dead || c->closing) {
				grpc_call_cancel(s->call, NULL);
				s->tags_pending--;
				break;
			}
			grpc_op op;
			memset(&op, 0, sizeof op);
			op.op = GRPC_OP_RECV_MESSAGE;
			op.data.recv_message.recv_message = &s->recv_bb;
			if (grpc_call_start_batch(s->call, &op, 1, &s->t_recv, NULL) ==
			    GRPC_CALL_OK) {
				/* same tag re-armed: tags_pending and active_tags unchanged */
				pthread_mutex_unlock(&c->mu);
				if (queued)
					wake(c);
				return;
			}
			grpc_call_cancel(s->call, NULL);
		}
		s->tags_pending--;
		break;
	default:
		break;
	}
	if (s->tags_pending == 0) {
		sub_stream_end_locked(s);
		queued = true; /* maybe a LOST item */
	}
	tag_done_locked(c);
	pthread_mutex_unlock(&c->mu);
	if (queued)
		wake(c);
}

/* cq thread: starts the resubscriptions that are due; returns the next deadline. */
static gpr_timespec run_retries(struct ctr_client *c)
{
	int64_t now = now_ms(), next = 0;
	pthread_mutex_lock(&c->mu);
	for (struct ctr_sub *s = c->subs; s; s = s->next) {
		if (!s->retry_at_ms || s->dead || c->closing)
			continue;
		if (s->retry_at_ms <= now) {
			if (sub_start_locked(s, NULL) < 0 && !s->call) {
				s->retry_at_ms = now + SUB_BACKOFF_MAX;
			}
		}
		if (s->retry_at_ms && (!next || s->retry_at_ms < next))
			next = s->retry_at_ms;
	}
	pthread_mutex_unlock(&c->mu);
	if (!next)
		return gpr_inf_future(GPR_CLOCK_MONOTONIC);
	return deadline_ms((int)(next - now > 0 ? next - now : 1));
}

static void *cq_thread(void *p)
{
	struct ctr_client *c = p;
	gpr_timespec deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
	for (;;) {
		grpc_event ev = grpc_completion_queue_next(c->cq, deadline, NULL);
		if (ev.type == GRPC_QUEUE_SHUTDOWN)
			break;
		if (ev.type == GRPC_OP_COMPLETE) {
			struct tag *t = ev.tag;
			if (t->kind == TAG_UNARY)
				on_unary(c, t->owner, ev.success != 0);
			else
				on_sub(c, t, ev.success != 0);
		}
		deadline = run_retries(c);
	}
	return NULL;
}

struct ctr_sub *ctr_subscribe(struct ctr_client *c, const char *const *filters, size_t n,
			      ctr_event_cb cb, void *arg, struct err *err)
{
	if (!c || !cb || (n && !filters)) {
		err_set(err, EINVAL, "ctr_subscribe: invalid argument");
		return NULL;
	}
	Containerd__Services__Events__V1__SubscribeRequest req =
	    CONTAINERD__SERVICES__EVENTS__V1__SUBSCRIBE_REQUEST__INIT;
	req.n_filters = n;
	req.filters = (char **)filters;
	struct ctr_sub *s = calloc(1, sizeof *s);
	if (!s) {
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	s->req_len = protobuf_c_message_get_packed_size(&req.base);
	s->req = malloc(s->req_len ? s->req_len : 1);
	if (!s->req) {
		free(s);
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	protobuf_c_message_pack(&req.base, s->req);
	s->c = c;
	s->cb = cb;
	s->arg = arg;
	s->refs = 1; /* the user's */
	s->t_send = (struct tag){TAG_SUB_SEND, s};
	s->t_recv = (struct tag){TAG_SUB_RECV, s};
	s->t_status = (struct tag){TAG_SUB_STATUS, s};

	pthread_mutex_lock(&c->mu);
	if (c->closing) {
		pthread_mutex_unlock(&c->mu);
		free(s->req);
		free(s);
		err_set(err, ECANCELED, "ctr_subscribe: client is closing");
		return NULL;
	}
	s->next = c->subs;
	if (c->subs)
		c->subs->prev = s;
	c->subs = s;
	if (sub_start_locked(s, err) < 0) {
		s->dead = true;
		sub_unref_locked(s); /* frees it unless a partial stream still holds it */
		pthread_mutex_unlock(&c->mu);
		return NULL;
	}
	pthread_mutex_unlock(&c->mu);
	return s;
}

void ctr_unsubscribe(struct ctr_sub *s)
{
	if (!s)
		return;
	struct ctr_client *c = s->c;
	pthread_mutex_lock(&c->mu);
	s->dead = true;
	s->retry_at_ms = 0;
	if (s->call)
		grpc_call_cancel(s->call, NULL);
	sub_unref_locked(s);
	pthread_mutex_unlock(&c->mu);
}

/* ---- client ---- */

struct ctr_client *ctr_client_new(const char *socket, const char *ns, const char *lease,
				  struct err *err)
{
	if (!socket || !*socket || !ns || !*ns) {
		err_set(err, EINVAL, "ctr_client_new: socket and namespace are required");
		return NULL;
	}
	struct ctr_client *c = calloc(1, sizeof *c);
	if (!c) {
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	c->efd = -1;
	c->qtail = &c->qhead;
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->ns = strdup(ns);
	c->lease = lease && *lease ? strdup(lease) : NULL;
	size_t tlen = strlen(socket) + sizeof "unix:";
	char *target = malloc(tlen);
	if (!c->ns || (lease && *lease && !c->lease) || !target) {
		free(target);
		err_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	snprintf(target, tlen, "unix:%s", socket);

	c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (c->efd < 0) {
		free(target);
		err_sys(err, errno, "eventfd");
		goto fail;
	}

	grpc_init();
	grpc_arg args[4];
	memset(args, 0, sizeof args);
	args[0].type = GRPC_ARG_INTEGER;
	args[0].key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
	args[0].value.integer = MAX_MSG_BYTES;
	args[1].type = GRPC_ARG_INTEGER;
	args[1].key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS;
	args[1].value.integer = 100;
	args[2].type = GRPC_ARG_INTEGER;
	args[2].key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS;
	args[2].value.integer = 100;
	args[3].type = GRPC_ARG_INTEGER;
	args[3].key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS;
	args[3].value.integer = 1000;
	grpc_channel_args cargs = {.num_args = 4, .args = args};
	grpc_channel_credentials *cr = grpc_insecure_credentials_create();
	c->ch = grpc_channel_create(target, cr, &cargs);
	grpc_channel_credentials_release(cr);
	free(target);
	c->cq = grpc_completion_queue_create_for_next(NULL);
	if (!c->ch || !c->cq) {
		err_set(err, EIO, "cannot create grpc channel to unix:%s", socket);
		goto fail_grpc;
	}
	int e = pthread_create(&c->thread, NULL, cq_thread, c);
	if (e) {
		err_sys(err, e, "pthread_create");
		goto fail_grpc;
	}
	c->thread_started = true;
	return c;

fail_grpc:
	if (c->cq) {
		grpc_completion_queue_shutdown(c->cq);
		grpc_completion_queue_destroy(c->cq);
	}
	if (c->ch)
		grpc_channel_destroy(c->ch);
	grpc_shutdown();
fail:
	if (c->efd >= 0)
		close(c->efd);
	free(c->ns);
	free(c->lease);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
	return NULL;
}

int ctr_client_fd(const struct ctr_client *c)
{
	return c->efd;
}

size_t ctr_client_pending(const struct ctr_client *c)
{
	return c->pending;
}

/* Runs one item's callback (or drops it when `run` is false) and frees it. */
static void run_item(struct ctr_client *c, struct qitem *q, bool run)
{
	if (q->kind == Q_UNARY) {
		struct ctr_op *op = (struct ctr_op *)q;
		c->pending--;
		op->cb(op->arg, &op->st, op->st.code == CTR_OK ? op->reply : NULL);
		op_free(op);
		return;
	}
	struct evitem *e = (struct evitem *)q;
	struct ctr_sub *s = e->sub;
	pthread_mutex_lock(&c->mu);
	bool live = run && !s->dead;
	pthread_mutex_unlock(&c->mu);
	if (live) {
		struct ctr_event ev = {.kind = e->kind};
		if (e->kind == CTR_EVENT_MESSAGE) {
			ev.topic = e->env->topic;
			ev.ns = e->env->namespace_;
			if (e->env->timestamp)
				ev.timestamp_ns = e->env->timestamp->seconds * 1000000000LL +
						  e->env->timestamp->nanos;
			ev.type_url = e->env->event ? e->env->event->type_url : "";
			ev.event = e->decoded;
		} else if (e->kind == CTR_EVENT_LOST) {
			ev.st = &e->st;
		}
		s->cb(s->arg, &ev);
	}
	pthread_mutex_lock(&c->mu);
	sub_unref_locked(s);
	pthread_mutex_unlock(&c->mu);
	evitem_free(e);
}

int ctr_client_dispatch(struct ctr_client *c)
{
	uint64_t v;
	while (read(c->efd, &v, sizeof v) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&c->mu);
	struct qitem *q = c->qhead;
	c->qhead = NULL;
	c->qtail = &c->qhead;
	pthread_mutex_unlock(&c->mu);
	int n = 0;
	while (q) {
		struct qitem *next = q->next;
		run_item(c, q, true);
		n++;
		q = next;
	}
	return n;
}

bool ctr_client_reachable(struct ctr_client *c)
{
	grpc_connectivity_state st = grpc_channel_check_connectivity_state(c->ch, 0);
	return st != GRPC_CHANNEL_TRANSIENT_FAILURE && st != GRPC_CHANNEL_SHUTDOWN;
}

void ctr_client_free(struct ctr_client *c)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	c->closing = true;
	for (struct ctr_op *op = c->inflight; op; op = op->next)
		grpc_call_cancel(op->call, NULL);
	for (struct ctr_sub *s = c->subs; s; s = s->next) {
		s->retry_at_ms = 0;
		if (s->call)
			grpc_call_cancel(s->call, NULL);
	}
	while (c->active_tags > 0)
		pthread_cond_wait(&c->cv, &c->mu);
	pthread_mutex_unlock(&c->mu);

	if (c->thread_started) {
		grpc_completion_queue_shutdown(c->cq);
		pthread_join(c->thread, NULL);
	}
	grpc_completion_queue_destroy(c->cq);

	/* Pending unary callbacks run (exactly-once); subscription items are dropped. */
	struct qitem *q = c->qhead;
	c->qhead = NULL;
	c->qtail = &c->qhead;
	while (q) {
		struct qitem *next = q->next;
		run_item(c, q, q->kind == Q_UNARY);
		q = next;
	}
	/* Subscriptions the user did not end: drop the user's reference. */
	while (c->subs) {
		struct ctr_sub *s = c->subs;
		s->dead = true;
		s->refs = 1;
		sub_unref_locked(s);
	}
	grpc_channel_destroy(c->ch);
	grpc_shutdown_blocking();
	close(c->efd);
	free(c->ns);
	free(c->lease);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}
