/*
 * unit_oci_spec.c - the OCI documents of a task container (jail/sandbox/oci_spec.c) and the
 * built-in seccomp profile (jail/sandbox/seccomp.c): each security-relevant field is parsed
 * back from the JSON and checked on its own, and every kind of invalid input must fail with
 * EINVAL, no output and a message naming the field.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <jansson.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oci_spec.h"
#include "seccomp.h"

/* ---------------- fixtures ---------------- */

static struct oci_container_opts good_container(void)
{
	return (struct oci_container_opts){
	    .id = "task-1.a_b",
	    .cgroup_parent = "/vplcell",
	    .uid = 10001,
	    .gid = 10002,
	    .helper_path = "/usr/lib/vplcell/vplhelper",
	    .io_dir = "/run/vplcell/io/task-1",
	    .workdir_size = 64LL << 20,
	    .tmp_size = 32LL << 20,
	    .shm_size = 8LL << 20,
	    .lim = {.maxtime = 60,
		    .maxfilesize = 16LL << 20,
		    .maxmemory = 256LL << 20,
		    .maxprocesses = 50},
	    .cpu_quota_us = 150000,
	    .cpu_period_us = 100000,
	};
}

static const char *const proc_args[] = {"/bin/bash", "-c", "./vpl_run.sh", NULL};
static const char *const proc_env[] = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8", NULL};

static struct oci_process_opts good_process(void)
{
	return (struct oci_process_opts){
	    .args = proc_args,
	    .env = proc_env,
	    .cwd = "/home/prisoner",
	    .uid = 10001,
	    .gid = 10001,
	    .terminal = 0,
	    .lim = {.maxtime = 20, .maxfilesize = 1LL << 20, .maxmemory = 0, .maxprocesses = 30},
	};
}

/* Generates and parses the container spec; fails the test on error. */
static json_t *container_json(const struct oci_container_opts *o)
{
	char *text = NULL;
	size_t len = 0;
	struct err e = {0};
	if (oci_container_spec(o, &text, &len, &e) != 0)
		fail_msg("oci_container_spec: %s", e.msg);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	json_error_t je;
	json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	free(text);
	if (!j)
		fail_msg("invalid JSON: %s", je.text);
	return j;
}

static json_t *process_json(const struct oci_process_opts *o)
{
	char *text = NULL;
	size_t len = 0;
	struct err e = {0};
	if (oci_process_spec(o, &text, &len, &e) != 0)
		fail_msg("oci_process_spec: %s", e.msg);
	assert_int_equal(len, strlen(text));
	json_t *j = json_loads(text, 0, NULL);
	free(text);
	assert_non_null(j);
	return j;
}

static json_t *path(json_t *j, const char *a, const char *b, const char *c)
{
	j = json_object_get(j, a);
	if (b)
		j = json_object_get(j, b);
	if (c)
		j = json_object_get(j, c);
	return j;
}

static int array_has(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return 1;
	}
	return 0;
}

static json_t *find_mount(json_t *spec, const char *dst)
{
	size_t i;
	json_t *m;
	json_array_foreach(json_object_get(spec, "mounts"), i, m)
	{
		if (strcmp(json_string_value(json_object_get(m, "destination")), dst) == 0)
			return m;
	}
	fail_msg("no mount at %s", dst);
	return NULL;
}

static json_t *find_rlimit(json_t *process, const char *type)
{
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(process, "rlimits"), i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "type")), type) == 0)
			return r;
	}
	return NULL;
}

static void assert_rlimit(json_t *process, const char *type, long long value)
{
	json_t *r = find_rlimit(process, type);
	if (!r)
		fail_msg("no %s", type);
	assert_int_equal(json_integer_value(json_object_get(r, "soft")), value);
	assert_int_equal(json_integer_value(json_object_get(r, "hard")), value);
}

static void assert_no_capabilities(json_t *process)
{
	static const char *const sets[] = {"bounding", "effective", "inheritable", "permitted",
					   "ambient"};
	json_t *caps = json_object_get(process, "capabilities");
	assert_true(json_is_object(caps));
	for (size_t i = 0; i < 5; i++) {
		json_t *s = json_object_get(caps, sets[i]);
		if (!json_is_array(s) || json_array_size(s) != 0)
			fail_msg("capabilities.%s is not an empty array", sets[i]);
	}
	/* Nothing else hides in there. */
	assert_int_equal(json_object_size(caps), 5);
}

