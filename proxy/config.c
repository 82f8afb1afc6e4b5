#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgfile.h"
#include "log.h"
#include "secretfile.h"

#define MiB	   (1024LL * 1024)
#define ENV_PREFIX "VPL_PROXY_"

enum kind { K_INT, K_SIZE, K_BOOL, K_STR, K_PATH, K_IP, K_URL, K_ACL, K_HSTS };

struct key {
	const char *name;
	enum kind kind;
	size_t off;
	long long min, max;
};

#define F(f) offsetof(struct proxy_config, f)
static const struct key keys[] = {
    {"PORT", K_INT, F(port), 0, 65535},
    {"SECURE_PORT", K_INT, F(secure_port), 0, 65535},
    {"INTERFACE", K_IP, F(interface), 0, 0},
    {"PUBLIC_PORT", K_INT, F(public_port), 0, 65535},
    {"PUBLIC_SECURE_PORT", K_INT, F(public_secure_port), 0, 65535},
    {"SSL_CERT_FILE", K_PATH, F(ssl_cert_file), 0, 0},
    {"SSL_KEY_FILE", K_PATH, F(ssl_key_file), 0, 0},
    {"SSL_CIPHER_LIST", K_STR, F(ssl_cipher_list), 0, 0},
    {"SSL_CIPHER_SUITES", K_STR, F(ssl_cipher_suites), 0, 0},
    {"HSTS_MAX_AGE", K_HSTS, F(hsts_max_age), 0, 2147483647},
    {"URLPATH", K_URL, F(urlpath), 0, 0},
    {"TASK_ONLY_FROM", K_ACL, F(task_only_from), 0, 0},
    {"TRUSTED_PROXIES", K_ACL, F(trusted_proxies), 0, 0},
    {"REQUEST_MAX_SIZE", K_SIZE, F(request_max_size), 1, 4096 * MiB},
    {"FAIL2BAN", K_INT, F(fail2ban), 0, 1000},
    {"MAX_CONNECTIONS_PER_IP", K_INT, F(max_conns_per_ip), 1, 1000000},
    {"CERTBOT_WEBROOT_PATH", K_PATH, F(certbot_webroot_path), 0, 0},
    {"WORKERS", K_STR, F(workers), 0, 0},
    {"WORKER_URLPATH", K_URL, F(worker_urlpath), 0, 0},
    {"WORKER_SECRET_FILE", K_PATH, F(worker_secret_file), 0, 0},
    {"ROUTE_SECRET_FILE", K_PATH, F(route_secret_file), 0, 0},
    {"ROUTE_SECRET_PREVIOUS_FILE", K_PATH, F(route_secret_previous_file), 0, 0},
    {"HEALTH_INTERVAL", K_INT, F(health_interval_ms), 100, 60000},
    {"DNS_INTERVAL", K_INT, F(dns_interval_ms), 500, 3600000},
    {"METRICS_PORT", K_INT, F(metrics_port), 0, 65535},
    {"METRICS_ADDRESS", K_IP, F(metrics_address), 0, 0},
    {"LOGLEVEL", K_INT, F(log_level), 0, 8},
    {"LOG_SYSLOG", K_BOOL, F(log_syslog), 0, 1},
};
#define NKEYS (sizeof keys / sizeof keys[0])

static void *field(struct proxy_config *c, const struct key *k)
{
	return (char *)c + k->off;
}

static int set_string(char **dst, const char *v, struct err *err)
{
	char *s = *v ? strdup(v) : NULL;
	if (*v && !s)
		return err_sys(err, ENOMEM, "copying a value");
	free(*dst);
	*dst = s;
	return 0;
}

