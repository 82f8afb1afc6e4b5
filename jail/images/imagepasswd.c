/*
 * imagepasswd.c - see imagepasswd.h.
 */
#include "imagepasswd.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The rule vplbdx.c applies to USER=: [a-z_][a-z0-9_-]{0,31}. */
bool image_user_name_ok(const char *u)
{
	size_t n = strlen(u);
	if (n == 0 || n > IMAGE_USER_NAME_MAX)
		return false;
	if (!((u[0] >= 'a' && u[0] <= 'z') || u[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!((u[i] >= 'a' && u[i] <= 'z') || (u[i] >= '0' && u[i] <= '9') || u[i] == '_' ||
		      u[i] == '-'))
			return false;
	return true;
}

/* A string from outside, safe to put in a message: printable ASCII, truncated. */
const char *image_user_shown(const char *s, char out[100])
{
	size_t i = 0;
	for (; s && s[i] && i < 80; i++)
		out[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s && s[i])
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
	return out;
}

/* Plain decimal digits (leading zeros accepted, as glibc does), no sign nor spaces, below
 * (uid_t)-1. */
static bool parse_id(const char *p, size_t n, unsigned *out)
{
	if (n == 0 || n > 10)
		return false;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	if (v >= UINT32_MAX)
		return false;
	*out = (unsigned)v;
	return true;
}

int passwd_lookup(const char *data, size_t len, const char *user, struct image_user *out,
		  struct err *err)
{
	char s[100];
	memset(out, 0, sizeof *out);
	if (!image_user_name_ok(user))
		return err_set(err, EINVAL,
			       "'%s' is not a valid user name ([a-z_][a-z0-9_-]{0,31})",
			       image_user_shown(user, s));
	if (len > IMAGE_USER_PASSWD_MAX)
		return err_set(err, EBADMSG, "/etc/passwd is %zu bytes, more than %d", len,
			       IMAGE_USER_PASSWD_MAX);
	size_t ulen = strlen(user);
	struct image_user u = {0}; /* copied to *out only on success */
	bool found = false;
	size_t lineno = 0;
	for (size_t at = 0; at < len;) {
		const char *line = data + at;
		const char *nl = memchr(line, '\n', len - at);
		size_t n = nl ? (size_t)(nl - line) : len - at;
		at += n + (nl ? 1 : 0);
		lineno++;
		if (n == 0 || line[0] == '#')
			continue;
		/* Fields: name, password, uid, gid, gecos, home, shell. */
		const char *f[7];
		size_t fl[7];
		size_t nf = 0;
		const char *start = line;
		for (size_t i = 0; i <= n; i++) {
			if (i < n && ((unsigned char)line[i] < 0x20 || line[i] == 0x7f))
				return err_set(err, EBADMSG,
					       "/etc/passwd line %zu: control character or NUL",
					       lineno);
			if (i == n || line[i] == ':') {
				if (nf == 7)
					return err_set(err, EBADMSG,
						       "/etc/passwd line %zu: more than 7 fields",
						       lineno);
				f[nf] = start;
				fl[nf++] = (size_t)(line + i - start);
				start = line + i + 1;
			}
		}
		if (nf != 7)
			return err_set(err, EBADMSG, "/etc/passwd line %zu: %zu fields, not 7",
				       lineno, nf);
		unsigned uid, gid;
		if (fl[0] == 0)
			return err_set(err, EBADMSG, "/etc/passwd line %zu: empty user name",
				       lineno);
		if (!parse_id(f[2], fl[2], &uid) || !parse_id(f[3], fl[3], &gid))
			return err_set(err, EBADMSG,
				       "/etc/passwd line %zu: uid or gid is not a number", lineno);
		if (found || fl[0] != ulen || memcmp(f[0], user, ulen) != 0)
			continue;
		if (fl[5] == 0 || f[5][0] != '/' || fl[5] >= sizeof u.home)
			return err_set(err, EBADMSG,
				       "/etc/passwd line %zu: home of %s is not an absolute path "
				       "shorter than %zu bytes",
				       lineno, user, sizeof u.home);
		memcpy(u.name, user, ulen + 1);
		u.uid = uid;
		u.gid = gid;
		memcpy(u.home, f[5], fl[5]);
		u.home[fl[5]] = '\0';
		found = true; /* keep going: the rest of the file must be well-formed too */
	}
	if (!found)
		return err_set(err, ENOENT, "user %s does not exist in /etc/passwd", user);
	if (u.uid == 0 || u.gid == 0)
		return err_set(err, EPERM, "user %s is root (uid %u, gid %u): refused", user, u.uid,
			       u.gid);
	*out = u;
	return 0;
}
