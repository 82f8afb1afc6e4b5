#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cfgfile.h"
#include "secretfile.h"
#include "log.h"

extern char **environ;

#define ENV_PREFIX     "VPL_JAIL_"
#define DEFAULT_URL    "/"
#define DEFAULT_CERT   "/etc/vplcell/cert.pem"
#define DEFAULT_KEY    "/etc/vplcell/key.pem"
#define DEFAULT_PATH   "/usr/local/bin:/usr/bin:/bin"
#define DEFAULT_DRAIN  "/etc/nologin"
#define DEFAULT_CTRD   "/run/containerd/containerd.sock"
#define DEFAULT_NS     "vplcell"
#define DEFAULT_RT     "runc"
#define DEFAULT_IMAGE  "minivpl"
#define DEFAULT_REG    "127.0.0.1:5000"
#define DEFAULT_HELPER "/usr/libexec/vplcell/vplhelper"
#define DEFAULT_STATE  "/run/vplcell"
/* No account needed: a uid no Debian range hands out, outside the prisoners' (docs/security.md) */
#define DEFAULT_PRIVSEP_USER "99999"
#define MiB		     (1024LL * 1024)

enum key_type {
	T_INT,	   /* int field, cfg_parse_int within [min, max] */
	T_LLINT,   /* long long field, cfg_parse_int within [min, max] */
	T_SIZE,	   /* long long field, cfg_parse_size within [min, max] */
	T_BOOL,	   /* int field, cfg_parse_bool */
	T_STR,	   /* char * field; empty value restores `def` */
	T_OPTSTR,  /* char * field; empty value = NULL */
	T_HSTS,	   /* long long field; empty = -1, else [min, max] */
	T_IFACE,   /* char * field; empty = NULL, else an IP literal */
	T_URLPATH, /* char * field; '/' prepended if missing */
	T_ACL,	   /* struct netacl field */
};

struct key {
	const char *name;
	enum key_type type;
	size_t off;
	long long min, max;
	const char *def; /* T_STR, T_OPTSTR, T_URLPATH: default string */
	bool abspath;	 /* strings: must be an absolute path */
};

#define F(field) offsetof(struct jail_config, field)

