#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"

/* Records every frame and callback; fails the test on anything after close. */
struct rec {
	char *frames[256];
	size_t lens[256];
	int n;
	int closes;
	int cleans;
	const char *why;
	int64_t clean_at; /* rec.now when clean() was called */
	int64_t close_at;
	int64_t now;
	struct monitor *m;
	bool stop_on_clean; /* re-entrancy: clean() reports STOPPED back */
};

static void rec_send(void *arg, const char *text, size_t len)
{
	struct rec *r = arg;
	assert_int_equal(r->closes, 0); /* nothing after close */
	assert_true(r->n < 256);
	r->frames[r->n] = malloc(len + 1);
	memcpy(r->frames[r->n], text, len);
	r->frames[r->n][len] = '\0';
	r->lens[r->n] = len;
	r->n++;
}

static void rec_close(void *arg)
{
	struct rec *r = arg;
	assert_int_equal(r->closes, 0);
	r->closes++;
	r->close_at = r->now;
}

static void rec_clean(void *arg, const char *why)
{
	struct rec *r = arg;
	assert_int_equal(r->cleans, 0);
	r->cleans++;
	r->why = why;
	r->clean_at = r->now;
	if (r->stop_on_clean)
		monitor_state(r->m, MON_STOPPED, r->now);
}

static const struct mon_ops OPS = {rec_send, rec_close, rec_clean};

static struct rec *rec_new(int64_t maxtime_s, int64_t now)
{
	struct rec *r = calloc(1, sizeof *r);
	r->now = now;
	r->clean_at = r->close_at = -1;
	r->m = monitor_new(&OPS, r, maxtime_s, now);
	assert_non_null(r->m);
	return r;
}

static void rec_free(struct rec *r)
{
	for (int i = 0; i < r->n; i++)
		free(r->frames[i]);
	monitor_free(r->m);
	free(r);
}

/* Ticks every 100 ms from r->now (exclusive) to `to` (inclusive). */
static void run_to(struct rec *r, int64_t to)
{
	while (r->now + 100 <= to) {
		r->now += 100;
		monitor_tick(r->m, r->now);
	}
	if (r->now < to) {
		r->now = to;
		monitor_tick(r->m, r->now);
	}
}

static void state(struct rec *r, enum mon_state s)
{
	monitor_state(r->m, s, r->now);
}

static void before_running(struct rec *r, const char *text, enum mon_run_kind k, const char *pw)
{
	assert_int_equal(
	    monitor_before_running(r->m, text, text ? strlen(text) : 0, k, pw, r->now, NULL), 0);
}

/* The frames recorded since index `from` are exactly the NULL-terminated list. */
static void expect_from(struct rec *r, int from, const char *const *want)
{
	int i = 0;
	for (; want[i]; i++) {
		if (from + i >= r->n)
			fail_msg("missing frame %d: \"%s\"", from + i, want[i]);
		assert_string_equal(r->frames[from + i], want[i]);
	}
	if (from + i != r->n)
		fail_msg("extra frame %d: \"%s\"", from + i, r->frames[from + i]);
}
#define EXPECT(r, from, ...) expect_from(r, from, (const char *const[]){__VA_ARGS__, NULL})

static void interactive_terminal_sequence(void **st)
{
	(void)st;
	struct rec *r = rec_new(60, 0);
	state(r, MON_STARTING);
	run_to(r, 500);
	state(r, MON_COMPILING);
	run_to(r, 4000); /* 3.5 s after compile start: the last counter says 3 sec */
	assert_string_equal(r->frames[r->n - 1], "message:compilation: 3 sec");
	before_running(r, "warning: x", MON_RUN_TERMINAL, NULL);
	run_to(r, 4150);
	int mark = r->n;
	run_to(r, 4200);
	EXPECT(r, mark, "compilation:warning: x");
	run_to(r, 4300);
	state(r, MON_RUNNING);
	run_to(r, 6500);
	state(r, MON_STOPPED);
	EXPECT(r, 0, "message:starting", "message:compilation", "message:compilation: 1 sec",
	       "message:compilation: 2 sec", "message:compilation: 3 sec", "compilation:warning: x",
	       "run:terminal", "compilation:warning: x", "message:running",
	       "message:running: 1 sec", "message:running: 2 sec", "close:");
	assert_int_equal(r->closes, 1);
	assert_int_equal(r->cleans, 0); /* the owner stopped it */
	assert_true(monitor_done(r->m));
	assert_false(monitor_client_gone(r->m, r->now));
	rec_free(r);
}

