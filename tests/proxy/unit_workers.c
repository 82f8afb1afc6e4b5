/*
 * Worker set, health and load (proxy/workers.h) against real vpl-jail processes.
 *
 * Every test starts its own vpl-jail workers (no containerd: CONTAINERD_SOCKET is empty, so
 * tasks are accepted and kept but nothing runs) on free loopback ports with a generated
 * config in a private temporary directory, and its teardown stops them even when the test
 * failed. The binary is $VPL_BUILD/vpl-jail if VPL_BUILD is set, else the vpl-jail next to
 * this test's build tree (BUILD/tests/../vpl-jail). The DNS tests enter a private mount
 * namespace and bind-mount a generated hosts file over /etc/hosts (root needed; skipped
 * otherwise). Waits poll every 50 ms up to a generous deadline: nothing asserts on timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "workers.h"

#define URLPATH	    "/wk-urlpath-Zq81xTT"
#define SECRET	    "wk-secret-9Ab77Qe"
#define DEADLINE_MS 15000
#define MAXJ	    3

struct jail {
	pid_t pid; /* 0: not running */
	char ip[INET_ADDRSTRLEN];
	uint16_t port;
	char conf[PATH_MAX], log[PATH_MAX], drain[PATH_MAX];
	struct worker_addr addr;
};

struct fx {
	char dir[64]; /* mkdtemp, short: paths built from it always fit */
	struct jail j[MAXJ];
	struct workers *w;
	char hosts[PATH_MAX];
	bool hosts_mounted;
	int saved_stderr; /* -1: stderr not captured */
	char captured[PATH_MAX];
};

static char g_jail_bin[PATH_MAX];

/* Children still running, killed at exit if a test died without its teardown. */
static pid_t g_pids[64];

static void track(pid_t pid, bool add)
{
	for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++) {
		if (add && g_pids[i] == 0) {
			g_pids[i] = pid;
			return;
		}
		if (!add && g_pids[i] == pid) {
			g_pids[i] = 0;
			return;
		}
	}
}

static void kill_leftovers(void)
{
	for (size_t i = 0; i < sizeof g_pids / sizeof g_pids[0]; i++)
		if (g_pids[i] > 0) {
			kill(g_pids[i], SIGKILL);
			waitpid(g_pids[i], NULL, 0);
		}
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define WAIT_UNTIL(cond)                                                                           \
	do {                                                                                       \
		long long end_ = now_ms() + DEADLINE_MS;                                           \
		while (!(cond)) {                                                                  \
			if (now_ms() > end_)                                                       \
				fail_msg("timed out after %d ms waiting for: %s", DEADLINE_MS,     \
					 #cond);                                                   \
			usleep(50000);                                                             \
		}                                                                                  \
	} while (0)

static bool find_jail_binary(void)
{
	const char *b = getenv("VPL_BUILD");
	if (b && *b) {
		snprintf(g_jail_bin, sizeof g_jail_bin, "%s/vpl-jail", b);
	} else {
		char self[PATH_MAX];
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n <= 0)
			return false;
		self[n] = '\0';
		char *slash = strrchr(self, '/');
		if (!slash)
			return false;
		*slash = '\0';
		snprintf(g_jail_bin, sizeof g_jail_bin, "%.*s/../vpl-jail", PATH_MAX - 16, self);
	}
	return access(g_jail_bin, X_OK) == 0;
}

/* ---- free ports and worker processes ---- */

static uint16_t bound_port(const char *ip, uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(s >= 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &sa.sin_addr);
	uint16_t got = 0;
	if (bind(s, (struct sockaddr *)&sa, sizeof sa) == 0) {
		socklen_t len = sizeof sa;
		getsockname(s, (struct sockaddr *)&sa, &len);
		got = ntohs(sa.sin_port);
	}
	close(s);
	return got;
}

/* A port free on every address in ips (a DNS name carries one port for all its records). */
static uint16_t free_port(const char *const *ips)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		uint16_t p = bound_port(ips[0], 0);
		bool ok = p != 0;
		for (size_t i = 1; ips[i] && ok; i++)
			ok = bound_port(ips[i], p) == p;
		if (ok)
			return p;
	}
	fail_msg("no free port");
	return 0;
}

