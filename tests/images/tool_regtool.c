/*
 * images_regtool - a command line over jail/images/registry.c, for tests and for operators who
 * want to see what the worker's client sees.
 *
 *   images_regtool [options] platform
 *   images_regtool [options] resolve REF          one line: media_type digest length
 *   images_regtool [options] manifest REF         same, raw (no platform selection)
 *   images_regtool [options] blob REF DIGEST SIZE MAX > out    SIZE -1 = unknown, MAX 0 = none
 *   images_regtool [options] has-blob REF DIGEST  prints 1 or 0
 *   images_regtool [options] put-blob REF FILE    prints the digest
 *   images_regtool [options] put-manifest REF MEDIA_TYPE FILE   prints the digest
 *   images_regtool [options] copy SRCREF DSTREF   resolve + config + layers + manifest
 * Options: -p HOSTS plain-http hosts (env REG_PLAIN_HTTP), -c HOST=USER:PASS (repeatable; env
 * REG_CREDS, comma separated), -a ARCH, -o OS, -v VARIANT, -C CA_FILE, -s STALL_S, -t CONNECT_MS,
 * -n N (repeat the command N times on one client, to exercise keep-alive and the token cache),
 * -b BODY_FILE (resolve/manifest: write the manifest there).
 * Errors: "ERR <ENAME> <message>" on stderr, exit 1; usage errors exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "registry.h"

#define MAX_CREDS 8

static const char *ename(int code)
{
	switch (code) {
	case ENOENT:
		return "ENOENT";
	case EACCES:
		return "EACCES";
	case EHOSTDOWN:
		return "EHOSTDOWN";
	case EBADMSG:
		return "EBADMSG";
	case EFBIG:
		return "EFBIG";
	case ENOTSUP:
		return "ENOTSUP";
	case EINVAL:
		return "EINVAL";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EPROTO:
		return "EPROTO";
	case EIO:
		return "EIO";
	default:
		return "EOTHER";
	}
}

static int fail(const struct err *e)
{
	fprintf(stderr, "ERR %s %s\n", ename(e->code), e->msg);
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: images_regtool [-p hosts] [-c host=user:pass] [-a arch] [-o os] "
			"[-v variant] [-C ca] [-s stall] [-t connect_ms] [-n repeat] [-b file] "
			"platform|resolve|manifest|blob|has-blob|put-blob|put-manifest|copy ...\n");
	return 2;
}

static int write_all(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n) {
		ssize_t w = write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sink_fd(void *arg, const void *data, size_t len)
{
	return write_all(*(int *)arg, data, len);
}

static ssize_t source_fd(void *arg, void *buf, size_t len)
{
	for (;;) {
		ssize_t r = read(*(int *)arg, buf, len);
		if (r < 0 && errno == EINTR)
			continue;
		return r;
	}
}

static int read_file(const char *path, char **out, size_t *len, struct err *e)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return err_sys(e, errno, "%s", path);
	char *data = malloc(REG_MANIFEST_MAX + 1);
	size_t n = data ? fread(data, 1, REG_MANIFEST_MAX + 1, f) : 0;
	fclose(f);
	if (!data || n > REG_MANIFEST_MAX) {
		free(data);
		return err_set(e, EFBIG, "%s: too big", path);
	}
	*out = data;
	*len = n;
	return 0;
}

static int print_manifest(const struct reg_manifest *m, const char *body_file, struct err *e)
{
	printf("%s %s %zu\n", m->media_type, m->digest, m->len);
	if (body_file) {
		FILE *f = fopen(body_file, "wb");
		if (!f || fwrite(m->body, 1, m->len, f) != m->len) {
			if (f)
				fclose(f);
			return err_sys(e, errno, "%s", body_file);
		}
		fclose(f);
	}
	return 0;
}

/* Blob through a temporary file: the tool keeps no layer in memory. */
static int copy_blob(struct reg_client *c, const struct image_ref *src, const struct image_ref *dst,
		     const char *digest, int64_t size, struct err *e)
{
	int has = reg_has_blob(c, dst, digest, e);
	if (has < 0)
		return -1;
	if (has) /* reg_put_blob would skip it too; this avoids the download */
		return 0;
	char tmpl[] = "/tmp/regtool.XXXXXX";
	int fd = mkstemp(tmpl);
	if (fd < 0)
		return err_sys(e, errno, "mkstemp");
	unlink(tmpl);
	int rc = reg_get_blob(c, src, digest, size, 0, sink_fd, &fd, e);
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = err_sys(e, errno, "lseek");
	if (rc == 0)
		rc = reg_put_blob(c, dst, digest, size, source_fd, &fd, e);
	close(fd);
	return rc;
}

static int copy_image(struct reg_client *c, const struct image_ref *src,
		      const struct image_ref *dst, struct err *e)
{
	struct reg_manifest m;
	if (reg_resolve(c, src, &m, e) < 0)
		return -1;
	int rc = 0;
	json_t *j = json_loadb((const char *)m.body, m.len, 0, NULL);
	json_t *cfg = json_object_get(j, "config"), *layers = json_object_get(j, "layers"), *d;
	size_t i;
	if (!json_is_object(cfg) || !json_is_array(layers))
		rc = err_set(e, EBADMSG, "manifest without config or layers");
	for (i = 0; rc == 0 && i <= json_array_size(layers); i++) {
		d = i == 0 ? cfg : json_array_get(layers, i - 1);
		const char *dg = json_string_value(json_object_get(d, "digest"));
		json_t *sz = json_object_get(d, "size");
		if (!dg || !json_is_integer(sz))
			rc = err_set(e, EBADMSG, "descriptor without digest or size");
		else
			rc = copy_blob(c, src, dst, dg, json_integer_value(sz), e);
	}
	if (rc == 0)
		rc = reg_put_manifest(c, dst, m.media_type, m.body, m.len, e);
	if (rc == 0)
		printf("%s %s %zu\n", m.media_type, m.digest, m.len);
	json_decref(j);
	free(m.body);
	return rc;
}

