#include "privsep_parser.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "diskguard.h"
#include "log.h"
#include "methods.h"
#include "privsep.h"
#include "sandbox/sandbox.h" /* SANDBOX_WEB_RELAYS only: nothing of it is linked */

/* What the parser keeps of a task the keeper runs. */
struct psp_task {
	uint64_t id;
	char progress[256]; /* what the task waits for (an image pull), "" when nothing */
	bool attached;	    /* its terminal was attached here: the keeper's older news is stale */
	struct psp_task *next;
};

struct psp_exec {
	uint64_t task;
	struct exec_sink sink;
	struct psp_exec *next;
};

struct psp_relay {
	uint64_t id;
	uint64_t task;
	struct web_sink sink;
	size_t inflight; /* sent, not yet taken by the keeper's relay */
	size_t queued;	 /* what the keeper's relay last said it holds */
	struct psp_relay *next;
};

struct psp_update {
	uint64_t id;
	void (*done)(void *arg, int ok);
	void *arg;
	struct psp_update *next;
};

struct psp {
	struct jail *j;
	struct pchan *ch;
	struct psp_task *tasks;
	struct psp_exec *execs;
	struct psp_relay *relays;
	struct psp_update *updates;
	uint64_t next_relay, next_update;
	struct psp_control ctl;
	bool gone, ready;
	unsigned char *lost; /* K_LOST: digests, TICKET_DIGEST_LEN each */
	size_t nlost;
};

/* The run marker the task table sees (t->run): the keeper holds the run. */
static char keeper_run;

static struct psp_task *find_task(struct psp *p, uint64_t id)
{
	for (struct psp_task *x = p->tasks; x; x = x->next)
		if (x->id == id)
			return x;
	return NULL;
}

static struct psp_exec *find_exec(struct psp *p, uint64_t task)
{
	for (struct psp_exec *x = p->execs; x; x = x->next)
		if (x->task == task)
			return x;
	return NULL;
}

static struct psp_relay *find_relay(struct psp *p, uint64_t id)
{
	for (struct psp_relay *x = p->relays; x; x = x->next)
		if (x->id == id)
			return x;
	return NULL;
}

static void unlink_exec(struct psp *p, struct psp_exec *e)
{
	for (struct psp_exec **pp = &p->execs; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
}

static void unlink_relay(struct psp *p, struct psp_relay *r)
{
	for (struct psp_relay **pp = &p->relays; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			free(r);
			return;
		}
}

static int send_id(struct psp *p, enum pmsg_type type, uint64_t id, struct err *err)
{
	struct buf b;
	buf_init(&b, 64);
	pmsg_put_u64(&b, id);
	int rc = pchan_send(p->ch, type, &b, err);
	buf_free(&b);
	return rc;
}

static void put_files(struct buf *b, const struct task_files *f)
{
	pmsg_put_u32(b, (uint32_t)f->n);
	for (size_t i = 0; i < f->n; i++) {
		pmsg_put_str(b, f->v[i].name);
		pmsg_put_u32(b, f->v[i].mode);
		pmsg_put_u8(b, f->v[i].delete_after_compile);
		pmsg_put_bytes(b, f->v[i].data, f->v[i].len);
	}
}

/* ---- the hooks of struct jail ---- */

static int start_task(void *sb, struct task *t, struct err *err)
{
	struct psp *p = sb;
	struct psp_task *pt = calloc(1, sizeof *pt);
	if (!pt)
		return err_sys(err, ENOMEM, "allocating");
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, t->id);
	pmsg_put_u8(&b, (uint8_t)((t->interactive ? PS_INTERACTIVE : 0) |
				  (t->directrun ? PS_DIRECTRUN : 0)));
	pmsg_put_u64(&b, (uint64_t)t->limits.maxtime);
	pmsg_put_u64(&b, (uint64_t)t->limits.maxfilesize);
	pmsg_put_u64(&b, (uint64_t)t->limits.maxmemory);
	pmsg_put_u64(&b, (uint64_t)t->limits.maxprocesses);
	pmsg_put_str(&b, t->execute);
	pmsg_put_str(&b, t->script);
	pmsg_put_str(&b, t->lang);
	unsigned char dg[TICKET_DIGEST_LEN];
	ticket_digest(t->admin, strlen(t->admin), dg);
	pmsg_put_bytes(&b, dg, sizeof dg);
	put_files(&b, &t->files);
	int rc = pchan_send(p->ch, P_START, &b, err);
	buf_free(&b);
	if (rc < 0) {
		free(pt);
		return -1;
	}
	/* The keeper has its own copy now. */
	taskfiles_free(&t->files);
	pt->id = t->id;
	pt->next = p->tasks;
	p->tasks = pt;
	t->run = &keeper_run;
	return 0;
}

