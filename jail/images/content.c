/*
 * content.c - see content.h.
 */
#include "content.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "github.com/containerd/containerd/api/services/content/v1/content.pb-c.h"
#include "google/protobuf/empty.pb-c.h"
#include "google/protobuf/field_mask.pb-c.h"

#define SVC	   "/containerd.services.content.v1.Content/"
#define CHUNK	   (1024 * 1024)
#define MAX_LABELS 64

typedef Containerd__Services__Content__V1__WriteContentRequest WriteReq;
typedef Containerd__Services__Content__V1__WriteContentRequest__LabelsEntry WriteLabel;
typedef Containerd__Services__Content__V1__WriteContentResponse WriteResp;

static int status_err(struct err *err, const struct ctr_status *st, const char *what)
{
	return err_set(err, ctr_code_errno(st->code), "%s: %s: %s", what, ctr_code_name(st->code),
		       st->details);
}

int content_info(struct ctr_client *c, const char *lease, const char *digest, int64_t *size,
		 struct err *err)
{
	Containerd__Services__Content__V1__InfoRequest req =
	    CONTAINERD__SERVICES__CONTENT__V1__INFO_REQUEST__INIT;
	req.digest = (char *)digest;
	struct ctr_status st;
	ProtobufCMessage *rep = NULL;
	if (ctr_call_sync_lease(c, lease, SVC "Info", &req.base,
				&containerd__services__content__v1__info_response__descriptor,
				CONTENT_CALL_MS, &st, &rep, err) < 0)
		return -1;
	if (st.code == CTR_NOT_FOUND)
		return 0;
	if (st.code != CTR_OK)
		return status_err(err, &st, "content info");
	Containerd__Services__Content__V1__InfoResponse *r = (void *)rep;
	if (size)
		*size = r->info ? r->info->size : 0;
	ctr_reply_free(rep);
	return 1;
}

int content_set_labels(struct ctr_client *c, const char *lease, const char *digest,
		       const char *const *kv, struct err *err)
{
	Containerd__Services__Content__V1__Info__LabelsEntry ents[MAX_LABELS], *pents[MAX_LABELS];
	char *paths[MAX_LABELS];
	char pathbuf[MAX_LABELS][160];
	size_t n = 0;
	for (; kv && kv[2 * n] && n < MAX_LABELS; n++) {
		Containerd__Services__Content__V1__Info__LabelsEntry e =
		    CONTAINERD__SERVICES__CONTENT__V1__INFO__LABELS_ENTRY__INIT;
		e.key = (char *)kv[2 * n];
		e.value = (char *)kv[2 * n + 1];
		ents[n] = e;
		pents[n] = &ents[n];
		snprintf(pathbuf[n], sizeof pathbuf[n], "labels.%s", kv[2 * n]);
		paths[n] = pathbuf[n];
	}
	Containerd__Services__Content__V1__Info info =
	    CONTAINERD__SERVICES__CONTENT__V1__INFO__INIT;
	info.digest = (char *)digest;
	info.n_labels = n;
	info.labels = pents;
	Google__Protobuf__FieldMask mask = GOOGLE__PROTOBUF__FIELD_MASK__INIT;
	mask.n_paths = n;
	mask.paths = paths;
	Containerd__Services__Content__V1__UpdateRequest req =
	    CONTAINERD__SERVICES__CONTENT__V1__UPDATE_REQUEST__INIT;
	req.info = &info;
	req.update_mask = &mask;
	struct ctr_status st;
	if (ctr_call_sync_lease(c, lease, SVC "Update", &req.base,
				&containerd__services__content__v1__update_response__descriptor,
				CONTENT_CALL_MS, &st, NULL, err) < 0)
		return -1;
	if (st.code != CTR_OK)
		return status_err(err, &st, "labelling content");
	return 0;
}

/* ---- reading ---- */

struct content_reader {
	struct ctr_stream *s;
	Containerd__Services__Content__V1__ReadContentResponse *msg; /* current message */
	size_t pos;
	bool eof;
	struct err err;
};

