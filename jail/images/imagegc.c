/*
 * imagegc.c - see imagegc.h.
 *
 * One pass: list the images (with their labels) and the containers, read each image's
 * manifest from the content store to know its blobs, put every distinct blob in one sorted
 * table with a reference count, then remove by age and by size. Removing an image drops the
 * counts of its blobs; a blob whose count falls to zero is what the removal frees.
 */
#include "imagegc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "content.h"
#include "github.com/containerd/containerd/api/services/containers/v1/containers.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"
#include "unpack.h"

#define CALL_MS	  15000
#define IMAGES	  "/containerd.services.images.v1.Images/"
#define MAX_BLOBS (IMG_MAX_LAYERS + 3) /* index, manifest, config, layers */

struct blob {
	char digest[72];
	int64_t size;
	int refs;
};

struct gc_image {
	const char *name;   /* in the List reply */
	const char *digest; /* target */
	int64_t last_used;  /* unix s, 0 = never recorded */
	bool pulled;	    /* carries vplcell.pulled */
	bool gone;
	struct img_desc blobs[MAX_BLOBS];
	size_t nblobs;
	size_t idx[MAX_BLOBS]; /* into the blob table */
};

static int64_t label_time(const char *v)
{
	if (!v || !*v)
		return 0;
	char *end;
	errno = 0;
	long long t = strtoll(v, &end, 10);
	if (errno || *end || t <= 0)
		return 0;
	return t;
}

static void add_blob(struct gc_image *im, const char *digest, int64_t size)
{
	if (im->nblobs >= MAX_BLOBS || !digest || !*digest)
		return;
	struct img_desc *d = &im->blobs[im->nblobs++];
	snprintf(d->digest, sizeof d->digest, "%s", digest);
	d->size = size > 0 ? size : 0;
}

/* The blobs of one image: its target, then (index ->) manifest -> config and layers. Content
 * that cannot be read leaves the image counted by what is known: never an error. */
static void image_blobs(struct ctr_client *c, struct gc_image *im,
			const Containerd__Types__Descriptor *t)
{
	if (!t || !t->digest)
		return;
	add_blob(im, t->digest, t->size);
	struct img_desc md = {.size = t->size};
	snprintf(md.media_type, sizeof md.media_type, "%s", t->media_type ? t->media_type : "");
	snprintf(md.digest, sizeof md.digest, "%s", t->digest);
	uint8_t *body = NULL;
	size_t len = 0;
	struct err e;
	if (img_media_kind(md.media_type) == 2) {
		if (content_read_all(c, md.digest, IMG_MAX_MANIFEST, &body, &len, &e) < 0)
			return;
		int rc = img_index_select(body, len, "linux", img_host_arch(), NULL, &md, &e);
		free(body);
		body = NULL;
		if (rc < 0)
			return;
		add_blob(im, md.digest, md.size);
	}
	if (img_media_kind(md.media_type) != 1)
		return;
	if (content_read_all(c, md.digest, IMG_MAX_MANIFEST, &body, &len, &e) < 0)
		return;
	struct img_manifest *m = calloc(1, sizeof *m);
	if (m && img_manifest_parse(body, len, m, &e) == 0) {
		add_blob(im, m->config.digest, m->config.size);
		for (size_t i = 0; i < m->n; i++)
			add_blob(im, m->layers[i].digest, m->layers[i].size);
	}
	free(m);
	free(body);
}

static int cmp_blob(const void *a, const void *b)
{
	return strcmp(((const struct blob *)a)->digest, ((const struct blob *)b)->digest);
}

/* Names of the images containers of the namespace were created from (a sorted array of
 * pointers into *reply). */
