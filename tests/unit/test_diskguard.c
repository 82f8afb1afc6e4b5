/* The disk guard: thresholds, inodes, the 1 s cache, paths it cannot judge, the search for
 * containerd's root, and what `available` and `request` answer through methods_call. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diskguard.h"
#include "methods.h"

#define MiB (1024LL * 1024)

/* The fake filesystems: path -> free bytes and inodes; unknown paths fail with ENOENT. */
static struct {
	const char *path;
	long long avail;
	unsigned long files, favail;
} fs[4];
static int stat_calls;

static int fake_stat(const char *path, struct statvfs *st)
{
	stat_calls++;
	for (size_t i = 0; i < sizeof fs / sizeof fs[0]; i++) {
		if (fs[i].path && strcmp(fs[i].path, path) == 0) {
			memset(st, 0, sizeof *st);
			st->f_frsize = 4096;
			st->f_bsize = 4096;
			st->f_bavail = (fsblkcnt_t)(fs[i].avail / 4096);
			st->f_bfree = st->f_bavail;
			st->f_files = fs[i].files;
			st->f_favail = fs[i].favail;
			st->f_ffree = fs[i].favail;
			return 0;
		}
	}
	errno = ENOENT;
	return -1;
}

static int find_calls;
static const char *found_root; /* NULL: containerd not found */

static int fake_find(const char *socket, char *root, size_t n)
{
	find_calls++;
	assert_string_equal(socket, "/run/ctd.sock");
	if (!found_root)
		return 0;
	snprintf(root, n, "%s", found_root);
	return 1;
}

static int reset(void **state)
{
	(void)state;
	memset(fs, 0, sizeof fs);
	stat_calls = find_calls = 0;
	found_root = NULL;
	return 0;
}

static void guard(struct diskguard *g, long long min_free)
{
	diskguard_init(g, min_free);
	g->stat = fake_stat;
	g->find_root = fake_find;
}

static void below_threshold_is_low_with_a_plain_message(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 256 * MiB);
	fs[0].path = "/var/lib/ctd";
	fs[0].avail = 100 * MiB;
	fs[0].files = 1000000;
	fs[0].favail = 500000;
	assert_int_equal(diskguard_add(&g, "containerd root", "/var/lib/ctd", 256 * MiB, NULL), 0);
	char why[160] = "";
	assert_true(diskguard_low(&g, 0, why, sizeof why));
	assert_non_null(strstr(why, "disk full"));
	assert_non_null(strstr(why, "100 MiB free"));
	assert_non_null(strstr(why, "256 MiB needed"));
	assert_null(strstr(why, "/var/lib/ctd")); /* paths are for the log, not the client */
}

static void above_threshold_is_fine(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 256 * MiB);
	fs[0].path = "/a";
	fs[0].avail = 257 * MiB;
	assert_int_equal(diskguard_add(&g, "STATE_DIR", "/a", 256 * MiB, NULL), 0);
	char why[160] = "untouched";
	assert_false(diskguard_low(&g, 0, why, sizeof why));
	assert_string_equal(why, "untouched");
	/* f_files == 0 (a filesystem without inode counts, like btrfs): no inode verdict */
	assert_false(diskguard_low(&g, 5000, NULL, 0));
}

static void out_of_inodes_is_low(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 1 * MiB);
	fs[0].path = "/s";
	fs[0].avail = 1000 * MiB;
	fs[0].files = 100000;
	fs[0].favail = DISKGUARD_MIN_INODES - 1;
	assert_int_equal(diskguard_add(&g, "STATE_DIR", "/s", 1 * MiB, NULL), 0);
	char why[160];
	assert_true(diskguard_low(&g, 0, why, sizeof why));
	assert_non_null(strstr(why, "inodes"));
}

