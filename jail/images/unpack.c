/*
 * unpack.c - see unpack.h.
 */
#include "unpack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "content.h"
#include "github.com/containerd/containerd/api/services/diff/v1/diff.pb-c.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"
#include "github.com/containerd/containerd/api/services/leases/v1/leases.pb-c.h"
#include "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"

#define CALL_MS	 15000
#define APPLY_MS (20 * 60 * 1000) /* a big layer on a slow disk */

/* ---- leases ---- */

int img_lease_begin(struct ctr_client *c, const char *prefix, char id[128], struct err *err)
{
	static atomic_uint seq;
	snprintf(id, 128, "%s-pull-%d-%u-%lld", prefix, (int)getpid(), atomic_fetch_add(&seq, 1),
		 (long long)time(NULL));
	Containerd__Services__Leases__V1__CreateRequest__LabelsEntry lab =
	    CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__LABELS_ENTRY__INIT;
	Containerd__Services__Leases__V1__CreateRequest__LabelsEntry *labs[] = {&lab};
	char exp[40];
	time_t t = time(NULL) + 3600;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(exp, sizeof exp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	lab.key = "containerd.io/gc.expire";
	lab.value = exp;
	Containerd__Services__Leases__V1__CreateRequest req =
	    CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
	req.id = id;
	req.n_labels = 1;
	req.labels = labs;
	struct ctr_status st;
	if (ctr_call_sync_lease(c, NULL, "/containerd.services.leases.v1.Leases/Create", &req.base,
				&containerd__services__leases__v1__create_response__descriptor,
				CALL_MS, &st, NULL, err) < 0)
		return -1;
	if (st.code != CTR_OK)
		return err_set(err, ctr_code_errno(st.code), "creating lease: %s: %s",
			       ctr_code_name(st.code), st.details);
	return 0;
}

void img_lease_end(struct ctr_client *c, const char *id)
{
	if (!id || !*id)
		return;
	Containerd__Services__Leases__V1__DeleteRequest req =
	    CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
	req.id = (char *)id;
	struct ctr_status st;
	ctr_call_sync_lease(c, NULL, "/containerd.services.leases.v1.Leases/Delete", &req.base,
			    &google__protobuf__empty__descriptor, CALL_MS, &st, NULL, NULL);
}

/* ---- snapshots ---- */

#define SNAP "/containerd.services.snapshots.v1.Snapshots/"

static int snap_exists(struct ctr_client *c, const char *lease, const char *snapshotter,
		       const char *key, struct err *err)
{
	Containerd__Services__Snapshots__V1__StatSnapshotRequest req =
	    CONTAINERD__SERVICES__SNAPSHOTS__V1__STAT_SNAPSHOT_REQUEST__INIT;
	req.snapshotter = (char *)snapshotter;
	req.key = (char *)key;
	struct ctr_status st;
	if (ctr_call_sync_lease(
		c, lease, SNAP "Stat", &req.base,
		&containerd__services__snapshots__v1__stat_snapshot_response__descriptor, CALL_MS,
		&st, NULL, err) < 0)
		return -1;
	if (st.code == CTR_OK)
		return 1;
	if (st.code == CTR_NOT_FOUND)
		return 0;
	return err_set(err, ctr_code_errno(st.code), "snapshot stat %s: %s", key, st.details);
}

static void snap_remove(struct ctr_client *c, const char *lease, const char *snapshotter,
			const char *key)
{
	Containerd__Services__Snapshots__V1__RemoveSnapshotRequest req =
	    CONTAINERD__SERVICES__SNAPSHOTS__V1__REMOVE_SNAPSHOT_REQUEST__INIT;
	req.snapshotter = (char *)snapshotter;
	req.key = (char *)key;
	struct ctr_status st;
	ctr_call_sync_lease(c, lease, SNAP "Remove", &req.base,
			    &google__protobuf__empty__descriptor, CALL_MS, &st, NULL, NULL);
}

/* chain(i) = sha256(chain(i-1) + " " + diff(i)), chain(0) = diff(0) (OCI image spec). */
static int chain_next(const char *prev, const char *diff, char out[72], struct err *err)
{
	if (!prev || !*prev) {
		snprintf(out, 72, "%s", diff);
		return 0;
	}
	char in[160];
	int n = snprintf(in, sizeof in, "%s %s", prev, diff);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return err_set(err, EIO, "sha256 failed");
	strcpy(out, "sha256:");
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
	return 0;
}

/* Applies one layer on top of parent and commits it as chain. */
static int apply_layer(struct ctr_client *c, const char *lease, const char *snapshotter,
		       const char *key_prefix, const struct img_desc *layer, const char *diff_id,
		       const char *parent, const char *chain, struct err *err)
{
	static atomic_uint seq;
	char key[256];
	snprintf(key, sizeof key, "%s-extract-%d-%u %s", key_prefix, (int)getpid(),
		 atomic_fetch_add(&seq, 1), chain);

	Containerd__Services__Snapshots__V1__PrepareSnapshotRequest prep =
	    CONTAINERD__SERVICES__SNAPSHOTS__V1__PREPARE_SNAPSHOT_REQUEST__INIT;
	prep.snapshotter = (char *)snapshotter;
	prep.key = key;
	prep.parent = (char *)(parent ? parent : "");
	struct ctr_status st;
	ProtobufCMessage *rep = NULL;
	if (ctr_call_sync_lease(
		c, lease, SNAP "Prepare", &prep.base,
		&containerd__services__snapshots__v1__prepare_snapshot_response__descriptor,
		CALL_MS, &st, &rep, err) < 0)
		return -1;
	if (st.code != CTR_OK)
		return err_set(err, ctr_code_errno(st.code),
			       "preparing a snapshot for layer %s: %s", layer->digest, st.details);
	Containerd__Services__Snapshots__V1__PrepareSnapshotResponse *pr = (void *)rep;

	Containerd__Types__Descriptor d = CONTAINERD__TYPES__DESCRIPTOR__INIT;
	d.media_type = (char *)layer->media_type;
	d.digest = (char *)layer->digest;
	d.size = layer->size;
	Containerd__Services__Diff__V1__ApplyRequest ar =
	    CONTAINERD__SERVICES__DIFF__V1__APPLY_REQUEST__INIT;
	ar.diff = &d;
	ar.n_mounts = pr->n_mounts;
	ar.mounts = pr->mounts;
	ProtobufCMessage *arep = NULL;
	int rc = ctr_call_sync_lease(c, lease, "/containerd.services.diff.v1.Diff/Apply", &ar.base,
				     &containerd__services__diff__v1__apply_response__descriptor,
				     APPLY_MS, &st, &arep, err);
	ctr_reply_free(rep);
	if (rc < 0 || st.code != CTR_OK) {
		if (rc == 0)
			err_set(err, ctr_code_errno(st.code), "unpacking layer %s: %s",
				layer->digest, st.details);
		snap_remove(c, lease, snapshotter, key);
		return -1;
	}
	Containerd__Services__Diff__V1__ApplyResponse *ap = (void *)arep;
	bool same = ap->applied && ap->applied->digest && strcmp(ap->applied->digest, diff_id) == 0;
	char applied[72];
	snprintf(applied, sizeof applied, "%s",
		 ap->applied && ap->applied->digest ? ap->applied->digest : "?");
	ctr_reply_free(arep);
	if (!same) {
		snap_remove(c, lease, snapshotter, key);
		return err_set(
		    err, EBADMSG,
		    "layer %s unpacks to %s but the image config says %s (corrupt image)",
		    layer->digest, applied, diff_id);
	}

	Containerd__Services__Snapshots__V1__CommitSnapshotRequest com =
	    CONTAINERD__SERVICES__SNAPSHOTS__V1__COMMIT_SNAPSHOT_REQUEST__INIT;
	com.snapshotter = (char *)snapshotter;
	com.name = (char *)chain;
	com.key = key;
	if (ctr_call_sync_lease(c, lease, SNAP "Commit", &com.base,
				&google__protobuf__empty__descriptor, CALL_MS, &st, NULL,
				err) < 0) {
		snap_remove(c, lease, snapshotter, key);
		return -1;
	}
	if (st.code == CTR_ALREADY_EXISTS) { /* a concurrent unpack (another worker) won */
		snap_remove(c, lease, snapshotter, key);
		return 0;
	}
	if (st.code != CTR_OK) {
		snap_remove(c, lease, snapshotter, key);
		return err_set(err, ctr_code_errno(st.code), "committing layer %s: %s",
			       layer->digest, st.details);
	}
	return 0;
}

/* ---- image records ---- */

#define IMAGES "/containerd.services.images.v1.Images/"

static int image_put(struct ctr_client *c, const char *lease, const char *name,
		     const struct img_desc *md, struct err *err)
{
	Containerd__Types__Descriptor d = CONTAINERD__TYPES__DESCRIPTOR__INIT;
	d.media_type = (char *)md->media_type;
	d.digest = (char *)md->digest;
	d.size = md->size;
	Containerd__Services__Images__V1__Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
	img.name = (char *)name;
	img.target = &d;
	Containerd__Services__Images__V1__CreateImageRequest cr =
	    CONTAINERD__SERVICES__IMAGES__V1__CREATE_IMAGE_REQUEST__INIT;
	cr.image = &img;
	struct ctr_status st;
	if (ctr_call_sync_lease(
		c, lease, IMAGES "Create", &cr.base,
		&containerd__services__images__v1__create_image_response__descriptor, CALL_MS, &st,
		NULL, err) < 0)
		return -1;
	if (st.code == CTR_ALREADY_EXISTS) {
		char *paths[] = {"target"};
		Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
		mask.n_paths = 1;
		mask.paths = paths;
		Containerd__Services__Images__V1__UpdateImageRequest ur =
		    CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
		ur.image = &img;
		ur.update_mask = &mask;
		if (ctr_call_sync_lease(
			c, lease, IMAGES "Update", &ur.base,
			&containerd__services__images__v1__update_image_response__descriptor,
			CALL_MS, &st, NULL, err) < 0)
			return -1;
	}
	if (st.code != CTR_OK)
		return err_set(err, ctr_code_errno(st.code), "recording image %s: %s", name,
			       st.details);
	return 0;
}

int img_remove(struct ctr_client *c, const char *name, struct err *err)
{
	Containerd__Services__Images__V1__DeleteImageRequest req =
	    CONTAINERD__SERVICES__IMAGES__V1__DELETE_IMAGE_REQUEST__INIT;
	req.name = (char *)name;
	struct ctr_status st;
	if (ctr_call_sync_lease(c, NULL, IMAGES "Delete", &req.base,
				&google__protobuf__empty__descriptor, CALL_MS, &st, NULL, err) < 0)
		return -1;
	if (st.code != CTR_OK && st.code != CTR_NOT_FOUND)
		return err_set(err, ctr_code_errno(st.code), "removing image %s: %s", name,
			       st.details);
	return 0;
}

int img_list(struct ctr_client *c,
	     void (*cb)(void *arg, const char *name, const char *digest, int64_t size), void *arg,
	     struct err *err)
{
	Containerd__Services__Images__V1__ListImagesRequest req =
	    CONTAINERD__SERVICES__IMAGES__V1__LIST_IMAGES_REQUEST__INIT;
	struct ctr_status st;
	ProtobufCMessage *rep = NULL;
	if (ctr_call_sync_lease(c, NULL, IMAGES "List", &req.base,
				&containerd__services__images__v1__list_images_response__descriptor,
				CALL_MS, &st, &rep, err) < 0)
		return -1;
	if (st.code != CTR_OK)
		return err_set(err, ctr_code_errno(st.code), "listing images: %s", st.details);
	Containerd__Services__Images__V1__ListImagesResponse *r = (void *)rep;
	for (size_t i = 0; i < r->n_images; i++) {
		Containerd__Services__Images__V1__Image *im = r->images[i];
		cb(arg, im->name, im->target ? im->target->digest : "",
		   im->target ? im->target->size : 0);
	}
	ctr_reply_free(rep);
	return 0;
}

/* ---- the whole unpack ---- */

int img_unpack(struct ctr_client *c, const char *lease, const char *snapshotter,
	       const char *key_prefix, const char *name, const struct img_desc *mdesc,
	       const uint8_t *mbody, size_t mlen, img_progress_fn progress, void *parg,
	       char chain[72], struct err *err)
{
	struct img_manifest *m = calloc(1, sizeof *m);
	if (!m)
		return err_set(err, ENOMEM, "out of memory");
	uint8_t *cfg = NULL;
	size_t cfglen = 0;
	json_t *root = NULL;
	struct content_writer *w = NULL;
	int r = -1;
	char diff[IMG_MAX_LAYERS][72];

	if (img_manifest_parse(mbody, mlen, m, err) < 0)
		goto out;
	if (content_read_all(c, m->config.digest, IMG_MAX_CONFIG, &cfg, &cfglen, err) < 0) {
		err_wrap(err, "reading the image config");
		goto out;
	}
	json_error_t je;
	root = json_loadb((const char *)cfg, cfglen, 0, &je);
	json_t *ids = json_object_get(json_object_get(root, "rootfs"), "diff_ids");
	if (!root || !json_is_array(ids)) {
		err_set(err, EBADMSG, "image config %s has no rootfs.diff_ids", m->config.digest);
		goto out;
	}
	if (json_array_size(ids) != m->n) {
		err_set(err, EBADMSG, "image config lists %zu layers, the manifest %zu",
			json_array_size(ids), m->n);
		goto out;
	}
	for (size_t i = 0; i < m->n; i++) {
		const char *d = json_string_value(json_array_get(ids, i));
		if (!img_digest_ok(d)) {
			err_set(err, EBADMSG, "image config: bad diff_id %zu", i);
			goto out;
		}
		snprintf(diff[i], sizeof diff[i], "%s", d);
	}

	char prev[72] = "", cur[72];
	for (size_t i = 0; i < m->n; i++) {
		if (chain_next(prev, diff[i], cur, err) < 0)
			goto out;
		int have = snap_exists(c, lease, snapshotter, cur, err);
		if (have < 0)
			goto out;
		if (!have) {
			if (progress) {
				char what[200];
				snprintf(what, sizeof what, "unpacking layer %zu of %zu (%lld MB)",
					 i + 1, m->n, (long long)(m->layers[i].size >> 20));
				progress(parg, what);
			}
			if (apply_layer(c, lease, snapshotter, key_prefix, &m->layers[i], diff[i],
					prev, cur, err) < 0)
				goto out;
		}
		const char *lab[] = {"containerd.io/uncompressed", diff[i], NULL};
		if (content_set_labels(c, lease, m->layers[i].digest, lab, err) < 0)
			goto out;
		snprintf(prev, sizeof prev, "%s", cur);
	}

	/* GC references, as containerd's unpacker writes them: config -> top snapshot,
	 * manifest -> config and layers. The chain lookup of the sandbox follows these. */
	char snapkey[96];
	snprintf(snapkey, sizeof snapkey, "containerd.io/gc.ref.snapshot.%s", snapshotter);
	const char *clab[] = {snapkey, prev, NULL};
	if (content_set_labels(c, lease, m->config.digest, clab, err) < 0)
		goto out;

	char lkeys[IMG_MAX_LAYERS][64];
	const char *mlab[2 * (IMG_MAX_LAYERS + 1) + 1];
	size_t k = 0;
	mlab[k++] = "containerd.io/gc.ref.content.config";
	mlab[k++] = m->config.digest;
	for (size_t i = 0; i < m->n; i++) {
		snprintf(lkeys[i], sizeof lkeys[i], "containerd.io/gc.ref.content.l.%zu", i);
		mlab[k++] = lkeys[i];
		mlab[k++] = m->layers[i].digest;
	}
	mlab[k] = NULL;
	int have = content_info(c, lease, mdesc->digest, NULL, err);
	if (have < 0)
		goto out;
	if (!have) {
		w = content_writer_new(c, lease, key_prefix, err);
		if (!w || content_writer_begin(w, mdesc->digest, (int64_t)mlen, mlab, err) < 0 ||
		    content_writer_write(w, mbody, mlen, err) < 0 ||
		    content_writer_commit(w, NULL, NULL, err) < 0)
			goto out;
	} else if (content_set_labels(c, lease, mdesc->digest, mlab, err) < 0) {
		goto out;
	}
	if (image_put(c, lease, name, mdesc, err) < 0)
		goto out;
	snprintf(chain, 72, "%s", prev);
	r = 0;
out:
	content_writer_free(w);
	json_decref(root);
	free(cfg);
	free(m);
	return r;
}