static int container_images(struct ctr_client *c, ProtobufCMessage **reply, const char ***names,
			    size_t *n, struct err *err)
{
	Containerd__Services__Containers__V1__ListContainersRequest req =
	    CONTAINERD__SERVICES__CONTAINERS__V1__LIST_CONTAINERS_REQUEST__INIT;
	struct ctr_status st;
	*reply = NULL;
	*names = NULL;
	*n = 0;
	if (ctr_call_sync_lease(
		c, NULL, "/containerd.services.containers.v1.Containers/List", &req.base,
		&containerd__services__containers__v1__list_containers_response__descriptor,
		CALL_MS, &st, reply, err) < 0)
		return -1;
	if (st.code != CTR_OK)
		return err_set(err, ctr_code_errno(st.code), "listing containers: %s", st.details);
	Containerd__Services__Containers__V1__ListContainersResponse *r = (void *)*reply;
	if (r->n_containers == 0)
		return 0;
	*names = calloc(r->n_containers, sizeof **names);
	if (!*names)
		return err_set(err, ENOMEM, "out of memory");
	for (size_t i = 0; i < r->n_containers; i++)
		if (r->containers[i]->image && *r->containers[i]->image)
			(*names)[(*n)++] = r->containers[i]->image;
	return 0;
}

static bool name_in(const char *const *names, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return true;
	return false;
}

struct gc_run {
	struct ctr_client *c;
	const struct image_gc_policy *pol;
	struct image_gc_report *rep;
	struct err *err;
	struct gc_image *im;
	size_t n;
	struct blob *tab;
	size_t ntab;
	const char **cnames;
	size_t ncnames;
	int64_t total;
	int64_t now;
};

static bool protected_now(struct gc_run *g, const struct gc_image *im)
{
	const struct image_gc_policy *pol = g->pol;
	if (pol->keep && strcmp(pol->keep, im->name) == 0)
		return true;
	if (name_in(g->cnames, g->ncnames, im->name))
		return true;
	return pol->busy && pol->busy(pol->arg, im->name);
}

/* Removes image I (unless busy by now): 1 removed, 0 kept, -1 failed (counted). */
static int remove_image(struct gc_run *g, struct gc_image *im, enum image_gc_why why)
{
	if (protected_now(g, im)) {
		g->rep->kept++;
		return 0;
	}
	struct err e;
	err_clear(&e);
	if (!g->pol->dry_run && img_remove(g->c, im->name, &e) < 0) {
		if (g->rep->failed++ == 0 && g->err)
			*g->err = e;
		return -1;
	}
	struct image_gc_removal *v =
	    realloc(g->rep->removed, (g->rep->n_removed + 1) * sizeof *g->rep->removed);
	if (!v) { /* removed all the same; the report just misses it */
		im->gone = true;
		return 1;
	}
	g->rep->removed = v;
	struct image_gc_removal *r = &v[g->rep->n_removed++];
	memset(r, 0, sizeof *r);
	snprintf(r->name, sizeof r->name, "%s", im->name);
	snprintf(r->digest, sizeof r->digest, "%s", im->digest ? im->digest : "");
	r->why = why;
	r->idle_s = im->last_used > 0 ? g->now - im->last_used : -1;
	for (size_t i = 0; i < im->nblobs; i++) {
		struct blob *b = &g->tab[im->idx[i]];
		if (--b->refs == 0) {
			r->freed += b->size;
			g->total -= b->size;
		}
	}
	im->gone = true;
	return 1;
}

