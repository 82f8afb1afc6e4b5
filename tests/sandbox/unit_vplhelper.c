/*
 * unit_vplhelper.c - black-box tests of the static helper ($(BUILD)/vplhelper, or
 * $VPLHELPER_BIN): each test makes a temp dir (under /dev/shm, else /tmp) with io/ (the FIFO), wd/
 * (the work dir, the helper's cwd) and outside/ (what a planted symlink points to), runs `vplhelper
 * init` with VPLHELPER_IO_DIR=<tmp>/io, feeds it a stream built with filestream.h's encoder, and
 * checks the helper's stdout lines and the files on disk. `probe` runs the same way. The reaping
 * test runs the helper as PID 1 of a new pid namespace (needs root; skipped otherwise).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "filestream.h"

#define TIMEOUT_MS 5000

static char helper[PATH_MAX];

/*
 * What a test started and has not cleaned up yet. A failed assertion leaves the test function
 * at once (cmocka longjmps), so the per-test teardown kills the helpers still listed here and
 * removes the temp dirs: otherwise a failing test would leave a helper running, holding the
 * test runner's stderr open.
 */
static pid_t live_pids[16];
static char live_dirs[4][64];

static void track_pid(pid_t pid)
{
	for (size_t i = 0; i < sizeof live_pids / sizeof live_pids[0]; i++)
		if (live_pids[i] == 0) {
			live_pids[i] = pid;
			return;
		}
	kill(pid, SIGKILL);
	fail_msg("too many helpers alive at once");
}

static void untrack_pid(pid_t pid)
{
	for (size_t i = 0; i < sizeof live_pids / sizeof live_pids[0]; i++)
		if (live_pids[i] == pid)
			live_pids[i] = 0;
}

/* ---------------- temp dirs ---------------- */

struct tdir {
	char base[64], io[96], wd[96], out[96], fifo[128];
};