static void print_log_tail(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	char line[512];
	int n = 0;
	while (fgets(line, sizeof line, f) && n++ < 40)
		fprintf(stderr, "    | %s", line);
	fclose(f);
}

static bool log_has(const char *path, const char *needle)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	char line[1024];
	bool found = false;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, needle) != NULL;
	fclose(f);
	return found;
}

static bool can_connect(const char *ip, uint16_t port)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, ip, &sa.sin_addr);
	bool ok = connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
	close(s);
	return ok;
}

/* Starts worker i on ip:port with extra config lines and waits until it listens. */
static void jail_start(struct fx *f, int i, const char *ip, uint16_t port, const char *extra)
{
	struct jail *j = &f->j[i];
	snprintf(j->ip, sizeof j->ip, "%s", ip);
	j->port = port;
	inet_pton(AF_INET, ip, &j->addr.ip_be);
	j->addr.port = port;
	char dir[sizeof f->dir]; /* a copy: gcc cannot tell f->dir from f->j[i] */
	memcpy(dir, f->dir, sizeof dir);
	snprintf(j->conf, sizeof j->conf, "%s/jail%d.conf", dir, i);
	snprintf(j->log, sizeof j->log, "%s/jail%d.log", dir, i);
	snprintf(j->drain, sizeof j->drain, "%s/drain%d", dir, i);
	/* INTERFACE is written in its IPv4-mapped IPv6 form: vpl-jail (libwebsockets 4.1 with
	 * IPv6 on) binds a plain IPv4 INTERFACE to every address ("*:port"), so two workers on
	 * one port at 127.0.0.2 and 127.0.0.3 would collide. The mapped form binds exactly. */
	FILE *c = fopen(j->conf, "w");
	assert_non_null(c);
	fprintf(c,
		"PORT=%u\nSECURE_PORT=0\nINTERFACE=::ffff:%s\nURLPATH=%s\nDRAIN_FILE=%s\n"
		"CONTAINERD_SOCKET=\nSHUTDOWN_GRACE=0\nLOGLEVEL=6\n%s",
		port, ip, URLPATH, j->drain, extra ? extra : "");
	fclose(c);
	chmod(j->conf, 0600);

	int logfd = open(j->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	assert_true(logfd >= 0);
	char *argv[] = {g_jail_bin, "-f", j->conf, NULL};
	pid_t parent = getpid();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Never outlive the test, whatever happens to it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(logfd, 1);
		dup2(logfd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(logfd);
	j->pid = pid;
	track(pid, true);
	long long end = now_ms() + DEADLINE_MS;
	/* Listening on ip:port is not enough (another process could answer there): the log
	 * must also say this one is ready. */
	while (!log_has(j->log, "vpl-jail ready") || !can_connect(ip, port)) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			track(pid, false);
			j->pid = 0;
			print_log_tail(j->log);
			fail_msg("vpl-jail on %s:%u exited at start (status %d)", ip, port, st);
		}
		if (now_ms() > end) {
			print_log_tail(j->log);
			fail_msg("vpl-jail on %s:%u did not start listening", ip, port);
		}
		usleep(50000);
	}
}

/* SIGCONT (it may be stopped), SIGTERM, wait; returns the wait status, -1 if it had to be
 * killed. */
static int jail_stop(struct jail *j)
{
	if (j->pid <= 0)
		return 0;
	kill(j->pid, SIGCONT);
	kill(j->pid, SIGTERM);
	int st = 0;
	long long end = now_ms() + 20000;
	pid_t r;
	while ((r = waitpid(j->pid, &st, WNOHANG)) == 0 && now_ms() < end)
		usleep(20000);
	if (r != j->pid) {
		kill(j->pid, SIGKILL);
		waitpid(j->pid, &st, 0);
		st = -1;
	}
	track(j->pid, false);
	j->pid = 0;
	return st;
}

static void jail_stop_clean(struct jail *j)
{
	int st = jail_stop(j);
	if (st != 0)
		print_log_tail(j->log);
	assert_int_equal(st, 0); /* a clean exit: no sanitizer report, no crash */
}

