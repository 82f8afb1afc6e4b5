#include "privsep_keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diskguard.h"
#include "filename.h"
#include "jail.h"
#include "log.h"
#include "privsep.h"
#include "sandbox/sandbox.h"
#include "ticketlog.h"
#include "tickets.h"
#include "tlsfiles.h"

/* Terminal and web output waiting for the parser: past HIGH the programs' output is paused
 * until the queue is below LOW (the parser's own back-pressure comes on top). */
#define CHAN_HIGH    (1u << 20)
#define CHAN_LOW     (256u << 10)
#define TLS_FILE_MAX (1u << 20)

struct kp_task {
	struct task *t; /* the mirror, in k->mirrors; only the keeper removes it */
	unsigned char digest[TICKET_DIGEST_LEN]; /* of its admin ticket (ticketlog.h) */
	size_t comp_sent, exec_sent;
	uint8_t state, flags, kind;
	uint32_t oom;
	char pass[TICKET_LEN + 1];
	char progress[256];
	bool synced_once;
	bool pending; /* waits for a start slot (START_CONCURRENCY): sandbox_start not called */
	struct kp_task *next;
};

/* A terminal attached: lives until its sink's `ended` or the parser's detach. */
struct kp_exec {
	struct keeper *k;
	uint64_t task;
	bool p_paused, c_paused;
	struct kp_exec *next;
};

struct kp_relay {
	struct keeper *k;
	uint64_t id;
	void *handle; /* NULL once ended or closed */
	long last_queued;
	bool p_paused, c_paused;
	struct kp_relay *next;
};

struct kp_update {
	struct keeper *k;
	uint64_t id;
};

struct keeper {
	const struct jail_config *cfg;
	struct evloop *ev;
	struct sandbox *sb;
	struct task_table *mirrors;
	struct pchan *ch;
	struct kp_task *tasks;
	struct kp_exec *execs;
	struct kp_relay *relays;
	pid_t parser;
	int sigfd;
	struct ev_watch *sigw;
	bool stop;	    /* the parser is gone (or must be) */
	bool violated;	    /* the parser broke the protocol: kill it */
	bool chan_paused;   /* CHAN_HIGH passed */
	unsigned start_max; /* START_CONCURRENCY, resolved */
	int status;	    /* the parser's exit status */
	int64_t drain_checked;
	int drain_state;	/* -1 unknown */
	struct ticketlog *tlog; /* NULL when STATE_DIR cannot hold it */
	struct diskguard disk;	/* MIN_FREE_DISK, judged here and reported (K_DISK) */
	int disk_low;		/* as last reported; -1 none yet */
	char blocked[160];	/* sandbox_can_start's why, as last reported */
	char disk_why[160];
};

static struct kp_task *find_task(struct keeper *k, uint64_t id)
{
	for (struct kp_task *x = k->tasks; x; x = x->next)
		if (x->t->id == id)
			return x;
	return NULL;
}

static struct kp_exec *find_exec(struct keeper *k, uint64_t task)
{
	for (struct kp_exec *x = k->execs; x; x = x->next)
		if (x->task == task)
			return x;
	return NULL;
}

static struct kp_relay *find_relay(struct keeper *k, uint64_t id)
{
	for (struct kp_relay *x = k->relays; x; x = x->next)
		if (x->id == id && x->handle)
			return x;
	return NULL;
}

