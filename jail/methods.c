#include "methods.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diskguard.h"
#include "filename.h"
#include "log.h"

/* What a task says while there is no sandbox to run it in: the plugin shows
 * it to the student as compilation output, so it must be plain and true. */
#define NO_SANDBOX_TEXT                                                                            \
	"vpl-jail: this execution server has no sandbox configured; nothing was compiled or "      \
	"run.\n"
#define NO_OUTPUT_TEXT "The compilation process did not generate an executable nor error message."
#define LOST_TEXT                                                                                  \
	"vpl-jail: the execution server restarted while this task ran, and the task was lost. "    \
	"Please run it again.\n"

/* Where the task's files live inside its container (the sandbox issue fixes
 * the layout; the plugin only shows this path to the user). */
#define TASK_HOMEPATH "/home/prisoner"

static void fail(struct methods_result *res, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct methods_result *res, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(res->detail, sizeof res->detail, fmt, ap);
	va_end(ap);
	res->status = status;
	res->n = 0;
}

static void add_int(struct methods_result *res, const char *name, long long v)
{
	res->m[res->n++] = (struct rpc_member){.name = name, .type = RPC_T_INT, .i = v};
}

static void add_str(struct methods_result *res, const char *name, const char *s, size_t len)
{
	res->m[res->n++] =
	    (struct rpc_member){.name = name, .type = RPC_T_STR, .s = s, .slen = len};
}

static long long clamp_one(long long requested, bool present, long long server_max)
{
	if (!present || requested <= 0 || requested > server_max)
		return server_max;
	return requested;
}

struct task_limits methods_clamp_limits(const struct jail_config *cfg,
					const struct rpc_request *req)
{
	struct task_limits l;
	long long v = 0;
	int p;
	p = rpc_get_int(req, "maxtime", &v, NULL);
	l.maxtime = clamp_one(v, p == 1, cfg->max_time);
	p = rpc_get_int(req, "maxfilesize", &v, NULL);
	l.maxfilesize = clamp_one(v, p == 1, cfg->max_file_size);
	p = rpc_get_int(req, "maxmemory", &v, NULL);
	l.maxmemory = clamp_one(v, p == 1, cfg->max_memory);
	p = rpc_get_int(req, "maxprocesses", &v, NULL);
	l.maxprocesses = clamp_one(v, p == 1, cfg->max_processes);
	return l;
}

/* The disk guard (diskguard.h) of this worker process. It lives here, set up at the first
 * question, because methods are where tasks are admitted; it is redone when asked for another
 * jail or configuration (unit tests and fuzzers make many). Single-threaded like the rest. */
static struct diskguard disk_guard;
static const struct jail *disk_guard_owner;
static long long disk_guard_min;
static char disk_guard_state[PATH_MAX];

static struct diskguard *guard_of(struct jail *j)
{
	const char *state = j->cfg.state_dir ? j->cfg.state_dir : "";
	if (disk_guard_owner != j || disk_guard_min != j->cfg.min_free_disk ||
	    strcmp(disk_guard_state, state) != 0) {
		struct err e;
		if (diskguard_setup(&disk_guard, &j->cfg, &e) < 0) {
			log_warn("%s: free disk space is not checked", e.msg);
			diskguard_init(&disk_guard, 0);
		}
		disk_guard_owner = j;
		disk_guard_min = j->cfg.min_free_disk;
		snprintf(disk_guard_state, sizeof disk_guard_state, "%s", state);
	}
	return &disk_guard;
}

struct diskguard *methods_diskguard(struct jail *j)
{
	return guard_of(j);
}

static void do_available(struct jail *j, const struct rpc_request *req, struct methods_result *res)
{
	struct err e;
	long long want = 0;
	if (rpc_get_int(req, "maxmemory", &want, &e) < 0)
		return fail(res, 400, "%s", e.msg);
	const char *status = "ready";
	if (j->draining || j->drain_file_present ||
	    (j->cfg.drain_file && access(j->cfg.drain_file, F_OK) == 0))
		status = "offline";
	else if (task_count(j->tasks) >= task_max(j->tasks))
		status = "busy";
	else if (j->start_blocked[0] || diskguard_low(guard_of(j), j->now_ms(), NULL, 0))
		status = "busy"; /* the plugin and vpl-proxy then pick another server */
	add_str(res, "status", status, strlen(status));
	add_int(res, "load", task_count(j->tasks));
	add_int(res, "maxtime", j->cfg.max_time);
	add_int(res, "maxfilesize", j->cfg.max_file_size);
	add_int(res, "maxmemory", j->cfg.max_memory);
	add_int(res, "maxprocesses", j->cfg.max_processes);
	add_int(res, "secureport", j->cfg.secure_port);
}

static int check_limit_types(const struct rpc_request *req, struct methods_result *res)
{
	static const char *const names[] = {"maxtime", "maxfilesize", "maxmemory", "maxprocesses",
					    "interactive"};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		long long v;
		struct err e;
		if (rpc_get_int(req, names[i], &v, &e) < 0) {
			fail(res, 400, "%s", e.msg);
			return -1;
		}
	}
	return 0;
}

