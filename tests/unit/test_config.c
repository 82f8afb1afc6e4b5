/* Unit tests for jail/config: defaults, the file, env overrides, the dump. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "cfgfile.h"
#include "config.h"

extern char **environ;

#define MiB (1024LL * 1024)

static char g_path[64];

/* Writes content to a fresh temporary file; its name is in g_path. */
static void write_conf(const char *content)
{
	snprintf(g_path, sizeof g_path, "/tmp/test_config.XXXXXX");
	int fd = mkstemp(g_path);
	assert_true(fd >= 0);
	size_t n = strlen(content);
	assert_int_equal(write(fd, content, n), (ssize_t)n);
	close(fd);
}

static int load_text(const char *content, struct jail_config *c, struct err *e)
{
	write_conf(content);
	err_clear(e);
	int r = jail_config_load(c, g_path, e);
	unlink(g_path);
	return r;
}

static void load_ok(const char *content, struct jail_config *c)
{
	struct err e;
	if (load_text(content, c, &e) != 0)
		fail_msg("load failed: %s", e.msg);
}

/* Expects the load to fail with exactly "<path>:<rest>" (or `rest` alone
 * when it does not start with ':'). */
static void load_fails(const char *content, const char *rest)
{
	struct jail_config c;
	struct err e;
	assert_int_equal(load_text(content, &c, &e), -1);
	char want[512];
	if (rest[0] == ':')
		snprintf(want, sizeof want, "%s%s", g_path, rest);
	else
		snprintf(want, sizeof want, "%s", rest);
	assert_string_equal(e.msg, want);
	assert_int_not_equal(e.code, 0);
	/* a failed load leaves nothing to free */
	assert_null(c.urlpath);
	assert_null(c.envpath);
	assert_null(c.task_only_from.entries);
	jail_config_free(&c);
}

static void clear_vpl_env(void)
{
	for (;;) {
		char name[256] = "";
		for (char **ep = environ; ep && *ep; ep++) {
			if (strncmp(*ep, "VPL_JAIL_", 9) == 0) {
				const char *eq = strchr(*ep, '=');
				size_t n = eq ? (size_t)(eq - *ep) : strlen(*ep);
				if (n < sizeof name) {
					memcpy(name, *ep, n);
					name[n] = '\0';
				}
				break;
			}
		}
		if (!name[0])
			return;
		unsetenv(name);
	}
}

static int setup(void **state)
{
	clear_vpl_env();
	return 0;
}

static int teardown(void **state)
{
	clear_vpl_env();
	return 0;
}

/* Runs fn with stderr captured; returns what was logged (caller frees). */
static char *capture_stderr(int (*fn)(void *), void *arg, int *rc)
{
	char path[] = "/tmp/test_config_log.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fd, STDERR_FILENO) >= 0);
	*rc = fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	off_t size = lseek(fd, 0, SEEK_END);
	char *text = calloc(1, (size_t)size + 1);
	assert_non_null(text);
	assert_int_equal(pread(fd, text, (size_t)size, 0), (ssize_t)size);
	close(fd);
	unlink(path);
	return text;
}

struct load_args {
	const char *content;
	struct jail_config *c;
	struct err *e;
};

static int do_load(void *arg)
{
	struct load_args *a = arg;
	return load_text(a->content, a->c, a->e);
}

static char *load_logged(const char *content, struct jail_config *c, struct err *e, int *rc)
{
	struct load_args a = {content, c, e};
	return capture_stderr(do_load, &a, rc);
}

/* ---- defaults ---- */

static void check_defaults(const struct jail_config *c)
{
	assert_int_equal(c->max_time, 1200);
	assert_int_equal(c->max_file_size, 64 * MiB);
	assert_int_equal(c->max_memory, 2097152000LL);
	assert_int_equal(c->max_processes, 500);
	assert_int_equal(c->port, 80);
	assert_int_equal(c->secure_port, 443);
	assert_null(c->interface);
	assert_string_equal(c->urlpath, "/");
	assert_int_equal(c->task_only_from.count, 0);
	assert_string_equal(c->ssl_cert_file, "/etc/vplcell/cert.pem");
	assert_string_equal(c->ssl_key_file, "/etc/vplcell/key.pem");
	assert_null(c->ssl_cipher_list);
	assert_null(c->ssl_cipher_suites);
	assert_int_equal(c->hsts_max_age, -1);
	assert_int_equal(c->fail2ban, 0);
	assert_int_equal(c->log_level, 6);
	assert_int_equal(c->log_syslog, 0);
	assert_int_equal(c->request_max_size, 128 * MiB);
	assert_int_equal(c->result_max_size, 1 * MiB);
	assert_null(c->certbot_webroot_path);
	assert_string_equal(c->envpath, "/usr/local/bin:/usr/bin:/bin");
	assert_string_equal(c->drain_file, "/etc/nologin");
	assert_int_equal(c->max_tasks, 100);
	assert_int_equal(c->task_ttl_extra, 30);
}

