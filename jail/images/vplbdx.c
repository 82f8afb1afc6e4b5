#include "vplbdx.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "log.h"

static int line_err(struct err *err, unsigned line, const char *why, const char *what, size_t n)
{
	if (!what)
		return err_set(err, EINVAL, "vplbdx.cfg line %u: %s", line, why);
	char q[80];
	log_sanitize(q, sizeof q, what, n < 60 ? n : 60);
	return err_set(err, EINVAL, "vplbdx.cfg line %u: %s '%s%s'", line, why, q,
		       n > 60 ? "..." : "");
}

static void trim(const char **p, size_t *n)
{
	while (*n && (**p == ' ' || **p == '\t'))
		(*p)++, (*n)--;
	while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\r'))
		(*n)--;
}

static int key_is(const char *k, size_t n, const char *want)
{
	return n == strlen(want) && !strncasecmp(k, want, n);
}

static int user_ok(const char *u, size_t n)
{
	if (n == 0 || n > 32)
		return 0;
	if (!((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_'))
		return 0;
	for (size_t i = 1; i < n; i++) {
		char c = u[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* 1 true, 0 false, -1 neither. */
static int boolean(const char *v, size_t n)
{
	static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false",
										    "no", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (key_is(v, n, yes[i]))
			return 1;
		if (key_is(v, n, no[i]))
			return 0;
	}
	return -1;
}

static int parse_line(const char *p, size_t n, unsigned line, struct vplbdx_cfg *cfg,
		      struct err *err)
{
	trim(&p, &n);
	if (n == 0 || p[0] == '#')
		return 0;
	const char *eq = memchr(p, '=', n);
	const char *k = p, *v = NULL;
	size_t kn = eq ? (size_t)(eq - p) : n, vn = 0;
	if (eq) {
		v = eq + 1;
		vn = n - kn - 1;
		trim(&v, &vn);
	}
	trim(&k, &kn);

	if (key_is(k, kn, "FORCEPULL")) {
		int b = eq ? boolean(v, vn) : 1;
		if (b < 0)
			return line_err(err, line,
					"FORCEPULL must be 1/true/yes or 0/false/no, not", v, vn);
		cfg->forcepull = b;
		return 0;
	}
	int docker = key_is(k, kn, "DOCKER"), user = key_is(k, kn, "USER");
	if (!docker && !user)
		return line_err(err, line, eq ? "unknown key" : "expected KEY=value, got", k,
				eq ? kn : n);
	if (!eq)
		return line_err(err, line, "missing '=' after", k, kn);
	if (docker) {
		if (cfg->docker[0])
			return line_err(err, line, "DOCKER given twice", NULL, 0);
		if (vn == 0)
			return line_err(err, line, "DOCKER= needs an image name", NULL, 0);
		if (vn >= sizeof cfg->docker)
			return line_err(err, line, "image name longer than 255 characters", NULL,
					0);
		memcpy(cfg->docker, v, vn);
		cfg->docker[vn] = '\0';
		return 0;
	}
	if (cfg->user[0])
		return line_err(err, line, "USER given twice", NULL, 0);
	if ((vn == 4 && !memcmp(v, "root", 4)) || (vn == 1 && v[0] == '0'))
		return line_err(err, line, "tasks never run as root", NULL, 0);
	if (!user_ok(v, vn))
		return line_err(err, line, "USER must be a user name ([a-z_][a-z0-9_-]{0,31}), not",
				v, vn);
	memcpy(cfg->user, v, vn);
	cfg->user[vn] = '\0';
	return 0;
}

int vplbdx_parse(const char *data, size_t len, struct vplbdx_cfg *out, struct err *err)
{
	if (len > VPLBDX_MAX_FILE)
		return err_set(err, EINVAL, "vplbdx.cfg: larger than %d bytes", VPLBDX_MAX_FILE);
	if (len && !data)
		return err_set(err, EINVAL, "vplbdx.cfg: no data");
	struct vplbdx_cfg cfg = {0};
	unsigned line = 0;
	size_t pos = 0;
	while (pos < len) {
		line++;
		const char *p = data + pos;
		const char *nl = memchr(p, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - p) : len - pos;
		pos += n + (nl ? 1 : 0);
		if (n > VPLBDX_MAX_LINE)
			return line_err(err, line, "longer than 1024 bytes", NULL, 0);
		if (memchr(p, '\0', n))
			return line_err(err, line, "contains a NUL byte", NULL, 0);
		if (parse_line(p, n, line, &cfg, err) < 0)
			return -1;
	}
	*out = cfg;
	return 0;
}
