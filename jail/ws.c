/*
 * ws.c - see ws.h.
 */
#include "ws.h"

#include <errno.h>
#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#include "jail_metrics.h"
#include "log.h"
#include "monitor.h"
#include "utf8.h"

#define TICK_US	     (100 * 1000)
#define MAX_IN_MSG   (1024 * 1024) /* one browser message (base64 mode keeps it whole) */
#define EXEC_WAIT_MS (60 * 1000)   /* an execute socket waiting for the compilation */

enum ws_kind { WS_MONITOR, WS_EXECUTE };

struct ws_frame {
	struct ws_frame *next;
	size_t len;
	bool binary;
	unsigned char data[]; /* LWS_PRE + len */
};

struct ws_sess {
	struct jail *j;
	struct lws *wsi;
	enum ws_kind kind;
	bool base64;
	uint64_t task_id;
	struct ws_frame *head, *tail;
	size_t queued;
	bool closing; /* close once the queue is drained */
	bool gone;    /* nothing more is sent */
	/* monitor */
	struct ws_sess *mon_next, **mon_prev; /* j->monitors, for on_task_changed */
	struct monitor *mon;
	enum mon_state last_state;
	bool said_before_running, said_timeout, said_oom, said_web_ticket;
	char progress[200]; /* last detail sent (image pulls) */
	/* execute */
	bool attached, paused;
	int64_t opened_ms;
	unsigned char carry[4];
	size_t carry_len;
	struct buf in; /* a fragmented browser message (base64 mode) */
};

/* ---- parsing the path ---- */

static int parse_path(const char *path, const char **ticket, size_t *tlen, enum ws_kind *kind)
{
	if (!path || path[0] != '/')
		return -1;
	const char *t = path + 1;
	const char *slash = strchr(t, '/');
	if (!slash)
		return -1;
	*ticket = t;
	*tlen = (size_t)(slash - t);
	if (strcmp(slash + 1, "monitor") == 0)
		*kind = WS_MONITOR;
	else if (strcmp(slash + 1, "execute") == 0)
		*kind = WS_EXECUTE;
	else
		return -1;
	return 0;
}

static struct task *find(struct jail *j, const char *path, enum ws_kind *kind)
{
	const char *ticket;
	size_t tlen;
	if (parse_path(path, &ticket, &tlen, kind) < 0)
		return NULL;
	struct task *t = task_find(j->tasks, ticket, tlen,
				   *kind == WS_MONITOR ? TICKET_MONITOR : TICKET_EXECUTE);
	if (!t)
		return NULL;
	if (*kind == WS_MONITOR)
		return t->monitor_used ? NULL : t;
	/* The program starts once compiled; an interactive task that still
	 * compiles (directrun) makes the socket wait. */
	if (t->execute_used || !t->interactive || !j->exec_attach)
		return NULL;
	if (!t->awaiting_execute && t->state != TASK_COMPILING)
		return NULL;
	return t;
}

int ws_check(struct jail *j, const char *path)
{
	enum ws_kind kind;
	return find(j, path, &kind) ? 0 : -1;
}

/* ---- the frame queue ---- */

static void want_write(struct ws_sess *s)
{
	if (s->wsi)
		lws_callback_on_writable(s->wsi);
}

static int enqueue(struct ws_sess *s, const void *data, size_t len, bool binary)
{
	if (s->gone || s->closing)
		return 0;
	struct ws_frame *f = malloc(sizeof *f + LWS_PRE + len);
	if (!f)
		return -1;
	f->next = NULL;
	f->len = len;
	f->binary = binary;
	memcpy(f->data + LWS_PRE, data, len);
	if (s->tail)
		s->tail->next = f;
	else
		s->head = f;
	s->tail = f;
	s->queued += len;
	want_write(s);
	return 0;
}

static void close_soon(struct ws_sess *s)
{
	s->closing = true;
	want_write(s);
}

/* ---- monitor ---- */

static void mon_send(void *arg, const char *text, size_t len)
{
	enqueue(arg, text, len, false);
}

static void mon_close(void *arg)
{
	close_soon(arg);
}