static void test_defaults(void **state)
{
	struct jail_config c;
	memset(&c, 0xa5, sizeof c);
	jail_config_defaults(&c);
	check_defaults(&c);
	jail_config_free(&c);
	assert_null(c.urlpath);
	assert_null(c.envpath);
	jail_config_free(&c); /* twice is fine */
}

static void test_load_without_file(void **state)
{
	struct jail_config c;
	struct err e;
	assert_int_equal(jail_config_load(&c, NULL, &e), 0);
	check_defaults(&c);
	jail_config_free(&c);
}

static void test_load_empty_file(void **state)
{
	struct jail_config c;
	load_ok("# nothing but a comment\n\n", &c);
	check_defaults(&c);
	jail_config_free(&c);
}

/* ---- every key ---- */

static void test_every_key(void **state)
{
	struct jail_config c;
	load_ok("MAXTIME=1800\n"
		"MAXFILESIZE=65M\n"
		"MAXMEMORY=1998 Mbytes\n"
		"MAXPROCESSES=300\n"
		"PORT=8080\n"
		"SECURE_PORT=8443\n"
		"INTERFACE=192.0.2.10\n"
		"URLPATH=secret-path\n"
		"TASK_ONLY_FROM=10.1. 192.168.0.0/16\n"
		"SSL_CERT_FILE=/etc/ssl/c.pem\n"
		"SSL_KEY_FILE=/etc/ssl/k.pem\n"
		"SSL_CIPHER_LIST=ECDHE+AESGCM:!aNULL\n"
		"SSL_CIPHER_SUITES=TLS_AES_256_GCM_SHA384\n"
		"HSTS_MAX_AGE=31536000\n"
		"FAIL2BAN=3\n"
		"LOGLEVEL=7\n"
		"LOG_SYSLOG=yes\n"
		"REQUEST_MAX_SIZE=64 Mb\n"
		"RESULT_MAX_SIZE=2M\n"
		"CERTBOT_WEBROOT_PATH=/var/www/certbot\n"
		"ENVPATH=/opt/bin:/usr/bin\n"
		"DRAIN_FILE=/run/vplcell/drain\n"
		"MAX_TASKS=42\n"
		"TASK_TTL_EXTRA=60\n",
		&c);
	assert_int_equal(c.max_time, 1800);
	assert_int_equal(c.max_file_size, 65 * MiB);
	assert_int_equal(c.max_memory, 1998 * MiB);
	assert_int_equal(c.max_processes, 300);
	assert_int_equal(c.port, 8080);
	assert_int_equal(c.secure_port, 8443);
	assert_string_equal(c.interface, "192.0.2.10");
	assert_string_equal(c.urlpath, "/secret-path");
	assert_int_equal(c.task_only_from.count, 2);
	assert_string_equal(c.ssl_cert_file, "/etc/ssl/c.pem");
	assert_string_equal(c.ssl_key_file, "/etc/ssl/k.pem");
	assert_string_equal(c.ssl_cipher_list, "ECDHE+AESGCM:!aNULL");
	assert_string_equal(c.ssl_cipher_suites, "TLS_AES_256_GCM_SHA384");
	assert_int_equal(c.hsts_max_age, 31536000);
	assert_int_equal(c.fail2ban, 3);
	assert_int_equal(c.log_level, 7);
	assert_int_equal(c.log_syslog, 1);
	assert_int_equal(c.request_max_size, 64 * MiB);
	assert_int_equal(c.result_max_size, 2 * MiB);
	assert_string_equal(c.certbot_webroot_path, "/var/www/certbot");
	assert_string_equal(c.envpath, "/opt/bin:/usr/bin");
	assert_string_equal(c.drain_file, "/run/vplcell/drain");
	assert_int_equal(c.max_tasks, 42);
	assert_int_equal(c.task_ttl_extra, 60);
	jail_config_free(&c);
}

static void test_reference_sample_style(void **state)
{
	/* The way vpl-jail-system.conf is written: comments, quotes, odd case. */
	struct jail_config c;
	load_ok("#\n# VPL jail\n#\n"
		"MaxTime = 600   # seconds\n"
		"MAXMEMORY = \"2000 Mb\"\n"
		"maxfilesize='64 Mb'\n"
		"URLPATH=\"/quoted\"  # the secret\n"
		"TASK_ONLY_FROM=\"10.1. 10.2.\"\n",
		&c);
	assert_int_equal(c.max_time, 600);
	assert_int_equal(c.max_memory, 2097152000LL);
	assert_int_equal(c.max_file_size, 64 * MiB);
	assert_string_equal(c.urlpath, "/quoted");
	assert_int_equal(c.task_only_from.count, 2);
	jail_config_free(&c);
}

static void test_crlf_file(void **state)
{
	struct jail_config c;
	load_ok("# windows editor\r\nMAXTIME=99\r\nENVPATH=/bin\r\nURLPATH=/x\r\n", &c);
	assert_int_equal(c.max_time, 99);
	assert_string_equal(c.envpath, "/bin");
	assert_string_equal(c.urlpath, "/x");
	jail_config_free(&c);
}

