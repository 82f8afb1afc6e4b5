/* Unit tests for common/cfgfile: the NAME=VALUE reader and value parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfgfile.h"

/* ---- collecting callback ---- */

#define MAXE 32
struct seen {
	int n;
	char name[MAXE][CFG_MAX_NAME + 1];
	char value[MAXE][CFG_MAX_LINE + 1];
	int line[MAXE];
	char file[MAXE][64];
	int fail_at; /* entry index whose callback fails; -1 = never */
};

static int collect(const char *name, const char *value, const char *file, int line, void *ctx,
		   struct err *err)
{
	struct seen *s = ctx;
	if (s->n == s->fail_at)
		return err_set(err, EINVAL, "%s: refused by callback", name);
	assert_true(s->n < MAXE);
	snprintf(s->name[s->n], sizeof s->name[0], "%s", name);
	snprintf(s->value[s->n], sizeof s->value[0], "%s", value);
	snprintf(s->file[s->n], sizeof s->file[0], "%s", file);
	s->line[s->n] = line;
	s->n++;
	return 0;
}

static struct seen *fresh(void)
{
	static struct seen s;
	memset(&s, 0, sizeof s);
	s.fail_at = -1;
	return &s;
}

static int parse_str(const char *text, struct seen *s, struct err *err)
{
	return cfg_parse_buffer(text, strlen(text), "t.conf", collect, s, err);
}

/* Expects a syntax error whose message is exactly `msg`. */
static void expect_error(const char *text, const char *msg)
{
	struct seen *s = fresh();
	struct err e;
	err_clear(&e);
	assert_int_equal(parse_str(text, s, &e), -1);
	assert_string_equal(e.msg, msg);
	assert_int_not_equal(e.code, 0);
}

/* ---- reader ---- */

static void test_blank_and_comments(void **state)
{
	struct seen *s = fresh();
	struct err e;
	const char *t = "\n"
			"# a comment\n"
			"   # indented comment\n"
			"\t\n"
			"   \n"
			"A=1\n"
			"#B=2\n";
	assert_int_equal(parse_str(t, s, &e), 0);
	assert_int_equal(s->n, 1);
	assert_string_equal(s->name[0], "A");
	assert_string_equal(s->value[0], "1");
	assert_int_equal(s->line[0], 6);
	assert_string_equal(s->file[0], "t.conf");
}

static void test_empty_input(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(cfg_parse_buffer("", 0, "t.conf", collect, s, &e), 0);
	assert_int_equal(s->n, 0);
	assert_int_equal(parse_str("\n\n# only comments", s, &e), 0);
	assert_int_equal(s->n, 0);
}

static void test_names_uppercased(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str("maxTime=5\nsecure_port=1\nA1_b2=x\n", s, &e), 0);
	assert_int_equal(s->n, 3);
	assert_string_equal(s->name[0], "MAXTIME");
	assert_string_equal(s->name[1], "SECURE_PORT");
	assert_string_equal(s->name[2], "A1_B2");
}

static void test_blanks_around_equal(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str("  A = 1\n\tB\t=\t2\t\nC= 3\nD =4\n", s, &e), 0);
	assert_int_equal(s->n, 4);
	assert_string_equal(s->name[0], "A");
	assert_string_equal(s->value[0], "1");
	assert_string_equal(s->name[1], "B");
	assert_string_equal(s->value[1], "2");
	assert_string_equal(s->value[2], "3");
	assert_string_equal(s->value[3], "4");
}

static void test_value_trim_and_comment(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str("A=64 Mb   # the cap\nB=x#y\nC=a b  c  \nD=#all comment\n"
				   "E=\nF=   \n",
				   s, &e),
			 0);
	assert_int_equal(s->n, 6);
	assert_string_equal(s->value[0], "64 Mb");
	assert_string_equal(s->value[1], "x");
	assert_string_equal(s->value[2], "a b  c"); /* inner blanks are kept */
	assert_string_equal(s->value[3], "");
	assert_string_equal(s->value[4], "");
	assert_string_equal(s->value[5], "");
}