static void release_task(struct task *t, void *sb)
{
	struct psp *p = sb;
	for (struct psp_task **pp = &p->tasks; *pp; pp = &(*pp)->next)
		if ((*pp)->id == t->id) {
			struct psp_task *x = *pp;
			*pp = x->next;
			free(x);
			break;
		}
	/* An execute socket still attached is ended now, as sandbox_release_task ends it: the
	 * socket may close before the keeper's K_EXEC_ENDED could arrive, and its sink with it. */
	struct psp_exec *e = find_exec(p, t->id);
	if (e) {
		struct exec_sink sink = e->sink;
		unlink_exec(p, e);
		sink.ended(sink.sess, "stopped");
	}
	t->run = NULL;
	send_id(p, P_RELEASE, t->id, NULL);
}

static int exec_attach(void *sb, struct task *t, const struct exec_sink *sink, struct err *err)
{
	struct psp *p = sb;
	if (find_exec(p, t->id))
		return err_set(err, EBUSY, "the program has its terminal already");
	struct psp_exec *e = calloc(1, sizeof *e);
	if (!e)
		return err_sys(err, ENOMEM, "allocating");
	if (send_id(p, P_EXEC_ATTACH, t->id, err) < 0) {
		free(e);
		return -1;
	}
	e->task = t->id;
	e->sink = *sink;
	e->next = p->execs;
	p->execs = e;
	/* What sandbox_exec_attach does at once, done here at once too, so the monitor sees the
	 * same sequence as without privsep; the keeper confirms it, or ends the sink. */
	struct psp_task *pt = find_task(p, t->id);
	if (pt)
		pt->attached = true;
	t->awaiting_execute = false;
	t->executed = true;
	if (t->state == TASK_COMPILING)
		task_set_state(t, TASK_RUNNING, NULL);
	return 0;
}

static int exec_input(void *sb, struct task *t, const void *data, size_t len, struct err *err)
{
	struct psp *p = sb;
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, t->id);
	pmsg_put_bytes(&b, data, len);
	int rc = pchan_send(p->ch, P_EXEC_INPUT, &b, err);
	buf_free(&b);
	return rc;
}

static void send_id_flag(struct psp *p, enum pmsg_type type, uint64_t id, bool flag)
{
	struct buf b;
	buf_init(&b, 64);
	pmsg_put_u64(&b, id);
	pmsg_put_u8(&b, flag);
	pchan_send(p->ch, type, &b, NULL);
	buf_free(&b);
}

static void exec_pause(void *sb, struct task *t, bool paused)
{
	send_id_flag(sb, P_EXEC_PAUSE, t->id, paused);
}

static void exec_detach(void *sb, struct task *t)
{
	struct psp *p = sb;
	struct psp_exec *e = find_exec(p, t->id);
	if (e)
		unlink_exec(p, e);
	send_id(p, P_EXEC_DETACH, t->id, NULL);
}

