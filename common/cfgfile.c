#include "cfgfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static bool is_name_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

static char to_upper(char c)
{
	return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

/* Quotes untrusted text for a message: at most 40 bytes, control bytes
 * escaped. */
static const char *quoted(char *out, size_t outsz, const char *s)
{
	size_t n = strnlen(s, 40);
	return log_sanitize(out, outsz, s, n);
}

/*
 * One line, without its LF (and without a CR before it). Fills name (upper-
 * cased) and value and returns 1 for an entry, 0 for a blank or comment line,
 * -1 for a syntax error (message without the FILE:LINE prefix).
 */
static int parse_line(const char *p, const char *end, char *name, char *value, struct err *err)
{
	for (const char *q = p; q < end; q++) {
		unsigned char c = (unsigned char)*q;
		if (c == '\0')
			return err_set(err, EINVAL, "NUL byte in line");
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return err_set(err, EINVAL, "control character 0x%02x in line", c);
	}
	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p == '#')
		return 0;

	size_t nlen = 0;
	while (p < end && is_name_char(*p)) {
		if (nlen == CFG_MAX_NAME)
			return err_set(err, EINVAL, "name longer than %d characters", CFG_MAX_NAME);
		name[nlen++] = to_upper(*p++);
	}
	name[nlen] = '\0';
	if (nlen == 0)
		return err_set(err, EINVAL, "expected NAME=VALUE");
	if (p < end && !is_blank(*p) && *p != '=') {
		unsigned char c = (unsigned char)*p;
		if (c > 0x20 && c < 0x7f)
			return err_set(err, EINVAL, "%s: invalid character '%c' in name", name, c);
		return err_set(err, EINVAL, "%s: invalid byte 0x%02x in name", name, c);
	}
	while (p < end && is_blank(*p))
		p++;
	if (p == end || *p != '=')
		return err_set(err, EINVAL, "%s: expected '=' after the name", name);
	p++;
	while (p < end && is_blank(*p))
		p++;

	const char *vstart, *vend;
	if (p < end && (*p == '"' || *p == '\'')) {
		char q = *p;
		vstart = p + 1;
		vend = memchr(vstart, q, (size_t)(end - vstart));
		if (!vend)
			return err_set(err, EINVAL, "%s: unterminated %c quote", name, q);
		const char *after = vend + 1;
		while (after < end && is_blank(*after))
			after++;
		if (after < end && *after != '#')
			return err_set(err, EINVAL, "%s: text after the closing quote", name);
	} else {
		vstart = p;
		vend = memchr(vstart, '#', (size_t)(end - vstart));
		if (!vend)
			vend = end;
		while (vend > vstart && is_blank(vend[-1]))
			vend--;
	}
	size_t vlen = (size_t)(vend - vstart);
	memcpy(value, vstart, vlen);
	value[vlen] = '\0';
	return 1;
}

int cfg_parse_buffer(const char *text, size_t len, const char *file, cfg_entry_fn fn, void *ctx,
		     struct err *err)
{
	if (len > CFG_MAX_FILE)
		return err_set(err, EFBIG, "%s: larger than %d bytes", file, CFG_MAX_FILE);
	const char *p = text, *end = text + len;
	/* A UTF-8 byte order mark left by an editor is not part of the first name. */
	if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	char name[CFG_MAX_NAME + 1];
	char value[CFG_MAX_LINE + 1];
	for (int line = 1; p < end; line++) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *next = eol ? eol + 1 : end;
		if (!eol)
			eol = end;
		if (eol > p && eol[-1] == '\r')
			eol--;
		if (eol - p > CFG_MAX_LINE)
			return err_set(err, EINVAL, "%s:%d: line longer than %d bytes", file, line,
				       CFG_MAX_LINE);
		struct err lerr;
		err_clear(&lerr);
		int r = parse_line(p, eol, name, value, &lerr);
		if (r < 0)
			return err_set(err, lerr.code, "%s:%d: %s", file, line, lerr.msg);
		if (r > 0) {
			err_clear(&lerr);
			if (fn(name, value, file, line, ctx, &lerr) < 0)
				return err_set(err, lerr.code, "%s:%d: %s", file, line,
					       lerr.msg[0] ? lerr.msg : "rejected");
		}
		p = next;
	}
	return 0;
}

