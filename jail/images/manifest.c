/*
 * manifest.c - see manifest.h.
 */
#include "manifest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include <jansson.h>

#define MT_OCI_MANIFEST	   "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX	   "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST	   "application/vnd.docker.distribution.manifest.list.v2+json"

static const char *const layer_types[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
};

int img_media_kind(const char *mt)
{
	if (!mt)
		return 0;
	if (strcmp(mt, MT_OCI_MANIFEST) == 0 || strcmp(mt, MT_DOCKER_MANIFEST) == 0)
		return 1;
	if (strcmp(mt, MT_OCI_INDEX) == 0 || strcmp(mt, MT_DOCKER_LIST) == 0)
		return 2;
	return 0;
}

bool img_digest_ok(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static int desc_from_json(json_t *j, struct img_desc *d, const char *what, struct err *err)
{
	const char *mt = json_string_value(json_object_get(j, "mediaType"));
	const char *dg = json_string_value(json_object_get(j, "digest"));
	json_t *sz = json_object_get(j, "size");
	if (!json_is_object(j) || !mt || !dg || !json_is_integer(sz))
		return err_set(err, EBADMSG, "%s: descriptor without mediaType/digest/size", what);
	if (!img_digest_ok(dg))
		return err_set(err, EBADMSG, "%s: unsupported digest %.80s", what, dg);
	if (json_integer_value(sz) < 0 || strlen(mt) >= sizeof d->media_type)
		return err_set(err, EBADMSG, "%s: bad size or media type", what);
	snprintf(d->media_type, sizeof d->media_type, "%s", mt);
	snprintf(d->digest, sizeof d->digest, "%s", dg);
	d->size = (int64_t)json_integer_value(sz);
	return 0;
}

int img_manifest_parse(const uint8_t *body, size_t len, struct img_manifest *m, struct err *err)
{
	memset(m, 0, sizeof *m);
	json_error_t je;
	json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(err, EBADMSG, "manifest is not JSON: %s (line %d)", je.text,
			       je.line);
	int r = -1;
	json_t *layers = json_object_get(root, "layers");
	if (json_integer_value(json_object_get(root, "schemaVersion")) != 2) {
		err_set(err, EBADMSG, "manifest: schemaVersion is not 2");
		goto out;
	}
	if (desc_from_json(json_object_get(root, "config"), &m->config, "manifest config", err) < 0)
		goto out;
	if (!json_is_array(layers) || json_array_size(layers) == 0) {
		err_set(err, EBADMSG, "manifest: no layers");
		goto out;
	}
	if (json_array_size(layers) > IMG_MAX_LAYERS) {
		err_set(err, EFBIG, "manifest: %zu layers, at most %d are accepted",
			json_array_size(layers), IMG_MAX_LAYERS);
		goto out;
	}
	size_t i;
	json_t *l;
	json_array_foreach(layers, i, l)
	{
		struct img_desc *d = &m->layers[i];
		if (desc_from_json(l, d, "manifest layer", err) < 0)
			goto out;
		bool known = false;
		for (size_t k = 0; k < sizeof layer_types / sizeof layer_types[0]; k++)
			known |= strcmp(d->media_type, layer_types[k]) == 0;
		if (!known) {
			err_set(err, EBADMSG, "layer %zu has an unsupported media type %s", i,
				d->media_type);
			goto out;
		}
		m->n++;
	}
	r = 0;
out:
	json_decref(root);
	return r;
}

const char *img_host_arch(void)
{
	struct utsname u;
	if (uname(&u) < 0)
		return "amd64";
	if (strcmp(u.machine, "x86_64") == 0)
		return "amd64";
	if (strcmp(u.machine, "aarch64") == 0)
		return "arm64";
	if (strncmp(u.machine, "arm", 3) == 0)
		return "arm";
	if (strcmp(u.machine, "i686") == 0 || strcmp(u.machine, "i386") == 0)
		return "386";
	if (strcmp(u.machine, "ppc64le") == 0 || strcmp(u.machine, "s390x") == 0 ||
	    strcmp(u.machine, "riscv64") == 0)
		return strcmp(u.machine, "s390x") == 0	   ? "s390x"
		       : strcmp(u.machine, "riscv64") == 0 ? "riscv64"
							   : "ppc64le";
	return "amd64";
}

int img_index_select(const uint8_t *body, size_t len, const char *os, const char *arch,
		     const char *variant, struct img_desc *out, struct err *err)
{
	json_error_t je;
	json_t *root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return err_set(err, EBADMSG, "index is not JSON: %s", je.text);
	json_t *ms = json_object_get(root, "manifests");
	char offered[200] = "";
	size_t used = 0;
	int r = -1;
	if (!json_is_array(ms)) {
		err_set(err, EBADMSG, "index without manifests");
		goto out;
	}
	size_t i;
	json_t *m;
	json_array_foreach(ms, i, m)
	{
		json_t *p = json_object_get(m, "platform");
		const char *pos = json_string_value(json_object_get(p, "os"));
		const char *parch = json_string_value(json_object_get(p, "architecture"));
		const char *pvar = json_string_value(json_object_get(p, "variant"));
		if (pos && parch && used < sizeof offered - 1)
			used += (size_t)snprintf(offered + used, sizeof offered - used, "%s%s/%s",
						 used ? ", " : "", pos, parch);
		if (used >= sizeof offered)
			used = sizeof offered - 1;
		if (!pos || !parch || strcmp(pos, os) != 0 || strcmp(parch, arch) != 0)
			continue;
		if (variant && *variant && pvar && strcmp(pvar, variant) != 0)
			continue;
		if (desc_from_json(m, out, "index entry", err) < 0)
			goto out;
		if (img_media_kind(out->media_type) != 1) {
			err_set(err, EBADMSG, "index entry for %s/%s is not an image manifest", os,
				arch);
			goto out;
		}
		r = 0;
		goto out;
	}
	err_set(err, ENOTSUP, "no image for %s/%s (the image offers: %s)", os, arch,
		used ? offered : "no platform");
out:
	json_decref(root);
	return r;
}