static void counter_through_before_running(void **st)
{
	(void)st;
	struct rec *r = rec_new(60, 0);
	state(r, MON_COMPILING);
	run_to(r, 1000);
	before_running(r, "", MON_RUN_TERMINAL, NULL);
	run_to(r, 2000);
	EXPECT(r, 0, "message:compilation", "message:compilation: 1 sec",
	       "compilation:", "run:terminal", "compilation:", "message:compilation: 2 sec");
	rec_free(r);
}

static void evaluation_batch_sequence(void **st)
{
	(void)st;
	struct rec *r = rec_new(60, 0);
	state(r, MON_STARTING);
	run_to(r, 1200);
	state(r, MON_COMPILING);
	run_to(r, 2500);
	state(r, MON_RUNNING);
	run_to(r, 4300);
	state(r, MON_RETRIEVE);
	run_to(r, 5300);
	state(r, MON_STOPPED);
	run_to(r, 9000);
	EXPECT(r, 0, "message:starting", "message:starting: 1 sec", "message:compilation",
	       "message:compilation: 1 sec", "message:running", "message:running: 1 sec",
	       "retrieve:", "message:running: 1 sec", "close:");
	assert_int_equal(r->closes, 1);
	assert_int_equal(r->cleans, 0);
	rec_free(r);
}

static void vnc_password_is_eight_chars(void **st)
{
	(void)st;
	struct rec *r = rec_new(60, 0);
	state(r, MON_COMPILING);
	before_running(r, "ok", MON_RUN_VNC, "1234567890123456789");
	run_to(r, 200);
	state(r, MON_RUNNING);
	EXPECT(r, 0, "message:compilation", "compilation:ok", "run:vnc:12345678", "compilation:ok",
	       "message:running");
	rec_free(r);
}

static void webterminal_with_browser_ticket(void **st)
{
	(void)st;
	struct rec *r = rec_new(60, 0);
	char longt[MON_TICKET_MAX + 2];
	memset(longt, '7', sizeof longt - 1);
	longt[sizeof longt - 1] = '\0';
	struct err e;
	assert_int_equal(monitor_web_ticket(r->m, "424242", NULL), 0);
	assert_int_equal(monitor_web_ticket(r->m, "", &e), -1); /* refused, the ticket kept */
	assert_int_equal(e.code, EINVAL);
	assert_int_equal(monitor_web_ticket(r->m, NULL, NULL), -1);
	assert_int_equal(monitor_web_ticket(r->m, longt, NULL), -1);
	state(r, MON_COMPILING);
	before_running(r, "", MON_RUN_WEBTERMINAL, NULL);
	run_to(r, 300);
	state(r, MON_RUNNING);
	run_to(r, 400);
	EXPECT(r, 0, "message:compilation", "compilation:", "run:webterminal",
	       "compilation:", "message:running", "run:browser:424242");
	rec_free(r);

	/* ticket known only after entering running: sent at once, once */
	r = rec_new(60, 0);
	state(r, MON_RUNNING);
	assert_int_equal(monitor_web_ticket(r->m, "99", NULL), 0);
	assert_int_equal(monitor_web_ticket(r->m, "99", NULL), 0);
	EXPECT(r, 0, "message:running", "run:browser:99");
	rec_free(r);
}

