/*
 * jail.h - the state one vpl-jail worker process owns.
 *
 * Single-threaded: everything here is touched only from the event loop
 * thread. The struct owns its config and task table.
 */
#ifndef VC_JAIL_H
#define VC_JAIL_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "evloop.h"
#include "fail2ban.h"
#include "tasks.h"

struct jail_stats {
	uint64_t requests;
	uint64_t errors;
};

struct jail {
	struct jail_config cfg;
	struct task_table *tasks;
	struct jail_stats stats;
	struct f2b *f2b; /* NULL when FAIL2BAN=0 */
	/* Where tasks run. NULL when no sandbox is configured: then
	 * `request` accepts tasks but says plainly that nothing ran. Called
	 * through a pointer so the protocol core (and its unit tests and
	 * fuzzers) does not link the containerd client. */
	void *sandbox;
	int (*start_task)(void *sandbox, struct task *t, struct err *err);
	int64_t (*now_ms)(void); /* monotonic clock, replaceable in tests */
	struct evloop *ev;	 /* non-socket fds and timers; NULL without a sandbox */
};

int64_t jail_monotonic_ms(void);

#endif
