#include "privsep_drop.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int privsep_resolve_user(const char *user, uid_t *uid, gid_t *gid, struct err *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(user, &end, 10);
	if (*user && !*end && !errno) {
		if (v == 0 || v >= 4294967295ul)
			return err_set(err, EINVAL, "PRIVSEP_USER %s: not a usable uid", user);
		*uid = (uid_t)v;
		*gid = (gid_t)v;
		return 0;
	}
	struct passwd *pw = getpwnam(user);
	if (!pw)
		return err_set(err, ENOENT, "PRIVSEP_USER %s: no such user", user);
	if (pw->pw_uid == 0 || pw->pw_gid == 0)
		return err_set(err, EINVAL, "PRIVSEP_USER %s: is root", user);
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return 0;
}

int privsep_empty_root(const char *dir, char *out, size_t n, struct err *err)
{
	if (snprintf(out, n, "%s/parser-root", dir) >= (int)n)
		return err_set(err, ENAMETOOLONG, "STATE_DIR too long");
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return err_sys(err, errno, "STATE_DIR %s", dir);
	if (mkdir(out, 0555) < 0 && errno != EEXIST)
		return err_sys(err, errno, "%s", out);
	struct stat st;
	if (lstat(out, &st) < 0)
		return err_sys(err, errno, "%s", out);
	/* Ours only if nobody else could have put something in it. */
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & 0222 && chmod(out, 0555) < 0))
		return err_set(err, EPERM, "%s: not a root-owned directory", out);
	return 0;
}

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

/* What a parser never needs and an attacker in it would want: new namespaces (a user
 * namespace gives CAP_SYS_CHROOT back, and with it the way out of the chroot), mounts,
 * tracing, other processes' memory, kernel keyrings, modules, BPF. Denied with EPERM; the
 * rest of the kernel stays as it was (a deny list: the parser's libraries change with
 * Debian updates, and an allow list that misses one syscall takes the service down). */
static int deny_syscalls(struct err *err)
{
#ifdef SECCOMP_ARCH
#define DENY(nr)                                                                                   \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1),                                           \
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM)
	struct sock_filter f[] = {
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
	    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0),
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
	    DENY(SYS_unshare),
	    DENY(SYS_setns),
	    DENY(SYS_mount),
	    DENY(SYS_umount2),
	    DENY(SYS_pivot_root),
	    DENY(SYS_chroot),
	    DENY(SYS_ptrace),
	    DENY(SYS_process_vm_readv),
	    DENY(SYS_process_vm_writev),
	    DENY(SYS_bpf),
	    DENY(SYS_perf_event_open),
	    DENY(SYS_keyctl),
	    DENY(SYS_add_key),
	    DENY(SYS_request_key),
	    DENY(SYS_init_module),
	    DENY(SYS_finit_module),
	    DENY(SYS_delete_module),
	    DENY(SYS_kexec_load),
	    DENY(SYS_open_by_handle_at),
	    DENY(SYS_userfaultfd),
	    DENY(SYS_clone3), /* its flags cannot be looked at; glibc falls back to clone */
	    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
#undef DENY
	struct sock_fprog prog = {(unsigned short)(sizeof f / sizeof f[0]), f};
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
		return err_sys(err, errno, "seccomp");
#endif
	return 0;
}

int privsep_drop(uid_t uid, gid_t gid, const char *root, pid_t keeper, struct err *err)
{
	/* Before the chroot: the local time zone and syslog's socket (log_open's LOG_NDELAY). */
	tzset();
	if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS) < 0)
		return err_sys(err, errno, "unshare");
	if (chroot(root) < 0 || chdir("/") < 0)
		return err_sys(err, errno, "chroot %s", root);
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return err_sys(err, errno, "dropping to uid %u", (unsigned)uid);
	if (setuid(0) == 0 || geteuid() != uid || getegid() != gid)
		return err_set(err, EPERM, "the uid could be regained");
	struct rlimit zero = {0, 0};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 ||
	    setrlimit(RLIMIT_NPROC, &zero) < 0 || setrlimit(RLIMIT_CORE, &zero) < 0)
		return err_sys(err, errno, "prctl/setrlimit");
	if (deny_syscalls(err) < 0)
		return -1;
	/* No PDEATHSIG: our first parent exits on purpose (privsep_drop.h); a keeper that dies
	 * closes the channel, and the parser stops on that. */
	(void)keeper;
	return 0;
}