static int run(struct reg_client *c, int argc, char **argv, const char *body_file, struct err *e)
{
	const char *cmd = argv[0];
	struct image_ref r, r2;
	if (!strcmp(cmd, "platform")) {
		printf("%s\n", reg_client_platform(c));
		return 0;
	}
	if (argc < 2)
		return err_set(e, EINVAL, "missing REF");
	if (image_ref_parse(argv[1], NULL, &r, e) < 0)
		return -1;
	if (!strcmp(cmd, "resolve") || !strcmp(cmd, "manifest")) {
		struct reg_manifest m;
		int rc = !strcmp(cmd, "resolve") ? reg_resolve(c, &r, &m, e)
						 : reg_get_manifest(c, &r, &m, e);
		if (rc < 0)
			return -1;
		rc = print_manifest(&m, body_file, e);
		free(m.body);
		return rc;
	}
	if (!strcmp(cmd, "blob") && argc == 5) {
		int fd = 1;
		return reg_get_blob(c, &r, argv[2], strtoll(argv[3], NULL, 10),
				    strtoll(argv[4], NULL, 10), sink_fd, &fd, e);
	}
	if (!strcmp(cmd, "has-blob") && argc == 3) {
		int has = reg_has_blob(c, &r, argv[2], e);
		if (has < 0)
			return -1;
		printf("%d\n", has);
		return 0;
	}
	if (!strcmp(cmd, "put-blob") && argc == 3) {
		char *data;
		size_t len;
		char d[72];
		/* Hashing needs the whole file; test blobs are small, so read it once. */
		int fd = open(argv[2], O_RDONLY);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0) {
			if (fd >= 0)
				close(fd);
			return err_sys(e, errno, "%s", argv[2]);
		}
		close(fd);
		if (read_file(argv[2], &data, &len, e) < 0)
			return -1;
		reg_digest(data, len, d);
		free(data);
		fd = open(argv[2], O_RDONLY);
		if (fd < 0)
			return err_sys(e, errno, "%s", argv[2]);
		int rc = reg_put_blob(c, &r, d, (int64_t)len, source_fd, &fd, e);
		close(fd);
		if (rc == 0)
			printf("%s\n", d);
		return rc;
	}
	if (!strcmp(cmd, "put-manifest") && argc == 4) {
		char *data;
		size_t len;
		char d[72];
		if (read_file(argv[3], &data, &len, e) < 0)
			return -1;
		reg_digest(data, len, d);
		int rc = reg_put_manifest(c, &r, argv[2], data, len, e);
		free(data);
		if (rc == 0)
			printf("%s\n", d);
		return rc;
	}
	if (!strcmp(cmd, "copy") && argc == 3) {
		if (image_ref_parse(argv[2], NULL, &r2, e) < 0)
			return -1;
		return copy_image(c, &r, &r2, e);
	}
	return err_set(e, EINVAL, "unknown command or wrong arguments: %s", cmd);
}

/* "host=user:pass" -> cred pointing into s (modified). */
static int parse_cred(char *s, struct reg_cred *cr)
{
	char *eq = strchr(s, '='), *colon = eq ? strchr(eq + 1, ':') : NULL;
	if (!eq || !colon)
		return -1;
	*eq = *colon = '\0';
	cr->host = s;
	cr->user = eq + 1;
	cr->pass = colon + 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct reg_opts o = {.plain_http_hosts = getenv("REG_PLAIN_HTTP")};
	struct reg_cred creds[MAX_CREDS];
	const char *body_file = NULL;
	long repeat = 1;
	int opt;
	char *envcreds = getenv("REG_CREDS") ? strdup(getenv("REG_CREDS")) : NULL;
	for (char *save = NULL, *t = envcreds ? strtok_r(envcreds, ",", &save) : NULL;
	     t && o.ncreds < MAX_CREDS; t = strtok_r(NULL, ",", &save))
		if (parse_cred(t, &creds[o.ncreds]) == 0)
			o.ncreds++;
	while ((opt = getopt(argc, argv, "+p:c:a:o:v:C:s:t:n:b:")) != -1) {
		switch (opt) {
		case 'p':
			o.plain_http_hosts = optarg;
			break;
		case 'c':
			if (o.ncreds == MAX_CREDS || parse_cred(optarg, &creds[o.ncreds]) < 0)
				return usage();
			o.ncreds++;
			break;
		case 'a':
			o.arch = optarg;
			break;
		case 'o':
			o.os = optarg;
			break;
		case 'v':
			o.variant = optarg;
			break;
		case 'C':
			o.ca_file = optarg;
			break;
		case 's':
			o.stall_timeout_s = atol(optarg);
			break;
		case 't':
			o.connect_timeout_ms = atol(optarg);
			break;
		case 'n':
			repeat = atol(optarg);
			break;
		case 'b':
			body_file = optarg;
			break;
		default:
			free(envcreds);
			return usage();
		}
	}
	if (optind >= argc) {
		free(envcreds);
		return usage();
	}
	o.creds = creds;
	struct err e;
	err_clear(&e);
	struct reg_client *c = reg_client_new(&o, &e);
	int rc = c ? 0 : -1;
	for (long i = 0; rc == 0 && i < repeat; i++)
		rc = run(c, argc - optind, argv + optind, body_file, &e);
	reg_client_free(c);
	free(envcreds);
	if (rc < 0)
		return fail(&e);
	return fflush(stdout) == 0 ? 0 : 1;
}
