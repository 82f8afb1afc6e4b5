/*
 * vpl-proxy - the TLS front door over replicated vpl-jail workers (docs/proxy.md).
 *
 *   vpl-proxy [-f FILE]      run in the foreground (default /etc/vplcell/vpl-proxy.conf)
 *   vpl-proxy -t [-f FILE]   check the configuration (and read its secrets), exit
 *   vpl-proxy --version
 */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "server.h"

#define VERSION "5.0.1-vplcell"

static void usage(FILE *f)
{
	fprintf(f, "usage: vpl-proxy [-f CONFIG] [-t] [--version]\n"
		   "  -f CONFIG   configuration file (default " PROXY_CONFIG_PATH ")\n"
		   "  -t          check the configuration, exit\n");
}

int main(int argc, char **argv)
{
	const char *path = PROXY_CONFIG_PATH;
	bool check = false;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-f") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "-t") == 0) {
			check = true;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("vpl-proxy %s\n", VERSION);
			return 0;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	log_open("vpl-proxy", 0, LOG_LVL_INFO);
	struct proxy_config cfg;
	struct err err;
	if (proxy_config_load(&cfg, path, &err) < 0) {
		log_err("%s", err.msg);
		return 1;
	}
	if (check) {
		printf("%s: OK\n", path);
		proxy_config_free(&cfg);
		return 0;
	}
	log_open("vpl-proxy", cfg.log_syslog, cfg.log_level);
	struct proxy *p = proxy_new(&cfg, &err);
	if (!p) {
		log_err("%s", err.msg);
		proxy_config_free(&cfg);
		return 1;
	}
	int rc = proxy_run(p);
	proxy_free(p);
	proxy_config_free(&cfg);
	return rc;
}
