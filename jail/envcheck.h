/*
 * envcheck.h - `vpl-jail --check`: is this host ready to run tasks? (docs/troubleshooting.md)
 *
 * Each check prints one line "ok    NAME: DETAIL", "warn  NAME: DETAIL" or
 * "FAIL  NAME: DETAIL; fix: WHAT TO DO" on the report's stream and is counted; the exit status
 * is 1 when any check failed, else 0 (warnings do not fail).
 *
 * This file holds what needs neither containerd's client nor a registry, so it lives in
 * libjail and the unit tests link it alone (tests/unit/test_envcheck.c):
 *  - pure verdicts on data: ELF headers (is the helper static?), certificate dates, cgroup mounts,
 *    free space, containerd's config.toml;
 *  - envcheck_host(): the checks of this host (runtime binary, cgroups, helper, STATE_DIR, disk
 *    space, TLS pair). It runs `RUNTIME --version` with posix_spawn, so it MUST run before any
 *    containerd client exists (grpc_init forbids fork, ctr_client.h).
 * The checks that talk to containerd and the registry, and the driver of the whole command, are
 * in sandbox/envcheck_ctr.h.
 *
 * Ownership: nothing here allocates anything the caller must free; detail buffers are the
 * caller's. Messages never contain secrets (URLPATH, keys).
 */
#ifndef VC_ENVCHECK_H
#define VC_ENVCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "err.h"

enum envcheck_level { ENVCHECK_OK = 0, ENVCHECK_WARN = 1, ENVCHECK_FAIL = 2 };

#define ENVCHECK_CERT_WARN_DAYS 14 /* warn when a certificate expires sooner */
#define ENVCHECK_DISK_MIN	(2ULL * 1024 * 1024 * 1024) /* warn below this much free space */
#define ENVCHECK_DETAIL_MAX	512

/* The report: where lines go and how many of each level were printed. */
struct envcheck {
	FILE *out;
	unsigned count[3]; /* indexed by enum envcheck_level */
};

void envcheck_init(struct envcheck *ec, FILE *out);
/* Prints one line "LEVEL NAME: DETAIL" (the detail from fmt; for a FAIL or warn, put the fix
 * after "; fix: ") and counts it. */
void envcheck_line(struct envcheck *ec, enum envcheck_level lvl, const char *name, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));
/* Prints the closing "N ok, N warn, N FAIL" line; returns the exit status (0 or 1). */
int envcheck_finish(struct envcheck *ec);

/* ---- pure verdicts ---- */

struct envcheck_elf {
	int bits;	 /* 32 or 64 */
	int type;	 /* e_type: ET_EXEC (2) or ET_DYN (3) */
	int machine;	 /* e_machine: EM_X86_64 (62), EM_AARCH64 (183), ... */
	bool has_interp; /* a PT_INTERP segment: dynamically linked, needs ld.so in the image */
};

/* Reads the ELF header and the program headers from the first len bytes of a file (both byte
 * orders, 32 and 64 bits). -1 (EINVAL/ENOEXEC) when it is not an ELF executable or shared object
 * or when the program headers lie beyond len (the message says so). A static-pie binary is
 * ET_DYN without PT_INTERP. */
int envcheck_elf_parse(const void *data, size_t len, struct envcheck_elf *out, struct err *err);
/* Same on a file (reads at most 1 MiB of it). */
int envcheck_elf_file(const char *path, struct envcheck_elf *out, struct err *err);

/* Verdict on a certificate valid from not_before to not_after, at time now: FAIL when not yet
 * valid or expired, warn when it expires within warn_days, else ok. detail says when (UTC). */
enum envcheck_level envcheck_cert_verdict(time_t not_before, time_t not_after, time_t now,
					  int warn_days, char *detail, size_t n);

struct envcheck_cert {
	time_t not_before, not_after;
	char subject[256]; /* the subject's CN (or the whole subject when it has none) */
};
/* Loads the certificate chain and the key as the server does (PEM) and checks that they match;
 * returns the first certificate's dates. -1 with the reason otherwise. */
int envcheck_cert_load(const char *cert_file, const char *key_file, struct envcheck_cert *out,
		       struct err *err);

/* Verdict on cgroups from the text of /proc/self/mountinfo and, for a unified hierarchy mounted
 * on /sys/fs/cgroup (cgroup v2), the text of its cgroup.controllers (NULL when unreadable). v2
 * needs the memory, pids and cpu controllers available; v1 (or hybrid, as runc sees it when
 * /sys/fs/cgroup is not cgroup2) needs memory, pids and cpu hierarchies mounted. */
enum envcheck_level envcheck_cgroups_verdict(const char *mountinfo, const char *controllers,
					     char *detail, size_t n);

/* Verdict on avail bytes free where WHAT lives: warn under min. */
enum envcheck_level envcheck_disk_verdict(unsigned long long avail, unsigned long long min,
					  char *detail, size_t n);

/* From a containerd config.toml: the top-level `root` and [grpc] `address` (each "" when the
 * file does not set it). Understands what containerd's own files use: tables, comments, "..."
 * and '...' strings. */
void envcheck_containerd_toml(const char *toml, char *root, size_t rootn, char *address,
			      size_t addressn);

/* ---- the host ---- */

/* containerd's root directory for the daemon listening on socket, found from its process
 * (command line --root/--config/--address, then its config file; defaults /var/lib/containerd,
 * /etc/containerd/config.toml, /run/containerd/containerd.sock). 1 found, 0 not found. */
int envcheck_containerd_root(const char *socket, char *root, size_t n);

/* Runs the checks of this host that need no containerd client, in this order: privileges,
 * runtime (spawns RUNTIME --version: call before any ctr_client_new), cgroups, helper,
 * STATE_DIR, disk space (STATE_DIR's and containerd's root), TLS (when SECURE_PORT is set). */
void envcheck_host(struct envcheck *ec, const struct jail_config *cfg);

#endif
