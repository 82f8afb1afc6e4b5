/*
 * archive_import.h - reads an image tarball for `vpl-jail image import FILE` (sites without
 * registry access) and streams its blobs into a content store through an abstract sink.
 *
 * Contract: archive_import() reads the tar file at `path` with libarchive (plain, gzip, xz,
 * zstd or bzip2 compression, detected; a filter only libarchive's external programs could
 * decode is not enabled, so no program is ever run on the input) in one pass, and accepts:
 *  - an OCI image layout: `oci-layout` (imageLayoutVersion "1.0.0"), `index.json` and
 *    `blobs/sha256/<64 hex>`. Each blob goes straight to the sink with expected =
 *    "sha256:<its name>"; the images returned are index.json's manifests[] (manifests or
 *    nested indexes, passed through with their media type), each of which must be a blob of
 *    the archive of the size the index states. Blobs the manifests reference are not
 *    checked here: containerd finds them missing when it reads the manifest. `docker save`
 *    from Docker 25 on writes such a layout (plus a manifest.json): any archive holding
 *    index.json is read as OCI.
 *  - a docker-archive (older `docker save`, podman, skopeo): `manifest.json`, configs
 *    `<64 hex>.json`, layers `<64 hex>/layer.tar` or `<64 hex>.tar` (plain or compressed),
 *    and `repositories`, `<64 hex>/VERSION`, `<64 hex>/json`, which are read and ignored.
 *    Entries may come in any order, so every layer is streamed to the sink (expected NULL)
 *    as it comes and remembered by path; at the end, for each manifest.json entry, the
 *    config (kept in memory) is sunk, its rootfs.diff_ids must count as many as Layers, and
 *    an OCI manifest (application/vnd.oci.image.manifest.v1+json, layers typed tar,
 *    tar+gzip or tar+zstd by their magic bytes) is synthesised, sunk and returned. A layer
 *    `layer.tar` that `docker save` wrote as a symlink "../<64 hex>/layer.tar" to an
 *    identical layer resolves to that entry by name; no other link is ever used.
 * The archive is untrusted: an absolute name, a ".." or "." or empty component, a name of
 * none of the forms above, a duplicate file, or more than lim->max_entries entries fails
 * (EINVAL, E2BIG for limits); symlinks, hard links, devices and fifos are otherwise skipped
 * with no effect and never followed. Limits: every regular file at most max_blob bytes,
 * their sum at most max_total, each file kept in memory (the JSON ones) at most max_json
 * and all of them together at most 16 * max_json. JSON must be well formed, without
 * duplicate keys, and every digest "sha256:" + 64 lowercase hex (EBADMSG otherwise, as for
 * a reference to a file missing from the archive: the message names it). Nothing is
 * written to the host filesystem.
 *
 * Sink protocol: begin, write..., commit for each blob, never two at once. commit ends the
 * blob whether it succeeds or not; between begin's success and commit, any failure (the
 * archive's, a limit, the sink's write) calls abort exactly once. A sink error is returned
 * with its code and the entry's name prefixed. The digest a commit returns must be valid,
 * and equal the expected one when there was one (EBADMSG otherwise).
 *
 * Ownership: on success *out is a malloc'd array of *n images (the caller frees it; *n may
 * not be 0: an archive naming no image fails). On failure *out and *n are untouched, and
 * blobs already committed stay in the sink (a content store keeps them unreferenced until
 * its garbage collection; importing again is harmless).
 */
#ifndef VC_ARCHIVE_IMPORT_H
#define VC_ARCHIVE_IMPORT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct blob_sink {
	void *arg;
	/* Starts a blob. expected: "sha256:<hex>" when known (OCI layout names), NULL when not (the
	   sink computes it). size: bytes when known, -1 otherwise. */
	int (*begin)(void *arg, const char *expected, int64_t size, struct err *err);
	int (*write)(void *arg, const void *data, size_t len, struct err *err);
	/* Ends the blob; the sink returns the digest it computed (and verified against expected).
	 */
	int (*commit)(void *arg, char digest[72], int64_t *size, struct err *err);
	void (*abort)(void *arg); /* the blob in progress is discarded */
};

struct imported_image {
	char name[256]; /* reference from index.json annotations (io.containerd.image.name, else
			   org.opencontainers.image.ref.name if it is a full reference rather than
			   a bare tag) or docker RepoTags[0] as docker wrote it (often the familiar
			   form "busybox:latest"); "" when the archive names none */
	char media_type[128]; /* of the target: OCI/docker manifest or index */
	char digest[72];
	int64_t size;
};

/* A field left 0 takes the default below; lim itself may be NULL for all defaults. */
struct import_limits {
	int64_t max_total;
	int64_t max_blob;
	size_t max_json;
	size_t max_entries;
};

#define IMPORT_DEFAULT_MAX_TOTAL   (INT64_C(32) << 30) /* 32 GiB */
#define IMPORT_DEFAULT_MAX_BLOB	   (INT64_C(16) << 30) /* 16 GiB */
#define IMPORT_DEFAULT_MAX_JSON	   ((size_t)4 << 20)   /* 4 MiB */
#define IMPORT_DEFAULT_MAX_ENTRIES ((size_t)100000)

/* Returns the images found (malloc'd array, *n entries, caller frees) after every blob went to the
   sink. */
int archive_import(const char *path, const struct blob_sink *sink, const struct import_limits *lim,
		   struct imported_image **out, size_t *n, struct err *err);

/* True if s is "sha256:" followed by exactly 64 lowercase hex digits. */
int archive_import_digest_valid(const char *s);

#endif
