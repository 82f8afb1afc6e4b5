/* Unit tests for jail/filename: names in `files` and `filestodelete`. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filename.h"

/* Accepted, and normalised to `want`. */
static void ok(const char *name, const char *want)
{
	const char *norm = NULL;
	size_t normlen = 0;
	struct err e;
	err_clear(&e);
	if (filename_check(name, strlen(name), &norm, &normlen, &e) != 0)
		fail_msg("'%s' refused: %s", name, e.msg);
	assert_int_equal(normlen, strlen(want));
	assert_memory_equal(norm, want, normlen);
	/* norm points inside the caller's buffer */
	assert_true(norm >= name && norm + normlen == name + strlen(name));
}

static void bad_n(const char *name, size_t len, const char *why)
{
	const char *norm = (const char *)0x1;
	size_t normlen = 77;
	struct err e;
	err_clear(&e);
	if (filename_check(name, len, &norm, &normlen, &e) != -1)
		fail_msg("'%.*s' accepted", (int)len, name);
	assert_int_equal(e.code, EINVAL);
	assert_true(strncmp(e.msg, "Incorrect file name", 19) == 0);
	if (!strstr(e.msg, why))
		fail_msg("message '%s' lacks '%s'", e.msg, why);
	/* outputs untouched on failure */
	assert_true(norm == (const char *)0x1);
	assert_int_equal(normlen, 77);
}

static void bad(const char *name, const char *why)
{
	bad_n(name, strlen(name), why);
}

static void test_plain_names(void **state)
{
	ok("a.c", "a.c");
	ok("Main.java", "Main.java");
	ok("vpl_run.sh", "vpl_run.sh");
	ok("src/Main.java", "src/Main.java");
	ok("vpl_evaluation_tests/pass-ok-10/a.c", "vpl_evaluation_tests/pass-ok-10/a.c");
	ok(".hidden", ".hidden");
	ok("..a", "..a");
	ok("a..b", "a..b");
	ok("...", "...");
	ok("x.b64", "x.b64");
	ok("-dash", "-dash");
}

static void test_leading_prefix_skipped(void **state)
{
	ok("/a.c", "a.c");
	ok("./a.c", "a.c");
	ok("/dir/a.c", "dir/a.c");
	ok("./dir/a.c", "dir/a.c");
}

static void test_only_one_prefix_skipped(void **state)
{
	bad("//a", "empty path component");
	bad("/./a", "'.' and '..'");
	bad("././a", "'.' and '..'");
	bad(".//a", "empty path component");
	bad("/", "empty name");
	bad("./", "empty name");
	bad(".", "'.' and '..'");
}

static void test_empty(void **state)
{
	struct err e;
	assert_int_equal(filename_check("", 0, NULL, NULL, &e), -1);
	assert_string_equal(e.msg, "Incorrect file name '': empty name");
	assert_int_equal(filename_check(NULL, 0, NULL, NULL, &e), -1);
	assert_int_equal(e.code, EINVAL);
}

static void test_empty_components(void **state)
{
	bad("a/", "empty path component");
	bad("a//b", "empty path component");
	bad("a/b/", "empty path component");
}

static void test_dot_components(void **state)
{
	bad("..", "'.' and '..'");
	bad("a/../b", "'.' and '..'");
	bad("../a", "'.' and '..'");
	bad("a/..", "'.' and '..'");
	bad("a/./b", "'.' and '..'");
	bad("/..", "'.' and '..'");
	bad("./..", "'.' and '..'");
}

static void test_spaces(void **state)
{
	ok("my file.c", "my file.c");
	ok("dir with spaces/a b.txt", "dir with spaces/a b.txt");
	bad(" a.c", "leading or trailing space");
	bad("a.c ", "leading or trailing space");
	bad("dir /a.c", "leading or trailing space");
	bad("dir/ a.c", "leading or trailing space");
	bad(" ", "leading or trailing space");
}

static void test_non_ascii_accepted(void **state)
{
	ok("\303\261and\303\272.c", "\303\261and\303\272.c"); /* ñandú.c */
	ok("\xe6\x97\xa5\xe6\x9c\xac/\xe8\xaa\x9e.txt",
	   "\xe6\x97\xa5\xe6\x9c\xac/\xe8\xaa\x9e.txt"); /* 日本/語.txt */
	ok("caf\xc3\xa9 cr\xc3\xa8me.py", "caf\xc3\xa9 cr\xc3\xa8me.py");
	ok("\x80\xff", "\x80\xff");
}

static void test_allowed_punctuation(void **state)
{
	static const char allowed[] = "?*<>|&%#@!()[]{}~=,-$;+:";
	for (const char *p = allowed; *p; p++) {
		char name[8];
		snprintf(name, sizeof name, "a%cb", *p);
		ok(name, name);
	}
	ok("?*<>|&%#@!()[]{}~=,", "?*<>|&%#@!()[]{}~=,");
}