static void result_cached_for_a_second(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 10 * MiB);
	fs[0].path = "/s";
	fs[0].avail = 5 * MiB;
	assert_int_equal(diskguard_add(&g, "STATE_DIR", "/s", 10 * MiB, NULL), 0);
	assert_true(diskguard_low(&g, 1000, NULL, 0));
	assert_int_equal(stat_calls, 1);
	fs[0].avail = 50 * MiB; /* space freed: not seen within the second */
	for (int t = 1000; t < 1000 + DISKGUARD_CACHE_MS; t += 100)
		assert_true(diskguard_low(&g, t, NULL, 0));
	assert_int_equal(stat_calls, 1);
	assert_false(diskguard_low(&g, 1000 + DISKGUARD_CACHE_MS, NULL, 0));
	assert_int_equal(stat_calls, 2);
	/* a clock that went back (another test's clock, a bad fake) checks again */
	assert_false(diskguard_low(&g, 0, NULL, 0));
	assert_int_equal(stat_calls, 3);
}

static void any_low_path_makes_the_guard_low(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 100 * MiB);
	fs[0].path = "/ok";
	fs[0].avail = 900 * MiB;
	fs[1].path = "/full";
	fs[1].avail = 0;
	assert_int_equal(diskguard_add(&g, "STATE_DIR", "/ok", 16 * MiB, NULL), 0);
	assert_int_equal(diskguard_add(&g, "containerd root", "/full", 100 * MiB, NULL), 0);
	char why[160];
	assert_true(diskguard_low(&g, 0, why, sizeof why));
	assert_non_null(strstr(why, "0 MiB free"));
	/* both low: the message names the most demanding one (freeing 16 MiB would not do) */
	fs[0].avail = 1 * MiB;
	assert_true(diskguard_low(&g, DISKGUARD_CACHE_MS, why, sizeof why));
	assert_non_null(strstr(why, "100 MiB needed"));
}

static void unreadable_path_cannot_refuse(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 100 * MiB);
	assert_int_equal(diskguard_add(&g, "STATE_DIR", "/missing", 16 * MiB, NULL), 0);
	assert_false(diskguard_low(&g, 0, NULL, 0));
	assert_int_equal(stat_calls, 1);
}

static void zero_threshold_is_off(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 0);
	fs[0].path = "/full";
	fs[0].avail = 0;
	assert_int_equal(diskguard_add(&g, "STATE_DIR", "/full", 0, NULL), 0);
	assert_false(diskguard_low(&g, 0, NULL, 0));
	assert_false(diskguard_refuse(&g, 0, NULL, 0));
	assert_int_equal(stat_calls, 0);
}

static void too_many_or_too_long_paths_are_errors(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 1);
	struct err e;
	for (int i = 0; i < DISKGUARD_MAX_PATHS; i++)
		assert_int_equal(diskguard_add(&g, "x", "/x", 1, &e), 0);
	assert_int_equal(diskguard_add(&g, "x", "/x", 1, &e), -1);
	assert_non_null(strstr(e.msg, "paths"));
	guard(&g, 1);
	char longp[PATH_MAX + 10];
	memset(longp, 'a', sizeof longp - 1);
	longp[sizeof longp - 1] = '\0';
	assert_int_equal(diskguard_add(&g, "STATE_DIR", longp, 1, &e), -1);
	assert_int_equal(e.code, ENAMETOOLONG);
}

static void refusals_counted_and_logged_at_most_once_a_minute(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 10 * MiB);
	fs[0].path = "/s";
	fs[0].avail = 0;
	assert_int_equal(diskguard_add(&g, "STATE_DIR", "/s", 10 * MiB, NULL), 0);
	assert_true(diskguard_refuse(&g, 0, NULL, 0));
	assert_true(g.logged);
	assert_int_equal(g.refused, 0); /* logged at once: the count starts again */
	for (int i = 0; i < 50; i++)
		assert_true(diskguard_refuse(&g, 100 + i, NULL, 0));
	assert_int_equal(g.refused, 50); /* no new line within the minute */
	assert_int_equal(g.logged_ms, 0);
	assert_true(diskguard_refuse(&g, DISKGUARD_LOG_MS, NULL, 0));
	assert_int_equal(g.refused, 0);
	assert_int_equal(g.logged_ms, DISKGUARD_LOG_MS);
	/* not low: nothing refused, nothing counted */
	fs[0].avail = 100 * MiB;
	assert_false(diskguard_refuse(&g, 2 * DISKGUARD_LOG_MS, NULL, 0));
	assert_int_equal(g.refused, 0);
}