static void tdir_make(struct tdir *t)
{
	/* tmpfs when there is one, like the real work dir (and ext4 on the test VM takes about
	 * 1 ms per file create, which the 10001-file test would feel). */
	const char *root = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	snprintf(t->base, sizeof t->base, "%s/vplhelper-test.XXXXXX", root);
	assert_non_null(mkdtemp(t->base));
	snprintf(t->io, sizeof t->io, "%s/io", t->base);
	snprintf(t->wd, sizeof t->wd, "%s/wd", t->base);
	snprintf(t->out, sizeof t->out, "%s/outside", t->base);
	snprintf(t->fifo, sizeof t->fifo, "%s/files", t->io);
	assert_int_equal(mkdir(t->io, 0755), 0);
	assert_int_equal(mkdir(t->wd, 0755), 0);
	assert_int_equal(mkdir(t->out, 0755), 0);
	assert_int_equal(mkfifo(t->fifo, 0600), 0);
	for (size_t i = 0; i < sizeof live_dirs / sizeof live_dirs[0]; i++)
		if (!live_dirs[i][0]) {
			snprintf(live_dirs[i], sizeof live_dirs[i], "%s", t->base);
			return;
		}
	fail_msg("too many temp dirs at once");
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void remove_tree(const char *base)
{
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void tdir_remove(struct tdir *t)
{
	remove_tree(t->base);
	for (size_t i = 0; i < sizeof live_dirs / sizeof live_dirs[0]; i++)
		if (strcmp(live_dirs[i], t->base) == 0)
			live_dirs[i][0] = '\0';
}

/* cmocka teardown of every test: see live_pids. */
static int cleanup_leftovers(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof live_pids / sizeof live_pids[0]; i++)
		if (live_pids[i] > 0) {
			kill(live_pids[i], SIGKILL);
			waitpid(live_pids[i], NULL, 0);
			live_pids[i] = 0;
		}
	for (size_t i = 0; i < sizeof live_dirs / sizeof live_dirs[0]; i++)
		if (live_dirs[i][0]) {
			remove_tree(live_dirs[i]);
			live_dirs[i][0] = '\0';
		}
	return 0;
}

/* Path of name inside dir, in a static rotating buffer (enough for one assertion line). */
static const char *at(const char *dir, const char *name)
{
	static char bufs[4][PATH_MAX];
	static int k;
	char *b = bufs[k++ % 4];
	snprintf(b, PATH_MAX, "%s/%s", dir, name);
	return b;
}

static void write_file(const char *p, const char *content)
{
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(content, f);
	assert_int_equal(fclose(f), 0);
}

/* Contents of a regular file (symlinks not followed), or NULL. Caller frees. */
static char *read_file(const char *p, size_t *len)
{
	int fd = open(p, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	char *b = malloc((size_t)st.st_size + 1);
	assert_non_null(b);
	ssize_t n = read(fd, b, (size_t)st.st_size);
	close(fd);
	assert_int_equal(n, st.st_size);
	b[n] = '\0';
	if (len)
		*len = (size_t)n;
	return b;
}

static void assert_content(const char *p, const char *want)
{
	char *got = read_file(p, NULL);
	if (!got)
		fail_msg("%s unreadable: %s", p, strerror(errno));
	assert_string_equal(got, want);
	free(got);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
	closedir(d);
	return n;
}

/* ---------------- streams ---------------- */

static void add_file(struct buf *b, unsigned mode, const char *name, size_t namelen,
		     const void *data, size_t datalen)
{
	char h[FILESTREAM_HEADER_MAX];
	int n = filestream_header(h, sizeof h, mode, namelen, datalen);
	assert_true(n > 0);
	assert_int_equal(buf_append(b, h, (size_t)n, NULL), 0);
	assert_int_equal(buf_append(b, name, namelen, NULL), 0);
	assert_int_equal(buf_append(b, data, datalen, NULL), 0);
}

static void add_end(struct buf *b)
{
	char e[4];
	assert_int_equal(filestream_end(e, sizeof e), FILESTREAM_END_LEN);
	assert_int_equal(buf_append(b, e, FILESTREAM_END_LEN, NULL), 0);
}

/* ---------------- running the helper ---------------- */

struct run {
	pid_t pid;
	int out; /* read end of the helper's stdout */
	char acc[8192];
	size_t len;
};

/* In a forked child: becomes uid (when not 0), then execs the helper in cwd. */
static void exec_helper_as(uid_t uid, const char *cwd, const char *io, char *const argv[], int out)
{
	/* If the test process dies (crash, timeout), its helpers die with it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	if (uid != 0 && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
		_exit(125);
	if (dup2(out, STDOUT_FILENO) < 0 || chdir(cwd) < 0)
		_exit(126);
	if (io)
		setenv("VPLHELPER_IO_DIR", io, 1);
	execv(helper, argv);
	_exit(127);
}

static void exec_helper(const char *cwd, const char *io, char *const argv[], int out)
{
	exec_helper_as(0, cwd, io, argv, out);
}

/* Reads the next line of the helper's stdout (without '\n') into line; fails on timeout. */
static void next_line(struct run *r, char *line, size_t sz)
{
	for (;;) {
		char *nl = memchr(r->acc, '\n', r->len);
		if (nl) {
			size_t n = (size_t)(nl - r->acc);
			assert_true(n < sz);
			memcpy(line, r->acc, n);
			line[n] = '\0';
			memmove(r->acc, nl + 1, r->len - n - 1);
			r->len -= n + 1;
			return;
		}
		struct pollfd p = {.fd = r->out, .events = POLLIN};
		if (poll(&p, 1, TIMEOUT_MS) != 1)
			fail_msg("no line from the helper within %d ms", TIMEOUT_MS);
		assert_true(r->len < sizeof r->acc);
		ssize_t k = read(r->out, r->acc + r->len, sizeof r->acc - r->len);
		if (k <= 0)
			fail_msg("helper stdout closed (got %zu bytes: %.*s)", r->len, (int)r->len,
				 r->acc);
		r->len += (size_t)k;
	}
}

/* Starts `vplhelper init` in t->wd as uid (0: ours) and waits for its "ready" line. */
static void start_init_as(struct run *r, const struct tdir *t, uid_t uid)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	r->len = 0;
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		char *argv[] = {helper, (char *)"init", NULL};
		exec_helper_as(uid, t->wd, t->io, argv, p[1]);
	}
	track_pid(r->pid);
	close(p[1]);
	r->out = p[0];
	char line[256];
	next_line(r, line, sizeof line);
	assert_string_equal(line, "ready");
}

static void start_init(struct run *r, const struct tdir *t)
{
	start_init_as(r, t, 0);
}

/* Writes the stream into the FIFO. The helper may stop reading early (that is what errors
 * do), so EPIPE is expected and ignored. */
static void feed(const struct tdir *t, const void *data, size_t len)
{
	int fd = open(t->fifo, O_WRONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	const char *p = data;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			break;
		p += w;
		len -= (size_t)w;
	}
	close(fd);
}

static int wait_exit(pid_t pid, int ms)
{
	for (int waited = 0; waited < ms; waited += 10) {
		int st;
		pid_t w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		usleep(10000);
	}
	return -1;
}

/* The helper must still be running (it stays as init even after an error), and must exit 0
 * on sig. */
static void stop_init(struct run *r, int sig)
{
	int st;
	if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
		untrack_pid(r->pid);
		fail_msg("helper exited before the signal (status 0x%x)", st);
	}
	assert_int_equal(kill(r->pid, sig), 0);
	st = wait_exit(r->pid, TIMEOUT_MS);
	if (st == -1)
		fail_msg("helper did not exit on signal %d", sig); /* the teardown kills it */
	untrack_pid(r->pid);
	close(r->out);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Runs one init with stream, returns its second line (after "ready") in line, stops it. */
static void stage(const struct tdir *t, const void *stream, size_t len, char *line, size_t sz)
{
	struct run r;
	start_init(&r, t);
	feed(t, stream, len);
	next_line(&r, line, sz);
	stop_init(&r, SIGTERM);
}

static void stage_buf(const struct tdir *t, struct buf *b, char *line, size_t sz)
{
	stage(t, b->data, b->len, line, sz);
	buf_free(b);
}

/* Runs `vplhelper probe names...` in t->wd; returns the exit status, stdout in out. */
static int probe(const struct tdir *t, const char *const *names, char *out, size_t sz)
{
	char *argv[16] = {helper, (char *)"probe"};
	size_t n = 2;
	for (; names && *names; names++) {
		assert_true(n < 15);
		argv[n++] = (char *)*names;
	}
	argv[n] = NULL;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		exec_helper(t->wd, NULL, argv, p[1]);
	track_pid(pid);
	close(p[1]);
	size_t len = 0;
	for (ssize_t k; (k = read(p[0], out + len, sz - 1 - len)) > 0;)
		len += (size_t)k;
	out[len] = '\0';
	close(p[0]);
	int st = wait_exit(pid, TIMEOUT_MS);
	if (st == -1)
		fail_msg("probe did not finish");
	untrack_pid(pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* ---------------- init: good streams ---------------- */

static void assert_mode(const char *p, mode_t type, mode_t perm)
{
	struct stat st;
	if (lstat(p, &st) != 0)
		fail_msg("%s: %s", p, strerror(errno));
	assert_int_equal(st.st_mode & S_IFMT, type);
	assert_int_equal(st.st_mode & 07777, perm);
}

static void test_stage_files(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	/* Larger than the helper's 64 KiB buffer and with NUL bytes. */
	size_t big_len = 200000;
	char *big = malloc(big_len);
	assert_non_null(big);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)(i * 7 % 251);
	struct buf b;
	buf_init(&b, 1 << 20);
	add_file(&b, 0600, "a.txt", 5, "hello", 5);
	add_file(&b, 0700, "vpl_run.sh", 10, "#!/bin/sh\n", 10);
	add_file(&b, 0600, "dir/sub/c.bin", 13, big, big_len);
	add_file(&b, 0600, "dir/empty", 9, "", 0);
	add_end(&b);
	char line[256];
	stage_buf(&t, &b, line, sizeof line);
	assert_string_equal(line, "staged 4");

	assert_mode(at(t.wd, "a.txt"), S_IFREG, 0600);
	assert_content(at(t.wd, "a.txt"), "hello");
	assert_mode(at(t.wd, "vpl_run.sh"), S_IFREG, 0700);
	assert_content(at(t.wd, "vpl_run.sh"), "#!/bin/sh\n");
	assert_mode(at(t.wd, "dir"), S_IFDIR, 0700);
	assert_mode(at(t.wd, "dir/sub"), S_IFDIR, 0700);
	assert_mode(at(t.wd, "dir/sub/c.bin"), S_IFREG, 0600);
	size_t got_len;
	char *got = read_file(at(t.wd, "dir/sub/c.bin"), &got_len);
	assert_non_null(got);
	assert_int_equal(got_len, big_len);
	assert_memory_equal(got, big, big_len);
	free(got);
	free(big);
	assert_mode(at(t.wd, "dir/empty"), S_IFREG, 0600);
	assert_content(at(t.wd, "dir/empty"), "");
	/* The work dir itself is made 0700 (runc may leave the image's mode on the tmpfs). */
	assert_mode(t.wd, S_IFDIR, 0700);
	tdir_remove(&t);
}

static void test_stage_empty_stream(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	char line[256];
	stage(&t, "E\n", 2, line, sizeof line);
	assert_string_equal(line, "staged 0");
	assert_int_equal(count_entries(t.wd), 0);
	tdir_remove(&t);
}

/* ---------------- init: hostile input ---------------- */

static void expect_stage_error(const struct tdir *t, const void *stream, size_t len,
			       const char *why)
{
	char line[512];
	stage(t, stream, len, line, sizeof line);
	if (strncmp(line, "error ", 6) != 0)
		fail_msg("%s: expected an error, got \"%s\"", why, line);
	/* The message is one printable line. */
	for (const char *c = line; *c; c++)
		assert_true((unsigned char)*c >= 0x20 && *c != 0x7f);
}

static void test_hostile_names(void **state)
{
	(void)state;
	char n300[300];
	memset(n300, 'n', sizeof n300);
	char comp129[140];
	memset(comp129, 'c', sizeof comp129);
	comp129[129] = '/';
	static const struct {
		const char *name;
		size_t len;
	} names[] = {
	    {"../x", 4}, {"a/../../b", 9}, {"/abs", 4},	 {"a\0b", 3}, {"a//b", 4},
	    {"a/", 2},	 {".", 1},	   {"x/./y", 5}, {"..", 2},   {"a\nb", 3},
	};
	struct tdir t;
	tdir_make(&t);
	for (size_t i = 0; i < sizeof names / sizeof names[0] + 1; i++) {
		struct buf b;
		buf_init(&b, 4096);
		const char *name = i < sizeof names / sizeof names[0] ? names[i].name : comp129;
		size_t len = i < sizeof names / sizeof names[0] ? names[i].len : sizeof comp129;
		add_file(&b, 0600, name, len, "EVIL", 4);
		add_end(&b);
		expect_stage_error(&t, b.data, b.len, "hostile name");
		buf_free(&b);
		/* Nothing was written anywhere: not in wd, not next to it, not at "/abs". */
		assert_int_equal(count_entries(t.wd), 0);
		assert_int_equal(count_entries(t.base), 3); /* io, wd, outside */
		assert_int_equal(access("/abs", F_OK), -1);
	}
	/* A 300-byte name cannot even be encoded; a hand-made header must be refused too. */
	char stream[400];
	memcpy(stream, "F 600 300 1\n", 12);
	memcpy(stream + 12, n300, sizeof n300);
	stream[12 + sizeof n300] = 'X';
	expect_stage_error(&t, stream, 12 + sizeof n300 + 1, "300-byte name");
	assert_int_equal(count_entries(t.wd), 0);
	tdir_remove(&t);
}

static void test_malformed_streams(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		const char *why;
	} bad[] = {
	    {"F 644 1 1\nab", "mode 0644"},
	    {"F 4700 1 1\nab", "setuid mode"},
	    {"F 600 1 2000000000\nab", "datalen over 1 GiB"},
	    {"F 600 0 1\nx", "empty name"},
	    {"X\n", "unknown record"},
	    {"\n", "empty line"},
	    {"F 600 1 5\nxab", "truncated data"},
	    {"F 600 1 1\nxy", "missing end marker"},
	    {"", "empty stream"},
	    {"F 600 1 1                                                            \n",
	     "long line"},
	};
	struct tdir t;
	tdir_make(&t);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_stage_error(&t, bad[i].s, strlen(bad[i].s), bad[i].why);
	tdir_remove(&t);
}

static void test_too_many_files(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct buf b;
	buf_init(&b, 1 << 20);
	for (int i = 0; i <= FILESTREAM_MAX_FILES; i++) {
		char name[16];
		int n = snprintf(name, sizeof name, "f%05d", i);
		add_file(&b, 0600, name, (size_t)n, "", 0);
	}
	add_end(&b);
	char line[256];
	stage_buf(&t, &b, line, sizeof line);
	assert_non_null(strstr(line, "error "));
	assert_non_null(strstr(line, "more than 10000 files"));
	assert_int_equal(count_entries(t.wd), FILESTREAM_MAX_FILES);
	tdir_remove(&t);
}

static void test_symlink_leaf_not_followed(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	write_file(at(t.out, "target"), "original");
	assert_int_equal(symlink(at(t.out, "target"), at(t.wd, "victim")), 0);
	/* A dangling link must not create its target either. */
	assert_int_equal(symlink(at(t.out, "newfile"), at(t.wd, "dangling")), 0);

	struct buf b;
	buf_init(&b, 4096);
	add_file(&b, 0600, "victim", 6, "EVIL", 4);
	add_end(&b);
	char line[512];
	stage_buf(&t, &b, line, sizeof line);
	assert_non_null(strstr(line, "error "));
	assert_content(at(t.out, "target"), "original");
	assert_mode(at(t.wd, "victim"), S_IFLNK, 0777);

	buf_init(&b, 4096);
	add_file(&b, 0700, "dangling", 8, "EVIL", 4);
	add_end(&b);
	stage_buf(&t, &b, line, sizeof line);
	assert_non_null(strstr(line, "error "));
	assert_int_equal(access(at(t.out, "newfile"), F_OK), -1);
	assert_int_equal(count_entries(t.out), 1);
	tdir_remove(&t);
}

static void test_symlink_dir_not_followed(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	assert_int_equal(symlink(t.out, at(t.wd, "d")), 0);
	struct buf b;
	buf_init(&b, 4096);
	add_file(&b, 0600, "d/x", 3, "EVIL", 4);
	add_end(&b);
	char line[512];
	stage_buf(&t, &b, line, sizeof line);
	assert_non_null(strstr(line, "error "));
	assert_int_equal(count_entries(t.out), 0);
	/* Deeper: a real dir, then a link inside it. */
	assert_int_equal(mkdir(at(t.wd, "real"), 0700), 0);
	assert_int_equal(symlink(t.out, at(t.wd, "real/link")), 0);
	buf_init(&b, 4096);
	add_file(&b, 0600, "real/link/y", 11, "EVIL", 4);
	add_end(&b);
	stage_buf(&t, &b, line, sizeof line);
	assert_non_null(strstr(line, "error "));
	assert_int_equal(count_entries(t.out), 0);
	tdir_remove(&t);
}

static void test_existing_not_replaced(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	assert_int_equal(mkdir(at(t.wd, "name"), 0700), 0);
	write_file(at(t.wd, "name/inside"), "keep");
	write_file(at(t.wd, "plain"), "old");
	static const char *const targets[] = {"name", "plain", "plain/sub"};
	for (size_t i = 0; i < 3; i++) {
		struct buf b;
		buf_init(&b, 4096);
		add_file(&b, 0600, targets[i], strlen(targets[i]), "NEW", 3);
		add_end(&b);
		char line[512];
		stage_buf(&t, &b, line, sizeof line);
		if (!strstr(line, "error "))
			fail_msg("%s: expected an error, got \"%s\"", targets[i], line);
	}
	assert_mode(at(t.wd, "name"), S_IFDIR, 0700);
	assert_content(at(t.wd, "name/inside"), "keep");
	assert_content(at(t.wd, "plain"), "old");
	tdir_remove(&t);
}

/* Files before the bad one stay; staging stops at the bad one; later ones are not written. */
static void test_error_stops_staging(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct buf b;
	buf_init(&b, 4096);
	add_file(&b, 0600, "first", 5, "1", 1);
	add_file(&b, 0600, "../escape", 9, "2", 1);
	add_file(&b, 0600, "third", 5, "3", 1);
	add_end(&b);
	char line[512];
	stage_buf(&t, &b, line, sizeof line);
	assert_non_null(strstr(line, "error "));
	assert_content(at(t.wd, "first"), "1");
	assert_int_equal(access(at(t.wd, "third"), F_OK), -1);
	assert_int_equal(access(at(t.base, "escape"), F_OK), -1);
	tdir_remove(&t);
}

/* A file whose data is cut short is removed, so the compile script never sees half of it. */
static void test_partial_file_removed(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	static const char stream[] = "F 600 4 1000\npartonly a few bytes";
	expect_stage_error(&t, stream, sizeof stream - 1, "truncated data");
	assert_int_equal(access(at(t.wd, "part"), F_OK), -1);
	/* Same inside a directory created for it: the file goes, the directory may stay. */
	static const char nested[] = "F 700 6 1000\nd/partonly a few bytes";
	expect_stage_error(&t, nested, sizeof nested - 1, "truncated data");
	assert_int_equal(access(at(t.wd, "d/part"), F_OK), -1);
	tdir_remove(&t);
}

static void test_termination_signals(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	const int sigs[] = {SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < 3; i++) {
		struct run r;
		start_init(&r, &t);
		/* Also while still waiting for the stream. */
		if (i == 1) {
			stop_init(&r, sigs[i]);
			continue;
		}
		feed(&t, "E\n", 2);
		char line[64];
		next_line(&r, line, sizeof line);
		assert_string_equal(line, "staged 0");
		stop_init(&r, sigs[i]);
	}
	tdir_remove(&t);
}

static void test_missing_fifo(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	assert_int_equal(unlink(t.fifo), 0);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	struct run r = {.len = 0};
	r.pid = fork();
	assert_true(r.pid >= 0);
	if (r.pid == 0) {
		char *argv[] = {helper, (char *)"init", NULL};
		exec_helper(t.wd, t.io, argv, p[1]);
	}
	track_pid(r.pid);
	close(p[1]);
	r.out = p[0];
	char line[512];
	next_line(&r, line, sizeof line);
	assert_non_null(strstr(line, "error "));
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* ---------------- init: isolation from same-uid processes ---------------- */

#define NOBODY 65534

/* In a child running as NOBODY: 0 if /proc/<pid>/mem (read-write), /proc/<pid>/environ and
 * the /proc/<pid>/fd directory can all be opened, 1 if all are refused, 2 otherwise. All three
 * are guarded by the kernel's ptrace access check only, which a non-dumpable process fails for
 * other processes of its uid. (Reopening /proc/<pid>/fd/1 would also depend on the permissions
 * of the pipe itself, which root created here.) */
static int probe_proc_access(pid_t pid)
{
	pid_t c = fork();
	if (c == 0) {
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(2);
		char p[64];
		int ok = 0;
		snprintf(p, sizeof p, "/proc/%d/mem", (int)pid);
		ok += open(p, O_RDWR | O_CLOEXEC) >= 0;
		snprintf(p, sizeof p, "/proc/%d/environ", (int)pid);
		ok += open(p, O_RDONLY | O_CLOEXEC) >= 0;
		snprintf(p, sizeof p, "/proc/%d/fd", (int)pid);
		ok += open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC) >= 0;
		_exit(ok == 3 ? 0 : ok == 0 ? 1 : 2);
	}
	int st = wait_exit(c, TIMEOUT_MS);
	return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}

/* Student programs share the helper's uid; they must not reach its stdout (the worker's
 * channel) or its memory through /proc. */
static void test_init_not_reachable_by_same_uid(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip(); /* needs to run processes as another uid */
	struct tdir t;
	tdir_make(&t);
	assert_int_equal(chmod(t.base, 0755), 0);
	assert_int_equal(chown(t.wd, NOBODY, NOBODY), 0);
	assert_int_equal(chmod(t.fifo, 0644), 0);

	/* Control: an ordinary process of that uid IS reachable, so a refusal below means
	 * something. */
	pid_t plain = fork();
	assert_true(plain >= 0);
	if (plain == 0) {
		/* exec, like the helper: a uid change alone leaves a process non-dumpable;
		 * execve makes it dumpable again. */
		if (setgroups(0, NULL) < 0 || setgid(NOBODY) < 0 || setuid(NOBODY) < 0)
			_exit(1);
		execl("/bin/sleep", "sleep", "10", (char *)NULL);
		_exit(1);
	}
	track_pid(plain);
	usleep(50000);
	int control = probe_proc_access(plain);
	kill(plain, SIGKILL);
	waitpid(plain, NULL, 0);
	untrack_pid(plain);
	assert_int_equal(control, 0);

	struct run r;
	start_init_as(&r, &t, NOBODY);
	feed(&t, "E\n", 2);
	char line[64];
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "staged 0");
	int helper_access = probe_proc_access(r.pid);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
	assert_int_equal(helper_access, 1);
}