static void test_forbidden_characters(void **state)
{
	static const char forbidden[] = "\"'\\^`";
	for (const char *p = forbidden; *p; p++) {
		char name[8];
		snprintf(name, sizeof name, "a%cb", *p);
		bad(name, "forbidden character");
		snprintf(name, sizeof name, "d/%c", *p);
		bad(name, "forbidden character");
	}
}

static void test_control_characters(void **state)
{
	for (int c = 1; c < 0x20; c++) {
		char name[8];
		snprintf(name, sizeof name, "a%cb", c);
		bad(name, "control character");
	}
	bad("a\x7f", "control character");
	bad("a\tb", "control character");
	bad("a\nb", "control character");
}

static void test_embedded_nul(void **state)
{
	bad_n("a\0b", 3, "NUL byte");
	bad_n("\0", 1, "NUL byte");
	bad_n("dir/\0", 5, "NUL byte");
}

static void test_not_nul_terminated(void **state)
{
	const char buf[] = {'a', '.', 'c', '"', '\\'};
	const char *norm;
	size_t normlen;
	assert_int_equal(filename_check(buf, 3, &norm, &normlen, NULL), 0);
	assert_ptr_equal(norm, buf);
	assert_int_equal(normlen, 3);
	/* the same bytes with the forbidden tail are refused */
	assert_int_equal(filename_check(buf, 5, &norm, &normlen, NULL), -1);
}

static void test_component_length(void **state)
{
	char name[300];
	memset(name, 'c', 128);
	name[128] = '\0';
	ok(name, name);
	memset(name, 'c', 129);
	name[129] = '\0';
	bad(name, "longer than 128");
	/* in the middle of a path too */
	memcpy(name, "d/", 2);
	memset(name + 2, 'c', 129);
	memcpy(name + 131, "/x", 3);
	bad(name, "longer than 128");
	/* the limit counts bytes: 65 two-byte characters are 130 bytes, too many */
	for (int i = 0; i < 65; i++)
		memcpy(name + 2 * i, "\xc3\xa9", 2);
	name[130] = '\0';
	bad(name, "longer than 128");
}

static void test_path_length(void **state)
{
	char name[300];
	/* 128 + '/' + 127 = 256 bytes: accepted */
	memset(name, 'a', 128);
	name[128] = '/';
	memset(name + 129, 'b', 127);
	name[256] = '\0';
	assert_int_equal(strlen(name), 256);
	ok(name, name);
	/* 257 bytes: refused */
	name[256] = 'b';
	name[257] = '\0';
	bad(name, "path longer than 256");
	/* The limit is on the name as received, prefix included. */
	name[0] = '/';
	memset(name + 1, 'a', 127);
	name[128] = '/';
	memset(name + 129, 'b', 127);
	name[256] = '\0';
	ok(name, name + 1);
	name[256] = 'b';
	name[257] = '\0';
	bad(name, "path longer than 256");
}

static void test_message_sanitised_and_truncated(void **state)
{
	struct err e;
	assert_int_equal(filename_check("a\x01../", 5, NULL, NULL, &e), -1);
	assert_string_equal(e.msg, "Incorrect file name 'a\\x01../': control character");
	char name[200];
	memset(name, 'z', 150);
	name[150] = '\0';
	assert_int_equal(filename_check(name, 150, NULL, NULL, &e), -1);
	assert_non_null(strstr(e.msg, "zzz...': path component longer than 128 bytes"));
	assert_true(strlen(e.msg) < 120);
}

static void test_null_outputs(void **state)
{
	assert_int_equal(filename_check("/a/b", 4, NULL, NULL, NULL), 0);
	size_t normlen = 0;
	assert_int_equal(filename_check("./a/b", 5, NULL, &normlen, NULL), 0);
	assert_int_equal(normlen, 3);
	const char *norm = NULL;
	assert_int_equal(filename_check("./a/b", 5, &norm, NULL, NULL), 0);
	assert_string_equal(norm, "a/b");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_plain_names),
	    cmocka_unit_test(test_leading_prefix_skipped),
	    cmocka_unit_test(test_only_one_prefix_skipped),
	    cmocka_unit_test(test_empty),
	    cmocka_unit_test(test_empty_components),
	    cmocka_unit_test(test_dot_components),
	    cmocka_unit_test(test_spaces),
	    cmocka_unit_test(test_non_ascii_accepted),
	    cmocka_unit_test(test_allowed_punctuation),
	    cmocka_unit_test(test_forbidden_characters),
	    cmocka_unit_test(test_control_characters),
	    cmocka_unit_test(test_embedded_nul),
	    cmocka_unit_test(test_not_nul_terminated),
	    cmocka_unit_test(test_component_length),
	    cmocka_unit_test(test_path_length),
	    cmocka_unit_test(test_message_sanitised_and_truncated),
	    cmocka_unit_test(test_null_outputs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