static int cmp_lru(const void *a, const void *b)
{
	const struct gc_image *x = *(const struct gc_image *const *)a;
	const struct gc_image *y = *(const struct gc_image *const *)b;
	if (x->last_used != y->last_used)
		return x->last_used < y->last_used ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void apply_policy(struct gc_run *g)
{
	const struct image_gc_policy *pol = g->pol;
	if (pol->unused_ttl_s > 0)
		for (size_t i = 0; i < g->n; i++) {
			struct gc_image *im = &g->im[i];
			if (im->last_used > 0 && g->now - im->last_used >= pol->unused_ttl_s)
				remove_image(g, im, IMAGE_GC_UNUSED);
		}
	if (pol->store_max <= 0 || g->total <= pol->store_max)
		return;
	struct gc_image **lru = calloc(g->n ? g->n : 1, sizeof *lru);
	if (!lru)
		return;
	size_t k = 0;
	for (size_t i = 0; i < g->n; i++)
		if (!g->im[i].gone && g->im[i].pulled)
			lru[k++] = &g->im[i];
	qsort(lru, k, sizeof *lru, cmp_lru);
	for (size_t i = 0; i < k && g->total > pol->store_max; i++)
		remove_image(g, lru[i], IMAGE_GC_OVER_CAP);
	free(lru);
}

/* The distinct blobs of every image, with reference counts, and the store's total. */
static int build_table(struct gc_run *g)
{
	size_t all = 0;
	for (size_t i = 0; i < g->n; i++)
		all += g->im[i].nblobs;
	g->tab = calloc(all ? all : 1, sizeof *g->tab);
	if (!g->tab)
		return err_set(g->err, ENOMEM, "out of memory");
	size_t k = 0;
	for (size_t i = 0; i < g->n; i++)
		for (size_t j = 0; j < g->im[i].nblobs; j++) {
			snprintf(g->tab[k].digest, sizeof g->tab[k].digest, "%s",
				 g->im[i].blobs[j].digest);
			g->tab[k++].size = g->im[i].blobs[j].size;
		}
	qsort(g->tab, k, sizeof *g->tab, cmp_blob);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || strcmp(g->tab[u - 1].digest, g->tab[i].digest) != 0)
			g->tab[u++] = g->tab[i];
	g->ntab = u;
	g->total = 0;
	for (size_t i = 0; i < g->n; i++) {
		struct gc_image *im = &g->im[i];
		size_t w = 0;
		for (size_t j = 0; j < im->nblobs; j++) {
			struct blob key;
			snprintf(key.digest, sizeof key.digest, "%s", im->blobs[j].digest);
			struct blob *b = bsearch(&key, g->tab, g->ntab, sizeof *g->tab, cmp_blob);
			bool dup = false; /* the same blob twice in one image counts once */
			for (size_t q = 0; q < w; q++)
				dup = dup || &g->tab[im->idx[q]] == b;
			if (!b || dup)
				continue;
			im->idx[w++] = (size_t)(b - g->tab);
			if (b->refs++ == 0)
				g->total += b->size;
		}
		im->nblobs = w;
	}
	return 0;
}

int image_gc(struct ctr_client *c, const struct image_gc_policy *pol, struct image_gc_report *rep,
	     struct err *err)
{
	memset(rep, 0, sizeof *rep);
	struct gc_run g = {.c = c, .pol = pol, .rep = rep, .err = err};
	g.now = pol->now > 0 ? pol->now : (int64_t)time(NULL);
	ProtobufCMessage *ilist = NULL, *clist = NULL;
	int rc = -1;

