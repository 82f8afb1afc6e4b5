/*
 * log.h - one line per event, to stderr or syslog.
 *
 * Contract: callers never pass secrets (tickets, URLPATH, keys) to these
 * functions; log_sanitize() exists for untrusted text that must be quoted
 * (it escapes control bytes so one log call is always one line).
 * Levels follow syslog: 3 err, 4 warning, 6 info, 7 debug.
 */
#ifndef VC_LOG_H
#define VC_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_ERR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

void log_open(const char *ident, int use_syslog, int level);
void log_set_level(int level);
int log_level(void);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   log_msg(LOG_LVL_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

/* Copies at most n bytes of s into out (size outsz), escaping non-printable
 * bytes as \xHH; always NUL-terminates. Returns out. */
char *log_sanitize(char *out, size_t outsz, const char *s, size_t n);

#endif
