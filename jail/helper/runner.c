#include "runner.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filestream.h"

#define MAX_ARGS   64
#define MAX_ARG	   4096
#define MAX_PHASES 4
#define LINE_MAX_  (MAX_ARG + 2)

extern char **environ;

static int sig_pipe[2] = {-1, -1};

struct phase {
	char name[17];
	pid_t pid;
};
static struct phase phases[MAX_PHASES];

static void on_sigchld(int sig)
{
	(void)sig;
	int saved = errno;
	char b = 0;
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* full: a wakeup is already pending */
	}
	errno = saved;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = (int)sizeof line - 2;
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[n++] = '\n';
	for (int off = 0; off < n;) {
		ssize_t w = write(STDOUT_FILENO, line + off, (size_t)(n - off));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (int)w;
	}
}

static const char *io_dir(void)
{
	const char *d = getenv("VPLHELPER_IO_DIR");
	return d && *d ? d : "/.vplcell/io";
}

/* Buffered line reader over the control FIFO. */
static char rbuf[65536];
static size_t rlen;

/* Returns 1 and a NUL-terminated line, 0 when no full line is buffered. */
static int next_line(char *out, size_t outsz)
{
	char *nl = memchr(rbuf, '\n', rlen);
	if (!nl) {
		if (rlen == sizeof rbuf)
			rlen = 0; /* a line longer than any command: drop it */
		return 0;
	}
	size_t n = (size_t)(nl - rbuf);
	if (n >= outsz)
		n = outsz - 1;
	memcpy(out, rbuf, n);
	out[n] = '\0';
	size_t used = (size_t)(nl - rbuf) + 1;
	memmove(rbuf, rbuf + used, rlen - used);
	rlen -= used;
	return 1;
}

static int valid_phase(const char *p)
{
	size_t n = strlen(p);
	if (n == 0 || n > 16)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 'a' || p[i] > 'z')
			return 0;
	return 1;
}