static void *web_open(void *sb, struct task *t, const struct web_sink *sink, struct err *err)
{
	struct psp *p = sb;
	/* What the sandbox would refuse at once, refused here (503, not a late 502). */
	if (t->run_kind != TASK_RUN_WEB || t->state != TASK_RUNNING || !t->passthrough[0]) {
		err_set(err, EINVAL, "the task does not serve a web application");
		return NULL;
	}
	unsigned open = 0;
	for (struct psp_relay *x = p->relays; x; x = x->next)
		open += x->task == t->id;
	if (open >= SANDBOX_WEB_RELAYS) {
		err_set(err, EBUSY, "%d proxied connections already", SANDBOX_WEB_RELAYS);
		return NULL;
	}
	struct psp_relay *r = calloc(1, sizeof *r);
	if (!r) {
		err_sys(err, ENOMEM, "allocating");
		return NULL;
	}
	r->id = ++p->next_relay;
	r->task = t->id;
	r->sink = *sink;
	struct buf b;
	buf_init(&b, 64);
	pmsg_put_u64(&b, r->id);
	pmsg_put_u64(&b, t->id);
	int rc = pchan_send(p->ch, P_WEB_OPEN, &b, err);
	buf_free(&b);
	if (rc < 0) {
		free(r);
		return NULL;
	}
	r->next = p->relays;
	p->relays = r;
	return r;
}

static long web_input(void *sb, void *relay, const void *data, size_t len)
{
	struct psp *p = sb;
	struct psp_relay *r = relay;
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, r->id);
	pmsg_put_bytes(&b, data, len);
	int rc = pchan_send(p->ch, P_WEB_INPUT, &b, NULL);
	buf_free(&b);
	if (rc < 0)
		return -1;
	r->inflight += len;
	return (long)(r->inflight + r->queued);
}

static long web_queued(void *sb, void *relay)
{
	(void)sb;
	struct psp_relay *r = relay;
	return (long)(r->inflight + r->queued);
}

static void web_pause(void *sb, void *relay, bool paused)
{
	send_id_flag(sb, P_WEB_PAUSE, ((struct psp_relay *)relay)->id, paused);
}

static void web_close(void *sb, void *relay)
{
	struct psp *p = sb;
	struct psp_relay *r = relay;
	send_id(p, P_WEB_CLOSE, r->id, NULL);
	unlink_relay(p, r);
}

static int update_task(void *sb, struct task *t, struct task_files *files,
		       void (*done)(void *arg, int ok), void *arg, struct err *err)
{
	struct psp *p = sb;
	struct psp_update *u = calloc(1, sizeof *u);
	if (!u)
		return err_sys(err, ENOMEM, "allocating");
	u->id = ++p->next_update;
	struct buf b;
	buf_init(&b, SIZE_MAX / 4);
	pmsg_put_u64(&b, u->id);
	pmsg_put_u64(&b, t->id);
	put_files(&b, files);
	int rc = pchan_send(p->ch, P_UPDATE, &b, err);
	buf_free(&b);
	if (rc < 0) {
		free(u);
		return -1;
	}
	taskfiles_free(files);
	u->done = done;
	u->arg = arg;
	u->next = p->updates;
	p->updates = u;
	return 0;
}

static bool ticket_lost(void *sb, const char *ticket, size_t len)
{
	struct psp *p = sb;
	unsigned char d[TICKET_DIGEST_LEN];
	ticket_digest(ticket, len, d);
	for (size_t i = 0; i < p->nlost; i++) {
		unsigned char *x = p->lost + i * TICKET_DIGEST_LEN;
		if (CRYPTO_memcmp(x, d, sizeof d) == 0) {
			memmove(x, x + TICKET_DIGEST_LEN, (p->nlost - i - 1) * TICKET_DIGEST_LEN);
			p->nlost--;
			return true;
		}
	}
	return false;
}

static bool task_progress(void *sb, struct task *t, char *out, size_t n)
{
	struct psp_task *pt = find_task(sb, t->id);
	if (!pt || !pt->progress[0])
		return false;
	snprintf(out, n, "%s", pt->progress);
	return true;
}

/* ---- what the keeper sends ---- */

