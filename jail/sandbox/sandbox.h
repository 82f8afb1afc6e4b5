/*
 * sandbox.h - runs a task in a fresh containerd container.
 *
 * A run goes: resolve the image -> create the container (our helper as its
 * init, everything as the prisoner: a uid = gid of the container's own, from
 * PRISONER_UID..+PRISONER_UIDS-1, which no other live container of ours has;
 * uidpool.h) -> stage the files through a FIFO ->
 * exec the compile script -> probe for vpl_execution (deleting
 * `filestodelete`) -> in batch mode exec vpl_execution -> DONE -> remove the
 * container, its snapshot and its FIFOs. Every step is an asynchronous
 * containerd call or an fd event on the worker's loop, so a slow containerd
 * never blocks other clients. Limits: the request's, clamped (task->limits),
 * for the compile script and the program alike: cgroup memory (= swap),
 * pids and CPU quota; RLIMIT_CPU/FSIZE/NOFILE/CORE; a wall-clock timer per
 * phase that kills everything in the container.
 *
 * The host never opens a path a container could have written: the FIFOs
 * live in a root-owned directory the container sees read-only; they are
 * owned by the container's uid.
 *
 * Task uids: a container (pooled ones too) takes its uid when it is created
 * and gives it back once containerd has deleted it (every process gone);
 * when that is uncertain (a failed cleanup step, a call whose outcome is
 * unknown, shutdown) the uid stays claimed until the sweep sees no container
 * labelled vplcell.uid=<uid>. All uids in use: sandbox_start fails with
 * EBUSY ("the server is busy"), never a shared uid. USER= of vplbdx.cfg must
 * name a user of the image and sets USER/LOGNAME, but the uid stays the
 * container's own: uniqueness wins over the image's uid.
 *
 * Ownership: the sandbox owns its runs. A task points at its run
 * (task->run); when the task table drops a task that still has a run, it
 * calls sandbox_release_task(), which detaches the task and lets the run
 * clean up on its own.
 */
#ifndef VC_SANDBOX_H
#define VC_SANDBOX_H

#include "config.h"
#include "err.h"
#include "evloop.h"
#include "jail.h"
#include "tasks.h"

struct sandbox;

/* Proxied connections at once per web task (the helper runs 4 phases): sandbox_web_open
 * refuses more with EBUSY. */
#define SANDBOX_WEB_RELAYS 3

struct sandbox *sandbox_new(const struct jail_config *cfg, struct evloop *ev, struct err *err);
/* Kills and removes whatever is still running (blocking: call after the
 * loop has stopped), then frees. */
void sandbox_free(struct sandbox *sb);

/* Starts the run of a task in COMPILING state. On return 0 the task moves
 * on by itself (RUNNING, then DONE with its outputs). */
int sandbox_start(struct sandbox *sb, struct task *t, struct err *err);

/* task_release_fn for the task table. */
void sandbox_release_task(struct task *t, void *sb);

/* Interactive runs, for the execute socket (jail.h): start the program on a
 * terminal with its output going to sink; feed it input; pause or resume its
 * output; the browser left (the program is killed, the task ends). */
int sandbox_exec_attach(struct sandbox *sb, struct task *t, const struct exec_sink *sink,
			struct err *err);
int sandbox_exec_input(struct sandbox *sb, struct task *t, const void *data, size_t len,
		       struct err *err);
void sandbox_exec_pause(struct sandbox *sb, struct task *t, bool paused);
void sandbox_exec_detach(struct sandbox *sb, struct task *t);

/* Web-app pass-through (jail.h's web_*): a relay phase per proxied connection to the
 * running web task's local server, inside the container. */
void *sandbox_web_open(struct sandbox *sb, struct task *t, const struct web_sink *sink,
		       struct err *err);
long sandbox_web_input(struct sandbox *sb, void *relay, const void *data, size_t len);
long sandbox_web_queued(struct sandbox *sb, void *relay);
void sandbox_web_pause(struct sandbox *sb, void *relay, bool paused);
void sandbox_web_close(struct sandbox *sb, void *relay);

/* jail.h's update_task: writes files into a running task's work dir through the helper
 * ("U", runner.h), replacing existing regular files. Only while the task's files are staged
 * and its program waits for its terminal or runs; else -1 (EINVAL; EBUSY: too many updates
 * of that task wait). On 0 the files are taken over (*files zeroed) and done(arg, ok) comes
 * exactly once, later, from the loop (never from inside this call): ok 1 when the helper
 * wrote every file, 0 when it refused one, failed, did not answer in time or the run ended
 * (also at sandbox_free). On -1, *files is left to the caller and done never comes. */
int sandbox_update(struct sandbox *sb, struct task *t, struct task_files *files,
		   void (*done)(void *arg, int ok), void *arg, struct err *err);

/* jail.h's task_progress: an image pull the task waits for. */
bool sandbox_task_progress(struct sandbox *sb, struct task *t, char *out, size_t n);

/* Whether a new task could get a container now: false, with a reason for the client, while
 * every task uid is in use or containerd cannot be reached (the worker then says `busy`). */
bool sandbox_can_start(struct sandbox *sb, char *why, size_t n);

/* Number of runs whose containers still exist (including ones cleaning up). */
unsigned sandbox_live_runs(const struct sandbox *sb);

#endif