	Containerd__Services__Images__V1__ListImagesRequest req =
	    CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_REQUEST__INIT;
	struct ctr_status st;
	if (ctr_call_sync_lease(c, NULL, IMAGES "List", &req.base,
				&containerd__services__images__v1__list_images_response__descriptor,
				CALL_MS, &st, &ilist, err) < 0)
		goto out;
	if (st.code != CTR_OK) {
		err_set(err, ctr_code_errno(st.code), "listing images: %s", st.details);
		goto out;
	}
	if (container_images(c, &clist, &g.cnames, &g.ncnames, err) < 0)
		goto out;
	Containerd__Services__Images__V1__ListImagesResponse *r = (void *)ilist;
	g.n = r->n_images;
	g.im = calloc(g.n ? g.n : 1, sizeof *g.im);
	if (!g.im) {
		err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < g.n; i++) {
		Containerd__Services__Images__V1__Image *src = r->images[i];
		struct gc_image *im = &g.im[i];
		im->name = src->name ? src->name : "";
		im->digest = src->target && src->target->digest ? src->target->digest : "";
		for (size_t j = 0; j < src->n_labels; j++) {
			const char *k = src->labels[j]->key, *v = src->labels[j]->value;
			if (k && strcmp(k, IMAGE_LABEL_LAST_USED) == 0)
				im->last_used = label_time(v);
			else if (k && strcmp(k, IMAGE_LABEL_PULLED) == 0)
				im->pulled = true;
		}
		if (pol->last_used) {
			int64_t t = pol->last_used(pol->arg, im->name);
			if (t > im->last_used)
				im->last_used = t;
		}
		image_blobs(c, im, src->target);
	}
	rep->images = g.n;
	if (build_table(&g) < 0)
		goto out;
	rep->store_before = g.total;
	err_clear(err);
	apply_policy(&g);
	rep->store_after = g.total;
	rc = 0;
out:
	free(g.tab);
	free(g.im);
	free(g.cnames);
	ctr_reply_free(clist);
	ctr_reply_free(ilist);
	return rc;
}

void image_gc_report_free(struct image_gc_report *rep)
{
	if (!rep)
		return;
	free(rep->removed);
	rep->removed = NULL;
	rep->n_removed = 0;
}

int image_gc_touch(struct ctr_client *c, const char *name, int64_t now, bool pulled,
		   struct err *err)
{
	/* The target goes back in the request (containerd 2 reads it even when the mask leaves
	 * it alone); only the masked labels change. */
	Containerd__Services__Images__V1__GetImageRequest greq =
	    CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
	greq.name = (char *)name;
	struct ctr_status st;
	ProtobufCMessage *got = NULL;
	if (ctr_call_sync_lease(c, NULL, IMAGES "Get", &greq.base,
				&containerd__services__images__v1__get_image_response__descriptor,
				CALL_MS, &st, &got, err) < 0)
		return -1;
	if (st.code == CTR_NOT_FOUND)
		return 0;
	if (st.code != CTR_OK)
		return err_set(err, ctr_code_errno(st.code), "looking up image %s: %s", name,
			       st.details);
	Containerd__Services__Images__V1__GetImageResponse *gr = (void *)got;
	char when[24];
	snprintf(when, sizeof when, "%lld", (long long)now);
	Containerd__Services__Images__V1__Image__LabelsEntry l0 =
	    CONTAINERD__SERVICES__IMAGES__V1__IMAGE__LABELS_ENTRY__INIT;
	Containerd__Services__Images__V1__Image__LabelsEntry l1 = l0;
	l0.key = IMAGE_LABEL_LAST_USED;
	l0.value = when;
	l1.key = IMAGE_LABEL_PULLED;
	l1.value = when;
	Containerd__Services__Images__V1__Image__LabelsEntry *labs[] = {&l0, &l1};
	char *paths[] = {"labels." IMAGE_LABEL_LAST_USED, "labels." IMAGE_LABEL_PULLED};
	size_t nl = pulled ? 2 : 1;
	Containerd__Services__Images__V1__Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
	img.name = (char *)name;
	img.target = gr->image ? gr->image->target : NULL;
	img.n_labels = nl;
	img.labels = labs;
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	mask.n_paths = nl;
	mask.paths = paths;
	Containerd__Services__Images__V1__UpdateImageRequest ur =
	    CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
	ur.image = &img;
	ur.update_mask = &mask;
	int rc = ctr_call_sync_lease(
	    c, NULL, IMAGES "Update", &ur.base,
	    &containerd__services__images__v1__update_image_response__descriptor, CALL_MS, &st,
	    NULL, err);
	ctr_reply_free(got);
	if (rc < 0)
		return -1;
	if (st.code == CTR_NOT_FOUND)
		return 0;
	if (st.code != CTR_OK)
		return err_set(err, ctr_code_errno(st.code), "labelling image %s: %s", name,
			       st.details);
	return 0;
}