static void test_repeated_key_last_wins(void **state)
{
	struct jail_config c;
	struct err e;
	int rc;
	char *log = load_logged("MAXTIME=10\nMAXTIME=20\n", &c, &e, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(c.max_time, 20);
	char want[128];
	snprintf(want, sizeof want, "%s:2: MAXTIME is set again", g_path);
	assert_non_null(strstr(log, want));
	free(log);
	jail_config_free(&c);
}

/* ---- values ---- */

static void test_urlpath(void **state)
{
	struct jail_config c;
	load_ok("URLPATH=abc\n", &c);
	assert_string_equal(c.urlpath, "/abc");
	jail_config_free(&c);
	load_ok("URLPATH=/abc/def\n", &c);
	assert_string_equal(c.urlpath, "/abc/def");
	jail_config_free(&c);
	load_ok("URLPATH=\n", &c);
	assert_string_equal(c.urlpath, "/");
	jail_config_free(&c);
	load_ok("URLPATH=\"\"\n", &c);
	assert_string_equal(c.urlpath, "/");
	jail_config_free(&c);
}

static void test_urlpath_errors_never_show_it(void **state)
{
	struct jail_config c;
	struct err e;
	assert_int_equal(load_text("URLPATH=\"top secret\"\n", &c, &e), -1);
	assert_null(strstr(e.msg, "secret"));
	assert_non_null(strstr(e.msg, ":1: URLPATH: must not contain"));
	assert_int_equal(load_text("URLPATH=a?b\n", &c, &e), -1);
	assert_non_null(strstr(e.msg, "URLPATH"));
	assert_int_equal(load_text("URLPATH=\"a#b\"\n", &c, &e), -1);
	assert_non_null(strstr(e.msg, "URLPATH"));
}

static void test_interface(void **state)
{
	struct jail_config c;
	load_ok("INTERFACE=127.0.0.1\n", &c);
	assert_string_equal(c.interface, "127.0.0.1");
	jail_config_free(&c);
	load_ok("INTERFACE=::1\n", &c);
	assert_string_equal(c.interface, "::1");
	jail_config_free(&c);
	load_ok("INTERFACE=2001:db8::10\n", &c);
	assert_string_equal(c.interface, "2001:db8::10");
	jail_config_free(&c);
	load_ok("INTERFACE=\n", &c);
	assert_null(c.interface);
	jail_config_free(&c);
	load_fails("INTERFACE=localhost\n",
		   ":1: INTERFACE: 'localhost' is not an IPv4 or IPv6 address (empty = all)");
	load_fails("\nINTERFACE=[::1]\n",
		   ":2: INTERFACE: '[::1]' is not an IPv4 or IPv6 address (empty = all)");
	load_fails("INTERFACE=10.0.0\n",
		   ":1: INTERFACE: '10.0.0' is not an IPv4 or IPv6 address (empty = all)");
}

static void test_task_only_from(void **state)
{
	struct jail_config c;
	load_ok("TASK_ONLY_FROM=10.1. 2001:db8::/32\n", &c);
	assert_int_equal(c.task_only_from.count, 2);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	inet_pton(AF_INET, "10.1.7.7", &sin.sin_addr);
	assert_true(netacl_allows(&c.task_only_from, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "10.2.7.7", &sin.sin_addr);
	assert_false(netacl_allows(&c.task_only_from, (struct sockaddr *)&sin));
	jail_config_free(&c);
	load_ok("TASK_ONLY_FROM=\n", &c);
	assert_int_equal(c.task_only_from.count, 0);
	jail_config_free(&c);
	load_fails("TASK_ONLY_FROM=10.1. intranet\n",
		   ":1: TASK_ONLY_FROM: entry 'intranet': not an address, address prefix or "
		   "CIDR block");
}

static void test_optional_strings_empty_means_unset(void **state)
{
	struct jail_config c;
	load_ok("SSL_CIPHER_LIST=\nSSL_CIPHER_SUITES=\"\"\nCERTBOT_WEBROOT_PATH=\nDRAIN_FILE=\n"
		"HSTS_MAX_AGE=\n",
		&c);
	assert_null(c.ssl_cipher_list);
	assert_null(c.ssl_cipher_suites);
	assert_null(c.certbot_webroot_path);
	assert_null(c.drain_file);
	assert_int_equal(c.hsts_max_age, -1);
	jail_config_free(&c);
}

static void test_strings_empty_means_default(void **state)
{
	struct jail_config c;
	load_ok("SSL_CERT_FILE=\nSSL_KEY_FILE=\nENVPATH=\n", &c);
	assert_string_equal(c.ssl_cert_file, "/etc/vplcell/cert.pem");
	assert_string_equal(c.ssl_key_file, "/etc/vplcell/key.pem");
	assert_string_equal(c.envpath, "/usr/local/bin:/usr/bin:/bin");
	jail_config_free(&c);
}

static void test_paths_must_be_absolute(void **state)
{
	load_fails("SSL_CERT_FILE=cert.pem\n",
		   ":1: SSL_CERT_FILE: 'cert.pem' is not an absolute path");
	load_fails("SSL_KEY_FILE=./k\n", ":1: SSL_KEY_FILE: './k' is not an absolute path");
	load_fails("CERTBOT_WEBROOT_PATH=www\n",
		   ":1: CERTBOT_WEBROOT_PATH: 'www' is not an absolute path");
	load_fails("DRAIN_FILE=nologin\n", ":1: DRAIN_FILE: 'nologin' is not an absolute path");
}

static void test_bad_values(void **state)
{
	load_fails("MAXTIME=abc\n", ":1: MAXTIME: 'abc' is not an integer");
	load_fails("MAXTIME=0\n", ":1: MAXTIME: 0 is out of range [1, 31536000]");
	load_fails("MAXTIME=\n", ":1: MAXTIME: '' is not an integer");
	load_fails("MAXTIME=10s\n", ":1: MAXTIME: '10s' is not an integer");
	load_fails("# c\nMAXFILESIZE=0\n",
		   ":2: MAXFILESIZE: 0 bytes is out of range [1, 9223372036854775807]");
	load_fails("MAXMEMORY=lots\n",
		   ":1: MAXMEMORY: 'lots' is not a size (expected a number, then K, M or G)");
	load_fails("MAXMEMORY=-1M\n", ":1: MAXMEMORY: negative size '-1M'");
	load_fails("MAXMEMORY=99999999999G\n", ":1: MAXMEMORY: size '99999999999G' is too large");
	load_fails("MAXMEMORY=\n", ":1: MAXMEMORY: empty size");
	load_fails("MAXPROCESSES=0\n", ":1: MAXPROCESSES: 0 is out of range [1, 4194304]");
	load_fails("PORT=65536\n", ":1: PORT: 65536 is out of range [0, 65535]");
	load_fails("SECURE_PORT=-1\n", ":1: SECURE_PORT: -1 is out of range [0, 65535]");
	load_fails("HSTS_MAX_AGE=-5\n", ":1: HSTS_MAX_AGE: -5 is out of range [0, 2147483647]");
	load_fails("FAIL2BAN=1001\n", ":1: FAIL2BAN: 1001 is out of range [0, 1000]");
	load_fails("LOGLEVEL=9\n", ":1: LOGLEVEL: 9 is out of range [0, 8]");
	load_fails(
	    "LOG_SYSLOG=maybe\n",
	    ":1: LOG_SYSLOG: 'maybe' is not a boolean (use true/false, yes/no, on/off, 1/0)");
	load_fails("REQUEST_MAX_SIZE=0\n",
		   ":1: REQUEST_MAX_SIZE: 0 bytes is out of range [1, 4294967296]");
	load_fails("REQUEST_MAX_SIZE=4097M\n",
		   ":1: REQUEST_MAX_SIZE: 4296015872 bytes is out of range [1, 4294967296]");
	load_fails("RESULT_MAX_SIZE=2G\n",
		   ":1: RESULT_MAX_SIZE: 2147483648 bytes is out of range [1, 1073741824]");
	load_fails("RESULT_MAX_SIZE=1 T\n",
		   ":1: RESULT_MAX_SIZE: '1 T' is not a size (the unit must be K, M or G)");
	load_fails("MAX_TASKS=0\n", ":1: MAX_TASKS: 0 is out of range [1, 100000]");
	load_fails("MAX_TASKS=100001\n", ":1: MAX_TASKS: 100001 is out of range [1, 100000]");
	load_fails("TASK_TTL_EXTRA=86401\n",
		   ":1: TASK_TTL_EXTRA: 86401 is out of range [0, 86400]");
}

static void test_bounds_accepted(void **state)
{
	struct jail_config c;
	load_ok("MAXTIME=1\nLOGLEVEL=0\nFAIL2BAN=1000\nPORT=0\nSECURE_PORT=65535\n"
		"MAX_TASKS=100000\nTASK_TTL_EXTRA=0\nHSTS_MAX_AGE=0\nMAXFILESIZE=1\n"
		"REQUEST_MAX_SIZE=4G\nRESULT_MAX_SIZE=1G\n",
		&c);
	assert_int_equal(c.max_time, 1);
	assert_int_equal(c.log_level, 0);
	assert_int_equal(c.fail2ban, 1000);
	assert_int_equal(c.port, 0);
	assert_int_equal(c.secure_port, 65535);
	assert_int_equal(c.max_tasks, 100000);
	assert_int_equal(c.task_ttl_extra, 0);
	assert_int_equal(c.hsts_max_age, 0);
	assert_int_equal(c.max_file_size, 1);
	assert_int_equal(c.request_max_size, 4096 * MiB);
	assert_int_equal(c.result_max_size, 1024 * MiB);
	jail_config_free(&c);
	load_ok("LOGLEVEL=8\nSECURE_PORT=0\n", &c);
	assert_int_equal(c.log_level, 8);
	assert_int_equal(c.secure_port, 0);
	assert_int_equal(c.port, 80);
	jail_config_free(&c);
}

static void test_bools(void **state)
{
	struct jail_config c;
	load_ok("LOG_SYSLOG=ON\n", &c);
	assert_int_equal(c.log_syslog, 1);
	jail_config_free(&c);
	load_ok("LOG_SYSLOG=false\n", &c);
	assert_int_equal(c.log_syslog, 0);
	jail_config_free(&c);
	load_ok("log_syslog=1\n", &c);
	assert_int_equal(c.log_syslog, 1);
	jail_config_free(&c);
}

static void test_ports(void **state)
{
	struct jail_config c;
	struct err e;
	assert_int_equal(load_text("PORT=0\nSECURE_PORT=0\n", &c, &e), -1);
	char want[256];
	snprintf(want, sizeof want, "%s: PORT and SECURE_PORT are both 0: nothing to listen on",
		 g_path);
	assert_string_equal(e.msg, want);
	assert_int_equal(load_text("PORT=8000\nSECURE_PORT=8000\n", &c, &e), -1);
	snprintf(want, sizeof want, "%s: PORT and SECURE_PORT are both 8000", g_path);
	assert_string_equal(e.msg, want);
}

/* One uid per task container (sandbox/uidpool.h): the range must be real uids; a range
 * smaller than MAX_TASKS + POOL_SIZE is only a warning (tasks get "busy" when it is full). */
static void test_prisoner_uids(void **state)
{
	struct jail_config c;
	struct err e;
	load_ok("PRISONER_UID=2147483600\nPRISONER_UIDS=48\n", &c);
	assert_int_equal(c.prisoner_uid, 2147483600);
	assert_int_equal(c.prisoner_uids, 48);
	jail_config_free(&c);
	assert_int_equal(load_text("PRISONER_UID=2147483600\nPRISONER_UIDS=49\n", &c, &e), -1);
	assert_non_null(strstr(e.msg, "PRISONER_UID + PRISONER_UIDS - 1 = 2147483648: past"));
	assert_int_equal(load_text("PRISONER_UID=60000\nPRISONER_UIDS=5535\n", &c, &e), -1);
	assert_non_null(strstr(e.msg, "includes 65534 (nobody)"));
	load_ok("PRISONER_UID=60000\nPRISONER_UIDS=5534\n", &c); /* up to 65533 */
	jail_config_free(&c);
	assert_int_equal(load_text("PRISONER_UIDS=0\n", &c, &e), -1);
	assert_int_equal(load_text("PRISONER_UIDS=1048577\n", &c, &e), -1);
	assert_int_equal(load_text("PRISONER_UID=0\n", &c, &e), -1);
	int rc;
	char *log = load_logged("PRISONER_UIDS=101\n", &c, &e, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(log, "PRISONER_UIDS=101 is below MAX_TASKS + POOL_SIZE (102)"));
	free(log);
	jail_config_free(&c);
	log = load_logged("PRISONER_UIDS=102\n", &c, &e, &rc);
	assert_int_equal(rc, 0);
	assert_null(strstr(log, "PRISONER_UIDS"));
	free(log);
	jail_config_free(&c);
}

/* ---- errors ---- */

static void test_unknown_key(void **state)
{
	load_fails("# comment\nMAXTIME=5\nMAXTIMES=6\n", ":3: MAXTIMES: unknown key");
	load_fails("whatever = 1\n", ":1: WHATEVER: unknown key");
}

static void test_syntax_error_in_file(void **state)
{
	load_fails("MAXTIME 5\n", ":1: MAXTIME: expected '=' after the name");
	load_fails("\n\nURLPATH=\"abc\n", ":3: URLPATH: unterminated \" quote");
}

static void test_unreadable_file(void **state)
{
	struct jail_config c;
	struct err e;
	assert_int_equal(jail_config_load(&c, "/nonexistent/vpl-jail.conf", &e), -1);
	assert_string_equal(e.msg,
			    "/nonexistent/vpl-jail.conf: cannot open: No such file or directory");
	assert_int_equal(e.code, ENOENT);
	assert_null(c.urlpath);
	assert_int_equal(jail_config_load(&c, "/tmp", &e), -1);
	assert_string_equal(e.msg, "/tmp: not a regular file");
	jail_config_free(&c);
}

static void test_failed_load_then_good_load(void **state)
{
	struct jail_config c;
	struct err e;
	assert_int_equal(load_text("TASK_ONLY_FROM=10.\nURLPATH=/s\nMAXTIME=x\n", &c, &e), -1);
	assert_null(c.task_only_from.entries); /* already freed: no leak under ASan */
	assert_null(c.urlpath);
	load_ok("MAXTIME=5\n", &c);
	assert_int_equal(c.max_time, 5);
	jail_config_free(&c);
}

/* ---- reference keys we ignore ---- */

static void test_ignored_reference_keys(void **state)
{
	static const char *const ignored[] = {
	    "JAILPATH", "CONTROLPATH", "USETMPFS",	    "HOMESIZE",
	    "SHMSIZE",	"ALLOWSUID",   "MIN_PRISONER_UGID", "MAX_PRISONER_UGID",
	    "FIREWALL", "USE_CGROUP",  "USE_NAMESPACE",
	};
	char text[2048] = "";
	for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
		/* values are not checked: anything the reference accepted is fine */
		strcat(text, ignored[i]);
		strcat(text, "=whatever value\n");
	}
	struct jail_config c;
	struct err e;
	int rc;
	char *log = load_logged(text, &c, &e, &rc);
	assert_int_equal(rc, 0);
	for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) {
		char want[160];
		snprintf(want, sizeof want,
			 "%s:%zu: %s is a vpl-jail-system setting that vplcell "
			 "ignores",
			 g_path, i + 1, ignored[i]);
		if (!strstr(log, want))
			fail_msg("no warning '%s' in:\n%s", want, log);
	}
	check_defaults(&c);
	free(log);
	jail_config_free(&c);
}