static void child_exec(const char *phase, long long cpu, long long fsize, long long nproc,
		       char **argv, int ready_fd)
{
	/* The helper ignores SIGPIPE and SIGXFSZ for itself; a student's
	 * program must get the default actions (ignored dispositions survive
	 * exec). */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	setsid();
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.out", io_dir(), phase);
	int out = open(path, O_WRONLY | O_CLOEXEC);
	int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (out < 0 || in < 0)
		_exit(126);
	dup2(in, 0);
	dup2(out, 1);
	dup2(out, 2);
	struct rlimit rl;
	rl.rlim_cur = rl.rlim_max = (rlim_t)cpu;
	setrlimit(RLIMIT_CPU, &rl);
	rl.rlim_cur = rl.rlim_max = (rlim_t)fsize;
	setrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = rl.rlim_max = (rlim_t)nproc;
	setrlimit(RLIMIT_NPROC, &rl);
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
	rl.rlim_cur = rl.rlim_max = 1024;
	setrlimit(RLIMIT_NOFILE, &rl);
	for (int fd = 3; fd < 64; fd++)
		if (fd != ready_fd)
			close(fd);
	/* ready_fd is close-on-exec: its end tells the parent the output
	 * FIFO is open and the program is exec'd. */
	execvp(argv[0], argv);
	/* Like a shell: say why, exit 126/127. */
	int e = errno;
	dprintf(2, "%s: %s\n", argv[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

static void start_phase(const char *phase, long long cpu, long long fsize, long long nproc,
			char **argv)
{
	int slot = -1;
	for (int i = 0; i < MAX_PHASES; i++)
		if (phases[i].pid == 0) {
			slot = i;
			break;
		}
	if (slot < 0) {
		say("error too many programs at once");
		return;
	}
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		say("error pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(ready[0]);
		close(ready[1]);
		say("error fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		close(ready[0]);
		child_exec(phase, cpu, fsize, nproc, argv, ready[1]);
	}
	close(ready[1]);
	char b;
	while (read(ready[0], &b, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);
	snprintf(phases[slot].name, sizeof phases[slot].name, "%s", phase);
	phases[slot].pid = pid;
	say("started %s %d", phase, (int)pid);
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < MAX_PHASES; i++) {
			if (phases[i].pid != pid)
				continue;
			int code = WIFEXITED(status)	 ? WEXITSTATUS(status)
				   : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
							 : 255;
			say("exit %s %d", phases[i].name, code);
			phases[i].pid = 0;
		}
		/* anything else is an orphan re-parented to us: just reaped */
	}
}

static int parse_ll(const char *s, long long *v)
{
	char *end;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (errno || end == s || *end || x < 0)
		return -1;
	*v = x;
	return 0;
}

/* A command waits in rbuf until all its lines are in. */
static int try_command(int rootfd)
{
	char head[256];
	char *nl = memchr(rbuf, '\n', rlen);
	if (!nl)
		return 0;
	/* Count the lines the command needs before consuming anything. */
	size_t hl = (size_t)(nl - rbuf);
	if (hl >= sizeof head) {
		rlen = 0;
		say("error command too long");
		return 0;
	}
	memcpy(head, rbuf, hl);
	head[hl] = '\0';
	char kind = head[0];
	long long want = 0;
	char phase[32] = "", a1[32], a2[32], a3[32], a4[32];
	if (kind == 'X') {
		if (sscanf(head, "X %31s %31s %31s %31s %31s", phase, a1, a2, a3, a4) != 5 ||
		    parse_ll(a4, &want) < 0 || want < 1 || want > MAX_ARGS) {
			next_line(head, sizeof head);
			say("error bad command");
			return 1;
		}
	} else if (kind == 'E') {
		/* "E NAME=VALUE": environment of the programs started after it
		 * (a pooled container learns the task's VPL_LANG this way). */
		next_line(head, sizeof head);
		char *eq = strchr(head + 2, '=');
		bool ok = head[1] == ' ' && eq && eq > head + 2;
		for (char *c = head + 2; ok && c < eq; c++)
			ok = (*c >= 'A' && *c <= 'Z') || *c == '_' || (*c >= '0' && *c <= '9');
		if (!ok) {
			say("error bad command");
			return 1;
		}
		*eq = '\0';
		setenv(head + 2, eq + 1, 1);
		return 1;
	} else if (kind == 'P') {
		if (sscanf(head, "P %31s", a1) != 1 || parse_ll(a1, &want) < 0 || want > MAX_ARGS) {
			next_line(head, sizeof head);
			say("error bad command");
			return 1;
		}
	} else {
		next_line(head, sizeof head);
		say("error unknown command");
		return 1;
	}
	size_t have = 0;
	for (char *p = nl + 1; p < rbuf + rlen; p++)
		if (*p == '\n')
			have++;
	if ((long long)have < want)
		return 0;
	next_line(head, sizeof head);
	static char args[MAX_ARGS][MAX_ARG + 1];
	char *argv[MAX_ARGS + 1];
	for (long long i = 0; i < want; i++) {
		next_line(args[i], sizeof args[i]);
		argv[i] = args[i];
	}
	argv[want] = NULL;
	if (kind == 'X') {
		long long cpu, fsize, nproc;
		if (!valid_phase(phase) || parse_ll(a1, &cpu) < 0 || parse_ll(a2, &fsize) < 0 ||
		    parse_ll(a3, &nproc) < 0 || cpu < 1 || fsize < 1 || nproc < 1) {
			say("error bad command");
			return 1;
		}
		start_phase(phase, cpu, fsize, nproc, argv);
	} else {
		for (long long i = 0; i < want; i++) {
			struct err e;
			if (filestream_check_path(argv[i], strlen(argv[i]), &e) == 0)
				helper_delete_name(rootfd, argv[i]);
		}
		say("probe vpl_execution=%d vpl_wexecution=%d vpl_webexecution=%d",
		    helper_is_regular_file(rootfd, "vpl_execution"),
		    helper_is_regular_file(rootfd, "vpl_wexecution"),
		    helper_is_regular_file(rootfd, "vpl_webexecution"));
	}
	return 1;
}

int runner_open_ctl(void)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/ctl", io_dir());
	/* O_RDWR: never EOF when the worker's end closes for a moment. */
	return open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
}

void runner_loop(int rootfd, int ctl)
{
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0 || ctl < 0)
		say("error no control channel: %s", strerror(errno));
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sa.sa_handler = on_sigchld;
	sigaction(SIGCHLD, &sa, NULL);
	reap();
	for (;;) {
		struct pollfd p[2] = {{.fd = sig_pipe[0], .events = POLLIN},
				      {.fd = ctl, .events = POLLIN}};
		if (poll(p, ctl >= 0 ? 2 : 1, -1) < 0 && errno != EINTR)
			pause();
		if (p[0].revents) {
			char b[64];
			while (read(sig_pipe[0], b, sizeof b) > 0)
				;
			reap();
		}
		if (ctl >= 0 && (p[1].revents & POLLIN)) {
			ssize_t n = read(ctl, rbuf + rlen, sizeof rbuf - rlen);
			if (n > 0)
				rlen += (size_t)n;
			while (try_command(rootfd))
				;
		}
	}
}
