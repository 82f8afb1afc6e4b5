#include "runner.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
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
	int go_fd; /* X: the program waits for "G <phase>" before it execs (-1: none) */
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

/* What every program gets, whatever its stdio: default signal dispositions (the helper
 * ignores SIGPIPE and SIGXFSZ for itself, and ignored dispositions survive exec), no blocked
 * signal, and the phase's rlimits. */
static void program_limits(long long cpu, long long fsize, long long nproc)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	for (int s = 1; s < NSIG; s++)
		sigaction(s, &sa, NULL);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	struct rlimit rl;
	rl.rlim_cur = rl.rlim_max = (rlim_t)cpu;
	setrlimit(RLIMIT_CPU, &rl);
	rl.rlim_cur = rl.rlim_max = (rlim_t)fsize;
	setrlimit(RLIMIT_FSIZE, &rl);
	/* No RLIMIT_NPROC: it counts every process of the uid on the host, and
	 * the container's uid (its own: uidpool.h) also runs this helper and the
	 * relays, so it would not be the student's exact count. The pids cgroup
	 * limits each task (maxprocesses, +1 for the helper). */
	(void)nproc;
	rl.rlim_cur = rl.rlim_max = 0;
	setrlimit(RLIMIT_CORE, &rl);
	rl.rlim_cur = rl.rlim_max = 1024;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* Closes every descriptor from lo up, except keep (-1: none). */
static void close_from(int lo, int keep)
{
	if (keep >= lo) {
		if (keep > lo)
			close_range((unsigned)lo, (unsigned)keep - 1, 0);
		lo = keep + 1;
	}
	if (close_range((unsigned)lo, ~0U, 0) < 0)
		for (int fd = lo; fd < 1024; fd++)
			close(fd);
}

/* Like a shell: execs argv, or says why on stderr and exits 126/127. ready_fd is
 * close-on-exec: its end tells the parent the program is exec'd. */
static void program_exec(char **argv, int ready_fd) __attribute__((noreturn));
static void program_exec(char **argv, int ready_fd)
{
	close_from(3, ready_fd);
	execvp(argv[0], argv);
	int e = errno;
	dprintf(2, "%s: %s\n", argv[0], strerror(e));
	_exit(e == ENOENT ? 127 : 126);
}

static void child_exec(const char *phase, long long cpu, long long fsize, long long nproc,
		       char **argv, int ready_fd, int go_fd)
{
	program_limits(cpu, fsize, nproc);
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
	/* The FIFO is open: tell the helper, then wait until the worker has
	 * removed its name, so the program can never open it by name and write
	 * into its own result behind its caller's back. */
	close(ready_fd);
	char b;
	ssize_t n;
	while ((n = read(go_fd, &b, 1)) < 0 && errno == EINTR)
		;
	if (n != 1)
		_exit(126); /* the helper is gone */
	close(go_fd);
	program_exec(argv, -1);
}

/* A free slot for phase, or -1 (said why): MAX_PHASES programs at once, and a name is
 * used by one of them at a time (the replies carry only the name). */
static int claim_slot(const char *phase)
{
	int slot = -1;
	for (int i = 0; i < MAX_PHASES; i++) {
		if (phases[i].pid != 0 && strcmp(phases[i].name, phase) == 0) {
			say("error phase %s is still running", phase);
			return -1;
		}
		if (phases[i].pid == 0 && slot < 0)
			slot = i;
	}
	if (slot < 0)
		say("error too many programs at once");
	return slot;
}