static void test_lowercase_ignored_key(void **state)
{
	struct jail_config c;
	struct err e;
	int rc;
	char *log = load_logged("jailpath=/jail\n", &c, &e, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(log, "JAILPATH is a vpl-jail-system setting"));
	free(log);
	jail_config_free(&c);
}

/* ---- environment ---- */

static void test_env_overrides_file(void **state)
{
	setenv("VPL_JAIL_MAXTIME", "77", 1);
	setenv("VPL_JAIL_URLPATH", "from-env", 1);
	setenv("VPL_JAIL_TASK_ONLY_FROM", "172.16.0.0/12", 1);
	setenv("VPL_JAIL_INTERFACE", "", 1);
	struct jail_config c;
	load_ok("MAXTIME=100\nMAXPROCESSES=9\nINTERFACE=127.0.0.1\nTASK_ONLY_FROM=10.\n", &c);
	assert_int_equal(c.max_time, 77);
	assert_int_equal(c.max_processes, 9); /* file value kept when no override */
	assert_string_equal(c.urlpath, "/from-env");
	assert_null(c.interface);
	assert_int_equal(c.task_only_from.count, 1);
	assert_string_equal(c.task_only_from.entries[0].text, "172.16.0.0/12");
	jail_config_free(&c);
	clear_vpl_env();
}

