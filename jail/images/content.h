/*
 * content.h - containerd's content store over gRPC, blocking.
 *
 * For the puller thread and the command-line tools only (every call waits for containerd; never
 * call these on the event loop thread). Calls carry LEASE when given, so what they write stays
 * out of containerd's garbage collection until the caller is done with it.
 *
 * A content_writer is a blob sink: begin / write* / commit or abort. It buffers writes into
 * 1 MiB Content/Write messages, hashes what passes (SHA-256, OpenSSL) and commits with the
 * expected digest, so a blob is in the store only if it is exactly what was announced; with no
 * expected digest the computed one is committed and returned. A blob the store already holds
 * commits as a success without being sent twice (the digest is checked first when known).
 */
#ifndef VC_CONTENT_H
#define VC_CONTENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ctr_client.h"
#include "err.h"

/* Per-call deadlines: metadata calls, and whole blob streams. */
#define CONTENT_CALL_MS	  15000
#define CONTENT_STREAM_MS (30 * 60 * 1000)

/* 1 = present (size in *size if not NULL), 0 = absent, -1 = error. */
int content_info(struct ctr_client *c, const char *lease, const char *digest, int64_t *size,
		 struct err *err);

/* Sets labels on a blob: kv = key, value, key, value, ..., NULL (only these keys change). */
int content_set_labels(struct ctr_client *c, const char *lease, const char *digest,
		       const char *const *kv, struct err *err);

/* Reads a whole blob of at most max bytes into *out (malloc'd, NUL-terminated, caller frees). */
int content_read_all(struct ctr_client *c, const char *digest, size_t max, uint8_t **out,
		     size_t *len, struct err *err);

/* Streaming read of a blob (for copies into a registry). */
struct content_reader;
struct content_reader *content_reader_open(struct ctr_client *c, const char *digest,
					   struct err *err);
/* Bytes read, 0 at the end, -1 on error (see content_reader_err). */
ssize_t content_reader_read(struct content_reader *r, void *buf, size_t len);
const struct err *content_reader_err(const struct content_reader *r);
void content_reader_close(struct content_reader *r);

struct content_writer;
/* ref_prefix names this writer's in-progress refs ("vplcell-<worker>"), so two workers on one
 * containerd never lock each other's refs. */
struct content_writer *content_writer_new(struct ctr_client *c, const char *lease,
					  const char *ref_prefix, struct err *err);
void content_writer_free(struct content_writer *w);
/* expected: "sha256:<hex>" or NULL; size: bytes or -1; labels (kv pairs, NULL-terminated, may
 * be NULL) are set at commit. */
int content_writer_begin(struct content_writer *w, const char *expected, int64_t size,
			 const char *const *labels, struct err *err);
int content_writer_write(struct content_writer *w, const void *data, size_t len, struct err *err);
int content_writer_commit(struct content_writer *w, char digest[72], int64_t *size,
			  struct err *err);
void content_writer_abort(struct content_writer *w);
/* Bytes sent to containerd by this writer since it was created (blobs skipped count 0). */
int64_t content_writer_sent(const struct content_writer *w);

#endif