/* ---------------- init as PID 1: reaping ---------------- */

/* Children of pid (from the host's /proc) and how many of them are zombies. */
static void children_of(pid_t pid, int *all, int *zombies)
{
	*all = *zombies = 0;
	DIR *d = opendir("/proc");
	if (!d)
		return;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		char p[300], s[512];
		snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
		int fd = open(p, O_RDONLY);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, s, sizeof s - 1);
		close(fd);
		if (n <= 0)
			continue;
		s[n] = '\0';
		char *rp = strrchr(s, ')'); /* comm may contain spaces and parentheses */
		char state;
		int ppid;
		if (rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && ppid == pid) {
			(*all)++;
			*zombies += state == 'Z';
		}
	}
	closedir(d);
}

enum { REAP_OK = 0, REAP_NO_NS = 77, REAP_SETUP = 10, REAP_NOT_ADOPTED, REAP_ZOMBIES, REAP_EXIT };

/* Has a process of the helper's namespace leave 5 orphans, and checks that the helper (PID 1
 * there) adopts and reaps them. */
static int check_reaping(pid_t init)
{
	/* Our child is pid >= 2 in the namespace; it forks 5 children and exits at once, so they
	 * become orphans, adopted by the namespace's init. */
	pid_t parent = fork();
	if (parent == 0) {
		for (int i = 0; i < 5; i++)
			if (fork() == 0) {
				usleep(300000);
				_exit(0);
			}
		_exit(0);
	}
	if (parent < 0 || waitpid(parent, NULL, 0) != parent)
		return REAP_SETUP;
	int all = 0, zombies = 0;
	for (int i = 0; i < 20 && all < 5; i++) {
		children_of(init, &all, &zombies);
		usleep(10000);
	}
	if (all != 5)
		return REAP_NOT_ADOPTED;
	for (int i = 0; i < 300 && all > 0; i++) {
		usleep(10000);
		children_of(init, &all, &zombies);
	}
	return all == 0 ? REAP_OK : REAP_ZOMBIES;
}

