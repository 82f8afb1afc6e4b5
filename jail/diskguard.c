#include "diskguard.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "envcheck.h"
#include "log.h"

void diskguard_init(struct diskguard *g, long long min_free)
{
	memset(g, 0, sizeof *g);
	g->min_free = min_free > 0 ? min_free : 0;
	g->stat = statvfs;
	g->find_root = envcheck_containerd_root;
}

int diskguard_add(struct diskguard *g, const char *what, const char *path, long long min_free,
		  struct err *err)
{
	if (g->npaths >= DISKGUARD_MAX_PATHS)
		return err_set(err, ENOSPC, "disk guard: more than %d paths", DISKGUARD_MAX_PATHS);
	struct diskguard_path *p = &g->paths[g->npaths];
	if (snprintf(p->path, sizeof p->path, "%s", path) >= (int)sizeof p->path)
		return err_set(err, ENAMETOOLONG, "disk guard: %s path too long", what);
	snprintf(p->what, sizeof p->what, "%s", what);
	p->min_free = min_free;
	p->low = false;
	g->npaths++;
	g->checked = false; /* the next question looks at the new path too */
	return 0;
}

int diskguard_setup(struct diskguard *g, const struct jail_config *cfg, struct err *err)
{
	diskguard_init(g, cfg->min_free_disk);
	if (g->min_free == 0)
		return 0;
	/* STATE_DIR holds FIFOs and empty directories: inodes matter, bytes hardly. */
	long long state_min = g->min_free < DISKGUARD_STATE_MIN ? g->min_free : DISKGUARD_STATE_MIN;
	if (diskguard_add(g, "STATE_DIR", cfg->state_dir, state_min, err) < 0)
		return -1;
	if (cfg->containerd_socket &&
	    snprintf(g->ctrd_socket, sizeof g->ctrd_socket, "%s", cfg->containerd_socket) >=
		(int)sizeof g->ctrd_socket)
		return err_set(err, ENAMETOOLONG, "disk guard: CONTAINERD_SOCKET too long");
	return 0;
}

/* Looks for containerd's root while it is not known, at most every DISKGUARD_FIND_MS. */
static void find_root(struct diskguard *g, int64_t now_ms)
{
	if (!g->ctrd_socket[0] || !g->find_root ||
	    (g->find_tried && now_ms - g->find_ms < DISKGUARD_FIND_MS && now_ms >= g->find_ms))
		return;
	g->find_tried = true;
	g->find_ms = now_ms;
	char root[PATH_MAX];
	if (!g->find_root(g->ctrd_socket, root, sizeof root))
		return;
	struct err e;
	if (diskguard_add(g, "containerd root", root, g->min_free, &e) < 0)
		log_warn("%s", e.msg);
	else
		log_info("disk guard: watching containerd root %s (MIN_FREE_DISK %lld MiB)", root,
			 g->min_free / (1024 * 1024));
	g->ctrd_socket[0] = '\0'; /* found (or cannot be added): no more searching */
}

static void mib(long long bytes, char *out, size_t n)
{
	/* Whole MiB, rounded down: "0 MiB free" is what a full disk says. */
	snprintf(out, n, "%lld MiB", bytes / (1024 * 1024));
}

/* One statvfs round: updates every path's `low` and the guard's verdict and message. */
static void check_all(struct diskguard *g)
{
	bool any = false;
	long long shown = -1; /* the threshold the message names */
	g->why[0] = '\0';
	for (int i = 0; i < g->npaths; i++) {
		struct diskguard_path *p = &g->paths[i];
		struct statvfs st;
		if (g->stat(p->path, &st) < 0) {
			/* Cannot judge (missing, no permission): not a reason to refuse work. */
			if (p->low)
				log_info("disk guard: %s %s cannot be checked any more (%s)",
					 p->what, p->path, strerror(errno));
			p->low = false;
			continue;
		}
		/* f_bavail: what an unprivileged writer gets; root's reserve is not ours to
		 * count on (containerd may run without it, the image layers too). */
		long long avail = (long long)st.f_bavail * (long long)st.f_frsize;
		bool no_inodes = st.f_files > 0 && st.f_favail < DISKGUARD_MIN_INODES;
		bool low = avail < p->min_free || no_inodes;
		char a[32], m[32];
		mib(avail, a, sizeof a);
		mib(p->min_free, m, sizeof m);
		if (low && !p->low)
			log_warn("disk guard: %s %s: %s free, below %s%s: new tasks are refused "
				 "until space is freed",
				 p->what, p->path, a, m, no_inodes ? ", or out of inodes" : "");
		else if (!low && p->low)
			log_info("disk guard: %s %s: %s free again: new tasks accepted", p->what,
				 p->path, a);
		p->low = low;
		/* The client hears about the most demanding filesystem that is low (containerd's
		 * root, if both are): freeing just enough for the other would not do. */
		if (low && p->min_free > shown) {
			shown = p->min_free;
			if (no_inodes && avail >= p->min_free)
				snprintf(g->why, sizeof g->why,
					 "execution server disk full (no free inodes); try again "
					 "later or another server");
			else
				snprintf(
				    g->why, sizeof g->why,
				    "execution server disk full (%s free, %s needed); try again "
				    "later or another server",
				    a, m);
		}
		any = any || low;
	}
	g->low = any;
}

void diskguard_report(struct diskguard *g, bool low, const char *why)
{
	g->reported = true;
	g->low = low;
	if (!low)
		g->why[0] = '\0';
	else
		snprintf(g->why, sizeof g->why, "%s",
			 why && *why ? why : "execution server disk full");
}

bool diskguard_low(struct diskguard *g, int64_t now_ms, char *why, size_t n)
{
	if (g->reported) {
		if (g->low && why && n)
			snprintf(why, n, "%s", g->why);
		return g->low;
	}
	if (g->min_free <= 0)
		return false;
	find_root(g, now_ms);
	if (g->npaths == 0)
		return false;
	if (!g->checked || now_ms - g->checked_ms >= DISKGUARD_CACHE_MS || now_ms < g->checked_ms) {
		check_all(g);
		g->checked = true;
		g->checked_ms = now_ms;
	}
	if (g->low && why && n)
		snprintf(why, n, "%s", g->why);
	return g->low;
}

bool diskguard_refuse(struct diskguard *g, int64_t now_ms, char *why, size_t n)
{
	if (!diskguard_low(g, now_ms, why, n))
		return false;
	g->refused++;
	if (!g->logged || now_ms - g->logged_ms >= DISKGUARD_LOG_MS || now_ms < g->logged_ms) {
		log_warn("disk guard: refused %lu new task%s: %s", g->refused,
			 g->refused == 1 ? "" : "s", g->why);
		g->logged = true;
		g->logged_ms = now_ms;
		g->refused = 0;
	}
	return true;
}
