/*
 * puller.h - gets task images into containerd without holding up the event loop.
 *
 * The event loop asks for an image with puller_ensure(); the pull itself (registry, content
 * store, unpack, copy into the local registry: pull.h) runs on the puller's own threads, and
 * the answer comes back through an eventfd watched by the loop, so other clients never wait on
 * a pull. Requests for the same image name share one pull (an exam of hundreds asking for a
 * cold image costs one download). Where the image comes from:
 *   - the local registry (src->local), when it has it;
 *   - else src->upstream when set (UPSTREAM_REGISTRY, or a registry host named in DOCKER= that
 *     ALLOWED_IMAGES permits), copied into the local registry for other workers;
 *   - FORCEPULL re-resolves from upstream first (or from the local registry without upstream),
 *     at most once per FORCEPULL_TTL per image (puller_force_due()).
 *
 * Unused images are removed by the policy of imagegc.h (IMAGE_UNUSED_TTL, IMAGE_STORE_MAX) on a
 * pull thread, after each successful pull and every PULLER_GC_PERIOD_S; names being pulled and
 * names given to puller_used() in the last PULLER_USED_GRACE_S are never removed.
 *
 * Threads: puller_new/ensure/cancel/force_due/used/gc_now/free are for the loop thread only. The
 * pull threads use the ctr_client only through its blocking calls (own completion queues). grpc is
 * initialised before the threads start, and the process never forks after that.
 */
#ifndef VC_PULLER_H
#define VC_PULLER_H

#include <stdbool.h>
#include <stdint.h>

#include "ctr_client.h"
#include "err.h"
#include "evloop.h"
#include "imageref.h"
#include "registry.h"

struct puller_config {
	const char *local_registry; /* "127.0.0.1:5000" */
	const char *plain_http;	    /* registries spoken to over http (comma list) */
	const char *auth_file;	    /* lines "host user password" ("" = none) */
	const char *ca_file;	    /* extra CAs for https registries, NULL = system */
	const char *snapshotter;    /* "overlayfs" */
	const char *key_prefix;	    /* "vplcell-<worker>" */
	int64_t max_image_size;	    /* bytes, 0 = no cap */
	int forcepull_ttl_s;	    /* FORCEPULL_TTL */
	int threads;		    /* concurrent pulls of different images (>= 1) */
	/* Garbage collection of unused images (imagegc.h; both 0 = none): after each
	 * successful pull and every PULLER_GC_PERIOD_S, on a pull thread. */
	const char *default_image;  /* containerd name never removed (DEFAULT_IMAGE) */
	int64_t image_unused_ttl_s; /* IMAGE_UNUSED_TTL, 0 = never by age */
	int64_t image_store_max;    /* IMAGE_STORE_MAX bytes, 0 = no cap */
	/* Optional: runs on the loop thread for each image the GC removed (forget its chain). */
	void (*on_removed)(void *arg, const char *name);
	void *removed_arg;
};

#define PULLER_GC_PERIOD_S  600	 /* the periodic GC pass */
#define PULLER_USED_WRITE_S 3600 /* vplcell.last-used written at most this often per image */
#define PULLER_USED_GRACE_S 60	 /* an image used this recently is not removed */

struct puller;
struct pull_wait;

/* chain: the image's top chainID (NULL on failure); msg: the failure, for the teacher, or a
 * note on success (digest, what was fetched). Both valid only during the call. */
typedef void (*puller_cb)(void *arg, const char *chain, const char *msg);

struct puller *puller_new(const struct puller_config *pc, struct ctr_client *c, struct evloop *ev,
			  struct err *err);
/* Stops the threads (a pull in progress finishes its current containerd/registry call) and
 * frees everything. Waiters still registered are not called. */
void puller_free(struct puller *p);

/* Gets image NAME (the containerd name: src->local formatted) ready. The callback runs later
 * from the loop, exactly once, unless puller_cancel() is called first. */
struct pull_wait *puller_ensure(struct puller *p, const struct image_source *src, const char *name,
				bool force, puller_cb cb, void *arg, struct err *err);
void puller_cancel(struct pull_wait *w);

/* Looks USER up in image NAME's /etc/passwd (imageuser.h: read from the content store, never
 * from a path) on a pull thread; the callback gets chain = "<uid>:<gid>", or NULL and the
 * reason. uids below 1000 are refused. Same rules as puller_ensure(). */
struct pull_wait *puller_user(struct puller *p, const char *name, const char *user, puller_cb cb,
			      void *arg, struct err *err);

/* True when a FORCEPULL for NAME should really re-resolve now (none in the last
 * FORCEPULL_TTL seconds); marks it done. */
bool puller_force_due(struct puller *p, const char *name);

/* A task got image NAME (the containerd name). Loop thread only; no containerd call here: it
 * notes the time, keeps the image from the GC for PULLER_USED_GRACE_S, and has a pull thread
 * write the label vplcell.last-used at most once per PULLER_USED_WRITE_S per image. */
void puller_used(struct puller *p, const char *name);

/* Asks for a GC pass soon (on a pull thread). Loop thread only. */
void puller_gc_now(struct puller *p);

/* GC passes finished since puller_new: for tests and logs. */
uint64_t puller_gc_passes(struct puller *p);

/* What the pull of NAME is doing now ("downloading layer 1 of 2 (120 MB)"): false when no
 * pull of it runs or it said nothing yet. Loop thread. */
bool puller_progress(struct puller *p, const char *name, char *out, size_t n);

/* Pulls started (not coalesced) since puller_new: for tests and logs. */
uint64_t puller_pulls(const struct puller *p);

/* Parses an auth file ("host user password" per line, # comments) into creds: for the CLI
 * too. Returns the number of entries (strings inside *buf, both malloc'd). */
int puller_read_auth(const char *path, struct reg_cred **creds, char **buf, struct err *err);

#endif