/* ---- fixture ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	return remove(p);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);
	if (!f)
		return -1;
	f->saved_stderr = -1;
	snprintf(f->dir, sizeof f->dir, "/tmp/vplcell-workers-XXXXXX");
	if (!mkdtemp(f->dir)) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static void stderr_restore(struct fx *f)
{
	if (f->saved_stderr < 0)
		return;
	fflush(stderr);
	dup2(f->saved_stderr, 2);
	close(f->saved_stderr);
	f->saved_stderr = -1;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	int rc = 0;
	workers_free(f->w); /* first: no poll races the stops below */
	f->w = NULL;
	if (f->saved_stderr >= 0) {
		stderr_restore(f);
		fprintf(stderr, "  captured log:\n");
		print_log_tail(f->captured);
	}
	for (int i = 0; i < MAXJ; i++) {
		if (f->j[i].pid <= 0)
			continue;
		int st = jail_stop(&f->j[i]);
		if (st != 0) {
			fprintf(stderr, "vpl-jail %d did not exit cleanly (status %d):\n", i, st);
			print_log_tail(f->j[i].log);
			rc = -1;
		}
	}
	if (f->hosts_mounted)
		umount2("/etc/hosts", MNT_DETACH);
	nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return rc;
}

/* ---- helpers over the module ---- */

static struct workers *start_workers(struct fx *f, const char *const *names, int health_ms,
				     int timeout_ms, int dns_ms, int grace_ms)
{
	struct workers_config cfg = {
	    .names = names,
	    .dns_interval_ms = dns_ms,
	    .health_interval_ms = health_ms,
	    .health_timeout_ms = timeout_ms,
	    .gone_grace_ms = grace_ms,
	    .urlpath = URLPATH,
	    .secret = SECRET,
	};
	struct err e = {0};
	f->w = workers_new(&cfg, &e);
	if (!f->w)
		fail_msg("workers_new: %s", e.msg);
	if (workers_start(f->w, &e) < 0)
		fail_msg("workers_start: %s", e.msg);
	return f->w;
}

/* names[] = "ip:port" of jails 0..n-1; the strings live in f-independent static storage. */
static const char *const *names_of(struct fx *f, int n)
{
	static char buf[MAXJ][WORKER_ADDR_STRLEN];
	static const char *v[MAXJ + 1];
	for (int i = 0; i < n; i++) {
		worker_addr_fmt(f->j[i].addr, buf[i]);
		v[i] = buf[i];
	}
	v[n] = NULL;
	return v;
}

static bool info_of(struct workers *w, struct worker_addr a, struct worker_info *out)
{
	struct worker_info v[16];
	size_t n = workers_list(w, v, 16);
	for (size_t i = 0; i < n && i < 16; i++)
		if (v[i].addr.ip_be == a.ip_be && v[i].addr.port == a.port) {
			*out = v[i];
			return true;
		}
	return false;
}

static bool is_up(struct workers *w, struct worker_addr a)
{
	struct worker_info i;
	return info_of(w, a, &i) && i.up;
}

static bool has_status(struct workers *w, struct worker_addr a, enum worker_status s)
{
	struct worker_info i;
	return info_of(w, a, &i) && i.up && i.status == s;
}

static bool load_is(struct workers *w, struct worker_addr a, long long load)
{
	struct worker_info i;
	return info_of(w, a, &i) && i.up && i.load == load;
}

static bool in_names(struct workers *w, struct worker_addr a)
{
	struct worker_info i;
	return info_of(w, a, &i) && i.in_names;
}

static int ready_count(struct workers *w)
{
	struct workers_summary s;
	workers_summary(w, &s);
	return s.ready;
}

static bool same(struct worker_addr a, struct worker_addr b)
{
	return a.ip_be == b.ip_be && a.port == b.port;
}

/* Picks n times (counting nothing) and tallies which jail each pick was; -1 picks and picks
 * of addresses that are no jail of f are counted in tally[MAXJ]. */