/* Starts the helper as PID 1 of the namespace we are in and has it stage an empty stream. */
static pid_t start_pid1(const struct tdir *t)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return -1;
	pid_t init = fork();
	if (init == 0) {
		char *argv[] = {helper, (char *)"init", NULL};
		exec_helper(t->wd, t->io, argv, p[1]);
	}
	close(p[1]);
	char buf[16] = {0};
	int fd = -1;
	bool ok = init > 0 && read(p[0], buf, 6) == 6 && strncmp(buf, "ready\n", 6) == 0 &&
		  (fd = open(t->fifo, O_WRONLY)) >= 0 && write(fd, "E\n", 2) == 2;
	if (fd >= 0)
		close(fd);
	ok = ok && read(p[0], buf, 9) == 9 && strncmp(buf, "staged 0\n", 9) == 0;
	close(p[0]);
	if (!ok && init > 0) {
		kill(init, SIGKILL);
		waitpid(init, NULL, 0);
	}
	return ok ? init : -1;
}

/* Runs in a child (it unshares its pid namespace, which cannot be undone); returns one of the
 * REAP_* codes as exit status. The helper never outlives it: on every failure it is killed,
 * which also kills whatever is left in its namespace. */
static int reap_scenario(const struct tdir *t)
{
	if (unshare(CLONE_NEWPID) != 0)
		return REAP_NO_NS;
	pid_t init = start_pid1(t);
	if (init < 0)
		return REAP_SETUP;
	int rc = check_reaping(init);
	if (rc == REAP_OK) {
		/* From the parent namespace, like containerd's kill: PID 1 of a namespace only
		 * obeys signals it has a handler for. */
		kill(init, SIGTERM);
		int st = wait_exit(init, TIMEOUT_MS);
		if (st != -1)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? REAP_OK : REAP_EXIT;
		rc = REAP_EXIT;
	}
	kill(init, SIGKILL);
	waitpid(init, NULL, 0);
	return rc;
}

