#include "tasks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

struct task_table {
	struct task *head;
	unsigned count;
	unsigned max;
	size_t result_max;
	uint64_t next_id;
	task_release_fn release;
	void *release_arg;
	task_notify_fn notify;
	void *notify_arg;
};

void task_table_set_notify(struct task_table *tt, task_notify_fn fn, void *arg)
{
	tt->notify = fn;
	tt->notify_arg = arg;
}

void task_touch(struct task *t)
{
	if (t->table && t->table->notify)
		t->table->notify(t, t->table->notify_arg);
}

void task_table_set_release(struct task_table *tt, task_release_fn fn, void *arg)
{
	tt->release = fn;
	tt->release_arg = arg;
}

struct task_table *task_table_new(unsigned max_tasks, size_t result_max_size)
{
	struct task_table *tt = calloc(1, sizeof *tt);
	if (!tt)
		return NULL;
	tt->max = max_tasks;
	tt->result_max = result_max_size;
	tt->next_id = 1;
	return tt;
}

static void task_free(struct task_table *tt, struct task *t)
{
	if (t->run && tt->release)
		tt->release(t, tt->release_arg);
	buf_free(&t->compilation);
	buf_free(&t->execution);
	taskfiles_free(&t->files);
	free(t->script);
	free(t->lang);
	/* Tickets are secrets: do not leave them in freed memory. */
	explicit_bzero(t, sizeof *t);
	free(t);
}

void task_table_free(struct task_table *tt)
{
	if (!tt)
		return;
	while (tt->head) {
		struct task *t = tt->head;
		tt->head = t->next;
		task_free(tt, t);
	}
	free(tt);
}

struct task *task_create(struct task_table *tt, int64_t now_ms, struct err *err)
{
	if (tt->count >= tt->max) {
		err_set(err, EBUSY, "task limit of %u reached", tt->max);
		return NULL;
	}
	struct task *t = calloc(1, sizeof *t);
	if (!t) {
		err_sys(err, ENOMEM, "allocating task");
		return NULL;
	}
	if (ticket_generate(t->admin, err) < 0 || ticket_generate(t->monitor, err) < 0 ||
	    ticket_generate(t->execute, err) < 0) {
		free(t);
		return NULL;
	}
	t->id = tt->next_id++;
	t->table = tt;
	t->state = TASK_COMPILING;
	t->created_ms = now_ms;
	t->deadline_ms = INT64_MAX;
	buf_init(&t->compilation, tt->result_max);
	buf_init(&t->execution, tt->result_max);
	t->next = tt->head;
	tt->head = t;
	tt->count++;
	return t;
}

struct task *task_find(struct task_table *tt, const char *ticket, size_t len, enum ticket_kind kind)
{
	if (!ticket_format_ok(ticket, len))
		return NULL;
	struct task *found = NULL;
	for (struct task *t = tt->head; t; t = t->next) {
		const char *stored = kind == TICKET_ADMIN	  ? t->admin
				     : kind == TICKET_MONITOR	  ? t->monitor
				     : kind == TICKET_PASSTHROUGH ? t->passthrough
								  : t->execute;
		if (stored[0] && ticket_equal(stored, ticket, len))
			found = t;
	}
	return found;
}

struct task *task_by_id(struct task_table *tt, uint64_t id)
{
	for (struct task *t = tt->head; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

static bool transition_allowed(enum task_state from, enum task_state to)
{
	switch (from) {
	case TASK_COMPILING:
		return to != TASK_COMPILING;
	case TASK_RUNNING:
		return to == TASK_DONE || to == TASK_STOPPED || to == TASK_EXPIRED;
	case TASK_DONE:
		return to == TASK_STOPPED || to == TASK_EXPIRED;
	case TASK_STOPPED:
	case TASK_EXPIRED:
		return false;
	}
	return false;
}

int task_set_state(struct task *t, enum task_state to, struct err *err)
{
	if (!transition_allowed(t->state, to))
		return err_set(err, EINVAL, "task %llu: no transition %s -> %s",
			       (unsigned long long)t->id, task_state_name(t->state),
			       task_state_name(to));
	t->state = to;
	task_touch(t);
	return 0;
}

void task_remove(struct task_table *tt, struct task *t, enum task_state final)
{
	if (t->state != TASK_STOPPED && t->state != TASK_EXPIRED) {
		struct err e;
		if (task_set_state(t, final, &e) < 0)
			log_err("%s", e.msg);
	}
	for (struct task **pp = &tt->head; *pp; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			tt->count--;
			break;
		}
	}
	task_free(tt, t);
}

unsigned task_count(const struct task_table *tt)
{
	return tt->count;
}

unsigned task_count_pending(const struct task_table *tt)
{
	unsigned n = 0;
	for (const struct task *t = tt->head; t; t = t->next)
		if (task_is_running(t) || (t->state == TASK_DONE && !t->interactive))
			n++;
	return n;
}

unsigned task_max(const struct task_table *tt)
{
	return tt->max;
}

unsigned task_sweep(struct task_table *tt, int64_t now_ms)
{
	unsigned n = 0;
	struct task *t = tt->head;
	while (t) {
		struct task *next = t->next;
		if (now_ms >= t->deadline_ms) {
			log_info("task %llu expired in state %s", (unsigned long long)t->id,
				 task_state_name(t->state));
			task_remove(tt, t, TASK_EXPIRED);
			n++;
		}
		t = next;
	}
	return n;
}

const char *task_state_name(enum task_state s)
{
	switch (s) {
	case TASK_COMPILING:
		return "compiling";
	case TASK_RUNNING:
		return "running";
	case TASK_DONE:
		return "done";
	case TASK_STOPPED:
		return "stopped";
	case TASK_EXPIRED:
		return "expired";
	}
	return "?";
}

bool task_is_running(const struct task *t)
{
	return t->state == TASK_COMPILING || t->state == TASK_RUNNING;
}
