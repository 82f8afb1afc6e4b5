/*
 * filename.h - validation of the relative paths of `files` and
 * `filestodelete` (protocol §3.1), before anything touches the disk.
 *
 * Contract: filename_check() looks at name[0..len) only (the name need not
 * be NUL-terminated and may contain NUL bytes, which are rejected) and
 * never allocates. On success *norm and *normlen (each may be NULL) describe the
 * path to use: the same bytes with one leading "/" or "./" skipped, so *norm
 * points inside name and lives as long as it does. Rules:
 *  - the whole name, as received (prefix included, as the reference
 *    measures it), is 1..FILENAME_MAX_PATH bytes;
 *  - exactly one leading "/" or "./" is skipped; what follows must still be
 *    a relative path, so "//a", "/./a", "././a" and ".//a" are rejected (an
 *    empty or "." component), as is a name that is only "/" or "./";
 *  - the rest splits at '/' into components of 1..FILENAME_MAX_COMPONENT
 *    bytes: not "." or "..", no leading or trailing space, no byte below
 *    0x20 nor 0x7f, none of  " ' \ ^ `  (a trailing '/' or "a//b" gives
 *    an empty component and is rejected);
 *  - bytes >= 0x80 are accepted as they are (UTF-8 names), as are spaces
 *    inside a component and ? * < > | & % # @ ! ( ) [ ] { } ~ = , - $ ; +
 * On failure err gets EINVAL and "Incorrect file name '<name>': <why>"
 * (the name sanitised and truncated), suitable for a 400 answer.
 */
#ifndef VC_FILENAME_H
#define VC_FILENAME_H

#include <stddef.h>

#include "err.h"

#define FILENAME_MAX_COMPONENT 128
#define FILENAME_MAX_PATH      256

int filename_check(const char *name, size_t len, const char **norm, size_t *normlen,
		   struct err *err);

#endif