static void test_quotes(void **state)
{
	struct seen *s = fresh();
	struct err e;
	const char *t = "A=\"x # y\"\n"
			"B='  padded  '\n"
			"C=\"\"\n"
			"D=\"q\"   # comment after quotes\n"
			"E=it's\n"
			"F='he said \"hi\"'\n"
			"G=\"a'b\"\n"
			"H=a\"b\"\n"
			"I=  \"spaced\"  \n";
	assert_int_equal(parse_str(t, s, &e), 0);
	assert_int_equal(s->n, 9);
	assert_string_equal(s->value[0], "x # y");
	assert_string_equal(s->value[1], "  padded  ");
	assert_string_equal(s->value[2], "");
	assert_string_equal(s->value[3], "q");
	assert_string_equal(s->value[4], "it's"); /* unquoted: quotes are literal */
	assert_string_equal(s->value[5], "he said \"hi\"");
	assert_string_equal(s->value[6], "a'b");
	assert_string_equal(s->value[7], "a\"b\"");
	assert_string_equal(s->value[8], "spaced");
}

static void test_only_one_pair_of_quotes_removed(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str("A=\"'x'\"\n", s, &e), 0);
	assert_string_equal(s->value[0], "'x'");
}

static void test_crlf(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str("# c\r\nA=1\r\nB = \"two\" \r\n\r\nC=3 # x\r\n", s, &e), 0);
	assert_int_equal(s->n, 3);
	assert_string_equal(s->value[0], "1");
	assert_string_equal(s->value[1], "two");
	assert_string_equal(s->value[2], "3");
	assert_int_equal(s->line[2], 5);
}

static void test_last_line_without_newline(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str("A=1\nB=2", s, &e), 0);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->value[1], "2");
	assert_int_equal(s->line[1], 2);
}

static void test_utf8_bom_skipped(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str("\357\273\277A=1\n", s, &e), 0); /* BOM, then A=1 */
	assert_int_equal(s->n, 1);
	assert_string_equal(s->name[0], "A");
}

static void test_value_may_hold_equal_and_non_ascii(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str("A=b=c\nB=\303\261and\303\272\n", s, &e), 0);
	assert_string_equal(s->value[0], "b=c");
	assert_string_equal(s->value[1], "\303\261and\303\272"); /* ñandú */
}

static void test_syntax_errors(void **state)
{
	expect_error("A=1\n\nJUSTTEXT\n", "t.conf:3: JUSTTEXT: expected '=' after the name");
	expect_error("=value\n", "t.conf:1: expected NAME=VALUE");
	expect_error("  -x=1\n", "t.conf:1: expected NAME=VALUE");
	expect_error("A-B=1\n", "t.conf:1: A: invalid character '-' in name");
	expect_error("A B=1\n", "t.conf:1: A: expected '=' after the name");
	expect_error("A=\"abc\n", "t.conf:1: A: unterminated \" quote");
	expect_error("A='abc\n", "t.conf:1: A: unterminated ' quote");
	expect_error("A=\"a\"b\n", "t.conf:1: A: text after the closing quote");
	expect_error("A=\x01\n", "t.conf:1: control character 0x01 in line");
	expect_error("A=b\x7f\n", "t.conf:1: control character 0x7f in line");
	expect_error("A=\rB\n", "t.conf:1: control character 0x0d in line");
	expect_error("A\xc3\xa9=1\n", "t.conf:1: A: invalid byte 0xc3 in name");
}

static void test_nul_byte(void **state)
{
	struct seen *s = fresh();
	struct err e;
	const char t[] = "A=1\nB=x\0y\n";
	assert_int_equal(cfg_parse_buffer(t, sizeof t - 1, "t.conf", collect, s, &e), -1);
	assert_string_equal(e.msg, "t.conf:2: NUL byte in line");
	assert_int_equal(s->n, 1); /* entries before the error were delivered */
}

