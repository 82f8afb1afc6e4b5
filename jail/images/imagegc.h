/*
 * imagegc.h - removes unused images from containerd by a documented policy, blocking.
 *
 * The policy (docs/images.md, "Garbage collection"), over the image records of the client's
 * namespace:
 *   - by age: an image whose last use is IMAGE_UNUSED_TTL seconds old or more is removed. Last
 *     use is the label vplcell.last-used=<unix seconds> (written by the worker when it pulls
 *     the image and, at most once an hour, when a task uses it), or newer knowledge the caller
 *     passes (pol->last_used). An image with neither (an operator's own: `ctr images import`,
 *     `vpl-jail image pull|import`) is never removed by age.
 *   - by size: when the content-store bytes of all images exceed IMAGE_STORE_MAX, the least
 *     recently used images among those a worker pulled (label vplcell.pulled) are removed, one
 *     at a time, until the total is under the cap. The size of the store is the sum of the
 *     distinct blobs the images reference (index, manifest, config, layers: compressed, what
 *     the content store holds; a layer shared by two images counts once). Unpacked snapshots
 *     are not counted; containerd's garbage collector frees them with the image.
 *   - never removed: pol->keep (DEFAULT_IMAGE), an image a container of the namespace was
 *     created from, and an image pol->busy() names (a pull in flight, a task being set up).
 *     busy() is asked again right before each removal.
 * Removal is Images/Delete; containerd's garbage collector then frees the content and the
 * snapshots no other image or container references.
 *
 * For puller threads and command-line tools only (every call waits for containerd): never on
 * the event loop thread.
 */
#ifndef VC_IMAGEGC_H
#define VC_IMAGEGC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctr_client.h"
#include "err.h"

#define IMAGE_LABEL_LAST_USED "vplcell.last-used"
#define IMAGE_LABEL_PULLED    "vplcell.pulled"

enum image_gc_why {
	IMAGE_GC_UNUSED = 1,   /* not used for IMAGE_UNUSED_TTL */
	IMAGE_GC_OVER_CAP = 2, /* least recently used while the store was over IMAGE_STORE_MAX */
};

struct image_gc_policy {
	int64_t unused_ttl_s; /* IMAGE_UNUSED_TTL; 0 = never by age */
	int64_t store_max;    /* IMAGE_STORE_MAX bytes; 0 = no cap */
	const char *keep;     /* containerd name never removed (DEFAULT_IMAGE); NULL = none */
	int64_t now;	      /* unix seconds; 0 = time(NULL) */
	bool dry_run;	      /* decide and report, remove nothing */
	/* Optional, called on the GC's thread: NAME must not be removed now. */
	bool (*busy)(void *arg, const char *name);
	/* Optional: the caller's own record of NAME's last use (unix seconds, 0 = none), newer
	 * than the label when a use has not been written yet. */
	int64_t (*last_used)(void *arg, const char *name);
	void *arg;
};

struct image_gc_removal {
	char name[320];
	char digest[72];       /* the image's target */
	int64_t freed;	       /* bytes of blobs no remaining image references */
	enum image_gc_why why; /* */
	int64_t idle_s;	       /* seconds since its last use (-1 = never recorded) */
};

struct image_gc_report {
	size_t images;	      /* image records seen */
	int64_t store_before; /* content-store bytes of all images, before */
	int64_t store_after;  /* and after the removals */
	size_t kept;	      /* candidates kept because they are the default or in use */
	size_t failed;	      /* removals containerd refused (the first error in *err) */
	struct image_gc_removal *removed; /* malloc'd, n_removed entries */
	size_t n_removed;
};

/* One pass of the policy. Returns 0 (rep filled; rep->failed counts removals that failed,
 * the first one described in *err) or -1 when the images could not be listed. Free rep with
 * image_gc_report_free() in both cases. */
int image_gc(struct ctr_client *c, const struct image_gc_policy *pol, struct image_gc_report *rep,
	     struct err *err);
void image_gc_report_free(struct image_gc_report *rep);

/* Labels image NAME vplcell.last-used=NOW (and vplcell.pulled=NOW when pulled). Other labels
 * and the target are left alone. An absent image is not an error (returns 0). */
int image_gc_touch(struct ctr_client *c, const char *name, int64_t now, bool pulled,
		   struct err *err);

#endif