static void on_task(struct psp *p, struct pmsg_rd *rd)
{
	uint64_t id = pmsg_get_u64(rd);
	uint8_t state = pmsg_get_u8(rd);
	uint8_t flags = pmsg_get_u8(rd);
	uint32_t oom = pmsg_get_u32(rd);
	uint8_t kind = pmsg_get_u8(rd);
	char pass[TICKET_LEN + 1], progress[256];
	pmsg_get_str(rd, pass, sizeof pass);
	pmsg_get_str(rd, progress, sizeof progress);
	size_t clen, elen;
	const void *comp = pmsg_get_bytes(rd, &clen);
	const void *exe = pmsg_get_bytes(rd, &elen);
	if (!pmsg_done(rd) || state > TASK_EXPIRED || kind > TASK_RUN_WEB) {
		log_err("privsep: bad task message from the keeper");
		return;
	}
	struct task *t = task_by_id(p->j->tasks, id);
	struct psp_task *pt = find_task(p, id);
	if (!t || !pt)
		return; /* released meanwhile */
	snprintf(pt->progress, sizeof pt->progress, "%s", progress);
	if (flags & KT_COMPILATION_RESET)
		buf_reset(&t->compilation);
	if (flags & KT_EXECUTION_RESET)
		buf_reset(&t->execution);
	/* The table's caps apply as they did when the sandbox wrote here. */
	if (clen)
		buf_append(&t->compilation, comp, clen, NULL);
	if (elen)
		buf_append(&t->execution, exe, elen, NULL);
	bool was_started = t->compile_started, was_awaiting = t->awaiting_execute,
	     was_timed_out = t->timed_out, had_ticket = t->passthrough[0] != '\0';
	unsigned was_oom = t->oom_mib;
	t->compile_started = flags & KT_COMPILE_STARTED;
	t->awaiting_execute = (flags & KT_AWAITING_EXECUTE) && !pt->attached;
	t->timed_out = flags & KT_TIMED_OUT;
	t->executed = (flags & KT_EXECUTED) || pt->attached;
	t->oom_mib = oom;
	t->run_kind = (enum task_run_kind)kind;
	snprintf(t->passthrough, sizeof t->passthrough, "%s", pass);
	struct err e;
	/* States only move forward; an older message may say less than we know already. */
	if ((enum task_state)state > t->state && t->state < TASK_DONE &&
	    task_set_state(t, (enum task_state)state, &e) < 0)
		log_err("task %llu: %s", (unsigned long long)id, e.msg);
	if (was_started != t->compile_started || was_awaiting != t->awaiting_execute ||
	    had_ticket != (t->passthrough[0] != '\0') || was_timed_out != t->timed_out ||
	    was_oom != t->oom_mib)
		task_touch(t);
}

static void on_msg(void *arg, enum pmsg_type type, struct pmsg_rd *rd)
{
	struct psp *p = arg;
	size_t n = 0, n2 = 0;
	uint64_t id;
	const void *d, *d2;
	switch (type) {
	case K_TASK:
		on_task(p, rd);
		return;
	case K_EXEC_OUT: {
		id = pmsg_get_u64(rd);
		d = pmsg_get_bytes(rd, &n);
		struct psp_exec *e = find_exec(p, id);
		if (pmsg_done(rd) && e && n)
			e->sink.output(e->sink.sess, d, n);
		return;
	}
	case K_EXEC_ENDED: {
		char why[256];
		id = pmsg_get_u64(rd);
		pmsg_get_str(rd, why, sizeof why);
		struct psp_exec *e = find_exec(p, id);
		if (!e)
			return;
		struct exec_sink s = e->sink;
		unlink_exec(p, e);
		s.ended(s.sess, why[0] ? why : NULL);
		return;
	}
	case K_WEB_OUT: {
		id = pmsg_get_u64(rd);
		d = pmsg_get_bytes(rd, &n);
		struct psp_relay *r = find_relay(p, id);
		if (pmsg_done(rd) && r && n)
			r->sink.output(r->sink.sess, d, n);
		return;
	}
	case K_WEB_ENDED: {
		struct psp_relay *r = find_relay(p, pmsg_get_u64(rd));
		bool refused = pmsg_get_u8(rd) == 1;
		if (!r)
			return;
		struct web_sink s = r->sink;
		unlink_relay(p, r);
		if (refused && s.refused)
			s.refused(s.sess);
		else
			s.ended(s.sess);
		return;
	}
	case K_WEB_QUEUED: {
		struct psp_relay *r = find_relay(p, pmsg_get_u64(rd));
		uint64_t consumed = pmsg_get_u64(rd), queued = pmsg_get_u64(rd);
		if (!r || !pmsg_done(rd))
			return;
		r->inflight = consumed > r->inflight ? 0 : r->inflight - consumed;
		r->queued = (size_t)queued;
		return;
	}
	case K_UPDATE_DONE: {
		id = pmsg_get_u64(rd);
		int ok = pmsg_get_u8(rd);
		for (struct psp_update **pp = &p->updates; *pp; pp = &(*pp)->next)
			if ((*pp)->id == id) {
				struct psp_update *u = *pp;
				*pp = u->next;
				u->done(u->arg, ok);
				free(u);
				return;
			}
		return;
	}
	case K_TLS:
		d = pmsg_get_bytes(rd, &n);
		d2 = pmsg_get_bytes(rd, &n2);
		if (pmsg_done(rd) && p->ctl.tls)
			p->ctl.tls(p->ctl.arg, d, n, d2, n2);
		return;
	case K_TERM:
		if (p->ctl.term)
			p->ctl.term(p->ctl.arg);
		return;
	case K_DRAIN:
		p->j->drain_file_present = pmsg_get_u8(rd) != 0;
		return;
	case K_HEALTH: {
		char why[160];
		pmsg_get_str(rd, why, sizeof why);
		if (pmsg_done(rd))
			memcpy(p->j->start_blocked, why, sizeof why);
		return;
	}
	case K_READY:
		p->ready = true;
		return;
	case K_LOST:
		d = pmsg_get_bytes(rd, &n);
		if (!pmsg_done(rd) || n % TICKET_DIGEST_LEN || p->lost)
			return;
		if (n && (p->lost = malloc(n))) {
			memcpy(p->lost, d, n);
			p->nlost = n / TICKET_DIGEST_LEN;
		}
		return;
	case K_DISK: {
		char why[160];
		int low = pmsg_get_u8(rd);
		pmsg_get_str(rd, why, sizeof why);
		if (pmsg_done(rd))
			diskguard_report(methods_diskguard(p->j), low != 0, why);
		return;
	}
	default:
		log_err("privsep: unknown message %d from the keeper", (int)type);
	}
}

