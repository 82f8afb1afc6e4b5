#include "imageref.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

/* What parse() found beyond the ref itself: whether the name named its host, and the path as
   written (before "library/" was added), which image_source_resolve() re-homes. */
struct parsed {
	struct image_ref ref;
	int explicit_host;
	char path[256];
};

static int bad(struct err *err, const char *s, const char *why)
{
	char q[96];
	log_sanitize(q, sizeof q, s, strnlen(s, 80));
	return err_set(err, EINVAL, "invalid image name '%s%s': %s", q,
		       strnlen(s, 81) > 80 ? "..." : "", why);
}

static int lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static int component_ok(const char *p, size_t n)
{
	size_t i = 0;
	if (n == 0)
		return 0;
	for (;;) {
		size_t start = i;
		while (i < n && lower_alnum(p[i]))
			i++;
		if (i == start)
			return 0;
		if (i == n)
			return 1;
		if (p[i] == '.') {
			i++;
		} else if (p[i] == '_') {
			i++;
			if (i < n && p[i] == '_')
				i++;
		} else if (p[i] == '-') {
			while (i < n && p[i] == '-')
				i++;
		} else {
			return 0;
		}
		if (i == n)
			return 0; /* trailing separator */
	}
}

/* DNS labels [A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])? joined by '.', then an optional :port.
   IPv6 literals are not accepted (docker needs brackets, and no site has asked for them). */
static int host_ok(const char *p, size_t n)
{
	const char *colon = memchr(p, ':', n);
	size_t hn = colon ? (size_t)(colon - p) : n;
	if (hn == 0 || hn > 253)
		return 0;
	size_t label = 0;
	for (size_t i = 0; i < hn; i++) {
		char c = p[i];
		if (c == '.') {
			if (label == 0 || p[i - 1] == '-')
				return 0;
			label = 0;
		} else if (isalnum((unsigned char)c) || c == '-') {
			if (label == 0 && c == '-')
				return 0;
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	if (label == 0 || p[hn - 1] == '-')
		return 0;
	if (colon) {
		size_t pn = n - hn - 1;
		if (pn == 0 || pn > 5)
			return 0;
		unsigned long port = 0;
		for (size_t i = hn + 1; i < n; i++) {
			if (!isdigit((unsigned char)p[i]))
				return 0;
			port = port * 10 + (unsigned long)(p[i] - '0');
		}
		if (port == 0 || port > 65535)
			return 0;
	}
	return 1;
}

static int tag_ok(const char *p, size_t n)
{
	if (n == 0 || n > 128)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		int ok = isalnum((unsigned char)c) || c == '_' || (i > 0 && (c == '.' || c == '-'));
		if (!ok)
			return 0;
	}
	return 1;
}

static int digest_ok(const char *p, size_t n)
{
	if (n != 71 || strncmp(p, "sha256:", 7) != 0)
		return 0;
	for (size_t i = 7; i < n; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			return 0;
	return 1;
}

static int is_hub(const char *h)
{
	return !strcmp(h, "docker.io") || !strcmp(h, "index.docker.io") ||
	       !strcmp(h, IMAGE_DOCKER_HUB);
}

/* Validates a registry host given by the operator and maps Docker Hub's aliases. */
static int norm_host(const char *h, char out[256], const char *what, struct err *err)
{
	size_t n = strnlen(h, 256);
	if (n == 256 || !host_ok(h, n)) {
		char q[96];
		log_sanitize(q, sizeof q, h, strnlen(h, 80));
		return err_set(err, EINVAL, "invalid %s registry '%s': expected host or host:port",
			       what, q);
	}
	/* parse() reads a first component as a host only with a '.' or ':' or as "localhost": any
	   other host would turn "host/name" into Docker Hub's image "host/name". */
	if (!strchr(h, '.') && !strchr(h, ':') && strcmp(h, "localhost") != 0) {
		char q[96];
		log_sanitize(q, sizeof q, h, strnlen(h, 80));
		return err_set(err, EINVAL,
			       "invalid %s registry '%s': a registry host needs a '.' or a :port "
			       "(or is localhost)",
			       what, q);
	}
	snprintf(out, 256, "%s", is_hub(h) ? IMAGE_DOCKER_HUB : h);
	return 0;
}

static int parse(const char *s, const char *default_host, struct parsed *out, struct err *err)
{
	if (!s || !*s)
		return err_set(err, EINVAL, "invalid image name: empty");
	size_t len = strnlen(s, IMAGE_REF_MAX + 1);
	if (len > IMAGE_REF_MAX)
		return bad(err, s, "longer than 255 characters");
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return bad(err, s, "contains a space, a control or a non-ASCII character");

	char name[IMAGE_REF_MAX + 1];
	memcpy(name, s, len + 1);
	memset(out, 0, sizeof *out);

	char *at = strchr(name, '@');
	if (at) {
		*at = '\0';
		if (!digest_ok(at + 1, strlen(at + 1)))
			return bad(err, s,
				   "the digest must be sha256: followed by 64 lowercase hex");
		memcpy(out->ref.digest, at + 1, 72);
	}
	char *slash = strrchr(name, '/');
	char *colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_ok(colon + 1, strlen(colon + 1)))
			return bad(
			    err, s,
			    "the tag must be 1-128 of A-Z a-z 0-9 _ . - and not start with . or -");
		memcpy(out->ref.tag, colon + 1, strlen(colon + 1) + 1);
	} else if (!at) {
		strcpy(out->ref.tag, "latest");
	}
	if (!*name)
		return bad(err, s, "no repository name");

	const char *path = name;
	char *first = strchr(name, '/');
	if (first) {
		size_t fl = (size_t)(first - name);
		if (memchr(name, '.', fl) || memchr(name, ':', fl) ||
		    (fl == 9 && !memcmp(name, "localhost", 9))) {
			if (!host_ok(name, fl))
				return bad(err, s, "the registry host is not a valid host[:port]");
			memcpy(out->ref.host, name, fl);
			out->ref.host[fl] = '\0';
			out->explicit_host = 1;
			path = first + 1;
		}
	}
	if (!out->explicit_host) {
		if (default_host && *default_host) {
			if (norm_host(default_host, out->ref.host, "default", err) < 0)
				return -1;
		} else {
			strcpy(out->ref.host, IMAGE_DOCKER_HUB);
		}
	}
	if (is_hub(out->ref.host))
		strcpy(out->ref.host, IMAGE_DOCKER_HUB);

	/* Path components. */
	for (const char *p = path;;) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		if (!component_ok(p, n)) {
			for (size_t i = 0; i < n; i++)
				if (isupper((unsigned char)p[i]))
					return bad(err, s, "repository names must be lowercase");
			return bad(err, s,
				   n ? "a path component must be a-z 0-9 separated by . _ __ or -"
				     : "empty path component");
		}
		if (!e)
			break;
		p = e + 1;
	}
	snprintf(out->path, sizeof out->path, "%s", path);
	int hub_single = !strcmp(out->ref.host, IMAGE_DOCKER_HUB) && !strchr(path, '/');
	if (snprintf(out->ref.repo, sizeof out->ref.repo, "%s%s", hub_single ? "library/" : "",
		     path) >= (int)sizeof out->ref.repo)
		return bad(err, s, "repository name too long");
	return 0;
}