static void pick_tally(struct fx *f, int n, const struct worker_addr *ex, size_t nex,
		       int tally[MAXJ + 1])
{
	memset(tally, 0, sizeof(int) * (MAXJ + 1));
	for (int k = 0; k < n; k++) {
		struct worker_addr a;
		int slot = MAXJ;
		if (workers_pick(f->w, ex, nex, &a) == 0)
			for (int i = 0; i < MAXJ; i++)
				if (f->j[i].port && same(a, f->j[i].addr))
					slot = i;
		tally[slot]++;
	}
}

/* Sends one interactive `request` to jail j directly: without a sandbox the task is kept
 * until its time-to-live, so it counts in the worker's load. */
static void add_task(struct jail *j)
{
	static const char body[] =
	    "{\"method\":\"request\",\"params\":{\"files\":{\"a.sh\":\"x\"},\"execute\":\"a.sh\","
	    "\"interactive\":1,\"lang\":\"C\"},\"id\":\"1\"}";
	char url[128];
	snprintf(url, sizeof url, "http://%s:%u%s", j->ip, j->port, URLPATH);
	CURL *c = curl_easy_init();
	assert_non_null(c);
	FILE *sink = fopen("/dev/null", "w");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_PROXY, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, sink);
	CURLcode cc = curl_easy_perform(c);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(c);
	fclose(sink);
	assert_int_equal(cc, CURLE_OK);
	assert_int_equal(code, 200);
}

/* ---- tests ---- */

static void config_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "nohost", ":80",	  "h:0",    "h:65536",	   "h:8x",
	    "h:",     "[::1]:80", "::1:80", "bad host:80", "h:99999999999999999999",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *names[] = {bad[i], NULL};
		struct workers_config cfg = {.names = names};
		struct err e = {0};
		struct workers *w = workers_new(&cfg, &e);
		if (w)
			fail_msg("accepted worker name '%s'", bad[i]);
		assert_true(e.msg[0] != '\0');
	}
	const char *none[] = {NULL};
	struct workers_config cfg = {.names = none};
	assert_null(workers_new(&cfg, NULL));
	cfg.names = NULL;
	assert_null(workers_new(&cfg, NULL));

	const char *good[] = {"127.0.0.1:80", "tasks.vplcell_worker:8080", "10.0.0.7:65535", NULL};
	cfg.names = good;
	static const char *const bad_paths[] = {"x", "/a b", "/a?b", "/a#b", "/\x7f", "/\xc3\xa9"};
	for (size_t i = 0; i < sizeof bad_paths / sizeof bad_paths[0]; i++) {
		cfg.urlpath = bad_paths[i];
		assert_null(workers_new(&cfg, NULL));
	}
	cfg.urlpath = "/ok";
	static const char *const bad_secrets[] = {"", "a\r\nX-Evil: 1", "tab\there"};
	for (size_t i = 0; i < sizeof bad_secrets / sizeof bad_secrets[0]; i++) {
		cfg.secret = bad_secrets[i];
		struct err e = {0};
		assert_null(workers_new(&cfg, &e));
		assert_null(strstr(e.msg, "Evil")); /* the error never quotes the secret */
	}
	cfg.secret = "fine";
	struct err e = {0};
	struct workers *w = workers_new(&cfg, &e);
	assert_non_null(w);
	/* Not started: nothing known, nothing to pick; free without a thread. */
	struct worker_addr a;
	assert_int_equal(workers_pick(w, NULL, 0, &a), -1);
	workers_free(w);
	workers_free(NULL);

	char s[WORKER_ADDR_STRLEN];
	struct worker_addr x = {.port = 65535};
	inet_pton(AF_INET, "255.255.255.255", &x.ip_be);
	assert_string_equal(worker_addr_fmt(x, s), "255.255.255.255:65535");
}

/* All up, equal load: ties rotate, and inflight counts until the next poll (the long health
 * interval means no poll clears it during the test). */