static void stop_task(struct ws_sess *s, const char *why)
{
	struct task *t = task_by_id(s->j->tasks, s->task_id);
	if (!t)
		return;
	log_info("task %llu: stopped (%s)", (unsigned long long)t->id, why);
	task_remove(s->j->tasks, t, TASK_STOPPED);
}

static void mon_clean(void *arg, const char *why)
{
	stop_task(arg, why);
}

static const struct mon_ops mon_ops = {mon_send, mon_close, mon_clean};

/* The compilation output as one valid UTF-8 text. */
static char *valid_text(const struct buf *b, size_t *len)
{
	unsigned char *out = malloc(b->len * 3 + 1);
	if (!out) {
		*len = 0;
		return NULL;
	}
	size_t tail;
	size_t n = utf8_sanitize((const unsigned char *)b->data, b->len, out, &tail);
	for (size_t k = 0; k < tail; k++) { /* an incomplete end is replaced too */
		memcpy(out + n, "\xef\xbf\xbd", 3);
		n += 3;
		break;
	}
	out[n] = '\0';
	*len = n;
	return (char *)out;
}

/* A task's state or progress changed (task_touch): its monitors speak now rather than at
 * their next 100 ms tick, so "retrieve:" and "run:" reach the browser at once. Only a
 * timer is set here: the caller may be in the middle of changing the task table. */
static void on_task_changed(struct task *t, void *arg)
{
	struct jail *j = arg;
	for (struct ws_sess *s = j->monitors; s; s = s->mon_next)
		if (s->task_id == t->id && !s->gone)
			lws_set_timer_usecs(s->wsi, 0);
}

/* Feeds the monitor with what changed in the task since the last poll. */
static void mon_poll(struct ws_sess *s, int64_t now)
{
	struct task *t = task_by_id(s->j->tasks, s->task_id);
	enum mon_state st;
	if (!t)
		st = MON_STOPPED;
	else if (t->timed_out || t->oom_mib)
		st = s->last_state;
	else if (t->awaiting_execute)
		st = MON_BEFORE_RUNNING;
	else if (t->state == TASK_COMPILING)
		st = t->compile_started ? MON_COMPILING : MON_STARTING;
	else if (t->state == TASK_RUNNING)
		st = MON_RUNNING;
	else if (t->state == TASK_DONE)
		st = t->interactive ? MON_STOPPED : MON_RETRIEVE;
	else
		st = MON_STOPPED;

	if (t && t->timed_out && !s->said_timeout) {
		s->said_timeout = true;
		monitor_timeout(s->mon, now);
	} else if (t && t->oom_mib && !s->said_oom) {
		s->said_oom = true;
		monitor_out_of_memory(s->mon, t->oom_mib, now);
	} else if (st == MON_BEFORE_RUNNING && !s->said_before_running) {
		s->said_before_running = true;
		size_t len;
		char *text = valid_text(&t->compilation, &len);
		enum mon_run_kind k = t->run_kind == TASK_RUN_VNC	 ? MON_RUN_VNC
				      : t->run_kind == TASK_RUN_WEB	 ? MON_RUN_WEBTERMINAL
				      : t->run_kind == TASK_RUN_TERMINAL ? MON_RUN_TERMINAL
									 : MON_RUN_NONE;
		char pw[9];
		snprintf(pw, sizeof pw, "%.8s", t->execute);
		monitor_before_running(s->mon, text ? text : "", len, k, pw, now, NULL);
		free(text);
		explicit_bzero(pw, sizeof pw);
	} else if (st != s->last_state && st != MON_BEFORE_RUNNING) {
		monitor_state(s->mon, st, now);
	}
	s->last_state = st;
	/* The monitor may have stopped the task (timeout, out of memory): look
	 * it up again before touching it. */
	t = task_by_id(s->j->tasks, s->task_id);
	/* Web-app mode: run:browser:<ticket> once the program's local server is known (the
	 * monitor sends it while running). */
	if (t && t->passthrough[0] && !s->said_web_ticket) {
		s->said_web_ticket = true;
		monitor_web_ticket(s->mon, t->passthrough, NULL);
	}
	char detail[200];
	if (t && st == MON_STARTING && s->j->task_progress &&
	    s->j->task_progress(s->j->sandbox, t, detail, sizeof detail) &&
	    strcmp(detail, s->progress) != 0) {
		snprintf(s->progress, sizeof s->progress, "%s", detail);
		monitor_detail(s->mon, detail);
	}
	monitor_tick(s->mon, now);
}

