#include "secretfile.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

int secret_file_read(const char *path, size_t min_len, char **out, struct err *err)
{
	*out = NULL;
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_sys(err, errno, "opening secret file %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return err_sys(err, errno, "reading secret file %s", path);
	if (!S_ISREG(st.st_mode))
		return err_set(err, EINVAL, "secret file %s is not a regular file", path);
	if (st.st_mode & 077)
		log_warn("secret file %s is readable by group or others: chmod 600 it unless a "
			 "container runtime mounts it that way",
			 path);
	char b[SECRET_MAX_LEN + 2];
	size_t n = 0;
	while (n < sizeof b) {
		ssize_t r = read(fd, b + n, sizeof b - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			OPENSSL_cleanse(b, sizeof b);
			return err_sys(err, errno, "reading secret file %s", path);
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	size_t len = 0;
	while (len < n && b[len] != '\n' && b[len] != '\r')
		len++;
	while (len > 0 && (b[len - 1] == ' ' || b[len - 1] == '\t'))
		len--;
	int rc = 0;
	if (len > SECRET_MAX_LEN)
		rc = err_set(err, EINVAL, "secret in %s is longer than %d bytes", path,
			     SECRET_MAX_LEN);
	else if (len < min_len)
		rc = err_set(err, EINVAL, "secret in %s is shorter than %zu bytes", path, min_len);
	for (size_t i = 0; rc == 0 && i < len; i++)
		if ((unsigned char)b[i] < 0x20 || b[i] == 0x7f)
			rc = err_set(err, EINVAL, "secret in %s holds a control character", path);
	if (rc == 0) {
		*out = malloc(len + 1);
		if (!*out)
			rc = err_sys(err, ENOMEM, "reading secret file %s", path);
		else {
			memcpy(*out, b, len);
			(*out)[len] = '\0';
		}
	}
	OPENSSL_cleanse(b, sizeof b);
	return rc;
}

void secret_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

int secret_equal(const char *secret, const char *got, size_t got_len)
{
	size_t n = strlen(secret);
	/* Length is not secret (it is fixed per deployment); the bytes are. */
	return got_len == n && CRYPTO_memcmp(secret, got, n) == 0;
}