static void on_error(void *arg, const char *why)
{
	struct psp *p = arg;
	p->gone = true;
	if (p->ctl.gone)
		p->ctl.gone(p->ctl.arg, why);
}

struct psp *psp_install(struct jail *j, int fd, struct err *err)
{
	struct psp *p = calloc(1, sizeof *p);
	if (!p) {
		err_sys(err, ENOMEM, "allocating");
		return NULL;
	}
	p->j = j;
	size_t res = (size_t)j->cfg.result_max_size;
	p->ch = pchan_new(j->ev, fd, 2 * res + (1u << 20), SIZE_MAX / 4, on_msg, on_error, p, err);
	if (!p->ch) {
		free(p);
		return NULL;
	}
	j->sandbox = p;
	j->start_task = start_task;
	j->exec_attach = exec_attach;
	j->exec_input = exec_input;
	j->exec_pause = exec_pause;
	j->exec_detach = exec_detach;
	j->task_progress = task_progress;
	j->web_open = web_open;
	j->web_input = web_input;
	j->web_queued = web_queued;
	j->web_pause = web_pause;
	j->web_close = web_close;
	j->update_task = update_task;
	j->ticket_lost = ticket_lost;
	task_table_set_release(j->tasks, release_task, p);
	return p;
}

void psp_on_control(struct psp *p, const struct psp_control *c)
{
	p->ctl = *c;
}

int psp_wait_ready(struct psp *p)
{
	while (!p->ready && !p->gone)
		evloop_run_once(p->j->ev, 1000);
	return p->ready ? 0 : -1;
}

void psp_free(struct psp *p)
{
	if (!p)
		return;
	/* Updates still waiting are answered (done's contract: exactly once). */
	while (p->updates) {
		struct psp_update *u = p->updates;
		p->updates = u->next;
		u->done(u->arg, 0);
		free(u);
	}
	while (p->tasks) {
		struct psp_task *x = p->tasks;
		p->tasks = x->next;
		free(x);
	}
	while (p->execs)
		unlink_exec(p, p->execs);
	while (p->relays)
		unlink_relay(p, p->relays);
	free(p->lost);
	pchan_flush(p->ch, 1000);
	pchan_free(p->ch);
	free(p);
}
