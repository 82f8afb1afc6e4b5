#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tickets.h"

static void generates_39_digits_all_different(void **state)
{
	(void)state;
	char seen[200][TICKET_LEN + 1];
	for (int i = 0; i < 200; i++) {
		assert_int_equal(ticket_generate(seen[i], NULL), 0);
		assert_int_equal(strlen(seen[i]), TICKET_LEN);
		assert_true(ticket_format_ok(seen[i], TICKET_LEN));
		for (int k = 0; k < i; k++)
			assert_string_not_equal(seen[i], seen[k]);
	}
}

static void digits_are_uniform_enough(void **state)
{
	(void)state;
	/* 20000 tickets x 39 digits: each digit ~78000 times; a biased modulo
	 * (256 % 10) would put digits 0-5 about 2.3% above 6-9. */
	long count[10] = {0};
	char t[TICKET_LEN + 1];
	for (int i = 0; i < 20000; i++) {
		ticket_generate(t, NULL);
		for (int k = 0; k < TICKET_LEN; k++)
			count[t[k] - '0']++;
	}
	long total = 20000L * TICKET_LEN;
	for (int d = 0; d < 10; d++) {
		double share = (double)count[d] / (double)total;
		assert_true(share > 0.097 && share < 0.103);
	}
}

static void format_check(void **state)
{
	(void)state;
	assert_true(ticket_format_ok("0", 1));
	assert_false(ticket_format_ok("", 0));
	assert_false(ticket_format_ok("12a", 3));
	assert_false(ticket_format_ok("12 ", 3));
	char long_t[70];
	memset(long_t, '7', sizeof long_t);
	assert_true(ticket_format_ok(long_t, 64));
	assert_false(ticket_format_ok(long_t, 65));
}

static void equality(void **state)
{
	(void)state;
	assert_true(ticket_equal("123", "123", 3));
	assert_false(ticket_equal("123", "124", 3));
	assert_false(ticket_equal("123", "1234", 4));
	assert_false(ticket_equal("123", "12", 2));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(generates_39_digits_all_different),
	    cmocka_unit_test(digits_are_uniform_enough),
	    cmocka_unit_test(format_check),
	    cmocka_unit_test(equality),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
