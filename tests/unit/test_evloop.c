#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>
#include <unistd.h>

#include "evloop.h"

struct ctx {
	int reads;
	int fired;
	struct ev_watch *other; /* unwatched from inside a callback */
	struct ev_watch *self;
};

static void on_read(void *arg, int fd, unsigned events)
{
	struct ctx *c = arg;
	char b[16];
	if (read(fd, b, sizeof b) > 0)
		c->reads++;
	if (c->other) {
		ev_unwatch(c->other);
		c->other = NULL;
	}
}

static void on_timer(void *arg)
{
	((struct ctx *)arg)->fired++;
}

static void fd_events_reach_their_callback(void **state)
{
	(void)state;
	struct evloop *ev = evloop_new(NULL);
	assert_non_null(ev);
	int p[2];
	assert_int_equal(pipe(p), 0);
	struct ctx c = {0};
	struct ev_watch *w = ev_watch_fd(ev, p[0], EV_READ, on_read, &c, NULL);
	assert_non_null(w);
	assert_int_equal(evloop_run_once(ev, 0), 0); /* nothing yet */
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_true(evloop_run_once(ev, 1000) > 0);
	assert_int_equal(c.reads, 1);
	ev_unwatch(w);
	assert_int_equal(write(p[1], "y", 1), 1);
	assert_int_equal(evloop_run_once(ev, 50), 0); /* unwatched: no event */
	close(p[0]);
	close(p[1]);
	evloop_free(ev);
}

static void unwatch_from_a_callback_is_safe(void **state)
{
	(void)state;
	struct evloop *ev = evloop_new(NULL);
	int a[2], b[2];
	assert_int_equal(pipe(a), 0);
	assert_int_equal(pipe(b), 0);
	struct ctx ca = {0}, cb = {0};
	struct ev_watch *wb = ev_watch_fd(ev, b[0], EV_READ, on_read, &cb, NULL);
	ca.other = wb; /* ca's callback removes wb, whose event is pending too */
	struct ev_watch *wa = ev_watch_fd(ev, a[0], EV_READ, on_read, &ca, NULL);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "x", 1), 1);
	evloop_run_once(ev, 1000);
	evloop_run_once(ev, 50);
	/* Either wb ran before being removed, or it never runs again: it must
	 * never run after ev_unwatch (ASan would catch a use after free). */
	assert_true(cb.reads <= 1);
	assert_int_equal(ca.reads, 1);
	ev_unwatch(wa);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	evloop_free(ev);
}

static void timers_fire_once_and_cancel(void **state)
{
	(void)state;
	struct evloop *ev = evloop_new(NULL);
	struct ctx c = {0};
	struct ev_timer *t = ev_timer_add(ev, 10, on_timer, &c, NULL);
	assert_non_null(t);
	for (int i = 0; i < 50 && !c.fired; i++)
		evloop_run_once(ev, 20);
	assert_int_equal(c.fired, 1);
	evloop_run_once(ev, 30);
	assert_int_equal(c.fired, 1); /* one-shot */
	struct ev_timer *t2 = ev_timer_add(ev, 10, on_timer, &c, NULL);
	ev_timer_cancel(t2);
	evloop_run_once(ev, 50);
	assert_int_equal(c.fired, 1); /* cancelled: never fires */
	evloop_free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(fd_events_reach_their_callback),
	    cmocka_unit_test(unwatch_from_a_callback_is_safe),
	    cmocka_unit_test(timers_fire_once_and_cancel),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