static int set_value(struct proxy_config *c, const struct key *k, const char *v, struct err *err)
{
	long long n;
	bool b;
	switch (k->kind) {
	case K_INT:
		if (cfg_parse_int(v, k->min, k->max, &n, err) < 0)
			return -1;
		*(int *)field(c, k) = (int)n;
		return 0;
	case K_SIZE:
		if (cfg_parse_size(v, &n, err) < 0)
			return -1;
		if (n < k->min || n > k->max)
			return err_set(err, ERANGE, "%lld bytes is out of range [%lld, %lld]", n,
				       k->min, k->max);
		*(long long *)field(c, k) = n;
		return 0;
	case K_HSTS:
		if (!*v) {
			*(long long *)field(c, k) = -1;
			return 0;
		}
		if (cfg_parse_int(v, k->min, k->max, &n, err) < 0)
			return -1;
		*(long long *)field(c, k) = n;
		return 0;
	case K_BOOL:
		if (cfg_parse_bool(v, &b, err) < 0)
			return -1;
		*(int *)field(c, k) = b;
		return 0;
	case K_PATH:
		if (*v && v[0] != '/')
			return err_set(err, EINVAL, "'%.64s' is not an absolute path", v);
		return set_string(field(c, k), v, err);
	case K_STR:
		return set_string(field(c, k), v, err);
	case K_IP: {
		unsigned char a[16];
		if (*v && inet_pton(AF_INET, v, a) != 1 && inet_pton(AF_INET6, v, a) != 1)
			return err_set(err, EINVAL, "'%.64s' is not an IP address", v);
		return set_string(field(c, k), v, err);
	}
	case K_URL: {
		if (!*v)
			return set_string(field(c, k), "", err);
		char *s = malloc(strlen(v) + 2);
		if (!s)
			return err_sys(err, ENOMEM, "copying URLPATH");
		sprintf(s, "%s%s", v[0] == '/' ? "" : "/", v);
		free(*(char **)field(c, k));
		*(char **)field(c, k) = s;
		return 0;
	}
	case K_ACL:
		return netacl_parse(field(c, k), v, err);
	}
	return err_set(err, EINVAL, "internal error: bad key kind");
}

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static int file_entry(const char *name, const char *value, const char *file, int line, void *ctx,
		      struct err *err)
{
	const struct key *k = find_key(name);
	if (!k)
		return err_set(err, EINVAL, "%s:%d: unknown key %s", file, line, name);
	if (set_value(ctx, k, value, err) < 0)
		return err_wrap(err, "%s:%d: %s", file, line, name);
	return 0;
}

extern char **environ;

static int apply_environment(struct proxy_config *c, struct err *err)
{
	size_t plen = strlen(ENV_PREFIX);
	for (char **ep = environ; ep && *ep; ep++) {
		if (strncmp(*ep, ENV_PREFIX, plen) != 0)
			continue;
		const char *eq = strchr(*ep, '=');
		if (!eq || (size_t)(eq - *ep) - plen >= CFG_MAX_NAME)
			continue;
		char name[CFG_MAX_NAME];
		memcpy(name, *ep + plen, (size_t)(eq - *ep) - plen);
		name[(size_t)(eq - *ep) - plen] = '\0';
		const struct key *k = find_key(name);
		if (!k)
			return err_set(err, EINVAL, "environment: unknown key %s%s", ENV_PREFIX,
				       name);
		if (set_value(c, k, eq + 1, err) < 0)
			return err_wrap(err, "environment: %s%s", ENV_PREFIX, name);
	}
	return 0;
}

static void defaults(struct proxy_config *c)
{
	memset(c, 0, sizeof *c);
	c->port = 0;
	c->secure_port = 443;
	c->public_port = -1;
	c->public_secure_port = -1;
	c->ssl_cert_file = strdup("/etc/vplcell/cert.pem");
	c->ssl_key_file = strdup("/etc/vplcell/key.pem");
	c->hsts_max_age = -1;
	c->urlpath = strdup("/");
	c->request_max_size = 128 * MiB;
	c->max_conns_per_ip = 4096; /* a school NAT: hundreds of students, two sockets each */
	c->health_interval_ms = 1000;
	c->dns_interval_ms = 5000;
	c->log_level = 6;
}

