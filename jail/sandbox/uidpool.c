#include "uidpool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

struct uidpool {
	unsigned base, count;
	unsigned next; /* index where the next search starts */
	unsigned used;
	int dirfd;			   /* the claim directory, or -1 */
	char owner[UIDPOOL_OWNER_MAX + 2]; /* with its newline, as written into claims */
	size_t owner_len;
	uint64_t bits[]; /* bit i: base + i is held here */
};

static bool bit_get(const struct uidpool *p, unsigned i)
{
	return (p->bits[i / 64] >> (i % 64)) & 1;
}

static void bit_set(struct uidpool *p, unsigned i, bool on)
{
	if (on)
		p->bits[i / 64] |= (uint64_t)1 << (i % 64);
	else
		p->bits[i / 64] &= ~((uint64_t)1 << (i % 64));
}

static int check_range(unsigned base, unsigned count, struct err *err)
{
	if (count == 0 || count > UIDPOOL_MAX_COUNT)
		return err_set(err, EINVAL, "%u task uids: between 1 and %u", count,
			       UIDPOOL_MAX_COUNT);
	if (base == 0)
		return err_set(err, EINVAL, "task uids from 0: a task never runs as root");
	if (base > UIDPOOL_MAX_UID || count - 1 > UIDPOOL_MAX_UID - base)
		return err_set(err, EINVAL, "task uids %u + %u: past %u", base, count,
			       UIDPOOL_MAX_UID);
	unsigned last = base + (count - 1);
	if (base <= 65535 && last >= 65534)
		return err_set(err, EINVAL,
			       "task uids %u..%u include 65534 (nobody) or 65535 (the 16-bit -1)",
			       base, last);
	return 0;
}

static bool owner_ok(const char *o)
{
	size_t n = strlen(o);
	if (n == 0 || n > UIDPOOL_OWNER_MAX)
		return false;
	for (; *o; o++)
		if (!((*o >= 'a' && *o <= 'z') || (*o >= 'A' && *o <= 'Z') ||
		      (*o >= '0' && *o <= '9') || *o == '.' || *o == '_' || *o == '-'))
			return false;
	return true;
}

/* The claim directory: made if missing, and it must be a real directory (a symlink there
 * could send claims, and their unlinks, anywhere). */
static int open_claim_dir(const char *dir, struct err *err)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return err_sys(err, errno, "task uid claims %s", dir);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return err_sys(err, errno, "task uid claims %s", dir);
	return fd;
}

struct uidpool *uidpool_new(unsigned base, unsigned count, const char *claim_dir, const char *owner,
			    struct err *err)
{
	if (check_range(base, count, err) < 0)
		return NULL;
	if (claim_dir && (!owner || !owner_ok(owner))) {
		err_set(err, EINVAL, "task uid claims: bad owner name");
		return NULL;
	}
	size_t words = (count + 63) / 64;
	struct uidpool *p = calloc(1, sizeof *p + words * sizeof p->bits[0]);
	if (!p) {
		err_sys(err, ENOMEM, "allocating the task uid pool");
		return NULL;
	}
	p->base = base;
	p->count = count;
	p->dirfd = -1;
	if (claim_dir) {
		p->owner_len = (size_t)snprintf(p->owner, sizeof p->owner, "%s\n", owner);
		if ((p->dirfd = open_claim_dir(claim_dir, err)) < 0) {
			free(p);
			return NULL;
		}
	}
	return p;
}

void uidpool_free(struct uidpool *p)
{
	if (!p)
		return;
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p);
}