/* ---- execute ---- */

static void exec_output(void *sess, const void *data, size_t len)
{
	struct ws_sess *s = sess;
	struct task *t = task_by_id(s->j->tasks, s->task_id);
	bool binary = t && t->run_kind == TASK_RUN_VNC;
	if (binary && !s->base64) {
		enqueue(s, data, len, true);
	} else if (binary) {
		size_t cap = (len + 2) / 3 * 4 + 1;
		char *b64 = malloc(cap);
		if (b64) {
			int n = lws_b64_encode_string(data, (int)len, b64, (int)cap);
			if (n > 0)
				enqueue(s, b64, (size_t)n, false);
			free(b64);
		}
	} else {
		/* text frames must be valid UTF-8: carry an incomplete end over */
		unsigned char *in = malloc(s->carry_len + len);
		unsigned char *out = malloc((s->carry_len + len) * 3 + 1);
		if (in && out) {
			memcpy(in, s->carry, s->carry_len);
			memcpy(in + s->carry_len, data, len);
			size_t tail;
			size_t n = utf8_sanitize(in, s->carry_len + len, out, &tail);
			memcpy(s->carry, in + s->carry_len + len - tail, tail);
			s->carry_len = tail;
			if (n)
				enqueue(s, out, n, false);
		}
		free(in);
		free(out);
	}
	if (s->queued > WS_QUEUE_HIGH && !s->paused && t && s->j->exec_pause) {
		s->paused = true;
		s->j->exec_pause(s->j->sandbox, t, true);
	}
}

static void exec_ended(void *sess, const char *why)
{
	struct ws_sess *s = sess;
	if (s->carry_len) { /* the program's last bytes: an incomplete character */
		enqueue(s, "\xef\xbf\xbd", 3, false);
		s->carry_len = 0;
	}
	log_info("task %llu: execute socket: program ended (%s)", (unsigned long long)s->task_id,
		 why ? why : "exit");
	s->attached = false;
	close_soon(s);
}

static void exec_try_attach(struct ws_sess *s, int64_t now)
{
	struct task *t = task_by_id(s->j->tasks, s->task_id);
	if (!t || (!t->awaiting_execute && t->state != TASK_COMPILING)) {
		close_soon(s);
		return;
	}
	if (!t->awaiting_execute) {
		if (now - s->opened_ms > EXEC_WAIT_MS)
			close_soon(s);
		return;
	}
	struct exec_sink sink = {exec_output, exec_ended, s};
	struct err e;
	if (s->j->exec_attach(s->j->sandbox, t, &sink, &e) < 0) {
		log_warn("task %llu: execute socket: %s", (unsigned long long)t->id, e.msg);
		close_soon(s);
		return;
	}
	s->attached = true;
}

/* ---- lifecycle ---- */

struct ws_sess *ws_open(struct jail *j, struct lws *wsi, const char *path, const char *protocol)
{
	enum ws_kind kind;
	struct task *t = find(j, path, &kind);
	if (!t)
		return NULL;
	struct ws_sess *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->j = j;
	s->wsi = wsi;
	s->kind = kind;
	s->task_id = t->id;
	s->base64 = protocol && strcmp(protocol, "base64") == 0;
	s->opened_ms = j->now_ms();
	buf_init(&s->in, MAX_IN_MSG);
	if (kind == WS_MONITOR) {
		t->monitor_used = true;
		s->mon = monitor_new(&mon_ops, s, t->limits.maxtime, s->opened_ms);
		if (!s->mon) {
			free(s);
			return NULL;
		}
		s->last_state = (enum mon_state) - 1;
		mon_poll(s, s->opened_ms);
		task_table_set_notify(j->tasks, on_task_changed, j);
		s->mon_next = j->monitors;
		if (j->monitors)
			j->monitors->mon_prev = &s->mon_next;
		s->mon_prev = &j->monitors;
		j->monitors = s;
	} else {
		t->execute_used = true;
		exec_try_attach(s, s->opened_ms);
	}
	jail_metrics_ws(j, kind == WS_MONITOR, 1);
	log_info("task %llu: %s socket open%s", (unsigned long long)s->task_id,
		 kind == WS_MONITOR ? "monitor" : "execute", s->base64 ? " (base64)" : "");
	lws_set_timer_usecs(wsi, TICK_US);
	return s;
}