/* WORKERS: entries separated by blanks or commas, each host:port. */
static int split_workers(struct proxy_config *c, const char *where, struct err *err)
{
	size_t n = 0;
	const char *p = c->workers ? c->workers : "";
	while (*p) {
		p += strspn(p, " \t,");
		size_t len = strcspn(p, " \t,");
		if (len == 0)
			break;
		if (n == PROXY_MAX_WORKER_NAMES)
			return err_set(err, E2BIG, "%s: WORKERS has more than %d entries", where,
				       PROXY_MAX_WORKER_NAMES);
		const char *colon = memrchr(p, ':', len);
		long long port;
		char num[8];
		size_t plen = colon ? len - (size_t)(colon + 1 - p) : 0;
		if (!colon || colon == p || plen == 0 || plen >= sizeof num)
			return err_set(err, EINVAL, "%s: WORKERS entry '%.*s' is not host:port",
				       where, (int)(len > 64 ? 64 : len), p);
		memcpy(num, colon + 1, plen);
		num[plen] = '\0';
		if (cfg_parse_int(num, 1, 65535, &port, err) < 0)
			return err_wrap(err, "%s: WORKERS entry '%.*s'", where,
					(int)(len > 64 ? 64 : len), p);
		c->worker_names[n] = strndup(p, len);
		if (!c->worker_names[n])
			return err_sys(err, ENOMEM, "%s: WORKERS", where);
		n++;
		p += len;
	}
	c->worker_names[n] = NULL;
	if (n == 0)
		return err_set(err, EINVAL, "%s: WORKERS is empty: the proxy needs workers", where);
	return 0;
}

static int read_secrets(struct proxy_config *c, const char *where, struct err *err)
{
	if (!c->worker_secret_file)
		return err_set(err, EINVAL,
			       "%s: WORKER_SECRET_FILE is required (workers accept only "
			       "authenticated proxies)",
			       where);
	if (!c->route_secret_file)
		return err_set(err, EINVAL,
			       "%s: ROUTE_SECRET_FILE is required (route codes must not be "
			       "forgeable)",
			       where);
	if (secret_file_read(c->worker_secret_file, 16, &c->worker_secret, err) < 0 ||
	    secret_file_read(c->route_secret_file, 16, &c->route_secret, err) < 0 ||
	    (c->route_secret_previous_file && secret_file_read(c->route_secret_previous_file, 16,
							       &c->route_secret_previous, err) < 0))
		return err_wrap(err, "%s", where);
	return 0;
}

int proxy_config_load(struct proxy_config *c, const char *path, struct err *err)
{
	defaults(c);
	const char *where = path ? path : "configuration";
	if (!c->ssl_cert_file || !c->ssl_key_file || !c->urlpath) {
		err_sys(err, ENOMEM, "%s: defaults", where);
		goto fail;
	}
	if (path && cfg_parse_file(path, file_entry, c, err) < 0)
		goto fail;
	if (apply_environment(c, err) < 0)
		goto fail;
	if (!c->urlpath || !*c->urlpath)
		set_value(c, find_key("URLPATH"), "/", NULL);
	if (c->worker_urlpath && !*c->worker_urlpath) {
		free(c->worker_urlpath);
		c->worker_urlpath = NULL;
	}
	if (c->port == 0 && c->secure_port == 0) {
		err_set(err, EINVAL, "%s: PORT and SECURE_PORT are both 0", where);
		goto fail;
	}
	if (c->port == c->secure_port) {
		err_set(err, EINVAL, "%s: PORT and SECURE_PORT are both %d", where, c->port);
		goto fail;
	}
	if (c->public_port < 0)
		c->public_port = c->port;
	if (c->public_secure_port < 0)
		c->public_secure_port = c->secure_port;
	if (split_workers(c, where, err) < 0 || read_secrets(c, where, err) < 0)
		goto fail;
	if (strcmp(c->urlpath, "/") == 0)
		log_warn("URLPATH is not set: any client allowed by TASK_ONLY_FROM can run tasks");
	return 0;
fail:
	proxy_config_free(c);
	return -1;
}

void proxy_config_free(struct proxy_config *c)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		switch (k->kind) {
		case K_STR:
		case K_PATH:
		case K_IP:
		case K_URL:
			free(*(char **)field(c, k));
			*(char **)field(c, k) = NULL;
			break;
		case K_ACL:
			netacl_free(field(c, k));
			break;
		default:
			break;
		}
	}
	for (size_t i = 0; c->worker_names[i]; i++) {
		free(c->worker_names[i]);
		c->worker_names[i] = NULL;
	}
	secret_free(c->worker_secret);
	secret_free(c->route_secret);
	secret_free(c->route_secret_previous);
	c->worker_secret = c->route_secret = c->route_secret_previous = NULL;
}
