/*
 * vpl-jail - a VPL jail execution server worker.
 *
 *   vpl-jail [-f FILE]      run in the foreground (default /etc/vplcell/vpl-jail.conf)
 *   vpl-jail -t [-f FILE]   check the configuration, print the effective values, exit
 *   vpl-jail --check [-f FILE]   check the host (containerd, runtime, ...): sandbox/envcheck_ctr.h
 *   vpl-jail --version
 *   vpl-jail [-f FILE] image list|pull|import|rm ...   (images/image_cli.h)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "images/image_cli.h"
#include "http_reply.h"
#include "jail.h"
#include "jail_metrics.h"
#include "log.h"
#include "privsep_drop.h"
#include "privsep_keeper.h"
#include "privsep_parser.h"
#include "sandbox/envcheck_ctr.h"
#include "sandbox/sandbox.h"
#include "server.h"
#include "tlsfiles.h"

#define DEFAULT_CONFIG "/etc/vplcell/vpl-jail.conf"

static int start_task(void *sandbox, struct task *t, struct err *err)
{
	return sandbox_start(sandbox, t, err);
}

static int exec_attach(void *sandbox, struct task *t, const struct exec_sink *sink, struct err *err)
{
	return sandbox_exec_attach(sandbox, t, sink, err);
}

static int exec_input(void *sandbox, struct task *t, const void *data, size_t len, struct err *err)
{
	return sandbox_exec_input(sandbox, t, data, len, err);
}

static void exec_pause(void *sandbox, struct task *t, bool paused)
{
	sandbox_exec_pause(sandbox, t, paused);
}

static void exec_detach(void *sandbox, struct task *t)
{
	sandbox_exec_detach(sandbox, t);
}

static void *web_open(void *sandbox, struct task *t, const struct web_sink *sink, struct err *err)
{
	return sandbox_web_open(sandbox, t, sink, err);
}

static long web_input(void *sandbox, void *relay, const void *data, size_t len)
{
	return sandbox_web_input(sandbox, relay, data, len);
}

static long web_queued(void *sandbox, void *relay)
{
	return sandbox_web_queued(sandbox, relay);
}

static void web_pause(void *sandbox, void *relay, bool paused)
{
	sandbox_web_pause(sandbox, relay, paused);
}

static void web_close(void *sandbox, void *relay)
{
	sandbox_web_close(sandbox, relay);
}

static int update_task(void *sandbox, struct task *t, struct task_files *files,
		       void (*done)(void *arg, int ok), void *arg, struct err *err)
{
	return sandbox_update(sandbox, t, files, done, arg, err);
}

static bool task_progress(void *sandbox, struct task *t, char *out, size_t n)
{
	return sandbox_task_progress(sandbox, t, out, n);
}

#ifdef VPLCELL_TEST_HOOKS
/* tests/privsep/probe.c: what a compromised parser could reach (test builds only). */
void privsep_probe(const struct jail_config *cfg);
#endif

static void on_tls(void *arg, const void *cert, size_t cert_len, const void *key, size_t key_len)
{
	struct err e;
	if (server_tls_reload_mem(arg, cert, cert_len, key, key_len, &e) < 0)
		log_err("SIGHUP: keeping the current certificate: %s", e.msg);
	else
		log_info("SIGHUP: certificate reloaded");
}

static void on_term(void *arg)
{
	server_signal(arg, SIGTERM);
}

static void on_keeper_gone(void *arg, const char *why)
{
	log_err("privsep: %s: stopping", why);
	server_stop(arg);
}

/* The parser process (privsep.h): sockets and protocol, then privileges dropped. Returns the
 * exit status. */
static int parser_main(struct jail *j, int fd, uid_t uid, gid_t gid, const char *root, pid_t keeper)
{
	struct err e;
	struct psp *psp = NULL;
	struct server *s = NULL;
	int rc = 1;
	j->signals_from_keeper = true;
	if (!(j->ev = evloop_new(&e)) || !(psp = psp_install(j, fd, &e))) {
		log_err("privsep: %s", e.msg);
		goto out;
	}
	if (j->cfg.fail2ban > 0 && !(j->f2b = f2b_new(j->cfg.fail2ban))) {
		log_err("out of memory");
		goto out;
	}
	if (psp_wait_ready(psp) < 0)
		goto out; /* the keeper said why */
	if (jail_metrics_init(j, &e) < 0 || !(s = server_new(j, &e))) {
		log_err("%s", e.msg);
		goto out;
	}
	if (privsep_drop(uid, gid, root, keeper, &e) < 0) {
		log_err("privsep: %s", e.msg);
		goto out;
	}
	if (j->cfg.certbot_webroot_path) {
		/* the webroot is our root now */
		free(j->cfg.certbot_webroot_path);
		j->cfg.certbot_webroot_path = strdup("");
	}
	log_info("privsep: network parser runs as uid %u in %s, own network namespace",
		 (unsigned)uid, root);
#ifdef VPLCELL_TEST_HOOKS
	privsep_probe(&j->cfg);
#endif
	struct psp_control ctl = {on_tls, on_term, on_keeper_gone, s};
	psp_on_control(psp, &ctl);
	rc = server_run(s);
out:
	/* The keeper stops every run when we are gone: nothing to release one by one. */
	task_table_set_release(j->tasks, NULL, NULL);
	server_free(s);
	jail_metrics_free(j);
	f2b_free(j->f2b);
	task_table_free(j->tasks);
	psp_free(psp);
	evloop_free(j->ev);
	jail_config_free(&j->cfg);
	return rc;
}