static void no_executable_empty_and_with_text(void **st)
{
	(void)st;
	struct rec *r = rec_new(60, 0);
	state(r, MON_COMPILING);
	run_to(r, 900);
	before_running(r, "", MON_RUN_NONE, NULL);
	run_to(r, 1000); /* no counter while ending */
	EXPECT(r, 0, "message:compilation", "compilation:");
	state(r, MON_STOPPED); /* ignored: the sequence finishes first */
	run_to(r, 1099);
	assert_int_equal(r->closes, 0);
	run_to(r, 1100);
	EXPECT(r, 0, "message:compilation", "compilation:", "compilation:" MON_NO_EXECUTABLE,
	       "close:");
	assert_int_equal(r->closes, 1);
	assert_int_equal(r->cleans, 1);
	assert_string_equal(r->why, "no executable");
	assert_true(monitor_done(r->m));
	run_to(r, 5000);
	assert_int_equal(r->n, 4);
	rec_free(r);

	r = rec_new(60, 0);
	state(r, MON_COMPILING);
	before_running(r, "a.c:1: error", MON_RUN_NONE, NULL);
	run_to(r, 200);
	EXPECT(r, 0, "message:compilation", "compilation:a.c:1: error", "compilation:a.c:1: error",
	       "close:");
	assert_int_equal(r->cleans, 1);
	rec_free(r);
}

static void compiling_deadline_is_maxtime(void **st)
{
	(void)st;
	struct rec *r = rec_new(10, 0);
	run_to(r, 1000);
	state(r, MON_COMPILING);
	run_to(r, 10900);
	assert_int_equal(r->cleans, 0);
	assert_string_equal(r->frames[r->n - 1], "message:compilation: 9 sec");
	run_to(r, 11000);
	assert_string_equal(r->frames[r->n - 1], "message:timeout");
	assert_int_equal(r->cleans, 1);
	assert_int_equal(r->clean_at, 11000);
	assert_string_equal(r->why, "compilation timeout");
	int mark = r->n;
	run_to(r, 13900); /* the pause: no counters, nothing */
	assert_int_equal(r->n, mark);
	run_to(r, 14000);
	EXPECT(r, mark, "close:");
	assert_int_equal(r->close_at, 14000);
	rec_free(r);
}

static void before_running_deadline_is_six_seconds(void **st)
{
	(void)st;
	struct rec *r = rec_new(600, 0);
	state(r, MON_COMPILING);
	before_running(r, "", MON_RUN_TERMINAL, NULL);
	run_to(r, 5900);
	assert_int_equal(r->cleans, 0);
	run_to(r, 6000);
	assert_string_equal(r->frames[r->n - 1], "message:timeout");
	assert_int_equal(r->cleans, 1);
	run_to(r, 9000);
	assert_string_equal(r->frames[r->n - 1], "close:");
	assert_int_equal(r->closes, 1);
	rec_free(r);
}

static void running_deadline_is_maxtime_plus_six(void **st)
{
	(void)st;
	struct rec *r = rec_new(5, 0);
	state(r, MON_COMPILING);
	run_to(r, 4000); /* compiling deadline (5 s) not reached */
	before_running(r, "", MON_RUN_TERMINAL, NULL);
	run_to(r, 5000);
	state(r, MON_RUNNING); /* new deadline 5000 + 5 s + 6 s */
	run_to(r, 15900);
	assert_int_equal(r->cleans, 0);
	assert_string_equal(r->frames[r->n - 1], "message:running: 10 sec");
	run_to(r, 16000);
	assert_string_equal(r->frames[r->n - 1], "message:timeout");
	assert_int_equal(r->cleans, 1);
	run_to(r, 19000);
	assert_string_equal(r->frames[r->n - 1], "close:");
	assert_int_equal(r->closes, 1);
	rec_free(r);
}

static void retrieve_deadline_is_thirty_seconds(void **st)
{
	(void)st;
	struct rec *r = rec_new(600, 0);
	state(r, MON_RUNNING);
	run_to(r, 1000);
	state(r, MON_RETRIEVE);
	run_to(r, 30900);
	assert_int_equal(r->cleans, 0);
	assert_string_equal(r->frames[r->n - 1], "message:running: 29 sec");
	int mark = r->n;
	run_to(r, 31000);
	EXPECT(r, mark, "close:"); /* no message:timeout in retrieve */
	assert_int_equal(r->closes, 1);
	assert_int_equal(r->cleans, 1);
	assert_string_equal(r->why, "retrieve timeout");
	rec_free(r);
}