static void test_pid1_reaps_and_exits(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(reap_scenario(&t));
	track_pid(pid);
	int st = wait_exit(pid, 3 * TIMEOUT_MS);
	if (st == -1)
		fail_msg("reaping scenario hung");
	untrack_pid(pid);
	tdir_remove(&t);
	assert_true(WIFEXITED(st));
	switch (WEXITSTATUS(st)) {
	case REAP_OK:
		return;
	case REAP_NO_NS:
		skip(); /* not root: no pid namespace */
		return;
	case REAP_NOT_ADOPTED:
		fail_msg("orphans were not re-parented to the helper");
	case REAP_ZOMBIES:
		fail_msg("zombies left under the helper");
	case REAP_EXIT:
		fail_msg("helper as PID 1 did not exit 0 on SIGTERM");
	default:
		fail_msg("scenario setup failed (%d)", WEXITSTATUS(st));
	}
}

/* ---------------- probe ---------------- */

static void test_probe_reports(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	char out[256];
	assert_int_equal(probe(&t, NULL, out, sizeof out), 0);
	assert_string_equal(out, "vpl_execution=0 vpl_wexecution=0 vpl_webexecution=0\n");

	write_file(at(t.wd, "vpl_execution"), "x");
	write_file(at(t.out, "real"), "x");
	/* A symlink to a regular file is not a regular file; nor is a directory. */
	assert_int_equal(symlink(at(t.out, "real"), at(t.wd, "vpl_wexecution")), 0);
	assert_int_equal(mkdir(at(t.wd, "vpl_webexecution"), 0700), 0);
	assert_int_equal(probe(&t, NULL, out, sizeof out), 0);
	assert_string_equal(out, "vpl_execution=1 vpl_wexecution=0 vpl_webexecution=0\n");

	assert_int_equal(unlink(at(t.wd, "vpl_wexecution")), 0);
	assert_int_equal(rmdir(at(t.wd, "vpl_webexecution")), 0);
	write_file(at(t.wd, "vpl_wexecution"), "x");
	write_file(at(t.wd, "vpl_webexecution"), "x");
	assert_int_equal(unlink(at(t.wd, "vpl_execution")), 0);
	assert_int_equal(probe(&t, NULL, out, sizeof out), 0);
	assert_string_equal(out, "vpl_execution=0 vpl_wexecution=1 vpl_webexecution=1\n");
	tdir_remove(&t);
}