/* Splits the worker in two (privsep.h). Returns the exit status. */
static int run_privsep(struct jail *j)
{
	struct err e;
	uid_t uid;
	gid_t gid;
	char root[4096];
	if (privsep_resolve_user(j->cfg.privsep_user, &uid, &gid, &e) < 0 ||
	    (j->cfg.certbot_webroot_path
		 ? snprintf(root, sizeof root, "%s", j->cfg.certbot_webroot_path) < 0
		 : privsep_empty_root(j->cfg.state_dir, root, sizeof root, &e) < 0)) {
		log_err("privsep: %s", e.msg);
		return 1;
	}
	if ((long long)uid >= j->cfg.prisoner_uid &&
	    (long long)uid < (long long)j->cfg.prisoner_uid + j->cfg.prisoner_uids) {
		log_err("privsep: PRIVSEP_USER %s (uid %u) is in the PRISONER_UID range",
			j->cfg.privsep_user, (unsigned)uid);
		return 1;
	}
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		log_err("privsep: socketpair: %m");
		return 1;
	}
	pid_t keeper = getpid();
	/* The parser gets a pid namespace of its own (it can then signal no process but itself:
	 * not another worker's parser, which has the same uid). Its parent must stay in ours, so
	 * two forks: the first unshares and forks the parser, tells us its pid and exits; the
	 * parser is then reparented to us (child subreaper). Plain fork()s, before grpc_init()
	 * (in the keeper's sandbox_new): grpc forbids fork after it. */
	int pp[2];
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || pipe2(pp, O_CLOEXEC) < 0) {
		log_err("privsep: %m");
		return 1;
	}
	pid_t mid = fork();
	if (mid < 0) {
		log_err("privsep: fork: %m");
		return 1;
	}
	if (mid == 0) {
		close(sv[0]);
		close(pp[0]);
		if (unshare(CLONE_NEWPID) < 0) {
			log_err("privsep: unshare(CLONE_NEWPID): %m");
			_exit(1);
		}
		pid_t pid = fork();
		if (pid == 0) {
			close(pp[1]);
			_exit(parser_main(j, sv[1], uid, gid, root, keeper));
		}
		_exit(pid > 0 && write(pp[1], &pid, sizeof pid) == (ssize_t)sizeof pid ? 0 : 1);
	}
	close(pp[1]);
	pid_t pid = -1;
	int st;
	if (read(pp[0], &pid, sizeof pid) != (ssize_t)sizeof pid)
		pid = -1;
	close(pp[0]);
	while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
		;
	if (pid <= 0) {
		log_err("privsep: the parser process could not be started");
		close(sv[0]);
		close(sv[1]);
		return 1;
	}
	close(sv[1]);
	task_table_free(j->tasks); /* the parser's: the keeper keeps mirrors of its own */
	j->tasks = NULL;
	return keeper_run(&j->cfg, sv[0], pid);
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vpl-jail [-f CONFIG] [-t | --check] [--version]\n"
		"       vpl-jail [-f CONFIG] image list|pull NAME|import FILE [NAME]|rm NAME\n"
		"  -f CONFIG   configuration file (default " DEFAULT_CONFIG ")\n"
		"  -t          check the configuration, print effective values, exit\n"
		"  --check     check this host (containerd, runtime, cgroups, image, ...), exit\n");
}

