/* Unit tests for common/utf8: sanitizing byte streams into text frames. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

static size_t run(const char *in, size_t n, char *out, size_t *tail)
{
	return utf8_sanitize((const unsigned char *)in, n, (unsigned char *)out, tail);
}

static void test_valid_passes(void **state)
{
	(void)state;
	const char *s = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80";
	char out[64];
	size_t tail;
	size_t o = run(s, strlen(s), out, &tail);
	assert_int_equal(o, strlen(s));
	assert_memory_equal(out, s, o);
	assert_int_equal(tail, 0);
}

static void test_incomplete_end_carried(void **state)
{
	(void)state;
	char out[64];
	size_t tail;
	/* "a" + first 2 bytes of the euro sign */
	size_t o = run("a\xe2\x82", 3, out, &tail);
	assert_int_equal(o, 1);
	assert_int_equal(tail, 2);
	/* the caller prepends the tail: the sequence completes */
	o = run("\xe2\x82\xac", 3, out, &tail);
	assert_int_equal(o, 3);
	assert_int_equal(tail, 0);
	/* a 4-byte emoji split after its lead byte */
	o = run("x\xf0", 2, out, &tail);
	assert_int_equal(o, 1);
	assert_int_equal(tail, 1);
}

static void test_invalid_replaced(void **state)
{
	(void)state;
	char out[64];
	size_t tail;
	/* a lone continuation, an overlong, a surrogate, 0xff */
	size_t o = run("\x80"
		       "A\xc0\xaf"
		       "B\xed\xa0\x80\xff",
		       9, out, &tail);
	assert_int_equal(tail, 0);
	const char *want = "\xef\xbf\xbd"
			   "A\xef\xbf\xbd\xef\xbf\xbd"
			   "B\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd";
	assert_int_equal(o, strlen(want));
	assert_memory_equal(out, want, o);
}

static void test_bad_prefix_not_carried(void **state)
{
	(void)state;
	char out[64];
	size_t tail;
	/* E0 80 can never become well-formed (overlong): replaced, not carried */
	size_t o = run("\xe0\x80", 2, out, &tail);
	assert_int_equal(tail, 0);
	assert_int_equal(o, 6);
	/* F5 is never a lead byte */
	o = run("\xf5", 1, out, &tail);
	assert_int_equal(tail, 0);
	assert_int_equal(o, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid_passes),
	    cmocka_unit_test(test_incomplete_end_carried),
	    cmocka_unit_test(test_invalid_replaced),
	    cmocka_unit_test(test_bad_prefix_not_carried),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