void ws_receive(struct ws_sess *s, const void *data, size_t len)
{
	if (s->gone)
		return;
	if (s->kind == WS_MONITOR) {
		/* the browser never sends here: anything means it is leaving */
		if (monitor_client_gone(s->mon, s->j->now_ms()))
			stop_task(s, "the monitor sent data");
		close_soon(s);
		return;
	}
	struct task *t = task_by_id(s->j->tasks, s->task_id);
	if (!t || !s->attached)
		return;
	const void *p = data;
	size_t n = len;
	unsigned char *dec = NULL;
	if (s->base64) {
		if (buf_append(&s->in, data, len, NULL) < 0) {
			close_soon(s);
			return;
		}
		if (!lws_is_final_fragment(s->wsi))
			return;
		dec = malloc(s->in.len + 1);
		int d = dec ? lws_b64_decode_string_len(s->in.data, (int)s->in.len, (char *)dec,
							(int)s->in.len + 1)
			    : -1;
		buf_reset(&s->in);
		if (d < 0) {
			free(dec);
			return;
		}
		p = dec;
		n = (size_t)d;
	}
	struct err e;
	if (n && s->j->exec_input(s->j->sandbox, t, p, n, &e) < 0) {
		log_warn("task %llu: execute input: %s", (unsigned long long)t->id, e.msg);
		close_soon(s);
	}
	free(dec);
}

int ws_writeable(struct ws_sess *s)
{
	if (s->gone)
		return -1;
	struct ws_frame *f = s->head;
	if (f) {
		s->head = f->next;
		if (!s->head)
			s->tail = NULL;
		s->queued -= f->len;
		int r = lws_write(s->wsi, f->data + LWS_PRE, f->len,
				  f->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
		free(f);
		if (r < 0)
			return -1;
		if (s->paused && s->queued < WS_QUEUE_LOW) {
			struct task *t = task_by_id(s->j->tasks, s->task_id);
			s->paused = false;
			if (t && s->j->exec_pause)
				s->j->exec_pause(s->j->sandbox, t, false);
		}
	}
	if (s->head) {
		want_write(s);
		return 0;
	}
	if (s->closing) {
		s->gone = true;
		lws_close_reason(s->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	return 0;
}

void ws_timer(struct ws_sess *s)
{
	if (s->gone)
		return;
	int64_t now = s->j->now_ms();
	if (s->kind == WS_MONITOR)
		mon_poll(s, now);
	else if (!s->attached && !s->closing)
		exec_try_attach(s, now);
	lws_set_timer_usecs(s->wsi, TICK_US);
}

void ws_closed(struct ws_sess *s)
{
	if (!s)
		return;
	int64_t now = s->j->now_ms();
	jail_metrics_ws(s->j, s->kind == WS_MONITOR, -1);
	if (s->kind == WS_MONITOR) {
		if (s->mon_prev) {
			*s->mon_prev = s->mon_next;
			if (s->mon_next)
				s->mon_next->mon_prev = s->mon_prev;
		}
		if (!s->gone && monitor_client_gone(s->mon, now))
			stop_task(s, "the monitor socket closed");
		monitor_free(s->mon);
	} else if (s->attached) {
		struct task *t = task_by_id(s->j->tasks, s->task_id);
		if (t && s->j->exec_detach)
			s->j->exec_detach(s->j->sandbox, t);
	}
	s->wsi = NULL;
	while (s->head) {
		struct ws_frame *f = s->head;
		s->head = f->next;
		free(f);
	}
	buf_free(&s->in);
	free(s);
}
