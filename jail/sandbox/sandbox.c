#include "sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctr_client.h"
#include "ctr_ops.h"
#include "filestream.h"
#include "github.com/containerd/containerd/api/events/task.pb-c.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/tasks/v1/tasks.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "imageref.h"
#include "log.h"
#include "oci_spec.h"
#include "puller.h"
#include "registry.h"
#include "tickets.h"
#include "uidpool.h"
#include "vplbdx.h"

#define CALL_MS	       10000 /* deadline of an ordinary containerd call */
#define CREATE_MS      30000 /* task create spawns a shim and runc: slower */
#define EOF_GRACE_MS   500   /* after exit, how long output may still drain */
#define OUT_NOTE_ROOM  160   /* reserved at the end of a capped output for the note */
#define WORKDIR	       "/home/prisoner"
#define IO_IN_CTR      "/.vplcell/io"
#define PROBE_MAX      512
#define SWEEP_MS       5000	     /* how often this worker looks for its orphans */
#define EXEC_WAIT_MS   (60 * 1000)   /* compiled: the browser must open the terminal by then */
#define EXEC_INPUT_MAX (1024 * 1024) /* keystrokes waiting for the program */
#define WEB_RELAYS     SANDBOX_WEB_RELAYS
#define WEB_INPUT_MAX  (1024 * 1024) /* request bytes waiting for the relay */
#define WEB_ADDR_MS    500	     /* web: ask for .vpl_localserveraddress that often */
#define WEB_ADDR_TRIES 20	     /* ... that many times */
#define UPDATE_MS      10000	     /* an update's answer comes by then, or it failed */
#define UPDATE_QUEUE   4	     /* updates of one task waiting or in flight */

enum step {
	ST_IMAGE,
	ST_SETUP,
	ST_STAGING,
	ST_COMPILE,
	ST_PROBE,
	ST_WAIT_EXEC, /* interactive: compiled, waiting for the execute socket */
	ST_RUN,
	ST_CLEANUP,
	ST_GONE
};

struct image_entry {
	char *name;
	char *chain;
	struct image_entry *next;
};

struct phase {
	const char *exec_id;
	char fifo[PATH_MAX];
	int fd;
	struct ev_watch *w;
	struct buf *out;
	bool truncated;
	bool to_sink; /* interactive: output goes to the execute socket */
	bool started, exited, eof, finished;
	uint32_t status;
	struct ev_timer *limit;
	struct ev_timer *grace;
};

/* Web-app mode (§6.8): one helper relay phase ("C") per proxied HTTP connection, from
 * the helper's "C" until its "exit". Its FIFOs: <name>.in (the request, held O_RDWR like
 * the terminal's input) and <name>.out (the local server's answer, for the sink). */
struct web_relay {
	struct run *r;
	char name[8]; /* a phase name: letters only */
	bool busy;    /* the helper's phase exists (until "exit") */
	bool has_sink, paused, exited, eof;
	struct web_sink sink;
	int out_fd, in_fd;
	struct ev_watch *out_w, *in_w;
	struct buf inq;
};

/* One `update` RPC (runner.h "U"): its own FIFO <io>/upd<letters>, held O_RDWR from before
 * the command; the stream is written once the helper said "updating" (the name is then
 * gone). Updates of a run go one at a time, in order. */
struct update {
	struct run *r;
	struct update *next;
	char name[24];
	int fd;
	struct ev_watch *w;
	struct ev_timer *timer;
	bool sent, acked, written;
	struct task_files files;
	size_t idx;
	int part; /* 0 header, 1 name, 2 data */
	size_t off;
	char hdr[FILESTREAM_HEADER_MAX];
	size_t hdr_len;
	void (*done)(void *arg, int ok);
	void *arg;
};

struct run {
	struct sandbox *sb;
	struct task *task; /* NULL once the task is gone */
	unsigned long long task_id;
	char id[128];
	char dir[PATH_MAX];
	char image[320];	  /* containerd name of the task's image */
	unsigned long long seq;	  /* the run's number (in its id) */
	struct shim_group *group; /* joined at container create, left when cleanup starts */
	char user[33];		  /* USER= of vplbdx.cfg ("" = the prisoner): a name only */
	bool user_known;	  /* USER= was found in the image */
	unsigned uid, gid;	  /* the container's own (uidpool.h): its processes and FIFOs */
	bool has_uid;		  /* uid is held from sb->uids */
	bool uid_doubt;		  /* the container may outlive the run: keep the uid claimed */
	char chain[160];
	bool chain_logged;	 /* the "image ... rootfs" line was written */
	struct image_source src; /* where a pull gets it */
	bool force;		 /* FORCEPULL asked and due */
	struct pull_wait *pw;	 /* a pull this run waits for */
	enum step step;
	int pending;   /* containerd calls whose callbacks are still due */
	bool seq_busy; /* a call of the sequential chain is in flight */
	bool aborting;
	bool container_created, snapshot_prepared, task_created, task_started, init_exited;
	bool task_deleted, snapshot_removed, container_deleted, kill_sent, init_waiting;
	bool ready_seen;	     /* the helper said "ready" before Start's reply came */
	struct ev_timer *kill_retry; /* a Kill that failed is tried again */
	bool pooled;		     /* started ahead of time, waiting for a task */
	bool updating;		     /* the task's limits are being set (pool take) */
	bool staged;		     /* the helper has the files */
	bool parked;		     /* pooled and ready: can be taken */
	struct ctr_mounts *mounts;
	int init_fd;
	struct ev_watch *init_w;
	char init_line[256];
	size_t init_len;
	int files_fd;
	struct ev_watch *files_w;
	int ctl_fd; /* commands to the helper (runner.h) */
	bool probed;
	size_t file_idx;
	int file_part; /* 0 header, 1 name, 2 data */
	size_t file_off;
	char hdr[96];
	size_t hdr_len;
	struct phase ph;
	struct buf probe;
	bool timed_out, oom;
	/* interactive: the execute socket and the program's terminal */
	struct exec_sink sink;
	bool has_sink;
	int in_fd; /* <io>/run.in, held O_RDWR so the helper never sees a writer missing */
	struct ev_watch *in_w;
	struct buf inq; /* input not yet taken by the FIFO */
	struct ev_timer *exec_wait;
	/* VNC: the launcher (Xvnc, window manager, vpl_wexecution) runs beside
	 * the relay phase; its output is read and dropped */
	int aux_fd;
	struct ev_watch *aux_w;
	char aux_fifo[PATH_MAX];
	/* web: the program's local server (web_port 0: not known yet) and the relays */
	char web_ip[16];
	int web_port;
	struct ev_timer *addr_timer;
	int addr_tries;
	struct web_relay web[WEB_RELAYS];
	struct update *updates; /* the head is the one the helper has (or gets next) */
	unsigned upd_seq;
	struct run *next;
};

struct sandbox {
	const struct jail_config *cfg;
	struct evloop *ev;
	struct ctr_client *client;
	struct ev_watch *client_w;
	struct ctr_sub *sub;
	char worker[64];
	char dir[PATH_MAX];
	struct image_entry *images;
	struct puller *puller;
	char default_name[320]; /* DEFAULT_IMAGE as containerd names it */
	struct image_source default_src;
	struct run *runs;
	unsigned live;
	unsigned long long seq;
	struct shim_group *cur_group; /* new containers join it while it has room */
	unsigned long long group_seq;
	struct ev_timer *sweep;
	unsigned orphans;     /* orphan removals in flight */
	bool closing;	      /* the client is being freed: start no new call */
	bool stopping;	      /* shutting down: no new pool container */
	int lock_fd;	      /* STATE_DIR/<worker>.lock, flock'ed while we live */
	struct uidpool *uids; /* one host uid per container, claims in STATE_DIR/uids */
};

static void advance(struct run *r);
static void pool_fill(struct sandbox *sb);
static void on_exec_wait(void *arg);
/*
 * Shim groups. containerd's runc shim serves every container whose spec names
 * the same group, and exits when its last task is deleted: a container that
 * joins a group at that moment fails ("ttrpc: closed"). So a group is joined
 * only while it has members that are not being cleaned up; when its last such
 * member starts cleaning up the group retires, and the next container starts
 * a new one (and a new shim). And containerd 1.6 races when two containers of
 * a group start its shim at once ("remove pre-existing socket"), so a group
 * takes a second member only once its shim is up (a member's task created);
 * until then concurrent containers each start a group of their own.
 */
struct shim_group {
	unsigned long long id;
	unsigned joined, live;
	bool ready; /* a member's task was created: the shim runs */
};

static struct shim_group *shim_group_join(struct sandbox *sb)
{
	struct shim_group *g = sb->cur_group;
	if (!g || g->joined >= (unsigned)sb->cfg->shim_group_size || !g->ready) {
		g = calloc(1, sizeof *g);
		if (!g)
			return NULL;
		g->id = ++sb->group_seq;
		sb->cur_group = g; /* a full one lives on through its members */
	}
	g->joined++;
	g->live++;
	return g;
}

static void shim_group_leave(struct sandbox *sb, struct shim_group **gp)
{
	struct shim_group *g = *gp;
	*gp = NULL;
	if (!g || --g->live > 0)
		return;
	if (sb->cur_group == g)
		sb->cur_group = NULL;
	free(g);
}

static void cleanup_next(struct run *r);
static void on_killed(void *arg, const struct ctr_status *st);
static void on_init_exit(void *arg, const struct ctr_status *st, uint32_t status);

/* ------------------------------------------------------------ helpers */

static void run_log_fail(struct run *r, const char *what, const struct ctr_status *st)
{
	log_warn("task %llu: %s failed: %s %s", r->task_id, what, ctr_code_name(st->code),
		 st->details);
}

/* Appends program output, keeping room for the truncation note. */
static void out_append(struct buf *b, bool *truncated, const char *p, size_t n)
{
	size_t room = b->max > OUT_NOTE_ROOM ? b->max - OUT_NOTE_ROOM : 0;
	if (b->len >= room) {
		*truncated = *truncated || n > 0;
		return;
	}
	if (n > room - b->len) {
		n = room - b->len;
		*truncated = true;
	}
	buf_append(b, p, n, NULL);
}

static void note(struct run *r, struct buf *b, const char *text)
{
	if (!r->task || !b)
		return;
	if (b->len && b->data[b->len - 1] != '\n')
		buf_puts(b, "\n", NULL);
	buf_puts(b, text, NULL);
	buf_puts(b, "\n", NULL);
}

/* The execute socket gets its end once: the program exited or the run is
 * over. */
static void sink_end(struct run *r, const char *why)
{
	if (!r->has_sink)
		return;
	r->has_sink = false;
	r->sink.ended(r->sink.sess, why);
}

static void web_release(struct web_relay *w);
static void web_end(struct web_relay *w);
static void updates_fail_all(struct run *r);

static void close_input(struct run *r)
{
	updates_fail_all(r);
	ev_timer_cancel(r->addr_timer);
	r->addr_timer = NULL;
	for (int i = 0; i < WEB_RELAYS; i++) {
		web_end(&r->web[i]);
		web_release(&r->web[i]);
	}
	if (r->task) /* the browser link dies with the program */
		explicit_bzero(r->task->passthrough, sizeof r->task->passthrough);
	if (r->in_w) {
		ev_unwatch(r->in_w);
		r->in_w = NULL;
	}
	if (r->in_fd >= 0)
		close(r->in_fd);
	r->in_fd = -1;
	buf_free(&r->inq);
	ev_timer_cancel(r->exec_wait);
	r->exec_wait = NULL;
	if (r->aux_w) {
		ev_unwatch(r->aux_w);
		r->aux_w = NULL;
	}
	if (r->aux_fd >= 0)
		close(r->aux_fd);
	r->aux_fd = -1;
	if (r->aux_fifo[0])
		unlink(r->aux_fifo);
	r->aux_fifo[0] = '\0';
}

