/*
 * vplbdx.h - the per-activity execution file vplbdx.cfg (protocol §8.2).
 *
 * Contract: vplbdx_parse() reads data[0..len) (need not be NUL-terminated), never allocates, and
 * fills *out only on success. Accepted lines, after trimming spaces/tabs and a CR:
 *     DOCKER=<image>     the task image (not validated here: see imageref.h); at most once
 *     USER=<user>        container user: a POSIX name [a-z_][a-z0-9_-]{0,31}, never root or 0
 *     FORCEPULL          also FORCEPULL=1/true/yes/on or 0/false/no/off
 *     # comment, blank line
 * Keys are case-insensitive, spaces around '=' are allowed. Anything else (unknown key, second
 * DOCKER or USER, empty DOCKER, NUL byte, line over VPLBDX_MAX_LINE bytes, file over
 * VPLBDX_MAX_FILE bytes) fails with EINVAL and "vplbdx.cfg line N: <why>", fit for a teacher.
 */
#ifndef VC_VPLBDX_H
#define VC_VPLBDX_H

#include <stddef.h>

#include "err.h"

#define VPLBDX_MAX_LINE 1024
#define VPLBDX_MAX_FILE (64 * 1024)

struct vplbdx_cfg {
	char docker[256];
	char user[33];
	int forcepull;
}; /* "" = not set */

int vplbdx_parse(const char *data, size_t len, struct vplbdx_cfg *out, struct err *err);

#endif
