/* Unit tests for jail/images/archive_import: OCI layouts and docker-archives, hostile archives. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive_import.h"

/* ---- an in-memory content store that verifies digests, as containerd's does ---- */

struct blob {
	char digest[72];
	char *data;
	size_t len;
};

struct mem_sink {
	struct blob *blobs;
	size_t n;
	bool open;
	char expected[72];
	int64_t declared;
	char *data;
	size_t len;
	EVP_MD_CTX *md;
	int begins, commits, aborts, refused;
	int fail_write_at; /* write number that fails (1-based), 0 = never */
	int writes;
};

static void sha256_hex(const void *data, size_t len, char out[72])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	strcpy(out, "sha256:");
	for (int i = 0; i < 32; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

static int ms_begin(void *arg, const char *expected, int64_t size, struct err *err)
{
	struct mem_sink *ms = arg;
	assert_false(ms->open); /* one blob at a time */
	ms->open = true;
	ms->begins++;
	snprintf(ms->expected, sizeof ms->expected, "%s", expected ? expected : "");
	ms->declared = size;
	ms->data = NULL;
	ms->len = 0;
	ms->md = EVP_MD_CTX_new();
	EVP_DigestInit_ex(ms->md, EVP_sha256(), NULL);
	return 0;
}

static int ms_write(void *arg, const void *data, size_t len, struct err *err)
{
	struct mem_sink *ms = arg;
	assert_true(ms->open);
	assert_true(len <= (1 << 20));
	if (++ms->writes == ms->fail_write_at)
		return err_set(err, ENOSPC, "content store full");
	ms->data = realloc(ms->data, ms->len + len + 1);
	memcpy(ms->data + ms->len, data, len);
	ms->len += len;
	EVP_DigestUpdate(ms->md, data, len);
	return 0;
}

static void ms_close(struct mem_sink *ms)
{
	EVP_MD_CTX_free(ms->md);
	ms->md = NULL;
	ms->open = false;
}

static int ms_commit(void *arg, char digest[72], int64_t *size, struct err *err)
{
	struct mem_sink *ms = arg;
	assert_true(ms->open);
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_DigestFinal_ex(ms->md, md, &mdlen);
	ms_close(ms);
	strcpy(digest, "sha256:");
	for (int i = 0; i < 32; i++)
		sprintf(digest + 7 + 2 * i, "%02x", md[i]);
	if ((ms->expected[0] && strcmp(ms->expected, digest)) ||
	    (ms->declared >= 0 && ms->declared != (int64_t)ms->len)) {
		free(ms->data);
		ms->refused++;
		return err_set(err, EBADMSG, "digest mismatch: expected %s, got %s", ms->expected,
			       digest);
	}
	*size = (int64_t)ms->len;
	ms->commits++;
	ms->blobs = realloc(ms->blobs, (ms->n + 1) * sizeof *ms->blobs);
	struct blob *b = &ms->blobs[ms->n++];
	memcpy(b->digest, digest, 72);
	b->data = ms->data ? ms->data : calloc(1, 1);
	b->len = ms->len;
	return 0;
}

static void ms_abort(void *arg)
{
	struct mem_sink *ms = arg;
	assert_true(ms->open);
	ms->aborts++;
	free(ms->data);
	ms_close(ms);
}

static void ms_free(struct mem_sink *ms)
{
	for (size_t i = 0; i < ms->n; i++)
		free(ms->blobs[i].data);
	free(ms->blobs);
}

static const struct blob *ms_find(const struct mem_sink *ms, const char *digest)
{
	for (size_t i = 0; i < ms->n; i++)
		if (!strcmp(ms->blobs[i].digest, digest))
			return &ms->blobs[i];
	return NULL;
}

static struct blob_sink sink_of(struct mem_sink *ms)
{
	return (struct blob_sink){ms, ms_begin, ms_write, ms_commit, ms_abort};
}

static void xasprintf(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void xasprintf(char **out, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	assert_true(vasprintf(out, fmt, ap) >= 0);
	va_end(ap);
}

/* ---- writing test archives ---- */

static char tmpdir[64];
static int archive_no;

enum outer { PLAIN, GZIP, ZSTD, XZ };

struct tarw {
	struct archive *a;
	char *path; /* in paths[]: outlives the writer, as the callers return it */
};
static char paths[32][128];

static bool tar_open(struct tarw *w, enum outer outer)
{
	w->path = paths[archive_no % 32];
	snprintf(w->path, sizeof paths[0], "%s/a%d.tar", tmpdir, archive_no);
	archive_no++;
	w->a = archive_write_new();
	assert_int_equal(archive_write_set_format_pax_restricted(w->a), ARCHIVE_OK);
	int r = ARCHIVE_OK;
	if (outer == GZIP)
		r = archive_write_add_filter_gzip(w->a);
	else if (outer == ZSTD)
		r = archive_write_add_filter_zstd(w->a);
	else if (outer == XZ)
		r = archive_write_add_filter_xz(w->a);
	if (r != ARCHIVE_OK) { /* this libarchive cannot write it: the caller skips */
		archive_write_free(w->a);
		return false;
	}
	assert_int_equal(archive_write_open_filename(w->a, w->path), ARCHIVE_OK);
	return true;
}

static void tar_entry(struct tarw *w, const char *name, mode_t type, const void *data, size_t len,
		      const char *link)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, type == AE_IFDIR ? 0755 : 0644);
	archive_entry_set_size(e, type == AE_IFREG && !link ? (la_int64_t)len : 0);
	if (type == AE_IFLNK)
		archive_entry_set_symlink(e, link);
	else if (link)
		archive_entry_set_hardlink(e, link);
	assert_int_equal(archive_write_header(w->a, e), ARCHIVE_OK);
	if (type == AE_IFREG && !link && len)
		assert_int_equal(archive_write_data(w->a, data, len), (la_ssize_t)len);
	archive_entry_free(e);
}

