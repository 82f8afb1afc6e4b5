/*
 * manifest.h - image manifests and indexes (OCI and docker schema 2), pure.
 *
 * Split out of unpack.c so that the parsers can be built and fuzzed without the containerd client
 * (tests/fuzz/fuzz_manifest.c); unpack.h includes this header, so its users see the same API.
 * Nothing here touches the network, the content store or containerd.
 */
#ifndef VC_MANIFEST_H
#define VC_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define IMG_MAX_LAYERS	 128
#define IMG_MAX_MANIFEST (4 * 1024 * 1024)
#define IMG_MAX_CONFIG	 (4 * 1024 * 1024)

struct img_desc {
	char media_type[128];
	char digest[72];
	int64_t size;
};

struct img_manifest {
	struct img_desc config;
	struct img_desc layers[IMG_MAX_LAYERS];
	size_t n;
};

/* 1 for an OCI/docker image manifest media type, 2 for an index/manifest list, 0 else. */
int img_media_kind(const char *media_type);

/* Parses an image manifest (OCI or docker schema 2); rejects unknown layer media types,
 * non-distributable layers, bad digests and more than IMG_MAX_LAYERS layers. */
int img_manifest_parse(const uint8_t *body, size_t len, struct img_manifest *m, struct err *err);

/* Picks the manifest for os/arch(/variant, may be NULL) from an index body. ENOTSUP names the
 * platforms offered when none matches. */
int img_index_select(const uint8_t *body, size_t len, const char *os, const char *arch,
		     const char *variant, struct img_desc *out, struct err *err);

/* The host's platform in OCI terms ("amd64", "arm64", ...). */
const char *img_host_arch(void);

/* "sha256:" followed by exactly 64 lowercase hex digits. */
bool img_digest_ok(const char *d);

#endif