/* ---------------- container spec ---------------- */

static void test_container_root_and_version(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	assert_string_equal(json_string_value(json_object_get(j, "ociVersion")), "1.0.2");
	assert_string_equal(json_string_value(path(j, "root", "path", NULL)), "rootfs");
	assert_true(json_is_true(path(j, "root", "readonly", NULL)));
	assert_string_equal(json_string_value(json_object_get(j, "hostname")), "jail");
	json_decref(j);
	o.hostname = "vpl-7";
	j = container_json(&o);
	assert_string_equal(json_string_value(json_object_get(j, "hostname")), "vpl-7");
	json_decref(j);
}

static void test_container_process(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	json_t *p = json_object_get(j, "process");
	assert_int_equal(json_integer_value(path(p, "user", "uid", NULL)), 10001);
	assert_int_equal(json_integer_value(path(p, "user", "gid", NULL)), 10002);
	assert_int_equal(json_array_size(path(p, "user", "additionalGids", NULL)), 0);
	assert_no_capabilities(p);
	assert_true(json_is_true(json_object_get(p, "noNewPrivileges")));
	assert_false(json_is_true(json_object_get(p, "terminal")));
	json_t *args = json_object_get(p, "args");
	assert_int_equal(json_array_size(args), 2);
	assert_string_equal(json_string_value(json_array_get(args, 0)), "/.vplcell/vplhelper");
	assert_string_equal(json_string_value(json_array_get(args, 1)), "init");
	assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/home/prisoner");
	assert_rlimit(p, "RLIMIT_NOFILE", 1024);
	assert_rlimit(p, "RLIMIT_CORE", 0);
	assert_true(array_has(json_object_get(p, "env"), "HOME=/home/prisoner"));
	json_decref(j);

	static const char *const env[] = {"A=1", "B=", NULL};
	o.env = env;
	j = container_json(&o);
	json_t *e = path(j, "process", "env", NULL);
	assert_int_equal(json_array_size(e), 2);
	assert_true(array_has(e, "A=1") && array_has(e, "B="));
	json_decref(j);
}

static void test_container_namespaces(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	json_t *ns = path(j, "linux", "namespaces", NULL);
	static const char *const want[] = {"pid", "ipc", "uts", "mount", "network"};
	for (size_t w = 0; w < 5; w++) {
		int found = 0;
		size_t i;
		json_t *n;
		json_array_foreach(ns, i, n)
		{
			found +=
			    strcmp(json_string_value(json_object_get(n, "type")), want[w]) == 0;
			/* A "path" would join an existing namespace (e.g. the host's). */
			assert_null(json_object_get(n, "path"));
		}
		if (found != 1)
			fail_msg("namespace %s present %d times", want[w], found);
	}
	assert_int_equal(json_array_size(ns), 5);
	json_decref(j);

	o.network = 1;
	j = container_json(&o);
	ns = path(j, "linux", "namespaces", NULL);
	assert_int_equal(json_array_size(ns), 4);
	size_t i;
	json_t *n;
	json_array_foreach(ns, i, n)
	{
		assert_string_not_equal(json_string_value(json_object_get(n, "type")), "network");
	}
	json_decref(j);
}

static void test_container_resources(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	json_t *r = path(j, "linux", "resources", NULL);
	assert_int_equal(json_integer_value(path(r, "memory", "limit", NULL)), 256LL << 20);
	assert_int_equal(json_integer_value(path(r, "memory", "swap", NULL)), 256LL << 20);
	/* maxprocesses for the student plus the helper (PID 1). */
	assert_int_equal(json_integer_value(path(r, "pids", "limit", NULL)), 51);
	assert_int_equal(json_integer_value(path(r, "cpu", "quota", NULL)), 150000);
	assert_int_equal(json_integer_value(path(r, "cpu", "period", NULL)), 100000);
	assert_string_equal(json_string_value(path(j, "linux", "cgroupsPath", NULL)),
			    "/vplcell/task-1.a_b");
	json_decref(j);
}