static void free_exec(struct keeper *k, struct kp_exec *e)
{
	for (struct kp_exec **pp = &k->execs; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
}

static void violation(struct keeper *k, const char *what)
{
	if (!k->violated)
		log_err("privsep: the parser sent %s: stopping it", what);
	k->violated = true;
	k->stop = true;
}

static void send_buf(struct keeper *k, enum pmsg_type type, struct buf *b)
{
	struct err e;
	if (pchan_send(k->ch, type, b, &e) < 0 && pchan_open(k->ch))
		log_err("privsep: %s", e.msg);
	buf_free(b);
	if (pchan_queued(k->ch) > CHAN_HIGH && !k->chan_paused) {
		k->chan_paused = true;
		for (struct kp_exec *x = k->execs; x; x = x->next) {
			struct kp_task *kt = find_task(k, x->task);
			x->c_paused = true;
			if (kt)
				sandbox_exec_pause(k->sb, kt->t, true);
		}
		for (struct kp_relay *r = k->relays; r; r = r->next)
			if (r->handle) {
				r->c_paused = true;
				sandbox_web_pause(k->sb, r->handle, true);
			}
	}
}

static void resume_if_drained(struct keeper *k)
{
	if (!k->chan_paused || pchan_queued(k->ch) > CHAN_LOW)
		return;
	k->chan_paused = false;
	for (struct kp_exec *x = k->execs; x; x = x->next) {
		struct kp_task *kt = find_task(k, x->task);
		x->c_paused = false;
		if (kt && !x->p_paused)
			sandbox_exec_pause(k->sb, kt->t, false);
	}
	for (struct kp_relay *r = k->relays; r; r = r->next)
		if (r->handle && r->c_paused) {
			r->c_paused = false;
			if (!r->p_paused)
				sandbox_web_pause(k->sb, r->handle, false);
		}
}

/* ---- sinks ---- */

static void exec_output(void *sess, const void *data, size_t len)
{
	struct kp_exec *x = sess;
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, x->task);
	pmsg_put_bytes(&b, data, len);
	send_buf(x->k, K_EXEC_OUT, &b);
}

static void exec_ended(void *sess, const char *why)
{
	struct kp_exec *x = sess;
	struct keeper *k = x->k;
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, x->task);
	pmsg_put_str(&b, why);
	free_exec(k, x);
	send_buf(k, K_EXEC_ENDED, &b);
}

static void web_output(void *sess, const void *data, size_t len)
{
	struct kp_relay *r = sess;
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, r->id);
	pmsg_put_bytes(&b, data, len);
	send_buf(r->k, K_WEB_OUT, &b);
}

static void send_web_ended(struct keeper *k, uint64_t id, bool refused)
{
	struct buf b;
	buf_init(&b, 64);
	pmsg_put_u64(&b, id);
	pmsg_put_u8(&b, refused);
	send_buf(k, K_WEB_ENDED, &b);
}

static void web_ended(void *sess)
{
	struct kp_relay *r = sess;
	r->handle = NULL; /* freed by the next sync: we may be inside a sandbox call */
	send_web_ended(r->k, r->id, false);
}

static void update_done(void *arg, int ok)
{
	struct kp_update *u = arg;
	struct buf b;
	buf_init(&b, 64);
	pmsg_put_u64(&b, u->id);
	pmsg_put_u8(&b, ok ? 1 : 0);
	send_buf(u->k, K_UPDATE_DONE, &b);
	free(u);
}

/* ---- from the parser ---- */

static long long clamp(uint64_t v, long long max)
{
	return v == 0 || v > (uint64_t)max ? max : (long long)v;
}

/* Files as the parser sends them, checked as if they came from the network. */
static int read_files(struct pmsg_rd *rd, struct task_files *f, size_t max_total)
{
	uint32_t n = pmsg_get_u32(rd);
	if (rd->bad || n > rd->left / 13) /* each file takes 13 bytes at least */
		return -1;
	if (n && !(f->v = calloc(n, sizeof *f->v)))
		return -1;
	for (uint32_t i = 0; i < n; i++) {
		char name[FILENAME_MAX_PATH + 1];
		pmsg_get_str(rd, name, sizeof name);
		uint32_t mode = pmsg_get_u32(rd);
		uint8_t del = pmsg_get_u8(rd);
		size_t len;
		const void *data = pmsg_get_bytes(rd, &len);
		const char *norm;
		size_t normlen;
		if (rd->bad || (mode != 0700 && mode != 0600) || del > 1 ||
		    filename_check(name, strlen(name), &norm, &normlen, NULL) < 0 || norm != name ||
		    f->total_bytes + len > max_total)
			return -1;
		struct task_file *tf = &f->v[f->n];
		if (!(tf->name = strdup(name)) || !(tf->owned_data = malloc(len ? len : 1)))
			return -1;
		f->n++;
		memcpy(tf->owned_data, data, len);
		tf->data = tf->owned_data;
		tf->len = len;
		tf->mode = mode;
		tf->delete_after_compile = del;
		f->total_bytes += len;
	}
	return 0;
}

