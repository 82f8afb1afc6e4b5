#include "filename.h"

#include <errno.h>
#include <string.h>

#include "log.h"

static int reject(struct err *err, const char *name, size_t len, const char *why)
{
	char shown[160];
	log_sanitize(shown, sizeof shown, name, len < 40 ? len : 40);
	return err_set(err, EINVAL, "Incorrect file name '%s%s': %s", shown, len > 40 ? "..." : "",
		       why);
}

static const char *component_problem(const unsigned char *c, size_t n)
{
	if (n == 0)
		return "empty path component";
	if (n > FILENAME_MAX_COMPONENT)
		return "path component longer than 128 bytes";
	if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
		return "'.' and '..' are not allowed";
	if (c[0] == ' ' || c[n - 1] == ' ')
		return "leading or trailing space in a path component";
	for (size_t i = 0; i < n; i++) {
		unsigned char b = c[i];
		if (b == '\0')
			return "NUL byte";
		if (b < 0x20 || b == 0x7f)
			return "control character";
		if (b == '"' || b == '\'' || b == '\\' || b == '^' || b == '`')
			return "forbidden character (one of \" ' \\ ^ `)";
	}
	return NULL;
}

int filename_check(const char *name, size_t len, const char **norm, size_t *normlen,
		   struct err *err)
{
	if (!name || len == 0)
		return err_set(err, EINVAL, "Incorrect file name '': empty name");
	if (len > FILENAME_MAX_PATH)
		return reject(err, name, len, "path longer than 256 bytes");
	const unsigned char *p = (const unsigned char *)name;
	size_t skip = 0;
	if (p[0] == '/')
		skip = 1;
	else if (len >= 2 && p[0] == '.' && p[1] == '/')
		skip = 2;
	if (skip == len)
		return reject(err, name, len, "empty name");
	const unsigned char *s = p + skip, *end = p + len;
	for (;;) {
		const unsigned char *slash = memchr(s, '/', (size_t)(end - s));
		const unsigned char *cend = slash ? slash : end;
		const char *why = component_problem(s, (size_t)(cend - s));
		if (why)
			return reject(err, name, len, why);
		if (!slash)
			break;
		s = slash + 1;
	}
	if (norm)
		*norm = name + skip;
	if (normlen)
		*normlen = len - skip;
	return 0;
}
