/*
 * imagepasswd.h - an image's /etc/passwd parsed (pure), for imageuser.c's USER= lookup.
 *
 * Split out of imageuser.c so that the parser can be built and fuzzed without the containerd
 * client and libarchive (tests/fuzz/fuzz_passwd.c); imageuser.h includes this header, so its
 * users see the same API.
 */
#ifndef VC_IMAGEPASSWD_H
#define VC_IMAGEPASSWD_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define IMAGE_USER_PASSWD_MAX (1024 * 1024)
#define IMAGE_USER_NAME_MAX   32

struct image_user {
	char name[IMAGE_USER_NAME_MAX + 1];
	unsigned uid, gid;
	char home[256];
};

/*
 * image_user_lookup() (imageuser.h) on a passwd file's bytes (pure). The file is parsed strictly,
 * every line of it: lines are name:password:uid:gid:gecos:home:shell (exactly 7 fields), uid and
 * gid plain decimal below 4294967295, a non-empty name, no NUL nor control characters; empty lines
 * and '#' comments are skipped (as glibc does). The first line for USER counts (as getpwnam); its
 * home must be an absolute path shorter than sizeof out->home. Any malformed line fails with
 * EBADMSG naming it. *out is zeroed first and filled only on success.
 */
int passwd_lookup(const char *data, size_t len, const char *user, struct image_user *out,
		  struct err *err);

/* The rule vplbdx.c applies to USER=: [a-z_][a-z0-9_-]{0,31}. */
bool image_user_name_ok(const char *u);

/* A string from outside, safe to put in a message: printable ASCII, truncated to 80 bytes plus
 * "...". Returns out. */
const char *image_user_shown(const char *s, char out[100]);

#endif
