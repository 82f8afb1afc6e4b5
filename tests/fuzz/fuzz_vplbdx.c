/*
 * fuzz_vplbdx.c - libFuzzer target: vplbdx_parse on arbitrary bytes.
 *
 * Invariants (abort() on violation):
 *  - failure: EINVAL, a message starting "vplbdx.cfg", *out untouched;
 *  - success: docker is NUL-terminated, without NUL, '\n' or surrounding blanks; user is ""
 *    or matches [a-z_][a-z0-9_-]{0,31} and is not root; forcepull is 0 or 1;
 *  - success: the canonical file written back from the result parses to the same result.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vplbdx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

static int user_ok(const char *u)
{
	size_t n = strlen(u);
	if (n == 0)
		return 1;
	if (n > 32 || !((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_') || !strcmp(u, "root"))
		return 0;
	for (size_t i = 1; i < n; i++)
		if (!((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= '0' && u[i] <= '9') || u[i] == '_' ||
		      u[i] == '-'))
			return 0;
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vplbdx_cfg cfg, again;
	struct err e = {0};

	memset(&cfg, 0xA5, sizeof cfg);
	struct vplbdx_cfg sentinel = cfg;
	if (vplbdx_parse((const char *)data, size, &cfg, &e) != 0) {
		check(e.code == EINVAL && !strncmp(e.msg, "vplbdx.cfg", 10), "failure message");
		check(!memcmp(&cfg, &sentinel, sizeof cfg), "failure leaves *out untouched");
		return 0;
	}
	size_t dn = strnlen(cfg.docker, sizeof cfg.docker);
	check(dn < sizeof cfg.docker, "docker terminated");
	check(!memchr(cfg.docker, '\n', dn), "docker has no newline");
	check(dn == 0 ||
		  (cfg.docker[0] != ' ' && cfg.docker[0] != '\t' && cfg.docker[dn - 1] != ' ' &&
		   cfg.docker[dn - 1] != '\t' && cfg.docker[dn - 1] != '\r'),
	      "docker trimmed");
	check(strnlen(cfg.user, sizeof cfg.user) < sizeof cfg.user && user_ok(cfg.user),
	      "user rule");
	check(cfg.forcepull == 0 || cfg.forcepull == 1, "forcepull boolean");

	char file[512];
	int n = snprintf(file, sizeof file, "# canonical\n%s%s%s%s%s\nFORCEPULL=%s\n",
			 dn ? "DOCKER=" : "", cfg.docker, dn ? "\n" : "",
			 cfg.user[0] ? "USER=" : "", cfg.user, cfg.forcepull ? "yes" : "off");
	check(n > 0 && (size_t)n < sizeof file, "canonical file fits");
	e.msg[0] = '\0';
	check(vplbdx_parse(file, (size_t)n, &again, &e) == 0, "canonical file parses");
	check(!strcmp(again.docker, cfg.docker) && !strcmp(again.user, cfg.user) &&
		  again.forcepull == cfg.forcepull,
	      "canonical file round trip");
	return 0;
}
