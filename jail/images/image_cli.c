/*
 * image_cli.c - see image_cli.h.
 */
#include "image_cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_import.h"
#include "content.h"
#include "ctr_client.h"
#include "imageref.h"
#include "pull.h"
#include "puller.h"
#include "registry.h"
#include "unpack.h"

#define SNAPSHOTTER "overlayfs"

static void usage(FILE *f)
{
	fprintf(f, "usage: vpl-jail [-f CONFIG] image list\n"
		   "       vpl-jail [-f CONFIG] image pull NAME\n"
		   "       vpl-jail [-f CONFIG] image import FILE [NAME]\n"
		   "       vpl-jail [-f CONFIG] image rm NAME\n");
}

/* The containerd name of NAME, as the worker names DEFAULT_IMAGE. */
static int full_name(const struct jail_config *cfg, const char *name, char *out, size_t n,
		     struct err *err)
{
	struct image_ref r;
	if (image_ref_parse(name, cfg->local_registry, &r, err) < 0)
		return -1;
	if (image_ref_format(&r, out, n) < 0)
		return err_set(err, ENAMETOOLONG, "name too long");
	return 0;
}

static void print_image(void *arg, const char *name, const char *digest, int64_t size)
{
	(void)arg;
	printf("%s\t%s\t%" PRId64 "\n", name, digest, size);
}

/* ---- import: the archive's blobs go through a content writer ---- */

static int sink_begin(void *arg, const char *expected, int64_t size, struct err *err)
{
	return content_writer_begin(arg, expected, size, NULL, err);
}
static int sink_write(void *arg, const void *data, size_t len, struct err *err)
{
	return content_writer_write(arg, data, len, err);
}
static int sink_commit(void *arg, char digest[72], int64_t *size, struct err *err)
{
	return content_writer_commit(arg, digest, size, err);
}
static void sink_abort(void *arg)
{
	content_writer_abort(arg);
}

static int import_one(struct ctr_client *c, const char *lease, const char *name,
		      const struct imported_image *im, struct err *err)
{
	struct img_desc md = {.size = im->size};
	snprintf(md.media_type, sizeof md.media_type, "%s", im->media_type);
	snprintf(md.digest, sizeof md.digest, "%s", im->digest);
	uint8_t *body = NULL;
	size_t len = 0;
	if (content_read_all(c, md.digest, IMG_MAX_MANIFEST, &body, &len, err) < 0)
		return -1;
	if (img_media_kind(md.media_type) == 2) { /* an index: our platform's manifest */
		struct img_desc pick;
		int rc = img_index_select(body, len, "linux", img_host_arch(), NULL, &pick, err);
		free(body);
		body = NULL;
		if (rc < 0 ||
		    content_read_all(c, pick.digest, IMG_MAX_MANIFEST, &body, &len, err) < 0)
			return -1;
		md = pick;
	}
	char chain[72];
	int rc = img_unpack(c, lease, SNAPSHOTTER, "vplcell-cli", name, &md, body, len, NULL, NULL,
			    chain, err);
	free(body);
	if (rc == 0)
		printf("imported %s %s\n", name, md.digest);
	return rc;
}