static void start_phase(const char *phase, long long cpu, long long fsize, long long nproc,
			char **argv)
{
	int slot = claim_slot(phase);
	if (slot < 0)
		return;
	int ready[2], go[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		say("error pipe: %s", strerror(errno));
		return;
	}
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(ready[0]);
		close(ready[1]);
		say("error pipe: %s", strerror(errno));
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		close(ready[0]);
		close(ready[1]);
		close(go[0]);
		close(go[1]);
		say("error fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		child_exec(phase, cpu, fsize, nproc, argv, ready[1], go[0]);
	}
	close(ready[1]);
	close(go[0]);
	char b;
	while (read(ready[0], &b, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);
	snprintf(phases[slot].name, sizeof phases[slot].name, "%s", phase);
	phases[slot].pid = pid;
	phases[slot].go_fd = go[1];
	say("started %s %d", phase, (int)pid);
}

/* "G <phase>": the worker removed the phase's FIFO name: the program may exec. */
static void release_phase(const char *phase)
{
	for (int i = 0; i < MAX_PHASES; i++)
		if (phases[i].pid != 0 && phases[i].go_fd >= 0 &&
		    strcmp(phases[i].name, phase) == 0) {
			ssize_t w;
			while ((w = write(phases[i].go_fd, "g", 1)) < 0 && errno == EINTR)
				;
			close(phases[i].go_fd);
			phases[i].go_fd = -1;
			return;
		}
}

/* ---------------- relays: "T" (terminal) and "C" (connect) ----------------
 *
 * Both run in a child of the helper, the relay, which never execs: it stays non-dumpable
 * like the helper (student processes cannot open its /proc fds or ptrace it), but it has
 * their uid, so they can kill it. Then its FIFOs close, the helper reaps it and says
 * "exit <phase> 128+sig" as for any phase. The relay says "started" and "error" itself,
 * one write() each on the helper's stdout (atomic: shorter than PIPE_BUF); the helper says
 * "exit" only after reaping it, so the order on the channel always holds.
 *
 * Data moves through two fixed buffers (struct flow). A flow reads its source only while
 * its buffer has room, so a reader that does not keep up stops the relay from reading the
 * other side: the pty's program then blocks on its terminal, the socket's peer on TCP's
 * window. Nothing grows; the loop sleeps in poll.
 */

#define RELAY_BUF	 65536
#define DRAIN_MS	 1000	       /* T: reading the master after the program's exit */
#define DRAIN_MAX	 (1024 * 1024) /* T: ... and at most this many bytes */
#define FLUSH_MS	 2000	       /* T: writing what is buffered, after the exit */
#define HUP_TO_KILL_MS	 1000	       /* T: SIGHUP, then SIGKILL that much later */
#define CONNECT_MS	 10000	       /* C: keep trying that long */
#define CONNECT_RETRY_MS 100
#define HALF_CLOSE_MS	 5000 /* C: after the input's end, wait that long for the peer's */

struct flow {
	int src, dst;
	bool src_end;  /* EOF, EIO (pty without slave) or an error */
	bool dst_gone; /* the reader left (EPIPE) or the fd failed: drop what comes */
	size_t len;
	char buf[RELAY_BUF];
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Returns how many bytes came in. */
static size_t flow_read(struct flow *f)
{
	ssize_t n = read(f->src, f->buf + f->len, sizeof f->buf - f->len);
	if (n > 0) {
		if (f->dst_gone)
			return (size_t)n; /* keep the source moving, into the void */
		f->len += (size_t)n;
		return (size_t)n;
	}
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		f->src_end = true;
	return 0;
}

static void flow_write(struct flow *f)
{
	ssize_t n = write(f->dst, f->buf, f->len);
	if (n > 0) {
		memmove(f->buf, f->buf + n, f->len - (size_t)n);
		f->len -= (size_t)n;
	} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
		f->dst_gone = true;
		f->len = 0;
	}
}

/* Adds f's interest to p[*n]: read while there is room, write while there is data. The
 * indices of the entries go to *ri and *wi (-1: none). */
static void flow_poll(struct flow *f, bool may_read, struct pollfd *p, int *n, int *ri, int *wi)
{
	*ri = *wi = -1;
	if (may_read && !f->src_end && f->len < sizeof f->buf) {
		p[*n] = (struct pollfd){.fd = f->src, .events = POLLIN};
		*ri = (*n)++;
	}
	if (f->len > 0 && !f->dst_gone) {
		p[*n] = (struct pollfd){.fd = f->dst, .events = POLLOUT};
		*wi = (*n)++;
	}
}

/* Opens one of the phase's FIFOs, never following a link and never blocking: the worker
 * holds <phase>.out's read end before it sends the command (else ENXIO), and poll reports
 * nothing on <phase>.in until a writer has come, so no open waits. */
static int open_fifo(const char *phase, const char *ext, int flags)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.%s", io_dir(), phase, ext);
	int fd = open(path, flags | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = EINVAL;
	}
	if (fd < 0)
		say("error open %s.%s: %s", phase, ext, strerror(errno));
	return fd;
}

