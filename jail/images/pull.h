/*
 * pull.h - one image from a registry into containerd, blocking (puller thread, tools).
 *
 * image_pull() resolves FROM in its registry (platform selected, manifest digest verified),
 * streams the config and every layer that containerd does not hold yet into the content store
 * (each blob's SHA-256 and size checked on the way), unpacks it (unpack.h) as image NAME, and,
 * when COPY_TO is given, pushes the same manifest and blobs into that registry (read back from
 * the content store), so that other workers find it there; a failed copy is reported in
 * res->copy_error but does not fail the pull (the task can run). MAX_IMAGE_SIZE caps the sum of the
 * blob sizes before anything is fetched. Everything runs under a containerd lease that is
 * removed at the end, success or not.
 */
#ifndef VC_PULL_H
#define VC_PULL_H

#include <stdint.h>

#include "ctr_client.h"
#include "err.h"
#include "imageref.h"
#include "registry.h"
#include "unpack.h"

struct pull_env {
	struct ctr_client *c;
	struct reg_client *reg;
	const char *snapshotter;
	const char *key_prefix; /* "vplcell-<worker>": names refs, snapshot keys and leases */
	int64_t max_image_size; /* 0 = no cap */
	img_progress_fn progress;
	void *parg;
};

struct pull_result {
	char chain[72];	      /* top layer's chainID: the parent of task snapshots */
	char digest[72];      /* manifest digest */
	int64_t fetched;      /* bytes downloaded from the registry */
	int64_t size;	      /* sum of the image's blob sizes */
	int copied;	      /* pushed into COPY_TO */
	char copy_error[256]; /* why the copy failed ("" if none): the pull itself still counts */
};

int image_pull(const struct pull_env *env, const struct image_ref *from, const char *name,
	       const struct image_ref *copy_to, struct pull_result *res, struct err *err);

/* Digest of image NAME's target in containerd: 1 found, 0 absent, -1 error. */
int image_target(struct ctr_client *c, const char *name, char digest[72], struct err *err);

#endif
