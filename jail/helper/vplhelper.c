/*
 * vplhelper.c - the static helper inside every task container. Built with -static(-pie) and
 * linked only with libc, jail/sandbox/filestream.c and common/err.c, so it needs nothing from
 * the teacher's image. The worker bind-mounts it read-only at /.vplcell/vplhelper.
 *
 *   vplhelper init
 *     The container's PID 1, running as the prisoner - the container's own uid = gid, which
 *     no other live container on the host has (jail/sandbox/uidpool.h) - with no capabilities. It
 *       0. makes itself non-dumpable, so student processes (same uid) cannot open its
 *          /proc/1/fd entries or /proc/1/mem;
 *       1. reaps every child forever (orphans of student programs re-parent to it) and exits 0
 *          on SIGTERM, SIGINT or SIGHUP (PID 1 of a pid namespace ignores signals that have no
 *          handler, so handlers are installed explicitly);
 *       2. makes the current directory (the work dir) mode 0700, opens <io>/files for reading,
 *          where <io> is /.vplcell/io, or $VPLHELPER_IO_DIR when set (tests only: the worker
 *          never sets it), and prints "ready\n" on stdout; the worker opens its write end only
 *          after that line, so neither open blocks. If this step fails, "error <why>\n" comes
 *          instead of "ready\n";
 *       3. reads the file stream (filestream.h) and writes each file under the current
 *          directory (the prisoner's tmpfs work dir), never following a symlink and never
 *          replacing anything that exists;
 *       4. prints "staged <n>\n", or "error <why>\n" at the first problem (staging stops
 *          there), closes the FIFO and stays as init until a termination signal, serving the
 *          worker's commands meanwhile (runner.h, which then does the reaping). One of them,
 *          "U <fifo>", writes an update of the files (same stream format) into the running
 *          task: there existing regular files ARE replaced (never a symlink, directory or
 *          other type, and no link is followed in any component).
 *
 *   vplhelper probe [name ...]
 *     Run by the worker through exec, in the work dir. Deletes each name (validated like a
 *     staged name; walked without following symlinks; a missing name is fine; a directory is
 *     never removed), then prints exactly one line
 *       "vpl_execution=<0|1> vpl_wexecution=<0|1> vpl_webexecution=<0|1>\n"
 *     where 1 means a regular file (not a symlink) of that name exists in the current directory.
 *     Exit status: 0; 1 if some name could not be deleted (reasons on stderr, the line is still
 *     printed); 2 on a usage error or an invalid name (nothing deleted, no line).
 *
 * Why so careful with paths: the work dir belongs to the prisoner, and anything in it may be
 * hostile by the time we touch it. Every path is walked one component at a time with
 * openat(O_NOFOLLOW), files are created with O_CREAT|O_EXCL, and nothing is ever resolved from
 * "/" — so a planted symlink or directory makes the operation fail instead of redirecting it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "err.h"
#include "filestream.h"
#include "runner.h"

#define DEFAULT_IO_DIR "/.vplcell/io"
#define FILES_FIFO     "files"
#define IO_CHUNK       65536

/* ---------------- output ---------------- */

/* Writes all of s to fd, retrying short writes and EINTR. Output failures are ignored: the
 * worker reading our stdout is gone and there is nobody left to tell. */
static void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

/* Prints "<prefix><msg>\n" as one write, with control bytes of msg replaced by '?': an error
 * message may quote a hostile name, and the worker parses our output line by line. */
static void say(int fd, const char *prefix, const char *msg)
{
	char line[400];
	size_t n = strlen(prefix);
	memcpy(line, prefix, n);
	for (const char *p = msg; *p && n < sizeof line - 1; p++) {
		unsigned char b = (unsigned char)*p;
		line[n++] = (b < 0x20 || b == 0x7f) ? '?' : (char)b;
	}
	line[n++] = '\n';
	write_all(fd, line, n);
}

/* ---------------- signals (init) ---------------- */

