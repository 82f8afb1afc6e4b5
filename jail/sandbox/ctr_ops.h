/*
 * ctr_ops.h - typed asynchronous containerd operations on top of ctr_call().
 *
 * Contract
 * --------
 * - Every function starts one call (ctr_image_chain_id: a short chain of calls) and returns 0, or
 *   returns -1 with err filled and then never calls its callback. After a 0 return the callback
 *   runs exactly once, from ctr_client_dispatch() (or from ctr_client_free() with CANCELLED), on
 *   the owning thread, like every ctr_client callback.
 * - timeout_ms is the grpc deadline of each call (> 0), or < 0 for none (meant for ctr_task_wait,
 *   whose reply only comes when the process exits).
 * - Idempotent removals: ctr_container_delete, ctr_snapshot_remove and ctr_lease_delete report
 *   NOT_FOUND as success (st->code == CTR_OK, details say "not found"). containerd's GC may have
 *   removed a snapshot already once its container is gone (feasibility doc §5.5), and cleanup
 *   paths must be re-runnable. Task and process deletion report NOT_FOUND as is.
 * - Recommended order for a task (avoids the GC race): lease create → container create →
 *   snapshot prepare (under the lease) → task create → start → wait → task delete → snapshot
 *   remove → container delete → lease delete.
 *
 * Ownership
 * ---------
 * - All input strings, buffers and arrays are copied or serialized before the function returns;
 *   the caller keeps them.
 * - Values given to callbacks (st, strings) are valid only during the callback, except the
 *   struct ctr_mounts of ctr_snapshot_prepare, which the callback OWNS (ctr_mounts_free()).
 */
#ifndef VC_CTR_OPS_H
#define VC_CTR_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctr_client.h"
#include "err.h"
#include "github.com/containerd/containerd/api/types/mount.pb-c.h"

#define CTR_RUNTIME_RUNC_V2	"io.containerd.runc.v2"
#define CTR_SNAPSHOTTER_DEFAULT "overlayfs"

typedef void (*ctr_done_cb)(void *arg, const struct ctr_status *st);
typedef void (*ctr_pid_cb)(void *arg, const struct ctr_status *st, uint32_t pid);
/* exit_status is the wait status containerd reports (128+signal for a signal, e.g. 137). */
typedef void (*ctr_exit_cb)(void *arg, const struct ctr_status *st, uint32_t exit_status);
/* value is NULL unless st->code == CTR_OK. */
typedef void (*ctr_str_cb)(void *arg, const struct ctr_status *st, const char *value);

/* Mounts of a prepared snapshot (containerd.types.Mount), to pass as a task's rootfs. */
struct ctr_mounts {
	size_t n;
	Containerd__Types__Mount **mounts;
	ProtobufCMessage *msg; /* owns everything above */
};
/* mounts is NULL unless st->code == CTR_OK; then the callback owns it. */
typedef void (*ctr_mounts_cb)(void *arg, const struct ctr_status *st, struct ctr_mounts *mounts);
void ctr_mounts_free(struct ctr_mounts *m);

/* runc v2 shim options (containerd.runc.v1.Options), sent on the container runtime and on
 * task create. */
struct ctr_runtime {
	const char *binary_name; /* "runc", "crun"; NULL = the shim's default (runc) */
	const char *root;	 /* runc --root (state dir); NULL = /run/containerd/runc */
};

/* Version: value is "VERSION REVISION". */
int ctr_version(struct ctr_client *c, int timeout_ms, ctr_str_cb cb, void *arg, struct err *err);

struct ctr_container_spec {
	const char *id;
	const char *image;	  /* informative (Container.image), may be NULL */
	const char *snapshotter;  /* NULL = overlayfs */
	const char *snapshot_key; /* NULL = id */
	struct ctr_runtime rt;
	const void
	    *oci_spec; /* OCI runtime-spec JSON (root.path relative to the bundle: "rootfs") */
	size_t oci_spec_len;
	const char *const *labels; /* key, value, key, value, ..., NULL; may be NULL */
};
int ctr_container_create(struct ctr_client *c, const struct ctr_container_spec *s, int timeout_ms,
			 ctr_done_cb cb, void *arg, struct err *err);
int ctr_container_delete(struct ctr_client *c, const char *id, int timeout_ms, ctr_done_cb cb,
			 void *arg, struct err *err);

