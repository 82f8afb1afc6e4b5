/*
 * driver_main.c - replays inputs through a libFuzzer target without
 * libFuzzer: `fuzzdrv_X FILE...` calls LLVMFuzzerTestOneInput once per file.
 * Linked with tests/fuzz/fuzz_X.c into $(BUILD)/tests/fuzzdrv_X (see
 * mk/fuzzregress.mk) so that `make check` replays the seed corpora and
 * every past crash under the normal and the ASan+UBSan builds.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a target; libFuzzer calls it once before any input. */
__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Whole file in a buffer of exactly its size, so ASan sees overreads. */
static uint8_t *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	uint8_t *buf = NULL;
	long sz = -1;
	if (fseek(f, 0, SEEK_END) == 0 && (sz = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
		buf = malloc(sz ? (size_t)sz : 1);
	if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)sz;
	return buf;
}

int main(int argc, char **argv)
{
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		size_t len = 0;
		uint8_t *data = slurp(argv[i], &len);
		if (!data) {
			fprintf(stderr, "fuzzdrv: cannot read %s\n", argv[i]);
			return 2;
		}
		LLVMFuzzerTestOneInput(data, len);
		free(data);
	}
	return 0;
}