static void reap_children(void)
{
	int saved = errno;
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

static void on_sigchld(int sig)
{
	(void)sig;
	reap_children();
}

static void on_terminate(int sig)
{
	(void)sig;
	_exit(0);
}

static int install_signals(struct err *err)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	/* SA_RESTART: a child exiting while we stage must not interrupt file writes. */
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sa.sa_handler = on_sigchld;
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		return err_sys(err, errno, "sigaction(SIGCHLD)");
	sa.sa_flags = 0;
	sa.sa_handler = on_terminate;
	const int term[] = {SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < sizeof term / sizeof term[0]; i++)
		if (sigaction(term[i], &sa, NULL) < 0)
			return err_sys(err, errno, "sigaction(%d)", term[i]);
	/* A vanished stdout reader must give EPIPE, not kill init (and with it the container);
	 * RLIMIT_FSIZE must give EFBIG, reported as a staging error. */
	sa.sa_handler = SIG_IGN;
	if (sigaction(SIGPIPE, &sa, NULL) < 0 || sigaction(SIGXFSZ, &sa, NULL) < 0)
		return err_sys(err, errno, "sigaction(SIG_IGN)");
	return 0;
}

/* ---------------- buffered reading of the FIFO ---------------- */

struct reader {
	int fd;
	size_t pos, len;
	long long deadline_ms; /* 0: wait as long as it takes (staging) */
	char buf[IO_CHUNK];
};

/* One reader for the initial staging and then for each update, one at a time: 64 KiB, so
 * off init's small stack. */
static struct reader g_reader;

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Refills r->buf. The FIFO is non-blocking (it was opened before any writer existed, see
 * open_files_fifo), so wait with poll first: on Linux, poll on a FIFO whose writer has not
 * connected yet reports nothing, while read would return 0 as if at end of stream. */
static int reader_fill(struct reader *r, struct err *err)
{
	for (;;) {
		struct pollfd p = {.fd = r->fd, .events = POLLIN};
		int timeout = -1;
		if (r->deadline_ms) {
			long long left = r->deadline_ms - mono_ms();
			timeout = left > 0 ? (int)left : 0;
		}
		int k = poll(&p, 1, timeout);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return err_sys(err, errno, "poll on the files FIFO");
		if (k == 0)
			return err_set(err, ETIMEDOUT, "the file stream did not come in time");
		ssize_t n = read(r->fd, r->buf, sizeof r->buf);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n < 0)
			return err_sys(err, errno, "read from the files FIFO");
		if (n == 0)
			return err_set(err, EPIPE, "unexpected end of the file stream");
		r->pos = 0;
		r->len = (size_t)n;
		return 0;
	}
}

/* Reads one line up to '\n' (excluded) into line[0..FILESTREAM_HEADER_MAX); *n its length. */
static int reader_line(struct reader *r, char *line, size_t *n, struct err *err)
{
	*n = 0;
	for (;;) {
		if (r->pos == r->len && reader_fill(r, err) < 0)
			return -1;
		char c = r->buf[r->pos++];
		if (c == '\n')
			return 0;
		if (*n + 1 >= FILESTREAM_HEADER_MAX)
			return err_set(err, EINVAL, "header line too long");
		line[(*n)++] = c;
	}
}

/* Hands out up to want bytes straight from the buffer (no copy); *got is how many. */
static int reader_take(struct reader *r, size_t want, const char **p, size_t *got, struct err *err)
{
	if (r->pos == r->len && reader_fill(r, err) < 0)
		return -1;
	size_t n = r->len - r->pos;
	*got = n < want ? n : want;
	*p = r->buf + r->pos;
	r->pos += *got;
	return 0;
}

static int reader_exact(struct reader *r, char *out, size_t n, struct err *err)
{
	while (n > 0) {
		const char *p;
		size_t got;
		if (reader_take(r, n, &p, &got, err) < 0)
			return -1;
		memcpy(out, p, got);
		out += got;
		n -= got;
	}
	return 0;
}

/* ---------------- safe path walking ---------------- */

