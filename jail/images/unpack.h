/*
 * unpack.h - turns blobs in containerd's content store into a runnable image, blocking.
 *
 * After every blob of an image (config, layers) is in the content store, img_unpack() writes
 * the manifest (with the garbage-collection labels containerd's own unpacker writes, so that
 * `ctr`, containerd's GC and our chain lookup see a normal image), applies each layer that is
 * not unpacked yet through the Diff service onto a snapshot prepared on the previous layer's
 * chainID (checking the uncompressed digest against the config's rootfs.diff_ids), commits it
 * under its chainID, and creates or moves the image record NAME to the manifest.
 * Everything happens under LEASE, so containerd's GC cannot take a blob or snapshot before the
 * image record holds it; the caller deletes the lease afterwards.
 *
 * For the puller thread and the command-line tools only: never on the event loop thread.
 */
#ifndef VC_UNPACK_H
#define VC_UNPACK_H

#include <stddef.h>
#include <stdint.h>

#include "ctr_client.h"
#include "err.h"
#include "manifest.h"

/* Creates lease "<prefix>-pull-<n>" (expiring by itself after an hour if we die); id gets the
 * name. */
int img_lease_begin(struct ctr_client *c, const char *prefix, char id[128], struct err *err);
void img_lease_end(struct ctr_client *c, const char *id);

/* See above. mbody/mlen is the manifest (already verified against mdesc->digest by whoever
 * fetched it). chain receives the top layer's chainID (the parent for task snapshots).
 * Progress: when not NULL, called before each layer is applied. */
typedef void (*img_progress_fn)(void *arg, const char *what);
int img_unpack(struct ctr_client *c, const char *lease, const char *snapshotter,
	       const char *key_prefix, const char *name, const struct img_desc *mdesc,
	       const uint8_t *mbody, size_t mlen, img_progress_fn progress, void *parg,
	       char chain[72], struct err *err);

/* Images.Delete (NOT_FOUND counts as success). Content and snapshots go with containerd's GC. */
int img_remove(struct ctr_client *c, const char *name, struct err *err);

/* Lists image names and target digests: cb is called for each. */
int img_list(struct ctr_client *c,
	     void (*cb)(void *arg, const char *name, const char *digest, int64_t size), void *arg,
	     struct err *err);

#endif
