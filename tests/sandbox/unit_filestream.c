/*
 * unit_filestream.c - the worker/helper file stream format (jail/sandbox/filestream.c): the
 * encoder's output, that the parser accepts exactly what the encoder can produce, and the
 * path rules the helper applies to every staged name.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "filestream.h"

static void test_header_encodes(void **state)
{
	(void)state;
	char b[FILESTREAM_HEADER_MAX];
	assert_int_equal(filestream_header(b, sizeof b, 0600, 5, 3), 10);
	assert_string_equal(b, "F 600 5 3\n");
	assert_int_equal(
	    filestream_header(b, sizeof b, 0700, FILESTREAM_MAX_NAME, FILESTREAM_MAX_DATA),
	    (int)strlen("F 700 256 1073741824\n"));
	assert_string_equal(b, "F 700 256 1073741824\n");
	assert_int_equal(filestream_header(b, sizeof b, 0600, 1, 0), 10);
	assert_string_equal(b, "F 600 1 0\n");
}

static void test_header_rejects(void **state)
{
	(void)state;
	char b[FILESTREAM_HEADER_MAX];
	assert_int_equal(filestream_header(b, sizeof b, 0644, 1, 1), -1);
	assert_int_equal(filestream_header(b, sizeof b, 04700, 1, 1), -1); /* setuid */
	assert_int_equal(filestream_header(b, sizeof b, 0777, 1, 1), -1);
	assert_int_equal(filestream_header(b, sizeof b, 0600, 0, 1), -1);
	assert_int_equal(filestream_header(b, sizeof b, 0600, FILESTREAM_MAX_NAME + 1, 1), -1);
	assert_int_equal(filestream_header(b, sizeof b, 0600, 1, FILESTREAM_MAX_DATA + 1), -1);
	assert_int_equal(filestream_header(b, 5, 0600, 1, 1), -1); /* buffer too small */
	assert_int_equal(filestream_header(NULL, 0, 0600, 1, 1), -1);
}

static void test_end_marker(void **state)
{
	(void)state;
	char b[8];
	assert_int_equal(filestream_end(b, sizeof b), 2);
	assert_string_equal(b, "E\n");
	assert_int_equal(filestream_end(b, 2), -1);
}

/* Every header the encoder writes parses back to the same values. */
static void test_parse_roundtrip(void **state)
{
	(void)state;
	const struct filestream_hdr cases[] = {
	    {0600, 1, 0}, {0700, 256, FILESTREAM_MAX_DATA}, {0600, 17, 123456789}, {0700, 9, 10}};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char b[FILESTREAM_HEADER_MAX];
		int n = filestream_header(b, sizeof b, cases[i].mode, cases[i].namelen,
					  cases[i].datalen);
		assert_true(n > 1 && b[n - 1] == '\n');
		struct filestream_hdr h = {0};
		struct err e = {0};
		assert_int_equal(filestream_parse_header(b, (size_t)n - 1, &h, &e), 1);
		assert_int_equal(h.mode, cases[i].mode);
		assert_int_equal(h.namelen, cases[i].namelen);
		assert_int_equal(h.datalen, cases[i].datalen);
	}
	struct filestream_hdr h;
	assert_int_equal(filestream_parse_header("E", 1, &h, NULL), 0);
	assert_int_equal(filestream_parse_header("F 0700 3 4", 10, &h, NULL), 1);
	assert_int_equal(h.mode, 0700);
}

static void test_parse_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
	    "",
	    "F",
	    "F ",
	    "E ",
	    "EE",
	    "G 600 5 3",
	    "F 600",
	    "F 600 5",
	    "F 600 5 ",
	    "F 600 5 3 ",
	    "F 600 5 3 x",
	    "F  600 5 3",
	    "F 644 5 3",
	    "F 4700 5 3",
	    "F 00600 5 3",
	    "F 600 0 3",
	    "F 600 257 3",
	    "F 600 05 3",
	    "F 600 5 03",
	    "F 600 -5 3",
	    "F 600 +5 3",
	    "F 600 5 1073741825",
	    "F 600 5 99999999999",
	    "F 600 5 3x",
	    "F 600 5\t3",
	    "f 600 5 3",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct filestream_hdr h;
		struct err e = {0};
		int rc = filestream_parse_header(bad[i], strlen(bad[i]), &h, &e);
		if (rc != -1)
			fail_msg("accepted bad header \"%s\"", bad[i]);
		assert_int_equal(e.code, EINVAL);
		assert_true(e.msg[0] != '\0');
	}
	/* A NUL inside the line is not a separator. */
	struct filestream_hdr h;
	assert_int_equal(filestream_parse_header("F 600 5\0003", 9, &h, NULL), -1);
}

static void test_path_accepts(void **state)
{
	(void)state;
	static const char *const good[] = {
	    "a",   "a.txt",   "dir/sub/c.c", "..x",
	    "x..", ".hidden", "a b/c d",     "\xc3\xbc\xe5\x90\x8d.txt"};
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct err e = {0};
		if (filestream_check_path(good[i], strlen(good[i]), &e) != 0)
			fail_msg("rejected good path \"%s\": %s", good[i], e.msg);
	}
	/* The longest path: two components of 128 bytes would be 257, so 127 + '/' + 128. */
	char p[FILESTREAM_MAX_NAME + 1];
	memset(p, 'a', sizeof p);
	p[127] = '/';
	assert_int_equal(filestream_check_path(p, FILESTREAM_MAX_NAME, NULL), 0);
}

static void test_path_rejects(void **state)
{
	(void)state;
	static const struct {
		const char *p;
		size_t len;
	} bad[] = {
	    {"", 0},	 {"/abs", 4},  {"../x", 4}, {"a/../../b", 9}, {"a/./b", 5},
	    {".", 1},	 {"..", 2},    {"a//b", 4}, {"a/", 2},	      {"a\0b", 3},
	    {"a\nb", 3}, {"a\x7f", 2}, {"x/..", 4}, {"\t", 1},	      {"/", 1},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		struct err e = {0};
		if (filestream_check_path(bad[i].p, bad[i].len, &e) != -1)
			fail_msg("accepted bad path #%zu", i);
		assert_int_equal(e.code, EINVAL);
	}
	char p[FILESTREAM_MAX_NAME + 2];
	memset(p, 'a', sizeof p);
	assert_int_equal(filestream_check_path(p, FILESTREAM_MAX_NAME + 1, NULL), -1);
	/* 129-byte component inside a short enough path. */
	p[129] = '/';
	assert_int_equal(filestream_check_path(p, 140, NULL), -1);
	p[129] = 'a';
	p[128] = '/';
	assert_int_equal(filestream_check_path(p, 140, NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_encodes), cmocka_unit_test(test_header_rejects),
	    cmocka_unit_test(test_end_marker),	   cmocka_unit_test(test_parse_roundtrip),
	    cmocka_unit_test(test_parse_rejects),  cmocka_unit_test(test_path_accepts),
	    cmocka_unit_test(test_path_rejects),
	};
	return cmocka_run_group_tests_name("filestream", tests, NULL, NULL);
}