static void test_container_devices(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	json_t *d = path(j, "linux", "resources", "devices");
	assert_true(json_array_size(d) >= 2);
	/* First rule: deny everything (no type, no major/minor). */
	json_t *first = json_array_get(d, 0);
	assert_true(json_is_false(json_object_get(first, "allow")));
	assert_string_equal(json_string_value(json_object_get(first, "access")), "rwm");
	assert_null(json_object_get(first, "type"));
	assert_null(json_object_get(first, "major"));
	/* Every later rule allows one char device major, never a block device or a wildcard. */
	int seen_null = 0, seen_pts = 0;
	size_t i;
	json_t *r;
	json_array_foreach(d, i, r)
	{
		if (i == 0)
			continue;
		assert_true(json_is_true(json_object_get(r, "allow")));
		assert_string_equal(json_string_value(json_object_get(r, "type")), "c");
		json_int_t major = json_integer_value(json_object_get(r, "major"));
		assert_true(major == 1 || major == 5 || major == 136);
		json_t *minor = json_object_get(r, "minor");
		seen_null += major == 1 && json_integer_value(minor) == 3;
		seen_pts += major == 136 && !minor;
		if (major != 136)
			assert_non_null(minor);
	}
	assert_int_equal(seen_null, 1);
	assert_int_equal(seen_pts, 1);
	json_decref(j);
}

static void test_container_masked_paths(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	json_t *m = path(j, "linux", "maskedPaths", NULL);
	static const char *const masked[] = {
	    "/proc/kcore",	 "/proc/keys",	 "/proc/timer_list",
	    "/proc/sched_debug", "/proc/acpi",	 "/proc/scsi",
	    "/sys/firmware",	 "/proc/asound", "/sys/devices/virtual/powercap"};
	for (size_t i = 0; i < sizeof masked / sizeof masked[0]; i++)
		if (!array_has(m, masked[i]))
			fail_msg("%s not masked", masked[i]);
	json_t *ro = path(j, "linux", "readonlyPaths", NULL);
	static const char *const readonly[] = {"/proc/sys", "/proc/sysrq-trigger", "/proc/bus",
					       "/proc/fs", "/proc/irq"};
	for (size_t i = 0; i < sizeof readonly / sizeof readonly[0]; i++)
		if (!array_has(ro, readonly[i]))
			fail_msg("%s not read-only", readonly[i]);
	json_decref(j);
}

static void test_container_tmpfs_mounts(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	json_t *wd = find_mount(j, "/home/prisoner");
	assert_string_equal(json_string_value(json_object_get(wd, "type")), "tmpfs");
	json_t *opts = json_object_get(wd, "options");
	assert_true(array_has(opts, "size=67108864"));
	assert_true(array_has(opts, "mode=0700"));
	assert_true(array_has(opts, "uid=10001"));
	assert_true(array_has(opts, "gid=10002"));
	assert_true(array_has(opts, "nosuid") && array_has(opts, "nodev"));
	assert_false(array_has(opts, "noexec")); /* compiled programs run from here */

	opts = json_object_get(find_mount(j, "/tmp"), "options");
	assert_true(array_has(opts, "size=33554432"));
	assert_true(array_has(opts, "mode=1777"));
	assert_true(array_has(opts, "nosuid") && array_has(opts, "nodev"));

	opts = json_object_get(find_mount(j, "/dev/shm"), "options");
	assert_true(array_has(opts, "size=8388608"));
	assert_true(array_has(opts, "nosuid") && array_has(opts, "nodev") &&
		    array_has(opts, "noexec"));
	json_decref(j);
}