static void do_request(struct jail *j, const struct rpc_request *req, bool directrun,
		       struct methods_result *res)
{
	struct err e;
	if (j->draining)
		return fail(res, 503, "Server shutting down");
	/* A full disk: refuse at once with a clear answer (503, as when full of tasks, so
	 * vpl-proxy tries another worker); tasks already running are not touched. */
	char why[160];
	if (diskguard_refuse(guard_of(j), j->now_ms(), why, sizeof why))
		return fail(res, 503, "%s", why);
	/* No task uid free, containerd unreachable (the keeper says so: privsep_keeper.h). */
	if (j->start_blocked[0])
		return fail(res, 503, "%s", j->start_blocked);
	if (check_limit_types(req, res) < 0)
		return;
	const char *script;
	size_t script_len;
	int r = rpc_get_str(req, "execute", &script, &script_len, &e);
	if (r < 0)
		return fail(res, 400, "%s", e.msg);
	if (r == 0)
		return fail(res, 400, "Missing parameter: execute");
	const char *norm;
	size_t normlen;
	if (filename_check(script, script_len, &norm, &normlen, &e) < 0)
		return fail(res, 400, "Incorrect file name");
	const char *lang = "en_US.UTF-8";
	size_t lang_len = strlen(lang);
	if (rpc_get_str(req, "lang", &lang, &lang_len, &e) < 0)
		return fail(res, 400, "%s", e.msg);
	long long interactive = 0;
	rpc_get_int(req, "interactive", &interactive, NULL);

	struct task_files files;
	if (taskfiles_from_request(req, &files, &e) < 0)
		return fail(res, 400, "%s", e.msg);

	int64_t now = j->now_ms();
	struct task *t = task_create(j->tasks, now, &e);
	if (!t) {
		taskfiles_free(&files);
		return fail(res, e.code == EBUSY ? 503 : 500, "%s", e.msg);
	}
	t->files = files;
	t->directrun = directrun;
	t->interactive = directrun || interactive > 0;
	t->limits = methods_clamp_limits(&j->cfg, req);
	t->deadline_ms = now + (2 * t->limits.maxtime + j->cfg.task_ttl_extra) * 1000;
	t->script = strndup(norm, normlen);
	t->lang = strndup(lang, lang_len);
	if (directrun)
		t->monitor[0] = '\0';
	if (!t->script || !t->lang) {
		task_remove(j->tasks, t, TASK_STOPPED);
		return fail(res, 500, "out of memory");
	}
	res->task_id = t->id;
	log_info("task %llu: %s interactive=%d files=%zu bytes=%zu maxtime=%lld "
		 "maxmemory=%lld maxfilesize=%lld maxprocesses=%lld",
		 (unsigned long long)t->id, directrun ? "directrun" : "request", t->interactive,
		 t->files.n, t->files.total_bytes, t->limits.maxtime, t->limits.maxmemory,
		 t->limits.maxfilesize, t->limits.maxprocesses);

	if (!j->sandbox) {
		/* No fake execution: the task ends at once and says why. */
		buf_puts(&t->compilation, NO_SANDBOX_TEXT, NULL);
		task_set_state(t, TASK_DONE, NULL);
		taskfiles_free(&t->files);
		log_warn("task %llu: not executed: no sandbox configured",
			 (unsigned long long)t->id);
	} else if (j->start_task(j->sandbox, t, &e) < 0) {
		log_err("task %llu: %s", (unsigned long long)t->id, e.msg);
		buf_printf(&t->compilation, NULL, "vpl-jail: the task could not be started: %s\n",
			   e.msg);
		task_set_state(t, TASK_DONE, NULL);
	}

	if (directrun)
		add_str(res, "homepath", TASK_HOMEPATH, strlen(TASK_HOMEPATH));
	add_str(res, "adminticket", t->admin, TICKET_LEN);
	if (!directrun)
		add_str(res, "monitorticket", t->monitor, TICKET_LEN);
	add_str(res, "executionticket", t->execute, TICKET_LEN);
	add_int(res, "port", j->cfg.port);
	add_int(res, "secureport", j->cfg.secure_port);
}

/* Finds the task of the request's admin ticket, or fails as the reference
 * does (500 with its texts). */
static struct task *admin_task(struct jail *j, const struct rpc_request *req,
			       struct methods_result *res)
{
	const char *ticket;
	size_t len;
	struct err e;
	int r = rpc_get_str(req, "adminticket", &ticket, &len, &e);
	if (r < 0) {
		fail(res, 400, "%s", e.msg);
		return NULL;
	}
	if (r == 0 || !ticket_format_ok(ticket, len)) {
		fail(res, 500, "Ticket invalid format");
		return NULL;
	}
	struct task *t = task_find(j->tasks, ticket, len, TICKET_ADMIN);
	if (!t)
		fail(res, 500, "Ticket not found");
	else
		res->task_id = t->id;
	return t;
}

/* getresult for a task this worker lost when it restarted (ticketlog.h): an answer the
 * student can act on, instead of "Ticket not found". */
