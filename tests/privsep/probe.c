/*
 * probe.c - linked into build/tests/vpl-jail-probe only: stands for an attacker who took
 * over the parser process (arbitrary code in its context, right after privsep_drop) and
 * reports what that code can reach, one "name value" line per attempt, to the fd named by
 * VPLCELL_PROBE_FD. Values are errno names ("EPERM") or numbers; the test
 * (tests/privsep/test_privsep.py) decides what is acceptable. Targets come from the
 * environment, set by the test: VPLCELL_PROBE_PIDS (pids of other tasks, containerd, the
 * keeper...), VPLCELL_PROBE_TCP (a port listening on the host's 127.0.0.1),
 * VPLCELL_PROBE_ABSTRACT (an abstract unix socket name listening on the host).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"

void privsep_probe(const struct jail_config *cfg);

static int out_fd = -1;

static void say(const char *name, const char *fmt, ...)
{
	char line[512];
	int n = snprintf(line, sizeof line, "PROBE %s ", name);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	line[n++] = '\n';
	if (write(out_fd, line, (size_t)n) < 0)
		_exit(3);
}

/* 0 when it worked, else the errno's name */
static void result(const char *name, int rc)
{
	int e = errno;
	if (rc >= 0)
		say(name, "OK");
	else
		say(name, "%s", strerrorname_np(e) ? strerrorname_np(e) : "E?");
}

static int try_connect_unix(const char *path, bool abstract)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(path);
	if (n + 2 > sizeof sa.sun_path) {
		close(fd);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(sa.sun_path + (abstract ? 1 : 0), path, n);
	socklen_t len =
	    (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (abstract ? 1 : 0));
	int rc = connect(fd, (struct sockaddr *)&sa, len);
	int e = errno;
	close(fd);
	errno = e;
	return rc;
}

static int try_open(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return fd;
}

void privsep_probe(const struct jail_config *cfg)
{
	const char *v = getenv("VPLCELL_PROBE_FD");
	if (!v)
		return;
	out_fd = atoi(v);
	say("uid", "%u %u", (unsigned)getuid(), (unsigned)geteuid());
	say("gid", "%u %u", (unsigned)getgid(), (unsigned)getegid());
	gid_t groups[8];
	say("groups", "%d", getgroups(8, groups));
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) == 0)
		say("caps", "%x %x %x %x", d[0].effective, d[0].permitted, d[1].effective,
		    d[1].permitted);
	/* the host's files */
	result("open_etc_passwd", try_open("/etc/passwd"));
	result("open_etc_shadow", try_open("/etc/shadow"));
	result("open_proc_self", try_open("/proc/self/status"));
	result("open_state_dir", try_open(cfg->state_dir));
	result("open_helper", try_open(cfg->helper_path));
	DIR *dir = opendir("/");
	int entries = 0;
	if (dir) {
		struct dirent *de;
		while ((de = readdir(dir)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				entries++;
		closedir(dir);
	}
	say("root_entries", "%d", entries);
	result("mkdir_in_root", mkdir("/probe", 0700));
	/* containerd and other daemons */
	result("connect_containerd", try_connect_unix(cfg->containerd_socket, false));
	if ((v = getenv("VPLCELL_PROBE_ABSTRACT")))
		result("connect_abstract", try_connect_unix(v, true));
	if ((v = getenv("VPLCELL_PROBE_TCP"))) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)atoi(v)),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		result("connect_tcp_loopback",
		       fd < 0 ? -1 : connect(fd, (struct sockaddr *)&sa, sizeof sa));
		if (fd >= 0)
			close(fd);
	}
	/* other processes: the keepers and parsers of workers, tasks, daemons, the test */
	say("pid", "%d", (int)getpid());
	if ((v = getenv("VPLCELL_PROBE_PIDS"))) {
		char *copy = strdup(v), *save = NULL;
		for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
			char name[64];
			snprintf(name, sizeof name, "kill_pid_%s", p);
			result(name, kill(atoi(p), 0));
			snprintf(name, sizeof name, "ptrace_pid_%s", p);
			result(name, (int)ptrace(PTRACE_ATTACH, atoi(p), NULL, NULL));
		}
		free(copy);
	}
	/* every process: how many could be signalled, besides ourselves */
	int signalable = 0;
	for (pid_t p = 1; p < 4194304; p++)
		if (p != getpid() && kill(p, 0) == 0)
			signalable++;
	say("signalable_others", "%d", signalable);
	/* getting privileges back, or out of the chroot */
	result("setuid_0", setuid(0));
	result("unshare_user", unshare(CLONE_NEWUSER));
	result("unshare_mount", unshare(CLONE_NEWNS));
	result("chroot", chroot("/"));
	result("mount_tmpfs", mount("none", "/", "tmpfs", 0, NULL));
	pid_t c = fork();
	if (c == 0)
		_exit(0);
	if (c > 0)
		waitpid(c, NULL, 0);
	result("fork", c);
	say("done", "1");
	if (!getenv("VPLCELL_PROBE_GARBAGE"))
		return;
	/* The channel to the keeper is the unix socket whose peer is our parent: a frame that
	 * claims to be P_START and holds one byte. */
	for (int fd = 3; fd < 1024; fd++) {
		struct ucred cr;
		socklen_t len = sizeof cr;
		int dom = 0;
		socklen_t dl = sizeof dom;
		/* the keeper is outside our pid namespace: its pid reads as 0 here */
		if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) == 0 && dom == AF_UNIX &&
		    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.pid == 0) {
			static const unsigned char junk[] = {0, 0, 0, 2, 1, 0xff};
			if (write(fd, junk, sizeof junk) != (ssize_t)sizeof junk)
				say("garbage", "%s", strerrorname_np(errno));
			else
				say("garbage", "sent");
			break;
		}
	}
	for (;;)
		pause(); /* the keeper must end us */
}
