/*
 * taskfiles.h - the `files` of a request, validated and prepared for staging.
 *
 * From a parsed request (request, directrun, update) this builds the list of
 * files to write into the task's work directory, applying the protocol's
 * rules (vpl-jail-protocol.md §3.1): names checked by filename_check() (a
 * leading "/" or "./" skipped), fileencoding 1 = base64 (decoded, a ".b64"
 * suffix dropped), CR normalisation of "*.sh" scripts, mode 0700 for "*.sh"
 * and 0600 otherwise, and the `filestodelete` mark for names that are also
 * in `files`.
 *
 * Ownership: the struct owns every name and content it holds. Content that
 * needs no transformation is borrowed from the request's jansson tree, which
 * the struct keeps a reference on (so a 128 MiB body is not copied again);
 * taskfiles_free() drops both.
 */
#ifndef VC_TASKFILES_H
#define VC_TASKFILES_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "rpc.h"

struct task_file {
	char *name; /* normalised relative path, owned */
	const char *data;
	size_t len;
	char *owned_data; /* non-NULL when data was transformed */
	unsigned mode;
	bool delete_after_compile;
};

struct task_files {
	struct task_file *v;
	size_t n;
	size_t total_bytes;
	json_t *keep; /* reference on the tree borrowed contents point into */
};

/* Errors carry the 400 detail: "Incorrect file name", "Bad file content ...". */
int taskfiles_from_request(const struct rpc_request *req, struct task_files *out, struct err *err);
const struct task_file *taskfiles_find(const struct task_files *f, const char *name);
/* Drops the file NAME (not staged at all); returns whether it was there. */
bool taskfiles_remove(struct task_files *f, const char *name);
void taskfiles_free(struct task_files *f);

#endif