static void test_env_without_file(void **state)
{
	setenv("VPL_JAIL_PORT", "0", 1);
	setenv("VPL_JAIL_SECURE_PORT", "8443", 1);
	setenv("VPL_JAIL_MAXMEMORY", "1G", 1);
	struct jail_config c;
	struct err e;
	assert_int_equal(jail_config_load(&c, NULL, &e), 0);
	assert_int_equal(c.port, 0);
	assert_int_equal(c.secure_port, 8443);
	assert_int_equal(c.max_memory, 1024 * MiB);
	jail_config_free(&c);
	clear_vpl_env();
}

static void test_env_name_case_insensitive(void **state)
{
	setenv("VPL_JAIL_maxTime", "33", 1);
	struct jail_config c;
	struct err e;
	assert_int_equal(jail_config_load(&c, NULL, &e), 0);
	assert_int_equal(c.max_time, 33);
	jail_config_free(&c);
	clear_vpl_env();
}

static void test_env_bad_value(void **state)
{
	setenv("VPL_JAIL_MAXTIME", "bad", 1);
	struct jail_config c;
	struct err e;
	assert_int_equal(load_text("MAXTIME=5\n", &c, &e), -1);
	assert_string_equal(e.msg, "VPL_JAIL_MAXTIME: 'bad' is not an integer");
	assert_null(c.urlpath);
	clear_vpl_env();
	setenv("VPL_JAIL_LOGLEVEL", "", 1);
	assert_int_equal(jail_config_load(&c, NULL, &e), -1);
	assert_string_equal(e.msg, "VPL_JAIL_LOGLEVEL: '' is not an integer");
	clear_vpl_env();
	setenv("VPL_JAIL_PORT", "0", 1);
	setenv("VPL_JAIL_SECURE_PORT", "0", 1);
	assert_int_equal(jail_config_load(&c, NULL, &e), -1);
	assert_string_equal(e.msg, "configuration: PORT and SECURE_PORT are both 0: nothing to "
				   "listen on");
	clear_vpl_env();
}

