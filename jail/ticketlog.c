#include "ticketlog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define LINE_LEN (1 + 2 * TICKET_DIGEST_LEN + 1) /* "+<hex>\n" */

struct ticketlog {
	char path[4096];
	int fd;
	size_t written;	     /* bytes in the file */
	unsigned char *live; /* digests of tasks started and not ended */
	size_t nlive, cap;
};

static void hex(const unsigned char *d, char *out)
{
	static const char x[] = "0123456789abcdef";
	for (size_t i = 0; i < TICKET_DIGEST_LEN; i++) {
		out[2 * i] = x[d[i] >> 4];
		out[2 * i + 1] = x[d[i] & 15];
	}
}

static int unhex(const char *s, unsigned char *d)
{
	for (size_t i = 0; i < 2 * TICKET_DIGEST_LEN; i++) {
		char c = s[i];
		int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (v < 0)
			return -1;
		d[i / 2] = (unsigned char)(i % 2 ? d[i / 2] | v : v << 4);
	}
	return 0;
}

static long find(const unsigned char *set, size_t n, const unsigned char *d)
{
	for (size_t i = 0; i < n; i++)
		if (memcmp(set + i * TICKET_DIGEST_LEN, d, TICKET_DIGEST_LEN) == 0)
			return (long)i;
	return -1;
}

static int push(unsigned char **set, size_t *n, size_t *cap, const unsigned char *d)
{
	if (*n == *cap) {
		size_t nc = *cap ? 2 * *cap : 64;
		unsigned char *p = realloc(*set, nc * TICKET_DIGEST_LEN);
		if (!p)
			return -1;
		*set = p;
		*cap = nc;
	}
	memcpy(*set + *n * TICKET_DIGEST_LEN, d, TICKET_DIGEST_LEN);
	(*n)++;
	return 0;
}

static void drop(unsigned char *set, size_t *n, size_t i)
{
	memmove(set + i * TICKET_DIGEST_LEN, set + (i + 1) * TICKET_DIGEST_LEN,
		(*n - i - 1) * TICKET_DIGEST_LEN);
	(*n)--;
}

static void put_line(struct ticketlog *tl, char op, const unsigned char *d)
{
	char line[LINE_LEN];
	line[0] = op;
	hex(d, line + 1);
	line[LINE_LEN - 1] = '\n';
	if (tl->fd >= 0 && write(tl->fd, line, sizeof line) == (ssize_t)sizeof line)
		tl->written += sizeof line;
}

/* The file anew, with the live tasks only: written beside it, then renamed over it. */
static int rewrite(struct ticketlog *tl, struct err *err)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.new", tl->path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return err_sys(err, errno, "%s", tmp);
	if (tl->fd >= 0)
		close(tl->fd);
	tl->fd = fd;
	tl->written = 0;
	for (size_t i = 0; i < tl->nlive; i++)
		put_line(tl, '+', tl->live + i * TICKET_DIGEST_LEN);
	if (rename(tmp, tl->path) < 0)
		return err_sys(err, errno, "%s", tl->path);
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_APPEND);
	return 0;
}

struct ticketlog *ticketlog_open(const char *path, size_t max_lost, unsigned char **lost,
				 size_t *nlost, struct err *err)
{
	*lost = NULL;
	*nlost = 0;
	struct ticketlog *tl = calloc(1, sizeof *tl);
	if (!tl) {
		err_sys(err, ENOMEM, "allocating");
		return NULL;
	}
	tl->fd = -1;
	if (snprintf(tl->path, sizeof tl->path, "%s", path) >= (int)sizeof tl->path) {
		err_set(err, ENAMETOOLONG, "%s: too long", path);
		free(tl);
		return NULL;
	}
	/* What the previous run left: a missing file is a first start. */
	unsigned char *set = NULL;
	size_t n = 0, cap = 0;
	FILE *f = fopen(path, "re");
	if (f) {
		struct stat st;
		char line[128];
		if (fstat(fileno(f), &st) == 0 && st.st_uid == 0 && !(st.st_mode & 077)) {
			while (fgets(line, sizeof line, f)) {
				unsigned char d[TICKET_DIGEST_LEN];
				if (strlen(line) != LINE_LEN ||
				    (line[0] != '+' && line[0] != '-') || unhex(line + 1, d) < 0)
					continue;
				long i = find(set, n, d);
				if (line[0] == '-' && i >= 0)
					drop(set, &n, (size_t)i);
				else if (line[0] == '+' && i < 0 && push(&set, &n, &cap, d) < 0)
					break;
			}
		} else {
			log_warn("%s: not root's own 0600 file: ignored", path);
		}
		fclose(f);
	}
	if (n > max_lost) { /* the newest are the ones Moodle may still ask about */
		memmove(set, set + (n - max_lost) * TICKET_DIGEST_LEN,
			max_lost * TICKET_DIGEST_LEN);
		n = max_lost;
	}
	if (rewrite(tl, err) < 0) {
		free(set);
		ticketlog_free(tl);
		return NULL;
	}
	*lost = set;
	*nlost = n;
	return tl;
}

void ticketlog_add(struct ticketlog *tl, const unsigned char d[TICKET_DIGEST_LEN])
{
	if (!tl || push(&tl->live, &tl->nlive, &tl->cap, d) < 0)
		return;
	put_line(tl, '+', d);
}

void ticketlog_remove(struct ticketlog *tl, const unsigned char d[TICKET_DIGEST_LEN])
{
	if (!tl)
		return;
	long i = find(tl->live, tl->nlive, d);
	if (i < 0)
		return;
	drop(tl->live, &tl->nlive, (size_t)i);
	put_line(tl, '-', d);
	struct err e;
	if (tl->written > TICKETLOG_COMPACT && rewrite(tl, &e) < 0)
		log_warn("ticket log: %s", e.msg);
}

void ticketlog_free(struct ticketlog *tl)
{
	if (!tl)
		return;
	if (tl->fd >= 0)
		close(tl->fd);
	free(tl->live);
	free(tl);
}
