/*
 * config.h - vpl-proxy's configuration (conf/vpl-proxy.conf, docs/proxy.md).
 *
 * Same file syntax as vpl-jail's (common/cfgfile.h: KEY=value, # comments), and every key
 * may also come from the environment as VPL_PROXY_<KEY>, which wins over the file (for
 * orchestrators). An unknown key or a bad value stops start-up with file:line.
 *
 * Secrets never sit in this file: WORKER_SECRET_FILE and ROUTE_SECRET_FILE name files
 * (Docker/Kubernetes secrets) whose contents proxy_config_load() reads into worker_secret
 * and route_secret; both are required, since an unauthenticated worker or a guessable route
 * would let anyone reach workers directly or forge routes.
 *
 * Ownership: proxy_config_load() fills *c with owned strings; proxy_config_free() releases
 * them (also after a failed load, which frees what it made itself).
 */
#ifndef VC_PROXY_CONFIG_H
#define VC_PROXY_CONFIG_H

#include "err.h"
#include "netacl.h"

#define PROXY_CONFIG_PATH      "/etc/vplcell/vpl-proxy.conf"
#define PROXY_MAX_WORKER_NAMES 64

struct proxy_config {
	/* Listening (public side). */
	int port;		/* PORT, plain HTTP/WS; 0 = off (default) */
	int secure_port;	/* SECURE_PORT, HTTPS/WSS; 443 */
	char *interface;	/* INTERFACE, IP literal; NULL = all */
	int public_port;	/* PUBLIC_PORT: what `request` tells browsers; -1 = PORT */
	int public_secure_port; /* PUBLIC_SECURE_PORT; -1 = SECURE_PORT */

	/* TLS. */
	char *ssl_cert_file;	 /* SSL_CERT_FILE; /etc/vplcell/cert.pem */
	char *ssl_key_file;	 /* SSL_KEY_FILE; /etc/vplcell/key.pem */
	char *ssl_cipher_list;	 /* SSL_CIPHER_LIST (TLS 1.2); NULL = OpenSSL's */
	char *ssl_cipher_suites; /* SSL_CIPHER_SUITES (TLS 1.3); NULL = OpenSSL's */
	long long hsts_max_age;	 /* HSTS_MAX_AGE seconds; -1 = no header */

	/* Edge policy. */
	char *urlpath;		       /* URLPATH, starts with '/'; "/" */
	struct netacl task_only_from;  /* TASK_ONLY_FROM; empty = anyone */
	struct netacl trusted_proxies; /* TRUSTED_PROXIES: nginx & co in front; empty = none */
	long long request_max_size;    /* REQUEST_MAX_SIZE bytes; 128 MiB */
	int fail2ban;		       /* FAIL2BAN, as vpl-jail's; 0 = off */
	int max_conns_per_ip;	       /* MAX_CONNECTIONS_PER_IP; 4096 */
	char *certbot_webroot_path;    /* CERTBOT_WEBROOT_PATH; NULL = off */

	/* Workers. */
	char *workers; /* WORKERS: "host:port ..." (IPv4 literals or DNS names) */
	char *worker_names[PROXY_MAX_WORKER_NAMES + 1]; /* WORKERS split, NULL-terminated */
	char *worker_urlpath;				/* WORKER_URLPATH; NULL = URLPATH */
	char *worker_secret_file;			/* WORKER_SECRET_FILE (required) */
	char *route_secret_file;			/* ROUTE_SECRET_FILE (required) */
	char *route_secret_previous_file;		/* ROUTE_SECRET_PREVIOUS_FILE; rotation */
	char *worker_secret, *route_secret, *route_secret_previous; /* read from the files */
	int health_interval_ms;					    /* HEALTH_INTERVAL ms; 1000 */
	int dns_interval_ms;					    /* DNS_INTERVAL ms; 5000 */

	/* Operations. */
	int metrics_port;      /* METRICS_PORT; 0 = off */
	char *metrics_address; /* METRICS_ADDRESS; NULL = 127.0.0.1 */
	int log_level;	       /* LOGLEVEL 0..8; 6 */
	int log_syslog;	       /* LOG_SYSLOG bool */
};

int proxy_config_load(struct proxy_config *c, const char *path, struct err *err);
void proxy_config_free(struct proxy_config *c);

#endif
