#include "archive_import.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

/* Data is read and handed to the sink in chunks of at most this size. */
#define CHUNK_SIZE ((size_t)1 << 20)
/* Every name of an accepted form is far shorter ("blobs/sha256/" + 64 hex = 77 bytes). */
#define MAX_NAME 128

#define MT_OCI_MANIFEST	   "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX	   "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST	   "application/vnd.docker.distribution.manifest.list.v2+json"
#define MT_OCI_CONFIG	   "application/vnd.oci.image.config.v1+json"
#define MT_LAYER_TAR	   "application/vnd.oci.image.layer.v1.tar"
#define MT_LAYER_GZIP	   "application/vnd.oci.image.layer.v1.tar+gzip"
#define MT_LAYER_ZSTD	   "application/vnd.oci.image.layer.v1.tar+zstd"

/* What an entry's name says it is; anything else is refused. */
enum form {
	FORM_BAD,
	FORM_DIR,	  /* "", "blobs", "blobs/sha256", "<hex>" (as directories only) */
	FORM_OCI_LAYOUT,  /* oci-layout */
	FORM_INDEX,	  /* index.json */
	FORM_MANIFEST,	  /* manifest.json (docker) */
	FORM_CONFIG,	  /* <hex>.json (docker) */
	FORM_BLOB,	  /* blobs/sha256/<hex> */
	FORM_LAYER,	  /* <hex>/layer.tar, <hex>.tar (docker) */
	FORM_LEGACY_META, /* repositories, <hex>/VERSION, <hex>/json: docker's v1 leftovers */
};

enum entry_kind {
	ENTRY_BLOB,    /* streamed to the sink */
	ENTRY_JSON,    /* kept in memory */
	ENTRY_IGNORED, /* read and dropped; remembered only to refuse duplicates */
	ENTRY_ALIAS,   /* docker's layer symlink, resolved by name at the end */
};

enum compression { COMP_NONE, COMP_GZIP, COMP_ZSTD };

struct entry {
	char *path; /* normalised: no "./" prefix, no trailing '/' */
	enum entry_kind kind;
	char digest[72]; /* BLOB: as the sink computed it; JSON: once sunk as a docker config */
	int64_t size;
	enum compression comp;
	char *data; /* JSON: the contents, NUL-terminated; ALIAS: the target path */
	size_t len;
	bool sunk;
};

struct importer {
	struct archive *a;
	const struct blob_sink *sink;
	struct import_limits lim;
	struct entry **entries; /* in archive order */
	size_t n_entries, cap_entries;
	size_t *slots; /* open-addressing table of entry index + 1, 0 = empty */
	size_t n_slots;
	int64_t total;	   /* bytes of regular files read so far */
	size_t json_total; /* bytes kept in memory */
	unsigned char *chunk;
	struct imported_image *images;
	size_t n_images, cap_images;
};

int archive_import_digest_valid(const char *s)
{
	if (!s || strncmp(s, "sha256:", 7) != 0)
		return 0;
	s += 7;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[64] == '\0';
}