static void tar_file(struct tarw *w, const char *name, const void *data, size_t len)
{
	tar_entry(w, name, AE_IFREG, data, len, NULL);
}

static void tar_str(struct tarw *w, const char *name, const char *s)
{
	tar_file(w, name, s, strlen(s));
}

static const char *tar_close(struct tarw *w)
{
	assert_int_equal(archive_write_close(w->a), ARCHIVE_OK);
	archive_write_free(w->a);
	return w->path;
}

/* ---- an OCI layout with a config, two layers, a manifest and a named index ---- */

struct oci {
	char layer1[72], layer2[72], config[72], manifest[72];
	char *config_json, *manifest_json, *index_json;
};

static const char LAYER1[] = "first layer: not a real tar, the importer does not look inside";
static const char LAYER2[] = "\x1f\x8b\x08\x00 second layer, gzip magic";
static const char IMAGE_NAME[] = "vplcell.local/test/oci:1";

static void oci_build(struct oci *o, const char *name_annotation)
{
	sha256_hex(LAYER1, sizeof LAYER1 - 1, o->layer1);
	sha256_hex(LAYER2, sizeof LAYER2 - 1, o->layer2);
	xasprintf(&o->config_json,
		  "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		  "\"diff_ids\":[\"%s\",\"%s\"]}}",
		  o->layer1, o->layer2);
	sha256_hex(o->config_json, strlen(o->config_json), o->config);
	xasprintf(
	    &o->manifest_json,
	    "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
	    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
	    "\"digest\":\"%s\",\"size\":%zu},\"layers\":["
	    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"%s\","
	    "\"size\":%zu},"
	    "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"%s\","
	    "\"size\":%zu}]}",
	    o->config, strlen(o->config_json), o->layer1, sizeof LAYER1 - 1, o->layer2,
	    sizeof LAYER2 - 1);
	sha256_hex(o->manifest_json, strlen(o->manifest_json), o->manifest);
	xasprintf(&o->index_json,
		  "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		  "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":%zu,"
		  "\"annotations\":{%s}}]}",
		  o->manifest, strlen(o->manifest_json), name_annotation);
}

static void oci_free(struct oci *o)
{
	free(o->config_json);
	free(o->manifest_json);
	free(o->index_json);
}

static void blob_name(char out[96], const char *digest)
{
	snprintf(out, 96, "blobs/sha256/%.64s", digest + 7);
}

/* Writes the layout's blobs (all but the one named `skip`, NULL for none). */
static void oci_blobs(struct tarw *w, const struct oci *o, const char *prefix, const char *skip)
{
	char n[128], b[96];
	const struct {
		const char *digest;
		const char *data;
		size_t len;
	} blobs[] = {
	    {o->layer1, LAYER1, sizeof LAYER1 - 1},
	    {o->layer2, LAYER2, sizeof LAYER2 - 1},
	    {o->config, o->config_json, strlen(o->config_json)},
	    {o->manifest, o->manifest_json, strlen(o->manifest_json)},
	};
	for (size_t i = 0; i < sizeof blobs / sizeof blobs[0]; i++) {
		if (skip && !strcmp(skip, blobs[i].digest))
			continue;
		blob_name(b, blobs[i].digest);
		snprintf(n, sizeof n, "%s%s", prefix, b);
		tar_file(w, n, blobs[i].data, blobs[i].len);
	}
}

