#include "oci_spec.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "seccomp.h"

#define OCI_VERSION  "1.0.2"
#define MAX_PATH     4096
#define MAX_ID	     76 /* containerd's limit on identifiers */
#define MAX_STRINGS  4096
#define MAX_STRING   (128 * 1024) /* one argv or env entry (the kernel's MAX_ARG_STRLEN) */
#define MAX_SECCOMP  (1024 * 1024)
#define DEFAULT_HOST "jail"

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" OCI_WORKDIR, NULL};

/* ---------------- validation ---------------- */

static bool has_control_byte(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/* Absolute, bounded, printable, and no ".." component (so it cannot climb out of a prefix). */
static int check_abs_path(const char *what, const char *p, struct err *err)
{
	if (!p)
		return err_set(err, EINVAL, "%s: missing", what);
	size_t n = strnlen(p, MAX_PATH + 1);
	if (n == 0 || p[0] != '/' || n > MAX_PATH)
		return err_set(err, EINVAL, "%s: must be an absolute path of at most %d bytes",
			       what, MAX_PATH);
	if (has_control_byte(p))
		return err_set(err, EINVAL, "%s: control character in path", what);
	for (const char *c = p; (c = strstr(c, "..")) != NULL; c += 2)
		if (c[-1] == '/' && (c[2] == '/' || c[2] == '\0'))
			return err_set(err, EINVAL, "%s: \"..\" in path", what);
	return 0;
}

static bool is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* The container id also names a cgroup directory and containerd objects. */
static int check_id(const char *id, struct err *err)
{
	if (!id)
		return err_set(err, EINVAL, "id: missing");
	size_t n = strnlen(id, MAX_ID + 1);
	if (n == 0 || n > MAX_ID || !is_alnum(id[0]))
		return err_set(err, EINVAL, "id: 1..%d bytes starting with a letter or digit",
			       MAX_ID);
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(id[i]) && id[i] != '.' && id[i] != '_' && id[i] != '-')
			return err_set(err, EINVAL, "id: only letters, digits, '.', '_', '-'");
	return 0;
}

static int check_cgroup_parent(const char *p, struct err *err)
{
	if (check_abs_path("cgroup_parent", p, err) < 0)
		return -1;
	size_t n = strlen(p);
	if (n < 2 || p[n - 1] == '/' || strstr(p, "//") || strstr(p, "/./"))
		return err_set(err, EINVAL, "cgroup_parent: must look like \"/name[/name...]\"");
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(p[i]) && !strchr("/._-", p[i]))
			return err_set(err, EINVAL,
				       "cgroup_parent: only letters, digits, '/', '.', '_', '-'");
	return 0;
}

/* RFC 1123 label. */
static int check_hostname(const char *h, struct err *err)
{
	size_t n = strnlen(h, 64);
	if (n == 0 || n > 63 || h[0] == '-' || h[n - 1] == '-')
		return err_set(err, EINVAL, "hostname: 1..63 letters, digits or inner '-'");
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(h[i]) && h[i] != '-')
			return err_set(err, EINVAL, "hostname: 1..63 letters, digits or inner '-'");
	return 0;
}

static int check_range(const char *what, long long v, long long min, long long max, struct err *err)
{
	if (v < min || v > max)
		return err_set(err, EINVAL, "%s: %lld is outside %lld..%lld", what, v, min, max);
	return 0;
}

static int check_ids(unsigned uid, unsigned gid, struct err *err)
{
	/* 0 is root; (unsigned)-1 means "unchanged" to set*id(2). */
	if (uid == 0 || gid == 0 || uid == (unsigned)-1 || gid == (unsigned)-1)
		return err_set(err, EINVAL, "uid/gid %u/%u: tasks never run as root or as -1", uid,
			       gid);
	return 0;
}