/* The relay's own start: its descriptors are its own, its SIGCHLD wakes its own poll, and
 * a termination signal kills it with the default action (the helper's handlers would make
 * it exit 0). It dies with the helper. */
static void relay_enter(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	close_from(3, -1);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		_exit(126);
}

static int wait_code(int status)
{
	return WIFEXITED(status)     ? WEXITSTATUS(status)
	       : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
				     : 255;
}

/* In the program's child of the relay: slave becomes the controlling terminal and stdio. */
static void pty_program(int slave, long long cpu, long long fsize, long long nproc, char **argv,
			int ready_fd) __attribute__((noreturn));
static void pty_program(int slave, long long cpu, long long fsize, long long nproc, char **argv,
			int ready_fd)
{
	program_limits(cpu, fsize, nproc);
	if (setsid() < 0 || ioctl(slave, TIOCSCTTY, 0) < 0)
		_exit(126);
	if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0)
		_exit(126);
	program_exec(argv, ready_fd);
}

/* Opens a pty pair; the slave is not our controlling terminal (O_NOCTTY). */
static int open_pty(const char *phase, int *slave)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	char name[64];
	if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0 ||
	    ptsname_r(master, name, sizeof name) != 0 ||
	    (*slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
		say("error pty %s: %s", phase, strerror(errno));
		if (master >= 0)
			close(master);
		return -1;
	}
	fcntl(master, F_SETFL, O_NONBLOCK);
	return master;
}

