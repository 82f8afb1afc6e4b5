/*
 * privsep.h - the channel between the worker's two processes (OpenBSD httpd's
 * privilege separation, ../docs/security.md "Privilege separation").
 *
 *   keeper (root)   owns the containerd client, the sandbox and every task's run
 *   parser (unprivileged, chrooted, own network namespace) owns the sockets:
 *                   TLS, HTTP, WebSockets, JSON/XML-RPC, tickets, the task table
 *
 * They talk over one AF_UNIX stream socketpair in frames:
 *
 *   u32 length (big-endian, of what follows) | u8 type | payload
 *
 * A payload is a sequence of fields written with pmsg_put_* and read back with
 * pmsg_get_*; a reader that runs past the end, or a frame longer than the
 * channel's maximum, marks the message bad. The keeper trusts nothing the
 * parser sends: a bad frame from the parser is the parser compromised or
 * broken, and the keeper ends it (pchan's on_error).
 *
 * Writes never block: frames queue in the channel (bounded: a send past the
 * cap fails) and drain when the socket is writable; pchan_queued() lets a
 * producer apply back-pressure before that.
 *
 * Ownership: a pchan owns its buffers, not its fd's life (pchan_close closes
 * it) and not the evloop.
 */
#ifndef VC_PRIVSEP_H
#define VC_PRIVSEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "evloop.h"

/* Message types. P_* go parser -> keeper, K_* keeper -> parser. */
enum pmsg_type {
	P_START = 1,   /* u64 id, u8 flags, 4 x i64 limits, str execute, str script, str lang,
			* bytes admin ticket digest, u32 n, n x (str name, u32 mode, u8 delete,
			* bytes data) */
	P_RELEASE,     /* u64 id */
	P_EXEC_ATTACH, /* u64 id */
	P_EXEC_INPUT,  /* u64 id, bytes */
	P_EXEC_PAUSE,  /* u64 id, u8 paused */
	P_EXEC_DETACH, /* u64 id */
	P_WEB_OPEN,    /* u64 relay, u64 task id */
	P_WEB_INPUT,   /* u64 relay, bytes */
	P_WEB_PAUSE,   /* u64 relay, u8 paused */
	P_WEB_CLOSE,   /* u64 relay */
	P_UPDATE,      /* u64 request, u64 task id, u32 n, n x (str name, bytes data) */

	K_TASK = 64,   /* u64 id, u8 state, u8 flags, u32 oom_mib, u8 run_kind, str passthrough,
			* str progress, bytes compilation (appended), bytes execution (appended) */
	K_EXEC_OUT,    /* u64 id, bytes */
	K_EXEC_ENDED,  /* u64 id, str why */
	K_WEB_OUT,     /* u64 relay, bytes */
	K_WEB_ENDED,   /* u64 relay, u8 refused (never opened: all the task's relays busy) */
	K_WEB_QUEUED,  /* u64 relay, u64 consumed, u64 queued */
	K_UPDATE_DONE, /* u64 request, u8 ok */
	K_TLS,	       /* bytes certificate chain (PEM), bytes private key (PEM) */
	K_TERM,	       /* (SIGTERM/SIGINT reached the keeper) */
	K_DRAIN,       /* u8 DRAIN_FILE exists */
	K_DISK,	       /* u8 low, str why (diskguard.h: the keeper sees the filesystems) */
	K_HEALTH,      /* str why new tasks cannot start now ("" = they can) */
	K_READY,       /* the sandbox is up: the parser may open its sockets */
	K_LOST,	       /* n x TICKET_DIGEST_LEN bytes: admin tickets of tasks a previous run
			* of this worker lost (ticketlog.h) */
};

/* P_START flags */
#define PS_INTERACTIVE 1u
#define PS_DIRECTRUN   2u
/* K_TASK flags */
#define KT_COMPILE_STARTED   1u
#define KT_AWAITING_EXECUTE  2u
#define KT_TIMED_OUT	     4u
#define KT_EXECUTED	     8u
#define KT_COMPILATION_RESET 16u /* the keeper's copy shrank: start over */
#define KT_EXECUTION_RESET   32u

/* ---- payloads ---- */

void pmsg_put_u8(struct buf *b, uint8_t v);
void pmsg_put_u32(struct buf *b, uint32_t v);
void pmsg_put_u64(struct buf *b, uint64_t v);
void pmsg_put_bytes(struct buf *b, const void *p, size_t n);
void pmsg_put_str(struct buf *b, const char *s); /* NULL is "" */

struct pmsg_rd {
	const unsigned char *p;
	size_t left;
	bool bad; /* read past the end, or a field did not fit its reader */
};

uint8_t pmsg_get_u8(struct pmsg_rd *r);
uint32_t pmsg_get_u32(struct pmsg_rd *r);
uint64_t pmsg_get_u64(struct pmsg_rd *r);
/* Points into the message (valid during the handler); *n its length. */
const void *pmsg_get_bytes(struct pmsg_rd *r, size_t *n);
/* Copies a string field into out (NUL-terminated); longer than n-1 or holding a NUL is bad. */
void pmsg_get_str(struct pmsg_rd *r, char *out, size_t n);
/* True when the whole message was read and nothing was bad. */
bool pmsg_done(const struct pmsg_rd *r);

/* ---- the channel ---- */

struct pchan;
typedef void (*pchan_msg_fn)(void *arg, enum pmsg_type type, struct pmsg_rd *rd);
/* The peer closed or broke the framing; the channel is closed already (no more calls). */
typedef void (*pchan_err_fn)(void *arg, const char *why);

/* Takes over fd (made non-blocking here). max_frame caps one incoming frame, max_queued the
 * bytes waiting to be written. */
struct pchan *pchan_new(struct evloop *ev, int fd, size_t max_frame, size_t max_queued,
			pchan_msg_fn on_msg, pchan_err_fn on_error, void *arg, struct err *err);
/* Queues one frame whose payload is b (b is left as it was). -1 when the channel is closed
 * or the queue would pass its cap. */
int pchan_send(struct pchan *ch, enum pmsg_type type, const struct buf *payload, struct err *err);
int pchan_send_raw(struct pchan *ch, enum pmsg_type type, const void *p, size_t n, struct err *err);
size_t pchan_queued(const struct pchan *ch);
bool pchan_open(const struct pchan *ch);
/* Writes what is queued, blocking for at most ms (for the last words before exit). */
void pchan_flush(struct pchan *ch, int ms);
void pchan_free(struct pchan *ch); /* closes the fd */

#endif