static const char *oci_archive(const struct oci *o, enum outer outer)
{
	struct tarw w;
	if (!tar_open(&w, outer))
		return NULL;
	tar_entry(&w, "./", AE_IFDIR, NULL, 0, NULL);
	tar_entry(&w, "./blobs/", AE_IFDIR, NULL, 0, NULL);
	tar_entry(&w, "./blobs/sha256/", AE_IFDIR, NULL, 0, NULL);
	oci_blobs(&w, o, "./", NULL);
	tar_str(&w, "./index.json", o->index_json);
	tar_str(&w, "./oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	return tar_close(&w);
}

/* ---- running the importer ---- */

struct result {
	struct mem_sink ms;
	struct imported_image *images;
	size_t n;
	struct err err;
	int rc;
};

static void import(struct result *r, const char *path, const struct import_limits *lim)
{
	memset(r, 0, sizeof *r);
	struct blob_sink sink = sink_of(&r->ms);
	r->rc = archive_import(path, &sink, lim, &r->images, &r->n, &r->err);
	/* Every blob begun was committed or aborted, whatever happened. */
	assert_false(r->ms.open);
	assert_int_equal(r->ms.begins, r->ms.commits + r->ms.aborts + r->ms.refused);
}

static void result_free(struct result *r)
{
	free(r->images);
	ms_free(&r->ms);
}

static void expect_ok(struct result *r)
{
	if (r->rc != 0)
		fail_msg("import failed: %s", r->err.msg);
}

static void expect_fail(struct result *r, int code, const char *needle)
{
	if (r->rc != -1)
		fail_msg("import succeeded, expected '%s'", needle);
	if (r->err.code != code || !strstr(r->err.msg, needle))
		fail_msg("error %d '%s', expected %d with '%s'", r->err.code, r->err.msg, code,
			 needle);
	assert_null(r->images);
}

static void check_oci_result(struct result *r, const struct oci *o)
{
	expect_ok(r);
	assert_int_equal(r->n, 1);
	assert_string_equal(r->images[0].name, IMAGE_NAME);
	assert_string_equal(r->images[0].media_type, "application/vnd.oci.image.manifest.v1+json");
	assert_string_equal(r->images[0].digest, o->manifest);
	assert_int_equal(r->images[0].size, strlen(o->manifest_json));
	assert_int_equal(r->ms.n, 4);
	assert_int_equal(r->ms.aborts, 0);
	assert_non_null(ms_find(&r->ms, o->layer1));
	assert_non_null(ms_find(&r->ms, o->layer2));
	assert_non_null(ms_find(&r->ms, o->config));
	const struct blob *m = ms_find(&r->ms, o->manifest);
	assert_non_null(m);
	assert_memory_equal(m->data, o->manifest_json, m->len);
}

static void test_oci_layout(enum outer outer)
{
	struct oci o;
	oci_build(&o, "\"io.containerd.image.name\":\"vplcell.local/test/oci:1\","
		      "\"org.opencontainers.image.ref.name\":\"1\"");
	const char *path = oci_archive(&o, outer);
	if (!path) {
		oci_free(&o);
		skip();
	}
	struct result r;
	import(&r, path, NULL);
	check_oci_result(&r, &o);
	result_free(&r);
	oci_free(&o);
}

static void test_oci_plain(void **state)
{
	test_oci_layout(PLAIN);
}

static void test_oci_gzip(void **state)
{
	test_oci_layout(GZIP);
}

static void test_oci_zstd(void **state)
{
	test_oci_layout(ZSTD);
}

static void test_oci_xz(void **state)
{
	test_oci_layout(XZ);
}

/* ref.name is used only when it is a full reference, not a bare tag. */
static void test_oci_names(void **state)
{
	struct oci o;
	struct result r;
	oci_build(&o, "\"org.opencontainers.image.ref.name\":\"vplcell.local/test/oci:1\"");
	import(&r, oci_archive(&o, PLAIN), NULL);
	check_oci_result(&r, &o);
	result_free(&r);
	oci_free(&o);

	oci_build(&o, "\"org.opencontainers.image.ref.name\":\"latest\"");
	import(&r, oci_archive(&o, PLAIN), NULL);
	expect_ok(&r);
	assert_string_equal(r.images[0].name, "");
	result_free(&r);
	oci_free(&o);

	oci_build(&o, "\"io.containerd.image.name\":\"bad name\"");
	import(&r, oci_archive(&o, PLAIN), NULL);
	expect_fail(&r, EBADMSG, "invalid image name");
	result_free(&r);
	oci_free(&o);
}

/* Symlinks, hard links and fifos have no effect; a symlink is never a blob. */
static void test_links_skipped(void **state)
{
	struct oci o;
	struct tarw w;
	struct result r;
	char b[96];
	oci_build(&o, "\"io.containerd.image.name\":\"vplcell.local/test/oci:1\"");
	tar_open(&w, PLAIN);
	tar_entry(&w, "evil", AE_IFLNK, NULL, 0, "/etc/shadow");
	tar_entry(&w, "blobs/sha256", AE_IFLNK, NULL, 0, "/etc");
	tar_entry(&w, "fifo", AE_IFIFO, NULL, 0, NULL);
	oci_blobs(&w, &o, "", NULL);
	tar_entry(&w, "passwd", AE_IFREG, NULL, 0, "/etc/passwd");
	tar_str(&w, "index.json", o.index_json);
	tar_str(&w, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	import(&r, tar_close(&w), NULL);
	check_oci_result(&r, &o);
	result_free(&r);

	/* The manifest only as a symlink: missing. */
	tar_open(&w, PLAIN);
	oci_blobs(&w, &o, "", o.manifest);
	blob_name(b, o.manifest);
	tar_entry(&w, b, AE_IFLNK, NULL, 0, "/etc/passwd");
	tar_str(&w, "index.json", o.index_json);
	tar_str(&w, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	import(&r, tar_close(&w), NULL);
	expect_fail(&r, EBADMSG, o.manifest);
	assert_non_null(strstr(r.err.msg, "not in the archive"));
	result_free(&r);
	oci_free(&o);
}

/* An OCI archive with one change made by `mutate` before index.json and oci-layout. */
static const char *oci_variant(const struct oci *o, const char *skip, const char *extra_name,
			       const char *extra, const char *index, const char *layout)
{
	struct tarw w;
	tar_open(&w, PLAIN);
	oci_blobs(&w, o, "", skip);
	if (extra_name)
		tar_str(&w, extra_name, extra);
	if (index)
		tar_str(&w, "index.json", index);
	if (layout)
		tar_str(&w, "oci-layout", layout);
	return tar_close(&w);
}

static const char LAYOUT[] = "{\"imageLayoutVersion\":\"1.0.0\"}";

static void hostile(const char *name, const char *needle)
{
	struct oci o;
	struct result r;
	oci_build(&o, "");
	import(&r, oci_variant(&o, NULL, name, "x", o.index_json, LAYOUT), NULL);
	expect_fail(&r, EINVAL, needle);
	result_free(&r);
	oci_free(&o);
}

static void test_hostile_names(void **state)
{
	hostile("../x", "'..'");
	hostile("blobs/../../x", "'..'");
	hostile("/etc/passwd", "absolute path");
	hostile("./../x", "'..'");
	hostile("a//b", "empty path component");
	hostile("notes.txt", "unexpected file name");
	hostile("blobs/sha256/ABCDEF", "unexpected file name");
	hostile("blobs/sha512/"
		"0000000000000000000000000000000000000000000000000000000000000000",
		"unexpected file name");
}

static void test_duplicate_blob(void **state)
{
	struct oci o;
	struct result r;
	char b[96];
	oci_build(&o, "");
	blob_name(b, o.layer1);
	import(&r, oci_variant(&o, NULL, b, LAYER1, o.index_json, LAYOUT), NULL);
	expect_fail(&r, EINVAL, "duplicate");
	assert_non_null(strstr(r.err.msg, b));
	result_free(&r);
	oci_free(&o);
}

static void test_missing_blob(void **state)
{
	struct oci o;
	struct result r;
	oci_build(&o, "");
	import(&r, oci_variant(&o, o.manifest, NULL, NULL, o.index_json, LAYOUT), NULL);
	expect_fail(&r, EBADMSG, o.manifest);
	result_free(&r);
	oci_free(&o);
}

/* A blob whose content does not match its name: the sink refuses it, the error names it. */
static void test_corrupt_blob(void **state)
{
	struct oci o;
	struct result r;
	char b[96];
	oci_build(&o, "");
	struct tarw w;
	tar_open(&w, PLAIN);
	oci_blobs(&w, &o, "", o.layer2);
	blob_name(b, o.layer2);
	tar_str(&w, b, "tampered");
	tar_str(&w, "index.json", o.index_json);
	tar_str(&w, "oci-layout", LAYOUT);
	import(&r, tar_close(&w), NULL);
	expect_fail(&r, EBADMSG, "digest mismatch");
	assert_non_null(strstr(r.err.msg, b));
	result_free(&r);
	oci_free(&o);
}

/* A failing write: the sink's error comes back with the entry name, the blob is aborted. */
static void test_sink_error(void **state)
{
	struct oci o;
	oci_build(&o, "");
	const char *path = oci_variant(&o, NULL, NULL, NULL, o.index_json, LAYOUT);
	struct mem_sink ms = {.fail_write_at = 2};
	struct blob_sink sink = sink_of(&ms);
	struct imported_image *images = NULL;
	size_t n = 0;
	struct err e;
	err_clear(&e);
	assert_int_equal(archive_import(path, &sink, NULL, &images, &n, &e), -1);
	assert_int_equal(e.code, ENOSPC);
	assert_non_null(strstr(e.msg, "content store full"));
	assert_non_null(strstr(e.msg, "blobs/sha256/"));
	assert_int_equal(ms.aborts, 1);
	assert_int_equal(ms.commits, 1);
	assert_false(ms.open);
	assert_null(images);
	ms_free(&ms);
	oci_free(&o);
}

static void test_limits(void **state)
{
	struct oci o;
	struct result r;
	oci_build(&o, "");
	const char *path = oci_variant(&o, NULL, NULL, NULL, o.index_json, LAYOUT);

	struct import_limits json = {.max_json = 64};
	import(&r, path, &json);
	expect_fail(&r, E2BIG, "index.json");
	result_free(&r);

	struct import_limits entries = {.max_entries = 5};
	import(&r, path, &entries);
	expect_fail(&r, E2BIG, "more than 5 entries");
	result_free(&r);

	struct import_limits blob = {.max_blob = 40};
	import(&r, path, &blob);
	expect_fail(&r, E2BIG, "more than the 40 allowed");
	assert_int_equal(r.ms.aborts, 0); /* refused before begin */
	result_free(&r);

	struct import_limits total = {.max_total = 100};
	import(&r, path, &total);
	expect_fail(&r, E2BIG, "more than 100 bytes");
	result_free(&r);

	/* Exactly enough. */
	struct import_limits enough = {.max_entries = 6};
	import(&r, path, &enough);
	expect_ok(&r);
	result_free(&r);
	oci_free(&o);
}

static void test_bad_json(void **state)
{
	struct oci o;
	struct result r;
	oci_build(&o, "");
	import(&r, oci_variant(&o, NULL, NULL, NULL, "this is not JSON", LAYOUT), NULL);
	expect_fail(&r, EBADMSG, "index.json: malformed JSON");
	result_free(&r);

	import(
	    &r,
	    oci_variant(&o, NULL, NULL, NULL, "{\"schemaVersion\":2,\"schemaVersion\":2}", LAYOUT),
	    NULL);
	expect_fail(&r, EBADMSG, "duplicate");
	result_free(&r);

	import(&r,
	       oci_variant(&o, NULL, NULL, NULL, o.index_json, "{\"imageLayoutVersion\":\"2\"}"),
	       NULL);
	expect_fail(&r, EBADMSG, "imageLayoutVersion");
	result_free(&r);

	import(&r, oci_variant(&o, NULL, NULL, NULL, o.index_json, NULL), NULL);
	expect_fail(&r, EBADMSG, "without oci-layout");
	result_free(&r);

	import(&r, oci_variant(&o, NULL, NULL, NULL, NULL, LAYOUT), NULL);
	expect_fail(&r, EBADMSG, "neither index.json nor manifest.json");
	result_free(&r);

	/* Uppercase hex is not a digest. */
	char *upper = strdup(o.index_json);
	char *d = strstr(upper, o.manifest);
	for (char *p = d + 7; p < d + 71; p++)
		if (*p >= 'a' && *p <= 'f')
			*p = (char)(*p - 'a' + 'A');
	import(&r, oci_variant(&o, NULL, NULL, NULL, upper, LAYOUT), NULL);
	expect_fail(&r, EBADMSG, "invalid digest");
	result_free(&r);
	free(upper);

	/* Wrong size in the index. */
	char *sized = NULL;
	xasprintf(&sized,
		  "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":"
		  "\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"%s\",\"size\":1}]}",
		  o.manifest);
	import(&r, oci_variant(&o, NULL, NULL, NULL, sized, LAYOUT), NULL);
	expect_fail(&r, EBADMSG, "size 1 for");
	result_free(&r);
	free(sized);
	oci_free(&o);
}

static void test_not_a_tar(void **state)
{
	char path[128];
	snprintf(path, sizeof path, "%s/garbage", tmpdir);
	FILE *f = fopen(path, "w");
	for (int i = 0; i < 4096; i++)
		fputc((i * 7919) & 0xff, f);
	fclose(f);
	struct result r;
	import(&r, path, NULL);
	assert_int_equal(r.rc, -1);
	assert_int_not_equal(r.err.code, 0);
	result_free(&r);

	snprintf(path, sizeof path, "%s/does-not-exist.tar", tmpdir);
	import(&r, path, NULL);
	expect_fail(&r, ENOENT, "does-not-exist");
	result_free(&r);
}

/* A tarball cut short inside a blob: an archive error, and the blob in progress is aborted. */
static void test_truncated(void **state)
{
	struct oci o;
	oci_build(&o, "");
	for (enum outer outer = PLAIN; outer <= GZIP; outer++) {
		const char *path = oci_archive(&o, outer);
		FILE *f = fopen(path, "r+");
		assert_non_null(f);
		/* the first blob's data starts after its header (pax: 3 blocks) */
		assert_int_equal(ftruncate(fileno(f), outer == PLAIN ? 2048 + 40 : 150), 0);
		fclose(f);
		struct result r;
		import(&r, path, NULL);
		assert_int_equal(r.rc, -1);
		assert_int_equal(r.err.code, EBADMSG);
		if (outer == PLAIN)
			assert_int_equal(r.ms.aborts, 1);
		result_free(&r);
	}
	oci_free(&o);
}

/* ---- docker-archive ---- */

static const char DL1[] = "docker layer one (plain tar)";
static const char DL2[] = "\x1f\x8b\x08\x00 docker layer two (gzip)";
static const char DL3[] = "\x28\xb5\x2f\xfd docker layer three (zstd)";

struct docker {
	char id1[65], id2[65], id3[65], cfg_id[65];
	char l1[72], l2[72], l3[72];
	char *config, *manifest;
	char cfgname[80], p1[80], p2[80], p3[80];
};

static void docker_build(struct docker *d, int diff_ids)
{
	sha256_hex(DL1, sizeof DL1 - 1, d->l1);
	sha256_hex(DL2, sizeof DL2 - 1, d->l2);
	sha256_hex(DL3, sizeof DL3 - 1, d->l3);
	memcpy(d->id1, d->l1 + 7, 65);
	memcpy(d->id2, d->l2 + 7, 65);
	memcpy(d->id3, d->l3 + 7, 65);
	xasprintf(&d->config,
		  "{\"architecture\":\"amd64\",\"os\":\"linux\",\"rootfs\":{\"type\":\"layers\","
		  "\"diff_ids\":[\"%s\",\"%s\"%s%s%s]}}",
		  d->l1, d->l2, diff_ids == 3 ? ",\"" : "", diff_ids == 3 ? d->l3 : "",
		  diff_ids == 3 ? "\"" : "");
	char c[72];
	sha256_hex(d->config, strlen(d->config), c);
	memcpy(d->cfg_id, c + 7, 65);
	snprintf(d->cfgname, sizeof d->cfgname, "%s.json", d->cfg_id);
	snprintf(d->p1, sizeof d->p1, "%s/layer.tar", d->id1);
	snprintf(d->p2, sizeof d->p2, "%s/layer.tar", d->id2);
	snprintf(d->p3, sizeof d->p3, "%s.tar", d->id3); /* podman/skopeo's form */
	xasprintf(&d->manifest,
		  "[{\"Config\":\"%s\",\"RepoTags\":[\"busybox:latest\",\"busybox:1\"],"
		  "\"Layers\":[\"%s\",\"%s\",\"%s\"]}]",
		  d->cfgname, d->p1, d->p2, d->p3);
}

static void docker_free(struct docker *d)
{
	free(d->config);
	free(d->manifest);
}

static const char *docker_archive(const struct docker *d, bool manifest_first, bool gzip,
				  const char *skip)
{
	struct tarw w;
	char n[100];
	tar_open(&w, gzip ? GZIP : PLAIN);
	if (manifest_first)
		tar_str(&w, "manifest.json", d->manifest);
	tar_entry(&w, d->id2, AE_IFDIR, NULL, 0, NULL);
	if (!skip || strcmp(skip, d->p2))
		tar_file(&w, d->p2, DL2, sizeof DL2 - 1);
	snprintf(n, sizeof n, "%s/VERSION", d->id2);
	tar_str(&w, n, "1.0");
	snprintf(n, sizeof n, "%s/json", d->id2);
	tar_str(&w, n, "{\"id\":\"x\"}");
	tar_str(&w, d->cfgname, d->config);
	tar_file(&w, d->p3, DL3, sizeof DL3 - 1);
	tar_str(&w, "repositories", "{\"busybox\":{\"latest\":\"x\"}}");
	tar_entry(&w, d->id1, AE_IFDIR, NULL, 0, NULL);
	if (!skip || strcmp(skip, d->p1))
		tar_file(&w, d->p1, DL1, sizeof DL1 - 1);
	if (!manifest_first)
		tar_str(&w, "manifest.json", d->manifest);
	return tar_close(&w);
}

static void check_docker_result(struct result *r, const struct docker *d)
{
	expect_ok(r);
	assert_int_equal(r->n, 1);
	assert_string_equal(r->images[0].name, "busybox:latest");
	assert_string_equal(r->images[0].media_type, "application/vnd.oci.image.manifest.v1+json");
	/* 3 layers, the config, the synthesised manifest */
	assert_int_equal(r->ms.n, 5);
	const struct blob *m = ms_find(&r->ms, r->images[0].digest);
	assert_non_null(m);
	assert_int_equal(r->images[0].size, m->len);
	char cd[72];
	snprintf(cd, sizeof cd, "sha256:%s", d->cfg_id);
	const struct blob *c = ms_find(&r->ms, cd);
	assert_non_null(c);
	assert_memory_equal(c->data, d->config, c->len);

	json_error_t je;
	json_t *j = json_loadb(m->data, m->len, 0, &je);
	assert_non_null(j);
	json_int_t sv = 0, csize = 0;
	const char *mt = NULL, *cmt = NULL, *cdg = NULL;
	json_t *layers = NULL;
	assert_int_equal(json_unpack(j, "{s:I, s:s, s:{s:s, s:s, s:I}, s:o}", "schemaVersion", &sv,
				     "mediaType", &mt, "config", "mediaType", &cmt, "digest", &cdg,
				     "size", &csize, "layers", &layers),
			 0);
	assert_int_equal(sv, 2);
	assert_string_equal(mt, "application/vnd.oci.image.manifest.v1+json");
	assert_string_equal(cmt, "application/vnd.oci.image.config.v1+json");
	assert_string_equal(cdg, cd);
	assert_int_equal(csize, strlen(d->config));
	assert_int_equal(json_array_size(layers), 3);
	const char *want_mt[] = {"application/vnd.oci.image.layer.v1.tar",
				 "application/vnd.oci.image.layer.v1.tar+gzip",
				 "application/vnd.oci.image.layer.v1.tar+zstd"};
	const char *want_dg[] = {d->l1, d->l2, d->l3};
	const size_t want_sz[] = {sizeof DL1 - 1, sizeof DL2 - 1, sizeof DL3 - 1};
	for (size_t i = 0; i < 3; i++) {
		json_t *l = json_array_get(layers, i);
		assert_string_equal(json_string_value(json_object_get(l, "mediaType")), want_mt[i]);
		assert_string_equal(json_string_value(json_object_get(l, "digest")), want_dg[i]);
		assert_int_equal(json_integer_value(json_object_get(l, "size")), want_sz[i]);
		assert_non_null(ms_find(&r->ms, want_dg[i]));
	}
	json_decref(j);
}

static void test_docker_manifest_first(void **state)
{
	struct docker d;
	struct result r;
	docker_build(&d, 3);
	import(&r, docker_archive(&d, true, false, NULL), NULL);
	check_docker_result(&r, &d);
	result_free(&r);
	docker_free(&d);
}

static void test_docker_manifest_last_gzip(void **state)
{
	struct docker d;
	struct result r;
	docker_build(&d, 3);
	import(&r, docker_archive(&d, false, true, NULL), NULL);
	check_docker_result(&r, &d);
	result_free(&r);
	docker_free(&d);
}

static void test_docker_diff_ids_mismatch(void **state)
{
	struct docker d;
	struct result r;
	docker_build(&d, 2);
	import(&r, docker_archive(&d, true, false, NULL), NULL);
	expect_fail(&r, EBADMSG, "2 rootfs.diff_ids for 3 layers");
	result_free(&r);
	docker_free(&d);
}

static void test_docker_missing_layer(void **state)
{
	struct docker d;
	struct result r;
	docker_build(&d, 3);
	import(&r, docker_archive(&d, false, false, d.p2), NULL);
	expect_fail(&r, EBADMSG, d.p2);
	assert_non_null(strstr(r.err.msg, "not in the archive"));
	result_free(&r);
	docker_free(&d);
}

/* docker save writes a layer it already wrote as a symlink "../<id>/layer.tar". */
static void test_docker_layer_alias(void **state)
{
	struct docker d;
	struct result r;
	struct tarw w;
	char alias[100], target[100], *manifest = NULL;
	docker_build(&d, 3);
	snprintf(alias, sizeof alias, "%064d/layer.tar", 7);
	snprintf(target, sizeof target, "../%s", d.p1);
	xasprintf(&manifest,
		  "[{\"Config\":\"%s\",\"RepoTags\":null,\"Layers\":[\"%s\",\"%s\",\"%s\"]}]",
		  d.cfgname, d.p1, d.p2, alias);
	tar_open(&w, PLAIN);
	tar_str(&w, d.cfgname, d.config);
	tar_entry(&w, alias, AE_IFLNK, NULL, 0, target);
	tar_file(&w, d.p1, DL1, sizeof DL1 - 1);
	tar_file(&w, d.p2, DL2, sizeof DL2 - 1);
	tar_str(&w, "manifest.json", manifest);
	import(&r, tar_close(&w), NULL);
	expect_ok(&r);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.images[0].name, "");
	const struct blob *m = ms_find(&r.ms, r.images[0].digest);
	assert_non_null(m);
	char *text = strndup(m->data, m->len);
	/* the third layer is the first one again */
	char *first = strstr(text, d.l1);
	assert_non_null(first);
	assert_non_null(strstr(first + 1, d.l1));
	free(text);
	result_free(&r);

	/* An alias pointing elsewhere is only a skipped symlink: the layer is missing. */
	tar_open(&w, PLAIN);
	tar_str(&w, d.cfgname, d.config);
	tar_entry(&w, alias, AE_IFLNK, NULL, 0, "/etc/passwd");
	tar_file(&w, d.p1, DL1, sizeof DL1 - 1);
	tar_file(&w, d.p2, DL2, sizeof DL2 - 1);
	tar_str(&w, "manifest.json", manifest);
	import(&r, tar_close(&w), NULL);
	expect_fail(&r, EBADMSG, "not in the archive");
	assert_non_null(strstr(r.err.msg, alias));
	result_free(&r);
	free(manifest);
	docker_free(&d);
}

/* Docker 25+ writes an OCI layout with a manifest.json beside it: read as OCI. */
static void test_docker_oci_format(void **state)
{
	struct oci o;
	struct result r;
	char *manifest = NULL;
	oci_build(&o, "\"io.containerd.image.name\":\"vplcell.local/test/oci:1\"");
	xasprintf(&manifest,
		  "[{\"Config\":\"blobs/sha256/%s\",\"RepoTags\":[\"oci:1\"],"
		  "\"Layers\":[\"blobs/sha256/%s\",\"blobs/sha256/%s\"]}]",
		  o.config + 7, o.layer1 + 7, o.layer2 + 7);
	struct tarw w;
	tar_open(&w, PLAIN);
	tar_str(&w, "manifest.json", manifest);
	tar_str(&w, "repositories", "{}");
	oci_blobs(&w, &o, "", NULL);
	tar_str(&w, "index.json", o.index_json);
	tar_str(&w, "oci-layout", LAYOUT);
	import(&r, tar_close(&w), NULL);
	check_oci_result(&r, &o);
	result_free(&r);
	free(manifest);
	oci_free(&o);
}

/* The image scripts/build-test-image.sh caches, when this machine has built it. */
static void test_cached_test_image(void **state)
{
	const char *dir = "/var/cache/vplcell/images";
	DIR *dh = opendir(dir);
	if (!dh)
		skip();
	bool found = false;
	struct dirent *de;
	while ((de = readdir(dh))) {
		/* the script's names: 16 hex digits + ".tar" */
		if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".tar") ||
		    strspn(de->d_name, "0123456789abcdef") != 16)
			continue;
		char path[300];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		struct result r;
		import(&r, path, NULL);
		expect_ok(&r);
		assert_int_equal(r.n, 1);
		assert_string_equal(r.images[0].name, "vplcell.local/test/busybox:latest");
		assert_string_equal(r.images[0].media_type,
				    "application/vnd.oci.image.manifest.v1+json");
		assert_non_null(ms_find(&r.ms, r.images[0].digest));
		assert_int_equal(r.ms.n, 3); /* layer, config, manifest */
		result_free(&r);
		found = true;
	}
	closedir(dh);
	if (!found)
		skip();
}