static void inflight_spreads_picks(void **state)
{
	struct fx *f = *state;
	const char *lo[] = {"127.0.0.1", NULL};
	for (int i = 0; i < 3; i++)
		jail_start(f, i, "127.0.0.1", free_port(lo), NULL);
	struct workers *w = start_workers(f, names_of(f, 3), 600000, 5000, 0, 0);
	WAIT_UNTIL(ready_count(w) == 3);

	int t[MAXJ + 1];
	pick_tally(f, 3, NULL, 0, t);
	assert_int_equal(t[0], 1);
	assert_int_equal(t[1], 1);
	assert_int_equal(t[2], 1);

	for (int k = 0; k < 9; k++) {
		struct worker_addr a;
		assert_int_equal(workers_pick(w, NULL, 0, &a), 0);
		workers_inflight(w, a, +1);
	}
	for (int i = 0; i < 3; i++) {
		struct worker_info inf;
		assert_true(info_of(w, f->j[i].addr, &inf));
		assert_int_equal(inf.inflight, 3);
	}
	/* Two tasks to jail 1 never arrived: it is now the least loaded. */
	workers_inflight(w, f->j[1].addr, -1);
	workers_inflight(w, f->j[1].addr, -1);
	pick_tally(f, 5, NULL, 0, t);
	assert_int_equal(t[1], 5);
	struct workers_summary s;
	workers_summary(w, &s);
	assert_int_equal(s.load, 7);
	struct worker_addr unknown = {.ip_be = htonl(0x7f000001), .port = 1};
	workers_inflight(w, unknown, +5); /* ignored */
	assert_false(workers_known(w, unknown));
	workers_summary(w, &s);
	assert_int_equal(s.load, 7);
}

