/*
 * monitor.h - the messages of the VPL "monitor" WebSocket (protocol §6.3).
 *
 * Pure: no sockets, no timers, no clock reads. The owner (the connection
 * that holds the monitor socket) feeds it the task's events with the current
 * time and calls monitor_tick() regularly (every 100 ms, as the reference
 * re-evaluates the state); the module answers through three callbacks:
 * send() one text frame, close() the socket (close frame, end), clean() the
 * task (stop it and free its container).
 *
 * Messages, by event:
 *   STARTING        message:starting
 *   COMPILING       message:compilation
 *   before_running  compilation:<text>, then run:terminal | run:webterminal |
 *                   run:vnc:<pw>, and 200 ms later compilation:<text> again.
 *                   kind NONE: 200 ms later compilation:<text> (or MON_NO_EXECUTABLE
 *                   when empty), close:, close(), clean().
 *   RUNNING         message:running (+ run:browser:<ticket> when a ticket is set)
 *   RETRIEVE        retrieve:
 *   STOPPED         close:, close()                  (no clean(): the owner stopped it)
 *   timeout         message:timeout, clean(), 3 s pause, close:, close()
 *   out of memory   message:outofmemory:<N>MiB, clean(), 1.5 s pause, close:, close()
 *   counter         "<label>: <N> sec" once per whole second N >= 1 since the last
 *                   starting/compiling/running/retrieve transition, while a label is
 *                   active; the label is the last message:starting|compilation|running
 *                   and stays through beforeRunning and retrieve. A late tick sends
 *                   only the latest N (no burst). No counter while ending.
 *
 * Deadlines (checked by monitor_tick):
 *   COMPILING       maxtime from compile start      -> the timeout sequence
 *   beforeRunning   6 s (the owner moves the state to RUNNING when the execute
 *                   socket attaches)                -> the timeout sequence
 *   RUNNING         maxtime + 6 s                   -> the timeout sequence
 *   RETRIEVE        30 s                            -> close:, close(), clean() at once,
 *                   no message:timeout (the browser has already left the progress
 *                   dialog and asked Moodle for the result: a timeout label would be
 *                   shown nowhere).
 *   STARTING has none (the task table's own lifetime cap covers it).
 *
 * Choices where §6.3 is silent:
 *   - clean() is called when the limit is hit, at the start of the timeout/OOM
 *     pause, so the program stops at its limit rather than 3 s later.
 *   - Once ending (timeout/OOM pause, or the 200 ms of kind NONE), state changes,
 *     timeouts and OOM reports are ignored: the first ending wins and its
 *     messages go out as specified.
 *   - A state change away from beforeRunning before the 200 ms are up sends the
 *     pending second compilation:<text> first (the reference sleeps inline, so
 *     it always precedes the next state's message).
 *   - Attached late, monitor_state() emits the current state's message; the
 *     counter label is only what this monitor itself has announced (attached in
 *     beforeRunning or retrieve, there is no label and so no counter).
 *   - monitor_state(MON_BEFORE_RUNNING) is ignored: beforeRunning needs the
 *     compilation text and run kind, use monitor_before_running().
 *   - Same-state calls are no-ops; otherwise the owner's state is trusted.
 *   - maxtime_s is clamped to [0, MON_MAXTIME_MAX_S].
 *
 * Compilation text: sent as given (the owner guarantees valid UTF-8), capped at
 * MON_COMPILATION_MAX bytes, cut back to the start of a UTF-8 sequence so a
 * character is never split. The module copies it.
 *
 * The client: the browser never sends on this socket. monitor_client_gone()
 * (data received or socket closed) returns true when the owner must clean the
 * task: in every state except RETRIEVE (tolerated until its 30 s deadline,
 * then clean() is called without any send or close()) and except when the
 * module has already called clean() or close(). After it, nothing is sent and
 * close() is never called: the owner ends the socket itself.
 *
 * Callbacks: never called after close() (nor after client gone, except the
 * retrieve deadline's clean()). Internal state is updated before every
 * callback, so a callback may call monitor_* functions on the same monitor
 * (they are ignored when they no longer apply) but must not free it. The
 * owner frees the monitor once monitor_done() is true (or at shutdown).
 */