static void test_probe_deletes(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	write_file(at(t.wd, "old.txt"), "x");
	write_file(at(t.wd, "vpl_execution"), "x");
	assert_int_equal(mkdir(at(t.wd, "sub"), 0700), 0);
	write_file(at(t.wd, "sub/f.txt"), "x");
	write_file(at(t.out, "keep"), "keep");
	assert_int_equal(symlink(at(t.out, "keep"), at(t.wd, "lnk")), 0);
	static const char *const names[] = {"old.txt",	     "sub/f.txt",     "lnk", "missing",
					    "nodir/missing", "vpl_execution", NULL};
	char out[256];
	assert_int_equal(probe(&t, names, out, sizeof out), 0);
	assert_string_equal(out, "vpl_execution=0 vpl_wexecution=0 vpl_webexecution=0\n");
	assert_int_equal(access(at(t.wd, "old.txt"), F_OK), -1);
	assert_int_equal(access(at(t.wd, "sub/f.txt"), F_OK), -1);
	assert_mode(at(t.wd, "sub"), S_IFDIR, 0700);
	/* The link went, its target stayed. */
	struct stat st;
	assert_int_equal(lstat(at(t.wd, "lnk"), &st), -1);
	assert_content(at(t.out, "keep"), "keep");
	tdir_remove(&t);
}