static int do_load_null(void *arg)
{
	struct load_args *a = arg;
	return jail_config_load(a->c, NULL, a->e);
}

static void test_env_unknown_and_ignored_warn(void **state)
{
	setenv("VPL_JAIL_NOSUCH", "1", 1);
	setenv("VPL_JAIL_JAILPATH", "/", 1);
	struct jail_config c;
	struct err e;
	struct load_args a = {NULL, &c, &e};
	int rc;
	char *log = capture_stderr(do_load_null, &a, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(log, "VPL_JAIL_NOSUCH: unknown VPL_JAIL_* environment variable"));
	assert_non_null(strstr(log, "VPL_JAIL_JAILPATH: JAILPATH is a vpl-jail-system setting"));
	check_defaults(&c);
	free(log);
	jail_config_free(&c);
	clear_vpl_env();
}

/* ---- startup warnings ---- */

static void test_urlpath_warnings(void **state)
{
	struct jail_config c;
	struct err e;
	int rc;
	char *log = load_logged("MAXTIME=5\n", &c, &e, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(log, "URLPATH is not set"));
	free(log);
	jail_config_free(&c);

	log = load_logged("URLPATH=/hidden-value\nMAXTIME=5\nMAXTIME=6\n", &c, &e, &rc);
	assert_int_equal(rc, 0);
	assert_null(strstr(log, "URLPATH is not set"));
	assert_null(strstr(log, "hidden-value"));
	assert_non_null(strstr(log, "MAXTIME is set again")); /* the capture did work */
	free(log);
	jail_config_free(&c);
}

