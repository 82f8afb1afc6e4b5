#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "fail2ban.h"

static struct sockaddr_in v4(const char *ip)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static void bans_after_threshold_and_window_resets(void **state)
{
	(void)state;
	struct f2b *f = f2b_new(1);
	struct sockaddr_in a = v4("10.0.0.1"), b = v4("10.0.0.2");
	for (int i = 0; i < 20; i++)
		f2b_note(f, (struct sockaddr *)&a, true, 1000);
	assert_true(f2b_allows(f, (struct sockaddr *)&a, 1000)); /* 20 is not > 20 */
	f2b_note(f, (struct sockaddr *)&a, true, 1000);
	assert_false(f2b_allows(f, (struct sockaddr *)&a, 1000));
	assert_true(f2b_allows(f, (struct sockaddr *)&b, 1000)); /* others unaffected */
	/* mapped IPv6 form of the same client is the same client */
	struct sockaddr_in6 m = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, "::ffff:10.0.0.1", &m.sin6_addr);
	assert_false(f2b_allows(f, (struct sockaddr *)&m, 1000));
	assert_true(f2b_allows(f, (struct sockaddr *)&a, 1000 + F2B_WINDOW_MS));
	f2b_free(f);
}

static void good_traffic_outweighs_errors(void **state)
{
	(void)state;
	struct f2b *f = f2b_new(1);
	struct sockaddr_in a = v4("10.0.0.3");
	for (int i = 0; i < 30; i++)
		f2b_note(f, (struct sockaddr *)&a, true, 0);
	for (int i = 0; i < 40; i++)
		f2b_note(f, (struct sockaddr *)&a, false, 0);
	assert_true(f2b_allows(f, (struct sockaddr *)&a, 0)); /* 30 errors of 70 requests */
	f2b_free(f);
}

static void level_zero_never_bans(void **state)
{
	(void)state;
	struct f2b *f = f2b_new(0);
	struct sockaddr_in a = v4("10.0.0.4");
	for (int i = 0; i < 1000; i++)
		f2b_note(f, (struct sockaddr *)&a, true, 0);
	assert_true(f2b_allows(f, (struct sockaddr *)&a, 0));
	f2b_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(bans_after_threshold_and_window_resets),
	    cmocka_unit_test(good_traffic_outweighs_errors),
	    cmocka_unit_test(level_zero_never_bans),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