static void timeout_pause_three_seconds(void **st)
{
	(void)st;
	struct rec *r = rec_new(600, 0);
	state(r, MON_RUNNING);
	run_to(r, 2050);
	monitor_timeout(r->m, r->now);
	assert_int_equal(r->cleans, 1);
	assert_string_equal(r->why, "timeout");
	/* ignored during the pause */
	monitor_out_of_memory(r->m, 64, r->now);
	monitor_timeout(r->m, r->now);
	state(r, MON_STOPPED);
	assert_int_equal(monitor_before_running(r->m, "x", 1, MON_RUN_TERMINAL, NULL, r->now, NULL),
			 0);
	run_to(r, 5049);
	assert_int_equal(r->closes, 0);
	run_to(r, 5050);
	EXPECT(r, 0, "message:running", "message:running: 1 sec", "message:running: 2 sec",
	       "message:timeout", "close:");
	assert_int_equal(r->closes, 1);
	assert_int_equal(r->close_at, 5050);
	rec_free(r);
}

static void out_of_memory_pause_one_and_a_half_seconds(void **st)
{
	(void)st;
	struct rec *r = rec_new(600, 0);
	state(r, MON_RUNNING);
	run_to(r, 500);
	monitor_out_of_memory(r->m, 130, r->now);
	assert_int_equal(r->cleans, 1);
	assert_string_equal(r->why, "out of memory");
	run_to(r, 1900);
	assert_int_equal(r->closes, 0);
	run_to(r, 2000);
	EXPECT(r, 0, "message:running", "message:outofmemory:130MiB", "close:");
	assert_int_equal(r->closes, 1);
	rec_free(r);
}

static void late_tick_sends_only_latest_counter(void **st)
{
	(void)st;
	struct rec *r = rec_new(600, 0);
	state(r, MON_STARTING);
	monitor_tick(r->m, 999);
	monitor_tick(r->m, 1000);
	monitor_tick(r->m, 1500);
	monitor_tick(r->m, 4200); /* the owner stalled */
	monitor_tick(r->m, 4300);
	monitor_tick(r->m, 3000); /* clock noise: nothing */
	EXPECT(r, 0, "message:starting", "message:starting: 1 sec", "message:starting: 4 sec");
	rec_free(r);
}

static void second_compilation_flushed_on_early_state_change(void **st)
{
	(void)st;
	struct rec *r = rec_new(600, 0);
	state(r, MON_COMPILING);
	before_running(r, "w", MON_RUN_TERMINAL, NULL);
	run_to(r, 100);
	state(r, MON_RUNNING);
	run_to(r, 600);
	EXPECT(r, 0, "message:compilation", "compilation:w", "run:terminal", "compilation:w",
	       "message:running");
	rec_free(r);

	r = rec_new(600, 0);
	before_running(r, "w", MON_RUN_TERMINAL, NULL);
	monitor_timeout(r->m, r->now);
	EXPECT(r, 0, "compilation:w", "run:terminal", "compilation:w", "message:timeout");
	rec_free(r);
}