struct content_reader *content_reader_open(struct ctr_client *c, const char *digest,
					   struct err *err)
{
	struct content_reader *r = calloc(1, sizeof *r);
	if (!r) {
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	r->s = ctr_stream_open(c, NULL, SVC "Read", CONTENT_STREAM_MS, err);
	if (!r->s) {
		free(r);
		return NULL;
	}
	Containerd__Services__Content__V1__ReadContentRequest req =
	    CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
	req.digest = (char *)digest;
	if (ctr_stream_send(r->s, &req.base, err) < 0 || ctr_stream_close_send(r->s, err) < 0) {
		content_reader_close(r);
		return NULL;
	}
	return r;
}

ssize_t content_reader_read(struct content_reader *r, void *buf, size_t len)
{
	while (!r->eof && (!r->msg || r->pos == r->msg->data.len)) {
		if (r->msg)
			ctr_reply_free(&r->msg->base);
		r->msg = NULL;
		r->pos = 0;
		ProtobufCMessage *m = NULL;
		int got = ctr_stream_recv(
		    r->s, &containerd__services__content__v1__read_content_response__descriptor, &m,
		    &r->err);
		if (got < 0)
			return -1;
		if (got == 0)
			r->eof = true;
		else
			r->msg = (void *)m;
	}
	if (r->eof)
		return 0;
	size_t n = r->msg->data.len - r->pos;
	if (n > len)
		n = len;
	memcpy(buf, r->msg->data.data + r->pos, n);
	r->pos += n;
	return (ssize_t)n;
}

const struct err *content_reader_err(const struct content_reader *r)
{
	return &r->err;
}

void content_reader_close(struct content_reader *r)
{
	if (!r)
		return;
	if (r->msg)
		ctr_reply_free(&r->msg->base);
	ctr_stream_close(r->s);
	free(r);
}

int content_read_all(struct ctr_client *c, const char *digest, size_t max, uint8_t **out,
		     size_t *len, struct err *err)
{
	*out = NULL;
	*len = 0;
	int64_t size = 0;
	int have = content_info(c, NULL, digest, &size, err);
	if (have < 0)
		return -1;
	if (have == 0)
		return err_set(err, ENOENT, "blob %s is not in the content store", digest);
	if (size < 0 || (uint64_t)size > max)
		return err_set(err, EFBIG, "blob %s is %lld bytes, more than %zu", digest,
			       (long long)size, max);
	uint8_t *b = malloc((size_t)size + 1);
	if (!b)
		return err_set(err, ENOMEM, "out of memory");
	struct content_reader *r = content_reader_open(c, digest, err);
	if (!r) {
		free(b);
		return -1;
	}
	size_t got = 0;
	for (;;) {
		uint8_t tmp[16384];
		ssize_t n = content_reader_read(r, tmp, sizeof tmp);
		if (n < 0) {
			if (err)
				*err = r->err;
			content_reader_close(r);
			free(b);
			return -1;
		}
		if (n == 0)
			break;
		if (got + (size_t)n > (size_t)size) {
			content_reader_close(r);
			free(b);
			return err_set(err, EBADMSG, "blob %s is longer than its recorded size",
				       digest);
		}
		memcpy(b + got, tmp, (size_t)n);
		got += (size_t)n;
	}
	content_reader_close(r);
	b[got] = '\0';
	*out = b;
	*len = got;
	return 0;
}

/* ---- writing ---- */

struct content_writer {
	struct ctr_client *c;
	char *lease;
	char *prefix;
	unsigned seq;
	/* the blob in progress */
	bool active, skip; /* skip: already in the store, data is only hashed */
	struct ctr_stream *s;
	char ref[200];
	char expected[72];
	int64_t total; /* announced size or -1 */
	int64_t offset;
	const char *const *labels;
	EVP_MD_CTX *md;
	uint8_t *buf;
	size_t buflen;
	int64_t sent;
};

struct content_writer *content_writer_new(struct ctr_client *c, const char *lease,
					  const char *ref_prefix, struct err *err)
{
	struct content_writer *w = calloc(1, sizeof *w);
	if (!w || !(w->buf = malloc(CHUNK)) || !(w->md = EVP_MD_CTX_new()) ||
	    !(w->prefix = strdup(ref_prefix ? ref_prefix : "vplcell")) ||
	    (lease && !(w->lease = strdup(lease)))) {
		content_writer_free(w);
		err_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	w->c = c;
	return w;
}

void content_writer_free(struct content_writer *w)
{
	if (!w)
		return;
	content_writer_abort(w);
	EVP_MD_CTX_free(w->md);
	free(w->buf);
	free(w->prefix);
	free(w->lease);
	free(w);
}

int64_t content_writer_sent(const struct content_writer *w)
{
	return w->sent;
}

static bool digest_ok(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) != 0 || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

/* Sends one WRITE (or COMMIT) message with the buffered data and reads its answer. */
static int send_chunk(struct content_writer *w, bool commit, const char *commit_digest,
		      struct err *err)
{
	WriteLabel ents[MAX_LABELS], *pents[MAX_LABELS];
	WriteReq req = CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__INIT;
	req.action = commit ? CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__COMMIT
			    : CONTAINERD__SERVICES__CONTENT__V1__WRITE_ACTION__WRITE;
	req.ref = w->ref;
	req.offset = w->offset;
	req.data.data = w->buf;
	req.data.len = w->buflen;
	if (commit) {
		req.total = w->offset + (int64_t)w->buflen;
		req.expected = (char *)commit_digest;
		size_t n = 0;
		for (; w->labels && w->labels[2 * n] && n < MAX_LABELS; n++) {
			WriteLabel e =
			    CONTAINERD__SERVICES__CONTENT__V1__WRITE_CONTENT_REQUEST__LABELS_ENTRY__INIT;
			e.key = (char *)w->labels[2 * n];
			e.value = (char *)w->labels[2 * n + 1];
			ents[n] = e;
			pents[n] = &ents[n];
		}
		req.n_labels = n;
		req.labels = pents;
	} else if (w->total >= 0) {
		req.total = w->total;
		req.expected = w->expected[0] ? w->expected : (char *)protobuf_c_empty_string;
	}
	if (ctr_stream_send(w->s, &req.base, err) < 0)
		return -1;
	ProtobufCMessage *m = NULL;
	int got = ctr_stream_recv(
	    w->s, &containerd__services__content__v1__write_content_response__descriptor, &m, err);
	if (got < 0)
		return -1;
	if (got == 0)
		return err_set(err, EPIPE, "content write %s: containerd ended the stream early",
			       w->expected[0] ? w->expected : "(new blob)");
	WriteResp *r = (void *)m;
	int64_t want = w->offset + (int64_t)w->buflen;
	int64_t at = r->offset;
	ctr_reply_free(m);
	if (at != want)
		return err_set(err, EIO, "content write: containerd is at offset %lld, not %lld",
			       (long long)at, (long long)want);
	w->sent += (int64_t)w->buflen;
	w->offset = want;
	w->buflen = 0;
	return 0;
}

int content_writer_begin(struct content_writer *w, const char *expected, int64_t size,
			 const char *const *labels, struct err *err)
{
	if (w->active)
		return err_set(err, EBUSY, "content writer: a blob is already in progress");
	if (expected && !digest_ok(expected))
		return err_set(err, EINVAL, "not a sha256 digest: %.80s", expected);
	snprintf(w->expected, sizeof w->expected, "%s", expected ? expected : "");
	w->total = size;
	w->offset = 0;
	w->buflen = 0;
	w->labels = labels;
	w->skip = false;
	if (EVP_DigestInit_ex(w->md, EVP_sha256(), NULL) != 1)
		return err_set(err, EIO, "EVP_DigestInit_ex failed");
	if (expected) {
		int have = content_info(w->c, w->lease, expected, NULL, err);
		if (have < 0)
			return -1;
		if (have) { /* already there: hash to verify the caller's stream, send nothing */
			w->skip = true;
			w->active = true;
			return 0;
		}
	}
	snprintf(w->ref, sizeof w->ref, "%s-%d-%u-%s", w->prefix, (int)getpid(), ++w->seq,
		 expected ? expected + 7 : "new");
	w->s = ctr_stream_open(w->c, w->lease, SVC "Write", CONTENT_STREAM_MS, err);
	if (!w->s)
		return -1;
	w->active = true;
	return 0;
}

int content_writer_write(struct content_writer *w, const void *data, size_t len, struct err *err)
{
	if (!w->active)
		return err_set(err, EINVAL, "content writer: no blob in progress");
	if (w->total >= 0 && w->offset + (int64_t)w->buflen + (int64_t)len > w->total) {
		content_writer_abort(w);
		return err_set(err, EBADMSG, "blob %s is longer than its announced %lld bytes",
			       w->expected[0] ? w->expected : "(new)", (long long)w->total);
	}
	if (EVP_DigestUpdate(w->md, data, len) != 1) {
		content_writer_abort(w);
		return err_set(err, EIO, "EVP_DigestUpdate failed");
	}
	if (w->skip) {
		w->offset += (int64_t)len;
		return 0;
	}
	const uint8_t *p = data;
	while (len) {
		size_t n = CHUNK - w->buflen;
		if (n > len)
			n = len;
		memcpy(w->buf + w->buflen, p, n);
		w->buflen += n;
		p += n;
		len -= n;
		if (w->buflen == CHUNK && send_chunk(w, false, NULL, err) < 0) {
			if (err && err->code == EEXIST && w->expected[0]) {
				/* another writer committed it meanwhile: only verify from now on */
				err_clear(err);
				ctr_stream_close(w->s);
				w->s = NULL;
				w->skip = true;
				w->offset += (int64_t)w->buflen + (int64_t)len;
				w->buflen = 0;
				return 0;
			}
			content_writer_abort(w);
			return -1;
		}
	}
	return 0;
}

int content_writer_commit(struct content_writer *w, char digest[72], int64_t *size, struct err *err)
{
	if (!w->active)
		return err_set(err, EINVAL, "content writer: no blob in progress");
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	if (EVP_DigestFinal_ex(w->md, md, &mdlen) != 1 || mdlen != 32) {
		content_writer_abort(w);
		return err_set(err, EIO, "EVP_DigestFinal_ex failed");
	}
	char got[72] = "sha256:";
	for (unsigned i = 0; i < 32; i++)
		snprintf(got + 7 + 2 * i, 3, "%02x", md[i]);
	int64_t total = w->offset + (int64_t)w->buflen;
	if (w->expected[0] && strcmp(got, w->expected) != 0) {
		content_writer_abort(w);
		return err_set(err, EBADMSG, "digest mismatch: expected %s, got %s", w->expected,
			       got);
	}
	if (w->total >= 0 && total != w->total) {
		content_writer_abort(w);
		return err_set(err, EBADMSG, "blob %s: %lld bytes, announced %lld", got,
			       (long long)total, (long long)w->total);
	}
	if (!w->skip) {
		if (send_chunk(w, true, got, err) < 0) {
			/* A concurrent writer (another worker) may have committed it first. */
			if (err && err->code == EEXIST) {
				err_clear(err);
			} else {
				content_writer_abort(w);
				return -1;
			}
		}
		ctr_stream_close_send(w->s, NULL);
		ctr_stream_close(w->s);
		w->s = NULL;
	}
	w->active = false;
	if (digest)
		snprintf(digest, 72, "%s", got);
	if (size)
		*size = total;
	return 0;
}

void content_writer_abort(struct content_writer *w)
{
	if (!w || !w->active)
		return;
	if (w->s) {
		ctr_stream_close(w->s);
		w->s = NULL;
		/* Drop the partial upload so it does not wait in containerd's ingest dir. */
		Containerd__Services__Content__V1__AbortRequest req =
		    CONTAINERD__SERVICES__CONTENT__V1__ABORT_REQUEST__INIT;
		req.ref = w->ref;
		struct ctr_status st;
		ctr_call_sync_lease(w->c, w->lease, SVC "Abort", &req.base,
				    &google__protobuf__empty__descriptor, CONTENT_CALL_MS, &st,
				    NULL, NULL);
	}
	w->active = false;
	w->buflen = 0;
}