static void fail_run(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_run(struct run *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	log_warn("task %llu: %s", r->task_id, msg);
	if (r->task) {
		note(r, &r->task->compilation, msg);
		if (r->task->state == TASK_COMPILING || r->task->state == TASK_RUNNING)
			task_set_state(r->task, TASK_DONE, NULL);
	}
	r->aborting = true;
	if (!r->seq_busy)
		cleanup_next(r);
}

/* The run's container is deleted (every process of it gone): its uid may serve another. When
 * that is not certain (a cleanup step failed, a call's outcome is unknown), the claim stays and
 * the sweep frees it once containerd lists no container with that uid (claim_live). */
static void run_uid_return(struct run *r)
{
	if (!r->has_uid)
		return;
	r->has_uid = false;
	if (r->uid_doubt || r->sb->closing) {
		uidpool_abandon(r->sb->uids, r->uid);
		log_debug("task %llu: uid %u kept claimed until its container is known gone",
			  r->task_id, r->uid);
	} else {
		uidpool_release(r->sb->uids, r->uid);
	}
}

static void maybe_free(struct run *r)
{
	if (r->step != ST_GONE || r->pending > 0)
		return;
	struct sandbox *sb = r->sb;
	for (struct run **pp = &sb->runs; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	sb->live--;
	shim_group_leave(sb, &r->group);
	run_uid_return(r);
	ev_timer_cancel(r->kill_retry);
	buf_free(&r->probe);
	free(r);
}

/* Every containerd callback starts with this: one pending call less, and
 * the run may have been aborted meanwhile. Returns true when the callback
 * should go on with the normal flow. */
static bool callback_enter(struct run *r, bool sequential)
{
	r->pending--;
	if (sequential)
		r->seq_busy = false;
	return !r->aborting && r->step != ST_GONE;
}

static void callback_leave(struct run *r)
{
	if (r->aborting && !r->seq_busy && r->step != ST_GONE)
		cleanup_next(r);
	maybe_free(r);
}

static int fifo_make(struct run *r, const char *name, char *path, size_t pathsz, uid_t owner)
{
	if ((size_t)snprintf(path, pathsz, "%s/%s", r->dir, name) >= pathsz)
		return -1;
	unlink(path);
	if (mkfifo(path, 0600) < 0)
		return -1;
	if (owner && chown(path, owner, owner) < 0)
		return -1;
	return 0;
}

static void unlink_fifo(struct run *r, const char *name)
{
	char p[PATH_MAX];
	if (snprintf(p, sizeof p, "%s/%s", r->dir, name) < (int)sizeof p)
		unlink(p);
}

static void close_watch(struct ev_watch **w, int *fd)
{
	ev_unwatch(*w);
	*w = NULL;
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* ------------------------------------------------------------ image */

static const char *image_cached(struct sandbox *sb, const char *name)
{
	for (struct image_entry *e = sb->images; e; e = e->next)
		if (strcmp(e->name, name) == 0)
			return e->chain;
	return NULL;
}

static void image_remember(struct sandbox *sb, const char *name, const char *chain)
{
	for (struct image_entry *o = sb->images; o; o = o->next)
		if (strcmp(o->name, name) == 0) { /* re-resolved (FORCEPULL): the new chain wins */
			char *c = strdup(chain);
			if (c) {
				free(o->chain);
				o->chain = c;
			}
			return;
		}
	struct image_entry *e = calloc(1, sizeof *e);
	if (!e)
		return;
	e->name = strdup(name);
	e->chain = strdup(chain);
	if (!e->name || !e->chain) {
		free(e->name);
		free(e->chain);
		free(e);
		return;
	}
	e->next = sb->images;
	sb->images = e;
}

/* The image GC removed NAME: its cached chain points at snapshots that go. */
static void image_forget(void *arg, const char *name)
{
	struct sandbox *sb = arg;
	for (struct image_entry **pp = &sb->images; *pp; pp = &(*pp)->next) {
		struct image_entry *e = *pp;
		if (strcmp(e->name, name) == 0) {
			*pp = e->next;
			free(e->name);
			free(e->chain);
			free(e);
			return;
		}
	}
}

static void on_pulled(void *arg, const char *chain, const char *msg)
{
	struct run *r = arg;
	r->pw = NULL;
	if (!chain) {
		fail_run(r, "vpl-jail: the image %s cannot be used: %s", r->image, msg);
	} else {
		snprintf(r->chain, sizeof r->chain, "%s", chain);
		image_remember(r->sb, r->image, chain);
		r->step = ST_SETUP;
		advance(r);
	}
	maybe_free(r);
}

/*
 * USER= of vplbdx.cfg: the user must exist in the image's /etc/passwd (read from the content
 * store by the puller, never from a path) and be neither root nor of root's group. The task
 * then runs with USER and LOGNAME set to that name, but with the container's OWN uid/gid
 * (uidpool.h), not the image's: two tasks of one activity would otherwise share a host uid.
 * Files of the image that only the image's user may read stay unreadable to the task.
 */
static void on_user(void *arg, const char *ids, const char *msg)
{
	struct run *r = arg;
	r->pw = NULL;
	unsigned uid, gid;
	if (!ids || sscanf(ids, "%u:%u", &uid, &gid) != 2 || uid == 0 || gid == 0) {
		fail_run(r, "vpl-jail: vplbdx.cfg: USER=%s: %s", r->user, ids ? "bad ids" : msg);
	} else {
		r->user_known = true;
		log_debug("task %llu: USER=%s (image uid %u) runs as uid %u", r->task_id, r->user,
			  uid, r->uid);
		advance(r);
	}
	maybe_free(r);
}

static void lookup_user(struct run *r)
{
	struct err e;
	r->pw = puller_user(r->sb->puller, r->image, r->user, on_user, r, &e);
	if (!r->pw)
		fail_run(r, "vpl-jail: %s", e.msg);
}

/* Hands the image to the puller (not a containerd call: the run is not busy meanwhile, and
 * an abort just cancels the wait). */
static void pull_image(struct run *r)
{
	struct err e;
	log_info("task %llu: getting image %s%s", r->task_id, r->image,
		 r->force ? " (FORCEPULL)" : "");
	r->pw = puller_ensure(r->sb->puller, &r->src, r->image, r->force, on_pulled, r, &e);
	if (!r->pw)
		fail_run(r, "vpl-jail: %s", e.msg);
}

static void on_chain(void *arg, const struct ctr_status *st, const char *value)
{
	struct run *r = arg;
	if (callback_enter(r, true)) {
		if (st->code == CTR_NOT_FOUND && r->sb->puller && r->src.local.host[0]) {
			pull_image(r);
		} else if (st->code == CTR_UNAVAILABLE || st->code == CTR_DEADLINE_EXCEEDED) {
			/* Not the teacher's image at fault: say so, or they would chase DOCKER=. */
			fail_run(r,
				 "vpl-jail: the server's container runtime did not answer; try "
				 "again in a moment (%s)",
				 st->details);
		} else if (st->code != CTR_OK || !value) {
			fail_run(r, "vpl-jail: the image %s is not available on this server (%s)",
				 r->image, st->code == CTR_NOT_FOUND ? "not found" : st->details);
		} else {
			snprintf(r->chain, sizeof r->chain, "%s", value);
			image_remember(r->sb, r->image, value);
			r->step = ST_SETUP;
			advance(r);
		}
	}
	callback_leave(r);
}

/* ------------------------------------------------------------ setup */

static void on_task_started(void *arg, const struct ctr_status *st, uint32_t pid);
static void on_init_exit(void *arg, const struct ctr_status *st, uint32_t status);
static void on_init_readable(void *arg, int fd, unsigned events);

/* A call that timed out or lost its connection may still have happened
 * in containerd: cleanup must then try to remove what it would have made
 * (removals are idempotent). */
static bool outcome_unknown(const struct ctr_status *st)
{
	return st->code == CTR_DEADLINE_EXCEEDED || st->code == CTR_UNAVAILABLE ||
	       st->code == CTR_CANCELLED || st->code == CTR_UNKNOWN;
}

static void on_container(void *arg, const struct ctr_status *st)
{
	struct run *r = arg;
	if (outcome_unknown(st)) {
		r->container_created = true;
		r->uid_doubt = true; /* containerd may make it after our delete */
	}
	if (callback_enter(r, true)) {
		if (st->code != CTR_OK) {
			run_log_fail(r, "container create", st);
			fail_run(r, "vpl-jail: could not create the task's container");
		} else {
			r->container_created = true;
			advance(r);
		}
	}
	callback_leave(r);
}

static void on_snapshot(void *arg, const struct ctr_status *st, struct ctr_mounts *m)
{
	struct run *r = arg;
	if (m)
		r->mounts = m;
	if (st->code == CTR_OK || outcome_unknown(st))
		r->snapshot_prepared = true;
	if (callback_enter(r, true)) {
		if (st->code != CTR_OK) {
			run_log_fail(r, "snapshot prepare", st);
			fail_run(r, "vpl-jail: could not prepare the task's file system");
		} else {
			advance(r);
		}
	}
	callback_leave(r);
}

static void on_task_created(void *arg, const struct ctr_status *st, uint32_t pid)
{
	struct run *r = arg;
	if (st->code == CTR_OK || outcome_unknown(st))
		r->task_created = true;
	if (outcome_unknown(st))
		r->uid_doubt = true; /* a task we never saw may run as the uid */
	if (st->code == CTR_OK && r->group)
		r->group->ready = true;
	if (callback_enter(r, true)) {
		if (st->code != CTR_OK) {
			run_log_fail(r, "task create", st);
			fail_run(r, "vpl-jail: could not start the task's container");
		} else {
			advance(r);
		}
	}
	callback_leave(r);
}

static void on_task_started(void *arg, const struct ctr_status *st, uint32_t pid)
{
	struct run *r = arg;
	if (st->code == CTR_OK || outcome_unknown(st))
		r->task_started = true;
	if (outcome_unknown(st))
		r->uid_doubt = true;
	if (callback_enter(r, true)) {
		if (st->code != CTR_OK) {
			run_log_fail(r, "task start", st);
			fail_run(r, "vpl-jail: could not start the task's container");
		} else {
			advance(r);
		}
	}
	callback_leave(r);
}

static void phase_finish(struct run *r);
static void on_grace(void *arg);

/* True when the kernel OOM-killed a process of container id's cgroup (cgroupsPath is
 * /vplcell/<id>, oci_spec): "oom_kill N" in memory.events (v2) or memory.oom_control
 * (v1). Kernel files under a hierarchy the container sees read-only, not its paths. */
static bool cgroup_oom_killed(const char *id)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/sys/fs/cgroup/vplcell/%s/memory.events", id);
	FILE *f = fopen(p, "re");
	if (!f) {
		snprintf(p, sizeof p, "/sys/fs/cgroup/memory/vplcell/%s/memory.oom_control", id);
		f = fopen(p, "re");
	}
	if (!f)
		return false;
	char line[128];
	unsigned long long n = 0;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "oom_kill %llu", &n) == 1)
			break;
	fclose(f);
	return n > 0;
}

static void on_init_exit(void *arg, const struct ctr_status *st, uint32_t status)
{
	struct run *r = arg;
	r->init_exited = true;
	r->init_waiting = false;
	if (callback_enter(r, false)) {
		/* The helper only exits when killed: the container is gone
		 * under the task (OOM of the whole cgroup, or a kill). */
		if (r->ph.started && !r->ph.exited) {
			r->ph.exited = true;
			r->ph.status = 128 + SIGKILL;
			if (!r->ph.eof) {
				/* nothing can write any more: what is buffered is all */
				r->ph.eof = true;
			}
			phase_finish(r);
		} else if (r->step < ST_COMPILE) {
			fail_run(r, "vpl-jail: the task's container ended early (status %u)",
				 status);
		}
	}
	callback_leave(r);
}

/* ------------------------------------------------------------ staging */

static void on_files_writable(void *arg, int fd, unsigned events)
{
	struct run *r = arg;
	struct task_files *f = &r->task->files;
	for (;;) {
		const char *p;
		size_t n;
		if (r->file_idx == f->n) {
			p = FILESTREAM_END;
			n = strlen(FILESTREAM_END);
			if (r->file_off >= n) {
				close_watch(&r->files_w, &r->files_fd);
				/* The helper has everything: drop the contents,
				 * keep the names for the probe's deletions. */
				for (size_t i = 0; i < f->n; i++) {
					free(f->v[i].owned_data);
					f->v[i].owned_data = NULL;
					f->v[i].data = NULL;
					f->v[i].len = 0;
				}
				json_decref(f->keep);
				f->keep = NULL;
				return;
			}
		} else {
			struct task_file *tf = &f->v[r->file_idx];
			if (r->file_part == 0 && r->file_off == 0) {
				int h = filestream_header(r->hdr, sizeof r->hdr, tf->mode,
							  strlen(tf->name), tf->len);
				if (h < 0) {
					close_watch(&r->files_w, &r->files_fd);
					fail_run(r, "vpl-jail: file %s cannot be sent", tf->name);
					return;
				}
				r->hdr_len = (size_t)h;
			}
			if (r->file_part == 0) {
				p = r->hdr;
				n = r->hdr_len;
			} else if (r->file_part == 1) {
				p = tf->name;
				n = strlen(tf->name);
			} else {
				p = tf->data;
				n = tf->len;
			}
			if (r->file_off >= n) {
				r->file_off = 0;
				if (++r->file_part == 3) {
					r->file_part = 0;
					r->file_idx++;
				}
				continue;
			}
		}
		ssize_t w = write(fd, p + r->file_off, n - r->file_off);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			close_watch(&r->files_w, &r->files_fd);
			fail_run(r, "vpl-jail: sending the files failed: %s", strerror(errno));
			return;
		}
		r->file_off += (size_t)w;
	}
}

static void start_staging(struct run *r)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/files", r->dir) >= (int)sizeof path) {
		fail_run(r, "vpl-jail: STATE_DIR path too long");
		return;
	}
	/* The helper opened its end before saying "ready", so this does not
	 * fail with ENXIO; the directory is ours, so the path is too. */
	r->files_fd = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	struct err e;
	if (r->files_fd < 0) {
		fail_run(r, "vpl-jail: cannot open the files channel: %s", strerror(errno));
		return;
	}
	r->files_w = ev_watch_fd(r->sb->ev, r->files_fd, EV_WRITE, on_files_writable, r, &e);
	if (!r->files_w) {
		close(r->files_fd);
		r->files_fd = -1;
		fail_run(r, "vpl-jail: %s", e.msg);
	}
}

/* Sends one command to the helper. Commands are far below PIPE_BUF, so a
 * write is atomic; the helper reads them as fast as they come. */
static int send_command(struct run *r, const char *cmd, size_t len)
{
	ssize_t w = write(r->ctl_fd, cmd, len);
	if (w != (ssize_t)len) {
		fail_run(r, "vpl-jail: cannot talk to the task's helper: %s",
			 w < 0 ? strerror(errno) : "short write");
		return -1;
	}
	return 0;
}

static void pool_park(struct run *r)
{
	r->parked = true;
	log_debug("sandbox: container %s ready in the pool", r->id);
}

/* The helper is ready for the files: stage them, or wait in the pool. */
static void ready_to_stage(struct run *r)
{
	if (r->pooled) {
		pool_park(r);
		return;
	}
	r->step = ST_STAGING;
	start_staging(r);
}

static bool web_line(struct run *r, const char *line);
static bool update_line(struct run *r, const char *line);