static int do_load_path(void *arg)
{
	struct load_args *a = arg;
	return jail_config_load(a->c, g_path, a->e);
}

static void test_permission_warning(void **state)
{
	write_conf("PORT=0\n");
	chmod(g_path, 0644);
	struct jail_config c;
	struct err e;
	struct load_args a = {NULL, &c, &e};
	int rc;
	char *log = capture_stderr(do_load_path, &a, &rc);
	assert_int_equal(rc, 0);
	assert_non_null(strstr(log, "readable or writable by group or others"));
	free(log);
	jail_config_free(&c);
	chmod(g_path, 0600);
	log = capture_stderr(do_load_path, &a, &rc);
	assert_int_equal(rc, 0);
	assert_null(strstr(log, "group or others"));
	free(log);
	jail_config_free(&c);
	unlink(g_path);
}

/* ---- dump ---- */

static void test_dump_defaults(void **state)
{
	struct jail_config c;
	jail_config_defaults(&c);
	struct buf b;
	buf_init(&b, 1 << 16);
	struct err e;
	assert_int_equal(jail_config_dump(&c, &b, &e), 0);
	const char *want = "MAXTIME=1200\n"
			   "MAXFILESIZE=67108864\n"
			   "MAXMEMORY=2097152000\n"
			   "MAXPROCESSES=500\n"
			   "PORT=80\n"
			   "SECURE_PORT=443\n"
			   "INTERFACE=\n"
			   "URLPATH=/\n"
			   "TASK_ONLY_FROM=\n"
			   "TRUSTED_PROXIES=\n"
			   "PROXY_SECRET_FILE=\n"
			   "SSL_CERT_FILE=/etc/vplcell/cert.pem\n"
			   "SSL_KEY_FILE=/etc/vplcell/key.pem\n"
			   "SSL_CIPHER_LIST=\n"
			   "SSL_CIPHER_SUITES=\n"
			   "HSTS_MAX_AGE=\n"
			   "FAIL2BAN=0\n"
			   "LOGLEVEL=6\n"
			   "LOG_SYSLOG=false\n"
			   "METRICS_PORT=0\n"
			   "METRICS_ADDRESS=\n"
			   "REQUEST_MAX_SIZE=134217728\n"
			   "RESULT_MAX_SIZE=1048576\n"
			   "CERTBOT_WEBROOT_PATH=\n"
			   "ENVPATH=/usr/local/bin:/usr/bin:/bin\n"
			   "DRAIN_FILE=/etc/nologin\n"
			   "MAX_TASKS=100\n"
			   "TASK_TTL_EXTRA=30\n"
			   "SHUTDOWN_GRACE=60\n"
			   "MIN_FREE_DISK=268435456\n"
			   "PRIVSEP=true\n"
			   "PRIVSEP_USER=99999\n"
			   "START_CONCURRENCY=0\n"
			   "CONTAINERD_SOCKET=/run/containerd/containerd.sock\n"
			   "CONTAINERD_NAMESPACE=vplcell\n"
			   "RUNTIME=runc\n"
			   "DEFAULT_IMAGE=minivpl\n"
			   "HELPER_PATH=/usr/libexec/vplcell/vplhelper\n"
			   "STATE_DIR=/run/vplcell\n"
			   "PRISONER_UID=70000\n"
			   "PRISONER_UIDS=20000\n"
			   "TASK_CPU_PERCENT=100\n"
			   "WORKDIR_SIZE=268435456\n"
			   "TMP_SIZE=67108864\n"
			   "TASK_NETWORK=false\n"
			   "WORKER_ID=\n"
			   "POOL_SIZE=2\n"
			   "SHIM_GROUP_SIZE=16\n"
			   "LOCAL_REGISTRY=127.0.0.1:5000\n"
			   "UPSTREAM_REGISTRY=\n"
			   "ALLOWED_IMAGES=\n"
			   "MAX_IMAGE_SIZE=4294967296\n"
			   "FORCEPULL_TTL=300\n"
			   "REGISTRY_AUTH_FILE=\n"
			   "REGISTRY_PLAIN_HTTP=\n"
			   "REGISTRY_CA_FILE=\n"
			   "PULL_THREADS=2\n"
			   "IMAGE_UNUSED_TTL=1209600\n"
			   "IMAGE_STORE_MAX=0\n";
	assert_string_equal(b.data, want);
	buf_free(&b);
	jail_config_free(&c);
}

