/*
 * filestream.h - the byte stream that carries a task's files from the worker (host) to the
 * in-container helper (`vplhelper init`) through a FIFO. Both sides use this module, so they
 * cannot disagree on the format.
 *
 * Format. For each file a header line
 *     "F <mode-octal> <namelen> <datalen>\n"
 * then exactly namelen bytes of name and datalen bytes of data; the stream ends with "E\n".
 *   - mode is "600" or "700" (one leading '0' is accepted when parsing: "0600");
 *   - namelen is 1..FILESTREAM_MAX_NAME, datalen 0..FILESTREAM_MAX_DATA, both decimal with no
 *     sign, no leading zeros and no spaces other than the single separators;
 *   - a stream holds at most FILESTREAM_MAX_FILES files;
 *   - the name is a relative path that filestream_check_path() accepts.
 * Anything else is malformed, and the helper stops staging at the first malformed byte.
 *
 * Contract: pure functions over caller-owned memory, no allocation, no I/O, nothing beyond libc
 * and common/err.c, because the static helper compiles this file too (no jansson, no lws).
 * filestream_header() and filestream_end() follow snprintf's style (they return a length and
 * take no struct err) so the worker can call them on its hot path; the checking functions follow
 * err.h.
 */
#ifndef VC_FILESTREAM_H
#define VC_FILESTREAM_H

#include <stddef.h>

#include "err.h"

#define FILESTREAM_MAX_FILES	 10000
#define FILESTREAM_MAX_NAME	 256		   /* bytes of the whole relative path */
#define FILESTREAM_MAX_COMPONENT 128		   /* bytes of one path component */
#define FILESTREAM_MAX_DATA	 ((size_t)1 << 30) /* 1 GiB per file */
/* Longest header line including its '\n' ("F 0700 256 1073741824\n" is 22), with room to
 * spare; a reader that has not seen '\n' after this many bytes has a malformed stream. */
#define FILESTREAM_HEADER_MAX 48
#define FILESTREAM_END	      "E\n"
#define FILESTREAM_END_LEN    2

struct filestream_hdr {
	unsigned mode; /* 0600 or 0700 */
	size_t namelen;
	size_t datalen;
};

/*
 * Writes the header line for one file (with its '\n', NUL-terminated) into out[0..outsz).
 * Returns its length without the NUL, or -1 when mode is not 0600/0700, namelen is not
 * 1..FILESTREAM_MAX_NAME, datalen exceeds FILESTREAM_MAX_DATA, or out is too small
 * (FILESTREAM_HEADER_MAX always suffices).
 */
int filestream_header(char *out, size_t outsz, unsigned mode, size_t namelen, size_t datalen);

/* Writes FILESTREAM_END (NUL-terminated); returns FILESTREAM_END_LEN, or -1 if outsz < 3. */
int filestream_end(char *out, size_t outsz);

/*
 * Parses one header line: line[0..len) WITHOUT its '\n'. Returns 1 and fills *h for a file
 * header, 0 for the end marker "E", -1 with err (EINVAL) when the line is malformed or a value
 * is out of range.
 */
int filestream_parse_header(const char *line, size_t len, struct filestream_hdr *h,
			    struct err *err);

/*
 * Checks a file name from the stream: name[0..len) (may contain NUL bytes, which are rejected).
 * Accepted: a relative path of 1..FILESTREAM_MAX_NAME bytes whose '/'-separated components are
 * each 1..FILESTREAM_MAX_COMPONENT bytes, not "." or "..", and free of bytes below 0x20 and 0x7f.
 * So no leading '/', no "//", no trailing '/'. Bytes >= 0x80 (UTF-8) are accepted.
 * Returns 0, or -1 with err (EINVAL) saying why.
 */
int filestream_check_path(const char *name, size_t len, struct err *err);

#endif