/* The order is the dump's and docs/configuration.md's. */
static const struct key keys[] = {
    {"MAXTIME", T_LLINT, F(max_time), 1, 31536000, NULL, false},
    {"MAXFILESIZE", T_SIZE, F(max_file_size), 1, LLONG_MAX, NULL, false},
    {"MAXMEMORY", T_SIZE, F(max_memory), 1, LLONG_MAX, NULL, false},
    {"MAXPROCESSES", T_LLINT, F(max_processes), 1, 4194304, NULL, false},
    {"PORT", T_INT, F(port), 0, 65535, NULL, false},
    {"SECURE_PORT", T_INT, F(secure_port), 0, 65535, NULL, false},
    {"INTERFACE", T_IFACE, F(interface), 0, 0, NULL, false},
    {"URLPATH", T_URLPATH, F(urlpath), 0, 0, DEFAULT_URL, false},
    {"TASK_ONLY_FROM", T_ACL, F(task_only_from), 0, 0, NULL, false},
    {"TRUSTED_PROXIES", T_ACL, F(trusted_proxies), 0, 0, NULL, false},
    {"PROXY_SECRET_FILE", T_OPTSTR, F(proxy_secret_file), 0, 0, NULL, true},
    {"SSL_CERT_FILE", T_STR, F(ssl_cert_file), 0, 0, DEFAULT_CERT, true},
    {"SSL_KEY_FILE", T_STR, F(ssl_key_file), 0, 0, DEFAULT_KEY, true},
    {"SSL_CIPHER_LIST", T_OPTSTR, F(ssl_cipher_list), 0, 0, NULL, false},
    {"SSL_CIPHER_SUITES", T_OPTSTR, F(ssl_cipher_suites), 0, 0, NULL, false},
    {"HSTS_MAX_AGE", T_HSTS, F(hsts_max_age), 0, 2147483647, NULL, false},
    {"FAIL2BAN", T_INT, F(fail2ban), 0, 1000, NULL, false},
    {"LOGLEVEL", T_INT, F(log_level), 0, 8, NULL, false},
    {"LOG_SYSLOG", T_BOOL, F(log_syslog), 0, 1, NULL, false},
    {"METRICS_PORT", T_INT, F(metrics_port), 0, 65535, NULL, false},
    {"METRICS_ADDRESS", T_IFACE, F(metrics_address), 0, 0, NULL, false},
    {"REQUEST_MAX_SIZE", T_SIZE, F(request_max_size), 1, 4096 * MiB, NULL, false},
    {"RESULT_MAX_SIZE", T_SIZE, F(result_max_size), 1, 1024 * MiB, NULL, false},
    {"CERTBOT_WEBROOT_PATH", T_OPTSTR, F(certbot_webroot_path), 0, 0, NULL, true},
    {"ENVPATH", T_STR, F(envpath), 0, 0, DEFAULT_PATH, false},
    {"DRAIN_FILE", T_OPTSTR, F(drain_file), 0, 0, DEFAULT_DRAIN, true},
    {"MAX_TASKS", T_INT, F(max_tasks), 1, 100000, NULL, false},
    {"TASK_TTL_EXTRA", T_LLINT, F(task_ttl_extra), 0, 86400, NULL, false},
    {"SHUTDOWN_GRACE", T_INT, F(shutdown_grace), 0, 86400, NULL, false},
    {"MIN_FREE_DISK", T_SIZE, F(min_free_disk), 0, LLONG_MAX, NULL, false},
    {"PRIVSEP", T_BOOL, F(privsep), 0, 1, NULL, false},
    {"PRIVSEP_USER", T_STR, F(privsep_user), 0, 0, DEFAULT_PRIVSEP_USER, false},
    {"START_CONCURRENCY", T_INT, F(start_concurrency), 0, 4096, NULL, false},
    {"CONTAINERD_SOCKET", T_OPTSTR, F(containerd_socket), 0, 0, DEFAULT_CTRD, true},
    {"CONTAINERD_NAMESPACE", T_STR, F(containerd_namespace), 0, 0, DEFAULT_NS, false},
    {"RUNTIME", T_STR, F(runtime), 0, 0, DEFAULT_RT, false},
    {"DEFAULT_IMAGE", T_STR, F(default_image), 0, 0, DEFAULT_IMAGE, false},
    {"HELPER_PATH", T_STR, F(helper_path), 0, 0, DEFAULT_HELPER, true},
    {"STATE_DIR", T_STR, F(state_dir), 0, 0, DEFAULT_STATE, true},
    {"PRISONER_UID", T_INT, F(prisoner_uid), 1000, 2147483647, NULL, false},
    {"PRISONER_UIDS", T_INT, F(prisoner_uids), 1, 1048576, NULL, false},
    {"TASK_CPU_PERCENT", T_INT, F(task_cpu_percent), 1, 100000, NULL, false},
    {"WORKDIR_SIZE", T_SIZE, F(workdir_size), 1 * MiB, LLONG_MAX, NULL, false},
    {"TMP_SIZE", T_SIZE, F(tmp_size), 1 * MiB, LLONG_MAX, NULL, false},
    {"TASK_NETWORK", T_BOOL, F(task_network), 0, 1, NULL, false},
    {"WORKER_ID", T_OPTSTR, F(worker_id), 0, 0, NULL, false},
    {"POOL_SIZE", T_INT, F(pool_size), 0, 64, NULL, false},
    {"SHIM_GROUP_SIZE", T_INT, F(shim_group_size), 1, 256, NULL, false},
    {"LOCAL_REGISTRY", T_STR, F(local_registry), 0, 0, DEFAULT_REG, false},
    {"UPSTREAM_REGISTRY", T_OPTSTR, F(upstream_registry), 0, 0, NULL, false},
    {"ALLOWED_IMAGES", T_OPTSTR, F(allowed_images), 0, 0, NULL, false},
    {"MAX_IMAGE_SIZE", T_SIZE, F(max_image_size), 1 * MiB, LLONG_MAX, NULL, false},
    {"FORCEPULL_TTL", T_INT, F(forcepull_ttl), 0, 86400, NULL, false},
    {"REGISTRY_AUTH_FILE", T_OPTSTR, F(registry_auth_file), 0, 0, NULL, true},
    {"REGISTRY_PLAIN_HTTP", T_OPTSTR, F(registry_plain_http), 0, 0, NULL, false},
    {"REGISTRY_CA_FILE", T_OPTSTR, F(registry_ca_file), 0, 0, NULL, true},
    {"PULL_THREADS", T_INT, F(pull_threads), 1, 16, NULL, false},
    {"IMAGE_UNUSED_TTL", T_LLINT, F(image_unused_ttl), 0, 315360000, NULL, false},
    {"IMAGE_STORE_MAX", T_SIZE, F(image_store_max), 0, LLONG_MAX, NULL, false},
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* vpl-jail-system keys that describe its chroot jail, its prisoner UIDs or
 * its firewall: containers replace all of them. */
static const char *const ignored_keys[] = {
    "JAILPATH", "CONTROLPATH", "USETMPFS",	    "HOMESIZE",
    "SHMSIZE",	"ALLOWSUID",   "MIN_PRISONER_UGID", "MAX_PRISONER_UGID",
    "FIREWALL", "USE_CGROUP",  "USE_NAMESPACE",
};
#define NIGNORED (sizeof ignored_keys / sizeof ignored_keys[0])

static const struct key *find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, name) == 0)
			return &keys[i];
	return NULL;
}