static void test_container_kernel_mounts(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	json_t *pts = json_object_get(find_mount(j, "/dev/pts"), "options");
	static const char *const pts_opts[] = {"newinstance", "ptmxmode=0666", "mode=0620",
					       "gid=5",	      "nosuid",	       "noexec"};
	for (size_t i = 0; i < sizeof pts_opts / sizeof pts_opts[0]; i++)
		if (!array_has(pts, pts_opts[i]))
			fail_msg("devpts lacks %s", pts_opts[i]);
	assert_true(array_has(json_object_get(find_mount(j, "/sys"), "options"), "ro"));
	assert_true(array_has(json_object_get(find_mount(j, "/sys/fs/cgroup"), "options"), "ro"));
	assert_true(array_has(json_object_get(find_mount(j, "/proc"), "options"), "noexec"));
	assert_string_equal(
	    json_string_value(json_object_get(find_mount(j, "/dev/mqueue"), "type")), "mqueue");
	/* Order matters to the runtime: /dev before what lives under it. */
	size_t i, at_dev = 0, at_pts = 0;
	json_t *m;
	json_array_foreach(json_object_get(j, "mounts"), i, m)
	{
		const char *d = json_string_value(json_object_get(m, "destination"));
		if (strcmp(d, "/dev") == 0)
			at_dev = i + 1;
		if (strcmp(d, "/dev/pts") == 0)
			at_pts = i + 1;
	}
	assert_true(at_dev && at_pts && at_dev < at_pts);
	json_decref(j);
}

static void test_container_bind_mounts(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	json_t *h = find_mount(j, "/.vplcell/vplhelper");
	assert_string_equal(json_string_value(json_object_get(h, "source")),
			    "/usr/lib/vplcell/vplhelper");
	assert_string_equal(json_string_value(json_object_get(h, "type")), "bind");
	json_t *opts = json_object_get(h, "options");
	assert_true(array_has(opts, "bind") && array_has(opts, "ro"));
	assert_true(array_has(opts, "nosuid") && array_has(opts, "nodev"));
	assert_false(array_has(opts, "noexec"));
	assert_false(array_has(opts, "rw"));

	json_t *io = find_mount(j, "/.vplcell/io");
	assert_string_equal(json_string_value(json_object_get(io, "source")),
			    "/run/vplcell/io/task-1");
	opts = json_object_get(io, "options");
	assert_true(array_has(opts, "ro") && array_has(opts, "noexec") &&
		    array_has(opts, "nosuid") && array_has(opts, "nodev"));
	assert_false(array_has(opts, "rbind")); /* no submounts of the host dir */
	json_decref(j);
}

/* ---------------- seccomp ---------------- */

/* The ALLOW rule naming sys, or NULL. Fails the test if two ALLOW rules name it. */
static json_t *allow_rule(json_t *profile, const char *sys)
{
	json_t *found = NULL;
	size_t i;
	json_t *r;
	json_array_foreach(json_object_get(profile, "syscalls"), i, r)
	{
		if (strcmp(json_string_value(json_object_get(r, "action")), "SCMP_ACT_ALLOW") !=
			0 ||
		    !array_has(json_object_get(r, "names"), sys))
			continue;
		/* personality has one rule per value; everything else one rule. */
		if (found && strcmp(sys, "personality") != 0)
			fail_msg("%s allowed by two rules", sys);
		found = r;
	}
	return found;
}

static int allowed_without_condition(json_t *profile, const char *sys)
{
	json_t *r = allow_rule(profile, sys);
	return r && json_array_size(json_object_get(r, "args")) == 0 &&
	       !json_object_get(r, "includes") && !json_object_get(r, "excludes");
}

