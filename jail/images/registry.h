/*
 * registry.h - a Docker Registry HTTP API v2 / OCI distribution client on libcurl.
 *
 * Contract:
 *  - A reg_client owns one CURL easy handle (reused, so requests share a keep-alive connection),
 *    a copy of its options and a cache of bearer tokens. It is used by one thread at a time;
 *    several clients may live in several threads (curl_global_init runs once, via pthread_once).
 *  - Every call is blocking and bounded: connect_timeout_ms to connect, and a transfer slower
 *    than 1 KiB/s for stall_timeout_s is aborted.
 *  - Nothing from the network is trusted: manifests are capped at REG_MANIFEST_MAX, error and
 *    token bodies at 64 KiB, every manifest and blob is checked against its sha256 digest.
 *  - Credentials go only to the host they belong to (and to the token realm that host names);
 *    never over plain http unless the host is in plain_http_hosts; never in an error message.
 *  - Errors (err->code): ENOENT not found, EACCES refused after auth, EHOSTDOWN unreachable,
 *    EBADMSG digest mismatch / malformed answer / unsupported media type, EFBIG too big,
 *    ENOTSUP no manifest for our platform, ETIMEDOUT stalled transfer, EIO other HTTP errors.
 *    Messages name the image and the registry and are meant for a teacher.
 */
#ifndef VC_REGISTRY_H
#define VC_REGISTRY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "imageref.h"

#define REG_MANIFEST_MAX (4 * 1024 * 1024)

#define REG_MT_OCI_INDEX       "application/vnd.oci.image.index.v1+json"
#define REG_MT_OCI_MANIFEST    "application/vnd.oci.image.manifest.v1+json"
#define REG_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"
#define REG_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"

struct reg_cred {
	const char *host, *user, *pass;
};

struct reg_opts {
	const char *plain_http_hosts; /* comma list spoken to over http:// (e.g. the loopback local
					 registry); others https */
	const char *ca_file;	      /* extra CA bundle or NULL */
	const struct reg_cred *creds; /* basic auth, and the credentials sent to a token realm */
	size_t ncreds;
	long connect_timeout_ms; /* default 5000 */
	long stall_timeout_s; /* abort a transfer slower than 1 KiB/s for this long; default 30 */
	const char *os, *arch, *variant; /* platform to select from an index; default linux + host
					    arch (amd64 on x86_64, arm64 ...), variant NULL */
};

/* Copies everything it needs from o (strings included): o may go away after the call. */
struct reg_client *reg_client_new(const struct reg_opts *o, struct err *err);
void reg_client_free(struct reg_client *c);

/* The platform the client selects, e.g. "linux/amd64" or "linux/arm/v7". */
const char *reg_client_platform(const struct reg_client *c);

struct reg_manifest {
	char media_type[128];
	char digest[72];
	uint8_t *body;
	size_t len;
}; /* body malloc'd, caller frees */

/* GETs the manifest at ref (tag or digest) with Accept for OCI index/manifest and docker manifest
   list/v2; when it is an index/manifest list, selects the platform's manifest and fetches it by
   digest. Verifies sha256 of every fetched manifest against the digest asked for (and against
   Docker-Content-Digest when given). Rejects schema1 and bodies > 4 MiB. */
int reg_resolve(struct reg_client *c, const struct image_ref *ref, struct reg_manifest *out,
		struct err *err);

/* Raw fetch of exactly what is at ref (no platform selection) - for tests/tools and index
   copies. Same checks as reg_resolve. */
int reg_get_manifest(struct reg_client *c, const struct image_ref *ref, struct reg_manifest *out,
		     struct err *err);

typedef int (*reg_sink_fn)(void *arg, const void *data, size_t len); /* 0 ok, -1 abort */

/* Streams blob `digest` of ref's repo into sink, verifying size (if size >= 0) and sha256;
   aborts with EFBIG beyond max_size (>0). Follows redirects (registries redirect blobs to
   storage) but never sends the Authorization header to another host. When the sink fails, the
   error is EIO unless the sink filled *err itself (code != 0) - pass the same err. */
int reg_get_blob(struct reg_client *c, const struct image_ref *ref, const char *digest,
		 int64_t size, int64_t max_size, reg_sink_fn sink, void *arg, struct err *err);

int reg_has_blob(struct reg_client *c, const struct image_ref *ref, const char *digest,
		 struct err *err); /* 1, 0, -1 */

typedef ssize_t (*reg_source_fn)(void *arg, void *buf, size_t len); /* bytes, 0 = EOF, -1 = err */

/* Uploads a blob (POST uploads/ then a single streamed PUT ?digest=), skipping it when HEAD says
   it exists. src must yield exactly size bytes. */
int reg_put_blob(struct reg_client *c, const struct image_ref *ref, const char *digest,
		 int64_t size, reg_source_fn src, void *arg, struct err *err);

/* PUTs a manifest under ref's tag (or its digest when tag is ""). */
int reg_put_manifest(struct reg_client *c, const struct image_ref *ref, const char *media_type,
		     const void *body, size_t len, struct err *err);

/* sha256 of data as "sha256:<hex>" into out[72]. */
void reg_digest(const void *data, size_t len, char out[72]);

#endif