/* Tasks whose container is being made, or their files staged: the part of a task that is
 * containerd calls. A burst of them on saturated cores makes those calls miss their time
 * limits and the tasks fail; beyond START_CONCURRENCY at once, tasks wait here, oldest
 * first (docs/sandbox.md "Admission"). */
static unsigned starting(const struct keeper *k)
{
	unsigned n = 0;
	for (const struct kp_task *kt = k->tasks; kt; kt = kt->next)
		n += !kt->pending && kt->t->run && kt->t->state == TASK_COMPILING &&
		     !kt->t->compile_started;
	return n;
}

static void start_pending(struct keeper *k)
{
	unsigned busy = starting(k);
	while (busy < k->start_max) {
		struct kp_task *next = NULL;
		for (struct kp_task *kt = k->tasks; kt; kt = kt->next)
			if (kt->pending && (!next || kt->t->id < next->t->id))
				next = kt;
		if (!next)
			return;
		next->pending = false;
		struct task *t = next->t;
		struct err e;
		if (sandbox_start(k->sb, t, &e) < 0) {
			log_err("task %llu: %s", (unsigned long long)t->id, e.msg);
			buf_printf(&t->compilation, NULL,
				   "vpl-jail: the task could not be started: %s\n", e.msg);
			task_set_state(t, TASK_DONE, NULL);
			continue;
		}
		busy++;
	}
}

static void on_start(struct keeper *k, struct pmsg_rd *rd)
{
	uint64_t id = pmsg_get_u64(rd);
	uint8_t flags = pmsg_get_u8(rd);
	uint64_t lim[4];
	for (int i = 0; i < 4; i++)
		lim[i] = pmsg_get_u64(rd);
	char execute[TICKET_LEN + 1], script[FILENAME_MAX_PATH + 1], lang[256];
	pmsg_get_str(rd, execute, sizeof execute);
	pmsg_get_str(rd, script, sizeof script);
	pmsg_get_str(rd, lang, sizeof lang);
	size_t dlen;
	const void *digest = pmsg_get_bytes(rd, &dlen);
	struct task_files files = {0};
	if (rd->bad || dlen != TICKET_DIGEST_LEN || id == 0 || find_task(k, id) || flags > 3 ||
	    !ticket_format_ok(execute, strlen(execute)) || strlen(execute) != TICKET_LEN ||
	    filename_check(script, strlen(script), NULL, NULL, NULL) < 0 ||
	    read_files(rd, &files, (size_t)k->cfg->request_max_size) < 0 || !pmsg_done(rd)) {
		taskfiles_free(&files);
		return violation(k, "a malformed task");
	}
	struct err e;
	struct task *t = task_create(k->mirrors, jail_monotonic_ms(), &e);
	struct kp_task *kt = t ? calloc(1, sizeof *kt) : NULL;
	if (!kt) {
		taskfiles_free(&files);
		if (t)
			task_remove(k->mirrors, t, TASK_STOPPED);
		return violation(k, "more tasks than MAX_TASKS");
	}
	t->id = id;
	t->interactive = flags & PS_INTERACTIVE;
	t->directrun = flags & PS_DIRECTRUN;
	memcpy(t->execute, execute, sizeof t->execute);
	t->limits.maxtime = clamp(lim[0], k->cfg->max_time);
	t->limits.maxfilesize = clamp(lim[1], k->cfg->max_file_size);
	t->limits.maxmemory = clamp(lim[2], k->cfg->max_memory);
	t->limits.maxprocesses = clamp(lim[3], k->cfg->max_processes);
	t->files = files;
	t->script = strdup(script);
	t->lang = strdup(lang);
	kt->t = t;
	memcpy(kt->digest, digest, TICKET_DIGEST_LEN);
	ticketlog_add(k->tlog, kt->digest);
	kt->state = (uint8_t)t->state;
	kt->next = k->tasks;
	k->tasks = kt;
	if (!t->script || !t->lang) {
		buf_puts(&t->compilation, "vpl-jail: out of memory\n", NULL);
		task_set_state(t, TASK_DONE, NULL);
		return;
	}
	kt->pending = true;
	start_pending(k);
}