static bool is_hex64(const char *s, size_t len)
{
	if (len != 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A name from the archive, safe to put in a message: printable, truncated. */
static const char *shown(const char *s, char out[96])
{
	size_t i = 0;
	for (; s && s[i] && i < 80; i++)
		out[i] = (s[i] > 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (s && s[i])
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
	return out;
}

/*
 * Checks that raw is a relative path without "."/".."/empty components and writes it without a
 * leading "./" (GNU tar's `-C dir .` adds one) nor, for a directory, the trailing '/'. The safety
 * checks come before the length check so that "../<long>" is reported as what it is.
 */
static int normalise_name(const char *raw, bool is_dir, char out[MAX_NAME], struct err *err)
{
	char s[96];
	if (!raw)
		return err_set(err, EINVAL, "entry with a name that cannot be read");
	if (raw[0] == '/')
		return err_set(err, EINVAL, "entry '%s': absolute path", shown(raw, s));
	const char *p = raw;
	if (p[0] == '.' && p[1] == '/')
		p += 2;
	else if (p[0] == '.' && p[1] == '\0' && is_dir)
		p += 1;
	size_t len = strlen(p);
	if (is_dir && len > 0 && p[len - 1] == '/')
		len--;
	/* "./" alone is the archive's root directory; otherwise each component is checked. */
	for (size_t at = 0; at <= len && (len > 0 || !is_dir);) {
		size_t end = at;
		while (end < len && p[end] != '/')
			end++;
		size_t cl = end - at;
		if (cl == 0)
			return err_set(err, EINVAL, "entry '%s': empty path component",
				       shown(raw, s));
		if ((cl == 1 && p[at] == '.') || (cl == 2 && p[at] == '.' && p[at + 1] == '.'))
			return err_set(err, EINVAL, "entry '%s': '.' or '..' component",
				       shown(raw, s));
		at = end + 1;
	}
	if (len >= MAX_NAME)
		return err_set(err, EINVAL, "entry '%s': unexpected name", shown(raw, s));
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

static enum form classify(const char *name, bool is_dir)
{
	size_t len = strlen(name);
	const char *slash = strchr(name, '/');
	if (is_dir) {
		if (len == 0 || !strcmp(name, "blobs") || !strcmp(name, "blobs/sha256") ||
		    is_hex64(name, len))
			return FORM_DIR;
		return FORM_BAD;
	}
	if (!strcmp(name, "oci-layout"))
		return FORM_OCI_LAYOUT;
	if (!strcmp(name, "index.json"))
		return FORM_INDEX;
	if (!strcmp(name, "manifest.json"))
		return FORM_MANIFEST;
	if (!strcmp(name, "repositories"))
		return FORM_LEGACY_META;
	if (!strncmp(name, "blobs/sha256/", 13) && is_hex64(name + 13, len - 13))
		return FORM_BLOB;
	if (!slash) {
		if (len == 69 && is_hex64(name, 64) && !strcmp(name + 64, ".json"))
			return FORM_CONFIG;
		if (len == 68 && is_hex64(name, 64) && !strcmp(name + 64, ".tar"))
			return FORM_LAYER;
		return FORM_BAD;
	}
	if (slash - name == 64 && is_hex64(name, 64)) {
		const char *leaf = slash + 1;
		if (!strcmp(leaf, "layer.tar"))
			return FORM_LAYER;
		if (!strcmp(leaf, "VERSION") || !strcmp(leaf, "json"))
			return FORM_LEGACY_META;
	}
	return FORM_BAD;
}

/* ---- the table of regular files seen, by name ---- */

static size_t name_hash(const char *s)
{
	size_t h = 14695981039346656037ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct entry *entry_find(const struct importer *im, const char *path)
{
	if (!im->n_slots)
		return NULL;
	for (size_t i = name_hash(path) & (im->n_slots - 1);; i = (i + 1) & (im->n_slots - 1)) {
		size_t v = im->slots[i];
		if (!v)
			return NULL;
		if (!strcmp(im->entries[v - 1]->path, path))
			return im->entries[v - 1];
	}
}

static void slot_insert(struct importer *im, size_t idx)
{
	size_t i = name_hash(im->entries[idx]->path) & (im->n_slots - 1);
	while (im->slots[i])
		i = (i + 1) & (im->n_slots - 1);
	im->slots[i] = idx + 1;
}

/* Adds a new entry (refusing a duplicate name); the importer owns it. */
static struct entry *entry_add(struct importer *im, const char *path, enum entry_kind kind,
			       struct err *err)
{
	char s[96];
	if (entry_find(im, path))
		return err_set(err, EINVAL, "entry '%s': duplicate", shown(path, s)), NULL;
	if (im->n_entries == im->cap_entries) {
		size_t ncap = im->cap_entries ? im->cap_entries * 2 : 64;
		struct entry **p = realloc(im->entries, ncap * sizeof *p);
		if (!p)
			return err_sys(err, ENOMEM, "entry table"), NULL;
		im->entries = p;
		im->cap_entries = ncap;
	}
	/* The table stays at most half full, so probing always ends. */
	if ((im->n_entries + 1) * 2 > im->n_slots) {
		size_t nslots = im->n_slots ? im->n_slots * 2 : 128;
		size_t *slots = calloc(nslots, sizeof *slots);
		if (!slots)
			return err_sys(err, ENOMEM, "entry table"), NULL;
		free(im->slots);
		im->slots = slots;
		im->n_slots = nslots;
		for (size_t i = 0; i < im->n_entries; i++)
			slot_insert(im, i);
	}
	struct entry *e = calloc(1, sizeof *e);
	if (!e || !(e->path = strdup(path))) {
		free(e);
		return err_sys(err, ENOMEM, "entry table"), NULL;
	}
	e->kind = kind;
	e->size = -1;
	im->entries[im->n_entries] = e;
	slot_insert(im, im->n_entries++);
	return e;
}

static void importer_cleanup(struct importer *im)
{
	for (size_t i = 0; i < im->n_entries; i++) {
		free(im->entries[i]->path);
		free(im->entries[i]->data);
		free(im->entries[i]);
	}
	free(im->entries);
	free(im->slots);
	free(im->chunk);
	free(im->images);
	if (im->a)
		archive_read_free(im->a);
}

/* ---- reading entries ---- */

static int archive_failure(struct importer *im, const char *what, struct err *err)
{
	int code = archive_errno(im->a);
	const char *msg = archive_error_string(im->a);
	/* libarchive reports a bad format as -1 or EILSEQ: the data is bad, not the system. */
	if (code <= 0 || code == EILSEQ)
		code = EBADMSG;
	return err_set(err, code, "%s: %s", what, msg ? msg : "unreadable archive");
}

static int check_total(struct importer *im, int64_t more, const char *name, struct err *err)
{
	char s[96];
	if (more > im->lim.max_total - im->total)
		return err_set(err, E2BIG, "entry '%s': archive holds more than %lld bytes",
			       shown(name, s), (long long)im->lim.max_total);
	return 0;
}

/* Streams the current entry's data to the sink and records the result in e. */
static int sink_entry(struct importer *im, struct archive_entry *ae, struct entry *e,
		      const char *expected, struct err *err)
{
	char s[96];
	const struct blob_sink *sink = im->sink;
	int64_t declared = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : -1;
	if (declared > im->lim.max_blob)
		return err_set(err, E2BIG, "entry '%s': %lld bytes, more than the %lld allowed",
			       shown(e->path, s), (long long)declared, (long long)im->lim.max_blob);
	if (declared > 0 && check_total(im, declared, e->path, err) < 0)
		return -1;
	if (sink->begin(sink->arg, expected, declared, err) < 0)
		return err_wrap(err, "entry '%s'", shown(e->path, s));

	unsigned char magic[4];
	size_t nmagic = 0;
	int64_t got = 0;
	for (;;) {
		la_ssize_t r = archive_read_data(im->a, im->chunk, CHUNK_SIZE);
		if (r == 0)
			break;
		if (r < 0) {
			sink->abort(sink->arg);
			return archive_failure(im, shown(e->path, s), err);
		}
		for (size_t i = 0; nmagic < sizeof magic && i < (size_t)r; i++)
			magic[nmagic++] = im->chunk[i];
		/* Checked on the bytes really read too: a sparse entry's size is not its data. */
		if (r > im->lim.max_blob - got || check_total(im, r, e->path, err) < 0) {
			sink->abort(sink->arg);
			if (r > im->lim.max_blob - got)
				return err_set(err, E2BIG,
					       "entry '%s': more than the %lld bytes allowed",
					       shown(e->path, s), (long long)im->lim.max_blob);
			return -1;
		}
		got += r;
		im->total += r;
		if (sink->write(sink->arg, im->chunk, (size_t)r, err) < 0) {
			sink->abort(sink->arg);
			return err_wrap(err, "entry '%s'", shown(e->path, s));
		}
	}
	if (declared >= 0 && got != declared) {
		sink->abort(sink->arg);
		return err_set(err, EBADMSG, "entry '%s': %lld bytes read, %lld declared",
			       shown(e->path, s), (long long)got, (long long)declared);
	}
	char digest[72] = "";
	int64_t size = -1;
	if (sink->commit(sink->arg, digest, &size, err) < 0)
		return err_wrap(err, "entry '%s'", shown(e->path, s));
	digest[sizeof digest - 1] = '\0';
	if (!archive_import_digest_valid(digest) || (expected && strcmp(digest, expected)) ||
	    size != got)
		return err_set(err, EBADMSG,
			       "entry '%s': the content store returned %s (%lld bytes)",
			       shown(e->path, s), shown(digest, (char[96]){0}), (long long)size);
	memcpy(e->digest, digest, sizeof digest);
	e->size = got;
	if (nmagic >= 2 && magic[0] == 0x1f && magic[1] == 0x8b)
		e->comp = COMP_GZIP;
	else if (nmagic >= 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f &&
		 magic[3] == 0xfd)
		e->comp = COMP_ZSTD;
	return 0;
}

/* Reads the current entry into memory, within max_json (and 16 * max_json in all). */
static int keep_entry(struct importer *im, struct archive_entry *ae, struct entry *e, bool drop,
		      struct err *err)
{
	char s[96];
	size_t room = im->lim.max_json;
	int64_t declared = archive_entry_size_is_set(ae) ? archive_entry_size(ae) : 0;
	if (declared > (int64_t)room)
		return err_set(err, E2BIG, "entry '%s': %lld bytes, more than the %zu allowed",
			       shown(e->path, s), (long long)declared, room);
	if (!drop && im->lim.max_json * 16 - im->json_total < room)
		room = im->lim.max_json * 16 - im->json_total;
	struct buf b;
	buf_init(&b, room);
	for (;;) {
		la_ssize_t r = archive_read_data(im->a, im->chunk, CHUNK_SIZE);
		if (r == 0)
			break;
		if (r < 0) {
			buf_free(&b);
			return archive_failure(im, shown(e->path, s), err);
		}
		if (check_total(im, r, e->path, err) < 0) {
			buf_free(&b);
			return -1;
		}
		if (buf_append(&b, im->chunk, (size_t)r, err) < 0) {
			buf_free(&b);
			return err_set(err, E2BIG,
				       "entry '%s': more than the %zu bytes allowed in memory",
				       shown(e->path, s), room);
		}
		im->total += r;
	}
	e->size = (int64_t)b.len;
	if (drop) {
		buf_free(&b);
		return 0;
	}
	im->json_total += b.len;
	e->data = buf_steal(&b, &e->len);
	if (!e->data)
		return err_sys(err, ENOMEM, "entry '%s'", shown(e->path, s));
	return 0;
}

/*
 * A symlink is never followed, but docker save writes "<id>/layer.tar -> ../<id2>/layer.tar" for
 * a layer it already wrote; that exact form is remembered as an alias looked up by name at the
 * end. Every other link is skipped.
 */
static int note_link(struct importer *im, const char *name, struct archive_entry *ae,
		     struct err *err)
{
	const char *target = archive_entry_symlink(ae);
	if (!target || archive_entry_filetype(ae) != AE_IFLNK ||
	    classify(name, false) != FORM_LAYER)
		return 0;
	if (strncmp(target, "../", 3) != 0 || strlen(target) != 3 + 64 + 10 ||
	    !is_hex64(target + 3, 64) || strcmp(target + 67, "/layer.tar") != 0)
		return 0;
	struct entry *e = entry_add(im, name, ENTRY_ALIAS, err);
	if (!e)
		return -1;
	e->data = strdup(target + 3);
	if (!e->data)
		return err_sys(err, ENOMEM, "entry table");
	return 0;
}

static int read_entry(struct importer *im, struct archive_entry *ae, struct err *err)
{
	char name[MAX_NAME], s[96];
	const char *raw = archive_entry_pathname(ae);
	mode_t type = archive_entry_filetype(ae);
	bool is_dir = type == AE_IFDIR;
	if (normalise_name(raw, is_dir, name, err) < 0)
		return -1;
	/* libarchive reports a hard link as a regular file with a link name; it has no data. */
	if (archive_entry_hardlink(ae) || (type != AE_IFREG && !is_dir))
		return note_link(im, name, ae, err);
	enum form form = classify(name, is_dir);
	if (form == FORM_BAD)
		return err_set(err, EINVAL, "entry '%s': unexpected %s name", shown(raw, s),
			       is_dir ? "directory" : "file");
	if (form == FORM_DIR)
		return 0;
	bool kept = form == FORM_OCI_LAYOUT || form == FORM_INDEX || form == FORM_MANIFEST ||
		    form == FORM_CONFIG;
	enum entry_kind kind = kept			  ? ENTRY_JSON
			       : form == FORM_LEGACY_META ? ENTRY_IGNORED
							  : ENTRY_BLOB;
	struct entry *e = entry_add(im, name, kind, err);
	if (!e)
		return -1;
	if (kind != ENTRY_BLOB)
		return keep_entry(im, ae, e, kind == ENTRY_IGNORED, err);
	char expected[72] = "sha256:";
	if (form == FORM_BLOB) /* classify() checked: 64 hex digits follow "blobs/sha256/" */
		memcpy(expected + 7, name + 13, 65);
	return sink_entry(im, ae, e, form == FORM_BLOB ? expected : NULL, err);
}

/* ---- the images ---- */

static int parse_json(const struct entry *e, json_t **out, struct err *err)
{
	json_error_t jerr;
	*out = json_loadb(e->data, e->len, JSON_REJECT_DUPLICATES, &jerr);
	if (!*out)
		return err_set(err, EBADMSG, "%s: malformed JSON at line %d: %s", e->path,
			       jerr.line, jerr.text);
	return 0;
}

static struct imported_image *image_add(struct importer *im, struct err *err)
{
	if (im->n_images == im->cap_images) {
		size_t ncap = im->cap_images ? im->cap_images * 2 : 4;
		struct imported_image *p = realloc(im->images, ncap * sizeof *p);
		if (!p)
			return err_sys(err, ENOMEM, "image list"), NULL;
		im->images = p;
		im->cap_images = ncap;
	}
	struct imported_image *img = &im->images[im->n_images++];
	memset(img, 0, sizeof *img);
	return img;
}

/* Image names go to containerd and to logs: printable ASCII without spaces, and they must fit. */
static int set_name(struct imported_image *img, const char *name, const char *where,
		    struct err *err)
{
	char s[96];
	size_t len = strlen(name);
	bool ok = len > 0 && len < sizeof img->name;
	for (size_t i = 0; ok && i < len; i++)
		ok = name[i] > 0x20 && name[i] < 0x7f;
	if (!ok)
		return err_set(err, EBADMSG, "%s: invalid image name '%s'", where, shown(name, s));
	memcpy(img->name, name, len + 1);
	return 0;
}

static bool known_target_type(const char *mt)
{
	return !strcmp(mt, MT_OCI_MANIFEST) || !strcmp(mt, MT_OCI_INDEX) ||
	       !strcmp(mt, MT_DOCKER_MANIFEST) || !strcmp(mt, MT_DOCKER_LIST);
}

static int finish_oci(struct importer *im, const struct entry *index, struct err *err)
{
	char s[96];
	const struct entry *layout = entry_find(im, "oci-layout");
	if (!layout || layout->kind != ENTRY_JSON)
		return err_set(err, EBADMSG,
			       "index.json without oci-layout: not an OCI image layout");
	json_auto_t *lj = NULL;
	if (parse_json(layout, &lj, err) < 0)
		return -1;
	const char *ver = json_string_value(json_object_get(lj, "imageLayoutVersion"));
	if (!ver || strcmp(ver, "1.0.0") != 0)
		return err_set(err, EBADMSG, "oci-layout: imageLayoutVersion is not \"1.0.0\"");

	json_auto_t *ij = NULL;
	if (parse_json(index, &ij, err) < 0)
		return -1;
	if (!json_is_object(ij) || json_integer_value(json_object_get(ij, "schemaVersion")) != 2)
		return err_set(err, EBADMSG, "index.json: not an index of schemaVersion 2");
	json_t *mans = json_object_get(ij, "manifests");
	if (!json_is_array(mans) || json_array_size(mans) == 0)
		return err_set(err, EBADMSG, "index.json: no manifests");

	size_t missing = 0;
	char first_missing[72] = "";
	size_t i;
	json_t *d;
	json_array_foreach(mans, i, d)
	{
		const char *mt = json_string_value(json_object_get(d, "mediaType"));
		const char *dg = json_string_value(json_object_get(d, "digest"));
		json_t *sz = json_object_get(d, "size");
		if (!mt || !known_target_type(mt))
			return err_set(err, EBADMSG, "index.json: manifests[%zu]: media type '%s'",
				       i, mt ? shown(mt, s) : "(none)");
		if (!archive_import_digest_valid(dg))
			return err_set(err, EBADMSG,
				       "index.json: manifests[%zu]: invalid digest '%s'", i,
				       dg ? shown(dg, s) : "(none)");
		if (!json_is_integer(sz) || json_integer_value(sz) < 0)
			return err_set(err, EBADMSG, "index.json: manifests[%zu]: invalid size", i);
		char blob[MAX_NAME];
		snprintf(blob, sizeof blob, "blobs/sha256/%s", dg + 7);
		const struct entry *e = entry_find(im, blob);
		if (!e || e->kind != ENTRY_BLOB) {
			if (!missing++)
				memcpy(first_missing, dg, strlen(dg) + 1);
			continue;
		}
		if (e->size != json_integer_value(sz))
			return err_set(err, EBADMSG,
				       "index.json: size %lld for %s, whose blob has %lld",
				       (long long)json_integer_value(sz), dg, (long long)e->size);
		struct imported_image *img = image_add(im, err);
		if (!img)
			return -1;
		memcpy(img->media_type, mt, strlen(mt) + 1);
		memcpy(img->digest, dg, strlen(dg) + 1);
		img->size = e->size;
		json_t *ann = json_object_get(d, "annotations");
		const char *name =
		    json_string_value(json_object_get(ann, "io.containerd.image.name"));
		const char *ref =
		    json_string_value(json_object_get(ann, "org.opencontainers.image.ref.name"));
		/* A bare tag ("latest") names nothing without the repository it was pulled from. */
		if (!name && ref && strpbrk(ref, "/:@"))
			name = ref;
		if (name && set_name(img, name, "index.json", err) < 0)
			return -1;
	}
	if (missing)
		return err_set(err, EBADMSG,
			       "index.json references %s%s, which is not in the archive",
			       first_missing, missing > 1 ? " (and other manifests)" : "");
	return 0;
}

/* Looks up a path named in manifest.json, following one docker layer alias. */
static const struct entry *docker_lookup(struct importer *im, const char *raw, struct err *err)
{
	char name[MAX_NAME], s[96];
	if (!raw)
		return err_set(err, EBADMSG, "manifest.json: a path is not a string"), NULL;
	if (normalise_name(raw, false, name, err) < 0)
		return err_wrap(err, "manifest.json"), NULL;
	const struct entry *e = entry_find(im, name);
	if (e && e->kind == ENTRY_ALIAS)
		e = entry_find(im, e->data);
	if (!e || e->kind == ENTRY_ALIAS || e->kind == ENTRY_IGNORED)
		return err_set(err, EBADMSG,
			       "manifest.json references '%s', which is not in the archive",
			       shown(raw, s)),
		       NULL;
	return e;
}

/* Sends a blob held in memory to the sink. */
static int sink_memory(struct importer *im, const char *what, const void *data, size_t len,
		       char digest[72], int64_t *size, struct err *err)
{
	const struct blob_sink *sink = im->sink;
	if (sink->begin(sink->arg, NULL, (int64_t)len, err) < 0)
		return err_wrap(err, "%s", what);
	if (sink->write(sink->arg, data, len, err) < 0) {
		sink->abort(sink->arg);
		return err_wrap(err, "%s", what);
	}
	*size = -1;
	if (sink->commit(sink->arg, digest, size, err) < 0)
		return err_wrap(err, "%s", what);
	digest[71] = '\0';
	if (!archive_import_digest_valid(digest) || *size != (int64_t)len)
		return err_set(err, EBADMSG, "%s: the content store returned an invalid digest",
			       what);
	return 0;
}

static int docker_image(struct importer *im, json_t *m, size_t idx, struct err *err)
{
	char s[96], what[160];
	if (!json_is_object(m))
		return err_set(err, EBADMSG, "manifest.json: entry %zu is not an object", idx);
	struct entry *cfg =
	    (struct entry *)docker_lookup(im, json_string_value(json_object_get(m, "Config")), err);
	if (!cfg)
		return -1;
	if (cfg->kind != ENTRY_JSON)
		return err_set(err, EBADMSG, "manifest.json: config '%s' is not a <hex>.json file",
			       shown(cfg->path, s));
	json_t *layers = json_object_get(m, "Layers");
	if (!json_is_array(layers))
		return err_set(err, EBADMSG, "manifest.json: entry %zu has no Layers", idx);

	json_auto_t *cj = NULL;
	if (parse_json(cfg, &cj, err) < 0)
		return -1;
	json_t *diff_ids = json_object_get(json_object_get(cj, "rootfs"), "diff_ids");
	if (!json_is_array(diff_ids))
		return err_set(err, EBADMSG, "%s: no rootfs.diff_ids", cfg->path);
	size_t i;
	json_t *v;
	json_array_foreach(diff_ids, i, v)
	{
		if (!archive_import_digest_valid(json_string_value(v)))
			return err_set(err, EBADMSG,
				       "%s: rootfs.diff_ids[%zu] is not a sha256 digest", cfg->path,
				       i);
	}
	if (json_array_size(diff_ids) != json_array_size(layers))
		return err_set(err, EBADMSG,
			       "%s: %zu rootfs.diff_ids for %zu layers in manifest.json", cfg->path,
			       json_array_size(diff_ids), json_array_size(layers));
	if (!cfg->sunk) {
		snprintf(what, sizeof what, "config '%s'", cfg->path);
		if (sink_memory(im, what, cfg->data, cfg->len, cfg->digest, &cfg->size, err) < 0)
			return -1;
		cfg->sunk = true;
	}

	json_auto_t *man =
	    json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
		      MT_OCI_MANIFEST, "config", "mediaType", MT_OCI_CONFIG, "digest", cfg->digest,
		      "size", (json_int_t)cfg->size, "layers");
	if (!man)
		return err_sys(err, ENOMEM, "synthesising a manifest");
	json_t *mlayers = json_object_get(man, "layers");
	json_array_foreach(layers, i, v)
	{
		const struct entry *l = docker_lookup(im, json_string_value(v), err);
		if (!l)
			return -1;
		if (l->kind != ENTRY_BLOB)
			return err_set(err, EBADMSG,
				       "manifest.json: layer '%s' is not a layer file",
				       shown(l->path, s));
		const char *mt = l->comp == COMP_GZIP	? MT_LAYER_GZIP
				 : l->comp == COMP_ZSTD ? MT_LAYER_ZSTD
							: MT_LAYER_TAR;
		if (json_array_append_new(mlayers,
					  json_pack("{s:s, s:s, s:I}", "mediaType", mt, "digest",
						    l->digest, "size", (json_int_t)l->size)) < 0)
			return err_sys(err, ENOMEM, "synthesising a manifest");
	}
	cleanup_free char *text = json_dumps(man, JSON_COMPACT);
	if (!text)
		return err_sys(err, ENOMEM, "synthesising a manifest");

	struct imported_image *img = image_add(im, err);
	if (!img)
		return -1;
	snprintf(what, sizeof what, "manifest for '%s'", cfg->path);
	if (sink_memory(im, what, text, strlen(text), img->digest, &img->size, err) < 0)
		return -1;
	memcpy(img->media_type, MT_OCI_MANIFEST, sizeof MT_OCI_MANIFEST);
	json_t *tags = json_object_get(m, "RepoTags");
	if (tags && !json_is_null(tags) && !json_is_array(tags))
		return err_set(err, EBADMSG, "manifest.json: entry %zu: RepoTags is not a list",
			       idx);
	json_t *tag = json_array_get(tags, 0);
	if (tag && !json_is_string(tag))
		return err_set(err, EBADMSG,
			       "manifest.json: entry %zu: RepoTags[0] is not a string", idx);
	if (tag && set_name(img, json_string_value(tag), "manifest.json", err) < 0)
		return -1;
	return 0;
}

static int finish_docker(struct importer *im, const struct entry *manifest, struct err *err)
{
	json_auto_t *mj = NULL;
	if (parse_json(manifest, &mj, err) < 0)
		return -1;
	if (!json_is_array(mj) || json_array_size(mj) == 0)
		return err_set(err, EBADMSG, "manifest.json: not a non-empty list");
	size_t i;
	json_t *m;
	json_array_foreach(mj, i, m)
	{
		if (docker_image(im, m, i, err) < 0)
			return -1;
	}
	return 0;
}

/* Enables the decompressors libarchive has built in; the others would run external programs. */
static int enable_formats(struct archive *a)
{
	if (archive_read_support_format_tar(a) != ARCHIVE_OK)
		return -1;
	if (archive_zlib_version() && archive_read_support_filter_gzip(a) != ARCHIVE_OK)
		return -1;
	if (archive_liblzma_version() && (archive_read_support_filter_xz(a) != ARCHIVE_OK ||
					  archive_read_support_filter_lzma(a) != ARCHIVE_OK))
		return -1;
	if (archive_libzstd_version() && archive_read_support_filter_zstd(a) != ARCHIVE_OK)
		return -1;
	if (archive_bzlib_version() && archive_read_support_filter_bzip2(a) != ARCHIVE_OK)
		return -1;
	return 0;
}

int archive_import(const char *path, const struct blob_sink *sink, const struct import_limits *lim,
		   struct imported_image **out, size_t *n, struct err *err)
{
	__attribute__((cleanup(importer_cleanup))) struct importer im = {.sink = sink};
	if (lim)
		im.lim = *lim;
	if (im.lim.max_total <= 0)
		im.lim.max_total = IMPORT_DEFAULT_MAX_TOTAL;
	if (im.lim.max_blob <= 0)
		im.lim.max_blob = IMPORT_DEFAULT_MAX_BLOB;
	if (!im.lim.max_json)
		im.lim.max_json = IMPORT_DEFAULT_MAX_JSON;
	if (!im.lim.max_entries)
		im.lim.max_entries = IMPORT_DEFAULT_MAX_ENTRIES;
	if (im.lim.max_json > SIZE_MAX / 16)
		im.lim.max_json = SIZE_MAX / 16;

	im.chunk = malloc(CHUNK_SIZE);
	im.a = archive_read_new();
	if (!im.chunk || !im.a)
		return err_sys(err, ENOMEM, "%s", path);
	if (enable_formats(im.a) < 0)
		return archive_failure(&im, path, err);
	if (archive_read_open_filename(im.a, path, 64 * 1024) != ARCHIVE_OK)
		return archive_failure(&im, path, err);

	size_t count = 0;
	for (;;) {
		struct archive_entry *ae;
		int r = archive_read_next_header(im.a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			return archive_failure(&im, path, err);
		if (++count > im.lim.max_entries)
			return err_set(err, E2BIG, "%s: more than %zu entries", path,
				       im.lim.max_entries);
		if (read_entry(&im, ae, err) < 0)
			return err_wrap(err, "%s", path);
	}

	const struct entry *index = entry_find(&im, "index.json");
	const struct entry *manifest = entry_find(&im, "manifest.json");
	int r;
	if (index)
		r = finish_oci(&im, index, err);
	else if (manifest)
		r = finish_docker(&im, manifest, err);
	else
		r = err_set(err, EBADMSG,
			    "neither index.json nor manifest.json: not an OCI layout nor a "
			    "docker-archive");
	if (r < 0)
		return err_wrap(err, "%s", path);
	*out = steal_pointer(&im.images);
	*n = im.n_images;
	return 0;
}