static void test_name_length(void **state)
{
	char t[200];
	memset(t, 'N', CFG_MAX_NAME);
	strcpy(t + CFG_MAX_NAME, "=1\n");
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str(t, s, &e), 0);
	assert_int_equal(strlen(s->name[0]), CFG_MAX_NAME);

	memset(t, 'N', CFG_MAX_NAME + 1);
	strcpy(t + CFG_MAX_NAME + 1, "=1\n");
	expect_error(t, "t.conf:1: name longer than 64 characters");
}

static void test_line_length(void **state)
{
	char *t = malloc(CFG_MAX_LINE + 10);
	assert_non_null(t);
	/* exactly CFG_MAX_LINE bytes (CR not counted) is fine */
	memset(t, 'v', CFG_MAX_LINE);
	memcpy(t, "A=", 2);
	strcpy(t + CFG_MAX_LINE, "\r\n");
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(parse_str(t, s, &e), 0);
	assert_int_equal(strlen(s->value[0]), CFG_MAX_LINE - 2);
	memset(t, 'v', CFG_MAX_LINE + 1);
	memcpy(t, "A=", 2);
	strcpy(t + CFG_MAX_LINE + 1, "\n");
	expect_error(t, "t.conf:1: line longer than 4096 bytes");
	free(t);
}

static void test_file_too_large(void **state)
{
	size_t n = CFG_MAX_FILE + 1;
	char *t = malloc(n);
	assert_non_null(t);
	memset(t, '\n', n);
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(cfg_parse_buffer(t, n, "big.conf", collect, s, &e), -1);
	assert_int_equal(e.code, EFBIG);
	assert_non_null(strstr(e.msg, "big.conf"));
	assert_int_equal(cfg_parse_buffer(t, n - 1, "big.conf", collect, s, &e), 0);
	free(t);
}

static void test_callback_error_stops_with_location(void **state)
{
	struct seen *s = fresh();
	s->fail_at = 1;
	struct err e;
	assert_int_equal(parse_str("A=1\n# c\nB=2\nC=3\n", s, &e), -1);
	assert_string_equal(e.msg, "t.conf:3: B: refused by callback");
	assert_int_equal(e.code, EINVAL);
	assert_int_equal(s->n, 1); /* C never delivered */
}

static void test_null_err_tolerated(void **state)
{
	struct seen *s = fresh();
	assert_int_equal(parse_str("nonsense\n", s, NULL), -1);
	long long v = 5;
	assert_int_equal(cfg_parse_size("x", &v, NULL), -1);
	assert_int_equal(v, 5);
}

/* ---- files ---- */

static char *write_temp(const char *content, size_t len)
{
	char *path = strdup("/tmp/test_cfgfile.XXXXXX");
	assert_non_null(path);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, len), (ssize_t)len);
	close(fd);
	return path;
}

static void test_parse_file(void **state)
{
	const char t[] = "# sample\nPORT = 8080 # plain\nurlpath=\"/secret\"\r\n";
	char *path = write_temp(t, sizeof t - 1);
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(cfg_parse_file(path, collect, s, &e), 0);
	assert_int_equal(s->n, 2);
	assert_string_equal(s->name[0], "PORT");
	assert_string_equal(s->value[0], "8080");
	assert_string_equal(s->name[1], "URLPATH");
	assert_string_equal(s->value[1], "/secret");
	assert_int_equal(s->line[1], 3);

	/* Errors carry the real path and line. */
	s = fresh();
	s->fail_at = 0;
	assert_int_equal(cfg_parse_file(path, collect, s, &e), -1);
	char want[256];
	snprintf(want, sizeof want, "%s:2: PORT: refused by callback", path);
	assert_string_equal(e.msg, want);
	unlink(path);
	free(path);
}

static void test_parse_empty_file(void **state)
{
	char *path = write_temp("", 0);
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(cfg_parse_file(path, collect, s, &e), 0);
	assert_int_equal(s->n, 0);
	unlink(path);
	free(path);
}