static void on_release(struct keeper *k, uint64_t id)
{
	for (struct kp_task **pp = &k->tasks; *pp; pp = &(*pp)->next)
		if ((*pp)->t->id == id) {
			struct kp_task *kt = *pp;
			*pp = kt->next;
			ticketlog_remove(k->tlog, kt->digest);
			task_remove(k->mirrors, kt->t, TASK_STOPPED);
			free(kt);
			return;
		}
}

static void on_exec_attach(struct keeper *k, uint64_t id)
{
	struct kp_task *kt = find_task(k, id);
	struct err e;
	if (!kt || find_exec(k, id)) {
		err_set(&e, EINVAL, "the task is gone or has its terminal already");
	} else {
		struct kp_exec *x = calloc(1, sizeof *x);
		if (!x) {
			err_sys(&e, ENOMEM, "allocating");
		} else {
			x->k = k;
			x->task = id;
			x->next = k->execs;
			k->execs = x;
			struct exec_sink sink = {exec_output, exec_ended, x};
			if (sandbox_exec_attach(k->sb, kt->t, &sink, &e) == 0) {
				if (k->chan_paused) {
					x->c_paused = true;
					sandbox_exec_pause(k->sb, kt->t, true);
				}
				return;
			}
			free_exec(k, x);
		}
	}
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, id);
	pmsg_put_str(&b, e.msg);
	send_buf(k, K_EXEC_ENDED, &b);
}

static void on_exec_input(struct keeper *k, struct pmsg_rd *rd)
{
	uint64_t id = pmsg_get_u64(rd);
	size_t n;
	const void *d = pmsg_get_bytes(rd, &n);
	if (!pmsg_done(rd))
		return violation(k, "malformed input");
	struct kp_task *kt = find_task(k, id);
	struct kp_exec *x = find_exec(k, id);
	struct err e;
	if (!kt || !x || sandbox_exec_input(k->sb, kt->t, d, n, &e) == 0)
		return;
	log_warn("task %llu: execute input: %s", (unsigned long long)id, e.msg);
	/* As when the socket closed on it: the program stops, the parser closes the socket. */
	free_exec(k, x);
	sandbox_exec_detach(k->sb, kt->t);
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, id);
	pmsg_put_str(&b, e.msg);
	send_buf(k, K_EXEC_ENDED, &b);
}

static void on_exec_pause(struct keeper *k, uint64_t id, bool paused)
{
	struct kp_task *kt = find_task(k, id);
	struct kp_exec *x = find_exec(k, id);
	if (!kt || !x)
		return;
	x->p_paused = paused;
	sandbox_exec_pause(k->sb, kt->t, paused || x->c_paused);
}

static void on_exec_detach(struct keeper *k, uint64_t id)
{
	struct kp_task *kt = find_task(k, id);
	struct kp_exec *x = find_exec(k, id);
	if (!x)
		return;
	free_exec(k, x);
	if (kt)
		sandbox_exec_detach(k->sb, kt->t);
}

static void on_web_open(struct keeper *k, uint64_t rid, uint64_t id)
{
	struct kp_task *kt = find_task(k, id);
	struct kp_relay *r = calloc(1, sizeof *r);
	struct err e = {0};
	if (kt && r && !find_relay(k, rid)) {
		r->k = k;
		r->id = rid;
		struct web_sink sink = {web_output, web_ended, r, NULL};
		if ((r->handle = sandbox_web_open(k->sb, kt->t, &sink, &e))) {
			r->next = k->relays;
			k->relays = r;
			if (k->chan_paused) {
				r->c_paused = true;
				sandbox_web_pause(k->sb, r->handle, true);
			}
			return;
		}
		log_info("task %llu: proxied connection refused: %s", (unsigned long long)id,
			 e.msg);
	}
	free(r);
	send_web_ended(k, rid, e.code == EBUSY);
}