/* "T": the relay's whole life; returns its exit status, the program's. */
static int pty_relay(const char *phase, long long cpu, long long fsize, long long nproc,
		     char **argv)
{
	static struct flow in, out; /* FIFO -> master, master -> FIFO */
	relay_enter();
	int in_fd = open_fifo(phase, "in", O_RDONLY);
	int out_fd = in_fd < 0 ? -1 : open_fifo(phase, "out", O_WRONLY);
	int slave = -1, master = out_fd < 0 ? -1 : open_pty(phase, &slave);
	if (master < 0)
		return 126;
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0) {
		say("error pipe %s: %s", phase, strerror(errno));
		return 126;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sa.sa_handler = on_sigchld;
	sigaction(SIGCHLD, &sa, NULL);
	pid_t pid = fork();
	if (pid < 0) {
		say("error fork %s: %s", phase, strerror(errno));
		return 126;
	}
	if (pid == 0) {
		close(ready[0]);
		pty_program(slave, cpu, fsize, nproc, argv, ready[1]);
	}
	/* Only the program holds the slave now: its last close gives EIO on the master. */
	close(slave);
	close(ready[1]);
	char b;
	while (read(ready[0], &b, 1) < 0 && errno == EINTR)
		;
	close(ready[0]);
	say("started %s %d", phase, (int)pid);

	in = (struct flow){.src = in_fd, .dst = master};
	out = (struct flow){.src = master, .dst = out_fd};
	int status = 0;
	bool exited = false, hung_up = false, killed = false;
	int64_t kill_at = 0, drain_until = 0, flush_until = 0;
	size_t drained = 0;
	for (;;) {
		int64_t now = now_ms();
		bool draining = !exited || (now < drain_until && drained < DRAIN_MAX);
		if (exited && (out.src_end || !draining) &&
		    (out.len == 0 || out.dst_gone || now >= flush_until))
			break;
		/* Browser gone (input ended) or nobody reads the output any more: hang up, like a
		 * terminal whose line dropped, then kill what did not listen. */
		if ((in.src_end || out.dst_gone) && !hung_up && !exited) {
			hung_up = true;
			kill(-pid, SIGHUP);
			kill_at = now + HUP_TO_KILL_MS;
		}
		if (hung_up && !killed && !exited && now >= kill_at) {
			killed = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL); /* should it have left its group */
		}
		if (out.src_end) { /* no slave any more: keystrokes have nowhere to go */
			in.dst_gone = true;
			in.len = 0;
		}
		struct pollfd p[5] = {{.fd = sig_pipe[0], .events = POLLIN}};
		int n = 1, in_r, in_w, out_r, out_w;
		flow_poll(&in, true, p, &n, &in_r, &in_w);
		flow_poll(&out, draining, p, &n, &out_r, &out_w);
		int64_t until = hung_up && !killed && !exited ? kill_at
				: exited && draining	      ? drain_until
				: exited		      ? flush_until
							      : -1;
		int timeout = until < 0 ? -1 : until > now ? (int)(until - now) : 0;
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (p[0].revents) {
			char d[64];
			while (read(sig_pipe[0], d, sizeof d) > 0)
				;
			int st;
			if (!exited && waitpid(pid, &st, WNOHANG) == pid) {
				exited = true;
				status = wait_code(st);
				drain_until = now_ms() + DRAIN_MS;
				flush_until = drain_until + FLUSH_MS;
			}
			while (waitpid(-1, NULL, WNOHANG) > 0)
				; /* none other: the program's orphans go to init */
		}
		if (in_r >= 0 && p[in_r].revents)
			flow_read(&in);
		if (in_w >= 0 && p[in_w].revents)
			flow_write(&in);
		if (out_r >= 0 && p[out_r].revents) {
			size_t got = flow_read(&out);
			if (exited)
				drained += got;
		}
		if (out_w >= 0 && p[out_w].revents)
			flow_write(&out);
	}
	/* Closing the master hangs the terminal up for whatever still holds the slave. */
	close(master);
	close(out_fd);
	close(in_fd);
	return status;
}

/* Connects to ip:port (ip in 127.0.0.0/8, network order), retrying; returns the socket
 * (non-blocking) or -1. */
static int connect_local(uint32_t ip, int port, int *why)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = ip;
	int64_t end = now_ms() + CONNECT_MS;
	for (;;) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (s < 0) {
			*why = errno;
			return -1;
		}
		int e = 0;
		if (connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
			e = errno;
			if (e == EINPROGRESS) {
				int64_t left = end - now_ms();
				struct pollfd p = {.fd = s, .events = POLLOUT};
				socklen_t l = sizeof e;
				if (poll(&p, 1, left > 0 ? (int)left : 0) <= 0)
					e = ETIMEDOUT;
				else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
					e = errno;
			}
		}
		if (e == 0)
			return s;
		close(s);
		*why = e;
		int64_t left = end - now_ms();
		if (left <= 0)
			return -1;
		poll(NULL, 0, left < CONNECT_RETRY_MS ? (int)left : CONNECT_RETRY_MS);
	}
}