static void setup_watches_state_dir_and_finds_containerd_later(void **state)
{
	(void)state;
	struct jail_config c;
	jail_config_defaults(&c);
	free(c.state_dir);
	c.state_dir = strdup("/run/st");
	free(c.containerd_socket);
	c.containerd_socket = strdup("/run/ctd.sock");
	c.min_free_disk = 256 * MiB;
	struct diskguard g;
	assert_int_equal(diskguard_setup(&g, &c, NULL), 0);
	g.stat = fake_stat;
	g.find_root = fake_find;
	assert_int_equal(g.npaths, 1);
	assert_string_equal(g.paths[0].path, "/run/st");
	/* STATE_DIR holds FIFOs: the smaller of MIN_FREE_DISK and 16 MiB */
	assert_int_equal(g.paths[0].min_free, DISKGUARD_STATE_MIN);
	fs[0].path = "/run/st";
	fs[0].avail = 20 * MiB; /* a small tmpfs /run is fine */
	fs[1].path = "/ctd";
	fs[1].avail = 200 * MiB;
	assert_false(diskguard_low(&g, 0, NULL, 0));
	assert_int_equal(find_calls, 1); /* containerd not running yet */
	assert_false(diskguard_low(&g, DISKGUARD_FIND_MS - 1, NULL, 0));
	assert_int_equal(find_calls, 1); /* not searched again within the minute */
	found_root = "/ctd";
	assert_true(diskguard_low(&g, DISKGUARD_FIND_MS, NULL, 0)); /* found: 200 < 256 MiB */
	assert_int_equal(find_calls, 2);
	assert_int_equal(g.npaths, 2);
	assert_int_equal(g.paths[1].min_free, 256 * MiB);
	assert_true(diskguard_low(&g, 10 * DISKGUARD_FIND_MS, NULL, 0));
	assert_int_equal(find_calls, 2); /* found once: never searched again */

	/* a small MIN_FREE_DISK applies to STATE_DIR as it is */
	c.min_free_disk = 1 * MiB;
	assert_int_equal(diskguard_setup(&g, &c, NULL), 0);
	assert_int_equal(g.paths[0].min_free, 1 * MiB);
	/* 0: off, nothing watched */
	c.min_free_disk = 0;
	assert_int_equal(diskguard_setup(&g, &c, NULL), 0);
	assert_int_equal(g.npaths, 0);
	assert_false(diskguard_low(&g, 0, NULL, 0));
	jail_config_free(&c);
}

static void reported_verdict_replaces_the_checks(void **state)
{
	(void)state;
	struct diskguard g;
	guard(&g, 0); /* a parser's guard: its configuration does not matter any more */
	assert_false(diskguard_low(&g, 0, NULL, 0));
	diskguard_report(&g, true, "execution server disk full (1 MiB free, 256 MiB needed)");
	char why[160];
	assert_true(diskguard_refuse(&g, 10, why, sizeof why));
	assert_string_equal(why, "execution server disk full (1 MiB free, 256 MiB needed)");
	diskguard_report(&g, true, NULL);
	assert_true(diskguard_low(&g, 20, why, sizeof why));
	assert_string_equal(why, "execution server disk full");
	diskguard_report(&g, false, NULL);
	assert_false(diskguard_refuse(&g, 30, why, sizeof why));
	assert_int_equal(stat_calls, 0);
	assert_int_equal(find_calls, 0);
}

