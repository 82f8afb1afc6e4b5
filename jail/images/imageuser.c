#include "imageuser.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "content.h"
#include "pull.h"
#include "imagepasswd.h"
#include "unpack.h"

/* Compressed bytes asked from the content store at a time. */
#define READ_CHUNK ((size_t)256 * 1024)
/* A layer is a tar the pull already accepted; these only bound a hostile one's cost. */
#define MAX_LAYER_ENTRIES ((int64_t)4 * 1000 * 1000)
#define MAX_LAYER_BYTES	  ((int64_t)64 << 30) /* uncompressed */

/* ---- layers ---- */

/* What a layer says about etc/passwd. */
enum layer_verdict {
	LAYER_SILENT, /* nothing: look in the layer below */
	LAYER_FOUND,  /* its own etc/passwd (read into the scan's buffer) */
	LAYER_HIDES,  /* no etc/passwd of its own, but hides the lower layers' one */
};

struct layer_scan {
	struct content_reader *r;
	unsigned char *chunk; /* READ_CHUNK bytes */
	char *passwd;	      /* IMAGE_USER_PASSWD_MAX + 1 bytes */
	size_t passwd_len;
	char hidden_by[64]; /* why the lower layers' file is hidden */
	char *name;	    /* clean_name's buffer */
	size_t name_cap;
	struct err read_err;
	bool read_failed;
};

static la_ssize_t scan_read(struct archive *a, void *arg, const void **buf)
{
	struct layer_scan *ls = arg;
	ssize_t n = content_reader_read(ls->r, ls->chunk, READ_CHUNK);
	if (n < 0) {
		ls->read_err = *content_reader_err(ls->r);
		ls->read_failed = true;
		archive_set_error(a, EIO, "content store read failed");
		return -1;
	}
	*buf = ls->chunk;
	return n;
}

/*
 * NAME cleaned as containerd's applier does (filepath.Clean("/" + name), without the leading
 * '/'): empty and "." components dropped, ".." pops (never above the root). The result lives in
 * ls->name until the next call; NULL when out of memory.
 */