static bool is_ignored_key(const char *name)
{
	for (size_t i = 0; i < NIGNORED; i++)
		if (strcmp(ignored_keys[i], name) == 0)
			return true;
	return false;
}

#define FIELD(c, k, type) ((type *)(void *)((char *)(c) + (k)->off))

static int replace_string(char **field, const char *value, struct err *err)
{
	char *copy = NULL;
	if (value) {
		copy = strdup(value);
		if (!copy)
			return err_sys(err, ENOMEM, "allocating a string");
	}
	free(*field);
	*field = copy;
	return 0;
}

static int set_urlpath(char **field, const char *value, struct err *err)
{
	if (!*value)
		value = DEFAULT_URL;
	/* The request path is compared byte for byte: a character that cannot
	 * appear in it would make every RPC fail with 404. Never echo the value. */
	for (const char *p = value; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch <= 0x20 || ch == 0x7f || ch == '?' || ch == '#')
			return err_set(err, EINVAL,
				       "must not contain spaces, control characters, '?' or '#'");
	}
	size_t n = strlen(value);
	char *copy = malloc(n + 2);
	if (!copy)
		return err_sys(err, ENOMEM, "allocating a string");
	size_t o = 0;
	if (value[0] != '/')
		copy[o++] = '/';
	memcpy(copy + o, value, n + 1);
	free(*field);
	*field = copy;
	return 0;
}

static int set_interface(char **field, const char *value, struct err *err)
{
	if (*value) {
		unsigned char addr[sizeof(struct in6_addr)];
		if (inet_pton(AF_INET, value, addr) != 1 && inet_pton(AF_INET6, value, addr) != 1)
			return err_set(err, EINVAL,
				       "'%.64s' is not an IPv4 or IPv6 address (empty = all)",
				       value);
	}
	return replace_string(field, *value ? value : NULL, err);
}

/* Applies one value to its field. The message says why, without the key. */
static int set_value(struct jail_config *c, const struct key *k, const char *value, struct err *err)
{
	long long v;
	bool b;
	switch (k->type) {
	case T_INT:
		if (cfg_parse_int(value, k->min, k->max, &v, err) < 0)
			return -1;
		*FIELD(c, k, int) = (int)v;
		return 0;
	case T_LLINT:
		if (cfg_parse_int(value, k->min, k->max, &v, err) < 0)
			return -1;
		*FIELD(c, k, long long) = v;
		return 0;
	case T_SIZE:
		if (cfg_parse_size(value, &v, err) < 0)
			return -1;
		if (v < k->min || v > k->max)
			return err_set(err, ERANGE, "%lld bytes is out of range [%lld, %lld]", v,
				       k->min, k->max);
		*FIELD(c, k, long long) = v;
		return 0;
	case T_BOOL:
		if (cfg_parse_bool(value, &b, err) < 0)
			return -1;
		*FIELD(c, k, int) = b;
		return 0;
	case T_HSTS:
		if (!*value) {
			*FIELD(c, k, long long) = -1;
			return 0;
		}
		if (cfg_parse_int(value, k->min, k->max, &v, err) < 0)
			return -1;
		*FIELD(c, k, long long) = v;
		return 0;
	case T_STR:
	case T_OPTSTR:
		if (!*value)
			value = k->type == T_STR ? k->def : NULL;
		if (value && k->abspath && value[0] != '/')
			return err_set(err, EINVAL, "'%.64s' is not an absolute path", value);
		return replace_string(FIELD(c, k, char *), value, err);
	case T_IFACE:
		return set_interface(FIELD(c, k, char *), value, err);
	case T_URLPATH:
		return set_urlpath(FIELD(c, k, char *), value, err);
	case T_ACL:
		return netacl_parse(FIELD(c, k, struct netacl), value, err);
	}
	return err_set(err, EINVAL, "internal error: bad key type");
}