int main(int argc, char **argv)
{
	/* Task directories and FIFOs are made for the prisoner and runc to reach: an inherited
	 * umask 077 (a hardened shell, a service manager) must not make them root-only. */
	umask(022);
	const char *path = DEFAULT_CONFIG;
	int test_only = 0;
	int env_check = 0;
	int image_argi = 0;
	for (int i = 1; i < argc && !image_argi; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "-t") == 0) {
			test_only = 1;
		} else if (strcmp(argv[i], "--check") == 0) {
			env_check = 1;
		} else if (strcmp(argv[i], "image") == 0) {
			image_argi = i + 1;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("vpl-jail (vplcell) protocol %s\n", VPL_SERVER_HEADER);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}

	if (env_check && !image_argi)
		return envcheck_main(path, stdout);
	log_open("vpl-jail", 0, LOG_LVL_INFO);
	struct jail j;
	memset(&j, 0, sizeof j);
	j.now_ms = jail_monotonic_ms;
	struct err e;
	if (jail_config_load(&j.cfg, path, &e) < 0) {
		log_err("configuration: %s", e.msg);
		jail_config_free(&j.cfg);
		return 1;
	}
	if (image_argi) {
		log_open("vpl-jail", 0, LOG_LVL_WARN);
		int rc = image_cli(&j.cfg, argc - image_argi, argv + image_argi);
		jail_config_free(&j.cfg);
		return rc;
	}
	if (test_only) {
		struct buf b;
		buf_init(&b, 1 << 20);
		if (jail_config_dump(&j.cfg, &b, &e) == 0)
			fwrite(b.data, 1, b.len, stdout);
		buf_free(&b);
		if (j.cfg.secure_port &&
		    tls_files_check(j.cfg.ssl_cert_file, j.cfg.ssl_key_file, &e) < 0) {
			fprintf(stderr, "vpl-jail: %s\n", e.msg);
			jail_config_free(&j.cfg);
			return 1;
		}
		jail_config_free(&j.cfg);
		return 0;
	}
	log_open("vpl-jail", j.cfg.log_syslog, j.cfg.log_level);
	if (j.cfg.port && strcmp(j.cfg.urlpath, "/") != 0)
		log_warn("URLPATH is a secret but PORT %d sends it in clear text", j.cfg.port);

	j.tasks = task_table_new((unsigned)j.cfg.max_tasks, (size_t)j.cfg.result_max_size);
	if (!j.tasks) {
		log_err("out of memory");
		return 1;
	}
	/* Configuration problems first, before anything is started. */
	if (j.cfg.secure_port && tls_files_check(j.cfg.ssl_cert_file, j.cfg.ssl_key_file, &e) < 0) {
		log_err("SECURE_PORT %d: %s", j.cfg.secure_port, e.msg);
		task_table_free(j.tasks);
		jail_config_free(&j.cfg);
		return 1;
	}
	if (j.cfg.containerd_socket && j.cfg.privsep) {
		if (geteuid() == 0) {
			int rc = run_privsep(&j);
			jail_config_free(&j.cfg);
			return rc;
		}
		log_warn("PRIVSEP: not root, so nothing to separate: one process");
	}
	struct sandbox *sb = NULL;
	if (j.cfg.containerd_socket) {
		if (!(j.ev = evloop_new(&e)) || !(sb = sandbox_new(&j.cfg, j.ev, &e))) {
			log_err("sandbox: %s", e.msg);
			evloop_free(j.ev);
			task_table_free(j.tasks);
			jail_config_free(&j.cfg);
			return 1;
		}
		j.sandbox = sb;
		j.start_task = start_task;
		j.exec_attach = exec_attach;
		j.exec_input = exec_input;
		j.exec_pause = exec_pause;
		j.exec_detach = exec_detach;
		j.task_progress = task_progress;
		j.web_open = web_open;
		j.web_input = web_input;
		j.web_queued = web_queued;
		j.web_pause = web_pause;
		j.web_close = web_close;
		j.update_task = update_task;
		task_table_set_release(j.tasks, sandbox_release_task, sb);
	} else {
		log_warn("CONTAINERD_SOCKET is empty: tasks will not be executed");
	}
	if (j.cfg.fail2ban > 0 && !(j.f2b = f2b_new(j.cfg.fail2ban))) {
		log_err("out of memory");
		return 1;
	}
	if (jail_metrics_init(&j, &e) < 0) {
		log_err("%s", e.msg);
		f2b_free(j.f2b);
		sandbox_free(sb);
		task_table_free(j.tasks);
		evloop_free(j.ev);
		jail_config_free(&j.cfg);
		return 1;
	}
	struct server *s = server_new(&j, &e);
	if (!s) {
		log_err("%s", e.msg);
		jail_metrics_free(&j);
		f2b_free(j.f2b);
		sandbox_free(sb);
		task_table_free(j.tasks);
		evloop_free(j.ev);
		jail_config_free(&j.cfg);
		return 1;
	}
	int rc = server_run(s);
	/* Containers first, while the tasks still exist to be detached. */
	sandbox_free(sb);
	task_table_set_release(j.tasks, NULL, NULL);
	server_free(s);
	jail_metrics_free(&j);
	f2b_free(j.f2b);
	task_table_free(j.tasks);
	evloop_free(j.ev);
	jail_config_free(&j.cfg);
	return rc;
}
