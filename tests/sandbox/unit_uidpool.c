/*
 * unit_uidpool.c - the task uid allocator (jail/sandbox/uidpool.c): range checks, round-robin
 * without reuse while held, EBUSY when exhausted, release and abandon, and the claim files that
 * keep workers sharing a directory apart (two pools in one directory never hand out one uid;
 * a reap removes only claims that are no one's).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "uidpool.h"

static char *make_dir(void)
{
	char *d = strdup("/tmp/unit_uidpool.XXXXXX");
	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void remove_dir(char *d)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", d);
	assert_int_equal(system(cmd), 0);
	free(d);
}

static bool claim_exists(const char *dir, unsigned uid, char *owner, size_t n)
{
	char p[512];
	snprintf(p, sizeof p, "%s/claims/%u", dir, uid);
	FILE *f = fopen(p, "r");
	if (!f)
		return false;
	if (owner) {
		if (!fgets(owner, (int)n, f))
			owner[0] = '\0';
	}
	fclose(f);
	return true;
}

static void test_range_checks(void **state)
{
	(void)state;
	struct err e;
	assert_null(uidpool_new(0, 10, NULL, NULL, &e));
	assert_int_equal(e.code, EINVAL);
	assert_non_null(strstr(e.msg, "root"));
	assert_null(uidpool_new(70000, 0, NULL, NULL, &e));
	assert_null(uidpool_new(70000, UIDPOOL_MAX_COUNT + 1, NULL, NULL, &e));
	/* overflow past the last uid, and exactly up to it */
	assert_null(uidpool_new(UIDPOOL_MAX_UID, 2, NULL, NULL, &e));
	assert_non_null(strstr(e.msg, "past"));
	assert_null(uidpool_new(4294967295u, 1, NULL, NULL, &e));
	struct uidpool *p = uidpool_new(UIDPOOL_MAX_UID - 9, 10, NULL, NULL, &e);
	assert_non_null(p);
	uidpool_free(p);
	/* nobody and the 16-bit -1 */
	assert_null(uidpool_new(65000, 535, NULL, NULL, &e));
	assert_non_null(strstr(e.msg, "65534"));
	assert_null(uidpool_new(65535, 1, NULL, NULL, &e));
	p = uidpool_new(65000, 534, NULL, NULL, &e); /* 65000..65533 */
	assert_non_null(p);
	uidpool_free(p);
	p = uidpool_new(65536, 10, NULL, NULL, &e);
	assert_non_null(p);
	uidpool_free(p);
	/* a claim directory needs a sane owner */
	assert_null(uidpool_new(70000, 10, "/tmp", "a/b", &e));
	assert_null(uidpool_new(70000, 10, "/tmp", NULL, &e));
	uidpool_free(NULL);
}

/* Round-robin: every uid once before any comes back; no uid twice while held; EBUSY when
 * all are held; a released uid is the last to come back. */
static void test_round_robin_and_exhaustion(void **state)
{
	(void)state;
	struct err e;
	struct uidpool *p = uidpool_new(70000, 4, NULL, NULL, &e);
	assert_non_null(p);
	unsigned u[4];
	for (int i = 0; i < 4; i++) {
		assert_int_equal(uidpool_acquire(p, &u[i], &e), 0);
		assert_int_equal(u[i], 70000 + (unsigned)i);
		assert_true(uidpool_holds(p, u[i]));
	}
	assert_int_equal(uidpool_used(p), 4);
	unsigned x = 0;
	assert_int_equal(uidpool_acquire(p, &x, &e), -1);
	assert_int_equal(e.code, EBUSY);
	assert_non_null(strstr(e.msg, "all 4 task uids are in use"));
	/* 70001 then 70003 come back: the search goes on after the last one handed out */
	uidpool_release(p, 70001);
	uidpool_release(p, 70003);
	assert_false(uidpool_holds(p, 70001));
	assert_int_equal(uidpool_used(p), 2);
	assert_int_equal(uidpool_acquire(p, &x, &e), 0);
	assert_int_equal(x, 70001);
	assert_int_equal(uidpool_acquire(p, &x, &e), 0);
	assert_int_equal(x, 70003);
	assert_int_equal(uidpool_acquire(p, &x, &e), -1);
	/* releasing twice, or what was never held, changes nothing */
	uidpool_release(p, 70002);
	uidpool_release(p, 70002);
	uidpool_release(p, 69999);
	uidpool_release(p, 80000);
	assert_int_equal(uidpool_used(p), 3);
	uidpool_free(p);
}

