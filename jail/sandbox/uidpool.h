/*
 * uidpool.h - the host uids of task containers: one per live container, never two containers
 * on one uid.
 *
 * Why: without a user namespace a container's uid IS a host uid. Had two tasks one uid, a task
 * that got past its container (a kernel or runc bug) could signal, ptrace or read the other,
 * and RLIMIT_NPROC would count both. So every container gets a uid of its own from the range
 * [base, base + count) (PRISONER_UID, PRISONER_UIDS), = its gid, from its creation until it is
 * deleted, and the uid is only handed out again once nothing can run as it any more.
 *
 * Allocation is round-robin: the search starts after the last uid handed out, so a uid just
 * released is the last one to be reused (a late process of a dying container, or a file a task
 * left in a shared place, is less likely to meet its successor). Exhausted: EBUSY, never a
 * shared uid.
 *
 * Several workers on one host: each uid in use is also claimed by a file "<claim_dir>/<uid>"
 * created with O_EXCL (content: the owner's worker id and a newline). A uid whose claim file
 * exists is someone else's and is skipped, so workers sharing a claim directory (Swarm replicas
 * share STATE_DIR) never hand out one uid twice, whatever their ranges. Workers that do NOT
 * share the directory must be given disjoint ranges. A claim outlives a crash of its worker
 * (safe: its containers may still run); uidpool_reap() removes claims that are no one's any
 * more: the caller decides, from containerd's list of containers, whether a claim is still live.
 * Reaping holds an flock on the directory, so two reapers never act on one claim; releasing
 * needs no lock (only the claim's owner unlinks it, and nobody else can create it meanwhile).
 *
 * Release: uidpool_release() when the container is gone (deleted: no process of it is left),
 * removing the claim. uidpool_abandon() when that is not known (a cleanup that failed, shutdown
 * with containers still there): the uid leaves this pool's books but its claim stays, so no one
 * takes it until a reap finds no container using it.
 *
 * Not thread-safe: the event loop's thread only. Blocking file system calls are small (one
 * create or unlink in a local directory per container).
 */
#ifndef VC_UIDPOOL_H
#define VC_UIDPOOL_H

#include <stdbool.h>

#include "err.h"

#define UIDPOOL_MAX_COUNT (1u << 20)  /* PRISONER_UIDS' upper bound: a 128 KiB bitmap */
#define UIDPOOL_MAX_UID	  2147483647u /* above, uids trouble software that keeps them signed */
#define UIDPOOL_OWNER_MAX 63

struct uidpool;

/*
 * A pool of [base, base + count). Fails with EINVAL when the range is empty, holds 0, passes
 * UIDPOOL_MAX_UID or holds 65534/65535 (nobody, and the 16-bit (uid_t)-1), or count is above
 * UIDPOOL_MAX_COUNT. claim_dir NULL: no claim files (one worker per host, or tests); else it is
 * created (0700) if missing and must be a directory (not a symlink); owner ([A-Za-z0-9._-],
 * 1..UIDPOOL_OWNER_MAX bytes) is written into each claim.
 */
struct uidpool *uidpool_new(unsigned base, unsigned count, const char *claim_dir, const char *owner,
			    struct err *err);
/* Frees the books; claim files are left as they are (see "Release"). NULL is fine. */
void uidpool_free(struct uidpool *p);

/* Hands out the next free uid (round-robin) and claims it. -1 with EBUSY when every uid of
 * the range is in use (here or by a claim), or with the claim's errno when a claim file
 * cannot be made (then nothing is handed out: uniqueness cannot be proven). */
int uidpool_acquire(struct uidpool *p, unsigned *uid, struct err *err);

/* The container that had uid is gone: the uid is free again (its claim removed). A uid not
 * held (or outside the range) is ignored. */
void uidpool_release(struct uidpool *p, unsigned uid);

/* Whether the container is gone is not known: off the books, claim kept (see above). */
void uidpool_abandon(struct uidpool *p, unsigned uid);

/* uids held by this pool. */
unsigned uidpool_used(const struct uidpool *p);
bool uidpool_holds(const struct uidpool *p, unsigned uid);

/*
 * Removes the claims that are no one's: for every claim file in the directory whose uid this
 * pool does not hold, live(arg, owner, uid) decides (owner is the file's content, "" when it
 * cannot be read); false -> the claim is removed. Returns how many were removed; 0 when there
 * is no claim directory or another reaper holds the lock. live() must not call into the pool.
 */
unsigned uidpool_reap(struct uidpool *p, bool (*live)(void *arg, const char *owner, unsigned uid),
		      void *arg);

#endif