/* Through methods_call: STATE_DIR=/proc has no free blocks (statvfs says 0), so the guard is
 * low whatever MIN_FREE_DISK is; MIN_FREE_DISK=0 turns it off. */
static int64_t fake_now;
static int64_t now_ms(void)
{
	return fake_now;
}

static void call(struct jail *j, const char *body, struct methods_result *res)
{
	struct rpc_request req;
	struct err e;
	assert_int_equal(rpc_parse(body, strlen(body), &req, &e), 0);
	methods_call(j, &req, res);
	rpc_request_free(&req);
}

static const char *member_str(const struct methods_result *res, const char *name)
{
	for (size_t i = 0; i < res->n; i++)
		if (strcmp(res->m[i].name, name) == 0 && res->m[i].type == RPC_T_STR)
			return res->m[i].s;
	return NULL;
}

static void methods_refuse_new_tasks_and_say_busy(void **state)
{
	(void)state;
	struct jail j;
	memset(&j, 0, sizeof j);
	jail_config_defaults(&j.cfg);
	free(j.cfg.state_dir);
	j.cfg.state_dir = strdup("/proc");
	free(j.cfg.containerd_socket);
	j.cfg.containerd_socket = NULL;
	free(j.cfg.drain_file);
	j.cfg.drain_file = NULL;
	j.tasks = task_table_new(4, 4096);
	j.now_ms = now_ms;
	const char *avail = "{\"method\":\"available\",\"params\":{\"maxmemory\":1},\"id\":\"1\"}";
	const char *reqb = "{\"method\":\"request\",\"params\":{\"files\":{\"a.sh\":\"echo\"},"
			   "\"execute\":\"a.sh\",\"interactive\":0,\"lang\":\"C\"},\"id\":\"1\"}";
	struct methods_result res;
	call(&j, avail, &res);
	assert_int_equal(res.status, 200);
	assert_string_equal(member_str(&res, "status"), "busy");
	assert_int_equal(res.n, 7); /* the format is unchanged: all seven members */
	methods_result_free(&res);

	call(&j, reqb, &res);
	assert_int_equal(res.status, 503);
	assert_non_null(strstr(res.detail, "disk full"));
	assert_int_equal(task_count(j.tasks), 0);
	methods_result_free(&res);

	/* off: the same request is taken (no sandbox: it ends at once, saying so) */
	j.cfg.min_free_disk = 0;
	fake_now += DISKGUARD_CACHE_MS;
	call(&j, reqb, &res);
	assert_int_equal(res.status, 200);
	assert_int_equal(task_count(j.tasks), 1);
	methods_result_free(&res);
	call(&j, avail, &res);
	assert_string_equal(member_str(&res, "status"), "ready");
	methods_result_free(&res);

	task_table_free(j.tasks);
	jail_config_free(&j.cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(below_threshold_is_low_with_a_plain_message, reset),
	    cmocka_unit_test_setup(above_threshold_is_fine, reset),
	    cmocka_unit_test_setup(out_of_inodes_is_low, reset),
	    cmocka_unit_test_setup(result_cached_for_a_second, reset),
	    cmocka_unit_test_setup(any_low_path_makes_the_guard_low, reset),
	    cmocka_unit_test_setup(unreadable_path_cannot_refuse, reset),
	    cmocka_unit_test_setup(zero_threshold_is_off, reset),
	    cmocka_unit_test_setup(too_many_or_too_long_paths_are_errors, reset),
	    cmocka_unit_test_setup(refusals_counted_and_logged_at_most_once_a_minute, reset),
	    cmocka_unit_test_setup(setup_watches_state_dir_and_finds_containerd_later, reset),
	    cmocka_unit_test_setup(reported_verdict_replaces_the_checks, reset),
	    cmocka_unit_test_setup(methods_refuse_new_tasks_and_say_busy, reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