/* "C": the relay's whole life; returns its exit status. */
static int connect_relay(const char *phase, uint32_t ip, int port)
{
	static struct flow up, down; /* FIFO -> socket, socket -> FIFO */
	relay_enter();
	int in_fd = open_fifo(phase, "in", O_RDONLY);
	int out_fd = in_fd < 0 ? -1 : open_fifo(phase, "out", O_WRONLY);
	if (out_fd < 0)
		return 126;
	int why = 0;
	int sock = connect_local(ip, port, &why);
	if (sock < 0) {
		say("error connect %s: %s", phase, strerror(why));
		return 1;
	}
	say("started %s %d", phase, (int)getpid());
	up = (struct flow){.src = in_fd, .dst = sock};
	down = (struct flow){.src = sock, .dst = out_fd};
	bool shut = false;
	int64_t give_up = 0; /* 0: no end in sight yet */
	for (;;) {
		int64_t now = now_ms();
		/* The socket ended (or broke): what came from it goes out, then we are done. The
		 * output's reader left: nothing more can be delivered. */
		if (down.dst_gone || (down.src_end && down.len == 0))
			break;
		if (up.src_end && (up.len == 0 || up.dst_gone) && !shut) {
			/* The input ended: the peer learns it, and has a while to finish. */
			shutdown(sock, SHUT_WR);
			shut = true;
		}
		/* Either side's end bounds the rest: a peer that never closes, or a worker that
		 * no longer reads, cannot hold the relay. */
		if ((shut || down.src_end) && give_up == 0)
			give_up = now + HALF_CLOSE_MS;
		if (give_up && now >= give_up)
			break;
		struct pollfd p[4];
		int n = 0, up_r, up_w, down_r, down_w;
		flow_poll(&up, true, p, &n, &up_r, &up_w);
		flow_poll(&down, true, p, &n, &down_r, &down_w);
		int timeout = give_up ? (int)(give_up - now) : -1;
		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (up_r >= 0 && p[up_r].revents)
			flow_read(&up);
		if (up_w >= 0 && p[up_w].revents)
			flow_write(&up);
		if (down_r >= 0 && p[down_r].revents)
			flow_read(&down);
		if (down_w >= 0 && p[down_w].revents)
			flow_write(&down);
	}
	close(out_fd);
	close(sock);
	close(in_fd);
	return 0;
}

/* Forks the relay of a "T" (port < 0) or "C" command and books its phase; the relay says
 * "started" when it is, and the reaper says "exit". */
static void start_relay(const char *phase, uint32_t ip, int port, long long cpu, long long fsize,
			long long nproc, char **argv)
{
	int slot = claim_slot(phase);
	if (slot < 0)
		return;
	pid_t pid = fork();
	if (pid < 0) {
		say("error fork: %s", strerror(errno));
		return;
	}
	if (pid == 0)
		_exit(port < 0 ? pty_relay(phase, cpu, fsize, nproc, argv)
			       : connect_relay(phase, ip, port));
	snprintf(phases[slot].name, sizeof phases[slot].name, "%s", phase);
	phases[slot].pid = pid;
	phases[slot].go_fd = -1;
}