int cfg_parse_file(const char *path, cfg_entry_fn fn, void *ctx, struct err *err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_sys(err, errno, "%s: cannot open", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_sys(err, errno, "%s: cannot stat", path);
	if (!S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "%s: not a regular file", path);

	struct buf b;
	buf_init(&b, CFG_MAX_FILE);
	for (;;) {
		char chunk[8192];
		ssize_t n = read(fd, chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			buf_free(&b);
			return err_sys(err, e, "%s: cannot read", path);
		}
		if (n == 0)
			break;
		if (buf_append(&b, chunk, (size_t)n, NULL) < 0) {
			buf_free(&b);
			return err_set(err, EFBIG, "%s: larger than %d bytes", path, CFG_MAX_FILE);
		}
	}
	int r = cfg_parse_buffer(b.data ? b.data : "", b.len, path, fn, ctx, err);
	buf_free(&b);
	return r;
}

int cfg_parse_size(const char *s, long long *out, struct err *err)
{
	char q[200];
	const char *p = s;
	while (is_blank(*p))
		p++;
	if (*p == '\0')
		return err_set(err, EINVAL, "empty size");
	if (*p == '-')
		return err_set(err, ERANGE, "negative size '%s'", quoted(q, sizeof q, s));
	if (*p < '0' || *p > '9')
		return err_set(err, EINVAL,
			       "'%s' is not a size (expected a number, then K, M or G)",
			       quoted(q, sizeof q, s));
	long long v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		int d = *p - '0';
		if (v > (LLONG_MAX - d) / 10)
			return err_set(err, ERANGE, "size '%s' is too large",
				       quoted(q, sizeof q, s));
		v = v * 10 + d;
	}
	while (is_blank(*p))
		p++;
	long long mul = 1;
	switch (*p) {
	case '\0':
		break;
	case 'k':
	case 'K':
		mul = 1024LL;
		break;
	case 'm':
	case 'M':
		mul = 1024LL * 1024;
		break;
	case 'g':
	case 'G':
		mul = 1024LL * 1024 * 1024;
		break;
	default:
		return err_set(err, EINVAL, "'%s' is not a size (the unit must be K, M or G)",
			       quoted(q, sizeof q, s));
	}
	if (v > LLONG_MAX / mul)
		return err_set(err, ERANGE, "size '%s' is too large", quoted(q, sizeof q, s));
	*out = v * mul;
	return 0;
}

int cfg_parse_int(const char *s, long long min, long long max, long long *out, struct err *err)
{
	char q[200];
	const char *p = s;
	bool neg = false;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (*p < '0' || *p > '9')
		return err_set(err, EINVAL, "'%s' is not an integer", quoted(q, sizeof q, s));
	long long v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		int d = *p - '0';
		if (v > (LLONG_MAX - d) / 10)
			return err_set(err, ERANGE, "'%s' is out of range [%lld, %lld]",
				       quoted(q, sizeof q, s), min, max);
		v = v * 10 + d;
	}
	if (*p != '\0')
		return err_set(err, EINVAL, "'%s' is not an integer", quoted(q, sizeof q, s));
	if (neg)
		v = -v;
	if (v < min || v > max)
		return err_set(err, ERANGE, "%lld is out of range [%lld, %lld]", v, min, max);
	*out = v;
	return 0;
}

int cfg_parse_bool(const char *s, bool *out, struct err *err)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	char q[200];
	return err_set(err, EINVAL, "'%s' is not a boolean (use true/false, yes/no, on/off, 1/0)",
		       quoted(q, sizeof q, s));
}