static void on_web_input(struct keeper *k, struct pmsg_rd *rd)
{
	uint64_t rid = pmsg_get_u64(rd);
	size_t n;
	const void *d = pmsg_get_bytes(rd, &n);
	if (!pmsg_done(rd))
		return violation(k, "malformed web input");
	struct kp_relay *r = find_relay(k, rid);
	if (!r)
		return;
	long q = sandbox_web_input(k->sb, r->handle, d, n);
	if (q < 0) {
		/* too much waits: the connection goes, as sandbox_web_input's caller did */
		sandbox_web_close(k->sb, r->handle);
		r->handle = NULL;
		send_web_ended(k, rid, false);
		return;
	}
	r->last_queued = q;
	struct buf b;
	buf_init(&b, 64);
	pmsg_put_u64(&b, rid);
	pmsg_put_u64(&b, n);
	pmsg_put_u64(&b, (uint64_t)q);
	send_buf(k, K_WEB_QUEUED, &b);
}

static void on_web_pause(struct keeper *k, uint64_t rid, bool paused)
{
	struct kp_relay *r = find_relay(k, rid);
	if (!r)
		return;
	r->p_paused = paused;
	sandbox_web_pause(k->sb, r->handle, paused || r->c_paused);
}

static void on_web_close(struct keeper *k, uint64_t rid)
{
	struct kp_relay *r = find_relay(k, rid);
	if (!r)
		return;
	sandbox_web_close(k->sb, r->handle);
	r->handle = NULL;
}

static void on_update(struct keeper *k, struct pmsg_rd *rd)
{
	uint64_t rid = pmsg_get_u64(rd);
	uint64_t id = pmsg_get_u64(rd);
	struct task_files files = {0};
	if (read_files(rd, &files, (size_t)k->cfg->request_max_size) < 0 || !pmsg_done(rd)) {
		taskfiles_free(&files);
		return violation(k, "a malformed update");
	}
	struct kp_task *kt = find_task(k, id);
	struct kp_update *u = calloc(1, sizeof *u);
	struct err e;
	if (kt && u) {
		u->k = k;
		u->id = rid;
		if (sandbox_update(k->sb, kt->t, &files, update_done, u, &e) == 0)
			return;
		log_info("task %llu: update refused: %s", (unsigned long long)id, e.msg);
	}
	free(u);
	taskfiles_free(&files);
	struct buf b;
	buf_init(&b, 64);
	pmsg_put_u64(&b, rid);
	pmsg_put_u8(&b, 0);
	send_buf(k, K_UPDATE_DONE, &b);
}

static void on_msg(void *arg, enum pmsg_type type, struct pmsg_rd *rd)
{
	struct keeper *k = arg;
	if (k->stop)
		return;
	uint64_t a, b;
	uint8_t f;
	switch (type) {
	case P_START:
		return on_start(k, rd);
	case P_UPDATE:
		return on_update(k, rd);
	case P_EXEC_INPUT:
		return on_exec_input(k, rd);
	case P_WEB_INPUT:
		return on_web_input(k, rd);
	case P_RELEASE:
	case P_EXEC_ATTACH:
	case P_EXEC_DETACH:
	case P_WEB_CLOSE:
		a = pmsg_get_u64(rd);
		if (!pmsg_done(rd))
			return violation(k, "a malformed message");
		if (type == P_RELEASE)
			on_release(k, a);
		else if (type == P_EXEC_ATTACH)
			on_exec_attach(k, a);
		else if (type == P_EXEC_DETACH)
			on_exec_detach(k, a);
		else
			on_web_close(k, a);
		return;
	case P_EXEC_PAUSE:
	case P_WEB_PAUSE:
		a = pmsg_get_u64(rd);
		f = pmsg_get_u8(rd);
		if (!pmsg_done(rd) || f > 1)
			return violation(k, "a malformed message");
		if (type == P_EXEC_PAUSE)
			on_exec_pause(k, a, f);
		else
			on_web_pause(k, a, f);
		return;
	case P_WEB_OPEN:
		a = pmsg_get_u64(rd);
		b = pmsg_get_u64(rd);
		if (!pmsg_done(rd))
			return violation(k, "a malformed message");
		return on_web_open(k, a, b);
	default:
		return violation(k, "an unknown message");
	}
}