static void reap(void)
{
	int status;
	pid_t pid;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (int i = 0; i < MAX_PHASES; i++) {
			if (phases[i].pid != pid)
				continue;
			say("exit %s %d", phases[i].name, wait_code(status));
			phases[i].pid = 0;
			if (phases[i].go_fd >= 0)
				close(phases[i].go_fd);
			phases[i].go_fd = -1;
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

/* A dotted quad in 127.0.0.0/8, nothing else (no shorthand forms, no leading zeros that
 * inet_aton would read as octal): its address in network order. */
static int parse_loopback(const char *s, uint32_t *ip)
{
	unsigned v[4];
	int used = 0;
	if (sscanf(s, "%3u.%3u.%3u.%3u%n", &v[0], &v[1], &v[2], &v[3], &used) != 4 ||
	    s[used] != '\0' || v[0] != 127 || v[1] > 255 || v[2] > 255 || v[3] > 255)
		return -1;
	for (const char *p = s; *p; p++) /* digits and dots only, no "0"-prefixed octet */
		if (!((*p >= '0' && *p <= '9') || *p == '.') ||
		    (*p == '0' && (p == s || p[-1] == '.') && p[1] >= '0' && p[1] <= '9'))
			return -1;
	*ip = htonl(v[0] << 24 | v[1] << 16 | v[2] << 8 | v[3]);
	return 0;
}

/* "A": the web program's local server, as the compile script wrote it in
 * .vpl_localserveraddress ("127.a.b.c:port", optionally followed by white space).
 * Read here, in the container, never by the worker: a regular file, no link, at most
 * LOCAL_ADDR_MAX bytes. */
#define LOCAL_ADDR_MAX 64
static void say_local_server(int rootfd)
{
	char b[LOCAL_ADDR_MAX + 1];
	ssize_t n = -1;
	int fd = openat(rootfd, ".vpl_localserveraddress",
			O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= LOCAL_ADDR_MAX)
		n = read(fd, b, LOCAL_ADDR_MAX + 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0 || n > LOCAL_ADDR_MAX) {
		say("addr none");
		return;
	}
	while (n > 0 &&
	       (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' ' || b[n - 1] == '\t'))
		n--;
	b[n] = '\0';
	char *colon = strrchr(b, ':');
	long long port;
	uint32_t ip;
	if (!colon || memchr(b, '\0', (size_t)n)) {
		say("addr none");
		return;
	}
	*colon = '\0';
	if (parse_loopback(b, &ip) < 0 || colon[1] < '0' || colon[1] > '9' ||
	    parse_ll(colon + 1, &port) < 0 || port < 1 || port > 65535) {
		say("addr none");
		return;
	}
	say("addr %s:%lld", b, port);
}

/* "U <fifo>": one update of the task's files (runner.h). */
static void run_update(int rootfd, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", io_dir(), name);
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) < 0 || !S_ISFIFO(st.st_mode))) {
		close(fd);
		fd = -1;
		errno = EINVAL;
	}
	if (fd < 0) {
		say("error update %s: open: %s", name, strerror(errno));
		return;
	}
	say("updating %s", name);
	struct err e = {0};
	long n = helper_update_stream(fd, rootfd, UPDATE_READ_MS, &e);
	close(fd);
	if (n < 0)
		say("error update %s: %s", name, e.msg);
	else
		say("updated %s %ld", name, n);
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
	if (kind == 'X' || kind == 'T') {
		if (head[1] != ' ' ||
		    sscanf(head + 2, "%31s %31s %31s %31s %31s", phase, a1, a2, a3, a4) != 5 ||
		    parse_ll(a4, &want) < 0 || want < 1 || want > MAX_ARGS) {
			next_line(head, sizeof head);
			say("error bad command");
			return 1;
		}
	} else if (kind == 'C') {
		/* "C <phase> <port> [<ip>]": no argument lines. */
		next_line(head, sizeof head);
		long long port;
		char extra[2];
		int got = sscanf(head, "C %31s %31s %31s %1s", phase, a1, a2, extra);
		uint32_t ip = htonl(INADDR_LOOPBACK);
		if ((got != 2 && got != 3) || !valid_phase(phase) || parse_ll(a1, &port) < 0 ||
		    port < 1 || port > 65535 || (got == 3 && parse_loopback(a2, &ip) < 0)) {
			say("error bad command");
			return 1;
		}
		start_relay(phase, ip, (int)port, 0, 0, 0, NULL);
		return 1;
	} else if (kind == 'A') {
		next_line(head, sizeof head);
		if (strcmp(head, "A") != 0) {
			say("error bad command");
			return 1;
		}
		say_local_server(rootfd);
		return 1;
	} else if (kind == 'U') {
		next_line(head, sizeof head);
		char extra[2];
		if (sscanf(head, "U %31s %1s", a1, extra) != 1 || strncmp(head, "U ", 2) != 0 ||
		    !valid_phase(a1)) {
			say("error bad command");
			return 1;
		}
		run_update(rootfd, a1);
		return 1;
	} else if (kind == 'G') {
		next_line(head, sizeof head);
		if (sscanf(head, "G %31s", a1) == 1 && valid_phase(a1))
			release_phase(a1);
		else
			say("error bad command");
		return 1;
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
	if (kind == 'X' || kind == 'T') {
		long long cpu, fsize, nproc;
		if (!valid_phase(phase) || parse_ll(a1, &cpu) < 0 || parse_ll(a2, &fsize) < 0 ||
		    parse_ll(a3, &nproc) < 0 || cpu < 1 || fsize < 1 || nproc < 1) {
			say("error bad command");
			return 1;
		}
		if (kind == 'X')
			start_phase(phase, cpu, fsize, nproc, argv);
		else
			start_relay(phase, 0, -1, cpu, fsize, nproc, argv);
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