static int setup(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/vplcell-archive-import.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	DIR *dh = opendir(tmpdir);
	if (dh) {
		struct dirent *de;
		char path[400];
		while ((de = readdir(dh))) {
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", tmpdir, de->d_name);
			unlink(path);
		}
		closedir(dh);
	}
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_oci_plain),
	    cmocka_unit_test(test_oci_gzip),
	    cmocka_unit_test(test_oci_zstd),
	    cmocka_unit_test(test_oci_xz),
	    cmocka_unit_test(test_oci_names),
	    cmocka_unit_test(test_links_skipped),
	    cmocka_unit_test(test_hostile_names),
	    cmocka_unit_test(test_duplicate_blob),
	    cmocka_unit_test(test_missing_blob),
	    cmocka_unit_test(test_corrupt_blob),
	    cmocka_unit_test(test_sink_error),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_bad_json),
	    cmocka_unit_test(test_not_a_tar),
	    cmocka_unit_test(test_truncated),
	    cmocka_unit_test(test_docker_manifest_first),
	    cmocka_unit_test(test_docker_manifest_last_gzip),
	    cmocka_unit_test(test_docker_diff_ids_mismatch),
	    cmocka_unit_test(test_docker_missing_layer),
	    cmocka_unit_test(test_docker_layer_alias),
	    cmocka_unit_test(test_docker_oci_format),
	    cmocka_unit_test(test_cached_test_image),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