/* Opens the directory `name` inside dirfd, refusing symlinks and non-directories. */
static int open_subdir(int dirfd, const char *name)
{
	return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/*
 * Walks path (already validated: relative, no "."/"..", no empty component) from rootfd and
 * returns an fd of the directory holding its last component, whose offset in path is stored in
 * *leaf. With create, missing intermediate directories are made (mode 0700). Every step is an
 * openat(O_NOFOLLOW) relative to the previous directory, so a symlink anywhere in the path
 * makes the walk fail (ELOOP/ENOTDIR) instead of leaving the work dir. The caller closes the
 * returned fd; path is modified (the '/' separators become NULs).
 */
static int walk_to_parent(int rootfd, char *path, bool create, size_t *leaf, struct err *err)
{
	int dfd = dup(rootfd);
	if (dfd < 0)
		return err_sys(err, errno, "dup");
	char *comp = path;
	for (char *slash; (slash = strchr(comp, '/')) != NULL; comp = slash + 1) {
		*slash = '\0';
		if (create && mkdirat(dfd, comp, 0700) < 0 && errno != EEXIST) {
			err_sys(err, errno, "mkdir '%s'", path);
			close(dfd);
			return -1;
		}
		int next = open_subdir(dfd, comp);
		int e = errno;
		close(dfd);
		if (next < 0)
			return err_sys(err, e, "directory '%s' (symlinks are not followed)", path);
		dfd = next;
		*slash = '/';
	}
	*leaf = (size_t)(comp - path);
	return dfd;
}

/* ---------------- init: staging ---------------- */

/* Copies datalen bytes from the stream into fd. */
static int copy_data(struct reader *r, int fd, size_t datalen, struct err *err)
{
	while (datalen > 0) {
		const char *p;
		size_t got;
		if (reader_take(r, datalen, &p, &got, err) < 0)
			return -1;
		datalen -= got;
		while (got > 0) {
			ssize_t w = write(fd, p, got);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) /* ENOSPC (tmpfs size cap), EFBIG (RLIMIT_FSIZE), ... */
				return err_sys(err, errno, "write");
			p += w;
			got -= (size_t)w;
		}
	}
	return 0;
}

/* Creates one file from the stream: name (validated), then data. */
static int stage_one(struct reader *r, int rootfd, const struct filestream_hdr *h, struct err *err)
{
	char name[FILESTREAM_MAX_NAME + 1];
	if (reader_exact(r, name, h->namelen, err) < 0)
		return -1;
	name[h->namelen] = '\0';
	if (filestream_check_path(name, h->namelen, err) < 0)
		return -1;
	char walked[FILESTREAM_MAX_NAME + 1];
	memcpy(walked, name, h->namelen + 1);
	size_t leaf;
	int dfd = walk_to_parent(rootfd, walked, true, &leaf, err);
	if (dfd < 0)
		return err_wrap(err, "file '%s'", name);
	/* O_EXCL: an existing file, directory or symlink (even a dangling one) of that name
	 * makes this fail, so nothing is ever replaced and no symlink is followed. */
	int fd = openat(dfd, walked + leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			(mode_t)h->mode);
	if (fd < 0) {
		err_sys(err, errno, "create '%s'", name);
		close(dfd);
		return -1;
	}
	int rc = copy_data(r, fd, h->datalen, err);
	if (close(fd) < 0 && rc == 0)
		rc = err_sys(err, errno, "close");
	if (rc < 0) {
		/* We created it a moment ago in a directory only we use yet: drop the partial
		 * file so the compile script never sees half of it. */
		unlinkat(dfd, walked + leaf, 0);
		err_wrap(err, "file '%s'", name);
	}
	close(dfd);
	return rc;
}

typedef int (*file_fn)(struct reader *r, int rootfd, const struct filestream_hdr *h,
		       struct err *err);

/* Reads one file stream from fifo, handing each file to one_file; deadline_ms 0 = none.
 * Returns the number of files, or -1. */
static long read_stream(int fifo, int rootfd, long long deadline_ms, file_fn one_file,
			struct err *err)
{
	struct reader *r = &g_reader;
	r->fd = fifo;
	r->pos = r->len = 0;
	r->deadline_ms = deadline_ms;
	for (long count = 0;; count++) {
		char line[FILESTREAM_HEADER_MAX];
		size_t n;
		struct filestream_hdr h;
		if (reader_line(r, line, &n, err) < 0)
			return -1;
		int kind = filestream_parse_header(line, n, &h, err);
		if (kind < 0)
			return err_wrap(err, "after %ld files", count);
		if (kind == 0)
			return count;
		if (count >= FILESTREAM_MAX_FILES)
			return err_set(err, E2BIG, "more than %d files", FILESTREAM_MAX_FILES);
		if (one_file(r, rootfd, &h, err) < 0)
			return -1;
	}
}

/* Reads the whole stream; returns the number of files staged, or -1. */
static long stage_stream(int fifo, int rootfd, struct err *err)
{
	return read_stream(fifo, rootfd, 0, stage_one, err);
}

/* ---------------- updates of a running task ("U", runner.h) ---------------- */