/* A uid just released is not handed out again while others are free. */
static void test_no_immediate_reuse(void **state)
{
	(void)state;
	struct err e;
	struct uidpool *p = uidpool_new(100, 8, NULL, NULL, &e);
	assert_non_null(p);
	unsigned seen[8] = {0};
	unsigned last = 0;
	for (int i = 0; i < 64; i++) {
		unsigned x;
		assert_int_equal(uidpool_acquire(p, &x, &e), 0);
		assert_true(x >= 100 && x < 108);
		if (i > 0)
			assert_int_not_equal(x, last);
		seen[x - 100]++;
		uidpool_release(p, x);
		last = x;
	}
	for (int i = 0; i < 8; i++)
		assert_int_equal(seen[i], 8); /* a strict rotation */
	assert_int_equal(uidpool_used(p), 0);
	uidpool_free(p);
}

/* Many holders at random: never two on one uid. */
static void test_never_shared(void **state)
{
	(void)state;
	struct err e;
	enum { N = 50 };
	struct uidpool *p = uidpool_new(200000, N, NULL, NULL, &e);
	assert_non_null(p);
	bool held[N] = {false};
	unsigned nheld = 0;
	srand(7);
	for (int step = 0; step < 20000; step++) {
		if (rand() % 2) {
			unsigned x;
			int rc = uidpool_acquire(p, &x, &e);
			if (nheld == N) {
				assert_int_equal(rc, -1);
				assert_int_equal(e.code, EBUSY);
				continue;
			}
			assert_int_equal(rc, 0);
			assert_false(held[x - 200000]);
			held[x - 200000] = true;
			nheld++;
		} else {
			unsigned i = (unsigned)rand() % N;
			if (held[i]) {
				uidpool_release(p, 200000 + i);
				held[i] = false;
				nheld--;
			}
		}
		assert_int_equal(uidpool_used(p), nheld);
	}
	uidpool_free(p);
}

/* Two workers sharing a claim directory, with overlapping ranges: never one uid for both; a
 * release removes the claim, an abandon keeps it. */