/* Prepares an active snapshot KEY on PARENT (a chainID, "" or NULL for none). lease: NULL =
 * the client's default lease, "" = none. */
int ctr_snapshot_prepare(struct ctr_client *c, const char *snapshotter, const char *key,
			 const char *parent, const char *lease, int timeout_ms, ctr_mounts_cb cb,
			 void *arg, struct err *err);
int ctr_snapshot_remove(struct ctr_client *c, const char *snapshotter, const char *key,
			int timeout_ms, ctr_done_cb cb, void *arg, struct err *err);

struct ctr_task_spec {
	const char *container_id;
	/* FIFO paths the caller created (or file:///path, binary:///path URIs the shim accepts);
	 * NULL or "" = none (/dev/null). Mind that <stdio.h> defines stdin/stdout/stderr macros:
	 * the generated protobuf-c fields carry those names, hence the _path suffix here. */
	const char *stdin_path, *stdout_path, *stderr_path;
	bool terminal;
	const struct ctr_mounts *rootfs; /* from ctr_snapshot_prepare; NULL = none */
	struct ctr_runtime rt;
};
/* pid: the task's init process as seen on the host. */
int ctr_task_create(struct ctr_client *c, const struct ctr_task_spec *s, int timeout_ms,
		    ctr_pid_cb cb, void *arg, struct err *err);
/* exec_id NULL or "" = the init process. */
int ctr_task_start(struct ctr_client *c, const char *container_id, const char *exec_id,
		   int timeout_ms, ctr_pid_cb cb, void *arg, struct err *err);
/* all = signal every process of the container (Kill all). */
int ctr_task_kill(struct ctr_client *c, const char *container_id, const char *exec_id, int sig,
		  bool all, int timeout_ms, ctr_done_cb cb, void *arg, struct err *err);
int ctr_task_wait(struct ctr_client *c, const char *container_id, const char *exec_id,
		  int timeout_ms, ctr_exit_cb cb, void *arg, struct err *err);
int ctr_task_delete(struct ctr_client *c, const char *container_id, int timeout_ms, ctr_exit_cb cb,
		    void *arg, struct err *err);

struct ctr_exec_spec {
	const char *container_id;
	const char *exec_id;
	const void *process_json; /* OCI runtime-spec Process JSON */
	size_t process_json_len;
	const char *stdin_path, *stdout_path, *stderr_path; /* as in ctr_task_spec */
	bool terminal;
};
/* Adds the process; then ctr_task_start/ctr_task_wait with exec_id, then ctr_process_delete. */
int ctr_exec(struct ctr_client *c, const struct ctr_exec_spec *s, int timeout_ms, ctr_done_cb cb,
	     void *arg, struct err *err);
int ctr_process_delete(struct ctr_client *c, const char *container_id, const char *exec_id,
		       int timeout_ms, ctr_exit_cb cb, void *arg, struct err *err);

/* Creates lease ID; expire_s > 0 adds the containerd.io/gc.expire label so that containerd
 * drops it by itself if we crash. */
int ctr_lease_create(struct ctr_client *c, const char *id, int expire_s, int timeout_ms,
		     ctr_done_cb cb, void *arg, struct err *err);
/* sync = wait for containerd's GC to collect what the lease held. */
int ctr_lease_delete(struct ctr_client *c, const char *id, bool sync, int timeout_ms,
		     ctr_done_cb cb, void *arg, struct err *err);

/* Resolves IMAGE (a name in the client's namespace) to the chainID of its unpacked top layer
 * for SNAPSHOTTER (the parent for ctr_snapshot_prepare), through the labels containerd's
 * unpacker writes: Images.Get → target manifest (an index: its children
 * containerd.io/gc.ref.content.m.<n>, the first one unpacked wins) → Content.Info →
 * containerd.io/gc.ref.content.config → Content.Info → containerd.io/gc.ref.snapshot.<snapshotter>.
 * NOT_FOUND when the image is absent or not unpacked for that snapshotter. Up to 2 + 2*16 calls,
 * each with timeout_ms. */
int ctr_image_chain_id(struct ctr_client *c, const char *image, const char *snapshotter,
		       int timeout_ms, ctr_str_cb cb, void *arg, struct err *err);

#endif
