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
 * Threads: puller_new/ensure/cancel/force_due/free are for the loop thread only. The pull
 * threads use the ctr_client only through its blocking calls (own completion queues). grpc is
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
};

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

/* True when a FORCEPULL for NAME should really re-resolve now (none in the last
 * FORCEPULL_TTL seconds); marks it done. */
bool puller_force_due(struct puller *p, const char *name);

/* Pulls started (not coalesced) since puller_new: for tests and logs. */
uint64_t puller_pulls(const struct puller *p);

/* Parses an auth file ("host user password" per line, # comments) into creds: for the CLI
 * too. Returns the number of entries (strings inside *buf, both malloc'd). */
int puller_read_auth(const char *path, struct reg_cred **creds, char **buf, struct err *err);

#endif