void jail_config_defaults(struct jail_config *c)
{
	memset(c, 0, sizeof *c);
	c->max_time = 1200;
	c->max_file_size = 64 * MiB;
	c->max_memory = 2000 * MiB;
	c->max_processes = 500;
	c->port = 80;
	c->secure_port = 443;
	c->interface = NULL;
	c->urlpath = strdup(DEFAULT_URL);
	c->task_only_from = (struct netacl){0};
	c->ssl_cert_file = strdup(DEFAULT_CERT);
	c->ssl_key_file = strdup(DEFAULT_KEY);
	c->ssl_cipher_list = NULL;
	c->ssl_cipher_suites = NULL;
	c->hsts_max_age = -1;
	c->fail2ban = 0;
	c->log_level = 6;
	c->log_syslog = 0;
	c->request_max_size = 128 * MiB;
	c->result_max_size = 1 * MiB;
	c->certbot_webroot_path = NULL;
	c->envpath = strdup(DEFAULT_PATH);
	c->drain_file = strdup(DEFAULT_DRAIN);
	c->max_tasks = 100;
	c->task_ttl_extra = 30;
	c->shutdown_grace = 60;
	c->privsep = 1;
	c->privsep_user = strdup(DEFAULT_PRIVSEP_USER);
	c->start_concurrency = 0;
	c->min_free_disk = 256 * MiB;
	c->containerd_socket = strdup(DEFAULT_CTRD);
	c->containerd_namespace = strdup(DEFAULT_NS);
	c->runtime = strdup(DEFAULT_RT);
	c->default_image = strdup(DEFAULT_IMAGE);
	c->helper_path = strdup(DEFAULT_HELPER);
	c->state_dir = strdup(DEFAULT_STATE);
	/* 70000..89999: above Debian's UID_MAX (60000) and 65534/65535, below the subordinate
	 * uids useradd hands out (SUB_UID_MIN 100000) and systemd's container ranges (524288):
	 * no host account or rootless container shares them (docs/security.md). */
	c->prisoner_uid = 70000;
	c->prisoner_uids = 20000;
	c->task_cpu_percent = 100;
	c->workdir_size = 256 * MiB;
	c->tmp_size = 64 * MiB;
	c->task_network = 0;
	c->worker_id = NULL;
	c->pool_size = 2;
	c->shim_group_size = 16;
	c->local_registry = strdup(DEFAULT_REG);
	c->upstream_registry = NULL;
	c->allowed_images = NULL;
	c->max_image_size = 4096 * MiB;
	c->forcepull_ttl = 300;
	c->registry_auth_file = NULL;
	c->registry_plain_http = NULL;
	c->registry_ca_file = NULL;
	c->pull_threads = 2;
	c->image_unused_ttl = 14 * 86400;
	c->image_store_max = 0;
}

void jail_config_free(struct jail_config *c)
{
	secret_free(c->proxy_secret);
	c->proxy_secret = NULL;
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		switch (k->type) {
		case T_STR:
		case T_OPTSTR:
		case T_IFACE:
		case T_URLPATH: {
			char **s = FIELD(c, k, char *);
			free(*s);
			*s = NULL;
			break;
		}
		case T_ACL:
			netacl_free(FIELD(c, k, struct netacl));
			break;
		default:
			break;
		}
	}
}