static void check_profile(json_t *p)
{
	assert_string_equal(json_string_value(json_object_get(p, "defaultAction")),
			    "SCMP_ACT_ERRNO");
	assert_int_equal(json_integer_value(json_object_get(p, "defaultErrnoRet")), EPERM);
#if defined(__x86_64__)
	json_t *arch = json_object_get(p, "architectures");
	assert_true(array_has(arch, "SCMP_ARCH_X86_64"));
	/* The compat ABIs must be covered, or a 32-bit binary bypasses the filter. */
	assert_true(array_has(arch, "SCMP_ARCH_X86") && array_has(arch, "SCMP_ARCH_X32"));
#endif
	static const char *const denied[] = {
	    "ptrace",
	    "mount",
	    "umount2",
	    "pivot_root",
	    "chroot",
	    "unshare",
	    "setns",
	    "bpf",
	    "kexec_load",
	    "kexec_file_load",
	    "init_module",
	    "finit_module",
	    "delete_module",
	    "perf_event_open",
	    "add_key",
	    "keyctl",
	    "request_key",
	    "open_by_handle_at",
	    "name_to_handle_at",
	    "userfaultfd",
	    "io_uring_setup",
	    "io_uring_enter",
	    "io_uring_register",
	    "swapon",
	    "swapoff",
	    "reboot",
	    "settimeofday",
	    "clock_settime",
	    "acct",
	    "quotactl",
	    "lookup_dcookie",
	    "vm86",
	    "uselib",
	    "ustat",
	    "sysfs",
	    "_sysctl",
	    "iopl",
	    "ioperm",
	    "syslog",
	    "nfsservctl",
	    "process_vm_readv",
	    "process_vm_writev",
	    "kcmp",
	    "fsopen",
	    "move_mount",
	    "open_tree",
	    "sethostname",
	    "create_module",
	    "clone3",
	};
	for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
		if (allow_rule(p, denied[i]))
			fail_msg("%s is allowed", denied[i]);
	static const char *const ok[] = {"read", "write", "execve",	"openat",
					 "mmap", "futex", "exit_group", "wait4",
					 "fork", "vfork", "pipe2",	"shmget"};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
		if (!allowed_without_condition(p, ok[i]))
			fail_msg("%s is not allowed", ok[i]);

	/* clone: allowed, but only when none of the CLONE_NEW* flags is set. */
	json_t *clone = allow_rule(p, "clone");
	assert_non_null(clone);
	json_t *args = json_object_get(clone, "args");
	assert_int_equal(json_array_size(args), 1);
	json_t *a = json_array_get(args, 0);
	assert_int_equal(json_integer_value(json_object_get(a, "index")), 0);
	assert_string_equal(json_string_value(json_object_get(a, "op")), "SCMP_CMP_MASKED_EQ");
	assert_int_equal(json_integer_value(json_object_get(a, "value")), 2114060288);
	assert_int_equal(json_integer_value(json_object_get(a, "value")),
			 CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC |
			     CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET);
	assert_int_equal(json_integer_value(json_object_get(a, "valueTwo")), 0);

	/* clone3: ENOSYS, so glibc falls back to clone. */
	size_t i;
	json_t *r;
	int clone3 = 0;
	json_array_foreach(json_object_get(p, "syscalls"), i, r)
	{
		if (!array_has(json_object_get(r, "names"), "clone3"))
			continue;
		clone3++;
		assert_string_equal(json_string_value(json_object_get(r, "action")),
				    "SCMP_ACT_ERRNO");
		assert_int_equal(json_integer_value(json_object_get(r, "errnoRet")), ENOSYS);
	}
	assert_int_equal(clone3, 1);

	/* personality: only with an exact, harmless argument. */
	json_array_foreach(json_object_get(p, "syscalls"), i, r)
	{
		if (!array_has(json_object_get(r, "names"), "personality"))
			continue;
		json_t *pa = json_array_get(json_object_get(r, "args"), 0);
		assert_string_equal(json_string_value(json_object_get(pa, "op")), "SCMP_CMP_EQ");
		json_int_t v = json_integer_value(json_object_get(pa, "value"));
		assert_true(v == 0 || v == 8 || v == 0x20000 || v == 0x20008 || v == 0xffffffff);
	}
	/* socket: anything but AF_VSOCK. */
	json_t *sock = allow_rule(p, "socket");
	assert_non_null(sock);
	json_t *sa = json_array_get(json_object_get(sock, "args"), 0);
	assert_string_equal(json_string_value(json_object_get(sa, "op")), "SCMP_CMP_NE");
	assert_int_equal(json_integer_value(json_object_get(sa, "value")), 40);
}

static void test_seccomp_default_profile(void **state)
{
	(void)state;
	json_t *p = seccomp_default_profile();
	assert_non_null(p);
	check_profile(p);
	json_decref(p);
}

static void test_container_seccomp(void **state)
{
	(void)state;
	struct oci_container_opts o = good_container();
	json_t *j = container_json(&o);
	check_profile(path(j, "linux", "seccomp", NULL));
	json_decref(j);

	o.seccomp_json = "{\"defaultAction\":\"SCMP_ACT_KILL\",\"syscalls\":[]}";
	j = container_json(&o);
	assert_string_equal(json_string_value(path(j, "linux", "seccomp", "defaultAction")),
			    "SCMP_ACT_KILL");
	json_decref(j);
}

/* ---------------- process spec ---------------- */