static void client_gone_in_each_state(void **st)
{
	(void)st;
	/* before any state, starting, compiling, running: the owner cleans */
	enum mon_state cleaned_states[] = {MON_STARTING, MON_COMPILING, MON_RUNNING};
	for (int i = -1; i < 3; i++) {
		struct rec *r = rec_new(600, 0);
		if (i >= 0)
			state(r, cleaned_states[i]);
		int mark = r->n;
		assert_true(monitor_client_gone(r->m, r->now));
		assert_true(monitor_done(r->m));
		assert_false(monitor_client_gone(r->m, r->now));
		run_to(r, 40000);
		monitor_timeout(r->m, r->now);
		assert_int_equal(r->n, mark);
		assert_int_equal(r->closes + r->cleans, 0);
		rec_free(r);
	}

	/* beforeRunning: the pending second compilation is dropped */
	struct rec *r = rec_new(600, 0);
	before_running(r, "x", MON_RUN_TERMINAL, NULL);
	assert_true(monitor_client_gone(r->m, r->now));
	run_to(r, 10000);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->closes + r->cleans, 0);
	rec_free(r);

	/* kind NONE's 200 ms: the owner cleans, the module does not */
	r = rec_new(600, 0);
	before_running(r, "", MON_RUN_NONE, NULL);
	assert_true(monitor_client_gone(r->m, r->now));
	run_to(r, 1000);
	assert_int_equal(r->n, 1);
	assert_int_equal(r->closes + r->cleans, 0);
	rec_free(r);

	/* timeout pause: already cleaned by the module */
	r = rec_new(600, 0);
	state(r, MON_RUNNING);
	monitor_timeout(r->m, r->now);
	assert_false(monitor_client_gone(r->m, r->now));
	assert_true(monitor_done(r->m));
	run_to(r, 5000);
	assert_int_equal(r->n, 2);
	assert_int_equal(r->closes, 0);
	assert_int_equal(r->cleans, 1);
	rec_free(r);

	/* stopped: closed already */
	r = rec_new(600, 0);
	state(r, MON_STOPPED);
	assert_false(monitor_client_gone(r->m, r->now));
	rec_free(r);

	/* retrieve: tolerated until the deadline, then a silent clean */
	r = rec_new(600, 0);
	state(r, MON_RETRIEVE);
	run_to(r, 1000);
	assert_false(monitor_client_gone(r->m, r->now));
	assert_false(monitor_done(r->m));
	run_to(r, 29900);
	assert_int_equal(r->cleans, 0);
	run_to(r, 30000);
	assert_int_equal(r->cleans, 1);
	assert_int_equal(r->closes, 0);
	assert_true(monitor_done(r->m));
	EXPECT(r, 0, "retrieve:");
	rec_free(r);

	/* retrieve, gone, then the owner stops the task: done, nothing else */
	r = rec_new(600, 0);
	state(r, MON_RETRIEVE);
	assert_false(monitor_client_gone(r->m, r->now));
	state(r, MON_STOPPED);
	assert_true(monitor_done(r->m));
	run_to(r, 60000);
	EXPECT(r, 0, "retrieve:");
	assert_int_equal(r->closes + r->cleans, 0);
	rec_free(r);
}

static void nothing_after_close(void **st)
{
	(void)st;
	struct rec *r = rec_new(1, 0);
	state(r, MON_RUNNING);
	state(r, MON_STOPPED);
	int mark = r->n;
	state(r, MON_STARTING);
	state(r, MON_COMPILING);
	state(r, MON_RETRIEVE);
	before_running(r, "x", MON_RUN_TERMINAL, NULL);
	assert_int_equal(monitor_web_ticket(r->m, "5", NULL), 0);
	monitor_timeout(r->m, r->now);
	monitor_out_of_memory(r->m, 1, r->now);
	run_to(r, 100000);
	assert_int_equal(r->n, mark);
	assert_int_equal(r->closes, 1);
	assert_int_equal(r->cleans, 0);
	rec_free(r);
}

static void attach_in_a_late_state(void **st)
{
	(void)st;
	struct rec *r = rec_new(600, 0);
	r->now = 50000;
	state(r, MON_RUNNING);
	run_to(r, 51000);
	EXPECT(r, 0, "message:running", "message:running: 1 sec");
	rec_free(r);

	/* beforeRunning: its messages, no label so no counter */
	r = rec_new(600, 0);
	state(r, MON_BEFORE_RUNNING); /* ignored: needs the compilation */
	assert_int_equal(r->n, 0);
	before_running(r, "c", MON_RUN_TERMINAL, NULL);
	run_to(r, 3000);
	EXPECT(r, 0, "compilation:c", "run:terminal", "compilation:c");
	before_running(r, "c", MON_RUN_TERMINAL, NULL); /* same state: ignored */
	assert_int_equal(r->n, 3);
	rec_free(r);

	/* retrieve: no label so no counter */
	r = rec_new(600, 0);
	state(r, MON_RETRIEVE);
	state(r, MON_RETRIEVE); /* same state: no-op */
	run_to(r, 3000);
	EXPECT(r, 0, "retrieve:");
	rec_free(r);

	/* stopped */
	r = rec_new(600, 0);
	state(r, MON_STOPPED);
	EXPECT(r, 0, "close:");
	assert_int_equal(r->closes, 1);
	rec_free(r);
}

