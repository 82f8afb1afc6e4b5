/*
 * testdata.h - shared by the codec unit tests: reads a file of
 * tests/unit/data/, found from the repository root (the usual working
 * directory) or from the test binary in $(BUILD)/tests/. The caller frees
 * the result; a missing file fails the test.
 */
#ifndef VC_TESTDATA_H
#define VC_TESTDATA_H

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline char *read_data(const char *name, size_t *len)
{
	char exe[512] = "", path[1024];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = '\0';
	const char *dirs[] = {"tests/unit/data", NULL};
	char exedir[600];
	snprintf(exedir, sizeof exedir, "%s/../../tests/unit/data", dirname(exe));
	dirs[1] = exedir;
	for (size_t d = 0; d < 2; d++) {
		snprintf(path, sizeof path, "%s/%s", dirs[d], name);
		FILE *f = fopen(path, "rb");
		if (!f)
			continue;
		fseek(f, 0, SEEK_END);
		long sz = ftell(f);
		rewind(f);
		char *buf = malloc((size_t)sz + 1);
		assert_non_null(buf);
		assert_int_equal(fread(buf, 1, (size_t)sz, f), (size_t)sz);
		buf[sz] = '\0';
		fclose(f);
		*len = (size_t)sz;
		return buf;
	}
	fail_msg("test data %s not found", name);
	return NULL;
}

#endif
