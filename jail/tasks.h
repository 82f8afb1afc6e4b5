/*
 * tasks.h - the task table and each task's state machine.
 *
 * A task is one `request` or `directrun`. It owns its three tickets, its
 * clamped limits, its outputs and (until staged) its files. States:
 *
 *   COMPILING -> RUNNING -> DONE -> STOPPED
 *        \          \        \----> EXPIRED
 *         \          \------------> STOPPED | EXPIRED
 *          \----------------------> DONE | STOPPED | EXPIRED
 *
 * STOPPED and EXPIRED are terminal: the task is unlinked and freed by
 * task_remove(). Any other transition is refused (a bug, reported as an
 * error, never silently taken).
 *
 * Ownership: the table owns its tasks; pointers returned by task_find() and
 * task_create() stay valid until task_remove() or task_table_free().
 * Lookups compare tickets in constant time over a linear scan: the table is
 * bounded by MAX_TASKS (3 tickets each), so a scan costs microseconds and
 * leaks nothing about which prefix matched.
 */
#ifndef VC_TASKS_H
#define VC_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include "buf.h"
#include "err.h"
#include "taskfiles.h"
#include "tickets.h"

enum task_state { TASK_COMPILING, TASK_RUNNING, TASK_DONE, TASK_STOPPED, TASK_EXPIRED };
enum ticket_kind { TICKET_ADMIN, TICKET_MONITOR, TICKET_EXECUTE, TICKET_PASSTHROUGH };
/* What an interactive task runs once compiled (vpl_execution, vpl_wexecution,
 * vpl_webexecution). */
enum task_run_kind { TASK_RUN_NONE, TASK_RUN_TERMINAL, TASK_RUN_VNC, TASK_RUN_WEB };

struct task_limits {
	long long maxtime; /* seconds */
	long long maxfilesize;
	long long maxmemory;
	long long maxprocesses;
};

struct task {
	uint64_t id; /* for logs: tickets are secrets */
	enum task_state state;
	bool interactive;
	bool directrun;
	char admin[TICKET_LEN + 1];
	char monitor[TICKET_LEN + 1]; /* empty for directrun */
	char execute[TICKET_LEN + 1];
	/* web-app mode: the VPL_web cookie's value, set (by the sandbox) once the program's
	 * local server is known; empty until then and for any other task */
	char passthrough[TICKET_LEN + 1];
	bool monitor_used, execute_used; /* single-use tickets */
	struct task_limits limits;
	int64_t created_ms;
	int64_t deadline_ms; /* absolute lifetime cap */
	struct buf compilation;
	struct buf execution;
	bool executed;
	char *script; /* the `execute` script name, owned */
	char *lang;   /* owned */
	struct task_files files;
	void *run; /* the sandbox's execution of this task, NULL when none */
	/* Progress, for the monitor socket (written by the sandbox). */
	bool compile_started;  /* the compile script runs */
	bool awaiting_execute; /* interactive, compiled: waiting for the execute socket */
	enum task_run_kind run_kind;
	bool timed_out;		  /* killed at its time limit */
	unsigned oom_mib;	  /* > 0: killed for memory, at this limit */
	struct task_table *table; /* for task_touch; NULL for a task not made by task_create */
	struct task *next;
};

struct task_table;

struct task_table *task_table_new(unsigned max_tasks, size_t result_max_size);
void task_table_free(struct task_table *tt);

/* Called for a task that still has a run when it is removed (stop, expiry,
 * shutdown): the sandbox aborts the run and cleans its container up. */
typedef void (*task_release_fn)(struct task *t, void *arg);
void task_table_set_release(struct task_table *tt, task_release_fn fn, void *arg);

/* Called, synchronously, when what a task's monitor reports may have changed: its state
 * (task_set_state calls it) or the progress flags (whoever sets them calls task_touch).
 * The callee must not change the table: it only schedules work (ws.c wakes the task's
 * monitor sockets at once instead of at their next tick). */
typedef void (*task_notify_fn)(struct task *t, void *arg);
void task_table_set_notify(struct task_table *tt, task_notify_fn fn, void *arg);
void task_touch(struct task *t);

/* New task in COMPILING with three fresh tickets. Fails with code EBUSY at
 * the MAX_TASKS cap. */
struct task *task_create(struct task_table *tt, int64_t now_ms, struct err *err);
struct task *task_find(struct task_table *tt, const char *ticket, size_t len,
		       enum ticket_kind kind);
/* By id (sockets keep ids, not pointers: the task may be gone). NULL if gone. */
struct task *task_by_id(struct task_table *tt, uint64_t id);
int task_set_state(struct task *t, enum task_state to, struct err *err);
/* Moves to `final` (STOPPED or EXPIRED), unlinks and frees the task. */
void task_remove(struct task_table *tt, struct task *t, enum task_state final);
unsigned task_count(const struct task_table *tt);
/* Tasks a shutdown should wait for: running ones, and finished evaluations whose result
 * Moodle has not collected yet (an interactive run's end has nothing to collect). */
unsigned task_count_pending(const struct task_table *tt);
unsigned task_max(const struct task_table *tt);
/* Expires every task past its deadline; returns how many. */
unsigned task_sweep(struct task_table *tt, int64_t now_ms);
const char *task_state_name(enum task_state s);
bool task_is_running(const struct task *t);

#endif
