#include "seccomp.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>

/*
 * The ALLOW list: Docker's unconditional list (moby profiles/seccomp/default.json) minus
 * io_uring_enter/io_uring_register/io_uring_setup, name_to_handle_at and fanotify_mark (see
 * below). Names unknown on the running architecture are skipped by runc and crun, so the
 * 32-bit-only names (socketcall, ipc, *_time64, ...) are harmless on x86_64 and matter for the
 * x86 compat ABI, which the filter covers too.
 *
 * Entries that look dangerous but are safe for a container WITHOUT capabilities:
 *  - adjtimex, clock_adjtime: read the clock state; any write (modes != 0) needs CAP_SYS_TIME.
 *    The argument is a pointer, so seccomp could not tell a read from a write anyway.
 *  - mknod, mknodat: without CAP_MKNOD only FIFOs and sockets can be made (mkfifo needs it).
 *  - setuid & co, setgroups: without CAP_SETUID/SETGID they can only drop privileges.
 *  - sched_setscheduler/setattr, setpriority, ioprio_set: without CAP_SYS_NICE a process can
 *    only lower its own priority.
 *  - seccomp, landlock_*: a process may only restrict itself further.
 *  - mlock*: bounded by RLIMIT_MEMLOCK and the memory cgroup.
 *  - kill, tgkill: the pid namespace only shows the container's own processes.
 */
static const char *const allowed[] = {
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset", "chdir",
    "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat", "dup",
    "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
    "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat",
    "exit", "exit_group", "faccessat", "faccessat2", "fadvise64", "fadvise64_64", "fallocate",
    "fchdir", "fchmod", "fchmodat", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64",
    "fdatasync", "fgetxattr", "flistxattr", "flock", "fork", "fremovexattr", "fsetxattr", "fstat",
    "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
    "futex_time64", "futex_waitv", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
    "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32", "getgroups",
    "getgroups32", "getitimer", "getpeername", "getpgid", "getpgrp", "getpid", "getppid",
    "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit",
    "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
    "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup", "io_submit",
    "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self",
    "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr",
    "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink",
    "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
    "nanosleep", "newfstatat", "_newselect", "open", "openat", "openat2", "pause", "pidfd_open",
    "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll",
    "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
    "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg",
    "recvmmsg_time64", "recvmsg", "remap_file_pages", "removexattr", "rename", "renameat",
    "renameat2", "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
    "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait",
    "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr",
    "sched_getparam", "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity", "sched_setattr",
    "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp", "select", "semctl", "semget",
    "semop", "semtimedop", "semtimedop_time64", "send", "sendfile", "sendfile64", "sendmmsg",
    "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32",
    "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit",
    "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
    "setuid32", "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
    "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice",
    "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask", "uname",
    "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
    "wait4", "waitid", "waitpid", "write", "writev",
    /*
     * Left out on purpose although Docker allows them:
     *  - io_uring_setup/enter/register: a large, frequently exploited kernel surface, and the
     *    operations it performs are not seen by seccomp at all. Nothing we run needs it.
     *  - name_to_handle_at: the first half of the open_by_handle_at pair ("shocker" escape);
     *    harmless alone, useless to students.
     *  - fanotify_mark: useless without fanotify_init, which needs CAP_SYS_ADMIN here.
     *  - modify_ldt (below, x86): only 16-bit/Wine code needs it; several kernel bugs.
     *
     * Never allowed (not in the list, so EPERM): mount, umount2, pivot_root, chroot, ptrace,
     * process_vm_readv/writev, kcmp, pidfd_getfd, kexec_load, kexec_file_load, init_module,
     * finit_module, delete_module, bpf, perf_event_open, add_key, keyctl, request_key,
     * unshare, setns, open_by_handle_at, userfaultfd (a classic way to win kernel races),
     * swapon, swapoff, reboot, settimeofday, clock_settime, stime, acct, quotactl,
     * lookup_dcookie, vm86, vm86old, uselib, ustat, sysfs, _sysctl, iopl, ioperm, syslog,
     * nfsservctl, get_kernel_syms, query_module, create_module, the new mount API
     * (fsopen, fsmount, move_mount, open_tree, ...), sethostname, setdomainname, vhangup.
     */
    NULL};

