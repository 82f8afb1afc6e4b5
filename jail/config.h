/*
 * config.h - vpl-jail's configuration: defaults, the config file
 * (vpl-jail-system's NAME=VALUE format, read by common/cfgfile) and the
 * VPL_JAIL_<NAME> environment overrides. docs/configuration.md is the
 * operator's reference for every key.
 *
 * Contract:
 *  - jail_config_defaults() fills every field with its default. It cannot
 *    fail loudly: a default string that could not be allocated is left NULL,
 *    and jail_config_load() reports that as ENOMEM.
 *  - jail_config_load() starts from the defaults (the previous contents of
 *    *c are NOT freed: pass a fresh or freed struct), then applies the file
 *    at `path` (skipped when path is NULL), then every VPL_JAIL_<NAME>
 *    environment variable (NAME upper-cased, as vpl-jail-system does), then
 *    checks keys against each other. Errors: the file cannot be read or has
 *    a syntax error, an unknown key, or a bad value: "FILE:LINE: KEY: why";
 *    a bad environment value: "VPL_JAIL_KEY: why"; PORT and SECURE_PORT both
 *    0 or equal: "FILE: why". On failure *c holds nothing (jail_config_free
 *    has been applied) and may be loaded again.
 *  - Warnings go to log_warn(), never errors: keys of vpl-jail-system that
 *    do not apply to containers (JAILPATH, CONTROLPATH, USETMPFS, HOMESIZE,
 *    SHMSIZE, ALLOWSUID, MIN_PRISONER_UGID, MAX_PRISONER_UGID, FIREWALL,
 *    USE_CGROUP, USE_NAMESPACE; their values are not checked), a key
 *    repeated in the file (the last one wins), an unknown VPL_JAIL_* variable,
 *    URLPATH left unset, a config file readable or writable by group or
 *    others (it holds URLPATH).
 *  - Empty values: an optional string (INTERFACE, SSL_CIPHER_LIST,
 *    SSL_CIPHER_SUITES, CERTBOT_WEBROOT_PATH, DRAIN_FILE) becomes NULL,
 *    HSTS_MAX_AGE becomes -1 (unset), TASK_ONLY_FROM allows all, URLPATH,
 *    SSL_CERT_FILE, SSL_KEY_FILE and ENVPATH get their default back; an
 *    empty number, size or boolean is an error.
 *  - Ownership: the struct owns every string (heap-allocated or NULL) and
 *    task_only_from. jail_config_free() releases them and may be called
 *    more than once, or on a struct whose load failed.
 *  - URLPATH is a secret: it never appears in a message or in the dump.
 */
#ifndef VC_JAIL_CONFIG_H
#define VC_JAIL_CONFIG_H

#include <stdbool.h>

#include "buf.h"
#include "err.h"
#include "netacl.h"

#define JAIL_CONFIG_PATH "/etc/vplcell/vpl-jail.conf"

struct jail_config {
	/* Server caps on task limits (the request asks, the minimum wins). */
	long long max_time;	 /* MAXTIME, seconds, 1..31536000; 1200 */
	long long max_file_size; /* MAXFILESIZE, bytes, >= 1; 64 MiB */
	long long max_memory;	 /* MAXMEMORY, bytes, >= 1; 2000 MiB */
	long long max_processes; /* MAXPROCESSES, 1..4194304; 500 */

	/* Listening. */
	int port;	 /* PORT, 0..65535, 0 = off; 80 */
	int secure_port; /* SECURE_PORT, 0..65535, 0 = off; 443 */
	char *interface; /* INTERFACE, IPv4/IPv6 literal; NULL = all addresses */

	/* Who may call the RPC methods. */
	char *urlpath;		      /* URLPATH, always starts with '/'; "/" */
	struct netacl task_only_from; /* TASK_ONLY_FROM; empty = anyone */
	/* Behind vpl-proxy (docs/proxy.md): X-Forwarded-For is believed only from these peers,
	 * and with a secret every request but /OK, /robots.txt, /favicon.ico must carry it. */
	struct netacl trusted_proxies; /* TRUSTED_PROXIES; empty = none */
	char *proxy_secret_file;       /* PROXY_SECRET_FILE, absolute; NULL = no proxy auth */
	char *proxy_secret;	       /* its contents (not a key; never dumped nor logged) */

	/* TLS. */
	char *ssl_cert_file;	 /* SSL_CERT_FILE, absolute; /etc/vplcell/cert.pem */
	char *ssl_key_file;	 /* SSL_KEY_FILE, absolute; /etc/vplcell/key.pem */
	char *ssl_cipher_list;	 /* SSL_CIPHER_LIST (TLS <= 1.2); NULL = OpenSSL's */
	char *ssl_cipher_suites; /* SSL_CIPHER_SUITES (TLS 1.3); NULL = OpenSSL's */
	long long hsts_max_age;	 /* HSTS_MAX_AGE, seconds; -1 = no header */

