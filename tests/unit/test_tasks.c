#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "tasks.h"

static void create_find_remove(void **state)
{
	(void)state;
	struct task_table *tt = task_table_new(3, 1024);
	struct err e;
	struct task *a = task_create(tt, 1000, &e);
	struct task *b = task_create(tt, 1000, &e);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(task_count(tt), 2);
	assert_ptr_equal(task_find(tt, a->admin, TICKET_LEN, TICKET_ADMIN), a);
	assert_ptr_equal(task_find(tt, b->monitor, TICKET_LEN, TICKET_MONITOR), b);
	assert_ptr_equal(task_find(tt, b->execute, TICKET_LEN, TICKET_EXECUTE), b);
	/* A ticket of one kind does not open another kind. */
	assert_null(task_find(tt, a->admin, TICKET_LEN, TICKET_MONITOR));
	assert_null(task_find(tt, a->execute, TICKET_LEN, TICKET_ADMIN));
	assert_null(task_find(tt, "123", 3, TICKET_ADMIN));
	assert_null(task_find(tt, "abc", 3, TICKET_ADMIN));
	/* A prefix of a real ticket is not that ticket. */
	assert_null(task_find(tt, a->admin, TICKET_LEN - 1, TICKET_ADMIN));
	task_remove(tt, a, TASK_STOPPED);
	assert_int_equal(task_count(tt), 1);
	task_table_free(tt);
}

static void cap_gives_ebusy(void **state)
{
	(void)state;
	struct task_table *tt = task_table_new(2, 1024);
	struct err e;
	assert_non_null(task_create(tt, 0, &e));
	assert_non_null(task_create(tt, 0, &e));
	assert_null(task_create(tt, 0, &e));
	assert_int_equal(e.code, EBUSY);
	task_table_free(tt);
}

static void state_machine(void **state)
{
	(void)state;
	struct task_table *tt = task_table_new(4, 1024);
	struct err e;
	struct task *t = task_create(tt, 0, &e);
	assert_int_equal(t->state, TASK_COMPILING);
	assert_true(task_is_running(t));
	assert_int_equal(task_set_state(t, TASK_COMPILING, &e), -1);
	assert_int_equal(task_set_state(t, TASK_RUNNING, &e), 0);
	assert_int_equal(task_set_state(t, TASK_COMPILING, &e), -1);
	assert_non_null(strstr(e.msg, "running -> compiling"));
	assert_int_equal(task_set_state(t, TASK_DONE, &e), 0);
	assert_false(task_is_running(t));
	assert_int_equal(task_set_state(t, TASK_RUNNING, &e), -1);
	assert_int_equal(task_set_state(t, TASK_STOPPED, &e), 0);
	assert_int_equal(task_set_state(t, TASK_DONE, &e), -1);
	assert_int_equal(task_set_state(t, TASK_EXPIRED, &e), -1);
	task_table_free(tt);
}

static void sweep_expires_past_deadline(void **state)
{
	(void)state;
	struct task_table *tt = task_table_new(4, 1024);
	struct err e;
	struct task *a = task_create(tt, 0, &e);
	struct task *b = task_create(tt, 0, &e);
	a->deadline_ms = 5000;
	b->deadline_ms = 10000;
	char admin_b[TICKET_LEN + 1];
	memcpy(admin_b, b->admin, sizeof admin_b);
	assert_int_equal(task_sweep(tt, 4999), 0);
	assert_int_equal(task_sweep(tt, 5000), 1);
	assert_int_equal(task_count(tt), 1);
	assert_non_null(task_find(tt, admin_b, TICKET_LEN, TICKET_ADMIN));
	assert_int_equal(task_sweep(tt, 20000), 1);
	assert_int_equal(task_count(tt), 0);
	task_table_free(tt);
}

static void outputs_capped(void **state)
{
	(void)state;
	struct task_table *tt = task_table_new(1, 8);
	struct err e;
	struct task *t = task_create(tt, 0, &e);
	assert_int_equal(buf_puts(&t->compilation, "12345678", &e), 0);
	assert_int_equal(buf_puts(&t->compilation, "9", &e), -1);
	assert_int_equal(t->compilation.len, 8);
	task_table_free(tt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(create_find_remove), cmocka_unit_test(cap_gives_ebusy),
	    cmocka_unit_test(state_machine),	  cmocka_unit_test(sweep_expires_past_deadline),
	    cmocka_unit_test(outputs_capped),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
