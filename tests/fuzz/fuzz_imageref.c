/*
 * fuzz_imageref.c - libFuzzer target: image_ref_parse, image_ref_format, image_source_resolve
 * and image_allowed (jail/images/imageref.c).
 *
 * Input: lines "name\ndefault_host\nlocal_registry\nupstream_registry\npatterns\nflags" (missing
 * lines are empty; an empty local registry is replaced by 127.0.0.1:5000 so that resolution
 * runs; flags' first byte's low bit is allow_any_host).
 * Invariants (abort() on violation):
 *  - failure: EINVAL and a message;
 *  - a parsed ref is valid: non-empty host and repo, tag and digest within their rules, tag
 *    "latest" when neither was given, never both empty;
 *  - formatting it gives at most IMAGE_REF_MAX + a few bytes, reparses to the same ref
 *    (idempotence), and image_ref_format fails cleanly on a too small buffer;
 *  - resolution: local is on the local registry (normalised) and upstream, when set, on the
 *    upstream registry (no host) or the name's own host (allow_any_host); tag and digest
 *    kept on both; both format and reparse to themselves;
 *  - image_allowed answers 0/1, 1 for empty patterns and for "*".
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imageref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz invariant violated: %s\n", what);
		abort();
	}
}

static int ref_eq(const struct image_ref *a, const struct image_ref *b)
{
	return !strcmp(a->host, b->host) && !strcmp(a->repo, b->repo) && !strcmp(a->tag, b->tag) &&
	       !strcmp(a->digest, b->digest);
}

static void check_ref(const struct image_ref *r)
{
	check(r->host[0] && r->repo[0], "host and repo");
	check(strnlen(r->host, sizeof r->host) < sizeof r->host &&
		  strnlen(r->repo, sizeof r->repo) < sizeof r->repo &&
		  strnlen(r->tag, sizeof r->tag) < sizeof r->tag &&
		  strnlen(r->digest, sizeof r->digest) < sizeof r->digest,
	      "terminated");
	check(r->tag[0] || r->digest[0], "tag or digest");
	check(!r->digest[0] || (strlen(r->digest) == 71 && !strncmp(r->digest, "sha256:", 7)),
	      "digest form");
	check(!strchr(r->repo, ':') && !strchr(r->repo, '@') && !strchr(r->tag, ':') &&
		  !strchr(r->tag, '/') && !strchr(r->host, '/'),
	      "no separators inside fields");
	/* Format, reparse: the same ref (the host is explicit once formatted). */
	char s[1024];
	int n = image_ref_format(r, s, sizeof s);
	check(n > 0 && (size_t)n == strlen(s), "format");
	struct image_ref again;
	struct err e = {0};
	if (n > IMAGE_REF_MAX) {
		/* "foo" (220 bytes) is fine, "registry-1.docker.io/library/foo:latest" is not:
		   the limit is on the name as written, callers check what they format. */
		check(image_ref_parse(s, NULL, &again, &e) == -1 && e.code == EINVAL,
		      "formatted ref over IMAGE_REF_MAX is refused");
	} else {
		check(image_ref_parse(s, NULL, &again, &e) == 0, "formatted ref reparses");
		check(ref_eq(r, &again), "formatted ref reparses to itself");
	}
	char small[8];
	check(n < (int)sizeof small || image_ref_format(r, small, sizeof small) == -1,
	      "format into a small buffer fails");
}

/* host as image_source_resolve normalises the operator's registry. */
static void norm(const char *h, char *out)
{
	if (!strcmp(h, "docker.io") || !strcmp(h, "index.docker.io"))
		h = IMAGE_DOCKER_HUB;
	snprintf(out, 256, "%s", h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char buf[4096];
	if (size >= sizeof buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';
	char *field[6] = {"", "", "", "", "", ""};
	char *p = buf;
	for (int i = 0; i < 6 && p; i++) {
		field[i] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
	}
	const char *name = field[0], *defhost = field[1];
	const char *local = field[2][0] ? field[2] : "127.0.0.1:5000";
	const char *upstream = field[3], *patterns = field[4];
	int any = field[5][0] & 1;

	struct image_ref r = {0};
	struct err e = {0};
	if (image_ref_parse(name, defhost, &r, &e) == 0) {
		check_ref(&r);
		check(image_allowed("", name, &r) == 1 && image_allowed(" , ", name, &r) == 1,
		      "empty patterns allow");
		check(image_allowed("*", name, &r) == 1, "* allows");
	} else {
		check(e.code == EINVAL && e.msg[0], "parse failure");
	}

	struct image_source src;
	e = (struct err){0};
	if (image_source_resolve(name, local, upstream, any, &src, &e) == 0) {
		char lh[256], uh[256];
		norm(local, lh);
		norm(upstream, uh);
		check_ref(&src.local);
		check(!strcasecmp(src.local.host, lh), "local is on the local registry");
		if (src.upstream.host[0]) {
			check_ref(&src.upstream);
			check((upstream[0] && !strcmp(src.upstream.host, uh)) || any,
			      "upstream on the upstream registry or allowed any host");
			check(!strcmp(src.upstream.tag, src.local.tag) &&
				  !strcmp(src.upstream.digest, src.local.digest),
			      "tag and digest kept on both");
		}
		int a = image_allowed(patterns, name, &src.local);
		check(a == 0 || a == 1, "image_allowed 0/1");
	} else {
		check(e.code == EINVAL && e.msg[0], "resolve failure");
	}
	int a = image_allowed(patterns, name, &r);
	check(a == 0 || a == 1, "image_allowed 0/1 (any ref)");
	return 0;
}
