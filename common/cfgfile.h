/*
 * cfgfile.h - generic reader for `NAME=VALUE` configuration files, and the
 * value parsers (sizes, integers, booleans) that configurations share.
 *
 * Contract:
 *  - Syntax, line by line (LF or CRLF line ends): blank lines and lines whose
 *    first non-blank character is `#` are skipped; every other line must be
 *    `NAME=VALUE`, with optional spaces/tabs before NAME and around `=`.
 *    NAME is 1..64 characters of [A-Za-z0-9_] and is upper-cased before the
 *    callback sees it. An unquoted VALUE ends at the first `#` and is trimmed
 *    of spaces/tabs. A VALUE that starts with ' or " extends to the matching
 *    closing quote (a `#` inside is kept) and the quotes are removed; after
 *    the closing quote only blanks and a `#` comment may follow. There are no
 *    escape sequences. Quotes inside an unquoted value are literal.
 *  - Anything else is a syntax error: a line without `=`, a bad NAME, an
 *    unterminated quote, text after a closing quote, a NUL byte, a line
 *    longer than CFG_MAX_LINE, a file larger than CFG_MAX_FILE.
 *  - The callback runs once per entry, in file order, with NUL-terminated
 *    name and value that live only during the call (copy what you keep).
 *    It returns 0 to continue or -1 (having filled err with "why", e.g.
 *    "MAXTIME: not an integer") to stop. Every error leaving cfg_parse_*
 *    is prefixed with "FILE:LINE: ".
 *  - The parsers take a NUL-terminated string and never allocate; on
 *    failure *out is left unchanged. Their messages quote the offending
 *    value (sanitised, truncated) so the caller can prefix the key name.
 *    Never feed them secrets.
 */
#ifndef VC_CFGFILE_H
#define VC_CFGFILE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define CFG_MAX_NAME 64
#define CFG_MAX_LINE 4096
#define CFG_MAX_FILE (1024 * 1024)

typedef int (*cfg_entry_fn)(const char *name, const char *value, const char *file, int line,
			    void *ctx, struct err *err);

/* Reads and parses the file at path (errors: cannot open/read, too large,
 * syntax, or the callback's). */
int cfg_parse_file(const char *path, cfg_entry_fn fn, void *ctx, struct err *err);

/* Parses text[0..len) as if it were the contents of a file named `file`
 * (used in messages only). */
int cfg_parse_buffer(const char *text, size_t len, const char *file, cfg_entry_fn fn, void *ctx,
		     struct err *err);

/* Size string: leading decimal integer, optional spaces/tabs, optional unit
 * letter K, M or G (either case, powers of 1024) after which anything is
 * ignored ("65M", "64 Mb", "1998 Mbytes"); no letter = bytes. Rejects empty,
 * negative, overflow and anything else after the number. */
int cfg_parse_size(const char *s, long long *out, struct err *err);

/* Strict decimal integer: optional '-' then digits, nothing else (no blanks,
 * no '+', no hex), within [min, max]. */
int cfg_parse_int(const char *s, long long min, long long max, long long *out, struct err *err);

/* true/false, yes/no, on/off, 1/0, case-insensitive. */
int cfg_parse_bool(const char *s, bool *out, struct err *err);

#endif
