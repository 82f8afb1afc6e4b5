#include "monitor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Phases of the monitor itself (the task's state is `state`):
 *   IDLE            created, nothing announced yet
 *   ACTIVE          following the task's state
 *   ENDING          a fixed sequence is under way (timeout/OOM pause, or the
 *                   200 ms before kind NONE closes): events are ignored
 *   GONE_RETRIEVE   the client left in retrieve: silent, waiting for the 30 s
 *                   deadline or the owner's next state
 *   CLOSED          nothing more to do, nothing more sent
 */
enum phase { PH_IDLE, PH_ACTIVE, PH_ENDING, PH_GONE_RETRIEVE, PH_CLOSED };

#define COMPILATION_PREFIX "compilation:"

struct monitor {
	struct mon_ops ops;
	void *arg;
	int64_t maxtime_ms;
	enum phase phase;
	enum mon_state state;	/* meaningful in ACTIVE */
	const char *label;	/* counter label, NULL when none */
	int64_t label_start_ms; /* last starting/compiling/running/retrieve transition */
	int64_t last_counter;	/* last N sent for this label */
	int64_t deadline_ms;	/* of the current state, -1 = none */
	bool second_pending;	/* beforeRunning's second compilation:<text> */
	int64_t second_due_ms;
	bool ending_no_exec; /* ENDING is kind NONE's 200 ms, not a pause */
	int64_t ending_due_ms;
	bool cleaned;
	char *cframe; /* "compilation:<text>", owned */
	size_t cframe_len;
	char ticket[MON_TICKET_MAX + 1];
	bool browser_sent;
};

struct monitor *monitor_new(const struct mon_ops *ops, void *arg, int64_t maxtime_s, int64_t now_ms)
{
	struct monitor *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->ops = *ops;
	m->arg = arg;
	if (maxtime_s < 0)
		maxtime_s = 0;
	if (maxtime_s > MON_MAXTIME_MAX_S)
		maxtime_s = MON_MAXTIME_MAX_S;
	m->maxtime_ms = maxtime_s * 1000;
	m->phase = PH_IDLE;
	m->deadline_ms = -1;
	(void)now_ms;
	return m;
}

void monitor_free(struct monitor *m)
{
	if (!m)
		return;
	free(m->cframe);
	free(m);
}

bool monitor_done(const struct monitor *m)
{
	return m->phase == PH_CLOSED;
}

static void send_frame(struct monitor *m, const char *text, size_t len)
{
	if (m->phase == PH_CLOSED || m->phase == PH_GONE_RETRIEVE)
		return;
	m->ops.send(m->arg, text, len);
}

static void send_str(struct monitor *m, const char *s)
{
	send_frame(m, s, strlen(s));
}

/* The compilation frame built by monitor_before_running(). */
static void send_cframe(struct monitor *m)
{
	if (m->cframe)
		send_frame(m, m->cframe, m->cframe_len);
	else
		send_str(m, COMPILATION_PREFIX);
}

/* `close:` then the close frame; the phase changes first so that a callback
 * re-entering the module finds it closed. */
static void close_socket(struct monitor *m)
{
	send_str(m, "close:");
	m->phase = PH_CLOSED;
	m->ops.close(m->arg);
}

static void clean_task(struct monitor *m, const char *why)
{
	if (m->cleaned)
		return;
	m->cleaned = true;
	m->ops.clean(m->arg, why);
}

static void set_label(struct monitor *m, const char *label, int64_t now_ms)
{
	m->label = label;
	m->label_start_ms = now_ms;
	m->last_counter = 0;
}

/* Leaving beforeRunning early: the reference slept the 200 ms inline, so the
 * second compilation:<text> always precedes what comes next. */
static void flush_second_compilation(struct monitor *m)
{
	if (!m->second_pending)
		return;
	m->second_pending = false;
	send_cframe(m);
}

static void start_ending(struct monitor *m, const char *message, int64_t pause_ms, const char *why,
			 int64_t now_ms)
{
	flush_second_compilation(m);
	send_str(m, message);
	m->phase = PH_ENDING;
	m->ending_no_exec = false;
	m->ending_due_ms = now_ms + pause_ms;
	m->label = NULL;
	m->deadline_ms = -1;
	clean_task(m, why);
}