#ifndef VC_MONITOR_H
#define VC_MONITOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MON_COMPILATION_MAX   (1024 * 1024) /* bytes of compilation text per frame */
#define MON_MAXTIME_MAX_S     (10LL * 24 * 3600)
#define MON_TICKET_MAX	      64 /* run:browser:<ticket> */
#define MON_RUN_DELAY_MS      200
#define MON_BEFORE_RUNNING_MS 6000
#define MON_RUNNING_EXTRA_MS  6000
#define MON_RETRIEVE_MS	      30000
#define MON_TIMEOUT_PAUSE_MS  3000
#define MON_OOM_PAUSE_MS      1500
#define MON_NO_EXECUTABLE                                                                          \
	"The compilation process did not generate an executable nor error message."

enum mon_state {
	MON_STARTING,
	MON_COMPILING,
	MON_BEFORE_RUNNING,
	MON_RUNNING,
	MON_RETRIEVE,
	MON_STOPPED
};
enum mon_run_kind { MON_RUN_NONE, MON_RUN_TERMINAL, MON_RUN_VNC, MON_RUN_WEBTERMINAL };

struct mon_ops {
	/* One text frame, e.g. "message:compilation: 3 sec". text is not NUL-terminated
	 * for the compilation frames' sake: use len. */
	void (*send)(void *arg, const char *text, size_t len);
	/* Send a close frame and end the socket. Called at most once. */
	void (*close)(void *arg);
	/* The task must be stopped and cleaned. Called at most once. why: a short
	 * reason for logs ("timeout", "out of memory", "no executable", ...). */
	void (*clean)(void *arg, const char *why);
};

struct monitor;

/* Nothing is sent until the first monitor_state()/monitor_before_running().
 * NULL on allocation failure. ops is copied. */
struct monitor *monitor_new(const struct mon_ops *ops, void *arg, int64_t maxtime_s,
			    int64_t now_ms);
void monitor_free(struct monitor *m);

/* The task entered (or, on attach, is in) state s: emit its message. */
void monitor_state(struct monitor *m, enum mon_state s, int64_t now_ms);

/* Interactive compilation finished: compilation output (len bytes, valid UTF-8,
 * may be empty or NULL) and what runs. vnc_password: its first 8 bytes are sent
 * (the execution ticket itself may be passed). Returns 0, also when ignored
 * (already in beforeRunning, ending or closed). Fails with EINVAL for an
 * unknown kind (nothing sent). If the copy of the text cannot be allocated,
 * the frames go out with an empty compilation text rather than not at all. */
int monitor_before_running(struct monitor *m, const char *compilation, size_t len,
			   enum mon_run_kind kind, const char *vnc_password, int64_t now_ms,
			   struct err *err);

/* Pass-through ticket: run:browser:<t> is sent on entering RUNNING (at once if
 * already running and not yet sent). Fails with EINVAL when NULL, empty or
 * longer than MON_TICKET_MAX bytes (the previous ticket, if any, is kept). */
int monitor_web_ticket(struct monitor *m, const char *passthrough_ticket, struct err *err);

/* The task's time limit was hit. */
void monitor_timeout(struct monitor *m, int64_t now_ms);
/* The task exceeded its memory limit; mib is its usage (or limit) in MiB. */
void monitor_out_of_memory(struct monitor *m, unsigned mib, int64_t now_ms);

/* Counters, delayed messages, pauses and deadlines. */
void monitor_tick(struct monitor *m, int64_t now_ms);

/* A detail of the current state ("message:starting:<detail>", e.g. the progress of an image
 * pull): sent once, the counters go on with the state's label. Nothing outside an active
 * labelled state. detail is valid UTF-8 (as the compilation text); the frame is capped at 319
 * bytes, cut back to the start of a UTF-8 sequence. */
void monitor_detail(struct monitor *m, const char *detail);

/* The browser sent data or closed the socket. true = the owner must clean the
 * task (see above). */
bool monitor_client_gone(struct monitor *m, int64_t now_ms);

/* Nothing left to do: closed, or the client is gone and no deadline is pending. */
bool monitor_done(const struct monitor *m);

#endif