static void test_probe_refuses(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	/* A directory is never removed; a symlinked directory is not walked through. */
	assert_int_equal(mkdir(at(t.wd, "adir"), 0700), 0);
	write_file(at(t.out, "victim"), "keep");
	assert_int_equal(symlink(t.out, at(t.wd, "lnkdir")), 0);
	write_file(at(t.wd, "vpl_execution"), "x");
	static const char *const names[] = {"adir", "lnkdir/victim", NULL};
	char out[256];
	assert_int_equal(probe(&t, names, out, sizeof out), 1);
	assert_string_equal(out, "vpl_execution=1 vpl_wexecution=0 vpl_webexecution=0\n");
	assert_mode(at(t.wd, "adir"), S_IFDIR, 0700);
	assert_content(at(t.out, "victim"), "keep");

	/* Invalid names: nothing deleted, no line, status 2. */
	write_file(at(t.base, "x"), "keep");
	static const char *const bad[] = {"vpl_execution", "../x", NULL};
	assert_int_equal(probe(&t, bad, out, sizeof out), 2);
	assert_string_equal(out, "");
	assert_content(at(t.base, "x"), "keep");
	assert_content(at(t.wd, "vpl_execution"), "x");
	static const char *const abs[] = {"/etc/hostname", NULL};
	assert_int_equal(probe(&t, abs, out, sizeof out), 2);
	tdir_remove(&t);
}

