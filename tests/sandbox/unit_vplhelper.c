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
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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

/* Reads the next line of the helper's stdout (without '\n') into line; fails after ms. */
static void next_line_ms(struct run *r, char *line, size_t sz, int ms)
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
		if (poll(&p, 1, ms) != 1)
			fail_msg("no line from the helper within %d ms", ms);
		assert_true(r->len < sizeof r->acc);
		ssize_t k = read(r->out, r->acc + r->len, sizeof r->acc - r->len);
		if (k <= 0)
			fail_msg("helper stdout closed (got %zu bytes: %.*s)", r->len, (int)r->len,
				 r->acc);
		r->len += (size_t)k;
	}
}

static void next_line(struct run *r, char *line, size_t sz)
{
	next_line_ms(r, line, sz, TIMEOUT_MS);
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

/* ---------------- the command loop: T (terminal) and C (connect) ---------------- */

/* Starts a helper past staging (with io/ctl made first: it opens it before "ready") and
 * opens the control FIFO for writing, as the worker does. */
static int start_loop(struct run *r, const struct tdir *t)
{
	assert_int_equal(mkfifo(at(t->io, "ctl"), 0600), 0);
	start_init(r, t);
	feed(t, "E\n", 2);
	char line[64];
	next_line(r, line, sizeof line);
	assert_string_equal(line, "staged 0");
	int ctl = open(at(t->io, "ctl"), O_WRONLY | O_CLOEXEC);
	assert_true(ctl >= 0);
	return ctl;
}

static void send_cmd(int ctl, const char *cmd)
{
	size_t n = strlen(cmd);
	assert_int_equal(write(ctl, cmd, n), (ssize_t)n);
}

/* A phase's two FIFOs, seen from the worker. */
struct chan {
	char in[128], out[128];
	int in_fd, out_fd;
};

/* Before the command: both FIFOs made, <phase>.out held open for reading (non-blocking). */
static void chan_make(struct chan *c, const struct tdir *t, const char *phase)
{
	snprintf(c->in, sizeof c->in, "%s/%s.in", t->io, phase);
	snprintf(c->out, sizeof c->out, "%s/%s.out", t->io, phase);
	assert_int_equal(mkfifo(c->in, 0600), 0);
	assert_int_equal(mkfifo(c->out, 0600), 0);
	c->out_fd = open(c->out, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(c->out_fd >= 0);
	c->in_fd = -1;
}

/* Waits for "started <phase> <pid>", then opens <phase>.in for writing (the relay holds its
 * read end by then, so O_NONBLOCK cannot fail with ENXIO) and removes both names. */
static pid_t chan_started(struct chan *c, struct run *r, const char *phase)
{
	char line[128], want[64];
	next_line(r, line, sizeof line);
	int k = snprintf(want, sizeof want, "started %s ", phase);
	if (strncmp(line, want, (size_t)k) != 0)
		fail_msg("expected \"%s<pid>\", got \"%s\"", want, line);
	pid_t pid = (pid_t)atoi(line + k);
	assert_true(pid > 0);
	c->in_fd = open(c->in, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(c->in_fd >= 0);
	assert_int_equal(unlink(c->in), 0);
	assert_int_equal(unlink(c->out), 0);
	return pid;
}

static void chan_write(struct chan *c, const char *s)
{
	size_t n = strlen(s);
	assert_int_equal(write(c->in_fd, s, n), (ssize_t)n);
}

/* Reads <phase>.out into b[*len..cap) until EOF (returns true) or, when needle is set, until
 * it shows up (returns false); fails after ms. b stays NUL-terminated. */
static bool chan_read(struct chan *c, char *b, size_t cap, size_t *len, const char *needle, int ms)
{
	for (int waited = 0;;) {
		b[*len] = '\0';
		if (needle && memmem(b, *len, needle, strlen(needle)))
			return false;
		struct pollfd p = {.fd = c->out_fd, .events = POLLIN};
		int k = poll(&p, 1, 50);
		if (k == 0 && (waited += 50) >= ms)
			fail_msg("output: nothing more within %d ms (have %zu bytes: %.200s)", ms,
				 *len, b);
		if (k <= 0)
			continue;
		assert_true(*len < cap - 1);
		ssize_t n = read(c->out_fd, b + *len, cap - 1 - *len);
		if (n == 0)
			return true;
		if (n < 0 && errno == EAGAIN)
			continue;
		assert_true(n > 0);
		*len += (size_t)n;
	}
}

static void chan_close(struct chan *c)
{
	if (c->in_fd >= 0)
		close(c->in_fd);
	close(c->out_fd);
	c->in_fd = c->out_fd = -1;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parent pid and resident set (kB) of pid, from the host's /proc. */
static pid_t parent_of(pid_t pid)
{
	char p[64], s[512];
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, s, sizeof s - 1);
	close(fd);
	assert_true(n > 0);
	s[n] = '\0';
	char state;
	int ppid = 0;
	char *rp = strrchr(s, ')');
	assert_non_null(rp);
	assert_int_equal(sscanf(rp + 1, " %c %d", &state, &ppid), 2);
	return (pid_t)ppid;
}

static long rss_kb(pid_t pid)
{
	char p[64], s[4096];
	snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	ssize_t n = read(fd, s, sizeof s - 1);
	close(fd);
	assert_true(n > 0);
	s[n] = '\0';
	char *v = strstr(s, "VmRSS:");
	assert_non_null(v);
	return atol(v + 6);
}

static bool pty_usable(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0)
		return false;
	close(m);
	return true;
}

/* Limits for T: generous, RLIMIT_NPROC counts every process of our uid on the host. */
#define T_LIMITS "10 100000000 100000"

static void test_terminal_echo_and_tty(void **state)
{
	(void)state;
	if (!pty_usable())
		skip();
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	struct chan c;
	chan_make(&c, &t, "run");
	send_cmd(ctl, "T run " T_LIMITS " 3\n/bin/sh\n-c\nread x; echo got:$x; tty\n");
	chan_started(&c, &r, "run");
	chan_write(&c, "hello\r"); /* Enter, as xterm.js sends it */
	static char out[4096];
	size_t len = 0;
	assert_true(chan_read(&c, out, sizeof out, &len, NULL, TIMEOUT_MS));
	char line[128];
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit run 0");
	/* The terminal echoed the line and mapped CR to NL on input, NL to CRNL on output. */
	if (!strstr(out, "hello\r\ngot:hello\r\n/dev/pts/"))
		fail_msg("unexpected terminal output: %s", out);
	chan_close(&c);
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* Invalid and cut UTF-8 goes through untouched; a flood waits for a reader that does not
 * read (the relay's memory stays small) and arrives whole. */
static void test_terminal_backpressure_binary(void **state)
{
	(void)state;
	if (!pty_usable())
		skip();
	enum { FLOOD = 4000000 };
	static const char head[] = "\xc3\xa9\xe2\x82", tail[] = "\xff\xc0"
								"END";
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	struct chan c;
	chan_make(&c, &t, "run");
	send_cmd(ctl, "T run " T_LIMITS " 3\n/bin/sh\n-c\n"
		      "printf '\\303\\251\\342\\202'; head -c 4000000 /dev/zero | tr '\\000' x; "
		      "printf '\\377\\300END'\n");
	pid_t prog = chan_started(&c, &r, "run");
	pid_t relay = parent_of(prog);
	/* Nobody reads for a while: the program must be held, not the relay fattened. */
	usleep(500000);
	struct pollfd p = {.fd = r.out, .events = POLLIN};
	assert_int_equal(poll(&p, 1, 0), 0); /* no "exit" yet */
	long rss = rss_kb(relay);
	if (rss > 3000)
		fail_msg("relay holds %ld kB while its reader waits", rss);
	/* A slow reader first, then a fast one. */
	size_t cap = FLOOD + 1024, len = 0;
	char *out = malloc(cap);
	assert_non_null(out);
	for (int i = 0; i < 200; i++) {
		ssize_t n = read(c.out_fd, out + len, 4096);
		if (n > 0)
			len += (size_t)n;
		usleep(1000);
	}
	assert_true(chan_read(&c, out, cap, &len, NULL, 3 * TIMEOUT_MS));
	char line[128];
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit run 0");
	size_t hl = sizeof head - 1, tl = sizeof tail - 1;
	assert_int_equal(len, hl + FLOOD + tl);
	assert_memory_equal(out, head, hl);
	for (size_t i = hl; i < hl + FLOOD; i++)
		if (out[i] != 'x')
			fail_msg("byte %zu is 0x%02x", i, (unsigned char)out[i]);
	assert_memory_equal(out + hl + FLOOD, tail, tl);
	free(out);
	chan_close(&c);
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* The browser went away (input EOF): SIGHUP to the program's group, SIGKILL a second later
 * for what ignores it. */
static void test_terminal_input_eof_hangs_up(void **state)
{
	(void)state;
	if (!pty_usable())
		skip();
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	char line[128];
	static char out[4096];
	size_t len = 0;

	struct chan c;
	chan_make(&c, &t, "run");
	send_cmd(ctl, "T run " T_LIMITS " 2\n/bin/sleep\n30\n");
	chan_started(&c, &r, "run");
	int64_t t0 = mono_ms();
	close(c.in_fd);
	c.in_fd = -1;
	assert_true(chan_read(&c, out, sizeof out, &len, NULL, TIMEOUT_MS));
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit run 129"); /* SIGHUP */
	assert_true(mono_ms() - t0 < 1000);
	chan_close(&c);

	chan_make(&c, &t, "deaf");
	send_cmd(ctl, "T deaf " T_LIMITS " 3\n/bin/sh\n-c\n"
		      "trap '' HUP; echo ready; while :; do sleep 1; done\n");
	chan_started(&c, &r, "deaf");
	len = 0;
	assert_false(chan_read(&c, out, sizeof out, &len, "ready", TIMEOUT_MS));
	t0 = mono_ms();
	close(c.in_fd);
	c.in_fd = -1;
	assert_true(chan_read(&c, out, sizeof out, &len, NULL, TIMEOUT_MS));
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit deaf 137"); /* SIGKILL */
	int64_t took = mono_ms() - t0;
	if (took < 900 || took > 3000)
		fail_msg("killed after %lld ms", (long long)took);
	chan_close(&c);
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* The program (same uid) kills its relay: the output ends and the phase still exits. (It
 * waits a moment: killed before it says "started", the relay's phase only says "exit".) */
static void test_terminal_relay_killed(void **state)
{
	(void)state;
	if (!pty_usable())
		skip();
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	struct chan c;
	chan_make(&c, &t, "run");
	/* The program kills its relay only once the test holds the input FIFO: a fixed delay
	 * raced with a loaded machine (the relay was gone before the test opened it). */
	send_cmd(ctl, "T run " T_LIMITS " 3\n/bin/sh\n-c\nread go; kill -9 $PPID; sleep 30\n");
	pid_t prog = chan_started(&c, &r, "run");
	chan_write(&c, "go\n");
	static char out[4096];
	size_t len = 0;
	assert_true(chan_read(&c, out, sizeof out, &len, NULL, TIMEOUT_MS));
	char line[128];
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit run 137");
	kill(prog, SIGKILL); /* on the host nobody else would */
	/* The name is free again, and the helper still serves. */
	chan_close(&c);
	chan_make(&c, &t, "run");
	/* It waits for input: a program that exits at once can take its relay, and the relay's
	 * read end, away before the test opens the input FIFO (ENXIO, seen on a loaded CI). */
	send_cmd(ctl, "T run " T_LIMITS " 3\n/bin/sh\n-c\nread x\n");
	chan_started(&c, &r, "run");
	chan_write(&c, "\n");
	len = 0;
	assert_true(chan_read(&c, out, sizeof out, &len, NULL, TIMEOUT_MS));
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit run 0");
	chan_close(&c);
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

static void test_relay_bad_commands(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	char line[128];
	static const char *const bad[] = {
	    "C web 0\n",
	    "C web 65536\n",
	    "C Web 80\n",
	    "C web 80 x\n",
	    "C ../x 80\n",
	    "C web\n",
	    "T run 1 1 1 0\n",
	    "T run 1 1 1\n",
	    "T run 0 1 1 1\nx\n",
	    "Tx run 1 1 1 1\n",
	    /* the address: 127.0.0.0/8, a plain dotted quad, nothing after it */
	    "C web 80 10.0.0.1\n",
	    "C web 80 127.1\n",
	    "C web 80 127.0.0.01\n",
	    "C web 80 127.0.0.256\n",
	    "C web 80 127.0.0.1 x\n",
	    "C web 80 +127.0.0.1\n",
	    "C web 80 127.0.0.1.\n",
	    "A x\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		send_cmd(ctl, bad[i]);
		next_line(&r, line, sizeof line);
		if (strcmp(line, "error bad command") != 0)
			fail_msg("%s -> %s", bad[i], line);
	}
	/* Missing FIFOs: said, then the phase exits 126 like a program that cannot start. */
	send_cmd(ctl, "C web 80\n");
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "error open web.in: No such file or directory");
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit web 126");
	/* One phase of a name at a time. */
	if (pty_usable()) {
		struct chan c;
		chan_make(&c, &t, "run");
		send_cmd(ctl, "T run " T_LIMITS " 2\n/bin/sleep\n30\n");
		chan_started(&c, &r, "run");
		send_cmd(ctl, "T run " T_LIMITS " 2\n/bin/sleep\n30\n");
		next_line(&r, line, sizeof line);
		assert_string_equal(line, "error phase run is still running");
		close(c.in_fd);
		c.in_fd = -1;
		next_line(&r, line, sizeof line);
		assert_string_equal(line, "exit run 129");
		chan_close(&c);
	}
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* A TCP socket on 127.0.0.1, bound to a free port (not listening yet). */
static int tcp_bound(int *port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t l = sizeof a;
	assert_int_equal(getsockname(s, (struct sockaddr *)&a, &l), 0);
	*port = ntohs(a.sin_port);
	return s;
}

static int tcp_accept(int lsn)
{
	struct pollfd p = {.fd = lsn, .events = POLLIN};
	if (poll(&p, 1, TIMEOUT_MS) != 1)
		fail_msg("the relay did not connect");
	int s = accept4(lsn, NULL, NULL, SOCK_CLOEXEC);
	assert_true(s >= 0);
	return s;
}

/* Reads exactly n bytes (or EOF: returns how many came). */
static size_t tcp_read(int s, char *b, size_t n)
{
	size_t got = 0;
	while (got < n) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		if (poll(&p, 1, TIMEOUT_MS) != 1)
			fail_msg("socket: nothing within %d ms", TIMEOUT_MS);
		ssize_t k = read(s, b + got, n - got);
		if (k == 0)
			break;
		assert_true(k > 0);
		got += (size_t)k;
	}
	return got;
}

/* Bytes both ways; the worker's input ends -> the peer sees EOF, answers, closes -> the
 * output ends -> exit 0. */
static void test_connect_relay_both_ways(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	int port;
	int lsn = tcp_bound(&port);
	assert_int_equal(listen(lsn, 4), 0);
	struct chan c;
	chan_make(&c, &t, "vnc");
	char cmd[64];
	snprintf(cmd, sizeof cmd, "C vnc %d\n", port);
	send_cmd(ctl, cmd);
	int s = tcp_accept(lsn);
	pid_t relay = chan_started(&c, &r, "vnc");
	assert_int_equal(parent_of(relay), r.pid);
	chan_write(&c, "RFB ping\xff\x00"); /* binary: strlen stops before the NUL */
	char b[64];
	assert_int_equal(tcp_read(s, b, 9), 9);
	assert_memory_equal(b, "RFB ping\xff", 9);
	assert_int_equal(write(s, "pong\x00\x01", 6), 6);
	static char out[4096];
	size_t len = 0;
	assert_false(chan_read(&c, out, sizeof out, &len, "pong", TIMEOUT_MS));
	/* The browser leaves: half-close towards the server, which still gets to answer. */
	close(c.in_fd);
	c.in_fd = -1;
	assert_int_equal(tcp_read(s, b, sizeof b), 0);
	assert_int_equal(write(s, "bye", 3), 3);
	close(s);
	assert_true(chan_read(&c, out, sizeof out, &len, NULL, TIMEOUT_MS));
	assert_int_equal(len, 9);
	assert_memory_equal(out,
			    "pong\x00\x01"
			    "bye",
			    9);
	char line[128];
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit vnc 0");
	chan_close(&c);
	close(lsn);
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* The server listens only after a while (the relay retries), sends, and closes first. */
static void test_connect_relay_late_server_closes(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	int port;
	int lsn = tcp_bound(&port);
	struct chan c;
	chan_make(&c, &t, "vnc");
	char cmd[64];
	snprintf(cmd, sizeof cmd, "C vnc %d\n", port);
	send_cmd(ctl, cmd);
	usleep(400000);
	assert_int_equal(listen(lsn, 4), 0);
	int s = tcp_accept(lsn);
	chan_started(&c, &r, "vnc");
	assert_int_equal(write(s, "RFB 003.008\n", 12), 12);
	close(s);
	static char out[4096];
	size_t len = 0;
	assert_true(chan_read(&c, out, sizeof out, &len, NULL, TIMEOUT_MS));
	assert_string_equal(out, "RFB 003.008\n");
	char line[128];
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit vnc 0");
	chan_close(&c);
	close(lsn);
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* Nothing ever listens: the relay gives up after its 10 s of retries. */
static void test_connect_relay_refused(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	int port;
	int lsn = tcp_bound(&port); /* bound, never listening: refused, and the port stays ours */
	struct chan c;
	chan_make(&c, &t, "vnc");
	char cmd[64];
	snprintf(cmd, sizeof cmd, "C vnc %d\n", port);
	int64_t t0 = mono_ms();
	send_cmd(ctl, cmd);
	char line[128];
	next_line_ms(&r, line, sizeof line, 15000);
	int64_t took = mono_ms() - t0;
	assert_string_equal(line, "error connect vnc: Connection refused");
	if (took < 9500 || took > 12000)
		fail_msg("gave up after %lld ms", (long long)took);
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit vnc 1");
	chan_close(&c);
	close(lsn);
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* ---------------- probe ---------------- */

/* "C <phase> <port> <ip>": the relay connects to that loopback address. */
static void test_connect_relay_other_loopback(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	int s0 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(s0 >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(0x7f000102); /* 127.0.1.2 */
	assert_int_equal(bind(s0, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t l = sizeof a;
	assert_int_equal(getsockname(s0, (struct sockaddr *)&a, &l), 0);
	assert_int_equal(listen(s0, 4), 0);
	struct chan c;
	chan_make(&c, &t, "weba");
	char cmd[64];
	snprintf(cmd, sizeof cmd, "C weba %d 127.0.1.2\n", ntohs(a.sin_port));
	send_cmd(ctl, cmd);
	int s = tcp_accept(s0);
	chan_started(&c, &r, "weba");
	chan_write(&c, "GET / HTTP/1.0\r\n\r\n");
	char b[64];
	assert_int_equal(tcp_read(s, b, 18), 18);
	assert_memory_equal(b, "GET / HTTP/1.0\r\n\r\n", 18);
	assert_int_equal(write(s, "HTTP/1.0 200 OK\r\n\r\nhi", 21), 21);
	close(s);
	static char out[256];
	size_t len = 0;
	assert_true(chan_read(&c, out, sizeof out, &len, NULL, TIMEOUT_MS));
	assert_int_equal(len, 21);
	assert_memory_equal(out, "HTTP/1.0 200 OK\r\n\r\nhi", 21);
	char line[128];
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "exit weba 0");
	chan_close(&c);
	close(s0);
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

/* "A": .vpl_localserveraddress read inside, strictly. */
static void test_local_server_address(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	char line[128];
	static const struct {
		const char *content; /* NULL: no file */
		const char *reply;
	} cases[] = {
	    {NULL, "addr none"},
	    {"127.0.0.1:8000", "addr 127.0.0.1:8000"},
	    {"127.1.2.3:65535\n", "addr 127.1.2.3:65535"},
	    {"127.0.0.1:8000 \r\n", "addr 127.0.0.1:8000"},
	    {"10.0.0.1:80\n", "addr none"},
	    {"127.0.0.1:0\n", "addr none"},
	    {"127.0.0.1:65536\n", "addr none"},
	    {"127.0.0.1:+80\n", "addr none"},
	    {"127.0.0.1: 80\n", "addr none"},
	    {"127.0.0.1\n", "addr none"},
	    {"127.0.0.01:80\n", "addr none"},
	    {"127.0.0.1:80x\n", "addr none"},
	    {"localhost:80\n", "addr none"},
	    {"127.0.0.1:80\n                                                       x", "addr none"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		unlink(at(t.wd, ".vpl_localserveraddress"));
		if (cases[i].content)
			write_file(at(t.wd, ".vpl_localserveraddress"), cases[i].content);
		send_cmd(ctl, "A\n");
		next_line(&r, line, sizeof line);
		if (strcmp(line, cases[i].reply) != 0)
			fail_msg("%s -> %s", cases[i].content ? cases[i].content : "(none)", line);
	}
	/* A link (even to a good file) and a FIFO are not read. */
	unlink(at(t.wd, ".vpl_localserveraddress"));
	write_file(at(t.out, "real"), "127.0.0.1:80\n");
	assert_int_equal(symlink(at(t.out, "real"), at(t.wd, ".vpl_localserveraddress")), 0);
	send_cmd(ctl, "A\n");
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "addr none");
	unlink(at(t.wd, ".vpl_localserveraddress"));
	assert_int_equal(mkfifo(at(t.wd, ".vpl_localserveraddress"), 0600), 0);
	send_cmd(ctl, "A\n");
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "addr none");
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

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

/* ---------------- the command loop: U (update of a running task) ---------------- */

/* One "U <name>" as the worker does it: the FIFO made and held O_RDWR first, the command,
 * "updating <name>", the name removed, the stream written, our end closed. Returns the
 * helper's last line in line. stream NULL: the FIFO is not made (the open must fail). */
static void update_via(struct run *r, const struct tdir *t, int ctl, const char *name,
		       const void *stream, size_t len, char *line, size_t sz)
{
	char path[160], cmd[64], want[64];
	snprintf(path, sizeof path, "%s/%s", t->io, name);
	int fd = -1;
	if (stream) {
		assert_int_equal(mkfifo(path, 0600), 0);
		fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		assert_true(fd >= 0);
	}
	snprintf(cmd, sizeof cmd, "U %s\n", name);
	send_cmd(ctl, cmd);
	next_line(r, line, sz);
	snprintf(want, sizeof want, "updating %s", name);
	if (!stream || strcmp(line, want) != 0)
		return;
	assert_int_equal(unlink(path), 0);
	const char *p = stream;
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = {.fd = fd, .events = POLLOUT};
			poll(&pf, 1, 100);
			/* the helper may have stopped reading (an error): its line says so */
			struct pollfd pr = {.fd = r->out, .events = POLLIN};
			if (memchr(r->acc, '\n', r->len) || poll(&pr, 1, 0) == 1)
				break;
			continue;
		}
		if (w <= 0)
			break;
		p += w;
		len -= (size_t)w;
	}
	close(fd);
	next_line(r, line, sz);
}

static void update_buf(struct run *r, const struct tdir *t, int ctl, const char *name,
		       struct buf *b, char *line, size_t sz)
{
	update_via(r, t, ctl, name, b->data, b->len, line, sz);
	buf_free(b);
}

static void test_update_replaces_and_creates(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	char line[256];
	write_file(at(t.wd, "a.txt"), "old content, longer than the new one");
	assert_int_equal(chmod(at(t.wd, "a.txt"), 0640), 0);
	size_t big_len = 300000; /* more than the helper's buffer and the pipe's */
	char *big = malloc(big_len);
	assert_non_null(big);
	for (size_t i = 0; i < big_len; i++)
		big[i] = (char)(i * 13 % 251);
	struct buf b;
	buf_init(&b, 1 << 20);
	add_file(&b, 0600, "a.txt", 5, "new", 3);
	add_file(&b, 0700, "sub/dir/run.sh", 14, "#!/bin/sh\n", 10);
	add_file(&b, 0600, "big.bin", 7, big, big_len);
	add_end(&b);
	update_buf(&r, &t, ctl, "updaa", &b, line, sizeof line);
	assert_string_equal(line, "updated updaa 3");
	assert_content(at(t.wd, "a.txt"), "new");
	assert_mode(at(t.wd, "a.txt"), S_IFREG, 0640); /* an existing file keeps its mode */
	assert_content(at(t.wd, "sub/dir/run.sh"), "#!/bin/sh\n");
	assert_mode(at(t.wd, "sub/dir/run.sh"), S_IFREG, 0700);
	assert_mode(at(t.wd, "sub"), S_IFDIR, 0700);
	size_t got;
	char *data = read_file(at(t.wd, "big.bin"), &got);
	assert_non_null(data);
	assert_int_equal(got, big_len);
	assert_memory_equal(data, big, big_len);
	free(data);
	free(big);
	/* again: the same names are replaced once more; an empty update is fine */
	buf_init(&b, 1 << 20);
	add_file(&b, 0600, "big.bin", 7, "", 0);
	add_end(&b);
	update_buf(&r, &t, ctl, "updab", &b, line, sizeof line);
	assert_string_equal(line, "updated updab 1");
	assert_content(at(t.wd, "big.bin"), "");
	update_via(&r, &t, ctl, "updac", "E\n", 2, line, sizeof line);
	assert_string_equal(line, "updated updac 0");
	/* the FIFO names are the worker's to remove: nothing left behind by the helper */
	assert_int_equal(count_entries(t.io), 2); /* files, ctl */
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

static void test_update_never_follows_links(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	char line[256];
	write_file(at(t.out, "target"), "outside");
	assert_int_equal(symlink(at(t.out, "target"), at(t.wd, "link")), 0);
	assert_int_equal(symlink(t.out, at(t.wd, "dlink")), 0);
	assert_int_equal(symlink("nowhere", at(t.wd, "dangling")), 0);
	assert_int_equal(mkdir(at(t.wd, "dir"), 0700), 0);
	assert_int_equal(symlink(t.out, at(t.wd, "dir/inner")), 0);
	assert_int_equal(mkfifo(at(t.wd, "fifo"), 0600), 0);
	static const struct {
		const char *name, *why;
	} cases[] = {
	    {"link", "a symlink (not followed)"},
	    {"dangling", "a symlink (not followed)"},
	    {"dlink/target", "directory 'dlink'"},
	    {"dlink/new", "directory 'dlink'"},
	    {"dir/inner/target", "directory 'dir/inner'"},
	    {"dir", "Is a directory"},
	    {"fifo", "fifo"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char fifo[16];
		snprintf(fifo, sizeof fifo, "upd%c", (char)('a' + i));
		struct buf b;
		buf_init(&b, 1 << 16);
		add_file(&b, 0600, "first.txt", 9, "1", 1);
		add_file(&b, 0600, cases[i].name, strlen(cases[i].name), "PWNED", 5);
		add_file(&b, 0600, "after.txt", 9, "2", 1);
		add_end(&b);
		update_buf(&r, &t, ctl, fifo, &b, line, sizeof line);
		char want[64];
		snprintf(want, sizeof want, "error update %s: ", fifo);
		if (strncmp(line, want, strlen(want)) != 0 ||
		    (strcmp(cases[i].why, "fifo") != 0 && !strstr(line, cases[i].why)))
			fail_msg("%s -> %s", cases[i].name, line);
		/* the files before the refused one are written; the update stops there */
		assert_content(at(t.wd, "first.txt"), "1");
		assert_int_equal(access(at(t.wd, "after.txt"), F_OK), -1);
	}
	assert_content(at(t.out, "target"), "outside");
	assert_int_equal(count_entries(t.out), 1);
	assert_mode(at(t.wd, "link"), S_IFLNK, 0777);
	assert_mode(at(t.wd, "fifo"), S_IFIFO, 0600);
	assert_mode(at(t.wd, "dir"), S_IFDIR, 0700);
	/* the loop still serves */
	send_cmd(ctl, "A\n");
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "addr none");
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
}

static void test_update_bad_commands_and_streams(void **state)
{
	(void)state;
	struct tdir t;
	tdir_make(&t);
	struct run r;
	int ctl = start_loop(&r, &t);
	char line[256];
	static const char *const bad[] = {"U\n",
					  "U ../x\n",
					  "U Upd\n",
					  "U upd x\n",
					  "U up1\n",
					  "Ux upd\n",
					  "U abcdefghijklmnopq\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		send_cmd(ctl, bad[i]);
		next_line(&r, line, sizeof line);
		if (strcmp(line, "error bad command") != 0)
			fail_msg("%s -> %s", bad[i], line);
	}
	/* no such FIFO; not a FIFO; a symlink to a FIFO */
	update_via(&r, &t, ctl, "missing", NULL, 0, line, sizeof line);
	assert_string_equal(line, "error update missing: open: No such file or directory");
	write_file(at(t.io, "plain"), "E\n");
	send_cmd(ctl, "U plain\n");
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "error update plain: open: Invalid argument");
	assert_int_equal(mkfifo(at(t.out, "realfifo"), 0600), 0);
	assert_int_equal(symlink(at(t.out, "realfifo"), at(t.io, "linked")), 0);
	send_cmd(ctl, "U linked\n");
	next_line(&r, line, sizeof line);
	assert_string_equal(line, "error update linked: open: Too many levels of symbolic links");
	/* malformed stream; a bad name in it; the worker's end closed before "E" */
	update_via(&r, &t, ctl, "upda", "X 600 1 1\nab", 12, line, sizeof line);
	assert_true(strncmp(line, "error update upda: ", 19) == 0);
	struct buf b;
	buf_init(&b, 1 << 16);
	add_file(&b, 0600, "../x", 4, "y", 1);
	add_end(&b);
	update_buf(&r, &t, ctl, "updb", &b, line, sizeof line);
	assert_true(strncmp(line, "error update updb: ", 19) == 0);
	assert_int_equal(access(at(t.base, "x"), F_OK), -1);
	buf_init(&b, 1 << 16);
	add_file(&b, 0600, "half.txt", 8, "abc", 3);
	update_buf(&r, &t, ctl, "updc", &b, line, sizeof line);
	assert_string_equal(line, "error update updc: unexpected end of the file stream");
	/* the loop still serves */
	update_via(&r, &t, ctl, "updd", "E\n", 2, line, sizeof line);
	assert_string_equal(line, "updated updd 0");
	close(ctl);
	stop_init(&r, SIGTERM);
	tdir_remove(&t);
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
	    cmocka_unit_test_teardown(test_terminal_echo_and_tty, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_terminal_backpressure_binary, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_terminal_input_eof_hangs_up, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_terminal_relay_killed, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_relay_bad_commands, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_connect_relay_both_ways, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_connect_relay_late_server_closes, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_connect_relay_refused, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_connect_relay_other_loopback, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_local_server_address, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_update_replaces_and_creates, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_update_never_follows_links, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_update_bad_commands_and_streams, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_probe_reports, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_probe_deletes, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_probe_refuses, cleanup_leftovers),
	    cmocka_unit_test_teardown(test_usage, cleanup_leftovers),
	};
	return cmocka_run_group_tests_name("vplhelper", tests, NULL, NULL);
}