static void test_dump_hides_urlpath_and_round_trips(void **state)
{
	struct jail_config c;
	load_ok("URLPATH=/very-secret\nTASK_ONLY_FROM=10.1. ::1/128\nSSL_CIPHER_LIST=\"A#B\"\n"
		"ENVPATH=' /odd path '\nHSTS_MAX_AGE=300\nLOG_SYSLOG=yes\nINTERFACE=::1\n"
		"CERTBOT_WEBROOT_PATH=\"/srv/it's\"\n",
		&c);
	struct buf b;
	buf_init(&b, 1 << 16);
	assert_int_equal(jail_config_dump(&c, &b, NULL), 0);
	assert_null(strstr(b.data, "very-secret"));
	assert_non_null(strstr(b.data, "\nURLPATH=(set)\n"));
	assert_non_null(strstr(b.data, "\nTASK_ONLY_FROM=10.1. ::1/128\n"));
	assert_non_null(strstr(b.data, "\nSSL_CIPHER_LIST=\"A#B\"\n"));
	assert_non_null(strstr(b.data, "\nENVPATH=\" /odd path \"\n"));
	assert_non_null(strstr(b.data, "\nHSTS_MAX_AGE=300\n"));
	assert_non_null(strstr(b.data, "\nLOG_SYSLOG=true\n"));
	assert_non_null(strstr(b.data, "\nINTERFACE=::1\n"));
	assert_non_null(strstr(b.data, "\nCERTBOT_WEBROOT_PATH=/srv/it's\n"));

	/* Every line but URLPATH reads back to the same configuration. */
	struct buf again;
	buf_init(&again, 1 << 16);
	for (char *line = strtok(b.data, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "URLPATH=", 8) == 0)
			continue;
		assert_int_equal(buf_printf(&again, NULL, "%s\n", line), 0);
	}
	struct jail_config d;
	load_ok(again.data, &d);
	assert_int_equal(d.task_only_from.count, 2);
	assert_string_equal(d.ssl_cipher_list, "A#B");
	assert_string_equal(d.envpath, " /odd path ");
	assert_string_equal(d.certbot_webroot_path, "/srv/it's");
	assert_int_equal(d.hsts_max_age, 300);
	assert_int_equal(d.log_syslog, 1);
	assert_string_equal(d.interface, "::1");
	assert_int_equal(d.max_memory, c.max_memory);
	jail_config_free(&d);
	buf_free(&again);
	buf_free(&b);
	jail_config_free(&c);
}

static void test_dump_respects_buffer_cap(void **state)
{
	struct jail_config c;
	jail_config_defaults(&c);
	struct buf b;
	buf_init(&b, 32);
	struct err e;
	assert_int_equal(jail_config_dump(&c, &b, &e), -1);
	assert_int_equal(e.code, E2BIG);
	buf_free(&b);
	jail_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_load_without_file),
	    cmocka_unit_test(test_load_empty_file),
	    cmocka_unit_test(test_every_key),
	    cmocka_unit_test(test_reference_sample_style),
	    cmocka_unit_test(test_crlf_file),
	    cmocka_unit_test(test_repeated_key_last_wins),
	    cmocka_unit_test(test_urlpath),
	    cmocka_unit_test(test_urlpath_errors_never_show_it),
	    cmocka_unit_test(test_interface),
	    cmocka_unit_test(test_task_only_from),
	    cmocka_unit_test(test_optional_strings_empty_means_unset),
	    cmocka_unit_test(test_strings_empty_means_default),
	    cmocka_unit_test(test_paths_must_be_absolute),
	    cmocka_unit_test(test_bad_values),
	    cmocka_unit_test(test_bounds_accepted),
	    cmocka_unit_test(test_bools),
	    cmocka_unit_test(test_ports),
	    cmocka_unit_test(test_prisoner_uids),
	    cmocka_unit_test(test_unknown_key),
	    cmocka_unit_test(test_syntax_error_in_file),
	    cmocka_unit_test(test_unreadable_file),
	    cmocka_unit_test(test_failed_load_then_good_load),
	    cmocka_unit_test(test_ignored_reference_keys),
	    cmocka_unit_test(test_lowercase_ignored_key),
	    cmocka_unit_test(test_env_overrides_file),
	    cmocka_unit_test(test_env_without_file),
	    cmocka_unit_test(test_env_name_case_insensitive),
	    cmocka_unit_test(test_env_bad_value),
	    cmocka_unit_test(test_env_unknown_and_ignored_warn),
	    cmocka_unit_test(test_urlpath_warnings),
	    cmocka_unit_test(test_permission_warning),
	    cmocka_unit_test(test_dump_defaults),
	    cmocka_unit_test(test_dump_hides_urlpath_and_round_trips),
	    cmocka_unit_test(test_dump_respects_buffer_cap),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