static void test_parse_file_missing(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(cfg_parse_file("/nonexistent/dir/x.conf", collect, s, &e), -1);
	assert_int_equal(e.code, ENOENT);
	assert_non_null(strstr(e.msg, "/nonexistent/dir/x.conf: cannot open"));
}

static void test_parse_file_directory(void **state)
{
	struct seen *s = fresh();
	struct err e;
	assert_int_equal(cfg_parse_file("/tmp", collect, s, &e), -1);
	assert_string_equal(e.msg, "/tmp: not a regular file");
}

/* ---- sizes ---- */

static void expect_size(const char *s, long long want)
{
	long long v = -42;
	struct err e;
	err_clear(&e);
	if (cfg_parse_size(s, &v, &e) != 0)
		fail_msg("size '%s' refused: %s", s, e.msg);
	assert_int_equal(v, want);
}

static void expect_bad_size(const char *s, int code)
{
	long long v = -42;
	struct err e;
	err_clear(&e);
	assert_int_equal(cfg_parse_size(s, &v, &e), -1);
	assert_int_equal(v, -42); /* untouched */
	assert_int_equal(e.code, code);
	assert_true(e.msg[0] != '\0');
}

static void test_size_plain(void **state)
{
	expect_size("0", 0);
	expect_size("1", 1);
	expect_size("123456", 123456);
	expect_size("007", 7);
	expect_size("  42", 42);
	expect_size("42  ", 42);
	expect_size("9223372036854775807", LLONG_MAX);
}

static void test_size_units(void **state)
{
	expect_size("1K", 1024);
	expect_size("1k", 1024);
	expect_size("65M", 65LL << 20);
	expect_size("64 Mb", 64LL << 20);
	expect_size("2000 Mb", 2097152000LL);
	expect_size("1998 Mbytes", 1998LL << 20);
	expect_size("3g", 3LL << 30);
	expect_size("3 GB", 3LL << 30);
	expect_size("5\t \tK", 5 * 1024);
	expect_size("1 Kilo whatever follows", 1024);
	expect_size("0M", 0);
	expect_size("8589934591G", 8589934591LL << 30);
}

static void test_size_rejects(void **state)
{
	expect_bad_size("", EINVAL);
	expect_bad_size("   ", EINVAL);
	expect_bad_size("-1", ERANGE);
	expect_bad_size("-0", ERANGE);
	expect_bad_size("M", EINVAL);
	expect_bad_size("abc", EINVAL);
	expect_bad_size("+5", EINVAL);
	expect_bad_size("12x", EINVAL);
	expect_bad_size("12 bytes", EINVAL);
	expect_bad_size("1.5M", EINVAL);
	expect_bad_size("0x10", EINVAL);
	expect_bad_size("9223372036854775808", ERANGE);
	expect_bad_size("99999999999999999999999", ERANGE);
	expect_bad_size("8589934592G", ERANGE);
	expect_bad_size("9007199254740992K", ERANGE);
}

static void test_size_message_quotes_value(void **state)
{
	long long v;
	struct err e;
	assert_int_equal(cfg_parse_size("12x", &v, &e), -1);
	assert_non_null(strstr(e.msg, "'12x'"));
	assert_int_equal(cfg_parse_size("1\x01x", &v, &e), -1);
	assert_non_null(strstr(e.msg, "\\x01")); /* control bytes escaped */
}

/* ---- integers ---- */

static void test_int_ok(void **state)
{
	long long v = -1;
	assert_int_equal(cfg_parse_int("0", 0, 10, &v, NULL), 0);
	assert_int_equal(v, 0);
	assert_int_equal(cfg_parse_int("10", 0, 10, &v, NULL), 0);
	assert_int_equal(v, 10);
	assert_int_equal(cfg_parse_int("-5", -10, 10, &v, NULL), 0);
	assert_int_equal(v, -5);
	assert_int_equal(cfg_parse_int("007", 0, 10, &v, NULL), 0);
	assert_int_equal(v, 7);
	assert_int_equal(cfg_parse_int("9223372036854775807", 0, LLONG_MAX, &v, NULL), 0);
	assert_true(v == LLONG_MAX);
	assert_int_equal(cfg_parse_int("-9223372036854775807", LLONG_MIN, 0, &v, NULL), 0);
	assert_true(v == -LLONG_MAX);
}