/*
 * Writes one file of an update: like stage_one, but an existing REGULAR file of that name is
 * replaced (truncated and rewritten in place, keeping its mode); a missing one is created with
 * the stream's mode (and missing directories on the way). Every component is walked with
 * openat(O_NOFOLLOW): a symlink anywhere (leaf included) fails with ELOOP/ENOTDIR instead of
 * being followed; a directory, FIFO, socket or device of that name is refused (the open is
 * O_NONBLOCK so a FIFO cannot hang us, and nothing is truncated before fstat says "regular").
 */
static int update_one(struct reader *r, int rootfd, const struct filestream_hdr *h, struct err *err)
{
	char name[FILESTREAM_MAX_NAME + 1];
	if (reader_exact(r, name, h->namelen, err) < 0)
		return -1;
	name[h->namelen] = '\0';
	if (filestream_check_path(name, h->namelen, err) < 0)
		return -1;
	char walked[FILESTREAM_MAX_NAME + 1];
	memcpy(walked, name, h->namelen + 1);
	size_t leaf;
	int dfd = walk_to_parent(rootfd, walked, true, &leaf, err);
	if (dfd < 0)
		return err_wrap(err, "file '%s'", name);
	int fd = openat(dfd, walked + leaf,
			O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
			(mode_t)h->mode);
	int e = errno;
	close(dfd);
	if (fd < 0 && e == ELOOP)
		return err_set(err, e, "write '%s': a symlink (not followed)", name);
	if (fd < 0)
		return err_sys(err, e, "write '%s'", name);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return err_set(err, EINVAL, "write '%s': not a regular file", name);
	}
	int rc = 0;
	if (fcntl(fd, F_SETFL, 0) < 0 || ftruncate(fd, 0) < 0)
		rc = err_sys(err, errno, "truncate");
	if (rc == 0)
		rc = copy_data(r, fd, h->datalen, err);
	if (close(fd) < 0 && rc == 0)
		rc = err_sys(err, errno, "close");
	if (rc < 0)
		err_wrap(err, "file '%s'", name);
	return rc;
}

long helper_update_stream(int fifo, int rootfd, int timeout_ms, struct err *err)
{
	return read_stream(fifo, rootfd, mono_ms() + (timeout_ms > 0 ? timeout_ms : 1), update_one,
			   err);
}

/* Opens <io>/files for reading without waiting for a writer (O_NONBLOCK), and checks that it
 * is a FIFO: the worker creates it, and anything else means a broken setup. */
static int open_files_fifo(struct err *err)
{
	const char *dir = getenv("VPLHELPER_IO_DIR");
	if (!dir || !*dir)
		dir = DEFAULT_IO_DIR;
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/%s", dir, FILES_FIFO);
	if (n < 0 || (size_t)n >= sizeof path)
		return err_set(err, ENAMETOOLONG, "files FIFO path too long");
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, errno, "open %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode)) {
		close(fd);
		return err_set(err, EINVAL, "%s is not a FIFO", path);
	}
	return fd;
}

/*
 * Opens the work dir (cwd) and makes it mode 0700. The spec asks for a 0700 tmpfs, but runc
 * copies the mode of a mount point that already exists in the image onto the tmpfs (seen with
 * runc 1.1.5: an image's 0755 /home/prisoner gives a 0755 work dir); the tmpfs root belongs
 * to the prisoner (uid= option), so we can put it right.
 */
static int open_workdir(struct err *err)
{
	int fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, errno, "open the work directory");
	if (fchmod(fd, 0700) < 0) {
		err_sys(err, errno, "chmod 0700 the work directory");
		close(fd);
		return -1;
	}
	return fd;
}

static void stage_and_report(void)
{
	struct err err = {0};
	int rootfd = open_workdir(&err);
	if (rootfd < 0) {
		say(STDOUT_FILENO, "error ", err.msg);
		return;
	}
	int fifo = open_files_fifo(&err);
	if (fifo < 0) {
		say(STDOUT_FILENO, "error ", err.msg);
		close(rootfd);
		return;
	}
	write_all(STDOUT_FILENO, "ready\n", 6);
	long n = stage_stream(fifo, rootfd, &err);
	if (n < 0) {
		say(STDOUT_FILENO, "error ", err.msg);
	} else {
		char line[32];
		int k = snprintf(line, sizeof line, "staged %ld\n", n);
		write_all(STDOUT_FILENO, line, (size_t)k);
	}
	close(fifo);
	close(rootfd);
}

