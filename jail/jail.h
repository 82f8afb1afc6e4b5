/*
 * jail.h - the state one vpl-jail worker process owns.
 *
 * Single-threaded: everything here is touched only from the event loop
 * thread. The struct owns its config and task table.
 */
#ifndef VC_JAIL_H
#define VC_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "evloop.h"
#include "fail2ban.h"
#include "tasks.h"

/* Where the sandbox sends an interactive program's output: the execute
 * WebSocket. Called on the loop thread; `ended` once, after the last output. */
struct exec_sink {
	void (*output)(void *sess, const void *data, size_t len);
	void (*ended)(void *sess, const char *why);
	void *sess;
};

/* Where the sandbox sends what a web program's local server answers on one proxied HTTP
 * connection (§6.8): raw bytes for the client; `ended` once, after the last output (the
 * relay is then gone: its handle must not be used any more). */
struct web_sink {
	void (*output)(void *sess, const void *data, size_t len);
	void (*ended)(void *sess);
	void *sess;
	/* Instead of `ended`, when the relay was never opened because all of the task's relays
	 * were busy (the keeper refused it after web_open returned: privsep). NULL: `ended`. */
	void (*refused)(void *sess);
};

/* Where a method whose answer comes later (update) registers, set by the HTTP layer for
 * the length of one methods_call (jail->defer, NULL otherwise: answer at once). The method
 * hands done/arg to the sandbox and sets `taken`; its result members then hold a
 * placeholder and the HTTP layer answers when done(arg, ok) comes. */
struct jail_defer {
	void (*done)(void *arg, int ok);
	void *arg;
	bool taken;
};

struct jail_stats {
	uint64_t requests;
	uint64_t errors;
};

struct ws_sess;

struct jail {
	struct jail_config cfg;
	struct task_table *tasks;
	struct jail_stats stats;
	struct f2b *f2b;	      /* NULL when FAIL2BAN=0 */
	struct jail_metrics *metrics; /* NULL: nothing counted (jail_metrics.h) */
	/* SIGTERM with tasks alive: `available` says offline, new tasks get 503, the rest
	 * runs to its end (at most SHUTDOWN_GRACE seconds). */
	bool draining;
	/* Privsep (privsep.h): DRAIN_FILE as the keeper sees it (the parser is chrooted), and
	 * signals come from the keeper, not the kernel. */
	bool drain_file_present;
	/* Non-empty: why new tasks cannot start now (no task uid free, containerd unreachable):
	 * `request` gets 503 with it, `available` says busy. Set from the keeper's K_HEALTH. */
	char start_blocked[160];
	bool signals_from_keeper;
	/* Where tasks run. NULL when no sandbox is configured: then
	 * `request` accepts tasks but says plainly that nothing ran. Called
	 * through a pointer so the protocol core (and its unit tests and
	 * fuzzers) does not link the containerd client. */
	void *sandbox;
	int (*start_task)(void *sandbox, struct task *t, struct err *err);
	/* Interactive runs (execute socket): start the program with its output
	 * going to sink; feed it input; pause/resume reading its output (the
	 * socket's back-pressure); detach (browser gone: the program is killed). */
	int (*exec_attach)(void *sandbox, struct task *t, const struct exec_sink *sink,
			   struct err *err);
	int (*exec_input)(void *sandbox, struct task *t, const void *data, size_t len,
			  struct err *err);
	void (*exec_pause)(void *sandbox, struct task *t, bool paused);
	void (*exec_detach)(void *sandbox, struct task *t);
	/* Web-app pass-through: one relay per proxied HTTP connection to the running task's
	 * local server. web_open returns the relay's handle (NULL and err: none free, EBUSY,
	 * or the task is not serving); web_input queues request bytes and returns how many
	 * wait (-1: too many); web_pause stops/resumes the output (back-pressure); web_close:
	 * the client left (no more sink calls). */
	void *(*web_open)(void *sandbox, struct task *t, const struct web_sink *sink,
			  struct err *err);
	long (*web_input)(void *sandbox, void *relay, const void *data, size_t len);
	long (*web_queued)(void *sandbox, void *relay);
	void (*web_pause)(void *sandbox, void *relay, bool paused);
	void (*web_close)(void *sandbox, void *relay);
	/* `update` (§2.7): write files into a running task (replacing existing regular files).
	 * On 0 the files are taken over (*files zeroed) and done(arg, ok) comes exactly once,
	 * later, from the loop (ok 1: all written; 0: refused, failed or timed out); on -1
	 * (the task is not running, too many updates wait) *files stays the caller's and done
	 * never comes. NULL: updates are not possible (update=0). */
	int (*update_task)(void *sandbox, struct task *t, struct task_files *files,
			   void (*done)(void *arg, int ok), void *arg, struct err *err);
	struct jail_defer *defer;
	/* Whether an unknown admin ticket is one of a task this worker lost when it restarted
	 * (ticketlog.h); each is said once. NULL: never known. */
	bool (*ticket_lost)(void *sandbox, const char *ticket, size_t len);
	/* What the task waits for before compiling (an image pull), for the
	 * monitor: false when nothing to say. */
	bool (*task_progress)(void *sandbox, struct task *t, char *out, size_t n);
	int64_t (*now_ms)(void);  /* monotonic clock, replaceable in tests */
	struct evloop *ev;	  /* non-socket fds and timers; NULL without a sandbox */
	struct ws_sess *monitors; /* open monitor sockets (ws.c) */
};

int64_t jail_monotonic_ms(void);

#endif