static void on_chan_error(void *arg, const char *why)
{
	struct keeper *k = arg;
	if (!k->stop)
		log_info("privsep: %s", why);
	k->stop = true;
}

/* ---- what changed, to the parser ---- */

static void sync_task(struct keeper *k, struct kp_task *kt)
{
	struct task *t = kt->t;
	char progress[256] = "";
	if (kt->pending)
		snprintf(progress, sizeof progress,
			 "waiting: the server is starting %u other tasks", k->start_max);
	else if (!sandbox_task_progress(k->sb, t, progress, sizeof progress))
		progress[0] = '\0';
	uint8_t flags =
	    (uint8_t)((t->compile_started ? KT_COMPILE_STARTED : 0) |
		      (t->awaiting_execute ? KT_AWAITING_EXECUTE : 0) |
		      (t->timed_out ? KT_TIMED_OUT : 0) | (t->executed ? KT_EXECUTED : 0));
	bool creset = t->compilation.len < kt->comp_sent, ereset = t->execution.len < kt->exec_sent;
	if (creset)
		kt->comp_sent = 0;
	if (ereset)
		kt->exec_sent = 0;
	if (kt->synced_once && !creset && !ereset && kt->state == (uint8_t)t->state &&
	    kt->flags == flags && kt->kind == (uint8_t)t->run_kind && kt->oom == t->oom_mib &&
	    strcmp(kt->pass, t->passthrough) == 0 && strcmp(kt->progress, progress) == 0 &&
	    kt->comp_sent == t->compilation.len && kt->exec_sent == t->execution.len)
		return;
	kt->synced_once = true;
	kt->state = (uint8_t)t->state;
	kt->flags = flags;
	kt->kind = (uint8_t)t->run_kind;
	kt->oom = t->oom_mib;
	snprintf(kt->pass, sizeof kt->pass, "%s", t->passthrough);
	snprintf(kt->progress, sizeof kt->progress, "%s", progress);
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, t->id);
	pmsg_put_u8(&b, kt->state);
	pmsg_put_u8(&b, (uint8_t)(flags | (creset ? KT_COMPILATION_RESET : 0) |
				  (ereset ? KT_EXECUTION_RESET : 0)));
	pmsg_put_u32(&b, kt->oom);
	pmsg_put_u8(&b, kt->kind);
	pmsg_put_str(&b, kt->pass);
	pmsg_put_str(&b, kt->progress);
	pmsg_put_bytes(&b, t->compilation.data + kt->comp_sent, t->compilation.len - kt->comp_sent);
	pmsg_put_bytes(&b, t->execution.data + kt->exec_sent, t->execution.len - kt->exec_sent);
	kt->comp_sent = t->compilation.len;
	kt->exec_sent = t->execution.len;
	send_buf(k, K_TASK, &b);
}

static void sync_all(struct keeper *k)
{
	start_pending(k);
	for (struct kp_task *kt = k->tasks; kt; kt = kt->next)
		sync_task(k, kt);
	for (struct kp_relay **pp = &k->relays; *pp;) {
		struct kp_relay *r = *pp;
		if (!r->handle) {
			*pp = r->next;
			free(r);
			continue;
		}
		long q = sandbox_web_queued(k->sb, r->handle);
		if (q != r->last_queued) {
			r->last_queued = q;
			struct buf b;
			buf_init(&b, 64);
			pmsg_put_u64(&b, r->id);
			pmsg_put_u64(&b, 0);
			pmsg_put_u64(&b, (uint64_t)(q < 0 ? 0 : q));
			send_buf(k, K_WEB_QUEUED, &b);
		}
		pp = &r->next;
	}
	resume_if_drained(k);
	int64_t now = jail_monotonic_ms();
	if (k->cfg->drain_file && now - k->drain_checked >= 1000) {
		k->drain_checked = now;
		int st = access(k->cfg->drain_file, F_OK) == 0;
		if (st != k->drain_state) {
			k->drain_state = st;
			unsigned char v = (unsigned char)st;
			pchan_send_raw(k->ch, K_DRAIN, &v, 1, NULL);
		}
	}
	{ /* every turn: a stale "all uids in use" would refuse tasks that could run */
		char blocked[160] = "";
		if (sandbox_can_start(k->sb, blocked, sizeof blocked))
			blocked[0] = '\0';
		if (strcmp(blocked, k->blocked) != 0) {
			memcpy(k->blocked, blocked, sizeof blocked);
			if (blocked[0])
				log_warn("new tasks refused: %s", blocked);
			else
				log_info("new tasks accepted again");
			struct buf hb;
			buf_init(&hb, 256);
			pmsg_put_str(&hb, blocked);
			send_buf(k, K_HEALTH, &hb);
		}
	}
	char why[160] = "";
	int low = diskguard_low(&k->disk, now, why, sizeof why);
	if (low != k->disk_low || strcmp(why, k->disk_why) != 0) {
		k->disk_low = low;
		snprintf(k->disk_why, sizeof k->disk_why, "%s", why);
		struct buf b;
		buf_init(&b, 256);
		pmsg_put_u8(&b, (uint8_t)low);
		pmsg_put_str(&b, why);
		send_buf(k, K_DISK, &b);
	}
}