static void test_claims_shared_dir(void **state)
{
	(void)state;
	char *dir = make_dir();
	char claims[512];
	snprintf(claims, sizeof claims, "%s/claims", dir);
	struct err e;
	struct uidpool *a = uidpool_new(70000, 4, claims, "worker-a", &e);
	assert_non_null(a);
	struct uidpool *b = uidpool_new(70002, 4, claims, "worker-b", &e); /* 70002..70005 */
	assert_non_null(b);
	struct stat st;
	assert_int_equal(lstat(claims, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	unsigned x;
	for (int i = 0; i < 4; i++) {
		assert_int_equal(uidpool_acquire(a, &x, &e), 0);
		assert_int_equal(x, 70000 + (unsigned)i);
	}
	char owner[80];
	assert_true(claim_exists(dir, 70003, owner, sizeof owner));
	assert_string_equal(owner, "worker-a\n");
	/* b skips 70002 and 70003 (a's claims) */
	assert_int_equal(uidpool_acquire(b, &x, &e), 0);
	assert_int_equal(x, 70004);
	assert_int_equal(uidpool_acquire(b, &x, &e), 0);
	assert_int_equal(x, 70005);
	assert_int_equal(uidpool_acquire(b, &x, &e), -1);
	assert_int_equal(e.code, EBUSY);
	assert_non_null(strstr(e.msg, "2 by others"));
	/* a releases 70003: b may have it; a abandons 70002: its claim stays, nobody gets it */
	uidpool_release(a, 70003);
	assert_false(claim_exists(dir, 70003, NULL, 0));
	uidpool_abandon(a, 70002);
	assert_false(uidpool_holds(a, 70002));
	assert_true(claim_exists(dir, 70002, NULL, 0));
	assert_int_equal(uidpool_acquire(b, &x, &e), 0);
	assert_int_equal(x, 70003);
	assert_true(claim_exists(dir, 70003, owner, sizeof owner));
	assert_string_equal(owner, "worker-b\n");
	assert_int_equal(uidpool_acquire(b, &x, &e), -1);
	assert_int_equal(uidpool_acquire(a, &x, &e), -1); /* 70002: abandoned, still claimed */
	uidpool_free(a);
	uidpool_free(b);
	/* a worker that comes back (same claims) does not take its previous life's uids, nor
	 * the abandoned one, nor b's */
	a = uidpool_new(70000, 4, claims, "worker-a", &e);
	assert_non_null(a);
	assert_int_equal(uidpool_acquire(a, &x, &e), -1);
	assert_int_equal(e.code, EBUSY);
	uidpool_free(a);
	remove_dir(dir);
}

struct reap_ctx {
	unsigned calls;
	unsigned live_uid; /* this one is still in use */
	char owners[8][80];
};

static bool reap_live(void *arg, const char *owner, unsigned uid)
{
	struct reap_ctx *c = arg;
	if (c->calls < 8)
		snprintf(c->owners[c->calls], sizeof c->owners[0], "%u:%s", uid, owner);
	c->calls++;
	return uid == c->live_uid;
}

/* A reap asks about every claim the pool does not hold (never its own), removes what the
 * caller says is no one's, keeps the rest, and ignores files that are not claims. */
static void test_reap(void **state)
{
	(void)state;
	char *dir = make_dir();
	char claims[512];
	snprintf(claims, sizeof claims, "%s/claims", dir);
	struct err e;
	struct uidpool *old = uidpool_new(70000, 3, claims, "w1", &e);
	assert_non_null(old);
	unsigned x;
	for (int i = 0; i < 3; i++)
		assert_int_equal(uidpool_acquire(old, &x, &e), 0);
	uidpool_free(old); /* a crash: 70000..70002 stay claimed */
	char junk[600];
	snprintf(junk, sizeof junk, "%s/notaclaim", claims);
	int fd = open(junk, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);
	snprintf(junk, sizeof junk, "%s/0123", claims);
	fd = open(junk, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	close(fd);

	struct uidpool *p = uidpool_new(70000, 5, claims, "w1", &e);
	assert_non_null(p);
	assert_int_equal(uidpool_acquire(p, &x, &e), 0);
	assert_int_equal(x, 70003); /* the previous life's are skipped */
	struct reap_ctx c = {.live_uid = 70001};
	assert_int_equal(uidpool_reap(p, reap_live, &c), 2);
	assert_int_equal(c.calls, 3); /* 70000..70002, not 70003 (held), not the junk */
	for (unsigned i = 0; i < 3; i++)
		assert_non_null(strstr(c.owners[i], ":w1"));
	assert_false(claim_exists(dir, 70000, NULL, 0));
	assert_true(claim_exists(dir, 70001, NULL, 0));
	assert_false(claim_exists(dir, 70002, NULL, 0));
	assert_true(claim_exists(dir, 70003, NULL, 0));
	/* the reaped ones are free again, the live one is not */
	assert_int_equal(uidpool_acquire(p, &x, &e), 0);
	assert_int_equal(x, 70004);
	assert_int_equal(uidpool_acquire(p, &x, &e), 0);
	assert_int_equal(x, 70000);
	assert_int_equal(uidpool_acquire(p, &x, &e), 0);
	assert_int_equal(x, 70002);
	assert_int_equal(uidpool_acquire(p, &x, &e), -1);
	/* another reaper at work: this one does nothing */
	int lk = open(claims, O_RDONLY | O_DIRECTORY);
	assert_true(lk >= 0);
	assert_int_equal(flock(lk, LOCK_EX), 0);
	c = (struct reap_ctx){.live_uid = 0};
	assert_int_equal(uidpool_reap(p, reap_live, &c), 0);
	assert_int_equal(c.calls, 0);
	close(lk);
	assert_int_equal(uidpool_reap(p, reap_live, &c), 1); /* 70001 now */
	uidpool_free(p);
	/* no claim directory: nothing to reap */
	p = uidpool_new(70000, 5, NULL, NULL, &e);
	assert_int_equal(uidpool_reap(p, reap_live, &c), 0);
	uidpool_free(p);
	remove_dir(dir);
}

/* The claim directory must not be a symlink, and claims are never made through one. */
static void test_claim_dir_not_a_symlink(void **state)
{
	(void)state;
	char *dir = make_dir();
	char target[512], link[512];
	snprintf(target, sizeof target, "%s/real", dir);
	snprintf(link, sizeof link, "%s/claims", dir);
	assert_int_equal(mkdir(target, 0700), 0);
	assert_int_equal(symlink(target, link), 0);
	struct err e;
	assert_null(uidpool_new(70000, 4, link, "w", &e));
	assert_non_null(strstr(e.msg, "task uid claims"));
	/* a claim name that is a symlink counts as taken, and nothing is written through it */
	char real2[512];
	snprintf(real2, sizeof real2, "%s/c2", dir);
	struct uidpool *p = uidpool_new(70000, 2, real2, "w", &e);
	assert_non_null(p);
	char l2[600];
	snprintf(l2, sizeof l2, "%s/70000", real2);
	assert_int_equal(symlink("/tmp/unit_uidpool_never", l2), 0);
	unsigned x;
	assert_int_equal(uidpool_acquire(p, &x, &e), 0);
	assert_int_equal(x, 70001);
	assert_int_equal(access("/tmp/unit_uidpool_never", F_OK), -1);
	uidpool_free(p);
	remove_dir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_range_checks),
	    cmocka_unit_test(test_round_robin_and_exhaustion),
	    cmocka_unit_test(test_no_immediate_reuse),
	    cmocka_unit_test(test_never_shared),
	    cmocka_unit_test(test_claims_shared_dir),
	    cmocka_unit_test(test_reap),
	    cmocka_unit_test(test_claim_dir_not_a_symlink),
	};
	return cmocka_run_group_tests_name("uidpool", tests, NULL, NULL);
}
