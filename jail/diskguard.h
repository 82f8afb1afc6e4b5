/*
 * diskguard.h - refuse new tasks while a filesystem the worker writes to is (nearly) full.
 *
 * A full disk must make new requests fail with a clear answer while running tasks finish:
 * a task started on a full disk fails somewhere deep (a FIFO not made, a snapshot not
 * prepared, an image blob not written) with a message that says little. The guard answers
 * first, from statvfs(3), for the filesystems of:
 *   - STATE_DIR (the tasks' FIFO directories): needs inodes more than bytes, so it is held
 *     to the smaller of MIN_FREE_DISK and DISKGUARD_STATE_MIN bytes, and DISKGUARD_MIN_INODES
 *     free inodes (a tmpfs /run on a small host must not refuse everything);
 *   - containerd's root (content store, snapshots, metadata), when known: MIN_FREE_DISK.
 *
 * Contract:
 *  - diskguard_init() sets the threshold (bytes; 0 = the guard is off: never low) and
 *    empties the path list; diskguard_add() adds a path with its byte threshold (at most
 *    DISKGUARD_MAX_PATHS; a path longer than PATH_MAX or one too many is an error).
 *  - diskguard_setup() is init + STATE_DIR + containerd's root for a configuration. The root
 *    is found from containerd's process (envcheck_containerd_root: its --root or config
 *    file); when containerd is not found (not running yet, or in another PID namespace) the
 *    search is repeated at most every DISKGUARD_FIND_MS, from diskguard_low(), until found.
 *    It must run where the filesystems are visible (not in a chroot).
 *  - diskguard_low() says whether any path is below its thresholds, from statvfs results
 *    at most DISKGUARD_CACHE_MS old by the caller's monotonic clock `now_ms` (a request
 *    burst costs one statvfs per path per second). A path statvfs cannot read (missing,
 *    EACCES) counts as fine: the guard cannot judge it, and tasks then fail on their own.
 *    On each change low <-> fine it logs one line (warning / info) naming the path.
 *    `why` (may be NULL) gets a message for the client: plain, no path (paths are the
 *    operator's business; the log has them).
 *  - diskguard_refuse() is diskguard_low() for a new task: when low it also counts the
 *    refusal and logs at most one warning per DISKGUARD_LOG_MS with the count since the
 *    last one (a full disk under exam load must not flood the log it may share).
 *  - diskguard_report() is for a process that cannot see the filesystems (the privsep
 *    parser: chrooted, unprivileged): another process that can (the keeper) runs the
 *    checks and forwards each change of verdict; from the first report on, diskguard_low()
 *    and diskguard_refuse() answer from the last report and stat nothing.
 *  - Single-threaded; no allocation; the struct owns nothing (plain copy of the paths).
 *  - `stat` is statvfs and `find_root` envcheck_containerd_root unless a test replaces them.
 */
#ifndef VC_JAIL_DISKGUARD_H
#define VC_JAIL_DISKGUARD_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "config.h"
#include "err.h"

#define DISKGUARD_MAX_PATHS  4
#define DISKGUARD_CACHE_MS   1000
#define DISKGUARD_LOG_MS     60000
#define DISKGUARD_MIN_INODES 1000
#define DISKGUARD_STATE_MIN  (16LL * 1024 * 1024)
#define DISKGUARD_FIND_MS    60000

struct diskguard_path {
	char path[PATH_MAX];
	char what[32];	    /* "STATE_DIR", "containerd root": for the log */
	long long min_free; /* bytes available to unprivileged users (f_bavail) */
	bool low;	    /* as of the last check */
};

struct diskguard {
	long long min_free; /* MIN_FREE_DISK; 0 = off */
	int npaths;
	struct diskguard_path paths[DISKGUARD_MAX_PATHS];
	int (*stat)(const char *path, struct statvfs *st);
	/* containerd's root, while not found yet (ctrd_socket non-empty): */
	char ctrd_socket[PATH_MAX];
	int (*find_root)(const char *socket, char *root, size_t n); /* 1 found, 0 not */
	int64_t find_ms;					    /* last search */
	bool find_tried;
	bool checked;	    /* checked_ms is valid */
	int64_t checked_ms; /* last statvfs round */
	bool low;	    /* any path low, as of checked_ms */
	char why[160];	    /* the client's message while low */
	int64_t logged_ms;  /* last refusal warning */
	bool logged;
	unsigned long refused; /* refusals since the last warning */
	bool reported;	       /* low/why come from diskguard_report(), not from statvfs */
};

void diskguard_init(struct diskguard *g, long long min_free);
int diskguard_add(struct diskguard *g, const char *what, const char *path, long long min_free,
		  struct err *err);
int diskguard_setup(struct diskguard *g, const struct jail_config *cfg, struct err *err);
bool diskguard_low(struct diskguard *g, int64_t now_ms, char *why, size_t n);
void diskguard_report(struct diskguard *g, bool low, const char *why);
bool diskguard_refuse(struct diskguard *g, int64_t now_ms, char *why, size_t n);

#endif