/* Real load from the workers' `available`, the summary's sums and limits. */
static void load_and_summary(void **state)
{
	struct fx *f = *state;
	const char *lo[] = {"127.0.0.1", NULL};
	jail_start(f, 0, "127.0.0.1", free_port(lo), "MAXMEMORY=100M\nMAXTIME=100\n");
	jail_start(f, 1, "127.0.0.1", free_port(lo),
		   "MAXMEMORY=300M\nMAXTIME=300\nMAXPROCESSES=33\nMAXFILESIZE=3M\n");
	jail_start(f, 2, "127.0.0.1", free_port(lo), "MAXMEMORY=200M\nMAXTIME=200\n");
	struct workers *w = start_workers(f, names_of(f, 3), 200, 0, 0, 0);
	WAIT_UNTIL(ready_count(w) == 3);

	struct workers_summary s;
	workers_summary(w, &s);
	assert_int_equal(s.total, 3);
	assert_int_equal(s.up, 3);
	assert_int_equal(s.ready, 3);
	assert_int_equal(s.load, 0);
	assert_int_equal(s.maxmemory, 300LL << 20);
	assert_int_equal(s.maxtime, 300);
	assert_int_equal(s.maxprocesses, 33);
	assert_int_equal(s.maxfilesize, 3LL << 20);

	add_task(&f->j[1]);
	add_task(&f->j[1]);
	WAIT_UNTIL(load_is(w, f->j[1].addr, 2));
	int t[MAXJ + 1];
	pick_tally(f, 30, NULL, 0, t);
	assert_int_equal(t[1], 0);
	assert_int_equal(t[0], 15); /* equal load 0: they alternate */
	assert_int_equal(t[2], 15);
	workers_summary(w, &s);
	assert_int_equal(s.load, 2);

	/* Draining the largest one: limits come from the largest ready one left. */
	int fd = open(f->j[1].drain, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	WAIT_UNTIL(has_status(w, f->j[1].addr, WORKER_OFFLINE));
	workers_summary(w, &s);
	assert_int_equal(s.ready, 2);
	assert_int_equal(s.offline, 1);
	assert_int_equal(s.up, 3);
	assert_int_equal(s.maxmemory, 200LL << 20);
	assert_int_equal(s.maxtime, 200);
}

/* A drained worker (`available` says offline) is known but never picked, and comes back. */
static void drained_never_picked(void **state)
{
	struct fx *f = *state;
	const char *lo[] = {"127.0.0.1", NULL};
	jail_start(f, 0, "127.0.0.1", free_port(lo), NULL);
	jail_start(f, 1, "127.0.0.1", free_port(lo), NULL);
	int fd = open(f->j[1].drain, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	struct workers *w = start_workers(f, names_of(f, 2), 200, 0, 0, 0);
	WAIT_UNTIL(has_status(w, f->j[1].addr, WORKER_OFFLINE) && ready_count(w) == 1);
	int t[MAXJ + 1];
	for (int round = 0; round < 5; round++) {
		pick_tally(f, 20, NULL, 0, t);
		assert_int_equal(t[0], 20);
		usleep(100000);
	}
	assert_true(workers_known(w, f->j[1].addr));
	struct workers_summary s;
	workers_summary(w, &s);
	assert_int_equal(s.offline, 1);
	assert_int_equal(s.ready, 1);

	assert_int_equal(unlink(f->j[1].drain), 0);
	WAIT_UNTIL(ready_count(w) == 2);
	pick_tally(f, 4, NULL, 0, t);
	assert_int_equal(t[0], 2);
	assert_int_equal(t[1], 2);
}

/* kill -STOP: a hung worker (accepts, never answers) leaves the rotation; -CONT: it is back.
 * Default intervals (1 s, 800 ms): the elapsed time is printed, not asserted. */
static void hung_worker_out_and_back(void **state)
{
	struct fx *f = *state;
	const char *lo[] = {"127.0.0.1", NULL};
	jail_start(f, 0, "127.0.0.1", free_port(lo), NULL);
	jail_start(f, 1, "127.0.0.1", free_port(lo), NULL);
	struct workers *w = start_workers(f, names_of(f, 2), 0, 0, 0, 0);
	WAIT_UNTIL(ready_count(w) == 2);

	assert_int_equal(kill(f->j[1].pid, SIGSTOP), 0);
	long long t0 = now_ms();
	WAIT_UNTIL(!is_up(w, f->j[1].addr));
	printf("  hung worker out of rotation after %lld ms\n", now_ms() - t0);
	struct worker_info inf;
	assert_true(info_of(w, f->j[1].addr, &inf));
	assert_true(inf.error[0] != '\0');
	assert_null(strstr(inf.error, URLPATH));
	assert_true(workers_known(w, f->j[1].addr));
	int t[MAXJ + 1];
	pick_tally(f, 20, NULL, 0, t);
	assert_int_equal(t[0], 20);

	assert_int_equal(kill(f->j[1].pid, SIGCONT), 0);
	t0 = now_ms();
	WAIT_UNTIL(ready_count(w) == 2);
	printf("  back in rotation after %lld ms\n", now_ms() - t0);
	assert_true(info_of(w, f->j[1].addr, &inf));
	assert_string_equal(inf.error, "");
	pick_tally(f, 4, NULL, 0, t);
	assert_int_equal(t[1], 2);
}

/* SIGTERM: down, still known (it is in the config list); a new process on its port is
 * picked up again. The log says so, and never holds the secret or the URL path. */
static void killed_worker_down_known_and_back(void **state)
{
	struct fx *f = *state;
	const char *lo[] = {"127.0.0.1", NULL};
	jail_start(f, 0, "127.0.0.1", free_port(lo), NULL);
	jail_start(f, 1, "127.0.0.1", free_port(lo), NULL);

	snprintf(f->captured, sizeof f->captured, "%s/captured.log", f->dir);
	int cap = open(f->captured, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(cap >= 0);
	fflush(stderr);
	f->saved_stderr = dup(2);
	dup2(cap, 2);
	close(cap);

	struct workers *w = start_workers(f, names_of(f, 2), 200, 0, 0, 0);
	WAIT_UNTIL(ready_count(w) == 2);
	jail_stop_clean(&f->j[1]);
	WAIT_UNTIL(!is_up(w, f->j[1].addr));
	assert_true(workers_known(w, f->j[1].addr));
	int t[MAXJ + 1];
	pick_tally(f, 10, NULL, 0, t);
	assert_int_equal(t[0], 10);
	struct workers_summary s;
	workers_summary(w, &s);
	assert_int_equal(s.total, 2);
	assert_int_equal(s.up, 1);
	assert_int_equal(s.ready, 1);

	jail_start(f, 1, "127.0.0.1", f->j[1].port, NULL);
	WAIT_UNTIL(ready_count(w) == 2);

	workers_free(w);
	f->w = NULL;
	stderr_restore(f);
	FILE *in = fopen(f->captured, "r");
	assert_non_null(in);
	char text[16384];
	size_t n = fread(text, 1, sizeof text - 1, in);
	fclose(in);
	text[n] = '\0';
	char a1[WORKER_ADDR_STRLEN], line[128];
	worker_addr_fmt(f->j[1].addr, a1);
	snprintf(line, sizeof line, "worker %s down", a1);
	assert_non_null(strstr(text, line));
	snprintf(line, sizeof line, "worker %s up", a1);
	assert_non_null(strstr(text, line));
	assert_null(strstr(text, SECRET));
	assert_null(strstr(text, URLPATH));
}

/* The exclude list, and workers_failed(): out at once, back after the next good poll. */
static void exclude_and_data_path_failure(void **state)
{
	struct fx *f = *state;
	const char *lo[] = {"127.0.0.1", NULL};
	for (int i = 0; i < 3; i++)
		jail_start(f, i, "127.0.0.1", free_port(lo), NULL);
	struct workers *w = start_workers(f, names_of(f, 3), 300, 0, 0, 0);
	WAIT_UNTIL(ready_count(w) == 3);

	int t[MAXJ + 1];
	struct worker_addr ex[3] = {f->j[0].addr, f->j[1].addr, f->j[2].addr};
	pick_tally(f, 10, ex, 2, t);
	assert_int_equal(t[2], 10);
	pick_tally(f, 10, &ex[1], 1, t);
	assert_int_equal(t[0], 5);
	assert_int_equal(t[2], 5);
	struct worker_addr a;
	assert_int_equal(workers_pick(w, ex, 3, &a), -1);

	workers_failed(w, f->j[0].addr);
	assert_false(is_up(w, f->j[0].addr));
	assert_true(workers_known(w, f->j[0].addr));
	pick_tally(f, 10, NULL, 0, t);
	assert_int_equal(t[0], 0);
	assert_int_equal(t[1] + t[2], 10);
	WAIT_UNTIL(ready_count(w) == 3); /* it does answer: the health thread brings it back */
	pick_tally(f, 3, NULL, 0, t);
	assert_int_equal(t[0], 1);
}

/* ---- DNS: a private mount namespace with our own /etc/hosts ---- */

#define HOSTS_SIZE 512

/* Same size every time, written with one pwrite at offset 0 over the same inode (it is
 * bind-mounted): a lookup never sees a half-written file. */
static void hosts_write(struct fx *f, bool a, bool b)
{
	char text[HOSTS_SIZE + 1];
	int n = snprintf(text, sizeof text, "127.0.0.1 localhost\n%s%s",
			 a ? "127.0.0.2 vplw.test\n" : "", b ? "127.0.0.3 vplw.test\n" : "");
	memset(text + n, '#', HOSTS_SIZE - 1 - (size_t)n);
	text[HOSTS_SIZE - 1] = '\n';
	int fd = open(f->hosts, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, text, HOSTS_SIZE, 0), HOSTS_SIZE);
	close(fd);
}

/* Returns false (and the test skips) where mount namespaces are not allowed. */
static bool hosts_mount(struct fx *f)
{
	snprintf(f->hosts, sizeof f->hosts, "%s/hosts", f->dir);
	hosts_write(f, true, false);
	if (unshare(CLONE_NEWNS) < 0) {
		printf("  unshare(CLONE_NEWNS): %s: DNS test skipped\n", strerror(errno));
		return false;
	}
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		fail_msg("making / private: %s", strerror(errno));
	if (mount(f->hosts, "/etc/hosts", NULL, MS_BIND, NULL) < 0)
		fail_msg("bind-mounting a hosts file: %s", strerror(errno));
	f->hosts_mounted = true;
	return true;
}

static void start_dns_pair(struct fx *f)
{
	const char *ips[] = {"127.0.0.2", "127.0.0.3", NULL};
	uint16_t port = free_port(ips);
	jail_start(f, 0, "127.0.0.2", port, NULL);
	jail_start(f, 1, "127.0.0.3", port, NULL);
}

/* A name with several A records: one worker per record; records added and removed while
 * running; a removed one stays known while it answers and is dropped once it stops. */
static void dns_records_follow(void **state)
{
	struct fx *f = *state;
	if (!hosts_mount(f))
		skip();
	start_dns_pair(f);
	char name[64];
	snprintf(name, sizeof name, "vplw.test:%u", f->j[0].port);
	const char *names[] = {name, NULL};
	struct workers *w = start_workers(f, names, 200, 0, 200, 0);
	WAIT_UNTIL(ready_count(w) == 1);
	assert_false(workers_known(w, f->j[1].addr));

	hosts_write(f, true, true); /* a replica is added */
	WAIT_UNTIL(ready_count(w) == 2);
	int t[MAXJ + 1];
	pick_tally(f, 4, NULL, 0, t);
	assert_int_equal(t[0], 2);
	assert_int_equal(t[1], 2);

	hosts_write(f, true, false); /* and removed: it keeps answering */
	WAIT_UNTIL(!in_names(w, f->j[1].addr));
	assert_true(workers_known(w, f->j[1].addr));
	assert_true(is_up(w, f->j[1].addr));
	pick_tally(f, 20, NULL, 0, t);
	assert_int_equal(t[0], 20);
	struct workers_summary s;
	workers_summary(w, &s);
	assert_int_equal(s.total, 2);
	assert_int_equal(s.ready, 1);

	hosts_write(f, true, true); /* back in DNS */
	WAIT_UNTIL(in_names(w, f->j[1].addr) && ready_count(w) == 2);

	hosts_write(f, true, false);
	WAIT_UNTIL(!in_names(w, f->j[1].addr));
	jail_stop_clean(&f->j[1]); /* its tasks are over: once down it is dropped */
	WAIT_UNTIL(!workers_known(w, f->j[1].addr));
	assert_true(workers_known(w, f->j[0].addr));
	assert_int_equal(ready_count(w), 1);
}

/* A worker gone from DNS that still answers is dropped when its grace time ends. */
static void dns_gone_grace_ends(void **state)
{
	struct fx *f = *state;
	if (!hosts_mount(f))
		skip();
	hosts_write(f, true, true);
	start_dns_pair(f);
	char name[64];
	snprintf(name, sizeof name, "vplw.test:%u", f->j[0].port);
	const char *names[] = {name, NULL};
	struct workers *w = start_workers(f, names, 200, 0, 200, 1000);
	WAIT_UNTIL(ready_count(w) == 2);
	hosts_write(f, false, true);
	WAIT_UNTIL(!in_names(w, f->j[0].addr));
	WAIT_UNTIL(!workers_known(w, f->j[0].addr));
	assert_int_equal(kill(f->j[0].pid, 0), 0); /* it was alive and answering all along */
	assert_true(workers_known(w, f->j[1].addr));
	int t[MAXJ + 1];
	pick_tally(f, 5, NULL, 0, t);
	assert_int_equal(t[1], 5);
}

int main(void)
{
	if (!find_jail_binary()) {
		fprintf(stderr, "vpl-jail not found at %s (build it, or set VPL_BUILD)\n",
			g_jail_bin);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(kill_leftovers);
	log_open("test_proxy_workers", 0, LOG_LVL_INFO);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(config_refused),
	    cmocka_unit_test_setup_teardown(inflight_spreads_picks, setup, teardown),
	    cmocka_unit_test_setup_teardown(load_and_summary, setup, teardown),
	    cmocka_unit_test_setup_teardown(drained_never_picked, setup, teardown),
	    cmocka_unit_test_setup_teardown(hung_worker_out_and_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(killed_worker_down_known_and_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(exclude_and_data_path_failure, setup, teardown),
	    cmocka_unit_test_setup_teardown(dns_records_follow, setup, teardown),
	    cmocka_unit_test_setup_teardown(dns_gone_grace_ends, setup, teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