/* 0: claimed; 1: someone's claim is there; -1 with err. */
static int claim(struct uidpool *p, unsigned uid, struct err *err)
{
	if (p->dirfd < 0)
		return 0;
	char name[16];
	snprintf(name, sizeof name, "%u", uid);
	int fd = openat(p->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno == EEXIST ? 1 : err_sys(err, errno, "claiming task uid %u", uid);
	ssize_t w = write(fd, p->owner, p->owner_len);
	int saved = errno;
	if (close(fd) < 0 && w == (ssize_t)p->owner_len) {
		w = -1;
		saved = errno;
	}
	if (w != (ssize_t)p->owner_len) {
		/* A claim without its owner could never be judged: take it back. */
		unlinkat(p->dirfd, name, 0);
		return err_sys(err, w < 0 ? saved : EIO, "claiming task uid %u", uid);
	}
	return 0;
}

int uidpool_acquire(struct uidpool *p, unsigned *uid, struct err *err)
{
	unsigned taken = 0; /* claims of others met on the way */
	for (unsigned k = 0; k < p->count; k++) {
		unsigned i = (p->next + k) % p->count;
		if (bit_get(p, i))
			continue;
		int c = claim(p, p->base + i, err);
		if (c < 0)
			return -1;
		if (c > 0) {
			taken++;
			continue;
		}
		bit_set(p, i, true);
		p->used++;
		p->next = (i + 1) % p->count;
		*uid = p->base + i;
		return 0;
	}
	return err_set(err, EBUSY,
		       "all %u task uids are in use (%u by this worker, %u by others or not yet "
		       "released; PRISONER_UIDS)",
		       p->count, p->used, taken);
}

static bool held_index(const struct uidpool *p, unsigned uid, unsigned *i)
{
	if (uid < p->base || uid - p->base >= p->count || !bit_get(p, uid - p->base))
		return false;
	*i = uid - p->base;
	return true;
}

void uidpool_release(struct uidpool *p, unsigned uid)
{
	unsigned i;
	if (!held_index(p, uid, &i))
		return;
	if (p->dirfd >= 0) {
		char name[16];
		snprintf(name, sizeof name, "%u", uid);
		/* A failed unlink leaves a claim of ours that we do not hold: a reap takes it
		 * once no container uses the uid. */
		unlinkat(p->dirfd, name, 0);
	}
	bit_set(p, i, false);
	p->used--;
}

void uidpool_abandon(struct uidpool *p, unsigned uid)
{
	unsigned i;
	if (!held_index(p, uid, &i))
		return;
	bit_set(p, i, false);
	p->used--;
}

unsigned uidpool_used(const struct uidpool *p)
{
	return p->used;
}

bool uidpool_holds(const struct uidpool *p, unsigned uid)
{
	unsigned i;
	return held_index(p, uid, &i);
}

/* A claim's name: a decimal uid without sign or leading zero. */
static bool claim_name(const char *s, unsigned *uid)
{
	if (*s < '1' || *s > '9')
		return false;
	unsigned long long v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > UIDPOOL_MAX_UID)
			return false;
	}
	*uid = (unsigned)v;
	return true;
}

static void read_owner(int dirfd, const char *name, char *owner, size_t n)
{
	owner[0] = '\0';
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t r = read(fd, owner, n - 1);
	close(fd);
	if (r <= 0)
		return;
	owner[r] = '\0';
	owner[strcspn(owner, "\n")] = '\0';
}

unsigned uidpool_reap(struct uidpool *p, bool (*live)(void *arg, const char *owner, unsigned uid),
		      void *arg)
{
	if (p->dirfd < 0 || flock(p->dirfd, LOCK_EX | LOCK_NB) < 0)
		return 0;
	unsigned removed = 0;
	int fd = openat(p->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d && fd >= 0)
		close(fd);
	for (struct dirent *e; d && (e = readdir(d));) {
		unsigned uid;
		if (!claim_name(e->d_name, &uid) || uidpool_holds(p, uid))
			continue;
		char owner[UIDPOOL_OWNER_MAX + 2];
		read_owner(p->dirfd, e->d_name, owner, sizeof owner);
		if (!live(arg, owner, uid) && unlinkat(p->dirfd, e->d_name, 0) == 0)
			removed++;
	}
	if (d)
		closedir(d);
	flock(p->dirfd, LOCK_UN);
	return removed;
}