static bool lost_result(struct jail *j, const struct rpc_request *req, struct methods_result *res)
{
	const char *ticket;
	size_t len;
	if (!j->ticket_lost || rpc_get_str(req, "adminticket", &ticket, &len, NULL) != 1 ||
	    !ticket_format_ok(ticket, len) || !j->ticket_lost(j->sandbox, ticket, len))
		return false;
	log_info("getresult: a task lost when this worker restarted");
	res->status = 200;
	res->n = 0;
	add_str(res, "compilation", LOST_TEXT, strlen(LOST_TEXT));
	add_str(res, "execution", "", 0);
	add_int(res, "executed", 0);
	add_int(res, "interactive", 0);
	return true;
}

static void do_getresult(struct jail *j, const struct rpc_request *req, struct methods_result *res)
{
	struct task *t = admin_task(j, req, res);
	if (!t) {
		lost_result(j, req, res);
		return;
	}
	if (t->interactive)
		return fail(res, 500, "Security: process in bad state");
	if (task_is_running(t))
		return fail(res, 500, "Task still running");
	/* The outputs are read once: hand them over and end the task. */
	res->out_compilation = t->compilation;
	res->out_execution = t->execution;
	buf_init(&t->compilation, 0);
	buf_init(&t->execution, 0);
	bool executed = t->executed;
	task_remove(j->tasks, t, TASK_STOPPED);
	if (res->out_compilation.len == 0 && !executed)
		add_str(res, "compilation", NO_OUTPUT_TEXT, strlen(NO_OUTPUT_TEXT));
	else
		add_str(res, "compilation",
			res->out_compilation.data ? res->out_compilation.data : "",
			res->out_compilation.len);
	add_str(res, "execution", res->out_execution.data ? res->out_execution.data : "",
		res->out_execution.len);
	add_int(res, "executed", executed);
	add_int(res, "interactive", 0);
}

static void do_running(struct jail *j, const struct rpc_request *req, struct methods_result *res)
{
	long long pv;
	bool legacy = rpc_get_int(req, "pluginversion", &pv, NULL) != 1;
	struct task *t = admin_task(j, req, res);
	bool running = t && task_is_running(t);
	if (t && !running)
		task_remove(j->tasks, t, TASK_STOPPED);
	if (!running && legacy)
		return fail(res, 500, "Ticket invalid");
	res->status = 200;
	res->n = 0;
	add_int(res, "running", running);
}

static void do_stop(struct jail *j, const struct rpc_request *req, struct methods_result *res)
{
	struct task *t = admin_task(j, req, res);
	if (t) {
		log_info("task %llu: stopped by request", (unsigned long long)t->id);
		task_remove(j->tasks, t, TASK_STOPPED);
	}
	/* Unknown tickets are swallowed: stop always answers stop=1. */
	res->status = 200;
	res->n = 0;
	add_int(res, "stop", 1);
}

static void do_update(struct jail *j, const struct rpc_request *req, struct methods_result *res)
{
	struct task_files files;
	struct err e;
	if (taskfiles_from_request(req, &files, &e) < 0)
		return fail(res, 400, "%s", e.msg);
	struct task *t = admin_task(j, req, res);
	if (!t) {
		taskfiles_free(&files);
		return;
	}
	/* The files go into the running task through the sandbox, whose answer comes later:
	 * the HTTP layer waits for it (j->defer). Without a sandbox, without a way to wait, or
	 * when the task is not running (finished, not compiled yet), nothing can be written:
	 * update=0, the plugin's "writing failed", rather than pretend. */
	if (j->sandbox && j->update_task && j->defer && !j->defer->taken) {
		if (j->update_task(j->sandbox, t, &files, j->defer->done, j->defer->arg, &e) == 0)
			j->defer->taken = true;
		else
			log_info("task %llu: update not written: %s", (unsigned long long)t->id,
				 e.msg);
	}
	taskfiles_free(&files);
	add_int(res, "update", 0); /* when deferred, a placeholder: the answer says ok */
}

void methods_call(struct jail *j, const struct rpc_request *req, struct methods_result *res)
{
	memset(res, 0, sizeof *res);
	res->status = 200;
	buf_init(&res->out_compilation, 0);
	buf_init(&res->out_execution, 0);
	const char *m = req->method;
	if (strcmp(m, "available") == 0)
		do_available(j, req, res);
	else if (strcmp(m, "request") == 0)
		do_request(j, req, false, res);
	else if (strcmp(m, "directrun") == 0)
		do_request(j, req, true, res);
	else if (strcmp(m, "getresult") == 0)
		do_getresult(j, req, res);
	else if (strcmp(m, "running") == 0)
		do_running(j, req, res);
	else if (strcmp(m, "stop") == 0)
		do_stop(j, req, res);
	else if (strcmp(m, "update") == 0)
		do_update(j, req, res);
	else {
		char safe[64];
		log_sanitize(safe, sizeof safe, m, strlen(m));
		fail(res, 400, "Unknown request:%s", safe);
	}
}

void methods_result_free(struct methods_result *res)
{
	buf_free(&res->out_compilation);
	buf_free(&res->out_execution);
}
