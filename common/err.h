/*
 * err.h - errors as values.
 *
 * Contract: a fallible function takes `struct err *err` as its last argument,
 * returns -1 (or NULL) on failure and fills *err with a code and a message
 * saying what failed and why. Nothing is printed deep inside; the caller that
 * reports the error decides where it goes. `err` may be NULL when the caller
 * does not care. The message is fixed-size, so an error never allocates.
 */
#ifndef VC_ERR_H
#define VC_ERR_H

#include <stddef.h>

struct err {
	int code;      /* errno-like or module-specific; 0 = no error */
	char msg[256]; /* human-readable, never contains secrets */
};

/* Sets *err (if not NULL) from a printf format; always returns -1. */
int err_set(struct err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Like err_set but appends ": strerror(errnum)". */
int err_sys(struct err *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with context ("loading config: ..."). */
int err_wrap(struct err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void err_clear(struct err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

/* Cleanup helpers in crun's style: ownership ends with the scope. */
void cleanup_freep(void *p);
void cleanup_closep(int *fd);
#define cleanup_free  __attribute__((cleanup(cleanup_freep)))
#define cleanup_close __attribute__((cleanup(cleanup_closep)))

/* Transfers ownership out of a cleanup-annotated variable. */
#define steal_pointer(pp)                                                                          \
	({                                                                                         \
		__typeof__(*(pp)) _p = *(pp);                                                      \
		*(pp) = NULL;                                                                      \
		_p;                                                                                \
	})

#endif
