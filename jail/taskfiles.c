#include "taskfiles.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "filename.h"

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t sl = strlen(suffix);
	return len >= sl && memcmp(s + len - sl, suffix, sl) == 0;
}

static int decode_base64(const char *in, size_t len, char **out, size_t *outlen, struct err *err)
{
	/* EVP_Decode* tolerates the line breaks some encoders insert. */
	unsigned char *buf = malloc(len / 4 * 3 + 4);
	if (!buf)
		return err_sys(err, ENOMEM, "decoding base64");
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	if (!ctx) {
		free(buf);
		return err_sys(err, ENOMEM, "decoding base64");
	}
	EVP_DecodeInit(ctx);
	size_t total = 0;
	int ok = 1;
	/* EVP_DecodeUpdate takes an int length: feed in slices. */
	for (size_t off = 0; off < len && ok;) {
		int chunk = (int)(len - off > (1u << 30) ? (1u << 30) : len - off);
		int n = 0;
		if (EVP_DecodeUpdate(ctx, buf + total, &n, (const unsigned char *)in + off, chunk) <
		    0)
			ok = 0;
		total += (size_t)n;
		off += (size_t)chunk;
	}
	int n = 0;
	if (ok && EVP_DecodeFinal(ctx, buf + total, &n) < 0)
		ok = 0;
	total += (size_t)n;
	EVP_ENCODE_CTX_free(ctx);
	if (!ok) {
		free(buf);
		return err_set(err, EINVAL, "Bad file content: invalid base64");
	}
	*out = (char *)buf;
	*outlen = total;
	return 0;
}

/* Scripts edited on Windows must still run: if there is no LF at all, CR
 * becomes LF; otherwise every CR is dropped (the reference's rule). */
static char *normalise_script(const char *in, size_t len, size_t *outlen)
{
	if (!memchr(in, '\r', len))
		return NULL;
	char *o = malloc(len ? len : 1);
	if (!o)
		return NULL;
	bool has_lf = memchr(in, '\n', len) != NULL;
	size_t k = 0;
	for (size_t i = 0; i < len; i++) {
		if (in[i] != '\r')
			o[k++] = in[i];
		else if (!has_lf)
			o[k++] = '\n';
	}
	*outlen = k;
	return o;
}

static int add_file(struct task_files *out, const char *key, json_t *value, json_t *encodings,
		    struct err *err)
{
	const char *norm;
	size_t normlen;
	if (filename_check(key, strlen(key), &norm, &normlen, err) < 0)
		return -1;
	if (!json_is_string(value))
		return err_set(err, EINVAL, "Bad file content: not a string");
	const char *data = json_string_value(value);
	size_t len = json_string_length(value);

	long long enc = 0;
	json_t *ev = encodings ? json_object_get(encodings, key) : NULL;
	if (ev && !json_is_null(ev) && rpc_json_to_int(ev, &enc) < 0)
		return err_set(err, EINVAL, "Bad fileencoding value");

	struct task_file f = {0};
	if (enc == 1) {
		if (decode_base64(data, len, &f.owned_data, &f.len, err) < 0)
			return -1;
		f.data = f.owned_data;
		if (ends_with(norm, normlen, ".b64") && normlen > 4)
			normlen -= 4;
	} else {
		f.data = data;
		f.len = len;
	}
	f.name = strndup(norm, normlen);
	if (!f.name) {
		free(f.owned_data);
		return err_sys(err, ENOMEM, "copying file name");
	}
	if (ends_with(f.name, normlen, ".sh")) {
		size_t nl;
		char *n = normalise_script(f.data, f.len, &nl);
		if (n) {
			free(f.owned_data);
			f.owned_data = n;
			f.data = n;
			f.len = nl;
		}
		f.mode = 0700;
	} else {
		f.mode = 0600;
	}
	/* The same name twice after normalisation ("/a" and "a"): last wins. */
	for (size_t i = 0; i < out->n; i++) {
		if (strcmp(out->v[i].name, f.name) == 0) {
			out->total_bytes -= out->v[i].len;
			free(out->v[i].name);
			free(out->v[i].owned_data);
			out->v[i] = f;
			out->total_bytes += f.len;
			return 0;
		}
	}
	out->v[out->n++] = f;
	out->total_bytes += f.len;
	return 0;
}

int taskfiles_from_request(const struct rpc_request *req, struct task_files *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	json_t *files = NULL, *encodings = NULL, *todelete = NULL;
	int r = rpc_get_map(req, "files", &files, err);
	if (r < 0)
		return -1;
	if (r == 0)
		return err_set(err, EINVAL, "missing files");
	if (rpc_get_map(req, "fileencoding", &encodings, err) < 0 ||
	    rpc_get_map(req, "filestodelete", &todelete, err) < 0)
		return -1;

	size_t n = json_object_size(files);
	out->v = calloc(n ? n : 1, sizeof *out->v);
	if (!out->v)
		return err_sys(err, ENOMEM, "allocating file list");
	out->keep = json_incref(req->params);

	const char *key;
	json_t *value;
	json_object_foreach(files, key, value)
	{
		if (add_file(out, key, value, encodings, err) < 0) {
			taskfiles_free(out);
			return -1;
		}
	}
	if (todelete) {
		json_object_foreach(todelete, key, value)
		{
			/* Only names sent in this request count; the names are
			 * checked like file names all the same. */
			const char *norm;
			size_t normlen;
			if (filename_check(key, strlen(key), &norm, &normlen, err) < 0) {
				taskfiles_free(out);
				return -1;
			}
			for (size_t i = 0; i < out->n; i++) {
				struct task_file *f = &out->v[i];
				/* Exact names only: "x.b64" in filestodelete must not
				 * remove the decoded "x" (it is listed for old jails,
				 * whose scripts decode and then delete the .b64). */
				if (strlen(f->name) == normlen &&
				    memcmp(f->name, norm, normlen) == 0)
					f->delete_after_compile = true;
			}
		}
	}
	return 0;
}

const struct task_file *taskfiles_find(const struct task_files *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++)
		if (strcmp(f->v[i].name, name) == 0)
			return &f->v[i];
	return NULL;
}

bool taskfiles_remove(struct task_files *f, const char *name)
{
	for (size_t i = 0; i < f->n; i++) {
		if (strcmp(f->v[i].name, name) != 0)
			continue;
		f->total_bytes -= f->v[i].len;
		free(f->v[i].name);
		free(f->v[i].owned_data);
		memmove(&f->v[i], &f->v[i + 1], (f->n - i - 1) * sizeof f->v[i]);
		f->n--;
		return true;
	}
	return false;
}

void taskfiles_free(struct task_files *f)
{
	for (size_t i = 0; i < f->n; i++) {
		free(f->v[i].name);
		free(f->v[i].owned_data);
	}
	free(f->v);
	json_decref(f->keep);
	memset(f, 0, sizeof *f);
}