static void compilation_capped_at_utf8_boundary(void **st)
{
	(void)st;
	const size_t max = MON_COMPILATION_MAX;
	const char *tails[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	for (int t = 0; t < 3; t++) {
		size_t tl = strlen(tails[t]);
		/* the multibyte character straddles the cap: it goes whole */
		size_t len = max - 1 + tl;
		char *text = malloc(len);
		memset(text, 'a', max - 1);
		memcpy(text + max - 1, tails[t], tl);
		struct rec *r = rec_new(600, 0);
		monitor_before_running(r->m, text, len, MON_RUN_TERMINAL, NULL, 0, NULL);
		assert_int_equal(r->lens[0], strlen("compilation:") + max - 1);
		assert_int_equal(memcmp(r->frames[0] + 12, text, max - 1), 0);
		rec_free(r);
		free(text);
	}
	/* a character ending exactly at the cap is kept */
	char *text = malloc(max + 5);
	memset(text, 'b', max + 5);
	memcpy(text + max - 2, "\xc3\xa9", 2);
	struct rec *r = rec_new(600, 0);
	monitor_before_running(r->m, text, max + 5, MON_RUN_TERMINAL, NULL, 0, NULL);
	assert_int_equal(r->lens[0], strlen("compilation:") + max);
	assert_int_equal(memcmp(r->frames[0] + 12 + max - 2, "\xc3\xa9", 2), 0);
	rec_free(r);
	free(text);
}

static void reentrant_clean_and_bad_kind(void **st)
{
	(void)st;
	struct rec *r = rec_new(600, 0);
	r->stop_on_clean = true; /* the owner reports STOPPED from within clean() */
	state(r, MON_RUNNING);
	monitor_timeout(r->m, r->now);
	run_to(r, 3000);
	EXPECT(r, 0, "message:running", "message:timeout", "close:");
	assert_int_equal(r->close_at, 3000);
	rec_free(r);

	r = rec_new(600, 0);
	struct err e;
	assert_int_equal(monitor_before_running(r->m, "", 0, (enum mon_run_kind)9, NULL, 0, &e),
			 -1);
	assert_int_equal(e.code, EINVAL);
	assert_int_equal(r->n, 0);
	/* NULL text = empty */
	assert_int_equal(monitor_before_running(r->m, NULL, 5, MON_RUN_NONE, NULL, 0, NULL), 0);
	run_to(r, 200);
	EXPECT(r, 0, "compilation:", "compilation:" MON_NO_EXECUTABLE, "close:");
	rec_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(interactive_terminal_sequence),
	    cmocka_unit_test(counter_through_before_running),
	    cmocka_unit_test(evaluation_batch_sequence),
	    cmocka_unit_test(vnc_password_is_eight_chars),
	    cmocka_unit_test(webterminal_with_browser_ticket),
	    cmocka_unit_test(no_executable_empty_and_with_text),
	    cmocka_unit_test(compiling_deadline_is_maxtime),
	    cmocka_unit_test(before_running_deadline_is_six_seconds),
	    cmocka_unit_test(running_deadline_is_maxtime_plus_six),
	    cmocka_unit_test(retrieve_deadline_is_thirty_seconds),
	    cmocka_unit_test(timeout_pause_three_seconds),
	    cmocka_unit_test(out_of_memory_pause_one_and_a_half_seconds),
	    cmocka_unit_test(late_tick_sends_only_latest_counter),
	    cmocka_unit_test(second_compilation_flushed_on_early_state_change),
	    cmocka_unit_test(client_gone_in_each_state),
	    cmocka_unit_test(nothing_after_close),
	    cmocka_unit_test(attach_in_a_late_state),
	    cmocka_unit_test(compilation_capped_at_utf8_boundary),
	    cmocka_unit_test(reentrant_clean_and_bad_kind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