static void init_line(struct run *r, const char *line)
{
	struct phase *ph = &r->ph;
	if (update_line(r, line) || web_line(r, line))
		return;
	if (strcmp(line, "ready") == 0 && r->step == ST_SETUP) {
		/* The helper can speak before containerd answers Start: the
		 * chain of calls must finish first, or two would overlap. */
		if (!r->task_started || !r->init_waiting) {
			r->ready_seen = true;
			return;
		}
		ready_to_stage(r);
	} else if (strncmp(line, "staged ", 7) == 0 && r->step == ST_STAGING) {
		/* The helper holds both open; no student code has run yet.
		 * Without names, nothing in the container can open them. */
		unlink_fifo(r, "files");
		unlink_fifo(r, "ctl");
		r->staged = true;
		if (r->updating)
			return; /* the limits first: on_updated moves on */
		r->step = ST_COMPILE;
		advance(r);
	} else if (strncmp(line, "started ", 8) == 0) {
		/* The program holds its output open: remove the name, so no
		 * other process of the task can write into this phase. */
		char name[32], in[48];
		if (sscanf(line, "started %31s", name) != 1)
			name[0] = '\0';
		if (ph->started && ph->exec_id && strcmp(name, ph->exec_id) == 0) {
			if (ph->fifo[0])
				unlink(ph->fifo);
			snprintf(in, sizeof in, "%s.in", name);
			if (r->in_fd >= 0)
				unlink_fifo(r, in);
			if (!ph->to_sink) { /* X: the program waits for this to exec */
				char go[48];
				int n = snprintf(go, sizeof go, "G %s\n", name);
				send_command(r, go, (size_t)n);
			}
		} else if (r->aux_fifo[0] && strcmp(name, "vncsrv") == 0) {
			unlink(r->aux_fifo);
			static const char go[] = "G vncsrv\n";
			send_command(r, go, sizeof go - 1);
		}
	} else if (strncmp(line, "exit ", 5) == 0 && ph->started && !ph->exited) {
		char name[32];
		unsigned status;
		if (sscanf(line, "exit %31s %u", name, &status) == 2 &&
		    strcmp(name, ph->exec_id) == 0) {
			ph->exited = true;
			ph->status = status;
			if (ph->eof) {
				phase_finish(r);
			} else {
				struct err e;
				ph->grace = ev_timer_add(r->sb->ev, EOF_GRACE_MS, on_grace, r, &e);
				if (!ph->grace) {
					ph->eof = true;
					phase_finish(r);
				}
			}
		}
	} else if (strncmp(line, "probe ", 6) == 0 && r->step == ST_PROBE && !r->probed) {
		r->probed = true;
		buf_reset(&r->probe);
		buf_puts(&r->probe, line + 6, NULL);
		advance(r);
	} else if (strncmp(line, "error ", 6) == 0) {
		char safe[200];
		log_sanitize(safe, sizeof safe, line + 6, strlen(line + 6));
		fail_run(r, "vpl-jail: the task's helper failed: %s", safe);
	} else {
		char safe[100];
		log_sanitize(safe, sizeof safe, line, strlen(line));
		fail_run(r, "vpl-jail: unexpected message from the task's helper: %s", safe);
	}
}

static void on_init_readable(void *arg, int fd, unsigned events)
{
	struct run *r = arg;
	char b[512];
	ssize_t n = read(fd, b, sizeof b);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		close_watch(&r->init_w, &r->init_fd);
		if (r->step < ST_COMPILE)
			fail_run(
			    r, "vpl-jail: the task's helper stopped before the files were staged");
		return;
	}
	for (ssize_t i = 0; i < n && r->init_w && !r->aborting; i++) {
		if (b[i] == '\n') {
			r->init_line[r->init_len] = '\0';
			r->init_len = 0;
			init_line(r, r->init_line);
		} else if (r->init_len + 1 < sizeof r->init_line) {
			r->init_line[r->init_len++] = b[i];
		}
	}
}

/* ------------------------------------------------------------ phases */

static void on_phase_readable(void *arg, int fd, unsigned events)
{
	struct run *r = arg;
	struct phase *ph = &r->ph;
	char b[65536];
	for (int rounds = 0; rounds < 16; rounds++) {
		ssize_t n = read(fd, b, sizeof b);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			close_watch(&ph->w, &ph->fd);
			ph->eof = true;
			if (ph->exited && !r->aborting)
				phase_finish(r);
			return;
		}
		if (r->has_sink && ph->to_sink)
			r->sink.output(r->sink.sess, b, (size_t)n);
		else if (ph->out)
			out_append(ph->out, &ph->truncated, b, (size_t)n);
		if (!ph->w || !ev_watch_events(ph->w))
			return; /* paused by the socket's back-pressure, or closed */
	}
}

static void on_grace(void *arg)
{
	struct run *r = arg;
	r->ph.grace = NULL;
	/* A detached child still holds the output open: stop listening. */
	if (!r->ph.eof && !r->aborting) {
		close_watch(&r->ph.w, &r->ph.fd);
		r->ph.eof = true;
		phase_finish(r);
	}
}

static void kill_all(struct run *r)
{
	if (!r->task_created || r->init_exited)
		return;
	struct err e;
	if (!r->init_waiting) {
		/* The end of the init is what cleanup waits for. */
		r->pending++;
		r->init_waiting = true;
		if (ctr_task_wait(r->sb->client, r->id, NULL, -1, on_init_exit, r, &e) < 0) {
			r->pending--;
			r->init_waiting = false;
			log_warn("task %llu: wait: %s", r->task_id, e.msg);
		}
	}
	if (r->kill_sent)
		return;
	r->kill_sent = true;
	r->pending++;
	if (ctr_task_kill(r->sb->client, r->id, NULL, SIGKILL, true, CALL_MS, on_killed, r, &e) <
	    0) {
		r->pending--;
		log_warn("task %llu: kill: %s", r->task_id, e.msg);
	}
}

static void retry_kill(void *arg)
{
	struct run *r = arg;
	r->kill_retry = NULL;
	if (!r->init_exited && r->step != ST_GONE && !r->sb->closing)
		kill_all(r);
}

static void on_killed(void *arg, const struct ctr_status *st)
{
	struct run *r = arg;
	if (st->code != CTR_OK && st->code != CTR_NOT_FOUND) {
		run_log_fail(r, "kill", st);
		/* Until the kill lands, the container lives on (containerd
		 * stalled, say): try again, or cleanup would wait forever. */
		r->kill_sent = false;
		struct err e;
		if (!r->kill_retry && !r->sb->closing)
			r->kill_retry = ev_timer_add(r->sb->ev, 1000, retry_kill, r, &e);
	}
	r->pending--;
	callback_leave(r);
}

static void on_limit(void *arg)
{
	struct run *r = arg;
	r->ph.limit = NULL;
	r->timed_out = true;
	if (r->task)
		r->task->timed_out = true;
	log_info("task %llu: time limit reached in %s", r->task_id, r->ph.exec_id);
	kill_all(r);
}

/* mode 'X': output to a FIFO; 'T': on a terminal, with an input FIFO too
 * (runner.h). */