/* ---- signals ---- */

static int read_file(const char *path, struct buf *b, struct err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, errno, "%s", path);
	for (;;) {
		if (buf_reserve(b, 65536, err) < 0) {
			close(fd);
			return err_wrap(err, "%s", path);
		}
		ssize_t n = read(fd, b->data + b->len, b->cap - b->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return n < 0 ? err_sys(err, errno, "%s", path) : 0;
		}
		b->len += (size_t)n;
	}
}

static void reload_tls(struct keeper *k)
{
	const struct jail_config *cfg = k->cfg;
	struct err e;
	if (!cfg->secure_port)
		return;
	if (tls_files_check(cfg->ssl_cert_file, cfg->ssl_key_file, &e) < 0) {
		log_err("SIGHUP: keeping the current certificate: %s", e.msg);
		return;
	}
	struct buf cert, key, msg;
	buf_init(&cert, TLS_FILE_MAX);
	buf_init(&key, TLS_FILE_MAX);
	buf_init(&msg, 3 * TLS_FILE_MAX);
	if (read_file(cfg->ssl_cert_file, &cert, &e) < 0 ||
	    read_file(cfg->ssl_key_file, &key, &e) < 0) {
		log_err("SIGHUP: keeping the current certificate: %s", e.msg);
	} else {
		pmsg_put_bytes(&msg, cert.data, cert.len);
		pmsg_put_bytes(&msg, key.data, key.len);
		pchan_send(k->ch, K_TLS, &msg, NULL);
	}
	explicit_bzero(key.data, key.cap);
	explicit_bzero(msg.data, msg.cap);
	buf_free(&cert);
	buf_free(&key);
	buf_free(&msg);
}

static void reap(struct keeper *k)
{
	int st;
	if (k->parser > 0 && waitpid(k->parser, &st, WNOHANG) == k->parser) {
		k->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (WIFSIGNALED(st))
			log_err("the parser process died of signal %d", WTERMSIG(st));
		k->parser = 0;
		k->stop = true;
	}
}

static void on_signal(void *arg, int fd, unsigned events)
{
	struct keeper *k = arg;
	struct signalfd_siginfo si;
	while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
		if (si.ssi_signo == SIGHUP)
			reload_tls(k);
		else if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			pchan_send_raw(k->ch, K_TERM, NULL, 0, NULL);
		else if (si.ssi_signo == SIGCHLD)
			reap(k);
	}
}

/* Tasks a previous run of this worker (the same ports) started and never ended. */
static void open_ticketlog(struct keeper *k)
{
	char path[4096];
	struct err e;
	unsigned char *lost = NULL;
	size_t n = 0;
	snprintf(path, sizeof path, "%s/tickets-%d-%d.log", k->cfg->state_dir, k->cfg->port,
		 k->cfg->secure_port);
	if (!(k->tlog = ticketlog_open(path, (size_t)k->cfg->max_tasks, &lost, &n, &e))) {
		log_warn("ticket log: %s: tasks lost in a restart will be unknown tickets", e.msg);
		return;
	}
	if (n)
		log_info("%zu task(s) of the previous run are lost: their getresult will say so",
			 n);
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_bytes(&b, lost, n * TICKET_DIGEST_LEN);
	free(lost);
	send_buf(k, K_LOST, &b);
}

