/*
 * pull.c - see pull.h.
 */
#include "pull.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content.h"
#include "github.com/containerd/containerd/api/services/images/v1/images.pb-c.h"

struct sink_ctx {
	struct content_writer *w;
	struct err err;
	int64_t bytes;
};

static int to_content(void *arg, const void *data, size_t len)
{
	struct sink_ctx *s = arg;
	s->bytes += (int64_t)len;
	return content_writer_write(s->w, data, len, &s->err);
}

static ssize_t from_content(void *arg, void *buf, size_t len)
{
	return content_reader_read(arg, buf, len);
}

/* One blob into the content store unless it is there already. */
static int fetch_blob(const struct pull_env *env, struct content_writer *w,
		      const struct image_ref *from, const struct img_desc *d, int64_t *fetched,
		      struct err *err)
{
	int have = content_info(env->c, NULL, d->digest, NULL, err);
	if (have < 0)
		return -1;
	if (have)
		return 0;
	if (content_writer_begin(w, d->digest, d->size, NULL, err) < 0)
		return -1;
	struct sink_ctx s = {.w = w};
	err_clear(&s.err);
	if (reg_get_blob(env->reg, from, d->digest, d->size, d->size, to_content, &s, err) < 0) {
		if (s.err.code && err) /* the content store failed, not the registry */
			*err = s.err;
		content_writer_abort(w);
		return -1;
	}
	*fetched += s.bytes;
	return content_writer_commit(w, NULL, NULL, err);
}

static int push_blob(const struct pull_env *env, const struct image_ref *to,
		     const struct img_desc *d, struct err *err)
{
	struct content_reader *r = content_reader_open(env->c, d->digest, err);
	if (!r)
		return -1;
	int rc = reg_put_blob(env->reg, to, d->digest, d->size, from_content, r, err);
	if (rc < 0 && content_reader_err(r)->code && err)
		*err = *content_reader_err(r);
	content_reader_close(r);
	return rc;
}

int image_target(struct ctr_client *c, const char *name, char digest[72], struct err *err)
{
	Containerd__Services__Images__V1__GetImageRequest req =
	    CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
	req.name = (char *)name;
	struct ctr_status st;
	ProtobufCMessage *rep = NULL;
	if (ctr_call_sync_lease(c, NULL, "/containerd.services.images.v1.Images/Get", &req.base,
				&containerd__services__images__v1__get_image_response__descriptor,
				CONTENT_CALL_MS, &st, &rep, err) < 0)
		return -1;
	if (st.code == CTR_NOT_FOUND)
		return 0;
	if (st.code != CTR_OK)
		return err_set(err, ctr_code_errno(st.code), "looking up image %s: %s", name,
			       st.details);
	Containerd__Services__Images__V1__GetImageResponse *r = (void *)rep;
	snprintf(digest, 72, "%s",
		 r->image && r->image->target && r->image->target->digest ? r->image->target->digest
									  : "");
	ctr_reply_free(rep);
	return 1;
}

int image_pull(const struct pull_env *env, const struct image_ref *from, const char *name,
	       const struct image_ref *copy_to, struct pull_result *res, struct err *err)
{
	memset(res, 0, sizeof *res);
	char fromname[600];
	image_ref_format(from, fromname, sizeof fromname);
	struct reg_manifest man = {0};
	struct img_manifest *m = calloc(1, sizeof *m);
	struct content_writer *w = NULL;
	char lease[128] = "";
	int rc = -1;
	if (!m)
		return err_set(err, ENOMEM, "out of memory");

	if (reg_resolve(env->reg, from, &man, err) < 0)
		goto out;
	if (img_media_kind(man.media_type) != 1) {
		err_set(err, EBADMSG, "%s: unsupported manifest type %s", fromname, man.media_type);
		goto out;
	}
	if (img_manifest_parse(man.body, man.len, m, err) < 0) {
		err_wrap(err, "%s", fromname);
		goto out;
	}
	snprintf(res->digest, sizeof res->digest, "%s", man.digest);
	res->size = m->config.size;
	for (size_t i = 0; i < m->n; i++)
		res->size += m->layers[i].size;
	if (env->max_image_size > 0 && res->size > env->max_image_size) {
		err_set(err, EFBIG, "image %s is %lld MB, more than this server's limit (%lld MB)",
			fromname, (long long)(res->size >> 20),
			(long long)(env->max_image_size >> 20));
		goto out;
	}

	if (img_lease_begin(env->c, env->key_prefix, lease, err) < 0)
		goto out;
	w = content_writer_new(env->c, lease, env->key_prefix, err);
	if (!w)
		goto out;
	if (fetch_blob(env, w, from, &m->config, &res->fetched, err) < 0)
		goto blob_failed;
	for (size_t i = 0; i < m->n; i++) {
		if (env->progress) {
			char what[200];
			snprintf(what, sizeof what, "downloading layer %zu of %zu (%lld MB)", i + 1,
				 m->n, (long long)(m->layers[i].size >> 20));
			env->progress(env->parg, what);
		}
		if (fetch_blob(env, w, from, &m->layers[i], &res->fetched, err) < 0)
			goto blob_failed;
	}
	struct img_desc md = {.size = (int64_t)man.len};
	snprintf(md.media_type, sizeof md.media_type, "%s", man.media_type);
	snprintf(md.digest, sizeof md.digest, "%s", man.digest);
	if (img_unpack(env->c, lease, env->snapshotter, env->key_prefix, name, &md, man.body,
		       man.len, env->progress, env->parg, res->chain, err) < 0) {
		err_wrap(err, "%s", fromname);
		goto out;
	}
	rc = 0;
	if (copy_to) {
		struct err ce;
		err_clear(&ce);
		int ok = push_blob(env, copy_to, &m->config, &ce) == 0;
		for (size_t i = 0; ok && i < m->n; i++)
			ok = push_blob(env, copy_to, &m->layers[i], &ce) == 0;
		ok = ok && reg_put_manifest(env->reg, copy_to, man.media_type, man.body, man.len,
					    &ce) == 0;
		res->copied = ok;
		if (!ok)
			snprintf(res->copy_error, sizeof res->copy_error, "%s", ce.msg);
	}
	goto out;
blob_failed:
	err_wrap(err, "fetching %s", fromname);
out:
	content_writer_free(w);
	if (lease[0])
		img_lease_end(env->c, lease);
	free(man.body);
	free(m);
	return rc;
}