static int cmd_import(const struct jail_config *cfg, struct ctr_client *c, const char *file,
		      const char *name, struct err *err)
{
	char lease[128];
	if (img_lease_begin(c, "vplcell-cli", lease, err) < 0)
		return -1;
	struct content_writer *w = content_writer_new(c, lease, "vplcell-cli-import", err);
	struct imported_image *ims = NULL;
	size_t n = 0;
	int rc = -1;
	if (!w)
		goto out;
	struct blob_sink sink = {.arg = w,
				 .begin = sink_begin,
				 .write = sink_write,
				 .commit = sink_commit,
				 .abort = sink_abort};
	struct import_limits lim = {.max_total = cfg->max_image_size};
	if (archive_import(file, &sink, &lim, &ims, &n, err) < 0)
		goto out;
	if (n == 0) {
		err_set(err, EINVAL, "%s holds no image", file);
		goto out;
	}
	if (name && n != 1) {
		err_set(err, EINVAL, "%s holds %zu images: give no NAME, they keep theirs", file,
			n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *want = name ? name : ims[i].name;
		if (!want[0]) {
			err_set(err, EINVAL, "image %zu of %s has no name: give one", i, file);
			goto out;
		}
		char full[320];
		if (full_name(cfg, want, full, sizeof full, err) < 0 ||
		    import_one(c, lease, full, &ims[i], err) < 0)
			goto out;
	}
	rc = 0;
out:
	free(ims);
	content_writer_free(w);
	img_lease_end(c, lease);
	return rc;
}

static int cmd_pull(const struct jail_config *cfg, struct ctr_client *c, const char *name,
		    struct err *err)
{
	struct image_source src;
	const char *allowed = cfg->allowed_images;
	if (image_source_resolve(name, cfg->local_registry, cfg->upstream_registry,
				 allowed && *allowed, &src, err) < 0)
		return -1;
	struct reg_cred *creds = NULL;
	char *credbuf = NULL;
	int ncreds = puller_read_auth(cfg->registry_auth_file, &creds, &credbuf, err);
	if (ncreds < 0)
		return -1;
	const char *lr = cfg->local_registry;
	bool loop = strncmp(lr, "127.", 4) == 0 || strncmp(lr, "localhost", 9) == 0;
	struct reg_opts o = {
	    .plain_http_hosts = cfg->registry_plain_http ? cfg->registry_plain_http
				: loop			 ? lr
							 : "",
	    .ca_file = cfg->registry_ca_file,
	    .creds = creds,
	    .ncreds = (size_t)ncreds,
	};
	struct reg_client *reg = reg_client_new(&o, err);
	int rc = -1;
	if (reg) {
		char full[320];
		image_ref_format(&src.local, full, sizeof full);
		struct pull_env env = {.c = c,
				       .reg = reg,
				       .snapshotter = SNAPSHOTTER,
				       .key_prefix = "vplcell-cli",
				       .max_image_size = cfg->max_image_size};
		struct pull_result res;
		rc = image_pull(&env, &src.local, full, NULL, &res, err);
		if (rc < 0 && err && err->code == ENOENT && src.upstream.host[0]) {
			err_clear(err);
			rc = image_pull(&env, &src.upstream, full, &src.local, &res, err);
		}
		if (rc == 0)
			printf("pulled %s %s (%" PRId64 " bytes fetched)%s%s\n", full, res.digest,
			       res.fetched, res.copy_error[0] ? "; not copied: " : "",
			       res.copy_error);
	}
	reg_client_free(reg);
	free(creds);
	free(credbuf);
	return rc;
}

int image_cli(const struct jail_config *cfg, int argc, char **argv)
{
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	const char *cmd = argv[0];
	bool ok_args = (strcmp(cmd, "list") == 0 && argc == 1) ||
		       ((strcmp(cmd, "pull") == 0 || strcmp(cmd, "rm") == 0) && argc == 2) ||
		       (strcmp(cmd, "import") == 0 && (argc == 2 || argc == 3));
	if (!ok_args) {
		usage(stderr);
		return 2;
	}
	if (!cfg->containerd_socket) {
		fprintf(stderr, "vpl-jail image: CONTAINERD_SOCKET is not set\n");
		return 1;
	}
	struct err e;
	err_clear(&e);
	struct ctr_client *c =
	    ctr_client_new(cfg->containerd_socket, cfg->containerd_namespace, NULL, &e);
	if (!c) {
		fprintf(stderr, "vpl-jail image: %s\n", e.msg);
		return 1;
	}
	int rc;
	char full[320];
	if (strcmp(cmd, "list") == 0)
		rc = img_list(c, print_image, NULL, &e);
	else if (strcmp(cmd, "rm") == 0)
		rc = full_name(cfg, argv[1], full, sizeof full, &e) < 0 ? -1
									: img_remove(c, full, &e);
	else if (strcmp(cmd, "pull") == 0)
		rc = cmd_pull(cfg, c, argv[1], &e);
	else
		rc = cmd_import(cfg, c, argv[1], argc == 3 ? argv[2] : NULL, &e);
	ctr_client_free(c);
	if (rc < 0) {
		fprintf(stderr, "vpl-jail image %s: %s\n", cmd, e.msg);
		return 1;
	}
	return 0;
}