	int fail2ban; /* FAIL2BAN, 0..1000, 0 = off */

	/* Logging. */
	int log_level;	       /* LOGLEVEL, syslog scale 0..8; 6 */
	int log_syslog;	       /* LOG_SYSLOG, bool; 0 = stderr */
	int metrics_port;      /* METRICS_PORT, Prometheus text on loopback; 0 = off */
	char *metrics_address; /* METRICS_ADDRESS, IP literal; NULL = 127.0.0.1 */

	/* Sizes. */
	long long request_max_size; /* REQUEST_MAX_SIZE, 1..4 GiB; 128 MiB */
	long long result_max_size;  /* RESULT_MAX_SIZE, 1..1 GiB; 1 MiB */

	char *certbot_webroot_path; /* CERTBOT_WEBROOT_PATH, absolute; NULL = off */
	char *envpath;		    /* ENVPATH; "/usr/local/bin:/usr/bin:/bin" */
	char *drain_file;	    /* DRAIN_FILE, absolute; "/etc/nologin"; NULL = off */

	/* Tasks. */
	int max_tasks;		  /* MAX_TASKS, 1..100000; 100 */
	long long task_ttl_extra; /* TASK_TTL_EXTRA, seconds, 0..86400; 30 */
	int shutdown_grace;	  /* SHUTDOWN_GRACE, seconds tasks may finish after SIGTERM; 60 */
	long long min_free_disk;  /* MIN_FREE_DISK bytes; below it new tasks get 503; 0 = off */
	int privsep;	       /* PRIVSEP bool: parse the network in an unprivileged process; 1 */
	char *privsep_user;    /* PRIVSEP_USER name or uid of that process; "99999" */
	int start_concurrency; /* START_CONCURRENCY: containers made at once; 0 = 2 x CPUs */

	/* The sandbox: where and how tasks run. */
	char *containerd_socket;    /* CONTAINERD_SOCKET; NULL = no sandbox */
	char *containerd_namespace; /* CONTAINERD_NAMESPACE; "vplcell" */
	char *runtime;		    /* RUNTIME: runc binary name; "runc" */
	char *default_image;	    /* DEFAULT_IMAGE; "minivpl" (in LOCAL_REGISTRY) */
	char *helper_path;	    /* HELPER_PATH, absolute; /usr/libexec/vplcell/vplhelper */
	char *state_dir;	    /* STATE_DIR, absolute: per-task FIFOs; /run/vplcell */
	int prisoner_uid;	    /* PRISONER_UID: first task uid (= gid); 70000 */
	int prisoner_uids;	    /* PRISONER_UIDS: how many task uids; 20000 */
	int task_cpu_percent;	    /* TASK_CPU_PERCENT: CPU quota per task, 100 = one core */
	long long workdir_size;	    /* WORKDIR_SIZE: tmpfs of the work dir; 256 MiB */
	long long tmp_size;	    /* TMP_SIZE: tmpfs /tmp; 64 MiB */
	int task_network;	    /* TASK_NETWORK bool: tasks get the host's network; 0 */
	char *worker_id;	    /* WORKER_ID: owner label; NULL = <hostname>-<pid> */
	int pool_size;		    /* POOL_SIZE: started containers kept ready; 2 */
	int shim_group_size;	    /* SHIM_GROUP_SIZE: containers per runc shim; 16 */

	/* Images (docs/images.md). */
	char *local_registry;	  /* LOCAL_REGISTRY host[:port]; "127.0.0.1:5000" */
	char *upstream_registry;  /* UPSTREAM_REGISTRY; NULL = no upstream pulls */
	char *allowed_images;	  /* ALLOWED_IMAGES patterns; NULL = local registry only */
	long long max_image_size; /* MAX_IMAGE_SIZE (sum of blobs); 4 GiB */
	int forcepull_ttl;	  /* FORCEPULL_TTL seconds; 300 */
	char *registry_auth_file; /* REGISTRY_AUTH_FILE "host user password" lines; NULL */
	char *
	    registry_plain_http; /* REGISTRY_PLAIN_HTTP hosts over http; NULL = local if loopback */
	char *registry_ca_file;	 /* REGISTRY_CA_FILE; NULL = system CAs */
	int pull_threads;	 /* PULL_THREADS 1..16; 2 */
	long long image_unused_ttl; /* IMAGE_UNUSED_TTL seconds, 0 = never by age; 14 days */
	long long image_store_max;  /* IMAGE_STORE_MAX bytes of the content store, 0 = no cap */
};

void jail_config_defaults(struct jail_config *c);
int jail_config_load(struct jail_config *c, const char *path, struct err *err);
void jail_config_free(struct jail_config *c);

/* Appends one "KEY=value\n" line per key, in the order of
 * docs/configuration.md, with the effective values (sizes in bytes, unset
 * optional values empty, values that need it quoted). URLPATH is written
 * as "(set)" unless it is the default "/". */
int jail_config_dump(const struct jail_config *c, struct buf *out, struct err *err);

#endif