static void test_process_spec(void **state)
{
	(void)state;
	struct oci_process_opts o = good_process();
	json_t *p = process_json(&o);
	assert_int_equal(json_integer_value(path(p, "user", "uid", NULL)), 10001);
	assert_int_equal(json_integer_value(path(p, "user", "gid", NULL)), 10001);
	assert_no_capabilities(p);
	assert_true(json_is_true(json_object_get(p, "noNewPrivileges")));
	assert_false(json_is_true(json_object_get(p, "terminal")));
	assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/home/prisoner");
	json_t *args = json_object_get(p, "args");
	assert_int_equal(json_array_size(args), 3);
	assert_string_equal(json_string_value(json_array_get(args, 2)), "./vpl_run.sh");
	json_t *env = json_object_get(p, "env");
	assert_int_equal(json_array_size(env), 2);
	assert_true(array_has(env, "LANG=C.UTF-8"));
	assert_rlimit(p, "RLIMIT_CPU", 20);
	assert_rlimit(p, "RLIMIT_FSIZE", 1LL << 20);
	assert_rlimit(p, "RLIMIT_NOFILE", 1024);
	assert_rlimit(p, "RLIMIT_CORE", 0);
	/* no RLIMIT_NPROC: per uid host-wide; the pids cgroup limits each task */
	assert_null(find_rlimit(p, "RLIMIT_NPROC"));
	json_decref(p);

	o.terminal = 1;
	o.cwd = NULL;
	o.env = NULL;
	p = process_json(&o);
	assert_true(json_is_true(json_object_get(p, "terminal")));
	assert_string_equal(json_string_value(json_object_get(p, "cwd")), "/home/prisoner");
	assert_true(array_has(json_object_get(p, "env"), "HOME=/home/prisoner"));
	json_decref(p);
}

/* ---------------- validation ---------------- */

static void expect_container_error(const struct oci_container_opts *o, const char *field)
{
	char *text = (char *)"untouched";
	struct err e = {0};
	if (oci_container_spec(o, &text, NULL, &e) != -1)
		fail_msg("accepted invalid %s", field);
	assert_null(text);
	assert_int_equal(e.code, EINVAL);
	if (!strstr(e.msg, field))
		fail_msg("error for %s does not name it: %s", field, e.msg);
}

static void test_container_validation(void **state)
{
	(void)state;
	char long_id[80];
	memset(long_id, 'a', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	static const char *const bad_ids[] = {"", "../x", "a/b", "-abc", "a b", "x\n"};
	static const char *const bad_parents[] = {"vplcell", "/",    "/a/../b", "/a//b",
						  "/a/",     "/a b", "/a/./b"};
	static const char *const bad_env[] = {"NOEQUALS", NULL};
	static const char *const bad_env2[] = {"=x", NULL};
	struct oci_container_opts o;
#define CASE(field, stmt)                                                                          \
	do {                                                                                       \
		o = good_container();                                                              \
		stmt;                                                                              \
		expect_container_error(&o, field);                                                 \
	} while (0)
	for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++)
		CASE("id", o.id = bad_ids[i]);
	CASE("id", o.id = NULL);
	CASE("id", o.id = long_id);
	for (size_t i = 0; i < sizeof bad_parents / sizeof bad_parents[0]; i++)
		CASE("cgroup_parent", o.cgroup_parent = bad_parents[i]);
	CASE("cgroup_parent", o.cgroup_parent = NULL);
	CASE("uid", o.uid = 0);
	CASE("uid", o.gid = 0);
	CASE("uid", o.uid = (unsigned)-1);
	CASE("helper_path", o.helper_path = NULL);
	CASE("helper_path", o.helper_path = "build/vplhelper");
	CASE("helper_path", o.helper_path = "/opt/../etc/passwd");
	CASE("io_dir", o.io_dir = NULL);
	CASE("io_dir", o.io_dir = "");
	CASE("workdir_size", o.workdir_size = 0);
	CASE("workdir_size", o.workdir_size = -1);
	CASE("workdir_size", o.workdir_size = OCI_MAX_TMPFS + 1);
	CASE("tmp_size", o.tmp_size = 0);
	CASE("shm_size", o.shm_size = 0);
	CASE("maxmemory", o.lim.maxmemory = 0);
	CASE("maxmemory", o.lim.maxmemory = 1 << 20);
	CASE("maxmemory", o.lim.maxmemory = OCI_MAX_MEMORY + 1);
	CASE("maxprocesses", o.lim.maxprocesses = 0);
	CASE("maxprocesses", o.lim.maxprocesses = -5);
	CASE("maxprocesses", o.lim.maxprocesses = 1000000);
	CASE("maxtime", o.lim.maxtime = 0);
	CASE("maxfilesize", o.lim.maxfilesize = 0);
	CASE("cpu_quota_us", o.cpu_quota_us = 0);
	CASE("cpu_quota_us", o.cpu_quota_us = 100000LL * 2000);
	CASE("cpu_period_us", o.cpu_period_us = 0);
	CASE("cpu_period_us", o.cpu_period_us = 2000000);
	CASE("hostname", o.hostname = "bad host");
	CASE("hostname", o.hostname = "");
	CASE("hostname", o.hostname = "-x");
	CASE("hostname", o.hostname = long_id);
	CASE("env", o.env = bad_env);
	CASE("env", o.env = bad_env2);
	CASE("seccomp_json", o.seccomp_json = "not json");
	CASE("seccomp_json", o.seccomp_json = "[]");
	CASE("seccomp_json", o.seccomp_json = "{\"syscalls\":[]}");
	CASE("seccomp_json",
	     o.seccomp_json = "{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"syscalls\":1}");
#undef CASE
	struct err e = {0};
	char *text;
	assert_int_equal(oci_container_spec(NULL, &text, NULL, &e), -1);
	assert_int_equal(e.code, EINVAL);
	o = good_container();
	assert_int_equal(oci_container_spec(&o, NULL, NULL, &e), -1);
}

