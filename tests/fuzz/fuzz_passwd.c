/*
 * fuzz_passwd.c - libFuzzer target: passwd_lookup (jail/images/imagepasswd.c).
 *
 * Input: a first line holding the user name to look up, then the passwd file.
 * Invariants (abort() on violation):
 *  - the answer is 0 or -1 with one of EINVAL/EBADMSG/ENOENT/EPERM and a message;
 *  - EINVAL exactly when the name breaks [a-z_][a-z0-9_-]{0,31};
 *  - failure leaves *out zeroed;
 *  - success: name is the user, uid and gid nonzero, home absolute and NUL-terminated, and the
 *    file holds the line "user:*:uid:gid:*:home:*" (checked by a naive second parser that
 *    finds the first line for the user);
 *  - the lookup does not depend on what follows the file (same answer on a copy).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagepasswd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

/* The first line "user:..." of the file: its uid, gid and home fields, as text. */
static int naive_find(const char *d, size_t len, const char *user, char *uid, char *gid, char *home)
{
	size_t ul = strlen(user);
	for (size_t at = 0; at < len;) {
		const char *line = d + at;
		const char *nl = memchr(line, '\n', len - at);
		size_t n = nl ? (size_t)(nl - line) : len - at;
		at += n + 1;
		if (n > ul && !memcmp(line, user, ul) && line[ul] == ':') {
			char buf[4096];
			if (n >= sizeof buf)
				return 0;
			memcpy(buf, line, n);
			buf[n] = '\0';
			char *f[7] = {0}, *p = buf;
			for (int i = 0; i < 7; i++) {
				f[i] = p;
				p = strchr(p, ':');
				if (!p)
					break;
				*p++ = '\0';
			}
			if (!f[6])
				return 0;
			snprintf(uid, 16, "%s", f[2]);
			snprintf(gid, 16, "%s", f[3]);
			snprintf(home, 300, "%s", f[5]);
			return 1;
		}
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t ul = nl ? (size_t)(nl - (const char *)data) : size;
	if (ul > 40)
		return 0;
	char user[41];
	memcpy(user, data, ul);
	user[ul] = '\0';
	const char *file = nl ? nl + 1 : (const char *)data + size;
	size_t flen = size - (size_t)(file - (const char *)data);

	struct image_user u, u2;
	struct err e = {0}, e2 = {0};
	memset(&u, 0x5A, sizeof u);
	int rc = passwd_lookup(file, flen, user, &u, &e);

	int name_ok = image_user_name_ok(user);
	check(rc == 0 || rc == -1, "result");
	check((rc == -1 && e.code == EINVAL) == !name_ok, "EINVAL iff bad name");
	if (rc < 0) {
		static const struct image_user zero;
		check(e.msg[0] && (e.code == EINVAL || e.code == EBADMSG || e.code == ENOENT ||
				   e.code == EPERM),
		      "error code and message");
		check(!memcmp(&u, &zero, sizeof u), "failure zeroes *out");
	} else {
		check(!strcmp(u.name, user), "name");
		check(u.uid != 0 && u.gid != 0, "never root");
		check(strnlen(u.home, sizeof u.home) < sizeof u.home && u.home[0] == '/',
		      "home absolute");
		char uid[16], gid[16], home[300];
		check(naive_find(file, flen, user, uid, gid, home), "user line exists");
		check(strtoul(uid, NULL, 10) == u.uid && strtoul(gid, NULL, 10) == u.gid,
		      "uid/gid match the line");
		check(!strcmp(home, u.home), "home matches the line");
	}

	/* Same bytes in an exact-size heap copy: nothing read past the end. */
	char *copy = malloc(flen ? flen : 1);
	if (flen)
		memcpy(copy, file, flen);
	int rc2 = passwd_lookup(copy, flen, user, &u2, &e2);
	free(copy);
	check(rc2 == rc && e2.code == e.code && (rc < 0 || !memcmp(&u, &u2, sizeof u)),
	      "deterministic");
	return 0;
}