void monitor_state(struct monitor *m, enum mon_state s, int64_t now_ms)
{
	if (m->phase == PH_GONE_RETRIEVE) {
		if (s != MON_RETRIEVE)
			m->phase = PH_CLOSED; /* the owner moved on: nothing left to watch */
		return;
	}
	if (m->phase != PH_IDLE && m->phase != PH_ACTIVE)
		return;
	if (s == MON_BEFORE_RUNNING)
		return;
	if (m->phase == PH_ACTIVE && m->state == s)
		return;
	flush_second_compilation(m);
	m->phase = PH_ACTIVE;
	m->state = s;
	m->deadline_ms = -1;
	switch (s) {
	case MON_STARTING:
		set_label(m, "message:starting", now_ms);
		send_str(m, m->label);
		break;
	case MON_COMPILING:
		set_label(m, "message:compilation", now_ms);
		m->deadline_ms = now_ms + m->maxtime_ms;
		send_str(m, m->label);
		break;
	case MON_RUNNING:
		set_label(m, "message:running", now_ms);
		m->deadline_ms = now_ms + m->maxtime_ms + MON_RUNNING_EXTRA_MS;
		send_str(m, m->label);
		if (m->ticket[0] && !m->browser_sent) {
			char f[sizeof "run:browser:" + MON_TICKET_MAX];
			int n = snprintf(f, sizeof f, "run:browser:%s", m->ticket);
			m->browser_sent = true;
			send_frame(m, f, (size_t)n);
		}
		break;
	case MON_RETRIEVE:
		if (m->label)
			set_label(m, m->label, now_ms); /* kept (as running), counted anew */
		m->deadline_ms = now_ms + MON_RETRIEVE_MS;
		send_str(m, "retrieve:");
		break;
	case MON_STOPPED:
		m->label = NULL;
		close_socket(m);
		break;
	case MON_BEFORE_RUNNING:
		break;
	}
}

/* "compilation:" + text capped at MON_COMPILATION_MAX, cut back to the start
 * of a UTF-8 sequence (the text is valid UTF-8, so that is a boundary). On
 * allocation failure the frame carries an empty text: better than no frame. */
static void build_cframe(struct monitor *m, const char *text, size_t len)
{
	if (!text)
		len = 0;
	if (len > MON_COMPILATION_MAX) {
		len = MON_COMPILATION_MAX;
		while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
			len--;
	}
	size_t plen = sizeof COMPILATION_PREFIX - 1;
	char *f = malloc(plen + len + 1);
	if (!f) {
		len = 0;
		f = malloc(plen + 1);
		if (!f) {
			m->cframe_len = 0; /* send_cframe falls back to the literal prefix */
			return;
		}
	}
	memcpy(f, COMPILATION_PREFIX, plen);
	if (len)
		memcpy(f + plen, text, len);
	f[plen + len] = '\0';
	free(m->cframe);
	m->cframe = f;
	m->cframe_len = plen + len;
}

int monitor_before_running(struct monitor *m, const char *compilation, size_t len,
			   enum mon_run_kind kind, const char *vnc_password, int64_t now_ms,
			   struct err *err)
{
	if (kind != MON_RUN_NONE && kind != MON_RUN_TERMINAL && kind != MON_RUN_VNC &&
	    kind != MON_RUN_WEBTERMINAL)
		return err_set(err, EINVAL, "monitor: unknown run kind %d", (int)kind);
	if (m->phase != PH_IDLE && m->phase != PH_ACTIVE)
		return 0;
	if (m->phase == PH_ACTIVE && m->state == MON_BEFORE_RUNNING)
		return 0;
	build_cframe(m, compilation, len);
	m->phase = PH_ACTIVE;
	m->state = MON_BEFORE_RUNNING;
	m->deadline_ms = now_ms + MON_BEFORE_RUNNING_MS;
	send_cframe(m);
	switch (kind) {
	case MON_RUN_TERMINAL:
		send_str(m, "run:terminal");
		break;
	case MON_RUN_WEBTERMINAL:
		send_str(m, "run:webterminal");
		break;
	case MON_RUN_VNC: {
		char f[sizeof "run:vnc:" + 8];
		int n = snprintf(f, sizeof f, "run:vnc:%.8s", vnc_password ? vnc_password : "");
		send_frame(m, f, (size_t)n);
		explicit_bzero(f, sizeof f);
		break;
	}
	case MON_RUN_NONE:
		m->phase = PH_ENDING;
		m->ending_no_exec = true;
		m->ending_due_ms = now_ms + MON_RUN_DELAY_MS;
		m->label = NULL;
		m->deadline_ms = -1;
		return 0;
	}
	m->second_pending = true;
	m->second_due_ms = now_ms + MON_RUN_DELAY_MS;
	return 0;
}

int monitor_web_ticket(struct monitor *m, const char *passthrough_ticket, struct err *err)
{
	size_t n = passthrough_ticket ? strnlen(passthrough_ticket, MON_TICKET_MAX + 1) : 0;
	if (n == 0 || n > MON_TICKET_MAX)
		return err_set(err, EINVAL, "monitor: pass-through ticket must be 1..%d bytes",
			       MON_TICKET_MAX);
	memcpy(m->ticket, passthrough_ticket, n);
	m->ticket[n] = '\0';
	if (m->phase == PH_ACTIVE && m->state == MON_RUNNING && !m->browser_sent) {
		char f[sizeof "run:browser:" + MON_TICKET_MAX];
		int len = snprintf(f, sizeof f, "run:browser:%s", m->ticket);
		m->browser_sent = true;
		send_frame(m, f, (size_t)len);
	}
	return 0;
}