static const char *clean_name(struct layer_scan *ls, const char *name)
{
	size_t need = strlen(name) + 1; /* cleaning never lengthens a name */
	if (need > ls->name_cap) {
		char *p = realloc(ls->name, need);
		if (!p)
			return NULL;
		ls->name = p;
		ls->name_cap = need;
	}
	char *out = ls->name;
	size_t o = 0;
	for (const char *p = name; *p;) {
		const char *e = strchr(p, '/');
		size_t cl = e ? (size_t)(e - p) : strlen(p);
		if (cl == 0 || (cl == 1 && p[0] == '.')) {
			/* nothing */
		} else if (cl == 2 && p[0] == '.' && p[1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			if (o > 0)
				out[o++] = '/';
			memcpy(out + o, p, cl);
			o += cl;
		}
		p += cl + (e ? 1 : 0);
	}
	out[o] = '\0';
	return out;
}

/* Reads the etc/passwd entry into ls->passwd: 0, -1 (err filled), -2 (the archive failed). */
static int read_passwd_entry(struct archive *a, struct archive_entry *ae, struct layer_scan *ls,
			     struct err *err)
{
	if (archive_entry_hardlink(ae))
		return err_set(err, EBADMSG, "/etc/passwd is not a regular file (a hard link)");
	mode_t type = archive_entry_filetype(ae);
	if (type != AE_IFREG)
		return err_set(err, EBADMSG, "/etc/passwd is not a regular file (%s)",
			       type == AE_IFLNK	  ? "a symlink"
			       : type == AE_IFDIR ? "a directory"
						  : "a special file");
	if (archive_entry_size_is_set(ae) && archive_entry_size(ae) > IMAGE_USER_PASSWD_MAX)
		return err_set(err, EBADMSG, "/etc/passwd is %lld bytes, more than %d",
			       (long long)archive_entry_size(ae), IMAGE_USER_PASSWD_MAX);
	ls->passwd_len = 0;
	for (;;) {
		size_t room = IMAGE_USER_PASSWD_MAX + 1 - ls->passwd_len;
		la_ssize_t n = archive_read_data(a, ls->passwd + ls->passwd_len, room);
		if (n < 0)
			return -2; /* the caller reports the archive's error */
		if (n == 0)
			break;
		ls->passwd_len += (size_t)n;
		if (ls->passwd_len > IMAGE_USER_PASSWD_MAX)
			return err_set(err, EBADMSG, "/etc/passwd is more than %d bytes",
				       IMAGE_USER_PASSWD_MAX);
	}
	return 0;
}

/* What hides the lower layers' etc/passwd when a layer holds NAME (cleaned); NULL if nothing. */
static const char *hides_passwd(const char *name, mode_t type)
{
	if (!strcmp(name, "etc/.wh.passwd"))
		return "a whiteout of /etc/passwd";
	if (!strcmp(name, "etc/.wh..wh..opq"))
		return "an opaque /etc";
	if (!strcmp(name, ".wh..wh..opq"))
		return "an opaque /";
	if (!strcmp(name, ".wh.etc"))
		return "a whiteout of /etc";
	if (!strcmp(name, "etc") && type != AE_IFDIR)
		return type == AE_IFLNK ? "/etc as a symlink (not followed)"
					: "/etc that is not a directory";
	return NULL;
}

/* Enables the decompressors libarchive has built in (gzip, zstd); plain tar needs none. The
 * others would run external programs. */
static int enable_formats(struct archive *a)
{
	if (archive_read_support_format_tar(a) != ARCHIVE_OK)
		return -1;
	if (archive_zlib_version() && archive_read_support_filter_gzip(a) != ARCHIVE_OK)
		return -1;
	if (archive_libzstd_version() && archive_read_support_filter_zstd(a) != ARCHIVE_OK)
		return -1;
	return 0;
}

static int scan_layer(struct ctr_client *c, const struct img_desc *layer, struct layer_scan *ls,
		      enum layer_verdict *verdict, struct err *err)
{
	*verdict = LAYER_SILENT;
	ls->hidden_by[0] = '\0';
	ls->read_failed = false;
	ls->r = content_reader_open(c, layer->digest, err);
	if (!ls->r)
		return -1;
	int rc = -1;
	struct archive *a = archive_read_new();
	if (!a) {
		err_set(err, ENOMEM, "out of memory");
		goto out;
	}
	if (enable_formats(a) < 0 || archive_read_open(a, ls, NULL, scan_read, NULL) != ARCHIVE_OK)
		goto archive_failed;
	for (int64_t count = 0;; count++) {
		struct archive_entry *ae;
		int r = archive_read_next_header(a, &ae);
		if (r == ARCHIVE_EOF)
			break;
		if (r != ARCHIVE_OK && r != ARCHIVE_WARN)
			goto archive_failed;
		if (count >= MAX_LAYER_ENTRIES || archive_filter_bytes(a, 0) > MAX_LAYER_BYTES) {
			err_set(err, EFBIG, "layer %s: too many entries or bytes to scan",
				layer->digest);
			goto out;
		}
		const char *raw = archive_entry_pathname(ae);
		if (!raw)
			continue;
		const char *name = clean_name(ls, raw);
		if (!name) {
			err_set(err, ENOMEM, "out of memory");
			goto out;
		}
		mode_t type = archive_entry_filetype(ae);
		if (!strcmp(name, "etc/passwd")) {
			int got = read_passwd_entry(a, ae, ls, err);
			if (got == -1)
				goto out;
			if (got < 0)
				goto archive_failed;
			*verdict = LAYER_FOUND;
			rc = 0;
			goto out; /* the rest of the layer does not matter */
		}
		const char *why = hides_passwd(name, type);
		if (why && !ls->hidden_by[0])
			snprintf(ls->hidden_by, sizeof ls->hidden_by, "%s", why);
	}
	*verdict = ls->hidden_by[0] ? LAYER_HIDES : LAYER_SILENT;
	rc = 0;
	goto out;

archive_failed:
	if (ls->read_failed) {
		if (err)
			*err = ls->read_err;
		err_wrap(err, "reading layer %s", layer->digest);
	} else {
		err_set(err, EBADMSG, "layer %s: %s", layer->digest,
			a && archive_error_string(a) ? archive_error_string(a)
						     : "not a readable tar");
	}
out:
	if (a)
		archive_read_free(a);
	content_reader_close(ls->r);
	ls->r = NULL;
	return rc;
}

/* ---- the image ---- */

static void layer_scan_free(struct layer_scan *ls)
{
	free(ls->chunk);
	free(ls->passwd);
	free(ls->name);
}

/* Reads image NAME's manifest (the host platform's one for an index) into *m. */
static int load_manifest(struct ctr_client *c, const char *image, struct img_manifest *m,
			 struct err *err)
{
	char digest[72];
	int have = image_target(c, image, digest, err);
	if (have < 0)
		return -1;
	if (have == 0 || !digest[0])
		return err_set(err, ENOENT, "not in containerd");
	cleanup_free uint8_t *body = NULL;
	size_t len = 0;
	if (content_read_all(c, digest, IMG_MAX_MANIFEST, &body, &len, err) < 0)
		return -1;
	/* image_target gives no media type: the body says whether it is an index. */
	json_t *j = json_loadb((const char *)body, len, 0, NULL);
	if (!j)
		return err_set(err, EBADMSG, "manifest %s is not JSON", digest);
	const char *mt = json_string_value(json_object_get(j, "mediaType"));
	bool is_index =
	    mt ? img_media_kind(mt) == 2 : json_is_array(json_object_get(j, "manifests"));
	json_decref(j);
	if (is_index) {
		struct img_desc pick;
		if (img_index_select(body, len, "linux", img_host_arch(), NULL, &pick, err) < 0)
			return -1;
		free(body);
		body = NULL;
		if (content_read_all(c, pick.digest, IMG_MAX_MANIFEST, &body, &len, err) < 0)
			return -1;
	}
	return img_manifest_parse(body, len, m, err);
}

int image_user_lookup(struct ctr_client *c, const char *image, const char *user,
		      struct image_user *out, struct err *err)
{
	char s[100], si[100];
	memset(out, 0, sizeof *out);
	if (!image_user_name_ok(user))
		return err_set(err, EINVAL,
			       "'%s' is not a valid user name ([a-z_][a-z0-9_-]{0,31})",
			       image_user_shown(user, s));
	image_user_shown(image, si);
	cleanup_free struct img_manifest *m = calloc(1, sizeof *m);
	__attribute__((cleanup(layer_scan_free))) struct layer_scan ls = {
	    .chunk = malloc(READ_CHUNK), .passwd = malloc(IMAGE_USER_PASSWD_MAX + 1)};
	if (!m || !ls.chunk || !ls.passwd)
		return err_set(err, ENOMEM, "out of memory");
	if (load_manifest(c, image, m, err) < 0)
		return err_wrap(err, "image %s", si);

	for (size_t i = m->n; i-- > 0;) {
		enum layer_verdict v;
		if (scan_layer(c, &m->layers[i], &ls, &v, err) < 0)
			return err_wrap(err, "image %s: looking for /etc/passwd", si);
		if (v == LAYER_HIDES)
			return err_set(
			    err, ENOENT,
			    "user %s does not exist in image %s: no /etc/passwd (layer %zu "
			    "has %s)",
			    user, si, i + 1, ls.hidden_by);
		if (v == LAYER_SILENT)
			continue;
		if (passwd_lookup(ls.passwd, ls.passwd_len, user, out, err) < 0) {
			if (err && err->code == ENOENT)
				return err_set(err, ENOENT, "user %s does not exist in image %s",
					       user, si);
			return err_wrap(err, "image %s", si);
		}
		return 0;
	}
	return err_set(err, ENOENT, "user %s does not exist in image %s: no /etc/passwd", user, si);
}
