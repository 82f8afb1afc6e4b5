/*
 * ctr_client.h - asynchronous containerd gRPC client for a single-threaded event loop.
 *
 * Contract
 * --------
 * - One client = one grpc channel to unix:SOCKET (grpc core, insecure local transport). Every call
 *   carries the metadata `containerd-namespace: NS` and, when a lease is set (client default or
 *   per call), `containerd-lease: LEASE`.
 * - The client has ONE completion queue drained by ONE internal thread. That thread decodes
 *   replies but never runs user code: finished operations are queued and an eventfd is made
 *   readable. The owning thread (the event loop) polls ctr_client_fd() for POLLIN and calls
 *   ctr_client_dispatch(), which runs the callbacks on the caller's thread. All functions below
 *   except ctr_call_sync() are meant to be called from that one owning thread.
 * - Nothing here ever blocks the owning thread on containerd: every call has a deadline, and a
 *   stopped or absent containerd shows up as DEADLINE_EXCEEDED / UNAVAILABLE in the callback.
 *   (The only exceptions are ctr_call_sync(), documented below, and ctr_client_free(), which waits
 *   for cancelled calls to drain; cancellation is local and takes microseconds.)
 * - Exactly-once: if ctr_call()/ctr_call_lease() returns 0, its callback runs exactly once, either
 *   from ctr_client_dispatch() or, for calls still pending, from ctr_client_free() with status
 *   CANCELLED. If it returns -1, the callback never runs.
 * - Callbacks may start new calls (ctr_call) but must not call ctr_client_dispatch() or
 *   ctr_client_free() on the same client.
 * - grpc core must not be used across fork(): after ctr_client_new() the process must not fork
 *   (posix_spawn/vfork+exec is fine). Create clients in the process that never forks.
 *
 * Ownership
 * ---------
 * - Strings passed in (socket, namespace, lease, method, filters) are copied; the caller keeps
 * them.
 * - `req` is serialized during ctr_call(); the caller keeps and may free it right after the return.
 * - `reply` given to a ctr_cb is owned by the client and valid only during the callback (NULL
 *   unless st->code == CTR_OK). ctr_call_sync() hands its reply to the caller, who frees it with
 *   ctr_reply_free().
 * - `struct ctr_status` passed to callbacks is valid only during the callback.
 * - A struct ctr_sub belongs to the client; ctr_unsubscribe() or ctr_client_free() ends it.
 */
#ifndef VC_CTR_CLIENT_H
#define VC_CTR_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include <stdbool.h>

#include "err.h"

/* grpc status codes (same values as grpc_status_code; repeated so users need no grpc header). */
enum ctr_code {
	CTR_OK = 0,
	CTR_CANCELLED = 1,
	CTR_UNKNOWN = 2,
	CTR_INVALID_ARGUMENT = 3,
	CTR_DEADLINE_EXCEEDED = 4,
	CTR_NOT_FOUND = 5,
	CTR_ALREADY_EXISTS = 6,
	CTR_PERMISSION_DENIED = 7,
	CTR_RESOURCE_EXHAUSTED = 8,
	CTR_FAILED_PRECONDITION = 9,
	CTR_ABORTED = 10,
	CTR_OUT_OF_RANGE = 11,
	CTR_UNIMPLEMENTED = 12,
	CTR_INTERNAL = 13,
	CTR_UNAVAILABLE = 14,
	CTR_DATA_LOSS = 15,
	CTR_UNAUTHENTICATED = 16,
};

struct ctr_status {
	int code;	   /* enum ctr_code */
	char details[512]; /* containerd's message (or grpc's), NUL-terminated, maybe truncated */
};

/* Name of a status code ("DEADLINE_EXCEEDED"); never NULL. */
const char *ctr_code_name(int code);

struct ctr_client;

typedef void (*ctr_cb)(void *arg, const struct ctr_status *st, ProtobufCMessage *reply);

/* Connects lazily to unix:SOCKET; NS is mandatory (containerd rejects calls without it);
 * LEASE may be NULL (no default lease). Calls grpc_init(). */
struct ctr_client *ctr_client_new(const char *socket, const char *ns, const char *lease,
				  struct err *err);

/* Cancels every in-flight call and subscription, waits for the internal thread to drain them,
 * runs the pending callbacks (CANCELLED or their real status) on the caller's thread, joins the
 * thread and frees everything, including subscriptions. NULL is a no-op. */
void ctr_client_free(struct ctr_client *c);
/* False while the channel to containerd is failing (containerd stopped, its socket gone):
 * grpc's connectivity state, without starting a connection attempt. */
bool ctr_client_reachable(struct ctr_client *c);

/* Pollable fd (eventfd, POLLIN when callbacks are ready). Owned by the client: do not close. */
int ctr_client_fd(const struct ctr_client *c);

/* Runs the callbacks of every operation finished so far. Never blocks. Returns how many ran. */
int ctr_client_dispatch(struct ctr_client *c);

/* Number of calls started and whose callback has not run yet (subscriptions not counted). */
size_t ctr_client_pending(const struct ctr_client *c);

/* Starts a unary call. full_method is "/containerd.services.tasks.v1.Tasks/Create"; reply_desc
 * says how to decode the reply (google.protobuf.Empty for empty replies). timeout_ms > 0 is the
 * deadline; timeout_ms < 0 means no deadline (only for Tasks/Wait-like calls the caller cancels
 * by freeing the client); 0 is invalid. Uses the client's default lease. */