int keeper_run(const struct jail_config *cfg, int fd, pid_t parser)
{
	struct keeper k = {
	    .cfg = cfg, .parser = parser, .sigfd = -1, .drain_state = -1, .disk_low = -1};
	struct err e;
	int rc = 1;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	signal(SIGPIPE, SIG_IGN);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 ||
	    (k.sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_err("privsep: signalfd: %s", strerror(errno));
		close(fd);
		goto out;
	}
	if (!(k.ev = evloop_new(&e)) ||
	    !(k.sigw = ev_watch_fd(k.ev, k.sigfd, EV_READ, on_signal, &k, &e))) {
		log_err("privsep: %s", e.msg);
		close(fd);
		goto out;
	}
	if (!(k.ch = pchan_new(k.ev, fd, (size_t)cfg->request_max_size + (16u << 20), SIZE_MAX / 4,
			       on_msg, on_chan_error, &k, &e))) {
		log_err("privsep: %s", e.msg);
		close(fd);
		goto out;
	}
	k.mirrors = task_table_new((unsigned)cfg->max_tasks, (size_t)cfg->result_max_size);
	if (!k.mirrors) {
		log_err("out of memory");
		goto out;
	}
	/* grpc_init() happens here, after the fork (grpc forbids fork after it). */
	if (!(k.sb = sandbox_new(cfg, k.ev, &e))) {
		log_err("sandbox: %s", e.msg);
		goto out;
	}
	task_table_set_release(k.mirrors, sandbox_release_task, k.sb);
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	k.start_max = cfg->start_concurrency > 0 ? (unsigned)cfg->start_concurrency
						 : (unsigned)(cpus > 0 ? 2 * cpus : 4);
	open_ticketlog(&k);
	pchan_send_raw(k.ch, K_READY, NULL, 0, NULL);
	if (diskguard_setup(&k.disk, cfg, &e) < 0) {
		log_warn("MIN_FREE_DISK: %s: not checked", e.msg);
		diskguard_init(&k.disk, 0);
	}
	reap(&k); /* a parser that failed to start is gone already */
	while (!k.stop) {
		evloop_run_once(k.ev, 1000);
		if (!k.stop)
			sync_all(&k);
	}
	rc = 0;
out:
	if (k.violated || (k.parser > 0 && rc != 0)) {
		kill(k.parser, SIGKILL);
	} else if (k.parser > 0 && k.ch) {
		/* the channel closed first: the parser is on its way out */
		kill(k.parser, SIGTERM);
	}
	if (k.parser > 0) {
		/* A parser that does not go within 5 s is killed: it may be stuck or hostile. */
		int st = 0;
		pid_t w = 0;
		for (int i = 0; i < 50 && (w = waitpid(k.parser, &st, WNOHANG)) == 0; i++)
			usleep(100 * 1000);
		if (w == 0) {
			kill(k.parser, SIGKILL);
			while ((w = waitpid(k.parser, &st, 0)) < 0 && errno == EINTR)
				;
		}
		if (w == k.parser)
			k.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (k.violated)
			k.status = 1;
	}
	/* Containers first, while the mirrors still exist to be detached. */
	sandbox_free(k.sb);
	if (k.mirrors)
		task_table_set_release(k.mirrors, NULL, NULL);
	while (k.tasks) {
		struct kp_task *x = k.tasks;
		k.tasks = x->next;
		free(x);
	}
	while (k.execs)
		free_exec(&k, k.execs);
	while (k.relays) {
		struct kp_relay *r = k.relays;
		k.relays = r->next;
		free(r);
	}
	task_table_free(k.mirrors);
	ticketlog_free(k.tlog);
	pchan_free(k.ch);
	if (k.sigw)
		ev_unwatch(k.sigw);
	if (k.sigfd >= 0)
		close(k.sigfd);
	evloop_free(k.ev);
	return rc != 0 ? rc : k.status;
}
