#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static int g_level = LOG_LVL_INFO;
static int g_syslog;
static const char *g_ident = "vplcell";

void log_open(const char *ident, int use_syslog, int level)
{
	g_ident = ident;
	g_syslog = use_syslog;
	g_level = level;
	if (use_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(int level)
{
	g_level = level;
}

int log_level(void)
{
	return g_level;
}

void log_msg(int level, const char *fmt, ...)
{
	if (level > g_level)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* One event, one line: never let a message break the log format. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (g_syslog) {
		syslog(level, "%s", line);
		return;
	}
	static const char *names[] = {"emerg", "alert",	 "crit", "error",
				      "warn",  "notice", "info", "debug"};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[32];
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(stderr, "%s.%03ldZ %s[%s] %s\n", when, ts.tv_nsec / 1000000, g_ident,
		names[level & 7], line);
}

char *log_sanitize(char *out, size_t outsz, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	for (size_t i = 0; i < n && o + 5 < outsz; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '\\') {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	if (outsz)
		out[o < outsz ? o : outsz - 1] = '\0';
	return out;
}
