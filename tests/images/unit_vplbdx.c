/* Unit tests for jail/images/vplbdx: the per-activity vplbdx.cfg. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vplbdx.h"

static struct vplbdx_cfg ok_n(const char *s, size_t n)
{
	struct vplbdx_cfg c;
	struct err e;
	err_clear(&e);
	if (vplbdx_parse(s, n, &c, &e) != 0)
		fail_msg("'%.*s' refused: %s", (int)n, s, e.msg);
	return c;
}

static struct vplbdx_cfg ok(const char *s)
{
	return ok_n(s, strlen(s));
}

static void bad_n(const char *s, size_t n, const char *why)
{
	struct vplbdx_cfg c;
	memset(&c, 0x55, sizeof c);
	struct err e;
	err_clear(&e);
	if (vplbdx_parse(s, n, &c, &e) != -1)
		fail_msg("'%.*s' accepted", (int)n, s);
	assert_int_equal(e.code, EINVAL);
	if (!strstr(e.msg, why))
		fail_msg("message '%s' lacks '%s'", e.msg, why);
	assert_int_equal(c.forcepull, 0x55555555); /* untouched on failure */
}

static void bad(const char *s, const char *why)
{
	bad_n(s, strlen(s), why);
}

static void test_basic(void **state)
{
	struct vplbdx_cfg c = ok("DOCKER=gblin/minivpljava\nUSER=student\nFORCEPULL\n");
	assert_string_equal(c.docker, "gblin/minivpljava");
	assert_string_equal(c.user, "student");
	assert_int_equal(c.forcepull, 1);

	c = ok("");
	assert_string_equal(c.docker, "");
	assert_string_equal(c.user, "");
	assert_int_equal(c.forcepull, 0);
	c = ok_n(NULL, 0);
	assert_string_equal(c.docker, "");

	c = ok("# comment\n\n   \n\t# indented comment\nDOCKER=x");
	assert_string_equal(c.docker, "x");
}

static void test_lenient_syntax(void **state)
{
	struct vplbdx_cfg c = ok("  docker = 127.0.0.1:5000/a/b:1  \r\nuser=\t_u-1\r\n");
	assert_string_equal(c.docker, "127.0.0.1:5000/a/b:1");
	assert_string_equal(c.user, "_u-1");
	c = ok("Docker=a\r\nForcePull\r\n");
	assert_int_equal(c.forcepull, 1);
	const char *yes[] = {"FORCEPULL=1", "FORCEPULL=true", "FORCEPULL=YES", "forcepull = on"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(ok(yes[i]).forcepull, 1);
	const char *no[] = {"FORCEPULL=0", "FORCEPULL=false", "FORCEPULL=No", "FORCEPULL=off"};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(ok(no[i]).forcepull, 0);
	/* the last FORCEPULL wins */
	assert_int_equal(ok("FORCEPULL\nFORCEPULL=0\n").forcepull, 0);
	/* a 32-character user name is the maximum */
	c = ok("USER=abcdefghijklmnopqrstuvwxyz012345");
	assert_int_equal(strlen(c.user), 32);
	/* no trailing newline, lone CR at end */
	assert_string_equal(ok("DOCKER=x\r").docker, "x");
}

static void test_errors(void **state)
{
	bad("FOO=bar", "line 1: unknown key 'FOO'");
	bad("\n\nIMAGE=x", "line 3: unknown key");
	bad("DOCKER", "line 1: missing '='");
	bad("DOCKER=", "line 1: DOCKER= needs an image name");
	bad("DOCKER=   \n", "needs an image name");
	bad("DOCKER=a\nDOCKER=b", "line 2: DOCKER given twice");
	bad("USER=a\nUSER=b", "line 2: USER given twice");
	bad("USER=root", "never run as root");
	bad("USER=0", "never run as root");
	bad("USER=", "USER must be");
	bad("USER=Root", "USER must be");
	bad("USER=1000", "USER must be");
	bad("USER=a b", "USER must be");
	bad("USER=a:b", "USER must be");
	bad("USER=../x", "USER must be");
	bad("USER=abcdefghijklmnopqrstuvwxyz0123456", "USER must be");
	bad("FORCEPULL=maybe", "FORCEPULL must be");
	bad("FORCEPULL=", "FORCEPULL must be");
	bad("just text", "expected KEY=value");
	bad("=x", "unknown key");
	bad_n("DOCKER=a\0b", 10, "line 1: contains a NUL byte");
	bad_n("# ok\n\0", 6, "line 2: contains a NUL byte");
	/* hostile bytes in a message are escaped */
	struct vplbdx_cfg c;
	struct err e;
	assert_int_equal(vplbdx_parse("\x1b[2J=1", 6, &c, &e), -1);
	assert_null(strchr(e.msg, '\x1b'));
}

static void test_limits(void **state)
{
	/* line of exactly 1024 bytes is fine, 1025 is not (CR excluded from neither) */
	char *line = malloc(2000);
	memset(line, ' ', 2000);
	memcpy(line, "DOCKER=x", 8);
	struct vplbdx_cfg c = ok_n(line, 1024);
	assert_string_equal(c.docker, "x");
	bad_n(line, 1025, "line 1: longer than 1024 bytes");
	/* a value longer than the field */
	memset(line, 'a', 2000);
	memcpy(line, "DOCKER=", 7);
	bad_n(line, 7 + 256, "longer than 255");
	c = ok_n(line, 7 + 255);
	assert_int_equal(strlen(c.docker), 255);
	free(line);

	/* 64 KiB of comments is fine, one byte more is not */
	size_t n = VPLBDX_MAX_FILE;
	char *big = malloc(n + 1);
	for (size_t i = 0; i < n + 1; i++)
		big[i] = (i % 64 == 63) ? '\n' : '#';
	ok_n(big, n);
	bad_n(big, n + 1, "larger than 65536 bytes");
	free(big);
	/* line numbers count every line */
	char many[4000] = "";
	for (int i = 0; i < 500; i++)
		strcat(many, "#\n");
	strcat(many, "BAD=1\n");
	bad(many, "line 501:");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_basic),
	    cmocka_unit_test(test_lenient_syntax),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