static void expect_process_error(const struct oci_process_opts *o, const char *field)
{
	char *text = (char *)"untouched";
	struct err e = {0};
	if (oci_process_spec(o, &text, NULL, &e) != -1)
		fail_msg("accepted invalid %s", field);
	assert_null(text);
	assert_int_equal(e.code, EINVAL);
	if (!strstr(e.msg, field))
		fail_msg("error for %s does not name it: %s", field, e.msg);
}

static void test_process_validation(void **state)
{
	(void)state;
	static const char *const no_args[] = {NULL};
	static const char *const empty_arg0[] = {"", "x", NULL};
	static const char *const bad_env[] = {"PATH=/bin", "oops", NULL};
	struct oci_process_opts o;
#define CASE(field, stmt)                                                                          \
	do {                                                                                       \
		o = good_process();                                                                \
		stmt;                                                                              \
		expect_process_error(&o, field);                                                   \
	} while (0)
	CASE("args", o.args = NULL);
	CASE("args", o.args = no_args);
	CASE("args", o.args = empty_arg0);
	CASE("env", o.env = bad_env);
	CASE("cwd", o.cwd = "home/prisoner");
	CASE("cwd", o.cwd = "/home/../etc");
	CASE("uid", o.uid = 0);
	CASE("uid", o.gid = 0);
	CASE("maxtime", o.lim.maxtime = 0);
	CASE("maxtime", o.lim.maxtime = OCI_MAX_TIME + 1);
	CASE("maxfilesize", o.lim.maxfilesize = 0);
	CASE("maxprocesses", o.lim.maxprocesses = 0);
#undef CASE
	struct err e = {0};
	char *text;
	assert_int_equal(oci_process_spec(NULL, &text, NULL, &e), -1);
	assert_int_equal(e.code, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_container_root_and_version),
	    cmocka_unit_test(test_container_process),
	    cmocka_unit_test(test_container_namespaces),
	    cmocka_unit_test(test_container_resources),
	    cmocka_unit_test(test_container_devices),
	    cmocka_unit_test(test_container_masked_paths),
	    cmocka_unit_test(test_container_tmpfs_mounts),
	    cmocka_unit_test(test_container_kernel_mounts),
	    cmocka_unit_test(test_container_bind_mounts),
	    cmocka_unit_test(test_seccomp_default_profile),
	    cmocka_unit_test(test_container_seccomp),
	    cmocka_unit_test(test_process_spec),
	    cmocka_unit_test(test_container_validation),
	    cmocka_unit_test(test_process_validation),
	};
	return cmocka_run_group_tests_name("oci_spec", tests, NULL, NULL);
}