static void test_int_rejects(void **state)
{
	static const char *const bad[] = {"",	 "-",  "+5",  " 5",  "5 ", "0x10",
					  "1e3", "5k", "1.0", "--1", "a",  "9223372036854775808"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long long v = 99;
		struct err e;
		err_clear(&e);
		if (cfg_parse_int(bad[i], LLONG_MIN, LLONG_MAX, &v, &e) != -1)
			fail_msg("'%s' accepted", bad[i]);
		assert_int_equal(v, 99);
		assert_true(e.msg[0] != '\0');
	}
}

static void test_int_bounds(void **state)
{
	long long v = 99;
	struct err e;
	assert_int_equal(cfg_parse_int("11", 0, 10, &v, &e), -1);
	assert_string_equal(e.msg, "11 is out of range [0, 10]");
	assert_int_equal(e.code, ERANGE);
	assert_int_equal(cfg_parse_int("-1", 0, 10, &v, &e), -1);
	assert_string_equal(e.msg, "-1 is out of range [0, 10]");
	assert_int_equal(cfg_parse_int("abc", 0, 10, &v, &e), -1);
	assert_string_equal(e.msg, "'abc' is not an integer");
	assert_int_equal(v, 99);
}

/* ---- booleans ---- */

static void test_bool(void **state)
{
	static const char *const yes[] = {"true", "TRUE", "True", "yes", "YES", "on", "On", "1"};
	static const char *const no[] = {"false", "FALSE", "no", "No", "off", "OFF", "0"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		bool b = false;
		assert_int_equal(cfg_parse_bool(yes[i], &b, NULL), 0);
		assert_true(b);
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		bool b = true;
		assert_int_equal(cfg_parse_bool(no[i], &b, NULL), 0);
		assert_false(b);
	}
	static const char *const bad[] = {"", "2", "y", "n", "truee", " true", "yes ", "-1"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		bool b = true;
		struct err e;
		err_clear(&e);
		if (cfg_parse_bool(bad[i], &b, &e) != -1)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(b);
		assert_non_null(strstr(e.msg, "not a boolean"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_blank_and_comments),
	    cmocka_unit_test(test_empty_input),
	    cmocka_unit_test(test_names_uppercased),
	    cmocka_unit_test(test_blanks_around_equal),
	    cmocka_unit_test(test_value_trim_and_comment),
	    cmocka_unit_test(test_quotes),
	    cmocka_unit_test(test_only_one_pair_of_quotes_removed),
	    cmocka_unit_test(test_crlf),
	    cmocka_unit_test(test_last_line_without_newline),
	    cmocka_unit_test(test_utf8_bom_skipped),
	    cmocka_unit_test(test_value_may_hold_equal_and_non_ascii),
	    cmocka_unit_test(test_syntax_errors),
	    cmocka_unit_test(test_nul_byte),
	    cmocka_unit_test(test_name_length),
	    cmocka_unit_test(test_line_length),
	    cmocka_unit_test(test_file_too_large),
	    cmocka_unit_test(test_callback_error_stops_with_location),
	    cmocka_unit_test(test_null_err_tolerated),
	    cmocka_unit_test(test_parse_file),
	    cmocka_unit_test(test_parse_empty_file),
	    cmocka_unit_test(test_parse_file_missing),
	    cmocka_unit_test(test_parse_file_directory),
	    cmocka_unit_test(test_size_plain),
	    cmocka_unit_test(test_size_units),
	    cmocka_unit_test(test_size_rejects),
	    cmocka_unit_test(test_size_message_quotes_value),
	    cmocka_unit_test(test_int_ok),
	    cmocka_unit_test(test_int_rejects),
	    cmocka_unit_test(test_int_bounds),
	    cmocka_unit_test(test_bool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
