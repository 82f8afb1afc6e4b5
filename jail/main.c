/*
 * vpl-jail - a VPL jail execution server worker.
 *
 *   vpl-jail [-f FILE]      run in the foreground (default /etc/vplcell/vpl-jail.conf)
 *   vpl-jail -t [-f FILE]   check the configuration, print the effective values, exit
 *   vpl-jail --check [-f FILE]   check the host (containerd, runtime, ...): sandbox/envcheck_ctr.h
 *   vpl-jail --version
 *   vpl-jail [-f FILE] image list|pull|import|rm ...   (images/image_cli.h)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "images/image_cli.h"
#include "http_reply.h"
#include "jail.h"
#include "jail_metrics.h"
#include "log.h"
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