#if defined(__x86_64__)
static const char *const arches[] = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", NULL};
static const char *const allowed_arch[] = {"arch_prctl", NULL};
#elif defined(__aarch64__)
static const char *const arches[] = {"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", NULL};
static const char *const allowed_arch[] = {"arm_fadvise64_64",
					   "arm_sync_file_range",
					   "sync_file_range2",
					   "breakpoint",
					   "cacheflush",
					   "set_tls",
					   NULL};
#else
/* Unknown build architecture: an empty list means "native only" to runc and crun; syscalls of
 * any other ABI then hit the bad-architecture action and fail. Restrictive, never permissive. */
static const char *const arches[] = {NULL};
static const char *const allowed_arch[] = {NULL};
#endif

/*
 * personality(2) values Docker allows: PER_LINUX (0), PER_LINUX32 (8), UNAME26 (0x20000),
 * UNAME26|PER_LINUX32 and 0xffffffff (query only). Other personalities change kernel behaviour
 * for the process, such as READ_IMPLIES_EXEC or ADDR_NO_RANDOMIZE (ASLR off).
 */
static const json_int_t personalities[] = {0x0, 0x8, 0x20000, 0x20008, 0xffffffff};

/* clone(2) may not create namespaces. CLONE_NEWTIME (0x80) cannot be filtered on clone, where
 * it overlaps the exit signal; clone3 and unshare, which could pass it, are not allowed. */
#define CLONE_NS_FLAGS                                                                             \
	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |             \
	 CLONE_NEWPID | CLONE_NEWNET)

static json_t *string_array(const char *const *v)
{
	json_t *a = json_array();
	for (; a && *v; v++)
		if (json_array_append_new(a, json_string(*v)) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* {"names":[name],"action":"SCMP_ACT_ALLOW","args":[{index, value, valueTwo, op}]} */
static json_t *allow_if_arg(const char *name, unsigned index, json_int_t value,
			    json_int_t value_two, const char *op)
{
	return json_pack("{s:[s],s:s,s:[{s:i,s:I,s:I,s:s}]}", "names", name, "action",
			 "SCMP_ACT_ALLOW", "args", "index", (int)index, "value", value, "valueTwo",
			 value_two, "op", op);
}

static int append(json_t *rules, json_t *rule)
{
	return rule ? json_array_append_new(rules, rule) : -1;
}

static json_t *build_rules(void)
{
	json_t *rules = json_array();
	if (!rules)
		return NULL;
	int bad = 0;
	bad |= append(rules, json_pack("{s:o,s:s}", "names", string_array(allowed), "action",
				       "SCMP_ACT_ALLOW"));
	if (allowed_arch[0])
		bad |= append(rules, json_pack("{s:o,s:s}", "names", string_array(allowed_arch),
					       "action", "SCMP_ACT_ALLOW"));
	/* SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo, i.e. none of the namespace flags. */
	bad |= append(rules, allow_if_arg("clone", 0, CLONE_NS_FLAGS, 0, "SCMP_CMP_MASKED_EQ"));
	/* clone3 passes its flags in a struct that seccomp cannot read, so it cannot get the
	 * rule above; ENOSYS (not EPERM) makes glibc fall back to clone. */
	bad |= append(rules, json_pack("{s:[s],s:s,s:i}", "names", "clone3", "action",
				       "SCMP_ACT_ERRNO", "errnoRet", ENOSYS));
	for (size_t i = 0; i < sizeof personalities / sizeof personalities[0]; i++)
		bad |= append(rules,
			      allow_if_arg("personality", 0, personalities[i], 0, "SCMP_CMP_EQ"));
	/* Any socket family but AF_VSOCK (40), which talks to the hypervisor, not the netns. */
	bad |= append(rules, allow_if_arg("socket", 0, 40, 0, "SCMP_CMP_NE"));
	if (bad) {
		json_decref(rules);
		return NULL;
	}
	return rules;
}

json_t *seccomp_default_profile(void)
{
	return json_pack("{s:s,s:i,s:o,s:o}", "defaultAction", "SCMP_ACT_ERRNO", "defaultErrnoRet",
			 EPERM, "architectures", string_array(arches), "syscalls", build_rules());
}
