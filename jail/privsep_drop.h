/*
 * privsep_drop.h - what the parser process gives up once its sockets are open.
 *
 * privsep_drop() runs in the freshly forked parser, as root, after the listening sockets
 * exist and before the first byte from the network is read. The parser was forked into a PID
 * namespace of its own (main.c), so it sees and can signal no other process. In order:
 *   - a new network namespace (unshare CLONE_NEWNET): the sockets already open keep working,
 *     but nothing new can be connected to: not containerd, not the registry, not a host
 *     service, not an abstract unix socket (those are per namespace);
 *   - new IPC and UTS namespaces;
 *   - chroot into `root` (an empty root-owned directory, or the certbot webroot when
 *     the worker serves ACME challenges): no host file is reachable;
 *   - all groups, gids and uids set to the unprivileged user (never 0), which no task
 *     shares (tasks run as the prisoner range);
 *   - no_new_privs, not dumpable (no ptrace by that uid, no core), RLIMIT_NPROC 0 and
 *     RLIMIT_CORE 0 (no process can be started);
 *   - a seccomp filter denying namespaces, mounts, chroot, ptrace, other processes' memory,
 *     BPF, keyrings and modules (a user namespace would give the chroot's way out back).
 * Each step is checked; a failure is returned and the parser must exit (a half-dropped
 * parser never serves).
 *
 * privsep_resolve_user() turns PRIVSEP_USER (a name or a number) into ids, refusing root.
 * privsep_empty_root() makes <dir>/parser-root: empty, root-owned, mode 0555.
 */
#ifndef VC_PRIVSEP_DROP_H
#define VC_PRIVSEP_DROP_H

#include <sys/types.h>

#include "err.h"

int privsep_resolve_user(const char *user, uid_t *uid, gid_t *gid, struct err *err);
int privsep_empty_root(const char *dir, char *out, size_t n, struct err *err);
int privsep_drop(uid_t uid, gid_t gid, const char *root, pid_t keeper, struct err *err);

#endif
