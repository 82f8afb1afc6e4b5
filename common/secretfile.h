/*
 * secretfile.h - reading a shared secret (proxy-to-worker authentication, route codes) from a
 * file, so secrets come from Docker/Kubernetes secrets or a root-only file and never sit in a
 * config file, a command line or the environment of anything we start.
 *
 * Contract: secret_file_read() returns the file's first line (trailing CR/LF and blanks
 * removed) in a malloc'ed string the caller owns and must wipe with secret_free(). The secret
 * must be between min_len and SECRET_MAX_LEN bytes and hold no control characters. A file
 * readable by group or others is accepted with a warning (containers often mount secrets
 * 0444). Error messages name the file, never its contents.
 */
#ifndef VC_SECRETFILE_H
#define VC_SECRETFILE_H

#include <stddef.h>

#include "err.h"

#define SECRET_MAX_LEN 1024

int secret_file_read(const char *path, size_t min_len, char **out, struct err *err);
/* Overwrites and frees; NULL is fine. */
void secret_free(char *s);
/* Compares a received value with the secret in time independent of where they differ. */
int secret_equal(const char *secret, const char *got, size_t got_len);

#endif
