/*
 * imageref.h - image references ("host/repo:tag@digest") and where a teacher's DOCKER= name lives.
 *
 * Contract: pure string functions; nothing allocates, nothing touches the network. A parsed
 * image_ref is always valid: host, repo, tag and digest have passed the checks below, so they can
 * be pasted into a registry URL as they are. Every failure is EINVAL with a message that quotes
 * the (sanitised) name and says which rule it broke.
 */
#ifndef VC_IMAGEREF_H
#define VC_IMAGEREF_H

#include <stddef.h>

#include "err.h"

#define IMAGE_REF_MAX	 255 /* as `docker pull` limits a whole reference */
#define IMAGE_DOCKER_HUB "registry-1.docker.io"

struct image_ref {
	char host[256];	 /* "127.0.0.1:5000", "registry-1.docker.io"; never empty after parse */
	char repo[256];	 /* "gblin/minivpljava", "library/debian" */
	char tag[129];	 /* "latest" when neither tag nor digest given; "" when only a digest */
	char digest[72]; /* "sha256:<64 lowercase hex>" or "" */
};

/* Parses a reference as `docker pull` accepts it (repo path components
   [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*, tag [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, digest sha256:64 hex,
   total length <= 255). The first component is a host when it contains '.' or ':' or is "localhost"
   (and is not the only component); else default_host is used (NULL or "" = Docker Hub).
   "docker.io"/"index.docker.io" become "registry-1.docker.io" and a one-component repo on it gets
   "library/". Rejects anything else with a clear message (EINVAL). */
int image_ref_parse(const char *s, const char *default_host, struct image_ref *out,
		    struct err *err);

/* "host/repo:tag", "host/repo@digest" or "host/repo:tag@digest"; returns length or -1 if n too
   small. */
int image_ref_format(const struct image_ref *r, char *out, size_t n);

/* Where a teacher's DOCKER= name lives:
   - name without a host: local = LOCAL/<path>:<tag>, upstream = UPSTREAM/<path>:<tag> when upstream
     is set (docker hub upstream adds library/ for one component), else upstream.host[0] == 0;
   - name whose host is LOCAL itself: local = that name, no upstream;
   - name with another registry host H: local = LOCAL/<H'>/<path>:<tag> where H' is H lowercased
     with ':' replaced by '_' (a valid path component; since a component containing '.' or ':' is
     always read as a host, a copied name can never shadow a local name), upstream = H/<path>:<tag>
     (ONLY if allow_any_host, which the worker derives from ALLOWED_IMAGES; else upstream empty).
   Digests are kept on both. */
struct image_source {
	struct image_ref local, upstream;
};
int image_source_resolve(const char *docker_name, const char *local_registry,
			 const char *upstream_registry /* NULL or "" = none */, int allow_any_host,
			 struct image_source *out, struct err *err);

/* ALLOWED_IMAGES: comma/space separated fnmatch(3) patterns (flags 0, so '*' also matches '/')
   matched against the formatted local ref and against the name as the teacher wrote it; empty
   patterns = allowed. Returns 1/0. */
int image_allowed(const char *patterns, const char *written_name, const struct image_ref *local);

#endif
