#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int err_set(struct err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		err->code = code ? code : -1;
	}
	return -1;
}

int err_sys(struct err *err, int errnum, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < sizeof err->msg)
			snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s",
				 strerror(errnum));
		err->code = errnum ? errnum : -1;
	}
	return -1;
}

int err_wrap(struct err *err, const char *fmt, ...)
{
	if (err) {
		char old[sizeof err->msg];
		memcpy(old, err->msg, sizeof old);
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
		/* Context first, then as much of the old message as fits. */
		if (n >= 0 && (size_t)n + 2 < sizeof err->msg) {
			size_t at = (size_t)n;
			err->msg[at++] = ':';
			err->msg[at++] = ' ';
			size_t room = sizeof err->msg - at - 1;
			size_t ol = strnlen(old, room);
			memcpy(err->msg + at, old, ol);
			err->msg[at + ol] = '\0';
		}
		if (!err->code)
			err->code = -1;
	}
	return -1;
}

void cleanup_freep(void *p)
{
	free(*(void **)p);
}

void cleanup_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