static void start_phase_mode(struct run *r, char mode, const char *name, const char *const *args,
			     struct buf *out)
{
	struct phase *ph = &r->ph;
	memset(ph, 0, sizeof *ph);
	ph->fd = -1;
	ph->exec_id = name;
	ph->out = out;
	char fifo[64];
	snprintf(fifo, sizeof fifo, "%s.out", name);
	/* The helper's child opens it for writing, as the prisoner. */
	if (fifo_make(r, fifo, ph->fifo, sizeof ph->fifo, (uid_t)r->uid) < 0) {
		fail_run(r, "vpl-jail: cannot create an output channel: %s", strerror(errno));
		return;
	}
	/* epoll reports nothing on a FIFO that never had a writer, so the
	 * read end can be watched at once. */
	struct err e;
	ph->fd = open(ph->fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW);
	if (ph->fd < 0 ||
	    !(ph->w = ev_watch_fd(r->sb->ev, ph->fd, EV_READ, on_phase_readable, r, &e))) {
		fail_run(r, "vpl-jail: cannot open an output channel: %s",
			 ph->fd < 0 ? strerror(errno) : e.msg);
		return;
	}
	ph->to_sink = mode != 'X';
	if (mode != 'X') {
		char in[64], path[PATH_MAX];
		snprintf(in, sizeof in, "%s.in", name);
		/* O_RDWR: never blocks, and the helper's reader never sees EOF
		 * until we close it (browser gone). */
		if (fifo_make(r, in, path, sizeof path, (uid_t)r->uid) < 0 ||
		    (r->in_fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0) {
			fail_run(r, "vpl-jail: cannot create an input channel: %s",
				 strerror(errno));
			return;
		}
		buf_init(&r->inq, EXEC_INPUT_MAX);
	}
	const struct task_limits *l = &r->task->limits;
	char cmd[2048];
	size_t argc = 0;
	while (args[argc])
		argc++;
	int n = mode == 'C' ? snprintf(cmd, sizeof cmd, "C %s %s\n", name, args[0])
			    : snprintf(cmd, sizeof cmd, "%c %s %lld %lld %lld %zu\n", mode, name,
				       l->maxtime, l->maxfilesize, l->maxprocesses, argc);
	if (mode == 'C')
		argc = 0;
	for (size_t i = 0; i < argc && n > 0 && (size_t)n < sizeof cmd; i++)
		n += snprintf(cmd + n, sizeof cmd - (size_t)n, "%s\n", args[i]);
	if (n <= 0 || (size_t)n >= sizeof cmd) {
		fail_run(r, "vpl-jail: command too long");
		return;
	}
	if (send_command(r, cmd, (size_t)n) < 0)
		return;
	ph->started = true;
	ph->limit = ev_timer_add(r->sb->ev, l->maxtime * 1000, on_limit, r, &e);
}

static void start_phase(struct run *r, const char *name, const char *const *args, struct buf *out)
{
	start_phase_mode(r, 'X', name, args, out);
}

static void start_probe(struct run *r)
{
	/* Deletes `filestodelete` and tells which program the script left.
	 * The names were checked by the worker and are checked again by the
	 * helper. */
	char cmd[4096];
	size_t k = 0;
	for (size_t i = 0; i < r->task->files.n; i++)
		if (r->task->files.v[i].delete_after_compile)
			k++;
	int n = snprintf(cmd, sizeof cmd, "P %zu\n", k);
	for (size_t i = 0; i < r->task->files.n && n > 0 && (size_t)n < sizeof cmd; i++)
		if (r->task->files.v[i].delete_after_compile)
			n += snprintf(cmd + n, sizeof cmd - (size_t)n, "%s\n",
				      r->task->files.v[i].name);
	if (n <= 0 || (size_t)n >= sizeof cmd) {
		/* too many names for one command: delete none rather than some */
		n = snprintf(cmd, sizeof cmd, "P 0\n");
		log_warn("task %llu: filestodelete too long, nothing deleted", r->task_id);
	}
	send_command(r, cmd, (size_t)n);
}

static const char *signal_note(uint32_t status, char *b, size_t n)
{
	if (status > 128 && status < 128 + 65) {
		snprintf(b, n, "Jail: program terminated due to signal %u.", status - 128);
		return b;
	}
	return NULL;
}

static void phase_finish(struct run *r)
{
	struct phase *ph = &r->ph;
	if (!ph->exited || !ph->eof || ph->finished)
		return;
	ph->finished = true;
	ev_timer_cancel(ph->limit);
	ph->limit = NULL;
	ev_timer_cancel(ph->grace);
	ph->grace = NULL;
	close_watch(&ph->w, &ph->fd);
	unlink(ph->fifo);
	if (ph->truncated && ph->out) {
		char t[128];
		snprintf(t, sizeof t, "Jail: output truncated at %zu bytes.", ph->out->len);
		note(r, ph->out, t);
	}
	if (!r->oom && !r->timed_out && cgroup_oom_killed(r->id)) {
		/* The OOM event can trail the exit, or never come: the shim drops it when the
		 * cgroup is gone before it reads it. The kernel's own counter is certain. */
		r->oom = true;
		if (r->task)
			r->task->oom_mib = (unsigned)(r->task->limits.maxmemory >> 20);
		log_info("task %llu: out of memory (cgroup counter)", r->task_id);
	}
	if (ph->out) {
		char sig[96];
		if (r->timed_out)
			note(r, ph->out, "Jail: execution time limit reached.");
		else if (r->oom)
			note(r, ph->out, "Jail: out of memory.");
		else if (signal_note(ph->status, sig, sizeof sig))
			note(r, ph->out, sig);
	}
	log_info("task %llu: %s exited with status %u", r->task_id, ph->exec_id, ph->status);
	if (ph->to_sink)
		sink_end(r, r->timed_out ? "time limit" : r->oom ? "out of memory" : "exit");
	if (r->timed_out || r->oom || r->init_exited) {
		/* The container is dead or dying: nothing more can run. */
		r->aborting = true;
		if (r->task && task_is_running(r->task))
			task_set_state(r->task, TASK_DONE, NULL);
		if (!r->seq_busy)
			cleanup_next(r);
		return;
	}
	advance(r);
}

/* ------------------------------------------------------------ the flow */

/* Interactive, compiled: the program starts when the browser opens the execute socket
 * (sandbox_exec_attach), which it must do within EXEC_WAIT_MS. */
static void wait_for_execute(struct run *r, enum task_run_kind kind)
{
	struct err e;
	r->step = ST_WAIT_EXEC;
	r->task->run_kind = kind;
	r->task->awaiting_execute = true;
	task_touch(r->task);
	r->exec_wait = ev_timer_add(r->sb->ev, EXEC_WAIT_MS, on_exec_wait, r, &e);
}

static void build_env(struct run *r, const char **env, char store[][320], size_t max)
{
	const struct jail_config *cfg = r->sb->cfg;
	size_t n = 0;
	snprintf(store[n++], 320, "PATH=%s", cfg->envpath);
	snprintf(store[n++], 320, "HOME=" WORKDIR);
	snprintf(store[n++], 320, "TMPDIR=/tmp");
	snprintf(store[n++], 320, "TERM=dumb");
	const char *user = r->user[0] ? r->user : "prisoner";
	snprintf(store[n++], 320, "USER=%s", user);
	snprintf(store[n++], 320, "LOGNAME=%s", user);
	snprintf(store[n++], 320, "UID=%u", r->uid);
	snprintf(store[n++], 320, "VPL_LANG=%s", r->task && r->task->lang ? r->task->lang : "C");
	for (size_t i = 0; i < n && i + 1 < max; i++)
		env[i] = store[i];
	env[n < max ? n : max - 1] = NULL;
}

static void setup_step(struct run *r)
{
	struct sandbox *sb = r->sb;
	const struct jail_config *cfg = sb->cfg;
	struct err e;
	int rc = 0;
	r->pending++;
	r->seq_busy = true;
	struct ctr_runtime rt = {.binary_name = cfg->runtime};
	if (!r->container_created) {
		/* The helper's children inherit the init's environment. */
		const char *env[16];
		char store[16][320];
		build_env(r, env, store, 16);
		long long quota = (long long)cfg->task_cpu_percent * 1000; /* of a 100 ms period */
		/* Containers of one group share one runc shim (~13 MB, most of it
		 * shared code): idle interactive sessions cost their own processes,
		 * not a shim each. The shim reads the group from the spec's
		 * annotations. A shim that dies takes its group: SHIM_GROUP_SIZE
		 * trades that isolation for memory (1 = a shim per container). */
		char group[96];
		if (!r->group)
			r->group = shim_group_join(sb);
		snprintf(group, sizeof group, "vplcell-%s-g%llu", sb->worker,
			 r->group ? r->group->id : 0);
		struct oci_container_opts o = {
		    .id = r->id,
		    .cgroup_parent = "/vplcell",
		    .uid = r->uid,
		    .gid = r->gid,
		    .helper_path = cfg->helper_path,
		    .io_dir = r->dir,
		    .workdir_size = cfg->workdir_size,
		    .tmp_size = cfg->tmp_size,
		    .shm_size = 16 << 20,
		    /* A pooled container gets the server's maxima here and
		     * its task's limits by an update when it is taken. */
		    .lim = {r->task ? r->task->limits.maxtime : cfg->max_time,
			    r->task ? r->task->limits.maxfilesize : cfg->max_file_size,
			    r->task ? r->task->limits.maxmemory : cfg->max_memory,
			    r->task ? r->task->limits.maxprocesses : cfg->max_processes},
		    .cpu_quota_us = quota,
		    .cpu_period_us = 100000,
		    .network = cfg->task_network,
		    .hostname = "vpl",
		    .env = env,
		    .shim_group = cfg->shim_group_size > 1 && r->group ? group : NULL,
		};
		char *json = NULL;
		size_t len = 0;
		if (oci_container_spec(&o, &json, &len, &e) < 0) {
			r->pending--;
			r->seq_busy = false;
			fail_run(r, "vpl-jail: %s", e.msg);
			return;
		}
		char tid[32], uid[16];
		snprintf(tid, sizeof tid, "%llu", r->task_id);
		snprintf(uid, sizeof uid, "%u", r->uid);
		/* vplcell.uid: the sweep frees a uid claim only when no container carries it. */
		const char *labels[] = {
		    "vplcell.worker", sb->worker, "vplcell.task", tid, "vplcell.uid", uid, NULL};
		struct ctr_container_spec cs = {.id = r->id,
						.image = r->image,
						.rt = rt,
						.oci_spec = json,
						.oci_spec_len = len,
						.labels = labels};
		rc = ctr_container_create(sb->client, &cs, CALL_MS, on_container, r, &e);
		free(json);
	} else if (!r->snapshot_prepared) {
		rc = ctr_snapshot_prepare(sb->client, CTR_SNAPSHOTTER_DEFAULT, r->id, r->chain, "",
					  CALL_MS, on_snapshot, r, &e);
	} else if (!r->task_created) {
		char out[PATH_MAX];
		if (fifo_make(r, "init.out", out, sizeof out, 0) < 0 ||
		    (r->init_fd = open(out, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0) {
			r->pending--;
			r->seq_busy = false;
			fail_run(r, "vpl-jail: cannot create the helper channel: %s",
				 strerror(errno));
			return;
		}
		struct ctr_task_spec ts = {.container_id = r->id,
					   .stdout_path = out,
					   .stderr_path = out,
					   .rootfs = r->mounts,
					   .rt = rt};
		rc = ctr_task_create(sb->client, &ts, CREATE_MS, on_task_created, r, &e);
	} else if (!r->task_started) {
		if (!(r->init_w =
			  ev_watch_fd(sb->ev, r->init_fd, EV_READ, on_init_readable, r, &e))) {
			r->pending--;
			r->seq_busy = false;
			fail_run(r, "vpl-jail: %s", e.msg);
			return;
		}
		rc = ctr_task_start(sb->client, r->id, NULL, CALL_MS, on_task_started, r, &e);
	} else {
		/* Started: wait for the init's end in the background; the
		 * helper's "ready" line moves the run on. */
		r->seq_busy = false;
		r->init_waiting = true;
		if (ctr_task_wait(sb->client, r->id, NULL, -1, on_init_exit, r, &e) < 0) {
			r->pending--;
			r->init_waiting = false;
			fail_run(r, "vpl-jail: %s", e.msg);
			return;
		}
		if (r->ready_seen)
			ready_to_stage(r);
		return;
	}
	if (rc < 0) {
		r->pending--;
		r->seq_busy = false;
		fail_run(r, "vpl-jail: %s", e.msg);
	}
}

static void parse_probe(struct run *r, bool *exec, bool *wexec, bool *webexec)
{
	*exec = *wexec = *webexec = false;
	const char *s = r->probe.data ? r->probe.data : "";
	*exec = strstr(s, "vpl_execution=1") != NULL;
	*wexec = strstr(s, "vpl_wexecution=1") != NULL;
	*webexec = strstr(s, "vpl_webexecution=1") != NULL;
}

static void advance(struct run *r)
{
	struct sandbox *sb = r->sb;
	struct err e;
	if (r->aborting || (!r->task && !r->pooled)) {
		r->aborting = true;
		if (!r->seq_busy)
			cleanup_next(r);
		return;
	}
	switch (r->step) {
	case ST_IMAGE: {
		if (r->force && sb->puller) {
			pull_image(r);
			return;
		}
		const char *chain = image_cached(sb, r->image);
		if (chain) {
			snprintf(r->chain, sizeof r->chain, "%s", chain);
			r->step = ST_SETUP;
			advance(r);
			return;
		}
		r->pending++;
		r->seq_busy = true;
		if (ctr_image_chain_id(sb->client, r->image, CTR_SNAPSHOTTER_DEFAULT, CALL_MS,
				       on_chain, r, &e) < 0) {
			r->pending--;
			r->seq_busy = false;
			fail_run(r, "vpl-jail: %s", e.msg);
		}
		return;
	}
	case ST_SETUP:
		/* Which content the task ran on, for the log: the image's rootfs chain ID. */
		if (r->task_id && !r->chain_logged) {
			r->chain_logged = true;
			log_info("task %llu: image %s rootfs %.19s", r->task_id, r->image,
				 r->chain);
		}
		if (r->user[0] && !r->user_known) {
			lookup_user(r);
			return;
		}
		setup_step(r);
		return;
	case ST_STAGING:
		return; /* driven by the helper's lines */
	case ST_COMPILE:
		if (!r->ph.exec_id) {
			char script[300];
			snprintf(script, sizeof script, "./%s", r->task->script);
			const char *args[] = {script, NULL};
			r->task->compile_started = true;
			task_touch(r->task);
			start_phase(r, "compile", args, &r->task->compilation);
		} else {
			r->step = ST_PROBE;
			start_probe(r);
		}
		return;
	case ST_PROBE: {
		if (!r->probed)
			return; /* the helper's "probe" line moves on */
		bool ex, wex, webex;
		parse_probe(r, &ex, &wex, &webex);
		if (!r->task->interactive && ex) {
			r->step = ST_RUN;
			task_set_state(r->task, TASK_RUNNING, NULL);
			r->task->executed = true;
			const char *args[] = {"./vpl_execution", NULL};
			start_phase(r, "run", args, &r->task->execution);
			return;
		}
		if (r->task->interactive && ex) {
			wait_for_execute(r, TASK_RUN_TERMINAL);
			return;
		}
		/* §3.3: vpl_execution, else vpl_webexecution, else vpl_wexecution */
		if (r->task->interactive && webex) {
			wait_for_execute(r, TASK_RUN_WEB);
			return;
		}
		if (r->task->interactive && wex) {
			wait_for_execute(r, TASK_RUN_VNC);
			return;
		}
		if (!ex && !wex && !webex && r->task->compilation.len == 0)
			note(r, &r->task->compilation,
			     "The compilation process did not generate an executable nor error "
			     "message.");
		task_set_state(r->task, TASK_DONE, NULL);
		r->aborting = true;
		cleanup_next(r);
		return;
	}
	case ST_WAIT_EXEC:
		return; /* sandbox_exec_attach moves on */
	case ST_RUN:
		if (task_is_running(r->task))
			task_set_state(r->task, TASK_DONE, NULL);
		r->aborting = true;
		cleanup_next(r);
		return;
	case ST_CLEANUP:
	case ST_GONE:
		return;
	}
}

/* ------------------------------------------------------------ cleanup */

static void on_cleanup_done(void *arg, const struct ctr_status *st)
{
	struct run *r = arg;
	r->pending--;
	r->seq_busy = false;
	if (st->code != CTR_OK && st->code != CTR_NOT_FOUND) {
		run_log_fail(r, "cleanup step", st);
		r->uid_doubt = true; /* the container may still be there */
	}
	cleanup_next(r);
	maybe_free(r);
}

static void on_task_deleted(void *arg, const struct ctr_status *st, uint32_t status)
{
	struct run *r = arg;
	r->task_deleted = true;
	on_cleanup_done(arg, st);
}

static void on_snapshot_removed(void *arg, const struct ctr_status *st)
{
	struct run *r = arg;
	r->snapshot_removed = true;
	on_cleanup_done(arg, st);
}

static void on_container_deleted(void *arg, const struct ctr_status *st)
{
	struct run *r = arg;
	r->container_deleted = true;
	on_cleanup_done(arg, st);
}

static void remove_dir(struct run *r)
{
	static const char *const names[] = {"files", "ctl", "init.out", "compile.out", "run.out"};
	char p[PATH_MAX];
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (snprintf(p, sizeof p, "%s/%s", r->dir, names[i]) < (int)sizeof p)
			unlink(p);
	}
	if (rmdir(r->dir) < 0 && errno != ENOENT)
		log_warn("task %llu: cannot remove %s: %s", r->task_id, r->dir, strerror(errno));
}

static void cleanup_next(struct run *r)
{
	if (r->step == ST_GONE || r->seq_busy || r->sb->closing)
		return;
	r->step = ST_CLEANUP;
	r->aborting = true;
	struct sandbox *sb = r->sb;
	shim_group_leave(sb, &r->group);
	puller_cancel(r->pw);
	r->pw = NULL;
	sink_end(r, "stopped");
	close_input(r);
	if (r->task)
		r->task->awaiting_execute = false;
	struct err e;
	close_watch(&r->files_w, &r->files_fd);
	close_watch(&r->init_w, &r->init_fd);
	close_watch(&r->ph.w, &r->ph.fd);
	if (r->ctl_fd >= 0)
		close(r->ctl_fd);
	r->ctl_fd = -1;
	ev_timer_cancel(r->ph.limit);
	r->ph.limit = NULL;
	ev_timer_cancel(r->ph.grace);
	r->ph.grace = NULL;
	int rc = 1;
	if (r->task_created && !r->task_deleted) {
		if (r->task_started && !r->init_exited) {
			kill_all(r); /* the init Wait in flight reports the end */
			return;
		}
		r->pending++;
		r->seq_busy = true;
		rc = ctr_task_delete(sb->client, r->id, CALL_MS, on_task_deleted, r, &e);
	} else if (r->snapshot_prepared && !r->snapshot_removed) {
		r->pending++;
		r->seq_busy = true;
		rc = ctr_snapshot_remove(sb->client, CTR_SNAPSHOTTER_DEFAULT, r->id, CALL_MS,
					 on_snapshot_removed, r, &e);
	} else if (r->container_created && !r->container_deleted) {
		r->pending++;
		r->seq_busy = true;
		rc = ctr_container_delete(sb->client, r->id, CALL_MS, on_container_deleted, r, &e);
	}
	if (rc == 0)
		return;
	if (rc < 0) {
		r->pending--;
		r->seq_busy = false;
		r->uid_doubt = true;
		log_err("task %llu: cleanup of %s stopped: %s", r->task_id, r->id, e.msg);
	}
	ctr_mounts_free(r->mounts);
	r->mounts = NULL;
	remove_dir(r);
	if (r->task)
		r->task->run = NULL;
	r->task = NULL;
	r->step = ST_GONE;
	log_debug("task %llu: container %s removed", r->task_id, r->id);
	if (!r->pooled)
		pool_fill(sb);
}

/* ------------------------------------------------------------ events */

static void on_event(void *arg, const struct ctr_event *ev)
{
	struct sandbox *sb = arg;
	if (ev->kind == CTR_EVENT_LOST) {
		log_warn("containerd event stream lost (%s); resubscribing",
			 ev->st ? ev->st->details : "");
		return;
	}
	if (ev->kind != CTR_EVENT_MESSAGE || !ev->event ||
	    ev->event->descriptor != &containerd__events__task_oom__descriptor)
		return;
	const Containerd__Events__TaskOOM *oom = (const void *)ev->event;
	for (struct run *r = sb->runs; r; r = r->next)
		if (oom->container_id && strcmp(r->id, oom->container_id) == 0) {
			r->oom = true;
			if (r->task)
				r->task->oom_mib = (unsigned)(r->task->limits.maxmemory >> 20);
			log_info("task %llu: out of memory", r->task_id);
		}
}

static void on_client_fd(void *arg, int fd, unsigned events)
{
	struct sandbox *sb = arg;
	ctr_client_dispatch(sb->client);
}

/* ------------------------------------------------------------ orphans */

/*
 * A container labelled with this worker that no run knows about: created by
 * a call whose reply we never saw (containerd stalled past the deadline and
 * did it later), or left by a run that could not finish its cleanup. Every
 * SWEEP_MS the worker lists its containers and removes such orphans:
 * kill, wait for the task to exit, delete the task, remove the snapshot,
 * delete the container. "Not found" is fine at every step. A task that will
 * not go (its delete fails) keeps its container, so the next sweep finds it
 * and tries again: deleting the container first would leave a stopped task
 * and its shim that no sweep could ever see (seen when a Swarm replica was
 * killed and a sibling removed its containers).
 */
struct orphan {
	struct sandbox *sb;
	char id[128];
	int step;
};

#define ORPHAN_WAIT_MS 5000

static void orphan_next(void *arg, const struct ctr_status *st);

static void orphan_exit_cb(void *arg, const struct ctr_status *st, uint32_t status)
{
	orphan_next(arg, st);
}

static void orphan_next(void *arg, const struct ctr_status *st)
{
	struct orphan *o = arg;
	struct sandbox *sb = o->sb;
	struct err e;
	int rc = -1;
	bool failed = st && st->code != CTR_OK && st->code != CTR_NOT_FOUND;
	/* The step before the container's: a task that is still there stops us. */
	if (o->step == 3 && failed) {
		log_info("sandbox: orphan %s: task not deleted yet (%s); next sweep", o->id,
			 st->details);
		o->step = 99;
	}
	switch (sb->closing ? 99 : o->step++) {
	case 0:
		rc = ctr_task_kill(sb->client, o->id, NULL, SIGKILL, true, CALL_MS, orphan_next, o,
				   &e);
		break;
	case 1:
		/* Killed, not yet gone: a delete now would be refused. No task: nothing to wait. */
		if (st && st->code == CTR_NOT_FOUND) {
			rc = ctr_snapshot_remove(sb->client, CTR_SNAPSHOTTER_DEFAULT, o->id,
						 CALL_MS, orphan_next, o, &e);
			o->step = 4; /* the reply comes from the loop, after this */
			break;
		}
		rc = ctr_task_wait(sb->client, o->id, NULL, ORPHAN_WAIT_MS, orphan_exit_cb, o, &e);
		break;
	case 2:
		rc = ctr_task_delete(sb->client, o->id, CALL_MS, orphan_exit_cb, o, &e);
		break;
	case 3:
		rc = ctr_snapshot_remove(sb->client, CTR_SNAPSHOTTER_DEFAULT, o->id, CALL_MS,
					 orphan_next, o, &e);
		break;
	case 4:
		rc = ctr_container_delete(sb->client, o->id, CALL_MS, orphan_next, o, &e);
		break;
	case 5:
		if (st && st->code == CTR_OK)
			log_info("sandbox: removed orphan container %s", o->id);
		break;
	default:
		break;
	}
	if (rc == 0)
		return;
	sb->orphans--;
	free(o);
}

static bool run_known(struct sandbox *sb, const char *id)
{
	for (struct run *r = sb->runs; r; r = r->next)
		if (strcmp(r->id, id) == 0)
			return true;
	return false;
}

/*
 * Whether the worker named owner is gone: its lock file in STATE_DIR exists
 * and nobody holds its flock (a live worker holds it from start to exit). A
 * worker without a lock file here is not ours to judge (another STATE_DIR,
 * another host sharing nothing with us): its containers are left alone.
 */
static bool owner_gone(struct sandbox *sb, const char *owner)
{
	for (const char *p = owner; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			return false;
	if (!*owner || owner[0] == '.')
		return false;
	char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s.lock", sb->cfg->state_dir, owner) >=
	    (int)sizeof path)
		return false;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return false;
	bool gone = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd); /* releases the probe lock, if we got it */
	return gone;
}

static const char *label_of(const Containerd__Services__Containers__V1__Container *c,
			    const char *key)
{
	for (size_t i = 0; i < c->n_labels; i++)
		if (c->labels[i]->key && strcmp(c->labels[i]->key, key) == 0)
			return c->labels[i]->value;
	return NULL;
}

/* What the sweep's list says about uid claims that no run of ours holds (uidpool_reap). */
struct claim_view {
	struct sandbox *sb;
	const Containerd__Services__Containers__V1__ListContainersResponse *lr;
};

static bool claim_live(void *arg, const char *owner, unsigned uid)
{
	struct claim_view *v = arg;
	char want[16];
	snprintf(want, sizeof want, "%u", uid);
	for (size_t i = 0; i < v->lr->n_containers; i++) {
		const char *u = label_of(v->lr->containers[i], "vplcell.uid");
		if (u && strcmp(u, want) == 0)
			return true; /* a container still has it, whoever's it is */
	}
	if (!owner[0])
		return true; /* being written by its maker this very moment: not ours to judge */
	if (strcmp(owner, v->sb->worker) == 0)
		return false; /* ours, not held: abandoned or a previous life's, and no container */
	/* A live sibling's claim may precede its container: only a gone owner's is stale (a gone
	 * worker makes no new container). */
	return !owner_gone(v->sb, owner);
}

static void on_listed(void *arg, const struct ctr_status *st, ProtobufCMessage *reply)
{
	struct sandbox *sb = arg;
	if (st->code != CTR_OK || !reply)
		return;
	const Containerd__Services__Containers__V1__ListContainersResponse *lr =
	    (const void *)reply;
	struct claim_view view = {.sb = sb, .lr = lr};
	unsigned freed = uidpool_reap(sb->uids, claim_live, &view);
	if (freed)
		log_info("sandbox: %u task uid claims freed (their containers are gone)", freed);
	for (size_t i = 0; i < lr->n_containers; i++) {
		const char *id = lr->containers[i]->id;
		const char *owner = label_of(lr->containers[i], "vplcell.worker");
		if (!id || !owner || run_known(sb, id) || sb->orphans > 64)
			continue;
		bool mine = strcmp(owner, sb->worker) == 0;
		if (!mine && !owner_gone(sb, owner))
			continue; /* a live sibling's, or not ours to judge */
		struct orphan *o = calloc(1, sizeof *o);
		if (!o)
			return;
		o->sb = sb;
		snprintf(o->id, sizeof o->id, "%s", id);
		sb->orphans++;
		if (mine)
			log_warn("sandbox: container %s has no task here any more: removing it",
				 id);
		else
			log_warn("sandbox: container %s belongs to worker %s, which is gone: "
				 "removing it",
				 id, owner);
		orphan_next(o, NULL);
	}
}

static void sweep(void *arg)
{
	struct sandbox *sb = arg;
	struct err e;
	sb->sweep = ev_timer_add(sb->ev, SWEEP_MS, sweep, sb, &e);
	pool_fill(sb); /* replaces pool containers that failed, with this pace */
	if (sb->orphans)
		return; /* the previous round is still at work */
	char filter[160];
	/* Ours, and any other worker's: owner_gone() decides. */
	snprintf(filter, sizeof filter, "labels.\"vplcell.worker\"");
	char *filters[] = {filter};
	Containerd__Services__Containers__V1__ListContainersRequest req =
	    CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_REQUEST__INIT;
	req.n_filters = 1;
	req.filters = filters;
	if (ctr_call(sb->client, "/containerd.services.containers.v1.Containers/List", &req.base,
		     &containerd__services__containers__v1__list_containers_response__descriptor,
		     CALL_MS, on_listed, sb, &e) < 0)
		log_warn("sandbox: sweep: %s", e.msg);
}

/* ------------------------------------------------------------ public */

/* DEFAULT_IMAGE's containerd name, and the puller (registries: docs/images.md). */
static int sandbox_images_init(struct sandbox *sb, const struct jail_config *cfg, struct err *err)
{
	struct image_source *d = &sb->default_src;
	memset(d, 0, sizeof *d);
	if (image_ref_parse(cfg->default_image, cfg->local_registry, &d->local, err) < 0)
		return err_wrap(err, "DEFAULT_IMAGE");
	if (image_ref_format(&d->local, sb->default_name, sizeof sb->default_name) < 0)
		return err_set(err, ENAMETOOLONG, "DEFAULT_IMAGE too long");
	/* The local registry is spoken to over plain http only on loopback, unless told. */
	const char *plain = cfg->registry_plain_http;
	const char *lr = cfg->local_registry;
	bool loop = strncmp(lr, "127.", 4) == 0 || strncmp(lr, "localhost", 9) == 0 ||
		    strncmp(lr, "[::1]", 5) == 0;
	char key[96];
	snprintf(key, sizeof key, "vplcell-%s", sb->worker);
	struct puller_config pc = {
	    .local_registry = lr,
	    .plain_http = plain	 ? plain
			  : loop ? lr
				 : "",
	    .auth_file = cfg->registry_auth_file,
	    .ca_file = cfg->registry_ca_file,
	    .snapshotter = CTR_SNAPSHOTTER_DEFAULT,
	    .key_prefix = key,
	    .max_image_size = cfg->max_image_size,
	    .forcepull_ttl_s = cfg->forcepull_ttl,
	    .threads = cfg->pull_threads,
	    .default_image = sb->default_name,
	    .image_unused_ttl_s = cfg->image_unused_ttl,
	    .image_store_max = cfg->image_store_max,
	    .on_removed = image_forget,
	    .removed_arg = sb,
	};
	sb->puller = puller_new(&pc, sb->client, sb->ev, err);
	if (!sb->puller)
		return err_wrap(err, "image puller");
	return 0;
}

/* A task uid that is also a host account's would let a task that got out of its container
 * act as that account. The local passwd file is read once, without NSS (no directory service
 * is asked); a worker in a container sees its own /etc/passwd, not the node's. */
static void warn_host_accounts(const struct jail_config *cfg)
{
	FILE *f = fopen("/etc/passwd", "re");
	if (!f)
		return;
	unsigned long long first = (unsigned long long)cfg->prisoner_uid;
	unsigned long long last = first + (unsigned long long)cfg->prisoner_uids - 1;
	struct passwd *pw;
	for (int n = 0; n < 1000000 && (pw = fgetpwent(f)); n++)
		if (pw->pw_uid >= first && pw->pw_uid <= last) {
			char name[64];
			log_sanitize(name, sizeof name, pw->pw_name, strlen(pw->pw_name));
			log_warn(
			    "sandbox: task uids %llu..%llu (PRISONER_UID, PRISONER_UIDS) include "
			    "the host account %s (uid %u): choose a range no account uses",
			    first, last, name, (unsigned)pw->pw_uid);
		}
	fclose(f);
}

struct sandbox *sandbox_new(const struct jail_config *cfg, struct evloop *ev, struct err *err)
{
	if (access(cfg->helper_path, X_OK) < 0) {
		err_sys(err, errno, "HELPER_PATH %s", cfg->helper_path);
		return NULL;
	}
	struct sandbox *sb = calloc(1, sizeof *sb);
	if (!sb) {
		err_sys(err, ENOMEM, "allocating sandbox");
		return NULL;
	}
	sb->cfg = cfg;
	sb->ev = ev;
	/* Container and shim-group numbers start at the wall clock in ms, not 1: a worker
	 * restarted with the same WORKER_ID must not reuse the id of a container (or the group
	 * of a shim) its killed predecessor left behind ("failed to start shim: mkdir ...: file
	 * exists"). It never makes containers faster than one a millisecond. */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	sb->seq = sb->group_seq =
	    (unsigned long long)now.tv_sec * 1000 + (unsigned long long)now.tv_nsec / 1000000;
	if (cfg->worker_id) {
		snprintf(sb->worker, sizeof sb->worker, "%s", cfg->worker_id);
	} else {
		char host[40] = "host";
		gethostname(host, sizeof host - 1);
		snprintf(sb->worker, sizeof sb->worker, "%s-%d", host, (int)getpid());
	}
	/* containerd ids allow [A-Za-z0-9_.-] */
	for (char *p = sb->worker; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
			*p = '_';
	if (mkdir(cfg->state_dir, 0755) < 0 && errno != EEXIST) {
		err_sys(err, errno, "STATE_DIR %s", cfg->state_dir);
		free(sb);
		return NULL;
	}
	/* The liveness mark other workers test before they reap our
	 * containers (owner_gone): held until this process ends. */
	char lock[PATH_MAX];
	snprintf(lock, sizeof lock, "%s/%s.lock", cfg->state_dir, sb->worker);
	sb->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (sb->lock_fd < 0 || flock(sb->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err_sys(err, errno, "WORKER_ID %s: %s (another worker with this name runs?)",
			sb->worker, lock);
		if (sb->lock_fd >= 0)
			close(sb->lock_fd);
		free(sb);
		return NULL;
	}
	snprintf(sb->dir, sizeof sb->dir, "%s/%s", cfg->state_dir, sb->worker);
	if (mkdir(sb->dir, 0755) < 0 && errno != EEXIST) {
		err_sys(err, errno, "creating %s", sb->dir);
		close(sb->lock_fd);
		free(sb);
		return NULL;
	}
	/* Claims in STATE_DIR/uids: workers sharing STATE_DIR (Swarm replicas) never give one
	 * uid to two containers; others need disjoint PRISONER_UID ranges (uidpool.h). */
	char claims[PATH_MAX];
	snprintf(claims, sizeof claims, "%s/uids", cfg->state_dir);
	sb->uids = uidpool_new((unsigned)cfg->prisoner_uid, (unsigned)cfg->prisoner_uids, claims,
			       sb->worker, err);
	if (!sb->uids) {
		err_wrap(err, "PRISONER_UID/PRISONER_UIDS");
		rmdir(sb->dir);
		close(sb->lock_fd);
		free(sb);
		return NULL;
	}
	warn_host_accounts(cfg);
	sb->client = ctr_client_new(cfg->containerd_socket, cfg->containerd_namespace, NULL, err);
	if (!sb->client) {
		uidpool_free(sb->uids);
		rmdir(sb->dir);
		close(sb->lock_fd);
		free(sb);
		return NULL;
	}
	sb->client_w = ev_watch_fd(ev, ctr_client_fd(sb->client), EV_READ, on_client_fd, sb, err);
	if (!sb->client_w) {
		ctr_client_free(sb->client);
		uidpool_free(sb->uids);
		rmdir(sb->dir);
		close(sb->lock_fd);
		free(sb);
		return NULL;
	}
	char filter[256];
	snprintf(filter, sizeof filter, "topic==\"/tasks/oom\",namespace==\"%s\"",
		 cfg->containerd_namespace);
	const char *filters[] = {filter};
	sb->sub = ctr_subscribe(sb->client, filters, 1, on_event, sb, err);
	if (!sb->sub)
		log_warn("containerd events: %s (out-of-memory will be reported as a kill)",
			 err ? err->msg : "?");
	if (sandbox_images_init(sb, cfg, err) < 0) {
		ctr_unsubscribe(sb->sub);
		ev_unwatch(sb->client_w);
		ctr_client_free(sb->client);
		uidpool_free(sb->uids);
		rmdir(sb->dir);
		close(sb->lock_fd);
		free(sb);
		return NULL;
	}
	sweep(sb); /* also removes what a previous worker of this WORKER_ID left */
	log_info("sandbox: containerd %s namespace %s runtime %s worker %s", cfg->containerd_socket,
		 cfg->containerd_namespace, cfg->runtime, sb->worker);
	return sb;
}

/* A new run: for task t, or (t NULL) for the pool. */
static struct run *run_new(struct sandbox *sb, struct task *t, struct err *err)
{
	struct run *r = calloc(1, sizeof *r);
	if (!r) {
		err_sys(err, ENOMEM, "allocating run");
		return NULL;
	}
	r->sb = sb;
	r->task = t;
	r->pooled = t == NULL;
	r->task_id = t ? (unsigned long long)t->id : 0;
	r->init_fd = r->files_fd = r->ph.fd = r->ctl_fd = r->in_fd = r->aux_fd = -1;
	for (int i = 0; i < WEB_RELAYS; i++) {
		struct web_relay *w = &r->web[i];
		w->r = r;
		w->out_fd = w->in_fd = -1;
		snprintf(w->name, sizeof w->name, "web%c", 'a' + i);
	}
	++sb->seq;
	r->seq = sb->seq;
	if (snprintf(r->id, sizeof r->id, "vplcell-%s-%llu", sb->worker, sb->seq) >=
		(int)sizeof r->id ||
	    snprintf(r->dir, sizeof r->dir, "%s/%llu", sb->dir, sb->seq) >= (int)sizeof r->dir) {
		free(r);
		err_set(err, ENAMETOOLONG, "STATE_DIR or WORKER_ID too long");
		return NULL;
	}
	/* The container's own uid, = its gid, for its whole life (a pooled one gets it now: its
	 * helper already runs as it). Nothing exists yet, so a failure below just gives it back. */
	if (uidpool_acquire(sb->uids, &r->uid, err) < 0) {
		free(r);
		return NULL;
	}
	r->gid = r->uid;
	r->has_uid = true;
	snprintf(r->image, sizeof r->image, "%s", sb->default_name);
	r->src = sb->default_src;
	buf_init(&r->probe, PROBE_MAX);
	if (mkdir(r->dir, 0755) < 0) {
		err_sys(err, errno, "creating %s", r->dir);
		uidpool_release(sb->uids, r->uid);
		free(r);
		return NULL;
	}
	char files[PATH_MAX], ctl[PATH_MAX];
	/* The worker holds the control FIFO read-write: commands wait in it
	 * until the helper reads them, and it never sees a reader missing. */
	if (fifo_make(r, "files", files, sizeof files, (uid_t)r->uid) < 0 ||
	    fifo_make(r, "ctl", ctl, sizeof ctl, (uid_t)r->uid) < 0 ||
	    (r->ctl_fd = open(ctl, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		err_sys(err, errno, "creating the helper's channels");
		unlink(files);
		unlink(ctl);
		rmdir(r->dir);
		uidpool_release(sb->uids, r->uid);
		free(r);
		return NULL;
	}
	if (t)
		log_debug("task %llu: container %s uid %u", r->task_id, r->id, r->uid);
	else
		log_debug("sandbox: pool container %s uid %u", r->id, r->uid);
	r->next = sb->runs;
	sb->runs = r;
	sb->live++;
	return r;
}

static void pool_fill(struct sandbox *sb)
{
	unsigned have = 0;
	for (struct run *r = sb->runs; r; r = r->next)
		if (r->pooled && !r->aborting)
			have++;
	while (have < (unsigned)sb->cfg->pool_size && !sb->closing && !sb->stopping) {
		struct err e;
		struct run *r = run_new(sb, NULL, &e);
		if (!r) {
			log_warn("sandbox: pool: %s", e.msg);
			return;
		}
		have++;
		advance(r);
		maybe_free(r);
	}
}

static void on_updated(void *arg, const struct ctr_status *st, ProtobufCMessage *reply)
{
	struct run *r = arg;
	r->updating = false;
	if (callback_enter(r, true)) {
		if (st->code != CTR_OK) {
			run_log_fail(r, "limits update", st);
			fail_run(r, "vpl-jail: could not set the task's limits");
		} else if (r->staged) {
			r->step = ST_COMPILE;
			advance(r);
		}
	}
	callback_leave(r);
}

/* Writes one cgroup control file of ours; the container sees cgroupfs
 * read-only in its own mount namespace, so these paths are not its. */
static int cg_write(const char *path, long long v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	char b[32];
	int n = snprintf(b, sizeof b, "%lld", v);
	ssize_t w = write(fd, b, (size_t)n);
	close(fd);
	return w == n ? 0 : -1;
}

/*
 * Lowers a pooled container's memory and pids limits to its task's, by
 * writing the cgroup files directly: microseconds, where Tasks.Update
 * spawns runc (~15 ms on the task's path). cgroupsPath is /vplcell/<id>
 * (oci_spec); v2 first, then the v1 hierarchies. Returns -1 when the files
 * are not where expected, and the caller falls back to Tasks.Update.
 */
static int cgroup_set_limits(const char *id, long long mem, long long pids)
{
	char p[PATH_MAX];
	snprintf(p, sizeof p, "/sys/fs/cgroup/vplcell/%s/memory.max", id);
	if (access(p, F_OK) == 0) {
		if (cg_write(p, mem) < 0)
			return -1;
		snprintf(p, sizeof p, "/sys/fs/cgroup/vplcell/%s/memory.swap.max", id);
		if (access(p, F_OK) == 0 && cg_write(p, 0) < 0)
			return -1;
		snprintf(p, sizeof p, "/sys/fs/cgroup/vplcell/%s/pids.max", id);
		return cg_write(p, pids);
	}
	/* v1: memory first, then memory+swap (which must stay >= memory). */
	snprintf(p, sizeof p, "/sys/fs/cgroup/memory/vplcell/%s/memory.limit_in_bytes", id);
	if (cg_write(p, mem) < 0)
		return -1;
	snprintf(p, sizeof p, "/sys/fs/cgroup/memory/vplcell/%s/memory.memsw.limit_in_bytes", id);
	if (access(p, F_OK) == 0 && cg_write(p, mem) < 0)
		return -1;
	snprintf(p, sizeof p, "/sys/fs/cgroup/pids/vplcell/%s/pids.max", id);
	return cg_write(p, pids);
}

/* Gives a parked pool container to task t: its environment, then its
 * memory and process limits (the container was made with the maxima). */
static int pool_take(struct run *r, struct task *t, struct err *err)
{
	r->task = t;
	r->task_id = (unsigned long long)t->id;
	r->pooled = r->parked = false;
	t->run = r;
	char cmd[256];
	char lang[128];
	size_t k = 0;
	/* VPL_LANG is a locale name: keep it to the characters locales use. */
	for (const char *p = t->lang ? t->lang : "C"; *p && k + 1 < sizeof lang; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("_.@-", *p))
			lang[k++] = *p;
	lang[k] = '\0';
	int n = snprintf(cmd, sizeof cmd, "E VPL_LANG=%s\n", lang);
	if (send_command(r, cmd, (size_t)n) < 0)
		return 0; /* fail_run has ended the run and told the task */
	/* +1: the helper is a process of the container too (oci_spec). */
	long long pids = t->limits.maxprocesses + 1;
	if (cgroup_set_limits(r->id, t->limits.maxmemory, pids) == 0) {
		r->step = ST_STAGING;
		start_staging(r);
		return 0;
	}
	char res[256];
	int rl = snprintf(res, sizeof res,
			  "{\"memory\":{\"limit\":%lld,\"swap\":%lld},\"pids\":{\"limit\":%lld}}",
			  t->limits.maxmemory, t->limits.maxmemory, pids);
	Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
	any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";
	any.value.data = (uint8_t *)res;
	any.value.len = (size_t)rl;
	Containerd__Services__Tasks__V1__UpdateTaskRequest req =
	    CONTAINERD__SERVICES__TASKS__V1__UPDATE_TASK_REQUEST__INIT;
	req.container_id = r->id;
	req.resources = &any;
	/* The update (a runc process) and the staging run side by side; the
	 * compile script starts only when both are done. */
	r->pending++;
	r->seq_busy = true;
	r->updating = true;
	if (ctr_call(r->sb->client, "/containerd.services.tasks.v1.Tasks/Update", &req.base,
		     &google__protobuf__empty__descriptor, CALL_MS, on_updated, r, err) < 0) {
		r->pending--;
		r->seq_busy = false;
		r->updating = false;
		fail_run(r, "vpl-jail: %s", err->msg);
		return 0;
	}
	r->step = ST_STAGING;
	start_staging(r);
	return 0;
}

/* The task's image: DOCKER= of its vplbdx.cfg (taken out of the files: it is
 * not for the student's eyes), else DEFAULT_IMAGE. Returns -1 with a message
 * for the teacher when the file or the name is not acceptable. */
static int choose_image(struct sandbox *sb, struct task *t, char *name, size_t namesz,
			struct image_source *src, bool *force, char user[33], struct err *err)
{
	user[0] = '\0';
	snprintf(name, namesz, "%s", sb->default_name);
	*src = sb->default_src;
	*force = false;
	const struct task_file *f = taskfiles_find(&t->files, "vplbdx.cfg");
	if (!f)
		return 0;
	struct vplbdx_cfg vc;
	int rc = vplbdx_parse(f->data, f->len, &vc, err);
	taskfiles_remove(&t->files, "vplbdx.cfg");
	if (rc < 0)
		return -1; /* the message names the file and line */
	if (vc.user[0] && !sb->puller)
		return err_set(err, ENOTSUP, "vplbdx.cfg: USER=%s: not available on this server",
			       vc.user);
	snprintf(user, 33, "%s", vc.user);
	if (vc.docker[0]) {
		const char *allowed = sb->cfg->allowed_images;
		struct image_ref as_written;
		if (!(allowed && *allowed) &&
		    image_ref_parse(vc.docker, sb->cfg->local_registry, &as_written, NULL) == 0 &&
		    strcmp(as_written.host, sb->cfg->local_registry) != 0)
			return err_set(
			    err, EPERM,
			    "vplbdx.cfg: DOCKER=%s: images from other registries are not "
			    "allowed on this server (only %s; see ALLOWED_IMAGES)",
			    vc.docker, sb->cfg->local_registry);
		if (image_source_resolve(vc.docker, sb->cfg->local_registry,
					 sb->cfg->upstream_registry, allowed && *allowed, src,
					 err) < 0)
			return err_wrap(err, "vplbdx.cfg: DOCKER=%s", vc.docker);
		if (allowed && *allowed && !image_allowed(allowed, vc.docker, &src->local))
			return err_set(err, EPERM,
				       "vplbdx.cfg: DOCKER=%s: this image is not allowed on this "
				       "server (ALLOWED_IMAGES)",
				       vc.docker);
		if (image_ref_format(&src->local, name, namesz) < 0)
			return err_set(err, ENAMETOOLONG, "vplbdx.cfg: DOCKER=%s: name too long",
				       vc.docker);
	}
	*force = vc.forcepull && sb->puller && puller_force_due(sb->puller, name);
	return 0;
}

int sandbox_start(struct sandbox *sb, struct task *t, struct err *err)
{
	char name[320];
	struct image_source src;
	bool force;
	char user[33];
	struct err ie;
	err_clear(&ie);
	int chosen = choose_image(sb, t, name, sizeof name, &src, &force, user, &ie);
	if (chosen == 0 && sb->puller)
		puller_used(sb->puller, name);
	bool is_default = chosen == 0 && !force && !user[0] && strcmp(name, sb->default_name) == 0;
	for (struct run *p = sb->runs; is_default && p; p = p->next) {
		if (p->parked && !p->aborting && !p->seq_busy) {
			log_info("task %llu: container %s (from the pool) image %s rootfs %.19s",
				 (unsigned long long)t->id, p->id, p->image, p->chain);
			log_debug("task %llu: uid %u", (unsigned long long)t->id, p->uid);
			/* No refill here: creating a container costs a core for
			 * ~0.1 s, which would slow this very task down; the pool
			 * is refilled when a task's container is gone. */
			return pool_take(p, t, err);
		}
	}
	struct run *r = run_new(sb, t, err);
	if (!r) {
		if (err && err->code == EBUSY) /* never two containers on one uid */
			err_wrap(err, "the server is busy, try again later");
		return -1;
	}
	t->run = r;
	if (chosen < 0) {
		fail_run(r, "vpl-jail: %s", ie.msg);
		maybe_free(r);
		return 0;
	}
	snprintf(r->image, sizeof r->image, "%s", name);
	snprintf(r->user, sizeof r->user, "%s", user);
	r->src = src;
	r->force = force;
	log_info("task %llu: container %s image %s", r->task_id, r->id, r->image);
	advance(r);
	maybe_free(r);
	return 0;
}

void sandbox_release_task(struct task *t, void *arg)
{
	struct run *r = t->run;
	if (!r)
		return;
	t->run = NULL;
	r->task = NULL;
	/* Output buffers belonged to the task: stop writing into them. */
	r->ph.out = r->ph.out == &r->probe ? r->ph.out : NULL;
	r->aborting = true;
	if (!r->seq_busy)
		cleanup_next(r);
	maybe_free(r);
}

bool sandbox_can_start(struct sandbox *sb, char *why, size_t n)
{
	if (!ctr_client_reachable(sb->client)) {
		snprintf(why, n,
			 "the execution server cannot reach its container runtime; try "
			 "again later or another server");
		return false;
	}
	if (uidpool_used(sb->uids) >= (unsigned)sb->cfg->prisoner_uids) {
		snprintf(why, n,
			 "the execution server is busy (all task uids in use); try again "
			 "later or another server");
		return false;
	}
	return true;
}

unsigned sandbox_live_runs(const struct sandbox *sb)
{
	return sb ? sb->live : 0;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	/* Shutdown: give the runs' cleanup a bounded time on a private loop. A run's cleanup
	 * refills the pool: not any more. */
	sb->stopping = true;
	for (struct run *r = sb->runs; r; r = r->next) {
		if (r->task)
			r->task->run = NULL;
		r->task = NULL;
		r->ph.out = r->ph.out == &r->probe ? r->ph.out : NULL;
		r->aborting = true;
		if (!r->seq_busy)
			cleanup_next(r);
	}
	ev_timer_cancel(sb->sweep);
	sb->sweep = NULL;
	for (int i = 0; i < 150 && (sb->runs || sb->orphans); i++)
		evloop_run_once(sb->ev, 100);
	if (sb->runs)
		log_warn("sandbox: %u containers still being removed at shutdown", sb->live);
	puller_free(sb->puller); /* its threads use the client */
	sb->puller = NULL;
	sb->closing = true;
	ctr_unsubscribe(sb->sub);
	ev_unwatch(sb->client_w);
	ctr_client_free(sb->client);
	while (sb->runs) {
		struct run *r = sb->runs;
		sb->runs = r->next;
		shim_group_leave(sb, &r->group);
		run_uid_return(r); /* closing: its container may live on, so the claim stays */
		close_watch(&r->files_w, &r->files_fd);
		close_watch(&r->init_w, &r->init_fd);
		close_watch(&r->ph.w, &r->ph.fd);
		if (r->ctl_fd >= 0)
			close(r->ctl_fd);
		close_input(r);
		ev_timer_cancel(r->ph.limit);
		ev_timer_cancel(r->ph.grace);
		ev_timer_cancel(r->kill_retry);
		ctr_mounts_free(r->mounts);
		buf_free(&r->probe);
		free(r);
	}
	while (sb->images) {
		struct image_entry *e = sb->images;
		sb->images = e->next;
		free(e->name);
		free(e->chain);
		free(e);
	}
	uidpool_free(sb->uids);
	rmdir(sb->dir);
	close(sb->lock_fd); /* we are gone: others may judge our leftovers */
	free(sb);
}

/* ------------------------------------------------------------ interactive */

static void on_aux_readable(void *arg, int fd, unsigned events)
{
	struct run *r = arg;
	char b[4096];
	for (int i = 0; i < 16; i++) {
		ssize_t n = read(fd, b, sizeof b);
		if (n > 0)
			continue; /* the launcher's chatter (Xvnc's log): dropped */
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		ev_unwatch(r->aux_w);
		r->aux_w = NULL;
		close(r->aux_fd);
		r->aux_fd = -1;
		return;
	}
}

/*
 * VNC (vpl-jail-protocol.md §6.6): inside the container, the launcher starts
 * Xvnc on display :1, loopback only, with the password the plugin derives
 * (the execution ticket's first 8 characters: the rest of the ticket never
 * enters the container), openbox, then vpl_wexecution; when the program
 * ends it stops Xvnc. The relay phase "vnc" (helper C command) connects to
 * Xvnc from inside the container and carries RFB through FIFOs: the worker
 * never connects to anything a task could substitute.
 */
#define VNC_PORT 5901
static const char vnc_launcher[] =
    "umask 077; d=$(mktemp -d); printf '%s' \"$VPL_VNCPASSWD\" | vncpasswd -f > \"$d/p\"; "
    "unset VPL_VNCPASSWD; g=${VPL_XGEOMETRY:-800x600}; "
    "Xvnc :1 -rfbport 5901 -localhost -interface 127.0.0.1 -SecurityTypes VncAuth "
    "-PasswordFile \"$d/p\" -geometry \"$g\" -depth 24 -nolisten tcp -AlwaysShared=0 "
    ">/dev/null 2>&1 & x=$!; "
    "for i in $(seq 100); do [ -e /tmp/.X11-unix/X1 ] && break; sleep 0.05; done; "
    "export DISPLAY=:1; (openbox >/dev/null 2>&1 &); "
    "./vpl_wexecution; s=$?; kill $x 2>/dev/null; wait $x 2>/dev/null; exit $s";

static void start_vnc(struct run *r)
{
	struct task *t = r->task;
	char env[64];
	int n = snprintf(env, sizeof env, "E VPL_VNCPASSWD=%.8s\n", t->execute);
	if (send_command(r, env, (size_t)n) < 0)
		return;
	explicit_bzero(env, sizeof env);
	struct err e;
	if (fifo_make(r, "vncsrv.out", r->aux_fifo, sizeof r->aux_fifo, (uid_t)r->uid) < 0 ||
	    (r->aux_fd = open(r->aux_fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
	    !(r->aux_w = ev_watch_fd(r->sb->ev, r->aux_fd, EV_READ, on_aux_readable, r, &e))) {
		fail_run(r, "vpl-jail: cannot start the VNC server's channel");
		return;
	}
	const struct task_limits *l = &t->limits;
	char cmd[2048];
	n = snprintf(cmd, sizeof cmd, "X vncsrv %lld %lld %lld 3\n/bin/bash\n-c\n%s\n", l->maxtime,
		     l->maxfilesize, l->maxprocesses, vnc_launcher);
	if (n <= 0 || (size_t)n >= sizeof cmd || send_command(r, cmd, (size_t)n) < 0)
		return;
	static const char clear[] = "E VPL_VNCPASSWD=\n";
	if (send_command(r, clear, sizeof clear - 1) < 0)
		return;
	char port[16];
	snprintf(port, sizeof port, "%d", VNC_PORT);
	const char *args[] = {port, NULL};
	start_phase_mode(r, 'C', "vnc", args, NULL);
	log_info("task %llu: VNC session attached", r->task_id);
}

/* ---- web-app mode (§6.8) ----
 *
 * The program (vpl_webexecution) runs on a terminal like vpl_execution, as
 * vpl_web_launcher.sh would run it. Its local server's address is what the compile script
 * wrote in .vpl_localserveraddress: the helper reads it inside the container ("A") and
 * the worker asks until it is there (the program may write it late, or never: then no
 * browser link). Once known, the task gets its pass-through ticket and every proxied
 * HTTP connection gets a relay phase that the helper connects, inside the container's
 * network namespace, to that address: the worker itself connects to nothing. */

static void ask_address(struct run *r);

static void on_address_timer(void *arg)
{
	struct run *r = arg;
	r->addr_timer = NULL;
	if (r->web_port || r->aborting || r->step != ST_RUN)
		return;
	if (++r->addr_tries >= WEB_ADDR_TRIES) {
		log_info("task %llu: no .vpl_localserveraddress: no browser link", r->task_id);
		return;
	}
	ask_address(r);
}

static void ask_address(struct run *r)
{
	static const char cmd[] = "A\n";
	if (send_command(r, cmd, sizeof cmd - 1) < 0)
		return;
	struct err e;
	r->addr_timer = ev_timer_add(r->sb->ev, WEB_ADDR_MS, on_address_timer, r, &e);
}

/* "addr <ip>:<port>" | "addr none" (runner.h); checked again: it goes into commands. */
static void web_address(struct run *r, const char *a)
{
	char ip[16];
	int port, used = 0;
	struct in_addr in;
	if (r->web_port || !r->task || r->step != ST_RUN || strcmp(a, "none") == 0)
		return;
	if (sscanf(a, "%15[0-9.]:%5d%n", ip, &port, &used) != 2 || a[used] != '\0' || port < 1 ||
	    port > 65535 || inet_pton(AF_INET, ip, &in) != 1 || (ntohl(in.s_addr) >> 24) != 127) {
		log_warn("task %llu: the helper gave a bad local server address", r->task_id);
		return;
	}
	struct err e;
	if (ticket_generate(r->task->passthrough, &e) < 0) {
		log_warn("task %llu: no pass-through ticket: %s", r->task_id, e.msg);
		return;
	}
	snprintf(r->web_ip, sizeof r->web_ip, "%s", ip);
	r->web_port = port;
	ev_timer_cancel(r->addr_timer);
	r->addr_timer = NULL;
	log_info("task %llu: web program serving on %s:%d", r->task_id, ip, port);
	task_touch(r->task);
}

static void start_web(struct run *r)
{
	static const char term[] = "E TERM=xterm\n";
	if (send_command(r, term, sizeof term - 1) < 0)
		return;
	/* vpl_web_launcher.sh (§3.4): a terminal like vpl_terminal_launcher.sh */
	const char *args[] = {"/bin/sh", "-c",
			      "stty sane iutf8 erase '^?' 2>/dev/null; exec ./vpl_webexecution",
			      NULL};
	start_phase_mode(r, 'T', "run", args, NULL);
	if (r->aborting)
		return;
	ask_address(r);
	log_info("task %llu: web terminal attached", r->task_id);
}

static struct web_relay *web_find(struct run *r, const char *name)
{
	for (int i = 0; i < WEB_RELAYS; i++)
		if (r->web[i].busy && strcmp(r->web[i].name, name) == 0)
			return &r->web[i];
	return NULL;
}

static void web_unlink(struct web_relay *w)
{
	char n[32];
	snprintf(n, sizeof n, "%s.in", w->name);
	unlink_fifo(w->r, n);
	snprintf(n, sizeof n, "%s.out", w->name);
	unlink_fifo(w->r, n);
}

static void web_close_fds(struct web_relay *w)
{
	close_watch(&w->out_w, &w->out_fd);
	close_watch(&w->in_w, &w->in_fd);
	buf_free(&w->inq);
}

/* The connection learns the end, once. */
static void web_end(struct web_relay *w)
{
	if (!w->has_sink)
		return;
	w->has_sink = false;
	w->sink.ended(w->sink.sess);
}

/* The slot is free again (the helper's phase is over, or the run is). */
static void web_release(struct web_relay *w)
{
	web_close_fds(w);
	if (w->busy)
		web_unlink(w);
	w->busy = w->has_sink = w->paused = w->exited = w->eof = false;
}

static void web_out_readable(void *arg, int fd, unsigned events)
{
	struct web_relay *w = arg;
	char b[65536];
	for (int rounds = 0; rounds < 16 && w->out_fd >= 0 && !w->paused; rounds++) {
		ssize_t n = read(w->out_fd, b, sizeof b);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			w->eof = true;
			close_watch(&w->out_w, &w->out_fd);
			web_end(w);
			if (w->exited)
				web_release(w);
			return;
		}
		if (w->has_sink)
			w->sink.output(w->sink.sess, b, (size_t)n);
	}
}

static void web_flush(struct web_relay *w);

static void web_in_writable(void *arg, int fd, unsigned events)
{
	web_flush(arg);
}

static void web_flush(struct web_relay *w)
{
	while (w->inq.len && w->in_fd >= 0) {
		ssize_t n = write(w->in_fd, w->inq.data, w->inq.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		memmove(w->inq.data, w->inq.data + n, w->inq.len - (size_t)n);
		w->inq.len -= (size_t)n;
	}
	struct err e;
	if (w->inq.len && !w->in_w && w->in_fd >= 0)
		w->in_w = ev_watch_fd(w->r->sb->ev, w->in_fd, EV_WRITE, web_in_writable, w, &e);
	else if (!w->inq.len && w->in_w) {
		ev_unwatch(w->in_w);
		w->in_w = NULL;
	}
}

/* The helper's lines about web relays and addresses; false: not one of those. */
static bool web_line(struct run *r, const char *line)
{
	char verb[16], name[32];
	struct web_relay *w;
	if (strncmp(line, "addr ", 5) == 0) {
		web_address(r, line + 5);
		return true;
	}
	char what[32];
	if (sscanf(line, "error %31s %31[a-z]", what, name) == 2 && web_find(r, name)) {
		/* A relay that could not start (connect refused...): its "exit" follows, and
		 * only its connection suffers. */
		char safe[160];
		log_sanitize(safe, sizeof safe, line + 6, strlen(line + 6));
		log_info("task %llu: web relay: %s", r->task_id, safe);
		return true;
	}
	if (sscanf(line, "%15s %31[a-z]", verb, name) != 2 || !(w = web_find(r, name)))
		return false;
	if (strcmp(verb, "started") == 0) {
		/* The relay holds both FIFOs: nothing else in the container may open them. */
		web_unlink(w);
	} else if (strcmp(verb, "exit") == 0) {
		w->exited = true;
		if (w->eof || w->out_fd < 0)
			web_release(w);
		else if (!w->paused) /* what is left in the FIFO, then its EOF */
			web_out_readable(w, w->out_fd, EV_READ);
	} else {
		return false;
	}
	return true;
}

void *sandbox_web_open(struct sandbox *sb, struct task *t, const struct web_sink *sink,
		       struct err *err)
{
	struct run *r = t->run;
	if (!r || r->aborting || r->step != ST_RUN || t->run_kind != TASK_RUN_WEB || !r->web_port) {
		err_set(err, EINVAL, "the web program is not serving");
		return NULL;
	}
	struct web_relay *w = NULL;
	for (int i = 0; i < WEB_RELAYS && !w; i++)
		if (!r->web[i].busy)
			w = &r->web[i];
	if (!w) {
		err_set(err, EBUSY, "%d proxied connections already", WEB_RELAYS);
		return NULL;
	}
	char name[32], path[PATH_MAX];
	snprintf(name, sizeof name, "%s.out", w->name);
	w->busy = true; /* from here, web_release() unlinks what was made */
	if (fifo_make(r, name, path, sizeof path, (uid_t)r->uid) < 0 ||
	    (w->out_fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		err_sys(err, errno, "web relay output channel");
		web_release(w);
		return NULL;
	}
	if (!(w->out_w = ev_watch_fd(sb->ev, w->out_fd, EV_READ, web_out_readable, w, err))) {
		web_release(w);
		return NULL;
	}
	snprintf(name, sizeof name, "%s.in", w->name);
	if (fifo_make(r, name, path, sizeof path, (uid_t)r->uid) < 0 ||
	    (w->in_fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		err_sys(err, errno, "web relay input channel");
		web_release(w);
		return NULL;
	}
	buf_init(&w->inq, WEB_INPUT_MAX);
	char cmd[96];
	int n = snprintf(cmd, sizeof cmd, "C %s %d %s\n", w->name, r->web_port, r->web_ip);
	if (write(r->ctl_fd, cmd, (size_t)n) != n) {
		err_sys(err, errno, "cannot talk to the task's helper");
		web_release(w);
		return NULL;
	}
	w->sink = *sink;
	w->has_sink = true;
	log_debug("task %llu: proxied connection on %s", r->task_id, w->name);
	return w;
}

long sandbox_web_input(struct sandbox *sb, void *relay, const void *data, size_t len)
{
	struct web_relay *w = relay;
	if (!w->has_sink || w->in_fd < 0)
		return 0; /* the relay is gone: the bytes have nowhere to go */
	if (buf_append(&w->inq, data, len, NULL) < 0)
		return -1;
	web_flush(w);
	return (long)w->inq.len;
}

long sandbox_web_queued(struct sandbox *sb, void *relay)
{
	struct web_relay *w = relay;
	return (long)w->inq.len;
}

/* Paused, the output FIFO is not watched at all: epoll reports a hang-up even without
 * events asked, and the relay's end must wait until the client takes more. */
void sandbox_web_pause(struct sandbox *sb, void *relay, bool paused)
{
	struct web_relay *w = relay;
	if (w->paused == paused || w->out_fd < 0)
		return;
	w->paused = paused;
	struct err e;
	if (paused) {
		ev_unwatch(w->out_w);
		w->out_w = NULL;
	} else if (!(w->out_w = ev_watch_fd(sb->ev, w->out_fd, EV_READ, web_out_readable, w, &e))) {
		log_warn("task %llu: web relay: %s", w->r->task_id, e.msg);
		close_watch(&w->out_w, &w->out_fd);
		w->eof = true;
		web_end(w);
		if (w->exited)
			web_release(w);
	}
}

/* The client left: close our ends (the relay sees its output's reader gone, or its input
 * end, and exits); the slot stays busy until the helper's "exit". */
void sandbox_web_close(struct sandbox *sb, void *relay)
{
	struct web_relay *w = relay;
	w->has_sink = false;
	web_close_fds(w);
	if (w->exited)
		web_release(w);
}

static void on_exec_wait(void *arg)
{
	struct run *r = arg;
	r->exec_wait = NULL;
	if (r->step == ST_WAIT_EXEC)
		fail_run(r, "vpl-jail: the program's terminal was not opened in time");
}

int sandbox_exec_attach(struct sandbox *sb, struct task *t, const struct exec_sink *sink,
			struct err *err)
{
	struct run *r = t->run;
	if (!r || r->step != ST_WAIT_EXEC || r->aborting || r->has_sink)
		return err_set(err, EINVAL, "the program is not waiting for a terminal");
	ev_timer_cancel(r->exec_wait);
	r->exec_wait = NULL;
	t->awaiting_execute = false;
	r->sink = *sink;
	r->has_sink = true;
	task_set_state(t, TASK_RUNNING, NULL);
	t->executed = true;
	r->step = ST_RUN;
	if (t->run_kind == TASK_RUN_VNC) {
		start_vnc(r);
		return 0;
	}
	if (t->run_kind == TASK_RUN_WEB) {
		start_web(r);
		return 0;
	}
	/* xterm.js on the other side */
	static const char term[] = "E TERM=xterm\n";
	if (send_command(r, term, sizeof term - 1) < 0)
		return 0; /* fail_run ended the sink */
	/* What vpl_terminal_launcher.sh does (§3.4): UTF-8 aware line editing,
	 * Backspace as xterm.js sends it; an image without stty still runs. */
	const char *args[] = {"/bin/sh", "-c",
			      "stty sane iutf8 erase '^?' 2>/dev/null; exec ./vpl_execution", NULL};
	start_phase_mode(r, 'T', "run", args, NULL);
	log_info("task %llu: terminal attached", r->task_id);
	return 0;
}

static void flush_input(struct run *r);

static void on_input_writable(void *arg, int fd, unsigned events)
{
	flush_input(arg);
}

static void flush_input(struct run *r)
{
	while (r->inq.len && r->in_fd >= 0) {
		ssize_t w = write(r->in_fd, r->inq.data, r->inq.len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		memmove(r->inq.data, r->inq.data + w, r->inq.len - (size_t)w);
		r->inq.len -= (size_t)w;
	}
	unsigned want = r->inq.len ? EV_WRITE : 0;
	struct err e;
	if (want && !r->in_w)
		r->in_w = ev_watch_fd(r->sb->ev, r->in_fd, EV_WRITE, on_input_writable, r, &e);
	else if (!want && r->in_w) {
		ev_unwatch(r->in_w);
		r->in_w = NULL;
	}
}

int sandbox_exec_input(struct sandbox *sb, struct task *t, const void *data, size_t len,
		       struct err *err)
{
	struct run *r = t->run;
	if (!r || r->in_fd < 0 || r->aborting)
		return 0; /* the program is gone: keystrokes fall on the floor */
	if (buf_append(&r->inq, data, len, NULL) < 0)
		return err_set(err, ENOBUFS, "the program does not read its input");
	flush_input(r);
	return 0;
}

void sandbox_exec_pause(struct sandbox *sb, struct task *t, bool paused)
{
	struct run *r = t->run;
	if (r && r->ph.w && strcmp(r->ph.exec_id ? r->ph.exec_id : "", "run") == 0)
		ev_watch_set(r->ph.w, paused ? 0 : EV_READ);
}

void sandbox_exec_detach(struct sandbox *sb, struct task *t)
{
	struct run *r = t->run;
	if (!r)
		return;
	r->has_sink = false; /* the socket is gone: no end to tell */
	log_info("task %llu: terminal closed by the browser: stopping the program", r->task_id);
	if (task_is_running(t))
		task_set_state(t, TASK_DONE, NULL);
	r->aborting = true;
	if (!r->seq_busy)
		cleanup_next(r);
	maybe_free(r);
}

bool sandbox_task_progress(struct sandbox *sb, struct task *t, char *out, size_t n)
{
	struct run *r = t->run;
	if (!r || !r->pw || !sb->puller)
		return false;
	char what[160];
	if (!puller_progress(sb->puller, r->image, what, sizeof what))
		snprintf(what, sizeof what, "waiting for the image");
	snprintf(out, n, "image %s: %s", r->image, what);
	return true;
}

/* ------------------------------------------------------------ updates */

static int update_start(struct update *u, struct err *err);

/* The update's end, once: the caller learns ok, the FIFO goes, the next one starts. */
static void update_finish(struct update *u, int ok, const char *why)
{
	struct run *r = u->r;
	for (struct update **pp = &r->updates; *pp; pp = &(*pp)->next)
		if (*pp == u) {
			*pp = u->next;
			break;
		}
	ev_timer_cancel(u->timer);
	close_watch(&u->w, &u->fd);
	if (u->sent && !u->acked)
		unlink_fifo(r, u->name);
	if (ok)
		log_info("task %llu: update of %zu files written", r->task_id, u->files.n);
	else
		log_info("task %llu: update failed: %s", r->task_id, why);
	taskfiles_free(&u->files);
	void (*done)(void *, int) = u->done;
	void *arg = u->arg;
	free(u);
	done(arg, ok);
	/* The helper is free for the next one (an abandoned one it still reads ends by its
	 * own timeout; the next command waits for it in ctl). */
	struct err e;
	while (r->updates && !r->updates->sent && !r->aborting)
		if (update_start(r->updates, &e) < 0)
			update_finish(r->updates, 0, e.msg);
}

static void updates_fail_all(struct run *r)
{
	while (r->updates)
		update_finish(r->updates, 0, "the task's run is over");
}

static void on_update_timer(void *arg)
{
	struct update *u = arg;
	u->timer = NULL;
	update_finish(u, 0, "no answer in time");
}

static void on_update_writable(void *arg, int fd, unsigned events)
{
	struct update *u = arg;
	struct task_files *f = &u->files;
	for (;;) {
		const char *p;
		size_t n;
		if (u->idx == f->n) {
			p = FILESTREAM_END;
			n = FILESTREAM_END_LEN;
			if (u->off >= n) {
				/* All sent: the pipe keeps it for the helper after our close. */
				close_watch(&u->w, &u->fd);
				u->written = true;
				return;
			}
		} else {
			struct task_file *tf = &f->v[u->idx];
			if (u->part == 0 && u->off == 0) {
				int h = filestream_header(u->hdr, sizeof u->hdr, tf->mode,
							  strlen(tf->name), tf->len);
				if (h < 0) {
					update_finish(u, 0, "a file cannot be sent");
					return;
				}
				u->hdr_len = (size_t)h;
			}
			if (u->part == 0) {
				p = u->hdr;
				n = u->hdr_len;
			} else if (u->part == 1) {
				p = tf->name;
				n = strlen(tf->name);
			} else {
				p = tf->data;
				n = tf->len;
			}
			if (u->off >= n) {
				u->off = 0;
				if (++u->part == 3) {
					u->part = 0;
					u->idx++;
				}
				continue;
			}
		}
		ssize_t w = write(fd, p + u->off, n - u->off);
		if (w < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			update_finish(u, 0, strerror(errno));
			return;
		}
		u->off += (size_t)w;
	}
}

/* Makes the update's FIFO, holds it, and asks the helper to read it. On failure the
 * caller ends the update (its FIFO name is removed then). */
static int update_start(struct update *u, struct err *err)
{
	struct run *r = u->r;
	char path[PATH_MAX];
	u->sent = true; /* from here, update_finish removes the name if still there */
	if (fifo_make(r, u->name, path, sizeof path, (uid_t)r->uid) < 0 ||
	    (u->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return err_sys(err, errno, "update channel");
	char cmd[48];
	int n = snprintf(cmd, sizeof cmd, "U %s\n", u->name);
	if (r->ctl_fd < 0 || write(r->ctl_fd, cmd, (size_t)n) != n)
		return err_set(err, EIO, "cannot talk to the task's helper");
	return 0;
}

/* The helper's lines about updates; false: not one of those. */
static bool update_line(struct run *r, const char *line)
{
	char name[32];
	struct update *u = r->updates;
	if (sscanf(line, "updating %31[a-z]", name) == 1) {
		if (u && u->sent && !u->acked && strcmp(name, u->name) == 0) {
			/* The helper holds the FIFO: nothing else may open it by name. */
			unlink_fifo(r, u->name);
			u->acked = true;
			struct err e;
			if (!(u->w = ev_watch_fd(r->sb->ev, u->fd, EV_WRITE, on_update_writable, u,
						 &e)))
				update_finish(u, 0, e.msg);
		}
		return true; /* an abandoned update's: nothing to do */
	}
	unsigned long count;
	if (sscanf(line, "updated %31[a-z] %lu", name, &count) == 2) {
		if (u && u->acked && strcmp(name, u->name) == 0)
			update_finish(u, 1, NULL);
		return true;
	}
	if (strncmp(line, "error update ", 13) == 0) {
		char safe[200];
		log_sanitize(safe, sizeof safe, line + 13, strlen(line + 13));
		if (u && u->sent && sscanf(line, "error update %31[a-z]", name) == 1 &&
		    strcmp(name, u->name) == 0)
			update_finish(u, 0, safe);
		else
			log_info("task %llu: abandoned update: %s", r->task_id, safe);
		return true;
	}
	return false;
}

int sandbox_update(struct sandbox *sb, struct task *t, struct task_files *files,
		   void (*done)(void *arg, int ok), void *arg, struct err *err)
{
	struct run *r = t->run;
	if (!r || r->aborting || !r->staged || r->ctl_fd < 0 ||
	    (r->step != ST_WAIT_EXEC && r->step != ST_RUN))
		return err_set(err, EINVAL, "the task is not running");
	size_t queued = 0;
	struct update **tail = &r->updates;
	for (; *tail; tail = &(*tail)->next)
		queued++;
	if (queued >= UPDATE_QUEUE)
		return err_set(err, EBUSY, "%d updates of this task already wait", UPDATE_QUEUE);
	struct update *u = calloc(1, sizeof *u);
	if (!u)
		return err_sys(err, ENOMEM, "allocating an update");
	u->r = r;
	u->fd = -1;
	/* A phase-like name (runner.h): "upd" and the sequence number in letters. */
	unsigned k = r->upd_seq++;
	size_t len = (size_t)snprintf(u->name, sizeof u->name, "upd");
	do {
		u->name[len++] = (char)('a' + k % 26);
		k /= 26;
	} while (k && len < 16);
	u->name[len] = '\0';
	if (!(u->timer = ev_timer_add(sb->ev, UPDATE_MS, on_update_timer, u, err))) {
		free(u);
		return -1;
	}
	u->files = *files;
	memset(files, 0, sizeof *files);
	u->done = done;
	u->arg = arg;
	*tail = u;
	if (r->updates == u && update_start(u, err) < 0) {
		/* Nothing was said to the caller yet: give the files back, no callback. */
		r->updates = NULL;
		ev_timer_cancel(u->timer);
		close_watch(&u->w, &u->fd);
		unlink_fifo(r, u->name);
		*files = u->files;
		free(u);
		return -1;
	}
	log_info("task %llu: update of %zu files (%zu bytes) accepted", r->task_id, u->files.n,
		 u->files.total_bytes);
	return 0;
}