struct load_ctx {
	struct jail_config *c;
	bool seen[NKEYS];
};

static int file_entry(const char *name, const char *value, const char *file, int line, void *ctx,
		      struct err *err)
{
	struct load_ctx *lc = ctx;
	const struct key *k = find_key(name);
	if (!k) {
		if (is_ignored_key(name)) {
			log_warn("%s:%d: %s is a vpl-jail-system setting that vplcell ignores "
				 "(tasks run in containers, not in a chroot jail)",
				 file, line, name);
			return 0;
		}
		return err_set(err, EINVAL, "%s: unknown key", name);
	}
	size_t idx = (size_t)(k - keys);
	if (lc->seen[idx])
		log_warn("%s:%d: %s is set again, the last value wins", file, line, name);
	lc->seen[idx] = true;
	if (set_value(lc->c, k, value, err) < 0)
		return err_wrap(err, "%s", name);
	return 0;
}

static int apply_environment(struct jail_config *c, struct err *err)
{
	const size_t plen = strlen(ENV_PREFIX);
	for (char **ep = environ; ep && *ep; ep++) {
		const char *var = *ep;
		if (strncmp(var, ENV_PREFIX, plen) != 0)
			continue;
		const char *eq = strchr(var, '=');
		if (!eq)
			continue;
		size_t nlen = (size_t)(eq - var);
		char vname[CFG_MAX_NAME + sizeof ENV_PREFIX];
		if (nlen >= sizeof vname) {
			log_warn("ignoring an over-long environment variable %.40s...", var);
			continue;
		}
		memcpy(vname, var, nlen);
		vname[nlen] = '\0';
		char name[sizeof vname];
		size_t i = 0;
		for (const char *p = vname + plen; *p; p++)
			name[i++] = (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A') : *p;
		name[i] = '\0';
		const struct key *k = find_key(name);
		if (!k) {
			char shown[160];
			log_sanitize(shown, sizeof shown, vname, strlen(vname));
			if (is_ignored_key(name))
				log_warn("%s: %s is a vpl-jail-system setting that vplcell ignores "
					 "(tasks run in containers, not in a chroot jail)",
					 shown, name);
			else
				log_warn("%s: unknown VPL_JAIL_* environment variable, ignored",
					 shown);
			continue;
		}
		if (set_value(c, k, eq + 1, err) < 0)
			return err_wrap(err, "%s", vname);
	}
	return 0;
}

static int check_config(const struct jail_config *c, const char *where, struct err *err)
{
	if (c->port == 0 && c->secure_port == 0)
		return err_set(err, EINVAL,
			       "%s: PORT and SECURE_PORT are both 0: nothing to "
			       "listen on",
			       where);
	if (c->port == c->secure_port)
		return err_set(err, EINVAL, "%s: PORT and SECURE_PORT are both %d", where, c->port);
	/* One uid per task container (sandbox/uidpool.h): the range must be real uids. */
	long long last_uid = (long long)c->prisoner_uid + c->prisoner_uids - 1;
	if (last_uid > 2147483647)
		return err_set(err, EINVAL, "%s: PRISONER_UID + PRISONER_UIDS - 1 = %lld: past %d",
			       where, last_uid, 2147483647);
	if (c->prisoner_uid <= 65535 && last_uid >= 65534)
		return err_set(err, EINVAL,
			       "%s: PRISONER_UID..PRISONER_UID + PRISONER_UIDS - 1 (%d..%lld) "
			       "includes 65534 (nobody) or 65535",
			       where, c->prisoner_uid, last_uid);
	/* The parser's uid (a number; names are looked up at start): never root, never a task's. */
	char *end;
	long long pu = strtoll(c->privsep_user, &end, 10);
	if (*c->privsep_user && !*end && (pu <= 0 || (pu >= c->prisoner_uid && pu <= last_uid)))
		return err_set(err, EINVAL, "%s: PRIVSEP_USER %lld is root or a task uid", where,
			       pu);
	return 0;
}

static void warn_about(const struct jail_config *c, const char *path)
{
	/* (URLPATH sent in clear over PORT is main's warning, at startup only.) */
	if (strcmp(c->urlpath, DEFAULT_URL) == 0)
		log_warn("URLPATH is not set: any client allowed by TASK_ONLY_FROM can run tasks");
	if (c->prisoner_uids < c->max_tasks + c->pool_size)
		log_warn("PRISONER_UIDS=%d is below MAX_TASKS + POOL_SIZE (%d): tasks will be "
			 "refused while all task uids are in use",
			 c->prisoner_uids, c->max_tasks + c->pool_size);
	struct stat st;
	if (path && stat(path, &st) == 0 && (st.st_mode & 077))
		log_warn("%s is readable or writable by group or others; it holds URLPATH: "
			 "chmod 600 it",
			 path);
}

int jail_config_load(struct jail_config *c, const char *path, struct err *err)
{
	jail_config_defaults(c);
	const char *where = path ? path : "configuration";
	if (!c->urlpath || !c->ssl_cert_file || !c->ssl_key_file || !c->envpath || !c->drain_file ||
	    !c->containerd_socket || !c->containerd_namespace || !c->runtime || !c->default_image ||
	    !c->helper_path || !c->state_dir || !c->local_registry || !c->privsep_user) {
		err_sys(err, ENOMEM, "%s: allocating the defaults", where);
		goto fail;
	}
	if (path) {
		struct load_ctx lc = {.c = c};
		if (cfg_parse_file(path, file_entry, &lc, err) < 0)
			goto fail;
	}
	if (apply_environment(c, err) < 0)
		goto fail;
	if (check_config(c, where, err) < 0)
		goto fail;
	if (c->proxy_secret_file &&
	    secret_file_read(c->proxy_secret_file, 16, &c->proxy_secret, err) < 0) {
		err_wrap(err, "%s: PROXY_SECRET_FILE", where);
		goto fail;
	}
	warn_about(c, path);
	return 0;
fail:
	jail_config_free(c);
	return -1;
}

/* Writes a value so that cfgfile would read it back unchanged. */
static int dump_string(struct buf *out, const char *name, const char *v, struct err *err)
{
	if (!v)
		v = "";
	size_t n = strlen(v);
	bool quote = n && (strchr(v, '#') || v[0] == ' ' || v[0] == '\t' || v[n - 1] == ' ' ||
			   v[n - 1] == '\t' || v[0] == '"' || v[0] == '\'');
	if (!quote)
		return buf_printf(out, err, "%s=%s\n", name, v);
	char q = strchr(v, '"') ? '\'' : '"';
	return buf_printf(out, err, "%s=%c%s%c\n", name, q, v, q);
}

int jail_config_dump(const struct jail_config *c, struct buf *out, struct err *err)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const struct key *k = &keys[i];
		const char *name = k->name;
		int r = 0;
		switch (k->type) {
		case T_INT:
			r = buf_printf(out, err, "%s=%d\n", name, *FIELD(c, k, const int));
			break;
		case T_LLINT:
		case T_SIZE:
			r = buf_printf(out, err, "%s=%lld\n", name, *FIELD(c, k, const long long));
			break;
		case T_BOOL:
			r = buf_printf(out, err, "%s=%s\n", name,
				       *FIELD(c, k, const int) ? "true" : "false");
			break;
		case T_HSTS: {
			long long v = *FIELD(c, k, const long long);
			r = v < 0 ? buf_printf(out, err, "%s=\n", name)
				  : buf_printf(out, err, "%s=%lld\n", name, v);
			break;
		}
		case T_URLPATH: {
			const char *u = *FIELD(c, k, char *const);
			bool dflt = !u || strcmp(u, DEFAULT_URL) == 0;
			r = buf_printf(out, err, "%s=%s\n", name, dflt ? DEFAULT_URL : "(set)");
			break;
		}
		case T_STR:
		case T_OPTSTR:
		case T_IFACE:
			r = dump_string(out, name, *FIELD(c, k, char *const), err);
			break;
		case T_ACL:
			r = buf_printf(out, err, "%s=", name);
			if (r == 0)
				r = netacl_format(FIELD(c, k, const struct netacl), out, err);
			if (r == 0)
				r = buf_puts(out, "\n", err);
			break;
		}
		if (r < 0)
			return -1;
	}
	return 0;
}