int image_ref_parse(const char *s, const char *default_host, struct image_ref *out, struct err *err)
{
	struct parsed p;
	if (parse(s, default_host, &p, err) < 0)
		return -1;
	*out = p.ref;
	return 0;
}

int image_ref_format(const struct image_ref *r, char *out, size_t n)
{
	int len = snprintf(out, n, "%s/%s%s%s%s%s", r->host, r->repo, r->tag[0] ? ":" : "", r->tag,
			   r->digest[0] ? "@" : "", r->digest);
	if (len < 0 || (size_t)len >= n)
		return -1;
	return len;
}

/* Parses "<host>/<path>[:tag][@digest]", which must keep host as its host. */
static int rehome(const char *host, const char *path, const struct image_ref *w,
		  struct image_ref *out, const char *what, struct err *err)
{
	char s[IMAGE_REF_MAX + 2];
	int n = snprintf(s, sizeof s, "%s/%s%s%s%s%s", host, path, w->tag[0] ? ":" : "", w->tag,
			 w->digest[0] ? "@" : "", w->digest);
	if (n < 0 || n > IMAGE_REF_MAX)
		return err_set(err, EINVAL,
			       "image name too long once placed in the %s registry (%s/%s)", what,
			       host, path);
	struct parsed p;
	if (parse(s, NULL, &p, err) < 0)
		return -1;
	*out = p.ref;
	return 0;
}

int image_source_resolve(const char *docker_name, const char *local_registry,
			 const char *upstream_registry, int allow_any_host,
			 struct image_source *out, struct err *err)
{
	memset(out, 0, sizeof *out);
	char local[256];
	if (!local_registry || !*local_registry)
		return err_set(err, EINVAL, "no local registry configured");
	if (norm_host(local_registry, local, "local", err) < 0)
		return -1;

	struct parsed w;
	if (parse(docker_name, local, &w, err) < 0)
		return -1;

	if (!w.explicit_host) {
		if (rehome(local, w.path, &w.ref, &out->local, "local", err) < 0)
			return -1;
		if (upstream_registry && *upstream_registry) {
			char up[256];
			if (norm_host(upstream_registry, up, "upstream", err) < 0)
				return -1;
			if (rehome(up, w.path, &w.ref, &out->upstream, "upstream", err) < 0)
				return -1;
		}
		return 0;
	}
	if (!strcasecmp(w.ref.host, local)) {
		out->local = w.ref;
		return 0;
	}
	/* A copy of another registry's image: its host becomes the first path component. */
	char h[256], path[IMAGE_REF_MAX + 2];
	size_t i;
	for (i = 0; w.ref.host[i]; i++)
		h[i] = w.ref.host[i] == ':' ? '_' : (char)tolower((unsigned char)w.ref.host[i]);
	h[i] = '\0';
	if (!component_ok(h, i))
		return bad(err, docker_name, "the registry host cannot be mapped to a local path");
	if (snprintf(path, sizeof path, "%s/%s", h, w.ref.repo) > IMAGE_REF_MAX)
		return err_set(err, EINVAL,
			       "image name too long once copied to the local registry");
	if (rehome(local, path, &w.ref, &out->local, "local", err) < 0)
		return -1;
	if (allow_any_host)
		out->upstream = w.ref;
	return 0;
}

int image_allowed(const char *patterns, const char *written_name, const struct image_ref *local)
{
	char ref[600];
	if (image_ref_format(local, ref, sizeof ref) < 0)
		ref[0] = '\0';
	int any = 0;
	const char *p = patterns ? patterns : "";
	while (*p) {
		size_t skip = strspn(p, ", \t\r\n");
		p += skip;
		size_t n = strcspn(p, ", \t\r\n");
		if (!n)
			break;
		any = 1;
		char pat[512];
		if (n < sizeof pat) {
			memcpy(pat, p, n);
			pat[n] = '\0';
			if ((written_name && fnmatch(pat, written_name, 0) == 0) ||
			    (ref[0] && fnmatch(pat, ref, 0) == 0))
				return 1;
		}
		p += n;
	}
	return !any;
}