/* Timeout and OOM after the client left in retrieve: clean, nothing to send. */
static bool ended_silently(struct monitor *m, const char *why)
{
	if (m->phase != PH_GONE_RETRIEVE)
		return false;
	m->phase = PH_CLOSED;
	clean_task(m, why);
	return true;
}

void monitor_timeout(struct monitor *m, int64_t now_ms)
{
	if (ended_silently(m, "timeout"))
		return;
	if (m->phase != PH_IDLE && m->phase != PH_ACTIVE)
		return;
	start_ending(m, "message:timeout", MON_TIMEOUT_PAUSE_MS, "timeout", now_ms);
}

void monitor_out_of_memory(struct monitor *m, unsigned mib, int64_t now_ms)
{
	if (ended_silently(m, "out of memory"))
		return;
	if (m->phase != PH_IDLE && m->phase != PH_ACTIVE)
		return;
	char f[64];
	snprintf(f, sizeof f, "message:outofmemory:%uMiB", mib);
	start_ending(m, f, MON_OOM_PAUSE_MS, "out of memory", now_ms);
}

static void finish_ending(struct monitor *m)
{
	if (m->ending_no_exec) {
		if (m->cframe_len <= sizeof COMPILATION_PREFIX - 1)
			send_str(m, COMPILATION_PREFIX MON_NO_EXECUTABLE);
		else
			send_cframe(m);
		close_socket(m);
		clean_task(m, "no executable");
	} else {
		close_socket(m);
	}
}

static void deadline_hit(struct monitor *m, int64_t now_ms)
{
	switch (m->state) {
	case MON_RETRIEVE:
		m->label = NULL;
		close_socket(m);
		clean_task(m, "retrieve timeout");
		break;
	case MON_COMPILING:
		start_ending(m, "message:timeout", MON_TIMEOUT_PAUSE_MS, "compilation timeout",
			     now_ms);
		break;
	case MON_BEFORE_RUNNING:
		start_ending(m, "message:timeout", MON_TIMEOUT_PAUSE_MS,
			     "execute socket not attached", now_ms);
		break;
	default:
		start_ending(m, "message:timeout", MON_TIMEOUT_PAUSE_MS, "timeout", now_ms);
		break;
	}
}

void monitor_tick(struct monitor *m, int64_t now_ms)
{
	switch (m->phase) {
	case PH_IDLE:
	case PH_CLOSED:
		return;
	case PH_GONE_RETRIEVE:
		if (m->deadline_ms >= 0 && now_ms >= m->deadline_ms)
			ended_silently(m, "retrieve timeout");
		return;
	case PH_ENDING:
		if (now_ms >= m->ending_due_ms)
			finish_ending(m);
		return;
	case PH_ACTIVE:
		break;
	}
	if (m->second_pending && now_ms >= m->second_due_ms)
		flush_second_compilation(m);
	if (m->deadline_ms >= 0 && now_ms >= m->deadline_ms) {
		deadline_hit(m, now_ms);
		return;
	}
	if (!m->label || now_ms < m->label_start_ms)
		return;
	int64_t n = (now_ms - m->label_start_ms) / 1000;
	if (n >= 1 && n > m->last_counter) {
		char f[64];
		int len = snprintf(f, sizeof f, "%s: %" PRId64 " sec", m->label, n);
		m->last_counter = n;
		send_frame(m, f, (size_t)len);
	}
}

void monitor_detail(struct monitor *m, const char *detail)
{
	if (m->phase != PH_ACTIVE || !m->label || !detail || !*detail)
		return;
	char f[320];
	size_t room = sizeof f - 1 - strlen(m->label) - 1, dlen = strlen(detail);
	if (dlen > room) { /* cut back to the start of a UTF-8 sequence, as build_cframe() */
		dlen = room;
		while (dlen > 0 && ((unsigned char)detail[dlen] & 0xC0) == 0x80)
			dlen--;
	}
	int n = snprintf(f, sizeof f, "%s:%.*s", m->label, (int)dlen, detail);
	if (n > 0)
		send_frame(m, f, (size_t)n);
}

bool monitor_client_gone(struct monitor *m, int64_t now_ms)
{
	(void)now_ms;
	switch (m->phase) {
	case PH_ACTIVE:
		if (m->state == MON_RETRIEVE) {
			m->phase = PH_GONE_RETRIEVE;
			m->second_pending = false;
			return false;
		}
		break;
	case PH_IDLE:
	case PH_ENDING:
		break;
	case PH_GONE_RETRIEVE:
	case PH_CLOSED:
		return false;
	}
	m->phase = PH_CLOSED;
	m->second_pending = false;
	if (m->cleaned)
		return false;
	m->cleaned = true; /* the owner cleans: the module never will */
	return true;
}