/*
 * Student programs run with our uid, so by default they could open /proc/1/fd/1 (our stdout,
 * the worker's channel) to forge replies, /proc/1/fd/<n> (the FIFOs), or /proc/1/mem to take
 * PID 1 over; seccomp does not see any of it (plain open/write). Not dumpable, our /proc
 * entries belong to root and the kernel refuses them to same-uid processes without
 * CAP_SYS_PTRACE (verified under runc: the forged line went through before this).
 */
static int make_untouchable(struct err *err)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return err_sys(err, errno, "prctl(PR_SET_DUMPABLE)");
	return 0;
}

static int run_init(void)
{
	struct err err = {0};
	if (make_untouchable(&err) < 0 || install_signals(&err) < 0) {
		say(STDOUT_FILENO, "error ", err.msg);
		return 1;
	}
	/* Files get exactly the stream's 0600/0700 and directories 0700, whatever umask the
	 * runtime gave us. */
	umask(077);
	int ctl = runner_open_ctl();
	stage_and_report();
	/* Stay as init, running what the worker asks for (runner.h) and reaping
	 * every orphan. */
	int rootfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	runner_loop(rootfd, ctl);
}

/* ---------------- probe ---------------- */

/* Deletes one validated name relative to rootfd. Missing is fine; a directory is refused. */
static int delete_name(int rootfd, const char *name, struct err *err)
{
	char walked[FILESTREAM_MAX_NAME + 1];
	size_t len = strlen(name), leaf;
	memcpy(walked, name, len + 1);
	int dfd = walk_to_parent(rootfd, walked, false, &leaf, err);
	if (dfd < 0) {
		/* ENOENT: an intermediate directory is missing. ENOTDIR: one is a plain file or
		 * a symlink (O_DIRECTORY|O_NOFOLLOW refuses symlinks with ENOTDIR). Either way the
		 * name, walked without following links, does not exist: nothing to delete. */
		if (err && (err->code == ENOENT || err->code == ENOTDIR))
			return 0;
		return err_wrap(err, "delete '%s'", name);
	}
	/* Flags 0: unlinkat never removes a directory (EISDIR), and removes a symlink itself,
	 * never its target. */
	int rc = 0;
	if (unlinkat(dfd, walked + leaf, 0) < 0 && errno != ENOENT)
		rc = err_sys(err, errno, "delete '%s'", name);
	close(dfd);
	return rc;
}

static bool is_regular_file(int rootfd, const char *name)
{
	struct stat st;
	return fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

static int run_probe(int n, char **names)
{
	struct err err = {0};
	for (int i = 0; i < n; i++) {
		if (filestream_check_path(names[i], strlen(names[i]), &err) < 0) {
			say(STDERR_FILENO, "vplhelper probe: invalid name: ", err.msg);
			return 2;
		}
	}
	int rootfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0) {
		err_sys(&err, errno, "open the work directory");
		say(STDERR_FILENO, "vplhelper probe: ", err.msg);
		return 2;
	}
	int rc = 0;
	for (int i = 0; i < n; i++) {
		if (delete_name(rootfd, names[i], &err) < 0) {
			say(STDERR_FILENO, "vplhelper probe: ", err.msg);
			rc = 1;
		}
	}
	char line[96];
	int k = snprintf(
	    line, sizeof line, "vpl_execution=%d vpl_wexecution=%d vpl_webexecution=%d\n",
	    is_regular_file(rootfd, "vpl_execution"), is_regular_file(rootfd, "vpl_wexecution"),
	    is_regular_file(rootfd, "vpl_webexecution"));
	write_all(STDOUT_FILENO, line, (size_t)k);
	close(rootfd);
	return rc;
}

int helper_delete_name(int rootfd, const char *name)
{
	struct err err = {0};
	return delete_name(rootfd, name, &err);
}

int helper_is_regular_file(int rootfd, const char *name)
{
	return is_regular_file(rootfd, name);
}

static int usage(void)
{
	static const char text[] = "usage: vplhelper init | vplhelper probe [name ...]\n";
	write_all(STDERR_FILENO, text, sizeof text - 1);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "init") == 0)
		return run_init();
	if (argc >= 2 && strcmp(argv[1], "probe") == 0)
		return run_probe(argc - 2, argv + 2);
	return usage();
}
