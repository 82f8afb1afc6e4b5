/*
 * fuzz_manifest.c - libFuzzer target: img_manifest_parse and img_index_select
 * (jail/images/manifest.c) on the same bytes.
 *
 * The platform asked of img_index_select comes from the input's first byte (linux/amd64,
 * linux/arm64/v8, linux/arm/v7, windows/amd64, an empty os); the body is the rest.
 * Invariants (abort() on violation):
 *  - failure: EBADMSG, EFBIG or ENOTSUP (index only) and a message;
 *  - a parsed manifest has 1..IMG_MAX_LAYERS layers, every descriptor a sha256 digest
 *    (img_digest_ok), a size >= 0 and a NUL-terminated media type, every layer a known tar
 *    media type;
 *  - a selected index entry is an image manifest (img_media_kind 1) with a valid digest;
 *  - the body is valid JSON (jansson) whenever either succeeds;
 *  - both parsers read only body[0..len) (exact-size copy).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

static void check_desc(const struct img_desc *d)
{
	check(strnlen(d->media_type, sizeof d->media_type) < sizeof d->media_type,
	      "media type terminated");
	check(img_digest_ok(d->digest), "digest");
	check(d->size >= 0, "size");
}

static const char *const platforms[][3] = {
    {"linux", "amd64", NULL}, {"linux", "arm64", "v8"}, {"linux", "arm", "v7"},
    {"windows", "amd64", ""}, {"", "", NULL},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > IMG_MAX_MANIFEST)
		return 0;
	const char *const *pf = platforms[data[0] % (sizeof platforms / sizeof platforms[0])];
	size_t len = size - 1;
	uint8_t *body = malloc(len ? len : 1);
	memcpy(body, data + 1, len);

	struct img_manifest *m = malloc(sizeof *m);
	struct err e = {0};
	int ok_json = 0;
	if (img_manifest_parse(body, len, m, &e) == 0) {
		ok_json = 1;
		check(m->n >= 1 && m->n <= IMG_MAX_LAYERS, "layer count");
		check_desc(&m->config);
		for (size_t i = 0; i < m->n; i++) {
			check_desc(&m->layers[i]);
			check(strstr(m->layers[i].media_type, "tar") != NULL &&
				  img_media_kind(m->layers[i].media_type) == 0,
			      "layer media type");
		}
	} else {
		check((e.code == EBADMSG || e.code == EFBIG) && e.msg[0], "manifest failure");
	}

	struct img_desc d;
	e = (struct err){0};
	if (img_index_select(body, len, pf[0], pf[1], pf[2], &d, &e) == 0) {
		ok_json = 1;
		check_desc(&d);
		check(img_media_kind(d.media_type) == 1, "selected entry is a manifest");
	} else {
		check((e.code == EBADMSG || e.code == ENOTSUP) && e.msg[0], "index failure");
		check(strnlen(e.msg, sizeof e.msg) < sizeof e.msg, "message terminated");
	}

	if (ok_json) {
		json_error_t je;
		json_t *j = json_loadb((const char *)body, len, 0, &je);
		check(j != NULL, "accepted body is JSON");
		json_decref(j);
	}
	free(m);
	free(body);
	return 0;
}