/* argv-like list: NULL-terminated, bounded; with need_eq every entry is "NAME=value". */
static int check_strings(const char *what, const char *const *v, bool need_eq, struct err *err)
{
	size_t i = 0;
	for (; v[i]; i++) {
		if (i >= MAX_STRINGS)
			return err_set(err, EINVAL, "%s: more than %d entries", what, MAX_STRINGS);
		if (strnlen(v[i], MAX_STRING + 1) > MAX_STRING)
			return err_set(err, EINVAL, "%s[%zu]: longer than %d bytes", what, i,
				       MAX_STRING);
		const char *eq = strchr(v[i], '=');
		if (need_eq && (!eq || eq == v[i]))
			return err_set(err, EINVAL, "%s[%zu]: not of the form NAME=value", what, i);
	}
	return 0;
}

static int check_limits(const struct oci_limits *l, bool need_memory, struct err *err)
{
	if (check_range("maxtime", l->maxtime, 1, OCI_MAX_TIME, err) < 0 ||
	    check_range("maxfilesize", l->maxfilesize, 1, OCI_MAX_FILESIZE, err) < 0 ||
	    check_range("maxprocesses", l->maxprocesses, 1, OCI_MAX_PROCESSES, err) < 0)
		return -1;
	if (need_memory &&
	    check_range("maxmemory", l->maxmemory, OCI_MIN_MEMORY, OCI_MAX_MEMORY, err) < 0)
		return -1;
	return 0;
}

static int check_container_opts(const struct oci_container_opts *o, struct err *err)
{
	if (check_id(o->id, err) < 0 || check_cgroup_parent(o->cgroup_parent, err) < 0 ||
	    check_ids(o->uid, o->gid, err) < 0 ||
	    check_abs_path("helper_path", o->helper_path, err) < 0 ||
	    check_abs_path("io_dir", o->io_dir, err) < 0 ||
	    check_range("workdir_size", o->workdir_size, OCI_MIN_TMPFS, OCI_MAX_TMPFS, err) < 0 ||
	    check_range("tmp_size", o->tmp_size, OCI_MIN_TMPFS, OCI_MAX_TMPFS, err) < 0 ||
	    check_range("shm_size", o->shm_size, OCI_MIN_TMPFS, OCI_MAX_TMPFS, err) < 0 ||
	    check_limits(&o->lim, true, err) < 0 ||
	    check_range("cpu_period_us", o->cpu_period_us, OCI_MIN_CPU_US, OCI_MAX_PERIOD_US, err) <
		0 ||
	    check_range("cpu_quota_us", o->cpu_quota_us, OCI_MIN_CPU_US,
			o->cpu_period_us * OCI_MAX_CPUS, err) < 0)
		return -1;
	if (o->hostname && check_hostname(o->hostname, err) < 0)
		return -1;
	if (o->env && check_strings("env", o->env, true, err) < 0)
		return -1;
	if (o->seccomp_json && strnlen(o->seccomp_json, MAX_SECCOMP + 1) > MAX_SECCOMP)
		return err_set(err, EINVAL, "seccomp_json: larger than %d bytes", MAX_SECCOMP);
	return 0;
}

static int check_process_opts(const struct oci_process_opts *o, struct err *err)
{
	if (!o->args || !o->args[0] || !o->args[0][0])
		return err_set(err, EINVAL, "args: missing or empty args[0]");
	if (check_strings("args", o->args, false, err) < 0 ||
	    (o->env && check_strings("env", o->env, true, err) < 0) ||
	    (o->cwd && check_abs_path("cwd", o->cwd, err) < 0) ||
	    check_ids(o->uid, o->gid, err) < 0 || check_limits(&o->lim, false, err) < 0)
		return -1;
	return 0;
}

/* ---------------- JSON pieces ---------------- */
/* Every builder returns a new reference or NULL (out of memory); jansson's "o" format steals
 * references even when it fails, so a NULL piece just makes the final json_pack fail. */

