/*
 * images_imageuser - a command line over jail/images/imageuser.c, for tests and for operators who
 * want to see which uid/gid a USER= of vplbdx.cfg gets in an image.
 *
 *   images_imageuser SOCKET NAMESPACE IMAGE USER   looks USER up in IMAGE's layers (containerd)
 *   images_imageuser --passwd FILE USER            the same on a passwd file (passwd_lookup)
 * Success: one line "uid gid home" on stdout, exit 0. Errors: "ERR <ENAME> <message>" on stdout,
 * exit 1; usage errors exit 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imageuser.h"

static const char *ename(int code)
{
	switch (code) {
	case ENOENT:
		return "ENOENT";
	case EPERM:
		return "EPERM";
	case EINVAL:
		return "EINVAL";
	case EBADMSG:
		return "EBADMSG";
	case EFBIG:
		return "EFBIG";
	case ENOMEM:
		return "ENOMEM";
	case ENOTSUP:
		return "ENOTSUP";
	case ETIMEDOUT:
		return "ETIMEDOUT";
	case EAGAIN:
		return "EAGAIN";
	case EIO:
		return "EIO";
	default:
		return "EOTHER";
	}
}

static int report(int rc, const struct image_user *u, const struct err *e)
{
	if (rc < 0) {
		printf("ERR %s %s\n", ename(e->code), e->msg);
		return 1;
	}
	printf("%u %u %s\n", u->uid, u->gid, u->home);
	return 0;
}

/* Reads at most IMAGE_USER_PASSWD_MAX + 1 bytes, so that a bigger file is refused as such. */
static int lookup_file(const char *path, const char *user, struct image_user *u, struct err *e)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return err_sys(e, errno, "%s", path);
	char *data = malloc(IMAGE_USER_PASSWD_MAX + 1);
	size_t n = data ? fread(data, 1, IMAGE_USER_PASSWD_MAX + 1, f) : 0;
	fclose(f);
	if (!data)
		return err_set(e, ENOMEM, "out of memory");
	int rc = passwd_lookup(data, n, user, u, e);
	free(data);
	return rc;
}

int main(int argc, char **argv)
{
	struct image_user u;
	struct err e = {0};
	if (argc == 4 && !strcmp(argv[1], "--passwd"))
		return report(lookup_file(argv[2], argv[3], &u, &e), &u, &e);
	if (argc != 5) {
		fprintf(stderr, "usage: images_imageuser SOCKET NAMESPACE IMAGE USER\n"
				"       images_imageuser --passwd FILE USER\n");
		return 2;
	}
	struct ctr_client *c = ctr_client_new(argv[1], argv[2], NULL, &e);
	if (!c)
		return report(-1, &u, &e);
	int rc = image_user_lookup(c, argv[3], argv[4], &u, &e);
	ctr_client_free(c);
	return report(rc, &u, &e);
}
