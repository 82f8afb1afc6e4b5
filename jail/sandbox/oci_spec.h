/*
 * oci_spec.h - the OCI runtime-spec (1.0.2) JSON documents of a task container: the container's
 * config.json (whose init is our static helper) and the Process of each exec into it.
 *
 * The container it describes (the runtime model, design.md §4):
 *   - init is /.vplcell/vplhelper ("init"), bind-mounted read-only from o->helper_path; the
 *     worker's per-task FIFO directory is bind-mounted read-only (and noexec) at /.vplcell/io;
 *   - everything runs as uid/gid (never 0) with empty capability sets, noNewPrivileges and the
 *     seccomp profile (seccomp.h, or o->seccomp_json);
 *   - read-only rootfs; tmpfs /home/prisoner (the work dir: mode 0700, owned by the prisoner,
 *     size-capped, exec allowed), /tmp (1777, size-capped, nosuid,nodev), /dev/shm (size-capped,
 *     noexec); proc, sysfs read-only, the container's own cgroups read-only (so a JVM sizes its
 *     heap from the memory limit), a private devpts instance for terminals;
 *   - new pid, ipc, uts, mount and network namespaces. o->network != 0 drops the network
 *     namespace, which means THE HOST'S NETWORK (including services on 127.0.0.1): only for
 *     activities an operator explicitly trusts;
 *   - cgroup limits: memory = memory+swap = lim.maxmemory, pids = lim.maxprocesses + 1 (the +1
 *     is the helper, so students get exactly maxprocesses), CPU quota/period, devices: deny all
 *     but null, zero, full, random, urandom, tty, ptmx and the pts; cgroupsPath
 *     "<cgroup_parent>/<id>";
 *   - runc's default maskedPaths and readonlyPaths (plus /sys/devices/virtual/powercap: RAPL
 *     energy counters are a side channel).
 *   runc (1.1.5, verified) replaces a tmpfs's mode= with the mode of the mount point when the
 *   image already has that directory: the helper re-applies 0700 to the work dir itself; /tmp
 *   keeps whatever mode the image's /tmp has (1777 in any sane image).
 *   Init gets RLIMIT_NOFILE 1024 and RLIMIT_CORE 0; lim.maxtime is validated but not applied to
 *   init (it is idle), lim.maxfilesize neither (staging is bounded by the tmpfs size).
 *
 * An exec'd Process: args/env/cwd (default /home/prisoner) as uid/gid, empty capabilities,
 * noNewPrivileges, rlimits CPU = maxtime (soft = hard, seconds), FSIZE = maxfilesize (bytes),
 * NOFILE 1024, CORE 0, NPROC = maxprocesses. lim.maxmemory is not used there (the container's
 * cgroup holds it). NOTE: RLIMIT_NPROC counts all processes of the uid on the whole host (no
 * user namespace): the worker gives every container a uid of its own (uidpool.h), so the count
 * is the container's, its helper included.
 *
 * Validation: every function checks its input and fails with EINVAL and a message naming the
 * field: NULL or relative paths, a container id outside [A-Za-z0-9._-] (1..76 bytes, starting
 * with a letter or digit), uid or gid 0, zero or out-of-range limits and sizes (the OCI_* bounds
 * below), env entries without "NAME=", an invalid hostname or seccomp JSON.
 *
 * Ownership: nothing of the caller's is kept. On success *json is a NUL-terminated, compact JSON
 * text allocated with malloc (the caller free()s it) and *len (if len is not NULL) its length;
 * on failure *json is NULL.
 */
#ifndef VC_OCI_SPEC_H
#define VC_OCI_SPEC_H

#include <stddef.h>

#include "err.h"

#define OCI_HELPER_PATH "/.vplcell/vplhelper" /* inside the container */
#define OCI_IO_DIR	"/.vplcell/io"	      /* inside the container */
#define OCI_WORKDIR	"/home/prisoner"
#define OCI_NOFILE	1024

/* Accepted ranges (inclusive). */
#define OCI_MIN_MEMORY	  (4LL << 20) /* runc itself needs a few MiB to start */
#define OCI_MAX_MEMORY	  (1LL << 40)
#define OCI_MIN_TMPFS	  (64LL << 10)
#define OCI_MAX_TMPFS	  (64LL << 30)
#define OCI_MAX_TIME	  86400 /* seconds */
#define OCI_MAX_FILESIZE  (64LL << 30)
#define OCI_MAX_PROCESSES 65536
#define OCI_MIN_CPU_US	  1000 /* the kernel's minimum quota and period */
#define OCI_MAX_PERIOD_US 1000000
#define OCI_MAX_CPUS	  1024 /* quota may not exceed period * this */

struct oci_limits {
	long long maxtime;	/* seconds of CPU, RLIMIT_CPU */
	long long maxfilesize;	/* bytes, RLIMIT_FSIZE */
	long long maxmemory;	/* bytes, memory cgroup (memory and memory+swap) */
	long long maxprocesses; /* pids cgroup and RLIMIT_NPROC */
};

struct oci_container_opts {
	const char *id;		   /* container id, also the last element of cgroupsPath */
	const char *cgroup_parent; /* absolute, e.g. "/vplcell" */
	unsigned uid, gid;	   /* the container's own (uidpool.h); never 0 */
	const char *helper_path;   /* host path of the static vplhelper binary */
	const char *io_dir;	   /* host path of the task's FIFO directory */
	long long workdir_size, tmp_size, shm_size; /* tmpfs sizes, bytes */
	struct oci_limits lim;
	long long cpu_quota_us, cpu_period_us;
	int network;		  /* 0: own netns with only lo; else the HOST's network */
	const char *hostname;	  /* NULL = "jail" */
	const char *const *env;	  /* NULL-terminated env of init; NULL = PATH and HOME */
	const char *seccomp_json; /* a linux.seccomp object as JSON; NULL = built-in profile */
	/* containerd's runc shim serves every container whose spec carries the same
	 * io.containerd.runc.v2.group annotation with one process; NULL = own shim */
	const char *shim_group;
};

int oci_container_spec(const struct oci_container_opts *o, char **json, size_t *len,
		       struct err *err);

struct oci_process_opts {
	const char *const *args; /* NULL-terminated, at least args[0] */
	const char *const *env;	 /* NULL-terminated; NULL = PATH and HOME */
	const char *cwd;	 /* absolute; NULL = OCI_WORKDIR */
	unsigned uid, gid;	 /* never 0 */
	int terminal;		 /* allocate a pty (the worker then uses containerd's console) */
	struct oci_limits lim;	 /* maxtime, maxfilesize, maxprocesses (maxmemory unused) */
};

int oci_process_spec(const struct oci_process_opts *o, char **json, size_t *len, struct err *err);

#endif