static void test_usage(void **state)
{
	(void)state;
	const char *const argvs[][3] = {{"init", "extra", NULL}, {"bogus", NULL, NULL}};
	for (size_t i = 0; i < 3; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, STDERR_FILENO);
			char *argv[4] = {helper, NULL, NULL, NULL};
			if (i < 2) {
				argv[1] = (char *)argvs[i][0];
				argv[2] = (char *)argvs[i][1];
			}
			execv(helper, argv);
			_exit(127);
		}
		track_pid(pid);
		int st = wait_exit(pid, TIMEOUT_MS);
		if (st == -1)
			fail_msg("helper did not exit");
		untrack_pid(pid);
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 2);
	}
}

/* ---------------- main ---------------- */

static int find_helper(void)
{
	const char *env = getenv("VPLHELPER_BIN");
	if (env && *env) {
		snprintf(helper, sizeof helper, "%s", env);
	} else {
		/* $(BUILD)/tests/test_sandbox_vplhelper -> $(BUILD)/vplhelper */
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n <= 0)
			return -1;
		self[n] = '\0';
		snprintf(helper, sizeof helper, "%s/../vplhelper", dirname(self));
	}
	return access(helper, X_OK);
}

int main(void)
{
	if (find_helper() != 0) {
		fprintf(stderr, "vplhelper not found at %s (set VPLHELPER_BIN)\n", helper);
		return 1;
	}
	/* The helper closes the FIFO on errors: our writes then fail with EPIPE, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_teardown(test_stage_files, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_stage_empty_stream, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_hostile_names, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_malformed_streams, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_too_many_files, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_symlink_leaf_not_followed, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_symlink_dir_not_followed, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_existing_not_replaced, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_error_stops_staging, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_partial_file_removed, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_termination_signals, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_missing_fifo, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_init_not_reachable_by_same_uid, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_pid1_reaps_and_exits, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_probe_reports, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_probe_deletes, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_probe_refuses, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_usage, cleanup_leftovers),
	};
	return cmocka_run_group_tests_name("vplhelper", tests, NULL, NULL);
}
