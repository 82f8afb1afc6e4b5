#include "filestream.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int filestream_header(char *out, size_t outsz, unsigned mode, size_t namelen, size_t datalen)
{
	if (!out || (mode != 0600 && mode != 0700) || namelen < 1 ||
	    namelen > FILESTREAM_MAX_NAME || datalen > FILESTREAM_MAX_DATA)
		return -1;
	int n = snprintf(out, outsz, "F %o %zu %zu\n", mode, namelen, datalen);
	if (n < 0 || (size_t)n >= outsz)
		return -1;
	return n;
}

int filestream_end(char *out, size_t outsz)
{
	if (!out || outsz <= FILESTREAM_END_LEN)
		return -1;
	memcpy(out, FILESTREAM_END, FILESTREAM_END_LEN + 1);
	return FILESTREAM_END_LEN;
}

/*
 * Takes one field of the header: the bytes up to the next ' ' (or the end of the line) starting
 * at *pos, advancing *pos past the separator. Returns the field's length; 0 for an empty field
 * (two spaces in a row, or a missing field).
 */
static size_t next_field(const char *line, size_t len, size_t *pos, const char **field)
{
	size_t start = *pos, end = start;
	while (end < len && line[end] != ' ')
		end++;
	*field = line + start;
	*pos = end < len ? end + 1 : end;
	return end - start;
}

/* Strict decimal: 1..10 digits, no sign, no leading zero unless the value is 0, <= max. */
static int parse_decimal(const char *s, size_t n, size_t max, size_t *out)
{
	if (n < 1 || n > 10 || (n > 1 && s[0] == '0'))
		return -1;
	unsigned long long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (unsigned)(s[i] - '0'); /* 10 digits cannot overflow 64 bits */
	}
	if (v > max)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int parse_mode(const char *s, size_t n, unsigned *mode)
{
	/* The only two modes the protocol knows (taskfiles.c: 0700 for "*.sh", 0600 else);
	 * anything else, setuid/setgid bits included, is refused rather than masked. */
	static const struct {
		const char *text;
		unsigned mode;
	} ok[] = {{"600", 0600}, {"0600", 0600}, {"700", 0700}, {"0700", 0700}};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (strlen(ok[i].text) == n && memcmp(ok[i].text, s, n) == 0) {
			*mode = ok[i].mode;
			return 0;
		}
	}
	return -1;
}

int filestream_parse_header(const char *line, size_t len, struct filestream_hdr *h, struct err *err)
{
	if (!line || !h)
		return err_set(err, EINVAL, "header: NULL argument");
	if (len == 1 && line[0] == 'E')
		return 0;
	if (len < 2 || len >= FILESTREAM_HEADER_MAX || line[0] != 'F' || line[1] != ' ')
		return err_set(err, EINVAL, "malformed header line (expected \"F ...\" or \"E\")");
	size_t pos = 2, n;
	const char *f;
	n = next_field(line, len, &pos, &f);
	if (parse_mode(f, n, &h->mode) < 0)
		return err_set(err, EINVAL, "bad mode in header (only 600 and 700 are allowed)");
	n = next_field(line, len, &pos, &f);
	if (parse_decimal(f, n, FILESTREAM_MAX_NAME, &h->namelen) < 0 || h->namelen == 0)
		return err_set(err, EINVAL, "bad name length in header (1..%d)",
			       FILESTREAM_MAX_NAME);
	n = next_field(line, len, &pos, &f);
	if (parse_decimal(f, n, FILESTREAM_MAX_DATA, &h->datalen) < 0)
		return err_set(err, EINVAL, "bad data length in header (0..%zu)",
			       FILESTREAM_MAX_DATA);
	/* The data length must be the last field, with nothing (not even a space) after it. */
	if (pos != len || line[len - 1] == ' ')
		return err_set(err, EINVAL, "trailing bytes in header line");
	return 1;
}

static int check_component(const char *c, size_t n, struct err *err)
{
	if (n == 0)
		return err_set(err, EINVAL,
			       "empty path component (leading, trailing or double '/')");
	if (n > FILESTREAM_MAX_COMPONENT)
		return err_set(err, EINVAL, "path component longer than %d bytes",
			       FILESTREAM_MAX_COMPONENT);
	if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
		return err_set(err, EINVAL, "\".\" or \"..\" in path");
	for (size_t i = 0; i < n; i++) {
		unsigned char b = (unsigned char)c[i];
		if (b < 0x20 || b == 0x7f)
			return err_set(err, EINVAL, "control character or NUL in path");
	}
	return 0;
}

int filestream_check_path(const char *name, size_t len, struct err *err)
{
	if (!name || len == 0)
		return err_set(err, EINVAL, "empty path");
	if (len > FILESTREAM_MAX_NAME)
		return err_set(err, EINVAL, "path longer than %d bytes", FILESTREAM_MAX_NAME);
	if (name[0] == '/')
		return err_set(err, EINVAL, "absolute path");
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || name[i] == '/') {
			if (check_component(name + start, i - start, err) < 0)
				return -1;
			start = i + 1;
		}
	}
	return 0;
}