int ctr_call(struct ctr_client *c, const char *full_method, const ProtobufCMessage *req,
	     const ProtobufCMessageDescriptor *reply_desc, int timeout_ms, ctr_cb cb, void *arg,
	     struct err *err);

/* Same with an explicit lease id for this call (NULL or "" = no lease, overriding the default). */
int ctr_call_lease(struct ctr_client *c, const char *lease, const char *full_method,
		   const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
		   int timeout_ms, ctr_cb cb, void *arg, struct err *err);

/* BLOCKING call, for command-line tools and tests only: NEVER call it on the event loop thread.
 * Uses its own completion queue (the internal thread and dispatch are not involved), so it may be
 * called from any thread. Returns 0 when the call completed (whatever the grpc status: see *st)
 * and -1 (err filled) when it could not be started. On CTR_OK *reply (if reply is not NULL) is
 * the decoded reply, owned by the caller: free it with ctr_reply_free(). */
int ctr_call_sync(struct ctr_client *c, const char *full_method, const ProtobufCMessage *req,
		  const ProtobufCMessageDescriptor *reply_desc, int timeout_ms,
		  struct ctr_status *st, ProtobufCMessage **reply, struct err *err);

/* ctr_call_sync with an explicit lease (NULL or "" = none). Same rules. */
int ctr_call_sync_lease(struct ctr_client *c, const char *lease, const char *full_method,
			const ProtobufCMessage *req, const ProtobufCMessageDescriptor *reply_desc,
			int timeout_ms, struct ctr_status *st, ProtobufCMessage **reply,
			struct err *err);

void ctr_reply_free(ProtobufCMessage *reply);

/* ---- BLOCKING streams (Content/Write, Content/Read), for worker threads and tools only ----
 * Like ctr_call_sync(): never on the event loop thread; each stream has its own completion queue,
 * so several threads may stream at once on one client. A stream is used by one thread.
 * Any failure (send, receive, or a non-OK final status) makes the function return -1 with err
 * filled ("<method>: <CODE>: <details>") and err->code set to the matching errno-like value
 * (ENOENT for NOT_FOUND, EEXIST for ALREADY_EXISTS, ETIMEDOUT, EAGAIN for UNAVAILABLE, EIO else);
 * the grpc status stays readable with ctr_stream_status(). The stream must still be closed. */
struct ctr_stream;

/* Opens a client- or bidirectional-streaming call; lease NULL or "" = none; timeout_ms > 0 is
 * the deadline of the whole stream. */
struct ctr_stream *ctr_stream_open(struct ctr_client *c, const char *lease, const char *full_method,
				   int timeout_ms, struct err *err);
int ctr_stream_send(struct ctr_stream *s, const ProtobufCMessage *msg, struct err *err);
/* Sends half-close (no more messages from us). Idempotent. */
int ctr_stream_close_send(struct ctr_stream *s, struct err *err);
/* 1 = *msg decoded (caller frees with ctr_reply_free), 0 = the server ended the stream with OK,
 * -1 = error (including a non-OK end). */
int ctr_stream_recv(struct ctr_stream *s, const ProtobufCMessageDescriptor *desc,
		    ProtobufCMessage **msg, struct err *err);
/* The final grpc status once known (code CTR_UNKNOWN with empty details before). */
const struct ctr_status *ctr_stream_status(const struct ctr_stream *s);
/* Cancels the call if it has not ended and frees everything. NULL is a no-op. */
void ctr_stream_close(struct ctr_stream *s);

/* Maps a grpc code to the errno-like value used above. */
int ctr_code_errno(int code);

/* ---- Events (server-streaming /containerd.services.events.v1.Events/Subscribe) ---- */

enum ctr_event_kind {
	CTR_EVENT_MESSAGE,    /* one Envelope */
	CTR_EVENT_SUBSCRIBED, /* the Subscribe request was written on the transport (first time and
				 after every resubscription) */
	CTR_EVENT_LOST,	      /* the stream ended (containerd restarted, ...): events may have been
				 missed; the client resubscribes by itself (backoff 100 ms..2 s,
				 waiting for containerd to come back). Reconcile state now. */
};

struct ctr_event {
	enum ctr_event_kind kind;
	/* CTR_EVENT_MESSAGE: */
	const char *topic;	       /* "/tasks/exit" */
	const char *ns;		       /* the envelope's namespace */
	int64_t timestamp_ns;	       /* since the epoch, 0 if absent */
	const char *type_url;	       /* of the event Any, "" if none */
	const ProtobufCMessage *event; /* decoded for every message of containerd's api/events/
					  task.proto (TaskExit, TaskOOM, TaskCreate, ...), NULL
					  for other types: compare event->descriptor with
					  &containerd__events__task_exit__descriptor, etc. */
	/* CTR_EVENT_LOST: */
	const struct ctr_status *st;
};

/* Everything pointed to by ev is valid only during the callback. */
typedef void (*ctr_event_cb)(void *arg, const struct ctr_event *ev);

struct ctr_sub;

/* Subscribes with containerd filters (OR of filters; within one filter, commas AND; quote the
 * values: `namespace=="ns",topic=="/tasks/exit"`). containerd 1.6 does NOT scope Subscribe to
 * the client's namespace: put namespace==... in every filter. n may be 0 (every event of every
 * namespace). The stream has no deadline. Callbacks run from ctr_client_dispatch(). */
struct ctr_sub *ctr_subscribe(struct ctr_client *c, const char *const *filters, size_t n,
			      ctr_event_cb cb, void *arg, struct err *err);

/* Ends the subscription: no callback for it runs after this returns. NULL is a no-op. */
void ctr_unsubscribe(struct ctr_sub *s);

#endif