static json_t *strings(const char *const *v)
{
	json_t *a = json_array();
	for (; a && v && *v; v++)
		if (json_array_append_new(a, json_string(*v)) < 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

/* Appends each piece (stealing it); returns the array, or NULL if any piece was NULL. */
static json_t *array_of(json_t *const *items, size_t n)
{
	json_t *a = json_array();
	bool bad = !a;
	for (size_t i = 0; i < n; i++) {
		if (bad || !items[i] || json_array_append_new(a, items[i]) < 0) {
			json_decref(items[i]);
			bad = true;
		}
	}
	if (bad) {
		json_decref(a);
		return NULL;
	}
	return a;
}

static json_t *no_capabilities(void)
{
	return json_pack("{s:[],s:[],s:[],s:[],s:[]}", "bounding", "effective", "inheritable",
			 "permitted", "ambient");
}

static json_t *rlimit(const char *type, long long value)
{
	return json_pack("{s:s,s:I,s:I}", "type", type, "hard", (json_int_t)value, "soft",
			 (json_int_t)value);
}

static json_t *process(const char *const *args, const char *const *env, const char *cwd,
		       unsigned uid, unsigned gid, bool terminal, json_t *rlimits)
{
	return json_pack("{s:b,s:{s:I,s:I,s:[]},s:o,s:o,s:s,s:o,s:o,s:b}", "terminal", terminal,
			 "user", "uid", (json_int_t)uid, "gid", (json_int_t)gid, "additionalGids",
			 "args", strings(args), "env", strings(env ? env : default_env), "cwd", cwd,
			 "capabilities", no_capabilities(), "rlimits", rlimits, "noNewPrivileges",
			 1);
}

static json_t *mount(const char *dst, const char *type, const char *src, json_t *options)
{
	return json_pack("{s:s,s:s,s:s,s:o}", "destination", dst, "type", type, "source", src,
			 "options", options);
}

/* Appends the elements of extra to a, stealing both references; returns a, or NULL on failure. */
static json_t *extend(json_t *a, json_t *extra)
{
	if (!a || !extra || json_array_extend(a, extra) < 0) {
		json_decref(a);
		a = NULL;
	}
	json_decref(extra);
	return a;
}

/* A tmpfs with a size cap (bytes), a mode and extra options; always nosuid and nodev. */
static json_t *tmpfs(const char *dst, const char *src, long long size, const char *mode,
		     json_t *extra)
{
	json_t *opts = json_pack("[s,s,o,o]", "nosuid", "nodev", json_sprintf("mode=%s", mode),
				 json_sprintf("size=%lld", size));
	return mount(dst, "tmpfs", src, extend(opts, extra));
}

static json_t *mounts(const struct oci_container_opts *o)
{
	json_t *m[] = {
	    mount("/proc", "proc", "proc", json_pack("[s,s,s]", "nosuid", "noexec", "nodev")),
	    mount("/dev", "tmpfs", "tmpfs",
		  json_pack("[s,s,s,s]", "nosuid", "strictatime", "mode=755", "size=65536k")),
	    /* A private devpts instance (newinstance) for the terminals of interactive runs;
	     * gid=5 (tty) and mode=0620 are what openpty/grantpt expect. */
	    mount("/dev/pts", "devpts", "devpts",
		  json_pack("[s,s,s,s,s,s]", "nosuid", "noexec", "newinstance", "ptmxmode=0666",
			    "mode=0620", "gid=5")),
	    tmpfs("/dev/shm", "shm", o->shm_size, "1777", json_pack("[s]", "noexec")),
	    mount("/dev/mqueue", "mqueue", "mqueue",
		  json_pack("[s,s,s]", "nosuid", "noexec", "nodev")),
	    mount("/sys", "sysfs", "sysfs",
		  json_pack("[s,s,s,s]", "nosuid", "noexec", "nodev", "ro")),
	    /* Only the container's own cgroups, read-only: JVMs and others size themselves from
	     * the memory and CPU limits they find there. */
	    mount("/sys/fs/cgroup", "cgroup", "cgroup",
		  json_pack("[s,s,s,s,s]", "nosuid", "noexec", "nodev", "relatime", "ro")),
	    /* The work dir: exec allowed (compiled programs run from it), but nosuid/nodev, and
	     * only the prisoner may enter it. */
	    tmpfs(
		OCI_WORKDIR, "tmpfs", o->workdir_size, "0700",
		json_pack("[o,o]", json_sprintf("uid=%u", o->uid), json_sprintf("gid=%u", o->gid))),
	    tmpfs("/tmp", "tmpfs", o->tmp_size, "1777", json_array()),
	    /* The helper must stay executable: no noexec here. */
	    mount(OCI_HELPER_PATH, "bind", o->helper_path,
		  json_pack("[s,s,s,s]", "bind", "ro", "nosuid", "nodev")),
	    mount(OCI_IO_DIR, "bind", o->io_dir,
		  json_pack("[s,s,s,s,s]", "bind", "ro", "nosuid", "nodev", "noexec")),
	};
	return array_of(m, sizeof m / sizeof m[0]);
}

static json_t *device_rule(const char *type, long long major, long long minor)
{
	json_t *r = json_pack("{s:b,s:s,s:I,s:s}", "allow", 1, "type", type, "major",
			      (json_int_t)major, "access", "rwm");
	/* No "minor" means any minor (the pts). */
	if (r && minor >= 0 && json_object_set_new(r, "minor", json_integer(minor)) < 0) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static json_t *devices(void)
{
	json_t *d[] = {
	    json_pack("{s:b,s:s}", "allow", 0, "access", "rwm"), /* deny everything first */
	    device_rule("c", 1, 3),				 /* null */
	    device_rule("c", 1, 5),				 /* zero */
	    device_rule("c", 1, 7),				 /* full */
	    device_rule("c", 1, 8),				 /* random */
	    device_rule("c", 1, 9),				 /* urandom */
	    device_rule("c", 5, 0),				 /* tty */
	    device_rule("c", 5, 2),				 /* ptmx */
	    device_rule("c", 136, -1),				 /* pts/N */
	};
	return array_of(d, sizeof d / sizeof d[0]);
}

static json_t *resources(const struct oci_container_opts *o)
{
	/* swap = limit: in runc's terms memory+swap, so no swap at all on hosts that have it. */
	return json_pack("{s:o,s:{s:I,s:I},s:{s:I},s:{s:I,s:I}}", "devices", devices(), "memory",
			 "limit", (json_int_t)o->lim.maxmemory, "swap",
			 (json_int_t)o->lim.maxmemory, "pids", "limit",
			 (json_int_t)(o->lim.maxprocesses + 1), "cpu", "quota",
			 (json_int_t)o->cpu_quota_us, "period", (json_int_t)o->cpu_period_us);
}

static json_t *namespaces(int network)
{
	json_t *ns = json_pack("[{s:s},{s:s},{s:s},{s:s}]", "type", "pid", "type", "ipc", "type",
			       "uts", "type", "mount");
	if (ns && !network &&
	    json_array_append_new(ns, json_pack("{s:s}", "type", "network")) < 0) {
		json_decref(ns);
		return NULL;
	}
	return ns;
}

/* The operator's profile, parsed and sanity-checked, or the built-in one. */
static json_t *seccomp_profile(const char *text, struct err *err)
{
	if (!text) {
		json_t *p = seccomp_default_profile();
		if (!p)
			err_set(err, ENOMEM, "seccomp: out of memory");
		return p;
	}
	json_error_t je;
	json_t *p = json_loads(text, JSON_REJECT_DUPLICATES, &je);
	if (!p) {
		err_set(err, EINVAL, "seccomp_json: line %d: %s", je.line, je.text);
		return NULL;
	}
	json_t *sys = json_object_get(p, "syscalls");
	if (!json_is_object(p) || !json_is_string(json_object_get(p, "defaultAction")) ||
	    (sys && !json_is_array(sys))) {
		json_decref(p);
		err_set(err, EINVAL,
			"seccomp_json: not an object with a string defaultAction and an array "
			"of syscalls");
		return NULL;
	}
	return p;
}

static json_t *container_linux(const struct oci_container_opts *o, json_t *seccomp)
{
	/* runc's defaults, and /sys/devices/virtual/powercap (RAPL energy readings leak what
	 * other tenants compute). */
	static const char *const masked[] = {"/proc/acpi",
					     "/proc/asound",
					     "/proc/interrupts",
					     "/proc/kcore",
					     "/proc/keys",
					     "/proc/latency_stats",
					     "/proc/timer_list",
					     "/proc/timer_stats",
					     "/proc/sched_debug",
					     "/proc/scsi",
					     "/sys/firmware",
					     "/sys/devices/virtual/powercap",
					     NULL};
	static const char *const readonly[] = {
	    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger", NULL};
	json_t *cg = json_sprintf("%s/%s", o->cgroup_parent, o->id);
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o}", "resources", resources(o), "cgroupsPath", cg,
			 "namespaces", namespaces(o->network), "maskedPaths", strings(masked),
			 "readonlyPaths", strings(readonly), "seccomp", seccomp);
}

static int dump(json_t *doc, char **json, size_t *len, struct err *err)
{
	char *s = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (!s)
		return err_set(err, ENOMEM, "building the OCI JSON: out of memory");
	*json = s;
	if (len)
		*len = strlen(s);
	return 0;
}

/* ---------------- public ---------------- */

int oci_container_spec(const struct oci_container_opts *o, char **json, size_t *len,
		       struct err *err)
{
	if (json)
		*json = NULL;
	if (!o || !json)
		return err_set(err, EINVAL, "oci_container_spec: NULL argument");
	if (check_container_opts(o, err) < 0)
		return err_wrap(err, "container spec");
	json_t *seccomp = seccomp_profile(o->seccomp_json, err);
	if (!seccomp)
		return err_wrap(err, "container spec");
	static const char *const init_args[] = {OCI_HELPER_PATH, "init", NULL};
	/* Init neither forks nor runs long; NOFILE and CORE are the ones that matter to it. */
	json_t *rl = array_of(
	    (json_t *[]){rlimit("RLIMIT_NOFILE", OCI_NOFILE), rlimit("RLIMIT_CORE", 0)}, 2);
	json_t *doc = json_pack(
	    "{s:s,s:o,s:{s:s,s:b},s:s,s:o,s:o}", "ociVersion", OCI_VERSION, "process",
	    process(init_args, o->env, OCI_WORKDIR, o->uid, o->gid, false, rl), "root", "path",
	    "rootfs", "readonly", 1, "hostname", o->hostname ? o->hostname : DEFAULT_HOST, "mounts",
	    mounts(o), "linux", container_linux(o, seccomp));
	if (doc && o->shim_group && *o->shim_group)
		json_object_set_new(
		    doc, "annotations",
		    json_pack("{s:s}", "io.containerd.runc.v2.group", o->shim_group));
	return dump(doc, json, len, err);
}

int oci_process_spec(const struct oci_process_opts *o, char **json, size_t *len, struct err *err)
{
	if (json)
		*json = NULL;
	if (!o || !json)
		return err_set(err, EINVAL, "oci_process_spec: NULL argument");
	if (check_process_opts(o, err) < 0)
		return err_wrap(err, "process spec");
	/* CPU soft = hard: the kernel then sends SIGKILL at the limit, with no SIGXCPU a
	 * program could catch to keep running. */
	json_t *rl =
	    array_of((json_t *[]){rlimit("RLIMIT_CPU", o->lim.maxtime),
				  rlimit("RLIMIT_FSIZE", o->lim.maxfilesize),
				  rlimit("RLIMIT_NOFILE", OCI_NOFILE), rlimit("RLIMIT_CORE", 0)},
		     4);
	json_t *doc = process(o->args, o->env, o->cwd ? o->cwd : OCI_WORKDIR, o->uid, o->gid,
			      o->terminal != 0, rl);
	return dump(doc, json, len, err);
}
